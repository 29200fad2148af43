/* Hyper-cleaning's classifier (linear, or 784-H-10 with tanh), its
 * supervised training for the warm start and the comparison points, a disk
 * cache for those, and evaluation. All of it through the ad engine. */
#ifndef PROB_HC_MODEL_H
#define PROB_HC_MODEL_H

#include "bome/opt.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HC_MAX_PARAMS 4

typedef struct hc_model {
    bool mlp;
    int d, hidden, classes;
    int n_params;
    bome_shape shape[HC_MAX_PARAMS];
    size_t size[HC_MAX_PARAMS];
    bome_real *theta[HC_MAX_PARAMS]; /* owned */
} hc_model;

int hc_model_init(hc_model *m, bool mlp, int d, int hidden, int classes, uint64_t seed);
void hc_model_free(hc_model *m);
void hc_model_copy(hc_model *dst, const hc_model *src);
/* The parameters' squared norm, the L2 term's variable part. */
bome_node *hc_l2(bome_graph *g, bome_node *const *theta, int n);
/* Logits of the n x d inputs x. */
bome_node *hc_logits(bome_graph *g, const hc_model *m, bome_node *const *theta, bome_node *x);

/* A dataset view: rows of x with labels. In a data-parallel run, a
 * worker's rows of a set of n_all rows over all the workers (0: n). */
typedef struct hc_set {
    const bome_real *x;
    const int32_t *y;
    int n;
    int n_all;
} hc_set;

/* The rows of s over all the workers. */
static inline int hc_set_all(hc_set s) { return s.n_all ? s.n_all : s.n; }

/* Test accuracy and mean cross-entropy of the model on a set. */
typedef struct hc_eval hc_eval;
/* threads: see bome_graph_set_threads. With workers (NULL: one process),
 * every worker evaluates its rows and hc_eval_run sums the counts and
 * losses: collective, the same figures on every worker. */
hc_eval *hc_eval_new(hc_model *m, hc_set set, int threads, const bome_workers *w);
int hc_eval_run(hc_eval *e, double *accuracy, double *loss);
void hc_eval_free(hc_eval *e);

/* How to train: full-batch steps of SGD with momentum 0.9 (PyTorch
 * semantics) on mean CE + a penalty, l2 ||theta||^2 unless penalty is given;
 * progress (may be NULL) hears of every tenth step. */
typedef void (*hc_progress_fn)(void *ud, int step, int steps, double held_loss);
typedef bome_node *(*hc_penalty_fn)(bome_graph *g, bome_node *const *theta, int n, void *ud);
typedef struct hc_fit {
    int steps;
    double lr, l2;
    hc_penalty_fn penalty;
    void *penalty_ud;
    int threads;
    const bome_workers *w;  /* data-parallel: the sets are this worker's rows,
                             * the gradients summed across workers (NULL: one) */
    hc_progress_fn progress;
    void *ud;
} hc_fit;

/*
 * Trains m on the union of a and b (b.n may be 0), keeping the iterate with
 * the best loss on held, or the last one when held.n is 0. Returns 0 or a
 * status with a message in err; prints nothing.
 */
int hc_train(hc_model *m, hc_set a, hc_set b, hc_set held, const hc_fit *fit, char *err, size_t errlen);

/* The cache: a file per (key) holding the parameters. Returns true if it
 * loaded one that matches the model's shapes. */
bool hc_cache_load(const char *path, hc_model *m);
int hc_cache_save(const char *path, const hc_model *m);

#endif
