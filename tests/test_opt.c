/*
 * tests/test_opt.c: the BOME solver (opt/bome.c, opt/problem.c).
 *
 * Most tests use one small problem with two outer variables (v in R^3, c a
 * scalar) and two inner ones (theta in R^3, s a scalar):
 *
 *   g = sum(exp(v) theta^2)/2 - v.theta + 0.05 |theta|^4 + (s - c)^2/2 + 0.1 s^4
 *   f = a (sum(tanh(v theta)) + |theta - y0|^2/2 + 0.3 |v|^2 + 0.7 c s
 *          [+ noise.theta]) + b g
 *
 * and checks what the solver reports and does against a SEPARATE plain ad
 * graph of f and g built here: theta_T by T explicit gradient steps, q-hat's
 * gradient as the reference defines it (grad_v g(v, theta_k) - grad_v
 * g(v, theta_T), grad_theta g(v, theta_k)), lambda, the KKT residual and the
 * update rules computed by hand. The flattened order of (v, c, theta, s) is
 * the solver's: outer variables first, then inner ones, each in declaration
 * order.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <bome/opt.h>

#include "cases.h"

enum { NX = 8 };
static const int OFF[4] = {0, 3, 4, 7}, SZ[4] = {3, 1, 3, 1};
static const bome_real X0[NX] = {0.2, -0.1, 0.4, 0.3, 0.5, -0.4, 0.8, 0.6};
static const bome_real Y0[3] = {0.3, -0.2, 0.5};

/* |a - b| <= tol max(1, |b|) */
#define CLOSE(a, b, tol)                                                                                    \
    do {                                                                                                    \
        double a_ = (a), b_ = (b);                                                                          \
        cr_assert(fabs(a_ - b_) <= (tol) * fmax(1.0, fabs(b_)), "%s = %.17g, expected %.17g", #a, a_, b_); \
    } while (0)

/* ---- The problem's builders -------------------------------------------------- */

typedef struct fctx {
    double a, b; /* f = a f0 + b g */
} fctx;

static bome_node *g_fn(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_node *v = x->v[0], *c = x->v[1], *th = x->theta[0], *s = x->theta[1];
    bome_node *a = bome_scale(G, bome_sum(G, bome_mul(G, bome_exp(G, v), bome_square(G, th))), 0.5);
    bome_node *b = bome_dot(G, v, th);
    bome_node *quart = bome_scale(G, bome_square(G, bome_sumsq(G, th)), 0.05);
    bome_node *d = bome_scale(G, bome_square(G, bome_sub(G, s, c)), 0.5);
    bome_node *e = bome_scale(G, bome_square(G, bome_square(G, s)), 0.1);
    return bome_add(G, bome_add(G, bome_sub(G, a, b), quart), bome_add(G, d, e));
}

static bome_node *f_fn(bome_graph *G, const bome_vars *x, void *ctx)
{
    const fctx *k = ctx;
    bome_node *v = x->v[0], *c = x->v[1], *th = x->theta[0], *s = x->theta[1];
    bome_node *y0 = bome_const(G, BOME_VECTOR(3), Y0);
    bome_node *f0 = bome_add(G, bome_sum(G, bome_tanh(G, bome_mul(G, v, th))),
                             bome_scale(G, bome_sumsq(G, bome_sub(G, th, y0)), 0.5));
    f0 = bome_add(G, f0, bome_scale(G, bome_sumsq(G, v), 0.3));
    f0 = bome_add(G, f0, bome_scale(G, bome_mul(G, c, s), 0.7));
    if (x->n_data > 0)
        f0 = bome_add(G, f0, bome_dot(G, x->data[0], th));
    return bome_add(G, bome_scale(G, f0, k->a), bome_scale(G, g_fn(G, x, ctx), k->b));
}

/* Declares (v, c, theta, s) in x[NX] and, if noise is not NULL, the input. */
static bome_problem *make_problem(bome_real *x, fctx *ctx, const bome_real *noise)
{
    bome_problem *p = bome_problem_new();
    cr_assert_not_null(p);
    cr_assert_eq(bome_problem_add_outer(p, "v", BOME_VECTOR(3), x + OFF[0]), 0);
    cr_assert_eq(bome_problem_add_outer(p, "c", BOME_SCALAR, x + OFF[1]), 1);
    cr_assert_eq(bome_problem_add_inner(p, "theta", BOME_VECTOR(3), x + OFF[2]), 0);
    cr_assert_eq(bome_problem_add_inner(p, "s", BOME_SCALAR, x + OFF[3]), 1);
    if (noise)
        cr_assert_eq(bome_problem_add_input(p, "noise", BOME_VECTOR(3), noise), 0);
    cr_assert_eq(bome_problem_set_objectives(p, f_fn, g_fn, ctx), BOME_OK);
    cr_assert_eq(bome_problem_status(p), BOME_OK, "%s", bome_problem_errmsg(p));
    return p;
}

static bome_solver *make_solver(bome_problem *p, const bome_options *o)
{
    bome_solver *s = bome_solver_new(p, o);
    cr_assert_not_null(s);
    cr_assert_eq(bome_solver_status(s), BOME_OK, "%s", bome_solver_errmsg(s));
    return s;
}

/* ---- The reference: a plain ad graph of f, g and their gradients ---------- */

typedef struct ref {
    bome_graph *G;
    bome_node *p[4], *f, *g, *gf[4], *gg[4];
} ref;

static void ref_init(ref *r, fctx *ctx, const bome_real *noise)
{
    static const char *names[4] = {"v", "c", "theta", "s"};
    r->G = bome_graph_new();
    cr_assert_not_null(r->G);
    for (int i = 0; i < 4; i++)
        r->p[i] = bome_param(r->G, names[i], i == 1 || i == 3 ? BOME_SCALAR : BOME_VECTOR(3));
    bome_node *data[1] = {NULL};
    if (noise) {
        data[0] = bome_input(r->G, "noise", BOME_VECTOR(3));
        bome_bind(r->G, data[0], (bome_real *)noise);
    }
    bome_vars vars = {r->p, r->p + 2, data, 2, 2, noise ? 1 : 0};
    r->f = f_fn(r->G, &vars, ctx);
    r->g = g_fn(r->G, &vars, ctx);
    bome_grad(r->G, r->f, 4, r->p, r->gf);
    bome_grad(r->G, r->g, 4, r->p, r->gg);
    cr_assert_eq(bome_graph_status(r->G), BOME_OK, "%s", bome_graph_errmsg(r->G));
}

/* f, g and their gradients (flattened, NX each) at the point x. */
static void ref_eval(ref *r, const bome_real *x, double *f, double *g, double *gf, double *gg)
{
    for (int i = 0; i < 4; i++)
        bome_set(r->G, r->p[i], x + OFF[i]);
    bome_node *outs[10] = {r->f, r->g};
    memcpy(outs + 2, r->gf, sizeof r->gf);
    memcpy(outs + 6, r->gg, sizeof r->gg);
    cr_assert_eq(bome_eval(r->G, 10, outs), BOME_OK, "%s", bome_graph_errmsg(r->G));
    if (f)
        *f = bome_value(r->f);
    if (g)
        *g = bome_value(r->g);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < SZ[i]; j++) {
            if (gf)
                gf[OFF[i] + j] = bome_data(r->gf[i])[j];
            if (gg)
                gg[OFF[i] + j] = bome_data(r->gg[i])[j];
        }
}

/* Boxes per coordinate (+-inf: none). */
typedef struct box { double lo[NX], hi[NX]; } box;

static void no_box(box *b)
{
    for (int i = 0; i < NX; i++)
        b->lo[i] = -INFINITY, b->hi[i] = INFINITY;
}

static double clampd(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }

typedef struct expect {
    double f, g, q, phi, lambda, gf_norm, gq_norm, kkt;
    double gf[NX], gq[NX], d[NX];
    double theta_T[NX]; /* the whole point, with (theta, s) replaced by the inner result */
} expect;

/* theta_T by T explicit (projected, optionally momentum) gradient steps on
 * g(v, .) from x, as the reference defines the inner loop. */
static void inner_T(ref *r, const bome_options *o, const box *b, const bome_real *x, bome_real *xt)
{
    double gg[NX], buf[NX] = {0};
    memcpy(xt, x, NX * sizeof *xt);
    for (int t = 0; t < o->T; t++) {
        ref_eval(r, xt, NULL, NULL, NULL, gg);
        for (int i = OFF[2]; i < NX; i++) {
            buf[i] = (t ? o->inner_momentum * buf[i] : 0.0) + gg[i];
            xt[i] -= o->alpha * (o->inner_momentum > 0 ? buf[i] : gg[i]);
            xt[i] = clampd(xt[i], b->lo[i], b->hi[i]);
        }
    }
}

static double dot(const double *a, const double *b)
{
    double s = 0;
    for (int i = 0; i < NX; i++)
        s += a[i] * b[i];
    return s;
}

/* Everything one BOME step at x should report and do, from the reference. */
static void expected(ref *r, const bome_options *o, const box *b, const bome_real *x, expect *e)
{
    double ggk[NX], ggT[NX], gT;
    ref_eval(r, x, &e->f, &e->g, e->gf, ggk);
    inner_T(r, o, b, x, e->theta_T);
    ref_eval(r, e->theta_T, NULL, &gT, NULL, ggT);
    e->q = e->g - gT;
    for (int i = 0; i < NX; i++)
        e->gq[i] = i < OFF[2] ? ggk[i] - ggT[i] : ggk[i];
    double fq = dot(e->gf, e->gq), ff = dot(e->gf, e->gf), qq = dot(e->gq, e->gq);
    e->phi = o->eta * (o->phi == BOME_PHI_GRAD ? qq : e->q);
    e->lambda = fmax((e->phi - fq) / (qq + 1e-8), 0.0);
    e->gf_norm = sqrt(ff);
    e->gq_norm = sqrt(qq);
    double l = qq > 0 ? fmax(0.0, -fq / qq) : 0.0;
    e->kkt = ff + 2 * l * fq + l * l * qq + e->q;
    for (int i = 0; i < NX; i++)
        e->d[i] = e->gf[i] + e->lambda * e->gq[i];
}

static void check_stats(const bome_step_stats *st, const expect *e, double tol)
{
    CLOSE(st->f, e->f, tol);
    CLOSE(st->g, e->g, tol);
    CLOSE(st->q, e->q, tol);
    CLOSE(st->phi, e->phi, tol);
    CLOSE(st->lambda, e->lambda, tol);
    CLOSE(st->grad_f_norm, e->gf_norm, tol);
    CLOSE(st->grad_q_norm, e->gq_norm, tol);
    CLOSE(st->kkt, e->kkt, tol);
}

/* The outer update rules by hand, per coordinate. */
typedef struct emu { double m1[NX], m2[NX]; long t; } emu;

static void emu_step(emu *m, const bome_options *o, const box *b, bome_real *x, const double *d)
{
    for (int i = 0; i < NX; i++) {
        double lr = i < OFF[2] ? o->lr_outer : o->lr_inner;
        if (o->update == BOME_UPDATE_SGD) {
            x[i] -= lr * d[i];
        } else if (o->update == BOME_UPDATE_MOMENTUM) {
            m->m1[i] = m->t == 0 ? d[i] : o->momentum * m->m1[i] + d[i];
            x[i] -= lr * m->m1[i];
        } else {
            m->m1[i] = o->adam_beta1 * m->m1[i] + (1 - o->adam_beta1) * d[i];
            m->m2[i] = o->adam_beta2 * m->m2[i] + (1 - o->adam_beta2) * d[i] * d[i];
            double mh = m->m1[i] / (1 - pow(o->adam_beta1, (double)(m->t + 1)));
            double vh = m->m2[i] / (1 - pow(o->adam_beta2, (double)(m->t + 1)));
            x[i] -= lr * mh / (sqrt(vh) + o->adam_eps);
        }
        x[i] = clampd(x[i], b->lo[i], b->hi[i]);
    }
    m->t++;
}

static void opts(bome_options *o, int T, double alpha, double lr_outer, double lr_inner)
{
    bome_options_default(o);
    o->T = T;
    o->alpha = alpha;
    o->lr_outer = lr_outer;
    o->lr_inner = lr_inner;
}

/* ---- q-hat's gradients ---------------------------------------------------- */

Test(qhat, stats_with_zero_lr_match_explicit_evaluation)
{
    fctx k = {1, 0};
    bome_real x[NX];
    memcpy(x, X0, sizeof x);
    bome_problem *p = make_problem(x, &k, NULL);
    bome_options o;
    opts(&o, 7, 0.1, 0, 0);
    bome_solver *s = make_solver(p, &o);
    ref r;
    ref_init(&r, &k, NULL);
    box b;
    no_box(&b);
    expect e;
    expected(&r, &o, &b, x, &e);
    /* The check is only meaningful if the inner loop moved and q-hat's
     * v-gradient is not zero. */
    cr_assert_gt(e.q, 1e-3);
    cr_assert_gt(fabs(e.gq[0]) + fabs(e.gq[3]), 1e-3);
    for (int step = 0; step < 3; step++) {
        bome_step_stats st;
        cr_assert_eq(bome_solver_step(s, &st), BOME_OK, "%s", bome_solver_errmsg(s));
        cr_assert_eq(st.step, step + 1);
        check_stats(&st, &e, 1e-10);
        for (int i = 0; i < NX; i++)
            cr_assert_eq(x[i], X0[i], "lr 0 moved x[%d]", i);
    }
    bome_solver_free(s);
    bome_problem_free(p);
    bome_graph_free(r.G);
}

/* x_new - x_old = -lr (grad f + lambda grad q-hat), coordinate by coordinate,
 * with different step sizes per block: this pins grad q-hat itself. */
static void update_case(double lr_outer, double lr_inner, int T, fctx k)
{
    bome_real x[NX];
    memcpy(x, X0, sizeof x);
    bome_problem *p = make_problem(x, &k, NULL);
    bome_options o;
    opts(&o, T, 0.1, lr_outer, lr_inner);
    bome_solver *s = make_solver(p, &o);
    ref r;
    ref_init(&r, &k, NULL);
    box b;
    no_box(&b);
    for (int step = 0; step < 4; step++) {
        expect e;
        expected(&r, &o, &b, x, &e);
        cr_assert_gt(e.lambda, 0.05, "lambda = %g: the test needs the q-hat term to matter", e.lambda);
        bome_real old[NX];
        memcpy(old, x, sizeof old);
        bome_step_stats st;
        cr_assert_eq(bome_solver_step(s, &st), BOME_OK, "%s", bome_solver_errmsg(s));
        check_stats(&st, &e, 1e-10);
        for (int i = 0; i < NX; i++) {
            double lr = i < OFF[2] ? lr_outer : lr_inner;
            CLOSE(x[i] - old[i], -lr * (e.gf[i] + st.lambda * e.gq[i]), 1e-10);
        }
    }
    bome_solver_free(s);
    bome_problem_free(p);
    bome_graph_free(r.G);
}

Test(qhat, update_direction_is_grad_f_plus_lambda_grad_qhat) { update_case(0.01, 0.03, 7, (fctx){1, -1}); }
Test(qhat, update_direction_with_one_inner_step) { update_case(0.02, 0.005, 1, (fctx){1, -1}); }

/* grad_theta q-hat must be g's gradient at theta_k only, grad_v q-hat the
 * difference: check the solver's direction differs from the alternatives
 * (e.g. no stop-gradient, or grad_v g(theta_k) alone) by far more than the
 * tolerance, so the test above could not pass by accident. */
Test(qhat, alternatives_are_distinguishable)
{
    fctx k = {1, 0};
    bome_real x[NX];
    memcpy(x, X0, sizeof x);
    ref r;
    ref_init(&r, &k, NULL);
    bome_options o;
    opts(&o, 7, 0.1, 0, 0);
    box b;
    no_box(&b);
    expect e;
    expected(&r, &o, &b, x, &e);
    double ggk[NX];
    ref_eval(&r, x, NULL, NULL, NULL, ggk);
    double diff = 0;
    for (int i = 0; i < OFF[2]; i++)
        diff += fabs(ggk[i] - e.gq[i]);
    cr_assert_gt(diff, 1e-2);
    bome_graph_free(r.G);
}

/* ---- lambda -------------------------------------------------------------- */

Test(lambda, unit_cases)
{
    cr_assert_eq(bome_lambda(1, 0, 1, 0), 1.0);
    cr_assert_eq(bome_lambda(2, 1, 4, 0), 0.25);
    cr_assert_eq(bome_lambda(0.5, 1, 1, 0), 0.0); /* <gf, gq> > phi: clamped */
    cr_assert_eq(bome_lambda(1, 1, 1, 0), 0.0);   /* equality: zero */
    cr_assert_eq(bome_lambda(0, 0, 0, 1e-8), 0.0);
    cr_assert_eq(bome_lambda(-1, 0, 1, 0), 0.0);
    CLOSE(bome_lambda(3, -1, 2, 1e-8), 4 / (2 + 1e-8), 1e-15);
    CLOSE(bome_lambda(1e-9, 0, 0, 1e-8), 0.1, 1e-15); /* eps keeps a vanishing gradient finite */
    cr_assert(bome_lambda(0.5, 0.25, 1e-300, 1e-8) > 1e7);
}

static void lambda_case(bome_phi phi, fctx k, double eta, int want_zero)
{
    bome_real x[NX];
    memcpy(x, X0, sizeof x);
    bome_problem *p = make_problem(x, &k, NULL);
    bome_options o;
    opts(&o, 5, 0.1, 0.01, 0.01);
    o.phi = phi;
    o.eta = eta;
    bome_solver *s = make_solver(p, &o);
    ref r;
    ref_init(&r, &k, NULL);
    box b;
    no_box(&b);
    for (int step = 0; step < 5; step++) {
        expect e;
        expected(&r, &o, &b, x, &e);
        double fq = dot(e.gf, e.gq), qq = dot(e.gq, e.gq);
        double phi_v = eta * (phi == BOME_PHI_GRAD ? qq : e.q);
        if (want_zero)
            cr_assert_geq(fq, phi_v, "the construction needs <grad f, grad q> >= phi");
        else
            cr_assert_lt(fq, phi_v - 1e-3, "the construction needs <grad f, grad q> < phi");
        bome_step_stats st;
        cr_assert_eq(bome_solver_step(s, &st), BOME_OK, "%s", bome_solver_errmsg(s));
        CLOSE(st.phi, phi_v, 1e-10);
        CLOSE(st.lambda, fmax((phi_v - fq) / (qq + 1e-8), 0), 1e-10);
        if (want_zero)
            cr_assert_eq(st.lambda, 0.0);
        else
            cr_assert_gt(st.lambda, 0.0);
    }
    bome_solver_free(s);
    bome_problem_free(p);
    bome_graph_free(r.G);
}

Test(lambda, phi_grad) { lambda_case(BOME_PHI_GRAD, (fctx){1, -1}, 0.5, 0); }
Test(lambda, phi_value) { lambda_case(BOME_PHI_VALUE, (fctx){1, -1}, 0.5, 0); }
Test(lambda, phi_grad_other_eta) { lambda_case(BOME_PHI_GRAD, (fctx){1, 0}, 0.9, 0); }
/* f = 0.05 f0 + 3 g: grad f is nearly 3 grad g, which already decreases
 * q-hat by more than phi, so lambda is exactly 0. */
Test(lambda, zero_when_grad_f_decreases_q_enough_grad) { lambda_case(BOME_PHI_GRAD, (fctx){0.05, 3}, 0.5, 1); }
Test(lambda, zero_when_grad_f_decreases_q_enough_value) { lambda_case(BOME_PHI_VALUE, (fctx){0.05, 3}, 0.5, 1); }

/* ---- KKT residual ------------------------------------------------------------ */

/* sign: the sign <grad f, grad q> must have (0: either). */
static void kkt_case(fctx k, int sign)
{
    bome_real x[NX];
    memcpy(x, X0, sizeof x);
    bome_problem *p = make_problem(x, &k, NULL);
    bome_options o;
    opts(&o, 5, 0.1, 0.01, 0.01);
    bome_solver *s = make_solver(p, &o);
    ref r;
    ref_init(&r, &k, NULL);
    box b;
    no_box(&b);
    expect e;
    expected(&r, &o, &b, x, &e);
    if (sign)
        cr_assert_gt(sign * dot(e.gf, e.gq), 1e-3, "<grad f, grad q> = %g", dot(e.gf, e.gq));
    /* The minimum over l >= 0 by a scan, refined around the best, from the
     * reference gradients. */
    double best = INFINITY, bl = 0;
    for (int i = 0; i <= 20000; i++) {
        double l = i * 1e-3, v = 0;
        for (int j = 0; j < NX; j++)
            v += (e.gf[j] + l * e.gq[j]) * (e.gf[j] + l * e.gq[j]);
        if (v < best)
            best = v, bl = l;
    }
    double lo = fmax(0, bl - 1e-3), hi = bl + 1e-3;
    for (int it = 0; it < 200; it++) {
        double a = lo + (hi - lo) / 3, c = hi - (hi - lo) / 3, va = 0, vc = 0;
        for (int j = 0; j < NX; j++) {
            va += (e.gf[j] + a * e.gq[j]) * (e.gf[j] + a * e.gq[j]);
            vc += (e.gf[j] + c * e.gq[j]) * (e.gf[j] + c * e.gq[j]);
        }
        if (va < vc)
            hi = c;
        else
            lo = a;
    }
    double l = (lo + hi) / 2, v = 0;
    for (int j = 0; j < NX; j++)
        v += (e.gf[j] + l * e.gq[j]) * (e.gf[j] + l * e.gq[j]);
    bome_step_stats st;
    cr_assert_eq(bome_solver_step(s, &st), BOME_OK, "%s", bome_solver_errmsg(s));
    CLOSE(st.kkt, v + e.q, 1e-10);
    CLOSE(st.kkt, e.kkt, 1e-10);
    bome_solver_free(s);
    bome_problem_free(p);
    bome_graph_free(r.G);
}

Test(kkt, interior_minimizer) { kkt_case((fctx){0.05, -3}, -1); } /* <gf, gq> < 0: l* > 0 */
Test(kkt, minimizer_at_zero) { kkt_case((fctx){0.05, 3}, 1); }   /* <gf, gq> > 0: l* = 0 */
Test(kkt, general) { kkt_case((fctx){1, 0}, 0); }

/* ---- Update rules ------------------------------------------------------------- */

/* A problem whose gradients are known in closed form: f = b.(v, c, theta, s)
 * and g = |v|^2/2 + c^2/2, so q-hat is identically 0, lambda 0 and the
 * direction is the constant b. */
static const bome_real BLIN[NX] = {0.5, -2, 0.25, 1, -0.75, 3, -1.5, 0.125};

static bome_node *f_lin(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_node *t = NULL;
    bome_node *vars[4] = {x->v[0], x->v[1], x->theta[0], x->theta[1]};
    for (int i = 0; i < 4; i++) {
        bome_shape sh = i == 1 || i == 3 ? BOME_SCALAR : BOME_VECTOR(3);
        bome_node *d = bome_dot(G, vars[i], bome_const(G, sh, BLIN + OFF[i]));
        t = t ? bome_add(G, t, d) : d;
    }
    return t;
}

static bome_node *g_vonly(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    return bome_scale(G, bome_add(G, bome_sumsq(G, x->v[0]), bome_sumsq(G, x->v[1])), 0.5);
}

static bome_problem *make_linear(bome_real *x)
{
    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_VECTOR(3), x + OFF[0]);
    bome_problem_add_outer(p, "c", BOME_SCALAR, x + OFF[1]);
    bome_problem_add_inner(p, "theta", BOME_VECTOR(3), x + OFF[2]);
    bome_problem_add_inner(p, "s", BOME_SCALAR, x + OFF[3]);
    bome_problem_set_objectives(p, f_lin, g_vonly, NULL);
    cr_assert_eq(bome_problem_status(p), BOME_OK, "%s", bome_problem_errmsg(p));
    return p;
}

Test(update, momentum_two_steps_known_gradient)
{
    bome_real x[NX];
    memcpy(x, X0, sizeof x);
    bome_problem *p = make_linear(x);
    bome_options o;
    opts(&o, 3, 0.1, 0.1, 0.2);
    o.update = BOME_UPDATE_MOMENTUM;
    o.momentum = 0.9;
    bome_solver *s = make_solver(p, &o);
    bome_step_stats st;
    cr_assert_eq(bome_solver_step(s, &st), BOME_OK, "%s", bome_solver_errmsg(s));
    cr_assert_eq(st.lambda, 0.0);
    cr_assert_eq(st.q, 0.0);
    /* buf = b on the first step: x1 = x0 - lr b */
    for (int i = 0; i < NX; i++)
        CLOSE(x[i], X0[i] - (i < 4 ? 0.1 : 0.2) * BLIN[i], 1e-14);
    /* then buf = 0.9 b + b: x2 = x0 - lr b - 1.9 lr b = x0 - 2.9 lr b */
    cr_assert_eq(bome_solver_step(s, &st), BOME_OK, "%s", bome_solver_errmsg(s));
    for (int i = 0; i < NX; i++)
        CLOSE(x[i], X0[i] - 2.9 * (i < 4 ? 0.1 : 0.2) * BLIN[i], 1e-14);
    bome_solver_free(s);
    bome_problem_free(p);
}

Test(update, adam_two_steps_known_gradient)
{
    bome_real x[NX];
    memcpy(x, X0, sizeof x);
    bome_problem *p = make_linear(x);
    bome_options o;
    opts(&o, 3, 0.1, 0.1, 0.2);
    o.update = BOME_UPDATE_ADAM;
    bome_solver *s = make_solver(p, &o);
    bome_step_stats st;
    /* With bias correction m-hat = b and v-hat = b^2 after any number of
     * steps of a constant gradient, so each step moves lr b / (|b| + eps):
     * almost exactly lr against the sign of b. Without the correction the
     * first step would be lr 0.1 b / (sqrt(0.001) |b|), about 3.16 lr. */
    for (int k = 1; k <= 2; k++) {
        cr_assert_eq(bome_solver_step(s, &st), BOME_OK, "%s", bome_solver_errmsg(s));
        for (int i = 0; i < NX; i++) {
            double lr = i < 4 ? 0.1 : 0.2;
            CLOSE(x[i], X0[i] - k * lr * BLIN[i] / (fabs(BLIN[i]) + 1e-8), 1e-13);
        }
    }
    bome_solver_free(s);
    bome_problem_free(p);
}

/* Two steps on the full problem against the hand-written rules, with the
 * direction from the reference at each iterate. */
static void rule_case(bome_update u, double inner_momentum)
{
    fctx k = {1, 0};
    bome_real x[NX];
    memcpy(x, X0, sizeof x);
    bome_problem *p = make_problem(x, &k, NULL);
    bome_options o;
    opts(&o, 6, 0.1, 0.02, 0.04);
    o.update = u;
    o.momentum = 0.8;
    o.adam_beta1 = 0.8;
    o.adam_beta2 = 0.95;
    o.inner_momentum = inner_momentum;
    bome_solver *s = make_solver(p, &o);
    ref r;
    ref_init(&r, &k, NULL);
    box b;
    no_box(&b);
    emu m = {{0}, {0}, 0};
    bome_real want[NX];
    memcpy(want, X0, sizeof want);
    for (int step = 0; step < 3; step++) {
        expect e;
        expected(&r, &o, &b, want, &e);
        bome_step_stats st;
        cr_assert_eq(bome_solver_step(s, &st), BOME_OK, "%s", bome_solver_errmsg(s));
        check_stats(&st, &e, 1e-10);
        emu_step(&m, &o, &b, want, e.d);
        for (int i = 0; i < NX; i++)
            CLOSE(x[i], want[i], 1e-10);
    }
    bome_solver_free(s);
    bome_problem_free(p);
    bome_graph_free(r.G);
}

Test(update, sgd_full_problem) { rule_case(BOME_UPDATE_SGD, 0); }
Test(update, momentum_full_problem) { rule_case(BOME_UPDATE_MOMENTUM, 0); }
Test(update, adam_full_problem) { rule_case(BOME_UPDATE_ADAM, 0); }
Test(update, inner_momentum) { rule_case(BOME_UPDATE_SGD, 0.7); }

/* ---- Projection ---------------------------------------------------------------- */

Test(projection, boxes_hold_after_every_step)
{
    fctx k = {1, 0};
    bome_real x[NX];
    memcpy(x, X0, sizeof x);
    bome_problem *p = make_problem(x, &k, NULL);
    /* A box per variable around the start, tight enough that the iterates
     * reach it. */
    static const double lo[4] = {-0.12, 0.25, -0.45, 0.55}, hi[4] = {0.42, 0.35, 0.85, 0.65};
    box b;
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(bome_problem_set_bounds(p, i < 2 ? BOME_OUTER : BOME_INNER, i % 2, lo[i], hi[i]), BOME_OK);
        for (int j = 0; j < SZ[i]; j++)
            b.lo[OFF[i] + j] = lo[i], b.hi[OFF[i] + j] = hi[i];
    }
    bome_options o;
    opts(&o, 5, 0.3, 0.2, 0.2);
    bome_solver *s = make_solver(p, &o);
    ref r;
    ref_init(&r, &k, NULL);
    int hits = 0;
    for (int step = 0; step < 40; step++) {
        expect e;
        bome_real want[NX];
        memcpy(want, x, sizeof want);
        expected(&r, &o, &b, want, &e);
        bome_step_stats st;
        cr_assert_eq(bome_solver_step(s, &st), BOME_OK, "%s", bome_solver_errmsg(s));
        check_stats(&st, &e, 1e-10);
        for (int i = 0; i < NX; i++) {
            cr_assert(x[i] >= b.lo[i] && x[i] <= b.hi[i], "step %d: x[%d] = %g outside [%g, %g]", step + 1, i,
                      x[i], b.lo[i], b.hi[i]);
            CLOSE(x[i], clampd(want[i] - 0.2 * e.d[i], b.lo[i], b.hi[i]), 1e-10);
            hits += x[i] == b.lo[i] || x[i] == b.hi[i];
        }
    }
    cr_assert_gt(hits, 0, "the boxes never bound");
    bome_solver_free(s);
    bome_problem_free(p);
    bome_graph_free(r.G);
}

/* The inner iterates are projected: q (which depends on theta_T) matches the
 * projected inner loop and differs from the unprojected one. */
Test(projection, inner_iterates_are_projected)
{
    fctx k = {1, 0};
    bome_real x[NX];
    memcpy(x, X0, sizeof x);
    bome_problem *p = make_problem(x, &k, NULL);
    cr_assert_eq(bome_problem_set_bounds(p, BOME_INNER, 0, -0.45, 0.6), BOME_OK);
    cr_assert_eq(bome_problem_set_bounds(p, BOME_INNER, 1, 0.5, 1.0), BOME_OK);
    box b, none;
    no_box(&b);
    no_box(&none);
    for (int j = 0; j < 3; j++)
        b.lo[4 + j] = -0.45, b.hi[4 + j] = 0.6;
    b.lo[7] = 0.5, b.hi[7] = 1.0;
    bome_options o;
    opts(&o, 8, 0.2, 0, 0);
    bome_solver *s = make_solver(p, &o);
    ref r;
    ref_init(&r, &k, NULL);
    expect e, e_free;
    expected(&r, &o, &b, x, &e);
    expected(&r, &o, &none, x, &e_free);
    cr_assert_gt(fabs(e.q - e_free.q), 1e-4, "the boxes must bind in the inner loop");
    bome_step_stats st;
    cr_assert_eq(bome_solver_step(s, &st), BOME_OK, "%s", bome_solver_errmsg(s));
    check_stats(&st, &e, 1e-10);
    bome_solver_free(s);
    bome_problem_free(p);
    bome_graph_free(r.G);
}

/* ---- Determinism ------------------------------------------------------------------ */

typedef struct refill_ud { bome_real *noise; long calls, last_step; } refill_ud;

static int refill_noise(void *ud, bome_rng *rng, long step)
{
    refill_ud *u = ud;
    cr_assert_eq(step, u->calls, "refill's step number");
    u->calls++;
    u->last_step = step;
    for (int i = 0; i < 3; i++)
        u->noise[i] = 0.3 * bome_rng_normal(rng);
    return 0;
}

static void trajectory(bome_real *x, bome_real *noise, uint64_t seed, bool refill, bome_update u)
{
    fctx k = {1, 0};
    memcpy(x, X0, NX * sizeof *x);
    memset(noise, 0, 3 * sizeof *noise);
    bome_problem *p = make_problem(x, &k, noise);
    bome_options o;
    opts(&o, 5, 0.1, 0.03, 0.03);
    o.update = u;
    o.seed = seed;
    refill_ud ud = {noise, 0, -1};
    if (refill) {
        o.refill = refill_noise;
        o.refill_ud = &ud;
    }
    o.max_steps = 50;
    bome_solver *s = make_solver(p, &o);
    cr_assert_eq(bome_solver_run(s, NULL), BOME_OK, "%s", bome_solver_errmsg(s));
    cr_assert_eq(bome_solver_steps(s), 50);
    if (refill)
        cr_assert_eq(ud.calls, 50);
    bome_solver_free(s);
    bome_problem_free(p);
}

Test(determinism, same_start_bit_identical)
{
    bome_real a[NX], b[NX], na[3], nb[3];
    trajectory(a, na, 0, false, BOME_UPDATE_SGD);
    trajectory(b, nb, 0, false, BOME_UPDATE_SGD);
    cr_assert_eq(memcmp(a, b, sizeof a), 0);
    cr_assert_neq(memcmp(a, X0, sizeof a), 0, "the solver did not move");
    trajectory(a, na, 0, false, BOME_UPDATE_ADAM);
    trajectory(b, nb, 0, false, BOME_UPDATE_ADAM);
    cr_assert_eq(memcmp(a, b, sizeof a), 0);
}

Test(determinism, refill_same_seed_same_trajectory)
{
    bome_real a[NX], b[NX], na[3], nb[3];
    trajectory(a, na, 42, true, BOME_UPDATE_MOMENTUM);
    trajectory(b, nb, 42, true, BOME_UPDATE_MOMENTUM);
    cr_assert_eq(memcmp(a, b, sizeof a), 0);
    cr_assert_eq(memcmp(na, nb, sizeof na), 0);
}

Test(determinism, refill_different_seed_different_trajectory)
{
    bome_real a[NX], b[NX], na[3], nb[3];
    trajectory(a, na, 42, true, BOME_UPDATE_MOMENTUM);
    trajectory(b, nb, 43, true, BOME_UPDATE_MOMENTUM);
    cr_assert_neq(memcmp(a, b, sizeof a), 0);
    cr_assert_neq(memcmp(na, nb, sizeof na), 0);
}

static int refill_fail(void *ud, bome_rng *rng, long step)
{
    (void)rng;
    long *n = ud;
    (*n)++;
    return step == 3 ? BOME_ERR_IO : 0;
}

Test(determinism, refill_error_stops_the_run)
{
    fctx k = {1, 0};
    bome_real x[NX], noise[3] = {0};
    memcpy(x, X0, sizeof x);
    bome_problem *p = make_problem(x, &k, noise);
    bome_options o;
    opts(&o, 3, 0.1, 0.01, 0.01);
    long calls = 0;
    o.refill = refill_fail;
    o.refill_ud = &calls;
    bome_solver *s = make_solver(p, &o);
    bome_step_stats last = {0};
    cr_assert_eq(bome_solver_run(s, &last), BOME_ERR_IO);
    cr_assert_eq(bome_solver_steps(s), 3);
    cr_assert_eq(last.step, 3);
    cr_assert_eq(calls, 4);
    cr_assert(strstr(bome_solver_errmsg(s), "refill") != NULL, "%s", bome_solver_errmsg(s));
    bome_solver_free(s);
    bome_problem_free(p);
}

/* ---- No allocation per step -------------------------------------------------------- */

typedef struct counter { long calls, live; size_t allocated, freed; } counter;

static void *count_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    counter *c = ud;
    c->calls++;
    if (nsize == 0) {
        if (ptr) {
            c->freed += osize;
            c->live--;
        }
        free(ptr);
        return NULL;
    }
    void *q = realloc(ptr, nsize);
    if (!q)
        return NULL;
    if (ptr)
        c->freed += osize;
    else
        c->live++;
    c->allocated += nsize;
    return q;
}

static int count_steps(void *ud, bome_solver *s, const bome_step_stats *st)
{
    (void)s;
    (void)st;
    ++*(long *)ud;
    return 0;
}

static void no_alloc_case(bome_update u, double inner_momentum)
{
    fctx k = {1, 0};
    bome_real x[NX], noise[3] = {0};
    memcpy(x, X0, sizeof x);
    bome_problem *p = make_problem(x, &k, noise);
    bome_problem_set_bounds(p, BOME_OUTER, 0, -1, 1);
    bome_problem_set_bounds(p, BOME_INNER, 0, -1, 1);
    bome_options o;
    opts(&o, 5, 0.1, 0.01, 0.01);
    o.update = u;
    o.inner_momentum = inner_momentum;
    counter c = {0, 0, 0, 0};
    o.alloc = count_alloc;
    o.alloc_ud = &c;
    refill_ud ud = {noise, 0, -1};
    o.refill = refill_noise;
    o.refill_ud = &ud;
    long calls = 0;
    o.on_step = count_steps;
    o.on_step_ud = &calls;
    bome_solver *s = make_solver(p, &o);
    long after_new = c.calls;
    cr_assert_gt(after_new, 0, "the solver did not use options.alloc");
    bome_step_stats st;
    cr_assert_eq(bome_solver_step(s, &st), BOME_OK, "%s", bome_solver_errmsg(s));
    cr_assert_eq(c.calls, after_new, "the first step allocated");
    long after_first = c.calls;
    for (int i = 0; i < 100; i++)
        cr_assert_eq(bome_solver_step(s, &st), BOME_OK, "%s", bome_solver_errmsg(s));
    cr_assert_eq(c.calls, after_first, "steps allocated: %ld calls", c.calls - after_first);
    cr_assert_eq(calls, 101);
    bome_solver_free(s);
    cr_assert_eq(c.allocated, c.freed, "allocated %zu bytes, freed %zu", c.allocated, c.freed);
    cr_assert_eq(c.live, 0);
    bome_problem_free(p);
}

Test(alloc, sgd_no_allocation_per_step) { no_alloc_case(BOME_UPDATE_SGD, 0); }
Test(alloc, momentum_no_allocation_per_step) { no_alloc_case(BOME_UPDATE_MOMENTUM, 0.5); }
Test(alloc, adam_no_allocation_per_step) { no_alloc_case(BOME_UPDATE_ADAM, 0); }

Test(alloc, failed_creation_frees_everything)
{
    fctx k = {1, 0};
    bome_real x[NX];
    memcpy(x, X0, sizeof x);
    bome_problem *p = make_problem(x, &k, NULL);
    bome_options o;
    opts(&o, 0, 0.1, 0.01, 0.01); /* invalid T */
    counter c = {0, 0, 0, 0};
    o.alloc = count_alloc;
    o.alloc_ud = &c;
    bome_solver *s = bome_solver_new(p, &o);
    cr_assert_not_null(s);
    cr_assert_neq(bome_solver_status(s), BOME_OK);
    bome_solver_free(s);
    cr_assert_eq(c.allocated, c.freed);
    cr_assert_eq(c.live, 0);
    bome_problem_free(p);
}

/* ---- Non-finite values --------------------------------------------------------------- */

/* f = (v + 3)^2/2 + 0.5 log(theta), g = (theta - v)^2/2: v heads for -3,
 * theta follows it, and log(theta) turns NaN once theta is driven below 0. */
static bome_node *f_log(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_node *a = bome_scale(G, bome_square(G, bome_add_scalar(G, x->v[0], 3)), 0.5);
    return bome_add(G, a, bome_scale(G, bome_log(G, x->theta[0]), 0.5));
}

static bome_node *g_track(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    return bome_scale(G, bome_square(G, bome_sub(G, x->theta[0], x->v[0])), 0.5);
}

/* f = 1e150 (v + theta): f and its gradient are finite, but one step of
 * lr 1e200 overflows the variables to -inf. */
static bome_node *f_huge(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    return bome_scale(G, bome_add(G, x->v[0], x->theta[0]), 1e150);
}

static void nonfinite_case(bome_objective_fn f, double lr, long max_steps)
{
    bome_real x[2] = {1, 1};
    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_SCALAR, x);
    bome_problem_add_inner(p, "theta", BOME_SCALAR, x + 1);
    bome_problem_set_objectives(p, f, g_track, NULL);
    bome_options o;
    opts(&o, 3, 0.3, lr, lr);
    bome_solver *s = make_solver(p, &o);
    int rc = BOME_OK;
    long step = 0;
    bome_real before[2];
    while (rc == BOME_OK && step < max_steps) {
        memcpy(before, x, sizeof before);
        bome_step_stats st;
        rc = bome_solver_step(s, &st);
        if (rc == BOME_OK)
            step++;
    }
    cr_assert_eq(rc, BOME_ERR_NONFINITE, "no non-finite stop after %ld steps (rc %d)", step, rc);
    const char *msg = bome_solver_errmsg(s);
    cr_assert(strstr(msg, "non-finite") != NULL, "message: %s", msg);
    cr_assert_eq(bome_solver_status(s), BOME_ERR_NONFINITE);
    cr_assert(isfinite(x[0]) && isfinite(x[1]), "x = (%g, %g)", x[0], x[1]);
    cr_assert_eq(memcmp(x, before, sizeof x), 0, "x = (%g, %g), before (%g, %g)", x[0], x[1], before[0], before[1]);
    cr_assert_eq(bome_solver_steps(s), step);
    bome_step_stats st;
    cr_assert_eq(bome_solver_step(s, &st), BOME_ERR_STATE);
    cr_assert_eq(bome_solver_step(s, &st), BOME_ERR_STATE);
    cr_assert_eq(bome_solver_run(s, &st), BOME_ERR_STATE);
    cr_assert_eq(memcmp(x, before, sizeof x), 0);
    bome_solver_free(s);
    bome_problem_free(p);
}

Test(nonfinite, log_of_negative_stops_at_last_finite_iterate) { nonfinite_case(f_log, 0.3, 2000); }
Test(nonfinite, overflowing_update_stops_at_last_finite_iterate) { nonfinite_case(f_huge, 1e200, 10); }

Test(nonfinite, bome_solve_reports_it)
{
    bome_real x[2] = {1, 1};
    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_SCALAR, x);
    bome_problem_add_inner(p, "theta", BOME_SCALAR, x + 1);
    bome_problem_set_objectives(p, f_log, g_track, NULL);
    bome_options o;
    opts(&o, 3, 0.3, 0.3, 0.3);
    o.max_steps = 2000;
    bome_step_stats last = {0};
    cr_assert_eq(bome_solve(p, &o, &last), BOME_ERR_NONFINITE);
    cr_assert(strstr(bome_problem_errmsg(p), "non-finite") != NULL, "%s", bome_problem_errmsg(p));
    cr_assert_gt(last.step, 0);
    cr_assert(isfinite(x[0]) && isfinite(x[1]));
    bome_problem_free(p);
}

/* ---- Invalid input ---------------------------------------------------------------------- */

/* A valid problem on fresh memory; the options are checked before the
 * problem, so each bad option below is the only error. */
static void bad_option(void (*mod)(bome_options *), const char *name)
{
    fctx k = {1, 0};
    bome_real x[NX];
    memcpy(x, X0, sizeof x);
    bome_problem *p = make_problem(x, &k, NULL);
    bome_options o;
    bome_options_default(&o);
    mod(&o);
    bome_solver *s = bome_solver_new(p, &o);
    cr_assert_not_null(s);
    cr_assert_neq(bome_solver_status(s), BOME_OK, "option %s accepted", name);
    cr_assert(strstr(bome_solver_errmsg(s), name) != NULL, "message '%s' does not name %s", bome_solver_errmsg(s),
              name);
    bome_step_stats st;
    cr_assert_neq(bome_solver_step(s, &st), BOME_OK);
    cr_assert_neq(bome_solver_run(s, &st), BOME_OK);
    cr_assert_eq(memcmp(x, X0, sizeof x), 0);
    bome_solver_free(s);
    /* bome_solve copies the error to the problem */
    cr_assert_neq(bome_solve(p, &o, NULL), BOME_OK);
    cr_assert_neq(bome_problem_status(p), BOME_OK);
    cr_assert(strstr(bome_problem_errmsg(p), name) != NULL, "problem message '%s' does not name %s",
              bome_problem_errmsg(p), name);
    bome_problem_free(p);
}

/* The message must name the option as "name =". */
#define BAD(NAME, FIELD, VALUE)                                         \
    static void mod_##NAME(bome_options *o) { o->FIELD = VALUE; }     \
    Test(invalid, option_##NAME) { bad_option(mod_##NAME, #FIELD " ="); }

BAD(T_zero, T, 0)
BAD(T_negative, T, -3)
BAD(alpha_negative, alpha, -0.1)
BAD(alpha_nan, alpha, NAN)
BAD(eta_negative, eta, -0.5)
BAD(lr_outer_negative, lr_outer, -1e-3)
BAD(lr_inner_negative, lr_inner, -1e-3)
BAD(lr_outer_inf, lr_outer, INFINITY)
BAD(momentum_one, momentum, 1.0)
BAD(momentum_above_one, momentum, 1.5)
BAD(momentum_negative, momentum, -0.1)
BAD(inner_momentum_one, inner_momentum, 1.0)
BAD(adam_beta1_one, adam_beta1, 1.0)
BAD(adam_beta2_negative, adam_beta2, -0.5)
BAD(adam_eps_negative, adam_eps, -1e-8)
BAD(lambda_eps_negative, lambda_eps, -1e-8)
BAD(tol_negative, tol, -1)
BAD(phi_bad, phi, (bome_phi)7)
BAD(update_bad, update, (bome_update)9)
BAD(max_steps_negative, max_steps, -1)

static void solver_refuses(bome_problem *p, const char *needle)
{
    bome_options o;
    bome_options_default(&o);
    bome_solver *s = bome_solver_new(p, &o);
    cr_assert_not_null(s);
    cr_assert_neq(bome_solver_status(s), BOME_OK, "accepted");
    cr_assert(strstr(bome_solver_errmsg(s), needle) != NULL, "message '%s' lacks '%s'", bome_solver_errmsg(s),
              needle);
    bome_step_stats st;
    cr_assert_neq(bome_solver_step(s, &st), BOME_OK);
    bome_solver_free(s);
    cr_assert_neq(bome_solve(p, &o, NULL), BOME_OK);
    cr_assert(strstr(bome_problem_errmsg(p), needle) != NULL, "problem message '%s' lacks '%s'",
              bome_problem_errmsg(p), needle);
}

Test(invalid, no_outer_variables)
{
    bome_real th[3] = {0};
    bome_problem *p = bome_problem_new();
    bome_problem_add_inner(p, "theta", BOME_VECTOR(3), th);
    bome_problem_set_objectives(p, g_track, g_track, NULL);
    solver_refuses(p, "outer");
    bome_problem_free(p);
}

Test(invalid, no_inner_variables)
{
    bome_real v[3] = {0};
    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_VECTOR(3), v);
    bome_problem_set_objectives(p, g_track, g_track, NULL);
    solver_refuses(p, "inner");
    bome_problem_free(p);
}

Test(invalid, no_objectives)
{
    bome_real x[2] = {0};
    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_SCALAR, x);
    bome_problem_add_inner(p, "theta", BOME_SCALAR, x + 1);
    solver_refuses(p, "objectives");
    bome_problem_free(p);
}

Test(invalid, null_objectives)
{
    bome_real x[2] = {0};
    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_SCALAR, x);
    bome_problem_add_inner(p, "theta", BOME_SCALAR, x + 1);
    cr_assert_neq(bome_problem_set_objectives(p, NULL, g_track, NULL), BOME_OK);
    cr_assert(strstr(bome_problem_errmsg(p), "f") != NULL);
    solver_refuses(p, "f is NULL");
    bome_problem_free(p);
}

Test(invalid, bounds)
{
    bome_real x[2] = {0};
    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_SCALAR, x);
    bome_problem_add_inner(p, "theta", BOME_SCALAR, x + 1);
    bome_problem_set_objectives(p, f_log, g_track, NULL);
    cr_assert_eq(bome_problem_set_bounds(p, BOME_OUTER, 0, -1, -1), BOME_OK); /* lo == hi is a point */
    cr_assert_neq(bome_problem_set_bounds(p, BOME_INNER, 0, 1, 0), BOME_OK);
    cr_assert_neq(bome_problem_status(p), BOME_OK);
    cr_assert(strstr(bome_problem_errmsg(p), "theta") != NULL, "%s", bome_problem_errmsg(p));
    solver_refuses(p, "theta");
    bome_problem_free(p);
}

Test(invalid, bounds_other)
{
    bome_real x[2] = {0};
    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_SCALAR, x);
    cr_assert_neq(bome_problem_set_bounds(p, BOME_INNER, 0, 0, 1), BOME_OK); /* no inner variable 0 */
    bome_problem_free(p);
    p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_SCALAR, x);
    cr_assert_neq(bome_problem_set_bounds(p, 2, 0, 0, 1), BOME_OK);
    bome_problem_free(p);
    p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_SCALAR, x);
    cr_assert_neq(bome_problem_set_bounds(p, BOME_OUTER, 0, NAN, 1), BOME_OK);
    bome_problem_free(p);
}

Test(invalid, null_values)
{
    bome_problem *p = bome_problem_new();
    cr_assert_eq(bome_problem_add_outer(p, "v", BOME_SCALAR, NULL), -1);
    cr_assert_neq(bome_problem_status(p), BOME_OK);
    cr_assert(strstr(bome_problem_errmsg(p), "NULL") != NULL, "%s", bome_problem_errmsg(p));
    bome_problem_free(p);
    p = bome_problem_new();
    cr_assert_eq(bome_problem_add_inner(p, "theta", BOME_SCALAR, NULL), -1);
    cr_assert_neq(bome_problem_status(p), BOME_OK);
    bome_problem_free(p);
    p = bome_problem_new();
    cr_assert_eq(bome_problem_add_input(p, "in", BOME_SCALAR, NULL), -1);
    cr_assert_neq(bome_problem_status(p), BOME_OK);
    bome_problem_free(p);
    p = bome_problem_new();
    cr_assert_eq(bome_problem_add_labels(p, "l", 3, NULL), -1);
    cr_assert_neq(bome_problem_status(p), BOME_OK);
    bome_problem_free(p);
}

Test(invalid, shapes)
{
    static const bome_shape bad[] = {
        {1, 1, 0}, {1, 2, 3}, {2, 0, 3}, {2, 3, 0}, {0, 2, 1}, {3, 1, 1}, {-1, 1, 1}, {1, 1, -4},
    };
    bome_real x[8] = {0};
    int32_t lab[2] = {0, 1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bome_problem *p = bome_problem_new();
        cr_assert_eq(bome_problem_add_outer(p, "v", bad[i], x), -1, "shape %zu accepted", i);
        cr_assert_eq(bome_problem_status(p), BOME_ERR_SHAPE);
        cr_assert(strstr(bome_problem_errmsg(p), "shape") != NULL, "%s", bome_problem_errmsg(p));
        bome_problem_free(p);
        p = bome_problem_new();
        cr_assert_eq(bome_problem_add_inner(p, "t", bad[i], x), -1);
        cr_assert_eq(bome_problem_status(p), BOME_ERR_SHAPE);
        bome_problem_free(p);
        p = bome_problem_new();
        cr_assert_eq(bome_problem_add_input(p, "d", bad[i], x), -1);
        cr_assert_eq(bome_problem_status(p), BOME_ERR_SHAPE);
        bome_problem_free(p);
    }
    bome_problem *p = bome_problem_new();
    cr_assert_eq(bome_problem_add_labels(p, "l", 0, lab), -1);
    cr_assert_neq(bome_problem_status(p), BOME_OK);
    bome_problem_free(p);
}

static bome_node *f_null(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)G;
    (void)x;
    (void)ctx;
    return NULL;
}

static bome_node *f_vector(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    return bome_square(G, x->theta[0]);
}

static bome_node *f_bad_shape(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    return bome_sum(G, bome_add(G, x->theta[0], bome_const(G, BOME_VECTOR(2), NULL)));
}

static bome_node *g_quad(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    return bome_add(G, bome_sumsq(G, x->theta[0]), bome_sumsq(G, x->v[0]));
}

static bome_problem *builder_problem(bome_real *x, bome_objective_fn f, bome_objective_fn g)
{
    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_VECTOR(3), x);
    bome_problem_add_inner(p, "theta", BOME_VECTOR(3), x + 3);
    bome_problem_set_objectives(p, f, g, NULL);
    cr_assert_eq(bome_problem_status(p), BOME_OK);
    return p;
}

Test(invalid, builder_returns_null)
{
    bome_real x[6] = {0};
    bome_problem *p = builder_problem(x, f_null, g_quad);
    solver_refuses(p, "NULL");
    bome_problem_free(p);
    p = builder_problem(x, g_quad, f_null);
    solver_refuses(p, "NULL");
    bome_problem_free(p);
}

Test(invalid, builder_returns_non_scalar)
{
    bome_real x[6] = {0};
    bome_problem *p = builder_problem(x, f_vector, g_quad);
    bome_options o;
    bome_options_default(&o);
    bome_solver *s = bome_solver_new(p, &o);
    cr_assert_eq(bome_solver_status(s), BOME_ERR_SHAPE, "%s", bome_solver_errmsg(s));
    cr_assert(strstr(bome_solver_errmsg(s), "scalar") != NULL, "%s", bome_solver_errmsg(s));
    bome_solver_free(s);
    bome_problem_free(p);
    p = builder_problem(x, g_quad, f_vector);
    solver_refuses(p, "scalar");
    bome_problem_free(p);
}

Test(invalid, builder_shape_error_carries_the_graph_message)
{
    /* The same faulty expression on a graph of our own gives the message. */
    bome_graph *G = bome_graph_new();
    bome_node *th = bome_param(G, "theta", BOME_VECTOR(3));
    bome_add(G, th, bome_const(G, BOME_VECTOR(2), NULL));
    cr_assert_eq(bome_graph_status(G), BOME_ERR_SHAPE);
    char want[512];
    snprintf(want, sizeof want, "%s", bome_graph_errmsg(G));
    cr_assert_gt(strlen(want), 0);
    bome_graph_free(G);

    bome_real x[6] = {0};
    bome_problem *p = builder_problem(x, f_bad_shape, g_quad);
    bome_options o;
    bome_options_default(&o);
    bome_solver *s = bome_solver_new(p, &o);
    cr_assert_eq(bome_solver_status(s), BOME_ERR_SHAPE, "%s", bome_solver_errmsg(s));
    cr_assert(strstr(bome_solver_errmsg(s), want) != NULL, "'%s' lacks '%s'", bome_solver_errmsg(s), want);
    bome_solver_free(s);
    cr_assert_eq(bome_solve(p, &o, NULL), BOME_ERR_SHAPE);
    cr_assert(strstr(bome_problem_errmsg(p), want) != NULL, "'%s' lacks '%s'", bome_problem_errmsg(p), want);
    bome_problem_free(p);
    p = builder_problem(x, g_quad, f_bad_shape);
    solver_refuses(p, want);
    bome_problem_free(p);
}

Test(invalid, null_safety)
{
    bome_solver_free(NULL);
    bome_problem_free(NULL);
    bome_options_default(NULL);
    cr_assert_neq(bome_solver_status(NULL), BOME_OK);
    cr_assert_not_null(bome_solver_errmsg(NULL));
    cr_assert_neq(bome_problem_status(NULL), BOME_OK);
    cr_assert_not_null(bome_problem_errmsg(NULL));
    cr_assert_eq(bome_solver_steps(NULL), 0);
    cr_assert_null(bome_solver_graph(NULL));
    bome_step_stats st;
    cr_assert_eq(bome_solver_step(NULL, &st), BOME_ERR_ARG);
    cr_assert_eq(bome_solver_run(NULL, &st), BOME_ERR_ARG);
    bome_options o;
    bome_options_default(&o);
    cr_assert_eq(bome_solve(NULL, &o, &st), BOME_ERR_ARG);
    bome_real x[2] = {0};
    int32_t lab[1] = {0};
    cr_assert_eq(bome_problem_add_outer(NULL, "v", BOME_SCALAR, x), -1);
    cr_assert_eq(bome_problem_add_inner(NULL, "t", BOME_SCALAR, x), -1);
    cr_assert_eq(bome_problem_add_input(NULL, "d", BOME_SCALAR, x), -1);
    cr_assert_eq(bome_problem_add_labels(NULL, "l", 1, lab), -1);
    cr_assert_neq(bome_problem_set_bounds(NULL, BOME_OUTER, 0, 0, 1), BOME_OK);
    cr_assert_neq(bome_problem_set_objectives(NULL, g_track, g_track, NULL), BOME_OK);

    bome_solver *s = bome_solver_new(NULL, &o);
    cr_assert_not_null(s);
    cr_assert_eq(bome_solver_status(s), BOME_ERR_ARG);
    cr_assert(strstr(bome_solver_errmsg(s), "problem") != NULL);
    cr_assert_neq(bome_solver_step(s, &st), BOME_OK);
    bome_solver_free(s);

    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_SCALAR, x);
    bome_problem_add_inner(p, "theta", BOME_SCALAR, x + 1);
    bome_problem_set_objectives(p, f_log, g_track, NULL);
    s = bome_solver_new(p, NULL);
    cr_assert_not_null(s);
    cr_assert_eq(bome_solver_status(s), BOME_ERR_ARG);
    cr_assert(strstr(bome_solver_errmsg(s), "options") != NULL);
    bome_solver_free(s);
    cr_assert_eq(bome_solve(p, NULL, NULL), BOME_ERR_ARG);
    cr_assert(strstr(bome_problem_errmsg(p), "options") != NULL);
    bome_problem_free(p);
}

/* ---- The callback, max_steps and tol ------------------------------------------------------- */

typedef struct cb_ud { long calls, last, stop_at; double kkt[400]; bome_step_stats st; } cb_ud;

static int on_step(void *ud, bome_solver *s, const bome_step_stats *st)
{
    cb_ud *u = ud;
    cr_assert_eq(st->step, u->last + 1, "steps %ld after %ld", st->step, u->last);
    cr_assert_eq(bome_solver_steps(s), st->step);
    u->last = st->step;
    if (u->calls < 400)
        u->kkt[u->calls] = st->kkt;
    u->calls++;
    u->st = *st;
    return u->stop_at && st->step == u->stop_at;
}

static bome_solver *cb_solver(bome_real *x, bome_problem **pp, cb_ud *u, long max_steps, double tol)
{
    static fctx k = {1, 0};
    memcpy(x, X0, NX * sizeof *x);
    *pp = make_problem(x, &k, NULL);
    bome_options o;
    opts(&o, 5, 0.1, 0.05, 0.05);
    o.on_step = on_step;
    o.on_step_ud = u;
    o.max_steps = max_steps;
    o.tol = tol;
    return make_solver(*pp, &o);
}

Test(callback, once_per_step_increasing)
{
    bome_real x[NX];
    bome_problem *p;
    cb_ud u = {0};
    bome_solver *s = cb_solver(x, &p, &u, 25, 0);
    bome_step_stats last = {0}, st;
    cr_assert_eq(bome_solver_step(s, &st), BOME_OK);
    cr_assert_eq(u.calls, 1);
    cr_assert_eq(memcmp(&st, &u.st, sizeof st), 0, "the callback saw other statistics");
    cr_assert_eq(bome_solver_run(s, &last), BOME_OK);
    cr_assert_eq(u.calls, 25);
    cr_assert_eq(bome_solver_steps(s), 25);
    cr_assert_eq(last.step, 25);
    cr_assert_eq(memcmp(&last, &u.st, sizeof last), 0);
    cr_assert_geq(last.total_seconds, last.seconds);
    /* max_steps reached: run does nothing more */
    cr_assert_eq(bome_solver_run(s, &last), BOME_OK);
    cr_assert_eq(u.calls, 25);
    bome_solver_free(s);
    bome_problem_free(p);
}

Test(callback, non_zero_stops_the_run)
{
    bome_real x[NX];
    bome_problem *p;
    cb_ud u = {0};
    u.stop_at = 7;
    bome_solver *s = cb_solver(x, &p, &u, 100, 0);
    bome_step_stats last = {0};
    cr_assert_eq(bome_solver_run(s, &last), BOME_OK);
    cr_assert_eq(u.calls, 7);
    cr_assert_eq(bome_solver_steps(s), 7);
    cr_assert_eq(last.step, 7);
    cr_assert_eq(bome_solver_status(s), BOME_OK);
    bome_solver_free(s);
    bome_problem_free(p);
}

Test(callback, tol_stops_the_run)
{
    bome_real x[NX];
    bome_problem *p;
    cb_ud u = {0};
    bome_solver *s = cb_solver(x, &p, &u, 100, 0);
    cr_assert_eq(bome_solver_run(s, NULL), BOME_OK);
    cr_assert_eq(u.calls, 100);
    bome_solver_free(s);
    bome_problem_free(p);
    /* a tolerance just above the smallest residual of the first 60 steps:
     * the run must stop right after the first step whose residual is below */
    double tol = INFINITY;
    for (int i = 0; i < 60; i++)
        tol = fmin(tol, u.kkt[i]);
    tol *= 1 + 1e-9;
    long first = 0;
    while (!(u.kkt[first] < tol))
        first++;
    cr_assert_gt(first, 0, "the residual must decrease for this test");
    cb_ud w = {0};
    s = cb_solver(x, &p, &w, 100, tol);
    bome_step_stats last = {0};
    cr_assert_eq(bome_solver_run(s, &last), BOME_OK);
    cr_assert_eq(last.step, first + 1);
    cr_assert_eq(w.calls, first + 1);
    cr_assert_lt(last.kkt, tol);
    for (long i = 0; i < first; i++)
        cr_assert_geq(w.kkt[i], tol);
    bome_solver_free(s);
    bome_problem_free(p);
}

Test(callback, bome_solve_runs_max_steps)
{
    bome_real x[NX];
    memcpy(x, X0, sizeof x);
    fctx k = {1, 0};
    bome_problem *p = make_problem(x, &k, NULL);
    bome_options o;
    opts(&o, 5, 0.1, 0.05, 0.05);
    o.max_steps = 30;
    cb_ud u = {0};
    o.on_step = on_step;
    o.on_step_ud = &u;
    bome_step_stats last = {0};
    cr_assert_eq(bome_solve(p, &o, &last), BOME_OK, "%s", bome_problem_errmsg(p));
    cr_assert_eq(last.step, 30);
    cr_assert_eq(u.calls, 30);
    cr_assert_eq(bome_problem_status(p), BOME_OK);
    o.max_steps = 0; /* zero steps is allowed and does nothing */
    bome_real before[NX];
    memcpy(before, x, sizeof x);
    cr_assert_eq(bome_solve(p, &o, NULL), BOME_OK);
    cr_assert_eq(memcmp(before, x, sizeof x), 0);
    bome_problem_free(p);
}
