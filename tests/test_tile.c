/* Row-tiled plans give what whole-matrix plans give, on the graphs that
 * matter (weighted softmax regression, a tanh network, their gradients) and
 * on graphs that must not be tiled, or only in part. */
#include <criterion/criterion.h>

#include <bome/ad.h>
#include "prec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { R = 203, D = 11, K = 4, H = 6 };

static bome_real X[R * D], X2[R * D], V[R];
static int32_t Y[R];

static void fill(void)
{
    for (int i = 0; i < R * D; i++) {
        X[i] = sin(0.37 * i) + 0.1 * cos(1.3 * i);
        X2[i] = cos(0.21 * i);
    }
    for (int i = 0; i < R; i++) {
        Y[i] = (i * 7) % K;
        V[i] = 0.5 + 0.4 * sin(i);
    }
}

static void set_param(bome_graph *g, bome_node *p, double phase)
{
    size_t n = bome_size(p);
    bome_real *buf = malloc(n * sizeof *buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = 0.3 * sin(phase + 0.7 * (double)i);
    bome_set(g, p, buf);
    free(buf);
}

typedef struct net {
    bome_graph *g;
    bome_node *x, *outs[8];
    int n_outs;
} net;

/* g = mean(clamp(v) .* CE(model(x))) + 0.001 |theta|^2 and its gradients
 * with respect to v and every weight, as hyper-cleaning builds it. */
static net build(bool mlp, int min_rows, int block, int threads)
{
    net n = {0};
    bome_graph *g = n.g = bome_graph_new();
    bome_graph_set_tiling(g, min_rows, block);
    cr_assert_eq(bome_graph_set_threads(g, threads), BOME_OK);
    n.x = bome_input(g, "x", BOME_MATRIX(R, D));
    bome_bind(g, n.x, X);
    bome_node *y = bome_labels(g, "y", R);
    bome_bind_labels(g, y, Y);
    bome_node *v = bome_param(g, "v", BOME_VECTOR(R));
    bome_set(g, v, V);
    bome_node *w1 = bome_param(g, "w1", BOME_MATRIX(mlp ? H : K, D));
    bome_node *b1 = bome_param(g, "b1", BOME_VECTOR(mlp ? H : K));
    set_param(g, w1, 0.1);
    set_param(g, b1, 0.2);
    bome_node *z = bome_add(g, bome_matmul(g, n.x, 0, w1, 1), b1);
    bome_node *params[5] = {v, w1, b1, NULL, NULL};
    int np = 3;
    if (mlp) {
        bome_node *w2 = bome_param(g, "w2", BOME_MATRIX(K, H));
        bome_node *b2 = bome_param(g, "b2", BOME_VECTOR(K));
        set_param(g, w2, 0.3);
        set_param(g, b2, 0.4);
        z = bome_add(g, bome_matmul(g, bome_tanh(g, z), 0, w2, 1), b2);
        params[3] = w2;
        params[4] = b2;
        np = 5;
    }
    bome_node *ce = bome_cross_entropy_rows(g, z, y);
    bome_node *loss = bome_weighted_mean(g, ce, bome_clamp(g, v, 0, 1));
    bome_node *l2 = bome_sumsq(g, w1);
    loss = bome_add(g, loss, bome_scale(g, l2, 0.001));
    n.outs[0] = loss;
    bome_grad(g, loss, np, params, n.outs + 1);
    n.n_outs = 1 + np;
    cr_assert_eq(bome_graph_status(g), BOME_OK, "%s", bome_graph_errmsg(g));
    return n;
}

static void expect_same(net *a, net *b)
{
    for (int i = 0; i < a->n_outs; i++) {
        const bome_real *p = bome_data(a->outs[i]), *q = bome_data(b->outs[i]);
        for (size_t k = 0; k < bome_size(a->outs[i]); k++)
            cr_expect(fabs(p[k] - q[k]) <= TOL(1e-12) * fmax(1.0, fabs(q[k])), "output %d entry %zu: %.17g vs %.17g", i,
                      k, p[k], q[k]);
    }
}

static void compare(bool mlp, int block, int threads)
{
    fill();
    net whole = build(mlp, 0, 0, 1), tiled = build(mlp, 100, block, threads);
    bome_plan *pw = bome_plan_new(whole.g, whole.n_outs, whole.outs);
    bome_plan *pt = bome_plan_new(tiled.g, tiled.n_outs, tiled.outs);
    cr_assert(pw && pt);
    cr_expect_eq(bome_plan_tiled_rows(pw), 0);
    cr_expect_eq(bome_plan_tiled_rows(pt), R);
    cr_expect_eq(bome_plan_size(pw), bome_plan_size(pt));
    cr_assert_eq(bome_plan_run(pw), BOME_OK);
    cr_assert_eq(bome_plan_run(pt), BOME_OK, "%s", bome_graph_errmsg(tiled.g));
    expect_same(&tiled, &whole);
    /* Rebinding the data after planning is seen by the tiled plan too. */
    bome_bind(whole.g, whole.x, X2);
    bome_bind(tiled.g, tiled.x, X2);
    cr_assert_eq(bome_plan_run(pw), BOME_OK);
    cr_assert_eq(bome_plan_run(pt), BOME_OK);
    expect_same(&tiled, &whole);
    bome_graph_free(whole.g);
    bome_graph_free(tiled.g);
}

Test(tile, weighted_softmax_regression) { compare(false, 16, 1); }
Test(tile, block_not_dividing_rows) { compare(false, 7, 1); }
Test(tile, block_larger_than_rows) { compare(false, 1000, 1); }
Test(tile, tanh_network) { compare(true, 9, 1); }

/* Threads over the blocks: each sums its own share of the reductions. */
Test(tile, two_threads) { compare(false, 16, 2); }
Test(tile, three_threads_uneven_blocks) { compare(false, 7, 3); }
Test(tile, more_threads_than_blocks) { compare(false, 64, 8); }
Test(tile, one_block_many_threads) { compare(false, 1000, 4); }
Test(tile, tanh_network_threads) { compare(true, 9, 3); }

Test(tile, thread_count_out_of_range)
{
    bome_graph *g = bome_graph_new();
    cr_expect_eq(bome_graph_set_threads(g, 0), BOME_ERR_ARG);
    cr_expect(strstr(bome_graph_errmsg(g), "bome_graph_set_threads: 0 threads"), "%s", bome_graph_errmsg(g));
    bome_graph_free(g);
    g = bome_graph_new();
    cr_expect_eq(bome_graph_set_threads(g, BOME_MAX_THREADS + 1), BOME_ERR_ARG);
    bome_graph_free(g);
    cr_expect_eq(bome_graph_set_threads(NULL, 2), BOME_ERR_ARG);
}

/* A thread's error reaches the caller with its message, whichever thread
 * met it. */
Test(tile, label_out_of_range_in_a_thread)
{
    fill();
    net n = build(false, 100, 16, 2);
    bome_plan *p = bome_plan_new(n.g, n.n_outs, n.outs);
    cr_assert_eq(bome_plan_tiled_rows(p), R);
    Y[190] = -1;
    cr_expect_eq(bome_plan_run(p), BOME_ERR_RANGE);
    cr_expect(strstr(bome_graph_errmsg(n.g), "label[190]"), "%s", bome_graph_errmsg(n.g));
    Y[190] = 0;
    bome_graph_free(n.g);
}

Test(tile, label_out_of_range_inside_the_stage)
{
    fill();
    net n = build(false, 100, 16, 1);
    bome_plan *p = bome_plan_new(n.g, n.n_outs, n.outs);
    cr_assert_eq(bome_plan_tiled_rows(p), R);
    Y[150] = K;
    cr_expect_eq(bome_plan_run(p), BOME_ERR_RANGE);
    cr_expect(strstr(bome_graph_errmsg(n.g), "label[150]"), "%s", bome_graph_errmsg(n.g));
    Y[150] = 0;
    bome_graph_free(n.g);
}

/* A row op that needs a reduction of the same rows (x / sum(x W^T)) must run
 * after the stage; the result still matches. */
Test(tile, row_op_after_a_reduction)
{
    fill();
    double got[2][R * K];
    for (int t = 0; t < 2; t++) {
        bome_graph *g = bome_graph_new();
        bome_graph_set_tiling(g, t ? 100 : 0, 10);
        bome_node *x = bome_input(g, "x", BOME_MATRIX(R, D));
        bome_bind(g, x, X);
        bome_node *w = bome_param(g, "w", BOME_MATRIX(K, D));
        set_param(g, w, 0.5);
        bome_node *z = bome_exp(g, bome_matmul(g, x, 0, w, 1));
        bome_node *y = bome_div(g, z, bome_sum(g, z));
        bome_node *loss = bome_sumsq(g, bome_matmul(g, y, 1, x, 0));
        bome_node *gw;
        bome_grad(g, loss, 1, &w, &gw);
        bome_node *outs[2] = {y, gw};
        bome_plan *p = bome_plan_new(g, 2, outs);
        cr_assert(p);
        cr_expect_eq(bome_plan_tiled_rows(p), t ? R : 0);
        cr_assert_eq(bome_plan_run(p), BOME_OK);
        memcpy(got[t], bome_data(gw), sizeof(bome_real) * K * D);
        bome_graph_free(g);
    }
    for (int i = 0; i < K * D; i++)
        cr_expect(fabs(got[0][i] - got[1][i]) <= TOL(1e-12) * fmax(1.0, fabs(got[0][i])), "entry %d", i);
}

Test(tile, no_product_no_tiling)
{
    fill();
    bome_graph *g = bome_graph_new();
    bome_graph_set_tiling(g, 100, 10);
    bome_node *x = bome_input(g, "x", BOME_MATRIX(R, D));
    bome_bind(g, x, X);
    bome_node *s = bome_sum(g, bome_exp(g, x));
    bome_plan *p = bome_plan_new(g, 1, &s);
    cr_expect_eq(bome_plan_tiled_rows(p), 0);
    cr_expect_eq(bome_plan_run(p), BOME_OK);
    bome_graph_free(g);
}

Test(tile, small_data_is_not_tiled_by_default)
{
    fill();
    net n = build(false, 4096, 64, 1);
    bome_plan *p = bome_plan_new(n.g, n.n_outs, n.outs);
    cr_expect_eq(bome_plan_tiled_rows(p), 0);
    bome_graph_free(n.g);
}

/* A wide product (a hidden layer of more than 64 units) is bound by
 * arithmetic, not memory: the plan stays whole. */
Test(tile, wide_products_are_not_tiled)
{
    fill();
    int widths[2] = {64, 65};
    for (int t = 0; t < 2; t++) {
        bome_graph *g = bome_graph_new();
        bome_graph_set_tiling(g, 100, 16);
        bome_node *x = bome_input(g, "x", BOME_MATRIX(R, D));
        bome_bind(g, x, X);
        bome_node *w = bome_param(g, "w", BOME_MATRIX(widths[t], D));
        bome_node *loss = bome_sum(g, bome_tanh(g, bome_matmul(g, x, 0, w, 1)));
        bome_node *gw;
        bome_grad(g, loss, 1, &w, &gw);
        bome_plan *p = bome_plan_new(g, 1, &gw);
        cr_assert(p);
        cr_expect_eq(bome_plan_tiled_rows(p), t ? 0 : R, "width %d", widths[t]);
        bome_graph_free(g);
    }
}
