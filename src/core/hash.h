/* The engine's non-cryptographic hashes: FNV-1a over bytes and splitmix64's finalizer (which
 * spreads every input bit over the whole word), shared by the member, key-value and message
 * digests. */
#ifndef RUMOR_CORE_HASH_H
#define RUMOR_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV64_INIT 0xcbf29ce484222325ull

/* FNV-1a (64-bit) of `len` bytes at `p`, continuing from `h` (HASH_FNV64_INIT to start). */
static inline uint64_t hash_fnv64(uint64_t h, const void *p, size_t len)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* splitmix64's finalizer. */
static inline uint64_t hash_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

#endif
