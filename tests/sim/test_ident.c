/*
 * Per-node identities in the simulator (docs/protocol.md section 12):
 *  - with a cluster authority, a node without a valid certificate is never admitted, and the
 *    cluster says so in its counters;
 *  - a hostile relay that alters another node's alive records, key-value writes and sync records
 *    in flight, forges alive claims about it and accusations in others' names, changes nothing:
 *    every honest node ends with the victim's genuine state and counts the forgeries;
 *  - failure detection works unchanged with signed accusations (crash found, no refusals);
 *  - identities and encryption together: a sealed, certified cluster under replay forms, writes,
 *    detects a crash, takes the node back, and refuses a key holder without a certificate;
 *  - key-value state on sealed, signed streams: large values, retirements, identical replicas;
 *  - a cluster started formed takes back a restarted and a rejoined node with every member and
 *    identical key-value replicas.
 */
#include "helper_sim.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "core/ident.h"
#include "core/wire.h"

#define CA_SEED    0x42
#define OTHER_CA   0x43
#define NOT_SIGNED UINT32_MAX

static void seed_of(uint32_t node, uint8_t seed[32])
{
    memset(seed, 0x5a, 32);
    memcpy(seed, &node, sizeof(node));
}

typedef struct id_cfg {
    uint32_t uncertified; /* node with an identity but no certificate */
    uint32_t foreign;     /* node certified by another authority */
    bool ca;
} id_cfg;

static void set_identity(rumor_settings *st, uint32_t node, void *ud)
{
    const id_cfg *c = ud;
    st->identity = true;
    seed_of(node, st->identity_seed);
    if (!c || !c->ca)
        return;
    uint8_t ca[32], pk[32];
    memset(ca, CA_SEED, sizeof(ca));
    assert_int_equal(rumor_identity_public_key(ca, st->identity_ca_key), 0);
    st->identity_ca = true;
    if (node == c->uncertified)
        return;
    if (node == c->foreign)
        memset(ca, OTHER_CA, sizeof(ca));
    assert_int_equal(rumor_identity_public_key(st->identity_seed, pk), 0);
    char name[32];
    snprintf(name, sizeof(name), "node-%u", node);
    assert_int_equal(rumor_identity_cert_sign(ca, name, pk, 0, st->identity_cert), 0);
    st->identity_has_cert = true;
}

static uint64_t refused(const rumor_sim *s, uint32_t n, rumor_ident_refusal r)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < n; i++) {
        rumor_node *nd = rumor_sim_node(s, i);
        if (!nd)
            continue;
        rumor_stats st;
        rumor_node_stats(nd, &st);
        sum += st.ident_refused[r];
    }
    return sum;
}

/* ---- a cluster authority admits certified nodes only ---- */

static void test_uncertified_not_admitted(void **state)
{
    (void)state;
    const uint32_t n = 10, good = 8;
    id_cfg cfg = {.uncertified = 8, .foreign = 9, .ca = true};
    rumor_sim_options o;
    rumor_sim_options_default(&o, RUMOR_PROFILE_LOCAL);
    o.seed = h_seed(51);
    o.nodes = n;
    o.settings_fn = set_identity;
    o.settings_ud = &cfg;
    rumor_sim *s = h_sim_new_opts(&o);
    h_start_cluster(s, good, 0, 1000);
    h_run(s, 1000);
    h_check(s, h_run_until_converged(s, 60000) != UINT64_MAX, "certified nodes never converged");
    assert_int_equal(rumor_sim_node_start_join(s, 8, 0), 0);
    assert_int_equal(rumor_sim_node_start_join(s, 9, 3), 0);
    /* The uncertified node's Lamport clocks run far ahead (its own events): its push-pull
     * carries them, and must not move the members' clocks. */
    for (int i = 0; i < 300; i++)
        (void)rumor_node_event(rumor_sim_node(s, 8), "outsider", "x", 1, rumor_sim_now(s));
    rumor_sim_poke(s, 8);
    rumor_stats out;
    rumor_node_stats(rumor_sim_node(s, 8), &out);
    h_check(s, out.event_ltime >= 300, "the outsider's clock is at %" PRIu64, out.event_ltime);
    h_run(s, 40000);
    for (uint32_t i = 0; i < good; i++) {
        rumor_stats st;
        rumor_node_stats(rumor_sim_node(s, i), &st);
        h_check(s, st.event_ltime < 300 && st.user_events_delivered == 0,
                "node-%u took the outsider's clock or events (clock %" PRIu64 ", %" PRIu64
                " delivered)",
                i, st.event_ltime, st.user_events_delivered);
    }
    for (uint32_t i = 0; i < good; i++) {
        rumor_node *nd = rumor_sim_node(s, i);
        h_check(s, rumor_node_member_count(nd) == good, "node-%u holds %zu members", i,
                rumor_node_member_count(nd));
        h_check(s, h_table_state(s, i, 8, NULL) < 0 && h_table_state(s, i, 9, NULL) < 0,
                "node-%u admitted an uncertified node", i);
        for (uint32_t j = 0; j < good; j++)
            h_check(s, h_table_state(s, i, j, NULL) == RUMOR_MEMBER_ALIVE,
                    "node-%u does not hold node-%u alive", i, j);
    }
    /* The seeds they tried say why, and the outsiders learned nothing about the cluster. */
    h_check(s, refused(s, good, RUMOR_IDENT_NO_CERT) > 0, "no refusal counted for node-8");
    h_check(s, refused(s, good, RUMOR_IDENT_BAD_CERT) > 0, "no refusal counted for node-9");
    h_check(s,
            rumor_node_member_count(rumor_sim_node(s, 8)) == 1 &&
                rumor_node_member_count(rumor_sim_node(s, 9)) == 1,
            "an outsider got the member list");
    rumor_sim_metrics m;
    rumor_sim_metrics_get(s, &m);
    h_check(s, m.false_positives == 0, "%" PRIu64 " false failures", m.false_positives);
    rumor_sim_del(s);
}

/* ---- a hostile relay ---- */

typedef struct hostile {
    bool active; /* from the moment every node knows the victim: trust on first use cannot
                  * stop an impostor that speaks before the real node does */
    uint32_t relay, victim;
    char victim_name[32];
    uint8_t relay_sk[64], relay_pk[32], victim_pk[32];
    uint64_t altered, forged;
} hostile;

static bool is(wire_str s, const char *name)
{
    return s.len == strlen(name) && memcmp(s.p, name, s.len) == 0;
}

static void flip(const uint8_t *p)
{
    *(uint8_t *)(uintptr_t)p ^= 0x20;
}

/* Alters the victim's records in a packet in place: alive metadata, key-value values, sync
 * records. */
static void alter(hostile *h, uint8_t *p, size_t len, bool stream)
{
    buf_reader r;
    wire_header hd;
    wire_msg m;
    buf_reader_init(&r, p, len);
    if (wire_header_decode(&r, &hd) != 0)
        return;
    while (wire_msg_decode(&r, &m, RUMOR_META_MAX) == 1) {
        if (m.type == WIRE_ALIVE && is(m.u.alive.name, h->victim_name) && m.u.alive.meta.len) {
            flip(m.u.alive.meta.p);
            h->altered++;
        } else if (m.type == WIRE_KV_DELTA && is(m.u.kv_delta.origin, h->victim_name)) {
            wire_kv_entry e;
            buf_reader er = m.u.kv_delta.entries;
            if (m.u.kv_delta.count && wire_kv_entry_next(&er, &e) && e.value.len) {
                flip(e.value.p);
                h->altered++;
            }
        } else if (stream && m.type == WIRE_PUSHPULL) {
            buf_reader mr = m.u.pushpull.members;
            wire_member wm;
            for (uint32_t i = 0; i < m.u.pushpull.count && wire_member_next(&mr, &wm); i++)
                if (is(wm.name, h->victim_name) && wm.meta.len) {
                    flip(wm.meta.p);
                    h->altered++;
                }
        }
    }
}

/* Appends forgeries about the victim: a newer life claimed with the victim's key but signed by
 * the relay, the same with the relay's own key, and accusations in another member's name. */
static size_t forge(hostile *h, uint8_t *p, size_t cap)
{
    buf_writer w;
    buf_writer_init_fixed(&w, p, cap);
    rumor_addr a;
    rumor_sim_addr(&a, h->relay); /* redirect the victim's traffic to the relay */
    wire_str name = wire_str_of(h->victim_name, strlen(h->victim_name));
    wire_str meta = wire_str_of("role=evil", 9);
    uint8_t stmt[IDENT_STMT_MAX], sig[64];
    size_t len = ident_stmt_alive(stmt, name, 1000, &a, meta);
    crypto_sign_detached(sig, NULL, stmt, len, h->relay_sk);
    wire_ident id = {
        .present = true, .pk = (h->forged & 1) ? h->relay_pk : h->victim_pk, .sig = sig};
    wire_put_alive_ident(&w, 1000, name, &a, meta, &id);
    wire_str accuser = wire_str_of("node-0", 6);
    len = ident_stmt_accuse(stmt, WIRE_FAILED, 500, name, accuser);
    crypto_sign_detached(sig, NULL, stmt, len, h->relay_sk);
    wire_put_accuse_ident(&w, WIRE_FAILED, 500, name, accuser, sig);
    /* A user event and a query in the victim's name (signed by the relay, or unsigned), far
     * ahead of the clocks: taken, they would be delivered and push every clock past 5000. */
    uint64_t lt = 5000 + h->forged;
    wire_str ename = wire_str_of("forged", 6), payload = wire_str_of("x", 1);
    len = ident_stmt_event(stmt, name, lt, ename, payload);
    crypto_sign_detached(sig, NULL, stmt, len, h->relay_sk);
    wire_put_user_event_sig(&w, lt, name, ename, payload, (h->forged & 2) ? NULL : sig);
    uint8_t rest[64];
    buf_writer r;
    buf_writer_init_fixed(&r, rest, sizeof(rest));
    wire_put_query_rest(&r, NULL, 0, NULL, NULL, 0, wire_str_of("forged-q", 8), payload);
    wire_str rs = wire_str_of(rest, r.len);
    len = ident_stmt_query(stmt, name, lt, (uint32_t)h->forged, wire_str_of(a.bytes, a.len), 0,
                           5000, rs);
    crypto_sign_detached(sig, NULL, stmt, len, h->relay_sk);
    wire_put_query_sig(&w, lt, (uint32_t)h->forged, name, &a, 0, 5000, rs, sig);
    h->forged++;
    return w.failed ? 0 : w.len;
}

static void tamper(void *ud, uint32_t from, uint32_t to, bool stream, uint8_t *data, size_t *len,
                   size_t cap)
{
    hostile *h = ud;
    if (!h->active || from != h->relay || to == h->victim)
        return;
    if (stream) {
        if (*len > WIRE_FRAME_PREFIX)
            alter(h, data + WIRE_FRAME_PREFIX, *len - WIRE_FRAME_PREFIX, true);
        return;
    }
    alter(h, data, *len, false);
    if (cap - *len > 600)
        *len += forge(h, data + *len, 600);
}

static void set_meta(rumor_sim *s, uint32_t i, const char *meta)
{
    assert_int_equal(rumor_node_set_meta(rumor_sim_node(s, i), (const uint8_t *)meta, strlen(meta),
                                         rumor_sim_now(s)),
                     0);
    rumor_sim_poke(s, i);
}

static void test_hostile_relay(void **state)
{
    (void)state;
    const uint32_t n = 12;
    hostile h = {.relay = 3, .victim = 5};
    snprintf(h.victim_name, sizeof(h.victim_name), "node-%u", h.victim);
    uint8_t seed[32];
    seed_of(h.relay, seed);
    crypto_sign_seed_keypair(h.relay_pk, h.relay_sk, seed);
    seed_of(h.victim, seed);
    assert_int_equal(rumor_identity_public_key(seed, h.victim_pk), 0);

    rumor_sim_options o;
    rumor_sim_options_default(&o, RUMOR_PROFILE_LOCAL);
    o.seed = h_seed(52);
    o.nodes = n;
    o.settings_fn = set_identity;
    o.tamper = tamper;
    o.tamper_ud = &h;
    rumor_sim *s = h_sim_new_opts(&o);
    h_start_cluster(s, n, 0, 1000);
    h_run(s, 1000);
    h_check(s, h_run_until_converged(s, 60000) != UINT64_MAX, "no convergence");
    h.active = true;
    /* The victim changes its metadata, writes keys and sends user events while the relay
     * tampers (and forges events and queries in its name). */
    char meta[48], key[24], val[24];
    for (int round = 0; round < 6; round++) {
        if (round < 2) {
            assert_int_equal(
                rumor_node_event(rumor_sim_node(s, h.victim), "genuine", "v", 1, rumor_sim_now(s)),
                0);
        }
        snprintf(meta, sizeof(meta), "role=victim,v=%d", round);
        set_meta(s, h.victim, meta);
        snprintf(key, sizeof(key), "k%d", round);
        snprintf(val, sizeof(val), "value-%d", round);
        assert_int_equal(rumor_node_kv_put(rumor_sim_node(s, h.victim), key, strlen(key), val,
                                           strlen(val), rumor_sim_now(s)),
                         0);
        rumor_sim_poke(s, h.victim);
        h_run(s, 3000);
    }
    h_run(s, 40000); /* past a push-pull round, so sync records are tampered with too */
    rumor_member vm;
    assert_int_equal(rumor_node_member_find(rumor_sim_node(s, h.victim), h.victim_name, &vm), 0);
    uint64_t want_digest = rumor_node_kv_digest(rumor_sim_node(s, h.victim));
    for (uint32_t i = 0; i < n; i++) {
        if (i == h.relay)
            continue;
        rumor_node *nd = rumor_sim_node(s, i);
        rumor_member m;
        h_check(s, rumor_node_member_find(nd, h.victim_name, &m) == 0, "node-%u lost the victim",
                i);
        h_check(s,
                m.state == RUMOR_MEMBER_ALIVE && m.incarnation == vm.incarnation &&
                    m.meta_len == vm.meta_len && memcmp(m.meta, vm.meta, m.meta_len) == 0 &&
                    rumor_addr_equal(&m.addr, &vm.addr),
                "node-%u holds a forged or altered record of the victim (inc %u, meta %.*s)", i,
                m.incarnation, (int)m.meta_len, (const char *)m.meta);
        h_check(s, rumor_node_kv_digest(nd) == want_digest,
                "node-%u holds an altered copy of the victim's keys", i);
    }
    h_check(s, h.altered > 0 && h.forged > 0, "the relay never tampered (%" PRIu64 "/%" PRIu64 ")",
            h.altered, h.forged);
    /* The two genuine events reached everyone; no forged event or query was delivered, and no
     * clock moved to the forgeries' times. */
    for (uint32_t i = 0; i < n; i++) {
        rumor_stats st;
        rumor_node_stats(rumor_sim_node(s, i), &st);
        h_check(s, st.user_events_delivered == 2,
                "node-%u delivered %" PRIu64 " user events (2 genuine)", i,
                st.user_events_delivered);
        h_check(s, st.queries_served == 0, "node-%u served a forged query", i);
        h_check(s, st.event_ltime < 5000 && st.query_ltime < 5000,
                "node-%u took a forged time (event %" PRIu64 ", query %" PRIu64 ")", i,
                st.event_ltime, st.query_ltime);
    }
    uint64_t bad_event = refused(s, n, RUMOR_IDENT_BAD_EVENT);
    uint64_t bad_query = refused(s, n, RUMOR_IDENT_BAD_QUERY);
    uint64_t unsigned_ = refused(s, n, RUMOR_IDENT_UNSIGNED);
    h_check(s, bad_event > 0 && bad_query > 0 && unsigned_ > 0,
            "forged events and queries not counted: bad_event %" PRIu64 ", bad_query %" PRIu64
            ", unsigned %" PRIu64,
            bad_event, bad_query, unsigned_);
    uint64_t bad_alive = refused(s, n, RUMOR_IDENT_BAD_ALIVE);
    uint64_t mismatch = refused(s, n, RUMOR_IDENT_KEY_MISMATCH);
    uint64_t bad_kv = refused(s, n, RUMOR_IDENT_BAD_KV);
    uint64_t bad_acc = refused(s, n, RUMOR_IDENT_BAD_ACCUSATION);
    h_check(s, bad_alive > 0 && mismatch > 0 && bad_kv > 0 && bad_acc > 0,
            "forgeries not all counted: bad_alive %" PRIu64 ", key_mismatch %" PRIu64
            ", bad_kv %" PRIu64 ", bad_accusation %" PRIu64,
            bad_alive, mismatch, bad_kv, bad_acc);
    h_check(s, rumor_sim_failed_about(s, h.victim) == 0, "the victim was declared failed");
    h_note("relay altered %" PRIu64 " records and sent %" PRIu64 " forgeries; refused: "
           "bad_alive %" PRIu64 ", key_mismatch %" PRIu64 ", bad_kv %" PRIu64
           ", bad_accusation %" PRIu64,
           h.altered, h.forged, bad_alive, mismatch, bad_kv, bad_acc);
    rumor_sim_del(s);
}

/* ---- failure detection with signed accusations ---- */

static void test_crash_with_identities(void **state)
{
    (void)state;
    const uint32_t n = 24, victim = 7;
    rumor_sim_options o;
    rumor_sim_options_default(&o, RUMOR_PROFILE_LOCAL);
    o.seed = h_seed(53);
    o.nodes = n;
    o.loss = 0.02;
    o.settings_fn = set_identity;
    rumor_sim *s = h_sim_new_opts(&o);
    h_start_cluster(s, n, 0, 1000);
    h_run(s, 1000);
    h_check(s, h_run_until_converged(s, 60000) != UINT64_MAX, "no convergence");
    assert_int_equal(rumor_sim_node_crash(s, victim), 0);
    h_run(s, 60000);
    rumor_sim_metrics m;
    rumor_sim_metrics_get(s, &m);
    h_check(s, m.detect_count == n - 1 && m.detect_missed == 0,
            "%" PRIu64 " of %u observers marked node-%u failed", m.detect_count, n - 1, victim);
    h_check(s, m.false_positives == 0, "%" PRIu64 " false failures", m.false_positives);
    for (int r = 0; r < RUMOR_IDENT_REFUSAL_COUNT; r++)
        h_check(s, refused(s, n, (rumor_ident_refusal)r) == 0, "%" PRIu64 " claims refused (%s)",
                refused(s, n, (rumor_ident_refusal)r),
                rumor_ident_refusal_name((rumor_ident_refusal)r));
    h_note("detection with identities: median %" PRIu64 " ms, max %" PRIu64 " ms",
           m.detect_median_ms, m.detect_max_ms);
    rumor_sim_del(s);
}

/* ---- identities and encryption together ---- */

static uint64_t ident_total(const rumor_sim *s, uint32_t n, bool verified)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < n; i++) {
        rumor_node *nd = rumor_sim_node(s, i);
        if (!nd)
            continue;
        rumor_stats st;
        rumor_node_stats(nd, &st);
        sum += verified ? st.ident_verified : st.ident_signed;
    }
    return sum;
}

/*
 * A sealed cluster whose members also have certified identities, under an attacker replaying
 * captured datagrams: it forms, replicates a signed key-value write, detects a crash with signed
 * accusations, takes the crashed node back after a restart (a new seal epoch, the same identity),
 * and still refuses a node that holds the cluster key but no certificate: the keyring lets its
 * packets in, the identity checks keep its claims out. No honest claim is refused on the way and
 * no replay is accepted.
 */
static void test_identity_with_encryption(void **state)
{
    (void)state;
    const uint32_t n = 16, members = 15, victim = 7, writer = 2, outsider = 15;
    id_cfg cfg = {.uncertified = outsider, .foreign = NOT_SIGNED, .ca = true};
    rumor_sim_options o;
    rumor_sim_options_default(&o, RUMOR_PROFILE_LOCAL);
    o.seed = h_seed(54);
    o.nodes = n;
    o.encrypt = true;
    o.replay = 0.02;
    o.settings_fn = set_identity;
    o.settings_ud = &cfg;
    rumor_sim *s = h_sim_new_opts(&o);
    h_start_cluster(s, members, 0, 1000);
    h_run(s, 1000);
    h_check(s, h_run_until_converged(s, 60000) != UINT64_MAX, "no convergence, sealed and signed");

    /* A write travels sealed, with its signature, to every member: one signature at the
     * writer, one verification at each other member (the entry proves its own version; no new
     * keyspace head is signed or checked for it). Once the keyspace stood still for a round the
     * writer signs its keyspace sum (section 12.8), which the members its rumor reaches check
     * once: one more of each per burst of writes, however long. */
    uint64_t made0 = ident_total(s, members, false), verified0 = ident_total(s, members, true);
    assert_int_equal(
        rumor_node_kv_put(rumor_sim_node(s, writer), "k", 1, "sealed+signed", 13, rumor_sim_now(s)),
        0);
    rumor_sim_poke(s, writer);
    h_run(s, 10000);
    uint64_t want = rumor_node_kv_digest(rumor_sim_node(s, writer));
    for (uint32_t i = 0; i < members; i++)
        h_check(s, rumor_node_kv_digest(rumor_sim_node(s, i)) == want,
                "node-%u lacks the signed write", i);
    uint64_t checks = ident_total(s, members, true) - verified0;
    h_check(s, ident_total(s, members, false) - made0 == 2,
            "%" PRIu64 " signatures made for one write", ident_total(s, members, false) - made0);
    h_check(s, checks >= members - 1 && checks <= 2 * (members - 1),
            "%" PRIu64 " verifications for one write at %u receivers", checks, members - 1);

    /* A crash is found through signed accusations; the node comes back in a new life. */
    assert_int_equal(rumor_sim_node_crash(s, victim), 0);
    h_run(s, 30000);
    for (uint32_t i = 0; i < members; i++)
        if (i != victim)
            h_check(s, h_table_state(s, i, victim, NULL) == RUMOR_MEMBER_FAILED,
                    "node-%u does not hold the crashed node failed", i);
    assert_int_equal(rumor_sim_node_restart(s, victim, true, 0), 0);
    h_check(s, h_run_until_converged(s, 60000) != UINT64_MAX, "the restarted node is not back");

    /* The cluster key, no certificate: its packets open, its claims are refused. */
    assert_int_equal(rumor_sim_node_start_join(s, outsider, 0), 0);
    h_run(s, 30000);
    for (uint32_t i = 0; i < members; i++)
        h_check(s, h_table_state(s, i, outsider, NULL) < 0, "node-%u admitted the outsider", i);

    rumor_sim_metrics m;
    rumor_sim_metrics_get(s, &m);
    h_check(s, m.false_positives == 0, "%" PRIu64 " false failures", m.false_positives);
    h_check(s, m.replays_injected > 0, "no replays injected");
    h_check(s,
            m.replays_rejected + m.replays_limited + m.replays_accepted_after_restart ==
                m.replays_injected,
            "%" PRIu64 " of %" PRIu64 " replays accepted", m.replays_injected - m.replays_rejected,
            m.replays_injected);
    h_check(s, m.dropped_auth_failed == 0 && m.dropped_plaintext == 0,
            "sealed traffic of the cluster refused: auth_failed %" PRIu64 ", plaintext %" PRIu64,
            m.dropped_auth_failed, m.dropped_plaintext);
    h_check(s, refused(s, members, RUMOR_IDENT_NO_CERT) > 0, "the outsider's claims not refused");
    static const rumor_ident_refusal honest[] = {RUMOR_IDENT_BAD_ALIVE,      RUMOR_IDENT_BAD_LEFT,
                                                 RUMOR_IDENT_BAD_ACCUSATION, RUMOR_IDENT_BAD_KV,
                                                 RUMOR_IDENT_KEY_MISMATCH,   RUMOR_IDENT_BAD_CERT};
    for (size_t r = 0; r < sizeof(honest) / sizeof(honest[0]); r++)
        h_check(s, refused(s, members, honest[r]) == 0, "%" PRIu64 " honest claims refused (%s)",
                refused(s, members, honest[r]), rumor_ident_refusal_name(honest[r]));
    uint64_t verified = ident_total(s, members, true), made = ident_total(s, members, false);
    h_check(s, verified > 0 && made > 0,
            "no signatures checked (%" PRIu64 ") or made (%" PRIu64 ")", verified, made);
    h_note("sealed and signed: %" PRIu64 " signatures made, %" PRIu64 " verified; replays "
           "injected %" PRIu64 ", rejected %" PRIu64 "; outsider refused %" PRIu64 " times",
           made, verified, m.replays_injected, m.replays_rejected,
           refused(s, members, RUMOR_IDENT_NO_CERT));
    rumor_sim_del(s);
}

/* ---- key-value state over sealed, signed streams ---- */

static void set_identity_kv(rumor_settings *st, uint32_t node, void *ud)
{
    (void)ud;
    set_identity(st, node, NULL);
    st->kv_value_bytes_max = 65536;
    st->kv_tombstone_ttl_ms = 5000;
    st->wallclock_offset_ms = 1700000000000;
}

/*
 * A sealed cluster with identities, started formed (every node pins every other's key, as after
 * a snapshot), at 2 % loss: a value 30 times a datagram crosses sealed KV streams, a contested
 * shared key settles on its newest write while the superseded writers retire their entries
 * (signed tombstones) and collect them (signed horizons), and every replica ends identical
 * without one refused claim.
 */
static void test_kv_streams_sealed_and_signed(void **state)
{
    (void)state;
    const uint32_t n = 100;
    rumor_sim_options o;
    rumor_sim_options_default(&o, RUMOR_PROFILE_LOCAL);
    o.seed = h_seed(55);
    o.nodes = n;
    o.loss = 0.02;
    o.encrypt = true;
    o.settings_fn = set_identity_kv;
    rumor_sim *s = h_sim_new_opts(&o);
    assert_int_equal(rumor_sim_warm_start(s), 0);
    h_run(s, 3000);
    static uint8_t big[40000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 11 + 1);
    assert_int_equal(
        rumor_node_kv_put(rumor_sim_node(s, 5), "big", 3, big, sizeof(big), rumor_sim_now(s)), 0);
    rumor_sim_poke(s, 5);
    for (uint32_t w = 10; w <= 30; w += 10) {
        char v[8];
        snprintf(v, sizeof(v), "w%u", w);
        assert_int_equal(
            rumor_node_shared_put(rumor_sim_node(s, w), "cfg", 3, v, strlen(v), rumor_sim_now(s)),
            0);
        rumor_sim_poke(s, w);
        h_run(s, 1000);
    }
    h_run(s, 30000);
    uint64_t want = rumor_node_kv_digest(rumor_sim_node(s, 0));
    for (uint32_t i = 0; i < n; i++) {
        rumor_node *nd = rumor_sim_node(s, i);
        h_check(s, rumor_node_kv_digest(nd) == want, "node-%u differs", i);
        rumor_kv_value v;
        h_check(s,
                rumor_node_kv_get(nd, "node-5", "big", 3, &v) == 0 && v.len == sizeof(big) &&
                    memcmp(v.value, big, sizeof(big)) == 0,
                "node-%u lacks the large value", i);
        h_check(s,
                rumor_node_shared_get(nd, "cfg", 3, &v) == 0 && v.len == 3 &&
                    memcmp(v.value, "w30", 3) == 0,
                "node-%u reads another cfg", i);
        /* node-10 and node-20 retired their superseded writes, collected the signed tombstones
         * and every replica learned the signed horizons: their entries are gone everywhere. */
        rumor_kv_origin_info oi;
        for (uint32_t w = 10; w <= 20; w += 10) {
            char on[16];
            snprintf(on, sizeof(on), "node-%u", w);
            h_check(s,
                    rumor_node_kv_lookup(nd, on, "cfg", 3, true, NULL) == RUMOR_ERR_NOT_FOUND &&
                        rumor_node_kv_origin_info(nd, on, &oi) == 0 && oi.gc_version == 2,
                    "node-%u still holds %s's superseded write", i, on);
        }
    }
    for (int r = 0; r < RUMOR_IDENT_REFUSAL_COUNT; r++)
        h_check(s, refused(s, n, (rumor_ident_refusal)r) == 0, "%" PRIu64 " claims refused (%s)",
                refused(s, n, (rumor_ident_refusal)r),
                rumor_ident_refusal_name((rumor_ident_refusal)r));
    rumor_sim_metrics m;
    rumor_sim_metrics_get(s, &m);
    h_check(s, m.dropped_auth_failed == 0 && m.dropped_plaintext == 0,
            "sealed traffic refused: auth_failed %" PRIu64 ", plaintext %" PRIu64,
            m.dropped_auth_failed, m.dropped_plaintext);
    h_note("sealed and signed key-value: %" PRIu64 " signatures verified", ident_total(s, n, true));
    rumor_sim_del(s);
}

/*
 * A cluster started formed with identities (every node pins every other's key, no one ever
 * announced itself, so few hold each member's signed claim) takes key-value writes while one node
 * crashes and restarts, another leaves and rejoins, and a third restarts before it is found
 * failed, all empty (no snapshot). The returning
 * nodes must learn every member, signed claim and all, and every replica must end identical:
 * before members that never announced themselves introduced themselves to returning ones, the
 * returners dropped quiet members' key-value state as a non-member's for many push-pull rounds.
 */
static void kv_write(rumor_sim *s, uint32_t w, uint32_t k)
{
    char key[16], val[16];
    snprintf(key, sizeof(key), "k%u", k % 7);
    snprintf(val, sizeof(val), "v%u", k);
    if (rumor_sim_node_state_of(s, w) != RUMOR_SIM_UP)
        return;
    assert_int_equal(rumor_node_kv_put(rumor_sim_node(s, w), key, strlen(key), val, strlen(val),
                                       rumor_sim_now(s)),
                     0);
    rumor_sim_poke(s, w);
}

static void test_kv_converges_after_restart_and_rejoin(void **state)
{
    (void)state;
    const uint32_t n = 60, crasher = 11, leaver = 23, quick = 37;
    rumor_sim_options o;
    rumor_sim_options_default(&o, RUMOR_PROFILE_LAN);
    o.seed = h_seed(61);
    o.nodes = n;
    o.settings_fn = set_identity_kv;
    rumor_sim *s = h_sim_new_opts(&o);
    assert_int_equal(rumor_sim_warm_start(s), 0);
    uint32_t k = 0;
    /* Writes from every node, a few per second, through the crash and the leave. */
    for (uint32_t t = 0; t < 70; t++) {
        for (uint32_t j = 0; j < 4; j++, k++)
            kv_write(s, (k * 7) % n, k);
        if (t == 5)
            assert_int_equal(rumor_sim_node_crash(s, crasher), 0);
        if (t == 8)
            assert_int_equal(rumor_sim_node_leave(s, leaver), 0);
        if (t == 30)
            assert_int_equal(rumor_sim_node_restart(s, crasher, true, 0), 0);
        if (t == 40) /* back before it is found failed: only its new incarnation shows */
            assert_int_equal(rumor_sim_node_crash(s, quick), 0);
        if (t == 42)
            assert_int_equal(rumor_sim_node_restart(s, quick, true, 0), 0);
        if (t == 35) {
            h_check(s, rumor_sim_node_state_of(s, leaver) == RUMOR_SIM_GONE, "node-%u has not left",
                    leaver);
            assert_int_equal(rumor_sim_node_restart(s, leaver, true, 0), 0);
        }
        h_run(s, 1000);
    }
    h_run(s, 10000);
    rumor_node *ref = rumor_sim_node(s, 0);
    uint64_t want = rumor_node_kv_digest(ref);
    size_t count = rumor_node_kv_count(ref);
    for (uint32_t i = 0; i < n; i++) {
        rumor_node *nd = rumor_sim_node(s, i);
        h_check(s, nd && rumor_sim_node_state_of(s, i) == RUMOR_SIM_UP, "node-%u is not up", i);
        h_check(s, rumor_node_kv_digest(nd) == want && rumor_node_kv_count(nd) == count,
                "node-%u's replica differs (%zu entries, node-0 %zu)", i, rumor_node_kv_count(nd),
                count);
        h_check(s, h_table_count(s, i, RUMOR_MEMBER_ALIVE) == n,
                "node-%u knows %u members alive of %u", i, h_table_count(s, i, RUMOR_MEMBER_ALIVE),
                n);
    }
    for (int r = 0; r < RUMOR_IDENT_REFUSAL_COUNT; r++)
        h_check(s, refused(s, n, (rumor_ident_refusal)r) == 0, "%" PRIu64 " claims refused (%s)",
                refused(s, n, (rumor_ident_refusal)r),
                rumor_ident_refusal_name((rumor_ident_refusal)r));
    h_note("%zu entries identical on %u nodes after two restarts and a rejoin", count, n);
    rumor_sim_del(s);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uncertified_not_admitted),
        cmocka_unit_test(test_hostile_relay),
        cmocka_unit_test(test_crash_with_identities),
        cmocka_unit_test(test_identity_with_encryption),
        cmocka_unit_test(test_kv_streams_sealed_and_signed),
        cmocka_unit_test(test_kv_converges_after_restart_and_rejoin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
