/*
 * tests/test_toys.c: the paper's toy problems reach their known answers with
 * the cases' own settings (c->defaults, c->create, bome_solve), and the
 * independent answers the cases are judged by (the hull projection, the
 * ridge closed form) are themselves right.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <string.h>

#include <bome/opt.h>

#include "cases.h"
#include "prec.h"

/* ---- prob_hull_projection on hand-made cases ------------------------------- */

static void proj_is(const double *c, int k, double y0, double y1, double p0, double p1)
{
    double y[2] = {y0, y1}, out[2] = {NAN, NAN};
    prob_hull_projection(c, k, y, out);
    cr_assert(fabs(out[0] - p0) < 1e-12 && fabs(out[1] - p1) < 1e-12,
              "projection of (%g, %g) is (%.15g, %.15g), expected (%g, %g)", y0, y1, out[0], out[1], p0, p1);
}

Test(hull, unit_square)
{
    /* corners in no particular order, plus the centre (not a vertex) */
    static const double sq[10] = {1, 1, 0, 0, 0.5, 0.5, 1, 0, 0, 1};
    proj_is(sq, 5, 0.5, 0.5, 0.5, 0.5);   /* inside */
    proj_is(sq, 5, 0.25, 0.9, 0.25, 0.9); /* inside */
    proj_is(sq, 5, 1, 0.3, 1, 0.3);       /* on an edge */
    proj_is(sq, 5, 0, 0, 0, 0);           /* a vertex */
    proj_is(sq, 5, 2, 0.5, 1, 0.5);       /* outside: onto an edge */
    proj_is(sq, 5, 0.3, -4, 0.3, 0);
    proj_is(sq, 5, -1, 0.7, 0, 0.7);
    proj_is(sq, 5, 2, 3, 1, 1);           /* outside: onto a corner */
    proj_is(sq, 5, -1, -2, 0, 0);
}

Test(hull, triangle)
{
    static const double tri[6] = {0, 0, 4, 0, 0, 4};
    proj_is(tri, 3, 1, 1, 1, 1);
    proj_is(tri, 3, 3, 3, 2, 2);    /* onto the hypotenuse */
    proj_is(tri, 3, 6, -1, 4, 0);   /* onto a corner */
    proj_is(tri, 3, 2, -1, 2, 0);   /* onto the x axis */
    proj_is(tri, 3, -3, 10, 0, 4);  /* corner (0, 4) */
    proj_is(tri, 3, 1, 5, 0, 4);    /* beyond the hypotenuse's end: t clamps to (0, 4) */
}

Test(hull, paper_coreset)
{
    /* y = (3, -2) projects onto the edge from (3, 1) to (-3, -2) at t = 0.2:
     * (1.8, 0.4); y - p = (1.2, -2.4) is orthogonal to (-6, -3). */
    static const double c[8] = {1, 3, 3, 1, -2, 2, -3, -2};
    proj_is(c, 4, 3, -2, 1.8, 0.4);
    proj_is(c, 4, 0, 0, 0, 0);
    proj_is(c, 4, 1, 3, 1, 3);
}

Test(hull, degenerate_hulls)
{
    /* a single point, a segment, collinear points: the hull has no area */
    static const double one[2] = {1, 2};
    proj_is(one, 1, 5, 5, 1, 2);
    proj_is(one, 1, 1, 2, 1, 2);
    static const double seg[4] = {0, 0, 2, 0};
    proj_is(seg, 2, 1, 3, 1, 0);
    proj_is(seg, 2, 5, 0, 2, 0);  /* on the line, beyond the end */
    proj_is(seg, 2, 1, 0, 1, 0);
    static const double line[6] = {0, 0, 2, 2, 1, 1};
    proj_is(line, 3, 3, 3, 2, 2);
    proj_is(line, 3, 2, 0, 1, 1);
}

/* ---- The toys ------------------------------------------------------------------- */

static bome_step_stats run_method(const prob_case *c, int start, uint64_t seed, bome_method m, prob_run *r)
{
    char err[256] = "";
    memset(r, 0, sizeof *r);
    cr_assert_eq(c->create(r, start, seed, err, sizeof err), BOME_OK, "%s: %s", c->name, err);
    bome_options o;
    c->defaults(&o);
    o.method = m;
    cr_assert_eq(o.max_steps, c->default_steps);
    bome_step_stats last = {0};
    int rc = bome_solve(r->problem, &o, &last);
    if (m == BOME_METHOD_AID_CG && rc == BOME_ERR_NONFINITE)
        return last; /* a failure the caller checks for */
    cr_assert_eq(rc, BOME_OK, "%s: %s", c->name, bome_problem_errmsg(r->problem));
    cr_assert_eq(last.step, o.max_steps);
    return last;
}

static bome_step_stats run_case(const prob_case *c, int start, uint64_t seed, prob_run *r)
{
    return run_method(c, start, seed, BOME_METHOD_BOME, r);
}

/* The projection of y onto the hull of the points, (1.8, 0.4), is the unique
 * solution. Tolerance 0.05: BOME with fixed steps (xi = 0.05, eta = 0.5, T =
 * 10) only guarantees a point within O(sqrt(xi) + e^-bT) of a KKT point, and
 * q-hat does not reach 0 (the softmax can only approach the hull's edge as w
 * grows), so the iterate stops short of the answer: 0.025 away from each
 * start after the paper's 5000 steps. Twice that leaves room for the
 * platform's rounding while a run that failed (stuck at a start, at a
 * vertex, or inside the hull) would be at least 1 away. */
Test(toys, coreset_all_starts)
{
    static const double C[8] = {1, 3, 3, 1, -2, 2, -3, -2}, Y[2] = {3, -2};
    double want[2];
    prob_hull_projection(C, 4, Y, want);
    cr_assert_eq(prob_coreset.n_starts, 3);
    for (int start = 0; start < 3; start++) {
        prob_run r;
        run_case(&prob_coreset, start, 0, &r);
        const bome_real *x = r.show_values[0];
        cr_assert_str_eq(r.show_name[0], "x");
        double d = hypot(x[0] - want[0], x[1] - want[1]);
        cr_assert_lt(d, 0.05, "start %d: x = (%g, %g), projection (%g, %g), distance %g", start, x[0], x[1], want[0],
                     want[1], d);
        cr_assert_lt(fabs(prob_coreset.error(&r) - d), 1e-12);
        prob_coreset.destroy(&r);
    }
}

/* (x1, x2, w) -> (1, 1, 1). Tolerance 1e-3: on this quadratic BOME (T = 1,
 * steps 0.5) converges linearly, to within about 1e-5 after the paper's 2000
 * steps; 1e-3 is the brief's bound and still fails any run that does not
 * converge to the optimistic solution (e.g. x2 stuck at its start 0). */
Test(toys, nonsingleton)
{
    prob_run r;
    run_case(&prob_nonsingleton, 0, 0, &r);
    const bome_real *x = r.show_values[0], *w = r.show_values[1];
    cr_assert_lt(fabs(x[0] - 1), 1e-3, "x1 = %g", x[0]);
    cr_assert_lt(fabs(x[1] - 1), 1e-3, "x2 = %g", x[1]);
    cr_assert_lt(fabs(w[0] - 1), 1e-3, "w = %g", w[0]);
    prob_nonsingleton.destroy(&r);
}

/* The paper's point about non-singleton lower levels: g does not pin x2,
 * so differentiating through the inner loop (ITD) sees no way for w to move
 * x2 and stops where f still pays for it, while BOME reaches (1, 1, 1) (the
 * test above). ITD's distance is 1.37 here; 0.5 separates the two plainly. */
Test(toys, nonsingleton_itd_misses_what_bome_finds)
{
    prob_run r;
    run_method(&prob_nonsingleton, 0, 0, BOME_METHOD_ITD, &r);
    double d = prob_nonsingleton.error(&r);
    cr_assert_gt(d, 0.5, "ITD reached the answer (distance %g): the toy no longer shows the difference", d);
    prob_nonsingleton.destroy(&r);
}

/* AID-CG fares worse: H = d2g/dx2 is singular along x2, so CG's step along
 * it blows up and the run ends on a non-finite value (step 6 here). */
Test(toys, nonsingleton_aid_cg_fails)
{
    prob_run r;
    bome_step_stats last = run_method(&prob_nonsingleton, 0, 0, BOME_METHOD_AID_CG, &r);
    double d = prob_nonsingleton.error(&r);
    cr_assert(bome_problem_status(r.problem) == BOME_ERR_NONFINITE || d > 0.5,
              "AID-CG reached the answer (distance %g after %ld steps)", d, last.step);
    prob_nonsingleton.destroy(&r);
}

/* BSG-1's direction scales with grad_theta g, which is 0 at this toy's start
 * (x1 = w = 0 solves the inner problem): it never moves. */
Test(toys, nonsingleton_bsg1_stays_at_the_start)
{
    prob_run r;
    run_method(&prob_nonsingleton, 0, 0, BOME_METHOD_BSG1, &r);
    double d = prob_nonsingleton.error(&r);
    cr_assert(fabs(d - sqrt(3.0)) < 1e-12, "distance %.17g, not the start's sqrt(3)", d);
    prob_nonsingleton.destroy(&r);
}

/* On the coreset toy, whose inner solution is unique, the rivals get there too. */
Test(toys, coreset_itd_and_aid_cg)
{
    bome_method m[2] = {BOME_METHOD_ITD, BOME_METHOD_AID_CG};
    for (int i = 0; i < 2; i++) {
        prob_run r;
        run_method(&prob_coreset, 0, 0, m[i], &r);
        double d = prob_coreset.error(&r);
        cr_assert_lt(d, 0.05, "method %d: distance %g", (int)m[i], d);
        prob_coreset.destroy(&r);
    }
}

/* w -> 0, where f = x w = 0 for every x. Tolerances |w| < 0.1 and |f| < 0.05:
 * the paper runs only 200 steps of size 0.05 from (4, 4), after which w is
 * about 0.05 (still approaching 0) and x about -0.02, so f is about -1e-3;
 * the bounds leave room for that slow tail and still fail a run that stays
 * away from 0 (f = 16 at the start). */
Test(toys, minimax)
{
    prob_run r;
    bome_step_stats last = run_case(&prob_minimax, 0, 0, &r);
    const bome_real *x = r.show_values[0], *w = r.show_values[1];
    cr_assert_lt(fabs(w[0]), 0.1, "w = %g", w[0]);
    cr_assert(fabs(x[0]) <= 10 && fabs(w[0]) <= 10);
    cr_assert_lt(fabs(x[0] * w[0]), 0.05, "f = x w = %g", x[0] * w[0]);
    cr_assert_lt(fabs(last.f), 0.05, "last step's f = %g", last.f);
    prob_minimax.destroy(&r);
}

/* v -> v* = argmin over v of the validation error of the closed-form ridge
 * solution, found by prob_ridge_best_v. Tolerances: |v - v*| < 0.1, because
 * BOME's fixed outer step leaves a bias of order sqrt(xi) (observed: 0.06 with
 * the seeded data, v* = -1.11) and the validation error is flat near its
 * minimum, so v is only weakly pinned; and the validation error at BOME's v
 * within 1% of the best (observed: 0.02%), which is what the method is for
 * and is insensitive to that flatness. */
Test(toys, ridge)
{
    prob_run r;
    run_case(&prob_ridge, 0, 0, &r);
    const bome_real *v = r.show_values[0];
    cr_assert_str_eq(r.show_name[0], "v");
    double best = prob_ridge_best_v(r.state);
    cr_assert(best > -8 && best < 4, "v* = %g is at the search's edge", best);
    cr_assert_lt(fabs(v[0] - best), 0.1, "v = %g, v* = %g", v[0], best);
    double e_best = prob_ridge_validation(r.state, best, NULL);
    double e_bome = prob_ridge_validation(r.state, v[0], NULL);
    cr_assert_leq(e_bome, 1.01 * e_best, "validation error %g at v = %g, %g at v* = %g", e_bome, v[0], e_best, best);
    prob_ridge.destroy(&r);
}

/* The independent answer is right. The closed form's theta(v) minimizes the
 * case's own g(v, .): a solver step with zero step sizes from (v, theta(v))
 * sees grad q-hat = 0 and q-hat = 0. And prob_ridge_best_v is the minimum of
 * the validation error on a fine grid. */
Test(toys, ridge_closed_form_and_best_v)
{
    prob_run r;
    char err[256];
    cr_assert_eq(prob_ridge.create(&r, 0, 0, err, sizeof err), BOME_OK);
    bome_real *v = (bome_real *)r.show_values[0], *theta = (bome_real *)r.show_values[1];
    for (double vv = -2; vv <= 1; vv += 1.5) {
        v[0] = vv;
        prob_ridge_validation(r.state, vv, theta);
        bome_options o;
        prob_ridge.defaults(&o);
        o.lr_outer = o.lr_inner = 0;
        bome_solver *s = bome_solver_new(r.problem, &o);
        cr_assert_eq(bome_solver_status(s), BOME_OK, "%s", bome_solver_errmsg(s));
        bome_step_stats st;
        cr_assert_eq(bome_solver_step(s, &st), BOME_OK, "%s", bome_solver_errmsg(s));
        cr_assert_lt(st.grad_q_norm, TOL(1e-9), "v = %g: |grad q| = %g", vv, st.grad_q_norm);
        cr_assert_lt(fabs(st.q), TOL(1e-12), "v = %g: q = %g", vv, st.q);
        cr_assert_gt(st.grad_f_norm, 0);
        bome_solver_free(s);
    }
    double best = prob_ridge_best_v(r.state), e = prob_ridge_validation(r.state, best, NULL);
    for (double vv = -8; vv <= 4; vv += 0.01)
        cr_assert_geq(prob_ridge_validation(r.state, vv, NULL), e - 1e-12, "v = %g beats v* = %g", vv, best);
    prob_ridge.destroy(&r);
}

/* ---- The released scripts' own runs ------------------------------------------------- */

/* Final iterates of the released toy scripts (Cranial-XIX/BOME's
 * toy_convergence.py, toy_lls.py, toy_adv.py), run in float64 with the
 * scripts' settings beside bome: x then w. bome must follow them to
 * rounding (coreset's BOME run is the most rounding-sensitive: the
 * scripts' own float64 and numpy re-runs differ by 2e-7 in w).
 *
 * To rounding, in float32 too: rounding is amplified along the thousands of
 * steps, so the float32 run, rounded at every step, ends further from the
 * float64 figures than one rounding. amp is that amplification, measured
 * with the float64 build: each run repeated 40 times with every variable
 * multiplied by (1 + u eps32), u uniform in [-1, 1], after every step but
 * the last, and the largest |x - x_unperturbed| / max(1, |x|) over the runs
 * divided by eps32. A float32 step rounds more often than that model does,
 * about T + 2 times (T inner iterates, the direction, the update; T <= 10
 * here), hence the factor 16. The bound is the larger of TOL(tol) and
 * 16 amp eps; in float64 16 amp eps is below tol in every case (at most
 * 5.8e-11 against 1e-9), so the float64 figures stand. */
static void released_case(const prob_case *c, bome_method m, const double *x, int nx, const double *w, int nw,
                          double tol, double amp)
{
    prob_run r;
    run_method(c, 0, 0, m, &r);
    if (BOME_REAL_BITS == 64) /* the float64 figure stands */
        cr_assert_leq(16 * amp * BOME_REAL_EPSILON, tol);
    tol = fmax(TOL(tol), 16 * amp * BOME_REAL_EPSILON);
    for (int i = 0; i < nx; i++)
        cr_expect(fabs(r.show_values[0][i] - x[i]) <= tol * fmax(1, fabs(x[i])), "%s %s x[%d] %.17g, released %.17g",
                  c->name, bome_method_name(m), i, r.show_values[0][i], x[i]);
    for (int i = 0; i < nw; i++)
        cr_expect(fabs(r.show_values[1][i] - w[i]) <= tol * fmax(1, fabs(w[i])), "%s %s w[%d] %.17g, released %.17g",
                  c->name, bome_method_name(m), i, r.show_values[1][i], w[i]);
    c->destroy(&r);
}

Test(released, nonsingleton_bome)
{
    const double x[2] = {0.9999999999999997, 0.9999999999999989}, w[1] = {0.999999999999999};
    released_case(&prob_nonsingleton, BOME_METHOD_BOME, x, 2, w, 1, 1e-12, 3.34);
}

Test(released, minimax_bome_and_bsg1)
{
    const double x[1] = {-0.01607476027615772}, w[1] = {0.04918131447618276};
    released_case(&prob_minimax, BOME_METHOD_BOME, x, 1, w, 1, 1e-12, 1.01);
    const double xb[1] = {10}, wb[1] = {4}; /* BSG-1 with grad_v f: (10, 4), not (10, 10) */
    released_case(&prob_minimax, BOME_METHOD_BSG1, xb, 1, wb, 1, 1e-12, 26.4);
}

/* Coreset's BOME run is not continuous in its rounding: the measurement
 * above ends 2e-3 away whether the perturbations are eps32 or eps32 / 16
 * (amp 1.6e4, then 2.6e5), a jump rather than a growth, and the float32 run
 * ends where those perturbed float64 runs do (2e-3 away, relative). The
 * bound with amp = 1.6e4, 0.03, says that much: within what rounding-sized
 * perturbations do to the float64 run; toys::coreset_all_starts checks the
 * answer itself. */
Test(released, coreset_bome)
{
    const double x[2] = {1.8166553684075624, 0.38509112679571345};
    const double w[4] = {-2.5443932198936574, 3.3241415300600674, -2.7012452523496573, 1.9214969421832337};
    released_case(&prob_coreset, BOME_METHOD_BOME, x, 2, w, 4, 1e-9, 1.64e4);
}

Test(released, coreset_bsg1)
{
    const double xb[2] = {2.976932825968099, 1.0043568802107237};
    const double wb[4] = {-0.9756491163009549, 4.671908406192289, -1.8002756270540246, -1.8959836628373428};
    released_case(&prob_coreset, BOME_METHOD_BSG1, xb, 2, wb, 4, 1e-9, 3.87e3);
}
