/* BVFSM (Liu, Liu, Zeng, Zhang, Zhang, "Value-Function-based Sequential
 * Minimization for Bi-level Optimization") as the released BOME code runs it
 * (hpo/data_cleaning.py:550), first order. z, a copy of theta kept from step
 * to step, takes T steps on g + c_z r |z|^2; theta T steps and then v one
 * step on the barrier objective
 *   L = f - c_ln r log(sg[g(v, theta)] + 1e-4 + g(v, z) + c_z r |z|^2 - g(v, theta)) + c_y r |theta|^2
 * with r = 1/log(1.1 (k + 1)) at outer step k (from 0); the released toys
 * fix it at its last value, 1/log(1.1 (K + 1)) for K steps (bvfsm_decay
 * fixed, toy/toy_convergence.py:172), which spares the first steps a
 * barrier and regularizers many times stronger (r = 10.5 at k = 0, 0.12 at
 * k = 5000). The log's argument equals the regularized value g(v, z) + c_z r |z|^2 + 1e-4; only its
 * gradient sees -g(v, theta). The released code never evaluates L itself,
 * only its gradients, which stay finite where that argument is negative
 * (on the minimax toy, whose g has no lower bound); here too, as f and g
 * are what a step reports. The barrier assumes g >= 0 (a loss): where the
 * argument is negative its gradient pushes theta up g, which the released
 * minimax toy shows (it ends in the box's corner) and which diverges where g
 * is unbounded above. The theta and z steps are plain gradient steps,
 * as in the toys (hyper-cleaning gives them momentum 0.9, restarted every
 * outer step). */
#include "../method.h"

#include <math.h>

enum { C_Z, C_LN, C_Y, DECAY };
enum { DECAY_LOG, DECAY_FIXED };

/* hpo/data_cleaning.py:557-559, :566 */
static const opt_setting params[] = {
    OPT_REAL("bvfsm_c_z", 0.01, 0, 1e300, "BVFSM: weight of r |z|^2 in z's objective"),
    OPT_REAL("bvfsm_c_ln", 1, 0, 1e300, "BVFSM: weight of the log barrier, times r"),
    OPT_REAL("bvfsm_c_y", 0.01, 0, 1e300, "BVFSM: weight of r |theta|^2 in theta's and v's objective"),
    OPT_CHOICE("bvfsm_decay", DECAY_LOG, "log|fixed", 2,
               "BVFSM: r = 1/log(1.1 (k + 1)) at step k, or fixed at 1/log(1.1 (max_steps + 1)) (the toys)"),
};

typedef struct state {
    bome_node **z, **dz;     /* nt each: the persistent copy and its gradient */
    bome_node **dth, **dv;   /* nt, nv: gradients of L */
    bome_plan *plan_z, *plan_theta, *plan_v;
    bome_real *z_values;     /* z's memory, kept by checkpoints */
    bome_real r;             /* bound to a scalar input of the graph */
} state;

/* c r sum_j |x_j|^2 over theta-shaped x: a worker's share across workers */
static bome_node *ridge(bome_solver *s, bome_node *r, double c, bome_node *const *x)
{
    return bome_mul(s->g, bome_scale(s->g, r, c), opt_share_dot(s, s->nv, x, x, s->nt));
}

static int build(bome_solver *s, void *st)
{
    state *d = st;
    bome_graph *g = s->g;
    int nv = s->nv, nt = s->nt;
    if (opt_node_lists(s, 3, (bome_node ***const[]){&d->z, &d->dz, &d->dth}, &d->dv) ||
        opt_theta_params(s, "z", d->z) || !(d->z_values = opt_persist_copies(s, "BVFSM's z", d->z)))
        return s->status;
    bome_node *r = opt_scalar_input(s, "bvfsm_r", &d->r);
    bome_vars at_k = opt_vars(s, s->x + nv), at_z = opt_vars(s, d->z);
    s->f = opt_build(s, "f(v, theta)", s->p->f, &at_k);
    s->gk = opt_build(s, "g(v, theta)", s->p->g, &at_k);
    bome_node *gz = opt_build(s, "g(v, z)", s->p->g, &at_z);
    if (!gz)
        return s->status;
    bome_node *lz = bome_add(g, gz, ridge(s, r, opt_param(s, C_Z), d->z));
    bome_node *gap;
    if (s->w) /* the log is not linear in g: its argument summed first, the barrier counted once */
        gap = bome_add_scalar(g, opt_workers_sum(s, bome_sub(g, bome_add(g, bome_stop_gradient(g, s->gk), lz), s->gk),
                                                 -1), 1e-4);
    else
        gap = bome_sub(g, bome_add_scalar(g, bome_add(g, bome_stop_gradient(g, s->gk), lz), 1e-4), s->gk);
    bome_node *barrier = bome_once(g, bome_mul(g, bome_scale(g, r, -opt_param(s, C_LN)), bome_log(g, gap)));
    bome_node *L = bome_add(g, bome_add(g, s->f, barrier), ridge(s, r, opt_param(s, C_Y), s->x + nv));
    opt_grad(s, lz, nt, d->z, d->dz);
    opt_grad(s, L, nt, s->x + nv, d->dth);
    opt_grad(s, L, nv, s->x, d->dv);
    if (opt_check_graph(s, "the BVFSM graph"))
        return s->status;
    d->plan_z = opt_plan(s, "BVFSM's z step", nt, d->dz);
    d->plan_theta = opt_plan(s, "BVFSM's theta step", nt, d->dth);
    d->plan_v = opt_plan_f_gk(s, d->dv, (size_t)nv, d->dv, 0);
    return s->status;
}

static int step(bome_solver *s, void *st, bome_step_stats *r)
{
    state *d = st;
    long k = (int)opt_param(s, DECAY) == DECAY_FIXED ? s->o.max_steps : s->steps;
    d->r = 1.0 / log(1.1 * (double)(k + 1));
    r->grad_evals = 3 * (long)s->o.T + 3; /* T on z; T on theta (f and g); v: f, g(z), g(theta) */
    opt_save_iterate(s);
    opt_restart_copies(s, d->z);
    int rc = opt_descend(s, d->z, d->dz, d->plan_z, s->o.T, s->o.alpha);
    if (!rc)
        rc = opt_descend(s, s->x + s->nv, d->dth, d->plan_theta, s->o.T, s->o.lr_inner);
    if (!rc)
        rc = opt_run(s, d->plan_v, r);
    /* a non-finite z reaches theta through the barrier's gradient */
    return rc ? rc : opt_v_step(s, r, d->dv, 1.0);
}

static void release(bome_solver *s, void *st)
{
    state *d = st;
    opt_zfree(s, d->z);
    opt_zfree(s, d->z_values);
}

const opt_method opt_method_bvfsm = {
    "bvfsm", "BVFSM: first order, z on g, theta and v on f with a log barrier at g(z), regularizers decaying "
    "as 1/log(1.1 k)", 1, 0, sizeof(state), OPT_PARAMS(params), build, step, release,
};
