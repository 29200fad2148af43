/* UFO-BLO (UFOM; Likhosherstov, Song, Choromanski, Davis, Weller, ICML
 * 2021): per task, xi ~ Bernoulli(q) from the solver's seeded rng, and
 *   g = g_FO + (xi / q)(g_exact - g_FO),
 * unbiased for the exact meta-gradient at an expected cost of r + 1
 * gradients plus q r Hessian-vector products. q = 0 is FO-BLO, q = 1 exact.
 * With ufo_adaptive, q follows the authors' later scheme: bias-corrected
 * EMAs (0.99) of D^2 = |g_FO - g|^2 and V^2 = |g|^2 from the exact-branch
 * samples, and q the root in (0, 1) of
 *   (V^2 - D^2) C_rnd q^2 - D^2 C_rnd q - 2 D^2 C_det = 0,
 * C_det = r + 1 gradients, C_rnd = r Hessian-vector products, floored at
 * 0.05; ufo_q until the first exact sample. */
#include "meta.h"

#include <math.h>
#include <string.h>

enum { Q, CLIP, ADAPTIVE };

static const opt_setting params[] = {
    OPT_REAL("ufo_q", 0.1, 0, 1, "probability of the exact branch per task"),
    OPT_REAL("ufo_clip", 0, 0, 1e300, "clip the reverse vector elementwise to [-c, c] (0: never)"),
    OPT_INT("ufo_adaptive", 0, 0, 1, "1: q from the cost-variance trade-off (EMAs of |g_FO - g|^2 and |g|^2)"),
};

typedef struct state {
    opt_meta meta;
    bome_real **fo; /* nv: g_FO of the task */
    bome_rng coin;  /* its own stream, so the tasks drawn match fo-blo's and exact's */
    struct {
        double q;       /* the current probability */
        double d2, v2;  /* EMAs of |g_FO - g|^2 and |g|^2 */
        long samples;   /* exact-branch samples seen */
    } a;                /* carried from step to step (and in checkpoints) */
} state;

/* The adaptive q from the EMAs (see the top of the file). */
static double adapt_q(const state *d, int r)
{
    double c = 1 - pow(0.99, (double)d->a.samples);
    double D2 = d->a.d2 / c, V2 = d->a.v2 / c, cdet = r + 1, crnd = r;
    if (D2 >= 0.5 * crnd * V2 / (cdet + crnd) || V2 <= D2)
        return 1.0;
    double a = (V2 - D2) * crnd, b = -D2 * crnd, k = -2 * D2 * cdet;
    double q = (-b + sqrt(b * b - 4 * a * k)) / (2 * a);
    return fmin(1.0, fmax(0.05, q));
}

static int build(bome_solver *s, void *st)
{
    state *d = st;
    d->fo = opt_buffers(s, 0, s->nv);
    bome_rng_seed(&d->coin, s->o.seed ^ 0x9e3779b97f4a7c15u);
    d->a.q = opt_param(s, Q);
    opt_persist(s, "ufo-blo's coin", &d->coin, sizeof d->coin);
    opt_persist(s, "ufo-blo's q and EMAs", &d->a, sizeof d->a);
    if (opt_param(s, ADAPTIVE) && !(d->a.q > 0))
        return opt_fail(s, BOME_ERR_ARG, "options: ufo_adaptive needs ufo_q > 0 to start from");
    return opt_meta_build(s, &d->meta, opt_param(s, Q) > 0);
}

static int estimate(bome_solver *s, opt_meta *m, void *st, bome_step_stats *r)
{
    state *d = st;
    double q = d->a.q;
    r->lambda = q; /* the step's statistics carry q where BOME's carry lambda */
    opt_meta_first_order(s, m, d->fo);
    bool exact = bome_rng_uniform(&d->coin) < q;
    if (!exact) {
        for (int i = 0; i < s->nv; i++)
            memcpy(m->est[i], d->fo[i], s->var[i]->size * sizeof(bome_real));
        return BOME_OK;
    }
    r->hvp_evals += s->o.T;
    int rc = opt_meta_exact(s, m, m->est, opt_param(s, CLIP), r);
    if (rc)
        return rc;
    /* |g|^2, then est becomes g - g_FO for |g - g_FO|^2, then the estimate */
    double gg = opt_dot_bufs(s, 0, s->nv, m->est, m->est);
    for (int i = 0; i < s->nv; i++)
        for (size_t k = 0; k < s->var[i]->size; k++)
            m->est[i][k] -= d->fo[i][k];
    double dd = opt_dot_bufs(s, 0, s->nv, m->est, m->est);
    if (s->status)
        return s->status;
    for (int i = 0; i < s->nv; i++)
        for (size_t k = 0; k < s->var[i]->size; k++)
            m->est[i][k] = d->fo[i][k] + m->est[i][k] / q;
    if (opt_param(s, ADAPTIVE)) {
        d->a.d2 = 0.99 * d->a.d2 + 0.01 * dd;
        d->a.v2 = 0.99 * d->a.v2 + 0.01 * gg;
        d->a.samples++;
        d->a.q = adapt_q(d, s->o.T);
    }
    return BOME_OK;
}

static int step(bome_solver *s, void *st, bome_step_stats *r) { return opt_meta_step(s, &((state *)st)->meta, st, r, estimate); }

static void release(bome_solver *s, void *st)
{
    state *d = st;
    opt_meta_free(s, &d->meta);
    opt_free_buffers(s, d->fo, s->nv);
}

const opt_method opt_method_ufo_blo = {
    "ufo-blo", "UFO-BLO (UFOM): FO-BLO plus the exact branch with probability q, reweighted; unbiased", 2,
    OPT_INNER_LOOP | OPT_TASKS, sizeof(state), OPT_PARAMS(params), build, step, release,
};
