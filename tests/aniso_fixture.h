/* The anisotropic quadratic the rival tests solve by hand (test_rivals.c,
 * test_rivals1.c, test_rivals2.c): g(v, th) = 1/2 sum a_i (th_i - v_i)^2 +
 * c/2 |th|^2, so H = diag(a + c) with three distinct eigenvalues and
 * d2g/dv dth = -diag(a); each file pairs it with its own f. */
#ifndef TEST_ANISO_FIXTURE_H
#define TEST_ANISO_FIXTURE_H

#include <bome/opt.h>

enum { N = 3 };
static const __attribute__((unused)) double C = 0.5;
static const __attribute__((unused)) bome_real Y[N] = {0.4, -1.2, 2.0}, A[N] = {1, 2, 4};
/* bome_real, like the variables they start (memcpy'd into them) */
static const __attribute__((unused)) bome_real V0[N] = {0.3, 0.1, -0.2}, TH0[N] = {1.0, -0.5, 0.25};

static inline bome_node *g_aniso(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_node *a = bome_const(G, BOME_VECTOR(N), A);
    bome_node *d = bome_sub(G, x->theta[0], x->v[0]);
    bome_node *fit = bome_scale(G, bome_sum(G, bome_mul(G, a, bome_mul(G, d, d))), 0.5);
    return bome_add(G, fit, bome_scale(G, bome_sumsq(G, x->theta[0]), 0.5 * C));
}

#endif
