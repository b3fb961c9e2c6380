/*
 * Node set-up and stream feeding shared by the node-level fuzz targets (fuzz_node, fuzz_ident,
 * fuzz_seal). Header-only: each target is one translation unit linked with replay.c or
 * libFuzzer.
 */
#ifndef RUMOR_FUZZ_COMMON_H
#define RUMOR_FUZZ_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/wire.h"
#include "rumor.h"

/* 10.0.0.i */
static inline rumor_addr addr_of(uint8_t i)
{
    rumor_addr a;
    memset(&a, 0, sizeof(a));
    a.len = 4;
    a.bytes[0] = 10;
    a.bytes[3] = i;
    return a;
}

/* Local-profile settings for node `name` at 10.0.0.idx, seed 42 + idx, small tables and a
 * 1 MiB stream frame limit; the target adds its own options (identity, keys) on top. */
static inline void fuzz_settings(rumor_settings *s, const char *name, uint8_t idx)
{
    rumor_settings_default(s, RUMOR_PROFILE_LOCAL);
    s->name = name;
    s->addr = addr_of(idx);
    s->seed = 42 + idx;
    s->streams_max = 8;
    s->members_max = 64;
    s->stream_frame_bytes_max = 1u << 20;
}

/* Accepts a stream from 10.0.0.12 and writes `data` in two pieces split at `split` (the frame
 * reassembly must not depend on how bytes arrive), then closes it. */
static inline void feed_stream(rumor_node *n, const uint8_t *data, size_t size, size_t split,
                               uint64_t now)
{
    uint64_t id;
    rumor_addr from = addr_of(12);
    if (rumor_node_stream_accept(n, &from, &id, now) != RUMOR_OK)
        return;
    if (rumor_node_stream_data(n, id, data, split, now) == RUMOR_ERR_NOT_FOUND)
        return;
    if (rumor_node_stream_data(n, id, data + split, size - split, now) == RUMOR_ERR_NOT_FOUND)
        return;
    rumor_node_stream_closed(n, id, now);
}

/* feed_stream of `data` behind a correct u32be length prefix, so the input reaches the packet
 * decoders as one well-framed stream frame. */
static inline void feed_framed(rumor_node *n, const uint8_t *data, size_t size, size_t split,
                               uint64_t now)
{
    uint8_t *framed = malloc(size + WIRE_FRAME_PREFIX);
    if (!framed)
        abort();
    framed[0] = (uint8_t)(size >> 24);
    framed[1] = (uint8_t)(size >> 16);
    framed[2] = (uint8_t)(size >> 8);
    framed[3] = (uint8_t)size;
    if (size)
        memcpy(framed + WIRE_FRAME_PREFIX, data, size);
    feed_stream(n, framed, size + WIRE_FRAME_PREFIX, split, now);
    free(framed);
}

/* Ticks the checking peer and discards whatever it sends or reports. */
static inline void settle_peer(rumor_node *peer, uint64_t now)
{
    rumor_datagram d;
    rumor_stream_op op;
    rumor_event ev;
    rumor_node_tick(peer, now);
    while (rumor_node_poll_datagram(peer, &d)) {
    }
    while (rumor_node_poll_stream(peer, &op)) {
    }
    while (rumor_node_poll_event(peer, &ev)) {
    }
}

#endif
