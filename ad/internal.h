/*
 * Private to the ad module: the node and graph structures, the op table
 * entry, and the helpers every op file uses. Not installed.
 */
#ifndef BOME_AD_INTERNAL_H
#define BOME_AD_INTERNAL_H

#include "bome/ad.h"

#include <stdbool.h>
#include <stdint.h>

enum leaf_kind { NODE_OP = 0, NODE_PARAM, NODE_INPUT, NODE_LABELS, NODE_CONST };

/*
 * What an op is. forward computes n->data from the sources' data; backward
 * appends nodes for the adjoint of each source i with need[i] set, given
 * dy, the adjoint of n, writing NULL where a source gets nothing (the grad
 * builder adds the adjoints up). Sources not needed get no nodes at all, so
 * a data matrix never gets a gradient computed. A view op's forward only points
 * n->data into its source, so it must run every time (the source may have
 * been rebound).
 */
typedef struct op_desc {
    const char *name;
    int (*forward)(bome_graph *g, bome_node *n);
    void (*backward)(bome_graph *g, bome_node *n, bome_node *dy, const bool *need, bome_node **dsrc);
    bool view;
    /* Row tiling (tile.c), for ops that can work on a block of rows: tile
     * says whether n is a row op (TILE_ROW: output rows depend on the same
     * rows of the sources flagged in row_srcs) or a reduction over rows
     * (TILE_REDUCE) for row count R, or neither (0); rows computes rows
     * [r0, r1) of n->data, or, for a reduction, adds their contribution to
     * acc (n->data, or one thread's partial sum; first: the first block of
     * that sum, which overwrites). */
    int (*tile)(const bome_node *n, int R, unsigned *row_srcs);
    int (*rows)(bome_graph *g, bome_node *n, int r0, int r1, bool first, bome_real *acc);
} op_desc;

enum { TILE_ROW = 1, TILE_REDUCE = 2 };

#define MAX_SRC 3

struct bome_node {
    const op_desc *op;
    int id;
    int kind;
    bome_shape shape;
    int nsrc;               /* here rather than after src: no padding hole */
    uint64_t graph;         /* the id of the graph that made it (ad_own) */
    size_t size;
    bome_real *data;        /* what readers use: own buffer, bound memory or a view */
    bome_real *own;         /* the graph's buffer, NULL for views and labels */
    const int32_t *labels;  /* NODE_LABELS only */
    bome_node *src[MAX_SRC];
    int ip[4];              /* integer attributes: axis, flags, ranges */
    bome_real fp[2];        /* real attributes: constants of the op */
    const char *name;
};

struct arena_chunk;

struct bome_graph {
    bome_alloc_fn alloc;
    void *ud;
    uint64_t id; /* unique in the process, never 0: what its nodes carry */
    struct arena_chunk *chunks;
    /* [begin, end) of each chunk, sorted: a pointer is one of g's nodes only
     * if it lies there, which is asked before a node is read (a node of a
     * freed graph must not be) */
    uintptr_t *spans;
    size_t n_spans, cap_spans;
    bome_graph *prev_live, *next_live; /* the live graphs (graph.c) */
    size_t bytes;
    bome_node **nodes;
    size_t n_nodes, cap_nodes;
    unsigned char *mark;   /* scratch for bome_eval, grows with the tape */
    size_t cap_mark;
    int status;
    char msg[512];
    int tile_min_rows, tile_block_rows; /* bome_graph_set_tiling */
    int threads;                        /* bome_graph_set_threads */
    int worker, workers;                /* bome_graph_set_workers */
    bome_sum_fn sum;
    void *sum_ud;
};

struct bome_plan {
    bome_graph *g;
    bome_node **run;
    size_t n_run;
    /* When tiled: run = pre nodes, then the stage, then post nodes. */
    size_t n_pre, n_stage, n_post;
    int rows; /* R, or 0 when the plan is not tiled */
    /* Threads over the stage's rows; threads - 1 partial sums for its
     * reductions, each acc_size long, node i's at acc_off[i] (stage order;
     * SIZE_MAX for row ops). */
    int threads;
    size_t *acc_off, acc_size;
    bome_real *acc;
};

/* Splits a plan into pre, stage and post parts when worthwhile (tile.c). */
int ad_plan_tile(bome_plan *p);
int ad_plan_run_tiled(bome_plan *p);
/* The rows of a node as row tiling sees them: a matrix's rows; a vector's
 * or scalar's elements. */
int ad_row_count(const bome_node *n);
/* matmul's tile function: tile.c counts products to decide if tiling pays. */
int ad_matmul_tile(const bome_node *n, int R, unsigned *row_srcs);
/* Products narrower than this stream their data; wider ones are bound by
 * arithmetic. tile.c tiles only stages whose products are this narrow on the
 * narrow side (a row product's output columns, a reduction's output rows),
 * and those products run on the kernels below. */
enum { AD_NARROW_MAX = 64 };
/* Whether matmul node n's tiled rows run on the kernels below rather than
 * CBLAS: a product as narrow as the kernel set in use takes. */
bool ad_matmul_fused(const bome_node *n);

/*
 * Small GEMM kernels of the engine's own (gemm.c), row-major, for narrow
 * products over a block of rows; chosen at run time by what the CPU has
 * (ad_kernel_get), CBLAS when it has none of them.
 *   ad_gemm_nt  C (m x N) = A (m x K) B^T, B N x K; next as for ad_gemm_tn
 *   ad_gemm_nn  C (m x N) = A (m x K) B, B K x N
 *   ad_gemm_tn  C (M x N) = A^T B, A m x M, B m x N; added to C unless first;
 *               next: next_rows rows (stride ldb) that the caller reads next,
 *               which the kernel prefetches while it computes (NULL, 0: none)
 * The sums run in another order than BLAS's: results agree to rounding.
 */
enum { AD_KERNEL_BLAS = 0, AD_KERNEL_AVX2, AD_KERNEL_AVX512 };
/* The kernel set in use: the best the CPU has unless ad_kernel_set forced
 * one; AD_KERNEL_BLAS: none of ad's kernels (CBLAS products, libm's exp). */
int ad_kernel_get(void);
/* The widest product (output columns of a row product, output rows of a
 * reduction) the set in use takes; wider ones go to CBLAS. 0 for BLAS. */
int ad_kernel_width(void);
/* For tests and benchmarks: force set k (false if the CPU lacks it), or -1
 * for the automatic choice. Process-wide: not while a plan runs. */
bool ad_kernel_set(int k);
const char *ad_kernel_name(int k);
void ad_gemm_nt(int m, int N, int K, const bome_real *A, int lda, const bome_real *B, int ldb, bome_real *C, int ldc,
                const bome_real *next, int next_rows);
void ad_gemm_nn(int m, int N, int K, const bome_real *A, int lda, const bome_real *B, int ldb, bome_real *C, int ldc);
void ad_gemm_tn(int m, int M, int N, const bome_real *A, int lda, const bome_real *B, int ldb, bome_real *C, int ldc,
                bool first, const bome_real *next, int next_rows);
/* x[i] = exp(x[i]) for i < n, vectorized with the same kernel set
 * (vexp.c); libm's exp under AD_KERNEL_BLAS. Within about 1 ulp of libm. */
void ad_exp_inplace(bome_real *x, size_t n);
/* y[i] = tanh(x[i]): libm's in float64; in float32 from the vectorized exp
 * in double, rounded once to float (vexp.c). */
void ad_tanh_array(const bome_real *x, bome_real *y, size_t n);

/* The CBLAS routines of the build's precision (cblas.h declares them). */
#ifdef BOME_FLOAT32
#define ad_cblas_gemm cblas_sgemm
#define ad_cblas_gemv cblas_sgemv
#define ad_cblas_dot cblas_sdot
#define ad_cblas_axpy cblas_saxpy
#else
#define ad_cblas_gemm cblas_dgemm
#define ad_cblas_gemv cblas_dgemv
#define ad_cblas_dot cblas_ddot
#define ad_cblas_axpy cblas_daxpy
#endif

/* Memory: everything comes from the graph's arena, 64-byte aligned. */
void *ad_alloc(bome_graph *g, size_t bytes);
/* count elements of size bytes each; an overflowing product is out of memory. */
void *ad_alloc_array(bome_graph *g, size_t count, size_t size);
void *ad_raw_alloc(bome_graph *g, size_t bytes);          /* outside the arena */
void ad_raw_free(bome_graph *g, void *p, size_t bytes);

/* Records the first error; returns code. printf-style message. */
int ad_error(bome_graph *g, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* *out = a * b, or false when that overflows size_t. */
static inline bool ad_mul(size_t a, size_t b, size_t *out)
{
    if (b && a > SIZE_MAX / b)
        return false;
    *out = a * b;
    return true;
}

/*
 * Whether a node of shape s may be made: its element count within what the
 * ops' int arithmetic and size_t byte counts hold. If not, records
 * BOME_ERR_ARG naming what (an op, or a leaf and its name) and the shape.
 */
bool ad_size_ok(bome_graph *g, const char *what, const char *name, bome_shape s);

/*
 * Whether g made n. If not, records BOME_ERR_ARG: "<context>: node 'x'
 * belongs to another graph" (or "is not a node of a live graph" for one
 * whose graph was freed), the context printf-style (the function and which
 * argument). n is read only once it is known to lie in a live graph's
 * arena. Checked where nodes enter (builders, grad, eval, plans, set and
 * bind), never while running a plan.
 */
bool ad_own(bome_graph *g, const bome_node *n, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* "scalar", "vector(3)", "matrix(2x3)" into buf (>= 40 bytes). */
const char *ad_shape_str(bome_shape s, char *buf);
bool ad_shape_eq(bome_shape a, bome_shape b);

/*
 * Checks g and the n sources for NULL. Returns false (and records an error
 * naming op when the graph has none yet) if the op must not be built.
 */
bool ad_check(bome_graph *g, const char *op, int n, bome_node *const *src);
/* The same for ops whose source 1 is a label vector: it must be one. No
 * other source of any op may be (labels have no values to read). */
bool ad_check_labeled(bome_graph *g, const char *op, int n, bome_node *const *src);

/* Appends an op node with the given sources and a zeroed buffer (none for
 * views). NULL on allocation failure (error recorded). */
bome_node *ad_node(bome_graph *g, const op_desc *op, bome_shape shape, int nsrc,
                   bome_node *const *src);

/* Adjoint accumulation used by the backward rules of broadcasting ops:
 * reduces dy (shape of the op's output) to target's shape by summing. */
bome_node *ad_sum_to(bome_graph *g, bome_node *dy, bome_shape target);
/* Repeats x (broadcastable) to shape. */
bome_node *ad_broadcast(bome_graph *g, bome_node *x, bome_shape shape);
/* Internal ops that the backward rules need. */
bome_node *ad_zeros(bome_graph *g, bome_shape shape);
bome_node *ad_step_mul(bome_graph *g, bome_node *x, bome_node *dy, int kind, bome_real lo, bome_real hi);
bome_node *ad_tanh_bwd(bome_graph *g, bome_node *y, bome_node *dy);
bome_node *ad_sigmoid_bwd(bome_graph *g, bome_node *y, bome_node *dy);
bome_node *ad_arg_scatter(bome_graph *g, bome_node *x, bome_node *dy, int axis);
bome_node *ad_arg_pick(bome_graph *g, bome_node *x, bome_node *v, int axis);
bome_node *ad_embed(bome_graph *g, bome_node *dy, bome_shape full, int axis, int begin);
bome_node *ad_scatter_rows(bome_graph *g, bome_node *dy, bome_node *idx, int rows);
bome_node *ad_pick_bwd(bome_graph *g, bome_node *dy, bome_node *labels, bome_shape full);
/* A vector laid out as an m x 1 column: for broadcasting per-row values. */
bome_node *ad_as_column(bome_graph *g, bome_node *v);

enum step_kind { STEP_RELU, STEP_CLAMP, STEP_SIGN };

/* Checks a label vector against [0, bound) while evaluating: all of it, or
 * entries [lo, hi). */
int ad_check_labels(bome_graph *g, const bome_node *op, const bome_node *labels, int bound);
int ad_check_labels_range(bome_graph *g, const bome_node *op, const bome_node *labels, int bound, size_t lo,
                          size_t hi);

#endif
