/*
 * bench_bome: one outer step of BOME through opt (bome_solver_step) against
 * hand-written C doing the same step, measured in one process with the sides
 * interleaved repetition by repetition.
 *
 *   coreset     the paper's toy (problems/coreset.c's f and g), T = 10:
 *               microseconds per outer step; the hand-written side is plain C
 *               with every gradient worked out by hand.
 *   hyperclean  data hyper-cleaning at the paper's size (50 000 x 784 train,
 *               5 000 validation, linear 10-class model, T = 10), float64:
 *               seconds per outer step against hand-written variants: whole-
 *               matrix dgemms (the CBLAS calls of untiled plans), the same
 *               split into 64-row panels, and the rows in blocks of 64 with
 *               logits, softmax and dW fused per block (the calls of the
 *               engine's row-tiled plans before ad's own kernels); the one with
 *               opt's former calls is marked. opt also runs a second time with
 *               its products sent to CBLAS (the engine before its kernels), and
 *               a floor side reads what the step must read (11 passes over
 *               X_train, one over X_val) in the same rotation.
 *   rivals      the same hyper-cleaning step by BOME, ITD, AID-CG and BSG-1, each
 *               through bome_solver_step as the CLI runs it: medians, ratios.
 *   bandwidth   streaming read bandwidth (sum of a 1 GiB double array) and the
 *               floor it puts under a hyper-cleaning step.
 *
 * Run with OPENBLAS_NUM_THREADS set; see --help and bench/RESULTS.md.
 *
 * This file is the command line; the cases are bome_coreset.c, bome_floors.c
 * (bandwidth) and bome_hyperclean.c, with bome_hcdata.c and bome_hand.c.
 */
#include "bench_util.h"
#include "bome_bench.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bench_bome [--reps N] [--only coreset|hyperclean|rivals|bandwidth] [--rows N]\n"
            "                  [--data synthetic|fmnist] [--data-dir DIR] [--steps N] [--bw-mib N]\n"
            "                  [--warm N] [--block N] [--nodes]\n"
            "\n"
            "One BOME outer step through opt (bome_solver_step) against hand-written C doing the\n"
            "same step, interleaved repetition by repetition in one process; prints medians and\n"
            "ratios. Cases:\n"
            "  coreset     the paper's toy (T = 10): microseconds per outer step, opt vs plain C\n"
            "  hyperclean  data hyper-cleaning, 50000 x 784 float64, T = 10: seconds per step,\n"
            "              opt vs hand-written C: whole-matrix dgemms (opt's calls when its plans\n"
            "              run untiled), the same in 64-row panels, and blocks of 64 rows with\n"
            "              logits, softmax and dW fused (opt's calls when its plans run\n"
            "              row-tiled, before ad's own kernels); opt again with CBLAS products;\n"
            "              a floor side that streams the step's 11 reads of X in the rotation;\n"
            "              checks first that all sides agree after 3 steps\n"
            "  rivals      the same hyper-cleaning step by BOME, ITD, AID-CG and BSG-1, each\n"
            "              through bome_solver_step with the CLI's inner momentum 0.9:\n"
            "              medians and ratios to BOME\n"
            "  bandwidth   streaming read bandwidth and the floor it puts under a step\n"
            "              (runs with hyperclean too)\n"
            "\n"
            "  --reps N       repetitions (at least %d; default 30 for coreset, 10 for hyperclean)\n"
            "  --only CASE    run one case\n"
            "  --rows N       training rows for hyperclean (default 50000; validation = rows / 10)\n"
            "  --data KIND    synthetic (default: deterministic, standardized, labels 0..9) or\n"
            "                 fmnist (Fashion-MNIST through data_split_load)\n"
            "  --data-dir DIR for fmnist (default /usr/share/datasets/fashion-mnist)\n"
            "  --steps N      coreset steps per repetition (default 2000)\n"
            "  --bw-mib N     size of the bandwidth array in MiB (default 1024)\n"
            "  --warm N       hyperclean warm-start steps before the sides start (default 20)\n"
            "  --block N      rows per block of the hand-written panels and blocked variants\n"
            "                 (default 64, at most 1024)\n"
            "  --nodes        instead of the hyperclean comparison: opt's plans rebuilt and timed\n"
            "                 node by node (where the step's time goes)\n"
            "  --help         this text\n"
            "\n"
            "Set OPENBLAS_NUM_THREADS explicitly (1 or 2); every side uses that many threads.\n",
            MIN_REPS);
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
    options o = {0, 0, 50000, 2000, 1024, 20, NULL, "synthetic", "/usr/share/datasets/fashion-mnist", false};
    int reps = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--nodes")) {
            o.nodes = true;
            o.only = "hyperclean";
        } else if (!strcmp(a, "--only") && next) {
            o.only = argv[++i];
        } else if (!strcmp(a, "--data") && next) {
            o.data = argv[++i];
        } else if (!strcmp(a, "--data-dir") && next) {
            o.data_dir = argv[++i];
        } else if ((!strcmp(a, "--reps") && parse_int(next, &reps)) || (!strcmp(a, "--rows") && parse_int(next, &o.rows)) ||
                   (!strcmp(a, "--steps") && parse_int(next, &o.steps)) ||
                   (!strcmp(a, "--bw-mib") && parse_int(next, &o.bw_mib)) ||
                   (!strcmp(a, "--warm") && parse_int(next, &o.warm)) ||
                   (!strcmp(a, "--block") && parse_int(next, &bench_block) && bench_block <= MAX_BLOCK)) {
            i++;
        } else {
            fprintf(stderr, "bench_bome: bad argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (o.only && strcmp(o.only, "coreset") && strcmp(o.only, "hyperclean") && strcmp(o.only, "rivals") &&
        strcmp(o.only, "bandwidth")) {
        fprintf(stderr, "bench_bome: unknown case '%s' (coreset, hyperclean, rivals, bandwidth)\n", o.only);
        return 2;
    }
    if (strcmp(o.data, "synthetic") && strcmp(o.data, "fmnist")) {
        fprintf(stderr, "bench_bome: --data %s: synthetic or fmnist\n", o.data);
        return 2;
    }
    if (reps) {
        if (reps < MIN_REPS) {
            printf("note: --reps %d raised to %d\n", reps, MIN_REPS);
            reps = MIN_REPS;
        }
        o.reps_small = o.reps_big = reps;
    }
    bench_print_machine();
    printf("timer CLOCK_MONOTONIC; the sides alternate who goes first\n\n");

    bool ok = true;
    bw_result bw = {0};
    if (!o.only || !strcmp(o.only, "coreset"))
        ok &= bench_case_coreset(&o);
    if (!o.nodes && (!o.only || !strcmp(o.only, "bandwidth") || !strcmp(o.only, "hyperclean")))
        bench_case_bandwidth(&o, &bw);
    if (!o.only || !strcmp(o.only, "hyperclean"))
        ok &= bench_case_hyperclean(&o, &bw);
    if (!o.nodes && (!o.only || !strcmp(o.only, "rivals")))
        ok &= bench_case_rivals(&o);
    return ok ? 0 : 1;
}
