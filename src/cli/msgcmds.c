/* `rumor event` (a user event to every node) and `rumor query` (ask, then print the answers). */
#include "cli.h"

#include "curl_shim.h"
#include "duration.h"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAYLOAD_STDIN_MAX    (64u * 1024u)
#define QUERY_TIMEOUT_MIN_MS 10u
#define QUERY_TIMEOUT_MAX_MS 300000u
#define QUERY_ARGS_MAX       256
#define QUERY_HTTP_SLACK_MS  15000L /* the agent answers at the deadline; give it time */

static const char event_help[] =
    "Usage: rumor event NAME [PAYLOAD]\n\n"
    "Sends a user event: every node of the cluster, this one included, delivers it once to\n"
    "its event handlers (--event-handler user:NAME=SCRIPT gets the payload on stdin). PAYLOAD\n"
    "\"-\" reads it from stdin. The name is 1..128 bytes of UTF-8; name and payload together\n"
    "are limited by the agents' event_bytes_max (512 bytes by default). Delivery is by gossip,\n"
    "like Serf's: with high probability, not guaranteed, under heavy packet loss.";

static const char query_help[] =
    "Usage: rumor query NAME [PAYLOAD] [--node NAME]... [--tag KEY=REGEXP]...\n"
    "                   [--timeout DUR] [--no-ack] [--format text|json]\n\n"
    "Asks a query: the nodes that match the filters (all nodes without filters) acknowledge it\n"
    "and hand it to their query handlers (--event-handler query:NAME=SCRIPT), whose output is\n"
    "the response. The command waits until the deadline, then prints one line per response\n"
    "(\"node: payload\") on stdout and a summary (acks, responses, who did not answer) on\n"
    "stderr; --format json prints the agent's answer instead. PAYLOAD \"-\" reads stdin.\n\n"
    "  --node NAME       only this node (repeatable: any of them)\n"
    "  --tag KEY=REGEXP  only nodes whose tag KEY matches REGEXP as a whole (POSIX extended;\n"
    "                    repeatable: all of them)\n"
    "  --timeout DUR     how long to collect answers: 500ms, 5s, 1m (default: the agent's,\n"
    "                    gossip interval x 16 x ceil(log10(N+1)), as Serf)\n"
    "  --no-ack          do not ask matching nodes to acknowledge\n\n"
    "Exit status: 0 when at least one node matched and every matched node responded; 1 when\n"
    "some did not (or none matched), or the agent refused the query.";

/* Flags and positional arguments shared by both commands. */
typedef struct msg_args {
    const char *pos[2];
    int npos;
    const char *nodes[QUERY_ARGS_MAX], *tags[QUERY_ARGS_MAX];
    int nnodes, ntags;
    const char *timeout, *format;
    bool no_ack;
} msg_args;

static const char *flag_value(int argc, char **argv, int *i, const char *flag, bool *missing)
{
    size_t len = strlen(flag);
    if (strncmp(argv[*i], flag, len) == 0 && argv[*i][len] == '=')
        return argv[*i] + len + 1;
    if (strcmp(argv[*i], flag) == 0) {
        if (*i + 1 < argc)
            return argv[++*i];
        *missing = true;
    }
    return NULL;
}

/* One query flag; 1 when taken, 0 when not a query flag, or an exit code (negated - 10). */
static int query_flag(cli_ctx *c, int argc, char **argv, int *i, msg_args *a)
{
    bool missing = false;
    const char *v;
    if (strcmp(argv[*i], "--no-ack") == 0) {
        a->no_ack = true;
        return 1;
    }
    if ((v = flag_value(argc, argv, i, "--node", &missing))) {
        if (!*v || a->nnodes == QUERY_ARGS_MAX)
            return -10 - cli_usage_error(c, *v ? "too many --node flags" : "--node needs a name");
        a->nodes[a->nnodes++] = v;
    } else if ((v = flag_value(argc, argv, i, "--tag", &missing))) {
        const char *eq = strchr(v, '=');
        if (!eq || eq == v || a->ntags == QUERY_ARGS_MAX)
            return -10 - cli_usage_error(c, a->ntags == QUERY_ARGS_MAX
                                                ? "too many --tag flags"
                                                : "--tag takes KEY=REGEXP with a non-empty key");
        a->tags[a->ntags++] = v;
    } else if ((v = flag_value(argc, argv, i, "--timeout", &missing))) {
        a->timeout = v;
    } else if ((v = flag_value(argc, argv, i, "--format", &missing))) {
        a->format = v;
    } else {
        return missing ? -10 - cli_usage_error(c, "this flag needs a value") : 0;
    }
    return 1;
}

/* -1 to go on, or an exit code. */
static int parse_args(cli_ctx *c, int argc, char **argv, const char *help, bool query, msg_args *a)
{
    memset(a, 0, sizeof *a);
    bool flags = true;
    for (int i = 0; i < argc; i++) {
        if (flags && strcmp(argv[i], "--") == 0) { /* "--" ends the flags: PAYLOAD may be "--x" */
            flags = false;
            continue;
        }
        if (flags) {
            int r = cli_common(c, argc, argv, &i, help);
            if (r >= 0)
                return r;
            if (r == -2)
                continue;
            int q = query ? query_flag(c, argc, argv, &i, a) : 0;
            if (q <= -10)
                return -10 - q;
            if (q == 1)
                continue;
            if (argv[i][0] == '-' && argv[i][1] != '\0')
                return cli_usage_error(c, "unknown flag");
        }
        if (a->npos == 2)
            return cli_usage_error(c, "too many arguments (expected NAME [PAYLOAD])");
        a->pos[a->npos++] = argv[i];
    }
    if (a->npos == 0)
        return cli_usage_error(c, "expected NAME [PAYLOAD]");
    if (!*a->pos[0])
        return cli_usage_error(c, "the name must not be empty");
    return -1;
}

/* The payload argument, or stdin for "-"; `*owned` is set when it must be freed. */
static int payload_of(const cli_ctx *c, const msg_args *a, const char **p, size_t *len,
                      char **owned)
{
    *owned = NULL;
    *p = a->npos > 1 ? a->pos[1] : "";
    *len = strlen(*p);
    if (strcmp(*p, "-") != 0)
        return CLI_OK;
    char *b = malloc(PAYLOAD_STDIN_MAX + 1);
    if (!b)
        return CLI_FAILED;
    *len = fread(b, 1, PAYLOAD_STDIN_MAX + 1, stdin);
    if (*len > PAYLOAD_STDIN_MAX) {
        free(b);
        return cli_usage_error(c, "the payload on stdin is larger than 64 KiB");
    }
    *p = b;
    *owned = b;
    return CLI_OK;
}

/* A growing path with "?k=v&k=v", escaped. */
typedef struct path_buf {
    char *p;
    size_t len, cap;
    bool failed;
} path_buf;

static void path_add(path_buf *b, const char *raw, size_t len)
{
    if (b->failed || b->len + len + 1 > b->cap) {
        size_t cap = (b->cap + len + 1) * 2;
        char *p = b->failed ? NULL : realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, raw, len);
    b->len += len;
    b->p[b->len] = '\0';
}

static void path_escaped(path_buf *b, const char *v)
{
    char *esc = CC.easy_escape(NULL, v, (int)strlen(v));
    if (!esc) {
        b->failed = true;
        return;
    }
    path_add(b, esc, strlen(esc));
    CC.free(esc);
}

static void path_param(path_buf *b, const char *key, const char *v)
{
    path_add(b, strchr(b->p, '?') ? "&" : "?", 1);
    path_add(b, key, strlen(key));
    path_add(b, "=", 1);
    path_escaped(b, v);
}

/* ---- rumor event ---- */

int cli_event(cli_ctx *c, int argc, char **argv)
{
    msg_args a;
    int r = parse_args(c, argc, argv, event_help, false, &a);
    if (r >= 0)
        return r;
    const char *payload;
    size_t len;
    char *owned, *body = NULL;
    long status = 0;
    if ((r = payload_of(c, &a, &payload, &len, &owned)) != CLI_OK)
        return r;
    path_buf path = {0};
    path_add(&path, "/v1/event/", 10);
    path_escaped(&path, a.pos[0]);
    r = path.failed ? CLI_FAILED
                    : cli_request_ex(c, "POST", path.p, payload, len, "application/octet-stream",
                                     &status, &body, NULL);
    if (r == CLI_OK && status != 200) {
        r = cli_report_error(c, status, body);
    } else if (r == CLI_OK) {
        json_t *o = cli_parse(c, body);
        if (o)
            printf("event \"%s\" sent (Lamport time %lld, %zu bytes)\n", a.pos[0],
                   (long long)json_integer_value(json_object_get(o, "ltime")), len);
        r = o ? CLI_OK : CLI_FAILED;
        json_decref(o);
    }
    free(body);
    free(path.p);
    free(owned);
    return r;
}

/* ---- rumor query ---- */

/* Text that reads well on a terminal: UTF-8 without control characters but tab and newline. */
static bool readable(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((p[i] < 0x20 && p[i] != '\n' && p[i] != '\t') || p[i] == 0x7f)
            return false;
    json_t *s = json_stringn((const char *)p, len);
    json_decref(s);
    return s != NULL;
}

static void print_response(json_t *r)
{
    const char *node = json_string_value(json_object_get(r, "node"));
    const char *b64 = json_string_value(json_object_get(r, "payload"));
    size_t tl = b64 ? strlen(b64) : 0, len = 0;
    unsigned char *v = malloc(tl + 1);
    if (!v || !b64 ||
        sodium_base642bin(v, tl, b64, tl, NULL, &len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
        printf("%s: base64:%s\n", node ? node : "?", b64 ? b64 : "?");
        free(v);
        return;
    }
    if (len > 0 && v[len - 1] == '\n') /* scripts end their output with one */
        len--;
    if (readable(v, len))
        printf("%s: %.*s\n", node ? node : "?", (int)len, (const char *)v);
    else
        printf("%s: base64:%s\n", node ? node : "?", b64);
    free(v);
}

/* "a, b, c" (at most 20 names, then "and N more") to stderr. */
static void print_names(const char *what, json_t *arr)
{
    size_t i, n = json_array_size(arr);
    json_t *v;
    if (n == 0)
        return;
    fprintf(stderr, "%s (%zu):", what, n);
    json_array_foreach(arr, i, v)
    {
        if (i == 20) {
            fprintf(stderr, " and %zu more", n - 20);
            break;
        }
        fprintf(stderr, "%s %s", i ? "," : "", json_string_value(v) ? json_string_value(v) : "?");
    }
    fprintf(stderr, "\n");
}

static long count_of(json_t *o, const char *k)
{
    return (long)json_integer_value(json_object_get(json_object_get(o, "counts"), k));
}

static int show_answer(const cli_ctx *c, const char *name, const char *body, bool json_out)
{
    json_t *o = cli_parse(c, body), *r;
    size_t i;
    if (!o)
        return CLI_FAILED;
    long matched = count_of(o, "matched"), silent = count_of(o, "no_response");
    if (json_out) {
        printf("%s\n", body);
    } else {
        json_array_foreach(json_object_get(o, "responses"), i, r) print_response(r);
        fflush(stdout); /* the responses before the summary, also when both go to one pipe */
        fprintf(stderr, "query \"%s\": %ld matched, ", name, matched);
        if (json_is_true(json_object_get(o, "request_ack")))
            fprintf(stderr, "%ld acks, ", count_of(o, "acks"));
        fprintf(stderr, "%ld responses in %lld ms\n", count_of(o, "responses"),
                (long long)json_integer_value(json_object_get(o, "timeout_ms")));
        print_names("no ack", json_object_get(o, "no_ack"));
        print_names("no response", json_object_get(o, "no_response"));
    }
    json_decref(o);
    return matched > 0 && silent == 0 ? CLI_OK : CLI_FAILED;
}

static int query_path(cli_ctx *c, const msg_args *a, path_buf *path)
{
    uint64_t ms = 0;
    if (a->timeout &&
        duration_parse_ms(a->timeout, QUERY_TIMEOUT_MIN_MS, QUERY_TIMEOUT_MAX_MS, &ms) != 0)
        return cli_usage_error(c, "--timeout takes a duration from 10ms to 5m, e.g. 500ms, 5s, 1m");
    if (a->format && strcmp(a->format, "json") != 0 && strcmp(a->format, "text") != 0)
        return cli_usage_error(c, "--format must be text or json");
    c->timeout_ms = (long)(a->timeout ? ms : QUERY_TIMEOUT_MAX_MS) + QUERY_HTTP_SLACK_MS;
    path_add(path, "/v1/query/", 10);
    path_escaped(path, a->pos[0]);
    for (int i = 0; i < a->nnodes; i++)
        path_param(path, "node", a->nodes[i]);
    for (int i = 0; i < a->ntags; i++)
        path_param(path, "tag", a->tags[i]);
    if (a->timeout)
        path_param(path, "timeout", a->timeout);
    if (a->no_ack)
        path_param(path, "ack", "false");
    return path->failed ? CLI_FAILED : CLI_OK;
}

int cli_query(cli_ctx *c, int argc, char **argv)
{
    msg_args a;
    int r = parse_args(c, argc, argv, query_help, true, &a);
    if (r >= 0)
        return r;
    path_buf path = {0};
    if ((r = query_path(c, &a, &path)) != CLI_OK) {
        free(path.p);
        return r;
    }
    const char *payload;
    size_t len;
    char *owned, *body = NULL;
    long status = 0;
    if ((r = payload_of(c, &a, &payload, &len, &owned)) != CLI_OK) {
        free(path.p);
        return r;
    }
    r = cli_request_ex(c, "POST", path.p, payload, len, "application/octet-stream", &status, &body,
                       NULL);
    if (r == CLI_OK)
        r = status != 200
                ? cli_report_error(c, status, body)
                : show_answer(c, a.pos[0], body, a.format && strcmp(a.format, "json") == 0);
    free(body);
    free(path.p);
    free(owned);
    return r;
}
