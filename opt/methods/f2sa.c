/* F2SA (Kwon, Kwon, Wright, Nowak, "A Fully First-Order Method for
 * Stochastic Bilevel Optimization", ICML 2023), deterministic, fixed steps.
 * Two copies of theta kept from step to step, both from theta_0: y descends
 * the penalized f + lambda g, z descends g alone, T steps of size alpha each;
 * then v moves along
 *   grad_v f(v, y) + lambda (grad_v g(v, y) - grad_v g(v, z)),
 * the gradient of the value-function penalty f + lambda (g - min g) with z
 * standing in for argmin g, and lambda += delta, so the penalty tightens
 * without bound. theta reports y. y's steps are stable only while
 * alpha lambda stays below 2 / (g's curvature): the paper shrinks its
 * step sizes as lambda grows, this fixed-step form does not. */
#include "../method.h"

#include <string.h>

enum { LAMBDA0, DELTA };

/* benchopt/benchmark_bilevel solvers/f2sa.py's defaults (lmbda0, delta_lmbda) */
static const opt_setting params[] = {
    OPT_REAL("f2sa_lambda0", 1, 0, 1e300, "F2SA: the penalty lambda at the first step"),
    OPT_REAL("f2sa_delta", 0.1, 0, 1e300, "F2SA: added to lambda after every step"),
};

typedef struct state {
    bome_node **y, **z;          /* nt each, persistent */
    bome_node **dy, **dz, **dv;  /* nt, nt, nv */
    bome_node *gz;               /* g(v, z) */
    bome_real **hv;              /* nv: v's direction, for the shared update */
    bome_plan *plan_y, *plan_z, *plan_v;
    bome_real *y_values, *z_values; /* their memory, kept by checkpoints */
    bome_real lambda;            /* bound to a scalar input of the graph; kept too */
} state;

static int build(bome_solver *s, void *st)
{
    state *d = st;
    bome_graph *g = s->g;
    int nv = s->nv, nt = s->nt;
    d->hv = opt_buffers(s, 0, nv);
    if (opt_node_lists(s, 4, (bome_node ***const[]){&d->y, &d->z, &d->dy, &d->dz}, &d->dv) ||
        opt_theta_params(s, "y", d->y) || opt_theta_params(s, "z", d->z) ||
        !(d->y_values = opt_persist_copies(s, "F2SA's y", d->y)) ||
        !(d->z_values = opt_persist_copies(s, "F2SA's z", d->z)) ||
        opt_persist(s, "F2SA's lambda", &d->lambda, sizeof d->lambda))
        return s->status;
    memcpy(s->inner, d->y, (size_t)nt * sizeof *s->inner); /* theta takes y (opt_hyper_step) */
    d->lambda = opt_param(s, LAMBDA0);
    bome_node *lambda = opt_scalar_input(s, "f2sa_lambda", &d->lambda);
    bome_vars at_y = opt_vars(s, d->y), at_z = opt_vars(s, d->z);
    s->f = opt_build(s, "f(v, y)", s->p->f, &at_y);
    s->gk = opt_build(s, "g(v, y)", s->p->g, &at_y);
    d->gz = opt_build(s, "g(v, z)", s->p->g, &at_z);
    if (!d->gz)
        return s->status;
    opt_grad(s, bome_add(g, s->f, bome_mul(g, lambda, s->gk)), nt, d->y, d->dy);
    opt_grad(s, d->gz, nt, d->z, d->dz);
    opt_grad(s, bome_add(g, s->f, bome_mul(g, lambda, bome_sub(g, s->gk, d->gz))), nv, s->x, d->dv);
    if (opt_check_graph(s, "the F2SA graph"))
        return s->status;
    d->plan_y = opt_plan(s, "F2SA's y step", nt, d->dy);
    d->plan_z = opt_plan(s, "F2SA's z step", nt, d->dz);
    d->plan_v = opt_plan_f_gk(s, &d->gz, 1, d->dv, (size_t)nv);
    return s->status;
}

static int step(bome_solver *s, void *st, bome_step_stats *r)
{
    state *d = st;
    opt_restart_copies(s, d->y);
    opt_restart_copies(s, d->z);
    r->grad_evals = 3 * (long)s->o.T + 3; /* y: f and g; z: g; v: f, g(y), g(z) */
    int rc = opt_descend(s, d->y, d->dy, d->plan_y, s->o.T, s->o.alpha);
    if (!rc)
        rc = opt_descend(s, d->z, d->dz, d->plan_z, s->o.T, s->o.alpha);
    if (!rc)
        rc = opt_run(s, d->plan_v, r);
    if (rc)
        return rc;
    r->f = bome_value(s->f);
    r->g = bome_value(s->gk);
    r->q = r->g - bome_value(d->gz); /* the penalty's gap, g(v, y) - g(v, z) */
    r->lambda = d->lambda;
    for (int k = 0; k < s->nv; k++)
        memcpy(d->hv[k], bome_data(d->dv[k]), s->var[k]->size * sizeof(bome_real));
    rc = opt_hyper_step(s, r, d->hv);
    if (!rc)
        d->lambda += opt_param(s, DELTA);
    return rc;
}

static void release(bome_solver *s, void *st)
{
    state *d = st;
    opt_zfree(s, d->y);
    opt_zfree(s, d->y_values);
    opt_zfree(s, d->z_values);
    opt_free_buffers(s, d->hv, s->nv);
}

const opt_method opt_method_f2sa = {
    "f2sa", "F2SA: first order, persistent y on f + lambda g and z on g, v on the value-function penalty; "
    "lambda grows by delta", 1, 0, sizeof(state), OPT_PARAMS(params), build, step, release,
};
