/*
 * bome/rng.h: the seeded random-number generator every part of bome uses, so
 * that the same seed gives the same data split, minibatches and trajectory on
 * every machine. It is xoshiro256** seeded through splitmix64: fast, 2^256 - 1
 * period, and specified exactly, unlike rand().
 */
#ifndef BOME_RNG_H
#define BOME_RNG_H

#include <stdint.h>
#include <stddef.h>

typedef struct bome_rng { uint64_t s[4]; } bome_rng;

/* Seeds the generator; every seed, 0 included, gives a valid state. */
void bome_rng_seed(bome_rng *r, uint64_t seed);
/* A uniformly distributed 64-bit integer. */
uint64_t bome_rng_u64(bome_rng *r);
/* A uniform double in [0, 1), with 53 random bits. */
double bome_rng_uniform(bome_rng *r);
/* A uniform integer in [0, n), without modulo bias; n > 0. */
uint64_t bome_rng_below(bome_rng *r, uint64_t n);
/* A standard normal draw (Box-Muller; deterministic for a given state). */
double bome_rng_normal(bome_rng *r);
/* Shuffles perm[0..n) in place (Fisher-Yates). */
void bome_rng_shuffle(bome_rng *r, int32_t *perm, size_t n);
/* k distinct indices of [0, n), each k-subset equally likely, into
 * out[0..k) in increasing order (k <= n; k = n gives 0, 1, ..., n - 1).
 * One uniform per index looked at: O(n). Minibatches without replacement. */
void bome_rng_sample(bome_rng *r, size_t n, size_t k, int32_t *out);

#endif
