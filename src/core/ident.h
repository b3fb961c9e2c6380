/*
 * Per-node identity (docs/protocol.md section 12): every node holds an Ed25519 key pair and
 * signs its own claims — its alive record (incarnation, address, metadata), its leave, the
 * accusations it makes, its key-value writes and the head of its keyspace. Every receiver checks
 * the owner's signature, also on claims relayed second-hand by gossip or full-state sync, so a
 * relay can neither forge nor alter them.
 *
 * Binding a name to a key: without an authority the first key seen for a name is pinned for as
 * long as the member is known (trust on first use); with a cluster authority (CA) a member must
 * show the authority's certificate over (name, key, expiry), which then is the binding.
 *
 * Cost: a claim is verified only when it would change something (a newer incarnation, a key-value
 * version above the one held, a keyspace head that claims more than is proven), so each signed
 * record is verified once per version; stored records were verified when they were applied and
 * are forwarded with their signature as they are. A key-value write proves its own version: the
 * origin signs a new keyspace head only when its horizon moves, so a write costs one signature
 * and one verification per receiver. A small cache of recent verification results
 * (keyed by a hash of key, statement and signature) answers repeats without Ed25519.
 *
 * Everything here is off (n->ident NULL, no memory) unless settings.identity is set. Signing and
 * verifying are deterministic; nothing here draws randomness.
 */
#ifndef RUMOR_CORE_IDENT_H
#define RUMOR_CORE_IDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/wire.h"
#include "rumor.h"

struct member;
struct kv_origin;

#define IDENT_KEY  0x01 /* `pk` is the member's pinned key */
#define IDENT_SIG  0x02 /* `sig` is its verified signature over its current claim */
#define IDENT_CERT 0x04 /* `cert` is its certificate */
#define IDENT_LEFT 0x08 /* that claim is a leave (else alive) */

/* What this node holds about one member's identity; indexed by member id. */
typedef struct ident_rec {
    uint8_t pk[WIRE_KEY_BYTES];
    uint8_t sig[WIRE_SIG_BYTES];
    uint8_t cert[WIRE_SIG_BYTES];
    uint64_t cert_expires_ms;
    uint32_t inc; /* the incarnation the signed claim speaks for */
    uint8_t flags;
} ident_rec;

/* The signed head of an origin's keyspace: its highest version and collection horizon. */
typedef struct ident_head {
    uint64_t max, gc;
    uint8_t sig[WIRE_SIG_BYTES];
    /* The newest keyspace sum the origin signed (section 12.8), when has_sum: its state at
     * (smax, sgc) held entries whose kv_sum_term add up to `sum`. */
    bool has_sum;
    uint64_t smax, sgc;
    uint8_t sum[WIRE_KV_SUM_LEN];
    uint8_t ssig[WIRE_SIG_BYTES];
    /* When this replica was first seen at (smax, sgc) with another sum (0: it was not). */
    uint64_t differs_since;
} ident_head;

/* Verification results remembered, direct-mapped by a 128-bit hash of (key, signature,
 * statement): a repeat of the same check costs a hash instead of an Ed25519 verification. */
#define IDENT_CACHE_SLOTS 64

typedef struct ident_cache_slot {
    uint8_t key[16];
    uint8_t state; /* 0 empty, 1 valid, 2 invalid */
} ident_cache_slot;

typedef struct ident_state {
    uint8_t sk[64]; /* libsodium's secret key: seed then public key; wiped at free */
    uint8_t pk[WIRE_KEY_BYTES];
    bool ca;
    uint8_t ca_pk[WIRE_KEY_BYTES];
    bool has_cert;
    uint8_t cert[WIRE_SIG_BYTES];
    uint64_t cert_expires_ms;
    ident_rec *recs; /* by member id - 1 */
    size_t nrecs;
    rumor_ident_refused_info last[RUMOR_IDENT_REFUSAL_COUNT]; /* latest refusals, for logs */
    ident_cache_slot cache[IDENT_CACHE_SLOTS];
} ident_state;

struct rumor_node;

/*
 * The statements signatures cover (docs/protocol.md section 12.3): a context string with its NUL,
 * then the claim's fields. Each writes at most IDENT_STMT_MAX bytes to `buf` and returns the
 * length. Exposed for tests and golden vectors.
 */
#define IDENT_STMT_MAX 512
size_t ident_stmt_alive(uint8_t *buf, wire_str name, uint32_t inc, const rumor_addr *addr,
                        wire_str meta);
size_t ident_stmt_left(uint8_t *buf, wire_str name, uint32_t inc);
size_t ident_stmt_accuse(uint8_t *buf, uint8_t type, uint32_t inc, wire_str name, wire_str accuser);
size_t ident_stmt_cert(uint8_t *buf, wire_str name, const uint8_t *pk, uint64_t expires_ms);
size_t ident_stmt_kv_head(uint8_t *buf, wire_str origin, uint64_t max, uint64_t gc);
size_t ident_stmt_kv_sum(uint8_t *buf, wire_str origin, uint64_t max, uint64_t gc,
                         const uint8_t *sum);
size_t ident_stmt_kv_entry(uint8_t *buf, wire_str origin, const wire_kv_entry *e);

size_t ident_stmt_event(uint8_t *buf, wire_str origin, uint64_t ltime, wire_str name,
                        wire_str payload);
size_t ident_stmt_query(uint8_t *buf, wire_str origin, uint64_t ltime, uint32_t id, wire_str addr,
                        uint8_t flags, uint32_t timeout_ms, wire_str rest);
size_t ident_stmt_query_resp(uint8_t *buf, wire_str from, wire_str asker, uint64_t ltime,
                             uint32_t id, uint8_t flags, wire_str payload);

/* Sets up n->ident from the settings (NULL when identities are off) and wipes the seed copy in
 * n->s. Errors: RUMOR_ERR_NOMEM. */
int ident_init(struct rumor_node *n);
void ident_free(struct rumor_node *n);
/* A member leaves the table: forget its key (the pin lasts as long as the member is known). */
void ident_forget(struct rumor_node *n, const struct member *m);
/* Counts a refused claim about `name` (signed `by`, when that is another member) and remembers
 * it for rumor_node_ident_last_refused(). Returns false, for `return ident_refuse()`. */
bool ident_refuse(struct rumor_node *n, rumor_ident_refusal why, wire_str name, wire_str by);
/* The member's key, or NULL. */
const uint8_t *ident_pk(const struct rumor_node *n, const struct member *m);
/* Identities are on and we hold no verified claim of `m` (restored from a snapshot). */
bool ident_unverified(const struct rumor_node *n, const struct member *m);
/* Pins `pk` for `m` before any claim arrived (rumor_node_restore). */
void ident_pin(struct rumor_node *n, const struct member *m, const uint8_t *pk);

/*
 * Claims received (`id` non-NULL) are checked by the *_ok functions before they change anything;
 * refusals are counted. `id` NULL means the node makes the claim itself (always fine). After a
 * received claim was applied, *_keep stores its key and signature for forwarding.
 */
bool ident_alive_ok(struct rumor_node *n, const struct member *m, uint32_t inc, wire_str name,
                    const rumor_addr *addr, wire_str meta, const wire_ident *id);
void ident_alive_keep(struct rumor_node *n, const struct member *m, const wire_ident *id);
bool ident_left_ok(struct rumor_node *n, const struct member *m, uint32_t inc,
                   const wire_ident *id);
void ident_left_keep(struct rumor_node *n, const struct member *m, const wire_ident *id);

typedef enum ident_verdict {
    IDENT_OK = 0,
    IDENT_REFUSED = 1,     /* unsigned, forged or altered */
    IDENT_UNKNOWN_KEY = 2, /* signed by someone whose key we do not hold (refused too) */
} ident_verdict;

/* An accusation (SUSPECT or FAILED) of `name` at `inc` by `accuser`. */
ident_verdict ident_accuse_check(struct rumor_node *n, uint8_t type, uint32_t inc, wire_str name,
                                 wire_str accuser, const wire_ident *id);
/* This node's signature over an accusation it makes. */
void ident_accuse_sign(struct rumor_node *n, uint8_t type, uint32_t inc, wire_str name,
                       uint8_t *sig);

/* The identity block to send with `m`'s current claim (alive, or leave when `m` left). For this
 * node it signs a claim that changed first. Returns false when there is none to send. */
bool ident_claim(struct rumor_node *n, const struct member *m, wire_ident *out);

/* ---- user events and queries (docs/protocol.md section 12.1) ---- */

/* This node's signatures over a user event, a query it asks, a response it sends `asker`. */
void ident_event_sign(struct rumor_node *n, uint64_t ltime, wire_str name, wire_str payload,
                      uint8_t *sig);
void ident_query_sign(struct rumor_node *n, uint64_t ltime, uint32_t id, const rumor_addr *addr,
                      uint8_t flags, uint32_t timeout_ms, wire_str rest, uint8_t *sig);
void ident_resp_sign(struct rumor_node *n, wire_str asker, uint64_t ltime, uint32_t id,
                     uint8_t flags, wire_str payload, uint8_t *sig);
/* Checks a received USER_EVENT, QUERY, or QUERY_RESP answering one of ours, against its
 * signer's key (origin, asker, responder); refusals are counted. IDENT_OK when identities are
 * off. */
ident_verdict ident_msg_check(struct rumor_node *n, const wire_msg *m);

/* ---- key-value state ---- */

/* The signed head of `o`, or NULL. */
const ident_head *ident_kv_head(const struct kv_origin *o);
/* Signs an entry of this node's keyspace (its version already chosen). */
void ident_kv_sign_entry(struct rumor_node *n, const wire_kv_entry *e, uint8_t *sig);
/* Re-signs this node's keyspace head when its horizon moved or its max_version is no longer
 * proven by the entry at that version (collected, or adopted after a restart); a plain write
 * needs no new head. */
void ident_kv_sign_head(struct rumor_node *n);
/* Whether the key that signs `origin`'s keyspace is known here (nothing counted). */
bool ident_kv_key_known(struct rumor_node *n, wire_str origin);
/* The key that signs `origin`'s keyspace, or NULL (counted as unknown_key). */
const uint8_t *ident_kv_origin_key(struct rumor_node *n, wire_str origin);
/* Checks a head of `o` received with a delta whose newest entry is `entries_max` (0: none);
 * a newer valid one is stored. A head that claims nothing beyond the verified head, the
 * versions held and that entry (no horizon, or the verified one) is taken unchecked: the caller
 * uses its max only once every entry of the delta verified. */
bool ident_kv_head_ok(struct rumor_node *n, struct kv_origin *o, const uint8_t *pk, uint64_t max,
                      uint64_t gc, const uint8_t *sig, uint64_t entries_max);
/* The keyspace sum of `o` as it travels (WIRE_KV_SUM_LEN bytes, little-endian words). */
void ident_kv_sum_bytes(const struct kv_origin *o, uint8_t *out);
/* Signs this node's keyspace sum when its state moved since the last one it signed; true when
 * it did (the new sum is worth rumor-mongering). */
bool ident_kv_sign_sum(struct rumor_node *n);
/* Takes a keyspace sum of `o` received with a delta: one newer than the one held is checked
 * against `pk` and stored. False (counted) when it does not verify. */
bool ident_kv_sum_ok(struct rumor_node *n, struct kv_origin *o, const uint8_t *pk,
                     const wire_kv_sum *s);
/* We hold `o` at the (max, gc) of the newest signed keyspace sum we have of it. */
bool ident_kv_at_sum(const struct kv_origin *o);
/* ... and hold exactly the entries that sum counts. */
bool ident_kv_sum_holds(const struct kv_origin *o);
/* Checks one entry of `origin` before it is applied. */
bool ident_kv_entry_ok(struct rumor_node *n, const uint8_t *pk, wire_str origin,
                       const wire_kv_entry *e, const uint8_t *sig);

#endif
