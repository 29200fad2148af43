/* The registry of the paper's small problems, for the CLI and the tests. */
#include "cases.h"

#include <string.h>

const bome_case *const bome_cases[] = {
    &bome_case_coreset, &bome_case_nonsingleton, &bome_case_minimax, &bome_case_ridge, NULL,
};

const bome_case *bome_case_find(const char *name)
{
    for (int i = 0; name && bome_cases[i]; i++)
        if (strcmp(bome_cases[i]->name, name) == 0)
            return bome_cases[i];
    return NULL;
}
