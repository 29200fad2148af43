/* The registry of the problems and the pieces every case shares. */
#include "cases.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const prob_case *const prob_cases[] = {
#define PROB(id) &prob_##id,
#include "registry.h"
#undef PROB
    NULL,
};

const prob_case *prob_find(const char *name)
{
    for (int i = 0; name && prob_cases[i]; i++)
        if (strcmp(prob_cases[i]->name, name) == 0)
            return prob_cases[i];
    return NULL;
}

/* Remembers a variable for printing. */
static void show(prob_run *r, const char *name, const bome_real *values, bome_shape shape)
{
    r->show_name[r->n_show] = name;
    r->show_values[r->n_show] = values;
    r->show_size[r->n_show] = shape.rows * shape.cols;
    r->n_show++;
}

int prob_toy(prob_run *r, void *state, const char *v_name, bome_shape v_shape, bome_real *v, const char *x_name,
             bome_shape x_shape, bome_real *x, bome_objective_fn f, bome_objective_fn g)
{
    r->state = state;
    r->problem = bome_problem_new();
    if (!r->problem)
        return BOME_ERR_NOMEM;
    bome_problem_add_outer(r->problem, v_name, v_shape, v);
    bome_problem_add_inner(r->problem, x_name, x_shape, x);
    bome_problem_set_objectives(r->problem, f, g, NULL);
    show(r, x_name, x, x_shape);
    show(r, v_name, v, v_shape);
    return bome_problem_status(r->problem);
}

void prob_free(prob_run *r)
{
    bome_problem_free(r->problem);
    free(r->state);
}

prob_value prob_default(const prob_param *p)
{
    prob_value v = {.x = p->type == PROB_SWITCH ? 0 : p->def, .s = p->text};
    memcpy(v.sizes, p->sizes, sizeof v.sizes);
    return v;
}

double prob_real(const prob_case *c, const prob_run *r, int i)
{
    return r->params ? r->params[i].x : prob_default(&c->params[i]).x;
}

const char *prob_text(const prob_case *c, const prob_run *r, int i)
{
    return r->params ? r->params[i].s : c->params[i].text;
}

const int *prob_sizes(const prob_case *c, const prob_run *r, int i)
{
    return r->params ? r->params[i].sizes : c->params[i].sizes;
}

void prob_note(const prob_run *r, const char *fmt, ...)
{
    if (!r->note)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    r->note(r->ud, line);
}

void prob_progress(const prob_run *r, const char *what, long done, long total, double value)
{
    if (r->progress)
        r->progress(r->ud, what, done, total, value);
}
