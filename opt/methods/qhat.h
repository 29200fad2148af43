/* BOME's q (bome.c), shared with V-PBGD, which takes the same step with a
 * penalty schedule in place of BOME's lambda: f and g at (v_k, theta_k),
 * q = g(v, theta) - g(v, stop_gradient(s->inner)) and the gradients of f
 * and q over all of (v, theta), one plan. */
#ifndef OPT_QHAT_H
#define OPT_QHAT_H

#include "../method.h"

typedef struct opt_qhat {
    bome_node **gf, **gq;   /* nk each: grad f, grad q wrt (v, theta) */
    bome_node *q;
    bome_plan *plan;
} opt_qhat;

/* Builds the inner loop's graph too (s->inner must exist). */
int opt_qhat_build(bome_solver *s, opt_qhat *b, const char *what);
/* Runs the plan; f, g, q, the norms and the KKT residual into r, <gf, gq>
 * and |gq|^2 into *fq, *qq; the non-finite stop. */
int opt_qhat_eval(bome_solver *s, opt_qhat *b, bome_step_stats *r, double *fq, double *qq);
/* (v, theta) -= lr_scale * lr * (gf + r->lambda gq) by options.update. */
int opt_qhat_update(bome_solver *s, opt_qhat *b, const bome_step_stats *r, double lr_scale);
void opt_qhat_free(bome_solver *s, opt_qhat *b);

#endif
