/*
 * data/data.h: the dataset layer under the problems (private: not installed,
 * hence the data_ prefix, not the library's bome_).
 *
 * Two layers: IDX readers that turn the MNIST-family file format into plain
 * byte buffers, and the data hyper-cleaning protocol of "Bilevel Optimization
 * Made Easy", which splits, standardizes and corrupts a dataset so that every
 * solver sees exactly the same problem for a given seed.
 *
 * Error convention: every loader returns 0 on success and one of the
 * data_status codes otherwise, and writes a one-line message into
 * err[0..errlen) that names the offending file and what is wrong with it, so
 * that a benchmark driver can report it verbatim. Nothing here aborts, exits
 * or prints; err may be NULL (or errlen 0) when the caller only wants a code.
 */
#ifndef DATA_DATA_H
#define DATA_DATA_H

#include <stddef.h>
#include <stdint.h>
#include "bome/ad.h"

typedef enum data_status {
    DATA_OK = 0,
    DATA_ERR_OPEN,       /* file missing or unreadable */
    DATA_ERR_READ,       /* I/O or decompression error mid-file */
    DATA_ERR_MAGIC,      /* not the IDX type that was asked for */
    DATA_ERR_TRUNCATED,  /* fewer bytes than the header promises */
    DATA_ERR_DIMS,       /* zero or absurdly large dimensions */
    DATA_ERR_NOMEM,      /* allocation failed */
    DATA_ERR_MISMATCH,   /* files of one dataset disagree */
    DATA_ERR_LABEL,      /* a label outside [0, n_classes) */
    DATA_ERR_ARG,        /* bad sizes or pointers from the caller,
                            including splits larger than the data */
    DATA_ERR_DEGENERATE, /* data the protocol cannot use (constant) */
    DATA_ERR_TRAILING    /* more bytes than the header declares */
} data_status;

/* Magic numbers: unsigned bytes, 3 (images) or 1 (labels) dimensions. */
#define DATA_IDX_MAGIC_IMAGES 0x00000803u
#define DATA_IDX_MAGIC_LABELS 0x00000801u
/* Limits that separate a real image dataset from a corrupt header. Checked
 * before anything is allocated, so a bad header cannot ask for gigabytes. */
#define DATA_IDX_MAX_SIDE 16384
#define DATA_IDX_MAX_BYTES ((uint64_t)1 << 32)

/*
 * Formats a message into err (if err is non-NULL and errlen > 0), always
 * NUL-terminated and silently truncated to fit; returns code so that error
 * paths can be written as `return data_errf(err, errlen, code, ...)`.
 */
int data_errf(char *err, size_t errlen, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/*
 * Reads an IDX3 unsigned-byte image file, gzip-compressed or plain (detected
 * from the content, not the name). On success *pixels holds n * rows * cols
 * bytes, image after image, row-major, and the caller releases it with
 * free(). On failure the outputs are left NULL / 0. Bytes after the last
 * image are an error (DATA_ERR_TRAILING), and so is a gzip stream whose
 * CRC-32 or length trailer is cut (DATA_ERR_TRUNCATED) or wrong
 * (DATA_ERR_READ): the file is read to its end so that zlib checks it.
 */
int data_idx_read_images(const char *path, uint8_t **pixels, int *n, int *rows,
                         int *cols, char *err, size_t errlen);

/*
 * Reads an IDX1 unsigned-byte label file like data_idx_read_images. Label
 * values are not checked: the valid range belongs to the dataset, not to the
 * format, so data_split_load checks it.
 */
int data_idx_read_labels(const char *path, uint8_t **labels, int *n, char *err,
                         size_t errlen);

/*
 * The rows rows[0..n_rows) of an IDX image or label file (in that order;
 * a row may repeat), read in one pass that keeps only those: a worker of
 * a data-parallel run holds its own rows and no others. *n is the number
 * of items the file holds. The checks and errors are those of the whole
 * readers above, and a row outside the file is DATA_ERR_ARG.
 */
int data_idx_read_image_rows(const char *path, const int32_t *rows, int n_rows, uint8_t **pixels, int *n, int *r,
                             int *c, char *err, size_t errlen);
int data_idx_read_label_rows(const char *path, const int32_t *rows, int n_rows, uint8_t **labels, int *n, char *err,
                             size_t errlen);
/* The number of images an IDX image file's header declares. */
int data_idx_image_count(const char *path, int *n, char *err, size_t errlen);

/* Split and corruption sizes of the hyper-cleaning protocol. */
typedef struct data_sizes {
    int n_train, n_val, n_held, n_corrupt;
} data_sizes;

typedef struct data_split {
    int d;         /* features per image, 784 for (Fashion-)MNIST */
    int rows, cols; /* the image's shape: d = rows * cols */
    int n_classes; /* 10 */
    int n_train, n_val, n_held, n_test;
    int n_corrupt; /* train labels redrawn (about 1 in n_classes stays right) */
    bome_real *x_train, *x_val, *x_held, *x_test; /* row-major n x d, standardized */
    int32_t *y_train;      /* corrupted labels: what training sees */
    int32_t *y_train_true; /* the original labels */
    int32_t *y_val, *y_held, *y_test;
    unsigned char *clean; /* clean[i] = (y_train[i] == y_train_true[i]) */
    int32_t *train_index; /* train row i is image train_index[i] of the IDX file */
    /* A part of a split (data_split_load_part): the whole split's sizes,
     * and the first training row of this part; the part's sizes are the
     * n_ fields above. A whole split: the same sizes, begin 0. */
    int n_all_train, n_all_val, n_all_held, n_all_test;
    int train_begin;
} data_split;

/* The paper's sizes: 50000 train, 5000 validation, 5000 held-out, 25000
 * corrupted training labels. */
data_sizes data_default_sizes(void);

/*
 * Builds the hyper-cleaning problem from the four (Fashion-)MNIST IDX files
 * in dir (each tried as NAME.gz first, then NAME). The result is a pure
 * function of the files, seed and sizes: a permutation of the training
 * images drawn from bome_rng(seed) deals the first n_train to train, the next
 * n_val to validation and the next n_held to held-out (leftovers unused);
 * t10k is the test set, in file order. Pixels are scaled to [0, 1] and then
 * standardized with the scalar mean and population standard deviation of
 * the train split only, so no statistics leak from validation or test.
 * Finally n_corrupt distinct train labels, drawn from the same generator,
 * are replaced by uniform classes (so about 1 in n_classes stays right).
 *
 * n_train, n_val and n_held must be positive, 0 <= n_corrupt <= n_train.
 * Training pixels that are all equal are an error (nothing to standardize
 * by). On failure everything is freed and *out is all zeros, so
 * data_split_free(out) is always safe.
 */
int data_split_load(const char *dir, uint64_t seed, data_sizes sizes,
                    data_split *out, char *err, size_t errlen);

/*
 * Part `part` of `parts` of that split, for one worker of a data-parallel
 * run: the same permutation, standardization and corruption, of which it
 * keeps rows n p / P to n (p + 1) / P of each set (train, validation,
 * held-out and test alike; bome_shard_rows), and it reads from the files
 * only those rows. The standardization needs every part's pixels:
 * sum(ud, buf, n) must add buf[0..n) across the parts in place (the same
 * call on every part; 0 on success). parts = 1 is data_split_load.
 */
typedef int (*data_sum_fn)(void *ud, double *buf, size_t n);
int data_split_load_part(const char *dir, uint64_t seed, data_sizes sizes, int part, int parts, data_sum_fn sum,
                         void *ud, data_split *out, char *err, size_t errlen);

/* Releases every buffer and zeroes *d so a double free is harmless;
 * NULL-safe. */
void data_split_free(data_split *d);

#endif
