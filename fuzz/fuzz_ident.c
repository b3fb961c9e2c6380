/*
 * Fuzz target for the identity paths (docs/protocol.md section 12): a node with identities on,
 * that knows three members by their signed claims and holds signed key-value state of one,
 * gets the input as a datagram and as one framed stream packet, and is
 * ticked through its timers. Inputs reach the trailer decoders, the verification of alive,
 * leave, accusation, sync records, key-value heads and entries, trust-on-first-use pins and the
 * refusal counters. The corpus seeds are genuine signed messages of those members (made by
 * gen_corpus.c with the keys below) and mutations of them.
 *
 * Checked: no crash, no sanitizer report, no leak; whatever the node then sends is signed and
 * accepted by a second node with identities: it never drops the node's output as malformed or
 * refuses its signatures.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/buf.h"
#include "core/ident.h"
#include "core/wire.h"
#include "fuzz_common.h"
#include "rumor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Member i's key pair: seed i i ... i (self 1, peer 2, m1..m3 11..13), as gen_corpus.c. */
static void key_of(uint8_t i, uint8_t *pk, uint8_t *sk)
{
    uint8_t seed[32];
    memset(seed, i, sizeof(seed));
    crypto_sign_seed_keypair(pk, sk, seed);
}

static rumor_node *make_node(const char *name, uint8_t idx, uint64_t now)
{
    rumor_settings s;
    fuzz_settings(&s, name, idx);
    s.identity = true;
    memset(s.identity_seed, idx, sizeof(s.identity_seed));
    rumor_node *n = NULL;
    if (rumor_node_new(&n, &s, now) != RUMOR_OK)
        abort();
    return n;
}

static wire_str S(const char *s)
{
    return wire_str_of(s, strlen(s));
}

/* m1..m3 alive at incarnation 1 with meta "role=db", and m1's key "k" = "v" at version 1. */
static void teach(rumor_node *n, uint64_t now)
{
    uint8_t pkt[2048], stmt[IDENT_STMT_MAX], sig[64], pk[32], sk[64];
    buf_writer w;
    buf_writer_init_fixed(&w, pkt, sizeof(pkt));
    wire_put_header(&w, NULL, 0, 0);
    static const char *names[] = {"m1", "m2", "m3"};
    for (uint8_t i = 0; i < 3; i++) {
        rumor_addr a = addr_of((uint8_t)(11 + i));
        key_of((uint8_t)(11 + i), pk, sk);
        size_t len = ident_stmt_alive(stmt, S(names[i]), 1, &a, S("role=db"));
        crypto_sign_detached(sig, NULL, stmt, len, sk);
        wire_ident id = {.present = true, .pk = pk, .sig = sig};
        wire_put_alive_ident(&w, 1, S(names[i]), &a, S("role=db"), &id);
    }
    key_of(11, pk, sk);
    wire_kv_entry e = {S("k"), 1, 0, 0, S("v")};
    uint8_t head[64];
    size_t len = ident_stmt_kv_head(stmt, S("m1"), 1, 0);
    crypto_sign_detached(head, NULL, stmt, len, sk);
    len = ident_stmt_kv_entry(stmt, S("m1"), &e);
    crypto_sign_detached(sig, NULL, stmt, len, sk);
    wire_put_kv_delta_begin(&w, S("m1"), WIRE_KVX_COMPLETE, 0, 1, 0, 1,
                            wire_kv_entry_size(&e) + wire_kv_sigs_size(1));
    wire_put_kv_entry(&w, &e);
    buf_put_u8(&w, WIRE_IDENT_V1);
    buf_put_bytes(&w, head, 64);
    buf_put_bytes(&w, sig, 64);
    rumor_addr from = addr_of(11);
    if (w.failed || rumor_node_receive(n, &from, w.p, w.len, now) != RUMOR_OK)
        abort();
}

static bool bad_drop(const rumor_stats *a, const rumor_stats *b)
{
    static const rumor_drop_reason bad[] = {RUMOR_DROP_TRUNCATED,   RUMOR_DROP_BAD_MAGIC,
                                            RUMOR_DROP_BAD_VERSION, RUMOR_DROP_BAD_LABEL,
                                            RUMOR_DROP_MALFORMED,   RUMOR_DROP_OVERSIZE,
                                            RUMOR_DROP_ENCRYPTED,   RUMOR_DROP_UNKNOWN_TYPE};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (a->dropped[bad[i]] != b->dropped[bad[i]])
            return true;
    /* The node re-sends only what it verified or signed itself: a peer holding the same keys
     * never finds a bad signature in it. (Unknown keys are possible: the peer may not have
     * learned a member the node admitted from the input.) */
    static const rumor_ident_refusal forged[] = {RUMOR_IDENT_UNSIGNED, RUMOR_IDENT_BAD_ALIVE,
                                                 RUMOR_IDENT_BAD_LEFT, RUMOR_IDENT_BAD_ACCUSATION,
                                                 RUMOR_IDENT_BAD_KV};
    for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++)
        if (a->ident_refused[forged[i]] != b->ident_refused[forged[i]])
            return true;
    return false;
}

static void drain(rumor_node *n, rumor_node *peer, uint64_t now)
{
    rumor_datagram d;
    rumor_addr from = addr_of(1);
    while (rumor_node_poll_datagram(n, &d)) {
        rumor_stats before, after;
        rumor_node_stats(peer, &before);
        rumor_node_receive(peer, &from, d.data, d.len, now);
        rumor_node_stats(peer, &after);
        if (bad_drop(&before, &after))
            abort();
    }
    rumor_stream_op op;
    while (rumor_node_poll_stream(n, &op)) {
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
    if (sodium_init() < 0) /* the host's job; idempotent */
        return 0;
    uint64_t now = 1000000;
    rumor_node *n = make_node("self", 1, now);
    rumor_node *peer = make_node("peer", 2, now);
    teach(n, now);
    teach(peer, now);
    drain(n, peer, now);

    rumor_addr from = addr_of(13);
    rumor_node_receive(n, &from, data, size, ++now);
    drain(n, peer, now);

    size_t split = size ? data[0] % (size + 1) : 0;
    feed_framed(n, data, size, split, ++now);
    drain(n, peer, now);

    static const uint64_t steps[] = {1, 1100, 2500, 20000};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        uint64_t t = now + steps[i];
        rumor_node_tick(n, t);
        drain(n, peer, t);
    }
    rumor_node_del(n);
    rumor_node_del(peer);
    return 0;
}
