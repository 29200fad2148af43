/* Reverse, truncated back-propagation (Shaban et al. 2019): of the T inner
 * steps only the last K = reverse_steps (at most T) are differentiated.
 * The first T - K run on the plain inner loop, with no graph; the last K
 * are built into the graph as ITD's are, from params that hold
 * theta_{T-K}, so one reverse sweep from f(v, theta_T) gives v's
 * truncated hypergradient; theta takes theta_T. The released code
 * (hpo/data_cleaning.py:494, hg.reverse over x_history[-K-1:]) resumes the
 * inner momentum there without differentiating it: so does this one, by
 * an input bound to the loop's momentum buffer. */
#include "../method.h"

#include <string.h>

enum { STEPS };

static const opt_setting params[] = {
    OPT_INT("reverse_steps", 10, 1, 1000000,
            "reverse's K: only the last K of the T inner steps are differentiated (K >= T: ITD)"),
};

typedef struct state {
    int K;
    bome_node **thT;     /* nt: theta_T, K unrolled steps from s->inner */
    bome_node **gf;      /* nv: the truncated hypergradient */
    bome_real **hv;      /* nv: its values, for the shared update */
    bome_plan *plan;
} state;

/* The momentum at theta_{T-K}: inputs bound to the plain loop's buffers
 * (constants to the sweep, as the truncation wants); NULL from zero. */
static bome_node **resumed_momentum(bome_solver *s, const state *d)
{
    if (!(s->o.inner_momentum > 0) || d->K == s->o.T)
        return NULL;
    bome_node **mom = opt_zalloc(s, (size_t)s->nt, sizeof *mom);
    if (mom)
        opt_bound_inputs(s, "momentum", s->inner_buf, mom);
    return mom;
}

static int build(bome_solver *s, void *st)
{
    state *d = st;
    int K = (int)opt_param(s, STEPS);
    d->K = K < s->o.T ? K : s->o.T;
    d->thT = opt_zalloc(s, (size_t)s->nt, sizeof *d->thT);
    d->gf = opt_zalloc(s, (size_t)s->nv, sizeof *d->gf);
    d->hv = opt_buffers(s, 0, s->nv);
    if (s->status || opt_inner_build(s))
        return s->status;
    if (d->K == s->o.T) /* all T: ITD's graph, through a meta-learning start too */
        opt_unroll_start(s, d->thT);
    else /* theta_{T-K}: the plain loop's iterate, a constant to the sweep */
        memcpy(d->thT, s->inner, (size_t)s->nt * sizeof *d->thT);
    bome_node **mom = resumed_momentum(s, d);
    d->plan = opt_unrolled_build(s, d->thT, mom, d->K, d->gf, "the reverse graph");
    opt_zfree(s, mom);
    return s->status;
}

static int step(bome_solver *s, void *st, bome_step_stats *r)
{
    state *d = st;
    r->grad_evals = s->o.T + 1;
    r->hvp_evals = d->K;
    int rc = opt_inner_steps(s, false, s->o.T - d->K);
    if (!rc)
        rc = opt_unrolled_run(s, d->plan, d->gf, d->hv, r);
    if (rc)
        return rc;
    /* the shared end of step takes theta_T from s->inner */
    for (int j = 0; j < s->nt; j++)
        memcpy(bome_data(s->inner[j]), bome_data(d->thT[j]), s->var[s->nv + j]->size * sizeof(bome_real));
    return opt_hyper_step(s, r, d->hv);
}

static void release(bome_solver *s, void *st)
{
    state *d = st;
    opt_zfree(s, d->thT);
    opt_zfree(s, d->gf);
    opt_free_buffers(s, d->hv, s->nv);
}

const opt_method opt_method_reverse = {
    "reverse", "truncated back-propagation: v's gradient through the last K of the T inner steps; theta takes theta_T",
    2, OPT_INNER_LOOP, sizeof(state), OPT_PARAMS(params), build, step, release,
};
