/* Joining: many nodes through one seed, or through random members, end with full membership. */
#include "helper_sim.h"

#include <inttypes.h>

static void join_and_check(rumor_profile profile, uint32_t seed_node, uint64_t seed)
{
    const uint32_t n = 64;
    rumor_sim *s = h_sim_new(n, seed, profile);
    h_start_cluster(s, n, seed_node, 2000);
    h_run(s, 2000);
    uint64_t took = h_run_until_converged(s, 120000);
    h_check(s, took != UINT64_MAX, "%u nodes did not converge within 120 s of the last join", n);
    for (uint32_t i = 0; i < n; i++)
        h_check(s, h_table_count(s, i, RUMOR_MEMBER_ALIVE) == n, "node-%u sees %u alive, not %u", i,
                h_table_count(s, i, RUMOR_MEMBER_ALIVE), n);
    rumor_sim_metrics m;
    rumor_sim_metrics_get(s, &m);
    h_check(s, m.false_positives == 0, "%" PRIu64 " false failures while joining",
            m.false_positives);
    h_note("seed %" PRIu64 ": %u nodes converged %" PRIu64 " ms after the first start "
           "(%" PRIu64 " ms after the last join)",
           seed, n, m.convergence_ms, took);
    rumor_sim_del(s);
}

/* The scenario: 64 nodes, every one joining through node 0. */
static void test_join_one_seed_64(void **state)
{
    (void)state;
    join_and_check(RUMOR_PROFILE_LOCAL, 0, h_seed(1));
}

/* Same with LAN timings and each node joining through a random member already up. */
static void test_join_random_seeds_lan_64(void **state)
{
    (void)state;
    join_and_check(RUMOR_PROFILE_LAN, RUMOR_SIM_SEED_RANDOM, h_seed(2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join_one_seed_64),
        cmocka_unit_test(test_join_random_seeds_lan_64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
