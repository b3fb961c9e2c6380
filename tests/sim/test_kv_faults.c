/*
 * Replicated key-value state through faults (issue 4's simulation cases):
 *  - a delete made during a partition that outlives the tombstone collection horizon does not
 *    come back when the partition heals;
 *  - a node restarted from an old snapshot (its old keys restored at their old versions, before
 *    or after its delete was collected), or started fresh under the same name, does not bring
 *    its deleted keys back;
 *  - conflicting shared-keyspace writes from many nodes with skewed clocks converge to one winner
 *    everywhere, never show another once a replica has the final one, and retire down to one
 *    entry per key.
 */
#include "helper_sim.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/node.h" /* restoring a snapshot and reading retired entries: engine internals */

static uint64_t g_ttl_ms;
static int64_t g_skew_ms; /* node i's clock is off by (i * 37 % 2001 - 1000) * g_skew_ms / 1000 */

static void settings(rumor_settings *st, uint32_t node, void *ud)
{
    (void)ud;
    st->kv_tombstone_ttl_ms = (uint32_t)g_ttl_ms;
    st->kv_keys_max = 4096;
    int64_t skew = ((int64_t)(node * 37u % 2001u) - 1000) * g_skew_ms / 1000;
    st->wallclock_offset_ms = 1700000000000 + skew;
}

static rumor_sim *kv_sim(uint32_t n, uint64_t seed, double loss, rumor_profile profile)
{
    rumor_sim_options o;
    rumor_sim_options_default(&o, profile);
    o.seed = seed;
    o.nodes = n;
    o.loss = loss;
    o.settings_fn = settings;
    rumor_sim *s = h_sim_new_opts(&o);
    assert_int_equal(rumor_sim_warm_start(s), 0);
    return s;
}

static int put(rumor_sim *s, uint32_t i, const char *k, const char *v)
{
    int rc = rumor_node_kv_put(rumor_sim_node(s, i), k, strlen(k), v, strlen(v), rumor_sim_now(s));
    rumor_sim_poke(s, i);
    return rc;
}

static int del(rumor_sim *s, uint32_t i, const char *k)
{
    int rc = rumor_node_kv_delete(rumor_sim_node(s, i), k, strlen(k), rumor_sim_now(s));
    rumor_sim_poke(s, i);
    return rc;
}

/* Whether running node `obs` reads `origin`'s key `k` as live. */
static bool reads(const rumor_sim *s, uint32_t obs, uint32_t origin, const char *k)
{
    char name[32];
    snprintf(name, sizeof(name), "node-%u", origin);
    rumor_kv_value v;
    return rumor_node_kv_get(rumor_sim_node(s, obs), name, k, strlen(k), &v) == 0;
}

/* True when every running node holds the same replicas (count and whole-state digest). */
static bool identical(const rumor_sim *s)
{
    uint32_t n = rumor_sim_nodes(s), first = UINT32_MAX;
    for (uint32_t i = 0; i < n; i++) {
        if (!rumor_sim_node(s, i))
            continue;
        if (first == UINT32_MAX) {
            first = i;
            continue;
        }
        const rumor_node *a = rumor_sim_node(s, first), *b = rumor_sim_node(s, i);
        if (rumor_node_kv_count(a) != rumor_node_kv_count(b) ||
            rumor_node_kv_digest(a) != rumor_node_kv_digest(b))
            return false;
    }
    return true;
}

/* Before failing: which replicas differ from their owner's keyspace (at most 10 lines). */
static void dump_differences(const rumor_sim *s)
{
    int lines = 0;
    for (uint32_t i = 0; i < rumor_sim_nodes(s) && lines < 10; i++) {
        const rumor_node *n = rumor_sim_node(s, i);
        for (size_t k = 0; n && k < n->kv.norigins && lines < 10; k++) {
            const kv_origin *o = n->kv.origins[k];
            const rumor_node *own = rumor_sim_node(s, (uint32_t)strtoul(o->name + 5, NULL, 10));
            if (!own ||
                (o->max_version == own->kv_self->max_version &&
                 o->gc_version == own->kv_self->gc_version && o->count == own->kv_self->count))
                continue;
            fprintf(stderr,
                    "node-%u holds %s at max %" PRIu64 " gc %" PRIu64 " with %zu entries; the "
                    "owner at %" PRIu64 " %" PRIu64 " with %zu\n",
                    i, o->name, o->max_version, o->gc_version, o->count, own->kv_self->max_version,
                    own->kv_self->gc_version, own->kv_self->count);
            lines++;
        }
    }
}

/* The version at which `origin` deleted `k` (its tombstone), or 0. */
static uint64_t delete_version(const rumor_sim *s, uint32_t origin, const char *k)
{
    const kv_entry *e = kv_get(rumor_sim_node(s, origin)->kv_self, (const uint8_t *)k, strlen(k));
    return e && (e->flags & KV_TOMBSTONE) ? e->version : 0;
}

/* Whether node `i` holds `origin`'s keyspace at or past version `v`. */
static bool past(const rumor_sim *s, uint32_t i, uint32_t origin, uint64_t v)
{
    char name[32];
    snprintf(name, sizeof(name), "node-%u", origin);
    const kv_origin *o = kv_origin_find(&rumor_sim_node(s, i)->kv, name, strlen(name));
    return o && o->max_version >= v;
}

/* Runs in 1 s steps until identical() or `max_ms`. With `gone` (deleted by `origin` at version
 * `del`): fails the test if a node that holds `origin` at or past `del` reads the key (a node
 * that still held the old value, across a partition or from an old snapshot, must drop it once
 * it catches up, and never take it back), and at the end if any node reads it. Returns the
 * time it took. */
static uint64_t run_until_identical(rumor_sim *s, uint64_t max_ms, uint32_t origin,
                                    const char *gone, uint64_t del)
{
    uint64_t start = rumor_sim_now(s);
    for (;;) {
        h_run(s, 1000);
        bool all_clear = true;
        for (uint32_t i = 0; gone && i < rumor_sim_nodes(s); i++) {
            if (!rumor_sim_node(s, i))
                continue;
            bool r = reads(s, i, origin, gone);
            h_check(s, !(r && past(s, i, origin, del)),
                    "node-%u reads node-%u's deleted \"%s\" though it holds the delete", i, origin,
                    gone);
            all_clear = all_clear && !r;
        }
        if (all_clear && identical(s))
            return rumor_sim_now(s) - start;
        if (rumor_sim_now(s) - start >= max_ms)
            dump_differences(s);
        h_check(s, rumor_sim_now(s) - start < max_ms, "replicas not identical after %" PRIu64 " s",
                max_ms / 1000);
    }
}

/* ---- a delete during a partition, collected before the partition heals ---- */

static void test_partition_delete_outlives_horizon(void **state)
{
    (void)state;
    const uint32_t n = 60;
    g_ttl_ms = 20000;
    g_skew_ms = 0;
    uint64_t seed = h_seed(71);
    rumor_sim *s = kv_sim(n, seed, 0.01, RUMOR_PROFILE_LAN);
    h_run(s, 2000);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(put(s, i, "a", "1"), 0);
        assert_int_equal(put(s, i, "b", "2"), 0);
    }
    run_until_identical(s, 60000, 0, NULL, 0);
    /* Split in halves; node 5 (first half) deletes "a" and node 40 (second half) deletes "b",
     * each seen only by its own side. */
    uint16_t groups[60];
    for (uint32_t i = 0; i < n; i++)
        groups[i] = i < n / 2 ? 0 : 1;
    assert_int_equal(rumor_sim_partition(s, groups), 0);
    h_run(s, 1000);
    assert_int_equal(del(s, 5, "a"), 0);
    assert_int_equal(del(s, 40, "b"), 0);
    uint64_t del5 = delete_version(s, 5, "a");
    assert_int_equal(put(s, 6, "c", "side-1"), 0);
    assert_int_equal(put(s, 41, "c", "side-2"), 0);
    /* Long past the horizon: both owners collected their tombstones; the other side still
     * holds the old values. */
    h_run(s, 60000);
    const kv_origin *o5 = rumor_sim_node(s, 5)->kv_self, *o40 = rumor_sim_node(s, 40)->kv_self;
    h_check(s, o5->gc_version > 0 && !kv_get(o5, (const uint8_t *)"a", 1),
            "node-5 has not collected its tombstone");
    h_check(s, o40->gc_version > 0 && !kv_get(o40, (const uint8_t *)"b", 1),
            "node-40 has not collected its tombstone");
    h_check(s, reads(s, 45, 5, "a") && reads(s, 10, 40, "b"),
            "the far side should still hold the old values before the heal");
    rumor_sim_heal(s);
    /* Fresh writes by the deleters right after the heal: their rumors reach the far side
     * before any anti-entropy round, and must not let it skip the reset its stale copy needs. */
    h_run(s, 100);
    assert_int_equal(put(s, 5, "after", "x"), 0);
    assert_int_equal(put(s, 40, "after", "y"), 0);
    uint64_t took = run_until_identical(s, 240000, 5, "a", del5);
    for (uint32_t i = 0; i < n; i++) {
        h_check(s, !reads(s, i, 40, "b"), "node-%u reads node-40's deleted \"b\"", i);
        h_check(s, reads(s, i, 6, "c") && reads(s, i, 41, "c"), "node-%u lacks a side's write", i);
    }
    /* Membership heals too (reconnects to the failed), and stays healed: nothing above holds
     * once the key-value state has settled while members were still marked failed. */
    uint64_t t0 = rumor_sim_now(s);
    while (!h_all_alive(s)) {
        h_check(s, rumor_sim_now(s) - t0 < 120000, "not everyone alive everywhere after 120 s");
        h_run(s, 1000);
    }
    run_until_identical(s, 60000, 5, "a", del5);
    h_note("seed %" PRIu64 ": deletes collected during a 61 s partition stayed deleted; replicas "
           "identical %.0f s after the heal",
           seed, (double)took / 1000.0);
    rumor_sim_del(s);
}

/* ---- restarts from an old snapshot ---- */

typedef struct snap_entry {
    char key[16];
    char value[16];
    uint64_t version;
} snap_entry;

typedef struct snapshot {
    snap_entry e[8];
    size_t n;
} snapshot;

static void take_snapshot(rumor_sim *s, uint32_t i, snapshot *out)
{
    const kv_origin *o = rumor_sim_node(s, i)->kv_self;
    out->n = 0;
    for (const kv_entry *e = o->head; e && out->n < 8; e = e->next) {
        if (e->flags & KV_TOMBSTONE)
            continue;
        snap_entry *se = &out->e[out->n++];
        snprintf(se->key, sizeof(se->key), "%.*s", (int)e->key_len, (const char *)kv_key(e));
        snprintf(se->value, sizeof(se->value), "%.*s", (int)e->value_len,
                 (const char *)kv_value(e));
        se->version = e->version;
    }
}

/* What a host restoring its store does: the node's own keys back at their old versions (the
 * engine API for it is another part of issue 4; the store call underneath is the same). */
static void restore_snapshot(rumor_sim *s, uint32_t i, const snapshot *sn)
{
    rumor_node *n = rumor_sim_node(s, i);
    for (size_t k = 0; k < sn->n; k++) {
        const snap_entry *se = &sn->e[k];
        kv_delta d = {(const uint8_t *)se->key,
                      strlen(se->key),
                      (const uint8_t *)se->value,
                      strlen(se->value),
                      se->version,
                      0,
                      0,
                      NULL};
        assert_int_equal(kv_apply(&n->kv, n->kv_self, &d, rumor_sim_now(s)), 1);
    }
}

/* Crashes `victim`, restarts it with a newer incarnation from `sn` (or empty when NULL) and
 * joins it through node 0. */
static void restart_from(rumor_sim *s, uint32_t victim, const snapshot *sn)
{
    assert_int_equal(rumor_sim_node_crash(s, victim), 0);
    h_run(s, 3000);
    assert_int_equal(rumor_sim_node_reboot(s, victim, true), 0);
    if (sn)
        restore_snapshot(s, victim, sn);
    uint32_t seed_node = 0;
    assert_int_equal(rumor_sim_node_join(s, victim, &seed_node, 1), 0);
}

static void check_restarted(rumor_sim *s, uint32_t victim)
{
    uint64_t took = run_until_identical(s, 120000, victim, "a", 4);
    for (uint32_t i = 0; i < rumor_sim_nodes(s); i++) {
        h_check(s, reads(s, i, victim, "b") && reads(s, i, victim, "d"),
                "node-%u lacks node-%u's live keys", i, victim);
    }
    /* The restarted owner continues its own version sequence: its next write reaches all. */
    rumor_kv_value v;
    assert_int_equal(rumor_node_kv_get(rumor_sim_node(s, victim), NULL, "d", 1, &v), 0);
    assert_int_equal(put(s, victim, "e", "5"), 0);
    assert_int_equal(rumor_node_kv_get(rumor_sim_node(s, victim), NULL, "e", 1, &v), 0);
    h_check(s, v.version > 5, "node-%u reused version %" PRIu64, victim, v.version);
    run_until_identical(s, 60000, victim, "a", 4);
    for (uint32_t i = 0; i < rumor_sim_nodes(s); i++)
        h_check(s, reads(s, i, victim, "e"), "node-%u lacks node-%u's new write", i, victim);
    h_note("node-%u restarted: replicas identical %.0f s later, its deleted key stayed deleted",
           victim, (double)took / 1000.0);
}

/* Node `v` writes a, b, c (snapshot taken), then deletes a and writes d. */
static void write_history(rumor_sim *s, uint32_t v, snapshot *sn)
{
    assert_int_equal(put(s, v, "a", "1"), 0);
    assert_int_equal(put(s, v, "b", "2"), 0);
    assert_int_equal(put(s, v, "c", "3"), 0);
    take_snapshot(s, v, sn);
    assert_int_equal(sn->n, 3);
    assert_int_equal(del(s, v, "a"), 0);
    assert_int_equal(put(s, v, "d", "4"), 0);
}

static void test_restart_from_old_snapshot(void **state)
{
    (void)state;
    const uint32_t n = 40;
    g_ttl_ms = 15000;
    g_skew_ms = 0;
    uint64_t seed = h_seed(72);
    rumor_sim *s = kv_sim(n, seed, 0.02, RUMOR_PROFILE_LAN);
    h_run(s, 2000);
    snapshot s7, s8, s9;
    write_history(s, 7, &s7);
    write_history(s, 8, &s8);
    write_history(s, 9, &s9);
    run_until_identical(s, 60000, 7, "a", 4);
    /* Within the horizon: the tombstone still exists; the restored owner adopts it. */
    restart_from(s, 7, &s7);
    check_restarted(s, 7);
    /* Past the horizon: node 8 collected its tombstone before the crash, so the cluster holds
     * node 8's keyspace with a horizon above the snapshot's versions: the restored owner must
     * drop its old copy and take the cluster's. */
    h_run(s, 30000);
    h_check(s, rumor_sim_node(s, 8)->kv_self->gc_version >= 4, "node-8 did not collect");
    restart_from(s, 8, &s8);
    check_restarted(s, 8);
    /* A fresh node under the same name, with nothing restored. */
    restart_from(s, 9, NULL);
    check_restarted(s, 9);
    rumor_sim_del(s);
}

/* ---- conflicting shared-keyspace writes at scale ---- */

typedef struct winner {
    char writer[32];
    uint64_t stamp;
} winner;

/* Node i's view of shared key `k`: false when absent. */
static bool view(const rumor_sim *s, uint32_t i, const char *k, winner *w)
{
    rumor_kv_value v;
    if (rumor_node_shared_get(rumor_sim_node(s, i), k, strlen(k), &v) != 0)
        return false;
    snprintf(w->writer, sizeof(w->writer), "%s", v.writer);
    w->stamp = v.stamp;
    return true;
}

static bool same_winner(const winner *a, const winner *b)
{
    return a->stamp == b->stamp && strcmp(a->writer, b->writer) == 0;
}

/* Shared entries (any origin, live, deleted or retired) that node i holds for key `k`. */
static uint32_t shared_entries(const rumor_sim *s, uint32_t i, const char *k)
{
    const rumor_node *n = rumor_sim_node(s, i);
    uint32_t c = 0;
    for (size_t o = 0; o < n->kv.norigins; o++)
        c += kv_get_shared(n->kv.origins[o], (const uint8_t *)k, strlen(k)) != NULL;
    return c;
}

#define SHARED_KEYS 8

/* Runs until every node shows the same winner for every key; then checks that no node ever
 * shows another one while the writers retire their superseded entries and the tombstones are
 * collected, down to one entry per key everywhere. */
static void converge_and_retire(rumor_sim *s, const char *what)
{
    uint32_t n = rumor_sim_nodes(s);
    winner final[SHARED_KEYS];
    char key[16];
    uint64_t start = rumor_sim_now(s);
    bool agreed = false;
    while (!agreed) {
        h_run(s, 1000);
        agreed = true;
        for (uint32_t k = 0; k < SHARED_KEYS && agreed; k++) {
            snprintf(key, sizeof(key), "cfg-%u", k);
            agreed = view(s, 0, key, &final[k]);
            for (uint32_t i = 1; i < n && agreed; i++) {
                winner w;
                agreed = view(s, i, key, &w) && same_winner(&w, &final[k]);
            }
        }
        h_check(s, agreed || rumor_sim_now(s) - start < 120000,
                "%s: no single winner everywhere after 120 s", what);
    }
    uint64_t took = rumor_sim_now(s) - start;
    /* Retirement and collection: the winner never changes on any node meanwhile. */
    bool one = false;
    while (!one) {
        h_run(s, 1000);
        one = true;
        for (uint32_t k = 0; k < SHARED_KEYS; k++) {
            snprintf(key, sizeof(key), "cfg-%u", k);
            for (uint32_t i = 0; i < n; i++) {
                winner w;
                h_check(s, view(s, i, key, &w) && same_winner(&w, &final[k]),
                        "%s: node-%u changed the winner of %s while retiring", what, i, key);
                one = one && shared_entries(s, i, key) == 1;
            }
        }
        h_check(s, one || rumor_sim_now(s) - start < 240000,
                "%s: superseded entries not retired and collected after 240 s", what);
    }
    h_note("%s: one winner everywhere after %.0f s, one entry per key after %.0f s", what,
           (double)took / 1000.0, (double)(rumor_sim_now(s) - start) / 1000.0);
}

static void test_shared_conflicts_at_scale(void **state)
{
    (void)state;
    const uint32_t n = 300;
    g_ttl_ms = 20000;
    g_skew_ms = 2000; /* clocks spread over +-2 s */
    uint64_t seed = h_seed(73);
    rumor_sim *s = kv_sim(n, seed, 0.05, RUMOR_PROFILE_LAN);
    h_run(s, 2000);
    /* Every node writes every key within the same second: a storm of concurrent conflicts. */
    char key[16], val[32];
    for (uint32_t k = 0; k < SHARED_KEYS; k++) {
        snprintf(key, sizeof(key), "cfg-%u", k);
        for (uint32_t i = 0; i < n; i++) {
            snprintf(val, sizeof(val), "v%u.%u", i, k);
            assert_int_equal(rumor_node_shared_put(rumor_sim_node(s, i), key, strlen(key), val,
                                                   strlen(val), rumor_sim_now(s)),
                             0);
            rumor_sim_poke(s, i);
        }
        h_run(s, 100);
    }
    converge_and_retire(s, "300 writers x 8 keys");
    /* A second wave from a tenth of the nodes, after having seen the first: causally later
     * writes win even from clocks that run behind. */
    for (uint32_t i = 0; i < n; i += 10) {
        snprintf(val, sizeof(val), "second-%u", i);
        assert_int_equal(rumor_node_shared_put(rumor_sim_node(s, i), "cfg-0", 5, val, strlen(val),
                                               rumor_sim_now(s)),
                         0);
        rumor_sim_poke(s, i);
    }
    converge_and_retire(s, "30 rewriters of one key");
    winner w;
    assert_true(view(s, 0, "cfg-0", &w));
    rumor_kv_value v;
    assert_int_equal(rumor_node_shared_get(rumor_sim_node(s, 0), "cfg-0", 5, &v), 0);
    h_check(s, v.len > 7 && memcmp(v.value, "second-", 7) == 0,
            "a first-wave write beat every causally later one");
    rumor_sim_metrics m;
    rumor_sim_metrics_get(s, &m);
    h_check(s, m.false_positives == 0, "%" PRIu64 " false failures", m.false_positives);
    rumor_sim_del(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partition_delete_outlives_horizon),
        cmocka_unit_test(test_restart_from_old_snapshot),
        cmocka_unit_test(test_shared_conflicts_at_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
