/*
 * tests/test_graph.c: the engine around the ops: errors and their messages,
 * NULL arguments, evaluating only what is needed, plans, zero-copy binding,
 * no allocation on re-evaluation, memory accounting, gradient accumulation
 * and the DOT export.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bome/ad.h"
#include "prec.h"

#define S BOME_SCALAR
#define V(n) BOME_VECTOR(n)
#define M(r, c) BOME_MATRIX(r, c)

static bome_graph *g;

static void setup(void)
{
    g = bome_graph_new();
    cr_assert_not_null(g);
}

static void teardown(void) { bome_graph_free(g); }

TestSuite(errors, .init = setup, .fini = teardown);
TestSuite(eval, .init = setup, .fini = teardown);
TestSuite(grad, .init = setup, .fini = teardown);
TestSuite(memory);

/* n is NULL, the graph holds code and its message has every string given;
 * then the error is cleared. */
static void expect_error_(int line, const void *n, int code, const char *const *subs, int nsub)
{
    cr_assert_null(n, "line %d: expected NULL (message: '%s')", line, bome_graph_errmsg(g));
    cr_assert_eq(bome_graph_status(g), code, "line %d: status %d (%s), expected %d; message '%s'", line,
                 bome_graph_status(g), bome_status_str(bome_graph_status(g)), code, bome_graph_errmsg(g));
    for (int i = 0; i < nsub; i++)
        cr_assert_not_null(strstr(bome_graph_errmsg(g), subs[i]), "line %d: message '%s' lacks '%s'", line,
                           bome_graph_errmsg(g), subs[i]);
    bome_graph_clear_error(g);
}

#define SUBS(...) (const char *const[]){__VA_ARGS__}, (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(char *))
#define EXPECT_ERROR(n, code, ...) expect_error_(__LINE__, (n), (code), SUBS(__VA_ARGS__))
/* For int-returning functions: the code returned and recorded. */
#define EXPECT_RC(call, code, ...)                                                   \
    do {                                                                             \
        int rc_ = (call);                                                            \
        cr_assert_eq(rc_, (code), "%s returned %d: %s", #call, rc_, bome_graph_errmsg(g)); \
        expect_error_(__LINE__, NULL, (code), SUBS(__VA_ARGS__));                               \
    } while (0)

static bome_node *labels(int n, const int32_t *vals)
{
    bome_node *l = bome_labels(g, "lab", n);
    if (vals)
        cr_assert_eq(bome_bind_labels(g, l, vals), BOME_OK);
    return l;
}

/* ---- errors at build time ------------------------------------------------------ */

Test(errors, shape_messages_name_op_and_shapes)
{
    bome_node *a = bome_param(g, "a", M(2, 3)), *b = bome_param(g, "b", M(4, 5)), *c = bome_param(g, "c", M(3, 2));
    bome_node *v = bome_param(g, "v", V(4)), *l3 = labels(3, NULL);
    EXPECT_ERROR(bome_matmul(g, a, 0, b, 0), BOME_ERR_SHAPE, "matmul", "matrix(2x3)", "matrix(4x5)", "3", "4");
    EXPECT_ERROR(bome_matmul(g, a, 1, b, 1), BOME_ERR_SHAPE, "matmul", "matrix(2x3)^T", "matrix(4x5)^T");
    EXPECT_ERROR(bome_add(g, a, c), BOME_ERR_SHAPE, "add", "matrix(2x3)", "matrix(3x2)");
    EXPECT_ERROR(bome_mul(g, v, a), BOME_ERR_SHAPE, "mul", "vector(4)", "matrix(2x3)");
    EXPECT_ERROR(bome_sub(g, a, v), BOME_ERR_SHAPE, "sub");
    EXPECT_ERROR(bome_div(g, a, v), BOME_ERR_SHAPE, "div");
    EXPECT_ERROR(bome_dot(g, a, c), BOME_ERR_SHAPE, "dot", "matrix(2x3)", "matrix(3x2)");
    EXPECT_ERROR(bome_pick(g, a, l3), BOME_ERR_SHAPE, "pick", "matrix(2x3)", "3 labels");
    EXPECT_ERROR(bome_pick(g, v, l3), BOME_ERR_SHAPE, "pick", "vector(4)");
    EXPECT_ERROR(bome_cross_entropy(g, a, l3), BOME_ERR_SHAPE, "cross_entropy", "matrix(2x3)", "3 labels");
    EXPECT_ERROR(bome_cross_entropy_rows(g, v, l3), BOME_ERR_SHAPE, "cross_entropy", "vector(4)");
    EXPECT_ERROR(bome_reshape(g, a, M(4, 2)), BOME_ERR_SHAPE, "reshape", "matrix(2x3)", "matrix(4x2)");
    EXPECT_ERROR(bome_reshape(g, a, M(0, 6)), BOME_ERR_SHAPE, "reshape", "invalid");
    EXPECT_ERROR(bome_matvec(g, a, 0, v), BOME_ERR_SHAPE, "matvec", "matrix(2x3)", "vector(4)");
    EXPECT_ERROR(bome_matvec(g, a, 0, c), BOME_ERR_SHAPE, "matvec");
    EXPECT_ERROR(bome_concat(g, a, b, 0), BOME_ERR_SHAPE, "concat", "matrix(2x3)", "matrix(4x5)");
    EXPECT_ERROR(bome_concat(g, a, c, 1), BOME_ERR_SHAPE, "concat");
    EXPECT_ERROR(bome_weighted_mean(g, v, bome_param(g, "w", V(3))), BOME_ERR_SHAPE, "weighted_mean", "vector(4)",
                 "vector(3)");
    EXPECT_ERROR(bome_weighted_mean(g, a, a), BOME_ERR_SHAPE, "weighted_mean");
    cr_assert_eq(bome_graph_status(g), BOME_OK);
    cr_assert_str_empty(bome_graph_errmsg(g));
}

Test(errors, sticky_first_error)
{
    bome_node *a = bome_param(g, "a", M(2, 3)), *b = bome_param(g, "b", M(4, 5));
    bome_node *bad = bome_matmul(g, a, 0, b, 0);
    cr_assert_null(bad);
    char first[512];
    strcpy(first, bome_graph_errmsg(g));
    size_t size = bome_graph_size(g);
    /* A later error of another kind does not replace it ... */
    cr_assert_null(bome_add(g, a, b));
    cr_assert_null(bome_clamp(g, a, 1, 0));
    cr_assert_eq(bome_bind(g, bad, NULL), BOME_ERR_ARG);
    /* ... and builders given its NULL return NULL quietly. */
    bome_node *gx = a;
    cr_assert_null(bome_exp(g, bad));
    cr_assert_null(bome_sum(g, bome_tanh(g, bad)));
    cr_assert_null(bome_cross_entropy(g, bad, labels(2, NULL)));
    cr_assert_neq(bome_grad(g, bome_sum(g, bad), 1, &a, &gx), BOME_OK);
    cr_assert_null(gx, "bome_grad leaves out[] NULL on error");
    cr_assert(bome_graph_status(g) == BOME_ERR_SHAPE && !strcmp(bome_graph_errmsg(g), first));
    cr_assert_eq(bome_graph_size(g), size + 1); /* the labels only */
    /* Cleared, building goes on. */
    bome_graph_clear_error(g);
    cr_assert(bome_graph_status(g) == BOME_OK && !strcmp(bome_graph_errmsg(g), ""));
    cr_assert(bome_matmul(g, a, 0, a, 1) && bome_graph_status(g) == BOME_OK);
}

Test(errors, grad_errors)
{
    bome_node *x = bome_param(g, "x", V(3)), *in = bome_input(g, "in", V(3)), *c = bome_scalar(g, 2);
    bome_node *e = bome_exp(g, x), *y = bome_sum(g, e), *out[2] = {x, x};
    EXPECT_RC(bome_grad(g, e, 1, &x, out), BOME_ERR_SHAPE, "bome_grad", "vector(3)", "scalar");
    cr_assert_null(out[0]);
    EXPECT_RC(bome_grad(g, y, 1, &in, out), BOME_ERR_KIND, "bome_grad", "input");
    EXPECT_RC(bome_grad(g, y, 1, &c, out), BOME_ERR_KIND, "const");
    bome_node *lab = bome_labels(g, "lab", 3);
    EXPECT_RC(bome_grad(g, y, 1, &lab, out), BOME_ERR_KIND, "labels");
    bome_node *two[2] = {x, c};
    out[0] = out[1] = x;
    EXPECT_RC(bome_grad(g, y, 2, two, out), BOME_ERR_KIND, "wrt[1]");
    cr_assert(out[0] == NULL && out[1] == NULL);
    EXPECT_RC(bome_grad(g, NULL, 1, &x, out), BOME_ERR_ARG, "y is NULL");
    EXPECT_RC(bome_grad(g, y, 1, NULL, out), BOME_ERR_ARG, "bome_grad");
    EXPECT_RC(bome_grad(g, y, 1, &x, NULL), BOME_ERR_ARG, "bome_grad");
    bome_node *nul = NULL;
    EXPECT_RC(bome_grad(g, y, 1, &nul, out), BOME_ERR_ARG, "wrt[0]");
    EXPECT_RC(bome_grad(g, y, -1, &x, out), BOME_ERR_ARG, "bome_grad");
    cr_assert_eq(bome_grad(g, y, 0, NULL, NULL), BOME_OK); /* nothing asked */
}

/* Each builder given NULL: ARG, naming the op (on a cleared graph each time). */
#define NULL_ARG(call, name) EXPECT_ERROR(call, BOME_ERR_ARG, name, "NULL")

Test(errors, null_arguments_everywhere)
{
    bome_node *x = bome_param(g, "x", M(2, 2)), *l = labels(2, NULL), *N = NULL;
    NULL_ARG(bome_add(g, x, N), "add: argument 2");   NULL_ARG(bome_sub(g, N, x), "sub: argument 1");
    NULL_ARG(bome_mul(g, N, N), "mul");               NULL_ARG(bome_div(g, x, N), "div");
    NULL_ARG(bome_neg(g, N), "neg");                  NULL_ARG(bome_scale(g, N, 2), "affine");
    NULL_ARG(bome_add_scalar(g, N, 1), "affine");     NULL_ARG(bome_pow(g, N, 2), "pow");
    NULL_ARG(bome_exp(g, N), "exp");                  NULL_ARG(bome_log(g, N), "log");
    NULL_ARG(bome_sqrt(g, N), "sqrt");                NULL_ARG(bome_abs(g, N), "abs");
    NULL_ARG(bome_square(g, N), "square");            NULL_ARG(bome_tanh(g, N), "tanh");
    NULL_ARG(bome_sigmoid(g, N), "sigmoid");          NULL_ARG(bome_relu(g, N), "relu");
    NULL_ARG(bome_softplus(g, N), "softplus");        NULL_ARG(bome_clamp(g, N, 0, 1), "clamp");
    NULL_ARG(bome_sum(g, N), "sum");                  NULL_ARG(bome_mean(g, N), "mean");
    NULL_ARG(bome_sum_axis(g, N, 0), "sum_axis");     NULL_ARG(bome_mean_axis(g, N, 1), "mean_axis");
    NULL_ARG(bome_dot(g, x, N), "dot");               NULL_ARG(bome_sumsq(g, N), "sumsq");
    NULL_ARG(bome_max(g, N), "max");                  NULL_ARG(bome_max_axis(g, N, 0), "max_axis");
    NULL_ARG(bome_matmul(g, N, 0, x, 0), "matmul");   NULL_ARG(bome_matvec(g, x, 0, N), "matvec");
    NULL_ARG(bome_transpose(g, N), "transpose");      NULL_ARG(bome_reshape(g, N, S), "reshape");
    NULL_ARG(bome_slice(g, N, 0, 0, 1), "slice");     NULL_ARG(bome_concat(g, x, N, 0), "concat");
    NULL_ARG(bome_gather_rows(g, N, l), "gather_rows"); NULL_ARG(bome_gather_rows(g, x, N), "gather_rows");
    NULL_ARG(bome_pick(g, x, N), "pick");             NULL_ARG(bome_logsumexp(g, N), "logsumexp");
    NULL_ARG(bome_softmax(g, N), "softmax");          NULL_ARG(bome_log_softmax(g, N), "log_softmax");
    NULL_ARG(bome_cross_entropy(g, N, l), "cross_entropy: argument 1");
    NULL_ARG(bome_cross_entropy_rows(g, x, N), "cross_entropy: argument 2");
    NULL_ARG(bome_weighted_mean(g, N, x), "weighted_mean"); NULL_ARG(bome_stop_gradient(g, N), "stop_gradient");
    /* Leaves and bindings. */
    bome_real v[4] = {0};
    EXPECT_RC(bome_bind(g, N, v), BOME_ERR_ARG, "bome_bind");
    EXPECT_RC(bome_bind_labels(g, N, (int32_t[2]){0, 1}), BOME_ERR_ARG, "bome_bind_labels");
    EXPECT_RC(bome_bind_labels(g, l, NULL), BOME_ERR_ARG, "bome_bind_labels");
    EXPECT_RC(bome_set(g, N, v), BOME_ERR_ARG, "bome_set");
    EXPECT_RC(bome_set(g, x, NULL), BOME_ERR_ARG, "bome_set");
    EXPECT_RC(bome_bind(g, bome_input(g, "in", V(4)), NULL), BOME_ERR_ARG, "'in' needs memory");
    /* Evaluation, plans, checks, export. */
    EXPECT_RC(bome_eval(g, 1, &N), BOME_ERR_ARG, "bome_eval", "outs[0]");
    EXPECT_RC(bome_eval(g, 0, &x), BOME_ERR_ARG, "bome_eval");
    EXPECT_RC(bome_eval(g, 1, NULL), BOME_ERR_ARG, "bome_eval");
    EXPECT_ERROR(bome_plan_new(g, 1, &N), BOME_ERR_ARG, "bome_plan_new");
    cr_assert_eq(bome_plan_run(NULL), BOME_ERR_ARG);
    cr_assert_eq(bome_plan_size(NULL), 0);
    bome_gradcheck_report rep;
    bome_node *y = bome_sum(g, x);
    EXPECT_RC(bome_gradcheck(g, y, 1, &x, 0, NULL), BOME_ERR_ARG, "bome_gradcheck");
    EXPECT_RC(bome_gradcheck(g, y, 0, &x, 0, &rep), BOME_ERR_ARG, "bome_gradcheck");
    EXPECT_RC(bome_gradcheck(g, NULL, 1, &x, 0, &rep), BOME_ERR_ARG, "y is NULL");
    EXPECT_RC(bome_gradcheck(g, y, 1, &N, 0, &rep), BOME_ERR_ARG, "wrt[0]");
    EXPECT_RC(bome_graph_dot(g, NULL, 0, NULL), BOME_ERR_ARG, "bome_graph_dot");
    EXPECT_RC(bome_graph_dot(g, stderr, 1, &N), BOME_ERR_ARG, "bome_graph_dot");
    /* Readers. */
    bome_shape ns = bome_node_shape(NULL);
    cr_assert(!bome_data(NULL) && bome_value(NULL) == 0.0 && bome_size(NULL) == 0 && bome_node_id(NULL) == -1);
    cr_assert(!bome_node_name(NULL) && bome_node_op(NULL) && ns.rows == 0 && ns.cols == 0);
}

Test(errors, wrong_kinds)
{
    bome_node *x = bome_param(g, "x", V(3)), *c = bome_const(g, V(3), NULL), *e = bome_exp(g, x);
    bome_node *l = labels(3, NULL);
    bome_real v[3] = {1, 2, 3};
    EXPECT_RC(bome_bind(g, c, v), BOME_ERR_KIND, "bome_bind", "const");
    EXPECT_RC(bome_bind(g, e, v), BOME_ERR_KIND, "bome_bind", "exp");
    EXPECT_RC(bome_bind(g, l, v), BOME_ERR_KIND, "bome_bind", "labels");
    EXPECT_RC(bome_bind_labels(g, x, (int32_t[3]){0}), BOME_ERR_KIND, "bome_bind_labels", "param");
    EXPECT_RC(bome_set(g, e, v), BOME_ERR_KIND, "bome_set", "exp");
    EXPECT_RC(bome_set(g, l, v), BOME_ERR_KIND, "bome_set", "labels");
    bome_node *m = bome_param(g, "m", M(3, 2));
    EXPECT_ERROR(bome_pick(g, m, x), BOME_ERR_KIND, "pick", "param");
    EXPECT_ERROR(bome_gather_rows(g, m, x), BOME_ERR_KIND, "gather_rows", "param");
    EXPECT_ERROR(bome_cross_entropy(g, m, c), BOME_ERR_KIND, "cross_entropy", "const");
    /* Labels are data for the label ops only: elsewhere they have no values. */
    EXPECT_ERROR(bome_exp(g, l), BOME_ERR_KIND, "exp", "label");
    EXPECT_ERROR(bome_add(g, x, l), BOME_ERR_KIND, "add", "label");
    EXPECT_ERROR(bome_stop_gradient(g, l), BOME_ERR_KIND, "stop_gradient", "label");
    EXPECT_ERROR(bome_reshape(g, l, M(3, 1)), BOME_ERR_KIND, "reshape", "label");
    EXPECT_ERROR(bome_slice(g, l, 0, 0, 1), BOME_ERR_KIND, "slice", "label");
    EXPECT_ERROR(bome_pick(g, l, l), BOME_ERR_KIND, "pick", "label");
}

Test(errors, arguments_out_of_range)
{
    bome_node *x = bome_param(g, "x", M(3, 4)), *v = bome_param(g, "v", V(5));
    EXPECT_ERROR(bome_clamp(g, x, 1, -1), BOME_ERR_ARG, "clamp", "1", "-1");
    EXPECT_ERROR(bome_clamp(g, x, NAN, 1), BOME_ERR_ARG, "clamp");
    cr_assert_not_null(bome_clamp(g, x, 0.5, 0.5));
    EXPECT_ERROR(bome_slice(g, x, 0, 2, 4), BOME_ERR_ARG, "slice", "[2, 4)", "matrix(3x4)");
    EXPECT_ERROR(bome_slice(g, x, 1, -1, 2), BOME_ERR_ARG, "slice"); EXPECT_ERROR(bome_slice(g, x, 1, 2, 2), BOME_ERR_ARG, "slice");
    EXPECT_ERROR(bome_slice(g, x, 2, 0, 1), BOME_ERR_ARG, "slice", "axis 2");
    EXPECT_ERROR(bome_slice(g, v, 0, 3, 6), BOME_ERR_ARG, "slice", "vector(5)");
    int axes[2] = {2, -1};
    for (int k = 0; k < 2; k++) {
        EXPECT_ERROR(bome_sum_axis(g, x, axes[k]), BOME_ERR_ARG, "sum_axis", "axis");
        EXPECT_ERROR(bome_mean_axis(g, x, axes[k]), BOME_ERR_ARG, "mean_axis", "axis");
        EXPECT_ERROR(bome_max_axis(g, x, axes[k]), BOME_ERR_ARG, "max_axis", "axis");
        EXPECT_ERROR(bome_concat(g, x, x, axes[k]), BOME_ERR_ARG, "concat", "axis");
        EXPECT_ERROR(bome_concat(g, v, v, axes[k]), BOME_ERR_ARG, "concat", "axis");
    }
}

Test(errors, invalid_leaf_shapes)
{
    bome_shape bad[] = {M(0, 3), M(3, 0), M(-1, 2), V(0), V(-2), {1, 2, 3}, {0, 2, 1}, {3, 1, 1}, {-1, 1, 1}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        EXPECT_ERROR(bome_param(g, "p", bad[i]), BOME_ERR_SHAPE, "param", "'p'", "invalid shape");
        EXPECT_ERROR(bome_input(g, "in", bad[i]), BOME_ERR_SHAPE, "input", "'in'");
        EXPECT_ERROR(bome_const(g, bad[i], NULL), BOME_ERR_SHAPE, "const");
    }
    EXPECT_ERROR(bome_labels(g, "l", 0), BOME_ERR_SHAPE, "labels", "'l'");
    EXPECT_ERROR(bome_labels(g, NULL, -3), BOME_ERR_SHAPE, "labels");
    cr_assert_eq(bome_graph_size(g), 0);
}

Test(errors, graph_null_everywhere)
{
    bome_node *x = bome_param(g, "x", V(2)), *l = labels(2, NULL), *out = x;
    bome_real v[2] = {1, 2};
    bome_gradcheck_report r;
    bome_graph_free(NULL);
    bome_graph_clear_error(NULL);
    cr_assert(bome_graph_status(NULL) == BOME_ERR_ARG && bome_graph_errmsg(NULL) != NULL);
    cr_assert(bome_graph_size(NULL) == 0 && bome_graph_bytes(NULL) == 0);
    cr_assert(!bome_param(NULL, "x", V(2)) && !bome_input(NULL, "x", V(2)) && !bome_labels(NULL, "x", 2));
    cr_assert(!bome_const(NULL, V(2), v) && !bome_scalar(NULL, 1));
    cr_assert(bome_bind(NULL, x, v) == BOME_ERR_ARG && bome_set(NULL, x, v) == BOME_ERR_ARG);
    cr_assert(bome_bind_labels(NULL, l, (int32_t[2]){0}) == BOME_ERR_ARG);
    cr_assert(!bome_add(NULL, x, x) && !bome_exp(NULL, x) && !bome_clamp(NULL, x, 1, 0) && !bome_mean(NULL, x));
    cr_assert(!bome_mean_axis(NULL, x, 0) && !bome_max_axis(NULL, x, 0) && !bome_dot(NULL, x, x));
    cr_assert(!bome_matmul(NULL, x, 0, x, 1) && !bome_matvec(NULL, x, 0, x) && !bome_reshape(NULL, x, M(2, 1)));
    cr_assert(!bome_slice(NULL, x, 0, 0, 1) && !bome_concat(NULL, x, x, 0) && !bome_gather_rows(NULL, x, l));
    cr_assert(!bome_pick(NULL, x, l) && !bome_logsumexp(NULL, x) && !bome_cross_entropy(NULL, x, l));
    cr_assert(!bome_cross_entropy_rows(NULL, x, l) && !bome_weighted_mean(NULL, x, x));
    cr_assert(!bome_stop_gradient(NULL, x) && !bome_plan_new(NULL, 1, &x));
    cr_assert_eq(bome_grad(NULL, bome_sum(g, x), 1, &x, &out), BOME_ERR_ARG);
    cr_assert_null(out);
    cr_assert_eq(bome_eval(NULL, 1, &x), BOME_ERR_ARG);
    cr_assert_eq(bome_gradcheck(NULL, x, 1, &x, 0, &r), BOME_ERR_ARG);
    cr_assert_eq(bome_graph_dot(NULL, stderr, 0, NULL), BOME_ERR_ARG);
    cr_assert_eq(bome_graph_status(g), BOME_OK, "%s", bome_graph_errmsg(g));
}

Test(errors, status_strings)
{
    const char *want[] = {"ok", "invalid argument", "shape mismatch", "wrong kind of node", "out of memory",
                          "index out of range", "non-finite value", "input/output error", "call out of order",
                          "workers failed"};
    cr_assert_eq(BOME_ERR_STATE, 8);
    cr_assert_eq(BOME_ERR_WORKERS, 9);
    for (int c = BOME_OK; c <= BOME_ERR_WORKERS; c++)
        cr_assert_str_eq(bome_status_str(c), want[c]);
    cr_assert_str_eq(bome_status_str(-1), "unknown status");
    cr_assert_str_eq(bome_status_str(99), "unknown status");
}

/* ---- errors while evaluating -------------------------------------------------------- */

Test(errors, labels_at_eval)
{
    static int32_t lab[3] = {0, 2, 1};
    bome_node *x = bome_param(g, "logits", M(3, 3)), *l = bome_labels(g, "y", 3);
    bome_node *ce = bome_cross_entropy(g, x, l);
    cr_assert_not_null(ce);
    EXPECT_RC(bome_eval(g, 1, &ce), BOME_ERR_ARG, "cross_entropy", "'y'", "not bound");
    cr_assert_eq(bome_bind_labels(g, l, lab), BOME_OK);
    cr_assert(bome_eval(g, 1, &ce) == BOME_OK && fabs(bome_value(ce) - log(3.0)) < TOL(1e-15));
    lab[1] = 3;
    EXPECT_RC(bome_eval(g, 1, &ce), BOME_ERR_RANGE, "cross_entropy", "label[1] = 3", "[0, 3)");
    lab[1] = -1;
    EXPECT_RC(bome_eval(g, 1, &ce), BOME_ERR_RANGE, "cross_entropy", "label[1] = -1");
    lab[1] = 2;
    bome_node *gx;
    cr_assert_eq(bome_grad(g, ce, 1, &x, &gx), BOME_OK);
    lab[2] = 7; /* the fused backward checks too */
    EXPECT_RC(bome_eval(g, 1, &gx), BOME_ERR_RANGE, "cross_entropy", "label[2] = 7");
    lab[2] = 1;
    bome_node *pk = bome_pick(g, x, l), *gr = bome_gather_rows(g, x, l);
    lab[0] = 5;
    EXPECT_RC(bome_eval(g, 1, &pk), BOME_ERR_RANGE, "pick", "label[0] = 5");
    lab[0] = 3;
    EXPECT_RC(bome_eval(g, 1, &gr), BOME_ERR_RANGE, "gather_rows", "label[0] = 3", "[0, 3)");
    bome_node *v = bome_param(g, "v", V(2)), *gv = bome_gather_rows(g, v, l);
    lab[0] = 2;
    EXPECT_RC(bome_eval(g, 1, &gv), BOME_ERR_RANGE, "gather_rows", "label[0] = 2", "[0, 2)");
    lab[0] = 0;
    bome_node *ug = bome_gather_rows(g, x, bome_labels(g, NULL, 2));
    EXPECT_RC(bome_eval(g, 1, &ug), BOME_ERR_ARG, "gather_rows", "not bound");
}

/* ---- evaluation -------------------------------------------------------------------------- */

Test(eval, only_what_is_needed)
{
    bome_real xv[3] = {1, 2, 3}, nv[3] = {-1, -2, -3};
    bome_node *x = bome_input(g, "x", V(3)), *n = bome_input(g, "neg", V(3));
    bome_bind(g, x, xv);
    bome_bind(g, n, nv);
    bome_node *bad = bome_log(g, n), *badsum = bome_sum(g, bad);
    bome_node *y = bome_sum(g, bome_exp(g, x));
    cr_assert_eq(bome_eval(g, 1, &y), BOME_OK);
    cr_assert_float_eq(bome_value(y), exp(1) + exp(2) + exp(3), 30 * TOL(1e-13 / 30));
    for (int k = 0; k < 3; k++)
        cr_assert(bome_data(bad)[k] == 0.0 && bome_value(badsum) == 0.0, "log of a negative input was evaluated");
    bome_plan *p = bome_plan_new(g, 1, &y);
    cr_assert_eq(bome_plan_size(p), 2); /* exp, sum */
    bome_node *both[2] = {y, badsum};
    cr_assert_eq(bome_plan_size(bome_plan_new(g, 2, both)), 4);
    cr_assert_eq(bome_plan_size(bome_plan_new(g, 1, &x)), 0); /* a leaf: nothing to run */
    cr_assert_eq(bome_eval(g, 1, &x), BOME_OK);
    cr_assert_eq(bome_eval(g, 2, both), BOME_OK);
    cr_assert(isnan(bome_data(bad)[0]));
}

Test(eval, plans_follow_values_and_bindings)
{
    bome_real a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {-1, 0.5, 2, 0, 1, 3};
    bome_node *x = bome_input(g, "x", V(6)), *w = bome_param(g, "w", M(2, 3));
    bome_node *xm = bome_reshape(g, x, M(2, 3)), *xs = bome_slice(g, x, 0, 2, 5);
    bome_node *y = bome_sum(g, bome_mul(g, xm, w)), *z = bome_sumsq(g, xs);
    bome_real wv[6] = {1, 1, 1, 1, 1, 1};
    bome_set(g, w, wv);
    bome_bind(g, x, a);
    bome_node *outs[2] = {y, z};
    bome_plan *p = bome_plan_new(g, 2, outs);
    cr_assert_not_null(p);
    cr_assert(bome_plan_run(p) == BOME_OK);
    cr_assert(bome_value(y) == 21.0 && bome_value(z) == 9 + 16 + 25);
    cr_assert_eq(bome_eval(g, 2, outs), BOME_OK); /* the same as eval */
    cr_assert(bome_value(y) == 21.0 && bome_value(z) == 9 + 16 + 25);
    wv[0] = 3; /* a new param value */
    bome_set(g, w, wv);
    cr_assert(bome_plan_run(p) == BOME_OK && bome_value(y) == 23.0);
    bome_bind(g, x, b); /* rebinding, seen through the views */
    cr_assert(bome_plan_run(p) == BOME_OK);
    cr_assert(bome_value(y) == 3 * -1 + 0.5 + 2 + 0 + 1 + 3 && bome_value(z) == 4 + 0 + 1);
    b[3] = 10; /* zero-copy: the caller's memory is read */
    cr_assert(bome_eval(g, 1, &z) == BOME_OK && bome_value(z) == 4 + 100 + 1);
    /* A param bound to caller memory, set through it, and unbound again. */
    bome_real mine[6] = {0, 0, 0, 0, 0, 0};
    cr_assert_eq(bome_bind(g, w, mine), BOME_OK);
    cr_assert(bome_plan_run(p) == BOME_OK && bome_value(y) == 0.0);
    bome_set(g, w, wv);
    cr_assert_eq(mine[0], 3.0, "bome_set writes through to bound memory");
    mine[1] = 2;
    cr_assert(bome_plan_run(p) == BOME_OK && bome_value(y) == 3 * -1 + 2 * 0.5 + 2 + 10 + 1 + 3);
    cr_assert_eq(bome_bind(g, w, NULL), BOME_OK);
    cr_assert(bome_data(w)[0] == 3.0 && bome_data(w)[1] == 1.0);
}

Test(eval, node_accessors)
{
    bome_node *x = bome_param(g, "weights", M(2, 3)), *y = bome_sum(g, bome_tanh(g, x));
    cr_assert(bome_node_id(x) == 0 && bome_node_id(y) == 2 && bome_graph_size(g) == 3);
    cr_assert(!strcmp(bome_node_op(x), "param") && !strcmp(bome_node_op(y), "sum"));
    cr_assert(!strcmp(bome_node_name(x), "weights") && bome_node_name(y) == NULL);
    cr_assert(bome_size(x) == 6 && bome_node_shape(y).rank == 0 && bome_node_shape(x).rows == 2);
    cr_assert_gt(bome_graph_bytes(g), 6 * sizeof(bome_real));
}

/* ---- gradients ---------------------------------------------------------------------------- */

Test(grad, independent_param_gets_zeros)
{
    bome_node *x = bome_param(g, "x", V(3)), *p = bome_param(g, "p", M(2, 2)), *out[2];
    bome_real pv[4] = {1, 2, 3, 4};
    bome_set(g, p, pv);
    cr_assert_eq(bome_grad(g, bome_sum(g, bome_exp(g, x)), 2, (bome_node *[]){x, p}, out), BOME_OK);
    cr_assert(bome_node_shape(out[1]).rank == 2 && bome_size(out[1]) == 4);
    cr_assert_eq(bome_eval(g, 2, out), BOME_OK);
    for (int k = 0; k < 4; k++)
        cr_assert(bome_data(out[1])[k] == 0.0 && bome_data(out[0])[k % 3] == 1.0);
    /* y created before p, and p used only after y. */
    bome_node *q = bome_param(g, "q", V(3)), *gq;
    bome_node *y2 = bome_sum(g, x);
    cr_assert_not_null(bome_mul(g, y2, q));
    cr_assert_eq(bome_grad(g, y2, 1, &q, &gq), BOME_OK);
    cr_assert_eq(bome_eval(g, 1, &gq), BOME_OK);
    cr_assert(bome_data(gq)[0] == 0 && bome_data(gq)[2] == 0);
}

Test(grad, accumulates_over_uses)
{
    bome_real xv[3] = {0.5, -1, 2};
    bome_node *x = bome_param(g, "x", V(3)), *gx, *gz, *hz;
    bome_set(g, x, xv);
    bome_node *y = bome_sum(g, bome_add(g, bome_mul(g, x, x), x)); /* x*x + x */
    cr_assert_eq(bome_grad(g, y, 1, &x, &gx), BOME_OK);
    cr_assert_eq(bome_eval(g, 1, &gx), BOME_OK);
    for (int k = 0; k < 3; k++)
        cr_assert_float_eq(bome_data(gx)[k], 2 * xv[k] + 1, TOL(1e-15));
    /* z = x^T (x + x) + sum(x) x_0 ... used five times, through views too. */
    bome_node *s = bome_slice(g, x, 0, 0, 1);
    bome_node *z = bome_add(g, bome_dot(g, x, bome_add(g, x, x)), bome_mul(g, bome_sum(g, x), bome_sum(g, s)));
    cr_assert_eq(bome_grad(g, z, 1, &x, &gz), BOME_OK);
    cr_assert_eq(bome_grad(g, bome_sum(g, gz), 1, &x, &hz), BOME_OK);
    bome_node *outs[3] = {z, gz, hz};
    cr_assert_eq(bome_eval(g, 3, outs), BOME_OK);
    double sum = 0.5 - 1 + 2;
    cr_assert_float_eq(bome_value(z), 2 * (0.25 + 1 + 4) + sum * 0.5, TOL(1e-14));
    for (int k = 0; k < 3; k++) {
        double want = 4 * xv[k] + xv[0] + (k == 0 ? sum : 0);
        cr_assert_float_eq(bome_data(gz)[k], want, TOL(1e-14), "dz/dx[%d]", k);
    }
    /* H = 4 I + e0 1^T + 1 e0^T: row sums 4 + 1 + (k == 0 ? 3 : 0)... as H 1. */
    for (int k = 0; k < 3; k++)
        cr_assert_float_eq(bome_data(hz)[k], 4 + 1 + (k == 0 ? 3 : 0), TOL(1e-14), "H1[%d]", k);
}

/* ---- DOT export ------------------------------------------------------------------------------ */

static char *dot_text(int n, bome_node *const *outs)
{
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    cr_assert_eq(bome_graph_dot(g, f, n, outs), BOME_OK, "%s", bome_graph_errmsg(g));
    long len = ftell(f);
    rewind(f);
    char *s = calloc((size_t)len + 1, 1);
    cr_assert_eq(fread(s, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    return s;
}

Test(eval, dot_export)
{
    bome_node *x = bome_param(g, "weights", V(3)), *u = bome_input(g, "unrelated_input", V(2));
    bome_node *q = bome_param(g, "we\"ird\\name", V(3));
    bome_node *y = bome_sum(g, bome_tanh(g, bome_mul(g, x, q))), *z = bome_log(g, u);
    cr_assert_not_null(z);
    char *all = dot_text(0, NULL);
    cr_assert_eq(strncmp(all, "digraph", 7), 0, "%s", all);
    const char *has[] = {"param", "'weights'", "tanh", "mul", "sum", "input", "'unrelated_input'", "log",
                         "we\\\"ird\\\\name", "vector(3)", "->"};
    for (size_t i = 0; i < sizeof has / sizeof has[0]; i++)
        cr_assert_not_null(strstr(all, has[i]), "'%s' missing:\n%s", has[i], all);
    cr_assert_eq(all[strlen(all) - 2], '}');
    free(all);
    char *sub = dot_text(1, &y);
    cr_assert_eq(strncmp(sub, "digraph", 7), 0);
    cr_assert(strstr(sub, "'weights'") && strstr(sub, "tanh") && strstr(sub, "we\\\"ird"), "%s", sub);
    cr_assert(!strstr(sub, "unrelated_input") && !strstr(sub, "log"), "%s", sub);
    free(sub);
}

/* ---- memory ----------------------------------------------------------------------------------- */

#define MAX_BLOCKS 1024

typedef struct counter {
    size_t calls;     /* requests with nsize > 0 */
    size_t allocated; /* bytes handed out (a resize counts its new size) */
    size_t freed;     /* bytes given back (a resize counts its old size) */
    long fail_after;  /* -1: never fail; k: fail every request after k */
    int bad_osize;    /* an osize that differs from the block's size */
    void *ptr[MAX_BLOCKS];
    size_t size[MAX_BLOCKS];
} counter;

static int find_block(counter *c, void *p)
{
    for (int i = 0; i < MAX_BLOCKS; i++)
        if (c->ptr[i] == p)
            return i;
    return -1;
}

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    counter *c = ud;
    int i = find_block(c, ptr); /* the block given, or a free slot */
    if (ptr && (i < 0 || c->size[i] != osize))
        c->bad_osize = 1;
    if (nsize == 0) {
        if (ptr && i >= 0) {
            c->freed += osize;
            c->ptr[i] = NULL;
        }
        free(ptr);
        return NULL;
    }
    if (c->fail_after >= 0 && ++c->calls > (size_t)c->fail_after)
        return NULL;
    c->calls += c->fail_after < 0;
    cr_assert_geq(i, 0, "more than %d live blocks", MAX_BLOCKS);
    void *p = realloc(ptr, nsize);
    if (!p)
        return NULL;
    c->freed += ptr ? osize : 0;
    c->ptr[i] = p;
    c->size[i] = nsize;
    c->allocated += nsize;
    return p;
}

static bome_graph *counted_graph(counter **c, long fail_after)
{
    *c = calloc(1, sizeof **c);
    (*c)->fail_after = fail_after;
    return bome_graph_new_alloc(counting_alloc, *c);
}

/* Frees the graph: every byte comes back, each with its own size. */
static void free_counted(bome_graph *gr, counter *c)
{
    bome_graph_free(gr);
    cr_assert_eq(c->allocated, c->freed, "allocated %zu, freed %zu", c->allocated, c->freed);
    cr_assert_eq(c->bad_osize, 0, "a block was freed or resized with the wrong osize");
    free(c);
}

typedef struct mlp {
    bome_node *X, *W1, *b1, *W2, *b2, *l, *loss, *outs[5];
} mlp;

/* A two-layer MLP on 8 samples of 4 features, 3 classes, with the gradient
 * of its cross-entropy. Returns the status after building. */
static int build_mlp(bome_graph *gr, mlp *m, bome_real *X, const int32_t *lab)
{
    m->X = bome_input(gr, "X", M(8, 4));
    m->W1 = bome_param(gr, "W1", M(4, 5));
    m->b1 = bome_param(gr, "b1", V(5));
    m->W2 = bome_param(gr, "W2", M(5, 3));
    m->b2 = bome_param(gr, "b2", V(3));
    m->l = bome_labels(gr, "y", 8);
    bome_bind(gr, m->X, X);
    bome_bind_labels(gr, m->l, lab);
    bome_node *h = bome_tanh(gr, bome_add(gr, bome_matmul(gr, m->X, 0, m->W1, 0), m->b1));
    bome_node *logits = bome_add(gr, bome_matmul(gr, h, 0, m->W2, 0), m->b2);
    m->loss = bome_cross_entropy(gr, logits, m->l);
    m->outs[0] = m->loss;
    bome_grad(gr, m->loss, 4, (bome_node *[]){m->W1, m->b1, m->W2, m->b2}, m->outs + 1);
    return bome_graph_status(gr);
}

static void perturb(bome_graph *gr, mlp *m, int it)
{
    bome_real w1[20], w2[15];
    for (int k = 0; k < 20; k++)
        w1[k] = sin(0.3 * k + it);
    for (int k = 0; k < 15; k++)
        w2[k] = cos(0.7 * k - it);
    bome_set(gr, m->W1, w1);
    bome_set(gr, m->W2, w2);
    bome_data(m->b1)[it % 5] += 0.01;
}

Test(memory, no_allocation_on_reevaluation)
{
    counter *c;
    bome_graph *gr = counted_graph(&c, -1);
    cr_assert_not_null(gr);
    bome_real X[32], X2[32];
    int32_t lab[8] = {0, 1, 2, 0, 1, 2, 0, 1};
    for (int k = 0; k < 32; k++) {
        X[k] = sin(1.1 * k);
        X2[k] = cos(0.9 * k);
    }
    mlp m;
    cr_assert_eq(build_mlp(gr, &m, X, lab), BOME_OK, "%s", bome_graph_errmsg(gr));
    cr_assert_eq(bome_eval(gr, 5, m.outs), BOME_OK, "%s", bome_graph_errmsg(gr));
    bome_plan *p = bome_plan_new(gr, 5, m.outs);
    cr_assert_not_null(p);
    cr_assert_eq(bome_plan_run(p), BOME_OK);
    double first = bome_value(m.loss);
    cr_assert(isfinite(first) && first > 0);
    size_t calls = c->calls, held = c->allocated - c->freed, bytes = bome_graph_bytes(gr);
    /* The graph's own count is what it holds from the allocator, less the
     * graph structure itself. */
    cr_assert_leq(bytes, held);
    for (int it = 0; it < 100; it++) {
        perturb(gr, &m, it);
        lab[it % 8] = (lab[it % 8] + 1) % 3;
        cr_assert_eq(bome_bind(gr, m.X, it % 2 ? X2 : X), BOME_OK);
        cr_assert_eq(bome_eval(gr, 5, m.outs), BOME_OK, "%s", bome_graph_errmsg(gr));
        double v = bome_value(m.loss);
        cr_assert_eq(bome_plan_run(p), BOME_OK);
        cr_assert_eq(bome_value(m.loss), v, "plan and eval agree");
        cr_assert(isfinite(v));
    }
    cr_assert_neq(bome_value(m.loss), first);
    cr_assert_eq(c->calls, calls, "%zu allocations while re-evaluating", c->calls - calls);
    cr_assert_eq(c->allocated - c->freed, held);
    cr_assert_eq(bome_graph_bytes(gr), bytes);
    free_counted(gr, c);
}

Test(memory, bytes_accounting)
{
    counter *c;
    bome_graph *gr = counted_graph(&c, -1);
    size_t base = c->allocated;
    cr_assert_eq(bome_graph_bytes(gr), 0);
    bome_node *big = bome_param(gr, "big", M(300, 120)); /* larger than one arena chunk */
    bome_node *v = bome_param(gr, "v", V(4));
    bome_node *y = bome_sum(gr, bome_square(gr, big));
    for (int k = 0; k < 300; k++) /* grows the tape past its first size */
        y = bome_add(gr, y, bome_sum(gr, bome_exp(gr, v)));
    bome_node *gr_out[2];
    cr_assert_eq(bome_grad(gr, y, 2, (bome_node *[]){big, v}, gr_out), BOME_OK, "%s", bome_graph_errmsg(gr));
    cr_assert_eq(bome_eval(gr, 2, gr_out), BOME_OK);
    cr_assert_eq(bome_graph_bytes(gr) + base, c->allocated - c->freed);
    cr_assert(bome_data(gr_out[0])[0] == 0.0 && bome_data(gr_out[1])[3] == 300.0);
    free_counted(gr, c);
}

Test(memory, allocation_failures)
{
    bome_real X[32] = {0};
    int32_t lab[8] = {0};
    int failed = 0, passed = 0;
    for (long k = 0; k < 40; k++) { /* the k+1-th request and all after it fail */
        counter *c;
        bome_graph *gr = counted_graph(&c, k);
        mlp m;
        int rc = gr ? build_mlp(gr, &m, X, lab) : BOME_ERR_NOMEM;
        if (gr && rc == BOME_OK)
            rc = bome_eval(gr, 5, m.outs);
        cr_assert(rc == BOME_OK || rc == BOME_ERR_NOMEM, "failing after %ld: %d %s", k, rc, bome_graph_errmsg(gr));
        if (gr && rc)
            cr_assert_not_null(strstr(bome_graph_errmsg(gr), "out of memory"), "%s", bome_graph_errmsg(gr));
        failed += rc != BOME_OK;
        passed += rc == BOME_OK;
        free_counted(gr, c);
    }
    cr_assert(failed > 3 && passed > 0, "%d failed, %d passed", failed, passed);
}
