/*
 * What the pieces of bench_bome share: the options, the hyper-cleaning
 * settings and data, the hand-written step, and each case's entry point.
 */
#ifndef BOME_BENCH_H
#define BOME_BENCH_H

#include "data.h" /* data/: data_split, the Fashion-MNIST loader's result */
#include "hc_model.h" /* problems/: the product's hyper-cleaning model */

#include <bome/opt.h>

#include <stdbool.h>
#include <stdint.h>

enum { MIN_REPS = 10, D_IN = 784, K_OUT = 10, MAX_BLOCK = 1024, MAX_THREADS = 16 };

/* Rows per block of the panels and blocked variants (--block; 64). */
extern int bench_block;

/* The hyper-cleaning settings of the released code, as problems/hyperclean.c. */
#define HC_T 10
#define HC_ALPHA 0.01
#define HC_LR_THETA 0.01
#define HC_LR_V 100.0
#define HC_MOMENTUM 0.9
#define HC_ETA 0.5
#define HC_L2 0.001
#define LAMBDA_EPS 1e-8

typedef struct options {
    int reps_small, reps_big; /* 0: the defaults */
    int rows;
    int steps;                /* coreset steps per repetition */
    int bw_mib;
    int warm;                 /* warm-start steps for hyperclean */
    const char *only;
    const char *data;
    const char *data_dir;
    bool nodes;
} options;

typedef struct bw_result {
    bool done;
    double bps[3];   /* streaming read bytes/s by thread count 1, 2 */
    double flops[3]; /* dgemm 2048^3 flop/s by BLAS thread count 1, 2 */
} bw_result;

typedef struct hc_data {
    int n, nv, d, k;
    double *x, *xv;       /* n x d, nv x d, row-major, standardized */
    int32_t *y, *yv;
    data_split loaded;  /* when --data fmnist */
    const char *what;
    double *W0, *b0;      /* the start of every side */
} hc_data;

/* The hand-written variants. WHOLE makes opt's BLAS calls; PANELS keeps
 * that structure (all logits, the row pass, then dW) but splits every dgemm
 * into 64-row panels; BLOCKED fuses logits, softmax and dW per 64-row block. */
enum hand_mode { HAND_WHOLE, HAND_PANELS, HAND_BLOCKED };

typedef struct hand {
    const hc_data *D;
    int mode;
    int threads;                  /* PANELS, BLOCKED: row ranges run on this many pthreads */
    double *v, *W, *b;            /* the variables */
    double *Wt, *bt;              /* the inner iterate */
    double *gW, *gb;              /* an inner gradient */
    double *fW, *fb, *qW, *qb, *qv; /* grad f, grad q (grad_v f = 0) */
    double *mv, *mW, *mb;         /* momentum buffers */
    double *Z, *Zv;               /* whole-matrix logits: n x k, nv x k */
    double *ce_k, *ce_T;          /* per-row CE at theta_k and theta_T */
    double *W2;                   /* blocked: [W; W_T] stacked, 2k x d */
    double f, g, q, lambda;
    long steps;
} hand;

/* The product's side: hyper-cleaning through opt (bome_solver_step) with the
 * settings above, by the given method; inner_momentum is kept across outer
 * steps (the CLI's 0.9; 0 for the hand-written comparison, which has none). */
typedef struct opt_side {
    hc_model model;
    double *v;
    bome_problem *p;
    bome_solver *s;
    bome_step_stats st;
} opt_side;

/* bome_coreset.c */
bool bench_case_coreset(const options *o);

/* bome_floors.c */
void bench_case_bandwidth(const options *o, bw_result *res);
/* One streaming read of x (n doubles) split over threads; the sum. */
double bench_stream_read(const double *x, size_t n, int threads);

/* bome_hyperclean.c (bw: the floors, when measured) */
bool bench_case_hyperclean(const options *o, const bw_result *bw);

bool bench_opt_side_new(opt_side *o, const hc_data *D, bome_method method, double inner_momentum);
bool bench_opt_side_step(opt_side *o);
void bench_opt_side_free(opt_side *o);

/* bome_rivals.c: one outer step of each method on the same data, interleaved */
bool bench_case_rivals(const options *o);

/* bome_hcdata.c: the data and the warm start, the same start for every side */
bool bench_hc_load(const options *o, hc_data *D);
void bench_hc_unload(hc_data *D);
void bench_start_point(const hc_data *D, double *v, double *W, double *b);

/* bome_hand.c */
void bench_hand_new(hand *h, const hc_data *D, int mode, int threads);
void bench_hand_free(hand *h);
void bench_hand_step(hand *h);
double bench_whole_pass(const double *x, const int32_t *y, int n, int d, int k, const double *v, double *Z,
                        const double *W, const double *b, double *ce, double *gW, double *gb, double l2);

#endif
