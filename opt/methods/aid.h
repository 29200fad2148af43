/* What the implicit-differentiation methods (AID-CG, AID-FP, stocBiO)
 * share: at theta_T, grad_theta f, the Hessian-vector product H p and the
 * mixed product (d2 g / dv dtheta) u as plans over input nodes bound to the
 * buffers p and u, and the hypergradient grad_v f - mixed. */
#ifndef OPT_AID_H
#define OPT_AID_H

#include "../method.h"

typedef struct opt_aid {
    bome_node **gf_v;              /* nv: grad_v f at theta_T, the direct part */
    bome_node **gf_theta;          /* nt: grad_theta f at theta_T */
    bome_node **hp, **mixed;       /* nt: H p; nv: (d2g/dv dtheta) u */
    bome_plan *plan_grads, *plan_hp, *plan_mixed;
    bome_real **p, **u;            /* nt, bound inputs of hp and mixed */
    bome_real **w;                 /* nt: the series' second state */
    bool keep_momentum;            /* the inner loop honours inner_momentum_keep */
    bome_real **hv;                /* nv: the hypergradient */
} opt_aid;

/* Builds the inner loop, f at theta_T (s->f, s->gk = g there) and the plans. */
int opt_aid_build(bome_solver *s, opt_aid *a, const char *method);
/* The inner loop, then f, g, grad f at theta_T (into r's f and g). */
int opt_aid_begin(bome_solver *s, opt_aid *a, bome_step_stats *r);
/* A whole step with u from `iters` iterations, from u = 0, of the fixed
 * point of the transposed heavy-ball map of step lr and momentum mu,
 *   (a, b) <- (a - lr H a + H b + grad_theta f, mu (b - lr a)),  u = lr a - b,
 * whose limit is H^-1 grad_theta f. With mu = 0 it is u <- u - lr (H u -
 * grad_theta f), and u = lr sum_{k<iters} (I - lr H)^k grad_theta f, the
 * Neumann series cut after iters terms (AID-FP, stocBiO). released (mu 0):
 * u = sum_{k=1..iters-1} z_k + lr z_{iters-1}, z_k = (I - lr H)^k
 * grad_theta f, stocBiO's released form with Q = iters - 1. iters - 1
 * products H p; a non-finite term ends the run. */
int opt_aid_series_step(bome_solver *s, opt_aid *a, bome_step_stats *r, int iters, double lr, double mu,
                        bool released);
/* With u solved: the mixed product, hv = grad_v f - mixed, the update. */
int opt_aid_finish(bome_solver *s, opt_aid *a, bome_step_stats *r);
void opt_aid_free(bome_solver *s, opt_aid *a);

#endif
