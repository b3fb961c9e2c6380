/*
 * Fuzz target for the wire decoder (docs/protocol.md): the header, every message of a packet,
 * every member record of a push-pull state and every filter of a query. Besides "never crash, never
 * read out of bounds", it checks two properties the engine relies on:
 *
 *   - a push-pull state accepted by wire_msg_decode() yields exactly `count` records through
 *     wire_member_next() (recv/sync apply it without re-checking);
 *   - every decoded message re-encodes to bytes that decode to the same fields (the encoder and
 *     decoder agree on the format), identity trailers included (docs/protocol.md section 12).
 *
 * When the header does not decode, the input is also read as bare messages, so that the fuzzer
 * reaches the message decoders without first having to discover the header.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Re-encoding room. A message read from `len` input bytes re-encodes into at most `len` bytes
 * (minimal varints, appended fields dropped); longer inputs (large stream frames) are skipped. */
#define REENCODE_MAX (RUMOR_PACKET_MAX + 1024)

static uint8_t scratch[REENCODE_MAX];

static bool str_eq(wire_str a, wire_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static void check(bool ok)
{
    if (!ok)
        abort();
}

static void reencode(const wire_msg *m, buf_writer *w)
{
    switch (m->type) {
    case WIRE_PING:
        wire_put_ping(w, m->u.ping.seq, m->u.ping.target, m->u.ping.sender);
        break;
    case WIRE_PING_REQ:
        wire_put_ping_req(w, m->u.ping_req.seq, m->u.ping_req.target, &m->u.ping_req.target_addr,
                          m->u.ping_req.nack, m->u.ping_req.sender);
        break;
    case WIRE_ACK:
    case WIRE_NACK:
        wire_put_ack(w, m->type, m->u.ack.seq);
        break;
    case WIRE_ALIVE: {
        wire_ident id;
        wire_alive_ident(m, &id);
        wire_put_alive_ident(w, m->u.alive.inc, m->u.alive.name, &m->u.alive.addr, m->u.alive.meta,
                             &id);
        break;
    }
    case WIRE_SUSPECT:
    case WIRE_FAILED:
    case WIRE_LEFT: {
        wire_ident id;
        wire_accuse_ident(m, &id);
        wire_put_accuse_ident(w, m->type, m->u.accuse.inc, m->u.accuse.name, m->u.accuse.accuser,
                              id.present ? id.sig : NULL);
        break;
    }
    case WIRE_PUSHPULL: {
        buf_reader r = m->u.pushpull.members, ir;
        wire_member wm;
        wire_ident id;
        size_t bytes = 0, idbytes = 0;
        bool ids = wire_pushpull_idents(m, &ir);
        for (uint32_t i = 0; i < m->u.pushpull.count; i++) {
            check(wire_member_next(&r, &wm));
            bytes += wire_member_size(&wm);
            if (ids) {
                check(wire_ident_next(&ir, &id));
                idbytes += wire_ident_block_size(&id);
            }
        }
        wire_put_pushpull_begin_ident(w, m->u.pushpull.flags, m->u.pushpull.sender,
                                      m->u.pushpull.count, bytes, ids ? 1 + idbytes : 0);
        r = m->u.pushpull.members;
        for (uint32_t i = 0; i < m->u.pushpull.count; i++) {
            check(wire_member_next(&r, &wm));
            wire_put_member(w, &wm);
        }
        wire_put_pushpull_end(w, m->u.pushpull.digest);
        if (ids) {
            buf_put_u8(w, WIRE_IDENT_V1);
            check(wire_pushpull_idents(m, &ir));
            for (uint32_t i = 0; i < m->u.pushpull.count; i++) {
                check(wire_ident_next(&ir, &id));
                wire_put_ident_block(w, &id);
            }
        }
        break;
    }
    case WIRE_KV_DIGEST: {
        buf_reader r = m->u.kv_digest.entries;
        wire_str o;
        uint64_t max, gc;
        size_t bytes = 0;
        for (uint32_t i = 0; i < m->u.kv_digest.count; i++) {
            check(wire_kv_digest_next(&r, &o, &max, &gc));
            bytes += wire_kv_digest_entry_size(o, max, gc);
        }
        wire_put_kv_digest_begin(w, m->u.kv_digest.flags, m->u.kv_digest.count, bytes);
        r = m->u.kv_digest.entries;
        for (uint32_t i = 0; i < m->u.kv_digest.count; i++) {
            check(wire_kv_digest_next(&r, &o, &max, &gc));
            wire_put_kv_digest_entry(w, o, max, gc);
        }
        wire_put_kv_digest_end(w, m->u.kv_digest.sum);
        break;
    }
    case WIRE_KV_DELTA: {
        buf_reader r = m->u.kv_delta.entries;
        wire_kv_entry e;
        size_t bytes = 0;
        for (uint32_t i = 0; i < m->u.kv_delta.count; i++) {
            check(wire_kv_entry_next(&r, &e));
            bytes += wire_kv_entry_size(&e);
        }
        const uint8_t *sigs = wire_kv_delta_sigs(m);
        wire_put_kv_delta_begin(w, m->u.kv_delta.origin, m->u.kv_delta.flags, m->u.kv_delta.since,
                                m->u.kv_delta.origin_max, m->u.kv_delta.gc_version,
                                m->u.kv_delta.count,
                                bytes + (sigs ? wire_kv_sigs_size(m->u.kv_delta.count) : 0));
        r = m->u.kv_delta.entries;
        for (uint32_t i = 0; i < m->u.kv_delta.count; i++) {
            check(wire_kv_entry_next(&r, &e));
            wire_put_kv_entry(w, &e);
        }
        if (sigs) {
            buf_put_u8(w, WIRE_IDENT_V1);
            buf_put_bytes(w, sigs, wire_kv_sigs_size(m->u.kv_delta.count) - 1);
        }
        break;
    }
    case WIRE_USER_EVENT:
        wire_put_user_event(w, m->u.user_event.ltime, m->u.user_event.origin, m->u.user_event.name,
                            m->u.user_event.payload);
        break;
    case WIRE_QUERY: {
        /* Rebuild the variable part from its decoded pieces, not from its bytes. */
        static wire_str nodes[REENCODE_MAX / 2], keys[REENCODE_MAX / 3], values[REENCODE_MAX / 3];
        static uint8_t rest[REENCODE_MAX];
        wire_query_parts q;
        wire_query_parts_of(m->u.query.rest, &q);
        check(q.nnodes <= REENCODE_MAX / 2 && q.ntags <= REENCODE_MAX / 3);
        for (uint32_t i = 0; i < q.nnodes; i++)
            check(wire_query_node_next(&q.nodes, &nodes[i]));
        for (uint32_t i = 0; i < q.ntags; i++)
            check(wire_query_tag_next(&q.tags, &keys[i], &values[i]));
        buf_writer rw;
        buf_writer_init_fixed(&rw, rest, sizeof(rest));
        wire_put_query_rest(&rw, nodes, q.nnodes, keys, values, q.ntags, q.name, q.payload);
        check(!rw.failed && rw.len == wire_query_rest_size(nodes, q.nnodes, keys, values, q.ntags,
                                                           q.name, q.payload));
        rumor_addr a;
        wire_addr_of(m->u.query.addr, &a);
        wire_put_query(w, m->u.query.ltime, m->u.query.id, m->u.query.origin, &a, m->u.query.flags,
                       m->u.query.timeout_ms, wire_str_of(rw.p, rw.len));
        break;
    }
    case WIRE_QUERY_RESP:
        wire_put_query_resp(w, m->u.query_resp.ltime, m->u.query_resp.id, m->u.query_resp.from,
                            m->u.query_resp.flags, m->u.query_resp.payload);
        break;
    case WIRE_CLOCKS:
        wire_put_clocks(w, m->u.clocks.flags, m->u.clocks.event_ltime, m->u.clocks.query_ltime,
                        m->u.clocks.event_sum);
        break;
    default:
        break;
    }
}

static void compare_query(const wire_msg *a, const wire_msg *b)
{
    check(a->u.query.ltime == b->u.query.ltime && a->u.query.id == b->u.query.id &&
          a->u.query.flags == b->u.query.flags && a->u.query.timeout_ms == b->u.query.timeout_ms &&
          str_eq(a->u.query.origin, b->u.query.origin) && str_eq(a->u.query.addr, b->u.query.addr));
    wire_query_parts x, y;
    wire_query_parts_of(a->u.query.rest, &x);
    wire_query_parts_of(b->u.query.rest, &y);
    check(x.nnodes == y.nnodes && x.ntags == y.ntags && str_eq(x.name, y.name) &&
          str_eq(x.payload, y.payload));
    wire_str p, q, r, t;
    for (uint32_t i = 0; i < x.nnodes; i++) {
        check(wire_query_node_next(&x.nodes, &p) && wire_query_node_next(&y.nodes, &q));
        check(str_eq(p, q));
    }
    for (uint32_t i = 0; i < x.ntags; i++) {
        check(wire_query_tag_next(&x.tags, &p, &q) && wire_query_tag_next(&y.tags, &r, &t));
        check(str_eq(p, r) && str_eq(q, t));
    }
}

static void compare_members(const wire_msg *a, const wire_msg *b)
{
    buf_reader ra = a->u.pushpull.members, rb = b->u.pushpull.members;
    wire_member x, y;
    for (uint32_t i = 0; i < a->u.pushpull.count; i++) {
        check(wire_member_next(&ra, &x));
        check(wire_member_next(&rb, &y));
        check(str_eq(x.name, y.name) && rumor_addr_equal(&x.addr, &y.addr) && x.inc == y.inc &&
              x.state == y.state && str_eq(x.meta, y.meta));
    }
}

static bool bytes_eq(const uint8_t *a, const uint8_t *b, size_t n)
{
    return (!a && !b) || (a && b && memcmp(a, b, n) == 0);
}

static void compare_ident(const wire_ident *a, const wire_ident *b, bool block)
{
    check(a->present == b->present && a->has_cert == b->has_cert);
    if (!a->present)
        return;
    check(bytes_eq(a->sig, b->sig, WIRE_SIG_BYTES));
    if (block)
        check(bytes_eq(a->pk, b->pk, WIRE_KEY_BYTES));
    if (a->has_cert)
        check(a->cert_expires_ms == b->cert_expires_ms &&
              bytes_eq(a->cert, b->cert, WIRE_SIG_BYTES));
}

/* Identity trailers survive the round trip (docs/protocol.md section 12). */
static void compare_idents(const wire_msg *a, const wire_msg *b)
{
    wire_ident x, y;
    buf_reader ra, rb;
    switch (a->type) {
    case WIRE_ALIVE:
        wire_alive_ident(a, &x);
        wire_alive_ident(b, &y);
        compare_ident(&x, &y, true);
        break;
    case WIRE_SUSPECT:
    case WIRE_FAILED:
    case WIRE_LEFT:
        wire_accuse_ident(a, &x);
        wire_accuse_ident(b, &y);
        compare_ident(&x, &y, false);
        break;
    case WIRE_PUSHPULL:
        check(wire_pushpull_idents(a, &ra) == wire_pushpull_idents(b, &rb));
        if (!a->u.pushpull.ident)
            break;
        for (uint32_t i = 0; i < a->u.pushpull.count; i++) {
            check(wire_ident_next(&ra, &x) && wire_ident_next(&rb, &y));
            compare_ident(&x, &y, true);
        }
        break;
    case WIRE_KV_DELTA: {
        const uint8_t *sa = wire_kv_delta_sigs(a), *sb = wire_kv_delta_sigs(b);
        check(!sa == !sb);
        if (sa)
            check(memcmp(sa, sb, wire_kv_sigs_size(a->u.kv_delta.count) - 1) == 0);
        break;
    }
    default:
        break;
    }
}

static void compare(const wire_msg *a, const wire_msg *b)
{
    compare_idents(a, b);
    check(a->type == b->type);
    switch (a->type) {
    case WIRE_PING:
        check(a->u.ping.seq == b->u.ping.seq && str_eq(a->u.ping.target, b->u.ping.target) &&
              str_eq(a->u.ping.sender, b->u.ping.sender));
        break;
    case WIRE_PING_REQ:
        check(a->u.ping_req.seq == b->u.ping_req.seq &&
              str_eq(a->u.ping_req.target, b->u.ping_req.target) &&
              rumor_addr_equal(&a->u.ping_req.target_addr, &b->u.ping_req.target_addr) &&
              a->u.ping_req.nack == b->u.ping_req.nack &&
              str_eq(a->u.ping_req.sender, b->u.ping_req.sender));
        break;
    case WIRE_ACK:
    case WIRE_NACK:
        check(a->u.ack.seq == b->u.ack.seq);
        break;
    case WIRE_ALIVE:
        check(a->u.alive.inc == b->u.alive.inc && str_eq(a->u.alive.name, b->u.alive.name) &&
              rumor_addr_equal(&a->u.alive.addr, &b->u.alive.addr) &&
              str_eq(a->u.alive.meta, b->u.alive.meta));
        break;
    case WIRE_SUSPECT:
    case WIRE_FAILED:
    case WIRE_LEFT:
        check(a->u.accuse.inc == b->u.accuse.inc && str_eq(a->u.accuse.name, b->u.accuse.name) &&
              str_eq(a->u.accuse.accuser, b->u.accuse.accuser));
        break;
    case WIRE_PUSHPULL:
        check(a->u.pushpull.flags == b->u.pushpull.flags &&
              str_eq(a->u.pushpull.sender, b->u.pushpull.sender) &&
              a->u.pushpull.count == b->u.pushpull.count &&
              a->u.pushpull.digest == b->u.pushpull.digest);
        compare_members(a, b);
        break;
    case WIRE_KV_DIGEST:
        /* Entry bytes re-encode identically (canonical varints) or the lengths differ. */
        check(a->u.kv_digest.flags == b->u.kv_digest.flags &&
              a->u.kv_digest.count == b->u.kv_digest.count &&
              a->u.kv_digest.sum == b->u.kv_digest.sum);
        break;
    case WIRE_KV_DELTA:
        check(str_eq(a->u.kv_delta.origin, b->u.kv_delta.origin) &&
              a->u.kv_delta.flags == b->u.kv_delta.flags &&
              a->u.kv_delta.since == b->u.kv_delta.since &&
              a->u.kv_delta.origin_max == b->u.kv_delta.origin_max &&
              a->u.kv_delta.gc_version == b->u.kv_delta.gc_version &&
              a->u.kv_delta.count == b->u.kv_delta.count);
        break;
    case WIRE_USER_EVENT:
        check(a->u.user_event.ltime == b->u.user_event.ltime &&
              str_eq(a->u.user_event.origin, b->u.user_event.origin) &&
              str_eq(a->u.user_event.name, b->u.user_event.name) &&
              str_eq(a->u.user_event.payload, b->u.user_event.payload));
        break;
    case WIRE_QUERY:
        compare_query(a, b);
        break;
    case WIRE_QUERY_RESP:
        check(a->u.query_resp.ltime == b->u.query_resp.ltime &&
              a->u.query_resp.id == b->u.query_resp.id &&
              a->u.query_resp.flags == b->u.query_resp.flags &&
              str_eq(a->u.query_resp.from, b->u.query_resp.from) &&
              str_eq(a->u.query_resp.payload, b->u.query_resp.payload));
        break;
    case WIRE_CLOCKS:
        check(a->u.clocks.flags == b->u.clocks.flags &&
              a->u.clocks.event_ltime == b->u.clocks.event_ltime &&
              a->u.clocks.query_ltime == b->u.clocks.query_ltime &&
              a->u.clocks.event_sum == b->u.clocks.event_sum);
        break;
    default:
        break;
    }
}

static void round_trip(const wire_msg *m, size_t input_len)
{
    if (m->type == 0 || input_len > sizeof(scratch))
        return;
    buf_writer w;
    buf_writer_init_fixed(&w, scratch, sizeof(scratch));
    reencode(m, &w);
    /* The encoder writes minimal varints and drops appended fields, so the re-encoding is never
     * longer than what was read; the fixed writer must therefore not have run out. */
    check(!w.failed);
    buf_reader r;
    buf_reader_init(&r, w.p, w.len);
    wire_msg again;
    check(wire_msg_decode(&r, &again, RUMOR_META_MAX) == 1);
    check(buf_reader_left(&r) == 0);
    compare(m, &again);
}

static void decode_messages(buf_reader *r)
{
    wire_msg m;
    for (int i = 0; i < WIRE_MSGS_MAX; i++) {
        size_t before = r->off;
        int rc = wire_msg_decode(r, &m, RUMOR_META_MAX);
        if (rc <= 0)
            return;
        check(r->off > before && r->off <= r->len);
        round_trip(&m, r->off - before);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    buf_reader r;
    buf_reader_init(&r, data, size);
    wire_header h;
    int rc = wire_header_decode(&r, &h);
    if (rc < 0) {
        rumor_drop_reason why = wire_drop_of(rc);
        check(why == RUMOR_DROP_TRUNCATED || why == RUMOR_DROP_BAD_MAGIC ||
              why == RUMOR_DROP_BAD_VERSION || why == RUMOR_DROP_MALFORMED);
        buf_reader_init(&r, data, size);
    } else {
        check(h.version == RUMOR_PROTOCOL_VERSION && h.label.len <= RUMOR_LABEL_MAX);
    }
    decode_messages(&r);
    /* A lower metadata bound must only ever reject more, never crash. */
    buf_reader_init(&r, data, size);
    wire_msg m;
    while (wire_msg_decode(&r, &m, 16) == 1) {
    }
    return 0;
}
