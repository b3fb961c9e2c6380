/* monitor, info and tags. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- monitor ---- */

typedef struct monitor_ctx {
    bool json;
    const char *type;
} monitor_ctx;

static void monitor_line(const char *text, void *ud)
{
    monitor_ctx *m = ud;
    if (strncmp(text, "data: ", 6) != 0)
        return;
    json_t *o = json_loads(text + 6, 0, NULL);
    const char *type = json_string_value(json_object_get(o, "type"));
    if (o && (!m->type || (type && strcmp(type, m->type) == 0))) {
        json_t *mem = json_object_get(o, "member");
        if (m->json) {
            printf("%s\n", text + 6);
        } else if (!mem) { /* a user event or query: name, origin, Lamport time, size */
            const char *name = json_string_value(json_object_get(o, "name"));
            printf("%-15s %-24s from %s  ltime=%lld bytes=%lld\n", type ? type : "?",
                   name ? name : "(not UTF-8)",
                   json_string_value(json_object_get(o, "origin"))
                       ? json_string_value(json_object_get(o, "origin"))
                       : "?",
                   (long long)json_integer_value(json_object_get(o, "ltime")),
                   (long long)json_integer_value(json_object_get(o, "bytes")));
        } else {
            const char *acc = json_string_value(json_object_get(o, "accuser"));
            printf("%-15s %-24s %s:%lld  status=%s incarnation=%lld%s%s\n", type ? type : "?",
                   json_string_value(json_object_get(mem, "name")),
                   json_string_value(json_object_get(mem, "addr")),
                   (long long)json_integer_value(json_object_get(mem, "port")),
                   json_string_value(json_object_get(mem, "status")),
                   (long long)json_integer_value(json_object_get(mem, "incarnation")),
                   acc && *acc ? " by " : "", acc && *acc ? acc : "");
        }
        fflush(stdout);
    }
    json_decref(o);
}

static const char monitor_help[] =
    "Usage: rumor monitor [--format text|json] [--type EVENT]\n\nStreams membership events "
    "(member-join, member-suspect, member-failed, ...), user events (user) and queries (query)\n"
    "until interrupted.";

int cli_monitor(cli_ctx *c, int argc, char **argv)
{
    monitor_ctx m = {0};
    for (int i = 0; i < argc; i++) {
        int r = cli_common(c, argc, argv, &i, monitor_help);
        if (r >= 0)
            return r;
        if (r == -2)
            continue;
        if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
            m.json = strcmp(argv[++i], "json") == 0;
        else if (strncmp(argv[i], "--format=", 9) == 0)
            m.json = strcmp(argv[i] + 9, "json") == 0;
        else if (strcmp(argv[i], "--type") == 0 && i + 1 < argc)
            m.type = argv[++i];
        else
            return cli_usage_error(c, "unknown argument");
    }
    fprintf(stderr, "monitoring events of the agent at %s (Ctrl-C to stop)\n", c->http);
    int rc = cli_stream(c, "/v1/events", monitor_line, &m);
    if (rc == CLI_OK)
        fprintf(stderr, "the agent closed the stream\n");
    return rc;
}

/* ---- info ---- */

static void print_object(const char *title, json_t *o)
{
    const char *k;
    json_t *v;
    printf("%s:\n", title);
    json_object_foreach(o, k, v)
    {
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (json_is_string(v))
            printf("  %-20s %s\n", k, json_string_value(v));
        else
            printf("  %-20s %s\n", k, text ? text : "?");
        free(text);
    }
}

static const char info_help[] = "Usage: rumor info [--format text|json]\n\nShows this agent, "
                                "its counters and a summary of its configuration.";

static void render_info(json_t *o, void *ud)
{
    (void)ud;
    print_object("self", json_object_get(o, "self"));
    print_object("members", json_object_get(o, "members"));
    print_object("stats", json_object_get(o, "stats"));
    print_object("config", json_object_get(o, "config"));
}

int cli_info(cli_ctx *c, int argc, char **argv)
{
    bool json_out = false;
    for (int i = 0; i < argc; i++) {
        int r = cli_common(c, argc, argv, &i, info_help);
        if (r >= 0)
            return r;
        if (r == -2)
            continue;
        if ((strcmp(argv[i], "--format") == 0 && i + 1 < argc) ||
            strncmp(argv[i], "--format=", 9) == 0)
            json_out = strcmp(argv[i][8] == '=' ? argv[i] + 9 : argv[++i], "json") == 0;
        else
            return cli_usage_error(c, "unknown argument");
    }
    return cli_get_show(c, "/v1/info", json_out, render_info, NULL);
}

/* ---- tags ---- */

static const char tags_help[] =
    "Usage: rumor tags set K=V... | rumor tags delete K...\n\nChanges this agent's tags; they "
    "are saved in its data dir and gossiped to the cluster.";

static int tags_collect(cli_ctx *c, int argc, char **argv, bool set, json_t *out)
{
    for (int i = 1; i < argc; i++) {
        int r = cli_common(c, argc, argv, &i, tags_help);
        if (r >= 0)
            return r;
        if (r == -2)
            continue;
        const char *eq = strchr(argv[i], '=');
        if (set && (!eq || eq == argv[i]))
            return cli_usage_error(c, "tags set takes KEY=VALUE arguments");
        if (set) {
            char key[129];
            size_t klen = (size_t)(eq - argv[i]);
            if (klen >= sizeof key)
                return cli_usage_error(c, "tag key longer than 128 bytes");
            memcpy(key, argv[i], klen);
            key[klen] = '\0';
            json_object_set_new(out, key, json_string(eq + 1));
        } else {
            json_array_append_new(out, json_string(argv[i]));
        }
    }
    return -1;
}

int cli_tags(cli_ctx *c, int argc, char **argv)
{
    int i0 = 0;
    if (argc > 0 && cli_common(c, argc, argv, &i0, tags_help) == CLI_OK)
        return CLI_OK;
    if (argc < 1 || (strcmp(argv[0], "set") != 0 && strcmp(argv[0], "delete") != 0))
        return cli_usage_error(c, "expected \"set K=V...\" or \"delete K...\"");
    bool set = strcmp(argv[0], "set") == 0;
    json_t *items = set ? json_object() : json_array();
    int r = tags_collect(c, argc, argv, set, items);
    if (r >= 0 || (set ? json_object_size(items) : json_array_size(items)) == 0) {
        json_decref(items);
        return r >= 0 ? r : cli_usage_error(c, "nothing to change");
    }
    json_t *req = json_pack("{s:o}", set ? "set" : "delete", items);
    char *text = json_dumps(req, JSON_COMPACT), *body = NULL;
    json_decref(req);
    long status = 0;
    int rc = cli_request(c, "PUT", "/v1/tags", text, &status, &body);
    free(text);
    if (rc == CLI_OK && status != 200)
        rc = cli_report_error(c, status, body);
    else if (rc == CLI_OK) {
        json_t *o = cli_parse(c, body);
        char *t = o ? json_dumps(json_object_get(o, "tags"), JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        if (o)
            printf("tags now: %s\n", t ? t : "{}");
        else
            rc = CLI_FAILED;
        free(t);
        json_decref(o);
    }
    free(body);
    return rc;
}
