/* The engine's own small GEMM kernels (ad/gemm.c), which row-tiled plans use
 * for their narrow products: each kernel set the CPU has against CBLAS and a
 * plain triple loop, at odd sizes and every width up to the width rule; and
 * row-tiled plans that take them against whole-matrix plans (CBLAS), with 1
 * and 3 threads, for each transpose a plan makes. And the vectorized exp of
 * cross-entropy (ad/vexp.c) against libm's. */
#include <criterion/criterion.h>

#include <bome/ad.h>
#include "prec.h"

#include "internal.h" /* ad/: the kernels, their switch, the plan's stage */

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void fill(bome_real *x, size_t n, double phase)
{
    for (size_t i = 0; i < n; i++)
        x[i] = sin(phase + 0.37 * (double)i) + 0.25 * cos(1.3 * (double)i + phase);
}

/* |a - b| within TOL(1e-12) max(1, |b|), or within the rounding bound of
 * sums of len products, which the kernels and CBLAS add in different orders:
 * gamma_len sum |a_i b_i| (Higham) with fill's |values| <= 1.25, so at most
 * len eps 1.5625 len; in float32 that bound is the larger. */
static void expect_close(const bome_real *a, const bome_real *b, size_t n, int len, const char *what, int set, int m,
                         int N, int K)
{
    double sums = 1.6 * (double)len * (double)len * BOME_REAL_EPSILON;
    for (size_t i = 0; i < n; i++)
        if (!(fabs(a[i] - b[i]) <= fmax(TOL(1e-12) * fmax(1.0, fabs(b[i])), sums))) {
            cr_expect(false, "%s, set %s, m %d N %d K %d: entry %zu: %.17g vs %.17g", what, ad_kernel_name(set), m, N,
                      K, i, a[i], b[i]);
            return;
        }
}

/* The kernel sets this CPU has, CBLAS excluded; how many. */
static int kernel_sets(int *sets)
{
    int n = 0;
    for (int k = AD_KERNEL_BLAS + 1; k <= AD_KERNEL_AVX512; k++)
        if (ad_kernel_set(k))
            sets[n++] = k;
    ad_kernel_set(-1);
    return n;
}

/* C[i][j] = sum_l A[i][l] B[j bj + l bl]: the plain loop. */
static void reference(int m, int N, int K, const bome_real *A, int lda, const bome_real *B, size_t bj, size_t bl, bome_real *C,
                      int ldc)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int l = 0; l < K; l++)
                s += A[(size_t)i * lda + l] * B[j * bj + l * bl];
            C[(size_t)i * ldc + j] = s;
        }
}

/* One size of each kernel: C from the kernel, from CBLAS and from a plain
 * loop; leading dimensions wider than the rows, so that strides are used. */
static void check_kernels(int set, int m, int N, int K)
{
    int lda = K + 3, ldb = K + 1, ldc = N + 2;
    size_t na = (size_t)m * lda, nb = (size_t)N * ldb, nc = (size_t)m * ldc;
    bome_real *A = malloc(na * sizeof *A), *B = malloc(nb * sizeof *B), *C = calloc(nc, sizeof *C),
           *R = calloc(nc, sizeof *R), *L = calloc(nc, sizeof *L);
    fill(A, na, 0.1 * m);
    fill(B, nb, 0.3 * N);

    /* NT: C = A B^T, B N x K */
    cr_assert(ad_kernel_set(set));
    ad_gemm_nt(m, N, K, A, lda, B, ldb, C, ldc, A, m);
    cr_assert(ad_kernel_set(AD_KERNEL_BLAS));
    ad_gemm_nt(m, N, K, A, lda, B, ldb, R, ldc, NULL, 0);
    reference(m, N, K, A, lda, B, (size_t)ldb, 1, L, ldc);
    expect_close(C, R, nc, K, "nt vs cblas", set, m, N, K);
    expect_close(C, L, nc, K, "nt vs loop", set, m, N, K);

    /* NN: C = A B, B K x N (ldb >= N) */
    int ldbn = N + 1;
    bome_real *Bn = malloc((size_t)K * ldbn * sizeof *Bn);
    fill(Bn, (size_t)K * ldbn, 0.7);
    cr_assert(ad_kernel_set(set));
    ad_gemm_nn(m, N, K, A, lda, Bn, ldbn, C, ldc);
    cr_assert(ad_kernel_set(AD_KERNEL_BLAS));
    ad_gemm_nn(m, N, K, A, lda, Bn, ldbn, R, ldc);
    reference(m, N, K, A, lda, Bn, 1, (size_t)ldbn, L, ldc);
    expect_close(C, R, nc, K, "nn vs cblas", set, m, N, K);
    expect_close(C, L, nc, K, "nn vs loop", set, m, N, K);

    /* TN: C (N x K) = Z^T X over m rows, Z m x N (the narrow side), X m x K;
     * first overwrites, then a second call adds. */
    int ldz = N + 1, ldx = K + 2, ldt = K + 1;
    bome_real *Z = malloc((size_t)m * ldz * sizeof *Z), *X = malloc((size_t)m * ldx * sizeof *X);
    size_t nt = (size_t)N * ldt;
    bome_real *T = malloc(nt * sizeof *T), *U = malloc(nt * sizeof *U), *V = calloc(nt, sizeof *V);
    fill(Z, (size_t)m * ldz, 1.1);
    fill(X, (size_t)m * ldx, 2.3);
    for (size_t i = 0; i < nt; i++)
        T[i] = U[i] = NAN; /* first must not read what is there */
    for (int pass = 0; pass < 2; pass++) {
        cr_assert(ad_kernel_set(set));
        ad_gemm_tn(m, N, K, Z, ldz, X, ldx, T, ldt, pass == 0, X, m);
        cr_assert(ad_kernel_set(AD_KERNEL_BLAS));
        ad_gemm_tn(m, N, K, Z, ldz, X, ldx, U, ldt, pass == 0, NULL, 0);
        for (int j = 0; j < N; j++)
            for (int l = 0; l < K; l++) {
                double s = pass ? V[(size_t)j * ldt + l] : 0.0;
                for (int i = 0; i < m; i++)
                    s += Z[(size_t)i * ldz + j] * X[(size_t)i * ldx + l];
                V[(size_t)j * ldt + l] = s;
            }
        for (int j = 0; j < N; j++) { /* the padding between rows is the caller's */
            expect_close(T + (size_t)j * ldt, U + (size_t)j * ldt, (size_t)K, 2 * m, "tn vs cblas", set, m, N, K);
            expect_close(T + (size_t)j * ldt, V + (size_t)j * ldt, (size_t)K, 2 * m, "tn vs loop", set, m, N, K);
        }
    }
    ad_kernel_set(-1);
    free(A);
    free(B);
    free(C);
    free(R);
    free(L);
    free(Bn);
    free(Z);
    free(X);
    free(T);
    free(U);
    free(V);
}

Test(fused, kernels_every_width_odd_sizes)
{
    int sets[4], ns = kernel_sets(sets);
    if (!ns)
        cr_skip("no kernel set on this CPU: its products go to CBLAS");
    const int ms[] = {1, 3, 7, 64, 67}, Ks[] = {1, 5, 13, 31};
    for (int s = 0; s < ns; s++)
        for (int N = 1; N <= AD_NARROW_MAX; N++)
            for (size_t a = 0; a < sizeof ms / sizeof ms[0]; a++)
                for (size_t b = 0; b < sizeof Ks / sizeof Ks[0]; b++)
                    check_kernels(sets[s], ms[a], N, Ks[b]);
}

/* The hyper-cleaning sizes: K = 784, ten outputs, a 64-row block and a block
 * of 200 rows (past the TN kernel's inner row blocks). */
Test(fused, kernels_hyperclean_sizes)
{
    int sets[4], ns = kernel_sets(sets);
    if (!ns)
        cr_skip("no kernel set on this CPU");
    for (int s = 0; s < ns; s++) {
        check_kernels(sets[s], 64, 10, 784);
        check_kernels(sets[s], 200, 10, 787);
    }
}

Test(fused, kernels_no_rows)
{
    int sets[4], ns = kernel_sets(sets);
    for (int s = 0; s < ns; s++) {
        bome_real C[6] = {1, 2, 3, 4, 5, 6}, A[1] = {0}, B[1] = {0};
        cr_assert(ad_kernel_set(sets[s]));
        ad_gemm_tn(0, 2, 3, A, 2, B, 3, C, 3, true, NULL, 0); /* an empty sum is zero */
        for (int i = 0; i < 6; i++)
            cr_expect_eq(C[i], 0.0);
        C[0] = 7;
        ad_gemm_tn(0, 2, 3, A, 2, B, 3, C, 3, false, NULL, 0); /* and adds nothing */
        cr_expect_eq(C[0], 7.0);
    }
    ad_kernel_set(-1);
}

Test(fused, kernel_switch)
{
    cr_expect(ad_kernel_set(AD_KERNEL_BLAS));
    cr_expect_eq(ad_kernel_get(), AD_KERNEL_BLAS);
    cr_expect(!ad_kernel_set(AD_KERNEL_AVX512 + 1));
    cr_expect_eq(ad_kernel_get(), AD_KERNEL_BLAS, "a refused set leaves the choice as it was");
    cr_expect(ad_kernel_set(-1));
    int sets[4], ns = kernel_sets(sets);
    cr_expect_eq(ad_kernel_get(), ns ? sets[ns - 1] : AD_KERNEL_BLAS, "the automatic choice is the widest set");
    cr_expect_str_eq(ad_kernel_name(AD_KERNEL_BLAS), "blas");
    /* AVX-512 takes every width the tiled stage has; CBLAS none */
    if (ad_kernel_set(AD_KERNEL_AVX512))
        cr_expect_eq(ad_kernel_width(), AD_NARROW_MAX);
    ad_kernel_set(AD_KERNEL_BLAS);
    cr_expect_eq(ad_kernel_width(), 0);
    ad_kernel_set(-1);
}

/* ---- plans ------------------------------------------------------------------- */

enum { R = 203, D = 13, H = 5, C = 4 };

static bome_real X[R * D], V[R];
static int32_t Y[R];

static void fill_data(void)
{
    fill(X, R * D, 0.0);
    for (int i = 0; i < R; i++) {
        V[i] = 0.5 + 0.4 * sin(i);
        Y[i] = (i * 7) % C;
    }
}

/* A parameter set to fill's values times 0.3. */
static bome_node *param(bome_graph *g, const char *name, bome_shape s, double phase)
{
    bome_node *p = bome_param(g, name, s);
    bome_real *buf = malloc(bome_size(p) * sizeof *buf);
    fill(buf, bome_size(p), phase);
    for (size_t i = 0; i < bome_size(p); i++)
        buf[i] *= 0.3;
    bome_set(g, p, buf);
    free(buf);
    return p;
}

enum model { LINEAR_T, LINEAR_N, MLP };

typedef struct net {
    bome_graph *g;
    bome_node *outs[8];
    int n_outs;
    bome_plan *plan;
} net;

/*
 * mean(clamp(v) .* CE(logits)) + 0.001 |w|^2 and its gradients, with logits
 *   LINEAR_T  X W^T + b, W width x D   (the forward NT, the reduction dZ^T X)
 *   LINEAR_N  X W + b, W D x width     (the forward NN, the reduction X^T dZ)
 *   MLP       tanh(X W1^T + b1) W2^T + b2, W1 width x D, W2 C x width (an
 *             NT on a row node, and dZ W2: an NN in the stage)
 * The classes are width columns for the linear models, C for the network.
 */
static net build(enum model mo, int width, bool tiled, int threads)
{
    net n = {0};
    bome_graph *g = n.g = bome_graph_new();
    bome_graph_set_tiling(g, tiled ? 100 : 0, 7);
    cr_assert_eq(bome_graph_set_threads(g, threads), BOME_OK);
    bome_node *x = bome_input(g, "x", BOME_MATRIX(R, D));
    bome_bind(g, x, X);
    bome_node *y = bome_labels(g, "y", R);
    bome_bind_labels(g, y, Y);
    bome_node *v = param(g, "v", BOME_VECTOR(R), 0.0);
    bome_set(g, v, V);
    bome_node *w, *b, *z, *params[5];
    int np;
    if (mo == MLP) {
        w = param(g, "w1", BOME_MATRIX(width, D), 0.1);
        b = param(g, "b1", BOME_VECTOR(width), 0.2);
        bome_node *w2 = param(g, "w2", BOME_MATRIX(C, width), 0.3), *b2 = param(g, "b2", BOME_VECTOR(C), 0.4);
        z = bome_add(g, bome_matmul(g, bome_tanh(g, bome_add(g, bome_matmul(g, x, 0, w, 1), b)), 0, w2, 1), b2);
        params[3] = w2;
        params[4] = b2;
        np = 5;
    } else {
        bool t = mo == LINEAR_T;
        w = param(g, "w", t ? BOME_MATRIX(width, D) : BOME_MATRIX(D, width), 0.1);
        b = param(g, "b", BOME_VECTOR(width), 0.2);
        z = bome_add(g, bome_matmul(g, x, 0, w, t), b);
        np = 3;
    }
    params[0] = v;
    params[1] = w;
    params[2] = b;
    /* labels below the class count: width may be 1 */
    int classes = mo == MLP ? C : width;
    for (int i = 0; i < R; i++)
        Y[i] = (i * 7) % classes;
    bome_node *loss = bome_weighted_mean(g, bome_cross_entropy_rows(g, z, y), bome_clamp(g, v, 0, 1));
    loss = bome_add(g, loss, bome_scale(g, bome_sumsq(g, w), 0.001));
    n.outs[0] = loss;
    bome_grad(g, loss, np, params, n.outs + 1);
    n.n_outs = 1 + np;
    cr_assert_eq(bome_graph_status(g), BOME_OK, "%s", bome_graph_errmsg(g));
    n.plan = bome_plan_new(g, n.n_outs, n.outs);
    cr_assert(n.plan, "%s", bome_graph_errmsg(g));
    return n;
}

/* The stage's products, by kind: [0] row NT, [1] row NN, [2] reductions;
 * each must take the kernels of the set in use when it is narrow enough for
 * them (all of them under AVX-512), CBLAS otherwise. */
static void stage_products(const bome_plan *p, int count[3])
{
    count[0] = count[1] = count[2] = 0;
    for (size_t i = p->n_pre; i < p->n_pre + p->n_stage; i++) {
        const bome_node *n = p->run[i];
        if (n->op->tile != ad_matmul_tile)
            continue;
        int width = n->ip[0] ? n->shape.rows : n->shape.cols;
        cr_expect_eq(ad_matmul_fused(n), width <= ad_kernel_width(),
                     "set %s: stage product #%d (%dx%d): kernels %d, width %d, the set's limit %d",
                     ad_kernel_name(ad_kernel_get()), n->id, n->shape.rows, n->shape.cols, ad_matmul_fused(n), width,
                     ad_kernel_width());
        count[n->ip[0] ? 2 : (n->ip[1] ? 0 : 1)]++;
    }
}

static void expect_same(const net *a, const net *b, const char *what, int width, int threads)
{
    for (int i = 0; i < a->n_outs; i++) {
        const bome_real *p = bome_data(a->outs[i]), *q = bome_data(b->outs[i]);
        for (size_t k = 0; k < bome_size(a->outs[i]); k++)
            if (!(fabs(p[k] - q[k]) <= TOL(1e-12) * fmax(1.0, fabs(q[k])))) {
                cr_expect(false, "%s, width %d, %d threads: output %d entry %zu: %.17g vs %.17g", what, width,
                          threads, i, k, p[k], q[k]);
                return;
            }
    }
}

/* Tiled on the kernels against whole-matrix CBLAS and against tiled CBLAS. */
static void compare(enum model mo, int width, int threads, const int want[3])
{
    int sets[4], ns = kernel_sets(sets);
    if (!ns)
        cr_skip("no kernel set on this CPU");
    fill_data();
    net whole = build(mo, width, false, 1), tiled = build(mo, width, true, threads);
    cr_assert_eq(bome_plan_tiled_rows(whole.plan), 0);
    cr_assert_eq(bome_plan_tiled_rows(tiled.plan), R, "width %d", width);
    cr_assert_eq(bome_plan_run(whole.plan), BOME_OK);
    for (int s = 0; s < ns; s++) {
        cr_assert(ad_kernel_set(sets[s]));
        int count[3];
        stage_products(tiled.plan, count);
        for (int k = 0; k < 3; k++)
            cr_expect_eq(count[k], want[k], "width %d: %d stage products of kind %d, expected %d", width, count[k], k,
                         want[k]);
        cr_assert_eq(bome_plan_run(tiled.plan), BOME_OK, "%s", bome_graph_errmsg(tiled.g));
        expect_same(&tiled, &whole, ad_kernel_name(sets[s]), width, threads);
    }
    /* and CBLAS in the same blocks, the path the kernels replace */
    net blas = build(mo, width, true, threads);
    ad_kernel_set(AD_KERNEL_BLAS);
    for (size_t i = blas.plan->n_pre; i < blas.plan->n_pre + blas.plan->n_stage; i++)
        cr_expect(blas.plan->run[i]->op->tile != ad_matmul_tile || !ad_matmul_fused(blas.plan->run[i]));
    cr_assert_eq(bome_plan_run(blas.plan), BOME_OK);
    ad_kernel_set(-1);
    expect_same(&tiled, &blas, "tiled cblas", width, threads);
    bome_graph_free(whole.g);
    bome_graph_free(tiled.g);
    bome_graph_free(blas.g);
}

/* X W^T: the forward NT and the reduction dZ^T X, every width. */
Test(fused, plan_x_wt_every_width)
{
    const int want[3] = {1, 0, 1};
    for (int width = 1; width <= AD_NARROW_MAX; width++) {
        compare(LINEAR_T, width, 1, want);
        compare(LINEAR_T, width, 3, want);
    }
}

/* X W: the forward NN and the reduction X^T dZ, whose narrow side is D. */
Test(fused, plan_x_w_every_width)
{
    const int want[3] = {0, 1, 1};
    for (int width = 1; width <= AD_NARROW_MAX; width++) {
        compare(LINEAR_N, width, 1, want);
        compare(LINEAR_N, width, 3, want);
    }
}

/* A hidden layer: NT on the data and on a row node, the adjoint dZ W2 (NN)
 * and two reductions. */
Test(fused, plan_tanh_network)
{
    const int want[3] = {2, 1, 2};
    const int widths[] = {1, 3, 8, 17, 64};
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) {
        compare(MLP, widths[i], 1, want);
        compare(MLP, widths[i], 3, want);
    }
}

/* ---- exp --------------------------------------------------------------------- */

/* Units in the last place of bome_real between a and b (the reference is
 * rounded to bome_real first: libm's exp, once rounded to float, is what
 * single precision can at best return). */
static double ulps(bome_real a, double b_)
{
    bome_real b = (bome_real)b_;
    if (a == b || (isnan(a) && isnan(b)))
        return 0;
#ifdef BOME_FLOAT32
    int32_t ia, ib;
#else
    int64_t ia, ib;
#endif
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    return (double)(ia > ib ? ia - ib : ib - ia);
}

/* Within 1 ulp of libm over the range where exp is normal, libm's own
 * results at the edges (infinities, NaN, subnormal results, overflow), and
 * every length (the vector tails). */
Test(fused, exp_within_an_ulp_of_libm)
{
    int sets[4], ns = kernel_sets(sets);
    enum { N = 200003 };
    bome_real *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    const double edge[] = {-INFINITY, INFINITY, NAN, 0.0, -0.0, -708.0, -708.5, -745.2, -746.0, 709.0, 709.8,
                           710.0, 1e-300, -1e-300, -0x1.62e42fefa39efp-2, 0x1.62e42fefa39efp-2};
    size_t ne = sizeof edge / sizeof edge[0];
    for (int i = 0; i < N; i++)
        x[i] = i < (int)ne ? edge[i] : (i % 2 ? -40.0 : 1454.0) * (0.5 + 0.5 * sin(1e3 * i)) - (i % 2 ? 0.0 : 745.0);
    for (int s = 0; s < ns; s++) {
        cr_assert(ad_kernel_set(sets[s]));
        for (int len = 0; len < 20; len++) { /* short arrays: all tail */
            memcpy(y, x, (size_t)len * sizeof *y);
            ad_exp_inplace(y, (size_t)len);
            for (int i = 0; i < len; i++)
                cr_expect(ulps(y[i], exp(x[i])) <= 1, "%s, length %d: exp(%.17g) = %.17g, libm %.17g",
                          ad_kernel_name(sets[s]), len, x[i], y[i], exp(x[i]));
        }
        memcpy(y, x, N * sizeof *y);
        ad_exp_inplace(y, N);
        double worst = 0;
        int at = 0;
        for (int i = 0; i < N; i++)
            if (ulps(y[i], exp(x[i])) > worst) {
                worst = ulps(y[i], exp(x[i]));
                at = i;
            }
        cr_expect(worst <= 1, "%s: exp(%.17g) = %.17g, libm %.17g (%g ulp)", ad_kernel_name(sets[s]), x[at], y[at],
                  exp(x[at]), worst);
    }
    ad_kernel_set(AD_KERNEL_BLAS); /* libm itself */
    memcpy(y, x, N * sizeof *y);
    ad_exp_inplace(y, N);
    for (int i = 0; i < N; i++)
        if (ulps(y[i], exp(x[i])) != 0) {
            cr_expect(false, "blas set: not libm's exp at %.17g", x[i]);
            break;
        }
    ad_kernel_set(-1);
    free(x);
    free(y);
}

/* tanh over an array: libm's exactly in float64; in float32 within an ulp
 * of libm's double tanh rounded to float, signed zeros, infinities and NaN
 * included, for tiny, small and saturated arguments. */
Test(fused, tanh_within_an_ulp_of_libm)
{
    enum { N = 100003 };
    bome_real *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    const double edge[] = {0.0, -0.0, INFINITY, -INFINITY, NAN, 1e-30, -1e-30, 0x1p-12, -0x1p-12, 0x1.fffp-13,
                           1e-3, 0.5, -0.5, 9.0, 20.0, -20.0, 400.0, -400.0};
    size_t ne = sizeof edge / sizeof edge[0];
    for (int i = 0; i < N; i++)
        x[i] = i < (int)ne ? edge[i] : (bome_real)(12.0 * sin(1e3 * i) * pow(10.0, -(i % 7)));
    for (int len = 0; len < N; len = len ? len * 7 + 1 : 1) {
        ad_tanh_array(x, y, (size_t)len);
        for (int i = 0; i < len; i++) {
            double want = tanh((double)x[i]);
            cr_assert(ulps(y[i], want) <= (BOME_REAL_BITS == 64 ? 0 : 1), "tanh(%.17g) = %.17g, libm %.17g", x[i],
                      y[i], want);
            cr_assert(!signbit(y[i]) == !signbit(want) || isnan(want), "tanh(%g): sign", x[i]);
        }
    }
    free(x);
    free(y);
}
