/* The outer update shared by every method: SGD, PyTorch momentum or Adam,
 * the box projection, and the guard that keeps the last finite iterate. */
#include "solver.h"

#include <math.h>
#include <string.h>

void opt_project(const opt_var *v, bome_real *x)
{
    if (v->bounded)
        for (size_t i = 0; i < v->size; i++)
            x[i] = x[i] < v->lo ? v->lo : (x[i] > v->hi ? v->hi : x[i]);
}

void opt_apply_update(bome_solver *s, int k, const bome_real *gf, const bome_real *gq, double lambda)
{
    opt_apply_update_scaled(s, k, gf, gq, lambda, 1.0);
}

void opt_apply_update_scaled(bome_solver *s, int k, const bome_real *gf, const bome_real *gq, double lambda,
                             double lr_scale)
{
    const bome_options *o = &s->o;
    opt_var *v = s->var[k];
    bome_real *x = v->values, *m1 = s->m1[k], *m2 = s->m2 ? s->m2[k] : NULL;
    double lr = lr_scale * (k < s->nv ? o->lr_outer : o->lr_inner) / (o->lr_decay ? (double)(s->steps + 1) : 1.0);
    size_t n = v->size;
#define D(i) (!gq ? gf[i] : gf ? gf[i] + lambda * gq[i] : lambda * gq[i])
    if (o->update == BOME_UPDATE_SGD) {
        for (size_t i = 0; i < n; i++)
            x[i] -= lr * D(i);
    } else if (o->update == BOME_UPDATE_MOMENTUM) {
        double mu = s->steps ? o->momentum : 0.0;
        for (size_t i = 0; i < n; i++) {
            m1[i] = mu * m1[i] + D(i);
            x[i] -= lr * m1[i];
        }
    } else {
        double t = (double)(s->steps + 1);
        double c1 = 1.0 - pow(o->adam_beta1, t), c2 = 1.0 - pow(o->adam_beta2, t);
        for (size_t i = 0; i < n; i++) {
            double d = D(i);
            m1[i] = o->adam_beta1 * m1[i] + (1 - o->adam_beta1) * d;
            m2[i] = o->adam_beta2 * m2[i] + (1 - o->adam_beta2) * d * d;
            x[i] -= lr * (m1[i] / c1) / (sqrt(m2[i] / c2) + o->adam_eps);
        }
    }
#undef D
    opt_project(v, x);
}

void opt_save_iterate(bome_solver *s)
{
    for (int k = 0; k < s->nk; k++)
        memcpy(s->prev[k], s->var[k]->values, s->var[k]->size * sizeof(bome_real));
}

void opt_restore_iterate(bome_solver *s)
{
    for (int k = 0; k < s->nk; k++)
        memcpy(s->var[k]->values, s->prev[k], s->var[k]->size * sizeof(bome_real));
}

int opt_check_iterate(bome_solver *s, const bome_step_stats *r)
{
    double bad[1] = {0}, shard[1] = {0}, out;
    for (int k = 0; k < s->nk; k++)
        for (size_t i = 0; i < s->var[k]->size; i++)
            if (!isfinite(s->var[k]->values[i])) {
                *(s->var[k]->sharded ? shard : bad) = 1;
                break;
            }
    /* a shard may overflow on one worker only: all restore and stop */
    opt_totals(s, 1, bad, shard, s->any_sharded, &out);
    if (s->status)
        return s->status;
    if (out == 0)
        return BOME_OK;
    /* finite gradients, but a step too large for doubles */
    opt_restore_iterate(s);
    s->dead = true;
    return opt_fail(s, BOME_ERR_NONFINITE,
                    "step %ld: the update gave a non-finite value (lambda = %g); the variables hold the last "
                    "finite iterate",
                    r->step, r->lambda);
}

int opt_stop_nonfinite(bome_solver *s, const bome_step_stats *r, const char *what, double value)
{
    s->dead = true;
    return opt_fail(s, BOME_ERR_NONFINITE,
                    "step %ld: non-finite value (f = %g, g = %g, %s = %g); the variables hold the last finite iterate",
                    r->step, r->f, r->g, what, value);
}

int opt_take_theta_T(bome_solver *s, const bome_step_stats *r)
{
    opt_nodes_to_vars(s, s->nv, s->nt, s->inner);
    return opt_check_iterate(s, r);
}

int opt_hyper_step(bome_solver *s, bome_step_stats *r, bome_real *const *hv)
{
    double hh = opt_dot_bufs(s, 0, s->nv, hv, hv);
    r->grad_f_norm = sqrt(hh);
    r->kkt = hh;
    if (!isfinite(r->f) || !isfinite(r->g) || !isfinite(hh) || !opt_nodes_finite(s, s->nv, s->nt, s->inner))
        return opt_stop_nonfinite(s, r, "|hypergradient|^2 (or theta_T)", hh);
    opt_save_iterate(s);
    for (int k = 0; k < s->nv; k++)
        opt_apply_update(s, k, hv[k], NULL, 0.0);
    return opt_take_theta_T(s, r);
}

int opt_v_step(bome_solver *s, bome_step_stats *r, bome_node *const *dv, double lr_scale)
{
    double hh = opt_dot_nodes(s, 0, s->nv, dv, dv);
    r->f = bome_value(s->f);
    r->g = bome_value(s->gk);
    r->grad_f_norm = sqrt(hh);
    r->kkt = hh;
    if (!isfinite(r->f) || !isfinite(r->g) || !isfinite(hh) || !opt_nodes_finite(s, s->nv, s->nt, s->x + s->nv)) {
        opt_restore_iterate(s);
        return opt_stop_nonfinite(s, r, "|v's direction|^2 (or theta)", hh);
    }
    for (int k = 0; k < s->nv; k++)
        opt_apply_update_scaled(s, k, bome_data(dv[k]), NULL, 0.0, lr_scale);
    return opt_check_iterate(s, r);
}
