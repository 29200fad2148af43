/* The `bome` program's shared pieces: parsed arguments, the run, its output. */
#ifndef CLI_CLI_H
#define CLI_CLI_H

#include "bome/opt.h"
#include "cases.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

typedef struct cli_args {
    const char *problem;
    const prob_case *c;     /* the case being run */
    const char *method;
    bome_options o;         /* the problem's defaults, then the flags */
    prob_value params[PROB_MAX_PARAMS]; /* the case's own settings (c->params) */
    int start;              /* starting point, for problems with several */
    long budget;            /* --budget: gradients + HVPs after which to stop */
    int eval_every;         /* held-out score or logged step every N steps */
    int threads;            /* --threads, 0 when not given */
    const char *checkpoint_path; /* --checkpoint: written every checkpoint_every steps and at a signal */
    long checkpoint_every;
    const char *resume_path; /* --resume: continue from this checkpoint */
    const char *csv_path;
    const char *dot_path;   /* the solver's graph in Graphviz DOT */
    const char *out_dir;    /* experiments: where the CSV, plots and caches go */
    const char *save_path;  /* --save-v */
    bool no_plot;
    bool json;
    bool quiet;
} cli_args;

/* Whether c is an experiment (metrics at logged steps, files in --out-dir). */
static inline bool cli_experiment(const prob_case *c) { return c->measure != NULL; }

/* ---- Arguments (args.c) ---- */

/* c's defaults, then those that follow the method (--method is looked for
 * first). Returns 0, or prints the problem and returns 2. */
int cli_defaults(cli_args *a, const prob_case *c, int argc, char **argv);
/* Applies the flags in argv. Returns 0, or prints the problem and returns 2. */
int cli_parse(cli_args *a, int argc, char **argv);

/* The CLI flag of a setting name: cg_steps -> --cg-steps. */
void cli_flag_of(const char *name, char *flag, size_t len);

/* ---- Help (help.c) ---- */

void cli_usage(FILE *out);
/* `bome run --help`, with c's defaults and its own flags when c is given. */
void cli_run_usage(FILE *out, const bome_options *o, const prob_case *c);

/* ---- The run (run.c) ---- */

/* Runs a->c with its settings to the end, writes its files, prints the
 * summary; returns the exit status. */
int cli_run(cli_args *a);

/* ---- The per-step CSV (csv.c) ---- */

/* The CSV's header: toys a row per step, experiments a row per logged step. */
void cli_csv_header(FILE *out, const prob_case *c);
/* Column (from 1) of name in c's CSV, 0 if none. */
int cli_csv_column(const prob_case *c, const char *name);
/* An experiment's logged row: the step, the metrics, f, q, lambda, seconds. */
void cli_csv_logged(FILE *out, const prob_case *c, const bome_step_stats *st, const double *metrics);
/* A toy's row; held-out score and ci95 when it has one (NAN: none this step). */
void cli_csv_step(FILE *out, const prob_case *c, const bome_step_stats *st, double score, double ci95);
/* Calls fn with the step and the metrics of each row of an experiment's
 * CSV (on resume: the rows kept, read again). */
void cli_csv_replay(const char *path, const prob_case *c, void (*fn)(void *ud, long step, const double *metrics),
                    void *ud);

/* ---- Output (summary.c, plot.c) ---- */

/* What the run did, for the summary. */
typedef struct cli_outcome {
    int rc;
    const char *msg;         /* the error, when rc */
    long steps;
    bome_step_stats last;
    long grad_evals, hvp_evals;
    double eval_seconds;     /* measuring logged steps */
    const double *metrics;   /* at the last logged step (experiments) */
    long best_step;          /* the logged step with the lowest selected metric (0: none) */
    const double *best;      /* its metrics */
    const char *csv_path;    /* the CSV written, or NULL */
    const char *plot_path, *image_path; /* drawn, or NULL */
    int processes;           /* under mpirun: the processes, the sums between */
    long sums;               /* them and the values summed (cli_workers_stats) */
    double summed_values;
} cli_outcome;

void cli_summary_json(FILE *out, const cli_args *a, prob_run *r, const prob_report *rep, const cli_outcome *x);
void cli_summary_text(FILE *out, const cli_args *a, prob_run *r, const prob_report *rep, const cli_outcome *x);

/* gnuplot: c's panels from its CSV into png; an image of v into png. The
 * scripts stay next to the PNGs so that they can be redrawn. Return 0 if
 * the PNG was drawn; say why not on stderr unless quiet. */
int cli_plot_panels(const prob_case *c, const char *csv, const char *png, bool quiet);
int cli_plot_image(const prob_image *img, const char *png, bool quiet);

/* ---- Progress (progress.c) ---- */

/* A one-line progress bar on stderr, only when stderr is a terminal. */
typedef struct cli_progress {
    bool on;
    long total;
    double last_draw;
} cli_progress;

void cli_progress_start(cli_progress *p, long total, bool quiet);
/* Redraws at most ten times a second; text is the tail of the line. */
void cli_progress_draw(cli_progress *p, long done, const char *text);
void cli_progress_end(cli_progress *p);

double cli_now(void);

/* ---- JSON (json.c) ---- */

/* A number (null for NaN/inf), an escaped string, the settings (every
 * shared one and the chosen method's own). */
void cli_json_num(FILE *out, double x);
void cli_json_str(FILE *out, const char *s);
void cli_json_options(FILE *out, const bome_options *o);

/* ---- Checkpoints and signals (ckpt.c) ---- */

/* The signal (SIGINT, SIGTERM) that asked the run to stop, or 0. */
extern volatile sig_atomic_t cli_signal;
void cli_signals_install(void);
/* Removes a partial output, if it is a regular file (never a device). */
void cli_remove_output(const char *path);
/* Writes n bytes to path through a temporary, fsync and rename. */
int cli_write_atomic(const char *path, const void *buf, size_t n, char *err, size_t errlen);
int cli_checkpoint_save(const char *path, bome_solver *s, char *err, size_t errlen);
int cli_checkpoint_load(const char *path, bome_solver *s, char *err, size_t errlen);
/* The CSV cut back to its header and rows up to step, open for appending. */
FILE *cli_csv_resume(const char *path, long step, char *err, size_t errlen);

/* ---- Workers: `mpirun -np P bome run ...` (workers_mpi.c, or workers_none.c
 * without Open MPI) ---- */

/* Under an MPI launcher with more than one process, joins MPI and sets
 * o->workers; otherwise nothing. Returns 0, or 1 after saying why. */
int cli_workers_start(int *argc, char ***argv, bome_options *o);
/* Leaves MPI, if it was joined; a failed run (rc != 0 but 2, a usage error
 * every process finds alike) ends the whole job, whose other processes
 * may be waiting for this one. Returns rc. */
int cli_workers_end(const bome_options *o, int rc);
/* The sums and the values summed (or broadcast) so far by o's workers;
 * 0 without. */
void cli_workers_stats(const bome_options *o, long *sums, double *values);
/* This process's rank (0 without workers): only rank 0 writes and prints. */
static inline int cli_rank(const bome_options *o) { return o->workers ? o->workers->rank : 0; }

/* ---- Outputs (outputs.c) ---- */

/* 2 with a message naming both flags when two of the run's files (the CSV,
 * --save-v, --dot, --checkpoint, the plot and the picture of v, which may
 * be NULL) are one, or --resume is one of them but --checkpoint; else 0. */
int cli_outputs_check(const cli_args *a, const char *csv, const char *plot, const char *image);

/* ---- The BLAS (blas_kernel.c) ---- */

/* --threads N, else what OpenBLAS was given (OPENBLAS_NUM_THREADS), else 1:
 * the BLAS's threads and those over the rows of large inputs alike. */
int cli_blas_threads(int n);

/* Takes --precision out of argv; a precision other than this build's
 * execs the sibling program (bome or bome-f32). Nonzero: the exit status
 * of an error already printed. */
int cli_precision(int *argc, char **argv);
/* "float32" or "float64". */
const char *cli_precision_name(int bits);

#endif
