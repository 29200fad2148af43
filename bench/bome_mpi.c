/*
 * bench_mpi: seconds per outer step of a data-parallel run (problems/
 * pclean.h, synthetic hyper-cleaning, v sharded over the ranks), with what
 * the ranks exchange per step; and, with --allreduce, the latency and
 * bandwidth of MPI_Allreduce between the ranks, for the model of many
 * machines in bench/RESULTS.md. bench/mpi.sh runs both configurations of
 * this 2-core machine interleaved.
 *
 *   mpirun -np 2 bench_mpi [--rows N] [--cols D] [--classes K] [--val N]
 *                          [--steps S] [--threads t] [--method NAME] [--T T]
 *   bench_mpi --threads 2 ...         one process, two threads
 *   mpirun -np 2 bench_mpi --allreduce
 */
#include <bome/mpi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "pclean.h"

static int rank, size;

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Median seconds of MPI_Allreduce over n doubles, reps times. */
static double allreduce_time(int n, int reps)
{
    double *buf = bench_xcalloc((size_t)n, sizeof *buf), *t = bench_xcalloc((size_t)reps, sizeof *t);
    for (int r = -3; r < reps; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        if (r >= 0)
            t[r] = MPI_Wtime() - t0;
    }
    double m = median(t, reps);
    free(buf);
    free(t);
    return m;
}

static void allreduce_table(void)
{
    static const int sizes[] = {1, 16, 256, 4096, 7840, 65536, 1 << 20};
    if (rank == 0)
        printf("bench_mpi: MPI_Allreduce (MPI_SUM) of doubles between %d ranks on this machine, medians\n"
               "  doubles      bytes     seconds      GB/s\n", size);
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        int n = sizes[i];
        double s = allreduce_time(n, n > 100000 ? 30 : 300);
        if (rank == 0)
            printf("  %7d %10zu %11.3g %9.3g\n", n, (size_t)n * 8, s, (double)n * 8 / s / 1e9);
    }
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int rows = 50000, cols = 784, classes = 10, val = 5000, steps = 12, threads = 1, T = 10;
    const char *method = "bome";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--allreduce")) {
            allreduce_table();
            MPI_Finalize();
            return 0;
        }
        if (!v) {
            fprintf(stderr, "bench_mpi: %s needs a value (see the top of bench/bome_mpi.c)\n", a);
            MPI_Abort(MPI_COMM_WORLD, 2);
        }
        if (!strcmp(a, "--rows")) rows = atoi(v);
        else if (!strcmp(a, "--cols")) cols = atoi(v);
        else if (!strcmp(a, "--classes")) classes = atoi(v);
        else if (!strcmp(a, "--val")) val = atoi(v);
        else if (!strcmp(a, "--steps")) steps = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--T")) T = atoi(v);
        else if (!strcmp(a, "--method")) method = v;
        else {
            fprintf(stderr, "bench_mpi: unknown %s\n", a);
            MPI_Abort(MPI_COMM_WORLD, 2);
        }
        i++;
    }
    prob_pclean c;
    if (prob_pclean_new(&c, rows, val, cols, classes, rank, size)) {
        fprintf(stderr, "bench_mpi: bad sizes or out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    bome_options o;
    prob_pclean_defaults(&o);
    o.method = (bome_method)bome_method_from_name(method);
    o.T = T;
    o.threads = threads;
    o.max_steps = steps + 1;
    if ((int)o.method < 0 || bome_options_use_mpi(&o, MPI_COMM_WORLD)) {
        fprintf(stderr, "bench_mpi: unknown method %s, or MPI failed\n", method);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    bench_set_blas_threads(threads);
    bome_solver *s = bome_solver_new(c.problem, &o);
    if (bome_solver_status(s)) {
        fprintf(stderr, "bench_mpi: rank %d: %s\n", rank, bome_solver_errmsg(s));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    bome_step_stats st;
    double *t = bench_xcalloc((size_t)steps, sizeof *t);
    bome_mpi_stats a, b;
    for (int i = -1; i < steps; i++) { /* one step to warm up */
        if (i == 0)
            bome_mpi_stats_get(&o, &a);
        double t0 = bench_now();
        if (bome_solver_step(s, &st)) {
            fprintf(stderr, "bench_mpi: rank %d: %s\n", rank, bome_solver_errmsg(s));
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        if (i >= 0)
            t[i] = bench_now() - t0;
    }
    bome_mpi_stats_get(&o, &b);
    double per_sums = (double)(b.sums - a.sums) / steps, per_values = (b.values - a.values) / steps;
    double in_sums = (b.seconds - a.seconds) / steps, med = median(t, steps);
    if (rank == 0)
        printf("bench_mpi: %d ranks x %d threads, %s, %d x %d, %d classes, T = %d: %.4f s/step (median of %d), "
               "%.1f sums/step, %.0f values (%.1f KB)/step, %.4f s/step inside the sums, f %.6g\n",
               size, threads, method, rows, cols, classes, o.T, med, steps, per_sums, per_values,
               per_values * 8 / 1e3, in_sums, st.f);
    free(t);
    bome_solver_free(s);
    prob_pclean_free(&c);
    MPI_Finalize();
    return 0;
}
