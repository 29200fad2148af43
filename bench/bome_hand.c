/*
 * bench_bome's hand-written hyper-cleaning step: the BOME outer step in plain
 * C and CBLAS, whole-matrix, in panels, or blocked (see enum hand_mode).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "bench_util.h"
#include "bome_bench.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

int bench_block = 64;

void bench_hand_new(hand *h, const hc_data *D, int mode, int threads)
{
    memset(h, 0, sizeof *h);
    h->D = D;
    h->mode = mode;
    h->threads = threads < 1 ? 1 : (threads > MAX_THREADS ? MAX_THREADS : threads);
    size_t n = (size_t)D->n, kd = (size_t)D->k * D->d, k = (size_t)D->k;
    h->v = bench_xcalloc(n, sizeof(double));
    h->qv = bench_xcalloc(n, sizeof(double));
    h->mv = bench_xcalloc(n, sizeof(double));
    h->ce_k = bench_xcalloc(n, sizeof(double));
    h->ce_T = bench_xcalloc(n, sizeof(double));
    double **kds[] = {&h->W, &h->Wt, &h->gW, &h->fW, &h->qW, &h->mW};
    for (size_t i = 0; i < sizeof kds / sizeof kds[0]; i++)
        *kds[i] = bench_xcalloc(kd, sizeof(double));
    double **ks[] = {&h->b, &h->bt, &h->gb, &h->fb, &h->qb, &h->mb};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++)
        *ks[i] = bench_xcalloc(k, sizeof(double));
    if (mode != HAND_BLOCKED) {
        h->Z = bench_xcalloc(n * k, sizeof(double));
        h->Zv = bench_xcalloc((size_t)D->nv * k, sizeof(double));
    } else {
        h->W2 = bench_xcalloc(2 * kd, sizeof(double));
    }
    bench_start_point(D, h->v, h->W, h->b);
}

void bench_hand_free(hand *h)
{
    double *all[] = {h->v, h->qv, h->mv, h->ce_k, h->ce_T, h->W, h->Wt, h->gW, h->fW, h->qW, h->mW,
                     h->b, h->bt, h->gb, h->fb, h->qb, h->mb, h->Z, h->Zv, h->W2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

static double clip01(double v) { return v < 0 ? 0 : (v > 1 ? 1 : v); }

/*
 * The fused pass over rows [r0, r1) of logits z (row stride ld, the first k
 * columns; bias b added in place): per row the max, the exponentials, and
 *   ce[i]  = lse - z_label (when ce is not NULL; sum_ce gets sum_i w_i ce_i)
 *   dz     = (softmax - onehot) w_i written over z (when grad), db += dz,
 * with w_i = clip(v_i, 0, 1) / n (v NULL: 1 / n).
 */
static void rows_pass(double *z, int ld, int k, const double *b, const int32_t *y, const double *v, double inv_n,
                      int r0, int r1, double *ce, double *sum_ce, bool grad, double *db)
{
    double acc = 0;
    for (int i = r0; i < r1; i++) {
        double *zi = z + (size_t)(i - r0) * ld;
        double m = -INFINITY;
        for (int j = 0; j < k; j++) {
            zi[j] += b[j];
            m = zi[j] > m ? zi[j] : m;
        }
        double w = (v ? clip01(v[i]) : 1.0) * inv_n;
        int lab = y[i];
        if (!grad) {
            double s = 0;
            for (int j = 0; j < k; j++)
                s += exp(zi[j] - m);
            double c = m + log(s) - zi[lab];
            if (ce)
                ce[i] = c;
            acc += w * c;
            continue;
        }
        double zl = zi[lab], s = 0;
        for (int j = 0; j < k; j++) {
            zi[j] = exp(zi[j] - m);
            s += zi[j];
        }
        double c = m + log(s) - zl;
        if (ce)
            ce[i] = c;
        acc += w * c;
        double scale = w / s;
        for (int j = 0; j < k; j++)
            zi[j] *= scale;
        zi[lab] -= w;
        for (int j = 0; j < k; j++)
            db[j] += zi[j];
    }
    *sum_ce += acc;
}

/* Whole matrix, opt's BLAS calls: Z = X W^T (one dgemm), the fused row pass,
 * dW = dZ^T X (one dgemm) + 2 l2 W. Returns sum_i w_i ce_i. */
double bench_whole_pass(const double *x, const int32_t *y, int n, int d, int k, const double *v, double *Z,
                        const double *W, const double *b, double *ce, double *gW, double *gb, double l2)
{
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, k, d, 1.0, x, d, W, d, 0.0, Z, k);
    double sum = 0;
    if (gb)
        memset(gb, 0, (size_t)k * sizeof *gb);
    rows_pass(Z, k, k, b, y, v, 1.0 / n, 0, n, ce, &sum, gW != NULL, gb);
    if (gW) {
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, d, n, 1.0, Z, k, x, d, 0.0, gW, d);
        for (int i = 0; i < k * d; i++)
            gW[i] += 2 * l2 * W[i];
        for (int j = 0; j < k; j++)
            gb[j] += 2 * l2 * b[j];
    }
    return sum;
}

/* ---- blocked: rows in blocks of 64, each block's logits, softmax and dW
 * contribution while it is in cache; row ranges split over pthreads. ------- */

typedef struct blk_job {
    const double *x;
    const int32_t *y;
    int n, d, k, r0, r1;
    const double *v;
    const double *W; /* k x d, or 2k x d stacked with the second model */
    const double *b, *b2;
    bool two;        /* outer pass: logits of [W; W_T], gradient of the first */
    bool grad;
    double *Z;       /* PANELS: the n x k logits of the whole matrix */
    double *ce, *ce2;
    double sum, sum2;
    double *gW, gb[2 * K_OUT]; /* private accumulators */
} blk_job;

static void *blk_run(void *arg)
{
    blk_job *j = arg;
    int d = j->d, k = j->k, kk = j->two ? 2 * k : k;
    double zb[MAX_BLOCK * 2 * K_OUT], zb2[MAX_BLOCK * K_OUT];
    j->sum = j->sum2 = 0;
    memset(j->gb, 0, sizeof j->gb);
    bool first = true;
    if (j->Z) { /* PANELS: the whole-matrix structure over this row range */
        for (int r0 = j->r0; r0 < j->r1; r0 += bench_block) {
            int nb = j->r1 - r0 < bench_block ? j->r1 - r0 : bench_block;
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, k, d, 1.0, j->x + (size_t)r0 * d, d, j->W, d,
                        0.0, j->Z + (size_t)r0 * k, k);
        }
        rows_pass(j->Z + (size_t)j->r0 * k, k, k, j->b, j->y, j->v, 1.0 / j->n, j->r0, j->r1, j->ce, &j->sum, j->grad,
                  j->gb);
        for (int r0 = j->r0; j->grad && r0 < j->r1; r0 += bench_block) {
            int nb = j->r1 - r0 < bench_block ? j->r1 - r0 : bench_block;
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, d, nb, 1.0, j->Z + (size_t)r0 * k, k,
                        j->x + (size_t)r0 * d, d, first ? 0.0 : 1.0, j->gW, d);
            first = false;
        }
        if (j->grad && first)
            memset(j->gW, 0, (size_t)k * d * sizeof(double));
        return NULL;
    }
    for (int r0 = j->r0; r0 < j->r1; r0 += bench_block) {
        int nb = j->r1 - r0 < bench_block ? j->r1 - r0 : bench_block;
        const double *xb = j->x + (size_t)r0 * d;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, kk, d, 1.0, xb, d, j->W, d, 0.0, zb, kk);
        if (j->two) { /* the second model's logits: forward only */
            for (int i = 0; i < nb; i++)
                memcpy(zb2 + (size_t)i * k, zb + (size_t)i * kk + k, (size_t)k * sizeof(double));
            rows_pass(zb2, k, k, j->b2, j->y, j->v, 1.0 / j->n, r0, r0 + nb, j->ce2, &j->sum2, false, NULL);
        }
        rows_pass(zb, kk, k, j->b, j->y, j->v, 1.0 / j->n, r0, r0 + nb, j->ce, &j->sum, j->grad, j->gb);
        if (j->grad) {
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, d, nb, 1.0, zb, kk, xb, d, first ? 0.0 : 1.0,
                        j->gW, d);
            first = false;
        }
    }
    if (j->grad && first) /* no rows */
        memset(j->gW, 0, (size_t)k * d * sizeof(double));
    return NULL;
}

/* One pass over X in blocks; with W2 (2k x d) and b2 it also gives the
 * second model's per-row CE. Returns sum_i w_i ce_i of the first model. */
static double blocked_pass(hand *h, const double *x, const int32_t *y, int n, const double *v, const double *W,
                           const double *b, double *ce, double *gW, double *gb, double l2, const double *b2,
                           double *ce2, double *sum2, double *Z)
{
    const hc_data *D = h->D;
    int d = D->d, k = D->k, T = h->threads;
    if (T > 1)
        bench_set_blas_threads(1); /* each pthread runs single-threaded BLAS on its rows */
    static double scratch[MAX_THREADS][K_OUT * D_IN];
    blk_job job[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    for (int t = 0; t < T; t++) {
        job[t] = (blk_job){x, y, n, d, k, (int)((long)n * t / T), (int)((long)n * (t + 1) / T), v, W, b, b2,
                           b2 != NULL, gW != NULL, Z, ce, ce2, 0, 0, t ? scratch[t] : gW, {0}};
        if (t)
            pthread_create(&tid[t], NULL, blk_run, &job[t]);
    }
    blk_run(&job[0]);
    for (int t = 1; t < T; t++)
        pthread_join(tid[t], NULL);
    if (T > 1)
        bench_set_blas_threads(T);
    double sum = 0, s2 = 0;
    for (int t = 0; t < T; t++) {
        sum += job[t].sum;
        s2 += job[t].sum2;
    }
    if (sum2)
        *sum2 = s2;
    if (gW) {
        for (int t = 1; t < T; t++)
            for (int i = 0; i < k * d; i++)
                gW[i] += job[t].gW[i];
        for (int j = 0; j < k; j++) {
            gb[j] = 0;
            for (int t = 0; t < T; t++)
                gb[j] += job[t].gb[j];
        }
        for (int i = 0; i < k * d; i++)
            gW[i] += 2 * l2 * W[i];
        for (int j = 0; j < k; j++)
            gb[j] += 2 * l2 * b[j];
    }
    return sum;
}

/* One BOME outer step, by hand: exactly the reference's step. */
void bench_hand_step(hand *h)
{
    const hc_data *D = h->D;
    int n = D->n, d = D->d, k = D->k;
    size_t kd = (size_t)k * d;
    /* 1. inner loop from a fresh copy of theta_k */
    memcpy(h->Wt, h->W, kd * sizeof(double));
    memcpy(h->bt, h->b, (size_t)k * sizeof(double));
    for (int t = 0; t < HC_T; t++) {
        if (h->mode != HAND_WHOLE)
            blocked_pass(h, D->x, D->y, n, h->v, h->Wt, h->bt, NULL, h->gW, h->gb, HC_L2, NULL, NULL, NULL, h->Z);
        else
            bench_whole_pass(D->x, D->y, n, d, k, h->v, h->Z, h->Wt, h->bt, NULL, h->gW, h->gb, HC_L2);
        for (size_t i = 0; i < kd; i++)
            h->Wt[i] -= HC_ALPHA * h->gW[i];
        for (int j = 0; j < k; j++)
            h->bt[j] -= HC_ALPHA * h->gb[j];
    }
    /* 2. f and its gradient on validation; g at theta_k with its theta
     * gradient (= grad_theta q); g at theta_T, forward only. */
    double sk, sT;
    if (h->mode == HAND_BLOCKED) {
        h->f = blocked_pass(h, D->xv, D->yv, D->nv, NULL, h->W, h->b, NULL, h->fW, h->fb, 0.0, NULL, NULL, NULL, NULL);
        memcpy(h->W2, h->W, kd * sizeof(double));
        memcpy(h->W2 + kd, h->Wt, kd * sizeof(double));
        sk = blocked_pass(h, D->x, D->y, n, h->v, h->W2, h->b, h->ce_k, h->qW, h->qb, HC_L2, h->bt, h->ce_T, &sT,
                          NULL);
        /* the stacked pass used W2 for the L2 term's W: the first k x d rows, = W */
    } else if (h->mode == HAND_PANELS) {
        h->f = blocked_pass(h, D->xv, D->yv, D->nv, NULL, h->W, h->b, NULL, h->fW, h->fb, 0.0, NULL, NULL, NULL, h->Zv);
        sk = blocked_pass(h, D->x, D->y, n, h->v, h->W, h->b, h->ce_k, h->qW, h->qb, HC_L2, NULL, NULL, NULL, h->Z);
        sT = blocked_pass(h, D->x, D->y, n, h->v, h->Wt, h->bt, h->ce_T, NULL, NULL, HC_L2, NULL, NULL, NULL, h->Z);
    } else {
        h->f = bench_whole_pass(D->xv, D->yv, D->nv, d, k, NULL, h->Zv, h->W, h->b, NULL, h->fW, h->fb, 0.0);
        sk = bench_whole_pass(D->x, D->y, n, d, k, h->v, h->Z, h->W, h->b, h->ce_k, h->qW, h->qb, HC_L2);
        sT = bench_whole_pass(D->x, D->y, n, d, k, h->v, h->Z, h->Wt, h->bt, h->ce_T, NULL, NULL, HC_L2);
    }
    double l2k = HC_L2 * (bench_dot(h->W, h->W, kd) + bench_dot(h->b, h->b, (size_t)k));
    double l2T = HC_L2 * (bench_dot(h->Wt, h->Wt, kd) + bench_dot(h->bt, h->bt, (size_t)k));
    h->g = sk + l2k;
    h->q = h->g - (sT + l2T);
    /* grad_v q = (ce_k - ce_T) / n where the clamp passes gradient (0 <= v <= 1) */
    for (int i = 0; i < n; i++)
        h->qv[i] = h->v[i] >= 0 && h->v[i] <= 1 ? (h->ce_k[i] - h->ce_T[i]) / n : 0.0;
    /* 3. lambda over the whole (v, theta) vector; grad_v f = 0 */
    double fq = bench_dot(h->fW, h->qW, kd) + bench_dot(h->fb, h->qb, (size_t)k);
    double qq = bench_dot(h->qv, h->qv, (size_t)n) + bench_dot(h->qW, h->qW, kd) + bench_dot(h->qb, h->qb, (size_t)k);
    double l = (HC_ETA * h->q - fq) / (qq + LAMBDA_EPS);
    h->lambda = l > 0 ? l : 0;
    /* 4. PyTorch SGD with momentum (buf = d at first), then the box on v */
    double mu = h->steps ? HC_MOMENTUM : 0.0, lam = h->lambda;
    for (int i = 0; i < n; i++) {
        h->mv[i] = mu * h->mv[i] + lam * h->qv[i];
        double x = h->v[i] - HC_LR_V * h->mv[i];
        h->v[i] = x < 0 ? 0 : (x > 1 ? 1 : x);
    }
    for (size_t i = 0; i < kd; i++) {
        h->mW[i] = mu * h->mW[i] + (h->fW[i] + lam * h->qW[i]);
        h->W[i] -= HC_LR_THETA * h->mW[i];
    }
    for (int j = 0; j < k; j++) {
        h->mb[j] = mu * h->mb[j] + (h->fb[j] + lam * h->qb[j]);
        h->b[j] -= HC_LR_THETA * h->mb[j];
    }
    h->steps++;
}
