/* V-PBGD (Shen & Chen, "On Penalty-based Bilevel Gradient Descent
 * Method", ICML 2023): BOME's q with a fixed penalty schedule in place of
 * BOME's adaptive lambda. omega, a copy of theta kept from step to step
 * (warm-started from theta_0, as the authors' code keeps its inner network),
 * takes T steps on g; then
 *   (v, theta) -= lr min(1/gamma, 1) grad[f + gamma (g(v, theta) - g(v, sg[omega]))]
 * with gamma rising linearly from vpbgd_gamma_init to vpbgd_gamma_max over
 * max_steps. The 1/gamma keeps the step inside the penalized objective's
 * curvature, which grows with gamma. */
#include "../method.h"
#include "qhat.h"

enum { GAMMA_INIT, GAMMA_MAX };

/* The authors' hyper-cleaning defaults (V-PBGD/data-hyper-cleaning). */
static const opt_setting params[] = {
    OPT_REAL("vpbgd_gamma_init", 0, 0, 1e300, "V-PBGD's penalty gamma at the first step"),
    OPT_REAL("vpbgd_gamma_max", 0.2, 0, 1e300, "V-PBGD's gamma at max_steps, reached linearly"),
};

typedef struct state {
    opt_qhat q;
    bome_real *omega;        /* omega's memory, kept by checkpoints */
} state;

/* omega is s->inner, which starts at theta_0 (opt_inner_params) and, unlike
 * BOME's, is never reset to theta_k. */
static int build(bome_solver *s, void *st)
{
    state *d = st;
    if (!(d->omega = opt_persist_copies(s, "V-PBGD's omega", s->inner)))
        return s->status;
    return opt_qhat_build(s, &d->q, "the V-PBGD graph");
}

static int step(bome_solver *s, void *st, bome_step_stats *r)
{
    opt_qhat *q = &((state *)st)->q;
    double lo = opt_param(s, GAMMA_INIT), hi = opt_param(s, GAMMA_MAX), fq, qq;
    double ramp = s->o.max_steps > 0 ? (double)s->steps / (double)s->o.max_steps : 1.0;
    /* gamma_max below gamma_init: gamma_init throughout, as the authors' code does */
    double gamma = hi > lo ? lo + (hi - lo) * (ramp < 1 ? ramp : 1.0) : lo;
    opt_restart_copies(s, s->inner);
    r->grad_evals = s->o.T + 3; /* T on omega; f, g(theta), g(omega) */
    int rc = opt_descend(s, s->inner, s->inner_grad, s->plan_inner, s->o.T, s->o.alpha);
    if (!rc)
        rc = opt_qhat_eval(s, q, r, &fq, &qq);
    if (rc)
        return rc;
    r->lambda = gamma;
    double scale = 1.0 / (gamma + 1e-8); /* the authors' guard against gamma = 0 */
    return opt_qhat_update(s, q, r, scale < 1 ? scale : 1.0);
}

static void release(bome_solver *s, void *st)
{
    state *d = st;
    opt_qhat_free(s, &d->q);
    opt_zfree(s, d->omega);
}

const opt_method opt_method_vpbgd = {
    "v-pbgd", "V-PBGD: first order, BOME's q with gamma rising linearly in place of lambda; omega warm-started", 1,
    OPT_INNER_LOOP, sizeof(state), OPT_PARAMS(params), build, step, release,
};
