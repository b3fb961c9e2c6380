/* Partitions: a 50/50 split is detected on both sides and heals by itself; one blocked link
 * (asymmetric) is bridged by indirect probes and fails nobody. */
#include "helper_sim.h"

#include <inttypes.h>

/* Every node on each side has every node of the other side failed (or already reaped). */
static int sides_see_each_other_failed(const rumor_sim *s, uint32_t n)
{
    for (uint32_t o = 0; o < n; o++) {
        for (uint32_t m = 0; m < n; m++) {
            if ((o < n / 2) == (m < n / 2))
                continue;
            rumor_member_state st;
            uint32_t inc;
            if (rumor_sim_view(s, o, m, &st, &inc) && st != RUMOR_MEMBER_FAILED)
                return 0;
            if (rumor_sim_failed_about(s, m) == 0)
                return 0;
        }
    }
    return 1;
}

static void test_split_half_2min_then_heal(void **state)
{
    (void)state;
    const uint32_t n = 64;
    uint64_t seed = h_seed(5);
    rumor_settings st;
    assert_int_equal(rumor_settings_default(&st, RUMOR_PROFILE_LOCAL), 0);
    rumor_sim *s = h_sim_new(n, seed, RUMOR_PROFILE_LOCAL);
    h_start_cluster(s, n, 0, 2000);
    h_run(s, 2000);
    h_check(s, h_run_until_converged(s, 120000) != UINT64_MAX, "no convergence before split");
    uint16_t groups[64];
    for (uint32_t i = 0; i < n; i++)
        groups[i] = i < n / 2 ? 0 : 1;
    assert_int_equal(rumor_sim_partition(s, groups), 0);
    h_run(s, 120000);
    h_check(s, sides_see_each_other_failed(s, n),
            "after 2 min of partition some node still lists the other side as alive");
    rumor_sim_metrics m;
    rumor_sim_metrics_get(s, &m);
    h_check(s, m.partition_failures > 0, "the partition produced no FAILED events at all");
    h_check(s, m.false_positives == 0, "%" PRIu64 " FAILED events within one side",
            m.false_positives);
    rumor_sim_heal(s);
    /* Healing needs a reconnect attempt to a failed member (every reconnect interval) and the
     * full-state sync it carries, then gossip. Give it several reconnect and push-pull periods. */
    uint64_t bound = 6ull * st.reconnect_interval_ms + 2ull * st.pushpull_interval_ms + 30000;
    uint64_t took = h_run_until_converged(s, bound);
    h_check(s, took != UINT64_MAX,
            "membership did not come back within %" PRIu64 " ms of healing (no join call)", bound);
    h_note("seed %" PRIu64 ": healed partition converged %" PRIu64 " ms after heal (bound %" PRIu64
           " ms)",
           seed, took, bound);
    rumor_sim_del(s);
}

/* One direction of one link drops everything: indirect probes through others must keep both
 * ends alive in everyone's view. */
static void test_asymmetric_link_no_failures(void **state)
{
    (void)state;
    const uint32_t n = 16;
    uint64_t seed = h_seed(6);
    rumor_sim *s = h_sim_new(n, seed, RUMOR_PROFILE_LOCAL);
    h_start_cluster(s, n, 0, 1000);
    h_run(s, 1000);
    h_check(s, h_run_until_converged(s, 60000) != UINT64_MAX, "no convergence");
    assert_int_equal(rumor_sim_link_block(s, 3, 5, true), 0);
    h_run(s, 120000);
    rumor_sim_metrics m;
    rumor_sim_metrics_get(s, &m);
    h_check(s, m.false_positives == 0, "%" PRIu64 " FAILED events with one link blocked 3->5",
            m.false_positives);
    h_check(s, h_all_alive(s), "not everyone alive everywhere with one link blocked");
    h_note("seed %" PRIu64 ": asymmetric link 3->5 for 2 min: %" PRIu64 " suspicions, 0 failures",
           seed, m.false_suspicions);
    rumor_sim_del(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_half_2min_then_heal),
        cmocka_unit_test(test_asymmetric_link_no_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
