/* Few-shot sinusoid regression (Finn, Abbeel, Levine, MAML, 2017), the
 * data-free meta-learning benchmark: a task is y = A sin(x - p), A ~ U[0.1,
 * 5], p ~ U[0, pi], with K support and K query points x ~ U[-5, 5]; the model
 * a 1-40-40-1 ReLU network whose weights phi are the inner loop's start
 * (theta_0 = phi); g the support MSE, f the query MSE. With --beta B > 0, g
 * gains (B / 2)|theta - phi|^2 (iMAML's proximal term): a true argmin lower
 * level, so that BOME, ITD and the AID methods run on the same tasks. The
 * data are drawn, never downloaded. Held-out score: the MSE on the query
 * points after r inner steps from phi, over 1000 tasks no step trains on. */
#include "cases.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { K_SHOTS, HIDDEN, BATCH, BETA, EVAL_TASKS };

static const prob_param params[] = {
    {.name = "shots", .def = 10, .help = "K: support and query points per task"},
    {.name = "hidden", .def = 40, .help = "units in each of the two hidden layers"},
    {.name = "batch", .def = 25, .help = "tasks per meta-batch"},
    {.name = "beta", .def = 0, .help = "proximal weight: g += beta/2 |theta - phi|^2 (0: plain MAML)"},
    {.name = "eval-tasks", .def = 1000, .help = "held-out tasks for the post-adaptation MSE"},
};

enum { NP = 6 };

typedef struct state {
    int k, h, batch, eval_tasks;
    double beta;
    bome_real *phi[NP], *theta[NP];
    bome_shape shape[NP];
    bome_real *xs, *ys, *xq, *yq;   /* one task's data, bound */
    /* the held-out evaluation: its own graph, built on first use */
    bome_graph *eg;
    bome_node *eth[NP], *egrad[NP], *ef, *exs, *eys, *exq, *eyq;
    bome_plan *eplan_g, *eplan_f;
    bome_real *eth_buf[NP];
} state;

static bome_node *net(bome_graph *g, bome_node *const *w, bome_node *x)
{
    bome_node *h = bome_relu(g, bome_add(g, bome_matmul(g, x, 0, w[0], 1), w[1]));
    h = bome_relu(g, bome_add(g, bome_matmul(g, h, 0, w[2], 1), w[3]));
    return bome_add(g, bome_matmul(g, h, 0, w[4], 1), w[5]);
}

static bome_node *mse(bome_graph *g, bome_node *const *w, bome_node *x, bome_node *y)
{
    return bome_mean(g, bome_square(g, bome_sub(g, net(g, w, x), y)));
}

static bome_node *inner_loss(bome_graph *g, const bome_vars *x, void *ctx)
{
    const state *s = ctx;
    bome_node *l = mse(g, x->theta, x->data[0], x->data[1]);
    for (int i = 0; s->beta > 0 && i < NP; i++)
        l = bome_add(g, l, bome_scale(g, bome_sumsq(g, bome_sub(g, x->theta[i], x->v[i])), 0.5 * s->beta));
    return l;
}

static bome_node *outer_loss(bome_graph *g, const bome_vars *x, void *ctx)
{
    (void)ctx;
    return mse(g, x->theta, x->data[2], x->data[3]);
}

/* K support then K query points of a fresh task. */
static void draw_task(bome_rng *rng, int k, bome_real *xs, bome_real *ys, bome_real *xq, bome_real *yq)
{
    double amp = 0.1 + 4.9 * bome_rng_uniform(rng), phase = 3.14159265358979323846 * bome_rng_uniform(rng);
    for (int i = 0; i < 2 * k; i++) {
        double x = -5 + 10 * bome_rng_uniform(rng), y = amp * sin(x - phase);
        if (i < k)
            xs[i] = x, ys[i] = y;
        else
            xq[i - k] = x, yq[i - k] = y;
    }
}

static int draw(void *ud, bome_rng *rng, long step, int task)
{
    (void)step;
    (void)task;
    state *s = ud;
    draw_task(rng, s->k, s->xs, s->ys, s->xq, s->yq);
    return 0;
}

static void defaults(bome_options *o)
{
    bome_options_default(o);
    o->method = BOME_METHOD_UFO_BLO;
    o->T = 5;
    o->alpha = 0.01;
    o->lr_outer = 1e-3;
    o->update = BOME_UPDATE_ADAM;
    o->max_steps = 2000;
}

static void destroy(prob_run *r)
{
    state *s = r->state;
    if (s) {
        for (int i = 0; i < NP; i++) {
            free(s->phi[i]);
            free(s->theta[i]);
            free(s->eth_buf[i]);
        }
        free(s->xs);
        bome_graph_free(s->eg);
    }
    prob_free(r);
}

static int create(prob_run *r, int start, uint64_t seed, char *err, size_t errlen)
{
    (void)start;
    const prob_case *c = &prob_sinusoid;
    state *s = calloc(1, sizeof *s);
    if (!s)
        return BOME_ERR_NOMEM;
    r->state = s;
    s->k = (int)prob_real(c, r, K_SHOTS);
    s->h = (int)prob_real(c, r, HIDDEN);
    s->batch = (int)prob_real(c, r, BATCH);
    s->beta = prob_real(c, r, BETA);
    s->eval_tasks = (int)prob_real(c, r, EVAL_TASKS);
    if (s->k < 1 || s->k > 100000 || s->h < 1 || s->h > 4096 || s->batch < 1 || s->batch > 100000 ||
        !(s->beta >= 0) || s->eval_tasks < 1) {
        snprintf(err, errlen, "shots, hidden, batch and eval-tasks must be whole numbers >= 1, beta >= 0");
        return BOME_ERR_ARG;
    }
    int h = s->h;
    const bome_shape shapes[NP] = {BOME_MATRIX(h, 1), BOME_MATRIX(1, h), BOME_MATRIX(h, h),
                                   BOME_MATRIX(1, h), BOME_MATRIX(1, h), BOME_MATRIX(1, 1)};
    static const char *const names[NP] = {"W1", "b1", "W2", "b2", "W3", "b3"};
    static const int fan_in[NP] = {1, 1, 0, 0, 0, 0}; /* 0: the hidden width */
    bome_rng rng;
    bome_rng_seed(&rng, seed);
    s->xs = calloc(4 * (size_t)s->k, sizeof(bome_real));
    if (!s->xs)
        return BOME_ERR_NOMEM;
    s->ys = s->xs + s->k, s->xq = s->ys + s->k, s->yq = s->xq + s->k;
    r->problem = bome_problem_new();
    if (!r->problem)
        return BOME_ERR_NOMEM;
    for (int i = 0; i < NP; i++) {
        size_t n = (size_t)shapes[i].rows * (size_t)shapes[i].cols;
        s->shape[i] = shapes[i];
        s->phi[i] = calloc(n, sizeof(bome_real));
        s->theta[i] = calloc(n, sizeof(bome_real));
        s->eth_buf[i] = calloc(n, sizeof(bome_real));
        if (!s->phi[i] || !s->theta[i] || !s->eth_buf[i])
            return BOME_ERR_NOMEM;
        /* PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases */
        double bound = 1 / sqrt(fan_in[i] ? fan_in[i] : h);
        for (size_t k = 0; k < n; k++)
            s->phi[i][k] = bound * (2 * bome_rng_uniform(&rng) - 1);
        bome_problem_add_outer(r->problem, names[i], shapes[i], s->phi[i]);
    }
    for (int i = 0; i < NP; i++) {
        char name[16];
        snprintf(name, sizeof name, "%s_task", names[i]);
        bome_problem_add_inner(r->problem, name, shapes[i], s->theta[i]);
    }
    for (int i = 0; i < NP; i++)
        bome_problem_set_inner_start(r->problem, i, i);
    bome_real *const bufs[4] = {s->xs, s->ys, s->xq, s->yq};
    static const char *const dn[4] = {"x_support", "y_support", "x_query", "y_query"};
    for (int i = 0; i < 4; i++)
        bome_problem_add_input(r->problem, dn[i], BOME_MATRIX(s->k, 1), bufs[i]);
    bome_problem_set_objectives(r->problem, outer_loss, inner_loss, s);
    bome_problem_set_tasks(r->problem, s->batch, draw, s);
    return bome_problem_status(r->problem);
}

/* The held-out graph: theta params, the support loss's gradient and the
 * query loss, over inputs bound to one task's buffers. */
static int eval_build(state *s)
{
    bome_graph *g = s->eg = bome_graph_new();
    if (!g)
        return BOME_ERR_NOMEM;
    for (int i = 0; i < NP; i++) {
        s->eth[i] = bome_param(g, "theta", s->shape[i]);
        bome_bind(g, s->eth[i], s->eth_buf[i]);
    }
    bome_node **in[4] = {&s->exs, &s->eys, &s->exq, &s->eyq};
    bome_real *const bufs[4] = {s->xs, s->ys, s->xq, s->yq};
    for (int i = 0; i < 4; i++) {
        *in[i] = bome_input(g, "data", BOME_MATRIX(s->k, 1));
        bome_bind(g, *in[i], bufs[i]);
    }
    /* adaptation follows the plain support loss: the proximal term's
     * gradient is 0 at theta = phi and only damps the r steps */
    bome_grad(g, mse(g, s->eth, s->exs, s->eys), NP, s->eth, s->egrad);
    s->ef = mse(g, s->eth, s->exq, s->eyq);
    s->eplan_g = bome_plan_new(g, NP, s->egrad);
    s->eplan_f = bome_plan_new(g, 1, &s->ef);
    return bome_graph_status(g);
}

/* Mean query MSE after r steps from phi on eval_tasks held-out tasks (a
 * stream of their own, the same for every method and step), and the 95%
 * interval's half-width. */
static double evaluate(prob_run *r, const bome_options *o, double *ci95)
{
    state *s = r->state;
    if (!s->eg && eval_build(s) != BOME_OK)
        return NAN;
    bome_rng rng;
    bome_rng_seed(&rng, 0x5eed5eedu);
    double sum = 0, sum2 = 0;
    for (int t = 0; t < s->eval_tasks; t++) {
        draw_task(&rng, s->k, s->xs, s->ys, s->xq, s->yq);
        for (int i = 0; i < NP; i++)
            memcpy(s->eth_buf[i], s->phi[i], (size_t)s->shape[i].rows * s->shape[i].cols * sizeof(bome_real));
        for (int step = 0; step < o->T; step++) {
            if (bome_plan_run(s->eplan_g))
                return NAN;
            for (int i = 0; i < NP; i++) {
                const bome_real *d = bome_data(s->egrad[i]);
                for (int k = 0; k < s->shape[i].rows * s->shape[i].cols; k++)
                    s->eth_buf[i][k] -= o->alpha * d[k];
            }
        }
        if (bome_plan_run(s->eplan_f))
            return NAN;
        double m = bome_value(s->ef);
        sum += m;
        sum2 += m * m;
    }
    double n = s->eval_tasks, mean = sum / n, var = n > 1 ? (sum2 - n * mean * mean) / (n - 1) : 0;
    if (ci95)
        *ci95 = 1.96 * sqrt(fmax(var, 0) / n);
    return mean;
}

const prob_case prob_sinusoid = {
    .name = "sinusoid",
    .summary = "few-shot sinusoid regression (MAML's benchmark): theta_0 = phi, a 1-40-40-1 ReLU network",
    .default_steps = 2000,
    .n_starts = 1,
    .defaults = defaults,
    .create = create,
    .destroy = destroy,
    .params = params,
    .n_params = PROB_COUNT(params),
    .evaluate = evaluate,
    .eval_name = "test_mse",
};
