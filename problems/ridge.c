/* Ridge regression's penalty as the outer variable: g is the training loss
 * plus exp(v)|theta|^2, f the validation error. The data are synthetic and
 * seeded. The answer is found independently by a 1-D search over v of the
 * validation error of the closed-form ridge solution. */
#include "cases.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { N_TRAIN = 30, N_VAL = 100, D = 10 };

typedef struct {
    bome_real v[1], theta[D];
    bome_real a[N_TRAIN * D], b[N_TRAIN], a_val[N_VAL * D], b_val[N_VAL];
} state;

static bome_node *mse(bome_graph *g, bome_node *a, bome_node *theta, bome_node *b)
{
    return bome_mean(g, bome_square(g, bome_sub(g, bome_matvec(g, a, 0, theta), b)));
}

static bome_node *f(bome_graph *g, const bome_vars *x, void *ctx)
{
    (void)ctx;
    /* every worker of a data-parallel run holds all the rows: counted once */
    return bome_once(g, mse(g, x->data[2], x->theta[0], x->data[3]));
}

static bome_node *g_(bome_graph *g, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_node *penalty = bome_mul(g, bome_exp(g, x->v[0]), bome_sumsq(g, x->theta[0]));
    return bome_once(g, bome_add(g, mse(g, x->data[0], x->theta[0], x->data[1]), penalty));
}

static void defaults(bome_options *o)
{
    bome_options_default(o);
    /* Chosen here, not in the paper: BOME's fixed-step bias is O(sqrt(xi)),
     * so small outer steps and a well-converged inner loop. */
    o->T = 20;
    o->alpha = 0.15;
    o->lr_inner = 0.02;
    o->lr_outer = 0.05;
    bome_options_set(o, "eta", 0.9);
    /* the fixed point u = u - alpha (H u - grad f) contracts by 1 - alpha
     * lambda_min(H) a step: 10 iterations (the released hyper-cleaning K) stop
     * 0.03 from the answer here, 100 at 3e-8, as AID-CG's 10 CG steps do */
    bome_options_set(o, "fp_steps", 100);
    /* F2SA's y step stays stable only while alpha lambda (curvature of g) < 2,
     * and lambda grows by delta a step: the library's 0.1 diverges by step 47 */
    bome_options_set(o, "f2sa_delta", 2e-5);
    o->max_steps = 20000;
}

static void fill(bome_rng *rng, const double *theta, bome_real *a, bome_real *b, int n)
{
    for (int i = 0; i < n; i++) {
        double y = 0;
        for (int j = 0; j < D; j++) {
            a[i * D + j] = bome_rng_normal(rng);
            y += a[i * D + j] * theta[j];
        }
        b[i] = y + 1.5 * bome_rng_normal(rng);
    }
}

static int create(prob_run *r, int start, uint64_t seed, char *err, size_t errlen)
{
    (void)start;
    (void)err;
    (void)errlen;
    state *s = calloc(1, sizeof *s);
    if (!s)
        return BOME_ERR_NOMEM;
    bome_rng rng;
    bome_rng_seed(&rng, seed);
    double truth[D];
    for (int j = 0; j < D; j++)
        truth[j] = 0.5 * bome_rng_normal(&rng);
    fill(&rng, truth, s->a, s->b, N_TRAIN);
    fill(&rng, truth, s->a_val, s->b_val, N_VAL);
    s->v[0] = -3;
    r->state = s;
    bome_problem *p = r->problem = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_SCALAR, s->v);
    bome_problem_add_inner(p, "theta", BOME_VECTOR(D), s->theta);
    bome_problem_add_input(p, "A", BOME_MATRIX(N_TRAIN, D), s->a);
    bome_problem_add_input(p, "b", BOME_VECTOR(N_TRAIN), s->b);
    bome_problem_add_input(p, "A_val", BOME_MATRIX(N_VAL, D), s->a_val);
    bome_problem_add_input(p, "b_val", BOME_VECTOR(N_VAL), s->b_val);
    bome_problem_set_objectives(p, f, g_, NULL);
    r->n_show = 2;
    r->show_name[0] = "v", r->show_values[0] = s->v, r->show_size[0] = 1;
    r->show_name[1] = "theta", r->show_values[1] = s->theta, r->show_size[1] = D;
    return bome_problem_status(p);
}

/* theta(v) = (A^T A / n + e^v I)^-1 A^T b / n by Cholesky; returns the
 * validation error of theta(v). */
double prob_ridge_validation(const void *state_, double v, bome_real *theta_out)
{
    const state *s = state_;
    double m[D * D] = {0}, r[D] = {0};
    for (int i = 0; i < N_TRAIN; i++)
        for (int j = 0; j < D; j++) {
            r[j] += s->a[i * D + j] * s->b[i] / N_TRAIN;
            for (int k = 0; k < D; k++)
                m[j * D + k] += s->a[i * D + j] * s->a[i * D + k] / N_TRAIN;
        }
    for (int j = 0; j < D; j++)
        m[j * D + j] += exp(v);
    for (int j = 0; j < D; j++) { /* in-place Cholesky: m = L L^T */
        for (int k = 0; k < j; k++)
            m[j * D + j] -= m[j * D + k] * m[j * D + k];
        m[j * D + j] = sqrt(m[j * D + j]);
        for (int i = j + 1; i < D; i++) {
            for (int k = 0; k < j; k++)
                m[i * D + j] -= m[i * D + k] * m[j * D + k];
            m[i * D + j] /= m[j * D + j];
        }
    }
    double t[D];
    for (int i = 0; i < D; i++) { /* L y = r, then L^T t = y */
        t[i] = r[i];
        for (int k = 0; k < i; k++)
            t[i] -= m[i * D + k] * t[k];
        t[i] /= m[i * D + i];
    }
    for (int i = D; i-- > 0;) {
        for (int k = i + 1; k < D; k++)
            t[i] -= m[k * D + i] * t[k];
        t[i] /= m[i * D + i];
    }
    if (theta_out) /* double to bome_real: not a memcpy, which in float32 wrote 2 D floats */
        for (int j = 0; j < D; j++)
            theta_out[j] = (bome_real)t[j];
    double e = 0;
    for (int i = 0; i < N_VAL; i++) {
        double y = -s->b_val[i];
        for (int j = 0; j < D; j++)
            y += s->a_val[i * D + j] * t[j];
        e += y * y / N_VAL;
    }
    return e;
}

/* Golden-section search of the validation error over v in [-8, 4] after a
 * coarse scan, so a second local minimum cannot trap it. */
double prob_ridge_best_v(const void *state_)
{
    double best = -8, fbest = INFINITY;
    for (double v = -8; v <= 4; v += 0.05) {
        double e = prob_ridge_validation(state_, v, NULL);
        if (e < fbest)
            fbest = e, best = v;
    }
    double lo = best - 0.05, hi = best + 0.05, phi = (sqrt(5.0) - 1) / 2;
    for (int it = 0; it < 100; it++) {
        double a = hi - phi * (hi - lo), b = lo + phi * (hi - lo);
        if (prob_ridge_validation(state_, a, NULL) < prob_ridge_validation(state_, b, NULL))
            hi = b;
        else
            lo = a;
    }
    return (lo + hi) / 2;
}

static double error(const prob_run *r)
{
    const state *s = r->state;
    return fabs(s->v[0] - prob_ridge_best_v(s));
}

const prob_case prob_ridge = {
    .name = "ridge",
    .summary = "ridge penalty exp(v) tuned on validation error, synthetic seeded data (30 x 10)",
    .default_steps = 20000,
    .n_starts = 1,
    .defaults = defaults,
    .create = create,
    .destroy = prob_free,
    .error = error,
};
