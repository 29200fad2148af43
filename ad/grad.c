/* Reverse mode as tape extension: bome_grad walks the tape backwards from y
 * and asks each op for the nodes of its sources' adjoints, so the gradient is
 * itself ordinary tape that can be evaluated, planned or differentiated. */
#include "internal.h"

#include <string.h>

/* Whether gradient flows through n: a stop-gradient and every leaf that is
 * not a parameter end it. */
static bool passes_gradient(const bome_node *n) { return n->kind == NODE_OP && n->op->backward; }

static bome_node *accumulate(bome_graph *g, bome_node *have, bome_node *more, const bome_node *src)
{
    if (!more)
        return have;
    if (more->shape.rank != src->shape.rank && more->size == src->size)
        more = bome_reshape(g, more, src->shape);
    return have ? bome_add(g, have, more) : more;
}

int bome_grad(bome_graph *g, bome_node *y, int n, bome_node *const *wrt, bome_node **out)
{
    /* Every out[i] is NULL on any error, so that a caller who checks the
     * status once after building never passes on an uninitialized node. */
    for (int i = 0; out && i < n; i++)
        out[i] = NULL;
    if (!g)
        return BOME_ERR_ARG;
    if (!y || n < 0 || (n > 0 && (!wrt || !out)))
        return ad_error(g, BOME_ERR_ARG, "bome_grad: %s", !y ? "y is NULL" : "wrt or out is NULL");
    if (!ad_own(g, y, "bome_grad, y"))
        return BOME_ERR_ARG;
    for (int i = 0; i < n; i++) {
        if (!wrt[i])
            return ad_error(g, BOME_ERR_ARG, "bome_grad: wrt[%d] is NULL", i);
        if (!ad_own(g, wrt[i], "bome_grad, wrt[%d]", i))
            return BOME_ERR_ARG;
        if (wrt[i]->kind != NODE_PARAM && wrt[i]->kind != NODE_OP)
            return ad_error(g, BOME_ERR_KIND,
                            "bome_grad: wrt[%d] is a %s node; gradients are taken with respect to params or op nodes",
                            i, wrt[i]->op->name);
    }
    if (y->size != 1) {
        char sy[40];
        return ad_error(g, BOME_ERR_SHAPE, "bome_grad: y (%s, node %d) is %s; the gradient needs a scalar",
                        y->op->name, y->id, ad_shape_str(y->shape, sy));
    }
    if (g->status)
        return g->status;

    size_t top = (size_t)y->id + 1, bytes;
    void *scratch = ad_mul(top, sizeof(bome_node *) + 1, &bytes) ? ad_raw_alloc(g, bytes) : NULL;
    if (!scratch)
        return ad_error(g, BOME_ERR_NOMEM, "bome_grad: out of memory for %zu nodes", top);
    bome_node **adj = scratch;
    unsigned char *dep = (unsigned char *)(adj + top);
    memset(scratch, 0, bytes);

    /* dep: the node's value changes with some wrt through differentiable ops. */
    for (int i = 0; i < n; i++)
        if ((size_t)wrt[i]->id < top)
            dep[wrt[i]->id] = 1;
    for (size_t id = 0; id < top; id++) {
        bome_node *v = g->nodes[id];
        if (!passes_gradient(v))
            continue;
        for (int s = 0; s < v->nsrc; s++)
            if (dep[v->src[s]->id])
                dep[id] = 1;
    }

    if (dep[y->id]) {
        bome_real one = 1.0;
        adj[y->id] = bome_const(g, y->shape, &one);
    }
    for (size_t id = top; id-- > 0;) {
        bome_node *v = g->nodes[id];
        if (!adj[id] || !dep[id] || !passes_gradient(v))
            continue;
        bool need[MAX_SRC] = {false}, any = false;
        bome_node *d[MAX_SRC] = {NULL};
        for (int s = 0; s < v->nsrc; s++)
            any |= need[s] = dep[v->src[s]->id];
        if (!any) /* an op node in wrt: the sweep ends there */
            continue;
        v->op->backward(g, v, adj[id], need, d);
        if (g->status)
            break;
        for (int s = 0; s < v->nsrc; s++)
            if (need[s])
                adj[v->src[s]->id] = accumulate(g, adj[v->src[s]->id], d[s], v->src[s]);
    }

    for (int i = 0; i < n && !g->status; i++) {
        bome_node *a = (size_t)wrt[i]->id < top ? adj[wrt[i]->id] : NULL;
        out[i] = a ? a : ad_zeros(g, wrt[i]->shape);
    }
    ad_raw_free(g, scratch, bytes);
    if (g->status)
        for (int i = 0; i < n; i++)
            out[i] = NULL;
    return g->status;
}
