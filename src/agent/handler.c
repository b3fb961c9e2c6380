/*
 * Event handlers (--event-handler [FILTER=]SCRIPT), as Serf runs them: `/bin/sh -c SCRIPT` with
 * the event in the environment (RUMOR_EVENT, RUMOR_SELF_NAME, RUMOR_SELF_ADDR, RUMOR_TAG_<K>)
 * and the member on stdin ("name<TAB>addr<TAB>status<TAB>k=v,k=v"). Each handler runs one
 * script at a time in event order, from a bounded queue, never blocking the loop. A script that
 * runs past the timeout is killed with its whole process group; failures are logged.
 */
#include "agent.h"

#include "log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HANDLER_QUEUE_MAX 128u
#define HANDLER_OUT_MAX   1024u

extern char **environ;

typedef struct job {
    struct job *next;
    char *event;
    char *input;
    char *member_env[4];
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
    char out_buf[HANDLER_OUT_MAX];
    size_t out_len;
} running;

struct hspec {
    agent_handlers *owner;
    unsigned mask; /* bit per rumor_event_type */
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
    for (int i = 0; i < 4; i++)
        free(j->member_env[i]);
    free(j);
}

/* "member-join,member-failed=script" -> mask; member-left/member-reaped are accepted too. */
static int parse_filter(const char *text, size_t len, unsigned *mask)
{
    char buf[256];
    if (len >= sizeof buf)
        return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    *mask = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        unsigned bit = 0;
        if (strcmp(tok, "*") == 0)
            bit = 0x1feu;
        else if (strcmp(tok, "member-left") == 0)
            bit = 1u << RUMOR_EVENT_MEMBER_LEFT;
        else if (strcmp(tok, "member-reaped") == 0)
            bit = 1u << RUMOR_EVENT_MEMBER_REAPED;
        for (int t = RUMOR_EVENT_MEMBER_JOIN; t <= RUMOR_EVENT_LEAVE_DONE && !bit; t++)
            if (strcmp(tok, rumor_event_type_name((rumor_event_type)t)) == 0)
                bit = 1u << t;
        if (!bit)
            return -1;
        *mask |= bit;
    }
    return *mask ? 0 : -1;
}

/* "member-join,member-failed" is a filter; "FOO=1 ./script" is a script with a variable. */
static bool looks_like_filter(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!((text[i] >= 'a' && text[i] <= 'z') || text[i] == '-' || text[i] == ',' ||
              text[i] == '*'))
            return false;
    return len > 0;
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
        s->mask = 0xfeu & ~(1u << RUMOR_EVENT_LEAVE_DONE);
        if (eq && looks_like_filter(text, (size_t)(eq - text))) {
            if (parse_filter(text, (size_t)(eq - text), &s->mask) != 0) {
                snprintf(err, cap,
                         "--event-handler \"%s\": unknown event in the filter "
                         "(known: member-join, member-update, member-suspect, "
                         "member-alive, member-failed, member-leave, member-reap, "
                         "leave-done, *)",
                         a->cfg.handlers.v[i]);
                h->n--;
                handlers_close(h);
                handlers_free(h);
                return -1;
            }
            text = eq + 1;
        }
        if (!*text || !(s->script = strdup(text))) {
            snprintf(err, cap, "--event-handler \"%s\": no script after the filter",
                     a->cfg.handlers.v[i]);
            h->n--;
            handlers_close(h);
            handlers_free(h);
            return -1;
        }
    }
    *out = h;
    return 0;
}

static char *cat2(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
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

static job *job_new(agent *a, const rumor_event *ev)
{
    job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    char addr[64];
    rumor_addr_format(&ev->member.addr, addr, sizeof addr);
    json_t *tags = agent_tags_from_meta(ev->member.meta, ev->member.meta_len);
    char *tt = tags ? tags_text(tags) : NULL;
    json_decref(tags);
    size_t len = strlen(ev->member.name) + strlen(addr) + (tt ? strlen(tt) : 0) + 32;
    j->event = strdup(rumor_event_type_name(ev->type));
    j->input = malloc(len);
    if (j->input)
        snprintf(j->input, len, "%s\t%s\t%s\t%s\n", ev->member.name, addr,
                 rumor_member_state_name(ev->member.state), tt ? tt : "");
    free(tt);
    j->member_env[0] = cat2("RUMOR_MEMBER_NAME=", ev->member.name);
    j->member_env[1] = cat2("RUMOR_MEMBER_ADDR=", addr);
    j->member_env[2] = cat2("RUMOR_EVENT=", j->event ? j->event : "");
    (void)a;
    if (!j->event || !j->input) {
        job_free(j);
        return NULL;
    }
    return j;
}

static void start_next(hspec *s);

static void run_finished(running *r)
{
    hspec *s = r->spec;
    agent *a = s->owner->a;
    bool failed = r->timed_out || r->status != 0 || r->term_signal != 0;
    r->out_buf[r->out_len < HANDLER_OUT_MAX ? r->out_len : HANDLER_OUT_MAX - 1] = '\0';
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
    if (r->out_len < HANDLER_OUT_MAX - 1)
        *buf = uv_buf_init(r->out_buf + r->out_len, (unsigned)(HANDLER_OUT_MAX - 1 - r->out_len));
    else
        *buf = uv_buf_init(sink, sizeof sink); /* output beyond the cap is read and dropped */
}

static void out_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    running *r = s->data;
    if (n > 0 && buf->base != NULL && r->out_len < HANDLER_OUT_MAX - 1)
        r->out_len += (size_t)n;
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
    (void)strv_push(extra, j->member_env[2] ? j->member_env[2] : "RUMOR_EVENT=");
    for (int i = 0; i < 2; i++)
        if (j->member_env[i])
            (void)strv_push(extra, j->member_env[i]);
    char *s = cat2("RUMOR_SELF_NAME=", a->node);
    if (s && strv_push(extra, s) == 0) {
        free(s);
        s = cat2("RUMOR_SELF_ADDR=", a->advertise);
        if (s)
            (void)strv_push(extra, s);
    }
    free(s);
    json_object_foreach(a->tags, k, v)
    {
        snprintf(key, sizeof key, "RUMOR_TAG_%s=", k);
        for (char *c = key + 10; *c && *c != '='; c++)
            if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')))
                *c = '_';
        char *e = cat2(key, json_is_string(v) ? json_string_value(v) : "");
        if (e)
            (void)strv_push(extra, e);
        free(e);
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
    uv_buf_t b = uv_buf_init(r->job->input, (unsigned)strlen(r->job->input));
    if (uv_write(&r->wreq, (uv_stream_t *)&r->in, &b, 1, in_written) != 0)
        run_close((uv_handle_t *)&r->in);
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
    if (!r) {
        job_free(j);
        return;
    }
    r->spec = s;
    r->job = j;
    s->run = r;
    s->owner->a->handler_counters.runs++;
    (void)spawn(r, s->owner->a);
}

void handlers_event(agent_handlers *h, const rumor_event *ev)
{
    for (size_t i = 0; h && !h->closing && i < h->n; i++) {
        hspec *s = &h->specs[i];
        if (!(s->mask & (1u << ev->type)))
            continue;
        if (s->queued >= HANDLER_QUEUE_MAX) {
            h->a->handler_counters.dropped++;
            agent_log(RUMOR_LOG_WARN, "event handler \"%s\" is behind; dropped a %s event",
                      s->script, rumor_event_type_name(ev->type));
            continue;
        }
        job *j = job_new(h->a, ev);
        if (!j)
            continue;
        if (s->tail)
            s->tail->next = j;
        else
            s->head = j;
        s->tail = j;
        s->queued++;
        start_next(s);
    }
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
        free(h->specs[i].script);
    free(h->specs);
    free(h);
}
