/*
 * Hybrid logical clock (Kulkarni et al. 2014): 48 bits of physical milliseconds and 16 bits of
 * logical counter in one uint64, so stamps compare as integers. The physical part comes from
 * the host (the engine reads no clock); a stamp never goes backwards and always exceeds every
 * stamp the node has seen, so last-writer-wins follows causality even with skewed clocks.
 */
#ifndef RUMOR_CORE_HLC_H
#define RUMOR_CORE_HLC_H

#include <stdint.h>

#define HLC_LOGICAL_BITS 16
#define HLC_LOGICAL_MASK ((1u << HLC_LOGICAL_BITS) - 1u)

typedef struct hlc {
    uint64_t last;
} hlc;

static inline uint64_t hlc_physical(uint64_t stamp)
{
    return stamp >> HLC_LOGICAL_BITS;
}

/* A stamp for a local event at wall time `wall_ms`. */
uint64_t hlc_now(hlc *c, uint64_t wall_ms);
/* Folds in a stamp received from another node. */
void hlc_observe(hlc *c, uint64_t remote);

#endif
