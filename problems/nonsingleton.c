/* The paper's toy with a non-singleton lower level: g ignores x2, so every x2
 * is optimal for g and f has to pick it. The optimum is x = (1, 1), w = 1. */
#include "cases.h"

#include <math.h>
#include <stdlib.h>

typedef struct { bome_real w[1], x[2]; } state;

static bome_node *f(bome_graph *g, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_node *x1 = bome_slice(g, x->theta[0], 0, 0, 1), *x2 = bome_slice(g, x->theta[0], 0, 1, 2);
    bome_node *a = bome_sumsq(g, bome_sub(g, x->v[0], x2));
    bome_node *b = bome_sumsq(g, bome_add_scalar(g, x1, -1.0));
    /* data-free: counted once across the workers of a data-parallel run */
    return bome_once(g, bome_scale(g, bome_add(g, a, b), 0.5));
}

static bome_node *g_(bome_graph *g, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_node *x1 = bome_slice(g, x->theta[0], 0, 0, 1);
    return bome_once(g, bome_sub(g, bome_scale(g, bome_sumsq(g, x1), 0.5), bome_sum(g, bome_mul(g, x->v[0], x1))));
}

static void defaults(bome_options *o)
{
    bome_options_default(o);
    o->T = 1;
    o->alpha = o->lr_outer = o->lr_inner = 0.5;
    /* the released toy_lls.py's epsilons */
    bome_options_set(o, "eta", 0.5);
    bome_options_set(o, "lambda_eps", 1e-8);
    bome_options_set(o, "bsg_eps", 1e-8);
    /* its penalty (lmbd_g, eps, gamma) and BVFSM (l2reg, lnreg), toy_lls.py:469, :461 */
    bome_options_set(o, "penalty_lambda_g", 0.1);
    bome_options_set(o, "penalty_eps", 0.1);
    bome_options_set(o, "penalty_gamma", 0.01);
    bome_options_set(o, "bvfsm_c_z", 0.1);
    bome_options_set(o, "bvfsm_c_y", 0.1);
    bome_options_set(o, "bvfsm_decay", 1); /* fixed r, as the toys run it */
    bome_options_set(o, "bvfsm_c_ln", 0.001);
    /* not in the paper: F2SA's y step is stable while alpha (1 + lambda) = 0.5 (1 + lambda) < 2,
     * so lambda grows to 2 over the 2000 steps */
    bome_options_set(o, "f2sa_delta", 0.0005);
    o->max_steps = 2000;
}

static int create(prob_run *r, int start, uint64_t seed, char *err, size_t errlen)
{
    (void)start;
    (void)seed;
    (void)err;
    (void)errlen;
    state *s = calloc(1, sizeof *s);
    if (!s)
        return BOME_ERR_NOMEM;
    int rc = prob_toy(r, s, "w", BOME_SCALAR, s->w, "x", BOME_VECTOR(2), s->x, f, g_);
    return rc ? rc : bome_problem_status(r->problem);
}

static double error(const prob_run *r)
{
    const state *s = r->state;
    double a = s->x[0] - 1, b = s->x[1] - 1, c = s->w[0] - 1;
    return sqrt(a * a + b * b + c * c);
}

const prob_case prob_nonsingleton = {
    .name = "nonsingleton",
    .summary = "the paper's non-singleton lower level: f = (w - x2)^2/2 + (x1 - 1)^2/2, g = x1^2/2 - w x1",
    .default_steps = 2000,
    .n_starts = 1,
    .defaults = defaults,
    .create = create,
    .destroy = prob_free,
    .error = error,
};
