/* UFO-BLO (UFOM; Likhosherstov, Song, Choromanski, Davis, Weller, ICML
 * 2021): per task, xi ~ Bernoulli(q) from the solver's seeded rng, and
 *   g = g_FO + (xi / q)(g_exact - g_FO),
 * unbiased for the exact meta-gradient at an expected cost of r + 1
 * gradients plus q r Hessian-vector products. q = 0 is FO-BLO, q = 1 exact. */
#include "meta.h"

#include <string.h>

enum { Q, CLIP };

static const opt_setting params[] = {
    OPT_REAL("ufo_q", 0.1, 0, 1, "probability of the exact branch per task"),
    OPT_REAL("ufo_clip", 0, 0, 1e300, "clip the reverse vector elementwise to [-c, c] (0: never)"),
};

typedef struct state {
    opt_meta meta;
    bome_real **fo; /* nv: g_FO of the task */
    bome_rng coin;  /* its own stream, so the tasks drawn match fo-blo's and exact's */
} state;

static int build(bome_solver *s, void *st)
{
    state *d = st;
    d->fo = opt_buffers(s, 0, s->nv);
    bome_rng_seed(&d->coin, s->o.seed ^ 0x9e3779b97f4a7c15u);
    return opt_meta_build(s, &d->meta, opt_param(s, Q) > 0);
}

static int estimate(bome_solver *s, opt_meta *m, void *st, bome_step_stats *r)
{
    state *d = st;
    double q = opt_param(s, Q);
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
    for (int i = 0; i < s->nv; i++)
        for (size_t k = 0; k < s->var[i]->size; k++)
            m->est[i][k] = d->fo[i][k] + (m->est[i][k] - d->fo[i][k]) / q;
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
