/*
 * The warm-start cache of hc_model.h. A file is
 *
 *   magic "bomehc2\n", version, byte-order mark,
 *   the key (hc_cache_key, field by field), the model's shapes,
 *   the parameters (doubles, in the model's order),
 *   a CRC-32 of every byte before it.
 *
 * The header a run expects is built from its own key and model and compared
 * byte for byte, so a file of another run, another layout or another host's
 * byte order is refused as a whole.
 */
#include "hc_model.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static const char MAGIC[8] = "bomehc2\n";
#define VERSION 2u
#define BYTE_ORDER_MARK 0x01020304u
/* The magic, the version and the mark */
#define PREAMBLE 16
/* The largest header: the preamble, the key and four parameters' shapes. */
#define MAX_HEADER 512

/* ---- digests -------------------------------------------------------------- */

/* CRC-32 and Adler-32 side by side: 64 bits, both from zlib, both fast
 * enough to run over a training set in a fraction of its training time. */
typedef struct digest {
    uLong crc, adler;
} digest;

static void digest_init(digest *d)
{
    d->crc = crc32(0L, Z_NULL, 0);
    d->adler = adler32(0L, Z_NULL, 0);
}

static void digest_add(digest *d, const void *p, size_t n)
{
    const Bytef *b = p;
    while (n > 0) {
        uInt part = n > (1u << 30) ? 1u << 30 : (uInt)n;
        d->crc = crc32(d->crc, b, part);
        d->adler = adler32(d->adler, b, part);
        b += part;
        n -= part;
    }
}

static uint64_t digest_value(const digest *d)
{
    return (uint64_t)(d->crc & 0xffffffffu) << 32 | (d->adler & 0xffffffffu);
}

static uint32_t checksum(const unsigned char *p, size_t n)
{
    digest d;
    digest_init(&d);
    digest_add(&d, p, n);
    return (uint32_t)(d.crc & 0xffffffffu);
}

static void digest_set(digest *d, hc_set s, int cols)
{
    int32_t n = s.n;
    digest_add(d, &n, sizeof n);
    if (s.n > 0) {
        digest_add(d, s.x, (size_t)s.n * (size_t)cols * sizeof *s.x);
        digest_add(d, s.y, (size_t)s.n * sizeof *s.y);
    }
}

void hc_cache_key_make(hc_cache_key *k, const char *name, const hc_model *m, hc_set a, hc_set b, hc_set held,
                       const hc_fit *fit, uint64_t seed)
{
    memset(k, 0, sizeof *k);
    snprintf(k->name, sizeof k->name, "%s", name);
    digest d;
    digest_init(&d);
    digest_set(&d, a, m->d);
    digest_set(&d, b, m->d);
    digest_set(&d, held, m->d);
    k->data = digest_value(&d);
    digest_init(&d);
    for (int i = 0; i < m->n_params; i++)
        digest_add(&d, m->theta[i], m->size[i] * sizeof(bome_real));
    k->start = digest_value(&d);
    if (fit->penalty_key) {
        digest_init(&d);
        digest_add(&d, fit->penalty_key, fit->penalty_key_len);
        k->penalty = digest_value(&d);
    }
    k->seed = seed;
    k->steps = fit->steps;
    k->n_a = a.n;
    k->n_b = b.n;
    k->n_held = held.n;
    k->lr = fit->lr;
    k->l2 = fit->penalty ? 0.0 : fit->l2;
}

/* ---- the header -------------------------------------------------------------- */

typedef struct writer {
    unsigned char *p;
    size_t n;
} writer;

static void put(writer *w, const void *v, size_t n)
{
    memcpy(w->p + w->n, v, n);
    w->n += n;
}

static void put32(writer *w, uint32_t v) { put(w, &v, sizeof v); }
static void put64(writer *w, uint64_t v) { put(w, &v, sizeof v); }
static void putd(writer *w, double v) { put(w, &v, sizeof v); }

/* The header for k and m into h (MAX_HEADER bytes); returns its length. */
static size_t header(unsigned char *h, const hc_cache_key *k, const hc_model *m)
{
    writer w = {h, 0};
    put(&w, MAGIC, sizeof MAGIC);
    put32(&w, VERSION);
    put32(&w, BYTE_ORDER_MARK);
    put(&w, k->name, sizeof k->name);
    put64(&w, k->data);
    put64(&w, k->start);
    put64(&w, k->penalty);
    put64(&w, k->seed);
    put32(&w, (uint32_t)k->steps);
    put32(&w, (uint32_t)k->n_a);
    put32(&w, (uint32_t)k->n_b);
    put32(&w, (uint32_t)k->n_held);
    putd(&w, k->lr);
    putd(&w, k->l2);
    put32(&w, m->mlp);
    put32(&w, (uint32_t)m->d);
    put32(&w, (uint32_t)m->hidden);
    put32(&w, (uint32_t)m->classes);
    put32(&w, (uint32_t)m->n_params);
    for (int i = 0; i < m->n_params; i++) {
        put32(&w, (uint32_t)m->shape[i].rank);
        put32(&w, (uint32_t)m->shape[i].rows);
        put32(&w, (uint32_t)m->shape[i].cols);
        put64(&w, m->size[i]);
    }
    return w.n;
}

static size_t payload_bytes(const hc_model *m)
{
    size_t n = 0;
    for (int i = 0; i < m->n_params; i++)
        n += m->size[i] * sizeof(bome_real);
    return n;
}

void hc_cache_path(char *path, size_t len, const char *dir, const hc_cache_key *k, const hc_model *m)
{
    unsigned char h[MAX_HEADER];
    size_t n = header(h, k, m);
    digest d;
    digest_init(&d);
    digest_add(&d, h, n);
    snprintf(path, len, "%s/%s-%016llx.bin", dir, k->name, (unsigned long long)digest_value(&d));
}

/* ---- reading ----------------------------------------------------------------- */

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int reject(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return HC_CACHE_REJECTED;
}

int hc_cache_parse(const unsigned char *buf, size_t len, const hc_cache_key *k, hc_model *m, char *err, size_t errlen)
{
    unsigned char want[MAX_HEADER];
    size_t hlen = header(want, k, m), total = hlen + payload_bytes(m) + 4;
    if (len < PREAMBLE || memcmp(buf, MAGIC, sizeof MAGIC))
        return reject(err, errlen, "not a bome cache file");
    if (memcmp(buf + sizeof MAGIC, want + sizeof MAGIC, PREAMBLE - sizeof MAGIC))
        return reject(err, errlen, "another version or byte order");
    if (memcmp(buf, want, len < hlen ? len : hlen))
        return reject(err, errlen, "made for another run (its key or shapes differ)");
    if (len != total)
        return reject(err, errlen, "%zu bytes where %zu were expected (truncated or extended)", len, total);
    uint32_t stored;
    memcpy(&stored, buf + total - 4, sizeof stored);
    if (checksum(buf, total - 4) != stored)
        return reject(err, errlen, "checksum mismatch (the file is damaged)");
    /* every value is checked before the first is copied into m */
    const unsigned char *p = buf + hlen;
    for (int i = 0; i < m->n_params; i++)
        for (size_t j = 0; j < m->size[i]; j++, p += sizeof(bome_real)) {
            bome_real v;
            memcpy(&v, p, sizeof v);
            if (!isfinite(v) || fabs(v) > HC_CACHE_MAX_ABS)
                return reject(err, errlen, "parameter %d, value %zu is %g (%s)", i, j, v,
                              isfinite(v) ? "out of range" : "not finite");
        }
    p = buf + hlen;
    for (int i = 0; i < m->n_params; i++) {
        memcpy(m->theta[i], p, m->size[i] * sizeof(bome_real));
        p += m->size[i] * sizeof(bome_real);
    }
    return HC_CACHE_LOADED;
}

int hc_cache_load(const char *path, const hc_cache_key *k, hc_model *m, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return HC_CACHE_ABSENT;
        return reject(err, errlen, "cannot open: %s", strerror(errno));
    }
    unsigned char h[MAX_HEADER];
    /* one byte more than the file should hold, so that a longer file shows */
    size_t want = header(h, k, m) + payload_bytes(m) + 4 + 1;
    unsigned char *buf = malloc(want);
    if (!buf) {
        fclose(f);
        return reject(err, errlen, "out of memory for %zu bytes", want);
    }
    size_t got = fread(buf, 1, want, f);
    int bad = ferror(f);
    fclose(f);
    int rc = bad ? reject(err, errlen, "read error") : hc_cache_parse(buf, got, k, m, err, errlen);
    free(buf);
    return rc;
}

/* ---- writing ----------------------------------------------------------------- */

unsigned char *hc_cache_bytes(const hc_cache_key *k, const hc_model *m, size_t *len)
{
    unsigned char h[MAX_HEADER];
    size_t hlen = header(h, k, m);
    *len = hlen + payload_bytes(m) + 4;
    unsigned char *buf = malloc(*len);
    if (!buf)
        return NULL;
    writer w = {buf, 0};
    put(&w, h, hlen);
    for (int i = 0; i < m->n_params; i++)
        put(&w, m->theta[i], m->size[i] * sizeof(bome_real));
    put32(&w, checksum(buf, w.n));
    return buf;
}

int hc_cache_save(const char *path, const hc_cache_key *k, const hc_model *m)
{
    size_t len;
    unsigned char *buf = hc_cache_bytes(k, m, &len);
    if (!buf)
        return BOME_ERR_NOMEM;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    bool ok = f && fwrite(buf, 1, len, f) == len && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (f && fclose(f) == 0) && ok;
    free(buf);
    /* renamed into place, so that an interrupted run never leaves a torn cache */
    if (!ok || rename(tmp, path) != 0) {
        struct stat st;
        if (lstat(tmp, &st) == 0 && S_ISREG(st.st_mode))
            remove(tmp);
        return BOME_ERR_IO;
    }
    return BOME_OK;
}
