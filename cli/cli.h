/* The `bome` program's shared pieces: parsed arguments, progress, output. */
#ifndef BOME_CLI_H
#define BOME_CLI_H

#include "bome/opt.h"
#include "cases.h"
#include "data.h"

#include <stdbool.h>
#include <stdio.h>

typedef struct cli_args {
    const char *problem;
    const char *method;
    bome_options o;         /* the problem's defaults, then the flags */
    int start;              /* starting point, for problems with several */
    long budget;            /* --budget: gradients + HVPs after which to stop */
    bool user_set[256];
    const char *checkpoint_path; /* --checkpoint: written every checkpoint_every steps and at a signal */
    long checkpoint_every;
    const char *resume_path;     /* --resume: continue from this checkpoint */     /* by bome_option_find index: given on the command line */
    const bome_case *c;     /* the case being run, if it is one */
    double case_params[BOME_CASE_MAX_PARAMS]; /* its own settings (c->params) */
    const char *csv_path;
    const char *dot_path;   /* the solver's graph in Graphviz DOT */
    bool json;
    bool quiet;
    /* hyperclean */
    const char *data_dir;
    const char *out_dir;
    const char *model;      /* "linear" or "mlp" */
    int hidden;
    int eval_every;
    int warm_steps;
    double warm_lr;
    bool no_cache;
    bool no_plot;
    const char *save_v_path; /* the learned weights, one CSV row per example */
    int threads;
    data_sizes sizes;    /* train, validation, held-out, corrupted */
} cli_args;

/* ---- Checkpoints and signals (cli_ckpt.c) ---- */
#include <signal.h>
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

/* Applies the flags in argv to a (whose options already hold defaults).
 * Returns 0, or prints the problem and returns 2. */
int cli_parse(cli_args *a, int argc, char **argv);

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

/* Whether the command line gave setting name (for defaults that depend on
 * the method, applied after parsing). */
bool cli_user_set(const cli_args *a, const char *name);

/* The CLI flag of a setting name: cg_steps -> --cg-steps. */
void cli_flag_of(const char *name, char *flag, size_t len);

/* JSON helpers: a number (null for NaN/inf), an escaped string, the
 * settings (every shared one and the chosen method's own). */
void cli_json_num(FILE *out, double x);
void cli_json_str(FILE *out, const char *s);
void cli_json_options(FILE *out, const bome_options *o);

#endif
