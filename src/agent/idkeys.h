/*
 * Identity keys on disk (docs/protocol.md section 12): the node's Ed25519 key pair in its data
 * directory, a cluster authority's key pair, and certificates. Shared by the agent and the CLI
 * commands `rumor identity` and `rumor ca`.
 *
 * Files are one line of text: a secret key is "ed25519-secret:" and the base64 of its 32-byte
 * seed (mode 0600, refused when group or others may read it), a public key "ed25519:" and the
 * base64 of its 32 bytes. A certificate is a JSON object:
 *
 *     {"name": "web-1", "public_key": "ed25519:...", "expires_ms": 0,
 *      "authority": "ed25519:...", "signature": "<base64 of 64 bytes>"}
 */
#ifndef RUMOR_AGENT_IDKEYS_H
#define RUMOR_AGENT_IDKEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rumor.h"

#define KEYS_NODE_SECRET "identity.key"
#define KEYS_NODE_PUBLIC "identity.pub"
#define KEYS_CA_SECRET   "ca.key"
#define KEYS_CA_PUBLIC   "ca.pub"
/* "ed25519:" + base64 of 32 bytes (44) + NUL */
#define KEYS_TEXT_MAX 64

typedef struct keys_cert {
    char name[RUMOR_NAME_MAX + 1];
    uint8_t public_key[RUMOR_IDENTITY_KEY_BYTES];
    uint8_t authority[RUMOR_IDENTITY_KEY_BYTES];
    uint8_t signature[RUMOR_IDENTITY_SIG_BYTES];
    uint64_t expires_ms; /* Unix ms, 0 = never */
} keys_cert;

/* "ed25519:<base64>" of a public key. */
void keys_public_text(const uint8_t *pk, char out[KEYS_TEXT_MAX]);
/* Parses "ed25519:<base64>" (surrounding white space allowed). Returns 0 or -1 with a reason
 * (a secret key given where a public one belongs is named as such). */
int keys_public_parse(const char *text, uint8_t *pk, char *err, size_t cap);

/*
 * Loads the key pair `secret_name` of directory `dir`, creating it first (and the public file
 * `public_name`) when `create` and it does not exist. Refuses a secret file that group or others
 * may access, one that is not a secret key, and a public file that does not match. `*created`
 * (may be NULL) tells whether it was made now. Returns 0 or -1 with the reason in `err`.
 */
int keys_load_pair(const char *dir, const char *secret_name, const char *public_name, bool create,
                   uint8_t *seed, uint8_t *pk, bool *created, char *err, size_t cap);

/* A public key given as "ed25519:..." text or as the path of a file holding it. */
int keys_load_public(const char *text_or_path, uint8_t *pk, char *err, size_t cap);

/* Reads and checks the form of a certificate file (not its signature). */
int keys_cert_load(const char *path, keys_cert *c, char *err, size_t cap);
/* The certificate as JSON text (malloc'd). */
char *keys_cert_json(const keys_cert *c);

/* Wall-clock Unix time in ms. */
uint64_t keys_unix_ms(void);

#endif
