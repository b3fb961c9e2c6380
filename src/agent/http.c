/*
 * The HTTP server: libmicrohttpd with a thread per connection (bounded), so a blocking SSE
 * stream or a slow client never stalls the loop. Handlers never touch the engine themselves:
 * they hand work to the loop thread with rumor_runtime_call() and wait for the answer.
 */
#include "agent.h"

#include "log.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define HTTP_BODY_MAX        (64u * 1024u)
#define HTTP_CONNECTIONS_MAX 64u
#define HTTP_IDLE_TIMEOUT_S  30u
#define SSE_KEEPALIVE_MS     10000u
#define SSE_SLICE_MS         500u

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
    agent_hub *hub;
    uint64_t seq;
    bool kv; /* a /v1/kv/watch reader, counted in a->kv_watchers */
    int fd;  /* the client's socket, to notice it closing; -1 unknown */
    char prefix[RUMOR_KEY_MAX + 1];
    hub_filter filter;
    size_t len, off, cap;
    char *pending;
} sse_reader;

/* An SSE client sends nothing after its request, so a readable socket that reads as end of
 * file means it went away. */
static bool client_gone(const sse_reader *r)
{
    char c;
    if (r->fd < 0)
        return false;
    ssize_t n = recv(r->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    sse_reader *r = cls;
    if (r->off == r->len) {
        /* Wait in slices: between them, a client that closed ends the stream at once instead
         * of holding a connection slot until a keepalive write fails. */
        long n = 0;
        for (unsigned waited = 0; n == 0 && waited < SSE_KEEPALIVE_MS; waited += SSE_SLICE_MS) {
            n = hub_read(r->hub, &r->seq, r->pending, r->cap, SSE_SLICE_MS, &r->filter);
            if (n == 0 && client_gone(r))
                return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (n < 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (n == 0) /* a comment line keeps proxies and the idle timeout from cutting us off */
            n = snprintf(r->pending, r->cap, ": keepalive\n\n");
        r->len = (size_t)n;
        r->off = 0;
    }
    size_t take = r->len - r->off < max ? r->len - r->off : max;
    memcpy(buf, r->pending + r->off, take);
    r->off += take;
    return (ssize_t)take;
}

/* MHD calls this when the response ends: the client went away, or the agent is stopping. */
static void sse_free(void *cls)
{
    sse_reader *r = cls;
    if (r->kv)
        atomic_fetch_sub(&r->a->kv_watchers, 1);
    free(r->pending);
    free(r);
}

/* A stream of `hub`'s events. The buffer holds the largest event: a key-value change carries
 * a value of up to kv_value_bytes_max (1 MiB at most), base64-encoded, and a key escaped as
 * JSON. */
static enum MHD_Result serve_stream(agent *a, struct MHD_Connection *conn, agent_hub *hub,
                                    const char *prefix, size_t prefix_len, bool kv)
{
    sse_reader *r = calloc(1, sizeof *r);
    if (!r)
        return MHD_NO;
    r->a = a;
    r->hub = hub;
    r->kv = kv;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    r->fd = ci ? ci->connect_fd : -1;
    r->cap = kv ? ((size_t)a->engine.kv_value_bytes_max / 3 + 1) * 4 + 6 * RUMOR_KEY_MAX +
                      2 * RUMOR_NAME_MAX + 1024
                : 16384;
    r->pending = malloc(r->cap);
    if (!r->pending) {
        free(r);
        return MHD_NO;
    }
    memcpy(r->prefix, prefix, prefix_len);
    r->filter.prefix = r->prefix;
    r->filter.prefix_len = prefix_len;
    if (kv)
        atomic_fetch_add(&a->kv_watchers, 1);
    r->seq = hub_seq(hub); /* after counting us: changes from here on are published */
    r->len =
        (size_t)snprintf(r->pending, r->cap, kv ? ": rumor kv watch\n\n" : ": rumor events\n\n");
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, r, sse_free);
    if (!resp) {
        sse_free(r);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

size_t http_body_max(const agent *a)
{
    /* JSON bodies are small; a key-value PUT carries a whole value. */
    return a->engine.kv_value_bytes_max > HTTP_BODY_MAX ? a->engine.kv_value_bytes_max
                                                        : HTTP_BODY_MAX;
}

static void body_append(req_ctx *ctx, const char *data, size_t len, size_t max)
{
    if (ctx->too_large || ctx->len + len > max) {
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

static enum MHD_Result send_response(agent *a, struct MHD_Connection *conn, const char *url,
                                     const char *method, api_response *out)
{
    count_status(a, out->status);
    if (out->status >= 400)
        agent_log(RUMOR_LOG_DEBUG, "http: %s %s -> %u %s", method, url, out->status,
                  out->body ? out->body : "");
    const char *body = out->body ? out->body : "";
    size_t len = out->binary ? out->body_len : strlen(body);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, out->body ? out->body : (void *)(uintptr_t) "",
                                        out->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(out->body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type",
                            out->content_type ? out->content_type : "application/json");
    for (unsigned i = 0; i < out->nheaders && i < 4; i++)
        MHD_add_response_header(resp, out->headers[i][0], out->headers[i][1]);
    enum MHD_Result ret = MHD_queue_response(conn, out->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* GET /v1/kv/watch[?prefix=P]: every key-value change whose key starts with P. */
static enum MHD_Result serve_kv_watch(agent *a, struct MHD_Connection *conn, const char *url,
                                      const char *method)
{
    api_response out = {0};
    const char *prefix = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "prefix");
    size_t len = prefix ? strlen(prefix) : 0;
    char why[256];
    if (kvapi_check_key(prefix ? prefix : "", len, true, why, sizeof why) != 0) {
        api_error(&out, 400, "prefix: %s", why);
        return send_response(a, conn, url, method, &out);
    }
    count_status(a, 200);
    return serve_stream(a, conn, a->kvhub, prefix ? prefix : "", len, true);
}

static enum MHD_Result answer(agent *a, struct MHD_Connection *conn, const char *url,
                              const char *method, req_ctx *ctx)
{
    if (strcmp(url, "/v1/events") == 0 && strcmp(method, "GET") == 0) {
        count_status(a, 200);
        return serve_stream(a, conn, a->hub, "", 0, false);
    }
    if (strcmp(url, "/v1/kv/watch") == 0 && strcmp(method, "GET") == 0)
        return serve_kv_watch(a, conn, url, method);
    api_request req = {.method = method,
                       .path = url,
                       .body = ctx->body ? ctx->body : "",
                       .body_len = ctx->len,
                       .body_too_large = ctx->too_large,
                       .conn = conn};
    api_response out = {0};
    api_handle(a, &req, &out);
    return send_response(a, conn, url, method, &out);
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
        body_append(ctx, upload_data, *upload_size, http_body_max(cls));
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

/*
 * MHD's own %HH decoding, except that %00 decodes to 0x01: the path reaches the handler as a
 * C string, and a NUL inside would cut a key short and store it under another name. 0x01 is a
 * control character that key validation refuses with a clear 400.
 */
static size_t unescape_cb(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    for (char *p = strchr(s, '%'); p; p = strchr(p + 1, '%'))
        if (p[1] == '0' && p[2] == '0')
            p[2] = '1';
    return MHD_http_unescape(s);
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
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, access_cb, a, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)HTTP_CONNECTIONS_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)HTTP_IDLE_TIMEOUT_S, MHD_OPTION_NOTIFY_COMPLETED,
                            completed_cb, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                            MHD_OPTION_UNESCAPE_CALLBACK, unescape_cb, NULL, MHD_OPTION_END);
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
