/*
 * tests/test_readme.c: the README's first C block is a whole program that
 * builds as the README says. The block is cut out of README.md itself (the
 * README is the source), the library installed into a scratch folder
 * (meson install --destdir), the program compiled with the README's
 * `pkg-config --cflags --libs bome` line against that copy, and run.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bome/version.h"

static char out[1 << 16];

/* Runs a shell script; its stdout and stderr into out; the exit status. */
static int sh(const char *script)
{
    FILE *p = popen(script, "r");
    cr_assert(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The first ```c block of the file at path, malloc'ed. */
static char *first_c_block(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot read %s", path);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    const char *open = strstr(text, "\n```c\n");
    cr_assert(open, "%s has no ```c block", path);
    open += strlen("\n```c\n");
    const char *close = strstr(open, "\n```");
    cr_assert(close);
    return strndup(open, (size_t)(close - open) + 1);
}

Test(readme, the_first_c_block_builds_with_pkg_config_and_runs, .timeout = 300)
{
    const char *readme = getenv("BOME_README"), *build = getenv("BOME_BUILD"), *cc = getenv("BOME_CC");
    const char *meson = getenv("BOME_MESON"), *cflags = getenv("BOME_CFLAGS");
    cr_assert(readme && build && cc && meson, "meson sets BOME_README, BOME_BUILD, BOME_CC and BOME_MESON");
    char dir[] = "/tmp/bome-readme-XXXXXX", path[512], script[8192];
    cr_assert(mkdtemp(dir));
    char *program = first_c_block(readme);
    cr_expect(strstr(program, "int main("), "the block is not a whole program");
    snprintf(path, sizeof path, "%s/readme.c", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(program, f);
    fclose(f);
    free(program);

    /* the copy a user gets from `meson install`, its .pc file wherever the
     * libdir is, and the README's command line run against it */
    snprintf(script, sizeof script,
             "set -e; cd %s; '%s' install -C '%s' --destdir \"$PWD/root\" --no-rebuild --quiet >/dev/null 2>&1; "
             "pc=$(dirname \"$(find root -name bome.pc | head -n 1)\"); lib=$(dirname \"$pc\"); "
             "export PKG_CONFIG_SYSROOT_DIR=\"$PWD/root\" PKG_CONFIG_PATH=\"$PWD/$pc\"; "
             "%s %s readme.c $(pkg-config --cflags --libs bome) -o readme 2>&1; "
             "LD_LIBRARY_PATH=\"$PWD/$lib\" ./readme; ls \"$lib\"",
             dir, meson, build, cc, cflags ? cflags : "");
    int rc = sh(script);
    cr_assert_eq(rc, 0, "%s", out);
    double d[3], h[3];
    char version[64];
    const char *at = strstr(out, "bome ");
    cr_assert(at && sscanf(at, "bome %63s\ndy/dx = %lf %lf %lf\nH u   = %lf %lf %lf", version, &d[0], &d[1], &d[2],
                           &h[0], &h[1], &h[2]) == 7,
              "%s", out);
    cr_expect_str_eq(version, BOME_VERSION_STRING);
    for (int i = 0; i < 3; i++) {
        cr_expect(fabs(d[i] - (exp(i) + 2 * i)) < 1e-6, "dy/dx[%d] = %g", i, d[i]);
        cr_expect(fabs(h[i] - (i == 0 ? exp(0.0) + 2 : 0.0)) < 1e-6, "Hu[%d] = %g", i, h[i]);
    }
    /* the shared library under its soname, as the loader looks for it */
    char soname[64];
    snprintf(soname, sizeof soname, "libbome.so.%d.%d", BOME_VERSION_MAJOR, BOME_VERSION_MINOR);
    if (BOME_VERSION_MAJOR > 0)
        snprintf(soname, sizeof soname, "libbome.so.%d", BOME_VERSION_MAJOR);
    cr_expect(strstr(out, soname), "no %s installed: %s", soname, out);
    snprintf(script, sizeof script, "rm -rf %s", dir);
    sh(script);
}
