/* libFuzzer harness for the IDX reader (data/idx.c): the first byte picks
 * images or labels, the rest is the file, plain or gzip. Any bytes must be
 * read whole or refused with a message, never crash; a refusal leaves the
 * outputs empty, a success holds exactly the bytes its header declares. */
#include "data.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The reader takes a path: one file for the process, rewritten per input,
 * in memory where there is a tmpfs (on a disk, ftruncate costs a
 * millisecond, and the fuzzer would spend its time there). */
static char path[64];
static int fd = -1;

/* every payload byte is read into it, so that ASan sees each one */
static volatile unsigned sink;

static void unlink_file(void) { unlink(path); }

static void put_file(const uint8_t *data, size_t size)
{
    if (fd < 0) {
        snprintf(path, sizeof path, "%s/bome-fuzz-idx-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        if ((fd = mkstemp(path)) < 0)
            abort();
        atexit(unlink_file);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    put_file(data + 1, size - 1);
    char err[256] = "";
    uint8_t *bytes = NULL;
    int n = -1, rows = -1, cols = -1, rc;
    if (data[0] & 1) {
        rc = data_idx_read_labels(path, &bytes, &n, err, sizeof err);
        rows = cols = 1;
    } else {
        rc = data_idx_read_images(path, &bytes, &n, &rows, &cols, err, sizeof err);
    }
    if (rc != DATA_OK) {
        if (bytes || n != 0 || !err[0])
            abort();
        return 0;
    }
    if (!bytes || n < 1 || rows < 1 || cols < 1)
        abort();
    /* every byte the header declares is there (ASan checks the reads) */
    size_t total = (size_t)n * (size_t)rows * (size_t)cols;
    for (size_t i = 0; i < total; i++)
        sink += bytes[i];
    free(bytes);
    return 0;
}
