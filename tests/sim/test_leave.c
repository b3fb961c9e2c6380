/* A graceful leave shows as LEFT everywhere and never as FAILED. */
#include "helper_sim.h"

#include <inttypes.h>

static void test_leave_is_left_not_failed(void **state)
{
    (void)state;
    const uint32_t n = 32, leaver = 7;
    uint64_t seed = h_seed(8);
    rumor_sim *s = h_sim_new(n, seed, RUMOR_PROFILE_LOCAL);
    h_start_cluster(s, n, 0, 1000);
    h_run(s, 1000);
    h_check(s, h_run_until_converged(s, 60000) != UINT64_MAX, "no convergence before leave");
    assert_int_equal(rumor_sim_node_leave(s, leaver), 0);
    /* The leaver shuts down at LEAVE_DONE; the others must have heard by then or learn it from
     * gossip, never by probing a silent node into FAILED. Look before anyone may reap it. */
    rumor_settings st;
    assert_int_equal(rumor_settings_default(&st, RUMOR_PROFILE_LOCAL), 0);
    h_run(s, st.reap_left_ms / 2 < 30000 ? st.reap_left_ms / 2 : 30000);
    h_check(s, rumor_sim_node_state_of(s, leaver) == RUMOR_SIM_GONE,
            "node-%u never reported LEAVE_DONE", leaver);
    for (uint32_t i = 0; i < n; i++) {
        rumor_member_state vs;
        uint32_t inc;
        if (i == leaver)
            continue;
        h_check(s, rumor_sim_view(s, i, leaver, &vs, &inc) && vs == RUMOR_MEMBER_LEFT,
                "node-%u's events do not end with node-%u LEFT", i, leaver);
    }
    h_check(s, rumor_sim_failed_about(s, leaver) == 0,
            "%" PRIu64 " FAILED events about a node that left", rumor_sim_failed_about(s, leaver));
    h_check(s, rumor_sim_converged(s), "the remaining nodes do not agree on membership");
    h_note("seed %" PRIu64 ": node-%u left; LEFT at all %u others", seed, leaver, n - 1);
    rumor_sim_del(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leave_is_left_not_failed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
