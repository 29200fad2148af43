/* The `bome` command: list the problems and the methods, run a problem. */
#include "blas_kernel.h"
#include "cli.h"

#include <string.h>

static void list(void)
{
    for (int i = 0; prob_cases[i]; i++)
        printf("%-14s %s\n", prob_cases[i]->name, prob_cases[i]->summary);
}

static void methods(void)
{
    for (int m = 0; m < bome_method_count(); m++)
        printf("%-10s %s  %s\n", bome_method_name(m), bome_method_order(m) == 1 ? "first order " : "second order",
               bome_method_summary(m));
}

int main(int argc, char **argv)
{
    int prc = cli_precision(&argc, argv); /* may hand the run to bome-f32 */
    if (prc)
        return prc;
    blas_kernel_check(argv); /* may run bome again with OPENBLAS_CORETYPE set */
    if (argc < 2) {
        cli_usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        cli_usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        /* the library's, which can differ from the headers' only when a
         * shared library of another release was loaded */
        printf("bome %s (%s)%s%s\n", bome_version(), cli_precision_name(bome_real_bits()),
               BOME_VERSION_CHECK() ? "" : ", built with the headers of ", BOME_VERSION_CHECK() ? "" : BOME_VERSION_STRING);
        return 0;
    }
    if (!strcmp(cmd, "list")) {
        if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
            puts("usage: bome list\n\nPrints the problems `bome run` knows, one per line.");
            return 0;
        }
        list();
        return 0;
    }
    if (!strcmp(cmd, "methods")) {
        if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
            puts("usage: bome methods\n\nPrints the bilevel methods `bome run --method` takes, one per line:\n"
                 "the name, first or second order, and a summary.");
            return 0;
        }
        methods();
        return 0;
    }
    if (!strcmp(cmd, "blas"))
        return blas_kernel_main(argc, argv);
    if (strcmp(cmd, "run") != 0) {
        fprintf(stderr, "bome: unknown command '%s'\n", cmd);
        cli_usage(stderr);
        return 2;
    }
    cli_args a = {0};
    bome_options_default(&a.o);
    if (argc < 3 || !strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")) {
        cli_run_usage(argc < 3 ? stderr : stdout, &a.o, NULL);
        return argc < 3 ? 2 : 0;
    }
    const prob_case *c = prob_find(argv[2]);
    if (!c) {
        fprintf(stderr, "bome: no problem named '%s'; `bome list` shows them\n", argv[2]);
        return 2;
    }
    int rc = cli_defaults(&a, c, argc - 3, argv + 3);
    if (rc)
        return rc;
    for (int i = 3; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            cli_run_usage(stdout, &a.o, c);
            return 0;
        }
    if ((rc = cli_parse(&a, argc - 3, argv + 3)))
        return rc;
    if ((rc = cli_workers_start(&argc, &argv, &a.o)))
        return rc;
    cli_signals_install();
    return cli_workers_end(&a.o, cli_run(&a));
}
