/* The `bome run` command line: the case's defaults, then every flag, each
 * checked against its range; the only place that reads argv. */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int bad(const char *flag, const char *value, const char *want)
{
    fprintf(stderr, "bome: %s %s: expected %s (see bome run --help)\n", flag, value ? value : "(missing)", want);
    return 2;
}

static bool parse_double(const char *s, double *out)
{
    if (!s)
        return false;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (errno || end == s || *end)
        return false;
    *out = x;
    return true;
}

static bool parse_long(const char *s, long *out)
{
    if (!s)
        return false;
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || end == s || *end)
        return false;
    *out = x;
    return true;
}

/* --cg-steps -> cg_steps */
static void flag_to_name(const char *flag, char *name, size_t len)
{
    size_t i = 0;
    for (flag += 2; *flag && i + 1 < len; flag++)
        name[i++] = *flag == '-' ? '_' : *flag;
    name[i] = '\0';
}

void cli_flag_of(const char *name, char *flag, size_t len)
{
    size_t i = 0;
    if (len < 3)
        return;
    flag[i++] = '-';
    flag[i++] = '-';
    for (; *name && i + 1 < len; name++)
        flag[i++] = *name == '_' ? '-' : *name;
    flag[i] = '\0';
}

/* A setting from the library's table (bome_option_info_at): --name VALUE,
 * checked against the setting's own range. 1 if k is not one, 0 if set,
 * else 2 with a message. */
static int set_option(cli_args *a, const char *k, const char *v)
{
    char name[64];
    if (strncmp(k, "--", 2) != 0)
        return 1;
    flag_to_name(k, name, sizeof name);
    int i = bome_option_find(name);
    if (i < 0)
        return 1;
    bome_option_info d;
    bome_option_info_at(i, &d);
    if (d.method >= 0 && d.method != (int)a->o.method) {
        fprintf(stderr, "bome: %s is a setting of --method %s; this run uses %s\n", k, bome_method_name(d.method),
                bome_method_name((int)a->o.method));
        return 2;
    }
    double x = NAN;
    if (d.type == BOME_OPTION_CHOICE) {
        /* "a|b|c": the value is the index of v among them */
        const char *c = d.choices;
        size_t n = v ? strlen(v) : 0;
        for (int idx = 0; v && c && *c; idx++) {
            const char *bar = strchr(c, '|');
            size_t len = bar ? (size_t)(bar - c) : strlen(c);
            if (len == n && !strncmp(c, v, n))
                x = idx;
            c = bar ? bar + 1 : c + len;
        }
        if (isnan(x))
            return bad(k, v, d.choices);
    } else if (!parse_double(v, &x)) {
        return bad(k, v, d.type == BOME_OPTION_INT ? "a whole number" : "a number");
    }
    if (bome_options_set(&a->o, d.name, x) != BOME_OK) {
        char want[96];
        if (d.hi >= 1e300)
            snprintf(want, sizeof want, "%s %s %g", d.type == BOME_OPTION_INT ? "a whole number" : "a number",
                     d.open & BOME_OPEN_LO ? ">" : ">=", d.lo);
        else
            snprintf(want, sizeof want, "%s in %c%g, %g%c", d.type == BOME_OPTION_INT ? "a whole number" : "a number",
                     d.open & BOME_OPEN_LO ? '(' : '[', d.lo, d.hi, d.open & BOME_OPEN_HI ? ')' : ']');
        return bad(k, v, want);
    }
    return 0;
}

/* "T,V,H,C": four whole numbers, each checked for overflow (sscanf's %d is not). */
static int parse_sizes(const char *k, const char *v, int out[4])
{
    long z[4];
    const char *p = v;
    int got = 0;
    for (; p && got < 4; got++) {
        char *end;
        errno = 0;
        z[got] = strtol(p, &end, 10);
        if (errno || end == p || z[got] < 0 || z[got] > INT_MAX || (*end != ',' && *end != '\0'))
            break;
        p = *end == ',' ? end + 1 : NULL;
        if (got < 3 && !p)
            break;
    }
    if (got != 4 || p)
        return bad(k, v, "four whole numbers TRAIN,VAL,HELD,CORRUPT, each from 0 to 2147483647");
    for (int j = 0; j < 4; j++)
        out[j] = (int)z[j];
    return 0;
}

/* One of the case's own settings: 1 if k is not one, 0 if set (*used: the
 * arguments it took), else 2 with a message. */
static int set_param(cli_args *a, const char *k, const char *v, int *used)
{
    const prob_case *c = a->c;
    for (int j = 0; j < c->n_params; j++) {
        const prob_param *p = &c->params[j];
        if (strncmp(k, "--", 2) || strcmp(k + 2, p->name))
            continue;
        prob_value *x = &a->params[j];
        long n;
        *used = p->type == PROB_SWITCH ? 1 : 2;
        switch (p->type) {
        case PROB_REAL:
            return parse_double(v, &x->x) ? 0 : bad(k, v, "a number");
        case PROB_INT:
            if (!parse_long(v, &n) || n < INT_MIN || n > INT_MAX)
                return bad(k, v, "a whole number");
            x->x = (double)n;
            return 0;
        case PROB_TEXT:
            if (!v)
                return bad(k, v, "a value");
            x->s = v;
            return 0;
        case PROB_SWITCH:
            x->x = 1;
            return 0;
        case PROB_SIZES:
            return parse_sizes(k, v, x->sizes);
        }
    }
    return 1;
}

/* The flags only some problems have: those of every case's own settings,
 * and --start, --out-dir, --no-plot, --save-v. True if k is one that the
 * run's case lacks. */
static bool other_problems_flag(const cli_args *a, const char *k)
{
    if (strncmp(k, "--", 2))
        return false;
    const prob_case *c = a->c;
    if ((!strcmp(k, "--start") && c->n_starts == 0) || (!strcmp(k, "--save-v") && !c->save) ||
        ((!strcmp(k, "--out-dir") || !strcmp(k, "--no-plot")) && !cli_experiment(c)))
        return true;
    for (int i = 0; prob_cases[i]; i++)
        for (int j = 0; j < prob_cases[i]->n_params; j++)
            if (!strcmp(k + 2, prob_cases[i]->params[j].name))
                return true;
    return false;
}

int cli_defaults(cli_args *a, const prob_case *c, int argc, char **argv)
{
    a->c = c;
    a->problem = c->name;
    c->defaults(&a->o);
    for (int j = 0; j < c->n_params && j < PROB_MAX_PARAMS; j++)
        a->params[j] = prob_default(&c->params[j]);
    a->eval_every = c->eval_every;
    a->out_dir = "out";
    /* The method first: which method's settings are valid depends on it,
     * and so do some of the problem's defaults. */
    for (int i = 0; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--method"))
            a->method = argv[i + 1];
    if (a->method) {
        int m = bome_method_from_name(a->method);
        if (m < 0) {
            fprintf(stderr, "bome: --method %s: no such method; `bome methods` lists them\n", a->method);
            return 2;
        }
        a->o.method = (bome_method)m;
    }
    if (c->method_defaults)
        c->method_defaults(&a->o);
    return 0;
}

int cli_parse(cli_args *a, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        /* a problem's own settings first: sinusoid's --hidden is its own */
        int used = 0, rc = set_param(a, k, v, &used);
        if (rc != 1) {
            if (rc)
                return rc;
            i += used - 1;
            continue;
        }
        if (other_problems_flag(a, k)) {
            fprintf(stderr, "bome: %s is not a setting of %s (see bome run %s --help)\n", k, a->problem, a->problem);
            return 2;
        }
#define STR(flag, field)                                          \
    if (strcmp(k, flag) == 0) {                                   \
        if (!v)                                                   \
            return bad(k, v, "a value");                          \
        field = v;                                                \
        i++;                                                      \
        continue;                                                 \
    }
/* a whole number from lo to hi */
#define WHOLE(flag, field, lo, hi, want)                          \
    if (strcmp(k, flag) == 0) {                                   \
        if (!parse_long(v, &n) || n < (lo) || n > (hi))           \
            return bad(k, v, want);                               \
        field = n;                                                \
        i++;                                                      \
        continue;                                                 \
    }
        WHOLE("--start", a->start, INT_MIN, INT_MAX, "a whole number")
        WHOLE("--budget", a->budget, 0, LONG_MAX, "a whole number >= 0")
        WHOLE("--checkpoint-every", a->checkpoint_every, 1, LONG_MAX, "a whole number >= 1")
        WHOLE("--eval-every", a->eval_every, INT_MIN, INT_MAX, "a whole number")
        WHOLE("--threads", a->threads, 1, BOME_MAX_THREADS, "a whole number from 1 to 64")
        STR("--method", a->method)
        STR("--csv", a->csv_path)
        STR("--checkpoint", a->checkpoint_path)
        STR("--resume", a->resume_path)
        STR("--dot", a->dot_path)
        STR("--out-dir", a->out_dir)
        STR("--save-v", a->save_path)
#undef STR
#undef WHOLE
        if (strcmp(k, "--momentum") == 0) {
            /* a momentum turns the momentum rule on, 0 turns it off */
            int rc = set_option(a, k, v);
            if (rc)
                return rc;
            a->o.update = a->o.momentum > 0 ? BOME_UPDATE_MOMENTUM : BOME_UPDATE_SGD;
            i++;
        } else if (strcmp(k, "--adam") == 0) {
            a->o.update = BOME_UPDATE_ADAM;
        } else if (strcmp(k, "--sgd") == 0) {
            a->o.update = BOME_UPDATE_SGD;
        } else if (strcmp(k, "--json") == 0) {
            a->json = true;
        } else if (strcmp(k, "--quiet") == 0 || strcmp(k, "-q") == 0) {
            a->quiet = true;
        } else if (strcmp(k, "--no-plot") == 0) {
            a->no_plot = true;
        } else {
            int rc = set_option(a, k, v);
            if (rc == 1) {
                fprintf(stderr, "bome: unknown option '%s' for %s (see bome run %s --help)\n", k, a->problem,
                        a->problem);
                return 2;
            }
            if (rc)
                return rc;
            i++;
        }
    }
    if (a->threads)
        a->o.threads = a->threads;
    if (a->checkpoint_every && !a->checkpoint_path) {
        fprintf(stderr, "bome: --checkpoint-every needs --checkpoint FILE\n");
        return 2;
    }
    if (cli_experiment(a->c) && a->eval_every < 1) {
        fprintf(stderr, "bome: --eval-every %d: %s logs a step every N >= 1 steps\n", a->eval_every, a->problem);
        return 2;
    }
    return 0;
}
