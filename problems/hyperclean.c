/*
 * Data hyper-cleaning: one weight v_i in [0, 1] per training example, so that
 * a classifier trained on corrupted labels does well on a clean validation set.
 *
 *     g(v, theta) = mean_i clip(v_i, 0, 1) CE_i(train) + 0.001 ||theta||^2
 *     f(theta)    = mean CE(validation)
 *
 * Those two builders are the bilevel problem; the rest of this file is the
 * experiment around it: the warm start theta starts from and the comparison
 * points (each a classifier trained once, then cached), the figures of a
 * logged step (test and held-out loss, the cleaning mask's F1), --save-v.
 */
#include "experiment.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define L2 0.001

enum { DATA_DIR, SIZES, MODEL, HIDDEN, WARM_STEPS, WARM_LR, NO_CACHE };

static const prob_param params[] = {
    {.name = "data-dir", .type = PROB_TEXT, .meta = "DIR", .text = "/usr/share/datasets/fashion-mnist",
     .help = "IDX files"},
    {.name = "sizes", .type = PROB_SIZES, .meta = "T,V,H,C", .sizes = {50000, 5000, 5000, 25000},
     .help = "train, validation, held-out sizes and corrupted labels"},
    {.name = "model", .type = PROB_TEXT, .meta = "linear|mlp", .text = "linear",
     .help = "the classifier (mlp is 784-H-10 with tanh)"},
    {.name = "hidden", .type = PROB_INT, .def = 300, .help = "hidden units of mlp"},
    {.name = "warm-steps", .type = PROB_INT, .def = 5000, .help = "warm-start steps (the reference's; the demo: 300)"},
    {.name = "warm-lr", .type = PROB_REAL, .def = 0.01, .help = "warm-start step size"},
    {.name = "no-cache", .type = PROB_SWITCH, .help = "recompute the warm start"},
};

enum { TEST_ACC, TEST_LOSS, HELD_LOSS, PRECISION, RECALL, F1, N_METRICS };

static const prob_metric metrics[N_METRICS] = {
    {"test_acc", "test_accuracy", 1}, {"test_loss", "test_loss", 2}, {"held_loss", NULL, 0},
    {"precision", "precision", 0},    {"recall", "recall", 0},       {"f1", "f1", 0},
};

enum { START, VAL_ONLY, ORACLE, N_CMP };

typedef struct state {
    prob_exp e; /* theta starts at the warm start, v at 0.5 */
    const char *data_dir, *model_name;
    double cmp[N_CMP][2]; /* test accuracy and loss of the comparison models */
} state;

/* data: 0 train x, 1 train labels (corrupted), 2 validation x, 3 its labels */
static bome_node *hc_g(bome_graph *g, const bome_vars *x, void *ctx)
{
    state *s = ctx;
    bome_node *ce = bome_cross_entropy_rows(g, hc_logits(g, &s->e.model, x->theta, x->data[0]), x->data[1]);
    bome_node *weighted = bome_weighted_mean(g, ce, bome_clamp(g, x->v[0], 0.0, 1.0));
    return bome_add(g, weighted, bome_scale(g, hc_l2(g, x->theta, x->n_theta), L2));
}

static bome_node *hc_f(bome_graph *g, const bome_vars *x, void *ctx)
{
    state *s = ctx;
    return bome_cross_entropy(g, hc_logits(g, &s->e.model, x->theta, x->data[2]), x->data[3]);
}

/* The reference code's settings: T = 10, alpha = 0.01, step 0.01 for theta
 * and 100 for v, outer momentum 0.9, phi = eta q with eta = 0.5. */
static void defaults(bome_options *o)
{
    bome_options_default(o);
    o->T = 10;
    o->alpha = 0.01;
    /* The released hpo/grid.py runs BOME with --x_momentum 0.0: a plain
     * inner loop (method_defaults gives the rivals theirs). The code's own
     * default, one inner SGD with momentum 0.9 kept for the whole run,
     * stays an option: --inner-momentum 0.9 --inner-momentum-keep 1. */
    o->inner_momentum = 0;
    o->inner_momentum_keep = 0;
    o->lr_inner = 0.01;
    o->lr_outer = 100;
    o->update = BOME_UPDATE_MOMENTUM;
    o->momentum = 0.9;
    bome_options_set(o, "phi", BOME_PHI_VALUE);
    bome_options_set(o, "eta", 0.5);
    o->max_steps = 100;
}

static void method_defaults(bome_options *o)
{
    /* grid.py keeps the code's inner momentum 0.9 for BSG-1 (one optimizer
     * for the run, so kept), ITD, AID-CG, AID-FP and reverse (restarted each
     * step); BOME, penalty and BVFSM run with 0. */
    static const char *const heavy_ball[] = {"bsg-1", "itd", "aid-cg", "aid-fp", "reverse"};
    const char *m = bome_method_name((int)o->method);
    for (size_t i = 0; i < sizeof heavy_ball / sizeof heavy_ball[0]; i++)
        if (!strcmp(m, heavy_ball[i])) {
            o->inner_momentum = 0.9;
            o->inner_momentum_keep = !strcmp(m, "bsg-1");
        }
    /* BSG-1's epsilon in data_cleaning.py */
    bome_options_set(o, "bsg_eps", 1e-4);
}

static void mask_scores(const state *s, double *precision, double *recall, double *f1)
{
    long tp = 0, fp = 0, fn = 0;
    for (int i = 0; i < s->e.data.n_train; i++) {
        bool keep = s->e.v[i] > 0.5, clean = s->e.data.clean[i];
        tp += keep && clean;
        fp += keep && !clean;
        fn += !keep && clean;
    }
    *precision = tp + fp ? (double)tp / (double)(tp + fp) : 0.0;
    *recall = tp + fn ? (double)tp / (double)(tp + fn) : 0.0;
    *f1 = *precision + *recall > 0 ? 2 * *precision * *recall / (*precision + *recall) : 0.0;
}

static void destroy(prob_run *r)
{
    state *s = r->state;
    if (s)
        prob_exp_free(&s->e);
    prob_free(r);
}

/* The warm start (into theta) and the comparison points, each trained
 * once for a setting and then loaded from the cache. */
static int train(prob_run *r, state *s, bool mlp, int hidden, char *err, size_t errlen)
{
    const data_split *d = &s->e.data;
    hc_set train = {d->x_train, d->y_train, d->n_train}, val = {d->x_val, d->y_val, d->n_val};
    hc_set clean_train = {d->x_train, d->y_train_true, d->n_train}, none = {NULL, NULL, 0};
    hc_set held = {d->x_held, d->y_held, d->n_held};
    hc_fit fit = {.steps = (int)prob_real(&prob_hyperclean, r, WARM_STEPS),
                  .lr = prob_real(&prob_hyperclean, r, WARM_LR), .l2 = L2};
    bool cache = !prob_real(&prob_hyperclean, r, NO_CACHE);
    struct { const char *key, *what; hc_set a, b; } runs[N_CMP] = {
        {"noisy", "warm start (noisy train + validation)", train, val},
        {"valonly", "comparison: validation only", val, none},
        {"oracle", "comparison: clean train + validation (oracle)", clean_train, val},
    };
    int rc = BOME_OK;
    for (int i = 0; i < N_CMP && !rc; i++) {
        hc_model other = {0}, *m = i == START ? &s->e.model : &other;
        uint64_t seed = r->o ? r->o->seed : 0;
        if (i != START && hc_model_init(&other, mlp, d->d, hidden, d->n_classes, seed)) {
            snprintf(err, errlen, "out of memory for the model");
            return BOME_ERR_NOMEM;
        }
        rc = prob_fit(r, runs[i].key, runs[i].what, m, runs[i].a, runs[i].b, held, fit, cache, err, errlen);
        if (!rc)
            rc = prob_test(r, d, m, &s->cmp[i][0], &s->cmp[i][1]);
        hc_model_free(&other);
    }
    return rc;
}

static int create(prob_run *r, int start, uint64_t seed, char *err, size_t errlen)
{
    (void)start;
    const prob_case *c = &prob_hyperclean;
    state *s = calloc(1, sizeof *s);
    if (!s)
        return BOME_ERR_NOMEM;
    r->state = s;
    s->data_dir = prob_text(c, r, DATA_DIR);
    s->model_name = prob_text(c, r, MODEL);
    bool mlp = !strcmp(s->model_name, "mlp");
    int hidden = (int)prob_real(c, r, HIDDEN);
    if (!mlp && strcmp(s->model_name, "linear")) {
        snprintf(err, errlen, "--model %s: expected linear or mlp", s->model_name);
        return BOME_ERR_ARG;
    }
    if (hidden < 1 || prob_real(c, r, WARM_STEPS) < 0 || !(prob_real(c, r, WARM_LR) > 0)) {
        snprintf(err, errlen, "--hidden and --warm-lr must be positive, --warm-steps >= 0");
        return BOME_ERR_ARG;
    }
    int rc;
    if ((rc = prob_load_split(r, s->data_dir, prob_sizes(c, r, SIZES), &s->e.data, err, errlen)))
        return rc;
    const data_split *d = &s->e.data;
    if (hc_model_init(&s->e.model, mlp, d->d, hidden, d->n_classes, seed) ||
        !(s->e.v = malloc((size_t)d->n_train * sizeof *s->e.v))) {
        snprintf(err, errlen, "out of memory");
        return BOME_ERR_NOMEM;
    }
    if ((rc = train(r, s, mlp, hidden, err, errlen)))
        return rc;
    for (int i = 0; i < d->n_train; i++)
        s->e.v[i] = 0.5;
    if ((rc = prob_exp_problem(r, &s->e, d->n_train, err, errlen)))
        return rc;
    bome_problem_set_bounds(r->problem, BOME_OUTER, 0, 0.0, 1.0);
    bome_problem_set_objectives(r->problem, hc_f, hc_g, s);
    return bome_problem_status(r->problem);
}

static int measure(prob_run *r, double *m)
{
    state *s = r->state;
    mask_scores(s, &m[PRECISION], &m[RECALL], &m[F1]);
    return prob_exp_measure(&s->e, &m[TEST_ACC], &m[TEST_LOSS], NULL, &m[HELD_LOSS]);
}

static int report(prob_run *r, prob_report *out)
{
    const state *s = r->state;
    snprintf(out->title, sizeof out->title, "Data hyper-cleaning on %s, %s model", s->data_dir, s->model_name);
    out->n_cols = 2;
    out->col[0] = "test acc", out->col_key[0] = "accuracy";
    out->col[1] = "test loss", out->col_key[1] = "loss";
    static const char *const label[N_CMP] = {"trained on noisy train + validation (start)", "trained on validation only",
                                             "trained on clean train + validation (oracle)"};
    static const char *const key[N_CMP] = {"noisy_start", "validation_only", "oracle"};
    for (int i = 0; i < N_CMP; i++) {
        prob_row *row = &out->row[out->n_rows++];
        snprintf(row->label, sizeof row->label, "%s", label[i]);
        snprintf(row->key, sizeof row->key, "%s", key[i]);
        row->value[0] = s->cmp[i][0];
        row->value[1] = s->cmp[i][1];
    }
    double precision, recall, f1;
    mask_scores(s, &precision, &recall, &f1);
    snprintf(out->line[out->n_lines++], sizeof out->line[0],
             "cleaning mask v > 0.5 vs the clean labels: precision %.4f, recall %.4f, F1 %.4f", precision, recall, f1);
    out->text[0].key = "model";
    snprintf(out->text[0].value, sizeof out->text[0].value, "%s", s->model_name);
    out->n_texts = 1;
    return BOME_OK;
}

/* --save-v: a row per training example, in the order of v */
static int save(prob_run *r, FILE *out)
{
    const state *s = r->state;
    const data_split *d = &s->e.data;
    fputs("index,v,label,clean\n", out);
    for (int i = 0; i < d->n_train; i++)
        fprintf(out, "%d,%.17g,%d,%d\n", (int)d->train_index[i], (double)s->e.v[i], (int)d->y_train[i], (int)d->clean[i]);
    return ferror(out) ? BOME_ERR_IO : BOME_OK;
}

static const prob_panel panels[] = {
    {"seconds", "test_acc", "test accuracy", 1, false},
    {"seconds", "f1", "F1 of v > 0.5 against the clean mask", 2, false},
    {"step", "f", "f (validation loss)", 2, false},
    {"step", "q", "q", 2, true},
};

const prob_case prob_hyperclean = {
    .name = "hyperclean",
    .summary = "data hyper-cleaning on Fashion-MNIST (the paper's benchmark)",
    .default_steps = 100,
    .defaults = defaults,
    .method_defaults = method_defaults,
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
    .save_what = "learned weights v",
    .save_key = "v_file",
    .panels = panels,
    .n_panels = PROB_COUNT(panels),
    .plot_title = "BOME data hyper-cleaning",
};
