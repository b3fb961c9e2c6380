/* The agent's life: identity from the data dir, the runtime, joins, signals, shutdown. */
#include "agent.h"

#include "log.h"

#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PERSIST_DELAY_MS 500u
#define REJOIN_ADDRS_MAX 32u
#define IDENT_LOG_MS     5000u /* refusals are summed into one log line this often */

static void agent_shutdown(agent *a);

/* ---- tags ---- */

static char *tags_encode(json_t *tags)
{
    return json_dumps(tags, JSON_COMPACT | JSON_SORT_KEYS);
}

int agent_update_tags(agent *a, json_t *set, json_t *del, char *err, size_t cap)
{
    json_t *next = json_deep_copy(a->tags);
    const char *k;
    json_t *v;
    size_t i;
    if (!next) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    json_object_foreach(set, k, v) json_object_set(next, k, v);
    json_array_foreach(del, i, v) json_object_del(next, json_string_value(v));
    if (json_equal(next, a->tags)) { /* nothing changes: no new incarnation, no broadcast */
        json_decref(next);
        return 0;
    }
    char *text = tags_encode(next);
    int rc = text ? rumor_node_set_meta(rumor_runtime_node(a->rt), (const uint8_t *)text,
                                        strlen(text), uv_now(a->loop))
                  : RUMOR_ERR_NOMEM;
    if (rc == RUMOR_ERR_TOO_BIG)
        snprintf(err, cap, "tags take %zu bytes encoded as JSON, more than the limit (%u)",
                 text ? strlen(text) : 0, RUMOR_META_MAX);
    else if (rc != 0)
        snprintf(err, cap, "cannot set tags: %s", rumor_strerror(rc));
    else if (a->store && store_put(a->store, "tags", text) != 0) {
        snprintf(err, cap, "tags are set but could not be saved in the data dir");
        rc = -1;
    }
    free(text);
    if (rc != 0) {
        json_decref(next);
        return -1;
    }
    json_decref(a->tags);
    a->tags = next;
    rumor_runtime_pump(a->rt);
    return 0;
}

/* ---- persistence ---- */

static void persist_members(agent *a)
{
    if (!a->store || !a->members_dirty)
        return;
    rumor_runtime_member *m;
    size_t n;
    if (rumor_runtime_members(a->rt, &m, &n) != 0)
        return;
    if (store_save_members(a->store, m, n) == 0)
        a->members_dirty = false;
    rumor_runtime_members_free(m, n);
}

static void persist_cb(uv_timer_t *t)
{
    persist_members(t->data);
}

static void on_incarnation(rumor_runtime *rt, uint32_t inc, void *ud)
{
    (void)rt;
    agent *a = ud;
    char text[16];
    a->incarnation = inc;
    snprintf(text, sizeof text, "%u", inc);
    /* The runtime calls this before the new number leaves in a datagram: a restart always
     * starts above anything the cluster has seen. */
    if (a->store)
        (void)store_put(a->store, "incarnation", text);
}

/* ---- events ---- */

static void publish(agent *a, const rumor_event *ev)
{
    rumor_runtime_member m = {.addr = ev->member.addr,
                              .incarnation = ev->member.incarnation,
                              .state = ev->member.state,
                              .meta = (uint8_t *)(uintptr_t)ev->member.meta,
                              .meta_len = ev->member.meta_len,
                              .is_self = ev->member.is_self};
    snprintf(m.name, sizeof m.name, "%s", ev->member.name);
    json_t *o =
        json_pack("{s:s,s:o,s:I,s:s}", "type", rumor_event_type_name(ev->type), "member",
                  agent_member_json(&m), "at_ms", (json_int_t)ev->at_ms, "accuser", ev->accuser);
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (text)
        hub_push(a->hub, rumor_event_type_name(ev->type), text);
    free(text);
    json_decref(o);
}

static void on_event(rumor_runtime *rt, const rumor_event *ev, void *ud)
{
    agent *a = ud;
    char addr[64];
    a->events_total++;
    if (ev->type == RUMOR_EVENT_KV_CHANGE) { /* data, not membership: its own path */
        agent_kv_event(a, ev);
        return;
    }
    if (ev->type == RUMOR_EVENT_KEYRING_CHANGE) { /* a cluster key operation: save the file */
        agent_keys_event(a, rumor_runtime_node(rt), ev);
        return;
    }
    if (ev->type >= RUMOR_EVENT_USER && ev->type <= RUMOR_EVENT_QUERY_DONE) {
        agent_msg_event(a, ev); /* user events and queries: nothing to save */
        return;
    }
    rumor_addr_format(&ev->member.addr, addr, sizeof addr);
    agent_log(ev->type == RUMOR_EVENT_MEMBER_UPDATE ? RUMOR_LOG_DEBUG : RUMOR_LOG_INFO,
              "event %s: %s (%s) incarnation %u%s%s", rumor_event_type_name(ev->type),
              ev->member.name, addr, ev->member.incarnation, ev->accuser[0] ? " by " : "",
              ev->accuser);
    publish(a, ev);
    handlers_event(a->handlers, ev);
    if (a->store && !a->members_dirty && !a->stopping) {
        a->members_dirty = true;
        uv_timer_start(&a->persist_timer, persist_cb, PERSIST_DELAY_MS, 0);
    }
    if (ev->type == RUMOR_EVENT_LEAVE_DONE && a->leaving) {
        agent_log(RUMOR_LOG_INFO, "left the cluster; shutting down");
        agent_shutdown(a);
    }
}

/* Whatever changed this node's own key-value entries (an API write, an entry adopted from a
 * peer, one the engine wrote itself), it is saved before any datagram can carry it. */
static void on_before_send(rumor_runtime *rt, void *ud)
{
    (void)rt;
    agent_kv_before_send(ud);
}

static void on_log(rumor_runtime *rt, rumor_log_level level, const char *msg, void *ud)
{
    (void)rt;
    (void)ud;
    agent_log(level, "%s", msg);
}

/* ---- leave, shutdown, signals ---- */

static void leave_timeout_cb(uv_timer_t *t)
{
    agent *a = t->data;
    agent_log(RUMOR_LOG_WARN, "leave did not finish in time; shutting down anyway");
    agent_shutdown(a);
}

void agent_leave_and_exit(agent *a)
{
    if (a->leaving || a->stopping)
        return;
    a->leaving = true;
    agent_log(RUMOR_LOG_INFO, "leaving the cluster gracefully");
    int rc = rumor_runtime_leave(a->rt);
    if (rc != 0) {
        agent_log(RUMOR_LOG_WARN, "leave: %s", rumor_strerror(rc));
        agent_shutdown(a);
        return;
    }
    rumor_settings s;
    rumor_settings_default(&s, a->cfg.profile);
    agent_config_apply_engine(&a->cfg, &s);
    uv_timer_start(&a->leave_timer, leave_timeout_cb, (uint64_t)s.leave_timeout_ms + 2000u, 0);
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void agent_shutdown(agent *a)
{
    if (a->stopping)
        return;
    a->stopping = true;
    hub_close(a->hub);
    hub_close(a->kvhub);
    agent_msg_close(a); /* before calls are refused: HTTP threads waiting on queries wake */
    rumor_runtime_refuse_calls(a->rt); /* HTTP threads waiting on the loop get a 503 */
    http_stop(a);
    handlers_close(a->handlers);
    a->members_dirty = true;
    persist_members(a);
    char err[256];
    if (agent_kv_save(a, err, sizeof err) != 0)
        agent_log(RUMOR_LOG_ERROR, "%s", err);
    store_close(a->store);
    a->store = NULL;
    close_handle((uv_handle_t *)&a->sig_int);
    close_handle((uv_handle_t *)&a->sig_term);
    close_handle((uv_handle_t *)&a->sig_hup);
    close_handle((uv_handle_t *)&a->persist_timer);
    close_handle((uv_handle_t *)&a->leave_timer);
    close_handle((uv_handle_t *)&a->ident_timer);
    rumor_runtime_close(a->rt, NULL, NULL);
}

static void reload(agent *a)
{
    agent_config next;
    char err[512];
    int rc = agent_config_parse(&next, a->argc, a->argv, err, sizeof err);
    if (rc != 0) {
        agent_log(RUMOR_LOG_ERROR, "reload: %s; keeping the running configuration",
                  rc > 0 ? "unexpected --help" : err);
        if (rc > 0)
            agent_config_free(&next);
        return;
    }
    agent_log_set_level(next.log_level);
    a->cfg.log_level = next.log_level;
    if (json_object_size(next.tags) > 0 &&
        agent_update_tags(a, next.tags, NULL, err, sizeof err) != 0)
        agent_log(RUMOR_LOG_ERROR, "reload: %s", err);
    agent_log(RUMOR_LOG_INFO, "reloaded: log level %s, %zu tag(s) from the configuration",
              agent_log_level_name(next.log_level), json_object_size(next.tags));
    agent_config_free(&next);
}

static void signal_cb(uv_signal_t *h, int signum)
{
    agent *a = h->data;
    if (signum == SIGHUP) {
        reload(a);
        return;
    }
    if (a->stopping) {
        agent_log(RUMOR_LOG_WARN, "second signal: exiting now");
        _exit(1);
    }
    if (a->leaving) {
        agent_log(RUMOR_LOG_WARN, "second signal: stopping without waiting for the leave");
        agent_shutdown(a);
        return;
    }
    agent_log(RUMOR_LOG_INFO, "%s received", signum == SIGINT ? "SIGINT" : "SIGTERM");
    agent_leave_and_exit(a);
}

static void start_signals(agent *a)
{
    uv_signal_t *hs[] = {&a->sig_int, &a->sig_term, &a->sig_hup};
    int nums[] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(a->loop, hs[i]);
        hs[i]->data = a;
        uv_signal_start(hs[i], signal_cb, nums[i]);
    }
}

/* ---- start ---- */

/* Identity from the data dir: the stored name wins over the host name, conflicts with --node
 * are refused, and the incarnation restarts above the last one written. */
static int load_identity(agent *a, uint32_t *incarnation, char *err, size_t cap)
{
    char stored[RUMOR_NAME_MAX + 1] = "", inc[32] = "";
    *incarnation = 0;
    if (a->store && store_get(a->store, "node_name", stored, sizeof stored) == 1) {
        if (a->cfg.node[0] && strcmp(a->cfg.node, stored) != 0) {
            snprintf(err, cap,
                     "data dir %.256s belongs to node \"%s\", not \"%s\"; pass --node %s or "
                     "use another --data-dir",
                     a->cfg.data_dir, stored, a->cfg.node, stored);
            return -1;
        }
        snprintf(a->node, sizeof a->node, "%s", stored);
    } else if (a->cfg.node[0]) {
        snprintf(a->node, sizeof a->node, "%s", a->cfg.node);
    } else {
        agent_config_host_name(a->node, sizeof a->node);
    }
    if (a->store && store_get(a->store, "incarnation", inc, sizeof inc) == 1)
        *incarnation = (uint32_t)strtoul(inc, NULL, 10) + 1u;
    snprintf(inc, sizeof inc, "%u", *incarnation);
    if (a->store && (store_put(a->store, "node_name", a->node) != 0 ||
                     store_put(a->store, "incarnation", inc) != 0)) {
        snprintf(err, cap, "cannot write to the data dir %.256s", a->cfg.data_dir);
        return -1;
    }
    return 0;
}

/* ---- per-node identity ---- */

void agent_fingerprint(const uint8_t *pk, char out[24])
{
    if (rumor_identity_fingerprint(pk, out, 24) == 0)
        out[0] = '\0';
}

/* The certificate must be this node's: its name, its key, the configured authority, a valid
 * signature and not expired. */
static int check_cert(agent *a, char *err, size_t cap)
{
    const keys_cert *c = &a->cert;
    const char *path = a->cfg.ca_cert;
    if (strcmp(c->name, a->node) != 0) {
        snprintf(err, cap, "certificate %.200s is for node \"%s\", not \"%s\"", path, c->name,
                 a->node);
        return -1;
    }
    if (memcmp(c->public_key, a->public_key, sizeof c->public_key) != 0) {
        snprintf(err, cap,
                 "certificate %.200s certifies another key than this node's (%.200s/%s); sign this "
                 "node's public key (rumor identity --data-dir %.200s)",
                 path, a->cfg.data_dir, KEYS_NODE_PUBLIC, a->cfg.data_dir);
        return -1;
    }
    if (memcmp(c->authority, a->ca_key, sizeof c->authority) != 0 ||
        rumor_identity_cert_verify(a->ca_key, c->name, c->public_key, c->expires_ms,
                                   c->signature) != 0) {
        snprintf(err, cap, "certificate %.200s is not signed by the authority of --ca-key", path);
        return -1;
    }
    if (c->expires_ms && c->expires_ms <= keys_unix_ms()) {
        snprintf(err, cap,
                 "certificate %.200s expired (expires_ms %llu); ask the authority for a "
                 "new one",
                 path, (unsigned long long)c->expires_ms);
        return -1;
    }
    return 0;
}

/*
 * The node's key pair lives in the data dir and is created on the first start (mode 0600); a
 * key file others may read is refused. Identities are used (claims signed and checked) with
 * --identity or --ca-key. `seed` receives the secret for the engine.
 */
static int load_keys(agent *a, uint8_t *seed, char *err, size_t cap)
{
    const agent_config *c = &a->cfg;
    bool created = false;
    if (c->data_dir[0]) {
        if (keys_load_pair(c->data_dir, KEYS_NODE_SECRET, KEYS_NODE_PUBLIC, true, seed,
                           a->public_key, &created, err, cap) != 0)
            return -1;
        a->has_key = true;
        if (created)
            agent_log(RUMOR_LOG_INFO, "created the node's key pair in %s/%s", c->data_dir,
                      KEYS_NODE_SECRET);
    }
    if (!c->identity && !c->ca_cert[0])
        return 0;
    if (!a->has_key) {
        snprintf(err, cap, "--identity needs --data-dir: the node's key pair is kept there");
        return -1;
    }
    a->identity = true;
    if (c->ca_key[0]) {
        if (keys_load_public(c->ca_key, a->ca_key, err, cap) != 0)
            return -1;
        a->has_ca = true;
    }
    if (c->ca_cert[0]) {
        if (!a->has_ca) {
            snprintf(err, cap, "--ca-cert needs --ca-key, the authority that signed it");
            return -1;
        }
        if (keys_cert_load(c->ca_cert, &a->cert, err, cap) != 0 || check_cert(a, err, cap) != 0)
            return -1;
        a->has_cert = true;
    } else if (a->has_ca) {
        agent_log(RUMOR_LOG_WARN, "no --ca-cert: members that use this authority will not admit "
                                  "this node");
    }
    return 0;
}

static void identity_settings(agent *a, rumor_settings *s, const uint8_t *seed)
{
    if (!a->identity)
        return;
    s->identity = true;
    memcpy(s->identity_seed, seed, sizeof s->identity_seed);
    s->identity_ca = a->has_ca;
    memcpy(s->identity_ca_key, a->ca_key, sizeof s->identity_ca_key);
    s->identity_has_cert = a->has_cert;
    memcpy(s->identity_cert, a->cert.signature, sizeof s->identity_cert);
    s->identity_cert_expires_ms = a->cert.expires_ms;
}

typedef struct ident_poll {
    rumor_stats st;
    rumor_ident_refused_info last[RUMOR_IDENT_REFUSAL_COUNT];
} ident_poll;

static void take_ident(rumor_runtime *rt, void *arg)
{
    ident_poll *p = arg;
    rumor_node *n = rumor_runtime_node(rt);
    rumor_node_stats(n, &p->st);
    for (int r = 0; r < RUMOR_IDENT_REFUSAL_COUNT; r++)
        if (rumor_node_ident_last_refused(n, (rumor_ident_refusal)r, &p->last[r]) != 0)
            memset(&p->last[r], 0, sizeof p->last[r]);
}

/* Claims the identity checks refused since the last look, one line per reason with the latest
 * one named: a forged or uncertified member shows up in the log, not only in the metrics. */
static void ident_cb(uv_timer_t *t)
{
    agent *a = t->data;
    static ident_poll p; /* loop thread only; too big for the stack of a callback */
    if (a->stopping || rumor_runtime_call(a->rt, take_ident, &p) != 0)
        return;
    for (int r = 0; r < RUMOR_IDENT_REFUSAL_COUNT; r++) {
        uint64_t d = p.st.ident_refused[r] - a->ident_refused[r];
        a->ident_refused[r] = p.st.ident_refused[r];
        if (!d)
            continue;
        const rumor_ident_refused_info *l = &p.last[r];
        char from[64] = "a stream";
        if (l->from.len)
            rumor_addr_format(&l->from, from, sizeof from);
        agent_log(RUMOR_LOG_WARN,
                  "identity: refused %llu claim(s) (%s) in the last %u s; latest about %s%s%s via "
                  "%s",
                  (unsigned long long)d, rumor_ident_refusal_name((rumor_ident_refusal)r),
                  IDENT_LOG_MS / 1000u, l->name, l->by[0] ? ", signed as " : "", l->by, from);
    }
}

/* Stored tags first, then the configured ones on top. */
static void load_tags(agent *a)
{
    char text[RUMOR_META_MAX + 1];
    a->tags = json_object();
    if (a->store && store_get(a->store, "tags", text, sizeof text) == 1) {
        json_t *t = json_loads(text, 0, NULL);
        if (json_is_object(t))
            json_object_update(a->tags, t);
        json_decref(t);
    }
    json_object_update(a->tags, a->cfg.tags);
}

static int make_runtime(agent *a, uint32_t incarnation, const uint8_t *seed, char *err, size_t cap)
{
    rumor_runtime_options o;
    memset(&o, 0, sizeof o);
    rumor_settings_default(&o.settings, a->cfg.profile);
    agent_config_apply_engine(&a->cfg, &o.settings);
    o.settings.name = a->node;
    identity_settings(a, &o.settings, seed);
    o.settings.cluster_label = a->cfg.cluster_label[0] ? a->cfg.cluster_label : NULL;
    o.settings.incarnation = incarnation;
    if (uv_random(NULL, NULL, &o.settings.seed, sizeof o.settings.seed, 0, NULL) != 0)
        o.settings.seed = (uint64_t)getpid() ^ uv_hrtime();
    /* Shared-key stamps carry Unix time (the engine's `now` is uv_now()), so last-writer-wins
     * between agents follows their wall clocks when writes are concurrent; certificate expiry is
     * checked against it too. */
    uv_timeval64_t tv;
    uv_update_time(a->loop);
    if (uv_gettimeofday(&tv) == 0)
        a->kv.wall_offset_ms =
            (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000 - (int64_t)uv_now(a->loop);
    o.settings.wallclock_offset_ms = a->kv.wall_offset_ms;
    /* Query tag filters: tags are a JSON object in the metadata, filter values regexps. */
    o.settings.query_tag_match = agent_query_tag_match;
    o.settings.query_tag_match_ud = a;
    a->engine = o.settings;
    a->engine.name = NULL; /* only the limits are read, from HTTP threads */
    a->engine.cluster_label = NULL;
    sodium_memzero(a->engine.identity_seed, sizeof a->engine.identity_seed);
    if (a->cfg.advertise[0] &&
        rumor_runtime_parse_addr(a->cfg.advertise, RUMOR_RUNTIME_DEFAULT_PORT, &o.settings.addr,
                                 err, cap) != 0)
        return -1;
    o.bind = a->cfg.bind;
    o.tcp_only = a->cfg.tcp_only;
    o.cb = (rumor_runtime_callbacks){.event = on_event,
                                     .incarnation = on_incarnation,
                                     .log = on_log,
                                     .ud = a,
                                     .before_send = on_before_send};
    uint8_t keys[RUMOR_KEYRING_MAX][RUMOR_KEY_BYTES];
    char why[256];
    int rc = keys_setup(a, &o.settings, keys, err, cap);
    if (rc == 0 && rumor_runtime_new(&a->rt, a->loop, &o, why, sizeof why) != 0) {
        snprintf(err, cap, "cannot use --bind %s: %s", a->cfg.bind, why);
        rc = -1;
    }
    /* The runtime holds its own copies now (and wipes them once the engine has them). */
    sodium_memzero(keys, sizeof keys);
    sodium_memzero(o.settings.seal_secret, sizeof o.settings.seal_secret);
    sodium_memzero(o.settings.identity_seed, sizeof o.settings.identity_seed);
    if (rc != 0)
        return -1;
    rumor_addr_format(rumor_runtime_advertise(a->rt), a->advertise, sizeof a->advertise);
    if (rumor_runtime_start(a->rt) != 0) {
        snprintf(err, cap, "the engine refused its settings (check --engine values)");
        return -1;
    }
    char *meta = tags_encode(a->tags);
    rc = meta ? rumor_node_set_meta(rumor_runtime_node(a->rt), (const uint8_t *)meta, strlen(meta),
                                    uv_now(a->loop))
              : RUMOR_ERR_NOMEM;
    free(meta);
    if (rc != 0) {
        snprintf(err, cap, "tags: %s (at most %u bytes as JSON)", rumor_strerror(rc),
                 o.settings.meta_bytes_max);
        return -1;
    }
    rumor_runtime_pump(a->rt);
    return 0;
}

typedef struct restore_ctx {
    agent *a;
    size_t restored;
} restore_ctx;

static void restore_one(const rumor_member *m, void *ud)
{
    restore_ctx *r = ud;
    if (strcmp(m->name, r->a->node) == 0)
        return;
    if (rumor_node_restore(rumor_runtime_node(r->a->rt), m, uv_now(r->a->loop)) == 0)
        r->restored++;
}

/* Members remembered in the data dir go back into the table at once (not gossiped): the node
 * probes them like any other, so the ones still up answer and the gone ones are found failed. */
static void restore_members(agent *a)
{
    restore_ctx r = {.a = a};
    (void)store_load_members(a->store, restore_one, &r);
    rumor_runtime_pump(a->rt);
    if (r.restored > 0)
        agent_log(RUMOR_LOG_INFO, "restored %zu member(s) from %s", r.restored, a->cfg.data_dir);
}

static void start_joins(agent *a)
{
    if (a->cfg.join.n > 0)
        (void)rumor_runtime_join(a->rt, (const char *const *)a->cfg.join.v, a->cfg.join.n, false);
    if (a->cfg.retry_join.n > 0)
        (void)rumor_runtime_join(a->rt, (const char *const *)a->cfg.retry_join.v,
                                 a->cfg.retry_join.n, true);
    if (!a->store || !a->cfg.rejoin)
        return;
    restore_members(a);
    strv known = {0};
    (void)store_load_addrs(a->store, &known, REJOIN_ADDRS_MAX);
    size_t keep = 0;
    for (size_t i = 0; i < known.n; i++) { /* never "rejoin" through our own address */
        if (strcmp(known.v[i], a->advertise) == 0)
            free(known.v[i]);
        else
            known.v[keep++] = known.v[i];
    }
    known.n = keep;
    if (known.n > 0) {
        agent_log(RUMOR_LOG_INFO, "rejoining through %zu member(s) remembered in %s", known.n,
                  a->cfg.data_dir);
        (void)rumor_runtime_join(a->rt, (const char *const *)known.v, known.n, true);
    }
    strv_free(&known);
}

static int agent_setup(agent *a, char *err, size_t cap)
{
    uint32_t incarnation;
    uint8_t seed[RUMOR_IDENTITY_KEY_BYTES];
    if (a->cfg.data_dir[0] && store_open(&a->store, a->cfg.data_dir, err, cap) != 0)
        return -1;
    if (load_identity(a, &incarnation, err, cap) != 0 || load_keys(a, seed, err, cap) != 0) {
        sodium_memzero(seed, sizeof seed);
        return -1;
    }
    load_tags(a);
    a->hub = hub_new(AGENT_EVENTS_RING);
    a->kvhub = hub_new(AGENT_KV_EVENTS_RING);
    if (!a->hub || !a->kvhub || handlers_new(a, &a->handlers, err, cap) != 0)
        return -1;
    uv_timer_init(a->loop, &a->persist_timer);
    uv_timer_init(a->loop, &a->leave_timer);
    uv_timer_init(a->loop, &a->ident_timer);
    a->persist_timer.data = a->leave_timer.data = a->ident_timer.data = a;
    start_signals(a);
    a->incarnation = incarnation;
    int rc = make_runtime(a, incarnation, seed, err, cap);
    sodium_memzero(seed, sizeof seed);
    if (rc != 0)
        return -1;
    if (a->identity) {
        char pk[KEYS_TEXT_MAX], fp[24];
        keys_public_text(a->public_key, pk);
        agent_fingerprint(a->public_key, fp);
        agent_log(RUMOR_LOG_INFO, "identity %s (fingerprint %s)%s", pk, fp,
                  a->has_cert ? ", certified by the authority"
                  : a->has_ca ? ", authority set, no certificate"
                              : ", trust on first use");
        uv_timer_start(&a->ident_timer, ident_cb, IDENT_LOG_MS, IDENT_LOG_MS);
    }
    /* Before the API takes writes and before any peer is heard: versions carry on. */
    if (agent_kv_restore(a, err, cap) != 0)
        return -1;
    if (strcmp(a->cfg.http, "off") != 0 && http_start(a, a->cfg.http, err, cap) != 0)
        return -1;
    agent_log(RUMOR_LOG_INFO, "agent %s started: gossip %s (bind %s), http %s, incarnation %u%s%s",
              a->node, a->advertise, a->cfg.bind, a->cfg.http, a->incarnation,
              a->store ? ", data dir " : "", a->store ? a->cfg.data_dir : "");
    start_joins(a);
    return 0;
}

static void agent_free(agent *a)
{
    rumor_runtime_del(a->rt);
    store_close(a->store);
    handlers_free(a->handlers);
    hub_free(a->hub);
    hub_free(a->kvhub);
    agent_msg_free(a);
    json_decref(a->tags);
    agent_config_free(&a->cfg);
}

static void walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    close_handle(h);
}

/* Setup failed half-way: close whatever handles exist so the loop can end. */
static void abort_setup(agent *a)
{
    a->stopping = true;
    agent_msg_close(a);
    if (a->hub)
        hub_close(a->hub);
    if (a->kvhub)
        hub_close(a->kvhub);
    if (a->rt)
        rumor_runtime_refuse_calls(a->rt);
    http_stop(a);
    handlers_close(a->handlers);
    if (a->rt)
        rumor_runtime_close(a->rt, NULL, NULL);
    uv_walk(a->loop, walk_close, NULL);
    uv_run(a->loop, UV_RUN_DEFAULT);
}

int agent_main(int argc, char **argv)
{
    static agent a; /* static: big, and signal handlers may outlive main's frame on _exit */
    char err[1024] = "";
    memset(&a, 0, sizeof a);
    signal(SIGPIPE, SIG_IGN); /* a closed peer or handler pipe must give EPIPE, not kill us */
    if (sodium_init() < 0) {
        fprintf(stderr, "rumor agent: libsodium failed to initialise\n");
        return 1;
    }
    int rc = agent_config_parse(&a.cfg, argc, argv, err, sizeof err);
    if (rc > 0) {
        agent_config_usage(stdout);
        agent_config_free(&a.cfg);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "rumor agent: %s\n", err);
        agent_config_free(&a.cfg);
        return 2;
    }
    a.argc = argc;
    a.argv = argv;
    agent_log_setup(a.cfg.log_level, a.cfg.log_json);
    uv_loop_t loop;
    uv_loop_init(&loop);
    a.loop = &loop;
    a.exit_code = 0;
    agent_msg_init(&a);
    if (agent_setup(&a, err, sizeof err) != 0) {
        fprintf(stderr, "rumor agent: %s\n", err);
        abort_setup(&a);
        a.exit_code = 1;
    } else {
        uv_run(&loop, UV_RUN_DEFAULT);
        agent_log(RUMOR_LOG_INFO, "agent %s stopped", a.node);
    }
    agent_free(&a);
    (void)uv_loop_close(&loop);
    return a.exit_code;
}
