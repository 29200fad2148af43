/* AID-CG, implicit differentiation: after T inner steps to theta_T,
 *   d f / d v = grad_v f - (d2 g / dv dtheta) u,   H u = grad_theta f,
 * with H = d2 g / dtheta2 at (v, theta_T) and u from cg_steps of conjugate
 * gradients. H p and the mixed product are gradients of <grad_theta g, p>
 * with respect to theta and to v (aid.c builds them); here only the solve. */
#include "../method.h"
#include "aid.h"

#include <math.h>
#include <string.h>

enum { CG_STEPS };

static const opt_setting params[] = {
    OPT_INT("cg_steps", 10, 1, 1000000, "conjugate-gradient iterations of the solve H u = grad_theta f"),
};

typedef struct state {
    opt_aid aid;
    bome_real **r;   /* nt: the CG residual */
} state;

static int build(bome_solver *s, void *st)
{
    state *d = st;
    d->r = opt_buffers(s, s->nv, s->nk);
    return opt_aid_build(s, &d->aid, "AID-CG");
}

/* H u = b by conjugate gradients from u = 0, b = grad_theta f; stops early
 * once the residual vanishes. p and u are the buffers aid's plans read. */
static int solve(bome_solver *s, state *d, bome_step_stats *r)
{
    opt_aid *a = &d->aid;
    int nv = s->nv, nt = s->nt;
    for (int j = 0; j < nt; j++) {
        size_t n = s->var[nv + j]->size;
        memset(a->u[j], 0, n * sizeof(bome_real));
        memcpy(d->r[j], bome_data(a->gf_theta[j]), n * sizeof(bome_real));
        memcpy(a->p[j], d->r[j], n * sizeof(bome_real));
    }
    double rr = opt_dot_bufs(s, nv, nt, d->r, d->r);
    if (!isfinite(rr))
        return opt_stop_nonfinite(s, r, "|grad_theta f|^2", rr);
    int K = (int)opt_param(s, CG_STEPS);
    for (int k = 0; k < K && rr > 0; k++) {
        r->hvp_evals++;
        int rc = opt_run_plan(s, a->plan_hp);
        if (rc)
            return opt_fail(s, rc, "step %ld, CG iteration %d: %s", r->step, k + 1, opt_run_errmsg(s));
        double pHp = opt_dot_nodes_bufs(s, nv, nt, a->hp, a->p);
        if (!isfinite(pHp))
            return opt_stop_nonfinite(s, r, "p'Hp", pHp);
        if (!(pHp > 0)) /* H is not positive along p: keep what CG has */
            break;
        double step = rr / pHp;
        for (int j = 0; j < nt; j++) {
            const bome_real *hp = bome_data(a->hp[j]);
            for (size_t i = 0; i < s->var[nv + j]->size; i++) {
                a->u[j][i] += step * a->p[j][i];
                d->r[j][i] -= step * hp[i];
            }
        }
        double rr_next = opt_dot_bufs(s, nv, nt, d->r, d->r);
        if (!isfinite(rr_next))
            return opt_stop_nonfinite(s, r, "the CG residual", rr_next);
        for (int j = 0; j < nt; j++)
            for (size_t i = 0; i < s->var[nv + j]->size; i++)
                a->p[j][i] = d->r[j][i] + rr_next / rr * a->p[j][i];
        rr = rr_next;
    }
    return BOME_OK;
}

static int step(bome_solver *s, void *st, bome_step_stats *r)
{
    state *d = st;
    int rc = opt_aid_begin(s, &d->aid, r);
    if (!rc)
        rc = solve(s, d, r);
    if (!rc)
        rc = opt_aid_finish(s, &d->aid, r);
    return rc;
}

static void release(bome_solver *s, void *st)
{
    state *d = st;
    opt_aid_free(s, &d->aid);
    opt_free_buffers(s, d->r, s->nt);
}

const opt_method opt_method_aid_cg = {
    "aid-cg", "implicit differentiation at theta_T, H^-1 grad_theta f by conjugate gradients", 2, OPT_INNER_LOOP,
    sizeof(state), OPT_PARAMS(params), build, step, release,
};
