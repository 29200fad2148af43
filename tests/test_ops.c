/*
 * tests/test_ops.c: every op of bome/ad.h, its forward values against a
 * direct computation and its gradient against central finite differences.
 *
 * A non-scalar output y is checked through the scalar dot(y, W) with a fixed
 * pseudo-random constant W of y's shape, so that every entry of y is tested.
 * Values come from sin() of indices: deterministic, no two alike.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <string.h>

#include "bome/ad.h"
#include "prec.h"

#define S BOME_SCALAR
#define V(n) BOME_VECTOR(n)
#define M(r, c) BOME_MATRIX(r, c)
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static bome_graph *g;
static int stream;   /* each leaf gets its own pseudo-random stream */
static double want[256];

/* want[0 .. n) = src's values, widened to double. */
static void want_from(double *w, const bome_real *src, size_t n)
{
    for (size_t k = 0; k < n; k++)
        w[k] = src[k];
}

static void setup(void)
{
    g = bome_graph_new();
    cr_assert_not_null(g);
    stream = 0;
}

static void teardown(void) { bome_graph_free(g); }

TestSuite(elementwise, .init = setup, .fini = teardown);
TestSuite(binary, .init = setup, .fini = teardown);
TestSuite(reduce, .init = setup, .fini = teardown);
TestSuite(linalg, .init = setup, .fini = teardown);
TestSuite(shape, .init = setup, .fini = teardown);
TestSuite(learning, .init = setup, .fini = teardown);

/* ---- helpers ----------------------------------------------------------------- */

static double prand(int seed, int k, double lo, double hi)
{
    double t = 0.5 + 0.5 * sin(1.7 * k + 2.9 * seed + 0.3 * k * seed + 0.1);
    return lo + (hi - lo) * t;
}

static void fill(bome_real *d, size_t n, double lo, double hi)
{
    int seed = stream++;
    for (size_t k = 0; k < n; k++)
        d[k] = prand(seed, (int)k, lo, hi);
}

static bome_node *param(bome_shape s, double lo, double hi)
{
    bome_node *x = bome_param(g, "x", s);
    cr_assert_not_null(x, "%s", bome_graph_errmsg(g));
    fill(bome_data(x), bome_size(x), lo, hi);
    return x;
}

/* Moves values within 0.05 of a kink k a safe distance away. */
static void away_from(bome_node *x, double k)
{
    bome_real *d = bome_data(x);
    for (size_t i = 0; i < bome_size(x); i++)
        if (fabs(d[i] - k) < 0.05)
            d[i] = k + (d[i] < k ? -0.1 : 0.1);
}

static bome_node *labels(int n, const int32_t *vals)
{
    bome_node *l = bome_labels(g, "l", n);
    cr_assert_eq(bome_bind_labels(g, l, vals), BOME_OK, "%s", bome_graph_errmsg(g));
    return l;
}

/* dot(y, W) for a fixed pseudo-random W of y's shape; a scalar y as it is. */
static bome_node *weigh(bome_node *y)
{
    cr_assert_not_null(y, "%s", bome_graph_errmsg(g));
    if (bome_size(y) == 1)
        return y;
    bome_node *w = bome_const(g, bome_node_shape(y), NULL);
    fill(bome_data(w), bome_size(w), -1, 1);
    return bome_dot(g, y, w);
}

static void gradcheck(bome_node *y, double tol, int n, bome_node *const *ps)
{
    bome_node *s = weigh(y);
    bome_gradcheck_report r;
    int rc = bome_gradcheck(g, s, n, ps, 0, &r);
    cr_assert_eq(rc, BOME_OK, "gradcheck of %s: %s", bome_node_op(y), bome_graph_errmsg(g));
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += bome_size(ps[i]);
    cr_assert_eq(r.checked, total);
    cr_assert_lt(r.max_rel_error, TOL(tol), "%s: relative error %g at param %d entry %zu: analytic %.12g, numeric %.12g",
                 bome_node_op(y), r.max_rel_error, r.param, r.index, r.analytic, r.numeric);
}

#define PARAMS(...) (int)(sizeof((bome_node *[]){__VA_ARGS__}) / sizeof(bome_node *)), (bome_node *[]){__VA_ARGS__}
#define GRADCHECK(y, ...) gradcheck((y), 1e-6, PARAMS(__VA_ARGS__))

static const bome_real *eval(bome_node *y)
{
    cr_assert_not_null(y, "%s", bome_graph_errmsg(g));
    cr_assert_eq(bome_eval(g, 1, &y), BOME_OK, "eval of %s: %s", bome_node_op(y), bome_graph_errmsg(g));
    return bome_data(y);
}

/* y's shape is s and its values are want[0 .. size), to relative tol as given. */
static void expect_within(bome_node *y, bome_shape s, double tol)
{
    const bome_real *d = eval(y);
    bome_shape ys = bome_node_shape(y);
    cr_assert(ys.rank == s.rank && ys.rows == s.rows && ys.cols == s.cols,
              "%s: shape rank %d %dx%d, expected rank %d %dx%d", bome_node_op(y), ys.rank, ys.rows, ys.cols, s.rank,
              s.rows, s.cols);
    for (size_t k = 0; k < bome_size(y); k++)
        cr_assert(fabs(d[k] - want[k]) <= tol * fmax(1.0, fabs(want[k])), "%s[%zu] = %.17g, expected %.17g",
                  bome_node_op(y), k, d[k], want[k]);
}

/* The same with tol a float64 figure (tests/prec.h). */
static void expect(bome_node *y, bome_shape s, double tol)
{
    expect_within(y, s, TOL(tol));
}

/* expect() and expect_within() with the values listed. */
#define EXPECT_WITHIN(y, s, tol, ...) \
    (memcpy(want, (double[]){__VA_ARGS__}, sizeof((double[]){__VA_ARGS__})), expect_within((y), (s), (tol)))
#define EXPECT(y, s, tol, ...) \
    (memcpy(want, (double[]){__VA_ARGS__}, sizeof((double[]){__VA_ARGS__})), expect((y), (s), (tol)))

/* expect() and GRADCHECK() of one node. */
#define CHECK(y, s, tol, ...)       \
    do {                            \
        bome_node *y_ = (y);        \
        expect(y_, (s), (tol));     \
        GRADCHECK(y_, __VA_ARGS__); \
    } while (0)

/* Element (i, j) of op(x): x transposed when t. */
static double at(const bome_node *x, int t, int i, int j)
{
    int C = bome_node_shape(x).cols;
    return t ? bome_data(x)[(size_t)j * C + i] : bome_data(x)[(size_t)i * C + j];
}

/* ---- element-wise unary ops -------------------------------------------------- */

typedef bome_node *(*build1)(bome_node *x);

/* op on a 3x4 matrix and a vector of 5 with values in [lo, hi], away from the
 * kinks k1, k2 (NAN: none). */
static void unary_case(build1 f, double (*ref)(double), double lo, double hi, double k1, double k2)
{
    bome_shape shapes[2] = {M(3, 4), V(5)};
    for (int c = 0; c < 2; c++) {
        bome_node *x = param(shapes[c], lo, hi);
        if (!isnan(k1))
            away_from(x, k1);
        if (!isnan(k2))
            away_from(x, k2);
        bome_node *y = f(x);
        for (size_t k = 0; k < bome_size(x); k++)
            want[k] = ref(bome_data(x)[k]);
        CHECK(y, shapes[c], 1e-14, x);
    }
}

#define UNARY(NAME, BUILD, REF, LO, HI, K1, K2)                                \
    static bome_node *build_##NAME(bome_node *x) { return BUILD; }             \
    static double ref_##NAME(double v) { (void)v; return REF; }                \
    Test(elementwise, NAME) { unary_case(build_##NAME, ref_##NAME, LO, HI, K1, K2); }

UNARY(neg, bome_neg(g, x), -v, -2, 2, NAN, NAN)
UNARY(scale, bome_scale(g, x, -2.5), -2.5 * v, -2, 2, NAN, NAN)
UNARY(add_scalar, bome_add_scalar(g, x, 0.75), v + 0.75, -2, 2, NAN, NAN)
UNARY(pow_3, bome_pow(g, x, 3.0), v * v * v, -1.5, 1.5, NAN, NAN)
UNARY(pow_half, bome_pow(g, x, 0.5), sqrt(v), 0.2, 2, NAN, NAN)
UNARY(pow_0, bome_pow(g, x, 0.0), 1.0, -1, 1, NAN, NAN)
UNARY(pow_1, bome_pow(g, x, 1.0), v, -1, 1, NAN, NAN)
UNARY(pow_minus_1_5, bome_pow(g, x, -1.5), 1.0 / (v * sqrt(v)), 0.3, 2, NAN, NAN)
UNARY(exp, bome_exp(g, x), exp(v), -1.5, 1.5, NAN, NAN)
UNARY(log, bome_log(g, x), log(v), 0.2, 3, NAN, NAN)
UNARY(sqrt, bome_sqrt(g, x), sqrt(v), 0.2, 3, NAN, NAN)
UNARY(abs, bome_abs(g, x), fabs(v), -2, 2, 0, NAN)
UNARY(square, bome_square(g, x), v * v, -2, 2, NAN, NAN)
UNARY(tanh, bome_tanh(g, x), tanh(v), -2, 2, NAN, NAN)
UNARY(sigmoid, bome_sigmoid(g, x), 1.0 / (1.0 + exp(-v)), -3, 3, NAN, NAN)
UNARY(relu, bome_relu(g, x), v > 0 ? v : 0, -2, 2, 0, NAN)
UNARY(softplus, bome_softplus(g, x), log(1.0 + exp(v)), -3, 3, NAN, NAN)
UNARY(clamp, bome_clamp(g, x, -0.5, 0.7), fmin(fmax(v, -0.5), 0.7), -1.5, 1.5, -0.5, 0.7)

Test(elementwise, extremes_stay_finite)
{
    bome_real xv[4] = {800, -800, 40, -40}, e = exp(-40);
    bome_node *x = bome_param(g, "x", V(4)), *gs, *gg;
    bome_set(g, x, xv);
    bome_node *sp = bome_softplus(g, x), *sg = bome_sigmoid(g, x), *th = bome_tanh(g, x);
    EXPECT(sp, V(4), 1e-15, 800, 0, 40 + log1p(e), log1p(e));
    EXPECT(sg, V(4), 1e-15, 1, 0, 1 / (1 + e), e / (1 + e));
    EXPECT(th, V(4), 1e-15, 1, -1, 1, -1);
    cr_assert(bome_data(sp)[0] == 800.0 && bome_data(sg)[1] == 0.0);
    /* The gradients there: sigmoid(x) for softplus, and 0 for sigmoid at +-800. */
    bome_grad(g, bome_sum(g, sp), 1, &x, &gs);
    bome_grad(g, bome_sum(g, sg), 1, &x, &gg);
    EXPECT(gs, V(4), 1e-15, 1, 0, 1 / (1 + e), e / (1 + e));
    const bome_real *d = eval(gg);
    double tail = e / ((1 + e) * (1 + e));
    cr_assert(d[0] == 0.0 && d[1] == 0.0 && fabs(d[3] - tail) < TOL(1e-14) * tail, "%g %g %g", d[0], d[1], d[3]);
}

/* At a kink: relu' = 0 at 0, abs' = sign (0 at 0), clamp' = 1 on [lo, hi]; (x^0)' = 0 at 0. */
Test(elementwise, kink_conventions)
{
    bome_real xv[5] = {-1, 0, 0.5, 1, 2};
    bome_node *x = bome_param(g, "x", V(5)), *d[4];
    bome_set(g, x, xv);
    bome_grad(g, bome_sum(g, bome_relu(g, x)), 1, &x, &d[0]);
    bome_grad(g, bome_sum(g, bome_abs(g, x)), 1, &x, &d[1]);
    bome_grad(g, bome_sum(g, bome_clamp(g, x, 0, 1)), 1, &x, &d[2]);
    bome_grad(g, bome_sum(g, bome_pow(g, x, 0.0)), 1, &x, &d[3]);
    EXPECT(d[0], V(5), 0, 0, 0, 1, 1, 1);
    EXPECT(d[1], V(5), 0, -1, 0, 1, 1, 1);
    EXPECT(d[2], V(5), 0, 0, 1, 1, 1, 0);
    EXPECT(d[3], V(5), 0, 0, 0, 0, 0, 0);
}

/* ---- broadcasting binary ops --------------------------------------------------- */

typedef bome_node *(*build2)(bome_graph *, bome_node *, bome_node *);

static double apply(char op, double a, double b)
{
    return op == '+' ? a + b : op == '-' ? a - b : op == '*' ? a * b : a / b;
}

static void binary_cases(build2 f, char op)
{
    struct { bome_shape a, b, y; } c[] = {
        {M(3, 4), M(3, 4), M(3, 4)}, {V(4), V(4), V(4)},       {S, S, S},
        {S, M(3, 4), M(3, 4)},       {M(3, 4), S, M(3, 4)},    {S, V(4), V(4)},
        {V(4), M(3, 4), M(3, 4)},    {M(3, 4), V(4), M(3, 4)}, {M(1, 4), M(3, 4), M(3, 4)},
        {M(3, 1), M(3, 4), M(3, 4)}, {M(3, 4), M(3, 1), M(3, 4)}, {M(3, 1), V(4), M(3, 4)},
    };
    for (size_t k = 0; k < NELEM(c); k++) {
        bome_node *a = param(c[k].a, -1.5, 1.5);
        bome_node *b = param(c[k].b, op == '/' ? 0.5 : -1.5, 2);
        bome_node *y = f(g, a, b);
        for (int i = 0; i < c[k].y.rows; i++)
            for (int j = 0; j < c[k].y.cols; j++) {
                size_t ia = (size_t)(c[k].a.rows == 1 ? 0 : i) * c[k].a.cols + (c[k].a.cols == 1 ? 0 : j);
                size_t ib = (size_t)(c[k].b.rows == 1 ? 0 : i) * c[k].b.cols + (c[k].b.cols == 1 ? 0 : j);
                want[(size_t)i * c[k].y.cols + j] = apply(op, bome_data(a)[ia], bome_data(b)[ib]);
            }
        CHECK(y, c[k].y, 1e-15, a, b);
    }
}

Test(binary, add) { binary_cases(bome_add, '+'); }
Test(binary, sub) { binary_cases(bome_sub, '-'); }
Test(binary, mul) { binary_cases(bome_mul, '*'); }
Test(binary, div) { binary_cases(bome_div, '/'); }

Test(binary, same_node_twice)
{
    bome_node *x = param(M(2, 3), 0.5, 2);
    GRADCHECK(bome_mul(g, x, x), x);
    GRADCHECK(bome_div(g, x, x), x);
    GRADCHECK(bome_sub(g, x, x), x);
}

/* ---- reductions ----------------------------------------------------------------- */

/* The 3x4 matrix x reduced by op over axis (-1: all) into want. */
static void reduce_ref(const bome_node *x, int axis, char op)
{
    int R = 3, C = 4, n = axis == 0 ? C : axis == 1 ? R : 1;
    for (int k = 0; k < n; k++) {
        double s = 0, m = -INFINITY;
        int cnt = 0;
        for (int i = 0; i < R; i++)
            for (int j = 0; j < C; j++)
                if (axis < 0 || (axis == 0 ? j : i) == k) {
                    s += at(x, 0, i, j);
                    m = fmax(m, at(x, 0, i, j));
                    cnt++;
                }
        want[k] = op == 's' ? s : op == 'm' ? s / cnt : m;
    }
}

Test(reduce, sum_and_mean)
{
    bome_node *x = param(M(3, 4), -2, 2);
    reduce_ref(x, -1, 's');
    CHECK(bome_sum(g, x), S, 1e-14, x);
    reduce_ref(x, -1, 'm');
    CHECK(bome_mean(g, x), S, 1e-14, x);
}

Test(reduce, sum_and_mean_axis)
{
    bome_node *x = param(M(3, 4), -2, 2);
    for (int axis = 0; axis < 2; axis++) {
        bome_shape s = V(axis == 0 ? 4 : 3);
        reduce_ref(x, axis, 's');
        CHECK(bome_sum_axis(g, x, axis), s, 1e-14, x);
        reduce_ref(x, axis, 'm');
        CHECK(bome_mean_axis(g, x, axis), s, 1e-14, x);
    }
    bome_node *v = param(V(5), -2, 2); /* a vector is one row */
    want[0] = 0;
    for (int k = 0; k < 5; k++)
        want[0] += bome_data(v)[k];
    CHECK(bome_sum_axis(g, v, 1), V(1), 1e-14, v);
    want_from(want, bome_data(v), 5);
    expect(bome_sum_axis(g, v, 0), V(5), 0);
    GRADCHECK(bome_mean_axis(g, v, 0), v);
}

Test(reduce, dot_and_sumsq)
{
    bome_node *a = param(M(3, 4), -2, 2), *b = param(M(3, 4), -2, 2);
    want[0] = 0;
    for (int k = 0; k < 12; k++)
        want[0] += bome_data(a)[k] * bome_data(b)[k];
    CHECK(bome_dot(g, a, b), S, 1e-14, a, b);
    GRADCHECK(bome_dot(g, a, a), a);
    want[0] = 0;
    for (int k = 0; k < 12; k++)
        want[0] += bome_data(a)[k] * bome_data(a)[k];
    CHECK(bome_sumsq(g, a), S, 1e-14, a);
    bome_node *u = param(V(5), -2, 2), *w = param(V(5), -2, 2);
    GRADCHECK(bome_dot(g, u, w), u, w);
}

Test(reduce, max)
{
    bome_node *x = param(M(3, 4), -2, 2);
    reduce_ref(x, -1, 'x');
    CHECK(bome_max(g, x), S, 0, x);
    for (int axis = 0; axis < 2; axis++) {
        reduce_ref(x, axis, 'x');
        CHECK(bome_max_axis(g, x, axis), V(axis == 0 ? 4 : 3), 0, x);
    }
    /* Ties: the gradient goes to the first maximum only. */
    bome_real tv[4] = {1, 3, 3, 2};
    bome_node *t = bome_param(g, "t", V(4)), *gt;
    bome_set(g, t, tv);
    bome_grad(g, bome_max(g, t), 1, &t, &gt);
    const bome_real *d = eval(gt);
    cr_assert(d[0] == 0 && d[1] == 1 && d[2] == 0 && d[3] == 0, "%g %g %g %g", d[0], d[1], d[2], d[3]);
}

/* ---- linear algebra ---------------------------------------------------------------- */

Test(linalg, matmul_all_transposes)
{
    int Mr = 3, K = 4, N = 2;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            bome_node *a = param(ta ? M(K, Mr) : M(Mr, K), -1.5, 1.5);
            bome_node *b = param(tb ? M(N, K) : M(K, N), -1.5, 1.5);
            bome_node *y = bome_matmul(g, a, ta, b, tb);
            for (int i = 0; i < Mr; i++)
                for (int j = 0; j < N; j++) {
                    double s = 0;
                    for (int k = 0; k < K; k++)
                        s += at(a, ta, i, k) * at(b, tb, k, j);
                    want[i * N + j] = s;
                }
            CHECK(y, M(Mr, N), 1e-14, a, b);
            GRADCHECK(bome_matmul(g, a, ta, a, !ta), a); /* a op(a)^T: one operand twice */
        }
}

Test(linalg, matmul_vectors)
{
    bome_node *v4 = param(V(4), -1.5, 1.5), *v3 = param(V(3), -1.5, 1.5), *w4 = param(V(4), -1.5, 1.5);
    bome_node *A = param(M(4, 2), -1.5, 1.5), *B = param(M(3, 4), -1.5, 1.5);
    for (int j = 0; j < 2; j++) {
        want[j] = 0;
        for (int k = 0; k < 4; k++)
            want[j] += bome_data(v4)[k] * at(A, 0, k, j);
    }
    expect(bome_matmul(g, v4, 0, A, 0), M(1, 2), 1e-14); /* row vector times matrix */
    GRADCHECK(bome_matmul(g, v4, 0, A, 0), v4, A);
    GRADCHECK(bome_matmul(g, B, 0, v4, 1), B, v4);       /* matrix times column */
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            want[i * 4 + j] = bome_data(v3)[i] * bome_data(w4)[j];
    expect(bome_matmul(g, v3, 1, w4, 0), M(3, 4), 1e-15); /* outer product */
    GRADCHECK(bome_matmul(g, v3, 1, w4, 0), v3, w4);
    GRADCHECK(bome_matmul(g, v4, 0, w4, 1), v4, w4);     /* inner product, 1x1 */
}

Test(linalg, matvec)
{
    bome_node *A = param(M(3, 4), -1.5, 1.5), *x4 = param(V(4), -1.5, 1.5), *x3 = param(V(3), -1.5, 1.5);
    for (int t = 0; t < 2; t++) {
        bome_node *x = t ? x3 : x4;
        int rows = t ? 4 : 3, K = t ? 3 : 4;
        for (int i = 0; i < rows; i++) {
            want[i] = 0;
            for (int k = 0; k < K; k++)
                want[i] += at(A, t, i, k) * bome_data(x)[k];
        }
        bome_node *y = bome_matvec(g, A, t, x);
        CHECK(y, V(rows), 1e-14, A, x);
    }
}

Test(linalg, transpose)
{
    bome_node *x = param(M(3, 4), -2, 2), *v = param(V(4), -2, 2);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
            want[i * 3 + j] = at(x, 0, j, i);
    CHECK(bome_transpose(g, x), M(4, 3), 0, x);
    want_from(want, bome_data(v), 4);
    CHECK(bome_transpose(g, v), M(4, 1), 0, v);
}

/* ---- shape ops ----------------------------------------------------------------------- */

Test(shape, reshape)
{
    bome_node *x = param(M(3, 4), -2, 2);
    want_from(want, bome_data(x), 12);
    bome_shape to[3] = {M(2, 6), V(12), M(12, 1)};
    for (int k = 0; k < 3; k++) {
        CHECK(bome_reshape(g, x, to[k]), to[k], 0, x);
    }
    bome_node *s = param(S, -2, 2);
    GRADCHECK(bome_mul(g, bome_reshape(g, s, M(1, 1)), param(M(2, 2), -1, 1)), s);
}

Test(shape, slice)
{
    bome_node *x = param(M(4, 3), -2, 2), *v = param(V(6), -2, 2);
    for (int i = 1; i < 3; i++) /* rows 1, 2: a view */
        for (int j = 0; j < 3; j++)
            want[(i - 1) * 3 + j] = at(x, 0, i, j);
    CHECK(bome_slice(g, x, 0, 1, 3), M(2, 3), 0, x);
    for (int i = 0; i < 4; i++) /* columns 1, 2: a copy */
        for (int j = 1; j < 3; j++)
            want[i * 2 + j - 1] = at(x, 0, i, j);
    CHECK(bome_slice(g, x, 1, 1, 3), M(4, 2), 0, x);
    want_from(want, bome_data(v) + 2, 3);
    CHECK(bome_slice(g, v, 0, 2, 5), V(3), 0, v);
    GRADCHECK(bome_slice(g, v, 1, 0, 6), v);
}

Test(shape, concat)
{
    bome_node *a = param(M(2, 3), -2, 2), *b = param(M(3, 3), -2, 2);
    want_from(want, bome_data(a), 6);
    want_from(want + 6, bome_data(b), 9);
    CHECK(bome_concat(g, a, b, 0), M(5, 3), 0, a, b);
    bome_node *c = param(M(3, 2), -2, 2), *d = param(M(3, 4), -2, 2);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 6; j++)
            want[i * 6 + j] = j < 2 ? at(c, 0, i, j) : at(d, 0, i, j - 2);
    CHECK(bome_concat(g, c, d, 1), M(3, 6), 0, c, d);
    bome_node *u = param(V(3), -2, 2), *w = param(V(4), -2, 2);
    want_from(want, bome_data(u), 3);
    want_from(want + 3, bome_data(w), 4);
    CHECK(bome_concat(g, u, w, 0), V(7), 0, u, w);
    GRADCHECK(bome_concat(g, u, u, 1), u);
    GRADCHECK(bome_concat(g, u, bome_tanh(g, b), 0), u, b); /* a vector on top of a matrix */
}

Test(shape, gather_rows)
{
    static const int32_t idx[5] = {2, 0, 2, 3, 2};
    bome_node *x = param(M(4, 3), -2, 2), *v = param(V(4), -2, 2), *l = labels(5, idx);
    for (int r = 0; r < 5; r++)
        for (int j = 0; j < 3; j++)
            want[r * 3 + j] = at(x, 0, idx[r], j);
    CHECK(bome_gather_rows(g, x, l), M(5, 3), 0, x);
    for (int r = 0; r < 5; r++)
        want[r] = bome_data(v)[idx[r]];
    CHECK(bome_gather_rows(g, v, l), V(5), 0, v);
}

Test(shape, pick)
{
    static const int32_t lab[4] = {2, 0, 1, 2};
    bome_node *x = param(M(4, 3), -2, 2), *l = labels(4, lab);
    for (int i = 0; i < 4; i++)
        want[i] = at(x, 0, i, lab[i]);
    CHECK(bome_pick(g, x, l), V(4), 0, x);
}

/* ---- learning ops ---------------------------------------------------------------------- */

/* Row-wise reference: logsumexp of row i of a matrix (or of a vector). */
static double lse_row(const bome_node *x, int i)
{
    int C = bome_node_shape(x).cols;
    double m = -INFINITY, s = 0;
    for (int j = 0; j < C; j++)
        m = fmax(m, at(x, 0, i, j));
    for (int j = 0; j < C; j++)
        s += exp(at(x, 0, i, j) - m);
    return m + log(s);
}

Test(learning, logsumexp_softmax_log_softmax)
{
    bome_shape shapes[2] = {M(3, 4), V(5)};
    for (int c = 0; c < 2; c++) {
        bome_node *x = param(shapes[c], -3, 3);
        int R = shapes[c].rows, C = shapes[c].cols;
        for (int i = 0; i < R; i++)
            want[i] = lse_row(x, i);
        CHECK(bome_logsumexp(g, x), c == 0 ? V(3) : S, 1e-14, x);
        for (int i = 0; i < R; i++)
            for (int j = 0; j < C; j++)
                want[i * C + j] = exp(at(x, 0, i, j) - lse_row(x, i));
        CHECK(bome_softmax(g, x), shapes[c], 1e-14, x);
        for (int i = 0; i < R; i++)
            for (int j = 0; j < C; j++)
                want[i * C + j] = at(x, 0, i, j) - lse_row(x, i);
        CHECK(bome_log_softmax(g, x), shapes[c], 1e-14, x);
    }
}

Test(learning, cross_entropy)
{
    static const int32_t lab[4] = {2, 0, 1, 2};
    bome_node *x = param(M(4, 3), -3, 3), *l = labels(4, lab);
    double mean = 0;
    for (int i = 0; i < 4; i++) {
        want[i] = lse_row(x, i) - at(x, 0, i, lab[i]);
        mean += want[i] / 4;
    }
    CHECK(bome_cross_entropy_rows(g, x, l), V(4), 1e-14, x);
    EXPECT(bome_cross_entropy(g, x, l), S, 1e-14, mean);
    GRADCHECK(bome_cross_entropy(g, x, l), x);
    /* One row, and the same through log_softmax and pick. */
    bome_node *x1 = param(M(1, 3), -3, 3), *l1 = labels(1, lab);
    GRADCHECK(bome_cross_entropy(g, x1, l1), x1);
    bome_node *alt = bome_neg(g, bome_pick(g, bome_log_softmax(g, x), l));
    const bome_real *a = eval(alt), *b = eval(bome_cross_entropy_rows(g, x, l));
    for (int i = 0; i < 4; i++)
        cr_assert(fabs(a[i] - b[i]) < TOL(1e-14), "row %d: %g vs %g", i, a[i], b[i]);
}

Test(learning, huge_logits_stay_finite)
{
    static const int32_t lab[2] = {1, 0};
    bome_real xv[6] = {1000, 999, 1001, -1000, -1001, -999};
    bome_node *x = bome_param(g, "x", M(2, 3)), *l = labels(2, lab);
    bome_set(g, x, xv);
    double r0 = 1001 + log(1 + exp(-1.0) + exp(-2.0)), r1 = -999 + log(1 + exp(-1.0) + exp(-2.0));
    EXPECT(bome_logsumexp(g, x), V(2), 1e-15, r0, r1);
    /* Each row's logsumexp, near +-1000, is rounded before the logits are
     * subtracted from it: the losses, the softmax and its gradient are good
     * to a few ulps of 1000, not of themselves. */
    const double big = 4 * 1001 * BOME_REAL_EPSILON;
    EXPECT_WITHIN(bome_cross_entropy_rows(g, x, l), V(2), big, r0 - 999, r1 + 1000);
    EXPECT_WITHIN(bome_cross_entropy(g, x, l), S, big, (r0 - 999 + r1 + 1000) / 2);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            want[i * 3 + j] = exp(xv[i * 3 + j] - (i ? r1 : r0));
    expect_within(bome_softmax(g, x), M(2, 3), big);
    bome_node *gx;
    bome_grad(g, bome_cross_entropy(g, x, l), 1, &x, &gx);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            want[i * 3 + j] = (exp(xv[i * 3 + j] - (i ? r1 : r0)) - (j == lab[i])) / 2;
    expect_within(gx, M(2, 3), big);
    bome_node *v = bome_param(g, "v", V(3));
    bome_set(g, v, xv);
    EXPECT(bome_logsumexp(g, v), S, 1e-15, r0);
    /* Infinite rows: all -inf stays -inf, a +inf gives +inf, not NaN. */
    bome_real iv[4] = {-INFINITY, -INFINITY, INFINITY, 1};
    bome_node *inf = bome_const(g, M(2, 2), iv), *lse = bome_logsumexp(g, inf);
    eval(lse);
    cr_assert(bome_data(lse)[0] == -INFINITY && bome_data(lse)[1] == INFINITY);
}

Test(learning, weighted_mean)
{
    bome_node *x = param(V(5), -2, 2), *w = param(V(5), 0, 1);
    want[0] = 0;
    for (int k = 0; k < 5; k++)
        want[0] += bome_data(x)[k] * bome_data(w)[k] / 5;
    CHECK(bome_weighted_mean(g, x, w), S, 1e-14, x, w);
}

/* ---- stop_gradient -------------------------------------------------------------------------- */

static void expect_zero(bome_node *n)
{
    const bome_real *d = eval(n);
    for (size_t k = 0; k < bome_size(n); k++)
        cr_assert(d[k] == 0.0, "%s[%zu] = %g, expected exactly 0", bome_node_op(n), k, d[k]);
}

Test(shape, stop_gradient)
{
    bome_node *x = param(V(4), 0.5, 2), *u = param(V(4), -1, 1);
    bome_node *sx = bome_stop_gradient(g, x);
    want_from(want, bome_data(x), 4);
    expect(sx, V(4), 0);
    /* Nothing reaches x through it: zero, at first and second order. */
    bome_node *g1, *g2, *h;
    bome_grad(g, bome_sum(g, bome_exp(g, sx)), 1, &x, &g1);
    expect_zero(g1);
    /* y = <x, sg(x)>: dy/dx = sg(x) (the value x), d<dy/dx, u>/dx = 0. */
    bome_grad(g, bome_dot(g, x, sx), 1, &x, &g2);
    expect(g2, V(4), 0);
    bome_grad(g, bome_dot(g, g2, u), 1, &x, &h);
    expect_zero(h);
    /* y = sum(sg(exp(x)) * x^2): dy/dx = 2 sg(exp(x)) x, Hessian 2 diag(exp(x)) -> 2 exp(x) u here
     * without the exp term, as exp(x) is held constant. */
    bome_node *y = bome_sum(g, bome_mul(g, bome_stop_gradient(g, bome_exp(g, x)), bome_square(g, x)));
    bome_grad(g, y, 1, &x, &g2);
    bome_grad(g, bome_dot(g, g2, u), 1, &x, &h);
    for (int k = 0; k < 4; k++)
        want[k] = 2 * exp(bome_data(x)[k]) * bome_data(u)[k];
    expect(h, V(4), 1e-14);
}
