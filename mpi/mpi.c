/* bome_workers over MPI (bome/mpi.h): the sums are MPI_Allreduce, the
 * broadcast MPI_Bcast, on a duplicate of the caller's communicator whose
 * errors return as codes. */
#include "bome/mpi.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

/* The MPI type of the build's bome_real. */
#ifdef BOME_FLOAT32
#define REAL_MPI_TYPE MPI_FLOAT
#else
#define REAL_MPI_TYPE MPI_DOUBLE
#endif

typedef struct ctx {
    bome_workers w;         /* first: what options.workers points at */
    MPI_Comm comm;
    bome_mpi_stats st;
} ctx;

/* 0, or 1 with MPI's message for code in msg. */
static int failed(int code, const char *what, size_t n, char *msg, size_t len)
{
    if (code == MPI_SUCCESS)
        return 0;
    char s[MPI_MAX_ERROR_STRING] = "";
    int l = 0;
    MPI_Error_string(code, s, &l);
    snprintf(msg, len, "%s of %zu values: MPI error %d: %s", what, n, code, s);
    return 1;
}

static int allreduce(bome_real *buf, int n, MPI_Comm comm)
{
    return MPI_Allreduce(MPI_IN_PLACE, buf, n, REAL_MPI_TYPE, MPI_SUM, comm);
}

static int bcast(bome_real *buf, int n, MPI_Comm comm) { return MPI_Bcast(buf, n, REAL_MPI_TYPE, 0, comm); }

/* call over buf[0..n) in pieces (MPI counts are ints), timed and counted
 * into *calls; 0, or 1 with the message. */
static int in_pieces(ctx *c, int (*call)(bome_real *, int, MPI_Comm), const char *what, long *calls, bome_real *buf,
                     size_t n, char *msg, size_t len)
{
    double t0 = MPI_Wtime();
    for (size_t at = 0; at < n;) {
        int m = n - at > INT_MAX ? INT_MAX : (int)(n - at);
        if (failed(call(buf + at, m, c->comm), what, n, msg, len))
            return 1;
        at += (size_t)m;
    }
    ++*calls;
    c->st.values += (double)n;
    c->st.seconds += MPI_Wtime() - t0;
    return 0;
}

static int sum(void *ud, bome_real *buf, size_t n, char *msg, size_t len)
{
    ctx *c = ud;
    return in_pieces(c, allreduce, "MPI_Allreduce", &c->st.sums, buf, n, msg, len);
}

static int broadcast(void *ud, bome_real *buf, size_t n, char *msg, size_t len)
{
    ctx *c = ud;
    return in_pieces(c, bcast, "MPI_Bcast", &c->st.broadcasts, buf, n, msg, len);
}

/* Called by MPI_Finalize, which frees MPI_COMM_SELF's attributes first. */
static int release(MPI_Comm self, int key, void *attr, void *extra)
{
    (void)self;
    (void)key;
    (void)extra;
    ctx *c = attr;
    MPI_Comm_free(&c->comm);
    free(c);
    return MPI_SUCCESS;
}

int bome_options_use_mpi(bome_options *o, MPI_Comm comm)
{
    int init = 0, fin = 0;
    if (!o)
        return BOME_ERR_ARG;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (!init || fin)
        return BOME_ERR_STATE;
    ctx *c = calloc(1, sizeof *c);
    if (!c)
        return BOME_ERR_NOMEM;
    int key = MPI_KEYVAL_INVALID;
    if (MPI_Comm_dup(comm, &c->comm) != MPI_SUCCESS) {
        free(c);
        return BOME_ERR_WORKERS;
    }
    int rc = MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_rank(c->comm, &c->w.rank);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_size(c->comm, &c->w.size);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, release, &key, NULL);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_set_attr(MPI_COMM_SELF, key, c);
    if (key != MPI_KEYVAL_INVALID)
        MPI_Comm_free_keyval(&key); /* the attribute keeps it alive */
    if (rc != MPI_SUCCESS) {
        MPI_Comm_free(&c->comm);
        free(c);
        return BOME_ERR_WORKERS;
    }
    c->w.sum = sum;
    c->w.broadcast = broadcast;
    c->w.ud = c;
    o->workers = &c->w;
    return BOME_OK;
}

static const ctx *ours(const bome_options *o)
{
    return o && o->workers && o->workers->sum == sum ? (const ctx *)o->workers->ud : NULL;
}

int bome_mpi_stats_get(const bome_options *o, bome_mpi_stats *st)
{
    const ctx *c = ours(o);
    if (!c || !st)
        return BOME_ERR_ARG;
    *st = c->st;
    return BOME_OK;
}

int bome_mpi_gather(const bome_options *o, const bome_real *mine, int n, bome_real *all)
{
    const ctx *c = ours(o);
    if (!c || n < 0 || (n > 0 && !mine))
        return BOME_ERR_ARG;
    int P = c->w.size;
    int *counts = calloc((size_t)P, sizeof *counts), *at = calloc((size_t)P, sizeof *at);
    if (!counts || !at) { /* the others wait in the gather: end the job */
        free(counts);
        free(at);
        return BOME_ERR_NOMEM;
    }
    /* every rank learns every count, so that all agree on what follows */
    int rc = MPI_Allgather(&n, 1, MPI_INT, counts, 1, MPI_INT, c->comm);
    long total = 0;
    for (int r = 0; r < P; r++) {
        at[r] = (int)(total < INT_MAX ? total : 0);
        total += counts[r];
    }
    if (rc == MPI_SUCCESS && total > INT_MAX)
        rc = MPI_ERR_COUNT;
    else if (rc == MPI_SUCCESS)
        rc = MPI_Gatherv(mine, n, REAL_MPI_TYPE, all, counts, at, REAL_MPI_TYPE, 0, c->comm);
    free(counts);
    free(at);
    return rc == MPI_SUCCESS ? BOME_OK : rc == MPI_ERR_COUNT ? BOME_ERR_ARG : BOME_ERR_WORKERS;
}
