/*
 * Replicated key-value state (the data half of rumor). Every node owns a keyspace only it
 * writes; every node holds a replica of every live node's keyspace. Each origin has one version
 * counter that only grows; every write (and delete) takes the next version, so "everything of
 * origin X up to version V" names a replica state exactly (scuttlebutt, van Renesse et al. 2008).
 *
 * Replicas apply an origin's entries in ascending version order and remember the highest one,
 * `max_version`; a digest {origin -> max_version} is then all a peer needs to pick the deltas a
 * replica lacks, oldest first, so a cut-short exchange never leaves a gap.
 *
 * Deletes are tombstones. The origin collects its own tombstones after a time-to-live and
 * advertises the highest collected version as `gc_version`. A replica whose `max_version` is
 * below an origin's `gc_version` may hold a key whose delete it never saw, so it must drop its
 * copy and take the origin's state from version 0 (a reset): that is what keeps a node that was
 * away longer than the horizon from bringing a deleted key back.
 *
 * The shared keyspace rides on the same machinery: a shared write is an entry in the writer's
 * own keyspace with the KV_SHARED flag and a hybrid-logical-clock stamp; the value of a shared
 * key is the entry with the highest (stamp, origin name) across all origins, so every replica
 * picks the same winner. A shared tombstone is kept while any older entry for its key survives,
 * so collecting it can never uncover a value it had overwritten.
 *
 * Superseded shared entries are retired, so storage follows keys, not writers x keys. When a
 * node's own live shared entry for a key has lost to a newer entry of another origin D (at D's
 * version v), the owner replaces it with a retired tombstone (KV_RETIRED): same key, same stamp,
 * no value, and the dependency (D, v). Why this never changes a winner nor brings an old value
 * back, on any replica R:
 *  - R applies the retirement only once it holds D's keyspace up to v (kvnode.c; otherwise the
 *    delta stops there, a gap that a later round fills). D's entry for the key at version v is
 *    newer than the retired one, and whatever R holds of D at or past v for that key is at
 *    least as new: a later write or delete by D carries a later stamp (D's clock only grows),
 *    and if D itself retired its entry, R applied that only after holding what superseded D,
 *    newer still (induction along the chain, whose stamps grow strictly). So R always holds a
 *    strictly newer entry than the retired one: removing the retired value removes a loser.
 *  - The retired tombstone keeps the old stamp, so it can never win over anything newer, and
 *    it still hides every older value like the entry it replaced did.
 *  - It is collected like any shared tombstone: after the ttl, and only once no older live
 *    value of its key survives at the owner (their owners retire them the same way).
 * If D is no member of R's (it was reaped: its entries are dropped everywhere) the dependency
 * cannot be met and is waived, so a reap never blocks the retiring origin's keyspace; the owner
 * retires only entries superseded for a few rounds, so D is known cluster-wide by then.
 */
#ifndef RUMOR_CORE_KV_H
#define RUMOR_CORE_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/alloc.h"
#include "core/buf.h"

#define KV_KEY_MAX     256
#define KV_TOMBSTONE   0x01
#define KV_SHARED      0x02
#define KV_RETIRED     0x04 /* with KV_TOMBSTONE | KV_SHARED; the value names what superseded it */
#define KV_FLAGS_KNOWN (KV_TOMBSTONE | KV_SHARED | KV_RETIRED)
/* The largest value of a retired entry: a varint version and an origin name. */
#define KV_RETIRED_VALUE_MAX (10u + 128u)

typedef struct kv_origin kv_origin;
struct ident_head;

/* Origins fall into buckets by name hash, each with its own store sum: two nodes whose sums
 * differ can tell which buckets differ and compare only those origins (a hash of ranges), so
 * the few origins one lags on are found among thousands in one datagram. */
#define KV_BUCKETS 64

typedef struct kv_entry {
    struct kv_entry *prev, *next; /* the origin's entries in ascending version */
    kv_origin *origin;
    uint64_t version;
    uint64_t stamp;      /* HLC stamp (shared entries) */
    uint64_t dead_since; /* local time the entry was written or learned (for a tombstone: since
                            when it is dead) */
    uint32_t hash;
    uint16_t key_len;
    uint8_t flags;
    uint32_t value_len;
    uint8_t *data; /* key then value */
} kv_entry;

struct kv_origin {
    char *name;
    size_t name_len;
    uint32_t hash;
    uint32_t idx; /* in kv_store.origins */
    uint64_t max_version;
    uint64_t gc_version;
    uint32_t keys; /* live (non-tombstone) entries */
    size_t bytes;  /* key + value bytes held, tombstones included */
    kv_entry **slots;
    size_t nslots, count;
    kv_entry *head, *tail;
    /* Recency: origins in the order their max_version last grew here, newest first (kv_touch),
     * so anti-entropy can offer what is spreading right now first. */
    struct kv_origin *hot_prev, *hot_next;
    uint64_t changed_at;
    struct kv_origin *bnext;  /* next origin of the same bucket */
    uint32_t mark;            /* scratch for one message being built (kvnode.c) */
    struct ident_head *ident; /* identities on: the origin's signed head (ident.c); freed here */
    /* Identities on: the keyspace sum, a 128-bit wrapping sum over the entries held of
     * kv_sum_term(version) (low word first). Two replicas of an origin at the same
     * (max_version, gc_version) hold the same entries exactly when their sums agree, so the
     * origin's signed sum shows a replica whether an entry was kept from it (kvnode.c). */
    uint64_t ksum[2];
};

typedef struct kv_limits {
    uint32_t value_bytes_max;
    uint32_t keys_per_node_max;
    uint64_t bytes_per_node_max;
    uint64_t total_bytes_max;
    uint32_t tombstone_ttl_ms;
} kv_limits;

/* What a change did, for watches: old_version is 0 when the key was absent. */
typedef struct kv_change {
    const kv_origin *origin;
    const kv_entry *entry;
    uint64_t old_version;
} kv_change;

typedef void (*kv_watch_fn)(void *ud, const kv_change *c);

typedef struct kv_store {
    kv_origin **origins; /* for iteration */
    size_t norigins, origins_cap;
    kv_origin **oslots; /* origins by name hash, open addressing, NULL = empty */
    size_t noslots;
    uint64_t sum; /* wrapping sum over origins holding versions of mix(name, max_version) */
    uint64_t bsum[KV_BUCKETS];    /* the same sum over each bucket of origins */
    uint64_t vtotal;              /* sum of max_version over origins: how much is held */
    kv_origin *bhead[KV_BUCKETS]; /* origins by bucket */
    kv_entry **shared;            /* winners by key hash, open addressing, NULL = empty */
    size_t nshared, shared_slots;
    uint64_t total_bytes;
    kv_origin *hot; /* most recently changed origin first */
    kv_limits lim;
    uint32_t sig_len; /* identities on: bytes of signature stored after each value (else 0) */
    const rumor_allocator *a;
    kv_watch_fn watch;
    void *watch_ud;
} kv_store;

/* A delta as decoded from the wire or built for a local write. */
typedef struct kv_delta {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
    uint64_t version;
    uint64_t stamp;
    uint8_t flags;
    const uint8_t *sig; /* the origin's signature (kv_store.sig_len bytes), or NULL */
} kv_delta;

void kv_init(kv_store *s, const rumor_allocator *a, const kv_limits *lim);
void kv_free(kv_store *s);
kv_origin *kv_origin_find(const kv_store *s, const char *name, size_t len);
kv_origin *kv_origin_get(kv_store *s, const char *name, size_t len); /* creates; NULL on OOM */
/* Drops an origin and all its entries (its member was reaped). */
void kv_origin_drop(kv_store *s, kv_origin *o);
/* Drops every entry of an origin but keeps it, at version 0, adopting the sender's collection
 * horizon: a reset before a full resend from version 0. */
void kv_origin_reset(kv_store *s, kv_origin *o, uint64_t gc_version);

const kv_entry *kv_get(const kv_origin *o, const uint8_t *key, size_t len);
/* The origin's own entry for a shared key (live, tombstone or retired), or NULL. */
const kv_entry *kv_get_shared(const kv_origin *o, const uint8_t *key, size_t len);
/* Marks `o` as changed at `now` (its max_version grew): it moves to the front of the recency
 * list. */
void kv_touch(kv_store *s, kv_origin *o, uint64_t now);
/* The winning entry of a shared key (a tombstone when it was deleted), or NULL. */
const kv_entry *kv_shared_get(const kv_store *s, const uint8_t *key, size_t len);

/*
 * A write by the owner: takes version max_version + 1. Errors: RUMOR_ERR_INVALID (key empty or
 * over KV_KEY_MAX, bad flags), RUMOR_ERR_TOO_BIG (value, keys or bytes over a limit; nothing
 * changes), RUMOR_ERR_NOMEM.
 */
int kv_write(kv_store *s, kv_origin *o, const kv_delta *d, uint64_t now);

/*
 * Applies a delta received for origin `o`. Only a version above max_version is taken (older
 * ones are already reflected); returns 1 when applied, 0 when stale, negative on bad input or
 * a limit (nothing changes).
 */
int kv_apply(kv_store *s, kv_origin *o, const kv_delta *d, uint64_t now);

/*
 * A peer sent every entry of `o` it holds up to its `max_version`: we now reflect that version
 * even when its newest versions were tombstones that are gone (collected), so the replica does
 * not look behind forever.
 */
void kv_advance(kv_store *s, kv_origin *o, uint64_t version);
/* The origin says it collected tombstones up to `gc_version`: drop ours. */
void kv_learn_gc(kv_store *s, kv_origin *o, uint64_t gc_version);
/* Whether a replica at (`their_max`, `their_gc`) must be reset before taking deltas of `o`:
 * it is behind our horizon and was not already reset to it (a resend may take many rounds). */
bool kv_needs_reset(const kv_origin *o, uint64_t their_max, uint64_t their_gc);
/* Collects the origin's own tombstones older than the ttl (call for self only). */
void kv_collect(kv_store *s, kv_origin *o, uint64_t now);

static inline uint32_t kv_bucket(const kv_origin *o)
{
    return (o->hash * 2654435761u) >> 26; /* Fibonacci hashing: 6 bits for 64 buckets */
}

/* What one entry of version `v` adds to its origin's keyspace sum: the first 16 bytes of
 * BLAKE2b over the version (8 bytes big-endian), as two little-endian words. A version names
 * one write of its origin, and a relay cannot choose which versions exist, only leave some out;
 * a cryptographic hash keeps it from finding a set to leave out whose terms cancel. */
void kv_sum_term(uint64_t v, uint64_t out[2]);

/* First entry with version > since (ascending walk via ->next), or NULL. */
const kv_entry *kv_after(const kv_origin *o, uint64_t since);

static inline const uint8_t *kv_key(const kv_entry *e)
{
    return e->data;
}

static inline const uint8_t *kv_value(const kv_entry *e)
{
    return e->data + e->key_len;
}

/* The origin's signature of an entry, when the store keeps them (sig_len > 0). */
static inline const uint8_t *kv_sig(const kv_entry *e)
{
    return e->data + e->key_len + e->value_len;
}

#endif
