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
    a->w = opt_buffers(s, nv, s->nk);
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
        opt_grad(s, s->f, nt, s->inner, a->gf_theta);
        opt_grad(s, s->f, nv, s->x, a->gf_v);
        opt_grad(s, opt_block_dot(g, s->inner_grad, pin, nt), nt, s->inner, a->hp);
        opt_grad(s, opt_block_dot(g, s->inner_grad, uin, nt), nv, s->x, a->mixed);
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
    r->grad_evals = s->o.T + 1; /* T inner, f's at theta_T */
    int rc = opt_inner_loop(s, a->keep_momentum);
    if (!rc)
        rc = opt_run(s, a->plan_grads, r);
    if (rc)
        return rc;
    r->f = bome_value(s->f); /* before the solve, whose errors name them */
    r->g = bome_value(s->gk);
    return BOME_OK;
}

/* One loop for both recursions, so that p, the products' input, lives in
 * a->p where plan_hp reads it and each iteration is one plan run:
 *   p = b - lr a;  d = H p + grad_theta f;  a += d;  b = mu p
 * from a = b = 0, the transposed heavy-ball map (one product: H a and H b
 * enter only as H (b - lr a)); with mu = 0, d_k = (I - lr H)^k grad_theta f
 * and a the Neumann sum. The states: a in a->u and b in a->w, finished in
 * place as u = lr a - b; released: a in a->w and u summing the d_k. */
static int series(bome_solver *s, opt_aid *a, bome_step_stats *r, int iters, double lr, double mu, bool released)
{
    int nv = s->nv, nt = s->nt;
    bome_real **A = released ? a->w : a->u, **B = released ? NULL : a->w;
    for (int j = 0; j < nt; j++) {
        size_t n = s->var[nv + j]->size * sizeof(bome_real);
        memset(a->u[j], 0, n);
        memset(a->w[j], 0, n);
        memset(a->p[j], 0, n);
    }
    for (int k = 0; k < iters; k++) {
        if (k > 0) { /* at k = 0, p = 0 and so is H p */
            for (int j = 0; j < nt; j++)
                for (size_t i = 0; i < s->var[nv + j]->size; i++)
                    a->p[j][i] = (B ? B[j][i] : 0.0) - lr * A[j][i];
            r->hvp_evals++;
            int rc = opt_run_plan(s, a->plan_hp);
            if (rc)
                return opt_fail(s, rc, "step %ld, series term %d: %s", r->step, k + 1, opt_run_errmsg(s));
        }
        double dd = 0, dd_shard = 0; /* |d|^2, replicated and sharded blocks */
        double wu = k == 0 ? 0.0 : k == iters - 1 ? 1.0 + lr : 1.0; /* released: d_k's weight in u */
        for (int j = 0; j < nt; j++) {
            const bome_real *gf = bome_data(a->gf_theta[j]), *hp = bome_data(a->hp[j]);
            double *acc = opt_sharded(s, nv + j) ? &dd_shard : &dd;
            for (size_t i = 0; i < s->var[nv + j]->size; i++) {
                double d = (k ? hp[i] : 0.0) + gf[i];
                *acc += d * d;
                A[j][i] += d;
                if (B)
                    B[j][i] = mu * a->p[j][i];
                else
                    a->u[j][i] += wu * d;
            }
        }
        opt_totals(s, 1, &dd, &dd_shard, s->any_sharded, &dd);
        if (!isfinite(dd))
            return opt_stop_nonfinite(s, r, "a series term's |d|^2", dd);
    }
    for (int j = 0; !released && j < nt; j++)
        for (size_t i = 0; i < s->var[nv + j]->size; i++)
            a->u[j][i] = lr * a->u[j][i] - a->w[j][i];
    return BOME_OK;
}

int opt_aid_series_step(bome_solver *s, opt_aid *a, bome_step_stats *r, int iters, double lr, double mu,
                        bool released)
{
    int rc = opt_aid_begin(s, a, r);
    if (!rc)
        rc = series(s, a, r, iters, lr, mu, released);
    if (!rc)
        rc = opt_aid_finish(s, a, r);
    return rc;
}

int opt_aid_finish(bome_solver *s, opt_aid *a, bome_step_stats *r)
{
    r->hvp_evals++;
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
    opt_free_buffers(s, a->w, s->nt);
    opt_free_buffers(s, a->hv, s->nv);
}
