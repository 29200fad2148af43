/* The small utilities of bench_bome; see bench_util.h. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "bench_util.h"

#include "bome/blas.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

double bench_cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void *bench_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "bench: out of memory (%zu x %zu bytes)\n", n, size);
        exit(1);
    }
    return p;
}

/* A 64-bit LCG (Knuth's MMIX constants): deterministic data on any machine. */
uint64_t bench_lcg_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s;
}

double bench_lcg_uniform(uint64_t *s) { return (double)(bench_lcg_next(s) >> 11) * 0x1.0p-53; }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(const double *v, int n)
{
    double *c = bench_xcalloc((size_t)n, sizeof *c);
    memcpy(c, v, (size_t)n * sizeof *c);
    qsort(c, (size_t)n, sizeof *c, cmp_double);
    double m = n % 2 ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
    free(c);
    return m;
}

double bench_minimum(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        if (v[i] < m)
            m = v[i];
    return m;
}

/* max |a - b| / max |b|: the norm-wise relative difference. */
double bench_rel_diff(const double *a, const double *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (d > num || isnan(d))
            num = d;
        if (fabs(b[i]) > den)
            den = fabs(b[i]);
    }
    return den > 0 ? num / den : num;
}

double bench_dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

int bench_blas_threads(void) { return openblas_get_num_threads ? openblas_get_num_threads() : 1; }

void bench_set_blas_threads(int n)
{
    if (openblas_set_num_threads)
        openblas_set_num_threads(n);
}

void bench_print_machine(void)
{
    char model[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "model name", 10)) {
                char *c = strchr(line, ':');
                if (c) {
                    snprintf(model, sizeof model, "%s", c + 2);
                    model[strcspn(model, "\n")] = '\0';
                }
                break;
            }
        fclose(f);
    }
    const char *env = getenv("OPENBLAS_NUM_THREADS");
    printf("CPU: %s, %ld online cores\n", model, sysconf(_SC_NPROCESSORS_ONLN));
    if (openblas_get_config)
        printf("BLAS: %s, core %s, %d thread(s) (OPENBLAS_NUM_THREADS=%s)\n", openblas_get_config(),
               openblas_get_corename ? openblas_get_corename() : "?", bench_blas_threads(), env ? env : "unset");
    else
        printf("BLAS: not OpenBLAS (no thread control)\n");
    bench_print_blas_advice();
    if (!env)
        printf("warning: OPENBLAS_NUM_THREADS is not set; OpenBLAS then uses every core\n");
}

void bench_print_blas_advice(void)
{
    bome_blas_info b;
    bome_blas_info_get(&b);
    char msg[BOME_BLAS_MSG_SIZE];
    if (bome_blas_message(&b, msg, sizeof msg))
        printf("warning: %s\n", msg);
}
