/* The per-step CSV: a toy's row per step (the solver's figures, and the
 * held-out score where the case has one), an experiment's row per logged
 * step (its metrics between the step and the solver's figures). */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void cli_csv_header(FILE *out, const prob_case *c)
{
    if (cli_experiment(c)) {
        fputs("step", out);
        for (int i = 0; i < c->n_metrics; i++)
            fprintf(out, ",%s", c->metrics[i].name);
        fputs(",f,q,lambda,seconds\n", out);
        return;
    }
    fputs("step,f,g,q,lambda,grad_f_norm,grad_q_norm,kkt,seconds", out);
    if (c->evaluate)
        fprintf(out, ",grad_evals,hvp_evals,%s,%s_ci95", c->eval_name, c->eval_name);
    fputs("\n", out);
}

int cli_csv_column(const prob_case *c, const char *name)
{
    static const char *const after[] = {"f", "q", "lambda", "seconds"};
    if (!strcmp(name, "step"))
        return 1;
    for (int i = 0; i < c->n_metrics; i++)
        if (!strcmp(name, c->metrics[i].name))
            return 2 + i;
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, after[i]))
            return 2 + c->n_metrics + i;
    return 0;
}

void cli_csv_logged(FILE *out, const prob_case *c, const bome_step_stats *st, const double *metrics)
{
    fprintf(out, "%ld", st->step);
    for (int i = 0; i < c->n_metrics; i++)
        fprintf(out, ",%.6f", metrics[i]);
    fprintf(out, ",%.9g,%.9g,%.9g,%.3f\n", st->f, st->q, st->lambda, st->total_seconds);
}

void cli_csv_step(FILE *out, const prob_case *c, const bome_step_stats *st, double score, double ci95)
{
    fprintf(out, "%ld,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.9g", st->step, st->f, st->g, st->q, st->lambda,
            st->grad_f_norm, st->grad_q_norm, st->kkt, st->total_seconds);
    if (c->evaluate) {
        fprintf(out, ",%ld,%ld,", st->total_grad_evals, st->total_hvp_evals);
        if (!isnan(score))
            fprintf(out, "%.9g,%.9g", score, ci95);
        else
            fputs(",", out);
    }
    fputs("\n", out);
}

void cli_csv_replay(const char *path, const prob_case *c, void (*fn)(void *ud, long step, const double *metrics),
                    void *ud)
{
    FILE *in = fopen(path, "r");
    char line[8192];
    if (!in)
        return;
    if (fgets(line, sizeof line, in)) /* the header */
        while (fgets(line, sizeof line, in)) {
            double m[PROB_MAX_METRICS];
            char *p = line, *end;
            long step = strtol(p, &end, 10);
            int got = 0;
            for (; got < c->n_metrics && *end == ','; got++) {
                p = end + 1;
                m[got] = strtod(p, &end);
            }
            if (got == c->n_metrics)
                fn(ud, step, m);
        }
    fclose(in);
}
