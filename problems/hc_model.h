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
    /* asked every step: non-zero gives the training up (may be NULL) */
    int (*cancel)(void *ud);
    void *ud;
    /* The penalty's own data (its fixed weights), for the cache key: the
     * function pointer says nothing of what it penalizes. */
    const void *penalty_key;
    size_t penalty_key_len;
} hc_fit;

/*
 * Trains m on the union of a and b (b.n may be 0), keeping the iterate with
 * the best loss on held, or the last one when held.n is 0. Returns 0 or a
 * status with a message in err; prints nothing.
 */
int hc_train(hc_model *m, hc_set a, hc_set b, hc_set held, const hc_fit *fit, char *err, size_t errlen);

/*
 * The cache (hc_cache.c): a fit's parameters on disk under a key made of
 * everything the fit depends on. The data enter as a digest of the bytes
 * trained on (pixels and labels of a, b and held), not as the directory's
 * name or mtime: a copied, touched or re-split data set, another seed, size
 * or corruption count, all change those bytes, and a path says nothing of
 * what the protocol made of the files. The start enters as a digest of the
 * initial parameters (the MLP's seeded draw).
 */
typedef struct hc_cache_key {
    char name[48]; /* the caller's name for the fit ("noisy", "l2reg-w0.1") */
    uint64_t data, start, penalty; /* digests (crc32 << 32 | adler32) */
    uint64_t seed;
    int32_t steps, n_a, n_b, n_held;
    double lr, l2;
} hc_cache_key;

/* The largest magnitude a cached parameter may have: far above what a fit
 * of standardized pixels reaches, far below what overflows a logit. */
#define HC_CACHE_MAX_ABS 1e6

enum { HC_CACHE_LOADED = 0, HC_CACHE_ABSENT = 1, HC_CACHE_REJECTED = 2 };

/* The key of fitting m (at its current, initial values) as fit says on a, b, held. */
void hc_cache_key_make(hc_cache_key *k, const char *name, const hc_model *m, hc_set a, hc_set b, hc_set held,
                       const hc_fit *fit, uint64_t seed);
/* The file name for k under dir: its name and a digest of the whole key. */
void hc_cache_path(char *path, size_t len, const char *dir, const hc_cache_key *k, const hc_model *m);
/* Reads path into m when it is k's cache for m's shapes, whole, checksummed
 * and every value finite and within HC_CACHE_MAX_ABS; everything is checked
 * in a buffer of its own before m is written, so a rejected file leaves m
 * as it was. HC_CACHE_ABSENT: no such file; HC_CACHE_REJECTED: why in err. */
int hc_cache_load(const char *path, const hc_cache_key *k, hc_model *m, char *err, size_t errlen);
/* The same checks on a file's bytes (len of them); what the fuzzer drives. */
int hc_cache_parse(const unsigned char *buf, size_t len, const hc_cache_key *k, hc_model *m, char *err, size_t errlen);
/* Writes m under k: to a temporary, synced, then renamed into place. */
int hc_cache_save(const char *path, const hc_cache_key *k, const hc_model *m);
/* The bytes hc_cache_save writes, into a buffer the caller frees (NULL when
 * out of memory); *len their count. For tests and the fuzzer's seeds. */
unsigned char *hc_cache_bytes(const hc_cache_key *k, const hc_model *m, size_t *len);

#endif
