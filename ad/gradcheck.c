/* Finite-difference checking of gradients, for users' graphs and for every
 * op's own test. */
#include "internal.h"

#include <math.h>
#include <string.h>

int bome_gradcheck(bome_graph *g, bome_node *y, int n, bome_node *const *params, double eps,
                   bome_gradcheck_report *report)
{
    if (!g)
        return BOME_ERR_ARG;
    if (!report || n < 1 || !params)
        return ad_error(g, BOME_ERR_ARG, "bome_gradcheck: %s", !report ? "report is NULL" : "no params");
    memset(report, 0, sizeof *report);
    if (eps <= 0)
        eps = BOME_REAL_BITS == 32 ? 0x1p-8 : 1e-6;
    size_t bytes;
    bome_node **grads = ad_mul((size_t)n, sizeof(bome_node *), &bytes) ? ad_raw_alloc(g, bytes) : NULL;
    if (!grads)
        return ad_error(g, BOME_ERR_NOMEM, "bome_gradcheck: out of memory");
    int rc = bome_grad(g, y, n, params, grads);
    bome_plan *py = rc ? NULL : bome_plan_new(g, 1, &y);
    bome_plan *pg = py ? bome_plan_new(g, n, grads) : NULL;
    rc = pg ? bome_plan_run(pg) : g->status;
    /* One parameter may be listed many times: the sum can exceed memory. */
    size_t total = 0, abytes = 0;
    bool fits = !rc;
    for (int i = 0; fits && i < n; i++) {
        fits = total <= SIZE_MAX - params[i]->size;
        total += fits ? params[i]->size : 0;
    }
    fits = fits && ad_mul(total, sizeof(bome_real), &abytes);
    bome_real *analytic = fits ? ad_raw_alloc(g, abytes) : NULL;
    if (!rc && !analytic)
        rc = ad_error(g, BOME_ERR_NOMEM, "bome_gradcheck: out of memory");
    if (!rc) {
        /* Copied first: running y again may share buffers with the gradient. */
        size_t at = 0;
        for (int i = 0; i < n; i++) {
            memcpy(analytic + at, grads[i]->data, params[i]->size * sizeof(bome_real));
            at += params[i]->size;
        }
        at = 0;
        report->max_rel_error = -1;
        for (int i = 0; i < n && !rc; i++) {
            bome_real *x = params[i]->data;
            for (size_t k = 0; k < params[i]->size && !rc; k++, at++) {
                bome_real keep = x[k];
                x[k] = (bome_real)(keep + eps);
                double step = x[k];
                rc = bome_plan_run(py);
                bome_real fp = y->data[0];
                x[k] = (bome_real)(keep - eps);
                step -= x[k];
                if (!rc)
                    rc = bome_plan_run(py);
                bome_real fm = y->data[0];
                x[k] = keep;
                double num = ((double)fp - fm) / step, ana = analytic[at];
                double scale = fmax(1.0, fmax(fabs(num), fabs(ana)));
                double err = fabs(num - ana) / scale;
                if (isnan(err))
                    err = INFINITY;
                report->checked++;
                if (err > report->max_rel_error) {
                    report->max_rel_error = err;
                    report->param = i;
                    report->index = k;
                    report->analytic = ana;
                    report->numeric = num;
                }
            }
        }
        if (!rc)
            rc = bome_plan_run(py); /* leave y's value at the unperturbed point */
        ad_raw_free(g, analytic, abytes);
    }
    ad_raw_free(g, grads, bytes);
    return rc;
}
