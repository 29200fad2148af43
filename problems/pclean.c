/* Hyper-cleaning in small, data-parallel (pclean.h). */
#include "pclean.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int prob_pclean_noisy(long i) { return i % 3 == 0; }

/* Row i of all (validation rows numbered after the training rows). */
static void make_row(long i, int d, int k, bome_real *x, int32_t *y, int noisy)
{
    for (int j = 0; j < d; j++)
        x[j] = sin(0.37 * (double)(i * d + j)) + 0.2 * cos(1.1 * (double)(i * d + j));
    int clean = ((x[0] > 0) + (d > 1 && x[1] > 0.5)) % k;
    *y = noisy ? (int32_t)((i * 7 + 1) % k) : clean;
}

/* g: the worker's rows' weighted cross-entropy over all the training rows,
 * plus 0.01 |W|^2 once. */
static bome_node *g_(bome_graph *g, const bome_vars *x, void *ctx)
{
    const prob_pclean *c = ctx;
    bome_node *z = bome_matmul(g, x->data[0], 0, x->theta[0], 1);
    bome_node *ce = bome_cross_entropy_rows(g, z, x->data[1]);
    bome_node *l = bome_scale(g, bome_sum(g, bome_mul(g, ce, x->v[0])), 1.0 / c->n_train);
    return bome_add(g, l, bome_once(g, bome_scale(g, bome_sumsq(g, x->theta[0]), 0.01)));
}

/* f: the worker's validation rows' cross-entropy over all the validation rows. */
static bome_node *f(bome_graph *g, const bome_vars *x, void *ctx)
{
    const prob_pclean *c = ctx;
    bome_node *ce = bome_cross_entropy_rows(g, bome_matmul(g, x->data[2], 0, x->theta[0], 1), x->data[3]);
    return bome_scale(g, bome_sum(g, ce), 1.0 / c->n_val);
}

int prob_pclean_new(prob_pclean *c, int n_train, int n_val, int d, int k, int worker, int workers)
{
    memset(c, 0, sizeof *c);
    if (n_train < workers || n_val < workers || d < 1 || k < 2 || workers < 1 || worker < 0 || worker >= workers)
        return BOME_ERR_ARG;
    c->n_train = n_train;
    c->n_val = n_val;
    c->d = d;
    c->k = k;
    bome_shard_rows(n_train, worker, workers, &c->train_begin, &c->train_end);
    bome_shard_rows(n_val, worker, workers, &c->val_begin, &c->val_end);
    int n = (int)(c->train_end - c->train_begin), nv = (int)(c->val_end - c->val_begin);
    c->v = malloc((size_t)n * sizeof *c->v);
    c->W = malloc((size_t)k * (size_t)d * sizeof *c->W);
    c->x = malloc((size_t)n * (size_t)d * sizeof *c->x);
    c->x_val = malloc((size_t)nv * (size_t)d * sizeof *c->x_val);
    c->y = malloc((size_t)n * sizeof *c->y);
    c->y_val = malloc((size_t)nv * sizeof *c->y_val);
    c->problem = bome_problem_new();
    if (!c->v || !c->W || !c->x || !c->x_val || !c->y || !c->y_val || !c->problem) {
        prob_pclean_free(c);
        return BOME_ERR_NOMEM;
    }
    for (int i = 0; i < n; i++) {
        long row = c->train_begin + i;
        make_row(row, d, k, c->x + (size_t)i * (size_t)d, c->y + i, prob_pclean_noisy(row));
        c->v[i] = 0.5;
    }
    for (int i = 0; i < nv; i++)
        make_row(n_train + c->val_begin + i, d, k, c->x_val + (size_t)i * (size_t)d, c->y_val + i, 0);
    for (int i = 0; i < k * d; i++)
        c->W[i] = 0.1 * cos(i);
    bome_problem *p = c->problem;
    bome_problem_add_outer(p, "v", BOME_VECTOR(n), c->v);
    bome_problem_set_sharded(p, BOME_OUTER, 0);
    bome_problem_set_bounds(p, BOME_OUTER, 0, 0, 1);
    bome_problem_add_inner(p, "W", BOME_MATRIX(k, d), c->W);
    bome_problem_add_input(p, "x", BOME_MATRIX(n, d), c->x);
    bome_problem_add_labels(p, "y", n, c->y);
    bome_problem_add_input(p, "x_val", BOME_MATRIX(nv, d), c->x_val);
    bome_problem_add_labels(p, "y_val", nv, c->y_val);
    bome_problem_set_objectives(p, f, g_, c);
    return bome_problem_status(p);
}

void prob_pclean_free(prob_pclean *c)
{
    bome_problem_free(c->problem);
    free(c->v);
    free(c->W);
    free(c->x);
    free(c->x_val);
    free(c->y);
    free(c->y_val);
    memset(c, 0, sizeof *c);
}

void prob_pclean_defaults(bome_options *o)
{
    bome_options_default(o);
    bome_options_set(o, "eta", 5); /* lambda > 0 from the first step: v moves */
    o->T = 5;
    o->alpha = 0.5;
    o->lr_outer = 100;
    o->lr_inner = 0.05;
    o->update = BOME_UPDATE_MOMENTUM;
    o->inner_momentum = 0.5;
    o->inner_momentum_keep = 1;
}
