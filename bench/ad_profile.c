/* bench_ad --nodes: the time of each node of a plan. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "ad_bench.h"
#include "bench_util.h"

/* Only for --nodes, which times the nodes of a plan one by one. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- --nodes: where a plan's time goes ---------------------------------------- */

/*
 * Runs the plan node by node as bome_plan_run does (for a tiled plan: the pre
 * nodes, then the stage block by block, then the post nodes) and adds up each
 * node's time; a staged node's time is the sum over the blocks.
 */
void profile_plan(const char *title, bome_plan *p, int reps)
{
    bome_graph *g = p->g;
    size_t n = p->n_run;
    double *t = bench_xcalloc(n, sizeof *t), whole = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        bome_plan_run(p);
        whole += bench_now() - t0;
    }
    for (int r = 0; r < reps; r++) {
        if (!p->rows) {
            for (size_t i = 0; i < n; i++) {
                double t0 = bench_now();
                p->run[i]->op->forward(g, p->run[i]);
                t[i] += bench_now() - t0;
            }
            continue;
        }
        size_t s0 = p->n_pre, s1 = p->n_pre + p->n_stage;
        for (size_t i = 0; i < n; i++)
            if (i < s0 || i >= s1 || p->run[i]->op->view) {
                if (i >= s0 && i < s1 && r > 0)
                    continue; /* stage views are pointed once */
                double t0 = bench_now();
                p->run[i]->op->forward(g, p->run[i]);
                t[i] += bench_now() - t0;
            }
        /* The stage, block by block, after the pre nodes it reads. */
        for (int r0 = 0; r0 < p->rows; r0 += g->tile_block_rows) {
            int r1 = r0 + g->tile_block_rows < p->rows ? r0 + g->tile_block_rows : p->rows;
            for (size_t i = s0; i < s1; i++) {
                bome_node *v = p->run[i];
                if (v->op->view)
                    continue;
                double t0 = bench_now();
                v->op->rows(g, v, r0, r1, r0 == 0, v->data); /* one thread: sums in place */
                t[i] += bench_now() - t0;
            }
        }
    }
    double total = 0;
    for (size_t i = 0; i < n; i++)
        total += t[i];
    printf("  %s: per-node times (mean of %d runs, node by node", title, reps);
    if (p->rows)
        printf("; tiled over %d rows in blocks of %d: pre %zu, stage %zu, post %zu nodes", p->rows,
               g->tile_block_rows, p->n_pre, p->n_stage, p->n_post);
    printf(")\n");
    printf("    %4s  %-5s %-18s %-17s %-44s %9s %6s\n", "id", "part", "op", "shape", "sources", "ms", "%");
    for (size_t i = 0; i < n; i++) {
        const bome_node *v = p->run[i];
        char shape[40], srcs[128] = "", one[48];
        const char *part = !p->rows ? "" : (i < p->n_pre ? "pre" : (i < p->n_pre + p->n_stage ? "stage" : "post"));
        ad_shape_str(v->shape, shape);
        for (int s = 0; s < v->nsrc; s++) {
            snprintf(one, sizeof one, "%s%s#%d", s ? " " : "", v->src[s]->op->name, v->src[s]->id);
            strncat(srcs, one, sizeof srcs - strlen(srcs) - 1);
        }
        printf("    %4d  %-5s %-18s %-17s %-44s %9.3f %6.1f\n", v->id, part, v->op->name, shape, srcs,
               1e3 * t[i] / reps, 100.0 * t[i] / total);
    }
    printf("    total %.3f ms (whole plan runs just before: mean %.3f ms)\n\n", 1e3 * total / reps,
           1e3 * whole / reps);
    free(t);
}
