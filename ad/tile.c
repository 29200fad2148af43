/*
 * Row-tiled execution of plans.
 *
 * A gradient of a loss over a large data matrix X (n x d) reads X twice in
 * whole-matrix form: once for the forward product X W^T, once for the
 * backward product dZ^T X. When every op between the two works row by row
 * (elementwise maps, cross-entropy and its fused backward, softmax, ...), the
 * stretch can instead run a block of rows at a time, ending in reductions
 * over rows (dZ^T X, column sums, dot products) that accumulate block by
 * block. The block of X is then still in cache for the second product, and X
 * streams from memory once per gradient instead of twice.
 *
 * A plan is split into three parts, in tape order within each:
 *   pre   nodes that do not depend on the stage (run first, whole),
 *   stage row ops and row reductions over the chosen row count R (blocked),
 *   post  nodes that depend on the stage (run last, whole).
 * The stage's nodes keep full buffers, so post nodes read them as usual.
 */
#include "internal.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

/* OpenBLAS's own threads, when it is the BLAS: the stage's threads each run
 * it single-threaded (see run_threads). The reference BLAS has none. */
extern int openblas_get_num_threads(void) __attribute__((weak));
extern void openblas_set_num_threads(int) __attribute__((weak));

enum { ROLE_PRE = 0, ROLE_ROW, ROLE_REDUCE, ROLE_VIEW, ROLE_POST };

void bome_graph_set_tiling(bome_graph *g, int min_rows, int block_rows)
{
    if (!g)
        return;
    g->tile_min_rows = min_rows > 0 ? min_rows : 0;
    g->tile_block_rows = block_rows > 0 ? block_rows : 64;
}

int bome_graph_set_threads(bome_graph *g, int threads)
{
    if (!g)
        return BOME_ERR_ARG;
    if (threads < 1 || threads > BOME_MAX_THREADS)
        return ad_error(g, BOME_ERR_ARG, "bome_graph_set_threads: %d threads; give 1 to %d", threads,
                        BOME_MAX_THREADS);
    g->threads = threads;
    return BOME_OK;
}

/* Partial sums for the stage's reductions, one set per extra thread. */
static int alloc_partials(bome_plan *p, const unsigned char *role)
{
    bome_graph *g = p->g;
    bome_node **stage = p->run + p->n_pre;
    p->threads = g->threads > 1 ? g->threads : 1;
    if (p->threads == 1)
        return BOME_OK;
    p->acc_off = ad_alloc_array(g, p->n_stage, sizeof *p->acc_off);
    if (!p->acc_off)
        return g->status;
    p->acc_size = 0;
    for (size_t i = 0; i < p->n_stage; i++) {
        bool reduce = role[stage[i]->id] == ROLE_REDUCE;
        p->acc_off[i] = reduce ? p->acc_size : SIZE_MAX;
        if (reduce) /* 64-byte strides: threads' sums never share a cache line */
            p->acc_size += (stage[i]->size + 7) & ~(size_t)7;
    }
    size_t count;
    if (!ad_mul(p->acc_size ? p->acc_size : 1, (size_t)(p->threads - 1), &count))
        return ad_error(g, BOME_ERR_NOMEM, "bome_plan_new: out of memory for %d threads' partial sums", p->threads);
    p->acc = ad_alloc_array(g, count, sizeof *p->acc);
    return p->acc ? BOME_OK : g->status;
}

/* The row count worth tiling over: the tallest data input the plan reads. */
static int choose_rows(const bome_graph *g, bome_node *const *run, size_t n_run)
{
    int best = 0;
    for (size_t i = 0; i < n_run; i++)
        for (int s = 0; s < run[i]->nsrc; s++) {
            const bome_node *x = run[i]->src[s];
            if (x->kind == NODE_INPUT && x->shape.rank == 2 && x->shape.rows >= g->tile_min_rows &&
                x->shape.rows > best)
                best = x->shape.rows;
        }
    return best;
}

static bool is_view_of(const bome_node *n)
{
    return n->op->view && n->kind == NODE_OP && n->ip[0] == 0 && n->size == n->src[0]->size;
}

/* Whether a view keeps element i on row i (a vector of R and an R x 1 column,
 * or the same shape). */
static bool row_view(const bome_node *n, int R)
{
    return ad_row_count(n) == R && ad_row_count(n->src[0]) == R;
}

int ad_plan_tile(bome_plan *p)
{
    bome_graph *g = p->g;
    p->n_pre = p->n_stage = p->n_post = 0;
    p->rows = 0;
    if (g->tile_min_rows <= 0 || p->n_run == 0)
        return BOME_OK;
    int R = choose_rows(g, p->run, p->n_run);
    if (!R)
        return BOME_OK;

    size_t top = 0;
    for (size_t i = 0; i < p->n_run; i++)
        if ((size_t)p->run[i]->id + 1 > top)
            top = (size_t)p->run[i]->id + 1;
    unsigned char *role = ad_raw_alloc(g, top);
    if (!role)
        return ad_error(g, BOME_ERR_NOMEM, "bome_plan_new: out of memory tiling %zu nodes", top);
    memset(role, ROLE_PRE, top);

    size_t n_stage = 0, n_products = 0;
    int widest = 0;
    for (size_t i = 0; i < p->n_run; i++) {
        bome_node *n = p->run[i];
        unsigned row_srcs = 0;
        int r = n->op->tile ? n->op->tile(n, R, &row_srcs) : ROLE_PRE;
        if (n->op->view && is_view_of(n) && row_view(n, R))
            r = ROLE_VIEW;
        bool depends = false, ok = r != ROLE_PRE;
        for (int s = 0; s < n->nsrc; s++) {
            const bome_node *x = n->src[s];
            int xr = (size_t)x->id < top ? role[x->id] : ROLE_PRE;
            depends |= xr != ROLE_PRE;
            if (!ok)
                continue;
            if (row_srcs & (1u << s) || r == ROLE_VIEW)
                ok = xr == ROLE_PRE || xr == ROLE_ROW || xr == ROLE_VIEW; /* rows ready block by block */
            else
                ok = xr == ROLE_PRE; /* whole values, computed before the stage */
        }
        if (r == ROLE_VIEW && !depends)
            ok = false; /* a view of data: an ordinary pre node */
        if (ok) {
            role[n->id] = (unsigned char)r;
            n_stage++;
            if (n->op->tile == ad_matmul_tile) {
                n_products++;
                /* The narrow side of the product: the output's columns of a
                 * row product, the rows of a reduction's. */
                int width = r == ROLE_ROW ? n->shape.cols : n->shape.rows;
                if (width > widest)
                    widest = width;
            }
        } else {
            role[n->id] = depends ? ROLE_POST : ROLE_PRE;
        }
    }
    /* Without a product over the rows there is no data to keep in cache.
     * With a wide one (a hidden layer of hundreds of units) the products are
     * compute-bound: blocks gain nothing and cost BLAS its threading, as
     * measured for a 784-300-10 network (bench/RESULTS.md). */
    if (n_products == 0 || widest > AD_NARROW_MAX) {
        ad_raw_free(g, role, top);
        return BOME_OK;
    }
    bome_node **order = ad_alloc_array(g, p->n_run, sizeof *order);
    if (!order) {
        ad_raw_free(g, role, top);
        return g->status;
    }
    size_t k = 0;
    for (int want = 0; want < 3; want++)
        for (size_t i = 0; i < p->n_run; i++) {
            int r = role[p->run[i]->id];
            int part = r == ROLE_PRE ? 0 : (r == ROLE_POST ? 2 : 1);
            if (part == want)
                order[k++] = p->run[i];
        }
    for (size_t i = 0; i < p->n_run; i++) {
        int r = role[p->run[i]->id];
        if (r == ROLE_PRE)
            p->n_pre++;
        else if (r == ROLE_POST)
            p->n_post++;
        else
            p->n_stage++;
    }
    p->run = order;
    p->rows = R;
    int rc = alloc_partials(p, role);
    ad_raw_free(g, role, top);
    return rc;
}

/* One thread's share of the stage: rows [r0, r1), block by block; its
 * reductions go to the nodes' buffers (slot 0) or to its partial sums. */
typedef struct stage_job {
    bome_plan *p;
    int r0, r1, slot, rc;
} stage_job;

static int run_rows(bome_plan *p, int r0, int r1, int slot)
{
    bome_graph *g = p->g;
    bome_node **stage = p->run + p->n_pre;
    bome_real *partial = slot ? p->acc + (size_t)(slot - 1) * p->acc_size : NULL;
    int B = g->tile_block_rows;
    /* b0 + B may pass INT_MAX on the last block: compare the difference. */
    for (int b0 = r0, b1; b0 < r1; b0 = b1) {
        b1 = r1 - b0 > B ? b0 + B : r1;
        for (size_t i = 0; i < p->n_stage; i++) {
            bome_node *n = stage[i];
            if (n->op->view)
                continue;
            bome_real *acc = partial && p->acc_off[i] != SIZE_MAX ? partial + p->acc_off[i] : n->data;
            int rc = n->op->rows(g, n, b0, b1, b0 == r0, acc);
            if (rc)
                return rc;
        }
    }
    return BOME_OK;
}

static void *stage_thread(void *arg)
{
    stage_job *j = arg;
    j->rc = run_rows(j->p, j->r0, j->r1, j->slot);
    return NULL;
}

/* The stage over p->threads threads, each taking a contiguous run of whole
 * blocks; the partial sums are added in thread order, so results do not
 * depend on scheduling. */
static int run_threads(bome_plan *p)
{
    int T = p->threads, B = p->g->tile_block_rows;
    int blocks = (int)(((int64_t)p->rows + B - 1) / B);
    if (T > blocks)
        T = blocks;
    stage_job job[BOME_MAX_THREADS];
    pthread_t tid[BOME_MAX_THREADS];
    bool started[BOME_MAX_THREADS] = {false};
    for (int t = 0; t < T; t++) {
        int64_t b0 = (int64_t)blocks * t / T, b1 = (int64_t)blocks * (t + 1) / T;
        job[t] = (stage_job){p, (int)(b0 * B), (int)(b1 * B < p->rows ? b1 * B : p->rows), t, BOME_OK};
    }
    /* Two callers each asking OpenBLAS for all its threads would fight over
     * them; one thread each is what hand-written row-parallel code does. */
    int blas = openblas_get_num_threads && openblas_set_num_threads ? openblas_get_num_threads() : 0;
    if (blas > 1)
        openblas_set_num_threads(1);
    for (int t = 1; t < T; t++)
        started[t] = pthread_create(&tid[t], NULL, stage_thread, &job[t]) == 0;
    job[0].rc = run_rows(p, job[0].r0, job[0].r1, 0);
    for (int t = 1; t < T; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            job[t].rc = run_rows(p, job[t].r0, job[t].r1, t); /* no thread to be had: do it here */
    }
    if (blas > 1)
        openblas_set_num_threads(blas);
    for (int t = 0; t < T; t++)
        if (job[t].rc)
            return job[t].rc;
    bome_node **stage = p->run + p->n_pre;
    for (size_t i = 0; i < p->n_stage; i++) {
        if (p->acc_off[i] == SIZE_MAX)
            continue;
        bome_real *y = stage[i]->data;
        for (int t = 1; t < T; t++) {
            const bome_real *part = p->acc + (size_t)(t - 1) * p->acc_size + p->acc_off[i];
            for (size_t k = 0; k < stage[i]->size; k++)
                y[k] += part[k];
        }
    }
    return BOME_OK;
}

int ad_plan_run_tiled(bome_plan *p)
{
    bome_graph *g = p->g;
    bome_node **stage = p->run + p->n_pre;
    for (size_t i = 0; i < p->n_pre; i++) {
        int rc = p->run[i]->op->forward(g, p->run[i]);
        if (rc)
            return rc;
    }
    /* Views inside the stage only point into their sources' buffers, which
     * are fixed; point them once. */
    for (size_t i = 0; i < p->n_stage; i++)
        if (stage[i]->op->view)
            stage[i]->op->forward(g, stage[i]);
    int rc = p->threads > 1 ? run_threads(p) : run_rows(p, 0, p->rows, 0);
    if (rc)
        return rc;
    bome_node **post = stage + p->n_stage;
    for (size_t i = 0; i < p->n_post; i++) {
        rc = post[i]->op->forward(g, post[i]);
        if (rc)
            return rc;
    }
    return BOME_OK;
}
