/* BSG-1, a first-order rival: after the inner loop, v moves along
 *   grad_v f - (<grad_theta f, grad_theta g> / (|grad_theta g|^2 + eps)) grad_v g
 * at (v, theta_T), the one-term approximation of the implicit hypergradient
 * that replaces H^-1 by a scalar; theta takes theta_T. */
#include "../method.h"

#include <math.h>
#include <string.h>

enum { EPS };

static const opt_setting params[] = {
    OPT_REAL("bsg_eps", 1e-8, 0, 1e300, "added to |grad_theta g|^2 in BSG-1's scalar"),
};

typedef struct state {
    bome_node **gf, **gg;  /* nk each: grad f and grad g wrt (v, theta) at theta_T */
    bome_real **hv;        /* nv: v's direction */
    bome_plan *plan;
} state;

static int build(bome_solver *s, void *st)
{
    state *d = st;
    int nv = s->nv, nt = s->nt;
    d->gf = opt_zalloc(s, (size_t)s->nk, sizeof *d->gf);
    d->gg = opt_zalloc(s, (size_t)s->nk, sizeof *d->gg);
    d->hv = opt_buffers(s, 0, nv);
    if (s->status || opt_inner_build(s))
        return s->status;
    bome_vars at_T = opt_vars(s, s->inner);
    s->f = opt_build(s, "f(v, theta_T)", s->p->f, &at_T);
    if (s->f) {
        s->gk = s->g_inner;
        bome_node **wrt = opt_zalloc(s, (size_t)s->nk, sizeof *wrt);
        if (!wrt)
            return s->status;
        memcpy(wrt, s->x, (size_t)nv * sizeof *wrt);
        memcpy(wrt + nv, s->inner, (size_t)nt * sizeof *wrt);
        opt_grad(s, s->f, s->nk, wrt, d->gf);
        opt_grad(s, s->g_inner, nv, s->x, d->gg);
        memcpy(d->gg + nv, s->inner_grad, (size_t)nt * sizeof *d->gg);
        opt_zfree(s, wrt);
    }
    if (opt_check_graph(s, "the BSG-1 graph"))
        return s->status;
    d->plan = opt_plan_f_gk(s, d->gf, (size_t)s->nk, d->gg, (size_t)s->nk); /* gg: grad_theta g at theta_T too */
    return s->status;
}

static int step(bome_solver *s, void *st, bome_step_stats *r)
{
    state *d = st;
    int nv = s->nv, nt = s->nt;
    r->grad_evals = s->o.T + 2; /* T inner; f and g at theta_T */
    int rc = opt_inner_loop(s, true);
    if (!rc)
        rc = opt_run(s, d->plan, r);
    if (rc)
        return rc;
    r->f = bome_value(s->f);
    r->g = bome_value(s->gk);
    bome_node *const *a[2] = {d->gf + nv, d->gg + nv}, *const *b[2] = {d->gg + nv, d->gg + nv};
    double dots[2];
    opt_dots_nodes(s, nv, nt, 2, a, b, dots);
    if (s->status)
        return s->status;
    double fg = dots[0], gg = dots[1];
    double scale = -fg / (gg + opt_param(s, EPS));
    if (!isfinite(scale))
        return opt_stop_nonfinite(s, r, "<grad_theta f, grad_theta g> / |grad_theta g|^2", scale);
    for (int k = 0; k < nv; k++) {
        const bome_real *a = bome_data(d->gf[k]), *b = bome_data(d->gg[k]);
        for (size_t i = 0; i < s->var[k]->size; i++)
            d->hv[k][i] = a[i] + scale * b[i];
    }
    return opt_hyper_step(s, r, d->hv);
}

static void release(bome_solver *s, void *st)
{
    state *d = st;
    opt_zfree(s, d->gf);
    opt_zfree(s, d->gg);
    opt_free_buffers(s, d->hv, s->nv);
}

const opt_method opt_method_bsg1 = {
    "bsg-1", "BSG-1: first order, one scalar in place of H^-1, at theta_T; theta takes theta_T", 1,
    OPT_INNER_LOOP | OPT_KEEPS_MOMENTUM, sizeof(state), OPT_PARAMS(params), build, step, release,
};
