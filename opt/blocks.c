/* Dot products, norms and copies over the blocks of (v, theta): BOME's
 * lambda and every hypergradient method take them over all blocks at once,
 * never per tensor; in a data-parallel run the sharded blocks' parts are
 * summed across the workers, the replicated ones counted once. Also the
 * inputs through which a plan reads the solver's own theta-shaped buffers. */
#include "solver.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* acc + <x, y> over m values, summed in order onto acc: one running sum
 * over the blocks, as it was before sharded blocks existed. */
static double dot_onto(double acc, const bome_real *x, const bome_real *y, size_t m)
{
    for (size_t i = 0; i < m; i++)
        acc += x[i] * y[i];
    return acc;
}

/* Block k of a list given as nodes or as buffers. */
static const bome_real *block(bome_node *const *nodes, bome_real *const *bufs, int k)
{
    return nodes ? bome_data(nodes[k]) : bufs[k];
}

/* <a, b> over blocks [from, from + n) onto *rep (replicated blocks) and
 * *shard (sharded ones), each side given as nodes or as buffers. */
static void dot_parts(const bome_solver *s, int from, int n, bome_node *const *an, bome_real *const *ab,
                      bome_node *const *bn, bome_real *const *bb, double *rep, double *shard, bool *sharded)
{
    for (int k = 0; k < n; k++) {
        bool sh = opt_sharded(s, from + k);
        double *acc = sh ? shard : rep;
        *sharded |= sh;
        *acc = dot_onto(*acc, block(an, ab, k), block(bn, bb, k), s->var[from + k]->size);
    }
}

void opt_dots_nodes(bome_solver *s, int from, int n, int m, bome_node *const *const *a, bome_node *const *const *b,
                    double *out)
{
    double rep[4] = {0}, shard[4] = {0};
    bool sharded = false;
    m = m < 4 ? m : 4;
    for (int i = 0; i < m; i++)
        dot_parts(s, from, n, a[i], NULL, b[i], NULL, &rep[i], &shard[i], &sharded);
    opt_totals(s, m, rep, shard, sharded, out);
}

double opt_dot_nodes(bome_solver *s, int from, int n, bome_node *const *a, bome_node *const *b)
{
    double d;
    opt_dots_nodes(s, from, n, 1, &a, &b, &d);
    return d;
}

/* One dot product, with its sum across the workers. */
static double one_dot(bome_solver *s, int from, int n, bome_node *const *an, bome_real *const *ab,
                      bome_node *const *bn, bome_real *const *bb)
{
    double rep = 0, shard = 0, d;
    bool sharded = false;
    dot_parts(s, from, n, an, ab, bn, bb, &rep, &shard, &sharded);
    opt_totals(s, 1, &rep, &shard, sharded, &d);
    return d;
}

double opt_dot_bufs(bome_solver *s, int from, int n, bome_real *const *a, bome_real *const *b)
{
    return one_dot(s, from, n, NULL, a, NULL, b);
}

double opt_dot_nodes_bufs(bome_solver *s, int from, int n, bome_node *const *a, bome_real *const *b)
{
    return one_dot(s, from, n, a, NULL, NULL, b);
}

bome_node *opt_share_dot(bome_solver *s, int from, bome_node *const *a, bome_node *const *b, int n)
{
    bome_node *sum = NULL;
    for (int j = 0; j < n; j++) {
        bome_node *d = bome_dot(s->g, a[j], b[j]);
        if (!opt_sharded(s, from + j))
            d = bome_once(s->g, d);
        sum = sum ? bome_add(s->g, sum, d) : d;
    }
    return sum;
}

bome_node *opt_block_dot(bome_graph *g, bome_node *const *a, bome_node *const *b, int n)
{
    bome_node *sum = NULL;
    for (int j = 0; j < n; j++) {
        bome_node *d = bome_dot(g, a[j], b[j]);
        sum = sum ? bome_add(g, sum, d) : d;
    }
    return sum;
}

void opt_nodes_to_vars(bome_solver *s, int from, int n, bome_node *const *a)
{
    for (int k = 0; k < n; k++)
        memcpy(s->var[from + k]->values, bome_data(a[k]), s->var[from + k]->size * sizeof(bome_real));
}

void opt_vars_to_nodes(bome_solver *s, int from, int n, bome_node *const *a)
{
    for (int k = 0; k < n; k++)
        memcpy(bome_data(a[k]), s->var[from + k]->values, s->var[from + k]->size * sizeof(bome_real));
}

bool opt_nodes_finite(bome_solver *s, int from, int n, bome_node *const *a)
{
    double bad[1] = {0}, shard[1] = {0}, out;
    bool sharded = false;
    for (int k = 0; k < n; k++) {
        bool sh = opt_sharded(s, from + k);
        sharded |= sh;
        const bome_real *x = bome_data(a[k]);
        for (size_t i = 0; i < bome_size(a[k]); i++)
            if (!isfinite(x[i])) {
                *(sh ? shard : bad) = 1;
                break;
            }
    }
    /* a sharded block may be non-finite on one worker only: all must stop */
    opt_totals(s, 1, bad, shard, sharded, &out);
    return out == 0;
}

void opt_bound_inputs(bome_solver *s, const char *prefix, bome_real *const *buf, bome_node **out)
{
    for (int j = 0; j < s->nt; j++) {
        const opt_var *v = s->var[s->nv + j];
        char name[80];
        snprintf(name, sizeof name, "%s_%s", prefix, v->name);
        out[j] = bome_input(s->g, name, v->shape);
        bome_bind(s->g, out[j], buf[j]);
    }
}
