/* AID-FP, implicit differentiation at theta_T as AID-CG, with u from
 * fp_steps fixed-point iterations u <- u - beta (H u - grad_theta f) from
 * u = 0 in place of CG; the hypergradient is grad_v f - (d2 g / dv dtheta) u.
 * The released code (hpo/data_cleaning.py:498, hg.fixed_point) iterates
 * the transpose of the inner loop's own map: beta = alpha (x_lr) and
 * K = --K = 10, and with inner momentum mu the heavy-ball map's, on two
 * blocks (aid.h); so does this one. Every form tends to H^-1 grad_theta f. */
#include "../method.h"
#include "aid.h"

enum { FP_STEPS, FP_LR };

static const opt_setting params[] = {
    OPT_INT("fp_steps", 10, 1, 1000000, "AID-FP's fixed-point iterations u <- u - beta (H u - grad_theta f)"),
    OPT_REAL("fp_lr", 0, 0, 1e300, "AID-FP's beta; 0: alpha, the inner step, as the released code"),
};

static int build(bome_solver *s, void *st) { return opt_aid_build(s, st, "AID-FP"); }

static int step(bome_solver *s, void *st, bome_step_stats *r)
{
    double beta = opt_param(s, FP_LR) > 0 ? opt_param(s, FP_LR) : s->o.alpha;
    return opt_aid_series_step(s, st, r, (int)opt_param(s, FP_STEPS), beta, s->o.inner_momentum, false);
}

static void release(bome_solver *s, void *st) { opt_aid_free(s, st); }

const opt_method opt_method_aid_fp = {
    "aid-fp", "implicit differentiation at theta_T, H^-1 grad_theta f by fixed-point iterations", 2, OPT_INNER_LOOP,
    sizeof(opt_aid), OPT_PARAMS(params), build, step, release,
};
