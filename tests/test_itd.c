/* ITD (options.method = BOME_METHOD_ITD) against a problem whose unrolled
 * inner loop is known in closed form, coordinate by coordinate:
 *   g(v, th) = 1/2 |th - v|^2 + c/2 |th|^2,  f(th) = 1/2 |th - y|^2,
 * so grad_th g = (1 + c) th - v, the inner steps are affine in v, and
 * d th_T / d v follows by carrying the derivative through the same
 * recursion (forward mode by hand). The bilevel answer is v = (1 + c) y. */
#include <criterion/criterion.h>

#include <bome/opt.h>

#include <math.h>
#include <string.h>

enum { N = 3 };
static const double C = 0.5, Y[N] = {0.4, -1.2, 2.0};

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
        cr_expect(fabs(st.f - F) < 1e-12, "f %.17g vs %.17g", st.f, F);
        cr_expect(fabs(st.g - G) < 1e-12, "g %.17g vs %.17g", st.g, G);
        cr_expect(fabs(st.grad_f_norm - sqrt(hh)) < 1e-12, "hypergradient norm %.17g vs %.17g", st.grad_f_norm,
                  sqrt(hh));
        cr_expect(st.q == 0 && st.lambda == 0);
        for (int i = 0; i < N; i++) {
            cr_expect(fabs(v[i] - want_v[i]) < 1e-12, "step %d v[%d] %.17g vs %.17g", step, i, v[i], want_v[i]);
            cr_expect(fabs(th[i] - want_th[i]) < 1e-12, "step %d theta[%d] %.17g vs %.17g", step, i, th[i],
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
        cr_expect(fabs(v[i] - (1 + C) * Y[i]) < 1e-6, "v[%d] = %.12g, want %.12g", i, v[i], (1 + C) * Y[i]);
        cr_expect(fabs(th[i] - Y[i]) < 1e-6, "theta[%d] = %.12g, want %.12g", i, th[i], Y[i]);
    }
    cr_expect_lt(last.kkt, 1e-12);
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
    cr_expect(fabs(th[0] - 0.5) < 1e-12, "theta[0] = %.17g: pushed to the box by v = 5", th[0]);
    bome_problem_free(p);
}
