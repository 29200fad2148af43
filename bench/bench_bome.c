/*
 * bench_bome: one outer step of BOME through opt (bome_solver_step) against
 * hand-written C doing the same step, measured in one process with the sides
 * interleaved repetition by repetition.
 *
 *   coreset     the paper's toy (problems/coreset.c's f and g), T = 10:
 *               microseconds per outer step; the hand-written side is plain C
 *               with every gradient worked out by hand.
 *   hyperclean  data hyper-cleaning at the paper's size (50 000 x 784 train,
 *               5 000 validation, linear 10-class model, T = 10), float64:
 *               seconds per outer step against hand-written variants: whole-
 *               matrix dgemms (the CBLAS calls of untiled plans), the same
 *               split into 64-row panels, and the rows in blocks of 64 with
 *               logits, softmax and dW fused per block (the calls of the
 *               engine's row-tiled plans); the one with opt's calls is marked.
 *   bandwidth   streaming read bandwidth (sum of a 1 GiB double array) and the
 *               floor it puts under a hyper-cleaning step.
 *
 * Run with OPENBLAS_NUM_THREADS set; see --help and bench/RESULTS.md.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <bome/opt.h>

#include "data.h"     /* problems/: the Fashion-MNIST loader */
/* ad/: only for --nodes, which times the nodes of opt's plans one by one */
#include "internal.h"
#include "hc_model.h" /* problems/: the product's hyper-cleaning logits and L2 */

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* OpenBLAS's introspection and thread control, when the BLAS is OpenBLAS. */
extern char *openblas_get_config(void) __attribute__((weak));
extern char *openblas_get_corename(void) __attribute__((weak));
extern int openblas_get_num_threads(void) __attribute__((weak));
extern void openblas_set_num_threads(int) __attribute__((weak));

enum { MIN_REPS = 10, D_IN = 784, K_OUT = 10, MAX_BLOCK = 1024, MAX_THREADS = 16 };

/* Rows per block of the panels and blocked variants (--block; 64). */
static int BLOCK = 64;

/* The hyper-cleaning settings of the released code, as problems/hyperclean.c. */
#define HC_T 10
#define HC_ALPHA 0.01
#define HC_LR_THETA 0.01
#define HC_LR_V 100.0
#define HC_MOMENTUM 0.9
#define HC_ETA 0.5
#define HC_L2 0.001
#define LAMBDA_EPS 1e-8

typedef struct options {
    int reps_small, reps_big; /* 0: the defaults */
    int rows;
    int steps;                /* coreset steps per repetition */
    int bw_mib;
    int warm;                 /* warm-start steps for hyperclean */
    const char *only;
    const char *data;
    const char *data_dir;
    bool nodes;
} options;

/* ---- small utilities ----------------------------------------------------- */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "bench_bome: out of memory (%zu x %zu bytes)\n", n, size);
        exit(1);
    }
    return p;
}

/* A 64-bit LCG (Knuth's MMIX constants): deterministic data on any machine. */
static uint64_t lcg_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s;
}

static double lcg_uniform(uint64_t *s) { return (double)(lcg_next(s) >> 11) * 0x1.0p-53; }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
    double *c = xcalloc((size_t)n, sizeof *c);
    memcpy(c, v, (size_t)n * sizeof *c);
    qsort(c, (size_t)n, sizeof *c, cmp_double);
    double m = n % 2 ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
    free(c);
    return m;
}

static double minimum(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        if (v[i] < m)
            m = v[i];
    return m;
}

/* max |a - b| / max |b|: the norm-wise relative difference. */
static double rel_diff(const double *a, const double *b, size_t n)
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

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static int blas_threads(void) { return openblas_get_num_threads ? openblas_get_num_threads() : 1; }

static void set_blas_threads(int n)
{
    if (openblas_set_num_threads)
        openblas_set_num_threads(n);
}

static void print_machine(void)
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
               openblas_get_corename ? openblas_get_corename() : "?", blas_threads(), env ? env : "unset");
    else
        printf("BLAS: not OpenBLAS (no thread control)\n");
    if (!env)
        printf("warning: OPENBLAS_NUM_THREADS is not set; OpenBLAS then uses every core\n");
}

/* ======================================================================== */
/* a. coreset                                                               */
/* ======================================================================== */

static const bome_real CS_C[8] = {1, 3, 3, 1, -2, 2, -3, -2};
static const bome_real CS_Y[2] = {3, -2};
static const bome_real CS_START[2] = {0, 3};

/* problems/coreset.c's f and g, verbatim. */
static bome_node *cs_f(bome_graph *g, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_node *y = bome_const(g, BOME_VECTOR(2), CS_Y);
    return bome_scale(g, bome_sumsq(g, bome_sub(g, x->theta[0], y)), 0.1);
}

static bome_node *cs_g(bome_graph *g, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_node *c = bome_const(g, BOME_MATRIX(4, 2), CS_C);
    bome_node *mean = bome_matvec(g, c, 1, bome_softmax(g, x->v[0]));
    return bome_sumsq(g, bome_sub(g, mean, x->theta[0]));
}

typedef struct cs_hand {
    double w[4], x[2];
    double f, g, q, lambda; /* what the step reports, as opt's stats */
} cs_hand;

/* d g / d w at x for s = softmax(w), p = C^T s: with r = 2 (p - x) and
 * u_i = <c_i, r>, the gradient is s * (u - <s, u>). */
static void cs_grad_w(const double *s, const double *p, const double *x, double *gw)
{
    double r0 = 2 * (p[0] - x[0]), r1 = 2 * (p[1] - x[1]), u[4], su = 0;
    for (int i = 0; i < 4; i++) {
        u[i] = CS_C[2 * i] * r0 + CS_C[2 * i + 1] * r1;
        su += s[i] * u[i];
    }
    for (int i = 0; i < 4; i++)
        gw[i] = s[i] * (u[i] - su);
}

/* One BOME step (T = 10, alpha = xi = 0.05, eta = 0.5, phi = eta |grad q|^2,
 * plain SGD), every derivative by hand. */
static void cs_hand_step(cs_hand *h)
{
    const double alpha = 0.05, xi = 0.05, eta = 0.5;
    double m = h->w[0], s[4], z = 0, p[2] = {0, 0};
    for (int i = 1; i < 4; i++)
        m = h->w[i] > m ? h->w[i] : m;
    for (int i = 0; i < 4; i++)
        z += s[i] = exp(h->w[i] - m);
    for (int i = 0; i < 4; i++) {
        s[i] /= z;
        p[0] += s[i] * CS_C[2 * i];
        p[1] += s[i] * CS_C[2 * i + 1];
    }
    /* inner loop: grad_x g = 2 (x - p) */
    double xt[2] = {h->x[0], h->x[1]};
    for (int t = 0; t < 10; t++) {
        xt[0] -= alpha * 2 * (xt[0] - p[0]);
        xt[1] -= alpha * 2 * (xt[1] - p[1]);
    }
    double gwk[4], gwT[4], qw[4], qx[2], fx[2];
    cs_grad_w(s, p, h->x, gwk);
    cs_grad_w(s, p, xt, gwT);
    for (int i = 0; i < 4; i++)
        qw[i] = gwk[i] - gwT[i];
    qx[0] = 2 * (h->x[0] - p[0]);
    qx[1] = 2 * (h->x[1] - p[1]);
    fx[0] = 0.2 * (h->x[0] - CS_Y[0]);
    fx[1] = 0.2 * (h->x[1] - CS_Y[1]);
    double gk = (p[0] - h->x[0]) * (p[0] - h->x[0]) + (p[1] - h->x[1]) * (p[1] - h->x[1]);
    double gT = (p[0] - xt[0]) * (p[0] - xt[0]) + (p[1] - xt[1]) * (p[1] - xt[1]);
    h->f = 0.1 * ((h->x[0] - CS_Y[0]) * (h->x[0] - CS_Y[0]) + (h->x[1] - CS_Y[1]) * (h->x[1] - CS_Y[1]));
    h->g = gk;
    h->q = gk - gT;
    double fq = fx[0] * qx[0] + fx[1] * qx[1]; /* grad_w f = 0 */
    double qq = dot(qw, qw, 4) + qx[0] * qx[0] + qx[1] * qx[1];
    double l = (eta * qq - fq) / (qq + LAMBDA_EPS);
    h->lambda = l > 0 ? l : 0;
    for (int i = 0; i < 4; i++)
        h->w[i] -= xi * h->lambda * qw[i];
    h->x[0] -= xi * (fx[0] + h->lambda * qx[0]);
    h->x[1] -= xi * (fx[1] + h->lambda * qx[1]);
}

static bool case_coreset(const options *o)
{
    int reps = o->reps_small ? o->reps_small : 30, steps = o->steps;
    printf("== coreset: the paper's toy, T = 10, alpha = xi = 0.05, eta = 0.5, phi = eta |grad q|^2 ==\n");
    bome_real w[4] = {0}, x[2] = {CS_START[0], CS_START[1]};
    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "w", BOME_VECTOR(4), w);
    bome_problem_add_inner(p, "x", BOME_VECTOR(2), x);
    bome_problem_set_objectives(p, cs_f, cs_g, NULL);
    bome_options opt;
    bome_options_default(&opt); /* T = 10, alpha = xi = 0.05, eta = 0.5 */
    bome_solver *s = bome_solver_new(p, &opt);
    if (!s || bome_solver_status(s)) {
        fprintf(stderr, "bench_bome: coreset solver: %s\n", s ? bome_solver_errmsg(s) : "out of memory");
        bome_solver_free(s);
        bome_problem_free(p);
        return false;
    }
    cs_hand h = {{0}, {CS_START[0], CS_START[1]}, 0, 0, 0, 0};
    bome_step_stats st = {0};

    /* Agreement first: the same steps from the same start. */
    double worst = 0;
    for (int k = 0; k < steps; k++) {
        if (bome_solver_step(s, &st)) {
            fprintf(stderr, "bench_bome: coreset step: %s\n", bome_solver_errmsg(s));
            return false;
        }
        cs_hand_step(&h);
        if (k < 3 || k == steps - 1) {
            double d = fmax(rel_diff(w, h.w, 4), rel_diff(x, h.x, 2));
            worst = fmax(worst, d);
        }
    }
    double dl = fabs(st.lambda - h.lambda) / fmax(fabs(h.lambda), 1e-300);
    printf("  check: after %d steps from (w, x) = (0, (0, 3)): rel. diff w, x %.1e (steps 1-3 and last), "
           "lambda %.1e; x = (%.6f, %.6f): %s\n",
           steps, worst, dl, x[0], x[1], worst <= 1e-9 ? "ok" : "DIFFER");

    double *to = xcalloc((size_t)reps, sizeof *to), *th = xcalloc((size_t)reps, sizeof *th);
    double sink = 0;
    for (int r = 0; r < reps; r++) {
        for (int side = 0; side < 2; side++) {
            int which = (side + r) % 2; /* alternate who goes first */
            if (which == 0) {
                memset(w, 0, sizeof w);
                x[0] = CS_START[0], x[1] = CS_START[1];
                double t0 = now();
                for (int k = 0; k < steps; k++)
                    bome_solver_step(s, &st);
                to[r] = (now() - t0) / steps;
                sink += st.lambda;
            } else {
                h = (cs_hand){{0}, {CS_START[0], CS_START[1]}, 0, 0, 0, 0};
                double t0 = now();
                for (int k = 0; k < steps; k++)
                    cs_hand_step(&h);
                th[r] = (now() - t0) / steps;
                sink += h.lambda;
            }
        }
    }
    double mo = median(to, reps) * 1e6, mh = median(th, reps) * 1e6;
    printf("  %d repetitions of %d steps each (from the start), opt and hand-written alternating; opt's graph "
           "holds %zu tape nodes\n",
           reps, steps, bome_graph_size(bome_solver_graph(s)));
    printf("  %-28s %10s %10s\n", "", "median", "min");
    printf("  %-28s %10.3f %10.3f us/step\n", "opt (bome_solver_step)", mo, minimum(to, reps) * 1e6);
    printf("  %-28s %10.3f %10.3f us/step\n", "hand-written C", mh, minimum(th, reps) * 1e6);
    printf("  ratio opt/hand %.1f; target opt < 10 us/step: %s   (checksum %.3g)\n\n", mo / mh,
           mo < 10 ? "met" : "MISSED", sink);
    free(to);
    free(th);
    bome_solver_free(s);
    bome_problem_free(p);
    return worst <= 1e-9;
}

/* ======================================================================== */
/* c. memory bandwidth                                                       */
/* ======================================================================== */

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

/* Median bytes per second of summing n doubles with t threads. */
static double bandwidth(const double *x, size_t n, int threads, int reps, double *sink)
{
    double *ts = xcalloc((size_t)reps, sizeof *ts);
    for (int r = 0; r < reps; r++) {
        bw_job job[MAX_THREADS];
        pthread_t tid[MAX_THREADS];
        double t0 = now();
        for (int k = 0; k < threads; k++) {
            size_t a = n * (size_t)k / (size_t)threads, b = n * (size_t)(k + 1) / (size_t)threads;
            job[k] = (bw_job){x + a, b - a, 0};
            if (k)
                pthread_create(&tid[k], NULL, bw_sum, &job[k]);
        }
        bw_sum(&job[0]);
        for (int k = 1; k < threads; k++)
            pthread_join(tid[k], NULL);
        ts[r] = now() - t0;
        for (int k = 0; k < threads; k++)
            *sink += job[k].sum;
    }
    double bps = (double)n * sizeof(double) / median(ts, reps);
    free(ts);
    return bps;
}

typedef struct bw_result {
    bool done;
    double bps[3];   /* streaming read bytes/s by thread count 1, 2 */
    double flops[3]; /* dgemm 2048^3 flop/s by BLAS thread count 1, 2 */
} bw_result;

/* Median flop/s of a square dgemm: the compute ceiling of the machine. */
static double dgemm_peak(int threads, int reps)
{
    const int n = 2048;
    double *a = xcalloc((size_t)n * n, sizeof(double)), *b = xcalloc((size_t)n * n, sizeof(double)),
           *c = xcalloc((size_t)n * n, sizeof(double));
    uint64_t s = 3;
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = lcg_uniform(&s) - 0.5;
        b[i] = lcg_uniform(&s) - 0.5;
    }
    int before = blas_threads();
    set_blas_threads(threads);
    double *ts = xcalloc((size_t)reps, sizeof *ts);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, a, n, b, n, 0.0, c, n); /* warm-up */
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, a, n, b, n, 0.0, c, n);
        ts[r] = now() - t0;
    }
    set_blas_threads(before);
    double f = 2.0 * n * n * (double)n / median(ts, reps);
    free(ts);
    free(a);
    free(b);
    free(c);
    return f;
}

static void case_bandwidth(const options *o, bw_result *res)
{
    size_t n = (size_t)o->bw_mib * 1024 * 1024 / sizeof(double);
    int reps = 10;
    printf("== memory bandwidth: streaming read, sum of %d MiB of doubles (pthreads), median of %d ==\n", o->bw_mib, reps);
    double *x = xcalloc(n, sizeof *x);
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

/* ======================================================================== */
/* b. hyper-cleaning                                                        */
/* ======================================================================== */

typedef struct hc_data {
    int n, nv, d, k;
    double *x, *xv;       /* n x d, nv x d, row-major, standardized */
    int32_t *y, *yv;
    bome_hc_data loaded;  /* when --data fmnist */
    const char *what;
    double *W0, *b0;      /* the start of every side */
} hc_data;

/* Deterministic synthetic data with class structure: pixel = uniform noise
 * plus 0.5 times a per-class +-1 prototype, then standardized with the
 * train split's scalar mean and standard deviation (the protocol's
 * semantics); half of the train labels then replaced by uniform classes. */
static void synthetic(hc_data *h, int n, int nv)
{
    const int d = D_IN, k = K_OUT;
    h->n = n, h->nv = nv, h->d = d, h->k = k;
    h->x = xcalloc((size_t)n * d, sizeof(double));
    h->xv = xcalloc((size_t)nv * d, sizeof(double));
    h->y = xcalloc((size_t)n, sizeof(int32_t));
    h->yv = xcalloc((size_t)nv, sizeof(int32_t));
    uint64_t s = 20220922;
    double *proto = xcalloc((size_t)k * d, sizeof *proto);
    for (int i = 0; i < k * d; i++)
        proto[i] = lcg_uniform(&s) < 0.5 ? -0.5 : 0.5;
    for (int set = 0; set < 2; set++) {
        int rows = set ? nv : n;
        double *x = set ? h->xv : h->x;
        int32_t *y = set ? h->yv : h->y;
        for (int i = 0; i < rows; i++) {
            y[i] = (int32_t)((lcg_next(&s) >> 33) % (uint64_t)k);
            for (int j = 0; j < d; j++)
                x[(size_t)i * d + j] = lcg_uniform(&s) + proto[(size_t)y[i] * d + j];
        }
    }
    double mean = 0, var = 0;
    size_t nn = (size_t)n * d;
    for (size_t i = 0; i < nn; i++)
        mean += h->x[i];
    mean /= (double)nn;
    for (size_t i = 0; i < nn; i++)
        var += (h->x[i] - mean) * (h->x[i] - mean);
    double sd = sqrt(var / (double)nn);
    for (size_t i = 0; i < nn; i++)
        h->x[i] = (h->x[i] - mean) / sd;
    for (size_t i = 0; i < (size_t)nv * d; i++)
        h->xv[i] = (h->xv[i] - mean) / sd;
    for (int i = 0; i < n; i++)
        if (lcg_uniform(&s) < 0.5)
            h->y[i] = (int32_t)((lcg_next(&s) >> 33) % (uint64_t)k);
    free(proto);
    h->what = "synthetic";
}

static bool load_fmnist(hc_data *h, const char *dir, int rows)
{
    char err[1024];
    if (bome_hc_data_load(dir, 0, bome_hc_default_sizes(), &h->loaded, err, sizeof err)) {
        fprintf(stderr, "bench_bome: %s\n", err);
        return false;
    }
    bome_hc_data *L = &h->loaded;
    h->d = L->d, h->k = L->n_classes;
    h->n = rows < L->n_train ? rows : L->n_train;
    h->nv = L->n_val;
    if (h->n < L->n_train) /* shrunk: validation shrinks in proportion, as synthetic */
        h->nv = h->n / 10 > 0 ? h->n / 10 : 1;
    h->x = L->x_train, h->y = L->y_train, h->xv = L->x_val, h->yv = L->y_val;
    h->what = "Fashion-MNIST";
    if (h->d != D_IN || h->k != K_OUT) { /* the blocked scratch is sized for 784 x 10 */
        fprintf(stderr, "bench_bome: %s: %d features and %d classes; this bench expects %d and %d\n", dir, h->d,
                h->k, D_IN, K_OUT);
        bome_hc_data_free(L);
        return false;
    }
    return true;
}

/* The start: v = 0.5 (the product's) and theta = D->W0, D->b0 (the warm
 * start, computed once by warm_start). */
static void start_point(const hc_data *D, double *v, double *W, double *b)
{
    for (int i = 0; i < D->n; i++)
        v[i] = 0.5;
    memcpy(W, D->W0, (size_t)D->k * D->d * sizeof *W);
    memcpy(b, D->b0, (size_t)D->k * sizeof *b);
}

/* ---- opt: the product's problem (problems/hyperclean.c's builders) ---------- */

static bome_node *hcb_g(bome_graph *g, const bome_vars *x, void *ctx)
{
    hc_model *m = ctx;
    bome_node *ce = bome_cross_entropy_rows(g, hc_logits(g, m, x->theta, x->data[0]), x->data[1]);
    bome_node *weighted = bome_weighted_mean(g, ce, bome_clamp(g, x->v[0], 0.0, 1.0));
    return bome_add(g, weighted, bome_scale(g, hc_l2(g, x->theta, x->n_theta), HC_L2));
}

static bome_node *hcb_f(bome_graph *g, const bome_vars *x, void *ctx)
{
    hc_model *m = ctx;
    return bome_cross_entropy(g, hc_logits(g, m, x->theta, x->data[2]), x->data[3]);
}

typedef struct opt_side {
    hc_model model;
    double *v;
    bome_problem *p;
    bome_solver *s;
    bome_step_stats st;
} opt_side;

static bool opt_side_new(opt_side *o, const hc_data *D)
{
    memset(o, 0, sizeof *o);
    if (hc_model_init(&o->model, false, D->d, 0, D->k, 0))
        return false;
    o->v = xcalloc((size_t)D->n, sizeof *o->v);
    start_point(D, o->v, o->model.theta[0], o->model.theta[1]);
    bome_problem *p = o->p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_VECTOR(D->n), o->v);
    bome_problem_set_bounds(p, BOME_OUTER, 0, 0.0, 1.0);
    bome_problem_add_inner(p, "W", o->model.shape[0], o->model.theta[0]);
    bome_problem_add_inner(p, "b", o->model.shape[1], o->model.theta[1]);
    bome_problem_add_input(p, "x_train", BOME_MATRIX(D->n, D->d), D->x);
    bome_problem_add_labels(p, "y_train", D->n, D->y);
    bome_problem_add_input(p, "x_val", BOME_MATRIX(D->nv, D->d), D->xv);
    bome_problem_add_labels(p, "y_val", D->nv, D->yv);
    bome_problem_set_objectives(p, hcb_f, hcb_g, &o->model);
    bome_options opt;
    bome_options_default(&opt);
    opt.T = HC_T;
    opt.alpha = HC_ALPHA;
    opt.lr_inner = HC_LR_THETA;
    opt.lr_outer = HC_LR_V;
    opt.update = BOME_UPDATE_MOMENTUM;
    opt.momentum = HC_MOMENTUM;
    opt.phi = BOME_PHI_VALUE;
    opt.eta = HC_ETA;
    o->s = bome_solver_new(p, &opt);
    if (!o->s || bome_solver_status(o->s)) {
        fprintf(stderr, "bench_bome: hyperclean solver: %s\n",
                o->s ? bome_solver_errmsg(o->s) : "out of memory");
        return false;
    }
    return true;
}

static bool opt_side_step(opt_side *o)
{
    int rc = bome_solver_step(o->s, &o->st);
    if (rc)
        fprintf(stderr, "bench_bome: opt step: %s\n", bome_solver_errmsg(o->s));
    return rc == 0;
}

static void opt_side_free(opt_side *o)
{
    bome_solver_free(o->s);
    bome_problem_free(o->p);
    hc_model_free(&o->model);
    free(o->v);
}

/* ---- hand-written ------------------------------------------------------------- */

/* The hand-written variants. WHOLE makes opt's BLAS calls; PANELS keeps
 * that structure (all logits, the row pass, then dW) but splits every dgemm
 * into 64-row panels; BLOCKED fuses logits, softmax and dW per 64-row block. */
enum hand_mode { HAND_WHOLE, HAND_PANELS, HAND_BLOCKED };

typedef struct hand {
    const hc_data *D;
    int mode;
    int threads;                  /* PANELS, BLOCKED: row ranges run on this many pthreads */
    double *v, *W, *b;            /* the variables */
    double *Wt, *bt;              /* the inner iterate */
    double *gW, *gb;              /* an inner gradient */
    double *fW, *fb, *qW, *qb, *qv; /* grad f, grad q (grad_v f = 0) */
    double *mv, *mW, *mb;         /* momentum buffers */
    double *Z, *Zv;               /* whole-matrix logits: n x k, nv x k */
    double *ce_k, *ce_T;          /* per-row CE at theta_k and theta_T */
    double *W2;                   /* blocked: [W; W_T] stacked, 2k x d */
    double f, g, q, lambda;
    long steps;
} hand;

static void hand_new(hand *h, const hc_data *D, int mode, int threads)
{
    memset(h, 0, sizeof *h);
    h->D = D;
    h->mode = mode;
    h->threads = threads < 1 ? 1 : (threads > MAX_THREADS ? MAX_THREADS : threads);
    size_t n = (size_t)D->n, kd = (size_t)D->k * D->d, k = (size_t)D->k;
    h->v = xcalloc(n, sizeof(double));
    h->qv = xcalloc(n, sizeof(double));
    h->mv = xcalloc(n, sizeof(double));
    h->ce_k = xcalloc(n, sizeof(double));
    h->ce_T = xcalloc(n, sizeof(double));
    double **kds[] = {&h->W, &h->Wt, &h->gW, &h->fW, &h->qW, &h->mW};
    for (size_t i = 0; i < sizeof kds / sizeof kds[0]; i++)
        *kds[i] = xcalloc(kd, sizeof(double));
    double **ks[] = {&h->b, &h->bt, &h->gb, &h->fb, &h->qb, &h->mb};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++)
        *ks[i] = xcalloc(k, sizeof(double));
    if (mode != HAND_BLOCKED) {
        h->Z = xcalloc(n * k, sizeof(double));
        h->Zv = xcalloc((size_t)D->nv * k, sizeof(double));
    } else {
        h->W2 = xcalloc(2 * kd, sizeof(double));
    }
    start_point(D, h->v, h->W, h->b);
}

static void hand_free(hand *h)
{
    double *all[] = {h->v, h->qv, h->mv, h->ce_k, h->ce_T, h->W, h->Wt, h->gW, h->fW, h->qW, h->mW,
                     h->b, h->bt, h->gb, h->fb, h->qb, h->mb, h->Z, h->Zv, h->W2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

static double clip01(double v) { return v < 0 ? 0 : (v > 1 ? 1 : v); }

/*
 * The fused pass over rows [r0, r1) of logits z (row stride ld, the first k
 * columns; bias b added in place): per row the max, the exponentials, and
 *   ce[i]  = lse - z_label (when ce is not NULL; sum_ce gets sum_i w_i ce_i)
 *   dz     = (softmax - onehot) w_i written over z (when grad), db += dz,
 * with w_i = clip(v_i, 0, 1) / n (v NULL: 1 / n).
 */
static void rows_pass(double *z, int ld, int k, const double *b, const int32_t *y, const double *v, double inv_n,
                      int r0, int r1, double *ce, double *sum_ce, bool grad, double *db)
{
    double acc = 0;
    for (int i = r0; i < r1; i++) {
        double *zi = z + (size_t)(i - r0) * ld;
        double m = -INFINITY;
        for (int j = 0; j < k; j++) {
            zi[j] += b[j];
            m = zi[j] > m ? zi[j] : m;
        }
        double w = (v ? clip01(v[i]) : 1.0) * inv_n;
        int lab = y[i];
        if (!grad) {
            double s = 0;
            for (int j = 0; j < k; j++)
                s += exp(zi[j] - m);
            double c = m + log(s) - zi[lab];
            if (ce)
                ce[i] = c;
            acc += w * c;
            continue;
        }
        double zl = zi[lab], s = 0;
        for (int j = 0; j < k; j++) {
            zi[j] = exp(zi[j] - m);
            s += zi[j];
        }
        double c = m + log(s) - zl;
        if (ce)
            ce[i] = c;
        acc += w * c;
        double scale = w / s;
        for (int j = 0; j < k; j++)
            zi[j] *= scale;
        zi[lab] -= w;
        for (int j = 0; j < k; j++)
            db[j] += zi[j];
    }
    *sum_ce += acc;
}

/* Whole matrix, opt's BLAS calls: Z = X W^T (one dgemm), the fused row pass,
 * dW = dZ^T X (one dgemm) + 2 l2 W. Returns sum_i w_i ce_i. */
static double whole_pass(const double *x, const int32_t *y, int n, int d, int k, const double *v, double *Z,
                         const double *W, const double *b, double *ce, double *gW, double *gb, double l2)
{
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, k, d, 1.0, x, d, W, d, 0.0, Z, k);
    double sum = 0;
    if (gb)
        memset(gb, 0, (size_t)k * sizeof *gb);
    rows_pass(Z, k, k, b, y, v, 1.0 / n, 0, n, ce, &sum, gW != NULL, gb);
    if (gW) {
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, d, n, 1.0, Z, k, x, d, 0.0, gW, d);
        for (int i = 0; i < k * d; i++)
            gW[i] += 2 * l2 * W[i];
        for (int j = 0; j < k; j++)
            gb[j] += 2 * l2 * b[j];
    }
    return sum;
}

/* ---- blocked: rows in blocks of 64, each block's logits, softmax and dW
 * contribution while it is in cache; row ranges split over pthreads. ------- */

typedef struct blk_job {
    const double *x;
    const int32_t *y;
    int n, d, k, r0, r1;
    const double *v;
    const double *W; /* k x d, or 2k x d stacked with the second model */
    const double *b, *b2;
    bool two;        /* outer pass: logits of [W; W_T], gradient of the first */
    bool grad;
    double *Z;       /* PANELS: the n x k logits of the whole matrix */
    double *ce, *ce2;
    double sum, sum2;
    double *gW, gb[2 * K_OUT]; /* private accumulators */
} blk_job;

static void *blk_run(void *arg)
{
    blk_job *j = arg;
    int d = j->d, k = j->k, kk = j->two ? 2 * k : k;
    double zb[MAX_BLOCK * 2 * K_OUT], zb2[MAX_BLOCK * K_OUT];
    j->sum = j->sum2 = 0;
    memset(j->gb, 0, sizeof j->gb);
    bool first = true;
    if (j->Z) { /* PANELS: the whole-matrix structure over this row range */
        for (int r0 = j->r0; r0 < j->r1; r0 += BLOCK) {
            int nb = j->r1 - r0 < BLOCK ? j->r1 - r0 : BLOCK;
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, k, d, 1.0, j->x + (size_t)r0 * d, d, j->W, d,
                        0.0, j->Z + (size_t)r0 * k, k);
        }
        rows_pass(j->Z + (size_t)j->r0 * k, k, k, j->b, j->y, j->v, 1.0 / j->n, j->r0, j->r1, j->ce, &j->sum, j->grad,
                  j->gb);
        for (int r0 = j->r0; j->grad && r0 < j->r1; r0 += BLOCK) {
            int nb = j->r1 - r0 < BLOCK ? j->r1 - r0 : BLOCK;
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, d, nb, 1.0, j->Z + (size_t)r0 * k, k,
                        j->x + (size_t)r0 * d, d, first ? 0.0 : 1.0, j->gW, d);
            first = false;
        }
        if (j->grad && first)
            memset(j->gW, 0, (size_t)k * d * sizeof(double));
        return NULL;
    }
    for (int r0 = j->r0; r0 < j->r1; r0 += BLOCK) {
        int nb = j->r1 - r0 < BLOCK ? j->r1 - r0 : BLOCK;
        const double *xb = j->x + (size_t)r0 * d;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, kk, d, 1.0, xb, d, j->W, d, 0.0, zb, kk);
        if (j->two) { /* the second model's logits: forward only */
            for (int i = 0; i < nb; i++)
                memcpy(zb2 + (size_t)i * k, zb + (size_t)i * kk + k, (size_t)k * sizeof(double));
            rows_pass(zb2, k, k, j->b2, j->y, j->v, 1.0 / j->n, r0, r0 + nb, j->ce2, &j->sum2, false, NULL);
        }
        rows_pass(zb, kk, k, j->b, j->y, j->v, 1.0 / j->n, r0, r0 + nb, j->ce, &j->sum, j->grad, j->gb);
        if (j->grad) {
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, d, nb, 1.0, zb, kk, xb, d, first ? 0.0 : 1.0,
                        j->gW, d);
            first = false;
        }
    }
    if (j->grad && first) /* no rows */
        memset(j->gW, 0, (size_t)k * d * sizeof(double));
    return NULL;
}

/* One pass over X in blocks; with W2 (2k x d) and b2 it also gives the
 * second model's per-row CE. Returns sum_i w_i ce_i of the first model. */
static double blocked_pass(hand *h, const double *x, const int32_t *y, int n, const double *v, const double *W,
                           const double *b, double *ce, double *gW, double *gb, double l2, const double *b2,
                           double *ce2, double *sum2, double *Z)
{
    const hc_data *D = h->D;
    int d = D->d, k = D->k, T = h->threads;
    if (T > 1)
        set_blas_threads(1); /* each pthread runs single-threaded BLAS on its rows */
    static double scratch[MAX_THREADS][K_OUT * D_IN];
    blk_job job[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    for (int t = 0; t < T; t++) {
        job[t] = (blk_job){x, y, n, d, k, (int)((long)n * t / T), (int)((long)n * (t + 1) / T), v, W, b, b2,
                           b2 != NULL, gW != NULL, Z, ce, ce2, 0, 0, t ? scratch[t] : gW, {0}};
        if (t)
            pthread_create(&tid[t], NULL, blk_run, &job[t]);
    }
    blk_run(&job[0]);
    for (int t = 1; t < T; t++)
        pthread_join(tid[t], NULL);
    if (T > 1)
        set_blas_threads(T);
    double sum = 0, s2 = 0;
    for (int t = 0; t < T; t++) {
        sum += job[t].sum;
        s2 += job[t].sum2;
    }
    if (sum2)
        *sum2 = s2;
    if (gW) {
        for (int t = 1; t < T; t++)
            for (int i = 0; i < k * d; i++)
                gW[i] += job[t].gW[i];
        for (int j = 0; j < k; j++) {
            gb[j] = 0;
            for (int t = 0; t < T; t++)
                gb[j] += job[t].gb[j];
        }
        for (int i = 0; i < k * d; i++)
            gW[i] += 2 * l2 * W[i];
        for (int j = 0; j < k; j++)
            gb[j] += 2 * l2 * b[j];
    }
    return sum;
}

/* One BOME outer step, by hand: exactly the reference's step. */
static void hand_step(hand *h)
{
    const hc_data *D = h->D;
    int n = D->n, d = D->d, k = D->k;
    size_t kd = (size_t)k * d;
    /* 1. inner loop from a fresh copy of theta_k */
    memcpy(h->Wt, h->W, kd * sizeof(double));
    memcpy(h->bt, h->b, (size_t)k * sizeof(double));
    for (int t = 0; t < HC_T; t++) {
        if (h->mode != HAND_WHOLE)
            blocked_pass(h, D->x, D->y, n, h->v, h->Wt, h->bt, NULL, h->gW, h->gb, HC_L2, NULL, NULL, NULL, h->Z);
        else
            whole_pass(D->x, D->y, n, d, k, h->v, h->Z, h->Wt, h->bt, NULL, h->gW, h->gb, HC_L2);
        for (size_t i = 0; i < kd; i++)
            h->Wt[i] -= HC_ALPHA * h->gW[i];
        for (int j = 0; j < k; j++)
            h->bt[j] -= HC_ALPHA * h->gb[j];
    }
    /* 2. f and its gradient on validation; g at theta_k with its theta
     * gradient (= grad_theta q); g at theta_T, forward only. */
    double sk, sT;
    if (h->mode == HAND_BLOCKED) {
        h->f = blocked_pass(h, D->xv, D->yv, D->nv, NULL, h->W, h->b, NULL, h->fW, h->fb, 0.0, NULL, NULL, NULL, NULL);
        memcpy(h->W2, h->W, kd * sizeof(double));
        memcpy(h->W2 + kd, h->Wt, kd * sizeof(double));
        sk = blocked_pass(h, D->x, D->y, n, h->v, h->W2, h->b, h->ce_k, h->qW, h->qb, HC_L2, h->bt, h->ce_T, &sT,
                          NULL);
        /* the stacked pass used W2 for the L2 term's W: the first k x d rows, = W */
    } else if (h->mode == HAND_PANELS) {
        h->f = blocked_pass(h, D->xv, D->yv, D->nv, NULL, h->W, h->b, NULL, h->fW, h->fb, 0.0, NULL, NULL, NULL, h->Zv);
        sk = blocked_pass(h, D->x, D->y, n, h->v, h->W, h->b, h->ce_k, h->qW, h->qb, HC_L2, NULL, NULL, NULL, h->Z);
        sT = blocked_pass(h, D->x, D->y, n, h->v, h->Wt, h->bt, h->ce_T, NULL, NULL, HC_L2, NULL, NULL, NULL, h->Z);
    } else {
        h->f = whole_pass(D->xv, D->yv, D->nv, d, k, NULL, h->Zv, h->W, h->b, NULL, h->fW, h->fb, 0.0);
        sk = whole_pass(D->x, D->y, n, d, k, h->v, h->Z, h->W, h->b, h->ce_k, h->qW, h->qb, HC_L2);
        sT = whole_pass(D->x, D->y, n, d, k, h->v, h->Z, h->Wt, h->bt, h->ce_T, NULL, NULL, HC_L2);
    }
    double l2k = HC_L2 * (dot(h->W, h->W, kd) + dot(h->b, h->b, (size_t)k));
    double l2T = HC_L2 * (dot(h->Wt, h->Wt, kd) + dot(h->bt, h->bt, (size_t)k));
    h->g = sk + l2k;
    h->q = h->g - (sT + l2T);
    /* grad_v q = (ce_k - ce_T) / n where the clamp passes gradient (0 <= v <= 1) */
    for (int i = 0; i < n; i++)
        h->qv[i] = h->v[i] >= 0 && h->v[i] <= 1 ? (h->ce_k[i] - h->ce_T[i]) / n : 0.0;
    /* 3. lambda over the whole (v, theta) vector; grad_v f = 0 */
    double fq = dot(h->fW, h->qW, kd) + dot(h->fb, h->qb, (size_t)k);
    double qq = dot(h->qv, h->qv, (size_t)n) + dot(h->qW, h->qW, kd) + dot(h->qb, h->qb, (size_t)k);
    double l = (HC_ETA * h->q - fq) / (qq + LAMBDA_EPS);
    h->lambda = l > 0 ? l : 0;
    /* 4. PyTorch SGD with momentum (buf = d at first), then the box on v */
    double mu = h->steps ? HC_MOMENTUM : 0.0, lam = h->lambda;
    for (int i = 0; i < n; i++) {
        h->mv[i] = mu * h->mv[i] + lam * h->qv[i];
        double x = h->v[i] - HC_LR_V * h->mv[i];
        h->v[i] = x < 0 ? 0 : (x > 1 ? 1 : x);
    }
    for (size_t i = 0; i < kd; i++) {
        h->mW[i] = mu * h->mW[i] + (h->fW[i] + lam * h->qW[i]);
        h->W[i] -= HC_LR_THETA * h->mW[i];
    }
    for (int j = 0; j < k; j++) {
        h->mb[j] = mu * h->mb[j] + (h->fb[j] + lam * h->qb[j]);
        h->b[j] -= HC_LR_THETA * h->mb[j];
    }
    h->steps++;
}

/*
 * The warm start, as the product's (a model trained on the noisy train set
 * plus validation), shortened: W small and deterministic, b = 0, then steps
 * of full-batch SGD with momentum 0.9 (PyTorch semantics) on the union's mean
 * CE + l2 ||theta||^2. From there lambda > 0 (f's and g's theta-gradients
 * disagree), so the agreement check exercises every term of the step.
 */
static void warm_start(hc_data *D, int steps, double lr)
{
    int n = D->n, nv = D->nv, d = D->d, k = D->k;
    size_t kd = (size_t)k * d;
    D->W0 = xcalloc(kd, sizeof(double));
    D->b0 = xcalloc((size_t)k, sizeof(double));
    double *Z = xcalloc((size_t)n * k, sizeof(double)), *Zv = xcalloc((size_t)nv * k, sizeof(double));
    double *gW = xcalloc(kd, sizeof(double)), *gWv = xcalloc(kd, sizeof(double)), *mW = xcalloc(kd, sizeof(double));
    double gb[K_OUT], gbv[K_OUT], mb[K_OUT] = {0};
    uint64_t s = 7;
    for (size_t i = 0; i < kd; i++)
        D->W0[i] = 0.01 * (2 * lcg_uniform(&s) - 1);
    double a = (double)n / (n + nv), c = (double)nv / (n + nv);
    for (int t = 0; t < steps; t++) {
        whole_pass(D->x, D->y, n, d, k, NULL, Z, D->W0, D->b0, NULL, gW, gb, HC_L2);
        whole_pass(D->xv, D->yv, nv, d, k, NULL, Zv, D->W0, D->b0, NULL, gWv, gbv, HC_L2);
        double mu = t ? 0.9 : 0.0;
        for (size_t i = 0; i < kd; i++) { /* both parts carry the L2 term: a + c = 1 */
            mW[i] = mu * mW[i] + a * gW[i] + c * gWv[i];
            D->W0[i] -= lr * mW[i];
        }
        for (int j = 0; j < k; j++) {
            mb[j] = mu * mb[j] + a * gb[j] + c * gbv[j];
            D->b0[j] -= lr * mb[j];
        }
    }
    free(Z);
    free(Zv);
    free(gW);
    free(gWv);
    free(mW);
}

static bool hc_load(const options *o, hc_data *D)
{
    memset(D, 0, sizeof *D);
    if (!strcmp(o->data, "fmnist")) {
        if (!load_fmnist(D, o->data_dir, o->rows))
            return false;
    } else {
        synthetic(D, o->rows, o->rows / 10 > 0 ? o->rows / 10 : 1);
    }
    warm_start(D, o->warm, 0.05);
    return true;
}

static void hc_unload(hc_data *D)
{
    if (D->loaded.x_train)
        bome_hc_data_free(&D->loaded);
    else {
        free(D->x);
        free(D->xv);
        free(D->y);
        free(D->yv);
    }
    free(D->W0);
    free(D->b0);
}

static double max3(double a, double b, double c) { return fmax(a, fmax(b, c)); }

/* ---- opt's two plans rebuilt as opt/bome.c builds them (the solver keeps its
 * plans private): to ask whether they run row-tiled, and for --nodes ------- */

typedef struct mirror {
    bome_graph *g;
    hc_model m;
    double *v;
    bome_plan *inner, *outer;
} mirror;

static bool mirror_new(mirror *r, const hc_data *D)
{
    memset(r, 0, sizeof *r);
    bome_graph *g = r->g = bome_graph_new();
    if (!g || hc_model_init(&r->m, false, D->d, 0, D->k, 0))
        return false;
    r->v = xcalloc((size_t)D->n, sizeof *r->v);
    start_point(D, r->v, r->m.theta[0], r->m.theta[1]);
    bome_node *x[3], *inner[2], *frozen[2], *data[4], *ig[2], *gf[3], *gq[3];
    x[0] = bome_param(g, "v", BOME_VECTOR(D->n));
    bome_bind(g, x[0], r->v);
    for (int j = 0; j < 2; j++) {
        x[1 + j] = bome_param(g, j ? "b" : "W", r->m.shape[j]);
        bome_bind(g, x[1 + j], r->m.theta[j]);
    }
    for (int j = 0; j < 2; j++) {
        inner[j] = bome_param(g, j ? "b_T" : "W_T", r->m.shape[j]);
        bome_set(g, inner[j], r->m.theta[j]);
        frozen[j] = bome_stop_gradient(g, inner[j]);
    }
    data[0] = bome_input(g, "x_train", BOME_MATRIX(D->n, D->d));
    bome_bind(g, data[0], D->x);
    data[1] = bome_labels(g, "y_train", D->n);
    bome_bind_labels(g, data[1], D->y);
    data[2] = bome_input(g, "x_val", BOME_MATRIX(D->nv, D->d));
    bome_bind(g, data[2], D->xv);
    data[3] = bome_labels(g, "y_val", D->nv);
    bome_bind_labels(g, data[3], D->yv);
    bome_vars at_k = {x, x + 1, data, 1, 2, 4}, at_T = {x, frozen, data, 1, 2, 4}, at_t = {x, inner, data, 1, 2, 4};
    bome_node *f = hcb_f(g, &at_k, &r->m), *gk = hcb_g(g, &at_k, &r->m), *gT = hcb_g(g, &at_T, &r->m);
    bome_node *gt = hcb_g(g, &at_t, &r->m), *q = bome_sub(g, gk, gT);
    bome_grad(g, gt, 2, inner, ig);
    bome_grad(g, f, 3, x, gf);
    bome_grad(g, q, 3, x, gq);
    bome_node *outs[9] = {f, gk, q, gf[0], gf[1], gf[2], gq[0], gq[1], gq[2]};
    r->inner = bome_plan_new(g, 2, ig);
    r->outer = bome_plan_new(g, 9, outs);
    if (!r->inner || !r->outer) {
        fprintf(stderr, "bench_bome: rebuilding opt's plans: %s\n", bome_graph_errmsg(g));
        return false;
    }
    return true;
}

static void mirror_free(mirror *r)
{
    bome_graph_free(r->g);
    hc_model_free(&r->m);
    free(r->v);
}

static void print_nodes(const char *what, bome_plan *p, const double *t, int runs, double total_all)
{
    printf("  %s: %zu nodes, mean ms per run, %% of the sum over the step\n", what, p->n_run);
    printf("    %4s  %-18s %-16s %-40s %9s %6s\n", "id", "op", "shape", "sources", "ms", "%");
    double small = 0;
    int ns = 0;
    for (size_t i = 0; i < p->n_run; i++) {
        const bome_node *v = p->run[i];
        if (1e3 * t[i] / runs < 0.05) { /* the scalar bookkeeping: summed below */
            small += t[i];
            ns++;
            continue;
        }
        char shape[40], srcs[128] = "", one[48];
        ad_shape_str(v->shape, shape);
        for (int k = 0; k < v->nsrc; k++) {
            snprintf(one, sizeof one, "%s%s#%d", k ? " " : "", v->src[k]->op->name, v->src[k]->id);
            strncat(srcs, one, sizeof srcs - strlen(srcs) - 1);
        }
        printf("    %4d  %-18s %-16s %-40s %9.3f %6.1f\n", v->id, v->op->name, shape, srcs, 1e3 * t[i] / runs,
               100.0 * t[i] / total_all);
    }
    printf("    (%d nodes under 0.05 ms each: %.3f ms together)\n", ns, 1e3 * small / runs);
}

/* Times the plans as they run (bome_plan_run, tiled or not), then each node's
 * whole-matrix forward one by one: where the work is, untiled. */
static void profile_opt(const hc_data *D, int reps)
{
    mirror r;
    if (!mirror_new(&r, D)) {
        mirror_free(&r);
        return;
    }
    bome_plan *pi = r.inner, *po = r.outer;
    double run_i = 0, run_o = 0;
    for (int k = 0; k < reps; k++) {
        double t0 = now();
        for (int t = 0; t < HC_T; t++)
            bome_plan_run(pi);
        double t1 = now();
        bome_plan_run(po);
        run_i += t1 - t0;
        run_o += now() - t1;
    }
    double *ti = xcalloc(pi->n_run, sizeof *ti), *to = xcalloc(po->n_run, sizeof *to);
    for (int k = 0; k < reps; k++) {
        for (int t = 0; t < HC_T; t++)
            for (size_t i = 0; i < pi->n_run; i++) {
                double t0 = now();
                pi->run[i]->op->forward(r.g, pi->run[i]);
                ti[i] += now() - t0;
            }
        for (size_t i = 0; i < po->n_run; i++) {
            double t0 = now();
            po->run[i]->op->forward(r.g, po->run[i]);
            to[i] += now() - t0;
        }
    }
    double sum_i = 0, sum_o = 0, mm = 0;
    for (size_t i = 0; i < pi->n_run; i++) {
        sum_i += ti[i];
        mm += strcmp(pi->run[i]->op->name, "matmul") ? 0 : ti[i];
    }
    for (size_t i = 0; i < po->n_run; i++) {
        sum_o += to[i];
        mm += strcmp(po->run[i]->op->name, "matmul") ? 0 : to[i];
    }
    printf("== --nodes: opt's plans rebuilt from the same builders, %d x %d rows, BLAS threads %d, %d step(s) ==\n",
           D->n, D->d, blas_threads(), reps);
    printf("  as bome_plan_run runs them: inner plan %.1f ms x %d, outer plan %.1f ms: %.1f ms per step\n",
           1e3 * run_i / reps / HC_T, HC_T, 1e3 * run_o / reps, 1e3 * (run_i + run_o) / reps);
    printf("    row-tiled: inner over %d rows, outer over %d rows (0: whole-matrix ops)\n",
           bome_plan_tiled_rows(pi), bome_plan_tiled_rows(po));
    printf("  node by node, each node's whole-matrix forward: inner %.1f ms x %d, outer %.1f ms: %.1f ms per step\n",
           1e3 * sum_i / reps / HC_T, HC_T, 1e3 * sum_o / reps, 1e3 * (sum_i + sum_o) / reps);
    print_nodes("inner plan (% counts all T runs)", pi, ti, reps * HC_T, sum_i + sum_o);
    print_nodes("outer plan", po, to, reps, sum_i + sum_o);
    printf("  matmul (dgemm) nodes: %.1f ms per step, %.1f%%; everything else %.1f ms\n\n", 1e3 * mm / reps,
           100.0 * mm / (sum_i + sum_o), 1e3 * (sum_i + sum_o - mm) / reps);
    free(ti);
    free(to);
    mirror_free(&r);
}

static bool case_hyperclean(const options *o, const bw_result *bw)
{
    int reps = o->reps_big ? o->reps_big : 10, threads = blas_threads();
    hc_data D;
    double t0 = now();
    if (!hc_load(o, &D))
        return false;
    if (o->nodes) {
        profile_opt(&D, 3);
        hc_unload(&D);
        return true;
    }
    printf("== hyperclean: %s data, %d x %d train, %d validation, linear %d-class model, float64 ==\n", D.what, D.n,
           D.d, D.nv, D.k);
    printf("  T = %d, alpha = %g, step theta %g / v %g, momentum %g, phi = eta q, eta = %g, L2 %g; "
           "BLAS threads %d\n  start: v = 0.5, theta after %d warm-start steps on train + validation "
           "(data and warm start in %.1f s)\n",
           HC_T, HC_ALPHA, HC_LR_THETA, HC_LR_V, HC_MOMENTUM, HC_ETA, HC_L2, threads, o->warm, now() - t0);

    /* Whether opt's plans run row-tiled (ad's tiled executor): then the
     * hand-written side with opt's BLAS calls is the blocked one, on one
     * thread of row ranges; otherwise the whole-matrix one. */
    int tiled_in = 0, tiled_out = 0;
    {
        mirror mr;
        if (mirror_new(&mr, &D)) {
            tiled_in = bome_plan_tiled_rows(mr.inner);
            tiled_out = bome_plan_tiled_rows(mr.outer);
        }
        mirror_free(&mr);
    }
    enum { MAX_SIDES = 5 };
    char names[MAX_SIDES][48] = {"opt (bome_solver_step)", "hand: whole matrix"};
    snprintf(names[2], sizeof names[2], "hand: %d-row panels", BLOCK);
    snprintf(names[3], sizeof names[3], "hand: blocked %d", BLOCK);
    snprintf(names[4], sizeof names[4], "hand: blocked %d, 1 row thread", BLOCK);
    int ns = threads > 1 ? 5 : 4;
    /* the side with opt's BLAS calls (the engine tiles in blocks of 64 rows by default) */
    int same = tiled_in ? (BLOCK == 64 ? (threads > 1 ? 4 : 3) : -1) : 1;
    int reads[MAX_SIDES] = {(tiled_in ? HC_T : 2 * HC_T) + (tiled_out ? 1 : 3), 2 * HC_T + 3, 2 * HC_T + 3,
                            HC_T + 1, HC_T + 1};
    opt_side os;
    hand hs[MAX_SIDES]; /* [0] unused: opt */
    double *t[MAX_SIDES] = {NULL};
    if (!opt_side_new(&os, &D)) {
        opt_side_free(&os);
        hc_unload(&D);
        return false;
    }
    hand_new(&hs[1], &D, HAND_WHOLE, 1);
    hand_new(&hs[2], &D, HAND_PANELS, threads);
    hand_new(&hs[3], &D, HAND_BLOCKED, threads);
    if (ns > 4)
        hand_new(&hs[4], &D, HAND_BLOCKED, 1);
    for (int i = 0; i < ns; i++)
        t[i] = xcalloc((size_t)reps, sizeof(double));
    printf("  opt's plans: inner %s, outer %s\n",
           tiled_in ? "row-tiled (blocks of rows through logits, CE backward and dW)" : "whole-matrix ops",
           tiled_out ? "row-tiled" : "whole-matrix ops");

    /* Agreement: 3 outer steps from the same start. */
    bool ok = true;
    for (int s = 0; s < 3 && ok; s++) {
        ok = opt_side_step(&os);
        for (int i = 1; i < ns; i++)
            hand_step(&hs[i]);
    }
    if (!ok)
        goto out_t;
    const hand *hw = &hs[1];
    size_t kd = (size_t)D.k * D.d;
    double dv = rel_diff(os.v, hw->v, (size_t)D.n), dW = rel_diff(os.model.theta[0], hw->W, kd),
           db = rel_diff(os.model.theta[1], hw->b, (size_t)D.k);
    double dl = fabs(os.st.lambda - hw->lambda) / fmax(fabs(hw->lambda), 1e-300);
    bool agree = max3(dv, dW, db) <= 1e-9;
    printf("  check after 3 outer steps from the same start (rel. diff, max |a - b| / max |b|, need <= 1e-9):\n");
    printf("    %-34s v %.1e  W %.1e  b %.1e  (lambda %.1e; f %.6f, q %.3e, lambda %.4g)  %s\n", "opt vs hand whole",
           dv, dW, db, dl, os.st.f, os.st.q, os.st.lambda, agree ? "ok" : "DIFFER");
    for (int i = 2; i < ns; i++) {
        double bv = rel_diff(hs[i].v, hw->v, (size_t)D.n), bW = rel_diff(hs[i].W, hw->W, kd),
               bb = rel_diff(hs[i].b, hw->b, (size_t)D.k);
        bool ag = max3(bv, bW, bb) <= 1e-9;
        char what[64];
        snprintf(what, sizeof what, "%s vs whole", names[i] + 6);
        printf("    %-34s v %.1e  W %.1e  b %.1e  %s\n", what, bv, bW, bb, ag ? "ok" : "DIFFER");
        agree &= ag;
    }
    ok = agree;

    for (int r = 0; r < reps && ok; r++)
        for (int j = 0; j < ns; j++) {
            int which = (j + r) % ns; /* rotate who goes first */
            double ts = now();
            if (which == 0)
                ok = opt_side_step(&os);
            else
                hand_step(&hs[which]);
            t[which][r] = now() - ts;
        }
    if (!ok)
        goto out_t;
    double med[MAX_SIDES], mn[MAX_SIDES];
    for (int i = 0; i < ns; i++) {
        med[i] = median(t[i], reps);
        mn[i] = minimum(t[i], reps);
    }
    printf("  %d repetitions after 3 warm-up steps, the %d sides rotating; seconds per outer step\n", reps, ns);
    printf("  %-32s %9s %9s %10s %10s\n", "", "median", "min", "opt / this", "reads of X");
    for (int i = 0; i < ns; i++)
        printf("  %-32s %9.4f %9.4f %10.3f %10d%s\n", names[i], med[i], mn[i], med[0] / med[i], reads[i],
               i == same ? "   <- opt's BLAS calls" : "");
    double target = NAN;
    if (same > 0) {
        double *pr = xcalloc((size_t)reps, sizeof *pr);
        for (int r = 0; r < reps; r++)
            pr[r] = t[0][r] / t[same][r];
        target = med[0] / med[same];
        printf("  ratio opt / %s (the same BLAS calls) %.3f (median of per-repetition ratios %.3f): "
               "target <= 1.10 %s\n",
               names[same] + 6, target, median(pr, reps), target <= 1.10 ? "met" : "MISSED");
        free(pr);
    } else {
        printf("  (opt tiles in blocks of 64 rows: run with --block 64 for the same-calls ratio)\n");
    }
    printf("  ratio opt / whole %.3f;  opt / blocked %d (%d row thread%s) %.3f\n", med[0] / med[1], BLOCK,
           hs[3].threads, hs[3].threads > 1 ? "s" : "", med[0] / med[3]);
    printf("  (whole: each dgemm over all rows, BLAS threads %d; panels and blocked: %d pthread%s over row ranges,\n"
           "   single-threaded BLAS on %d-row panels inside each; blocked, 1 row thread: one pthread, BLAS as set)\n",
           threads, hs[3].threads, hs[3].threads > 1 ? "s" : "", BLOCK);

    /* c. the floor: bytes of X that the step must read over the bandwidth */
    double xb = (double)D.n * D.d * sizeof(double), xvb = (double)D.nv * D.d * sizeof(double);
    int rd_min = HC_T + 1, rd_whole = 2 * HC_T + 3;
    printf("  memory floor: X_train is %.1f MB, X_val %.1f MB\n", xb * 1e-6, xvb * 1e-6);
    printf("    reads the step needs: %d of X_train (T = %d inner gradients, each one pass; plus one pass that\n"
           "    gives the outer grad_theta g(v, theta_k) and the forward at theta_T together) + 1 of X_val\n",
           rd_min, HC_T);
    printf("    the whole-matrix structure makes %d (2 per gradient: logits and dW; + the forward at theta_T)\n"
           "    + 2 of X_val\n",
           rd_whole);
    if (bw && bw->done) {
        int ti = threads >= 2 && bw->bps[2] > 0 ? 2 : 1;
        double bps = bw->bps[ti];
        double fl = (rd_min * xb + xvb) / bps, fw = (rd_whole * xb + 2 * xvb) / bps;
        printf("    at %.2f GB/s (%d-thread streaming read): floor %.4f s/step (%d reads), %.4f s/step (%d reads)\n",
               bps * 1e-9, ti, fl, rd_min, fw, rd_whole);
        printf("    measured / floor(%d reads):", rd_min);
        for (int i = 0; i < ns; i++)
            printf(" %s %.2f%s", names[i] + (i ? 6 : 0), med[i] / fl, i + 1 < ns ? ";" : "\n");
        /* every side does the same multiply-adds: per gradient 2 n d k for the
         * logits and 2 n d k for dW; the forward at theta_T 2 n d k; f's 4 nv d k */
        double ndk = (double)D.n * D.d * D.k, flop = (4.0 * HC_T + 6.0) * ndk + 4.0 * D.nv * (double)D.d * D.k;
        if (bw->flops[ti] > 0) {
            double fc = flop / bw->flops[ti];
            printf("  compute floor: %.2f GFlop per step (dgemm work, the same for every side) at %.1f GFlop/s "
                   "(%d-thread dgemm 2048^3) = %.4f s/step\n",
                   flop * 1e-9, bw->flops[ti] * 1e-9, ti, fc);
            printf("    measured / compute floor:");
            for (int i = 0; i < ns; i++)
                printf(" %s %.2f%s", names[i] + (i ? 6 : 0), med[i] / fc, i + 1 < ns ? ";" : "\n");
        }
    }
    printf("  summary: threads %d;", threads);
    for (int i = 0; i < ns; i++)
        printf(" %s %.4f;", names[i] + (i ? 6 : 0), med[i]);
    printf(" s/step; opt / same calls %.3f\n\n", target);
out_t:
    for (int i = 0; i < MAX_SIDES; i++)
        free(t[i]);
    opt_side_free(&os);
    for (int i = 1; i < ns; i++)
        hand_free(&hs[i]);
    hc_unload(&D);
    return ok;
}

/* ---- main ------------------------------------------------------------------------ */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bench_bome [--reps N] [--only coreset|hyperclean|bandwidth] [--rows N]\n"
            "                  [--data synthetic|fmnist] [--data-dir DIR] [--steps N] [--bw-mib N]\n"
            "                  [--warm N] [--block N] [--nodes]\n"
            "\n"
            "One BOME outer step through opt (bome_solver_step) against hand-written C doing the\n"
            "same step, interleaved repetition by repetition in one process; prints medians and\n"
            "ratios. Cases:\n"
            "  coreset     the paper's toy (T = 10): microseconds per outer step, opt vs plain C\n"
            "  hyperclean  data hyper-cleaning, 50000 x 784 float64, T = 10: seconds per step,\n"
            "              opt vs hand-written C: whole-matrix dgemms (opt's calls when its plans\n"
            "              run untiled), the same in 64-row panels, and blocks of 64 rows with\n"
            "              logits, softmax and dW fused (opt's calls when its plans run\n"
            "              row-tiled); checks first that all sides agree after 3 steps\n"
            "  bandwidth   streaming read bandwidth and the floor it puts under a step\n"
            "              (runs with hyperclean too)\n"
            "\n"
            "  --reps N       repetitions (at least %d; default 30 for coreset, 10 for hyperclean)\n"
            "  --only CASE    run one case\n"
            "  --rows N       training rows for hyperclean (default 50000; validation = rows / 10)\n"
            "  --data KIND    synthetic (default: deterministic, standardized, labels 0..9) or\n"
            "                 fmnist (Fashion-MNIST through bome_hc_data_load)\n"
            "  --data-dir DIR for fmnist (default /usr/share/datasets/fashion-mnist)\n"
            "  --steps N      coreset steps per repetition (default 2000)\n"
            "  --bw-mib N     size of the bandwidth array in MiB (default 1024)\n"
            "  --warm N       hyperclean warm-start steps before the sides start (default 20)\n"
            "  --block N      rows per block of the hand-written panels and blocked variants\n"
            "                 (default 64, at most 1024)\n"
            "  --nodes        instead of the hyperclean comparison: opt's plans rebuilt and timed\n"
            "                 node by node (where the step's time goes)\n"
            "  --help         this text\n"
            "\n"
            "Set OPENBLAS_NUM_THREADS explicitly (1 or 2); every side uses that many threads.\n",
            MIN_REPS);
}

static bool parse_int(const char *s, int *out)
{
    char *end;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || *end || v < 1 || v > 100000000)
        return false;
    *out = (int)v;
    return true;
}

int main(int argc, char **argv)
{
    options o = {0, 0, 50000, 2000, 1024, 20, NULL, "synthetic", "/usr/share/datasets/fashion-mnist", false};
    int reps = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--nodes")) {
            o.nodes = true;
            o.only = "hyperclean";
        } else if (!strcmp(a, "--only") && next) {
            o.only = argv[++i];
        } else if (!strcmp(a, "--data") && next) {
            o.data = argv[++i];
        } else if (!strcmp(a, "--data-dir") && next) {
            o.data_dir = argv[++i];
        } else if ((!strcmp(a, "--reps") && parse_int(next, &reps)) || (!strcmp(a, "--rows") && parse_int(next, &o.rows)) ||
                   (!strcmp(a, "--steps") && parse_int(next, &o.steps)) ||
                   (!strcmp(a, "--bw-mib") && parse_int(next, &o.bw_mib)) ||
                   (!strcmp(a, "--warm") && parse_int(next, &o.warm)) ||
                   (!strcmp(a, "--block") && parse_int(next, &BLOCK) && BLOCK <= MAX_BLOCK)) {
            i++;
        } else {
            fprintf(stderr, "bench_bome: bad argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (o.only && strcmp(o.only, "coreset") && strcmp(o.only, "hyperclean") && strcmp(o.only, "bandwidth")) {
        fprintf(stderr, "bench_bome: unknown case '%s' (coreset, hyperclean, bandwidth)\n", o.only);
        return 2;
    }
    if (strcmp(o.data, "synthetic") && strcmp(o.data, "fmnist")) {
        fprintf(stderr, "bench_bome: --data %s: synthetic or fmnist\n", o.data);
        return 2;
    }
    if (reps) {
        if (reps < MIN_REPS) {
            printf("note: --reps %d raised to %d\n", reps, MIN_REPS);
            reps = MIN_REPS;
        }
        o.reps_small = o.reps_big = reps;
    }
    print_machine();
    printf("timer CLOCK_MONOTONIC; the sides alternate who goes first\n\n");

    bool ok = true;
    bw_result bw = {0};
    if (!o.only || !strcmp(o.only, "coreset"))
        ok &= case_coreset(&o);
    if (!o.nodes && (!o.only || !strcmp(o.only, "bandwidth") || !strcmp(o.only, "hyperclean")))
        case_bandwidth(&o, &bw);
    if (!o.only || !strcmp(o.only, "hyperclean"))
        ok &= case_hyperclean(&o, &bw);
    return ok ? 0 : 1;
}
