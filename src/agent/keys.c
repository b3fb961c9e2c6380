/*
 * The agent's keyring: where its keys come from at start (--encrypt, --keyring), the seal
 * epoch and entropy the engine needs, and the /v1/keys endpoints that list, install, promote
 * and remove keys at run time, keeping the keyring file in step.
 *
 * Scope: by default the endpoints act on the whole cluster. The agent asks the engine's
 * reserved key query (rumor_node_keys_query, docs/protocol.md section 13), every member applies
 * the operation to its own keyring and answers, and the answer reports how many members were
 * asked, how many confirmed, the error of each member that refused and the names of those that
 * did not answer before the deadline, and for a list each key with how many members hold it and
 * how many use it as primary (Serf's `keys` report). `?scope=local` changes this agent only,
 * as before ("scope": "local"). A member that applied a cluster operation rewrites its keyring
 * file when the engine reports RUMOR_EVENT_KEYRING_CHANGE (agent_keys_event).
 */
#include "agent.h"
#include "duration.h"
#include "keyring.h"
#include "log.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- start ---- */

/* This life's epoch: Unix milliseconds, but always above the last one this data dir used, so a
 * clock stepped back cannot make a new life look older than the last (its packets would be
 * refused as replays of an old life). Without a data dir, the clock alone. */
static int seal_epoch(agent *a, uint64_t *out, char *err, size_t cap)
{
    uv_timeval64_t tv;
    uint64_t e = 1;
    if (uv_gettimeofday(&tv) == 0 && tv.tv_sec > 0)
        e = (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
    char buf[32];
    if (a->store && store_get(a->store, "seal_epoch", buf, sizeof buf) == 1) {
        uint64_t last = strtoull(buf, NULL, 10);
        if (last >= e)
            e = last + 1;
    }
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)e);
    if (a->store && store_put(a->store, "seal_epoch", buf) != 0) {
        snprintf(err, cap, "cannot write the seal epoch to the data dir %.256s", a->cfg.data_dir);
        return -1;
    }
    *out = e;
    return 0;
}

static bool ring_has(const agent_keyring *kr, const uint8_t key[RUMOR_KEY_BYTES])
{
    bool found = false;
    for (size_t i = 0; i < kr->n; i++)
        found = found || sodium_memcmp(kr->keys[i], key, RUMOR_KEY_BYTES) == 0;
    return found;
}

/* The keys to start with: the keyring file's (created from --encrypt when missing; the
 * --encrypt key added when it lacks it), else the --encrypt key alone. */
static int initial_keys(agent *a, agent_keyring *kr, char *err, size_t cap)
{
    const agent_config *c = &a->cfg;
    memset(kr, 0, sizeof *kr);
    if (!c->keyring[0]) {
        if (c->encrypt_set)
            memcpy(kr->keys[kr->n++], c->encrypt_key, RUMOR_KEY_BYTES);
        return 0;
    }
    int rc = keyring_load(kr, c->keyring, err, cap);
    if (rc < 0)
        return -1;
    if (rc == 1 && !c->encrypt_set) {
        snprintf(err, cap,
                 "keyring file %s does not exist; start once with --encrypt KEY to create it "
                 "(make a key with: rumor keygen)",
                 c->keyring);
        return -1;
    }
    if (!c->encrypt_set || ring_has(kr, c->encrypt_key))
        return 0;
    if (kr->n == RUMOR_KEYRING_MAX) {
        snprintf(err, cap, "keyring file %s is full (%d keys); cannot add the --encrypt key",
                 c->keyring, RUMOR_KEYRING_MAX);
        return -1;
    }
    memcpy(kr->keys[kr->n++], c->encrypt_key, RUMOR_KEY_BYTES);
    if (keyring_save(kr, c->keyring, err, cap) != 0)
        return -1;
    agent_log(RUMOR_LOG_INFO, "keyring: %s the --encrypt key %s %s",
              rc == 1 ? "created with" : "added", rc == 1 ? "in" : "to", c->keyring);
    return 0;
}

int keys_setup(agent *a, rumor_settings *s, uint8_t keys[RUMOR_KEYRING_MAX][RUMOR_KEY_BYTES],
               char *err, size_t cap)
{
    agent_keyring kr;
    if (initial_keys(a, &kr, err, cap) != 0) {
        keyring_wipe(&kr);
        return -1;
    }
    if (kr.n == 0) {
        if (a->cfg.encrypt_accept_plaintext || a->cfg.encrypt_send_plaintext) {
            snprintf(err, cap,
                     "--encrypt-accept-plaintext and --encrypt-send-plaintext need "
                     "--encrypt or --keyring");
            return -1;
        }
        return 0;
    }
    if (a->cfg.encrypt_send_plaintext && !a->cfg.encrypt_accept_plaintext) {
        snprintf(err, cap,
                 "--encrypt-send-plaintext needs --encrypt-accept-plaintext (a node "
                 "that sends plaintext must accept it from its peers)");
        keyring_wipe(&kr);
        return -1;
    }
    memcpy(keys, kr.keys, kr.n * RUMOR_KEY_BYTES);
    s->keys = (const uint8_t(*)[RUMOR_KEY_BYTES])keys;
    s->nkeys = kr.n;
    keyring_wipe(&kr);
    /* From here on the engine's keyring (and the file) is the truth: no copy of the flag's key
     * stays in the configuration. */
    sodium_memzero(a->cfg.encrypt_key, sizeof a->cfg.encrypt_key);
    /* The engine never reads OS randomness itself: fresh entropy for its nonces per life. */
    randombytes_buf(s->seal_secret, sizeof s->seal_secret);
    /* Answer cluster key operations: this agent saves every change (agent_keys_event). */
    s->keys_query = true;
    s->seal_accept_plaintext = a->cfg.encrypt_accept_plaintext;
    s->seal_send_plaintext = a->cfg.encrypt_send_plaintext;
    s->seal_cipher = a->cfg.encrypt_cipher;
    if (s->seal_cipher == RUMOR_SEAL_CIPHER_AESGCM && !crypto_aead_aes256gcm_is_available()) {
        snprintf(err, cap,
                 "--encrypt-cipher aesgcm: this CPU does not run AES-256-GCM (no AES-NI); "
                 "use auto or xchacha");
        return -1;
    }
    atomic_store(&a->keyring_size, (unsigned)s->nkeys);
    agent_log(RUMOR_LOG_INFO, "encryption on: %zu key(s)%s%s%s, %s", s->nkeys,
              a->cfg.keyring[0] ? " from " : "", a->cfg.keyring,
              s->seal_accept_plaintext ? " (migrating: plaintext accepted)" : "",
              s->seal_cipher != RUMOR_SEAL_CIPHER_XCHACHA && crypto_aead_aes256gcm_is_available()
                  ? "AES-256-GCM with members that open it, else XChaCha20-Poly1305"
                  : "XChaCha20-Poly1305");
    return seal_epoch(a, &s->seal_epoch, err, cap);
}

/* ---- the endpoints ---- */

typedef enum keys_op { KEYS_LIST, KEYS_INSTALL, KEYS_USE, KEYS_REMOVE } keys_op;

typedef struct keys_call {
    agent *a;
    keys_op op;
    uint8_t key[RUMOR_KEY_BYTES];
    int rc;
    char err[512];
    json_t *result;
} keys_call;

static void ring_of(rumor_node *n, agent_keyring *kr)
{
    memset(kr, 0, sizeof *kr);
    kr->n = rumor_node_keyring_count(n);
    for (size_t i = 0; i < kr->n; i++)
        (void)rumor_node_keyring_key(n, i, kr->keys[i]);
}

/* Puts the node's keyring back as `kr` was (a file write failed after a change). */
static void ring_restore(rumor_node *n, const agent_keyring *kr)
{
    for (size_t i = 0; i < kr->n; i++)
        (void)rumor_node_keyring_install(n, kr->keys[i]);
    (void)rumor_node_keyring_use(n, kr->keys[0]);
    agent_keyring now;
    ring_of(n, &now);
    for (size_t i = 0; i < now.n; i++)
        if (!ring_has(kr, now.keys[i]))
            (void)rumor_node_keyring_remove(n, now.keys[i]);
    keyring_wipe(&now);
}

static json_t *keys_json(agent *a, rumor_node *n)
{
    agent_keyring kr;
    ring_of(n, &kr);
    json_t *keys = json_object();
    char b64[KEYRING_B64_MAX], primary[KEYRING_B64_MAX] = "";
    for (size_t i = 0; i < kr.n; i++) {
        keyring_encode(kr.keys[i], b64);
        json_object_set_new(keys, b64, json_integer(1));
        if (i == 0)
            memcpy(primary, b64, sizeof b64);
    }
    sodium_memzero(b64, sizeof b64);
    json_t *o = json_pack("{s:s,s:b,s:s?,s:o,s:i,s:i,s:i,s:b,s:o,s:o,s:s?}", "scope", "local",
                          "enabled", kr.n > 0, "primary", kr.n ? primary : NULL, "keys", keys,
                          "members", 1, "responses", 1, "confirmed", 1, "complete", 1, "errors",
                          json_object(), "no_response", json_array(), "keyring_file",
                          a->cfg.keyring[0] ? a->cfg.keyring : NULL);
    sodium_memzero(primary, sizeof primary);
    keyring_wipe(&kr);
    return o;
}

static const char *op_name(keys_op op)
{
    return op == KEYS_INSTALL ? "installed" : op == KEYS_USE ? "made primary" : "removed";
}

/* Loop thread: the change, the file, the answer. */
static void do_keys(rumor_runtime *rt, void *arg)
{
    keys_call *k = arg;
    agent *a = k->a;
    rumor_node *n = rumor_runtime_node(rt);
    agent_keyring before;
    ring_of(n, &before);
    k->rc = k->op == KEYS_INSTALL  ? rumor_node_keyring_install(n, k->key)
            : k->op == KEYS_USE    ? rumor_node_keyring_use(n, k->key)
            : k->op == KEYS_REMOVE ? rumor_node_keyring_remove(n, k->key)
                                   : RUMOR_OK;
    if (k->rc == RUMOR_OK && k->op != KEYS_LIST && a->cfg.keyring[0]) {
        agent_keyring after;
        ring_of(n, &after);
        if (keyring_save(&after, a->cfg.keyring, k->err, sizeof k->err) != 0) {
            ring_restore(n, &before);
            k->rc = 1; /* not applied: the file could not follow */
        }
        keyring_wipe(&after);
    }
    if (k->rc == RUMOR_OK && k->op != KEYS_LIST)
        agent_log(RUMOR_LOG_INFO, "keyring: key %s; %zu key(s) held", op_name(k->op),
                  rumor_node_keyring_count(n));
    atomic_store(&a->keyring_size, (unsigned)rumor_node_keyring_count(n));
    keyring_wipe(&before);
    k->result = keys_json(a, n);
}

static void keys_answer(keys_call *k, api_response *resp)
{
    switch (k->rc) {
    case RUMOR_OK:
        api_reply(resp, 200, k->result);
        k->result = NULL;
        return;
    case 1:
        api_error(resp, 500, "%s; the keyring was left unchanged", k->err);
        break;
    case RUMOR_ERR_STATE:
        if (k->op == KEYS_REMOVE && json_is_true(json_object_get(k->result, "enabled")))
            api_error(resp, 409,
                      "cannot remove the primary key; make another key primary "
                      "first (PUT /v1/keys/primary)");
        else
            api_error(resp, 409,
                      "encryption is not enabled on this agent (start it with "
                      "--encrypt KEY or --keyring FILE)");
        break;
    case RUMOR_ERR_NOT_FOUND:
        api_error(resp, 404, "that key is not installed%s",
                  k->op == KEYS_USE ? "; install it first (POST /v1/keys)" : "");
        break;
    case RUMOR_ERR_FULL:
        api_error(resp, 409, "the keyring already holds %d keys; remove one first",
                  RUMOR_KEYRING_MAX);
        break;
    case RUMOR_ERR_INVALID:
        api_error(resp, 409,
                  "this key's id collides with another installed key; generate "
                  "another key");
        break;
    default:
        api_error(resp, 500, "keyring: %s", rumor_strerror(k->rc));
        break;
    }
}

/* ---- cluster scope: the engine's key query ---- */

#define KEYQ_TIMEOUT_MIN_MS 100u
#define KEYQ_TIMEOUT_MAX_MS 300000u
#define KEYQ_WAITING_MAX    32u /* as POST /v1/query: half of the HTTP threads stay free */

typedef struct keyq_call {
    agent *a;
    keys_op op;
    uint8_t key[RUMOR_KEY_BYTES];
    uint64_t timeout_ms; /* 0: the engine's default */
    agent_query *q;
    bool enabled;
    int rc;
} keyq_call;

static rumor_keys_op engine_op(keys_op op)
{
    return op == KEYS_INSTALL  ? RUMOR_KEYS_INSTALL
           : op == KEYS_USE    ? RUMOR_KEYS_USE
           : op == KEYS_REMOVE ? RUMOR_KEYS_REMOVE
                               : RUMOR_KEYS_LIST;
}

/* Loop thread: asks the key query and tracks its answers like any query's (msg.c). */
static void do_keyq(rumor_runtime *rt, void *arg)
{
    keyq_call *k = arg;
    rumor_node *n = rumor_runtime_node(rt);
    uint64_t now = uv_now(k->a->loop), id = 0;
    k->enabled = rumor_node_keyring_count(n) > 0;
    if (k->a->leaving || k->a->stopping) {
        k->rc = RUMOR_ERR_EXPIRED;
        return;
    }
    rumor_query_params p = {.timeout_ms = (uint32_t)k->timeout_ms, .request_ack = true};
    k->rc = rumor_node_keys_query(n, engine_op(k->op), k->op == KEYS_LIST ? NULL : k->key, &p, &id,
                                  now);
    if (k->rc != RUMOR_OK)
        return;
    rumor_query_result res;
    (void)rumor_node_query_result(n, id, &res);
    k->q->id = id;
    k->q->asked_at = now;
    k->q->timeout = res.deadline_ms - now;
    k->q->early = true; /* a key operation is done once every member answered */
    /* Tracked before the runtime drains this node's own ack and answer. */
    agent_msg_track(k->a, k->q);
    agent_log(RUMOR_LOG_INFO, "keyring: cluster %s asked of %u member(s)",
              rumor_keys_op_name(engine_op(k->op)), res.matched);
}

static void count_key(json_t *obj, const uint8_t *key)
{
    char b64[KEYRING_B64_MAX];
    keyring_encode(key, b64);
    json_t *v = json_object_get(obj, b64);
    json_object_set_new(obj, b64, json_integer(v ? json_integer_value(v) + 1 : 1));
    sodium_memzero(b64, sizeof b64);
}

/* The report: counts, refusals by member, the silent, and for a list the keys. */
static json_t *keyq_json(agent *a, keys_op op, const agent_query *q)
{
    json_t *errors = json_object(), *keys = json_object(), *primaries = json_object();
    json_t *silent = json_array();
    size_t confirmed = 0;
    for (size_t i = 0; i < q->nresponses; i++) {
        const agent_answer *x = &q->responses[i];
        rumor_keys_answer ans;
        int rc = rumor_keys_answer_decode(x->payload, x->len, &ans);
        if (rc != RUMOR_OK) {
            json_object_set_new(errors, x->node,
                                json_string(rc == RUMOR_ERR_VERSION
                                                ? "an answer in a format this version does not know"
                                                : "a malformed answer"));
        } else if (ans.code != RUMOR_OK || ans.op != engine_op(op)) {
            json_object_set_new(
                errors, x->node,
                json_string(ans.code != RUMOR_OK ? ans.error : "answered another operation"));
        } else {
            confirmed++;
            for (size_t k = 0; k < ans.nkeys; k++)
                count_key(keys, ans.keys + k * RUMOR_KEY_BYTES);
            if (ans.nkeys)
                count_key(primaries, ans.keys);
        }
    }
    for (size_t i = 0; i < q->no_response.n; i++)
        json_array_append_new(silent, json_string(q->no_response.v[i]));
    /* One primary everywhere that answered: name it, as the local answer does. */
    const char *primary = NULL;
    if (json_object_size(primaries) == 1) {
        void *it = json_object_iter(primaries);
        if ((size_t)json_integer_value(json_object_iter_value(it)) == confirmed)
            primary = json_object_iter_key(it);
    }
    bool complete = json_object_size(errors) == 0 && q->no_response.n == 0 && !q->truncated &&
                    confirmed >= q->result.matched;
    json_t *o = json_pack("{s:s,s:s,s:b,s:s?,s:I,s:I,s:I,s:b,s:o,s:o,s:O,s:o,s:I,s:s?}", "scope",
                          "cluster", "op", rumor_keys_op_name(engine_op(op)), "enabled", 1,
                          "primary", primary, "members", (json_int_t)q->result.matched, "responses",
                          (json_int_t)q->nresponses, "confirmed", (json_int_t)confirmed, "complete",
                          complete, "errors", errors, "no_response", silent, "keys", keys,
                          "primaries", primaries, "timeout_ms", (json_int_t)q->timeout,
                          "keyring_file", a->cfg.keyring[0] ? a->cfg.keyring : NULL);
    json_decref(keys);
    return o;
}

static void wipe_answers(agent_query *q)
{
    for (size_t i = 0; i < q->nresponses; i++)
        if (q->responses[i].payload)
            sodium_memzero(q->responses[i].payload, q->responses[i].len);
}

static void keyq_run(agent *a, keyq_call *k, api_response *resp)
{
    k->q = calloc(1, sizeof *k->q);
    if (!k->q) {
        api_error(resp, 500, "out of memory");
        return;
    }
    if (atomic_fetch_add(&a->msg.waiting, 1) >= KEYQ_WAITING_MAX)
        api_error(resp, 429, "%u queries are already waiting here; try again when one ends",
                  KEYQ_WAITING_MAX);
    else if (rumor_runtime_call(a->rt, do_keyq, k) != 0 || k->rc == RUMOR_ERR_EXPIRED)
        api_error(resp, 503, "the agent is shutting down or leaving; nothing was sent");
    else if (k->rc == RUMOR_ERR_STATE && k->op == KEYS_LIST && !k->enabled)
        api_json(resp, 200,
                 json_pack("{s:s,s:s,s:b,s:i,s:i,s:i,s:b,s:{},s:[],s:{}}", "scope", "cluster", "op",
                           "list", "enabled", 0, "members", 0, "responses", 0, "confirmed", 0,
                           "complete", 1, "errors", "no_response", "keys"));
    else if (k->rc == RUMOR_ERR_STATE)
        api_error(resp, 409, "%s",
                  k->enabled ? "this agent sends plaintext (--encrypt-send-plaintext): a key may "
                               "only travel sealed, so cluster key operations are refused; use "
                               "?scope=local on each agent, or finish the migration first"
                             : "encryption is not enabled on this agent (start it with "
                               "--encrypt KEY or --keyring FILE)");
    else if (k->rc == RUMOR_ERR_FULL)
        api_error(resp, 429, "%u queries are running (queries_max); try again when one ends",
                  a->engine.queries_max);
    else if (k->rc != RUMOR_OK)
        api_error(resp, 500, "the key operation was not sent: %s", rumor_strerror(k->rc));
    if (k->rc == RUMOR_OK && resp->status == 0 && k->q->id != 0) {
        agent_query_wait(a, k->q);
        if (k->q->aborted)
            api_error(resp, 503, "the agent stopped before the operation's deadline");
        else
            api_json(resp, 200, keyq_json(a, k->op, k->q));
    }
    atomic_fetch_sub(&a->msg.waiting, 1);
    wipe_answers(k->q);
    agent_query_free(k->q);
}

/* ---- routing ---- */

static void keys_run(agent *a, keys_op op, const api_request *req, api_response *resp)
{
    static const char *const known[] = {"scope", "timeout", NULL};
    const char *bad = api_query_unknown(req, known), *scope = api_query(req, "scope", 0);
    const char *timeout = api_query(req, "timeout", 0);
    keyq_call k = {.a = a, .op = op};
    if (bad) {
        api_error(resp, 400, "unknown query parameter \"%.64s\" (expected scope, timeout)", bad);
        return;
    }
    if (scope && strcmp(scope, "local") != 0 && strcmp(scope, "cluster") != 0) {
        api_error(resp, 400, "scope is \"cluster\" (the default) or \"local\"");
        return;
    }
    bool local = scope && strcmp(scope, "local") == 0;
    if (timeout && (local || duration_parse_ms(timeout, KEYQ_TIMEOUT_MIN_MS, KEYQ_TIMEOUT_MAX_MS,
                                               &k.timeout_ms) != 0)) {
        api_error(resp, 400,
                  local ? "timeout applies to the cluster scope only"
                        : "timeout: expected a duration from 100ms to 300s (e.g. 5s)");
        return;
    }
    if (op != KEYS_LIST) {
        json_t *body = api_body(req, resp);
        if (!body)
            return;
        json_t *key = json_object_get(body, "key");
        int rc = !json_is_string(key) || keyring_decode(json_string_value(key), k.key) != 0;
        if (json_is_string(key))
            sodium_memzero((char *)(uintptr_t)json_string_value(key), json_string_length(key));
        json_decref(body);
        if (rc) {
            api_error(resp, 400, "expected {\"key\": \"BASE64\"} with a base64-encoded %d-byte key",
                      RUMOR_KEY_BYTES);
            return;
        }
    }
    if (local) {
        keys_call l = {.a = a, .op = op};
        memcpy(l.key, k.key, sizeof l.key);
        sodium_memzero(k.key, sizeof k.key);
        if (rumor_runtime_call(a->rt, do_keys, &l) != 0)
            api_error(resp, 503, "the agent is shutting down");
        else
            keys_answer(&l, resp);
        sodium_memzero(l.key, sizeof l.key);
        json_decref(l.result);
        return;
    }
    keyq_run(a, &k, resp);
    sodium_memzero(k.key, sizeof k.key);
}

void api_keys_list(agent *a, const api_request *req, api_response *resp)
{
    keys_run(a, KEYS_LIST, req, resp);
}

void api_keys_install(agent *a, const api_request *req, api_response *resp)
{
    keys_run(a, KEYS_INSTALL, req, resp);
}

void api_keys_use(agent *a, const api_request *req, api_response *resp)
{
    keys_run(a, KEYS_USE, req, resp);
}

void api_keys_remove(agent *a, const api_request *req, api_response *resp)
{
    keys_run(a, KEYS_REMOVE, req, resp);
}

/* ---- a cluster operation changed this node's keyring ---- */

void agent_keys_event(agent *a, rumor_node *n, const rumor_event *ev)
{
    size_t count = rumor_node_keyring_count(n);
    char err[512];
    atomic_store(&a->keyring_size, (unsigned)count);
    if (a->cfg.keyring[0]) {
        agent_keyring kr;
        ring_of(n, &kr);
        if (keyring_save(&kr, a->cfg.keyring, err, sizeof err) != 0) {
            agent_log(RUMOR_LOG_ERROR,
                      "keyring: cluster %s from %s applied, but %s: the file is behind the "
                      "running keyring until the next change succeeds; the answer says so",
                      ev->msg_name, ev->member.name, err);
            (void)rumor_node_keys_unsaved(n, err);
        }
        keyring_wipe(&kr);
    }
    agent_log(RUMOR_LOG_INFO, "keyring: cluster %s asked by %s applied; %zu key(s) held%s%s",
              ev->msg_name, ev->member.name, count, a->cfg.keyring[0] ? ", saved to " : "",
              a->cfg.keyring);
    json_t *o =
        json_pack("{s:s,s:s,s:s,s:I,s:I}", "type", "keyring-change", "op", ev->msg_name, "origin",
                  ev->member.name, "keys", (json_int_t)count, "at_ms", (json_int_t)ev->at_ms);
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (text)
        hub_push(a->hub, "keyring-change", text);
    free(text);
    json_decref(o);
}
