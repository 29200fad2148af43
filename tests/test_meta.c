/* tests/test_meta.c: meta-learning (UFO-BLO's setting): theta_0 = v, a task
 * per step, and the estimators fo-blo, ufo-blo and exact, on the authors'
 * toy against its closed forms, and exact against ITD unrolled from v on a
 * problem whose g depends on v directly (the mixed terms). */
#include <criterion/criterion.h>

#include <math.h>
#include <string.h>

#include <bome/opt.h>

#include "cases.h"
#include "prec.h"

/* A case's settings from plain numbers, in the order of its table. */
static const prob_value *values(const double *x, int n, prob_value *out)
{
    for (int i = 0; x && i < n; i++)
        out[i] = (prob_value){.x = x[i]};
    return x ? out : NULL;
}

/* Runs the toy: returns the final phi; params NULL for the paper's. */
static double toy(int method, int start, uint64_t seed, const double *params, long steps, double *answer,
                  double *fo_answer, double q)
{
    prob_run r = {0};
    bome_options o;
    prob_ufo_toy.defaults(&o);
    o.method = (bome_method)method;
    o.seed = seed;
    o.max_steps = steps;
    cr_assert_eq(bome_options_set(&o, "ufo_q", q), BOME_OK);
    prob_value v[PROB_MAX_PARAMS];
    r.params = values(params, prob_ufo_toy.n_params, v);
    r.o = &o;
    char err[128] = "";
    cr_assert_eq(prob_ufo_toy.create(&r, start, seed, err, sizeof err), BOME_OK, "%s", err);
    bome_step_stats last;
    cr_assert_eq(bome_solve(r.problem, &o, &last), BOME_OK, "%s", bome_problem_errmsg(r.problem));
    if (method != BOME_METHOD_ITD)
        cr_expect_eq(last.grad_evals, o.T + 1, "one task: r inner gradients and f's");
    if (answer)
        *answer = prob_ufo_toy_answer(&r, 0, o.T, o.alpha);
    if (fo_answer)
        *fo_answer = prob_ufo_toy_answer(&r, 1, o.T, o.alpha);
    double phi = *(const bome_real *)r.state; /* the state opens with phi */
    prob_free(&r);
    return phi;
}

/* One task (both alike): one step is phi - 10 a rho^k (phi - c), k = 2r
 * exact, r first order, in closed form. */
Test(meta, one_step_closed_forms)
{
    const double p[5] = {0.8, 2.4, 0.8, 2.4, 400}; /* c = 3 */
    double rho = 1 - 0.1 * 0.8, phi0 = 10, c = 3;
    double fo = toy(BOME_METHOD_FO_BLO, 2, 0, p, 1, NULL, NULL, 0.1);
    double ex = toy(BOME_METHOD_EXACT, 2, 0, p, 1, NULL, NULL, 0.1);
    double itd = toy(BOME_METHOD_ITD, 2, 0, p, 1, NULL, NULL, 0.1);
    /* The solver reaches these through k = 2r <= 20 steps, each rounding at
     * the scale of the largest term, S = phi0 + 10 a (phi0 - c) = 66, not 1:
     * k eps S bounds it. In float64 that is 2.9e-13, under the figure 1e-12,
     * which stands; in float32 1.6e-4 (measured: 3.1e-6, fo-blo). */
    double tol = fmax(TOL(1e-12), 20 * BOME_REAL_EPSILON * (phi0 + 10 * 0.8 * (phi0 - c)));
    cr_expect(fabs(fo - (phi0 - 10 * 0.8 * pow(rho, 10) * (phi0 - c))) < tol, "fo-blo %.17g", fo);
    cr_expect(fabs(ex - (phi0 - 10 * 0.8 * pow(rho, 20) * (phi0 - c))) < tol, "exact %.17g", ex);
    cr_expect(fabs(itd - ex) < tol, "ITD from theta_0 = v %.17g, exact %.17g", itd, ex);
}

/* 10 000 SGD steps of size 10 / (k + 1) from every start: fo-blo ends at its
 * own fixed point, exact and ufo-blo at M's stationary point. The noise of
 * such a run is about sd = 10 sigma / sqrt((20 M'' - 1) k) (sigma^2 the
 * estimator's variance there): 0.045 for fo-blo, 0.025 exact, 0.22 ufo-blo at
 * q = 0.1, whose estimator pays its unbiasedness in variance. The bounds are
 * four of those, and the two answers lie 1.7 apart. */
Test(meta, authors_toy_from_every_start)
{
    double mean_ufo = 0, answer = 0, fo_answer = 0;
    for (int start = 0; start < 5; start++) {
        double fo = toy(BOME_METHOD_FO_BLO, start, (uint64_t)start, NULL, 10000, &answer, &fo_answer, 0.1);
        double ex = toy(BOME_METHOD_EXACT, start, (uint64_t)start, NULL, 10000, NULL, NULL, 0.1);
        double ufo = toy(BOME_METHOD_UFO_BLO, start, (uint64_t)start, NULL, 10000, NULL, NULL, 0.1);
        cr_expect(fabs(fo - fo_answer) < 0.18, "start %d: fo-blo at %g, its fixed point %g", start, fo, fo_answer);
        cr_expect(fabs(ex - answer) < 0.1, "start %d: exact at %g, M' = 0 at %g", start, ex, answer);
        cr_expect(fabs(ufo - answer) < 0.9, "start %d: ufo-blo at %g, M' = 0 at %g", start, ufo, answer);
        mean_ufo += ufo / 5;
    }
    cr_expect(fabs(fo_answer - answer) > 1.5, "the toy's point: FO-BLO's fixed point is not M's");
    cr_expect(fabs(mean_ufo - answer) < 0.4, "ufo-blo's mean over 5 runs %g, M' = 0 at %g", mean_ufo, answer);
}

/* The same tasks for every method (ufo-blo flips its coins on a stream of
 * its own): q = 0 is fo-blo bit for bit, q = 1 exact to rounding. */
Test(meta, ufo_q_0_is_fo_blo_and_1_is_exact)
{
    double fo = toy(BOME_METHOD_FO_BLO, 1, 3, NULL, 300, NULL, NULL, 0.1);
    double ex = toy(BOME_METHOD_EXACT, 1, 3, NULL, 300, NULL, NULL, 0.1);
    double u0 = toy(BOME_METHOD_UFO_BLO, 1, 3, NULL, 300, NULL, NULL, 0);
    double u1 = toy(BOME_METHOD_UFO_BLO, 1, 3, NULL, 300, NULL, NULL, 1);
    cr_expect_eq(u0, fo, "%.17g vs %.17g", u0, fo);
    cr_expect(fabs(u1 - ex) < TOL(1e-12), "%.17g vs %.17g", u1, ex);
}

/* g depends on v directly: g = 1/2 |theta - w|^2 + 1/2 sum a theta^2 ... with
 * theta_0 = v too. exact's reverse sweep with its mixed terms must equal
 * ITD's gradient through the unrolled graph from v. */
enum { N = 3 };
static const bome_real A[N] = {1, 2, 4}, Y[N] = {0.5, -1, 2};

static bome_node *g_fn(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_node *a = bome_const(G, BOME_VECTOR(N), A);
    bome_node *d = bome_sub(G, x->theta[0], bome_tanh(G, x->v[0]));
    bome_node *quartic = bome_scale(G, bome_sum(G, bome_square(G, bome_square(G, x->theta[0]))), 0.05);
    return bome_add(G, bome_scale(G, bome_sum(G, bome_mul(G, a, bome_mul(G, d, d))), 0.5), quartic);
}

static bome_node *f_fn(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_node *y = bome_const(G, BOME_VECTOR(N), Y);
    return bome_add(G, bome_scale(G, bome_sumsq(G, bome_sub(G, x->theta[0], y)), 0.5),
                    bome_scale(G, bome_sumsq(G, x->v[0]), 0.1));
}

static void run_mixed(int method, bome_real *v, long steps)
{
    bome_real th[N] = {0};
    v[0] = 0.3, v[1] = -0.2, v[2] = 0.9;
    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_VECTOR(N), v);
    bome_problem_add_inner(p, "theta", BOME_VECTOR(N), th);
    bome_problem_set_objectives(p, f_fn, g_fn, NULL);
    cr_assert_eq(bome_problem_set_inner_start(p, 0, 0), BOME_OK);
    bome_options o;
    bome_options_default(&o);
    o.method = (bome_method)method;
    o.T = 4;
    o.alpha = 0.1;
    o.lr_outer = 0.3;
    o.max_steps = steps;
    cr_assert_eq(bome_solve(p, &o, NULL), BOME_OK, "%s", bome_problem_errmsg(p));
    bome_problem_free(p);
}

Test(meta, exact_equals_itd_from_v_with_mixed_terms)
{
    bome_real ve[N], vi[N];
    run_mixed(BOME_METHOD_EXACT, ve, 1);
    run_mixed(BOME_METHOD_ITD, vi, 1);
    /* one step against finite differences of the composed map (numpy) */
    const double want[N] = {0.34054709, -0.42140972, 1.0387511};
    for (int i = 0; i < N; i++)
        cr_expect(fabs(ve[i] - want[i]) < 1e-7, "one step: v[%d] %.17g, want %.8g", i, ve[i], want[i]);
    run_mixed(BOME_METHOD_EXACT, ve, 5);
    run_mixed(BOME_METHOD_ITD, vi, 5);
    for (int i = 0; i < N; i++)
        cr_expect(fabs(ve[i] - vi[i]) < TOL(1e-12), "v[%d]: exact %.17g, ITD %.17g", i, ve[i], vi[i]);
    cr_expect(fabs(ve[0] - 0.3) > 1e-3, "v did not move");
}

Test(meta, api_errors)
{
    bome_real v[2] = {0}, th[3] = {0};
    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_VECTOR(2), v);
    bome_problem_add_inner(p, "theta", BOME_VECTOR(3), th);
    cr_expect_eq(bome_problem_set_inner_start(p, 0, 0), BOME_ERR_SHAPE);
    cr_expect(strstr(bome_problem_errmsg(p), "'theta' is 1 x 3"), "%s", bome_problem_errmsg(p));
    bome_problem_free(p);
    p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_VECTOR(2), v);
    bome_problem_add_inner(p, "theta", BOME_VECTOR(2), th);
    cr_expect_eq(bome_problem_set_inner_start(p, 1, 0), BOME_ERR_ARG);
    bome_problem_free(p);
    p = bome_problem_new();
    cr_expect_eq(bome_problem_set_tasks(p, 0, NULL, NULL), BOME_ERR_ARG);
    bome_problem_free(p);
    cr_expect_eq(bome_problem_set_inner_start(NULL, 0, 0), BOME_ERR_ARG);
}

/* Sinusoid regression in small: theta_0 = phi over six tensors, a meta-batch
 * of tasks, the held-out score; with beta > 0 g depends on phi directly. */
static double sinusoid(int method, double beta, double batch, long steps, double *score)
{
    const double p[5] = {5, 8, batch, beta, 50}; /* shots, hidden, batch, beta, eval tasks */
    prob_run r = {0};
    bome_options o;
    prob_sinusoid.defaults(&o);
    o.method = (bome_method)method;
    o.T = 3;
    o.max_steps = steps;
    o.lr_outer = 0.01;
    prob_value v[PROB_MAX_PARAMS];
    r.params = values(p, 5, v);
    r.o = &o;
    char err[128] = "";
    cr_assert_eq(prob_sinusoid.create(&r, 0, 1, err, sizeof err), BOME_OK, "%s", err);
    double before = prob_sinusoid.evaluate(&r, &o, NULL);
    bome_step_stats last;
    cr_assert_eq(bome_solve(r.problem, &o, &last), BOME_OK, "%s", bome_problem_errmsg(r.problem));
    *score = prob_sinusoid.evaluate(&r, &o, NULL);
    prob_sinusoid.destroy(&r);
    return before;
}

Test(meta, sinusoid_learns_and_exact_equals_itd)
{
    double fo, ex, itd;
    double before = sinusoid(BOME_METHOD_FO_BLO, 0, 4, 60, &fo);
    cr_expect_lt(fo, 0.9 * before, "fo-blo: held-out MSE %g, at the start %g", fo, before);
    /* beta > 0: g depends on phi, the mixed terms matter; one task per step
     * so that ITD runs too, on the same tasks */
    sinusoid(BOME_METHOD_EXACT, 0.5, 1, 10, &ex);
    sinusoid(BOME_METHOD_ITD, 0.5, 1, 10, &itd);
    cr_expect(fabs(ex - itd) <= TOL(1e-9) * fabs(itd), "held-out MSE after exact %.17g, after ITD %.17g", ex, itd);
    cr_expect(fabs(ex - before) > 1e-6, "nothing moved");
}

/* Adaptive q on the toy: FO-BLO's bias there is large against the gradient
 * (D^2 >= C_rnd V^2 / 2 (C_det + C_rnd)), so the scheme moves to q = 1 after
 * its first exact samples and ends where exact does. */
Test(meta, ufo_adaptive_q_on_the_toy)
{
    prob_run r = {0};
    bome_options o;
    prob_ufo_toy.defaults(&o);
    o.max_steps = 3000;
    cr_assert_eq(bome_options_set(&o, "ufo_adaptive", 1), BOME_OK);
    r.o = &o;
    char err[128] = "";
    cr_assert_eq(prob_ufo_toy.create(&r, 1, 0, err, sizeof err), BOME_OK, "%s", err);
    bome_step_stats last;
    cr_assert_eq(bome_solve(r.problem, &o, &last), BOME_OK, "%s", bome_problem_errmsg(r.problem));
    cr_expect_eq(last.lambda, 1.0, "the reported q: %g", last.lambda);
    cr_expect_eq(last.hvp_evals, o.T, "the exact branch every step now");
    cr_expect_lt(prob_ufo_toy.error(&r), 0.1);
    prob_free(&r);
    cr_expect_eq(bome_options_set(&o, "ufo_adaptive", 2), BOME_ERR_ARG);
}
