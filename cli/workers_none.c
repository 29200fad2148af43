/* Built without Open MPI: bome runs as one process, even under mpirun. */
#include "cli.h"

int cli_workers_start(int *argc, char ***argv, bome_options *o)
{
    (void)argc, (void)argv, (void)o;
    return 0;
}

int cli_workers_end(const bome_options *o, int rc)
{
    (void)o;
    return rc;
}

void cli_workers_stats(const bome_options *o, long *sums, double *values)
{
    (void)o;
    *sums = 0;
    *values = 0;
}
