/*
 * The agent's encryption keyring: keys from --encrypt (one base64 key, as Serf's -encrypt) and
 * --keyring FILE (a JSON array of base64 keys, primary first, Serf's keyring file format),
 * the file kept up to date with mode 0600 as keys change, and the /v1/keys endpoints.
 */
#ifndef RUMOR_AGENT_KEYRING_H
#define RUMOR_AGENT_KEYRING_H

#include "rumor.h"

#include <stddef.h>
#include <stdint.h>

/* Base64 text of a 32-byte key, NUL included (sodium_base64_ENCODED_LEN(32, ORIGINAL)). */
#define KEYRING_B64_MAX 45

typedef struct agent_keyring {
    uint8_t keys[RUMOR_KEYRING_MAX][RUMOR_KEY_BYTES]; /* keys[0] is the primary */
    size_t n;                                         /* 0: encryption is off */
} agent_keyring;

/* Decodes a base64 (standard alphabet, padded) 32-byte key. Returns 0 or -1. */
int keyring_decode(const char *text, uint8_t key[RUMOR_KEY_BYTES]);
void keyring_encode(const uint8_t key[RUMOR_KEY_BYTES], char out[KEYRING_B64_MAX]);

/* Refuses a file that its group or others may read or write, naming it as `what`. Returns 0, 1
 * when the file does not exist, -1 with the reason in `err`. */
int keyring_check_mode(const char *path, const char *what, char *err, size_t cap);

/* Reads a keyring file (mode checked first). Returns 0, 1 when it does not exist, -1. */
int keyring_load(agent_keyring *kr, const char *path, char *err, size_t cap);

/* Writes the keyring file atomically (a temporary file in the same directory, mode 0600,
 * synced, renamed over the old one). Returns 0 or -1. */
int keyring_save(const agent_keyring *kr, const char *path, char *err, size_t cap);

/* Wipes the keys. */
void keyring_wipe(agent_keyring *kr);

#endif
