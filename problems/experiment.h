/* What the Fashion-MNIST experiments (hyperclean, l2reg) share: the data
 * protocol's split, announced; a classifier trained once and then found in
 * a cache; its test accuracy and loss. */
#ifndef PROB_EXPERIMENT_H
#define PROB_EXPERIMENT_H

#include "cases.h"
#include "data.h"
#include "hc_model.h"

/* The split of the IDX files in dir for r's seed, and a note saying what it holds. */
int prob_load_split(const prob_run *r, const char *dir, const int sizes[4], data_split *d, char *err, size_t errlen);

/* A data-parallel run's workers (options.workers with more than one), or
 * NULL. With workers, the split is the worker's part (data_split_load_part:
 * it reads only its rows), the warm starts and comparison points train
 * data-parallel (worker 0 reads and writes the cache), and every
 * evaluation sums over the workers: create, measure, report and save are
 * then collective, called on every worker. */
const bome_workers *prob_workers(const prob_run *r);
/* buf[0..n) summed across w's workers in place (nothing with NULL). */
int prob_sum(const bome_workers *w, double *buf, size_t n);
/* The threads the run's options give (1 without options). */
int prob_threads(const prob_run *r);

/* Trains m as hc_train does, or loads it from r->out_dir's cache under a
 * name made of key and everything the result depends on; what names it in
 * the notes (key NULL: no cache). use_cache false recomputes and still
 * refreshes the cache. */
int prob_fit(const prob_run *r, const char *key, const char *what, hc_model *m, hc_set a,
             hc_set b, hc_set held, hc_fit fit, bool use_cache, char *err, size_t errlen);

/* What an experiment holds: the split, theta's model (the inner variable,
 * in the model's memory), v, and theta's evaluators on the test, validation
 * and held-out images. */
typedef struct prob_exp {
    data_split data;
    hc_model model;
    bome_real *v;
    hc_eval *test, *val, *held;
} prob_exp;

/* r->problem over e: the outer variable v (n_v values, allocated), the
 * model's parameters, the data (0 train x, 1 train labels, 2 validation x,
 * 3 their labels, bound zero-copy); objectives and bounds are the caller's.
 * Then the evaluators. Returns 0 or a status with a message in err. */
int prob_exp_problem(prob_run *r, prob_exp *e, int n_v, char *err, size_t errlen);
/* theta's test accuracy and loss, and its validation and held-out losses
 * (val_loss may be NULL), at the current iterate. */
int prob_exp_measure(prob_exp *e, double *test_acc, double *test_loss, double *val_loss, double *held_loss);
void prob_exp_free(prob_exp *e);

/* m's accuracy and mean cross-entropy on the test images. */
int prob_test(const prob_run *r, const data_split *d, hc_model *m, double *accuracy, double *loss);

#endif
