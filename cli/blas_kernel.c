/* The BLAS kernel check at the start of `bome`, and `bome blas` (see
 * blas_kernel.h); and the BLAS's threads for a run. */
#include "blas_kernel.h"
#include "cli.h"

#include "bome/blas.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Set in the environment of the re-executed process, to the kernel set: it
 * stops a second round (should the variable not take, or the test hook keep
 * asking) and tells `bome blas` who set OPENBLAS_CORETYPE. */
#define REEXEC_VAR "BOME_BLAS_REEXEC"
#define FAKE_VAR "BOME_TEST_FAKE_CORENAME"

/* What this invocation's first process set, "" when it set nothing. */
static char set_by_bome[48];

/* The decision's inputs: this process's, or the test hook's fake kernel
 * chosen by OpenBLAS on its own (so with OPENBLAS_CORETYPE unset). */
static void inputs(bome_blas_info *b)
{
    bome_blas_info_get(b);
    const char *fake = getenv(FAKE_VAR);
    if (fake) {
        b->openblas = b->dynamic_arch = true;
        snprintf(b->corename, sizeof b->corename, "%s", fake);
        b->user_set = false;
        b->user_coretype[0] = '\0';
    }
}

void blas_kernel_check(char **argv)
{
    const char *again = getenv(REEXEC_VAR);
    if (again) {
        snprintf(set_by_bome, sizeof set_by_bome, "%s", again);
        /* Not passed on: a bome started from this one decides for itself. */
        unsetenv(REEXEC_VAR);
        bome_blas_info b;
        bome_blas_info_get(&b);
        if (b.openblas && strcasecmp(b.corename, set_by_bome))
            fprintf(stderr, "bome: OPENBLAS_CORETYPE=%s did not take: OpenBLAS runs its %s kernel\n", set_by_bome,
                    b.corename);
        return;
    }
    bome_blas_info b;
    inputs(&b);
    const char *pick = bome_blas_advice(&b);
    if (!pick)
        return;
    fprintf(stderr,
            "bome: OpenBLAS chose its %s kernel on this %s CPU; running again with OPENBLAS_CORETYPE=%s "
            "(set the variable to choose yourself)\n",
            b.corename, strcmp(pick, "SkylakeX") ? "AVX2" : "AVX-512", pick);
    fflush(NULL);
    if (setenv("OPENBLAS_CORETYPE", pick, 1) == 0 && setenv(REEXEC_VAR, pick, 1) == 0)
        execv("/proc/self/exe", argv);
    /* Still here: no /proc, say. Carry on with the slow kernel, and leave the
     * environment as it was for whatever this process starts. */
    int err = errno;
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv(REEXEC_VAR);
    fprintf(stderr, "bome: cannot run again (%s); going on with the %s kernel\n", strerror(err), b.corename);
}

int blas_kernel_main(int argc, char **argv)
{
    if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
        puts("usage: bome blas\n\n"
             "Prints the BLAS bome runs on, OpenBLAS's kernel, what the CPU offers, who set\n"
             "OPENBLAS_CORETYPE, and whether a faster kernel fits. When OpenBLAS falls back to a\n"
             "generic kernel on an AVX2 or AVX-512 CPU and OPENBLAS_CORETYPE is unset, every\n"
             "bome command sets it (Haswell or SkylakeX) and runs again, saying so on stderr.");
        return 0;
    }
    if (argc > 2) {
        fprintf(stderr, "bome: blas takes no arguments\n");
        return 2;
    }
    bome_blas_info b;
    bome_blas_info_get(&b);
    if (b.openblas)
        printf("BLAS:              %s\nkernel:            %s\n", b.config, b.corename[0] ? b.corename : "?");
    else
        printf("BLAS:              not OpenBLAS (bome cannot tell its kernel)\n");
    printf("CPU:              ");
    const struct { const char *name; bool on; } flags[] = {
        {"avx2", b.cpu.avx2},         {"fma", b.cpu.fma},           {"avx512f", b.cpu.avx512f},
        {"avx512bw", b.cpu.avx512bw}, {"avx512vl", b.cpu.avx512vl}, {"avx512dq", b.cpu.avx512dq},
    };
    int shown = 0;
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (flags[i].on)
            printf(" %s", flags[i].name), shown++;
    printf("%s\n", shown ? "" : " none of avx2, fma, avx512f/bw/vl/dq");
    if (set_by_bome[0])
        printf("OPENBLAS_CORETYPE: %s (set by bome, which ran itself again)\n", set_by_bome);
    else if (b.user_set)
        printf("OPENBLAS_CORETYPE: %s (from the environment)\n", b.user_coretype);
    else
        printf("OPENBLAS_CORETYPE: unset\n");
    char msg[BOME_BLAS_MSG_SIZE];
    if (bome_blas_message(&b, msg, sizeof msg))
        printf("advice:            %s\n", msg);
    else if (b.openblas)
        printf("advice:            none (the %s kernel fits this CPU)\n", b.corename);
    else
        printf("advice:            none\n");
    const char *fake = getenv(FAKE_VAR);
    if (fake)
        printf("test hook:         %s=%s (the start-up check saw this kernel)\n", FAKE_VAR, fake);
    return 0;
}

/* OpenBLAS reads its thread count when it loads; this changes it later. The
 * reference BLAS has no threads and no such functions. */
extern void openblas_set_num_threads(int) __attribute__((weak));
extern int openblas_get_num_threads(void) __attribute__((weak));

int cli_blas_threads(int n)
{
    if (n > 0 && openblas_set_num_threads)
        openblas_set_num_threads(n);
    if (n <= 0)
        n = openblas_get_num_threads ? openblas_get_num_threads() : 1;
    return n < 1 ? 1 : (n > BOME_MAX_THREADS ? BOME_MAX_THREADS : n);
}
