/*
 * bench_gemm: the ad engine's small GEMM kernels (ad/gemm.c) against the
 * CBLAS calls they replace in row-tiled plans, on the products such a plan
 * makes over a tall data matrix X (n x d) in blocks of rows:
 *
 *   grad  per block, Z = X_b W^T (N outputs), then dW += Z^T X_b: one
 *         gradient's two products, X_b still in cache for the second
 *   nt    only Z = X_b W^T per block
 *   tn    only dW += Z_b^T X_b per block
 *   nn    C_b = Z_b V (Z_b the block's N-column rows, V N x N): the row
 *         product of an adjoint through a hidden layer
 *
 * for output widths N up to 64 (the row-tiled stage's width rule). The kernel
 * sets (blas, avx2, avx512 as the CPU has them, and the widest again without
 * the TN kernel's prefetch of the next block) take turns repetition by
 * repetition; medians of wall and of process CPU time (the latter without
 * the time other processes held the core). Run with OPENBLAS_NUM_THREADS set.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "bench_util.h"
#include "internal.h" /* ad/: the kernels and their switch */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_SETS = 5, MAX_REPS = 5000 };

/* Whether the TN kernel prefetches the next block (the engine's default):
 * the last side runs the widest kernel set without, to show what it gains. */
static bool prefetch = true;

typedef struct job {
    const double *x, *w, *v;
    double *z, *c, *dw;
    int n, d, N, block;
} job;

/* The calls of ad's matmul_rows (ad/ops_linalg.c); ad_gemm_* make the
 * CBLAS calls themselves when the set is blas. */
static void nt_block(const job *j, int r0, int m)
{
    int next = j->n - (r0 + m) < m ? j->n - (r0 + m) : m;
    ad_gemm_nt(m, j->N, j->d, j->x + (size_t)r0 * j->d, j->d, j->w, j->d, j->z + (size_t)r0 * j->N, j->N,
               next > 0 && prefetch ? j->x + (size_t)(r0 + m) * j->d : NULL, next > 0 && prefetch ? next : 0);
}

static void tn_block(const job *j, int r0, int m, bool first)
{
    int next = j->n - (r0 + m) < m ? j->n - (r0 + m) : m;
    ad_gemm_tn(m, j->N, j->d, j->z + (size_t)r0 * j->N, j->N, j->x + (size_t)r0 * j->d, j->d, j->dw, j->d, first,
               next > 0 && prefetch ? j->x + (size_t)(r0 + m) * j->d : NULL, next > 0 && prefetch ? next : 0);
}

static void nn_block(const job *j, int r0, int m)
{
    ad_gemm_nn(m, j->N, j->N, j->z + (size_t)r0 * j->N, j->N, j->v, j->N, j->c + (size_t)r0 * j->N, j->N);
}

enum { OP_GRAD, OP_NT, OP_TN, OP_NN, N_OPS };
static const char *const op_name[N_OPS] = {"grad", "nt", "tn", "nn"};

static void run(int op, const job *j)
{
    for (int r0 = 0; r0 < j->n; r0 += j->block) {
        int m = j->n - r0 < j->block ? j->n - r0 : j->block;
        if (op == OP_GRAD || op == OP_NT)
            nt_block(j, r0, m);
        if (op == OP_GRAD || op == OP_TN)
            tn_block(j, r0, m, r0 == 0);
        if (op == OP_NN)
            nn_block(j, r0, m);
    }
}

static void usage(FILE *out)
{
    fprintf(out, "usage: bench_gemm [--rows N] [--cols D] [--block B] [--reps R] [--widths a,b,...] [--ops grad,nt,tn,nn]\n"
                 "  defaults: 50000 x 784, blocks of 64 rows, 10 repetitions, widths 1,2,4,8,10,16,32,64, all ops\n");
}

int main(int argc, char **argv)
{
    int n = 50000, d = 784, block = 64, reps = 10;
    char widths_s[256] = "1,2,4,8,10,16,32,64", ops_s[64] = "grad,nt,tn,nn";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (v && !strcmp(a, "--rows"))
            n = atoi(argv[++i]);
        else if (v && !strcmp(a, "--cols"))
            d = atoi(argv[++i]);
        else if (v && !strcmp(a, "--block"))
            block = atoi(argv[++i]);
        else if (v && !strcmp(a, "--reps"))
            reps = atoi(argv[++i]);
        else if (v && !strcmp(a, "--widths"))
            snprintf(widths_s, sizeof widths_s, "%s", argv[++i]);
        else if (v && !strcmp(a, "--ops"))
            snprintf(ops_s, sizeof ops_s, "%s", argv[++i]);
        else {
            usage(stderr);
            return 2;
        }
    }
    if (n < 1 || d < 1 || block < 1 || reps < 1 || reps > MAX_REPS) {
        usage(stderr);
        return 2;
    }
    bench_print_machine();
    int sets[MAX_SETS], ns = 0;
    bool pf[MAX_SETS];
    char names[MAX_SETS][32];
    for (int k = AD_KERNEL_BLAS; k <= AD_KERNEL_AVX512; k++)
        if (ad_kernel_set(k)) {
            snprintf(names[ns], sizeof names[0], "%s", ad_kernel_name(k));
            pf[ns] = true;
            sets[ns++] = k;
        }
    ad_kernel_set(-1);
    printf("kernel sets on this CPU:");
    for (int s = 0; s < ns; s++)
        printf(" %s", names[s]);
    printf(" (automatic choice: %s)\n", ad_kernel_name(ad_kernel_get()));
    if (ns > 1) {
        sets[ns] = sets[ns - 1];
        pf[ns] = false;
        snprintf(names[ns], sizeof names[0], "%s-nopf", ad_kernel_name(sets[ns - 1]));
        ns++;
    }
    printf("X %d x %d (%.1f MB), blocks of %d rows, %d repetitions, the sets taking turns; medians\n\n", n, d,
           (double)n * d * 8e-6, block, reps);

    uint64_t seed = 7;
    double *x = bench_xcalloc((size_t)n * d, sizeof *x);
    for (size_t i = 0; i < (size_t)n * d; i++)
        x[i] = bench_lcg_uniform(&seed) - 0.5;
    double *w = bench_xcalloc((size_t)AD_NARROW_MAX * d, sizeof *w), *v = bench_xcalloc(64 * 64, sizeof *v);
    for (size_t i = 0; i < (size_t)AD_NARROW_MAX * d; i++)
        w[i] = bench_lcg_uniform(&seed) - 0.5;
    for (int i = 0; i < 64 * 64; i++)
        v[i] = bench_lcg_uniform(&seed) - 0.5;
    double *z[MAX_SETS], *c[MAX_SETS], *dw[MAX_SETS];
    for (int s = 0; s < ns; s++) {
        z[s] = bench_xcalloc((size_t)n * AD_NARROW_MAX, sizeof(double));
        c[s] = bench_xcalloc((size_t)n * AD_NARROW_MAX, sizeof(double));
        dw[s] = bench_xcalloc((size_t)AD_NARROW_MAX * d, sizeof(double));
    }

    printf("%-5s %3s  %-11s %10s %10s %10s %9s %9s %10s %12s\n", "op", "N", "set", "ms", "min ms", "CPU ms", "GB/s X",
           "GFlop/s", "blas/this", "max rel diff");
    for (char *wt = strtok(widths_s, ","); wt; wt = strtok(NULL, ",")) {
        int N = atoi(wt);
        if (N < 1 || N > AD_NARROW_MAX)
            continue;
        for (int op = 0; op < N_OPS; op++) {
            if (!strstr(ops_s, op_name[op]))
                continue;
            job j[MAX_SETS];
            for (int s = 0; s < ns; s++) {
                j[s] = (job){x, w, v, z[s], c[s], dw[s], n, d, N, block};
                ad_kernel_set(sets[s]);
                prefetch = pf[s];
                if (op != OP_GRAD && op != OP_NT) /* the products' input: the logits */
                    run(OP_NT, &j[s]);
                run(op, &j[s]); /* warm-up and the check below */
            }
            double t[MAX_SETS][MAX_REPS], tc[MAX_SETS][MAX_REPS];
            for (int r = 0; r < reps; r++)
                for (int q = 0; q < ns; q++) {
                    int s = (q + r) % ns;
                    ad_kernel_set(sets[s]);
                    prefetch = pf[s];
                    double t0 = bench_now(), c0 = bench_cpu_now();
                    run(op, &j[s]);
                    t[s][r] = bench_now() - t0;
                    tc[s][r] = bench_cpu_now() - c0;
                }
            ad_kernel_set(-1);
            double med0 = bench_median(t[0], reps);
            for (int s = 0; s < ns; s++) {
                double med = bench_median(t[s], reps), diff = 0;
                const double *got = op == OP_NT ? z[s] : (op == OP_NN ? c[s] : dw[s]);
                const double *ref = op == OP_NT ? z[0] : (op == OP_NN ? c[0] : dw[0]);
                size_t len = op == OP_NT || op == OP_NN ? (size_t)n * N : (size_t)N * d;
                if (s)
                    diff = bench_rel_diff(got, ref, len);
                double bytes = op == OP_NN ? 0.0 : (double)n * d * 8;
                double flop = (op == OP_GRAD ? 4.0 : 2.0) * n * (double)N * (op == OP_NN ? N : d);
                printf("%-5s %3d  %-11s %10.3f %10.3f %10.3f %9.2f %9.2f %10.3f %12.1e\n", op_name[op], N,
                       names[s], 1e3 * med, 1e3 * bench_minimum(t[s], reps), 1e3 * bench_median(tc[s], reps),
                       bytes / med * 1e-9, flop / med * 1e-9, med0 / med, diff);
            }
        }
    }
    for (int s = 0; s < ns; s++) {
        free(z[s]);
        free(c[s]);
        free(dw[s]);
    }
    free(x);
    free(w);
    free(v);
    return 0;
}
