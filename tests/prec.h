/*
 * tests/prec.h: tolerances in either precision. Every suite is built twice,
 * against libbome (float64) and libbome_f32 (float32). A tolerance is written
 * once, as its float64 figure t, and TOL(t) derives the float32 one: t asks
 * for a share of float64's digits (t = eps64^a), so the float32 build asks for
 * the same share of its own, eps32^a. 1e-12 (a = 0.77) becomes 4.9e-6, 1e-9
 * (a = 0.58) 1.0e-4, 1e-6 (a = 0.38) 2.1e-3; 0 stays 0 (bit-for-bit claims
 * hold in either precision), and in float64 TOL(t) is t.
 */
#ifndef BOME_TESTS_PREC_H
#define BOME_TESTS_PREC_H

#include <math.h>

#include "bome/ad.h"

static inline __attribute__((unused)) double prec_tol(double t)
{
    if (BOME_REAL_BITS == 64 || t <= 0 || t >= 1)
        return t;
    return pow(t, log(BOME_REAL_EPSILON) / log(2.220446049250313e-16));
}

#define TOL(t) prec_tol(t)

#endif
