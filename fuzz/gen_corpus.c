/*
 * Writes the seed corpora for fuzz_packet, fuzz_node and fuzz_ident with the engine's own
 * encoder: one packet per message type, compound packets, labelled and push-pull frames, the
 * signed messages of members m1..m3 (identity keys from seeds 11 11 .. 11, 12 .., 13 ..), plus a
 * few deterministic mutations (truncations and bit flips). Not part of the build; run by hand:
 *
 *     cc -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude -Isrc fuzz/gen_corpus.c src/core/[a-z]*.c
 * -lsodium -lm \ -o /tmp/gen_corpus && /tmp/gen_corpus fuzz/corpus
 *
 * Names are stable, so rerunning it overwrites the seeds without touching inputs found later.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/buf.h"
#include "core/ident.h"
#include "core/kv.h"
#include "core/wire.h"

static const char *outdir;

static void put_file(const char *sub, const char *name, const uint8_t *p, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s/seed-%s", outdir, sub, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, len, f) != len) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

static rumor_addr addr4(uint8_t last)
{
    rumor_addr a;
    memset(&a, 0, sizeof(a));
    a.len = 4;
    a.bytes[0] = 10;
    a.bytes[3] = last;
    return a;
}

static wire_str S(const char *s)
{
    return wire_str_of(s, strlen(s));
}

typedef void (*body_fn)(buf_writer *w);

static void b_ping(buf_writer *w)
{
    wire_put_ping(w, 7, S("self"), S("m1"));
}
static void b_ping_any(buf_writer *w)
{
    wire_put_ping(w, 8, S(""), S("stranger"));
}
static void b_ping_req(buf_writer *w)
{
    rumor_addr a = addr4(12);
    wire_put_ping_req(w, 9, S("m2"), &a, true, S("m1"));
}
static void b_ack(buf_writer *w)
{
    wire_put_ack(w, WIRE_ACK, 1);
}
static void b_nack(buf_writer *w)
{
    wire_put_ack(w, WIRE_NACK, 1);
}
static void b_alive(buf_writer *w)
{
    rumor_addr a = addr4(14);
    wire_put_alive(w, 3, S("m4"), &a, S("zone=b"));
}
static void b_alive_self(buf_writer *w)
{
    rumor_addr a = addr4(99);
    wire_put_alive(w, 5, S("self"), &a, S(""));
}
static void b_suspect(buf_writer *w)
{
    wire_put_accuse(w, WIRE_SUSPECT, 1, S("m2"), S("m1"));
}
static void b_suspect_self(buf_writer *w)
{
    wire_put_accuse(w, WIRE_SUSPECT, 0, S("self"), S("m3"));
}
static void b_failed(buf_writer *w)
{
    wire_put_accuse(w, WIRE_FAILED, 1, S("m3"), S("m1"));
}
static void b_left(buf_writer *w)
{
    wire_put_accuse(w, WIRE_LEFT, 2, S("m1"), S(""));
}
static void b_unknown(buf_writer *w)
{
    buf_put_u8(w, 42);
    buf_put_lbytes(w, "future", 6);
}
static void b_compound(buf_writer *w)
{
    b_ping(w);
    b_alive(w);
    b_suspect(w);
    b_unknown(w);
    b_ack(w);
}
static void b_pushpull(buf_writer *w)
{
    wire_member ms[4];
    const char *names[] = {"m1", "m5", "m3", "self"};
    uint8_t states[] = {RUMOR_MEMBER_ALIVE, RUMOR_MEMBER_ALIVE, RUMOR_MEMBER_FAILED,
                        RUMOR_MEMBER_SUSPECT};
    size_t bytes = 0;
    for (int i = 0; i < 4; i++) {
        ms[i].name = S(names[i]);
        ms[i].addr = addr4((uint8_t)(20 + i));
        ms[i].inc = (uint32_t)(i + 1);
        ms[i].state = states[i];
        ms[i].meta = S(i == 1 ? "role=web" : "");
        bytes += wire_member_size(&ms[i]);
    }
    wire_put_pushpull_begin(w, WIRE_PP_JOIN, S("m1"), 4, bytes);
    for (int i = 0; i < 4; i++)
        wire_put_member(w, &ms[i]);
    wire_put_pushpull_end(w, 0x1122334455667788ull);
}
static void b_pushpull_left(buf_writer *w)
{
    wire_member m = {S("m2"), addr4(12), 9, RUMOR_MEMBER_LEFT, S("")};
    wire_put_pushpull_begin(w, WIRE_PP_REPLY, S("m2"), 1, wire_member_size(&m));
    wire_put_member(w, &m);
    wire_put_pushpull_end(w, 0);
}
static void b_pushpull_digest(buf_writer *w)
{
    wire_put_pushpull_begin(w, WIRE_PP_DIGEST, S("m3"), 0, 0);
    wire_put_pushpull_end(w, 0x0123456789abcdefull);
}

/* Key-value messages (docs/protocol.md 4.6), about the members the fuzzed node knows. */
static void kv_digest(buf_writer *w, uint8_t flags, uint32_t nbuckets)
{
    const char *names[] = {"m1", "m2", "self"};
    size_t bytes = 0;
    for (int i = 0; i < 3; i++)
        bytes += wire_kv_digest_entry_size(S(names[i]), (uint64_t)(3 - i), (uint64_t)(i == 0));
    wire_put_kv_digest_begin_b(w, flags, 3, bytes, nbuckets);
    for (int i = 0; i < 3; i++)
        wire_put_kv_digest_entry(w, S(names[i]), (uint64_t)(3 - i), (uint64_t)(i == 0));
    wire_put_kv_digest_end(w, 0x0102030405060708ull);
    uint64_t sums[64];
    for (uint32_t i = 0; i < 64; i++)
        sums[i] = i * 0x9e3779b97f4a7c15ull;
    wire_put_kv_digest_buckets(w, sums, nbuckets);
}
static void b_kv_sum(buf_writer *w)
{
    kv_digest(w, WIRE_KVD_SUM | WIRE_KVD_PUSH | WIRE_KVD_PULL, 64);
}
static void b_kv_offer(buf_writer *w)
{
    kv_digest(w, WIRE_KVD_OFFER | WIRE_KVD_PUSH | WIRE_KVD_PULL, 0);
}
static void b_kv_reply(buf_writer *w)
{
    kv_digest(w, WIRE_KVD_REPLY, 0);
}
static void b_kv_all(buf_writer *w)
{
    kv_digest(w, WIRE_KVD_ALL, 0);
}
static void b_kv_delta(buf_writer *w)
{
    uint8_t dep[16];
    size_t dl = wire_kv_retired_put(dep, S("m2"), 1);
    wire_kv_entry e[3] = {
        {S("k1"), 1, 0x02, 100, S("a")},
        {S("k2"), 2, 0x01, 0, S("")},
        {S("k1"), 3, 0x07, 100, wire_str_of(dep, dl)},
    };
    size_t bytes = 0;
    for (int i = 0; i < 3; i++)
        bytes += wire_kv_entry_size(&e[i]);
    wire_put_kv_delta_begin(w, S("m1"), WIRE_KVX_COMPLETE | WIRE_KVX_RUMOR, 0, 3, 0, 3, bytes);
    for (int i = 0; i < 3; i++)
        wire_put_kv_entry(w, &e[i]);
}
static void b_pushpull_kv(buf_writer *w)
{
    b_pushpull(w);
    b_kv_delta(w);
    b_kv_all(w);
}
static void b_user_event(buf_writer *w)
{
    wire_put_user_event(w, 5, S("m1"), S("deploy"), S("v1.2"));
}
static void b_query(buf_writer *w)
{
    wire_str nodes[] = {S("self"), S("m2")}, keys[] = {S("role")}, values[] = {S("db")};
    uint8_t rest[256];
    buf_writer r;
    buf_writer_init_fixed(&r, rest, sizeof(rest));
    wire_put_query_rest(&r, nodes, 2, keys, values, 1, S("uptime"), S("?"));
    rumor_addr a = addr4(11);
    wire_put_query(w, 3, 77, S("m1"), &a, WIRE_Q_ACK, 2000, wire_str_of(r.p, r.len));
}
static void b_query_resp(buf_writer *w)
{
    wire_put_query_resp(w, 3, 77, S("m2"), 0, S("up 3 days"));
}
static void b_query_ack(buf_writer *w)
{
    wire_put_query_resp(w, 3, 77, S("m2"), WIRE_Q_ACK, S(""));
}
static void b_clocks_events(buf_writer *w)
{
    wire_put_clocks(w, 0, 40, 3, 0x55);
    b_pushpull_digest(w);
    wire_put_user_event(w, 39, S("m3"), S("missed"), S(""));
}
/* A full-state frame as send_state lays it out: CLOCKS, PUSHPULL, key-value deltas and the
 * complete digest, recent user events last. */
static void b_clocks_pushpull_kv_events(buf_writer *w)
{
    wire_put_clocks(w, 0, 40, 3, 0x55);
    b_pushpull(w);
    b_kv_delta(w);
    b_kv_all(w);
    wire_put_user_event(w, 39, S("m3"), S("missed"), S(""));
}

static const struct {
    const char *name;
    body_fn fn;
} bodies[] = {
    {"ping", b_ping},
    {"ping-any", b_ping_any},
    {"ping-req", b_ping_req},
    {"ack", b_ack},
    {"nack", b_nack},
    {"alive", b_alive},
    {"alive-self", b_alive_self},
    {"suspect", b_suspect},
    {"suspect-self", b_suspect_self},
    {"failed", b_failed},
    {"left", b_left},
    {"unknown", b_unknown},
    {"compound", b_compound},
    {"pushpull", b_pushpull},
    {"pushpull-left", b_pushpull_left},
    {"pushpull-digest", b_pushpull_digest},
    {"kv-sum", b_kv_sum},
    {"kv-offer", b_kv_offer},
    {"kv-reply", b_kv_reply},
    {"kv-all", b_kv_all},
    {"kv-delta-retired", b_kv_delta},
    {"pushpull-kv", b_pushpull_kv},
    {"user-event", b_user_event},
    {"query", b_query},
    {"query-resp", b_query_resp},
    {"query-ack", b_query_ack},
    {"clocks-events", b_clocks_events},
    {"clocks-pushpull-kv-events", b_clocks_pushpull_kv_events},
};

/* ---- signed messages (fuzz_ident) ---- */

typedef struct gkey {
    uint8_t pk[32], sk[64];
} gkey;

static gkey gkey_of(uint8_t i)
{
    gkey k;
    uint8_t seed[32];
    memset(seed, i, sizeof(seed));
    crypto_sign_seed_keypair(k.pk, k.sk, seed);
    return k;
}

static void sign_with(uint8_t i, const uint8_t *stmt, size_t len, uint8_t *sig)
{
    gkey k = gkey_of(i);
    crypto_sign_detached(sig, NULL, stmt, len, k.sk);
}

static void signed_alive(buf_writer *w, const char *name, uint8_t key, uint32_t inc, uint8_t addr,
                         const char *meta, bool cert)
{
    rumor_addr a = addr4(addr);
    uint8_t stmt[IDENT_STMT_MAX], sig[64], c[64];
    gkey k = gkey_of(key);
    sign_with(key, stmt, ident_stmt_alive(stmt, S(name), inc, &a, S(meta)), sig);
    memset(c, 0xc5, sizeof(c));
    wire_ident id = {.present = true, .has_cert = cert, .pk = k.pk, .sig = sig, .cert = c};
    wire_put_alive_ident(w, inc, S(name), &a, S(meta), &id);
}

static void signed_accuse(buf_writer *w, uint8_t type, const char *name, uint32_t inc,
                          const char *accuser, uint8_t key)
{
    uint8_t stmt[IDENT_STMT_MAX], sig[64];
    size_t len = type == WIRE_LEFT ? ident_stmt_left(stmt, S(name), inc)
                                   : ident_stmt_accuse(stmt, type, inc, S(name), S(accuser));
    sign_with(key, stmt, len, sig);
    wire_put_accuse_ident(w, type, inc, S(name), S(accuser), sig);
}

static void i_alive(buf_writer *w)
{
    signed_alive(w, "m1", 11, 2, 11, "role=web", false);
}
static void i_alive_new(buf_writer *w)
{
    signed_alive(w, "m4", 14, 1, 14, "zone=c", true);
}
static void i_alive_forged(buf_writer *w)
{
    signed_alive(w, "m2", 11, 5, 12, "evil", false);
}
static void i_alive_self(buf_writer *w)
{
    signed_alive(w, "self", 1, 3, 1, "old", false);
}
static void i_suspect(buf_writer *w)
{
    signed_accuse(w, WIRE_SUSPECT, "m2", 1, "m1", 11);
}
/* A user event of m1 (key 11), a query of m2 (key 12) and a response of m3 (key 13) to a query
 * of "self", each signed (section 12.1); the event also once with m2's key (a forgery). */
static void i_event(buf_writer *w)
{
    uint8_t stmt[IDENT_STMT_MAX], sig[64];
    size_t len = ident_stmt_event(stmt, S("m1"), 9, S("deploy"), S("v1"));
    sign_with(11, stmt, len, sig);
    wire_put_user_event_sig(w, 9, S("m1"), S("deploy"), S("v1"), sig);
    sign_with(12, stmt, len, sig);
    wire_put_user_event_sig(w, 10, S("m1"), S("deploy"), S("v1"), sig);
}
static void i_query(buf_writer *w)
{
    uint8_t rest[64], stmt[IDENT_STMT_MAX], sig[64];
    buf_writer r;
    buf_writer_init_fixed(&r, rest, sizeof(rest));
    wire_put_query_rest(&r, NULL, 0, NULL, NULL, 0, S("whoami"), S("p"));
    rumor_addr a = addr4(12);
    size_t len = ident_stmt_query(stmt, S("m2"), 4, 77, wire_str_of(a.bytes, a.len), 1, 5000,
                                  wire_str_of(rest, r.len));
    sign_with(12, stmt, len, sig);
    wire_put_query_sig(w, 4, 77, S("m2"), &a, 1, 5000, wire_str_of(rest, r.len), sig);
    len = ident_stmt_query_resp(stmt, S("m3"), S("self"), 1, 5, 0, S("ok"));
    sign_with(13, stmt, len, sig);
    wire_put_query_resp_sig(w, 1, 5, S("m3"), 0, S("ok"), sig);
}
static void i_failed_self(buf_writer *w)
{
    signed_accuse(w, WIRE_FAILED, "self", 0, "m3", 13);
}
static void i_left(buf_writer *w)
{
    signed_accuse(w, WIRE_LEFT, "m3", 1, "", 13);
}
static void i_kv(buf_writer *w)
{
    uint8_t stmt[IDENT_STMT_MAX], head[64], sig[2][64];
    wire_kv_entry e[2] = {{S("k2"), 2, 0, 0, S("x")}, {S("k"), 3, 0x01 /* tombstone */, 0, S("")}};
    sign_with(11, stmt, ident_stmt_kv_head(stmt, S("m1"), 3, 0), head);
    for (int i = 0; i < 2; i++)
        sign_with(11, stmt, ident_stmt_kv_entry(stmt, S("m1"), &e[i]), sig[i]);
    wire_put_kv_delta_begin(w, S("m1"), WIRE_KVX_COMPLETE | WIRE_KVX_RUMOR, 1, 3, 0, 2,
                            wire_kv_entry_size(&e[0]) + wire_kv_entry_size(&e[1]) +
                                wire_kv_sigs_size(2));
    wire_put_kv_entry(w, &e[0]);
    wire_put_kv_entry(w, &e[1]);
    buf_put_u8(w, WIRE_IDENT_V1);
    buf_put_bytes(w, head, 64);
    buf_put_bytes(w, sig[0], 64);
    buf_put_bytes(w, sig[1], 64);
}
static void i_pushpull(buf_writer *w)
{
    /* m1's state: itself, m2 suspected by m1, m3 left, a newcomer m5. */
    const char *names[] = {"m1", "m2", "m3", "m5"};
    uint8_t keys[] = {11, 12, 13, 15};
    uint8_t states[] = {RUMOR_MEMBER_ALIVE, RUMOR_MEMBER_SUSPECT, RUMOR_MEMBER_LEFT,
                        RUMOR_MEMBER_ALIVE};
    uint32_t incs[] = {1, 1, 2, 1};
    wire_member ms[4];
    uint8_t sigs[4][64], stmt[IDENT_STMT_MAX];
    gkey k[4];
    size_t bytes = 0, idb = 1;
    for (int i = 0; i < 4; i++) {
        ms[i] = (wire_member){S(names[i]), addr4(keys[i]), incs[i], states[i], S("role=db")};
        bytes += wire_member_size(&ms[i]);
        k[i] = gkey_of(keys[i]);
        size_t len = states[i] == RUMOR_MEMBER_ALIVE
                         ? ident_stmt_alive(stmt, ms[i].name, incs[i], &ms[i].addr, ms[i].meta)
                     : states[i] == RUMOR_MEMBER_LEFT
                         ? ident_stmt_left(stmt, ms[i].name, incs[i])
                         : ident_stmt_accuse(stmt, WIRE_SUSPECT, incs[i], ms[i].name, S("m1"));
        sign_with(states[i] == RUMOR_MEMBER_SUSPECT ? 11 : keys[i], stmt, len, sigs[i]);
        idb += 1 + 32 + 64;
    }
    wire_put_pushpull_begin_ident(w, 0, S("m1"), 4, bytes, idb);
    for (int i = 0; i < 4; i++)
        wire_put_member(w, &ms[i]);
    wire_put_pushpull_end(w, 0x99);
    buf_put_u8(w, WIRE_IDENT_V1);
    for (int i = 0; i < 4; i++) {
        wire_ident id = {.present = true, .pk = k[i].pk, .sig = sigs[i]};
        wire_put_ident_block(w, &id);
    }
}

/* A KV_DELTA of `origin` signed with key `key`: head (max, gc) and every entry. */
static void signed_delta(buf_writer *w, const char *origin, uint8_t key, uint8_t flags,
                         uint64_t since, uint64_t max, uint64_t gc, const wire_kv_entry *e,
                         uint32_t count)
{
    uint8_t stmt[IDENT_STMT_MAX], sig[64];
    size_t bytes = wire_kv_sigs_size(count);
    for (uint32_t i = 0; i < count; i++)
        bytes += wire_kv_entry_size(&e[i]);
    wire_put_kv_delta_begin(w, S(origin), flags, since, max, gc, count, bytes);
    for (uint32_t i = 0; i < count; i++)
        wire_put_kv_entry(w, &e[i]);
    buf_put_u8(w, WIRE_IDENT_V1);
    sign_with(key, stmt, ident_stmt_kv_head(stmt, S(origin), max, gc), sig);
    buf_put_bytes(w, sig, 64);
    for (uint32_t i = 0; i < count; i++) {
        sign_with(key, stmt, ident_stmt_kv_entry(stmt, S(origin), &e[i]), sig);
        buf_put_bytes(w, sig, 64);
    }
}
/* m2 writes shared "sk"; m1's older write of it follows, then m1's signed retirement of it,
 * which names m2's entry as what superseded it. */
static void i_kv_retired(buf_writer *w)
{
    wire_kv_entry e2 = {S("sk"), 1, 0x02, 200, S("new")};
    signed_delta(w, "m2", 12, WIRE_KVX_COMPLETE, 0, 1, 0, &e2, 1);
    uint8_t dep[16];
    size_t dl = wire_kv_retired_put(dep, S("m2"), 1);
    wire_kv_entry e1[2] = {{S("sk"), 2, 0x02, 100, S("old")},
                           {S("sk"), 3, 0x07, 100, wire_str_of(dep, dl)}};
    signed_delta(w, "m1", 11, WIRE_KVX_COMPLETE, 1, 3, 0, e1, 2);
}
/* m1's writes 4 and 5 as most senders pass them on: the empty head (0, 0) with a zero slot,
 * each entry proving its own version past origin_max; then m1's head over a horizon. */
static void i_kv_nohead(buf_writer *w)
{
    uint8_t stmt[IDENT_STMT_MAX], sig[2][64];
    static const uint8_t zeros[64];
    wire_kv_entry e[2] = {{S("k4"), 4, 0, 0, S("y")}, {S("k2"), 5, 0x01 /* tombstone */, 0, S("")}};
    for (int i = 0; i < 2; i++)
        sign_with(11, stmt, ident_stmt_kv_entry(stmt, S("m1"), &e[i]), sig[i]);
    wire_put_kv_delta_begin(w, S("m1"), WIRE_KVX_COMPLETE | WIRE_KVX_RUMOR, 3, 0, 0, 2,
                            wire_kv_entry_size(&e[0]) + wire_kv_entry_size(&e[1]) +
                                wire_kv_sigs_size(2));
    wire_put_kv_entry(w, &e[0]);
    wire_put_kv_entry(w, &e[1]);
    buf_put_u8(w, WIRE_IDENT_V1);
    buf_put_bytes(w, zeros, 64);
    buf_put_bytes(w, sig[0], 64);
    buf_put_bytes(w, sig[1], 64);
    signed_delta(w, "m1", 11, WIRE_KVX_COMPLETE, 5, 5, 2, NULL, 0);
}
/* m1's signed keyspace sum at version 1 (it holds its write 1), as its rumor carries it: a
 * KV_DELTA without entries, then the same sum signed by m2 (a forgery). */
static void i_kv_sum(buf_writer *w)
{
    uint8_t stmt[IDENT_STMT_MAX], sig[64], sum[16];
    static const uint8_t zeros[64];
    uint64_t t[2];
    kv_sum_term(1, t);
    for (int i = 0; i < 8; i++) {
        sum[i] = (uint8_t)(t[0] >> (8 * i));
        sum[8 + i] = (uint8_t)(t[1] >> (8 * i));
    }
    for (uint8_t key = 11; key <= 12; key++) {
        sign_with(key, stmt, ident_stmt_kv_sum(stmt, S("m1"), 1, 0, sum), sig);
        wire_put_kv_delta_begin(w, S("m1"), WIRE_KVX_RUMOR, 1, 0, 0, 0,
                                wire_kv_sigs_size(0) + WIRE_KV_SUM_BYTES);
        buf_put_u8(w, WIRE_IDENT_V1);
        buf_put_bytes(w, zeros, 64);
        wire_put_kv_sum(w, 1, 0, sum, sig);
    }
}
/* A full-state frame of m1 with signed key-value deltas and its complete digest. */
static void i_pushpull_kv(buf_writer *w)
{
    wire_put_clocks(w, 0, 7, 1, 0);
    i_pushpull(w);
    i_kv(w);
    kv_digest(w, WIRE_KVD_ALL, 0);
}

static const struct {
    const char *name;
    body_fn fn;
} ident_bodies[] = {
    {"alive", i_alive},
    {"alive-new", i_alive_new},
    {"alive-forged", i_alive_forged},
    {"alive-self", i_alive_self},
    {"suspect", i_suspect},
    {"failed-self", i_failed_self},
    {"left", i_left},
    {"kv", i_kv},
    {"pushpull", i_pushpull},
    {"kv-retired", i_kv_retired},
    {"pushpull-kv", i_pushpull_kv},
    {"event", i_event},
    {"query", i_query},
    {"kv-nohead", i_kv_nohead},
    {"kv-sum", i_kv_sum},
};

static size_t packet(uint8_t *out, size_t cap, const char *label, uint8_t flags, body_fn fn)
{
    buf_writer w;
    buf_writer_init_fixed(&w, out, cap);
    wire_put_header(&w, (const uint8_t *)label, strlen(label), flags);
    fn(&w);
    if (w.failed)
        exit(1);
    return w.len;
}

static uint32_t lcg = 12345;
static uint32_t rnd(void)
{
    lcg = lcg * 1103515245u + 12345u;
    return lcg >> 8;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <corpus root>\n", argv[0]);
        return 2;
    }
    outdir = argv[1];
    uint8_t p[8192], q[8192];
    char name[128];
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        size_t n = packet(p, sizeof(p), "", 0, bodies[i].fn);
        put_file("packet", bodies[i].name, p, n);
        put_file("node", bodies[i].name, p, n);
        /* Bare message, no header: fuzz_packet falls back to reading messages. */
        put_file("packet", (snprintf(name, sizeof(name), "%s-bare", bodies[i].name), name), p + 5,
                 n - 5);
        /* Framed for the stream path of fuzz_node. */
        q[0] = (uint8_t)(n >> 24);
        q[1] = (uint8_t)(n >> 16);
        q[2] = (uint8_t)(n >> 8);
        q[3] = (uint8_t)n;
        memcpy(q + 4, p, n);
        put_file("node", (snprintf(name, sizeof(name), "%s-framed", bodies[i].name), name), q,
                 n + 4);
        /* Mutations: a truncation and a bit flip, deterministic. */
        size_t cut = 1 + rnd() % (n - 1);
        put_file("packet", (snprintf(name, sizeof(name), "%s-cut%zu", bodies[i].name, cut), name),
                 p, cut);
        memcpy(q, p, n);
        size_t at = rnd() % n;
        q[at] ^= (uint8_t)(1u << (rnd() % 8));
        put_file("packet", (snprintf(name, sizeof(name), "%s-flip%zu", bodies[i].name, at), name),
                 q, n);
        put_file("node", (snprintf(name, sizeof(name), "%s-flip%zu", bodies[i].name, at), name), q,
                 n);
    }
    if (sodium_init() < 0)
        return 1;
    for (size_t i = 0; i < sizeof(ident_bodies) / sizeof(ident_bodies[0]); i++) {
        size_t n = packet(p, sizeof(p), "", 0, ident_bodies[i].fn);
        const char *nm = ident_bodies[i].name;
        put_file("ident", nm, p, n);
        put_file("packet", (snprintf(name, sizeof(name), "ident-%s", nm), name), p, n);
        /* A flipped bit inside the signed part or the trailer, and a cut trailer. */
        memcpy(q, p, n);
        size_t at = 5 + rnd() % (n - 5);
        q[at] ^= (uint8_t)(1u << (rnd() % 8));
        put_file("ident", (snprintf(name, sizeof(name), "%s-flip%zu", nm, at), name), q, n);
        put_file("ident", (snprintf(name, sizeof(name), "%s-cut", nm), name), p, n - 7);
    }
    size_t n = packet(p, sizeof(p), "prod", 0, b_compound);
    put_file("packet", "label", p, n);
    put_file("node", "label", p, n);
    n = packet(p, sizeof(p), "", WIRE_FLAG_SEALED, b_ping);
    put_file("packet", "sealed", p, n);
    put_file("node", "sealed", p, n);
    n = packet(p, sizeof(p), "", 0, b_ping);
    p[2] = 2;
    put_file("packet", "version2", p, n);
    p[2] = 1;
    p[0] = 'X';
    put_file("packet", "badmagic", p, n);
    /* Overlong and overflowing varints in a message length. */
    static const uint8_t ovl[] = {0x52, 0x4d, 1, 0, 0, 3, 0x81, 0x80, 0x80, 0x00, 0x01};
    put_file("packet", "varint-overlong", ovl, sizeof(ovl));
    static const uint8_t ovf[] = {0x52, 0x4d, 1,    0,    0,    3,    0xff, 0xff,
                                  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    put_file("packet", "varint-overflow", ovf, sizeof(ovf));
    return 0;
}
