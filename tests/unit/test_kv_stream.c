/* Key-value state beyond single datagrams: values larger than a datagram travel over streams,
 * a join's push-pull carries the key-value state both ways, and superseded shared-keyspace
 * entries are retired (and collected) without ever changing a winner, including on a replica
 * that hears of the retirement before it hears of what superseded it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/ident.h"
#include "core/node.h"
#include "helper_net.h"

static void start_all(tnet *t, int n)
{
    for (int i = 0; i < n; i++)
        tnet_start(t, i);
    for (int i = 1; i < n; i++)
        tnet_join(t, i, 0);
}

static uint64_t streams_out(tnet *t, int n)
{
    uint64_t sum = 0;
    for (int i = 0; i < n; i++) {
        rumor_stats st;
        rumor_node_stats(tnet_node(t, i), &st);
        sum += st.streams_out;
    }
    return sum;
}

static void test_large_values_over_streams(void **ctx)
{
    (void)ctx;
    enum { N = 6 };
    tnet *t = tnet_new(N, RUMOR_PROFILE_LOCAL, 51);
    for (int i = 0; i < N; i++)
        tnet_settings(t, i)->kv_value_bytes_max = 100000;
    start_all(t, N);
    tnet_run(t, tnet_now(t) + 3000);
    static uint8_t big[90000], mid[20000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7 + 3);
    memset(mid, 'm', sizeof(mid));
    uint64_t before = streams_out(t, N);
    rumor_node *w = tnet_node(t, 2);
    assert_int_equal(rumor_node_kv_put(w, "big", 3, big, sizeof(big), tnet_now(t)), 0);
    assert_int_equal(rumor_node_kv_put(w, "small", 5, "s", 1, tnet_now(t)), 0);
    assert_int_equal(rumor_node_kv_put(w, "mid", 3, mid, sizeof(mid), tnet_now(t)), 0);
    /* Over the limit: refused, nothing changes. */
    static uint8_t huge[100001];
    assert_int_equal(rumor_node_kv_put(w, "huge", 4, huge, sizeof(huge), tnet_now(t)),
                     RUMOR_ERR_TOO_BIG);
    assert_int_equal(rumor_node_kv_delete(w, "huge", 4, tnet_now(t)), RUMOR_ERR_NOT_FOUND);
    tnet_run(t, tnet_now(t) + 8000);
    for (int i = 0; i < N; i++) {
        rumor_kv_value v;
        assert_int_equal(rumor_node_kv_get(tnet_node(t, i), "n2", "big", 3, &v), 0);
        assert_int_equal(v.len, sizeof(big));
        assert_memory_equal(v.value, big, sizeof(big));
        assert_int_equal(rumor_node_kv_get(tnet_node(t, i), "n2", "mid", 3, &v), 0);
        assert_int_equal(v.len, sizeof(mid));
        assert_int_equal(rumor_node_kv_get(tnet_node(t, i), "n2", "small", 5, &v), 0);
        assert_int_equal(rumor_node_kv_get(tnet_node(t, i), "n2", "huge", 4, &v),
                         RUMOR_ERR_NOT_FOUND);
        assert_true(rumor_node_kv_digest(tnet_node(t, i)) == rumor_node_kv_digest(w));
    }
    /* Only streams can have carried them: every datagram is capped at packet_bytes_max. */
    assert_true(streams_out(t, N) > before);
    tnet_free(t);
}

static void test_value_limits(void **ctx)
{
    (void)ctx;
    tnet *t = tnet_new(1, RUMOR_PROFILE_LOCAL, 52);
    tnet_settings(t, 0)->kv_value_bytes_max = 4096;
    tnet_start(t, 0);
    static uint8_t v[5000];
    rumor_node *n = tnet_node(t, 0);
    assert_int_equal(rumor_node_kv_put(n, "k", 1, v, 4096, tnet_now(t)), 0);
    assert_int_equal(rumor_node_kv_put(n, "k", 1, v, 4097, tnet_now(t)), RUMOR_ERR_TOO_BIG);
    rumor_kv_value got;
    assert_int_equal(rumor_node_kv_get(n, NULL, "k", 1, &got), 0);
    assert_int_equal(got.len, 4096);
    assert_int_equal(got.version, 1);
    tnet_free(t);
}

/* With no datagram rounds and no rumors, only the join's push-pull can move key-value state:
 * the acceptor's answer carries what the joiner lacks, and the joiner pushes back what the
 * acceptor's complete digest shows it lacks. */
static void test_join_carries_kv_state(void **ctx)
{
    (void)ctx;
    tnet *t = tnet_new(2, RUMOR_PROFILE_LOCAL, 53);
    for (int i = 0; i < 2; i++) {
        tnet_settings(t, i)->kv_sync_interval_ms = 0;
        tnet_settings(t, i)->kv_rumor_transmits = 0;
        tnet_settings(t, i)->kv_keys_max = 4096;
    }
    tnet_start(t, 0);
    tnet_start(t, 1);
    char k[16], v[16];
    for (int i = 0; i < 1500; i++) {
        snprintf(k, sizeof(k), "key-%d", i);
        snprintf(v, sizeof(v), "v%d", i);
        assert_int_equal(rumor_node_kv_put(tnet_node(t, 0), k, strlen(k), v, strlen(v), 0), 0);
    }
    assert_int_equal(rumor_node_kv_delete(tnet_node(t, 0), "key-7", 5, 0), 0);
    assert_int_equal(rumor_node_kv_put(tnet_node(t, 1), "mine", 4, "1", 1, 0), 0);
    assert_int_equal(rumor_node_kv_put(tnet_node(t, 1), "mine2", 5, "2", 1, 0), 0);
    tnet_join(t, 1, 0);
    tnet_run(t, tnet_now(t) + 500);
    assert_int_equal(rumor_node_kv_count(tnet_node(t, 1)), 1499 + 2);
    assert_int_equal(rumor_node_kv_count(tnet_node(t, 0)), 1499 + 2);
    assert_true(rumor_node_kv_digest(tnet_node(t, 0)) == rumor_node_kv_digest(tnet_node(t, 1)));
    rumor_kv_value got;
    assert_int_equal(rumor_node_kv_get(tnet_node(t, 1), "n0", "key-7", 5, &got),
                     RUMOR_ERR_NOT_FOUND);
    assert_int_equal(rumor_node_kv_get(tnet_node(t, 0), "n1", "mine2", 5, &got), 0);
    tnet_free(t);
}

static int shared_value(rumor_node *n, const char *k, char *out, size_t cap)
{
    rumor_kv_value v;
    int rc = rumor_node_shared_get(n, k, strlen(k), &v);
    if (rc == 0) {
        size_t len = v.len < cap - 1 ? v.len : cap - 1;
        memcpy(out, v.value, len);
        out[len] = 0;
    }
    return rc;
}

/* Shared entries for `key` held under any origin, on node `i` (live, deleted or retired). */
static int shared_entries(tnet *t, int i, const char *key)
{
    rumor_node *n = tnet_node(t, i);
    int c = 0;
    for (size_t o = 0; o < n->kv.norigins; o++)
        c += kv_get_shared(n->kv.origins[o], (const uint8_t *)key, strlen(key)) != NULL;
    return c;
}

static void test_superseded_shared_entries_retire(void **ctx)
{
    (void)ctx;
    enum { N = 5 };
    tnet *t = tnet_new(N, RUMOR_PROFILE_LOCAL, 54);
    for (int i = 0; i < N; i++) {
        tnet_settings(t, i)->kv_tombstone_ttl_ms = 3000;
        tnet_settings(t, i)->wallclock_offset_ms = 1700000000000;
    }
    start_all(t, N);
    tnet_run(t, tnet_now(t) + 3000);
    /* Three writers, one after the other: each write supersedes the one before. */
    for (int w = 1; w <= 3; w++) {
        char v[16];
        snprintf(v, sizeof(v), "w%d", w);
        assert_int_equal(rumor_node_shared_put(tnet_node(t, w), "cfg", 3, v, 2, tnet_now(t)), 0);
        tnet_run(t, tnet_now(t) + 1000);
    }
    /* From now on every replica reads w3, at every step, while n1 and n2 retire their entries
     * and the tombstones are collected. */
    char buf[8];
    for (int step = 0; step < 150; step++) {
        tnet_run(t, tnet_now(t) + 100);
        for (int i = 0; i < N; i++) {
            assert_int_equal(shared_value(tnet_node(t, i), "cfg", buf, sizeof(buf)), 0);
            assert_string_equal(buf, "w3");
        }
    }
    /* Storage follows keys, not writers x keys: one entry for the key is left anywhere. */
    for (int i = 0; i < N; i++) {
        assert_int_equal(shared_entries(t, i, "cfg"), 1);
        assert_int_equal(rumor_node_kv_count(tnet_node(t, i)), 1);
    }
    assert_true(tnet_node(t, 1)->kv_self->gc_version > 0);
    /* The winner's owner deletes it; the delete wins everywhere and is collected in turn. */
    assert_int_equal(rumor_node_shared_delete(tnet_node(t, 3), "cfg", 3, tnet_now(t)), 0);
    tnet_run(t, tnet_now(t) + 8000);
    for (int i = 0; i < N; i++) {
        assert_int_equal(shared_value(tnet_node(t, i), "cfg", buf, sizeof(buf)),
                         RUMOR_ERR_NOT_FOUND);
        assert_int_equal(shared_entries(t, i, "cfg"), 0);
    }
    tnet_free(t);
}

/* ---- a retirement reaching a replica before what superseded it ---- */

typedef struct pkt {
    uint8_t b[2048];
    buf_writer w;
} pkt;

#define S1(s) wire_str_of(s, 1)

static buf_writer *pkt_begin(pkt *p)
{
    buf_writer_init_fixed(&p->w, p->b, sizeof(p->b));
    wire_put_header(&p->w, NULL, 0, 0);
    return &p->w;
}

/* A KV_DELTA of `origin` holding one entry at `version` that follows `version - 1`. */
static void delta(tnet *t, const char *origin, wire_kv_entry e, const rumor_addr *from)
{
    pkt p;
    buf_writer *w = pkt_begin(&p);
    wire_put_kv_delta_begin(w, wire_str_of(origin, strlen(origin)), WIRE_KVX_COMPLETE,
                            e.version - 1, e.version, 0, 1, wire_kv_entry_size(&e));
    wire_put_kv_entry(w, &e);
    assert_false(w->failed);
    assert_int_equal(tnet_inject(t, 0, from, p.b, w->len), 0);
}

static void test_retirement_waits_for_what_superseded_it(void **ctx)
{
    (void)ctx;
    tnet *t = tnet_new(1, RUMOR_PROFILE_LOCAL, 55);
    tnet_settings(t, 0)->kv_sync_interval_ms = 0;
    tnet_start(t, 0);
    rumor_node *r = tnet_node(t, 0);
    const char *names[] = {"x", "y", "z"};
    for (int i = 0; i < 3; i++) {
        rumor_member m = {.name = names[i], .addr = tnet_addr(10 + i), .incarnation = 1};
        assert_int_equal(rumor_node_restore(r, &m, tnet_now(t)), 0);
    }
    rumor_addr from = tnet_addr(11);
    uint8_t dep[KV_RETIRED_VALUE_MAX];
    /* y wrote k = old; x later wrote k = new (x's version 1); y retired its entry. */
    wire_kv_entry old = {wire_str_of("k", 1), 1, KV_SHARED, 100, wire_str_of("old", 3)};
    wire_kv_entry newer = {wire_str_of("k", 1), 1, KV_SHARED, 200, wire_str_of("new", 3)};
    size_t dl = wire_kv_retired_put(dep, wire_str_of("x", 1), 1);
    wire_kv_entry retired = {wire_str_of("k", 1), 2, KV_SHARED | KV_TOMBSTONE | KV_RETIRED, 100,
                             wire_str_of(dep, dl)};
    delta(t, "y", old, &from);
    char buf[8];
    assert_int_equal(shared_value(r, "k", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "old");
    /* The retirement arrives first: applying it would make k read as absent here (or an older
     * value, had there been one), so it waits; y stays at version 1. */
    delta(t, "y", retired, &from);
    assert_int_equal(kv_origin_find(&r->kv, "y", 1)->max_version, 1);
    assert_int_equal(shared_value(r, "k", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "old");
    /* What superseded it arrives; the retirement then applies and changes no winner. */
    delta(t, "x", newer, &from);
    assert_string_equal((shared_value(r, "k", buf, sizeof(buf)), buf), "new");
    delta(t, "y", retired, &from);
    assert_int_equal(kv_origin_find(&r->kv, "y", 1)->max_version, 2);
    assert_int_equal(shared_value(r, "k", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "new");
    const kv_entry *e = kv_get_shared(kv_origin_find(&r->kv, "y", 1), (const uint8_t *)"k", 1);
    assert_non_null(e);
    assert_true(e->flags & KV_RETIRED);
    /* A retirement naming an origin that is no member (it was reaped) does not wait. */
    wire_kv_entry zold = {wire_str_of("q", 1), 1, KV_SHARED, 50, wire_str_of("z1", 2)};
    dl = wire_kv_retired_put(dep, wire_str_of("gone", 4), 9);
    wire_kv_entry zret = {wire_str_of("q", 1), 2, KV_SHARED | KV_TOMBSTONE | KV_RETIRED, 50,
                          wire_str_of(dep, dl)};
    delta(t, "z", zold, &from);
    delta(t, "z", zret, &from);
    assert_int_equal(kv_origin_find(&r->kv, "z", 1)->max_version, 2);
    /* A retired entry with a malformed dependency is refused by the decoder. */
    wire_kv_entry bad = {wire_str_of("k", 1), 3, KV_SHARED | KV_TOMBSTONE | KV_RETIRED, 100,
                         wire_str_of("", 0)};
    pkt p;
    buf_writer *w = pkt_begin(&p);
    wire_put_kv_delta_begin(w, wire_str_of("y", 1), 0, 2, 3, 0, 1, wire_kv_entry_size(&bad));
    wire_put_kv_entry(w, &bad);
    assert_int_equal(tnet_inject(t, 0, &from, p.b, w->len), RUMOR_ERR_MALFORMED);
    assert_int_equal(kv_origin_find(&r->kv, "y", 1)->max_version, 2);
    tnet_free(t);
}

/* A replica below an origin's collection horizon takes nothing but a RESET: deltas from a
 * sender that does not know it lags (a rumor, say) may skip deletes that were collected. */
static void test_behind_horizon_waits_for_reset(void **ctx)
{
    (void)ctx;
    tnet *t = tnet_new(1, RUMOR_PROFILE_LOCAL, 56);
    tnet_settings(t, 0)->kv_sync_interval_ms = 0;
    tnet_start(t, 0);
    rumor_node *r = tnet_node(t, 0);
    rumor_member m = {.name = "y", .addr = tnet_addr(11), .incarnation = 1};
    assert_int_equal(rumor_node_restore(r, &m, tnet_now(t)), 0);
    rumor_addr from = tnet_addr(11);
    /* y wrote k1 (version 1); we hold that. y then deleted k1 (2), collected it (horizon 2)
     * and wrote k3 (3). */
    delta(t, "y", (wire_kv_entry){wire_str_of("k1", 2), 1, 0, 0, wire_str_of("v", 1)}, &from);
    rumor_kv_value v;
    assert_int_equal(rumor_node_kv_get(r, "y", "k1", 2, &v), 0);
    wire_kv_entry k3 = {wire_str_of("k3", 2), 3, 0, 0, wire_str_of("w", 1)};
    for (int reset = 0; reset < 2; reset++) {
        pkt p;
        buf_writer *w = pkt_begin(&p);
        uint8_t flags = (uint8_t)(WIRE_KVX_COMPLETE | (reset ? WIRE_KVX_RESET : WIRE_KVX_RUMOR));
        wire_put_kv_delta_begin(w, wire_str_of("y", 1), flags, reset ? 0 : 1, 3, 2, 1,
                                wire_kv_entry_size(&k3));
        wire_put_kv_entry(w, &k3);
        assert_int_equal(tnet_inject(t, 0, &from, p.b, w->len), 0);
        const kv_origin *y = kv_origin_find(&r->kv, "y", 1);
        if (!reset) {
            /* Taken, it would leave k1 alive at version 3: refused. */
            assert_int_equal(y->max_version, 1);
            assert_int_equal(rumor_node_kv_get(r, "y", "k1", 2, &v), 0);
        } else {
            assert_int_equal(y->max_version, 3);
            assert_int_equal(y->gc_version, 2);
            assert_int_equal(rumor_node_kv_get(r, "y", "k1", 2, &v), RUMOR_ERR_NOT_FOUND);
            assert_int_equal(rumor_node_kv_get(r, "y", "k3", 2, &v), 0);
        }
    }
    tnet_free(t);
}

/* ---- sealed streams and identities together ---- */

static const uint8_t ring[1][RUMOR_KEY_BYTES] = {{0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78,
                                                  0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f, 0x80,
                                                  0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88,
                                                  0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f, 0x90}};

/*
 * Every packet sealed and every claim signed: values too big for a datagram cross sealed KV
 * streams (hello first), a late joiner takes the whole state from a sealed push-pull, a
 * superseded shared entry is retired by a tombstone its owner signs, and that tombstone is
 * collected everywhere through the owner's signed horizon. No signature is refused and no packet
 * or frame is dropped as malformed, replayed or oversize.
 */
static void test_sealed_streams_with_identities(void **ctx)
{
    (void)ctx;
    enum { N = 5 };
    tnet *t = tnet_new(N, RUMOR_PROFILE_LOCAL, 57);
    for (int i = 0; i < N; i++) {
        rumor_settings *s = tnet_settings(t, i);
        s->kv_value_bytes_max = 100000;
        s->kv_tombstone_ttl_ms = 3000;
        s->wallclock_offset_ms = 1700000000000;
        s->identity = true;
        memset(s->identity_seed, 40 + i, sizeof(s->identity_seed));
        s->keys = ring;
        s->nkeys = 1;
        memset(s->seal_secret, 0x60 + i, sizeof(s->seal_secret));
        s->seal_epoch = 1000;
    }
    start_all(t, N - 1);
    tnet_run(t, tnet_now(t) + 3000);
    static uint8_t big[90000], mid[20000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 13 + 5);
    memset(mid, 'q', sizeof(mid));
    uint64_t before = streams_out(t, N - 1);
    rumor_node *w = tnet_node(t, 2);
    assert_int_equal(rumor_node_kv_put(w, "big", 3, big, sizeof(big), tnet_now(t)), 0);
    assert_int_equal(rumor_node_kv_put(w, "mid", 3, mid, sizeof(mid), tnet_now(t)), 0);
    assert_int_equal(rumor_node_shared_put(tnet_node(t, 1), "cfg", 3, "w1", 2, tnet_now(t)), 0);
    tnet_run(t, tnet_now(t) + 1000);
    assert_int_equal(rumor_node_shared_put(tnet_node(t, 3), "cfg", 3, "w3", 2, tnet_now(t)), 0);
    tnet_run(t, tnet_now(t) + 4000);
    /* A late joiner: the whole key-value state comes with the join and the streams after it. */
    tnet_start(t, N - 1);
    tnet_join(t, N - 1, 0);
    tnet_run(t, tnet_now(t) + 20000);
    assert_true(streams_out(t, N) > before);
    char buf[8];
    for (int i = 0; i < N; i++) {
        rumor_node *n = tnet_node(t, i);
        rumor_kv_value v;
        assert_int_equal(rumor_node_kv_get(n, "n2", "big", 3, &v), 0);
        assert_int_equal(v.len, sizeof(big));
        assert_memory_equal(v.value, big, sizeof(big));
        assert_int_equal(rumor_node_kv_get(n, "n2", "mid", 3, &v), 0);
        assert_int_equal(v.len, sizeof(mid));
        assert_int_equal(shared_value(n, "cfg", buf, sizeof(buf)), 0);
        assert_string_equal(buf, "w3");
        /* n1 retired its entry and collected the tombstone; every replica learned the signed
         * horizon, so one entry for the key is left anywhere. */
        assert_int_equal(shared_entries(t, i, "cfg"), 1);
        assert_true(kv_origin_find(&n->kv, "n1", 2)->gc_version > 0);
        assert_true(rumor_node_kv_digest(n) == rumor_node_kv_digest(w));
        rumor_stats st;
        rumor_node_stats(n, &st);
        assert_true(st.ident_verified > 0);
        for (int r = 0; r < RUMOR_IDENT_REFUSAL_COUNT; r++)
            assert_int_equal(st.ident_refused[r], 0);
        for (int r = 0; r < RUMOR_DROP_REASON_COUNT; r++)
            if (r != RUMOR_DROP_STALE && r != RUMOR_DROP_UNKNOWN_TYPE)
                assert_int_equal(st.dropped[r], 0);
    }
    tnet_free(t);
}

typedef struct key {
    uint8_t seed[32], pk[32], sk[64];
} key;

static key key_of(uint8_t i)
{
    key k;
    memset(k.seed, i, sizeof(k.seed));
    crypto_sign_seed_keypair(k.pk, k.sk, k.seed);
    return k;
}

/* A KV_DELTA of `origin` signed by `k` (head and entries); `forge` >= 0 replaces that entry's
 * value after signing, as a relay altering it would. */
static void signed_delta(buf_writer *w, const key *k, const char *origin, uint8_t flags,
                         uint64_t since, uint64_t max, uint64_t gc, const wire_kv_entry *e,
                         uint32_t count, int forge)
{
    wire_str on = wire_str_of(origin, strlen(origin));
    uint8_t stmt[IDENT_STMT_MAX], sig[64];
    wire_kv_entry sent[4];
    size_t bytes = wire_kv_sigs_size(count);
    for (uint32_t i = 0; i < count; i++) {
        sent[i] = e[i];
        if ((int)i == forge)
            sent[i].value = wire_str_of("evil", 4);
        bytes += wire_kv_entry_size(&sent[i]);
    }
    wire_put_kv_delta_begin(w, on, flags, since, max, gc, count, bytes);
    for (uint32_t i = 0; i < count; i++)
        wire_put_kv_entry(w, &sent[i]);
    buf_put_u8(w, WIRE_IDENT_V1);
    crypto_sign_detached(sig, NULL, stmt, ident_stmt_kv_head(stmt, on, max, gc), k->sk);
    buf_put_bytes(w, sig, 64);
    for (uint32_t i = 0; i < count; i++) {
        crypto_sign_detached(sig, NULL, stmt, ident_stmt_kv_entry(stmt, on, &e[i]), k->sk);
        buf_put_bytes(w, sig, 64);
    }
}

/* Hands `r` one stream frame (the messages in `p` after its header) on a fresh accepted
 * stream, as a plaintext KV push or push-pull from a relay, and drains what it sends. */
static void stream_deliver(rumor_node *r, const pkt *p, uint64_t now)
{
    static uint8_t f[4096];
    assert_false(p->w.failed);
    assert_true(p->w.len + 4 <= sizeof(f));
    f[0] = (uint8_t)(p->w.len >> 24);
    f[1] = (uint8_t)(p->w.len >> 16);
    f[2] = (uint8_t)(p->w.len >> 8);
    f[3] = (uint8_t)p->w.len;
    memcpy(f + 4, p->b, p->w.len);
    rumor_addr via = tnet_addr(30);
    uint64_t id;
    assert_int_equal(rumor_node_stream_accept(r, &via, &id, now), 0);
    int rc = rumor_node_stream_data(r, id, f, p->w.len + 4, now);
    assert_true(rc == 0 || rc == RUMOR_ERR_NOT_FOUND);
    rumor_node_stream_closed(r, id, now);
    rumor_stream_op op;
    while (rumor_node_poll_stream(r, &op)) {
    }
}

static uint64_t refused_kv(rumor_node *r)
{
    rumor_stats st;
    rumor_node_stats(r, &st);
    return st.ident_refused[RUMOR_IDENT_BAD_KV];
}

/*
 * Identities on the stream paths: a relay that alters an entry or a keyspace head in a KV push
 * stream or a push-pull frame is refused like on a datagram, and a digest (unsigned) cannot
 * make a replica adopt a collection horizon, which would drop tombstones: only the owner's
 * signed head teaches it, and a replica that holds that head passes it on in a delta even
 * when it has no entries to send.
 */
static void test_stream_paths_verify_signatures(void **ctx)
{
    (void)ctx;
    uint64_t now = 100000;
    rumor_settings s;
    rumor_settings_default(&s, RUMOR_PROFILE_LOCAL);
    s.name = "r";
    s.addr = tnet_addr(1);
    s.seed = 9;
    s.identity = true;
    key me = key_of(1), y = key_of(21);
    memcpy(s.identity_seed, me.seed, 32);
    s.kv_sync_interval_ms = 0;
    rumor_node *r;
    assert_int_equal(rumor_node_new(&r, &s, now), 0);
    rumor_member m = {.name = "y", .addr = tnet_addr(21), .incarnation = 1, .public_key = y.pk};
    assert_int_equal(rumor_node_restore(r, &m, now), 0);
    wire_kv_entry e[3] = {{wire_str_of("k1", 2), 1, 0, 0, wire_str_of("v1", 2)},
                          {wire_str_of("k2", 2), 2, 0, 0, wire_str_of("v2", 2)},
                          {wire_str_of("k2", 2), 3, KV_TOMBSTONE, 0, wire_str_of("", 0)}};
    rumor_kv_value v;
    pkt p;

    /* A KV push stream whose second entry a relay altered: the first applies, the rest waits. */
    signed_delta(pkt_begin(&p), &y, "y", WIRE_KVX_COMPLETE, 0, 2, 0, e, 2, 1);
    stream_deliver(r, &p, ++now);
    assert_int_equal(refused_kv(r), 1);
    assert_int_equal(rumor_node_kv_get(r, "y", "k1", 2, &v), 0);
    assert_int_equal(rumor_node_kv_get(r, "y", "k2", 2, &v), RUMOR_ERR_NOT_FOUND);
    const kv_origin *yo = kv_origin_find(&r->kv, "y", 1);
    assert_int_equal(yo->max_version, 1);

    /* A push-pull request whose delta claims a head the owner never signed (max 3 under the
     * signature of max 2): refused before anything moves. */
    buf_writer *w = pkt_begin(&p);
    wire_put_pushpull_begin(w, 0, wire_str_of("x", 1), 0, 0);
    wire_put_pushpull_end(w, 0);
    size_t at = w->len;
    signed_delta(w, &y, "y", WIRE_KVX_COMPLETE, 1, 2, 0, e + 1, 1, -1);
    /* After the type and the length varint: origin length, "y", flags, since, then max. */
    size_t lenv = (p.b[at + 1] & 0x80) ? 2 : 1;
    assert_int_equal(p.b[at + 1 + lenv + 4], 2);
    p.b[at + 1 + lenv + 4] = 3;
    stream_deliver(r, &p, ++now);
    assert_int_equal(refused_kv(r), 2);
    assert_int_equal(yo->max_version, 1);

    /* The genuine rest over a push-pull frame: k2 written and deleted. */
    w = pkt_begin(&p);
    wire_put_pushpull_begin(w, 0, wire_str_of("x", 1), 0, 0);
    wire_put_pushpull_end(w, 0);
    signed_delta(w, &y, "y", WIRE_KVX_COMPLETE, 1, 3, 0, e + 1, 2, -1);
    stream_deliver(r, &p, ++now);
    assert_int_equal(refused_kv(r), 2);
    assert_int_equal(yo->max_version, 3);
    assert_int_equal(yo->count, 2); /* k1, and k2's tombstone */

    /* Digests claiming y collected its tombstones (horizon 3), on a stream and a datagram:
     * not signed, so not learned; the tombstone stays. */
    w = pkt_begin(&p);
    wire_put_kv_digest_begin(w, WIRE_KVD_ALL, 1, wire_kv_digest_entry_size(S1("y"), 3, 3));
    wire_put_kv_digest_entry(w, S1("y"), 3, 3);
    wire_put_kv_digest_end(w, 0);
    stream_deliver(r, &p, ++now);
    w = pkt_begin(&p);
    wire_put_kv_digest_begin(w, WIRE_KVD_OFFER | WIRE_KVD_PUSH, 1,
                             wire_kv_digest_entry_size(S1("y"), 3, 3));
    wire_put_kv_digest_entry(w, S1("y"), 3, 3);
    wire_put_kv_digest_end(w, 0);
    rumor_addr via = tnet_addr(30);
    assert_int_equal(rumor_node_receive(r, &via, p.b, p.w.len, ++now), 0);
    assert_int_equal(yo->gc_version, 0);
    assert_int_equal(yo->count, 2);
    rumor_datagram d;
    while (rumor_node_poll_datagram(r, &d)) {
    }

    /* y's own signed head with horizon 3, in a delta without entries: learned. */
    signed_delta(pkt_begin(&p), &y, "y", WIRE_KVX_COMPLETE, 3, 3, 3, NULL, 0, -1);
    stream_deliver(r, &p, ++now);
    assert_int_equal(yo->gc_version, 3);
    assert_int_equal(yo->count, 1);
    assert_int_equal(rumor_node_kv_get(r, "y", "k1", 2, &v), 0);

    /* A replica that says it holds y up to 3 but not the horizon gets it from r: a delta with
     * no entries, carrying y's signed head. */
    w = pkt_begin(&p);
    wire_put_kv_digest_begin(w, WIRE_KVD_OFFER | WIRE_KVD_PUSH, 1,
                             wire_kv_digest_entry_size(S1("y"), 3, 0));
    wire_put_kv_digest_entry(w, S1("y"), 3, 0);
    wire_put_kv_digest_end(w, 0);
    assert_int_equal(rumor_node_receive(r, &via, p.b, p.w.len, ++now), 0);
    bool found = false;
    while (rumor_node_poll_datagram(r, &d)) {
        buf_reader rd;
        buf_reader_init(&rd, d.data, d.len);
        wire_header h;
        wire_msg msg;
        assert_int_equal(wire_header_decode(&rd, &h), 0);
        while (wire_msg_decode(&rd, &msg, RUMOR_META_MAX) == 1) {
            if (msg.type != WIRE_KV_DELTA)
                continue;
            found = true;
            assert_int_equal(msg.u.kv_delta.count, 0);
            assert_int_equal(msg.u.kv_delta.gc_version, 3);
            assert_non_null(wire_kv_delta_sigs(&msg));
        }
    }
    assert_true(found);
    rumor_node_del(r);
}

/*
 * A full-state answer carries, in this order: the Lamport clocks, the membership, the key-value
 * deltas the asker lacks and our complete key-value digest, then the recent user events the
 * asker's clocks show it missed (last, in the room the frame has left).
 */
static void test_full_state_layout(void **ctx)
{
    (void)ctx;
    uint64_t now = 100000;
    rumor_settings s;
    rumor_settings_default(&s, RUMOR_PROFILE_LOCAL);
    s.name = "r";
    s.addr = tnet_addr(1);
    s.seed = 10;
    rumor_node *r;
    assert_int_equal(rumor_node_new(&r, &s, now), 0);
    assert_int_equal(rumor_node_kv_put(r, "k", 1, "v", 1, now), 0);
    assert_int_equal(rumor_node_event(r, "deploy", "x", 1, now), 0);
    rumor_datagram d;
    while (rumor_node_poll_datagram(r, &d)) {
    }
    pkt p;
    buf_writer *w = pkt_begin(&p);
    wire_put_clocks(w, 0, 0, 0, 0);
    rumor_addr xa = tnet_addr(5);
    wire_member wm = {wire_str_of("x", 1), xa, 3, RUMOR_MEMBER_ALIVE, wire_str_of("", 0)};
    wire_put_pushpull_begin(w, 0, wire_str_of("x", 1), 1, wire_member_size(&wm));
    wire_put_member(w, &wm);
    wire_put_pushpull_end(w, 0);
    wire_put_kv_digest_begin(w, WIRE_KVD_ALL, 0, 0);
    wire_put_kv_digest_end(w, 0);
    static uint8_t f[4096];
    size_t len = p.w.len;
    f[0] = 0, f[1] = 0, f[2] = (uint8_t)(len >> 8), f[3] = (uint8_t)len;
    memcpy(f + 4, p.b, len);
    uint64_t id;
    assert_int_equal(rumor_node_stream_accept(r, &xa, &id, now), 0);
    assert_int_equal(rumor_node_stream_data(r, id, f, len + 4, now), 0);
    rumor_stream_op op;
    assert_true(rumor_node_poll_stream(r, &op));
    assert_int_equal(op.kind, RUMOR_STREAM_WRITE);
    buf_reader rd;
    buf_reader_init(&rd, op.data + 4, op.len - 4);
    wire_header h;
    wire_msg msg;
    assert_int_equal(wire_header_decode(&rd, &h), 0);
    static const uint8_t want[] = {WIRE_CLOCKS, WIRE_PUSHPULL, WIRE_KV_DELTA, WIRE_KV_DIGEST,
                                   WIRE_USER_EVENT};
    for (size_t i = 0; i < sizeof(want); i++) {
        assert_int_equal(wire_msg_decode(&rd, &msg, RUMOR_META_MAX), 1);
        assert_int_equal(msg.type, want[i]);
    }
    assert_int_equal(wire_msg_decode(&rd, &msg, RUMOR_META_MAX), 0);
    while (rumor_node_poll_stream(r, &op)) {
    }
    rumor_node_del(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_large_values_over_streams),
        cmocka_unit_test(test_value_limits),
        cmocka_unit_test(test_join_carries_kv_state),
        cmocka_unit_test(test_superseded_shared_entries_retire),
        cmocka_unit_test(test_retirement_waits_for_what_superseded_it),
        cmocka_unit_test(test_behind_horizon_waits_for_reset),
        cmocka_unit_test(test_sealed_streams_with_identities),
        cmocka_unit_test(test_stream_paths_verify_signatures),
        cmocka_unit_test(test_full_state_layout),
    };
    if (sodium_init() < 0) /* the host's job, not the engine's */
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
