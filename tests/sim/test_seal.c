/* Encryption at scale: a sealed cluster rotates its key mid-run (install everywhere, use
 * everywhere, remove the old one, node by node) without losing a member, while an attacker on
 * the wire replays captured datagrams to their recipients and to other nodes, none of which is
 * accepted; a node restarted from a keyring that missed the rotation is kept out; a cluster in
 * which every third node lacks AES-256-GCM forms, finds crashes and rotates its key. */
#include "helper_sim.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static void rotate(rumor_sim *s, uint32_t n, uint64_t at, uint32_t old_key, uint32_t new_key)
{
    static const rumor_sim_fault_kind steps[] = {
        RUMOR_SIM_FAULT_KEY_INSTALL, RUMOR_SIM_FAULT_KEY_USE, RUMOR_SIM_FAULT_KEY_REMOVE};
    /* An operator walks the cluster three times, a few seconds per pass. */
    for (uint32_t k = 0; k < 3; k++)
        for (uint32_t i = 0; i < n; i++) {
            rumor_sim_fault f = {.kind = steps[k], .node = i, .seed = k == 2 ? old_key : new_key};
            assert_int_equal(rumor_sim_schedule(s, at + 8000u * k + 4000u * i / n, &f), 0);
        }
}

static void test_rotation_under_replay(void **state)
{
    (void)state;
    const uint32_t n = 60;
    rumor_sim_options o;
    rumor_sim_options_default(&o, RUMOR_PROFILE_LAN);
    o.nodes = n;
    o.seed = h_seed(51);
    o.encrypt = true;
    o.replay = 0.02;
    o.replay_delay_ms = 20000;
    rumor_sim *s = h_sim_new_opts(&o);
    h_start_cluster(s, n, RUMOR_SIM_SEED_RANDOM, 3000);
    h_run(s, 3000);
    h_check(s, h_run_until_converged(s, 60000) != UINT64_MAX, "no convergence");
    uint64_t at = rumor_sim_now(s) + 5000;
    rotate(s, n, at, 0, 1);
    /* One node crashes during the rotation and comes back after it with the keyring it had
     * (key 1 installed and made primary before it went down). */
    rumor_sim_fault crash = {.kind = RUMOR_SIM_FAULT_CRASH, .node = 17};
    assert_int_equal(rumor_sim_schedule(s, at + 12000, &crash), 0);
    rumor_sim_fault restart = {
        .kind = RUMOR_SIM_FAULT_RESTART, .node = 17, .bump = true, .seed = RUMOR_SIM_SEED_RANDOM};
    assert_int_equal(rumor_sim_schedule(s, at + 40000, &restart), 0);
    h_run(s, 80000);
    h_check(s, h_run_until_converged(s, 60000) != UINT64_MAX, "not whole after the rotation");

    rumor_sim_metrics m;
    rumor_sim_metrics_get(s, &m);
    h_note("seed %" PRIu64 ": %u nodes, rotation at %" PRIu64 " ms: replays injected %" PRIu64
           ", rejected %" PRIu64 " (replayed %" PRIu64 ", not_for_us %" PRIu64
           "), accepted after a restart %" PRIu64 ", false positives %" PRIu64
           ", false suspicions %" PRIu64,
           o.seed, n, at, m.replays_injected, m.replays_rejected, m.dropped_replayed,
           m.dropped_not_for_us, m.replays_accepted_after_restart, m.false_positives,
           m.false_suspicions);
    h_check(s, m.false_positives == 0, "%" PRIu64 " false failures", m.false_positives);
    h_check(s, m.false_suspicions == 0, "%" PRIu64 " false suspicions", m.false_suspicions);
    h_check(s, m.replays_injected > 200, "only %" PRIu64 " replays injected", m.replays_injected);
    /* The simulator fails the run (an invariant) on any replay accepted within the recipient's
     * life; count the outcome here as well. */
    h_check(s,
            m.replays_rejected + m.replays_limited + m.replays_accepted_after_restart ==
                m.replays_injected,
            "%" PRIu64 " of %" PRIu64 " replays accepted", m.replays_injected - m.replays_rejected,
            m.replays_injected);
    /* No packet of the cluster itself failed to open during the rotation: every replayed,
     * misdirected or unknown-key drop is one of the attacker's (replays sealed under the old
     * key and injected after its removal name a key nobody holds any more). */
    h_check(s,
            m.dropped_auth_failed == 0 &&
                m.dropped_unknown_key + m.dropped_replayed + m.dropped_not_for_us <=
                    m.replays_injected,
            "auth_failed %" PRIu64 ", unknown_key %" PRIu64 " during an orderly rotation",
            m.dropped_auth_failed, m.dropped_unknown_key);
    uint8_t k1[RUMOR_KEY_BYTES], got[RUMOR_KEY_BYTES];
    rumor_sim_key(s, 1, k1);
    for (uint32_t i = 0; i < n; i++) {
        rumor_node *nd = rumor_sim_node(s, i);
        h_check(s, nd && rumor_node_keyring_count(nd) == 1, "node-%u holds %zu keys", i,
                nd ? rumor_node_keyring_count(nd) : 0);
        assert_int_equal(rumor_node_keyring_key(nd, 0, got), 0);
        h_check(s, memcmp(got, k1, sizeof(k1)) == 0, "node-%u does not seal with key 1", i);
    }
    rumor_sim_del(s);
}

/*
 * Replays across restarts (docs/protocol.md section 3.1.4): the attacker holds captured
 * datagrams for up to 40 s, longer than nodes stay down, so many reach their recipient's next
 * life. Those name an epoch the recipient no longer has: only their PING and PING_REQ are
 * answered (the simulator fails the run on any replay taken in full). Restarts, slow and fast
 * (back before anyone noticed), cause no false failure or false suspicion, and the cluster is
 * whole again soon after each.
 */
static void test_replays_across_restarts(void **state)
{
    (void)state;
    const uint32_t n = 40;
    rumor_sim_options o;
    rumor_sim_options_default(&o, RUMOR_PROFILE_LAN);
    o.nodes = n;
    o.seed = h_seed(54);
    o.encrypt = true;
    o.replay = 0.25;
    o.replay_delay_ms = 40000;
    rumor_sim *s = h_sim_new_opts(&o);
    h_start_cluster(s, n, RUMOR_SIM_SEED_RANDOM, 2000);
    h_run(s, 2000);
    h_check(s, h_run_until_converged(s, 60000) != UINT64_MAX, "no convergence");
    h_run(s, 20000); /* traffic for the attacker to capture */
    uint64_t at = rumor_sim_now(s);
    /* Three nodes down for 15 s (found failed, then back), six back after 500 ms. Most replays
     * that cross a restart meet a window the sender's new datagrams already slid past, and are
     * refused as replayed; the ones that arrive before that meet the epoch check. */
    static const uint32_t slow[] = {3, 11, 25};
    for (size_t i = 0; i < 3; i++) {
        rumor_sim_fault crash = {.kind = RUMOR_SIM_FAULT_CRASH, .node = slow[i]};
        rumor_sim_fault back = {.kind = RUMOR_SIM_FAULT_RESTART,
                                .node = slow[i],
                                .bump = true,
                                .seed = RUMOR_SIM_SEED_RANDOM};
        assert_int_equal(rumor_sim_schedule(s, at, &crash), 0);
        assert_int_equal(rumor_sim_schedule(s, at + 15000, &back), 0);
    }
    for (uint32_t i = 30; i < 36; i++) {
        rumor_sim_fault crash = {.kind = RUMOR_SIM_FAULT_CRASH, .node = i};
        rumor_sim_fault back = {.kind = RUMOR_SIM_FAULT_RESTART,
                                .node = i,
                                .bump = true,
                                .seed = RUMOR_SIM_SEED_RANDOM};
        assert_int_equal(rumor_sim_schedule(s, at + 30000 + 2000 * (i - 30), &crash), 0);
        assert_int_equal(rumor_sim_schedule(s, at + 30500 + 2000 * (i - 30), &back), 0);
    }
    h_run(s, 75000);
    h_check(s, rumor_sim_converged(s), "not whole after the restarts");

    rumor_sim_metrics m;
    rumor_sim_metrics_get(s, &m);
    h_note("seed %" PRIu64 ": replays injected %" PRIu64 ", refused %" PRIu64
           ", answered only for liveness (stale epoch) %" PRIu64 ", stale_epoch drops %" PRIu64
           ", last rejoin %" PRIu64 " ms, false suspicions %" PRIu64,
           o.seed, m.replays_injected, m.replays_rejected, m.replays_limited, m.dropped_stale_epoch,
           m.rejoin_ms, m.false_suspicions);
    h_check(s, m.replays_limited >= 10, "only %" PRIu64 " replays crossed a restart",
            m.replays_limited);
    h_check(s, m.replays_accepted_after_restart == 0, "%" PRIu64 " replays taken in full",
            m.replays_accepted_after_restart);
    h_check(s, m.replays_rejected + m.replays_limited == m.replays_injected,
            "%" PRIu64 " of %" PRIu64 " replays accepted",
            m.replays_injected - m.replays_rejected - m.replays_limited, m.replays_injected);
    h_check(s, m.false_positives == 0, "%" PRIu64 " false failures", m.false_positives);
    h_check(s, m.false_suspicions == 0, "%" PRIu64 " false suspicions", m.false_suspicions);
    h_check(s, m.rejoin_ms != UINT64_MAX && m.rejoin_ms < 3000, "rejoin took %" PRIu64 " ms",
            m.rejoin_ms);
    rumor_sim_del(s);
}

/* A node that was down for the whole rotation restarts with only the old key: nobody opens its
 * packets and it does not get back in; the cluster counts the unknown key. */
static void test_stale_keyring_kept_out(void **state)
{
    (void)state;
    const uint32_t n = 12, late = 5;
    rumor_sim_options o;
    rumor_sim_options_default(&o, RUMOR_PROFILE_LOCAL);
    o.nodes = n;
    o.seed = h_seed(52);
    o.encrypt = true;
    rumor_sim *s = h_sim_new_opts(&o);
    h_start_cluster(s, n, 0, 1000);
    h_run(s, 1000);
    h_check(s, h_run_until_converged(s, 60000) != UINT64_MAX, "no convergence");
    assert_int_equal(rumor_sim_node_crash(s, late), 0);
    h_run(s, 30000); /* found failed */
    for (uint32_t i = 0; i < n; i++)
        if (i != late)
            for (int k = 0; k < 3; k++) {
                rumor_sim_fault_kind op = k == 0   ? RUMOR_SIM_FAULT_KEY_INSTALL
                                          : k == 1 ? RUMOR_SIM_FAULT_KEY_USE
                                                   : RUMOR_SIM_FAULT_KEY_REMOVE;
                assert_int_equal(rumor_sim_node_keyring(s, i, op, k == 2 ? 0 : 1), 0);
            }
    assert_int_equal(rumor_sim_node_restart(s, late, true, 0), 0);
    h_run(s, 30000);
    rumor_sim_metrics m;
    rumor_sim_metrics_get(s, &m);
    h_check(s, m.dropped_unknown_key > 0, "no unknown-key drops counted");
    uint32_t knows = 0;
    for (uint32_t i = 0; i < n; i++)
        if (i != late && h_table_state(s, i, late, NULL) == RUMOR_MEMBER_ALIVE)
            knows++;
    h_check(s, knows == 0, "%u nodes took the stale node back", knows);
    h_check(s, h_table_count(s, late, RUMOR_MEMBER_ALIVE) == 1, "the stale node sees others");
    /* Given the new key (its operator fixes the keyring), it is back. */
    assert_int_equal(rumor_sim_node_crash(s, late), 0);
    assert_int_equal(rumor_sim_node_keyring(s, late, RUMOR_SIM_FAULT_KEY_INSTALL, 1), 0);
    assert_int_equal(rumor_sim_node_keyring(s, late, RUMOR_SIM_FAULT_KEY_USE, 1), 0);
    assert_int_equal(rumor_sim_node_restart(s, late, true, 0), 0);
    h_check(s, h_run_until_converged(s, 60000) != UINT64_MAX, "not back with the new key");
    rumor_sim_del(s);
}

/* Every third node runs XChaCha20-Poly1305 only (as without AES-NI), the others AES-256-GCM
 * between each other: the cluster forms, finds two crashed nodes (one of each kind) failed,
 * and rotates its key, with no false failure and not one packet a recipient could not open. */
static void test_mixed_ciphers(void **state)
{
    (void)state;
    if (!crypto_aead_aes256gcm_is_available())
        skip(); /* no AES-NI here: there is nothing to mix */
    const uint32_t n = 40, aes_node = 7, xchacha_node = 9;
    rumor_sim_options o;
    rumor_sim_options_default(&o, RUMOR_PROFILE_LAN);
    o.nodes = n;
    o.seed = h_seed(54);
    o.encrypt = true;
    o.xchacha_every = 3;
    rumor_sim *s = h_sim_new_opts(&o);
    h_start_cluster(s, n, RUMOR_SIM_SEED_RANDOM, 3000);
    h_run(s, 3000);
    h_check(s, h_run_until_converged(s, 60000) != UINT64_MAX, "no convergence");
    assert_int_equal(rumor_sim_node_crash(s, aes_node), 0);
    assert_int_equal(rumor_sim_node_crash(s, xchacha_node), 0);
    h_run(s, 30000);
    h_check(s, h_all_see(s, aes_node, RUMOR_MEMBER_FAILED), "the AES node's crash not found");
    h_check(s, h_all_see(s, xchacha_node, RUMOR_MEMBER_FAILED),
            "the XChaCha node's crash not found");
    assert_int_equal(rumor_sim_node_restart(s, aes_node, true, RUMOR_SIM_SEED_RANDOM), 0);
    assert_int_equal(rumor_sim_node_restart(s, xchacha_node, true, RUMOR_SIM_SEED_RANDOM), 0);
    h_check(s, h_run_until_converged(s, 60000) != UINT64_MAX, "not whole after the restarts");
    rotate(s, n, rumor_sim_now(s) + 2000, 0, 1);
    h_run(s, 40000);
    h_check(s, h_run_until_converged(s, 60000) != UINT64_MAX, "not whole after the rotation");
    rumor_sim_metrics m;
    rumor_sim_metrics_get(s, &m);
    h_note("seed %" PRIu64 ": %u nodes, every third XChaCha-only: datagrams AES-256-GCM %" PRIu64
           ", XChaCha20-Poly1305 %" PRIu64 ", AES to an XChaCha-only node %" PRIu64
           ", false positives %" PRIu64,
           o.seed, n, m.datagrams_aesgcm, m.datagrams_xchacha, m.datagrams_aesgcm_to_xchacha,
           m.false_positives);
    h_check(s, m.false_positives == 0, "%" PRIu64 " false failures", m.false_positives);
    h_check(s, m.datagrams_aesgcm_to_xchacha == 0 && m.dropped_unknown_key == 0,
            "%" PRIu64 " AES-256-GCM datagrams sent to XChaCha-only nodes",
            m.datagrams_aesgcm_to_xchacha);
    h_check(s, m.dropped_auth_failed == 0 && m.dropped_replayed == 0 && m.dropped_not_for_us == 0,
            "sealed datagrams refused: auth %" PRIu64 ", replayed %" PRIu64, m.dropped_auth_failed,
            m.dropped_replayed);
    /* Both ciphers carry real traffic: about 4 in 9 pairs can use AES-256-GCM. */
    h_check(s, m.datagrams_aesgcm > 2000 && m.datagrams_xchacha > 2000,
            "AES %" PRIu64 ", XChaCha %" PRIu64, m.datagrams_aesgcm, m.datagrams_xchacha);
    rumor_sim_del(s);
}

/* The same seed gives the same run with encryption too (the secrets come from the seed). */
static void test_sealed_determinism(void **state)
{
    (void)state;
    uint64_t hash[2];
    for (int r = 0; r < 2; r++) {
        rumor_sim_options o;
        rumor_sim_options_default(&o, RUMOR_PROFILE_LOCAL);
        o.nodes = 16;
        o.seed = h_seed(53);
        o.encrypt = true;
        o.replay = 0.05;
        rumor_sim *s = h_sim_new_opts(&o);
        h_start_cluster(s, 16, RUMOR_SIM_SEED_RANDOM, 500);
        h_run(s, 20000);
        hash[r] = rumor_sim_trace_hash(s);
        rumor_sim_del(s);
    }
    assert_true(hash[0] == hash[1]);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotation_under_replay),
        cmocka_unit_test(test_stale_keyring_kept_out),
        cmocka_unit_test(test_mixed_ciphers),
        cmocka_unit_test(test_replays_across_restarts),
        cmocka_unit_test(test_sealed_determinism),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
