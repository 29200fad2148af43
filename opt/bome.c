/* BOME: the graphs it needs, built once from the user's f and g, and the
 * outer step of the paper, replayed without allocating. */
#include "internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void bome_options_default(bome_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->T = 10;
    o->alpha = 0.05;
    o->eta = 0.5;
    o->phi = BOME_PHI_GRAD;
    o->lr_outer = 0.05;
    o->lr_inner = 0.05;
    o->update = BOME_UPDATE_SGD;
    o->momentum = 0.9;
    o->adam_beta1 = 0.9;
    o->adam_beta2 = 0.999;
    o->adam_eps = 1e-8;
    o->lambda_eps = 1e-8;
    o->max_steps = 1000;
    o->cg_steps = 10;
}

double bome_lambda(double phi, double dot_fq, double norm2_q, double eps)
{
    double l = (phi - dot_fq) / (norm2_q + eps);
    return l > 0 ? l : 0.0;
}

int opt_fail(bome_solver *s, int code, const char *fmt, ...)
{
    if (s->status != BOME_OK)
        return s->status;
    s->status = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->msg, sizeof s->msg, fmt, ap);
    va_end(ap);
    return code;
}

static int check_options(bome_solver *s, const bome_options *o)
{
    if (o->T < 1)
        return opt_fail(s, BOME_ERR_ARG, "options: T = %d; BOME needs at least one inner step", o->T);
    const struct { const char *name; double value; } nonneg[] = {
        {"alpha", o->alpha}, {"eta", o->eta}, {"lr_outer", o->lr_outer}, {"lr_inner", o->lr_inner},
        {"lambda_eps", o->lambda_eps}, {"tol", o->tol}, {"adam_eps", o->adam_eps},
    };
    for (size_t i = 0; i < sizeof nonneg / sizeof nonneg[0]; i++)
        if (!(nonneg[i].value >= 0) || isinf(nonneg[i].value))
            return opt_fail(s, BOME_ERR_ARG, "options: %s = %g must be finite and >= 0", nonneg[i].name, nonneg[i].value);
    const struct { const char *name; double value; } unit[] = {
        {"inner_momentum", o->inner_momentum}, {"momentum", o->momentum},
        {"adam_beta1", o->adam_beta1}, {"adam_beta2", o->adam_beta2},
    };
    for (size_t i = 0; i < sizeof unit / sizeof unit[0]; i++)
        if (!(unit[i].value >= 0 && unit[i].value < 1))
            return opt_fail(s, BOME_ERR_ARG, "options: %s = %g must be in [0, 1)", unit[i].name, unit[i].value);
    if (o->method != BOME_METHOD_BOME && o->method != BOME_METHOD_ITD && o->method != BOME_METHOD_AID_CG &&
        o->method != BOME_METHOD_BSG1)
        return opt_fail(s, BOME_ERR_ARG, "options: method = %d is not a bome_method", (int)o->method);
    if (o->method == BOME_METHOD_AID_CG && o->cg_steps < 1)
        return opt_fail(s, BOME_ERR_ARG, "options: cg_steps = %d; AID-CG needs at least one", o->cg_steps);
    if (o->threads < 0 || o->threads > BOME_MAX_THREADS)
        return opt_fail(s, BOME_ERR_ARG, "options: threads = %d must be in 0..%d", o->threads, BOME_MAX_THREADS);
    if (o->inner_momentum_keep != 0 && o->inner_momentum_keep != 1)
        return opt_fail(s, BOME_ERR_ARG, "options: inner_momentum_keep = %d must be 0 or 1", o->inner_momentum_keep);
    if (o->phi != BOME_PHI_GRAD && o->phi != BOME_PHI_VALUE)
        return opt_fail(s, BOME_ERR_ARG, "options: phi = %d is neither BOME_PHI_GRAD nor BOME_PHI_VALUE", (int)o->phi);
    if (o->update != BOME_UPDATE_SGD && o->update != BOME_UPDATE_MOMENTUM && o->update != BOME_UPDATE_ADAM)
        return opt_fail(s, BOME_ERR_ARG, "options: update = %d is not a bome_update", (int)o->update);
    if (o->max_steps < 0)
        return opt_fail(s, BOME_ERR_ARG, "options: max_steps = %ld is negative", o->max_steps);
    return BOME_OK;
}

static int check_problem(bome_solver *s, const bome_problem *p)
{
    if (p->status)
        return opt_fail(s, p->status, "the problem has an error: %s", p->msg);
    if (p->n_vars[BOME_OUTER] == 0)
        return opt_fail(s, BOME_ERR_ARG, "the problem has no outer variables (bome_problem_add_outer)");
    if (p->n_vars[BOME_INNER] == 0)
        return opt_fail(s, BOME_ERR_ARG, "the problem has no inner variables (bome_problem_add_inner)");
    if (!p->f || !p->g)
        return opt_fail(s, BOME_ERR_ARG, "the problem has no objectives (bome_problem_set_objectives)");
    return BOME_OK;
}

/* Calls a builder and checks that it gave a scalar on this graph. */
bome_node *opt_build(bome_solver *s, const char *what, bome_objective_fn fn, const bome_vars *x)
{
    bome_node *y = fn(s->g, x, s->p->ctx);
    if (bome_graph_status(s->g)) {
        opt_fail(s, bome_graph_status(s->g), "building %s: %s", what, bome_graph_errmsg(s->g));
        return NULL;
    }
    if (!y) {
        opt_fail(s, BOME_ERR_ARG, "building %s: the builder returned NULL without a graph error", what);
        return NULL;
    }
    if (bome_size(y) != 1) {
        bome_shape sh = bome_node_shape(y);
        opt_fail(s, BOME_ERR_SHAPE, "building %s: the objective must be a scalar, got %d x %d", what, sh.rows, sh.cols);
        return NULL;
    }
    return y;
}

static void *system_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}

/* Blocks carry their size in front so that frees can tell the allocator
 * the old size, as a lua_Alloc-style allocator expects. */
#define HEADER 64

static void *raw_alloc(bome_alloc_fn a, void *ud, size_t bytes)
{
    char *p = a(ud, NULL, 0, bytes + HEADER);
    if (!p)
        return NULL;
    memset(p, 0, bytes + HEADER);
    memcpy(p, &bytes, sizeof bytes);
    return p + HEADER;
}

static void raw_free(bome_alloc_fn a, void *ud, void *ptr)
{
    if (!ptr)
        return;
    char *p = (char *)ptr - HEADER;
    size_t bytes;
    memcpy(&bytes, p, sizeof bytes);
    a(ud, p, bytes + HEADER, 0);
}

void *opt_zalloc(bome_solver *s, size_t n, size_t size)
{
    void *p = raw_alloc(s->o.alloc, s->o.alloc_ud, (n ? n : 1) * size);
    if (!p)
        opt_fail(s, BOME_ERR_NOMEM, "out of memory");
    return p;
}

void opt_zfree(bome_solver *s, void *p) { raw_free(s->o.alloc, s->o.alloc_ud, p); }

bome_plan *opt_plan_f_gk(bome_solver *s, bome_node *const *a, size_t na, bome_node *const *b, size_t nb)
{
    size_t n_out = 2 + na + nb;
    bome_node **outs = opt_zalloc(s, n_out, sizeof *outs);
    if (!outs)
        return NULL;
    outs[0] = s->f;
    outs[1] = s->gk;
    memcpy(outs + 2, a, na * sizeof *outs);
    memcpy(outs + 2 + na, b, nb * sizeof *outs);
    bome_plan *plan = bome_plan_new(s->g, (int)n_out, outs);
    opt_zfree(s, outs);
    return plan;
}

static int build_graphs(bome_solver *s)
{
    bome_problem *p = s->p;
    bome_graph *g = s->g;
    int nd = p->n_data;
    bome_node **data = opt_zalloc(s, (size_t)nd, sizeof *data);
    bome_node **frozen = opt_zalloc(s, (size_t)s->nt, sizeof *frozen);
    if (!data || !frozen) {
        opt_zfree(s, data);
        opt_zfree(s, frozen);
        return s->status;
    }
    for (int k = 0; k < s->nk; k++) {
        opt_var *v = s->var[k];
        s->x[k] = bome_param(g, v->name, v->shape);
        bome_bind(g, s->x[k], v->values);
    }
    for (int j = 0; j < s->nt && s->o.method != BOME_METHOD_ITD; j++) {
        char name[80];
        snprintf(name, sizeof name, "%s_T", s->var[s->nv + j]->name);
        s->inner[j] = bome_param(g, name, s->var[s->nv + j]->shape);
        frozen[j] = bome_stop_gradient(g, s->inner[j]);
    }
    for (int i = 0; i < nd; i++) {
        opt_data *d = &p->data[i];
        if (d->labels) {
            data[i] = bome_labels(g, d->name, d->shape.cols);
            bome_bind_labels(g, data[i], d->labels_values);
        } else {
            data[i] = bome_input(g, d->name, d->shape);
            bome_bind(g, data[i], (bome_real *)d->values); /* inputs are never written */
        }
    }
    if (s->o.method != BOME_METHOD_BOME) {
        if (s->o.method == BOME_METHOD_ITD)
            opt_itd_build(s, data);
        else if (s->o.method == BOME_METHOD_AID_CG)
            opt_aid_build(s, data);
        else
            opt_bsg_build(s, data);
        opt_zfree(s, data);
        opt_zfree(s, frozen);
        return s->status;
    }
    bome_vars at_k = {s->x, s->x + s->nv, data, s->nv, s->nt, nd};
    bome_vars at_T = {s->x, frozen, data, s->nv, s->nt, nd};
    bome_vars at_t = {s->x, s->inner, data, s->nv, s->nt, nd};
    bome_node *gT = NULL, *gt = NULL;
    if (!bome_graph_status(g))
        s->f = opt_build(s, "f(v, theta)", p->f, &at_k);
    if (s->f)
        s->gk = opt_build(s, "g(v, theta)", p->g, &at_k);
    if (s->gk)
        gT = opt_build(s, "g(v, stop_gradient(theta_T))", p->g, &at_T);
    if (gT)
        gt = opt_build(s, "g(v, theta_t) for the inner loop", p->g, &at_t);
    if (gt) {
        /* q = g(v, theta) - g(v, sg[theta_T]): its theta-gradient is g's at
         * theta_k, its v-gradient the difference of g's v-gradients. */
        s->q = bome_sub(g, s->gk, gT);
        bome_grad(g, gt, s->nt, s->inner, s->inner_grad);
        bome_grad(g, s->f, s->nk, s->x, s->gf);
        bome_grad(g, s->q, s->nk, s->x, s->gq);
    }
    opt_zfree(s, data);
    opt_zfree(s, frozen);
    if (s->status)
        return s->status;
    if (bome_graph_status(g))
        return opt_fail(s, bome_graph_status(g), "building the BOME graph: %s", bome_graph_errmsg(g));
    s->plan_inner = bome_plan_new(g, s->nt, s->inner_grad);
    size_t n_out = 3 + 2 * (size_t)s->nk;
    bome_node **outs = opt_zalloc(s, n_out, sizeof *outs);
    if (!outs)
        return s->status;
    outs[0] = s->f;
    outs[1] = s->gk;
    outs[2] = s->q;
    memcpy(outs + 3, s->gf, (size_t)s->nk * sizeof *outs);
    memcpy(outs + 3 + s->nk, s->gq, (size_t)s->nk * sizeof *outs);
    s->plan_outer = bome_plan_new(g, (int)n_out, outs);
    opt_zfree(s, outs);
    if (!s->plan_inner || !s->plan_outer)
        return opt_fail(s, bome_graph_status(g), "planning: %s", bome_graph_errmsg(g));
    return BOME_OK;
}

static bome_real **alloc_buffers(bome_solver *s, int from, int to)
{
    bome_real **b = opt_zalloc(s, (size_t)s->nk, sizeof *b);
    if (!b)
        return NULL;
    for (int k = from; k < to; k++)
        if (!(b[k - from] = opt_zalloc(s, s->var[k]->size, sizeof(bome_real))))
            break;
    return b;
}

static void free_buffers(bome_solver *s, bome_real **b, int n)
{
    if (!b)
        return;
    for (int k = 0; k < n; k++)
        opt_zfree(s, b[k]);
    opt_zfree(s, b);
}

bome_solver *bome_solver_new(bome_problem *p, const bome_options *o)
{
    bome_alloc_fn a = o && o->alloc ? o->alloc : system_alloc;
    bome_solver *s = raw_alloc(a, o ? o->alloc_ud : NULL, sizeof *s);
    if (!s)
        return NULL;
    if (o)
        s->o = *o;
    s->o.alloc = a;
    if (!p || !o) {
        opt_fail(s, BOME_ERR_ARG, "bome_solver_new: %s is NULL", !p ? "problem" : "options");
        return s;
    }
    s->p = p;
    if (check_options(s, o) || check_problem(s, p))
        return s;
    s->nv = p->n_vars[BOME_OUTER];
    s->nt = p->n_vars[BOME_INNER];
    s->nk = s->nv + s->nt;
    bome_rng_seed(&s->rng, o->seed);
    s->var = opt_zalloc(s, (size_t)s->nk, sizeof *s->var);
    s->x = opt_zalloc(s, (size_t)s->nk, sizeof *s->x);
    s->inner = opt_zalloc(s, (size_t)s->nt, sizeof *s->inner);
    s->inner_grad = opt_zalloc(s, (size_t)s->nt, sizeof *s->inner_grad);
    s->gf = opt_zalloc(s, (size_t)s->nk, sizeof *s->gf);
    s->gq = opt_zalloc(s, (size_t)s->nk, sizeof *s->gq);
    if (s->status)
        return s;
    for (int k = 0; k < s->nk; k++)
        s->var[k] = k < s->nv ? &p->vars[BOME_OUTER][k] : &p->vars[BOME_INNER][k - s->nv];
    s->inner_buf = alloc_buffers(s, s->nv, s->nk);
    s->m1 = alloc_buffers(s, 0, s->nk);
    s->prev = alloc_buffers(s, 0, s->nk);
    s->m2 = o->update == BOME_UPDATE_ADAM ? alloc_buffers(s, 0, s->nk) : NULL;
    if (s->status)
        return s;
    s->g = bome_graph_new_alloc(s->o.alloc, s->o.alloc_ud);
    if (!s->g) {
        opt_fail(s, BOME_ERR_NOMEM, "out of memory creating the graph");
        return s;
    }
    bome_graph_set_threads(s->g, o->threads > 1 ? o->threads : 1);
    build_graphs(s);
    return s;
}

void bome_solver_free(bome_solver *s)
{
    if (!s)
        return;
    bome_graph_free(s->g);
    opt_aid_free(s);
    free_buffers(s, s->inner_buf, s->nk);
    free_buffers(s, s->m1, s->nk);
    free_buffers(s, s->prev, s->nk);
    free_buffers(s, s->m2, s->nk);
    opt_zfree(s, s->var);
    opt_zfree(s, s->x);
    opt_zfree(s, s->inner);
    opt_zfree(s, s->inner_grad);
    opt_zfree(s, s->gf);
    opt_zfree(s, s->gq);
    raw_free(s->o.alloc, s->o.alloc_ud, s);
}

int bome_solver_status(const bome_solver *s) { return s ? s->status : BOME_ERR_ARG; }
const char *bome_solver_errmsg(const bome_solver *s) { return s ? s->msg : "no solver (NULL)"; }
long bome_solver_steps(const bome_solver *s) { return s ? s->steps : 0; }
bome_graph *bome_solver_graph(bome_solver *s) { return s ? s->g : NULL; }

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void opt_project(const opt_var *v, bome_real *x)
{
    if (v->bounded)
        for (size_t i = 0; i < v->size; i++)
            x[i] = x[i] < v->lo ? v->lo : (x[i] > v->hi ? v->hi : x[i]);
}

/* theta^(0) = theta_k; T steps of gradient descent on g(v_k, .). */
int opt_inner_loop(bome_solver *s)
{
    const bome_options *o = &s->o;
    /* The rivals that differentiate the loop restart it, as the reference's do. */
    bool keep = o->inner_momentum_keep && (o->method == BOME_METHOD_BOME || o->method == BOME_METHOD_BSG1);
    for (int j = 0; j < s->nt; j++)
        memcpy(bome_data(s->inner[j]), s->var[s->nv + j]->values, s->var[s->nv + j]->size * sizeof(bome_real));
    for (int t = 0; t < o->T; t++) {
        int rc = bome_plan_run(s->plan_inner);
        if (rc)
            return opt_fail(s, rc, "inner step %d: %s", t + 1, bome_graph_errmsg(s->g));
        for (int j = 0; j < s->nt; j++) {
            bome_real *th = bome_data(s->inner[j]), *buf = s->inner_buf[j];
            const bome_real *d = bome_data(s->inner_grad[j]);
            size_t n = s->var[s->nv + j]->size;
            if (o->inner_momentum > 0) {
                /* buf = d on the first step, as PyTorch's SGD does */
                double mu = t || (keep && s->inner_buf_live) ? o->inner_momentum : 0.0;
                for (size_t i = 0; i < n; i++) {
                    buf[i] = mu * buf[i] + d[i];
                    th[i] -= o->alpha * buf[i];
                }
            } else {
                for (size_t i = 0; i < n; i++)
                    th[i] -= o->alpha * d[i];
            }
            opt_project(s->var[s->nv + j], th); /* the inner iterates stay feasible too */
        }
    }
    s->inner_buf_live = true;
    return BOME_OK;
}

static double dot_all(bome_node **a, bome_node **b, int n)
{
    double s = 0;
    for (int k = 0; k < n; k++) {
        const bome_real *x = bome_data(a[k]), *y = bome_data(b[k]);
        size_t m = bome_size(a[k]);
        for (size_t i = 0; i < m; i++)
            s += x[i] * y[i];
    }
    return s;
}

/* x -= lr * update(d) with d = gf + lambda gq (gf or gq may be NULL), then
 * the box. */
void opt_apply_update(bome_solver *s, int k, const bome_real *gf, const bome_real *gq, double lambda)
{
    const bome_options *o = &s->o;
    opt_var *v = s->var[k];
    bome_real *x = v->values, *m1 = s->m1[k], *m2 = s->m2 ? s->m2[k] : NULL;
    double lr = k < s->nv ? o->lr_outer : o->lr_inner;
    size_t n = v->size;
#define D(i) (!gq ? gf[i] : gf ? gf[i] + lambda * gq[i] : lambda * gq[i])
    if (o->update == BOME_UPDATE_SGD) {
        for (size_t i = 0; i < n; i++)
            x[i] -= lr * D(i);
    } else if (o->update == BOME_UPDATE_MOMENTUM) {
        double mu = s->steps ? o->momentum : 0.0;
        for (size_t i = 0; i < n; i++) {
            m1[i] = mu * m1[i] + D(i);
            x[i] -= lr * m1[i];
        }
    } else {
        double t = (double)(s->steps + 1);
        double c1 = 1.0 - pow(o->adam_beta1, t), c2 = 1.0 - pow(o->adam_beta2, t);
        for (size_t i = 0; i < n; i++) {
            double d = D(i);
            m1[i] = o->adam_beta1 * m1[i] + (1 - o->adam_beta1) * d;
            m2[i] = o->adam_beta2 * m2[i] + (1 - o->adam_beta2) * d * d;
            x[i] -= lr * (m1[i] / c1) / (sqrt(m2[i] / c2) + o->adam_eps);
        }
    }
#undef D
    opt_project(v, x);
}

int opt_inner_then_outer(bome_solver *s, bome_step_stats *r)
{
    int rc = opt_inner_loop(s);
    if (!rc && (rc = bome_plan_run(s->plan_outer)))
        opt_fail(s, rc, "step %ld: %s", r->step, bome_graph_errmsg(s->g));
    if (rc)
        return rc;
    r->f = bome_value(s->f);
    r->g = bome_value(s->gk);
    return BOME_OK;
}

int opt_stop_nonfinite(bome_solver *s, const bome_step_stats *r, const char *what, double value)
{
    s->dead = true;
    return opt_fail(s, BOME_ERR_NONFINITE,
                    "step %ld: non-finite value (f = %g, g = %g, %s = %g); the variables hold the last finite iterate",
                    r->step, r->f, r->g, what, value);
}

/* BOME's outer step: the inner loop, the outer plan, lambda, the update. */
static int bome_step(bome_solver *s, bome_step_stats *r)
{
    const bome_options *o = &s->o;
    int rc = opt_inner_then_outer(s, r);
    if (rc)
        return rc;
    r->q = bome_value(s->q);
    double fq = dot_all(s->gf, s->gq, s->nk), ff = dot_all(s->gf, s->gf, s->nk), qq = dot_all(s->gq, s->gq, s->nk);
    r->phi = o->eta * (o->phi == BOME_PHI_GRAD ? qq : r->q);
    r->lambda = bome_lambda(r->phi, fq, qq, o->lambda_eps);
    r->grad_f_norm = sqrt(ff);
    r->grad_q_norm = sqrt(qq);
    /* min over l >= 0 of ||gf + l gq||^2 is at l = max(0, -<gf,gq>/||gq||^2). */
    double lk = qq > 0 ? fmax(0.0, -fq / qq) : 0.0;
    r->kkt = fmax(0.0, ff + 2 * lk * fq + lk * lk * qq) + r->q;
    if (!isfinite(r->f) || !isfinite(r->g) || !isfinite(r->q) || !isfinite(fq) || !isfinite(ff) || !isfinite(qq) ||
        !isfinite(r->lambda)) {
        s->dead = true;
        return opt_fail(s, BOME_ERR_NONFINITE,
                        "step %ld: non-finite value (f = %g, g = %g, q = %g, |grad f|^2 = %g, |grad q|^2 = %g); "
                        "the variables hold the last finite iterate",
                        r->step, r->f, r->g, r->q, ff, qq);
    }
    opt_save_iterate(s);
    for (int k = 0; k < s->nk; k++)
        opt_apply_update(s, k, bome_data(s->gf[k]), bome_data(s->gq[k]), r->lambda);
    return opt_check_iterate(s, r);
}

void opt_save_iterate(bome_solver *s)
{
    for (int k = 0; k < s->nk; k++)
        memcpy(s->prev[k], s->var[k]->values, s->var[k]->size * sizeof(bome_real));
}

int opt_check_iterate(bome_solver *s, const bome_step_stats *r)
{
    bool finite = true;
    for (int k = 0; k < s->nk; k++)
        for (size_t i = 0; i < s->var[k]->size; i++)
            finite = finite && isfinite(s->var[k]->values[i]);
    if (finite)
        return BOME_OK;
    /* finite gradients, but a step too large for doubles */
    for (int k = 0; k < s->nk; k++)
        memcpy(s->var[k]->values, s->prev[k], s->var[k]->size * sizeof(bome_real));
    s->dead = true;
    return opt_fail(s, BOME_ERR_NONFINITE,
                    "step %ld: the update gave a non-finite value (lambda = %g); the variables hold the last "
                    "finite iterate",
                    r->step, r->lambda);
}

int opt_take_theta_T(bome_solver *s, const bome_step_stats *r)
{
    for (int j = 0; j < s->nt; j++)
        memcpy(s->var[s->nv + j]->values, bome_data(s->inner[j]), s->var[s->nv + j]->size * sizeof(bome_real));
    return opt_check_iterate(s, r);
}

int bome_solver_step(bome_solver *s, bome_step_stats *st)
{
    if (!s)
        return BOME_ERR_ARG;
    if (s->status)
        return s->dead ? BOME_ERR_STATE : s->status;
    const bome_options *o = &s->o;
    double t0 = now();
    if (o->refill) {
        int rc = o->refill(o->refill_ud, &s->rng, s->steps);
        if (rc)
            return opt_fail(s, rc, "step %ld: the refill callback returned %d", s->steps + 1, rc);
    }
    bome_step_stats r = {0};
    r.step = s->steps + 1;
    int rc = o->method == BOME_METHOD_ITD      ? opt_itd_step(s, &r)
             : o->method == BOME_METHOD_AID_CG ? opt_aid_step(s, &r)
             : o->method == BOME_METHOD_BSG1   ? opt_bsg_step(s, &r)
                                               : bome_step(s, &r);
    if (rc)
        return rc;
    s->steps++;
    r.seconds = now() - t0;
    s->total_seconds += r.seconds;
    r.total_seconds = s->total_seconds;
    if (st)
        *st = r;
    /* A callback's request to stop is not an error; run() honours it. */
    s->stop = o->on_step && o->on_step(o->on_step_ud, s, &r);
    return BOME_OK;
}

int bome_solver_run(bome_solver *s, bome_step_stats *last)
{
    if (!s)
        return BOME_ERR_ARG;
    if (s->status) /* as bome_solver_step would, even when max_steps allows no step */
        return s->dead ? BOME_ERR_STATE : s->status;
    bome_step_stats st = {0};
    while (s->steps < s->o.max_steps) {
        int rc = bome_solver_step(s, &st);
        if (last && st.step)
            *last = st;
        if (rc)
            return rc;
        if (s->o.tol > 0 && st.kkt < s->o.tol)
            break;
        if (s->stop)
            break;
    }
    return BOME_OK;
}

int bome_solve(bome_problem *p, const bome_options *o, bome_step_stats *last)
{
    if (!p)
        return BOME_ERR_ARG;
    bome_solver *s = bome_solver_new(p, o);
    if (!s)
        return opt_error(p, BOME_ERR_NOMEM, "bome_solve: out of memory");
    int rc = bome_solver_status(s);
    if (!rc)
        rc = bome_solver_run(s, last);
    if (rc)
        opt_error(p, rc, "%s", bome_solver_errmsg(s));
    bome_solver_free(s);
    return rc;
}
