/* Small clusters on the unit-test network: join, failure detection, leave, refutation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "helper_net.h"

static void start_all(tnet *t, int n)
{
    for (int i = 0; i < n; i++)
        tnet_start(t, i);
    for (int i = 1; i < n; i++)
        tnet_join(t, i, 0);
}

static int count_state(tnet *t, int n, int who, int state)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        if (i != who && tnet_state(t, i, who) == state)
            c++;
    return c;
}

static void test_join_converges(void **ctx)
{
    (void)ctx;
    tnet *t = tnet_new(8, RUMOR_PROFILE_LOCAL, 1);
    start_all(t, 8);
    tnet_run(t, tnet_now(t) + 3000);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(rumor_node_member_count(tnet_node(t, i)), 8);
        for (int j = 0; j < 8; j++)
            assert_int_equal(tnet_state(t, i, j), RUMOR_MEMBER_ALIVE);
    }
    tnet_free(t);
}

static void test_crash_detected(void **ctx)
{
    (void)ctx;
    tnet *t = tnet_new(8, RUMOR_PROFILE_LOCAL, 2);
    start_all(t, 8);
    tnet_run(t, tnet_now(t) + 3000);
    tnet_crash(t, 3);
    /* local: suspicion max = 6 × 3 × 1 s = 18 s; detection must come well before. */
    tnet_run(t, tnet_now(t) + 20000);
    assert_int_equal(count_state(t, 8, 3, RUMOR_MEMBER_FAILED), 7);
    for (int i = 0; i < 8; i++)
        if (i != 3)
            assert_int_equal(tnet_events(t, i, 3, RUMOR_EVENT_MEMBER_FAILED), 1);
    /* Nobody else was declared failed. */
    for (int i = 0; i < 8; i++)
        if (i != 3)
            assert_int_equal(count_state(t, 8, i, RUMOR_MEMBER_FAILED), 0);
    tnet_free(t);
}

/* A member that really crashed is no fault of those who probe it: their helpers nack in time,
 * so their local health score stays 0 (LAN timing, where the requester has 500 ms left when it
 * asks for help) and they go on probing the others at the normal rate. */
static void test_crash_keeps_prober_health(void **ctx)
{
    (void)ctx;
    tnet *t = tnet_new(8, RUMOR_PROFILE_LAN, 7);
    start_all(t, 8);
    tnet_run(t, tnet_now(t) + 3000);
    tnet_crash(t, 3);
    uint64_t failed_probes = 0, nacks = 0;
    for (uint64_t end = tnet_now(t) + 30000; tnet_now(t) < end;) {
        tnet_run(t, tnet_now(t) + 100);
        for (int i = 0; i < 8; i++)
            if (i != 3)
                assert_int_equal(rumor_node_health(tnet_node(t, i)), 0);
    }
    for (int i = 0; i < 8; i++) {
        if (i == 3)
            continue;
        rumor_stats st;
        rumor_node_stats(tnet_node(t, i), &st);
        failed_probes += st.probe_failures;
        nacks += st.nacks_in;
    }
    assert_int_equal(count_state(t, 8, 3, RUMOR_MEMBER_FAILED), 7);
    assert_true(failed_probes >= 1);
    assert_true(nacks >= failed_probes);
    tnet_free(t);
}

static void test_leave_is_left(void **ctx)
{
    (void)ctx;
    tnet *t = tnet_new(6, RUMOR_PROFILE_LOCAL, 3);
    start_all(t, 6);
    tnet_run(t, tnet_now(t) + 3000);
    assert_int_equal(rumor_node_leave(tnet_node(t, 2), tnet_now(t)), 0);
    assert_int_equal(rumor_node_leave(tnet_node(t, 2), tnet_now(t)), RUMOR_ERR_STATE);
    tnet_run(t, tnet_now(t) + 3000);
    assert_int_equal(count_state(t, 6, 2, RUMOR_MEMBER_LEFT), 5);
    assert_int_equal(tnet_events(t, 2, 2, RUMOR_EVENT_LEAVE_DONE), 1);
    tnet_crash(t, 2);
    tnet_run(t, tnet_now(t) + 30000);
    assert_int_equal(count_state(t, 6, 2, RUMOR_MEMBER_LEFT), 5);
    for (int i = 0; i < 6; i++)
        if (i != 2)
            assert_int_equal(tnet_events(t, i, 2, RUMOR_EVENT_MEMBER_FAILED), 0);
    tnet_free(t);
}

static void test_partition_refute(void **ctx)
{
    (void)ctx;
    tnet *t = tnet_new(5, RUMOR_PROFILE_LOCAL, 4);
    start_all(t, 5);
    tnet_run(t, tnet_now(t) + 3000);
    uint32_t inc_before;
    rumor_member self;
    rumor_node_self(tnet_node(t, 4), &self);
    inc_before = self.incarnation;
    /* Cut node 4 off from everyone long enough to be suspected, then heal. */
    for (int i = 0; i < 4; i++)
        tnet_cut(t, i, 4, true);
    tnet_run(t, tnet_now(t) + 4000);
    assert_true(count_state(t, 5, 4, RUMOR_MEMBER_SUSPECT) > 0);
    for (int i = 0; i < 4; i++)
        tnet_cut(t, i, 4, false);
    tnet_run(t, tnet_now(t) + 5000);
    assert_int_equal(count_state(t, 5, 4, RUMOR_MEMBER_ALIVE), 4);
    rumor_node_self(tnet_node(t, 4), &self);
    assert_true(self.incarnation > inc_before);
    tnet_free(t);
}

static void test_healed_after_failed(void **ctx)
{
    (void)ctx;
    tnet *t = tnet_new(6, RUMOR_PROFILE_LOCAL, 5);
    start_all(t, 6);
    tnet_run(t, tnet_now(t) + 3000);
    /* {0,1,2} | {3,4,5} for 60 s: each side declares the other failed. */
    for (int i = 0; i < 3; i++)
        for (int j = 3; j < 6; j++)
            tnet_cut(t, i, j, true);
    tnet_run(t, tnet_now(t) + 60000);
    assert_int_equal(tnet_state(t, 0, 4), RUMOR_MEMBER_FAILED);
    assert_int_equal(tnet_state(t, 4, 0), RUMOR_MEMBER_FAILED);
    for (int i = 0; i < 3; i++)
        for (int j = 3; j < 6; j++)
            tnet_cut(t, i, j, false);
    /* Reconnects every 5 s (local) must merge the halves without any join call. */
    tnet_run(t, tnet_now(t) + 30000);
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++)
            assert_int_equal(tnet_state(t, i, j), RUMOR_MEMBER_ALIVE);
    tnet_free(t);
}

static void test_restore_quiet_then_probed(void **ctx)
{
    (void)ctx;
    tnet *t = tnet_new(4, RUMOR_PROFILE_LOCAL, 6);
    start_all(t, 3); /* nodes 0..2 form a cluster; node 3 never runs */
    tnet_run(t, tnet_now(t) + 3000);
    rumor_node *n0 = tnet_node(t, 0);
    rumor_stats st;
    rumor_node_stats(n0, &st);
    uint32_t queued = st.broadcast_queue;
    /* Restore a member that is gone: added alive, not gossiped, then found failed by probing. */
    rumor_member m = {0};
    m.name = "n3";
    m.addr = tnet_addr(3);
    m.incarnation = 7;
    assert_int_equal(rumor_node_restore(n0, &m, tnet_now(t)), 0);
    assert_int_equal(tnet_state(t, 0, 3), RUMOR_MEMBER_ALIVE);
    rumor_node_stats(n0, &st);
    assert_int_equal(st.broadcast_queue, queued);
    /* Restoring a known member changes nothing; bad input is refused. */
    assert_int_equal(rumor_node_restore(n0, &m, tnet_now(t)), 0);
    m.name = "";
    assert_int_equal(rumor_node_restore(n0, &m, tnet_now(t)), RUMOR_ERR_INVALID);
    tnet_run(t, tnet_now(t) + 25000);
    assert_int_equal(tnet_state(t, 0, 3), RUMOR_MEMBER_FAILED);
    tnet_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join_converges),
        cmocka_unit_test(test_crash_detected),
        cmocka_unit_test(test_crash_keeps_prober_health),
        cmocka_unit_test(test_leave_is_left),
        cmocka_unit_test(test_partition_refute),
        cmocka_unit_test(test_healed_after_failed),
        cmocka_unit_test(test_restore_quiet_then_probed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
