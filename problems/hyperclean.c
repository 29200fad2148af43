/*
 * Data hyper-cleaning: one weight v_i in [0, 1] per training example, so that
 * a classifier trained on corrupted labels does well on a clean validation set.
 *
 *     g(v, theta) = mean_i clip(v_i, 0, 1) CE_i(train) + 0.001 ||theta||^2
 *     f(theta)    = mean CE(validation)
 *
 * With --batch B each gradient takes a fresh minibatch of B training rows
 * (and of validation rows for f), drawn through bome_problem_set_batches:
 * the means above over the batch, unbiased estimates of the full ones.
 * Under mpirun each process holds its own rows (and their v) and builds
 * its share of f and g (bome/opt.h).
 *
 * Those two builders are the bilevel problem; the rest of this file is the
 * experiment around it: the warm start theta starts from and the comparison
 * points (each a classifier trained once, then cached), the figures of a
 * logged step (test and held-out loss, the cleaning mask's F1), --save-v.
 */
#include "experiment.h"
#include "hc_batch.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define L2 0.001

enum { DATA_DIR, SIZES, MODEL, HIDDEN, WARM_STEPS, WARM_LR, NO_CACHE, BATCH, BATCH_VAL };

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
    {.name = "batch", .type = PROB_INT, .def = 0, .meta = "B",
     .help = "training rows per gradient, drawn afresh each time (0: all of them)"},
    {.name = "batch-val", .type = PROB_INT, .def = 0, .meta = "B",
     .help = "validation rows per gradient of f (0: as --batch, at most all)"},
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
    const bome_workers *w; /* a data-parallel run's (NULL: one process) */
    double share_train, share_val; /* this worker's rows over all the workers' */
    bool batched;
    hc_batch train, val;  /* --batch: the rows of this gradient */
} state;

/* data: 0 train x, 1 train labels (corrupted), 2 validation x, 3 its
 * labels; with --batch, 4 and 5 the batch's training rows and labels, 6
 * their row numbers, 7 and 8 the validation batch */
static bome_node *hc_g(bome_graph *g, const bome_vars *x, void *ctx)
{
    state *s = ctx;
    bome_node *rows = s->batched ? x->data[4] : x->data[0], *labels = s->batched ? x->data[5] : x->data[1];
    bome_node *ce = bome_cross_entropy_rows(g, hc_logits(g, &s->e.model, x->theta, rows), labels);
    /* the batch's weights only: the other rows' get exactly no gradient */
    bome_node *v = s->batched ? bome_gather_rows(g, x->v[0], x->data[6]) : x->v[0];
    bome_node *loss = bome_weighted_mean(g, ce, bome_clamp(g, v, 0.0, 1.0));
    bome_node *reg = bome_scale(g, hc_l2(g, x->theta, x->n_theta), L2);
    if (!s->w)
        return bome_add(g, loss, reg);
    return bome_add(g, bome_scale(g, loss, s->share_train), bome_once(g, reg));
}

static bome_node *hc_f(bome_graph *g, const bome_vars *x, void *ctx)
{
    state *s = ctx;
    bome_node *rows = s->batched ? x->data[7] : x->data[2], *labels = s->batched ? x->data[8] : x->data[3];
    bome_node *loss = bome_cross_entropy(g, hc_logits(g, &s->e.model, x->theta, rows), labels);
    return s->w ? bome_scale(g, loss, s->share_val) : loss;
}

/* Each worker draws its own rows with a generator of its own, seeded by
 * one number of the solver's rng, which so stays the same on all. */
static int draw(void *ud, bome_rng *rng, long step, int k)
{
    (void)step;
    (void)k;
    state *s = ud;
    bome_rng mine;
    uint64_t seed = bome_rng_u64(rng);
    bome_rng_seed(&mine, s->w ? seed ^ 0x9e3779b97f4a7c15u * (uint64_t)(s->w->rank + 1) : seed);
    hc_batch_draw(&s->train, &mine);
    hc_batch_draw(&s->val, &mine);
    return BOME_OK;
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

/* Collective with workers: the counts are summed over their rows. */
static int mask_scores(const state *s, double *precision, double *recall, double *f1)
{
    double c[3] = {0, 0, 0}; /* true positives, false positives, false negatives */
    for (int i = 0; i < s->e.data.n_train; i++) {
        bool keep = s->e.v[i] > 0.5, clean = s->e.data.clean[i];
        c[0] += keep && clean;
        c[1] += keep && !clean;
        c[2] += !keep && clean;
    }
    if (prob_sum(s->w, c, 3))
        return BOME_ERR_WORKERS;
    *precision = c[0] + c[1] ? c[0] / (c[0] + c[1]) : 0.0;
    *recall = c[0] + c[2] ? c[0] / (c[0] + c[2]) : 0.0;
    *f1 = *precision + *recall > 0 ? 2 * *precision * *recall / (*precision + *recall) : 0.0;
    return BOME_OK;
}

static void destroy(prob_run *r)
{
    state *s = r->state;
    if (s) {
        prob_exp_free(&s->e);
        hc_batch_free(&s->train);
        hc_batch_free(&s->val);
    }
    prob_free(r);
}

/* The warm start (into theta) and the comparison points, each trained
 * once for a setting and then loaded from the cache. */
static int train(prob_run *r, state *s, bool mlp, int hidden, char *err, size_t errlen)
{
    const data_split *d = &s->e.data;
    hc_set train = {d->x_train, d->y_train, d->n_train, d->n_all_train};
    hc_set val = {d->x_val, d->y_val, d->n_val, d->n_all_val};
    hc_set clean_train = {d->x_train, d->y_train_true, d->n_train, d->n_all_train}, none = {NULL, NULL, 0, 0};
    hc_set held = {d->x_held, d->y_held, d->n_held, d->n_all_held};
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

/* This worker's part of a batch of b of all the rows: its share of them,
 * at least one. */
static int my_part(long b, int mine, int all)
{
    long k = lround((double)b * mine / all);
    return (int)(k < 1 ? 1 : k > mine ? mine : k);
}

/* --batch: the batch buffers, bound as data 4 to 8, and the draw. */
static int batches(state *s, bome_problem *p, int b, int b_val)
{
    const data_split *d = &s->e.data;
    if (b_val > d->n_all_val)
        b_val = d->n_all_val;
    int rc = hc_batch_init(&s->train, d->x_train, d->y_train, d->n_train, d->d, my_part(b, d->n_train, d->n_all_train));
    if (!rc)
        rc = hc_batch_init(&s->val, d->x_val, d->y_val, d->n_val, d->d, my_part(b_val, d->n_val, d->n_all_val));
    if (rc)
        return rc;
    s->batched = true;
    /* the batch means are over the worker's batch rows: its share of the
     * objective is that times its share of the rows, as without batches */
    bome_problem_add_input(p, "x_batch", BOME_MATRIX(s->train.pick, d->d), s->train.xb);
    bome_problem_add_labels(p, "y_batch", s->train.pick, s->train.yb);
    bome_problem_add_labels(p, "batch_rows", s->train.pick, s->train.idx);
    bome_problem_add_input(p, "x_val_batch", BOME_MATRIX(s->val.pick, d->d), s->val.xb);
    bome_problem_add_labels(p, "y_val_batch", s->val.pick, s->val.yb);
    return bome_problem_set_batches(p, draw, s);
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
    double batch = prob_real(c, r, BATCH), batch_val = prob_real(c, r, BATCH_VAL);
    const int *sizes = prob_sizes(c, r, SIZES);
    if (batch < 0 || batch > sizes[0] || batch_val < 0 || batch_val > sizes[1] || (batch_val > 0 && batch == 0)) {
        snprintf(err, errlen, "--batch %.0f --batch-val %.0f: expected --batch from 0 (every row) to the %d training "
                 "rows and --batch-val, with --batch, from 0 (as --batch) to the %d validation rows", batch, batch_val,
                 sizes[0], sizes[1]);
        return BOME_ERR_ARG;
    }
    s->w = prob_workers(r);
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
    s->share_train = (double)d->n_train / d->n_all_train;
    s->share_val = (double)d->n_val / d->n_all_val;
    bome_problem *p = r->problem;
    if (s->w)
        bome_problem_set_sharded(p, BOME_OUTER, 0); /* a weight per row: each worker its own */
    if (batch > 0 && (rc = batches(s, p, (int)batch, batch_val > 0 ? (int)batch_val : (int)batch))) {
        snprintf(err, errlen, "out of memory for the minibatches");
        return rc;
    }
    bome_problem_set_bounds(p, BOME_OUTER, 0, 0.0, 1.0);
    bome_problem_set_objectives(p, hc_f, hc_g, s);
    return bome_problem_status(p);
}

static int measure(prob_run *r, double *m)
{
    state *s = r->state;
    int rc = mask_scores(s, &m[PRECISION], &m[RECALL], &m[F1]);
    return rc ? rc : prob_exp_measure(&s->e, &m[TEST_ACC], &m[TEST_LOSS], NULL, &m[HELD_LOSS]);
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
    int rc = mask_scores(s, &precision, &recall, &f1);
    if (rc)
        return rc;
    snprintf(out->line[out->n_lines++], sizeof out->line[0],
             "cleaning mask v > 0.5 vs the clean labels: precision %.4f, recall %.4f, F1 %.4f", precision, recall, f1);
    out->text[0].key = "model";
    snprintf(out->text[0].value, sizeof out->text[0].value, "%s", s->model_name);
    out->n_texts = 1;
    return BOME_OK;
}

/* With workers, every worker's rows into worker 0's file: each fills its
 * rows of a zeroed table of all of them, and one sum joins the tables. */
static int save_gathered(const state *s, FILE *out)
{
    const data_split *d = &s->e.data;
    size_t n = (size_t)d->n_all_train;
    double *t = calloc(4 * n, sizeof *t);
    if (!t)
        return BOME_ERR_NOMEM;
    for (int i = 0; i < d->n_train; i++) {
        size_t at = 4 * ((size_t)d->train_begin + (size_t)i);
        t[at] = d->train_index[i];
        t[at + 1] = s->e.v[i];
        t[at + 2] = d->y_train[i];
        t[at + 3] = d->clean[i];
    }
    int rc = prob_sum(s->w, t, 4 * n);
    if (!rc && out) {
        fputs("index,v,label,clean\n", out);
        for (size_t i = 0; i < n; i++)
            fprintf(out, "%d,%.17g,%d,%d\n", (int)t[4 * i], t[4 * i + 1], (int)t[4 * i + 2], (int)t[4 * i + 3]);
        rc = ferror(out) ? BOME_ERR_IO : BOME_OK;
    }
    free(t);
    return rc;
}

/* --save-v: a row per training example, in the order of v (collective
 * with workers; only worker 0 has a file) */
static int save(prob_run *r, FILE *out)
{
    const state *s = r->state;
    const data_split *d = &s->e.data;
    if (s->w)
        return save_gathered(s, out);
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
    .data_parallel = true,
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
