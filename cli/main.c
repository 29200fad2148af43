/* The `bome` command: list the problems, run one with BOME, report. */
#include "blas_kernel.h"
#include "cases.h"
#include "cli.h"
#include "hyperclean.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fputs("usage: bome <command> [options]\n"
          "\n"
          "commands:\n"
          "  list                 the problems bome can run\n"
          "  methods              the bilevel methods, one per line: name, order, summary\n"
          "  run PROBLEM [opts]   solve PROBLEM (see bome run --help)\n"
          "  blas                 the BLAS, its kernel, the CPU, and whether a faster kernel fits\n"
          "  help                 this text\n",
          out);
}

/* One help line per setting, from the library's table; defaults are the
 * problem's when one is named (o), the library's otherwise. */
/* One help line per setting, from the library's table; defaults are the
 * problem's when one is named (o), the library's otherwise. */
static void option_lines(FILE *out, const bome_options *o, int method, const char *heading)
{
    int n = bome_option_count();
    for (int i = 0; i < n; i++) {
        bome_option_info d;
        bome_option_info_at(i, &d);
        if (d.method != method)
            continue;
        if (heading)
            fputs(heading, out);
        heading = NULL;
        char flag[64], alias[64] = "", left[160], def[64];
        double x = d.def;
        bome_options_get(o, d.name, &x);
        cli_flag_of(d.name, flag, sizeof flag);
        if (d.alias) {
            alias[0] = ',', alias[1] = ' ';
            cli_flag_of(d.alias, alias + 2, sizeof alias - 2);
        }
        snprintf(left, sizeof left, "%s%s %s", flag, alias,
                 d.type == BOME_OPTION_CHOICE ? d.choices : d.type == BOME_OPTION_INT ? "N" : "X");
        if (d.type == BOME_OPTION_CHOICE) {
            const char *c = d.choices;
            for (int k = 0; k < (int)x && strchr(c, '|'); k++)
                c = strchr(c, '|') + 1;
            const char *bar = strchr(c, '|');
            snprintf(def, sizeof def, "%.*s", bar ? (int)(bar - c) : (int)strlen(c), c);
        } else {
            snprintf(def, sizeof def, "%g", x);
        }
        if (strlen(left) > 20)
            fprintf(out, "  %s\n  %-20s %s (default %s)\n", left, "", d.help, def);
        else
            fprintf(out, "  %-20s %s (default %s)\n", left, d.help, def);
    }
}

static void run_usage(FILE *out, const bome_options *o)
{
    fputs("usage: bome run PROBLEM [options]\n"
          "\n"
          "Each problem starts from the paper's settings; flags override them.\n"
          "\n"
          "  --method M           the bilevel method (default bome); `bome methods` lists them\n"
          "  --momentum X         outer momentum; X > 0 also selects --update momentum, 0 plain steps\n"
          "  --adam, --sgd        the same as --update adam, --update sgd\n"
          "  --start K            starting point, where the paper has several (coreset: 0-2)\n"
          "  --budget N           stop once N gradients plus Hessian-vector products are spent\n"
          "                       (methods that count them: the meta-learning ones)\n"
          "  --eval-every N       the held-out score every N steps, in the CSV (problems with one)\n",
          out);
    option_lines(out, o, -1, "settings every method shares:\n");
    for (int m = 0; m < bome_method_count(); m++) {
        char heading[96];
        snprintf(heading, sizeof heading, "settings of --method %s only:\n", bome_method_name(m));
        option_lines(out, o, m, heading);
    }
    fputs("output:\n"
          "  --csv FILE           one row per step (per logged step for hyperclean)\n"
          "  --dot FILE           the graph the method built from f and g, in Graphviz DOT (toys)\n"
          "  --json               one JSON object on stdout at the end\n"
          "  --quiet              no progress bar (it is drawn only on a terminal anyway)\n"
          "hyperclean only:\n"
          "  --data-dir DIR       IDX files (default /usr/share/datasets/fashion-mnist)\n"
          "  --sizes T,V,H,C      train, validation, held-out sizes and corrupted labels\n"
          "                       (default 50000,5000,5000,25000)\n"
          "  --out-dir DIR        where the CSV, plot and warm-start cache go (default out)\n"
          "  --save-v FILE        the learned weights at the end, a CSV row per training example:\n"
          "                       its image's index in the IDX file, v, the label it was\n"
          "                       trained with, and 1 if that label is the original one\n"
          "  --model linear|mlp   the classifier (default linear; mlp is 784-H-10 with tanh)\n"
          "  --hidden H           hidden units of mlp (default 300)\n"
          "  --eval-every N       test evaluation and CSV row every N steps (default 10)\n"
          "  --warm-steps N       warm-start steps (default 5000, the reference's; the demo: 300)\n"
          "  --warm-lr X          warm-start step size (default 0.01)\n"
          "  --threads N          threads, for BLAS and over the rows of the data\n"
          "                       (default: OPENBLAS_NUM_THREADS, else 1)\n"
          "  --no-cache           recompute the warm start\n"
          "  --no-plot            skip the gnuplot PNG\n",
          out);
}

static void list(void)
{
    printf("%-14s %s\n", "hyperclean", "data hyper-cleaning on Fashion-MNIST (the paper's benchmark)");
    for (int i = 0; bome_cases[i]; i++)
        printf("%-14s %s\n", bome_cases[i]->name, bome_cases[i]->summary);
}

static void methods(void)
{
    for (int m = 0; m < bome_method_count(); m++)
        printf("%-10s %s  %s\n", bome_method_name(m), bome_method_order(m) == 1 ? "first order " : "second order",
               bome_method_summary(m));
}

typedef struct run_ctx {
    FILE *csv;
    cli_progress bar;
    const bome_case *c;
    bome_case_run *r;
    const bome_options *o;
    int eval_every;
    long grad_evals, hvp_evals; /* over the run */
    long budget;                /* stop once they reach it (0: no limit) */
    const char *ckpt_path;      /* --checkpoint, every ckpt_every steps */
    long ckpt_every;
    int ckpt_rc;                /* a failed checkpoint write stops the run */
    char err[1024];
} run_ctx;

static int on_step(void *ud, bome_solver *s, const bome_step_stats *st)
{
    run_ctx *c = ud;
    c->grad_evals = st->total_grad_evals;
    c->hvp_evals = st->total_hvp_evals;
    if (c->csv) {
        fprintf(c->csv, "%ld,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.9g", st->step, st->f, st->g, st->q,
                st->lambda, st->grad_f_norm, st->grad_q_norm, st->kkt, st->total_seconds);
        if (c->c && c->c->evaluate) {
            /* the held-out score every eval_every steps (and at the end) */
            fprintf(c->csv, ",%ld,%ld,", c->grad_evals, c->hvp_evals);
            if ((c->eval_every > 0 && st->step % c->eval_every == 0) || st->step == c->o->max_steps) {
                double ci, m = c->c->evaluate(c->r, c->o, &ci);
                fprintf(c->csv, "%.9g,%.9g", m, ci);
            } else {
                fputs(",", c->csv);
            }
        }
        fputs("\n", c->csv);
    }
    char text[128];
    snprintf(text, sizeof text, "f %.4g  q %.3g  lambda %.3g", st->f, st->q, st->lambda);
    cli_progress_draw(&c->bar, st->step, text);
    if (c->ckpt_path && st->step % c->ckpt_every == 0) {
        /* the CSV's rows up to this step reach the disk before the checkpoint
         * that a resume cuts the CSV back to */
        if (c->csv && (fflush(c->csv) != 0 || fsync(fileno(c->csv)) != 0)) {
            snprintf(c->err, sizeof c->err, "cannot write the CSV: %s", strerror(errno));
            c->ckpt_rc = BOME_ERR_IO;
            return 1;
        }
        if ((c->ckpt_rc = cli_checkpoint_save(c->ckpt_path, s, c->err, sizeof c->err)))
            return 1;
    }
    return cli_signal || (c->budget > 0 && c->grad_evals + c->hvp_evals >= c->budget);
}

static void print_vector(FILE *out, const bome_real *x, int n, bool json)
{
    fputs("[", out);
    for (int i = 0; i < n; i++) {
        if (i)
            fputs(", ", out);
        if (json)
            cli_json_num(out, x[i]);
        else
            fprintf(out, "%.6g", x[i]);
    }
    fputs("]", out);
}

static int run_case(const bome_case *c, cli_args *a)
{
    if (a->start < 0 || a->start >= c->n_starts) {
        fprintf(stderr, "bome: --start %d: %s has starting points 0 to %d\n", a->start, c->name, c->n_starts - 1);
        return 2;
    }
    bome_case_run r = {0};
    r.params = a->case_params;
    r.o = &a->o;
    char err[256] = "";
    int rc = c->create(&r, a->start, a->o.seed, err, sizeof err);
    if (rc) {
        fprintf(stderr, "bome: %s: %s\n", c->name, err[0] ? err : bome_problem_errmsg(r.problem));
        c->destroy(&r);
        return 1;
    }
    run_ctx ctx = {0};
    ctx.ckpt_path = a->checkpoint_path;
    ctx.ckpt_every = a->checkpoint_every ? a->checkpoint_every : LONG_MAX;
    ctx.c = c;
    ctx.r = &r;
    ctx.o = &a->o;
    ctx.eval_every = a->eval_every;
    ctx.budget = a->budget;
    a->o.on_step = on_step;
    a->o.on_step_ud = &ctx;
    cli_progress_start(&ctx.bar, a->o.max_steps, a->quiet || a->json);
    bome_step_stats last = {0};
    double t0 = cli_now();
    bome_solver *s = bome_solver_new(r.problem, &a->o);
    rc = s ? bome_solver_status(s) : BOME_ERR_NOMEM;
    if (!rc && a->resume_path && cli_checkpoint_load(a->resume_path, s, ctx.err, sizeof ctx.err)) {
        fprintf(stderr, "bome: --resume %s\n", ctx.err);
        bome_solver_free(s);
        c->destroy(&r);
        return 1;
    }
    if (!rc && a->csv_path) {
        if (a->resume_path) {
            ctx.csv = cli_csv_resume(a->csv_path, bome_solver_steps(s), ctx.err, sizeof ctx.err);
        } else if ((ctx.csv = fopen(a->csv_path, "w"))) {
            fputs("step,f,g,q,lambda,grad_f_norm,grad_q_norm,kkt,seconds", ctx.csv);
            if (c->evaluate)
                fprintf(ctx.csv, ",grad_evals,hvp_evals,%s,%s_ci95", c->eval_name, c->eval_name);
            fputs("\n", ctx.csv);
        } else {
            snprintf(ctx.err, sizeof ctx.err, "cannot write %.900s: %s", a->csv_path, strerror(errno));
        }
        if (!ctx.csv) {
            fprintf(stderr, "bome: %s\n", ctx.err);
            bome_solver_free(s);
            c->destroy(&r);
            return 1;
        }
    }
    if (!rc && a->dot_path) {
        FILE *dot = fopen(a->dot_path, "w");
        if (!dot || bome_graph_dot(bome_solver_graph(s), dot, 0, NULL) != BOME_OK)
            fprintf(stderr, "bome: cannot write %s\n", a->dot_path);
        if (dot)
            fclose(dot);
    }
    if (!rc)
        rc = bome_solver_run(s, &last);
    double seconds = cli_now() - t0;
    cli_progress_end(&ctx.bar);
    if (!rc && cli_signal && a->checkpoint_path && !ctx.ckpt_rc) {
        if (ctx.csv)
            fflush(ctx.csv);
        ctx.ckpt_rc = cli_checkpoint_save(a->checkpoint_path, s, ctx.err, sizeof ctx.err);
    }
    if (ctx.csv && (ferror(ctx.csv) | fclose(ctx.csv)) && !ctx.ckpt_rc) {
        snprintf(ctx.err, sizeof ctx.err, "cannot write %.900s", a->csv_path);
        ctx.ckpt_rc = BOME_ERR_IO;
    }
    if (!rc && ctx.ckpt_rc)
        rc = ctx.ckpt_rc;
    /* what is written is complete or absent: a failed or interrupted run
     * keeps its CSV only where a checkpoint continues it */
    if ((rc || cli_signal) && a->csv_path && !a->checkpoint_path)
        cli_remove_output(a->csv_path);
    if (!rc && cli_signal) {
        fprintf(stderr, "bome: stopped by signal %d after step %ld%s%s\n", (int)cli_signal, bome_solver_steps(s),
                a->checkpoint_path ? "; resume with --resume " : "", a->checkpoint_path ? a->checkpoint_path : "");
        bome_solver_free(s);
        c->destroy(&r);
        return 128 + (int)cli_signal;
    }
    const char *msg = rc && ctx.ckpt_rc ? ctx.err : s ? bome_solver_errmsg(s) : "out of memory";
    double error = c->error ? c->error(&r) : NAN, ci95 = NAN;
    double score = c->evaluate ? c->evaluate(&r, &a->o, &ci95) : NAN;
    if (rc)
        fprintf(stderr, "bome: %s: %s\n", c->name, msg);
    if (a->json) {
        printf("{\"problem\": \"%s\", \"method\": \"%s\", \"status\": ", c->name, bome_method_name((int)a->o.method));
        cli_json_str(stdout, rc ? msg : "ok");
        printf(", \"settings\": ");
        cli_json_options(stdout, &a->o);
        printf(", \"steps\": %ld, \"seconds\": ", bome_solver_steps(s));
        cli_json_num(stdout, seconds);
        const struct { const char *k; double v; } nums[] = {
            {"f", last.f}, {"g", last.g}, {"q", last.q}, {"lambda", last.lambda}, {"kkt", last.kkt},
            {"distance_to_answer", error}, {"grad_evals", (double)ctx.grad_evals}, {"hvp_evals", (double)ctx.hvp_evals},
        };
        for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
            printf(", \"%s\": ", nums[i].k);
            cli_json_num(stdout, nums[i].v);
        }
        if (c->evaluate) {
            printf(", \"%s\": ", c->eval_name);
            cli_json_num(stdout, score);
            printf(", \"%s_ci95\": ", c->eval_name);
            cli_json_num(stdout, ci95);
        }
        printf(", \"variables\": {");
        for (int i = 0; i < r.n_show; i++) {
            printf("%s\"%s\": ", i ? ", " : "", r.show_name[i]);
            print_vector(stdout, r.show_values[i], r.show_size[i], true);
        }
        printf("}}\n");
    } else if (!a->quiet && bome_solver_steps(s) > 0) {
        printf("%s: %ld %s steps in %.3f s (%.2f us/step)\n", c->name, bome_solver_steps(s), bome_method_name((int)a->o.method), seconds,
               1e6 * seconds / (double)(bome_solver_steps(s) ? bome_solver_steps(s) : 1));
        printf("  f = %.6g  q = %.3g  lambda = %.3g  KKT residual = %.3g\n", last.f, last.q, last.lambda, last.kkt);
        for (int i = 0; i < r.n_show; i++) {
            printf("  %s = ", r.show_name[i]);
            print_vector(stdout, r.show_values[i], r.show_size[i], false);
            printf("\n");
        }
        if (!isnan(error))
            printf("  distance to the known answer: %.3g\n", error);
        if (c->evaluate)
            printf("  %s (held out) = %.4g +- %.2g (95%%); %ld gradients and %ld Hessian-vector products spent\n",
                   c->eval_name, score, ci95, ctx.grad_evals, ctx.hvp_evals);
        if (a->csv_path)
            printf("  per-step CSV: %s\n", a->csv_path);
    }
    bome_solver_free(s);
    c->destroy(&r);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    blas_kernel_check(argv); /* may run bome again with OPENBLAS_CORETYPE set */
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "list")) {
        if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
            puts("usage: bome list\n\nPrints the problems `bome run` knows, one per line.");
            return 0;
        }
        list();
        return 0;
    }
    if (!strcmp(cmd, "methods")) {
        if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
            puts("usage: bome methods\n\nPrints the bilevel methods `bome run --method` takes, one per line:\n"
                 "the name, first or second order, and a summary.");
            return 0;
        }
        methods();
        return 0;
    }
    if (!strcmp(cmd, "blas"))
        return blas_kernel_main(argc, argv);
    if (strcmp(cmd, "run") != 0) {
        fprintf(stderr, "bome: unknown command '%s'\n", cmd);
        usage(stderr);
        return 2;
    }
    cli_args a = {0};
    bome_options_default(&a.o);
    if (argc < 3 || !strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")) {
        run_usage(argc < 3 ? stderr : stdout, &a.o);
        return argc < 3 ? 2 : 0;
    }
    a.problem = argv[2];
    const bome_case *c = bome_case_find(a.problem);
    a.c = c;
    for (int i = 0; c && i < c->n_params; i++)
        a.case_params[i] = c->params[i].def;
    if (c)
        c->defaults(&a.o);
    else if (!strcmp(a.problem, "hyperclean"))
        hyperclean_defaults(&a);
    else {
        fprintf(stderr, "bome: no problem named '%s'; `bome list` shows them\n", a.problem);
        return 2;
    }
    for (int i = 3; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            run_usage(stdout, &a.o);
            for (int j = 0; c && j < c->n_params; j++) {
                if (!j)
                    printf("%s only:\n", c->name);
                char left[64];
                snprintf(left, sizeof left, "--%s X", c->params[j].name);
                printf("  %-20s %s (default %g)\n", left, c->params[j].help, c->params[j].def);
            }
            return 0;
        }
    int rc = cli_parse(&a, argc - 3, argv + 3);
    if (rc)
        return rc;
    if (a.checkpoint_every && !a.checkpoint_path) {
        fprintf(stderr, "bome: --checkpoint-every needs --checkpoint FILE\n");
        return 2;
    }
    cli_signals_install();
    if (!c)
        hyperclean_method_defaults(&a);
    return c ? run_case(c, &a) : hyperclean_main(&a);
}
