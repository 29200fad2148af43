/* The graphs of implicit differentiation at theta_T, built once: H p and
 * the mixed product are gradients of <grad_theta g, p> with respect to theta
 * and to v, over input nodes bound to the solver's buffers, so each product
 * is a plan run with no allocation. */
#include "aid.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int opt_aid_build(bome_solver *s, opt_aid *a, const char *method)
{
    bome_graph *g = s->g;
    int nv = s->nv, nt = s->nt;
    bome_node **pin = opt_zalloc(s, (size_t)nt, sizeof *pin), **uin = opt_zalloc(s, (size_t)nt, sizeof *uin);
    a->gf_v = opt_zalloc(s, (size_t)nv, sizeof *a->gf_v);
    a->gf_theta = opt_zalloc(s, (size_t)nt, sizeof *a->gf_theta);
    a->hp = opt_zalloc(s, (size_t)nt, sizeof *a->hp);
    a->mixed = opt_zalloc(s, (size_t)nv, sizeof *a->mixed);
    a->p = opt_buffers(s, nv, s->nk);
    a->u = opt_buffers(s, nv, s->nk);
    a->hv = opt_buffers(s, 0, nv);
    if (s->status)
        goto done;
    opt_bound_inputs(s, "p", a->p, pin);
    opt_bound_inputs(s, "u", a->u, uin);
    if (opt_inner_build(s))
        goto done;
    bome_vars at_T = opt_vars(s, s->inner);
    s->f = opt_build(s, "f(v, theta_T)", s->p->f, &at_T);
    if (s->f) {
        s->gk = s->g_inner;
        bome_grad(g, s->f, nt, s->inner, a->gf_theta);
        bome_grad(g, s->f, nv, s->x, a->gf_v);
        bome_grad(g, opt_block_dot(g, s->inner_grad, pin, nt), nt, s->inner, a->hp);
        bome_grad(g, opt_block_dot(g, s->inner_grad, uin, nt), nv, s->x, a->mixed);
    }
    char what[64];
    snprintf(what, sizeof what, "the %s graph", method);
    if (opt_check_graph(s, what))
        goto done;
    a->plan_grads = opt_plan_f_gk(s, a->gf_v, (size_t)nv, a->gf_theta, (size_t)nt);
    a->plan_hp = opt_plan(s, "H p", nt, a->hp);
    a->plan_mixed = opt_plan(s, "the mixed second derivative", nv, a->mixed);
done:
    opt_zfree(s, pin);
    opt_zfree(s, uin);
    return s->status;
}

int opt_aid_begin(bome_solver *s, opt_aid *a, bome_step_stats *r)
{
    int rc = opt_inner_loop(s, false);
    if (!rc)
        rc = opt_run(s, a->plan_grads, r);
    if (rc)
        return rc;
    r->f = bome_value(s->f); /* before the solve, whose errors name them */
    r->g = bome_value(s->gk);
    return BOME_OK;
}

/* p lives in a->p, where plan_hp reads it, so each term is one plan run
 * and an update in place. */
static int neumann(bome_solver *s, opt_aid *a, bome_step_stats *r, int n, double eta, bool released)
{
    int nv = s->nv, nt = s->nt;
    double w = released ? 1.0 : eta; /* each term's weight in u */
    for (int j = 0; j < nt; j++) {
        const bome_real *b = bome_data(a->gf_theta[j]);
        for (size_t i = 0; i < s->var[nv + j]->size; i++) {
            a->p[j][i] = b[i];
            a->u[j][i] = released ? 0.0 : eta * b[i];
        }
    }
    double pp = opt_dot_bufs(s, nv, nt, a->p, a->p);
    if (!isfinite(pp))
        return opt_stop_nonfinite(s, r, "|grad_theta f|^2", pp);
    int terms = released ? n : n - 1;
    for (int k = 0; k < terms && pp > 0; k++) { /* p = 0: every later term is 0 */
        int rc = bome_plan_run(a->plan_hp);
        if (rc)
            return opt_fail(s, rc, "step %ld, Neumann term %d: %s", r->step, k + 1, bome_graph_errmsg(s->g));
        for (int j = 0; j < nt; j++) {
            const bome_real *hp = bome_data(a->hp[j]);
            for (size_t i = 0; i < s->var[nv + j]->size; i++) {
                a->p[j][i] -= eta * hp[i];
                a->u[j][i] += w * a->p[j][i];
            }
        }
        pp = opt_dot_bufs(s, nv, nt, a->p, a->p);
        if (!isfinite(pp))
            return opt_stop_nonfinite(s, r, "a Neumann term's |(I - eta H)^i grad_theta f|^2", pp);
    }
    if (released)
        for (int j = 0; j < nt; j++)
            for (size_t i = 0; i < s->var[nv + j]->size; i++)
                a->u[j][i] += eta * a->p[j][i];
    return BOME_OK;
}

int opt_aid_neumann_step(bome_solver *s, opt_aid *a, bome_step_stats *r, int n, double eta, bool released)
{
    int rc = opt_aid_begin(s, a, r);
    if (!rc)
        rc = neumann(s, a, r, n, eta, released);
    if (!rc)
        rc = opt_aid_finish(s, a, r);
    return rc;
}

int opt_aid_finish(bome_solver *s, opt_aid *a, bome_step_stats *r)
{
    int rc = opt_run(s, a->plan_mixed, r);
    if (rc)
        return rc;
    for (int k = 0; k < s->nv; k++) {
        const bome_real *gv = bome_data(a->gf_v[k]), *m = bome_data(a->mixed[k]);
        for (size_t i = 0; i < s->var[k]->size; i++)
            a->hv[k][i] = gv[i] - m[i];
    }
    return opt_hyper_step(s, r, a->hv);
}

void opt_aid_free(bome_solver *s, opt_aid *a)
{
    opt_zfree(s, a->gf_v);
    opt_zfree(s, a->gf_theta);
    opt_zfree(s, a->hp);
    opt_zfree(s, a->mixed);
    opt_free_buffers(s, a->p, s->nt);
    opt_free_buffers(s, a->u, s->nt);
    opt_free_buffers(s, a->hv, s->nv);
}
