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
    d->gf = opt_zalloc(s, (size_t)s->nv, sizeof *d->gf);
    d->hv = opt_buffers(s, 0, s->nv);
    if (s->status)
        return s->status;
    opt_unroll_start(s, s->inner);
    d->plan = opt_unrolled_build(s, s->inner, NULL, s->o.T, d->gf, "the ITD graph");
    return s->status;
}

static int step(bome_solver *s, void *st, bome_step_stats *r)
{
    state *d = st;
    /* T gradients forward, and back through each step a Hessian-vector product */
    r->grad_evals = s->o.T + 1;
    r->hvp_evals = s->o.T;
    int rc = opt_unrolled_run(s, d->plan, d->gf, d->hv, r);
    return rc ? rc : opt_hyper_step(s, r, d->hv);
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
