/*
 * User events and queries in the agent, on the loop thread: the engine's tag matcher, the
 * events the engine reports (logged, published to GET /v1/events readers, handed to event
 * handler scripts) and the collection of acks and responses for queries asked through
 * POST /v1/query, whose HTTP threads wait for the deadline without holding the loop.
 */
#include "agent.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void agent_msg_init(agent *a)
{
    uv_mutex_init(&a->msg.mu);
    uv_cond_init(&a->msg.cv);
}

void agent_msg_free(agent *a)
{
    if (a->msg.re_ok)
        regfree(&a->msg.re);
    free(a->msg.re_text);
    a->msg.re_text = NULL;
    a->msg.re_ok = false;
    uv_mutex_destroy(&a->msg.mu);
    uv_cond_destroy(&a->msg.cv);
}

/* ---- names and text ---- */

int agent_msg_check_name(const char *name, char *why, size_t cap)
{
    size_t len = strlen(name);
    if (len == 0) {
        snprintf(why, cap, "the name is empty");
        return -1;
    }
    if (len > RUMOR_EVENT_NAME_MAX) {
        snprintf(why, cap, "the name is %zu bytes long; at most %d", len, RUMOR_EVENT_NAME_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f) {
            snprintf(why, cap, "the name holds a control character (0x%02x at byte %zu)", c, i);
            return -1;
        }
    }
    json_t *s = json_stringn(name, len); /* jansson checks UTF-8 */
    if (!s) {
        snprintf(why, cap, "the name is not valid UTF-8");
        return -1;
    }
    json_decref(s);
    return 0;
}

void agent_json_set_text(json_t *o, const char *field, const void *p, size_t len)
{
    json_t *s = json_stringn(p ? (const char *)p : "", len);
    if (s) {
        json_object_set_new(o, field, s);
        return;
    }
    char name[64]; /* written by an embedding program or a peer: not text */
    snprintf(name, sizeof name, "%s_base64", field);
    json_object_set_new(o, name, agent_b64_json(p, len));
}

/* ---- the tag matcher ---- */

int agent_tag_pattern_check(const char *value, char *why, size_t cap)
{
    /* glibc accepts back-references in extended expressions, and matching them can take
     * exponential time: a query from any peer must not be able to stall the loop. */
    for (const char *p = value; *p; p++) {
        if (*p != '\\')
            continue;
        if (p[1] >= '1' && p[1] <= '9') {
            snprintf(why, cap, "back-references (\\%c) are not supported", p[1]);
            return -1;
        }
        if (p[1])
            p++;
    }
    /* The pattern must stand alone before it is anchored: "a)|(b" would otherwise turn
     * "^(a)|(b)$" into a match of any value that starts with a. */
    regex_t re;
    char msg[128];
    int rc = regcomp(&re, value, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        regerror(rc, &re, msg, sizeof msg);
        snprintf(why, cap, "not a POSIX extended regular expression: %s", msg);
        return -1;
    }
    regfree(&re);
    return 0;
}

/* Compiles "^(value)$" into the one-entry cache; false when the pattern is refused. */
static bool pattern_compile(agent_msg *m, const char *value)
{
    if (m->re_text && strcmp(m->re_text, value) == 0)
        return m->re_ok;
    if (m->re_ok)
        regfree(&m->re);
    free(m->re_text);
    m->re_ok = false;
    m->re_text = strdup(value);
    char why[160];
    if (!m->re_text || agent_tag_pattern_check(value, why, sizeof why) != 0)
        return false;
    size_t len = strlen(value) + 5;
    char *anchored = malloc(len);
    if (!anchored)
        return false;
    snprintf(anchored, len, "^(%s)$", value);
    m->re_ok = regcomp(&m->re, anchored, REG_EXTENDED | REG_NOSUB) == 0;
    free(anchored);
    return m->re_ok;
}

bool agent_query_tag_match(void *ud, const uint8_t *meta, size_t meta_len, const char *key,
                           const char *value)
{
    agent *a = ud;
    if (meta_len == 0)
        return false;
    json_t *tags = json_loadb((const char *)meta, meta_len, 0, NULL);
    json_t *v = json_is_object(tags) ? json_object_get(tags, key) : NULL;
    bool ok = json_is_string(v) && pattern_compile(&a->msg, value) &&
              regexec(&a->msg.re, json_string_value(v), 0, NULL, 0) == 0;
    json_decref(tags);
    return ok;
}

/* ---- collecting answers ---- */

static agent_query *find_pending(agent *a, uint64_t id)
{
    for (agent_query *q = a->msg.pending; q; q = q->next)
        if (q->id == id)
            return q;
    return NULL;
}

static void answer_push(agent_query *q, bool ack, const rumor_event *ev, uint64_t now)
{
    agent_answer **list = ack ? &q->acks : &q->responses;
    size_t *n = ack ? &q->nacks : &q->nresponses, *cap = ack ? &q->acks_cap : &q->responses_cap;
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        agent_answer *p = realloc(*list, c * sizeof *p);
        if (!p) {
            q->truncated = true;
            return;
        }
        *list = p;
        *cap = c;
    }
    agent_answer *x = &(*list)[*n];
    memset(x, 0, sizeof *x);
    x->node = strdup(ev->member.name);
    if (!ack && ev->payload_len) {
        x->payload = malloc(ev->payload_len);
        if (x->payload)
            memcpy(x->payload, ev->payload, ev->payload_len);
    }
    if (!x->node || (!ack && ev->payload_len && !x->payload)) {
        free(x->node);
        free(x->payload);
        q->truncated = true;
        return;
    }
    x->len = ack ? 0 : ev->payload_len;
    x->after_ms = now >= q->asked_at ? now - q->asked_at : 0;
    (*n)++;
}

static void copy_missing(agent_query *q, rumor_node *n, bool acks, strv *out)
{
    size_t count = 0;
    if (rumor_node_query_missing(n, q->id, acks, NULL, 0, &count) != 0 || count == 0)
        return;
    const char **names = calloc(count, sizeof *names);
    if (!names) {
        q->truncated = true;
        return;
    }
    if (rumor_node_query_missing(n, q->id, acks, names, count, &count) == 0)
        for (size_t i = 0; i < count; i++)
            if (strv_push(out, names[i]) != 0)
                q->truncated = true;
    free(names);
}

static void unlink_pending(agent *a, agent_query *q)
{
    for (agent_query **p = &a->msg.pending; *p; p = &(*p)->next) {
        if (*p == q) {
            *p = q->next;
            q->next = NULL;
            return;
        }
    }
}

static void mark_done(agent *a, agent_query *q, bool aborted)
{
    uv_mutex_lock(&a->msg.mu);
    q->done = true;
    q->aborted = aborted;
    uv_cond_broadcast(&a->msg.cv);
    uv_mutex_unlock(&a->msg.mu);
}

/* The counts and the silent members' names, then the engine may forget the query. */
static void finish(agent *a, agent_query *q, const rumor_query_result *r)
{
    rumor_node *n = rumor_runtime_node(a->rt);
    if (r)
        q->result = *r;
    else
        (void)rumor_node_query_result(n, q->id, &q->result);
    if (q->result.request_ack)
        copy_missing(q, n, true, &q->no_ack);
    copy_missing(q, n, false, &q->no_response);
    (void)rumor_node_query_forget(n, q->id);
    unlink_pending(a, q);
    mark_done(a, q, false);
}

void agent_msg_track(agent *a, agent_query *q)
{
    q->next = a->msg.pending;
    a->msg.pending = q;
}

void agent_msg_untrack(agent *a, agent_query *q)
{
    if (!find_pending(a, q->id) || q->done)
        return;
    agent_log(RUMOR_LOG_WARN,
              "query %llu: its deadline passed without a done event; answering "
              "with what arrived",
              (unsigned long long)q->id);
    finish(a, q, NULL);
}

void agent_msg_close(agent *a)
{
    while (a->msg.pending) {
        agent_query *q = a->msg.pending;
        a->msg.pending = q->next;
        q->next = NULL;
        mark_done(a, q, true);
    }
}

void agent_query_free(agent_query *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->nacks; i++)
        free(q->acks[i].node);
    for (size_t i = 0; i < q->nresponses; i++) {
        free(q->responses[i].node);
        free(q->responses[i].payload);
    }
    free(q->acks);
    free(q->responses);
    strv_free(&q->no_ack);
    strv_free(&q->no_response);
    free(q);
}

/* ---- events ---- */

/* User events and queries for GET /v1/events readers (`rumor monitor`). */
static void publish(agent *a, const rumor_event *ev)
{
    json_t *o = json_pack("{s:s,s:I,s:I,s:I}", "type", rumor_event_type_name(ev->type), "ltime",
                          (json_int_t)ev->ltime, "at_ms", (json_int_t)ev->at_ms, "bytes",
                          (json_int_t)ev->payload_len);
    if (!o)
        return;
    agent_json_set_text(o, "name", ev->msg_name, ev->msg_name_len);
    agent_json_set_text(o, "origin", ev->member.name, strlen(ev->member.name));
    json_object_set_new(o, "payload", agent_b64_json(ev->payload, ev->payload_len));
    char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    if (text)
        hub_push(a->hub, rumor_event_type_name(ev->type), text);
    free(text);
    json_decref(o);
}

static void on_user(agent *a, const rumor_event *ev)
{
    agent_log(RUMOR_LOG_INFO, "event user: \"%s\" from %s (ltime %llu, %zu bytes)", ev->msg_name,
              ev->member.name, (unsigned long long)ev->ltime, ev->payload_len);
    publish(a, ev);
    handlers_event(a->handlers, ev);
}

static void on_query(agent *a, const rumor_event *ev)
{
    publish(a, ev);
    size_t n = handlers_event(a->handlers, ev);
    agent_log(RUMOR_LOG_DEBUG, "event query: \"%s\" from %s (ltime %llu, %zu bytes): %s",
              ev->msg_name, ev->member.name, (unsigned long long)ev->ltime, ev->payload_len,
              n ? "handed to the handler" : "no handler takes it, so no response");
}

static void on_done(agent *a, const rumor_event *ev)
{
    const rumor_query_result *r = &ev->query;
    agent_query *q = find_pending(a, ev->query_id);
    agent_log(q ? RUMOR_LOG_INFO : RUMOR_LOG_DEBUG,
              "query %llu done: %u matched, %u acks, %u responses, %u without a response",
              (unsigned long long)ev->query_id, r->matched, r->acks, r->responses, r->no_response);
    if (q)
        finish(a, q, r);
}

void agent_msg_event(agent *a, const rumor_event *ev)
{
    agent_query *q;
    uint64_t now = uv_now(a->loop);
    switch (ev->type) {
    case RUMOR_EVENT_USER:
        on_user(a, ev);
        break;
    case RUMOR_EVENT_QUERY:
        on_query(a, ev);
        break;
    case RUMOR_EVENT_QUERY_ACK:
    case RUMOR_EVENT_QUERY_RESPONSE:
        agent_log(RUMOR_LOG_DEBUG, "query %llu: %s from %s (%zu bytes)",
                  (unsigned long long)ev->query_id,
                  ev->type == RUMOR_EVENT_QUERY_ACK ? "ack" : "response", ev->member.name,
                  ev->payload_len);
        if ((q = find_pending(a, ev->query_id)) != NULL) {
            answer_push(q, ev->type == RUMOR_EVENT_QUERY_ACK, ev, now);
            rumor_query_result r;
            if (q->early && ev->type == RUMOR_EVENT_QUERY_RESPONSE &&
                rumor_node_query_result(rumor_runtime_node(a->rt), q->id, &r) == RUMOR_OK &&
                r.matched > 0 && r.responses >= r.matched)
                finish(a, q, &r); /* nobody is left to wait for */
        }
        break;
    case RUMOR_EVENT_QUERY_DONE:
        on_done(a, ev);
        break;
    default:
        break;
    }
}
