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
#define KV_FLAGS_KNOWN (KV_TOMBSTONE | KV_SHARED)

typedef struct kv_origin kv_origin;
struct ident_head;

typedef struct kv_entry {
    struct kv_entry *prev, *next; /* the origin's entries in ascending version */
    kv_origin *origin;
    uint64_t version;
    uint64_t stamp;      /* HLC stamp (shared entries) */
    uint64_t dead_since; /* local time a tombstone was written or learned */
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
    struct ident_head *ident; /* identities on: the origin's signed head (ident.c); freed here */
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
    uint64_t sum;      /* wrapping sum over origins holding versions of mix(name, max_version) */
    kv_entry **shared; /* winners by key hash, open addressing, NULL = empty */
    size_t nshared, shared_slots;
    uint64_t total_bytes;
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
