/* A node stalled long enough to be suspected (or declared failed) comes back, refutes with a
 * higher incarnation and ends alive everywhere. */
#include "helper_sim.h"

#include <inttypes.h>

static void test_pause_then_refute(void **state)
{
    (void)state;
    const uint32_t n = 32, victim = 5;
    uint64_t seed = h_seed(7);
    rumor_sim *s = h_sim_new(n, seed, RUMOR_PROFILE_LOCAL);
    h_start_cluster(s, n, 0, 1000);
    h_run(s, 1000);
    h_check(s, h_run_until_converged(s, 60000) != UINT64_MAX, "no convergence before pause");
    rumor_member self;
    rumor_node_self(rumor_sim_node(s, victim), &self);
    uint32_t inc_before = self.incarnation;
    /* 20 s is far beyond the probe timeout and in the range of the suspicion timeout at N=32, so
     * the others at least suspect the stalled node, maybe declare it failed. */
    assert_int_equal(rumor_sim_node_pause(s, victim, 20000), 0);
    h_run(s, 20000);
    rumor_sim_metrics m;
    rumor_sim_metrics_get(s, &m);
    h_check(s, m.false_suspicions + m.paused_failures > 0 || rumor_sim_failed_about(s, victim),
            "nobody noticed a 20 s stall");
    h_check(s, rumor_sim_node_state_of(s, victim) == RUMOR_SIM_UP, "victim did not resume");
    uint64_t took = h_run_until_converged(s, 60000);
    h_check(s, took != UINT64_MAX, "node-%u not alive everywhere 60 s after resuming", victim);
    h_check(s, h_all_see(s, victim, RUMOR_MEMBER_ALIVE), "node-%u not alive everywhere", victim);
    rumor_node_self(rumor_sim_node(s, victim), &self);
    h_check(s, self.incarnation > inc_before, "incarnation %u did not rise above %u",
            self.incarnation, inc_before);
    rumor_sim_metrics_get(s, &m);
    h_note("seed %" PRIu64 ": 20 s pause: incarnation %u -> %u, %" PRIu64
           " FAILED while paused, %" PRIu64 " after resume, alive everywhere %" PRIu64
           " ms after resume",
           seed, inc_before, self.incarnation, m.paused_failures, m.false_positives, took);
    rumor_sim_del(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pause_then_refute),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
