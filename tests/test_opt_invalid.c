/* tests/test_opt_invalid.c: every invalid option and problem the BOME solver
 * refuses, each with a message; NULL-safety of every handle. The problem is
 * test_opt.c's. */
#include "opt_fixture.h"

/* ---- Invalid input ---------------------------------------------------------------------- */

/* A valid problem on fresh memory; the options are checked before the
 * problem, so each bad option below is the only error. */
static void bad_option(void (*mod)(bome_options *), const char *name)
{
    fctx k = {1, 0};
    bome_real x[NX];
    memcpy(x, X0, sizeof x);
    bome_problem *p = make_problem(x, &k, NULL);
    bome_options o;
    bome_options_default(&o);
    mod(&o);
    bome_solver *s = bome_solver_new(p, &o);
    cr_assert_not_null(s);
    cr_assert_neq(bome_solver_status(s), BOME_OK, "option %s accepted", name);
    cr_assert(strstr(bome_solver_errmsg(s), name) != NULL, "message '%s' does not name %s", bome_solver_errmsg(s),
              name);
    bome_step_stats st;
    cr_assert_neq(bome_solver_step(s, &st), BOME_OK);
    cr_assert_neq(bome_solver_run(s, &st), BOME_OK);
    cr_assert_eq(memcmp(x, X0, sizeof x), 0);
    bome_solver_free(s);
    /* bome_solve copies the error to the problem */
    cr_assert_neq(bome_solve(p, &o, NULL), BOME_OK);
    cr_assert_neq(bome_problem_status(p), BOME_OK);
    cr_assert(strstr(bome_problem_errmsg(p), name) != NULL, "problem message '%s' does not name %s",
              bome_problem_errmsg(p), name);
    bome_problem_free(p);
}

/* The message must name the option as "name =". */
#define BAD(NAME, FIELD, VALUE)                                         \
    static void mod_##NAME(bome_options *o) { o->FIELD = VALUE; }     \
    Test(invalid, option_##NAME) { bad_option(mod_##NAME, #FIELD " ="); }

BAD(T_zero, T, 0)
BAD(T_negative, T, -3)
BAD(alpha_negative, alpha, -0.1)
BAD(alpha_nan, alpha, NAN)
BAD(lr_outer_negative, lr_outer, -1e-3)
BAD(lr_inner_negative, lr_inner, -1e-3)
BAD(lr_outer_inf, lr_outer, INFINITY)
BAD(momentum_one, momentum, 1.0)
BAD(momentum_above_one, momentum, 1.5)
BAD(momentum_negative, momentum, -0.1)
BAD(inner_momentum_one, inner_momentum, 1.0)
BAD(inner_momentum_keep_two, inner_momentum_keep, 2)
BAD(threads_negative, threads, -1)
BAD(method_unknown, method, (bome_method)99)
BAD(threads_too_many, threads, BOME_MAX_THREADS + 1)
BAD(adam_beta1_one, adam_beta1, 1.0)
BAD(adam_beta2_negative, adam_beta2, -0.5)
BAD(adam_eps_negative, adam_eps, -1e-8)
BAD(tol_negative, tol, -1)
BAD(update_bad, update, (bome_update)9)
BAD(max_steps_negative, max_steps, -1)

static void solver_refuses(bome_problem *p, const char *needle)
{
    bome_options o;
    bome_options_default(&o);
    bome_solver *s = bome_solver_new(p, &o);
    cr_assert_not_null(s);
    cr_assert_neq(bome_solver_status(s), BOME_OK, "accepted");
    cr_assert(strstr(bome_solver_errmsg(s), needle) != NULL, "message '%s' lacks '%s'", bome_solver_errmsg(s),
              needle);
    bome_step_stats st;
    cr_assert_neq(bome_solver_step(s, &st), BOME_OK);
    bome_solver_free(s);
    cr_assert_neq(bome_solve(p, &o, NULL), BOME_OK);
    cr_assert(strstr(bome_problem_errmsg(p), needle) != NULL, "problem message '%s' lacks '%s'",
              bome_problem_errmsg(p), needle);
}

Test(invalid, no_outer_variables)
{
    bome_real th[3] = {0};
    bome_problem *p = bome_problem_new();
    bome_problem_add_inner(p, "theta", BOME_VECTOR(3), th);
    bome_problem_set_objectives(p, g_track, g_track, NULL);
    solver_refuses(p, "outer");
    bome_problem_free(p);
}

Test(invalid, no_inner_variables)
{
    bome_real v[3] = {0};
    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_VECTOR(3), v);
    bome_problem_set_objectives(p, g_track, g_track, NULL);
    solver_refuses(p, "inner");
    bome_problem_free(p);
}

Test(invalid, no_objectives)
{
    bome_real x[2] = {0};
    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_SCALAR, x);
    bome_problem_add_inner(p, "theta", BOME_SCALAR, x + 1);
    solver_refuses(p, "objectives");
    bome_problem_free(p);
}

Test(invalid, null_objectives)
{
    bome_real x[2] = {0};
    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_SCALAR, x);
    bome_problem_add_inner(p, "theta", BOME_SCALAR, x + 1);
    cr_assert_neq(bome_problem_set_objectives(p, NULL, g_track, NULL), BOME_OK);
    cr_assert(strstr(bome_problem_errmsg(p), "f") != NULL);
    solver_refuses(p, "f is NULL");
    bome_problem_free(p);
}

Test(invalid, bounds)
{
    bome_real x[2] = {0};
    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_SCALAR, x);
    bome_problem_add_inner(p, "theta", BOME_SCALAR, x + 1);
    bome_problem_set_objectives(p, f_log, g_track, NULL);
    cr_assert_eq(bome_problem_set_bounds(p, BOME_OUTER, 0, -1, -1), BOME_OK); /* lo == hi is a point */
    cr_assert_neq(bome_problem_set_bounds(p, BOME_INNER, 0, 1, 0), BOME_OK);
    cr_assert_neq(bome_problem_status(p), BOME_OK);
    cr_assert(strstr(bome_problem_errmsg(p), "theta") != NULL, "%s", bome_problem_errmsg(p));
    solver_refuses(p, "theta");
    bome_problem_free(p);
}

Test(invalid, bounds_other)
{
    bome_real x[2] = {0};
    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_SCALAR, x);
    cr_assert_neq(bome_problem_set_bounds(p, BOME_INNER, 0, 0, 1), BOME_OK); /* no inner variable 0 */
    bome_problem_free(p);
    p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_SCALAR, x);
    cr_assert_neq(bome_problem_set_bounds(p, 2, 0, 0, 1), BOME_OK);
    bome_problem_free(p);
    p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_SCALAR, x);
    cr_assert_neq(bome_problem_set_bounds(p, BOME_OUTER, 0, NAN, 1), BOME_OK);
    bome_problem_free(p);
}

Test(invalid, null_values)
{
    bome_problem *p = bome_problem_new();
    cr_assert_eq(bome_problem_add_outer(p, "v", BOME_SCALAR, NULL), -1);
    cr_assert_neq(bome_problem_status(p), BOME_OK);
    cr_assert(strstr(bome_problem_errmsg(p), "NULL") != NULL, "%s", bome_problem_errmsg(p));
    bome_problem_free(p);
    p = bome_problem_new();
    cr_assert_eq(bome_problem_add_inner(p, "theta", BOME_SCALAR, NULL), -1);
    cr_assert_neq(bome_problem_status(p), BOME_OK);
    bome_problem_free(p);
    p = bome_problem_new();
    cr_assert_eq(bome_problem_add_input(p, "in", BOME_SCALAR, NULL), -1);
    cr_assert_neq(bome_problem_status(p), BOME_OK);
    bome_problem_free(p);
    p = bome_problem_new();
    cr_assert_eq(bome_problem_add_labels(p, "l", 3, NULL), -1);
    cr_assert_neq(bome_problem_status(p), BOME_OK);
    bome_problem_free(p);
}

Test(invalid, shapes)
{
    static const bome_shape bad[] = {
        {1, 1, 0}, {1, 2, 3}, {2, 0, 3}, {2, 3, 0}, {0, 2, 1}, {3, 1, 1}, {-1, 1, 1}, {1, 1, -4},
    };
    bome_real x[8] = {0};
    int32_t lab[2] = {0, 1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bome_problem *p = bome_problem_new();
        cr_assert_eq(bome_problem_add_outer(p, "v", bad[i], x), -1, "shape %zu accepted", i);
        cr_assert_eq(bome_problem_status(p), BOME_ERR_SHAPE);
        cr_assert(strstr(bome_problem_errmsg(p), "shape") != NULL, "%s", bome_problem_errmsg(p));
        bome_problem_free(p);
        p = bome_problem_new();
        cr_assert_eq(bome_problem_add_inner(p, "t", bad[i], x), -1);
        cr_assert_eq(bome_problem_status(p), BOME_ERR_SHAPE);
        bome_problem_free(p);
        p = bome_problem_new();
        cr_assert_eq(bome_problem_add_input(p, "d", bad[i], x), -1);
        cr_assert_eq(bome_problem_status(p), BOME_ERR_SHAPE);
        bome_problem_free(p);
    }
    bome_problem *p = bome_problem_new();
    cr_assert_eq(bome_problem_add_labels(p, "l", 0, lab), -1);
    cr_assert_neq(bome_problem_status(p), BOME_OK);
    bome_problem_free(p);
}

static bome_node *f_null(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)G;
    (void)x;
    (void)ctx;
    return NULL;
}

static bome_node *f_vector(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    return bome_square(G, x->theta[0]);
}

static bome_node *f_bad_shape(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    return bome_sum(G, bome_add(G, x->theta[0], bome_const(G, BOME_VECTOR(2), NULL)));
}

static bome_node *g_quad(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    return bome_add(G, bome_sumsq(G, x->theta[0]), bome_sumsq(G, x->v[0]));
}

static bome_problem *builder_problem(bome_real *x, bome_objective_fn f, bome_objective_fn g)
{
    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_VECTOR(3), x);
    bome_problem_add_inner(p, "theta", BOME_VECTOR(3), x + 3);
    bome_problem_set_objectives(p, f, g, NULL);
    cr_assert_eq(bome_problem_status(p), BOME_OK);
    return p;
}

Test(invalid, builder_returns_null)
{
    bome_real x[6] = {0};
    bome_problem *p = builder_problem(x, f_null, g_quad);
    solver_refuses(p, "NULL");
    bome_problem_free(p);
    p = builder_problem(x, g_quad, f_null);
    solver_refuses(p, "NULL");
    bome_problem_free(p);
}

Test(invalid, builder_returns_non_scalar)
{
    bome_real x[6] = {0};
    bome_problem *p = builder_problem(x, f_vector, g_quad);
    bome_options o;
    bome_options_default(&o);
    bome_solver *s = bome_solver_new(p, &o);
    cr_assert_eq(bome_solver_status(s), BOME_ERR_SHAPE, "%s", bome_solver_errmsg(s));
    cr_assert(strstr(bome_solver_errmsg(s), "scalar") != NULL, "%s", bome_solver_errmsg(s));
    bome_solver_free(s);
    bome_problem_free(p);
    p = builder_problem(x, g_quad, f_vector);
    solver_refuses(p, "scalar");
    bome_problem_free(p);
}

Test(invalid, builder_shape_error_carries_the_graph_message)
{
    /* The same faulty expression on a graph of our own gives the message. */
    bome_graph *G = bome_graph_new();
    bome_node *th = bome_param(G, "theta", BOME_VECTOR(3));
    bome_add(G, th, bome_const(G, BOME_VECTOR(2), NULL));
    cr_assert_eq(bome_graph_status(G), BOME_ERR_SHAPE);
    char want[512];
    snprintf(want, sizeof want, "%s", bome_graph_errmsg(G));
    cr_assert_gt(strlen(want), 0);
    bome_graph_free(G);

    bome_real x[6] = {0};
    bome_problem *p = builder_problem(x, f_bad_shape, g_quad);
    bome_options o;
    bome_options_default(&o);
    bome_solver *s = bome_solver_new(p, &o);
    cr_assert_eq(bome_solver_status(s), BOME_ERR_SHAPE, "%s", bome_solver_errmsg(s));
    cr_assert(strstr(bome_solver_errmsg(s), want) != NULL, "'%s' lacks '%s'", bome_solver_errmsg(s), want);
    bome_solver_free(s);
    cr_assert_eq(bome_solve(p, &o, NULL), BOME_ERR_SHAPE);
    cr_assert(strstr(bome_problem_errmsg(p), want) != NULL, "'%s' lacks '%s'", bome_problem_errmsg(p), want);
    bome_problem_free(p);
    p = builder_problem(x, g_quad, f_bad_shape);
    solver_refuses(p, want);
    bome_problem_free(p);
}

Test(invalid, null_safety)
{
    bome_solver_free(NULL);
    bome_problem_free(NULL);
    bome_options_default(NULL);
    cr_assert_neq(bome_solver_status(NULL), BOME_OK);
    cr_assert_not_null(bome_solver_errmsg(NULL));
    cr_assert_neq(bome_problem_status(NULL), BOME_OK);
    cr_assert_not_null(bome_problem_errmsg(NULL));
    cr_assert_eq(bome_solver_steps(NULL), 0);
    cr_assert_null(bome_solver_graph(NULL));
    bome_step_stats st;
    cr_assert_eq(bome_solver_step(NULL, &st), BOME_ERR_ARG);
    cr_assert_eq(bome_solver_run(NULL, &st), BOME_ERR_ARG);
    bome_options o;
    bome_options_default(&o);
    cr_assert_eq(bome_solve(NULL, &o, &st), BOME_ERR_ARG);
    bome_real x[2] = {0};
    int32_t lab[1] = {0};
    cr_assert_eq(bome_problem_add_outer(NULL, "v", BOME_SCALAR, x), -1);
    cr_assert_eq(bome_problem_add_inner(NULL, "t", BOME_SCALAR, x), -1);
    cr_assert_eq(bome_problem_add_input(NULL, "d", BOME_SCALAR, x), -1);
    cr_assert_eq(bome_problem_add_labels(NULL, "l", 1, lab), -1);
    cr_assert_neq(bome_problem_set_bounds(NULL, BOME_OUTER, 0, 0, 1), BOME_OK);
    cr_assert_neq(bome_problem_set_objectives(NULL, g_track, g_track, NULL), BOME_OK);

    bome_solver *s = bome_solver_new(NULL, &o);
    cr_assert_not_null(s);
    cr_assert_eq(bome_solver_status(s), BOME_ERR_ARG);
    cr_assert(strstr(bome_solver_errmsg(s), "problem") != NULL);
    cr_assert_neq(bome_solver_step(s, &st), BOME_OK);
    bome_solver_free(s);

    bome_problem *p = bome_problem_new();
    bome_problem_add_outer(p, "v", BOME_SCALAR, x);
    bome_problem_add_inner(p, "theta", BOME_SCALAR, x + 1);
    bome_problem_set_objectives(p, f_log, g_track, NULL);
    s = bome_solver_new(p, NULL);
    cr_assert_not_null(s);
    cr_assert_eq(bome_solver_status(s), BOME_ERR_ARG);
    cr_assert(strstr(bome_solver_errmsg(s), "options") != NULL);
    bome_solver_free(s);
    cr_assert_eq(bome_solve(p, NULL, NULL), BOME_ERR_ARG);
    cr_assert(strstr(bome_problem_errmsg(p), "options") != NULL);
    bome_problem_free(p);
}


/* A method's own settings are refused by name, and garbage in their slots
 * (options not from bome_options_default) by the solver, naming the setting. */
static void params_nan(bome_options *o)
{
    for (int i = 0; i < BOME_OPTION_SLOTS; i++)
        o->param[i] = NAN;
}
Test(invalid, option_method_setting_garbage) { bad_option(params_nan, "eta ="); }

Test(invalid, options_set_refuses)
{
    bome_options o;
    bome_options_default(&o);
    double eta = 0;
    cr_expect_eq(bome_options_set(&o, "eta", -0.5), BOME_ERR_ARG);
    cr_expect_eq(bome_options_set(&o, "no_such_setting", 1), BOME_ERR_ARG);
    cr_expect_eq(bome_options_set(&o, "T", 2.5), BOME_ERR_ARG, "a fraction for a whole number");
    cr_expect_eq(bome_options_set(&o, "momentum", 1.0), BOME_ERR_ARG, "momentum's range is [0, 1)");
    cr_expect_eq(bome_options_set(&o, "phi", 2), BOME_ERR_ARG, "phi has two choices");
    cr_expect_eq(bome_options_set(NULL, "eta", 1), BOME_ERR_ARG);
    cr_expect_eq(bome_options_get(&o, "eta", &eta), BOME_OK);
    cr_expect_eq(eta, 0.5, "unchanged by the refusals: %g", eta);
    cr_expect_eq(bome_options_get(&o, "nope", &eta), BOME_ERR_ARG);
    char msg[128];
    cr_expect_eq(bome_options_check(&o, msg, sizeof msg), BOME_OK, "%s", msg);
    o.T = 0;
    cr_expect_eq(bome_options_check(&o, msg, sizeof msg), BOME_ERR_ARG);
    cr_expect(strstr(msg, "T = 0"), "%s", msg);
    cr_expect_eq(bome_options_check(NULL, NULL, 0), BOME_ERR_ARG);
}
