/* Private to the opt module: the problem's declarations. Not installed. */
#ifndef BOME_OPT_INTERNAL_H
#define BOME_OPT_INTERNAL_H

#include "bome/opt.h"

#include <stdbool.h>
#include <stdint.h>

#include "bome/rng.h"

typedef struct opt_var {
    char name[64];
    bome_shape shape;
    size_t size;
    bome_real *values;      /* caller's memory */
    bool bounded;
    bome_real lo, hi;
} opt_var;

typedef struct opt_data {
    char name[64];
    bome_shape shape;
    bool labels;
    const bome_real *values;
    const int32_t *labels_values;
} opt_data;

struct bome_problem {
    opt_var *vars[2];       /* BOME_OUTER, BOME_INNER */
    int n_vars[2], cap_vars[2];
    opt_data *data;
    int n_data, cap_data;
    bome_objective_fn f, g;
    void *ctx;
    int status;
    char msg[512];
};

int opt_error(bome_problem *p, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

struct bome_solver {
    bome_problem *p;
    bome_options o;
    bome_graph *g;
    int nv, nt, nk;          /* outer, inner, all variables */
    opt_var **var;           /* nk: outer first, then inner */
    bome_node **x;           /* nk params bound to the caller's values */
    bome_node **inner;       /* nt params: the inner iterate theta^(t) */
    bome_node **inner_grad;  /* nt: grad of g(v, theta^(t)) wrt theta^(t) */
    bome_node **gf, **gq;    /* nk each: grad f, grad q wrt (v, theta) */
    bome_node *f, *gk, *q;
    bome_plan *plan_inner, *plan_outer;
    bome_real **inner_buf;   /* nt momentum buffers of the inner loop */
    bool inner_buf_live;     /* inner_buf holds a direction to carry over */
    bome_real **m1, **m2;    /* nk: outer momentum / Adam moments */
    bome_real **prev;        /* nk: the iterate before the update, restored if it overflows */
    long steps;
    double total_seconds;
    bool dead;               /* a non-finite step happened */
    bool stop;               /* the callback asked to stop */
    int status;
    char msg[512];
    bome_rng rng;
    struct aid_state *aid;   /* AID-CG's nodes, plans and buffers (aid.c) */
};

/* Shared by the methods (bome.c, itd.c). */
int opt_fail(bome_solver *s, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Calls a builder and checks that it gave a scalar on the solver's graph. */
bome_node *opt_build(bome_solver *s, const char *what, bome_objective_fn fn, const bome_vars *x);
void *opt_zalloc(bome_solver *s, size_t n, size_t size); /* zeroed, from options.alloc */
void opt_zfree(bome_solver *s, void *p);
/* The rivals' outer plan: f, g at theta_k (s->gk), then a[0..na), then
 * b[0..nb). NULL if memory ran out (status set) or planning failed (not set). */
bome_plan *opt_plan_f_gk(bome_solver *s, bome_node *const *a, size_t na, bome_node *const *b, size_t nb);
void opt_project(const opt_var *v, bome_real *x);        /* onto v's box, if it has one */
/* Variable k -= step(gf + lambda gq) by options.update (gf or gq may be
 * NULL), then its box. */
void opt_apply_update(bome_solver *s, int k, const bome_real *gf, const bome_real *gq, double lambda);
/* The iterate before an update, and the check after it: a non-finite value
 * restores the saved iterate and ends the run (BOME_ERR_NONFINITE). */
void opt_save_iterate(bome_solver *s);
int opt_check_iterate(bome_solver *s, const bome_step_stats *r);
/* opt_inner_loop, then plan_outer, with f and g into r (BOME, BSG-1). */
int opt_inner_then_outer(bome_solver *s, bome_step_stats *r);
/* Ends the run on a non-finite value, naming f, g and what else was. */
int opt_stop_nonfinite(bome_solver *s, const bome_step_stats *r, const char *what, double value);
/* The rivals' end of a step: theta_{k+1} = theta_T (s->inner's values, as
 * the reference's ITD, AID and BSG-1 do), then opt_check_iterate. */
int opt_take_theta_T(bome_solver *s, const bome_step_stats *r);

/* ITD (itd.c): the graph of T unrolled inner steps and the hypergradient
 * through them; one outer step, filling what it can of the statistics. */
int opt_itd_build(bome_solver *s, bome_node **data);
int opt_itd_step(bome_solver *s, bome_step_stats *r);

/* theta_T from theta_k by T steps on g(v_k, .), in s->inner (bome.c). */
int opt_inner_loop(bome_solver *s);

/* AID-CG (aid.c): the Hessian-vector-product graphs at theta_T, the step,
 * and freeing what the build allocated (NULL-safe). */
int opt_aid_build(bome_solver *s, bome_node **data);
int opt_aid_step(bome_solver *s, bome_step_stats *r);
void opt_aid_free(bome_solver *s);

/* BSG-1 (bsg.c): the gradients at theta_T, and the step. */
int opt_bsg_build(bome_solver *s, bome_node **data);
int opt_bsg_step(bome_solver *s, bome_step_stats *r);

#endif
