/* Dot products, norms and copies over the blocks of (v, theta): BOME's
 * lambda and every hypergradient method take them over all blocks at once,
 * never per tensor. Also the inputs through which a plan reads the
 * solver's own theta-shaped buffers. */
#include "solver.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

double opt_dot_nodes(bome_node *const *a, bome_node *const *b, int n)
{
    double s = 0;
    for (int k = 0; k < n; k++) {
        const bome_real *x = bome_data(a[k]), *y = bome_data(b[k]);
        size_t m = bome_size(a[k]);
        for (size_t i = 0; i < m; i++)
            s += x[i] * y[i];
    }
    return s;
}

double opt_dot_bufs(const bome_solver *s, int from, int n, bome_real *const *a, bome_real *const *b)
{
    double d = 0;
    for (int k = 0; k < n; k++)
        for (size_t i = 0; i < s->var[from + k]->size; i++)
            d += a[k][i] * b[k][i];
    return d;
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

bool opt_nodes_finite(bome_node *const *a, int n)
{
    bool finite = true;
    for (int k = 0; k < n; k++) {
        const bome_real *x = bome_data(a[k]);
        for (size_t i = 0; i < bome_size(a[k]); i++)
            finite = finite && isfinite(x[i]);
    }
    return finite;
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
