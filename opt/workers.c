/* Data-parallel runs: what the solver sums across the workers, and when.
 *
 * Each worker's f and g are its share of the objective. Every plan's
 * outputs are then shares too (objectives, gradients in replicated
 * variables, Hessian-vector products: all linear in f and g), except the
 * gradients in sharded variables, which are each worker's own and whole.
 * So opt_run_plan sums the shares, packed into one buffer, once per plan
 * run; the sharded blocks' parts of dot products and norms are summed where
 * they are taken (blocks.c); and every scalar the methods compute from
 * these agrees on all workers, which therefore take the same step. The
 * methods whose graphs are not linear in f and g sum inside the graph
 * (opt_workers_sum). Nothing here knows MPI: the sums go through options.
 * workers. */
#include "method.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- What each node is across the workers ---- */

int opt_mark(bome_solver *s, bome_node *n, int kind)
{
    if (!s->w || !n)
        return s->status;
    size_t id = (size_t)bome_node_id(n);
    if (id >= s->cap_kind) {
        size_t cap = id + id / 2 + 256;
        unsigned char *k = opt_zalloc(s, cap, 1);
        if (!k)
            return s->status;
        if (s->node_kind)
            memcpy(k, s->node_kind, s->cap_kind);
        opt_zfree(s, s->node_kind);
        s->node_kind = k;
        s->cap_kind = cap;
    }
    s->node_kind[id] = (unsigned char)kind;
    return BOME_OK;
}

int opt_node_kind(const bome_solver *s, const bome_node *n)
{
    size_t id = (size_t)bome_node_id(n);
    return id < s->cap_kind ? s->node_kind[id] : OPT_SUM;
}

static bool is_leaf(const bome_node *n)
{
    const char *op = bome_node_op(n);
    return !strcmp(op, "param") || !strcmp(op, "input") || !strcmp(op, "const") || !strcmp(op, "labels");
}

/* Leaves and views share memory with something else (a variable, a
 * constant another gradient may also be, a source node). */
static bool owns_buffer(const bome_node *n)
{
    const char *op = bome_node_op(n);
    return !is_leaf(n) && strcmp(op, "reshape") && strcmp(op, "stop_gradient") && strcmp(op, "slice");
}

bome_node *opt_owned(bome_solver *s, bome_node *n)
{
    /* + 0 is exact (but for the sign of a zero) */
    return !s->w || !n || owns_buffer(n) ? n : bome_add_scalar(s->g, n, 0.0);
}

int opt_grad(bome_solver *s, bome_node *y, int n, bome_node *const *wrt, bome_node **out)
{
    int rc = bome_grad(s->g, y, n, wrt, out);
    for (int i = 0; !rc && s->w && i < n; i++) {
        if (opt_node_kind(s, wrt[i]) == OPT_LOCAL)
            opt_mark(s, out[i], OPT_LOCAL);
        else if (opt_node_kind(s, out[i]) != OPT_SUM || !owns_buffer(out[i]))
            out[i] = bome_add_scalar(s->g, out[i], 0.0);
    }
    return rc ? rc : bome_graph_status(s->g);
}

bome_node *opt_workers_sum(bome_solver *s, bome_node *x, int j)
{
    if (!s->w || !x || (j >= 0 && opt_sharded(s, s->nv + j)))
        return x;
    bome_node *y = bome_workers_sum(s->g, x);
    opt_mark(s, y, OPT_GLOBAL);
    return y;
}

/* ---- Plans ---- */

int opt_plan_sums(bome_solver *s, const bome_plan *plan, int n, bome_node *const *outs)
{
    if (!s->w || !plan || s->status)
        return s->status;
    bome_node **list = opt_zalloc(s, (size_t)n, sizeof *list);
    if (!list)
        return s->status;
    int m = 0;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        bome_node *o = outs[i];
        bool seen = false;
        for (int j = 0; j < m && !seen; j++)
            seen = list[j] == o;
        /* leaves are values (a variable, a constant), never shares, and a
         * sum inside the graph is the same on every worker already */
        if (seen || opt_node_kind(s, o) != OPT_SUM || is_leaf(o) || !strcmp(bome_node_op(o), "workers_sum"))
            continue;
        if (!owns_buffer(o)) {
            opt_zfree(s, list);
            return opt_fail(s, BOME_ERR_STATE, "planning: output %d (%s) is a view; a sum would write through it", i,
                            bome_node_op(o));
        }
        list[m++] = o;
        total += bome_size(o);
    }
    struct opt_summed *grown = opt_zalloc(s, (size_t)s->n_summed + 1, sizeof *grown);
    if (!grown) {
        opt_zfree(s, list);
        return s->status;
    }
    if (s->summed)
        memcpy(grown, s->summed, (size_t)s->n_summed * sizeof *grown);
    opt_zfree(s, s->summed);
    s->summed = grown;
    s->summed[s->n_summed++] = (struct opt_summed){plan, list, m};
    /* one more slot: whether this worker's plan failed */
    if (total + 1 > s->cap_pack) {
        opt_zfree(s, s->pack);
        s->cap_pack = 0;
        if (!(s->pack = opt_zalloc(s, total + 1, sizeof *s->pack)))
            return s->status;
        s->cap_pack = total + 1;
    }
    return BOME_OK;
}

const char *opt_run_errmsg(const bome_solver *s)
{
    if (s->sum_msg[0])
        return s->sum_msg;
    return s->batch_rc ? "the minibatch draw failed" : bome_graph_errmsg(s->g);
}

/* Sums buf[0..n) across the workers; the reason into s->sum_msg. */
static int sum(bome_solver *s, bome_real *buf, size_t n)
{
    char msg[320] = "";
    if (!s->w->sum(s->w->ud, buf, n, msg, sizeof msg))
        return BOME_OK;
    snprintf(s->sum_msg, sizeof s->sum_msg, "summing %zu values across %d workers (this is worker %d): %s", n,
             s->w->size, s->w->rank, msg[0] ? msg : "the sum function failed");
    return BOME_ERR_WORKERS;
}

int opt_run_plan(bome_solver *s, bome_plan *plan)
{
    s->sum_msg[0] = 0;
    int rc = BOME_OK;
    if (s->batch_due && s->p->batch_draw) {
        s->batch_due = false;
        rc = s->batch_rc = s->p->batch_draw(s->p->batch_ud, &s->rng, s->steps, s->batch_k++);
    }
    /* a failed draw joins the sum below as a failed plan does */
    if (!rc)
        rc = bome_plan_run(plan);
    const struct opt_summed *e = NULL;
    for (int i = 0; s->w && i < s->n_summed && !e; i++)
        if (s->summed[i].plan == plan)
            e = &s->summed[i];
    if (!e)
        return rc;
    /* A failed plan still joins the sum, flagged, so that the others stop
     * with it instead of waiting for it. */
    size_t at = 0;
    for (int i = 0; i < e->n; i++) {
        size_t m = bome_size(e->outs[i]);
        if (!rc)
            memcpy(s->pack + at, bome_data(e->outs[i]), m * sizeof *s->pack);
        at += m;
    }
    s->pack[at] = rc ? 1 : 0;
    int src = sum(s, s->pack, at + 1);
    if (rc) { /* this worker's own error is the one to report */
        s->sum_msg[0] = 0;
        return rc;
    }
    if (src)
        return src;
    if (s->pack[at] != 0) {
        snprintf(s->sum_msg, sizeof s->sum_msg, "%g of the %d workers failed in this step (see their messages)",
                 s->pack[at], s->w->size);
        return BOME_ERR_WORKERS;
    }
    at = 0;
    for (int i = 0; i < e->n; i++) {
        size_t m = bome_size(e->outs[i]);
        memcpy(bome_data(e->outs[i]), s->pack + at, m * sizeof *s->pack);
        at += m;
    }
    return BOME_OK;
}

/* ---- Dot products and norms ---- */

void opt_totals(bome_solver *s, int m, const double *rep, const double *shard, bool sharded, double *out)
{
    bome_real buf[8];
    for (int i = 0; i < m; i++)
        buf[i] = sharded ? shard[i] : 0;
    if (sharded && s->w && m <= 8 && sum(s, buf, (size_t)m)) {
        opt_fail(s, BOME_ERR_WORKERS, "step %ld: %s", s->steps + 1, s->sum_msg);
        for (int i = 0; i < m; i++)
            out[i] = NAN;
        return;
    }
    for (int i = 0; i < m; i++)
        out[i] = sharded ? rep[i] + buf[i] : rep[i];
}

/* ---- The start ---- */

/* Whether this worker's fp[0..n) equals worker 0's, with every worker
 * told whether all do: a broadcast and a sum of mismatches. extra[0..ne)
 * is summed along (may be NULL). */
static int agree(bome_solver *s, const char *what, const bome_real *fp, size_t n, bome_real *extra, size_t ne)
{
    const bome_workers *w = s->w;
    bome_real *b = opt_zalloc(s, n + ne + 1, sizeof *b);
    if (!b)
        return s->status;
    char msg[320] = "";
    memcpy(b, fp, n * sizeof *b);
    int rc = w->broadcast(w->ud, b, n, msg, sizeof msg);
    if (!rc) {
        bome_real mismatch = memcmp(b, fp, n * sizeof *b) != 0;
        b[0] = mismatch;
        if (ne)
            memcpy(b + 1, extra, ne * sizeof *b);
        rc = w->sum(w->ud, b, ne + 1, msg, sizeof msg);
        if (!rc && ne)
            memcpy(extra, b + 1, ne * sizeof *b);
        if (!rc && b[0] != 0) {
            opt_fail(s, BOME_ERR_WORKERS, "%g of the %d workers have other %s than worker 0%s", b[0], w->size, what,
                     mismatch ? ", this one among them" : "");
            rc = -1;
        }
    }
    if (rc > 0)
        opt_fail(s, BOME_ERR_WORKERS, "starting the %d workers (this is worker %d): %s", w->size, w->rank,
                 msg[0] ? msg : "a sum or broadcast failed");
    opt_zfree(s, b);
    return s->status;
}

int opt_workers_start(bome_solver *s)
{
    for (int k = 0; k < s->nk; k++)
        s->gsize[k] = s->var[k]->size;
    if (!s->w)
        return BOME_OK;
    const bome_problem *p = s->p;
    uint64_t h = opt_settings_hash(s);
    bome_real head[] = {0x626f6d65, s->w->size, s->o.method, s->nv, s->nt, p->n_data, (double)(h >> 32),
                        (double)(h & 0xffffffffu), (double)s->o.max_steps, s->o.tol};
    if (agree(s, "numbers of variables and data, or settings", head, sizeof head / sizeof *head, NULL, 0))
        return s->status;
    /* now of the same lengths everywhere: the shapes (a sharded variable's
     * and a data input's rows are the worker's own), and the sizes of the
     * sharded variables summed */
    size_t n = 3 * (size_t)s->nk + 2 * (size_t)p->n_data;
    bome_real *fp = opt_zalloc(s, n, sizeof *fp), *sizes = opt_zalloc(s, (size_t)s->nk, sizeof *sizes);
    if (!fp || !sizes)
        goto done;
    for (int k = 0; k < s->nk; k++) {
        const opt_var *v = s->var[k];
        fp[3 * k] = v->sharded;
        fp[3 * k + 1] = v->sharded ? -1 : v->shape.rows;
        /* a sharded vector's rows are its entries */
        fp[3 * k + 2] = v->sharded && v->shape.rank < 2 ? -1 : v->shape.cols;
        sizes[k] = v->sharded ? (double)v->size : 0;
    }
    for (int i = 0; i < p->n_data; i++) {
        fp[3 * s->nk + 2 * i] = p->data[i].labels;
        fp[3 * s->nk + 2 * i + 1] = p->data[i].labels ? -1 : p->data[i].shape.cols;
    }
    if (agree(s, "variables (shapes, sharded or not) or data columns", fp, n, sizes, (size_t)s->nk))
        goto done;
    size_t rep = 0;
    for (int k = 0; k < s->nk; k++) {
        if (s->var[k]->sharded)
            s->gsize[k] = (size_t)sizes[k];
        else
            rep += s->var[k]->size;
    }
    /* every worker starts from worker 0's values of the replicated variables */
    bome_real *b = opt_zalloc(s, rep, sizeof *b);
    if (!b)
        goto done;
    size_t at = 0;
    for (int k = 0; k < s->nk; k++)
        if (!s->var[k]->sharded) {
            memcpy(b + at, s->var[k]->values, s->var[k]->size * sizeof *b);
            at += s->var[k]->size;
        }
    char msg[320] = "";
    if (s->w->broadcast(s->w->ud, b, rep, msg, sizeof msg))
        opt_fail(s, BOME_ERR_WORKERS, "starting the %d workers (this is worker %d): broadcasting the variables: %s",
                 s->w->size, s->w->rank, msg[0] ? msg : "the broadcast failed");
    at = 0;
    for (int k = 0; !s->status && k < s->nk; k++)
        if (!s->var[k]->sharded) {
            memcpy(s->var[k]->values, b + at, s->var[k]->size * sizeof *b);
            at += s->var[k]->size;
        }
    opt_zfree(s, b);
done:
    opt_zfree(s, fp);
    opt_zfree(s, sizes);
    return s->status;
}

/* ---- For problems ---- */

void bome_shard_rows(long n, int worker, int workers, long *begin, long *end)
{
    if (n < 0 || workers < 1 || worker < 0 || worker >= workers) {
        *begin = *end = 0;
        return;
    }
    /* floor(n w / P) without the product n w, which may overflow: with
     * n = q P + r it is q w + floor(r w / P), and r w < P^2 */
    long q = n / workers, r = n % workers;
    *begin = q * worker + r * worker / workers;
    *end = q * (worker + 1) + r * (worker + 1) / workers;
}
