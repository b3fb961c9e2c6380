/*
 * Per-node identity (docs/protocol.md section 12): signed claims round-trip through a cluster;
 * a relay that alters or forges another node's alive record, accusation, leave or key-value
 * state is refused and counted; trust on first use pins keys while a member is known; a cluster
 * authority admits only certified members; each signed record is verified once.
 *
 * The receiver `r` is a bare engine fed hand-built packets from "relay" addresses: every claim
 * in these tests arrives second-hand, signed (or not) with keys the test holds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/ident.h"
#include "core/kv.h"
#include "core/wire.h"
#include "helper_net.h"
#include "rumor.h"

#define NOW 100000u

typedef struct key {
    uint8_t seed[32], pk[32], sk[64];
} key;

static key key_of(uint8_t i)
{
    key k;
    memset(k.seed, i, sizeof(k.seed));
    crypto_sign_seed_keypair(k.pk, k.sk, k.seed);
    return k;
}

static wire_str S(const char *s)
{
    return wire_str_of(s, strlen(s));
}

static rumor_addr addr_of(uint8_t i)
{
    rumor_addr a;
    memset(&a, 0, sizeof(a));
    a.len = 4;
    a.bytes[0] = 10;
    a.bytes[3] = i;
    return a;
}

/* A receiver "r" with identity key 1 and, when `ca` is given, that authority. */
static rumor_node *receiver(const key *ca)
{
    rumor_settings s;
    rumor_settings_default(&s, RUMOR_PROFILE_LOCAL);
    s.name = "r";
    s.addr = addr_of(1);
    s.seed = 7;
    s.identity = true;
    key me = key_of(1);
    memcpy(s.identity_seed, me.seed, 32);
    if (ca) {
        s.identity_ca = true;
        memcpy(s.identity_ca_key, ca->pk, 32);
    }
    rumor_node *n = NULL;
    assert_int_equal(rumor_node_new(&n, &s, NOW), 0);
    return n;
}

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

static void deliver(rumor_node *n, pkt *p, uint8_t relay)
{
    rumor_addr from = addr_of(relay);
    assert_false(p->w.failed);
    assert_int_equal(rumor_node_receive(n, &from, p->b, p->w.len, NOW), 0);
}

typedef struct cert {
    bool has;
    uint8_t sig[64];
    uint64_t expires;
} cert;

/* An ALIVE about `name` at `inc` with `meta`, signed by `signer` (its key in the block is
 * `claimed`, normally the signer's own). */
static void put_alive(buf_writer *w, const char *name, uint32_t inc, const char *meta,
                      const key *signer, const uint8_t *claimed, const cert *c)
{
    rumor_addr a = addr_of(50);
    uint8_t stmt[IDENT_STMT_MAX], sig[64];
    size_t len = ident_stmt_alive(stmt, S(name), inc, &a, S(meta));
    crypto_sign_detached(sig, NULL, stmt, len, signer->sk);
    wire_ident id = {.present = true, .pk = claimed ? claimed : signer->pk, .sig = sig};
    if (c && c->has) {
        id.has_cert = true;
        id.cert = c->sig;
        id.cert_expires_ms = c->expires;
    }
    wire_put_alive_ident(w, inc, S(name), &a, S(meta), &id);
}

static void alive(rumor_node *n, const char *name, uint32_t inc, const char *meta, const key *k,
                  const cert *c)
{
    pkt p;
    put_alive(pkt_begin(&p), name, inc, meta, k, NULL, c);
    deliver(n, &p, 200);
}

static void put_accuse(buf_writer *w, uint8_t type, const char *name, uint32_t inc,
                       const char *accuser, const key *signer)
{
    uint8_t stmt[IDENT_STMT_MAX], sig[64];
    size_t len = type == WIRE_LEFT ? ident_stmt_left(stmt, S(name), inc)
                                   : ident_stmt_accuse(stmt, type, inc, S(name), S(accuser));
    crypto_sign_detached(sig, NULL, stmt, len, signer->sk);
    wire_put_accuse_ident(w, type, inc, S(name), S(accuser), sig);
}

static uint8_t *find(uint8_t *hay, size_t len, const char *needle)
{
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= len; i++)
        if (memcmp(hay + i, needle, nl) == 0)
            return hay + i;
    return NULL;
}

static rumor_stats stats(rumor_node *n)
{
    rumor_stats st;
    rumor_node_stats(n, &st);
    return st;
}

static int state_of(rumor_node *n, const char *name, uint32_t *inc)
{
    rumor_member m;
    if (rumor_node_member_find(n, name, &m) != 0)
        return -1;
    if (inc)
        *inc = m.incarnation;
    return (int)m.state;
}

static bool meta_is(rumor_node *n, const char *name, const char *meta)
{
    rumor_member m;
    return rumor_node_member_find(n, name, &m) == 0 && m.meta_len == strlen(meta) &&
           (m.meta_len == 0 || memcmp(m.meta, meta, m.meta_len) == 0);
}

static void drain(rumor_node *n)
{
    rumor_datagram d;
    rumor_stream_op op;
    rumor_event ev;
    while (rumor_node_poll_datagram(n, &d) || rumor_node_poll_stream(n, &op) ||
           rumor_node_poll_event(n, &ev))
        ;
}

/* ---- signed claims across a real cluster ---- */

static void test_cluster_with_identities(void **ctx)
{
    (void)ctx;
    tnet *t = tnet_new(5, RUMOR_PROFILE_LOCAL, 71);
    key keys[5];
    for (int i = 0; i < 5; i++) {
        keys[i] = key_of((uint8_t)(10 + i));
        rumor_settings *s = tnet_settings(t, i);
        s->identity = true;
        memcpy(s->identity_seed, keys[i].seed, 32);
        tnet_start(t, i);
    }
    for (int i = 1; i < 5; i++)
        tnet_join(t, i, 0);
    tnet_run(t, tnet_now(t) + 4000);
    const char *v = "blue";
    assert_int_equal(rumor_node_kv_put(tnet_node(t, 3), "color", 5, v, 4, tnet_now(t)), 0);
    assert_int_equal(rumor_node_shared_put(tnet_node(t, 4), "leader", 6, "n4", 2, tnet_now(t)), 0);
    assert_int_equal(
        rumor_node_set_meta(tnet_node(t, 2), (const uint8_t *)"role=db", 7, tnet_now(t)), 0);
    /* Gossip may miss a member (2 sends each in the local profile); the periodic push-pull
     * (15 s) repairs that with signed records too. */
    tnet_run(t, tnet_now(t) + 20000);
    for (int i = 0; i < 5; i++) {
        rumor_node *n = tnet_node(t, i);
        assert_int_equal(rumor_node_member_count(n), 5);
        for (int j = 0; j < 5; j++) {
            char name[16];
            snprintf(name, sizeof(name), "n%d", j);
            rumor_member m;
            assert_int_equal(rumor_node_member_find(n, name, &m), 0);
            assert_int_equal(m.state, RUMOR_MEMBER_ALIVE);
            assert_non_null(m.public_key);
            assert_memory_equal(m.public_key, keys[j].pk, 32);
        }
        assert_true(meta_is(n, "n2", "role=db"));
        rumor_kv_value kv;
        assert_int_equal(rumor_node_kv_get(n, "n3", "color", 5, &kv), 0);
        assert_int_equal(kv.len, 4);
        assert_int_equal(rumor_node_shared_get(n, "leader", 6, &kv), 0);
        rumor_stats st = stats(n);
        assert_true(st.ident_signed > 0);
        assert_true(st.ident_verified > 0);
        for (int r = 0; r < RUMOR_IDENT_REFUSAL_COUNT; r++)
            assert_int_equal(st.ident_refused[r], 0);
        assert_int_equal(st.dropped[RUMOR_DROP_IDENTITY], 0);
    }
    tnet_free(t);
}

/* What the event hook saw: user events delivered, and whether each named its sender's key. */
typedef struct user_seen {
    const key *keys;
    int delivered, with_key;
} user_seen;

static void user_hook(tnet *t, int node, const rumor_event *ev, void *ud)
{
    (void)t;
    (void)node;
    user_seen *u = ud;
    if (ev->type != RUMOR_EVENT_USER)
        return;
    u->delivered++;
    /* Sent by n0: the event's member is the sender, with its key. */
    if (ev->member.public_key && memcmp(ev->member.public_key, u->keys[0].pk, 32) == 0)
        u->with_key++;
}

/* Identities and encryption at once: every packet sealed under the keyring, every claim signed.
 * The cluster forms, replicates signed writes and metadata, delivers a user event (whose member
 * carries its sender's key), refuses no honest claim and drops none of its own packets. */
static void test_sealed_cluster_with_identities(void **ctx)
{
    (void)ctx;
    static const uint8_t ring[1][RUMOR_KEY_BYTES] = {
        {0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d,
         0x3e, 0x3f, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
         0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f, 0x50, 0x51, 0x52}};
    const int n = 4;
    tnet *t = tnet_new(n, RUMOR_PROFILE_LOCAL, 72);
    key keys[4];
    for (int i = 0; i < n; i++) {
        keys[i] = key_of((uint8_t)(20 + i));
        rumor_settings *s = tnet_settings(t, i);
        s->identity = true;
        memcpy(s->identity_seed, keys[i].seed, 32);
        s->keys = ring;
        s->nkeys = 1;
        memset(s->seal_secret, 0x60 + i, sizeof(s->seal_secret));
        s->seal_epoch = 1000;
        tnet_start(t, i);
    }
    for (int i = 1; i < n; i++)
        tnet_join(t, i, 0);
    tnet_run(t, tnet_now(t) + 4000);
    user_seen u = {.keys = keys};
    tnet_set_event_hook(t, user_hook, &u);
    assert_int_equal(rumor_node_kv_put(tnet_node(t, 1), "k", 1, "v", 1, tnet_now(t)), 0);
    assert_int_equal(
        rumor_node_set_meta(tnet_node(t, 2), (const uint8_t *)"role=db", 7, tnet_now(t)), 0);
    assert_int_equal(rumor_node_event(tnet_node(t, 0), "deploy", "v2", 2, tnet_now(t)), 0);
    for (int i = 0; i < n; i++)
        tnet_poll(t, i);
    tnet_run(t, tnet_now(t) + 20000);
    assert_int_equal(u.delivered, n);
    assert_int_equal(u.with_key, n);
    for (int i = 0; i < n; i++) {
        rumor_node *nd = tnet_node(t, i);
        assert_int_equal(rumor_node_member_count(nd), n);
        for (int j = 0; j < n; j++) {
            char name[16];
            snprintf(name, sizeof(name), "n%d", j);
            rumor_member m;
            assert_int_equal(rumor_node_member_find(nd, name, &m), 0);
            assert_int_equal(m.state, RUMOR_MEMBER_ALIVE);
            assert_non_null(m.public_key);
            assert_memory_equal(m.public_key, keys[j].pk, 32);
        }
        assert_true(meta_is(nd, "n2", "role=db"));
        rumor_kv_value kv;
        assert_int_equal(rumor_node_kv_get(nd, "n1", "k", 1, &kv), 0);
        rumor_stats st = stats(nd);
        assert_true(st.ident_signed > 0 && st.ident_verified > 0);
        for (int r = 0; r < RUMOR_IDENT_REFUSAL_COUNT; r++)
            assert_int_equal(st.ident_refused[r], 0);
        for (int r = 0; r < RUMOR_DROP_REASON_COUNT; r++)
            if (r != RUMOR_DROP_STALE && r != RUMOR_DROP_UNKNOWN_TYPE)
                assert_int_equal(st.dropped[r], 0);
    }
    tnet_free(t);
}

/* A node without an identity in a cluster with identities: never admitted, counted. */
static void test_unsigned_node_refused(void **ctx)
{
    (void)ctx;
    tnet *t = tnet_new(4, RUMOR_PROFILE_LOCAL, 72);
    for (int i = 0; i < 3; i++) {
        rumor_settings *s = tnet_settings(t, i);
        s->identity = true;
        key k = key_of((uint8_t)(20 + i));
        memcpy(s->identity_seed, k.seed, 32);
    }
    for (int i = 0; i < 4; i++)
        tnet_start(t, i);
    for (int i = 1; i < 4; i++)
        tnet_join(t, i, 0);
    tnet_run(t, tnet_now(t) + 5000);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tnet_state(t, i, 3), -1);
        assert_int_equal(rumor_node_member_count(tnet_node(t, i)), 3);
    }
    assert_true(stats(tnet_node(t, 0)).ident_refused[RUMOR_IDENT_UNSIGNED] > 0);
    /* It got no state back from the seed either. */
    assert_int_equal(rumor_node_member_count(tnet_node(t, 3)), 1);
    tnet_free(t);
}

/* ---- alive claims ---- */

static void test_alive_round_trip_and_alteration(void **ctx)
{
    (void)ctx;
    rumor_node *r = receiver(NULL);
    key x = key_of(2);
    alive(r, "x", 3, "zone=a", &x, NULL);
    assert_int_equal(state_of(r, "x", NULL), RUMOR_MEMBER_ALIVE);
    rumor_member m;
    assert_int_equal(rumor_node_member_find(r, "x", &m), 0);
    assert_memory_equal(m.public_key, x.pk, 32);

    /* A relay alters the metadata of a genuine newer claim: the signature no longer matches. */
    pkt p;
    put_alive(pkt_begin(&p), "x", 4, "zone=a", &x, NULL, NULL);
    uint8_t *meta = find(p.b, p.w.len, "zone=a");
    assert_non_null(meta);
    meta[5] = 'b';
    deliver(r, &p, 201);
    assert_true(meta_is(r, "x", "zone=a"));
    uint32_t inc;
    assert_int_equal(state_of(r, "x", &inc), RUMOR_MEMBER_ALIVE);
    assert_int_equal(inc, 3);
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_BAD_ALIVE], 1);

    /* ... or raises its incarnation: also refused. */
    put_alive(pkt_begin(&p), "x", 4, "zone=a", &x, NULL, NULL);
    p.b[5 + 2] = 9; /* header, type, length, then the incarnation varint */
    deliver(r, &p, 201);
    assert_int_equal(state_of(r, "x", &inc), RUMOR_MEMBER_ALIVE);
    assert_int_equal(inc, 3);
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_BAD_ALIVE], 2);

    /* The genuine claim still goes through, so the checks above can fail. */
    alive(r, "x", 4, "zone=b", &x, NULL);
    assert_true(meta_is(r, "x", "zone=b"));
    assert_int_equal(stats(r).dropped[RUMOR_DROP_IDENTITY], 2);
    drain(r);
    rumor_node_del(r);
}

static void test_forged_alive_and_tofu(void **ctx)
{
    (void)ctx;
    rumor_node *r = receiver(NULL);
    key x = key_of(2), evil = key_of(9);
    alive(r, "x", 3, "", &x, NULL);

    /* A relay forges a newer life of x with its own key: the pinned key says no. */
    alive(r, "x", 10, "evil=1", &evil, NULL);
    assert_true(meta_is(r, "x", ""));
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_KEY_MISMATCH], 1);
    rumor_ident_refused_info info;
    assert_int_equal(rumor_node_ident_last_refused(r, RUMOR_IDENT_KEY_MISMATCH, &info), 0);
    assert_string_equal(info.name, "x");
    rumor_addr relay = addr_of(200);
    assert_true(rumor_addr_equal(&info.from, &relay));
    assert_int_equal(rumor_node_ident_last_refused(r, RUMOR_IDENT_BAD_CERT, &info),
                     RUMOR_ERR_NOT_FOUND);
    /* ... or claims x's key without x's signature. */
    pkt p;
    put_alive(pkt_begin(&p), "x", 10, "evil=1", &evil, x.pk, NULL);
    deliver(r, &p, 202);
    assert_true(meta_is(r, "x", ""));
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_BAD_ALIVE], 1);
    /* ... or sends it unsigned. */
    rumor_addr a = addr_of(50);
    wire_put_alive(pkt_begin(&p), 11, S("x"), &a, S("evil=1"));
    deliver(r, &p, 202);
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_UNSIGNED], 1);
    assert_true(meta_is(r, "x", ""));

    /* An alive about r itself signed by another key: refused, and r does not refute. */
    uint32_t before = stats(r).incarnation;
    alive(r, "r", 40, "", &evil, NULL);
    assert_int_equal(stats(r).incarnation, before);
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_KEY_MISMATCH], 2);
    /* An older life of r signed by r's key is genuine: r outbids it. */
    key me = key_of(1);
    alive(r, "r", 40, "old", &me, NULL);
    assert_int_equal(stats(r).incarnation, 41);

    /* The pin lasts while x is known: x leaves (signed), is reaped, and a new key is accepted. */
    put_accuse(pkt_begin(&p), WIRE_LEFT, "x", 3, "", &evil);
    deliver(r, &p, 202); /* a forged leave first */
    assert_int_equal(state_of(r, "x", NULL), RUMOR_MEMBER_ALIVE);
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_BAD_LEFT], 1);
    put_accuse(pkt_begin(&p), WIRE_LEFT, "x", 3, "", &x);
    deliver(r, &p, 202);
    assert_int_equal(state_of(r, "x", NULL), RUMOR_MEMBER_LEFT);
    rumor_node_tick(r, NOW + 25u * 3600u * 1000u);
    assert_int_equal(state_of(r, "x", NULL), -1);
    drain(r);
    pkt q;
    put_alive(pkt_begin(&q), "x", 1, "new", &evil, NULL, NULL);
    rumor_addr from = addr_of(203);
    assert_int_equal(rumor_node_receive(r, &from, q.b, q.w.len, NOW + 25u * 3600u * 1000u), 0);
    rumor_member m;
    assert_int_equal(rumor_node_member_find(r, "x", &m), 0);
    assert_memory_equal(m.public_key, evil.pk, 32);
    drain(r);
    rumor_node_del(r);
}

/* ---- the cluster authority ---- */

static cert cert_for(const key *ca, const char *name, const key *k, uint64_t expires)
{
    cert c = {.has = true, .expires = expires};
    assert_int_equal(rumor_identity_cert_sign(ca->seed, name, k->pk, expires, c.sig), 0);
    assert_int_equal(rumor_identity_cert_verify(ca->pk, name, k->pk, expires, c.sig), 0);
    return c;
}

static void test_ca_admission(void **ctx)
{
    (void)ctx;
    key ca = key_of(100), other_ca = key_of(101);
    rumor_node *r = receiver(&ca);
    key x = key_of(2), y = key_of(3), z = key_of(4), w = key_of(5), v = key_of(6);

    cert cx = cert_for(&ca, "x", &x, 0);
    alive(r, "x", 1, "", &x, &cx);
    assert_int_equal(state_of(r, "x", NULL), RUMOR_MEMBER_ALIVE);

    alive(r, "y", 1, "", &y, NULL); /* no certificate */
    cert cz = cert_for(&other_ca, "z", &z, 0);
    alive(r, "z", 1, "", &z, &cz); /* another authority's */
    cert cw = cert_for(&ca, "w", &w, NOW - 1);
    alive(r, "w", 1, "", &w, &cw); /* expired (wall clock = now here) */
    cert cv = cert_for(&ca, "x", &v, 0);
    alive(r, "v", 1, "", &v, &cv); /* certificate of another name */
    for (const char *nm = "yzwv"; *nm; nm++) {
        char name[2] = {*nm, 0};
        assert_int_equal(state_of(r, name, NULL), -1);
    }
    rumor_stats st = stats(r);
    assert_int_equal(st.ident_refused[RUMOR_IDENT_NO_CERT], 1);
    assert_int_equal(st.ident_refused[RUMOR_IDENT_BAD_CERT], 2);
    assert_int_equal(st.ident_refused[RUMOR_IDENT_CERT_EXPIRED], 1);
    assert_int_equal(rumor_identity_cert_verify(ca.pk, "x", v.pk, 0, cv.sig), 0);
    assert_int_equal(rumor_identity_cert_verify(ca.pk, "v", v.pk, 0, cv.sig), RUMOR_ERR_AUTH);

    /* Someone with a valid certificate of its own cannot take x's name: the certificate binds
     * (name, key). The authority can re-key x, though. */
    cert cvx = cert_for(&ca, "v", &v, 0);
    alive(r, "x", 5, "taken", &v, &cvx);
    assert_true(meta_is(r, "x", ""));
    key x2 = key_of(7);
    cert cx2 = cert_for(&ca, "x", &x2, NOW + 3600000u);
    alive(r, "x", 6, "rekeyed", &x2, &cx2);
    assert_true(meta_is(r, "x", "rekeyed"));
    drain(r);
    rumor_node_del(r);
}

/* ---- accusations ---- */

static void test_accusations(void **ctx)
{
    (void)ctx;
    rumor_node *r = receiver(NULL);
    key x = key_of(2), a = key_of(3), evil = key_of(9);
    alive(r, "x", 1, "", &x, NULL);
    alive(r, "a", 1, "", &a, NULL);
    alive(r, "evil", 1, "", &evil, NULL);
    drain(r);

    pkt p;
    /* evil accuses x in a's name: refused as forged, counted. */
    put_accuse(pkt_begin(&p), WIRE_SUSPECT, "x", 1, "a", &evil);
    deliver(r, &p, 210);
    put_accuse(pkt_begin(&p), WIRE_FAILED, "x", 1, "a", &evil);
    deliver(r, &p, 210);
    assert_int_equal(state_of(r, "x", NULL), RUMOR_MEMBER_ALIVE);
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_BAD_ACCUSATION], 2);
    /* An accuser nobody knows, and an unsigned accusation. */
    put_accuse(pkt_begin(&p), WIRE_SUSPECT, "x", 1, "ghost", &evil);
    wire_put_accuse(&p.w, WIRE_FAILED, 1, S("x"), S("a"));
    deliver(r, &p, 210);
    assert_int_equal(state_of(r, "x", NULL), RUMOR_MEMBER_ALIVE);
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_UNKNOWN_KEY], 1);
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_UNSIGNED], 1);

    /* a's genuine suspicion, relayed: applied, and the event names a. */
    put_accuse(pkt_begin(&p), WIRE_SUSPECT, "x", 1, "a", &a);
    deliver(r, &p, 210);
    assert_int_equal(state_of(r, "x", NULL), RUMOR_MEMBER_SUSPECT);
    rumor_event ev;
    bool seen = false;
    while (rumor_node_poll_event(r, &ev))
        if (ev.type == RUMOR_EVENT_MEMBER_SUSPECT && strcmp(ev.member.name, "x") == 0) {
            assert_string_equal(ev.accuser, "a");
            assert_memory_equal(ev.member.public_key, x.pk, 32);
            seen = true;
        }
    assert_true(seen);
    /* r passes it on with a's signature: the re-broadcast verifies under a's key. */
    rumor_node_tick(r, NOW + 1000);
    rumor_datagram d;
    bool relayed = false;
    while (rumor_node_poll_datagram(r, &d)) {
        buf_reader br;
        buf_reader_init(&br, d.data, d.len);
        wire_header h;
        assert_int_equal(wire_header_decode(&br, &h), 0);
        wire_msg m;
        while (wire_msg_decode(&br, &m, RUMOR_META_MAX) == 1) {
            if (m.type != WIRE_SUSPECT || m.u.accuse.accuser.len != 1 ||
                m.u.accuse.accuser.p[0] != 'a')
                continue; /* r's own buddy-system suspicion rides on its probe of x too */
            wire_ident id;
            wire_accuse_ident(&m, &id);
            assert_true(id.present);
            uint8_t stmt[IDENT_STMT_MAX];
            size_t len = ident_stmt_accuse(stmt, WIRE_SUSPECT, 1, S("x"), S("a"));
            assert_int_equal(crypto_sign_verify_detached(id.sig, stmt, len, a.pk), 0);
            relayed = true;
        }
    }
    assert_true(relayed);

    /* A forged accusation of r itself does not make it refute; a genuine one does. */
    uint32_t inc0 = stats(r).incarnation;
    put_accuse(pkt_begin(&p), WIRE_FAILED, "r", inc0, "a", &evil);
    deliver(r, &p, 211);
    assert_int_equal(stats(r).incarnation, inc0);
    put_accuse(pkt_begin(&p), WIRE_FAILED, "r", inc0, "a", &a);
    deliver(r, &p, 211);
    assert_int_equal(stats(r).incarnation, inc0 + 1);
    drain(r);
    rumor_node_del(r);
}

/* ---- key-value state ---- */

typedef struct kv_ent {
    const char *key, *value;
    uint64_t version;
} kv_ent;

/* A KV_DELTA of origin `o` signed by `k`: entries, head (max, gc), COMPLETE when asked. */
static void put_delta(buf_writer *w, const char *o, const key *k, const kv_ent *e, uint32_t n,
                      uint64_t max, uint64_t gc, uint8_t flags)
{
    uint8_t stmt[IDENT_STMT_MAX], sigs[8][64];
    size_t bytes = 0;
    wire_kv_entry we[8];
    for (uint32_t i = 0; i < n; i++) {
        we[i] = (wire_kv_entry){S(e[i].key), e[i].version, 0, 0, S(e[i].value)};
        bytes += wire_kv_entry_size(&we[i]);
        size_t len = ident_stmt_kv_entry(stmt, S(o), &we[i]);
        crypto_sign_detached(sigs[i], NULL, stmt, len, k->sk);
    }
    uint8_t head[64];
    size_t len = ident_stmt_kv_head(stmt, S(o), max, gc);
    crypto_sign_detached(head, NULL, stmt, len, k->sk);
    wire_put_kv_delta_begin(w, S(o), flags, 0, max, gc, n, bytes + wire_kv_sigs_size(n));
    for (uint32_t i = 0; i < n; i++)
        wire_put_kv_entry(w, &we[i]);
    buf_put_u8(w, WIRE_IDENT_V1);
    buf_put_bytes(w, head, 64);
    for (uint32_t i = 0; i < n; i++)
        buf_put_bytes(w, sigs[i], 64);
}

static bool kv_is(rumor_node *n, const char *o, const char *k, const char *v)
{
    rumor_kv_value kv;
    if (rumor_node_kv_get(n, o, k, strlen(k), &kv) != 0)
        return v == NULL;
    return v && kv.len == strlen(v) && memcmp(kv.value, v, kv.len) == 0;
}

/* ---- user events, queries and responses (section 12.1) ---- */

static void put_event(buf_writer *w, uint64_t lt, const char *origin, const char *name,
                      const char *payload, const key *signer)
{
    uint8_t stmt[IDENT_STMT_MAX], sig[64];
    size_t len = ident_stmt_event(stmt, S(origin), lt, S(name), S(payload));
    crypto_sign_detached(sig, NULL, stmt, len, signer->sk);
    wire_put_user_event_sig(w, lt, S(origin), S(name), S(payload), sig);
}

static void put_query(buf_writer *w, uint64_t lt, uint32_t id, const char *origin, const char *name,
                      const key *signer)
{
    uint8_t rest[64], stmt[IDENT_STMT_MAX], sig[64];
    buf_writer r;
    buf_writer_init_fixed(&r, rest, sizeof(rest));
    wire_put_query_rest(&r, NULL, 0, NULL, NULL, 0, S(name), S("p"));
    rumor_addr a = addr_of(50);
    size_t len = ident_stmt_query(stmt, S(origin), lt, id, wire_str_of(a.bytes, a.len), 0, 5000,
                                  wire_str_of(rest, r.len));
    crypto_sign_detached(sig, NULL, stmt, len, signer->sk);
    wire_put_query_sig(w, lt, id, S(origin), &a, 0, 5000, wire_str_of(rest, r.len), sig);
}

static void test_events_and_queries_signed(void **ctx)
{
    (void)ctx;
    rumor_node *r = receiver(NULL);
    key x = key_of(2), a = key_of(3), evil = key_of(9);
    alive(r, "x", 1, "", &x, NULL);
    alive(r, "a", 1, "", &a, NULL);
    alive(r, "evil", 1, "", &evil, NULL);
    drain(r);
    rumor_stats st0 = stats(r);

    /* x's event, relayed: delivered, and its time witnessed. */
    pkt p;
    put_event(pkt_begin(&p), 3, "x", "deploy", "v1", &x);
    deliver(r, &p, 210);
    rumor_stats st = stats(r);
    assert_int_equal(st.user_events_delivered, 1);
    assert_int_equal(st.event_ltime, 4);
    assert_int_equal(st.ident_verified, st0.ident_verified + 1);
    /* The same event again (gossip delivers most several times): a duplicate, not verified. */
    deliver(r, &p, 211);
    assert_int_equal(stats(r).ident_verified, st.ident_verified);
    assert_int_equal(stats(r).user_events_delivered, 1);

    /* Forged in x's name by evil, altered in flight, unsigned, from a stranger: none is
     * delivered, none moves the clock, each is counted by reason. */
    put_event(pkt_begin(&p), 900, "x", "deploy", "v2", &evil);
    deliver(r, &p, 210);
    put_event(pkt_begin(&p), 901, "x", "deploy", "v3", &x);
    uint8_t *v = find(p.b, p.w.len, "v3");
    v[1] = '4'; /* "v4" under a signature over "v3" */
    deliver(r, &p, 210);
    wire_put_user_event(pkt_begin(&p), 902, S("x"), S("deploy"), S("v5"));
    deliver(r, &p, 210);
    put_event(pkt_begin(&p), 903, "ghost", "deploy", "v6", &evil);
    deliver(r, &p, 210);
    st = stats(r);
    assert_int_equal(st.user_events_delivered, 1);
    assert_int_equal(st.event_ltime, 4);
    assert_int_equal(st.ident_refused[RUMOR_IDENT_BAD_EVENT], 2);
    assert_int_equal(st.ident_refused[RUMOR_IDENT_UNSIGNED], 1);
    assert_int_equal(st.ident_refused[RUMOR_IDENT_UNKNOWN_KEY], 1);
    /* The genuine one was relayed with x's signature: what r sends verifies under x's key. */
    rumor_node_tick(r, NOW + 1000);
    rumor_datagram d;
    bool relayed = false;
    while (rumor_node_poll_datagram(r, &d)) {
        buf_reader br;
        wire_header h;
        wire_msg m;
        buf_reader_init(&br, d.data, d.len);
        assert_int_equal(wire_header_decode(&br, &h), 0);
        while (wire_msg_decode(&br, &m, RUMOR_META_MAX) == 1) {
            if (m.type != WIRE_USER_EVENT)
                continue;
            assert_true(m.u.user_event.ltime == 3);
            const uint8_t *sig = wire_msg_sig(&m);
            assert_non_null(sig);
            uint8_t stmt[IDENT_STMT_MAX];
            size_t len = ident_stmt_event(stmt, S("x"), 3, S("deploy"), S("v1"));
            assert_int_equal(crypto_sign_verify_detached(sig, stmt, len, x.pk), 0);
            relayed = true;
        }
    }
    assert_true(relayed);
    drain(r);

    /* a's query is served; one asked in a's name by evil is not. */
    put_query(pkt_begin(&p), 7, 77, "a", "whoami", &a);
    deliver(r, &p, 212);
    put_query(pkt_begin(&p), 8, 78, "a", "whoami", &evil);
    deliver(r, &p, 212);
    st = stats(r);
    assert_int_equal(st.queries_served, 1);
    assert_int_equal(st.query_ltime, 8);
    assert_int_equal(st.ident_refused[RUMOR_IDENT_BAD_QUERY], 1);
    /* r answers a's query: the response is signed by r for asker a. */
    rumor_event ev;
    uint64_t qid = 0;
    while (rumor_node_poll_event(r, &ev))
        if (ev.type == RUMOR_EVENT_QUERY)
            qid = ev.query_id;
    assert_true(qid != 0);
    assert_int_equal(rumor_node_query_respond(r, qid, "ok", 2, NOW), 0);
    bool answered = false;
    while (rumor_node_poll_datagram(r, &d)) {
        buf_reader br;
        wire_header h;
        wire_msg m;
        buf_reader_init(&br, d.data, d.len);
        assert_int_equal(wire_header_decode(&br, &h), 0);
        while (wire_msg_decode(&br, &m, RUMOR_META_MAX) == 1) {
            if (m.type != WIRE_QUERY_RESP || m.u.query_resp.flags)
                continue;
            uint8_t stmt[IDENT_STMT_MAX];
            size_t len = ident_stmt_query_resp(stmt, S("r"), S("a"), 7, 77, 0, S("ok"));
            key me = key_of(1);
            assert_int_equal(crypto_sign_verify_detached(wire_msg_sig(&m), stmt, len, me.pk), 0);
            answered = true;
        }
    }
    assert_true(answered);

    /* r's own query: x's signed response is taken, one forged in x's name is not. */
    uint64_t mine;
    rumor_query_params qp = {0};
    qp.timeout_ms = 5000;
    assert_int_equal(rumor_node_query(r, "status", NULL, 0, &qp, &mine, NOW), 0);
    uint64_t qlt = stats(r).query_ltime - 1;
    /* The wire id is r's own choice: read it from the query r sends. */
    uint32_t wid = 0;
    bool asked = false;
    while (rumor_node_poll_datagram(r, &d)) {
        buf_reader br;
        wire_header h;
        wire_msg m;
        buf_reader_init(&br, d.data, d.len);
        assert_int_equal(wire_header_decode(&br, &h), 0);
        while (wire_msg_decode(&br, &m, RUMOR_META_MAX) == 1)
            if (m.type == WIRE_QUERY && m.u.query.ltime == qlt) {
                wid = m.u.query.id;
                asked = true;
            }
    }
    assert_true(asked);
    drain(r);
    uint8_t stmt[IDENT_STMT_MAX], sig[64];
    size_t len = ident_stmt_query_resp(stmt, S("x"), S("r"), qlt, wid, 0, S("fine"));
    crypto_sign_detached(sig, NULL, stmt, len, evil.sk);
    wire_put_query_resp_sig(pkt_begin(&p), qlt, wid, S("x"), 0, S("fine"), sig);
    deliver(r, &p, 213);
    assert_int_equal(stats(r).query_responses_in, 0);
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_BAD_QUERY], 2);
    crypto_sign_detached(sig, NULL, stmt, len, x.sk);
    wire_put_query_resp_sig(pkt_begin(&p), qlt, wid, S("x"), 0, S("fine"), sig);
    deliver(r, &p, 213);
    assert_int_equal(stats(r).query_responses_in, 1);
    rumor_node_del(r);
}

static void test_kv_signed(void **ctx)
{
    (void)ctx;
    rumor_node *r = receiver(NULL);
    key x = key_of(2), evil = key_of(9);
    alive(r, "x", 1, "", &x, NULL);
    alive(r, "evil", 1, "", &evil, NULL);

    kv_ent e[2] = {{"color", "red", 1}, {"size", "xl", 2}};
    pkt p;
    /* A relay changes a value in flight: the entry is refused, nothing after it is applied. */
    put_delta(pkt_begin(&p), "x", &x, e, 2, 2, 0, WIRE_KVX_COMPLETE);
    uint8_t *v = find(p.b, p.w.len, "red");
    v[0] = 'R';
    deliver(r, &p, 220);
    assert_true(kv_is(r, "x", "color", NULL));
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_BAD_KV], 1);
    /* evil signs x's keyspace with its own key. */
    put_delta(pkt_begin(&p), "x", &evil, e, 2, 2, 0, WIRE_KVX_COMPLETE);
    deliver(r, &p, 220);
    assert_true(kv_is(r, "x", "color", NULL));
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_BAD_KV], 2);

    /* The genuine delta applies; the same delta again verifies nothing new. (Its head claims
     * no more than its newest entry proves: two verifications, one per entry.) */
    put_delta(pkt_begin(&p), "x", &x, e, 2, 2, 0, WIRE_KVX_COMPLETE);
    uint64_t v0 = stats(r).ident_verified;
    deliver(r, &p, 220);
    assert_true(kv_is(r, "x", "color", "red"));
    assert_true(kv_is(r, "x", "size", "xl"));
    assert_int_equal(stats(r).ident_verified - v0, 2);
    deliver(r, &p, 221);
    assert_int_equal(stats(r).ident_verified - v0, 2);
    assert_int_equal(stats(r).ident_cached, 0);

    /* A forged head would push x's version far ahead (the replica would ignore x's next
     * writes) or reset its keyspace: refused before it changes anything. */
    kv_ent none[1] = {{"", "", 0}};
    put_delta(pkt_begin(&p), "x", &evil, none, 0, 1000, 0, WIRE_KVX_COMPLETE);
    deliver(r, &p, 222);
    put_delta(pkt_begin(&p), "x", &evil, none, 0, 1000, 999, WIRE_KVX_RESET | WIRE_KVX_COMPLETE);
    deliver(r, &p, 222);
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_BAD_KV], 4);
    kv_ent e3 = {"color", "green", 3};
    put_delta(pkt_begin(&p), "x", &x, &e3, 1, 3, 0, WIRE_KVX_COMPLETE);
    deliver(r, &p, 222);
    assert_true(kv_is(r, "x", "color", "green"));
    /* An unsigned delta (a node without identities) is refused as such. */
    buf_writer *w = pkt_begin(&p);
    wire_kv_entry we = {S("color"), 4, 0, 0, S("black")};
    wire_put_kv_delta_begin(w, S("x"), WIRE_KVX_COMPLETE, 0, 4, 0, 1, wire_kv_entry_size(&we));
    wire_put_kv_entry(w, &we);
    deliver(r, &p, 222);
    assert_true(kv_is(r, "x", "color", "green"));
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_UNSIGNED], 1);
    drain(r);
    rumor_node_del(r);
}

/* A KV_DELTA of origin `o` from `since`: entries signed by `k` (`tamper`: the value of the
 * one at that index is altered after signing), the head fields (max, gc) and in the head slot
 * `hk`'s signature over (hmax, hgc), or zeros when `hk` is NULL. */
static void put_delta_head(buf_writer *w, const char *o, const key *k, const kv_ent *e, uint32_t n,
                           int tamper, uint64_t since, uint64_t max, uint64_t gc, const key *hk,
                           uint64_t hmax, uint64_t hgc, uint8_t flags)
{
    uint8_t stmt[IDENT_STMT_MAX], sigs[8][64], head[64] = {0};
    size_t bytes = 0;
    wire_kv_entry we[8];
    for (uint32_t i = 0; i < n; i++) {
        we[i] = (wire_kv_entry){S(e[i].key), e[i].version, 0, 0, S(e[i].value)};
        size_t len = ident_stmt_kv_entry(stmt, S(o), &we[i]);
        crypto_sign_detached(sigs[i], NULL, stmt, len, k->sk);
        if ((int)i == tamper)
            we[i].value = S("forged");
        bytes += wire_kv_entry_size(&we[i]);
    }
    if (hk) {
        size_t len = ident_stmt_kv_head(stmt, S(o), hmax, hgc);
        crypto_sign_detached(head, NULL, stmt, len, hk->sk);
    }
    wire_put_kv_delta_begin(w, S(o), flags, since, max, gc, n, bytes + wire_kv_sigs_size(n));
    for (uint32_t i = 0; i < n; i++)
        wire_put_kv_entry(w, &we[i]);
    buf_put_u8(w, WIRE_IDENT_V1);
    buf_put_bytes(w, head, 64);
    for (uint32_t i = 0; i < n; i++)
        buf_put_bytes(w, sigs[i], 64);
}

static uint64_t origin_max(rumor_node *n, const char *o)
{
    rumor_kv_origin_info oi;
    assert_int_equal(rumor_node_kv_origin_info(n, o, &oi), 0);
    return oi.max_version;
}

static uint64_t origin_gc(rumor_node *n, const char *o)
{
    rumor_kv_origin_info oi;
    assert_int_equal(rumor_node_kv_origin_info(n, o, &oi), 0);
    return oi.gc_version;
}

/* A write proves its own version: the origin signs no new head for it, and a receiver checks
 * one signature per write. A head is checked only when it claims more than that (a max past the
 * entries, a horizon), and then it must be the origin's own over exactly those values. */
static void test_kv_write_proves_itself(void **ctx)
{
    (void)ctx;
    rumor_node *r = receiver(NULL);
    key x = key_of(2), y = key_of(3);
    alive(r, "x", 1, "", &x, NULL);
    alive(r, "y", 1, "", &y, NULL);
    pkt p;

    /* The origin: one signature per write (its head says nothing the entries do not). */
    uint64_t s0 = stats(r).ident_signed;
    assert_int_equal(rumor_node_kv_put(r, "a", 1, "1", 1, NOW), 0);
    assert_int_equal(rumor_node_kv_put(r, "b", 1, "2", 1, NOW), 0);
    assert_int_equal(rumor_node_kv_delete(r, "a", 1, NOW), 0);
    assert_int_equal(stats(r).ident_signed - s0, 3);

    /* Entries past the head: the empty head (0, 0) with a zero slot, and x's writes 1 and 2.
     * Applied at one verification per entry; the same delta again costs nothing. */
    kv_ent e[3] = {{"color", "red", 1}, {"size", "xl", 2}, {"color", "blue", 3}};
    uint64_t v0 = stats(r).ident_verified;
    put_delta_head(pkt_begin(&p), "x", &x, e, 2, -1, 0, 0, 0, NULL, 0, 0, WIRE_KVX_COMPLETE);
    deliver(r, &p, 220);
    assert_true(kv_is(r, "x", "size", "xl"));
    assert_int_equal(origin_max(r, "x"), 2);
    assert_int_equal(stats(r).ident_verified - v0, 2);
    deliver(r, &p, 221);
    assert_int_equal(stats(r).ident_verified - v0, 2);

    /* A max claimed by the newest entry is proven only if that entry is: a relay that alters
     * it (slot zeros, max 3 = the entry) gets neither the value nor the version in. */
    put_delta_head(pkt_begin(&p), "x", &x, &e[2], 1, 0, 2, 3, 0, NULL, 0, 0, WIRE_KVX_COMPLETE);
    deliver(r, &p, 222);
    assert_true(kv_is(r, "x", "color", "red"));
    assert_int_equal(origin_max(r, "x"), 2);
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_BAD_KV], 1);

    /* A max past the entries needs the origin's head over exactly that max: unsigned, or x's
     * genuine head over another max spliced in, it is refused and nothing is applied. */
    put_delta_head(pkt_begin(&p), "x", &x, &e[2], 1, -1, 2, 50, 0, NULL, 0, 0, WIRE_KVX_COMPLETE);
    deliver(r, &p, 222);
    put_delta_head(pkt_begin(&p), "x", &x, &e[2], 1, -1, 2, 50, 0, &x, 3, 0, WIRE_KVX_COMPLETE);
    deliver(r, &p, 222);
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_BAD_KV], 3);
    assert_int_equal(origin_max(r, "x"), 2);
    /* y's genuine write and head spliced into x's keyspace: refused (statements name the
     * origin). */
    put_delta_head(pkt_begin(&p), "x", &y, &e[2], 1, -1, 2, 3, 0, &y, 3, 0, WIRE_KVX_COMPLETE);
    deliver(r, &p, 222);
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_BAD_KV], 4);
    assert_true(kv_is(r, "x", "color", "red"));

    /* The genuine write 3 applies with one verification. */
    v0 = stats(r).ident_verified;
    put_delta_head(pkt_begin(&p), "x", &x, &e[2], 1, -1, 2, 3, 0, NULL, 0, 0, WIRE_KVX_COMPLETE);
    deliver(r, &p, 223);
    assert_true(kv_is(r, "x", "color", "blue"));
    assert_int_equal(stats(r).ident_verified - v0, 1);

    /* A horizon always needs the origin's head: zeros, or x's head over another horizon, are
     * refused; x's own head (3, 2) is checked once and stored, and after that a relay may
     * carry it with any slot (it claims nothing new), but not a higher horizon. */
    kv_ent none[1] = {{"", "", 0}};
    put_delta_head(pkt_begin(&p), "x", &x, none, 0, -1, 3, 3, 2, NULL, 0, 0, WIRE_KVX_COMPLETE);
    deliver(r, &p, 224);
    put_delta_head(pkt_begin(&p), "x", &x, none, 0, -1, 3, 3, 2, &x, 3, 1, WIRE_KVX_COMPLETE);
    deliver(r, &p, 224);
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_BAD_KV], 6);
    assert_int_equal(origin_gc(r, "x"), 0);
    v0 = stats(r).ident_verified;
    put_delta_head(pkt_begin(&p), "x", &x, none, 0, -1, 3, 3, 2, &x, 3, 2, WIRE_KVX_COMPLETE);
    deliver(r, &p, 225);
    assert_int_equal(origin_gc(r, "x"), 2);
    assert_int_equal(stats(r).ident_verified - v0, 1);
    put_delta_head(pkt_begin(&p), "x", &x, none, 0, -1, 3, 3, 2, NULL, 0, 0, WIRE_KVX_COMPLETE);
    deliver(r, &p, 226);
    assert_int_equal(stats(r).ident_verified - v0, 1);
    put_delta_head(pkt_begin(&p), "x", &x, none, 0, -1, 3, 3, 3, &x, 3, 2, WIRE_KVX_COMPLETE);
    deliver(r, &p, 226);
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_BAD_KV], 7);
    assert_int_equal(origin_gc(r, "x"), 2);
    drain(r);
    rumor_node_del(r);
}

/* ---- a relay that keeps entries from a replica (section 12.8) ---- */

typedef struct kv_rec {
    const char *key, *value;
    uint64_t version;
    uint8_t flags;
} kv_rec;

/* A KV_DELTA of origin `o` signed by `k` from `since` (head (0, 0), `flags`), with `k`'s
 * signed keyspace sum over `held` (the versions the origin holds at (smax, 0)) when `held` is
 * set; `sum_key` signs it instead when set (a forgery). */
static void put_delta_sum(buf_writer *w, const char *o, const key *k, const kv_rec *e, uint32_t n,
                          uint64_t since, uint8_t flags, const uint64_t *held, uint32_t nheld,
                          uint64_t smax, const key *sum_key)
{
    uint8_t stmt[IDENT_STMT_MAX], sigs[8][64], head[64] = {0};
    size_t bytes = wire_kv_sigs_size(n) + (held ? WIRE_KV_SUM_BYTES : 0);
    wire_kv_entry we[8];
    for (uint32_t i = 0; i < n; i++) {
        we[i] = (wire_kv_entry){S(e[i].key), e[i].version, e[i].flags, 0, S(e[i].value)};
        size_t len = ident_stmt_kv_entry(stmt, S(o), &we[i]);
        crypto_sign_detached(sigs[i], NULL, stmt, len, k->sk);
        bytes += wire_kv_entry_size(&we[i]);
    }
    wire_put_kv_delta_begin(w, S(o), flags, since, 0, 0, n, bytes);
    for (uint32_t i = 0; i < n; i++)
        wire_put_kv_entry(w, &we[i]);
    buf_put_u8(w, WIRE_IDENT_V1);
    buf_put_bytes(w, head, 64);
    for (uint32_t i = 0; i < n; i++)
        buf_put_bytes(w, sigs[i], 64);
    if (!held)
        return;
    uint64_t acc[2] = {0, 0}, t[2];
    for (uint32_t i = 0; i < nheld; i++) {
        kv_sum_term(held[i], t);
        acc[0] += t[0];
        acc[1] += t[1] + (acc[0] < t[0]);
    }
    uint8_t sum[16], sig[64];
    for (int i = 0; i < 8; i++) {
        sum[i] = (uint8_t)(acc[0] >> (8 * i));
        sum[8 + i] = (uint8_t)(acc[1] >> (8 * i));
    }
    size_t len = ident_stmt_kv_sum(stmt, S(o), smax, 0, sum);
    crypto_sign_detached(sig, NULL, stmt, len, (sum_key ? sum_key : k)->sk);
    wire_put_kv_sum(w, smax, 0, sum, sig);
}

/* Advances `n` to `until` in its own deadlines. */
static void run_to(rumor_node *n, uint64_t from, uint64_t until)
{
    for (uint64_t t = from; t <= until; t += 100) {
        rumor_node_tick(n, t);
        drain(n);
    }
}

/* run_to, with x's claim renewed (a higher incarnation) every second: it stays alive. */
static void run_alive(rumor_node *n, uint64_t from, uint64_t until, const key *k, uint32_t *inc)
{
    for (uint64_t t = from; t <= until; t += 1000) {
        alive(n, "x", (*inc)++, "", k, NULL);
        run_to(n, t, t + 1000 < until ? t + 900 : until);
    }
}

/* x writes k = v (version 1), deletes k (2) and writes j = w (3); a relay hands `r` x's delta
 * from version 1 without the delete, and `r` takes version 3 over it. */
static void stripped_replica(rumor_node *r, const key *x)
{
    pkt p;
    kv_rec put_k = {"k", "v", 1, 0}, put_j = {"j", "w", 3, 0};
    put_delta_sum(pkt_begin(&p), "x", x, &put_k, 1, 0, WIRE_KVX_COMPLETE, NULL, 0, 0, NULL);
    deliver(r, &p, 200);
    assert_true(kv_is(r, "x", "k", "v"));
    put_delta_sum(pkt_begin(&p), "x", x, &put_j, 1, 1, WIRE_KVX_COMPLETE, NULL, 0, 0, NULL);
    deliver(r, &p, 201);
    assert_int_equal(origin_max(r, "x"), 3);
    assert_true(kv_is(r, "x", "k", "v") && kv_is(r, "x", "j", "w"));
}

/*
 * Entries are signed one by one, so a relay can forward x's delta without one of them: here
 * the delete of `k` (version 2). The replica cannot tell it from a version whose key was
 * written again, and takes version 3 over it. x's signed keyspace sum at version 3 shows it
 * lacks something: once it stays so for a while, the replica is taken again from version 0,
 * and the resend brings the delete. A forged sum changes nothing; a replica that matches the
 * sum is left alone.
 */
static void test_kv_withheld_entry(void **ctx)
{
    (void)ctx;
    rumor_node *r = receiver(NULL);
    key x = key_of(2), evil = key_of(9);
    alive(r, "x", 1, "", &x, NULL);
    pkt p;
    kv_rec del_k = {"k", "", 2, KV_TOMBSTONE}, put_j = {"j", "w", 3, 0};
    stripped_replica(r, &x);

    /* A sum in x's name signed by another key: refused, nothing stored, nothing reset. */
    const uint64_t held[] = {2, 3};
    put_delta_sum(pkt_begin(&p), "x", &x, NULL, 0, 3, WIRE_KVX_RUMOR, held, 2, 3, &evil);
    deliver(r, &p, 201);
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_BAD_KV], 1);
    run_to(r, NOW, NOW + 20000);
    assert_int_equal(origin_max(r, "x"), 3);
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_KV_WITHHELD], 0);

    /* x's own sum at version 3 (it holds versions 2 and 3): verified once, and the replica,
     * which holds 1 and 3, is taken again after a few rounds (not at once: an honest replica
     * may sit there for a moment). */
    uint64_t v0 = stats(r).ident_verified;
    put_delta_sum(pkt_begin(&p), "x", &x, NULL, 0, 3, WIRE_KVX_RUMOR, held, 2, 3, NULL);
    deliver(r, &p, 202);
    deliver(r, &p, 203);
    assert_int_equal(stats(r).ident_verified - v0, 1);
    /* x answers nobody here, so probes fail it; it is taken again only while x is alive (see
     * test_kv_withheld_owner_down), so x keeps refuting. */
    uint32_t inc = 2;
    run_alive(r, NOW + 20000, NOW + 20500, &x, &inc);
    assert_int_equal(origin_max(r, "x"), 3);
    run_alive(r, NOW + 20600, NOW + 30000, &x, &inc);
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_KV_WITHHELD], 1);
    assert_int_equal(origin_max(r, "x"), 0);
    assert_true(kv_is(r, "x", "k", NULL) && kv_is(r, "x", "j", NULL));

    /* The resend from version 0 (what the origin holds) brings the delete, and the sum
     * agrees from then on. */
    kv_rec all[2] = {del_k, put_j};
    put_delta_sum(pkt_begin(&p), "x", &x, all, 2, 0, WIRE_KVX_COMPLETE, held, 2, 3, NULL);
    deliver(r, &p, 202);
    assert_int_equal(origin_max(r, "x"), 3);
    assert_true(kv_is(r, "x", "k", NULL) && kv_is(r, "x", "j", "w"));
    run_to(r, NOW + 30000, NOW + 60000);
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_KV_WITHHELD], 1);
    assert_int_equal(origin_max(r, "x"), 3);
    drain(r);
    rumor_node_del(r);
}

/*
 * The retake must never drop the last copies: while x itself is down nobody can resend what it
 * held, so a replica that differs from x's signed sum keeps its copy (incomplete as it may be)
 * until x is alive again, and is taken again then.
 */
static void test_kv_withheld_owner_down(void **ctx)
{
    (void)ctx;
    rumor_node *r = receiver(NULL);
    key x = key_of(2), a = key_of(3);
    alive(r, "x", 1, "", &x, NULL);
    alive(r, "a", 1, "", &a, NULL);
    pkt p;
    stripped_replica(r, &x);
    const uint64_t held[] = {2, 3};
    put_delta_sum(pkt_begin(&p), "x", &x, NULL, 0, 3, WIRE_KVX_RUMOR, held, 2, 3, NULL);
    deliver(r, &p, 202);
    /* x fails (a's signed accusation) before the replica was taken again. */
    put_accuse(pkt_begin(&p), WIRE_FAILED, "x", 1, "a", &a);
    deliver(r, &p, 210);
    assert_int_equal(state_of(r, "x", NULL), RUMOR_MEMBER_FAILED);
    run_to(r, NOW, NOW + 30000);
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_KV_WITHHELD], 0);
    assert_int_equal(origin_max(r, "x"), 3);
    assert_true(kv_is(r, "x", "k", "v") && kv_is(r, "x", "j", "w"));
    /* x is back (a new incarnation): now it can resend, and the replica is taken again. */
    alive(r, "x", 2, "", &x, NULL);
    assert_int_equal(state_of(r, "x", NULL), RUMOR_MEMBER_ALIVE);
    run_to(r, NOW + 30000, NOW + 31000);
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_KV_WITHHELD], 1);
    assert_int_equal(origin_max(r, "x"), 0);
    drain(r);
    rumor_node_del(r);
}

/* ---- the verification cache ---- */

static void test_verified_once(void **ctx)
{
    (void)ctx;
    rumor_node *r = receiver(NULL);
    key x = key_of(2), evil = key_of(9);
    alive(r, "x", 1, "a=1", &x, NULL);
    rumor_stats st = stats(r);
    assert_int_equal(st.ident_verified, 1);
    /* The same claim relayed again by several members: stale, never re-verified. */
    for (int i = 0; i < 5; i++)
        alive(r, "x", 1, "a=1", &x, NULL);
    assert_int_equal(stats(r).ident_verified, 1);
    /* A forged claim relayed twice: the second check is answered by the cache. */
    pkt p;
    put_alive(pkt_begin(&p), "x", 2, "evil", &evil, x.pk, NULL);
    deliver(r, &p, 230);
    deliver(r, &p, 231);
    st = stats(r);
    assert_int_equal(st.ident_verified, 2);
    assert_int_equal(st.ident_cached, 1);
    assert_int_equal(st.ident_refused[RUMOR_IDENT_BAD_ALIVE], 2);
    drain(r);
    rumor_node_del(r);
}

/* An owner restarts empty with the same key: it takes its own signed entries back from the
 * cluster, re-signs its head, and its next write continues the sequence everywhere. */
static void test_restarted_owner_keeps_signing(void **ctx)
{
    (void)ctx;
    tnet *t = tnet_new(4, RUMOR_PROFILE_LOCAL, 73);
    for (int i = 0; i < 4; i++) {
        rumor_settings *s = tnet_settings(t, i);
        s->identity = true;
        key k = key_of((uint8_t)(30 + i));
        memcpy(s->identity_seed, k.seed, 32);
        tnet_start(t, i);
    }
    for (int i = 1; i < 4; i++)
        tnet_join(t, i, 0);
    tnet_run(t, tnet_now(t) + 3000);
    rumor_node *n1 = tnet_node(t, 1);
    assert_int_equal(rumor_node_kv_put(n1, "a", 1, "1", 1, tnet_now(t)), 0);
    assert_int_equal(rumor_node_kv_put(n1, "b", 1, "2", 1, tnet_now(t)), 0);
    assert_int_equal(rumor_node_kv_delete(n1, "a", 1, tnet_now(t)), 0);
    tnet_run(t, tnet_now(t) + 2000);
    tnet_crash(t, 1);
    tnet_settings(t, 1)->incarnation = 5;
    tnet_start(t, 1);
    tnet_join(t, 1, 0);
    tnet_run(t, tnet_now(t) + 5000);
    n1 = tnet_node(t, 1);
    rumor_kv_value v;
    assert_int_equal(rumor_node_kv_get(n1, NULL, "b", 1, &v), 0);
    assert_int_equal(rumor_node_kv_put(n1, "c", 1, "3", 1, tnet_now(t)), 0);
    assert_int_equal(rumor_node_kv_get(n1, NULL, "c", 1, &v), 0);
    assert_int_equal(v.version, 4);
    tnet_run(t, tnet_now(t) + 3000);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(rumor_node_kv_get(tnet_node(t, i), "n1", "c", 1, &v), 0);
        assert_int_equal(rumor_node_kv_get(tnet_node(t, i), "n1", "a", 1, &v), RUMOR_ERR_NOT_FOUND);
        rumor_stats st = stats(tnet_node(t, i));
        for (int r = 0; r < RUMOR_IDENT_REFUSAL_COUNT; r++)
            assert_int_equal(st.ident_refused[r], 0);
        assert_int_equal(st.dropped[RUMOR_DROP_MALFORMED], 0);
    }
    tnet_free(t);
}

/* ---- restore ---- */

static void test_restore_pins(void **ctx)
{
    (void)ctx;
    rumor_node *r = receiver(NULL);
    key x = key_of(2), evil = key_of(9);
    rumor_member m = {.name = "x", .addr = addr_of(50), .incarnation = 4, .public_key = x.pk};
    assert_int_equal(rumor_node_restore(r, &m, NOW), 0);
    rumor_member got;
    assert_int_equal(rumor_node_member_find(r, "x", &got), 0);
    assert_memory_equal(got.public_key, x.pk, 32);
    /* Another key for the same life is refused; x's own signature attaches at the same
     * incarnation (the restored record was never signed). */
    alive(r, "x", 4, "m", &evil, NULL);
    assert_int_equal(stats(r).ident_refused[RUMOR_IDENT_KEY_MISMATCH], 1);
    alive(r, "x", 4, "m", &x, NULL);
    assert_true(meta_is(r, "x", "m"));
    drain(r);
    rumor_node_del(r);
}

/* ---- helpers of the public API ---- */

static void test_public_helpers(void **ctx)
{
    (void)ctx;
    key k = key_of(5);
    uint8_t pk[32];
    assert_int_equal(rumor_identity_public_key(k.seed, pk), 0);
    assert_memory_equal(pk, k.pk, 32);
    char fp[32];
    assert_int_equal(rumor_identity_fingerprint(pk, fp, sizeof(fp)), 19);
    assert_int_equal(fp[4], ':');
    assert_int_equal(rumor_identity_fingerprint(pk, fp, 19), 0);
    assert_string_equal(rumor_ident_refusal_name(RUMOR_IDENT_BAD_KV), "bad_kv");
    assert_string_equal(rumor_ident_refusal_name(RUMOR_IDENT_REFUSAL_COUNT), "unknown");
    assert_int_equal(rumor_identity_cert_sign(k.seed, "", pk, 0, pk), RUMOR_ERR_INVALID);
    /* Settings: an authority without identities makes no sense. */
    rumor_settings s;
    rumor_settings_default(&s, RUMOR_PROFILE_LAN);
    s.name = "a";
    s.addr = addr_of(1);
    s.identity_ca = true;
    rumor_node *n = NULL;
    assert_int_equal(rumor_node_new(&n, &s, 0), RUMOR_ERR_INVALID);
}

int main(void)
{
    if (sodium_init() < 0) /* the host's job, not the engine's */
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cluster_with_identities),
        cmocka_unit_test(test_sealed_cluster_with_identities),
        cmocka_unit_test(test_unsigned_node_refused),
        cmocka_unit_test(test_alive_round_trip_and_alteration),
        cmocka_unit_test(test_forged_alive_and_tofu),
        cmocka_unit_test(test_ca_admission),
        cmocka_unit_test(test_accusations),
        cmocka_unit_test(test_kv_signed),
        cmocka_unit_test(test_events_and_queries_signed),
        cmocka_unit_test(test_kv_write_proves_itself),
        cmocka_unit_test(test_kv_withheld_entry),
        cmocka_unit_test(test_kv_withheld_owner_down),
        cmocka_unit_test(test_verified_once),
        cmocka_unit_test(test_restarted_owner_keeps_signing),
        cmocka_unit_test(test_restore_pins),
        cmocka_unit_test(test_public_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
