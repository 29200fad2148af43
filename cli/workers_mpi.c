/* `mpirun -np P bome run ...`: the program's workers over MPI. bome joins
 * MPI only when a launcher started it, so that a plain `bome` never
 * touches MPI (nor its start-up cost). */
#include "cli.h"

#include "bome/mpi.h"

#include <stdlib.h>

static bool launched(void)
{
    /* Open MPI's mpirun, PMIx launchers, MPICH's Hydra */
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE");
}

int cli_workers_start(int *argc, char ***argv, bome_options *o)
{
    if (!launched())
        return 0;
    int size = 1;
    if (MPI_Init(argc, argv) != MPI_SUCCESS)
        return fprintf(stderr, "bome: MPI_Init failed\n"), 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size > 1 && bome_options_use_mpi(o, MPI_COMM_WORLD) != BOME_OK) {
        fprintf(stderr, "bome: cannot set up the workers over MPI\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return 0;
}

int cli_workers_end(const bome_options *o, int rc)
{
    int init = 0;
    MPI_Initialized(&init);
    if (!init)
        return rc;
    /* a failure may be this process's alone, with the others waiting in a
     * sum for it: end the job; a usage error (2) is every process's, found
     * before any sum, and ends each cleanly */
    if (rc && rc != 2 && o->workers)
        MPI_Abort(MPI_COMM_WORLD, rc);
    MPI_Finalize();
    return rc;
}

void cli_workers_stats(const bome_options *o, long *sums, double *values)
{
    bome_mpi_stats st = {0};
    bool ok = o->workers && bome_mpi_stats_get(o, &st) == BOME_OK;
    *sums = ok ? st.sums + st.broadcasts : 0;
    *values = ok ? st.values : 0;
}
