/* A data-parallel run without MPI, for the tests: P workers as P threads
 * of one process, whose bome_workers sum and broadcast meet at a barrier.
 * The sum adds the workers' buffers in rank order, so every worker gets
 * the same values, bit for bit, as bome_workers requires. */
#ifndef BOME_TEST_TEAM_H
#define BOME_TEST_TEAM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bome/opt.h>

enum { TEAM_MAX = 4 };

typedef struct team {
    int P;
    pthread_barrier_t bar;
    bome_real *bufs[TEAM_MAX];
    size_t n[TEAM_MAX];
    long fail_at;             /* the sum (from 1) that fails on every worker; 0: none */
    long sums, broadcasts;    /* counted by worker 0 */
    size_t values;            /* values summed, worker 0's count */
} team;

typedef struct member member;
typedef void (*team_job)(member *m);

struct member {
    team *t;
    int rank;
    bome_workers w;
    bome_real *scratch;       /* the sum's */
    size_t cap;
    long calls;
    team_job job;
    void *arg;                /* the job's */
};

/* Everyone's n must be the same: a mismatch is a bug in opt, which the
 * workers all report. */
static inline int team_meet(member *m, bome_real *buf, size_t n, char *msg, size_t len)
{
    team *t = m->t;
    t->bufs[m->rank] = buf;
    t->n[m->rank] = n;
    pthread_barrier_wait(&t->bar);
    for (int r = 0; r < t->P; r++)
        if (t->n[r] != n) {
            snprintf(msg, len, "worker %d sums %zu values, worker %d %zu", r, t->n[r], m->rank, n);
            pthread_barrier_wait(&t->bar);
            return 1;
        }
    return 0;
}

static inline int team_sum(void *ud, bome_real *buf, size_t n, char *msg, size_t len)
{
    member *m = ud;
    team *t = m->t;
    if (team_meet(m, buf, n, msg, len))
        return 1;
    if (n > m->cap) {
        free(m->scratch);
        m->scratch = malloc(n * sizeof *m->scratch);
        m->cap = n;
    }
    for (size_t i = 0; i < n; i++) {
        bome_real acc = t->bufs[0][i];
        for (int r = 1; r < t->P; r++)
            acc += t->bufs[r][i];
        m->scratch[i] = acc;
    }
    if (m->rank == 0) {
        t->sums++;
        t->values += n;
    }
    bool fail = ++m->calls == t->fail_at;
    pthread_barrier_wait(&t->bar); /* everyone has read every buffer */
    if (fail) {
        snprintf(msg, len, "the team failed at sum %ld", m->calls);
        return 1;
    }
    memcpy(buf, m->scratch, n * sizeof *buf);
    return 0;
}

static inline int team_broadcast(void *ud, bome_real *buf, size_t n, char *msg, size_t len)
{
    member *m = ud;
    team *t = m->t;
    if (team_meet(m, buf, n, msg, len))
        return 1;
    if (m->rank)
        memcpy(buf, t->bufs[0], n * sizeof *buf);
    else
        t->broadcasts++;
    pthread_barrier_wait(&t->bar);
    return 0;
}

static inline void *team_thread(void *arg)
{
    member *m = arg;
    m->job(m);
    return NULL;
}

/* Runs job on P workers, each with its own member (whose arg is args[r]
 * when args is not NULL) and waits for them. fail_at: the sum (from 1)
 * that fails on every worker, or 0. */
static inline void team_run(team *t, int P, long fail_at, team_job job, void **args, member *members)
{
    memset(t, 0, sizeof *t);
    t->P = P;
    t->fail_at = fail_at;
    pthread_barrier_init(&t->bar, NULL, (unsigned)P);
    pthread_t th[TEAM_MAX];
    for (int r = 0; r < P; r++) {
        member *m = &members[r];
        memset(m, 0, sizeof *m);
        m->t = t;
        m->rank = r;
        m->w = (bome_workers){r, P, team_sum, team_broadcast, m};
        m->job = job;
        m->arg = args ? args[r] : NULL;
        pthread_create(&th[r], NULL, team_thread, m);
    }
    for (int r = 0; r < P; r++) {
        pthread_join(th[r], NULL);
        free(members[r].scratch);
    }
    pthread_barrier_destroy(&t->bar);
}

#endif
