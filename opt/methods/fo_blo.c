/* FO-BLO (FOM in UFO-BLO's ICML paper; first-order MAML): the meta-gradient
 * with every I - alpha H_j of the inner loop replaced by I, i.e. f's
 * gradient at theta_r carried straight to the v theta starts at. Biased:
 * it stops where M'(v) != 0 (tests/test_meta.c, the authors' toy). */
#include "meta.h"

typedef struct state { opt_meta meta; } state;

static int build(bome_solver *s, void *st) { return opt_meta_build(s, &((state *)st)->meta, false); }

static int estimate(bome_solver *s, opt_meta *m, void *st, bome_step_stats *r)
{
    (void)st;
    (void)r;
    opt_meta_first_order(s, m, m->est);
    return BOME_OK;
}

static int step(bome_solver *s, void *st, bome_step_stats *r) { return opt_meta_step(s, &((state *)st)->meta, st, r, estimate); }
static void release(bome_solver *s, void *st) { opt_meta_free(s, &((state *)st)->meta); }

const opt_method opt_method_fo_blo = {
    "fo-blo", "FO-BLO (FOM): f's gradient at theta_r as the meta-gradient; first order, biased", 1,
    OPT_INNER_LOOP | OPT_TASKS, sizeof(state), NULL, 0, build, step, release,
};
