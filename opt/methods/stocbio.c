/* stocBiO (Ji, Yang, Liang 2021): implicit differentiation at theta_T with
 * H^-1 grad_theta f replaced by the Neumann series
 *   u = eta sum_{i<Q} (I - eta H)^i grad_theta f,
 * then grad_v f - (d2 g / dv dtheta) u. Its stochasticity is the data's:
 * minibatches come through options.refill, which the solver calls before
 * every step, so the inner loop, H and the mixed product of one step share
 * a batch (the released code draws one per product). */
#include "../method.h"
#include "aid.h"

enum { STEPS, LR, FORM };

/* Defaults: Q = 3 and eta = 0.1 as the released MNIST run
 * (hpo/data_cleaning.py:702, :712; Fashion-MNIST eta = 1e-4). Its line
 * :717 computes eta p_Q + sum_{i=1..Q} p_i with p_i = (I - eta H)^i b,
 * which is not the series above (no factor eta on the sum, no p_0): kept
 * as neumann_form released to reproduce its runs. */
static const opt_setting params[] = {
    OPT_INT("neumann_steps", 3, 1, 1000000, "stocBiO's Q: terms of the Neumann series for H^-1 grad_theta f"),
    OPT_REAL("neumann_lr", 0.1, 0, 1e300, "stocBiO's eta in (I - eta H)^i"),
    OPT_CHOICE("neumann_form", 0, "sum|released", 2,
               "eta sum_{i<Q} (I - eta H)^i grad_theta f, or the released code's eta p_Q + sum_{i=1..Q} p_i"),
};

/* The released inner optimizer is created once, so its momentum buffer
 * lives from one outer step to the next: stocBiO keeps it where asked. */
static int build(bome_solver *s, void *st)
{
    ((opt_aid *)st)->keep_momentum = true;
    return opt_aid_build(s, st, "stocBiO");
}

static int step(bome_solver *s, void *st, bome_step_stats *r)
{
    int Q = (int)opt_param(s, STEPS);
    bool released = opt_param(s, FORM) != 0;
    return opt_aid_series_step(s, st, r, released ? Q + 1 : Q, opt_param(s, LR), 0.0, released);
}

static void release(bome_solver *s, void *st) { opt_aid_free(s, st); }

const opt_method opt_method_stocbio = {
    "stocbio", "stocBiO: implicit differentiation at theta_T, H^-1 grad_theta f by a Neumann series", 2,
    OPT_INNER_LOOP | OPT_KEEPS_MOMENTUM, sizeof(opt_aid), OPT_PARAMS(params), build, step, release,
};
