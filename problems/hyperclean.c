/*
 * Data hyper-cleaning: one weight v_i in [0, 1] per training example, so that
 * a classifier trained on corrupted labels does well on a clean validation set.
 *
 *     g(v, theta) = mean_i clip(v_i, 0, 1) CE_i(train) + 0.001 ||theta||^2
 *     f(theta)    = mean CE(validation)
 *
 * Those two builders are the whole bilevel problem; the rest of this file is
 * the experiment around it: data, warm start, comparison points, logging.
 */
#include "hyperclean.h"

#include "data.h"
#include "hc_model.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define L2 0.001

typedef struct hc_ctx {
    hc_model *model;
} hc_ctx;

/* data: 0 train x, 1 train labels (corrupted), 2 validation x, 3 its labels */
static bome_node *hc_g(bome_graph *g, const bome_vars *x, void *ctx)
{
    hc_ctx *c = ctx;
    bome_node *ce = bome_cross_entropy_rows(g, hc_logits(g, c->model, x->theta, x->data[0]), x->data[1]);
    bome_node *weighted = bome_weighted_mean(g, ce, bome_clamp(g, x->v[0], 0.0, 1.0));
    return bome_add(g, weighted, bome_scale(g, hc_l2(g, x->theta, x->n_theta), L2));
}

static bome_node *hc_f(bome_graph *g, const bome_vars *x, void *ctx)
{
    hc_ctx *c = ctx;
    return bome_cross_entropy(g, hc_logits(g, c->model, x->theta, x->data[2]), x->data[3]);
}

void hyperclean_defaults(cli_args *a)
{
    bome_options_default(&a->o);
    a->o.T = 10;
    a->o.alpha = 0.01;
    /* The released hpo/grid.py runs BOME with --x_momentum 0.0: a plain
     * inner loop (hyperclean_method_defaults gives the rivals theirs). The
     * code's own default, one inner SGD with momentum 0.9 kept for the whole
     * run, stays an option: --inner-momentum 0.9 --inner-momentum-keep 1. */
    a->o.inner_momentum = 0;
    a->o.inner_momentum_keep = 0;
    a->o.lr_inner = 0.01;
    a->o.lr_outer = 100;
    a->o.update = BOME_UPDATE_MOMENTUM;
    a->o.momentum = 0.9;
    bome_options_set(&a->o, "phi", BOME_PHI_VALUE);
    bome_options_set(&a->o, "eta", 0.5);
    a->o.max_steps = 100;
    a->data_dir = "/usr/share/datasets/fashion-mnist";
    a->out_dir = "out";
    a->model = "linear";
    a->hidden = 300;
    a->eval_every = 10;
    a->warm_steps = 5000; /* the reference's; scripts/demo asks for fewer */
    a->warm_lr = 0.01;
    a->sizes = data_default_sizes();
}

void hyperclean_method_defaults(cli_args *a)
{
    /* grid.py keeps the code's inner momentum 0.9 for BSG-1 (one optimizer
     * for the run, so kept), ITD, AID-CG, AID-FP and reverse (restarted each
     * step); BOME, penalty and BVFSM run with 0. */
    static const char *const heavy_ball[] = {"bsg-1", "itd", "aid-cg", "aid-fp", "reverse"};
    const char *m = bome_method_name((int)a->o.method);
    for (size_t i = 0; i < sizeof heavy_ball / sizeof heavy_ball[0]; i++)
        if (!strcmp(m, heavy_ball[i])) {
            if (!cli_user_set(a, "inner_momentum"))
                a->o.inner_momentum = 0.9;
            if (!cli_user_set(a, "inner_momentum_keep"))
                a->o.inner_momentum_keep = !strcmp(m, "bsg-1");
        }
    /* BSG-1's epsilon in data_cleaning.py */
    if (!cli_user_set(a, "bsg_eps"))
        bome_options_set(&a->o, "bsg_eps", 1e-4);
}

/* OpenBLAS reads its thread count when it loads; this changes it later. The
 * reference BLAS has no threads and no such functions. */
extern void openblas_set_num_threads(int) __attribute__((weak));
extern int openblas_get_num_threads(void) __attribute__((weak));

/* --threads N, else what OpenBLAS was given (OPENBLAS_NUM_THREADS), else 1:
 * the BLAS's threads and those over the row blocks alike. */
static int set_threads(int n)
{
    if (n > 0 && openblas_set_num_threads)
        openblas_set_num_threads(n);
    if (n <= 0)
        n = openblas_get_num_threads ? openblas_get_num_threads() : 1;
    return n < 1 ? 1 : (n > BOME_MAX_THREADS ? BOME_MAX_THREADS : n);
}

typedef struct experiment {
    cli_args *a;
    data_split data;
    hc_model model;
    hc_eval *test, *held;
    FILE *csv;
    FILE *vfile; /* --save-v, opened before the run so that a bad path fails at once */
    cli_progress bar;
    double eval_seconds;
    long logged;
    double last_acc, last_f1;
    /* what the summary and the JSON report */
    double acc, loss, held_loss, precision, recall, f1;
    /* the logged step with the lowest held-out loss: early stopping on
     * data neither level trains on, as the warm start selects its iterate */
    long best_step;
    double best_held, best_acc, best_loss;
} experiment;

static void mask_scores(const experiment *e, const bome_real *v, double *precision, double *recall, double *f1)
{
    long tp = 0, fp = 0, fn = 0;
    for (int i = 0; i < e->data.n_train; i++) {
        bool keep = v[i] > 0.5, clean = e->data.clean[i];
        tp += keep && clean;
        fp += keep && !clean;
        fn += !keep && clean;
    }
    *precision = tp + fp ? (double)tp / (double)(tp + fp) : 0.0;
    *recall = tp + fn ? (double)tp / (double)(tp + fn) : 0.0;
    *f1 = *precision + *recall > 0 ? 2 * *precision * *recall / (*precision + *recall) : 0.0;
}

static long count_clean(const data_split *d)
{
    long n = 0;
    for (int i = 0; i < d->n_train; i++)
        n += d->clean[i];
    return n;
}

static void status_line(const char *what, int step, int steps, double loss)
{
    if (isatty(2))
        fprintf(stderr, "\r\033[K%s: step %d/%d, held-out loss %.4f", what, step, steps, loss);
}

static void train_progress(void *ud, int step, int steps, double held_loss)
{
    status_line(ud, step, steps, held_loss);
}

/* Trains (or loads from the cache) one comparison model. */
static int supervised(experiment *e, const char *key, const char *what, hc_model *m, hc_set a, hc_set b,
                      char *err, size_t errlen)
{
    cli_args *ar = e->a;
    char path[4096];
    snprintf(path, sizeof path, "%s/cache/%s-%s%d-seed%llu-steps%d-lr%g-n%d-%d.bin", ar->out_dir, key,
             m->mlp ? "mlp" : "linear", m->mlp ? m->hidden : 0, (unsigned long long)ar->o.seed, ar->warm_steps,
             ar->warm_lr, e->data.n_train, e->data.n_val);
    if (!ar->no_cache && hc_cache_load(path, m)) {
        if (!ar->json)
            fprintf(stderr, "%s: loaded from cache %s\n", what, path);
        return 0;
    }
    double t0 = cli_now();
    hc_set held = {e->data.x_held, e->data.y_held, e->data.n_held};
    int rc = hc_train(m, a, b, held, ar->warm_steps, ar->warm_lr, L2, ar->o.threads, ar->json ? NULL : train_progress,
                      (void *)what, err, errlen);
    if (isatty(2) && !ar->json)
        fputs("\r\033[K", stderr);
    if (rc)
        return rc;
    if (!ar->json)
        fprintf(stderr, "%s: trained, %d steps in %.1f s%s\n", what, ar->warm_steps, cli_now() - t0,
                hc_cache_save(path, m) ? " (could not write the cache)" : ", cached");
    else
        hc_cache_save(path, m);
    return 0;
}

static int evaluate_into(experiment *e, hc_model *m, double *acc, double *loss)
{
    hc_set test = {e->data.x_test, e->data.y_test, e->data.n_test};
    hc_eval *ev = hc_eval_new(m, test, e->a->o.threads);
    int rc = ev ? hc_eval_run(ev, acc, loss) : BOME_ERR_NOMEM;
    hc_eval_free(ev);
    return rc;
}

static int log_step(experiment *e, bome_solver *s, const bome_step_stats *st, const bome_real *v)
{
    (void)s;
    double t0 = cli_now(), held_acc;
    if (hc_eval_run(e->test, &e->acc, &e->loss) || hc_eval_run(e->held, &held_acc, &e->held_loss))
        return 1;
    mask_scores(e, v, &e->precision, &e->recall, &e->f1);
    if (st->step > 0 && (e->best_step == 0 || e->held_loss < e->best_held)) {
        e->best_step = st->step;
        e->best_held = e->held_loss;
        e->best_acc = e->acc;
        e->best_loss = e->loss;
    }
    if (e->csv)
        fprintf(e->csv, "%ld,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.9g,%.9g,%.9g,%.3f\n", st->step, e->acc, e->loss,
                e->held_loss, e->precision, e->recall, e->f1, st->f, st->q, st->lambda, st->total_seconds);
    if (e->csv)
        fflush(e->csv); /* a long run can be watched, or plotted, while it goes */
    e->eval_seconds += cli_now() - t0;
    e->logged++;
    return 0;
}

typedef struct step_ctx {
    experiment *e;
    const bome_real *v;
} step_ctx;

static int on_step(void *ud, bome_solver *s, const bome_step_stats *st)
{
    step_ctx *c = ud;
    experiment *e = c->e;
    if ((st->step % e->a->eval_every == 0 || st->step == e->a->o.max_steps) && log_step(e, s, st, c->v))
        return 1;
    char text[160];
    snprintf(text, sizeof text, "test acc %.4f  F1 %.3f  f %.4f  q %.2e  %.2f s/step", e->acc, e->f1, st->f, st->q,
             st->seconds);
    cli_progress_draw(&e->bar, st->step, text);
    return 0;
}

static void plot(experiment *e, const char *csv, const char *png)
{
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        if (!e->a->json)
            fprintf(stderr, "gnuplot is not installed: no plot (apt-get install gnuplot-nox)\n");
        return;
    }
    /* The script stays next to the CSV so that the plot can be redrawn. */
    char gp[4200];
    snprintf(gp, sizeof gp, "%s.gp", png);
    FILE *f = fopen(gp, "w");
    if (!f) {
        fprintf(stderr, "cannot write %s: no plot\n", gp);
        return;
    }
    fprintf(f,
            "set terminal pngcairo size 1200,800 noenhanced\nset output '%s'\nset datafile separator ','\n"
            "set key off\nset grid\nset multiplot layout 2,2 title 'BOME data hyper-cleaning'\n"
            "set xlabel 'seconds (evaluation excluded)'\nset title 'test accuracy'\n"
            "plot '%s' using 11:2 every ::1 with linespoints lw 2\n"
            "set title 'F1 of v > 0.5 against the clean mask'\nplot '%s' using 11:7 every ::2 with linespoints lw 2\n"
            "set xlabel 'outer step'\nset title 'f (validation loss)'\nplot '%s' using 1:8 every ::2 with lines lw 2\n"
            "set title 'q'\nset logscale y\nplot '%s' using 1:9 every ::2 with lines lw 2\nunset multiplot\n",
            png, csv, csv, csv, csv);
    fclose(f);
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "gnuplot '%s' 2>/dev/null", gp);
    if (system(cmd) != 0 && !e->a->json)
        fprintf(stderr, "gnuplot failed: no plot\n");
}

/* --save-v: a row per training example, in the order of v */
static int save_v(experiment *e, const bome_real *v, char *err, size_t errlen)
{
    const data_split *d = &e->data;
    fputs("index,v,label,clean\n", e->vfile);
    for (int i = 0; i < d->n_train; i++)
        fprintf(e->vfile, "%d,%.17g,%d,%d\n", (int)d->train_index[i], (double)v[i], (int)d->y_train[i],
                (int)d->clean[i]);
    int bad = ferror(e->vfile);
    bad |= fclose(e->vfile);
    e->vfile = NULL;
    if (bad) {
        snprintf(err, errlen, "writing %.900s failed: %s", e->a->save_v_path, strerror(errno));
        return BOME_ERR_IO;
    }
    return 0;
}

static int make_dirs(const char *out_dir, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/cache", out_dir);
    if ((mkdir(out_dir, 0777) && errno != EEXIST) || (mkdir(path, 0777) && errno != EEXIST)) {
        snprintf(err, errlen, "cannot create %.900s: %s", path, strerror(errno));
        return BOME_ERR_IO;
    }
    return 0;
}

static int run(experiment *e, char *err, size_t errlen)
{
    cli_args *a = e->a;
    bool mlp = !strcmp(a->model, "mlp");
    if (!mlp && strcmp(a->model, "linear")) {
        snprintf(err, errlen, "--model %s: expected linear or mlp", a->model);
        return BOME_ERR_ARG;
    }
    if (a->eval_every < 1 || a->warm_steps < 0 || a->hidden < 1 || !(a->warm_lr > 0)) {
        snprintf(err, errlen, "--eval-every, --hidden and --warm-lr must be positive, --warm-steps >= 0");
        return BOME_ERR_ARG;
    }
    int rc = make_dirs(a->out_dir, err, errlen);
    if (rc)
        return rc;
    if (a->save_v_path && !(e->vfile = fopen(a->save_v_path, "w"))) {
        snprintf(err, errlen, "--save-v: cannot write %.900s: %s", a->save_v_path, strerror(errno));
        return BOME_ERR_IO;
    }
    double t0 = cli_now();
    if ((rc = data_split_load(a->data_dir, a->o.seed, a->sizes, &e->data, err, errlen)))
        return BOME_ERR_IO;
    data_split *d = &e->data;
    if (!a->json)
        fprintf(stderr, "data: %d train (%d labels corrupted), %d validation, %d held-out, %d test, in %.1f s\n",
                d->n_train, d->n_train - (int)count_clean(d), d->n_val, d->n_held, d->n_test, cli_now() - t0);

    hc_set train = {d->x_train, d->y_train, d->n_train}, val = {d->x_val, d->y_val, d->n_val};
    hc_set clean_train = {d->x_train, d->y_train_true, d->n_train}, none = {NULL, NULL, 0};
    hc_model val_only = {0}, oracle = {0};
    double cmp[3][2];
    if ((rc = hc_model_init(&e->model, mlp, d->d, a->hidden, d->n_classes, a->o.seed)) ||
        (rc = hc_model_init(&val_only, mlp, d->d, a->hidden, d->n_classes, a->o.seed)) ||
        (rc = hc_model_init(&oracle, mlp, d->d, a->hidden, d->n_classes, a->o.seed))) {
        snprintf(err, errlen, "out of memory for the model");
        goto done;
    }
    if ((rc = supervised(e, "noisy", "warm start (noisy train + validation)", &e->model, train, val, err, errlen)) ||
        (rc = supervised(e, "valonly", "comparison: validation only", &val_only, val, none, err, errlen)) ||
        (rc = supervised(e, "oracle", "comparison: clean train + validation (oracle)", &oracle, clean_train, val, err,
                         errlen)))
        goto done;
    evaluate_into(e, &e->model, &cmp[0][0], &cmp[0][1]);
    evaluate_into(e, &val_only, &cmp[1][0], &cmp[1][1]);
    evaluate_into(e, &oracle, &cmp[2][0], &cmp[2][1]);

    /* The bilevel problem: v and theta in our memory, data bound zero-copy. */
    bome_real *v = malloc((size_t)d->n_train * sizeof *v);
    bome_problem *p = bome_problem_new();
    hc_ctx ctx = {&e->model};
    if (!v || !p) {
        free(v);
        bome_problem_free(p);
        rc = BOME_ERR_NOMEM;
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (int i = 0; i < d->n_train; i++)
        v[i] = 0.5;
    bome_problem_add_outer(p, "v", BOME_VECTOR(d->n_train), v);
    bome_problem_set_bounds(p, BOME_OUTER, 0, 0.0, 1.0);
    static const char *names[HC_MAX_PARAMS] = {"W1", "b1", "W2", "b2"};
    for (int i = 0; i < e->model.n_params; i++)
        bome_problem_add_inner(p, mlp ? names[i] : (i ? "b" : "W"), e->model.shape[i], e->model.theta[i]);
    bome_problem_add_input(p, "x_train", BOME_MATRIX(d->n_train, d->d), d->x_train);
    bome_problem_add_labels(p, "y_train", d->n_train, d->y_train);
    bome_problem_add_input(p, "x_val", BOME_MATRIX(d->n_val, d->d), d->x_val);
    bome_problem_add_labels(p, "y_val", d->n_val, d->y_val);
    bome_problem_set_objectives(p, hc_f, hc_g, &ctx);

    char csv[4096], png[4096];
    snprintf(csv, sizeof csv, "%s", a->csv_path ? a->csv_path : "");
    if (!a->csv_path)
        snprintf(csv, sizeof csv, "%s/hyperclean.csv", a->out_dir);
    snprintf(png, sizeof png, "%s/hyperclean.png", a->out_dir);
    e->csv = fopen(csv, "w");
    if (!e->csv) {
        snprintf(err, errlen, "cannot write %.900s: %s", csv, strerror(errno));
        rc = BOME_ERR_IO;
    } else {
        fputs("step,test_acc,test_loss,held_loss,precision,recall,f1,f,q,lambda,seconds\n", e->csv);
    }
    hc_set test = {d->x_test, d->y_test, d->n_test}, held = {d->x_held, d->y_held, d->n_held};
    e->test = rc ? NULL : hc_eval_new(&e->model, test, a->o.threads);
    e->held = rc ? NULL : hc_eval_new(&e->model, held, a->o.threads);
    step_ctx sc = {e, v};
    a->o.on_step = on_step;
    a->o.on_step_ud = &sc;
    bome_solver *s = NULL;
    bome_step_stats last = {0};
    if (!rc) {
        bome_step_stats zero = {0};
        log_step(e, NULL, &zero, v); /* step 0: the warm start */
        s = bome_solver_new(p, &a->o);
        rc = s ? bome_solver_status(s) : BOME_ERR_NOMEM;
    }
    if (!rc) {
        cli_progress_start(&e->bar, a->o.max_steps, a->quiet || a->json);
        rc = bome_solver_run(s, &last);
        cli_progress_end(&e->bar);
        if (rc)
            snprintf(err, errlen, "%s", bome_solver_errmsg(s));
        if (last.step % a->eval_every != 0 && last.step != a->o.max_steps && last.step)
            log_step(e, s, &last, v);
    } else if (s) {
        snprintf(err, errlen, "%s", bome_solver_errmsg(s));
    }
    if (e->csv)
        fclose(e->csv);
    e->csv = NULL;
    if (!rc && e->vfile)
        rc = save_v(e, v, err, errlen);
    if (!rc && !a->no_plot)
        plot(e, csv, png);

    if (!rc && a->json) {
        printf("{\"problem\": \"hyperclean\", \"method\": \"%s\", \"status\": \"ok\", \"model\": \"%s\", \"settings\": ",
               bome_method_name((int)a->o.method), a->model);
        cli_json_options(stdout, &a->o);
        printf(", \"steps\": %ld, \"seconds\": ", bome_solver_steps(s));
        cli_json_num(stdout, last.total_seconds);
        const struct { const char *k; double v; } nums[] = {
            {"f", last.f}, {"q", last.q}, {"kkt", last.kkt}, {"test_accuracy", e->acc}, {"test_loss", e->loss},
            {"precision", e->precision}, {"recall", e->recall}, {"f1", e->f1},
            {"noisy_start_accuracy", cmp[0][0]}, {"validation_only_accuracy", cmp[1][0]},
            {"oracle_accuracy", cmp[2][0]}, {"best_held_out_step", (double)e->best_step},
            {"best_held_out_test_accuracy", e->best_acc},
        };
        for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
            printf(", \"%s\": ", nums[i].k);
            cli_json_num(stdout, nums[i].v);
        }
        printf(", \"csv\": ");
        cli_json_str(stdout, csv);
        if (a->save_v_path) {
            printf(", \"v_file\": ");
            cli_json_str(stdout, a->save_v_path);
        }
        printf("}\n");
    } else if (!rc) {
        long steps = bome_solver_steps(s);
        const char *M = bome_method_name((int)a->o.method);
        printf("\nData hyper-cleaning on %s, %s model, %ld %s steps (T = %d)\n", a->data_dir, a->model, steps, M, a->o.T);
        printf("  %-44s %9s %9s\n", "", "test acc", "test loss");
        printf("  %-44s %9.4f %9.4f\n", "trained on noisy train + validation (start)", cmp[0][0], cmp[0][1]);
        printf("  %-44s %9.4f %9.4f\n", "trained on validation only", cmp[1][0], cmp[1][1]);
        printf("  %-44s %9.4f %9.4f\n", "trained on clean train + validation (oracle)", cmp[2][0], cmp[2][1]);
        printf("  %-44s %9.4f %9.4f\n", M, e->acc, e->loss);
        if (e->best_step && e->best_step != steps) {
            char what[64];
            snprintf(what, sizeof what, "%s at its best held-out loss (step %ld)", M, e->best_step);
            printf("  %-44s %9.4f %9.4f\n", what, e->best_acc, e->best_loss);
        }
        printf("  cleaning mask v > 0.5 vs the clean labels: precision %.4f, recall %.4f, F1 %.4f\n", e->precision,
               e->recall, e->f1);
        printf("  %s time: %.1f s, %.3f s per outer step (evaluation excluded: %.1f s)\n", M, last.total_seconds,
               last.total_seconds / (double)(steps ? steps : 1), e->eval_seconds);
        printf("  per-step CSV: %s\n", csv);
        if (a->save_v_path)
            printf("  learned weights v: %s\n", a->save_v_path);
        if (!a->no_plot && access(png, R_OK) == 0)
            printf("  plot: %s\n", png);
    }
    bome_solver_free(s);
    bome_problem_free(p);
    free(v);
done:
    hc_model_free(&val_only);
    hc_model_free(&oracle);
    return rc;
}

int hyperclean_main(cli_args *a)
{
    a->o.threads = set_threads(a->threads);
    experiment e = {0};
    e.a = a;
    char err[1024] = "";
    int rc = run(&e, err, sizeof err);
    if (rc)
        fprintf(stderr, "bome: hyperclean: %s\n", err[0] ? err : bome_status_str(rc));
    if (e.vfile) { /* the run failed before writing it: leave no empty file behind */
        fclose(e.vfile);
        cli_remove_output(a->save_v_path);
    }
    hc_eval_free(e.test);
    hc_eval_free(e.held);
    hc_model_free(&e.model);
    data_split_free(&e.data);
    return rc ? 1 : 0;
}
