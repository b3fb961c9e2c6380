/* `rumor identity` (a node's public key) and `rumor ca init|sign` (a cluster authority). The
 * key files and the certificate format are described in src/agent/idkeys.h. */
#include "cli.h"

#include "idkeys.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void agent_fingerprint(const uint8_t *pk, char out[24]);

/* ---- rumor identity ---- */

static const char identity_help[] =
    "Usage: rumor identity [--data-dir DIR] [--format text|json]\n\n"
    "Shows this node's Ed25519 public key and fingerprint. With --data-dir it reads the key pair\n"
    "there, creating it (mode 0600) when the directory has none yet, so the key can be certified\n"
    "(rumor ca sign) before the agent first starts; without, it asks the running agent.";

static void print_key(const uint8_t *pk, const char *where, bool enabled, bool json)
{
    char text[KEYS_TEXT_MAX], fp[24];
    keys_public_text(pk, text);
    agent_fingerprint(pk, fp);
    if (json) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:b}", "public_key", text, "fingerprint", fp, "source",
                              where, "enabled", enabled);
        char *s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(o);
        return;
    }
    printf("public key   %s\nfingerprint  %s\nsource       %s\n", text, fp, where);
}

static int identity_from_agent(cli_ctx *c, bool json)
{
    long status = 0;
    char *body = NULL;
    int rc = cli_request(c, "GET", "/v1/info", NULL, &status, &body);
    if (rc != CLI_OK)
        return rc;
    if (status != 200) {
        rc = cli_report_error(c, status, body);
        free(body);
        return rc;
    }
    json_t *o = cli_parse(c, body);
    free(body);
    if (!o)
        return CLI_FAILED;
    json_t *id = json_object_get(json_object_get(o, "config"), "identity");
    const char *pk = json_string_value(json_object_get(id, "public_key"));
    uint8_t key[32];
    char why[256];
    if (!pk || keys_public_parse(pk, key, why, sizeof why) != 0) {
        fprintf(stderr, "rumor identity: the agent has no key pair (it runs without --data-dir)\n");
        json_decref(o);
        return CLI_FAILED;
    }
    bool on = json_is_true(json_object_get(id, "enabled"));
    print_key(key, on ? "the agent (identities on)" : "the agent (identities off)", on, json);
    json_decref(o);
    return CLI_OK;
}

int cli_identity(cli_ctx *c, int argc, char **argv)
{
    const char *dir = NULL;
    bool json = false;
    for (int i = 0; i < argc; i++) {
        int r = cli_common(c, argc, argv, &i, identity_help);
        if (r >= 0)
            return r;
        if (r == -2)
            continue;
        if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strncmp(argv[i], "--data-dir=", 11) == 0)
            dir = argv[i] + 11;
        else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
            json = strcmp(argv[++i], "json") == 0;
        else if (strncmp(argv[i], "--format=", 9) == 0)
            json = strcmp(argv[i] + 9, "json") == 0;
        else
            return cli_usage_error(c, "unknown argument");
    }
    if (!dir)
        return identity_from_agent(c, json);
    uint8_t seed[32], pk[32];
    char err[1024];
    bool created = false;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "rumor identity: cannot create %s: %s\n", dir, strerror(errno));
        return CLI_FAILED;
    }
    int rc = keys_load_pair(dir, KEYS_NODE_SECRET, KEYS_NODE_PUBLIC, true, seed, pk, &created, err,
                            sizeof err);
    sodium_memzero(seed, sizeof seed);
    if (rc != 0) {
        fprintf(stderr, "rumor identity: %s\n", err);
        return CLI_FAILED;
    }
    char where[4200];
    snprintf(where, sizeof where, "%s/%s%s", dir, KEYS_NODE_SECRET,
             created ? " (created now)" : "");
    print_key(pk, where, true, json);
    return CLI_OK;
}

/* ---- rumor ca ---- */

static const char ca_help[] =
    "Usage: rumor ca init [--dir DIR]\n"
    "       rumor ca sign NODE_PUBKEY --name NODE [--dir DIR] [--valid-for DURATION] [--out "
    "FILE]\n\n"
    "A cluster authority: agents started with --ca-key DIR/ca.pub admit only nodes holding a\n"
    "certificate it signed, and bind each node name to its key.\n\n"
    "  init   creates the authority's key pair in DIR (default .): ca.key (secret, mode 0600;\n"
    "         keep it away from the cluster) and ca.pub (give it to every agent).\n"
    "  sign   certifies that NODE owns NODE_PUBKEY (\"ed25519:...\" or an identity.pub file, as\n"
    "         `rumor identity --data-dir` prints it) and prints the certificate (JSON), or\n"
    "         writes it to FILE; the agent takes it with --ca-cert FILE. DURATION: N followed\n"
    "         by s, m, h or d (default: no expiry).\n\n"
    "Exit codes: 0 ok, 1 failed, 2 bad usage.";

static int ca_usage(const char *what)
{
    fprintf(stderr, "rumor ca: %s (see rumor ca --help)\n", what);
    return CLI_USAGE;
}

/* "90d", "12h", "30m", "45s" as milliseconds; 0 for "0". */
static int parse_duration(const char *v, uint64_t *ms)
{
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || end == v || *v == '-')
        return -1;
    uint64_t unit = *end == 's'              ? 1000u
                    : *end == 'm'            ? 60000u
                    : *end == 'h'            ? 3600000u
                    : *end == 'd'            ? 86400000u
                    : *end == '\0' && n == 0 ? 1u
                                             : 0u;
    if (!unit || (*end && end[1]) || n > UINT64_MAX / unit / 2)
        return -1;
    *ms = n * unit;
    return 0;
}

static int ca_init(int argc, char **argv)
{
    const char *dir = ".";
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strncmp(argv[i], "--dir=", 6) == 0)
            dir = argv[i] + 6;
        else
            return ca_usage("unknown argument to ca init");
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "rumor ca init: cannot create %s: %s\n", dir, strerror(errno));
        return CLI_FAILED;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, KEYS_CA_SECRET);
    struct stat st;
    if (stat(path, &st) == 0) {
        fprintf(stderr,
                "rumor ca init: %s already holds an authority key; refusing to replace "
                "it (every certificate depends on it)\n",
                path);
        return CLI_FAILED;
    }
    uint8_t seed[32], pk[32];
    char err[1024], text[KEYS_TEXT_MAX];
    int rc =
        keys_load_pair(dir, KEYS_CA_SECRET, KEYS_CA_PUBLIC, true, seed, pk, NULL, err, sizeof err);
    sodium_memzero(seed, sizeof seed);
    if (rc != 0) {
        fprintf(stderr, "rumor ca init: %s\n", err);
        return CLI_FAILED;
    }
    keys_public_text(pk, text);
    printf("authority created: %s (secret, mode 0600) and %s/%s\npublic key %s\n", path, dir,
           KEYS_CA_PUBLIC, text);
    return CLI_OK;
}

static int write_out(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fputc('\n', f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "rumor ca sign: cannot write %s: %s\n", path, strerror(errno));
        return CLI_FAILED;
    }
    return CLI_OK;
}

static int ca_sign(int argc, char **argv)
{
    const char *dir = ".", *name = NULL, *out = NULL, *node_key = NULL;
    uint64_t valid_ms = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (strcmp(a, "--dir") == 0 && more)
            dir = argv[++i];
        else if (strcmp(a, "--name") == 0 && more)
            name = argv[++i];
        else if (strcmp(a, "--out") == 0 && more)
            out = argv[++i];
        else if (strcmp(a, "--valid-for") == 0 && more) {
            if (parse_duration(argv[++i], &valid_ms) != 0)
                return ca_usage("--valid-for takes N followed by s, m, h or d (e.g. 90d)");
        } else if (strncmp(a, "--", 2) == 0)
            return ca_usage("unknown flag, or a flag without its value");
        else if (!node_key)
            node_key = a;
        else
            return ca_usage("ca sign takes one NODE_PUBKEY");
    }
    if (!node_key || !name)
        return ca_usage("ca sign needs NODE_PUBKEY and --name NODE");
    size_t nl = strlen(name);
    if (nl == 0 || nl > RUMOR_NAME_MAX)
        return ca_usage("--name must be 1..128 bytes");
    keys_cert c;
    memset(&c, 0, sizeof c);
    char err[1024];
    if (keys_load_public(node_key, c.public_key, err, sizeof err) != 0) {
        fprintf(stderr, "rumor ca sign: NODE_PUBKEY: %s\n", err);
        return CLI_FAILED;
    }
    uint8_t seed[32];
    if (keys_load_pair(dir, KEYS_CA_SECRET, KEYS_CA_PUBLIC, false, seed, c.authority, NULL, err,
                       sizeof err) != 0) {
        fprintf(stderr, "rumor ca sign: %s%s%s\n", err,
                strstr(err, "does not exist") ? "; create an authority with rumor ca init --dir "
                                              : "",
                strstr(err, "does not exist") ? dir : "");
        return CLI_FAILED;
    }
    snprintf(c.name, sizeof c.name, "%s", name);
    c.expires_ms = valid_ms ? keys_unix_ms() + valid_ms : 0;
    int rc = rumor_identity_cert_sign(seed, c.name, c.public_key, c.expires_ms, c.signature);
    sodium_memzero(seed, sizeof seed);
    if (rc != 0) {
        fprintf(stderr, "rumor ca sign: %s\n", rumor_strerror(rc));
        return CLI_FAILED;
    }
    char *text = keys_cert_json(&c);
    if (!text) {
        fprintf(stderr, "rumor ca sign: out of memory\n");
        return CLI_FAILED;
    }
    rc = out ? write_out(out, text) : (printf("%s\n", text), CLI_OK);
    free(text);
    return rc;
}

int cli_ca(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        printf("%s\n", ca_help);
        return argc < 1 ? CLI_USAGE : CLI_OK;
    }
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("%s\n", ca_help);
            return CLI_OK;
        }
    if (strcmp(argv[0], "init") == 0)
        return ca_init(argc - 1, argv + 1);
    if (strcmp(argv[0], "sign") == 0)
        return ca_sign(argc - 1, argv + 1);
    return ca_usage("expected \"init\" or \"sign\"");
}
