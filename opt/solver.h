/* Private to opt: the problem's declarations, the solver every method runs
 * inside, and the shared pieces the methods are built from. Not installed. */
#ifndef OPT_SOLVER_H
#define OPT_SOLVER_H

#include "bome/opt.h"

#include <stdbool.h>
#include <stdint.h>

#include "bome/rng.h"

#if defined(__GNUC__)
#define OPT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define OPT_PRINTF(a, b)
#endif

typedef struct opt_var {
    char name[64];
    bome_shape shape;
    size_t size;
    bome_real *values;      /* caller's memory */
    bool bounded;
    bome_real lo, hi;
    bool sharded;           /* one entry per data row: each worker holds its own */
} opt_var;

typedef struct opt_data {
    char name[64];
    bome_shape shape;
    bool labels;
    const bome_real *values;
    const int32_t *labels_values;
} opt_data;

struct bome_problem {
    opt_var *vars[2];       /* BOME_OUTER, BOME_INNER */
    int n_vars[2], cap_vars[2];
    opt_data *data;
    int n_data, cap_data;
    bome_objective_fn f, g;
    void *ctx;
    int *inner_start;       /* per inner variable: the outer one it starts at, or -1 */
    int n_start;            /* inner variables when inner_start was made */
    int batch;              /* tasks per step (0: no task sampler) */
    bome_task_fn draw;
    void *draw_ud;
    bome_batch_fn batch_draw; /* minibatches: a fresh one per gradient (NULL: none) */
    void *batch_ud;
    int status;
    char msg[512];
};

int opt_error(bome_problem *p, int code, const char *fmt, ...) OPT_PRINTF(3, 4);

struct opt_method;

/* What every method has; a method's own nodes, plans and buffers live in
 * its state (method.h), never here. */
struct bome_solver {
    bome_problem *p;
    bome_options o;
    const struct opt_method *m;
    void *state;             /* m->state_size bytes, zeroed, freed by the solver */
    int param_base;          /* m's first slot in o.param */
    bome_graph *g;
    int nv, nt, nk;          /* outer, inner, all variables */
    opt_var **var;           /* nk: outer first, then inner */
    bome_node **x;           /* nk params bound to the caller's values */
    bome_node **data;        /* the problem's inputs and labels, bound */
    /* The shared inner loop (inner.c), for methods that run one. */
    bome_node **inner;       /* nt params: the inner iterate theta^(t) */
    bome_node **inner_grad;  /* nt: grad of g(v, theta^(t)) wrt theta^(t) */
    bome_node *g_inner;      /* g(v, theta^(t)) */
    bome_plan *plan_inner;
    bome_real **inner_buf;   /* nt momentum buffers of the inner loop */
    bool inner_buf_live;     /* inner_buf holds a direction to carry over */
    /* f and g where the method reports them (bome_step_stats). */
    bome_node *f, *gk;
    bome_real **m1, **m2;    /* nk: outer momentum / Adam moments */
    bome_real **prev;        /* nk: the iterate before the update, restored if it overflows */
    long steps;
    double total_seconds;
    long total_grad, total_hvp;   /* gradients and HVPs over the run */
    bool dead;               /* a non-finite step happened */
    bool stop;               /* the callback asked to stop */
    int status;
    char msg[512];
    bome_rng rng;
    /* What a checkpoint keeps beyond the shared state: each method's
     * buffers that live from one step to the next (opt_persist). */
    struct opt_persisted { const char *what; void *ptr; size_t bytes; } persist[16];
    int n_persist;
    /* A data-parallel run (workers.c); w is NULL with one process. */
    const bome_workers *w;
    bool any_sharded;        /* some variable is sharded */
    unsigned char *node_kind;/* per node id: OPT_SUM, OPT_LOCAL or OPT_GLOBAL */
    size_t cap_kind;
    struct opt_summed { const bome_plan *plan; bome_node **outs; int n; } *summed;
    int n_summed;            /* plans whose outputs opt_run_plan sums */
    bome_real *pack;         /* the buffer those sums go through */
    size_t cap_pack;
    char sum_msg[448];       /* why the last sum failed */
    size_t *gsize;           /* nk: each variable's size over all the workers */
    /* Minibatches (bome_problem_set_batches): the next plan run draws one. */
    bool batch_due;
    int batch_k;             /* draws so far this step */
    int batch_rc;            /* the draw's status, when it failed */
};

/* ---- solver.c ---- */
int opt_fail(bome_solver *s, int code, const char *fmt, ...) OPT_PRINTF(3, 4);
/* The builders' view of the variables: v = x[0..nv), theta the given nt
 * nodes (x + nv for theta_k), the problem's data. */
bome_vars opt_vars(const bome_solver *s, bome_node *const *theta);
/* Calls a builder and checks that it gave a scalar on the solver's graph. */
bome_node *opt_build(bome_solver *s, const char *what, bome_objective_fn fn, const bome_vars *x);
/* Fails with the graph's error, naming what was being built, if it has one. */
int opt_check_graph(bome_solver *s, const char *what);
/* A plan of the outputs, or the graph's error with what in the message. */
bome_plan *opt_plan(bome_solver *s, const char *what, int n, bome_node *const *outs);
/* A plan of f, g (s->f, s->gk), then a[0..na), then b[0..nb). */
bome_plan *opt_plan_f_gk(bome_solver *s, bome_node *const *a, size_t na, bome_node *const *b, size_t nb);
int opt_run(bome_solver *s, bome_plan *plan, const bome_step_stats *r);
/* A method's own setting i (its params[i]). */
double opt_param(const bome_solver *s, int i);
/* The outer variable inner variable j starts at (meta-learning), or -1. */
int opt_inner_start(const bome_solver *s, int j);
/* A scalar input bound to *value: a coefficient a method's schedule
 * changes between steps without rebuilding the graph. */
bome_node *opt_scalar_input(bome_solver *s, const char *name, bome_real *value);

/* ---- workers.c: data-parallel runs (options.workers) ---- */
/* What a node's value is across the workers: a worker's share of a sum
 * (the default: objectives, gradients in replicated variables), the
 * worker's own (a sharded variable, its copies and gradients) or already
 * the same on every worker (the result of a sum inside the graph). */
enum { OPT_SUM = 0, OPT_LOCAL = 1, OPT_GLOBAL = 2 };
int opt_mark(bome_solver *s, bome_node *n, int kind);
int opt_node_kind(const bome_solver *s, const bome_node *n);
/* bome_grad whose outputs in sharded variables are marked OPT_LOCAL and
 * whose other outputs own their buffers (a constant or a view is copied
 * into a node of its own), so that opt_run_plan can sum them in place. */
int opt_grad(bome_solver *s, bome_node *y, int n, bome_node *const *wrt, bome_node **out);
/* Variable k is sharded (and so are its copies and gradients). */
static inline bool opt_sharded(const bome_solver *s, int k) { return s->var[k]->sharded; }
/* The sum across the workers inside the graph, for a theta-shaped node of
 * inner variable j (none where it is sharded) or a scalar (j < 0): the
 * methods that differentiate through g's gradient or value. x itself with
 * one process. Marks the result OPT_GLOBAL. */
bome_node *opt_workers_sum(bome_solver *s, bome_node *x, int j);
/* The next plan run draws a fresh minibatch (bome_problem_set_batches):
 * before each inner step, and after the inner loop for the outer part. */
static inline void opt_next_batch(bome_solver *s) { s->batch_due = true; }
/* Runs a plan (made by opt_plan) and sums its OPT_SUM outputs across the
 * workers, all in one call; BOME_OK or the code, with opt_run_errmsg. */
int opt_run_plan(bome_solver *s, bome_plan *plan);
const char *opt_run_errmsg(const bome_solver *s);
/* rep + the sum across the workers of shard[i], i < m: quantities over
 * blocks of which the replicated ones are the same on every worker and
 * the sharded ones this worker's part. One sum for the m, none unless
 * sharded. On a failed sum every out is NaN and the solver has the error. */
void opt_totals(bome_solver *s, int m, const double *rep, const double *shard, bool sharded, double *out);
/* At bome_solver_new: the workers compare shapes and settings and take
 * worker 0's values of the replicated variables. */
int opt_workers_start(bome_solver *s);
/* Registers the OPT_SUM outputs of a new plan for opt_run_plan. */
int opt_plan_sums(bome_solver *s, const bome_plan *plan, int n, bome_node *const *outs);
/* A node that owns its buffer (not a leaf or a view), which a sum may
 * overwrite in place. */
bome_node *opt_owned(bome_solver *s, bome_node *n);

/* ---- checkpoint.c ---- */
/* Registers a buffer of the method's state that carries over between steps,
 * for bome_solver_save / _load (at build; at most 16). */
int opt_persist(bome_solver *s, const char *what, void *ptr, size_t bytes);
/* A hash of every setting that shapes the trajectory (not max_steps, tol
 * or threads), as checkpoints identify a run. */
uint64_t opt_settings_hash(const bome_solver *s);

/* ---- alloc.c ---- */
void *opt_zalloc(bome_solver *s, size_t n, size_t size); /* zeroed, from options.alloc */
void opt_zfree(bome_solver *s, void *p);
/* One zeroed buffer per variable k in [from, to); NULL if memory ran out. */
bome_real **opt_buffers(bome_solver *s, int from, int to);
void opt_free_buffers(bome_solver *s, bome_real **b, int n);
/* n lists of nt node pointers and one of nv, carved from one zeroed block
 * that the first list owns (free that one alone). */
int opt_node_lists(bome_solver *s, int n, bome_node ***const theta[], bome_node ***v);
/* The allocator wrappers for what the solver itself lives in. */
void *opt_raw_alloc(bome_alloc_fn a, void *ud, size_t bytes);
void opt_raw_free(bome_alloc_fn a, void *ud, void *ptr);
bome_alloc_fn opt_system_alloc(void);

/* ---- blocks.c: sums over variable blocks ---- */
/* Over the blocks of variables [from, from + n): the replicated blocks
 * counted once, the sharded ones summed across the workers (one sum).
 * NaN, with the solver's error set, if that sum fails. */
/* sum_k <a_k, b_k> over nodes. */
double opt_dot_nodes(bome_solver *s, int from, int n, bome_node *const *a, bome_node *const *b);
/* out[i] = sum_k <a[i]_k, b[i]_k>, i < m (at most 4), with one sum. */
void opt_dots_nodes(bome_solver *s, int from, int n, int m, bome_node *const *const *a, bome_node *const *const *b,
                    double *out);
/* sum_k <a_k, b_k> over buffers. */
double opt_dot_bufs(bome_solver *s, int from, int n, bome_real *const *a, bome_real *const *b);
/* sum_k <b_k, a_k> over buffers b and nodes a. */
double opt_dot_nodes_bufs(bome_solver *s, int from, int n, bome_node *const *a, bome_real *const *b);
/* <a, b> over the blocks of variables [from, from + n) as a graph node,
 * for blocks that are the same on every worker where the variable is
 * replicated (sums across workers, the variables themselves): this worker's
 * share, the replicated blocks counted once (bome_once). opt_block_dot's
 * graph with one worker. */
bome_node *opt_share_dot(bome_solver *s, int from, bome_node *const *a, bome_node *const *b, int n);
/* <a, b> summed over n blocks, as a graph node (for Hessian-vector products). */
bome_node *opt_block_dot(bome_graph *g, bome_node *const *a, bome_node *const *b, int n);
/* Copies node values into variables [from, from + n), or the reverse. */
void opt_nodes_to_vars(bome_solver *s, int from, int n, bome_node *const *a);
void opt_vars_to_nodes(bome_solver *s, int from, int n, bome_node *const *a);
/* Every value of the n nodes of variables [from, from + n) finite, on every
 * worker (one sum where some are sharded). */
bool opt_nodes_finite(bome_solver *s, int from, int n, bome_node *const *a);
/* nt theta-shaped input nodes named prefix_<theta>, bound to buf[0..nt):
 * buffers the solver writes that a plan reads (never differentiated). */
void opt_bound_inputs(bome_solver *s, const char *prefix, bome_real *const *buf, bome_node **out);

/* ---- inner.c: the inner loop on g ---- */
/* nt params shaped as theta, named "<theta>_<suffix>", holding theta_k:
 * the persistent copies that warm-started methods keep from step to step. */
int opt_theta_params(bome_solver *s, const char *suffix, bome_node **out);
/* Moves the nt theta-shaped params copy, values and all, into one block
 * that checkpoints keep (opt_persist): one buffer per copy, not per
 * variable. The method frees the block. NULL if memory ran out. */
bome_real *opt_persist_copies(bome_solver *s, const char *what, bome_node *const *copy);
/* Meta-learning (bome_problem_set_inner_start) keeps nothing but v from
 * step to step: the copies restart at theta_k, which the solver has set to
 * v, wherever theta has a start. */
void opt_restart_copies(bome_solver *s, bome_node *const *copy);
/* Creates the nt theta^(t) params (names "<theta>_T"). */
int opt_inner_params(bome_solver *s);
/* g at theta^(t), its theta-gradient and the plan that computes it. */
int opt_inner_build(bome_solver *s);
/* theta^(0) = theta_k; T steps on g(v_k, .) into s->inner (keep_momentum:
 * honour inner_momentum_keep). */
int opt_inner_loop(bome_solver *s, bool keep_momentum);
/* The same with `steps` in place of T; s->inner_buf then holds the momentum
 * buffer after them. */
int opt_inner_steps(bome_solver *s, bool keep_momentum, int steps);
/* theta_0 as nodes for an unrolled loop: theta_k, or v where the inner
 * variable starts at an outer one (meta-learning), differentiated too. */
void opt_unroll_start(bome_solver *s, bome_node **cur);
/* The graph of ITD and reverse: cur[0..nt) holds theta nodes and gets
 * those of `steps` inner steps unrolled from there (momentum from zero, or
 * resumed from the nodes mom0; boxes as clamps); then f and g at that
 * theta_T (s->f, s->gk) and f's total derivative in v, through every
 * unrolled step, into gf[0..nv). Returns the plan of f, g, gf and theta_T
 * (NULL on an error, with what in the message). */
bome_plan *opt_unrolled_build(bome_solver *s, bome_node **cur, bome_node *const *mom0, int steps, bome_node **gf,
                              const char *what);
/* Runs that plan: f and g into r, gf's values into hv. */
int opt_unrolled_run(bome_solver *s, bome_plan *plan, bome_node *const *gf, bome_real *const *hv, bome_step_stats *r);
/* steps of plain gradient descent x -= lr grad on nt theta-shaped params,
 * grad computed by plan; projected onto theta's boxes. */
int opt_descend(bome_solver *s, bome_node *const *x, bome_node *const *grad, bome_plan *plan, int steps, double lr);

/* ---- update.c: the outer update ---- */
void opt_project(const opt_var *v, bome_real *x); /* onto v's box, if it has one */
/* Variable k -= step(gf + lambda gq) by options.update (gf or gq may be
 * NULL), then its box. */
void opt_apply_update(bome_solver *s, int k, const bome_real *gf, const bome_real *gq, double lambda);
/* The same with the step size times lr_scale: a method's own schedule
 * (penalty's decay, V-PBGD's 1/gamma) scales the step, not the direction,
 * so that momentum and Adam see the direction unchanged. */
void opt_apply_update_scaled(bome_solver *s, int k, const bome_real *gf, const bome_real *gq, double lambda,
                             double lr_scale);
/* The iterate before an update, and the check after it: a non-finite value
 * restores the saved iterate and ends the run (BOME_ERR_NONFINITE). */
void opt_save_iterate(bome_solver *s);
int opt_check_iterate(bome_solver *s, const bome_step_stats *r);
/* Puts the saved iterate back, for methods that move theta before they
 * know the step is finite. */
void opt_restore_iterate(bome_solver *s);
/* Ends the run on a non-finite value, naming f, g and what else was. */
int opt_stop_nonfinite(bome_solver *s, const bome_step_stats *r, const char *what, double value);
/* theta_{k+1} = theta_T (s->inner), as the reference's ITD, AID and BSG-1
 * do, then opt_check_iterate. */
int opt_take_theta_T(bome_solver *s, const bome_step_stats *r);
/* The common end of a hypergradient method's step: f, g and the squared
 * norm of v's direction hv[0..nv) into r, the non-finite stop, v's update,
 * theta = theta_T. */
int opt_hyper_step(bome_solver *s, bome_step_stats *r, bome_real *const *hv);
/* The end of a step that has moved theta itself since opt_save_iterate
 * (penalty, BVFSM): f, g (s->f, s->gk) and the squared norm of v's
 * direction dv[0..nv) into r, the non-finite stop (which restores the saved
 * iterate), then v's update with the step times lr_scale. */
int opt_v_step(bome_solver *s, bome_step_stats *r, bome_node *const *dv, double lr_scale);

#endif
