/*
 * tests/test_second_order.c: Hessian-vector products of every op.
 *
 * For y = f(x1, ..., xn) (reduced to a scalar with a fixed random weighting),
 * s = sum_i <dy/dx_i, u_i> for fixed u_i; the gradient of s is H u, and
 * bome_gradcheck compares it with central differences of the gradient.
 * Ops with kinks (relu, abs, clamp, max) are tested away from them, and
 * squared so that their Hessian is not zero.
 */
#include <criterion/criterion.h>

#include <math.h>

#include "bome/ad.h"
#include "prec.h"

#define S BOME_SCALAR
#define V(n) BOME_VECTOR(n)
#define M(r, c) BOME_MATRIX(r, c)

static bome_graph *g;
static int stream;

static void setup(void)
{
    g = bome_graph_new();
    cr_assert_not_null(g);
    stream = 0;
}

static void teardown(void) { bome_graph_free(g); }

TestSuite(hvp, .init = setup, .fini = teardown);
TestSuite(third_order, .init = setup, .fini = teardown);

static void fill(bome_real *d, size_t n, double lo, double hi)
{
    int seed = stream++;
    for (size_t k = 0; k < n; k++)
        d[k] = lo + (hi - lo) * (0.5 + 0.5 * cos(2.3 * k + 1.9 * seed + 0.37 * k * seed + 0.2));
}

static bome_node *param(bome_shape s, double lo, double hi)
{
    bome_node *x = bome_param(g, "x", s);
    cr_assert_not_null(x, "%s", bome_graph_errmsg(g));
    fill(bome_data(x), bome_size(x), lo, hi);
    return x;
}

/* x with values in [lo, hi] at least 0.05 from the kink k. */
static bome_node *param_away(bome_shape s, double lo, double hi, double k)
{
    bome_node *x = param(s, lo, hi);
    bome_real *d = bome_data(x);
    for (size_t i = 0; i < bome_size(x); i++)
        if (fabs(d[i] - k) < 0.05)
            d[i] = k + (d[i] < k ? -0.1 : 0.1);
    return x;
}

static bome_node *labels(int n, const int32_t *vals)
{
    bome_node *l = bome_labels(g, "l", n);
    cr_assert_eq(bome_bind_labels(g, l, vals), BOME_OK, "%s", bome_graph_errmsg(g));
    return l;
}

static bome_node *random_const(bome_shape s)
{
    bome_node *c = bome_const(g, s, NULL);
    cr_assert_not_null(c, "%s", bome_graph_errmsg(g));
    fill(bome_data(c), bome_size(c), -1, 1);
    return c;
}

/* dot(y, W) for a fixed random W; a scalar y as it is. */
static bome_node *weigh(bome_node *y)
{
    cr_assert_not_null(y, "%s", bome_graph_errmsg(g));
    return bome_size(y) == 1 ? y : bome_dot(g, y, random_const(bome_node_shape(y)));
}

static void hvp_check(bome_node *y, double tol, int n, bome_node *const *xs)
{
    bome_node *f = weigh(y), *gx[4], *s = NULL;
    cr_assert(n <= 4);
    cr_assert_eq(bome_grad(g, f, n, xs, gx), BOME_OK, "grad of %s: %s", bome_node_op(y), bome_graph_errmsg(g));
    for (int i = 0; i < n; i++) {
        bome_node *t = bome_dot(g, gx[i], random_const(bome_node_shape(xs[i])));
        s = s ? bome_add(g, s, t) : t;
    }
    bome_gradcheck_report r;
    int rc = bome_gradcheck(g, s, n, xs, 0, &r);
    cr_assert_eq(rc, BOME_OK, "gradcheck of %s: %s", bome_node_op(y), bome_graph_errmsg(g));
    cr_assert_lt(r.max_rel_error, TOL(tol), "%s: Hu relative error %g at param %d entry %zu: analytic %.12g, numeric %.12g",
                 bome_node_op(y), r.max_rel_error, r.param, r.index, r.analytic, r.numeric);
}

#define PARAMS(...) (int)(sizeof((bome_node *[]){__VA_ARGS__}) / sizeof(bome_node *)), (bome_node *[]){__VA_ARGS__}
#define HVP(y, ...) hvp_check((y), 1e-6, PARAMS(__VA_ARGS__))

/* ---- element-wise ------------------------------------------------------------------ */

Test(hvp, affine_and_neg)
{
    bome_node *x = param(M(3, 4), -2, 2);
    /* Linear maps times x: the Hessian of x * affine(x) is not zero. */
    HVP(bome_mul(g, x, bome_scale(g, x, -2.5)), x);
    HVP(bome_mul(g, x, bome_add_scalar(g, x, 0.75)), x);
    HVP(bome_mul(g, x, bome_neg(g, x)), x);
    HVP(bome_sub(g, bome_square(g, x), x), x);
}

Test(hvp, pow)
{
    bome_node *x = param(M(3, 4), -1.5, 1.5), *p = param(V(5), 0.3, 2);
    HVP(bome_pow(g, x, 3.0), x);
    HVP(bome_pow(g, x, 2.0), x);
    HVP(bome_pow(g, p, 0.5), p);
    HVP(bome_pow(g, p, -1.5), p);
}

Test(hvp, exp_log_sqrt_square)
{
    bome_node *x = param(M(3, 4), -1.5, 1.5), *p = param(M(3, 4), 0.3, 3);
    HVP(bome_exp(g, x), x);
    HVP(bome_log(g, p), p);
    HVP(bome_sqrt(g, p), p);
    HVP(bome_square(g, x), x);
}

Test(hvp, tanh_sigmoid_softplus)
{
    bome_node *x = param(M(3, 4), -2.5, 2.5);
    HVP(bome_tanh(g, x), x);
    HVP(bome_sigmoid(g, x), x);
    HVP(bome_softplus(g, x), x);
    /* Composites, so that the fused tanh/sigmoid backward kernels see a
     * non-constant adjoint. */
    HVP(bome_tanh(g, bome_tanh(g, x)), x);
    HVP(bome_square(g, bome_sigmoid(g, x)), x);
}

Test(hvp, kinks_away_from_them)
{
    bome_node *x = param_away(M(3, 4), -2, 2, 0);
    HVP(bome_relu(g, x), x); /* zero Hessian */
    HVP(bome_abs(g, x), x);
    HVP(bome_square(g, bome_relu(g, x)), x);
    HVP(bome_square(g, bome_abs(g, x)), x);
    bome_node *c = param_away(M(3, 4), -1.5, 1.5, -0.5);
    bome_real *d = bome_data(c);
    for (size_t i = 0; i < 12; i++)
        if (fabs(d[i] - 0.7) < 0.05)
            d[i] = 0.8;
    HVP(bome_clamp(g, c, -0.5, 0.7), c);
    HVP(bome_square(g, bome_clamp(g, c, -0.5, 0.7)), c);
    HVP(bome_square(g, bome_max(g, x)), x);
    HVP(bome_square(g, bome_max_axis(g, x, 0)), x);
    HVP(bome_exp(g, bome_max_axis(g, x, 1)), x);
}

/* ---- binary, with broadcasting ----------------------------------------------------- */

Test(hvp, binary_broadcasting)
{
    bome_shape sa[4] = {M(3, 4), S, V(4), M(3, 1)}, sb[4] = {M(3, 4), M(3, 4), M(3, 4), M(3, 4)};
    for (int k = 0; k < 4; k++)
        for (int flip = 0; flip < 2; flip++) {
            bome_shape s1 = flip ? sb[k] : sa[k], s2 = flip ? sa[k] : sb[k];
            bome_node *a = param(s1, -1.5, 1.5), *b = param(s2, 0.5, 2);
            HVP(bome_mul(g, a, b), a, b);
            HVP(bome_div(g, a, b), a, b);
            HVP(bome_mul(g, bome_add(g, a, b), bome_sub(g, a, b)), a, b);
        }
    bome_node *a = param(V(4), 0.5, 2);
    HVP(bome_div(g, a, a), a);
}

/* ---- reductions ------------------------------------------------------------------------ */

Test(hvp, reductions)
{
    bome_node *x = param(M(3, 4), -1.5, 1.5), *w = param(M(3, 4), -1.5, 1.5);
    HVP(bome_square(g, bome_sum(g, x)), x);
    HVP(bome_square(g, bome_mean(g, x)), x);
    for (int axis = 0; axis < 2; axis++) {
        HVP(bome_square(g, bome_sum_axis(g, x, axis)), x);
        HVP(bome_exp(g, bome_mean_axis(g, x, axis)), x);
    }
    HVP(bome_dot(g, x, w), x, w);
    HVP(bome_dot(g, bome_exp(g, x), w), x, w);
    HVP(bome_sumsq(g, x), x);
    HVP(bome_sumsq(g, bome_tanh(g, x)), x);
}

/* ---- linear algebra -------------------------------------------------------------------------- */

Test(hvp, matmul_matvec_transpose)
{
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            bome_node *a = param(ta ? M(4, 3) : M(3, 4), -1.5, 1.5), *b = param(tb ? M(2, 4) : M(4, 2), -1.5, 1.5);
            HVP(bome_matmul(g, a, ta, b, tb), a, b);
            HVP(bome_tanh(g, bome_matmul(g, a, ta, b, tb)), a, b);
        }
    bome_node *A = param(M(3, 4), -1.5, 1.5), *v = param(V(4), -1.5, 1.5), *w = param(V(3), -1.5, 1.5);
    HVP(bome_matmul(g, A, 0, v, 1), A, v);
    HVP(bome_sigmoid(g, bome_matmul(g, w, 1, v, 0)), w, v);
    HVP(bome_matmul(g, A, 0, A, 1), A);
    HVP(bome_tanh(g, bome_matvec(g, A, 0, v)), A, v);
    HVP(bome_tanh(g, bome_matvec(g, A, 1, w)), A, w);
    HVP(bome_mul(g, bome_transpose(g, A), bome_transpose(g, A)), A);
    HVP(bome_square(g, bome_transpose(g, v)), v);
}

/* ---- shape ops ------------------------------------------------------------------------------- */

Test(hvp, reshape_slice_concat)
{
    bome_node *x = param(M(4, 3), -1.5, 1.5), *v = param(V(6), -1.5, 1.5);
    HVP(bome_tanh(g, bome_reshape(g, x, M(2, 6))), x);
    HVP(bome_square(g, bome_reshape(g, v, M(3, 2))), v);
    HVP(bome_tanh(g, bome_slice(g, x, 0, 1, 3)), x);
    HVP(bome_tanh(g, bome_slice(g, x, 1, 1, 3)), x);
    HVP(bome_tanh(g, bome_slice(g, v, 0, 2, 5)), v);
    HVP(bome_mul(g, bome_slice(g, x, 1, 0, 1), bome_slice(g, x, 1, 2, 3)), x);
    bome_node *a = param(M(2, 3), -1.5, 1.5), *b = param(M(4, 3), -1.5, 1.5), *c = param(M(2, 2), -1.5, 1.5);
    HVP(bome_tanh(g, bome_concat(g, a, b, 0)), a, b);
    HVP(bome_softmax(g, bome_concat(g, a, c, 1)), a, c);
    HVP(bome_square(g, bome_concat(g, v, v, 0)), v);
}

Test(hvp, gather_rows_and_pick)
{
    static const int32_t idx[5] = {2, 0, 2, 3, 2}, lab[4] = {2, 0, 1, 2};
    bome_node *x = param(M(4, 3), -1.5, 1.5), *v = param(V(4), -1.5, 1.5);
    bome_node *li = labels(5, idx), *ll = labels(4, lab);
    HVP(bome_tanh(g, bome_gather_rows(g, x, li)), x);
    HVP(bome_square(g, bome_gather_rows(g, v, li)), v);
    HVP(bome_exp(g, bome_pick(g, x, ll)), x);
    HVP(bome_mul(g, bome_pick(g, x, ll), bome_pick(g, bome_tanh(g, x), ll)), x);
}

/* ---- learning ops ------------------------------------------------------------------------------ */

Test(hvp, logsumexp_softmax_log_softmax)
{
    bome_shape shapes[3] = {M(3, 4), V(5), M(1, 4)};
    for (int c = 0; c < 3; c++) {
        bome_node *x = param(shapes[c], -2, 2);
        HVP(bome_logsumexp(g, x), x);
        HVP(bome_softmax(g, x), x);
        HVP(bome_log_softmax(g, x), x);
        HVP(bome_square(g, bome_logsumexp(g, x)), x);
    }
}

Test(hvp, cross_entropy)
{
    static const int32_t lab[4] = {2, 0, 1, 2};
    bome_node *x = param(M(4, 3), -2, 2), *l = labels(4, lab), *w = param(V(4), 0, 1);
    HVP(bome_cross_entropy(g, x, l), x);
    HVP(bome_cross_entropy_rows(g, x, l), x);
    /* An adjoint that depends on x reaches the fused backward's dy input. */
    HVP(bome_sumsq(g, bome_cross_entropy_rows(g, x, l)), x);
    /* Hyper-cleaning's form: a weighted mean of per-sample losses, both
     * the weights and the logits differentiated. */
    HVP(bome_weighted_mean(g, bome_cross_entropy_rows(g, x, l), w), x, w);
    bome_node *W = param(M(3, 3), -1, 1), *in = param(M(4, 3), -1, 1);
    HVP(bome_cross_entropy(g, bome_matmul(g, in, 0, W, 0), l), W);
    bome_node *x1 = param(M(1, 3), -2, 2), *l1 = labels(1, lab);
    HVP(bome_cross_entropy(g, x1, l1), x1);
}

Test(hvp, weighted_mean)
{
    bome_node *x = param(V(5), -2, 2), *w = param(V(5), 0, 1);
    HVP(bome_weighted_mean(g, bome_exp(g, x), w), x, w);
}

Test(hvp, stop_gradient)
{
    /* Held constant, a stopped value of another param is just a factor. */
    bome_node *x = param(V(4), -1, 1), *c = param(V(4), -1, 1);
    HVP(bome_mul(g, bome_stop_gradient(g, bome_exp(g, c)), bome_square(g, x)), x);
}

/* ---- third order -------------------------------------------------------------------------------- */

/* f(x) = sum(tanh(x)^3). With t = tanh(x0), s = 1 - t^2 the third derivative
 * of f along x0 is 6 s^3 - 42 t^2 s^2 + 12 t^4 s, and zero across entries. */
Test(third_order, tanh_cubed)
{
    bome_real xv[3] = {0.3, -0.7, 1.1}, uv[3] = {1, 0, 0};
    bome_node *x = bome_param(g, "x", V(3)), *u = bome_const(g, V(3), uv);
    bome_set(g, x, xv);
    bome_node *y = bome_sum(g, bome_pow(g, bome_tanh(g, x), 3.0)), *gx, *hu, *g3;
    bome_grad(g, y, 1, &x, &gx);
    bome_grad(g, bome_dot(g, gx, u), 1, &x, &hu);                       /* H e0 */
    bome_grad(g, bome_sum(g, bome_slice(g, hu, 0, 0, 1)), 1, &x, &g3); /* d (H e0)_0 / dx */
    cr_assert_eq(bome_graph_status(g), BOME_OK, "%s", bome_graph_errmsg(g));
    cr_assert_eq(bome_eval(g, 1, &g3), BOME_OK, "%s", bome_graph_errmsg(g));
    double t = tanh(xv[0]), s = 1 - t * t;
    double want = 6 * s * s * s - 42 * t * t * s * s + 12 * t * t * t * t * s;
    const bome_real *d = bome_data(g3);
    cr_assert(fabs(d[0] - want) < TOL(1e-12), "f'''(x0) = %.15g, expected %.15g", d[0], want);
    cr_assert(d[1] == 0.0 && d[2] == 0.0, "%g %g", d[1], d[2]);
    /* The same against finite differences of the HVP component. */
    bome_gradcheck_report r;
    cr_assert_eq(bome_gradcheck(g, bome_sum(g, bome_slice(g, hu, 0, 0, 1)), 1, &x, 0, &r), BOME_OK);
    cr_assert_lt(r.max_rel_error, TOL(1e-6));
}

/* Third order through the fused cross-entropy backward and softmax. */
Test(third_order, cross_entropy)
{
    static const int32_t lab[3] = {1, 0, 2};
    bome_node *x = param(M(3, 3), -2, 2), *l = labels(3, lab), *gx, *hu;
    bome_node *y = bome_cross_entropy(g, x, l);
    bome_grad(g, y, 1, &x, &gx);
    bome_grad(g, bome_dot(g, gx, random_const(M(3, 3))), 1, &x, &hu);
    HVP(bome_dot(g, hu, random_const(M(3, 3))), x);
}

/* ---- gradients with respect to op nodes (unrolling) ---------------------------- */

TestSuite(wrt_node, .init = setup, .fini = teardown);

/* d sum(exp(u)) / du at u = 2x is exp(u), whatever made u. */
Test(wrt_node, value_of_an_intermediate)
{
    bome_node *x = param(BOME_VECTOR(4), -1, 1);
    bome_node *u = bome_scale(g, x, 2.0);
    bome_node *y = bome_add(g, bome_sum(g, bome_exp(g, u)), bome_sumsq(g, x)), *gu, *gx;
    cr_assert_eq(bome_grad(g, y, 1, &u, &gu), BOME_OK, "%s", bome_graph_errmsg(g));
    cr_assert_eq(bome_grad(g, y, 1, &x, &gx), BOME_OK);
    bome_node *outs[2] = {gu, gx};
    cr_assert_eq(bome_eval(g, 2, outs), BOME_OK);
    for (int i = 0; i < 4; i++) {
        double xi = bome_data(x)[i];
        cr_expect(fabs(bome_data(gu)[i] - exp(2 * xi)) < TOL(1e-12), "d/du[%d]", i);
        cr_expect(fabs(bome_data(gx)[i] - (2 * exp(2 * xi) + 2 * xi)) < TOL(1e-12), "d/dx[%d] (the total)", i);
    }
}

/* Two unrolled gradient steps on a softmax-regression loss h(w, th):
 * th1 = th0 - a grad_th h(w, th0), th2 = th1 - a grad_th h(w, th1), then
 * d f(th2) / dw through both steps, checked against finite differences of
 * the whole unrolled map. Second order through cross-entropy and matmul. */
Test(wrt_node, unrolled_steps_match_finite_differences)
{
    static const int32_t y[5] = {0, 2, 1, 1, 0};
    bome_node *w = param(BOME_VECTOR(5), 0.2, 0.9);
    bome_node *th = param(BOME_MATRIX(3, 4), -0.5, 0.5);
    bome_node *X = random_const(BOME_MATRIX(5, 4)), *Xv = random_const(BOME_MATRIX(5, 4));
    bome_node *l = labels(5, y);
    bome_node *t = th;
    for (int k = 0; k < 2; k++) {
        bome_node *h = bome_add(g, bome_weighted_mean(g, bome_cross_entropy_rows(g, bome_matmul(g, X, 0, t, 1), l), w),
                                bome_scale(g, bome_sumsq(g, t), 0.01));
        bome_node *d;
        cr_assert_eq(bome_grad(g, h, 1, &t, &d), BOME_OK, "%s", bome_graph_errmsg(g));
        t = bome_sub(g, t, bome_scale(g, d, 0.7));
    }
    bome_node *f = bome_cross_entropy(g, bome_matmul(g, Xv, 0, t, 1), l);
    bome_gradcheck_report r;
    bome_node *xs[2] = {w, th};
    cr_assert_eq(bome_gradcheck(g, f, 2, xs, 0, &r), BOME_OK, "%s", bome_graph_errmsg(g));
    cr_expect_lt(r.max_rel_error, TOL(1e-6), "param %d entry %zu: analytic %.12g numeric %.12g", r.param, r.index,
                 r.analytic, r.numeric);
}
