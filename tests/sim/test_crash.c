/* A crashed node is declared failed by every other node within a bound derived from settings. */
#include "helper_sim.h"

#include <inttypes.h>
#include <math.h>

/*
 * The slowest legitimate detection: the crash lands just after the slowest observer's probe of
 * it (one probe interval, stretched by the worst local-health multiplier we allow here: 2), the
 * probe and its indirect probes time out (probe timeout), and the suspicion runs its maximum
 * timeout (Lifeguard §IV-B: max_mult * mult * max(1, log10 N) * interval) because no other
 * suspicion confirms it. Then the FAILED news must reach every observer by gossip, which takes
 * about log(N) gossip rounds; 10 s of slack covers that with a wide margin.
 */
static uint64_t detection_bound_ms(const rumor_settings *st, uint32_t n)
{
    double scale = fmax(1.0, log10((double)n));
    double min = st->suspicion_mult * scale * st->probe_interval_ms;
    double max = st->suspicion_max_mult * min;
    return 2ull * st->probe_interval_ms + st->probe_timeout_ms + (uint64_t)max + 10000;
}

static void test_crash_detected_everywhere(void **state)
{
    (void)state;
    const uint32_t n = 64, victim = 17;
    uint64_t seed = h_seed(3);
    rumor_settings st;
    assert_int_equal(rumor_settings_default(&st, RUMOR_PROFILE_LOCAL), 0);
    uint64_t bound = detection_bound_ms(&st, n);
    rumor_sim *s = h_sim_new(n, seed, RUMOR_PROFILE_LOCAL);
    h_start_cluster(s, n, 0, 2000);
    h_run(s, 2000);
    h_check(s, h_run_until_converged(s, 120000) != UINT64_MAX, "no convergence before the crash");
    h_run(s, 5000);
    assert_int_equal(rumor_sim_node_crash(s, victim), 0);
    uint64_t crashed_at = rumor_sim_now(s);
    rumor_sim_metrics m;
    do {
        h_run(s, 500);
        rumor_sim_metrics_get(s, &m);
    } while (m.detect_count < n - 1 && rumor_sim_now(s) - crashed_at < bound);
    h_check(s, m.detect_count == n - 1 && m.detect_missed == 0,
            "%" PRIu64 " of %u observers marked node-%u failed within %" PRIu64 " ms",
            m.detect_count, n - 1, victim, bound);
    h_check(s, m.detect_max_ms <= bound, "slowest detection %" PRIu64 " ms > bound %" PRIu64,
            m.detect_max_ms, bound);
    for (uint32_t i = 0; i < n; i++) {
        rumor_member_state vs;
        uint32_t inc;
        if (i != victim)
            h_check(s, rumor_sim_view(s, i, victim, &vs, &inc) && vs == RUMOR_MEMBER_FAILED,
                    "node-%u does not show node-%u failed", i, victim);
    }
    h_check(s, m.false_positives == 0, "%" PRIu64 " false failures", m.false_positives);
    h_note("seed %" PRIu64 ": detection min/median/p99/max = %" PRIu64 "/%" PRIu64 "/%" PRIu64
           "/%" PRIu64 " ms, bound %" PRIu64 " ms",
           seed, m.detect_min_ms, m.detect_median_ms, m.detect_p99_ms, m.detect_max_ms, bound);
    rumor_sim_del(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_detected_everywhere),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
