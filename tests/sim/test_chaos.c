/*
 * Randomized fault schedules: loss, duplication and jitter throughout, with crashes, restarts
 * (same or higher incarnation), stalls, graceful leaves, symmetric splits and one-way link blocks
 * drawn at random. The invariants are checked after every step; once the faults stop, the nodes
 * still running must agree on membership again without any join call. RUMOR_SIM_SEEDS=<k> runs
 * k seeds instead of the default 32 (RUMOR_SIM_SEED=<s> replays one).
 */
#include "helper_sim.h"

#include <inttypes.h>
#include <stdlib.h>

#define CHAOS_NODES    24u
#define CHAOS_FAULT_MS 240000u
#define CHAOS_QUIET_MS 240000u
/* Never crashed nor made to leave, and always among a restarted node's seeds: a node whose only
 * seeds are all gone for good can never rejoin, in any gossip system, so the schedule keeps one
 * seed standing as deployments do. It can still be paused, cut off or lose links. */
#define CHAOS_ANCHOR (CHAOS_NODES - 1)

/* The schedule's own generator, separate from the simulator's so faults stay a function of the
 * test seed alone. */
static uint64_t chaos_next(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t chaos_below(uint64_t *x, uint32_t n)
{
    return (uint32_t)(chaos_next(x) % n);
}

static uint32_t count_state(const rumor_sim *s, rumor_sim_node_state st)
{
    uint32_t c = 0;
    for (uint32_t i = 0; i < rumor_sim_nodes(s); i++)
        c += rumor_sim_node_state_of(s, i) == st;
    return c;
}

static void random_split(rumor_sim *s, uint64_t *x, uint64_t heal_at)
{
    uint16_t groups[CHAOS_NODES];
    for (uint32_t i = 0; i < CHAOS_NODES; i++)
        groups[i] = (uint16_t)chaos_below(x, 2);
    assert_int_equal(rumor_sim_partition(s, groups), 0);
    rumor_sim_fault heal = {.kind = RUMOR_SIM_FAULT_HEAL};
    assert_int_equal(rumor_sim_schedule(s, heal_at, &heal), 0);
}

static void restart(rumor_sim *s, uint64_t *x, uint32_t node)
{
    if (node == CHAOS_ANCHOR || rumor_sim_node_restart(s, node, chaos_below(x, 2), node) != 0)
        return;
    uint32_t seeds[3] = {CHAOS_ANCHOR, chaos_below(x, CHAOS_NODES), chaos_below(x, CHAOS_NODES)};
    (void)rumor_sim_node_join(s, node, seeds, 3);
}

/* One random action at the current time. Actions on nodes in the wrong state do nothing. */
static void chaos_step(rumor_sim *s, uint64_t *x)
{
    uint32_t node = chaos_below(x, CHAOS_NODES);
    uint32_t down = count_state(s, RUMOR_SIM_CRASHED) + count_state(s, RUMOR_SIM_GONE);
    switch (chaos_below(x, 8)) {
    case 0:
        if (down < CHAOS_NODES / 4 && node != CHAOS_ANCHOR)
            (void)rumor_sim_node_crash(s, node);
        break;
    case 1:
    case 2:
        restart(s, x, node);
        break;
    case 3:
        (void)rumor_sim_node_pause(s, node, 1000 + chaos_below(x, 15000));
        break;
    case 4:
        if (down < CHAOS_NODES / 4 && node != CHAOS_ANCHOR)
            (void)rumor_sim_node_leave(s, node);
        break;
    case 5:
        random_split(s, x, rumor_sim_now(s) + 5000 + chaos_below(x, 40000));
        break;
    case 6:
        (void)rumor_sim_link_block(s, node, chaos_below(x, CHAOS_NODES), true);
        break;
    default:
        break; /* a quiet period */
    }
}

static void chaos_run(uint64_t seed)
{
    rumor_sim_options o;
    rumor_sim_options_default(&o, RUMOR_PROFILE_LOCAL);
    o.nodes = CHAOS_NODES;
    o.seed = seed;
    o.loss = 0.02;
    o.dup = 0.01;
    o.jitter_ms = 4;
    rumor_sim *s = h_sim_new_opts(&o);
    uint64_t x = seed;
    h_start_cluster(s, CHAOS_NODES, RUMOR_SIM_SEED_RANDOM, 2000);
    h_run(s, 20000);
    while (rumor_sim_now(s) < CHAOS_FAULT_MS) {
        chaos_step(s, &x);
        h_run(s, 1000 + chaos_below(&x, 9000));
    }
    rumor_sim_heal(s);
    /* Pauses end within 16 s; heal scheduled later than now is harmless. */
    uint64_t took = h_run_until_converged(s, CHAOS_QUIET_MS);
    rumor_sim_metrics m;
    rumor_sim_metrics_get(s, &m);
    if (took == UINT64_MAX)
        h_dump_disagreement(s, 20);
    h_check(s, took != UINT64_MAX,
            "seed %" PRIu64 ": %u running nodes do not agree %u s after the faults stopped", seed,
            rumor_sim_live_count(s), CHAOS_QUIET_MS / 1000);
    h_note("seed %" PRIu64 ": %u running, %" PRIu64 " crashes; FAILED about up nodes: %" PRIu64
           " same side, %" PRIu64 " across a split, %" PRIu64 " while paused; agreed %" PRIu64
           " ms after the faults stopped",
           seed, rumor_sim_live_count(s), m.crashes, m.false_positives, m.partition_failures,
           m.paused_failures, took);
    rumor_sim_del(s);
}

static void test_chaos_seeds(void **state)
{
    (void)state;
    const char *one = getenv("RUMOR_SIM_SEED");
    if (one && *one) {
        chaos_run(h_seed(0));
        return;
    }
    const char *k = getenv("RUMOR_SIM_SEEDS");
    uint64_t seeds = k && *k ? strtoull(k, NULL, 10) : 32;
    for (uint64_t seed = 100; seed < 100 + seeds; seed++)
        chaos_run(seed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chaos_seeds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
