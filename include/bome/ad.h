/*
 * bome/ad.h: tape-based reverse-mode automatic differentiation over dense
 * tensors of rank 0, 1 and 2, in double precision (libbome, pkg-config
 * bome) or in single precision (libbome_f32, pkg-config bome-f32).
 *
 * A worked example: the gradient and a Hessian-vector product of
 * y = sum(exp(x)) + ||x||^2 at x = (0, 1, 2).
 *
 *     #include <bome/ad.h>
 *
 *     bome_graph *g = bome_graph_new();
 *     bome_node *x = bome_param(g, "x", BOME_VECTOR(3));
 *     bome_node *u = bome_input(g, "u", BOME_VECTOR(3));
 *     bome_node *y = bome_add(g, bome_sum(g, bome_exp(g, x)), bome_sumsq(g, x));
 *     bome_node *gx, *hu;
 *     bome_grad(g, y, 1, &x, &gx);                       // dy/dx: more nodes
 *     bome_grad(g, bome_dot(g, gx, u), 1, &x, &hu);      // H u = d<dy/dx, u>/dx
 *     if (bome_graph_status(g) != BOME_OK)               // one check after building
 *         fprintf(stderr, "%s\n", bome_graph_errmsg(g));
 *     bome_real xv[3] = {0, 1, 2}, uv[3] = {1, 0, 0};
 *     bome_set(g, x, xv);
 *     bome_bind(g, u, uv);                               // zero-copy: u reads uv
 *     bome_node *outs[2] = {gx, hu};
 *     bome_eval(g, 2, outs);                             // runs only what gx, hu need
 *     const bome_real *grad = bome_data(gx);             // exp(x) + 2x
 *     const bome_real *hvp = bome_data(hu);              // (exp(0) + 2) u
 *     bome_graph_free(g);                                // frees every node
 *
 * The model.
 * - A graph is built once and evaluated many times. The order in which nodes
 *   are created is the tape. Evaluating again after changing parameter or
 *   input values rebuilds nothing and allocates nothing: every value buffer is
 *   allocated when its node is created.
 * - Leaves are parameters (differentiable; values owned by the graph or bound
 *   to caller memory), inputs (data, never differentiated, bound zero-copy to
 *   caller memory), label vectors (int32 data for the classification ops) and
 *   constants.
 * - bome_grad() appends the adjoint computation to the same tape as ordinary
 *   nodes, so a gradient is evaluated like any other node and can itself be
 *   differentiated.
 * - bome_stop_gradient() is an identity whose input no gradient ever reaches,
 *   at any order.
 * - Shapes: a scalar has rank 0 (1 x 1); a vector of n has rank 1 and is laid
 *   out as a row (1 x n), as in NumPy; a matrix has rank 2 and is row-major.
 *   Element-wise binary ops broadcast when each dimension is equal or 1:
 *   scalars against anything, a vector of n (or a 1 x n matrix) against the
 *   rows of an m x n matrix, an m x 1 matrix against its columns. To broadcast
 *   a vector of m down the columns, reshape it to BOME_MATRIX(m, 1) (free).
 * - Errors are values. A builder given bad shapes, a wrong leaf kind or NULL
 *   records a message naming the op and the shapes on the graph and returns
 *   NULL; the first error is kept, and builders given a NULL node return NULL
 *   quietly, so a caller checks bome_graph_status() once after building.
 *   Functions that return int return a bome_status. Nothing in bome aborts,
 *   exits or prints.
 * - A node belongs to the graph that made it: handing it to another graph
 *   (an op, bome_grad, bome_eval, bome_set, ...) is BOME_ERR_ARG. A node
 *   holds at most INT_MAX elements; a larger shape is BOME_ERR_ARG too.
 * - The graph owns all memory it allocates (nodes, buffers, plans) and frees
 *   it in bome_graph_free(); memory bound by the caller stays the caller's.
 */
#ifndef BOME_AD_H
#define BOME_AD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bome/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The element type. bome is built twice from one source, as FFTW builds
 * fftw3 and fftw3f: libbome in double precision and libbome_f32 in single.
 * A program chooses by the library it links; `pkg-config --cflags bome-f32`
 * defines BOME_FLOAT32, which makes bome_real float here. Scalars that are
 * settings (step sizes, tolerances, the solver's reports) stay double in
 * both. The two libraries share their function names: link one of them.
 * BOME_PRECISION_CHECK() tells whether the header and the library agree.
 */
#ifdef BOME_FLOAT32
typedef float bome_real;
#define BOME_REAL_BITS 32
#define BOME_REAL_EPSILON 1.1920928955078125e-07 /* FLT_EPSILON */
#define BOME_PRECISION_NAME "float32"
#else
typedef double bome_real;
#define BOME_REAL_BITS 64
#define BOME_REAL_EPSILON 2.220446049250313e-16 /* DBL_EPSILON */
#define BOME_PRECISION_NAME "float64"
#endif

/* The bits of the library's bome_real: 64 (libbome) or 32 (libbome_f32). */
int bome_real_bits(void);
/* Nonzero when the header's bome_real is the library's. */
#define BOME_PRECISION_CHECK() (bome_real_bits() == BOME_REAL_BITS)

typedef struct bome_graph bome_graph;
typedef struct bome_node bome_node;
typedef struct bome_plan bome_plan;

typedef enum bome_status {
    BOME_OK = 0,
    BOME_ERR_ARG,       /* a NULL or out-of-range argument */
    BOME_ERR_SHAPE,     /* shapes that do not fit the op */
    BOME_ERR_KIND,      /* the wrong kind of node: e.g. the gradient wrt an input */
    BOME_ERR_NOMEM,     /* the allocator returned NULL */
    BOME_ERR_RANGE,     /* a label or row index out of range, found while evaluating */
    BOME_ERR_NONFINITE, /* a NaN or infinity where a finite number was needed */
    BOME_ERR_IO,        /* a file could not be read or written */
    BOME_ERR_STATE,     /* a call out of order, e.g. stepping a finished solver */
    BOME_ERR_WORKERS    /* the workers of a distributed run could not sum a buffer
                         * (a worker died, the transport failed), or disagree */
} bome_status;

/* A short English name of a status code, e.g. "shape mismatch". */
const char *bome_status_str(int status);

/* ---- Shapes ------------------------------------------------------------ */

typedef struct bome_shape {
    int rank; /* 0, 1 or 2 */
    int rows; /* 1 for ranks 0 and 1 */
    int cols; /* 1 for rank 0; the length for rank 1 */
} bome_shape;

#define BOME_SCALAR ((bome_shape){0, 1, 1})
#define BOME_VECTOR(n) ((bome_shape){1, 1, (n)})
#define BOME_MATRIX(r, c) ((bome_shape){2, (r), (c)})

/* ---- Graphs ------------------------------------------------------------ */

/*
 * The allocator, as Lua's lua_Alloc: with nsize == 0 free ptr and return NULL;
 * otherwise return a block of nsize bytes (ptr == NULL: a new one; else resize
 * ptr, whose size is osize), aligned for any type. bome asks for 64-byte
 * alignment itself by over-allocating, so a plain realloc-based allocator works.
 */
typedef void *(*bome_alloc_fn)(void *ud, void *ptr, size_t osize, size_t nsize);

bome_graph *bome_graph_new(void);
/* NULL if the allocator fails. alloc == NULL means the C library's. */
bome_graph *bome_graph_new_alloc(bome_alloc_fn alloc, void *ud);
/* Frees the graph, every node, buffer and plan in it. NULL is fine. */
void bome_graph_free(bome_graph *g);

/* BOME_OK, or the code of the first error recorded on the graph. */
int bome_graph_status(const bome_graph *g);
/* The first error's message, "" when there is none. Never NULL. */
const char *bome_graph_errmsg(const bome_graph *g);
/* Forgets the recorded error so that building can go on. */
void bome_graph_clear_error(bome_graph *g);
/* Number of nodes on the tape. */
size_t bome_graph_size(const bome_graph *g);
/* Bytes the graph holds from its allocator (nodes, buffers, bookkeeping). */
size_t bome_graph_bytes(const bome_graph *g);

/* ---- Leaves ------------------------------------------------------------ */

/* A differentiable variable; its buffer is the graph's, zero-filled. */
bome_node *bome_param(bome_graph *g, const char *name, bome_shape shape);
/* Data: never differentiated. Bind it to caller memory before evaluating;
 * until then it reads zeros. */
bome_node *bome_input(bome_graph *g, const char *name, bome_shape shape);
/* A vector of n int32 class labels or row indices, bound to caller memory. */
bome_node *bome_labels(bome_graph *g, const char *name, int n);
/* A constant, copied from values (NULL: zeros). */
bome_node *bome_const(bome_graph *g, bome_shape shape, const bome_real *values);
bome_node *bome_scalar(bome_graph *g, bome_real value);

/*
 * Points a parameter or input at caller memory of bome_size(node) values,
 * zero-copy; the caller keeps it alive while the graph evaluates. Passing
 * NULL returns a parameter to its own buffer. Parameters may be written
 * through the pointer between evaluations; inputs are only read.
 */
int bome_bind(bome_graph *g, bome_node *leaf, bome_real *data);
/* Points a label vector at n int32 values of caller memory. */
int bome_bind_labels(bome_graph *g, bome_node *labels, const int32_t *data);
/* Copies bome_size(leaf) values into a parameter, input or constant. For a
 * bound leaf it writes through to the caller's memory. */
int bome_set(bome_graph *g, bome_node *leaf, const bome_real *values);

/* ---- Reading nodes ------------------------------------------------------- */

/* The value buffer (current after the node was last evaluated). */
bome_real *bome_data(const bome_node *n);
/* The first value: handy for scalars. */
bome_real bome_value(const bome_node *n);
bome_shape bome_node_shape(const bome_node *n);
size_t bome_size(const bome_node *n);
/* The op's name ("matmul", "param", ...) and the node's own name or NULL. */
const char *bome_node_op(const bome_node *n);
const char *bome_node_name(const bome_node *n);
/* Position on the tape, from 0. */
int bome_node_id(const bome_node *n);

/* ---- Element-wise ops ------------------------------------------------------ */

bome_node *bome_add(bome_graph *g, bome_node *a, bome_node *b);
bome_node *bome_sub(bome_graph *g, bome_node *a, bome_node *b);
bome_node *bome_mul(bome_graph *g, bome_node *a, bome_node *b);
bome_node *bome_div(bome_graph *g, bome_node *a, bome_node *b);
bome_node *bome_neg(bome_graph *g, bome_node *x);
bome_node *bome_scale(bome_graph *g, bome_node *x, bome_real c);     /* c x */
bome_node *bome_add_scalar(bome_graph *g, bome_node *x, bome_real c);/* x + c */
bome_node *bome_pow(bome_graph *g, bome_node *x, bome_real p);       /* x^p */
bome_node *bome_exp(bome_graph *g, bome_node *x);
bome_node *bome_log(bome_graph *g, bome_node *x);
bome_node *bome_sqrt(bome_graph *g, bome_node *x);
bome_node *bome_abs(bome_graph *g, bome_node *x);    /* gradient sign(x), 0 at 0 */
bome_node *bome_square(bome_graph *g, bome_node *x);
bome_node *bome_tanh(bome_graph *g, bome_node *x);
bome_node *bome_sigmoid(bome_graph *g, bome_node *x);
bome_node *bome_relu(bome_graph *g, bome_node *x);   /* gradient 1 where x > 0 */
bome_node *bome_softplus(bome_graph *g, bome_node *x);/* log(1 + e^x), stable */
/* min(max(x, lo), hi); gradient 1 on [lo, hi] and 0 outside, as PyTorch. */
bome_node *bome_clamp(bome_graph *g, bome_node *x, bome_real lo, bome_real hi);

/* ---- Reductions ------------------------------------------------------------ */

/* Axis 0 reduces over rows (one value per column); axis 1 reduces over
 * columns (one value per row). The result is a vector. */
bome_node *bome_sum(bome_graph *g, bome_node *x);                 /* scalar */
bome_node *bome_mean(bome_graph *g, bome_node *x);                /* scalar */
bome_node *bome_sum_axis(bome_graph *g, bome_node *x, int axis);
bome_node *bome_mean_axis(bome_graph *g, bome_node *x, int axis);
bome_node *bome_dot(bome_graph *g, bome_node *a, bome_node *b);   /* same shapes */
bome_node *bome_sumsq(bome_graph *g, bome_node *x);               /* ||x||^2 */
/* The largest element; the gradient goes to the first maximum. */
bome_node *bome_max(bome_graph *g, bome_node *x);
bome_node *bome_max_axis(bome_graph *g, bome_node *x, int axis);

/* ---- Linear algebra (CBLAS) -------------------------------------------------- */

/* op(a) op(b) where op transposes when the flag is non-zero; no transposed
 * copy is ever made. a and b are matrices (a vector counts as 1 x n). */
bome_node *bome_matmul(bome_graph *g, bome_node *a, int trans_a, bome_node *b, int trans_b);
/* op(a) x for a matrix a and a vector x; a vector result. */
bome_node *bome_matvec(bome_graph *g, bome_node *a, int trans_a, bome_node *x);
bome_node *bome_transpose(bome_graph *g, bome_node *x); /* a copy, as an op */

/* ---- Shape ops ---------------------------------------------------------- */

/* Same number of elements, new shape; a view, no copy. */
bome_node *bome_reshape(bome_graph *g, bome_node *x, bome_shape shape);
/* Rows (axis 0) or columns (axis 1) [begin, end) of a matrix, or elements
 * [begin, end) of a vector (axis 0 or 1). */
bome_node *bome_slice(bome_graph *g, bome_node *x, int axis, int begin, int end);
/* a then b along axis 0 (stack rows) or axis 1 (side by side); vectors join
 * end to end. */
bome_node *bome_concat(bome_graph *g, bome_node *a, bome_node *b, int axis);
/* Rows idx[0], idx[1], ... of a matrix x; idx is a label vector of row
 * indices, checked while evaluating (BOME_ERR_RANGE). */
bome_node *bome_gather_rows(bome_graph *g, bome_node *x, bome_node *idx);
/* x[i, labels[i]] for each row i of a matrix: a vector. */
bome_node *bome_pick(bome_graph *g, bome_node *x, bome_node *labels);

/* ---- Learning ops (row-wise: each row of a matrix, or a whole vector) --------- */

/* log sum exp, stable: one value per row (a scalar for a vector). */
bome_node *bome_logsumexp(bome_graph *g, bome_node *x);
bome_node *bome_softmax(bome_graph *g, bome_node *x);
bome_node *bome_log_softmax(bome_graph *g, bome_node *x);
/* Cross-entropy of logits (n x k) against n int32 labels in [0, k):
 * the mean over rows (a scalar), or one value per row (PyTorch's
 * reduction='none'). The backward is one fused kernel. */
bome_node *bome_cross_entropy(bome_graph *g, bome_node *logits, bome_node *labels);
bome_node *bome_cross_entropy_rows(bome_graph *g, bome_node *logits, bome_node *labels);
/* mean(w .* x) = sum_i w_i x_i / n: a sample-weighted mean of per-sample
 * values, the form of hyper-cleaning's weighted training loss. */
bome_node *bome_weighted_mean(bome_graph *g, bome_node *x, bome_node *w);

/* ---- Gradients -------------------------------------------------------------- */

/* Identity forward; no gradient passes through it, at any order. A view. */
bome_node *bome_stop_gradient(bome_graph *g, bome_node *x);

/*
 * Appends to the tape the gradient of the scalar y with respect to each of
 * the n nodes wrt[i] and stores the resulting nodes in out[i] (a constant
 * zero when y does not depend on wrt[i]). The new nodes are ordinary nodes:
 * evaluate them, or differentiate them again.
 *
 * wrt[i] is a parameter or an op node. For an op node the gradient is with
 * respect to its value, as if it were a parameter holding that value: the
 * paths into y through it, not those around it. This is what unrolling needs:
 * theta1 = theta0 - a * grad(g(theta0), theta0) is a node, and
 * grad(g(theta1), theta1) the next step's direction. When one wrt node lies
 * upstream of another, the upstream gradient counts the paths through the
 * downstream one (a total derivative).
 */
int bome_grad(bome_graph *g, bome_node *y, int n, bome_node *const *wrt, bome_node **out);

/* ---- Evaluation ------------------------------------------------------------- */

/* Evaluates the n nodes, running only the part of the tape they depend on. */
int bome_eval(bome_graph *g, int n, bome_node *const *outs);

/* A plan: the nodes that evaluating outs needs, found once; running it
 * repeats just that work. Owned by the graph. NULL on error (see the graph). */
bome_plan *bome_plan_new(bome_graph *g, int n, bome_node *const *outs);
int bome_plan_run(bome_plan *p);
/* Nodes a run executes. */
size_t bome_plan_size(const bome_plan *p);

/*
 * Row tiling. A gradient over a large data matrix X reads X twice when every
 * op runs on whole matrices (X W^T forward, dZ^T X backward). A plan made
 * while tiling is on finds the stretch of row-wise ops between such products
 * (element-wise maps, softmax, cross-entropy and its backward, ...) and runs
 * it block_rows rows at a time, so each block of X is still in cache for the
 * second product. It applies over data inputs of at least min_rows rows;
 * results equal the untiled ones up to the order of floating-point sums.
 * Stages whose products are wide (more than 64 output columns, e.g. a
 * hidden layer) stay untiled: they are bound by arithmetic, not memory.
 * Defaults: min_rows 4096, block_rows 64; min_rows 0 turns it off. Affects
 * plans made afterwards.
 */
void bome_graph_set_tiling(bome_graph *g, int min_rows, int block_rows);
/* The row count a plan runs tiled over, 0 when it runs whole. */
int bome_plan_tiled_rows(const bome_plan *p);

/*
 * Threads for the tiled stretch of plans made afterwards (default 1): each
 * takes a contiguous share of the row blocks, with its own partial sums for
 * the reductions, added in a fixed order afterwards, so a result does not
 * depend on scheduling (it may differ from the 1-thread result in the last
 * bits). Whole-matrix ops keep using the BLAS's own threads. While the
 * threads run, OpenBLAS (when it is the BLAS) is set to one thread of its
 * own and restored after: keep other BLAS callers in the process off it
 * meanwhile. When several threads meet errors in one run, the status is the
 * lowest-numbered thread's and the message the first one recorded, which
 * may belong to another. BOME_ERR_ARG outside 1..BOME_MAX_THREADS.
 */
#define BOME_MAX_THREADS 64
int bome_graph_set_threads(bome_graph *g, int threads);

/* ---- Several workers ------------------------------------------------------------ */

/*
 * A graph can be one of several copies, one per worker of a data-parallel
 * run (bome/opt.h's bome_workers), each over its own rows of the data. A
 * sum function adds n values across the workers: every worker calls it
 * with the same n, in the same order, and gets the same sum, bit for bit.
 * It returns 0, or non-zero with a message in msg (msglen bytes).
 */
typedef int (*bome_sum_fn)(void *ud, bome_real *buf, size_t n, char *msg, size_t msglen);

/* Makes g worker `worker` of `workers` (0 <= worker < workers), whose sums
 * go through sum (NULL only for one worker, whose sum is the value). */
int bome_graph_set_workers(bome_graph *g, int worker, int workers, bome_sum_fn sum, void *ud);
/* This graph's worker and the number of workers (0 and 1 by default). */
int bome_graph_worker(const bome_graph *g);
int bome_graph_workers(const bome_graph *g);
/* A term that does not depend on the data (a regularizer; the whole
 * objective of a data-free problem) counted once across the workers: term
 * on worker 0, 0 times term on the others, so that every worker builds the
 * same graph. term itself where there is one worker. */
bome_node *bome_once(bome_graph *g, bome_node *term);
/*
 * The sum of x over the workers' copies of the graph: x where there is one.
 * Its gradient is the sum of the workers' adjoints, so a gradient taken on
 * every worker through it, of each worker's share of an objective, is that
 * worker's share of the objective's gradient. Every worker must evaluate
 * the same sums in the same order: build the same graph everywhere. A sum
 * that fails is BOME_ERR_WORKERS with the function's message.
 */
bome_node *bome_workers_sum(bome_graph *g, bome_node *x);

/* ---- Checking and inspection ----------------------------------------------------- */

typedef struct bome_gradcheck_report {
    double max_rel_error; /* max |analytic - numeric| / max(1, |analytic|, |numeric|) */
    int param;            /* which of the params holds the worst entry */
    size_t index;         /* and which entry of it */
    double analytic, numeric;
    size_t checked;       /* entries compared */
} bome_gradcheck_report;

/*
 * Compares bome_grad(y, params) with central finite differences of y, every
 * entry of every parameter, step eps: 0 picks 1e-6 in double precision and
 * 2^-8 (near the cube root of the precision's epsilon, which balances the
 * truncation and rounding errors of the central difference) in single. The
 * difference is divided by the step actually taken, after the perturbed
 * value's rounding. Parameters are restored.
 * Appends the gradient nodes to the tape. To check a Hessian-vector product,
 * check y' = dot(grad(y, x), u): its gradient is H u, its finite differences
 * come from the gradient.
 */
int bome_gradcheck(bome_graph *g, bome_node *y, int n, bome_node *const *params,
                   double eps, bome_gradcheck_report *report);

/* Writes the graph in Graphviz DOT: the nodes outs need (n == 0: all). */
int bome_graph_dot(bome_graph *g, FILE *out, int n, bome_node *const *outs);

#ifdef __cplusplus
}
#endif

#endif
