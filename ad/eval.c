/* Evaluation: mark what the outputs need, then run it in tape order. */
#include "internal.h"

#include <string.h>

static bool check_outs(bome_graph *g, const char *fn, int n, bome_node *const *outs)
{
    if (n < 1 || !outs) {
        ad_error(g, BOME_ERR_ARG, "%s: no nodes to evaluate", fn);
        return false;
    }
    for (int i = 0; i < n; i++) {
        if (!outs[i]) {
            ad_error(g, BOME_ERR_ARG, "%s: outs[%d] is NULL", fn, i);
            return false;
        }
        if (!ad_own(g, outs[i], "%s, outs[%d]", fn, i))
            return false;
    }
    return true;
}

/* Marks in g->mark every op node the outputs depend on; returns the highest
 * id marked plus one, or 0 on allocation failure. */
static size_t mark_needed(bome_graph *g, int n, bome_node *const *outs)
{
    if (g->cap_mark < g->n_nodes) {
        /* No wrap even in 32 bits: the tape stops at INT_MAX nodes. */
        size_t cap = g->n_nodes + g->n_nodes / 2 + 64;
        unsigned char *m = g->alloc(g->ud, g->mark, g->cap_mark, cap);
        if (!m) {
            ad_error(g, BOME_ERR_NOMEM, "out of memory marking %zu nodes", cap);
            return 0;
        }
        g->bytes += cap - g->cap_mark;
        g->mark = m;
        g->cap_mark = cap;
    }
    size_t top = 0;
    for (int i = 0; i < n; i++)
        if ((size_t)outs[i]->id + 1 > top)
            top = (size_t)outs[i]->id + 1;
    memset(g->mark, 0, top);
    for (int i = 0; i < n; i++)
        g->mark[outs[i]->id] = 1;
    for (size_t id = top; id-- > 0;) {
        const bome_node *v = g->nodes[id];
        if (!g->mark[id])
            continue;
        for (int s = 0; s < v->nsrc; s++)
            g->mark[v->src[s]->id] = 1;
    }
    return top;
}

static int run(bome_graph *g, bome_node *v)
{
    if (v->kind != NODE_OP)
        return BOME_OK;
    return v->op->forward(g, v);
}

int bome_eval(bome_graph *g, int n, bome_node *const *outs)
{
    if (!g)
        return BOME_ERR_ARG;
    if (!check_outs(g, "bome_eval", n, outs))
        return g->status;
    size_t top = mark_needed(g, n, outs);
    if (!top)
        return g->status;
    for (size_t id = 0; id < top; id++)
        if (g->mark[id]) {
            int rc = run(g, g->nodes[id]);
            if (rc)
                return rc;
        }
    return BOME_OK;
}

bome_plan *bome_plan_new(bome_graph *g, int n, bome_node *const *outs)
{
    if (!g || !check_outs(g, "bome_plan_new", n, outs))
        return NULL;
    size_t top = mark_needed(g, n, outs);
    if (!top)
        return NULL;
    size_t count = 0;
    for (size_t id = 0; id < top; id++)
        count += g->mark[id] && g->nodes[id]->kind == NODE_OP;
    bome_plan *p = ad_alloc(g, sizeof *p);
    bome_node **list = ad_alloc_array(g, count ? count : 1, sizeof *list);
    if (!p || !list)
        return NULL;
    p->g = g;
    p->run = list;
    for (size_t id = 0; id < top; id++)
        if (g->mark[id] && g->nodes[id]->kind == NODE_OP)
            list[p->n_run++] = g->nodes[id];
    if (ad_plan_tile(p))
        return NULL;
    return p;
}

int bome_plan_run(bome_plan *p)
{
    if (!p)
        return BOME_ERR_ARG;
    if (p->rows)
        return ad_plan_run_tiled(p);
    for (size_t i = 0; i < p->n_run; i++) {
        bome_node *v = p->run[i];
        int rc = v->op->forward(p->g, v);
        if (rc)
            return rc;
    }
    return BOME_OK;
}

size_t bome_plan_size(const bome_plan *p) { return p ? p->n_run : 0; }
int bome_plan_tiled_rows(const bome_plan *p) { return p ? p->rows : 0; }
