/*
 * What the pieces of bench_ad share: the options, the sides and their timing,
 * the results, the engine's plans and checks, and each case's entry point.
 */
#ifndef AD_BENCH_H
#define AD_BENCH_H

#include <bome/ad.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { MIN_REPS = 10, D_IN = 784, K_OUT = 10, H_MLP = 300 };

typedef struct options {
    int reps;
    int rows;
    int steps;
    int block; /* 0: the engine's default block of rows */
    const char *only;
    bool nodes;
} options;

/* One contestant: a name and a function that does the whole computation. */
typedef struct side {
    const char *name;
    int (*run)(void *ctx);
    void *ctx;
} side;

enum { MAX_SIDES = 4 };

typedef struct result {
    const char *name;
    const char *unit;   /* "ms" or "ns/node" */
    double scale;       /* seconds to unit */
    int nv;
    const char *side_name[MAX_SIDES];
    double med[MAX_SIDES], min[MAX_SIDES];
    double target;      /* 0: none */
    size_t plan_nodes;
    int tiled_rows;     /* of the default engine plan */
    double check;       /* relative gradient difference, worst over the checks */
    double ratio[MAX_SIDES][MAX_SIDES];     /* med[a] / med[b] */
    double ratio_med[MAX_SIDES][MAX_SIDES]; /* median over repetitions of t[a] / t[b] */
} result;

/* ad_harness.c */
void fill_uniform(uint64_t *s, double *x, size_t n, double lo, double hi);
void fill_labels(uint64_t *s, int32_t *y, int n, int k);
bool check_graph(bome_graph *g, const char *what);
int run_plan(void *ctx);
int time_interleaved(int reps, int inner, int nv, const side *sv, double **t);
void summarize(result *res, double **t, int reps);
void print_ratio(const result *r, int a, int b, bool judge);
void print_sides(const result *r);
bool make_plans(bome_graph *g, const char *what, int block, int n, bome_node *const *outs, bome_plan **tiled,
                bome_plan **whole);
double compare(int n, bome_node *const *eng, const double *const *hand, const size_t *len, double *each);
void print_matrix_result(const result *r);

/* ad_profile.c: --nodes */
void profile_plan(const char *title, bome_plan *p, int reps);
/* Times the four sides of a matrix case (engine, engine-whole, hand,
 * hand-tiled), prints the result and, with --nodes, both plans' profiles. */
void time_matrix_sides(const options *o, result *res, const side *sv, bome_plan *pt, bome_plan *pw);

/* ad_softmax.c */
double hand_softmax_ce(double *L, const double *b, const int32_t *y, int rows, int k, double w, double *db);

/* the cases: ad_linear.c, ad_mlp.c, ad_scalar.c */
bool case_linear(const options *o, result *res);
bool case_mlp(const options *o, result *res);
bool case_scalar(const options *o, result *res);

#endif
