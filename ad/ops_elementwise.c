/* Element-wise ops: broadcasting binary ops, unary maps, and the fused
 * element-wise backward kernels their reverse rules use. */
#include "internal.h"

/* Type-generic: in the float32 build exp, log, tanh, ... of a float are
 * expf, logf, tanhf, ... rather than double calls at double's price. */
#include <tgmath.h>

/* Elements [lo, hi) that rows [r0, r1) of n cover: a matrix's rows, or a
 * vector's elements (each element is a row for tiling). */
static void elem_range(const bome_node *n, int r0, int r1, size_t *lo, size_t *hi)
{
    size_t unit = n->shape.rank == 2 ? (size_t)n->shape.cols : 1;
    *lo = (size_t)r0 * unit;
    *hi = (size_t)r1 * unit;
}

/* A map whose every source has n's shape: all sources are row sources. */
static int same_rows_tile(const bome_node *n, int R, unsigned *row_srcs)
{
    *row_srcs = (1u << n->nsrc) - 1;
    return ad_row_count(n) == R ? TILE_ROW : 0;
}

/* ---- broadcasting binary ops ------------------------------------------- */

enum bin_kind { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV };

#define BIN_ROW(EXPR)                                                              \
    do {                                                                           \
        if (sa && sb)                                                              \
            for (int j = 0; j < cols; j++) { bome_real x = a[j], z = b[j]; y[j] = EXPR; } \
        else if (sa)                                                               \
            for (int j = 0; j < cols; j++) { bome_real x = a[j], z = b[0]; y[j] = EXPR; } \
        else if (sb)                                                               \
            for (int j = 0; j < cols; j++) { bome_real x = a[0], z = b[j]; y[j] = EXPR; } \
        else                                                                       \
            for (int j = 0; j < cols; j++) { bome_real x = a[0], z = b[0]; y[j] = EXPR; } \
    } while (0)

/* One output row: sa/sb say whether a and b advance along the row. */
static void bin_row(int kind, const bome_real *a, int sa, const bome_real *b, int sb, bome_real *y, int cols)
{
    switch (kind) {
    case BIN_ADD: BIN_ROW(x + z); break;
    case BIN_SUB: BIN_ROW(x - z); break;
    case BIN_MUL: BIN_ROW(x * z); break;
    default: BIN_ROW(x / z); break;
    }
}

static void bin_rows(const bome_node *n, int r0, int r1)
{
    const bome_node *a = n->src[0], *b = n->src[1];
    int cols = n->shape.cols;
    int sa = a->shape.cols != 1 || cols == 1, sb = b->shape.cols != 1 || cols == 1;
    if (a->size == n->size && b->size == n->size) { /* no broadcast: one flat row */
        size_t off = (size_t)r0 * cols;
        bin_row(n->ip[0], a->data + off, 1, b->data + off, 1, n->data + off, (r1 - r0) * cols);
        return;
    }
    for (int i = r0; i < r1; i++) {
        const bome_real *pa = a->data + (a->shape.rows == 1 ? 0 : (size_t)i * a->shape.cols);
        const bome_real *pb = b->data + (b->shape.rows == 1 ? 0 : (size_t)i * b->shape.cols);
        bin_row(n->ip[0], pa, sa, pb, sb, n->data + (size_t)i * cols, cols);
    }
}

static int bin_forward(bome_graph *g, bome_node *n)
{
    (void)g;
    if (n->size == 1) { /* scalar: both sources hold one value too */
        bome_real x = n->src[0]->data[0], z = n->src[1]->data[0];
        switch (n->ip[0]) {
        case BIN_ADD: n->data[0] = x + z; break;
        case BIN_SUB: n->data[0] = x - z; break;
        case BIN_MUL: n->data[0] = x * z; break;
        default: n->data[0] = x / z; break;
        }
        return BOME_OK;
    }
    bin_rows(n, 0, n->shape.rows);
    return BOME_OK;
}

static void bin_backward(bome_graph *g, bome_node *n, bome_node *dy, const bool *need, bome_node **d)
{
    bome_node *a = n->src[0], *b = n->src[1];
    switch (n->ip[0]) {
    case BIN_ADD:
        if (need[0]) d[0] = ad_sum_to(g, dy, a->shape);
        if (need[1]) d[1] = ad_sum_to(g, dy, b->shape);
        break;
    case BIN_SUB:
        if (need[0]) d[0] = ad_sum_to(g, dy, a->shape);
        if (need[1]) d[1] = bome_neg(g, ad_sum_to(g, dy, b->shape));
        break;
    case BIN_MUL:
        if (need[0]) d[0] = ad_sum_to(g, bome_mul(g, dy, b), a->shape);
        if (need[1]) d[1] = ad_sum_to(g, bome_mul(g, dy, a), b->shape);
        break;
    default: /* y = a / b: dy/b for a, -dy y / b for b */
        if (need[0]) d[0] = ad_sum_to(g, bome_div(g, dy, b), a->shape);
        if (need[1]) d[1] = bome_neg(g, ad_sum_to(g, bome_div(g, bome_mul(g, dy, n), b), b->shape));
        break;
    }
}

/* A source with n's rows is read block by block; a broadcast one (one row,
 * or one value for a vector) whole. */
static int bin_tile(const bome_node *n, int R, unsigned *row_srcs)
{
    if (ad_row_count(n) != R)
        return 0;
    *row_srcs = 0;
    for (int s = 0; s < 2; s++) {
        const bome_node *x = n->src[s];
        bool rows = n->shape.rank == 2 ? x->shape.rows == n->shape.rows : x->size == n->size;
        if (rows)
            *row_srcs |= 1u << s;
        else if (n->shape.rank < 2 && x->size != 1)
            return 0;
    }
    return TILE_ROW;
}

static int bin_rows_tiled(bome_graph *g, bome_node *n, int r0, int r1, bool first, bome_real *acc)
{
    (void)g;
    (void)first;
    (void)acc;
    if (n->shape.rank == 2) {
        bin_rows(n, r0, r1);
        return BOME_OK;
    }
    const bome_node *a = n->src[0], *b = n->src[1];
    int sa = a->size != 1, sb = b->size != 1;
    bin_row(n->ip[0], a->data + (sa ? r0 : 0), sa, b->data + (sb ? r0 : 0), sb, n->data + r0, r1 - r0);
    return BOME_OK;
}

#define BIN_DESC(id, opname)                                                                                   \
    static const op_desc id = {.name = opname, .forward = bin_forward, .backward = bin_backward, .tile = bin_tile, \
                               .rows = bin_rows_tiled}
BIN_DESC(op_add, "add");
BIN_DESC(op_sub, "sub");
BIN_DESC(op_mul, "mul");
BIN_DESC(op_div, "div");

static bool broadcast_dim(int a, int b, int *out)
{
    if (a == b || b == 1) { *out = a; return true; }
    if (a == 1) { *out = b; return true; }
    return false;
}

static bome_node *binary(bome_graph *g, const op_desc *op, int kind, bome_node *a, bome_node *b)
{
    bome_node *src[2] = {a, b};
    if (!ad_check(g, op->name, 2, src))
        return NULL;
    bome_shape s;
    s.rank = a->shape.rank > b->shape.rank ? a->shape.rank : b->shape.rank;
    if (!broadcast_dim(a->shape.rows, b->shape.rows, &s.rows) ||
        !broadcast_dim(a->shape.cols, b->shape.cols, &s.cols)) {
        char sa[40], sb[40];
        ad_error(g, BOME_ERR_SHAPE, "%s: shapes %s and %s do not broadcast", op->name,
                 ad_shape_str(a->shape, sa), ad_shape_str(b->shape, sb));
        return NULL;
    }
    if (s.rank < 2 && s.rows != 1) /* a vector against a column: a matrix */
        s.rank = 2;
    if (s.rank == 0 && s.cols != 1)
        s.rank = 1;
    bome_node *n = ad_node(g, op, s, 2, src);
    if (n)
        n->ip[0] = kind;
    return n;
}

bome_node *bome_add(bome_graph *g, bome_node *a, bome_node *b) { return binary(g, &op_add, BIN_ADD, a, b); }
bome_node *bome_sub(bome_graph *g, bome_node *a, bome_node *b) { return binary(g, &op_sub, BIN_SUB, a, b); }
bome_node *bome_mul(bome_graph *g, bome_node *a, bome_node *b) { return binary(g, &op_mul, BIN_MUL, a, b); }
bome_node *bome_div(bome_graph *g, bome_node *a, bome_node *b) { return binary(g, &op_div, BIN_DIV, a, b); }

/* ---- unary maps ----------------------------------------------------------- */

enum un_kind { UN_NEG, UN_AFFINE, UN_POW, UN_EXP, UN_LOG, UN_SQRT, UN_ABS, UN_SQUARE,
               UN_TANH, UN_SIGMOID, UN_RELU, UN_SOFTPLUS, UN_CLAMP };

static bome_real softplus(bome_real x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
static bome_real sigmoid(bome_real x)
{
    if (x >= 0)
        return 1.0 / (1.0 + exp(-x));
    bome_real e = exp(x);
    return e / (1.0 + e);
}

#define UN_LOOP(EXPR) for (size_t i = lo; i < hi; i++) { bome_real v = x[i]; y[i] = EXPR; }

static void un_elems(const bome_node *n, size_t lo, size_t hi)
{
    const bome_real *x = n->src[0]->data;
    bome_real *y = n->data;
    bome_real p0 = n->fp[0], p1 = n->fp[1];
    switch (n->ip[0]) {
    case UN_NEG: UN_LOOP(-v); break;
    case UN_AFFINE: UN_LOOP(p0 * v + p1); break;
    case UN_POW: UN_LOOP(pow(v, p0)); break;
    case UN_EXP: UN_LOOP(exp(v)); break;
    case UN_LOG: UN_LOOP(log(v)); break;
    case UN_SQRT: UN_LOOP(sqrt(v)); break;
    case UN_ABS: UN_LOOP(fabs(v)); break;
    case UN_SQUARE: UN_LOOP(v * v); break;
    case UN_TANH: ad_tanh_array(x + lo, y + lo, hi - lo); break;
    case UN_SIGMOID: UN_LOOP(sigmoid(v)); break;
    case UN_RELU: UN_LOOP(v > 0 ? v : 0.0); break;
    case UN_SOFTPLUS: UN_LOOP(softplus(v)); break;
    default: UN_LOOP(v < p0 ? p0 : (v > p1 ? p1 : v)); break;
    }
}

static int un_forward(bome_graph *g, bome_node *n)
{
    (void)g;
    un_elems(n, 0, n->size);
    return BOME_OK;
}

static int un_rows_tiled(bome_graph *g, bome_node *n, int r0, int r1, bool first, bome_real *acc)
{
    (void)g;
    (void)first;
    (void)acc;
    size_t lo, hi;
    elem_range(n, r0, r1, &lo, &hi);
    un_elems(n, lo, hi);
    return BOME_OK;
}

static void un_backward(bome_graph *g, bome_node *n, bome_node *dy, const bool *need, bome_node **d)
{
    (void)need; /* one source, needed or backward would not be called */
    bome_node *x = n->src[0];
    bome_real p = n->fp[0];
    switch (n->ip[0]) {
    case UN_NEG: d[0] = bome_neg(g, dy); break;
    case UN_AFFINE: d[0] = bome_scale(g, dy, p); break;
    case UN_POW:
        if (p == 0.0) /* x^0 = 1: nothing flows (p x^(p-1) would be NaN at 0) */
            break;
        if (p == 1.0)
            d[0] = dy;
        else if (p == 2.0)
            d[0] = bome_mul(g, dy, bome_scale(g, x, 2.0));
        else
            d[0] = bome_mul(g, dy, bome_scale(g, bome_pow(g, x, p - 1.0), p));
        break;
    case UN_EXP: d[0] = bome_mul(g, dy, n); break;
    case UN_LOG: d[0] = bome_div(g, dy, x); break;
    case UN_SQRT: d[0] = bome_div(g, dy, bome_scale(g, n, 2.0)); break;
    case UN_ABS: d[0] = ad_step_mul(g, x, dy, STEP_SIGN, 0, 0); break;
    case UN_SQUARE: d[0] = bome_mul(g, dy, bome_scale(g, x, 2.0)); break;
    case UN_TANH: d[0] = ad_tanh_bwd(g, n, dy); break;
    case UN_SIGMOID: d[0] = ad_sigmoid_bwd(g, n, dy); break;
    case UN_RELU: d[0] = ad_step_mul(g, x, dy, STEP_RELU, 0, 0); break;
    case UN_SOFTPLUS: d[0] = bome_mul(g, dy, bome_sigmoid(g, x)); break;
    default: d[0] = ad_step_mul(g, x, dy, STEP_CLAMP, n->fp[0], n->fp[1]); break;
    }
}

#define UNARY_DESC(id, opname)                                                                    \
    static const op_desc id = {.name = opname, .forward = un_forward, .backward = un_backward, \
                               .tile = same_rows_tile, .rows = un_rows_tiled}
UNARY_DESC(op_neg, "neg");
UNARY_DESC(op_affine, "affine");
UNARY_DESC(op_pow, "pow");
UNARY_DESC(op_exp, "exp");
UNARY_DESC(op_log, "log");
UNARY_DESC(op_sqrt, "sqrt");
UNARY_DESC(op_abs, "abs");
UNARY_DESC(op_square, "square");
UNARY_DESC(op_tanh, "tanh");
UNARY_DESC(op_sigmoid, "sigmoid");
UNARY_DESC(op_relu, "relu");
UNARY_DESC(op_softplus, "softplus");
UNARY_DESC(op_clamp, "clamp");

static bome_node *unary(bome_graph *g, const op_desc *op, int kind, bome_node *x, bome_real p0, bome_real p1)
{
    if (!ad_check(g, op->name, 1, &x))
        return NULL;
    bome_node *n = ad_node(g, op, x->shape, 1, &x);
    if (n) {
        n->ip[0] = kind;
        n->fp[0] = p0;
        n->fp[1] = p1;
    }
    return n;
}

bome_node *bome_neg(bome_graph *g, bome_node *x) { return unary(g, &op_neg, UN_NEG, x, 0, 0); }
bome_node *bome_scale(bome_graph *g, bome_node *x, bome_real c) { return unary(g, &op_affine, UN_AFFINE, x, c, 0); }
bome_node *bome_add_scalar(bome_graph *g, bome_node *x, bome_real c) { return unary(g, &op_affine, UN_AFFINE, x, 1, c); }
bome_node *bome_pow(bome_graph *g, bome_node *x, bome_real p) { return unary(g, &op_pow, UN_POW, x, p, 0); }
bome_node *bome_exp(bome_graph *g, bome_node *x) { return unary(g, &op_exp, UN_EXP, x, 0, 0); }
bome_node *bome_log(bome_graph *g, bome_node *x) { return unary(g, &op_log, UN_LOG, x, 0, 0); }
bome_node *bome_sqrt(bome_graph *g, bome_node *x) { return unary(g, &op_sqrt, UN_SQRT, x, 0, 0); }
bome_node *bome_abs(bome_graph *g, bome_node *x) { return unary(g, &op_abs, UN_ABS, x, 0, 0); }
bome_node *bome_square(bome_graph *g, bome_node *x) { return unary(g, &op_square, UN_SQUARE, x, 0, 0); }
bome_node *bome_tanh(bome_graph *g, bome_node *x) { return unary(g, &op_tanh, UN_TANH, x, 0, 0); }
bome_node *bome_sigmoid(bome_graph *g, bome_node *x) { return unary(g, &op_sigmoid, UN_SIGMOID, x, 0, 0); }
bome_node *bome_relu(bome_graph *g, bome_node *x) { return unary(g, &op_relu, UN_RELU, x, 0, 0); }
bome_node *bome_softplus(bome_graph *g, bome_node *x) { return unary(g, &op_softplus, UN_SOFTPLUS, x, 0, 0); }

bome_node *bome_clamp(bome_graph *g, bome_node *x, bome_real lo, bome_real hi)
{
    if (g && !(lo <= hi)) {
        ad_error(g, BOME_ERR_ARG, "clamp: lo = %g is above hi = %g", lo, hi);
        return NULL;
    }
    return unary(g, &op_clamp, UN_CLAMP, x, lo, hi);
}

/* ---- fused backward kernels: dy times a function of x or y ------------------ */

enum fused_kind { F_STEP, F_TANH, F_SIGMOID };

#define F_LOOP(EXPR) for (size_t i = from; i < to; i++) { bome_real v = x[i], z = dy[i]; y[i] = EXPR; }

static void fused_elems(bome_node *n, size_t from, size_t to)
{
    const bome_real *x = n->src[0]->data, *dy = n->src[1]->data;
    bome_real *y = n->data, lo = n->fp[0], hi = n->fp[1];
    if (n->ip[0] == F_TANH) {
        F_LOOP(z * (1.0 - v * v));
    } else if (n->ip[0] == F_SIGMOID) {
        F_LOOP(z * v * (1.0 - v));
    } else if (n->ip[1] == STEP_RELU) {
        F_LOOP(v > 0 ? z : 0.0);
    } else if (n->ip[1] == STEP_CLAMP) {
        F_LOOP(v >= lo && v <= hi ? z : 0.0);
    } else {
        F_LOOP(v > 0 ? z : (v < 0 ? -z : 0.0));
    }
}

static int fused_forward(bome_graph *g, bome_node *n)
{
    (void)g;
    fused_elems(n, 0, n->size);
    return BOME_OK;
}

static int fused_rows_tiled(bome_graph *g, bome_node *n, int r0, int r1, bool first, bome_real *acc)
{
    (void)g;
    (void)first;
    (void)acc;
    size_t lo, hi;
    elem_range(n, r0, r1, &lo, &hi);
    fused_elems(n, lo, hi);
    return BOME_OK;
}

static void fused_backward(bome_graph *g, bome_node *n, bome_node *adj, const bool *need, bome_node **d)
{
    bome_node *x = n->src[0], *dy = n->src[1];
    switch (n->ip[0]) {
    case F_TANH: /* dy (1 - y^2) */
        if (need[0]) d[0] = bome_mul(g, bome_mul(g, adj, dy), bome_scale(g, x, -2.0));
        if (need[1]) d[1] = ad_tanh_bwd(g, x, adj);
        break;
    case F_SIGMOID: /* dy y (1 - y) */
        if (need[0]) d[0] = bome_mul(g, bome_mul(g, adj, dy), bome_add_scalar(g, bome_scale(g, x, -2.0), 1.0));
        if (need[1]) d[1] = ad_sigmoid_bwd(g, x, adj);
        break;
    default: /* piecewise constant in x: nothing flows to x */
        if (need[1]) d[1] = ad_step_mul(g, x, adj, n->ip[1], n->fp[0], n->fp[1]);
        break;
    }
}

static const op_desc op_step_mul = {.name = "step_mul", .forward = fused_forward, .backward = fused_backward, .tile = same_rows_tile, .rows = fused_rows_tiled};
static const op_desc op_tanh_bwd = {.name = "tanh_bwd", .forward = fused_forward, .backward = fused_backward, .tile = same_rows_tile, .rows = fused_rows_tiled};
static const op_desc op_sigmoid_bwd = {.name = "sigmoid_bwd", .forward = fused_forward, .backward = fused_backward, .tile = same_rows_tile, .rows = fused_rows_tiled};

static bome_node *fused(bome_graph *g, const op_desc *op, int kind, bome_node *x, bome_node *dy)
{
    bome_node *src[2] = {x, dy};
    if (!ad_check(g, op->name, 2, src))
        return NULL;
    bome_node *n = ad_node(g, op, x->shape, 2, src);
    if (n)
        n->ip[0] = kind;
    return n;
}

bome_node *ad_step_mul(bome_graph *g, bome_node *x, bome_node *dy, int kind, bome_real lo, bome_real hi)
{
    bome_node *n = fused(g, &op_step_mul, F_STEP, x, dy);
    if (n) {
        n->ip[1] = kind;
        n->fp[0] = lo;
        n->fp[1] = hi;
    }
    return n;
}

bome_node *ad_tanh_bwd(bome_graph *g, bome_node *y, bome_node *dy) { return fused(g, &op_tanh_bwd, F_TANH, y, dy); }
bome_node *ad_sigmoid_bwd(bome_graph *g, bome_node *y, bome_node *dy) { return fused(g, &op_sigmoid_bwd, F_SIGMOID, y, dy); }
