/* keygen and keys: make an encryption key; list, install, promote and remove keys. */
#include "cli.h"
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
    "Usage: rumor keys list [--format text|json]\n"
    "       rumor keys install KEY   add a key that decrypts (not used to encrypt yet)\n"
    "       rumor keys use KEY       make an installed key the primary (it encrypts)\n"
    "       rumor keys remove KEY    drop a key (not the primary)\n\n"
    "Manages the encryption keyring of the agent at --http. Rotation: install the new key,\n"
    "make it primary, then remove the old one - on every agent, one step at a time, so that\n"
    "every member can always read every other. These commands change this agent only\n"
    "(\"scope\": \"local\" in the answer); the agent also rewrites its --keyring file.";

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
    json_t *keys = json_object_get(o, "keys");
    long long members = json_integer_value(json_object_get(o, "members"));
    long long answered = json_integer_value(json_object_get(o, "responses"));
    if (!json_is_true(json_object_get(o, "enabled"))) {
        printf("encryption is not enabled on this agent\n");
        return;
    }
    printf("%lld of %lld member(s) answered (scope: %s)\n", answered, members,
           json_string_value(json_object_get(o, "scope")));
    const char *k;
    json_t *v;
    json_object_foreach(keys, k, v)
    {
        bool is_primary = primary && strcmp(k, primary) == 0;
        printf("  %s  %lld/%lld%s\n", k, (long long)json_integer_value(v), members,
               is_primary ? "  [primary]" : "");
    }
    const char *file = json_string_value(json_object_get(o, "keyring_file"));
    if (file)
        printf("keyring file: %s\n", file);
}

int cli_keys(cli_ctx *c, int argc, char **argv)
{
    int i0 = 0;
    if (argc > 0 && cli_common(c, argc, argv, &i0, keys_help) == CLI_OK)
        return CLI_OK;
    if (argc < 1)
        return cli_usage_error(c, "expected list, install KEY, use KEY or remove KEY");
    const char *sub = argv[0], *key = NULL;
    bool json_out = false;
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
    char *req = NULL;
    if (key) {
        json_t *o = json_pack("{s:s}", "key", key);
        req = json_dumps(o, JSON_COMPACT);
        json_decref(o);
    }
    long status = 0;
    char *body = NULL;
    int rc = cli_request(c, method, path, req, &status, &body);
    if (req) {
        sodium_memzero(req, strlen(req));
        free(req);
    }
    if (rc == CLI_OK && status != 200) {
        rc = cli_report_error(c, status, body);
    } else if (rc == CLI_OK && json_out) {
        printf("%s\n", body);
    } else if (rc == CLI_OK) {
        json_t *o = cli_parse(c, body);
        if (!o) {
            rc = CLI_FAILED;
        } else {
            if (strcmp(sub, "list") != 0)
                printf("key %s\n", strcmp(sub, "install") == 0 ? "installed"
                                   : strcmp(sub, "use") == 0   ? "is now the primary"
                                                               : "removed");
            print_keys(o);
        }
        json_decref(o);
    }
    free(body);
    return rc;
}
