/* The sum over the workers of a data-parallel run: the one op that talks
 * to other processes, through the function the graph's owner sets (ad
 * knows no transport). */
#include "internal.h"

#include <string.h>

int bome_graph_set_workers(bome_graph *g, int worker, int workers, bome_sum_fn sum, void *ud)
{
    if (!g)
        return BOME_ERR_ARG;
    if (workers < 1 || worker < 0 || worker >= workers || (workers > 1 && !sum))
        return ad_error(g, BOME_ERR_ARG, "bome_graph_set_workers: worker %d of %d, sum %s; need 0 <= worker < workers "
                        "and a sum function for more than one", worker, workers, sum ? "set" : "NULL");
    g->worker = worker;
    g->workers = workers;
    g->sum = sum;
    g->sum_ud = ud;
    return BOME_OK;
}

int bome_graph_worker(const bome_graph *g) { return g ? g->worker : 0; }
int bome_graph_workers(const bome_graph *g) { return g ? g->workers : 1; }

bome_node *bome_once(bome_graph *g, bome_node *term)
{
    if (!ad_check(g, "once", 1, &term))
        return NULL;
    /* x 1 is exact, so worker 0 holds the one-worker value */
    return g->workers > 1 ? bome_scale(g, term, g->worker == 0 ? 1.0 : 0.0) : term;
}

static int sum_forward(bome_graph *g, bome_node *n)
{
    memcpy(n->data, n->src[0]->data, n->size * sizeof *n->data);
    if (!g->sum)
        return BOME_OK;
    char msg[400] = "";
    if (g->sum(g->sum_ud, n->data, n->size, msg, sizeof msg))
        return ad_error(g, BOME_ERR_WORKERS, "workers_sum (node %d, %zu values): %s", n->id, n->size,
                        msg[0] ? msg : "the sum function failed");
    return BOME_OK;
}

/* y = sum over workers w of x_w, so d(sum_w F_w)/d x_w = sum_w dF_w/dy:
 * the adjoint is summed the same way. */
static void sum_backward(bome_graph *g, bome_node *n, bome_node *dy, const bool *need, bome_node **d)
{
    (void)n;
    (void)need;
    d[0] = bome_workers_sum(g, dy);
}

static const op_desc op_workers_sum = {.name = "workers_sum", .forward = sum_forward, .backward = sum_backward};

bome_node *bome_workers_sum(bome_graph *g, bome_node *x)
{
    if (!ad_check(g, "workers_sum", 1, &x))
        return NULL;
    return ad_node(g, &op_workers_sum, x->shape, 1, &x);
}
