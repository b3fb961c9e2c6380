/* `rumor kv` (the shared keyspace) and `rumor state` (a node's own keyspace). */
#include "cli.h"

#include "curl_shim.h"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VALUE_STDIN_MAX (1024u * 1024u)

static const char kv_help[] =
    "Usage: rumor kv put KEY VALUE     write a shared key (VALUE \"-\" reads stdin)\n"
    "       rumor kv get KEY           print its value alone (exit 1 when absent)\n"
    "       rumor kv del KEY           delete it\n"
    "       rumor kv list [--prefix P] [--format table|json]\n"
    "       rumor kv watch [--prefix P] [--format text|json]\n\n"
    "The shared keyspace: any node may write any key; the latest write (hybrid logical clock,\n"
    "ties broken by node name) wins on every node. A write is saved in the agent's data dir\n"
    "before it is acknowledged. Keys are 1..256 bytes of UTF-8 without control characters;\n"
    "values are bytes up to the agent's --kv-value-max (512 by default). `watch` streams every\n"
    "change, shared and per-node, until interrupted.";

static const char state_help[] =
    "Usage: rumor state get [--node NAME] [KEY] [--format table|json]\n"
    "       rumor state put KEY VALUE   (VALUE \"-\" reads stdin)\n"
    "       rumor state del KEY\n\n"
    "Per-node state: every node owns a keyspace only it writes, and every node holds a copy of\n"
    "every member's. `get` reads this node's keys, or with --node another member's as this\n"
    "agent holds them; with KEY it prints the value alone (exit 1 when absent), without it\n"
    "lists the keys. `put` and `del` change this node's keys, saved in its data dir before\n"
    "they are acknowledged.";

typedef struct kv_args {
    const char *pos[3];
    int npos;
    const char *prefix, *node, *format;
} kv_args;

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

/* Splits flags and positional arguments after the subcommand: -1 to go on, or an exit code. */
static int parse_args(cli_ctx *c, int argc, char **argv, const char *help, kv_args *out)
{
    memset(out, 0, sizeof *out);
    bool flags = true;
    for (int i = 1; i < argc; i++) {
        if (!flags || strcmp(argv[i], "--") == 0) { /* "--" ends the flags: VALUE may be "--x" */
            if (flags) {
                flags = false;
                continue;
            }
            if (out->npos == 3)
                return cli_usage_error(c, "too many arguments");
            out->pos[out->npos++] = argv[i];
            continue;
        }
        int r = cli_common(c, argc, argv, &i, help);
        bool missing = false;
        const char *v;
        if (r >= 0)
            return r;
        if (r == -2)
            continue;
        if ((v = flag_value(argc, argv, &i, "--prefix", &missing)))
            out->prefix = v;
        else if ((v = flag_value(argc, argv, &i, "--node", &missing)))
            out->node = v;
        else if ((v = flag_value(argc, argv, &i, "--format", &missing)))
            out->format = v;
        else if (missing)
            return cli_usage_error(c, "this flag needs a value");
        else if (strncmp(argv[i], "--", 2) == 0)
            return cli_usage_error(c, "unknown flag");
        else if (out->npos == 3)
            return cli_usage_error(c, "too many arguments");
        else
            out->pos[out->npos++] = argv[i];
    }
    return -1;
}

/* "/v1/kv/" + the key, escaped (a '/' in the key becomes %2F and comes back as '/'). */
static int key_path(const cli_ctx *c, const char *base, const char *key, const char *query,
                    char *out, size_t cap)
{
    if (!*key)
        return cli_usage_error(c, "the key must not be empty");
    char *esc = CC.easy_escape(NULL, key, (int)strlen(key));
    if (!esc)
        return CLI_FAILED;
    int n = snprintf(out, cap, "%s/%s%s", base, esc, query);
    CC.free(esc);
    if (n < 0 || (size_t)n >= cap)
        return cli_usage_error(c, "the key is too long");
    return CLI_OK;
}

static void add_query(char *path, size_t cap, const char *key, const char *v)
{
    char *esc = CC.easy_escape(NULL, v, (int)strlen(v));
    size_t len = strlen(path);
    snprintf(path + len, cap - len, "%s%s=%s", strchr(path, '?') ? "&" : "?", key, esc ? esc : "");
    CC.free(esc);
}

static char *read_stdin(size_t *len)
{
    char *b = malloc(VALUE_STDIN_MAX + 1);
    if (!b)
        return NULL;
    *len = fread(b, 1, VALUE_STDIN_MAX + 1, stdin);
    return b;
}

/* ---- value display ---- */

/* Decodes a base64 JSON string into a new buffer (NUL-terminated); NULL when it is not one. */
static unsigned char *b64_decode(json_t *v, size_t *len)
{
    const char *text = json_string_value(v);
    if (!text)
        return NULL;
    size_t tl = strlen(text);
    unsigned char *out = malloc(tl + 1);
    if (!out || sodium_base642bin(out, tl, text, tl, NULL, len, NULL,
                                  sodium_base64_VARIANT_ORIGINAL) != 0) {
        free(out);
        return NULL;
    }
    out[*len] = '\0';
    return out;
}

/* Whether the bytes read well on a terminal: UTF-8 without control characters. */
static bool printable(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] < 0x20 || p[i] == 0x7f)
            return false;
    json_t *s = json_stringn((const char *)p, len);
    json_decref(s);
    return s != NULL;
}

static void print_value(json_t *b64)
{
    size_t len = 0;
    unsigned char *v = b64_decode(b64, &len);
    if (v && printable(v, len))
        printf("%s", (const char *)v);
    else
        printf("base64:%s", json_string_value(b64) ? json_string_value(b64) : "?");
    free(v);
}

static const char *key_text(json_t *o)
{
    const char *k = json_string_value(json_object_get(o, "key"));
    return k ? k : json_string_value(json_object_get(o, "key_base64"));
}

/* ---- requests ---- */

static int do_write(cli_ctx *c, const char *base, const kv_args *a, bool del)
{
    char path[2048];
    if (a->npos != (del ? 1 : 2))
        return cli_usage_error(c, del ? "expected KEY" : "expected KEY VALUE");
    int rc = key_path(c, base, a->pos[0], "", path, sizeof path);
    if (rc != CLI_OK)
        return rc;
    const char *value = del ? NULL : a->pos[1];
    size_t vlen = value ? strlen(value) : 0;
    char *in = NULL;
    if (value && strcmp(value, "-") == 0) {
        in = read_stdin(&vlen);
        if (!in)
            return CLI_FAILED;
        value = in;
    }
    long status = 0;
    char *body = NULL;
    rc = cli_request_ex(c, del ? "DELETE" : "PUT", path, value ? value : NULL, vlen,
                        "application/octet-stream", &status, &body, NULL);
    free(in);
    if (rc != CLI_OK)
        return rc;
    if (status != 200) {
        rc = cli_report_error(c, status, body);
    } else {
        json_t *o = cli_parse(c, body);
        if (o)
            printf("%s %s (version %lld)\n", del ? "deleted" : "written", a->pos[0],
                   (long long)json_integer_value(json_object_get(o, "version")));
        rc = o ? CLI_OK : CLI_FAILED;
        json_decref(o);
    }
    free(body);
    return rc;
}

/* GET KEY?raw: the value's bytes alone, then a newline. */
static int do_get(cli_ctx *c, const char *base, const char *key)
{
    char path[2048];
    int rc = key_path(c, base, key, "?raw", path, sizeof path);
    if (rc != CLI_OK)
        return rc;
    long status = 0;
    char *body = NULL;
    size_t len = 0;
    rc = cli_request_ex(c, "GET", path, NULL, 0, "application/json", &status, &body, &len);
    if (rc != CLI_OK)
        return rc;
    if (status != 200) {
        rc = cli_report_error(c, status, body);
    } else {
        fwrite(body, 1, len, stdout);
        fputc('\n', stdout);
    }
    free(body);
    return rc;
}

static void list_table(json_t *o, bool shared)
{
    size_t i;
    json_t *k;
    printf("%-32s %-8s %-20s %s\n", "KEY", "VERSION", shared ? "WRITER" : "NODE", "VALUE");
    json_array_foreach(json_object_get(o, "keys"), i, k)
    {
        json_t *who = json_object_get(k, shared ? "writer" : "node");
        printf("%-32s %-8lld %-20s ", key_text(k),
               (long long)json_integer_value(json_object_get(k, "version")),
               json_string_value(who) ? json_string_value(who) : "?");
        print_value(json_object_get(k, "value"));
        printf("\n");
    }
}

static void render_list(json_t *o, void *ud)
{
    list_table(o, *(const bool *)ud);
}

static int do_list(cli_ctx *c, const char *path, const kv_args *a, bool shared)
{
    bool json_out = a->format && strcmp(a->format, "json") == 0;
    if (a->format && !json_out && strcmp(a->format, "table") != 0)
        return cli_usage_error(c, "--format must be table or json");
    return cli_get_show(c, path, json_out, render_list, &shared);
}

/* ---- watch ---- */

static void watch_line(const char *text, void *ud)
{
    bool json_out = *(bool *)ud;
    if (strncmp(text, "data: ", 6) != 0)
        return;
    if (json_out) {
        printf("%s\n", text + 6);
        fflush(stdout);
        return;
    }
    json_t *o = json_loads(text + 6, 0, NULL);
    if (!o)
        return;
    bool del = json_is_true(json_object_get(o, "deleted"));
    printf("%-6s %-6s %-32s by %-16s version %lld (was %lld)", del ? "delete" : "put",
           json_is_true(json_object_get(o, "shared")) ? "shared" : "node", key_text(o),
           json_string_value(json_object_get(o, "origin")),
           (long long)json_integer_value(json_object_get(o, "version")),
           (long long)json_integer_value(json_object_get(o, "old_version")));
    if (json_object_get(o, "value")) {
        printf(" = ");
        print_value(json_object_get(o, "value"));
    }
    printf("\n");
    fflush(stdout);
    json_decref(o);
}

static int do_watch(cli_ctx *c, const kv_args *a)
{
    char path[1024] = "/v1/kv/watch";
    bool json_out = a->format && strcmp(a->format, "json") == 0;
    if (a->format && !json_out && strcmp(a->format, "text") != 0)
        return cli_usage_error(c, "--format must be text or json");
    if (a->npos != 0)
        return cli_usage_error(c, "watch takes no arguments (filter with --prefix)");
    if (a->prefix)
        add_query(path, sizeof path, "prefix", a->prefix);
    fprintf(stderr, "watching key-value changes%s%s at %s (Ctrl-C to stop)\n",
            a->prefix ? " under " : "", a->prefix ? a->prefix : "", c->http);
    int rc = cli_stream(c, path, watch_line, &json_out);
    if (rc == CLI_OK)
        fprintf(stderr, "the agent closed the stream\n");
    return rc;
}

/* ---- commands ---- */

/* The subcommand comes first; then its flags and arguments. -1 to go on, or an exit code. */
static int parse_command(cli_ctx *c, int argc, char **argv, const char *help, const char *subs,
                         kv_args *a)
{
    int i0 = 0;
    if (argc == 0)
        return cli_usage_error(c, subs);
    int r = cli_common(c, argc, argv, &i0, help);
    if (r >= 0)
        return r;
    if (r == -2 || argv[0][0] == '-')
        return cli_usage_error(c, "put the subcommand first");
    return parse_args(c, argc, argv, help, a);
}

int cli_kv(cli_ctx *c, int argc, char **argv)
{
    kv_args a;
    int r = parse_command(c, argc, argv, kv_help, "expected put, get, del, list or watch", &a);
    if (r >= 0)
        return r;
    const char *sub = argv[0];
    if (a.node)
        return cli_usage_error(c, "--node goes with rumor state get");
    if (strcmp(sub, "put") == 0 || strcmp(sub, "del") == 0 || strcmp(sub, "delete") == 0)
        return do_write(c, "/v1/kv", &a, sub[0] == 'd');
    if (strcmp(sub, "get") == 0) {
        if (a.npos != 1)
            return cli_usage_error(c, "expected KEY");
        return do_get(c, "/v1/kv", a.pos[0]);
    }
    if (strcmp(sub, "list") == 0 || strcmp(sub, "ls") == 0) {
        char path[1024] = "/v1/kv";
        if (a.npos != 0)
            return cli_usage_error(c, "list takes no arguments (filter with --prefix)");
        if (a.prefix)
            add_query(path, sizeof path, "prefix", a.prefix);
        return do_list(c, path, &a, true);
    }
    if (strcmp(sub, "watch") == 0)
        return do_watch(c, &a);
    return cli_usage_error(c, "expected put, get, del, list or watch");
}

int cli_state(cli_ctx *c, int argc, char **argv)
{
    kv_args a;
    int r = parse_command(c, argc, argv, state_help, "expected get, put or del", &a);
    if (r >= 0)
        return r;
    const char *sub = argv[0];
    if (a.node && strcmp(sub, "get") != 0)
        return cli_usage_error(c, "--node only goes with get: a node writes only its own keys");
    if (strcmp(sub, "put") == 0 || strcmp(sub, "del") == 0 || strcmp(sub, "delete") == 0)
        return do_write(c, "/v1/state", &a, sub[0] == 'd');
    if (strcmp(sub, "get") != 0)
        return cli_usage_error(c, "expected get, put or del");
    char base[512];
    if (a.node) {
        char *esc = *a.node ? CC.easy_escape(NULL, a.node, (int)strlen(a.node)) : NULL;
        if (!esc)
            return cli_usage_error(c, "--node needs a node name");
        snprintf(base, sizeof base, "/v1/nodes/%s/state", esc);
        CC.free(esc);
    } else {
        snprintf(base, sizeof base, "/v1/state");
    }
    if (a.npos == 1)
        return do_get(c, base, a.pos[0]);
    if (a.npos != 0)
        return cli_usage_error(c, "expected at most one KEY");
    char path[1024];
    snprintf(path, sizeof path, "%s", base);
    if (a.prefix)
        add_query(path, sizeof path, "prefix", a.prefix);
    return do_list(c, path, &a, false);
}
