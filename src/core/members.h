/*
 * The member table: every member this node knows, self included. Members are allocated one by
 * one (stable pointers) and indexed two ways: an open-addressing hash on the name, and the
 * `order` array, which is also the randomized round-robin probe order (SWIM §4.3): a round walks
 * the array, then it is shuffled; a new member is swapped into a random slot so that it is probed
 * within one round, not at the end (memberlist does the same).
 *
 * A record is one 64-byte cache line: what probing, lookups and gossip read for every member.
 * What only some members need at a time (metadata, a pending broadcast, a suspicion timer, a
 * place on the dead list) lives in a separate `member_ext` that exists while any of it is set.
 * A 10,000-node simulation holds 10^8 records, so every byte here is 100 MB there.
 */
#ifndef RUMOR_CORE_MEMBERS_H
#define RUMOR_CORE_MEMBERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "rumor.h"

struct bcast;
struct suspicion;

/* Names up to this many bytes live inside the member record; longer ones are allocated. */
#define MEMBER_NAME_INLINE 15
/* Records are carved from slabs of this many: no per-record allocation overhead, and 32-bit ids
 * in the hash table instead of pointers. */
#define MEMBER_SLAB 256

typedef struct member {
    union {
        char inline_name[MEMBER_NAME_INLINE + 1];
        char *heap_name;
    } n;
    rumor_addr addr;
    uint8_t name_len;
    uint8_t state; /* rumor_member_state */
    bool is_self;
    uint32_t incarnation;
    uint32_t order_idx; /* position in members.order */
    uint32_t ext;       /* id of its member_ext, 0 = none */
    uint64_t state_since;
} member;

typedef struct member_ext {
    uint8_t *meta;
    struct bcast *bcast;    /* pending membership broadcast about this member */
    struct suspicion *susp; /* live suspicion timer, when suspect */
    uint32_t dead_idx;      /* position in members.dead while failed or left */
    uint16_t meta_len;
} member_ext;

/* Fixed-size records in slabs of MEMBER_SLAB, aligned to 64 bytes, named by 32-bit ids. */
typedef struct members_pool {
    uint8_t **slabs; /* aligned record arrays */
    void **mem;      /* the allocations they sit in */
    size_t nslabs, cap;
    uint32_t fresh;   /* ids 1..fresh have been handed out at least once */
    uint32_t free_id; /* head of the list of released ids (linked through the records), 0 = none */
    uint32_t size;    /* bytes per record */
} members_pool;

typedef struct members {
    member **order;
    size_t count;
    size_t cap;
    uint64_t *slots; /* hash index: name hash << 32 | member id, power-of-two size, 0 = empty */
    size_t nslots;
    members_pool recs; /* member records */
    members_pool exts; /* member_ext records */
    size_t probe_idx;
    member **dead; /* failed and left members, for reaping and reconnects without a scan */
    size_t ndead, dead_cap;
    uint32_t by_state[4];
    uint64_t digest; /* order-independent sum over members of members_digest_of(); see below */
    const rumor_allocator *a;
    /* Each record's seal id (node_dest), indexed by member id - 1, 0 = not computed yet: a sealing
     * node hashes a member's name once, not once per datagram. members_add clears its record's
     * entry, so a reused id never shows an earlier holder's. Allocated on first use. */
    uint64_t *seal_ids;
    size_t nseal_ids;
} members;

static inline const char *member_name(const member *m)
{
    return m->name_len > MEMBER_NAME_INLINE ? m->n.heap_name : m->n.inline_name;
}

static inline void *members_pool_at(const members_pool *p, uint32_t id)
{
    uint32_t i = id - 1;
    return p->slabs[i / MEMBER_SLAB] + (size_t)(i % MEMBER_SLAB) * p->size;
}

/* The member's extension, or NULL while it has none. */
static inline member_ext *members_ext(const members *t, const member *m)
{
    return m->ext ? (member_ext *)members_pool_at(&t->exts, m->ext) : NULL;
}

/* The member's extension, created empty when it has none; NULL when out of memory. */
member_ext *members_ext_get(members *t, member *m);
/* Drops the member's extension once nothing in it is in use (no metadata, broadcast or
 * suspicion, not on the dead list). */
void members_ext_trim(members *t, member *m);

static inline const uint8_t *members_meta(const members *t, const member *m, size_t *len)
{
    const member_ext *x = members_ext(t, m);
    *len = x ? x->meta_len : 0;
    return x ? x->meta : NULL;
}

static inline struct bcast *members_bcast(const members *t, const member *m)
{
    const member_ext *x = members_ext(t, m);
    return x ? x->bcast : NULL;
}

static inline struct suspicion *members_susp(const members *t, const member *m)
{
    const member_ext *x = members_ext(t, m);
    return x ? x->susp : NULL;
}

void members_init(members *t, const rumor_allocator *a);
void members_free(members *t);
member *members_find(const members *t, const char *name, size_t len);
/* The id of a member in the table (1 and up; 0 when `m` is not in it), for tables kept beside
 * this one and indexed by member id (ident.c). Ids are reused after members_remove(). One name
 * hash and a walk of its probe chain in the index. */
uint32_t members_id(const members *t, const member *m);
/* The member's entry in seal_ids (grown on demand), or NULL when `m` is not in the table or
 * memory ran out. */
uint64_t *members_seal_id(members *t, const member *m);
/* A cache hint for a later members_find(name): level 1 requests the index slot, level 2 (some
 * work later) the record it names. Changes nothing. */
void members_prefetch(const members *t, const char *name, size_t len, unsigned level);
/* Adds a member (state ALIVE, no meta); it is swapped to a random slot of the probe order.
 * Returns NULL when out of memory. */
member *members_add(members *t, const char *name, size_t len, rng *r);
/* Removes and frees a member. The caller has cleared its bcast and suspicion. */
void members_remove(members *t, member *m);
/* Makes room for `n` members in all (the probe order, the hash index and the slab index are
 * sized exactly, so a table restored from a snapshot of known size is built without growing
 * arrays nor leaving the grown-out copies behind). Returns false when out of memory; the table
 * keeps its members and stays usable. */
bool members_reserve(members *t, size_t n);
/* Returns false when out of memory (nothing changed). */
bool members_set_state(members *t, member *m, uint8_t state, uint64_t now);
/* Replaces the metadata; returns false when out of memory (nothing changed). */
bool members_set_meta(members *t, member *m, const uint8_t *meta, size_t len);
void members_shuffle(members *t, rng *r);
uint32_t members_live(const members *t);
/* Sets a member's incarnation, keeping the table digest current. */
void members_set_inc(members *t, member *m, uint32_t inc);
/*
 * The digest summarizes (name, incarnation, alive-or-suspect | failed | left) of every member as
 * a wrapping sum of per-member hashes, so two nodes with the same table have the same digest
 * whatever their order, and it is kept up to date in O(1) per change. Alive and suspect count
 * alike: a suspicion is a local, transient opinion, not state worth a full sync.
 */
uint64_t members_digest_of(const member *m);

#endif
