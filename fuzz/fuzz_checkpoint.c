/* libFuzzer harness for bome_solver_load: any bytes, for any method (the
 * first byte picks it), must be refused with a message or loaded, never
 * crash; a loaded state must then step. */
#include "fuzz_problem.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    fz_run r;
    if (fz_open(&r, data[0] % bome_method_count()) == BOME_OK &&
        bome_solver_load(r.s, data + 1, size - 1) == BOME_OK)
        bome_solver_step(r.s, NULL);
    fz_close(&r);
    return 0;
}
