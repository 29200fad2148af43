/*
 * tests/test_data_part.c: a worker's part of the data: the IDX row readers
 * give exactly the rows the whole readers give, and the P parts of a
 * hyper-cleaning split, put together, are the whole split, bit for bit.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "idx_fixture.h"

static char dir[64];
static char path[4][128];
enum { N_TR = 300, N_TE = 50, SIDE = 3 };

static void setup(void)
{
    idx_tmpdir_make(dir);
    static const char *const name[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    for (int k = 0; k < 4; k++)
        snprintf(path[k], sizeof path[k], "%s/%s%s", dir, name[k], k < 2 ? ".gz" : "");
    static uint8_t pix[N_TR * SIDE * SIDE], lab[N_TR];
    for (int i = 0; i < N_TR * SIDE * SIDE; i++)
        pix[i] = (uint8_t)((i * 29 + i / 9 * 5) % 256);
    for (int i = 0; i < N_TR; i++)
        lab[i] = (uint8_t)((i * 3 + pix[i * 9]) % 10);
    uint32_t dims[3] = {N_TR, SIDE, SIDE};
    idx_write(path[0], 1, DATA_IDX_MAGIC_IMAGES, dims, 3, pix, sizeof pix);
    idx_write(path[1], 1, DATA_IDX_MAGIC_LABELS, dims, 1, lab, sizeof lab);
    dims[0] = N_TE;
    idx_write(path[2], 0, DATA_IDX_MAGIC_IMAGES, dims, 3, pix, N_TE * SIDE * SIDE);
    idx_write(path[3], 0, DATA_IDX_MAGIC_LABELS, dims, 1, lab, N_TE);
}

static void teardown(void) { idx_tmpdir_remove(dir); }

TestSuite(part, .init = setup, .fini = teardown);

Test(part, rows_are_the_whole_readers_rows)
{
    char err[256];
    uint8_t *all, *some, *lall, *lsome;
    int n, r, c, n2, r2, c2;
    cr_assert_eq(data_idx_read_images(path[0], &all, &n, &r, &c, err, sizeof err), 0, "%s", err);
    cr_assert_eq(data_idx_read_labels(path[1], &lall, &n, err, sizeof err), 0, "%s", err);
    const int32_t rows[] = {299, 0, 17, 17, 150, 1};
    int k = sizeof rows / sizeof rows[0];
    cr_assert_eq(data_idx_read_image_rows(path[0], rows, k, &some, &n2, &r2, &c2, err, sizeof err), 0, "%s", err);
    cr_assert(n2 == N_TR && r2 == SIDE && c2 == SIDE);
    cr_assert_eq(data_idx_read_label_rows(path[1], rows, k, &lsome, &n2, err, sizeof err), 0, "%s", err);
    for (int i = 0; i < k; i++) {
        cr_expect(!memcmp(some + i * 9, all + rows[i] * 9, 9), "image row %d", rows[i]);
        cr_expect_eq(lsome[i], lall[rows[i]]);
    }
    free(some), free(lsome);
    /* a plain file, and no rows at all */
    cr_assert_eq(data_idx_read_image_rows(path[2], rows + 1, 2, &some, &n2, &r2, &c2, err, sizeof err), 0, "%s", err);
    cr_expect(n2 == N_TE && !memcmp(some + 9, all + 17 * 9, 9));
    free(some);
    cr_assert_eq(data_idx_read_image_rows(path[2], NULL, 0, &some, &n2, &r2, &c2, err, sizeof err), 0, "%s", err);
    free(some);
    /* a row the file does not have */
    const int32_t bad[] = {3, 50};
    cr_expect_eq(data_idx_read_image_rows(path[2], bad, 2, &some, &n2, &r2, &c2, err, sizeof err), DATA_ERR_ARG);
    cr_expect(some == NULL && strstr(err, "row 50") && strstr(err, path[2]), "%s", err);
    cr_expect_eq(data_idx_read_label_rows(path[0], rows, 1, &lsome, &n2, err, sizeof err), DATA_ERR_MAGIC);
    free(all), free(lall);
}

/* The parts' histograms, summed in two passes: the first records each
 * part's and fails, the second hands every part the total. */
static double hist[8][256], total[256];
static int pass, at_part;

static int two_pass_sum(void *ud, double *buf, size_t n)
{
    (void)ud;
    cr_assert_eq(n, 256);
    if (pass == 0) {
        memcpy(hist[at_part], buf, sizeof hist[0]);
        return 1;
    }
    memcpy(buf, total, sizeof total);
    return 0;
}

Test(part, the_parts_of_a_split_are_the_split)
{
    char err[256];
    data_sizes z = {200, 50, 40, 120};
    data_split whole;
    cr_assert_eq(data_split_load(dir, 9, z, &whole, err, sizeof err), 0, "%s", err);
    cr_expect(whole.n_all_train == 200 && whole.n_all_test == N_TE && whole.train_begin == 0);
    for (int P = 2; P <= 3; P++) {
        memset(total, 0, sizeof total);
        for (pass = 0; pass < 2; pass++) {
            int tr = 0, va = 0, he = 0, te = 0;
            for (at_part = 0; at_part < P; at_part++) {
                data_split d;
                int rc = data_split_load_part(dir, 9, z, at_part, P, two_pass_sum, NULL, &d, err, sizeof err);
                if (pass == 0) {
                    cr_assert_neq(rc, 0);
                    cr_expect(strstr(err, "histogram"), "%s", err);
                    for (int v = 0; v < 256; v++)
                        total[v] += hist[at_part][v];
                    continue;
                }
                cr_assert_eq(rc, 0, "%s", err);
                cr_expect(d.n_all_train == 200 && d.n_all_val == 50 && d.n_all_held == 40 && d.n_all_test == N_TE);
                cr_expect_eq(d.train_begin, tr);
                size_t x = sizeof(bome_real) * 9;
                cr_expect(!memcmp(d.x_train, whole.x_train + tr * 9, d.n_train * x), "P %d part %d train", P, at_part);
                cr_expect(!memcmp(d.y_train, whole.y_train + tr, d.n_train * sizeof *d.y_train));
                cr_expect(!memcmp(d.y_train_true, whole.y_train_true + tr, d.n_train * sizeof *d.y_train));
                cr_expect(!memcmp(d.clean, whole.clean + tr, (size_t)d.n_train));
                cr_expect(!memcmp(d.train_index, whole.train_index + tr, d.n_train * sizeof *d.train_index));
                cr_expect(!memcmp(d.x_val, whole.x_val + va * 9, d.n_val * x));
                cr_expect(!memcmp(d.y_val, whole.y_val + va, d.n_val * sizeof *d.y_val));
                cr_expect(!memcmp(d.x_held, whole.x_held + he * 9, d.n_held * x));
                cr_expect(!memcmp(d.x_test, whole.x_test + te * 9, d.n_test * x));
                cr_expect(!memcmp(d.y_test, whole.y_test + te, d.n_test * sizeof *d.y_test));
                tr += d.n_train, va += d.n_val, he += d.n_held, te += d.n_test;
                data_split_free(&d);
            }
            if (pass == 1)
                cr_expect(tr == 200 && va == 50 && he == 40 && te == N_TE, "the parts cover %d %d %d %d", tr, va,
                          he, te);
        }
    }
    data_split d;
    cr_expect_eq(data_split_load_part(dir, 9, z, 3, 3, two_pass_sum, NULL, &d, err, sizeof err), DATA_ERR_ARG);
    data_sizes tiny = {2, 50, 40, 0};
    cr_expect_eq(data_split_load_part(dir, 9, tiny, 0, 3, two_pass_sum, NULL, &d, err, sizeof err), DATA_ERR_ARG);
    cr_expect(strstr(err, "every part needs a row"), "%s", err);
    data_split_free(&whole);
}
