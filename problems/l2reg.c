/*
 * Learnable L2 regularization, the paper's second hyper-parameter
 * experiment, on Fashion-MNIST: one penalty weight exp(v_j) per pixel,
 * shared by the ten classes' weights on it, tuned so that a linear
 * classifier trained on a small set does well on a validation set.
 *
 *     g(v, theta) = mean CE(train) + 1/2 mean_{c,j} W_cj^2 exp(v_j)
 *     f(theta)    = mean CE(validation)
 *
 * v starts at 0 and theta = (W, b) at the lower level's solution there (the
 * fit without the penalty, which weighs 1/7840 per weight at v = 0), as
 * hyper-cleaning starts from its warm start. The comparison points solve the
 * same inner problem at a fixed v, each from 0 with the same full-batch
 * steps (--fit-steps, --fit-lr): without the penalty (exp(v) = 0), and with one
 * scalar weight for every pixel, the best of a log-spaced grid by the
 * validation loss; at the end, the method's learned v gets the same fit,
 * so that per-pixel and scalar weights are compared on equal terms.
 */
#include "experiment.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { DATA_DIR, SIZES, FIT_STEPS, FIT_LR, GRID_LO, GRID_HI, NO_CACHE };

enum { GRID = 13 };

static const prob_param params[] = {
    {.name = "data-dir", .type = PROB_TEXT, .meta = "DIR", .text = "/usr/share/datasets/fashion-mnist",
     .help = "IDX files"},
    {.name = "sizes", .type = PROB_SIZES, .meta = "T,V,H,C", .sizes = {1000, 5000, 5000, 0},
     .help = "train, validation, held-out sizes and corrupted labels"},
    {.name = "fit-steps", .type = PROB_INT, .def = 1000,
     .help = "steps of the comparison fits (momentum 0.9, from 0, the last iterate)"},
    {.name = "fit-lr", .type = PROB_REAL, .def = 0.01, .help = "their step size"},
    {.name = "grid-lo", .type = PROB_REAL, .def = -2, .help = "log10 of the scalar grid's smallest exp(v)"},
    {.name = "grid-hi", .type = PROB_REAL, .def = 6, .help = "log10 of its largest (13 values)"},
    {.name = "no-cache", .type = PROB_SWITCH, .help = "recompute the comparison fits"},
};

enum { TEST_ACC, TEST_LOSS, VAL_LOSS, HELD_LOSS, V_MEAN, V_SD, N_METRICS };

static const prob_metric metrics[N_METRICS] = {
    {"test_acc", "test_accuracy", 1}, {"test_loss", "test_loss", 2}, {"val_loss", "val_loss", 3},
    {"held_loss", NULL, 0},           {"v_mean", "v_mean", 0},       {"v_sd", "v_sd", 0},
};

enum { NO_REG, SCALAR, N_CMP };

typedef struct state {
    prob_exp e;
    const char *data_dir;
    bome_real *weights; /* exp(v): the picture, and the fits' penalty */
    double cmp[N_CMP][3];
    double grid[GRID], grid_val[GRID]; /* exp(v) and the validation loss of each fit */
    double scalar;                     /* the grid's best */
} state;

/* 1/2 mean(W^2 exp(v)), the weights broadcast over W's rows (the classes) */
static bome_node *penalty_of(bome_graph *g, bome_node *W, bome_node *weights)
{
    return bome_scale(g, bome_mean(g, bome_mul(g, bome_square(g, W), weights)), 0.5);
}

/* data: 0 train x, 1 train labels, 2 validation x, 3 its labels */
static bome_node *l2_g(bome_graph *g, const bome_vars *x, void *ctx)
{
    state *s = ctx;
    bome_node *ce = bome_cross_entropy(g, hc_logits(g, &s->e.model, x->theta, x->data[0]), x->data[1]);
    return bome_add(g, ce, penalty_of(g, x->theta[0], bome_exp(g, x->v[0])));
}

static bome_node *l2_f(bome_graph *g, const bome_vars *x, void *ctx)
{
    state *s = ctx;
    return bome_cross_entropy(g, hc_logits(g, &s->e.model, x->theta, x->data[2]), x->data[3]);
}

/* The fits' penalty: the same term with the weights fixed, bound as data. */
static bome_node *fixed_penalty(bome_graph *g, bome_node *const *theta, int n, void *ud)
{
    (void)n;
    const state *s = ud;
    bome_node *w = bome_input(g, "l2_weights", BOME_VECTOR(s->e.data.d));
    bome_bind(g, w, s->weights);
    return penalty_of(g, theta[0], w);
}

/* The paper's table, T = 10 of its {1, 5, 10, 20}, phi = eta q with eta =
 * 1e-4, 1000 steps, with its steps (100 for theta, the inner loop and v)
 * carried over to this data's scale: pixels standardized to variance 1
 * are about 100 times the entries of the paper's tf-idf rows, so a loss's
 * curvature in theta is 10^4 times larger (step 100 diverges: the losses
 * pass 10^3 within two steps) and v's gradient, which goes as
 * W^2, 10^4 times smaller. Hence 100 / 10^4 for theta and the inner loop,
 * 100 * 10^4 for v; plain SGD, as the paper's toys. */
static void defaults(bome_options *o)
{
    bome_options_default(o);
    o->T = 10;
    o->alpha = 0.01;
    o->lr_inner = 0.01;
    o->lr_outer = 1e6;
    o->update = BOME_UPDATE_SGD;
    bome_options_set(o, "phi", BOME_PHI_VALUE);
    bome_options_set(o, "eta", 1e-4);
    o->max_steps = 1000;
}

static void destroy(prob_run *r)
{
    state *s = r->state;
    if (s) {
        prob_exp_free(&s->e);
        free(s->weights);
    }
    prob_free(r);
}

/* theta fitted from 0 at the weights now in s->weights; its test accuracy
 * and loss, and its validation loss, into out; the fit itself into start
 * when it is not NULL. */
static int fit(prob_run *r, state *s, const char *key, const char *what, bool cache, double out[3], hc_model *start,
               char *err, size_t errlen)
{
    const prob_case *c = &prob_l2reg;
    const data_split *d = &s->e.data;
    hc_model m = {0};
    double acc;
    hc_set train = {d->x_train, d->y_train, d->n_train, 0}, none = {NULL, NULL, 0, 0};
    hc_set val = {d->x_val, d->y_val, d->n_val, 0};
    hc_fit how = {.steps = (int)prob_real(c, r, FIT_STEPS), .lr = prob_real(c, r, FIT_LR), .penalty = fixed_penalty,
                  .penalty_ud = s, .penalty_key = s->weights, .penalty_key_len = (size_t)d->d * sizeof *s->weights};
    int rc = hc_model_init(&m, false, d->d, 0, d->n_classes, 0);
    if (!rc)
        rc = prob_fit(r, key, what, &m, train, none, none, how, cache, err, errlen);
    if (!rc)
        rc = prob_test(r, d, &m, &out[0], &out[1]);
    hc_eval *ev = rc ? NULL : hc_eval_new(&m, val, prob_threads(r), NULL);
    if (!rc)
        rc = ev ? hc_eval_run(ev, &acc, &out[2]) : BOME_ERR_NOMEM;
    if (rc && !err[0])
        snprintf(err, errlen, "%s: %s", what, bome_status_str(rc));
    if (!rc && start)
        hc_model_copy(start, &m);
    hc_eval_free(ev);
    hc_model_free(&m);
    return rc;
}

static void fill(state *s, double w)
{
    for (int j = 0; j < s->e.data.d; j++)
        s->weights[j] = w;
}

/* No penalty, and the grid of scalar weights, the best by validation loss. */
static int comparisons(prob_run *r, state *s, char *err, size_t errlen)
{
    const prob_case *c = &prob_l2reg;
    bool cache = !prob_real(c, r, NO_CACHE);
    double lo = prob_real(c, r, GRID_LO), hi = prob_real(c, r, GRID_HI);
    fill(s, 0);
    /* theta starts where the lower level's solution at v = 0 is: the fit
     * without the penalty (mean(W^2)/2 weighs 1/7840 per weight there) */
    int rc = fit(r, s, "l2reg-none", "comparison: no regularization (theta's start)", cache, s->cmp[NO_REG], &s->e.model,
                 err, errlen);
    int best = 0;
    double best_fit[3] = {0};
    for (int k = 0; k < GRID && !rc; k++) {
        char key[64], what[96];
        double out[3];
        s->grid[k] = pow(10, lo + (hi - lo) * k / (GRID - 1));
        snprintf(key, sizeof key, "l2reg-w%.6g", s->grid[k]);
        snprintf(what, sizeof what, "comparison: scalar weight exp(v) = %.3g (%d of %d)", s->grid[k], k + 1, GRID);
        fill(s, s->grid[k]);
        rc = fit(r, s, key, what, cache, out, NULL, err, errlen);
        s->grid_val[k] = out[2];
        if (!rc && (k == 0 || out[2] < s->grid_val[best])) {
            best = k;
            memcpy(best_fit, out, sizeof out);
        }
    }
    if (rc)
        return rc;
    s->scalar = s->grid[best];
    memcpy(s->cmp[SCALAR], best_fit, sizeof best_fit);
    prob_note(r, "best scalar weight on validation: exp(v) = %.3g (validation loss %.4f)%s", s->scalar,
              s->grid_val[best], best == 0 || best == GRID - 1 ? "; at the grid's end: widen --grid-lo/--grid-hi" : "");
    return BOME_OK;
}

static int create(prob_run *r, int start, uint64_t seed, char *err, size_t errlen)
{
    (void)start;
    const prob_case *c = &prob_l2reg;
    state *s = calloc(1, sizeof *s);
    if (!s)
        return BOME_ERR_NOMEM;
    r->state = s;
    s->data_dir = prob_text(c, r, DATA_DIR);
    if (prob_real(c, r, FIT_STEPS) < 0 || !(prob_real(c, r, FIT_LR) > 0) ||
        !(prob_real(c, r, GRID_LO) <= prob_real(c, r, GRID_HI))) {
        snprintf(err, errlen, "--fit-lr must be positive, --fit-steps >= 0, --grid-lo <= --grid-hi");
        return BOME_ERR_ARG;
    }
    int rc;
    if ((rc = prob_load_split(r, s->data_dir, prob_sizes(c, r, SIZES), &s->e.data, err, errlen)))
        return rc;
    data_split *d = &s->e.data;
    if (hc_model_init(&s->e.model, false, d->d, 0, d->n_classes, seed) ||
        !(s->e.v = calloc((size_t)d->d, sizeof *s->e.v)) || !(s->weights = calloc((size_t)d->d, sizeof *s->weights))) {
        snprintf(err, errlen, "out of memory");
        return BOME_ERR_NOMEM;
    }
    if ((rc = comparisons(r, s, err, errlen)))
        return rc;

    if ((rc = prob_exp_problem(r, &s->e, d->d, err, errlen)))
        return rc;
    bome_problem_set_objectives(r->problem, l2_f, l2_g, s);
    return bome_problem_status(r->problem);
}

static int measure(prob_run *r, double *m)
{
    state *s = r->state;
    int rc = prob_exp_measure(&s->e, &m[TEST_ACC], &m[TEST_LOSS], &m[VAL_LOSS], &m[HELD_LOSS]);
    double sum = 0, sum2 = 0;
    for (int j = 0; j < s->e.data.d; j++)
        sum += s->e.v[j], sum2 += s->e.v[j] * s->e.v[j];
    m[V_MEAN] = sum / s->e.data.d;
    m[V_SD] = sqrt(fmax(sum2 / s->e.data.d - m[V_MEAN] * m[V_MEAN], 0));
    return rc;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int report(prob_run *r, prob_report *out)
{
    state *s = r->state;
    const data_split *d = &s->e.data;
    const char *M = r->o ? bome_method_name((int)r->o->method) : "the method";
    snprintf(out->title, sizeof out->title, "Learnable L2 regularization on %s, %d train, %d validation images",
             s->data_dir, d->n_train, d->n_val);
    out->n_cols = 3;
    static const char *const col[3] = {"test acc", "test loss", "val loss"};
    static const char *const key[3] = {"test_accuracy", "test_loss", "val_loss"};
    for (int j = 0; j < 3; j++)
        out->col[j] = col[j], out->col_key[j] = key[j];
    prob_row *row = &out->row[out->n_rows++];
    snprintf(row->label, sizeof row->label, "no regularization");
    snprintf(row->key, sizeof row->key, "no_reg");
    memcpy(row->value, s->cmp[NO_REG], sizeof s->cmp[NO_REG]);
    row = &out->row[out->n_rows++];
    snprintf(row->label, sizeof row->label, "best scalar weight, exp(v) = %.3g", s->scalar);
    snprintf(row->key, sizeof row->key, "scalar");
    memcpy(row->value, s->cmp[SCALAR], sizeof s->cmp[SCALAR]);

    /* the learned weights, fitted as the comparison points were */
    char err[256] = "", what[96];
    for (int j = 0; j < d->d; j++)
        s->weights[j] = exp(s->e.v[j]);
    row = &out->row[out->n_rows++];
    snprintf(what, sizeof what, "%s's per-pixel exp(v), theta refitted", M);
    snprintf(row->label, sizeof row->label, "%s", what);
    snprintf(row->key, sizeof row->key, "refit");
    int rc = fit(r, s, NULL, what, false, row->value, NULL, err, sizeof err);
    if (rc)
        return rc;

    double *sorted = malloc((size_t)d->d * sizeof *sorted);
    if (!sorted)
        return BOME_ERR_NOMEM;
    for (int j = 0; j < d->d; j++) /* bome_real to double: not a memcpy, which in float32 read 2 d floats */
        sorted[j] = s->weights[j];
    qsort(sorted, (size_t)d->d, sizeof *sorted, by_value);
    double median = sorted[d->d / 2];
    snprintf(out->line[out->n_lines++], sizeof out->line[0],
             "learned exp(v) over the %d pixels: min %.3g, 5%% %.3g, median %.3g, 95%% %.3g, max %.3g", d->d, sorted[0],
             sorted[d->d / 20], median, sorted[d->d - 1 - d->d / 20], sorted[d->d - 1]);
    free(sorted);
    snprintf(out->line[out->n_lines++], sizeof out->line[0],
             "scalar grid: %d values of exp(v) from %.3g to %.3g, chosen by the validation loss", GRID, s->grid[0],
             s->grid[GRID - 1]);
    const struct { const char *k; double v; } figs[] = {{"scalar_weight", s->scalar}, {"exp_v_median", median}};
    for (size_t i = 0; i < sizeof figs / sizeof figs[0]; i++) {
        snprintf(out->fig[out->n_figs].key, sizeof out->fig[0].key, "%s", figs[i].k);
        out->fig[out->n_figs++].value = figs[i].v;
    }
    return BOME_OK;
}

/* --save-v: a row per pixel */
static int save(prob_run *r, FILE *out)
{
    const state *s = r->state;
    fputs("pixel,row,col,v,exp_v\n", out);
    for (int j = 0; j < s->e.data.d; j++)
        fprintf(out, "%d,%d,%d,%.17g,%.17g\n", j, j / s->e.data.cols, j % s->e.data.cols, (double)s->e.v[j],
                exp(s->e.v[j]));
    return ferror(out) ? BOME_ERR_IO : BOME_OK;
}

static int image(prob_run *r, prob_image *out)
{
    state *s = r->state;
    for (int j = 0; j < s->e.data.d; j++)
        s->weights[j] = exp(s->e.v[j]);
    *out = (prob_image){"exp(v): the learned L2 weight of each pixel", s->e.data.rows, s->e.data.cols, s->weights, true};
    return BOME_OK;
}

static const prob_panel panels[] = {
    {"seconds", "test_acc", "test accuracy", 1, false},
    {"step", "test_loss", "test loss", 1, false},
    {"step", "f", "f (validation loss)", 2, false},
    {"step", "v_sd", "standard deviation of v over the pixels", 1, false},
};

const prob_case prob_l2reg = {
    .name = "l2reg",
    .summary = "learnable L2 regularization, a weight per pixel, on a small Fashion-MNIST training set",
    .default_steps = 1000,
    .defaults = defaults,
    .create = create,
    .destroy = destroy,
    .params = params,
    .n_params = PROB_COUNT(params),
    .eval_every = 10,
    .metrics = metrics,
    .n_metrics = N_METRICS,
    .measure = measure,
    .select = 1 + HELD_LOSS,
    .select_label = "held-out loss",
    .select_key = "held_out",
    .report = report,
    .save = save,
    .save_what = "learned weights v (a row per pixel)",
    .save_key = "v_file",
    .image = image,
    .panels = panels,
    .n_panels = PROB_COUNT(panels),
    .plot_title = "learnable L2 regularization",
};
