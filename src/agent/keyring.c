/* The agent's keyring file and key encoding (see keyring.h). */
#include "keyring.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int keyring_decode(const char *text, uint8_t key[RUMOR_KEY_BYTES])
{
    size_t len = 0;
    const char *end = NULL;
    if (!text || strlen(text) >= KEYRING_B64_MAX + 8)
        return -1;
    if (sodium_base642bin(key, RUMOR_KEY_BYTES, text, strlen(text), " \t\r\n", &len, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        len != RUMOR_KEY_BYTES || *end != '\0') {
        sodium_memzero(key, RUMOR_KEY_BYTES);
        return -1;
    }
    return 0;
}

void keyring_encode(const uint8_t key[RUMOR_KEY_BYTES], char out[KEYRING_B64_MAX])
{
    sodium_bin2base64(out, KEYRING_B64_MAX, key, RUMOR_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL);
}

int keyring_check_mode(const char *path, const char *what, char *err, size_t cap)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            return 1;
        snprintf(err, cap, "%s %s: %s", what, path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, cap, "%s %s is not a regular file", what, path);
        return -1;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, cap,
                 "%s %s holds secret keys but its group or others may read or write it "
                 "(mode %04o); run: chmod 600 %s",
                 what, path, (unsigned)(st.st_mode & 07777), path);
        return -1;
    }
    return 0;
}

int keyring_load(agent_keyring *kr, const char *path, char *err, size_t cap)
{
    memset(kr, 0, sizeof *kr);
    int rc = keyring_check_mode(path, "keyring file", err, cap);
    if (rc != 0)
        return rc;
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        snprintf(err, cap, "keyring file %s: line %d, column %d: %s", path, jerr.line, jerr.column,
                 jerr.text);
        return -1;
    }
    rc = -1;
    size_t i;
    json_t *v;
    if (!json_is_array(root) || json_array_size(root) == 0 ||
        json_array_size(root) > RUMOR_KEYRING_MAX) {
        snprintf(err, cap,
                 "keyring file %s: expected a JSON array of 1 to %d base64 keys, primary first",
                 path, RUMOR_KEYRING_MAX);
        goto done;
    }
    json_array_foreach(root, i, v)
    {
        uint8_t key[RUMOR_KEY_BYTES];
        if (!json_is_string(v) || keyring_decode(json_string_value(v), key) != 0) {
            snprintf(err, cap, "keyring file %s: element %zu is not a base64-encoded %d-byte key",
                     path, i, RUMOR_KEY_BYTES);
            goto done;
        }
        bool dup = false;
        for (size_t k = 0; k < kr->n; k++)
            dup = dup || sodium_memcmp(kr->keys[k], key, RUMOR_KEY_BYTES) == 0;
        if (!dup)
            memcpy(kr->keys[kr->n++], key, RUMOR_KEY_BYTES);
        sodium_memzero(key, sizeof key);
    }
    rc = 0;
done:
    /* jansson's strings held the keys too: wipe them before they are freed. */
    json_array_foreach(root, i, v)
    {
        if (json_is_string(v))
            sodium_memzero((char *)(uintptr_t)json_string_value(v), json_string_length(v));
    }
    json_decref(root);
    if (rc != 0)
        keyring_wipe(kr);
    return rc;
}

static void sync_dir(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

int keyring_save(const agent_keyring *kr, const char *path, char *err, size_t cap)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        snprintf(err, cap, "keyring file path too long");
        return -1;
    }
    /* Text: ["k1", "k2", ...]; at most 16 keys of 44 characters. */
    char text[RUMOR_KEYRING_MAX * (KEYRING_B64_MAX + 4) + 8];
    size_t len = 0;
    text[len++] = '[';
    for (size_t i = 0; i < kr->n; i++) {
        char b64[KEYRING_B64_MAX];
        keyring_encode(kr->keys[i], b64);
        len += (size_t)snprintf(text + len, sizeof text - len, "%s\"%s\"", i ? ", " : "", b64);
        sodium_memzero(b64, sizeof b64);
    }
    len += (size_t)snprintf(text + len, sizeof text - len, "]\n");
    int rc = -1;
    (void)unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, cap, "cannot write the keyring file %s: %s", tmp, strerror(errno));
        goto done;
    }
    ssize_t w = write(fd, text, len);
    if (w != (ssize_t)len || fchmod(fd, 0600) != 0 || fsync(fd) != 0) {
        snprintf(err, cap, "cannot write the keyring file %s: %s", tmp, strerror(errno));
        close(fd);
        (void)unlink(tmp);
        goto done;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        snprintf(err, cap, "cannot replace the keyring file %s: %s", path, strerror(errno));
        (void)unlink(tmp);
        goto done;
    }
    sync_dir(path); /* the rename itself survives a crash only once the directory is synced */
    rc = 0;
done:
    sodium_memzero(text, sizeof text);
    return rc;
}

void keyring_wipe(agent_keyring *kr)
{
    sodium_memzero(kr, sizeof *kr);
}
