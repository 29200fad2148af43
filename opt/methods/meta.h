/* What the meta-learning estimators (exact, fo-blo, ufo-blo; UFO-BLO,
 * Likhosherstov et al.) share: per task of the meta-batch, r = T plain
 * gradient steps on g from theta_0 (= v where the problem says so), the
 * trajectory kept for the reverse sweep, f's gradients at theta_r, and the
 * reverse sweep u <- u - alpha H_j u over the stored theta_j by
 * Hessian-vector products, with the mixed terms for a g that depends on v. */
#ifndef OPT_META_H
#define OPT_META_H

#include "../method.h"

typedef struct opt_meta {
    bome_node **gf_theta, **gf_v;  /* nt, nv: f's gradients at theta_r */
    bome_node **hp, **mixed;       /* nt, nv: H u and (d2g/dv dtheta) u at s->inner */
    bome_plan *plan_out, *plan_back;
    bome_real **traj;              /* (T + 1) * nt: theta_0 .. theta_T */
    bome_real **u;                 /* nt, bound input of hp and mixed */
    bome_real **est, **mean;       /* nv: one task's estimate, the batch's mean */
    bool second_order;
} opt_meta;

/* A method's estimate for the current task, into m->est (nv buffers);
 * forward has run; counts what it spends into r. */
typedef int (*opt_meta_estimate)(bome_solver *s, opt_meta *m, void *state, bome_step_stats *r);

/* second_order: build the reverse sweep's plan too. */
int opt_meta_build(bome_solver *s, opt_meta *m, bool second_order);
/* The step: per task, draw it, forward, estimate; v moves along the mean;
 * theta reports the last task's theta_r. */
int opt_meta_step(bome_solver *s, opt_meta *m, void *state, bome_step_stats *r, opt_meta_estimate estimate);
/* g_FO = grad_v f + grad_theta f mapped onto the v theta starts at. */
void opt_meta_first_order(bome_solver *s, opt_meta *m, bome_real **out);
/* The exact gradient through the stored trajectory; clip > 0 clips u
 * elementwise after every reverse step, as the authors' code can. */
int opt_meta_exact(bome_solver *s, opt_meta *m, bome_real **out, double clip, const bome_step_stats *r);
void opt_meta_free(bome_solver *s, opt_meta *m);

#endif
