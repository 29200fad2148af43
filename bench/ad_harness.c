/*
 * The harness of bench_ad: deterministic data, graph checks, the interleaved
 * timing of the sides, the results, and the engine's two plans with the check
 * of their gradients against the hand-written ones.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "ad_bench.h"
#include "bench_util.h"

/* For the graph's tiling settings. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- data and checks ----------------------------------------------------- */

void fill_uniform(uint64_t *s, double *x, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * bench_lcg_uniform(s);
}

void fill_labels(uint64_t *s, int32_t *y, int n, int k)
{
    for (int i = 0; i < n; i++)
        y[i] = (int32_t)((bench_lcg_next(s) >> 33) % (uint64_t)k);
}

bool check_graph(bome_graph *g, const char *what)
{
    if (bome_graph_status(g) == BOME_OK)
        return true;
    fprintf(stderr, "bench_ad: %s: %s\n", what, bome_graph_errmsg(g));
    return false;
}

/* ---- timing -------------------------------------------------------------------- */

int run_plan(void *ctx) { return bome_plan_run(ctx); }

/*
 * reps repetitions; in each, every side runs once, in an order that rotates
 * from one repetition to the next so that no side always goes first. t[v][r]
 * is side v's time in repetition r, divided by inner (runs per sample).
 */
int time_interleaved(int reps, int inner, int nv, const side *sv, double **t)
{
    for (int r = 0; r < reps; r++)
        for (int j = 0; j < nv; j++) {
            int v = (r + j) % nv;
            double t0 = bench_now();
            for (int i = 0; i < inner; i++) {
                int rc = sv[v].run(sv[v].ctx);
                if (rc)
                    return rc;
            }
            t[v][r] = (bench_now() - t0) / inner;
        }
    return 0;
}

/* ---- results ------------------------------------------------------------------ */

void summarize(result *res, double **t, int reps)
{
    double *q = bench_xcalloc((size_t)reps, sizeof *q);
    for (int v = 0; v < res->nv; v++) {
        res->med[v] = bench_median(t[v], reps) * res->scale;
        res->min[v] = bench_minimum(t[v], reps) * res->scale;
    }
    for (int a = 0; a < res->nv; a++)
        for (int b = 0; b < res->nv; b++) {
            for (int i = 0; i < reps; i++)
                q[i] = t[a][i] / t[b][i];
            res->ratio[a][b] = res->med[a] / res->med[b];
            res->ratio_med[a][b] = bench_median(q, reps);
        }
    free(q);
}

void print_ratio(const result *r, int a, int b, bool judge)
{
    printf("  ratio %-14s / %-14s %.3f   (median of per-rep ratios %.3f)", r->side_name[a], r->side_name[b],
           r->ratio[a][b], r->ratio_med[a][b]);
    if (judge && r->target > 0)
        printf("   target <= %.2f: %s", r->target, r->ratio[a][b] <= r->target ? "met" : "MISSED");
    printf("\n");
}

void print_sides(const result *r)
{
    for (int v = 0; v < r->nv; v++)
        printf("  %-14s median %10.3f %-7s  min %10.3f\n", r->side_name[v], r->med[v], r->unit, r->min[v]);
}

/* ---- plans and checks of the matrix cases ------------------------------------ */

/* The engine's two plans: the default (tiled when the data is tall enough)
 * and one made with tiling off (whole-matrix products, as the hand side). */
bool make_plans(bome_graph *g, const char *what, int block, int n, bome_node *const *outs,
                       bome_plan **tiled, bome_plan **whole)
{
    *tiled = *whole = NULL;
    if (!check_graph(g, what))
        return false;
    if (block > 0)
        bome_graph_set_tiling(g, g->tile_min_rows, block);
    *tiled = bome_plan_new(g, n, outs);
    bome_graph_set_tiling(g, 0, g->tile_block_rows); /* keeps the block for hand-tiled */
    *whole = bome_plan_new(g, n, outs);
    return *tiled && *whole && check_graph(g, what);
}

/* The engine's gradients against the hand-written ones; the worst relative
 * difference. */
double compare(int n, bome_node *const *eng, const double *const *hand, const size_t *len, double *each)
{
    double worst = 0;
    for (int i = 0; i < n; i++) {
        each[i] = i == 0 ? fabs(bome_value(eng[0]) - hand[0][0]) / fabs(hand[0][0])
                         : bench_rel_diff(bome_data(eng[i]), hand[i], len[i]);
        worst = fmax(worst, each[i]);
    }
    return worst;
}

void print_matrix_result(const result *r)
{
    print_sides(r);
    print_ratio(r, 0, 2, true);  /* the headline: engine as shipped / hand as specified */
    print_ratio(r, 1, 2, true);  /* like for like: whole-matrix products on both sides */
    if (r->tiled_rows) /* like for like: row-tiled on both sides */
        print_ratio(r, 0, 3, true);
    else
        printf("  (the default plan is not tiled: X has fewer rows than the engine's minimum)\n");
    printf("\n");
}

void time_matrix_sides(const options *o, result *res, const side *sv, bome_plan *pt, bome_plan *pw)
{
    double *t[4];
    for (int v = 0; v < 4; v++)
        t[v] = bench_xcalloc((size_t)o->reps, sizeof(double));
    time_interleaved(o->reps, 1, 4, sv, t);
    summarize(res, t, o->reps);
    print_matrix_result(res);
    if (o->nodes) {
        profile_plan("engine (default plan)", pt, o->reps);
        profile_plan("engine-whole", pw, o->reps);
    }
    for (int v = 0; v < 4; v++)
        free(t[v]);
}
