/* The table of methods: the one list the solver dispatches through and
 * the CLI, its help, the JSON and the tests read. A new method is a file in
 * methods/ and one line here (and, for C callers, an enum name in opt.h). */
#include "method.h"

#include <string.h>

extern const opt_method opt_method_bome, opt_method_itd, opt_method_aid_cg, opt_method_bsg1, opt_method_fo_blo,
    opt_method_ufo_blo, opt_method_exact;
extern const opt_method opt_method_aid_fp, opt_method_reverse, opt_method_stocbio;
extern const opt_method opt_method_penalty, opt_method_bvfsm, opt_method_f2sa, opt_method_vpbgd;

static const opt_method *const table[] = {
    &opt_method_bome,   /* BOME_METHOD_BOME */
    &opt_method_itd,    /* BOME_METHOD_ITD */
    &opt_method_aid_cg, /* BOME_METHOD_AID_CG */
    &opt_method_bsg1,   /* BOME_METHOD_BSG1 */
    &opt_method_fo_blo, /* BOME_METHOD_FO_BLO */
    &opt_method_ufo_blo,/* BOME_METHOD_UFO_BLO */
    &opt_method_exact,  /* BOME_METHOD_EXACT */
    &opt_method_aid_fp, /* BOME_METHOD_AID_FP */
    &opt_method_reverse, /* BOME_METHOD_REVERSE */
    &opt_method_stocbio, /* BOME_METHOD_STOCBIO */
    &opt_method_penalty, /* BOME_METHOD_PENALTY */
    &opt_method_bvfsm,  /* BOME_METHOD_BVFSM */
    &opt_method_f2sa,   /* BOME_METHOD_F2SA */
    &opt_method_vpbgd,  /* BOME_METHOD_VPBGD */
};
enum { N = sizeof table / sizeof table[0] };
_Static_assert(N == (int)BOME_METHOD_COUNT_, "opt.h's bome_method names the methods of this table, in its order");

int bome_method_count(void) { return N; }
const opt_method *opt_method_at(int m) { return m >= 0 && m < N ? table[m] : NULL; }
const char *bome_method_name(int m) { return m >= 0 && m < N ? table[m]->name : NULL; }
const char *bome_method_summary(int m) { return m >= 0 && m < N ? table[m]->summary : NULL; }
int bome_method_order(int m) { return m >= 0 && m < N ? table[m]->order : 0; }

int bome_method_from_name(const char *name)
{
    for (int m = 0; name && m < N; m++)
        if (!strcmp(table[m]->name, name))
            return m;
    return -1;
}

int opt_method_param_base(int m)
{
    int base = 0;
    for (int i = 0; i < m && i < N; i++)
        base += table[i]->n_params;
    return base;
}
