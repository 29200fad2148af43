/*
 * The small-GEMM kernels of gemm.c, written once and compiled once per
 * instruction set: gemm.c includes this file with
 *   KN     the suffix of every name (the instruction set),
 *   KATTR  the target attribute of every function (empty for the baseline),
 *   KHSUM(v)  the sum of v's elements, in a tree of halves,
 *   KLOADP(p, n), KSTOREP(p, v, n)  the first n < VW elements only (masked,
 *          so never touching memory past them): the last columns of a row,
 *   KFMA(a, b, c)  a * b + c on vectors, fused where the target has FMA (ISO
 *          C mode keeps GCC from contracting a * b + c by itself),
 *   VW     doubles per vector,
 *   F_IB, F_JB   rows and outputs of a register tile of the NT product,
 *   N_IB, N_CV   rows and vectors of output of a tile of the NN product,
 *   R_JB, R_LV   outputs and vectors of columns of a tile of the TN product,
 * each tile's accumulators sized to stay in the vector registers.
 *
 * The tile functions take their sizes as arguments but are always inlined
 * with constants, so that their loops unroll and the accumulator arrays
 * become registers; a tile of another size is another instance. Vectors are
 * GCC vector types read and written at any alignment (rows of a product need
 * not start on a vector boundary).
 */

/* The narrower tiles that finish a row or a column group are instances of
 * 1 .. 7 outputs (NT) and 1 .. 11 (TN): see nt_rows and tn_block. */
_Static_assert(F_JB <= 8 && R_JB <= 12, "gemm_kern.h: tile wider than its remainder cases");

#define AD_CAT_(a, b) a##b
#define AD_CAT(a, b) AD_CAT_(a, b)
#define KF(name) AD_CAT(name, KN)
#define KINL static inline __attribute__((always_inline)) KATTR

typedef double KF(vd) __attribute__((vector_size(VW * sizeof(double)), aligned(sizeof(double)), may_alias));
#define VD KF(vd)

/* ---- NT: C (IB x JB) = A (IB rows) B^T (JB rows), dot products of length K --- */

KINL void KF(nt_tile)(int IB, int JB, int K, const double *restrict A, int lda, const double *restrict B, int ldb,
                      double *restrict C, int ldc, const double *pf, int pm)
{
    VD acc[F_IB][F_JB];
#pragma GCC unroll 16
    for (int ii = 0; ii < IB; ii++)
#pragma GCC unroll 16
        for (int jj = 0; jj < JB; jj++)
            acc[ii][jj] = (VD){0};
    int l = 0;
    for (; l + VW <= K; l += VW) {
        VD a[F_IB];
        if (l % 8 == 0) /* a 64-byte line per 8 doubles */
            for (int ii = 0; ii < pm; ii++)
                __builtin_prefetch(pf + (size_t)ii * lda + l, 0, 2);
#pragma GCC unroll 16
        for (int ii = 0; ii < IB; ii++)
            a[ii] = *(const VD *)(A + (size_t)ii * lda + l);
#pragma GCC unroll 16
        for (int jj = 0; jj < JB; jj++) {
            VD w = *(const VD *)(B + (size_t)jj * ldb + l);
#pragma GCC unroll 16
            for (int ii = 0; ii < IB; ii++)
                acc[ii][jj] = KFMA(a[ii], w, acc[ii][jj]);
        }
    }
#pragma GCC unroll 16
    for (int ii = 0; ii < IB; ii++)
#pragma GCC unroll 16
        for (int jj = 0; jj < JB; jj++) {
            double s = KHSUM(acc[ii][jj]);
            for (int t = l; t < K; t++) /* the last K % VW terms */
                s += A[(size_t)ii * lda + t] * B[(size_t)jj * ldb + t];
            C[(size_t)ii * ldc + jj] = s;
        }
}

/* All N outputs of IB rows: tiles of F_JB, then one narrower tile. The
 * first prefetches pm rows at pf (of the caller's next block). */
KINL void KF(nt_rows)(int IB, int N, int K, const double *A, int lda, const double *B, int ldb, double *C, int ldc,
                      const double *pf, int pm)
{
    int j = 0;
    for (; j + F_JB <= N; j += F_JB, pm = 0)
        KF(nt_tile)(IB, F_JB, K, A, lda, B + (size_t)j * ldb, ldb, C + j, ldc, pf, pm);
    const double *Bj = B + (size_t)j * ldb;
    switch (N - j) {
#define NT_REST(c)                                                                                                     \
    case c:                                                                                                            \
        if (c < F_JB)                                                                                                  \
            KF(nt_tile)(IB, c < F_JB ? c : 1, K, A, lda, Bj, ldb, C + j, ldc, pf, pm);                                         \
        break;
        NT_REST(1) NT_REST(2) NT_REST(3) NT_REST(4) NT_REST(5) NT_REST(6) NT_REST(7)
#undef NT_REST
    default:
        break;
    }
}

/* next: the caller's next next_rows rows (stride lda), prefetched a share per
 * group of rows, so that memory streams them while this block computes. */
static KATTR void KF(ad_gemm_nt)(int m, int N, int K, const double *A, int lda, const double *B, int ldb, double *C,
                                 int ldc, const double *next, int next_rows)
{
    int i = 0;
    for (; i + F_IB <= m; i += F_IB) {
        /* rows [p0, p1) of next: group i's share, the last group taking the rest */
        int p0 = (int)((long long)next_rows * i / m), p1 = i + 2 * F_IB > m ? next_rows : (int)((long long)next_rows * (i + F_IB) / m);
        KF(nt_rows)(F_IB, N, K, A + (size_t)i * lda, lda, B, ldb, C + (size_t)i * ldc, ldc,
                    next ? next + (size_t)p0 * lda : NULL, p1 - p0);
    }
    for (; i < m; i++)
        KF(nt_rows)(1, N, K, A + (size_t)i * lda, lda, B, ldb, C + (size_t)i * ldc, ldc, NULL, 0);
}

/* ---- NN: C (IB x CV vectors) = A (IB rows, K columns) B (K x N) -------------
 * part: CV = 1 and only the first part columns (the last of a row). */

KINL void KF(nn_tile)(int IB, int CV, int part, int K, const double *restrict A, int lda, const double *restrict B,
                      int ldb, double *restrict C, int ldc)
{
    VD acc[N_IB][N_CV];
#pragma GCC unroll 16
    for (int ii = 0; ii < IB; ii++)
#pragma GCC unroll 16
        for (int cv = 0; cv < CV; cv++)
            acc[ii][cv] = (VD){0};
    for (int l = 0; l < K; l++) {
        VD b[N_CV];
#pragma GCC unroll 16
        for (int cv = 0; cv < CV; cv++)
            b[cv] = part ? (VD)KLOADP(B + (size_t)l * ldb, part) : *(const VD *)(B + (size_t)l * ldb + cv * VW);
#pragma GCC unroll 16
        for (int ii = 0; ii < IB; ii++) {
            VD sv = (VD){0} + A[(size_t)ii * lda + l];
#pragma GCC unroll 16
            for (int cv = 0; cv < CV; cv++)
                acc[ii][cv] = KFMA(sv, b[cv], acc[ii][cv]);
        }
    }
#pragma GCC unroll 16
    for (int ii = 0; ii < IB; ii++)
#pragma GCC unroll 16
        for (int cv = 0; cv < CV; cv++) {
            if (part)
                KSTOREP(C + (size_t)ii * ldc, acc[ii][cv], part);
            else
                *(VD *)(C + (size_t)ii * ldc + cv * VW) = acc[ii][cv];
        }
}

KINL void KF(nn_rows)(int IB, int N, int K, const double *A, int lda, const double *B, int ldb, double *C, int ldc)
{
    int j = 0;
    for (; j + N_CV * VW <= N; j += N_CV * VW)
        KF(nn_tile)(IB, N_CV, 0, K, A, lda, B + j, ldb, C + j, ldc);
    for (; j + VW <= N; j += VW)
        KF(nn_tile)(IB, 1, 0, K, A, lda, B + j, ldb, C + j, ldc);
    if (j < N)
        KF(nn_tile)(IB, 1, N - j, K, A, lda, B + j, ldb, C + j, ldc);
}

static KATTR void KF(ad_gemm_nn)(int m, int N, int K, const double *A, int lda, const double *B, int ldb, double *C,
                                 int ldc)
{
    int i = 0;
    for (; i + N_IB <= m; i += N_IB)
        KF(nn_rows)(N_IB, N, K, A + (size_t)i * lda, lda, B, ldb, C + (size_t)i * ldc, ldc);
    for (; i < m; i++)
        KF(nn_rows)(1, N, K, A + (size_t)i * lda, lda, B, ldb, C + (size_t)i * ldc, ldc);
}

/* ---- TN: C (JB x LV vectors) (+)= A^T B over m rows, A's JB columns --------
 * part: LV = 1 and only the first part columns (the last of B's rows). */

KINL void KF(tn_tile)(int JB, int LV, int part, int m, const double *restrict A, int lda, const double *restrict B,
                      int ldb, double *restrict C, int ldc, bool first)
{
    VD acc[R_JB][R_LV];
#pragma GCC unroll 16
    for (int jj = 0; jj < JB; jj++)
#pragma GCC unroll 16
        for (int lv = 0; lv < LV; lv++) {
            const double *c = C + (size_t)jj * ldc + lv * VW;
            acc[jj][lv] = first ? (VD){0} : part ? (VD)KLOADP(c, part) : *(const VD *)c;
        }
    for (int i = 0; i < m; i++) {
        VD b[R_LV];
#pragma GCC unroll 16
        for (int lv = 0; lv < LV; lv++) {
            const double *bi = B + (size_t)i * ldb + lv * VW;
            b[lv] = part ? (VD)KLOADP(bi, part) : *(const VD *)bi;
        }
#pragma GCC unroll 16
        for (int jj = 0; jj < JB; jj++) {
            VD sv = (VD){0} + A[(size_t)i * lda + jj];
#pragma GCC unroll 16
            for (int lv = 0; lv < LV; lv++)
                acc[jj][lv] = KFMA(sv, b[lv], acc[jj][lv]);
        }
    }
#pragma GCC unroll 16
    for (int jj = 0; jj < JB; jj++)
#pragma GCC unroll 16
        for (int lv = 0; lv < LV; lv++) {
            double *c = C + (size_t)jj * ldc + lv * VW;
            if (part)
                KSTOREP(c, acc[jj][lv], part);
            else
                *(VD *)c = acc[jj][lv];
        }
}

/* Columns [l, l + w) of rows [0, pm) of pf, a block the caller reads next:
 * asked for while this block's multiply-adds keep the core busy, so that
 * memory works during them too. */
KINL void KF(prefetch_cols)(const double *pf, int pm, int ldb, int l, int w)
{
    for (int i = 0; i < pm; i++)
        for (int c = 0; c < w; c += 64 / (int)sizeof(double))
            __builtin_prefetch(pf + (size_t)i * ldb + l + c, 0, 2);
}

/* JB outputs over every column: chunks of R_LV vectors, single vectors, then
 * the last N % VW columns; pf: the next block's pm rows to prefetch. */
KINL void KF(tn_cols)(int JB, int m, int N, const double *A, int lda, const double *B, int ldb, double *C, int ldc,
                      bool first, const double *pf, int pm)
{
    int l = 0;
    for (; l + R_LV * VW <= N; l += R_LV * VW) {
        KF(prefetch_cols)(pf, pm, ldb, l, R_LV * VW);
        KF(tn_tile)(JB, R_LV, 0, m, A, lda, B + l, ldb, C + l, ldc, first);
    }
    for (; l + VW <= N; l += VW) {
        KF(prefetch_cols)(pf, pm, ldb, l, VW);
        KF(tn_tile)(JB, 1, 0, m, A, lda, B + l, ldb, C + l, ldc, first);
    }
    if (l < N) {
        KF(prefetch_cols)(pf, pm, ldb, l, N - l);
        KF(tn_tile)(JB, 1, N - l, m, A, lda, B + l, ldb, C + l, ldc, first);
    }
}

/* All M outputs of m rows (m <= the caller's row block); the first group of
 * outputs prefetches. */
static KATTR void KF(tn_block)(int m, int M, int N, const double *A, int lda, const double *B, int ldb, double *C,
                               int ldc, bool first, const double *pf, int pm)
{
    int j = 0;
    for (; j + R_JB <= M; j += R_JB, pm = 0)
        KF(tn_cols)(R_JB, m, N, A + j, lda, B, ldb, C + (size_t)j * ldc, ldc, first, pf, pm);
    const double *Aj = A + j;
    double *Cj = C + (size_t)j * ldc;
    switch (M - j) {
#define TN_REST(c)                                                                                                     \
    case c:                                                                                                            \
        if (c < R_JB)                                                                                                  \
            KF(tn_cols)(c < R_JB ? c : 1, m, N, Aj, lda, B, ldb, Cj, ldc, first, pf, pm);                              \
        break;
        TN_REST(1) TN_REST(2) TN_REST(3) TN_REST(4) TN_REST(5) TN_REST(6) TN_REST(7) TN_REST(8) TN_REST(9)
        TN_REST(10) TN_REST(11)
#undef TN_REST
    default:
        break;
    }
}

/* Rows in blocks: each column chunk of a block is read once per group of
 * R_JB outputs, from cache when the block fits there; a tall B read chunk by
 * chunk over all its rows would come from memory for every chunk. */
static KATTR void KF(ad_gemm_tn)(int m, int M, int N, const double *A, int lda, const double *B, int ldb, double *C,
                                 int ldc, bool first, const double *next, int next_rows)
{
    for (int r = 0; r < m; r += TN_ROWS) {
        int mb = m - r < TN_ROWS ? m - r : TN_ROWS;
        int pm = next_rows - r < mb ? next_rows - r : mb;
        KF(tn_block)(mb, M, N, A + (size_t)r * lda, lda, B + (size_t)r * ldb, ldb, C, ldc, first && r == 0,
                     pm > 0 ? next + (size_t)r * ldb : NULL, pm > 0 ? pm : 0);
    }
    if (m == 0 && first) /* no rows: the sum is zero */
        for (int j = 0; j < M; j++)
            for (int l = 0; l < N; l++)
                C[(size_t)j * ldc + l] = 0;
}

#undef VD
#undef KINL
#undef KF
#undef AD_CAT
#undef AD_CAT_
