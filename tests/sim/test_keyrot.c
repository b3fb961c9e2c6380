/* Cluster-wide key rotation through the reserved key query (rumor_node_keys_query): one node
 * asks each step of a sealed cluster, every member applies it and confirms; a crashed and a
 * partitioned member are reported as not confirming; re-running the step converges; nobody is
 * lost, and a node that only holds the new key joins afterwards. The host side is the
 * simulator's (it keeps each node's keyring across restarts from RUMOR_EVENT_KEYRING_CHANGE). */
#include "helper_sim.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define NODES 40 /* slot NODES joins at the end with only the new key */

typedef struct step {
    uint64_t id;
    bool done;
    rumor_query_result res;
    uint32_t ok, refused, malformed;
    char last_error[256];
    uint32_t holders[32]; /* list: members holding key x */
    uint32_t primary[32]; /* list: members using key x as primary */
} step;

typedef struct watch {
    rumor_sim *s;
    step st;
    uint64_t user_queries; /* RUMOR_EVENT_QUERY events any host saw: must stay 0 */
    uint64_t keyring_changes;
} watch;

static int key_index(rumor_sim *s, const uint8_t *key)
{
    uint8_t k[RUMOR_KEY_BYTES];
    for (int x = 0; x < 32; x++) {
        rumor_sim_key(s, (uint32_t)x, k);
        if (memcmp(k, key, sizeof(k)) == 0)
            return x;
    }
    return -1;
}

static void on_event(rumor_sim *s, uint32_t node, const rumor_event *ev, void *ud)
{
    watch *w = ud;
    if (ev->type == RUMOR_EVENT_QUERY)
        w->user_queries++;
    if (ev->type == RUMOR_EVENT_KEYRING_CHANGE)
        w->keyring_changes++;
    if (node != 0 || ev->query_id != w->st.id)
        return;
    if (ev->type == RUMOR_EVENT_QUERY_RESPONSE) {
        rumor_keys_answer a;
        if (rumor_keys_answer_decode(ev->payload, ev->payload_len, &a) != RUMOR_OK) {
            w->st.malformed++;
        } else if (a.code != RUMOR_OK) {
            w->st.refused++;
            snprintf(w->st.last_error, sizeof(w->st.last_error), "%s", a.error);
        } else {
            w->st.ok++;
            for (size_t k = 0; k < a.nkeys; k++) {
                int x = key_index(s, a.keys + k * RUMOR_KEY_BYTES);
                if (x >= 0) {
                    w->st.holders[x]++;
                    w->st.primary[x] += k == 0;
                }
            }
        }
    } else if (ev->type == RUMOR_EVENT_QUERY_DONE) {
        w->st.done = true;
        w->st.res = ev->query;
    }
}

static uint64_t silent(watch *w);
/* Node 0 asks `op` with simulator key `key` and waits for the deadline. */
static void ask(watch *w, rumor_keys_op op, uint32_t key)
{
    uint8_t k[RUMOR_KEY_BYTES];
    rumor_sim_key(w->s, key, k);
    memset(&w->st, 0, sizeof(w->st));
    rumor_query_params p = {.timeout_ms = 3000, .request_ack = true};
    rumor_node *n0 = rumor_sim_node(w->s, 0);
    int rc = rumor_node_keys_query(n0, op, op == RUMOR_KEYS_LIST ? NULL : k, &p, &w->st.id,
                                   rumor_sim_now(w->s));
    h_check(w->s, rc == RUMOR_OK, "keys query %s: %s", rumor_keys_op_name(op), rumor_strerror(rc));
    rumor_sim_poke(w->s, 0);
    h_run(w->s, 3500);
    h_check(w->s, w->st.done, "%s: no QUERY_DONE", rumor_keys_op_name(op));
    h_note("%s key %u: %u matched, %u acks, %u confirmed, %u refused, %u silent (%#" PRIx64 ")",
           rumor_keys_op_name(op), key, w->st.res.matched, w->st.res.acks, w->st.ok, w->st.refused,
           w->st.res.no_response, silent(w));
}

static void all_confirm(watch *w, uint32_t n, const char *what)
{
    h_check(w->s,
            w->st.res.matched == n && w->st.ok == n && w->st.refused == 0 && w->st.malformed == 0 &&
                w->st.res.no_response == 0,
            "%s: %u matched, %u confirmed, %u refused (%s), %u malformed, %u silent", what,
            w->st.res.matched, w->st.ok, w->st.refused, w->st.last_error, w->st.malformed,
            w->st.res.no_response);
}

/* The names node 0 reports as silent for the last step, as a bit set of node indices. */
static uint64_t silent(watch *w)
{
    const char *names[NODES + 1];
    size_t count = 0;
    uint64_t set = 0;
    assert_int_equal(rumor_node_query_missing(rumor_sim_node(w->s, 0), w->st.id, false, names,
                                              NODES + 1, &count),
                     0);
    for (size_t i = 0; i < count && i <= NODES; i++)
        set |= 1ull << strtoul(names[i] + 5, NULL, 10);
    return set;
}

static void test_rotation_by_query(void **state)
{
    (void)state;
    rumor_sim_options o;
    rumor_sim_options_default(&o, RUMOR_PROFILE_LOCAL);
    o.nodes = NODES + 1;
    o.seed = h_seed(61);
    o.encrypt = true;
    watch w = {0};
    o.event_fn = on_event;
    o.event_ud = &w;
    rumor_sim *s = h_sim_new_opts(&o);
    w.s = s;
    h_start_cluster(s, NODES, RUMOR_SIM_SEED_RANDOM, 2000);
    h_run(s, 2000);
    h_check(s, h_run_until_converged(s, 60000) != UINT64_MAX, "no convergence");

    ask(&w, RUMOR_KEYS_INSTALL, 1);
    all_confirm(&w, NODES, "install");
    ask(&w, RUMOR_KEYS_LIST, 0);
    all_confirm(&w, NODES, "list after install");
    h_check(s, w.st.holders[0] == NODES && w.st.holders[1] == NODES && w.st.primary[0] == NODES,
            "list: key 0 on %u (primary on %u), key 1 on %u", w.st.holders[0], w.st.primary[0],
            w.st.holders[1]);
    ask(&w, RUMOR_KEYS_USE, 1);
    all_confirm(&w, NODES, "use");
    h_run(s, 2000);

    /* Node 7 crashes and node 8 is cut off just before the removal: both stay silent. */
    assert_int_equal(rumor_sim_node_crash(s, 7), 0);
    uint16_t groups[NODES + 1] = {0};
    groups[8] = 1;
    assert_int_equal(rumor_sim_partition(s, groups), 0);
    ask(&w, RUMOR_KEYS_REMOVE, 0);
    h_check(s, w.st.res.matched == NODES && w.st.ok == NODES - 2 && w.st.refused == 0,
            "remove with two members out: %u matched, %u confirmed, %u refused", w.st.res.matched,
            w.st.ok, w.st.refused);
    h_check(s, silent(&w) == ((1ull << 7) | (1ull << 8)),
            "remove: silent set %#" PRIx64 ", expected node-7 and node-8", silent(&w));
    rumor_sim_heal(s);
    /* Node 8 still holds the old key too and seals with the new one: it is back at once. The
     * removal, asked again, reaches it. */
    ask(&w, RUMOR_KEYS_REMOVE, 0);
    h_check(s, (silent(&w) & ~(1ull << 7)) == 0 && w.st.refused == 0 && w.st.ok >= NODES - 1,
            "remove again: %u of %u confirmed, silent %#" PRIx64, w.st.ok, w.st.res.matched,
            silent(&w));

    /* Node 7 comes back with the keyring it saved (key 1 primary, key 0 too), and the
     * removal converges on it as well. */
    assert_int_equal(rumor_sim_node_restart(s, 7, true, 0), 0);
    h_check(s, h_run_until_converged(s, 60000) != UINT64_MAX, "node-7 not back");
    ask(&w, RUMOR_KEYS_REMOVE, 0);
    all_confirm(&w, NODES, "remove after node-7's return");

    /* A newcomer with only the new key joins. */
    for (int k = 0; k < 3; k++)
        assert_int_equal(rumor_sim_node_keyring(s, NODES,
                                                k == 0   ? RUMOR_SIM_FAULT_KEY_INSTALL
                                                : k == 1 ? RUMOR_SIM_FAULT_KEY_USE
                                                         : RUMOR_SIM_FAULT_KEY_REMOVE,
                                                k == 2 ? 0 : 1),
                         0);
    assert_int_equal(rumor_sim_node_start_join(s, NODES, 3), 0);
    h_check(s, h_run_until_converged(s, 60000) != UINT64_MAX, "the newcomer did not get in");
    h_check(s, h_all_alive(s), "a member was lost");
    ask(&w, RUMOR_KEYS_LIST, 0);
    all_confirm(&w, NODES + 1, "final list");
    h_check(s, w.st.holders[1] == NODES + 1 && w.st.primary[1] == NODES + 1 && w.st.holders[0] == 0,
            "final list: key 1 on %u (primary on %u), key 0 on %u", w.st.holders[1],
            w.st.primary[1], w.st.holders[0]);
    h_check(s, w.user_queries == 0, "%" PRIu64 " key queries reached a host as user queries",
            w.user_queries);
    /* install, use and remove change each of the 40 nodes once. */
    h_check(s, w.keyring_changes >= 3u * NODES, "%" PRIu64 " keyring change events",
            w.keyring_changes);
    rumor_sim_metrics m;
    rumor_sim_metrics_get(s, &m);
    h_check(s, m.dropped_auth_failed == 0, "%" PRIu64 " packets failed to open",
            m.dropped_auth_failed);
    rumor_sim_del(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotation_by_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
