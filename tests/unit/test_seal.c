/*
 * Encryption (docs/protocol.md section 3.1): the envelope with each cipher (round trip, every
 * byte tampered, the cipher flag swapped, wrong keys), the golden sealed vectors, which cipher a
 * node picks per recipient and a cluster mixing nodes with and without AES-256-GCM, the keyring API
 * and rotation between live nodes, the replay windows, replayed and misdirected datagrams, replayed
 * and tampered stream frames, and sealed and plaintext nodes keeping apart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/seal.h"
#include "core/wire.h"
#include "helper_net.h"
#include "rumor.h"

static uint8_t K1[RUMOR_KEY_BYTES], K2[RUMOR_KEY_BYTES], K3[RUMOR_KEY_BYTES];

static int setup(void **state)
{
    (void)state;
    tnet_fill(K1, sizeof(K1), 0x00);
    tnet_fill(K2, sizeof(K2), 0x40);
    tnet_fill(K3, sizeof(K3), 0x80);
    return 0;
}

static void seal_settings(rumor_settings *s, const uint8_t (*keys)[RUMOR_KEY_BYTES], size_t n,
                          uint8_t secret_start, uint64_t epoch)
{
    s->keys = keys;
    s->nkeys = n;
    tnet_fill(s->seal_secret, sizeof(s->seal_secret), secret_start);
    s->seal_epoch = epoch;
}

/* ---- the envelope itself ---- */

static uint8_t cipher_setting = RUMOR_SEAL_CIPHER_XCHACHA; /* for state_init */

static void state_init(seal_state *st, const char *name, const uint8_t *key, uint64_t epoch)
{
    rumor_settings s;
    rumor_settings_default(&s, RUMOR_PROFILE_LAN);
    s.name = name;
    s.seal_cipher = cipher_setting;
    uint8_t keys[1][RUMOR_KEY_BYTES];
    memcpy(keys[0], key, RUMOR_KEY_BYTES);
    seal_settings(&s, (const uint8_t(*)[RUMOR_KEY_BYTES])keys, 1, 0x20, epoch);
    memset(st, 0, sizeof(*st));
    assert_int_equal(seal_init(st, &s, 0, 16), RUMOR_OK);
}

/* A sealed datagram from `st` to `dest` (whose epoch it knows as 7) holding one PING (seq 300,
 * target "b", sender "a"): the bytes of the golden vectors in docs/protocol.md section 11,
 * sealed with `cipher`. */
static size_t build_c(seal_state *st, uint64_t dest, uint8_t *out, size_t cap, uint8_t cipher)
{
    buf_writer w;
    buf_writer_init_fixed(&w, out, cap);
    wire_put_header(&w, (const uint8_t *)"prod", 4, WIRE_FLAG_SEALED);
    seal_inner in = {.kind = SEAL_KIND_DGRAM, .dest = dest, .dest_epoch = 7};
    size_t env = seal_put_inner(st, &w, &in);
    wire_put_ping(&w, 300, wire_str_of("b", 1), wire_str_of("a", 1));
    assert_true(seal_close(st, &w, 0, env, cipher));
    assert_false(w.failed);
    return w.len;
}

static size_t build(seal_state *st, uint64_t dest, uint8_t *out, size_t cap)
{
    return build_c(st, dest, out, cap, SEAL_CIPHER_XCHACHA);
}

static void round_trip_and_tamper(uint8_t cipher)
{
    seal_state a, b;
    cipher_setting =
        cipher == SEAL_CIPHER_AESGCM ? RUMOR_SEAL_CIPHER_AESGCM : RUMOR_SEAL_CIPHER_XCHACHA;
    state_init(&a, "a", K1, 1);
    state_init(&b, "b", K1, 7);
    cipher_setting = RUMOR_SEAL_CIPHER_XCHACHA;
    uint8_t pkt[256], out[256];
    size_t len = build_c(&a, seal_id("b", 1), pkt, sizeof(pkt), cipher);
    assert_int_equal(len, 9 + SEAL_DGRAM_OVERHEAD + 8);
    assert_int_equal(pkt[3],
                     WIRE_FLAG_SEALED | (cipher == SEAL_CIPHER_AESGCM ? WIRE_FLAG_AESGCM : 0));
    seal_inner in;
    const uint8_t *body;
    size_t blen;
    assert_int_equal(seal_open(&b, pkt, len, 9, out, &in, &body, &blen), 0);
    assert_int_equal(in.kind, SEAL_KIND_DGRAM);
    assert_int_equal(in.epoch, 1);
    assert_true(in.sender == seal_id("a", 1));
    assert_true(in.dest == seal_id("b", 1));
    assert_int_equal(in.dest_epoch, 7);
    assert_int_equal(in.counter, 1);
    assert_int_equal(in.cipher, cipher);
    assert_int_equal(in.aes, cipher == SEAL_CIPHER_AESGCM); /* a says it opens AES-256-GCM */
    static const uint8_t ping[] = {0x01, 0x06, 0xac, 0x02, 0x01, 0x62, 0x01, 0x61};
    assert_int_equal(blen, sizeof(ping));
    assert_memory_equal(body, ping, sizeof(ping));
    /* In place, as stream frames are opened. */
    uint8_t copy[256];
    memcpy(copy, pkt, len);
    assert_int_equal(seal_open(&b, copy, len, 9, copy + 9 + SEAL_ENV_BYTES, &in, &body, &blen), 0);
    assert_memory_equal(body, ping, sizeof(ping));
    /* Every single-bit change anywhere fails: header and nonce are authenticated data, the
     * key id names another key, body and tag fail the tag check. */
    for (size_t i = 0; i < len; i++) {
        memcpy(copy, pkt, len);
        copy[i] ^= 0x01;
        int rc = seal_open(&b, copy, len, 9, out, &in, &body, &blen);
        if (i >= 9 && i < 9 + SEAL_KEY_ID_BYTES)
            assert_int_equal(rc, -(RUMOR_DROP_UNKNOWN_KEY + 1));
        else
            assert_int_equal(rc, -(RUMOR_DROP_AUTH_FAILED + 1));
    }
    /* The cipher flag swapped: XChaCha20-Poly1305 does not open an AES-256-GCM packet (the flag
     * is authenticated data of either); an XChaCha-only node refuses the AES flag outright. */
    memcpy(copy, pkt, len);
    copy[3] ^= WIRE_FLAG_AESGCM;
    assert_int_equal(seal_open(&b, copy, len, 9, out, &in, &body, &blen),
                     cipher == SEAL_CIPHER_AESGCM ? -(RUMOR_DROP_AUTH_FAILED + 1)
                                                  : -(RUMOR_DROP_UNKNOWN_KEY + 1));
    /* Truncated anywhere: too short for an envelope, or the tag no longer matches. */
    for (size_t cut = 0; cut < len; cut++) {
        int rc = seal_open(&b, pkt, cut, 9, out, &in, &body, &blen);
        assert_true(rc < 0);
    }
    /* A second packet of the same life opens too (for AES-256-GCM from the cached subkey), and
     * a node that does not open AES-256-GCM refuses an AES-sealed one without trying a key. */
    len = build_c(&a, seal_id("b", 1), pkt, sizeof(pkt), cipher);
    assert_int_equal(seal_open(&b, pkt, len, 9, out, &in, &body, &blen), 0);
    assert_int_equal(in.counter, 2);
    assert_int_equal(b.nsub, cipher == SEAL_CIPHER_AESGCM ? 1 : 0);
    seal_state x;
    state_init(&x, "b", K1, 7); /* XChaCha20-Poly1305 only */
    assert_false(x.aes);
    assert_int_equal(seal_open(&x, pkt, len, 9, out, &in, &body, &blen),
                     cipher == SEAL_CIPHER_AESGCM ? -(RUMOR_DROP_UNKNOWN_KEY + 1) : 0);
    /* An XChaCha-only sender asked for AES-256-GCM seals with XChaCha20-Poly1305. */
    len = build_c(&x, seal_id("a", 1), pkt, sizeof(pkt), SEAL_CIPHER_AESGCM);
    assert_int_equal(pkt[3], WIRE_FLAG_SEALED);
    assert_int_equal(seal_open(&a, pkt, len, 9, out, &in, &body, &blen), 0);
    assert_false(in.aes);
    seal_free(&x, &rumor_alloc_libc);
    seal_free(&a, &rumor_alloc_libc);
    seal_free(&b, &rumor_alloc_libc);
}

static void test_round_trip_and_tamper(void **state)
{
    (void)state;
    round_trip_and_tamper(SEAL_CIPHER_XCHACHA);
}

static void test_round_trip_and_tamper_aes(void **state)
{
    (void)state;
    if (!seal_aes_available())
        skip(); /* libsodium's AES-256-GCM needs AES-NI */
    round_trip_and_tamper(SEAL_CIPHER_AESGCM);
}

static void test_wrong_key(void **state)
{
    (void)state;
    seal_state a, other;
    state_init(&a, "a", K1, 1);
    state_init(&other, "b", K2, 1);
    uint8_t pkt[256], out[256];
    size_t len = build(&a, seal_id("b", 1), pkt, sizeof(pkt));
    seal_inner in;
    const uint8_t *body;
    size_t blen;
    assert_int_equal(seal_open(&other, pkt, len, 9, out, &in, &body, &blen),
                     -(RUMOR_DROP_UNKNOWN_KEY + 1));
    /* A key whose id matches (forged here) but whose bytes differ: the tag check fails. */
    memcpy(other.keys[0].id, a.keys[0].id, SEAL_KEY_ID_BYTES);
    assert_int_equal(seal_open(&other, pkt, len, 9, out, &in, &body, &blen),
                     -(RUMOR_DROP_AUTH_FAILED + 1));
    seal_free(&a, &rumor_alloc_libc);
    seal_free(&other, &rumor_alloc_libc);
}

/* docs/protocol.md section 11: key 00..1f, secret 20..3f, epoch 1, from "a" to "b", label
 * "prod", the PING of the plaintext examples. */
static const char GOLDEN[] =
    "524d0101 0470726f64 6b848b05"
    " 0d737497b7875ebc3f775143f22ab3e9 0000000000000001"
    " 17e6420bd8ce7c95d456c3c6844d7742047acc67b3bad66b2d60e9e77580d712f1d6325247a60affaf0b"
    " 1b25df4863cf79dcc5cb5adf19f5198f";

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = 0;
    for (; *h && n < cap;) {
        if (*h == ' ') {
            h++;
            continue;
        }
        unsigned v;
        sscanf(h, "%2x", &v);
        out[n++] = (uint8_t)v;
        h += 2;
    }
    return n;
}

static void golden_vector(uint8_t cipher, const char *golden)
{
    seal_state a;
    cipher_setting =
        cipher == SEAL_CIPHER_AESGCM ? RUMOR_SEAL_CIPHER_AESGCM : RUMOR_SEAL_CIPHER_XCHACHA;
    state_init(&a, "a", K1, 1);
    cipher_setting = RUMOR_SEAL_CIPHER_XCHACHA;
    uint8_t pkt[256], want[256];
    size_t len = build_c(&a, seal_id("b", 1), pkt, sizeof(pkt), cipher);
    size_t wlen = unhex(golden, want, sizeof(want));
    if (len != wlen || memcmp(pkt, want, len) != 0) {
        for (size_t i = 0; i < len; i++)
            fprintf(stderr, "%02x", pkt[i]);
        fprintf(stderr, "\n");
    }
    assert_int_equal(len, wlen);
    assert_memory_equal(pkt, want, len);
    seal_free(&a, &rumor_alloc_libc);
}

static void test_golden_vector(void **state)
{
    (void)state;
    golden_vector(SEAL_CIPHER_XCHACHA, GOLDEN);
}

/* The same PING from a node that opens AES-256-GCM, sealed with it (section 11.1). */
static const char GOLDEN_AES[] = "524d0103 0470726f64 6b848b05"
                                 " 0d737497b7875ebc3f775143f22ab3e9 0000000000000001"
                                 " c66105a1f21fc36d920844d6aa4bcf55392d4b2b52"
                                 " 82787e9c7bb450c913e1273ce5ef22a274c91826dd"
                                 " 8cdb374ec8c6ddced35e1a52623c4ac7";

static void test_golden_vector_aes(void **state)
{
    (void)state;
    if (!seal_aes_available())
        skip();
    golden_vector(SEAL_CIPHER_AESGCM, GOLDEN_AES);
}

/* ---- replay windows ---- */

static void test_replay_window(void **state)
{
    (void)state;
    seal_state s;
    memset(&s, 0, sizeof(s));
    s.wins_max = 3;
    const rumor_allocator *a = &rumor_alloc_libc;
    assert_int_equal(replay_check(&s, 5, 10, 1), 0); /* unknown sender */
    replay_mark(&s, a, 5, 10, 100, false, 1);
    assert_int_equal(replay_check(&s, 5, 10, 100), -(RUMOR_DROP_REPLAYED + 1));
    assert_int_equal(replay_check(&s, 5, 10, 101), 0);
    assert_int_equal(replay_check(&s, 5, 10, 99), 0); /* reordered, unseen */
    replay_mark(&s, a, 5, 10, 99, false, 2);
    assert_int_equal(replay_check(&s, 5, 10, 99), -(RUMOR_DROP_REPLAYED + 1));
    /* Slide far ahead: what was seen stays seen inside the window, and anything older than the
     * window is refused whether seen or not. */
    replay_mark(&s, a, 5, 10, 100 + REPLAY_WINDOW - 1, false, 3);
    assert_int_equal(replay_check(&s, 5, 10, 100), -(RUMOR_DROP_REPLAYED + 1));
    assert_int_equal(replay_check(&s, 5, 10, 101), 0);
    replay_mark(&s, a, 5, 10, 5000, false, 4);
    assert_int_equal(replay_check(&s, 5, 10, 5000 - REPLAY_WINDOW), -(RUMOR_DROP_REPLAYED + 1));
    assert_int_equal(replay_check(&s, 5, 10, 5000 - REPLAY_WINDOW + 1), 0);
    for (uint64_t c = 4100; c < 5000; c += 7)
        assert_int_equal(replay_check(&s, 5, 10, c), 0);
    /* Every counter of a dense run is seen exactly once. */
    for (uint64_t c = 5001; c < 7000; c++) {
        assert_int_equal(replay_check(&s, 5, 10, c), 0);
        replay_mark(&s, a, 5, 10, c, false, 5);
        assert_int_equal(replay_check(&s, 5, 10, c), -(RUMOR_DROP_REPLAYED + 1));
    }
    /* The sender restarted: its new life is taken, its old life refused from then on. */
    assert_int_equal(replay_check(&s, 5, 11, 1), 0);
    replay_mark(&s, a, 5, 11, 1, false, 6);
    assert_int_equal(replay_check(&s, 5, 10, 7001), -(RUMOR_DROP_REPLAYED + 1));
    assert_int_equal(replay_check(&s, 5, 11, 2), 0);
    /* Bounded: a fourth sender evicts the least recently used one. */
    replay_mark(&s, a, 6, 1, 1, false, 7);
    replay_mark(&s, a, 7, 1, 1, false, 8);
    replay_mark(&s, a, 6, 1, 2, false, 9); /* 6 used again: 5 (at 6 ms) is now the oldest */
    replay_mark(&s, a, 8, 1, 1, false, 10);
    assert_int_equal(s.nwins, 3);
    assert_int_equal(replay_check(&s, 5, 11, 1), 0); /* forgotten */
    assert_int_equal(replay_check(&s, 6, 1, 2), -(RUMOR_DROP_REPLAYED + 1));
    assert_int_equal(replay_check(&s, 7, 1, 1), -(RUMOR_DROP_REPLAYED + 1));
    assert_int_equal(replay_check(&s, 8, 1, 1), -(RUMOR_DROP_REPLAYED + 1));
    /* Many senders through a table that keeps growing. */
    s.wins_max = 10000;
    for (uint64_t id = 100; id < 2100; id++)
        replay_mark(&s, a, id * 0x9e3779b97f4a7c15ull, 1, id, false, 20);
    for (uint64_t id = 100; id < 2100; id++)
        assert_int_equal(replay_check(&s, id * 0x9e3779b97f4a7c15ull, 1, id),
                         -(RUMOR_DROP_REPLAYED + 1));
    seal_free(&s, a);
}

/* ---- keyring API ---- */

static rumor_node *sealed_node(const char *name, const uint8_t (*keys)[RUMOR_KEY_BYTES], size_t n)
{
    rumor_settings s;
    rumor_settings_default(&s, RUMOR_PROFILE_LAN);
    s.name = name;
    s.addr.len = 4;
    s.addr.bytes[3] = 9;
    seal_settings(&s, keys, n, 0x11, 1000);
    rumor_node *node = NULL;
    assert_int_equal(rumor_node_new(&node, &s, 0), RUMOR_OK);
    return node;
}

static void test_keyring_api(void **state)
{
    (void)state;
    uint8_t ring[2][RUMOR_KEY_BYTES];
    memcpy(ring[0], K1, 32);
    memcpy(ring[1], K2, 32);
    rumor_node *n = sealed_node("k", (const uint8_t(*)[RUMOR_KEY_BYTES])ring, 2);
    memset(ring, 0, sizeof(ring)); /* the node has its own copy */
    uint8_t got[RUMOR_KEY_BYTES];
    assert_int_equal(rumor_node_keyring_count(n), 2);
    assert_int_equal(rumor_node_keyring_key(n, 0, got), RUMOR_OK);
    assert_memory_equal(got, K1, 32);
    assert_int_equal(rumor_node_keyring_key(n, 2, got), RUMOR_ERR_NOT_FOUND);
    assert_int_equal(rumor_node_keyring_install(n, K2), RUMOR_OK); /* already held */
    assert_int_equal(rumor_node_keyring_count(n), 2);
    assert_int_equal(rumor_node_keyring_use(n, K3), RUMOR_ERR_NOT_FOUND);
    assert_int_equal(rumor_node_keyring_remove(n, K3), RUMOR_ERR_NOT_FOUND);
    assert_int_equal(rumor_node_keyring_remove(n, K1), RUMOR_ERR_STATE); /* the primary */
    assert_int_equal(rumor_node_keyring_install(n, K3), RUMOR_OK);
    assert_int_equal(rumor_node_keyring_use(n, K3), RUMOR_OK);
    assert_int_equal(rumor_node_keyring_key(n, 0, got), RUMOR_OK);
    assert_memory_equal(got, K3, 32);
    assert_int_equal(rumor_node_keyring_key(n, 1, got), RUMOR_OK);
    assert_memory_equal(got, K1, 32);
    assert_int_equal(rumor_node_keyring_remove(n, K1), RUMOR_OK);
    assert_int_equal(rumor_node_keyring_remove(n, K1), RUMOR_ERR_NOT_FOUND);
    assert_int_equal(rumor_node_keyring_count(n), 2);
    /* The cap. */
    for (uint8_t i = 0; rumor_node_keyring_count(n) < RUMOR_KEYRING_MAX; i++) {
        uint8_t k[RUMOR_KEY_BYTES];
        tnet_fill(k, sizeof(k), (uint8_t)(0xc0 + i));
        assert_int_equal(rumor_node_keyring_install(n, k), RUMOR_OK);
    }
    uint8_t extra[RUMOR_KEY_BYTES];
    tnet_fill(extra, sizeof(extra), 0x03);
    assert_int_equal(rumor_node_keyring_install(n, extra), RUMOR_ERR_FULL);
    assert_int_equal(rumor_node_keyring_install(n, NULL), RUMOR_ERR_INVALID);
    rumor_node_del(n);

    /* A node without keys has no keyring. */
    rumor_settings s;
    rumor_settings_default(&s, RUMOR_PROFILE_LAN);
    s.name = "p";
    s.addr.len = 4;
    rumor_node *p;
    assert_int_equal(rumor_node_new(&p, &s, 0), RUMOR_OK);
    assert_int_equal(rumor_node_keyring_count(p), 0);
    assert_int_equal(rumor_node_keyring_install(p, K1), RUMOR_ERR_STATE);
    assert_int_equal(rumor_node_keyring_use(p, K1), RUMOR_ERR_STATE);
    assert_int_equal(rumor_node_keyring_remove(p, K1), RUMOR_ERR_STATE);
    rumor_node_del(p);

    /* Settings the engine refuses: no secret, no epoch source, too many keys, plaintext out
     * but not in. */
    uint8_t one[1][RUMOR_KEY_BYTES];
    memcpy(one[0], K1, 32);
    s.keys = (const uint8_t(*)[RUMOR_KEY_BYTES])one;
    s.nkeys = 1;
    assert_int_equal(rumor_node_new(&p, &s, 0), RUMOR_ERR_INVALID); /* secret all zero */
    tnet_fill(s.seal_secret, sizeof(s.seal_secret), 1);
    assert_int_equal(rumor_node_new(&p, &s, 0), RUMOR_ERR_INVALID); /* epoch 0, no wall clock */
    s.wallclock_offset_ms = 1700000000000;
    assert_int_equal(rumor_node_new(&p, &s, 5), RUMOR_OK);
    rumor_node_del(p);
    s.nkeys = RUMOR_KEYRING_MAX + 1;
    assert_int_equal(rumor_node_new(&p, &s, 5), RUMOR_ERR_INVALID);
    s.nkeys = 1;
    s.seal_send_plaintext = true;
    assert_int_equal(rumor_node_new(&p, &s, 5), RUMOR_ERR_INVALID);
    s.seal_accept_plaintext = true;
    assert_int_equal(rumor_node_new(&p, &s, 5), RUMOR_OK);
    rumor_node_del(p);
}

/* ---- nodes on the test network ---- */

typedef struct capture {
    uint8_t *data[4096];
    size_t len[4096];
    int from[4096], to[4096];
    bool stream[4096];
    size_t n;
    const char *needle; /* counted wherever it shows up in captured bytes */
    size_t found;
} capture;

static void tap(void *ud, int from, int to, bool stream, const uint8_t *p, size_t len)
{
    capture *c = ud;
    if (c->needle) {
        size_t nl = strlen(c->needle);
        for (size_t i = 0; i + nl <= len; i++)
            if (memcmp(p + i, c->needle, nl) == 0)
                c->found++;
    }
    if (c->n == 4096)
        return;
    c->data[c->n] = malloc(len);
    memcpy(c->data[c->n], p, len);
    c->len[c->n] = len;
    c->from[c->n] = from;
    c->to[c->n] = to;
    c->stream[c->n] = stream;
    c->n++;
}

static void capture_free(capture *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->data[i]);
    memset(c, 0, sizeof(*c));
}

static char names[8][32];
static uint8_t rings[8][4][RUMOR_KEY_BYTES];

/* A tnet of `n` nodes; node i gets keyring `keys` (count `nk`) unless nk is 0. */
static tnet *net(int n, const uint8_t *const *keys, size_t nk, uint64_t seed)
{
    tnet *t = tnet_new(n, RUMOR_PROFILE_LAN, seed);
    for (int i = 0; i < n; i++) {
        rumor_settings *s = tnet_settings(t, i);
        snprintf(names[i], sizeof(names[i]), "secret-node-%d", i);
        s->name = names[i];
        for (size_t k = 0; k < nk; k++)
            memcpy(rings[i][k], keys[k], RUMOR_KEY_BYTES);
        seal_settings(s, (const uint8_t(*)[RUMOR_KEY_BYTES])rings[i], nk, (uint8_t)(0x30 + i),
                      1000 + (uint64_t)i);
    }
    return t;
}

static void start_all(tnet *t, int n)
{
    for (int i = 0; i < n; i++)
        tnet_start(t, i);
    for (int i = 1; i < n; i++)
        tnet_join(t, i, 0);
}

static uint64_t drops(tnet *t, int i, rumor_drop_reason r)
{
    rumor_stats st;
    rumor_node_stats(tnet_node(t, i), &st);
    return st.dropped[r];
}

/* tnet_state with this file's node names. */
static int state_of(tnet *t, int observer, int who)
{
    rumor_member m;
    if (rumor_node_member_find(tnet_node(t, observer), names[who], &m) != 0)
        return -1;
    return (int)m.state;
}

static bool all_see_all(tnet *t, int n)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (i != j && state_of(t, i, j) != RUMOR_MEMBER_ALIVE)
                return false;
    return true;
}

static int suspect_events(tnet *t, int n)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            c += tnet_events(t, i, j, RUMOR_EVENT_MEMBER_SUSPECT) +
                 tnet_events(t, i, j, RUMOR_EVENT_MEMBER_FAILED);
    return c;
}

static void test_sealed_cluster_hides_everything(void **state)
{
    (void)state;
    const uint8_t *keys[] = {K1};
    for (int sealed = 1; sealed >= 0; sealed--) {
        tnet *t = net(3, keys, sealed ? 1 : 0, 3);
        capture *c = calloc(1, sizeof(*c));
        c->needle = "secret-node-";
        tnet_tap(t, tap, c);
        start_all(t, 3);
        static const char meta[] = "role=confidential-marker";
        assert_int_equal(
            rumor_node_set_meta(tnet_node(t, 1), (const uint8_t *)meta, strlen(meta), tnet_now(t)),
            RUMOR_OK);
        assert_int_equal(
            rumor_node_kv_put(tnet_node(t, 2), "k", 1, "value-marker", 12, tnet_now(t)), RUMOR_OK);
        tnet_run(t, 20000);
        assert_true(all_see_all(t, 3));
        rumor_kv_value v;
        assert_int_equal(rumor_node_kv_get(tnet_node(t, 0), "secret-node-2", "k", 1, &v), 0);
        assert_int_equal(v.len, 12);
        size_t meta_hits = 0, value_hits = 0;
        for (size_t i = 0; i < c->n; i++)
            for (size_t j = 0; j + 12 <= c->len[i]; j++) {
                meta_hits += memcmp(c->data[i] + j, "confidential", 12) == 0;
                value_hits += memcmp(c->data[i] + j, "value-marker", 12) == 0;
            }
        assert_true(c->n > 50);
        if (sealed) {
            /* Names, metadata and values never appear on the wire. */
            assert_int_equal(c->found, 0);
            assert_int_equal(meta_hits, 0);
            assert_int_equal(value_hits, 0);
            assert_int_equal(suspect_events(t, 3), 0);
            for (int i = 0; i < 3; i++) {
                assert_int_equal(drops(t, i, RUMOR_DROP_AUTH_FAILED), 0);
                assert_int_equal(drops(t, i, RUMOR_DROP_REPLAYED), 0);
            }
        } else { /* the control: the same run in plaintext shows them all */
            assert_true(c->found > 0);
            assert_true(meta_hits > 0);
            assert_true(value_hits > 0);
        }
        capture_free(c);
        free(c);
        tnet_free(t);
    }
}

static void test_sealed_and_plain_keep_apart(void **state)
{
    (void)state;
    const uint8_t *keys[] = {K1};
    tnet *t = net(2, keys, 1, 5);
    tnet_settings(t, 1)->nkeys = 0; /* node 1 speaks plaintext */
    start_all(t, 2);
    tnet_run(t, 15000);
    assert_int_equal(state_of(t, 0, 1), -1);
    assert_int_equal(state_of(t, 1, 0), -1);
    assert_true(drops(t, 0, RUMOR_DROP_PLAINTEXT) > 0); /* its join reached node 0 */
    tnet_join(t, 0, 1);
    tnet_run(t, 16000);
    assert_true(drops(t, 1, RUMOR_DROP_ENCRYPTED) > 0);
    assert_int_equal(state_of(t, 0, 1), -1);
    tnet_free(t);

    /* A wrong key does not join either: the seed counts the key it does not hold. */
    const uint8_t *other[] = {K2};
    t = net(2, keys, 1, 6);
    memcpy(rings[1][0], other[0], RUMOR_KEY_BYTES);
    start_all(t, 2);
    tnet_run(t, 15000);
    assert_int_equal(state_of(t, 0, 1), -1);
    assert_int_equal(state_of(t, 1, 0), -1);
    assert_true(drops(t, 0, RUMOR_DROP_UNKNOWN_KEY) > 0);
    tnet_free(t);
}

/* memberlist's migration: every node gets the key while still speaking plaintext, then seals,
 * then refuses plaintext; the cluster stays whole at each step. */
static void test_migration(void **state)
{
    (void)state;
    const uint8_t *keys[] = {K1};
    tnet *t = net(3, keys, 1, 7);
    tnet_settings(t, 0)->nkeys = 0; /* still plaintext-only */
    for (int i = 1; i < 3; i++) {
        tnet_settings(t, i)->seal_accept_plaintext = true;
        tnet_settings(t, i)->seal_send_plaintext = true;
    }
    start_all(t, 3);
    tnet_run(t, 15000);
    assert_true(all_see_all(t, 3));
    /* Node 0 gets the key too, still accepting plaintext; node 1 starts sealing. */
    rumor_settings *s0 = tnet_settings(t, 0);
    s0->nkeys = 1;
    s0->seal_accept_plaintext = true;
    s0->seal_send_plaintext = true;
    s0->seal_epoch = 5000;
    tnet_restart(t, 0);
    tnet_join(t, 0, 1);
    tnet_run(t, 30000);
    assert_true(all_see_all(t, 3));
    tnet_settings(t, 1)->seal_send_plaintext = false;
    tnet_settings(t, 1)->seal_epoch = 5001;
    tnet_restart(t, 1);
    tnet_join(t, 1, 2);
    tnet_run(t, 45000);
    assert_true(all_see_all(t, 3));
    tnet_free(t);
}

static void test_rotation(void **state)
{
    (void)state;
    const uint8_t *keys[] = {K1};
    tnet *t = net(3, keys, 1, 9);
    start_all(t, 3);
    tnet_run(t, 15000);
    assert_true(all_see_all(t, 3));
    uint64_t at = 15000;
    /* install everywhere, use everywhere, remove the old key everywhere: node by node, with the
     * cluster running in between, as an operator would. */
    for (int step = 0; step < 3; step++)
        for (int i = 0; i < 3; i++) {
            rumor_node *n = tnet_node(t, i);
            int rc = step == 0   ? rumor_node_keyring_install(n, K2)
                     : step == 1 ? rumor_node_keyring_use(n, K2)
                                 : rumor_node_keyring_remove(n, K1);
            assert_int_equal(rc, RUMOR_OK);
            at += 3000;
            tnet_run(t, at);
            assert_true(all_see_all(t, 3));
        }
    tnet_run(t, at + 20000);
    assert_true(all_see_all(t, 3));
    assert_int_equal(suspect_events(t, 3), 0);
    for (int i = 0; i < 3; i++) {
        uint8_t k[RUMOR_KEY_BYTES];
        assert_int_equal(rumor_node_keyring_count(tnet_node(t, i)), 1);
        assert_int_equal(rumor_node_keyring_key(tnet_node(t, i), 0, k), RUMOR_OK);
        assert_memory_equal(k, K2, 32);
        assert_int_equal(drops(t, i, RUMOR_DROP_AUTH_FAILED), 0);
    }
    tnet_free(t);
}

/* Counts captured sealed datagrams and stream frames by cipher, per (from, to) pair. */
static void count_ciphers(const capture *c, size_t aes[8][8], size_t xch[8][8])
{
    memset(aes, 0, sizeof(size_t) * 64);
    memset(xch, 0, sizeof(size_t) * 64);
    for (size_t i = 0; i < c->n; i++) {
        const uint8_t *p = c->data[i];
        size_t len = c->len[i], off = 0;
        while (off + (c->stream[i] ? 4u : 0u) + 4 <= len) {
            size_t flen = len - off, hoff = off;
            if (c->stream[i]) {
                flen = (size_t)p[off] << 24 | (size_t)p[off + 1] << 16 | (size_t)p[off + 2] << 8 |
                       p[off + 3];
                hoff = off + 4;
            }
            uint8_t flags = p[hoff + 3];
            assert_true(flags & WIRE_FLAG_SEALED);
            if (flags & WIRE_FLAG_AESGCM)
                aes[c->from[i]][c->to[i]]++;
            else
                xch[c->from[i]][c->to[i]]++;
            off = hoff + flen;
        }
    }
}

/* Node 1 does not open AES-256-GCM (as on a CPU without AES-NI): nodes 0 and 2 use it between
 * each other once they have heard from each other, XChaCha20-Poly1305 with node 1 throughout,
 * and the cluster forms, syncs state and rotates its key without a single refused packet. */
static void test_mixed_ciphers(void **state)
{
    (void)state;
    if (!seal_aes_available())
        skip();
    const uint8_t *keys[] = {K1};
    tnet *t = net(3, keys, 1, 13);
    tnet_settings(t, 1)->seal_cipher = RUMOR_SEAL_CIPHER_XCHACHA;
    capture *c = calloc(1, sizeof(*c));
    tnet_tap(t, tap, c);
    start_all(t, 3);
    assert_int_equal(rumor_node_kv_put(tnet_node(t, 2), "k", 1, "value-marker", 12, tnet_now(t)),
                     RUMOR_OK);
    tnet_run(t, 20000);
    assert_true(all_see_all(t, 3));
    rumor_kv_value v;
    assert_int_equal(rumor_node_kv_get(tnet_node(t, 1), "secret-node-2", "k", 1, &v), 0);
    uint64_t at = 20000;
    for (int step = 0; step < 3; step++)
        for (int i = 0; i < 3; i++) {
            rumor_node *n = tnet_node(t, i);
            int rc = step == 0   ? rumor_node_keyring_install(n, K2)
                     : step == 1 ? rumor_node_keyring_use(n, K2)
                                 : rumor_node_keyring_remove(n, K1);
            assert_int_equal(rc, RUMOR_OK);
            at += 3000;
            tnet_run(t, at);
        }
    tnet_run(t, at + 20000);
    assert_true(all_see_all(t, 3));
    assert_int_equal(suspect_events(t, 3), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(drops(t, i, RUMOR_DROP_AUTH_FAILED), 0);
        assert_int_equal(drops(t, i, RUMOR_DROP_UNKNOWN_KEY), 0);
        assert_int_equal(drops(t, i, RUMOR_DROP_REPLAYED), 0);
    }
    size_t aes[8][8], xch[8][8];
    count_ciphers(c, aes, xch);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(aes[i][1], 0);
        assert_int_equal(aes[1][i], 0);
    }
    assert_true(xch[0][1] > 10 && xch[1][0] > 10 && xch[1][2] > 10 && xch[2][1] > 10);
    /* Between 0 and 2 AES-256-GCM carries nearly everything: XChaCha20-Poly1305 only until each
     * has heard from the other (first contact, the stream hellos). */
    assert_true(aes[0][2] > 10 && aes[2][0] > 10);
    assert_true(aes[0][2] > 4 * xch[0][2] && aes[2][0] > 4 * xch[2][0]);
    capture_free(c);
    free(c);
    tnet_free(t);
}

typedef struct member_view {
    size_t count;
    uint32_t inc[8];
    int state[8];
} member_view;

/* By name: the table's order changes whenever a probe round reshuffles it. */
static void view_of(tnet *t, int i, member_view *v)
{
    memset(v, 0, sizeof(*v));
    rumor_node *n = tnet_node(t, i);
    v->count = rumor_node_member_count(n);
    char nm[8][RUMOR_NAME_MAX + 1];
    size_t k = 0;
    for (; k < v->count && k < 8; k++) {
        rumor_member m;
        rumor_node_member_at(n, k, &m);
        snprintf(nm[k], sizeof(nm[k]), "%s", m.name);
        v->inc[k] = m.incarnation;
        v->state[k] = (int)m.state;
        for (size_t j = k; j > 0 && strcmp(nm[j - 1], nm[j]) > 0; j--) {
            char tmp[RUMOR_NAME_MAX + 1];
            memcpy(tmp, nm[j], sizeof(tmp));
            memcpy(nm[j], nm[j - 1], sizeof(tmp));
            memcpy(nm[j - 1], tmp, sizeof(tmp));
            uint32_t inc = v->inc[j];
            v->inc[j] = v->inc[j - 1];
            v->inc[j - 1] = inc;
            int st = v->state[j];
            v->state[j] = v->state[j - 1];
            v->state[j - 1] = st;
        }
    }
}

static void test_replayed_datagrams(void **state)
{
    (void)state;
    const uint8_t *keys[] = {K1};
    tnet *t = net(3, keys, 1, 11);
    capture *c = calloc(1, sizeof(*c));
    tnet_tap(t, tap, c);
    start_all(t, 3);
    tnet_run(t, 10000);
    assert_true(all_see_all(t, 3));
    tnet_tap(t, NULL, NULL);
    size_t replayed = 0, misdirected = 0;
    rumor_addr from0 = tnet_addr(0);
    for (size_t i = 0; i < c->n; i++) {
        if (c->stream[i] || c->from[i] != 0 || c->to[i] != 1)
            continue;
        member_view before1, after1, before2, after2;
        view_of(t, 1, &before1);
        view_of(t, 2, &before2);
        /* The same datagram again, to its recipient: seen before, or older than the window. */
        uint64_t d = drops(t, 1, RUMOR_DROP_REPLAYED);
        assert_int_equal(tnet_inject(t, 1, &from0, c->data[i], c->len[i]), RUMOR_ERR_AUTH);
        assert_int_equal(drops(t, 1, RUMOR_DROP_REPLAYED), d + 1);
        replayed++;
        /* To another member: it names node 1 as its recipient. */
        d = drops(t, 2, RUMOR_DROP_NOT_FOR_US);
        assert_int_equal(tnet_inject(t, 2, &from0, c->data[i], c->len[i]), RUMOR_ERR_AUTH);
        assert_int_equal(drops(t, 2, RUMOR_DROP_NOT_FOR_US), d + 1);
        misdirected++;
        view_of(t, 1, &after1);
        view_of(t, 2, &after2);
        assert_memory_equal(&before1, &after1, sizeof(before1));
        assert_memory_equal(&before2, &after2, sizeof(before2));
    }
    assert_true(replayed > 5);
    assert_true(misdirected > 5);
    /* Node 0 restarts (a new life, a larger epoch). Once its new life has spoken to node 1,
     * packets of its old life are refused outright. */
    tnet_settings(t, 0)->seal_epoch = 9000;
    tnet_restart(t, 0);
    tnet_join(t, 0, 1);
    tnet_run(t, 20000);
    assert_true(all_see_all(t, 3));
    uint64_t d = drops(t, 1, RUMOR_DROP_REPLAYED);
    size_t old = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (c->stream[i] || c->from[i] != 0 || c->to[i] != 1)
            continue;
        assert_int_equal(tnet_inject(t, 1, &from0, c->data[i], c->len[i]), RUMOR_ERR_AUTH);
        old++;
    }
    assert_int_equal(drops(t, 1, RUMOR_DROP_REPLAYED), d + old);
    capture_free(c);
    free(c);
    tnet_free(t);
}

static rumor_stats stats_of(tnet *t, int i)
{
    rumor_stats st;
    rumor_node_stats(tnet_node(t, i), &st);
    return st;
}

/*
 * Section 3.1.4: datagrams captured on their way to node 1 are played to it after it restarted.
 * Its replay windows went with its old life, so the window alone would take the ones it never
 * saw; they name its old epoch, so only their PING and PING_REQ are answered: no old user event
 * is delivered again, no membership or key-value news is applied.
 */
static void test_replay_after_recipient_restart(void **state)
{
    (void)state;
    const uint8_t *keys[] = {K1};
    tnet *t = net(3, keys, 1, 17);
    start_all(t, 3);
    tnet_run(t, 5000);
    assert_true(all_see_all(t, 3));
    capture *c = calloc(1, sizeof(*c));
    tnet_tap(t, tap, c);
    /* News worth replaying: a user event, a key-value write, new metadata. */
    assert_int_equal(rumor_node_event(tnet_node(t, 0), "deploy", "v1", 2, tnet_now(t)), 0);
    assert_int_equal(rumor_node_kv_put(tnet_node(t, 2), "k", 1, "v", 1, tnet_now(t)), 0);
    assert_int_equal(
        rumor_node_set_meta(tnet_node(t, 0), (const uint8_t *)"role=db", 7, tnet_now(t)), 0);
    for (int i = 0; i < 3; i++)
        tnet_poll(t, i);
    tnet_run(t, tnet_now(t) + 6000);
    tnet_tap(t, NULL, NULL);
    assert_int_equal(stats_of(t, 1).user_events_delivered, 1);

    /* Node 1 restarts (a larger epoch) and rejoins; the others learn its new life. */
    tnet_settings(t, 1)->seal_epoch = 9000;
    tnet_restart(t, 1);
    tnet_join(t, 1, 0);
    tnet_run(t, tnet_now(t) + 10000);
    assert_true(all_see_all(t, 3));
    rumor_stats before = stats_of(t, 1);
    assert_int_equal(before.user_events_delivered, 0); /* it joined without past events */
    assert_int_equal(before.dropped[RUMOR_DROP_STALE_EPOCH], 0);
    member_view v0, v1;
    view_of(t, 1, &v0);
    uint64_t kv0 = rumor_node_kv_digest(tnet_node(t, 1));

    size_t sent = 0, refused = 0, limited = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (c->stream[i] || c->to[i] != 1)
            continue;
        rumor_addr from = tnet_addr(c->from[i]);
        rumor_stats a = stats_of(t, 1);
        int rc = tnet_inject(t, 1, &from, c->data[i], c->len[i]);
        rumor_stats b = stats_of(t, 1);
        sent++;
        if (rc != RUMOR_OK) {
            assert_int_equal(rc, RUMOR_ERR_AUTH); /* an older counter than its window holds */
            refused++;
            continue;
        }
        /* Taken by the window (its old life's counters are gone), but never in full. */
        assert_int_equal(b.stale_epoch_in, a.stale_epoch_in + 1);
        limited++;
    }
    assert_true(sent > 10);
    assert_true(limited > 0); /* the hole: these would have been applied in full */
    rumor_stats after = stats_of(t, 1);
    assert_true(after.dropped[RUMOR_DROP_STALE_EPOCH] > 0);
    tnet_poll(t, 1);
    tnet_run(t, tnet_now(t) + 3000);
    after = stats_of(t, 1);
    assert_int_equal(after.user_events_delivered, 0);
    assert_int_equal(after.user_events_received, before.user_events_received);
    assert_true(rumor_node_kv_digest(tnet_node(t, 1)) == kv0);
    view_of(t, 1, &v1);
    assert_memory_equal(&v0, &v1, sizeof(v0));
    assert_true(all_see_all(t, 3));
    capture_free(c);
    free(c);
    tnet_free(t);
}

/*
 * First contact: two sealed nodes that never heard from each other name epoch 0; their first
 * exchanges teach each other the epoch, no news is lost on the way (news waits for it) and
 * nothing of a cluster without restarts is counted as stale_epoch.
 */
static void test_first_contact(void **state)
{
    (void)state;
    const uint8_t *keys[] = {K1};
    tnet *t = net(4, keys, 1, 19);
    start_all(t, 4);
    /* An event at once, while the joiners know nobody's epoch but their seed's. */
    tnet_run(t, 50);
    assert_int_equal(rumor_node_event(tnet_node(t, 3), "early", "x", 1, tnet_now(t)), 0);
    tnet_poll(t, 3);
    tnet_run(t, 10000);
    assert_true(all_see_all(t, 4));
    uint64_t first = 0;
    for (int i = 0; i < 4; i++) {
        rumor_stats st = stats_of(t, i);
        assert_int_equal(st.user_events_delivered, 1);
        assert_int_equal(st.dropped[RUMOR_DROP_STALE_EPOCH], 0);
        first += st.stale_epoch_in;
    }
    assert_true(first > 0); /* first contacts happened, and were answered */
    /* Node 2 restarts: the others' news reaches its new life (held back, then sent), with no
     * false suspicion of anyone. */
    tnet_settings(t, 2)->seal_epoch = 5000;
    tnet_restart(t, 2);
    tnet_join(t, 2, 0);
    tnet_run(t, tnet_now(t) + 200);
    assert_int_equal(rumor_node_event(tnet_node(t, 1), "later", "y", 1, tnet_now(t)), 0);
    tnet_poll(t, 1);
    tnet_run(t, tnet_now(t) + 10000);
    assert_true(all_see_all(t, 4));
    assert_int_equal(stats_of(t, 2).user_events_delivered, 1);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(tnet_events(t, i, 0, RUMOR_EVENT_MEMBER_SUSPECT), 0);
        assert_int_equal(tnet_events(t, i, 3, RUMOR_EVENT_MEMBER_SUSPECT), 0);
    }
    tnet_free(t);
}

/*
 * A responder answers a query straight to its asker, which it may never have heard from: the
 * answer names no epoch of the asker (section 3.1.4) and must still count, since it can only
 * answer a query the asker's current life runs.
 */
static void test_answers_from_strangers(void **state)
{
    (void)state;
    const uint8_t *keys[] = {K1};
    enum { N = 8 };
    tnet *t = net(N, keys, 1, 23);
    for (int i = 0; i < N; i++)
        tnet_settings(t, i)->keys_query = true;
    start_all(t, N);
    /* Until the last joiner knows everyone (its join brought the seed's table); most members
     * have not heard from it yet. */
    for (int j = 0; j < N - 1 && tnet_now(t) < 10000;)
        if (state_of(t, N - 1, j) == RUMOR_MEMBER_ALIVE)
            j++;
        else
            tnet_run(t, tnet_now(t) + 10);
    uint64_t before = 0;
    for (int i = 0; i < N; i++)
        before += stats_of(t, i).stale_epoch_in;
    /* The last joiner asks at once: some members have not heard from it yet. */
    uint64_t id = 0;
    rumor_query_params p = {.timeout_ms = 3000};
    assert_int_equal(
        rumor_node_keys_query(tnet_node(t, N - 1), RUMOR_KEYS_LIST, NULL, &p, &id, tnet_now(t)),
        RUMOR_OK);
    tnet_poll(t, N - 1);
    tnet_run(t, tnet_now(t) + 2500);
    rumor_query_result r;
    assert_int_equal(rumor_node_query_result(tnet_node(t, N - 1), id, &r), RUMOR_OK);
    assert_int_equal(r.matched, N);
    assert_int_equal(r.responses, N);
    uint64_t stale = 0;
    for (int i = 0; i < N; i++)
        stale += stats_of(t, i).stale_epoch_in;
    assert_true(stale > before); /* answers from members that had not heard from the asker */
    tnet_free(t);
}

/* Streams: a recorded exchange cannot be played to the acceptor again, frames cannot be
 * reflected, and a tampered frame closes the stream. */
static void test_stream_replay_and_tamper(void **state)
{
    (void)state;
    const uint8_t *keys[] = {K1};
    tnet *t = net(2, keys, 1, 13);
    capture *c = calloc(1, sizeof(*c));
    tnet_tap(t, tap, c);
    start_all(t, 2); /* node 1 joins through node 0: a full push-pull */
    tnet_run(t, 3000);
    assert_true(all_see_all(t, 2));
    tnet_tap(t, NULL, NULL);
    /* The opener's bytes (hello, then the request), and the acceptor's. */
    static uint8_t opener[65536], acceptor[65536];
    size_t olen = 0, alen = 0, ochunks = 0, achunks = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (!c->stream[i])
            continue;
        if (c->from[i] == 1 && c->to[i] == 0 && ochunks < 2) {
            memcpy(opener + olen, c->data[i], c->len[i]);
            olen += c->len[i];
            ochunks++;
        } else if (c->from[i] == 0 && c->to[i] == 1 && achunks < 1) {
            memcpy(acceptor + alen, c->data[i], c->len[i]);
            alen += c->len[i];
            achunks++;
        }
    }
    assert_int_equal(ochunks, 2);
    assert_true(olen > 0 && alen > 0);
    rumor_node *n0 = tnet_node(t, 0);
    rumor_addr from1 = tnet_addr(1);
    member_view before, after;
    view_of(t, 0, &before);
    /* Replay the whole recorded opener side on a new stream: the hello is answered (it carries
     * nothing), the request is bound to the old acceptor token and refused. */
    uint64_t id;
    uint64_t d = drops(t, 0, RUMOR_DROP_REPLAYED);
    assert_int_equal(rumor_node_stream_accept(n0, &from1, &id, tnet_now(t)), RUMOR_OK);
    assert_int_equal(rumor_node_stream_data(n0, id, opener, olen, tnet_now(t)), RUMOR_ERR_AUTH);
    assert_int_equal(drops(t, 0, RUMOR_DROP_REPLAYED), d + 1);
    assert_int_equal(rumor_node_stream_data(n0, id, opener, 1, tnet_now(t)), RUMOR_ERR_NOT_FOUND);
    /* Reflect the acceptor's own frames back to it: wrong direction. */
    assert_int_equal(rumor_node_stream_accept(n0, &from1, &id, tnet_now(t)), RUMOR_OK);
    assert_int_equal(rumor_node_stream_data(n0, id, acceptor, alen, tnet_now(t)), RUMOR_ERR_AUTH);
    assert_int_equal(drops(t, 0, RUMOR_DROP_REPLAYED), d + 2);
    /* Flip one byte inside the first frame's ciphertext. */
    static uint8_t bad[65536];
    memcpy(bad, opener, olen);
    bad[4 + 5 + SEAL_ENV_BYTES + 3] ^= 0x80;
    d = drops(t, 0, RUMOR_DROP_AUTH_FAILED);
    assert_int_equal(rumor_node_stream_accept(n0, &from1, &id, tnet_now(t)), RUMOR_OK);
    assert_int_equal(rumor_node_stream_data(n0, id, bad, olen, tnet_now(t)), RUMOR_ERR_AUTH);
    assert_int_equal(drops(t, 0, RUMOR_DROP_AUTH_FAILED), d + 1);
    view_of(t, 0, &after);
    assert_memory_equal(&before, &after, sizeof(before));
    /* A datagram's envelope moved onto a stream is refused as well (wrong kind). */
    size_t k;
    for (k = 0; k < c->n && (c->stream[k] || c->to[k] != 0); k++)
        ;
    assert_true(k < c->n);
    uint8_t frame[2048];
    frame[0] = frame[1] = 0;
    frame[2] = (uint8_t)(c->len[k] >> 8);
    frame[3] = (uint8_t)c->len[k];
    memcpy(frame + 4, c->data[k], c->len[k]);
    assert_int_equal(rumor_node_stream_accept(n0, &from1, &id, tnet_now(t)), RUMOR_OK);
    assert_int_equal(rumor_node_stream_data(n0, id, frame, 4 + c->len[k], tnet_now(t)),
                     RUMOR_ERR_AUTH);
    /* And the cluster carries on. */
    tnet_run(t, 20000);
    assert_true(all_see_all(t, 2));
    assert_int_equal(suspect_events(t, 2), 0);
    capture_free(c);
    free(c);
    tnet_free(t);
}

int main(void)
{
    if (sodium_init() < 0) /* the host's job, not the engine's; AES-256-GCM needs it */
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_tamper),
        cmocka_unit_test(test_round_trip_and_tamper_aes),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_golden_vector),
        cmocka_unit_test(test_golden_vector_aes),
        cmocka_unit_test(test_replay_window),
        cmocka_unit_test(test_keyring_api),
        cmocka_unit_test(test_sealed_cluster_hides_everything),
        cmocka_unit_test(test_sealed_and_plain_keep_apart),
        cmocka_unit_test(test_migration),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_mixed_ciphers),
        cmocka_unit_test(test_replayed_datagrams),
        cmocka_unit_test(test_stream_replay_and_tamper),
        cmocka_unit_test(test_replay_after_recipient_restart),
        cmocka_unit_test(test_first_contact),
        cmocka_unit_test(test_answers_from_strangers),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
