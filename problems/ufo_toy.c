/* UFO-BLO's toy (Likhosherstov et al., toy/toy.py of the authors' code):
 * meta-learning in 1-D with two tasks drawn with equal probability, inner
 * and outer loss alike f_i(theta) = a_i h(|theta - b_i / a_i|), h quadratic
 * in a window of half-width A, then cubic, then linear so that gradients
 * stay bounded. theta_0 = phi, r = T plain steps, SGD on phi with step
 * 10 / (k + 1). In the window theta_r - c = rho^r (phi - c), rho = 1 -
 * alpha a, which gives closed forms for FO-BLO's fixed point and for the
 * stationary point of M(phi) = E f_i(theta_r): FO-BLO stops where M' != 0. */
#include "cases.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { A1, B1, A2, B2, WINDOW };

static const prob_param params[] = {
    {.name = "a1", .def = 0.5, .help = "task 1's curvature"},
    {.name = "b1", .def = 0, .help = "task 1's linear term (its minimum is at b1 / a1)"},
    {.name = "a2", .def = 1.5, .help = "task 2's curvature"},
    {.name = "b2", .def = 10, .help = "task 2's linear term"},
    {.name = "window", .def = 400, .help = "A: the half-width of the quadratic window"},
};

typedef struct state {
    bome_real phi[1], theta[1];
    bome_real a[1], c[1];        /* the drawn task, bound as data */
    double task_a[2], task_c[2], window;
} state;

/* a h(z): z1 = min(z, A), z2 = clamp(z - A, 0, 1), z3 = max(z - A - 1, 0). */
static bome_node *loss(bome_graph *g, const bome_vars *x, void *ctx)
{
    const state *s = ctx;
    double A = s->window;
    bome_node *z = bome_abs(g, bome_sub(g, x->theta[0], x->data[1]));
    bome_node *z1 = bome_clamp(g, z, 0, A);
    bome_node *z2 = bome_clamp(g, bome_add_scalar(g, z, -A), 0, 1);
    bome_node *z3 = bome_relu(g, bome_add_scalar(g, z, -A - 1));
    bome_node *h = bome_scale(g, bome_square(g, z1), 0.5);
    h = bome_add(g, h, bome_scale(g, z2, A));
    h = bome_add(g, h, bome_scale(g, bome_square(g, z2), 0.5));
    h = bome_sub(g, h, bome_scale(g, bome_pow(g, z2, 3), 1.0 / 6));
    h = bome_add(g, h, bome_scale(g, z3, A + 0.5));
    /* every worker of a data-parallel run draws the same task: counted once */
    return bome_once(g, bome_sum(g, bome_mul(g, x->data[0], h)));
}

static int draw(void *ud, bome_rng *rng, long step, int task)
{
    (void)step;
    (void)task;
    state *s = ud;
    int i = (int)bome_rng_below(rng, 2);
    s->a[0] = s->task_a[i];
    s->c[0] = s->task_c[i];
    return 0;
}

static void defaults(bome_options *o)
{
    bome_options_default(o);
    o->method = BOME_METHOD_UFO_BLO;
    o->T = 10;
    o->alpha = 0.1;
    o->lr_outer = 10;
    o->lr_decay = 1;
    o->max_steps = 10000;
}

/* starts -10, 0, 10, 20, 30: the authors draw them uniformly in [-10, 30] */
static int create(prob_run *r, int start, uint64_t seed, char *err, size_t errlen)
{
    (void)seed;
    state *s = calloc(1, sizeof *s);
    if (!s)
        return BOME_ERR_NOMEM;
    for (int i = 0; i < 2; i++) {
        s->task_a[i] = prob_real(&prob_ufo_toy, r, i ? A2 : A1);
        s->task_c[i] = prob_real(&prob_ufo_toy, r, i ? B2 : B1) / s->task_a[i];
    }
    s->window = prob_real(&prob_ufo_toy, r, WINDOW);
    if (!(s->task_a[0] > 0 && s->task_a[1] > 0 && s->window > 0)) {
        snprintf(err, errlen, "a1, a2 and window must be > 0");
        free(s);
        return BOME_ERR_ARG;
    }
    s->phi[0] = s->theta[0] = -10 + 10 * start;
    int rc = prob_toy(r, s, "phi", BOME_SCALAR, s->phi, "theta", BOME_SCALAR, s->theta, loss, loss);
    bome_problem *p = r->problem;
    bome_problem_set_objectives(p, loss, loss, s);
    bome_problem_add_input(p, "a", BOME_SCALAR, s->a);
    bome_problem_add_input(p, "c", BOME_SCALAR, s->c);
    bome_problem_set_inner_start(p, 0, 0);
    bome_problem_set_tasks(p, 1, draw, s);
    return rc ? rc : bome_problem_status(p);
}

double prob_ufo_toy_answer(const prob_run *r, int first_order, int steps, double alpha)
{
    const state *s = r->state;
    double num = 0, den = 0;
    for (int i = 0; i < 2; i++) {
        double rho_r = pow(1 - alpha * s->task_a[i], steps);
        /* FO-BLO: E a rho^r (phi - c) = 0; M': E a rho^2r (phi - c) = 0 */
        double w = s->task_a[i] * (first_order ? rho_r : rho_r * rho_r);
        num += w * s->task_c[i];
        den += w;
    }
    return num / den;
}

static double error(const prob_run *r)
{
    const state *s = r->state;
    bome_options d;
    defaults(&d);
    const bome_options *o = r->o ? r->o : &d;
    return fabs(s->phi[0] - prob_ufo_toy_answer(r, o->method == BOME_METHOD_FO_BLO, o->T, o->alpha));
}

const prob_case prob_ufo_toy = {
    .name = "ufo-toy",
    .summary = "UFO-BLO's toy: meta-learning in 1-D, two tasks, theta_0 = phi (fo-blo stops where M' != 0)",
    .default_steps = 10000,
    .n_starts = 5,
    .defaults = defaults,
    .create = create,
    .destroy = prob_free,
    .error = error,
    .params = params,
    .n_params = PROB_COUNT(params),
};
