/*
 * tests/test_hardening.c: inputs that used to get through unchecked (issue
 * 12). Shapes whose byte count wraps around or that no node may hold.
 */
#include <criterion/criterion.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bome/ad.h"

static bome_graph *g, *h;

/* The C library's allocator, refusing blocks over *ud bytes: a request for
 * gigabytes fails at once instead of swapping. */
static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return nsize > *(const size_t *)ud ? NULL : realloc(ptr, nsize);
}

static size_t cap = (size_t)64 << 20;

static void setup(void)
{
    g = bome_graph_new_alloc(capped_alloc, &cap);
    h = bome_graph_new_alloc(capped_alloc, &cap);
    cr_assert(g && h);
}

static void teardown(void)
{
    bome_graph_free(g);
    bome_graph_free(h);
}

/* The call failed, g holds code and its message each of the strings that
 * follow (up to NULL); then g's error is cleared. */
static void expect_(int line, bool failed, int code, ...)
{
    const char *msg = bome_graph_errmsg(g);
    cr_assert(failed, "line %d: the call succeeded (status %d, message '%s')", line, bome_graph_status(g), msg);
    cr_assert_eq(bome_graph_status(g), code, "line %d: status %d, expected %d; message '%s'", line,
                 bome_graph_status(g), code, msg);
    va_list ap;
    va_start(ap, code);
    for (const char *want; (want = va_arg(ap, const char *));)
        cr_assert_not_null(strstr(msg, want), "line %d: message '%s' lacks '%s'", line, msg, want);
    va_end(ap);
    bome_graph_clear_error(g);
}

#define EXPECT(failed, code, ...) expect_(__LINE__, (failed), (code), __VA_ARGS__, (const char *)NULL)

/* ---- sizes ------------------------------------------------------------------ */

TestSuite(sizes, .init = setup, .fini = teardown);

/* 1519111591 x 1517889155 doubles: the byte count wraps around 2^64 to
 * 13224, which the allocator gladly gives. */
#define WRAP_R 1519111591
#define WRAP_C 1517889155

Test(sizes, byte_count_that_wraps)
{
    EXPECT(!bome_param(g, "w", BOME_MATRIX(WRAP_R, WRAP_C)), BOME_ERR_ARG, "param 'w'",
           "matrix(1519111591x1517889155)", "too large");
    EXPECT(!bome_input(g, "X", BOME_MATRIX(WRAP_C, WRAP_R)), BOME_ERR_ARG, "input 'X'",
           "matrix(1517889155x1519111591)");
    EXPECT(!bome_const(g, BOME_MATRIX(WRAP_R, WRAP_C), NULL), BOME_ERR_ARG, "const", "too large");
    cr_assert_eq(bome_graph_size(g), 0, "a refused node stays off the tape");
    /* Negative dimensions were refused already; their product is positive. */
    EXPECT(!bome_param(g, "n", BOME_MATRIX(-WRAP_R, -WRAP_C)), BOME_ERR_SHAPE, "param 'n'", "invalid shape");
    EXPECT(!bome_input(g, "v", BOME_VECTOR(-3)), BOME_ERR_SHAPE, "invalid shape");
    EXPECT(!bome_labels(g, "l", -3), BOME_ERR_SHAPE, "invalid shape");
    bome_node *x = bome_param(g, "x", BOME_VECTOR(6));
    EXPECT(!bome_reshape(g, x, BOME_MATRIX(-2, -3)), BOME_ERR_SHAPE, "reshape", "invalid shape");
}

/* Small nodes whose result would exceed what a node holds (INT_MAX
 * elements): refused before anything is allocated. */
Test(sizes, op_result_too_large)
{
    bome_node *col = bome_param(g, "c", BOME_MATRIX(50000, 1)), *row = bome_param(g, "r", BOME_MATRIX(1, 50000));
    bome_node *v = bome_param(g, "v", BOME_VECTOR(50000)), *idx = bome_labels(g, "idx", 50000);
    cr_assert_eq(bome_graph_status(g), BOME_OK, "%s", bome_graph_errmsg(g));
    EXPECT(!bome_matmul(g, col, 0, row, 0), BOME_ERR_ARG, "matmul", "matrix(50000x50000)", "too large");
    EXPECT(!bome_matmul(g, row, 1, col, 1), BOME_ERR_ARG, "matmul", "matrix(50000x50000)");
    EXPECT(!bome_add(g, col, v), BOME_ERR_ARG, "add", "matrix(50000x50000)");
    EXPECT(!bome_mul(g, row, col), BOME_ERR_ARG, "mul", "matrix(50000x50000)");
    EXPECT(!bome_gather_rows(g, row, idx), BOME_ERR_ARG, "gather_rows", "matrix(50000x50000)");
}

/* A node that may exist but that the allocator will not give: out of
 * memory, for what and how much. */
Test(sizes, out_of_memory_names_op_and_shape)
{
    bome_node *col = bome_param(g, "c", BOME_MATRIX(4000, 1)), *row = bome_param(g, "r", BOME_MATRIX(1, 4000));
    EXPECT(!bome_matmul(g, col, 0, row, 0), BOME_ERR_NOMEM, "matmul: out of memory for matrix(4000x4000)",
           "128000000 bytes");
    EXPECT(!bome_param(g, "big", BOME_MATRIX(4000, 4000)), BOME_ERR_NOMEM, "param 'big': out of memory");
}
