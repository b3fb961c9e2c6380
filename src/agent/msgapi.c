/*
 * User event and query HTTP routes. As with the other routes, a request is checked completely
 * on its HTTP thread (name, size, filters, patterns, timeout) before the engine is asked
 * anything, so a refused request sends nothing.
 *
 *   POST /v1/event/NAME   the body is the payload; every node delivers it once
 *   POST /v1/query/NAME   the body is the payload; filters in the query string
 *                         (?node=N&node=M&tag=K=REGEXP&timeout=5s&ack=false), or, with
 *                         Content-Type: application/json, a body {"payload", "payload_base64",
 *                         "nodes", "tags", "timeout", "ack"}. Answers at the query's deadline
 *                         with the acks, the responses and who stayed silent.
 *
 * A query's HTTP thread (libmicrohttpd runs one per connection) sleeps on a condition variable
 * until the loop thread reports the deadline, so the loop never waits for a client.
 */
#include "agent.h"

#include "duration.h"
#include "log.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define QUERY_TIMEOUT_MIN_MS 10u
#define QUERY_TIMEOUT_MAX_MS 300000u /* five minutes: the HTTP client waits this long */
#define QUERY_FILTERS_MAX    256u    /* nodes or tags per query; query_bytes_max binds first */
#define QUERY_WAIT_SLACK_MS  5000u   /* past the deadline before the HTTP side stops waiting */
/* Each waiting query holds one of the HTTP server's 64 connection threads (http.c): half of
 * them stay free for everything else, health checks included. */
#define QUERY_WAITING_MAX 32u

/* ---- user events ---- */

typedef struct event_call {
    agent *a;
    const char *name;
    const void *payload;
    size_t len;
    uint64_t ltime;
    int rc;
} event_call;

static void do_event(rumor_runtime *rt, void *arg)
{
    event_call *c = arg;
    rumor_node *n = rumor_runtime_node(rt);
    rumor_stats st;
    if (c->a->leaving || c->a->stopping) {
        c->rc = RUMOR_ERR_STATE;
        return;
    }
    rumor_node_stats(n, &st);
    c->ltime = st.event_ltime; /* the event takes the clock's value, then the clock moves on */
    c->rc = rumor_node_event(n, c->name, c->payload, c->len, uv_now(c->a->loop));
    if (c->rc == RUMOR_OK)
        c->a->msg.events_posted++;
}

static void post_event(agent *a, const api_request *req, const char *name, api_response *resp)
{
    static const char *const none[] = {NULL};
    const char *bad = api_query_unknown(req, none);
    if (bad) {
        api_error(resp, 400, "POST /v1/event/NAME takes no query parameters (got \"%s\")", bad);
        return;
    }
    size_t nlen = strlen(name), max = a->engine.event_bytes_max;
    if (req->body_too_large || nlen + req->body_len > max) {
        api_error(resp, 413,
                  "the event's name (%zu bytes) and payload (%s%zu bytes) are more than "
                  "event_bytes_max (%zu); nothing was sent",
                  nlen, req->body_too_large ? "over " : "",
                  req->body_too_large ? http_body_max(a) : req->body_len, max);
        return;
    }
    event_call c = {.a = a, .name = name, .payload = req->body, .len = req->body_len};
    if (rumor_runtime_call(a->rt, do_event, &c) != 0) {
        api_error(resp, 503, "the agent is shutting down");
        return;
    }
    if (c.rc == RUMOR_ERR_STATE)
        api_error(resp, 503, "the agent is leaving the cluster; nothing was sent");
    else if (c.rc == RUMOR_ERR_TOO_BIG)
        api_error(resp, 413, "the event is more than event_bytes_max (%zu); nothing was sent", max);
    else if (c.rc != RUMOR_OK)
        api_error(resp, c.rc == RUMOR_ERR_INVALID ? 400 : 500, "the event was not sent: %s",
                  rumor_strerror(c.rc));
    else
        api_json(resp, 200,
                 json_pack("{s:s,s:I,s:I}", "name", name, "ltime", (json_int_t)c.ltime, "bytes",
                           (json_int_t)req->body_len));
}

/* ---- query requests ---- */

typedef struct query_req {
    const char *nodes[QUERY_FILTERS_MAX];
    rumor_query_tag tags[QUERY_FILTERS_MAX];
    char *tag_keys[QUERY_FILTERS_MAX]; /* copies: "K=V" splits in place would touch MHD's */
    size_t nnodes, ntags;
    uint64_t timeout_ms; /* 0: the engine's default */
    bool ack;
    const void *payload;
    size_t len;
    uint8_t *decoded; /* payload_base64, decoded */
    json_t *body;     /* the JSON body, which `nodes` and `tags` point into */
} query_req;

static void query_req_free(query_req *q)
{
    for (size_t i = 0; i < q->ntags; i++)
        free(q->tag_keys[i]);
    free(q->decoded);
    json_decref(q->body);
}

static bool add_node(query_req *q, const char *name, api_response *resp)
{
    size_t len = strlen(name);
    if (len == 0 || len > RUMOR_NAME_MAX) {
        api_error(resp, 400, "node filter \"%.64s\": a node name is 1 to %d bytes", name,
                  RUMOR_NAME_MAX);
        return false;
    }
    if (q->nnodes == QUERY_FILTERS_MAX) {
        api_error(resp, 400, "more than %u node filters", QUERY_FILTERS_MAX);
        return false;
    }
    q->nodes[q->nnodes++] = name;
    return true;
}

static bool add_tag(query_req *q, const char *key, size_t klen, const char *value,
                    api_response *resp)
{
    char why[200];
    if (klen == 0 || klen > RUMOR_TAG_KEY_MAX) {
        api_error(resp, 400, "tag filter: the key must be 1 to %d bytes (expected KEY=REGEXP)",
                  RUMOR_TAG_KEY_MAX);
        return false;
    }
    if (strlen(value) > RUMOR_TAG_VALUE_MAX) {
        api_error(resp, 400, "tag filter %.*s: the pattern is longer than %d bytes", (int)klen, key,
                  RUMOR_TAG_VALUE_MAX);
        return false;
    }
    if (agent_tag_pattern_check(value, why, sizeof why) != 0) {
        api_error(resp, 400, "tag filter %.*s=%.128s: %s", (int)klen, key, value, why);
        return false;
    }
    if (q->ntags == QUERY_FILTERS_MAX) {
        api_error(resp, 400, "more than %u tag filters", QUERY_FILTERS_MAX);
        return false;
    }
    char *k = strndup(key, klen);
    if (!k) {
        api_error(resp, 500, "out of memory");
        return false;
    }
    q->tag_keys[q->ntags] = k;
    q->tags[q->ntags++] = (rumor_query_tag){k, value};
    return true;
}

static bool set_timeout(query_req *q, const char *text, api_response *resp)
{
    if (duration_parse_ms(text, QUERY_TIMEOUT_MIN_MS, QUERY_TIMEOUT_MAX_MS, &q->timeout_ms) != 0) {
        api_error(resp, 400,
                  "timeout \"%.64s\": expected a duration from %ums to %us (e.g. 500ms, 5s, "
                  "1m, or a number of milliseconds)",
                  text, QUERY_TIMEOUT_MIN_MS, QUERY_TIMEOUT_MAX_MS / 1000);
        return false;
    }
    return true;
}

static bool parse_bool(const char *v, bool *out)
{
    if (!*v || strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
        *out = true;
    else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
        *out = false;
    else
        return false;
    return true;
}

static bool from_query_string(const api_request *req, query_req *q, api_response *resp)
{
    static const char *const known[] = {"node", "tag", "timeout", "ack", NULL};
    const char *v, *bad = api_query_unknown(req, known);
    if (bad) {
        api_error(resp, 400, "unknown query parameter \"%.64s\" (expected node, tag, timeout, ack)",
                  bad);
        return false;
    }
    for (unsigned i = 0; (v = api_query(req, "node", i)) != NULL; i++)
        if (!add_node(q, v, resp))
            return false;
    for (unsigned i = 0; (v = api_query(req, "tag", i)) != NULL; i++) {
        const char *eq = strchr(v, '=');
        if (!eq) {
            api_error(resp, 400, "tag filter \"%.64s\" is not KEY=REGEXP", v);
            return false;
        }
        if (!add_tag(q, v, (size_t)(eq - v), eq + 1, resp))
            return false;
    }
    if ((v = api_query(req, "timeout", 0)) != NULL && !set_timeout(q, v, resp))
        return false;
    if ((v = api_query(req, "ack", 0)) != NULL && !parse_bool(v, &q->ack)) {
        api_error(resp, 400, "ack takes true or false");
        return false;
    }
    if (api_query(req, "timeout", 1) || api_query(req, "ack", 1)) {
        api_error(resp, 400, "timeout and ack may be given once");
        return false;
    }
    q->payload = req->body;
    q->len = req->body_len;
    return true;
}

static bool json_payload(json_t *body, query_req *q, api_response *resp)
{
    json_t *text = json_object_get(body, "payload"), *b64 = json_object_get(body, "payload_base64");
    if (text && b64) {
        api_error(resp, 400, "give \"payload\" or \"payload_base64\", not both");
        return false;
    }
    if ((text && !json_is_string(text)) || (b64 && !json_is_string(b64))) {
        api_error(resp, 400, "\"payload\" and \"payload_base64\" are strings");
        return false;
    }
    if (text) {
        q->payload = json_string_value(text);
        q->len = json_string_length(text);
    } else if (b64) {
        size_t len = json_string_length(b64), out = 0;
        q->decoded = malloc(len + 1);
        if (!q->decoded || sodium_base642bin(q->decoded, len + 1, json_string_value(b64), len, NULL,
                                             &out, NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
            api_error(resp, 400, "\"payload_base64\" is not base64 (RFC 4648, padded)");
            return false;
        }
        q->payload = q->decoded;
        q->len = out;
    }
    return true;
}

static bool json_filters(json_t *body, query_req *q, api_response *resp)
{
    json_t *nodes = json_object_get(body, "nodes"), *tags = json_object_get(body, "tags"), *v;
    json_t *timeout = json_object_get(body, "timeout"), *ack = json_object_get(body, "ack");
    size_t i;
    const char *k;
    if ((nodes && !json_is_array(nodes)) || (tags && !json_is_object(tags))) {
        api_error(resp, 400,
                  "\"nodes\" is an array of names, \"tags\" an object of "
                  "KEY: REGEXP strings");
        return false;
    }
    json_array_foreach(nodes, i, v)
    {
        if (!json_is_string(v)) {
            api_error(resp, 400, "\"nodes\"[%zu] is not a string", i);
            return false;
        }
        if (!add_node(q, json_string_value(v), resp))
            return false;
    }
    json_object_foreach(tags, k, v)
    {
        if (!json_is_string(v)) {
            api_error(resp, 400, "\"tags\".\"%.64s\" is not a string", k);
            return false;
        }
        if (!add_tag(q, k, strlen(k), json_string_value(v), resp))
            return false;
    }
    if (json_is_integer(timeout)) {
        char num[32];
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(timeout));
        if (!set_timeout(q, num, resp))
            return false;
    } else if (timeout &&
               (!json_is_string(timeout) || !set_timeout(q, json_string_value(timeout), resp))) {
        if (!json_is_string(timeout))
            api_error(resp, 400, "\"timeout\" is a duration string or milliseconds");
        return false;
    }
    if (ack && !json_is_boolean(ack)) {
        api_error(resp, 400, "\"ack\" is true or false");
        return false;
    }
    if (ack)
        q->ack = json_is_true(ack);
    return true;
}

static bool from_json_body(const api_request *req, query_req *q, api_response *resp)
{
    static const char *const none[] = {NULL};
    static const char *const fields[] = {"payload", "payload_base64", "nodes",
                                         "tags",    "timeout",        "ack"};
    const char *k;
    json_t *v;
    if (api_query_unknown(req, none)) {
        api_error(resp, 400,
                  "with a JSON body, give the filters in the body, not in the query "
                  "string");
        return false;
    }
    q->body = api_body(req, resp);
    if (!q->body)
        return false;
    json_object_foreach(q->body, k, v)
    {
        size_t i = 0;
        while (i < sizeof fields / sizeof fields[0] && strcmp(fields[i], k) != 0)
            i++;
        if (i == sizeof fields / sizeof fields[0]) {
            api_error(resp, 400,
                      "unknown field \"%.64s\" (expected payload, payload_base64, nodes, tags, "
                      "timeout, ack)",
                      k);
            return false;
        }
    }
    return json_payload(q->body, q, resp) && json_filters(q->body, q, resp);
}

static bool is_json(const api_request *req)
{
    const char *ct = api_header(req, "Content-Type");
    size_t n = strlen("application/json");
    return ct && strncasecmp(ct, "application/json", n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* ---- asking and waiting ---- */

typedef struct ask_call {
    agent *a;
    const char *name;
    const query_req *req;
    agent_query *q;
    int rc;
} ask_call;

static void do_ask(rumor_runtime *rt, void *arg)
{
    ask_call *c = arg;
    rumor_node *n = rumor_runtime_node(rt);
    const query_req *r = c->req;
    uint64_t now = uv_now(c->a->loop), id = 0;
    rumor_stats st;
    rumor_query_params p = {.nodes = r->nodes,
                            .nnodes = r->nnodes,
                            .tags = r->tags,
                            .ntags = r->ntags,
                            .timeout_ms = (uint32_t)r->timeout_ms,
                            .request_ack = r->ack};
    if (c->a->leaving || c->a->stopping) {
        c->rc = RUMOR_ERR_STATE;
        return;
    }
    rumor_node_stats(n, &st);
    c->rc = rumor_node_query(n, c->name, r->payload, r->len, &p, &id, now);
    if (c->rc != RUMOR_OK)
        return;
    c->a->msg.queries_posted++;
    rumor_query_result res;
    (void)rumor_node_query_result(n, id, &res);
    c->q->id = id;
    c->q->ltime = st.query_ltime;
    c->q->asked_at = now;
    c->q->timeout = res.deadline_ms - now;
    /* Linked before this call returns: the runtime drains the engine's events (this node's
     * own ack and answer among them) only afterwards. */
    agent_msg_track(c->a, c->q);
}

static void do_untrack(rumor_runtime *rt, void *arg)
{
    (void)rt;
    ask_call *c = arg;
    agent_msg_untrack(c->a, c->q);
}

/* Sleeps until the loop thread reports the deadline, or until it is well past. */
static void wait_done(agent *a, ask_call *c)
{
    agent_query_wait(a, c->q);
}

void agent_query_wait(agent *a, agent_query *q)
{
    ask_call call = {.a = a, .q = q}, *c = &call;
    uint64_t until = uv_hrtime() + (q->timeout + QUERY_WAIT_SLACK_MS) * 1000000u;
    uv_mutex_lock(&a->msg.mu);
    while (!q->done) {
        uint64_t now = uv_hrtime();
        if (now >= until)
            break;
        (void)uv_cond_timedwait(&a->msg.cv, &a->msg.mu, until - now);
    }
    bool done = q->done;
    uv_mutex_unlock(&a->msg.mu);
    if (done)
        return;
    /* On the loop thread, so nothing else touches it; a refused call means the agent is
     * stopping, and agent_msg_close() marked it done before calls were refused. */
    (void)rumor_runtime_call(a->rt, do_untrack, c);
    uv_mutex_lock(&a->msg.mu);
    while (!q->done)
        uv_cond_wait(&a->msg.cv, &a->msg.mu);
    uv_mutex_unlock(&a->msg.mu);
}

static json_t *answers_json(const agent_answer *x, size_t n, bool payload)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *o = json_object();
        if (!o)
            break;
        agent_json_set_text(o, "node", x[i].node, strlen(x[i].node));
        json_object_set_new(o, "after_ms", json_integer((json_int_t)x[i].after_ms));
        if (payload)
            json_object_set_new(o, "payload", agent_b64_json(x[i].payload, x[i].len));
        json_array_append_new(arr, o);
    }
    return arr;
}

static json_t *names_json(const strv *s)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < s->n; i++) {
        json_t *v = json_string(s->v[i]);
        if (v)
            json_array_append_new(arr, v);
    }
    return arr;
}

static void answer_query(const char *name, const agent_query *q, api_response *resp)
{
    const rumor_query_result *r = &q->result;
    json_t *counts = json_pack("{s:I,s:I,s:I,s:I,s:I}", "matched", (json_int_t)r->matched, "acks",
                               (json_int_t)r->acks, "responses", (json_int_t)r->responses, "no_ack",
                               (json_int_t)r->no_ack, "no_response", (json_int_t)r->no_response);
    json_t *o = json_pack("{s:s,s:I,s:I,s:I,s:b,s:b,s:o,s:o,s:o,s:o,s:o}", "name", name, "id",
                          (json_int_t)q->id, "ltime", (json_int_t)q->ltime, "timeout_ms",
                          (json_int_t)q->timeout, "request_ack", r->request_ack, "done", r->done,
                          "counts", counts, "acks", answers_json(q->acks, q->nacks, false),
                          "responses", answers_json(q->responses, q->nresponses, true), "no_ack",
                          names_json(&q->no_ack), "no_response", names_json(&q->no_response));
    if (o && q->truncated)
        json_object_set_new(o, "truncated", json_true());
    api_json(resp, 200, o);
}

static void post_query(agent *a, const api_request *req, const char *name, api_response *resp)
{
    query_req r;
    memset(&r, 0, sizeof r);
    r.ack = true;
    if (req->body_too_large) {
        api_error(resp, 413, "request body larger than %zu bytes; nothing was sent",
                  http_body_max(a));
        return;
    }
    bool ok = is_json(req) ? from_json_body(req, &r, resp) : from_query_string(req, &r, resp);
    if (ok && strlen(name) + r.len > a->engine.query_bytes_max) {
        api_error(resp, 413,
                  "the query's name and payload (%zu bytes) are more than query_bytes_max "
                  "(%u); nothing was sent",
                  strlen(name) + r.len, a->engine.query_bytes_max);
        ok = false;
    }
    agent_query *q = ok ? calloc(1, sizeof *q) : NULL;
    if (ok && !q)
        api_error(resp, 500, "out of memory");
    if (!q) {
        query_req_free(&r);
        return;
    }
    ask_call c = {.a = a, .name = name, .req = &r, .q = q};
    if (atomic_fetch_add(&a->msg.waiting, 1) >= QUERY_WAITING_MAX)
        api_error(resp, 429,
                  "%u queries are already waiting for their deadline here; try again "
                  "when one ends",
                  QUERY_WAITING_MAX);
    else if (rumor_runtime_call(a->rt, do_ask, &c) != 0)
        api_error(resp, 503, "the agent is shutting down");
    else if (c.rc == RUMOR_ERR_TOO_BIG)
        api_error(resp, 413,
                  "the query's name, payload and filters encode to more than query_bytes_max "
                  "(%u); nothing was sent",
                  a->engine.query_bytes_max);
    else if (c.rc == RUMOR_ERR_FULL)
        api_error(resp, 429, "%u queries are running (queries_max); try again when one ends",
                  a->engine.queries_max);
    else if (c.rc == RUMOR_ERR_STATE)
        api_error(resp, 503, "the agent is leaving the cluster; nothing was sent");
    else if (c.rc != RUMOR_OK)
        api_error(resp, c.rc == RUMOR_ERR_INVALID ? 400 : 500, "the query was not sent: %s",
                  rumor_strerror(c.rc));
    if (c.rc == RUMOR_OK && resp->status == 0 && q->id != 0) {
        wait_done(a, &c);
        if (q->aborted)
            api_error(resp, 503, "the agent stopped before the query's deadline");
        else
            answer_query(name, q, resp);
    }
    atomic_fetch_sub(&a->msg.waiting, 1);
    agent_query_free(q);
    query_req_free(&r);
}

/* ---- routing ---- */

bool msgapi_handle(agent *a, const api_request *req, api_response *resp)
{
    bool event = strcmp(req->path, "/v1/event") == 0 || strncmp(req->path, "/v1/event/", 10) == 0;
    bool query = strcmp(req->path, "/v1/query") == 0 || strncmp(req->path, "/v1/query/", 10) == 0;
    char why[160];
    if (!event && !query)
        return false;
    const char *name = req->path[9] ? req->path + 10 : "";
    if (strcmp(req->method, "POST") != 0) {
        api_error(resp, 405, "%s does not accept %s (use POST)", req->path, req->method);
        return true;
    }
    if (agent_msg_check_name(name, why, sizeof why) != 0) {
        api_error(resp, 400, "bad %s name: %s (POST /v1/%s/NAME)", event ? "event" : "query", why,
                  event ? "event" : "query");
        return true;
    }
    if (rumor_name_reserved(name, strlen(name))) {
        api_error(resp, 403,
                  "%s names starting with \"%s\" are reserved for the agent's own queries "
                  "(cluster key operations: rumor keys); nothing was sent",
                  event ? "event" : "query", RUMOR_NAME_RESERVED_PREFIX);
        return true;
    }
    if (event)
        post_event(a, req, name, resp);
    else
        post_query(a, req, name, resp);
    return true;
}
