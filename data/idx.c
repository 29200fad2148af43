/*
 * data/idx.c: readers for the IDX format of MNIST and Fashion-MNIST
 * (big-endian header, then raw unsigned bytes). zlib's gz* functions read
 * gzip and plain files alike, so callers never care which one they have.
 */
#include "data.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* First allocation for a payload; it grows by doubling as bytes arrive, so a
 * header that lies about its size costs memory only for data really there. */
#define FIRST_CHUNK ((size_t)1 << 22)
/* gzread takes an unsigned count and returns an int: stay below INT_MAX. */
#define MAX_READ ((size_t)1 << 30)

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

/* Reads up to len bytes into buf, looping because gzread may return short
 * counts; *got is how many arrived. Returns -1 on a read error. */
static int read_some(gzFile f, uint8_t *buf, size_t len, size_t *got)
{
    *got = 0;
    while (*got < len) {
        size_t want = len - *got;
        if (want > MAX_READ)
            want = MAX_READ;
        int r = gzread(f, buf + *got, (unsigned)want);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return 0;
}

static int read_error(gzFile f, const char *path, char *err, size_t errlen)
{
    int zerr = Z_OK;
    const char *msg = gzerror(f, &zerr);
    size_t plen = strlen(path);
    if (zerr == Z_ERRNO)
        msg = strerror(errno);
    else if (msg && strncmp(msg, path, plen) == 0 && msg[plen] == ':')
        msg += plen + 1 + (msg[plen + 1] == ' '); /* zlib prefixes the path */
    return data_errf(err, errlen, DATA_ERR_READ,
                     "%s: read error: %s", path, msg ? msg : "unknown");
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

static int open_idx(const char *path, gzFile *f, char *err, size_t errlen)
{
    if (!path)
        return data_errf(err, errlen, DATA_ERR_ARG,
                         "IDX file path is NULL");
    errno = 0;
    *f = gzopen(path, "rb");
    if (!*f)
        return data_errf(err, errlen, DATA_ERR_OPEN,
                         "%s: cannot open: %s", path,
                         errno ? strerror(errno) : "out of memory");
    gzbuffer(*f, 1u << 17);
    return 0;
}

/* Reads the magic number and ndims big-endian dimensions into dims. */
static int read_header(gzFile f, const char *path, uint32_t magic, int ndims,
                       uint32_t *dims, char *err, size_t errlen)
{
    uint8_t hdr[16];
    size_t len = 4 + 4 * (size_t)ndims, got = 0, got2 = 0;
    if (read_some(f, hdr, 4, &got) != 0)
        return read_error(f, path, err, errlen);
    if (got == 4 && be32(hdr) != magic)
        return data_errf(err, errlen, DATA_ERR_MAGIC,
                         "%s: bad magic number 0x%08x, expected 0x%08x "
                         "(not an IDX %s file)",
                         path, (unsigned)be32(hdr), (unsigned)magic,
                         magic == DATA_IDX_MAGIC_IMAGES ? "image" : "label");
    if (got == 4 && read_some(f, hdr + 4, len - 4, &got2) != 0)
        return read_error(f, path, err, errlen);
    if (got + got2 < len)
        return data_errf(err, errlen, DATA_ERR_TRUNCATED,
                         "%s: truncated header: expected %zu bytes, got %zu",
                         path, len, got + got2);
    for (int i = 0; i < ndims; i++)
        dims[i] = be32(hdr + 4 + 4 * i);
    return 0;
}

/*
 * After the payload: the end of the file. extra bytes past the payload have
 * come already; any more are counted. A cut gzip trailer shows only as the
 * sticky Z_BUF_ERROR of the read that met the end of the file.
 */
static int read_to_end(gzFile f, const char *path, size_t extra, char *err,
                       size_t errlen)
{
    uint8_t buf[4096];
    uint64_t more = extra;
    int r;
    while ((r = gzread(f, buf, sizeof buf)) > 0)
        more += (uint64_t)r;
    int zerr = Z_OK;
    gzerror(f, &zerr);
    if (zerr == Z_BUF_ERROR)
        return data_errf(err, errlen, DATA_ERR_TRUNCATED,
                         "%s: truncated gzip stream: it ends after the "
                         "payload but before its CRC-32 and length trailer",
                         path);
    if (r < 0 || zerr != Z_OK)
        return read_error(f, path, err, errlen);
    if (more)
        return data_errf(err, errlen, DATA_ERR_TRAILING,
                         "%s: file has %llu byte%s past the declared payload",
                         path, (unsigned long long)more, more == 1 ? "" : "s");
    return 0;
}

/*
 * Reads total payload bytes (0 < total < SIZE_MAX) into a fresh buffer, then
 * on to the end of the file. One byte more than the payload is asked for:
 * zlib checks a gzip stream's CRC-32 and length only while it has room to
 * write, so a read that ended exactly with the payload would leave a cut or
 * corrupt trailer unread.
 */
static int read_payload(gzFile f, const char *path, size_t total, uint8_t **out,
                        char *err, size_t errlen)
{
    size_t want = total + 1;
    size_t cap = want < FIRST_CHUNK ? want : FIRST_CHUNK, got = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        goto nomem;
    for (;;) {
        size_t n = 0;
        if (read_some(f, buf + got, cap - got, &n) != 0) {
            free(buf);
            return read_error(f, path, err, errlen);
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
                         path, total, got);
    }
    int rc = read_to_end(f, path, got - total, err, errlen);
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    return 0;
nomem:
    free(buf);
    return data_errf(err, errlen, DATA_ERR_NOMEM,
                     "%s: out of memory for %zu bytes", path, total);
}

int data_idx_read_images(const char *path, uint8_t **pixels, int *n, int *rows,
                         int *cols, char *err, size_t errlen)
{
    if (!pixels || !n || !rows || !cols)
        return data_errf(err, errlen, DATA_ERR_ARG,
                         "%s: NULL output pointer", path ? path : "(null)");
    *pixels = NULL;
    *n = *rows = *cols = 0;
    gzFile f;
    int rc = open_idx(path, &f, err, errlen);
    if (rc)
        return rc;
    uint32_t dim[3] = {0};
    rc = read_header(f, path, DATA_IDX_MAGIC_IMAGES, 3, dim, err, errlen);
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
    rc = read_payload(f, path, (size_t)total, pixels, err, errlen);
    if (rc == 0) {
        *n = (int)dim[0];
        *rows = (int)dim[1];
        *cols = (int)dim[2];
    }
done:
    gzclose(f);
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
    gzFile f;
    int rc = open_idx(path, &f, err, errlen);
    if (rc)
        return rc;
    uint32_t dim[1] = {0};
    rc = read_header(f, path, DATA_IDX_MAGIC_LABELS, 1, dim, err, errlen);
    if (rc)
        goto done;
    if (dim[0] == 0 || dim[0] > INT_MAX) {
        rc = data_errf(err, errlen, DATA_ERR_DIMS,
                       "%s: absurd dimensions: %u labels", path,
                       (unsigned)dim[0]);
        goto done;
    }
    rc = read_payload(f, path, dim[0], labels, err, errlen);
    if (rc == 0)
        *n = (int)dim[0];
done:
    gzclose(f);
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
static int read_rows(gzFile f, const char *path, uint32_t n_items, size_t item_bytes, const int32_t *rows, int n_rows,
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
        if (read_some(f, dst, item_bytes, &got) != 0)
            rc = read_error(f, path, err, errlen);
        else if (got < item_bytes)
            rc = data_errf(err, errlen, DATA_ERR_TRUNCATED, "%s: truncated data: item %u of %u is cut", path,
                           (unsigned)i, (unsigned)n_items);
        /* a row asked for twice gets the same bytes in both slots */
        for (; !rc && k < n_rows && (uint32_t)w[k].row == i; k++)
            if (out + (size_t)w[k].slot * item_bytes != dst)
                memcpy(out + (size_t)w[k].slot * item_bytes, dst, item_bytes);
    }
    free(w);
    free(skip);
    return rc ? rc : read_to_end(f, path, 0, err, errlen);
}

int data_idx_read_image_rows(const char *path, const int32_t *rows, int n_rows, uint8_t **pixels, int *n, int *r,
                             int *c, char *err, size_t errlen)
{
    if (!pixels || !n || !r || !c || n_rows < 0 || (n_rows && !rows))
        return data_errf(err, errlen, DATA_ERR_ARG, "%s: NULL output pointer or bad rows", path ? path : "(null)");
    *pixels = NULL;
    *n = *r = *c = 0;
    gzFile f;
    int rc = open_idx(path, &f, err, errlen);
    if (rc)
        return rc;
    uint32_t dim[3] = {0};
    rc = read_header(f, path, DATA_IDX_MAGIC_IMAGES, 3, dim, err, errlen);
    if (!rc && (dim[0] == 0 || dim[0] > INT_MAX || dim[1] == 0 || dim[1] > DATA_IDX_MAX_SIDE || dim[2] == 0 ||
                dim[2] > DATA_IDX_MAX_SIDE || (uint64_t)dim[0] * dim[1] * dim[2] > DATA_IDX_MAX_BYTES))
        rc = data_errf(err, errlen, DATA_ERR_DIMS, "%s: absurd dimensions %u images of %u x %u pixels", path,
                       (unsigned)dim[0], (unsigned)dim[1], (unsigned)dim[2]);
    size_t item = (size_t)dim[1] * dim[2];
    uint8_t *buf = NULL;
    if (!rc && !(buf = malloc((size_t)(n_rows ? n_rows : 1) * item)))
        rc = data_errf(err, errlen, DATA_ERR_NOMEM, "%s: out of memory for %d images", path, n_rows);
    if (!rc)
        rc = read_rows(f, path, dim[0], item, rows, n_rows, buf, err, errlen);
    gzclose(f);
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
    gzFile f;
    int rc = open_idx(path, &f, err, errlen);
    if (rc)
        return rc;
    uint32_t dim[1] = {0};
    rc = read_header(f, path, DATA_IDX_MAGIC_LABELS, 1, dim, err, errlen);
    if (!rc && (dim[0] == 0 || dim[0] > INT_MAX))
        rc = data_errf(err, errlen, DATA_ERR_DIMS, "%s: absurd dimensions: %u labels", path, (unsigned)dim[0]);
    uint8_t *buf = NULL;
    if (!rc && !(buf = malloc((size_t)(n_rows ? n_rows : 1))))
        rc = data_errf(err, errlen, DATA_ERR_NOMEM, "%s: out of memory for %d labels", path, n_rows);
    if (!rc)
        rc = read_rows(f, path, dim[0], 1, rows, n_rows, buf, err, errlen);
    gzclose(f);
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
    gzFile f;
    int rc = open_idx(path, &f, err, errlen);
    if (rc)
        return rc;
    uint32_t dim[3] = {0};
    rc = read_header(f, path, DATA_IDX_MAGIC_IMAGES, 3, dim, err, errlen);
    gzclose(f);
    if (!rc && (dim[0] == 0 || dim[0] > INT_MAX))
        rc = data_errf(err, errlen, DATA_ERR_DIMS, "%s: absurd dimensions: %u images", path, (unsigned)dim[0]);
    if (!rc)
        *n = (int)dim[0];
    return rc;
}
