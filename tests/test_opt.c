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
#include "opt_fixture.h"
#include "prec.h"

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
        check_stats(&st, &e, TOL(1e-10));
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
        check_stats(&st, &e, TOL(1e-10));
        for (int i = 0; i < NX; i++) {
            double lr = i < OFF[2] ? lr_outer : lr_inner;
            CLOSE(x[i] - old[i], -lr * (e.gf[i] + st.lambda * e.gq[i]), TOL(1e-10));
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
    bome_options_set(&o, "phi", phi);
    bome_options_set(&o, "eta", eta);
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
        CLOSE(st.phi, phi_v, TOL(1e-10));
        /* the grad form as the released toys compute it: eta - <gf, gq> / (|gq|^2 + eps) */
        CLOSE(st.lambda, phi == BOME_PHI_GRAD ? fmax(eta - fq / (qq + 1e-8), 0) : fmax((phi_v - fq) / (qq + 1e-8), 0),
              TOL(1e-10));
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
    CLOSE(st.kkt, v + e.q, TOL(1e-10));
    CLOSE(st.kkt, e.kkt, TOL(1e-10));
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
    /* grad q = 0: the released form gives lambda = eta, which moves nothing */
    cr_assert_eq(st.lambda, 0.5);
    cr_assert_eq(st.q, 0.0);
    /* buf = b on the first step: x1 = x0 - lr b */
    for (int i = 0; i < NX; i++)
        CLOSE(x[i], X0[i] - (i < 4 ? 0.1 : 0.2) * BLIN[i], TOL(1e-14));
    /* then buf = 0.9 b + b: x2 = x0 - lr b - 1.9 lr b = x0 - 2.9 lr b */
    cr_assert_eq(bome_solver_step(s, &st), BOME_OK, "%s", bome_solver_errmsg(s));
    for (int i = 0; i < NX; i++)
        CLOSE(x[i], X0[i] - 2.9 * (i < 4 ? 0.1 : 0.2) * BLIN[i], TOL(1e-14));
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
            CLOSE(x[i], X0[i] - k * lr * BLIN[i] / (fabs(BLIN[i]) + 1e-8), TOL(1e-13));
        }
    }
    bome_solver_free(s);
    bome_problem_free(p);
}

/* Two steps on the full problem against the hand-written rules, with the
 * direction from the reference at each iterate. */
static void rule_case(bome_update u, double inner_momentum, int keep)
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
    o.inner_momentum_keep = keep;
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
        check_stats(&st, &e, TOL(1e-10));
        emu_step(&m, &o, &b, want, e.d);
        for (int i = 0; i < NX; i++)
            CLOSE(x[i], want[i], TOL(1e-10));
    }
    bome_solver_free(s);
    bome_problem_free(p);
    bome_graph_free(r.G);
}

Test(update, sgd_full_problem) { rule_case(BOME_UPDATE_SGD, 0, 0); }
Test(update, momentum_full_problem) { rule_case(BOME_UPDATE_MOMENTUM, 0, 0); }
Test(update, adam_full_problem) { rule_case(BOME_UPDATE_ADAM, 0, 0); }
Test(update, inner_momentum) { rule_case(BOME_UPDATE_SGD, 0.7, 0); }
Test(update, inner_momentum_kept_across_steps) { rule_case(BOME_UPDATE_MOMENTUM, 0.7, 1); }

/* Keeping the buffer must change the result: the test above would pass for
 * a solver that ignored the flag only if the two coincided. */
Test(update, inner_momentum_keep_differs)
{
    bome_real out[2][NX];
    for (int keep = 0; keep < 2; keep++) {
        fctx k = {1, 0};
        memcpy(out[keep], X0, sizeof X0);
        bome_problem *p = make_problem(out[keep], &k, NULL);
        bome_options o;
        opts(&o, 6, 0.1, 0.02, 0.04);
        o.inner_momentum = 0.7;
        o.inner_momentum_keep = keep;
        bome_solver *s = make_solver(p, &o);
        for (int step = 0; step < 3; step++)
            cr_assert_eq(bome_solver_step(s, NULL), BOME_OK, "%s", bome_solver_errmsg(s));
        bome_solver_free(s);
        bome_problem_free(p);
    }
    double diff = 0;
    for (int i = 0; i < NX; i++)
        diff = fmax(diff, fabs(out[0][i] - out[1][i]));
    cr_assert_gt(diff, 1e-6, "keeping the inner momentum changed nothing");
}

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
        check_stats(&st, &e, TOL(1e-10));
        for (int i = 0; i < NX; i++) {
            cr_assert(x[i] >= b.lo[i] && x[i] <= b.hi[i], "step %d: x[%d] = %g outside [%g, %g]", step + 1, i,
                      x[i], b.lo[i], b.hi[i]);
            CLOSE(x[i], clampd(want[i] - 0.2 * e.d[i], b.lo[i], b.hi[i]), TOL(1e-10));
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
    check_stats(&st, &e, TOL(1e-10));
    bome_solver_free(s);
    bome_problem_free(p);
    bome_graph_free(r.G);
}

