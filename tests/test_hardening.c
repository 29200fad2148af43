/*
 * tests/test_hardening.c: inputs that used to get through unchecked (issue
 * 12). Shapes whose byte count wraps around or that no node may hold; nodes
 * handed to a graph that did not make them; gzip IDX files whose trailer is
 * cut or corrupt, or that run on past the payload their header declares;
 * warm-start caches of another run, cut, damaged, or holding NaN or 1e300;
 * a node kept from a freed graph.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bome/ad.h"
#include "bome/opt.h"
#include "data.h"
#include "hc_model.h"
#include "idx_fixture.h"

static bome_graph *g, *h;

/* The C library's allocator, refusing blocks over *ud bytes: a request for
 * gigabytes fails at once instead of swapping. */
static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return nsize > *(const size_t *)ud ? NULL : realloc(ptr, nsize);
}

/* 64 MiB in float64, 32 MiB in float32: 4000 x 4000 elements never fit. */
static size_t cap = ((size_t)64 << 20) / 8 * sizeof(bome_real);

static void setup(void)
{
    g = bome_graph_new_alloc(capped_alloc, &cap);
    h = bome_graph_new_alloc(capped_alloc, &cap);
    cr_assert(g && h);
}

static void teardown(void)
{
    bome_graph_free(g);
    bome_graph_free(h);
}

/* The call failed, g holds code and its message each of the strings that
 * follow (up to NULL); then g's error is cleared. */
static void expect_(int line, bool failed, int code, ...)
{
    const char *msg = bome_graph_errmsg(g);
    cr_assert(failed, "line %d: the call succeeded (status %d, message '%s')", line, bome_graph_status(g), msg);
    cr_assert_eq(bome_graph_status(g), code, "line %d: status %d, expected %d; message '%s'", line,
                 bome_graph_status(g), code, msg);
    va_list ap;
    va_start(ap, code);
    for (const char *want; (want = va_arg(ap, const char *));)
        cr_assert_not_null(strstr(msg, want), "line %d: message '%s' lacks '%s'", line, msg, want);
    va_end(ap);
    bome_graph_clear_error(g);
}

#define EXPECT(failed, code, ...) expect_(__LINE__, (failed), (code), __VA_ARGS__, (const char *)NULL)

/* ---- sizes ------------------------------------------------------------------ */

TestSuite(sizes, .init = setup, .fini = teardown);

/* 1519111591 x 1517889155 doubles: the byte count wraps around 2^64 to
 * 13224, which the allocator gladly gives. */
#define WRAP_R 1519111591
#define WRAP_C 1517889155

Test(sizes, byte_count_that_wraps)
{
    EXPECT(!bome_param(g, "w", BOME_MATRIX(WRAP_R, WRAP_C)), BOME_ERR_ARG, "param 'w'",
           "matrix(1519111591x1517889155)", "too large");
    EXPECT(!bome_input(g, "X", BOME_MATRIX(WRAP_C, WRAP_R)), BOME_ERR_ARG, "input 'X'",
           "matrix(1517889155x1519111591)");
    EXPECT(!bome_const(g, BOME_MATRIX(WRAP_R, WRAP_C), NULL), BOME_ERR_ARG, "const", "too large");
    cr_assert_eq(bome_graph_size(g), 0, "a refused node stays off the tape");
    /* Negative dimensions were refused already; their product is positive. */
    EXPECT(!bome_param(g, "n", BOME_MATRIX(-WRAP_R, -WRAP_C)), BOME_ERR_SHAPE, "param 'n'", "invalid shape");
    EXPECT(!bome_input(g, "v", BOME_VECTOR(-3)), BOME_ERR_SHAPE, "invalid shape");
    EXPECT(!bome_labels(g, "l", -3), BOME_ERR_SHAPE, "invalid shape");
    bome_node *x = bome_param(g, "x", BOME_VECTOR(6));
    EXPECT(!bome_reshape(g, x, BOME_MATRIX(-2, -3)), BOME_ERR_SHAPE, "reshape", "invalid shape");
}

/* Small nodes whose result would exceed what a node holds (INT_MAX
 * elements): refused before anything is allocated. */
Test(sizes, op_result_too_large)
{
    bome_node *col = bome_param(g, "c", BOME_MATRIX(50000, 1)), *row = bome_param(g, "r", BOME_MATRIX(1, 50000));
    bome_node *v = bome_param(g, "v", BOME_VECTOR(50000)), *idx = bome_labels(g, "idx", 50000);
    cr_assert_eq(bome_graph_status(g), BOME_OK, "%s", bome_graph_errmsg(g));
    EXPECT(!bome_matmul(g, col, 0, row, 0), BOME_ERR_ARG, "matmul", "matrix(50000x50000)", "too large");
    EXPECT(!bome_matmul(g, row, 1, col, 1), BOME_ERR_ARG, "matmul", "matrix(50000x50000)");
    EXPECT(!bome_add(g, col, v), BOME_ERR_ARG, "add", "matrix(50000x50000)");
    EXPECT(!bome_mul(g, row, col), BOME_ERR_ARG, "mul", "matrix(50000x50000)");
    EXPECT(!bome_gather_rows(g, row, idx), BOME_ERR_ARG, "gather_rows", "matrix(50000x50000)");
}

/* A node that may exist but that the allocator will not give: out of
 * memory, for what and how much. */
Test(sizes, out_of_memory_names_op_and_shape)
{
    bome_node *col = bome_param(g, "c", BOME_MATRIX(4000, 1)), *row = bome_param(g, "r", BOME_MATRIX(1, 4000));
    char bytes[40];
    snprintf(bytes, sizeof bytes, "%zu bytes", (size_t)4000 * 4000 * sizeof(bome_real));
    EXPECT(!bome_matmul(g, col, 0, row, 0), BOME_ERR_NOMEM, "matmul: out of memory for matrix(4000x4000)", bytes);
    EXPECT(!bome_param(g, "big", BOME_MATRIX(4000, 4000)), BOME_ERR_NOMEM, "param 'big': out of memory");
}

/* ---- nodes of another graph ----------------------------------------------------- */

/* a, b: g's; x, y (unnamed: node 2, a sum) and labels hl: h's. g's tape is
 * the longer, so that on it the ids of h's nodes name real nodes. */
static bome_node *a, *b, *x, *y, *hl;

static void setup_two(void)
{
    setup();
    a = bome_param(g, "a", BOME_VECTOR(3));
    b = bome_sum(g, bome_exp(g, bome_square(g, a)));
    x = bome_param(h, "x", BOME_VECTOR(3));
    y = bome_sum(h, bome_exp(h, x));
    hl = bome_labels(h, "hl", 3);
    cr_assert(a && b && x && y && hl);
}

TestSuite(foreign, .init = setup_two, .fini = teardown);

Test(foreign, op_arguments)
{
    bome_node *m = bome_param(g, "m", BOME_MATRIX(3, 4));
    EXPECT(!bome_add(g, a, x), BOME_ERR_ARG, "add, argument 2: node 'x' belongs to another graph");
    EXPECT(!bome_exp(g, x), BOME_ERR_ARG, "exp, argument 1: node 'x' belongs to another graph");
    EXPECT(!bome_matmul(g, x, 1, a, 0), BOME_ERR_ARG, "matmul, argument 1", "'x'");
    EXPECT(!bome_mul(g, y, b), BOME_ERR_ARG, "mul, argument 1: node 2 (sum) belongs to another graph");
    EXPECT(!bome_pick(g, m, hl), BOME_ERR_ARG, "pick, argument 2: node 'hl' belongs to another graph");
    EXPECT(!bome_concat(g, a, x, 0), BOME_ERR_ARG, "concat, argument 2", "'x'");
    cr_assert_eq(bome_graph_status(h), BOME_OK, "the other graph is left alone");
}

Test(foreign, grad)
{
    bome_node *out[1] = {a};
    bome_gradcheck_report rep;
    EXPECT(bome_grad(g, b, 1, &x, out) == BOME_ERR_ARG, BOME_ERR_ARG, "bome_grad, wrt[0]: node 'x'",
           "another graph");
    cr_assert_null(out[0]);
    EXPECT(bome_grad(g, y, 1, &a, out) == BOME_ERR_ARG, BOME_ERR_ARG, "bome_grad, y: node 2 (sum)",
           "another graph");
    EXPECT(bome_gradcheck(g, y, 1, &x, 0, &rep) == BOME_ERR_ARG, BOME_ERR_ARG, "another graph");
    cr_assert_eq(bome_graph_status(h), BOME_OK);
}

Test(foreign, eval_plan_dot)
{
    bome_node *both[2] = {b, y};
    EXPECT(bome_eval(g, 1, &y) == BOME_ERR_ARG, BOME_ERR_ARG, "bome_eval, outs[0]: node 2 (sum)", "another graph");
    EXPECT(!bome_plan_new(g, 2, both), BOME_ERR_ARG, "bome_plan_new, outs[1]", "another graph");
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    EXPECT(bome_graph_dot(g, f, 2, both) == BOME_ERR_ARG, BOME_ERR_ARG, "bome_graph_dot, outs[1]", "another graph");
    fclose(f);
    cr_assert_eq(bome_graph_status(h), BOME_OK);
}

Test(foreign, set_and_bind)
{
    bome_real vals[3] = {1, 2, 3}, mem[3] = {0};
    int32_t labs[3] = {0, 1, 2};
    EXPECT(bome_set(g, x, vals) == BOME_ERR_ARG, BOME_ERR_ARG, "bome_set: node 'x' belongs to another graph");
    cr_assert(bome_data(x)[0] == 0.0, "x was written");
    EXPECT(bome_bind(g, x, mem) == BOME_ERR_ARG, BOME_ERR_ARG, "bome_bind: node 'x'", "another graph");
    cr_assert(bome_data(x) != mem, "x was bound");
    EXPECT(bome_bind_labels(g, hl, labs) == BOME_ERR_ARG, BOME_ERR_ARG, "bome_bind_labels: node 'hl'");
    cr_assert_eq(bome_graph_status(h), BOME_OK);
    /* Each graph still takes its own. */
    cr_assert_eq(bome_set(h, x, vals), BOME_OK);
    cr_assert_eq(bome_set(g, a, vals), BOME_OK);
}

/* ---- gzip IDX files ------------------------------------------------------------------ */

static char tmpdir[64], err[512];

static void gz_setup(void) { idx_tmpdir_make(tmpdir); }
static void gz_teardown(void) { idx_tmpdir_remove(tmpdir); }

TestSuite(gzip, .init = gz_setup, .fini = gz_teardown);

static const char *path_of(const char *name)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

/* Zero pixels: 16 images of 256 x 256 deflated by gzwrite, or, stored, a
 * column of STORED_N. */
#define NPIX ((size_t)16 << 16)
static const uint8_t zeros[NPIX + 8];
static uint32_t dims[3];

/* Deflated: small enough to sit whole in zlib's input buffer, so a corrupt
 * trailer is seen while the payload inflates, but a cut one only by a read
 * that asks for more than the payload. Large enough that zlib inflates
 * straight into the reader's buffer, not its own. */
static void write_deflated(size_t extra)
{
    memcpy(dims, (uint32_t[]){16, 256, 256}, sizeof dims);
    idx_write(path_of("img"), 1, DATA_IDX_MAGIC_IMAGES, dims, 3, zeros, NPIX + extra);
}

/* The reader's zlib input buffer, and a stored payload that ends where the
 * fifth refill of it does: 10 bytes of gzip header and ten blocks of 5 bytes
 * of header each before it. */
enum { ZBUF = 1 << 17, STORED_N = 5 * ZBUF - 10 - 5 * 10 - 16 };

/*
 * Stored (uncompressed) blocks, written by hand so that the layout is known:
 * when the caller's buffer fills, zlib's input buffer is empty and the
 * trailer (the next refill) is loaded only if the reader asks for more.
 */
static void write_stored(void)
{
    memcpy(dims, (uint32_t[]){STORED_N, 1, 1}, sizeof dims);
    static uint8_t idx[16 + STORED_N];
    for (int i = 0; i < 16; i++)
        idx[i] = (uint8_t)((i < 4 ? DATA_IDX_MAGIC_IMAGES : dims[i / 4 - 1]) >> (24 - 8 * (i % 4)));
    static const uint8_t head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    FILE *f = fopen(path_of("img"), "wb");
    cr_assert(f && fwrite(head, 1, sizeof head, f) == sizeof head);
    for (size_t at = 0, n; at < sizeof idx; at += n) {
        n = sizeof idx - at < 65535 ? sizeof idx - at : 65535;
        uint8_t block[5] = {at + n == sizeof idx, (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)~n, (uint8_t)(~n >> 8)};
        cr_assert(fwrite(block, 1, 5, f) == 5 && fwrite(idx + at, 1, n, f) == n);
    }
    cr_assert_eq(ftell(f), 5 * ZBUF, "the payload should end on a refill");
    uLong crc = crc32(crc32(0, NULL, 0), idx, sizeof idx);
    uint8_t tail[8];
    for (int i = 0; i < 4; i++) {
        tail[i] = (uint8_t)(crc >> 8 * i);
        tail[4 + i] = (uint8_t)(sizeof idx >> 8 * i);
    }
    cr_assert(fwrite(tail, 1, 8, f) == 8 && !fclose(f));
}

static void write_stored_or_deflated(int stored)
{
    if (stored)
        write_stored();
    else
        write_deflated(0);
}

/* Reads the images; expects code, and on failure a message holding want and
 * the outputs left empty. */
static void read_images(int code, const char *want)
{
    uint8_t *p = NULL;
    int n = -1, r = -1, c = -1;
    int rc = data_idx_read_images(path_of("img"), &p, &n, &r, &c, err, sizeof err);
    cr_assert_eq(rc, code, "rc %d, expected %d: %s", rc, code, err);
    if (code == 0) {
        cr_assert(p && n == (int)dims[0] && r == (int)dims[1] && c == (int)dims[2]);
        cr_assert(!memcmp(p, zeros, dims[0] * dims[1] * dims[2]));
        free(p);
        return;
    }
    cr_assert(p == NULL && n == 0, "outputs not cleared on error");
    cr_assert_not_null(strstr(err, path_of("img")), "'%s' does not name the file", err);
    cr_assert_not_null(strstr(err, want), "'%s' lacks '%s'", err, want);
}

static void cut_tail_of(const char *name, long bytes)
{
    struct stat st;
    cr_assert(!stat(path_of(name), &st) && !truncate(path_of(name), st.st_size - bytes));
}

static void cut_tail(long bytes) { cut_tail_of("img", bytes); }

/* Inverts the byte at from_end bytes before the end. */
static void flip(long from_end)
{
    FILE *f = fopen(path_of("img"), "r+b");
    cr_assert_not_null(f);
    cr_assert(!fseek(f, -from_end, SEEK_END));
    int byte = fgetc(f);
    cr_assert(byte != EOF && !fseek(f, -from_end, SEEK_END) && fputc(byte ^ 0xff, f) != EOF);
    cr_assert(!fclose(f));
}

/* The trailer is the stream's last 8 bytes: CRC-32, then the length. */
Test(gzip, trailer_cut)
{
    const long cuts[] = {1, 4, 5, 8};
    for (int stored = 0; stored < 2; stored++)
        for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
            write_stored_or_deflated(stored);
            read_images(0, NULL);
            cut_tail(cuts[k]);
            read_images(DATA_ERR_TRUNCATED, "before its CRC-32 and length trailer");
        }
}

Test(gzip, trailer_corrupt)
{
    for (int stored = 1; stored >= 0; stored--)
        for (long at = 8; at >= 1; at--) {
            write_stored_or_deflated(stored);
            flip(at);
            read_images(DATA_ERR_READ, at > 4 ? "incorrect data check" : "incorrect length check");
        }
}

Test(gzip, bytes_past_payload)
{
    write_deflated(5);
    read_images(DATA_ERR_TRAILING, "file has 5 bytes past the declared payload");
    idx_write(path_of("img"), 0, DATA_IDX_MAGIC_IMAGES, dims, 3, zeros, NPIX + 1);
    read_images(DATA_ERR_TRAILING, "file has 1 byte past the declared payload");
    uint32_t n = 6;
    uint8_t *lab = NULL;
    int ln = -1;
    idx_write(path_of("lab"), 1, DATA_IDX_MAGIC_LABELS, &n, 1, zeros, 8);
    cr_assert_eq(data_idx_read_labels(path_of("lab"), &lab, &ln, err, sizeof err), DATA_ERR_TRAILING, "%s", err);
    cr_assert(lab == NULL && ln == 0 && strstr(err, "2 bytes past"), "%s", err);
}

/* ---- the warm-start cache ------------------------------------------------------------ */

static char cdir[64], cpath[600];
static hc_model cm;
static hc_cache_key ckey;
static bome_real cx[4 * 6];
static int32_t cy[4] = {0, 1, 2, 1};

/* A linear model of 6 features and 3 classes (W 3 x 6, b 3) with known
 * values, and its key for a fit on 4 rows. */
static void cache_setup(void)
{
    idx_tmpdir_make(cdir);
    cr_assert_eq(hc_model_init(&cm, false, 6, 0, 3, 1), BOME_OK);
    for (int i = 0; i < 24; i++)
        cx[i] = 0.25 * i;
    hc_set a = {cx, cy, 4}, none = {NULL, NULL, 0};
    hc_fit fit = {.steps = 10, .lr = 0.1, .l2 = 1e-3};
    hc_cache_key_make(&ckey, "noisy", &cm, a, none, none, &fit, 7);
    for (int i = 0; i < cm.n_params; i++)
        for (size_t k = 0; k < cm.size[i]; k++)
            cm.theta[i][k] = 0.5 + (double)(10 * i) + (double)k;
    snprintf(cpath, sizeof cpath, "%s/cache.bin", cdir);
}

static void cache_teardown(void)
{
    hc_model_free(&cm);
    idx_tmpdir_remove(cdir);
}

TestSuite(cache, .init = cache_setup, .fini = cache_teardown);

/* A model of cm's shapes filled with 7s: a load that is refused must leave
 * every one of them. */
static void sevens(hc_model *m)
{
    cr_assert_eq(hc_model_init(m, false, 6, 0, 3, 1), BOME_OK);
    for (int i = 0; i < m->n_params; i++)
        for (size_t k = 0; k < m->size[i]; k++)
            m->theta[i][k] = 7;
}

static void expect_sevens(const hc_model *m)
{
    for (int i = 0; i < m->n_params; i++)
        for (size_t k = 0; k < m->size[i]; k++)
            cr_assert_eq(m->theta[i][k], 7.0, "parameter %d, value %zu was overwritten", i, k);
}

static void write_bytes(const unsigned char *b, size_t n)
{
    FILE *f = fopen(cpath, "wb");
    cr_assert(f && fwrite(b, 1, n, f) == n && fclose(f) == 0);
}

/* Loaded into m: refused, with a message holding want, and m untouched. */
static void expect_rejected(const char *want)
{
    hc_model m;
    char why[256] = "";
    sevens(&m);
    cr_assert_eq(hc_cache_load(cpath, &ckey, &m, why, sizeof why), HC_CACHE_REJECTED, "accepted");
    cr_expect(strstr(why, want), "message '%s' lacks '%s'", why, want);
    expect_sevens(&m);
    hc_model_free(&m);
}

Test(cache, round_trip)
{
    cr_assert_eq(hc_cache_save(cpath, &ckey, &cm), BOME_OK);
    hc_model m;
    char why[256] = "";
    sevens(&m);
    cr_assert_eq(hc_cache_load(cpath, &ckey, &m, why, sizeof why), HC_CACHE_LOADED, "%s", why);
    for (int i = 0; i < m.n_params; i++)
        cr_assert_arr_eq(m.theta[i], cm.theta[i], m.size[i] * sizeof(bome_real));
    hc_model_free(&m);
    remove(cpath);
    cr_expect_eq(hc_cache_load(cpath, &ckey, &m, why, sizeof why), HC_CACHE_ABSENT);
}

/* The old reader copied W value by value and noticed the end of the file
 * only after it had overwritten the part that was there. */
Test(cache, truncated_leaves_the_model_untouched)
{
    size_t n;
    unsigned char *b = hc_cache_bytes(&ckey, &cm, &n);
    cr_assert(b);
    write_bytes(b, n - 4 - 8 * 10); /* ten values and the checksum cut */
    expect_rejected("truncated");
    write_bytes(b, 40); /* inside the header */
    expect_rejected("truncated");
    write_bytes(b, 0);
    expect_rejected("not a bome cache file");
    free(b);
}

/* NaN or 1e300 in a file whose header and checksum are right. */
static void poke(size_t value, double v, bool fix_checksum)
{
    size_t n;
    unsigned char *b = hc_cache_bytes(&ckey, &cm, &n);
    cr_assert(b);
    bome_real r = (bome_real)v; /* the cache holds the build's bome_real */
    memcpy(b + n - 4 - sizeof r * (3 * 6 + 3) + sizeof r * value, &r, sizeof r);
    if (fix_checksum) {
        uint32_t crc = (uint32_t)crc32(0L, b, (uInt)(n - 4));
        memcpy(b + n - 4, &crc, sizeof crc);
    }
    write_bytes(b, n);
    free(b);
}

Test(cache, non_finite_or_huge_values_are_refused)
{
    poke(5, NAN, true);
    expect_rejected("not finite");
    poke(20, INFINITY, true);
    expect_rejected("not finite");
    poke(0, BOME_REAL_BITS == 64 ? 1e300 : 1e30, true); /* finite in either, far past the bound */
    expect_rejected("out of range");
    poke(3, 1.5, false);
    expect_rejected("checksum");
}

/* Another data set (one pixel changed), another size, another step count or
 * another start: another key, another file name, and a file made under one
 * key is refused under the others. */
Test(cache, key_holds_the_data_and_settings)
{
    cr_assert_eq(hc_cache_save(cpath, &ckey, &cm), BOME_OK);
    char p0[600], p1[600];
    hc_cache_path(p0, sizeof p0, cdir, &ckey, &cm);
    hc_cache_key base = ckey, other[4];
    hc_set a = {cx, cy, 4}, a3 = {cx, cy, 3}, none = {NULL, NULL, 0};
    hc_fit fit = {.steps = 10, .lr = 0.1, .l2 = 1e-3}, fit11 = {.steps = 11, .lr = 0.1, .l2 = 1e-3};
    hc_model zero;
    cr_assert_eq(hc_model_init(&zero, false, 6, 0, 3, 1), BOME_OK);
    bome_real keep = cx[17];
    cx[17] *= 1 + 2 * BOME_REAL_EPSILON; /* about the smallest change of the data */
    hc_cache_key_make(&other[0], "noisy", &zero, a, none, none, &fit, 7);
    cx[17] = keep;
    hc_cache_key_make(&other[1], "noisy", &zero, a3, none, none, &fit, 7);
    hc_cache_key_make(&other[2], "noisy", &zero, a, none, none, &fit11, 7);
    zero.theta[1][2] = 1;
    hc_cache_key_make(&other[3], "noisy", &zero, a, none, none, &fit, 7);
    zero.theta[1][2] = 0;
    hc_cache_key same;
    hc_cache_key_make(&same, "noisy", &zero, a, none, none, &fit, 7);
    cr_assert(memcmp(&same, &base, sizeof same) == 0, "the same fit, another key");
    for (int i = 0; i < 4; i++) {
        hc_cache_path(p1, sizeof p1, cdir, &other[i], &cm);
        cr_expect(strcmp(p0, p1), "key %d: the same file name", i);
        ckey = other[i];
        expect_rejected("another run");
    }
    ckey = base;
    hc_model_free(&zero);
}

/* ---- gzip IDX files of every size ------------------------------------------------- */

TestSuite(gzip_sizes, .init = gz_setup, .fini = gz_teardown);

/* Labels of n pseudo-random bytes (deflate cannot shrink them, so the
 * stream's layout follows n) through zlib at level, plus extra raw bytes
 * after the gzip stream. */
static void write_labels(uint32_t n, int level, const char *extra, size_t extra_len)
{
    static uint8_t buf[8 + 300000];
    for (int b = 0; b < 4; b++) {
        buf[b] = (uint8_t)(DATA_IDX_MAGIC_LABELS >> (24 - 8 * b));
        buf[4 + b] = (uint8_t)(n >> (24 - 8 * b));
    }
    uint32_t x = 12345;
    for (uint32_t i = 0; i < n; i++)
        buf[8 + i] = (uint8_t)((x = x * 1103515245u + 12345u) >> 24);
    char mode[8];
    snprintf(mode, sizeof mode, "wb%d", level);
    gzFile f = gzopen(path_of("lab"), mode);
    cr_assert(f && gzwrite(f, buf, 8 + n) == (int)(8 + n) && gzclose(f) == Z_OK);
    FILE *g = fopen(path_of("lab"), "ab");
    cr_assert(g && fwrite(extra, 1, extra_len, g) == extra_len && fclose(g) == 0);
}

static int read_labels(char *msg, size_t len)
{
    uint8_t *lab = NULL;
    int n = -1;
    int rc = data_idx_read_labels(path_of("lab"), &lab, &n, msg, len);
    cr_assert(rc ? lab == NULL && n == 0 : lab != NULL);
    free(lab);
    return rc;
}

/* A cut trailer, whatever the stream's layout. gzread reports a clean end
 * of file when the input runs out inside a member, unless that happens in
 * the read that refills its buffer, so the reader over gzread caught it
 * only with its 128 KB buffer (with zlib's default 8 KB it did not). */
Test(gzip_sizes, trailer_cut)
{
    const uint32_t sizes[] = {1, 100, 4000, 8192, 40000, 131072, 250000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (int level = 0; level <= 9; level += 9)
            for (long cut = 1; cut <= 8; cut++) {
                write_labels(sizes[i], level, "", 0);
                cr_assert_eq(read_labels(err, sizeof err), 0, "%u labels: %s", sizes[i], err);
                cut_tail_of("lab", cut);
                cr_expect_eq(read_labels(err, sizeof err), DATA_ERR_TRUNCATED,
                             "%u labels at level %d, %ld trailer bytes cut: '%s'", sizes[i], level, cut, err);
            }
}

/* After a gzip member only another member may come; gzread ignored any
 * other bytes there. */
Test(gzip_sizes, bytes_past_the_stream)
{
    write_labels(1000, 6, "junk", 4);
    cr_expect_eq(read_labels(err, sizeof err), DATA_ERR_TRAILING, "'%s'", err);
    cr_expect(strstr(err, "4 bytes past"), "'%s'", err);
    write_labels(1000, 6, "\x1f", 1);
    cr_expect_eq(read_labels(err, sizeof err), DATA_ERR_TRAILING, "'%s'", err);
}

/* Two members, as `cat a.gz b.gz` makes: one file. */
Test(gzip_sizes, members_in_a_row)
{
    uint32_t n = 6;
    idx_write(path_of("lab"), 1, DATA_IDX_MAGIC_LABELS, &n, 1, "abc", 3);
    gzFile f = gzopen(path_of("lab"), "ab"); /* a second member */
    cr_assert(f && gzwrite(f, "def", 3) == 3 && gzclose(f) == Z_OK);
    uint8_t *lab = NULL;
    int got = 0;
    cr_assert_eq(data_idx_read_labels(path_of("lab"), &lab, &got, err, sizeof err), 0, "%s", err);
    cr_expect(got == 6 && !memcmp(lab, "abcdef", 6));
    free(lab);
}

/* ---- a node kept across two solves ------------------------------------------------ */

/* The user's f keeps a node of the first solver's graph and hands it to the
 * second solver's builders: once that graph is freed the node is freed
 * memory, which the library must refuse without reading it (under ASan,
 * reading it was a use-after-free). */
static bome_node *kept;
static bool use_kept;

static bome_node *kept_f(bome_graph *gr, const bome_vars *v, void *ctx)
{
    (void)ctx;
    if (!use_kept)
        kept = v->v[0];
    bome_node *w = use_kept ? bome_add(gr, kept, v->v[0]) : v->v[0];
    return bome_sumsq(gr, bome_sub(gr, v->theta[0], w));
}

static bome_node *kept_g(bome_graph *gr, const bome_vars *v, void *ctx)
{
    (void)ctx;
    return bome_sumsq(gr, bome_sub(gr, v->theta[0], v->v[0]));
}

Test(foreign, node_kept_across_two_solves)
{
    bome_real w[2] = {1, 2}, t[2] = {0, 0};
    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "w", BOME_VECTOR(2), w);
    bome_problem_add_inner(p, "t", BOME_VECTOR(2), t);
    bome_problem_set_objectives(p, kept_f, kept_g, NULL);
    bome_options o;
    bome_options_default(&o);
    o.max_steps = 2;
    use_kept = false;
    bome_solver *s = bome_solver_new(p, &o);
    cr_assert(s && bome_solver_status(s) == BOME_OK, "%s", s ? bome_solver_errmsg(s) : "NULL");
    cr_assert_eq(bome_solver_run(s, NULL), BOME_OK);
    bome_solver_free(s);
    /* a graph that may take the freed memory's address */
    bome_graph *spacer = bome_graph_new();
    for (int i = 0; i < 2000; i++)
        bome_param(spacer, NULL, BOME_VECTOR(2));
    use_kept = true;
    s = bome_solver_new(p, &o);
    cr_assert_not_null(s);
    const char *msg = bome_solver_errmsg(s);
    cr_expect_neq(bome_solver_status(s), BOME_OK, "the stale node was taken");
    cr_expect(strstr(msg, "not a node of a live graph") || strstr(msg, "belongs to another graph"), "'%s'", msg);
    bome_solver_free(s);
    bome_graph_free(spacer);
    bome_problem_free(p);
}
