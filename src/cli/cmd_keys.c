/* keygen and keys: make an encryption key; list, install, promote and remove keys. */
#include "cli.h"
#include "duration.h"
#include "rumor.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char keygen_help[] =
    "Usage: rumor keygen\n\nPrints a new random 32-byte encryption key, base64-encoded, for "
    "rumor agent --encrypt\nor a keyring file. Every agent of a cluster needs the same key.";

int cli_keygen(int argc, char **argv)
{
    if (argc > 0 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
        puts(keygen_help);
        return CLI_OK;
    }
    if (argc > 0) {
        fprintf(stderr, "rumor keygen: takes no arguments (see rumor keygen --help)\n");
        return CLI_USAGE;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "rumor keygen: libsodium failed to initialize\n");
        return CLI_FAILED;
    }
    uint8_t key[RUMOR_KEY_BYTES];
    char b64[sodium_base64_ENCODED_LEN(RUMOR_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    randombytes_buf(key, sizeof key);
    sodium_bin2base64(b64, sizeof b64, key, sizeof key, sodium_base64_VARIANT_ORIGINAL);
    puts(b64);
    sodium_memzero(key, sizeof key);
    sodium_memzero(b64, sizeof b64);
    return CLI_OK;
}

static const char keys_help[] =
    "Usage: rumor keys list    [--local] [--timeout DUR] [--format text|json]\n"
    "       rumor keys install KEY [...]  add a key that decrypts (not used to encrypt yet)\n"
    "       rumor keys use KEY     [...]  make an installed key the primary (it encrypts)\n"
    "       rumor keys remove KEY  [...]  drop a key (not the primary)\n\n"
    "Manages the encryption keyring of every member of the cluster, through the agent at\n"
    "--http (Serf's `keys`): each member applies the operation and confirms, and the answer\n"
    "says how many members were asked, how many confirmed, the error of each member that\n"
    "refused and who did not answer in time. `list` shows each key with how many members hold\n"
    "it and how many use it as primary. Rotation: install the new key, use it, remove the old\n"
    "one, each step confirmed by every member before the next. Members rewrite their --keyring\n"
    "file.\n\n"
    "  --local          change or list this agent only\n"
    "  --timeout DUR    how long to wait for the members' answers (default: the agent's query\n"
    "                   timeout, a few seconds)\n\n"
    "Exit status: 0 when every member confirmed, 1 when a member refused or did not answer\n"
    "(their names are printed), 2 for bad arguments, 3 when no agent answered.";

#define KEYS_TIMEOUT_MIN_MS 100u
#define KEYS_TIMEOUT_MAX_MS 300000u
#define KEYS_HTTP_SLACK_MS  15000L

static bool key_ok(const char *text)
{
    uint8_t key[RUMOR_KEY_BYTES];
    size_t len = 0;
    const char *end = NULL;
    bool ok = sodium_base642bin(key, sizeof key, text, strlen(text), NULL, &len, &end,
                                sodium_base64_VARIANT_ORIGINAL) == 0 &&
              len == sizeof key && *end == '\0';
    sodium_memzero(key, sizeof key);
    return ok;
}

static void print_keys(json_t *o)
{
    const char *primary = json_string_value(json_object_get(o, "primary"));
    json_t *keys = json_object_get(o, "keys"), *primaries = json_object_get(o, "primaries");
    long long members = json_integer_value(json_object_get(o, "members"));
    long long answered = json_integer_value(json_object_get(o, "responses"));
    long long confirmed = json_integer_value(json_object_get(o, "confirmed"));
    if (!json_is_true(json_object_get(o, "enabled"))) {
        printf("encryption is not enabled on this agent\n");
        return;
    }
    printf("%lld of %lld member(s) answered, %lld confirmed (scope: %s)\n", answered, members,
           confirmed, json_string_value(json_object_get(o, "scope")));
    const char *k;
    json_t *v;
    json_object_foreach(keys, k, v)
    {
        long long prim = json_integer_value(json_object_get(primaries, k));
        bool is_primary = primary && strcmp(k, primary) == 0;
        if (prim && !is_primary)
            printf("  %s  %lld/%lld members  [primary on %lld]\n", k,
                   (long long)json_integer_value(v), members, prim);
        else
            printf("  %s  %lld/%lld members%s\n", k, (long long)json_integer_value(v), members,
                   is_primary ? "  [primary]" : "");
    }
    json_object_foreach(json_object_get(o, "errors"), k, v)
        printf("  failed: %s: %s\n", k, json_string_value(v));
    size_t i;
    json_array_foreach(json_object_get(o, "no_response"), i, v)
        printf("  no answer: %s\n", json_string_value(v));
    const char *file = json_string_value(json_object_get(o, "keyring_file"));
    if (file)
        printf("keyring file: %s\n", file);
}

/* Exit status from the report: every member that did not confirm is named on stderr. */
static int report_incomplete(const cli_ctx *c, json_t *o, const char *sub)
{
    if (!o || json_is_true(json_object_get(o, "complete")))
        return CLI_OK;
    json_t *errors = json_object_get(o, "errors"), *silent = json_object_get(o, "no_response");
    fprintf(stderr, "rumor %s %s: %zu member(s) refused, %zu did not answer:", c->cmd, sub,
            json_object_size(errors), json_array_size(silent));
    const char *k;
    json_t *v;
    size_t i;
    json_object_foreach(errors, k, v) fprintf(stderr, " %s (%s)", k, json_string_value(v));
    json_array_foreach(silent, i, v) fprintf(stderr, " %s (no answer)", json_string_value(v));
    fprintf(stderr, "\n");
    return CLI_FAILED;
}

int cli_keys(cli_ctx *c, int argc, char **argv)
{
    int i0 = 0;
    if (argc > 0 && cli_common(c, argc, argv, &i0, keys_help) == CLI_OK)
        return CLI_OK;
    if (argc < 1)
        return cli_usage_error(c, "expected list, install KEY, use KEY or remove KEY");
    const char *sub = argv[0], *key = NULL, *timeout = NULL;
    bool json_out = false, local = false;
    for (int i = 1; i < argc; i++) {
        int r = cli_common(c, argc, argv, &i, keys_help);
        if (r >= 0)
            return r;
        if (r == -2)
            continue;
        if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
            json_out = strcmp(argv[++i], "json") == 0;
        else if (strncmp(argv[i], "--format=", 9) == 0)
            json_out = strcmp(argv[i] + 9, "json") == 0;
        else if (strcmp(argv[i], "--local") == 0)
            local = true;
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            timeout = argv[++i];
        else if (strncmp(argv[i], "--timeout=", 10) == 0)
            timeout = argv[i] + 10;
        else if (!key && argv[i][0] != '-')
            key = argv[i];
        else
            return cli_usage_error(c, "unexpected argument");
    }
    const char *method, *path = "/v1/keys";
    if (strcmp(sub, "list") == 0) {
        method = "GET";
        if (key)
            return cli_usage_error(c, "list takes no key");
    } else if (strcmp(sub, "install") == 0) {
        method = "POST";
    } else if (strcmp(sub, "use") == 0) {
        method = "PUT";
        path = "/v1/keys/primary";
    } else if (strcmp(sub, "remove") == 0) {
        method = "DELETE";
    } else {
        return cli_usage_error(c, "expected list, install KEY, use KEY or remove KEY");
    }
    if (strcmp(sub, "list") != 0 && (!key || !key_ok(key)))
        return cli_usage_error(c, "expected a base64-encoded 32-byte key (rumor keygen)");
    uint64_t ms = 0;
    if (timeout &&
        (local || duration_parse_ms(timeout, KEYS_TIMEOUT_MIN_MS, KEYS_TIMEOUT_MAX_MS, &ms) != 0))
        return cli_usage_error(c, local ? "--timeout applies to cluster operations, not --local"
                                        : "--timeout takes a duration from 100ms to 5m, e.g. 5s");
    char url[128];
    if (local)
        snprintf(url, sizeof url, "%s?scope=local", path);
    else if (timeout)
        snprintf(url, sizeof url, "%s?timeout=%llums", path, (unsigned long long)ms);
    else
        snprintf(url, sizeof url, "%s", path);
    if (!local && c->timeout_ms <= 0)
        c->timeout_ms = (long)(timeout ? ms : KEYS_TIMEOUT_MAX_MS) + KEYS_HTTP_SLACK_MS;
    char *req = NULL;
    if (key) {
        json_t *o = json_pack("{s:s}", "key", key);
        req = json_dumps(o, JSON_COMPACT);
        json_decref(o);
    }
    long status = 0;
    char *body = NULL;
    int rc = cli_request(c, method, url, req, &status, &body);
    if (req) {
        sodium_memzero(req, strlen(req));
        free(req);
    }
    if (rc == CLI_OK && status != 200) {
        rc = cli_report_error(c, status, body);
    } else if (rc == CLI_OK) {
        json_t *o = cli_parse(c, body);
        if (!o) {
            rc = CLI_FAILED;
        } else if (json_out) {
            printf("%s\n", body);
        } else {
            const char *scope = json_string_value(json_object_get(o, "scope"));
            bool cluster = !scope || strcmp(scope, "local") != 0;
            if (strcmp(sub, "list") != 0 && json_is_true(json_object_get(o, "enabled")))
                printf("key %s%s\n",
                       strcmp(sub, "install") == 0 ? "installed"
                       : strcmp(sub, "use") == 0   ? "made primary"
                                                   : "removed",
                       cluster ? json_is_true(json_object_get(o, "complete"))
                                     ? " on every member"
                                     : " (not confirmed by every member)"
                               : "");
            print_keys(o);
        }
        if (o)
            rc = report_incomplete(c, o, sub);
        json_decref(o);
    }
    free(body);
    return rc;
}
