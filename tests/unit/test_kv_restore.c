/* The key-value API for hosts that list and persist state: walks in version order with
 * filters, lookups of deletes and shared writes, gauges, and a restart restored from a saved
 * copy (versions, deletes and clock carry on; peers neither revert nor resend old state; an
 * older copy is completed by owner adoption). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "helper_net.h"

static rumor_node *solo(const char *name, uint64_t now)
{
    rumor_settings s;
    rumor_settings_default(&s, RUMOR_PROFILE_LOCAL);
    s.name = name;
    s.addr = tnet_addr(0);
    s.wallclock_offset_ms = 1700000000000;
    rumor_node *n;
    assert_int_equal(rumor_node_new(&n, &s, now), 0);
    return n;
}

static int sput(rumor_node *n, const char *k, const char *v, uint64_t now)
{
    return rumor_node_kv_put(n, k, strlen(k), v, strlen(v), now);
}

/* ---- a saved copy, as a host keeps it ---- */

typedef struct saved_entry {
    char key[RUMOR_KEY_MAX];
    size_t key_len;
    char value[600];
    size_t value_len;
    uint64_t version, stamp, deleted_at;
    bool shared, deleted;
    uint32_t flags;
} saved_entry;

typedef struct saved {
    saved_entry e[64];
    size_t n;
    uint64_t max_version, gc_version, clock;
} saved;

static int save_one(const rumor_kv_entry *e, void *ud)
{
    saved *s = ud;
    assert_true(s->n < 64);
    saved_entry *x = &s->e[s->n++];
    memcpy(x->key, e->key, e->key_len);
    x->key_len = e->key_len;
    if (e->value_len)
        memcpy(x->value, e->value, e->value_len);
    x->value_len = e->value_len;
    x->version = e->version;
    x->stamp = e->stamp;
    x->deleted_at = e->deleted_at;
    x->shared = e->shared;
    x->deleted = e->deleted;
    x->flags = e->flags;
    assert_int_equal((e->flags & 0x2) != 0, e->shared);
    assert_int_equal((e->flags & 0x1) != 0, e->deleted);
    return 0;
}

static void save(rumor_node *n, saved *s)
{
    memset(s, 0, sizeof(*s));
    rumor_kv_filter f = {NULL, 0, 0, RUMOR_KV_OWN | RUMOR_KV_SHARED | RUMOR_KV_DELETED};
    assert_int_equal(rumor_node_kv_foreach(n, NULL, &f, save_one, s), 0);
    rumor_kv_origin_info info;
    assert_int_equal(rumor_node_kv_origin_info(n, NULL, &info), 0);
    rumor_kv_stats st;
    rumor_node_kv_stats(n, &st);
    s->max_version = info.max_version;
    s->gc_version = info.gc_version;
    s->clock = st.clock;
}

static void restore(rumor_node *n, const saved *s, uint64_t now)
{
    for (size_t i = 0; i < s->n; i++) {
        const saved_entry *x = &s->e[i];
        rumor_kv_entry e = {.key = (const uint8_t *)x->key,
                            .key_len = x->key_len,
                            .value = (const uint8_t *)x->value,
                            .value_len = x->value_len,
                            .version = x->version,
                            .stamp = x->stamp,
                            .deleted_at = x->deleted_at,
                            .shared = x->shared,
                            .deleted = x->deleted,
                            .flags = x->flags};
        assert_int_equal(rumor_node_kv_restore(n, &e, now), 0);
    }
    assert_int_equal(rumor_node_kv_restore_version(n, s->max_version, s->gc_version, s->clock, now),
                     0);
}

/* ---- walks ---- */

typedef struct seen {
    char keys[16][32];
    uint64_t versions[16];
    bool shared[16], deleted[16];
    int n, stop_at;
} seen;

static int collect(const rumor_kv_entry *e, void *ud)
{
    seen *s = ud;
    assert_true(s->n < 16);
    assert_non_null(e->origin);
    memcpy(s->keys[s->n], e->key, e->key_len);
    s->keys[s->n][e->key_len] = 0;
    s->versions[s->n] = e->version;
    s->shared[s->n] = e->shared;
    s->deleted[s->n] = e->deleted;
    s->n++;
    return s->n == s->stop_at ? 7 : 0;
}

static void test_foreach_filters_and_order(void **ctx)
{
    (void)ctx;
    rumor_node *n = solo("solo", 0);
    assert_int_equal(sput(n, "app/a", "1", 1), 0);                        /* v1 */
    assert_int_equal(sput(n, "app/b", "2", 2), 0);                        /* v2 */
    assert_int_equal(sput(n, "other", "3", 3), 0);                        /* v3 */
    assert_int_equal(sput(n, "app/a", "4", 4), 0);                        /* v4 */
    assert_int_equal(rumor_node_kv_delete(n, "app/b", 5, 5), 0);          /* v5 */
    assert_int_equal(rumor_node_shared_put(n, "app/s", 5, "x", 1, 6), 0); /* v6 */
    assert_int_equal(rumor_node_shared_put(n, "zz", 2, "y", 1, 7), 0);    /* v7 */
    assert_int_equal(rumor_node_shared_delete(n, "zz", 2, 8), 0);         /* v8 */

    /* Default: live own keys, ascending version (a rewritten key at its newest version). */
    seen s = {0};
    assert_int_equal(rumor_node_kv_foreach(n, NULL, NULL, collect, &s), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.keys[0], "other");
    assert_int_equal(s.versions[0], 3);
    assert_string_equal(s.keys[1], "app/a");
    assert_int_equal(s.versions[1], 4);

    /* A prefix, deletes and shared writes included. */
    memset(&s, 0, sizeof(s));
    rumor_kv_filter f = {"app/", 4, 0, RUMOR_KV_OWN | RUMOR_KV_SHARED | RUMOR_KV_DELETED};
    assert_int_equal(rumor_node_kv_foreach(n, "solo", &f, collect, &s), 0);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.keys[0], "app/a");
    assert_string_equal(s.keys[1], "app/b");
    assert_true(s.deleted[1] && !s.deleted[0]);
    assert_string_equal(s.keys[2], "app/s");
    assert_true(s.shared[2]);

    /* Resuming after a version sees only later changes. */
    memset(&s, 0, sizeof(s));
    rumor_kv_filter since = {NULL, 0, 5, RUMOR_KV_OWN | RUMOR_KV_SHARED | RUMOR_KV_DELETED};
    assert_int_equal(rumor_node_kv_foreach(n, NULL, &since, collect, &s), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.versions[0], 6);
    assert_int_equal(s.versions[1], 8);
    assert_true(s.deleted[1] && s.shared[1]);

    /* The callback stops the walk and its value comes back. */
    memset(&s, 0, sizeof(s));
    s.stop_at = 1;
    assert_int_equal(rumor_node_kv_foreach(n, NULL, &f, collect, &s), 7);
    assert_int_equal(s.n, 1);

    /* Errors. */
    char big[RUMOR_KEY_MAX + 1];
    memset(big, 'k', sizeof(big));
    rumor_kv_filter bad = {big, sizeof(big), 0, 0};
    assert_int_equal(rumor_node_kv_foreach(n, NULL, &bad, collect, &s), RUMOR_ERR_INVALID);
    assert_int_equal(rumor_node_kv_foreach(n, "nobody", NULL, collect, &s), RUMOR_ERR_NOT_FOUND);

    /* The shared keyspace: winners only, deletes on request. */
    memset(&s, 0, sizeof(s));
    assert_int_equal(rumor_node_shared_foreach(n, NULL, collect, &s), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.keys[0], "app/s");
    memset(&s, 0, sizeof(s));
    rumor_kv_filter del = {NULL, 0, 0, RUMOR_KV_DELETED};
    assert_int_equal(rumor_node_shared_foreach(n, &del, collect, &s), 0);
    assert_int_equal(s.n, 2);
    memset(&s, 0, sizeof(s));
    rumor_kv_filter zz = {"z", 1, 0, RUMOR_KV_DELETED};
    assert_int_equal(rumor_node_shared_foreach(n, &zz, collect, &s), 0);
    assert_int_equal(s.n, 1);
    assert_true(s.deleted[0] && s.shared[0]);

    /* Lookups see deletes; shared and own keys are separate. */
    rumor_kv_entry e;
    assert_int_equal(rumor_node_kv_lookup(n, NULL, "app/b", 5, false, &e), 0);
    assert_true(e.deleted);
    assert_int_equal(e.version, 5);
    assert_int_equal(e.deleted_at, 5);
    assert_int_equal(rumor_node_kv_lookup(n, NULL, "app/s", 5, true, &e), 0);
    assert_true(e.shared && !e.deleted);
    assert_true(e.stamp > 0);
    assert_int_equal(e.value_len, 1);
    assert_memory_equal(e.value, "x", 1);
    assert_int_equal(rumor_node_kv_lookup(n, NULL, "app/s", 5, false, &e), RUMOR_ERR_NOT_FOUND);
    assert_int_equal(rumor_node_kv_lookup(n, NULL, "", 0, false, &e), RUMOR_ERR_INVALID);
    assert_int_equal(rumor_node_kv_lookup(n, "nobody", "x", 1, false, &e), RUMOR_ERR_NOT_FOUND);

    /* Gauges. */
    rumor_kv_origin_info info;
    assert_int_equal(rumor_node_kv_origin_info(n, NULL, &info), 0);
    assert_int_equal(info.max_version, 8);
    assert_int_equal(info.keys, 3);    /* other, app/a, app/s */
    assert_int_equal(info.entries, 5); /* and the deletes of app/b and zz */
    assert_int_equal(info.bytes, 5 + 1 + 5 + 1 + 5 + 5 + 1 + 2);
    rumor_kv_stats st;
    rumor_node_kv_stats(n, &st);
    assert_int_equal(st.origins, 1);
    assert_int_equal(st.keys, 3);
    assert_int_equal(st.entries, 5);
    assert_int_equal(st.bytes, info.bytes);
    assert_int_equal(st.shared_keys, 1);
    assert_true(st.clock >= e.stamp);
    assert_int_equal(rumor_node_kv_origin_info(n, "nobody", &info), RUMOR_ERR_NOT_FOUND);
    rumor_node_del(n);
}

/* ---- restore on one node ---- */

static void test_restore_solo(void **ctx)
{
    (void)ctx;
    rumor_node *n = solo("solo", 0);
    assert_int_equal(sput(n, "a", "1", 10), 0);
    assert_int_equal(sput(n, "b", "2", 20), 0);
    assert_int_equal(rumor_node_kv_delete(n, "a", 1, 30), 0);
    assert_int_equal(rumor_node_shared_put(n, "s", 1, "S", 1, 40), 0);
    assert_int_equal(sput(n, "c", "3", 50), 0);
    assert_int_equal(rumor_node_kv_delete(n, "c", 1, 60), 0);
    saved *sv = calloc(1, sizeof(*sv));
    save(n, sv);
    assert_int_equal(sv->max_version, 6);
    assert_int_equal(sv->n, 4); /* b, the delete of a, s, the delete of c */
    rumor_kv_entry s_before;
    assert_int_equal(rumor_node_kv_lookup(n, NULL, "s", 1, true, &s_before), 0);
    uint64_t stamp_before = s_before.stamp;
    rumor_node_del(n);

    /* The restarted node's wall clock is an hour behind: its stamps must still follow. */
    rumor_settings s;
    rumor_settings_default(&s, RUMOR_PROFILE_LOCAL);
    s.name = "solo";
    s.addr = tnet_addr(0);
    s.wallclock_offset_ms = 1700000000000 - 3600000;
    s.incarnation = 1;
    assert_int_equal(rumor_node_new(&n, &s, 100), 0);
    rumor_event ev;
    while (rumor_node_poll_event(n, &ev))
        ;
    restore(n, sv, 100);
    while (rumor_node_poll_event(n, &ev))
        assert_int_not_equal(ev.type, RUMOR_EVENT_KV_CHANGE); /* a restore is not news */
    rumor_datagram d;
    assert_false(rumor_node_poll_datagram(n, &d));

    rumor_kv_value v;
    assert_int_equal(rumor_node_kv_get(n, NULL, "b", 1, &v), 0);
    assert_int_equal(v.version, 2);
    assert_memory_equal(v.value, "2", 1);
    assert_int_equal(rumor_node_kv_get(n, NULL, "a", 1, &v), RUMOR_ERR_NOT_FOUND);
    assert_int_equal(rumor_node_kv_get(n, NULL, "c", 1, &v), RUMOR_ERR_NOT_FOUND);
    assert_int_equal(rumor_node_shared_get(n, "s", 1, &v), 0);
    assert_int_equal(v.stamp, stamp_before);
    assert_string_equal(v.writer, "solo");
    rumor_kv_entry e;
    assert_int_equal(rumor_node_kv_lookup(n, NULL, "a", 1, false, &e), 0);
    assert_true(e.deleted);
    assert_int_equal(e.deleted_at, 30); /* from the saved copy, not the restart */

    /* Versions carry on; a delete of a deleted key is still refused. */
    assert_int_equal(rumor_node_kv_delete(n, "a", 1, 110), RUMOR_ERR_NOT_FOUND);
    assert_int_equal(sput(n, "d", "4", 110), 0);
    assert_int_equal(rumor_node_kv_get(n, NULL, "d", 1, &v), 0);
    assert_int_equal(v.version, 7);
    assert_int_equal(rumor_node_shared_put(n, "s", 1, "T", 1, 120), 0);
    assert_int_equal(rumor_node_shared_get(n, "s", 1, &v), 0);
    assert_true(v.stamp > stamp_before);
    assert_int_equal(v.version, 8);

    /* Misuse changes nothing. */
    rumor_kv_entry late = {
        NULL, (const uint8_t *)"x", 1, (const uint8_t *)"v", 1, 3, 0, 0, false, false, 0};
    assert_int_equal(rumor_node_kv_restore(n, &late, 130), RUMOR_ERR_STATE); /* not above 8 */
    late.version = 20;
    late.origin = "someone-else";
    assert_int_equal(rumor_node_kv_restore(n, &late, 130), RUMOR_ERR_INVALID);
    late.origin = NULL;
    late.deleted = true; /* a delete with a value */
    assert_int_equal(rumor_node_kv_restore(n, &late, 130), RUMOR_ERR_INVALID);
    late.deleted = false;
    late.flags = 0x80; /* a flag this node does not know */
    assert_int_equal(rumor_node_kv_restore(n, &late, 130), RUMOR_ERR_INVALID);
    late.flags = 0x2; /* says shared, the boolean says not */
    assert_int_equal(rumor_node_kv_restore(n, &late, 130), RUMOR_ERR_INVALID);
    late.flags = 0;
    late.key_len = 0;
    assert_int_equal(rumor_node_kv_restore(n, &late, 130), RUMOR_ERR_INVALID);
    assert_int_equal(rumor_node_kv_restore_version(n, 5, 6, 0, 130), RUMOR_ERR_INVALID);
    assert_int_equal(rumor_node_kv_restore_version(n, 5, 0, 0, 130), 0); /* never lowers */
    rumor_kv_origin_info info;
    assert_int_equal(rumor_node_kv_origin_info(n, NULL, &info), 0);
    assert_int_equal(info.max_version, 8);
    assert_int_equal(rumor_node_kv_get(n, NULL, "x", 1, &v), RUMOR_ERR_NOT_FOUND);
    free(sv);
    rumor_node_del(n);
}

static void test_restore_respects_limits_and_collection(void **ctx)
{
    (void)ctx;
    rumor_node *n = solo("solo", 0);
    assert_int_equal(sput(n, "a", "1", 10), 0);
    assert_int_equal(sput(n, "b", "2", 20), 0);
    assert_int_equal(rumor_node_kv_delete(n, "a", 1, 30), 0);
    saved *sv = calloc(1, sizeof(*sv));
    save(n, sv);
    rumor_node_del(n);

    /* Lower limits now: the entry that does not fit is refused and nothing changes. */
    rumor_settings s;
    rumor_settings_default(&s, RUMOR_PROFILE_LOCAL);
    s.name = "solo";
    s.addr = tnet_addr(0);
    s.kv_keys_max = 1;
    s.kv_tombstone_ttl_ms = 1000;
    assert_int_equal(rumor_node_new(&n, &s, 5000), 0);
    rumor_kv_entry b = {
        NULL, (const uint8_t *)"b", 1, (const uint8_t *)"2", 1, 2, 0, 0, false, false, 0};
    rumor_kv_entry c = {
        NULL, (const uint8_t *)"c", 1, (const uint8_t *)"3", 1, 4, 0, 0, false, false, 0};
    assert_int_equal(rumor_node_kv_restore(n, &b, 5000), 0);
    assert_int_equal(rumor_node_kv_restore(n, &c, 5000), RUMOR_ERR_TOO_BIG);
    rumor_kv_value v;
    assert_int_equal(rumor_node_kv_get(n, NULL, "c", 1, &v), RUMOR_ERR_NOT_FOUND);
    /* The delete of a (v3), made at 30, is long past its 1 s ttl: the node collects it. */
    rumor_kv_entry a = {NULL, (const uint8_t *)"a", 1, NULL, 0, 3, 0, 30, false, true, 0};
    assert_int_equal(rumor_node_kv_restore(n, &a, 5000), 0);
    assert_int_equal(rumor_node_kv_restore_version(n, 3, 0, 0, 5000), 0);
    rumor_kv_entry e;
    assert_int_equal(rumor_node_kv_lookup(n, NULL, "a", 1, false, &e), 0);
    for (uint64_t t = 5000; t < 9000; t += 100)
        rumor_node_tick(n, t);
    assert_int_equal(rumor_node_kv_lookup(n, NULL, "a", 1, false, &e), RUMOR_ERR_NOT_FOUND);
    rumor_kv_origin_info info;
    assert_int_equal(rumor_node_kv_origin_info(n, NULL, &info), 0);
    assert_int_equal(info.gc_version, 3);
    assert_int_equal(info.max_version, 3);
    /* A collected horizon restored later drops the tombstones under it. */
    rumor_node_del(n);
    assert_int_equal(rumor_node_new(&n, &s, 0), 0);
    assert_int_equal(rumor_node_kv_restore(n, &a, 0), 0);
    assert_int_equal(rumor_node_kv_restore_version(n, 3, 3, 0, 0), 0);
    assert_int_equal(rumor_node_kv_lookup(n, NULL, "a", 1, false, &e), RUMOR_ERR_NOT_FOUND);
    free(sv);
    rumor_node_del(n);
}

/* ---- restore in a cluster ---- */

static void start_all(tnet *t, int n)
{
    for (int i = 0; i < n; i++)
        tnet_start(t, i);
    for (int i = 1; i < n; i++)
        tnet_join(t, i, 0);
}

static void expect_everywhere(tnet *t, int nodes, const char *origin, const char *key,
                              const char *value, uint64_t version)
{
    for (int i = 0; i < nodes; i++) {
        rumor_kv_value v;
        int rc = rumor_node_kv_get(tnet_node(t, i), origin, key, strlen(key), &v);
        if (!value) {
            assert_int_equal(rc, RUMOR_ERR_NOT_FOUND);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(v.len, strlen(value));
        assert_memory_equal(v.value, value, v.len);
        assert_int_equal(v.version, version);
    }
}

static void test_restart_restored_in_cluster(void **ctx)
{
    (void)ctx;
    tnet *t = tnet_new(4, RUMOR_PROFILE_LOCAL, 41);
    for (int i = 0; i < 4; i++)
        tnet_settings(t, i)->wallclock_offset_ms = 1700000000000;
    start_all(t, 4);
    tnet_run(t, tnet_now(t) + 3000);
    rumor_node *n1 = tnet_node(t, 1);
    assert_int_equal(sput(n1, "a", "1", tnet_now(t)), 0);
    assert_int_equal(sput(n1, "b", "2", tnet_now(t)), 0);
    assert_int_equal(rumor_node_kv_delete(n1, "a", 1, tnet_now(t)), 0);
    assert_int_equal(rumor_node_shared_put(n1, "leader", 6, "n1", 2, tnet_now(t)), 0);
    tnet_run(t, tnet_now(t) + 2000);
    expect_everywhere(t, 4, "n1", "b", "2", 2);
    uint64_t digest = rumor_node_kv_digest(tnet_node(t, 0));

    /* Node 1 is killed right after a write, saved before its datagrams left, then restarts
     * from the copy: the write is there at the same version, and nobody reverts. */
    saved *sv = calloc(1, sizeof(*sv));
    assert_int_equal(sput(n1, "b", "3", tnet_now(t)), 0);
    save(n1, sv);
    tnet_crash(t, 1);
    tnet_run(t, tnet_now(t) + 500);
    tnet_settings(t, 1)->incarnation = 3;
    tnet_start(t, 1);
    restore(tnet_node(t, 1), sv, tnet_now(t));
    tnet_join(t, 1, 0);
    tnet_run(t, tnet_now(t) + 4000);
    expect_everywhere(t, 4, "n1", "b", "3", 5);
    expect_everywhere(t, 4, "n1", "a", NULL, 0);
    for (int i = 0; i < 4; i++) {
        rumor_kv_value v;
        assert_int_equal(rumor_node_shared_get(tnet_node(t, i), "leader", 6, &v), 0);
        assert_string_equal(v.writer, "n1");
        assert_int_equal(v.version, 4);
        assert_true(rumor_node_kv_digest(tnet_node(t, i)) == rumor_node_kv_digest(tnet_node(t, 0)));
    }
    assert_true(rumor_node_kv_digest(tnet_node(t, 0)) != digest);
    /* The next write continues the sequence and reaches everyone. */
    assert_int_equal(sput(tnet_node(t, 1), "c", "4", tnet_now(t)), 0);
    tnet_run(t, tnet_now(t) + 2000);
    expect_everywhere(t, 4, "n1", "c", "4", 6);
    free(sv);
    tnet_free(t);
}

static void test_older_copy_completed_by_adoption(void **ctx)
{
    (void)ctx;
    tnet *t = tnet_new(4, RUMOR_PROFILE_LOCAL, 42);
    start_all(t, 4);
    tnet_run(t, tnet_now(t) + 3000);
    rumor_node *n2 = tnet_node(t, 2);
    assert_int_equal(sput(n2, "a", "1", tnet_now(t)), 0);
    assert_int_equal(sput(n2, "b", "2", tnet_now(t)), 0);
    saved *sv = calloc(1, sizeof(*sv));
    save(n2, sv); /* an older backup: versions 1..2 */
    assert_int_equal(rumor_node_kv_delete(n2, "a", 1, tnet_now(t)), 0);
    assert_int_equal(sput(n2, "c", "3", tnet_now(t)), 0);
    tnet_run(t, tnet_now(t) + 2000);
    expect_everywhere(t, 4, "n2", "c", "3", 4);

    tnet_crash(t, 2);
    tnet_run(t, tnet_now(t) + 500);
    tnet_settings(t, 2)->incarnation = 2;
    tnet_start(t, 2);
    restore(tnet_node(t, 2), sv, tnet_now(t));
    rumor_kv_value v;
    assert_int_equal(rumor_node_kv_get(tnet_node(t, 2), NULL, "a", 1, &v), 0); /* for now */
    tnet_join(t, 2, 0);
    tnet_run(t, tnet_now(t) + 4000);
    /* The cluster's newer copy of its own keyspace wins over the old backup: the delete of a
     * stays, c comes back, and the next write follows version 4. */
    expect_everywhere(t, 4, "n2", "a", NULL, 0);
    expect_everywhere(t, 4, "n2", "c", "3", 4);
    expect_everywhere(t, 4, "n2", "b", "2", 2);
    assert_int_equal(sput(tnet_node(t, 2), "d", "5", tnet_now(t)), 0);
    tnet_run(t, tnet_now(t) + 2000);
    expect_everywhere(t, 4, "n2", "d", "5", 5);
    free(sv);
    tnet_free(t);
}

/*
 * A retired shared entry (its owner replaced a superseded write with a tombstone naming what
 * superseded it) is saved with its flags and value and restored as such, signed again under
 * identities: after the restart every replica still reads the newer write, accepts the owner's
 * re-signed entries and head, and the owner's versions carry on.
 */
static void test_restore_keeps_retired_entries(void **ctx)
{
    (void)ctx;
    tnet *t = tnet_new(4, RUMOR_PROFILE_LOCAL, 43);
    for (int i = 0; i < 4; i++) {
        rumor_settings *s = tnet_settings(t, i);
        s->wallclock_offset_ms = 1700000000000;
        s->identity = true;
        memset(s->identity_seed, 60 + i, sizeof(s->identity_seed));
    }
    start_all(t, 4);
    tnet_run(t, tnet_now(t) + 3000);
    rumor_node *n1 = tnet_node(t, 1);
    assert_int_equal(rumor_node_shared_put(n1, "cfg", 3, "old", 3, tnet_now(t)), 0);
    tnet_run(t, tnet_now(t) + 1000);
    assert_int_equal(rumor_node_shared_put(tnet_node(t, 2), "cfg", 3, "new", 3, tnet_now(t)), 0);
    tnet_run(t, tnet_now(t) + 5000);
    rumor_kv_entry e;
    assert_int_equal(rumor_node_kv_lookup(n1, NULL, "cfg", 3, true, &e), 0);
    assert_true(e.shared && e.deleted);
    assert_int_equal(e.flags, 0x07); /* retired */
    assert_int_equal(e.version, 2);
    assert_true(e.value_len > 0);

    saved *sv = calloc(1, sizeof(*sv));
    save(n1, sv);
    assert_int_equal(sv->n, 1);
    tnet_crash(t, 1);
    tnet_run(t, tnet_now(t) + 500);
    tnet_settings(t, 1)->incarnation = 3;
    tnet_start(t, 1);
    n1 = tnet_node(t, 1);
    restore(n1, sv, tnet_now(t));
    rumor_kv_entry back;
    assert_int_equal(rumor_node_kv_lookup(n1, NULL, "cfg", 3, true, &back), 0);
    assert_int_equal(back.flags, 0x07);
    assert_int_equal(back.version, 2);
    assert_int_equal(back.value_len, sv->e[0].value_len);
    assert_memory_equal(back.value, sv->e[0].value, back.value_len);
    /* A retired entry without the dependency it names is no valid entry. */
    rumor_kv_entry bad = back;
    bad.value_len = 0;
    bad.version = 9;
    assert_int_equal(rumor_node_kv_restore(n1, &bad, tnet_now(t)), RUMOR_ERR_INVALID);
    tnet_join(t, 1, 0);
    tnet_run(t, tnet_now(t) + 4000);
    assert_int_equal(sput(n1, "after", "x", tnet_now(t)), 0);
    tnet_run(t, tnet_now(t) + 2000);
    expect_everywhere(t, 4, "n1", "after", "x", 3);
    for (int i = 0; i < 4; i++) {
        rumor_kv_value v;
        assert_int_equal(rumor_node_shared_get(tnet_node(t, i), "cfg", 3, &v), 0);
        assert_string_equal(v.writer, "n2");
        rumor_stats st;
        rumor_node_stats(tnet_node(t, i), &st);
        for (int r = 0; r < RUMOR_IDENT_REFUSAL_COUNT; r++)
            assert_int_equal(st.ident_refused[r], 0);
        assert_true(rumor_node_kv_digest(tnet_node(t, i)) == rumor_node_kv_digest(tnet_node(t, 0)));
    }
    free(sv);
    tnet_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_foreach_filters_and_order),
        cmocka_unit_test(test_restore_solo),
        cmocka_unit_test(test_restore_respects_limits_and_collection),
        cmocka_unit_test(test_restart_restored_in_cluster),
        cmocka_unit_test(test_older_copy_completed_by_adoption),
        cmocka_unit_test(test_restore_keeps_retired_entries),
    };
    if (sodium_init() < 0) /* the host's job, not the engine's */
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
