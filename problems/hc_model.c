/* The hyper-cleaning classifier, its supervised training and evaluation. */
#include "hc_model.h"

#include "bome/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hc_model_init(hc_model *m, bool mlp, int d, int hidden, int classes, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    m->mlp = mlp;
    m->d = d;
    m->hidden = hidden;
    m->classes = classes;
    if (mlp) {
        m->n_params = 4;
        m->shape[0] = BOME_MATRIX(hidden, d);
        m->shape[1] = BOME_VECTOR(hidden);
        m->shape[2] = BOME_MATRIX(classes, hidden);
        m->shape[3] = BOME_VECTOR(classes);
    } else {
        m->n_params = 2;
        m->shape[0] = BOME_MATRIX(classes, d);
        m->shape[1] = BOME_VECTOR(classes);
    }
    bome_rng rng;
    bome_rng_seed(&rng, seed ^ 0x5eed);
    for (int i = 0; i < m->n_params; i++) {
        m->size[i] = (size_t)m->shape[i].rows * (size_t)m->shape[i].cols;
        m->theta[i] = calloc(m->size[i], sizeof(bome_real));
        if (!m->theta[i]) {
            hc_model_free(m);
            return BOME_ERR_NOMEM;
        }
        /* The MLP's weights start as PyTorch's Linear does (uniform within
         * 1/sqrt(fan_in)); a linear model starts at zero, its loss is convex. */
        if (mlp && m->shape[i].rank == 2) {
            double bound = 1.0 / sqrt((double)m->shape[i].cols);
            for (size_t k = 0; k < m->size[i]; k++)
                m->theta[i][k] = bound * (2 * bome_rng_uniform(&rng) - 1);
        }
    }
    return BOME_OK;
}

void hc_model_free(hc_model *m)
{
    for (int i = 0; i < HC_MAX_PARAMS; i++)
        free(m->theta[i]);
    memset(m, 0, sizeof *m);
}

void hc_model_copy(hc_model *dst, const hc_model *src)
{
    for (int i = 0; i < src->n_params; i++)
        memcpy(dst->theta[i], src->theta[i], src->size[i] * sizeof(bome_real));
}

bome_node *hc_l2(bome_graph *g, bome_node *const *theta, int n)
{
    bome_node *s = bome_sumsq(g, theta[0]);
    for (int i = 1; i < n; i++)
        s = bome_add(g, s, bome_sumsq(g, theta[i]));
    return s;
}

bome_node *hc_logits(bome_graph *g, const hc_model *m, bome_node *const *theta, bome_node *x)
{
    /* x W^T + b: the transpose is a flag to dgemm, never a copy. */
    bome_node *h = bome_add(g, bome_matmul(g, x, 0, theta[0], 1), theta[1]);
    if (!m->mlp)
        return h;
    return bome_add(g, bome_matmul(g, bome_tanh(g, h), 0, theta[2], 1), theta[3]);
}

/* ---- evaluation ------------------------------------------------------------ */

struct hc_eval {
    bome_graph *g;
    bome_node *logits, *loss;
    bome_plan *plan;
    hc_set set;
    int classes;
    const bome_workers *w;
};

static void bind_params(bome_graph *g, hc_model *m, bome_node **theta, const char *prefix)
{
    for (int i = 0; i < m->n_params; i++) {
        char name[32];
        snprintf(name, sizeof name, "%s%d", prefix, i);
        theta[i] = bome_param(g, name, m->shape[i]);
        bome_bind(g, theta[i], m->theta[i]);
    }
}

static bome_node *data_input(bome_graph *g, const char *name, hc_set s, int d, bome_node **labels)
{
    bome_node *x = bome_input(g, name, BOME_MATRIX(s.n, d));
    bome_bind(g, x, (bome_real *)s.x); /* inputs are only read */
    *labels = bome_labels(g, name, s.n);
    bome_bind_labels(g, *labels, s.y);
    return x;
}

hc_eval *hc_eval_new(hc_model *m, hc_set set, int threads, const bome_workers *w)
{
    hc_eval *e = calloc(1, sizeof *e);
    if (!e || !(e->g = bome_graph_new())) {
        free(e);
        return NULL;
    }
    bome_graph_set_threads(e->g, threads > 1 ? threads : 1);
    bome_node *theta[HC_MAX_PARAMS], *y;
    bind_params(e->g, m, theta, "theta");
    bome_node *x = data_input(e->g, "x", set, m->d, &y);
    e->logits = hc_logits(e->g, m, theta, x);
    e->loss = bome_cross_entropy(e->g, e->logits, y);
    bome_node *outs[2] = {e->logits, e->loss};
    e->plan = bome_plan_new(e->g, 2, outs);
    e->set = set;
    e->classes = m->classes;
    e->w = w && w->size > 1 ? w : NULL;
    if (!e->plan) {
        hc_eval_free(e);
        return NULL;
    }
    return e;
}

int hc_eval_run(hc_eval *e, double *accuracy, double *loss)
{
    int rc = bome_plan_run(e->plan);
    if (rc)
        return rc;
    const bome_real *z = bome_data(e->logits);
    int right = 0, k = e->classes;
    for (int i = 0; i < e->set.n; i++) {
        int best = 0;
        for (int j = 1; j < k; j++)
            if (z[(size_t)i * k + j] > z[(size_t)i * k + best])
                best = j;
        right += best == e->set.y[i];
    }
    if (!e->w) {
        *accuracy = (double)right / e->set.n;
        *loss = bome_value(e->loss);
        return BOME_OK;
    }
    char msg[256];
    bome_real sums[2] = {right, bome_value(e->loss) * e->set.n};
    if (e->w->sum(e->w->ud, sums, 2, msg, sizeof msg))
        return BOME_ERR_WORKERS;
    *accuracy = sums[0] / hc_set_all(e->set);
    *loss = sums[1] / hc_set_all(e->set);
    return BOME_OK;
}

void hc_eval_free(hc_eval *e)
{
    if (!e)
        return;
    bome_graph_free(e->g);
    free(e);
}

/* ---- supervised training ------------------------------------------------------- */

/* Where parameter i starts in the packed gradients. */
static size_t offset(const hc_model *m, int i)
{
    size_t at = 0;
    for (int k = 0; k < i; k++)
        at += m->size[k];
    return at;
}

/* The workers' shares of the gradients, packed and summed in one call. */
static int sum_grads(const bome_workers *w, const hc_model *m, bome_node *const *grads, bome_real *pack)
{
    for (int i = 0; i < m->n_params; i++)
        memcpy(pack + offset(m, i), bome_data(grads[i]), m->size[i] * sizeof *pack);
    char msg[256];
    return w->sum(w->ud, pack, offset(m, m->n_params), msg, sizeof msg) ? BOME_ERR_WORKERS : BOME_OK;
}

int hc_train(hc_model *m, hc_set a, hc_set b, hc_set held, const hc_fit *fit, char *err, size_t errlen)
{
    bome_graph *g = bome_graph_new();
    int threads = fit->threads > 1 ? fit->threads : 1;
    if (g)
        bome_graph_set_threads(g, threads);
    hc_model best = {0}, buf = {0};
    hc_eval *ev = NULL;
    int rc = BOME_ERR_NOMEM;
    if (!g || hc_model_init(&best, m->mlp, m->d, m->hidden, m->classes, 0) ||
        hc_model_init(&buf, m->mlp, m->d, m->hidden, m->classes, 0) ||
        (held.n > 0 && !(ev = hc_eval_new(m, held, threads, fit->w)))) {
        snprintf(err, errlen, "out of memory setting up training");
        goto done;
    }
    bome_node *theta[HC_MAX_PARAMS], *grads[HC_MAX_PARAMS], *ya, *yb = NULL;
    bind_params(g, m, theta, "theta");
    bome_node *xa = data_input(g, "a", a, m->d, &ya);
    /* The union's mean CE as a weighted sum of the two parts' means: the two
     * sets need not be copied into one matrix. A worker's share of it
     * divides by the rows of all the workers; the penalty is worker 0's. */
    const bome_workers *w = fit->w && fit->w->size > 1 ? fit->w : NULL;
    double all = (double)hc_set_all(a) + hc_set_all(b);
    bome_node *loss = bome_scale(g, bome_cross_entropy(g, hc_logits(g, m, theta, xa), ya), (double)a.n / all);
    if (b.n > 0) {
        bome_node *xb = data_input(g, "b", b, m->d, &yb);
        bome_node *lb = bome_scale(g, bome_cross_entropy(g, hc_logits(g, m, theta, xb), yb), (double)b.n / all);
        loss = bome_add(g, loss, lb);
    }
    if (!w || w->rank == 0) {
        bome_node *penalty = fit->penalty ? fit->penalty(g, theta, m->n_params, fit->penalty_ud)
                                          : bome_scale(g, hc_l2(g, theta, m->n_params), fit->l2);
        loss = bome_add(g, loss, penalty);
    }
    bome_grad(g, loss, m->n_params, theta, grads);
    bome_plan *plan = bome_plan_new(g, m->n_params, grads);
    if (!plan) {
        rc = bome_graph_status(g);
        snprintf(err, errlen, "building the training graph: %s", bome_graph_errmsg(g));
        goto done;
    }
    double best_loss = INFINITY, acc, held_loss = NAN;
    size_t n_grad = 0;
    for (int i = 0; i < m->n_params; i++)
        n_grad += m->size[i];
    bome_real *pack = w ? malloc(n_grad * sizeof *pack) : NULL;
    if (w && !pack) {
        rc = BOME_ERR_NOMEM;
        snprintf(err, errlen, "out of memory setting up training");
        goto done;
    }
    rc = BOME_OK;
    for (int t = 0; t <= fit->steps; t++) {
        if (ev && (rc = hc_eval_run(ev, &acc, &held_loss)))
            break;
        if (ev && held_loss < best_loss) {
            best_loss = held_loss;
            hc_model_copy(&best, m);
        }
        if (fit->progress && (t % 10 == 0 || t == fit->steps))
            fit->progress(fit->ud, t, fit->steps, held_loss);
        if (t == fit->steps)
            break;
        if (fit->cancel && fit->cancel(fit->ud)) {
            rc = BOME_ERR_STATE;
            snprintf(err, errlen, "training interrupted at step %d of %d", t, fit->steps);
            goto done;
        }
        if ((rc = bome_plan_run(plan)))
            break;
        if (w && (rc = sum_grads(w, m, grads, pack)))
            break;
        for (int i = 0; i < m->n_params; i++) {
            const bome_real *d = w ? pack + offset(m, i) : bome_data(grads[i]);
            bome_real *x = m->theta[i], *v = buf.theta[i];
            double mu = t ? 0.9 : 0.0;
            for (size_t k = 0; k < m->size[i]; k++) {
                v[k] = mu * v[k] + d[k];
                x[k] -= fit->lr * v[k];
            }
        }
    }
    bool finite = ev ? isfinite(best_loss) : true;
    for (int i = 0; !ev && i < m->n_params; i++)
        for (size_t k = 0; k < m->size[i]; k++)
            finite = finite && isfinite(m->theta[i][k]);
    free(pack);
    if (rc == BOME_ERR_WORKERS)
        snprintf(err, errlen, "training: summing the gradients across the workers failed");
    else if (rc)
        snprintf(err, errlen, "training: %s", bome_graph_errmsg(g));
    else if (!finite) {
        rc = BOME_ERR_NONFINITE;
        snprintf(err, errlen, "training diverged (%s not finite); try a smaller step size",
                 ev ? "held-out loss" : "weights");
    } else if (ev)
        hc_model_copy(m, &best);
done:
    hc_eval_free(ev);
    hc_model_free(&best);
    hc_model_free(&buf);
    bome_graph_free(g);
    return rc;
}
