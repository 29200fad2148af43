/* The meta-learning estimators' shared machinery (meta.h). */
#include "meta.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int opt_meta_build(bome_solver *s, opt_meta *m, bool second_order)
{
    bome_graph *g = s->g;
    int nv = s->nv, nt = s->nt, T = s->o.T;
    m->second_order = second_order;
    m->gf_theta = opt_zalloc(s, (size_t)nt, sizeof *m->gf_theta);
    m->gf_v = opt_zalloc(s, (size_t)nv, sizeof *m->gf_v);
    m->est = opt_buffers(s, 0, nv);
    m->mean = opt_buffers(s, 0, nv);
    if (s->status || opt_inner_build(s))
        return s->status;
    bome_vars at_r = opt_vars(s, s->inner);
    s->f = opt_build(s, "f(v, theta_r)", s->p->f, &at_r);
    s->gk = s->g_inner;
    if (s->f) {
        opt_grad(s, s->f, nt, s->inner, m->gf_theta);
        opt_grad(s, s->f, nv, s->x, m->gf_v);
    }
    if (opt_check_graph(s, "f's gradients at theta_r"))
        return s->status;
    m->plan_out = opt_plan_f_gk(s, m->gf_theta, (size_t)nt, m->gf_v, (size_t)nv);
    if (!second_order || s->status)
        return s->status;
    /* the trajectory, and H u, (d2g/dv dtheta) u as gradients of <grad_theta g, u> */
    m->traj = opt_zalloc(s, (size_t)(T + 1) * (size_t)nt, sizeof *m->traj);
    m->u = opt_buffers(s, nv, s->nk);
    m->hp = opt_zalloc(s, (size_t)nt, sizeof *m->hp);
    m->mixed = opt_zalloc(s, (size_t)nv + (size_t)nt, sizeof *m->mixed);
    bome_node **uin = opt_zalloc(s, (size_t)nt, sizeof *uin);
    for (int t = 0; !s->status && t <= T; t++)
        for (int j = 0; j < nt; j++)
            if (!(m->traj[t * nt + j] = opt_zalloc(s, s->var[nv + j]->size, sizeof(bome_real))))
                break;
    if (s->status) {
        opt_zfree(s, uin);
        return s->status;
    }
    for (int j = 0; j < nt; j++) {
        char name[80];
        snprintf(name, sizeof name, "u_%s", s->var[nv + j]->name);
        uin[j] = bome_input(g, name, s->var[nv + j]->shape);
        bome_bind(g, uin[j], m->u[j]);
    }
    bome_node *gu = opt_block_dot(g, s->inner_grad, uin, nt);
    opt_grad(s, gu, nt, s->inner, m->hp);
    opt_grad(s, gu, nv, s->x, m->mixed);
    memcpy(m->mixed + nv, m->hp, (size_t)nt * sizeof *m->hp);
    opt_zfree(s, uin);
    if (opt_check_graph(s, "the reverse sweep"))
        return s->status;
    m->plan_back = opt_plan(s, "the reverse sweep", nv + nt, m->mixed);
    return s->status;
}

/* theta_0 from the caller's theta (set to v by the solver where the problem
 * says so), T plain steps, each iterate stored when a reverse sweep may
 * follow; then f's gradients at theta_r. */
static int forward(bome_solver *s, opt_meta *m, const bome_step_stats *r)
{
    int nv = s->nv, nt = s->nt;
    opt_vars_to_nodes(s, nv, nt, s->inner);
    for (int t = 0; t <= s->o.T; t++) {
        for (int j = 0; m->second_order && j < nt; j++)
            memcpy(m->traj[t * nt + j], bome_data(s->inner[j]), s->var[nv + j]->size * sizeof(bome_real));
        int rc = t < s->o.T ? opt_descend(s, s->inner, s->inner_grad, s->plan_inner, 1, s->o.alpha) : BOME_OK;
        if (rc)
            return rc;
    }
    return opt_run(s, m->plan_out, r);
}

/* out[i] += a[j] for every inner j that starts at outer i. */
static void add_start_terms(bome_solver *s, bome_real **out, bome_real *const *a)
{
    for (int j = 0; j < s->nt; j++) {
        int i = opt_inner_start(s, j);
        for (size_t k = 0; i >= 0 && k < s->var[i]->size; k++)
            out[i][k] += a[j][k];
    }
}

void opt_meta_first_order(bome_solver *s, opt_meta *m, bome_real **out)
{
    for (int i = 0; i < s->nv; i++)
        memcpy(out[i], bome_data(m->gf_v[i]), s->var[i]->size * sizeof(bome_real));
    for (int j = 0; j < s->nt; j++) {
        int i = opt_inner_start(s, j);
        const bome_real *a = bome_data(m->gf_theta[j]);
        for (size_t k = 0; i >= 0 && k < s->var[i]->size; k++)
            out[i][k] += a[k];
    }
}

int opt_meta_exact(bome_solver *s, opt_meta *m, bome_real **out, double clip, const bome_step_stats *r)
{
    int nv = s->nv, nt = s->nt;
    double alpha = s->o.alpha;
    for (int i = 0; i < nv; i++)
        memcpy(out[i], bome_data(m->gf_v[i]), s->var[i]->size * sizeof(bome_real));
    for (int j = 0; j < nt; j++)
        memcpy(m->u[j], bome_data(m->gf_theta[j]), s->var[nv + j]->size * sizeof(bome_real));
    for (int t = s->o.T - 1; t >= 0; t--) {
        for (int j = 0; j < nt; j++)
            memcpy(bome_data(s->inner[j]), m->traj[t * nt + j], s->var[nv + j]->size * sizeof(bome_real));
        int rc = opt_run(s, m->plan_back, r);
        if (rc)
            return rc;
        /* theta_{t+1} = theta_t - alpha grad_theta g(v, theta_t): its
         * v-Jacobian adds -alpha (d2g/dv dtheta) u, its theta-Jacobian maps
         * u to u - alpha H u */
        for (int i = 0; i < nv; i++) {
            const bome_real *mx = bome_data(m->mixed[i]);
            for (size_t k = 0; k < s->var[i]->size; k++)
                out[i][k] -= alpha * mx[k];
        }
        for (int j = 0; j < nt; j++) {
            const bome_real *hp = bome_data(m->hp[j]);
            for (size_t k = 0; k < s->var[nv + j]->size; k++) {
                double x = m->u[j][k] - alpha * hp[k];
                m->u[j][k] = clip > 0 ? fmax(-clip, fmin(clip, x)) : x;
            }
        }
    }
    add_start_terms(s, out, m->u);
    for (int j = 0; j < nt; j++) /* theta_r again, for what the step reports */
        memcpy(bome_data(s->inner[j]), m->traj[s->o.T * nt + j], s->var[nv + j]->size * sizeof(bome_real));
    return BOME_OK;
}

int opt_meta_step(bome_solver *s, opt_meta *m, void *state, bome_step_stats *r, opt_meta_estimate estimate)
{
    bome_problem *p = s->p;
    int nv = s->nv, batch = p->draw ? p->batch : 1;
    for (int i = 0; i < nv; i++)
        memset(m->mean[i], 0, s->var[i]->size * sizeof(bome_real));
    for (int b = 0; b < batch; b++) {
        if (p->draw) {
            int rc = p->draw(p->draw_ud, &s->rng, s->steps, b);
            if (rc)
                return opt_fail(s, rc, "step %ld: the task sampler returned %d for task %d", r->step, rc, b);
        }
        int rc = forward(s, m, r);
        if (!rc)
            rc = estimate(s, m, state, r);
        if (rc)
            return rc;
        r->f += bome_value(s->f) / batch;
        r->g += bome_value(s->gk) / batch;
        r->grad_evals += s->o.T + 1;
        for (int i = 0; i < nv; i++)
            for (size_t k = 0; k < s->var[i]->size; k++)
                m->mean[i][k] += m->est[i][k] / batch;
    }
    return opt_hyper_step(s, r, m->mean);
}

void opt_meta_free(bome_solver *s, opt_meta *m)
{
    opt_zfree(s, m->gf_theta);
    opt_zfree(s, m->gf_v);
    opt_zfree(s, m->hp);
    opt_zfree(s, m->mixed);
    opt_free_buffers(s, m->est, s->nv);
    opt_free_buffers(s, m->mean, s->nv);
    opt_free_buffers(s, m->u, s->nt);
    for (int t = 0; m->traj && t < (s->o.T + 1) * s->nt; t++)
        opt_zfree(s, m->traj[t]);
    opt_zfree(s, m->traj);
}
