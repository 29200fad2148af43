/*
 * The small utilities of bench_bome: the clock, allocation that cannot fail,
 * deterministic random numbers, statistics over repetitions, and the BLAS's
 * thread count (OpenBLAS's, when the BLAS is OpenBLAS).
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* OpenBLAS's introspection and thread control, when the BLAS is OpenBLAS. */
extern char *openblas_get_config(void) __attribute__((weak));
extern char *openblas_get_corename(void) __attribute__((weak));
extern int openblas_get_num_threads(void) __attribute__((weak));
extern void openblas_set_num_threads(int) __attribute__((weak));

double bench_now(void);
/* CPU seconds of the whole process (all its threads): what a step costs when
 * it runs, without the time other processes had the cores */
double bench_cpu_now(void);
/* exits with a message when out of memory: a benchmark has no way back */
void *bench_xcalloc(size_t n, size_t size);
uint64_t bench_lcg_next(uint64_t *s);
double bench_lcg_uniform(uint64_t *s);
double bench_median(const double *v, int n);
double bench_minimum(const double *v, int n);
double bench_rel_diff(const double *a, const double *b, size_t n);
double bench_dot(const double *a, const double *b, size_t n);
/* 1 when the BLAS is not OpenBLAS; setting is then a no-op */
int bench_blas_threads(void);
void bench_set_blas_threads(int n);
void bench_print_machine(void);
/* A warning line when OpenBLAS runs a generic kernel on an AVX2 or AVX-512
 * CPU (bome_blas_message): the timings are then not the machine's. */
void bench_print_blas_advice(void);

#endif
