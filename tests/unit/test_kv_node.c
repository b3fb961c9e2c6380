/* The node's key-value API on the unit-test network: replication, errors and limits, change
 * events, keys dropped with a reaped member, and an owner that restarts empty adopting the
 * cluster's newer copy of its own keyspace. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "helper_net.h"

static void start_all(tnet *t, int n)
{
    for (int i = 0; i < n; i++)
        tnet_start(t, i);
    for (int i = 1; i < n; i++)
        tnet_join(t, i, 0);
}

static int put(tnet *t, int i, const char *k, const char *v)
{
    return rumor_node_kv_put(tnet_node(t, i), k, strlen(k), v, strlen(v), tnet_now(t));
}

static int get(tnet *t, int i, const char *origin, const char *k, char *out, size_t cap)
{
    rumor_kv_value v;
    int rc = rumor_node_kv_get(tnet_node(t, i), origin, k, strlen(k), &v);
    if (rc == 0) {
        size_t n = v.len < cap - 1 ? v.len : cap - 1;
        memcpy(out, v.value, n);
        out[n] = 0;
    }
    return rc;
}

static void test_replicates_and_deletes(void **ctx)
{
    (void)ctx;
    tnet *t = tnet_new(6, RUMOR_PROFILE_LOCAL, 31);
    start_all(t, 6);
    tnet_run(t, tnet_now(t) + 3000);
    assert_int_equal(put(t, 2, "color", "red"), 0);
    assert_int_equal(put(t, 2, "size", "xl"), 0);
    assert_int_equal(put(t, 2, "color", "blue"), 0);
    assert_int_equal(rumor_node_kv_delete(tnet_node(t, 2), "size", 4, tnet_now(t)), 0);
    tnet_run(t, tnet_now(t) + 3000);
    char buf[32];
    for (int i = 0; i < 6; i++) {
        assert_int_equal(get(t, i, "n2", "color", buf, sizeof(buf)), 0);
        assert_string_equal(buf, "blue");
        assert_int_equal(get(t, i, "n2", "size", buf, sizeof(buf)), RUMOR_ERR_NOT_FOUND);
        assert_int_equal(rumor_node_kv_count(tnet_node(t, i)), 1);
        assert_true(rumor_node_kv_digest(tnet_node(t, i)) == rumor_node_kv_digest(tnet_node(t, 0)));
    }
    /* Own reads with a NULL origin; absent origins and keys. */
    assert_int_equal(get(t, 2, NULL, "color", buf, sizeof(buf)), 0);
    assert_int_equal(get(t, 1, "nobody", "color", buf, sizeof(buf)), RUMOR_ERR_NOT_FOUND);
    tnet_free(t);
}

static void test_errors_change_nothing(void **ctx)
{
    (void)ctx;
    tnet *t = tnet_new(2, RUMOR_PROFILE_LOCAL, 32);
    tnet_settings(t, 0)->kv_keys_max = 2;
    start_all(t, 2);
    rumor_node *n = tnet_node(t, 0);
    char big[600];
    memset(big, 'x', sizeof(big));
    uint64_t now = tnet_now(t);
    assert_int_equal(rumor_node_kv_put(n, "k", 1, big, sizeof(big), now), RUMOR_ERR_TOO_BIG);
    assert_int_equal(rumor_node_kv_put(n, "", 0, "v", 1, now), RUMOR_ERR_INVALID);
    assert_int_equal(rumor_node_kv_put(n, big, RUMOR_KEY_MAX + 1, "v", 1, now), RUMOR_ERR_INVALID);
    assert_int_equal(rumor_node_kv_delete(n, "k", 1, now), RUMOR_ERR_NOT_FOUND);
    assert_int_equal(put(t, 0, "a", "1"), 0);
    assert_int_equal(put(t, 0, "b", "2"), 0);
    assert_int_equal(put(t, 0, "c", "3"), RUMOR_ERR_TOO_BIG);
    assert_int_equal(put(t, 0, "a", "11"), 0); /* overwriting is not a new key */
    assert_int_equal(rumor_node_kv_count(n), 2);
    rumor_kv_value v;
    assert_int_equal(rumor_node_kv_get(n, NULL, "a", 1, &v), 0);
    assert_int_equal(v.version, 3);
    assert_int_equal(rumor_node_leave(n, tnet_now(t)), 0);
    assert_int_equal(put(t, 0, "d", "4"), RUMOR_ERR_STATE);
    tnet_free(t);
}

static void test_change_events(void **ctx)
{
    (void)ctx;
    rumor_settings s;
    rumor_settings_default(&s, RUMOR_PROFILE_LOCAL);
    s.name = "solo";
    s.addr = tnet_addr(0);
    rumor_node *n;
    assert_int_equal(rumor_node_new(&n, &s, 0), 0);
    assert_int_equal(rumor_node_kv_put(n, "k", 1, "v1", 2, 1), 0);
    assert_int_equal(rumor_node_kv_put(n, "k", 1, "v2", 2, 2), 0);
    assert_int_equal(rumor_node_kv_delete(n, "k", 1, 3), 0);
    rumor_event ev;
    uint64_t versions[3][2];
    bool deleted[3];
    int seen = 0;
    while (rumor_node_poll_event(n, &ev)) {
        if (ev.type != RUMOR_EVENT_KV_CHANGE)
            continue;
        assert_true(seen < 3);
        assert_string_equal(ev.member.name, "solo");
        assert_int_equal(ev.key_len, 1);
        assert_memory_equal(ev.key, "k", 1);
        versions[seen][0] = ev.old_version;
        versions[seen][1] = ev.version;
        deleted[seen++] = ev.deleted;
    }
    assert_int_equal(seen, 3);
    assert_int_equal(versions[0][0], 0);
    assert_int_equal(versions[0][1], 1);
    assert_int_equal(versions[1][0], 1);
    assert_int_equal(versions[1][1], 2);
    assert_int_equal(versions[2][0], 2);
    assert_true(deleted[2] && !deleted[0] && !deleted[1]);
    rumor_node_del(n);
}

static void test_reaped_member_keys_dropped(void **ctx)
{
    (void)ctx;
    tnet *t = tnet_new(4, RUMOR_PROFILE_LOCAL, 33);
    for (int i = 0; i < 4; i++)
        tnet_settings(t, i)->reap_failed_ms = 5000;
    start_all(t, 4);
    tnet_run(t, tnet_now(t) + 3000);
    assert_int_equal(put(t, 3, "k", "v"), 0);
    tnet_run(t, tnet_now(t) + 2000);
    char buf[8];
    assert_int_equal(get(t, 0, "n3", "k", buf, sizeof(buf)), 0);
    tnet_crash(t, 3);
    tnet_run(t, tnet_now(t) + 40000); /* failed, then reaped */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tnet_state(t, i, 3), -1);
        assert_int_equal(get(t, i, "n3", "k", buf, sizeof(buf)), RUMOR_ERR_NOT_FOUND);
        assert_int_equal(rumor_node_kv_count(tnet_node(t, i)), 0);
    }
    tnet_free(t);
}

static void test_restarted_owner_adopts_its_keyspace(void **ctx)
{
    (void)ctx;
    tnet *t = tnet_new(4, RUMOR_PROFILE_LOCAL, 34);
    start_all(t, 4);
    tnet_run(t, tnet_now(t) + 3000);
    assert_int_equal(put(t, 1, "a", "1"), 0);
    assert_int_equal(put(t, 1, "b", "2"), 0);
    assert_int_equal(rumor_node_kv_delete(tnet_node(t, 1), "a", 1, tnet_now(t)), 0);
    tnet_run(t, tnet_now(t) + 2000);
    /* Node 1 restarts with nothing (an old or lost snapshot) and a newer incarnation. */
    tnet_crash(t, 1);
    tnet_settings(t, 1)->incarnation = 5;
    tnet_start(t, 1);
    tnet_join(t, 1, 0);
    tnet_run(t, tnet_now(t) + 5000);
    char buf[8];
    assert_int_equal(get(t, 1, NULL, "b", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "2");
    assert_int_equal(get(t, 1, NULL, "a", buf, sizeof(buf)), RUMOR_ERR_NOT_FOUND);
    /* Its next write continues the version sequence, so every replica takes it. */
    assert_int_equal(put(t, 1, "c", "3"), 0);
    rumor_kv_value v;
    assert_int_equal(rumor_node_kv_get(tnet_node(t, 1), NULL, "c", 1, &v), 0);
    assert_int_equal(v.version, 4);
    tnet_run(t, tnet_now(t) + 3000);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(get(t, i, "n1", "c", buf, sizeof(buf)), 0);
        assert_int_equal(get(t, i, "n1", "a", buf, sizeof(buf)), RUMOR_ERR_NOT_FOUND);
    }
    tnet_free(t);
}

static int shared_get(tnet *t, int i, const char *k, char *out, size_t cap, const char **writer)
{
    rumor_kv_value v;
    int rc = rumor_node_shared_get(tnet_node(t, i), k, strlen(k), &v);
    if (rc == 0) {
        size_t n = v.len < cap - 1 ? v.len : cap - 1;
        memcpy(out, v.value, n);
        out[n] = 0;
        if (writer)
            *writer = v.writer;
    }
    return rc;
}

static void test_shared_keys_converge(void **ctx)
{
    (void)ctx;
    tnet *t = tnet_new(5, RUMOR_PROFILE_LOCAL, 35);
    /* Skewed wall clocks: node 1 runs 5 s behind, node 2 1 s ahead. */
    tnet_settings(t, 1)->wallclock_offset_ms = 1700000000000 - 5000;
    tnet_settings(t, 2)->wallclock_offset_ms = 1700000000000 + 1000;
    for (int i = 0; i < 5; i++)
        if (i != 1 && i != 2)
            tnet_settings(t, i)->wallclock_offset_ms = 1700000000000;
    start_all(t, 5);
    tnet_run(t, tnet_now(t) + 3000);
    /* Concurrent writes of one key by three nodes: every replica picks the same winner. */
    uint64_t now = tnet_now(t);
    for (int i = 1; i <= 3; i++) {
        char v[16];
        snprintf(v, sizeof(v), "w%d", i);
        assert_int_equal(rumor_node_shared_put(tnet_node(t, i), "leader", 6, v, strlen(v), now), 0);
    }
    tnet_run(t, tnet_now(t) + 3000);
    char first[8], buf[8];
    const char *w0 = NULL, *w = NULL;
    assert_int_equal(shared_get(t, 0, "leader", first, sizeof(first), &w0), 0);
    assert_string_equal(first, "w2"); /* the clock that is ahead wins a concurrent race */
    assert_string_equal(w0, "n2");
    for (int i = 1; i < 5; i++) {
        assert_int_equal(shared_get(t, i, "leader", buf, sizeof(buf), &w), 0);
        assert_string_equal(buf, first);
        assert_string_equal(w, w0);
    }
    /* Node 1's clock is 6 s behind node 2's, but it writes after seeing node 2's write, so
     * its write wins: stamps follow causality, not wall clocks. */
    assert_int_equal(rumor_node_shared_put(tnet_node(t, 1), "leader", 6, "w1b", 3, tnet_now(t)), 0);
    tnet_run(t, tnet_now(t) + 3000);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(shared_get(t, i, "leader", buf, sizeof(buf), &w), 0);
        assert_string_equal(buf, "w1b");
    }
    /* Any node may delete it; then it is absent everywhere. */
    assert_int_equal(rumor_node_shared_delete(tnet_node(t, 4), "leader", 6, tnet_now(t)), 0);
    assert_int_equal(rumor_node_shared_delete(tnet_node(t, 4), "leader", 6, tnet_now(t)),
                     RUMOR_ERR_NOT_FOUND);
    tnet_run(t, tnet_now(t) + 3000);
    for (int i = 0; i < 5; i++)
        assert_int_equal(shared_get(t, i, "leader", buf, sizeof(buf), NULL), RUMOR_ERR_NOT_FOUND);
    /* Shared and per-node keys are separate namespaces. */
    assert_int_equal(put(t, 0, "leader", "mine"), 0);
    assert_int_equal(shared_get(t, 0, "leader", buf, sizeof(buf), NULL), RUMOR_ERR_NOT_FOUND);
    tnet_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replicates_and_deletes),
        cmocka_unit_test(test_errors_change_nothing),
        cmocka_unit_test(test_change_events),
        cmocka_unit_test(test_reaped_member_keys_dropped),
        cmocka_unit_test(test_restarted_owner_adopts_its_keyspace),
        cmocka_unit_test(test_shared_keys_converge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
