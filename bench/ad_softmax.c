/* The hand-written softmax cross-entropy pass shared by linear and mlp. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "ad_bench.h"

#include <math.h>

/* ---- shared hand-written kernels ------------------------------------------------ */

/*
 * The fused softmax-cross-entropy pass over rows of logits L (bias not yet
 * added): adds b, overwrites L with (softmax - onehot) w, adds its column sums
 * into db (the bias gradient) and returns the sum of the rows' losses.
 */
double hand_softmax_ce(double *L, const double *b, const int32_t *y, int rows, int k, double w, double *db)
{
    double loss = 0;
    for (int i = 0; i < rows; i++) {
        double *li = L + (size_t)i * k;
        double m = -INFINITY;
        for (int j = 0; j < k; j++) {
            li[j] += b[j];
            if (li[j] > m)
                m = li[j];
        }
        double s = 0, zy = li[y[i]];
        for (int j = 0; j < k; j++) {
            li[j] = exp(li[j] - m);
            s += li[j];
        }
        loss += m + log(s) - zy;
        double scale = w / s;
        for (int j = 0; j < k; j++)
            li[j] *= scale;
        li[y[i]] -= w;
        for (int j = 0; j < k; j++)
            db[j] += li[j];
    }
    return loss;
}
