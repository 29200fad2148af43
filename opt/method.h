/* The interface every bilevel method implements, as GSL's minimizer types
 * do: a const table entry with the method's name, its own settings and
 * three functions. The solver allocates and zeroes the method's state,
 * dispatches through the entry and frees the state; a method is one file
 * plus one line in methods.c. */
#ifndef OPT_METHOD_H
#define OPT_METHOD_H

#include "solver.h"

/* A setting's description plus where it lives: a field of bome_options
 * (shared settings) or a slot in param[] (a method's own). */
typedef enum opt_ctype { OPT_CT_SLOT = 0, OPT_CT_INT, OPT_CT_LONG, OPT_CT_U64, OPT_CT_DOUBLE, OPT_CT_ENUM } opt_ctype;

typedef struct opt_setting {
    bome_option_info info;  /* info.method is filled in when listed */
    opt_ctype ctype;
    size_t offset;          /* into bome_options, for the shared ones */
} opt_setting;

/* A method's own setting: name, default, range [lo, hi], help. */
#define OPT_REAL(name, def, lo, hi, help) {{name, NULL, help, BOME_OPTION_REAL, def, lo, hi, 0, NULL, -1}, OPT_CT_SLOT, 0}
#define OPT_INT(name, def, lo, hi, help) {{name, NULL, help, BOME_OPTION_INT, def, lo, hi, 0, NULL, -1}, OPT_CT_SLOT, 0}
#define OPT_CHOICE(name, def, choices, n, help) \
    {{name, NULL, help, BOME_OPTION_CHOICE, def, 0, (n) - 1, 0, choices, -1}, OPT_CT_SLOT, 0}

enum {
    OPT_INNER_LOOP = 1,      /* the solver builds the shared inner loop on g */
    OPT_KEEPS_MOMENTUM = 2,  /* that loop honours inner_momentum_keep */
    OPT_TASKS = 4,           /* averages over a meta-batch of tasks itself */
};

typedef struct opt_method {
    const char *name;        /* as --method spells it */
    const char *summary;     /* one line */
    int order;               /* 1: gradients only; 2: Hessian-vector products */
    unsigned flags;
    size_t state_size;
    const opt_setting *params;
    int n_params;
    /* Builds the method's graphs and plans once. The solver has created the
     * variables (s->x), the data (s->data) and, with OPT_INNER_LOOP, the
     * inner params (s->inner) but not the inner loop's graph. */
    int (*build)(bome_solver *s, void *state);
    /* One outer step; fills r; allocates nothing. */
    int (*step)(bome_solver *s, void *state, bome_step_stats *r);
    /* Frees what build allocated beyond the state itself (may be NULL). */
    void (*free)(bome_solver *s, void *state);
} opt_method;

#define OPT_PARAMS(a) a, (int)(sizeof a / sizeof a[0])

/* methods.c: the table. */
const opt_method *opt_method_at(int m);
/* The first slot of method m's settings in bome_options.param. */
int opt_method_param_base(int m);

/* options.c */
int opt_check_options(bome_solver *s, const bome_options *o);

#endif
