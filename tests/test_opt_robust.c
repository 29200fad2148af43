/* tests/test_opt_robust.c: the BOME solver's guarantees: determinism, no
 * allocation per step, the non-finite stop, every invalid input refused with a message, and
 * the callback, max_steps and tol. The problem is test_opt.c's. */
#include "opt_fixture.h"

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
