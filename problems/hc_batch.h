/* Minibatches of a data set's rows for bome_problem_set_batches: B rows
 * drawn without replacement, copied into buffers the problem binds as
 * inputs, with their row numbers for bome_gather_rows of a per-row
 * variable. */
#ifndef PROB_HC_BATCH_H
#define PROB_HC_BATCH_H

#include "bome/ad.h"
#include "bome/rng.h"

#include <stdint.h>

typedef struct hc_batch {
    const bome_real *x; /* the set: n rows of d */
    const int32_t *y;
    int n, d, pick;    /* pick rows a batch */
    int32_t *idx;      /* the batch's row numbers, increasing */
    bome_real *xb;     /* its rows (pick x d) and labels */
    int32_t *yb;
} hc_batch;

/* Buffers for batches of pick rows (1 <= pick <= n), holding the first
 * pick rows until the first draw. BOME_OK or BOME_ERR_NOMEM. */
int hc_batch_init(hc_batch *b, const bome_real *x, const int32_t *y, int n, int d, int pick);
/* A fresh batch: pick of the n rows, each subset equally likely; pick = n
 * is every row in order. */
void hc_batch_draw(hc_batch *b, bome_rng *rng);
void hc_batch_free(hc_batch *b);

#endif
