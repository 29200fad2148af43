/* The solver's life cycle: checks, the variables and data as graph leaves,
 * the method's state, and dispatch through the method table. Nothing here
 * knows any one method. */
#include "method.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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
    if (p->inner_start && p->n_start != p->n_vars[BOME_INNER])
        return opt_fail(s, BOME_ERR_STATE, "inner variables were added after bome_problem_set_inner_start");
    for (int j = 0; p->inner_start && j < p->n_start; j++)
        if (p->inner_start[j] >= 0 && p->vars[BOME_INNER][j].sharded != p->vars[BOME_OUTER][p->inner_start[j]].sharded)
            return opt_fail(s, BOME_ERR_ARG, "inner variable '%s' starts at '%s', but only one of them is sharded",
                            p->vars[BOME_INNER][j].name, p->vars[BOME_OUTER][p->inner_start[j]].name);
    if (p->batch > 1 && !(s->m->flags & OPT_TASKS))
        return opt_fail(s, BOME_ERR_ARG, "the problem draws %d tasks per step; %s takes one (a batch of 1), or use "
                        "fo-blo, ufo-blo or exact", p->batch, s->m->name);
    return BOME_OK;
}

bome_vars opt_vars(const bome_solver *s, bome_node *const *theta)
{
    bome_vars x = {s->x, theta, s->data, s->nv, s->nt, s->p->n_data};
    return x;
}

bome_node *opt_build(bome_solver *s, const char *what, bome_objective_fn fn, const bome_vars *x)
{
    if (s->status)
        return NULL;
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
    /* a worker's share, which the plans sum in place */
    return opt_owned(s, y);
}

int opt_check_graph(bome_solver *s, const char *what)
{
    if (s->status)
        return s->status;
    if (bome_graph_status(s->g))
        return opt_fail(s, bome_graph_status(s->g), "building %s: %s", what, bome_graph_errmsg(s->g));
    return BOME_OK;
}

bome_plan *opt_plan(bome_solver *s, const char *what, int n, bome_node *const *outs)
{
    if (s->status)
        return NULL;
    bome_plan *plan = bome_plan_new(s->g, n, outs);
    if (!plan)
        opt_fail(s, bome_graph_status(s->g) ? bome_graph_status(s->g) : BOME_ERR_NOMEM, "planning %s: %s", what,
                 bome_graph_errmsg(s->g));
    return opt_plan_sums(s, plan, n, outs) ? NULL : plan;
}

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
    bome_plan *plan = opt_plan(s, s->m->name, (int)n_out, outs);
    opt_zfree(s, outs);
    return plan;
}

int opt_run(bome_solver *s, bome_plan *plan, const bome_step_stats *r)
{
    int rc = opt_run_plan(s, plan);
    return rc ? opt_fail(s, rc, "step %ld: %s", r->step, opt_run_errmsg(s)) : BOME_OK;
}

double opt_param(const bome_solver *s, int i) { return s->o.param[s->param_base + i]; }

int opt_inner_start(const bome_solver *s, int j) { return s->p->inner_start ? s->p->inner_start[j] : -1; }

bome_node *opt_scalar_input(bome_solver *s, const char *name, bome_real *value)
{
    bome_node *n = bome_input(s->g, name, BOME_SCALAR);
    bome_bind(s->g, n, value);
    return n;
}

/* The leaves every method starts from: the variables bound to the caller's
 * memory and the data bound zero-copy. */
static int build_leaves(bome_solver *s)
{
    bome_problem *p = s->p;
    bome_graph *g = s->g;
    for (int k = 0; k < s->nk; k++) {
        s->x[k] = bome_param(g, s->var[k]->name, s->var[k]->shape);
        bome_bind(g, s->x[k], s->var[k]->values);
        if (s->var[k]->sharded)
            opt_mark(s, s->x[k], OPT_LOCAL);
    }
    for (int i = 0; i < p->n_data; i++) {
        opt_data *d = &p->data[i];
        if (d->labels) {
            s->data[i] = bome_labels(g, d->name, d->shape.cols);
            bome_bind_labels(g, s->data[i], d->labels_values);
        } else {
            s->data[i] = bome_input(g, d->name, d->shape);
            bome_bind(g, s->data[i], (bome_real *)d->values); /* inputs are never written */
        }
    }
    return opt_check_graph(s, "the variables");
}

bome_solver *bome_solver_new(bome_problem *p, const bome_options *o)
{
    bome_alloc_fn a = o && o->alloc ? o->alloc : opt_system_alloc();
    bome_solver *s = opt_raw_alloc(a, o ? o->alloc_ud : NULL, sizeof *s);
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
    if (opt_check_options(s, o))
        return s;
    s->m = opt_method_at((int)o->method);
    if (check_problem(s, p))
        return s;
    s->param_base = opt_method_param_base((int)o->method);
    s->nv = p->n_vars[BOME_OUTER];
    s->nt = p->n_vars[BOME_INNER];
    s->nk = s->nv + s->nt;
    bome_rng_seed(&s->rng, o->seed);
    s->var = opt_zalloc(s, (size_t)s->nk, sizeof *s->var);
    s->x = opt_zalloc(s, (size_t)s->nk, sizeof *s->x);
    s->data = opt_zalloc(s, (size_t)p->n_data, sizeof *s->data);
    s->inner = opt_zalloc(s, (size_t)s->nt, sizeof *s->inner);
    s->inner_grad = opt_zalloc(s, (size_t)s->nt, sizeof *s->inner_grad);
    s->state = opt_zalloc(s, s->m->state_size ? s->m->state_size : 1, 1);
    s->gsize = opt_zalloc(s, (size_t)s->nk, sizeof *s->gsize);
    s->w = o->workers;
    if (s->status)
        return s;
    for (int k = 0; k < s->nk; k++) {
        s->var[k] = k < s->nv ? &p->vars[BOME_OUTER][k] : &p->vars[BOME_INNER][k - s->nv];
        s->any_sharded |= s->var[k]->sharded;
    }
    s->inner_buf = opt_buffers(s, s->nv, s->nk);
    s->m1 = opt_buffers(s, 0, s->nk);
    s->prev = opt_buffers(s, 0, s->nk);
    s->m2 = o->update == BOME_UPDATE_ADAM ? opt_buffers(s, 0, s->nk) : NULL;
    if (s->status)
        return s;
    s->g = bome_graph_new_alloc(s->o.alloc, s->o.alloc_ud);
    if (!s->g) {
        opt_fail(s, BOME_ERR_NOMEM, "out of memory creating the graph");
        return s;
    }
    bome_graph_set_threads(s->g, o->threads > 1 ? o->threads : 1);
    if (s->w)
        bome_graph_set_workers(s->g, s->w->rank, s->w->size, s->w->sum, s->w->ud);
    if (build_leaves(s) || opt_workers_start(s))
        return s;
    if ((s->m->flags & OPT_INNER_LOOP) && opt_inner_params(s))
        return s;
    s->m->build(s, s->state);
    return s;
}

void bome_solver_free(bome_solver *s)
{
    if (!s)
        return;
    if (s->m && s->m->free && s->state)
        s->m->free(s, s->state);
    bome_graph_free(s->g);
    opt_zfree(s, s->state);
    opt_free_buffers(s, s->inner_buf, s->nt);
    opt_free_buffers(s, s->m1, s->nk);
    opt_free_buffers(s, s->prev, s->nk);
    opt_free_buffers(s, s->m2, s->nk);
    opt_zfree(s, s->var);
    opt_zfree(s, s->x);
    opt_zfree(s, s->data);
    opt_zfree(s, s->inner);
    opt_zfree(s, s->inner_grad);
    opt_zfree(s, s->gsize);
    opt_zfree(s, s->node_kind);
    opt_zfree(s, s->pack);
    for (int i = 0; i < s->n_summed; i++)
        opt_zfree(s, s->summed[i].outs);
    opt_zfree(s, s->summed);
    opt_raw_free(s->o.alloc, s->o.alloc_ud, s);
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
    bome_problem *p = s->p;
    if (p->draw && !(s->m->flags & OPT_TASKS)) {
        int rc = p->draw(p->draw_ud, &s->rng, s->steps, 0);
        if (rc)
            return opt_fail(s, rc, "step %ld: the task sampler returned %d", s->steps + 1, rc);
    }
    /* meta-learning: nothing but v persists, theta starts at it */
    for (int j = 0; p->inner_start && j < s->nt; j++)
        if (p->inner_start[j] >= 0)
            memcpy(s->var[s->nv + j]->values, s->var[p->inner_start[j]]->values, s->var[s->nv + j]->size * sizeof(bome_real));
    bome_step_stats r = {0};
    r.step = s->steps + 1;
    s->batch_due = true;
    s->batch_k = 0;
    s->batch_rc = 0;
    int rc = s->m->step(s, s->state, &r);
    if (rc)
        return rc;
    s->steps++;
    r.total_grad_evals = s->total_grad += r.grad_evals;
    r.total_hvp_evals = s->total_hvp += r.hvp_evals;
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
