#include "core/hlc.h"

uint64_t hlc_now(hlc *c, uint64_t wall_ms)
{
    uint64_t phys = wall_ms & ((1ull << (64 - HLC_LOGICAL_BITS)) - 1u);
    uint64_t candidate = phys << HLC_LOGICAL_BITS;
    /* Same or earlier millisecond than the last stamp: count logically past it. When the
     * logical part would overflow it carries into the physical part, which stays monotonic. */
    c->last = candidate > c->last ? candidate : c->last + 1;
    return c->last;
}

void hlc_observe(hlc *c, uint64_t remote)
{
    if (remote > c->last)
        c->last = remote;
}
