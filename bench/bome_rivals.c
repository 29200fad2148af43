/*
 * bench_bome's rivals case: one outer step of BOME, ITD, AID-CG and BSG-1 on
 * the same hyper-cleaning data, each its own solver built from the same f and
 * g, interleaved repetition by repetition so that the machine's drift falls on
 * every method alike. The CLI's settings: T = 10, inner momentum 0.9 (kept
 * across outer steps by BOME and BSG-1, restarted by ITD and AID-CG as opt
 * documents), AID-CG with 10 conjugate-gradient steps.
 */
#include "bench_util.h"
#include "bome_bench.h"

#include <stdio.h>
#include <stdlib.h>

enum { N_METHODS = 4 };

bool bench_case_rivals(const options *o)
{
    static const bome_method method[N_METHODS] = {BOME_METHOD_BOME, BOME_METHOD_ITD, BOME_METHOD_AID_CG,
                                                  BOME_METHOD_BSG1};
    static const char *name[N_METHODS] = {"BOME", "ITD", "AID-CG", "BSG-1"};
    int reps = o->reps_big ? o->reps_big : MIN_REPS;
    hc_data D;
    if (!bench_hc_load(o, &D))
        return false;
    printf("== rivals: hyper-cleaning outer step by method, %s data, %d x %d train, T = %d, inner momentum %g, "
           "threads %d ==\n",
           D.what, D.n, D.d, HC_T, HC_MOMENTUM, bench_blas_threads());
    opt_side side[N_METHODS];
    double *t[N_METHODS] = {NULL};
    bool ok = true;
    int built = 0;
    for (; built < N_METHODS && ok; built++) {
        ok = bench_opt_side_new(&side[built], &D, method[built], HC_MOMENTUM);
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
        double med[N_METHODS];
        printf("  %d repetitions after 1 warm-up step, the methods rotating; seconds per outer step\n", reps);
        printf("  %-8s %9s %9s %12s\n", "", "median", "min", "/ BOME");
        for (int m = 0; m < N_METHODS; m++) {
            med[m] = bench_median(t[m], reps);
            printf("  %-8s %9.4f %9.4f %12.3f\n", name[m], med[m], bench_minimum(t[m], reps), med[m] / med[0]);
        }
        printf("  summary: threads %d;", bench_blas_threads());
        for (int m = 0; m < N_METHODS; m++)
            printf(" %s %.4f;", name[m], med[m]);
        printf(" s/step\n\n");
    }
    for (int m = 0; m < built; m++) {
        bench_opt_side_free(&side[m]);
        free(t[m]);
    }
    bench_hc_unload(&D);
    return ok;
}
