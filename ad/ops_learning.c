/* Row-wise learning ops: logsumexp, softmax, log_softmax and cross-entropy
 * with integer labels, whose backward is one fused kernel. A vector is one
 * row. Kernels take a row range so that a later executor can run a
 * row-separable stretch of the tape block by block while it is in cache. */
#include "internal.h"

/* Type-generic: in the float32 build exp, log, tanh, ... of a float are
 * expf, logf, tanhf, ... rather than double calls at double's price. */
#include <tgmath.h>

static bome_real row_max(const bome_real *x, int C)
{
    bome_real m = x[0];
    for (int j = 1; j < C; j++)
        if (x[j] > m)
            m = x[j];
    return m;
}

static bome_real row_lse(const bome_real *x, int C)
{
    bome_real m = row_max(x, C);
    if (isinf(m))
        return m; /* all -inf stays -inf; +inf stays +inf, not NaN */
    bome_real s = 0;
    for (int j = 0; j < C; j++)
        s += exp(x[j] - m);
    return m + log(s);
}

enum { ROW_LSE, ROW_SOFTMAX, ROW_LOG_SOFTMAX };

static void rowwise_rows(const bome_node *n, int r0, int r1)
{
    const bome_node *x = n->src[0];
    int C = x->shape.cols;
    for (int i = r0; i < r1; i++) {
        const bome_real *xi = x->data + (size_t)i * C;
        bome_real lse = row_lse(xi, C);
        if (n->ip[0] == ROW_LSE) {
            n->data[i] = lse;
            continue;
        }
        bome_real *yi = n->data + (size_t)i * C;
        for (int j = 0; j < C; j++)
            yi[j] = n->ip[0] == ROW_SOFTMAX ? exp(xi[j] - lse) : xi[j] - lse;
    }
}

static int rowwise_forward(bome_graph *g, bome_node *n)
{
    (void)g;
    rowwise_rows(n, 0, n->src[0]->shape.rows);
    return BOME_OK;
}

/* Per-row values (a vector of rows, or a scalar) laid out to broadcast
 * along each row of a matrix. */
static bome_node *per_row(bome_graph *g, bome_node *v)
{
    return v && v->shape.rank == 1 && v->size > 1 ? ad_as_column(g, v) : v;
}

/* Row sums of t, ready to broadcast against t. */
static bome_node *row_sums(bome_graph *g, bome_node *t)
{
    if (!t)
        return NULL;
    return t->shape.rank == 2 ? per_row(g, bome_sum_axis(g, t, 1)) : bome_sum(g, t);
}

static void rowwise_backward(bome_graph *g, bome_node *n, bome_node *dy, const bool *need, bome_node **d)
{
    (void)need;
    bome_node *x = n->src[0];
    switch (n->ip[0]) {
    case ROW_LSE: /* softmax(x) dy */
        d[0] = bome_mul(g, bome_exp(g, bome_sub(g, x, per_row(g, n))), per_row(g, dy));
        break;
    case ROW_SOFTMAX: /* s (dy - sum(dy s)) */
        d[0] = bome_mul(g, n, bome_sub(g, dy, row_sums(g, bome_mul(g, dy, n))));
        break;
    default: /* dy - softmax(x) sum(dy) */
        d[0] = bome_sub(g, dy, bome_mul(g, bome_exp(g, n), row_sums(g, dy)));
        break;
    }
}

static int rowwise_tile(const bome_node *n, int R, unsigned *row_srcs)
{
    *row_srcs = 1;
    return n->src[0]->shape.rank == 2 && n->src[0]->shape.rows == R ? TILE_ROW : 0;
}

static int rowwise_rows_tiled(bome_graph *g, bome_node *n, int r0, int r1, bool first, bome_real *acc)
{
    (void)g;
    (void)first;
    (void)acc;
    rowwise_rows(n, r0, r1);
    return BOME_OK;
}

#define ROWWISE_DESC(id, opname)                                                                           \
    static const op_desc id = {.name = opname, .forward = rowwise_forward, .backward = rowwise_backward, \
                               .tile = rowwise_tile, .rows = rowwise_rows_tiled}
ROWWISE_DESC(op_logsumexp, "logsumexp");
ROWWISE_DESC(op_softmax, "softmax");
ROWWISE_DESC(op_log_softmax, "log_softmax");

static bome_node *rowwise(bome_graph *g, const op_desc *op, int kind, bome_node *x)
{
    if (!ad_check(g, op->name, 1, &x))
        return NULL;
    bome_shape s = x->shape;
    if (kind == ROW_LSE)
        s = x->shape.rank == 2 ? BOME_VECTOR(x->shape.rows) : BOME_SCALAR;
    bome_node *n = ad_node(g, op, s, 1, &x);
    if (n)
        n->ip[0] = kind;
    return n;
}

bome_node *bome_logsumexp(bome_graph *g, bome_node *x) { return rowwise(g, &op_logsumexp, ROW_LSE, x); }
bome_node *bome_softmax(bome_graph *g, bome_node *x) { return rowwise(g, &op_softmax, ROW_SOFTMAX, x); }
bome_node *bome_log_softmax(bome_graph *g, bome_node *x) { return rowwise(g, &op_log_softmax, ROW_LOG_SOFTMAX, x); }

/* ---- cross-entropy -------------------------------------------------------------- */

/* Rows go through the exponentials a chunk at a time, about this many
 * elements (8 KiB: in L1 between the passes), so that one vectorized exp
 * (ad_exp_inplace) runs over many rows' worth of ten or so logits. */
enum { CE_CHUNK = 1024 };

static void ce_rows(const bome_node *n, int r0, int r1)
{
    const bome_node *x = n->src[0], *l = n->src[1];
    int C = x->shape.cols;
    if (C > CE_CHUNK) { /* rows too long for the chunk: libm's exp in row_lse */
        for (int i = r0; i < r1; i++) {
            const bome_real *xi = x->data + (size_t)i * C;
            n->data[i] = row_lse(xi, C) - xi[l->labels[i]];
        }
        return;
    }
    bome_real e[CE_CHUNK], m[CE_CHUNK];
    int rows = CE_CHUNK / C;
    for (int c0 = r0, c1; c0 < r1; c0 = c1) {
        c1 = r1 - c0 > rows ? c0 + rows : r1;
        for (int i = c0; i < c1; i++) { /* x - max, as row_lse */
            const bome_real *xi = x->data + (size_t)i * C;
            bome_real *ei = e + (size_t)(i - c0) * C;
            m[i - c0] = row_max(xi, C);
            for (int j = 0; j < C; j++)
                ei[j] = xi[j] - m[i - c0];
        }
        ad_exp_inplace(e, (size_t)(c1 - c0) * C);
        for (int i = c0; i < c1; i++) {
            const bome_real *xi = x->data + (size_t)i * C, *ei = e + (size_t)(i - c0) * C;
            bome_real mi = m[i - c0], s = 0;
            for (int j = 0; j < C; j++)
                s += ei[j];
            /* all -inf stays -inf, +inf stays +inf: row_lse's rule */
            bome_real lse = isinf(mi) ? mi : mi + log(s);
            n->data[i] = lse - xi[l->labels[i]];
        }
    }
}

/* out_i = (softmax(x_i) - onehot(label_i)) dy_i, one exp per element: the
 * exponentials are kept in out and scaled by dy_i / their sum. A row whose
 * maximum is infinite gives NaN, as exp(x - lse) did. */
static void ce_bwd_rows(const bome_node *n, int r0, int r1)
{
    const bome_node *x = n->src[0], *l = n->src[1], *dy = n->src[2];
    int C = x->shape.cols, rows = CE_CHUNK / C > 1 ? CE_CHUNK / C : 1;
    for (int c0 = r0, c1; c0 < r1; c0 = c1) {
        c1 = r1 - c0 > rows ? c0 + rows : r1;
        for (int i = c0; i < c1; i++) { /* x - max into out */
            const bome_real *xi = x->data + (size_t)i * C;
            bome_real *oi = n->data + (size_t)i * C;
            bome_real m = row_max(xi, C);
            for (int j = 0; j < C; j++)
                oi[j] = xi[j] - m;
        }
        ad_exp_inplace(n->data + (size_t)c0 * C, (size_t)(c1 - c0) * C);
        for (int i = c0; i < c1; i++) {
            bome_real *oi = n->data + (size_t)i * C;
            bome_real s = 0, w = dy->data[dy->size == 1 ? 0 : i];
            for (int j = 0; j < C; j++)
                s += oi[j];
            bome_real scale = w / s;
            for (int j = 0; j < C; j++)
                oi[j] *= scale;
            oi[l->labels[i]] -= w;
        }
    }
}

static int ce_forward(bome_graph *g, bome_node *n)
{
    int rc = ad_check_labels(g, n, n->src[1], n->src[0]->shape.cols);
    if (rc)
        return rc;
    if (n->nsrc == 3)
        ce_bwd_rows(n, 0, n->src[0]->shape.rows);
    else
        ce_rows(n, 0, n->src[0]->shape.rows);
    return BOME_OK;
}

static const op_desc op_ce_bwd;

static void ce_backward(bome_graph *g, bome_node *n, bome_node *adj, const bool *need, bome_node **d)
{
    bome_node *x = n->src[0], *l = n->src[1];
    if (n->nsrc == 2) { /* cross_entropy_rows: the fused backward kernel */
        bome_node *src[3] = {x, l, adj};
        if (need[0] && ad_check_labeled(g, "cross_entropy_bwd", 3, src))
            d[0] = ad_node(g, &op_ce_bwd, x->shape, 3, src);
        return;
    }
    /* The fused backward again: out = (s - e_l) dy per row, s = softmax(x). */
    bome_node *dy = n->src[2];
    bome_node *s = bome_softmax(g, x);
    if (need[0]) /* dy_i J_softmax(x_i) adj_i = dy_i s (adj - <adj, s>) */
        d[0] = bome_mul(g, per_row(g, dy), bome_mul(g, s, bome_sub(g, adj, row_sums(g, bome_mul(g, adj, s)))));
    if (need[2]) { /* <adj_i, s_i - e_l> */
        bome_node *v = bome_sub(g, bome_sum_axis(g, bome_mul(g, adj, s), 1), bome_pick(g, adj, l));
        d[2] = v && dy->shape.rank != v->shape.rank ? bome_reshape(g, bome_sum(g, v), dy->shape) : v;
    }
}

/* Tiled: logits and labels by rows; the backward's dy by rows too unless it
 * is one value for all. */
static int ce_tile(const bome_node *n, int R, unsigned *row_srcs)
{
    *row_srcs = 3u | (n->nsrc == 3 && n->src[2]->size != 1 ? 4u : 0u);
    return n->src[0]->shape.rows == R ? TILE_ROW : 0;
}

static int ce_rows_tiled(bome_graph *g, bome_node *n, int r0, int r1, bool first, bome_real *acc)
{
    (void)first;
    (void)acc;
    int rc = ad_check_labels_range(g, n, n->src[1], n->src[0]->shape.cols, (size_t)r0, (size_t)r1);
    if (rc)
        return rc;
    if (n->nsrc == 3)
        ce_bwd_rows(n, r0, r1);
    else
        ce_rows(n, r0, r1);
    return BOME_OK;
}

static const op_desc op_ce = {.name = "cross_entropy", .forward = ce_forward, .backward = ce_backward,
                              .tile = ce_tile, .rows = ce_rows_tiled};
static const op_desc op_ce_bwd = {.name = "cross_entropy_bwd", .forward = ce_forward, .backward = ce_backward,
                                  .tile = ce_tile, .rows = ce_rows_tiled};

bome_node *bome_cross_entropy_rows(bome_graph *g, bome_node *logits, bome_node *labels)
{
    bome_node *src[2] = {logits, labels};
    if (!ad_check_labeled(g, "cross_entropy", 2, src))
        return NULL;
    if (logits->shape.rank != 2 || (int)labels->size != logits->shape.rows) {
        char sx[40];
        ad_error(g, BOME_ERR_SHAPE, "cross_entropy: logits %s with %zu labels: needs a matrix with one row per label",
                 ad_shape_str(logits->shape, sx), labels->size);
        return NULL;
    }
    return ad_node(g, &op_ce, BOME_VECTOR(logits->shape.rows), 2, src);
}

bome_node *bome_cross_entropy(bome_graph *g, bome_node *logits, bome_node *labels)
{
    return bome_mean(g, bome_cross_entropy_rows(g, logits, labels));
}

bome_node *bome_weighted_mean(bome_graph *g, bome_node *x, bome_node *w)
{
    bome_node *src[2] = {x, w};
    if (!ad_check(g, "weighted_mean", 2, src))
        return NULL;
    if (x->size != w->size || x->shape.rank > 1 || w->shape.rank > 1) {
        char sx[40], sw[40];
        ad_error(g, BOME_ERR_SHAPE, "weighted_mean: values %s and weights %s must be vectors of one length",
                 ad_shape_str(x->shape, sx), ad_shape_str(w->shape, sw));
        return NULL;
    }
    return bome_scale(g, bome_dot(g, x, w), 1.0 / (bome_real)x->size);
}
