/* BOME (Liu, Ye, Wright, Stone, Liu, NeurIPS 2022): T inner steps to
 * theta_T, q(v, theta) = g(v, theta) - g(v, stop_gradient(theta_T)), and one
 * step along grad f + lambda grad q over all of (v, theta). First order: the
 * graphs are plain gradients of f and of q, built once. */
#include "../method.h"
#include "qhat.h"

#include <math.h>
#include <string.h>

enum { ETA, PHI, LAMBDA_EPS };

static const opt_setting params[] = {
    OPT_REAL("eta", 0.5, 0, 1e300, "BOME's eta: phi = eta |grad q|^2 or eta q"),
    OPT_CHOICE("phi", BOME_PHI_GRAD, "grad|value", 2, "phi = eta |grad q|^2 (the paper's theory) or eta q (its code)"),
    OPT_REAL("lambda_eps", 1e-8, 0, 1e300, "added to |grad q|^2 in lambda's denominator"),
};

double bome_lambda(double phi, double dot_fq, double norm2_q, double eps)
{
    double l = (phi - dot_fq) / (norm2_q + eps);
    return l > 0 ? l : 0.0;
}

int opt_qhat_build(bome_solver *s, opt_qhat *b, const char *what)
{
    bome_graph *g = s->g;
    bome_node **frozen = opt_zalloc(s, (size_t)s->nt, sizeof *frozen);
    b->gf = opt_zalloc(s, (size_t)s->nk, sizeof *b->gf);
    b->gq = opt_zalloc(s, (size_t)s->nk, sizeof *b->gq);
    if (s->status)
        goto done;
    for (int j = 0; j < s->nt; j++)
        frozen[j] = bome_stop_gradient(g, s->inner[j]);
    bome_vars at_k = opt_vars(s, s->x + s->nv), at_T = opt_vars(s, frozen);
    s->f = opt_build(s, "f(v, theta)", s->p->f, &at_k);
    s->gk = opt_build(s, "g(v, theta)", s->p->g, &at_k);
    bome_node *gT = opt_build(s, "g(v, stop_gradient(theta_T))", s->p->g, &at_T);
    if (opt_inner_build(s))
        goto done;
    /* q = g(v, theta) - g(v, sg[theta_T]): its theta-gradient is g's at
     * theta_k, its v-gradient the difference of g's v-gradients. */
    b->q = bome_sub(g, s->gk, gT);
    opt_grad(s, s->f, s->nk, s->x, b->gf);
    opt_grad(s, b->q, s->nk, s->x, b->gq);
    if (opt_check_graph(s, what))
        goto done;
    bome_node **outs = opt_zalloc(s, 3 + 2 * (size_t)s->nk, sizeof *outs);
    if (outs) {
        outs[0] = s->f;
        outs[1] = s->gk;
        outs[2] = b->q;
        memcpy(outs + 3, b->gf, (size_t)s->nk * sizeof *outs);
        memcpy(outs + 3 + s->nk, b->gq, (size_t)s->nk * sizeof *outs);
        b->plan = opt_plan(s, what, 3 + 2 * s->nk, outs);
        opt_zfree(s, outs);
    }
done:
    opt_zfree(s, frozen);
    return s->status;
}

int opt_qhat_eval(bome_solver *s, opt_qhat *b, bome_step_stats *r, double *fq, double *qq)
{
    int rc = opt_run(s, b->plan, r);
    if (rc)
        return rc;
    r->f = bome_value(s->f);
    r->g = bome_value(s->gk);
    r->q = bome_value(b->q);
    /* over all of (v, theta), the three in one sum across workers */
    bome_node *const *a[3] = {b->gf, b->gf, b->gq}, *const *c[3] = {b->gf, b->gq, b->gq};
    double d[3];
    opt_dots_nodes(s, 0, s->nk, 3, a, c, d);
    if (s->status)
        return s->status;
    double ff = d[0];
    *fq = d[1];
    *qq = d[2];
    r->grad_f_norm = sqrt(ff);
    r->grad_q_norm = sqrt(*qq);
    /* min over l >= 0 of ||gf + l gq||^2 is at l = max(0, -<gf,gq>/||gq||^2). */
    double lk = *qq > 0 ? fmax(0.0, -*fq / *qq) : 0.0;
    r->kkt = fmax(0.0, ff + 2 * lk * *fq + lk * lk * *qq) + r->q;
    if (!isfinite(r->f) || !isfinite(r->g) || !isfinite(r->q) || !isfinite(*fq) || !isfinite(ff) || !isfinite(*qq)) {
        s->dead = true;
        return opt_fail(s, BOME_ERR_NONFINITE,
                        "step %ld: non-finite value (f = %g, g = %g, q = %g, |grad f|^2 = %g, |grad q|^2 = %g); "
                        "the variables hold the last finite iterate",
                        r->step, r->f, r->g, r->q, ff, *qq);
    }
    return BOME_OK;
}

int opt_qhat_update(bome_solver *s, opt_qhat *b, const bome_step_stats *r, double lr_scale)
{
    if (!isfinite(r->lambda))
        return opt_stop_nonfinite(s, r, "lambda", r->lambda);
    opt_save_iterate(s);
    for (int k = 0; k < s->nk; k++)
        opt_apply_update_scaled(s, k, bome_data(b->gf[k]), bome_data(b->gq[k]), r->lambda, lr_scale);
    return opt_check_iterate(s, r);
}

void opt_qhat_free(bome_solver *s, opt_qhat *b)
{
    opt_zfree(s, b->gf);
    opt_zfree(s, b->gq);
}

static int build(bome_solver *s, void *st) { return opt_qhat_build(s, st, "the BOME graph"); }

static int step(bome_solver *s, void *st, bome_step_stats *r)
{
    double fq, qq;
    r->grad_evals = s->o.T + 3; /* T inner; f; q: g at theta_k and at theta_T */
    int rc = opt_inner_loop(s, true);
    if (!rc)
        rc = opt_qhat_eval(s, st, r, &fq, &qq);
    if (rc)
        return rc;
    double eta = opt_param(s, ETA), eps = opt_param(s, LAMBDA_EPS);
    if ((int)opt_param(s, PHI) == BOME_PHI_GRAD) {
        /* As the released toys compute it: eta - <gf, gq> / (|gq|^2 + eps),
         * which stays near eta when |gq|^2 << eps instead of shrinking to 0. */
        r->phi = eta * qq;
        double l = eta - fq / (qq + eps);
        r->lambda = l > 0 ? l : 0.0;
    } else {
        r->phi = eta * r->q;
        r->lambda = bome_lambda(r->phi, fq, qq, eps);
    }
    return opt_qhat_update(s, st, r, 1.0);
}

static void release(bome_solver *s, void *st) { opt_qhat_free(s, st); }

const opt_method opt_method_bome = {
    "bome", "BOME: first order, T inner steps, q = g - g(theta_T), adaptive lambda (the paper's method)", 1,
    OPT_INNER_LOOP | OPT_KEEPS_MOMENTUM, sizeof(opt_qhat), OPT_PARAMS(params), build, step, release,
};
