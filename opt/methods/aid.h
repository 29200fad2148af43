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
    bome_real **hv;                /* nv: the hypergradient */
} opt_aid;

/* Builds the inner loop, f at theta_T (s->f, s->gk = g there) and the plans. */
int opt_aid_build(bome_solver *s, opt_aid *a, const char *method);
/* The inner loop, then f, g, grad f at theta_T (into r's f and g). */
int opt_aid_begin(bome_solver *s, opt_aid *a, bome_step_stats *r);
/* A whole step with u = eta sum_{i<n} p_i, p_0 = grad_theta f,
 * p_{i+1} = (I - eta H) p_i: the Neumann series of H^-1 cut after n terms,
 * which is also the n-th iterate of the fixed point
 * u <- u - eta (H u - grad_theta f) from u = 0 (AID-FP, stocBiO).
 * released: u = sum_{i=1..n} p_i + eta p_n instead, stocBiO's released
 * form. n - 1 (released: n) products H p; a non-finite term ends the run. */
int opt_aid_neumann_step(bome_solver *s, opt_aid *a, bome_step_stats *r, int n, double eta, bool released);
/* With u solved: the mixed product, hv = grad_v f - mixed, the update. */
int opt_aid_finish(bome_solver *s, opt_aid *a, bome_step_stats *r);
void opt_aid_free(bome_solver *s, opt_aid *a);

#endif
