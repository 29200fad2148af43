/* exact: the true meta-gradient of approximate bilevel optimization
 * (ITD with theta_0 = v), by the reverse sweep over the stored inner
 * trajectory: u = grad_theta f(theta_r), u <- u - alpha H_j u for
 * j = r-1 .. 0, one Hessian-vector product each (O(r) memory, no unrolled
 * graph). */
#include "meta.h"

enum { CLIP };

static const opt_setting params[] = {
    OPT_REAL("exact_clip", 0, 0, 1e300, "clip u elementwise to [-c, c] after each reverse step (0: never)"),
};

typedef struct state { opt_meta meta; } state;

static int build(bome_solver *s, void *st) { return opt_meta_build(s, &((state *)st)->meta, true); }

static int estimate(bome_solver *s, opt_meta *m, void *st, bome_step_stats *r)
{
    (void)st;
    r->hvp_evals += s->o.T;
    return opt_meta_exact(s, m, m->est, opt_param(s, CLIP), r);
}

static int step(bome_solver *s, void *st, bome_step_stats *r) { return opt_meta_step(s, &((state *)st)->meta, st, r, estimate); }
static void release(bome_solver *s, void *st) { opt_meta_free(s, &((state *)st)->meta); }

const opt_method opt_method_exact = {
    "exact", "the exact meta-gradient through the r inner steps by reverse Hessian-vector products", 2,
    OPT_INNER_LOOP | OPT_TASKS, sizeof(state), OPT_PARAMS(params), build, step, release,
};
