/*
 * problems/cases.h: every problem bome runs, behind one interface. A case
 * builds f and g in the DSL over state it owns, knows the paper's settings
 * for them, and may add what a data experiment needs: figures measured at
 * logged steps, comparison points, files. The program runs every case
 * through one loop, so a new problem is one file plus one line in
 * registry.h. Nothing here parses arguments or prints: a case hands its
 * news to the caller (prob_run.note) and its figures through the hooks.
 */
#ifndef PROB_CASES_H
#define PROB_CASES_H

#include "bome/opt.h"

#include <stdbool.h>
#include <stdio.h>

/* ---- A case's own settings, each a flag --name of `bome run` ---------------- */

typedef enum prob_type {
    PROB_REAL,   /* a number */
    PROB_INT,    /* a whole number */
    PROB_TEXT,   /* a string: a path, a choice */
    PROB_SWITCH, /* no value: given or not */
    PROB_SIZES,  /* four whole numbers: train, validation, held-out, corrupted */
} prob_type;

typedef struct prob_param {
    const char *name;
    double def; /* PROB_REAL, PROB_INT */
    const char *help;
    prob_type type;
    const char *text; /* PROB_TEXT's default */
    int sizes[4];     /* PROB_SIZES' default */
    const char *meta; /* the value's name in the help (NULL: X, N, ...) */
} prob_param;

/* A setting's value: the command line's, or the default. */
typedef struct prob_value {
    double x;     /* PROB_REAL, PROB_INT; PROB_SWITCH: 1 if given */
    const char *s; /* PROB_TEXT */
    int sizes[4]; /* PROB_SIZES */
} prob_value;

enum { PROB_MAX_PARAMS = 12 };

/* ---- A run of a case ------------------------------------------------------------ */

typedef struct prob_run {
    bome_problem *problem;
    void *state;
    /* Set before create: the case's own settings (NULL: their defaults) and
     * the options that will run, for cases whose answer depends on them
     * (NULL: the case's defaults). */
    const prob_value *params;
    const bome_options *o;
    /* A folder the case may keep a cache in (NULL: none). */
    const char *out_dir;
    /* News of a long set-up, for the caller to show or not (NULL: none):
     * a line, or step done of total of a task named what. */
    void (*note)(void *ud, const char *line);
    void (*progress)(void *ud, const char *what, long done, long total, double value);
    /* Non-zero when the caller wants a long set-up (a training) given up,
     * as on a signal (NULL: never); it then fails with BOME_ERR_STATE. */
    int (*cancel)(void *ud);
    void *ud;
    /* Variables for printing: pointers into state. */
    int n_show;
    const char *show_name[4];
    const bome_real *show_values[4];
    int show_size[4];
} prob_run;

/* ---- What an experiment reports --------------------------------------------- */

/* A figure measured at each logged step: a column of the per-step CSV. */
typedef struct prob_metric {
    const char *name;  /* the CSV column */
    const char *json;  /* its key in the JSON summary, at the end (NULL: none) */
    int column;        /* k > 0: the k-th column of the method's row in the table */
} prob_metric;

enum { PROB_MAX_METRICS = 8, PROB_MAX_COLS = 4, PROB_MAX_ROWS = 8, PROB_MAX_LINES = 4, PROB_MAX_FIGS = 8 };

/* A comparison point: a row of the summary table, in the JSON as
 * key_<column key> (no key: not in the JSON). */
typedef struct prob_row {
    char label[96];
    char key[32];
    double value[PROB_MAX_COLS];
} prob_row;

typedef struct prob_report {
    char title[512]; /* what ran on what: the summary's first line */
    int n_cols;
    const char *col[PROB_MAX_COLS];     /* headings, "test acc" */
    const char *col_key[PROB_MAX_COLS]; /* their JSON names, "accuracy" */
    int n_rows;
    prob_row row[PROB_MAX_ROWS]; /* printed before the method's own row */
    int n_lines;
    char line[PROB_MAX_LINES][256]; /* after the table */
    int n_figs;
    struct { char key[48]; double value; } fig[PROB_MAX_FIGS]; /* more JSON numbers */
    int n_texts;
    struct { const char *key; char value[256]; } text[2]; /* JSON strings, after the status */
} prob_report;

/* A picture of the outer variable (row-major values the case owns). */
typedef struct prob_image {
    const char *title;
    int rows, cols;
    const bome_real *values;
    bool log; /* a logarithmic colour scale (positive values) */
} prob_image;

/* A panel of the plot: column y of the CSV against x ("step" or "seconds"),
 * from data row first on (rows before it: the header, the start). */
typedef struct prob_panel {
    const char *x, *y, *title;
    int first;
    bool logy;
} prob_panel;

/* ---- The interface ---------------------------------------------------------------- */

typedef struct prob_case {
    const char *name;
    const char *summary;
    long default_steps;
    int n_starts; /* starting points the paper uses; 0: one, and no --start */
    /* Runs data-parallel (prob_run.o->workers, under mpirun): create gives
     * each worker its rows and its share of f and g, and then create,
     * measure, report and save are collective, called on every worker
     * (save with a file on worker 0 only, NULL on the others). */
    bool data_parallel;
    /* The paper's settings for this problem. */
    void (*defaults)(bome_options *o);
    /* Settings that follow the method, o->method already chosen: applied
     * after defaults and before the flags (NULL: none). */
    void (*method_defaults)(bome_options *o);
    /* Makes the problem; start in [0, n_starts), seed for data. Returns 0 or
     * a status, with a message in err. */
    int (*create)(prob_run *r, int start, uint64_t seed, char *err, size_t errlen);
    void (*destroy)(prob_run *r);
    /* Distance of the current iterate from the known answer (NULL: none). */
    double (*error)(const prob_run *r);
    /* The case's own settings. */
    const prob_param *params;
    int n_params;
    /* A held-out score at the current iterate (NULL if none), named
     * eval_name, with its 95% interval's half-width in *ci95. */
    double (*evaluate)(prob_run *r, const bome_options *o, double *ci95);
    const char *eval_name;
    int eval_every; /* the default of --eval-every (0: the score at the end only) */

    /* An experiment measures metrics at logged steps (step 0, every
     * eval_every, the last): its CSV has a row per logged step (step, the
     * metrics, f, q, lambda, seconds), kept in --out-dir with a plot. */
    const prob_metric *metrics;
    int n_metrics;
    int (*measure)(prob_run *r, double *values);
    /* 1 + the metric whose lowest logged value marks the method's best step
     * (0: none), named in the summary and the JSON (best_<key>_step). */
    int select;
    const char *select_label, *select_key;
    /* The summary: comparison points, lines, JSON figures (NULL: none). */
    int (*report)(prob_run *r, prob_report *out);
    /* --save-v: the learned outer variable as CSV rows (NULL: no flag), named
     * save_what in the summary and save_key in the JSON. */
    int (*save)(prob_run *r, FILE *out);
    const char *save_what, *save_key;
    /* A picture of v, drawn next to the plot (NULL: none). */
    int (*image)(prob_run *r, prob_image *out);
    const prob_panel *panels;
    int n_panels;
    const char *plot_title;
} prob_case;

/* The length of a case's static table, for n_params, n_metrics, n_panels. */
#define PROB_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* The registry: every case in `bome list`'s order, NULL-terminated. */
#define PROB(id) extern const prob_case prob_##id;
#include "registry.h"
#undef PROB
extern const prob_case *const prob_cases[];
const prob_case *prob_find(const char *name);

/* Setting i of a run: the command line's or its default. */
double prob_real(const prob_case *c, const prob_run *r, int i);
const char *prob_text(const prob_case *c, const prob_run *r, int i);
const int *prob_sizes(const prob_case *c, const prob_run *r, int i);
prob_value prob_default(const prob_param *p);

/* News for r->note, formatted; nothing when the caller wants none. */
void prob_note(const prob_run *r, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void prob_progress(const prob_run *r, const char *what, long done, long total, double value);

/* The toys' set-up: a problem with one outer variable v and one inner x,
 * both in state (which the case then owns), shown x first. */
int prob_toy(prob_run *r, void *state, const char *v_name, bome_shape v_shape, bome_real *v, const char *x_name,
             bome_shape x_shape, bome_real *x, bome_objective_fn f, bome_objective_fn g);
/* Frees the problem and the state: every case's destroy. */
void prob_free(prob_run *r);

/* ---- The answers the toys are judged by, computed without BOME ---------------- */

/* The UFO toy's closed forms (in the quadratic window): FO-BLO's fixed point
 * (first_order) or the stationary point of M, for r steps of size alpha. */
double prob_ufo_toy_answer(const prob_run *r, int first_order, int steps, double alpha);

/* Projection of y onto the convex hull of the k points c (k x 2), computed
 * independently of BOME (active-set over the hull's edges and vertices). */
void prob_hull_projection(const double *c, int k, const double y[2], double out[2]);

/* Ridge's independent answer: the validation error of the closed-form
 * solution at v (theta_out may be NULL), and the best v by 1-D search. */
double prob_ridge_validation(const void *state, double v, bome_real *theta_out);
double prob_ridge_best_v(const void *state);

#endif
