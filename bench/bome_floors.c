/*
 * bench_bome's floors: streaming read bandwidth (sum of a 1 GiB double array)
 * and the dgemm rate, the memory and compute floors under a hyper-cleaning
 * step.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "bench_util.h"
#include "bome_bench.h"

#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct bw_job {
    const double *x;
    size_t n;
    double sum;
} bw_job;

static void *bw_sum(void *arg)
{
    bw_job *j = arg;
    const double *x = j->x;
    double s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= j->n; i += 8)
        for (int k = 0; k < 8; k++)
            s[k] += x[i + k];
    for (; i < j->n; i++)
        s[0] += x[i];
    j->sum = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    return NULL;
}

double bench_stream_read(const double *x, size_t n, int threads)
{
    bw_job job[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    threads = threads < 1 ? 1 : (threads > MAX_THREADS ? MAX_THREADS : threads);
    for (int k = 0; k < threads; k++) {
        size_t a = n * (size_t)k / (size_t)threads, b = n * (size_t)(k + 1) / (size_t)threads;
        job[k] = (bw_job){x + a, b - a, 0};
        if (k)
            pthread_create(&tid[k], NULL, bw_sum, &job[k]);
    }
    bw_sum(&job[0]);
    double sum = job[0].sum;
    for (int k = 1; k < threads; k++) {
        pthread_join(tid[k], NULL);
        sum += job[k].sum;
    }
    return sum;
}

/* Median bytes per second of summing n doubles with t threads. */
static double bandwidth(const double *x, size_t n, int threads, int reps, double *sink)
{
    double *ts = bench_xcalloc((size_t)reps, sizeof *ts);
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        *sink += bench_stream_read(x, n, threads);
        ts[r] = bench_now() - t0;
    }
    double bps = (double)n * sizeof(double) / bench_median(ts, reps);
    free(ts);
    return bps;
}

/* Median flop/s of a square dgemm: the compute ceiling of the machine. */
static double dgemm_peak(int threads, int reps)
{
    const int n = 2048;
    double *a = bench_xcalloc((size_t)n * n, sizeof(double)), *b = bench_xcalloc((size_t)n * n, sizeof(double)),
           *c = bench_xcalloc((size_t)n * n, sizeof(double));
    uint64_t s = 3;
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = bench_lcg_uniform(&s) - 0.5;
        b[i] = bench_lcg_uniform(&s) - 0.5;
    }
    int before = bench_blas_threads();
    bench_set_blas_threads(threads);
    double *ts = bench_xcalloc((size_t)reps, sizeof *ts);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, a, n, b, n, 0.0, c, n); /* warm-up */
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, a, n, b, n, 0.0, c, n);
        ts[r] = bench_now() - t0;
    }
    bench_set_blas_threads(before);
    double f = 2.0 * n * n * (double)n / bench_median(ts, reps);
    free(ts);
    free(a);
    free(b);
    free(c);
    return f;
}

void bench_case_bandwidth(const options *o, bw_result *res)
{
    size_t n = (size_t)o->bw_mib * 1024 * 1024 / sizeof(double);
    int reps = 10;
    printf("== memory bandwidth: streaming read, sum of %d MiB of doubles (pthreads), median of %d ==\n", o->bw_mib, reps);
    double *x = bench_xcalloc(n, sizeof *x);
    for (size_t i = 0; i < n; i++) /* first touch: the pages exist before timing */
        x[i] = (double)(i & 1023);
    double sink = 0;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    for (int t = 1; t <= 2; t++) {
        if (t > cores)
            break;
        bandwidth(x, n, t, 2, &sink); /* warm-up */
        res->bps[t] = bandwidth(x, n, t, reps, &sink);
        printf("  %d thread%s  %6.2f GB/s  (%.2f GiB/s)\n", t, t > 1 ? "s" : " ", res->bps[t] * 1e-9,
               res->bps[t] / (1024.0 * 1024 * 1024));
    }
    free(x);
    printf("  (checksum %.6g)\n", sink);
    if (openblas_set_num_threads) {
        printf("== compute ceiling: dgemm 2048 x 2048 x 2048, median of 5 ==\n");
        for (int t = 1; t <= 2 && t <= cores; t++) {
            res->flops[t] = dgemm_peak(t, 5);
            printf("  %d BLAS thread%s  %6.1f GFlop/s\n", t, t > 1 ? "s" : " ", res->flops[t] * 1e-9);
        }
    }
    res->done = true;
    printf("\n");
}
