/* The help texts of `bome` and `bome run`: the settings' lines come from the
 * library's table and the case's, with the defaults of the problem named. */
#include "cli.h"

#include <string.h>

void cli_usage(FILE *out)
{
    fputs("usage: bome <command> [options]\n"
          "\n"
          "commands:\n"
          "  list                 the problems bome can run\n"
          "  methods              the bilevel methods, one per line: name, order, summary\n"
          "  run PROBLEM [opts]   solve PROBLEM (see bome run --help)\n"
          "  blas                 the BLAS, its kernel, the CPU, and whether a faster kernel fits\n"
          "  version              the library's version (also --version)\n"
          "  help                 this text\n",
          out);
}

/* A help line: the flag and its value on the left, wrapped when long. */
static void line(FILE *out, const char *left, const char *help, const char *def)
{
    if (strlen(left) > 20)
        fprintf(out, "  %s\n  %-20s %s", left, "", help);
    else
        fprintf(out, "  %-20s %s", left, help);
    if (def)
        fprintf(out, " (default %s)", def);
    fputs("\n", out);
}

/* The case's own settings, and the output flags it takes. */
static void case_lines(FILE *out, const prob_case *c)
{
    if (cli_experiment(c))
        fputs("  --out-dir DIR        where the CSV, plot and caches go (default out)\n"
              "  --no-plot            skip the gnuplot PNG\n",
              out);
    if (c->save)
        fprintf(out, "  --save-v FILE        the %s at the end, as CSV rows\n", c->save_what);
    for (int j = 0; j < c->n_params; j++) {
        const prob_param *p = &c->params[j];
        static const char *const meta[] = {"X", "N", "VALUE", "", "T,V,H,C"};
        char left[96], def[64];
        snprintf(left, sizeof left, "--%s%s%s", p->name, p->type == PROB_SWITCH ? "" : " ",
                 p->meta ? p->meta : meta[p->type]);
        if (p->type == PROB_TEXT)
            snprintf(def, sizeof def, "%s", p->text);
        else if (p->type == PROB_SIZES)
            snprintf(def, sizeof def, "%d,%d,%d,%d", p->sizes[0], p->sizes[1], p->sizes[2], p->sizes[3]);
        else
            snprintf(def, sizeof def, "%g", p->def);
        line(out, left, p->help, p->type == PROB_SWITCH ? NULL : def);
    }
}

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
        line(out, left, d.help, def);
    }
}

void cli_run_usage(FILE *out, const bome_options *o, const prob_case *c)
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
          "  --eval-every N       the held-out score, or an experiment's logged step, every N steps\n"
          "  --threads N          threads, for BLAS and over the rows of large data\n"
          "                       (default: OPENBLAS_NUM_THREADS, else 1)\n"
          "  --precision P        float64 (the default of `bome`) or float32 (that of `bome-f32`,\n"
          "                       which the other program runs when asked)\n",
          out);
    option_lines(out, o, -1, "settings every method shares:\n");
    for (int m = 0; m < bome_method_count(); m++) {
        char heading[96];
        snprintf(heading, sizeof heading, "settings of --method %s only:\n", bome_method_name(m));
        option_lines(out, o, m, heading);
    }
    fputs("output:\n"
          "  --csv FILE           one row per step (per logged step for an experiment)\n"
          "  --dot FILE           the graph the method built from f and g, in Graphviz DOT\n"
          "  --json               one JSON object on stdout at the end\n"
          "  --quiet              no progress bar (it is drawn only on a terminal anyway)\n"
          "checkpoints:\n"
          "  --checkpoint FILE    the solver's state, every --checkpoint-every N steps and at a signal\n"
          "  --resume FILE        go on from a checkpoint (the CSV is cut back to it)\n",
          out);
    if (c) {
        fprintf(out, "%s only:\n", c->name);
        case_lines(out, c);
    } else {
        fputs("Each problem's own settings: bome run PROBLEM --help.\n", out);
    }
}
