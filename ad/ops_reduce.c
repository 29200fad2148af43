/* Reductions (sum, mean, dot, squared norm, max) and the broadcast that is
 * their adjoint. A reduction names the dimensions it folds with two bits:
 * RED_ROWS sums down each column, RED_COLS along each row. */
#include "internal.h"

#include <math.h>

enum { RED_ROWS = 1, RED_COLS = 2, RED_ALL = 3 };

static int reduce_forward(bome_graph *g, bome_node *n)
{
    (void)g;
    const bome_node *x = n->src[0];
    const bome_real *xd = x->data;
    bome_real *y = n->data;
    int R = x->shape.rows, C = x->shape.cols;
    switch (n->ip[0]) {
    case RED_ALL: {
        bome_real s = 0;
        for (size_t i = 0; i < x->size; i++)
            s += xd[i];
        y[0] = s;
        break;
    }
    case RED_ROWS:
        for (int j = 0; j < C; j++)
            y[j] = 0;
        for (int i = 0; i < R; i++)
            for (int j = 0; j < C; j++)
                y[j] += xd[(size_t)i * C + j];
        break;
    case RED_COLS:
        for (int i = 0; i < R; i++) {
            bome_real s = 0;
            for (int j = 0; j < C; j++)
                s += xd[(size_t)i * C + j];
            y[i] = s;
        }
        break;
    default: /* nothing folded: a copy */
        for (size_t i = 0; i < x->size; i++)
            y[i] = xd[i];
    }
    return BOME_OK;
}

static int expand_forward(bome_graph *g, bome_node *n)
{
    (void)g;
    const bome_real *x = n->src[0]->data;
    bome_real *y = n->data;
    int R = n->shape.rows, C = n->shape.cols, f = n->ip[0];
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++) {
            size_t src = (f & RED_ROWS ? 0 : (size_t)i * (f & RED_COLS ? 1 : (size_t)C)) + (f & RED_COLS ? 0 : (size_t)j);
            y[(size_t)i * C + j] = x[src];
        }
    return BOME_OK;
}

static bome_node *reduce_node(bome_graph *g, bome_node *x, int flags, bome_shape out);
static bome_node *expand_node(bome_graph *g, bome_node *x, int flags, bome_shape out);

static void reduce_backward(bome_graph *g, bome_node *n, bome_node *dy, const bool *need, bome_node **d)
{
    (void)need;
    d[0] = expand_node(g, dy, n->ip[0], n->src[0]->shape);
}

static void expand_backward(bome_graph *g, bome_node *n, bome_node *dy, const bool *need, bome_node **d)
{
    (void)need;
    d[0] = reduce_node(g, dy, n->ip[0], n->src[0]->shape);
}

/* Tiled: summing down the rows of an R-row source accumulates block by
 * block; summing along each row is a row op. */
static int reduce_tile(const bome_node *n, int R, unsigned *row_srcs)
{
    const bome_node *x = n->src[0];
    *row_srcs = 1;
    if (ad_row_count(x) != R)
        return 0;
    if (n->ip[0] == RED_ALL || (n->ip[0] == RED_ROWS && x->shape.rank == 2))
        return TILE_REDUCE;
    return ad_row_count(n) == R ? TILE_ROW : 0;
}

static int reduce_rows(bome_graph *g, bome_node *n, int r0, int r1, bool first, bome_real *acc)
{
    (void)g;
    const bome_node *x = n->src[0];
    size_t C = x->shape.rank == 2 ? (size_t)x->shape.cols : 1;
    const bome_real *xd = x->data;
    bome_real *y = n->data;
    switch (n->ip[0]) {
    case RED_ALL: {
        bome_real s = 0;
        for (size_t i = (size_t)r0 * C; i < (size_t)r1 * C; i++)
            s += xd[i];
        acc[0] = first ? s : acc[0] + s;
        break;
    }
    case RED_ROWS:
        if (first)
            for (size_t j = 0; j < C; j++)
                acc[j] = 0;
        for (int i = r0; i < r1; i++)
            for (size_t j = 0; j < C; j++)
                acc[j] += xd[(size_t)i * C + j];
        break;
    case RED_COLS:
        for (int i = r0; i < r1; i++) {
            bome_real s = 0;
            for (size_t j = 0; j < C; j++)
                s += xd[(size_t)i * C + j];
            y[i] = s;
        }
        break;
    default:
        for (size_t i = (size_t)r0 * C; i < (size_t)r1 * C; i++)
            y[i] = xd[i];
    }
    return BOME_OK;
}

/* Tiled: an R-row output; the source is read by rows unless it is one row
 * repeated down (or one value). */
static int expand_tile(const bome_node *n, int R, unsigned *row_srcs)
{
    *row_srcs = n->ip[0] & RED_ROWS ? 0 : 1;
    return n->shape.rank == 2 && n->shape.rows == R ? TILE_ROW : 0;
}

static int expand_rows(bome_graph *g, bome_node *n, int r0, int r1, bool first, bome_real *acc)
{
    (void)g;
    (void)first;
    (void)acc;
    const bome_real *x = n->src[0]->data;
    int C = n->shape.cols, f = n->ip[0];
    for (int i = r0; i < r1; i++)
        for (int j = 0; j < C; j++) {
            size_t src = (f & RED_ROWS ? 0 : (size_t)i * (f & RED_COLS ? 1 : (size_t)C)) + (f & RED_COLS ? 0 : (size_t)j);
            n->data[(size_t)i * C + j] = x[src];
        }
    return BOME_OK;
}

static const op_desc op_sum = {.name = "sum", .forward = reduce_forward, .backward = reduce_backward,
                               .tile = reduce_tile, .rows = reduce_rows};
static const op_desc op_broadcast = {.name = "broadcast", .forward = expand_forward, .backward = expand_backward,
                                     .tile = expand_tile, .rows = expand_rows};

static bome_node *reduce_node(bome_graph *g, bome_node *x, int flags, bome_shape out)
{
    if (!ad_check(g, "sum", 1, &x))
        return NULL;
    bome_node *n = ad_node(g, &op_sum, out, 1, &x);
    if (n)
        n->ip[0] = flags;
    return n;
}

static bome_node *expand_node(bome_graph *g, bome_node *x, int flags, bome_shape out)
{
    if (!ad_check(g, "broadcast", 1, &x))
        return NULL;
    bome_node *n = ad_node(g, &op_broadcast, out, 1, &x);
    if (n)
        n->ip[0] = flags;
    return n;
}

/* The dimensions of big that small (broadcastable to it) lacks. */
static int folded(bome_shape big, bome_shape small)
{
    return (small.rows == 1 && big.rows != 1 ? RED_ROWS : 0) | (small.cols == 1 && big.cols != 1 ? RED_COLS : 0);
}

bome_node *ad_sum_to(bome_graph *g, bome_node *dy, bome_shape target)
{
    if (!dy)
        return NULL;
    if (ad_shape_eq(dy->shape, target))
        return dy;
    int f = folded(dy->shape, target);
    return f ? reduce_node(g, dy, f, target) : bome_reshape(g, dy, target);
}

bome_node *ad_broadcast(bome_graph *g, bome_node *x, bome_shape shape)
{
    if (!x)
        return NULL;
    if (ad_shape_eq(x->shape, shape))
        return x;
    int f = folded(shape, x->shape);
    return f ? expand_node(g, x, f, shape) : bome_reshape(g, x, shape);
}

bome_node *bome_sum(bome_graph *g, bome_node *x) { return reduce_node(g, x, RED_ALL, BOME_SCALAR); }

bome_node *bome_mean(bome_graph *g, bome_node *x)
{
    if (!ad_check(g, "mean", 1, &x))
        return NULL;
    bome_node *s = bome_sum(g, x);
    return s ? bome_scale(g, s, 1.0 / (bome_real)x->size) : NULL;
}

static bool check_axis(bome_graph *g, const char *op, bome_node *x, int axis)
{
    if (!ad_check(g, op, 1, &x))
        return false;
    if (axis != 0 && axis != 1) {
        ad_error(g, BOME_ERR_ARG, "%s: axis %d is neither 0 (over rows) nor 1 (over columns)", op, axis);
        return false;
    }
    return true;
}

static bome_shape axis_shape(bome_node *x, int axis)
{
    return BOME_VECTOR(axis == 0 ? x->shape.cols : x->shape.rows);
}

bome_node *bome_sum_axis(bome_graph *g, bome_node *x, int axis)
{
    if (!check_axis(g, "sum_axis", x, axis))
        return NULL;
    return reduce_node(g, x, axis == 0 ? RED_ROWS : RED_COLS, axis_shape(x, axis));
}

bome_node *bome_mean_axis(bome_graph *g, bome_node *x, int axis)
{
    if (!check_axis(g, "mean_axis", x, axis))
        return NULL;
    bome_node *s = bome_sum_axis(g, x, axis);
    return s ? bome_scale(g, s, 1.0 / (axis == 0 ? x->shape.rows : x->shape.cols)) : NULL;
}

/* ---- dot and squared norm -------------------------------------------------- */

static int dot_forward(bome_graph *g, bome_node *n)
{
    (void)g;
    const bome_real *a = n->src[0]->data, *b = n->src[n->nsrc - 1]->data;
    bome_real s = 0;
    for (size_t i = 0; i < n->src[0]->size; i++)
        s += a[i] * b[i];
    n->data[0] = s;
    return BOME_OK;
}

static void dot_backward(bome_graph *g, bome_node *n, bome_node *dy, const bool *need, bome_node **d)
{
    if (n->nsrc == 1) { /* sumsq: 2 x dy */
        d[0] = bome_mul(g, n->src[0], bome_scale(g, dy, 2.0));
        return;
    }
    if (need[0]) d[0] = bome_mul(g, n->src[1], dy);
    if (need[1]) d[1] = bome_mul(g, n->src[0], dy);
}

static int dot_tile(const bome_node *n, int R, unsigned *row_srcs)
{
    *row_srcs = (1u << n->nsrc) - 1;
    return ad_row_count(n->src[0]) == R && ad_row_count(n->src[n->nsrc - 1]) == R ? TILE_REDUCE : 0;
}

static int dot_rows(bome_graph *g, bome_node *n, int r0, int r1, bool first, bome_real *acc)
{
    (void)g;
    const bome_node *x = n->src[0];
    size_t C = x->shape.rank == 2 ? (size_t)x->shape.cols : 1;
    const bome_real *a = x->data, *b = n->src[n->nsrc - 1]->data;
    bome_real s = 0;
    for (size_t i = (size_t)r0 * C; i < (size_t)r1 * C; i++)
        s += a[i] * b[i];
    acc[0] = first ? s : acc[0] + s;
    return BOME_OK;
}

static const op_desc op_dot = {.name = "dot", .forward = dot_forward, .backward = dot_backward, .tile = dot_tile,
                               .rows = dot_rows};
static const op_desc op_sumsq = {.name = "sumsq", .forward = dot_forward, .backward = dot_backward,
                                 .tile = dot_tile, .rows = dot_rows};

bome_node *bome_dot(bome_graph *g, bome_node *a, bome_node *b)
{
    bome_node *src[2] = {a, b};
    if (!ad_check(g, "dot", 2, src))
        return NULL;
    if (a->shape.rows != b->shape.rows || a->shape.cols != b->shape.cols) {
        char sa[40], sb[40];
        ad_error(g, BOME_ERR_SHAPE, "dot: shapes %s and %s differ", ad_shape_str(a->shape, sa),
                 ad_shape_str(b->shape, sb));
        return NULL;
    }
    return ad_node(g, &op_dot, BOME_SCALAR, 2, src);
}

bome_node *bome_sumsq(bome_graph *g, bome_node *x)
{
    if (!ad_check(g, "sumsq", 1, &x))
        return NULL;
    return ad_node(g, &op_sumsq, BOME_SCALAR, 1, &x);
}

/* ---- max, and the argmax scatter / pick pair that is its adjoint ------------- */

/* Segment k of x under flags: where it starts, how many, the stride. */
static void segment(const bome_node *x, int flags, int k, size_t *start, int *count, size_t *stride)
{
    int R = x->shape.rows, C = x->shape.cols;
    if (flags == RED_ALL) { *start = 0; *count = (int)x->size; *stride = 1; }
    else if (flags == RED_ROWS) { *start = (size_t)k; *count = R; *stride = (size_t)C; }
    else { *start = (size_t)k * C; *count = C; *stride = 1; }
}

static int segments(const bome_node *x, int flags)
{
    return flags == RED_ALL ? 1 : (flags == RED_ROWS ? x->shape.cols : x->shape.rows);
}

static size_t seg_argmax(const bome_node *x, int flags, int k)
{
    size_t start, stride;
    int count;
    segment(x, flags, k, &start, &count, &stride);
    size_t best = start;
    for (int i = 1; i < count; i++) {
        size_t at = start + (size_t)i * stride;
        if (x->data[at] > x->data[best] || isnan(x->data[at]))
            best = at;
    }
    return best;
}

enum { ARG_MAX, ARG_SCATTER, ARG_PICK };

static int arg_forward(bome_graph *g, bome_node *n)
{
    (void)g;
    const bome_node *x = n->src[0];
    int f = n->ip[0], kind = n->ip[1], K = segments(x, f);
    if (kind == ARG_SCATTER)
        for (size_t i = 0; i < n->size; i++)
            n->data[i] = 0;
    for (int k = 0; k < K; k++) {
        size_t at = seg_argmax(x, f, k);
        if (kind == ARG_MAX)
            n->data[k] = x->data[at];
        else if (kind == ARG_SCATTER)
            n->data[at] = n->src[1]->data[k];
        else
            n->data[k] = n->src[1]->data[at];
    }
    return BOME_OK;
}

static void arg_backward(bome_graph *g, bome_node *n, bome_node *dy, const bool *need, bome_node **d)
{
    int f = n->ip[0];
    if (n->ip[1] == ARG_MAX) {
        d[0] = ad_arg_scatter(g, n->src[0], dy, f);
        return;
    }
    /* Both are linear in src[1] and piecewise constant in x. */
    if (need[1])
        d[1] = n->ip[1] == ARG_SCATTER ? ad_arg_pick(g, n->src[0], dy, f) : ad_arg_scatter(g, n->src[0], dy, f);
}

static const op_desc op_max = {.name = "max", .forward = arg_forward, .backward = arg_backward, .view = false};
static const op_desc op_arg_scatter = {.name = "argmax_scatter", .forward = arg_forward, .backward = arg_backward, .view = false};
static const op_desc op_arg_pick = {.name = "argmax_pick", .forward = arg_forward, .backward = arg_backward, .view = false};

static bome_node *arg_node(bome_graph *g, const op_desc *op, int kind, int flags, bome_shape s, int nsrc, bome_node **src)
{
    if (!ad_check(g, op->name, nsrc, src))
        return NULL;
    bome_node *n = ad_node(g, op, s, nsrc, src);
    if (n) {
        n->ip[0] = flags;
        n->ip[1] = kind;
    }
    return n;
}

bome_node *bome_max(bome_graph *g, bome_node *x)
{
    return arg_node(g, &op_max, ARG_MAX, RED_ALL, BOME_SCALAR, 1, &x);
}

bome_node *bome_max_axis(bome_graph *g, bome_node *x, int axis)
{
    if (!check_axis(g, "max_axis", x, axis))
        return NULL;
    return arg_node(g, &op_max, ARG_MAX, axis == 0 ? RED_ROWS : RED_COLS, axis_shape(x, axis), 1, &x);
}

bome_node *ad_arg_scatter(bome_graph *g, bome_node *x, bome_node *dy, int flags)
{
    bome_node *src[2] = {x, dy};
    return arg_node(g, &op_arg_scatter, ARG_SCATTER, flags, x ? x->shape : BOME_SCALAR, 2, src);
}

bome_node *ad_arg_pick(bome_graph *g, bome_node *x, bome_node *v, int flags)
{
    bome_node *src[2] = {x, v};
    bome_shape s = BOME_SCALAR;
    if (x && flags != RED_ALL)
        s = BOME_VECTOR(segments(x, flags));
    return arg_node(g, &op_arg_pick, ARG_PICK, flags, s, 2, src);
}
