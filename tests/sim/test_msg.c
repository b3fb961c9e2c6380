/*
 * User events and queries at scale: in a formed cluster of 120 nodes under 5 % datagram loss,
 * several user events from different nodes reach every node exactly once; then, with three
 * nodes crashed unnoticed, a query to every node reaches every live node once, each answers,
 * and the asker's final counts agree with the acks and responses it reported and name the
 * crashed nodes among the silent. A burst of 32 queries asked at one instant reaches every
 * member of 16 (answers to the asker must not carry the queries' retransmit budget away).
 */
#include "helper_sim.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODES   120u
#define EVENTS  5u
#define ASKER   5u
#define CRASHED 3u

typedef struct seen {
    uint32_t user[NODES][EVENTS]; /* RUMOR_EVENT_USER per node and event */
    uint64_t user_at[NODES][EVENTS];
    uint32_t query[NODES];                 /* RUMOR_EVENT_QUERY per node */
    uint8_t acked[NODES], answered[NODES]; /* at the asker, per responder */
    uint32_t acks, responses, done;
    uint64_t query_id;
    rumor_query_result result;
    bool bad; /* an event that should not exist */
} seen;

static int node_of(const char *name)
{
    unsigned i;
    return sscanf(name, "node-%u", &i) == 1 && i < NODES ? (int)i : -1;
}

static void on_event(rumor_sim *s, uint32_t node, const rumor_event *ev, void *ud)
{
    seen *w = ud;
    unsigned k;
    switch (ev->type) {
    case RUMOR_EVENT_USER:
        if (sscanf(ev->msg_name, "event-%u", &k) != 1 || k >= EVENTS) {
            w->bad = true;
            return;
        }
        w->user[node][k]++;
        w->user_at[node][k] = ev->at_ms;
        break;
    case RUMOR_EVENT_QUERY: {
        w->query[node]++;
        char answer[32];
        int len = snprintf(answer, sizeof(answer), "node-%u", node);
        rumor_node *n = rumor_sim_node(s, node);
        if (rumor_node_query_respond(n, ev->query_id, answer, (size_t)len, rumor_sim_now(s)) != 0)
            w->bad = true;
        break;
    }
    case RUMOR_EVENT_QUERY_ACK:
    case RUMOR_EVENT_QUERY_RESPONSE: {
        int from = node_of(ev->member.name);
        if (node != ASKER || ev->query_id != w->query_id || from < 0) {
            w->bad = true;
            return;
        }
        uint8_t *flag = ev->type == RUMOR_EVENT_QUERY_ACK ? &w->acked[from] : &w->answered[from];
        if (*flag)
            w->bad = true; /* reported twice */
        *flag = 1;
        if (ev->type == RUMOR_EVENT_QUERY_ACK)
            w->acks++;
        else
            w->responses++;
        if (ev->type == RUMOR_EVENT_QUERY_RESPONSE &&
            (ev->payload_len != strlen(ev->member.name) ||
             memcmp(ev->payload, ev->member.name, ev->payload_len) != 0))
            w->bad = true;
        break;
    }
    case RUMOR_EVENT_QUERY_DONE:
        w->done++;
        w->result = ev->query;
        break;
    default:
        break;
    }
}

static bool all_delivered(const seen *w, const rumor_sim *s)
{
    for (uint32_t i = 0; i < NODES; i++)
        for (uint32_t k = 0; k < EVENTS; k++)
            if (rumor_sim_node(s, i) && w->user[i][k] == 0)
                return false;
    return true;
}

static void test_events_and_query(void **state)
{
    (void)state;
    static seen w;
    memset(&w, 0, sizeof(w));
    rumor_sim_options o;
    rumor_sim_options_default(&o, RUMOR_PROFILE_LAN);
    o.seed = h_seed(71);
    o.nodes = NODES;
    o.loss = 0.05;
    o.event_fn = on_event;
    o.event_ud = &w;
    rumor_sim *s = h_sim_new_opts(&o);
    assert_int_equal(rumor_sim_warm_start(s), 0);
    h_run(s, 3000);

    /* Five events from five nodes, 300 ms apart. */
    static const uint32_t from[EVENTS] = {0, 17, 42, 77, 119};
    uint64_t sent_at[EVENTS];
    for (uint32_t k = 0; k < EVENTS; k++) {
        char name[16], payload[32];
        snprintf(name, sizeof(name), "event-%u", k);
        int len = snprintf(payload, sizeof(payload), "payload of %u", k);
        sent_at[k] = rumor_sim_now(s);
        h_check(s,
                rumor_node_event(rumor_sim_node(s, from[k]), name, payload, (size_t)len,
                                 rumor_sim_now(s)) == 0,
                "event %u refused", k);
        rumor_sim_poke(s, from[k]);
        h_run(s, 300);
    }
    uint64_t waited = 0;
    while (!all_delivered(&w, s) && waited < 60000) {
        h_run(s, 100);
        waited += 100;
    }
    h_check(s, all_delivered(&w, s), "an event did not reach every node in 60 s");
    uint64_t slowest = 0;
    for (uint32_t i = 0; i < NODES; i++)
        for (uint32_t k = 0; k < EVENTS; k++)
            if (w.user_at[i][k] - sent_at[k] > slowest)
                slowest = w.user_at[i][k] - sent_at[k];
    /* Time for gossip to hand over every duplicate it still holds, and for push-pulls. */
    h_run(s, 30000);
    for (uint32_t i = 0; i < NODES; i++)
        for (uint32_t k = 0; k < EVENTS; k++)
            h_check(s, w.user[i][k] == 1, "node-%u saw event %u %u times", i, k, w.user[i][k]);
    h_check(s, !w.bad, "an unexpected user event");

    /* Three nodes crash; the query goes out before anyone notices. */
    for (uint32_t c = 0; c < CRASHED; c++)
        assert_int_equal(rumor_sim_node_crash(s, 30 + c), 0);
    rumor_node *asker = rumor_sim_node(s, ASKER);
    rumor_query_params p = {0};
    p.request_ack = true;
    uint64_t asked = rumor_sim_now(s);
    h_check(s, rumor_node_query(asker, "who", NULL, 0, &p, &w.query_id, asked) == 0,
            "query refused");
    rumor_query_result r;
    h_check(s, rumor_node_query_result(asker, w.query_id, &r) == 0, "no query result");
    /* Serf's default: 200 ms x 16 x ceil(log10(121)). */
    h_check(s, r.deadline_ms == asked + 9600, "deadline %" PRIu64 " ms after asking",
            r.deadline_ms - asked);
    h_check(s, r.matched == NODES, "%u matched", r.matched);
    rumor_sim_poke(s, ASKER);
    h_run(s, r.deadline_ms - asked);
    h_check(s, w.done == 1, "query done %u times", w.done);
    h_check(s, !w.bad, "an unexpected query event");
    uint32_t live = 0;
    for (uint32_t i = 0; i < NODES; i++) {
        bool up = rumor_sim_node(s, i) != NULL;
        live += up;
        h_check(s, w.query[i] == (up ? 1u : 0u), "node-%u saw the query %u times", i, w.query[i]);
    }
    /* The final counts are the acks and responses reported, and only the silent are missing. */
    rumor_query_result f = w.result;
    h_check(s, f.done && f.matched == NODES && f.acks == w.acks && f.responses == w.responses,
            "done: matched %u acks %u/%u responses %u/%u", f.matched, f.acks, w.acks, f.responses,
            w.responses);
    h_check(s, f.no_response == NODES - w.responses && f.no_ack == NODES - w.acks,
            "done: %u without response, %u without ack", f.no_response, f.no_ack);
    /* Loss takes 5 % of the answers at most twice over; the crashed never answer. */
    h_check(s, w.responses >= live * 9 / 10 && w.responses <= live, "%u responses from %u live",
            w.responses, live);
    const char *names[NODES];
    size_t missing = 0;
    h_check(s,
            rumor_node_query_missing(asker, w.query_id, false, names, NODES, &missing) == 0 &&
                missing == f.no_response,
            "%zu missing listed", missing);
    uint32_t crashed_listed = 0;
    for (size_t i = 0; i < missing; i++) {
        int m = node_of(names[i]);
        h_check(s, m >= 0 && !w.answered[m], "%s listed missing but answered", names[i]);
        crashed_listed += m >= 30 && m < 30 + (int)CRASHED;
    }
    h_check(s, crashed_listed == CRASHED, "%u crashed nodes listed missing", crashed_listed);
    rumor_sim_metrics m;
    rumor_sim_metrics_get(s, &m);
    printf("[ sim      ] %u nodes, 5%% loss: %u events everywhere once, slowest %.2f s; query: "
           "%u matched, %u acks, %u responses, %u silent (%u crashed); %.0f virtual s, %" PRIu64
           " datagrams\n",
           NODES, EVENTS, (double)slowest / 1000.0, f.matched, f.acks, f.responses, f.no_response,
           CRASHED, (double)m.virtual_ms / 1000.0, m.datagrams);
    rumor_sim_del(s);
}

/* A burst of queries asked at one instant (the agent's 32 waiting queries): every member sees
 * and acks each, on a lossless network, in the local profile the integration tests use. */
#define BURST_NODES   16u
#define BURST_QUERIES 32u

typedef struct burst {
    uint32_t seen[BURST_NODES];
    uint32_t acks[BURST_QUERIES];
    uint64_t ids[BURST_QUERIES];
} burst;

static void burst_event(rumor_sim *s, uint32_t node, const rumor_event *ev, void *ud)
{
    (void)s;
    burst *b = ud;
    if (ev->type == RUMOR_EVENT_QUERY)
        b->seen[node]++;
    if (ev->type == RUMOR_EVENT_QUERY_ACK && node == 0)
        for (uint32_t k = 0; k < BURST_QUERIES; k++)
            if (b->ids[k] == ev->query_id)
                b->acks[k]++;
}

static void burst_settings(rumor_settings *st, uint32_t node, void *ud)
{
    (void)node;
    (void)ud;
    st->retransmit_mult = 4;
}

static void test_query_burst(void **state)
{
    (void)state;
    static burst b;
    memset(&b, 0, sizeof(b));
    rumor_sim_options o;
    rumor_sim_options_default(&o, RUMOR_PROFILE_LOCAL);
    o.seed = h_seed(5);
    o.nodes = BURST_NODES;
    o.event_fn = burst_event;
    o.event_ud = &b;
    o.settings_fn = burst_settings;
    rumor_sim *s = h_sim_new_opts(&o);
    assert_int_equal(rumor_sim_warm_start(s), 0);
    h_run(s, 3000);
    rumor_node *asker = rumor_sim_node(s, 0);
    rumor_query_params p = {0};
    p.request_ack = true;
    p.timeout_ms = 3000;
    for (uint32_t k = 0; k < BURST_QUERIES; k++)
        h_check(s, rumor_node_query(asker, "burst", NULL, 0, &p, &b.ids[k], rumor_sim_now(s)) == 0,
                "query %u refused", k);
    rumor_sim_poke(s, 0);
    h_run(s, 3500);
    for (uint32_t i = 0; i < BURST_NODES; i++)
        h_check(s, b.seen[i] == BURST_QUERIES, "node-%u saw %u of %u queries", i, b.seen[i],
                BURST_QUERIES);
    for (uint32_t k = 0; k < BURST_QUERIES; k++)
        h_check(s, b.acks[k] == BURST_NODES, "query %u: %u acks", k, b.acks[k]);
    rumor_sim_del(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_and_query),
        cmocka_unit_test(test_query_burst),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
