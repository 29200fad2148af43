/* The inner loop: T gradient steps on g(v_k, .) from theta_k, run on a
 * plan built once over params that hold the iterate. Nothing is recorded
 * for differentiation through it; ITD and reverse unroll steps into the
 * graph instead, with the helpers at the end. */
#include "solver.h"

#include <stdio.h>
#include <string.h>

int opt_theta_params(bome_solver *s, const char *suffix, bome_node **out)
{
    for (int j = 0; j < s->nt; j++) {
        char name[80];
        snprintf(name, sizeof name, "%s_%s", s->var[s->nv + j]->name, suffix);
        out[j] = bome_param(s->g, name, s->var[s->nv + j]->shape);
        if (opt_sharded(s, s->nv + j)) /* a copy of a shard is the worker's own */
            opt_mark(s, out[j], OPT_LOCAL);
    }
    if (opt_check_graph(s, "the copies of theta"))
        return s->status;
    opt_vars_to_nodes(s, s->nv, s->nt, out);
    return BOME_OK;
}

int opt_inner_params(bome_solver *s) { return opt_theta_params(s, "T", s->inner); }

bome_real *opt_persist_copies(bome_solver *s, const char *what, bome_node *const *copy)
{
    size_t n = 0, at = 0;
    for (int j = 0; j < s->nt; j++)
        n += s->var[s->nv + j]->size;
    bome_real *b = opt_zalloc(s, n, sizeof *b);
    for (int j = 0; b && j < s->nt; j++) {
        memcpy(b + at, bome_data(copy[j]), s->var[s->nv + j]->size * sizeof *b);
        bome_bind(s->g, copy[j], b + at);
        at += s->var[s->nv + j]->size;
    }
    if (b)
        opt_persist(s, what, b, n * sizeof *b);
    return b;
}

void opt_restart_copies(bome_solver *s, bome_node *const *copy)
{
    for (int j = 0; j < s->nt; j++)
        if (opt_inner_start(s, j) >= 0)
            memcpy(bome_data(copy[j]), s->var[s->nv + j]->values, s->var[s->nv + j]->size * sizeof(bome_real));
}

int opt_inner_build(bome_solver *s)
{
    bome_vars at_t = opt_vars(s, s->inner);
    s->g_inner = opt_build(s, "g(v, theta_t) for the inner loop", s->p->g, &at_t);
    if (s->g_inner)
        opt_grad(s, s->g_inner, s->nt, s->inner, s->inner_grad);
    if (opt_check_graph(s, "the inner loop"))
        return s->status;
    s->plan_inner = opt_plan(s, "the inner loop", s->nt, s->inner_grad);
    return s->status;
}

int opt_inner_loop(bome_solver *s, bool keep_momentum) { return opt_inner_steps(s, keep_momentum, s->o.T); }

int opt_inner_steps(bome_solver *s, bool keep_momentum, int steps)
{
    const bome_options *o = &s->o;
    bool keep = keep_momentum && o->inner_momentum_keep;
    opt_vars_to_nodes(s, s->nv, s->nt, s->inner);
    for (int t = 0; t < steps; t++) {
        opt_next_batch(s);
        int rc = opt_run_plan(s, s->plan_inner);
        if (rc)
            return opt_fail(s, rc, "inner step %d: %s", t + 1, opt_run_errmsg(s));
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
    opt_next_batch(s); /* the outer part of the step gets its own */
    return BOME_OK;
}

int opt_descend(bome_solver *s, bome_node *const *x, bome_node *const *grad, bome_plan *plan, int steps, double lr)
{
    for (int t = 0; t < steps; t++) {
        opt_next_batch(s);
        int rc = opt_run_plan(s, plan);
        if (rc)
            return opt_fail(s, rc, "step %ld, inner step %d: %s", s->steps + 1, t + 1, opt_run_errmsg(s));
        for (int j = 0; j < s->nt; j++) {
            bome_real *th = bome_data(x[j]);
            const bome_real *d = bome_data(grad[j]);
            for (size_t i = 0; i < s->var[s->nv + j]->size; i++)
                th[i] -= lr * d[i];
            opt_project(s->var[s->nv + j], th);
        }
    }
    opt_next_batch(s);
    return BOME_OK;
}

/* An inner iterate in the graph: the same on every worker (a replicated
 * theta, stepped along summed gradients) or the worker's own. */
static void mark_iterate(bome_solver *s, bome_node *n, int j)
{
    opt_mark(s, n, opt_sharded(s, s->nv + j) ? OPT_LOCAL : OPT_GLOBAL);
}

/* cur[0..nt) holds theta nodes; replaces them with the nodes of `steps`
 * unrolled inner steps from there: inner momentum from zero, as PyTorch's
 * SGD starts it, or from mom0, where reverse resumes a loop run without a
 * graph; boxes as clamps. Across workers each step's gradient is summed in
 * the graph, so that the sweep back through it sums the adjoints too. */
static int unroll(bome_solver *s, bome_node **cur, bome_node *const *mom0, int steps, const char *what)
{
    bome_graph *g = s->g;
    const bome_options *o = &s->o;
    int nt = s->nt, nv = s->nv;
    bome_node **mom = opt_zalloc(s, (size_t)nt, sizeof *mom);
    bome_node **dir = opt_zalloc(s, (size_t)nt, sizeof *dir);
    if (mom0 && mom)
        memcpy(mom, mom0, (size_t)nt * sizeof *mom);
    for (int t = 0; t < steps && !s->status; t++) {
        bome_vars at = opt_vars(s, cur);
        bome_node *gt = opt_build(s, what, s->p->g, &at);
        if (!gt || opt_grad(s, gt, nt, cur, dir))
            break;
        for (int j = 0; j < nt; j++) {
            dir[j] = opt_workers_sum(s, dir[j], j);
            if (o->inner_momentum > 0)
                dir[j] = mom[j] = t || mom0 ? bome_add(g, bome_scale(g, mom[j], o->inner_momentum), dir[j])
                                            : dir[j];
            bome_node *next = bome_sub(g, cur[j], bome_scale(g, dir[j], o->alpha));
            const opt_var *v = s->var[nv + j];
            cur[j] = v->bounded ? bome_clamp(g, next, v->lo, v->hi) : next;
            mark_iterate(s, cur[j], j);
        }
    }
    opt_zfree(s, mom);
    opt_zfree(s, dir);
    return opt_check_graph(s, what);
}

void opt_unroll_start(bome_solver *s, bome_node **cur)
{
    memcpy(cur, s->x + s->nv, (size_t)s->nt * sizeof *cur);
    /* a node of its own, so that the first step's gradient in theta is not
     * also in v */
    for (int j = 0; j < s->nt; j++)
        if (opt_inner_start(s, j) >= 0) {
            cur[j] = bome_add_scalar(s->g, s->x[opt_inner_start(s, j)], 0.0);
            mark_iterate(s, cur[j], j);
        }
}

bome_plan *opt_unrolled_build(bome_solver *s, bome_node **cur, bome_node *const *mom0, int steps, bome_node **gf,
                              const char *what)
{
    if (unroll(s, cur, mom0, steps, "g(v, theta_t) in the unrolled loop"))
        return NULL;
    bome_vars at_T = opt_vars(s, cur);
    s->f = opt_build(s, "f(v, theta_T)", s->p->f, &at_T);
    s->gk = opt_build(s, "g(v, theta_T)", s->p->g, &at_T);
    if (s->gk)
        opt_grad(s, s->f, s->nv, s->x, gf); /* total: through every unrolled step */
    if (opt_check_graph(s, what))
        return NULL;
    return opt_plan_f_gk(s, gf, (size_t)s->nv, cur, (size_t)s->nt);
}

int opt_unrolled_run(bome_solver *s, bome_plan *plan, bome_node *const *gf, bome_real *const *hv, bome_step_stats *r)
{
    int rc = opt_run(s, plan, r);
    if (rc)
        return rc;
    r->f = bome_value(s->f);
    r->g = bome_value(s->gk);
    for (int k = 0; k < s->nv; k++)
        memcpy(hv[k], bome_data(gf[k]), s->var[k]->size * sizeof(bome_real));
    return BOME_OK;
}
