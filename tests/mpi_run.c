/* tests/mpi_run.c: data-parallel runs over MPI, run by tests/mpi_test.sh
 * under `mpirun -np P`. Not a Criterion test: every rank is one process of
 * one MPI job.
 *
 *   mpi_run check   every method on the toys (data-free: counted once) and
 *                   on pclean.h's hyper-cleaning (rows and v sharded over the
 *                   ranks): after 20 steps the P-process result is the one
 *                   rank 0 gets alone, to 1e-12 relative; every rank holds
 *                   the same replicated values, bit for bit; a second run
 *                   gives the same bits.
 *   mpi_run exit    rank 1 exits with status 3 at step 5 of a long run; the
 *   mpi_run kill    or is killed: the job must end at once (mpi_test.sh
 *                   checks how fast, and that rank 0 never finished).
 */
#include <bome/mpi.h>

#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cases.h"
#include "pclean.h"

enum { STEPS = 20, MAXV = 4096, N_TRAIN = 300, N_VAL = 150, D = 6, K = 3 };

static int rank, size, failures;
static const bome_workers *mpi_workers; /* from bome_options_use_mpi, once */

#define FAIL(...)                                                  \
    do {                                                           \
        fprintf(stderr, "mpi_run: rank %d of %d: FAIL: ", rank, size); \
        fprintf(stderr, __VA_ARGS__);                              \
        fputc('\n', stderr);                                       \
        failures++;                                                \
    } while (0)

/* What a run left: its status and every variable's values (a sharded one's
 * gathered on rank 0). */
typedef struct result {
    int rc;
    char msg[512];
    int n;
    bome_real x[MAXV];
    double f;
} result;

static void run_solver(bome_problem *p, const bome_options *o, result *res)
{
    bome_solver *s = bome_solver_new(p, o);
    res->rc = s ? bome_solver_status(s) : BOME_ERR_NOMEM;
    bome_step_stats st = {0};
    for (int i = 0; !res->rc && i < STEPS; i++)
        res->rc = bome_solver_step(s, &st);
    res->f = st.f;
    snprintf(res->msg, sizeof res->msg, "%s", s ? bome_solver_errmsg(s) : "out of memory");
    bome_solver_free(s);
}

static void keep(result *res, const bome_real *x, int n)
{
    if (res->n + n > MAXV) {
        FAIL("more than %d values", MAXV);
        return;
    }
    memcpy(res->x + res->n, x, (size_t)n * sizeof *x);
    res->n += n;
}

/* A toy from the CLI's table with one method; mpi: across the ranks. */
static void toy(const prob_case *c, int method, bool mpi, result *res)
{
    memset(res, 0, sizeof *res);
    bome_options o;
    c->defaults(&o);
    o.method = (bome_method)method;
    o.max_steps = STEPS;
    o.tol = 0;
    o.workers = mpi ? mpi_workers : NULL;
    prob_run r = {0};
    r.o = &o;
    char err[256] = "";
    res->rc = c->create(&r, 0, o.seed, err, sizeof err);
    if (res->rc) {
        snprintf(res->msg, sizeof res->msg, "create: %s", err);
        c->destroy(&r);
        return;
    }
    run_solver(r.problem, &o, res);
    for (int i = 0; i < r.n_show; i++)
        keep(res, r.show_values[i], r.show_size[i]);
    c->destroy(&r);
}

/* pclean with one method: this rank's share (mpi) or the whole (not). */
static void clean(int method, bool mpi, result *res)
{
    memset(res, 0, sizeof *res);
    prob_pclean c;
    res->rc = prob_pclean_new(&c, N_TRAIN, N_VAL, D, K, mpi ? rank : 0, mpi ? size : 1);
    if (res->rc) {
        snprintf(res->msg, sizeof res->msg, "prob_pclean_new failed");
        return;
    }
    bome_options o;
    prob_pclean_defaults(&o);
    o.method = (bome_method)method;
    o.max_steps = STEPS;
    bome_options_set(&o, "ufo_q", 0.5);
    if (method == BOME_METHOD_BVFSM)
        bome_options_set(&o, "bvfsm_c_ln", 0.01);
    o.workers = mpi ? mpi_workers : NULL;
    run_solver(c.problem, &o, res);
    keep(res, c.W, c.k * c.d);
    int mine = (int)(c.train_end - c.train_begin);
    if (!mpi) {
        keep(res, c.v, mine);
    } else {
        bome_options g = o;
        bome_real *all = rank == 0 ? res->x + res->n : NULL;
        if (bome_mpi_gather(&g, c.v, mine, all) != BOME_OK)
            FAIL("bome_mpi_gather");
        if (rank == 0)
            res->n += N_TRAIN;
    }
    prob_pclean_free(&c);
}

/* Every rank has rank 0's x[0..n), bit for bit. */
static bool same_on_all_ranks(const bome_real *x, int n)
{
    bome_real *b = malloc((size_t)(n > 0 ? n : 1) * sizeof *b);
    memcpy(b, x, (size_t)n * sizeof *b);
    MPI_Bcast(b, n, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    int differ = memcmp(b, x, (size_t)n * sizeof *b) != 0, any = 0;
    MPI_Allreduce(&differ, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    free(b);
    return !any;
}

/* run(mpi = false) on rank 0 alone against run(true) on all, twice. */
static void check(const char *what, int method, void (*run)(const void *arg, int method, bool mpi, result *res),
                  const void *arg)
{
    static result one, many, again;
    const char *name = bome_method_name(method);
    if (rank == 0)
        run(arg, method, false, &one);
    MPI_Bcast(&one.rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    run(arg, method, true, &many);
    run(arg, method, true, &again);
    int rcs[2] = {many.rc, -many.rc}, ext[2];
    MPI_Allreduce(rcs, ext, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (ext[0] != -ext[1])
        FAIL("%s, %s: the ranks ended differently (%d: %s)", what, name, many.rc, many.msg);
    if (many.rc != one.rc) {
        FAIL("%s, %s: %d ranks: %d (%s), one process: %d (%s)", what, name, size, many.rc, many.msg, one.rc, one.msg);
        return;
    }
    if (one.rc == BOME_ERR_ARG) { /* refused alike, e.g. a meta-batch for a method of one task */
        if (rank == 0)
            printf("mpi_run: %-12s %-8s refused alike: %.60s\n", what, name, one.msg);
        return;
    }
    if (again.n != many.n || memcmp(again.x, many.x, (size_t)many.n * sizeof *many.x))
        FAIL("%s, %s: two runs on %d ranks differ", what, name, size);
    /* replicated values agree everywhere (rank 0 alone holds the gathered shards) */
    if (!same_on_all_ranks(many.x, what[0] == 'p' ? K * D : many.n))
        FAIL("%s, %s: the ranks hold different values", what, name);
    if (rank != 0)
        return;
    double worst = 0;
    int at = 0;
    if (one.n != many.n)
        FAIL("%s, %s: %d values, one process %d", what, name, many.n, one.n);
    for (int i = 0; i < one.n && i < many.n; i++) {
        double e = fabs(many.x[i] - one.x[i]) / fmax(1, fabs(one.x[i]));
        if (!(e <= worst))
            worst = e, at = i;
    }
    if (!(worst <= 1e-12))
        FAIL("%s, %s: value %d: %.17g on %d ranks, %.17g in one process", what, name, at, many.x[at], size,
             one.x[at]);
    if (!(fabs(many.f - one.f) <= 1e-12 * fmax(1, fabs(one.f))))
        FAIL("%s, %s: f = %.17g on %d ranks, %.17g in one process", what, name, many.f, size, one.f);
    printf("mpi_run: %-12s %-8s %d ranks: f %-10.6g worst %.1e, bit-identical again: %s\n", what, name, size, many.f,
           worst, again.n == many.n && !memcmp(again.x, many.x, (size_t)many.n * sizeof *many.x) ? "yes" : "NO");
}

static void run_toy(const void *arg, int method, bool mpi, result *res) { toy(arg, method, mpi, res); }
static void run_clean(const void *arg, int method, bool mpi, result *res)
{
    (void)arg;
    clean(method, mpi, res);
}

/* ---- A rank that dies ---- */

static int die_at_5(void *ud, bome_solver *s, const bome_step_stats *st)
{
    (void)s;
    if (rank == 1 && st->step == 5) {
        fprintf(stderr, "mpi_run: rank 1 leaves at step 5\n");
        fflush(stderr);
        if (*(const char *)ud == 'k')
            raise(SIGKILL);
        exit(3);
    }
    return 0;
}

static int dead_rank(const char *how)
{
    prob_pclean c;
    if (prob_pclean_new(&c, 3000, 300, 20, K, rank, size))
        return 1;
    bome_options o;
    prob_pclean_defaults(&o);
    o.max_steps = 100000; /* minutes, were the others to go on */
    o.workers = mpi_workers;
    o.on_step = die_at_5;
    o.on_step_ud = (void *)how;
    int rc = bome_solve(c.problem, &o, NULL);
    /* only a rank that got an error from MPI gets here early */
    printf("mpi_run: rank %d finished: %d %s\n", rank, rc, bome_problem_errmsg(c.problem));
    prob_pclean_free(&c);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const char *mode = argc > 1 ? argv[1] : "check";
    bome_options o;
    bome_options_default(&o);
    if (bome_options_use_mpi(&o, MPI_COMM_WORLD) != BOME_OK) {
        fprintf(stderr, "mpi_run: bome_options_use_mpi failed\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    mpi_workers = o.workers;
    if (mpi_workers->rank != rank || mpi_workers->size != size)
        FAIL("workers: rank %d of %d", mpi_workers->rank, mpi_workers->size);
    if (!strcmp(mode, "exit") || !strcmp(mode, "kill")) {
        int rc = dead_rank(mode);
        MPI_Abort(MPI_COMM_WORLD, rc ? rc : 1); /* never a clean end */
    }
    const prob_case *toys[] = {&prob_coreset, &prob_nonsingleton, &prob_minimax, &prob_ridge,
                               &prob_ufo_toy};
    for (int m = 0; m < bome_method_count(); m++) {
        for (size_t t = 0; t < sizeof toys / sizeof *toys; t++)
            check(toys[t]->name, m, run_toy, toys[t]);
        check("pclean", m, run_clean, NULL);
    }
    bome_mpi_stats st;
    if (bome_mpi_stats_get(&o, &st) || st.sums < 1)
        FAIL("no sums counted");
    else if (rank == 0)
        printf("mpi_run: %ld sums, %ld broadcasts, %.0f values, %.3f s inside them on rank 0\n", st.sums,
               st.broadcasts, st.values, st.seconds);
    int all = 0;
    MPI_Allreduce(&failures, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0)
        printf("mpi_run: %s (%d failures over %d ranks)\n", all ? "FAILED" : "all passed", all, size);
    MPI_Finalize();
    return all ? 1 : 0;
}
