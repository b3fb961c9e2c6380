/*
 * The sealed envelope (docs/protocol.md section 3.1): the keyring, nonce and stream-token
 * derivation, sealing and opening with XChaCha20-Poly1305-IETF or, between nodes that both can,
 * AES-256-GCM (libsodium), and the per-sender anti-replay windows.
 *
 * libsodium is used here as a pure function library: nothing in this file reads OS randomness
 * (no randombytes_*, no sodium_init). Nonces come from the host's seal_secret and epoch plus a
 * counter, so a node's output stays a function of its settings and inputs. Hosts should call
 * sodium_init() once for the fastest implementations; without it libsodium's portable code runs.
 */
#ifndef RUMOR_CORE_SEAL_H
#define RUMOR_CORE_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "rumor.h"

#define SEAL_KEY_ID_BYTES 4
#define SEAL_NONCE_BYTES  24 /* crypto_aead_xchacha20poly1305_ietf_NPUBBYTES */
#define SEAL_TAG_BYTES    16 /* crypto_aead_xchacha20poly1305_ietf_ABYTES */
#define SEAL_PREFIX_BYTES 16 /* nonce = prefix (per life) || counter (u64) */
#define SEAL_TOKEN_BYTES  16 /* a stream side's freshness token */
/* Clear bytes between the packet header and the ciphertext: key id and nonce. */
#define SEAL_ENV_BYTES (SEAL_KEY_ID_BYTES + SEAL_NONCE_BYTES)
/* Sealed inner headers: flags, epoch, sender id, then the datagram's recipient id and recipient
 * epoch or the stream binding (both tokens and the frame number), then an empty extension area
 * (one byte). */
#define SEAL_INNER_DGRAM  (1u + 8u + 8u + 8u + 8u + 1u)
#define SEAL_INNER_STREAM (1u + 8u + 8u + 2u * SEAL_TOKEN_BYTES + 4u + 1u)
/* What sealing adds to a datagram or a stream frame beyond the plaintext packet. */
#define SEAL_DGRAM_OVERHEAD (SEAL_ENV_BYTES + SEAL_INNER_DGRAM + SEAL_TAG_BYTES)
#define SEAL_FRAME_OVERHEAD (SEAL_ENV_BYTES + SEAL_INNER_STREAM + SEAL_TAG_BYTES)

/* Inner flags, bits 0..1: what the sealed unit is. Bits 2..7 are reserved (written 0, ignored
 * on receipt: they are authenticated, so only a key holder could set them). */
#define SEAL_KIND_DGRAM    0
#define SEAL_KIND_OPENER   1 /* a stream frame from the side that opened the stream */
#define SEAL_KIND_ACCEPTOR 2 /* a stream frame from the side that accepted it */
#define SEAL_KIND_MASK     0x03
/* Inner flags bit 2: the sender opens AES-256-GCM (it may be sent AES-sealed packets). */
#define SEAL_INNER_AES 0x04

/* The cipher of a sealed packet (packet header flag WIRE_FLAG_AESGCM). */
#define SEAL_CIPHER_XCHACHA 0 /* XChaCha20-Poly1305-IETF, every sealed node opens it */
#define SEAL_CIPHER_AESGCM  1 /* AES-256-GCM under a per-(key, sender life) subkey */

/* A peer's AES-256-GCM subkey for one of our keys, cached by the nonce prefix that names the
 * peer's life (docs/protocol.md section 3.1). */
typedef struct seal_subkey {
    uint8_t prefix[SEAL_PREFIX_BYTES];
    uint8_t kid[SEAL_KEY_ID_BYTES];
    uint8_t used; /* 0: empty slot */
    uint8_t key[RUMOR_KEY_BYTES];
} seal_subkey;

/* RFC 6479 anti-replay window: a ring of 64-bit blocks; one block is kept clear for the slide,
 * so the window covers (blocks - 1) * 64 counter values. */
#define REPLAY_BLOCKS 16
#define REPLAY_WINDOW ((REPLAY_BLOCKS - 1) * 64)

typedef struct seal_key {
    uint8_t key[RUMOR_KEY_BYTES];
    uint8_t id[SEAL_KEY_ID_BYTES];
} seal_key;

/* What one sender's datagrams have shown this node: the sender's life and which of its latest
 * counters were accepted. */
typedef struct replay_win {
    uint64_t sender; /* seal id of its name, never 0 */
    uint64_t epoch;
    uint64_t top; /* highest counter accepted in `epoch` */
    uint64_t last_ms;
    uint64_t notice_ms; /* when we last told it our epoch after a stale-epoch datagram; 0: never */
    bool doubt;         /* it may have restarted since `epoch`: not named until heard from again */
    bool held;          /* news was held back from it (epoch unknown): send it once we learn it */
    uint64_t bits[REPLAY_BLOCKS];
    bool aes; /* its latest accepted datagram said it opens AES-256-GCM */
} replay_win;

typedef struct seal_state {
    seal_key keys[RUMOR_KEYRING_MAX]; /* keys[0] seals */
    size_t nkeys;                     /* 0: no keyring, plaintext node */
    uint8_t secret[RUMOR_SEAL_SECRET_BYTES];
    uint8_t prefix[SEAL_PREFIX_BYTES];
    uint64_t epoch;
    uint64_t counter; /* last counter used; every nonce and token takes the next */
    uint64_t self_id;
    bool accept_plain, send_plain;
    /* AES-256-GCM: this node opens it and seals with it to peers that do (rumor_settings
     * seal_cipher and the CPU); aes_key is the subkey of keys[0] for our own prefix. */
    bool aes;
    uint8_t aes_key[RUMOR_KEY_BYTES];
    /* libsodium's expanded AES-256-GCM state for aes_key (crypto_aead_aes256gcm_state, 512 bytes
     * at the first 16-byte boundary of this buffer, so a seal_state is not copied once set up):
     * seals skip the key schedule per packet. */
    unsigned char aes_st[512 + 16];
    /* Peers' subkeys: open addressing on the prefix, nsub used of sub_cap (a power of two). */
    const rumor_allocator *alloc;
    seal_subkey *sub;
    size_t nsub, sub_cap;
    /* Plaintext of the datagram being applied (decoded messages point into it). */
    uint8_t *scratch;
    size_t scratch_cap;
    /* Replay windows: an array, indexed by an open-addressing table of (index + 1). */
    replay_win *wins;
    size_t nwins, wins_cap, wins_max;
    uint32_t *slots;
    size_t nslots;
} seal_state;

/* The sealed inner header of a received (or sent) unit. */
typedef struct seal_inner {
    uint8_t kind;
    uint64_t epoch;
    uint64_t sender;
    uint64_t dest;                    /* datagrams */
    uint64_t dest_epoch;              /* datagrams: the recipient's epoch as the sender knows it */
    uint8_t opener[SEAL_TOKEN_BYTES]; /* stream frames */
    uint8_t acceptor[SEAL_TOKEN_BYTES]; /* stream frames; zero in the opener's hello */
    uint32_t seq;                       /* stream frames: number in its direction, from 0 */
    uint64_t counter;                   /* from the nonce */
    bool aes;                           /* received: the sender opens AES-256-GCM */
    uint8_t cipher;                     /* received: SEAL_CIPHER_* it was sealed with */
} seal_inner;

/* Copies the keyring and nonce material from the settings. Returns RUMOR_ERR_INVALID for a bad
 * keyring (too many keys, duplicate key ids, all-zero secret, no epoch). */
int seal_init(seal_state *s, const rumor_settings *st, uint64_t now, size_t members_max);
/* Wipes keys, secret and plaintext scratch and frees the tables. */
void seal_free(seal_state *s, const rumor_allocator *a);

static inline bool seal_enabled(const seal_state *s)
{
    return s->nkeys > 0;
}

/* True when outgoing packets are sealed (a keyring and not sending plaintext). */
static inline bool seal_sending(const seal_state *s)
{
    return s->nkeys > 0 && !s->send_plain;
}

/* The 64-bit id a node name goes by inside envelopes (never 0). */
uint64_t seal_id(const void *name, size_t len);

/* A fresh stream token (unique per life: derived from the secret, epoch and counter). */
void seal_token(seal_state *s, uint8_t out[SEAL_TOKEN_BYTES]);

/* Writes the clear envelope placeholder and the inner header after a packet header already in
 * `w` (its flags having SEALED). Returns the offset of the envelope. */
size_t seal_put_inner(seal_state *s, buf_writer *w, const seal_inner *in);

/* Seals the packet that starts at `start` in `w` and whose envelope starts at `env`: fills in
 * key id and nonce, encrypts everything after them in place and appends the tag. With
 * SEAL_CIPHER_AESGCM (only on a node that has s->aes) it sets the header's AESGCM flag and seals
 * with AES-256-GCM. Returns false (nothing appended) when the writer is full or the counter is
 * exhausted. */
bool seal_close(seal_state *s, buf_writer *w, size_t start, size_t env, uint8_t cipher);

/* Whether this CPU runs libsodium's AES-256-GCM (AES-NI and PCLMUL; sodium_init must have run). */
bool seal_aes_available(void);

/*
 * Opens a sealed unit: `p` holds `len` bytes, the first `hdr` of which are the packet header
 * (its flags say the cipher; an AES-256-GCM unit at a node without s->aes is unknown_key).
 * The plaintext after the inner header is written to `out` (which may be `p + hdr +
 * SEAL_ENV_BYTES` for in-place opening, or scratch of at least `len` bytes) and returned in
 * `*body`/`*body_len`. Returns 0 or -(rumor_drop_reason + 1): truncated, unknown_key,
 * auth_failed, malformed (inner header).
 */
int seal_open(seal_state *s, const uint8_t *p, size_t len, size_t hdr, uint8_t *out, seal_inner *in,
              const uint8_t **body, size_t *body_len);

/* Scratch of at least `len` bytes for a datagram's plaintext, or NULL. */
uint8_t *seal_scratch(seal_state *s, const rumor_allocator *a, size_t len);

/* Replay windows. check: 0, or -(RUMOR_DROP_REPLAYED + 1). mark: records an accepted counter
 * and what the datagram said of the sender's ciphers (`aes`: it opens AES-256-GCM), creating
 * the sender's window (the least recently used one goes when the table is full), and returns
 * true when news had been held back from the sender (seal_hold), clearing that. */
int replay_check(const seal_state *s, uint64_t sender, uint64_t epoch, uint64_t counter);
bool replay_mark(seal_state *s, const rumor_allocator *a, uint64_t sender, uint64_t epoch,
                 uint64_t counter, bool aes, uint64_t now);

/* What a datagram to the node with id `dest` is sealed with, from one look at its window: the
 * return value is its epoch as this node last learned it from its own sealed datagrams or
 * stream frames, 0 when it holds none (never heard from it, its window was evicted, or its
 * epoch is in doubt); `*cipher` (when not NULL) is AES-256-GCM when both this node and (by its
 * latest accepted datagram) the recipient open it, else XChaCha20-Poly1305. */
uint64_t seal_peer(const seal_state *s, uint64_t dest, uint8_t *cipher);
/* seal_peer's epoch alone. */
uint64_t seal_peer_epoch(const seal_state *s, uint64_t sender);
/* Notes that a datagram to `dest` went without news because its epoch is unknown. */
void seal_hold(seal_state *s, const rumor_allocator *a, uint64_t dest, uint64_t now);
/* News says `sender` came back (a higher incarnation, a rejoin): its epoch may have changed, so
 * it is not named (seal_peer_epoch 0) until its own next datagram or stream frame. */
void seal_doubt_epoch(seal_state *s, uint64_t sender);
/* Learns a sender's epoch from an authenticated stream frame: a larger epoch than the one held
 * closes the older life's window, as a datagram of the new life would. */
void seal_learn_epoch(seal_state *s, const rumor_allocator *a, uint64_t sender, uint64_t epoch,
                      uint64_t now);
/* True (and the time recorded) when `sender` may be sent an epoch notice now: at most one per
 * `gap_ms` per sender, so replayed or misdirected traffic cannot make us send more than that. */
bool seal_notice_due(seal_state *s, uint64_t sender, uint64_t now, uint64_t gap_ms);

/* Keyring operations; see rumor.h. */
int seal_key_install(seal_state *s, const uint8_t key[RUMOR_KEY_BYTES]);
int seal_key_use(seal_state *s, const uint8_t key[RUMOR_KEY_BYTES]);
int seal_key_remove(seal_state *s, const uint8_t key[RUMOR_KEY_BYTES]);

#endif
