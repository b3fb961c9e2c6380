/* Recording one node's inputs (rumor-sim --record) and replaying them (src/sim/sim_trace.h, the
 * engine of bench/bench_trace): a replay reproduces every output checkpoint the simulator wrote,
 * across a crash and restart of the recorded node, with sealing and identities; recording does
 * not change the run; a changed input byte or a cut file is caught. */
#include "helper_sim.h"

#include "sim_trace.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 20 nodes, 30 virtual seconds: joins, two crashes and restarts, a leave and rejoin, key-value
 * writes and user events. */
#define SCENARIO                                                                                   \
    "rumor-sim", "--nodes", "20", "--duration", "30", "--seed", "1", "--crash", "2", "--crash-at", \
        "10", "--restart-after", "5", "--leave", "1", "--leave-at", "15", "--rejoin-after", "5",   \
        "--events-per-s", "2", "--kv-writes-per-s", "2", "--kv-start", "2", "--kv-drain", "5"

static void tmp_path(char *path, size_t cap)
{
    snprintf(path, cap, "/tmp/rumor-test-trace-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
}

/* Records node 3 with `extra` options, replays the trace with hashing, and checks it. */
static void record_and_replay(char **extra, int nextra, bool want_signed, bool want_sealed,
                              uint64_t min_lives)
{
    char path[64], out[16384], seed[16];
    sim_trace t;
    char err[256];
    /* Which nodes crash is the simulator's random choice: when the recorded node must live
     * more than once, take the first seed (a later --seed wins) that crashes it. */
    for (unsigned s = 1;; s++) {
        assert_true(s <= 64);
        tmp_path(path, sizeof(path));
        snprintf(seed, sizeof(seed), "%u", s);
        char *base[] = {SCENARIO, "--record", path, "--record-node", "3", "--seed", seed};
        char *argv[64];
        int argc = 0;
        for (size_t k = 0; k < sizeof(base) / sizeof(base[0]); k++)
            argv[argc++] = base[k];
        for (int k = 0; k < nextra; k++)
            argv[argc++] = extra[k];
        assert_int_equal(h_cli(out, sizeof(out), argc, argv), 0);
        assert_non_null(strstr(out, "\"violation\":null"));
        if (sim_trace_load(&t, path, err, sizeof(err)) != 0)
            fail_msg("%s", err);
        unlink(path);
        if (t.counts[SIM_TR_NEW] >= min_lives)
            break;
        sim_trace_free(&t);
    }
    assert_int_equal(t.node, 3);
    assert_non_null(strstr(t.note, "--record-node 3"));
    sim_replay_result r;
    if (sim_trace_replay(&t, true, NULL, &r) != 0)
        fail_msg("replay failed: %s", r.error);
    if (r.diverged_at != SIZE_MAX)
        fail_msg("replay diverged at record %zu of %zu (kind %u, t=%llu ms)", r.diverged_at, t.n,
                 t.v[r.diverged_at].kind, (unsigned long long)t.v[r.diverged_at].now);
    assert_int_equal(r.checkpoints, t.counts[SIM_TR_OUTPUT]);
    assert_true(r.lives >= min_lives);
    assert_int_equal(r.lives, t.counts[SIM_TR_NEW]);
    assert_true(r.packets > 300);
    assert_true(r.outputs > 300);
    assert_true(r.ticks > 100);
    assert_true(r.messages_in > r.packets);
    assert_true(r.sealed == want_sealed);
    assert_true(r.signed_ == want_signed);
    if (want_signed)
        assert_true(r.ident_verified > 0);
    else
        assert_int_equal(r.ident_verified, 0);
    h_note("node 3: %zu records, %llu lives, %llu packets, %llu messages, %llu outputs, %llu "
           "verifications: every one of %llu checkpoints reproduced",
           t.n, (unsigned long long)r.lives, (unsigned long long)r.packets,
           (unsigned long long)r.messages_in, (unsigned long long)r.outputs,
           (unsigned long long)r.ident_verified, (unsigned long long)r.checkpoints);

    /* A timed replay (no hashing) makes the same calls: same outputs, some time measured. */
    sim_replay_result q;
    assert_int_equal(sim_trace_replay(&t, false, NULL, &q), 0);
    assert_int_equal(q.outputs, r.outputs);
    assert_int_equal(q.messages_in, r.messages_in);

    /* One changed byte (the first of the header) in a delivered datagram that the node
     * answered: the replay notices. */
    uint64_t seen = 0;
    bool changed = false;
    for (size_t k = 0; k + 1 < t.n && !changed; k++) {
        if (t.v[k].kind == SIM_TR_OUTPUT)
            memcpy(&seen, t.v[k].p, 8);
        uint64_t after;
        if (k > t.n / 2 && t.v[k].kind == SIM_TR_RECV && t.v[k + 1].kind == SIM_TR_OUTPUT &&
            (memcpy(&after, t.v[k + 1].p, 8), after > seen)) {
            uint8_t *addr_len = (uint8_t *)t.v[k].p;
            addr_len[1 + addr_len[0]] ^= 0x5a;
            changed = true;
        }
    }
    assert_true(changed);
    assert_int_equal(sim_trace_replay(&t, true, NULL, &q), 0);
    assert_true(q.diverged_at != SIZE_MAX);
    sim_trace_free(&t);
}

static void test_plain_with_restart(void **state)
{
    (void)state;
    record_and_replay(NULL, 0, false, false, 2);
}

static void test_sealed_signed(void **state)
{
    (void)state;
    char *extra[] = {"--encrypt", "--identity", "--rotate-at", "12",
                     "--loss",    "0.05",       "--dup",       "0.05"};
    record_and_replay(extra, 8, true, true, 1);
}

static void test_warm_paused_replays(void **state)
{
    (void)state;
    char *extra[] = {"--warm", "--encrypt", "--pause", "--pause-at", "3", "--replay", "0.1"};
    record_and_replay(extra, 7, false, true, 1);
}

/* The simulator's own trace hash is the same with and without --record. */
static void test_recording_changes_nothing(void **state)
{
    (void)state;
    char path[64], a[16384], b[16384];
    tmp_path(path, sizeof(path));
    char *with[] = {SCENARIO, "--identity", "--record", path, "--record-node", "3"};
    char *without[] = {SCENARIO, "--identity"};
    assert_int_equal(h_cli(a, sizeof(a), (int)(sizeof(with) / sizeof(with[0])), with), 0);
    assert_int_equal(h_cli(b, sizeof(b), (int)(sizeof(without) / sizeof(without[0])), without), 0);
    unlink(path);
    const char *ha = strstr(a, "\"trace_hash\":"), *hb = strstr(b, "\"trace_hash\":");
    assert_non_null(ha);
    assert_non_null(hb);
    assert_memory_equal(ha, hb, 32);
}

static void test_bad_files(void **state)
{
    (void)state;
    char err[256];
    sim_trace t;
    uint8_t *junk = malloc(64);
    memset(junk, 'x', 64);
    assert_int_equal(sim_trace_parse(&t, junk, 64, err, sizeof(err)), RUMOR_ERR_MALFORMED);
    sim_trace_free(&t);
    assert_int_not_equal(sim_trace_load(&t, "/nonexistent/trace", err, sizeof(err)), 0);
    sim_trace_free(&t);

    /* A real trace cut in the middle of a record. */
    char path[64], out[16384];
    tmp_path(path, sizeof(path));
    char *argv[] = {"rumor-sim", "--nodes", "5", "--duration", "5", "--record", path};
    assert_int_equal(h_cli(out, sizeof(out), 7, argv), 0);
    assert_int_equal(sim_trace_load(&t, path, err, sizeof(err)), 0);
    size_t len = t.len;
    uint8_t *copy = malloc(len);
    memcpy(copy, t.data, len);
    sim_trace_free(&t);
    unlink(path);
    assert_int_equal(sim_trace_parse(&t, copy, len - 3, err, sizeof(err)), RUMOR_ERR_MALFORMED);
    assert_non_null(strstr(err, "truncated"));
    sim_trace_free(&t);

    char *bad[] = {"rumor-sim", "--nodes", "5", "--record", "/tmp/x", "--record-node", "5"};
    assert_int_equal(h_cli(out, sizeof(out), 7, bad), 2);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_with_restart),
        cmocka_unit_test(test_sealed_signed),
        cmocka_unit_test(test_warm_paused_replays),
        cmocka_unit_test(test_recording_changes_nothing),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
