/*
 * Thread-safe entry points. Work from another thread is queued under a mutex, the loop is woken
 * with uv_async_send(), and the caller waits on a condition variable until the loop thread has
 * run it. The engine itself is only ever touched on the loop thread.
 */
#include "rt_internal.h"

#include <stdlib.h>
#include <string.h>

static void run_queued(rumor_runtime *rt)
{
    uv_mutex_lock(&rt->mu);
    rt_call *c = rt->calls_head;
    rt->calls_head = rt->calls_tail = NULL;
    uv_mutex_unlock(&rt->mu);
    while (c) {
        rt_call *next = c->next; /* c lives on the waiting thread's stack until done is set */
        c->fn(rt, c->arg);
        uv_mutex_lock(&rt->mu);
        c->result = 0;
        c->done = true;
        uv_cond_broadcast(&rt->cv);
        uv_mutex_unlock(&rt->mu);
        c = next;
    }
}

/* The async handle's callback: runs what other threads queued. */
void rt_async_cb(uv_async_t *h)
{
    rumor_runtime *rt = h->data;
    run_queued(rt);
    rumor_runtime_pump(rt);
}

int rumor_runtime_call(rumor_runtime *rt, void (*fn)(rumor_runtime *rt, void *arg), void *arg)
{
    rt_call c = {.fn = fn, .arg = arg, .result = RUMOR_ERR_STATE};
    uv_mutex_lock(&rt->mu);
    uv_thread_t self = uv_thread_self();
    bool on_loop = rt->started && uv_thread_equal(&self, &rt->loop_thread);
    bool accepting = !rt->calls_closed && (rt->started || rt->thread_running);
    if (on_loop || !accepting) {
        uv_mutex_unlock(&rt->mu);
        if (!on_loop || rt->closing)
            return RUMOR_ERR_STATE;
        fn(rt, arg);
        rumor_runtime_pump(rt);
        return 0;
    }
    if (rt->calls_tail)
        rt->calls_tail->next = &c;
    else
        rt->calls_head = &c;
    rt->calls_tail = &c;
    uv_async_send(&rt->async);
    while (!c.done)
        uv_cond_wait(&rt->cv, &rt->mu);
    uv_mutex_unlock(&rt->mu);
    return c.result;
}

void rumor_runtime_refuse_calls(rumor_runtime *rt)
{
    uv_mutex_lock(&rt->mu);
    rt->calls_closed = true;
    for (rt_call *c = rt->calls_head; c; c = c->next) {
        c->result = RUMOR_ERR_STATE;
        c->done = true;
    }
    rt->calls_head = rt->calls_tail = NULL;
    uv_cond_broadcast(&rt->cv);
    uv_mutex_unlock(&rt->mu);
}

/* ---- the thread-safe API ---- */

typedef struct call_args {
    const void *in;
    size_t n;
    bool flag;
    int rc;
    void *out;
    size_t *nout;
    rumor_runtime_counters *counters;
} call_args;

static void do_join(rumor_runtime *rt, void *arg)
{
    call_args *a = arg;
    a->rc = rt_join_start(rt, a->in, a->n, a->flag);
}

int rumor_runtime_join(rumor_runtime *rt, const char *const *hosts, size_t nhosts, bool retry)
{
    call_args a = {.in = hosts, .n = nhosts, .flag = retry};
    int rc = rumor_runtime_call(rt, do_join, &a);
    return rc ? rc : a.rc;
}

static void do_join_addrs(rumor_runtime *rt, void *arg)
{
    call_args *a = arg;
    rt->counters.joins++;
    a->rc = rumor_node_join(rt->node, a->in, a->n, rt_now(rt));
}

int rumor_runtime_join_addrs(rumor_runtime *rt, const rumor_addr *addrs, size_t n)
{
    call_args a = {.in = addrs, .n = n};
    int rc = rumor_runtime_call(rt, do_join_addrs, &a);
    return rc ? rc : a.rc;
}

static void do_leave(rumor_runtime *rt, void *arg)
{
    call_args *a = arg;
    a->rc = rumor_node_leave(rt->node, rt_now(rt));
}

int rumor_runtime_leave(rumor_runtime *rt)
{
    call_args a = {0};
    int rc = rumor_runtime_call(rt, do_leave, &a);
    return rc ? rc : a.rc;
}

static void do_set_meta(rumor_runtime *rt, void *arg)
{
    call_args *a = arg;
    a->rc = rumor_node_set_meta(rt->node, a->in, a->n, rt_now(rt));
}

int rumor_runtime_set_meta(rumor_runtime *rt, const uint8_t *meta, size_t len)
{
    call_args a = {.in = meta, .n = len};
    int rc = rumor_runtime_call(rt, do_set_meta, &a);
    return rc ? rc : a.rc;
}

static int copy_member(rumor_runtime_member *dst, const rumor_member *m)
{
    memset(dst, 0, sizeof *dst);
    snprintf(dst->name, sizeof dst->name, "%s", m->name);
    dst->addr = m->addr;
    dst->incarnation = m->incarnation;
    dst->state = m->state;
    dst->is_self = m->is_self;
    if (m->public_key) {
        dst->has_public_key = true;
        memcpy(dst->public_key, m->public_key, sizeof dst->public_key);
    }
    if (m->meta_len > 0) {
        dst->meta = malloc(m->meta_len);
        if (!dst->meta)
            return RUMOR_ERR_NOMEM;
        memcpy(dst->meta, m->meta, m->meta_len);
        dst->meta_len = m->meta_len;
    }
    return 0;
}

static void do_members(rumor_runtime *rt, void *arg)
{
    call_args *a = arg;
    size_t n = rumor_node_member_count(rt->node), got = 0;
    rumor_runtime_member *out = calloc(n ? n : 1, sizeof *out);
    a->rc = out ? 0 : RUMOR_ERR_NOMEM;
    for (size_t i = 0; out && i < n && a->rc == 0; i++) {
        rumor_member m;
        if (rumor_node_member_at(rt->node, i, &m) != 0)
            continue;
        a->rc = copy_member(&out[got++], &m);
    }
    if (a->rc != 0) {
        rumor_runtime_members_free(out, got);
        return;
    }
    *(rumor_runtime_member **)a->out = out;
    *a->nout = got;
}

int rumor_runtime_members(rumor_runtime *rt, rumor_runtime_member **out, size_t *n)
{
    call_args a = {.out = out, .nout = n};
    *out = NULL;
    *n = 0;
    int rc = rumor_runtime_call(rt, do_members, &a);
    return rc ? rc : a.rc;
}

void rumor_runtime_members_free(rumor_runtime_member *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++)
        free(m[i].meta);
    free(m);
}

static void do_stats(rumor_runtime *rt, void *arg)
{
    call_args *a = arg;
    if (a->out)
        rumor_node_stats(rt->node, a->out);
    if (a->counters)
        *a->counters = rt->counters;
}

int rumor_runtime_stats(rumor_runtime *rt, rumor_stats *stats, rumor_runtime_counters *counters)
{
    call_args a = {.out = stats, .counters = counters};
    return rumor_runtime_call(rt, do_stats, &a);
}

/* ---- thread mode ---- */

static void thread_main(void *arg)
{
    rumor_runtime *rt = arg;
    if (rumor_runtime_start(rt) != 0)
        rumor_runtime_close(rt, NULL, NULL);
    uv_run(rt->loop, UV_RUN_DEFAULT);
}

int rumor_runtime_start_thread(rumor_runtime *rt)
{
    if (!rt->owns_loop || rt->thread_running)
        return RUMOR_ERR_STATE;
    rt->thread_running = true; /* calls queue up until the loop runs them */
    if (uv_thread_create(&rt->thread, thread_main, rt) != 0) {
        rt->thread_running = false;
        return RUMOR_ERR_STATE;
    }
    return 0;
}

static void do_close(rumor_runtime *rt, void *arg)
{
    (void)arg;
    rumor_runtime_close(rt, NULL, NULL);
}

void rumor_runtime_stop_thread(rumor_runtime *rt)
{
    if (!rt || !rt->thread_running)
        return;
    (void)rumor_runtime_call(rt, do_close, NULL);
    uv_thread_join(&rt->thread);
    rt->thread_running = false;
    rumor_runtime_del(rt);
}
