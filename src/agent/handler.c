/*
 * Event handlers (--event-handler [FILTER=]SCRIPT), as Serf runs them: `/bin/sh -c SCRIPT` with
 * the event in the environment and its data on stdin. Membership events: RUMOR_EVENT,
 * RUMOR_MEMBER_NAME, RUMOR_MEMBER_ADDR, and the member on stdin ("name<TAB>addr<TAB>status<TAB>
 * k=v,k=v"). User events: RUMOR_EVENT=user, RUMOR_USER_EVENT (the name), RUMOR_USER_LTIME,
 * RUMOR_ORIGIN, and the payload on stdin. Queries: RUMOR_EVENT=query, RUMOR_QUERY_NAME,
 * RUMOR_QUERY_LTIME, RUMOR_ORIGIN, the payload on stdin, and what the script writes to stdout
 * (at most query_response_bytes_max bytes, possibly none) is sent back as this node's response
 * when it exits. Every script also gets RUMOR_SELF_NAME, RUMOR_SELF_ADDR and RUMOR_TAG_<K>.
 *
 * Each handler runs one script at a time in event order, from a bounded queue, never blocking
 * the loop. A script that runs past the timeout is killed with its whole process group (and a
 * killed query handler does not answer); failures are logged.
 */
#include "agent.h"

#include "log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HANDLER_QUEUE_MAX  128u
#define HANDLER_OUT_MAX    1024u
#define HANDLER_FILTER_MAX 2048u

#define BIT(t)         (1u << (t))
#define MEMBER_BITS    0x1feu /* member-join .. leave-done */
#define DEFAULT_FILTER ((MEMBER_BITS & ~BIT(RUMOR_EVENT_LEAVE_DONE)) | MESSAGE_BITS)
#define MESSAGE_BITS   (BIT(RUMOR_EVENT_USER) | BIT(RUMOR_EVENT_QUERY))

extern char **environ;

typedef struct job {
    struct job *next;
    char *event; /* RUMOR_EVENT's value */
    char *input; /* stdin */
    size_t input_len;
    strv env;          /* the event's own variables, "K=V" */
    uint64_t query_id; /* a query to answer with the script's output; 0 = none */
} job;

typedef struct hspec hspec;

typedef struct running {
    hspec *spec;
    job *job;
    uv_process_t proc;
    uv_pipe_t in, out;
    uv_timer_t timer;
    uv_write_t wreq;
    int open;
    int64_t status;
    int term_signal;
    bool timed_out;
    bool out_over; /* the script wrote more than out_buf holds */
    char *out_buf;
    size_t out_len, out_cap;
} running;

struct hspec {
    agent_handlers *owner;
    unsigned mask;                /* bit per rumor_event_type; USER and QUERY: any name */
    strv user_names, query_names; /* user:NAME and query:NAME */
    char *script;
    job *head, *tail;
    size_t queued;
    running *run;
};

struct agent_handlers {
    agent *a;
    hspec *specs;
    size_t n;
    bool closing;
};

static void job_free(job *j)
{
    if (!j)
        return;
    free(j->event);
    free(j->input);
    strv_free(&j->env);
    free(j);
}

/* One filter token into the spec: a membership event, "user", "query", "user:NAME",
 * "query:NAME" or "*". */
static int parse_token(hspec *s, const char *tok)
{
    if (strcmp(tok, "*") == 0) {
        s->mask |= MEMBER_BITS | MESSAGE_BITS;
        return 0;
    }
    if (strcmp(tok, "user") == 0 || strcmp(tok, "query") == 0) {
        s->mask |= BIT(tok[0] == 'u' ? RUMOR_EVENT_USER : RUMOR_EVENT_QUERY);
        return 0;
    }
    if (strncmp(tok, "user:", 5) == 0 && tok[5])
        return strv_push(&s->user_names, tok + 5);
    if (strncmp(tok, "query:", 6) == 0 && tok[6])
        return strv_push(&s->query_names, tok + 6);
    if (strcmp(tok, "member-left") == 0) {
        s->mask |= BIT(RUMOR_EVENT_MEMBER_LEFT);
        return 0;
    }
    if (strcmp(tok, "member-reaped") == 0) {
        s->mask |= BIT(RUMOR_EVENT_MEMBER_REAPED);
        return 0;
    }
    for (int t = RUMOR_EVENT_MEMBER_JOIN; t <= RUMOR_EVENT_LEAVE_DONE; t++) {
        if (strcmp(tok, rumor_event_type_name((rumor_event_type)t)) == 0) {
            s->mask |= BIT(t);
            return 0;
        }
    }
    return -1;
}

/* "member-join,user:deploy=script" -> the spec's filter. */
static int parse_filter(hspec *s, const char *text, size_t len)
{
    char buf[HANDLER_FILTER_MAX];
    if (len >= sizeof buf)
        return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    s->mask = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (parse_token(s, tok) != 0)
            return -1;
    return s->mask || s->user_names.n || s->query_names.n ? 0 : -1;
}

/* "member-join,user:deploy" is a filter; "FOO=1 ./script" is a script with a variable. A
 * token is lower-case letters, '-' and '*', or "user:"/"query:" and a name without blanks. */
static bool looks_like_filter(const char *text, size_t len)
{
    size_t start = 0;
    if (len == 0)
        return false;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && text[i] != ',')
            continue;
        const char *tok = text + start;
        size_t tl = i - start, skip = 0;
        if (tl > 5 && strncmp(tok, "user:", 5) == 0)
            skip = tl;
        else if (tl > 6 && strncmp(tok, "query:", 6) == 0)
            skip = tl;
        for (size_t k = 0; k < tl; k++) {
            char c = tok[k];
            bool ok = skip ? (c != ' ' && c != '\t' && c != '\'' && c != '"')
                           : ((c >= 'a' && c <= 'z') || c == '-' || c == '*');
            if (!ok)
                return false;
        }
        start = i + 1;
    }
    return true;
}

static void spec_free(hspec *s)
{
    free(s->script);
    strv_free(&s->user_names);
    strv_free(&s->query_names);
}

int handlers_new(agent *a, agent_handlers **out, char *err, size_t cap)
{
    agent_handlers *h = calloc(1, sizeof *h);
    if (!h || !(h->specs = calloc(a->cfg.handlers.n + 1, sizeof *h->specs))) {
        free(h);
        snprintf(err, cap, "out of memory");
        return -1;
    }
    h->a = a;
    for (size_t i = 0; i < a->cfg.handlers.n; i++) {
        const char *text = a->cfg.handlers.v[i], *eq = strchr(text, '=');
        hspec *s = &h->specs[h->n++];
        s->owner = h;
        /* Everything but leave-done by default: that one only concerns this agent. */
        s->mask = DEFAULT_FILTER;
        const char *why = NULL;
        if (eq && looks_like_filter(text, (size_t)(eq - text))) {
            if (parse_filter(s, text, (size_t)(eq - text)) != 0)
                why = "unknown event in the filter (known: member-join, member-update, "
                      "member-suspect, member-alive, member-failed, member-leave, member-reap, "
                      "leave-done, user, user:NAME, query, query:NAME, *)";
            text = eq + 1;
        }
        if (!why && (!*text || !(s->script = strdup(text))))
            why = "no script after the filter";
        if (why) {
            snprintf(err, cap, "--event-handler \"%s\": %s", a->cfg.handlers.v[i], why);
            handlers_close(h);
            handlers_free(h);
            return -1;
        }
    }
    *out = h;
    return 0;
}

static char *tags_text(json_t *tags)
{
    size_t cap = 1, len = 0;
    const char *k;
    json_t *v;
    json_object_foreach(tags, k, v) cap +=
        strlen(k) + 2 + (json_is_string(v) ? strlen(json_string_value(v)) : 0);
    char *s = calloc(1, cap);
    if (!s)
        return NULL;
    json_object_foreach(tags, k, v)
    {
        const char *val = json_is_string(v) ? json_string_value(v) : "";
        len += (size_t)snprintf(s + len, cap - len, "%s%s=%s", len ? "," : "", k, val);
    }
    return s;
}

/* Pushes "NAME=value" (value `len` bytes, no NUL inside) onto `env`; false when out of
 * memory. */
static bool env_push(strv *env, const char *name, const char *value, size_t len)
{
    size_t nl = strlen(name);
    char *s = malloc(nl + len + 2);
    if (!s)
        return false;
    memcpy(s, name, nl);
    s[nl] = '=';
    memcpy(s + nl + 1, value, len);
    s[nl + 1 + len] = '\0';
    int rc = strv_push(env, s);
    free(s);
    return rc == 0;
}

static bool env_push_u64(strv *env, const char *name, uint64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    return env_push(env, name, num, (size_t)n);
}

/* A user event or query: the payload on stdin, the name, Lamport time and origin in the
 * environment. */
static bool job_message(job *j, const rumor_event *ev)
{
    bool user = ev->type == RUMOR_EVENT_USER;
    const char *name = ev->msg_name ? ev->msg_name : "";
    j->input_len = ev->payload_len;
    j->input = malloc(ev->payload_len + 1);
    if (!j->input)
        return false;
    if (ev->payload_len)
        memcpy(j->input, ev->payload, ev->payload_len);
    j->query_id = user ? 0 : ev->query_id;
    return env_push(&j->env, "RUMOR_EVENT", j->event, strlen(j->event)) &&
           env_push(&j->env, user ? "RUMOR_USER_EVENT" : "RUMOR_QUERY_NAME", name, strlen(name)) &&
           env_push_u64(&j->env, user ? "RUMOR_USER_LTIME" : "RUMOR_QUERY_LTIME", ev->ltime) &&
           env_push(&j->env, "RUMOR_ORIGIN", ev->member.name, strlen(ev->member.name));
}

/* A membership event: the member on stdin and in the environment. */
static bool job_member(job *j, const rumor_event *ev)
{
    char addr[64];
    rumor_addr_format(&ev->member.addr, addr, sizeof addr);
    json_t *tags = agent_tags_from_meta(ev->member.meta, ev->member.meta_len);
    char *tt = tags ? tags_text(tags) : NULL;
    json_decref(tags);
    size_t len = strlen(ev->member.name) + strlen(addr) + (tt ? strlen(tt) : 0) + 32;
    j->input = malloc(len);
    if (j->input)
        j->input_len = (size_t)snprintf(j->input, len, "%s\t%s\t%s\t%s\n", ev->member.name, addr,
                                        rumor_member_state_name(ev->member.state), tt ? tt : "");
    free(tt);
    return j->input && env_push(&j->env, "RUMOR_EVENT", j->event, strlen(j->event)) &&
           env_push(&j->env, "RUMOR_MEMBER_NAME", ev->member.name, strlen(ev->member.name)) &&
           env_push(&j->env, "RUMOR_MEMBER_ADDR", addr, strlen(addr));
}

static job *job_new(const rumor_event *ev)
{
    job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    bool msg = ev->type == RUMOR_EVENT_USER || ev->type == RUMOR_EVENT_QUERY;
    j->event = strdup(rumor_event_type_name(ev->type));
    if (!j->event || !(msg ? job_message(j, ev) : job_member(j, ev))) {
        job_free(j);
        return NULL;
    }
    return j;
}

static void start_next(hspec *s);

/* A query handler ended: its output is this node's response. */
static void respond(running *r, agent *a)
{
    const char *script = r->spec->script;
    rumor_node *n = rumor_runtime_node(a->rt);
    int rc = RUMOR_ERR_STATE;
    if (r->timed_out) {
        a->msg.handler_response_fails++; /* killed: it did not finish its answer */
        return;
    }
    if (r->out_over) {
        a->msg.handler_response_fails++;
        agent_log(RUMOR_LOG_WARN,
                  "query handler \"%s\" wrote more than query_response_bytes_max (%u) bytes; "
                  "no response sent",
                  script, a->engine.query_response_bytes_max);
        return;
    }
    if (n)
        rc = rumor_node_query_respond(n, r->job->query_id, r->out_buf, r->out_len, uv_now(a->loop));
    if (rc == RUMOR_OK) {
        a->msg.handler_responses++;
        rumor_runtime_pump(a->rt);
    } else if (rc == RUMOR_ERR_STATE) { /* another handler answered first: not a failure */
        agent_log(RUMOR_LOG_DEBUG, "query handler \"%s\": the query was already answered", script);
    } else {
        a->msg.handler_response_fails++;
        agent_log(RUMOR_LOG_WARN, "query handler \"%s\": response not sent: %s%s", script,
                  rumor_strerror(rc),
                  rc == RUMOR_ERR_EXPIRED ? " (the script ended after the query's deadline)" : "");
    }
}

static void run_finished(running *r)
{
    hspec *s = r->spec;
    agent *a = s->owner->a;
    bool failed = r->timed_out || r->status != 0 || r->term_signal != 0;
    if (r->job->query_id && !s->owner->closing)
        respond(r, a);
    r->out_buf[r->out_len < r->out_cap ? r->out_len : r->out_cap - 1] = '\0';
    if (r->timed_out) {
        a->handler_counters.timeouts++;
        agent_log(RUMOR_LOG_WARN, "event handler \"%s\" (%s) ran past %u ms and was killed",
                  s->script, r->job->event, a->cfg.handler_timeout_ms);
    } else if (failed) {
        a->handler_counters.failures++;
        agent_log(RUMOR_LOG_WARN, "event handler \"%s\" (%s) failed: exit %lld signal %d: %s",
                  s->script, r->job->event, (long long)r->status, r->term_signal, r->out_buf);
    } else {
        agent_log(RUMOR_LOG_DEBUG, "event handler \"%s\" (%s) done: %s", s->script, r->job->event,
                  r->out_buf);
    }
    job_free(r->job);
    free(r->out_buf);
    free(r);
    s->run = NULL;
    start_next(s);
}

static void run_handle_closed(uv_handle_t *h)
{
    running *r = h->data;
    if (--r->open == 0)
        run_finished(r);
}

static void run_close(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, run_handle_closed);
}

static void exit_cb(uv_process_t *p, int64_t status, int term_signal)
{
    running *r = p->data;
    r->status = status;
    r->term_signal = term_signal;
    uv_timer_stop(&r->timer);
    run_close((uv_handle_t *)&r->timer);
    run_close((uv_handle_t *)&r->proc);
    run_close((uv_handle_t *)&r->in);
    run_close((uv_handle_t *)&r->out);
}

static void timeout_cb(uv_timer_t *t)
{
    running *r = t->data;
    r->timed_out = true;
    /* The script ran detached in its own process group: kill the group, children too. */
    (void)uv_kill(-r->proc.pid, SIGKILL);
}

static void out_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    running *r = h->data;
    static char sink[256];
    if (r->out_len + 1 < r->out_cap) /* one byte stays free for the NUL of the log line */
        *buf = uv_buf_init(r->out_buf + r->out_len, (unsigned)(r->out_cap - 1 - r->out_len));
    else
        *buf = uv_buf_init(sink, sizeof sink); /* output beyond the cap is read and dropped */
}

static void out_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    running *r = s->data;
    if (n > 0 && buf->base == r->out_buf + r->out_len)
        r->out_len += (size_t)n;
    else if (n > 0)
        r->out_over = true;
    if (n < 0)
        run_close((uv_handle_t *)s);
}

static void in_written(uv_write_t *w, int status)
{
    (void)status; /* a script that does not read stdin is fine */
    running *r = w->data;
    run_close((uv_handle_t *)&r->in);
}

/* environ plus the event's variables; the strings are freed after uv_spawn copied them. */
static char **build_env(agent *a, job *j, strv *extra)
{
    char key[200];
    const char *k;
    json_t *v;
    for (size_t i = 0; i < j->env.n; i++)
        (void)strv_push(extra, j->env.v[i]);
    (void)env_push(extra, "RUMOR_SELF_NAME", a->node, strlen(a->node));
    (void)env_push(extra, "RUMOR_SELF_ADDR", a->advertise, strlen(a->advertise));
    json_object_foreach(a->tags, k, v)
    {
        snprintf(key, sizeof key, "RUMOR_TAG_%s", k);
        for (char *c = key + 10; *c; c++)
            if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')))
                *c = '_';
        const char *val = json_is_string(v) ? json_string_value(v) : "";
        (void)env_push(extra, key, val, strlen(val));
    }
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + extra->n + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t out = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "RUMOR_", 6) != 0)
            env[out++] = environ[i];
    for (size_t i = 0; i < extra->n; i++)
        env[out++] = extra->v[i];
    return env;
}

/* Fails a job that never started: closes the three handles that exist. */
static void fail_unstarted(running *r)
{
    r->open = 3;
    r->status = 127;
    run_close((uv_handle_t *)&r->timer);
    run_close((uv_handle_t *)&r->in);
    run_close((uv_handle_t *)&r->out);
}

static int spawn(running *r, agent *a)
{
    uv_loop_t *loop = a->loop;
    char *args[] = {"/bin/sh", "-c", r->spec->script, NULL};
    strv extra = {0};
    char **env = build_env(a, r->job, &extra);
    uv_pipe_init(loop, &r->in, 0);
    uv_pipe_init(loop, &r->out, 0);
    uv_timer_init(loop, &r->timer);
    r->in.data = r->out.data = r->timer.data = r->proc.data = r->wreq.data = r;
    r->open = 4;
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&r->in;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&r->out;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    uv_process_options_t o = {.file = "/bin/sh",
                              .args = args,
                              .env = env,
                              .exit_cb = exit_cb,
                              .stdio_count = 3,
                              .stdio = stdio,
                              .flags = UV_PROCESS_DETACHED};
    if (!env) { /* out of memory: nothing spawned, and the process handle was never set up */
        fail_unstarted(r);
        strv_free(&extra);
        return -1;
    }
    int rc = uv_spawn(loop, &r->proc, &o);
    free(env);
    strv_free(&extra);
    if (rc != 0) { /* uv_spawn initialised the handle even though it failed: close it too */
        agent_log(RUMOR_LOG_WARN, "event handler \"%s\": cannot start: %s", r->spec->script,
                  uv_strerror(rc));
        r->status = 127;
        exit_cb(&r->proc, 127, 0);
        return -1;
    }
    uv_timer_start(&r->timer, timeout_cb, a->cfg.handler_timeout_ms, 0);
    uv_read_start((uv_stream_t *)&r->out, out_alloc, out_read);
    uv_buf_t b = uv_buf_init(r->job->input, (unsigned)r->job->input_len);
    if (r->job->input_len == 0 || uv_write(&r->wreq, (uv_stream_t *)&r->in, &b, 1, in_written) != 0)
        run_close((uv_handle_t *)&r->in); /* nothing to say: the script reads end of file */
    return 0;
}

static void start_next(hspec *s)
{
    if (s->run || !s->head || s->owner->closing)
        return;
    job *j = s->head;
    s->head = j->next;
    if (!s->head)
        s->tail = NULL;
    s->queued--;
    running *r = calloc(1, sizeof *r);
    agent *a = s->owner->a;
    /* A query handler's output is its answer: room for the largest the engine sends. */
    if (r) {
        r->out_cap = j->query_id ? (size_t)a->engine.query_response_bytes_max + 1 : HANDLER_OUT_MAX;
        r->out_buf = malloc(r->out_cap);
    }
    if (!r || !r->out_buf) {
        free(r);
        job_free(j);
        return;
    }
    r->spec = s;
    r->job = j;
    s->run = r;
    s->owner->a->handler_counters.runs++;
    (void)spawn(r, s->owner->a);
}

/* Whether spec `s` takes event `ev`. */
static bool takes(const hspec *s, const rumor_event *ev)
{
    if (s->mask & BIT(ev->type))
        return true;
    const strv *names = ev->type == RUMOR_EVENT_USER    ? &s->user_names
                        : ev->type == RUMOR_EVENT_QUERY ? &s->query_names
                                                        : NULL;
    for (size_t i = 0; names && ev->msg_name && i < names->n; i++)
        if (strcmp(names->v[i], ev->msg_name) == 0)
            return true;
    return false;
}

size_t handlers_event(agent_handlers *h, const rumor_event *ev)
{
    size_t queued = 0;
    for (size_t i = 0; h && !h->closing && i < h->n; i++) {
        hspec *s = &h->specs[i];
        if (!takes(s, ev))
            continue;
        if (s->queued >= HANDLER_QUEUE_MAX) {
            h->a->handler_counters.dropped++;
            agent_log(RUMOR_LOG_WARN, "event handler \"%s\" is behind; dropped a %s event",
                      s->script, rumor_event_type_name(ev->type));
            continue;
        }
        job *j = job_new(ev);
        if (!j)
            continue;
        if (s->tail)
            s->tail->next = j;
        else
            s->head = j;
        s->tail = j;
        s->queued++;
        queued++;
        start_next(s);
    }
    return queued;
}

/* Drops queued events and kills running scripts; their handles close on the loop. The struct
 * itself is freed once nothing runs (on process exit at the latest). */
void handlers_close(agent_handlers *h)
{
    if (!h)
        return;
    h->closing = true;
    for (size_t i = 0; i < h->n; i++) {
        hspec *s = &h->specs[i];
        while (s->head) {
            job *j = s->head;
            s->head = j->next;
            job_free(j);
        }
        s->tail = NULL;
        s->queued = 0;
        if (s->run && s->run->proc.pid > 0)
            (void)uv_kill(-s->run->proc.pid, SIGKILL);
    }
}

void handlers_free(agent_handlers *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        spec_free(&h->specs[i]);
    free(h->specs);
    free(h);
}
