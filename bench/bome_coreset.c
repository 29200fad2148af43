/*
 * bench_bome's coreset case: the paper's toy (problems/coreset.c's f and g),
 * T = 10, microseconds per outer step; the hand-written side is plain C with
 * every gradient worked out by hand.
 */
#include <bome/opt.h>

#include "bench_util.h"
#include "bome_bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const bome_real CS_C[8] = {1, 3, 3, 1, -2, 2, -3, -2};
static const bome_real CS_Y[2] = {3, -2};
static const bome_real CS_START[2] = {0, 3};

/* problems/coreset.c's f and g, verbatim. */
static bome_node *cs_f(bome_graph *g, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_node *y = bome_const(g, BOME_VECTOR(2), CS_Y);
    return bome_scale(g, bome_sumsq(g, bome_sub(g, x->theta[0], y)), 0.1);
}

static bome_node *cs_g(bome_graph *g, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_node *c = bome_const(g, BOME_MATRIX(4, 2), CS_C);
    bome_node *mean = bome_matvec(g, c, 1, bome_softmax(g, x->v[0]));
    return bome_sumsq(g, bome_sub(g, mean, x->theta[0]));
}

typedef struct cs_hand {
    double w[4], x[2];
    double f, g, q, lambda; /* what the step reports, as opt's stats */
} cs_hand;

/* d g / d w at x for s = softmax(w), p = C^T s: with r = 2 (p - x) and
 * u_i = <c_i, r>, the gradient is s * (u - <s, u>). */
static void cs_grad_w(const double *s, const double *p, const double *x, double *gw)
{
    double r0 = 2 * (p[0] - x[0]), r1 = 2 * (p[1] - x[1]), u[4], su = 0;
    for (int i = 0; i < 4; i++) {
        u[i] = CS_C[2 * i] * r0 + CS_C[2 * i + 1] * r1;
        su += s[i] * u[i];
    }
    for (int i = 0; i < 4; i++)
        gw[i] = s[i] * (u[i] - su);
}

/* One BOME step (T = 10, alpha = xi = 0.05, eta = 0.5, phi = eta |grad q|^2,
 * plain SGD), every derivative by hand. */
static void cs_hand_step(cs_hand *h)
{
    const double alpha = 0.05, xi = 0.05, eta = 0.5;
    double m = h->w[0], s[4], z = 0, p[2] = {0, 0};
    for (int i = 1; i < 4; i++)
        m = h->w[i] > m ? h->w[i] : m;
    for (int i = 0; i < 4; i++)
        z += s[i] = exp(h->w[i] - m);
    for (int i = 0; i < 4; i++) {
        s[i] /= z;
        p[0] += s[i] * CS_C[2 * i];
        p[1] += s[i] * CS_C[2 * i + 1];
    }
    /* inner loop: grad_x g = 2 (x - p) */
    double xt[2] = {h->x[0], h->x[1]};
    for (int t = 0; t < 10; t++) {
        xt[0] -= alpha * 2 * (xt[0] - p[0]);
        xt[1] -= alpha * 2 * (xt[1] - p[1]);
    }
    double gwk[4], gwT[4], qw[4], qx[2], fx[2];
    cs_grad_w(s, p, h->x, gwk);
    cs_grad_w(s, p, xt, gwT);
    for (int i = 0; i < 4; i++)
        qw[i] = gwk[i] - gwT[i];
    qx[0] = 2 * (h->x[0] - p[0]);
    qx[1] = 2 * (h->x[1] - p[1]);
    fx[0] = 0.2 * (h->x[0] - CS_Y[0]);
    fx[1] = 0.2 * (h->x[1] - CS_Y[1]);
    double gk = (p[0] - h->x[0]) * (p[0] - h->x[0]) + (p[1] - h->x[1]) * (p[1] - h->x[1]);
    double gT = (p[0] - xt[0]) * (p[0] - xt[0]) + (p[1] - xt[1]) * (p[1] - xt[1]);
    h->f = 0.1 * ((h->x[0] - CS_Y[0]) * (h->x[0] - CS_Y[0]) + (h->x[1] - CS_Y[1]) * (h->x[1] - CS_Y[1]));
    h->g = gk;
    h->q = gk - gT;
    double fq = fx[0] * qx[0] + fx[1] * qx[1]; /* grad_w f = 0 */
    double qq = bench_dot(qw, qw, 4) + qx[0] * qx[0] + qx[1] * qx[1];
    double l = (eta * qq - fq) / (qq + LAMBDA_EPS);
    h->lambda = l > 0 ? l : 0;
    for (int i = 0; i < 4; i++)
        h->w[i] -= xi * h->lambda * qw[i];
    h->x[0] -= xi * (fx[0] + h->lambda * qx[0]);
    h->x[1] -= xi * (fx[1] + h->lambda * qx[1]);
}

bool bench_case_coreset(const options *o)
{
    int reps = o->reps_small ? o->reps_small : 30, steps = o->steps;
    printf("== coreset: the paper's toy, T = 10, alpha = xi = 0.05, eta = 0.5, phi = eta |grad q|^2 ==\n");
    bome_real w[4] = {0}, x[2] = {CS_START[0], CS_START[1]};
    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "w", BOME_VECTOR(4), w);
    bome_problem_add_inner(p, "x", BOME_VECTOR(2), x);
    bome_problem_set_objectives(p, cs_f, cs_g, NULL);
    bome_options opt;
    bome_options_default(&opt); /* T = 10, alpha = xi = 0.05, eta = 0.5 */
    bome_solver *s = bome_solver_new(p, &opt);
    if (!s || bome_solver_status(s)) {
        fprintf(stderr, "bench_bome: coreset solver: %s\n", s ? bome_solver_errmsg(s) : "out of memory");
        bome_solver_free(s);
        bome_problem_free(p);
        return false;
    }
    cs_hand h = {{0}, {CS_START[0], CS_START[1]}, 0, 0, 0, 0};
    bome_step_stats st = {0};

    /* Agreement first: the same steps from the same start. */
    double worst = 0;
    for (int k = 0; k < steps; k++) {
        if (bome_solver_step(s, &st)) {
            fprintf(stderr, "bench_bome: coreset step: %s\n", bome_solver_errmsg(s));
            return false;
        }
        cs_hand_step(&h);
        if (k < 3 || k == steps - 1) {
            double d = fmax(bench_rel_diff(w, h.w, 4), bench_rel_diff(x, h.x, 2));
            worst = fmax(worst, d);
        }
    }
    double dl = fabs(st.lambda - h.lambda) / fmax(fabs(h.lambda), 1e-300);
    printf("  check: after %d steps from (w, x) = (0, (0, 3)): rel. diff w, x %.1e (steps 1-3 and last), "
           "lambda %.1e; x = (%.6f, %.6f): %s\n",
           steps, worst, dl, x[0], x[1], worst <= 1e-9 ? "ok" : "DIFFER");

    double *to = bench_xcalloc((size_t)reps, sizeof *to), *th = bench_xcalloc((size_t)reps, sizeof *th);
    double sink = 0;
    for (int r = 0; r < reps; r++) {
        for (int side = 0; side < 2; side++) {
            int which = (side + r) % 2; /* alternate who goes first */
            if (which == 0) {
                memset(w, 0, sizeof w);
                x[0] = CS_START[0], x[1] = CS_START[1];
                double t0 = bench_now();
                for (int k = 0; k < steps; k++)
                    bome_solver_step(s, &st);
                to[r] = (bench_now() - t0) / steps;
                sink += st.lambda;
            } else {
                h = (cs_hand){{0}, {CS_START[0], CS_START[1]}, 0, 0, 0, 0};
                double t0 = bench_now();
                for (int k = 0; k < steps; k++)
                    cs_hand_step(&h);
                th[r] = (bench_now() - t0) / steps;
                sink += h.lambda;
            }
        }
    }
    double mo = bench_median(to, reps) * 1e6, mh = bench_median(th, reps) * 1e6;
    printf("  %d repetitions of %d steps each (from the start), opt and hand-written alternating; opt's graph "
           "holds %zu tape nodes\n",
           reps, steps, bome_graph_size(bome_solver_graph(s)));
    printf("  %-28s %10s %10s\n", "", "median", "min");
    printf("  %-28s %10.3f %10.3f us/step\n", "opt (bome_solver_step)", mo, bench_minimum(to, reps) * 1e6);
    printf("  %-28s %10.3f %10.3f us/step\n", "hand-written C", mh, bench_minimum(th, reps) * 1e6);
    printf("  ratio opt/hand %.1f; target opt < 10 us/step: %s   (checksum %.3g)\n\n", mo / mh,
           mo < 10 ? "met" : "MISSED", sink);
    free(to);
    free(th);
    bome_solver_free(s);
    bome_problem_free(p);
    return worst <= 1e-9;
}
