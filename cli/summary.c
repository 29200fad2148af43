/* The summary of a run: one JSON object, or lines for a person. A case
 * with a report gets a table: its comparison points, the method's row, the
 * method at its best logged step, the case's own lines. */
#include "cli.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

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

static void json_key(FILE *out, const char *key, double value)
{
    fprintf(out, ", \"%s\": ", key);
    cli_json_num(out, value);
}

/* The method's row of the table: the metrics that fill its columns. */
static void method_row(const prob_case *c, const double *metrics, double *row)
{
    for (int i = 0; i < c->n_metrics; i++)
        if (c->metrics[i].column > 0 && c->metrics[i].column <= PROB_MAX_COLS)
            row[c->metrics[i].column - 1] = metrics[i];
}

void cli_summary_json(FILE *out, const cli_args *a, prob_run *r, const prob_report *rep, const cli_outcome *x)
{
    const prob_case *c = a->c;
    fprintf(out, "{\"problem\": \"%s\", \"method\": \"%s\", \"precision\": \"%s\", \"status\": ", c->name,
            bome_method_name((int)a->o.method), cli_precision_name(BOME_REAL_BITS));
    cli_json_str(out, x->rc ? x->msg : "ok");
    for (int i = 0; rep && i < rep->n_texts; i++) {
        fprintf(out, ", \"%s\": ", rep->text[i].key);
        cli_json_str(out, rep->text[i].value);
    }
    fprintf(out, ", \"settings\": ");
    cli_json_options(out, &a->o);
    fprintf(out, ", \"steps\": %ld, \"seconds\": ", x->steps);
    cli_json_num(out, x->last.total_seconds);
    const bome_step_stats *l = &x->last;
    const struct { const char *k; double v; } nums[] = {
        {"f", l->f}, {"g", l->g}, {"q", l->q}, {"lambda", l->lambda}, {"kkt", l->kkt},
        {"distance_to_answer", c->error ? c->error(r) : NAN},
        {"grad_evals", (double)x->grad_evals}, {"hvp_evals", (double)x->hvp_evals},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        json_key(out, nums[i].k, nums[i].v);
    if (x->processes > 1) { /* what the processes exchanged over the whole run, set-up included */
        fprintf(out, ", \"processes\": %d, \"sums\": %ld", x->processes, x->sums);
        json_key(out, "summed_values", x->summed_values);
    }
    if (c->evaluate) {
        double ci95 = NAN, score = c->evaluate(r, &a->o, &ci95);
        char key[64];
        json_key(out, c->eval_name, score);
        snprintf(key, sizeof key, "%s_ci95", c->eval_name);
        json_key(out, key, ci95);
    }
    for (int i = 0; x->metrics && i < c->n_metrics; i++)
        if (c->metrics[i].json)
            json_key(out, c->metrics[i].json, x->metrics[i]);
    for (int i = 0; rep && i < rep->n_rows; i++)
        for (int j = 0; rep->row[i].key[0] && j < rep->n_cols; j++) {
            char key[96];
            snprintf(key, sizeof key, "%s_%s", rep->row[i].key, rep->col_key[j]);
            json_key(out, key, rep->row[i].value[j]);
        }
    for (int i = 0; rep && i < rep->n_figs; i++)
        json_key(out, rep->fig[i].key, rep->fig[i].value);
    if (c->select) {
        char key[96];
        snprintf(key, sizeof key, "best_%s_step", c->select_key);
        json_key(out, key, (double)x->best_step);
        for (int i = 0; x->best_step && i < c->n_metrics; i++)
            if (c->metrics[i].column && c->metrics[i].json) {
                snprintf(key, sizeof key, "best_%s_%s", c->select_key, c->metrics[i].json);
                json_key(out, key, x->best[i]);
            }
    }
    if (x->csv_path) {
        fprintf(out, ", \"csv\": ");
        cli_json_str(out, x->csv_path);
    }
    if (a->save_path && !x->rc) {
        fprintf(out, ", \"%s\": ", c->save_key);
        cli_json_str(out, a->save_path);
    }
    const char *const files[][2] = {{"plot", x->plot_path}, {"image", x->image_path}};
    for (int i = 0; i < 2; i++)
        if (files[i][1]) {
            fprintf(out, ", \"%s\": ", files[i][0]);
            cli_json_str(out, files[i][1]);
        }
    fprintf(out, ", \"variables\": {");
    for (int i = 0; i < r->n_show; i++) {
        fprintf(out, "%s\"%s\": ", i ? ", " : "", r->show_name[i]);
        print_vector(out, r->show_values[i], r->show_size[i], true);
    }
    fprintf(out, "}}\n");
}

/* A case without a report: the solver's figures, the variables, the answer. */
static void toy_text(FILE *out, const cli_args *a, prob_run *r, const cli_outcome *x)
{
    const prob_case *c = a->c;
    double seconds = x->last.total_seconds;
    fprintf(out, "%s: %ld %s steps in %s, %.3f s (%.2f us/step)\n", c->name, x->steps,
            bome_method_name((int)a->o.method), cli_precision_name(BOME_REAL_BITS), seconds,
            1e6 * seconds / (double)(x->steps ? x->steps : 1));
    fprintf(out, "  f = %.6g  q = %.3g  lambda = %.3g  KKT residual = %.3g\n", x->last.f, x->last.q, x->last.lambda,
            x->last.kkt);
    for (int i = 0; i < r->n_show; i++) {
        fprintf(out, "  %s = ", r->show_name[i]);
        print_vector(out, r->show_values[i], r->show_size[i], false);
        fprintf(out, "\n");
    }
    double error = c->error ? c->error(r) : NAN;
    if (!isnan(error))
        fprintf(out, "  distance to the known answer: %.3g\n", error);
    if (c->evaluate) {
        double ci95 = NAN, score = c->evaluate(r, &a->o, &ci95);
        fprintf(out, "  %s (held out) = %.4g +- %.2g (95%%); %ld gradients and %ld Hessian-vector products spent\n",
                c->eval_name, score, ci95, x->grad_evals, x->hvp_evals);
    }
}

static void table_row(FILE *out, int width, const char *label, const double *v, int n)
{
    fprintf(out, "  %-*s", width, label);
    for (int j = 0; j < n; j++)
        fprintf(out, " %9.4f", v[j]);
    fputs("\n", out);
}

void cli_summary_text(FILE *out, const cli_args *a, prob_run *r, const prob_report *rep, const cli_outcome *x)
{
    const prob_case *c = a->c;
    const char *M = bome_method_name((int)a->o.method);
    if (!rep) {
        toy_text(out, a, r, x);
    } else {
        fprintf(out, "\n%s, %ld %s steps (T = %d, %s)\n", rep->title, x->steps, M, a->o.T,
                cli_precision_name(BOME_REAL_BITS));
        int width = 44;
        for (int i = 0; i < rep->n_rows; i++)
            width = (int)strlen(rep->row[i].label) > width ? (int)strlen(rep->row[i].label) : width;
        fprintf(out, "  %-*s", width, "");
        for (int j = 0; j < rep->n_cols; j++)
            fprintf(out, " %9s", rep->col[j]);
        fputs("\n", out);
        for (int i = 0; i < rep->n_rows; i++)
            table_row(out, width, rep->row[i].label, rep->row[i].value, rep->n_cols);
        double row[PROB_MAX_COLS] = {0};
        if (x->metrics) {
            method_row(c, x->metrics, row);
            table_row(out, width, M, row, rep->n_cols);
        }
        if (x->best_step && x->best_step != x->steps) {
            char what[128];
            snprintf(what, sizeof what, "%s at its best %s (step %ld)", M, c->select_label, x->best_step);
            method_row(c, x->best, row);
            table_row(out, width, what, row, rep->n_cols);
        }
        for (int i = 0; i < rep->n_lines; i++)
            fprintf(out, "  %s\n", rep->line[i]);
        double seconds = x->last.total_seconds;
        fprintf(out, "  %s time: %.1f s, %.3f s per outer step (evaluation excluded: %.1f s)\n", M, seconds,
                seconds / (double)(x->steps ? x->steps : 1), x->eval_seconds);
    }
    if (x->csv_path)
        fprintf(out, "  per-step CSV: %s\n", x->csv_path);
    if (a->save_path && !x->rc)
        fprintf(out, "  %s: %s\n", c->save_what, a->save_path);
    if (x->plot_path)
        fprintf(out, "  plot: %s\n", x->plot_path);
    if (x->image_path)
        fprintf(out, "  picture of v: %s\n", x->image_path);
}
