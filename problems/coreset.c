/* The paper's coreset toy: the outer variable w weights four points, the
 * inner x is their softmax-weighted mean; f pulls x towards y. The answer is
 * the projection of y onto the convex hull of the points. */
#include "cases.h"

#include <math.h>
#include <stdlib.h>

static const bome_real C[8] = {1, 3, 3, 1, -2, 2, -3, -2};
static const bome_real Y[2] = {3, -2};
static const bome_real STARTS[3][2] = {{0, 3}, {-3, 1}, {3.5, -1}};

typedef struct { bome_real w[4], x[2]; } state;

static bome_node *f(bome_graph *g, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_node *y = bome_const(g, BOME_VECTOR(2), Y);
    /* data-free: counted once across the workers of a data-parallel run */
    return bome_once(g, bome_scale(g, bome_sumsq(g, bome_sub(g, x->theta[0], y)), 0.1));
}

static bome_node *g_(bome_graph *g, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_node *c = bome_const(g, BOME_MATRIX(4, 2), C);
    bome_node *mean = bome_matvec(g, c, 1, bome_softmax(g, x->v[0]));
    return bome_once(g, bome_sumsq(g, bome_sub(g, mean, x->theta[0])));
}

static void defaults(bome_options *o)
{
    bome_options_default(o);
    o->T = 10;
    o->alpha = o->lr_outer = o->lr_inner = 0.05;
    /* the released toy_convergence.py's epsilons */
    bome_options_set(o, "eta", 0.5);
    bome_options_set(o, "lambda_eps", 1e-4);
    bome_options_set(o, "bsg_eps", 1e-50);
    /* its penalty (lmbd_g, eps, gamma) and BVFSM (l2reg, lnreg), toy_convergence.py:443, :434 */
    bome_options_set(o, "penalty_lambda_g", 0.1);
    bome_options_set(o, "penalty_eps", 0.01);
    bome_options_set(o, "penalty_gamma", 0.01);
    bome_options_set(o, "bvfsm_c_z", 0.1);
    bome_options_set(o, "bvfsm_c_y", 0.1);
    bome_options_set(o, "bvfsm_decay", 1); /* fixed r, as the toys run it */
    bome_options_set(o, "bvfsm_c_ln", 0.1);
    /* not in the paper: F2SA's y step is stable while alpha lambda |grad^2 g| = 0.1 lambda < 2,
     * so lambda grows to 11 over the 5000 steps, not to 500 */
    bome_options_set(o, "f2sa_delta", 0.002);
    o->max_steps = 5000;
}

static int create(prob_run *r, int start, uint64_t seed, char *err, size_t errlen)
{
    (void)seed;
    (void)err;
    (void)errlen;
    state *s = calloc(1, sizeof *s);
    if (!s)
        return BOME_ERR_NOMEM;
    s->x[0] = STARTS[start][0];
    s->x[1] = STARTS[start][1];
    int rc = prob_toy(r, s, "w", BOME_VECTOR(4), s->w, "x", BOME_VECTOR(2), s->x, f, g_);
    return rc ? rc : bome_problem_status(r->problem);
}

static double error(const prob_run *r)
{
    const state *s = r->state;
    double c[8], y[2] = {Y[0], Y[1]}, p[2];
    for (int i = 0; i < 8; i++)
        c[i] = C[i];
    prob_hull_projection(c, 4, y, p);
    return hypot(s->x[0] - p[0], s->x[1] - p[1]);
}

const prob_case prob_coreset = {
    .name = "coreset",
    .summary = "the paper's coreset toy: x = softmax(w)-weighted mean of 4 points, f = 0.1|x - y|^2",
    .default_steps = 5000,
    .n_starts = 3,
    .defaults = defaults,
    .create = create,
    .destroy = prob_free,
    .error = error,
};
