/* The small problem the opt fuzzers drive: the paper's coreset toy, written
 * with the public API only, so that the harnesses depend on nothing but the
 * installed headers. */
#ifndef FUZZ_PROBLEM_H
#define FUZZ_PROBLEM_H

#include <bome/opt.h>

#include <string.h>

static const bome_real FZ_C[8] = {1, 3, 3, 1, -2, 2, -3, -2}, FZ_Y[2] = {3, -2};

static bome_node *fz_f(bome_graph *g, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_node *y = bome_const(g, BOME_VECTOR(2), FZ_Y);
    return bome_scale(g, bome_sumsq(g, bome_sub(g, x->theta[0], y)), 0.1);
}

static bome_node *fz_g(bome_graph *g, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_node *c = bome_const(g, BOME_MATRIX(4, 2), FZ_C);
    return bome_sumsq(g, bome_sub(g, bome_matvec(g, c, 1, bome_softmax(g, x->v[0])), x->theta[0]));
}

typedef struct fz_run {
    bome_real w[4], xy[2];
    bome_problem *p;
    bome_solver *s;
} fz_run;

/* A solver of method m with Adam and a kept inner momentum, so that a
 * checkpoint carries every kind of buffer. */
static int fz_open(fz_run *r, int m)
{
    memset(r, 0, sizeof *r);
    r->xy[1] = 3;
    r->p = bome_problem_new();
    bome_problem_add_outer(r->p, "w", BOME_VECTOR(4), r->w);
    bome_problem_add_inner(r->p, "x", BOME_VECTOR(2), r->xy);
    bome_problem_set_objectives(r->p, fz_f, fz_g, NULL);
    bome_options o;
    bome_options_default(&o);
    o.method = (bome_method)m;
    o.T = 3;
    o.update = BOME_UPDATE_ADAM;
    o.inner_momentum = 0.5;
    o.inner_momentum_keep = 1;
    r->s = bome_solver_new(r->p, &o);
    return r->s ? bome_solver_status(r->s) : BOME_ERR_NOMEM;
}

static void fz_close(fz_run *r)
{
    bome_solver_free(r->s);
    bome_problem_free(r->p);
}

#endif
