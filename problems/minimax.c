/* The paper's minimax toy: the inner player maximizes x w in a box, the
 * outer one minimizes it. The answer is w = 0, where every x ties. */
#include "cases.h"

#include <math.h>
#include <stdlib.h>

typedef struct { bome_real w[1], x[1]; } state;

static bome_node *f(bome_graph *g, const bome_vars *x, void *ctx)
{
    (void)ctx;
    /* data-free: counted once across the workers of a data-parallel run */
    return bome_once(g, bome_mul(g, x->theta[0], x->v[0]));
}

static bome_node *g_(bome_graph *g, const bome_vars *x, void *ctx)
{
    (void)ctx;
    return bome_once(g, bome_neg(g, bome_mul(g, x->theta[0], x->v[0])));
}

static void defaults(bome_options *o)
{
    bome_options_default(o);
    o->T = 10;
    o->alpha = o->lr_outer = o->lr_inner = 0.05;
    /* the released toy_adv.py's epsilons */
    bome_options_set(o, "eta", 0.5);
    bome_options_set(o, "lambda_eps", 1e-8);
    bome_options_set(o, "bsg_eps", 1e-50);
    /* its penalty (lmbd_g, eps, gamma) and BVFSM (l2reg, lnreg), toy_adv.py:525, :518 */
    bome_options_set(o, "penalty_lambda_g", 1.0);
    bome_options_set(o, "penalty_eps", 0.1);
    bome_options_set(o, "penalty_gamma", 0.01);
    bome_options_set(o, "bvfsm_c_z", 0.1);
    bome_options_set(o, "bvfsm_c_y", 0.1);
    bome_options_set(o, "bvfsm_decay", 1); /* fixed r, as the toys run it */
    bome_options_set(o, "bvfsm_c_ln", 1.0);
    o->max_steps = 200;
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
    s->w[0] = 4;
    s->x[0] = 4;
    int rc = prob_toy(r, s, "w", BOME_SCALAR, s->w, "x", BOME_SCALAR, s->x, f, g_);
    bome_problem_set_bounds(r->problem, BOME_OUTER, 0, -10, 10);
    bome_problem_set_bounds(r->problem, BOME_INNER, 0, -10, 10);
    return rc ? rc : bome_problem_status(r->problem);
}

static double error(const prob_run *r)
{
    const state *s = r->state;
    return fabs(s->w[0]);
}

const prob_case prob_minimax = {
    .name = "minimax",
    .summary = "the paper's minimax toy: f = x w, g = -x w, x and w in [-10, 10]",
    .default_steps = 200,
    .n_starts = 1,
    .defaults = defaults,
    .create = create,
    .destroy = prob_free,
    .error = error,
};
