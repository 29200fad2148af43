/* Argument parsing, progress bar and JSON output for the `bome` program. */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

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
    if (i < (int)(sizeof a->user_set / sizeof a->user_set[0]))
        a->user_set[i] = true;
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

bool cli_user_set(const cli_args *a, const char *name)
{
    int i = bome_option_find(name);
    return i >= 0 && i < (int)(sizeof a->user_set / sizeof a->user_set[0]) && a->user_set[i];
}

int cli_parse(cli_args *a, int argc, char **argv)
{
    /* The method first: which method's settings are valid depends on it. */
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
    /* flags that belong to one kind of problem: an error on the other */
    static const char *const hc_only[] = {"--data-dir", "--out-dir", "--save-v", "--model", "--hidden", "--warm-steps",
                                          "--warm-lr", "--sizes", "--no-cache", "--no-plot"};
    static const char *const case_only[] = {"--start", "--budget", "--dot", "--checkpoint", "--checkpoint-every",
                                            "--resume"};
    for (int i = 0; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d;
        long n;
        /* a problem's own settings first: sinusoid's --hidden is its own */
        bool own = false;
        for (int j = 0; a->c && j < a->c->n_params; j++)
            if (!strncmp(k, "--", 2) && !strcmp(k + 2, a->c->params[j].name)) {
                if (!parse_double(v, &a->case_params[j]))
                    return bad(k, v, "a number");
                own = true;
            }
        if (own) {
            i++;
            continue;
        }
        const char *const *other = a->c ? hc_only : case_only;
        size_t n_other = a->c ? sizeof hc_only / sizeof *hc_only : sizeof case_only / sizeof *case_only;
        for (size_t j = 0; j < n_other; j++)
            if (!strcmp(k, other[j])) {
                fprintf(stderr, "bome: %s is not a setting of %s (see bome run %s --help)\n", k, a->problem,
                        a->problem);
                return 2;
            }
#define REAL(flag, field)                                         \
    if (strcmp(k, flag) == 0) {                                   \
        if (!parse_double(v, &d))                                 \
            return bad(k, v, "a number");                         \
        field = d;                                                \
        i++;                                                      \
        continue;                                                 \
    }
#define INT(flag, field)                                          \
    if (strcmp(k, flag) == 0) {                                   \
        if (!parse_long(v, &n) || n < INT_MIN || n > INT_MAX)     \
            return bad(k, v, "a whole number");                   \
        field = (int)n;                                           \
        i++;                                                      \
        continue;                                                 \
    }
#define STR(flag, field)                                          \
    if (strcmp(k, flag) == 0) {                                   \
        if (!v)                                                   \
            return bad(k, v, "a value");                          \
        field = v;                                                \
        i++;                                                      \
        continue;                                                 \
    }
        INT("--start", a->start)
        if (strcmp(k, "--budget") == 0) {
            if (!parse_long(v, &n) || n < 0)
                return bad(k, v, "a whole number >= 0");
            a->budget = n;
            i++;
            continue;
        }
        STR("--method", a->method)
        STR("--csv", a->csv_path)
        STR("--checkpoint", a->checkpoint_path)
        STR("--resume", a->resume_path)
        if (strcmp(k, "--checkpoint-every") == 0) {
            if (!parse_long(v, &n) || n < 1)
                return bad(k, v, "a whole number >= 1");
            a->checkpoint_every = n;
            i++;
            continue;
        }
        STR("--dot", a->dot_path)
        STR("--data-dir", a->data_dir)
        STR("--out-dir", a->out_dir)
        STR("--save-v", a->save_v_path)
        STR("--model", a->model)
        INT("--hidden", a->hidden)
        INT("--eval-every", a->eval_every)
        INT("--warm-steps", a->warm_steps)
        REAL("--warm-lr", a->warm_lr)
#undef REAL
#undef INT
#undef STR
        if (strcmp(k, "--threads") == 0) {
            if (!parse_long(v, &n) || n < 1 || n > BOME_MAX_THREADS)
                return bad(k, v, "a whole number from 1 to 64");
            a->threads = (int)n;
            a->o.threads = (int)n;
            i++;
        } else if (strcmp(k, "--momentum") == 0) {
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
        } else if (strcmp(k, "--sizes") == 0) {
            /* four whole numbers, each checked for overflow (sscanf's %d is not) */
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
            a->sizes = (data_sizes){(int)z[0], (int)z[1], (int)z[2], (int)z[3]};
            i++;
        } else if (strcmp(k, "--json") == 0) {
            a->json = true;
        } else if (strcmp(k, "--quiet") == 0 || strcmp(k, "-q") == 0) {
            a->quiet = true;
        } else if (strcmp(k, "--no-cache") == 0) {
            a->no_cache = true;
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
    return 0;
}

void cli_progress_start(cli_progress *p, long total, bool quiet)
{
    p->on = !quiet && isatty(STDERR_FILENO);
    p->total = total;
    p->last_draw = 0;
}

void cli_progress_draw(cli_progress *p, long done, const char *text)
{
    if (!p->on)
        return;
    double t = cli_now();
    if (done < p->total && t - p->last_draw < 0.1)
        return;
    p->last_draw = t;
    enum { W = 24 };
    int fill = p->total > 0 ? (int)(W * done / p->total) : W;
    char bar[W + 1];
    for (int i = 0; i < W; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[W] = '\0';
    fprintf(stderr, "\r\033[K[%s] %ld/%ld %s", bar, done, p->total, text ? text : "");
    fflush(stderr);
}

void cli_progress_end(cli_progress *p)
{
    if (p->on)
        fputs("\n", stderr);
}

/* The shortest of %.15g, %.16g, %.17g that reads back as x: 0.9, not
 * 0.90000000000000002. */
void cli_json_num(FILE *out, double x)
{
    if (!isfinite(x)) {
        fputs("null", out);
        return;
    }
    char buf[32];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    fputs(buf, out);
}

void cli_json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

/* Every shared setting and the chosen method's own, from the library's
 * table, so the JSON names each setting as bome_options_set does. */
void cli_json_options(FILE *out, const bome_options *o)
{
    fputs("{\"method\": ", out);
    cli_json_str(out, bome_method_name((int)o->method));
    int n = bome_option_count();
    for (int i = 0; i < n; i++) {
        bome_option_info d;
        double x;
        bome_option_info_at(i, &d);
        if ((d.method >= 0 && d.method != (int)o->method) || bome_options_get(o, d.name, &x))
            continue;
        fprintf(out, ", \"%s\": ", d.name);
        if (d.type == BOME_OPTION_CHOICE) {
            const char *c = d.choices;
            for (int idx = 0; idx < (int)x && strchr(c, '|'); idx++)
                c = strchr(c, '|') + 1;
            const char *bar = strchr(c, '|');
            fprintf(out, "\"%.*s\"", bar ? (int)(bar - c) : (int)strlen(c), c);
        } else {
            cli_json_num(out, x);
        }
    }
    fputs("}", out);
}
