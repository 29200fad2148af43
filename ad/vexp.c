/*
 * exp over an array, vectorized: the exponentials of softmax cross-entropy
 * (ops_learning.c). Per row of ten logits libm's exp, one call per element,
 * cost the row-tiled hyper-cleaning gradient as much time as a third of its
 * products; here eight (AVX-512) or four (AVX2) at a time.
 *
 * exp(x) = 2^n exp(r), n = round(x / ln 2), r = x - n ln 2 in two FMA steps
 * (|r| <= ln 2 / 2), exp(r) by its Taylor series to degree 13 (truncation
 * below 2e-17 relative) in Horner form: within about 1 ulp of the true value,
 * as libm's. A vector with an element below -708 (results near or under the
 * smallest normal), an infinity or a NaN goes element by element to libm, so
 * those keep libm's results exactly.
 */
#include "internal.h"

#include <math.h>
#include <stddef.h>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define AD_HAVE_KERNELS 1
#include <immintrin.h>
#endif

/* 1/k! for k = 0 .. 13 */
#define EXP_COEFFS                                                                                                     \
    1.0, 1.0, 0.5, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320, 1.0 / 362880, 1.0 / 3628800,     \
        1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800.0

static const double exp_c[14] = {EXP_COEFFS};
static const double LOG2E = 0x1.71547652b82fep0, LN2_HI = 0x1.62e42fefa39efp-1, LN2_LO = 0x1.abc9e3b39803fp-56;
/* Below this, 2^n is no longer a normal number. */
static const double EXP_LO = -708.0;

static void exp_libm(double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = exp(x[i]);
}

#ifdef AD_HAVE_KERNELS
__attribute__((target("avx512f"))) static void exp_avx512(double *x, size_t n)
{
    const __m512d lo = _mm512_set1_pd(EXP_LO), hi = _mm512_set1_pd(709.0), l2e = _mm512_set1_pd(LOG2E),
                  ln2h = _mm512_set1_pd(LN2_HI), ln2l = _mm512_set1_pd(LN2_LO);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m512d v = _mm512_loadu_pd(x + i);
        /* every element in [lo, hi]: false for NaN too */
        __mmask8 ok = _mm512_cmp_pd_mask(v, lo, _CMP_GE_OQ) & _mm512_cmp_pd_mask(v, hi, _CMP_LE_OQ);
        if (ok != 0xff) {
            exp_libm(x + i, 8);
            continue;
        }
        __m512d k = _mm512_roundscale_pd(_mm512_mul_pd(v, l2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m512d r = _mm512_fnmadd_pd(k, ln2h, v);
        r = _mm512_fnmadd_pd(k, ln2l, r);
        __m512d p = _mm512_set1_pd(exp_c[13]);
        for (int c = 12; c >= 0; c--)
            p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(exp_c[c]));
        _mm512_storeu_pd(x + i, _mm512_scalef_pd(p, k));
    }
    exp_libm(x + i, n - i);
}

__attribute__((target("avx2,fma"))) static void exp_avx2(double *x, size_t n)
{
    const __m256d lo = _mm256_set1_pd(EXP_LO), hi = _mm256_set1_pd(709.0), l2e = _mm256_set1_pd(LOG2E),
                  ln2h = _mm256_set1_pd(LN2_HI), ln2l = _mm256_set1_pd(LN2_LO),
                  /* 2^52 + 2^51 + 1023: adding it to an integral k leaves k + 1023 in the low bits */
        magic = _mm256_set1_pd(0x1.8p52 + 1023.0);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256d v = _mm256_loadu_pd(x + i);
        __m256d in = _mm256_and_pd(_mm256_cmp_pd(v, lo, _CMP_GE_OQ), _mm256_cmp_pd(v, hi, _CMP_LE_OQ));
        if (_mm256_movemask_pd(in) != 0xf) {
            exp_libm(x + i, 4);
            continue;
        }
        __m256d k = _mm256_round_pd(_mm256_mul_pd(v, l2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256d r = _mm256_fnmadd_pd(k, ln2h, v);
        r = _mm256_fnmadd_pd(k, ln2l, r);
        __m256d p = _mm256_set1_pd(exp_c[13]);
        for (int c = 12; c >= 0; c--)
            p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(exp_c[c]));
        /* 2^k: k + 1023 moved into the exponent field */
        __m256i e = _mm256_slli_epi64(_mm256_castpd_si256(_mm256_add_pd(k, magic)), 52);
        _mm256_storeu_pd(x + i, _mm256_mul_pd(p, _mm256_castsi256_pd(e)));
    }
    exp_libm(x + i, n - i);
}
#endif

static void exp_double(double *x, size_t n)
{
    switch (ad_kernel_get()) {
#ifdef AD_HAVE_KERNELS
    case AD_KERNEL_AVX512:
        exp_avx512(x, n);
        break;
    case AD_KERNEL_AVX2:
        exp_avx2(x, n);
        break;
#endif
    default:
        exp_libm(x, n);
        break;
    }
}

#ifdef BOME_FLOAT32
/* tanh for float32 from the double exp kernels: tanh|x| = 1 - 2 / (e^2|x| + 1)
 * in double, whose cancellation for small |x| costs at most 1e-16 / |x|
 * relative, far below float's rounding for |x| >= 2^-12; below that, x - x^3/3
 * is tanh to float's precision. libm's tanhf (through expm1f) took a quarter
 * of the 784-300-10 network's float32 step. */
void ad_tanh_array(const bome_real *x, bome_real *y, size_t n)
{
    double buf[256];
    for (size_t i = 0; i < n; i += 256) {
        size_t m = n - i < 256 ? n - i : 256;
        for (size_t k = 0; k < m; k++)
            buf[k] = 2.0 * fabs((double)x[i + k]);
        exp_double(buf, m);
        for (size_t k = 0; k < m; k++) {
            double v = x[i + k], a = fabs(v), t = a < 0x1p-12 ? a - a * a * a / 3 : 1.0 - 2.0 / (buf[k] + 1.0);
            y[i + k] = (bome_real)(signbit(v) ? -t : t); /* -0 stays -0, NaN NaN */
        }
    }
}

/* Single precision goes through the double kernels a chunk at a time: the
 * result is exp rounded once to float, and the conversions vectorize. */
void ad_exp_inplace(bome_real *x, size_t n)
{
    double buf[256];
    for (size_t i = 0; i < n; i += 256) {
        size_t m = n - i < 256 ? n - i : 256;
        for (size_t k = 0; k < m; k++)
            buf[k] = x[i + k];
        exp_double(buf, m);
        for (size_t k = 0; k < m; k++)
            x[i + k] = (bome_real)buf[k];
    }
}
#else
void ad_exp_inplace(bome_real *x, size_t n)
{
    exp_double(x, n);
}

void ad_tanh_array(const bome_real *x, bome_real *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = tanh(x[i]);
}
#endif
