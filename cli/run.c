/*
 * One loop runs every case: the solver's steps; the per-step CSV; the
 * held-out score, or an experiment's metrics at its logged steps (step 0,
 * every --eval-every, the last) and its best step by the selected metric;
 * progress; checkpoints and signals (a signal stops the run at the end of a
 * step). Then the case's files (--save-v, plots) and the summary.
 */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct run_ctx {
    cli_args *a;
    const prob_case *c;
    prob_run *r;
    FILE *csv;
    cli_progress bar;
    long ckpt_every;
    long grad_evals, hvp_evals; /* over the run */
    int rc;                     /* a failed write or measurement stops the run */
    char err[1024];
    /* experiments */
    double metrics[PROB_MAX_METRICS], best[PROB_MAX_METRICS];
    long logged_step;           /* the last step measured, -1 before any */
    long best_step;
    double best_value, eval_seconds;
} run_ctx;

/* The logged step with the lowest selected metric, as the CSV shows it, so
 * that a resumed run, which reads the kept rows back, picks the same one. */
static void track_best(void *ud, long step, const double *m)
{
    run_ctx *x = ud;
    int k = x->c->select - 1;
    if (k < 0 || step <= 0)
        return;
    char shown[64];
    snprintf(shown, sizeof shown, "%.6f", m[k]);
    double value = strtod(shown, NULL);
    if (x->best_step == 0 || value < x->best_value) {
        x->best_step = step;
        x->best_value = value;
        memcpy(x->best, m, (size_t)x->c->n_metrics * sizeof *m);
    }
}

/* An experiment's logged step: its metrics, the CSV row, the best so far. */
static int log_step(run_ctx *x, const bome_step_stats *st)
{
    double t0 = cli_now();
    int rc = x->c->measure(x->r, x->metrics);
    x->eval_seconds += cli_now() - t0;
    if (rc) {
        snprintf(x->err, sizeof x->err, "measuring step %ld: %s", st->step, bome_status_str(rc));
        return x->rc = rc;
    }
    x->logged_step = st->step;
    track_best(x, st->step, x->metrics);
    if (x->csv) {
        cli_csv_logged(x->csv, x->c, st, x->metrics);
        fflush(x->csv); /* a long run can be watched, or plotted, while it goes */
    }
    return 0;
}

static void progress_text(const run_ctx *x, const bome_step_stats *st, char *text, size_t len)
{
    int n = snprintf(text, len, "f %.4g  q %.3g  lambda %.3g", st->f, st->q, st->lambda);
    for (int i = 0; cli_experiment(x->c) && i < x->c->n_metrics && n > 0 && (size_t)n < len; i++)
        if (x->c->metrics[i].column)
            n += snprintf(text + n, len - (size_t)n, "  %s %.4f", x->c->metrics[i].name, x->metrics[i]);
    if (n > 0 && (size_t)n < len)
        snprintf(text + n, len - (size_t)n, "  %.2g s/step", st->seconds);
}

/* Whether any worker wants to stop: every worker must give the solver the
 * same answer (a signal or a failed write may reach one alone). One sum
 * of one value per step; a failed sum stops the run. */
static int agree(const cli_args *a, int stop)
{
    const bome_workers *w = a->o.workers;
    if (!w)
        return stop;
    bome_real flag = stop != 0;
    char msg[256];
    return w->sum(w->ud, &flag, 1, msg, sizeof msg) || flag > 0;
}

static int on_step(void *ud, bome_solver *s, const bome_step_stats *st)
{
    run_ctx *x = ud;
    const cli_args *a = x->a;
    x->grad_evals = st->total_grad_evals;
    x->hvp_evals = st->total_hvp_evals;
    bool logged = (a->eval_every > 0 && st->step % a->eval_every == 0) || st->step == a->o.max_steps;
    if (cli_experiment(x->c)) {
        if (logged && log_step(x, st))
            return agree(a, 1);
    } else if (x->csv) {
        double ci = NAN, score = NAN;
        if (x->c->evaluate && logged)
            score = x->c->evaluate(x->r, &a->o, &ci);
        cli_csv_step(x->csv, x->c, st, score, ci);
    }
    char text[256];
    progress_text(x, st, text, sizeof text);
    cli_progress_draw(&x->bar, st->step, text);
    if (a->checkpoint_path && st->step % x->ckpt_every == 0) {
        /* the CSV's rows up to this step reach the disk before the checkpoint
         * that a resume cuts the CSV back to */
        if (x->csv && (fflush(x->csv) != 0 || fsync(fileno(x->csv)) != 0)) {
            snprintf(x->err, sizeof x->err, "cannot write the CSV: %s", strerror(errno));
            x->rc = BOME_ERR_IO;
            return 1;
        }
        if ((x->rc = cli_checkpoint_save(a->checkpoint_path, s, x->err, sizeof x->err)))
            return 1;
    }
    return agree(a, cli_signal || (a->budget > 0 && x->grad_evals + x->hvp_evals >= a->budget) || x->rc);
}

/* ---- The case's set-up news: a line, or a task's progress on a terminal ---- */

static void note(void *ud, const char *line)
{
    const cli_args *a = ud;
    if (!a->json && !a->quiet)
        fprintf(stderr, "%s\n", line);
}

static void setup_progress(void *ud, const char *what, long done, long total, double value)
{
    const cli_args *a = ud;
    if (a->json || a->quiet || !isatty(STDERR_FILENO))
        return;
    if (done >= total)
        fputs("\r\033[K", stderr);
    else if (isfinite(value))
        fprintf(stderr, "\r\033[K%s: step %ld/%ld, held-out loss %.4f", what, done, total, value);
    else
        fprintf(stderr, "\r\033[K%s: step %ld/%ld", what, done, total);
}

/* A signal gives up the set-up's training too: on the full data set a warm
 * start takes minutes, and no step would come to stop at. */
static int setup_cancel(void *ud)
{
    (void)ud;
    return cli_signal != 0;
}

/* ---- Files ---- */

static int make_dir(const char *path, char *err, size_t errlen)
{
    if (mkdir(path, 0777) && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %.900s: %s", path, strerror(errno));
        return BOME_ERR_IO;
    }
    return 0;
}

/* Opens the CSV: new, or cut back to the checkpoint's step on resume. */
static int open_csv(run_ctx *x, const char *path, bome_solver *s)
{
    if (x->a->resume_path) {
        x->csv = cli_csv_resume(path, bome_solver_steps(s), x->err, sizeof x->err);
        if (x->csv && cli_experiment(x->c))
            cli_csv_replay(path, x->c, track_best, x); /* the best of the kept rows */
    } else if ((x->csv = fopen(path, "w"))) {
        cli_csv_header(x->csv, x->c);
    } else {
        snprintf(x->err, sizeof x->err, "cannot write %.900s: %s", path, strerror(errno));
    }
    return x->csv ? 0 : BOME_ERR_IO;
}

/* The graph into the file --dot opened; a failed write is the run's error. */
static int write_dot(run_ctx *x, FILE **dot, bome_solver *s)
{
    int bad = bome_graph_dot(bome_solver_graph(s), *dot, 0, NULL) != BOME_OK || ferror(*dot);
    bad |= fclose(*dot) != 0;
    *dot = NULL;
    if (bad) {
        snprintf(x->err, sizeof x->err, "--dot: writing %.900s failed: %s", x->a->dot_path, strerror(errno));
        cli_remove_output(x->a->dot_path);
        return x->rc = BOME_ERR_IO;
    }
    return 0;
}

/* --save-v, the plot, the picture of v. */
static int write_files(run_ctx *x, FILE **vfile, cli_outcome *out, char *png, char *img, size_t len)
{
    const cli_args *a = x->a;
    const prob_case *c = x->c;
    if (!*vfile && a->save_path && a->o.workers) /* rank 0 writes; the others send their rows */
        c->save(x->r, NULL);
    if (*vfile) {
        int bad = c->save(x->r, *vfile) != BOME_OK || ferror(*vfile);
        bad |= fclose(*vfile);
        *vfile = NULL;
        if (bad) {
            snprintf(x->err, sizeof x->err, "writing %.900s failed: %s", a->save_path, strerror(errno));
            return BOME_ERR_IO;
        }
    }
    if (!cli_experiment(c) || a->no_plot || cli_rank(&a->o))
        return 0;
    snprintf(png, len, "%s/%s.png", a->out_dir, c->name);
    if (cli_plot_panels(c, out->csv_path, png, a->json) == 0)
        out->plot_path = png;
    prob_image image;
    snprintf(img, len, "%s/%s-v.png", a->out_dir, c->name);
    if (c->image && c->image(x->r, &image) == BOME_OK && cli_plot_image(&image, img, a->json) == 0)
        out->image_path = img;
    return 0;
}

/* ---- The run ---- */

int cli_run(cli_args *a)
{
    const prob_case *c = a->c;
    if (c->n_starts && (a->start < 0 || a->start >= c->n_starts)) {
        fprintf(stderr, "bome: --start %d: %s has starting points 0 to %d\n", a->start, c->name, c->n_starts - 1);
        return 2;
    }
    a->o.threads = cli_blas_threads(a->threads);
    if (a->o.workers && (!c->data_parallel || a->checkpoint_path || a->resume_path)) {
        if (!cli_rank(&a->o))
            fprintf(stderr, "bome: %s: under mpirun only %s; run it as one process\n", c->name,
                    c->data_parallel ? "--checkpoint and --resume are not supported yet"
                                     : "the problems that split their data over processes run (hyperclean)");
        return 2;
    }
    bool lead = cli_rank(&a->o) == 0; /* the one process that writes and prints */
    if (!lead) {
        a->quiet = true;
        a->json = false;
        a->csv_path = a->dot_path = NULL;
    }
    run_ctx x = {.a = a, .c = c, .logged_step = -1};
    x.ckpt_every = a->checkpoint_every ? a->checkpoint_every : LONG_MAX;
    char csv[4200], png[4200], img[4200];
    snprintf(csv, sizeof csv, "%s", a->csv_path ? a->csv_path : "");
    FILE *vfile = NULL, *dot = NULL;
    int rc = 0;
    if (cli_experiment(c) && !a->csv_path && lead)
        snprintf(csv, sizeof csv, "%s/%s.csv", a->out_dir, c->name);
    bool plots = cli_experiment(c) && !a->no_plot;
    snprintf(png, sizeof png, "%s/%s.png", a->out_dir, c->name);
    snprintf(img, sizeof img, "%s/%s-v.png", a->out_dir, c->name);
    if (cli_outputs_check(a, csv, plots ? png : NULL, plots && c->image ? img : NULL))
        return 2;
    if (cli_experiment(c))
        rc = make_dir(a->out_dir, x.err, sizeof x.err);
    /* opened before the set-up, so that a bad path fails before any training */
    if (!rc && lead && a->save_path && !(vfile = fopen(a->save_path, "w"))) {
        snprintf(x.err, sizeof x.err, "--save-v: cannot write %.900s: %s", a->save_path, strerror(errno));
        rc = BOME_ERR_IO;
    }
    if (!rc && a->dot_path && !(dot = fopen(a->dot_path, "w"))) {
        snprintf(x.err, sizeof x.err, "--dot: cannot write %.900s: %s", a->dot_path, strerror(errno));
        rc = BOME_ERR_IO;
    }
    prob_run r = {.params = a->params, .o = &a->o, .note = note, .progress = setup_progress, .cancel = setup_cancel,
                  .ud = a};
    r.out_dir = cli_experiment(c) ? a->out_dir : NULL;
    x.r = &r;
    if (!rc && (rc = c->create(&r, a->start, a->o.seed, x.err, sizeof x.err)) && !x.err[0])
        snprintf(x.err, sizeof x.err, "%s", bome_problem_errmsg(r.problem));
    bome_solver *s = NULL;
    if (rc && cli_signal) {
        fprintf(stderr, "bome: stopped by signal %d during the set-up (%s)\n", (int)cli_signal, x.err);
        rc = 128 + (int)cli_signal;
        goto done;
    }
    if (rc) {
        fprintf(stderr, "bome: %s: %s\n", c->name, x.err);
        rc = 1;
        goto done;
    }
    a->o.on_step = on_step;
    a->o.on_step_ud = &x;
    s = bome_solver_new(r.problem, &a->o);
    rc = s ? bome_solver_status(s) : BOME_ERR_NOMEM;
    if (!rc && a->resume_path && (rc = cli_checkpoint_load(a->resume_path, s, x.err, sizeof x.err))) {
        fprintf(stderr, "bome: --resume %s\n", x.err);
        rc = 1;
        goto done;
    }
    if (!rc && csv[0] && (rc = open_csv(&x, csv, s))) {
        fprintf(stderr, "bome: %s\n", x.err);
        rc = 1;
        goto done;
    }
    if (!rc && dot)
        rc = write_dot(&x, &dot, s);
    bome_step_stats last = {0};
    if (!rc && cli_experiment(c) && !a->resume_path)
        rc = log_step(&x, &last); /* step 0: the start */
    cli_progress_start(&x.bar, a->o.max_steps, a->quiet || a->json);
    if (!rc)
        rc = bome_solver_run(s, &last);
    cli_progress_end(&x.bar);
    long steps = s ? bome_solver_steps(s) : 0;
    /* a run that stopped between logged steps (tolerance, budget, failure)
     * is measured where it stopped; one stopped by a signal goes on later */
    if (cli_experiment(c) && !x.rc && !cli_signal && steps > x.logged_step)
        log_step(&x, &last);
    if (!rc && cli_signal && a->checkpoint_path && !x.rc) {
        if (x.csv)
            fflush(x.csv);
        x.rc = cli_checkpoint_save(a->checkpoint_path, s, x.err, sizeof x.err);
    }
    if (x.csv && (ferror(x.csv) | fclose(x.csv)) && !x.rc) {
        snprintf(x.err, sizeof x.err, "cannot write %.900s", csv);
        x.rc = BOME_ERR_IO;
    }
    x.csv = NULL;
    if (!rc && x.rc)
        rc = x.rc;
    /* what is written is complete or absent: a failed or interrupted run
     * keeps its CSV only where a checkpoint continues it */
    if ((rc || cli_signal) && csv[0] && !a->checkpoint_path)
        cli_remove_output(csv);
    if (!lead && a->save_path && !rc) /* the others' part of --save-v */
        write_files(&x, &vfile, &(cli_outcome){0}, png, img, sizeof png);
    if (!rc && cli_signal) {
        fprintf(stderr, "bome: stopped by signal %d after step %ld%s%s\n", (int)cli_signal, steps,
                a->checkpoint_path ? "; resume with --resume " : "", a->checkpoint_path ? a->checkpoint_path : "");
        rc = 128 + (int)cli_signal;
        goto done;
    }
    cli_outcome out = {.rc = rc, .steps = steps, .last = last, .grad_evals = x.grad_evals, .hvp_evals = x.hvp_evals};
    out.msg = rc && x.rc ? x.err : s ? bome_solver_errmsg(s) : "out of memory";
    out.csv_path = csv[0] && !rc ? csv : NULL;
    out.eval_seconds = x.eval_seconds;
    out.metrics = x.logged_step >= 0 ? x.metrics : NULL;
    out.best_step = x.best_step;
    out.best = x.best;
    out.processes = a->o.workers ? a->o.workers->size : 1;
    cli_workers_stats(&a->o, &out.sums, &out.summed_values);
    if (!rc && lead && (rc = write_files(&x, &vfile, &out, png, img, sizeof png)))
        out.msg = x.err;
    out.rc = rc;
    prob_report rep = {0};
    if (!rc && c->report && (rc = c->report(&r, &rep)))
        out.rc = rc, out.msg = bome_status_str(rc);
    if (rc && lead)
        fprintf(stderr, "bome: %s: %s\n", c->name, out.msg);
    else if (rc)
        fprintf(stderr, "bome: %s: process %d: %s\n", c->name, cli_rank(&a->o), out.msg);
    if (a->json)
        cli_summary_json(stdout, a, &r, c->report && !rc ? &rep : NULL, &out);
    else if (!a->quiet && steps > 0 && !(rc && cli_experiment(c)))
        cli_summary_text(stdout, a, &r, c->report ? &rep : NULL, &out);
    rc = rc ? 1 : 0;
done:
    if (vfile) { /* not written: leave no empty file behind */
        fclose(vfile);
        cli_remove_output(a->save_path);
    }
    if (dot) {
        fclose(dot);
        cli_remove_output(a->dot_path);
    }
    bome_solver_free(s);
    c->destroy(&r);
    return rc;
}
