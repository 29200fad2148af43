/* BSG-1, a first-order rival: after the inner loop, v moves along
 *   -(<grad_theta f, grad_theta g> / |grad_theta g|^2) grad_v g
 * at (v, theta_T), the one-term approximation of the implicit hypergradient
 * that replaces H^-1 by a scalar; theta takes theta_T. */
#include "internal.h"

#include <math.h>
#include <string.h>

int opt_bsg_build(bome_solver *s, bome_node **data)
{
    bome_problem *p = s->p;
    bome_graph *g = s->g;
    int nv = s->nv, nt = s->nt;
    bome_vars at_T = {s->x, s->inner, data, nv, nt, p->n_data};
    /* gf: grad_theta f in the theta slots; gq: grad_theta g there and
     * grad_v g in the v slots. */
    bome_node *gt = opt_build(s, "g(v, theta_t) for the inner loop", p->g, &at_T);
    if (gt) {
        bome_grad(g, gt, nt, s->inner, s->inner_grad);
        s->f = opt_build(s, "f(v, theta_T)", p->f, &at_T);
    }
    if (s->f) {
        s->gk = gt;
        bome_grad(g, s->f, nt, s->inner, s->gf + nv);
        bome_grad(g, gt, nv, s->x, s->gq);
        memcpy(s->gq + nv, s->inner_grad, (size_t)nt * sizeof *s->gq);
    }
    if (s->status)
        return s->status;
    if (bome_graph_status(g))
        return opt_fail(s, bome_graph_status(g), "building the BSG-1 graph: %s", bome_graph_errmsg(g));
    s->plan_inner = bome_plan_new(g, nt, s->inner_grad);
    s->plan_outer = opt_plan_f_gk(s, s->gf + nv, (size_t)nt, s->gq, (size_t)(nv + nt));
    if (s->status)
        return s->status;
    if (!s->plan_inner || !s->plan_outer)
        return opt_fail(s, bome_graph_status(g), "planning BSG-1: %s", bome_graph_errmsg(g));
    return BOME_OK;
}

int opt_bsg_step(bome_solver *s, bome_step_stats *r)
{
    int rc = opt_inner_then_outer(s, r);
    if (rc)
        return rc;
    double fg = 0, gg = 0, vv = 0;
    for (int j = 0; j < s->nt; j++) {
        const bome_real *a = bome_data(s->gf[s->nv + j]), *b = bome_data(s->gq[s->nv + j]);
        for (size_t i = 0; i < s->var[s->nv + j]->size; i++) {
            fg += a[i] * b[i];
            gg += b[i] * b[i];
        }
    }
    double scale = -fg / (gg + s->o.lambda_eps);
    for (int k = 0; k < s->nv; k++) {
        const bome_real *b = bome_data(s->gq[k]);
        for (size_t i = 0; i < s->var[k]->size; i++)
            vv += b[i] * b[i];
    }
    r->grad_f_norm = fabs(scale) * sqrt(vv);
    r->kkt = r->grad_f_norm * r->grad_f_norm;
    if (!isfinite(r->f) || !isfinite(r->g) || !isfinite(scale) || !isfinite(vv))
        return opt_stop_nonfinite(s, r, "<grad_theta f, grad_theta g> / |grad_theta g|^2", scale);
    opt_save_iterate(s);
    for (int k = 0; k < s->nv; k++)
        opt_apply_update(s, k, NULL, bome_data(s->gq[k]), scale);
    return opt_take_theta_T(s, r);
}
