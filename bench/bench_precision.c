/*
 * bench_precision: one BOME outer step of data hyper-cleaning through opt, in
 * the precision this program was built in (bench_precision: float64,
 * bench_precision_f32: float32), against the memory-bandwidth floor in the
 * run's own bytes. The settings are bench_bome's and peer_torch.py's (T = 10,
 * momentum 0.9, phi = eta q), so that bench/precision.sh can put the two
 * precisions and PyTorch's two dtypes side by side, one process each,
 * interleaved.
 *
 *   bench_precision [--data DIR] [--rows N] [--reps N] [--mlp H]
 *
 * Prints one line: precision, threads, OpenBLAS kernel, median seconds per
 * step, the floor (11 streaming reads of X: the linear step's passes over
 * the training rows) and their ratio. --mlp H: the 784-H-10 network instead
 * (compute-bound: no floor).
 */
#include <bome/opt.h>

#include "bench_util.h"
#include "data.h"
#include "hc_model.h"
#include "internal.h" /* ad_kernel_name/get: which of ad's kernel sets runs */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The settings of the released hyper-cleaning code (bench/bome_bench.h). */
enum { T_INNER = 10, FLOOR_PASSES = 11 };

static bome_node *g_fn(bome_graph *g, const bome_vars *x, void *ctx)
{
    hc_model *m = ctx;
    bome_node *ce = bome_cross_entropy_rows(g, hc_logits(g, m, x->theta, x->data[0]), x->data[1]);
    bome_node *weighted = bome_weighted_mean(g, ce, bome_clamp(g, x->v[0], 0.0, 1.0));
    return bome_add(g, weighted, bome_scale(g, hc_l2(g, x->theta, x->n_theta), 0.001));
}

static bome_node *f_fn(bome_graph *g, const bome_vars *x, void *ctx)
{
    hc_model *m = ctx;
    return bome_cross_entropy(g, hc_logits(g, m, x->theta, x->data[2]), x->data[3]);
}

/* Median seconds of summing n bome_real, one pass: vector accumulators, so
 * that in either precision the loop is bound by memory, not by the latency of
 * a chain of additions (which C's rules keep in order for scalars). */
typedef bome_real vreal __attribute__((vector_size(32), aligned(sizeof(bome_real)), may_alias));
enum { VLEN = 32 / sizeof(bome_real) };

static double stream_seconds(const bome_real *x, size_t n, int reps, double *sink)
{
    double *ts = bench_xcalloc((size_t)reps, sizeof *ts);
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        vreal a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        size_t i = 0;
        for (; i + 4 * VLEN <= n; i += 4 * VLEN) {
            a0 += *(const vreal *)(x + i);
            a1 += *(const vreal *)(x + i + VLEN);
            a2 += *(const vreal *)(x + i + 2 * VLEN);
            a3 += *(const vreal *)(x + i + 3 * VLEN);
        }
        vreal a = a0 + a1 + a2 + a3;
        for (int k = 0; k < VLEN; k++)
            *sink += a[k];
        for (; i < n; i++)
            *sink += x[i];
        ts[r] = bench_now() - t0;
    }
    double m = bench_median(ts, reps);
    free(ts);
    return m;
}

int main(int argc, char **argv)
{
    const char *dir = "/usr/share/datasets/fashion-mnist";
    int rows = 50000, reps = 10, hidden = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            puts("usage: bench_precision [--data DIR] [--rows N] [--reps N] [--mlp H]\n\n"
                 "Median seconds per BOME outer step of hyper-cleaning through opt, in this build's\n"
                 "precision, and the bandwidth floor in its own bytes. OPENBLAS_NUM_THREADS sets\n"
                 "the threads. bench/precision.sh runs both precisions and PyTorch, interleaved.");
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_precision: %s needs a value\n", argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--data"))
            dir = argv[++i];
        else if (!strcmp(argv[i], "--rows"))
            rows = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps"))
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--mlp"))
            hidden = atoi(argv[++i]);
        else {
            fprintf(stderr, "bench_precision: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (rows < 100 || reps < 3 || hidden < 0) {
        fprintf(stderr, "bench_precision: need --rows >= 100, --reps >= 3, --mlp >= 0\n");
        return 2;
    }
    char err[1024];
    data_split d;
    if (data_split_load(dir, 0, data_default_sizes(), &d, err, sizeof err)) {
        fprintf(stderr, "bench_precision: %s\n", err);
        return 1;
    }
    int n = rows < d.n_train ? rows : d.n_train, nv = n < d.n_train ? (n / 10 > 0 ? n / 10 : 1) : d.n_val;
    hc_model m;
    if (hc_model_init(&m, hidden > 0, d.d, hidden, d.n_classes, 1)) {
        fprintf(stderr, "bench_precision: out of memory\n");
        return 1;
    }
    bome_real *v = bench_xcalloc((size_t)n, sizeof *v);
    for (int i = 0; i < n; i++)
        v[i] = 0.5;
    static const char *const names[4] = {"W1", "b1", "W2", "b2"};
    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_VECTOR(n), v);
    bome_problem_set_bounds(p, BOME_OUTER, 0, 0.0, 1.0);
    for (int i = 0; i < m.n_params; i++)
        bome_problem_add_inner(p, names[i], m.shape[i], m.theta[i]);
    bome_problem_add_input(p, "x_train", BOME_MATRIX(n, d.d), d.x_train);
    bome_problem_add_labels(p, "y_train", n, d.y_train);
    bome_problem_add_input(p, "x_val", BOME_MATRIX(nv, d.d), d.x_val);
    bome_problem_add_labels(p, "y_val", nv, d.y_val);
    bome_problem_set_objectives(p, f_fn, g_fn, &m);
    bome_options o;
    bome_options_default(&o);
    o.T = T_INNER;
    o.alpha = 0.01;
    o.lr_inner = 0.01;
    o.lr_outer = 100;
    o.update = BOME_UPDATE_MOMENTUM;
    o.momentum = 0.9;
    bome_options_set(&o, "phi", BOME_PHI_VALUE);
    bome_options_set(&o, "eta", 0.5);
    o.threads = bench_blas_threads();
    bome_solver *s = bome_solver_new(p, &o);
    if (!s || bome_solver_status(s)) {
        fprintf(stderr, "bench_precision: %s\n", s ? bome_solver_errmsg(s) : "out of memory");
        return 1;
    }
    bome_step_stats st;
    double *ts = bench_xcalloc((size_t)reps, sizeof *ts);
    for (int r = -2; r < reps; r++) { /* two untimed steps first */
        double t0 = bench_now();
        if (bome_solver_step(s, &st)) {
            fprintf(stderr, "bench_precision: step: %s\n", bome_solver_errmsg(s));
            return 1;
        }
        if (r >= 0)
            ts[r] = bench_now() - t0;
    }
    double step = bench_median(ts, reps), sink = 0;
    double floor_s = hidden ? NAN : FLOOR_PASSES * stream_seconds(d.x_train, (size_t)n * d.d, reps, &sink);
    const char *core = openblas_get_corename ? openblas_get_corename() : "?";
    printf("precision %s threads %d kernel %s ad-kernels %s model %s rows %d step_s %.4f floor_s %.4f ratio %.2f "
           "f %.6g (sink %g)\n",
           BOME_PRECISION_NAME, bench_blas_threads(), core, ad_kernel_name(ad_kernel_get()),
           hidden ? "mlp" : "linear", n, step, floor_s, step / floor_s, st.f, sink);
    bome_solver_free(s);
    bome_problem_free(p);
    hc_model_free(&m);
    free(v);
    free(ts);
    data_split_free(&d);
    return 0;
}
