/*
 * Key-value HTTP routes. Each request is checked completely on its HTTP thread (key, method,
 * body size, query) before anything happens; engine work then runs on the loop thread through
 * rumor_runtime_call(), which for a write also commits it to the data dir before returning, so
 * a 200 means the write is durable. Values travel raw in PUT bodies, as base64 in JSON answers,
 * and raw again with ?raw.
 *
 *   GET /v1/kv?prefix=P                  the shared keyspace (winning writes), sorted by key
 *   GET|PUT|DELETE /v1/kv/KEY            one shared key (GET /v1/kv/watch is the change stream)
 *   GET /v1/state?prefix=P               this node's own keyspace
 *   GET|PUT|DELETE /v1/state/KEY         one key of this node
 *   GET /v1/nodes/NAME/state?prefix=P    NAME's keyspace as this agent's replica holds it
 *   GET /v1/nodes/NAME/state/KEY         one key of it
 */
#include "agent.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum kv_space { SPACE_SHARED, SPACE_NODE } kv_space;
typedef enum kv_op { OP_GET, OP_PUT, OP_DELETE, OP_LIST } kv_op;

typedef struct kv_row {
    uint8_t *key, *value;
    size_t key_len, value_len;
    uint64_t version, stamp;
    char *writer;
} kv_row;

typedef struct kv_call {
    agent *a;
    kv_op op;
    kv_space space;
    const char *node; /* SPACE_NODE: the origin; NULL = this node */
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
    const char *prefix;
    size_t prefix_len;
    /* results */
    int rc;
    bool save_failed;
    bool member_known;
    char save_err[256];
    kv_row *rows;
    size_t nrows, cap;
    rumor_kv_origin_info info;
} kv_call;

/* ---- keys ---- */

int kvapi_check_key(const char *key, size_t len, bool prefix, char *why, size_t cap)
{
    if (len == 0 && !prefix) {
        snprintf(why, cap, "the key is empty");
        return -1;
    }
    if (len > RUMOR_KEY_MAX) {
        snprintf(why, cap, "%zu bytes long; at most %d", len, RUMOR_KEY_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c < 0x20 || c == 0x7f) {
            snprintf(why, cap, "holds a control character (0x%02x at byte %zu)", c, i);
            return -1;
        }
    }
    json_t *s = json_stringn(key, len); /* jansson checks UTF-8 for us */
    if (!s) {
        snprintf(why, cap, "not valid UTF-8");
        return -1;
    }
    json_decref(s);
    return 0;
}

/* ---- loop-thread work ---- */

static bool row_push(kv_call *c, const rumor_kv_entry *e)
{
    if (c->nrows == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        kv_row *r = realloc(c->rows, cap * sizeof *r);
        if (!r)
            return false;
        c->rows = r;
        c->cap = cap;
    }
    kv_row *r = &c->rows[c->nrows];
    memset(r, 0, sizeof *r);
    r->key = malloc(e->key_len + 1);
    r->value = malloc(e->value_len + 1);
    r->writer = strdup(e->origin);
    if (!r->key || !r->value || !r->writer) {
        free(r->key);
        free(r->value);
        free(r->writer);
        return false;
    }
    memcpy(r->key, e->key, e->key_len);
    if (e->value_len)
        memcpy(r->value, e->value, e->value_len);
    r->key_len = e->key_len;
    r->value_len = e->value_len;
    r->version = e->version;
    r->stamp = e->stamp;
    c->nrows++;
    return true;
}

static int visit(const rumor_kv_entry *e, void *ud)
{
    return row_push(ud, e) ? 0 : 1;
}

static void do_list(kv_call *c, rumor_node *n)
{
    rumor_kv_filter f = {c->prefix, c->prefix_len, 0, 0};
    int rc = c->space == SPACE_SHARED ? rumor_node_shared_foreach(n, &f, visit, c)
                                      : rumor_node_kv_foreach(n, c->node, &f, visit, c);
    c->rc = rc == 1 ? RUMOR_ERR_NOMEM : rc;
    if (c->space == SPACE_NODE)
        (void)rumor_node_kv_origin_info(n, c->node, &c->info);
}

static void do_get(kv_call *c, rumor_node *n)
{
    rumor_kv_entry e;
    if (c->space == SPACE_SHARED) {
        rumor_kv_value v;
        c->rc = rumor_node_shared_get(n, c->key, c->key_len, &v);
        if (c->rc == 0 && rumor_node_kv_lookup(n, v.writer, c->key, c->key_len, true, &e) == 0)
            c->rc = row_push(c, &e) ? 0 : RUMOR_ERR_NOMEM;
        return;
    }
    c->rc = rumor_node_kv_lookup(n, c->node, c->key, c->key_len, false, &e);
    if (c->rc == 0 && e.deleted)
        c->rc = RUMOR_ERR_NOT_FOUND;
    if (c->rc == 0)
        c->rc = row_push(c, &e) ? 0 : RUMOR_ERR_NOMEM;
}

static void do_write(kv_call *c, rumor_node *n)
{
    agent *a = c->a;
    uint64_t now = uv_now(a->loop);
    bool shared = c->space == SPACE_SHARED, del = c->op == OP_DELETE;
    if (a->leaving || a->stopping) {
        c->rc = RUMOR_ERR_STATE;
        return;
    }
    if (shared)
        c->rc = del ? rumor_node_shared_delete(n, c->key, c->key_len, now)
                    : rumor_node_shared_put(n, c->key, c->key_len, c->value, c->value_len, now);
    else
        c->rc = del ? rumor_node_kv_delete(n, c->key, c->key_len, now)
                    : rumor_node_kv_put(n, c->key, c->key_len, c->value, c->value_len, now);
    (void)rumor_node_kv_origin_info(n, NULL, &c->info);
    if (c->rc == RUMOR_ERR_TOO_BIG)
        a->kv.refused++;
    if (c->rc != 0)
        return;
    a->kv.writes[shared][del]++;
    /* Durable before anything else sees it: the runtime sends the write's datagrams only
     * after this call returns. */
    c->save_failed = agent_kv_save(a, c->save_err, sizeof c->save_err) != 0;
    rumor_kv_entry e;
    if (rumor_node_kv_lookup(n, NULL, c->key, c->key_len, shared, &e) == 0 && !row_push(c, &e))
        c->rc = RUMOR_ERR_NOMEM;
}

static void on_loop(rumor_runtime *rt, void *arg)
{
    kv_call *c = arg;
    rumor_node *n = rumor_runtime_node(rt);
    rumor_member m;
    c->member_known = c->node && rumor_node_member_find(n, c->node, &m) == 0;
    if (c->op == OP_LIST)
        do_list(c, n);
    else if (c->op == OP_GET)
        do_get(c, n);
    else
        do_write(c, n);
}

static void call_free(kv_call *c)
{
    for (size_t i = 0; i < c->nrows; i++) {
        free(c->rows[i].key);
        free(c->rows[i].value);
        free(c->rows[i].writer);
    }
    free(c->rows);
}

/* ---- answers ---- */

static json_t *row_json(const kv_call *c, const kv_row *r, bool with_value)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    agent_json_set_text(o, "key", r->key, r->key_len);
    if (with_value)
        json_object_set_new(o, "value", agent_b64_json(r->value, r->value_len));
    json_object_set_new(o, "version", json_integer((json_int_t)r->version));
    if (c->space == SPACE_SHARED) {
        json_object_set_new(o, "writer", json_string(r->writer));
        json_object_set_new(o, "stamp", json_integer((json_int_t)r->stamp));
    } else {
        json_object_set_new(o, "node", json_string(r->writer));
    }
    return o;
}

static int by_key(const void *x, const void *y)
{
    const kv_row *a = x, *b = y;
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = memcmp(a->key, b->key, n);
    return c ? c : (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

static void json_answer(api_response *resp, unsigned status, json_t *o)
{
    resp->status = status;
    resp->body = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (!resp->body)
        api_error(resp, 500, "out of memory");
    json_decref(o);
}

static void add_header(api_response *resp, const char *name, const char *value)
{
    if (resp->nheaders >= sizeof resp->headers / sizeof resp->headers[0])
        return;
    snprintf(resp->headers[resp->nheaders][0], sizeof resp->headers[0][0], "%s", name);
    snprintf(resp->headers[resp->nheaders][1], sizeof resp->headers[0][1], "%s", value);
    resp->nheaders++;
}

/* ?raw: the value's bytes as the body, the rest in headers. */
static void answer_raw(api_response *resp, const kv_call *c, kv_row *r)
{
    char num[32];
    resp->status = 200;
    resp->binary = true;
    resp->body = (char *)r->value;
    resp->body_len = r->value_len;
    r->value = NULL; /* the response owns it now */
    resp->content_type = "application/octet-stream";
    snprintf(num, sizeof num, "%llu", (unsigned long long)r->version);
    add_header(resp, "X-Rumor-Version", num);
    if (c->space == SPACE_SHARED) {
        snprintf(num, sizeof num, "%llu", (unsigned long long)r->stamp);
        add_header(resp, "X-Rumor-Stamp", num);
    }
    if (strlen(r->writer) < sizeof resp->headers[0][1])
        add_header(resp, c->space == SPACE_SHARED ? "X-Rumor-Writer" : "X-Rumor-Node", r->writer);
}

static bool engine_error(api_response *resp, const kv_call *c, int rc)
{
    const agent *a = c->a;
    switch (rc) {
    case RUMOR_OK:
        return false;
    case RUMOR_ERR_NOT_FOUND:
        if (c->op == OP_LIST)
            api_error(resp, 404, "no member named \"%s\" is known here", c->node);
        else
            api_error(resp, 404, "no such key");
        break;
    case RUMOR_ERR_TOO_BIG:
        api_error(resp, 409,
                  "this node's keyspace is at a limit (%u keys held of kv_keys_max %u, "
                  "%llu bytes of kv_node_bytes_max %u, or the node's total "
                  "kv_total_bytes_max); nothing changed",
                  c->info.keys, a->engine.kv_keys_max, (unsigned long long)c->info.bytes,
                  a->engine.kv_node_bytes_max);
        break;
    case RUMOR_ERR_STATE:
        api_error(resp, 503, "the agent is leaving the cluster; nothing changed");
        break;
    case RUMOR_ERR_INVALID:
        api_error(resp, 400, "the engine refused the key; nothing changed");
        break;
    default:
        api_error(resp, 500, "%s", rumor_strerror(rc));
        break;
    }
    return true;
}

static void answer_list(api_response *resp, kv_call *c)
{
    if (c->nrows > 1)
        qsort(c->rows, c->nrows, sizeof *c->rows, by_key);
    json_t *keys = json_array();
    for (size_t i = 0; keys && i < c->nrows; i++)
        json_array_append_new(keys, row_json(c, &c->rows[i], true));
    json_t *o =
        json_pack("{s:o,s:I}", "keys", keys ? keys : json_array(), "count", (json_int_t)c->nrows);
    if (o && c->space == SPACE_NODE) {
        json_object_set_new(o, "node", json_string(c->node ? c->node : c->a->node));
        json_object_set_new(o, "max_version", json_integer((json_int_t)c->info.max_version));
    }
    json_answer(resp, 200, o);
}

/* ---- the request ---- */

typedef struct kv_route {
    kv_space space;
    char node[RUMOR_NAME_MAX + 1]; /* SPACE_NODE from /v1/nodes/NAME; empty = this node */
    const char *key;               /* NULL for a list */
    bool remote;                   /* /v1/nodes/...: read-only */
} kv_route;

/* Splits the path; false when it is not a key-value path. */
static bool parse_path(const char *path, kv_route *r, api_response *resp, bool *done)
{
    memset(r, 0, sizeof *r);
    *done = false;
    if (strcmp(path, "/v1/kv") == 0 || strncmp(path, "/v1/kv/", 7) == 0) {
        r->space = SPACE_SHARED;
        r->key = path[6] ? path + 7 : NULL;
        return true;
    }
    if (strcmp(path, "/v1/state") == 0 || strncmp(path, "/v1/state/", 10) == 0) {
        r->space = SPACE_NODE;
        r->key = path[9] ? path + 10 : NULL;
        return true;
    }
    if (strncmp(path, "/v1/nodes/", 10) != 0)
        return false;
    const char *name = path + 10, *st = strstr(name, "/state");
    while (st && st[6] != '\0' && st[6] != '/')
        st = strstr(st + 1, "/state");
    if (!st || st == name || (size_t)(st - name) > RUMOR_NAME_MAX) {
        api_error(resp, 404, "expected /v1/nodes/NAME/state or /v1/nodes/NAME/state/KEY");
        *done = true;
        return true;
    }
    r->space = SPACE_NODE;
    r->remote = true;
    memcpy(r->node, name, (size_t)(st - name));
    r->key = st[6] ? st + 7 : NULL;
    return true;
}

static bool want_raw(const api_request *req, api_response *resp, bool *raw)
{
    const char *v = api_query(req, "raw", 0);
    *raw = v && (!*v || strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
    if (v && !*raw && strcmp(v, "false") != 0 && strcmp(v, "0") != 0) {
        api_error(resp, 400, "?raw takes no value, or true or false");
        return false;
    }
    return true;
}

static bool check_method(const api_request *req, const kv_route *r, api_response *resp)
{
    bool get = strcmp(req->method, "GET") == 0;
    bool write = strcmp(req->method, "PUT") == 0 || strcmp(req->method, "DELETE") == 0;
    if (get || (write && r->key && !r->remote))
        return true;
    if (!r->key)
        api_error(resp, 405, "%s does not accept %s (use GET to list; write keys at %s/KEY)",
                  req->path, req->method, r->space == SPACE_SHARED ? "/v1/kv" : "/v1/state");
    else if (r->remote)
        api_error(resp, 405,
                  "%s does not accept %s: only node %s writes its keyspace (PUT "
                  "/v1/state/KEY on its agent)",
                  req->path, req->method, r->node);
    else
        api_error(resp, 405, "%s does not accept %s (use GET, PUT or DELETE)", req->path,
                  req->method);
    return false;
}

static bool check_request(agent *a, const api_request *req, const kv_route *r, kv_call *c,
                          api_response *resp)
{
    char why[256];
    if (r->key) {
        size_t len = strlen(r->key);
        if (kvapi_check_key(r->key, len, false, why, sizeof why) != 0) {
            api_error(resp, 400, "bad key: %s", why);
            return false;
        }
        if (r->space == SPACE_SHARED && strcmp(r->key, "watch") == 0) {
            api_error(resp, 405,
                      "/v1/kv/watch is the change stream (GET); the shared key "
                      "\"watch\" is reserved");
            return false;
        }
        c->key = r->key;
        c->key_len = len;
    } else {
        const char *p = api_query(req, "prefix", 0);
        c->prefix = p ? p : "";
        c->prefix_len = strlen(c->prefix);
        if (kvapi_check_key(c->prefix, c->prefix_len, true, why, sizeof why) != 0) {
            api_error(resp, 400, "bad prefix: %s", why);
            return false;
        }
    }
    if (c->op == OP_PUT) {
        if (req->body_too_large) {
            api_error(resp, 413,
                      "value larger than %zu bytes; the limit is %u (kv_value_bytes_max); "
                      "nothing changed",
                      http_body_max(a), a->engine.kv_value_bytes_max);
            return false;
        }
        if (req->body_len > a->engine.kv_value_bytes_max) {
            api_error(resp, 413,
                      "value is %zu bytes; the limit is %u (kv_value_bytes_max); nothing "
                      "changed",
                      req->body_len, a->engine.kv_value_bytes_max);
            return false;
        }
        c->value = req->body;
        c->value_len = req->body_len;
    }
    return true;
}

static void answer_write(api_response *resp, kv_call *c)
{
    if (c->save_failed) {
        api_error(resp, 500, "the write is applied but not saved: %s", c->save_err);
        return;
    }
    if (c->nrows == 0) {
        api_error(resp, 500, "the write is applied but could not be read back");
        return;
    }
    json_t *o = row_json(c, &c->rows[0], false);
    if (o && c->op == OP_DELETE)
        json_object_set_new(o, "deleted", json_true());
    json_answer(resp, 200, o);
}

bool kvapi_handle(agent *a, const api_request *req, api_response *resp)
{
    kv_route r;
    bool done, raw = false;
    if (!parse_path(req->path, &r, resp, &done))
        return false;
    if (done || !check_method(req, &r, resp) || !want_raw(req, resp, &raw))
        return true;
    kv_call c = {.a = a, .space = r.space, .node = r.node[0] ? r.node : NULL};
    c.op = !r.key                            ? OP_LIST
           : strcmp(req->method, "GET") == 0 ? OP_GET
           : strcmp(req->method, "PUT") == 0 ? OP_PUT
                                             : OP_DELETE;
    if (!check_request(a, req, &r, &c, resp))
        return true;
    if (rumor_runtime_call(a->rt, on_loop, &c) != 0) {
        api_error(resp, 503, "the agent is shutting down");
        return true;
    }
    /* A member that never wrote has no keyspace yet: an empty one, not an unknown node. */
    if (c.op == OP_LIST && c.rc == RUMOR_ERR_NOT_FOUND && c.member_known)
        c.rc = RUMOR_OK;
    if (!engine_error(resp, &c, c.rc)) {
        if (c.op == OP_LIST)
            answer_list(resp, &c);
        else if (c.op != OP_GET)
            answer_write(resp, &c);
        else if (raw)
            answer_raw(resp, &c, &c.rows[0]);
        else
            json_answer(resp, 200, row_json(&c, &c.rows[0], true));
    }
    call_free(&c);
    return true;
}
