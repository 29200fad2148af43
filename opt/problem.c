/* A bilevel problem's declarations: variables, data, bounds, objectives. */
#include "solver.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int opt_error(bome_problem *p, int code, const char *fmt, ...)
{
    if (p->status != BOME_OK)
        return code;
    p->status = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->msg, sizeof p->msg, fmt, ap);
    va_end(ap);
    return code;
}

bome_problem *bome_problem_new(void)
{
    return calloc(1, sizeof(bome_problem));
}

void bome_problem_free(bome_problem *p)
{
    if (!p)
        return;
    free(p->vars[0]);
    free(p->vars[1]);
    free(p->data);
    free(p->inner_start);
    free(p);
}

int bome_problem_status(const bome_problem *p) { return p ? p->status : BOME_ERR_ARG; }
const char *bome_problem_errmsg(const bome_problem *p) { return p ? p->msg : "no problem (NULL)"; }

static bool shape_ok(bome_shape s)
{
    return (s.rank == 0 && s.rows == 1 && s.cols == 1) || (s.rank == 1 && s.rows == 1 && s.cols >= 1) ||
           (s.rank == 2 && s.rows >= 1 && s.cols >= 1);
}

static void copy_name(char dst[64], const char *name, const char *fallback, int index)
{
    if (name)
        snprintf(dst, 64, "%s", name);
    else
        snprintf(dst, 64, "%s%d", fallback, index);
}

static int add_var(bome_problem *p, int which, const char *fn, const char *name, bome_shape shape, bome_real *values)
{
    if (!p)
        return -1;
    if (!values) {
        opt_error(p, BOME_ERR_ARG, "%s: values for '%s' are NULL (pass your starting point)", fn, name ? name : "");
        return -1;
    }
    if (!shape_ok(shape)) {
        opt_error(p, BOME_ERR_SHAPE, "%s: '%s' has an invalid shape (rank %d, %d x %d)", fn, name ? name : "",
                  shape.rank, shape.rows, shape.cols);
        return -1;
    }
    if (p->n_vars[which] == p->cap_vars[which]) {
        int cap = p->cap_vars[which] ? 2 * p->cap_vars[which] : 4;
        opt_var *nv = realloc(p->vars[which], (size_t)cap * sizeof *nv);
        if (!nv) {
            opt_error(p, BOME_ERR_NOMEM, "%s: out of memory", fn);
            return -1;
        }
        p->vars[which] = nv;
        p->cap_vars[which] = cap;
    }
    opt_var *v = &p->vars[which][p->n_vars[which]];
    memset(v, 0, sizeof *v);
    copy_name(v->name, name, which == BOME_OUTER ? "v" : "theta", p->n_vars[which]);
    v->shape = shape;
    v->size = (size_t)shape.rows * (size_t)shape.cols;
    v->values = values;
    return p->n_vars[which]++;
}

int bome_problem_add_outer(bome_problem *p, const char *name, bome_shape shape, bome_real *values)
{
    return add_var(p, BOME_OUTER, "bome_problem_add_outer", name, shape, values);
}

int bome_problem_add_inner(bome_problem *p, const char *name, bome_shape shape, bome_real *values)
{
    return add_var(p, BOME_INNER, "bome_problem_add_inner", name, shape, values);
}

static opt_data *add_data(bome_problem *p, const char *fn, const char *name, const void *values)
{
    if (!p)
        return NULL;
    if (!values) {
        opt_error(p, BOME_ERR_ARG, "%s: values for '%s' are NULL", fn, name ? name : "");
        return NULL;
    }
    if (p->n_data == p->cap_data) {
        int cap = p->cap_data ? 2 * p->cap_data : 4;
        opt_data *nd = realloc(p->data, (size_t)cap * sizeof *nd);
        if (!nd) {
            opt_error(p, BOME_ERR_NOMEM, "%s: out of memory", fn);
            return NULL;
        }
        p->data = nd;
        p->cap_data = cap;
    }
    opt_data *d = &p->data[p->n_data];
    memset(d, 0, sizeof *d);
    copy_name(d->name, name, "data", p->n_data);
    return d;
}

int bome_problem_add_input(bome_problem *p, const char *name, bome_shape shape, const bome_real *values)
{
    if (p && !shape_ok(shape)) {
        opt_error(p, BOME_ERR_SHAPE, "bome_problem_add_input: '%s' has an invalid shape (rank %d, %d x %d)",
                  name ? name : "", shape.rank, shape.rows, shape.cols);
        return -1;
    }
    opt_data *d = add_data(p, "bome_problem_add_input", name, values);
    if (!d)
        return -1;
    d->shape = shape;
    d->values = values;
    return p->n_data++;
}

int bome_problem_add_labels(bome_problem *p, const char *name, int n, const int32_t *values)
{
    if (p && n < 1) {
        opt_error(p, BOME_ERR_SHAPE, "bome_problem_add_labels: '%s' needs n >= 1 (got %d)", name ? name : "", n);
        return -1;
    }
    opt_data *d = add_data(p, "bome_problem_add_labels", name, values);
    if (!d)
        return -1;
    d->shape = BOME_VECTOR(n);
    d->labels = true;
    d->labels_values = values;
    return p->n_data++;
}

/* Variable `index` of kind `which`, or NULL with the error recorded. */
static opt_var *var_at(bome_problem *p, const char *fn, int which, int index)
{
    if (which != BOME_OUTER && which != BOME_INNER) {
        opt_error(p, BOME_ERR_ARG, "%s: which = %d is neither BOME_OUTER nor BOME_INNER", fn, which);
        return NULL;
    }
    if (index < 0 || index >= p->n_vars[which]) {
        opt_error(p, BOME_ERR_ARG, "%s: no %s variable %d (there are %d)", fn, which == BOME_OUTER ? "outer" : "inner",
                  index, p->n_vars[which]);
        return NULL;
    }
    return &p->vars[which][index];
}

int bome_problem_set_bounds(bome_problem *p, int which, int index, bome_real lo, bome_real hi)
{
    if (!p)
        return BOME_ERR_ARG;
    opt_var *v = var_at(p, "bome_problem_set_bounds", which, index);
    if (!v)
        return BOME_ERR_ARG;
    if (isnan(lo) || isnan(hi) || lo > hi)
        return opt_error(p, BOME_ERR_ARG, "bome_problem_set_bounds: '%s': lo = %g is above hi = %g", v->name, lo, hi);
    v->bounded = true;
    v->lo = lo;
    v->hi = hi;
    return BOME_OK;
}

int bome_problem_set_sharded(bome_problem *p, int which, int index)
{
    if (!p)
        return BOME_ERR_ARG;
    opt_var *v = var_at(p, "bome_problem_set_sharded", which, index);
    if (!v)
        return BOME_ERR_ARG;
    v->sharded = true;
    return BOME_OK;
}

int bome_problem_set_objectives(bome_problem *p, bome_objective_fn f, bome_objective_fn g, void *ctx)
{
    if (!p)
        return BOME_ERR_ARG;
    if (!f || !g)
        return opt_error(p, BOME_ERR_ARG, "bome_problem_set_objectives: %s is NULL", !f ? "f" : "g");
    p->f = f;
    p->g = g;
    p->ctx = ctx;
    return BOME_OK;
}

int bome_problem_set_inner_start(bome_problem *p, int inner, int outer)
{
    if (!p)
        return BOME_ERR_ARG;
    if (inner < 0 || inner >= p->n_vars[BOME_INNER] || outer < 0 || outer >= p->n_vars[BOME_OUTER])
        return opt_error(p, BOME_ERR_ARG, "bome_problem_set_inner_start: no inner variable %d or outer variable %d "
                         "(there are %d and %d)", inner, outer, p->n_vars[BOME_INNER], p->n_vars[BOME_OUTER]);
    const opt_var *t = &p->vars[BOME_INNER][inner], *v = &p->vars[BOME_OUTER][outer];
    if (t->shape.rows != v->shape.rows || t->shape.cols != v->shape.cols)
        return opt_error(p, BOME_ERR_SHAPE, "bome_problem_set_inner_start: '%s' is %d x %d, '%s' %d x %d", t->name,
                         t->shape.rows, t->shape.cols, v->name, v->shape.rows, v->shape.cols);
    if (!p->inner_start) {
        /* sized for the inner variables declared so far; more may not follow */
        p->inner_start = malloc((size_t)p->n_vars[BOME_INNER] * sizeof *p->inner_start);
        if (!p->inner_start)
            return opt_error(p, BOME_ERR_NOMEM, "bome_problem_set_inner_start: out of memory");
        for (int j = 0; j < p->n_vars[BOME_INNER]; j++)
            p->inner_start[j] = -1;
        p->n_start = p->n_vars[BOME_INNER];
    }
    if (inner >= p->n_start)
        return opt_error(p, BOME_ERR_STATE, "bome_problem_set_inner_start: declare every inner variable first");
    p->inner_start[inner] = outer;
    return BOME_OK;
}

int bome_problem_set_tasks(bome_problem *p, int batch, bome_task_fn draw, void *ud)
{
    if (!p)
        return BOME_ERR_ARG;
    if (batch < 1 || !draw)
        return opt_error(p, BOME_ERR_ARG, "bome_problem_set_tasks: batch = %d and draw %s; need batch >= 1 and a draw "
                         "function", batch, draw ? "set" : "NULL");
    p->batch = batch;
    p->draw = draw;
    p->draw_ud = ud;
    return BOME_OK;
}

int bome_problem_set_batches(bome_problem *p, bome_batch_fn draw, void *ud)
{
    if (!p)
        return BOME_ERR_ARG;
    if (!draw)
        return opt_error(p, BOME_ERR_ARG, "bome_problem_set_batches: draw is NULL");
    p->batch_draw = draw;
    p->batch_ud = ud;
    return BOME_OK;
}
