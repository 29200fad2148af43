/* The paper's minimax toy: the inner player maximizes x w in a box, the
 * outer one minimizes it. The answer is w = 0, where every x ties. */
#include "cases.h"

#include <math.h>
#include <stdlib.h>

typedef struct { bome_real w[1], x[1]; } state;

static bome_node *f(bome_graph *g, const bome_vars *x, void *ctx)
{
    (void)ctx;
    return bome_mul(g, x->theta[0], x->v[0]);
}

static bome_node *g_(bome_graph *g, const bome_vars *x, void *ctx)
{
    (void)ctx;
    return bome_neg(g, bome_mul(g, x->theta[0], x->v[0]));
}

static void defaults(bome_options *o)
{
    bome_options_default(o);
    o->T = 10;
    o->alpha = o->lr_outer = o->lr_inner = 0.05;
    o->eta = 0.5;
    o->max_steps = 200;
}

static int create(bome_case_run *r, int start, uint64_t seed, char *err, size_t errlen)
{
    (void)start;
    (void)seed;
    (void)err;
    (void)errlen;
    state *s = calloc(1, sizeof *s);
    if (!s)
        return BOME_ERR_NOMEM;
    s->w[0] = 4;
    s->x[0] = 4;
    r->state = s;
    r->problem = bome_problem_new();
    bome_problem_add_outer(r->problem, "w", BOME_SCALAR, s->w);
    bome_problem_add_inner(r->problem, "x", BOME_SCALAR, s->x);
    bome_problem_set_bounds(r->problem, BOME_OUTER, 0, -10, 10);
    bome_problem_set_bounds(r->problem, BOME_INNER, 0, -10, 10);
    bome_problem_set_objectives(r->problem, f, g_, NULL);
    r->n_show = 2;
    r->show_name[0] = "x", r->show_values[0] = s->x, r->show_size[0] = 1;
    r->show_name[1] = "w", r->show_values[1] = s->w, r->show_size[1] = 1;
    return bome_problem_status(r->problem);
}

static void destroy(bome_case_run *r)
{
    bome_problem_free(r->problem);
    free(r->state);
}

static double error(const bome_case_run *r)
{
    const state *s = r->state;
    return fabs(s->w[0]);
}

const bome_case bome_case_minimax = {
    "minimax", "the paper's minimax toy: f = x w, g = -x w, x and w in [-10, 10]",
    200, 1, defaults, create, destroy, error,
};
