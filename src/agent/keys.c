/*
 * The agent's keyring: where its keys come from at start (--encrypt, --keyring), the seal
 * epoch and entropy the engine needs, and the /v1/keys endpoints that list, install, promote
 * and remove keys at run time, keeping the keyring file in step.
 *
 * Scope: the endpoints change this agent only, and say so ("scope": "local"). Their answers
 * already have the shape of a cluster-wide operation (how many members were asked, how many
 * answered, errors by member, and for each key how many members hold it, as Serf's `keys`
 * reports) so that the same endpoints can fan out through the query mechanism once it exists,
 * with per-member confirmation, without changing what clients read.
 */
#include "agent.h"
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
    json_t *o = json_pack("{s:s,s:b,s:s?,s:o,s:i,s:i,s:o,s:s?}", "scope", "local", "enabled",
                          kr.n > 0, "primary", kr.n ? primary : NULL, "keys", keys, "members", 1,
                          "responses", 1, "errors", json_object(), "keyring_file",
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

static void keys_run(agent *a, keys_op op, const api_request *req, api_response *resp)
{
    keys_call k = {.a = a, .op = op};
    if (op != KEYS_LIST) {
        json_t *body = api_body(req, resp);
        if (!body)
            return;
        json_t *key = json_object_get(body, "key");
        int bad = !json_is_string(key) || keyring_decode(json_string_value(key), k.key) != 0;
        if (json_is_string(key))
            sodium_memzero((char *)(uintptr_t)json_string_value(key), json_string_length(key));
        json_decref(body);
        if (bad) {
            api_error(resp, 400, "expected {\"key\": \"BASE64\"} with a base64-encoded %d-byte key",
                      RUMOR_KEY_BYTES);
            return;
        }
    }
    int rc = rumor_runtime_call(a->rt, do_keys, &k);
    sodium_memzero(k.key, sizeof k.key);
    if (rc != 0)
        api_error(resp, 503, "the agent is shutting down");
    else
        keys_answer(&k, resp);
    json_decref(k.result);
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
