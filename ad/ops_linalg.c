/* Matrix products through CBLAS, with transpose flags instead of transposed
 * copies, and transpose as an explicit op. */
#include "internal.h"

#include <cblas.h>

/* op(x)'s dimensions. */
static int op_rows(const bome_node *x, int t) { return t ? x->shape.cols : x->shape.rows; }
static int op_cols(const bome_node *x, int t) { return t ? x->shape.rows : x->shape.cols; }

static int matmul_forward(bome_graph *g, bome_node *n)
{
    (void)g;
    const bome_node *a = n->src[0], *b = n->src[1];
    int ta = n->ip[0], tb = n->ip[1];
    int M = op_rows(a, ta), K = op_cols(a, ta), N = op_cols(b, tb);
    ad_cblas_gemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0,
                a->data, a->shape.cols, b->data, b->shape.cols, 0.0, n->data, N);
    return BOME_OK;
}

static void matmul_backward(bome_graph *g, bome_node *n, bome_node *dy, const bool *need, bome_node **d)
{
    bome_node *a = n->src[0], *b = n->src[1];
    int ta = n->ip[0], tb = n->ip[1];
    /* C = op(A) op(B): dop(A) = dC op(B)^T, dop(B) = op(A)^T dC; a transposed
     * operand receives the transpose, which is again just a flag. */
    if (need[0])
        d[0] = ta ? bome_matmul(g, b, tb, dy, 1) : bome_matmul(g, dy, 0, b, !tb);
    if (need[1])
        d[1] = tb ? bome_matmul(g, dy, 1, a, ta) : bome_matmul(g, a, !ta, dy, 0);
    /* A vector operand (1 x n) keeps its rank. */
    for (int i = 0; i < 2; i++)
        if (d[i] && d[i]->shape.rank != n->src[i]->shape.rank)
            d[i] = bome_reshape(g, d[i], n->src[i]->shape);
}

/* Tiled: rows of op(A) B for an untransposed R-row A (B whole), or
 * A^T B over R rows of both, accumulated block by block. */
int ad_matmul_tile(const bome_node *n, int R, unsigned *row_srcs)
{
    const bome_node *a = n->src[0], *b = n->src[1];
    if (a->shape.rank != 2 || a->shape.rows != R)
        return 0;
    if (!n->ip[0]) {
        *row_srcs = 1;
        return TILE_ROW;
    }
    *row_srcs = 3;
    return !n->ip[1] && b->shape.rank == 2 && b->shape.rows == R ? TILE_REDUCE : 0;
}

bool ad_matmul_fused(const bome_node *n)
{
    return (n->ip[0] ? n->shape.rows : n->shape.cols) <= ad_kernel_width();
}

static int matmul_rows(bome_graph *g, bome_node *n, int r0, int r1, bool first, bome_real *acc)
{
    (void)g;
    const bome_node *a = n->src[0], *b = n->src[1];
    int lda = a->shape.cols, ldb = b->shape.cols, N = n->shape.cols;
    if (ad_matmul_fused(n)) { /* ad's kernels: the block's rows straight into registers */
        const bome_real *ar = a->data + (size_t)r0 * lda;
        /* The stage's next block reads the data rows after these: the kernels
         * prefetch them while they compute (a node's rows are not computed
         * yet, so only a data matrix's). */
        const bome_node *x = n->ip[0] ? b : a;
        int next = x->kind == NODE_INPUT ? x->shape.rows - r1 : 0;
        next = next < r1 - r0 ? next : r1 - r0;
        const bome_real *after = next > 0 ? x->data + (size_t)r1 * x->shape.cols : NULL;
        if (n->ip[0])
            ad_gemm_tn(r1 - r0, n->shape.rows, N, ar, lda, b->data + (size_t)r0 * ldb, ldb, acc, N, first, after,
                       next > 0 ? next : 0);
        else if (n->ip[1])
            ad_gemm_nt(r1 - r0, N, lda, ar, lda, b->data, ldb, n->data + (size_t)r0 * N, N, after, next > 0 ? next : 0);
        else
            ad_gemm_nn(r1 - r0, N, lda, ar, lda, b->data, ldb, n->data + (size_t)r0 * N, N);
        return BOME_OK;
    }
    if (!n->ip[0]) {
        ad_cblas_gemm(CblasRowMajor, CblasNoTrans, n->ip[1] ? CblasTrans : CblasNoTrans, r1 - r0, N,
                    a->shape.cols, 1.0, a->data + (size_t)r0 * lda, lda, b->data, ldb, 0.0,
                    n->data + (size_t)r0 * N, N);
    } else {
        ad_cblas_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, n->shape.rows, N, r1 - r0, 1.0,
                    a->data + (size_t)r0 * lda, lda, b->data + (size_t)r0 * ldb, ldb, first ? 0.0 : 1.0, acc, N);
    }
    return BOME_OK;
}

static const op_desc op_matmul = {.name = "matmul", .forward = matmul_forward, .backward = matmul_backward,
                                  .tile = ad_matmul_tile, .rows = matmul_rows};

bome_node *bome_matmul(bome_graph *g, bome_node *a, int trans_a, bome_node *b, int trans_b)
{
    bome_node *src[2] = {a, b};
    if (!ad_check(g, "matmul", 2, src))
        return NULL;
    trans_a = !!trans_a;
    trans_b = !!trans_b;
    if (op_cols(a, trans_a) != op_rows(b, trans_b)) {
        char sa[40], sb[40];
        ad_error(g, BOME_ERR_SHAPE, "matmul: %s%s times %s%s: inner dimensions %d and %d differ",
                 ad_shape_str(a->shape, sa), trans_a ? "^T" : "", ad_shape_str(b->shape, sb), trans_b ? "^T" : "",
                 op_cols(a, trans_a), op_rows(b, trans_b));
        return NULL;
    }
    bome_node *n = ad_node(g, &op_matmul, BOME_MATRIX(op_rows(a, trans_a), op_cols(b, trans_b)), 2, src);
    if (n) {
        n->ip[0] = trans_a;
        n->ip[1] = trans_b;
    }
    return n;
}

static int matvec_forward(bome_graph *g, bome_node *n)
{
    (void)g;
    const bome_node *a = n->src[0], *x = n->src[1];
    ad_cblas_gemv(CblasRowMajor, n->ip[0] ? CblasTrans : CblasNoTrans, a->shape.rows, a->shape.cols, 1.0, a->data,
                a->shape.cols, x->data, 1, 0.0, n->data, 1);
    return BOME_OK;
}

static void matvec_backward(bome_graph *g, bome_node *n, bome_node *dy, const bool *need, bome_node **d)
{
    bome_node *a = n->src[0], *x = n->src[1];
    if (need[0]) { /* dA = dy x^T, or x dy^T when A is used transposed */
        bome_node *col = ad_as_column(g, n->ip[0] ? x : dy);
        d[0] = bome_matmul(g, col, 0, n->ip[0] ? dy : x, 0);
        if (d[0] && a->shape.rank != 2)
            d[0] = bome_reshape(g, d[0], a->shape);
    }
    if (need[1])
        d[1] = bome_matvec(g, a, !n->ip[0], dy);
}

static const op_desc op_matvec = {.name = "matvec", .forward = matvec_forward, .backward = matvec_backward, .view = false};

bome_node *bome_matvec(bome_graph *g, bome_node *a, int trans_a, bome_node *x)
{
    bome_node *src[2] = {a, x};
    if (!ad_check(g, "matvec", 2, src))
        return NULL;
    trans_a = !!trans_a;
    if (x->shape.rank != 1 || op_cols(a, trans_a) != x->shape.cols) {
        char sa[40], sx[40];
        ad_error(g, BOME_ERR_SHAPE, "matvec: %s%s times %s: needs a vector of %d", ad_shape_str(a->shape, sa),
                 trans_a ? "^T" : "", ad_shape_str(x->shape, sx), op_cols(a, trans_a));
        return NULL;
    }
    bome_node *n = ad_node(g, &op_matvec, BOME_VECTOR(op_rows(a, trans_a)), 2, src);
    if (n)
        n->ip[0] = trans_a;
    return n;
}

static int transpose_forward(bome_graph *g, bome_node *n)
{
    (void)g;
    const bome_node *x = n->src[0];
    int R = x->shape.rows, C = x->shape.cols;
    /* Blocked so that both sides stay in cache on large matrices. */
    enum { B = 32 };
    for (int i0 = 0; i0 < R; i0 += B)
        for (int j0 = 0; j0 < C; j0 += B)
            for (int i = i0; i < i0 + B && i < R; i++)
                for (int j = j0; j < j0 + B && j < C; j++)
                    n->data[(size_t)j * R + i] = x->data[(size_t)i * C + j];
    return BOME_OK;
}

static void transpose_backward(bome_graph *g, bome_node *n, bome_node *dy, const bool *need, bome_node **d)
{
    (void)need;
    d[0] = bome_transpose(g, dy);
    if (d[0] && n->src[0]->shape.rank != 2)
        d[0] = bome_reshape(g, d[0], n->src[0]->shape);
}

static const op_desc op_transpose = {.name = "transpose", .forward = transpose_forward, .backward = transpose_backward, .view = false};

bome_node *bome_transpose(bome_graph *g, bome_node *x)
{
    if (!ad_check(g, "transpose", 1, &x))
        return NULL;
    return ad_node(g, &op_transpose, BOME_MATRIX(x->shape.cols, x->shape.rows), 1, &x);
}
