/* Minibatches of rows (hc_batch.h). */
#include "hc_batch.h"

#include "bome/ad.h"

#include <stdlib.h>
#include <string.h>

static void copy_rows(hc_batch *b)
{
    for (int k = 0; k < b->pick; k++) {
        memcpy(b->xb + (size_t)k * (size_t)b->d, b->x + (size_t)b->idx[k] * (size_t)b->d, (size_t)b->d * sizeof *b->xb);
        b->yb[k] = b->y[b->idx[k]];
    }
}

int hc_batch_init(hc_batch *b, const bome_real *x, const int32_t *y, int n, int d, int pick)
{
    memset(b, 0, sizeof *b);
    b->x = x;
    b->y = y;
    b->n = n;
    b->d = d;
    b->pick = pick;
    b->idx = malloc((size_t)pick * sizeof *b->idx);
    b->xb = malloc((size_t)pick * (size_t)d * sizeof *b->xb);
    b->yb = malloc((size_t)pick * sizeof *b->yb);
    if (!b->idx || !b->xb || !b->yb) {
        hc_batch_free(b);
        return BOME_ERR_NOMEM;
    }
    for (int k = 0; k < pick; k++)
        b->idx[k] = k;
    copy_rows(b);
    return BOME_OK;
}

void hc_batch_draw(hc_batch *b, bome_rng *rng)
{
    bome_rng_sample(rng, (size_t)b->n, (size_t)b->pick, b->idx);
    copy_rows(b);
}

void hc_batch_free(hc_batch *b)
{
    free(b->idx);
    free(b->xb);
    free(b->yb);
    memset(b, 0, sizeof *b);
}
