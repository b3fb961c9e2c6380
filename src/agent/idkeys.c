/* Identity keys and certificates on disk: see idkeys.h. */
#include "idkeys.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SECRET_PREFIX "ed25519-secret:"
#define PUBLIC_PREFIX "ed25519:"
#define B64           sodium_base64_VARIANT_ORIGINAL

uint64_t keys_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void encode(const char *prefix, const uint8_t *bytes, char *out, size_t cap)
{
    size_t pl = strlen(prefix);
    memcpy(out, prefix, pl);
    sodium_bin2base64(out + pl, cap - pl, bytes, 32, B64);
}

void keys_public_text(const uint8_t *pk, char out[KEYS_TEXT_MAX])
{
    encode(PUBLIC_PREFIX, pk, out, KEYS_TEXT_MAX);
}

/* Decodes "<prefix><base64 of exactly `n` bytes>", ignoring white space around it. */
static int decode(const char *text, const char *prefix, uint8_t *out, size_t n)
{
    while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
        text++;
    size_t pl = strlen(prefix);
    if (strncmp(text, prefix, pl) != 0)
        return -1;
    text += pl;
    size_t len = strcspn(text, " \t\r\n"), got = 0;
    const char *end = NULL;
    if (sodium_base642bin(out, n, text, len, NULL, &got, &end, B64) != 0 || got != n ||
        end != text + len)
        return -1;
    for (end = text + len; *end; end++)
        if (*end != ' ' && *end != '\t' && *end != '\r' && *end != '\n')
            return -1;
    return 0;
}

int keys_public_parse(const char *text, uint8_t *pk, char *err, size_t cap)
{
    if (decode(text, PUBLIC_PREFIX, pk, 32) == 0)
        return 0;
    if (strstr(text, SECRET_PREFIX))
        snprintf(err, cap,
                 "this is a secret key, not a public one: keep it secret and give the "
                 "\"ed25519:...\" public key instead");
    else
        snprintf(err, cap, "expected an Ed25519 public key \"ed25519:<base64 of 32 bytes>\"");
    return -1;
}

/* Reads a small text file into `buf`. Returns 0, 1 when it does not exist, -1 otherwise. */
static int read_small(const char *path, char *buf, size_t cap, struct stat *st, char *err,
                      size_t ecap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        snprintf(err, ecap, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    ssize_t n = -1;
    if (fstat(fd, st) == 0)
        n = read(fd, buf, cap - 1);
    int e = errno;
    close(fd);
    if (n < 0) {
        snprintf(err, ecap, "cannot read %s: %s", path, strerror(e));
        return -1;
    }
    buf[n] = '\0';
    return 0;
}

static int write_file(const char *path, const char *text, mode_t mode, char *err, size_t cap)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        snprintf(err, cap, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    size_t len = strlen(text);
    bool ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    int e = errno;
    close(fd);
    if (!ok) {
        unlink(path);
        snprintf(err, cap, "cannot write %s: %s", path, strerror(e));
        return -1;
    }
    return 0;
}

static int create_pair(const char *sec_path, const char *pub_path, uint8_t *seed, uint8_t *pk,
                       char *err, size_t cap)
{
    char text[KEYS_TEXT_MAX + 16];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    randombytes_buf(seed, 32);
    crypto_sign_seed_keypair(pk, sk, seed);
    sodium_memzero(sk, sizeof(sk));
    encode(SECRET_PREFIX, seed, text, sizeof(text) - 1);
    strcat(text, "\n");
    int rc = write_file(sec_path, text, 0600, err, cap);
    sodium_memzero(text, sizeof(text));
    if (rc != 0)
        return -1;
    keys_public_text(pk, text);
    strcat(text, "\n");
    (void)unlink(pub_path); /* a stale public file of an older key */
    if (write_file(pub_path, text, 0644, err, cap) != 0) {
        unlink(sec_path);
        return -1;
    }
    return 0;
}

int keys_load_pair(const char *dir, const char *secret_name, const char *public_name, bool create,
                   uint8_t *seed, uint8_t *pk, bool *created, char *err, size_t cap)
{
    char sec_path[4096], pub_path[4096], text[256], why[300];
    struct stat st;
    if (created)
        *created = false;
    if (sodium_init() < 0) {
        snprintf(err, cap, "libsodium failed to initialise");
        return -1;
    }
    snprintf(sec_path, sizeof(sec_path), "%s/%s", dir, secret_name);
    snprintf(pub_path, sizeof(pub_path), "%s/%s", dir, public_name);
    int rc = read_small(sec_path, text, sizeof(text), &st, err, cap);
    if (rc < 0)
        return -1;
    if (rc == 1) {
        if (!create) {
            snprintf(err, cap, "%s does not exist", sec_path);
            return -1;
        }
        if (create_pair(sec_path, pub_path, seed, pk, err, cap) != 0)
            return -1;
        if (created)
            *created = true;
        return 0;
    }
    if (st.st_mode & 077) {
        sodium_memzero(text, sizeof(text));
        snprintf(err, cap,
                 "secret key %s may be read by group or others (mode %04o); it must be private: "
                 "chmod 600 %s",
                 sec_path, (unsigned)(st.st_mode & 07777), sec_path);
        return -1;
    }
    rc = decode(text, SECRET_PREFIX, seed, 32);
    sodium_memzero(text, sizeof(text));
    if (rc != 0) {
        snprintf(err, cap, "%s is not an Ed25519 secret key (\"ed25519-secret:<base64>\")",
                 sec_path);
        return -1;
    }
    uint8_t sk[crypto_sign_SECRETKEYBYTES], want[32];
    crypto_sign_seed_keypair(pk, sk, seed);
    sodium_memzero(sk, sizeof(sk));
    rc = read_small(pub_path, text, sizeof(text), &st, why, sizeof(why));
    if (rc == 0 && (decode(text, PUBLIC_PREFIX, want, 32) != 0 || memcmp(want, pk, 32) != 0)) {
        snprintf(err, cap,
                 "%s does not hold the public key of %s; remove it to have it written "
                 "again",
                 pub_path, sec_path);
        return -1;
    }
    if (rc == 1) { /* a lost public file is just written again */
        keys_public_text(pk, text);
        strcat(text, "\n");
        (void)write_file(pub_path, text, 0644, why, sizeof(why));
    }
    return 0;
}

int keys_load_public(const char *text_or_path, uint8_t *pk, char *err, size_t cap)
{
    char why[256], text[256];
    if (strncmp(text_or_path, PUBLIC_PREFIX, strlen(PUBLIC_PREFIX)) == 0)
        return keys_public_parse(text_or_path, pk, err, cap);
    struct stat st;
    int rc = read_small(text_or_path, text, sizeof(text), &st, err, cap);
    if (rc == 1)
        snprintf(err, cap,
                 "%s: no such file (expected a file holding an \"ed25519:...\" public "
                 "key, or the key itself)",
                 text_or_path);
    if (rc != 0)
        return -1;
    if (keys_public_parse(text, pk, why, sizeof(why)) != 0) {
        snprintf(err, cap, "%s: %s", text_or_path, why);
        return -1;
    }
    return 0;
}

static int cert_key(json_t *o, const char *field, uint8_t *out, const char *path, char *err,
                    size_t cap)
{
    const char *v = json_string_value(json_object_get(o, field));
    if (!v || decode(v, PUBLIC_PREFIX, out, 32) != 0) {
        snprintf(err, cap, "certificate %s: \"%s\" must be an \"ed25519:...\" public key", path,
                 field);
        return -1;
    }
    return 0;
}

int keys_cert_load(const char *path, keys_cert *c, char *err, size_t cap)
{
    json_error_t je;
    memset(c, 0, sizeof(*c));
    json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        snprintf(err, cap, "certificate %s: %s", path, je.text);
        return -1;
    }
    int rc = -1;
    const char *name = json_string_value(json_object_get(o, "name"));
    const char *sig = json_string_value(json_object_get(o, "signature"));
    json_t *exp = json_object_get(o, "expires_ms");
    size_t got = 0;
    const char *end = NULL;
    if (!json_is_object(o) || !name || !*name || strlen(name) > RUMOR_NAME_MAX) {
        snprintf(err, cap, "certificate %s: \"name\" must be a node name", path);
    } else if (!json_is_integer(exp) || json_integer_value(exp) < 0) {
        snprintf(err, cap, "certificate %s: \"expires_ms\" must be a Unix time in ms (0: never)",
                 path);
    } else if (cert_key(o, "public_key", c->public_key, path, err, cap) == 0 &&
               cert_key(o, "authority", c->authority, path, err, cap) == 0) {
        if (!sig ||
            sodium_base642bin(c->signature, sizeof(c->signature), sig, strlen(sig), NULL, &got,
                              &end, B64) != 0 ||
            got != sizeof(c->signature) || *end) {
            snprintf(err, cap, "certificate %s: \"signature\" must be base64 of 64 bytes", path);
        } else {
            snprintf(c->name, sizeof(c->name), "%s", name);
            c->expires_ms = (uint64_t)json_integer_value(exp);
            rc = 0;
        }
    }
    json_decref(o);
    return rc;
}

char *keys_cert_json(const keys_cert *c)
{
    char pk[KEYS_TEXT_MAX], ca[KEYS_TEXT_MAX], sig[sodium_base64_ENCODED_LEN(64, B64)];
    keys_public_text(c->public_key, pk);
    keys_public_text(c->authority, ca);
    sodium_bin2base64(sig, sizeof(sig), c->signature, sizeof(c->signature), B64);
    json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:s}", "name", c->name, "public_key", pk, "expires_ms",
                          (json_int_t)c->expires_ms, "authority", ca, "signature", sig);
    char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    return text;
}
