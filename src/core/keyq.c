/*
 * Cluster-wide keyring operations (Serf's key manager, `serf keys`): an install, use, remove or
 * list request rides in the reserved query RUMOR_KEYS_QUERY_NAME, every member applies it to its
 * own keyring and answers ok or why not, and the asker counts the answers as for any query. The
 * key travels in the query payload, which is safe only because a sealed cluster seals every
 * packet: a node asks only while it seals what it sends, applies only requests that reached it
 * sealed (or its own), and relays the query only while sealing (msg_query.c). The formats are in
 * docs/protocol.md section 13.
 */
#include "core/node.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define KEYQ_VERSION 1
/* version, op, code, error length, error text, key count, keys */
#define KEYQ_ANSWER_MAX (5u + 255u + RUMOR_KEYRING_MAX * RUMOR_KEY_BYTES)

const char *rumor_keys_op_name(rumor_keys_op op)
{
    switch (op) {
    case RUMOR_KEYS_INSTALL:
        return "install";
    case RUMOR_KEYS_USE:
        return "use";
    case RUMOR_KEYS_REMOVE:
        return "remove";
    case RUMOR_KEYS_LIST:
        return "list";
    default:
        return "unknown";
    }
}

bool rumor_name_reserved(const char *name, size_t len)
{
    size_t plen = sizeof(RUMOR_NAME_RESERVED_PREFIX) - 1;
    return name && len >= plen && memcmp(name, RUMOR_NAME_RESERVED_PREFIX, plen) == 0;
}

bool keyq_is_name(wire_str name)
{
    size_t len = sizeof(RUMOR_KEYS_QUERY_NAME) - 1;
    return name.len == len && memcmp(name.p, RUMOR_KEYS_QUERY_NAME, len) == 0;
}

static bool op_valid(unsigned op)
{
    return op >= RUMOR_KEYS_INSTALL && op <= RUMOR_KEYS_LIST;
}

/* ---- asking ---- */

int rumor_node_keys_query(rumor_node *n, rumor_keys_op op, const uint8_t *key,
                          const rumor_query_params *p, uint64_t *id, uint64_t now)
{
    if (!op_valid((unsigned)op) || !id || (op != RUMOR_KEYS_LIST && !key))
        return RUMOR_ERR_INVALID;
    /* The key must never leave this node in the clear. */
    if (!seal_sending(&n->seal))
        return RUMOR_ERR_STATE;
    uint8_t req[2 + RUMOR_KEY_BYTES];
    size_t len = 2;
    req[0] = KEYQ_VERSION;
    req[1] = (uint8_t)op;
    if (op != RUMOR_KEYS_LIST) {
        memcpy(req + 2, key, RUMOR_KEY_BYTES);
        len += RUMOR_KEY_BYTES;
    }
    rumor_query_params q = {0};
    if (p)
        q = *p;
    else
        q.request_ack = true;
    int rc = msg_query_ask(n, RUMOR_KEYS_QUERY_NAME, req, len, &q, true, id, now);
    sodium_memzero(req, sizeof(req));
    return rc;
}

/* ---- answering ---- */

typedef struct keyq_out {
    uint8_t op;
    int code;
    const char *error;
    bool list;
} keyq_out;

static size_t put_answer(rumor_node *n, const keyq_out *o, uint8_t *buf, size_t cap)
{
    buf_writer w;
    buf_writer_init_fixed(&w, buf, cap);
    size_t elen = o->error ? strlen(o->error) : 0;
    buf_put_u8(&w, KEYQ_VERSION);
    buf_put_u8(&w, o->op);
    buf_put_u8(&w, (uint8_t)(o->code < 0 ? -o->code : 0));
    buf_put_u8(&w, (uint8_t)elen);
    buf_put_bytes(&w, o->error, elen);
    size_t nkeys = o->list ? rumor_node_keyring_count(n) : 0;
    buf_put_u8(&w, (uint8_t)nkeys);
    for (size_t i = 0; i < nkeys; i++) {
        uint8_t k[RUMOR_KEY_BYTES];
        if (rumor_node_keyring_key(n, i, k) == RUMOR_OK)
            buf_put_bytes(&w, k, sizeof(k));
        sodium_memzero(k, sizeof(k));
    }
    return w.failed ? 0 : w.len;
}

/* Applies a decoded request to the keyring. Returns the code and sets `*error` and `*changed`. */
static int apply(rumor_node *n, uint8_t op, const uint8_t *key, const char **error, bool *changed)
{
    uint8_t primary[RUMOR_KEY_BYTES];
    size_t before = rumor_node_keyring_count(n);
    int rc = RUMOR_OK;
    *changed = false;
    *error = NULL;
    (void)rumor_node_keyring_key(n, 0, primary);
    switch (op) {
    case RUMOR_KEYS_INSTALL:
        rc = rumor_node_keyring_install(n, key);
        *changed = rc == RUMOR_OK && rumor_node_keyring_count(n) != before;
        *error = rc == RUMOR_ERR_FULL      ? "the keyring is full (16 keys)"
                 : rc == RUMOR_ERR_INVALID ? "the key's id collides with another installed key"
                                           : NULL;
        break;
    case RUMOR_KEYS_USE:
        rc = rumor_node_keyring_use(n, key);
        *changed = rc == RUMOR_OK && sodium_memcmp(primary, key, RUMOR_KEY_BYTES) != 0;
        *error = rc == RUMOR_ERR_NOT_FOUND ? "key not installed" : NULL;
        break;
    case RUMOR_KEYS_REMOVE:
        rc = rumor_node_keyring_remove(n, key);
        if (rc == RUMOR_ERR_NOT_FOUND)
            rc = RUMOR_OK; /* already gone: the goal of the step holds, as in memberlist */
        *changed = rc == RUMOR_OK && rumor_node_keyring_count(n) != before;
        *error = rc == RUMOR_ERR_STATE ? "removing the primary key" : NULL;
        break;
    default:
        break;
    }
    sodium_memzero(primary, sizeof(primary));
    if (rc != RUMOR_OK && !*error)
        *error = rumor_strerror(rc);
    return rc;
}

size_t keyq_answer(rumor_node *n, wire_str req, bool sealed, uint8_t *buf, size_t cap,
                   bool *changed, uint8_t *op_out)
{
    keyq_out o = {0, RUMOR_OK, NULL, false};
    *changed = false;
    uint8_t op = req.len >= 2 ? req.p[1] : 0;
    bool well_formed = req.len >= 2 && req.p[0] == KEYQ_VERSION && op_valid(op) &&
                       req.len == (op == RUMOR_KEYS_LIST ? 2u : 2u + RUMOR_KEY_BYTES);
    if (!well_formed) {
        n->st.keys_ops_malformed++;
        node_drop(n, RUMOR_DROP_MALFORMED);
        o.code = RUMOR_ERR_MALFORMED;
        o.error = req.len >= 1 && req.p[0] != KEYQ_VERSION ? "unknown key operation version"
                                                           : "malformed key operation";
    } else {
        o.op = op;
        if (!n->s.keys_query) {
            o.code = RUMOR_ERR_STATE;
            o.error = "cluster key operations are disabled on this member";
        } else if (!seal_sending(&n->seal)) {
            o.code = RUMOR_ERR_STATE;
            o.error = "this member is not sealed (no keyring, or it sends plaintext)";
        } else if (!sealed) {
            o.code = RUMOR_ERR_AUTH;
            o.error = "the request reached this member unsealed";
        } else if (op == RUMOR_KEYS_LIST) {
            o.list = true;
        } else {
            o.code = apply(n, op, req.p + 2, &o.error, changed);
        }
        if (o.code == RUMOR_OK)
            n->st.keys_ops_applied++;
        else
            n->st.keys_ops_refused++;
    }
    *op_out = o.op;
    return put_answer(n, &o, buf, cap);
}

/* Sends answer `buf` to query `in_id`; a keyring list too long for a response says so instead. */
static void respond(rumor_node *n, uint64_t in_id, uint8_t op, const uint8_t *buf, size_t len,
                    uint64_t now)
{
    int rc = len ? rumor_node_query_respond(n, in_id, buf, len, now) : RUMOR_ERR_TOO_BIG;
    if (rc == RUMOR_ERR_TOO_BIG) {
        uint8_t err[KEYQ_ANSWER_MAX];
        keyq_out o = {op, RUMOR_ERR_TOO_BIG, "the answer exceeds query_response_bytes_max", false};
        size_t elen = put_answer(n, &o, err, sizeof(err));
        (void)rumor_node_query_respond(n, in_id, err, elen, now);
    }
}

typedef struct keyq_held {
    uint64_t in_id;
    uint8_t op;
    bool taken; /* the host has taken its event */
    uint32_t len;
    uint8_t *buf;
} keyq_held;

/* Holds the answer to `in_id` until the host has taken the event just queued. False when out of
 * memory: the caller answers at once instead. */
static bool hold(rumor_node *n, uint64_t in_id, uint8_t op, const uint8_t *buf, size_t len)
{
    void *h = n->keyq_held;
    uint8_t *copy = ralloc(&n->alloc, len ? len : 1);
    if (!copy ||
        !rgrow(&n->alloc, &h, &n->keyq_held_cap, n->keyq_held_len + 1, sizeof(keyq_held))) {
        rfree(&n->alloc, copy);
        return false;
    }
    n->keyq_held = h;
    memcpy(copy, buf, len);
    n->keyq_held[n->keyq_held_len++] = (keyq_held){in_id, op, false, (uint32_t)len, copy};
    return true;
}

static void held_drop(rumor_node *n, size_t i)
{
    sodium_memzero(n->keyq_held[i].buf, n->keyq_held[i].len);
    rfree(&n->alloc, n->keyq_held[i].buf);
    n->keyq_held[i] = n->keyq_held[--n->keyq_held_len];
}

void keyq_serve(rumor_node *n, uint64_t in_id, wire_str origin, wire_str req, bool sealed,
                uint64_t now)
{
    uint8_t buf[KEYQ_ANSWER_MAX];
    bool changed = false;
    uint8_t op = 0;
    size_t len = keyq_answer(n, req, sealed, buf, sizeof(buf), &changed, &op);
    /* A confirmation must mean a saved keyring: an answer that reported a change and then died
     * with an agent killed before its keyring file was written would tell the asker the key is
     * there when, after the restart, it is not. So the answer waits until the host has taken
     * the event (and so saved the keyring); without memory for that it goes at once. */
    ev_rec *e = NULL;
    if (changed) {
        const char *name = rumor_keys_op_name((rumor_keys_op)op);
        e = msg_event(n, RUMOR_EVENT_KEYRING_CHANGE, origin, wire_str_of(name, strlen(name)),
                      wire_str_of(NULL, 0));
    }
    if (e && hold(n, in_id, op, buf, len))
        e->query_id = in_id; /* which held answer the event releases */
    else
        respond(n, in_id, op, buf, len, now);
    sodium_memzero(buf, sizeof(buf));
}

void keyq_event_taken(rumor_node *n, uint64_t in_id)
{
    for (size_t i = 0; i < n->keyq_held_len; i++)
        if (n->keyq_held[i].in_id == in_id) {
            n->keyq_held[i].taken = true;
            n->keyq_taken++;
            return;
        }
}

void keyq_release(rumor_node *n)
{
    for (size_t i = 0; n->keyq_taken && i < n->keyq_held_len;) {
        keyq_held *h = &n->keyq_held[i];
        if (!h->taken) {
            i++;
            continue;
        }
        respond(n, h->in_id, h->op, h->buf, h->len, n->now);
        held_drop(n, i);
        n->keyq_taken--;
    }
}

int rumor_node_keys_unsaved(rumor_node *n, const char *why)
{
    if (!n)
        return RUMOR_ERR_INVALID;
    char msg[200];
    snprintf(msg, sizeof(msg), "applied but not saved: %s", why && *why ? why : "unknown error");
    int rc = RUMOR_ERR_STATE;
    for (size_t i = 0; i < n->keyq_held_len; i++) {
        keyq_held *h = &n->keyq_held[i];
        if (!h->taken)
            continue;
        uint8_t buf[KEYQ_ANSWER_MAX];
        keyq_out o = {h->op, RUMOR_ERR_STATE, msg, false};
        size_t len = put_answer(n, &o, buf, sizeof(buf));
        uint8_t *copy = len ? ralloc(&n->alloc, len) : NULL;
        if (!copy)
            return RUMOR_ERR_NOMEM;
        memcpy(copy, buf, len);
        sodium_memzero(h->buf, h->len);
        rfree(&n->alloc, h->buf);
        h->buf = copy;
        h->len = (uint32_t)len;
        rc = RUMOR_OK;
    }
    return rc;
}

void keyq_free(rumor_node *n)
{
    while (n->keyq_held_len)
        held_drop(n, n->keyq_held_len - 1);
    rfree(&n->alloc, n->keyq_held);
    n->keyq_held = NULL;
    n->keyq_held_cap = n->keyq_taken = 0;
}

/* ---- reading answers ---- */

int rumor_keys_answer_decode(const void *payload, size_t len, rumor_keys_answer *out)
{
    if (!out || (len && !payload))
        return RUMOR_ERR_INVALID;
    memset(out, 0, sizeof(*out));
    buf_reader r;
    buf_reader_init(&r, payload, len);
    uint8_t version, op, code, elen, nkeys;
    const uint8_t *err, *keys;
    if (!buf_get_u8(&r, &version))
        return RUMOR_ERR_MALFORMED;
    if (version != KEYQ_VERSION)
        return RUMOR_ERR_VERSION;
    if (!buf_get_u8(&r, &op) || !buf_get_u8(&r, &code) || !buf_get_u8(&r, &elen) ||
        !buf_get_bytes(&r, elen, &err) || !buf_get_u8(&r, &nkeys) || nkeys > RUMOR_KEYRING_MAX ||
        !buf_get_bytes(&r, (size_t)nkeys * RUMOR_KEY_BYTES, &keys) || buf_reader_left(&r) != 0)
        return RUMOR_ERR_MALFORMED;
    /* op 0 only with an error (the request was not understood); an error needs its text, an
     * applied operation has none; only a list carries keys. */
    if ((op != 0 && !op_valid(op)) || (op == 0 && code == 0) || (code != 0) != (elen != 0) ||
        (nkeys && (op != RUMOR_KEYS_LIST || code != 0)) || (elen && memchr(err, 0, elen)))
        return RUMOR_ERR_MALFORMED;
    out->op = (rumor_keys_op)op;
    out->code = -(int)code;
    memcpy(out->error, err, elen);
    out->error[elen] = '\0';
    out->nkeys = nkeys;
    out->keys = nkeys ? keys : NULL;
    return RUMOR_OK;
}
