/* bench_ad's scalar case: the engine's overhead per tape node. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "ad_bench.h"
#include "bench_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- case 3: scalar recurrence, tape overhead ---------------------------------------- */

/*
 * x_{k+1} = tanh(a x_k + b) + c exp(x_k), k = 0 .. N-1, loss = x_1 + ... + x_N,
 * gradient wrt a, b, c and x_0. Per step: 7 forward nodes (mul, add, tanh,
 * exp, mul, add, and the add of the running sum) and 11 reverse nodes
 * (tanh_bwd, 4 mul, and 6 adds that accumulate the adjoints of a, b, c and
 * x_k). The loss is a sum so that the adjoints stay O(1) instead of decaying
 * geometrically into subnormals, which would time the FPU's slow path.
 */
typedef struct scalar_hand {
    int steps;
    double a, b, c, x0;
    double *x, *t, *e; /* x_k, tanh(a x_k + b), exp(x_k) */
    double loss, grad[4];
} scalar_hand;

static int scalar_hand_run(void *ctx)
{
    scalar_hand *s = ctx;
    double a = s->a, b = s->b, c = s->c, sum = 0;
    s->x[0] = s->x0;
    for (int k = 0; k < s->steps; k++) {
        s->t[k] = tanh(a * s->x[k] + b);
        s->e[k] = exp(s->x[k]);
        s->x[k + 1] = s->t[k] + c * s->e[k];
        sum += s->x[k + 1];
    }
    s->loss = sum;
    double xb = 1, ab = 0, bb = 0, cb = 0;
    for (int k = s->steps; k-- > 0;) {
        double eb = xb * c, zb = xb * (1.0 - s->t[k] * s->t[k]);
        cb += xb * s->e[k];
        bb += zb;
        ab += zb * s->x[k];
        xb = eb * s->e[k] + zb * a;
        if (k > 0)
            xb += 1.0; /* x_k's own term in the sum */
    }
    s->grad[0] = ab;
    s->grad[1] = bb;
    s->grad[2] = cb;
    s->grad[3] = xb;
    return 0;
}

bool case_scalar(const options *o, result *res)
{
    int N = o->steps;
    double av = 0.5, bv = 0.1, cv = 0.05, x0v = 0.3;
    bome_graph *g = bome_graph_new();
    bome_node *a = bome_param(g, "a", BOME_SCALAR), *b = bome_param(g, "b", BOME_SCALAR);
    bome_node *c = bome_param(g, "c", BOME_SCALAR), *x0 = bome_param(g, "x0", BOME_SCALAR);
    bome_node *x = x0, *sum = NULL;
    for (int k = 0; k < N; k++) {
        x = bome_add(g, bome_tanh(g, bome_add(g, bome_mul(g, a, x), b)), bome_mul(g, c, bome_exp(g, x)));
        sum = sum ? bome_add(g, sum, x) : x;
    }
    bome_node *wrt[4] = {a, b, c, x0}, *gr[4] = {NULL, NULL, NULL, NULL};
    bome_grad(g, sum, 4, wrt, gr);
    bome_set(g, a, &av);
    bome_set(g, b, &bv);
    bome_set(g, c, &cv);
    bome_set(g, x0, &x0v);
    bome_node *outs[5] = {sum, gr[0], gr[1], gr[2], gr[3]};
    bome_plan *p = check_graph(g, "scalar: building") ? bome_plan_new(g, 5, outs) : NULL;
    if (!p || !check_graph(g, "scalar: planning")) {
        bome_graph_free(g);
        return false;
    }
    size_t nodes = bome_plan_size(p);

    scalar_hand s = {N, av, bv, cv, x0v, bench_xcalloc((size_t)N + 1, sizeof(double)), bench_xcalloc((size_t)N, sizeof(double)),
                     bench_xcalloc((size_t)N, sizeof(double)), 0, {0, 0, 0, 0}};
    int rc = bome_plan_run(p);
    scalar_hand_run(&s);
    res->check = fabs(bome_value(sum) - s.loss) / fabs(s.loss);
    for (int i = 0; i < 4; i++)
        res->check = fmax(res->check, fabs(bome_value(gr[i]) - s.grad[i]) / fmax(fabs(s.grad[i]), 1e-300));
    res->plan_nodes = nodes;
    printf("scalar: x_{k+1} = tanh(a x_k + b) + c exp(x_k), %d steps, loss sum_k x_k; gradient wrt a, b, c, x0\n", N);
    printf("  plan: %zu nodes (tape %zu), %.2f per step; loss %.12f; grad %.6e %.6e %.6e %.6e\n", nodes,
           bome_graph_size(g), (double)nodes / N, s.loss, s.grad[0], s.grad[1], s.grad[2], s.grad[3]);
    printf("  check: max relative difference %.2e (tolerance 1e-10)\n", res->check);
    bool ok = rc == BOME_OK && res->check <= 1e-10;
    if (!ok) {
        fprintf(stderr, "bench_ad: scalar: engine and hand-written gradients disagree (rc %d)\n", rc);
    } else {
        /* One run is well under a millisecond: each sample repeats it enough
         * times to last ~20 ms, and the per-run time is the sample / inner. */
        double t0 = bench_now();
        bome_plan_run(p);
        double one = bench_now() - t0;
        int inner = one > 0 ? (int)(0.02 / one) : 1000;
        if (inner < 1)
            inner = 1;
        side sv[2] = {{"engine", run_plan, p}, {"hand", scalar_hand_run, &s}};
        res->nv = 2;
        res->side_name[0] = sv[0].name;
        res->side_name[1] = sv[1].name;
        res->scale = 1e9 / (double)nodes;
        double *t[2] = {bench_xcalloc((size_t)o->reps, sizeof(double)), bench_xcalloc((size_t)o->reps, sizeof(double))};
        time_interleaved(o->reps, inner, 2, sv, t);
        printf("  one forward + reverse run: engine median %.1f us, hand median %.1f us (%d runs per sample)\n",
               1e6 * bench_median(t[0], o->reps), 1e6 * bench_median(t[1], o->reps), inner);
        printf("  per node: the time of one run / %zu plan nodes, on both sides\n", nodes);
        summarize(res, t, o->reps);
        print_sides(res);
        print_ratio(res, 0, 1, false);
        printf("\n");
        free(t[0]);
        free(t[1]);
    }
    free(s.x);
    free(s.t);
    free(s.e);
    bome_graph_free(g);
    return ok;
}
