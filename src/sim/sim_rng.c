/*
 * The simulator's one source of randomness (xoshiro256**, seeded through splitmix64) and the
 * trace hash. Every random choice in a run comes from here, in event order, which is what makes
 * a seed reproduce a run exactly.
 */
#include "sim_internal.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void sim_rng_seed(uint64_t st[4], uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        st[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t sim_rng_next(uint64_t st[4])
{
    uint64_t result = rotl(st[1] * 5, 7) * 9;
    uint64_t t = st[1] << 17;
    st[2] ^= st[0];
    st[3] ^= st[1];
    st[1] ^= st[2];
    st[0] ^= st[3];
    st[2] ^= t;
    st[3] = rotl(st[3], 45);
    return result;
}

/* Lemire's multiply-shift; the tiny bias is irrelevant for a simulator and keeps it branch-free. */
uint64_t sim_rng_below(uint64_t st[4], uint64_t n)
{
    if (n == 0)
        return 0;
    return (uint64_t)(((unsigned __int128)sim_rng_next(st) * n) >> 64);
}

bool sim_rng_chance(uint64_t st[4], double p)
{
    if (p <= 0.0)
        return false;
    /* 53 random bits give a uniform double in [0, 1). */
    double u = (double)(sim_rng_next(st) >> 11) * (1.0 / 9007199254740992.0);
    return u < p;
}

#define FNV_PRIME 0x100000001b3ull

/* One multiply per word, as in sim_hash_mix below: a run hashes several values per engine
 * event, and a 10,000-node warm start alone emits 10^8 events. */
uint64_t sim_hash_u64(uint64_t h, uint64_t v)
{
    h = (h ^ v) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

/* Eight bytes per multiply: hashing every delivered byte stays a small share of a run. Words
 * are assembled little-endian by hand so the hash is the same on every host. */
uint64_t sim_hash_mix(uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = data;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w = 0;
        for (int b = 0; b < 8; b++)
            w |= (uint64_t)p[i + (size_t)b] << (8 * b);
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 29;
    }
    for (; i < len; i++) {
        h ^= p[i];
        h *= FNV_PRIME;
    }
    return h;
}
