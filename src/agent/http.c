/*
 * The HTTP server: libmicrohttpd with a thread per connection (bounded), so a blocking SSE
 * stream or a slow client never stalls the loop. Handlers never touch the engine themselves:
 * they hand work to the loop thread with rumor_runtime_call() and wait for the answer.
 */
#include "agent.h"

#include "log.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HTTP_BODY_MAX        (64u * 1024u)
#define HTTP_CONNECTIONS_MAX 64u
#define HTTP_IDLE_TIMEOUT_S  30u
#define SSE_KEEPALIVE_MS     10000u

struct agent_http {
    struct MHD_Daemon *d;
};

typedef struct req_ctx {
    char *body;
    size_t len;
    bool too_large;
} req_ctx;

typedef struct sse_reader {
    agent *a;
    uint64_t seq;
    char pending[16384];
    size_t len, off;
} sse_reader;

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    sse_reader *r = cls;
    if (r->off == r->len) {
        long n = hub_read(r->a->hub, &r->seq, r->pending, sizeof r->pending, SSE_KEEPALIVE_MS);
        if (n < 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (n == 0) /* a comment line keeps proxies and the idle timeout from cutting us off */
            n = snprintf(r->pending, sizeof r->pending, ": keepalive\n\n");
        r->len = (size_t)n;
        r->off = 0;
    }
    size_t take = r->len - r->off < max ? r->len - r->off : max;
    memcpy(buf, r->pending + r->off, take);
    r->off += take;
    return (ssize_t)take;
}

static enum MHD_Result serve_events(agent *a, struct MHD_Connection *conn)
{
    sse_reader *r = calloc(1, sizeof *r);
    if (!r)
        return MHD_NO;
    r->a = a;
    r->seq = hub_seq(a->hub);
    r->len = (size_t)snprintf(r->pending, sizeof r->pending, ": rumor events\n\n");
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, r, free);
    if (!resp) {
        free(r);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void body_append(req_ctx *ctx, const char *data, size_t len)
{
    if (ctx->too_large || ctx->len + len > HTTP_BODY_MAX) {
        ctx->too_large = true;
        return;
    }
    char *b = realloc(ctx->body, ctx->len + len + 1);
    if (!b) {
        ctx->too_large = true;
        return;
    }
    memcpy(b + ctx->len, data, len);
    ctx->len += len;
    b[ctx->len] = '\0';
    ctx->body = b;
}

static void count_status(agent *a, unsigned status)
{
    atomic_fetch_add(&a->http_counters.requests, 1);
    if (status >= 400 && status < 500)
        atomic_fetch_add(&a->http_counters.client_errors, 1);
    else if (status >= 500)
        atomic_fetch_add(&a->http_counters.server_errors, 1);
}

static enum MHD_Result answer(agent *a, struct MHD_Connection *conn, const char *url,
                              const char *method, req_ctx *ctx)
{
    if (strcmp(url, "/v1/events") == 0 && strcmp(method, "GET") == 0) {
        count_status(a, 200);
        return serve_events(a, conn);
    }
    api_request req = {.method = method,
                       .path = url,
                       .body = ctx->body ? ctx->body : "",
                       .body_len = ctx->len,
                       .body_too_large = ctx->too_large,
                       .conn = conn};
    api_response out = {0};
    api_handle(a, &req, &out);
    count_status(a, out.status);
    if (out.status >= 400)
        agent_log(RUMOR_LOG_DEBUG, "http: %s %s -> %u %s", method, url, out.status,
                  out.body ? out.body : "");
    const char *body = out.body ? out.body : "";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), out.body ? out.body : (void *)(uintptr_t) "",
                                        out.body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(out.body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type",
                            out.content_type ? out.content_type : "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, out.status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_size, void **con_cls)
{
    (void)version;
    req_ctx *ctx = *con_cls;
    if (!ctx) { /* first call: headers only */
        ctx = calloc(1, sizeof *ctx);
        *con_cls = ctx;
        return ctx ? MHD_YES : MHD_NO;
    }
    if (*upload_size > 0) {
        body_append(ctx, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    return answer(cls, conn, url, method, ctx);
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    req_ctx *ctx = *con_cls;
    if (ctx) {
        free(ctx->body);
        free(ctx);
    }
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    agent_log(RUMOR_LOG_DEBUG, "http: %s", msg);
}

int http_start(agent *a, const char *addr, char *err, size_t cap)
{
    rumor_addr ra;
    struct sockaddr_storage ss;
    if (rumor_runtime_parse_addr(addr, 7947, &ra, err, cap) != 0 ||
        rumor_runtime_addr_to_sockaddr(&ra, &ss, false) != 0)
        return -1;
    agent_http *h = calloc(1, sizeof *h);
    if (!h)
        return -1;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_ERROR_LOG | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    h->d = MHD_start_daemon(
        flags, 0, NULL, NULL, access_cb, a, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONNECTIONS_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)HTTP_IDLE_TIMEOUT_S, MHD_OPTION_NOTIFY_COMPLETED, completed_cb, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, cap, "cannot serve HTTP on %s (address in use or not available)", addr);
        free(h);
        return -1;
    }
    a->http = h;
    return 0;
}

void http_stop(agent *a)
{
    if (!a->http)
        return;
    MHD_stop_daemon(a->http->d);
    free(a->http);
    a->http = NULL;
}
