/* Writes the fuzzers' seed corpora: for the checkpoint loader, one valid
 * checkpoint per method after a few steps (the method's number first). */
#include "fuzz_problem.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds DIR   (writes DIR/checkpoint/*)\n");
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
    return 0;
}
