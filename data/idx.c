/*
 * data/idx.c: readers for the IDX format of MNIST and Fashion-MNIST
 * (big-endian header, then raw unsigned bytes), gzip or plain alike, so
 * callers never care which one they have.
 */
#include "data.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* First allocation for a payload; it grows by doubling as bytes arrive, so a
 * header that lies about its size costs memory only for data really there.
 * Small enough for the allocator's pools: a block mapped and unmapped per
 * file would cost more than the doublings. */
#define FIRST_CHUNK ((size_t)1 << 16)
/* The file is read through a buffer of this size. */
#define IN_BYTES ((size_t)1 << 16)

int data_errf(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/*
 * An IDX file's bytes, inflated when it is gzip (told by its first two
 * bytes, not its name). zlib's inflate is driven directly rather than
 * through gzread, which returns a clean end of file when the input ends
 * before a member's trailer: here a member must reach its end (its CRC-32
 * and length checked), and after the last one only another member may
 * follow.
 */
typedef struct source {
    FILE *f;
    const char *path;
    bool gz, in_member, cut;
    z_stream z;
    unsigned char *in;
} source;

/* More of the file into the input buffer; false at its end or on error
 * (then ferror). */
static bool refill(source *s)
{
    if (s->z.avail_in > 0)
        return true;
    size_t n = fread(s->in, 1, IN_BYTES, s->f);
    s->z.next_in = s->in;
    s->z.avail_in = (uInt)n;
    return n > 0;
}

static int read_error(const source *s, const char *msg, char *err, size_t errlen)
{
    return data_errf(err, errlen, DATA_ERR_READ, "%s: read error: %s", s->path, msg);
}

static int io_error(const source *s, char *err, size_t errlen)
{
    return read_error(s, strerror(errno ? errno : EIO), err, errlen);
}

static int open_idx(const char *path, source *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (!path)
        return data_errf(err, errlen, DATA_ERR_ARG, "IDX file path is NULL");
    s->path = path;
    errno = 0;
    if (!(s->f = fopen(path, "rb")))
        return data_errf(err, errlen, DATA_ERR_OPEN, "%s: cannot open: %s", path,
                         errno ? strerror(errno) : "out of memory");
    if (!(s->in = malloc(IN_BYTES)))
        return data_errf(err, errlen, DATA_ERR_NOMEM, "%s: out of memory", path);
    errno = 0;
    refill(s);
    if (ferror(s->f))
        return io_error(s, err, errlen);
    /* a second byte is needed to tell; a one-byte file is plain (and short) */
    if (s->z.avail_in < 2 && !feof(s->f)) {
        size_t n = fread(s->in + s->z.avail_in, 1, 1, s->f);
        s->z.avail_in += (uInt)n;
        if (ferror(s->f))
            return io_error(s, err, errlen);
    }
    s->gz = s->z.avail_in >= 2 && s->in[0] == 0x1f && s->in[1] == 0x8b;
    if (s->gz) {
        if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK) {
            s->gz = false;
            return data_errf(err, errlen, DATA_ERR_NOMEM, "%s: out of memory for zlib", path);
        }
        s->in_member = true;
    }
    return 0;
}

static void close_idx(source *s)
{
    if (s->gz)
        inflateEnd(&s->z);
    if (s->f)
        fclose(s->f);
    free(s->in);
}

/* Up to len bytes of the file's content into buf; *got is how many came,
 * fewer only at its end. A gzip stream that ends inside a member sets
 * s->cut, for the caller to report once it knows whether the data were
 * whole. */
static int read_some(source *s, uint8_t *buf, size_t len, size_t *got, char *err, size_t errlen)
{
    *got = 0;
    errno = 0;
    if (!s->gz) {
        size_t n = s->z.avail_in < len ? s->z.avail_in : len;
        memcpy(buf, s->z.next_in, n);
        s->z.next_in += n;
        s->z.avail_in -= (uInt)n;
        if (n < len)
            n += fread(buf + n, 1, len - n, s->f);
        *got = n;
        return ferror(s->f) ? io_error(s, err, errlen) : 0;
    }
    while (*got < len && !s->cut) {
        if (!refill(s)) {
            if (ferror(s->f))
                return io_error(s, err, errlen);
            s->cut = s->in_member;
            break;
        }
        if (!s->in_member) {
            /* only another gzip member may follow one; anything else is
             * bytes past the data, and is counted as such */
            if (s->z.avail_in < 2 && !feof(s->f)) {
                memmove(s->in, s->z.next_in, s->z.avail_in);
                s->z.next_in = s->in;
                s->z.avail_in += (uInt)fread(s->in + s->z.avail_in, 1, 1, s->f);
            }
            if (s->z.avail_in < 2 || s->z.next_in[0] != 0x1f || s->z.next_in[1] != 0x8b) {
                size_t n = s->z.avail_in < len - *got ? s->z.avail_in : len - *got;
                memcpy(buf + *got, s->z.next_in, n);
                s->z.next_in += n;
                s->z.avail_in -= (uInt)n;
                *got += n;
                continue;
            }
            inflateReset(&s->z);
            s->in_member = true;
        }
        size_t want = len - *got;
        s->z.next_out = buf + *got;
        s->z.avail_out = want > UINT_MAX ? UINT_MAX : (uInt)want;
        uInt before = s->z.avail_out;
        int r = inflate(&s->z, Z_NO_FLUSH);
        *got += before - s->z.avail_out;
        if (r == Z_STREAM_END)
            s->in_member = false;
        else if (r == Z_MEM_ERROR)
            return data_errf(err, errlen, DATA_ERR_NOMEM, "%s: out of memory for zlib", s->path);
        else if (r != Z_OK && r != Z_BUF_ERROR)
            return read_error(s, s->z.msg ? s->z.msg : "corrupt gzip stream", err, errlen);
    }
    return 0;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

/* Reads the magic number and ndims big-endian dimensions into dims. */
static int read_header(source *s, uint32_t magic, int ndims, uint32_t *dims, char *err, size_t errlen)
{
    uint8_t hdr[16];
    size_t len = 4 + 4 * (size_t)ndims, got = 0, got2 = 0;
    int rc = read_some(s, hdr, 4, &got, err, errlen);
    if (rc)
        return rc;
    if (got == 4 && be32(hdr) != magic)
        return data_errf(err, errlen, DATA_ERR_MAGIC,
                         "%s: bad magic number 0x%08x, expected 0x%08x "
                         "(not an IDX %s file)",
                         s->path, (unsigned)be32(hdr), (unsigned)magic,
                         magic == DATA_IDX_MAGIC_IMAGES ? "image" : "label");
    if (got == 4 && (rc = read_some(s, hdr + 4, len - 4, &got2, err, errlen)))
        return rc;
    if (got + got2 < len)
        return data_errf(err, errlen, DATA_ERR_TRUNCATED,
                         "%s: truncated header: expected %zu bytes, got %zu",
                         s->path, len, got + got2);
    for (int i = 0; i < ndims; i++)
        dims[i] = be32(hdr + 4 + 4 * i);
    return 0;
}

/* After the payload: the end of the file. extra bytes past the payload have
 * come already; any more are counted. */
static int read_to_end(source *s, size_t extra, char *err, size_t errlen)
{
    uint8_t buf[4096];
    uint64_t more = extra;
    size_t n;
    int rc;
    do {
        if ((rc = read_some(s, buf, sizeof buf, &n, err, errlen)))
            return rc;
        more += n;
    } while (n == sizeof buf);
    if (s->cut)
        return data_errf(err, errlen, DATA_ERR_TRUNCATED,
                         "%s: truncated gzip stream: it ends after the "
                         "payload but before its CRC-32 and length trailer",
                         s->path);
    if (more)
        return data_errf(err, errlen, DATA_ERR_TRAILING,
                         "%s: file has %llu byte%s past the declared payload",
                         s->path, (unsigned long long)more, more == 1 ? "" : "s");
    return 0;
}

/* Reads total payload bytes (0 < total < SIZE_MAX) into a fresh buffer, then
 * on to the end of the file. */
static int read_payload(source *s, size_t total, uint8_t **out, char *err, size_t errlen)
{
    size_t want = total + 1;
    size_t cap = want < FIRST_CHUNK ? want : FIRST_CHUNK, got = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        goto nomem;
    for (;;) {
        size_t n = 0;
        int rc = read_some(s, buf + got, cap - got, &n, err, errlen);
        if (rc) {
            free(buf);
            return rc;
        }
        got += n;
        if (got < cap || cap == want)
            break;
        size_t ncap = cap > want / 2 ? want : 2 * cap;
        uint8_t *nbuf = realloc(buf, ncap);
        if (!nbuf)
            goto nomem;
        buf = nbuf;
        cap = ncap;
    }
    if (got < total) {
        free(buf);
        return data_errf(err, errlen, DATA_ERR_TRUNCATED,
                         "%s: truncated data: expected %zu bytes after "
                         "the header, got %zu",
                         s->path, total, got);
    }
    int rc = read_to_end(s, got - total, err, errlen);
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    return 0;
nomem:
    free(buf);
    return data_errf(err, errlen, DATA_ERR_NOMEM,
                     "%s: out of memory for %zu bytes", s->path, total);
}

int data_idx_read_images(const char *path, uint8_t **pixels, int *n, int *rows,
                         int *cols, char *err, size_t errlen)
{
    if (!pixels || !n || !rows || !cols)
        return data_errf(err, errlen, DATA_ERR_ARG,
                         "%s: NULL output pointer", path ? path : "(null)");
    *pixels = NULL;
    *n = *rows = *cols = 0;
    source s;
    uint32_t dim[3] = {0};
    int rc = open_idx(path, &s, err, errlen);
    if (!rc)
        rc = read_header(&s, DATA_IDX_MAGIC_IMAGES, 3, dim, err, errlen);
    if (rc)
        goto done;
    uint64_t total = (uint64_t)dim[0] * dim[1] * dim[2];
    if (dim[0] == 0 || dim[0] > INT_MAX || dim[1] == 0 ||
        dim[1] > DATA_IDX_MAX_SIDE || dim[2] == 0 ||
        dim[2] > DATA_IDX_MAX_SIDE || total > DATA_IDX_MAX_BYTES ||
        total >= SIZE_MAX) {
        rc = data_errf(err, errlen, DATA_ERR_DIMS,
                       "%s: absurd dimensions %u images of %u x %u pixels",
                       path, (unsigned)dim[0], (unsigned)dim[1],
                       (unsigned)dim[2]);
        goto done;
    }
    rc = read_payload(&s, (size_t)total, pixels, err, errlen);
    if (rc == 0) {
        *n = (int)dim[0];
        *rows = (int)dim[1];
        *cols = (int)dim[2];
    }
done:
    close_idx(&s);
    return rc;
}

int data_idx_read_labels(const char *path, uint8_t **labels, int *n, char *err,
                         size_t errlen)
{
    if (!labels || !n)
        return data_errf(err, errlen, DATA_ERR_ARG,
                         "%s: NULL output pointer", path ? path : "(null)");
    *labels = NULL;
    *n = 0;
    source s;
    uint32_t dim[1] = {0};
    int rc = open_idx(path, &s, err, errlen);
    if (!rc)
        rc = read_header(&s, DATA_IDX_MAGIC_LABELS, 1, dim, err, errlen);
    if (rc)
        goto done;
    if (dim[0] == 0 || dim[0] > INT_MAX) {
        rc = data_errf(err, errlen, DATA_ERR_DIMS,
                       "%s: absurd dimensions: %u labels", path,
                       (unsigned)dim[0]);
        goto done;
    }
    rc = read_payload(&s, dim[0], labels, err, errlen);
    if (rc == 0)
        *n = (int)dim[0];
done:
    close_idx(&s);
    return rc;
}

/* Sorts (row, slot) pairs by row, so that one pass over the file meets the
 * wanted rows in order. */
typedef struct want { int32_t row, slot; } want;

static int by_row(const void *a, const void *b)
{
    const want *x = a, *y = b;
    return (x->row > y->row) - (x->row < y->row);
}

/*
 * The rows of one IDX file (item_bytes each, n_items in all) whose numbers
 * are rows[0..n_rows): row rows[k] into out + k * item_bytes. The file is
 * read once, front to back (gzip cannot seek), one item at a time, and
 * only the wanted items are kept: memory goes as n_rows, not n_items.
 */
static int read_rows(source *f, const char *path, uint32_t n_items, size_t item_bytes, const int32_t *rows, int n_rows,
                     uint8_t *out, char *err, size_t errlen)
{
    want *w = malloc((size_t)(n_rows ? n_rows : 1) * sizeof *w);
    uint8_t *skip = malloc(item_bytes);
    if (!w || !skip) {
        free(w);
        free(skip);
        return data_errf(err, errlen, DATA_ERR_NOMEM, "%s: out of memory for %d rows", path, n_rows);
    }
    for (int k = 0; k < n_rows; k++) {
        if (rows[k] < 0 || (uint32_t)rows[k] >= n_items) {
            free(w);
            free(skip);
            return data_errf(err, errlen, DATA_ERR_ARG, "%s: row %d asked for, the file holds %u", path,
                             (int)rows[k], (unsigned)n_items);
        }
        w[k].row = rows[k];
        w[k].slot = k;
    }
    qsort(w, (size_t)n_rows, sizeof *w, by_row);
    int rc = 0, k = 0;
    for (uint32_t i = 0; i < n_items && !rc; i++) {
        uint8_t *dst = k < n_rows && (uint32_t)w[k].row == i ? out + (size_t)w[k].slot * item_bytes : skip;
        size_t got = 0;
        if ((rc = read_some(f, dst, item_bytes, &got, err, errlen)) != 0)
            break;
        if (got < item_bytes)
            rc = data_errf(err, errlen, DATA_ERR_TRUNCATED, "%s: truncated data: item %u of %u is cut", path,
                           (unsigned)i, (unsigned)n_items);
        /* a row asked for twice gets the same bytes in both slots */
        for (; !rc && k < n_rows && (uint32_t)w[k].row == i; k++)
            if (out + (size_t)w[k].slot * item_bytes != dst)
                memcpy(out + (size_t)w[k].slot * item_bytes, dst, item_bytes);
    }
    free(w);
    free(skip);
    return rc ? rc : read_to_end(f, 0, err, errlen);
}

int data_idx_read_image_rows(const char *path, const int32_t *rows, int n_rows, uint8_t **pixels, int *n, int *r,
                             int *c, char *err, size_t errlen)
{
    if (!pixels || !n || !r || !c || n_rows < 0 || (n_rows && !rows))
        return data_errf(err, errlen, DATA_ERR_ARG, "%s: NULL output pointer or bad rows", path ? path : "(null)");
    *pixels = NULL;
    *n = *r = *c = 0;
    source s;
    int rc = open_idx(path, &s, err, errlen);
    if (rc) {
        close_idx(&s);
        return rc;
    }
    uint32_t dim[3] = {0};
    rc = read_header(&s, DATA_IDX_MAGIC_IMAGES, 3, dim, err, errlen);
    if (!rc && (dim[0] == 0 || dim[0] > INT_MAX || dim[1] == 0 || dim[1] > DATA_IDX_MAX_SIDE || dim[2] == 0 ||
                dim[2] > DATA_IDX_MAX_SIDE || (uint64_t)dim[0] * dim[1] * dim[2] > DATA_IDX_MAX_BYTES))
        rc = data_errf(err, errlen, DATA_ERR_DIMS, "%s: absurd dimensions %u images of %u x %u pixels", path,
                       (unsigned)dim[0], (unsigned)dim[1], (unsigned)dim[2]);
    size_t item = (size_t)dim[1] * dim[2];
    uint8_t *buf = NULL;
    if (!rc && !(buf = malloc((size_t)(n_rows ? n_rows : 1) * item)))
        rc = data_errf(err, errlen, DATA_ERR_NOMEM, "%s: out of memory for %d images", path, n_rows);
    if (!rc)
        rc = read_rows(&s, path, dim[0], item, rows, n_rows, buf, err, errlen);
    close_idx(&s);
    if (rc) {
        free(buf);
        return rc;
    }
    *pixels = buf;
    *n = (int)dim[0];
    *r = (int)dim[1];
    *c = (int)dim[2];
    return 0;
}

int data_idx_read_label_rows(const char *path, const int32_t *rows, int n_rows, uint8_t **labels, int *n, char *err,
                             size_t errlen)
{
    if (!labels || !n || n_rows < 0 || (n_rows && !rows))
        return data_errf(err, errlen, DATA_ERR_ARG, "%s: NULL output pointer or bad rows", path ? path : "(null)");
    *labels = NULL;
    *n = 0;
    source s;
    int rc = open_idx(path, &s, err, errlen);
    if (rc) {
        close_idx(&s);
        return rc;
    }
    uint32_t dim[1] = {0};
    rc = read_header(&s, DATA_IDX_MAGIC_LABELS, 1, dim, err, errlen);
    if (!rc && (dim[0] == 0 || dim[0] > INT_MAX))
        rc = data_errf(err, errlen, DATA_ERR_DIMS, "%s: absurd dimensions: %u labels", path, (unsigned)dim[0]);
    uint8_t *buf = NULL;
    if (!rc && !(buf = malloc((size_t)(n_rows ? n_rows : 1))))
        rc = data_errf(err, errlen, DATA_ERR_NOMEM, "%s: out of memory for %d labels", path, n_rows);
    if (!rc)
        rc = read_rows(&s, path, dim[0], 1, rows, n_rows, buf, err, errlen);
    close_idx(&s);
    if (rc) {
        free(buf);
        return rc;
    }
    *labels = buf;
    *n = (int)dim[0];
    return 0;
}

int data_idx_image_count(const char *path, int *n, char *err, size_t errlen)
{
    *n = 0;
    source s;
    int rc = open_idx(path, &s, err, errlen);
    if (rc) {
        close_idx(&s);
        return rc;
    }
    uint32_t dim[3] = {0};
    rc = read_header(&s, DATA_IDX_MAGIC_IMAGES, 3, dim, err, errlen);
    close_idx(&s);
    if (!rc && (dim[0] == 0 || dim[0] > INT_MAX))
        rc = data_errf(err, errlen, DATA_ERR_DIMS, "%s: absurd dimensions: %u images", path, (unsigned)dim[0]);
    if (!rc)
        *n = (int)dim[0];
    return rc;
}
