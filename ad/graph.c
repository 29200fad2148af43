/* The graph: its arena, its sticky error, its leaves and their bindings. */
#include "internal.h"

#include <pthread.h>

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 64
#define CHUNK_BYTES (256 * 1024)

struct arena_chunk {
    struct arena_chunk *next;
    size_t size; /* bytes obtained from the allocator, header included */
    size_t used;
};

static void *default_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}

void *ad_raw_alloc(bome_graph *g, size_t bytes)
{
    void *p = g->alloc(g->ud, NULL, 0, bytes);
    if (p)
        g->bytes += bytes;
    return p;
}

void ad_raw_free(bome_graph *g, void *p, size_t bytes)
{
    if (!p)
        return;
    g->alloc(g->ud, p, bytes, 0);
    g->bytes -= bytes;
}

static size_t header_bytes(void)
{
    return (sizeof(struct arena_chunk) + ALIGN - 1) / ALIGN * ALIGN;
}

/* The span of chunk c (size bytes) into g's sorted spans; false when
 * memory runs out (nothing changed then). */
static bool span_add(bome_graph *g, const void *c, size_t size)
{
    if (g->n_spans == g->cap_spans) {
        size_t cap = g->cap_spans ? 2 * g->cap_spans : 16;
        uintptr_t *ns = ad_raw_alloc(g, cap * 2 * sizeof *ns);
        if (!ns)
            return false;
        if (g->n_spans)
            memcpy(ns, g->spans, g->n_spans * 2 * sizeof *ns);
        ad_raw_free(g, g->spans, g->cap_spans * 2 * sizeof *ns);
        g->spans = ns;
        g->cap_spans = cap;
    }
    uintptr_t b = (uintptr_t)c;
    size_t at = g->n_spans;
    while (at > 0 && g->spans[2 * (at - 1)] > b)
        at--;
    memmove(g->spans + 2 * (at + 1), g->spans + 2 * at, (g->n_spans - at) * 2 * sizeof *g->spans);
    g->spans[2 * at] = b;
    g->spans[2 * at + 1] = b + size;
    g->n_spans++;
    return true;
}

/* Whether a node record at p would lie inside one of g's chunks. */
static bool in_arena(const bome_graph *g, const void *p)
{
    uintptr_t a = (uintptr_t)p;
    size_t lo = 0, hi = g->n_spans;
    while (lo < hi) { /* the first span beginning after a */
        size_t mid = (lo + hi) / 2;
        if (g->spans[2 * mid] <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 && a >= g->spans[2 * (lo - 1)] && a + sizeof(bome_node) <= g->spans[2 * (lo - 1) + 1];
}

/*
 * A zeroed block of the arena starting on a multiple of align (a power of two
 * no larger than ALIGN; chunks start on an ALIGN boundary). NULL when the
 * allocator fails or the size cannot be had at all; nothing is recorded.
 */
static void *arena_take(bome_graph *g, size_t bytes, size_t align)
{
    /* Rounding and the chunk header below must not wrap around. */
    if (bytes > SIZE_MAX - header_bytes() - 2 * ALIGN)
        return NULL;
    bytes = (bytes + align - 1) / align * align;
    if (bytes == 0)
        bytes = align;
    struct arena_chunk *c = g->chunks;
    size_t pad = c ? (align - ((uintptr_t)c + c->used) % align) % align : 0;
    if (!c || c->size - c->used < pad + bytes) {
        /* A large block gets a chunk of its own so the current chunk's tail
         * stays usable for the small nodes that follow. */
        size_t want = header_bytes() + bytes + ALIGN;
        if (want < CHUNK_BYTES)
            want = CHUNK_BYTES;
        struct arena_chunk *nc = ad_raw_alloc(g, want);
        if (!nc)
            return NULL;
        if (!span_add(g, nc, want)) {
            ad_raw_free(g, nc, want);
            return NULL;
        }
        nc->size = want;
        uintptr_t base = (uintptr_t)nc + header_bytes();
        nc->used = header_bytes() + ((ALIGN - base % ALIGN) % ALIGN);
        if (c && want > CHUNK_BYTES) {
            nc->next = c->next; /* keep the small-node chunk on top */
            c->next = nc;
        } else {
            nc->next = c;
            g->chunks = nc;
        }
        c = nc;
        pad = 0;
    }
    void *p = (char *)c + c->used + pad;
    c->used += pad + bytes;
    memset(p, 0, bytes);
    return p;
}

static void *arena_alloc(bome_graph *g, size_t bytes, size_t align)
{
    void *p = arena_take(g, bytes, align);
    if (!p)
        ad_error(g, BOME_ERR_NOMEM, "out of memory: %zu bytes", bytes);
    return p;
}

void *ad_alloc(bome_graph *g, size_t bytes) { return arena_alloc(g, bytes, ALIGN); }

void *ad_alloc_array(bome_graph *g, size_t count, size_t size)
{
    size_t bytes;
    if (!ad_mul(count, size, &bytes)) {
        ad_error(g, BOME_ERR_NOMEM, "out of memory: %zu x %zu bytes", count, size);
        return NULL;
    }
    return arena_alloc(g, bytes, ALIGN);
}

/* The threads of a tiled plan (tile.c) may fail at once. */
static pthread_mutex_t error_lock = PTHREAD_MUTEX_INITIALIZER;

int ad_error(bome_graph *g, int code, const char *fmt, ...)
{
    pthread_mutex_lock(&error_lock);
    if (g->status == BOME_OK) {
        g->status = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g->msg, sizeof g->msg, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&error_lock);
    return code;
}

const char *bome_status_str(int status)
{
    switch (status) {
    case BOME_OK: return "ok";
    case BOME_ERR_ARG: return "invalid argument";
    case BOME_ERR_SHAPE: return "shape mismatch";
    case BOME_ERR_KIND: return "wrong kind of node";
    case BOME_ERR_NOMEM: return "out of memory";
    case BOME_ERR_RANGE: return "index out of range";
    case BOME_ERR_NONFINITE: return "non-finite value";
    case BOME_ERR_IO: return "input/output error";
    case BOME_ERR_STATE: return "call out of order";
    case BOME_ERR_WORKERS: return "workers failed";
    default: return "unknown status";
    }
}

/* Graph ids come from one counter for the process, so a node of a freed
 * graph does not match a new graph that happens to get the same address.
 * The same lock keeps the list of live graphs, in which a node that is not
 * its graph's is looked for before its name is read for the message. */
static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t last_graph_id;
static bome_graph *live;

bome_graph *bome_graph_new(void) { return bome_graph_new_alloc(NULL, NULL); }

bome_graph *bome_graph_new_alloc(bome_alloc_fn alloc, void *ud)
{
    if (!alloc)
        alloc = default_alloc;
    bome_graph *g = alloc(ud, NULL, 0, sizeof *g);
    if (!g)
        return NULL;
    memset(g, 0, sizeof *g);
    g->alloc = alloc;
    g->ud = ud;
    pthread_mutex_lock(&id_lock);
    g->id = ++last_graph_id;
    g->next_live = live;
    if (live)
        live->prev_live = g;
    live = g;
    pthread_mutex_unlock(&id_lock);
    g->tile_min_rows = 4096;
    g->tile_block_rows = 64;
    g->threads = 1;
    g->workers = 1;
    return g;
}

void bome_graph_free(bome_graph *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&id_lock);
    if (g->prev_live)
        g->prev_live->next_live = g->next_live;
    else
        live = g->next_live;
    if (g->next_live)
        g->next_live->prev_live = g->prev_live;
    pthread_mutex_unlock(&id_lock);
    struct arena_chunk *c = g->chunks;
    while (c) {
        struct arena_chunk *next = c->next;
        g->alloc(g->ud, c, c->size, 0);
        c = next;
    }
    if (g->nodes)
        g->alloc(g->ud, g->nodes, g->cap_nodes * sizeof *g->nodes, 0);
    if (g->mark)
        g->alloc(g->ud, g->mark, g->cap_mark, 0);
    if (g->spans)
        g->alloc(g->ud, g->spans, g->cap_spans * 2 * sizeof *g->spans, 0);
    g->alloc(g->ud, g, sizeof *g, 0);
}

int bome_graph_status(const bome_graph *g) { return g ? g->status : BOME_ERR_ARG; }

const char *bome_graph_errmsg(const bome_graph *g)
{
    if (!g)
        return "no graph (NULL)";
    return g->msg;
}

void bome_graph_clear_error(bome_graph *g)
{
    if (!g)
        return;
    g->status = BOME_OK;
    g->msg[0] = '\0';
}

size_t bome_graph_size(const bome_graph *g) { return g ? g->n_nodes : 0; }
size_t bome_graph_bytes(const bome_graph *g) { return g ? g->bytes : 0; }

const char *ad_shape_str(bome_shape s, char *buf)
{
    switch (s.rank) {
    case 0: snprintf(buf, 40, "scalar"); break;
    case 1: snprintf(buf, 40, "vector(%d)", s.cols); break;
    default: snprintf(buf, 40, "matrix(%dx%d)", s.rows, s.cols); break;
    }
    return buf;
}

bool ad_shape_eq(bome_shape a, bome_shape b)
{
    return a.rank == b.rank && a.rows == b.rows && a.cols == b.cols;
}

bool ad_own(bome_graph *g, const bome_node *n, const char *fmt, ...)
{
    if (in_arena(g, n) && n->graph == g->id)
        return true;
    char where[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(where, sizeof where, fmt, ap);
    va_end(ap);
    /* its name only from a graph still alive, under the lock that keeps it so */
    pthread_mutex_lock(&id_lock);
    const bome_graph *h = live;
    while (h && !in_arena(h, n))
        h = h->next_live;
    if (!h || h == g) /* in g's arena but not a node of g: a freed graph's, reused */
        ad_error(g, BOME_ERR_ARG, "%s: not a node of a live graph (one of a graph since freed?)", where);
    else if (n->name)
        ad_error(g, BOME_ERR_ARG, "%s: node '%s' belongs to another graph", where, n->name);
    else
        ad_error(g, BOME_ERR_ARG, "%s: node %d (%s) belongs to another graph", where, n->id, n->op->name);
    pthread_mutex_unlock(&id_lock);
    return false;
}

static bool check_sources(bome_graph *g, const char *op, int n, bome_node *const *src, int labels_at)
{
    if (!g)
        return false;
    for (int i = 0; i < n; i++)
        if (!src[i]) {
            /* A NULL from an earlier failed build is already explained. */
            if (g->status == BOME_OK)
                ad_error(g, BOME_ERR_ARG, "%s: argument %d is NULL", op, i + 1);
            return false;
        }
    for (int i = 0; i < n; i++)
        if (!ad_own(g, src[i], "%s, argument %d", op, i + 1))
            return false;
    for (int i = 0; i < n; i++)
        if ((src[i]->kind == NODE_LABELS) != (i == labels_at)) {
            if (i == labels_at)
                ad_error(g, BOME_ERR_KIND, "%s: argument %d is a %s node, not labels (bome_labels)", op, i + 1,
                         src[i]->op->name);
            else
                ad_error(g, BOME_ERR_KIND, "%s: argument %d is a label vector; only gather_rows, pick and "
                         "cross_entropy take labels", op, i + 1);
            return false;
        }
    return true;
}

bool ad_check(bome_graph *g, const char *op, int n, bome_node *const *src) { return check_sources(g, op, n, src, -1); }

bool ad_check_labeled(bome_graph *g, const char *op, int n, bome_node *const *src)
{
    return check_sources(g, op, n, src, 1);
}

static bool grow_tape(bome_graph *g)
{
    if (g->n_nodes < g->cap_nodes)
        return true;
    /* Node ids are ints. */
    if (g->n_nodes >= INT_MAX) {
        ad_error(g, BOME_ERR_NOMEM, "the tape is full: %zu nodes", g->n_nodes);
        return false;
    }
    size_t cap = g->cap_nodes ? g->cap_nodes * 2 : 256, bytes;
    if (cap > INT_MAX)
        cap = INT_MAX;
    bome_node **p = ad_mul(cap, sizeof *p, &bytes) ? g->alloc(g->ud, g->nodes, g->cap_nodes * sizeof *p, bytes)
                                                   : NULL;
    if (!p) {
        ad_error(g, BOME_ERR_NOMEM, "out of memory growing the tape to %zu nodes", cap);
        return false;
    }
    g->bytes += (cap - g->cap_nodes) * sizeof *p;
    g->nodes = p;
    g->cap_nodes = cap;
    return true;
}

static bool valid_shape(bome_shape s)
{
    if (s.rank == 0)
        return s.rows == 1 && s.cols == 1;
    if (s.rank == 1)
        return s.rows == 1 && s.cols >= 1;
    return s.rank == 2 && s.rows >= 1 && s.cols >= 1;
}

/* The most elements one node holds. Ops do row and offset arithmetic in int
 * ((r1 - r0) * cols, begin * cols) and hand dimensions to BLAS as int, and
 * the byte count must fit in size_t on a 32-bit host. */
static size_t max_elements(void)
{
    size_t by_bytes = (SIZE_MAX - CHUNK_BYTES) / sizeof(bome_real);
    return by_bytes < (size_t)INT_MAX ? by_bytes : (size_t)INT_MAX;
}

/* "matmul", or "param 'w'" for a named leaf. */
static const char *label(const char *what, const char *name, char *buf, size_t len)
{
    if (!name)
        return what;
    snprintf(buf, len, "%s '%s'", what, name);
    return buf;
}

bool ad_size_ok(bome_graph *g, const char *what, const char *name, bome_shape s)
{
    /* Positive dimensions below INT_MAX: the product fits in 64 bits. */
    unsigned long long elems = (unsigned long long)s.rows * (unsigned long long)s.cols;
    if (elems <= max_elements())
        return true;
    char sh[40], lb[160];
    ad_error(g, BOME_ERR_ARG, "%s: %s is too large (%llu elements; a node holds at most %zu)",
             label(what, name, lb, sizeof lb), ad_shape_str(s, sh), elems, max_elements());
    return false;
}

static bome_node *new_node(bome_graph *g, const op_desc *op, int kind, bome_shape shape, bool buffer, const char *name)
{
    if (!ad_size_ok(g, op->name, name, shape) || !grow_tape(g))
        return NULL;
    /* Node records, and buffers shorter than a cache line, are packed at
     * their natural alignment rather than ALIGN: a scalar node and its value
     * take 144 bytes instead of 256, which keeps a long scalar tape in cache.
     * Buffers of ALIGN bytes or more stay ALIGN-aligned. */
    bome_node *n = arena_alloc(g, sizeof *n, _Alignof(bome_node));
    if (!n)
        return NULL;
    n->op = op;
    n->kind = kind;
    n->graph = g->id;
    n->shape = shape;
    n->size = (size_t)shape.rows * (size_t)shape.cols;
    if (buffer) {
        size_t bytes = n->size * sizeof(bome_real);
        n->own = arena_take(g, bytes, bytes < ALIGN ? _Alignof(bome_real) : ALIGN);
        if (!n->own) {
            char sh[40], lb[160];
            ad_error(g, BOME_ERR_NOMEM, "%s: out of memory for %s (%zu bytes)", label(op->name, name, lb, sizeof lb),
                     ad_shape_str(shape, sh), bytes);
            return NULL;
        }
        n->data = n->own;
    }
    n->id = (int)g->n_nodes;
    g->nodes[g->n_nodes++] = n;
    return n;
}

bome_node *ad_node(bome_graph *g, const op_desc *op, bome_shape shape, int nsrc, bome_node *const *src)
{
    bome_node *n = new_node(g, op, NODE_OP, shape, !op->view, NULL);
    if (!n)
        return NULL;
    n->nsrc = nsrc;
    for (int i = 0; i < nsrc; i++)
        n->src[i] = src[i];
    return n;
}

static const op_desc leaf_param = {.name = "param", .forward = NULL, .backward = NULL, .view = false};
static const op_desc leaf_input = {.name = "input", .forward = NULL, .backward = NULL, .view = false};
static const op_desc leaf_labels = {.name = "labels", .forward = NULL, .backward = NULL, .view = false};
static const op_desc leaf_const = {.name = "const", .forward = NULL, .backward = NULL, .view = false};

static bome_node *leaf(bome_graph *g, const char *what, const op_desc *op, int kind, const char *name, bome_shape shape)
{
    if (!g)
        return NULL;
    if (!valid_shape(shape)) {
        ad_error(g, BOME_ERR_SHAPE, "%s '%s': invalid shape (rank %d, %d x %d)", what,
                 name ? name : "", shape.rank, shape.rows, shape.cols);
        return NULL;
    }
    bome_node *n = new_node(g, op, kind, shape, kind != NODE_LABELS, name);
    if (!n)
        return NULL;
    if (name) {
        size_t len = strlen(name) + 1;
        char *copy = ad_alloc(g, len);
        if (!copy)
            return NULL;
        memcpy(copy, name, len);
        n->name = copy;
    }
    return n;
}

bome_node *bome_param(bome_graph *g, const char *name, bome_shape shape)
{
    return leaf(g, "param", &leaf_param, NODE_PARAM, name, shape);
}

bome_node *bome_input(bome_graph *g, const char *name, bome_shape shape)
{
    return leaf(g, "input", &leaf_input, NODE_INPUT, name, shape);
}

bome_node *bome_labels(bome_graph *g, const char *name, int n)
{
    return leaf(g, "labels", &leaf_labels, NODE_LABELS, name, BOME_VECTOR(n));
}

bome_node *bome_const(bome_graph *g, bome_shape shape, const bome_real *values)
{
    bome_node *n = leaf(g, "const", &leaf_const, NODE_CONST, NULL, shape);
    if (n && values)
        memcpy(n->data, values, n->size * sizeof(bome_real));
    return n;
}

bome_node *bome_scalar(bome_graph *g, bome_real value) { return bome_const(g, BOME_SCALAR, &value); }

bome_node *ad_zeros(bome_graph *g, bome_shape shape) { return bome_const(g, shape, NULL); }

int bome_bind(bome_graph *g, bome_node *leaf_node, bome_real *data)
{
    if (!g)
        return BOME_ERR_ARG;
    if (!leaf_node)
        return ad_error(g, BOME_ERR_ARG, "bome_bind: node is NULL");
    if (!ad_own(g, leaf_node, "bome_bind"))
        return BOME_ERR_ARG;
    if (leaf_node->kind != NODE_PARAM && leaf_node->kind != NODE_INPUT)
        return ad_error(g, BOME_ERR_KIND, "bome_bind: '%s' is a %s node; only params and inputs bind",
                        leaf_node->name ? leaf_node->name : "", leaf_node->op->name);
    if (!data && leaf_node->kind == NODE_INPUT)
        return ad_error(g, BOME_ERR_ARG, "bome_bind: input '%s' needs memory (data is NULL)",
                        leaf_node->name ? leaf_node->name : "");
    leaf_node->data = data ? data : leaf_node->own;
    return BOME_OK;
}

int bome_bind_labels(bome_graph *g, bome_node *labels, const int32_t *data)
{
    if (!g)
        return BOME_ERR_ARG;
    if (!labels || !data)
        return ad_error(g, BOME_ERR_ARG, "bome_bind_labels: %s is NULL", labels ? "data" : "node");
    if (!ad_own(g, labels, "bome_bind_labels"))
        return BOME_ERR_ARG;
    if (labels->kind != NODE_LABELS)
        return ad_error(g, BOME_ERR_KIND, "bome_bind_labels: node %d is a %s node, not labels",
                        labels->id, labels->op->name);
    labels->labels = data;
    return BOME_OK;
}

int bome_set(bome_graph *g, bome_node *leaf_node, const bome_real *values)
{
    if (!g)
        return BOME_ERR_ARG;
    if (!leaf_node || !values)
        return ad_error(g, BOME_ERR_ARG, "bome_set: %s is NULL", leaf_node ? "values" : "node");
    if (!ad_own(g, leaf_node, "bome_set"))
        return BOME_ERR_ARG;
    if (leaf_node->kind == NODE_OP || leaf_node->kind == NODE_LABELS)
        return ad_error(g, BOME_ERR_KIND, "bome_set: node %d is a %s node; only params, inputs and constants are set",
                        leaf_node->id, leaf_node->op->name);
    memmove(leaf_node->data, values, leaf_node->size * sizeof(bome_real));
    return BOME_OK;
}

bome_real *bome_data(const bome_node *n) { return n ? n->data : NULL; }
bome_real bome_value(const bome_node *n) { return n && n->data ? n->data[0] : 0.0; }
bome_shape bome_node_shape(const bome_node *n) { return n ? n->shape : (bome_shape){0, 0, 0}; }
size_t bome_size(const bome_node *n) { return n ? n->size : 0; }
const char *bome_node_op(const bome_node *n) { return n ? n->op->name : "(null)"; }
const char *bome_node_name(const bome_node *n) { return n ? n->name : NULL; }
int bome_node_id(const bome_node *n) { return n ? n->id : -1; }

int ad_check_labels_range(bome_graph *g, const bome_node *op, const bome_node *labels, int bound, size_t lo,
                          size_t hi)
{
    if (!labels->labels)
        return ad_error(g, BOME_ERR_ARG, "%s: label vector %s%s%sis not bound (bome_bind_labels)",
                        op->op->name, labels->name ? "'" : "", labels->name ? labels->name : "",
                        labels->name ? "' " : "");
    for (size_t i = lo; i < hi; i++)
        if (labels->labels[i] < 0 || labels->labels[i] >= bound)
            return ad_error(g, BOME_ERR_RANGE, "%s: label[%zu] = %d is outside [0, %d)", op->op->name, i,
                            (int)labels->labels[i], bound);
    return BOME_OK;
}

int ad_check_labels(bome_graph *g, const bome_node *op, const bome_node *labels, int bound)
{
    return ad_check_labels_range(g, op, labels, bound, 0, labels->size);
}

int ad_row_count(const bome_node *n) { return n->shape.rank == 2 ? n->shape.rows : (int)n->size; }
