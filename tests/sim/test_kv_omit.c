/*
 * A delete that one replica never sees must still reach it (docs/protocol.md sections 4.6 and
 * 12.4). A replica records an origin's keyspace as one high-water mark (max_version), and the
 * entries of a KV_DELTA skip the versions whose writes were superseded since, so a receiver
 * cannot tell a superseded version from one that was left out. These runs drop or strip exactly
 * the delete (a tombstone at version v) on its way to one victim while the write after it
 * (v + 1) gets through, then let anti-entropy run and require that every replica reads the key
 * deleted and that all replicas are identical:
 *  - honest losses: every datagram and stream write carrying the tombstone to the victim is
 *    lost for a while (the rumor, the answers to its asks, anti-entropy deltas), while v + 1 is
 *    rumor-mongered after it;
 *  - a relay that lost the tombstone itself: everything carrying it to the relay is lost;
 *  - a hostile relay, a member with an identity of its own, that forwards the origin's deltas to
 *    the victim with the tombstone entry (and its signature) removed, while the victim's other
 *    sources are cut off from it;
 * and, the other way round, that honest replicas under loss and bursts of overwrites are never
 * mistaken for ones a relay kept entries from.
 */
#include "helper_sim.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/node.h" /* reading a replica's versions: engine internals */
#include "core/wire.h"

#define ORIGIN 0u
#define RELAY  1u
#define VICTIM 2u
#define NODES  8u

typedef enum attack {
    LOSE_TO_VICTIM, /* every copy of the tombstone to the victim is lost */
    LOSE_TO_RELAY,  /* every copy of the tombstone to the relay is lost */
    STRIP,          /* the relay strips it from what it forwards; the rest is lost */
} attack;

typedef struct omit {
    attack how;
    bool active;
    uint64_t tomb; /* the tombstone's version */
    uint64_t lost, stripped;
} omit;

static void seed_of(uint32_t node, uint8_t seed[32])
{
    memset(seed, 0x6b, 32);
    memcpy(seed, &node, sizeof(node));
}

static void set_identity(rumor_settings *st, uint32_t node, void *ud)
{
    (void)ud;
    st->identity = true;
    seed_of(node, st->identity_seed);
}

static bool is_origin(wire_str s)
{
    return s.len == 6 && memcmp(s.p, "node-0", 6) == 0;
}

/* Whether a decoded KV_DELTA carries the origin's tombstone. */
static bool carries(const omit *h, const wire_msg *m)
{
    if (m->type != WIRE_KV_DELTA || !is_origin(m->u.kv_delta.origin))
        return false;
    buf_reader r = m->u.kv_delta.entries;
    wire_kv_entry e;
    for (uint32_t i = 0; i < m->u.kv_delta.count && wire_kv_entry_next(&r, &e); i++)
        if (e.version == h->tomb)
            return true;
    return false;
}

/* Whether a packet (a datagram, or a stream frame after its prefix) carries the tombstone. */
static bool packet_carries(const omit *h, const uint8_t *p, size_t len)
{
    buf_reader r;
    wire_header hd;
    wire_msg m;
    buf_reader_init(&r, p, len);
    if (wire_header_decode(&r, &hd) != 0)
        return false;
    while (wire_msg_decode(&r, &m, RUMOR_META_MAX) == 1)
        if (carries(h, &m))
            return true;
    return false;
}

/* Writes KV_DELTA `m` again without its entry at version `drop` (and that entry's signature):
 * what a relay that wants a replica to miss the entry sends. Flags, since and head stay. */
static void put_stripped(buf_writer *w, const wire_msg *m, uint64_t drop)
{
    const uint8_t *sigs = wire_kv_delta_sigs(m);
    wire_kv_entry e[64];
    uint32_t n = 0, skip = UINT32_MAX;
    size_t bytes = 0;
    buf_reader r = m->u.kv_delta.entries;
    for (uint32_t i = 0; i < m->u.kv_delta.count && i < 64 && wire_kv_entry_next(&r, &e[n]); i++) {
        if (e[n].version == drop) {
            skip = i;
            continue;
        }
        bytes += wire_kv_entry_size(&e[n]);
        n++;
    }
    if (sigs)
        bytes += wire_kv_sigs_size(n);
    wire_put_kv_delta_begin(w, m->u.kv_delta.origin, m->u.kv_delta.flags, m->u.kv_delta.since,
                            m->u.kv_delta.origin_max, m->u.kv_delta.gc_version, n, bytes);
    for (uint32_t i = 0; i < n; i++)
        wire_put_kv_entry(w, &e[i]);
    if (!sigs)
        return;
    buf_put_u8(w, WIRE_IDENT_V1);
    buf_put_bytes(w, sigs, WIRE_SIG_BYTES); /* the head */
    for (uint32_t i = 0; i < m->u.kv_delta.count; i++)
        if (i != skip)
            buf_put_bytes(w, sigs + WIRE_SIG_BYTES * (i + 1u), WIRE_SIG_BYTES);
}

/* Rewrites a datagram with the tombstone stripped from every delta of the origin; false when
 * it carried none. */
static bool strip(omit *h, uint8_t *p, size_t *len, size_t cap)
{
    static uint8_t out[RUMOR_PACKET_MAX * 2];
    buf_reader r;
    wire_header hd;
    wire_msg m;
    buf_reader_init(&r, p, *len);
    if (wire_header_decode(&r, &hd) != 0)
        return false;
    buf_writer w;
    buf_writer_init_fixed(&w, out, sizeof(out));
    buf_put_bytes(&w, p, r.off);
    bool any = false;
    for (;;) {
        size_t at = r.off;
        if (wire_msg_decode(&r, &m, RUMOR_META_MAX) != 1)
            break;
        if (carries(h, &m)) {
            put_stripped(&w, &m, h->tomb);
            any = true;
        } else {
            buf_put_bytes(&w, p + at, r.off - at);
        }
    }
    if (!any || w.failed || w.len > cap)
        return false;
    memcpy(p, out, w.len);
    *len = w.len;
    return true;
}

static void tamper(void *ud, uint32_t from, uint32_t to, bool on_stream, uint8_t *data, size_t *len,
                   size_t cap)
{
    omit *h = ud;
    if (!h->active)
        return;
    uint32_t target = h->how == LOSE_TO_RELAY ? RELAY : VICTIM;
    if (to != target)
        return;
    if (h->how == STRIP && from == RELAY && !on_stream && strip(h, data, len, cap)) {
        h->stripped++;
        return;
    }
    const uint8_t *p = on_stream ? data + WIRE_FRAME_PREFIX : data;
    size_t n = on_stream ? (*len > WIRE_FRAME_PREFIX ? *len - WIRE_FRAME_PREFIX : 0) : *len;
    if (n && packet_carries(h, p, n)) {
        *len = 0;
        h->lost++;
    }
}

static int put(rumor_sim *s, uint32_t i, const char *k, const char *v)
{
    int rc = rumor_node_kv_put(rumor_sim_node(s, i), k, strlen(k), v, strlen(v), rumor_sim_now(s));
    rumor_sim_poke(s, i);
    return rc;
}

static bool reads(const rumor_sim *s, uint32_t obs, const char *k)
{
    rumor_kv_value v;
    return rumor_node_kv_get(rumor_sim_node(s, obs), "node-0", k, strlen(k), &v) == 0;
}

static const kv_origin *replica(const rumor_sim *s, uint32_t obs)
{
    return kv_origin_find(&rumor_sim_node(s, obs)->kv, "node-0", 6);
}

/*
 * The origin writes `k`, everyone takes it; then, with the attack on, it deletes `k` (version v)
 * and writes `j` (v + 1), `gap_ms` later (past a gossip interval, the rumor of v + 1 no longer
 * carries v). After `attack_ms` the network is honest again and anti-entropy has `heal_ms`.
 */
static void run(attack how, bool identity, uint64_t seed, uint64_t gap_ms)
{
    omit h = {.how = how};
    rumor_sim_options o;
    rumor_sim_options_default(&o, RUMOR_PROFILE_LOCAL);
    o.seed = h_seed(seed);
    o.nodes = NODES;
    o.tamper = tamper;
    o.tamper_ud = &h;
    if (identity)
        o.settings_fn = set_identity;
    rumor_sim *s = h_sim_new_opts(&o);
    h_start_cluster(s, NODES, 0, 1000);
    h_run(s, 1000);
    h_check(s, h_run_until_converged(s, 60000) != UINT64_MAX, "no convergence");
    assert_int_equal(put(s, ORIGIN, "k", "doomed"), 0);
    assert_int_equal(put(s, ORIGIN, "keep", "1"), 0);
    h_run(s, 5000);
    for (uint32_t i = 0; i < NODES; i++)
        h_check(s, reads(s, i, "k"), "node-%u never got k", i);

    h.tomb = rumor_sim_node(s, ORIGIN)->kv_self->max_version + 1;
    h.active = true;
    assert_int_equal(rumor_node_kv_delete(rumor_sim_node(s, ORIGIN), "k", 1, rumor_sim_now(s)), 0);
    rumor_sim_poke(s, ORIGIN);
    h_run(s, gap_ms);
    assert_int_equal(put(s, ORIGIN, "j", "after"), 0);
    h_run(s, 4000);
    /* The hostile relay keeps at it until the victim took what it forwarded: v + 1 without v. */
    for (int i = 0; how == STRIP && i < 60 && replica(s, VICTIM)->max_version <= h.tomb; i++)
        h_run(s, 500);
    uint32_t target = how == LOSE_TO_RELAY ? RELAY : VICTIM;
    h_check(s, h.lost + h.stripped > 0, "the attack never touched a packet");
    h_check(s, reads(s, target, "k"), "node-%u got the delete during the attack", target);
    /* Honest losses leave a gap the replica knows of: it never records a version past the
     * tombstone without it (v + 1 is refused as a gap, and asked for). */
    h_check(s, how == STRIP || replica(s, target)->max_version < h.tomb,
            "node-%u holds version %" PRIu64 " without the tombstone %" PRIu64, target,
            replica(s, target)->max_version, h.tomb);
    if (how == STRIP)
        h_note("stripped %" PRIu64 ", lost %" PRIu64 "; victim at version %" PRIu64
               " (tombstone %" PRIu64 ")",
               h.stripped, h.lost, replica(s, VICTIM)->max_version, h.tomb);
    h_check(s, how != STRIP || replica(s, VICTIM)->max_version > h.tomb,
            "the victim never took the stripped delta");
    h.active = false;

    h_run(s, 40000); /* anti-entropy rounds every 500 ms, and a push-pull round (15 s) */
    const rumor_node *own = rumor_sim_node(s, ORIGIN);
    for (uint32_t i = 0; i < NODES; i++) {
        const kv_origin *r = replica(s, i);
        h_check(s, !reads(s, i, "k"),
                "node-%u still reads the deleted key (at version %" PRIu64 " of %" PRIu64
                ", tombstone %" PRIu64 ")",
                i, r->max_version, own->kv_self->max_version, h.tomb);
        h_check(s, reads(s, i, "j") && reads(s, i, "keep"), "node-%u lacks a live key", i);
        h_check(s,
                rumor_node_kv_digest(rumor_sim_node(s, i)) == rumor_node_kv_digest(own) &&
                    rumor_node_kv_count(rumor_sim_node(s, i)) == rumor_node_kv_count(own),
                "node-%u holds another replica than the origin", i);
        const kv_entry *t = kv_get(r, (const uint8_t *)"k", 1);
        h_check(s, t && (t->flags & KV_TOMBSTONE) && t->version == h.tomb,
                "node-%u does not hold the tombstone", i);
        /* A replica is taken again only when entries were kept from it: honest losses never
         * look like that (a replica never holds a version it did not receive). The victim
         * is; so may be a node that took the victim's copy before it was (the victim passes
         * on what it holds, gap and all). */
        rumor_stats st;
        rumor_node_stats(rumor_sim_node(s, i), &st);
        uint64_t again = st.ident_refused[RUMOR_IDENT_KV_WITHHELD];
        h_check(s, how == STRIP ? (i != VICTIM || again >= 1) : again == 0,
                "node-%u was taken again %" PRIu64 " times", i, again);
    }
    rumor_sim_del(s);
}

static void test_lost_to_victim(void **state)
{
    (void)state;
    run(LOSE_TO_VICTIM, false, 91, 300);
}

static void test_lost_to_victim_same_burst(void **state)
{
    (void)state;
    run(LOSE_TO_VICTIM, false, 92, 0); /* v + 1's rumor carries v too: every copy is lost */
}

static void test_lost_to_victim_identity(void **state)
{
    (void)state;
    run(LOSE_TO_VICTIM, true, 93, 300);
}

static void test_lost_to_relay(void **state)
{
    (void)state;
    run(LOSE_TO_RELAY, false, 94, 300);
}

static void test_stripped_by_relay(void **state)
{
    (void)state;
    run(STRIP, true, 95, 0);
}

/* No node was ever taken again, and every node holds node-0's replica of every keyspace. */
static void no_retake_and_identical(rumor_sim *s, uint32_t n)
{
    const rumor_node *ref = rumor_sim_node(s, 0);
    for (uint32_t i = 0; i < n; i++) {
        rumor_stats st;
        rumor_node_stats(rumor_sim_node(s, i), &st);
        h_check(s, st.ident_refused[RUMOR_IDENT_KV_WITHHELD] == 0,
                "node-%u was taken again %" PRIu64 " times", i,
                st.ident_refused[RUMOR_IDENT_KV_WITHHELD]);
        h_check(s,
                rumor_node_kv_digest(rumor_sim_node(s, i)) == rumor_node_kv_digest(ref) &&
                    rumor_node_kv_count(rumor_sim_node(s, i)) == rumor_node_kv_count(ref),
                "node-%u holds another replica than node-0", i);
    }
}

/* A cold-started cluster of `n` nodes in the local profile under datagram loss `loss`, with
 * `settings` applied to each node, run until every node sees every other. */
static rumor_sim *lossy_cluster(uint32_t n, uint64_t seed, double loss,
                                rumor_sim_settings_fn settings)
{
    rumor_sim_options o;
    rumor_sim_options_default(&o, RUMOR_PROFILE_LOCAL);
    o.seed = seed;
    o.nodes = n;
    o.loss = loss;
    o.settings_fn = settings;
    rumor_sim *s = h_sim_new_opts(&o);
    h_start_cluster(s, n, 0, 1000);
    h_run(s, 1000);
    h_check(s, h_run_until_converged(s, 60000) != UINT64_MAX, "no convergence");
    return s;
}

/*
 * No false alarm: with identities, 10 % loss and bursts of overwrites with values large enough
 * that deltas are cut short (so replicas pass through versions whose keys were written again
 * past the cut), honest replicas are never taken again, and all end identical.
 */
static void test_no_false_alarm(void **state)
{
    (void)state;
    const uint32_t n = 16, writers = 4;
    rumor_sim *s = lossy_cluster(n, h_seed(96), 0.1, set_identity);
    char key[16], val[300];
    for (int burst = 0; burst < 4; burst++) {
        for (int i = 0; i < 40; i++) {
            uint32_t w = (uint32_t)i % writers;
            snprintf(key, sizeof(key), "k%d", (i * 7 + burst) % 9);
            memset(val, 'a' + (i + burst) % 26, sizeof(val) - 1);
            val[sizeof(val) - 1] = '\0';
            if (i % 11 == 10) {
                (void)rumor_node_kv_delete(rumor_sim_node(s, w), key, strlen(key),
                                           rumor_sim_now(s));
                rumor_sim_poke(s, w);
            } else {
                assert_int_equal(put(s, w, key, val), 0);
            }
            h_run(s, 20);
        }
        h_run(s, 1500 + (uint64_t)burst * 1000);
    }
    h_run(s, 30000);
    const rumor_node *ref = rumor_sim_node(s, 0);
    uint64_t signed_ = 0, verified = 0;
    for (uint32_t i = 0; i < n; i++) {
        rumor_stats st;
        rumor_node_stats(rumor_sim_node(s, i), &st);
        signed_ += st.ident_signed;
        verified += st.ident_verified;
    }
    h_note("%zu keys at node-0, %" PRIu64 " signatures, %" PRIu64 " verifications, t=%" PRIu64,
           rumor_node_kv_count(ref), signed_, verified, rumor_sim_now(s));
    no_retake_and_identical(s, n);
    rumor_sim_del(s);
}

/* ---- honest churn: shared keys, collected deletes, restarted owners ---- */

typedef struct saved_entry {
    char key[16];
    uint8_t value[64];
    size_t value_len;
    uint64_t version, stamp;
    uint8_t flags;
} saved_entry;

typedef struct saved {
    saved_entry e[128];
    size_t n;
    uint64_t max, gc, clock;
} saved;

/* What a host that persists its own keyspace saves (rumor.h, restart from durable storage). */
static void save_own(const rumor_sim *s, uint32_t i, saved *out)
{
    const rumor_node *nd = rumor_sim_node(s, i);
    const kv_origin *o = nd->kv_self;
    out->n = 0;
    for (const kv_entry *e = o->head; e; e = e->next) {
        assert_true(out->n < 128 && e->key_len < 16 && e->value_len <= 64);
        saved_entry *se = &out->e[out->n++];
        memcpy(se->key, kv_key(e), e->key_len);
        se->key[e->key_len] = '\0';
        memcpy(se->value, kv_value(e), e->value_len);
        se->value_len = e->value_len;
        se->version = e->version;
        se->stamp = e->stamp;
        se->flags = e->flags;
    }
    out->max = o->max_version;
    out->gc = o->gc_version;
    out->clock = nd->clock.last;
}

static void restore_own(rumor_sim *s, uint32_t i, const saved *sv)
{
    rumor_node *nd = rumor_sim_node(s, i);
    uint64_t now = rumor_sim_now(s);
    for (size_t k = 0; k < sv->n; k++) {
        const saved_entry *se = &sv->e[k];
        rumor_kv_entry e = {NULL,
                            (const uint8_t *)se->key,
                            strlen(se->key),
                            se->value,
                            se->value_len,
                            se->version,
                            se->stamp,
                            (se->flags & KV_TOMBSTONE) ? now : 0,
                            (se->flags & KV_SHARED) != 0,
                            (se->flags & KV_TOMBSTONE) != 0,
                            se->flags};
        assert_int_equal(rumor_node_kv_restore(nd, &e, now), 0);
    }
    assert_int_equal(rumor_node_kv_restore_version(nd, sv->max, sv->gc, sv->clock, now), 0);
}

static void set_identity_churn(rumor_settings *st, uint32_t node, void *ud)
{
    set_identity(st, node, ud);
    st->kv_tombstone_ttl_ms = 2000; /* deletes are collected, and horizons move, within the run */
}

static void churn_writes(rumor_sim *s, uint32_t writers, int burst)
{
    char key[16], val[48];
    for (int i = 0; i < 24; i++) {
        uint32_t w = (uint32_t)(i + burst) % writers;
        rumor_node *nd = rumor_sim_node(s, w);
        uint64_t now = rumor_sim_now(s);
        snprintf(val, sizeof(val), "v%d-%d", burst, i);
        if (i % 3 == 0) { /* the shared keyspace: writers overwrite each other */
            snprintf(key, sizeof(key), "s%d", (i / 3 + burst) % 4);
            if (i % 9 == 0)
                (void)rumor_node_shared_delete(nd, key, strlen(key), now);
            else
                assert_int_equal(rumor_node_shared_put(nd, key, strlen(key), val, strlen(val), now),
                                 0);
        } else {
            snprintf(key, sizeof(key), "k%d", (i * 5 + burst) % 6);
            if (i % 4 == 1)
                (void)rumor_node_kv_delete(nd, key, strlen(key), now);
            else
                assert_int_equal(rumor_node_kv_put(nd, key, strlen(key), val, strlen(val), now), 0);
        }
        rumor_sim_poke(s, w);
        h_run(s, 30);
    }
}

/*
 * No false alarm among honest nodes in everything that removes or replaces entries: overwrites,
 * deletes collected at the horizon, shared keys superseded and retired, an owner restarted
 * empty (a new life) and one restored from an older copy of its own keyspace. No replica is
 * ever taken again, and all end identical.
 */
static void test_no_false_alarm_churn(void **state)
{
    (void)state;
    const uint32_t n = 12, writers = 4;
    rumor_sim *s = lossy_cluster(n, h_seed(97), 0.05, set_identity_churn);
    saved *old = calloc(1, sizeof(*old));
    assert_non_null(old);
    for (int burst = 0; burst < 10; burst++) {
        churn_writes(s, writers, burst);
        h_run(s, 1000 + (uint64_t)(burst % 3) * 1500);
        if (burst == 3)
            save_own(s, 3, old);
        if (burst == 6) { /* node 2 starts a new life empty, node 3 from its older copy */
            assert_int_equal(rumor_sim_node_crash(s, 2), 0);
            assert_int_equal(rumor_sim_node_crash(s, 3), 0);
            h_run(s, 2000);
            assert_int_equal(rumor_sim_node_reboot(s, 2, true), 0);
            assert_int_equal(rumor_sim_node_reboot(s, 3, true), 0);
            restore_own(s, 3, old);
            uint32_t seed_node = 0;
            assert_int_equal(rumor_sim_node_join(s, 2, &seed_node, 1), 0);
            assert_int_equal(rumor_sim_node_join(s, 3, &seed_node, 1), 0);
            h_run(s, 8000);
        }
    }
    h_run(s, 40000);
    const rumor_node *ref = rumor_sim_node(s, 0);
    no_retake_and_identical(s, n);
    const kv_origin *o3 = kv_origin_find(&ref->kv, "node-3", 6);
    h_note("%zu keys at node-0, node-3 at (%" PRIu64 ", %" PRIu64 "), t=%" PRIu64,
           rumor_node_kv_count(ref), o3 ? o3->max_version : 0, o3 ? o3->gc_version : 0,
           rumor_sim_now(s));
    free(old);
    rumor_sim_del(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lost_to_victim),
        cmocka_unit_test(test_lost_to_victim_same_burst),
        cmocka_unit_test(test_lost_to_victim_identity),
        cmocka_unit_test(test_lost_to_relay),
        cmocka_unit_test(test_stripped_by_relay),
        cmocka_unit_test(test_no_false_alarm),
        cmocka_unit_test(test_no_false_alarm_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
