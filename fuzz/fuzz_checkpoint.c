/* libFuzzer harness for bome_solver_load: any bytes, for any method (the
 * first byte picks it), must be refused with a message or loaded, never
 * crash; a loaded state must then step. A method's solver is made once and
 * kept: a refused load changes nothing and an accepted one replaces the
 * whole state, so each input sees the same solver, and building one per
 * input would be most of the fuzzer's time. One whose step failed is made
 * anew. */
#include "fuzz_problem.h"

#include <stdbool.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static fz_run runs[64];
    static bool open[64];
    int m = data[0] % bome_method_count();
    if (m >= 64)
        return 0;
    fz_run *r = &runs[m];
    if (!open[m] && fz_open(r, m) != BOME_OK) {
        fz_close(r);
        return 0;
    }
    open[m] = true;
    if (bome_solver_load(r->s, data + 1, size - 1) == BOME_OK &&
        (bome_solver_step(r->s, NULL) != BOME_OK || bome_solver_status(r->s) != BOME_OK)) {
        fz_close(r);
        open[m] = false;
    }
    return 0;
}
