/* Shared by test_data.c and test_hardening.c: synthetic IDX files in a fresh
 * temporary directory. */
#ifndef BOME_TEST_IDX_FIXTURE_H
#define BOME_TEST_IDX_FIXTURE_H

#include <criterion/criterion.h>

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* A new directory under /tmp; dir holds at least 64 bytes. */
static __attribute__((unused)) void idx_tmpdir_make(char *dir)
{
    strcpy(dir, "/tmp/bome_test_data_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

/* Removes the directory and the files in it. */
static __attribute__((unused)) void idx_tmpdir_remove(const char *dir)
{
    char p[512];
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.' && snprintf(p, sizeof p, "%s/%s", dir, e->d_name) > 0)
            remove(p);
    if (d)
        closedir(d);
    rmdir(dir);
}

/* Writes an IDX file: magic, ndims big-endian dims, then len payload bytes;
 * gzipped or plain (zlib's "T" mode writes the bytes as they are). */
static __attribute__((unused)) void idx_write(const char *path, int gz, uint32_t magic, const uint32_t *dims,
                                              int ndims, const void *payload, size_t len)
{
    uint8_t hdr[16];
    for (int i = 0; i <= ndims; i++)
        for (int b = 0; b < 4; b++)
            hdr[4 * i + b] = (uint8_t)((i ? dims[i - 1] : magic) >> (24 - 8 * b));
    gzFile f = gzopen(path, gz ? "wb" : "wbT");
    cr_assert_not_null(f);
    cr_assert_eq(gzwrite(f, hdr, 4 + 4 * (unsigned)ndims), 4 + 4 * ndims);
    cr_assert(!len || gzwrite(f, payload, (unsigned)len) == (int)len);
    cr_assert_eq(gzclose(f), Z_OK);
}

#endif
