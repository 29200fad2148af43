/* The penalty method of Mehra & Hamm as the released BOME code runs it
 * (hpo/data_cleaning.py:607, toy/toy_convergence.py:213): with
 *   P = f + <nu, grad_theta g> / n + gamma/2 |grad_theta g|^2   (n: theta's size)
 * theta takes T gradient steps on P + lambda_g g, then v one step on P.
 * grad_theta g inside P makes both gradients Hessian-vector products: P is
 * a graph over the graph of grad_theta g, differentiated once more.
 * Once |grad L|^2 (the last theta step's gradient plus v's) is below eps^2,
 * gamma *= 1.1, eps *= 0.9, lambda_g *= 0.9, nu += gamma grad_theta g
 * (ascent on the multiplier, with the new gamma) and both step sizes *= 0.9.
 * As released: nu enters as a mean, v's objective has no lambda_g g. The
 * theta steps are plain gradient steps, as in the toys (hyper-cleaning gives
 * them momentum 0.9), and unlike the released code the outer update's
 * momentum is not restarted when the step sizes shrink. */
#include "../method.h"

#include <math.h>

enum { LAMBDA_G, EPS, GAMMA, NU0 };

/* hpo/data_cleaning.py:625-628 */
static const opt_setting params[] = {
    OPT_REAL("penalty_lambda_g", 1e-2, 0, 1e300, "penalty: initial weight of g in theta's objective"),
    OPT_REAL("penalty_eps", 1e-2, 0, 1e300, "penalty: initial eps; the schedule moves once |grad L|^2 < eps^2"),
    OPT_REAL("penalty_gamma", 1e-2, 0, 1e300, "penalty: initial weight of |grad_theta g|^2 / 2"),
    OPT_REAL("penalty_nu0", 1e-4, -1e300, 1e300, "penalty: initial multiplier nu, every entry"),
};

typedef struct state {
    bome_node **nu;          /* nt params: the multiplier, moved only by the schedule */
    bome_node **gx;          /* nt: grad_theta g, itself a graph */
    bome_node **dth, **dv;   /* nt: grad_theta (P + lambda_g g); nv: grad_v P */
    bome_plan *plan_theta, *plan_v;
    bome_real *nu_values;    /* the nu params' memory, kept by checkpoints */
    struct {                 /* the schedule, kept by checkpoints */
        bome_real gamma, lambda_g; /* bound to scalar inputs of the graph */
        double eps, lr_scale;
    } sch;
} state;

static int build(bome_solver *s, void *st)
{
    state *d = st;
    bome_graph *g = s->g;
    int nv = s->nv, nt = s->nt;
    if (opt_node_lists(s, 3, (bome_node ***const[]){&d->nu, &d->gx, &d->dth}, &d->dv) ||
        opt_theta_params(s, "nu", d->nu) || !(d->nu_values = opt_persist_copies(s, "penalty's nu", d->nu)))
        return s->status;
    size_t n = 0, all = 0; /* theta's size here and over all the workers */
    for (int j = 0; j < nt; j++) {
        n += s->var[nv + j]->size;
        all += s->gsize[nv + j];
    }
    for (size_t i = 0; i < n; i++)
        d->nu_values[i] = opt_param(s, NU0);
    d->sch.gamma = opt_param(s, GAMMA);
    d->sch.lambda_g = opt_param(s, LAMBDA_G);
    d->sch.eps = opt_param(s, EPS);
    d->sch.lr_scale = 1.0;
    opt_persist(s, "penalty's schedule", &d->sch, sizeof d->sch);
    bome_node *gamma = opt_scalar_input(s, "penalty_gamma", &d->sch.gamma);
    bome_node *lambda_g = opt_scalar_input(s, "penalty_lambda_g", &d->sch.lambda_g);
    bome_vars at_k = opt_vars(s, s->x + nv);
    s->f = opt_build(s, "f(v, theta)", s->p->f, &at_k);
    s->gk = opt_build(s, "g(v, theta)", s->p->g, &at_k);
    if (!s->gk || opt_grad(s, s->gk, nt, s->x + nv, d->gx))
        return opt_check_graph(s, "grad_theta g");
    /* P is not linear in g: across workers grad_theta g is summed first, in
     * the graph, and the terms made of it counted once */
    for (int j = 0; j < nt; j++)
        d->gx[j] = opt_workers_sum(s, d->gx[j], j);
    bome_node *lin = bome_scale(g, opt_share_dot(s, nv, d->nu, d->gx, nt), 1.0 / (double)all);
    bome_node *quad = bome_mul(g, gamma, bome_scale(g, opt_share_dot(s, nv, d->gx, d->gx, nt), 0.5));
    bome_node *P = bome_add(g, bome_add(g, s->f, lin), quad);
    opt_grad(s, bome_add(g, P, bome_mul(g, lambda_g, s->gk)), nt, s->x + nv, d->dth);
    opt_grad(s, P, nv, s->x, d->dv);
    if (opt_check_graph(s, "the penalty graph"))
        return s->status;
    d->plan_theta = opt_plan(s, "penalty's theta step", nt, d->dth);
    d->plan_v = opt_plan_f_gk(s, d->dv, (size_t)nv, d->gx, (size_t)nt);
    return s->status;
}

static int step(bome_solver *s, void *st, bome_step_stats *r)
{
    state *d = st;
    int nt = s->nt;
    /* per theta step grad f, grad g and one HVP (nu + gamma grad g); the v
     * step as many */
    r->grad_evals = 2 * (long)s->o.T + 2;
    r->hvp_evals = s->o.T + 1;
    opt_save_iterate(s);
    int rc = opt_descend(s, s->x + s->nv, d->dth, d->plan_theta, s->o.T, d->sch.lr_scale * s->o.lr_inner);
    /* the gradient before the last theta step, as the released code tests it */
    double dth2 = rc ? 0.0 : opt_dot_nodes(s, s->nv, nt, d->dth, d->dth);
    if (!rc)
        rc = opt_run(s, d->plan_v, r);
    r->lambda = d->sch.gamma;
    if (!rc)
        rc = opt_v_step(s, r, d->dv, d->sch.lr_scale);
    if (rc)
        return rc;
    r->grad_q_norm = sqrt(opt_dot_nodes(s, s->nv, nt, d->gx, d->gx));
    if (s->status)
        return s->status;
    r->kkt += dth2;
    if (r->kkt < d->sch.eps * d->sch.eps) {
        d->sch.gamma *= 1.1;
        d->sch.eps *= 0.9;
        d->sch.lambda_g *= 0.9;
        d->sch.lr_scale *= 0.9;
        for (int j = 0; j < nt; j++) {
            bome_real *nu = bome_data(d->nu[j]);
            const bome_real *gx = bome_data(d->gx[j]);
            for (size_t i = 0; i < s->var[s->nv + j]->size; i++)
                nu[i] += d->sch.gamma * gx[i];
        }
    }
    return BOME_OK;
}

static void release(bome_solver *s, void *st)
{
    state *d = st;
    opt_zfree(s, d->nu);
    opt_zfree(s, d->nu_values);
}

const opt_method opt_method_penalty = {
    "penalty", "penalty (Mehra & Hamm): theta and v descend f + <nu, grad_theta g> + gamma/2 |grad_theta g|^2, "
    "gamma rising on a schedule", 2, 0, sizeof(state), OPT_PARAMS(params), build, step, release,
};
