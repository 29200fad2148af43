/*
 * The paper's small problems, each a short file that declares f and g in the
 * DSL. A case owns its state (variables, data) and knows its paper settings.
 */
#ifndef BOME_CASES_H
#define BOME_CASES_H

#include "bome/opt.h"

typedef struct bome_case_run {
    bome_problem *problem;
    void *state;
    /* Set before create: the case's own settings (NULL: their defaults) and
     * the options that will run, for cases whose answer depends on them
     * (NULL: the case's defaults). */
    const double *params;
    const bome_options *o;
    /* Variables for printing: pointers into state. */
    int n_show;
    const char *show_name[4];
    const bome_real *show_values[4];
    int show_size[4];
} bome_case_run;

typedef struct bome_case {
    const char *name;
    const char *summary;
    long default_steps;
    int n_starts;          /* starting points the paper uses (1 = one) */
    /* The paper's settings for this problem. */
    void (*defaults)(bome_options *o);
    /* Makes the problem; start in [0, n_starts), seed for data. Returns 0 or
     * a status, with a message in err. */
    int (*create)(bome_case_run *r, int start, uint64_t seed, char *err, size_t errlen);
    void (*destroy)(bome_case_run *r);
    /* Distance of the current iterate from the known answer (NAN if none). */
    double (*error)(const bome_case_run *r);
    /* The case's own settings, each a CLI flag --name (e.g. the UFO toy's tasks). */
    const struct bome_case_param *params;
    int n_params;
    /* A held-out score at the current iterate (NULL if none), named
     * eval_name, with its 95% interval's half-width in *ci95. */
    double (*evaluate)(bome_case_run *r, const bome_options *o, double *ci95);
    const char *eval_name;
} bome_case;

typedef struct bome_case_param {
    const char *name;
    double def;
    const char *help;
} bome_case_param;

enum { BOME_CASE_MAX_PARAMS = 8 };

/* Setting i of a run: the CLI's value or the default. */
double bome_case_param_value(const bome_case *c, const bome_case_run *r, int i);

extern const bome_case bome_case_coreset, bome_case_nonsingleton, bome_case_minimax, bome_case_ridge,
    bome_case_ufo_toy, bome_case_sinusoid;

/* The toys' set-up: a problem with one outer variable v and one inner x,
 * both in state (which the case then owns), shown x first. */
int bome_case_toy(bome_case_run *r, void *state, const char *v_name, bome_shape v_shape, bome_real *v,
                  const char *x_name, bome_shape x_shape, bome_real *x, bome_objective_fn f, bome_objective_fn g);
/* Frees the problem and the state: every case's destroy. */
void bome_case_free(bome_case_run *r);

/* NULL-terminated list of the cases, for `bome list`. */
extern const bome_case *const bome_cases[];
const bome_case *bome_case_find(const char *name);

/* The UFO toy's closed forms (in the quadratic window): FO-BLO's fixed point
 * (first_order) or the stationary point of M, for r steps of size alpha. */
double bome_ufo_toy_answer(const bome_case_run *r, int first_order, int steps, double alpha);

/* Projection of y onto the convex hull of the k points c (k x 2), computed
 * independently of BOME (active-set over the hull's edges and vertices). */
void bome_hull_projection(const double *c, int k, const double y[2], double out[2]);

/* Ridge's independent answer: the validation error of the closed-form
 * solution at v (theta_out may be NULL), and the best v by 1-D search. */
double bome_ridge_validation(const void *state, double v, double *theta_out);
double bome_ridge_best_v(const void *state);

#endif
