/*
 * Cluster key operations (keyq.c, docs/protocol.md section 13): the answer format's golden
 * bytes and its decoder's refusals, the responder's answers to every request (well-formed,
 * malformed, refused, disabled, unsealed), reserved names kept from hosts, and a rotation of a
 * sealed four-node cluster asked by one node, where no member confirms a change before its host
 * has taken the keyring-change event, and one that cannot save says so.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/node.h"
#include "core/wire.h"
#include "helper_net.h"

static uint8_t K1[RUMOR_KEY_BYTES], K2[RUMOR_KEY_BYTES], K3[RUMOR_KEY_BYTES];

static int setup(void **state)
{
    (void)state;
    tnet_fill(K1, sizeof(K1), 0x01);
    tnet_fill(K2, sizeof(K2), 0x41);
    tnet_fill(K3, sizeof(K3), 0x81);
    return 0;
}

/* ---- the answer format ---- */

static void test_answer_golden(void **state)
{
    (void)state;
    rumor_keys_answer a;
    /* An applied install: version 1, op 1, code 0, no text, no keys. */
    static const uint8_t ok[] = {0x01, 0x01, 0x00, 0x00, 0x00};
    assert_int_equal(rumor_keys_answer_decode(ok, sizeof(ok), &a), RUMOR_OK);
    assert_int_equal(a.op, RUMOR_KEYS_INSTALL);
    assert_int_equal(a.code, RUMOR_OK);
    assert_string_equal(a.error, "");
    assert_int_equal(a.nkeys, 0);
    /* A refused remove: code 5 (RUMOR_ERR_STATE), 24 bytes of text. */
    uint8_t refused[5 + 24];
    memcpy(refused, "\x01\x03\x05\x18", 4);
    memcpy(refused + 4, "removing the primary key", 24);
    refused[28] = 0x00;
    assert_int_equal(rumor_keys_answer_decode(refused, sizeof(refused), &a), RUMOR_OK);
    assert_int_equal(a.op, RUMOR_KEYS_REMOVE);
    assert_int_equal(a.code, RUMOR_ERR_STATE);
    assert_string_equal(a.error, "removing the primary key");
    /* A list of two keys, primary first. */
    uint8_t list[5 + 2 * RUMOR_KEY_BYTES] = {0x01, 0x04, 0x00, 0x00, 0x02};
    memcpy(list + 5, K2, RUMOR_KEY_BYTES);
    memcpy(list + 5 + RUMOR_KEY_BYTES, K1, RUMOR_KEY_BYTES);
    assert_int_equal(rumor_keys_answer_decode(list, sizeof(list), &a), RUMOR_OK);
    assert_int_equal(a.op, RUMOR_KEYS_LIST);
    assert_int_equal(a.nkeys, 2);
    assert_memory_equal(a.keys, K2, RUMOR_KEY_BYTES);
    assert_memory_equal(a.keys + RUMOR_KEY_BYTES, K1, RUMOR_KEY_BYTES);
}

static void test_answer_refusals(void **state)
{
    (void)state;
    rumor_keys_answer a;
    static const struct {
        const char *bytes;
        size_t len;
        int rc;
    } bad[] = {
        {"", 0, RUMOR_ERR_MALFORMED},
        {"\x02\x01\x00\x00\x00", 5, RUMOR_ERR_VERSION},         /* a later version */
        {"\x01\x01\x00\x00", 4, RUMOR_ERR_MALFORMED},           /* no key count */
        {"\x01\x01\x00\x00\x00\x00", 6, RUMOR_ERR_MALFORMED},   /* a byte too many */
        {"\x01\x05\x00\x00\x00", 5, RUMOR_ERR_MALFORMED},       /* unknown op */
        {"\x01\x00\x00\x00\x00", 5, RUMOR_ERR_MALFORMED},       /* op 0 without an error */
        {"\x01\x01\x05\x00\x00", 5, RUMOR_ERR_MALFORMED},       /* an error without text */
        {"\x01\x01\x00\x01x\x00", 6, RUMOR_ERR_MALFORMED},      /* text without an error */
        {"\x01\x01\x05\x02x\x00\x00", 7, RUMOR_ERR_MALFORMED},  /* NUL in the text */
        {"\x01\x01\x05\x09short\x00", 10, RUMOR_ERR_MALFORMED}, /* text cut short */
        {"\x01\x04\x00\x00\x11", 5, RUMOR_ERR_MALFORMED},       /* 17 keys */
        {"\x01\x04\x00\x00\x01", 5, RUMOR_ERR_MALFORMED},       /* a key cut short */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(rumor_keys_answer_decode(bad[i].bytes, bad[i].len, &a), bad[i].rc);
    /* Keys in an answer that is not a list. */
    uint8_t keys[5 + RUMOR_KEY_BYTES] = {0x01, 0x01, 0x00, 0x00, 0x01};
    assert_int_equal(rumor_keys_answer_decode(keys, sizeof(keys), &a), RUMOR_ERR_MALFORMED);
    assert_int_equal(rumor_keys_answer_decode(NULL, 3, &a), RUMOR_ERR_INVALID);
}

/* ---- one node answering ---- */

static uint8_t ring[RUMOR_KEYRING_MAX][RUMOR_KEY_BYTES];

static rumor_node *sealed_node(bool keys_query)
{
    rumor_settings s;
    rumor_settings_default(&s, RUMOR_PROFILE_LAN);
    s.name = "solo";
    s.addr = tnet_addr(1);
    memcpy(ring[0], K1, RUMOR_KEY_BYTES);
    s.keys = (const uint8_t(*)[RUMOR_KEY_BYTES])ring;
    s.nkeys = 1;
    tnet_fill(s.seal_secret, sizeof(s.seal_secret), 7);
    s.seal_epoch = 1000;
    s.keys_query = keys_query;
    rumor_node *n = NULL;
    assert_int_equal(rumor_node_new(&n, &s, 0), RUMOR_OK);
    return n;
}

/* Runs request `req` through the responder and decodes the answer. */
static rumor_keys_answer answer(rumor_node *n, const void *req, size_t len, bool sealed,
                                bool *changed, uint8_t *buf)
{
    uint8_t op;
    rumor_keys_answer a;
    size_t out = keyq_answer(n, wire_str_of(req, len), sealed, buf, 1024, changed, &op);
    assert_true(out > 0);
    assert_int_equal(rumor_keys_answer_decode(buf, out, &a), RUMOR_OK);
    return a;
}

static size_t request(uint8_t *req, rumor_keys_op op, const uint8_t *key)
{
    req[0] = 1;
    req[1] = (uint8_t)op;
    if (!key)
        return 2;
    memcpy(req + 2, key, RUMOR_KEY_BYTES);
    return 2 + RUMOR_KEY_BYTES;
}

static void test_responder(void **state)
{
    (void)state;
    static uint8_t buf[1024];
    uint8_t req[64], key[RUMOR_KEY_BYTES];
    bool changed;
    rumor_node *n = sealed_node(true);
    rumor_keys_answer a;

    a = answer(n, req, request(req, RUMOR_KEYS_INSTALL, K2), true, &changed, buf);
    assert_int_equal(a.code, RUMOR_OK);
    assert_true(changed);
    assert_int_equal(rumor_node_keyring_count(n), 2);
    a = answer(n, req, request(req, RUMOR_KEYS_INSTALL, K2), true, &changed, buf);
    assert_int_equal(a.code, RUMOR_OK); /* again: nothing to do, still confirmed */
    assert_false(changed);
    a = answer(n, req, request(req, RUMOR_KEYS_USE, K3), true, &changed, buf);
    assert_int_equal(a.code, RUMOR_ERR_NOT_FOUND);
    assert_string_equal(a.error, "key not installed");
    assert_false(changed);
    a = answer(n, req, request(req, RUMOR_KEYS_REMOVE, K1), true, &changed, buf);
    assert_int_equal(a.code, RUMOR_ERR_STATE);
    assert_string_equal(a.error, "removing the primary key");
    a = answer(n, req, request(req, RUMOR_KEYS_USE, K2), true, &changed, buf);
    assert_int_equal(a.code, RUMOR_OK);
    assert_true(changed);
    assert_int_equal(rumor_node_keyring_key(n, 0, key), RUMOR_OK);
    assert_memory_equal(key, K2, RUMOR_KEY_BYTES);
    a = answer(n, req, request(req, RUMOR_KEYS_LIST, NULL), true, &changed, buf);
    assert_int_equal(a.code, RUMOR_OK);
    assert_int_equal(a.nkeys, 2);
    assert_memory_equal(a.keys, K2, RUMOR_KEY_BYTES);
    a = answer(n, req, request(req, RUMOR_KEYS_REMOVE, K1), true, &changed, buf);
    assert_int_equal(a.code, RUMOR_OK);
    assert_true(changed);
    a = answer(n, req, request(req, RUMOR_KEYS_REMOVE, K1), true, &changed, buf);
    assert_int_equal(a.code, RUMOR_OK); /* already gone: the step holds */
    assert_false(changed);
    assert_int_equal(rumor_node_keyring_count(n), 1);

    /* A request that came unsealed changes nothing. */
    a = answer(n, req, request(req, RUMOR_KEYS_INSTALL, K3), false, &changed, buf);
    assert_int_equal(a.code, RUMOR_ERR_AUTH);
    assert_int_equal(rumor_node_keyring_count(n), 1);

    /* Hostile and malformed requests: refused, counted, nothing changes. */
    rumor_stats before, after;
    rumor_node_stats(n, &before);
    static const struct {
        const char *bytes;
        size_t len;
    } bad[] = {{"", 0},         {"\x01", 1},     {"\x02\x04", 2},  {"\x01\x00", 2},
               {"\x01\x09", 2}, {"\x01\x01", 2}, {"\x01\x04x", 3}, {"\x01\x02short", 7}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        a = answer(n, bad[i].bytes, bad[i].len, true, &changed, buf);
        assert_int_equal(a.code, RUMOR_ERR_MALFORMED);
        assert_int_equal(a.op, 0);
        assert_false(changed);
    }
    uint8_t longer[2 + RUMOR_KEY_BYTES + 1];
    request(longer, RUMOR_KEYS_INSTALL, K3);
    a = answer(n, longer, sizeof(longer), true, &changed, buf);
    assert_int_equal(a.code, RUMOR_ERR_MALFORMED);
    rumor_node_stats(n, &after);
    assert_int_equal(after.keys_ops_malformed - before.keys_ops_malformed, 9);
    assert_int_equal(after.dropped[RUMOR_DROP_MALFORMED] - before.dropped[RUMOR_DROP_MALFORMED], 9);
    assert_int_equal(rumor_node_keyring_count(n), 1);
    /* install twice, use, list, remove twice; use of a missing key, remove of the primary, the
     * unsealed install. */
    assert_int_equal(after.keys_ops_applied, 6);
    assert_int_equal(after.keys_ops_refused, 3);
    rumor_node_del(n);

    /* A node that does not take cluster key operations says so. */
    n = sealed_node(false);
    a = answer(n, req, request(req, RUMOR_KEYS_INSTALL, K2), true, &changed, buf);
    assert_int_equal(a.code, RUMOR_ERR_STATE);
    assert_string_equal(a.error, "cluster key operations are disabled on this member");
    assert_int_equal(rumor_node_keyring_count(n), 1);
    rumor_node_del(n);
}

/* ---- reserved names ---- */

static void test_reserved_names(void **state)
{
    (void)state;
    rumor_settings s;
    rumor_settings_default(&s, RUMOR_PROFILE_LAN);
    s.name = "plain";
    s.addr = tnet_addr(2);
    rumor_node *n = NULL;
    uint64_t id;
    assert_int_equal(rumor_node_new(&n, &s, 0), RUMOR_OK);
    assert_true(rumor_name_reserved("_rumor-keys", 11));
    assert_true(rumor_name_reserved("_rumor", 6));
    assert_false(rumor_name_reserved("_rumo", 5));
    assert_false(rumor_name_reserved("rumor-keys", 10));
    assert_int_equal(rumor_node_query(n, "_rumor-keys", "x", 1, NULL, &id, 0), RUMOR_ERR_INVALID);
    assert_int_equal(rumor_node_query(n, "_rumorX", NULL, 0, NULL, &id, 0), RUMOR_ERR_INVALID);
    assert_int_equal(rumor_node_event(n, "_rumor-keys", "x", 1, 0), RUMOR_ERR_INVALID);
    assert_int_equal(rumor_node_query(n, "_rumo", NULL, 0, NULL, &id, 0), RUMOR_OK);
    /* No keyring: the key would travel in the clear. */
    assert_int_equal(rumor_node_keys_query(n, RUMOR_KEYS_INSTALL, K1, NULL, &id, 0),
                     RUMOR_ERR_STATE);
    assert_int_equal(rumor_node_keys_query(n, RUMOR_KEYS_LIST, NULL, NULL, &id, 0),
                     RUMOR_ERR_STATE);
    rumor_node_del(n);
    n = sealed_node(true);
    assert_int_equal(rumor_node_keys_query(n, (rumor_keys_op)9, K1, NULL, &id, 0),
                     RUMOR_ERR_INVALID);
    assert_int_equal(rumor_node_keys_query(n, RUMOR_KEYS_USE, NULL, NULL, &id, 0),
                     RUMOR_ERR_INVALID);
    assert_int_equal(rumor_node_keys_query(n, RUMOR_KEYS_LIST, NULL, NULL, NULL, 0),
                     RUMOR_ERR_INVALID);
    rumor_node_del(n);
}

/* Reserved names that arrive from the network never reach the host. */
typedef struct seen {
    int user, query, responses, changes, ok;
    uint64_t id;
    bool done;
    rumor_query_result res;
    /* Key operations: answers sent per node before the operation, answers that left before
     * their host had taken the keyring-change event, and a node whose "save" fails (-1: none). */
    uint64_t sent_before[4];
    int early, unsaved;
    char error[256];
} seen;

static void hook(tnet *t, int node, const rumor_event *ev, void *ud)
{
    seen *s = ud;
    rumor_keys_answer a;
    if (ev->type == RUMOR_EVENT_USER)
        s->user++;
    if (ev->type == RUMOR_EVENT_QUERY)
        s->query++;
    if (ev->type == RUMOR_EVENT_KEYRING_CHANGE) {
        s->changes++;
        rumor_stats st;
        rumor_node_stats(tnet_node(t, node), &st);
        s->early += st.query_responses_sent != s->sent_before[node];
        if (node == s->unsaved)
            assert_int_equal(rumor_node_keys_unsaved(tnet_node(t, node), "disk full"), RUMOR_OK);
    }
    if (node == 0 && ev->query_id == s->id && ev->type == RUMOR_EVENT_QUERY_RESPONSE) {
        s->responses++;
        assert_int_equal(rumor_keys_answer_decode(ev->payload, ev->payload_len, &a), RUMOR_OK);
        s->ok += a.code == RUMOR_OK;
        if (a.code != RUMOR_OK)
            snprintf(s->error, sizeof(s->error), "%s", a.error);
    }
    if (node == 0 && ev->query_id == s->id && ev->type == RUMOR_EVENT_QUERY_DONE) {
        s->done = true;
        s->res = ev->query;
    }
}

static void test_reserved_from_the_network(void **state)
{
    (void)state;
    static seen s;
    memset(&s, 0, sizeof(s));
    tnet *t = tnet_new(2, RUMOR_PROFILE_LAN, 71);
    tnet_set_event_hook(t, hook, &s);
    tnet_start(t, 0);
    tnet_start(t, 1);
    tnet_join(t, 1, 0);
    tnet_run(t, 3000);
    uint8_t b[512];
    buf_writer w;
    buf_writer_init_fixed(&w, b, sizeof(b));
    wire_put_header(&w, NULL, 0, 0);
    wire_put_user_event(&w, 1, wire_str_of("n1", 2), wire_str_of("_rumor-x", 8),
                        wire_str_of("", 0));
    rumor_addr from = tnet_addr(1);
    assert_int_equal(tnet_inject(t, 0, &from, w.p, w.len), RUMOR_OK);
    /* A plaintext key operation: neither applied (no keyring here) nor handed to the host. */
    uint8_t req[2 + RUMOR_KEY_BYTES], rest[128];
    request(req, RUMOR_KEYS_INSTALL, K1);
    buf_writer r;
    buf_writer_init_fixed(&r, rest, sizeof(rest));
    wire_str name = wire_str_of(RUMOR_KEYS_QUERY_NAME, strlen(RUMOR_KEYS_QUERY_NAME));
    wire_put_query_rest(&r, NULL, 0, NULL, NULL, 0, name, wire_str_of(req, sizeof(req)));
    buf_writer_init_fixed(&w, b, sizeof(b));
    wire_put_header(&w, NULL, 0, 0);
    wire_put_query(&w, 1, 77, wire_str_of("n1", 2), &from, WIRE_Q_ACK, 1000,
                   wire_str_of(rest, r.len));
    assert_int_equal(tnet_inject(t, 0, &from, w.p, w.len), RUMOR_OK);
    tnet_run(t, tnet_now(t) + 2000);
    assert_int_equal(s.user, 0);
    assert_int_equal(s.query, 0);
    assert_int_equal(s.changes, 0);
    rumor_stats st;
    rumor_node_stats(tnet_node(t, 0), &st);
    assert_int_equal(st.reserved_refused, 1);
    assert_int_equal(st.keys_ops_refused, 1);
    assert_int_equal(st.keys_ops_applied, 0);
    tnet_free(t);
}

/* ---- a rotation over the unit-test network ---- */

static char names[4][16];
static uint8_t rings[4][1][RUMOR_KEY_BYTES];

static void ask(tnet *t, seen *s, rumor_keys_op op, const uint8_t *key, int expect)
{
    s->responses = s->ok = 0;
    s->done = false;
    for (int i = 0; i < 4; i++) {
        rumor_stats st;
        rumor_node_stats(tnet_node(t, i), &st);
        s->sent_before[i] = st.query_responses_sent;
    }
    rumor_query_params p = {.timeout_ms = 2000, .request_ack = true};
    assert_int_equal(rumor_node_keys_query(tnet_node(t, 0), op, key, &p, &s->id, tnet_now(t)),
                     RUMOR_OK);
    tnet_poll(t, 0);
    tnet_run(t, tnet_now(t) + 2500);
    assert_true(s->done);
    assert_int_equal(s->res.matched, 4);
    assert_int_equal(s->responses, 4);
    assert_int_equal(s->ok, expect);
}

static void test_rotation(void **state)
{
    (void)state;
    static seen s;
    memset(&s, 0, sizeof(s));
    tnet *t = tnet_new(4, RUMOR_PROFILE_LAN, 72);
    tnet_set_event_hook(t, hook, &s);
    for (int i = 0; i < 4; i++) {
        rumor_settings *st = tnet_settings(t, i);
        snprintf(names[i], sizeof(names[i]), "kq-%d", i);
        st->name = names[i];
        memcpy(rings[i][0], K1, RUMOR_KEY_BYTES);
        st->keys = (const uint8_t(*)[RUMOR_KEY_BYTES])rings[i];
        st->nkeys = 1;
        tnet_fill(st->seal_secret, sizeof(st->seal_secret), (uint8_t)(0x30 + i));
        st->seal_epoch = 1000 + (uint64_t)i;
        st->keys_query = true;
    }
    for (int i = 0; i < 4; i++)
        tnet_start(t, i);
    for (int i = 1; i < 4; i++)
        tnet_join(t, i, 0);
    tnet_run(t, 5000);
    s.unsaved = -1;
    ask(t, &s, RUMOR_KEYS_INSTALL, K2, 4);
    /* A member whose host cannot save the keyring says so instead of confirming. */
    s.unsaved = 2;
    ask(t, &s, RUMOR_KEYS_INSTALL, K3, 3);
    assert_string_equal(s.error, "applied but not saved: disk full");
    s.unsaved = -1;
    ask(t, &s, RUMOR_KEYS_REMOVE, K3, 4);
    ask(t, &s, RUMOR_KEYS_USE, K2, 4);
    ask(t, &s, RUMOR_KEYS_REMOVE, K2, 0); /* the primary now: refused everywhere */
    ask(t, &s, RUMOR_KEYS_REMOVE, K1, 4);
    assert_int_equal(s.changes, 20);
    /* Every answer that confirmed a change waited until its host had taken the event. */
    assert_int_equal(s.early, 0);
    assert_int_equal(s.query, 0);
    uint8_t key[RUMOR_KEY_BYTES];
    for (int i = 0; i < 4; i++) {
        assert_int_equal(rumor_node_keyring_count(tnet_node(t, i)), 1);
        assert_int_equal(rumor_node_keyring_key(tnet_node(t, i), 0, key), RUMOR_OK);
        assert_memory_equal(key, K2, RUMOR_KEY_BYTES);
        for (int j = 0; j < 4; j++) {
            rumor_member m;
            assert_int_equal(rumor_node_member_find(tnet_node(t, i), names[j], &m), RUMOR_OK);
            assert_int_equal(m.state, RUMOR_MEMBER_ALIVE);
        }
    }
    tnet_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answer_golden),
        cmocka_unit_test(test_answer_refusals),
        cmocka_unit_test(test_responder),
        cmocka_unit_test(test_reserved_names),
        cmocka_unit_test(test_reserved_from_the_network),
        cmocka_unit_test(test_rotation),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
