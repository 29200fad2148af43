/*
 * bench_bome's hyperclean case: data hyper-cleaning at the paper's size
 * (50 000 x 784 train, 5 000 validation, linear 10-class model, T = 10),
 * float64, opt against the hand-written variants of bome_hand.c, one outer
 * step at a time; and --nodes, opt's plans timed node by node.
 */
#include <bome/opt.h>

#include "bench_util.h"
#include "bome_bench.h"
/* ad/: for --nodes, which times the nodes of opt's plans one by one, and for
 * ad_kernel_set, which sends the tiled stage's products to CBLAS for a side */
#include "internal.h"
#include "hc_model.h" /* problems/: the product's hyper-cleaning logits and L2 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- opt: the product's problem (problems/hyperclean.c's builders) ---------- */

static bome_node *hcb_g(bome_graph *g, const bome_vars *x, void *ctx)
{
    hc_model *m = ctx;
    bome_node *ce = bome_cross_entropy_rows(g, hc_logits(g, m, x->theta, x->data[0]), x->data[1]);
    bome_node *weighted = bome_weighted_mean(g, ce, bome_clamp(g, x->v[0], 0.0, 1.0));
    return bome_add(g, weighted, bome_scale(g, hc_l2(g, x->theta, x->n_theta), HC_L2));
}

static bome_node *hcb_f(bome_graph *g, const bome_vars *x, void *ctx)
{
    hc_model *m = ctx;
    return bome_cross_entropy(g, hc_logits(g, m, x->theta, x->data[2]), x->data[3]);
}

bool bench_opt_side_new(opt_side *o, const hc_data *D, bome_method method, double inner_momentum)
{
    memset(o, 0, sizeof *o);
    if (hc_model_init(&o->model, false, D->d, 0, D->k, 0))
        return false;
    o->v = bench_xcalloc((size_t)D->n, sizeof *o->v);
    bench_start_point(D, o->v, o->model.theta[0], o->model.theta[1]);
    bome_problem *p = o->p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_VECTOR(D->n), o->v);
    bome_problem_set_bounds(p, BOME_OUTER, 0, 0.0, 1.0);
    bome_problem_add_inner(p, "W", o->model.shape[0], o->model.theta[0]);
    bome_problem_add_inner(p, "b", o->model.shape[1], o->model.theta[1]);
    bome_problem_add_input(p, "x_train", BOME_MATRIX(D->n, D->d), D->x);
    bome_problem_add_labels(p, "y_train", D->n, D->y);
    bome_problem_add_input(p, "x_val", BOME_MATRIX(D->nv, D->d), D->xv);
    bome_problem_add_labels(p, "y_val", D->nv, D->yv);
    bome_problem_set_objectives(p, hcb_f, hcb_g, &o->model);
    bome_options opt;
    bome_options_default(&opt);
    opt.T = HC_T;
    opt.alpha = HC_ALPHA;
    opt.lr_inner = HC_LR_THETA;
    opt.lr_outer = HC_LR_V;
    opt.update = BOME_UPDATE_MOMENTUM;
    opt.momentum = HC_MOMENTUM;
    bome_options_set(&opt, "phi", BOME_PHI_VALUE);
    bome_options_set(&opt, "eta", HC_ETA);
    opt.threads = bench_blas_threads(); /* row threads, as the blocked hand-written side */
    opt.method = method;
    opt.inner_momentum = inner_momentum;
    opt.inner_momentum_keep = 1;
    o->s = bome_solver_new(p, &opt);
    if (!o->s || bome_solver_status(o->s)) {
        fprintf(stderr, "bench_bome: hyperclean solver: %s\n",
                o->s ? bome_solver_errmsg(o->s) : "out of memory");
        return false;
    }
    return true;
}

bool bench_opt_side_step(opt_side *o)
{
    int rc = bome_solver_step(o->s, &o->st);
    if (rc)
        fprintf(stderr, "bench_bome: opt step: %s\n", bome_solver_errmsg(o->s));
    return rc == 0;
}

void bench_opt_side_free(opt_side *o)
{
    bome_solver_free(o->s);
    bome_problem_free(o->p);
    hc_model_free(&o->model);
    free(o->v);
}

static double max3(double a, double b, double c) { return fmax(a, fmax(b, c)); }

/* ---- opt's two plans rebuilt as opt/bome.c builds them (the solver keeps its
 * plans private): to ask whether they run row-tiled, and for --nodes ------- */

typedef struct mirror {
    bome_graph *g;
    hc_model m;
    double *v;
    bome_plan *inner, *outer;
} mirror;

static bool mirror_new(mirror *r, const hc_data *D)
{
    memset(r, 0, sizeof *r);
    bome_graph *g = r->g = bome_graph_new();
    if (!g || hc_model_init(&r->m, false, D->d, 0, D->k, 0))
        return false;
    r->v = bench_xcalloc((size_t)D->n, sizeof *r->v);
    bench_start_point(D, r->v, r->m.theta[0], r->m.theta[1]);
    bome_node *x[3], *inner[2], *frozen[2], *data[4], *ig[2], *gf[3], *gq[3];
    x[0] = bome_param(g, "v", BOME_VECTOR(D->n));
    bome_bind(g, x[0], r->v);
    for (int j = 0; j < 2; j++) {
        x[1 + j] = bome_param(g, j ? "b" : "W", r->m.shape[j]);
        bome_bind(g, x[1 + j], r->m.theta[j]);
    }
    for (int j = 0; j < 2; j++) {
        inner[j] = bome_param(g, j ? "b_T" : "W_T", r->m.shape[j]);
        bome_set(g, inner[j], r->m.theta[j]);
        frozen[j] = bome_stop_gradient(g, inner[j]);
    }
    data[0] = bome_input(g, "x_train", BOME_MATRIX(D->n, D->d));
    bome_bind(g, data[0], D->x);
    data[1] = bome_labels(g, "y_train", D->n);
    bome_bind_labels(g, data[1], D->y);
    data[2] = bome_input(g, "x_val", BOME_MATRIX(D->nv, D->d));
    bome_bind(g, data[2], D->xv);
    data[3] = bome_labels(g, "y_val", D->nv);
    bome_bind_labels(g, data[3], D->yv);
    bome_vars at_k = {x, x + 1, data, 1, 2, 4}, at_T = {x, frozen, data, 1, 2, 4}, at_t = {x, inner, data, 1, 2, 4};
    bome_node *f = hcb_f(g, &at_k, &r->m), *gk = hcb_g(g, &at_k, &r->m), *gT = hcb_g(g, &at_T, &r->m);
    bome_node *gt = hcb_g(g, &at_t, &r->m), *q = bome_sub(g, gk, gT);
    bome_grad(g, gt, 2, inner, ig);
    bome_grad(g, f, 3, x, gf);
    bome_grad(g, q, 3, x, gq);
    bome_node *outs[9] = {f, gk, q, gf[0], gf[1], gf[2], gq[0], gq[1], gq[2]};
    r->inner = bome_plan_new(g, 2, ig);
    r->outer = bome_plan_new(g, 9, outs);
    if (!r->inner || !r->outer) {
        fprintf(stderr, "bench_bome: rebuilding opt's plans: %s\n", bome_graph_errmsg(g));
        return false;
    }
    return true;
}

static void mirror_free(mirror *r)
{
    bome_graph_free(r->g);
    hc_model_free(&r->m);
    free(r->v);
}

static void print_nodes(const char *what, bome_plan *p, const double *t, int runs, double total_all)
{
    printf("  %s: %zu nodes, mean ms per run, %% of the sum over the step\n", what, p->n_run);
    printf("    %4s  %-18s %-16s %-40s %9s %6s\n", "id", "op", "shape", "sources", "ms", "%");
    double small = 0;
    int ns = 0;
    for (size_t i = 0; i < p->n_run; i++) {
        const bome_node *v = p->run[i];
        if (1e3 * t[i] / runs < 0.05) { /* the scalar bookkeeping: summed below */
            small += t[i];
            ns++;
            continue;
        }
        char shape[40], srcs[128] = "", one[48];
        ad_shape_str(v->shape, shape);
        for (int k = 0; k < v->nsrc; k++) {
            snprintf(one, sizeof one, "%s%s#%d", k ? " " : "", v->src[k]->op->name, v->src[k]->id);
            strncat(srcs, one, sizeof srcs - strlen(srcs) - 1);
        }
        printf("    %4d  %-18s %-16s %-40s %9.3f %6.1f\n", v->id, v->op->name, shape, srcs, 1e3 * t[i] / runs,
               100.0 * t[i] / total_all);
    }
    printf("    (%d nodes under 0.05 ms each: %.3f ms together)\n", ns, 1e3 * small / runs);
}

/* Adds the time of each node of one run of p to t: pre and post nodes whole,
 * a row-tiled stage block by block on one thread as ad/tile.c runs it. */
static void time_nodes(bome_graph *g, bome_plan *p, double *t)
{
    size_t pre = p->rows ? p->n_pre : p->n_run;
    for (size_t i = 0; i < p->n_run; i++) {
        if (i == pre) { /* the stage */
            size_t end = pre + p->n_stage;
            for (size_t k = pre; k < end; k++)
                if (p->run[k]->op->view)
                    p->run[k]->op->forward(g, p->run[k]);
            for (int b0 = 0, b1; b0 < p->rows; b0 = b1) {
                b1 = p->rows - b0 > g->tile_block_rows ? b0 + g->tile_block_rows : p->rows;
                for (size_t k = pre; k < end; k++) {
                    bome_node *n = p->run[k];
                    if (n->op->view)
                        continue;
                    double t0 = bench_now();
                    n->op->rows(g, n, b0, b1, b0 == 0, n->data);
                    t[k] += bench_now() - t0;
                }
            }
            i = end - 1;
            continue;
        }
        double t0 = bench_now();
        p->run[i]->op->forward(g, p->run[i]);
        t[i] += bench_now() - t0;
    }
}

/* Times the plans as they run (bome_plan_run), then node by node: where the
 * work is. */
static void profile_opt(const hc_data *D, int reps)
{
    mirror r;
    if (!mirror_new(&r, D)) {
        mirror_free(&r);
        return;
    }
    bome_plan *pi = r.inner, *po = r.outer;
    double run_i = 0, run_o = 0;
    for (int k = 0; k < reps; k++) {
        double t0 = bench_now();
        for (int t = 0; t < HC_T; t++)
            bome_plan_run(pi);
        double t1 = bench_now();
        bome_plan_run(po);
        run_i += t1 - t0;
        run_o += bench_now() - t1;
    }
    double *ti = bench_xcalloc(pi->n_run, sizeof *ti), *to = bench_xcalloc(po->n_run, sizeof *to);
    for (int k = 0; k < reps; k++) {
        for (int t = 0; t < HC_T; t++)
            time_nodes(r.g, pi, ti);
        time_nodes(r.g, po, to);
    }
    double sum_i = 0, sum_o = 0, mm = 0;
    for (size_t i = 0; i < pi->n_run; i++) {
        sum_i += ti[i];
        mm += strcmp(pi->run[i]->op->name, "matmul") ? 0 : ti[i];
    }
    for (size_t i = 0; i < po->n_run; i++) {
        sum_o += to[i];
        mm += strcmp(po->run[i]->op->name, "matmul") ? 0 : to[i];
    }
    printf("== --nodes: opt's plans rebuilt from the same builders, %d x %d rows, BLAS threads %d, %d step(s) ==\n",
           D->n, D->d, bench_blas_threads(), reps);
    printf("  as bome_plan_run runs them: inner plan %.1f ms x %d, outer plan %.1f ms: %.1f ms per step\n",
           1e3 * run_i / reps / HC_T, HC_T, 1e3 * run_o / reps, 1e3 * (run_i + run_o) / reps);
    printf("    row-tiled: inner over %d rows, outer over %d rows (0: whole-matrix ops)\n",
           bome_plan_tiled_rows(pi), bome_plan_tiled_rows(po));
    printf("  node by node as the plans run them (a row-tiled stage block by block, one thread; other nodes\n"
           "  whole): inner %.1f ms x %d, outer %.1f ms: %.1f ms per step\n",
           1e3 * sum_i / reps / HC_T, HC_T, 1e3 * sum_o / reps, 1e3 * (sum_i + sum_o) / reps);
    print_nodes("inner plan (% counts all T runs)", pi, ti, reps * HC_T, sum_i + sum_o);
    print_nodes("outer plan", po, to, reps, sum_i + sum_o);
    printf("  matmul (dgemm) nodes: %.1f ms per step, %.1f%%; everything else %.1f ms\n\n", 1e3 * mm / reps,
           100.0 * mm / (sum_i + sum_o), 1e3 * (sum_i + sum_o - mm) / reps);
    free(ti);
    free(to);
    mirror_free(&r);
}

/* A side's name without "hand: " */
static const char *short_name(const char *name) { return strncmp(name, "hand: ", 6) ? name : name + 6; }

enum { OPT = 0, OPT_BLAS, FLOOR, WHOLE, PANELS, BLOCKED, BLOCKED_1, MAX_SIDES };

/* One repetition of side i of bench_case_hyperclean: an outer step of the
 * two opt sides (ad's kernels, then CBLAS products) or of a hand-written one;
 * for FLOOR, what a step must read at the least, read and summed as fast as
 * the machine streams: X_train HC_T + 1 times and X_val once, on the step's
 * threads, its time taken in the same rotation as the steps. */
static bool side_step(int i, opt_side *os, hand *hs, const hc_data *D, int threads, double *sink)
{
    if (i == FLOOR) {
        for (int k = 0; k < HC_T + 1; k++)
            *sink += bench_stream_read(D->x, (size_t)D->n * D->d, threads);
        *sink += bench_stream_read(D->xv, (size_t)D->nv * D->d, threads);
        return true;
    }
    if (i > OPT_BLAS) {
        bench_hand_step(&hs[i]);
        return true;
    }
    if (i == OPT_BLAS)
        ad_kernel_set(AD_KERNEL_BLAS);
    bool ok = bench_opt_side_step(&os[i]);
    ad_kernel_set(-1);
    return ok;
}

bool bench_case_hyperclean(const options *o, const bw_result *bw)
{
    int reps = o->reps_big ? o->reps_big : 10, threads = bench_blas_threads();
    hc_data D;
    double t0 = bench_now();
    if (!bench_hc_load(o, &D))
        return false;
    if (o->nodes) {
        profile_opt(&D, 3);
        bench_hc_unload(&D);
        return true;
    }
    printf("== hyperclean: %s data, %d x %d train, %d validation, linear %d-class model, float64 ==\n", D.what, D.n,
           D.d, D.nv, D.k);
    printf("  T = %d, alpha = %g, step theta %g / v %g, momentum %g, phi = eta q, eta = %g, L2 %g; "
           "BLAS threads %d\n  start: v = 0.5, theta after %d warm-start steps on train + validation "
           "(data and warm start in %.1f s)\n",
           HC_T, HC_ALPHA, HC_LR_THETA, HC_LR_V, HC_MOMENTUM, HC_ETA, HC_L2, threads, o->warm, bench_now() - t0);

    /* Whether opt's plans run row-tiled (ad's tiled executor): then the
     * hand-written side with opt's BLAS calls is the blocked one, on one
     * thread of row ranges; otherwise the whole-matrix one. */
    int tiled_in = 0, tiled_out = 0;
    {
        mirror mr;
        if (mirror_new(&mr, &D)) {
            tiled_in = bome_plan_tiled_rows(mr.inner);
            tiled_out = bome_plan_tiled_rows(mr.outer);
        }
        mirror_free(&mr);
    }
    /* The sides: opt as built (its row-tiled stage's narrow products on ad's
     * own kernels, ad/gemm.c), opt with those products sent to CBLAS (the
     * engine before the kernels: ad_kernel_set, process-wide, switched around
     * its steps), the memory floor measured in the rotation (side_step), and
     * the hand-written variants. */
    char names[MAX_SIDES][48] = {"opt (bome_solver_step)", "opt, CBLAS products", "floor: streaming reads",
                                 "hand: whole matrix"};
    snprintf(names[PANELS], sizeof names[0], "hand: %d-row panels", bench_block);
    snprintf(names[BLOCKED], sizeof names[0], "hand: blocked %d", bench_block);
    snprintf(names[BLOCKED_1], sizeof names[0], "hand: blocked %d, 1 row thread", bench_block);
    int ns = threads > 1 ? MAX_SIDES : BLOCKED_1, kernels = ad_kernel_get();
    /* the hand side with opt's BLAS calls when its products go to CBLAS (the
     * engine tiles in blocks of 64 rows by default) */
    int same = tiled_in ? (bench_block == 64 ? BLOCKED : -1) : WHOLE;
    int opt_reads = (tiled_in ? HC_T : 2 * HC_T) + (tiled_out ? 1 : 3);
    int reads[MAX_SIDES] = {opt_reads, opt_reads, HC_T + 1, 2 * HC_T + 3, 2 * HC_T + 3, HC_T + 1, HC_T + 1};
    double sink = 0;
    opt_side os[2]; /* OPT, OPT_BLAS */
    hand hs[MAX_SIDES]; /* from WHOLE on */
    double *t[MAX_SIDES] = {NULL}, *tc[MAX_SIDES] = {NULL}; /* wall, process CPU */
    bool made = bench_opt_side_new(&os[OPT], &D, BOME_METHOD_BOME, 0.0);
    made = bench_opt_side_new(&os[OPT_BLAS], &D, BOME_METHOD_BOME, 0.0) && made;
    if (!made) {
        bench_opt_side_free(&os[OPT]);
        bench_opt_side_free(&os[OPT_BLAS]);
        bench_hc_unload(&D);
        return false;
    }
    bench_hand_new(&hs[WHOLE], &D, HAND_WHOLE, 1);
    bench_hand_new(&hs[PANELS], &D, HAND_PANELS, threads);
    bench_hand_new(&hs[BLOCKED], &D, HAND_BLOCKED, threads);
    if (ns > BLOCKED_1)
        bench_hand_new(&hs[BLOCKED_1], &D, HAND_BLOCKED, 1);
    for (int i = 0; i < ns; i++) {
        t[i] = bench_xcalloc((size_t)reps, sizeof(double));
        tc[i] = bench_xcalloc((size_t)reps, sizeof(double));
    }
    printf("  opt's plans: inner %s, outer %s\n",
           tiled_in ? "row-tiled (blocks of rows through logits, CE backward and dW)" : "whole-matrix ops",
           tiled_out ? "row-tiled" : "whole-matrix ops");
    printf("  ad's kernels for the stage's narrow products: %s%s\n", ad_kernel_name(kernels),
           kernels == AD_KERNEL_BLAS ? " (none on this CPU: both opt sides make the same CBLAS calls)" : "");

    /* Agreement: 3 outer steps from the same start. */
    bool ok = true;
    for (int s = 0; s < 3 && ok; s++) {
        for (int i = 0; i < ns && ok; i++)
            ok = side_step(i, os, hs, &D, threads, &sink);
    }
    if (!ok)
        goto out_t;
    const hand *hw = &hs[WHOLE];
    size_t kd = (size_t)D.k * D.d;
    printf("  check after 3 outer steps from the same start (rel. diff, max |a - b| / max |b|, need <= 1e-9):\n");
    bool agree = true;
    for (int i = 0; i < ns; i++) {
        if (i == WHOLE || i == FLOOR)
            continue;
        const double *v = i < WHOLE ? os[i].v : hs[i].v, *W = i < WHOLE ? os[i].model.theta[0] : hs[i].W,
                     *b = i < WHOLE ? os[i].model.theta[1] : hs[i].b;
        double dv = bench_rel_diff(v, hw->v, (size_t)D.n), dW = bench_rel_diff(W, hw->W, kd),
               db = bench_rel_diff(b, hw->b, (size_t)D.k);
        bool ag = max3(dv, dW, db) <= 1e-9;
        char what[64];
        snprintf(what, sizeof what, "%.40s vs whole", short_name(names[i]));
        printf("    %-34s v %.1e  W %.1e  b %.1e", what, dv, dW, db);
        if (i < WHOLE)
            printf("  (lambda %.1e; f %.6f, q %.3e, lambda %.4g)",
                   fabs(os[i].st.lambda - hw->lambda) / fmax(fabs(hw->lambda), 1e-300), os[i].st.f, os[i].st.q,
                   os[i].st.lambda);
        printf("  %s\n", ag ? "ok" : "DIFFER");
        agree &= ag;
    }
    ok = agree;

    for (int r = 0; r < reps && ok; r++)
        for (int j = 0; j < ns && ok; j++) {
            int which = (j + r) % ns; /* rotate who goes first */
            double ts = bench_now(), cs = bench_cpu_now();
            ok = side_step(which, os, hs, &D, threads, &sink);
            t[which][r] = bench_now() - ts;
            tc[which][r] = bench_cpu_now() - cs;
        }
    if (!ok)
        goto out_t;
    double med[MAX_SIDES], mn[MAX_SIDES], cpu[MAX_SIDES];
    for (int i = 0; i < ns; i++) {
        cpu[i] = bench_median(tc[i], reps);
        med[i] = bench_median(t[i], reps);
        mn[i] = bench_minimum(t[i], reps);
    }
    printf("  %d repetitions after 3 warm-up steps, the %d sides rotating; seconds per outer step\n", reps, ns);
    printf("  %-32s %9s %9s %10s %10s %10s %10s\n", "", "median", "min", "opt / this", "CPU s", "opt / this",
           "reads of X");
    for (int i = 0; i < ns; i++)
        printf("  %-32s %9.4f %9.4f %10.3f %10.4f %10.3f %10d%s\n", names[i], med[i], mn[i], med[OPT] / med[i], cpu[i],
               cpu[OPT] / cpu[i], reads[i], i == same ? "   <- opt's BLAS calls (CBLAS products)" : "");
    printf("  (CPU s: median process CPU seconds per repetition, all threads: the wall time without the time\n"
           "   other processes held the cores; on a machine of its own the two agree at 1 thread)\n");
    double *pr = bench_xcalloc((size_t)reps, sizeof *pr);
    for (int r = 0; r < reps; r++)
        pr[r] = t[OPT][r] / t[OPT_BLAS][r];
    printf("  ratio opt / opt with CBLAS products %.3f (median of per-repetition ratios %.3f)\n",
           med[OPT] / med[OPT_BLAS], bench_median(pr, reps));
    for (int r = 0; r < reps; r++)
        pr[r] = t[OPT][r] / t[FLOOR][r];
    double floor_in_run = med[OPT] / med[FLOOR];
    printf("  ratio opt / floor (%d streaming reads of X_train + 1 of X_val, %.1f GB at %.2f GB/s, in the rotation)\n"
           "    %.3f (median of per-repetition ratios %.3f): target <= 1.3 %s\n",
           HC_T + 1, ((HC_T + 1.0) * D.n + D.nv) * D.d * 8e-9, ((HC_T + 1.0) * D.n + D.nv) * D.d * 8e-9 / med[FLOOR],
           floor_in_run, bench_median(pr, reps), floor_in_run <= 1.3 ? "met" : "MISSED");
    printf("    in process CPU time %.3f\n", cpu[OPT] / cpu[FLOOR]);
    double target = NAN;
    if (same > 0) {
        for (int r = 0; r < reps; r++)
            pr[r] = t[OPT_BLAS][r] / t[same][r];
        target = med[OPT_BLAS] / med[same];
        printf("  ratio opt with CBLAS products / %s (the same BLAS calls) %.3f (median of per-repetition ratios "
               "%.3f): target <= 1.10 %s\n",
               short_name(names[same]), target, bench_median(pr, reps), target <= 1.10 ? "met" : "MISSED");
    } else {
        printf("  (opt tiles in blocks of 64 rows: run with --block 64 for the same-calls ratio)\n");
    }
    free(pr);
    printf("  ratio opt / whole %.3f;  opt / blocked %d (%d row thread%s) %.3f\n", med[OPT] / med[WHOLE], bench_block,
           hs[BLOCKED].threads, hs[BLOCKED].threads > 1 ? "s" : "", med[OPT] / med[BLOCKED]);
    printf("  (whole: each dgemm over all rows, BLAS threads %d; panels and blocked: %d pthread%s over row ranges,\n"
           "   single-threaded BLAS on %d-row panels inside each; blocked, 1 row thread: one pthread, BLAS as set)\n",
           threads, hs[BLOCKED].threads, hs[BLOCKED].threads > 1 ? "s" : "", bench_block);

    /* c. the floor: bytes of X that the step must read over the bandwidth */
    double xb = (double)D.n * D.d * sizeof(double), xvb = (double)D.nv * D.d * sizeof(double);
    int rd_min = HC_T + 1, rd_whole = 2 * HC_T + 3;
    printf("  memory floor: X_train is %.1f MB, X_val %.1f MB\n", xb * 1e-6, xvb * 1e-6);
    printf("    reads the step needs: %d of X_train (T = %d inner gradients, each one pass; plus one pass that\n"
           "    gives the outer grad_theta g(v, theta_k) and the forward at theta_T together) + 1 of X_val\n",
           rd_min, HC_T);
    printf("    the whole-matrix structure makes %d (2 per gradient: logits and dW; + the forward at theta_T)\n"
           "    + 2 of X_val\n",
           rd_whole);
    double floor_ratio = NAN;
    if (bw && bw->done) {
        int ti = threads >= 2 && bw->bps[2] > 0 ? 2 : 1;
        double bps = bw->bps[ti];
        double fl = (rd_min * xb + xvb) / bps, fw = (rd_whole * xb + 2 * xvb) / bps;
        printf("    at %.2f GB/s (%d-thread streaming read): floor %.4f s/step (%d reads), %.4f s/step (%d reads)\n",
               bps * 1e-9, ti, fl, rd_min, fw, rd_whole);
        printf("    measured / floor(%d reads):", rd_min);
        for (int i = 0; i < ns; i++)
            printf(" %s %.2f%s", short_name(names[i]), med[i] / fl, i + 1 < ns ? ";" : "\n");
        floor_ratio = med[OPT] / fl;
        printf("    opt / this floor %.2f (the bandwidth measured once before the rotation)\n", floor_ratio);
        /* every side does the same multiply-adds: per gradient 2 n d k for the
         * logits and 2 n d k for dW; the forward at theta_T 2 n d k; f's 4 nv d k */
        double ndk = (double)D.n * D.d * D.k, flop = (4.0 * HC_T + 6.0) * ndk + 4.0 * D.nv * (double)D.d * D.k;
        if (bw->flops[ti] > 0) {
            double fc = flop / bw->flops[ti];
            printf("  compute floor: %.2f GFlop per step (dgemm work, the same for every side) at %.1f GFlop/s "
                   "(%d-thread dgemm 2048^3) = %.4f s/step\n",
                   flop * 1e-9, bw->flops[ti] * 1e-9, ti, fc);
            printf("    measured / compute floor:");
            for (int i = 0; i < ns; i++)
                printf(" %s %.2f%s", short_name(names[i]), med[i] / fc, i + 1 < ns ? ";" : "\n");
            printf("    opt's multiply-add rate: %.1f GFlop/s\n", flop / med[OPT] * 1e-9);
        }
    }
    printf("  summary: threads %d; kernels %s;", threads, ad_kernel_name(kernels));
    for (int i = 0; i < ns; i++)
        printf(" %s %.4f;", short_name(names[i]), med[i]);
    printf(" s/step; opt / CBLAS products %.3f; CBLAS products / same calls %.3f; opt / floor %.3f in the rotation"
           " (%.3f in CPU time), %.2f at the bandwidth measured before (checksum %.6g)\n\n",
           med[OPT] / med[OPT_BLAS], target, floor_in_run, cpu[OPT] / cpu[FLOOR], floor_ratio, sink);
out_t:
    for (int i = 0; i < MAX_SIDES; i++) {
        free(t[i]);
        free(tc[i]);
    }
    bench_opt_side_free(&os[OPT]);
    bench_opt_side_free(&os[OPT_BLAS]);
    for (int i = WHOLE; i < ns; i++)
        bench_hand_free(&hs[i]);
    bench_hc_unload(&D);
    return ok;
}
