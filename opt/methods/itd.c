/* ITD, BOME's classic rival: v's gradient through the inner loop itself.
 * The T inner steps are built into the graph as nodes, each step's direction
 * the gradient of g at the previous step's node, so one reverse sweep from
 * f(v, theta_T) gives d f / d v through all of them: second order, from the
 * same f and g builders, with nothing hand-written. The graph is built once;
 * every outer step replays one plan. */
#include "../method.h"

#include <string.h>

typedef struct state {
    bome_node **gf;      /* nv: the hypergradient, through every unrolled step */
    bome_real **hv;      /* nv: its values, for the shared update */
    bome_plan *plan;
} state;

static int build(bome_solver *s, void *st)
{
    state *d = st;
    int nt = s->nt, nv = s->nv;
    d->gf = opt_zalloc(s, (size_t)nv, sizeof *d->gf);
    d->hv = opt_buffers(s, 0, nv);
    if (s->status)
        return s->status;
    memcpy(s->inner, s->x + nv, (size_t)nt * sizeof *s->inner); /* theta_0 = theta_k */
    /* or v, meta-learning's start, differentiated too: through a node of its
     * own, so that the first step's gradient in theta is not also in v */
    for (int j = 0; j < nt; j++)
        if (opt_inner_start(s, j) >= 0)
            s->inner[j] = bome_add_scalar(s->g, s->x[opt_inner_start(s, j)], 0.0);
    if (opt_unroll(s, s->inner, s->o.T, "g(v, theta_t) in the unrolled loop"))
        return s->status;
    bome_vars at_T = opt_vars(s, s->inner);
    s->f = opt_build(s, "f(v, theta_T)", s->p->f, &at_T);
    s->gk = opt_build(s, "g(v, theta_T)", s->p->g, &at_T);
    if (s->gk)
        bome_grad(s->g, s->f, nv, s->x, d->gf); /* total: through every unrolled step */
    if (opt_check_graph(s, "the ITD graph"))
        return s->status;
    d->plan = opt_plan_f_gk(s, d->gf, (size_t)nv, s->inner, (size_t)nt);
    return s->status;
}

static int step(bome_solver *s, void *st, bome_step_stats *r)
{
    state *d = st;
    int rc = opt_run(s, d->plan, r);
    if (rc)
        return rc;
    r->f = bome_value(s->f);
    r->g = bome_value(s->gk);
    for (int k = 0; k < s->nv; k++)
        memcpy(d->hv[k], bome_data(d->gf[k]), s->var[k]->size * sizeof(bome_real));
    return opt_hyper_step(s, r, d->hv);
}

static void release(bome_solver *s, void *st)
{
    state *d = st;
    opt_zfree(s, d->gf);
    opt_free_buffers(s, d->hv, s->nv);
}

const opt_method opt_method_itd = {
    "itd", "iterative differentiation: v's gradient through the T unrolled inner steps; theta takes theta_T", 2, 0,
    sizeof(state), NULL, 0, build, step, release,
};
