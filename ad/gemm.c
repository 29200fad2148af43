/*
 * Small GEMM kernels of the engine's own, for the row-tiled stage's narrow
 * products (tile.c): per block of rows, Z = X W^T with a few output columns
 * and the reduction dW += dZ^T X. With ten output columns BLAS spends most of
 * its time outside the multiply-adds (packing X into its panel format, call
 * set-up for a 64-row block); these kernels read each row of X straight into
 * register tiles instead, so the block's dot products and its dW
 * contribution run at close to the machine's multiply-add rate.
 *
 * The kernels are compiled once per instruction set (gemm_kern.h) and chosen
 * at run time by what the CPU has: AVX-512, or AVX2 with FMA; on other CPUs
 * the products stay with CBLAS.
 */
#include "internal.h"

#include <cblas.h>
#include <stddef.h>

/* Rows per block inside the TN kernel (see ad_gemm_tn in gemm_kern.h). */
enum { TN_ROWS = 64 };

/* x86 with GCC's or Clang's vector extensions and target attributes; other
 * targets send every product to CBLAS. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define AD_HAVE_KERNELS 1
#include <immintrin.h>
#endif

#ifdef AD_HAVE_KERNELS
#ifndef BOME_FLOAT32
static inline __attribute__((always_inline, target("avx2,fma"))) double hsum_avx2(__m256d v)
{
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}

/* Lanes below n set: AVX2's masked loads and stores. */
static inline __attribute__((always_inline, target("avx2,fma"))) __m256i mask_avx2(int n)
{
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
}

#define AVX2_FMA _mm256_fmadd_pd
#define AVX2_LOADP _mm256_maskload_pd
#define AVX2_STOREP _mm256_maskstore_pd
#define AVX512_FMA _mm512_fmadd_pd
#define AVX512_HSUM _mm512_reduce_add_pd
#define AVX512_LOADP(p, n) _mm512_maskz_loadu_pd((__mmask8)((1u << (n)) - 1), p)
#define AVX512_STOREP(p, v, n) _mm512_mask_storeu_pd(p, (__mmask8)((1u << (n)) - 1), v)
#else
/* Single precision: twice the lanes per register, the same tiles. */
static inline __attribute__((always_inline, target("avx2,fma"))) float hsum_avx2(__m256 v)
{
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_shuffle_ps(h, h, 1)));
}

static inline __attribute__((always_inline, target("avx2,fma"))) __m256i mask_avx2(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

#define AVX2_FMA _mm256_fmadd_ps
#define AVX2_LOADP _mm256_maskload_ps
#define AVX2_STOREP _mm256_maskstore_ps
#define AVX512_FMA _mm512_fmadd_ps
#define AVX512_HSUM _mm512_reduce_add_ps
#define AVX512_LOADP(p, n) _mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1), p)
#define AVX512_STOREP(p, v, n) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (n)) - 1), v)
#endif

/* AVX2 and FMA: 16 registers of 32 bytes; tiles of 8 to 10 accumulators. */
#define KN _avx2
#define KATTR __attribute__((target("avx2,fma")))
#define KFMA(a, b, c) AVX2_FMA(a, b, c)
#define KHSUM(v) hsum_avx2(v)
#define KLOADP(p, n) AVX2_LOADP(p, mask_avx2(n))
#define KSTOREP(p, v, n) AVX2_STOREP(p, mask_avx2(n), v)
#define VW (32 / (int)sizeof(bome_real))
#define F_IB 3
#define F_JB 3
#define N_IB 4
#define N_CV 2
#define R_JB 5
#define R_LV 2
#include "gemm_kern.h"

/* AVX-512: 32 registers of 64 bytes; tiles of 16 to 20 accumulators. */
#define KN _avx512
#define KATTR __attribute__((target("avx512f,avx2,fma")))
#define KFMA(a, b, c) AVX512_FMA(a, b, c)
#define KHSUM(v) AVX512_HSUM(v)
#define KLOADP(p, n) AVX512_LOADP(p, n)
#define KSTOREP(p, v, n) AVX512_STOREP(p, v, n)
#define VW (64 / (int)sizeof(bome_real))
#define F_IB 4
#define F_JB 5
#define N_IB 4
#define N_CV 4
#define R_JB 10
#define R_LV 2
#include "gemm_kern.h"
#endif /* AD_HAVE_KERNELS */

/* -1: the best set the CPU has; else what ad_kernel_set forced. */
static int forced = -1;

static bool cpu_has(int k)
{
    switch (k) {
    case AD_KERNEL_BLAS:
        return true;
#ifdef AD_HAVE_KERNELS
    case AD_KERNEL_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case AD_KERNEL_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    default:
        return false;
    }
}

/* Without AVX2 the automatic choice is BLAS: 16-byte vectors without FMA ran
 * slower than OpenBLAS on every product measured (bench/bench_gemm.c). */
int ad_kernel_get(void)
{
    if (forced >= 0)
        return forced;
    return cpu_has(AD_KERNEL_AVX512) ? AD_KERNEL_AVX512 : cpu_has(AD_KERNEL_AVX2) ? AD_KERNEL_AVX2 : AD_KERNEL_BLAS;
}

/* Where each set beats CBLAS (bench_gemm, one gradient's two products per
 * 64-row block, 50 000 x 784): AVX-512 at every width up to the width rule;
 * AVX2 up to 24 outputs (1.07x at 16 and 24, 0.95x at 32: its 16 registers
 * hold too small a TN tile to keep up with OpenBLAS's wider products). */
int ad_kernel_width(void)
{
    switch (ad_kernel_get()) {
    case AD_KERNEL_AVX512:
        return AD_NARROW_MAX;
    case AD_KERNEL_AVX2:
        return 24;
    default:
        return 0;
    }
}

bool ad_kernel_set(int k)
{
    if (k < 0) {
        forced = -1;
        return true;
    }
    if (!cpu_has(k))
        return false;
    forced = k;
    return true;
}

const char *ad_kernel_name(int k)
{
    static const char *const names[] = {"blas", "avx2", "avx512"};
    return k >= 0 && k <= AD_KERNEL_AVX512 ? names[k] : "?";
}

void ad_gemm_nt(int m, int N, int K, const bome_real *A, int lda, const bome_real *B, int ldb, bome_real *C, int ldc,
                const bome_real *next, int next_rows)
{
    switch (ad_kernel_get()) {
#ifdef AD_HAVE_KERNELS
    case AD_KERNEL_AVX512:
        ad_gemm_nt_avx512(m, N, K, A, lda, B, ldb, C, ldc, next, next_rows);
        break;
    case AD_KERNEL_AVX2:
        ad_gemm_nt_avx2(m, N, K, A, lda, B, ldb, C, ldc, next, next_rows);
        break;
#endif
    default:
        (void)next, (void)next_rows;
        ad_cblas_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, N, K, 1.0, A, lda, B, ldb, 0.0, C, ldc);
        break;
    }
}

void ad_gemm_nn(int m, int N, int K, const bome_real *A, int lda, const bome_real *B, int ldb, bome_real *C, int ldc)
{
    switch (ad_kernel_get()) {
#ifdef AD_HAVE_KERNELS
    case AD_KERNEL_AVX512:
        ad_gemm_nn_avx512(m, N, K, A, lda, B, ldb, C, ldc);
        break;
    case AD_KERNEL_AVX2:
        ad_gemm_nn_avx2(m, N, K, A, lda, B, ldb, C, ldc);
        break;
#endif
    default:
        ad_cblas_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, N, K, 1.0, A, lda, B, ldb, 0.0, C, ldc);
        break;
    }
}

void ad_gemm_tn(int m, int M, int N, const bome_real *A, int lda, const bome_real *B, int ldb, bome_real *C, int ldc,
                bool first, const bome_real *next, int next_rows)
{
    switch (ad_kernel_get()) {
#ifdef AD_HAVE_KERNELS
    case AD_KERNEL_AVX512:
        ad_gemm_tn_avx512(m, M, N, A, lda, B, ldb, C, ldc, first, next, next_rows);
        break;
    case AD_KERNEL_AVX2:
        ad_gemm_tn_avx2(m, M, N, A, lda, B, ldb, C, ldc, first, next, next_rows);
        break;
#endif
    default:
        (void)next, (void)next_rows;
        ad_cblas_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, M, N, m, 1.0, A, lda, B, ldb, first ? 0.0 : 1.0, C,
                    ldc);
        break;
    }
}
