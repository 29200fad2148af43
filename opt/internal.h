/* Private to the opt module: the problem's declarations. Not installed. */
#ifndef BOME_OPT_INTERNAL_H
#define BOME_OPT_INTERNAL_H

#include "bome/opt.h"

#include <stdbool.h>

typedef struct opt_var {
    char name[64];
    bome_shape shape;
    size_t size;
    bome_real *values;      /* caller's memory */
    bool bounded;
    bome_real lo, hi;
} opt_var;

typedef struct opt_data {
    char name[64];
    bome_shape shape;
    bool labels;
    const bome_real *values;
    const int32_t *labels_values;
} opt_data;

struct bome_problem {
    opt_var *vars[2];       /* BOME_OUTER, BOME_INNER */
    int n_vars[2], cap_vars[2];
    opt_data *data;
    int n_data, cap_data;
    bome_objective_fn f, g;
    void *ctx;
    int status;
    char msg[512];
};

int opt_error(bome_problem *p, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
