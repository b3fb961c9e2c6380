/* The client subcommands. Each prints what it did in words, or the agent's error. */
#include "cli.h"

#include "curl_shim.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_common_flag(cli_ctx *c, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
        return 1;
    if (strncmp(a, "--http=", 7) == 0) {
        c->http = a + 7;
        return 2;
    }
    if (strcmp(a, "--http") == 0) {
        if (*i + 1 >= argc) {
            fprintf(stderr, "rumor %s: --http needs ADDR:PORT\n", c->cmd);
            return -1;
        }
        c->http = argv[++*i];
        return 2;
    }
    return 0;
}

int cli_usage_error(const cli_ctx *c, const char *what)
{
    fprintf(stderr, "rumor %s: %s (see rumor %s --help)\n", c->cmd, what, c->cmd);
    return CLI_USAGE;
}

int cli_common(cli_ctx *c, int argc, char **argv, int *i, const char *help)
{
    int r = cli_common_flag(c, argc, argv, i);
    if (r == 1) {
        printf("%s\nCommon flags:\n  --http ADDR:PORT  the agent's HTTP API (default $%s or "
               "127.0.0.1:7947)\n  --help            this text\n\nExit codes: 0 ok, 1 the "
               "agent reported an error, 2 bad usage, 3 no agent answered.\n",
               help, CLI_HTTP_ENV);
        return CLI_OK;
    }
    if (r < 0)
        return CLI_USAGE;
    return r == 2 ? -2 : -1;
}

static const char *value_of(int argc, char **argv, int *i, const char *flag)
{
    size_t len = strlen(flag);
    if (strncmp(argv[*i], flag, len) == 0 && argv[*i][len] == '=')
        return argv[*i] + len + 1;
    if (strcmp(argv[*i], flag) == 0 && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

/* ---- members ---- */

static void print_tags(json_t *tags, char *out, size_t cap)
{
    const char *k;
    json_t *v;
    size_t len = 0;
    out[0] = '\0';
    json_object_foreach(tags, k, v)
    {
        int n = snprintf(out + len, cap - len, "%s%s=%s", len ? "," : "", k,
                         json_is_string(v) ? json_string_value(v) : "?");
        if (n < 0 || (size_t)n >= cap - len)
            break;
        len += (size_t)n;
    }
}

static void members_table(json_t *members)
{
    size_t i;
    json_t *m;
    /* With identities, each member's key fingerprint gets a column. */
    bool keys = false;
    json_array_foreach(members, i, m) keys =
        keys || json_is_string(json_object_get(m, "fingerprint"));
    printf("%-24s %-24s %-8s %-11s ", "NAME", "ADDRESS", "STATUS", "INCARNATION");
    if (keys)
        printf("%-19s ", "KEY");
    printf("TAGS\n");
    json_array_foreach(members, i, m)
    {
        char addr[80], tags[512];
        const char *ip = json_string_value(json_object_get(m, "addr"));
        int port = (int)json_integer_value(json_object_get(m, "port"));
        snprintf(addr, sizeof addr, strchr(ip ? ip : "", ':') ? "[%s]:%d" : "%s:%d", ip ? ip : "?",
                 port);
        print_tags(json_object_get(m, "tags"), tags, sizeof tags);
        printf("%-24s %-24s %-8s %-11lld ", json_string_value(json_object_get(m, "name")), addr,
               json_string_value(json_object_get(m, "status")),
               (long long)json_integer_value(json_object_get(m, "incarnation")));
        if (keys) {
            const char *fp = json_string_value(json_object_get(m, "fingerprint"));
            printf("%-19s ", fp ? fp : "-");
        }
        printf("%s\n", tags);
    }
}

static void append_query(char *path, size_t cap, const char *key, const char *v)
{
    char *esc = CC.easy_escape(NULL, v, 0);
    size_t len = strlen(path);
    snprintf(path + len, cap - len, "%s=%s&", key, esc ? esc : "");
    CC.free(esc);
}

static const char members_help[] =
    "Usage: rumor members [--format table|json] [--status S[,S]] [--tag K=V]...\n\n"
    "Lists the members the agent knows. Status is alive, suspect, failed or left.\n"
    "--format json prints {\"members\": [{name, addr, port, status, incarnation, tags,\n"
    "public_key, fingerprint}]}. With identities the table shows each key's fingerprint.";

static void render_members(json_t *o, void *ud)
{
    (void)ud;
    members_table(json_object_get(o, "members"));
}

int cli_members(cli_ctx *c, int argc, char **argv)
{
    bool json_out = false;
    char path[2048] = "/v1/members?";
    for (int i = 0; i < argc; i++) {
        int r = cli_common(c, argc, argv, &i, members_help);
        const char *v;
        if (r >= 0)
            return r;
        if (r == -2)
            continue;
        if ((v = value_of(argc, argv, &i, "--format"))) {
            if (strcmp(v, "json") != 0 && strcmp(v, "table") != 0)
                return cli_usage_error(c, "--format must be table or json");
            json_out = strcmp(v, "json") == 0;
        } else if ((v = value_of(argc, argv, &i, "--status"))) {
            append_query(path, sizeof path, "status", v);
        } else if ((v = value_of(argc, argv, &i, "--tag"))) {
            append_query(path, sizeof path, "tag", v);
        } else if (strncmp(argv[i], "--", 2) == 0 && i + 1 == argc) {
            return cli_usage_error(c, "this flag needs a value, or is unknown");
        } else {
            return cli_usage_error(c, "unknown argument");
        }
    }
    return cli_get_show(c, path, json_out, render_members, NULL);
}

/* ---- join, leave ---- */

static const char join_help[] = "Usage: rumor join HOST[:PORT]...\n\nAsks the agent to join "
                                "the cluster through these members (names are resolved).";

int cli_join(cli_ctx *c, int argc, char **argv)
{
    json_t *addrs = json_array();
    for (int i = 0; i < argc; i++) {
        int r = cli_common(c, argc, argv, &i, join_help);
        if (r >= 0) {
            json_decref(addrs);
            return r;
        }
        if (r == -1)
            json_array_append_new(addrs, json_string(argv[i]));
    }
    if (json_array_size(addrs) == 0) {
        json_decref(addrs);
        return cli_usage_error(c, "give at least one address to join");
    }
    json_t *req = json_pack("{s:o}", "addrs", addrs);
    char *text = json_dumps(req, JSON_COMPACT), *body = NULL;
    json_decref(req);
    long status = 0;
    int rc = cli_request(c, "POST", "/v1/join", text, &status, &body);
    free(text);
    if (rc == CLI_OK && status != 200)
        rc = cli_report_error(c, status, body);
    else if (rc == CLI_OK) {
        json_t *o = cli_parse(c, body);
        if (o)
            printf("joined: %lld of %lld address(es) answered\n",
                   (long long)json_integer_value(json_object_get(o, "joined")),
                   (long long)json_integer_value(json_object_get(o, "seeds")));
        else
            rc = CLI_FAILED;
        json_decref(o);
    }
    free(body);
    return rc;
}

static const char leave_help[] = "Usage: rumor leave\n\nThe agent leaves the cluster "
                                 "gracefully, then exits.";

int cli_leave(cli_ctx *c, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        int r = cli_common(c, argc, argv, &i, leave_help);
        if (r >= 0)
            return r;
        if (r == -1)
            return cli_usage_error(c, "unexpected argument");
    }
    long status = 0;
    char *body = NULL;
    int rc = cli_request(c, "POST", "/v1/leave", "{}", &status, &body);
    if (rc == CLI_OK && status != 200)
        rc = cli_report_error(c, status, body);
    else if (rc == CLI_OK)
        printf("the agent is leaving the cluster and will exit\n");
    free(body);
    return rc;
}
