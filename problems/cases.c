/* The registry of the paper's small problems, for the CLI and the tests. */
#include "cases.h"

#include <stdlib.h>
#include <string.h>

const bome_case *const bome_cases[] = {
    &bome_case_coreset, &bome_case_nonsingleton, &bome_case_minimax, &bome_case_ridge, &bome_case_ufo_toy, &bome_case_sinusoid, NULL,
};

const bome_case *bome_case_find(const char *name)
{
    for (int i = 0; name && bome_cases[i]; i++)
        if (strcmp(bome_cases[i]->name, name) == 0)
            return bome_cases[i];
    return NULL;
}

/* Remembers a variable for printing. */
static void show(bome_case_run *r, const char *name, const bome_real *values, bome_shape shape)
{
    r->show_name[r->n_show] = name;
    r->show_values[r->n_show] = values;
    r->show_size[r->n_show] = shape.rows * shape.cols;
    r->n_show++;
}

int bome_case_toy(bome_case_run *r, void *state, const char *v_name, bome_shape v_shape, bome_real *v,
                  const char *x_name, bome_shape x_shape, bome_real *x, bome_objective_fn f, bome_objective_fn g)
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

void bome_case_free(bome_case_run *r)
{
    bome_problem_free(r->problem);
    free(r->state);
}

double bome_case_param_value(const bome_case *c, const bome_case_run *r, int i)
{
    return r->params ? r->params[i] : c->params[i].def;
}
