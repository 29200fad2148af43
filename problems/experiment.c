/* The Fashion-MNIST experiments' shared set-up; see experiment.h. */
#include "experiment.h"

#include <errno.h>
#include <stdlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int prob_threads(const prob_run *r)
{
    return r->o && r->o->threads > 1 ? r->o->threads : 1;
}

const bome_workers *prob_workers(const prob_run *r)
{
    return r->o && r->o->workers && r->o->workers->size > 1 ? r->o->workers : NULL;
}

int prob_sum(const bome_workers *w, double *buf, size_t n)
{
#ifdef BOME_FLOAT32
    /* The workers sum bome_real, and these are double accumulators (counts
     * beyond float's 2^24 among them); the MPI component is built in
     * double precision only (cli/meson.build), so a float32 run has none. */
    (void)buf, (void)n;
    return w ? BOME_ERR_WORKERS : BOME_OK;
#else
    char msg[256];
    return w && w->sum(w->ud, buf, n, msg, sizeof msg) ? BOME_ERR_WORKERS : BOME_OK;
#endif
}

static int data_sum(void *ud, double *buf, size_t n) { return prob_sum(ud, buf, n); }

int prob_load_split(const prob_run *r, const char *dir, const int sizes[4], data_split *d, char *err, size_t errlen)
{
    double t0 = now();
    data_sizes z = {sizes[0], sizes[1], sizes[2], sizes[3]};
    const bome_workers *w = prob_workers(r);
    if (data_split_load_part(dir, r->o ? r->o->seed : 0, z, w ? w->rank : 0, w ? w->size : 1, data_sum, (void *)w, d,
                             err, errlen))
        return BOME_ERR_IO;
    double clean = 0;
    for (int i = 0; i < d->n_train; i++)
        clean += d->clean[i];
    if (prob_sum(w, &clean, 1))
        return snprintf(err, errlen, "summing the clean labels across the workers failed"), BOME_ERR_WORKERS;
    prob_note(r, "data: %d train (%d labels corrupted), %d validation, %d held-out, %d test, in %.1f s%s",
              d->n_all_train, d->n_all_train - (int)clean, d->n_all_val, d->n_all_held, d->n_all_test, now() - t0,
              w ? " (each worker reads its own rows)" : "");
    return BOME_OK;
}

typedef struct fit_news {
    const prob_run *r;
    const char *what;
} fit_news;

static void fit_progress(void *ud, int step, int steps, double held_loss)
{
    fit_news *n = ud;
    prob_progress(n->r, n->what, step, steps, held_loss);
}

static int fit_cancel(void *ud)
{
    const prob_run *r = ((fit_news *)ud)->r;
    return r->cancel && r->cancel(r->ud);
}

int prob_fit(const prob_run *r, const char *key, const char *what, hc_model *m, hc_set a,
             hc_set b, hc_set held, hc_fit fit, bool use_cache, char *err, size_t errlen)
{
    char path[4096] = "";
    hc_cache_key k;
    if (r->out_dir && key) {
        /* the key holds everything the result depends on, the data as the
         * bytes trained on: a changed data set or setting trains anew
         * instead of loading a stale model */
        char dir[4096];
        snprintf(dir, sizeof dir, "%.4000s/cache", r->out_dir);
        if (mkdir(dir, 0777) && errno != EEXIST)
            return snprintf(err, errlen, "cannot create %.900s: %s", dir, strerror(errno)), BOME_ERR_IO;
        hc_cache_key_make(&k, key, m, a, b, held, &fit, r->o ? r->o->seed : 0);
        hc_cache_path(path, sizeof path, dir, &k, m);
    }
    /* with workers, worker 0 alone reads and writes the cache, and the
     * others take what it read */
    const bome_workers *w = prob_workers(r);
    bome_real loaded = 0;
    if (path[0] && use_cache && (!w || w->rank == 0)) {
        char why[256];
        int got = hc_cache_load(path, &k, m, why, sizeof why);
        loaded = got == HC_CACHE_LOADED;
        if (got == HC_CACHE_REJECTED)
            prob_note(r, "%s: cache %s rejected: %s; training anew", what, path, why);
    }
    char msg[256];
    if (w && w->broadcast(w->ud, &loaded, 1, msg, sizeof msg))
        return snprintf(err, errlen, "%s: broadcasting the cache's state failed: %s", what, msg), BOME_ERR_WORKERS;
    for (int i = 0; w && loaded && i < m->n_params; i++)
        if (w->broadcast(w->ud, m->theta[i], m->size[i], msg, sizeof msg))
            return snprintf(err, errlen, "%s: broadcasting the cached model failed: %s", what, msg), BOME_ERR_WORKERS;
    if (loaded) {
        prob_note(r, "%s: loaded from cache %s", what, path);
        return BOME_OK;
    }
    double t0 = now();
    fit_news news = {r, what};
    fit.threads = prob_threads(r);
    fit.w = w;
    fit.progress = fit_progress;
    fit.cancel = fit_cancel;
    fit.ud = &news;
    int rc = hc_train(m, a, b, held, &fit, err, errlen);
    if (rc)
        return rc;
    bool cached = path[0] && (w && w->rank != 0 ? true : hc_cache_save(path, &k, m) == BOME_OK);
    prob_note(r, "%s: trained, %d steps in %.1f s%s", what, fit.steps, now() - t0,
              !path[0] ? "" : cached ? ", cached" : " (could not write the cache)");
    return BOME_OK;
}

int prob_test(const prob_run *r, const data_split *d, hc_model *m, double *accuracy, double *loss)
{
    hc_set test = {d->x_test, d->y_test, d->n_test, d->n_all_test};
    hc_eval *ev = hc_eval_new(m, test, prob_threads(r), prob_workers(r));
    int rc = ev ? hc_eval_run(ev, accuracy, loss) : BOME_ERR_NOMEM;
    hc_eval_free(ev);
    return rc;
}

int prob_exp_problem(prob_run *r, prob_exp *e, int n_v, char *err, size_t errlen)
{
    static const char *const mlp[HC_MAX_PARAMS] = {"W1", "b1", "W2", "b2"}, *const linear[2] = {"W", "b"};
    const data_split *d = &e->data;
    bome_problem *p = r->problem = bome_problem_new();
    if (!p)
        return BOME_ERR_NOMEM;
    bome_problem_add_outer(p, "v", BOME_VECTOR(n_v), e->v);
    for (int i = 0; i < e->model.n_params; i++)
        bome_problem_add_inner(p, e->model.mlp ? mlp[i] : linear[i], e->model.shape[i], e->model.theta[i]);
    bome_problem_add_input(p, "x_train", BOME_MATRIX(d->n_train, d->d), d->x_train);
    bome_problem_add_labels(p, "y_train", d->n_train, d->y_train);
    bome_problem_add_input(p, "x_val", BOME_MATRIX(d->n_val, d->d), d->x_val);
    bome_problem_add_labels(p, "y_val", d->n_val, d->y_val);
    hc_set test = {d->x_test, d->y_test, d->n_test, d->n_all_test}, val = {d->x_val, d->y_val, d->n_val, d->n_all_val};
    hc_set held = {d->x_held, d->y_held, d->n_held, d->n_all_held};
    const bome_workers *w = prob_workers(r);
    e->test = hc_eval_new(&e->model, test, prob_threads(r), w);
    e->val = hc_eval_new(&e->model, val, prob_threads(r), w);
    e->held = hc_eval_new(&e->model, held, prob_threads(r), w);
    if (!e->test || !e->val || !e->held) {
        snprintf(err, errlen, "out of memory for the evaluation");
        return BOME_ERR_NOMEM;
    }
    return bome_problem_status(p);
}

int prob_exp_measure(prob_exp *e, double *test_acc, double *test_loss, double *val_loss, double *held_loss)
{
    double acc;
    int rc = hc_eval_run(e->test, test_acc, test_loss);
    if (!rc && val_loss)
        rc = hc_eval_run(e->val, &acc, val_loss);
    if (!rc)
        rc = hc_eval_run(e->held, &acc, held_loss);
    return rc;
}

void prob_exp_free(prob_exp *e)
{
    hc_eval_free(e->test);
    hc_eval_free(e->val);
    hc_eval_free(e->held);
    hc_model_free(&e->model);
    data_split_free(&e->data);
    free(e->v);
}
