/*
 * bench_bome's rivals case: one outer step of every method in opt's table on
 * the same hyper-cleaning data, each its own solver built from the same f and
 * g, interleaved repetition by repetition (the order rotating) so that the
 * machine's drift falls on every method alike. The CLI's settings: T = 10,
 * each method's own defaults, and the inner momentum the released grid gives
 * it (0 for BOME, penalty and BVFSM, 0.9 for the others).
 */
#include "bench_util.h"
#include "bome_bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_METHODS = 64 };

/* hpo/grid.py: --x_momentum 0.0 for these, the code's 0.9 for the rest */
static double grid_inner_momentum(int m)
{
    const char *name = bome_method_name(m);
    return !strcmp(name, "bome") || !strcmp(name, "penalty") || !strcmp(name, "bvfsm") ? 0.0 : HC_MOMENTUM;
}

bool bench_case_rivals(const options *o)
{
    int N_METHODS = bome_method_count() < MAX_METHODS ? bome_method_count() : MAX_METHODS;
    int reps = o->reps_big ? o->reps_big : MIN_REPS;
    hc_data D;
    if (!bench_hc_load(o, &D))
        return false;
    printf("== rivals: hyper-cleaning outer step by method, %s data, %d x %d train, T = %d, threads %d ==\n", D.what,
           D.n, D.d, HC_T, bench_blas_threads());
    opt_side side[MAX_METHODS];
    double *t[MAX_METHODS] = {NULL};
    bool ok = true;
    int built = 0;
    for (; built < N_METHODS && ok; built++) {
        ok = bench_opt_side_new(&side[built], &D, (bome_method)built, grid_inner_momentum(built));
        t[built] = bench_xcalloc((size_t)reps, sizeof(double));
    }
    /* one warm-up step each: first-touch page faults and BLAS buffers */
    for (int m = 0; m < N_METHODS && ok; m++)
        ok = bench_opt_side_step(&side[m]);
    for (int r = 0; r < reps && ok; r++)
        for (int j = 0; j < N_METHODS && ok; j++) {
            int m = (j + r) % N_METHODS; /* rotate who goes first */
            double ts = bench_now();
            ok = bench_opt_side_step(&side[m]);
            t[m][r] = bench_now() - ts;
        }
    if (ok) {
        double med[MAX_METHODS];
        printf("  %d repetitions after 1 warm-up step, the methods rotating; seconds per outer step\n", reps);
        printf("  %-8s %9s %9s %12s\n", "", "median", "min", "/ BOME");
        for (int m = 0; m < N_METHODS; m++) {
            med[m] = bench_median(t[m], reps);
            printf("  %-8s %9.4f %9.4f %12.3f\n", bome_method_name(m), med[m], bench_minimum(t[m], reps),
                   med[m] / med[0]);
        }
        printf("  summary: threads %d;", bench_blas_threads());
        for (int m = 0; m < N_METHODS; m++)
            printf(" %s %.4f;", bome_method_name(m), med[m]);
        printf(" s/step\n\n");
    }
    for (int m = 0; m < built; m++) {
        bench_opt_side_free(&side[m]);
        free(t[m]);
    }
    bench_hc_unload(&D);
    return ok;
}
