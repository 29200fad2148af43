/*
 * tests/test_batch.c: minibatches (bome_problem_set_batches) in opt, on a
 * small per-row-weighted problem, and hyper-cleaning's --batch on
 * synthetic IDX data: B = n is the full-batch run bit for bit, rows outside
 * a batch get exactly no gradient, a seed fixes the trajectory, a bad B is
 * refused.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "data.h"
#include "idx_fixture.h"

/* ---- opt: the hook on a problem of its own ---- */

enum { N = 40, D = 3, K = 3, B = 7 };

typedef struct rows {
    bome_real x[N * D], xb[B * D], v[N], W[K * D];
    int32_t y[N], yb[B], idx[B];
    int draws, last_k;
    long last_step;
    int32_t seen[64][B]; /* every draw's rows, in order */
} rows;

/* g: the batch's weighted cross-entropy; f: the full set's, unweighted */
static bome_node *g_(bome_graph *g, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_node *ce = bome_cross_entropy_rows(g, bome_matmul(g, x->data[2], 0, x->theta[0], 1), x->data[3]);
    bome_node *w = bome_clamp(g, bome_gather_rows(g, x->v[0], x->data[4]), 0, 1);
    return bome_add(g, bome_weighted_mean(g, ce, w), bome_scale(g, bome_sumsq(g, x->theta[0]), 0.01));
}

static bome_node *f_(bome_graph *g, const bome_vars *x, void *ctx)
{
    (void)ctx;
    return bome_cross_entropy(g, bome_matmul(g, x->data[0], 0, x->theta[0], 1), x->data[1]);
}

static int draw(void *ud, bome_rng *rng, long step, int k)
{
    rows *r = ud;
    bome_rng_sample(rng, N, B, r->idx);
    for (int i = 0; i < B; i++) {
        memcpy(r->xb + i * D, r->x + r->idx[i] * D, D * sizeof *r->xb);
        r->yb[i] = r->y[r->idx[i]];
    }
    if (r->draws < 64)
        memcpy(r->seen[r->draws], r->idx, sizeof r->idx);
    r->draws++;
    r->last_k = k;
    r->last_step = step;
    return BOME_OK;
}

static int failing_draw(void *ud, bome_rng *rng, long step, int k)
{
    (void)ud, (void)rng, (void)step;
    return k == 2 ? BOME_ERR_RANGE : BOME_OK;
}

static bome_problem *rows_problem(rows *r, bome_batch_fn fn)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < N * D; i++)
        r->x[i] = sin(0.7 * i) + 0.3 * cos(2.1 * i);
    for (int i = 0; i < N; i++) {
        r->y[i] = (i * 5 + 1) % K;
        r->v[i] = 0.5;
    }
    for (int i = 0; i < K * D; i++)
        r->W[i] = 0.1 * cos(i);
    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_VECTOR(N), r->v);
    bome_problem_set_bounds(p, BOME_OUTER, 0, 0, 1);
    bome_problem_add_inner(p, "W", BOME_MATRIX(K, D), r->W);
    bome_problem_add_input(p, "x", BOME_MATRIX(N, D), r->x);
    bome_problem_add_labels(p, "y", N, r->y);
    bome_problem_add_input(p, "xb", BOME_MATRIX(B, D), r->xb);
    bome_problem_add_labels(p, "yb", B, r->yb);
    bome_problem_add_labels(p, "rows", B, r->idx);
    bome_problem_set_objectives(p, f_, g_, NULL);
    cr_assert_eq(bome_problem_set_batches(p, fn, r), BOME_OK);
    return p;
}

static void rows_options(bome_options *o, uint64_t seed)
{
    bome_options_default(o);
    o->T = 4;
    o->alpha = 0.5;
    o->lr_outer = 10;
    o->lr_inner = 0.1;
    o->update = BOME_UPDATE_SGD;
    o->seed = seed;
    bome_options_set(o, "eta", 5);
}

Test(batch, a_draw_per_inner_step_and_one_for_the_outer_part)
{
    static rows r;
    bome_problem *p = rows_problem(&r, draw);
    bome_options o;
    rows_options(&o, 1);
    bome_solver *s = bome_solver_new(p, &o);
    cr_assert_eq(bome_solver_status(s), BOME_OK, "%s", bome_solver_errmsg(s));
    bome_step_stats st;
    cr_assert_eq(bome_solver_step(s, &st), BOME_OK, "%s", bome_solver_errmsg(s));
    cr_expect_eq(r.draws, o.T + 1, "T inner steps and the outer part: %d draws", r.draws);
    cr_expect_eq(r.last_k, o.T);
    cr_expect_eq(r.last_step, 0);
    for (int d = 0; d < r.draws; d++)
        for (int i = 1; i < B; i++)
            cr_expect_lt(r.seen[d][i - 1], r.seen[d][i], "draw %d is not increasing", d);
    /* SGD: v moves by its gradient alone, which is zero outside the outer
     * part's batch, exactly */
    bool in[N] = {0};
    for (int i = 0; i < B; i++)
        in[r.idx[i]] = true;
    int moved = 0;
    for (int i = 0; i < N; i++) {
        if (!in[i])
            cr_expect_eq(r.v[i], 0.5, "row %d is not in the batch but v moved to %.17g", i, r.v[i]);
        moved += r.v[i] != 0.5;
    }
    cr_expect_gt(moved, 0, "lambda > 0 should move the batch's weights");
    cr_expect_gt(st.lambda, 0);
    bome_solver_free(s);
    bome_problem_free(p);
}

/* The same seed, the same batches and values; another seed, others. */
static void run_rows(uint64_t seed, int steps, bome_real *v, int32_t *seen0)
{
    static rows r;
    bome_problem *p = rows_problem(&r, draw);
    bome_options o;
    rows_options(&o, seed);
    o.max_steps = steps;
    cr_assert_eq(bome_solve(p, &o, NULL), BOME_OK, "%s", bome_problem_errmsg(p));
    memcpy(v, r.v, sizeof r.v);
    memcpy(seen0, r.seen[0], sizeof r.seen[0]);
    bome_problem_free(p);
}

Test(batch, a_seed_fixes_the_trajectory)
{
    bome_real a[N], b[N], c[N];
    int32_t sa[B], sb[B], sc[B];
    run_rows(5, 6, a, sa);
    run_rows(5, 6, b, sb);
    run_rows(6, 6, c, sc);
    cr_expect(!memcmp(a, b, sizeof a), "the same seed gave another trajectory");
    cr_expect(!memcmp(sa, sb, sizeof sa));
    cr_expect(memcmp(a, c, sizeof a) && memcmp(sa, sc, sizeof sa), "another seed gave the same batches");
}

/* A checkpoint holds the rng, so the resumed run draws the batches the
 * uninterrupted one draws. */
Test(batch, a_resumed_run_draws_the_same_batches)
{
    static rows r;
    bome_real whole[N];
    int32_t s0[B];
    run_rows(9, 8, whole, s0);
    bome_problem *p = rows_problem(&r, draw);
    bome_options o;
    rows_options(&o, 9);
    bome_solver *s = bome_solver_new(p, &o);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(bome_solver_step(s, NULL), BOME_OK);
    size_t n = bome_solver_state_size(s);
    void *buf = malloc(n);
    cr_assert_eq(bome_solver_save(s, buf, n), BOME_OK);
    bome_solver_free(s);
    for (int i = 0; i < N; i++) /* a fresh process's memory, then the checkpoint */
        r.v[i] = 0.25;
    s = bome_solver_new(p, &o);
    cr_assert_eq(bome_solver_load(s, buf, n), BOME_OK, "%s", bome_solver_errmsg(s));
    for (int i = 3; i < 8; i++)
        cr_assert_eq(bome_solver_step(s, NULL), BOME_OK);
    cr_expect(!memcmp(r.v, whole, sizeof whole), "the resumed run left other weights");
    free(buf);
    bome_solver_free(s);
    bome_problem_free(p);
}

Test(batch, a_failing_draw_ends_the_run_and_says_so)
{
    static rows r;
    bome_problem *p = rows_problem(&r, failing_draw);
    bome_options o;
    rows_options(&o, 1);
    bome_solver *s = bome_solver_new(p, &o);
    cr_expect_eq(bome_solver_step(s, NULL), BOME_ERR_RANGE);
    cr_expect(strstr(bome_solver_errmsg(s), "minibatch draw"), "%s", bome_solver_errmsg(s));
    bome_solver_free(s);
    cr_expect_eq(bome_problem_set_batches(p, NULL, NULL), BOME_ERR_ARG);
    cr_expect(strstr(bome_problem_errmsg(p), "draw is NULL"));
    bome_problem_free(p);
    cr_expect_eq(bome_problem_set_batches(NULL, draw, NULL), BOME_ERR_ARG);
}

Test(batch, sampling_is_uniform_and_k_of_n_is_every_row)
{
    bome_rng rng;
    bome_rng_seed(&rng, 3);
    int32_t out[10];
    bome_rng_sample(&rng, 10, 10, out);
    for (int i = 0; i < 10; i++)
        cr_expect_eq(out[i], i);
    long count[10] = {0};
    for (int t = 0; t < 20000; t++) {
        bome_rng_sample(&rng, 10, 3, out);
        for (int i = 0; i < 3; i++)
            count[out[i]]++;
    }
    for (int i = 0; i < 10; i++) /* 6000 expected, sd about 65 */
        cr_expect(labs(count[i] - 6000) < 400, "row %d drawn %ld times", i, count[i]);
}

/* ---- hyper-cleaning's --batch ---- */

static char dir[64];

static void write_data(void)
{
    idx_tmpdir_make(dir);
    static uint8_t pix[600 * 64], lab[600];
    for (int i = 0; i < 600 * 64; i++)
        pix[i] = (uint8_t)((i * 37 + (i / 64) * 11) % 251);
    for (int i = 0; i < 600; i++)
        lab[i] = (uint8_t)(pix[i * 64 + 5] % 10);
    char path[128];
    uint32_t dims[3] = {600, 8, 8}, ldim[1] = {600};
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    idx_write(path, 1, DATA_IDX_MAGIC_IMAGES, dims, 3, pix, sizeof pix);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte.gz", dir);
    idx_write(path, 1, DATA_IDX_MAGIC_LABELS, ldim, 1, lab, sizeof lab);
    dims[0] = ldim[0] = 200;
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", dir);
    idx_write(path, 1, DATA_IDX_MAGIC_IMAGES, dims, 3, pix, 200 * 64);
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte.gz", dir);
    idx_write(path, 1, DATA_IDX_MAGIC_LABELS, ldim, 1, lab, 200);
}

static void remove_data(void) { idx_tmpdir_remove(dir); }

/* What a run left: every step's f, g and q, its status, and --save-v's text. */
typedef struct hc_result {
    int rc;
    char err[512];
    double fgq[3 * 8];
    char *v;
    size_t v_len;
} hc_result;

static int param_index(const prob_case *c, const char *name)
{
    for (int i = 0; i < c->n_params; i++)
        if (!strcmp(c->params[i].name, name))
            return i;
    cr_assert_fail("hyperclean has no --%s", name);
    return -1;
}

static void hc_run(long batch, long batch_val, uint64_t seed, int steps, bome_update update, hc_result *res)
{
    const prob_case *c = prob_find("hyperclean");
    cr_assert(c);
    prob_value params[PROB_MAX_PARAMS];
    for (int i = 0; i < c->n_params; i++)
        params[i] = prob_default(&c->params[i]);
    params[param_index(c, "data-dir")].s = dir;
    int sizes[4] = {400, 100, 100, 200};
    memcpy(params[param_index(c, "sizes")].sizes, sizes, sizeof sizes);
    params[param_index(c, "warm-steps")].x = 10;
    params[param_index(c, "batch")].x = (double)batch;
    params[param_index(c, "batch-val")].x = (double)batch_val;
    bome_options o;
    c->defaults(&o);
    o.method = BOME_METHOD_BOME;
    c->method_defaults(&o);
    o.seed = seed;
    o.update = update;
    if (update == BOME_UPDATE_SGD)
        bome_options_set(&o, "eta", 1e4); /* phi = eta q large: lambda > 0 at once, v moves */
    prob_run r = {.params = params, .o = &o};
    memset(res, 0, sizeof *res);
    res->rc = c->create(&r, 0, seed, res->err, sizeof res->err);
    if (!res->rc) {
        bome_solver *s = bome_solver_new(r.problem, &o);
        res->rc = bome_solver_status(s);
        bome_step_stats st;
        for (int i = 0; !res->rc && i < steps; i++) {
            res->rc = bome_solver_step(s, &st);
            res->fgq[3 * i] = st.f, res->fgq[3 * i + 1] = st.g, res->fgq[3 * i + 2] = st.q;
        }
        if (res->rc)
            snprintf(res->err, sizeof res->err, "%s", bome_solver_errmsg(s));
        bome_solver_free(s);
        FILE *f = open_memstream(&res->v, &res->v_len);
        cr_assert_eq(c->save(&r, f), BOME_OK);
        fclose(f);
    }
    c->destroy(&r);
}

Test(hyperclean_batch, a_batch_of_every_row_is_the_full_batch_bit_for_bit, .init = write_data, .fini = remove_data)
{
    hc_result full, all;
    hc_run(0, 0, 1, 8, BOME_UPDATE_MOMENTUM, &full);
    hc_run(400, 100, 1, 8, BOME_UPDATE_MOMENTUM, &all);
    cr_assert_eq(full.rc, 0, "%s", full.err);
    cr_assert_eq(all.rc, 0, "%s", all.err);
    cr_expect(!memcmp(full.fgq, all.fgq, sizeof full.fgq), "f, g or q differ: %.17g %.17g", full.fgq[21], all.fgq[21]);
    cr_expect(full.v_len == all.v_len && !memcmp(full.v, all.v, full.v_len), "the weights differ");
    /* --batch-val 0 is --batch capped at the validation rows */
    hc_result capped;
    hc_run(400, 0, 1, 8, BOME_UPDATE_MOMENTUM, &capped);
    cr_expect(!memcmp(full.fgq, capped.fgq, sizeof full.fgq));
    free(full.v), free(all.v), free(capped.v);
}

/* the number of rows whose v is no longer 0.5 */
static int moved_rows(const char *csv)
{
    int moved = 0, index, label, clean;
    double v;
    const char *at = strchr(csv, '\n');
    while (at && sscanf(at + 1, "%d,%lf,%d,%d", &index, &v, &label, &clean) == 4) {
        moved += v != 0.5;
        at = strchr(at + 1, '\n');
    }
    return moved;
}

Test(hyperclean_batch, only_the_batch_rows_move_and_a_seed_fixes_the_run, .init = write_data, .fini = remove_data)
{
    hc_result a, b, c, one;
    hc_run(50, 20, 7, 8, BOME_UPDATE_MOMENTUM, &a);
    hc_run(50, 20, 7, 8, BOME_UPDATE_MOMENTUM, &b);
    hc_run(50, 20, 8, 8, BOME_UPDATE_MOMENTUM, &c);
    cr_assert_eq(a.rc, 0, "%s", a.err);
    cr_expect(!memcmp(a.fgq, b.fgq, sizeof a.fgq) && a.v_len == b.v_len && !memcmp(a.v, b.v, a.v_len),
              "the same seed, another trajectory");
    cr_expect(memcmp(a.fgq, c.fgq, sizeof a.fgq), "another seed, the same trajectory");
    /* one plain SGD step: v moves along its gradient alone, zero outside
     * the 50 rows of the step's batch */
    hc_run(50, 20, 7, 1, BOME_UPDATE_SGD, &one);
    cr_assert_eq(one.rc, 0, "%s", one.err);
    int moved = moved_rows(one.v);
    cr_expect(moved > 0 && moved <= 50, "%d rows moved after one step on a batch of 50", moved);
    free(a.v), free(b.v), free(c.v), free(one.v);
}

Test(hyperclean_batch, a_bad_batch_is_refused_and_says_why, .init = write_data, .fini = remove_data)
{
    const long bad[][2] = {{-1, 0}, {401, 0}, {10, 101}, {10, -2}, {0, 10}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hc_result r;
        hc_run(bad[i][0], bad[i][1], 1, 1, BOME_UPDATE_MOMENTUM, &r);
        cr_expect_eq(r.rc, BOME_ERR_ARG, "--batch %ld --batch-val %ld", bad[i][0], bad[i][1]);
        cr_expect(strstr(r.err, "--batch"), "%s", r.err);
        free(r.v);
    }
}
