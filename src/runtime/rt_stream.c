/*
 * TCP: the listener, inbound and outbound connections, and the engine's stream operations.
 * Every connection has an idle timer so a peer that connects and sends nothing is closed after
 * the stream timeout, and a cap on unread outbound bytes so a peer that never reads cannot make
 * the agent buffer without bound.
 */
#include "rt_internal.h"

#include <stdlib.h>
#include <string.h>

static void conn_handle_closed(uv_handle_t *h)
{
    rt_conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    rumor_runtime *rt = c->rt;
    if (c->prev)
        c->prev->next = c->next;
    else
        rt->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    rt->nconns--;
    free(c->buf);
    free(c);
    rt_maybe_closed(rt);
}

void rt_conn_close(rt_conn *c, bool notify_engine)
{
    if (c->closing)
        return;
    rumor_runtime *rt = c->rt;
    c->closing = true;
    if (c->engine_open && notify_engine && !rt->closing) {
        c->engine_open = false;
        rumor_node_stream_closed(rt->node, c->id, rt_now(rt));
        rt->repump = true;
    }
    c->engine_open = false;
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
    uv_close((uv_handle_t *)&c->idle, conn_handle_closed);
}

void rt_conn_touch(rt_conn *c)
{
    c->last_ms = rt_now(c->rt);
}

static void idle_cb(uv_timer_t *t)
{
    rt_conn *c = t->data;
    uint64_t now = rt_now(c->rt), quiet = now - c->last_ms;
    if (quiet < c->idle_ms) {
        uv_timer_start(&c->idle, idle_cb, c->idle_ms - quiet, 0);
        return;
    }
    if (c->kind == RT_CONN_SNIFF || c->kind == RT_CONN_STREAM) {
        c->rt->counters.tcp_idle_closed++;
        char a[64];
        rumor_addr_format(&c->peer, a, sizeof a);
        rt_log(c->rt, RUMOR_LOG_DEBUG, "closing idle connection with %s after %u ms", a,
               c->idle_ms);
    }
    rt_conn_close(c, true);
    rumor_runtime_pump(c->rt);
}

rt_conn *rt_conn_new(rumor_runtime *rt, rt_conn_kind kind, uint32_t idle_ms)
{
    rt_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->rt = rt;
    c->kind = kind;
    c->idle_ms = idle_ms ? idle_ms : 10000u;
    uv_tcp_init(rt->loop, &c->tcp);
    uv_timer_init(rt->loop, &c->idle);
    c->tcp.data = c;
    c->idle.data = c;
    c->open_handles = 2;
    c->next = rt->conns;
    if (rt->conns)
        rt->conns->prev = c;
    rt->conns = c;
    rt->nconns++;
    rt_conn_touch(c);
    uv_timer_start(&c->idle, idle_cb, c->idle_ms, 0);
    return c;
}

typedef struct write_req {
    uv_write_t req;
    uint8_t data[];
} write_req;

static void write_cb(uv_write_t *req, int status)
{
    rt_conn *c = req->handle->data;
    free(req);
    if (c->closing)
        return;
    if (status < 0) {
        rt_conn_close(c, true);
        rumor_runtime_pump(c->rt);
        return;
    }
    rt_conn_touch(c);
}

int rt_conn_write(rt_conn *c, const uint8_t *data, size_t len)
{
    if (c->closing || c->shutting_down)
        return RUMOR_ERR_STATE;
    if (c->tcp.write_queue_size + len > RT_WRITE_QUEUE_MAX) {
        c->rt->counters.tcp_write_overflow++;
        rt_conn_close(c, true);
        return RUMOR_ERR_FULL;
    }
    write_req *w = malloc(sizeof *w + len);
    if (!w) {
        rt_conn_close(c, true);
        return RUMOR_ERR_NOMEM;
    }
    memcpy(w->data, data, len); /* the engine's buffer is valid only until its next call */
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, write_cb) != 0) {
        free(w);
        rt_conn_close(c, true);
        return RUMOR_ERR_STATE;
    }
    return 0;
}

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    rumor_runtime *rt = ((rt_conn *)h->data)->rt;
    buf->base = (char *)rt->rbuf;
    buf->len = sizeof rt->rbuf;
}

/* The first bytes of an inbound connection decide what it is. */
static void sniff(rt_conn *c, const uint8_t *data, size_t len)
{
    rumor_runtime *rt = c->rt;
    if (data[0] == RT_TUNNEL_MAGIC0) {
        c->kind = RT_CONN_TUNNEL_IN;
        c->idle_ms = RT_TUNNEL_IDLE_MS;
        rt_tunnel_read(c, data, len);
        return;
    }
    uint64_t id;
    if (rumor_node_stream_accept(rt->node, &c->peer, &id, rt_now(rt)) != 0) {
        rt->counters.tcp_refused++;
        rt_conn_close(c, false);
        return;
    }
    c->kind = RT_CONN_STREAM;
    c->id = id;
    c->engine_open = true;
    int rc = rumor_node_stream_data(rt->node, id, data, len, rt_now(rt));
    if (rc == RUMOR_ERR_AUTH)
        rt_refused(rt, &c->peer);
    if (rc == RUMOR_ERR_NOT_FOUND)
        rt_conn_close(c, false);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    rt_conn *c = s->data;
    rumor_runtime *rt = c->rt;
    if (c->closing || rt->closing)
        return;
    if (nread < 0) {
        rt_conn_close(c, true);
        rumor_runtime_pump(rt);
        return;
    }
    if (nread == 0)
        return;
    rt_conn_touch(c);
    const uint8_t *data = (const uint8_t *)buf->base;
    size_t len = (size_t)nread;
    switch (c->kind) {
    case RT_CONN_SNIFF:
        sniff(c, data, len);
        break;
    case RT_CONN_STREAM: {
        int rc = c->engine_open ? rumor_node_stream_data(rt->node, c->id, data, len, rt_now(rt))
                                : RUMOR_OK;
        if (rc == RUMOR_ERR_AUTH)
            rt_refused(rt, &c->peer);
        if (rc == RUMOR_ERR_NOT_FOUND)
            c->engine_open = false;
        break;
    }
    case RT_CONN_TUNNEL_IN:
        rt_tunnel_read(c, data, len);
        break;
    case RT_CONN_TUNNEL_OUT: /* the receiving side of a tunnel never talks back */
        rt_conn_close(c, false);
        break;
    }
    rumor_runtime_pump(rt);
}

static void on_connection(uv_stream_t *server, int status)
{
    rumor_runtime *rt = server->data;
    if (status < 0 || rt->closing)
        return;
    rt_conn *c = rt_conn_new(rt, RT_CONN_SNIFF, rt->opt.settings.stream_timeout_ms);
    if (!c)
        return;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        rt_conn_close(c, false);
        return;
    }
    rt->counters.tcp_accepted++;
    /* Connections beyond what the engine may use are closed at once, so a flood of idle
     * clients cannot exhaust file descriptors. */
    if (rt->nconns > (size_t)rt->opt.settings.streams_max + 64u) {
        rt->counters.tcp_refused++;
        rt_conn_close(c, false);
        return;
    }
    struct sockaddr_storage ss;
    int len = (int)sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0 ||
        rumor_runtime_addr_from_sockaddr((struct sockaddr *)&ss, &c->peer) != 0) {
        rt_conn_close(c, false);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, read_cb);
}

int rt_stream_listen(rumor_runtime *rt)
{
    int rc = uv_listen((uv_stream_t *)&rt->listener, 128, on_connection);
    if (rc != 0) {
        rt_log(rt, RUMOR_LOG_ERROR, "listen: %s", uv_strerror(rc));
        return RUMOR_ERR_STATE;
    }
    return 0;
}

static void on_connect(uv_connect_t *req, int status)
{
    rt_conn *c = req->handle->data;
    if (c->closing)
        return;
    if (status < 0) {
        c->rt->counters.tcp_connect_errors++;
        char a[64];
        rumor_addr_format(&c->peer, a, sizeof a);
        rt_log(c->rt, RUMOR_LOG_DEBUG, "connect to %s: %s", a, uv_strerror(status));
        rt_conn_close(c, true);
        rumor_runtime_pump(c->rt);
        return;
    }
    rt_conn_touch(c);
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, read_cb);
}

/* Connects; writes issued before the connection completes are queued by libuv. */
int rt_conn_connect(rt_conn *c, const rumor_addr *to)
{
    struct sockaddr_storage ss;
    c->peer = *to;
    if (rumor_runtime_addr_to_sockaddr(to, &ss, false) != 0 ||
        uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&ss, on_connect) != 0) {
        c->rt->counters.tcp_connect_errors++;
        return RUMOR_ERR_STATE;
    }
    return 0;
}

static rt_conn *find_stream(rumor_runtime *rt, uint64_t id)
{
    for (rt_conn *c = rt->conns; c; c = c->next)
        if (c->kind == RT_CONN_STREAM && c->id == id && !c->closing)
            return c;
    return NULL;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    rt_conn *c = req->handle->data;
    rt_conn_close(c, false);
}

static void open_stream(rumor_runtime *rt, const rumor_stream_op *op)
{
    rt_conn *c = rt_conn_new(rt, RT_CONN_STREAM, rt->opt.settings.stream_timeout_ms);
    if (!c) {
        rumor_node_stream_closed(rt->node, op->id, rt_now(rt));
        return;
    }
    c->id = op->id;
    c->engine_open = true;
    if (rt_conn_connect(c, &op->to) != 0)
        rt_conn_close(c, true);
}

void rt_stream_op(rumor_runtime *rt, const rumor_stream_op *op)
{
    if (op->kind == RUMOR_STREAM_OPEN) {
        open_stream(rt, op);
        return;
    }
    rt_conn *c = find_stream(rt, op->id);
    if (!c) /* already closed on our side; the engine was told */
        return;
    if (op->kind == RUMOR_STREAM_WRITE) {
        (void)rt_conn_write(c, op->data, op->len);
        return;
    }
    /* CLOSE: the engine forgot the id; flush what is queued, then close. */
    c->engine_open = false;
    if (c->shutting_down)
        return;
    c->shutting_down = true;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        rt_conn_close(c, false);
}

void rt_stream_close_all(rumor_runtime *rt)
{
    for (rt_conn *c = rt->conns; c; c = c->next)
        rt_conn_close(c, false);
}
