/*
 * `rumor agent` flags and JSON config files. Both go through the same setters, so a value is
 * checked the same way wherever it comes from, and each error names where it came from
 * ("--bind" or "config file a.json: field \"bind\"").
 */
#include "config.h"

#include "keyring.h"
#include "log.h"

#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int strv_push(strv *s, const char *text)
{
    char **v = realloc(s->v, (s->n + 1) * sizeof *v);
    if (!v)
        return -1;
    s->v = v;
    if (!(v[s->n] = strdup(text)))
        return -1;
    s->n++;
    return 0;
}

void strv_free(strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

/* ---- engine overrides ---- */

typedef struct engine_key {
    const char *name;
    size_t offset;
} engine_key;

#define EK(f)                                                                                      \
    {                                                                                              \
#f, offsetof(rumor_settings, f)                                                            \
    }
static const engine_key engine_keys[] = {
    EK(probe_interval_ms),
    EK(probe_timeout_ms),
    EK(indirect_checks),
    EK(suspicion_mult),
    EK(suspicion_max_mult),
    EK(awareness_max),
    EK(retransmit_mult),
    EK(gossip_interval_ms),
    EK(gossip_nodes),
    EK(gossip_to_dead_ms),
    EK(packet_bytes_max),
    EK(broadcast_queue_max),
    EK(pushpull_interval_ms),
    EK(reconnect_interval_ms),
    EK(reconnect_timeout_ms),
    EK(reap_failed_ms),
    EK(reap_left_ms),
    EK(stream_timeout_ms),
    EK(leave_timeout_ms),
    EK(meta_bytes_max),
    EK(members_max),
    EK(streams_max),
    EK(stream_frame_bytes_max),
    EK(kv_sync_interval_ms),
    EK(kv_value_bytes_max),
    EK(kv_keys_max),
    EK(kv_node_bytes_max),
    EK(kv_tombstone_ttl_ms),
    EK(event_bytes_max),
    EK(event_buffer),
    EK(query_bytes_max),
    EK(query_response_bytes_max),
    EK(query_buffer),
    EK(query_timeout_mult),
    EK(queries_max),
    EK(queries_inbound_max),
};
#define ENGINE_KEYS_N (sizeof engine_keys / sizeof engine_keys[0])

static int set_engine(agent_config *cfg, const char *key, long long value, const char *where,
                      char *err, size_t cap)
{
    for (size_t i = 0; i < ENGINE_KEYS_N; i++) {
        if (strcmp(engine_keys[i].name, key) != 0)
            continue;
        if (value < 0 || value > (long long)UINT32_MAX) {
            snprintf(err, cap, "%s: \"%s\" must be between 0 and %u", where, key, UINT32_MAX);
            return -1;
        }
        size_t j = 0;
        while (j < cfg->nengine && strcmp(cfg->engine[j].key, key) != 0)
            j++;
        if (j == AGENT_ENGINE_KEYS_MAX)
            return -1;
        cfg->engine[j].key = engine_keys[i].name;
        cfg->engine[j].value = (uint32_t)value;
        if (j == cfg->nengine)
            cfg->nengine++;
        return 0;
    }
    snprintf(err, cap, "%s: unknown engine setting \"%s\"", where, key);
    return -1;
}

void agent_config_apply_engine(const agent_config *cfg, rumor_settings *s)
{
    if (cfg->kv_sync_mode_set)
        s->kv_sync_mode = cfg->kv_sync_mode;
    for (size_t i = 0; i < cfg->nengine; i++) {
        for (size_t k = 0; k < ENGINE_KEYS_N; k++) {
            if (strcmp(engine_keys[k].name, cfg->engine[i].key) == 0)
                memcpy((char *)s + engine_keys[k].offset, &cfg->engine[i].value, sizeof(uint32_t));
        }
    }
}

/* ---- setters shared by flags and files ---- */

typedef int (*setter)(agent_config *cfg, const char *v, const char *where, char *err, size_t cap);

static int copy_str(char *dst, size_t dcap, const char *v, const char *where, char *err, size_t cap)
{
    if (strlen(v) >= dcap) {
        snprintf(err, cap, "%s: value is longer than %zu bytes", where, dcap - 1);
        return -1;
    }
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

static int set_node(agent_config *cfg, const char *v, const char *where, char *err, size_t cap)
{
    if (!*v) {
        snprintf(err, cap, "%s: node name must not be empty", where);
        return -1;
    }
    return copy_str(cfg->node, sizeof cfg->node, v, where, err, cap);
}

static int check_addr(const char *v, const char *where, char *err, size_t cap)
{
    rumor_addr a;
    char why[200];
    if (rumor_runtime_parse_addr(v, RUMOR_RUNTIME_DEFAULT_PORT, &a, why, sizeof why) != 0) {
        snprintf(err, cap,
                 "%s: expected a numeric ADDR:PORT (e.g. 127.0.0.1:7946 or [::1]:7946), "
                 "%s",
                 where, why);
        return -1;
    }
    return 0;
}

static int set_bind(agent_config *cfg, const char *v, const char *where, char *err, size_t cap)
{
    if (check_addr(v, where, err, cap) != 0)
        return -1;
    return copy_str(cfg->bind, sizeof cfg->bind, v, where, err, cap);
}

static int set_advertise(agent_config *cfg, const char *v, const char *where, char *err, size_t cap)
{
    if (check_addr(v, where, err, cap) != 0)
        return -1;
    return copy_str(cfg->advertise, sizeof cfg->advertise, v, where, err, cap);
}

static int set_http(agent_config *cfg, const char *v, const char *where, char *err, size_t cap)
{
    if (strcmp(v, "off") != 0 && check_addr(v, where, err, cap) != 0)
        return -1;
    return copy_str(cfg->http, sizeof cfg->http, v, where, err, cap);
}

static int check_host(const char *v, const char *where, char *err, size_t cap)
{
    char host[256], why[200];
    uint16_t port;
    if (rumor_runtime_split_hostport(v, RUMOR_RUNTIME_DEFAULT_PORT, host, sizeof host, &port, why,
                                     sizeof why) != 0) {
        snprintf(err, cap, "%s: expected HOST[:PORT], %s", where, why);
        return -1;
    }
    return 0;
}

static int set_join(agent_config *cfg, const char *v, const char *where, char *err, size_t cap)
{
    return check_host(v, where, err, cap) ? -1 : strv_push(&cfg->join, v);
}

static int set_retry_join(agent_config *cfg, const char *v, const char *where, char *err,
                          size_t cap)
{
    return check_host(v, where, err, cap) ? -1 : strv_push(&cfg->retry_join, v);
}

static int set_profile(agent_config *cfg, const char *v, const char *where, char *err, size_t cap)
{
    if (rumor_profile_parse(v, &cfg->profile) != 0) {
        snprintf(err, cap, "%s: unknown profile \"%s\" (expected lan, wan or local)", where, v);
        return -1;
    }
    return 0;
}

int agent_tag_parse(json_t *tags, const char *text, char *err, size_t errcap)
{
    const char *eq = strchr(text, '=');
    if (!eq || eq == text) {
        snprintf(err, errcap, "tag \"%s\" is not KEY=VALUE with a non-empty key", text);
        return -1;
    }
    size_t klen = (size_t)(eq - text);
    if (klen > 128) {
        snprintf(err, errcap, "tag key longer than 128 bytes");
        return -1;
    }
    char key[129];
    memcpy(key, text, klen);
    key[klen] = '\0';
    json_t *val = json_string(eq + 1);
    if (!val) {
        snprintf(err, errcap, "tag \"%s\" is not valid UTF-8", key);
        return -1;
    }
    return json_object_set_new(tags, key, val) == 0 ? 0 : -1;
}

static int set_tag(agent_config *cfg, const char *v, const char *where, char *err, size_t cap)
{
    char why[300];
    if (agent_tag_parse(cfg->tags, v, why, sizeof why) != 0) {
        snprintf(err, cap, "%s: %s", where, why);
        return -1;
    }
    return 0;
}

static int set_data_dir(agent_config *cfg, const char *v, const char *where, char *err, size_t cap)
{
    if (!*v) {
        snprintf(err, cap, "%s: must not be empty", where);
        return -1;
    }
    return copy_str(cfg->data_dir, sizeof cfg->data_dir, v, where, err, cap);
}

static int set_log_level(agent_config *cfg, const char *v, const char *where, char *err, size_t cap)
{
    if (agent_log_level_parse(v, &cfg->log_level) != 0) {
        snprintf(err, cap, "%s: unknown level \"%s\" (expected error, warn, info or debug)", where,
                 v);
        return -1;
    }
    return 0;
}

static int set_log_format(agent_config *cfg, const char *v, const char *where, char *err,
                          size_t cap)
{
    if (strcmp(v, "text") != 0 && strcmp(v, "json") != 0) {
        snprintf(err, cap, "%s: unknown format \"%s\" (expected text or json)", where, v);
        return -1;
    }
    cfg->log_json = strcmp(v, "json") == 0;
    return 0;
}

static int set_handler(agent_config *cfg, const char *v, const char *where, char *err, size_t cap)
{
    if (!*v) {
        snprintf(err, cap, "%s: empty event handler", where);
        return -1;
    }
    return strv_push(&cfg->handlers, v);
}

static int set_label(agent_config *cfg, const char *v, const char *where, char *err, size_t cap)
{
    return copy_str(cfg->cluster_label, sizeof cfg->cluster_label, v, where, err, cap);
}

static int parse_u32(const char *v, long long *out)
{
    char *end = NULL;
    if (!*v || strlen(v) > 10)
        return -1;
    *out = strtoll(v, &end, 10);
    return *end == '\0' && *out >= 0 && *out <= (long long)UINT32_MAX ? 0 : -1;
}

static int set_ca_key(agent_config *cfg, const char *v, const char *where, char *err, size_t cap)
{
    if (!*v) {
        snprintf(err, cap, "%s: must not be empty", where);
        return -1;
    }
    cfg->identity = true; /* an authority only makes sense with identities */
    return copy_str(cfg->ca_key, sizeof cfg->ca_key, v, where, err, cap);
}

static int set_ca_cert(agent_config *cfg, const char *v, const char *where, char *err, size_t cap)
{
    if (!*v) {
        snprintf(err, cap, "%s: must not be empty", where);
        return -1;
    }
    return copy_str(cfg->ca_cert, sizeof cfg->ca_cert, v, where, err, cap);
}

static int set_engine_kv(agent_config *cfg, const char *v, const char *where, char *err, size_t cap)
{
    const char *eq = strchr(v, '=');
    char key[64];
    long long num;
    if (!eq || (size_t)(eq - v) >= sizeof key || parse_u32(eq + 1, &num) != 0) {
        snprintf(err, cap, "%s: expected KEY=NUMBER, got \"%s\"", where, v);
        return -1;
    }
    memcpy(key, v, (size_t)(eq - v));
    key[eq - v] = '\0';
    return set_engine(cfg, key, num, where, err, cap);
}

static int set_handler_timeout(agent_config *cfg, const char *v, const char *where, char *err,
                               size_t cap)
{
    long long num;
    if (parse_u32(v, &num) != 0 || num == 0) {
        snprintf(err, cap, "%s: expected a positive number of milliseconds, got \"%s\"", where, v);
        return -1;
    }
    cfg->handler_timeout_ms = (uint32_t)num;
    return 0;
}

/* ---- replicated key-value settings ---- */

static int set_kv_sync_mode(agent_config *cfg, const char *v, const char *where, char *err,
                            size_t cap)
{
    if (rumor_sync_mode_parse(v, &cfg->kv_sync_mode) != 0) {
        snprintf(err, cap, "%s: unknown mode \"%s\" (expected push, pull or push-pull)", where, v);
        return -1;
    }
    cfg->kv_sync_mode_set = true;
    return 0;
}

static int set_encrypt_cipher(agent_config *cfg, const char *v, const char *where, char *err,
                              size_t cap)
{
    if (strcmp(v, "auto") == 0) {
        cfg->encrypt_cipher = RUMOR_SEAL_CIPHER_AUTO;
    } else if (strcmp(v, "xchacha") == 0) {
        cfg->encrypt_cipher = RUMOR_SEAL_CIPHER_XCHACHA;
    } else if (strcmp(v, "aesgcm") == 0) {
        cfg->encrypt_cipher = RUMOR_SEAL_CIPHER_AESGCM;
    } else {
        snprintf(err, cap, "%s: unknown cipher \"%s\" (expected auto, xchacha or aesgcm)", where,
                 v);
        return -1;
    }
    return 0;
}

/* A number for engine field `key` within [min, max]. */
static int set_kv_number(agent_config *cfg, const char *v, const char *key, long long min,
                         long long max, const char *unit, const char *where, char *err, size_t cap)
{
    long long num;
    if (parse_u32(v, &num) != 0 || num < min || num > max) {
        snprintf(err, cap, "%s: expected %s from %lld to %lld, got \"%s\"", where, unit, min, max,
                 v);
        return -1;
    }
    return set_engine(cfg, key, num, where, err, cap);
}

static int set_kv_sync_interval(agent_config *cfg, const char *v, const char *where, char *err,
                                size_t cap)
{
    return set_kv_number(cfg, v, "kv_sync_interval_ms", 0, 3600000, "milliseconds (0 = off)", where,
                         err, cap);
}

static int set_kv_value_max(agent_config *cfg, const char *v, const char *where, char *err,
                            size_t cap)
{
    /* Values too big for a datagram travel over streams; the frame size may still change, so
     * the value is checked against it once every flag is in (check_engine). */
    return set_kv_number(cfg, v, "kv_value_bytes_max", 0, RUMOR_KV_VALUE_MAX, "bytes", where, err,
                         cap);
}

static int set_kv_keys_max(agent_config *cfg, const char *v, const char *where, char *err,
                           size_t cap)
{
    return set_kv_number(cfg, v, "kv_keys_max", 1, 10000000, "a number of keys", where, err, cap);
}

static int set_kv_tombstone_ttl(agent_config *cfg, const char *v, const char *where, char *err,
                                size_t cap)
{
    return set_kv_number(cfg, v, "kv_tombstone_ttl_ms", 1000, UINT32_MAX, "milliseconds", where,
                         err, cap);
}

/* Whether the engine takes these settings (with a stand-in identity, and stand-in keys when
 * the node signs or seals: signatures and the sealed envelope take room in a stream frame). */
static bool engine_accepts(const agent_config *cfg, const rumor_settings *s)
{
    static const uint8_t stand_in[1][RUMOR_KEY_BYTES] = {{1}};
    rumor_settings t = *s;
    rumor_node *n = NULL;
    uint8_t ip[4] = {127, 0, 0, 1};
    t.name = "settings-check";
    (void)rumor_addr_from_ip(&t.addr, 4, ip, RUMOR_RUNTIME_DEFAULT_PORT);
    if (cfg->identity) {
        t.identity = true;
        memset(t.identity_seed, 1, sizeof(t.identity_seed));
    }
    if (cfg->encrypt_set || cfg->keyring[0]) {
        t.keys = stand_in;
        t.nkeys = 1;
        memset(t.seal_secret, 1, sizeof(t.seal_secret));
        t.seal_epoch = 1;
    }
    int rc = rumor_node_new(&n, &t, 0);
    rumor_node_del(n);
    return rc == RUMOR_OK;
}

/*
 * Checks, once every flag and file is in, the one limit that depends on others: the largest
 * value must fit one stream frame with its message, its signatures (--identity) and the sealed
 * envelope (--encrypt); values larger than a datagram travel over streams. The engine is the
 * judge, so the bound is found by asking it rather than by repeating its formula here.
 */
static int check_engine(const agent_config *cfg, char *err, size_t cap)
{
    rumor_settings s;
    rumor_settings_default(&s, cfg->profile);
    agent_config_apply_engine(cfg, &s);
    if (engine_accepts(cfg, &s))
        return 0;
    uint32_t want = s.kv_value_bytes_max, lo = 0, hi = want;
    s.kv_value_bytes_max = 0;
    if (!engine_accepts(cfg, &s)) {
        snprintf(err, cap, "the engine refuses this combination of --engine values");
        return -1;
    }
    while (lo + 1 < hi) { /* lo is accepted, hi refused */
        s.kv_value_bytes_max = lo + (hi - lo) / 2;
        if (engine_accepts(cfg, &s))
            lo = s.kv_value_bytes_max;
        else
            hi = s.kv_value_bytes_max;
    }
    snprintf(err, cap,
             "kv_value_bytes_max %u (--kv-value-max) is more than these settings allow: at most "
             "%u with stream_frame_bytes_max %u%s%s",
             want, lo, s.stream_frame_bytes_max, cfg->identity ? ", identities" : "",
             cfg->encrypt_set || cfg->keyring[0] ? ", encryption" : "");
    return -1;
}

static int set_encrypt(agent_config *cfg, const char *v, const char *where, char *err, size_t cap)
{
    if (keyring_decode(v, cfg->encrypt_key) != 0) {
        snprintf(err, cap,
                 "%s: expected a base64-encoded %d-byte key (make one with: rumor keygen)", where,
                 RUMOR_KEY_BYTES);
        return -1;
    }
    cfg->encrypt_set = true;
    return 0;
}

static int set_keyring(agent_config *cfg, const char *v, const char *where, char *err, size_t cap)
{
    if (!*v) {
        snprintf(err, cap, "%s: must not be empty", where);
        return -1;
    }
    return copy_str(cfg->keyring, sizeof cfg->keyring, v, where, err, cap);
}

static int set_accept_plain(agent_config *cfg, const char *v, const char *where, char *err,
                            size_t cap)
{
    (void)where;
    (void)err;
    (void)cap;
    cfg->encrypt_accept_plaintext = strcmp(v, "false") != 0;
    return 0;
}

static int set_send_plain(agent_config *cfg, const char *v, const char *where, char *err,
                          size_t cap)
{
    (void)where;
    (void)err;
    (void)cap;
    cfg->encrypt_send_plaintext = strcmp(v, "false") != 0;
    return 0;
}

/* ---- the option table ---- */

typedef enum { OPT_VALUE, OPT_NUMBER, OPT_BOOL, OPT_LIST, OPT_MAP } opt_kind;

typedef struct option {
    const char *flag; /* without "--" */
    const char *key;  /* config file field */
    opt_kind kind;
    setter set;
    const char *arg;
    const char *help;
} option;

static int flag_true(agent_config *cfg, const char *v, const char *where, char *err, size_t cap);
static int flag_identity(agent_config *cfg, const char *v, const char *where, char *err,
                         size_t cap);

static const option options[] = {
    {"node", "node", OPT_VALUE, set_node, "NAME",
     "node name (default: the stored one, else the host name)"},
    {"bind", "bind", OPT_VALUE, set_bind, "ADDR:PORT",
     "gossip address, UDP and TCP (default " AGENT_DEFAULT_BIND ")"},
    {"advertise", "advertise", OPT_VALUE, set_advertise, "ADDR:PORT",
     "address other members reach this node at"},
    {"join", "join", OPT_LIST, set_join, "HOST[:PORT]",
     "join through this member at start (repeatable)"},
    {"retry-join", "retry_join", OPT_LIST, set_retry_join, "HOST[:PORT]",
     "like --join, retried with backoff until it works"},
    {"profile", "profile", OPT_VALUE, set_profile, "lan|wan|local", "timing profile (default lan)"},
    {"tag", "tags", OPT_MAP, set_tag, "K=V", "a tag of this node (repeatable)"},
    {"data-dir", "data_dir", OPT_VALUE, set_data_dir, "DIR",
     "keep identity and members here (SQLite) to rejoin after a restart"},
    {"http", "http", OPT_VALUE, set_http, "ADDR:PORT",
     "HTTP API address (default " AGENT_DEFAULT_HTTP "; \"off\" disables it)"},
    {"log-level", "log_level", OPT_VALUE, set_log_level, "LEVEL",
     "error, warn, info (default) or debug"},
    {"log-format", "log_format", OPT_VALUE, set_log_format, "text|json",
     "log line format (default text)"},
    {"event-handler", "event_handlers", OPT_LIST, set_handler, "[FILTER=]SCRIPT",
     "run SCRIPT on events (repeatable); FILTER: member-join,user:NAME,query:NAME,..."},
    {"cluster-label", "cluster_label", OPT_VALUE, set_label, "LABEL",
     "only talk to nodes with the same label"},
    {"tcp-only", "tcp_only", OPT_BOOL, flag_true, "",
     "carry gossip over TCP only (networks that block UDP)"},
    {"identity", "identity", OPT_BOOL, flag_identity, "",
     "sign this node's claims with the key pair in --data-dir and check every member's"},
    {"ca-key", "ca_key", OPT_VALUE, set_ca_key, "KEY|FILE",
     "admit only nodes certified by this authority (ed25519:... or ca.pub; implies --identity)"},
    {"ca-cert", "ca_cert", OPT_VALUE, set_ca_cert, "FILE",
     "this node's certificate from the authority (rumor ca sign)"},
    {"engine", "engine", OPT_MAP, set_engine_kv, "KEY=N",
     "override an engine setting, e.g. probe_interval_ms=500"},
    {"handler-timeout", "event_handler_timeout_ms", OPT_NUMBER, set_handler_timeout, "MS",
     "kill an event handler after this long (default 10000)"},
    {"kv-sync-mode", "kv_sync_mode", OPT_VALUE, set_kv_sync_mode, "push|pull|push-pull",
     "how replicas reconcile key-value state (default push-pull)"},
    {"kv-sync-interval", "kv_sync_interval_ms", OPT_NUMBER, set_kv_sync_interval, "MS",
     "key-value anti-entropy round period, 0 = off (lan 1000, local 500)"},
    {"kv-value-max", "kv_value_bytes_max", OPT_NUMBER, set_kv_value_max, "BYTES",
     "largest key-value value, up to 1048576 (default 512; larger than a datagram: over streams)"},
    {"kv-keys-max", "kv_keys_max", OPT_NUMBER, set_kv_keys_max, "N",
     "keys per node, its shared-keyspace writes included (default 1024)"},
    {"kv-tombstone-ttl", "kv_tombstone_ttl_ms", OPT_NUMBER, set_kv_tombstone_ttl, "MS",
     "remember a delete this long before collecting it (default 86400000)"},
    {"encrypt", "encrypt", OPT_VALUE, set_encrypt, "KEY",
     "encrypt gossip with this base64 32-byte key (make one: rumor keygen)"},
    {"keyring", "keyring", OPT_VALUE, set_keyring, "FILE",
     "keyring file, a JSON list of base64 keys, primary first; kept up to date, mode 0600"},
    {"encrypt-accept-plaintext", "encrypt_accept_plaintext", OPT_BOOL, set_accept_plain, "",
     "while migrating to encryption: also accept unencrypted packets"},
    {"encrypt-send-plaintext", "encrypt_send_plaintext", OPT_BOOL, set_send_plain, "",
     "while migrating: send unencrypted (needs --encrypt-accept-plaintext)"},
    {"encrypt-cipher", "encrypt_cipher", OPT_VALUE, set_encrypt_cipher, "auto|xchacha|aesgcm",
     "AES-256-GCM to members that open it where the CPU has AES-NI, else XChaCha20-Poly1305 "
     "(default auto; aesgcm: refuse to start without AES-NI)"},
};
#define OPTIONS_N (sizeof options / sizeof options[0])

static int flag_true(agent_config *cfg, const char *v, const char *where, char *err, size_t cap)
{
    (void)where;
    (void)err;
    (void)cap;
    cfg->tcp_only = strcmp(v, "false") != 0;
    return 0;
}

static int flag_identity(agent_config *cfg, const char *v, const char *where, char *err, size_t cap)
{
    (void)where;
    (void)err;
    (void)cap;
    cfg->identity = strcmp(v, "false") != 0;
    return 0;
}

void agent_config_usage(FILE *out)
{
    char left[48];
    fprintf(out, "Usage: rumor agent [flags]\n\nRuns a rumor agent: joins a gossip cluster, "
                 "serves the HTTP API and keeps its state in --data-dir.\n\nFlags:\n");
    fprintf(out, "  %-30s %s\n", "--config FILE", "load a JSON config file (repeatable)");
    for (size_t i = 0; i < OPTIONS_N; i++) {
        snprintf(left, sizeof left, "--%s %s", options[i].flag, options[i].arg);
        fprintf(out, "  %-30s %s\n", left, options[i].help);
    }
    fprintf(out, "  %-30s %s\n  %-30s %s\n", "--no-rejoin",
            "do not rejoin through the members remembered in --data-dir", "--help", "this text");
    fprintf(out, "\nFlags and files apply in order: later values win, repeatable ones add up.\n"
                 "Config file fields:");
    for (size_t i = 0; i < OPTIONS_N; i++)
        fprintf(out, "%s \"%s\"", i ? "," : "", options[i].key);
    fprintf(out, ", \"rejoin\".\nExample: {\"node\": \"web1\", \"retry_join\": "
                 "[\"10.0.0.5\"], \"tags\": {\"role\": \"web\"}, \"engine\": "
                 "{\"probe_interval_ms\": 500}}\n"
                 "Signals: SIGINT/SIGTERM leave gracefully, then exit (a second one: at once); "
                 "SIGHUP reloads the log level and tags.\n");
}

/* ---- config files ---- */

static int json_scalar_text(json_t *v, char *buf, size_t cap)
{
    if (json_is_string(v))
        snprintf(buf, cap, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, cap, "%s", json_is_true(v) ? "true" : "false");
    else
        return -1;
    return 0;
}

static int load_map(agent_config *cfg, const option *o, json_t *v, const char *where, char *err,
                    size_t cap)
{
    if (!json_is_object(v)) {
        snprintf(err, cap, "%s: expected an object", where);
        return -1;
    }
    const char *k;
    json_t *item;
    json_object_foreach(v, k, item)
    {
        char val[1024], kv[1200];
        bool number_only = o->set == set_engine_kv;
        if ((number_only && !json_is_integer(item)) || (!number_only && !json_is_string(item)) ||
            json_scalar_text(item, val, sizeof val) != 0) {
            snprintf(err, cap, "%s: \"%s\" must be a %s", where, k,
                     number_only ? "non-negative integer" : "string");
            return -1;
        }
        snprintf(kv, sizeof kv, "%s=%s", k, val);
        if (o->set(cfg, kv, where, err, cap) != 0)
            return -1;
    }
    return 0;
}

static int load_field(agent_config *cfg, const option *o, json_t *v, const char *where, char *err,
                      size_t cap)
{
    char buf[PATH_MAX];
    if (o->kind == OPT_MAP)
        return load_map(cfg, o, v, where, err, cap);
    if (o->kind == OPT_LIST) {
        if (!json_is_array(v)) {
            snprintf(err, cap, "%s: expected an array of strings", where);
            return -1;
        }
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            if (!json_is_string(item)) {
                snprintf(err, cap, "%s: element %zu is not a string", where, i);
                return -1;
            }
            if (o->set(cfg, json_string_value(item), where, err, cap) != 0)
                return -1;
        }
        return 0;
    }
    if (o->kind == OPT_BOOL && !json_is_boolean(v)) {
        snprintf(err, cap, "%s: expected true or false", where);
        return -1;
    }
    bool numeric = o->kind == OPT_NUMBER;
    if ((o->kind == OPT_VALUE && !json_is_string(v)) || (numeric && !json_is_integer(v)) ||
        json_scalar_text(v, buf, sizeof buf) != 0) {
        snprintf(err, cap, "%s: expected a %s", where, numeric ? "number" : "string");
        return -1;
    }
    return o->set(cfg, buf, where, err, cap);
}

static int load_file(agent_config *cfg, const char *path, char *err, size_t cap)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, cap, "config file %s: line %d, column %d: %s", path, jerr.line, jerr.column,
                 jerr.text);
        return -1;
    }
    int rc = 0;
    if (!json_is_object(root)) {
        snprintf(err, cap, "config file %s: the top level must be a JSON object", path);
        rc = -1;
    } else if (json_object_get(root, "encrypt") &&
               keyring_check_mode(path, "config file", err, cap) != 0) {
        rc = -1; /* it holds a key: the same rule as a keyring file */
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (rc != 0)
            break;
        char where[PATH_MAX + 80];
        snprintf(where, sizeof where, "config file %s: field \"%s\"", path, key);
        size_t i = 0;
        while (i < OPTIONS_N && strcmp(options[i].key, key) != 0)
            i++;
        if (strcmp(key, "rejoin") == 0) {
            if (!json_is_boolean(v)) {
                snprintf(err, cap, "%s: expected true or false", where);
                rc = -1;
            }
            cfg->rejoin = json_is_true(v);
        } else if (i == OPTIONS_N) {
            snprintf(err, cap, "%s: unknown field", where);
            rc = -1;
        } else {
            rc = load_field(cfg, &options[i], v, where, err, cap);
        }
    }
    json_t *secret = json_object_get(root, "encrypt");
    if (json_is_string(secret))
        sodium_memzero((char *)(uintptr_t)json_string_value(secret), json_string_length(secret));
    json_decref(root);
    return rc;
}

/* ---- flags ---- */

static void config_defaults(agent_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->bind, sizeof cfg->bind, "%s", AGENT_DEFAULT_BIND);
    snprintf(cfg->http, sizeof cfg->http, "%s", AGENT_DEFAULT_HTTP);
    cfg->profile = RUMOR_PROFILE_LAN;
    cfg->tags = json_object();
    cfg->log_level = RUMOR_LOG_INFO;
    cfg->rejoin = true;
    cfg->handler_timeout_ms = 10000;
}

static const option *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < OPTIONS_N; i++)
        if (strlen(options[i].flag) == len && strncmp(options[i].flag, name, len) == 0)
            return &options[i];
    return NULL;
}

/* Handles argv[*i]; advances *i past a separate value. Returns 0, 1 (help) or -1. */
static int parse_one(agent_config *cfg, int argc, char **argv, int *i, char *err, size_t cap)
{
    const char *arg = argv[*i];
    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
        return 1;
    if (strncmp(arg, "--", 2) != 0) {
        snprintf(err, cap, "unexpected argument \"%s\" (flags start with --; see --help)", arg);
        return -1;
    }
    const char *name = arg + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    if (len == 9 && strncmp(name, "no-rejoin", 9) == 0) {
        cfg->rejoin = false;
        return 0;
    }
    const option *o = find_flag(name, len);
    bool is_config = len == 6 && strncmp(name, "config", 6) == 0;
    if (!o && !is_config) {
        snprintf(err, cap, "unknown flag \"%.*s\" (see rumor agent --help)", (int)len + 2, arg);
        return -1;
    }
    const char *value = eq ? eq + 1 : NULL;
    if (!value && o && o->kind == OPT_BOOL)
        value = "true";
    if (!value) {
        if (*i + 1 >= argc) {
            snprintf(err, cap, "flag --%s needs a value", is_config ? "config" : o->flag);
            return -1;
        }
        value = argv[++*i];
    }
    if (is_config) {
        if (strv_push(&cfg->config_files, value) != 0)
            return -1;
        return load_file(cfg, value, err, cap);
    }
    char where[64];
    snprintf(where, sizeof where, "--%s", o->flag);
    return o->set(cfg, value, where, err, cap);
}

void agent_config_host_name(char *out, size_t cap)
{
    char host[256];
    size_t len = sizeof host;
    if (uv_os_gethostname(host, &len) != 0)
        snprintf(host, sizeof host, "rumor-%d", (int)getpid());
    snprintf(out, cap, "%s", host);
}

int agent_config_parse(agent_config *cfg, int argc, char **argv, char *err, size_t errcap)
{
    config_defaults(cfg);
    if (!cfg->tags) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    for (int i = 0; i < argc; i++) {
        int rc = parse_one(cfg, argc, argv, &i, err, errcap);
        if (rc != 0)
            return rc;
    }
    return check_engine(cfg, err, errcap);
}

void agent_config_free(agent_config *cfg)
{
    strv_free(&cfg->join);
    strv_free(&cfg->retry_join);
    strv_free(&cfg->handlers);
    strv_free(&cfg->config_files);
    json_decref(cfg->tags);
    cfg->tags = NULL;
    sodium_memzero(cfg->encrypt_key, sizeof cfg->encrypt_key);
}
