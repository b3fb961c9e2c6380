/*
 * Failure detection with literal time (SWIM §4.1, §4.3; Lifeguard §IV): hand-driven nodes whose
 * every outgoing datagram is captured and decoded, and whose peers are either scripted (answer
 * pings or stay silent) or real engine nodes.
 *
 * LAN profile: probe interval 1000 ms, probe timeout 500 ms, k = 3 indirect checks, suspicion
 * mult 4 (k = 2 expected confirmations), max mult 6, awareness max 8. With five live members the
 * suspicion timeout runs from max = 6 × 4 × 1 × 1000 = 24 s down to min = 4 s.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/wire.h"
#include "helper_net.h"
#include "rumor.h"

#define MAXD   1024
#define DBYTES 2048

typedef struct dgram {
    uint64_t at;
    int to; /* index of the destination address */
    size_t len;
    uint8_t b[DBYTES];
} dgram;

typedef struct outbox {
    dgram d[MAXD];
    size_t n;
} outbox;

/* Peers: which node indices answer a PING addressed to them (scripted peers only). */
typedef struct script {
    bool answers[16];
} script;

static outbox box; /* big: static storage */

static int idx_of(const rumor_addr *a)
{
    return a->len == 4 ? a->bytes[2] << 8 | a->bytes[3] : -1;
}

static wire_str S(const char *s)
{
    return wire_str_of(s, strlen(s));
}

static bool str_is(wire_str s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

static rumor_node *make(const char *name, int idx, uint64_t now, uint32_t indirect)
{
    rumor_settings s;
    rumor_settings_default(&s, RUMOR_PROFILE_LAN);
    s.name = name;
    s.addr = tnet_addr(idx);
    s.seed = 1234 + (uint64_t)idx;
    s.indirect_checks = indirect;
    s.stream_fallback = false;
    s.pushpull_interval_ms = 0;
    s.reconnect_interval_ms = 0;
    rumor_node *n;
    assert_int_equal(rumor_node_new(&n, &s, now), RUMOR_OK);
    return n;
}

/* Tells `n` that the members named in `names` (at indices 1, 2, ...) are alive at inc 0. */
static void teach(rumor_node *n, const char *const *names, const int *idx, int count, uint64_t now)
{
    uint8_t b[1400];
    buf_writer w;
    buf_writer_init_fixed(&w, b, sizeof(b));
    wire_put_header(&w, NULL, 0, 0);
    for (int i = 0; i < count; i++) {
        rumor_addr a = tnet_addr(idx[i]);
        wire_put_alive(&w, 0, S(names[i]), &a, S(""));
    }
    rumor_addr from = tnet_addr(idx[0]);
    assert_int_equal(rumor_node_receive(n, &from, b, w.len, now), RUMOR_OK);
}

static void inject(rumor_node *n, int from_idx, const uint8_t *b, size_t len, uint64_t now)
{
    rumor_addr from = tnet_addr(from_idx);
    assert_int_equal(rumor_node_receive(n, &from, b, len, now), RUMOR_OK);
}

static void inject_ack(rumor_node *n, int from_idx, uint8_t type, uint32_t seq, uint64_t now)
{
    uint8_t b[32];
    buf_writer w;
    buf_writer_init_fixed(&w, b, sizeof(b));
    wire_put_header(&w, NULL, 0, 0);
    wire_put_ack(&w, type, seq);
    inject(n, from_idx, b, w.len, now);
}

static void inject_accuse(rumor_node *n, int from_idx, uint8_t type, uint32_t inc, const char *name,
                          const char *accuser, uint64_t now)
{
    uint8_t b[300];
    buf_writer w;
    buf_writer_init_fixed(&w, b, sizeof(b));
    wire_put_header(&w, NULL, 0, 0);
    wire_put_accuse(&w, type, inc, S(name), S(accuser));
    inject(n, from_idx, b, w.len, now);
}

/* Iterates the messages of datagram `d`: call with *off = 0 first. */
static bool next_msg(const dgram *d, size_t *off, wire_msg *m)
{
    buf_reader r;
    buf_reader_init(&r, d->b, d->len);
    if (*off == 0) {
        wire_header h;
        assert_int_equal(wire_header_decode(&r, &h), 0);
    } else {
        r.off = *off;
    }
    int rc = wire_msg_decode(&r, m, RUMOR_META_MAX);
    assert_true(rc >= 0);
    *off = r.off;
    return rc == 1;
}

/* Finds the first message of `type` sent at or after box.d[*from]; returns its datagram. */
static const dgram *find(size_t *from, uint8_t type, wire_msg *m)
{
    for (; *from < box.n; (*from)++) {
        size_t off = 0;
        while (next_msg(&box.d[*from], &off, m))
            if (m->type == type)
                return &box.d[(*from)++];
    }
    return NULL;
}

static size_t count_type(size_t from, uint8_t type)
{
    size_t c = 0;
    wire_msg m;
    while (find(&from, type, &m))
        c++;
    return c;
}

/* Drains `n` into the box; scripted peers answer the pings addressed to them at once. */
static void collect(rumor_node *n, uint64_t now, const script *sc)
{
    rumor_datagram dg;
    size_t first = box.n;
    while (rumor_node_poll_datagram(n, &dg)) {
        assert_true(box.n < MAXD);
        assert_true(dg.len <= DBYTES);
        dgram *d = &box.d[box.n++];
        d->at = now;
        d->to = idx_of(&dg.to);
        d->len = dg.len;
        memcpy(d->b, dg.data, dg.len);
    }
    rumor_stream_op op;
    while (rumor_node_poll_stream(n, &op)) {
    }
    rumor_event ev;
    while (rumor_node_poll_event(n, &ev)) {
    }
    if (!sc)
        return;
    for (size_t i = first; i < box.n; i++) {
        size_t off = 0;
        wire_msg m;
        const dgram *d = &box.d[i];
        while (next_msg(d, &off, &m))
            if (m.type == WIRE_PING && d->to >= 0 && d->to < 16 && sc->answers[d->to])
                inject_ack(n, d->to, WIRE_ACK, m.u.ping.seq, now);
    }
}

/* Answers every PING captured since box.d[mark], as its target would. */
static void ack_pings_since(rumor_node *n, size_t mark, uint64_t now)
{
    wire_msg m;
    const dgram *d;
    while ((d = find(&mark, WIRE_PING, &m)) != NULL)
        inject_ack(n, d->to, WIRE_ACK, m.u.ping.seq, now);
}

/* Ticks `n` at each deadline up to `until`; returns the new now. */
static uint64_t run(rumor_node *n, uint64_t now, uint64_t until, const script *sc)
{
    for (int guard = 0; guard < 100000; guard++) {
        uint64_t d = rumor_node_deadline(n);
        if (d <= now)
            d = now + 1; /* work pending at `now` was done by the last tick */
        if (d > until)
            return until;
        now = d;
        rumor_node_tick(n, now);
        collect(n, now, sc);
    }
    fail_msg("run: no progress");
    return now;
}

static int state_of(rumor_node *n, const char *name)
{
    rumor_member m;
    if (rumor_node_member_find(n, name, &m) != RUMOR_OK)
        return -1;
    return (int)m.state;
}

static const char *const peer_names[] = {"a", "b", "c", "d"};
static const int peer_idx[] = {1, 2, 3, 4};

static void test_unanswered_ping_asks_k_members(void **ctx)
{
    (void)ctx;
    for (uint32_t k = 2; k <= 3; k++) {
        box.n = 0;
        uint64_t now = 1000;
        rumor_node *p = make("p", 0, now, k);
        teach(p, peer_names, peer_idx, 4, now);
        collect(p, now, NULL);
        script silent = {{false}};
        now = run(p, now, now + 1000, &silent); /* the first probe starts within an interval */
        size_t at = 0;
        wire_msg ping;
        const dgram *pd = find(&at, WIRE_PING, &ping);
        assert_non_null(pd);
        uint64_t t0 = pd->at;
        int target = pd->to;
        assert_true(target >= 1 && target <= 4);
        assert_true(str_is(ping.u.ping.target, peer_names[target - 1]));
        assert_true(str_is(ping.u.ping.sender, "p"));
        /* Nothing else before the probe timeout... */
        now = run(p, now, t0 + 499, &silent);
        assert_int_equal(count_type(0, WIRE_PING_REQ), 0);
        /* ...then k ping-reqs, to k distinct members other than the target. */
        now = run(p, now, t0 + 500, &silent);
        size_t from = 0;
        bool asked[5] = {false};
        wire_msg req;
        const dgram *rd;
        size_t nreq = 0;
        while ((rd = find(&from, WIRE_PING_REQ, &req)) != NULL) {
            assert_true(rd->at == t0 + 500);
            assert_true(rd->to >= 1 && rd->to <= 4 && rd->to != target);
            assert_false(asked[rd->to]);
            asked[rd->to] = true;
            assert_int_equal(req.u.ping_req.seq, ping.u.ping.seq);
            assert_true(str_is(req.u.ping_req.target, peer_names[target - 1]));
            rumor_addr ta = tnet_addr(target);
            assert_true(rumor_addr_equal(&req.u.ping_req.target_addr, &ta));
            assert_true(req.u.ping_req.nack);
            assert_true(str_is(req.u.ping_req.sender, "p"));
            nreq++;
        }
        assert_int_equal(nreq, k);
        rumor_stats st;
        rumor_node_stats(p, &st);
        assert_true(st.indirect_probes == k);
        assert_true(st.probes == 1);
        /* No ack by the end of the interval: the target is suspected, by us. */
        now = run(p, now, t0 + 999, &silent);
        assert_int_equal(state_of(p, peer_names[target - 1]), RUMOR_MEMBER_ALIVE);
        now = run(p, now, t0 + 1000, &silent);
        assert_int_equal(state_of(p, peer_names[target - 1]), RUMOR_MEMBER_SUSPECT);
        rumor_node_stats(p, &st);
        assert_true(st.probe_failures == 1);
        assert_true(st.suspicions == 1);
        rumor_node_del(p);
    }
}

static void test_relay_acks_and_nacks(void **ctx)
{
    (void)ctx;
    box.n = 0;
    uint64_t now = 1000;
    rumor_node *r = make("r", 0, now, 3);
    collect(r, now, NULL);
    uint8_t b[300];
    buf_writer w;
    rumor_addr ta = tnet_addr(2);

    /* x (index 1) asks r to probe t (index 2). */
    buf_writer_init_fixed(&w, b, sizeof(b));
    wire_put_header(&w, NULL, 0, 0);
    wire_put_ping_req(&w, 77, S("t"), &ta, true, S("x"));
    inject(r, 1, b, w.len, now);
    collect(r, now, NULL);
    size_t at = 0;
    wire_msg m;
    const dgram *d = find(&at, WIRE_PING, &m);
    assert_non_null(d);
    assert_int_equal(d->to, 2);
    assert_true(str_is(m.u.ping.target, "t"));
    assert_true(str_is(m.u.ping.sender, "r"));
    uint32_t relay_seq = m.u.ping.seq;
    /* t answers r; r answers x with x's own sequence number. */
    inject_ack(r, 2, WIRE_ACK, relay_seq, now + 3);
    collect(r, now + 3, NULL);
    d = find(&at, WIRE_ACK, &m);
    assert_non_null(d);
    assert_int_equal(d->to, 1);
    assert_int_equal(m.u.ack.seq, 77);
    rumor_stats st;
    rumor_node_stats(r, &st);
    assert_true(st.indirect_relayed == 1);
    assert_true(st.acks_in == 1);
    /* A second ack for the same relay is stale. */
    uint64_t stale0 = st.dropped[RUMOR_DROP_STALE];
    inject_ack(r, 2, WIRE_ACK, relay_seq, now + 4);
    collect(r, now + 4, NULL);
    rumor_node_stats(r, &st);
    assert_true(st.dropped[RUMOR_DROP_STALE] == stale0 + 1);
    assert_int_equal(count_type(at, WIRE_ACK), 0);

    /* t stays silent: r tells x with a NACK, since x asked, at 4/5 of what x has left of its
     * probe (x asked 500 ms into its 1000 ms probe; 4/5 of 500 ms), so that the nack reaches
     * x before x stops counting. */
    now += 10;
    buf_writer_init_fixed(&w, b, sizeof(b));
    wire_put_header(&w, NULL, 0, 0);
    wire_put_ping_req(&w, 78, S("t"), &ta, true, S("x"));
    inject(r, 1, b, w.len, now);
    collect(r, now, NULL);
    size_t mark = box.n;
    at = mark - 1;
    d = find(&at, WIRE_PING, &m);
    assert_non_null(d);
    relay_seq = m.u.ping.seq;
    run(r, now, now + 399, NULL);
    assert_int_equal(count_type(mark, WIRE_NACK), 0);
    run(r, now + 399, now + 400, NULL);
    at = mark;
    d = find(&at, WIRE_NACK, &m);
    assert_non_null(d);
    assert_int_equal(d->to, 1);
    assert_int_equal(m.u.ack.seq, 78);
    assert_true(d->at == now + 400);
    /* An ack from t inside the probe timeout is still passed on after the nack... */
    mark = box.n;
    inject_ack(r, 2, WIRE_ACK, relay_seq, now + 450);
    collect(r, now + 450, NULL);
    at = mark;
    d = find(&at, WIRE_ACK, &m);
    assert_non_null(d);
    assert_int_equal(d->to, 1);
    assert_int_equal(m.u.ack.seq, 78);
    /* ...and one after it is stale. */
    now += 1000;
    buf_writer_init_fixed(&w, b, sizeof(b));
    wire_put_header(&w, NULL, 0, 0);
    wire_put_ping_req(&w, 80, S("t"), &ta, true, S("x"));
    inject(r, 1, b, w.len, now);
    collect(r, now, NULL);
    at = box.n - 1;
    d = find(&at, WIRE_PING, &m);
    assert_non_null(d);
    relay_seq = m.u.ping.seq;
    run(r, now, now + 500, NULL);
    mark = box.n;
    rumor_node_stats(r, &st);
    stale0 = st.dropped[RUMOR_DROP_STALE];
    inject_ack(r, 2, WIRE_ACK, relay_seq, now + 501);
    collect(r, now + 501, NULL);
    rumor_node_stats(r, &st);
    assert_true(st.dropped[RUMOR_DROP_STALE] == stale0 + 1);
    assert_int_equal(count_type(mark, WIRE_ACK), 0);

    /* Without the nack flag, silence stays silence. */
    now += 1000;
    buf_writer_init_fixed(&w, b, sizeof(b));
    wire_put_header(&w, NULL, 0, 0);
    wire_put_ping_req(&w, 79, S("t"), &ta, false, S("x"));
    inject(r, 1, b, w.len, now);
    collect(r, now, NULL);
    mark = box.n;
    run(r, now, now + 2000, NULL);
    assert_int_equal(count_type(mark, WIRE_NACK), 0);
    assert_int_equal(count_type(mark, WIRE_ACK), 0);
    rumor_node_del(r);
}

/* The next PING p sends at or after box.d[*at]. */
static const dgram *next_ping(size_t *at, wire_msg *m)
{
    return find(at, WIRE_PING, m);
}

static void test_awareness(void **ctx)
{
    (void)ctx;
    box.n = 0;
    uint64_t now = 1000;
    rumor_node *p = make("p", 0, now, 3);
    teach(p, peer_names, peer_idx, 4, now);
    collect(p, now, NULL);
    script silent = {{false}};
    assert_int_equal(rumor_node_health(p), 0);

    /* Probe 1: nobody answers, and the three helpers do not even nack: our own network is the
     * likely culprit, so the score rises by the three missing nacks. */
    now = run(p, now, now + 1000, &silent);
    size_t at = 0;
    wire_msg m;
    const dgram *d = next_ping(&at, &m);
    assert_non_null(d);
    uint64_t t1 = d->at;
    now = run(p, now, t1 + 1000, &silent);
    assert_int_equal(rumor_node_health(p), 3);

    /* Probe 2 starts at once with timeouts stretched by (score + 1) = 4: the ping-reqs go out
     * after 2000 ms, not 500. This time the helpers nack: not our fault, no change. */
    at = 0;
    while (next_ping(&at, &m) && box.d[at - 1].at < t1 + 1000) {
    }
    d = &box.d[at - 1];
    assert_true(d->at == t1 + 1000);
    uint64_t t2 = d->at;
    size_t mark = box.n;
    now = run(p, now, t2 + 1999, &silent);
    assert_int_equal(count_type(mark, WIRE_PING_REQ), 0);
    now = run(p, now, t2 + 2000, &silent);
    assert_int_equal(count_type(mark, WIRE_PING_REQ), 3);
    size_t from = mark;
    wire_msg req;
    const dgram *rd;
    while ((rd = find(&from, WIRE_PING_REQ, &req)) != NULL)
        inject_ack(p, rd->to, WIRE_NACK, req.u.ping_req.seq, now);
    rumor_stats st;
    rumor_node_stats(p, &st);
    assert_true(st.nacks_in == 3);
    now = run(p, now, t2 + 3999, &silent);
    rumor_node_stats(p, &st);
    assert_true(st.probe_failures == 1);
    mark = box.n;
    now = run(p, now, t2 + 4000, &silent);
    rumor_node_stats(p, &st);
    assert_true(st.probe_failures == 2);
    assert_int_equal(rumor_node_health(p), 3);
    /* Probe 3 went out in the same tick; its target answers: one step down. */
    assert_int_equal(count_type(mark, WIRE_PING), 1);
    ack_pings_since(p, mark, now);
    assert_int_equal(rumor_node_health(p), 2);

    /* From now on every ping is answered: successful probes bring the score back to 0
     * (test_awareness_steps_down checks the steps), and it stays there. */
    script all = {{false, true, true, true, true}};
    uint64_t acks0 = st.acks_in;
    now = run(p, now, now + 20000, &all);
    assert_int_equal(rumor_node_health(p), 0);
    rumor_node_stats(p, &st);
    assert_true(st.acks_in >= acks0 + 3);
    assert_true(st.probe_failures == 2);
    rumor_node_del(p);
}

/* Step by step: each acked probe lowers the score by exactly one. */
static void test_awareness_steps_down(void **ctx)
{
    (void)ctx;
    box.n = 0;
    uint64_t now = 1000;
    rumor_node *p = make("p", 0, now, 3);
    teach(p, peer_names, peer_idx, 4, now);
    collect(p, now, NULL);
    script silent = {{false}};
    script all = {{false, true, true, true, true}};
    now = run(p, now, now + 1000, &silent);
    size_t at = 0;
    wire_msg m;
    const dgram *d = next_ping(&at, &m);
    assert_non_null(d);
    size_t mark = box.n;
    now = run(p, now, d->at + 1000, &silent);
    assert_int_equal(rumor_node_health(p), 3);
    /* The failed probe's successor went out in the same tick. */
    ack_pings_since(p, mark, now);
    assert_int_equal(rumor_node_health(p), 2);
    for (uint32_t want = 2; want > 0; want--) {
        /* Run until the next ack has been counted, and no further. */
        rumor_stats st;
        rumor_node_stats(p, &st);
        uint64_t acks0 = st.acks_in;
        for (int guard = 0; guard < 20000 && st.acks_in == acks0; guard++) {
            now = run(p, now, now + 1, &all);
            rumor_node_stats(p, &st);
        }
        assert_true(st.acks_in == acks0 + 1);
        assert_int_equal(rumor_node_health(p), want - 1);
    }
    rumor_node_del(p);
}

/* A raised score stretches only unanswered probes: once a probe is answered, the next one
 * follows a plain interval after it started (memberlist's fixed ticker), not (score + 1)
 * intervals, so a node that just detected a crash keeps probing the rest at the normal rate. */
static void test_awareness_keeps_cadence(void **ctx)
{
    (void)ctx;
    box.n = 0;
    uint64_t now = 1000;
    rumor_node *p = make("p", 0, now, 3);
    teach(p, peer_names, peer_idx, 4, now);
    collect(p, now, NULL);
    script silent = {{false}};
    now = run(p, now, now + 1000, &silent);
    size_t at = 0;
    wire_msg m;
    const dgram *d = next_ping(&at, &m);
    assert_non_null(d);
    uint64_t t1 = d->at;
    size_t mark = box.n;
    now = run(p, now, t1 + 1000, &silent);
    assert_int_equal(rumor_node_health(p), 3);
    /* The failed probe's successor went out at its end, t1 + 1000; it is answered at once. */
    assert_int_equal(count_type(mark, WIRE_PING), 1);
    ack_pings_since(p, mark, now);
    assert_int_equal(rumor_node_health(p), 2);
    mark = box.n;
    now = run(p, now, t1 + 1999, &silent);
    assert_int_equal(count_type(mark, WIRE_PING), 0);
    now = run(p, now, t1 + 2000, &silent);
    assert_int_equal(count_type(mark, WIRE_PING), 1);
    rumor_node_del(p);
}

/* Time from an injected suspicion of "a" to p declaring it failed, with `accusers` independent
 * accusers (b, c, d) all heard at the start. Every ping is answered, so p's own probes never
 * add an accusation. */
static uint64_t time_to_failed(int accusers)
{
    box.n = 0;
    uint64_t now = 1000;
    rumor_node *p = make("p", 0, now, 3);
    teach(p, peer_names, peer_idx, 4, now);
    collect(p, now, NULL);
    script all = {{false, true, true, true, true}};
    now = run(p, now, 5000, &all);
    uint64_t t0 = now;
    static const char *who[] = {"b", "c", "d"};
    for (int i = 0; i < accusers; i++)
        inject_accuse(p, 2 + i, WIRE_SUSPECT, 0, "a", who[i], t0);
    collect(p, t0, &all);
    assert_int_equal(state_of(p, "a"), RUMOR_MEMBER_SUSPECT);
    uint64_t failed_at = 0;
    while (now < t0 + 30000) {
        now = run(p, now, now + 1, &all);
        if (state_of(p, "a") == RUMOR_MEMBER_FAILED) {
            failed_at = now;
            break;
        }
        assert_int_equal(state_of(p, "a"), RUMOR_MEMBER_SUSPECT);
    }
    rumor_node_del(p);
    return failed_at ? failed_at - t0 : 0;
}

static void test_suspicion_shrinks_with_confirmations(void **ctx)
{
    (void)ctx;
    /* One accuser: the full 24 s. Two: max − (max − min) × log 2 / log 3 = 11,381 ms. Three
     * (k = 2 confirmations): the 4 s minimum. */
    uint64_t one = time_to_failed(1);
    uint64_t two = time_to_failed(2);
    uint64_t three = time_to_failed(3);
    assert_true(one == 24000);
    assert_true(two == 11381);
    assert_true(three == 4000);
}

/* Time from three accusations of "a" (two confirmations: the minimum) to p declaring it failed,
 * in a cluster of 16 where "o" was declared failed `dead_age` ms before. */
static uint64_t min_timeout_after_failure(uint64_t dead_age)
{
    static const char *const names[] = {"a", "b", "c", "d", "e", "f", "g", "h",
                                        "i", "j", "k", "l", "m", "n", "o"};
    static const int idx[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    box.n = 0;
    uint64_t now = 1000;
    rumor_node *p = make("p", 0, now, 3);
    teach(p, names, idx, 15, now);
    collect(p, now, NULL);
    script all = {{false, true, true, true, true, true, true, true, true, true, true, true, true,
                   true, true, false}};
    inject_accuse(p, 2, WIRE_FAILED, 0, "o", "b", now);
    collect(p, now, &all);
    assert_int_equal(state_of(p, "o"), RUMOR_MEMBER_FAILED);
    now = run(p, now, now + dead_age, &all);
    box.n = 0; /* only the last run's datagrams matter; keep the box from filling */
    uint64_t t0 = now;
    inject_accuse(p, 2, WIRE_SUSPECT, 0, "a", "b", t0);
    inject_accuse(p, 3, WIRE_SUSPECT, 0, "a", "c", t0);
    inject_accuse(p, 4, WIRE_SUSPECT, 0, "a", "d", t0);
    collect(p, t0, &all);
    uint64_t failed_at = 0;
    while (now < t0 + 10000 && !failed_at) {
        now = run(p, now, now + 1, &all);
        if (state_of(p, "a") == RUMOR_MEMBER_FAILED)
            failed_at = now;
        if (box.n > MAXD / 2)
            box.n = 0;
    }
    rumor_node_del(p);
    return failed_at ? failed_at - t0 : 0;
}

static void test_suspicion_counts_recently_failed(void **ctx)
{
    (void)ctx;
    /* As memberlist's node list, N counts a member failed within gossip_to_dead (30 s on a LAN):
     * 4 × log10 16 s = 4,816 ms, not 4 × log10 15 s = 4,704 ms. After that only the live
     * count. */
    assert_true(min_timeout_after_failure(1000) == 4816);
    assert_true(min_timeout_after_failure(31000) == 4704);
}

static void test_late_confirmation_and_duplicates(void **ctx)
{
    (void)ctx;
    /* A confirmation heard later shortens the timer measured from the start; the same
     * accuser twice counts once. */
    box.n = 0;
    uint64_t now = 1000;
    rumor_node *p = make("p", 0, now, 3);
    teach(p, peer_names, peer_idx, 4, now);
    collect(p, now, NULL);
    script all = {{false, true, true, true, true}};
    now = run(p, now, 5000, &all);
    uint64_t t0 = now;
    inject_accuse(p, 2, WIRE_SUSPECT, 0, "a", "b", t0);
    inject_accuse(p, 2, WIRE_SUSPECT, 0, "a", "b", t0 + 100);
    now = run(p, now, t0 + 5000, &all);
    assert_int_equal(state_of(p, "a"), RUMOR_MEMBER_SUSPECT);
    inject_accuse(p, 3, WIRE_SUSPECT, 0, "a", "c", now);
    now = run(p, now, t0 + 11380, &all);
    assert_int_equal(state_of(p, "a"), RUMOR_MEMBER_SUSPECT);
    now = run(p, now, t0 + 11381, &all);
    assert_int_equal(state_of(p, "a"), RUMOR_MEMBER_FAILED);
    rumor_node_del(p);
}

static void test_buddy_system_refutes(void **ctx)
{
    (void)ctx;
    box.n = 0;
    uint64_t now = 1000;
    rumor_node *p = make("p", 0, now, 3);
    rumor_node *a = make("a", 1, now, 3);
    teach(p, peer_names, peer_idx, 4, now);
    static const char *const p_name[] = {"p"};
    static const int p_idx[] = {0};
    teach(a, p_name, p_idx, 1, now);
    collect(p, now, NULL);
    box.n = 0;
    {
        rumor_datagram dg;
        while (rumor_node_poll_datagram(a, &dg)) {
        }
    }
    /* b says a is suspect. a itself is fine and knows nothing of it. */
    inject_accuse(p, 2, WIRE_SUSPECT, 0, "a", "b", now);
    assert_int_equal(state_of(p, "a"), RUMOR_MEMBER_SUSPECT);
    /* p keeps probing; b, c, d answer. Its ping to a carries the suspicion along. */
    script others = {{false, false, true, true, true}};
    size_t at = 0;
    wire_msg m;
    const dgram *to_a = NULL;
    for (int i = 0; i < 10 && !to_a; i++) {
        now = run(p, now, now + 1000, &others);
        for (at = 0; (to_a = find(&at, WIRE_PING, &m)) != NULL;)
            if (to_a->to == 1)
                break;
    }
    assert_non_null(to_a);
    assert_true(str_is(m.u.ping.target, "a"));
    size_t off = 0;
    bool has_suspect = false;
    while (next_msg(to_a, &off, &m))
        if (m.type == WIRE_SUSPECT && str_is(m.u.accuse.name, "a") && m.u.accuse.inc == 0)
            has_suspect = true;
    assert_true(has_suspect);

    /* Deliver it to the real node a: it acks, refutes with incarnation 1, and notes that it
     * may be the slow one (Lifeguard). */
    uint64_t t = to_a->at + 1;
    rumor_addr from_p = tnet_addr(0);
    assert_int_equal(rumor_node_receive(a, &from_p, to_a->b, to_a->len, t), RUMOR_OK);
    rumor_member self;
    rumor_node_self(a, &self);
    assert_int_equal(self.incarnation, 1);
    assert_int_equal(self.state, RUMOR_MEMBER_ALIVE);
    rumor_stats st;
    rumor_node_stats(a, &st);
    assert_true(st.refutes == 1);
    assert_int_equal(rumor_node_health(a), 1);
    /* Carry a's datagrams to p for a while: the ack, then the refutation by gossip. */
    uint64_t until = t + 1000;
    while (t < until) {
        rumor_datagram dg;
        rumor_addr from_a = tnet_addr(1);
        while (rumor_node_poll_datagram(a, &dg))
            if (idx_of(&dg.to) == 0)
                assert_int_equal(rumor_node_receive(p, &from_a, dg.data, dg.len, t), RUMOR_OK);
        collect(p, t, &others);
        t++;
        rumor_node_tick(a, t);
        if (rumor_node_deadline(p) <= t) {
            rumor_node_tick(p, t);
            collect(p, t, &others);
        }
    }
    rumor_member am;
    assert_int_equal(rumor_node_member_find(p, "a", &am), RUMOR_OK);
    assert_int_equal(am.state, RUMOR_MEMBER_ALIVE);
    assert_int_equal(am.incarnation, 1);
    rumor_node_del(a);
    rumor_node_del(p);
}

static void test_round_robin(void **ctx)
{
    (void)ctx;
    /* SWIM §4.3: probes walk a shuffled order, so in every round of four probes each of the
     * four members is probed exactly once (worst-case detection within one round). */
    box.n = 0;
    uint64_t now = 1000;
    rumor_node *p = make("p", 0, now, 3);
    teach(p, peer_names, peer_idx, 4, now);
    collect(p, now, NULL);
    script all = {{false, true, true, true, true}};
    now = run(p, now, now + 12 * 1000 + 500, &all);
    size_t at = 0;
    wire_msg m;
    const dgram *d;
    int order[16], n = 0;
    while (n < 16 && (d = find(&at, WIRE_PING, &m)) != NULL)
        order[n++] = d->to;
    assert_true(n >= 12);
    bool differs = false;
    for (int round = 0; round < 3; round++) {
        bool seen[5] = {false};
        for (int i = 0; i < 4; i++) {
            int to = order[round * 4 + i];
            assert_true(to >= 1 && to <= 4);
            assert_false(seen[to]);
            seen[to] = true;
            if (round > 0 && to != order[i])
                differs = true;
        }
    }
    assert_true(differs); /* rounds are reshuffled */
    rumor_node_del(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unanswered_ping_asks_k_members),
        cmocka_unit_test(test_relay_acks_and_nacks),
        cmocka_unit_test(test_awareness),
        cmocka_unit_test(test_awareness_steps_down),
        cmocka_unit_test(test_awareness_keeps_cadence),
        cmocka_unit_test(test_suspicion_counts_recently_failed),
        cmocka_unit_test(test_suspicion_shrinks_with_confirmations),
        cmocka_unit_test(test_late_confirmation_and_duplicates),
        cmocka_unit_test(test_buddy_system_refutes),
        cmocka_unit_test(test_round_robin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
