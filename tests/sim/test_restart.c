/* A crashed node restarted under the same name and address is accepted back: with its old
 * incarnation + 1 directly, with the same incarnation after refuting its own death. */
#include "helper_sim.h"

#include <inttypes.h>
#include <stdlib.h>

static void crash_restart(uint64_t seed, bool bump)
{
    const uint32_t n = 32, victim = 9;
    rumor_sim *s = h_sim_new(n, seed, RUMOR_PROFILE_LOCAL);
    h_start_cluster(s, n, 0, 1000);
    h_run(s, 1000);
    h_check(s, h_run_until_converged(s, 60000) != UINT64_MAX, "no convergence before crash");
    rumor_member self;
    rumor_node_self(rumor_sim_node(s, victim), &self);
    uint32_t inc_before = self.incarnation;
    assert_int_equal(rumor_sim_node_crash(s, victim), 0);
    rumor_sim_metrics m;
    uint64_t crashed_at = rumor_sim_now(s);
    do {
        h_run(s, 500);
        rumor_sim_metrics_get(s, &m);
    } while (m.detect_count < n - 1 && rumor_sim_now(s) - crashed_at < 120000);
    h_check(s, m.detect_count == n - 1, "only %" PRIu64 " of %u saw the crash", m.detect_count,
            n - 1);
    assert_int_equal(rumor_sim_node_restart(s, victim, bump, 0), 0);
    uint64_t took = h_run_until_converged(s, 60000);
    h_check(s, took != UINT64_MAX, "restarted node-%u (bump=%d) not alive everywhere in 60 s",
            victim, bump);
    rumor_node_self(rumor_sim_node(s, victim), &self);
    h_check(s, self.incarnation > inc_before, "incarnation %u after restart, was %u",
            self.incarnation, inc_before);
    /* Either way one step up should do: bump starts there, a same-incarnation restart refutes
     * its recorded death once. More means someone suspected the new life for no reason (a probe
     * begun on the old life must not fail against the new one). */
    h_check(s, self.incarnation == inc_before + 1,
            "incarnation went %u -> %u: the new life was suspected", inc_before, self.incarnation);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t inc = 0;
        if (i != victim)
            h_check(s,
                    h_table_state(s, i, victim, &inc) == RUMOR_MEMBER_ALIVE &&
                        inc == self.incarnation,
                    "node-%u has node-%u at incarnation %u, it is at %u", i, victim, inc,
                    self.incarnation);
    }
    h_note("seed %" PRIu64
           ": restart bump=%d: incarnation %u -> %u, alive everywhere after %" PRIu64 " ms",
           seed, bump, inc_before, self.incarnation, took);
    rumor_sim_del(s);
}

static void test_restart_new_incarnation(void **state)
{
    (void)state;
    crash_restart(h_seed(9), true);
}

static void test_restart_same_incarnation_refutes(void **state)
{
    (void)state;
    crash_restart(h_seed(10), false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_new_incarnation),
        cmocka_unit_test(test_restart_same_incarnation_refutes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
