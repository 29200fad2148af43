/*
 * tests/test_readme.c: the worked example of bome/ad.h (and README.md): the
 * gradient and a Hessian-vector product of y = sum(exp(x)) + ||x||^2.
 */
#include <criterion/criterion.h>

#include <math.h>

#include "bome/ad.h"

Test(readme, gradient_and_hessian_vector_product)
{
    bome_graph *g = bome_graph_new();
    bome_node *x = bome_param(g, "x", BOME_VECTOR(3));
    bome_node *u = bome_input(g, "u", BOME_VECTOR(3));
    bome_node *y = bome_add(g, bome_sum(g, bome_exp(g, x)), bome_sumsq(g, x));
    bome_node *gx, *hu;
    bome_grad(g, y, 1, &x, &gx);                  /* dy/dx: more nodes */
    bome_grad(g, bome_dot(g, gx, u), 1, &x, &hu); /* H u = d<dy/dx, u>/dx */
    cr_assert_eq(bome_graph_status(g), BOME_OK, "%s", bome_graph_errmsg(g));

    bome_real xv[3] = {0, 1, 2}, uv[3] = {1, 0, 0};
    bome_set(g, x, xv);
    bome_bind(g, u, uv); /* zero-copy: u reads uv */
    bome_node *outs[2] = {gx, hu};
    cr_assert_eq(bome_eval(g, 2, outs), BOME_OK);

    const bome_real *grad = bome_data(gx), *hvp = bome_data(hu);
    for (int i = 0; i < 3; i++) {
        cr_assert_float_eq(grad[i], exp(xv[i]) + 2 * xv[i], 1e-14);     /* exp(x) + 2x */
        cr_assert_float_eq(hvp[i], i == 0 ? exp(0.0) + 2 : 0.0, 1e-14); /* (exp(0) + 2) u */
    }
    bome_graph_free(g);
}
