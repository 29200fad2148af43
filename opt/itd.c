/* ITD, BOME's classic rival: v's gradient through the inner loop itself.
 * The T inner steps are built into the graph as nodes, each step's direction
 * the gradient of g at the previous step's node, so one reverse sweep from
 * f(v, theta_T) gives d f / d v through all of them: second order, from the
 * same f and g builders, with nothing hand-written. The graph is built once;
 * every outer step replays one plan. */
#include "internal.h"

#include <math.h>
#include <string.h>

int opt_itd_build(bome_solver *s, bome_node **data)
{
    bome_problem *p = s->p;
    bome_graph *g = s->g;
    const bome_options *o = &s->o;
    int nt = s->nt, nv = s->nv;
    bome_node **cur = opt_zalloc(s, (size_t)nt, sizeof *cur);
    bome_node **mom = opt_zalloc(s, (size_t)nt, sizeof *mom);
    bome_node **dir = opt_zalloc(s, (size_t)nt, sizeof *dir);
    if (!cur || !mom || !dir)
        goto done;
    memcpy(cur, s->x + nv, (size_t)nt * sizeof *cur); /* theta_0 = theta_k */
    for (int t = 0; t < o->T && !s->status; t++) {
        bome_vars at = {s->x, cur, data, nv, nt, p->n_data};
        bome_node *gt = opt_build(s, "g(v, theta_t) in the unrolled loop", p->g, &at);
        if (!gt || bome_grad(g, gt, nt, cur, dir))
            break;
        for (int j = 0; j < nt; j++) {
            /* PyTorch-style momentum from zero: buf = d at the first step */
            if (o->inner_momentum > 0)
                dir[j] = mom[j] = t ? bome_add(g, bome_scale(g, mom[j], o->inner_momentum), dir[j]) : dir[j];
            bome_node *next = bome_sub(g, cur[j], bome_scale(g, dir[j], o->alpha));
            const opt_var *v = s->var[nv + j];
            cur[j] = v->bounded ? bome_clamp(g, next, v->lo, v->hi) : next;
        }
    }
    if (s->status)
        goto done;
    bome_vars at_T = {s->x, cur, data, nv, nt, p->n_data};
    s->f = opt_build(s, "f(v, theta_T)", p->f, &at_T);
    if (s->f)
        s->gk = opt_build(s, "g(v, theta_T)", p->g, &at_T);
    if (s->gk)
        bome_grad(g, s->f, nv, s->x, s->gf); /* total: through every unrolled step */
    if (s->status)
        goto done;
    if (bome_graph_status(g)) {
        opt_fail(s, bome_graph_status(g), "building the ITD graph: %s", bome_graph_errmsg(g));
        goto done;
    }
    memcpy(s->inner, cur, (size_t)nt * sizeof *cur); /* theta_T, read after each step */
    s->plan_outer = opt_plan_f_gk(s, s->gf, (size_t)nv, cur, (size_t)nt);
    if (!s->plan_outer && !s->status)
        opt_fail(s, bome_graph_status(g), "planning ITD: %s", bome_graph_errmsg(g));
done:
    opt_zfree(s, cur);
    opt_zfree(s, mom);
    opt_zfree(s, dir);
    return s->status;
}

int opt_itd_step(bome_solver *s, bome_step_stats *r)
{
    int rc = bome_plan_run(s->plan_outer);
    if (rc)
        return opt_fail(s, rc, "step %ld: %s", r->step, bome_graph_errmsg(s->g));
    r->f = bome_value(s->f);
    r->g = bome_value(s->gk);
    double hh = 0;
    for (int k = 0; k < s->nv; k++) {
        const bome_real *h = bome_data(s->gf[k]);
        for (size_t i = 0; i < s->var[k]->size; i++)
            hh += h[i] * h[i];
    }
    r->grad_f_norm = sqrt(hh);
    r->kkt = hh;
    bool finite = isfinite(r->f) && isfinite(r->g) && isfinite(hh);
    for (int j = 0; j < s->nt && finite; j++) {
        const bome_real *th = bome_data(s->inner[j]);
        for (size_t i = 0; i < s->var[s->nv + j]->size; i++)
            finite = finite && isfinite(th[i]);
    }
    if (!finite)
        return opt_stop_nonfinite(s, r, "|hypergradient|^2 (or theta_T)", hh);
    opt_save_iterate(s);
    for (int k = 0; k < s->nv; k++)
        opt_apply_update(s, k, bome_data(s->gf[k]), NULL, 0.0);
    return opt_take_theta_T(s, r);
}
