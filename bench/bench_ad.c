/*
 * bench_ad: the ad engine against hand-written C doing the same arithmetic
 * with the same CBLAS calls, measured in one process with the sides taking
 * turns repetition by repetition.
 *
 *   linear  gradient of mean softmax cross-entropy of a linear model
 *           (X n x 784, W 10 x 784, b in R^10) wrt W and b
 *   mlp     the same for 784-300-10 with tanh, wrt W1, b1, W2, b2
 *   scalar  tape overhead: a scalar recurrence of ~10^5 tape nodes,
 *           forward and reverse, in nanoseconds per node
 *
 * For linear and mlp there are four sides: the engine's default plan (which
 * runs row-tiled, 64 rows at a time, over a data matrix of >= 4096 rows), the
 * same graph planned with tiling off, the hand-written C with whole-matrix
 * dgemms (the same calls as the untiled plan) and the hand-written C going
 * through the rows in the same blocks (the same calls as the tiled plan).
 *
 * Run with OPENBLAS_NUM_THREADS set; see --help and bench/RESULTS.md.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <bome/ad.h>

/* Only for --nodes, which times the nodes of a plan one by one. */
#include "internal.h"

#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* OpenBLAS's introspection, when the BLAS is OpenBLAS; NULL otherwise. */
extern char *openblas_get_config(void) __attribute__((weak));
extern char *openblas_get_corename(void) __attribute__((weak));
extern int openblas_get_num_threads(void) __attribute__((weak));

enum { MIN_REPS = 10, D_IN = 784, K_OUT = 10, H_MLP = 300 };

typedef struct options {
    int reps;
    int rows;
    int steps;
    int block; /* 0: the engine's default block of rows */
    const char *only;
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
        fprintf(stderr, "bench_ad: out of memory (%zu x %zu bytes)\n", n, size);
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

static void fill_uniform(uint64_t *s, double *x, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * lcg_uniform(s);
}

static void fill_labels(uint64_t *s, int32_t *y, int n, int k)
{
    for (int i = 0; i < n; i++)
        y[i] = (int32_t)((lcg_next(s) >> 33) % (uint64_t)k);
}

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

static bool check_graph(bome_graph *g, const char *what)
{
    if (bome_graph_status(g) == BOME_OK)
        return true;
    fprintf(stderr, "bench_ad: %s: %s\n", what, bome_graph_errmsg(g));
    return false;
}

/* ---- timing -------------------------------------------------------------------- */

/* One contestant: a name and a function that does the whole computation. */
typedef struct side {
    const char *name;
    int (*run)(void *ctx);
    void *ctx;
} side;

static int run_plan(void *ctx) { return bome_plan_run(ctx); }

/*
 * reps repetitions; in each, every side runs once, in an order that rotates
 * from one repetition to the next so that no side always goes first. t[v][r]
 * is side v's time in repetition r, divided by inner (runs per sample).
 */
static int time_interleaved(int reps, int inner, int nv, const side *sv, double **t)
{
    for (int r = 0; r < reps; r++)
        for (int j = 0; j < nv; j++) {
            int v = (r + j) % nv;
            double t0 = now();
            for (int i = 0; i < inner; i++) {
                int rc = sv[v].run(sv[v].ctx);
                if (rc)
                    return rc;
            }
            t[v][r] = (now() - t0) / inner;
        }
    return 0;
}

/* ---- results ------------------------------------------------------------------ */

enum { MAX_SIDES = 4 };

typedef struct result {
    const char *name;
    const char *unit;   /* "ms" or "ns/node" */
    double scale;       /* seconds to unit */
    int nv;
    const char *side_name[MAX_SIDES];
    double med[MAX_SIDES], min[MAX_SIDES];
    double target;      /* 0: none */
    size_t plan_nodes;
    int tiled_rows;     /* of the default engine plan */
    double check;       /* relative gradient difference, worst over the checks */
    double ratio[MAX_SIDES][MAX_SIDES];     /* med[a] / med[b] */
    double ratio_med[MAX_SIDES][MAX_SIDES]; /* median over repetitions of t[a] / t[b] */
} result;

static void summarize(result *res, double **t, int reps)
{
    double *q = xcalloc((size_t)reps, sizeof *q);
    for (int v = 0; v < res->nv; v++) {
        res->med[v] = median(t[v], reps) * res->scale;
        res->min[v] = minimum(t[v], reps) * res->scale;
    }
    for (int a = 0; a < res->nv; a++)
        for (int b = 0; b < res->nv; b++) {
            for (int i = 0; i < reps; i++)
                q[i] = t[a][i] / t[b][i];
            res->ratio[a][b] = res->med[a] / res->med[b];
            res->ratio_med[a][b] = median(q, reps);
        }
    free(q);
}

static void print_ratio(const result *r, int a, int b, bool judge)
{
    printf("  ratio %-14s / %-14s %.3f   (median of per-rep ratios %.3f)", r->side_name[a], r->side_name[b],
           r->ratio[a][b], r->ratio_med[a][b]);
    if (judge && r->target > 0)
        printf("   target <= %.2f: %s", r->target, r->ratio[a][b] <= r->target ? "met" : "MISSED");
    printf("\n");
}

static void print_sides(const result *r)
{
    for (int v = 0; v < r->nv; v++)
        printf("  %-14s median %10.3f %-7s  min %10.3f\n", r->side_name[v], r->med[v], r->unit, r->min[v]);
}

/* ---- --nodes: where a plan's time goes ---------------------------------------- */

/*
 * Runs the plan node by node as bome_plan_run does (for a tiled plan: the pre
 * nodes, then the stage block by block, then the post nodes) and adds up each
 * node's time; a staged node's time is the sum over the blocks.
 */
static void profile_plan(const char *title, bome_plan *p, int reps)
{
    bome_graph *g = p->g;
    size_t n = p->n_run;
    double *t = xcalloc(n, sizeof *t), whole = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        bome_plan_run(p);
        whole += now() - t0;
    }
    for (int r = 0; r < reps; r++) {
        if (!p->rows) {
            for (size_t i = 0; i < n; i++) {
                double t0 = now();
                p->run[i]->op->forward(g, p->run[i]);
                t[i] += now() - t0;
            }
            continue;
        }
        size_t s0 = p->n_pre, s1 = p->n_pre + p->n_stage;
        for (size_t i = 0; i < n; i++)
            if (i < s0 || i >= s1 || p->run[i]->op->view) {
                if (i >= s0 && i < s1 && r > 0)
                    continue; /* stage views are pointed once */
                double t0 = now();
                p->run[i]->op->forward(g, p->run[i]);
                t[i] += now() - t0;
            }
        /* The stage, block by block, after the pre nodes it reads. */
        for (int r0 = 0; r0 < p->rows; r0 += g->tile_block_rows) {
            int r1 = r0 + g->tile_block_rows < p->rows ? r0 + g->tile_block_rows : p->rows;
            for (size_t i = s0; i < s1; i++) {
                bome_node *v = p->run[i];
                if (v->op->view)
                    continue;
                double t0 = now();
                v->op->rows(g, v, r0, r1, r0 == 0);
                t[i] += now() - t0;
            }
        }
    }
    double total = 0;
    for (size_t i = 0; i < n; i++)
        total += t[i];
    printf("  %s: per-node times (mean of %d runs, node by node", title, reps);
    if (p->rows)
        printf("; tiled over %d rows in blocks of %d: pre %zu, stage %zu, post %zu nodes", p->rows,
               g->tile_block_rows, p->n_pre, p->n_stage, p->n_post);
    printf(")\n");
    printf("    %4s  %-5s %-18s %-17s %-44s %9s %6s\n", "id", "part", "op", "shape", "sources", "ms", "%");
    for (size_t i = 0; i < n; i++) {
        const bome_node *v = p->run[i];
        char shape[40], srcs[128] = "", one[48];
        const char *part = !p->rows ? "" : (i < p->n_pre ? "pre" : (i < p->n_pre + p->n_stage ? "stage" : "post"));
        ad_shape_str(v->shape, shape);
        for (int s = 0; s < v->nsrc; s++) {
            snprintf(one, sizeof one, "%s%s#%d", s ? " " : "", v->src[s]->op->name, v->src[s]->id);
            strncat(srcs, one, sizeof srcs - strlen(srcs) - 1);
        }
        printf("    %4d  %-5s %-18s %-17s %-44s %9.3f %6.1f\n", v->id, part, v->op->name, shape, srcs,
               1e3 * t[i] / reps, 100.0 * t[i] / total);
    }
    printf("    total %.3f ms (whole plan runs just before: mean %.3f ms)\n\n", 1e3 * total / reps,
           1e3 * whole / reps);
    free(t);
}

/* ---- shared hand-written kernels ------------------------------------------------ */

/*
 * The fused softmax-cross-entropy pass over rows of logits L (bias not yet
 * added): adds b, overwrites L with (softmax - onehot) w, adds its column sums
 * into db (the bias gradient) and returns the sum of the rows' losses.
 */
static double hand_softmax_ce(double *L, const double *b, const int32_t *y, int rows, int k, double w, double *db)
{
    double loss = 0;
    for (int i = 0; i < rows; i++) {
        double *li = L + (size_t)i * k;
        double m = -INFINITY;
        for (int j = 0; j < k; j++) {
            li[j] += b[j];
            if (li[j] > m)
                m = li[j];
        }
        double s = 0, zy = li[y[i]];
        for (int j = 0; j < k; j++) {
            li[j] = exp(li[j] - m);
            s += li[j];
        }
        loss += m + log(s) - zy;
        double scale = w / s;
        for (int j = 0; j < k; j++)
            li[j] *= scale;
        li[y[i]] -= w;
        for (int j = 0; j < k; j++)
            db[j] += li[j];
    }
    return loss;
}

/* The engine's two plans: the default (tiled when the data is tall enough)
 * and one made with tiling off (whole-matrix products, as the hand side). */
static bool make_plans(bome_graph *g, const char *what, int block, int n, bome_node *const *outs,
                       bome_plan **tiled, bome_plan **whole)
{
    *tiled = *whole = NULL;
    if (!check_graph(g, what))
        return false;
    if (block > 0)
        bome_graph_set_tiling(g, g->tile_min_rows, block);
    *tiled = bome_plan_new(g, n, outs);
    bome_graph_set_tiling(g, 0, g->tile_block_rows); /* keeps the block for hand-tiled */
    *whole = bome_plan_new(g, n, outs);
    return *tiled && *whole && check_graph(g, what);
}

/* ---- case 1: linear model --------------------------------------------------------- */

typedef struct linear_hand {
    int n, d, k, block;
    const double *X, *W, *b;
    const int32_t *y;
    double *L, *dW, *db, loss;
} linear_hand;

/* As the brief has it: dgemm for the logits, the fused pass, dgemm for dW. */
static int linear_hand_run(void *ctx)
{
    linear_hand *h = ctx;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, h->n, h->k, h->d, 1.0, h->X, h->d, h->W, h->d, 0.0, h->L,
                h->k);
    memset(h->db, 0, (size_t)h->k * sizeof *h->db);
    h->loss = hand_softmax_ce(h->L, h->b, h->y, h->n, h->k, 1.0 / h->n, h->db) / h->n;
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, h->k, h->d, h->n, 1.0, h->L, h->k, h->X, h->d, 0.0, h->dW,
                h->d);
    return 0;
}

/* The same, block rows at a time, so each block of X is in cache for dW. */
static int linear_hand_tiled_run(void *ctx)
{
    linear_hand *h = ctx;
    int n = h->n, d = h->d, k = h->k;
    double loss = 0;
    memset(h->db, 0, (size_t)k * sizeof *h->db);
    for (int r0 = 0; r0 < n; r0 += h->block) {
        int rows = r0 + h->block < n ? h->block : n - r0;
        const double *Xb = h->X + (size_t)r0 * d;
        double *Lb = h->L + (size_t)r0 * k;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, k, d, 1.0, Xb, d, h->W, d, 0.0, Lb, k);
        loss += hand_softmax_ce(Lb, h->b, h->y + r0, rows, k, 1.0 / n, h->db);
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, d, rows, 1.0, Lb, k, Xb, d, r0 ? 1.0 : 0.0, h->dW,
                    d);
    }
    h->loss = loss / n;
    return 0;
}

/* The engine's gradients against the hand-written ones; the worst relative
 * difference. */
static double compare(int n, bome_node *const *eng, const double *const *hand, const size_t *len, double *each)
{
    double worst = 0;
    for (int i = 0; i < n; i++) {
        each[i] = i == 0 ? fabs(bome_value(eng[0]) - hand[0][0]) / fabs(hand[0][0])
                         : rel_diff(bome_data(eng[i]), hand[i], len[i]);
        worst = fmax(worst, each[i]);
    }
    return worst;
}

static void print_matrix_result(const result *r)
{
    print_sides(r);
    print_ratio(r, 0, 2, true);  /* the headline: engine as shipped / hand as specified */
    print_ratio(r, 1, 2, true);  /* like for like: whole-matrix products on both sides */
    if (r->tiled_rows) /* like for like: row-tiled on both sides */
        print_ratio(r, 0, 3, true);
    else
        printf("  (the default plan is not tiled: X has fewer rows than the engine's minimum)\n");
    printf("\n");
}

static bool case_linear(const options *o, result *res)
{
    int n = o->rows, d = D_IN, k = K_OUT;
    uint64_t seed = 12345;
    double *X = xcalloc((size_t)n * d, sizeof *X), *W = xcalloc((size_t)k * d, sizeof *W);
    double *b = xcalloc((size_t)k, sizeof *b);
    int32_t *y = xcalloc((size_t)n, sizeof *y);
    fill_uniform(&seed, X, (size_t)n * d, 0.0, 1.0);
    fill_uniform(&seed, W, (size_t)k * d, -0.05, 0.05);
    fill_uniform(&seed, b, (size_t)k, -0.05, 0.05);
    fill_labels(&seed, y, n, k);

    bome_graph *g = bome_graph_new();
    bome_node *Xn = bome_input(g, "X", BOME_MATRIX(n, d));
    bome_node *yn = bome_labels(g, "y", n);
    bome_node *Wn = bome_param(g, "W", BOME_MATRIX(k, d));
    bome_node *bn = bome_param(g, "b", BOME_VECTOR(k));
    bome_node *logits = bome_add(g, bome_matmul(g, Xn, 0, Wn, 1), bn);
    bome_node *loss = bome_cross_entropy(g, logits, yn);
    bome_node *wrt[2] = {Wn, bn}, *gr[2] = {NULL, NULL};
    bome_grad(g, loss, 2, wrt, gr);
    bome_bind(g, Xn, X);
    bome_bind_labels(g, yn, y);
    bome_bind(g, Wn, W);
    bome_bind(g, bn, b);
    bome_node *outs[3] = {loss, gr[0], gr[1]};
    bome_plan *pt, *pw;
    if (!make_plans(g, "linear", o->block, 3, outs, &pt, &pw)) {
        bome_graph_free(g);
        return false;
    }

    linear_hand h = {n, d, k, g->tile_block_rows, X, W, b, y, xcalloc((size_t)n * k, sizeof(double)),
                     xcalloc((size_t)k * d, sizeof(double)), xcalloc((size_t)k, sizeof(double)), 0};
    side sv[4] = {{"engine", run_plan, pt}, {"engine-whole", run_plan, pw}, {"hand", linear_hand_run, &h},
                  {"hand-tiled", linear_hand_tiled_run, &h}};
    res->nv = 4;
    for (int v = 0; v < 4; v++)
        res->side_name[v] = sv[v].name;
    res->plan_nodes = bome_plan_size(pt);
    res->tiled_rows = bome_plan_tiled_rows(pt);

    printf("linear: X %d x %d, W %d x %d, b %d; mean CE; gradient wrt W, b\n", n, d, k, d, k);
    printf("  plan: %zu nodes (tape %zu); default plan tiled over %d rows (blocks of %d), second plan whole\n",
           bome_plan_size(pt), bome_graph_size(g), res->tiled_rows, g->tile_block_rows);
    /* Warm-up of each side, which is also the check: each engine plan against
     * each hand-written variant. */
    bool ok = true;
    res->check = 0;
    for (int e = 0; e < 2; e++)
        for (int hv = 2; hv < 4; hv++) {
            int rc = sv[e].run(sv[e].ctx);
            sv[hv].run(sv[hv].ctx);
            const double *hand[3] = {&h.loss, h.dW, h.db};
            size_t len[3] = {1, (size_t)k * d, (size_t)k};
            double each[3], worst = compare(3, outs, hand, len, each);
            printf("  check %s vs %s: relative difference loss %.2e, dW %.2e, db %.2e\n", sv[e].name, sv[hv].name,
                   each[0], each[1], each[2]);
            res->check = fmax(res->check, worst);
            ok &= rc == BOME_OK;
        }
    printf("  (tolerance 1e-10)\n");
    ok &= res->check <= 1e-10;
    if (!ok) {
        fprintf(stderr, "bench_ad: linear: engine and hand-written gradients disagree\n");
    } else {
        double *t[4];
        for (int v = 0; v < 4; v++)
            t[v] = xcalloc((size_t)o->reps, sizeof(double));
        time_interleaved(o->reps, 1, 4, sv, t);
        summarize(res, t, o->reps);
        print_matrix_result(res);
        if (o->nodes) {
            profile_plan("engine (default plan)", pt, o->reps);
            profile_plan("engine-whole", pw, o->reps);
        }
        for (int v = 0; v < 4; v++)
            free(t[v]);
    }
    free(h.L);
    free(h.dW);
    free(h.db);
    bome_graph_free(g);
    free(X);
    free(W);
    free(b);
    free(y);
    return ok;
}

/* ---- case 2: 784-300-10 tanh network ------------------------------------------------ */

typedef struct mlp_hand {
    int n, d, hd, k, block;
    const double *X, *W1, *b1, *W2, *b2;
    const int32_t *y;
    double *H, *L, *dH, *dW1, *db1, *dW2, *db2, loss;
} mlp_hand;

/*
 * rows [r0, r0 + rows) of the whole computation, with dW1, dW2 accumulated
 * (beta 1) unless first; H, L, dH hold those rows at their start. The plain
 * variant calls it once over all rows, the tiled one block by block.
 */
static double mlp_hand_rows(mlp_hand *m, int r0, int rows, bool first, double *H, double *L, double *dH)
{
    int d = m->d, hd = m->hd, k = m->k;
    const double *X = m->X + (size_t)r0 * d;
    double beta = first ? 0.0 : 1.0;
    /* H = tanh(X W1^T + b1) */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, hd, d, 1.0, X, d, m->W1, d, 0.0, H, hd);
    for (int i = 0; i < rows; i++) {
        double *hi = H + (size_t)i * hd;
        for (int j = 0; j < hd; j++)
            hi[j] = tanh(hi[j] + m->b1[j]);
    }
    /* L = H W2^T, then the fused softmax pass: L becomes dL, db2 its column sums */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, k, hd, 1.0, H, hd, m->W2, hd, 0.0, L, k);
    double loss = hand_softmax_ce(L, m->b2, m->y + r0, rows, k, 1.0 / m->n, m->db2);
    /* dW2 += dL^T H, dH = dL W2 */
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, hd, rows, 1.0, L, k, H, hd, beta, m->dW2, hd);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hd, k, 1.0, L, k, m->W2, hd, 0.0, dH, hd);
    /* dA = dH (1 - H^2) in place, db1 its column sums */
    for (int i = 0; i < rows; i++) {
        double *gi = dH + (size_t)i * hd;
        const double *hi = H + (size_t)i * hd;
        for (int j = 0; j < hd; j++) {
            gi[j] *= 1.0 - hi[j] * hi[j];
            m->db1[j] += gi[j];
        }
    }
    /* dW1 += dA^T X */
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, hd, d, rows, 1.0, dH, hd, X, d, beta, m->dW1, d);
    return loss;
}

static int mlp_hand_run(void *ctx)
{
    mlp_hand *m = ctx;
    memset(m->db1, 0, (size_t)m->hd * sizeof(double));
    memset(m->db2, 0, (size_t)m->k * sizeof(double));
    m->loss = mlp_hand_rows(m, 0, m->n, true, m->H, m->L, m->dH) / m->n;
    return 0;
}

/* Block by block; the block's H, L and dH live in the first rows of the
 * buffers, so they stay in cache. */
static int mlp_hand_tiled_run(void *ctx)
{
    mlp_hand *m = ctx;
    double loss = 0;
    memset(m->db1, 0, (size_t)m->hd * sizeof(double));
    memset(m->db2, 0, (size_t)m->k * sizeof(double));
    for (int r0 = 0; r0 < m->n; r0 += m->block) {
        int rows = r0 + m->block < m->n ? m->block : m->n - r0;
        loss += mlp_hand_rows(m, r0, rows, r0 == 0, m->H, m->L, m->dH);
    }
    m->loss = loss / m->n;
    return 0;
}

static bool case_mlp(const options *o, result *res)
{
    int n = o->rows, d = D_IN, hd = H_MLP, k = K_OUT;
    uint64_t seed = 54321;
    double *X = xcalloc((size_t)n * d, sizeof *X);
    double *W1 = xcalloc((size_t)hd * d, sizeof *W1), *b1 = xcalloc((size_t)hd, sizeof *b1);
    double *W2 = xcalloc((size_t)k * hd, sizeof *W2), *b2 = xcalloc((size_t)k, sizeof *b2);
    int32_t *y = xcalloc((size_t)n, sizeof *y);
    fill_uniform(&seed, X, (size_t)n * d, 0.0, 1.0);
    fill_uniform(&seed, W1, (size_t)hd * d, -0.05, 0.05);
    fill_uniform(&seed, b1, (size_t)hd, -0.05, 0.05);
    fill_uniform(&seed, W2, (size_t)k * hd, -0.1, 0.1);
    fill_uniform(&seed, b2, (size_t)k, -0.05, 0.05);
    fill_labels(&seed, y, n, k);

    bome_graph *g = bome_graph_new();
    bome_node *Xn = bome_input(g, "X", BOME_MATRIX(n, d));
    bome_node *yn = bome_labels(g, "y", n);
    bome_node *W1n = bome_param(g, "W1", BOME_MATRIX(hd, d));
    bome_node *b1n = bome_param(g, "b1", BOME_VECTOR(hd));
    bome_node *W2n = bome_param(g, "W2", BOME_MATRIX(k, hd));
    bome_node *b2n = bome_param(g, "b2", BOME_VECTOR(k));
    bome_node *h = bome_tanh(g, bome_add(g, bome_matmul(g, Xn, 0, W1n, 1), b1n));
    bome_node *logits = bome_add(g, bome_matmul(g, h, 0, W2n, 1), b2n);
    bome_node *loss = bome_cross_entropy(g, logits, yn);
    bome_node *wrt[4] = {W1n, b1n, W2n, b2n}, *gr[4] = {NULL, NULL, NULL, NULL};
    bome_grad(g, loss, 4, wrt, gr);
    bome_bind(g, Xn, X);
    bome_bind_labels(g, yn, y);
    bome_bind(g, W1n, W1);
    bome_bind(g, b1n, b1);
    bome_bind(g, W2n, W2);
    bome_bind(g, b2n, b2);
    bome_node *outs[5] = {loss, gr[0], gr[1], gr[2], gr[3]};
    bome_plan *pt, *pw;
    if (!make_plans(g, "mlp", o->block, 5, outs, &pt, &pw)) {
        bome_graph_free(g);
        return false;
    }

    mlp_hand m = {n, d, hd, k, g->tile_block_rows, X, W1, b1, W2, b2, y,
                  xcalloc((size_t)n * hd, sizeof(double)), xcalloc((size_t)n * k, sizeof(double)),
                  xcalloc((size_t)n * hd, sizeof(double)), xcalloc((size_t)hd * d, sizeof(double)),
                  xcalloc((size_t)hd, sizeof(double)), xcalloc((size_t)k * hd, sizeof(double)),
                  xcalloc((size_t)k, sizeof(double)), 0};
    side sv[4] = {{"engine", run_plan, pt}, {"engine-whole", run_plan, pw}, {"hand", mlp_hand_run, &m},
                  {"hand-tiled", mlp_hand_tiled_run, &m}};
    res->nv = 4;
    for (int v = 0; v < 4; v++)
        res->side_name[v] = sv[v].name;
    res->plan_nodes = bome_plan_size(pt);
    res->tiled_rows = bome_plan_tiled_rows(pt);

    printf("mlp: X %d x %d, %d-%d-%d with tanh; mean CE; gradient wrt W1, b1, W2, b2\n", n, d, d, hd, k);
    printf("  plan: %zu nodes (tape %zu); default plan tiled over %d rows (blocks of %d), second plan whole\n",
           bome_plan_size(pt), bome_graph_size(g), res->tiled_rows, g->tile_block_rows);
    bool ok = true;
    res->check = 0;
    for (int e = 0; e < 2; e++)
        for (int hv = 2; hv < 4; hv++) {
            int rc = sv[e].run(sv[e].ctx);
            sv[hv].run(sv[hv].ctx);
            const double *hand[5] = {&m.loss, m.dW1, m.db1, m.dW2, m.db2};
            size_t len[5] = {1, (size_t)hd * d, (size_t)hd, (size_t)k * hd, (size_t)k};
            double each[5], worst = compare(5, outs, hand, len, each);
            printf("  check %s vs %s: relative difference loss %.2e, dW1 %.2e, db1 %.2e, dW2 %.2e, db2 %.2e\n",
                   sv[e].name, sv[hv].name, each[0], each[1], each[2], each[3], each[4]);
            res->check = fmax(res->check, worst);
            ok &= rc == BOME_OK;
        }
    printf("  (tolerance 1e-10)\n");
    ok &= res->check <= 1e-10;
    if (!ok) {
        fprintf(stderr, "bench_ad: mlp: engine and hand-written gradients disagree\n");
    } else {
        double *t[4];
        for (int v = 0; v < 4; v++)
            t[v] = xcalloc((size_t)o->reps, sizeof(double));
        time_interleaved(o->reps, 1, 4, sv, t);
        summarize(res, t, o->reps);
        print_matrix_result(res);
        if (o->nodes) {
            profile_plan("engine (default plan)", pt, o->reps);
            profile_plan("engine-whole", pw, o->reps);
        }
        for (int v = 0; v < 4; v++)
            free(t[v]);
    }
    free(m.H);
    free(m.L);
    free(m.dH);
    free(m.dW1);
    free(m.db1);
    free(m.dW2);
    free(m.db2);
    bome_graph_free(g);
    free(X);
    free(W1);
    free(b1);
    free(W2);
    free(b2);
    free(y);
    return ok;
}

/* ---- case 3: scalar recurrence, tape overhead ---------------------------------------- */

/*
 * x_{k+1} = tanh(a x_k + b) + c exp(x_k), k = 0 .. N-1, loss = x_1 + ... + x_N,
 * gradient wrt a, b, c and x_0. Per step: 7 forward nodes (mul, add, tanh,
 * exp, mul, add, and the add of the running sum) and 11 reverse nodes
 * (tanh_bwd, 4 mul, and 6 adds that accumulate the adjoints of a, b, c and
 * x_k). The loss is a sum so that the adjoints stay O(1) instead of decaying
 * geometrically into subnormals, which would time the FPU's slow path.
 */
typedef struct scalar_hand {
    int steps;
    double a, b, c, x0;
    double *x, *t, *e; /* x_k, tanh(a x_k + b), exp(x_k) */
    double loss, grad[4];
} scalar_hand;

static int scalar_hand_run(void *ctx)
{
    scalar_hand *s = ctx;
    double a = s->a, b = s->b, c = s->c, sum = 0;
    s->x[0] = s->x0;
    for (int k = 0; k < s->steps; k++) {
        s->t[k] = tanh(a * s->x[k] + b);
        s->e[k] = exp(s->x[k]);
        s->x[k + 1] = s->t[k] + c * s->e[k];
        sum += s->x[k + 1];
    }
    s->loss = sum;
    double xb = 1, ab = 0, bb = 0, cb = 0;
    for (int k = s->steps; k-- > 0;) {
        double eb = xb * c, zb = xb * (1.0 - s->t[k] * s->t[k]);
        cb += xb * s->e[k];
        bb += zb;
        ab += zb * s->x[k];
        xb = eb * s->e[k] + zb * a;
        if (k > 0)
            xb += 1.0; /* x_k's own term in the sum */
    }
    s->grad[0] = ab;
    s->grad[1] = bb;
    s->grad[2] = cb;
    s->grad[3] = xb;
    return 0;
}

static bool case_scalar(const options *o, result *res)
{
    int N = o->steps;
    double av = 0.5, bv = 0.1, cv = 0.05, x0v = 0.3;
    bome_graph *g = bome_graph_new();
    bome_node *a = bome_param(g, "a", BOME_SCALAR), *b = bome_param(g, "b", BOME_SCALAR);
    bome_node *c = bome_param(g, "c", BOME_SCALAR), *x0 = bome_param(g, "x0", BOME_SCALAR);
    bome_node *x = x0, *sum = NULL;
    for (int k = 0; k < N; k++) {
        x = bome_add(g, bome_tanh(g, bome_add(g, bome_mul(g, a, x), b)), bome_mul(g, c, bome_exp(g, x)));
        sum = sum ? bome_add(g, sum, x) : x;
    }
    bome_node *wrt[4] = {a, b, c, x0}, *gr[4] = {NULL, NULL, NULL, NULL};
    bome_grad(g, sum, 4, wrt, gr);
    bome_set(g, a, &av);
    bome_set(g, b, &bv);
    bome_set(g, c, &cv);
    bome_set(g, x0, &x0v);
    bome_node *outs[5] = {sum, gr[0], gr[1], gr[2], gr[3]};
    bome_plan *p = check_graph(g, "scalar: building") ? bome_plan_new(g, 5, outs) : NULL;
    if (!p || !check_graph(g, "scalar: planning")) {
        bome_graph_free(g);
        return false;
    }
    size_t nodes = bome_plan_size(p);

    scalar_hand s = {N, av, bv, cv, x0v, xcalloc((size_t)N + 1, sizeof(double)), xcalloc((size_t)N, sizeof(double)),
                     xcalloc((size_t)N, sizeof(double)), 0, {0, 0, 0, 0}};
    int rc = bome_plan_run(p);
    scalar_hand_run(&s);
    res->check = fabs(bome_value(sum) - s.loss) / fabs(s.loss);
    for (int i = 0; i < 4; i++)
        res->check = fmax(res->check, fabs(bome_value(gr[i]) - s.grad[i]) / fmax(fabs(s.grad[i]), 1e-300));
    res->plan_nodes = nodes;
    printf("scalar: x_{k+1} = tanh(a x_k + b) + c exp(x_k), %d steps, loss sum_k x_k; gradient wrt a, b, c, x0\n", N);
    printf("  plan: %zu nodes (tape %zu), %.2f per step; loss %.12f; grad %.6e %.6e %.6e %.6e\n", nodes,
           bome_graph_size(g), (double)nodes / N, s.loss, s.grad[0], s.grad[1], s.grad[2], s.grad[3]);
    printf("  check: max relative difference %.2e (tolerance 1e-10)\n", res->check);
    bool ok = rc == BOME_OK && res->check <= 1e-10;
    if (!ok) {
        fprintf(stderr, "bench_ad: scalar: engine and hand-written gradients disagree (rc %d)\n", rc);
    } else {
        /* One run is well under a millisecond: each sample repeats it enough
         * times to last ~20 ms, and the per-run time is the sample / inner. */
        double t0 = now();
        bome_plan_run(p);
        double one = now() - t0;
        int inner = one > 0 ? (int)(0.02 / one) : 1000;
        if (inner < 1)
            inner = 1;
        side sv[2] = {{"engine", run_plan, p}, {"hand", scalar_hand_run, &s}};
        res->nv = 2;
        res->side_name[0] = sv[0].name;
        res->side_name[1] = sv[1].name;
        res->scale = 1e9 / (double)nodes;
        double *t[2] = {xcalloc((size_t)o->reps, sizeof(double)), xcalloc((size_t)o->reps, sizeof(double))};
        time_interleaved(o->reps, inner, 2, sv, t);
        printf("  one forward + reverse run: engine median %.1f us, hand median %.1f us (%d runs per sample)\n",
               1e6 * median(t[0], o->reps), 1e6 * median(t[1], o->reps), inner);
        printf("  per node: the time of one run / %zu plan nodes, on both sides\n", nodes);
        summarize(res, t, o->reps);
        print_sides(res);
        print_ratio(res, 0, 1, false);
        printf("\n");
        free(t[0]);
        free(t[1]);
    }
    free(s.x);
    free(s.t);
    free(s.e);
    bome_graph_free(g);
    return ok;
}

/* ---- the machine ---------------------------------------------------------------- */

static void print_machine(void)
{
    char line[512], cpu[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "model name", 10) == 0) {
                const char *v = strchr(line, ':');
                if (v) {
                    v += 1 + (v[1] == ' ');
                    snprintf(cpu, sizeof cpu, "%s", v);
                    cpu[strcspn(cpu, "\n")] = '\0';
                }
                break;
            }
        fclose(f);
    }
    const char *env = getenv("OPENBLAS_NUM_THREADS");
    printf("machine: %s\n", cpu);
    printf("OPENBLAS_NUM_THREADS=%s", env ? env : "(unset)");
    if (openblas_get_num_threads)
        printf(" (OpenBLAS uses %d)", openblas_get_num_threads());
    printf("\n");
    if (openblas_get_config)
        printf("BLAS: %s; core %s\n", openblas_get_config(), openblas_get_corename ? openblas_get_corename() : "?");
    else
        printf("BLAS: not OpenBLAS (no openblas_get_config)\n");
    /* The BLAS library files actually mapped into the process. */
    f = fopen("/proc/self/maps", "r");
    if (f) {
        char seen[4][256];
        int nseen = 0;
        while (fgets(line, sizeof line, f)) {
            const char *path = strchr(line, '/');
            if (!path || !strstr(path, "blas"))
                continue;
            char p[256];
            snprintf(p, sizeof p, "%s", path);
            p[strcspn(p, "\n")] = '\0';
            bool dup = false;
            for (int i = 0; i < nseen; i++)
                dup |= strcmp(seen[i], p) == 0;
            if (!dup && nseen < 4) {
                snprintf(seen[nseen++], sizeof seen[0], "%s", p);
                printf("BLAS library: %s\n", p);
            }
        }
        fclose(f);
    }
    if (!env)
        printf("warning: OPENBLAS_NUM_THREADS is not set; OpenBLAS then uses every core\n");
    printf("\n");
}

/* ---- main ------------------------------------------------------------------------ */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bench_ad [--reps N] [--only NAME] [--rows N] [--steps N] [--block N] [--nodes]\n"
            "\n"
            "Times gradients computed by the bome ad engine (a plan run per repetition)\n"
            "against hand-written C with the same CBLAS calls, interleaved in one process.\n"
            "Prints the median over the repetitions and the ratios engine/hand; for linear\n"
            "and mlp both the engine and the hand-written C run whole-matrix and row-tiled.\n"
            "\n"
            "  --reps N    repetitions per case (default %d, at least %d)\n"
            "  --only NAME run one case: linear, mlp or scalar\n"
            "  --rows N    rows of the data matrix X for linear and mlp (default 50000)\n"
            "  --steps N   steps of the scalar recurrence (default 5556: 10^5 plan nodes)\n"
            "  --block N   rows per block of the tiled plan and of hand-tiled (default:\n"
            "              the engine's, 64)\n"
            "  --nodes     also time each node of the linear and mlp plans\n"
            "  --help      this text\n"
            "\n"
            "Set OPENBLAS_NUM_THREADS explicitly (e.g. OPENBLAS_NUM_THREADS=1).\n",
            MIN_REPS, MIN_REPS);
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
    options o = {MIN_REPS, 50000, 5556, 0, NULL, false};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--nodes")) {
            o.nodes = true;
        } else if (!strcmp(a, "--only") && i + 1 < argc) {
            o.only = argv[++i];
        } else if ((!strcmp(a, "--reps") && parse_int(i + 1 < argc ? argv[i + 1] : NULL, &o.reps)) ||
                   (!strcmp(a, "--rows") && parse_int(i + 1 < argc ? argv[i + 1] : NULL, &o.rows)) ||
                   (!strcmp(a, "--steps") && parse_int(i + 1 < argc ? argv[i + 1] : NULL, &o.steps)) ||
                   (!strcmp(a, "--block") && parse_int(i + 1 < argc ? argv[i + 1] : NULL, &o.block))) {
            i++;
        } else {
            fprintf(stderr, "bench_ad: bad argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (o.only && strcmp(o.only, "linear") && strcmp(o.only, "mlp") && strcmp(o.only, "scalar")) {
        fprintf(stderr, "bench_ad: unknown case '%s' (linear, mlp, scalar)\n", o.only);
        return 2;
    }
    if (o.reps < MIN_REPS) {
        printf("note: --reps %d raised to %d\n", o.reps, MIN_REPS);
        o.reps = MIN_REPS;
    }

    print_machine();
    printf("repetitions: %d per case, CLOCK_MONOTONIC; the sides take turns going first\n", o.reps);
    printf("sides: engine = bome_plan_run of the default plan (row-tiled when X has >= 4096 rows);\n"
           "       engine-whole = the same graph planned with tiling off (whole-matrix products);\n"
           "       hand = plain C with whole-matrix dgemms, as the engine-whole plan;\n"
           "       hand-tiled = the same C going through the rows in blocks, as the tiled plan\n\n");

    result r[3];
    memset(r, 0, sizeof r);
    r[0] = (result){.name = "linear", .unit = "ms", .scale = 1e3, .target = 1.10};
    r[1] = (result){.name = "mlp", .unit = "ms", .scale = 1e3, .target = 1.25};
    r[2] = (result){.name = "scalar", .unit = "ns/node", .target = 0};
    bool (*fn[3])(const options *, result *) = {case_linear, case_mlp, case_scalar};
    bool ran[3] = {false, false, false}, ok = true;
    for (int i = 0; i < 3; i++)
        if (!o.only || !strcmp(o.only, r[i].name)) {
            ran[i] = fn[i](&o, &r[i]);
            ok &= ran[i];
        }

    printf("summary (medians of %d repetitions; ratios of medians)\n", o.reps);
    printf("  %-7s %-7s %9s %9s %9s %9s | %10s %10s %10s | %6s %6s %7s\n", "case", "unit", "engine", "eng-whole",
           "hand", "hand-tiled", "eng/hand", "whole/hand", "eng/tiled", "target", "nodes", "diff");
    for (int i = 0; i < 3; i++) {
        if (!ran[i])
            continue;
        const result *q = &r[i];
        char tgt[16] = "-";
        if (q->target > 0)
            snprintf(tgt, sizeof tgt, "%.2f", q->target);
        char vs_tiled[16] = "untiled";
        if (q->nv == 4 && q->tiled_rows)
            snprintf(vs_tiled, sizeof vs_tiled, "%.3f", q->ratio[0][3]);
        if (q->nv == 4)
            printf("  %-7s %-7s %9.2f %9.2f %9.2f %9.2f | %10.3f %10.3f %10s | %6s %6zu %7.1e\n", q->name, q->unit,
                   q->med[0], q->med[1], q->med[2], q->med[3], q->ratio[0][2], q->ratio[1][2], vs_tiled, tgt,
                   q->plan_nodes, q->check);
        else
            printf("  %-7s %-7s %9.2f %9s %9.2f %9s | %10.3f %10s %10s | %6s %6zu %7.1e\n", q->name, q->unit,
                   q->med[0], "-", q->med[1], "-", q->ratio[0][1], "-", "-", tgt, q->plan_nodes, q->check);
    }
    return ok ? 0 : 1;
}
