/*
 * Hyper-cleaning in small on synthetic rows, written for data-parallel runs
 * (bome/opt.h's workers): worker w of P makes only its own rows of the
 * training and the validation set, and holds only its entries of v, the
 * per-row weights (a sharded variable); W, the softmax regression, is
 * replicated. Its f and g are the worker's shares of the objectives: sums
 * over its rows divided by the counts of all the rows, the regularizer
 * counted once (bome_once). With one worker it is the whole problem.
 *
 * Row i's features are a fixed function of i, so any worker makes any row
 * without the others; its clean label is a function of the features, and
 * every third training row gets a wrong one, which v should learn to weigh
 * down.
 */
#ifndef PROB_PCLEAN_H
#define PROB_PCLEAN_H

#include "bome/opt.h"

typedef struct prob_pclean {
    bome_problem *problem;
    int n_train, n_val, d, k;          /* the whole problem's sizes */
    long train_begin, train_end;       /* this worker's training rows */
    long val_begin, val_end;           /* and validation rows */
    bome_real *v;                      /* train_end - train_begin weights in [0, 1] */
    bome_real *W;                      /* k x d */
    bome_real *x, *x_val;              /* its rows, d values each */
    int32_t *y, *y_val;
} prob_pclean;

/* Makes worker `worker`'s share of the problem (of `workers`). BOME_OK or
 * an error code. */
int prob_pclean_new(prob_pclean *c, int n_train, int n_val, int d, int k, int worker, int workers);
void prob_pclean_free(prob_pclean *c);
/* Settings under which v moves within a few steps. */
void prob_pclean_defaults(bome_options *o);
/* Whether training row i (of all) got a wrong label. */
int prob_pclean_noisy(long i);

#endif
