/*
 * bench_bome's hyper-cleaning data (synthetic or Fashion-MNIST) and the warm
 * start every side begins from.
 */
#include "bench_util.h"
#include "bome_bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deterministic synthetic data with class structure: pixel = uniform noise
 * plus 0.5 times a per-class +-1 prototype, then standardized with the
 * train split's scalar mean and standard deviation (the protocol's
 * semantics); half of the train labels then replaced by uniform classes. */
static void synthetic(hc_data *h, int n, int nv)
{
    const int d = D_IN, k = K_OUT;
    h->n = n, h->nv = nv, h->d = d, h->k = k;
    h->x = bench_xcalloc((size_t)n * d, sizeof(double));
    h->xv = bench_xcalloc((size_t)nv * d, sizeof(double));
    h->y = bench_xcalloc((size_t)n, sizeof(int32_t));
    h->yv = bench_xcalloc((size_t)nv, sizeof(int32_t));
    uint64_t s = 20220922;
    double *proto = bench_xcalloc((size_t)k * d, sizeof *proto);
    for (int i = 0; i < k * d; i++)
        proto[i] = bench_lcg_uniform(&s) < 0.5 ? -0.5 : 0.5;
    for (int set = 0; set < 2; set++) {
        int rows = set ? nv : n;
        double *x = set ? h->xv : h->x;
        int32_t *y = set ? h->yv : h->y;
        for (int i = 0; i < rows; i++) {
            y[i] = (int32_t)((bench_lcg_next(&s) >> 33) % (uint64_t)k);
            for (int j = 0; j < d; j++)
                x[(size_t)i * d + j] = bench_lcg_uniform(&s) + proto[(size_t)y[i] * d + j];
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
        if (bench_lcg_uniform(&s) < 0.5)
            h->y[i] = (int32_t)((bench_lcg_next(&s) >> 33) % (uint64_t)k);
    free(proto);
    h->what = "synthetic";
}

static bool load_fmnist(hc_data *h, const char *dir, int rows)
{
    char err[1024];
    if (data_split_load(dir, 0, data_default_sizes(), &h->loaded, err, sizeof err)) {
        fprintf(stderr, "bench_bome: %s\n", err);
        return false;
    }
    data_split *L = &h->loaded;
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
        data_split_free(L);
        return false;
    }
    return true;
}

/* The start: v = 0.5 (the product's) and theta = D->W0, D->b0 (the warm
 * start, computed once by warm_start). */
void bench_start_point(const hc_data *D, double *v, double *W, double *b)
{
    for (int i = 0; i < D->n; i++)
        v[i] = 0.5;
    memcpy(W, D->W0, (size_t)D->k * D->d * sizeof *W);
    memcpy(b, D->b0, (size_t)D->k * sizeof *b);
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
    D->W0 = bench_xcalloc(kd, sizeof(double));
    D->b0 = bench_xcalloc((size_t)k, sizeof(double));
    double *Z = bench_xcalloc((size_t)n * k, sizeof(double)), *Zv = bench_xcalloc((size_t)nv * k, sizeof(double));
    double *gW = bench_xcalloc(kd, sizeof(double)), *gWv = bench_xcalloc(kd, sizeof(double)),
           *mW = bench_xcalloc(kd, sizeof(double));
    double gb[K_OUT], gbv[K_OUT], mb[K_OUT] = {0};
    uint64_t s = 7;
    for (size_t i = 0; i < kd; i++)
        D->W0[i] = 0.01 * (2 * bench_lcg_uniform(&s) - 1);
    double a = (double)n / (n + nv), c = (double)nv / (n + nv);
    for (int t = 0; t < steps; t++) {
        bench_whole_pass(D->x, D->y, n, d, k, NULL, Z, D->W0, D->b0, NULL, gW, gb, HC_L2);
        bench_whole_pass(D->xv, D->yv, nv, d, k, NULL, Zv, D->W0, D->b0, NULL, gWv, gbv, HC_L2);
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

bool bench_hc_load(const options *o, hc_data *D)
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

void bench_hc_unload(hc_data *D)
{
    if (D->loaded.x_train)
        data_split_free(&D->loaded);
    else {
        free(D->x);
        free(D->xv);
        free(D->y);
        free(D->yv);
    }
    free(D->W0);
    free(D->b0);
}
