/* The rivals (options.method) against problems solved by hand.
 *
 * ITD (BOME_METHOD_ITD) against a problem whose unrolled
 * inner loop is known in closed form, coordinate by coordinate:
 *   g(v, th) = 1/2 |th - v|^2 + c/2 |th|^2,  f(th) = 1/2 |th - y|^2,
 * so grad_th g = (1 + c) th - v, the inner steps are affine in v, and
 * d th_T / d v follows by carrying the derivative through the same
 * recursion (forward mode by hand). The bilevel answer is v = (1 + c) y. */
#include <criterion/criterion.h>

#include <bome/opt.h>

#include "aniso_fixture.h"
#include "prec.h"

#include <math.h>
#include <string.h>


static bome_node *g_fn(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_node *d = bome_sub(G, x->theta[0], x->v[0]);
    return bome_add(G, bome_scale(G, bome_sumsq(G, d), 0.5), bome_scale(G, bome_sumsq(G, x->theta[0]), 0.5 * C));
}

static bome_node *f_fn(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_node *y = bome_const(G, BOME_VECTOR(N), Y);
    return bome_scale(G, bome_sumsq(G, bome_sub(G, x->theta[0], y)), 0.5);
}

static bome_problem *problem(bome_real *v, bome_real *th)
{
    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_VECTOR(N), v);
    bome_problem_add_inner(p, "theta", BOME_VECTOR(N), th);
    bome_problem_set_objectives(p, f_fn, g_fn, NULL);
    cr_assert_eq(bome_problem_status(p), BOME_OK, "%s", bome_problem_errmsg(p));
    return p;
}

static void itd_options(bome_options *o, int T, double alpha, double mu, double lr)
{
    bome_options_default(o);
    o->method = BOME_METHOD_ITD;
    o->T = T;
    o->alpha = alpha;
    o->inner_momentum = mu;
    o->lr_outer = lr;
}

/* th_T and d th_T / d v for one coordinate, momentum from zero. */
static void unroll(double th, double v, int T, double alpha, double mu, double *thT, double *dthT)
{
    double d = 0, m = 0, dm = 0;
    for (int t = 0; t < T; t++) {
        double gr = (1 + C) * th - v, dgr = (1 + C) * d - 1;
        if (mu > 0) {
            m = t ? mu * m + gr : gr;
            dm = t ? mu * dm + dgr : dgr;
        } else {
            m = gr;
            dm = dgr;
        }
        th -= alpha * m;
        d -= alpha * dm;
    }
    *thT = th;
    *dthT = d;
}

static void one_step_case(double mu)
{
    bome_real v[N] = {0.3, 0.1, -0.2}, th[N] = {1.0, -0.5, 0.25};
    bome_real v0[N], th0[N];
    memcpy(v0, v, sizeof v);
    memcpy(th0, th, sizeof th);
    bome_problem *p = problem(v, th);
    bome_options o;
    itd_options(&o, 7, 0.2, mu, 0.3);
    bome_solver *s = bome_solver_new(p, &o);
    cr_assert(s && bome_solver_status(s) == BOME_OK, "%s", bome_solver_errmsg(s));
    for (int step = 0; step < 3; step++) {
        double want_v[N], want_th[N], F = 0, G = 0, hh = 0;
        for (int i = 0; i < N; i++) {
            double tT, dT;
            unroll(th[i], v[i], o.T, o.alpha, mu, &tT, &dT);
            double h = (tT - Y[i]) * dT; /* dF/dv_i */
            want_v[i] = v[i] - o.lr_outer * h;
            want_th[i] = tT;
            F += 0.5 * (tT - Y[i]) * (tT - Y[i]);
            G += 0.5 * (tT - v[i]) * (tT - v[i]) + 0.5 * C * tT * tT;
            hh += h * h;
        }
        bome_step_stats st;
        cr_assert_eq(bome_solver_step(s, &st), BOME_OK, "%s", bome_solver_errmsg(s));
        cr_expect(fabs(st.f - F) < TOL(1e-12), "f %.17g vs %.17g", st.f, F);
        cr_expect(fabs(st.g - G) < TOL(1e-12), "g %.17g vs %.17g", st.g, G);
        cr_expect(fabs(st.grad_f_norm - sqrt(hh)) < TOL(1e-12), "hypergradient norm %.17g vs %.17g", st.grad_f_norm,
                  sqrt(hh));
        cr_expect(st.q == 0 && st.lambda == 0);
        for (int i = 0; i < N; i++) {
            cr_expect(fabs(v[i] - want_v[i]) < TOL(1e-12), "step %d v[%d] %.17g vs %.17g", step, i, v[i], want_v[i]);
            cr_expect(fabs(th[i] - want_th[i]) < TOL(1e-12), "step %d theta[%d] %.17g vs %.17g", step, i, th[i],
                      want_th[i]);
        }
    }
    cr_expect(memcmp(v, v0, sizeof v) != 0 && memcmp(th, th0, sizeof th) != 0, "nothing moved");
    bome_solver_free(s);
    bome_problem_free(p);
}

Test(itd, hypergradient_through_the_unrolled_loop) { one_step_case(0); }
Test(itd, with_inner_momentum_from_zero) { one_step_case(0.6); }

Test(itd, converges_to_the_bilevel_answer)
{
    bome_real v[N] = {0}, th[N] = {0};
    bome_problem *p = problem(v, th);
    bome_options o;
    itd_options(&o, 5, 0.3, 0, 0.5);
    o.max_steps = 3000;
    bome_step_stats last;
    cr_assert_eq(bome_solve(p, &o, &last), BOME_OK, "%s", bome_problem_errmsg(p));
    for (int i = 0; i < N; i++) {
        cr_expect(fabs(v[i] - (1 + C) * Y[i]) < TOL(1e-6), "v[%d] = %.12g, want %.12g", i, v[i], (1 + C) * Y[i]);
        cr_expect(fabs(th[i] - Y[i]) < TOL(1e-6), "theta[%d] = %.12g, want %.12g", i, th[i], Y[i]);
    }
    cr_expect_lt(last.kkt, TOL(1e-12));
    bome_problem_free(p);
}

/* A box on theta is a clamp inside the unrolled loop: theta_T stays in it. */
Test(itd, inner_box_holds)
{
    bome_real v[N] = {5, 5, 5}, th[N] = {0};
    bome_problem *p = problem(v, th);
    bome_problem_set_bounds(p, BOME_INNER, 0, -0.5, 0.5);
    bome_options o;
    itd_options(&o, 5, 0.3, 0, 0.1);
    o.max_steps = 20;
    cr_assert_eq(bome_solve(p, &o, NULL), BOME_OK, "%s", bome_problem_errmsg(p));
    for (int i = 0; i < N; i++)
        cr_expect(th[i] >= -0.5 && th[i] <= 0.5, "theta[%d] = %g", i, th[i]);
    cr_expect(fabs(th[0] - 0.5) < TOL(1e-12), "theta[0] = %.17g: pushed to the box by v = 5", th[0]);
    bome_problem_free(p);
}

/* ---- AID-CG ------------------------------------------------------------------- */

/* g(v, th) = 1/2 sum a_i (th_i - v_i)^2 + c/2 |th|^2, f = 1/2 |th - y|^2:
 * H = diag(a + c) with three distinct eigenvalues, so three CG iterations
 * solve H u = th_T - y exactly; d2g/dv dth = -diag(a), hence the
 * hypergradient a (th_T - y) / (a + c). The answer: v = y (a + c) / a. */

static bome_problem *aniso_problem(bome_real *v, bome_real *th)
{
    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_VECTOR(N), v);
    bome_problem_add_inner(p, "theta", BOME_VECTOR(N), th);
    bome_problem_set_objectives(p, f_fn, g_aniso, NULL);
    return p;
}

static void aid_step_case(int cg_steps, double tol)
{
    bome_real v[N] = {0.3, 0.1, -0.2}, th[N] = {1.0, -0.5, 0.25};
    bome_problem *p = aniso_problem(v, th);
    bome_options o;
    bome_options_default(&o);
    o.method = BOME_METHOD_AID_CG;
    bome_options_set(&o, "cg_steps", cg_steps);
    o.T = 4;
    o.alpha = 0.1;
    o.lr_outer = 0.3;
    bome_solver *s = bome_solver_new(p, &o);
    cr_assert(s && bome_solver_status(s) == BOME_OK, "%s", bome_solver_errmsg(s));
    for (int step = 0; step < 3; step++) {
        double want_v[N], want_th[N], F = 0;
        for (int i = 0; i < N; i++) {
            double t = th[i];
            for (int k = 0; k < o.T; k++)
                t -= o.alpha * (A[i] * (t - v[i]) + C * t);
            want_th[i] = t;
            want_v[i] = v[i] - o.lr_outer * A[i] * (t - Y[i]) / (A[i] + C);
            F += 0.5 * (t - Y[i]) * (t - Y[i]);
        }
        bome_step_stats st;
        cr_assert_eq(bome_solver_step(s, &st), BOME_OK, "%s", bome_solver_errmsg(s));
        cr_expect(fabs(st.f - F) < TOL(1e-12), "f %.17g vs %.17g", st.f, F);
        for (int i = 0; i < N; i++) {
            cr_expect(fabs(v[i] - want_v[i]) <= tol, "step %d v[%d] %.17g vs %.17g", step, i, v[i], want_v[i]);
            cr_expect(fabs(th[i] - want_th[i]) < TOL(1e-12), "step %d theta[%d]", step, i);
        }
    }
    bome_solver_free(s);
    bome_problem_free(p);
}

Test(aid, exact_after_as_many_cg_steps_as_eigenvalues) { aid_step_case(3, TOL(1e-12)); }
Test(aid, more_cg_steps_change_nothing) { aid_step_case(10, TOL(1e-12)); }

/* One CG step is not the solve: the check above must be able to fail. */
Test(aid, one_cg_step_is_not_the_solve)
{
    bome_real v[N] = {0.3, 0.1, -0.2}, th[N] = {1.0, -0.5, 0.25}, v3[N], th3[N];
    memcpy(v3, v, sizeof v);
    memcpy(th3, th, sizeof th);
    for (int run = 0; run < 2; run++) {
        bome_problem *p = run ? aniso_problem(v3, th3) : aniso_problem(v, th);
        bome_options o;
        bome_options_default(&o);
        o.method = BOME_METHOD_AID_CG;
        bome_options_set(&o, "cg_steps", run ? 3 : 1);
        o.max_steps = 1;
        cr_assert_eq(bome_solve(p, &o, NULL), BOME_OK, "%s", bome_problem_errmsg(p));
        bome_problem_free(p);
    }
    double diff = 0;
    for (int i = 0; i < N; i++)
        diff = fmax(diff, fabs(v[i] - v3[i]));
    cr_expect_gt(diff, 1e-6);
}

Test(aid, converges_to_the_bilevel_answer)
{
    bome_real v[N] = {0}, th[N] = {0};
    bome_problem *p = aniso_problem(v, th);
    bome_options o;
    bome_options_default(&o);
    o.method = BOME_METHOD_AID_CG;
    o.T = 5;
    o.alpha = 0.15;
    o.lr_outer = 0.5;
    o.max_steps = 3000;
    cr_assert_eq(bome_solve(p, &o, NULL), BOME_OK, "%s", bome_problem_errmsg(p));
    for (int i = 0; i < N; i++)
        cr_expect(fabs(v[i] - Y[i] * (A[i] + C) / A[i]) < TOL(1e-6), "v[%d] = %.12g, want %.12g", i, v[i],
                  Y[i] * (A[i] + C) / A[i]);
    bome_problem_free(p);
}

Test(aid, cg_steps_must_be_positive)
{
    bome_options o;
    bome_options_default(&o);
    o.method = BOME_METHOD_AID_CG;
    cr_expect_eq(bome_options_set(&o, "cg_steps", 0), BOME_ERR_ARG);
    cr_expect_eq(bome_options_set(&o, "cg_steps", 2.5), BOME_ERR_ARG);
    double k = 0;
    cr_expect_eq(bome_options_get(&o, "cg_steps", &k), BOME_OK);
    cr_expect_eq(k, 10, "a refused value leaves the default: %g", k);
    /* a slot written around bome_options_set is still caught by the solver */
    bome_real v[N] = {0}, th[N] = {0};
    bome_problem *p = aniso_problem(v, th);
    for (int i = 0; i < BOME_OPTION_SLOTS; i++)
        o.param[i] = 0;
    bome_solver *s = bome_solver_new(p, &o);
    cr_assert_neq(bome_solver_status(s), BOME_OK);
    cr_expect(strstr(bome_solver_errmsg(s), "cg_steps = 0"), "%s", bome_solver_errmsg(s));
    bome_solver_free(s);
    bome_problem_free(p);
}

/* The rivals restart the inner momentum every step, as the reference's do:
 * inner_momentum_keep changes nothing for them. */
Test(aid, inner_momentum_keep_is_ignored)
{
    bome_real v[2][N], th[2][N];
    for (int keep = 0; keep < 2; keep++) {
        memcpy(v[keep], (bome_real[N]){0.3, 0.1, -0.2}, sizeof v[keep]);
        memcpy(th[keep], (bome_real[N]){1.0, -0.5, 0.25}, sizeof th[keep]);
        bome_problem *p = aniso_problem(v[keep], th[keep]);
        bome_options o;
        bome_options_default(&o);
        o.method = BOME_METHOD_AID_CG;
        o.inner_momentum = 0.5;
        o.inner_momentum_keep = keep;
        o.max_steps = 4;
        cr_assert_eq(bome_solve(p, &o, NULL), BOME_OK, "%s", bome_problem_errmsg(p));
        bome_problem_free(p);
    }
    cr_expect(memcmp(v[0], v[1], sizeof v[0]) == 0 && memcmp(th[0], th[1], sizeof th[0]) == 0);
}

/* ---- BSG-1 -------------------------------------------------------------------- */

/* On the anisotropic quadratic, by hand: theta_T from T plain steps, then
 * grad_theta f = theta_T - y, grad_theta g = a (theta_T - v) + c theta_T,
 * grad_v g = -a (theta_T - v), and v -= lr * (-<gf, gg> / (|gg|^2 + eps)) grad_v g. */
/* f with a v term, kappa/2 |v|^2: BSG-1's direction keeps grad_v f = kappa v,
 * as the released code's does. */
static const double KAPPA = 0.7;
static bome_node *f_with_v(bome_graph *G, const bome_vars *x, void *ctx)
{
    return bome_add(G, f_fn(G, x, ctx), bome_scale(G, bome_sumsq(G, x->v[0]), 0.5 * KAPPA));
}

static void bsg1_case(double kappa)
{
    bome_real v[N] = {0.3, 0.1, -0.2}, th[N] = {1.0, -0.5, 0.25};
    bome_problem *p = aniso_problem(v, th);
    if (kappa)
        bome_problem_set_objectives(p, f_with_v, g_aniso, NULL);
    bome_options o;
    bome_options_default(&o);
    o.method = BOME_METHOD_BSG1;
    o.T = 3;
    o.alpha = 0.1;
    o.lr_outer = 0.4;
    bome_options_set(&o, "bsg_eps", 1e-4);
    double eps = 1e-4;
    bome_solver *s = bome_solver_new(p, &o);
    cr_assert(s && bome_solver_status(s) == BOME_OK, "%s", bome_solver_errmsg(s));
    for (int step = 0; step < 3; step++) {
        double t[N], fg = 0, gg = 0, want_v[N];
        for (int i = 0; i < N; i++) {
            t[i] = th[i];
            for (int k = 0; k < o.T; k++)
                t[i] -= o.alpha * (A[i] * (t[i] - v[i]) + C * t[i]);
            double gt = A[i] * (t[i] - v[i]) + C * t[i];
            fg += (t[i] - Y[i]) * gt;
            gg += gt * gt;
        }
        for (int i = 0; i < N; i++)
            want_v[i] = v[i] - o.lr_outer * (kappa * v[i] + (-fg / (gg + eps)) * (-A[i] * (t[i] - v[i])));
        bome_step_stats st;
        cr_assert_eq(bome_solver_step(s, &st), BOME_OK, "%s", bome_solver_errmsg(s));
        for (int i = 0; i < N; i++) {
            cr_expect(fabs(v[i] - want_v[i]) < TOL(1e-12), "step %d v[%d] %.17g vs %.17g", step, i, v[i], want_v[i]);
            cr_expect(fabs(th[i] - t[i]) < TOL(1e-12), "step %d theta[%d]", step, i);
        }
    }
    bome_solver_free(s);
    bome_problem_free(p);
}

Test(bsg1, step_by_hand) { bsg1_case(0); }
Test(bsg1, step_by_hand_keeps_grad_v_f) { bsg1_case(KAPPA); }

/* sqrt(|theta|^2) at theta = 0 has a NaN gradient: every rival must stop
 * with BOME_ERR_NONFINITE and leave v and theta where they were. */
static bome_node *f_nan(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_real one = 1;
    bome_node *d = bome_sub(G, x->v[0], bome_const(G, BOME_VECTOR(1), &one));
    return bome_add(G, bome_sumsq(G, d), bome_sqrt(G, bome_sumsq(G, x->theta[0])));
}

static bome_node *g_nan(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    return bome_sumsq(G, bome_mul(G, x->theta[0], x->v[0]));
}

Test(aid, nan_gradient_stops_the_run)
{
    bome_method methods[] = {BOME_METHOD_AID_CG,  BOME_METHOD_ITD,     BOME_METHOD_BSG1,  BOME_METHOD_AID_FP,
                             BOME_METHOD_REVERSE, BOME_METHOD_STOCBIO, BOME_METHOD_PENALTY, BOME_METHOD_BVFSM,
                             BOME_METHOD_F2SA,    BOME_METHOD_VPBGD};
    for (int m = 0; m < (int)(sizeof methods / sizeof methods[0]); m++) {
        bome_real v[1] = {3}, th[1] = {0};
        bome_problem *p = bome_problem_new();
        bome_problem_add_outer(p, "v", BOME_VECTOR(1), v);
        bome_problem_add_inner(p, "theta", BOME_VECTOR(1), th);
        bome_problem_set_objectives(p, f_nan, g_nan, NULL);
        bome_options o;
        bome_options_default(&o);
        o.method = methods[m];
        o.max_steps = 5;
        cr_expect_eq(bome_solve(p, &o, NULL), BOME_ERR_NONFINITE, "method %d", (int)methods[m]);
        cr_expect(strstr(bome_problem_errmsg(p), "non-finite") || strstr(bome_problem_errmsg(p), "nan"),
                  "method %d: %s", (int)methods[m], bome_problem_errmsg(p));
        cr_expect(v[0] == 3 && th[0] == 0, "method %d moved to v = %g, theta = %g", (int)methods[m], v[0], th[0]);
        bome_problem_free(p);
    }
}
