#include "bome/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void bome_rng_seed(bome_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

uint64_t bome_rng_u64(bome_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double bome_rng_uniform(bome_rng *r)
{
    return (double)(bome_rng_u64(r) >> 11) * 0x1.0p-53;
}

uint64_t bome_rng_below(bome_rng *r, uint64_t n)
{
    /* Rejection keeps the draw exactly uniform; the loop runs more than once
     * with probability below n / 2^64. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = bome_rng_u64(r);
    while (x >= limit);
    return x % n;
}

double bome_rng_normal(bome_rng *r)
{
    double u1 = 1.0 - bome_rng_uniform(r); /* in (0, 1]: log stays finite */
    double u2 = bome_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void bome_rng_shuffle(bome_rng *r, int32_t *perm, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)bome_rng_below(r, i);
        int32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

void bome_rng_sample(bome_rng *r, size_t n, size_t k, int32_t *out)
{
    /* Knuth's selection sampling: one pass, no state but the generator, and
     * the rows come out in order, so k = n is the identity. */
    size_t chosen = 0;
    for (size_t i = 0; i < n && chosen < k; i++)
        if ((double)(n - i) * bome_rng_uniform(r) < (double)(k - chosen))
            out[chosen++] = (int32_t)i;
}
