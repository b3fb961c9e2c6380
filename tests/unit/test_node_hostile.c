/*
 * Hostile and edge-case input to a node (docs/protocol.md sections 3 to 7). Hostile input must
 * return an error, bump exactly one stats.dropped[reason] counter and leave the member table
 * byte-for-byte as it was; streams carrying it are closed. Also the good stream paths for
 * contrast: a full push-pull and the digest exchange.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/wire.h"
#include "helper_net.h"
#include "rumor.h"

static rumor_settings valid_settings(void)
{
    rumor_settings s;
    assert_int_equal(rumor_settings_default(&s, RUMOR_PROFILE_LAN), RUMOR_OK);
    s.name = "node-a";
    s.addr.len = 4;
    s.addr.bytes[3] = 1;
    s.seed = 7;
    return s;
}

#define LABEL "blue"

typedef struct snap_member {
    char name[RUMOR_NAME_MAX + 1];
    uint8_t state;
    uint32_t inc;
    rumor_addr addr;
    uint16_t meta_len;
    uint8_t meta[64];
} snap_member;

typedef struct snap {
    size_t count;
    snap_member m[8];
} snap;

static void take(rumor_node *n, snap *s)
{
    memset(s, 0, sizeof(*s));
    s->count = rumor_node_member_count(n);
    assert_true(s->count <= 8);
    for (size_t i = 0; i < s->count; i++) {
        rumor_member m;
        assert_int_equal(rumor_node_member_at(n, i, &m), RUMOR_OK);
        memcpy(s->m[i].name, m.name, m.name_len);
        s->m[i].state = (uint8_t)m.state;
        s->m[i].inc = m.incarnation;
        s->m[i].addr = m.addr;
        s->m[i].meta_len = (uint16_t)m.meta_len;
        if (m.meta_len)
            memcpy(s->m[i].meta, m.meta, m.meta_len < 64 ? m.meta_len : 64);
    }
}

static tnet *cluster4(uint32_t streams_max)
{
    tnet *t = tnet_new(4, RUMOR_PROFILE_LOCAL, 11);
    for (int i = 0; i < 4; i++) {
        tnet_settings(t, i)->cluster_label = LABEL;
        if (streams_max)
            tnet_settings(t, i)->streams_max = streams_max;
        tnet_start(t, i);
    }
    for (int i = 1; i < 4; i++)
        tnet_join(t, i, 0);
    tnet_run(t, tnet_now(t) + 3000);
    for (int i = 0; i < 4; i++)
        assert_int_equal(rumor_node_member_count(tnet_node(t, i)), 4);
    return t;
}

typedef struct pkt {
    uint8_t b[70000];
    buf_writer w;
} pkt;

static buf_writer *pkt_begin(pkt *p, const char *label, uint8_t flags)
{
    buf_writer_init_fixed(&p->w, p->b, sizeof(p->b));
    wire_put_header(&p->w, (const uint8_t *)label, strlen(label), flags);
    return &p->w;
}

static wire_str S(const char *s)
{
    return wire_str_of(s, strlen(s));
}

/* Injects `p` into node 0 and checks: the return code, exactly one more drop for `reason`, no
 * other drop, no message counted as received, and an unchanged member table. */
/* Checks that exactly `reason` went up by one, naming the counter that did not. */
static void assert_one_drop(const rumor_stats *st0, const rumor_stats *st1,
                            rumor_drop_reason reason)
{
    for (int r = 0; r < RUMOR_DROP_REASON_COUNT; r++) {
        uint64_t want = st0->dropped[r] + (r == (int)reason ? 1 : 0);
        if (st1->dropped[r] != want)
            fail_msg("dropped[%s] = %llu, expected %llu (wanted one %s)",
                     rumor_drop_reason_name((rumor_drop_reason)r),
                     (unsigned long long)st1->dropped[r], (unsigned long long)want,
                     rumor_drop_reason_name(reason));
    }
}

#define expect_dropped(t, p, len, want_rc, reason)                                                 \
    expect_dropped_at(__LINE__, t, p, len, want_rc, reason)

static void expect_dropped_at(int line, tnet *t, const uint8_t *p, size_t len, int want_rc,
                              rumor_drop_reason reason)
{
    rumor_node *n = tnet_node(t, 0);
    snap before, after;
    rumor_stats st0, st1;
    take(n, &before);
    rumor_node_stats(n, &st0);
    rumor_addr from = tnet_addr(3);
    int rc = tnet_inject(t, 0, &from, p, len);
    if (rc != want_rc)
        fail_msg("line %d: rumor_node_receive returned %d (%s), expected %d (%s)", line, rc,
                 rumor_strerror(rc), want_rc, rumor_strerror(want_rc));
    rumor_node_stats(n, &st1);
    assert_one_drop(&st0, &st1, reason);
    if (want_rc != RUMOR_OK) /* a rejected packet counts no message as received */
        assert_true(st1.messages_in == st0.messages_in);
    assert_true(st1.packets_out == st0.packets_out);
    take(n, &after);
    assert_memory_equal(&before, &after, sizeof(before));
}

static void test_hostile_datagrams(void **ctx)
{
    (void)ctx;
    tnet *t = cluster4(0);
    pkt p;
    buf_writer *w;
    rumor_addr evil_addr = tnet_addr(9);

    /* Truncated: nothing, a partial header, a header whose label runs past the end, a message
     * cut short. */
    expect_dropped(t, p.b, 0, RUMOR_ERR_MALFORMED, RUMOR_DROP_TRUNCATED);
    w = pkt_begin(&p, LABEL, 0);
    expect_dropped(t, p.b, 3, RUMOR_ERR_MALFORMED, RUMOR_DROP_TRUNCATED);
    expect_dropped(t, p.b, 7, RUMOR_ERR_MALFORMED, RUMOR_DROP_TRUNCATED);
    wire_put_accuse(w, WIRE_FAILED, 50, S("n1"), S("n3"));
    expect_dropped(t, p.b, w->len - 1, RUMOR_ERR_MALFORMED, RUMOR_DROP_TRUNCATED);

    /* Garbage and a wrong magic. */
    for (size_t i = 0; i < 200; i++)
        p.b[i] = (uint8_t)(i * 37 + 11);
    expect_dropped(t, p.b, 200, RUMOR_ERR_MALFORMED, RUMOR_DROP_BAD_MAGIC);
    w = pkt_begin(&p, LABEL, 0);
    wire_put_accuse(w, WIRE_FAILED, 50, S("n1"), S("n3"));
    p.b[1] = 'N';
    expect_dropped(t, p.b, w->len, RUMOR_ERR_MALFORMED, RUMOR_DROP_BAD_MAGIC);

    /* Wrong version. */
    w = pkt_begin(&p, LABEL, 0);
    wire_put_accuse(w, WIRE_FAILED, 50, S("n1"), S("n3"));
    p.b[2] = RUMOR_PROTOCOL_VERSION + 1;
    expect_dropped(t, p.b, w->len, RUMOR_ERR_VERSION, RUMOR_DROP_BAD_VERSION);

    /* Wrong label, and no label at all, in a labelled cluster. */
    w = pkt_begin(&p, "red", 0);
    wire_put_accuse(w, WIRE_FAILED, 50, S("n1"), S("n3"));
    expect_dropped(t, p.b, w->len, RUMOR_ERR_LABEL, RUMOR_DROP_BAD_LABEL);
    w = pkt_begin(&p, "", 0);
    wire_put_accuse(w, WIRE_FAILED, 50, S("n1"), S("n3"));
    expect_dropped(t, p.b, w->len, RUMOR_ERR_LABEL, RUMOR_DROP_BAD_LABEL);
    w = pkt_begin(&p, "blue2", 0);
    wire_put_accuse(w, WIRE_FAILED, 50, S("n1"), S("n3"));
    expect_dropped(t, p.b, w->len, RUMOR_ERR_LABEL, RUMOR_DROP_BAD_LABEL);

    /* Oversize: one byte over RUMOR_PACKET_MAX, even though it is otherwise valid. */
    w = pkt_begin(&p, LABEL, 0);
    while (w->len < RUMOR_PACKET_MAX - 4)
        wire_put_ack(w, WIRE_ACK, 1);
    while (w->len <= RUMOR_PACKET_MAX) {
        buf_put_u8(w, 0x70); /* unknown type, empty payload */
        buf_put_u8(w, 0x00);
    }
    expect_dropped(t, p.b, w->len, RUMOR_ERR_TOO_BIG, RUMOR_DROP_OVERSIZE);

    /* Sealed: this node has no key. */
    w = pkt_begin(&p, LABEL, WIRE_FLAG_SEALED);
    wire_put_accuse(w, WIRE_FAILED, 50, S("n1"), S("n3"));
    expect_dropped(t, p.b, w->len, RUMOR_ERR_AUTH, RUMOR_DROP_ENCRYPTED);
    /* Reserved flag bits. */
    w = pkt_begin(&p, LABEL, 0x80);
    wire_put_accuse(w, WIRE_FAILED, 50, S("n1"), S("n3"));
    expect_dropped(t, p.b, w->len, RUMOR_ERR_MALFORMED, RUMOR_DROP_MALFORMED);

    /* Full state over a datagram: only streams carry it. */
    w = pkt_begin(&p, LABEL, 0);
    wire_member wm = {S("evil"), evil_addr, 1, RUMOR_MEMBER_ALIVE, S("")};
    wire_put_pushpull_begin(w, 0, S("n3"), 1, wire_member_size(&wm));
    wire_put_member(w, &wm);
    wire_put_pushpull_end(w, 0);
    expect_dropped(t, p.b, w->len, RUMOR_ERR_MALFORMED, RUMOR_DROP_MALFORMED);

    /* A header and no message. */
    w = pkt_begin(&p, LABEL, 0);
    expect_dropped(t, p.b, w->len, RUMOR_ERR_MALFORMED, RUMOR_DROP_MALFORMED);

    /* All or nothing: valid news followed by a malformed message applies none of it. */
    w = pkt_begin(&p, LABEL, 0);
    wire_put_alive(w, 1, S("evil"), &evil_addr, S(""));
    wire_put_accuse(w, WIRE_FAILED, 50, S("n1"), S("n3"));
    wire_put_accuse(w, WIRE_SUSPECT, 50, S("n2"), wire_str_of("n\0003", 3));
    expect_dropped(t, p.b, w->len, RUMOR_ERR_MALFORMED, RUMOR_DROP_MALFORMED);
    assert_int_equal(rumor_node_member_find(tnet_node(t, 0), "evil", NULL), RUMOR_ERR_NOT_FOUND);

    tnet_free(t);
}

static void test_harmless_drops(void **ctx)
{
    (void)ctx;
    tnet *t = cluster4(0);
    pkt p;
    buf_writer *w;
    /* Unknown message types are skipped and counted; the packet itself is fine. */
    w = pkt_begin(&p, LABEL, 0);
    buf_put_u8(w, 0x42);
    buf_put_lbytes(w, "future", 6);
    expect_dropped(t, p.b, w->len, RUMOR_OK, RUMOR_DROP_UNKNOWN_TYPE);
    /* A ping for a name that is not ours: counted, not answered. */
    w = pkt_begin(&p, LABEL, 0);
    wire_put_ping(w, 77, S("someone-else"), S("n3"));
    expect_dropped(t, p.b, w->len, RUMOR_OK, RUMOR_DROP_NOT_FOR_US);
    tnet_free(t);
}

/* Polls node 0's stream operations; returns true when a CLOSE for `id` was among them. */
static bool closed(rumor_node *n, uint64_t id)
{
    rumor_stream_op op;
    bool seen = false;
    while (rumor_node_poll_stream(n, &op))
        seen = seen || (op.kind == RUMOR_STREAM_CLOSE && op.id == id);
    return seen;
}

static void expect_stream_dropped(rumor_node *n, const uint8_t *p, size_t len, int want_rc,
                                  rumor_drop_reason reason, uint64_t now)
{
    snap before, after;
    rumor_stats st0, st1;
    take(n, &before);
    rumor_node_stats(n, &st0);
    rumor_addr from = tnet_addr(3);
    uint64_t id;
    assert_int_equal(rumor_node_stream_accept(n, &from, &id, now), RUMOR_OK);
    assert_false(closed(n, id));
    /* Byte by byte for the prefix, then the rest: framing must not depend on chunking. */
    int rc = RUMOR_OK;
    size_t i = 0;
    for (; i < len && i < 4 && rc == RUMOR_OK; i++)
        rc = rumor_node_stream_data(n, id, p + i, 1, now);
    if (rc == RUMOR_OK && i < len)
        rc = rumor_node_stream_data(n, id, p + i, len - i, now);
    assert_int_equal(rc, want_rc);
    assert_true(closed(n, id));
    rumor_node_stats(n, &st1);
    assert_one_drop(&st0, &st1, reason);
    take(n, &after);
    assert_memory_equal(&before, &after, sizeof(before));
    /* The id is gone. */
    assert_int_equal(rumor_node_stream_data(n, id, p, 1, now), RUMOR_ERR_NOT_FOUND);
}

static size_t frame(uint8_t *out, const uint8_t *body, size_t len)
{
    out[0] = (uint8_t)(len >> 24);
    out[1] = (uint8_t)(len >> 16);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    memcpy(out + 4, body, len);
    return len + 4;
}

static void test_hostile_streams(void **ctx)
{
    (void)ctx;
    rumor_settings s = valid_settings();
    s.cluster_label = LABEL;
    s.stream_frame_bytes_max = 4096;
    s.streams_max = 4;
    rumor_node *n;
    assert_int_equal(rumor_node_new(&n, &s, 1000), RUMOR_OK);
    uint64_t now = 1000;
    static uint8_t f[10000];
    pkt p;
    buf_writer *w;

    /* A length prefix over the frame bound: closed before any body arrives. */
    static const uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff};
    expect_stream_dropped(n, huge, sizeof(huge), RUMOR_ERR_TOO_BIG, RUMOR_DROP_OVERSIZE, now);
    static const uint8_t just_over[] = {0x00, 0x00, 0x10, 0x01};
    expect_stream_dropped(n, just_over, sizeof(just_over), RUMOR_ERR_TOO_BIG, RUMOR_DROP_OVERSIZE,
                          now);
    /* Garbage inside a well-sized frame. */
    uint8_t junk[32];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(0xa0 + i);
    expect_stream_dropped(n, f, frame(f, junk, sizeof(junk)), RUMOR_ERR_MALFORMED,
                          RUMOR_DROP_BAD_MAGIC, now);
    /* Another cluster's frame. */
    w = pkt_begin(&p, "red", 0);
    wire_put_ping(w, 1, S(""), S("x"));
    expect_stream_dropped(n, f, frame(f, p.b, w->len), RUMOR_ERR_LABEL, RUMOR_DROP_BAD_LABEL, now);
    /* A push-pull whose member list is malformed (state 9). */
    w = pkt_begin(&p, LABEL, 0);
    rumor_addr ea = tnet_addr(9);
    wire_member wm = {S("evil"), ea, 1, 9, S("")};
    wire_put_pushpull_begin(w, 0, S("x"), 1, wire_member_size(&wm));
    wire_put_member(w, &wm);
    wire_put_pushpull_end(w, 0);
    expect_stream_dropped(n, f, frame(f, p.b, w->len), RUMOR_ERR_MALFORMED, RUMOR_DROP_MALFORMED,
                          now);
    assert_int_equal(rumor_node_member_find(n, "evil", NULL), RUMOR_ERR_NOT_FOUND);

    /* Unknown ids. */
    assert_int_equal(rumor_node_stream_data(n, 12345, junk, 1, now), RUMOR_ERR_NOT_FOUND);
    rumor_node_stream_closed(n, 12345, now); /* harmless */

    /* streams_max: the fifth concurrent stream is refused and counted. */
    uint64_t ids[4], extra;
    rumor_addr from = tnet_addr(3);
    rumor_stats st0, st1;
    for (int i = 0; i < 4; i++)
        assert_int_equal(rumor_node_stream_accept(n, &from, &ids[i], now), RUMOR_OK);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < i; j++)
            assert_true(ids[i] != ids[j]);
    rumor_node_stats(n, &st0);
    assert_int_equal(rumor_node_stream_accept(n, &from, &extra, now), RUMOR_ERR_FULL);
    rumor_node_stats(n, &st1);
    assert_true(st1.dropped[RUMOR_DROP_QUEUE_FULL] == st0.dropped[RUMOR_DROP_QUEUE_FULL] + 1);
    rumor_node_stream_closed(n, ids[2], now);
    assert_int_equal(rumor_node_stream_accept(n, &from, &extra, now), RUMOR_OK);
    assert_int_equal(rumor_node_stream_accept(n, &from, &extra, now), RUMOR_ERR_FULL);
    assert_int_equal(rumor_node_stream_accept(n, NULL, &extra, now), RUMOR_ERR_INVALID);
    /* Streams that never finish are closed after stream_timeout_ms. */
    rumor_node_tick(n, now + s.stream_timeout_ms);
    size_t closes = 0;
    rumor_stream_op op;
    while (rumor_node_poll_stream(n, &op))
        closes += op.kind == RUMOR_STREAM_CLOSE;
    assert_int_equal(closes, 4);
    assert_int_equal(rumor_node_stream_accept(n, &from, &extra, now + s.stream_timeout_ms),
                     RUMOR_OK);
    rumor_node_del(n);
}

static void test_stream_pushpull_answered(void **ctx)
{
    (void)ctx;
    /* The good path, for contrast: a request frame, merged before the reply is written. */
    rumor_settings s = valid_settings();
    rumor_node *n;
    assert_int_equal(rumor_node_new(&n, &s, 1000), RUMOR_OK);
    pkt p;
    buf_writer *w = pkt_begin(&p, "", 0);
    rumor_addr xa = tnet_addr(5);
    wire_member wm = {S("x"), xa, 3, RUMOR_MEMBER_ALIVE, S("k=v")};
    wire_put_pushpull_begin(w, WIRE_PP_JOIN, S("x"), 1, wire_member_size(&wm));
    wire_put_member(w, &wm);
    wire_put_pushpull_end(w, 0);
    static uint8_t f[1000];
    size_t len = frame(f, p.b, w->len);
    uint64_t id;
    assert_int_equal(rumor_node_stream_accept(n, &xa, &id, 1001), RUMOR_OK);
    assert_int_equal(rumor_node_stream_data(n, id, f, len, 1001), RUMOR_OK);
    rumor_member m;
    assert_int_equal(rumor_node_member_find(n, "x", &m), RUMOR_OK);
    assert_int_equal(m.incarnation, 3);
    rumor_stream_op op;
    assert_true(rumor_node_poll_stream(n, &op));
    assert_int_equal(op.kind, RUMOR_STREAM_WRITE);
    assert_int_equal(op.id, id);
    /* The reply is one frame: prefix, header, the Lamport clocks of user events and queries,
     * one PUSHPULL with the reply flag and both, then the node's complete key-value digest (it
     * holds nothing: no entries). */
    uint32_t flen = (uint32_t)op.data[0] << 24 | (uint32_t)op.data[1] << 16 |
                    (uint32_t)op.data[2] << 8 | op.data[3];
    assert_int_equal(flen + 4, op.len);
    buf_reader r;
    buf_reader_init(&r, op.data + 4, flen);
    wire_header h;
    wire_msg msg;
    assert_int_equal(wire_header_decode(&r, &h), 0);
    assert_int_equal(wire_msg_decode(&r, &msg, RUMOR_META_MAX), 1);
    assert_int_equal(msg.type, WIRE_CLOCKS);
    assert_int_equal(wire_msg_decode(&r, &msg, RUMOR_META_MAX), 1);
    assert_int_equal(msg.type, WIRE_PUSHPULL);
    assert_true(msg.u.pushpull.flags & WIRE_PP_REPLY);
    assert_int_equal(msg.u.pushpull.count, 2);
    assert_int_equal(wire_msg_decode(&r, &msg, RUMOR_META_MAX), 1);
    assert_int_equal(msg.type, WIRE_KV_DIGEST);
    assert_int_equal(msg.u.kv_digest.flags, WIRE_KVD_ALL);
    assert_int_equal(msg.u.kv_digest.count, 0);
    assert_int_equal(wire_msg_decode(&r, &msg, RUMOR_META_MAX), 0);
    assert_true(rumor_node_poll_stream(n, &op));
    assert_int_equal(op.kind, RUMOR_STREAM_CLOSE);
    assert_int_equal(op.id, id);
    rumor_node_del(n);
}

/* docs/protocol.md 7.3, written out independently of members.c: one member's digest term. */
static uint64_t digest_term(const char *name, uint32_t inc, int state)
{
    uint32_t h = 2166136261u;
    size_t len = strlen(name);
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)name[i];
        h *= 16777619u;
    }
    uint64_t cls = state == RUMOR_MEMBER_FAILED ? 1 : state == RUMOR_MEMBER_LEFT ? 2 : 0;
    uint64_t x = ((uint64_t)h << 32 | inc) ^ (cls << 62) ^ (uint64_t)len;
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Reads the one PUSHPULL of the frame written by `op` (after the CLOCKS before it). */
static void reply_of(const rumor_stream_op *op, wire_msg *msg)
{
    assert_int_equal(op->kind, RUMOR_STREAM_WRITE);
    assert_true(op->len >= 4);
    uint32_t flen = (uint32_t)op->data[0] << 24 | (uint32_t)op->data[1] << 16 |
                    (uint32_t)op->data[2] << 8 | op->data[3];
    assert_int_equal(flen + 4, op->len);
    buf_reader r;
    buf_reader_init(&r, op->data + 4, flen);
    wire_header h;
    assert_int_equal(wire_header_decode(&r, &h), 0);
    assert_int_equal(wire_msg_decode(&r, msg, RUMOR_META_MAX), 1);
    assert_int_equal(msg->type, WIRE_CLOCKS);
    assert_int_equal(wire_msg_decode(&r, msg, RUMOR_META_MAX), 1);
    assert_int_equal(msg->type, WIRE_PUSHPULL);
}

/* Sends one PUSHPULL frame on stream `id`: digest-only, or with `member` as the full state. */
static int send_pp(rumor_node *n, uint64_t id, uint8_t flags, uint64_t digest,
                   const wire_member *member, uint64_t now)
{
    static pkt p;
    static uint8_t f[2000];
    buf_writer *w = pkt_begin(&p, "", 0);
    wire_put_pushpull_begin(w, flags, S("x"), member ? 1 : 0,
                            member ? wire_member_size(member) : 0);
    if (member)
        wire_put_member(w, member);
    wire_put_pushpull_end(w, digest);
    assert_false(w->failed);
    return rumor_node_stream_data(n, id, f, frame(f, p.b, w->len), now);
}

static void test_stream_digest_exchange(void **ctx)
{
    (void)ctx;
    /* docs/protocol.md 7.2. */
    rumor_settings s = valid_settings();
    rumor_node *n;
    assert_int_equal(rumor_node_new(&n, &s, 1000), RUMOR_OK);
    rumor_addr xa = tnet_addr(5);
    rumor_stream_op op;
    wire_msg msg;
    uint64_t id;

    /* Digests differ: the acceptor answers with its full state and keeps the stream open. */
    assert_int_equal(rumor_node_stream_accept(n, &xa, &id, 1001), RUMOR_OK);
    assert_int_equal(send_pp(n, id, WIRE_PP_DIGEST, 1, NULL, 1001), RUMOR_OK);
    assert_true(rumor_node_poll_stream(n, &op));
    reply_of(&op, &msg);
    assert_int_equal(msg.u.pushpull.flags, WIRE_PP_REPLY);
    assert_int_equal(msg.u.pushpull.count, 1); /* itself */
    uint64_t digest = msg.u.pushpull.digest;
    assert_true(digest == digest_term("node-a", 0, RUMOR_MEMBER_ALIVE));
    assert_false(rumor_node_poll_stream(n, &op)); /* no CLOSE: step 3 is awaited */
    /* Step 3: the opener's state, merged; then the acceptor closes. */
    wire_member wm = {S("x"), xa, 4, RUMOR_MEMBER_ALIVE, S("")};
    assert_int_equal(send_pp(n, id, 0, 0, &wm, 1002), RUMOR_OK);
    assert_int_equal(rumor_node_member_find(n, "x", NULL), RUMOR_OK);
    assert_true(rumor_node_poll_stream(n, &op));
    assert_int_equal(op.kind, RUMOR_STREAM_CLOSE);
    assert_int_equal(op.id, id);
    assert_false(rumor_node_poll_stream(n, &op));

    /* The table changed, so did the digest: learn it from a fresh full reply. */
    assert_int_equal(rumor_node_stream_accept(n, &xa, &id, 1003), RUMOR_OK);
    assert_int_equal(send_pp(n, id, WIRE_PP_DIGEST, digest, NULL, 1003), RUMOR_OK);
    assert_true(rumor_node_poll_stream(n, &op));
    reply_of(&op, &msg);
    assert_int_equal(msg.u.pushpull.count, 2);
    digest = msg.u.pushpull.digest;
    /* Order-independent wrapping sum; suspect would count as alive, failed and left apart. */
    assert_true(digest == digest_term("node-a", 0, RUMOR_MEMBER_ALIVE) +
                              digest_term("x", 4, RUMOR_MEMBER_ALIVE));
    rumor_node_stream_closed(n, id, 1003); /* the opener gives up: fine */
    while (rumor_node_poll_stream(n, &op)) {
    }

    /* Equal digests: a digest-only reply, and the stream is done. */
    assert_int_equal(rumor_node_stream_accept(n, &xa, &id, 1004), RUMOR_OK);
    assert_int_equal(send_pp(n, id, WIRE_PP_DIGEST, digest, NULL, 1004), RUMOR_OK);
    assert_true(rumor_node_poll_stream(n, &op));
    reply_of(&op, &msg);
    assert_int_equal(msg.u.pushpull.flags, WIRE_PP_REPLY | WIRE_PP_DIGEST);
    assert_int_equal(msg.u.pushpull.count, 0);
    assert_true(msg.u.pushpull.digest == digest);
    assert_true(rumor_node_poll_stream(n, &op));
    assert_int_equal(op.kind, RUMOR_STREAM_CLOSE);
    assert_int_equal(op.id, id);
    rumor_node_del(n);
}

/*
 * A packet may hold exactly WIRE_MSGS_MAX (1,024) known messages; the 1,025th makes it oversize.
 * (The cap was once checked before knowing whether another message followed.)
 */
static void test_messages_per_packet(void **ctx)
{
    (void)ctx;
    rumor_settings s = valid_settings();
    rumor_node *n;
    assert_int_equal(rumor_node_new(&n, &s, 1000), RUMOR_OK);
    rumor_addr from = tnet_addr(3);
    static pkt p;
    rumor_stats st[2][2];
    int rc[2];
    for (int extra = 0; extra <= 1; extra++) {
        buf_writer *w = pkt_begin(&p, "", 0);
        for (int i = 0; i < WIRE_MSGS_MAX + extra; i++)
            wire_put_ack(w, WIRE_ACK, 1); /* stale: harmless, counted */
        rumor_node_stats(n, &st[extra][0]);
        rc[extra] = rumor_node_receive(n, &from, p.b, w->len, 1001);
        rumor_node_stats(n, &st[extra][1]);
    }
    rumor_node_del(n); /* before asserting, so a failure does not leak */
    /* 1,024 messages: accepted. */
    assert_int_equal(rc[0], RUMOR_OK);
    assert_true(st[0][1].dropped[RUMOR_DROP_OVERSIZE] == st[0][0].dropped[RUMOR_DROP_OVERSIZE]);
    assert_true(st[0][1].messages_in == st[0][0].messages_in + WIRE_MSGS_MAX);
    /* 1,025: oversize. */
    assert_int_equal(rc[1], RUMOR_ERR_TOO_BIG);
    assert_true(st[1][1].dropped[RUMOR_DROP_OVERSIZE] == st[1][0].dropped[RUMOR_DROP_OVERSIZE] + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile_datagrams),
        cmocka_unit_test(test_harmless_drops),
        cmocka_unit_test(test_hostile_streams),
        cmocka_unit_test(test_stream_pushpull_answered),
        cmocka_unit_test(test_stream_digest_exchange),
        cmocka_unit_test(test_messages_per_packet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
