/*
 * Fuzz target for the node's receive paths. A node that knows a few members gets the input as
 * a datagram, then as raw bytes on an accepted stream, then as one well-framed stream frame
 * (so that the fuzzer reaches the push-pull merge without having to learn the length prefix),
 * and is ticked through its probe, suspicion and sync timers.
 *
 * Checked: no crash, no sanitizer report, no leak (the node is freed each run), and everything
 * the node sends is well-formed: each datagram it emits is fed to a second node, which must not
 * drop it as truncated, malformed, oversize or foreign.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/wire.h"
#include "fuzz_common.h"
#include "rumor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static rumor_node *make_node(const char *name, uint8_t idx, uint64_t now)
{
    rumor_settings s;
    fuzz_settings(&s, name, idx);
    rumor_node *n = NULL;
    if (rumor_node_new(&n, &s, now) != RUMOR_OK)
        abort();
    return n;
}

/* Teaches `n` three alive members m1..m3 (addresses 10.0.0.11..13) with one datagram. */
static void teach_members(rumor_node *n, uint64_t now)
{
    uint8_t pkt[512];
    buf_writer w;
    buf_writer_init_fixed(&w, pkt, sizeof(pkt));
    wire_put_header(&w, NULL, 0, 0);
    static const char *names[] = {"m1", "m2", "m3"};
    for (uint8_t i = 0; i < 3; i++) {
        rumor_addr a = addr_of((uint8_t)(11 + i));
        wire_put_alive(&w, 1, wire_str_of(names[i], 2), &a, wire_str_of("role=db", 7));
    }
    rumor_addr from = addr_of(11);
    if (w.failed || rumor_node_receive(n, &from, w.p, w.len, now) != RUMOR_OK)
        abort();
}

static bool foreign_drop(const rumor_stats *a, const rumor_stats *b)
{
    static const rumor_drop_reason bad[] = {
        RUMOR_DROP_TRUNCATED, RUMOR_DROP_BAD_MAGIC, RUMOR_DROP_BAD_VERSION,  RUMOR_DROP_BAD_LABEL,
        RUMOR_DROP_MALFORMED, RUMOR_DROP_OVERSIZE,  RUMOR_DROP_UNKNOWN_TYPE, RUMOR_DROP_ENCRYPTED};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (a->dropped[bad[i]] != b->dropped[bad[i]])
            return true;
    return false;
}

/* Drains `n`: datagrams go to `peer`, which must accept every one; stream writes are checked to
 * be well-framed packets; events are consumed. */
static void drain(rumor_node *n, rumor_node *peer, uint64_t now)
{
    rumor_datagram d;
    rumor_addr from = addr_of(1);
    while (rumor_node_poll_datagram(n, &d)) {
        if (d.len > RUMOR_PACKET_MAX)
            abort();
        rumor_stats before, after;
        rumor_node_stats(peer, &before);
        rumor_node_receive(peer, &from, d.data, d.len, now);
        rumor_node_stats(peer, &after);
        if (foreign_drop(&before, &after))
            abort();
    }
    rumor_stream_op op;
    while (rumor_node_poll_stream(n, &op)) {
        if (op.kind != RUMOR_STREAM_WRITE)
            continue;
        if (op.len < WIRE_FRAME_PREFIX)
            abort();
        uint32_t flen = (uint32_t)op.data[0] << 24 | (uint32_t)op.data[1] << 16 |
                        (uint32_t)op.data[2] << 8 | op.data[3];
        if (flen != op.len - WIRE_FRAME_PREFIX)
            abort();
        buf_reader r;
        buf_reader_init(&r, op.data + WIRE_FRAME_PREFIX, flen);
        wire_header h;
        wire_msg m;
        if (wire_header_decode(&r, &h) != 0)
            abort();
        int rc;
        while ((rc = wire_msg_decode(&r, &m, RUMOR_META_MAX)) == 1) {
        }
        if (rc != 0)
            abort();
    }
    rumor_event ev;
    while (rumor_node_poll_event(n, &ev)) {
        if (ev.member.name_len > RUMOR_NAME_MAX || ev.member.meta_len > RUMOR_META_MAX)
            abort();
    }
    settle_peer(peer, now);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t now = 1000000;
    rumor_node *n = make_node("self", 1, now);
    rumor_node *peer = make_node("peer", 2, now);
    teach_members(n, now);
    teach_members(peer, now);
    drain(n, peer, now);

    rumor_addr from = addr_of(13);
    rumor_node_receive(n, &from, data, size, ++now);
    drain(n, peer, now);

    size_t split = size ? data[0] % (size + 1) : 0;
    feed_stream(n, data, size, split, ++now);
    drain(n, peer, now);

    feed_framed(n, data, size, split, ++now);
    drain(n, peer, now);

    /* Run the timers: probe timeout, indirect probes, suspicion, sync, stream expiry. */
    static const uint64_t steps[] = {1, 250, 1100, 2500, 6000, 20000, 70000};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        uint64_t t = now + steps[i];
        rumor_node_tick(n, t);
        if (rumor_node_deadline(n) < t)
            abort();
        drain(n, peer, t);
    }
    rumor_node_del(n);
    rumor_node_del(peer);
    return 0;
}
