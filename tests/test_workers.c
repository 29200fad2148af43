/* tests/test_workers.c: data-parallel runs without MPI. P workers are P
 * threads of this process whose sums meet at a barrier (team.h); each
 * builds its share of the problem, and every method, after 20 steps, must
 * give what one process gives on the whole problem (to 1e-12, relative, in
 * float64; see worker_tol),
 * the same on every worker, and bit for bit the same again for the same P.
 * Three problems: test_opt.c's (data-free: f and g counted once), a small
 * hyper-cleaning whose rows, and per-row weights v (sharded), are split
 * across the workers, and a regression with one inner value per row
 * (theta sharded). Then the failures: a sum that fails, a worker whose
 * own rows hold a bad label, workers that disagree at the start. */
#include "opt_fixture.h"
#include "prec.h"
#include "team.h"

#include <criterion/parameterized.h>

static int method_ids[64];
static struct criterion_test_params all_methods(void)
{
    int n = bome_method_count();
    for (int m = 0; m < n; m++)
        method_ids[m] = m;
    return cr_make_param_array(int, method_ids, (size_t)n);
}

/* ---- The problems ------------------------------------------------------------------ */

enum { FIXTURE, CLEAN, LATENT };
enum { N_TR = 240, N_VAL = 120, D = 5, K = 3, STEPS = 20, N_LAT = 60, D_LAT = 3 };

/* test_opt.c's f and g, data-free: counted once across the workers */
static bome_node *once_f(bome_graph *G, const bome_vars *x, void *ctx) { return bome_once(G, f_fn(G, x, ctx)); }
static bome_node *once_g(bome_graph *G, const bome_vars *x, void *ctx) { return bome_once(G, g_fn(G, x, ctx)); }

/* Hyper-cleaning in small: W (K x D) replicated, the weights v of the
 * worker's training rows sharded. g's share: the worker's rows' weighted
 * cross-entropy over all N_TR rows, plus the regularizer once; f's: its
 * validation rows' cross-entropy over all N_VAL. */
static bome_node *clean_g(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_node *ce = bome_cross_entropy_rows(G, bome_matmul(G, x->data[0], 0, x->theta[0], 1), x->data[1]);
    bome_node *l = bome_scale(G, bome_sum(G, bome_mul(G, ce, bome_clamp(G, x->v[0], 0, 1))), 1.0 / N_TR);
    return bome_add(G, l, bome_once(G, bome_scale(G, bome_sumsq(G, x->theta[0]), 0.01)));
}

static bome_node *clean_f(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_node *ce = bome_cross_entropy_rows(G, bome_matmul(G, x->data[2], 0, x->theta[0], 1), x->data[3]);
    return bome_scale(G, bome_sum(G, ce), 1.0 / N_VAL);
}

/* A sharded inner variable: theta_i, one per row, fits <x_i, v> in g and y_i
 * in f; v (D_LAT values) replicated. */
static bome_node *latent_g(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_node *r = bome_sub(G, x->theta[0], bome_matvec(G, x->data[0], 0, x->v[0]));
    return bome_add(G, bome_scale(G, bome_sumsq(G, r), 1.0 / N_LAT),
                    bome_once(G, bome_scale(G, bome_sumsq(G, x->v[0]), 0.01)));
}

static bome_node *latent_f(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    return bome_scale(G, bome_sumsq(G, bome_sub(G, x->theta[0], x->data[1])), 1.0 / N_LAT);
}

/* Row i of the whole data set (validation rows from N_TR on). */
static void row(int i, bome_real *x, int32_t *y, bool noisy)
{
    for (int j = 0; j < D; j++)
        x[j] = sin(0.37 * (i * D + j)) + 0.2 * cos(1.1 * (i * D + j));
    int clean = (x[0] > 0) + (x[1] > 0.5);
    *y = noisy && i % 3 == 0 ? (i * 7) % K : clean;
}

/* One run: a method on a problem with P workers (0: one process, no
 * workers), and what it left. */
typedef struct run {
    int method, problem, P;
    long bad_label_on;        /* a worker whose first row gets label K (-1: none) */
    int T_on_1;               /* worker 1's T, if not 0 */
    int rc[TEAM_MAX];
    char msg[TEAM_MAX][512];
    bome_real x[TEAM_MAX][NX];          /* the fixture's variables, per worker */
    bome_real W[TEAM_MAX][K * D];       /* hyper-cleaning's W, per worker */
    bome_real v[N_TR];                  /* its v, each worker's rows; the latent theta */
    bome_real lv[TEAM_MAX][D_LAT];      /* the latent problem's v, per worker */
    double f[TEAM_MAX];
    long step_allocs[TEAM_MAX];         /* the solver's allocations after step 1 */
} run;

typedef struct refill_ud { bome_real *noise; } refill_ud;

static int refill_noise(void *ud, bome_rng *rng, long step)
{
    (void)step;
    refill_ud *u = ud;
    for (int i = 0; i < 3; i++)
        u->noise[i] = 0.3 * bome_rng_normal(rng);
    return 0;
}

static bome_options run_options(const run *R, int rank)
{
    bome_options o;
    opts(&o, 5, 0.1, 0.05, 0.05);
    o.method = (bome_method)R->method;
    o.update = BOME_UPDATE_MOMENTUM;
    o.inner_momentum = 0.5;
    o.inner_momentum_keep = 1;
    o.seed = 5;
    o.max_steps = STEPS;
    if (R->problem == CLEAN) {
        bome_options_set(&o, "eta", 5); /* lambda > 0 from the first step: v moves */
        o.alpha = 0.5;
        o.lr_outer = 100;
    } else if (o.method == BOME_METHOD_BVFSM) {
        bome_options_set(&o, "bvfsm_c_ln", 0.001); /* as test_methods.c: this g dips below 0 */
    }
    bome_options_set(&o, "ufo_q", 0.5); /* both of its branches within the run */
    if (R->T_on_1 && rank == 1)
        o.T = R->T_on_1;
    return o;
}

/* One worker's share: its rows, its problem, its solver, STEPS steps. */
static void worker(member *m)
{
    run *R = m->arg;
    int r = m->rank, P = R->P ? R->P : 1;
    fctx k = {1, 0};
    bome_real noise[3] = {0}, *x = R->x[r], *W = R->W[r];
    refill_ud ud = {noise};
    long b = 0, e = 0, vb = 0, ve = 0;
    bome_real *X = NULL, *Xv = NULL;
    int32_t *y = NULL, *yv = NULL;
    bome_problem *p;
    if (R->problem == LATENT) {
        bome_shard_rows(N_LAT, r, P, &b, &e);
        int n = (int)(e - b);
        X = malloc((size_t)n * D_LAT * sizeof *X);
        Xv = malloc((size_t)n * sizeof *Xv);
        for (int i = 0; i < n; i++) {
            bome_real full[D];
            int32_t unused;
            row((int)b + i, full, &unused, false);
            memcpy(X + i * D_LAT, full, D_LAT * sizeof *X);
            Xv[i] = X[i * D_LAT] - 0.5 * X[i * D_LAT + 2] + 0.1 * sin((double)(b + i));
            R->v[b + i] = 0.1;
        }
        for (int j = 0; j < D_LAT; j++)
            R->lv[r][j] = 0.2 * j;
        p = bome_problem_new();
        bome_problem_add_outer(p, "v", BOME_VECTOR(D_LAT), R->lv[r]);
        bome_problem_add_inner(p, "theta", BOME_VECTOR(n), R->v + b);
        bome_problem_set_sharded(p, BOME_INNER, 0);
        bome_problem_add_input(p, "x", BOME_MATRIX(n, D_LAT), X);
        bome_problem_add_input(p, "y", BOME_VECTOR(n), Xv);
        bome_problem_set_objectives(p, latent_f, latent_g, NULL);
    } else if (R->problem == FIXTURE) {
        memcpy(x, X0, sizeof R->x[r]);
        p = bome_problem_new();
        bome_problem_add_outer(p, "v", BOME_VECTOR(3), x + OFF[0]);
        bome_problem_add_outer(p, "c", BOME_SCALAR, x + OFF[1]);
        bome_problem_add_inner(p, "theta", BOME_VECTOR(3), x + OFF[2]);
        bome_problem_add_inner(p, "s", BOME_SCALAR, x + OFF[3]);
        bome_problem_add_input(p, "noise", BOME_VECTOR(3), noise);
        bome_problem_set_objectives(p, once_f, once_g, &k);
    } else {
        bome_shard_rows(N_TR, r, P, &b, &e);
        bome_shard_rows(N_VAL, r, P, &vb, &ve);
        int n = (int)(e - b), nv = (int)(ve - vb);
        X = malloc((size_t)n * D * sizeof *X);
        Xv = malloc((size_t)nv * D * sizeof *Xv);
        y = malloc((size_t)n * sizeof *y);
        yv = malloc((size_t)nv * sizeof *yv);
        for (int i = 0; i < n; i++) {
            row((int)b + i, X + i * D, y + i, true);
            R->v[b + i] = 0.5;
        }
        for (int i = 0; i < nv; i++)
            row(N_TR + (int)vb + i, Xv + i * D, yv + i, false);
        if (R->bad_label_on == r)
            y[0] = K;
        for (int i = 0; i < K * D; i++)
            W[i] = 0.1 * cos(i);
        p = bome_problem_new();
        bome_problem_add_outer(p, "v", BOME_VECTOR(n), R->v + b);
        bome_problem_set_sharded(p, BOME_OUTER, 0);
        bome_problem_set_bounds(p, BOME_OUTER, 0, 0, 1);
        bome_problem_add_inner(p, "W", BOME_MATRIX(K, D), W);
        bome_problem_add_input(p, "x", BOME_MATRIX(n, D), X);
        bome_problem_add_labels(p, "y", n, y);
        bome_problem_add_input(p, "x_val", BOME_MATRIX(nv, D), Xv);
        bome_problem_add_labels(p, "y_val", nv, yv);
        bome_problem_set_objectives(p, clean_f, clean_g, NULL);
    }
    bome_options o = run_options(R, r);
    if (R->problem == FIXTURE) {
        o.refill = refill_noise;
        o.refill_ud = &ud;
    }
    counter c = {0, 0, 0, 0};
    o.alloc = count_alloc;
    o.alloc_ud = &c;
    o.workers = R->P ? &m->w : NULL;
    bome_solver *s = bome_solver_new(p, &o);
    int rc = s ? bome_solver_status(s) : BOME_ERR_NOMEM;
    bome_step_stats st = {0};
    long after_first = 0;
    for (long i = 0; !rc && i < STEPS; i++) {
        rc = bome_solver_step(s, &st);
        if (i == 0)
            after_first = c.calls;
    }
    R->rc[r] = rc;
    snprintf(R->msg[r], sizeof R->msg[r], "%s", bome_solver_errmsg(s));
    R->f[r] = st.f;
    R->step_allocs[r] = c.calls - after_first;
    bome_solver_free(s);
    bome_problem_free(p);
    free(X);
    free(Xv);
    free(y);
    free(yv);
}

static void solve(run *R)
{
    team t;
    member ms[TEAM_MAX];
    void *args[TEAM_MAX] = {R, R, R, R};
    if (R->P) {
        team_run(&t, R->P, 0, worker, args, ms);
    } else { /* one process, no workers */
        member m = {0};
        m.arg = R;
        worker(&m);
    }
}

static run *new_run(int method, int problem, int P)
{
    run *R = calloc(1, sizeof *R);
    R->method = method;
    R->problem = problem;
    R->P = P;
    R->bad_label_on = -1;
    return R;
}

/* P workers and one process differ only in the order of the sums, so they
 * part by rounding amplified along the 20 steps: a number of eps, the same in
 * either precision (measured over the methods and problems: at most 198 eps
 * in float64 and 233 in float32, BOME's v the largest, whose direction
 * divides by |grad q|^2). The float64 figure 1e-12 (4500 eps) stands; in
 * float32 TOL(1e-12) is 41 eps, under what is measured, so the bound is also
 * at least 4096 eps, some twenty times the largest. */
static double worker_tol(void) { return fmax(TOL(1e-12), 4096 * BOME_REAL_EPSILON); }

/* |a - b| <= worker_tol() max(1, |b|) over n values */
static void expect_close(const char *what, const char *method, int P, const bome_real *a, const bome_real *b, int n)
{
    for (int i = 0; i < n; i++)
        cr_expect(fabs(a[i] - b[i]) <= worker_tol() * fmax(1, fabs(b[i])), "%s, %d workers: %s[%d] = %.17g, one process %.17g",
                  method, P, what, i, a[i], b[i]);
}

static void compare(int method, int problem)
{
    const char *name = bome_method_name(method);
    run *one = new_run(method, problem, 0), *three = new_run(method, problem, 3), *two[2];
    solve(one);
    cr_assert_eq(one->rc[0], BOME_OK, "%s, one process: %s", name, one->msg[0]);
    solve(three);
    for (int r = 0; r < 3; r++) {
        cr_assert_eq(three->rc[r], BOME_OK, "%s, worker %d of 3: %s", name, r, three->msg[r]);
        cr_expect_eq(three->step_allocs[r], 0, "%s: worker %d allocated in its steps", name, r);
        /* the replicated variables agree bit for bit on every worker */
        if (problem == FIXTURE)
            cr_expect_eq(memcmp(three->x[r], three->x[0], sizeof three->x[0]), 0, "%s: worker %d's x differs", name, r);
        else if (problem == LATENT)
            cr_expect_eq(memcmp(three->lv[r], three->lv[0], sizeof three->lv[0]), 0, "%s: worker %d's v differs", name,
                         r);
        else
            cr_expect_eq(memcmp(three->W[r], three->W[0], sizeof three->W[0]), 0, "%s: worker %d's W differs", name, r);
        cr_expect_eq(three->f[r], three->f[0], "%s: worker %d reports f = %.17g, worker 0 %.17g", name, r, three->f[r],
                     three->f[0]);
    }
    cr_expect(fabs(three->f[0] - one->f[0]) <= worker_tol() * fmax(1, fabs(one->f[0])), "%s: f = %.17g, one process %.17g",
              name, three->f[0], one->f[0]);
    if (problem == FIXTURE) {
        expect_close("x", name, 3, three->x[0], one->x[0], NX);
    } else if (problem == LATENT) {
        expect_close("v", name, 3, three->lv[0], one->lv[0], D_LAT);
        expect_close("theta", name, 3, three->v, one->v, N_LAT);
        if (method != BOME_METHOD_FO_BLO) /* as below */
            cr_expect_gt(fabs(one->lv[0][0]) + fabs(one->lv[0][1] - 0.2), 1e-3, "%s: v did not move", name);
    } else {
        expect_close("W", name, 3, three->W[0], one->W[0], K * D);
        expect_close("v", name, 3, three->v, one->v, N_TR);
        double moved = 0;
        for (int i = 0; i < N_TR; i++)
            moved = fmax(moved, fabs(one->v[i] - 0.5));
        /* FO-BLO's direction is grad_v f, and this f does not reach v */
        if (method != BOME_METHOD_FO_BLO)
            cr_expect_gt(moved, 1e-4, "%s: v did not move (%g)", name, moved);
    }
    /* the same count of workers twice: the same bits */
    for (int i = 0; i < 2; i++) {
        two[i] = new_run(method, problem, 2);
        solve(two[i]);
        cr_assert_eq(two[i]->rc[0], BOME_OK, "%s, 2 workers: %s", name, two[i]->msg[0]);
    }
    cr_expect_eq(memcmp(two[0]->x, two[1]->x, sizeof two[0]->x), 0, "%s: two runs on 2 workers differ", name);
    cr_expect_eq(memcmp(two[0]->W, two[1]->W, sizeof two[0]->W), 0, "%s: two runs on 2 workers differ", name);
    cr_expect_eq(memcmp(two[0]->v, two[1]->v, sizeof two[0]->v), 0, "%s: two runs on 2 workers differ", name);
    cr_expect_eq(memcmp(two[0]->lv, two[1]->lv, sizeof two[0]->lv), 0, "%s: two runs on 2 workers differ", name);
    free(one);
    free(three);
    free(two[0]);
    free(two[1]);
}

ParameterizedTestParameters(workers, data_free_problem_as_one_process) { return all_methods(); }
ParameterizedTest(int *m, workers, data_free_problem_as_one_process) { compare(*m, FIXTURE); }

ParameterizedTestParameters(workers, sharded_rows_as_one_process) { return all_methods(); }
ParameterizedTest(int *m, workers, sharded_rows_as_one_process) { compare(*m, CLEAN); }

ParameterizedTestParameters(workers, sharded_inner_variable_as_one_process) { return all_methods(); }
ParameterizedTest(int *m, workers, sharded_inner_variable_as_one_process) { compare(*m, LATENT); }

/* ---- Failures ------------------------------------------------------------------------ */

Test(workers, a_failing_sum_stops_every_worker_with_its_message)
{
    for (int method = 0; method < bome_method_count(); method++) {
        run *R = new_run(method, CLEAN, 3);
        team t;
        member ms[TEAM_MAX];
        void *args[3] = {R, R, R};
        team_run(&t, 3, 12, worker, args, ms);
        for (int r = 0; r < 3; r++) {
            cr_expect_eq(R->rc[r], BOME_ERR_WORKERS, "%s, worker %d: %d: %s", bome_method_name(method), r, R->rc[r],
                         R->msg[r]);
            cr_expect(strstr(R->msg[r], "the team failed at sum 12"), "%s: %s", bome_method_name(method), R->msg[r]);
        }
        free(R);
    }
}

/* Worker 1's own rows hold a label out of range: its plan fails, and the
 * others learn it from the same sum instead of waiting for it. */
Test(workers, a_bad_row_on_one_worker_stops_them_all)
{
    run *R = new_run(BOME_METHOD_BOME, CLEAN, 3);
    R->bad_label_on = 1;
    solve(R);
    cr_expect_eq(R->rc[1], BOME_ERR_RANGE, "%d: %s", R->rc[1], R->msg[1]);
    cr_expect(strstr(R->msg[1], "label"), "%s", R->msg[1]);
    for (int r = 0; r < 3; r += 2) {
        cr_expect_eq(R->rc[r], BOME_ERR_WORKERS, "worker %d: %d: %s", r, R->rc[r], R->msg[r]);
        cr_expect(strstr(R->msg[r], "1 of the 3 workers failed"), "%s", R->msg[r]);
    }
    free(R);
}

Test(workers, workers_that_disagree_stop_at_the_start)
{
    run *R = new_run(BOME_METHOD_BOME, FIXTURE, 3);
    R->T_on_1 = 6;
    solve(R);
    for (int r = 0; r < 3; r++) {
        cr_expect_eq(R->rc[r], BOME_ERR_WORKERS, "worker %d: %s", r, R->msg[r]);
        cr_expect(strstr(R->msg[r], "1 of the 3 workers have other"), "%s", R->msg[r]);
    }
    cr_expect(strstr(R->msg[1], "this one among them"), "%s", R->msg[1]);
    free(R);
}

/* Options that cannot describe workers are refused. */
Test(workers, invalid_workers_are_refused)
{
    bome_options o;
    bome_options_default(&o);
    bome_workers w = {2, 2, team_sum, team_broadcast, NULL};
    o.workers = &w;
    char msg[256];
    cr_expect_eq(bome_options_check(&o, msg, sizeof msg), BOME_ERR_ARG);
    cr_expect(strstr(msg, "rank 2 of 2"), "%s", msg);
    w.rank = 0;
    w.broadcast = NULL;
    cr_expect_eq(bome_options_check(&o, msg, sizeof msg), BOME_ERR_ARG);
    w.broadcast = team_broadcast;
    cr_expect_eq(bome_options_check(&o, msg, sizeof msg), BOME_OK, "%s", msg);
    bome_problem *p = bome_problem_new();
    cr_expect_eq(bome_problem_set_sharded(p, BOME_OUTER, 0), BOME_ERR_ARG);
    cr_expect(strstr(bome_problem_errmsg(p), "no outer variable 0"), "%s", bome_problem_errmsg(p));
    bome_problem_free(p);
}

/* ---- The start: worker 0's values -------------------------------------------------------- */

static void start_job(member *m)
{
    bome_real *x = m->arg;
    x += m->rank * NX;
    fctx k = {1, 0};
    for (int i = 0; i < NX; i++)
        x[i] = X0[i] + m->rank; /* every worker starts elsewhere */
    bome_problem *p = make_problem(x, &k, NULL);
    bome_options o;
    opts(&o, 5, 0.1, 0.05, 0.05);
    o.workers = &m->w;
    bome_solver *s = bome_solver_new(p, &o);
    cr_expect_eq(bome_solver_status(s), BOME_OK, "%s", bome_solver_errmsg(s));
    bome_solver_free(s);
    bome_problem_free(p);
}

Test(workers, every_worker_starts_from_worker_0s_values)
{
    bome_real x[3 * NX];
    team t;
    member ms[TEAM_MAX];
    void *args[3] = {x, x, x};
    team_run(&t, 3, 0, start_job, args, ms);
    for (int r = 0; r < 3; r++)
        cr_expect_eq(memcmp(x + r * NX, X0, sizeof X0), 0, "worker %d did not take worker 0's start", r);
}

/* ---- The op: bome_workers_sum and its gradient ------------------------------------------- */

/* Worker w holds x_w (2 values) and c_w = w + 1; S = sum_w c_w x_w, and
 * F = |S|^2 / 2, counted once. dF/dx_w = c_w S. */
static void op_job(member *m)
{
    double *out = m->arg;
    bome_graph *g = bome_graph_new();
    bome_graph_set_workers(g, m->rank, m->t->P, team_sum, m);
    bome_node *x = bome_param(g, "x", BOME_VECTOR(2));
    bome_real xv[2] = {1.0 + m->rank, -0.5 * m->rank};
    bome_set(g, x, xv);
    bome_node *S = bome_workers_sum(g, bome_scale(g, x, m->rank + 1));
    bome_node *F = bome_once(g, bome_scale(g, bome_sumsq(g, S), 0.5)), *dx;
    bome_grad(g, F, 1, &x, &dx);
    bome_node *outs[3] = {S, F, dx};
    cr_assert_eq(bome_eval(g, 3, outs), BOME_OK, "%s", bome_graph_errmsg(g));
    out[6 * m->rank + 0] = bome_data(S)[0];
    out[6 * m->rank + 1] = bome_data(S)[1];
    out[6 * m->rank + 2] = bome_value(F);
    out[6 * m->rank + 3] = bome_data(dx)[0];
    out[6 * m->rank + 4] = bome_data(dx)[1];
    out[6 * m->rank + 5] = bome_graph_worker(g) + 10 * bome_graph_workers(g);
    bome_graph_free(g);
}

Test(workers, the_sum_node_and_its_gradient)
{
    double out[18];
    team t;
    member ms[TEAM_MAX];
    void *args[3] = {out, out, out};
    team_run(&t, 3, 0, op_job, args, ms);
    /* x_w = (1 + w, -w/2), c_w = w + 1: S = (1 + 4 + 9, 0 - 1 - 3) */
    double S[2] = {14, -4};
    for (int w = 0; w < 3; w++) {
        cr_expect_eq(out[6 * w], S[0]);
        cr_expect_eq(out[6 * w + 1], S[1]);
        cr_expect_eq(out[6 * w + 2], w ? 0 : 0.5 * (S[0] * S[0] + S[1] * S[1]), "worker %d: F = %g", w, out[6 * w + 2]);
        cr_expect_eq(out[6 * w + 3], (w + 1) * S[0], "worker %d: dF/dx = %g", w, out[6 * w + 3]);
        cr_expect_eq(out[6 * w + 4], (w + 1) * S[1]);
        cr_expect_eq(out[6 * w + 5], w + 30);
    }
}

Test(workers, rows_split_evenly_in_order)
{
    long b, e, prev = 0;
    for (int w = 0; w < 3; w++) {
        bome_shard_rows(10, w, 3, &b, &e);
        cr_expect_eq(b, prev);
        cr_expect(e - b == 3 || e - b == 4);
        prev = e;
    }
    cr_expect_eq(prev, 10);
    bome_shard_rows(9007199254740993L, 2, 3, &b, &e);
    cr_expect_eq(e, 9007199254740993L);
    bome_shard_rows(10, 3, 3, &b, &e);
    cr_expect_eq(b, 0);
    cr_expect_eq(e, 0);
}
