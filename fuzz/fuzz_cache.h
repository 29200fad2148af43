/* The model and key the cache fuzzer reads into, shared with make_seeds so
 * that the seeds are caches the harness accepts: a linear model (6 features,
 * 3 classes) or a small MLP (4-3-2), keyed by a fit on fixed rows. */
#ifndef FUZZ_CACHE_H
#define FUZZ_CACHE_H

#include "hc_model.h"

static int fc_open(hc_model *m, hc_cache_key *k, int mlp)
{
    static double x[4 * 6];
    static const int32_t y[4] = {0, 1, 2, 1};
    for (int i = 0; i < 24; i++)
        x[i] = 0.25 * i;
    int rc = mlp ? hc_model_init(m, true, 4, 3, 2, 5) : hc_model_init(m, false, 6, 0, 3, 5);
    if (rc)
        return rc;
    hc_set a = {x, y, 4}, none = {NULL, NULL, 0};
    hc_fit fit = {.steps = 10, .lr = 0.1, .l2 = 1e-3};
    hc_cache_key_make(k, mlp ? "mlp" : "linear", m, a, none, none, &fit, 7);
    return BOME_OK;
}

#endif
