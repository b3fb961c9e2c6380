/*
 * Fuzz target for the sealed envelope (docs/protocol.md section 3.1) and what lies behind it.
 * A node holding key K gets the input three ways, chosen by its first byte:
 *
 *   0  raw bytes as a datagram and as stream bytes: forged envelopes, unknown key ids, bad
 *      tags, truncation;
 *   1  a datagram sealed under K by a peer ("m1") around fuzzer-chosen plaintext, so that the
 *      inner header parser, the recipient and replay checks and the message decoders are
 *      reached through a valid tag. The next byte says whether the harness writes a correct
 *      inner header itself (bit 0; the rest is the messages) or the fuzzer supplies all of it,
 *      and (bit 1) whether it seals with AES-256-GCM instead of XChaCha20-Poly1305;
 *   2  a sealed stream: the harness sends a real hello, reads the node's answer to learn its
 *      token, then seals each chunk of the input (u16 length + bytes, same header and cipher
 *      choice) as the next frame.
 *
 * Checked besides the sanitizers: a sealed datagram accepted once is refused as a replay the
 * second time, one naming another epoch of the node changes no member, event or query, every
 * datagram the node sends opens under K as a datagram, and every stream frame it writes is a
 * well-framed sealed packet.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/buf.h"
#include "core/seal.h"
#include "core/wire.h"
#include "fuzz_common.h"
#include "rumor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t KEY[1][RUMOR_KEY_BYTES] = {{1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                                 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                                 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}};

static void check(bool ok)
{
    if (!ok)
        abort();
}

static void settings(rumor_settings *s, const char *name, uint8_t idx, uint64_t epoch)
{
    fuzz_settings(s, name, idx);
    s->keys = KEY;
    s->nkeys = 1;
    memset(s->seal_secret, 0x50 + idx, sizeof(s->seal_secret));
    s->seal_epoch = epoch;
}

/* The harness's side: the sealing state of member m1. */
typedef struct peer {
    seal_state st;
    uint8_t tok_open[SEAL_TOKEN_BYTES], tok_acc[SEAL_TOKEN_BYTES];
    uint32_t seq;
    uint8_t cipher; /* SEAL_CIPHER_* the harness seals with */
} peer;

static uint8_t out[RUMOR_PACKET_MAX + 4096];

/* A sealed packet into `w` (which may already hold a frame prefix at `start`): a correct inner
 * header with `in` when given, else `plain` is the whole plaintext. */
static void seal_into(peer *p, buf_writer *w, size_t start, const seal_inner *in,
                      const uint8_t *plain, size_t len)
{
    static const uint8_t zero[SEAL_ENV_BYTES];
    wire_put_header(w, NULL, 0, WIRE_FLAG_SEALED);
    size_t env;
    if (in) {
        env = seal_put_inner(&p->st, w, in);
    } else {
        env = w->len;
        buf_put_bytes(w, zero, SEAL_ENV_BYTES);
    }
    buf_put_bytes(w, plain, len);
    check(w->failed || seal_close(&p->st, w, start, env, p->cipher));
}

static int send_dgram(rumor_node *n, peer *p, bool harness_inner, const uint8_t *plain, size_t len,
                      uint64_t now)
{
    buf_writer w;
    buf_writer_init_fixed(&w, out, sizeof(out));
    /* The harness names the node's epoch (7000), as a peer that has heard from it does. */
    seal_inner in = {.kind = SEAL_KIND_DGRAM, .dest = seal_id("self", 4), .dest_epoch = 7000};
    seal_into(p, &w, 0, harness_inner ? &in : NULL, plain, len);
    if (w.failed)
        return RUMOR_ERR_TOO_BIG;
    rumor_addr from = addr_of(11);
    rumor_stats before, after;
    rumor_node_stats(n, &before);
    size_t members = rumor_node_member_count(n);
    int rc = rumor_node_receive(n, &from, w.p, w.len, now);
    rumor_node_stats(n, &after);
    /* Naming another epoch of the node (section 3.1.4), it is taken only for PING and
     * PING_REQ: no member, event or query comes of it. */
    if (after.stale_epoch_in > before.stale_epoch_in)
        check(rc == RUMOR_OK && rumor_node_member_count(n) == members &&
              after.user_events_received == before.user_events_received &&
              after.queries_received == before.queries_received);
    else if (harness_inner && rc == RUMOR_OK)
        check(after.stale_epoch_in == before.stale_epoch_in);
    if (rc == RUMOR_OK) { /* the same bytes again are a replay */
        rumor_stats a, b;
        rumor_node_stats(n, &a);
        check(rumor_node_receive(n, &from, w.p, w.len, now) == RUMOR_ERR_AUTH);
        rumor_node_stats(n, &b);
        check(b.dropped[RUMOR_DROP_REPLAYED] == a.dropped[RUMOR_DROP_REPLAYED] + 1);
    }
    return rc;
}

/* Teaches the node members m1..m3 by a sealed ALIVE datagram from m1. */
static void teach_members(rumor_node *n, peer *p, uint64_t now)
{
    uint8_t body[256];
    buf_writer w;
    buf_writer_init_fixed(&w, body, sizeof(body));
    static const char *names[] = {"m1", "m2", "m3"};
    for (uint8_t i = 0; i < 3; i++) {
        rumor_addr a = addr_of((uint8_t)(11 + i));
        wire_put_alive(&w, 1, wire_str_of(names[i], 2), &a, wire_str_of("role=db", 7));
    }
    check(send_dgram(n, p, true, w.p, w.len, now) == RUMOR_OK);
}

/* Drains the node: its datagrams must open under K as datagrams; its stream writes must be
 * framed sealed packets. The acceptor's hello on stream `sid`, if seen, fills p->tok_acc. */
static void drain(rumor_node *n, peer *p, uint64_t sid, bool *hello)
{
    rumor_datagram d;
    static uint8_t plain[RUMOR_PACKET_MAX];
    while (rumor_node_poll_datagram(n, &d)) {
        buf_reader r;
        wire_header h;
        buf_reader_init(&r, d.data, d.len);
        check(wire_header_decode(&r, &h) == 0 && (h.flags & WIRE_FLAG_SEALED));
        seal_inner in;
        const uint8_t *body;
        size_t blen;
        check(seal_open(&p->st, d.data, d.len, r.off, plain, &in, &body, &blen) == 0);
        check(in.kind == SEAL_KIND_DGRAM && in.sender == seal_id("self", 4));
    }
    rumor_stream_op op;
    while (rumor_node_poll_stream(n, &op)) {
        if (op.kind != RUMOR_STREAM_WRITE)
            continue;
        check(op.len >= WIRE_FRAME_PREFIX + 5 + SEAL_FRAME_OVERHEAD);
        uint32_t flen = (uint32_t)op.data[0] << 24 | (uint32_t)op.data[1] << 16 |
                        (uint32_t)op.data[2] << 8 | op.data[3];
        check(flen == op.len - WIRE_FRAME_PREFIX);
        if (op.id != sid || *hello)
            continue;
        seal_inner in;
        const uint8_t *body;
        size_t blen;
        check(seal_open(&p->st, op.data + 4, flen, 5, plain, &in, &body, &blen) == 0);
        check(in.kind == SEAL_KIND_ACCEPTOR && in.seq == 0 && blen == 0);
        memcpy(p->tok_acc, in.acceptor, SEAL_TOKEN_BYTES);
        *hello = true;
    }
    rumor_event ev;
    while (rumor_node_poll_event(n, &ev)) {
    }
}

static void run_stream(rumor_node *n, peer *p, const uint8_t *data, size_t size, uint64_t now)
{
    uint64_t id;
    rumor_addr from = addr_of(12);
    if (rumor_node_stream_accept(n, &from, &id, now) != RUMOR_OK)
        return;
    bool hello = false;
    seal_token(&p->st, p->tok_open);
    memset(p->tok_acc, 0, sizeof(p->tok_acc));
    p->seq = 0;
    buf_writer w;
    buf_writer_init_fixed(&w, out, sizeof(out));
    seal_inner in = {.kind = SEAL_KIND_OPENER};
    memcpy(in.opener, p->tok_open, SEAL_TOKEN_BYTES);
    buf_put_u32be(&w, 0);
    seal_into(p, &w, WIRE_FRAME_PREFIX, &in, NULL, 0);
    buf_patch_u32be(&w, 0, (uint32_t)(w.len - WIRE_FRAME_PREFIX));
    if (rumor_node_stream_data(n, id, w.p, w.len, now) != RUMOR_OK)
        return;
    drain(n, p, id, &hello);
    check(hello);
    p->seq = 1;
    /* Chunks: u16 length, one byte (bit 0: harness writes the inner header), the plaintext. */
    buf_reader r;
    buf_reader_init(&r, data, size);
    uint16_t clen;
    uint8_t how;
    const uint8_t *chunk;
    while (buf_get_u16be(&r, &clen) && buf_get_u8(&r, &how)) {
        size_t len = clen <= buf_reader_left(&r) ? clen : buf_reader_left(&r);
        if (!buf_get_bytes(&r, len, &chunk))
            break;
        buf_writer_init_fixed(&w, out, sizeof(out));
        buf_put_u32be(&w, 0);
        seal_inner fin = {.kind = SEAL_KIND_OPENER, .seq = p->seq++};
        memcpy(fin.opener, p->tok_open, SEAL_TOKEN_BYTES);
        memcpy(fin.acceptor, p->tok_acc, SEAL_TOKEN_BYTES);
        p->cipher = (how & 2) ? SEAL_CIPHER_AESGCM : SEAL_CIPHER_XCHACHA;
        seal_into(p, &w, WIRE_FRAME_PREFIX, (how & 1) ? &fin : NULL, chunk, len);
        if (w.failed)
            break;
        buf_patch_u32be(&w, 0, (uint32_t)(w.len - WIRE_FRAME_PREFIX));
        int rc = rumor_node_stream_data(n, id, w.p, w.len, now);
        drain(n, p, id, &hello);
        if (rc != RUMOR_OK)
            return;
    }
    rumor_node_stream_closed(n, id, now);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t now = 1000000;
    check(sodium_init() >= 0); /* the host's job (AES-256-GCM needs it); idempotent */
    rumor_settings s;
    settings(&s, "self", 1, 7000);
    rumor_node *n = NULL;
    check(rumor_node_new(&n, &s, now) == RUMOR_OK);
    static peer p;
    memset(&p, 0, sizeof(p));
    settings(&s, "m1", 11, 5000);
    check(seal_init(&p.st, &s, now, 64) == RUMOR_OK);
    bool hello = false;
    teach_members(n, &p, now);
    drain(n, &p, 0, &hello);

    uint8_t mode = size ? data[0] % 3 : 0;
    const uint8_t *rest = size ? data + 1 : data;
    size_t rlen = size ? size - 1 : 0;
    if (mode == 0) {
        rumor_addr from = addr_of(13);
        rumor_node_receive(n, &from, rest, rlen, ++now);
        drain(n, &p, 0, &hello);
        uint64_t id;
        if (rumor_node_stream_accept(n, &from, &id, ++now) == RUMOR_OK &&
            rumor_node_stream_data(n, id, rest, rlen, now) != RUMOR_ERR_NOT_FOUND)
            rumor_node_stream_closed(n, id, now);
    } else if (mode == 1 && rlen > 0) {
        p.cipher = (rest[0] & 2) ? SEAL_CIPHER_AESGCM : SEAL_CIPHER_XCHACHA;
        send_dgram(n, &p, rest[0] & 1, rest + 1, rlen - 1, ++now);
    } else if (mode == 2) {
        run_stream(n, &p, rest, rlen, ++now);
    }
    drain(n, &p, 0, &hello);
    static const uint64_t steps[] = {1, 250, 1100, 2500, 6000, 20000};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        rumor_node_tick(n, now + steps[i]);
        drain(n, &p, 0, &hello);
    }
    rumor_node_del(n);
    seal_free(&p.st, &rumor_alloc_libc);
    return 0;
}
