/*
 * The small-GEMM kernels of gemm.c, written once and compiled once per
 * instruction set: gemm.c includes this file with
 *   KN     the suffix of every name (the instruction set),
 *   KATTR  the target attribute of every function,
 *   KHSUM(v)  the sum of v's elements, in a tree of halves,
 *   KLOADP(p, n), KSTOREP(p, v, n)  the first n < VW elements only (masked,
 *          so never touching memory past them): the last columns of a row,
 *   KFMA(a, b, c)  a * b + c on vectors, fused where the target has FMA (ISO
 *          C mode keeps GCC from contracting a * b + c by itself),
 *   VW     elements (bome_real) per vector,
 *   F_IB, F_JB   rows and outputs of a register tile of the NT product,
 *   N_IB, N_CV   rows and vectors of output of a tile of the NN product,
 *   R_JB, R_LV   outputs and vectors of columns of a tile of the TN product,
 * each tile's accumulators sized to stay in the vector registers.
 *
 * The parameters are undefined at the end, ready for the next instance.
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

/* the accumulators of a rank-1 tile: room for NN's and TN's */
#define K_RB (N_IB > R_JB ? N_IB : R_JB)
#define K_CV (N_CV > R_LV ? N_CV : R_LV)

#define AD_CAT_(a, b) a##b
#define AD_CAT(a, b) AD_CAT_(a, b)
#define KF(name) AD_CAT(name, KN)
#define KINL static inline __attribute__((always_inline)) KATTR

typedef bome_real KF(vd) __attribute__((vector_size(VW * sizeof(bome_real)), aligned(sizeof(bome_real)), may_alias));
#define VD KF(vd)

/* ---- NT: C (IB x JB) = A (IB rows) B^T (JB rows), dot products of length K --- */

KINL void KF(nt_tile)(int IB, int JB, int K, const bome_real *restrict A, int lda, const bome_real *restrict B, int ldb,
                      bome_real *restrict C, int ldc, const bome_real *pf, int pm)
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
        if (l % (64 / (int)sizeof(bome_real)) == 0) /* a 64-byte line */
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
            bome_real s = KHSUM(acc[ii][jj]);
            for (int t = l; t < K; t++) /* the last K % VW terms */
                s += A[(size_t)ii * lda + t] * B[(size_t)jj * ldb + t];
            C[(size_t)ii * ldc + jj] = s;
        }
}

/* All N outputs of IB rows: tiles of F_JB, then one narrower tile. The
 * first prefetches pm rows at pf (of the caller's next block). */
KINL void KF(nt_rows)(int IB, int N, int K, const bome_real *A, int lda, const bome_real *B, int ldb, bome_real *C, int ldc,
                      const bome_real *pf, int pm)
{
    int j = 0;
    for (; j + F_JB <= N; j += F_JB, pm = 0)
        KF(nt_tile)(IB, F_JB, K, A, lda, B + (size_t)j * ldb, ldb, C + j, ldc, pf, pm);
    const bome_real *Bj = B + (size_t)j * ldb;
    switch (N - j) {
#define NT_REST(c)                                                                                                     \
    case c:                                                                                                            \
        if (c < F_JB)                                                                                                  \
            KF(nt_tile)(IB, c < F_JB ? c : 1, K, A, lda, Bj, ldb, C + j, ldc, pf, pm);                              \
        break;
        NT_REST(1) NT_REST(2) NT_REST(3) NT_REST(4) NT_REST(5) NT_REST(6) NT_REST(7)
#undef NT_REST
    default:
        break;
    }
}

/* next: the caller's next next_rows rows (stride lda), prefetched a share per
 * group of rows, so that memory streams them while this block computes. */
static KATTR void KF(ad_gemm_nt)(int m, int N, int K, const bome_real *A, int lda, const bome_real *B, int ldb, bome_real *C,
                                 int ldc, const bome_real *next, int next_rows)
{
    int i = 0;
    for (; i + F_IB <= m; i += F_IB) {
        /* rows [p0, p1) of next: group i's share, the last group taking the rest */
        int p0 = (int)((long long)next_rows * i / m);
        int p1 = i + 2 * F_IB > m ? next_rows : (int)((long long)next_rows * (i + F_IB) / m);
        KF(nt_rows)(F_IB, N, K, A + (size_t)i * lda, lda, B, ldb, C + (size_t)i * ldc, ldc,
                    next ? next + (size_t)p0 * lda : NULL, p1 - p0);
    }
    for (; i < m; i++)
        KF(nt_rows)(1, N, K, A + (size_t)i * lda, lda, B, ldb, C + (size_t)i * ldc, ldc, NULL, 0);
}

/* ---- rank-1 updates: NN and TN ------------------------------------------------
 * C (RB rows x CV vectors) (+)= sum over t < T of s(r, t) B_t, where
 * s(r, t) = A[r sr + t st] is broadcast and B_t = B + t ldb is a row of
 * vectors. NN is r = a row of A, t = its columns (sr = lda, st = 1); TN is
 * r = a column of A, t = its rows (sr = 1, st = lda). part: CV = 1 and only
 * the first part columns (the last of a row). */

KINL void KF(r1_tile)(int RB, int CV, int part, int T, const bome_real *restrict A, size_t sr, size_t st,
                      const bome_real *restrict B, int ldb, bome_real *restrict C, int ldc, bool first)
{
    VD acc[K_RB][K_CV];
#pragma GCC unroll 16
    for (int r = 0; r < RB; r++)
#pragma GCC unroll 16
        for (int cv = 0; cv < CV; cv++) {
            const bome_real *c = C + (size_t)r * ldc + cv * VW;
            acc[r][cv] = first ? (VD){0} : part ? (VD)KLOADP(c, part) : *(const VD *)c;
        }
    for (int t = 0; t < T; t++) {
        VD b[K_CV];
#pragma GCC unroll 16
        for (int cv = 0; cv < CV; cv++) {
            const bome_real *bt = B + (size_t)t * ldb + cv * VW;
            b[cv] = part ? (VD)KLOADP(bt, part) : *(const VD *)bt;
        }
#pragma GCC unroll 16
        for (int r = 0; r < RB; r++) {
            VD sv = (VD){0} + A[r * sr + t * st];
#pragma GCC unroll 16
            for (int cv = 0; cv < CV; cv++)
                acc[r][cv] = KFMA(sv, b[cv], acc[r][cv]);
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < RB; r++)
#pragma GCC unroll 16
        for (int cv = 0; cv < CV; cv++) {
            bome_real *c = C + (size_t)r * ldc + cv * VW;
            if (part)
                KSTOREP(c, acc[r][cv], part);
            else
                *(VD *)c = acc[r][cv];
        }
}

/* Columns [l, l + w) of rows [0, pm) of pf, a block the caller reads next:
 * asked for while this block's multiply-adds keep the core busy, so that
 * memory works during them too. */
KINL void KF(prefetch_cols)(const bome_real *pf, int pm, int ldb, int l, int w)
{
    for (int i = 0; i < pm; i++)
        for (int c = 0; c < w; c += 64 / (int)sizeof(bome_real))
            __builtin_prefetch(pf + (size_t)i * ldb + l + c, 0, 2);
}

/* RB rows of C over all N columns: chunks of CB vectors, single vectors, then
 * the last N % VW columns; pf: pm rows of the next block to prefetch. */
KINL void KF(r1_cols)(int RB, int CB, int T, const bome_real *A, size_t sr, size_t st, const bome_real *B, int ldb, int N,
                      bome_real *C, int ldc, bool first, const bome_real *pf, int pm)
{
    int l = 0;
    for (; l + CB * VW <= N; l += CB * VW) {
        KF(prefetch_cols)(pf, pm, ldb, l, CB * VW);
        KF(r1_tile)(RB, CB, 0, T, A, sr, st, B + l, ldb, C + l, ldc, first);
    }
    for (; l + VW <= N; l += VW) {
        KF(prefetch_cols)(pf, pm, ldb, l, VW);
        KF(r1_tile)(RB, 1, 0, T, A, sr, st, B + l, ldb, C + l, ldc, first);
    }
    if (l < N) {
        KF(prefetch_cols)(pf, pm, ldb, l, N - l);
        KF(r1_tile)(RB, 1, N - l, T, A, sr, st, B + l, ldb, C + l, ldc, first);
    }
}

/* C (m x N) = A (m x K) B (K x N): N_IB rows at a time. */
static KATTR void KF(ad_gemm_nn)(int m, int N, int K, const bome_real *A, int lda, const bome_real *B, int ldb, bome_real *C,
                                 int ldc)
{
    int i = 0;
    for (; i + N_IB <= m; i += N_IB)
        KF(r1_cols)(N_IB, N_CV, K, A + (size_t)i * lda, (size_t)lda, 1, B, ldb, N, C + (size_t)i * ldc, ldc, true,
                    NULL, 0);
    for (; i < m; i++)
        KF(r1_cols)(1, N_CV, K, A + (size_t)i * lda, (size_t)lda, 1, B, ldb, N, C + (size_t)i * ldc, ldc, true, NULL,
                    0);
}

/* ---- TN: C (M x N) (+)= A^T B, A m x M, B m x N ---------------------------- */

/* All M outputs of m rows (m <= the caller's row block), R_JB at a time; the
 * first group of outputs prefetches. */
static KATTR void KF(tn_block)(int m, int M, int N, const bome_real *A, int lda, const bome_real *B, int ldb, bome_real *C,
                               int ldc, bool first, const bome_real *pf, int pm)
{
    int j = 0;
    for (; j + R_JB <= M; j += R_JB, pm = 0)
        KF(r1_cols)(R_JB, R_LV, m, A + j, 1, (size_t)lda, B, ldb, N, C + (size_t)j * ldc, ldc, first, pf, pm);
    const bome_real *Aj = A + j;
    bome_real *Cj = C + (size_t)j * ldc;
    switch (M - j) {
#define TN_REST(c)                                                                                                     \
    case c:                                                                                                            \
        if (c < R_JB)                                                                                                  \
            KF(r1_cols)(c < R_JB ? c : 1, R_LV, m, Aj, 1, (size_t)lda, B, ldb, N, Cj, ldc, first, pf, pm);          \
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
static KATTR void KF(ad_gemm_tn)(int m, int M, int N, const bome_real *A, int lda, const bome_real *B, int ldb, bome_real *C,
                                 int ldc, bool first, const bome_real *next, int next_rows)
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
#undef K_RB
#undef K_CV
/* the parameters: each instance defines its own */
#undef KN
#undef KATTR
#undef KFMA
#undef KHSUM
#undef KLOADP
#undef KSTOREP
#undef VW
#undef F_IB
#undef F_JB
#undef N_IB
#undef N_CV
#undef R_JB
#undef R_LV
