/* HTTP client side of the CLI, on libcurl. */
#include "cli.h"

#include "curl_shim.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct buf {
    char *p;
    size_t len;
} buf;

static size_t collect(char *data, size_t size, size_t n, void *ud)
{
    buf *b = ud;
    size_t add = size * n;
    char *p = realloc(b->p, b->len + add + 1);
    if (!p)
        return 0;
    memcpy(p + b->len, data, add);
    b->len += add;
    p[b->len] = '\0';
    b->p = p;
    return add;
}

static void url_of(const cli_ctx *c, const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "http://%s%s", c->http, path);
}

static int unreachable(const cli_ctx *c, CURLcode rc)
{
    fprintf(stderr,
            "rumor %s: no agent answered at %s (%s).\nIs `rumor agent` running? Pick another "
            "agent with --http ADDR:PORT or %s.\n",
            c->cmd, c->http, CC.easy_strerror(rc), CLI_HTTP_ENV);
    return CLI_UNREACHABLE;
}

int cli_request(const cli_ctx *c, const char *method, const char *path, const char *body,
                long *status, char **out)
{
    return cli_request_ex(c, method, path, body, body ? strlen(body) : 0, "application/json",
                          status, out, NULL);
}

int cli_request_ex(const cli_ctx *c, const char *method, const char *path, const void *body,
                   size_t body_len, const char *content_type, long *status, char **out,
                   size_t *out_len)
{
    char url[2048], ctype[128];
    buf b = {0};
    url_of(c, path, url, sizeof url);
    CURL *h = CC.easy_init();
    if (!h)
        return CLI_FAILED;
    snprintf(ctype, sizeof ctype, "Content-Type: %s", content_type);
    struct curl_slist *hdr = CC.slist_append(NULL, ctype);
    CC.easy_setopt(h, CURLOPT_URL, url);
    CC.easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    CC.easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    CC.easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    CC.easy_setopt(h, CURLOPT_WRITEDATA, &b);
    CC.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    CC.easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms > 0 ? c->timeout_ms : 30000L);
    CC.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        CC.easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        CC.easy_setopt(h, CURLOPT_POSTFIELDS, body);
    }
    CURLcode rc = CC.easy_perform(h);
    CC.easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    CC.slist_free_all(hdr);
    CC.easy_cleanup(h);
    if (rc != CURLE_OK) {
        free(b.p);
        return unreachable(c, rc);
    }
    *out = b.p ? b.p : calloc(1, 1);
    if (out_len)
        *out_len = b.len;
    return CLI_OK;
}

typedef struct stream_ctx {
    buf b;
    void (*line)(const char *text, void *ud);
    void *ud;
} stream_ctx;

static size_t stream_cb(char *data, size_t size, size_t n, void *ud)
{
    stream_ctx *s = ud;
    size_t got = collect(data, size, n, &s->b);
    if (got == 0)
        return 0;
    char *start = s->b.p, *nl;
    while ((nl = memchr(start, '\n', s->b.len - (size_t)(start - s->b.p))) != NULL) {
        *nl = '\0';
        s->line(start, s->ud);
        start = nl + 1;
    }
    size_t rest = s->b.len - (size_t)(start - s->b.p);
    memmove(s->b.p, start, rest);
    s->b.len = rest;
    s->b.p[rest] = '\0';
    return got;
}

int cli_stream(const cli_ctx *c, const char *path, void (*line)(const char *text, void *ud),
               void *ud)
{
    char url[512];
    stream_ctx s = {.line = line, .ud = ud};
    url_of(c, path, url, sizeof url);
    CURL *h = CC.easy_init();
    if (!h)
        return CLI_FAILED;
    CC.easy_setopt(h, CURLOPT_URL, url);
    CC.easy_setopt(h, CURLOPT_WRITEFUNCTION, stream_cb);
    CC.easy_setopt(h, CURLOPT_WRITEDATA, &s);
    CC.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    CC.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = CC.easy_perform(h);
    long status = 0;
    CC.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    CC.easy_cleanup(h);
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_OPERATION_TIMEDOUT ||
        rc == CURLE_COULDNT_RESOLVE_HOST || (rc != CURLE_OK && status == 0)) {
        free(s.b.p);
        return unreachable(c, rc);
    }
    int out = CLI_OK;
    if (status != 200) /* an error answer is one JSON object, not a stream of lines */
        out = cli_report_error(c, status, s.b.p);
    free(s.b.p);
    return out;
}

int cli_report_error(const cli_ctx *c, long status, const char *body)
{
    json_t *o = json_loads(body ? body : "", 0, NULL);
    json_t *e = json_object_get(o, "error");
    fprintf(stderr, "rumor %s: the agent answered %ld: %s\n", c->cmd, status,
            json_is_string(e) ? json_string_value(e) : (body && *body ? body : "(no details)"));
    json_decref(o);
    return CLI_FAILED;
}

int cli_get_show(const cli_ctx *c, const char *path, bool json_out,
                 void (*render)(json_t *o, void *ud), void *ud)
{
    long status = 0;
    char *body = NULL;
    int rc = cli_request(c, "GET", path, NULL, &status, &body);
    if (rc != CLI_OK)
        return rc;
    if (status != 200) {
        rc = cli_report_error(c, status, body);
    } else if (json_out) {
        printf("%s\n", body);
    } else {
        json_t *o = cli_parse(c, body);
        if (o)
            render(o, ud);
        rc = o ? CLI_OK : CLI_FAILED;
        json_decref(o);
    }
    free(body);
    return rc;
}

json_t *cli_parse(const cli_ctx *c, const char *body)
{
    json_error_t e;
    json_t *o = json_loads(body, 0, &e);
    if (!o)
        fprintf(stderr, "rumor %s: the agent sent invalid JSON: %s\n", c->cmd, e.text);
    return o;
}
