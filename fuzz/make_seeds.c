/* Writes the fuzzers' seed corpora: for the checkpoint loader, one valid
 * checkpoint per method after a few steps (the method's number first); for
 * the IDX reader, small image and label files, plain and gzip (the kind's
 * byte first); for the cache reader, a valid cache of each model (the
 * harness's byte first). */
#include "data.h"
#include "fuzz_cache.h"
#include "fuzz_problem.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

static int put_be32(unsigned char *p, uint32_t v)
{
    for (int b = 0; b < 4; b++)
        p[b] = (unsigned char)(v >> (24 - 8 * b));
    return 4;
}

/* An IDX file of 3 images of 4 x 5 pixels (or their 3 labels), after the
 * byte that tells the harness which it is; gzipped or stored as is. */
static int idx_seed(const char *dir, int labels, int gz)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/idx/%s-%s.bin", dir, labels ? "labels" : "images", gz ? "gz" : "plain");
    unsigned char b[16 + 60], kind = (unsigned char)labels;
    int n = put_be32(b, labels ? DATA_IDX_MAGIC_LABELS : DATA_IDX_MAGIC_IMAGES);
    n += put_be32(b + n, 3);
    if (!labels) {
        n += put_be32(b + n, 4);
        n += put_be32(b + n, 5);
    }
    for (int i = 0; i < (labels ? 3 : 60); i++)
        b[n++] = (unsigned char)(labels ? i : 17 * i);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, &kind, 1) != 1)
        return 1;
    gzFile f = gzdopen(fd, gz ? "wb" : "wbT");
    return !f || gzwrite(f, b, (unsigned)n) != n || gzclose(f) != Z_OK;
}

static int cache_seed(const char *dir, int mlp)
{
    hc_model m;
    hc_cache_key k;
    if (fc_open(&m, &k, mlp))
        return 1;
    for (int i = 0; i < m.n_params; i++)
        for (size_t j = 0; j < m.size[i]; j++)
            m.theta[i][j] = 0.1 * (double)j - i;
    size_t n;
    unsigned char *b = hc_cache_bytes(&k, &m, &n), head = (unsigned char)(mlp << 1);
    char path[4096];
    snprintf(path, sizeof path, "%s/cache/%s.bin", dir, mlp ? "mlp" : "linear");
    FILE *f = fopen(path, "wb");
    int bad = !b || !f || fwrite(&head, 1, 1, f) != 1 || fwrite(b, 1, n, f) != n;
    bad |= f && fclose(f) != 0;
    free(b);
    hc_model_free(&m);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds DIR   (writes DIR/checkpoint/*, DIR/idx/*, DIR/cache/*)\n");
        return 2;
    }
    for (int m = 0; m < bome_method_count(); m++) {
        fz_run r;
        if (fz_open(&r, m) != BOME_OK) {
            fprintf(stderr, "make_seeds: %s: %s\n", bome_method_name(m), bome_solver_errmsg(r.s));
            return 1;
        }
        for (int i = 0; i < 3; i++)
            bome_solver_step(r.s, NULL);
        size_t n = bome_solver_state_size(r.s);
        unsigned char *buf = malloc(n + 1);
        buf[0] = (unsigned char)m;
        bome_solver_save(r.s, buf + 1, n);
        char path[4096];
        snprintf(path, sizeof path, "%s/checkpoint/%s.bin", argv[1], bome_method_name(m));
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(buf, 1, n + 1, f) != n + 1 || fclose(f) != 0) {
            fprintf(stderr, "make_seeds: cannot write %s\n", path);
            return 1;
        }
        free(buf);
        fz_close(&r);
    }
    for (int i = 0; i < 4; i++)
        if (idx_seed(argv[1], i & 1, i >> 1)) {
            fprintf(stderr, "make_seeds: cannot write the IDX seeds in %s/idx\n", argv[1]);
            return 1;
        }
    for (int mlp = 0; mlp < 2; mlp++)
        if (cache_seed(argv[1], mlp)) {
            fprintf(stderr, "make_seeds: cannot write the cache seeds in %s/cache\n", argv[1]);
            return 1;
        }
    return 0;
}
