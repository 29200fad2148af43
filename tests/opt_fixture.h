/* Shared by test_opt.c and test_opt_robust.c: the small bilevel problem and
 * its independent reference (see test_opt.c's opening comment). */
#ifndef BOME_TEST_OPT_FIXTURE_H
#define BOME_TEST_OPT_FIXTURE_H

#include <criterion/criterion.h>

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <bome/opt.h>

#include "cases.h"

enum { NX = 8 };
static const __attribute__((unused)) int OFF[4] = {0, 3, 4, 7}, SZ[4] = {3, 1, 3, 1};
static const __attribute__((unused)) bome_real X0[NX] = {0.2, -0.1, 0.4, 0.3, 0.5, -0.4, 0.8, 0.6};
static const __attribute__((unused)) bome_real Y0[3] = {0.3, -0.2, 0.5};

/* |a - b| <= tol max(1, |b|) */
#define CLOSE(a, b, tol)                                                                                    \
    do {                                                                                                    \
        double a_ = (a), b_ = (b);                                                                          \
        cr_assert(fabs(a_ - b_) <= (tol) * fmax(1.0, fabs(b_)), "%s = %.17g, expected %.17g", #a, a_, b_); \
    } while (0)

/* ---- The problem's builders -------------------------------------------------- */

typedef struct fctx {
    double a, b; /* f = a f0 + b g */
} fctx;

static inline bome_node *g_fn(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_node *v = x->v[0], *c = x->v[1], *th = x->theta[0], *s = x->theta[1];
    bome_node *a = bome_scale(G, bome_sum(G, bome_mul(G, bome_exp(G, v), bome_square(G, th))), 0.5);
    bome_node *b = bome_dot(G, v, th);
    bome_node *quart = bome_scale(G, bome_square(G, bome_sumsq(G, th)), 0.05);
    bome_node *d = bome_scale(G, bome_square(G, bome_sub(G, s, c)), 0.5);
    bome_node *e = bome_scale(G, bome_square(G, bome_square(G, s)), 0.1);
    return bome_add(G, bome_add(G, bome_sub(G, a, b), quart), bome_add(G, d, e));
}

static inline bome_node *f_fn(bome_graph *G, const bome_vars *x, void *ctx)
{
    const fctx *k = ctx;
    bome_node *v = x->v[0], *c = x->v[1], *th = x->theta[0], *s = x->theta[1];
    bome_node *y0 = bome_const(G, BOME_VECTOR(3), Y0);
    bome_node *f0 = bome_add(G, bome_sum(G, bome_tanh(G, bome_mul(G, v, th))),
                             bome_scale(G, bome_sumsq(G, bome_sub(G, th, y0)), 0.5));
    f0 = bome_add(G, f0, bome_scale(G, bome_sumsq(G, v), 0.3));
    f0 = bome_add(G, f0, bome_scale(G, bome_mul(G, c, s), 0.7));
    if (x->n_data > 0)
        f0 = bome_add(G, f0, bome_dot(G, x->data[0], th));
    return bome_add(G, bome_scale(G, f0, k->a), bome_scale(G, g_fn(G, x, ctx), k->b));
}

/* Declares (v, c, theta, s) in x[NX] and, if noise is not NULL, the input. */
static inline bome_problem *make_problem(bome_real *x, fctx *ctx, const bome_real *noise)
{
    bome_problem *p = bome_problem_new();
    cr_assert_not_null(p);
    cr_assert_eq(bome_problem_add_outer(p, "v", BOME_VECTOR(3), x + OFF[0]), 0);
    cr_assert_eq(bome_problem_add_outer(p, "c", BOME_SCALAR, x + OFF[1]), 1);
    cr_assert_eq(bome_problem_add_inner(p, "theta", BOME_VECTOR(3), x + OFF[2]), 0);
    cr_assert_eq(bome_problem_add_inner(p, "s", BOME_SCALAR, x + OFF[3]), 1);
    if (noise)
        cr_assert_eq(bome_problem_add_input(p, "noise", BOME_VECTOR(3), noise), 0);
    cr_assert_eq(bome_problem_set_objectives(p, f_fn, g_fn, ctx), BOME_OK);
    cr_assert_eq(bome_problem_status(p), BOME_OK, "%s", bome_problem_errmsg(p));
    return p;
}

static inline bome_solver *make_solver(bome_problem *p, const bome_options *o)
{
    bome_solver *s = bome_solver_new(p, o);
    cr_assert_not_null(s);
    cr_assert_eq(bome_solver_status(s), BOME_OK, "%s", bome_solver_errmsg(s));
    return s;
}

/* ---- The reference: a plain ad graph of f, g and their gradients ---------- */

typedef struct ref {
    bome_graph *G;
    bome_node *p[4], *f, *g, *gf[4], *gg[4];
    double ibuf[NX]; /* the inner momentum buffer, for inner_momentum_keep */
    bool ibuf_live;
} ref;

static inline void ref_init(ref *r, fctx *ctx, const bome_real *noise)
{
    static const char *names[4] = {"v", "c", "theta", "s"};
    memset(r->ibuf, 0, sizeof r->ibuf);
    r->ibuf_live = false;
    r->G = bome_graph_new();
    cr_assert_not_null(r->G);
    for (int i = 0; i < 4; i++)
        r->p[i] = bome_param(r->G, names[i], i == 1 || i == 3 ? BOME_SCALAR : BOME_VECTOR(3));
    bome_node *data[1] = {NULL};
    if (noise) {
        data[0] = bome_input(r->G, "noise", BOME_VECTOR(3));
        bome_bind(r->G, data[0], (bome_real *)noise);
    }
    bome_vars vars = {r->p, r->p + 2, data, 2, 2, noise ? 1 : 0};
    r->f = f_fn(r->G, &vars, ctx);
    r->g = g_fn(r->G, &vars, ctx);
    bome_grad(r->G, r->f, 4, r->p, r->gf);
    bome_grad(r->G, r->g, 4, r->p, r->gg);
    cr_assert_eq(bome_graph_status(r->G), BOME_OK, "%s", bome_graph_errmsg(r->G));
}

/* f, g and their gradients (flattened, NX each) at the point x. */
static inline void ref_eval(ref *r, const bome_real *x, double *f, double *g, double *gf, double *gg)
{
    for (int i = 0; i < 4; i++)
        bome_set(r->G, r->p[i], x + OFF[i]);
    bome_node *outs[10] = {r->f, r->g};
    memcpy(outs + 2, r->gf, sizeof r->gf);
    memcpy(outs + 6, r->gg, sizeof r->gg);
    cr_assert_eq(bome_eval(r->G, 10, outs), BOME_OK, "%s", bome_graph_errmsg(r->G));
    if (f)
        *f = bome_value(r->f);
    if (g)
        *g = bome_value(r->g);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < SZ[i]; j++) {
            if (gf)
                gf[OFF[i] + j] = bome_data(r->gf[i])[j];
            if (gg)
                gg[OFF[i] + j] = bome_data(r->gg[i])[j];
        }
}

/* Boxes per coordinate (+-inf: none). */
typedef struct box { double lo[NX], hi[NX]; } box;

static inline void no_box(box *b)
{
    for (int i = 0; i < NX; i++)
        b->lo[i] = -INFINITY, b->hi[i] = INFINITY;
}

static inline double clampd(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }

typedef struct expect {
    double f, g, q, phi, lambda, gf_norm, gq_norm, kkt;
    double gf[NX], gq[NX], d[NX];
    bome_real theta_T[NX]; /* the whole point, with (theta, s) replaced by the inner result */
} expect;

/* theta_T by T explicit (projected, optionally momentum) gradient steps on
 * g(v, .) from x, as the reference defines the inner loop. With
 * inner_momentum_keep the buffer lives on in r from one call to the next. */
static inline void inner_T(ref *r, const bome_options *o, const box *b, const bome_real *x, bome_real *xt)
{
    double gg[NX], fresh[NX] = {0};
    double *buf = o->inner_momentum_keep ? r->ibuf : fresh;
    bool carry = o->inner_momentum_keep && r->ibuf_live;
    memcpy(xt, x, NX * sizeof *xt);
    for (int t = 0; t < o->T; t++) {
        ref_eval(r, xt, NULL, NULL, NULL, gg);
        for (int i = OFF[2]; i < NX; i++) {
            buf[i] = (t || carry ? o->inner_momentum * buf[i] : 0.0) + gg[i];
            xt[i] -= o->alpha * (o->inner_momentum > 0 ? buf[i] : gg[i]);
            xt[i] = clampd(xt[i], b->lo[i], b->hi[i]);
        }
    }
    r->ibuf_live = true;
}

static inline double dot(const double *a, const double *b)
{
    double s = 0;
    for (int i = 0; i < NX; i++)
        s += a[i] * b[i];
    return s;
}

/* Everything one BOME step at x should report and do, from the reference. */
static inline void expected(ref *r, const bome_options *o, const box *b, const bome_real *x, expect *e)
{
    double ggk[NX], ggT[NX], gT;
    ref_eval(r, x, &e->f, &e->g, e->gf, ggk);
    inner_T(r, o, b, x, e->theta_T);
    ref_eval(r, e->theta_T, NULL, &gT, NULL, ggT);
    e->q = e->g - gT;
    for (int i = 0; i < NX; i++)
        e->gq[i] = i < OFF[2] ? ggk[i] - ggT[i] : ggk[i];
    double fq = dot(e->gf, e->gq), ff = dot(e->gf, e->gf), qq = dot(e->gq, e->gq);
    double eta, phi, eps;
    bome_options_get(o, "eta", &eta);
    bome_options_get(o, "phi", &phi);
    bome_options_get(o, "lambda_eps", &eps);
    e->phi = eta * ((int)phi == BOME_PHI_GRAD ? qq : e->q);
    /* the grad form as the released toys compute it */
    e->lambda = (int)phi == BOME_PHI_GRAD ? fmax(eta - fq / (qq + eps), 0.0) : fmax((e->phi - fq) / (qq + eps), 0.0);
    e->gf_norm = sqrt(ff);
    e->gq_norm = sqrt(qq);
    double l = qq > 0 ? fmax(0.0, -fq / qq) : 0.0;
    e->kkt = ff + 2 * l * fq + l * l * qq + e->q;
    for (int i = 0; i < NX; i++)
        e->d[i] = e->gf[i] + e->lambda * e->gq[i];
}

static inline void check_stats(const bome_step_stats *st, const expect *e, double tol)
{
    CLOSE(st->f, e->f, tol);
    CLOSE(st->g, e->g, tol);
    CLOSE(st->q, e->q, tol);
    CLOSE(st->phi, e->phi, tol);
    CLOSE(st->lambda, e->lambda, tol);
    CLOSE(st->grad_f_norm, e->gf_norm, tol);
    CLOSE(st->grad_q_norm, e->gq_norm, tol);
    CLOSE(st->kkt, e->kkt, tol);
}

/* The outer update rules by hand, per coordinate. */
typedef struct emu { double m1[NX], m2[NX]; long t; } emu;

static inline void emu_step(emu *m, const bome_options *o, const box *b, bome_real *x, const double *d)
{
    for (int i = 0; i < NX; i++) {
        double lr = i < OFF[2] ? o->lr_outer : o->lr_inner;
        if (o->update == BOME_UPDATE_SGD) {
            x[i] -= lr * d[i];
        } else if (o->update == BOME_UPDATE_MOMENTUM) {
            m->m1[i] = m->t == 0 ? d[i] : o->momentum * m->m1[i] + d[i];
            x[i] -= lr * m->m1[i];
        } else {
            m->m1[i] = o->adam_beta1 * m->m1[i] + (1 - o->adam_beta1) * d[i];
            m->m2[i] = o->adam_beta2 * m->m2[i] + (1 - o->adam_beta2) * d[i] * d[i];
            double mh = m->m1[i] / (1 - pow(o->adam_beta1, (double)(m->t + 1)));
            double vh = m->m2[i] / (1 - pow(o->adam_beta2, (double)(m->t + 1)));
            x[i] -= lr * mh / (sqrt(vh) + o->adam_eps);
        }
        x[i] = clampd(x[i], b->lo[i], b->hi[i]);
    }
    m->t++;
}

static inline void opts(bome_options *o, int T, double alpha, double lr_outer, double lr_inner)
{
    bome_options_default(o);
    o->T = T;
    o->alpha = alpha;
    o->lr_outer = lr_outer;
    o->lr_inner = lr_inner;
}

static inline bome_node *f_log(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    bome_node *a = bome_scale(G, bome_square(G, bome_add_scalar(G, x->v[0], 3)), 0.5);
    return bome_add(G, a, bome_scale(G, bome_log(G, x->theta[0]), 0.5));
}

static inline bome_node *g_track(bome_graph *G, const bome_vars *x, void *ctx)
{
    (void)ctx;
    return bome_scale(G, bome_square(G, bome_sub(G, x->theta[0], x->v[0])), 0.5);
}

/* ---- A counting allocator (options.alloc) ---- */

typedef struct counter { long calls, live; size_t allocated, freed; } counter;

static inline void *count_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    counter *c = ud;
    c->calls++;
    if (nsize == 0) {
        if (ptr) {
            c->freed += osize;
            c->live--;
        }
        free(ptr);
        return NULL;
    }
    void *q = realloc(ptr, nsize);
    if (!q)
        return NULL;
    if (ptr)
        c->freed += osize;
    else
        c->live++;
    c->allocated += nsize;
    return q;
}


#endif
