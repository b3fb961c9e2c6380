/* The engine's PRNG: xoshiro256** seeded through splitmix64 from the host's seed. Not for
 * secrets; protocol choices (probe order, gossip targets, jitter) only. */
#ifndef RUMOR_CORE_RNG_H
#define RUMOR_CORE_RNG_H

#include <stdint.h>

typedef struct rng {
    uint64_t s[4];
} rng;

void rng_seed(rng *r, uint64_t seed);
uint64_t rng_next(rng *r);
/* Uniform in [0, n); n > 0. */
uint32_t rng_below(rng *r, uint32_t n);

#endif
