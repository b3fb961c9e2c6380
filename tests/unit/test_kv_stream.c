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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_large_values_over_streams),
        cmocka_unit_test(test_value_limits),
        cmocka_unit_test(test_join_carries_kv_state),
        cmocka_unit_test(test_superseded_shared_entries_retire),
        cmocka_unit_test(test_retirement_waits_for_what_superseded_it),
        cmocka_unit_test(test_behind_horizon_waits_for_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
