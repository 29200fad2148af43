/*
 * data/protocol.c: the data protocol of the data hyper-cleaning benchmark
 * (split, standardize, corrupt), following the reference code of "Bilevel
 * Optimization Made Easy" so that results are comparable with the paper.
 */
#include "data.h"

#include "bome/opt.h"
#include "bome/rng.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_CLASSES 10

/* One IDX image/label file pair as read from disk. */
typedef struct raw_set {
    char *img_path, *lab_path;
    uint8_t *pix, *lab;
    int n, rows, cols;
} raw_set;

data_sizes data_default_sizes(void)
{
    data_sizes s = {50000, 5000, 5000, 25000};
    return s;
}

static char *join(const char *dir, const char *name, const char *suffix)
{
    size_t len = strlen(dir) + strlen(name) + strlen(suffix) + 2;
    char *p = malloc(len);
    if (p)
        snprintf(p, len, "%s/%s%s", dir, name, suffix);
    return p;
}

static int can_open(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f)
        fclose(f);
    return f != NULL;
}

/* Picks dir/name.gz if it can be opened, else dir/name; *path is malloc'ed. */
static int resolve(const char *dir, const char *name, char **path, char *err,
                   size_t errlen)
{
    char *gz = join(dir, name, ".gz"), *plain = join(dir, name, "");
    int rc = 0;
    *path = NULL;
    if (!gz || !plain) {
        rc = data_errf(err, errlen, DATA_ERR_NOMEM,
                       "%s/%s: out of memory for the path", dir, name);
    } else if (can_open(gz)) {
        *path = gz;
        gz = NULL;
    } else if (can_open(plain)) {
        *path = plain;
        plain = NULL;
    } else {
        rc = data_errf(err, errlen, DATA_ERR_OPEN,
                       "cannot open %s or %s: %s", gz, plain, strerror(errno));
    }
    free(gz);
    free(plain);
    return rc;
}

static void raw_free(raw_set *s)
{
    free(s->img_path);
    free(s->lab_path);
    free(s->pix);
    free(s->lab);
    memset(s, 0, sizeof *s);
}

/* Reads an image/label pair and checks that they describe the same items. */
static int raw_load(const char *dir, const char *img, const char *lab,
                    raw_set *s, char *err, size_t errlen)
{
    int n_lab = 0, rc;
    if ((rc = resolve(dir, img, &s->img_path, err, errlen)) ||
        (rc = resolve(dir, lab, &s->lab_path, err, errlen)) ||
        (rc = data_idx_read_images(s->img_path, &s->pix, &s->n, &s->rows,
                                   &s->cols, err, errlen)) ||
        (rc = data_idx_read_labels(s->lab_path, &s->lab, &n_lab, err, errlen)))
        return rc;
    if (n_lab != s->n)
        return data_errf(err, errlen, DATA_ERR_MISMATCH,
                         "%s holds %d images but %s holds %d labels",
                         s->img_path, s->n, s->lab_path, n_lab);
    for (int i = 0; i < n_lab; i++)
        if (s->lab[i] >= N_CLASSES)
            return data_errf(err, errlen, DATA_ERR_LABEL,
                             "%s: label %d at index %d is outside [0, %d)",
                             s->lab_path, s->lab[i], i, N_CLASSES);
    return 0;
}

/* Copies count items (src item idx[k], or k when idx is NULL) into x/y,
 * mapping each pixel byte through the standardization table. */
static void take(const raw_set *s, const int32_t *idx, int count, int d,
                 const double *lut, bome_real *x, int32_t *y)
{
    for (int k = 0; k < count; k++) {
        size_t i = idx ? (size_t)idx[k] : (size_t)k;
        const uint8_t *p = s->pix + i * (size_t)d;
        bome_real *row = x + (size_t)k * (size_t)d;
        for (int j = 0; j < d; j++)
            row[j] = lut[p[j]];
        y[k] = s->lab[i];
    }
}

/* Scalar mean and population std of the train pixels (scaled to [0, 1])
 * through a byte histogram: exact sums, one pass over the images. */
static void train_stats(const raw_set *s, const int32_t *idx, int count, int d,
                        double *mean, double *sd)
{
    uint64_t hist[256] = {0}, sum = 0;
    for (int k = 0; k < count; k++) {
        const uint8_t *p = s->pix + (size_t)idx[k] * (size_t)d;
        for (int j = 0; j < d; j++)
            hist[p[j]]++;
    }
    double total = (double)count * (double)d, var = 0.0;
    for (int v = 0; v < 256; v++)
        sum += hist[v] * (uint64_t)v;
    *mean = (double)sum / 255.0 / total;
    for (int v = 0; v < 256; v++) {
        double dv = v / 255.0 - *mean;
        var += (double)hist[v] * dv * dv;
    }
    *sd = sqrt(var / total);
}

static int alloc_out(data_split *o)
{
    size_t d = (size_t)o->d;
    o->x_train = malloc(sizeof(bome_real) * d * (size_t)o->n_train);
    o->x_val = malloc(sizeof(bome_real) * d * (size_t)o->n_val);
    o->x_held = malloc(sizeof(bome_real) * d * (size_t)o->n_held);
    o->x_test = malloc(sizeof(bome_real) * d * (size_t)o->n_test);
    o->y_train = malloc(sizeof(int32_t) * (size_t)o->n_train);
    o->y_train_true = malloc(sizeof(int32_t) * (size_t)o->n_train);
    o->y_val = malloc(sizeof(int32_t) * (size_t)o->n_val);
    o->y_held = malloc(sizeof(int32_t) * (size_t)o->n_held);
    o->y_test = malloc(sizeof(int32_t) * (size_t)o->n_test);
    o->clean = malloc((size_t)o->n_train);
    o->train_index = malloc(sizeof(int32_t) * (size_t)o->n_train);
    return o->x_train && o->x_val && o->x_held && o->x_test && o->y_train &&
           o->y_train_true && o->y_val && o->y_held && o->y_test && o->clean &&
           o->train_index;
}

/* Replaces n_corrupt distinct train labels by uniform classes. The draw is
 * over all n_train rows, whichever of them this split holds (rows begin,
 * begin + 1, ... of them), so that every part of a split sees the one
 * corruption of the whole. */
static int corrupt(bome_rng *rng, data_split *o, int n_train, int begin, int n_corrupt)
{
    int32_t *perm = malloc(sizeof(int32_t) * (size_t)n_train);
    int32_t *label = malloc(sizeof(int32_t) * (size_t)n_train);
    if (!perm || !label) {
        free(perm);
        free(label);
        return 0;
    }
    for (int i = 0; i < n_train; i++) {
        perm[i] = i;
        label[i] = -1;
    }
    bome_rng_shuffle(rng, perm, (size_t)n_train);
    for (int k = 0; k < n_corrupt; k++)
        label[perm[k]] = (int32_t)bome_rng_below(rng, N_CLASSES);
    for (int i = 0; i < o->n_train; i++) {
        o->y_train[i] = label[begin + i] >= 0 ? label[begin + i] : o->y_train_true[i];
        o->clean[i] = o->y_train[i] == o->y_train_true[i];
    }
    free(perm);
    free(label);
    return 1;
}

static int check_sizes(data_sizes s, char *err, size_t errlen)
{
    if (s.n_train <= 0 || s.n_val <= 0 || s.n_held <= 0)
        return data_errf(err, errlen, DATA_ERR_ARG,
                         "non-positive split size: n_train=%d n_val=%d "
                         "n_held=%d",
                         s.n_train, s.n_val, s.n_held);
    if (s.n_corrupt < 0 || s.n_corrupt > s.n_train)
        return data_errf(err, errlen, DATA_ERR_ARG,
                         "n_corrupt=%d is outside [0, n_train=%d]",
                         s.n_corrupt, s.n_train);
    return 0;
}

int data_split_load(const char *dir, uint64_t seed, data_sizes sizes,
                    data_split *out, char *err, size_t errlen)
{
    if (!out || !dir)
        return data_errf(err, errlen, DATA_ERR_ARG,
                         "data_split_load: NULL %s", dir ? "out" : "dir");
    memset(out, 0, sizeof *out);
    int rc = check_sizes(sizes, err, errlen);
    if (rc)
        return rc;
    raw_set tr = {0}, te = {0};
    int32_t *perm = NULL;
    if ((rc = raw_load(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                       &tr, err, errlen)) ||
        (rc = raw_load(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
                       &te, err, errlen)))
        goto fail;
    if (tr.rows != te.rows || tr.cols != te.cols) {
        rc = data_errf(err, errlen, DATA_ERR_MISMATCH,
                       "%s has %d x %d images but %s has %d x %d",
                       tr.img_path, tr.rows, tr.cols, te.img_path, te.rows,
                       te.cols);
        goto fail;
    }
    long long need = (long long)sizes.n_train + sizes.n_val + sizes.n_held;
    if (tr.n < need) {
        rc = data_errf(err, errlen, DATA_ERR_ARG,
                       "%s holds %d images, fewer than n_train + n_val + "
                       "n_held = %d + %d + %d = %lld",
                       tr.img_path, tr.n, sizes.n_train, sizes.n_val,
                       sizes.n_held, need);
        goto fail;
    }

    bome_rng rng;
    bome_rng_seed(&rng, seed);
    perm = malloc(sizeof(int32_t) * (size_t)tr.n);
    if (!perm)
        goto nomem;
    for (int i = 0; i < tr.n; i++)
        perm[i] = i;
    bome_rng_shuffle(&rng, perm, (size_t)tr.n);

    out->d = tr.rows * tr.cols;
    out->rows = tr.rows;
    out->cols = tr.cols;
    out->n_classes = N_CLASSES;
    out->n_train = sizes.n_train;
    out->n_val = sizes.n_val;
    out->n_held = sizes.n_held;
    out->n_corrupt = sizes.n_corrupt;
    out->n_test = te.n;
    out->n_all_train = out->n_train;
    out->n_all_val = out->n_val;
    out->n_all_held = out->n_held;
    out->n_all_test = out->n_test;

    double mean, sd, lut[256];
    train_stats(&tr, perm, out->n_train, out->d, &mean, &sd);
    if (!(sd > 0.0)) {
        rc = data_errf(err, errlen, DATA_ERR_DEGENERATE,
                       "%s: all pixels of the %d training images are "
                       "equal; cannot standardize",
                       tr.img_path, out->n_train);
        goto fail;
    }
    for (int v = 0; v < 256; v++)
        lut[v] = (v / 255.0 - mean) / sd;

    if (!alloc_out(out))
        goto nomem;
    take(&tr, perm, out->n_train, out->d, lut, out->x_train, out->y_train_true);
    memcpy(out->train_index, perm, sizeof(int32_t) * (size_t)out->n_train);
    take(&tr, perm + out->n_train, out->n_val, out->d, lut, out->x_val,
         out->y_val);
    take(&tr, perm + out->n_train + out->n_val, out->n_held, out->d, lut,
         out->x_held, out->y_held);
    take(&te, NULL, out->n_test, out->d, lut, out->x_test, out->y_test);
    if (!corrupt(&rng, out, out->n_train, 0, sizes.n_corrupt))
        goto nomem;
    free(perm);
    raw_free(&tr);
    raw_free(&te);
    return 0;

nomem:
    rc = data_errf(err, errlen, DATA_ERR_NOMEM,
                   "%s: out of memory building the hyper-cleaning data",
                   dir);
fail:
    free(perm);
    raw_free(&tr);
    raw_free(&te);
    data_split_free(out);
    return rc;
}

void data_split_free(data_split *d)
{
    if (!d)
        return;
    free(d->x_train);
    free(d->x_val);
    free(d->x_held);
    free(d->x_test);
    free(d->y_train);
    free(d->y_train_true);
    free(d->y_val);
    free(d->y_held);
    free(d->y_test);
    free(d->clean);
    free(d->train_index);
    memset(d, 0, sizeof *d);
}

/* ---- One part of a split ------------------------------------------------ */

/* Rows [*b, *e) of a set of n rows for part `part` of `parts`. */
static void part_rows(int n, int part, int parts, int *b, int *e)
{
    long lb, le;
    bome_shard_rows(n, part, parts, &lb, &le);
    *b = (int)lb;
    *e = (int)le;
}

/* The wanted rows of one file pair: images and labels, in the order asked. */
static int read_part(const char *dir, const char *img, const char *lab, const int32_t *rows, int n_rows,
                     raw_set *s, char *err, size_t errlen)
{
    int n_lab = 0, rc;
    if ((rc = resolve(dir, img, &s->img_path, err, errlen)) || (rc = resolve(dir, lab, &s->lab_path, err, errlen)) ||
        (rc = data_idx_read_image_rows(s->img_path, rows, n_rows, &s->pix, &s->n, &s->rows, &s->cols, err, errlen)) ||
        (rc = data_idx_read_label_rows(s->lab_path, rows, n_rows, &s->lab, &n_lab, err, errlen)))
        return rc;
    if (n_lab != s->n)
        return data_errf(err, errlen, DATA_ERR_MISMATCH, "%s holds %d images but %s holds %d labels", s->img_path,
                         s->n, s->lab_path, n_lab);
    for (int i = 0; i < n_rows; i++)
        if (s->lab[i] >= N_CLASSES)
            return data_errf(err, errlen, DATA_ERR_LABEL, "%s: label %d at index %d is outside [0, %d)", s->lab_path,
                             s->lab[i], (int)rows[i], N_CLASSES);
    return 0;
}

int data_split_load_part(const char *dir, uint64_t seed, data_sizes sizes, int part, int parts, data_sum_fn sum,
                         void *ud, data_split *out, char *err, size_t errlen)
{
    if (parts == 1)
        return data_split_load(dir, seed, sizes, out, err, errlen);
    if (!out || !dir || parts < 1 || part < 0 || part >= parts || !sum)
        return data_errf(err, errlen, DATA_ERR_ARG, "data_split_load_part: part %d of %d, %s", part, parts,
                         !out || !dir ? "NULL out or dir" : "no sum function");
    memset(out, 0, sizeof *out);
    int rc = check_sizes(sizes, err, errlen);
    if (rc)
        return rc;
    if (sizes.n_train < parts || sizes.n_val < parts || sizes.n_held < parts)
        return data_errf(err, errlen, DATA_ERR_ARG, "%d parts of %d train, %d validation and %d held-out rows: "
                         "every part needs a row of each", parts, sizes.n_train, sizes.n_val, sizes.n_held);
    raw_set tr = {0}, te = {0};
    int32_t *perm = NULL, *rows = NULL;
    char *tr_img = NULL, *te_img = NULL;
    int tr_n = 0, te_n = 0;
    if ((rc = resolve(dir, "train-images-idx3-ubyte", &tr_img, err, errlen)) ||
        (rc = resolve(dir, "t10k-images-idx3-ubyte", &te_img, err, errlen)) ||
        (rc = data_idx_image_count(tr_img, &tr_n, err, errlen)) ||
        (rc = data_idx_image_count(te_img, &te_n, err, errlen)))
        goto fail;
    long long need = (long long)sizes.n_train + sizes.n_val + sizes.n_held;
    if (tr_n < need) {
        rc = data_errf(err, errlen, DATA_ERR_ARG, "%s holds %d images, fewer than n_train + n_val + n_held = %d + %d + "
                       "%d = %lld", tr_img, tr_n, sizes.n_train, sizes.n_val, sizes.n_held, need);
        goto fail;
    }
    if (te_n < parts) {
        rc = data_errf(err, errlen, DATA_ERR_ARG, "%s holds %d images, fewer than the %d parts", te_img, te_n, parts);
        goto fail;
    }
    /* the whole split's permutation, as data_split_load draws it; this part
     * keeps its rows of each set */
    bome_rng rng;
    bome_rng_seed(&rng, seed);
    if (!(perm = malloc(sizeof(int32_t) * (size_t)tr_n)) ||
        !(rows = malloc(sizeof(int32_t) * (size_t)(tr_n > te_n ? tr_n : te_n))))
        goto nomem;
    for (int i = 0; i < tr_n; i++)
        perm[i] = i;
    bome_rng_shuffle(&rng, perm, (size_t)tr_n);
    int b[4], e[4], at = 0;
    const int n_set[3] = {sizes.n_train, sizes.n_val, sizes.n_held};
    for (int k = 0, first = 0; k < 3; first += n_set[k], k++) {
        part_rows(n_set[k], part, parts, &b[k], &e[k]);
        for (int i = b[k]; i < e[k]; i++)
            rows[at++] = perm[first + i];
    }
    if ((rc = read_part(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", rows, at, &tr, err, errlen)))
        goto fail;
    part_rows(te_n, part, parts, &b[3], &e[3]);
    for (int i = b[3]; i < e[3]; i++)
        rows[i - b[3]] = i;
    if ((rc = read_part(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", rows, e[3] - b[3], &te, err, errlen)))
        goto fail;
    if (tr.rows != te.rows || tr.cols != te.cols) {
        rc = data_errf(err, errlen, DATA_ERR_MISMATCH, "%s has %d x %d images but %s has %d x %d", tr.img_path,
                       tr.rows, tr.cols, te.img_path, te.rows, te.cols);
        goto fail;
    }
    out->d = tr.rows * tr.cols;
    out->rows = tr.rows;
    out->cols = tr.cols;
    out->n_classes = N_CLASSES;
    out->n_train = e[0] - b[0];
    out->n_val = e[1] - b[1];
    out->n_held = e[2] - b[2];
    out->n_test = e[3] - b[3];
    out->n_corrupt = sizes.n_corrupt;
    out->n_all_train = sizes.n_train;
    out->n_all_val = sizes.n_val;
    out->n_all_held = sizes.n_held;
    out->n_all_test = te_n;
    out->train_begin = b[0];
    /* the training pixels' histogram over all the parts: counts below 2^53,
     * exact as doubles in any order of summation */
    double hist[256] = {0}, mean = 0, sd = 0, var = 0, total = (double)sizes.n_train * out->d, lut[256];
    for (size_t i = 0; i < (size_t)out->n_train * (size_t)out->d; i++)
        hist[tr.pix[i]]++;
    if (sum(ud, hist, 256)) {
        rc = data_errf(err, errlen, DATA_ERR_READ, "%s: summing the training pixels' histogram across the %d parts "
                       "failed", dir, parts);
        goto fail;
    }
    uint64_t s = 0;
    for (int v = 0; v < 256; v++)
        s += (uint64_t)hist[v] * (uint64_t)v;
    mean = (double)s / 255.0 / total;
    for (int v = 0; v < 256; v++) {
        double dv = v / 255.0 - mean;
        var += hist[v] * dv * dv;
    }
    sd = sqrt(var / total);
    if (!(sd > 0.0)) {
        rc = data_errf(err, errlen, DATA_ERR_DEGENERATE, "%s: all pixels of the %d training images are equal; cannot "
                       "standardize", tr.img_path, sizes.n_train);
        goto fail;
    }
    for (int v = 0; v < 256; v++)
        lut[v] = (v / 255.0 - mean) / sd;
    if (!alloc_out(out))
        goto nomem;
    raw_set at_val = tr, at_held = tr;
    at_val.pix = tr.pix + (size_t)out->n_train * (size_t)out->d;
    at_val.lab = tr.lab + out->n_train;
    at_held.pix = at_val.pix + (size_t)out->n_val * (size_t)out->d;
    at_held.lab = at_val.lab + out->n_val;
    take(&tr, NULL, out->n_train, out->d, lut, out->x_train, out->y_train_true);
    take(&at_val, NULL, out->n_val, out->d, lut, out->x_val, out->y_val);
    take(&at_held, NULL, out->n_held, out->d, lut, out->x_held, out->y_held);
    take(&te, NULL, out->n_test, out->d, lut, out->x_test, out->y_test);
    memcpy(out->train_index, perm + b[0], sizeof(int32_t) * (size_t)out->n_train);
    if (!corrupt(&rng, out, sizes.n_train, b[0], sizes.n_corrupt))
        goto nomem;
    goto done;
nomem:
    rc = data_errf(err, errlen, DATA_ERR_NOMEM, "%s: out of memory building part %d of the hyper-cleaning data", dir,
                   part);
fail:
    data_split_free(out);
done:
    free(perm);
    free(rows);
    free(tr_img);
    free(te_img);
    raw_free(&tr);
    raw_free(&te);
    return rc;
}
