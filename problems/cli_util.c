/* Argument parsing, progress bar and JSON output for the `bome` program. */
#include "cli.h"

#include <errno.h>
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

int cli_parse(cli_args *a, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d;
        long n;
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
        if (!parse_long(v, &n))                                   \
            return bad(k, v, "a whole number");                   \
        field = n;                                                \
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
        INT("--steps", a->o.max_steps)
        INT("--T", a->o.T)
        INT("-T", a->o.T)
        REAL("--alpha", a->o.alpha)
        REAL("--eta", a->o.eta)
        REAL("--lr-outer", a->o.lr_outer)
        REAL("--lr-v", a->o.lr_outer)
        REAL("--lr-inner", a->o.lr_inner)
        REAL("--lr-theta", a->o.lr_inner)
        REAL("--inner-momentum", a->o.inner_momentum)
        INT("--inner-momentum-keep", a->o.inner_momentum_keep)
        INT("--cg-steps", a->o.cg_steps)
        REAL("--tol", a->o.tol)
        INT("--start", a->start)
        STR("--method", a->method)
        STR("--csv", a->csv_path)
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
        } else if (strcmp(k, "--seed") == 0) {
            if (!parse_long(v, &n) || n < 0)
                return bad(k, v, "a whole number >= 0");
            a->o.seed = (uint64_t)n;
            i++;
        } else if (strcmp(k, "--momentum") == 0) {
            if (!parse_double(v, &d))
                return bad(k, v, "a number in [0, 1)");
            a->o.momentum = d;
            a->o.update = d > 0 ? BOME_UPDATE_MOMENTUM : BOME_UPDATE_SGD;
            i++;
        } else if (strcmp(k, "--adam") == 0) {
            a->o.update = BOME_UPDATE_ADAM;
        } else if (strcmp(k, "--sgd") == 0) {
            a->o.update = BOME_UPDATE_SGD;
        } else if (strcmp(k, "--phi") == 0) {
            if (v && strcmp(v, "grad") == 0)
                a->o.phi = BOME_PHI_GRAD;
            else if (v && strcmp(v, "value") == 0)
                a->o.phi = BOME_PHI_VALUE;
            else
                return bad(k, v, "grad or value");
            i++;
        } else if (strcmp(k, "--sizes") == 0) {
            bome_hc_sizes z;
            char tail;
            if (!v || sscanf(v, "%d,%d,%d,%d%c", &z.n_train, &z.n_val, &z.n_held, &z.n_corrupt, &tail) != 4)
                return bad(k, v, "four whole numbers TRAIN,VAL,HELD,CORRUPT");
            a->sizes = z;
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
            fprintf(stderr, "bome: unknown option '%s' (see bome run --help)\n", k);
            return 2;
        }
    }
    if (a->method && strcmp(a->method, "bome") == 0) {
        a->o.method = BOME_METHOD_BOME;
    } else if (a->method && strcmp(a->method, "itd") == 0) {
        a->o.method = BOME_METHOD_ITD;
    } else if (a->method && strcmp(a->method, "aid-cg") == 0) {
        a->o.method = BOME_METHOD_AID_CG;
    } else if (a->method && strcmp(a->method, "bsg-1") == 0) {
        a->o.method = BOME_METHOD_BSG1;
    } else if (a->method) {
        fprintf(stderr, "bome: --method %s: expected bome, itd, aid-cg or bsg-1\n", a->method);
        return 2;
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
const char *cli_method_name(const bome_options *o)
{
    switch (o->method) {
    case BOME_METHOD_ITD: return "itd";
    case BOME_METHOD_AID_CG: return "aid-cg";
    case BOME_METHOD_BSG1: return "bsg-1";
    default: return "bome";
    }
}

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

void cli_json_options(FILE *out, const bome_options *o)
{
    static const char *updates[] = {"sgd", "momentum", "adam"};
    fprintf(out, "{\"T\": %d, \"alpha\": ", o->T);
    cli_json_num(out, o->alpha);
    fputs(", \"eta\": ", out);
    cli_json_num(out, o->eta);
    fprintf(out, ", \"phi\": \"%s\", \"lr_outer\": ", o->phi == BOME_PHI_GRAD ? "grad" : "value");
    cli_json_num(out, o->lr_outer);
    fputs(", \"lr_inner\": ", out);
    cli_json_num(out, o->lr_inner);
    fprintf(out, ", \"update\": \"%s\", \"momentum\": ", updates[o->update]);
    cli_json_num(out, o->update == BOME_UPDATE_MOMENTUM ? o->momentum : 0.0);
    fputs(", \"inner_momentum\": ", out);
    cli_json_num(out, o->inner_momentum);
    fprintf(out, ", \"inner_momentum_keep\": %d", o->inner_momentum_keep);
    fprintf(out, ", \"steps\": %ld, \"seed\": %llu, \"threads\": %d}", o->max_steps, (unsigned long long)o->seed,
            o->threads > 1 ? o->threads : 1);
}
