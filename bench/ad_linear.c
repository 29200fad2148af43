/* bench_ad's linear case: softmax regression, the engine against hand-written C. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "ad_bench.h"
#include "bench_util.h"

/* For the graph's block of rows, which hand-tiled shares. */
#include "internal.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

bool case_linear(const options *o, result *res)
{
    int n = o->rows, d = D_IN, k = K_OUT;
    uint64_t seed = 12345;
    double *X = bench_xcalloc((size_t)n * d, sizeof *X), *W = bench_xcalloc((size_t)k * d, sizeof *W);
    double *b = bench_xcalloc((size_t)k, sizeof *b);
    int32_t *y = bench_xcalloc((size_t)n, sizeof *y);
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

    linear_hand h = {n, d, k, g->tile_block_rows, X, W, b, y, bench_xcalloc((size_t)n * k, sizeof(double)),
                     bench_xcalloc((size_t)k * d, sizeof(double)), bench_xcalloc((size_t)k, sizeof(double)), 0};
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
        time_matrix_sides(o, res, sv, pt, pw);
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
