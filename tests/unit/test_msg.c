/*
 * User events and queries on the unit-test network: an event reaches every node exactly once
 * (duplicates, loss), Lamport ordering and witnessing (also through push-pull), the stale
 * window, limits; queries filtered by name and by tag, acks and responses collected once per
 * member, the deadline with the count and names of who stayed silent, refused responses, the
 * cap on queries held, and hostile messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/wire.h"
#include "helper_net.h"

#define REC_MAX 4096

typedef struct rec_ev {
    int node;
    rumor_event_type type;
    char from[RUMOR_NAME_MAX + 1];
    char name[RUMOR_EVENT_NAME_MAX + 1];
    char payload[600];
    size_t payload_len;
    uint64_t ltime, query_id, deadline, at;
    rumor_query_result q;
} rec_ev;

typedef struct rec {
    rec_ev ev[REC_MAX];
    size_t n;
    bool respond; /* answer every query with "ans-<node>" */
} rec;

static void hook(tnet *t, int node, const rumor_event *ev, void *ud)
{
    rec *r = ud;
    if (ev->type < RUMOR_EVENT_USER)
        return;
    assert_true(r->n < REC_MAX);
    rec_ev *e = &r->ev[r->n++];
    memset(e, 0, sizeof(*e));
    e->node = node;
    e->type = ev->type;
    snprintf(e->from, sizeof(e->from), "%s", ev->member.name);
    assert_int_equal(strlen(ev->msg_name), ev->msg_name_len);
    snprintf(e->name, sizeof(e->name), "%s", ev->msg_name);
    assert_true(ev->payload_len < sizeof(e->payload));
    if (ev->payload_len)
        memcpy(e->payload, ev->payload, ev->payload_len);
    e->payload_len = ev->payload_len;
    e->ltime = ev->ltime;
    e->query_id = ev->query_id;
    e->deadline = ev->deadline_ms;
    e->at = ev->at_ms;
    e->q = ev->query;
    if (r->respond && ev->type == RUMOR_EVENT_QUERY) {
        char ans[32];
        int len = snprintf(ans, sizeof(ans), "ans-%d", node);
        assert_int_equal(rumor_node_query_respond(tnet_node(t, node), ev->query_id, ans,
                                                  (size_t)len, tnet_now(t)),
                         RUMOR_OK);
    }
}

static size_t count(const rec *r, int node, rumor_event_type type, const char *name)
{
    size_t c = 0;
    for (size_t i = 0; i < r->n; i++)
        if ((node < 0 || r->ev[i].node == node) && r->ev[i].type == type &&
            (!name || strcmp(r->ev[i].name, name) == 0))
            c++;
    return c;
}

static const rec_ev *find(const rec *r, int node, rumor_event_type type, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->ev[i].node == node && r->ev[i].type == type &&
            (!name || strcmp(r->ev[i].name, name) == 0))
            return &r->ev[i];
    return NULL;
}

/* "role=db;zone=a": true when `key` is present with exactly `value`. */
static bool match_tags(void *ud, const uint8_t *meta, size_t meta_len, const char *key,
                       const char *value)
{
    (void)ud;
    char want[RUMOR_TAG_KEY_MAX + RUMOR_TAG_VALUE_MAX + 2];
    int wl = snprintf(want, sizeof(want), "%s=%s", key, value);
    size_t i = 0;
    while (i < meta_len) {
        size_t j = i;
        while (j < meta_len && meta[j] != ';')
            j++;
        if (j - i == (size_t)wl && memcmp(meta + i, want, (size_t)wl) == 0)
            return true;
        i = j + 1;
    }
    return false;
}

static tnet *cluster(int n, uint64_t seed, rec *r)
{
    tnet *t = tnet_new(n, RUMOR_PROFILE_LOCAL, seed);
    for (int i = 0; i < n; i++)
        tnet_settings(t, i)->query_tag_match = match_tags;
    for (int i = 0; i < n; i++)
        tnet_start(t, i);
    for (int i = 1; i < n; i++)
        tnet_join(t, i, 0);
    tnet_run(t, tnet_now(t) + 3000);
    for (int i = 0; i < n; i++) {
        rumor_stats st;
        rumor_node_stats(tnet_node(t, i), &st);
        assert_int_equal(st.members[RUMOR_MEMBER_ALIVE], n);
    }
    memset(r, 0, sizeof(*r));
    tnet_set_event_hook(t, hook, r);
    return t;
}

static int event(tnet *t, int i, const char *name, const char *payload)
{
    int rc = rumor_node_event(tnet_node(t, i), name, payload, strlen(payload), tnet_now(t));
    tnet_poll(t, i);
    return rc;
}

static int query(tnet *t, int i, const char *name, const char *payload, const rumor_query_params *p,
                 uint64_t *id)
{
    int rc = rumor_node_query(tnet_node(t, i), name, payload, payload ? strlen(payload) : 0, p, id,
                              tnet_now(t));
    tnet_poll(t, i);
    return rc;
}

static rumor_stats stats(tnet *t, int i)
{
    rumor_stats st;
    rumor_node_stats(tnet_node(t, i), &st);
    return st;
}

/* Builds a packet with one message written by `put` and feeds it to node `to`. */
typedef struct pkt {
    uint8_t b[2048];
    buf_writer w;
} pkt;

static buf_writer *pkt_begin(pkt *p)
{
    buf_writer_init_fixed(&p->w, p->b, sizeof(p->b));
    wire_put_header(&p->w, NULL, 0, 0);
    return &p->w;
}

static int pkt_send(tnet *t, int to, int from, pkt *p)
{
    assert_false(p->w.failed);
    rumor_addr a = tnet_addr(from);
    return tnet_inject(t, to, &a, p->w.p, p->w.len);
}

static wire_str S(const char *s)
{
    return wire_str_of(s, strlen(s));
}

/* ---- user events ---- */

static void test_event_reaches_every_node_once(void **ctx)
{
    (void)ctx;
    static rec r;
    tnet *t = cluster(8, 61, &r);
    assert_int_equal(event(t, 0, "deploy", "v1"), RUMOR_OK);
    assert_int_equal(event(t, 3, "deploy", "v2"), RUMOR_OK);
    assert_int_equal(event(t, 5, "restart", ""), RUMOR_OK);
    tnet_run(t, tnet_now(t) + 3000);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(count(&r, i, RUMOR_EVENT_USER, "deploy"), 2);
        assert_int_equal(count(&r, i, RUMOR_EVENT_USER, "restart"), 1);
        const rec_ev *e = find(&r, i, RUMOR_EVENT_USER, "restart");
        assert_string_equal(e->from, "n5");
        assert_int_equal(e->payload_len, 0);
        rumor_stats st = stats(t, i);
        assert_int_equal(st.user_events_delivered, 3);
        assert_true(st.user_events_received >= (i == 0 || i == 3 || i == 5 ? 2u : 3u));
    }
    assert_int_equal(stats(t, 0).user_events_sent, 1);
    /* Gossip delivered duplicates, and they were recognized. */
    uint64_t received = 0;
    for (int i = 0; i < 8; i++)
        received += stats(t, i).user_events_received;
    assert_true(received > 3 * 8);
    /* A replayed copy is not delivered again, nor passed on. */
    const rec_ev *e = find(&r, 2, RUMOR_EVENT_USER, "restart");
    pkt p;
    wire_put_user_event(pkt_begin(&p), e->ltime, S("n5"), S("restart"), S(""));
    size_t before = r.n;
    uint32_t queued = stats(t, 2).broadcast_queue;
    assert_int_equal(pkt_send(t, 2, 5, &p), RUMOR_OK);
    assert_int_equal(r.n, before);
    assert_int_equal(stats(t, 2).broadcast_queue, queued);
    /* The same time and origin with another payload is another event. */
    wire_put_user_event(pkt_begin(&p), e->ltime, S("n5"), S("restart"), S("x"));
    assert_int_equal(pkt_send(t, 2, 5, &p), RUMOR_OK);
    assert_int_equal(count(&r, 2, RUMOR_EVENT_USER, "restart"), 2);
    tnet_free(t);
}

static void test_event_under_loss(void **ctx)
{
    (void)ctx;
    static rec r;
    tnet *t = cluster(10, 62, &r);
    tnet_set_loss(t, 0.2);
    char name[16];
    for (int k = 0; k < 6; k++) {
        snprintf(name, sizeof(name), "e%d", k);
        assert_int_equal(event(t, k, name, "payload"), RUMOR_OK);
        tnet_run(t, tnet_now(t) + 50);
    }
    tnet_run(t, tnet_now(t) + 5000);
    for (int i = 0; i < 10; i++)
        for (int k = 0; k < 6; k++) {
            snprintf(name, sizeof(name), "e%d", k);
            assert_int_equal(count(&r, i, RUMOR_EVENT_USER, name), 1);
        }
    tnet_free(t);
}

static void test_lamport_order_and_stale_window(void **ctx)
{
    (void)ctx;
    static rec r;
    tnet *t = cluster(4, 63, &r);
    /* An event sent after another was seen is later in Lamport time. */
    assert_int_equal(event(t, 1, "first", "a"), RUMOR_OK);
    tnet_run(t, tnet_now(t) + 2000);
    assert_int_equal(event(t, 2, "second", "b"), RUMOR_OK);
    tnet_run(t, tnet_now(t) + 2000);
    const rec_ev *a = find(&r, 3, RUMOR_EVENT_USER, "first");
    const rec_ev *b = find(&r, 3, RUMOR_EVENT_USER, "second");
    assert_non_null(a);
    assert_non_null(b);
    assert_true(b->ltime > a->ltime);
    /* Witnessing: a time from elsewhere moves the clock past it. */
    pkt p;
    wire_put_user_event(pkt_begin(&p), 100, S("n1"), S("far"), S(""));
    assert_int_equal(pkt_send(t, 3, 1, &p), RUMOR_OK);
    assert_int_equal(stats(t, 3).event_ltime, 101);
    assert_int_equal(event(t, 3, "next", ""), RUMOR_OK);
    assert_int_equal(find(&r, 3, RUMOR_EVENT_USER, "next")->ltime, 101);
    /* The window is 64 Lamport times behind the clock (102 now): 37 is stale, 38 is not. */
    rumor_stats before = stats(t, 3);
    wire_put_user_event(pkt_begin(&p), 37, S("n1"), S("old"), S(""));
    assert_int_equal(pkt_send(t, 3, 1, &p), RUMOR_OK);
    rumor_stats after = stats(t, 3);
    assert_int_equal(after.user_events_stale, before.user_events_stale + 1);
    assert_int_equal(after.dropped[RUMOR_DROP_STALE], before.dropped[RUMOR_DROP_STALE] + 1);
    assert_int_equal(count(&r, 3, RUMOR_EVENT_USER, "old"), 0);
    wire_put_user_event(pkt_begin(&p), 38, S("n1"), S("old"), S(""));
    assert_int_equal(pkt_send(t, 3, 1, &p), RUMOR_OK);
    assert_int_equal(count(&r, 3, RUMOR_EVENT_USER, "old"), 1);
    tnet_free(t);
}

static void test_joiner_takes_clocks_from_push_pull(void **ctx)
{
    (void)ctx;
    static rec r;
    tnet *t = tnet_new(3, RUMOR_PROFILE_LOCAL, 64);
    tnet_start(t, 0);
    tnet_start(t, 1);
    tnet_join(t, 1, 0);
    tnet_run(t, tnet_now(t) + 2000);
    memset(&r, 0, sizeof(r));
    tnet_set_event_hook(t, hook, &r);
    char name[16];
    for (int k = 0; k < 80; k++) {
        snprintf(name, sizeof(name), "e%d", k);
        assert_int_equal(event(t, 0, name, ""), RUMOR_OK);
    }
    uint64_t qid;
    assert_int_equal(rumor_node_query(tnet_node(t, 0), "q", NULL, 0, NULL, &qid, tnet_now(t)),
                     RUMOR_OK);
    tnet_poll(t, 0);
    tnet_run(t, tnet_now(t) + 2000);
    /* A node that joins now would be 80 Lamport times behind; the join's push-pull brings it
     * up, so its own first event is newer than everything, not stale for the others. */
    tnet_start(t, 2);
    tnet_join(t, 2, 0);
    tnet_run(t, tnet_now(t) + 100);
    assert_true(stats(t, 2).event_ltime >= 80);
    assert_true(stats(t, 2).query_ltime >= 1);
    uint64_t stale = stats(t, 0).user_events_stale;
    assert_int_equal(event(t, 2, "late", "x"), RUMOR_OK);
    tnet_run(t, tnet_now(t) + 3000);
    assert_int_equal(count(&r, 0, RUMOR_EVENT_USER, "late"), 1);
    assert_int_equal(count(&r, 1, RUMOR_EVENT_USER, "late"), 1);
    assert_int_equal(stats(t, 0).user_events_stale, stale);
    /* The joiner was not handed the 80 past events by the join's push-pull. */
    assert_int_equal(count(&r, 2, RUMOR_EVENT_USER, NULL), 1);
    /* Nor by any later one, whose answers carry what the window holds (repair): it remembers
     * them, so the windows agree, but does not deliver them. */
    uint64_t pp = stats(t, 2).pushpulls;
    tnet_run(t, tnet_now(t) + 40000);
    assert_true(stats(t, 2).pushpulls > pp);
    assert_int_equal(count(&r, 2, RUMOR_EVENT_USER, NULL), 1);
    tnet_free(t);
}

static void test_push_pull_repairs_missed_events(void **ctx)
{
    (void)ctx;
    static rec r;
    tnet *t = cluster(4, 75, &r);
    /* n3 hears nothing while the event is gossiped (shorter than a suspicion lasts). */
    for (int i = 0; i < 3; i++)
        tnet_cut(t, i, 3, true);
    assert_int_equal(event(t, 0, "missed", "m"), RUMOR_OK);
    tnet_run(t, tnet_now(t) + 1500);
    for (int i = 0; i < 3; i++)
        tnet_cut(t, i, 3, false);
    assert_int_equal(count(&r, 3, RUMOR_EVENT_USER, "missed"), 0);
    assert_int_equal(count(&r, 1, RUMOR_EVENT_USER, "missed"), 1);
    /* Gossip is done with it; the next push-pulls (15 s apart) bring it. */
    tnet_run(t, tnet_now(t) + 40000);
    for (int i = 0; i < 4; i++)
        assert_int_equal(count(&r, i, RUMOR_EVENT_USER, "missed"), 1);
    assert_int_equal(tnet_state(t, 0, 3), RUMOR_MEMBER_ALIVE);
    /* Clocks travel only with push-pull state, on streams: on a datagram they are refused. */
    pkt p;
    wire_put_clocks(pkt_begin(&p), 0, 1000, 1000, 0);
    assert_int_equal(pkt_send(t, 1, 2, &p), RUMOR_ERR_MALFORMED);
    assert_true(stats(t, 1).event_ltime < 1000);
    tnet_free(t);
}

static void test_event_limits(void **ctx)
{
    (void)ctx;
    static rec r;
    tnet *t = cluster(2, 65, &r);
    rumor_node *n = tnet_node(t, 0);
    uint64_t now = tnet_now(t);
    char big[600], name[RUMOR_EVENT_NAME_MAX + 2];
    memset(big, 'x', sizeof(big));
    memset(name, 'n', sizeof(name));
    name[sizeof(name) - 1] = '\0';
    rumor_stats before = stats(t, 0);
    /* Name + payload over 512 bytes: refused, nothing changes. */
    assert_int_equal(rumor_node_event(n, "e", big, 512, now), RUMOR_ERR_TOO_BIG);
    assert_int_equal(rumor_node_event(n, "", "p", 1, now), RUMOR_ERR_INVALID);
    assert_int_equal(rumor_node_event(n, NULL, "p", 1, now), RUMOR_ERR_INVALID);
    assert_int_equal(rumor_node_event(n, name, "p", 1, now), RUMOR_ERR_INVALID);
    assert_int_equal(rumor_node_event(n, "e", NULL, 3, now), RUMOR_ERR_INVALID);
    rumor_stats after = stats(t, 0);
    assert_int_equal(after.event_ltime, before.event_ltime);
    assert_int_equal(after.user_events_sent, 0);
    assert_int_equal(after.broadcast_queue, before.broadcast_queue);
    assert_int_equal(after.broadcasts_queued, before.broadcasts_queued);
    /* Exactly at the limit is fine. */
    assert_int_equal(rumor_node_event(n, "e", big, 511, now), RUMOR_OK);
    tnet_poll(t, 0);
    tnet_run(t, tnet_now(t) + 2000);
    assert_int_equal(count(&r, 1, RUMOR_EVENT_USER, "e"), 1);
    assert_int_equal(find(&r, 1, RUMOR_EVENT_USER, "e")->payload_len, 511);
    assert_int_equal(rumor_node_leave(n, tnet_now(t)), RUMOR_OK);
    assert_int_equal(rumor_node_event(n, "e", "p", 1, tnet_now(t)), RUMOR_ERR_STATE);
    tnet_free(t);
}

/* ---- queries ---- */

static void test_query_everyone_acks_and_responses(void **ctx)
{
    (void)ctx;
    static rec r;
    tnet *t = cluster(6, 66, &r);
    r.respond = true;
    rumor_node *asker = tnet_node(t, 0);
    rumor_query_params p = {0};
    p.request_ack = true;
    uint64_t id = 0;
    uint64_t start = tnet_now(t);
    assert_int_equal(rumor_node_query(asker, "uptime", "?", 1, &p, &id, start), RUMOR_OK);
    tnet_poll(t, 0);
    assert_true(id != 0);
    /* Serf's default timeout: 100 ms (local) x 16 x ceil(log10(7)). */
    rumor_query_result res;
    assert_int_equal(rumor_node_query_result(asker, id, &res), RUMOR_OK);
    assert_int_equal(res.deadline_ms, start + 1600);
    assert_int_equal(res.matched, 6);
    assert_false(res.done);
    assert_true(rumor_node_deadline(asker) <= res.deadline_ms);
    tnet_run(t, start + 1599);
    assert_int_equal(count(&r, 0, RUMOR_EVENT_QUERY_DONE, NULL), 0);
    tnet_run(t, start + 1600);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(count(&r, i, RUMOR_EVENT_QUERY, "uptime"), 1);
        const rec_ev *q = find(&r, i, RUMOR_EVENT_QUERY, "uptime");
        assert_string_equal(q->from, "n0");
        assert_int_equal(q->payload_len, 1);
    }
    assert_int_equal(count(&r, 0, RUMOR_EVENT_QUERY_ACK, NULL), 6);
    assert_int_equal(count(&r, 0, RUMOR_EVENT_QUERY_RESPONSE, NULL), 6);
    for (int i = 0; i < 6; i++) {
        char from[16], want[16];
        snprintf(from, sizeof(from), "n%d", i);
        snprintf(want, sizeof(want), "ans-%d", i);
        bool seen = false;
        for (size_t k = 0; k < r.n; k++) {
            const rec_ev *e = &r.ev[k];
            if (e->node == 0 && e->type == RUMOR_EVENT_QUERY_RESPONSE &&
                strcmp(e->from, from) == 0) {
                assert_false(seen);
                seen = true;
                assert_int_equal(e->query_id, id);
                assert_int_equal(e->payload_len, strlen(want));
                assert_memory_equal(e->payload, want, strlen(want));
            }
        }
        assert_true(seen);
    }
    const rec_ev *done = find(&r, 0, RUMOR_EVENT_QUERY_DONE, NULL);
    assert_non_null(done);
    assert_int_equal(done->query_id, id);
    assert_int_equal(done->at, start + 1600);
    assert_true(done->q.done);
    assert_int_equal(done->q.matched, 6);
    assert_int_equal(done->q.acks, 6);
    assert_int_equal(done->q.responses, 6);
    assert_int_equal(done->q.no_ack, 0);
    assert_int_equal(done->q.no_response, 0);
    size_t missing = 99;
    assert_int_equal(rumor_node_query_missing(asker, id, false, NULL, 0, &missing), RUMOR_OK);
    assert_int_equal(missing, 0);
    rumor_stats st = stats(t, 0);
    assert_int_equal(st.queries_asked, 1);
    assert_int_equal(st.query_acks_in, 6);
    assert_int_equal(st.query_responses_in, 6);
    assert_int_equal(stats(t, 3).queries_served, 1);
    assert_int_equal(stats(t, 3).query_acks_sent, 1);
    assert_int_equal(stats(t, 3).query_responses_sent, 1);
    /* Nothing more arrives for a finished query. */
    tnet_run(t, tnet_now(t) + 2000);
    assert_int_equal(count(&r, 0, RUMOR_EVENT_QUERY_DONE, NULL), 1);
    tnet_free(t);
}

static void test_query_filters_by_name_and_tag(void **ctx)
{
    (void)ctx;
    static rec r;
    tnet *t = tnet_new(6, RUMOR_PROFILE_LOCAL, 67);
    for (int i = 0; i < 6; i++)
        tnet_settings(t, i)->query_tag_match = match_tags;
    tnet_settings(t, 4)->query_tag_match = NULL; /* node 4 cannot match tags */
    for (int i = 0; i < 6; i++)
        tnet_start(t, i);
    static const char *metas[] = {"role=web", "role=web",       "role=db;zone=a",
                                  "role=web", "role=db;zone=a", "role=db;zone=b"};
    for (int i = 0; i < 6; i++)
        assert_int_equal(rumor_node_set_meta(tnet_node(t, i), (const uint8_t *)metas[i],
                                             strlen(metas[i]), tnet_now(t)),
                         RUMOR_OK);
    for (int i = 1; i < 6; i++)
        tnet_join(t, i, 0);
    tnet_run(t, tnet_now(t) + 3000);
    memset(&r, 0, sizeof(r));
    r.respond = true;
    tnet_set_event_hook(t, hook, &r);

    /* By name: n1 and n3 (n3 twice in the list), asked by n0 which is not listed. */
    const char *nodes[] = {"n3", "n1", "n3", "ghost"};
    rumor_query_params p = {0};
    p.nodes = nodes;
    p.nnodes = 4;
    p.request_ack = true;
    uint64_t id;
    assert_int_equal(rumor_node_query(tnet_node(t, 0), "by-name", NULL, 0, &p, &id, tnet_now(t)),
                     RUMOR_OK);
    tnet_poll(t, 0);
    rumor_query_result res;
    assert_int_equal(rumor_node_query_result(tnet_node(t, 0), id, &res), RUMOR_OK);
    assert_int_equal(res.matched, 2);
    tnet_run(t, res.deadline_ms);
    for (int i = 0; i < 6; i++)
        assert_int_equal(count(&r, i, RUMOR_EVENT_QUERY, "by-name"), i == 1 || i == 3);
    const rec_ev *done = find(&r, 0, RUMOR_EVENT_QUERY_DONE, NULL);
    assert_int_equal(done->q.responses, 2);
    assert_int_equal(done->q.acks, 2);
    assert_int_equal(done->q.no_response, 0);

    /* By tag: role=db matches n2, n4, n5; zone=a narrows to n2 and n4. n4 has no matcher, so
     * it stays silent, and the asker (which does see its tags) counts it missing. */
    rumor_query_tag tags[] = {{"role", "db"}, {"zone", "a"}};
    memset(&p, 0, sizeof(p));
    p.tags = tags;
    p.ntags = 2;
    p.timeout_ms = 800;
    r.n = 0;
    assert_int_equal(rumor_node_query(tnet_node(t, 1), "by-tag", "x", 1, &p, &id, tnet_now(t)),
                     RUMOR_OK);
    tnet_poll(t, 1);
    assert_int_equal(rumor_node_query_result(tnet_node(t, 1), id, &res), RUMOR_OK);
    assert_int_equal(res.matched, 2);
    assert_int_equal(res.deadline_ms, tnet_now(t) + 800);
    tnet_run(t, res.deadline_ms);
    for (int i = 0; i < 6; i++)
        assert_int_equal(count(&r, i, RUMOR_EVENT_QUERY, "by-tag"), i == 2);
    done = find(&r, 1, RUMOR_EVENT_QUERY_DONE, NULL);
    assert_non_null(done);
    assert_int_equal(done->q.matched, 2);
    assert_int_equal(done->q.responses, 1);
    assert_int_equal(done->q.acks, 0); /* not asked for */
    assert_int_equal(done->q.no_ack, 0);
    assert_int_equal(done->q.no_response, 1);
    const char *names[4];
    size_t missing = 0;
    assert_int_equal(rumor_node_query_missing(tnet_node(t, 1), id, false, names, 4, &missing),
                     RUMOR_OK);
    assert_int_equal(missing, 1);
    assert_string_equal(names[0], "n4");
    tnet_free(t);
}

static void test_query_deadline_counts_the_silent(void **ctx)
{
    (void)ctx;
    static rec r;
    tnet *t = cluster(6, 68, &r);
    r.respond = true;
    /* n5 crashes; the query goes out before anyone notices, so n5 is expected and silent. */
    tnet_crash(t, 5);
    rumor_query_params p = {0};
    p.request_ack = true;
    uint64_t id;
    assert_int_equal(rumor_node_query(tnet_node(t, 2), "ping", NULL, 0, &p, &id, tnet_now(t)),
                     RUMOR_OK);
    tnet_poll(t, 2);
    rumor_query_result res;
    assert_int_equal(rumor_node_query_result(tnet_node(t, 2), id, &res), RUMOR_OK);
    assert_int_equal(res.matched, 6);
    tnet_run(t, res.deadline_ms);
    const rec_ev *done = find(&r, 2, RUMOR_EVENT_QUERY_DONE, NULL);
    assert_non_null(done);
    assert_int_equal(done->q.matched, 6);
    assert_int_equal(done->q.acks, 5);
    assert_int_equal(done->q.responses, 5);
    assert_int_equal(done->q.no_ack, 1);
    assert_int_equal(done->q.no_response, 1);
    const char *names[8];
    size_t missing = 0;
    assert_int_equal(rumor_node_query_missing(tnet_node(t, 2), id, true, names, 8, &missing),
                     RUMOR_OK);
    assert_int_equal(missing, 1);
    assert_string_equal(names[0], "n5");
    assert_int_equal(rumor_node_query_missing(tnet_node(t, 2), id, false, names, 0, &missing),
                     RUMOR_OK);
    assert_int_equal(missing, 1);
    /* The finished query stays readable until forgotten. */
    assert_int_equal(rumor_node_query_result(tnet_node(t, 2), id, &res), RUMOR_OK);
    assert_true(res.done);
    assert_int_equal(rumor_node_query_forget(tnet_node(t, 2), id), RUMOR_OK);
    assert_int_equal(rumor_node_query_result(tnet_node(t, 2), id, &res), RUMOR_ERR_NOT_FOUND);
    assert_int_equal(rumor_node_query_forget(tnet_node(t, 2), id), RUMOR_ERR_NOT_FOUND);
    assert_int_equal(rumor_node_query_missing(tnet_node(t, 2), id, true, names, 8, &missing),
                     RUMOR_ERR_NOT_FOUND);
    tnet_free(t);
}

static void test_responses_once_and_in_time(void **ctx)
{
    (void)ctx;
    static rec r;
    tnet *t = cluster(3, 69, &r);
    rumor_query_params p = {0};
    p.timeout_ms = 1000;
    uint64_t id;
    assert_int_equal(rumor_node_query(tnet_node(t, 0), "q", NULL, 0, &p, &id, tnet_now(t)),
                     RUMOR_OK);
    tnet_poll(t, 0);
    tnet_run(t, tnet_now(t) + 300);
    const rec_ev *q1 = find(&r, 1, RUMOR_EVENT_QUERY, "q");
    const rec_ev *q2 = find(&r, 2, RUMOR_EVENT_QUERY, "q");
    assert_non_null(q1);
    assert_non_null(q2);
    rumor_node *n1 = tnet_node(t, 1);
    char big[1100];
    memset(big, 'b', sizeof(big));
    uint64_t now = tnet_now(t);
    assert_int_equal(rumor_node_query_respond(n1, q1->query_id, big, 1025, now), RUMOR_ERR_TOO_BIG);
    assert_int_equal(rumor_node_query_respond(n1, q1->query_id, NULL, 2, now), RUMOR_ERR_INVALID);
    assert_int_equal(rumor_node_query_respond(n1, 999, "a", 1, now), RUMOR_ERR_NOT_FOUND);
    assert_int_equal(rumor_node_query_respond(n1, 0, "a", 1, now), RUMOR_ERR_NOT_FOUND);
    assert_int_equal(rumor_node_query_respond(n1, q1->query_id, "one", 3, now), RUMOR_OK);
    assert_int_equal(rumor_node_query_respond(n1, q1->query_id, "two", 3, now), RUMOR_ERR_STATE);
    tnet_poll(t, 1);
    tnet_run(t, tnet_now(t) + 100);
    assert_int_equal(count(&r, 0, RUMOR_EVENT_QUERY_RESPONSE, NULL), 1);
    rumor_stats before = stats(t, 0);
    pkt pk;
    rumor_query_result res;
    assert_int_equal(rumor_node_query_result(tnet_node(t, 0), id, &res), RUMOR_OK);
    assert_int_equal(res.responses, 1);
    /* A response for an id the asker never used is dropped as stale. */
    wire_put_query_resp(pkt_begin(&pk), q1->ltime, 12345, S("n2"), 0, S("spoof"));
    assert_int_equal(pkt_send(t, 0, 2, &pk), RUMOR_OK);
    rumor_stats after = stats(t, 0);
    assert_int_equal(after.dropped[RUMOR_DROP_STALE], before.dropped[RUMOR_DROP_STALE] + 1);
    assert_int_equal(count(&r, 0, RUMOR_EVENT_QUERY_RESPONSE, NULL), 1);
    /* Past the deadline n2 may not answer any more. */
    tnet_run(t, q2->deadline);
    assert_int_equal(
        rumor_node_query_respond(tnet_node(t, 2), q2->query_id, "late", 4, tnet_now(t)),
        RUMOR_ERR_EXPIRED);
    tnet_run(t, tnet_now(t) + 2000); /* the record is purged; the error stays the same */
    assert_int_equal(
        rumor_node_query_respond(tnet_node(t, 2), q2->query_id, "late", 4, tnet_now(t)),
        RUMOR_ERR_EXPIRED);
    assert_int_equal(count(&r, 0, RUMOR_EVENT_QUERY_RESPONSE, NULL), 1);
    const rec_ev *done = find(&r, 0, RUMOR_EVENT_QUERY_DONE, NULL);
    assert_int_equal(done->q.responses, 1);
    assert_int_equal(done->q.no_response, 2); /* n2, and n0 itself (its host never answered) */
    tnet_free(t);
}

/* Duplicate acks and responses, answers from outside the matched set and for another Lamport
 * time, fed straight to the asker (the wire id is read from the asker's own gossip). */
static void test_duplicate_response_dropped(void **ctx)
{
    (void)ctx;
    static rec r;
    tnet *t = cluster(2, 70, &r);
    rumor_node *n0 = tnet_node(t, 0);
    rumor_query_params p = {0};
    p.request_ack = true;
    p.timeout_ms = 1000;
    uint64_t id;
    assert_int_equal(rumor_node_query(n0, "q", NULL, 0, &p, &id, tnet_now(t)), RUMOR_OK);
    /* The asker's QUERY leaves in the next gossip datagram: read its id there. */
    uint32_t wire_id = 0;
    uint64_t ltime = 0;
    bool found = false;
    for (int step = 0; step < 50 && !found; step++) {
        rumor_node_tick(n0, tnet_now(t) + (uint64_t)step * 10);
        rumor_datagram d;
        while (rumor_node_poll_datagram(n0, &d)) {
            buf_reader rd;
            buf_reader_init(&rd, d.data, d.len);
            wire_header h;
            wire_msg m;
            assert_int_equal(wire_header_decode(&rd, &h), 0);
            while (wire_msg_decode(&rd, &m, RUMOR_META_MAX) == 1)
                if (m.type == WIRE_QUERY) {
                    wire_id = m.u.query.id;
                    ltime = m.u.query.ltime;
                    found = true;
                }
        }
    }
    assert_true(found);
    uint64_t now = tnet_now(t) + 500;
    rumor_stats before;
    rumor_node_stats(n0, &before);
    pkt pk;
    rumor_addr from = tnet_addr(1);
    /* n1's ack and response, each delivered twice: taken once. */
    wire_put_query_resp(pkt_begin(&pk), ltime, wire_id, S("n1"), WIRE_Q_ACK, S(""));
    for (int k = 0; k < 2; k++)
        assert_int_equal(rumor_node_receive(n0, &from, pk.w.p, pk.w.len, now), RUMOR_OK);
    wire_put_query_resp(pkt_begin(&pk), ltime, wire_id, S("n1"), 0, S("hello"));
    for (int k = 0; k < 2; k++)
        assert_int_equal(rumor_node_receive(n0, &from, pk.w.p, pk.w.len, now), RUMOR_OK);
    /* A member outside the matched set may answer too, also only once. */
    wire_put_query_resp(pkt_begin(&pk), ltime, wire_id, S("newcomer"), 0, S("hi"));
    for (int k = 0; k < 2; k++)
        assert_int_equal(rumor_node_receive(n0, &from, pk.w.p, pk.w.len, now), RUMOR_OK);
    /* Same id at another Lamport time: not this query. */
    wire_put_query_resp(pkt_begin(&pk), ltime + 1, wire_id, S("n1"), 0, S("hello"));
    assert_int_equal(rumor_node_receive(n0, &from, pk.w.p, pk.w.len, now), RUMOR_OK);
    rumor_query_result res;
    assert_int_equal(rumor_node_query_result(n0, id, &res), RUMOR_OK);
    assert_int_equal(res.acks, 2); /* n0 itself and n1 */
    assert_int_equal(res.responses, 2);
    assert_int_equal(res.matched, 2);
    assert_int_equal(res.no_response, 1); /* n0's own host did not answer */
    rumor_stats st;
    rumor_node_stats(n0, &st);
    assert_int_equal(st.dropped[RUMOR_DROP_STALE], before.dropped[RUMOR_DROP_STALE] + 4);
    rumor_event ev;
    size_t responses = 0;
    while (rumor_node_poll_event(n0, &ev))
        if (ev.type == RUMOR_EVENT_QUERY_RESPONSE) {
            responses++;
            assert_int_equal(ev.query_id, id);
        }
    assert_int_equal(responses, 2);
    tnet_free(t);
}

static void test_query_limits(void **ctx)
{
    (void)ctx;
    static rec r;
    tnet *t = tnet_new(2, RUMOR_PROFILE_LOCAL, 71);
    tnet_settings(t, 0)->queries_max = 2;
    tnet_start(t, 0);
    tnet_start(t, 1);
    tnet_join(t, 1, 0);
    tnet_run(t, tnet_now(t) + 2000);
    memset(&r, 0, sizeof(r));
    tnet_set_event_hook(t, hook, &r);
    rumor_node *n = tnet_node(t, 0);
    uint64_t now = tnet_now(t), a, b, c;
    rumor_query_params p = {0};
    p.timeout_ms = 500;
    assert_int_equal(rumor_node_query(n, "a", NULL, 0, &p, &a, now), RUMOR_OK);
    tnet_poll(t, 0);
    assert_int_equal(rumor_node_query(n, "b", NULL, 0, &p, &b, now), RUMOR_OK);
    tnet_poll(t, 0);
    rumor_stats before = stats(t, 0);
    assert_int_equal(rumor_node_query(n, "c", NULL, 0, &p, &c, now), RUMOR_ERR_FULL);
    /* Bad input. */
    char big[1100];
    memset(big, 'x', sizeof(big));
    assert_int_equal(rumor_node_query(n, "c", big, 1020, &p, &c, now), RUMOR_ERR_TOO_BIG);
    assert_int_equal(rumor_node_query(n, "", NULL, 0, &p, &c, now), RUMOR_ERR_INVALID);
    assert_int_equal(rumor_node_query(n, "c", NULL, 0, &p, NULL, now), RUMOR_ERR_INVALID);
    assert_int_equal(rumor_node_query(n, "c", NULL, 5, &p, &c, now), RUMOR_ERR_INVALID);
    const char *bad_nodes[] = {""};
    rumor_query_params q = p;
    q.nodes = bad_nodes;
    q.nnodes = 1;
    assert_int_equal(rumor_node_query(n, "c", NULL, 0, &q, &c, now), RUMOR_ERR_INVALID);
    q.nnodes = 0;
    q.ntags = 1; /* tags NULL */
    assert_int_equal(rumor_node_query(n, "c", NULL, 0, &q, &c, now), RUMOR_ERR_INVALID);
    rumor_query_tag bad_tag = {"", "v"};
    q.tags = &bad_tag;
    assert_int_equal(rumor_node_query(n, "c", NULL, 0, &q, &c, now), RUMOR_ERR_INVALID);
    /* Filters count against query_bytes_max too. */
    const char *many[200];
    for (int i = 0; i < 200; i++)
        many[i] = "node-with-a-long-name";
    q.ntags = 0;
    q.nodes = many;
    q.nnodes = 200;
    assert_int_equal(rumor_node_query(n, "c", NULL, 0, &q, &c, now), RUMOR_ERR_TOO_BIG);
    rumor_stats after = stats(t, 0);
    assert_int_equal(after.query_ltime, before.query_ltime);
    assert_int_equal(after.queries_asked, 2);
    assert_int_equal(after.broadcast_queue, before.broadcast_queue);
    /* Once one has finished, a new query replaces the oldest finished one. */
    tnet_run(t, now + 500);
    assert_int_equal(count(&r, 0, RUMOR_EVENT_QUERY_DONE, NULL), 2);
    assert_int_equal(rumor_node_query(n, "c", NULL, 0, &p, &c, tnet_now(t)), RUMOR_OK);
    tnet_poll(t, 0);
    rumor_query_result res;
    assert_int_equal(rumor_node_query_result(n, a, &res), RUMOR_ERR_NOT_FOUND);
    assert_int_equal(rumor_node_query_result(n, b, &res), RUMOR_OK);
    assert_int_equal(rumor_node_query_result(n, c, &res), RUMOR_OK);
    /* A forgotten running query ends silently. */
    assert_int_equal(rumor_node_query_forget(n, c), RUMOR_OK);
    tnet_run(t, tnet_now(t) + 1000);
    assert_int_equal(count(&r, 0, RUMOR_EVENT_QUERY_DONE, NULL), 2);
    assert_int_equal(rumor_node_leave(n, tnet_now(t)), RUMOR_OK);
    assert_int_equal(rumor_node_query(n, "d", NULL, 0, &p, &c, tnet_now(t)), RUMOR_ERR_STATE);
    tnet_free(t);
}

static void test_inbound_cap(void **ctx)
{
    (void)ctx;
    static rec r;
    tnet *t = tnet_new(2, RUMOR_PROFILE_LOCAL, 72);
    tnet_settings(t, 1)->queries_inbound_max = 2;
    tnet_start(t, 0);
    tnet_start(t, 1);
    tnet_join(t, 1, 0);
    tnet_run(t, tnet_now(t) + 2000);
    memset(&r, 0, sizeof(r));
    tnet_set_event_hook(t, hook, &r);
    rumor_query_params p = {0};
    p.timeout_ms = 5000;
    uint64_t id;
    for (int i = 0; i < 3; i++)
        assert_int_equal(query(t, 0, "q", NULL, &p, &id), RUMOR_OK);
    tnet_run(t, tnet_now(t) + 1000);
    /* n1 holds two to answer; the third is counted and not handed over. */
    assert_int_equal(count(&r, 1, RUMOR_EVENT_QUERY, "q"), 2);
    assert_true(stats(t, 1).dropped[RUMOR_DROP_QUEUE_FULL] >= 1);
    assert_int_equal(count(&r, 0, RUMOR_EVENT_QUERY, "q"), 3);
    tnet_free(t);
}

static void test_lone_node_answers_itself(void **ctx)
{
    (void)ctx;
    static rec r;
    memset(&r, 0, sizeof(r));
    r.respond = true;
    tnet *t = tnet_new(1, RUMOR_PROFILE_LAN, 73);
    tnet_start(t, 0);
    tnet_set_event_hook(t, hook, &r);
    rumor_node *n = tnet_node(t, 0);
    /* LAN: 200 ms x 16 x ceil(log10(2)). */
    assert_int_equal(rumor_node_query_timeout_default(n), 3200);
    rumor_query_params p = {0};
    p.request_ack = true;
    uint64_t id, now = tnet_now(t);
    assert_int_equal(rumor_node_query(n, "self", "x", 1, &p, &id, now), RUMOR_OK);
    tnet_poll(t, 0);
    assert_true(rumor_node_deadline(n) <= now + 3200);
    tnet_run(t, now + 3200);
    const rec_ev *done = find(&r, 0, RUMOR_EVENT_QUERY_DONE, NULL);
    assert_non_null(done);
    assert_int_equal(done->at, now + 3200);
    assert_int_equal(done->q.matched, 1);
    assert_int_equal(done->q.acks, 1);
    assert_int_equal(done->q.responses, 1);
    assert_int_equal(count(&r, 0, RUMOR_EVENT_QUERY_RESPONSE, NULL), 1);
    assert_string_equal(find(&r, 0, RUMOR_EVENT_QUERY_RESPONSE, NULL)->payload, "ans-0");
    /* And it hears its own user events. */
    assert_int_equal(rumor_node_event(n, "hello", "w", 1, tnet_now(t)), RUMOR_OK);
    tnet_poll(t, 0);
    tnet_run(t, tnet_now(t) + 1000);
    assert_int_equal(count(&r, 0, RUMOR_EVENT_USER, "hello"), 1);
    tnet_free(t);
}

/* ---- hostile input ---- */

static void expect_malformed(tnet *t, pkt *p)
{
    rumor_stats before = stats(t, 0);
    assert_int_equal(pkt_send(t, 0, 1, p), RUMOR_ERR_MALFORMED);
    rumor_stats after = stats(t, 0);
    assert_int_equal(after.dropped[RUMOR_DROP_MALFORMED] + after.dropped[RUMOR_DROP_TRUNCATED],
                     before.dropped[RUMOR_DROP_MALFORMED] + before.dropped[RUMOR_DROP_TRUNCATED] +
                         1);
    assert_int_equal(after.user_events_received, before.user_events_received);
    assert_int_equal(after.queries_received, before.queries_received);
    assert_int_equal(after.event_ltime, before.event_ltime);
}

static void test_hostile_messages(void **ctx)
{
    (void)ctx;
    static rec r;
    tnet *t = cluster(2, 74, &r);
    pkt p;
    buf_writer *w;
    /* A USER_EVENT whose payload length runs past the message. */
    w = pkt_begin(&p);
    buf_put_u8(w, WIRE_USER_EVENT);
    buf_put_varint(w, 9);
    buf_put_varint(w, 1);
    buf_put_lbytes(w, "n1", 2);
    buf_put_lbytes(w, "e", 1);
    buf_put_varint(w, 200); /* payload length */
    buf_put_u8(w, 'x');
    expect_malformed(t, &p);
    /* An empty event name; a name with a NUL; a Lamport time of 2^63. */
    wire_put_user_event(pkt_begin(&p), 1, S("n1"), S(""), S("x"));
    expect_malformed(t, &p);
    wire_put_user_event(pkt_begin(&p), 1, S("n1"), wire_str_of("a\0b", 3), S("x"));
    expect_malformed(t, &p);
    wire_put_user_event(pkt_begin(&p), 1ull << 63, S("n1"), S("e"), S("x"));
    expect_malformed(t, &p);
    /* A QUERY_RESP ack with a payload. */
    wire_put_query_resp(pkt_begin(&p), 1, 1, S("n1"), WIRE_Q_ACK, S("x"));
    expect_malformed(t, &p);
    /* QUERYs with an empty tag key, a filter count larger than what follows, no address. */
    uint8_t rest[64];
    buf_writer rw;
    wire_str key = S(""), val = S("v");
    buf_writer_init_fixed(&rw, rest, sizeof(rest));
    wire_put_query_rest(&rw, NULL, 0, &key, &val, 1, S("q"), S(""));
    rumor_addr a = tnet_addr(1);
    wire_put_query(pkt_begin(&p), 1, 7, S("n1"), &a, 0, 100, wire_str_of(rw.p, rw.len));
    expect_malformed(t, &p);
    buf_writer_init_fixed(&rw, rest, sizeof(rest));
    buf_put_varint(&rw, 3); /* three node names, one present */
    buf_put_lbytes(&rw, "n0", 2);
    wire_put_query(pkt_begin(&p), 1, 7, S("n1"), &a, 0, 100, wire_str_of(rw.p, rw.len));
    expect_malformed(t, &p);
    rumor_addr none = {0, {0}};
    buf_writer_init_fixed(&rw, rest, sizeof(rest));
    wire_put_query_rest(&rw, NULL, 0, NULL, NULL, 0, S("q"), S(""));
    wire_put_query(pkt_begin(&p), 1, 7, S("n1"), &none, 0, 100, wire_str_of(rw.p, rw.len));
    expect_malformed(t, &p);
    /* A malformed message spoils the whole packet: the valid event before it is not taken. */
    w = pkt_begin(&p);
    wire_put_user_event(w, 5, S("n1"), S("ok"), S(""));
    wire_put_query_resp(w, 1, 1, S("n1"), WIRE_Q_ACK, S("x"));
    expect_malformed(t, &p);
    assert_int_equal(count(&r, 0, RUMOR_EVENT_USER, "ok"), 0);
    /* A well-formed query from a stranger is served (Serf does too) and relayed; its ack goes to
     * the address inside it. */
    buf_writer_init_fixed(&rw, rest, sizeof(rest));
    wire_put_query_rest(&rw, NULL, 0, NULL, NULL, 0, S("q"), S(""));
    wire_put_query(pkt_begin(&p), 3, 7, S("stranger"), &a, WIRE_Q_ACK, 100,
                   wire_str_of(rw.p, rw.len));
    assert_int_equal(pkt_send(t, 0, 1, &p), RUMOR_OK);
    assert_int_equal(count(&r, 0, RUMOR_EVENT_QUERY, "q"), 1);
    assert_string_equal(find(&r, 0, RUMOR_EVENT_QUERY, "q")->from, "stranger");
    assert_int_equal(stats(t, 0).query_acks_sent, 1);
    tnet_free(t);
}

static void test_window_bounds(void **ctx)
{
    (void)ctx;
    static rec r;
    tnet *t = tnet_new(2, RUMOR_PROFILE_LOCAL, 76);
    tnet_settings(t, 0)->event_buffer = 4;
    tnet_settings(t, 0)->event_bytes_max = 16;
    tnet_start(t, 0);
    tnet_start(t, 1);
    memset(&r, 0, sizeof(r));
    tnet_set_event_hook(t, hook, &r);
    /* Larger than this node's own limit: not taken (a cluster shares one limit). */
    pkt p;
    wire_put_user_event(pkt_begin(&p), 1, S("n1"), S("e"), S("0123456789abcdef"));
    assert_int_equal(pkt_send(t, 0, 1, &p), RUMOR_OK);
    assert_int_equal(stats(t, 0).dropped[RUMOR_DROP_OVERSIZE], 1);
    assert_int_equal(count(&r, 0, RUMOR_EVENT_USER, NULL), 0);
    /* A flood of distinct events at one Lamport time stops at the window's byte cap:
     * 4 times x 16 events x (2 + 128 + 16) bytes; each of these is 19 bytes. */
    size_t cap = 4u * 16u * (2u + 128u + 16u), each = 1u + 2u + 1u + 1u + 14u;
    for (int i = 0; i < 600; i++) {
        char payload[32];
        snprintf(payload, sizeof(payload), "flood-%08d", i % 100000000);
        wire_put_user_event(pkt_begin(&p), 1, S("n1"), S("e"), S(payload));
        assert_int_equal(pkt_send(t, 0, 1, &p), RUMOR_OK);
    }
    size_t taken = count(&r, 0, RUMOR_EVENT_USER, "e");
    assert_int_equal(taken, cap / each);
    assert_int_equal(stats(t, 0).dropped[RUMOR_DROP_QUEUE_FULL], 600 - taken);
    wire_put_user_event(pkt_begin(&p), 2, S("n1"), S("full"), S("0123456789"));
    assert_int_equal(pkt_send(t, 0, 1, &p), RUMOR_OK);
    assert_int_equal(count(&r, 0, RUMOR_EVENT_USER, "full"), 0);
    /* The window moves on: an event four Lamport times later takes the flood's slot, and new
     * events are taken again. */
    wire_put_user_event(pkt_begin(&p), 5, S("n1"), S("reuse"), S(""));
    assert_int_equal(pkt_send(t, 0, 1, &p), RUMOR_OK);
    wire_put_user_event(pkt_begin(&p), 6, S("n1"), S("later"), S("0123456789"));
    assert_int_equal(pkt_send(t, 0, 1, &p), RUMOR_OK);
    assert_int_equal(count(&r, 0, RUMOR_EVENT_USER, "later"), 1);
    assert_int_equal(count(&r, 0, RUMOR_EVENT_USER, "reuse"), 1);
    tnet_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_reaches_every_node_once),
        cmocka_unit_test(test_event_under_loss),
        cmocka_unit_test(test_lamport_order_and_stale_window),
        cmocka_unit_test(test_joiner_takes_clocks_from_push_pull),
        cmocka_unit_test(test_push_pull_repairs_missed_events),
        cmocka_unit_test(test_event_limits),
        cmocka_unit_test(test_query_everyone_acks_and_responses),
        cmocka_unit_test(test_query_filters_by_name_and_tag),
        cmocka_unit_test(test_query_deadline_counts_the_silent),
        cmocka_unit_test(test_responses_once_and_in_time),
        cmocka_unit_test(test_duplicate_response_dropped),
        cmocka_unit_test(test_query_limits),
        cmocka_unit_test(test_inbound_cap),
        cmocka_unit_test(test_lone_node_answers_itself),
        cmocka_unit_test(test_hostile_messages),
        cmocka_unit_test(test_window_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
