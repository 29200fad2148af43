/*
 * bome/mpi.h: data-parallel runs over MPI, the optional component that
 * fills in bome/opt.h's workers (library bome_mpi; pkg-config bome-mpi).
 *
 *     MPI_Init(&argc, &argv);
 *     int rank, size;
 *     MPI_Comm_rank(MPI_COMM_WORLD, &rank);
 *     MPI_Comm_size(MPI_COMM_WORLD, &size);
 *     // this process's rows only: bome_shard_rows(n, rank, size, &b, &e)
 *     bome_problem *p = ...;               // f and g as shares (bome/opt.h)
 *     bome_options o;
 *     bome_options_default(&o);
 *     if (bome_options_use_mpi(&o, MPI_COMM_WORLD) != BOME_OK)
 *         MPI_Abort(MPI_COMM_WORLD, 1);
 *     int rc = bome_solve(p, &o, &last);   // every rank takes the same steps
 *     if (rc != BOME_OK) {                 // another rank may be waiting for this one
 *         fprintf(stderr, "rank %d: %s\n", rank, bome_problem_errmsg(p));
 *         MPI_Abort(MPI_COMM_WORLD, 1);
 *     }
 *     MPI_Finalize();
 *
 * run as `mpirun -np 4 ./program`. Each process is one worker, its rank in
 * comm; the sums are MPI_Allreduce (MPI_SUM) of doubles, which gives every
 * rank the same bits, and the same bits again for the same number of ranks.
 * The calls return errors instead of aborting (MPI_ERRORS_RETURN on a
 * communicator of their own), as BOME_ERR_WORKERS with MPI's message. A
 * rank that dies ends the job: mpirun then stops the others.
 */
#ifndef BOME_MPI_H
#define BOME_MPI_H

#include <mpi.h>

#include "bome/opt.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Makes o's solvers run across the processes of comm: o->workers then
 * points at a bome_workers whose sums go through a duplicate of comm. It
 * lives until MPI_Finalize, which frees it. Collective over comm: every
 * process calls it. BOME_OK; BOME_ERR_STATE if MPI is not initialized;
 * BOME_ERR_ARG for a NULL o; BOME_ERR_NOMEM; BOME_ERR_WORKERS if MPI fails.
 */
int bome_options_use_mpi(bome_options *o, MPI_Comm comm);

/* What the sums and broadcasts of o's workers have done so far. */
typedef struct bome_mpi_stats {
    long sums, broadcasts;  /* calls */
    double values;          /* values summed or broadcast */
    double seconds;         /* wall time inside them (waiting for the others too) */
} bome_mpi_stats;

/* BOME_ERR_ARG if o's workers are not bome_mpi's. */
int bome_mpi_stats_get(const bome_options *o, bome_mpi_stats *st);

/*
 * Gathers the ranks' shards of a sharded variable, in rank order, into
 * all on rank 0 (n: this rank's count; all may be NULL on the others):
 * for saving what a sharded variable became. Collective.
 */
int bome_mpi_gather(const bome_options *o, const bome_real *mine, int n, bome_real *all);

#ifdef __cplusplus
}
#endif

#endif
