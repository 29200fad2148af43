/*
 * bome/opt.h: bilevel optimization on top of bome/ad.h.
 *
 *     min over (v, theta) of f(v, theta)  subject to  theta in argmin g(v, .)
 *
 * You write f and g as graph builders and nothing else: opt builds
 * q(v, theta) = g(v, theta) - g(v, stop_gradient(theta_T)), the inner gradient
 * and every gradient BOME needs, and runs BOME (Liu, Ye, Wright, Stone, Liu,
 * "Bilevel Optimization Made Easy", NeurIPS 2022) exactly as the paper states
 * it. A worked example, the paper's coreset toy:
 *
 *     static const bome_real C[8] = {1, 3, 3, 1, -2, 2, -3, -2}, Y[2] = {3, -2};
 *     static bome_node *f(bome_graph *g, const bome_vars *x, void *ctx) {
 *         bome_node *y = bome_const(g, BOME_VECTOR(2), Y);
 *         return bome_scale(g, bome_sumsq(g, bome_sub(g, x->theta[0], y)), 0.1);
 *     }
 *     static bome_node *g_(bome_graph *g, const bome_vars *x, void *ctx) {
 *         bome_node *c = bome_const(g, BOME_MATRIX(4, 2), C);  // the 4 points
 *         bome_node *p = bome_matvec(g, c, 1, bome_softmax(g, x->v[0]));
 *         return bome_sumsq(g, bome_sub(g, p, x->theta[0]));
 *     }
 *
 *     bome_real w[4] = {0}, xy[2] = {0, 3};       // your memory, updated in place
 *     bome_problem *p = bome_problem_new();
 *     bome_problem_add_outer(p, "w", BOME_VECTOR(4), w);
 *     bome_problem_add_inner(p, "x", BOME_VECTOR(2), xy);
 *     bome_problem_set_objectives(p, f, g_, NULL);
 *     bome_options o;
 *     bome_options_default(&o);                   // T = 10, alpha = xi = 0.05, eta = 0.5
 *     o.max_steps = 5000;
 *     bome_step_stats last;
 *     if (bome_solve(p, &o, &last) != BOME_OK)
 *         fprintf(stderr, "%s\n", bome_problem_errmsg(p));
 *     // xy now holds the solution, last the final step's f, q, lambda, ...
 *     bome_problem_free(p);
 *
 * The same problem runs with the classic rivals: o.method = BOME_METHOD_ITD
 * unrolls the T inner steps in the graph and takes v's gradient through them;
 * BOME_METHOD_AID_CG differentiates implicitly at theta_T with Hessian-vector
 * products (both second order, built from the same f and g); BOME_METHOD_BSG1
 * is first order; BOME_METHOD_AID_FP, BOME_METHOD_STOCBIO (implicit, with a
 * fixed-point or Neumann series in place of CG) and BOME_METHOD_REVERSE
 * (ITD through the last K inner steps only) are second order too. On the
 * paper's non-singleton toy they stop away from the answer that BOME
 * reaches (tests/test_toys.c).
 *
 * Builders are called more than once on one graph (for f, for g at theta,
 * for g at stop_gradient(theta_T), for g at the inner iterate; ITD once per
 * unrolled step), so a builder creates what it needs each time or caches
 * nodes per graph; data that should be shared and refilled belongs in
 * bome_problem_add_input / _add_labels.
 *
 * Nothing here prints. Each step's figures go to the on_step callback.
 */
#ifndef BOME_OPT_H
#define BOME_OPT_H

#include "bome/ad.h"
#include "bome/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Problems ------------------------------------------------------------ */

typedef struct bome_problem bome_problem;

/* The nodes a builder gets, in the order they were declared. */
typedef struct bome_vars {
    bome_node *const *v;     /* outer variables */
    bome_node *const *theta; /* inner variables */
    bome_node *const *data;  /* inputs and label vectors */
    int n_v, n_theta, n_data;
} bome_vars;

/* Adds f's or g's nodes to g and returns the scalar objective. */
typedef bome_node *(*bome_objective_fn)(bome_graph *g, const bome_vars *x, void *ctx);

bome_problem *bome_problem_new(void);
void bome_problem_free(bome_problem *p); /* NULL is fine */
int bome_problem_status(const bome_problem *p);
const char *bome_problem_errmsg(const bome_problem *p); /* never NULL */

/*
 * Declares a variable whose values live in the caller's memory (size of the
 * shape, read as the starting point and updated in place by the solver, which
 * leaves the last finite iterate there). Returns its index, or -1 on error.
 */
int bome_problem_add_outer(bome_problem *p, const char *name, bome_shape shape, bome_real *values);
int bome_problem_add_inner(bome_problem *p, const char *name, bome_shape shape, bome_real *values);
/* Data, bound zero-copy: the solver never writes it. Index into x->data. */
int bome_problem_add_input(bome_problem *p, const char *name, bome_shape shape, const bome_real *values);
int bome_problem_add_labels(bome_problem *p, const char *name, int n, const int32_t *values);

enum { BOME_OUTER = 0, BOME_INNER = 1 };
/* A box [lo, hi] for one variable; every iterate is projected onto it. */
int bome_problem_set_bounds(bome_problem *p, int which, int index, bome_real lo, bome_real hi);
int bome_problem_set_objectives(bome_problem *p, bome_objective_fn f, bome_objective_fn g, void *ctx);

/*
 * Meta-learning (approximate bilevel optimization, UFO-BLO's setting): the
 * inner variable starts at an outer one at every outer step, theta_0 = v,
 * so nothing but v persists between steps; the inner problem need not have a
 * unique argmin (r plain gradient steps define theta_r). Shapes must match.
 * Every method honours it: the solver sets theta = v before each step, and
 * ITD and exact differentiate through that start too.
 */
int bome_problem_set_inner_start(bome_problem *p, int inner, int outer);

/*
 * A data-parallel run (options.workers): each worker holds its own rows of
 * the data and builds f and g as its share of the objective, so that the
 * sum of the workers' f is the problem's f (the same for g):
 *
 *   - a loss over rows is the sum over the worker's rows divided by the
 *     number of rows of all the workers together (not bome_mean, which
 *     divides by the worker's own count): bome_scale(bome_sum(g, losses),
 *     1.0 / n_all_rows), or the worker's mean times n_mine / n_all;
 *   - a term without data (a regularizer; the whole of a data-free toy) is
 *     counted once: bome_once(g, term) (bome/ad.h).
 *
 * Variables are replicated by default: every worker holds all of theta (and
 * of v), the solver sums their gradients across the workers and every
 * worker takes the same step. A variable with one entry per data row, such
 * as hyper-cleaning's per-example weights, is sharded instead: declare it
 * with the worker's entries only (its values are the worker's shard) and
 * mark it; its gradient is the worker's own, never sent, and only its dot
 * products and norms are summed. Returns BOME_OK or an error (also recorded).
 */
int bome_problem_set_sharded(bome_problem *p, int which, int index);

/* Worker w's rows [*begin, *end) of n when they are split as evenly as they
 * go, in order: rows n w / P to n (w + 1) / P. */
void bome_shard_rows(long n, int worker, int workers, long *begin, long *end);

/*
 * A meta-batch of tasks per outer step: draw(ud, rng, step, task) fills the
 * data inputs' memory with task `task` (0..batch-1) of step `step` (support
 * data for g, query data for f), with the solver's seeded rng. The methods
 * made for it (fo-blo, ufo-blo, exact) average their per-task estimates; the
 * others take batch 1 (the solver draws task 0 before each step).
 */
typedef int (*bome_task_fn)(void *ud, bome_rng *rng, long step, int task);
int bome_problem_set_tasks(bome_problem *p, int batch, bome_task_fn draw, void *ud);

/*
 * Minibatches (stochastic bilevel optimization): draw(ud, rng, step, k)
 * fills the data inputs' memory with a fresh minibatch, drawn with the
 * solver's seeded rng, before each gradient the solver evaluates: before
 * each inner step (k = 0, 1, ...) and once for the outer part of the step
 * (the next k), whose plans then all see that one batch, so that q's two
 * terms, f and every Hessian-vector product of one step agree. A method
 * that unrolls its inner loop into one graph (itd, reverse's unrolled
 * part) sees one batch for what that graph computes. step counts from 0.
 *
 * The problem decides what a batch is; the usual form: inputs of B rows
 * that draw fills with rows picked by bome_rng_sample (bome/rng.h), their
 * row numbers in a label vector for bome_gather_rows of a per-row outer
 * variable (whose rows outside the batch then get exactly zero gradient),
 * and the loss as the batch mean, an unbiased estimate of the full mean.
 * Sampled in increasing order, B = n gives back the full-batch run.
 *
 * The rng is the one checkpoints keep, so a resumed run draws the same
 * batches. On a data-parallel run the rng is the same on every worker:
 * draw as many numbers on each (e.g. one seed for a generator of the
 * worker's own, mixed with its rank), or they fall out of step. Non-zero
 * from draw ends the run with that status. Returns BOME_OK or an error.
 */
typedef int (*bome_batch_fn)(void *ud, bome_rng *rng, long step, int k);
int bome_problem_set_batches(bome_problem *p, bome_batch_fn draw, void *ud);

/* ---- Methods ------------------------------------------------------------------ */

/*
 * Every method takes the same problem. The table behind these functions is
 * the one list of methods: `bome methods`, the CLI's --method, its help and
 * the tests are all driven by it. A method's name (bome_method_name) is how
 * the CLI and the JSON spell it.
 */
typedef enum bome_method {
    BOME_METHOD_BOME = 0, /* the paper's method: first order, no Hessians */
    BOME_METHOD_ITD,      /* iterative differentiation: v's gradient through the T
                           * unrolled inner steps (second order); theta takes theta_T */
    BOME_METHOD_AID_CG,   /* implicit differentiation at theta_T, H^-1 grad_theta f by
                           * conjugate gradients on Hessian-vector products. The
                           * formula assumes theta_T inside any box on theta */
    BOME_METHOD_BSG1,     /* BSG-1, first order: at theta_T, v moves along grad_v f -
                           * (<grad_theta f, grad_theta g> / (|grad_theta g|^2 +
                           * bsg_eps)) grad_v g; theta takes theta_T */
    BOME_METHOD_FO_BLO,   /* FO-BLO (FOM): meta-learning's first-order meta-gradient,
                           * f's gradient at theta_r carried to v; biased */
    BOME_METHOD_UFO_BLO,  /* UFO-BLO (UFOM): FO-BLO plus, with probability ufo_q per
                           * task, the reweighted exact correction; unbiased */
    BOME_METHOD_EXACT,    /* the exact meta-gradient through the r inner steps
                           * (ITD with theta_0 = v) by reverse Hessian-vector products */
    BOME_METHOD_AID_FP,   /* implicit differentiation at theta_T as AID-CG, u from
                           * fp_steps fixed-point iterations u <- u - fp_lr (H u -
                           * grad_theta f) from u = 0 (fp_lr 0: alpha); with inner
                           * momentum, of the heavy-ball map's transpose, as the
                           * released code */
    BOME_METHOD_REVERSE,  /* truncated back-propagation: T inner steps, v's gradient
                           * through the last reverse_steps of them only (all T:
                           * ITD); theta takes theta_T */
    BOME_METHOD_STOCBIO,  /* stocBiO: implicit differentiation at theta_T, u = eta
                           * sum_{i<Q} (I - eta H)^i grad_theta f (Q neumann_steps,
                           * eta neumann_lr); its minibatches come through
                           * options.refill, called before every step */
    BOME_METHOD_PENALTY,  /* Mehra & Hamm's penalty, as the released BOME code runs it:
                           * theta and v descend f + <nu, grad_theta g> + gamma/2
                           * |grad_theta g|^2 (second order), gamma and nu on a schedule */
    BOME_METHOD_BVFSM,    /* BVFSM, first order: z on g, then theta and v on f with a log
                           * barrier at z's value and decaying regularizers */
    BOME_METHOD_F2SA,     /* F2SA, first order: persistent y on f + lambda g and z on g; v
                           * on the value-function penalty; lambda grows by f2sa_delta;
                           * theta reports y */
    BOME_METHOD_VPBGD,    /* V-PBGD, first order: BOME's step with a penalty gamma rising
                           * linearly in place of lambda; omega, theta_T's stand-in, is
                           * warm-started */
    BOME_METHOD_COUNT_    /* not a method: the count when this header was written */
} bome_method;

int bome_method_count(void);
/* NULL for a number that is not a method. */
const char *bome_method_name(int m);
const char *bome_method_summary(int m);
/* 1: first order (gradients only); 2: Hessian-vector products. 0 if not a method. */
int bome_method_order(int m);
/* The method of that name, or -1. */
int bome_method_from_name(const char *name);

/* ---- Options ------------------------------------------------------------------ */

typedef enum bome_phi {
    BOME_PHI_GRAD = 0, /* phi = eta ||grad q||^2: the paper's theory */
    BOME_PHI_VALUE     /* phi = eta q: the released hyper-parameter code */
} bome_phi;

typedef enum bome_update {
    BOME_UPDATE_SGD = 0,  /* x -= lr d */
    BOME_UPDATE_MOMENTUM, /* PyTorch SGD: buf = mu buf + d (buf = d at first); x -= lr buf */
    BOME_UPDATE_ADAM      /* PyTorch Adam with bias correction */
} bome_update;

/* What every method reports of a step. f and g are taken where the method
 * evaluates them (BOME, V-PBGD: at (v_k, theta_k); ITD, AID-CG, BSG-1 and
 * the meta-learning methods: at theta_T; penalty, BVFSM: after theta's
 * steps; F2SA: at y);
 * grad_f_norm is the norm of the method's direction for v where it has no
 * q (kkt then its square; penalty adds the last theta step's, the squared
 * gradient norm its schedule tests); q, lambda, phi and grad_q_norm are
 * BOME's and 0 for methods without them, except that ufo-blo reports its q
 * in lambda, the penalty methods their current weight (penalty, V-PBGD:
 * gamma; F2SA: lambda), V-PBGD its q as BOME does, F2SA g(v, y) - g(v, z)
 * as q and penalty |grad_theta g| as grad_q_norm. */
typedef struct bome_step_stats {
    long step;          /* outer steps completed, from 1 */
    double f, g, q;
    double lambda, phi;
    double grad_f_norm, grad_q_norm; /* over all of (v, theta) */
    double kkt;         /* min over l >= 0 of ||grad f + l grad q||^2 + q */
    long grad_evals;    /* gradients of f or g this step took (methods that count; else 0) */
    long hvp_evals;     /* Hessian-vector products (and mixed products) likewise */
    long total_grad_evals, total_hvp_evals; /* the same over the run so far */
    double seconds;     /* wall time of this step */
    double total_seconds;
} bome_step_stats;

typedef struct bome_solver bome_solver;

/* Called after every step; return non-zero to stop (status BOME_OK). */
typedef int (*bome_step_fn)(void *ud, bome_solver *s, const bome_step_stats *st);
/* Called before every step to refill the data inputs' memory, e.g. with a
 * minibatch drawn with rng (seeded from options.seed). Non-zero stops the run
 * with that status. */
typedef int (*bome_refill_fn)(void *ud, bome_rng *rng, long step);

/*
 * The other workers of a data-parallel run, as the solver reaches them:
 * all it needs of a distributed engine is a sum of a buffer across the
 * workers and a copy of worker 0's buffer to all. bome/mpi.h fills one in
 * with MPI (bome_options_use_mpi); another engine fills in its own. Every
 * worker runs the same steps, so the solver makes the same calls in the
 * same order on each, with the same n; each returns 0, or non-zero with a
 * message in msg (msglen bytes). The sum must give every worker the same
 * values, bit for bit.
 *
 * What the solver sums: every plan's outputs, once per run, packed in one
 * buffer (objectives, gradients in replicated variables, Hessian-vector
 * products; gradients in sharded variables stay local), and the sharded
 * blocks' parts of dot products and norms. So f, g, q, lambda and every
 * step's direction in the replicated variables agree on all workers, and
 * each takes the same step. At bome_solver_new the workers compare their
 * problems' shapes and settings (an error on all if they differ) and take
 * worker 0's values of the replicated variables. Methods that
 * differentiate through the inner loop (itd, reverse) or through a
 * function of g's value or gradient (penalty, bvfsm) also sum inside their
 * graphs (bome_workers_sum), each sum a call of its own.
 *
 * So that every worker takes the same steps, on_step must return the same
 * everywhere (count steps, not seconds), and refill and the task sampler
 * draw with the solver's rng, which starts from the same seed everywhere.
 * A plan that fails on one worker (a bad label in its rows) is flagged in
 * the plan's sum, and every worker fails with it; any other error on one
 * worker alone (its refill callback fails; a plan fails before a sum
 * inside its graph) leaves the others waiting in their next sum: end the
 * job then, as MPI_Abort does. Checkpoints are per worker: each saves and
 * loads its own.
 */
typedef struct bome_workers {
    int rank;                /* this worker, 0 .. size - 1 */
    int size;                /* the number of workers */
    bome_sum_fn sum;         /* adds buf[0..n) across the workers, in place */
    bome_sum_fn broadcast;   /* copies worker 0's buf[0..n) to every worker */
    void *ud;                /* passed to both */
} bome_workers;

/* Slots for the methods' own settings; see bome_options_set. */
#define BOME_OPTION_SLOTS 64

/*
 * The settings every method shares are fields; a method's own settings
 * (BOME's eta, AID-CG's cg_steps, ...) live in param[] and are read and
 * written by name with bome_options_set / bome_options_get, as NLopt's
 * nlopt_set_param does. Why: bome_options is a caller-allocated struct, so
 * every new field would change its size and break the ABI; with the slots a
 * new method adds settings without changing the struct, and the names are the
 * stable interface (the slot a name maps to is private). Shared fields can be
 * set by name too, which is what the CLI and the JSON do.
 */
typedef struct bome_options {
    bome_method method;     /* (BOME_METHOD_BOME) */
    int T;                  /* inner gradient steps per outer step (10) */
    double alpha;           /* inner step size (0.05) */
    double inner_momentum;  /* PyTorch-style momentum of the inner loop (0) */
    int inner_momentum_keep;/* 1: its buffer carries over from one outer step to
                             * the next, as in the released hyper-cleaning code
                             * (one inner optimizer for the whole run); 0: it
                             * restarts at every outer step (0; only the methods
                             * whose released code keeps one inner optimizer,
                             * BOME, BSG-1 and stocBiO, honour it; the others
                             * restart it, as the reference's implementations do) */
    double lr_outer;        /* step size for v (0.05) */
    double lr_inner;        /* step size for theta (0.05; unused by methods where
                             * theta takes theta_T) */
    bome_update update;     /* outer update rule (BOME_UPDATE_SGD) */
    double momentum;        /* mu for BOME_UPDATE_MOMENTUM (0.9) */
    int lr_decay;           /* 0: constant steps; 1: lr / (k + 1) at outer step k from 0,
                             * the schedule of UFO-BLO's toy (0) */
    double adam_beta1, adam_beta2, adam_eps; /* (0.9, 0.999, 1e-8) */
    long max_steps;         /* for bome_solve / bome_solver_run (1000) */
    double tol;             /* stop once the KKT residual (methods without q: the
                             * squared norm of v's direction) is below it (0: never) */
    uint64_t seed;          /* for the refill rng and any sampling (0) */
    bome_step_fn on_step;
    void *on_step_ud;
    bome_refill_fn refill;
    void *refill_ud;
    int threads;            /* threads over the rows of large data inputs; see
                             * bome_graph_set_threads (0 or 1: one) */
    bome_alloc_fn alloc;    /* for everything the solver allocates (NULL: the C library's) */
    void *alloc_ud;
    const bome_workers *workers; /* a data-parallel run's workers (NULL: one
                             * process); must outlive the solvers made with it */
    double param[BOME_OPTION_SLOTS]; /* the methods' own settings, by name only */
} bome_options;

/*
 * The description of one setting, shared or a method's own: the one place
 * its name, default, range and help are written; bome_options_default, the
 * checks, the CLI's flags and help and the JSON all read it.
 */
typedef enum bome_option_type {
    BOME_OPTION_INT = 0,    /* a whole number */
    BOME_OPTION_REAL,
    BOME_OPTION_CHOICE      /* one of choices, stored as its index */
} bome_option_type;

enum { BOME_OPEN_LO = 1, BOME_OPEN_HI = 2 };

typedef struct bome_option_info {
    const char *name;       /* for bome_options_set and the JSON; the CLI's flag is
                             * --name with '_' written '-' */
    const char *alias;      /* a second name (e.g. "lr_v"), or NULL */
    const char *help;       /* one line */
    bome_option_type type;
    double def, lo, hi;     /* the default and the range [lo, hi] */
    unsigned open;          /* BOME_OPEN_LO / BOME_OPEN_HI: that end excluded */
    const char *choices;    /* BOME_OPTION_CHOICE: "sgd|momentum|adam" */
    int method;             /* -1: every method's; else the method it belongs to */
} bome_option_info;

int bome_option_count(void);
/* Fills *out with setting i (shared ones first, then each method's own in
 * the table's order). BOME_ERR_ARG if i is out of range. */
int bome_option_info_at(int i, bome_option_info *out);
/* The index of the setting with that name or alias, or -1. */
int bome_option_find(const char *name);

/* Sets a setting by name: BOME_ERR_ARG for an unknown name, a value outside
 * its range, or a fraction for a whole number; the options are then unchanged. */
int bome_options_set(bome_options *o, const char *name, double value);
int bome_options_get(const bome_options *o, const char *name, double *value);
/* Checks every shared setting and the chosen method's own. BOME_OK, or an
 * error code with a message in msg (which may be NULL). */
int bome_options_check(const bome_options *o, char *msg, size_t msglen);

/* The paper's defaults (its toy problems' settings). */
void bome_options_default(bome_options *o);

/* ---- Solving ------------------------------------------------------------------ */

/*
 * Builds the graphs and checks the options. NULL only if memory ran out;
 * otherwise check bome_solver_status(), which holds any error found (invalid
 * options, builder errors) with a message.
 */
bome_solver *bome_solver_new(bome_problem *p, const bome_options *o);
void bome_solver_free(bome_solver *s); /* NULL is fine */
int bome_solver_status(const bome_solver *s);
const char *bome_solver_errmsg(const bome_solver *s);

/*
 * One outer step of BOME. Allocates nothing. On a NaN or infinity in an
 * objective or gradient it returns BOME_ERR_NONFINITE, leaves the variables at
 * the last finite iterate and refuses further steps (BOME_ERR_STATE).
 */
int bome_solver_step(bome_solver *s, bome_step_stats *st);
/* Steps until max_steps, tol, the callback or an error. */
int bome_solver_run(bome_solver *s, bome_step_stats *last);
long bome_solver_steps(const bome_solver *s);
/* The graph opt built, for inspection (e.g. bome_graph_dot). */
bome_graph *bome_solver_graph(bome_solver *s);

/*
 * Checkpoints: the solver's whole state as bytes (the variables, every
 * optimizer buffer, the inner momentum carried over, the rng, the step
 * count, the method's own state) with what identifies the run (the method,
 * the variables' shapes, every setting that changes the trajectory; not
 * max_steps, tol or threads), versioned and checksummed. opt writes no file:
 * the caller stores the bytes (the CLI writes them atomically). A solver
 * loaded from a checkpoint continues bit for bit as the saved one would
 * have. Load checks everything before it changes anything: another run's,
 * a corrupt or a truncated checkpoint is BOME_ERR_ARG with a message and
 * leaves the solver as it was.
 */
size_t bome_solver_state_size(const bome_solver *s);
int bome_solver_save(bome_solver *s, void *buf, size_t size);
int bome_solver_load(bome_solver *s, const void *buf, size_t size);

/* new + run + free; errors are copied to the problem's message. */
int bome_solve(bome_problem *p, const bome_options *o, bome_step_stats *last);

/* The λ of one BOME step, exposed for testing and for other methods:
 * max((phi - <gf, gq>) / (||gq||^2 + eps), 0). */
double bome_lambda(double phi, double dot_fq, double norm2_q, double eps);

#ifdef __cplusplus
}
#endif

#endif
