/* The settings: one description each (name, default, range, help) drives
 * bome_options_default, the checks, bome_options_set/get and, through
 * bome_option_info_at, the CLI's flags, its help and the JSON. */
#include "method.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define FIELD(name, alias, ctype, type, field, def, lo, hi, open, choices, help) \
    {{name, alias, help, type, def, lo, hi, open, choices, -1}, ctype, offsetof(bome_options, field)}
#define BIG 1e300

static const opt_setting shared[] = {
    FIELD("T", NULL, OPT_CT_INT, BOME_OPTION_INT, T, 10, 1, 1000000, 0, NULL, "inner gradient steps per outer step"),
    FIELD("alpha", NULL, OPT_CT_DOUBLE, BOME_OPTION_REAL, alpha, 0.05, 0, BIG, 0, NULL, "inner step size"),
    FIELD("inner_momentum", NULL, OPT_CT_DOUBLE, BOME_OPTION_REAL, inner_momentum, 0, 0, 1, BOME_OPEN_HI, NULL,
          "momentum of the inner loop, PyTorch SGD semantics"),
    FIELD("inner_momentum_keep", NULL, OPT_CT_INT, BOME_OPTION_INT, inner_momentum_keep, 0, 0, 1, 0, NULL,
          "1: the inner momentum carries over between outer steps (BOME, BSG-1, stocBiO)"),
    FIELD("lr_outer", "lr_v", OPT_CT_DOUBLE, BOME_OPTION_REAL, lr_outer, 0.05, 0, BIG, 0, NULL, "step size for v"),
    FIELD("lr_inner", "lr_theta", OPT_CT_DOUBLE, BOME_OPTION_REAL, lr_inner, 0.05, 0, BIG, 0, NULL,
          "step size for theta (methods where theta takes theta_T ignore it)"),
    FIELD("update", NULL, OPT_CT_ENUM, BOME_OPTION_CHOICE, update, BOME_UPDATE_SGD, 0, 2, 0, "sgd|momentum|adam",
          "the outer update rule"),
    FIELD("lr_decay", NULL, OPT_CT_INT, BOME_OPTION_CHOICE, lr_decay, 0, 0, 1, 0, "constant|inverse",
          "the outer step sizes: constant, or lr / (k + 1) at step k"),
    FIELD("momentum", NULL, OPT_CT_DOUBLE, BOME_OPTION_REAL, momentum, 0.9, 0, 1, BOME_OPEN_HI, NULL,
          "outer momentum mu (update momentum)"),
    FIELD("adam_beta1", NULL, OPT_CT_DOUBLE, BOME_OPTION_REAL, adam_beta1, 0.9, 0, 1, BOME_OPEN_HI, NULL, "Adam's beta1"),
    FIELD("adam_beta2", NULL, OPT_CT_DOUBLE, BOME_OPTION_REAL, adam_beta2, 0.999, 0, 1, BOME_OPEN_HI, NULL, "Adam's beta2"),
    FIELD("adam_eps", NULL, OPT_CT_DOUBLE, BOME_OPTION_REAL, adam_eps, 1e-8, 0, BIG, 0, NULL, "Adam's epsilon"),
    FIELD("max_steps", "steps", OPT_CT_LONG, BOME_OPTION_INT, max_steps, 1000, 0, 1e15, 0, NULL, "outer steps"),
    FIELD("tol", NULL, OPT_CT_DOUBLE, BOME_OPTION_REAL, tol, 0, 0, BIG, 0, NULL,
          "stop once the KKT residual (or squared hypergradient) is below it; 0: never"),
    FIELD("seed", NULL, OPT_CT_U64, BOME_OPTION_INT, seed, 0, 0, 9007199254740992.0, 0, NULL,
          "seed for data and sampling"),
    FIELD("threads", NULL, OPT_CT_INT, BOME_OPTION_INT, threads, 0, 0, BOME_MAX_THREADS, 0, NULL,
          "threads over the rows of large data inputs (0 or 1: one)"),
};
enum { N_SHARED = sizeof shared / sizeof shared[0] };

/* Setting i: shared ones, then each method's own; *method gets -1 or the
 * method, *slot the param slot of a method's setting. */
static const opt_setting *setting_at(int i, int *method, int *slot)
{
    *method = -1;
    *slot = -1;
    if (i < 0)
        return NULL;
    if (i < N_SHARED)
        return &shared[i];
    i -= N_SHARED;
    for (int m = 0; m < bome_method_count(); m++) {
        const opt_method *d = opt_method_at(m);
        if (i < d->n_params) {
            *method = m;
            *slot = opt_method_param_base(m) + i;
            return &d->params[i];
        }
        i -= d->n_params;
    }
    return NULL;
}

int bome_option_count(void)
{
    int n = N_SHARED;
    for (int m = 0; m < bome_method_count(); m++)
        n += opt_method_at(m)->n_params;
    return n;
}

int bome_option_info_at(int i, bome_option_info *out)
{
    int method, slot;
    const opt_setting *d = setting_at(i, &method, &slot);
    if (!d || !out)
        return BOME_ERR_ARG;
    *out = d->info;
    out->method = method;
    return BOME_OK;
}

int bome_option_find(const char *name)
{
    if (!name)
        return -1;
    int n = bome_option_count(), method, slot;
    for (int i = 0; i < n; i++) {
        const opt_setting *d = setting_at(i, &method, &slot);
        if (!strcmp(d->info.name, name) || (d->info.alias && !strcmp(d->info.alias, name)))
            return i;
    }
    return -1;
}

static double get(const bome_options *o, const opt_setting *d, int slot)
{
    const char *base = (const char *)o + d->offset;
    switch (d->ctype) {
    case OPT_CT_SLOT: return o->param[slot];
    case OPT_CT_INT: return *(const int *)(const void *)base;
    case OPT_CT_LONG: return (double)*(const long *)(const void *)base;
    case OPT_CT_U64: return (double)*(const uint64_t *)(const void *)base;
    case OPT_CT_ENUM: return (double)*(const bome_update *)(const void *)base;
    default: return *(const double *)(const void *)base;
    }
}

static void put(bome_options *o, const opt_setting *d, int slot, double x)
{
    char *base = (char *)o + d->offset;
    switch (d->ctype) {
    case OPT_CT_SLOT: o->param[slot] = x; break;
    case OPT_CT_INT: *(int *)(void *)base = (int)x; break;
    case OPT_CT_LONG: *(long *)(void *)base = (long)x; break;
    case OPT_CT_U64: *(uint64_t *)(void *)base = (uint64_t)x; break;
    case OPT_CT_ENUM: *(bome_update *)(void *)base = (bome_update)(int)x; break;
    default: *(double *)(void *)base = x; break;
    }
}

/* Why x is not a value of d, or NULL if it is. */
static const char *invalid(const bome_option_info *d, double x)
{
    if (isnan(x))
        return "is not a number";
    if (d->type != BOME_OPTION_REAL && x != floor(x))
        return d->type == BOME_OPTION_CHOICE ? "is not one of the choices" : "is not a whole number";
    if (x < d->lo || x > d->hi || ((d->open & BOME_OPEN_LO) && x == d->lo) || ((d->open & BOME_OPEN_HI) && x == d->hi))
        return d->type == BOME_OPTION_CHOICE ? "is not one of the choices" : "is out of range";
    if (isinf(x))
        return "is not finite";
    return NULL;
}

static void describe_range(const bome_option_info *d, char *buf, size_t len)
{
    if (d->type == BOME_OPTION_CHOICE)
        snprintf(buf, len, "one of %s", d->choices);
    else if (d->hi >= BIG)
        snprintf(buf, len, "%s %g", d->open & BOME_OPEN_LO ? ">" : ">=", d->lo);
    else
        snprintf(buf, len, "in %c%g, %g%c", d->open & BOME_OPEN_LO ? '(' : '[', d->lo, d->hi,
                 d->open & BOME_OPEN_HI ? ')' : ']');
}

void bome_options_default(bome_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    int n = bome_option_count(), method, slot;
    for (int i = 0; i < n; i++) {
        const opt_setting *d = setting_at(i, &method, &slot);
        put(o, d, slot, d->info.def);
    }
}

int bome_options_set(bome_options *o, const char *name, double value)
{
    int i = bome_option_find(name), method, slot;
    if (!o || i < 0)
        return BOME_ERR_ARG;
    const opt_setting *d = setting_at(i, &method, &slot);
    if (invalid(&d->info, value))
        return BOME_ERR_ARG;
    put(o, d, slot, value);
    return BOME_OK;
}

int bome_options_get(const bome_options *o, const char *name, double *value)
{
    int i = bome_option_find(name), method, slot;
    if (!o || !value || i < 0)
        return BOME_ERR_ARG;
    const opt_setting *d = setting_at(i, &method, &slot); /* sets slot before get reads it */
    *value = get(o, d, slot);
    return BOME_OK;
}

static int check(const bome_options *o, char *msg, size_t len)
{
    if ((int)o->method < 0 || (int)o->method >= bome_method_count()) {
        snprintf(msg, len, "options: method = %d is not a bome_method (0..%d)", (int)o->method, bome_method_count() - 1);
        return BOME_ERR_ARG;
    }
    const bome_workers *w = o->workers;
    if (w && (w->size < 1 || w->rank < 0 || w->rank >= w->size || !w->sum || !w->broadcast)) {
        snprintf(msg, len, "options: workers: rank %d of %d, sum %s, broadcast %s; need 0 <= rank < size and both "
                 "functions", w->rank, w->size, w->sum ? "set" : "NULL", w->broadcast ? "set" : "NULL");
        return BOME_ERR_ARG;
    }
    int n = bome_option_count(), method, slot;
    for (int i = 0; i < n; i++) {
        const opt_setting *d = setting_at(i, &method, &slot);
        if (method >= 0 && method != (int)o->method)
            continue;
        double x = get(o, d, slot);
        const char *why = invalid(&d->info, x);
        if (why) {
            char range[64];
            describe_range(&d->info, range, sizeof range);
            snprintf(msg, len, "options: %s = %g %s; it must be %s%s%s", d->info.name, x, why, range,
                     method >= 0 ? " for " : "", method >= 0 ? bome_method_name(method) : "");
            return BOME_ERR_ARG;
        }
    }
    return BOME_OK;
}

int bome_options_check(const bome_options *o, char *msg, size_t msglen)
{
    char scratch[1];
    if (!msg) {
        msg = scratch;
        msglen = sizeof scratch;
    }
    if (!o) {
        snprintf(msg, msglen, "options: NULL");
        return BOME_ERR_ARG;
    }
    return check(o, msg, msglen);
}

int opt_check_options(bome_solver *s, const bome_options *o)
{
    char msg[sizeof s->msg];
    int rc = check(o, msg, sizeof msg);
    return rc ? opt_fail(s, rc, "%s", msg) : BOME_OK;
}
