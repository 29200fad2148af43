/* Checkpoints as bytes: a header that identifies the run, the state, and a
 * checksum over all of it. The layout, little or big endian as the machine
 * is (a checkpoint moves between runs, not machines):
 *   "BOMECKP1", u32 version, u32 bits of bome_real, u32 method, u32 nk, u64 sizes[nk],
 *   u64 settings hash, u32 n_persist, u64 persist bytes[n],
 *   i64 steps, f64 total_seconds, u64 rng[4], u8 inner_buf_live,
 *   values[nk], m1[nk], m2[nk] (Adam only), inner_buf[nt], persist[n],
 *   u64 FNV-1a of everything before. */
#include "method.h"

#include <stdio.h>
#include <string.h>

/* 2: the precision joined the header (a float64 checkpoint's bytes must not
 * be read as floats by libbome_f32). */
enum { VERSION = 2 };
static const char MAGIC[8] = {'B', 'O', 'M', 'E', 'C', 'K', 'P', '1'};

int opt_persist(bome_solver *s, const char *what, void *ptr, size_t bytes)
{
    if (s->n_persist >= (int)(sizeof s->persist / sizeof s->persist[0]))
        return opt_fail(s, BOME_ERR_STATE, "opt_persist: more than 16 buffers for %s", what);
    s->persist[s->n_persist++] = (struct opt_persisted){what, ptr, bytes};
    return BOME_OK;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 1099511628211u;
    return h;
}

/* Every setting that shapes the trajectory, as stored. */
uint64_t opt_settings_hash(const bome_solver *s)
{
    uint64_t h = 14695981039346656037u;
    int n = bome_option_count();
    for (int i = 0; i < n; i++) {
        bome_option_info d;
        double x;
        bome_option_info_at(i, &d);
        if ((d.method >= 0 && d.method != (int)s->o.method) || !strcmp(d.name, "max_steps") ||
            !strcmp(d.name, "tol") || !strcmp(d.name, "threads"))
            continue;
        bome_options_get(&s->o, d.name, &x);
        h = fnv(h, d.name, strlen(d.name));
        h = fnv(h, &x, sizeof x);
    }
    return h;
}

/* A cursor that writes (w) or reads (r) or only counts (neither). */
typedef struct cursor {
    unsigned char *w;
    const unsigned char *r;
    size_t at, size;
    bool short_;
} cursor;

static void io(cursor *c, void *p, size_t n)
{
    if (c->at + n > c->size || c->at + n < c->at) {
        c->short_ = true;
        c->at += n;
        return;
    }
    if (c->w)
        memcpy(c->w + c->at, p, n);
    else if (c->r && p)
        memcpy(p, c->r + c->at, n);
    c->at += n;
}

#define IO(c, x) io(c, &(x), sizeof(x))

/* The header, written or compared; 0 or why it does not match. */
static const char *header(bome_solver *s, cursor *c)
{
    char magic[8];
    uint32_t version = VERSION, method = (uint32_t)s->o.method, nk = (uint32_t)s->nk, np = (uint32_t)s->n_persist;
    uint64_t hash = opt_settings_hash(s);
    memcpy(magic, MAGIC, sizeof magic);
    uint32_t bits = BOME_REAL_BITS, want[3] = {version, method, nk};
    io(c, magic, sizeof magic);
    IO(c, version);
    if (c->r && memcmp(magic, MAGIC, sizeof magic))
        return "it is not a bome checkpoint";
    if (c->r && version != want[0])
        return "it is of another version of the format";
    IO(c, bits);
    if (c->r && bits != BOME_REAL_BITS)
        return BOME_REAL_BITS == 32 ? "it is of another precision: written in float64, this run is float32"
                                    : "it is of another precision: written in float32, this run is float64";
    IO(c, method);
    IO(c, nk);
    if (c->r && method != want[1])
        return "it is of another method";
    if (c->r && nk != want[2])
        return "it has another number of variables";
    for (int k = 0; k < s->nk; k++) {
        uint64_t size = s->var[k]->size, mine = size;
        IO(c, size);
        if (c->r && size != mine)
            return "its variables have other sizes";
    }
    uint64_t mine = hash;
    IO(c, hash);
    if (c->r && hash != mine)
        return "its settings differ from this run's";
    IO(c, np);
    if (c->r && np != (uint32_t)s->n_persist)
        return "its method state differs";
    for (int i = 0; i < s->n_persist; i++) {
        uint64_t b = s->persist[i].bytes, my = b;
        IO(c, b);
        if (c->r && b != my)
            return "its method state has other sizes";
    }
    return NULL;
}

/* The state after the header: to the solver (c->r), from it (c->w), or counted. */
static void body(bome_solver *s, cursor *c)
{
    int64_t steps = s->steps;
    uint8_t live = s->inner_buf_live;
    IO(c, steps);
    IO(c, s->total_seconds);
    IO(c, s->total_grad);
    IO(c, s->total_hvp);
    io(c, s->rng.s, sizeof s->rng.s);
    IO(c, live);
    for (int k = 0; k < s->nk; k++)
        io(c, s->var[k]->values, s->var[k]->size * sizeof(bome_real));
    for (int k = 0; k < s->nk; k++)
        io(c, s->m1[k], s->var[k]->size * sizeof(bome_real));
    for (int k = 0; s->m2 && k < s->nk; k++)
        io(c, s->m2[k], s->var[k]->size * sizeof(bome_real));
    for (int j = 0; j < s->nt; j++)
        io(c, s->inner_buf[j], s->var[s->nv + j]->size * sizeof(bome_real));
    for (int i = 0; i < s->n_persist; i++)
        io(c, s->persist[i].ptr, s->persist[i].bytes);
    if (c->r) {
        s->steps = steps;
        s->inner_buf_live = live != 0;
    }
}

size_t bome_solver_state_size(const bome_solver *s)
{
    if (!s || s->status)
        return 0;
    cursor c = {NULL, NULL, 0, SIZE_MAX, false};
    header((bome_solver *)s, &c);
    body((bome_solver *)s, &c);
    return c.at + sizeof(uint64_t);
}

int bome_solver_save(bome_solver *s, void *buf, size_t size)
{
    if (!s)
        return BOME_ERR_ARG;
    if (s->status)
        return s->dead ? BOME_ERR_STATE : s->status;
    size_t need = bome_solver_state_size(s);
    if (!buf || size < need)
        return opt_fail(s, BOME_ERR_ARG, "bome_solver_save: the buffer has %zu bytes; the state needs %zu", size, need);
    cursor c = {buf, NULL, 0, need - sizeof(uint64_t), false};
    header(s, &c);
    body(s, &c);
    uint64_t h = fnv(14695981039346656037u, buf, c.at);
    memcpy((unsigned char *)buf + c.at, &h, sizeof h);
    return BOME_OK;
}

int bome_solver_load(bome_solver *s, const void *buf, size_t size)
{
    if (!s)
        return BOME_ERR_ARG;
    if (s->status)
        return s->dead ? BOME_ERR_STATE : s->status;
    size_t need = bome_solver_state_size(s);
    /* checked whole before anything changes */
    /* A refused checkpoint leaves the solver usable: the message is set,
     * the status is not. */
    /* the most telling reason first: another run's header, then the size,
     * then the checksum */
    uint64_t h = 0, want = 1;
    if (buf && size >= sizeof h) {
        want = fnv(14695981039346656037u, buf, size - sizeof h);
        memcpy(&h, (const unsigned char *)buf + size - sizeof h, sizeof h);
    }
    cursor c = {NULL, buf, 0, buf ? size : 0, false};
    const char *why = h != want ? "its checksum does not match (it is corrupt or truncated)" : header(s, &c);
    if (!why && (c.short_ || size != need)) {
        snprintf(s->msg, sizeof s->msg, "the checkpoint does not fit: it has %zu bytes where this run's state has %zu",
                 size, need);
        return BOME_ERR_ARG;
    }
    if (why) {
        snprintf(s->msg, sizeof s->msg, "the checkpoint does not fit: %s", why);
        return BOME_ERR_ARG;
    }
    body(s, &c);
    return BOME_OK;
}
