/* tests/run_exe.h: runs a program as a user would, through the shell, and
 * keeps what it printed (stdout and stderr together). */
#ifndef BOME_TESTS_RUN_EXE_H
#define BOME_TESTS_RUN_EXE_H

#include <criterion/criterion.h>

#include <stdio.h>
#include <sys/wait.h>

/* exe with args (a shell fragment); its output into out (len bytes, cut
 * there); its exit status, or -1 when it did not exit. */
static inline __attribute__((unused)) int run_exe(const char *exe, const char *args, char *out, size_t len)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", exe, args);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    size_t n = fread(out, 1, len - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif
