/*
 * bench_ad: the ad engine against hand-written C doing the same arithmetic
 * with the same CBLAS calls, measured in one process with the sides taking
 * turns repetition by repetition.
 *
 *   linear  gradient of mean softmax cross-entropy of a linear model
 *           (X n x 784, W 10 x 784, b in R^10) wrt W and b
 *   mlp     the same for 784-300-10 with tanh, wrt W1, b1, W2, b2
 *   scalar  tape overhead: a scalar recurrence of ~10^5 tape nodes,
 *           forward and reverse, in nanoseconds per node
 *
 * For linear and mlp there are four sides: the engine's default plan (which
 * runs row-tiled, 64 rows at a time, over a data matrix of >= 4096 rows), the
 * same graph planned with tiling off, the hand-written C with whole-matrix
 * dgemms (the same calls as the untiled plan) and the hand-written C going
 * through the rows in the same blocks (the same calls as the tiled plan).
 *
 * Run with OPENBLAS_NUM_THREADS set; see --help and bench/RESULTS.md.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "ad_bench.h"
#include "bench_util.h" /* OpenBLAS's introspection, when the BLAS is OpenBLAS */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the machine ---------------------------------------------------------------- */

static void print_machine(void)
{
    char line[512], cpu[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "model name", 10) == 0) {
                const char *v = strchr(line, ':');
                if (v) {
                    v += 1 + (v[1] == ' ');
                    snprintf(cpu, sizeof cpu, "%s", v);
                    cpu[strcspn(cpu, "\n")] = '\0';
                }
                break;
            }
        fclose(f);
    }
    const char *env = getenv("OPENBLAS_NUM_THREADS");
    printf("machine: %s\n", cpu);
    printf("OPENBLAS_NUM_THREADS=%s", env ? env : "(unset)");
    if (openblas_get_num_threads)
        printf(" (OpenBLAS uses %d)", openblas_get_num_threads());
    printf("\n");
    if (openblas_get_config)
        printf("BLAS: %s; core %s\n", openblas_get_config(), openblas_get_corename ? openblas_get_corename() : "?");
    else
        printf("BLAS: not OpenBLAS (no openblas_get_config)\n");
    /* The BLAS library files actually mapped into the process. */
    f = fopen("/proc/self/maps", "r");
    if (f) {
        char seen[4][256];
        int nseen = 0;
        while (fgets(line, sizeof line, f)) {
            const char *path = strchr(line, '/');
            if (!path || !strstr(path, "blas"))
                continue;
            char p[256];
            snprintf(p, sizeof p, "%s", path);
            p[strcspn(p, "\n")] = '\0';
            bool dup = false;
            for (int i = 0; i < nseen; i++)
                dup |= strcmp(seen[i], p) == 0;
            if (!dup && nseen < 4) {
                snprintf(seen[nseen++], sizeof seen[0], "%s", p);
                printf("BLAS library: %s\n", p);
            }
        }
        fclose(f);
    }
    bench_print_blas_advice();
    if (!env)
        printf("warning: OPENBLAS_NUM_THREADS is not set; OpenBLAS then uses every core\n");
    printf("\n");
}

/* ---- main ------------------------------------------------------------------------ */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bench_ad [--reps N] [--only NAME] [--rows N] [--steps N] [--block N] [--nodes]\n"
            "\n"
            "Times gradients computed by the bome ad engine (a plan run per repetition)\n"
            "against hand-written C with the same CBLAS calls, interleaved in one process.\n"
            "Prints the median over the repetitions and the ratios engine/hand; for linear\n"
            "and mlp both the engine and the hand-written C run whole-matrix and row-tiled.\n"
            "\n"
            "  --reps N    repetitions per case (default %d, at least %d)\n"
            "  --only NAME run one case: linear, mlp or scalar\n"
            "  --rows N    rows of the data matrix X for linear and mlp (default 50000)\n"
            "  --steps N   steps of the scalar recurrence (default 5556: 10^5 plan nodes)\n"
            "  --block N   rows per block of the tiled plan and of hand-tiled (default:\n"
            "              the engine's, 64)\n"
            "  --nodes     also time each node of the linear and mlp plans\n"
            "  --help      this text\n"
            "\n"
            "Set OPENBLAS_NUM_THREADS explicitly (e.g. OPENBLAS_NUM_THREADS=1).\n",
            MIN_REPS, MIN_REPS);
}

static bool parse_int(const char *s, int *out)
{
    char *end;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || *end || v < 1 || v > 100000000)
        return false;
    *out = (int)v;
    return true;
}

int main(int argc, char **argv)
{
    options o = {MIN_REPS, 50000, 5556, 0, NULL, false};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--nodes")) {
            o.nodes = true;
        } else if (!strcmp(a, "--only") && i + 1 < argc) {
            o.only = argv[++i];
        } else if ((!strcmp(a, "--reps") && parse_int(i + 1 < argc ? argv[i + 1] : NULL, &o.reps)) ||
                   (!strcmp(a, "--rows") && parse_int(i + 1 < argc ? argv[i + 1] : NULL, &o.rows)) ||
                   (!strcmp(a, "--steps") && parse_int(i + 1 < argc ? argv[i + 1] : NULL, &o.steps)) ||
                   (!strcmp(a, "--block") && parse_int(i + 1 < argc ? argv[i + 1] : NULL, &o.block))) {
            i++;
        } else {
            fprintf(stderr, "bench_ad: bad argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (o.only && strcmp(o.only, "linear") && strcmp(o.only, "mlp") && strcmp(o.only, "scalar")) {
        fprintf(stderr, "bench_ad: unknown case '%s' (linear, mlp, scalar)\n", o.only);
        return 2;
    }
    if (o.reps < MIN_REPS) {
        printf("note: --reps %d raised to %d\n", o.reps, MIN_REPS);
        o.reps = MIN_REPS;
    }

    print_machine();
    printf("repetitions: %d per case, CLOCK_MONOTONIC; the sides take turns going first\n", o.reps);
    printf("sides: engine = bome_plan_run of the default plan (row-tiled when X has >= 4096 rows);\n"
           "       engine-whole = the same graph planned with tiling off (whole-matrix products);\n"
           "       hand = plain C with whole-matrix dgemms, as the engine-whole plan;\n"
           "       hand-tiled = the same C going through the rows in blocks, as the tiled plan\n\n");

    result r[3];
    memset(r, 0, sizeof r);
    r[0] = (result){.name = "linear", .unit = "ms", .scale = 1e3, .target = 1.10};
    r[1] = (result){.name = "mlp", .unit = "ms", .scale = 1e3, .target = 1.25};
    r[2] = (result){.name = "scalar", .unit = "ns/node", .target = 0};
    bool (*fn[3])(const options *, result *) = {case_linear, case_mlp, case_scalar};
    bool ran[3] = {false, false, false}, ok = true;
    for (int i = 0; i < 3; i++)
        if (!o.only || !strcmp(o.only, r[i].name)) {
            ran[i] = fn[i](&o, &r[i]);
            ok &= ran[i];
        }

    printf("summary (medians of %d repetitions; ratios of medians)\n", o.reps);
    printf("  %-7s %-7s %9s %9s %9s %9s | %10s %10s %10s | %6s %6s %7s\n", "case", "unit", "engine", "eng-whole",
           "hand", "hand-tiled", "eng/hand", "whole/hand", "eng/tiled", "target", "nodes", "diff");
    for (int i = 0; i < 3; i++) {
        if (!ran[i])
            continue;
        const result *q = &r[i];
        char tgt[16] = "-";
        if (q->target > 0)
            snprintf(tgt, sizeof tgt, "%.2f", q->target);
        char vs_tiled[16] = "untiled";
        if (q->nv == 4 && q->tiled_rows)
            snprintf(vs_tiled, sizeof vs_tiled, "%.3f", q->ratio[0][3]);
        if (q->nv == 4)
            printf("  %-7s %-7s %9.2f %9.2f %9.2f %9.2f | %10.3f %10.3f %10s | %6s %6zu %7.1e\n", q->name, q->unit,
                   q->med[0], q->med[1], q->med[2], q->med[3], q->ratio[0][2], q->ratio[1][2], vs_tiled, tgt,
                   q->plan_nodes, q->check);
        else
            printf("  %-7s %-7s %9.2f %9s %9.2f %9s | %10.3f %10s %10s | %6s %6zu %7.1e\n", q->name, q->unit,
                   q->med[0], "-", q->med[1], "-", q->ratio[0][1], "-", "-", tgt, q->plan_nodes, q->check);
    }
    return ok ? 0 : 1;
}
