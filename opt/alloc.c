/* The one allocator wrapper of opt: every block comes from options.alloc
 * (a lua_Alloc-style function), so a counting allocator in the tests sees
 * everything the solver takes. */
#include "solver.h"

#include <stdlib.h>
#include <string.h>

static void *system_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}

bome_alloc_fn opt_system_alloc(void) { return system_alloc; }

/* Blocks carry their size in front so that frees can tell the allocator
 * the old size, as a lua_Alloc-style allocator expects. */
#define HEADER 64

void *opt_raw_alloc(bome_alloc_fn a, void *ud, size_t bytes)
{
    if (bytes > SIZE_MAX - HEADER)
        return NULL;
    char *p = a(ud, NULL, 0, bytes + HEADER);
    if (!p)
        return NULL;
    memset(p, 0, bytes + HEADER);
    memcpy(p, &bytes, sizeof bytes);
    return p + HEADER;
}

void opt_raw_free(bome_alloc_fn a, void *ud, void *ptr)
{
    if (!ptr)
        return;
    char *p = (char *)ptr - HEADER;
    size_t bytes;
    memcpy(&bytes, p, sizeof bytes);
    a(ud, p, bytes + HEADER, 0);
}

void *opt_zalloc(bome_solver *s, size_t n, size_t size)
{
    if (n == 0)
        n = 1;
    void *p = size && n > SIZE_MAX / size ? NULL : opt_raw_alloc(s->o.alloc, s->o.alloc_ud, n * size);
    if (!p)
        opt_fail(s, BOME_ERR_NOMEM, "out of memory");
    return p;
}

void opt_zfree(bome_solver *s, void *p) { opt_raw_free(s->o.alloc, s->o.alloc_ud, p); }

bome_real **opt_buffers(bome_solver *s, int from, int to)
{
    bome_real **b = opt_zalloc(s, (size_t)(to - from), sizeof *b);
    for (int k = from; b && k < to; k++)
        if (!(b[k - from] = opt_zalloc(s, s->var[k]->size, sizeof(bome_real))))
            return b; /* freed whole by opt_free_buffers */
    return b;
}

int opt_node_lists(bome_solver *s, int n, bome_node ***const theta[], bome_node ***v)
{
    bome_node **b = opt_zalloc(s, (size_t)n * (size_t)s->nt + (size_t)s->nv, sizeof *b);
    for (int i = 0; b && i < n; i++)
        *theta[i] = b + (size_t)i * (size_t)s->nt;
    if (b)
        *v = b + (size_t)n * (size_t)s->nt;
    return s->status;
}

void opt_free_buffers(bome_solver *s, bome_real **b, int n)
{
    for (int k = 0; b && k < n; k++)
        opt_zfree(s, b[k]);
    opt_zfree(s, b);
}
