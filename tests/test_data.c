/*
 * tests/test_data.c: the IDX readers and the hyper-cleaning data protocol, on
 * small synthetic IDX files in a fresh temporary directory. Synthetic images
 * are 1 x 4 pixels (id & 255, id >> 8, 0, 255), so the source of every output
 * row can be recovered after standardization (pixels 2 and 3 fix the map).
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bome/rng.h"
#include "data.h"
#include "prec.h"
#include "idx_fixture.h"

#define TRAIN_IMG "train-images-idx3-ubyte"
#define TRAIN_LAB "train-labels-idx1-ubyte"
#define TEST_IMG "t10k-images-idx3-ubyte"
#define TEST_LAB "t10k-labels-idx1-ubyte"
#define FASHION_DIR "/usr/share/datasets/fashion-mnist"
#define SZ(tr, va, he, co) ((data_sizes){tr, va, he, co})

static char tmpdir[64], err[512];
static data_split da, db, dc; /* loaded by tests, released by teardown */

static void setup(void) { idx_tmpdir_make(tmpdir); }

static void teardown(void)
{
    idx_tmpdir_remove(tmpdir);
    data_split_free(&da);
    data_split_free(&db);
    data_split_free(&dc);
}

TestSuite(idx, .init = setup, .fini = teardown);
TestSuite(hc, .init = setup, .fini = teardown);

/* Path of name in the temporary directory (two rotating buffers). */
static const char *tp(const char *name)
{
    static char buf[2][512];
    static int k;
    k ^= 1;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* An IDX file in the temporary directory (see idx_write). */
static void write_idx(const char *name, int gz, uint32_t magic, const uint32_t *dims, int ndims,
                      const void *payload, size_t len)
{
    idx_write(tp(name), gz, magic, dims, ndims, payload, len);
}

static uint8_t lab_of(int id) { return (uint8_t)((id * 7 + id / 10) % 10); }

/* n synthetic images with ids base, base + 1, ..., and their labels. */
static void write_set(const char *img, const char *lab, int n, int base, int gz)
{
    uint8_t *pix = malloc(4 * (size_t)n), *l = malloc((size_t)n);
    cr_assert(pix && l);
    for (int i = 0; i < n; i++) {
        uint8_t px[4] = {(uint8_t)((base + i) & 255), (uint8_t)((base + i) >> 8), 0, 255};
        memcpy(pix + 4 * i, px, 4);
        l[i] = lab_of(base + i);
    }
    uint32_t dims[3] = {(uint32_t)n, 1, 4};
    write_idx(img, gz, DATA_IDX_MAGIC_IMAGES, dims, 3, pix, 4 * (size_t)n);
    write_idx(lab, gz, DATA_IDX_MAGIC_LABELS, dims, 1, l, (size_t)n);
    free(pix);
    free(l);
}

/* A gzipped dataset: n_train training images, n_test test ones (ids 40000+). */
static void make_dataset(int n_train, int n_test)
{
    write_set(TRAIN_IMG ".gz", TRAIN_LAB ".gz", n_train, 0, 1);
    write_set(TEST_IMG ".gz", TEST_LAB ".gz", n_test, 40000, 1);
}

/* The synthetic id of a standardized output row. */
static int id_of(const bome_real *x)
{
    double a = (x[3] - x[2]) / 255.0;
    return (int)(lround((x[0] - x[2]) / a) + 256 * lround((x[1] - x[2]) / a));
}

static void assert_mentions(const char *needle)
{
    cr_assert_not_null(strstr(err, needle), "message \"%s\" lacks \"%s\"", err, needle);
}

/* ---- IDX readers ---- */

/* Reads name expecting code; the message must name the file and hold want. */
static void read_fails(const char *name, int images, int code, const char *want)
{
    uint8_t *p = (uint8_t *)&code;
    int n = -1, r = -1, c = -1;
    int rc = images ? data_idx_read_images(tp(name), &p, &n, &r, &c, err, sizeof err)
                    : data_idx_read_labels(tp(name), &p, &n, err, sizeof err);
    cr_assert_eq(rc, code, "rc %d: %s", rc, err);
    cr_assert(p == NULL && n == 0, "outputs not cleared on error");
    assert_mentions(tp(name));
    assert_mentions(want);
}

static void read_ok(int gz, int n, int rows, int cols)
{
    size_t len = (size_t)n * (size_t)rows * (size_t)cols;
    uint8_t *src = malloc(len), *pix = NULL, *lab = NULL;
    cr_assert_not_null(src);
    for (size_t i = 0; i < len; i++)
        src[i] = (uint8_t)(i * 31 + i / 977); /* labels > 9 are fine here */
    uint32_t dims[3] = {(uint32_t)n, (uint32_t)rows, (uint32_t)cols};
    write_idx("img", gz, DATA_IDX_MAGIC_IMAGES, dims, 3, src, len);
    write_idx("lab", gz, DATA_IDX_MAGIC_LABELS, dims, 1, src, (size_t)n);
    int rn, rr, rc, ln;
    cr_assert_eq(data_idx_read_images(tp("img"), &pix, &rn, &rr, &rc, err, sizeof err), 0, "%s", err);
    cr_assert(rn == n && rr == rows && rc == cols && !memcmp(pix, src, len));
    cr_assert_eq(data_idx_read_labels(tp("lab"), &lab, &ln, err, sizeof err), 0, "%s", err);
    cr_assert(ln == n && !memcmp(lab, src, (size_t)n));
    free(pix);
    free(lab);
    free(src);
}

Test(idx, read_gz) { read_ok(1, 3, 2, 5); }
Test(idx, read_plain) { read_ok(0, 3, 2, 5); }
/* Larger than the reader's first chunk, so its buffer must grow. */
Test(idx, read_large) { read_ok(1, 6000, 28, 28); }

Test(idx, unreadable)
{
    uint8_t *p;
    int n, r, c;
    read_fails("nope", 1, DATA_ERR_OPEN, "cannot open");
    read_fails("nope", 0, DATA_ERR_OPEN, "cannot open");
    read_fails("", 1, DATA_ERR_READ, "read error"); /* the directory itself */
    cr_assert_eq(data_idx_read_images("f", NULL, &n, &r, &c, err, sizeof err), DATA_ERR_ARG);
    cr_assert_eq(data_idx_read_labels("f", &p, NULL, err, sizeof err), DATA_ERR_ARG);
    assert_mentions("f: NULL output");
}

Test(idx, bad_magic)
{
    uint32_t dims[3] = {1, 2, 2};
    write_idx("lab", 1, DATA_IDX_MAGIC_LABELS, dims, 1, "abcd", 4);
    write_idx("img", 0, DATA_IDX_MAGIC_IMAGES, dims, 3, "abcd", 4);
    read_fails("lab", 1, DATA_ERR_MAGIC, "0x00000801");
    read_fails("img", 0, DATA_ERR_MAGIC, "0x00000803");
}

Test(idx, truncated)
{
    uint32_t dims[3] = {3, 2, 2}, n12 = 12, huge[3] = {0x7fffffff, 1, 1};
    write_idx("img", 1, DATA_IDX_MAGIC_IMAGES, dims, 3, "0123456789", 10);
    write_idx("lab", 0, DATA_IDX_MAGIC_LABELS, &n12, 1, "0123456789", 10);
    read_fails("img", 1, DATA_ERR_TRUNCATED, "expected 12 bytes after the header, got 10");
    read_fails("lab", 0, DATA_ERR_TRUNCATED, "expected 12 bytes after the header, got 10");
    /* 2^31 - 1 claimed over 4 real bytes: under ASan this also shows that the
     * reader does not allocate the claimed size up front. */
    write_idx("huge", 1, DATA_IDX_MAGIC_IMAGES, huge, 3, "abcd", 4);
    read_fails("huge", 1, DATA_ERR_TRUNCATED, "got 4");
}

/* Headers cut short: inside the dimensions, and right after the magic. */
Test(idx, truncated_header)
{
    write_idx("img", 1, DATA_IDX_MAGIC_IMAGES, NULL, 0, "\0\0\x01", 3);
    write_idx("lab", 0, DATA_IDX_MAGIC_LABELS, NULL, 0, NULL, 0);
    read_fails("img", 1, DATA_ERR_TRUNCATED, "expected 16 bytes, got 7");
    read_fails("lab", 0, DATA_ERR_TRUNCATED, "expected 8 bytes, got 4");
}

/* A gzip stream cut in the middle is a truncation; a bad checksum an error. */
Test(idx, damaged_gzip_stream)
{
    static uint8_t px[3000];
    uint32_t dims[3] = {3, 10, 100};
    struct stat st;
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * i);
    write_idx("img", 1, DATA_IDX_MAGIC_IMAGES, dims, 3, px, sizeof px);
    write_idx("crc", 1, DATA_IDX_MAGIC_IMAGES, dims, 3, px, sizeof px);
    cr_assert(!stat(tp("img"), &st) && !truncate(tp("img"), st.st_size / 2));
    read_fails("img", 1, DATA_ERR_TRUNCATED, "expected 3000 bytes");
    FILE *f = fopen(tp("crc"), "r+b");
    cr_assert(f && !fseek(f, -8, SEEK_END) && fputc('!', f) == '!' && !fclose(f));
    read_fails("crc", 1, DATA_ERR_READ, "read error: incorrect data check");
}

Test(idx, absurd_dims)
{
    uint32_t bad[3][3] = {{0, 28, 28}, {10, 0, 28}, {10, 28, 100000}};
    for (int k = 0; k < 3; k++) {
        write_idx("img", 1, DATA_IDX_MAGIC_IMAGES, bad[k], 3, NULL, 0);
        read_fails("img", 1, DATA_ERR_DIMS, "absurd dimensions");
    }
    write_idx("lab", 1, DATA_IDX_MAGIC_LABELS, bad[0], 1, NULL, 0);
    read_fails("lab", 0, DATA_ERR_DIMS, "absurd dimensions");
}

/* ---- hyper-cleaning protocol ---- */

static void load_ok(uint64_t seed, data_sizes s, data_split *d)
{
    cr_assert_eq(data_split_load(tmpdir, seed, s, d, err, sizeof err), 0, "%s", err);
}

/* Expects failure with code, *out zeroed, and both needles in the message. */
static void load_fails(data_sizes s, int code, const char *w1, const char *w2)
{
    data_split d, zero = {0};
    memset(&d, 0xAB, sizeof d);
    int rc = data_split_load(tmpdir, 1, s, &d, err, sizeof err);
    cr_assert_eq(rc, code, "rc %d: %s", rc, err);
    cr_assert_eq(memcmp(&d, &zero, sizeof d), 0, "output not zeroed on error");
    assert_mentions(w1);
    assert_mentions(w2);
}

/* Replays the protocol with the RNG: one shuffle of the n_file training
 * images deals the splits, then a shuffle of the train indices picks
 * n_corrupt distinct ones to relabel uniformly. */
static void check_protocol(const data_split *d, int n_file, uint64_t seed, int n_corrupt)
{
    bome_rng r;
    bome_rng_seed(&r, seed);
    int32_t *perm = malloc(sizeof(int32_t) * (size_t)n_file);
    int32_t *y = malloc(sizeof(int32_t) * (size_t)d->n_train);
    cr_assert(perm && y);
    for (int i = 0; i < n_file; i++)
        perm[i] = i;
    bome_rng_shuffle(&r, perm, (size_t)n_file);
    const bome_real *xs[3] = {d->x_train, d->x_val, d->x_held};
    const int32_t *ys[3] = {d->y_train_true, d->y_val, d->y_held};
    int ns[3] = {d->n_train, d->n_val, d->n_held}, k = 0;
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < ns[s]; i++, k++)
            cr_assert(id_of(xs[s] + 4 * i) == perm[k] && ys[s][i] == lab_of(perm[k]));
    for (int i = 0; i < d->n_train; i++) /* what --save-v writes: train row -> image of the file */
        cr_assert_eq(d->train_index[i], perm[i], "train row %d", i);
    for (int i = 0; i < d->n_test; i++)
        cr_assert(id_of(d->x_test + 4 * i) == 40000 + i && d->y_test[i] == lab_of(40000 + i));
    for (int i = 0; i < d->n_train; i++)
        perm[i] = i;
    bome_rng_shuffle(&r, perm, (size_t)d->n_train);
    memcpy(y, d->y_train_true, sizeof(int32_t) * (size_t)d->n_train);
    for (int i = 0; i < n_corrupt; i++)
        y[perm[i]] = (int32_t)bome_rng_below(&r, 10);
    for (int i = 0; i < d->n_train; i++)
        cr_assert(d->y_train[i] == y[i] && d->clean[i] == (d->y_train[i] == d->y_train_true[i]));
    free(perm);
    free(y);
}

Test(hc, split_sizes_and_protocol)
{
    data_sizes s = data_default_sizes();
    cr_assert(s.n_train == 50000 && s.n_val == 5000 && s.n_held == 5000 && s.n_corrupt == 25000);
    make_dataset(100, 20);
    for (int nc = 0; nc <= 60; nc += 30) { /* none, half, all corrupted */
        load_ok(7, SZ(60, 20, 15, nc), &da);
        cr_assert(da.d == 4 && da.n_classes == 10 && da.n_train == 60 && da.n_val == 20 &&
                  da.n_held == 15 && da.n_test == 20);
        check_protocol(&da, 100, 7, nc);
        data_split_free(&da);
    }
    cr_assert_null(da.x_train);
    data_split_free(&da); /* zeroed: a second free is harmless */
    data_split_free(NULL);
}

/* Mean 0 and sd 1 over the train pixels, and the same map for every split
 * (pixel values 0 and 255 sit in columns 2 and 3 of every row). */
Test(hc, standardization)
{
    make_dataset(300, 30);
    load_ok(11, SZ(200, 50, 50, 0), &da);
    double m = 4.0 * da.n_train, s = 0, ss = 0;
    for (int i = 0; i < m; i++) {
        s += da.x_train[i];
        ss += da.x_train[i] * da.x_train[i];
    }
    cr_assert_float_eq(s / m, 0.0, TOL(1e-9));
    cr_assert_float_eq(sqrt(ss / m - (s / m) * (s / m)), 1.0, TOL(1e-9));
    const bome_real *xs[3] = {da.x_val + 40, da.x_held + 40, da.x_test + 40};
    for (int k = 0; k < 3; k++)
        cr_assert(xs[k][2] == da.x_train[2] && xs[k][3] == da.x_train[3]);
}

Test(hc, corruption_rate)
{
    make_dataset(20000, 10);
    load_ok(5, SZ(15000, 2000, 2000, 10000), &da);
    int changed = 0;
    for (int i = 0; i < da.n_train; i++)
        changed += !da.clean[i];
    /* 10000 uniform draws keep about 1000 labels (sd 30). */
    cr_assert(changed >= 8800 && changed <= 9200, "changed %d", changed);
}

#define SAME(f, n) (!memcmp(da.f, db.f, (n) * sizeof *da.f))
Test(hc, determinism)
{
    make_dataset(200, 10);
    load_ok(42, SZ(100, 40, 40, 50), &da);
    load_ok(42, SZ(100, 40, 40, 50), &db);
    load_ok(43, SZ(100, 40, 40, 50), &dc);
    cr_assert(SAME(x_train, 400) && SAME(x_val, 160) && SAME(x_held, 160) && SAME(x_test, 40) &&
              SAME(y_train, 100) && SAME(y_train_true, 100) && SAME(clean, 100));
    int same = 0;
    for (int i = 0; i < 100; i++)
        same += id_of(da.x_train + 4 * i) == id_of(dc.x_train + 4 * i);
    cr_assert_lt(same, 20, "seeds 42 and 43 gave near-identical splits");
}

/* NAME.gz is preferred; plain NAME is the fallback. */
Test(hc, gz_then_plain)
{
    make_dataset(30, 5);
    remove(tp(TRAIN_LAB ".gz"));
    write_set("junk", TRAIN_LAB, 30, 0, 0);
    write_idx(TRAIN_IMG, 0, 0, NULL, 0, NULL, 0); /* the .gz shadows it */
    load_ok(1, SZ(10, 10, 10, 5), &da);
    check_protocol(&da, 30, 1, 5);
}

/* ---- hyper-cleaning errors: each breaks one thing in a valid dataset ---- */

static void setup_err(void)
{
    setup();
    make_dataset(30, 5);
}

TestSuite(hcerr, .init = setup_err, .fini = teardown);
#define SMALL SZ(10, 10, 10, 5)

Test(hcerr, missing_file)
{
    remove(tp(TEST_LAB ".gz"));
    load_fails(SMALL, DATA_ERR_OPEN, tp(TEST_LAB), "cannot open");
}

Test(hcerr, idx_error_propagates)
{
    write_idx(TEST_IMG ".gz", 1, DATA_IDX_MAGIC_LABELS, (uint32_t[]){1}, 1, "a", 1);
    load_fails(SMALL, DATA_ERR_MAGIC, tp(TEST_IMG ".gz"), "bad magic");
}

Test(hcerr, count_mismatch)
{
    write_set("x", TRAIN_LAB ".gz", 29, 0, 1);
    load_fails(SMALL, DATA_ERR_MISMATCH, tp(TRAIN_IMG ".gz"), "30 images");
    load_fails(SMALL, DATA_ERR_MISMATCH, tp(TRAIN_LAB ".gz"), "29 labels");
}

Test(hcerr, label_out_of_range)
{
    uint8_t l[30] = {[17] = 10};
    write_idx(TRAIN_LAB ".gz", 1, DATA_IDX_MAGIC_LABELS, (uint32_t[]){30}, 1, l, 30);
    load_fails(SMALL, DATA_ERR_LABEL, tp(TRAIN_LAB ".gz"), "index 17");
}

Test(hcerr, too_few_images)
{
    load_fails(SZ(10, 10, 11, 5), DATA_ERR_ARG, tp(TRAIN_IMG ".gz"), "30 images, fewer "
               "than n_train + n_val + n_held = 10 + 10 + 11 = 31");
}

Test(hcerr, image_size_mismatch)
{
    write_idx(TEST_IMG ".gz", 1, DATA_IDX_MAGIC_IMAGES, (uint32_t[]){5, 2, 2}, 3, "0123456789abcdefghij", 20);
    load_fails(SMALL, DATA_ERR_MISMATCH, tp(TRAIN_IMG ".gz"), tp(TEST_IMG ".gz"));
}

Test(hcerr, constant_pixels)
{
    static const uint8_t px[120]; /* all zero */
    write_idx(TRAIN_IMG ".gz", 1, DATA_IDX_MAGIC_IMAGES, (uint32_t[]){30, 1, 4}, 3, px, 120);
    load_fails(SMALL, DATA_ERR_DEGENERATE, tp(TRAIN_IMG ".gz"), "cannot standardize");
}

Test(hcerr, bad_sizes)
{
    load_fails(SZ(0, 10, 10, 0), DATA_ERR_ARG, "non-positive", "n_train=0");
    load_fails(SZ(10, -1, 10, 0), DATA_ERR_ARG, "non-positive", "n_val=-1");
    load_fails(SZ(10, 10, 0, 0), DATA_ERR_ARG, "non-positive", "n_held=0");
    load_fails(SZ(10, 10, 10, 11), DATA_ERR_ARG, "n_corrupt=11", "n_train=10");
    load_fails(SZ(10, 10, 10, -1), DATA_ERR_ARG, "n_corrupt=-1", "n_train=10");
    cr_assert_eq(data_split_load(NULL, 1, SMALL, &da, err, sizeof err), DATA_ERR_ARG);
    cr_assert_eq(data_split_load(tmpdir, 1, SMALL, NULL, err, sizeof err), DATA_ERR_ARG);
}

Test(hc, fashion_mnist)
{
    if (access(FASHION_DIR, R_OK) != 0)
        cr_skip_test("%s is absent", FASHION_DIR);
    cr_assert_eq(data_split_load(FASHION_DIR, 0, data_default_sizes(), &da, err, sizeof err),
                 0, "%s", err);
    cr_assert(da.d == 784 && da.n_classes == 10 && da.n_train == 50000 && da.n_val == 5000 &&
              da.n_held == 5000 && da.n_test == 10000);
    int changed = 0;
    for (int i = 0; i < da.n_train; i++)
        changed += da.y_train[i] != da.y_train_true[i];
    /* 25000 uniform draws keep about 2500 labels (sd 47). */
    cr_assert(changed > 22000 && changed < 23000, "changed %d", changed);
}
