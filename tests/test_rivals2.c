/* AID-FP, reverse and stocBiO against the anisotropic quadratic of
 * test_rivals.c's AID-CG tests, solved by hand:
 *   g(v, th) = 1/2 sum a_i (th_i - v_i)^2 + c/2 |th|^2,  f = 1/2 |th - y|^2,
 * so H = diag(a + c), d2g/dv dth = -diag(a), one inner step is
 * th <- r th + alpha a v with r = 1 - alpha (a + c), and every method's u
 * or d th_T / d v is a finite geometric sum per coordinate, written out
 * below without the library. The bilevel answer: v = y (a + c) / a. */
#include <criterion/criterion.h>

#include <bome/opt.h>

#include "aniso_fixture.h"
#include "prec.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

/* y is the problem's one data input when it has one (the minibatch test). */
static bome_node *f_fn(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_node *y = x->n_data ? x->data[0] : bome_const(G, BOME_VECTOR(N), Y);
    return bome_scale(G, bome_sumsq(G, bome_sub(G, x->theta[0], y)), 0.5);
}

static bome_problem *aniso_problem(bome_real *v, bome_real *th)
{
    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_VECTOR(N), v);
    bome_problem_add_inner(p, "theta", BOME_VECTOR(N), th);
    bome_problem_set_objectives(p, f_fn, g_aniso, NULL);
    cr_assert_eq(bome_problem_status(p), BOME_OK, "%s", bome_problem_errmsg(p));
    return p;
}

static void options(bome_options *o, bome_method m, int T, double alpha, double lr)
{
    bome_options_default(o);
    o->method = m;
    o->T = T;
    o->alpha = alpha;
    o->lr_outer = lr;
}

/* sum_{i<n} r^i */
static double geometric(double r, int n)
{
    double s = 0, ri = 1;
    for (int i = 0; i < n; i++, ri *= r)
        s += ri;
    return s;
}

/* The inner momentum buffer by hand, coordinate by coordinate, and
 * whether it carries over into the next step's loop. */
static double M[N];
static bool kept[N];

/* What one step of a method should give, coordinate i, from (v, th). */
typedef void (*expect_fn)(const bome_options *o, int i, double v, double th, const double *y, double *want_v,
                          double *want_th);

/* Three steps of the solver against the hand-written step, each from
 * where the solver stands. y: the targets each step sees (NULL: Y). */
static void steps_by_hand(bome_problem *p, bome_real *v, bome_real *th, const bome_options *o, expect_fn expect,
                          const double *y)
{
    bome_solver *s = bome_solver_new(p, o);
    cr_assert(s && bome_solver_status(s) == BOME_OK, "%s", bome_solver_errmsg(s));
    memset(kept, 0, sizeof kept);
    for (int step = 0; step < 3; step++) {
        double want_v[N], want_th[N], F = 0, hh = 0;
        const double Yd[N] = {Y[0], Y[1], Y[2]}; /* Y is bome_real */
        const double *ys = y ? y + N * step : Yd;
        for (int i = 0; i < N; i++) {
            expect(o, i, v[i], th[i], ys, &want_v[i], &want_th[i]);
            F += 0.5 * (want_th[i] - ys[i]) * (want_th[i] - ys[i]);
            hh += (v[i] - want_v[i]) * (v[i] - want_v[i]) / (o->lr_outer * o->lr_outer);
        }
        bome_step_stats st;
        cr_assert_eq(bome_solver_step(s, &st), BOME_OK, "%s", bome_solver_errmsg(s));
        cr_expect(fabs(st.f - F) < TOL(1e-12), "step %d: f %.17g vs %.17g", step, st.f, F);
        cr_expect(fabs(st.grad_f_norm - sqrt(hh)) < TOL(1e-10), "step %d: |hypergradient| %.17g vs %.17g", step,
                  st.grad_f_norm, sqrt(hh));
        for (int i = 0; i < N; i++) {
            cr_expect(fabs(v[i] - want_v[i]) < TOL(1e-12), "step %d v[%d] %.17g vs %.17g", step, i, v[i], want_v[i]);
            cr_expect(fabs(th[i] - want_th[i]) < TOL(1e-12), "step %d theta[%d] %.17g vs %.17g", step, i, th[i],
                      want_th[i]);
        }
    }
    bome_solver_free(s);
}

static void run_by_hand(const bome_options *o, expect_fn expect)
{
    bome_real v[N], th[N];
    memcpy(v, V0, sizeof v);
    memcpy(th, TH0, sizeof th);
    bome_problem *p = aniso_problem(v, th);
    steps_by_hand(p, v, th, o, expect, NULL);
    bome_problem_free(p);
}

/* From 0 to the bilevel answer (and theta to y). */
static void converges(bome_options *o)
{
    bome_real v[N] = {0}, th[N] = {0};
    bome_problem *p = aniso_problem(v, th);
    o->max_steps = 3000;
    cr_assert_eq(bome_solve(p, o, NULL), BOME_OK, "%s", bome_problem_errmsg(p));
    for (int i = 0; i < N; i++) {
        cr_expect(fabs(v[i] - Y[i] * (A[i] + C) / A[i]) < TOL(1e-6), "%s: v[%d] = %.12g, want %.12g",
                  bome_method_name(o->method), i, v[i], Y[i] * (A[i] + C) / A[i]);
        cr_expect(fabs(th[i] - Y[i]) < TOL(1e-6), "%s: theta[%d] = %.12g", bome_method_name(o->method), i, th[i]);
    }
    bome_problem_free(p);
}

/* theta_T after T plain inner steps. */
/* theta_T after T inner steps, PyTorch's momentum from zero or kept. */
static double inner(const bome_options *o, int i, double v, double th)
{
    for (int t = 0; t < o->T; t++) {
        double mu = t || kept[i] ? o->inner_momentum : 0.0;
        M[i] = mu * M[i] + A[i] * (th - v) + C * th;
        th -= o->alpha * M[i];
    }
    kept[i] = o->inner_momentum_keep;
    return th;
}

/* The implicit methods: u_i = w_i (th_T - y_i), hypergradient -(-a_i) u_i. */
static void implicit_step(const bome_options *o, int i, double v, double th, const double *y, double w,
                          double *want_v, double *want_th)
{
    *want_th = inner(o, i, v, th);
    *want_v = v - o->lr_outer * A[i] * w * (*want_th - y[i]);
}

/* ---- AID-FP ------------------------------------------------------------------- */

/* K iterations of u <- u - beta (H u - b) from 0: u = beta sum_{k<K} r^k b.
 * With inner momentum mu, the released two-block recursion on (a, b), one
 * coordinate, h = a + c: a' = a - beta h a + h b + 1, b' = -beta mu a + mu b,
 * u = beta a - b (per unit of th_T - y). */
static void aid_fp_expect(const bome_options *o, int i, double v, double th, const double *y, double *want_v,
                          double *want_th)
{
    double K, beta, mu = o->inner_momentum, h = A[i] + C;
    bome_options_get(o, "fp_steps", &K);
    bome_options_get(o, "fp_lr", &beta);
    if (beta == 0)
        beta = o->alpha;
    double w = beta * geometric(1 - beta * h, (int)K);
    if (mu > 0) {
        double a = 0, b = 0;
        for (int k = 0; k < (int)K; k++) {
            double a1 = a - beta * h * a + h * b + 1;
            b = -beta * mu * a + mu * b;
            a = a1;
        }
        w = beta * a - b;
    }
    implicit_step(o, i, v, th, y, w, want_v, want_th);
}

Test(aid_fp, fixed_point_iterations_by_hand)
{
    bome_options o;
    options(&o, BOME_METHOD_AID_FP, 4, 0.1, 0.3);
    cr_assert_eq(bome_options_set(&o, "fp_steps", 5), BOME_OK);
    cr_assert_eq(bome_options_set(&o, "fp_lr", 0.2), BOME_OK);
    run_by_hand(&o, aid_fp_expect);
}

/* fp_lr 0 is the released code's beta: the inner step alpha. */
Test(aid_fp, default_beta_is_alpha)
{
    bome_options o;
    options(&o, BOME_METHOD_AID_FP, 3, 0.15, 0.3);
    run_by_hand(&o, aid_fp_expect);
}

Test(aid_fp, momentum_map_by_hand)
{
    bome_options o;
    options(&o, BOME_METHOD_AID_FP, 4, 0.1, 0.3);
    o.inner_momentum = 0.6;
    cr_assert_eq(bome_options_set(&o, "fp_steps", 6), BOME_OK);
    run_by_hand(&o, aid_fp_expect);
}

Test(aid_fp, converges_to_the_bilevel_answer)
{
    bome_options o;
    options(&o, BOME_METHOD_AID_FP, 5, 0.15, 0.5);
    converges(&o);
}

/* ---- reverse ------------------------------------------------------------------ */

/* th_T and d th_T / d v with only the last K steps differentiated: the
 * first T - K carry no derivative, and their momentum enters the
 * differentiated steps as a constant. */
static void reverse_expect(const bome_options *o, int i, double v, double th, const double *y, double *want_v,
                           double *want_th)
{
    double Kd;
    bome_options_get(o, "reverse_steps", &Kd);
    int K = (int)Kd < o->T ? (int)Kd : o->T;
    double mu = o->inner_momentum, m = 0, d = 0, dm = 0;
    for (int t = 0; t < o->T; t++) {
        bool diff = t >= o->T - K;
        double gr = A[i] * (th - v) + C * th, dgr = diff ? (A[i] + C) * d - A[i] : 0;
        m = t ? mu * m + gr : gr;
        dm = t ? mu * dm + dgr : dgr;
        th -= o->alpha * m;
        d -= o->alpha * dm;
    }
    if (mu == 0) /* without momentum, the finite sum: alpha a sum_{i<K} r^i */
        cr_assert(fabs(d - o->alpha * A[i] * geometric(1 - o->alpha * (A[i] + C), K)) < 1e-14);
    *want_th = th;
    *want_v = v - o->lr_outer * (th - y[i]) * d;
}

static void reverse_case(int T, int K, double mu)
{
    bome_options o;
    options(&o, BOME_METHOD_REVERSE, T, 0.1, 0.3);
    o.inner_momentum = mu;
    cr_assert_eq(bome_options_set(&o, "reverse_steps", K), BOME_OK);
    run_by_hand(&o, reverse_expect);
}

Test(reverse, last_K_steps_by_hand) { reverse_case(6, 2, 0); }
Test(reverse, momentum_resumed_not_differentiated) { reverse_case(6, 2, 0.6); }
Test(reverse, K_clipped_to_T) { reverse_case(4, 10, 0.6); }

/* All T steps differentiated is ITD, to the last bit or nearly, also when
 * theta starts at v every step and the sweep goes through that start. */
static void same_as_itd(bool start_at_v)
{
    bome_real v[2][N], th[2][N];
    for (int m = 0; m < 2; m++) {
        memcpy(v[m], V0, sizeof v[m]);
        memcpy(th[m], TH0, sizeof th[m]);
        bome_problem *p = aniso_problem(v[m], th[m]);
        if (start_at_v)
            cr_assert_eq(bome_problem_set_inner_start(p, 0, 0), BOME_OK, "%s", bome_problem_errmsg(p));
        bome_options o;
        options(&o, m ? BOME_METHOD_ITD : BOME_METHOD_REVERSE, 5, 0.1, 0.3);
        o.inner_momentum = 0.5;
        o.max_steps = 20;
        cr_assert_eq(bome_solve(p, &o, NULL), BOME_OK, "%s", bome_problem_errmsg(p));
        bome_problem_free(p);
    }
    for (int i = 0; i < N; i++)
        cr_expect(fabs(v[0][i] - v[1][i]) < TOL(1e-14) && fabs(th[0][i] - th[1][i]) < TOL(1e-14), "[%d] %.17g vs %.17g", i,
                  v[0][i], v[1][i]);
}

Test(reverse, K_at_least_T_is_itd) { same_as_itd(false); }
Test(reverse, K_at_least_T_is_itd_from_v) { same_as_itd(true); }

Test(reverse, converges_to_the_bilevel_answer)
{
    bome_options o;
    options(&o, BOME_METHOD_REVERSE, 8, 0.15, 0.5);
    bome_options_set(&o, "reverse_steps", 3);
    converges(&o);
}

/* ---- stocBiO ------------------------------------------------------------------ */

/* u = eta sum_{i<Q} r^i b, r = 1 - eta (a + c); released: sum_{i=1..Q} r^i b + eta r^Q b. */
static void stocbio_expect(const bome_options *o, int i, double v, double th, const double *y, double *want_v,
                           double *want_th)
{
    double Q, eta, form;
    bome_options_get(o, "neumann_steps", &Q);
    bome_options_get(o, "neumann_lr", &eta);
    bome_options_get(o, "neumann_form", &form);
    double r = 1 - eta * (A[i] + C), w = eta * geometric(r, (int)Q);
    if (form)
        w = r * geometric(r, (int)Q) + eta * pow(r, Q);
    implicit_step(o, i, v, th, y, w, want_v, want_th);
}

Test(stocbio, neumann_series_by_hand)
{
    bome_options o;
    options(&o, BOME_METHOD_STOCBIO, 4, 0.1, 0.3);
    run_by_hand(&o, stocbio_expect); /* the defaults, Q = 3, eta = 0.1 */
    cr_assert_eq(bome_options_set(&o, "neumann_steps", 6), BOME_OK);
    run_by_hand(&o, stocbio_expect);
}

/* The released inner optimizer is made once: with inner_momentum_keep its
 * buffer carries over from one outer step to the next. */
Test(stocbio, keeps_the_inner_momentum_where_asked)
{
    bome_options o;
    options(&o, BOME_METHOD_STOCBIO, 4, 0.1, 0.3);
    o.inner_momentum = 0.6;
    o.inner_momentum_keep = 1;
    run_by_hand(&o, stocbio_expect);
    o.inner_momentum_keep = 0;
    run_by_hand(&o, stocbio_expect);
}

Test(stocbio, released_form_by_hand)
{
    bome_options o;
    options(&o, BOME_METHOD_STOCBIO, 4, 0.1, 0.05);
    cr_assert_eq(bome_options_set(&o, "neumann_form", 1), BOME_OK);
    run_by_hand(&o, stocbio_expect);
}

/* The refill hook runs before every step, so each step's products see that
 * step's batch: here the target y, redrawn from the solver's rng. */
typedef struct batch { bome_real *y; double drawn[3 * N]; } batch;

static int refill_y(void *ud, bome_rng *rng, long step)
{
    batch *b = ud;
    for (int i = 0; i < N; i++)
        b->y[i] = b->drawn[N * step + i] = Y[i] + bome_rng_normal(rng);
    return 0;
}

Test(stocbio, each_step_sees_its_minibatch)
{
    bome_real v[N], th[N], y[N] = {0};
    memcpy(v, V0, sizeof v);
    memcpy(th, TH0, sizeof th);
    bome_problem *p = aniso_problem(v, th);
    bome_problem_add_input(p, "y", BOME_VECTOR(N), y);
    bome_options o;
    options(&o, BOME_METHOD_STOCBIO, 4, 0.1, 0.3);
    o.seed = 7;
    batch b = {y, {0}};
    o.refill = refill_y;
    o.refill_ud = &b;
    /* the targets are drawn as the steps run; a copy of the rng draws them first */
    bome_rng rng;
    bome_rng_seed(&rng, o.seed);
    for (long k = 0; k < 3; k++)
        refill_y(&b, &rng, k);
    double want[3 * N];
    memcpy(want, b.drawn, sizeof want);
    steps_by_hand(p, v, th, &o, stocbio_expect, want);
    cr_expect(memcmp(b.drawn, want, sizeof want) == 0, "the solver's rng drew other batches");
    bome_problem_free(p);
}

Test(stocbio, converges_to_the_bilevel_answer)
{
    bome_options o;
    options(&o, BOME_METHOD_STOCBIO, 5, 0.15, 0.5);
    converges(&o);
}

/* ---- All three ---------------------------------------------------------------- */

static const bome_method METHODS[3] = {BOME_METHOD_AID_FP, BOME_METHOD_REVERSE, BOME_METHOD_STOCBIO};

Test(rivals2, boxes_hold)
{
    for (int m = 0; m < 3; m++) {
        bome_real v[N] = {5, 5, 5}, th[N] = {0};
        bome_problem *p = aniso_problem(v, th);
        bome_problem_set_bounds(p, BOME_INNER, 0, -0.5, 0.5);
        bome_problem_set_bounds(p, BOME_OUTER, 0, -2, 4.5);
        bome_options o;
        options(&o, METHODS[m], 5, 0.3, 0.1);
        o.max_steps = 20;
        cr_assert_eq(bome_solve(p, &o, NULL), BOME_OK, "%s", bome_problem_errmsg(p));
        for (int i = 0; i < N; i++) {
            cr_expect(th[i] >= -0.5 && th[i] <= 0.5, "%s: theta[%d] = %g", bome_method_name(METHODS[m]), i, th[i]);
            cr_expect(v[i] >= -2 && v[i] <= 4.5, "%s: v[%d] = %g", bome_method_name(METHODS[m]), i, v[i]);
        }
        cr_expect(fabs(th[0] - 0.5) < TOL(1e-12), "%s: theta[0] = %.17g", bome_method_name(METHODS[m]), th[0]);
        bome_problem_free(p);
    }
}

/* The released code's settings (see each method's file). */
Test(rivals2, defaults)
{
    static const struct { const char *name; double def; } want[] = {
        {"fp_steps", 10}, {"fp_lr", 0}, {"reverse_steps", 10},
        {"neumann_steps", 3}, {"neumann_lr", 0.1}, {"neumann_form", 0},
    };
    bome_options o;
    bome_options_default(&o);
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        double x = -1;
        cr_expect_eq(bome_options_get(&o, want[k].name, &x), BOME_OK, "%s", want[k].name);
        cr_expect_eq(x, want[k].def, "%s = %g", want[k].name, x);
    }
}

Test(rivals2, settings_refuse_zero_steps)
{
    const char *names[3] = {"fp_steps", "reverse_steps", "neumann_steps"};
    for (int m = 0; m < 3; m++) {
        bome_options o;
        bome_options_default(&o);
        o.method = METHODS[m];
        cr_expect_eq(bome_options_set(&o, names[m], 0), BOME_ERR_ARG, "%s", names[m]);
        cr_expect_eq(bome_options_set(&o, names[m], 2.5), BOME_ERR_ARG, "%s", names[m]);
        bome_option_info info;
        cr_assert_eq(bome_option_info_at(bome_option_find(names[m]), &info), BOME_OK, "%s", names[m]);
        cr_expect_eq(info.method, (int)METHODS[m], "%s belongs to %d", names[m], info.method);
    }
}
