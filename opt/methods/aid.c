/* The graphs of implicit differentiation at theta_T, built once: H p and
 * the mixed product are gradients of <grad_theta g, p> with respect to theta
 * and to v, over input nodes bound to the solver's buffers, so each product
 * is a plan run with no allocation. */
#include "aid.h"

#include <stdio.h>
#include <string.h>

/* nt input nodes named prefix_<theta>, bound to buf. */
static void bound_inputs(bome_solver *s, const char *prefix, bome_real **buf, bome_node **out)
{
    for (int j = 0; j < s->nt; j++) {
        const opt_var *v = s->var[s->nv + j];
        char name[80];
        snprintf(name, sizeof name, "%s_%s", prefix, v->name);
        out[j] = bome_input(s->g, name, v->shape);
        bome_bind(s->g, out[j], buf[j]);
    }
}

int opt_aid_build(bome_solver *s, opt_aid *a, const char *method)
{
    bome_graph *g = s->g;
    int nv = s->nv, nt = s->nt;
    bome_node **pin = opt_zalloc(s, (size_t)nt, sizeof *pin), **uin = opt_zalloc(s, (size_t)nt, sizeof *uin);
    a->gf_v = opt_zalloc(s, (size_t)nv, sizeof *a->gf_v);
    a->gf_theta = opt_zalloc(s, (size_t)nt, sizeof *a->gf_theta);
    a->hp = opt_zalloc(s, (size_t)nt, sizeof *a->hp);
    a->mixed = opt_zalloc(s, (size_t)nv, sizeof *a->mixed);
    a->p = opt_buffers(s, nv, s->nk);
    a->u = opt_buffers(s, nv, s->nk);
    a->hv = opt_buffers(s, 0, nv);
    if (s->status)
        goto done;
    bound_inputs(s, "p", a->p, pin);
    bound_inputs(s, "u", a->u, uin);
    if (opt_inner_build(s))
        goto done;
    bome_vars at_T = opt_vars(s, s->inner);
    s->f = opt_build(s, "f(v, theta_T)", s->p->f, &at_T);
    if (s->f) {
        s->gk = s->g_inner;
        bome_grad(g, s->f, nt, s->inner, a->gf_theta);
        bome_grad(g, s->f, nv, s->x, a->gf_v);
        bome_grad(g, opt_block_dot(g, s->inner_grad, pin, nt), nt, s->inner, a->hp);
        bome_grad(g, opt_block_dot(g, s->inner_grad, uin, nt), nv, s->x, a->mixed);
    }
    char what[64];
    snprintf(what, sizeof what, "the %s graph", method);
    if (opt_check_graph(s, what))
        goto done;
    a->plan_grads = opt_plan_f_gk(s, a->gf_v, (size_t)nv, a->gf_theta, (size_t)nt);
    a->plan_hp = opt_plan(s, "H p", nt, a->hp);
    a->plan_mixed = opt_plan(s, "the mixed second derivative", nv, a->mixed);
done:
    opt_zfree(s, pin);
    opt_zfree(s, uin);
    return s->status;
}

int opt_aid_begin(bome_solver *s, opt_aid *a, bome_step_stats *r)
{
    int rc = opt_inner_loop(s, false);
    if (!rc)
        rc = opt_run(s, a->plan_grads, r);
    if (rc)
        return rc;
    r->f = bome_value(s->f); /* before the solve, whose errors name them */
    r->g = bome_value(s->gk);
    return BOME_OK;
}

int opt_aid_finish(bome_solver *s, opt_aid *a, bome_step_stats *r)
{
    int rc = opt_run(s, a->plan_mixed, r);
    if (rc)
        return rc;
    for (int k = 0; k < s->nv; k++) {
        const bome_real *gv = bome_data(a->gf_v[k]), *m = bome_data(a->mixed[k]);
        for (size_t i = 0; i < s->var[k]->size; i++)
            a->hv[k][i] = gv[i] - m[i];
    }
    return opt_hyper_step(s, r, a->hv);
}

void opt_aid_free(bome_solver *s, opt_aid *a)
{
    opt_zfree(s, a->gf_v);
    opt_zfree(s, a->gf_theta);
    opt_zfree(s, a->hp);
    opt_zfree(s, a->mixed);
    opt_free_buffers(s, a->p, s->nt);
    opt_free_buffers(s, a->u, s->nt);
    opt_free_buffers(s, a->hv, s->nv);
}
