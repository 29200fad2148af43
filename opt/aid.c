/* AID-CG, implicit differentiation: after T inner steps to theta_T,
 *   d f / d v = grad_v f - (d2 g / dv dtheta) u,   H u = grad_theta f,
 * with H = d2 g / dtheta2 at (v, theta_T) and u from cg_steps of conjugate
 * gradients. H p and the mixed product are gradients of <grad_theta g, p>
 * with respect to theta and to v: graphs built once over input nodes that
 * are bound to the CG buffers, so each product is a plan run. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

struct aid_state {
    bome_node **gf_theta;          /* nt: grad_theta f at theta_T */
    bome_node **hp, **mixed;       /* nt: H p; nv: (d2g/dv dtheta) u */
    bome_plan *plan_grads, *plan_hp, *plan_mixed;
    bome_real **r, **p, **u;       /* nt CG buffers; p and u are bound inputs */
    bome_real **hv;                /* nv: the hypergradient */
};

/* One buffer per variable from..to-1. */
static bome_real **buffers(bome_solver *s, int from, int to)
{
    bome_real **b = opt_zalloc(s, (size_t)(to - from), sizeof *b);
    for (int k = from; b && k < to; k++)
        b[k - from] = opt_zalloc(s, s->var[k]->size, sizeof(bome_real));
    return b;
}

static void free_buffers(bome_solver *s, bome_real **b, int n)
{
    for (int k = 0; b && k < n; k++)
        opt_zfree(s, b[k]);
    opt_zfree(s, b);
}

void opt_aid_free(bome_solver *s)
{
    struct aid_state *a = s ? s->aid : NULL;
    if (!a)
        return;
    opt_zfree(s, a->gf_theta);
    opt_zfree(s, a->hp);
    opt_zfree(s, a->mixed);
    free_buffers(s, a->r, s->nt);
    free_buffers(s, a->p, s->nt);
    free_buffers(s, a->u, s->nt);
    free_buffers(s, a->hv, s->nv);
    opt_zfree(s, a);
    s->aid = NULL;
}

/* <a, b> summed over the nt blocks of theta. */
static bome_node *block_dot(bome_graph *g, bome_node *const *a, bome_node *const *b, int n)
{
    bome_node *sum = NULL;
    for (int j = 0; j < n; j++) {
        bome_node *d = bome_dot(g, a[j], b[j]);
        sum = sum ? bome_add(g, sum, d) : d;
    }
    return sum;
}

int opt_aid_build(bome_solver *s, bome_node **data)
{
    bome_problem *pr = s->p;
    bome_graph *g = s->g;
    int nv = s->nv, nt = s->nt;
    struct aid_state *a = s->aid = opt_zalloc(s, 1, sizeof *a);
    bome_node **pin = opt_zalloc(s, (size_t)nt, sizeof *pin), **uin = opt_zalloc(s, (size_t)nt, sizeof *uin);
    bome_node **g_theta = opt_zalloc(s, (size_t)nt, sizeof *g_theta);
    if (a) {
        a->gf_theta = opt_zalloc(s, (size_t)nt, sizeof *a->gf_theta);
        a->hp = opt_zalloc(s, (size_t)nt, sizeof *a->hp);
        a->mixed = opt_zalloc(s, (size_t)nv, sizeof *a->mixed);
        a->r = buffers(s, nv, s->nk);
        a->p = buffers(s, nv, s->nk);
        a->u = buffers(s, nv, s->nk);
        a->hv = buffers(s, 0, nv);
    }
    if (s->status)
        goto done;
    for (int j = 0; j < nt; j++) {
        const opt_var *v = s->var[nv + j];
        char name[80];
        snprintf(name, sizeof name, "cg_p_%s", v->name);
        pin[j] = bome_input(g, name, v->shape);
        bome_bind(g, pin[j], a->p[j]);
        snprintf(name, sizeof name, "cg_u_%s", v->name);
        uin[j] = bome_input(g, name, v->shape);
        bome_bind(g, uin[j], a->u[j]);
    }
    /* The inner loop's graph, as BOME's, and everything else at theta_T. */
    bome_vars at_T = {s->x, s->inner, data, nv, nt, pr->n_data};
    bome_node *gt = opt_build(s, "g(v, theta_t) for the inner loop", pr->g, &at_T);
    if (gt)
        bome_grad(g, gt, nt, s->inner, s->inner_grad);
    if (gt)
        s->f = opt_build(s, "f(v, theta_T)", pr->f, &at_T);
    if (s->f) {
        s->gk = gt;
        bome_grad(g, s->f, nt, s->inner, a->gf_theta);
        bome_grad(g, s->f, nv, s->x, s->gf); /* the direct part, grad_v f */
        memcpy(g_theta, s->inner_grad, (size_t)nt * sizeof *g_theta);
        bome_grad(g, block_dot(g, g_theta, pin, nt), nt, s->inner, a->hp);
        bome_grad(g, block_dot(g, g_theta, uin, nt), nv, s->x, a->mixed);
    }
    if (s->status)
        goto done;
    if (bome_graph_status(g)) {
        opt_fail(s, bome_graph_status(g), "building the AID-CG graph: %s", bome_graph_errmsg(g));
        goto done;
    }
    s->plan_inner = bome_plan_new(g, nt, s->inner_grad);
    a->plan_grads = opt_plan_f_gk(s, s->gf, (size_t)nv, a->gf_theta, (size_t)nt);
    a->plan_hp = bome_plan_new(g, nt, a->hp);
    a->plan_mixed = bome_plan_new(g, nv, a->mixed);
    if (!s->status && (!s->plan_inner || !a->plan_grads || !a->plan_hp || !a->plan_mixed))
        opt_fail(s, bome_graph_status(g), "planning AID-CG: %s", bome_graph_errmsg(g));
done:
    opt_zfree(s, pin);
    opt_zfree(s, uin);
    opt_zfree(s, g_theta);
    return s->status;
}

static double dot_blocks(const bome_solver *s, bome_real *const *x, bome_real *const *y)
{
    double d = 0;
    for (int j = 0; j < s->nt; j++)
        for (size_t i = 0; i < s->var[s->nv + j]->size; i++)
            d += x[j][i] * y[j][i];
    return d;
}

/* H u = b by conjugate gradients from u = 0, b = grad_theta f; stops early
 * once the residual vanishes. */
static int solve(bome_solver *s, bome_step_stats *r)
{
    struct aid_state *a = s->aid;
    for (int j = 0; j < s->nt; j++) {
        size_t n = s->var[s->nv + j]->size;
        memset(a->u[j], 0, n * sizeof(bome_real));
        memcpy(a->r[j], bome_data(a->gf_theta[j]), n * sizeof(bome_real));
        memcpy(a->p[j], a->r[j], n * sizeof(bome_real));
    }
    double rr = dot_blocks(s, a->r, a->r);
    if (!isfinite(rr))
        return opt_stop_nonfinite(s, r, "|grad_theta f|^2", rr);
    for (int k = 0; k < s->o.cg_steps && rr > 0; k++) {
        int rc = bome_plan_run(a->plan_hp);
        if (rc)
            return opt_fail(s, rc, "step %ld, CG iteration %d: %s", r->step, k + 1, bome_graph_errmsg(s->g));
        double pHp = 0;
        for (int j = 0; j < s->nt; j++) {
            const bome_real *hp = bome_data(a->hp[j]);
            for (size_t i = 0; i < s->var[s->nv + j]->size; i++)
                pHp += a->p[j][i] * hp[i];
        }
        if (!isfinite(pHp))
            return opt_stop_nonfinite(s, r, "p'Hp", pHp);
        if (!(pHp > 0)) /* H is not positive along p: keep what CG has */
            break;
        double step = rr / pHp;
        for (int j = 0; j < s->nt; j++) {
            const bome_real *hp = bome_data(a->hp[j]);
            for (size_t i = 0; i < s->var[s->nv + j]->size; i++) {
                a->u[j][i] += step * a->p[j][i];
                a->r[j][i] -= step * hp[i];
            }
        }
        double rr_next = dot_blocks(s, a->r, a->r);
        if (!isfinite(rr_next))
            return opt_stop_nonfinite(s, r, "the CG residual", rr_next);
        for (int j = 0; j < s->nt; j++)
            for (size_t i = 0; i < s->var[s->nv + j]->size; i++)
                a->p[j][i] = a->r[j][i] + rr_next / rr * a->p[j][i];
        rr = rr_next;
    }
    return BOME_OK;
}

int opt_aid_step(bome_solver *s, bome_step_stats *r)
{
    struct aid_state *a = s->aid;
    int rc = opt_inner_loop(s);
    if (!rc && (rc = bome_plan_run(a->plan_grads)))
        opt_fail(s, rc, "step %ld: %s", r->step, bome_graph_errmsg(s->g));
    if (rc)
        return rc;
    r->f = bome_value(s->f); /* before the solve, whose errors name them */
    r->g = bome_value(s->gk);
    rc = solve(s, r);
    if (!rc && (rc = bome_plan_run(a->plan_mixed)))
        opt_fail(s, rc, "step %ld: %s", r->step, bome_graph_errmsg(s->g));
    if (rc)
        return rc;
    double hh = 0;
    for (int k = 0; k < s->nv; k++) {
        const bome_real *gv = bome_data(s->gf[k]), *m = bome_data(a->mixed[k]);
        for (size_t i = 0; i < s->var[k]->size; i++) {
            a->hv[k][i] = gv[i] - m[i];
            hh += a->hv[k][i] * a->hv[k][i];
        }
    }
    r->grad_f_norm = sqrt(hh);
    r->kkt = hh;
    if (!isfinite(r->f) || !isfinite(r->g) || !isfinite(hh))
        return opt_stop_nonfinite(s, r, "|hypergradient|^2", hh);
    opt_save_iterate(s);
    for (int k = 0; k < s->nv; k++)
        opt_apply_update(s, k, a->hv[k], NULL, 0.0);
    return opt_take_theta_T(s, r);
}
