/* Shape ops: reshape and stop-gradient (views), slice, concat, gather of rows
 * and pick of one element per row, with the scatters that are their adjoints. */
#include "internal.h"

#include <limits.h>
#include <string.h>

/* ---- views ------------------------------------------------------------- */

/* A view's buffer is its source's, from element ip[0] on; pointed at on
 * every run because the source may have been rebound. */
static int view_forward(bome_graph *g, bome_node *n)
{
    (void)g;
    n->data = n->src[0]->data + n->ip[0];
    return BOME_OK;
}

static void reshape_backward(bome_graph *g, bome_node *n, bome_node *dy, const bool *need, bome_node **d)
{
    (void)need;
    d[0] = bome_reshape(g, dy, n->src[0]->shape);
}

static const op_desc op_reshape = {.name = "reshape", .forward = view_forward, .backward = reshape_backward, .view = true};
/* No backward: the grad builder neither enters nor looks through it. */
static const op_desc op_stop_gradient = {.name = "stop_gradient", .forward = view_forward, .backward = NULL, .view = true};

static bome_node *view(bome_graph *g, const op_desc *op, bome_node *x, bome_shape s, int offset)
{
    bome_node *n = ad_node(g, op, s, 1, &x);
    if (n) {
        n->ip[0] = offset;
        n->data = x->data + offset; /* readable before the first run too */
    }
    return n;
}

bome_node *bome_reshape(bome_graph *g, bome_node *x, bome_shape shape)
{
    if (!ad_check(g, "reshape", 1, &x))
        return NULL;
    size_t size = (size_t)shape.rows * (size_t)shape.cols;
    bool ok = (shape.rank == 0 && shape.rows == 1 && shape.cols == 1) ||
              (shape.rank == 1 && shape.rows == 1 && shape.cols >= 1) ||
              (shape.rank == 2 && shape.rows >= 1 && shape.cols >= 1);
    if (!ok || size != x->size) {
        char sx[40], ss[40];
        ad_error(g, BOME_ERR_SHAPE, "reshape: %s cannot become %s", ad_shape_str(x->shape, sx),
                 ok ? ad_shape_str(shape, ss) : "an invalid shape");
        return NULL;
    }
    return view(g, &op_reshape, x, shape, 0);
}

bome_node *ad_as_column(bome_graph *g, bome_node *v)
{
    return v ? bome_reshape(g, v, BOME_MATRIX((int)v->size, 1)) : NULL;
}

bome_node *bome_stop_gradient(bome_graph *g, bome_node *x)
{
    if (!ad_check(g, "stop_gradient", 1, &x))
        return NULL;
    return view(g, &op_stop_gradient, x, x->shape, 0);
}

/* ---- slice and its adjoint, embed --------------------------------------- */

/* Copies the block [r0, r0+R) x [c0, c0+C) between a wide and a narrow
 * matrix in either direction. */
static void copy_block(bome_real *dst, int dst_ld, const bome_real *src, int src_ld, int R, int C)
{
    for (int i = 0; i < R; i++)
        memcpy(dst + (size_t)i * dst_ld, src + (size_t)i * src_ld, (size_t)C * sizeof(bome_real));
}

static int slice_cols_forward(bome_graph *g, bome_node *n)
{
    (void)g;
    const bome_node *x = n->src[0];
    copy_block(n->data, n->shape.cols, x->data + n->ip[1], x->shape.cols, n->shape.rows, n->shape.cols);
    return BOME_OK;
}

/* ip[0] axis, ip[1] begin, ip[2] end: the same for slice and embed. */
static void slice_backward(bome_graph *g, bome_node *n, bome_node *dy, const bool *need, bome_node **d)
{
    (void)need;
    d[0] = ad_embed(g, dy, n->src[0]->shape, n->ip[2], n->ip[1]);
}

static const op_desc op_slice_view = {.name = "slice", .forward = view_forward, .backward = slice_backward, .view = true};
static const op_desc op_slice_cols = {.name = "slice", .forward = slice_cols_forward, .backward = slice_backward, .view = false};

bome_node *bome_slice(bome_graph *g, bome_node *x, int axis, int begin, int end)
{
    if (!ad_check(g, "slice", 1, &x))
        return NULL;
    bool vec = x->shape.rank < 2;
    int len = vec ? x->shape.cols : (axis == 0 ? x->shape.rows : x->shape.cols);
    if ((axis != 0 && axis != 1) || begin < 0 || end > len || begin >= end) {
        char sx[40];
        ad_error(g, BOME_ERR_ARG, "slice: [%d, %d) along axis %d of %s is empty or out of range", begin, end, axis,
                 ad_shape_str(x->shape, sx));
        return NULL;
    }
    bome_node *n;
    if (vec)
        n = view(g, &op_slice_view, x, BOME_VECTOR(end - begin), begin);
    else if (axis == 0) /* whole rows are contiguous: a view */
        n = view(g, &op_slice_view, x, BOME_MATRIX(end - begin, x->shape.cols), begin * x->shape.cols);
    else
        n = ad_node(g, &op_slice_cols, BOME_MATRIX(x->shape.rows, end - begin), 1, &x);
    if (n) {
        n->ip[1] = begin;
        n->ip[2] = vec ? 1 : axis; /* embed's axis: a vector's elements are its columns */
    }
    return n;
}

static int embed_forward(bome_graph *g, bome_node *n)
{
    (void)g;
    const bome_node *dy = n->src[0];
    memset(n->data, 0, n->size * sizeof(bome_real));
    int C = n->shape.cols, begin = n->ip[1];
    if (n->ip[2] == 0)
        memcpy(n->data + (size_t)begin * C, dy->data, dy->size * sizeof(bome_real));
    else
        copy_block(n->data + begin, C, dy->data, dy->shape.cols, n->shape.rows, dy->shape.cols);
    return BOME_OK;
}

static void embed_backward(bome_graph *g, bome_node *n, bome_node *adj, const bool *need, bome_node **d)
{
    (void)need;
    int axis = n->ip[2], begin = n->ip[1];
    bome_node *s = bome_slice(g, adj, axis, begin, begin + (axis == 0 ? n->src[0]->shape.rows : n->src[0]->shape.cols));
    d[0] = s && s->shape.rank != n->src[0]->shape.rank ? bome_reshape(g, s, n->src[0]->shape) : s;
}

static const op_desc op_embed = {.name = "embed", .forward = embed_forward, .backward = embed_backward, .view = false};

/* dy (one block of full) placed at begin along axis, zeros elsewhere. */
bome_node *ad_embed(bome_graph *g, bome_node *dy, bome_shape full, int axis, int begin)
{
    if (!ad_check(g, "embed", 1, &dy))
        return NULL;
    bome_node *n = ad_node(g, &op_embed, full, 1, &dy);
    if (n) {
        n->ip[1] = begin;
        n->ip[2] = full.rank < 2 ? 1 : axis;
    }
    return n;
}

/* ---- concat ---------------------------------------------------------------- */

bome_node *bome_concat(bome_graph *g, bome_node *a, bome_node *b, int axis)
{
    bome_node *src[2] = {a, b};
    if (!ad_check(g, "concat", 2, src))
        return NULL;
    bool vecs = a->shape.rank < 2 && b->shape.rank < 2;
    bool down = !vecs && axis == 0; /* stacking rows */
    /* In 64 bits: two large halves overflow an int. */
    int64_t joined = down ? (int64_t)a->shape.rows + b->shape.rows : (int64_t)a->shape.cols + b->shape.cols;
    int len = joined > INT_MAX ? -1 : (int)joined;
    bome_shape s;
    if (vecs && (axis == 0 || axis == 1))
        s = BOME_VECTOR(len);
    else if (axis == 0 && a->shape.cols == b->shape.cols)
        s = BOME_MATRIX(len, a->shape.cols);
    else if (axis == 1 && a->shape.rows == b->shape.rows)
        s = BOME_MATRIX(a->shape.rows, len);
    else {
        char sa[40], sb[40];
        ad_error(g, axis == 0 || axis == 1 ? BOME_ERR_SHAPE : BOME_ERR_ARG, "concat: %s and %s do not join along axis %d",
                 ad_shape_str(a->shape, sa), ad_shape_str(b->shape, sb), axis);
        return NULL;
    }
    if (len < 0) {
        char sa[40], sb[40];
        ad_error(g, BOME_ERR_ARG, "concat: %s and %s joined along axis %d: more than %d %s", ad_shape_str(a->shape, sa),
                 ad_shape_str(b->shape, sb), axis, INT_MAX, down ? "rows" : "columns");
        return NULL;
    }
    if (!ad_size_ok(g, "concat", NULL, s))
        return NULL;
    if (vecs)
        axis = 1;
    /* Built from embeds so that its gradient is slices: one op fewer to test. */
    bome_node *ea = ad_embed(g, a, s, axis, 0);
    bome_node *eb = ad_embed(g, b, s, axis, axis == 0 ? a->shape.rows : a->shape.cols);
    return bome_add(g, ea, eb);
}

/* ---- gather of rows and its adjoint, scatter-add ------------------------------- */

/* A vector is a column of elements here: one "row" per element. */
static int unit_of(const bome_node *x) { return x->shape.rank < 2 ? 1 : x->shape.cols; }
static int count_of(const bome_node *x) { return x->shape.rank < 2 ? (int)x->size : x->shape.rows; }

static int gather_forward(bome_graph *g, bome_node *n)
{
    const bome_node *x = n->src[0], *idx = n->src[1];
    int rc = ad_check_labels(g, n, idx, count_of(x));
    if (rc)
        return rc;
    int u = unit_of(x);
    for (size_t r = 0; r < idx->size; r++)
        memcpy(n->data + r * u, x->data + (size_t)idx->labels[r] * u, (size_t)u * sizeof(bome_real));
    return BOME_OK;
}

static int scatter_forward(bome_graph *g, bome_node *n)
{
    const bome_node *dy = n->src[0], *idx = n->src[1];
    int rc = ad_check_labels(g, n, idx, count_of(n));
    if (rc)
        return rc;
    int u = unit_of(n);
    memset(n->data, 0, n->size * sizeof(bome_real));
    for (size_t r = 0; r < idx->size; r++) {
        bome_real *dst = n->data + (size_t)idx->labels[r] * u;
        for (int j = 0; j < u; j++)
            dst[j] += dy->data[r * u + j];
    }
    return BOME_OK;
}

static void gather_backward(bome_graph *g, bome_node *n, bome_node *dy, const bool *need, bome_node **d)
{
    if (need[0])
        d[0] = ad_scatter_rows(g, dy, n->src[1], count_of(n->src[0]));
}

static void scatter_backward(bome_graph *g, bome_node *n, bome_node *adj, const bool *need, bome_node **d)
{
    if (need[0])
        d[0] = bome_gather_rows(g, adj, n->src[1]);
}

static const op_desc op_gather = {.name = "gather_rows", .forward = gather_forward, .backward = gather_backward, .view = false};
static const op_desc op_scatter = {.name = "scatter_rows", .forward = scatter_forward, .backward = scatter_backward, .view = false};

bome_node *bome_gather_rows(bome_graph *g, bome_node *x, bome_node *idx)
{
    bome_node *src[2] = {x, idx};
    if (!ad_check_labeled(g, "gather_rows", 2, src))
        return NULL;
    bome_shape s = x->shape.rank < 2 ? BOME_VECTOR((int)idx->size) : BOME_MATRIX((int)idx->size, x->shape.cols);
    return ad_node(g, &op_gather, s, 2, src);
}

bome_node *ad_scatter_rows(bome_graph *g, bome_node *dy, bome_node *idx, int rows)
{
    bome_node *src[2] = {dy, idx};
    if (!ad_check_labeled(g, "scatter_rows", 2, src))
        return NULL;
    bome_shape s = dy->shape.rank < 2 ? BOME_VECTOR(rows) : BOME_MATRIX(rows, dy->shape.cols);
    return ad_node(g, &op_scatter, s, 2, src);
}

/* ---- pick of one element per row and its adjoint ---------------------------- */

static int pick_forward(bome_graph *g, bome_node *n)
{
    const bome_node *x = n->src[0], *l = n->src[1];
    int rc = ad_check_labels(g, n, l, x->shape.cols);
    if (rc)
        return rc;
    int C = x->shape.cols;
    for (size_t i = 0; i < l->size; i++)
        n->data[i] = x->data[i * C + l->labels[i]];
    return BOME_OK;
}

static int pick_bwd_forward(bome_graph *g, bome_node *n)
{
    const bome_node *dy = n->src[0], *l = n->src[1];
    int rc = ad_check_labels(g, n, l, n->shape.cols);
    if (rc)
        return rc;
    int C = n->shape.cols;
    memset(n->data, 0, n->size * sizeof(bome_real));
    for (size_t i = 0; i < l->size; i++)
        n->data[i * C + l->labels[i]] = dy->data[i];
    return BOME_OK;
}

static void pick_backward(bome_graph *g, bome_node *n, bome_node *dy, const bool *need, bome_node **d)
{
    if (need[0])
        d[0] = ad_pick_bwd(g, dy, n->src[1], n->src[0]->shape);
}

static void pick_bwd_backward(bome_graph *g, bome_node *n, bome_node *adj, const bool *need, bome_node **d)
{
    if (need[0])
        d[0] = bome_pick(g, adj, n->src[1]);
}

static const op_desc op_pick = {.name = "pick", .forward = pick_forward, .backward = pick_backward, .view = false};
static const op_desc op_pick_bwd = {.name = "pick_bwd", .forward = pick_bwd_forward, .backward = pick_bwd_backward, .view = false};

bome_node *bome_pick(bome_graph *g, bome_node *x, bome_node *labels)
{
    bome_node *src[2] = {x, labels};
    if (!ad_check_labeled(g, "pick", 2, src))
        return NULL;
    if (x->shape.rank != 2 || (int)labels->size != x->shape.rows) {
        char sx[40];
        ad_error(g, BOME_ERR_SHAPE, "pick: %s with %zu labels: needs a matrix with one row per label",
                 ad_shape_str(x->shape, sx), labels->size);
        return NULL;
    }
    return ad_node(g, &op_pick, BOME_VECTOR(x->shape.rows), 2, src);
}

bome_node *ad_pick_bwd(bome_graph *g, bome_node *dy, bome_node *labels, bome_shape full)
{
    bome_node *src[2] = {dy, labels};
    if (!ad_check_labeled(g, "pick_bwd", 2, src))
        return NULL;
    return ad_node(g, &op_pick_bwd, full, 2, src);
}
