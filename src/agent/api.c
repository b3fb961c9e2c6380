/*
 * HTTP API routes. Each runs on an HTTP thread, validates its input fully before anything
 * happens, and reaches the engine only through rumor_runtime_call(). Every error is a 4xx/5xx
 * with {"error": "..."} saying what was wrong.
 */
#include "agent.h"

#include "log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOIN_WAIT_MS   5000u
#define JOIN_SEEDS_MAX 32u

void api_error(api_response *resp, unsigned status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *o = json_pack("{s:s}", "error", msg);
    resp->status = status;
    resp->body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
}

void api_json(api_response *resp, unsigned status, json_t *o)
{
    resp->status = status;
    resp->body = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (!resp->body)
        api_error(resp, 500, "out of memory");
    json_decref(o);
}

typedef struct query_iter {
    const char *key;
    unsigned want, seen;
    const char *found;
} query_iter;

static enum MHD_Result query_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    (void)kind;
    query_iter *q = cls;
    if (strcmp(key, q->key) == 0 && q->seen++ == q->want) {
        q->found = value ? value : "";
        return MHD_NO;
    }
    return MHD_YES;
}

const char *api_query(const api_request *req, const char *key, unsigned n)
{
    query_iter q = {.key = key, .want = n};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, query_cb, &q);
    return q.found;
}

typedef struct unknown_iter {
    const char *const *known;
    const char *found;
} unknown_iter;

static enum MHD_Result unknown_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)kind;
    (void)value;
    unknown_iter *u = cls;
    for (const char *const *k = u->known; *k; k++)
        if (strcmp(*k, key) == 0)
            return MHD_YES;
    u->found = key;
    return MHD_NO;
}

const char *api_query_unknown(const api_request *req, const char *const *known)
{
    unknown_iter u = {.known = known};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, unknown_cb, &u);
    return u.found;
}

const char *api_header(const api_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

json_t *agent_tags_from_meta(const uint8_t *meta, size_t len)
{
    if (len == 0)
        return json_object();
    json_t *t = json_loadb((const char *)meta, len, 0, NULL);
    if (!json_is_object(t)) { /* a peer that is not a rumor agent: show its meta raw */
        json_decref(t);
        t = json_object();
        json_object_set_new(t, "_meta", json_stringn((const char *)meta, len));
    }
    return t;
}

json_t *agent_member_json(const rumor_runtime_member *m)
{
    int fam = 0;
    uint8_t ip[16];
    uint16_t port = 0;
    char ipstr[64] = "";
    if (rumor_addr_to_ip(&m->addr, &fam, ip, &port) == 0)
        inet_ntop(fam == 4 ? AF_INET : AF_INET6, ip, ipstr, sizeof ipstr);
    else
        rumor_addr_format(&m->addr, ipstr, sizeof ipstr);
    json_t *o = json_pack("{s:s,s:s,s:i,s:s,s:I,s:o,s:b}", "name", m->name, "addr", ipstr, "port",
                          (int)port, "status", rumor_member_state_name(m->state), "incarnation",
                          (json_int_t)m->incarnation, "tags",
                          agent_tags_from_meta(m->meta, m->meta_len), "self", m->is_self);
    /* Identities on: the member's key and its short fingerprint, else null. */
    if (o && m->has_public_key) {
        char pk[KEYS_TEXT_MAX], fp[24];
        keys_public_text(m->public_key, pk);
        agent_fingerprint(m->public_key, fp);
        json_object_set_new(o, "public_key", json_string(pk));
        json_object_set_new(o, "fingerprint", json_string(fp));
    } else if (o) {
        json_object_set_new(o, "public_key", json_null());
        json_object_set_new(o, "fingerprint", json_null());
    }
    return o;
}

/* ---- members ---- */

static int parse_status_filter(const char *text, bool want[4], api_response *resp)
{
    if (!text) {
        for (int i = 0; i < 4; i++)
            want[i] = true;
        return 0;
    }
    char buf[128];
    snprintf(buf, sizeof buf, "%s", text);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int i = 0;
        while (i < 4 && strcmp(tok, rumor_member_state_name((rumor_member_state)i)) != 0)
            i++;
        if (i == 4) {
            api_error(resp, 400, "unknown status \"%s\" (expected alive, suspect, failed or left)",
                      tok);
            return -1;
        }
        want[i] = true;
    }
    return 0;
}

static bool tags_match(const api_request *req, json_t *tags)
{
    const char *f;
    for (unsigned i = 0; (f = api_query(req, "tag", i)) != NULL; i++) {
        const char *eq = strchr(f, '=');
        char key[256];
        size_t klen = eq ? (size_t)(eq - f) : strlen(f);
        if (klen >= sizeof key)
            return false;
        memcpy(key, f, klen);
        key[klen] = '\0';
        json_t *v = json_object_get(tags, key);
        if (!v || (eq && (!json_is_string(v) || strcmp(json_string_value(v), eq + 1) != 0)))
            return false;
    }
    return true;
}

static int by_name(const void *x, const void *y)
{
    return strcmp(((const rumor_runtime_member *)x)->name, ((const rumor_runtime_member *)y)->name);
}

static void get_members(agent *a, const api_request *req, api_response *resp)
{
    bool want[4] = {false, false, false, false};
    if (parse_status_filter(api_query(req, "status", 0), want, resp) != 0)
        return;
    rumor_runtime_member *m;
    size_t n;
    if (rumor_runtime_members(a->rt, &m, &n) != 0) {
        api_error(resp, 503, "the agent is shutting down");
        return;
    }
    qsort(m, n, sizeof *m, by_name); /* a stable order for people and diffs */
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = agent_member_json(&m[i]);
        if (o && want[m[i].state & 3] && tags_match(req, json_object_get(o, "tags")))
            json_array_append(arr, o);
        json_decref(o);
    }
    rumor_runtime_members_free(m, n);
    api_json(resp, 200, json_pack("{s:o}", "members", arr));
}

static json_t *self_json(agent *a)
{
    rumor_runtime_member *m;
    size_t n;
    json_t *out = NULL;
    if (rumor_runtime_members(a->rt, &m, &n) != 0)
        return NULL;
    for (size_t i = 0; i < n && !out; i++)
        if (m[i].is_self)
            out = agent_member_json(&m[i]);
    rumor_runtime_members_free(m, n);
    return out;
}

static void get_self(agent *a, const api_request *req, api_response *resp)
{
    (void)req;
    json_t *s = self_json(a);
    if (!s)
        api_error(resp, 503, "the agent is shutting down");
    else
        api_json(resp, 200, s);
}

/* ---- info, health, metrics ---- */

static json_t *stats_json(const rumor_stats *st)
{
    json_t *drops = json_object();
    for (int r = 0; r < RUMOR_DROP_REASON_COUNT; r++)
        json_object_set_new(drops, rumor_drop_reason_name((rumor_drop_reason)r),
                            json_integer((json_int_t)st->dropped[r]));
    json_t *o =
        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "probes",
                  (json_int_t)st->probes, "probe_failures", (json_int_t)st->probe_failures, "acks",
                  (json_int_t)st->acks_in, "nacks", (json_int_t)st->nacks_in, "indirect_probes",
                  (json_int_t)st->indirect_probes, "suspicions", (json_int_t)st->suspicions,
                  "refutes", (json_int_t)st->refutes, "packets_in", (json_int_t)st->packets_in,
                  "packets_out", (json_int_t)st->packets_out, "bytes_in", (json_int_t)st->bytes_in,
                  "bytes_out", (json_int_t)st->bytes_out, "full_syncs", (json_int_t)st->pushpulls,
                  "health_score", (json_int_t)st->awareness, "dropped", drops);
    if (o) {
        json_object_set_new(o, "user_events", json_integer((json_int_t)st->user_events_delivered));
        json_object_set_new(o, "queries_served", json_integer((json_int_t)st->queries_served));
        json_object_set_new(o, "event_ltime", json_integer((json_int_t)st->event_ltime));
        json_object_set_new(o, "query_ltime", json_integer((json_int_t)st->query_ltime));
    }
    return o;
}

/* How this node proves who it is (docs/protocol.md section 12). */
static json_t *identity_json(agent *a)
{
    char pk[KEYS_TEXT_MAX] = "", fp[24] = "", ca[KEYS_TEXT_MAX] = "";
    if (a->has_key) {
        keys_public_text(a->public_key, pk);
        agent_fingerprint(a->public_key, fp);
    }
    if (a->has_ca)
        keys_public_text(a->ca_key, ca);
    json_t *o = json_pack("{s:b,s:s,s:b}", "enabled", a->identity, "binding",
                          !a->identity ? "off"
                          : a->has_ca  ? "authority"
                                       : "trust on first use",
                          "certified", a->has_cert);
    json_object_set_new(o, "public_key", a->has_key ? json_string(pk) : json_null());
    json_object_set_new(o, "fingerprint", a->has_key ? json_string(fp) : json_null());
    json_object_set_new(o, "authority", a->has_ca ? json_string(ca) : json_null());
    if (a->has_cert)
        json_object_set_new(o, "certificate_expires_ms",
                            json_integer((json_int_t)a->cert.expires_ms));
    return o;
}

static json_t *config_json(agent *a)
{
    const agent_config *c = &a->cfg;
    const rumor_settings *e = &a->engine;
    static const char *const profiles[] = {"lan", "wan", "local"};
    static const char *const modes[] = {"push-pull", "push", "pull"};
    json_t *kv = json_pack(
        "{s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "sync_mode", modes[(unsigned)e->kv_sync_mode % 3],
        "sync_interval_ms", (json_int_t)e->kv_sync_interval_ms, "value_bytes_max",
        (json_int_t)e->kv_value_bytes_max, "keys_max", (json_int_t)e->kv_keys_max, "node_bytes_max",
        (json_int_t)e->kv_node_bytes_max, "total_bytes_max", (json_int_t)e->kv_total_bytes_max,
        "tombstone_ttl_ms", (json_int_t)e->kv_tombstone_ttl_ms);
    json_t *msg =
        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "event_bytes_max", (json_int_t)e->event_bytes_max,
                  "query_bytes_max", (json_int_t)e->query_bytes_max, "query_response_bytes_max",
                  (json_int_t)e->query_response_bytes_max, "query_timeout_mult",
                  (json_int_t)e->query_timeout_mult, "queries_max", (json_int_t)e->queries_max,
                  "queries_inbound_max", (json_int_t)e->queries_inbound_max);
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:b,s:i,s:s,s:o,s:o,s:b,s:o}", "bind", c->bind,
                     "advertise", a->advertise, "http", c->http, "profile",
                     profiles[c->profile % 3], "data_dir", c->data_dir, "tcp_only", c->tcp_only,
                     "event_handlers", (int)c->handlers.n, "log_level",
                     agent_log_level_name(c->log_level), "kv", kv, "messages", msg, "encrypt",
                     atomic_load(&a->keyring_size) > 0, "identity", identity_json(a));
}

typedef struct snapshot {
    agent *a;
    rumor_stats st;
    rumor_runtime_counters rc;
    agent_handler_counters hc;
    agent_kv_snapshot kv;
    agent_msg_snapshot msg;
    bool leaving;
} snapshot;

static void take_snapshot(rumor_runtime *rt, void *arg)
{
    snapshot *s = arg;
    rumor_node_stats(rumor_runtime_node(rt), &s->st);
    rumor_node_kv_stats(rumor_runtime_node(rt), &s->kv.st);
    (void)rumor_node_kv_origin_info(rumor_runtime_node(rt), NULL, &s->kv.self);
    s->kv.counters = s->a->kv;
    s->kv.watchers = atomic_load(&s->a->kv_watchers);
    s->rc = *rumor_runtime_counters_get(rt);
    s->hc = s->a->handler_counters;
    s->msg = (agent_msg_snapshot){.events_posted = s->a->msg.events_posted,
                                  .queries_posted = s->a->msg.queries_posted,
                                  .handler_responses = s->a->msg.handler_responses,
                                  .handler_response_fails = s->a->msg.handler_response_fails,
                                  .waiting = atomic_load(&s->a->msg.waiting)};
    s->leaving = s->a->leaving;
}

/* Stats and counters of the loop thread, copied there. */
static int snap(agent *a, snapshot *s)
{
    memset(s, 0, sizeof *s);
    s->a = a;
    return rumor_runtime_call(a->rt, take_snapshot, s);
}

static void get_info(agent *a, const api_request *req, api_response *resp)
{
    (void)req;
    snapshot sn;
    json_t *self = self_json(a);
    const rumor_stats *stp = &sn.st;
    if (!self || snap(a, &sn) != 0) {
        json_decref(self);
        api_error(resp, 503, "the agent is shutting down");
        return;
    }
    json_t *members = json_pack("{s:i,s:i,s:i,s:i}", "alive", (int)stp->members[0], "suspect",
                                (int)stp->members[1], "failed", (int)stp->members[2], "left",
                                (int)stp->members[3]);
    api_json(resp, 200,
             json_pack("{s:o,s:o,s:o,s:o,s:s}", "self", self, "members", members, "stats",
                       stats_json(stp), "config", config_json(a), "version", "0.1.0"));
}

static void get_health(agent *a, const api_request *req, api_response *resp)
{
    (void)req;
    snapshot sn;
    if (snap(a, &sn) != 0) {
        api_error(resp, 503, "the agent is shutting down");
        return;
    }
    api_json(resp, sn.leaving ? 503 : 200,
             json_pack("{s:s,s:i,s:i,s:I}", "status", sn.leaving ? "leaving" : "ok",
                       "members_alive", (int)sn.st.members[0], "health_score", (int)sn.st.awareness,
                       "incarnation", (json_int_t)sn.st.incarnation));
}

static void get_metrics(agent *a, const api_request *req, api_response *resp)
{
    (void)req;
    snapshot sn;
    if (snap(a, &sn) != 0) {
        api_error(resp, 503, "the agent is shutting down");
        return;
    }
    resp->body = metrics_render(a, &sn.st, &sn.rc, &sn.hc, &sn.kv, &sn.msg);
    resp->status = resp->body ? 200 : 500;
    resp->content_type = "text/plain; version=0.0.4";
}

/* ---- join, leave, tags ---- */

static json_t *parse_body(const api_request *req, api_response *resp)
{
    json_error_t e;
    if (req->body_len == 0) {
        api_error(resp, 400, "this endpoint needs a JSON object in the request body");
        return NULL;
    }
    json_t *o = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &e);
    if (!o) {
        api_error(resp, 400, "request body is not valid JSON: line %d, column %d: %s", e.line,
                  e.column, e.text);
        return NULL;
    }
    if (!json_is_object(o)) {
        api_error(resp, 400, "request body must be a JSON object");
        json_decref(o);
        return NULL;
    }
    return o;
}

void api_reply(api_response *resp, unsigned status, json_t *o)
{
    api_json(resp, status, o);
}

json_t *api_body(const api_request *req, api_response *resp)
{
    return parse_body(req, resp);
}

/* Resolves every entry of "addrs" (blocking getaddrinfo, fine on an HTTP thread). */
static size_t resolve_addrs(json_t *list, rumor_addr *out, api_response *resp)
{
    size_t n = 0, i;
    json_t *item;
    if (!json_is_array(list) || json_array_size(list) == 0) {
        api_error(resp, 400, "\"addrs\" must be a non-empty array of \"HOST[:PORT]\" strings");
        return 0;
    }
    json_array_foreach(list, i, item)
    {
        char err[256];
        if (!json_is_string(item)) {
            api_error(resp, 400, "\"addrs\"[%zu] is not a string", i);
            return 0;
        }
        int got = rumor_runtime_resolve(json_string_value(item), RUMOR_RUNTIME_DEFAULT_PORT,
                                        out + n, JOIN_SEEDS_MAX - n, err, sizeof err);
        if (got < 0) {
            api_error(resp, 400, "\"addrs\"[%zu]: %s", i, err);
            return 0;
        }
        n += (size_t)got;
        if (n == JOIN_SEEDS_MAX)
            break;
    }
    return n;
}

/* How many seeds are now known as live members; -1 when the agent is shutting down. */
static int seeds_alive(agent *a, const rumor_addr *seeds, size_t n)
{
    rumor_runtime_member *m;
    size_t count;
    int hits = 0;
    if (rumor_runtime_members(a->rt, &m, &count) != 0)
        return -1;
    for (size_t s = 0; s < n; s++)
        for (size_t i = 0; i < count; i++)
            if (!m[i].is_self && m[i].state == RUMOR_MEMBER_ALIVE &&
                rumor_addr_equal(&m[i].addr, &seeds[s])) {
                hits++;
                break;
            }
    rumor_runtime_members_free(m, count);
    return hits;
}

static void post_join(agent *a, const api_request *req, api_response *resp)
{
    json_t *body = parse_body(req, resp);
    if (!body)
        return;
    rumor_addr seeds[JOIN_SEEDS_MAX];
    size_t n = resolve_addrs(json_object_get(body, "addrs"), seeds, resp);
    json_decref(body);
    if (n == 0)
        return;
    int rc = rumor_runtime_join_addrs(a->rt, seeds, n);
    if (rc != 0) {
        api_error(resp, 409, "cannot join: %s", rumor_strerror(rc));
        return;
    }
    int hits = 0;
    for (unsigned waited = 0; waited < JOIN_WAIT_MS && hits == 0; waited += 50) {
        uv_sleep(50);
        hits = seeds_alive(a, seeds, n);
    }
    if (hits < 0) {
        api_error(resp, 503, "the agent is shutting down");
        return;
    }
    if (hits == 0) {
        api_error(resp, 504, "no member answered at the %zu address(es) within %u ms", n,
                  JOIN_WAIT_MS);
        return;
    }
    api_json(resp, 200, json_pack("{s:i,s:i}", "seeds", (int)n, "joined", hits));
}

static void do_leave(rumor_runtime *rt, void *arg)
{
    (void)rt;
    agent_leave_and_exit(arg);
}

static void post_leave(agent *a, const api_request *req, api_response *resp)
{
    (void)req;
    if (rumor_runtime_call(a->rt, do_leave, a) != 0) {
        api_error(resp, 503, "the agent is already shutting down");
        return;
    }
    api_json(resp, 200, json_pack("{s:s}", "status", "leaving"));
}

typedef struct tags_call {
    agent *a;
    json_t *set, *del, *result;
    char err[256];
    int rc;
} tags_call;

static void do_tags(rumor_runtime *rt, void *arg)
{
    (void)rt;
    tags_call *t = arg;
    t->rc = agent_update_tags(t->a, t->set, t->del, t->err, sizeof t->err);
    t->result = json_deep_copy(t->a->tags);
}

static int check_tags_body(json_t *set, json_t *del, api_response *resp)
{
    const char *k;
    json_t *v;
    size_t i;
    if ((set && !json_is_object(set)) || (del && !json_is_array(del)) || (!set && !del)) {
        api_error(resp, 400,
                  "expected {\"set\": {\"KEY\": \"VALUE\", ...}, \"delete\": "
                  "[\"KEY\", ...]} (either may be omitted, not both)");
        return -1;
    }
    json_object_foreach(set, k, v)
    {
        if (!*k || !json_is_string(v)) {
            api_error(resp, 400, "tag \"%s\": keys must be non-empty and values strings", k);
            return -1;
        }
    }
    json_array_foreach(del, i, v)
    {
        if (!json_is_string(v)) {
            api_error(resp, 400, "\"delete\"[%zu] is not a string", i);
            return -1;
        }
    }
    return 0;
}

static void put_tags(agent *a, const api_request *req, api_response *resp)
{
    json_t *body = parse_body(req, resp);
    if (!body)
        return;
    tags_call t = {
        .a = a, .set = json_object_get(body, "set"), .del = json_object_get(body, "delete")};
    if (check_tags_body(t.set, t.del, resp) != 0) {
        json_decref(body);
        return;
    }
    int rc = rumor_runtime_call(a->rt, do_tags, &t);
    json_decref(body);
    if (rc != 0)
        api_error(resp, 503, "the agent is shutting down");
    else if (t.rc != 0)
        api_error(resp, 400, "%s", t.err);
    else
        api_json(resp, 200, json_pack("{s:o}", "tags", t.result ? t.result : json_object()));
    if (rc != 0 || t.rc != 0)
        json_decref(t.result);
}

/* ---- routing ---- */

typedef struct route {
    const char *method, *path;
    void (*fn)(agent *a, const api_request *req, api_response *resp);
} route;

static const route routes[] = {
    {"GET", "/v1/members", get_members},     {"GET", "/v1/self", get_self},
    {"GET", "/v1/info", get_info},           {"GET", "/v1/health", get_health},
    {"GET", "/metrics", get_metrics},        {"POST", "/v1/join", post_join},
    {"POST", "/v1/leave", post_leave},       {"PUT", "/v1/tags", put_tags},
    {"GET", "/v1/keys", api_keys_list},      {"POST", "/v1/keys", api_keys_install},
    {"DELETE", "/v1/keys", api_keys_remove}, {"PUT", "/v1/keys/primary", api_keys_use},
};

void api_handle(agent *a, const api_request *req, api_response *resp)
{
    const route *path_match = NULL;
    if (kvapi_handle(a, req, resp) || msgapi_handle(a, req, resp))
        return;
    char allowed[64] = "";
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(routes[i].path, req->path) != 0)
            continue;
        path_match = &routes[i];
        if (strcmp(routes[i].method, req->method) != 0) {
            size_t used = strlen(allowed);
            snprintf(allowed + used, sizeof allowed - used, "%s%s", used ? ", " : "",
                     routes[i].method);
            continue;
        }
        if (req->body_too_large) {
            api_error(resp, 413, "request body larger than %zu bytes", http_body_max(a));
            return;
        }
        routes[i].fn(a, req, resp);
        return;
    }
    if (path_match)
        api_error(resp, 405, "%s does not accept %s (use %s)", req->path, req->method, allowed);
    else
        api_error(resp, 404,
                  "no such endpoint: %s (see GET /v1/members, /v1/self, /v1/info, "
                  "/v1/health, /v1/events, /v1/kv, /v1/state, /v1/nodes/NAME/state, /v1/keys, "
                  "/v1/event/NAME, /v1/query/NAME, /metrics)",
                  req->path);
}
