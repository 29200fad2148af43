/* bench_ad's mlp case: a 784-300-10 tanh network, the engine against hand-written C. */
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

bool case_mlp(const options *o, result *res)
{
    int n = o->rows, d = D_IN, hd = H_MLP, k = K_OUT;
    uint64_t seed = 54321;
    double *X = bench_xcalloc((size_t)n * d, sizeof *X);
    double *W1 = bench_xcalloc((size_t)hd * d, sizeof *W1), *b1 = bench_xcalloc((size_t)hd, sizeof *b1);
    double *W2 = bench_xcalloc((size_t)k * hd, sizeof *W2), *b2 = bench_xcalloc((size_t)k, sizeof *b2);
    int32_t *y = bench_xcalloc((size_t)n, sizeof *y);
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
                  bench_xcalloc((size_t)n * hd, sizeof(double)), bench_xcalloc((size_t)n * k, sizeof(double)),
                  bench_xcalloc((size_t)n * hd, sizeof(double)), bench_xcalloc((size_t)hd * d, sizeof(double)),
                  bench_xcalloc((size_t)hd, sizeof(double)), bench_xcalloc((size_t)k * hd, sizeof(double)),
                  bench_xcalloc((size_t)k, sizeof(double)), 0};
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
        time_matrix_sides(o, res, sv, pt, pw);
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
