/*
 * --precision float32|float64. One build of the program computes in one
 * precision (bome/ad.h: bome_real is fixed when the library is compiled), so
 * a run that asks for the other one is handed, with the same arguments less
 * this flag, to the sibling program installed beside this one: `bome` runs
 * in double precision, `bome-f32` in single.
 */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

const char *cli_precision_name(int bits)
{
    return bits == 32 ? "float32" : "float64";
}

/* The value of --precision V or --precision=V at argv[i], or NULL. */
static const char *value_at(int argc, char **argv, int i, int *used)
{
    static const char flag[] = "--precision";
    size_t n = sizeof flag - 1;
    if (strncmp(argv[i], flag, n) != 0)
        return NULL;
    if (argv[i][n] == '=') {
        *used = 1;
        return argv[i] + n + 1;
    }
    if (argv[i][n] != '\0')
        return NULL;
    *used = 2;
    return i + 1 < argc ? argv[i + 1] : "";
}

int cli_precision(int *argc, char **argv)
{
    int want = 0;
    for (int i = 1; i < *argc;) {
        int used = 0;
        const char *v = value_at(*argc, argv, i, &used);
        if (!v) {
            i++;
            continue;
        }
        if (!strcmp(v, "float32") || !strcmp(v, "float64")) {
            int bits = v[5] == '3' ? 32 : 64;
            if (want && want != bits) {
                fprintf(stderr, "bome: --precision given twice, as float%d and float%d\n", want, bits);
                return 2;
            }
            want = bits;
        } else {
            fprintf(stderr, "bome: --precision takes float32 or float64, not '%s'\n", v);
            return 2;
        }
        memmove(argv + i, argv + i + used, (size_t)(*argc - i - used + 1) * sizeof *argv);
        *argc -= used;
    }
    if (!want || want == BOME_REAL_BITS)
        return 0;
    const char *name = want == 32 ? "bome-f32" : "bome";
    char self[PATH_MAX], path[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        fprintf(stderr, "bome: --precision float%d: cannot find this program's folder (%s)\n", want, strerror(errno));
        return 2;
    }
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        slash[1] = '\0';
    snprintf(path, sizeof path, "%s%s", slash ? self : "", name);
    argv[0] = (char *)name;
    fflush(NULL);
    execv(path, argv);
    fprintf(stderr,
            "bome: --precision float%d runs %s, which is not beside this program (%s: %s); "
            "build bome with meson's -Dfloat32=true\n",
            want, name, path, strerror(errno));
    return 2;
}
