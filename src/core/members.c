#include "core/members.h"
#include "core/hash.h"

#include <string.h>

/* Records in a pool's slabs start at 64-byte boundaries, so a member record is one cache line. */
#define POOL_ALIGN 64

_Static_assert(sizeof(member) == 64, "a member record is one cache line");
_Static_assert(sizeof(member_ext) <= 32, "two extensions share a cache line");

static uint32_t name_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    return h;
}

static uint32_t member_hash(const member *m)
{
    return name_hash(member_name(m), m->name_len);
}

static uint64_t digest_with(const member *m, uint32_t hash)
{
    uint64_t cls = m->state == RUMOR_MEMBER_FAILED ? 1 : m->state == RUMOR_MEMBER_LEFT ? 2 : 0;
    uint64_t x = ((uint64_t)hash << 32 | m->incarnation) ^ (cls << 62) ^ m->name_len;
    return hash_mix64(x);
}

uint64_t members_digest_of(const member *m)
{
    return digest_with(m, member_hash(m));
}

void members_set_inc(members *t, member *m, uint32_t inc)
{
    if (m->incarnation == inc)
        return;
    uint32_t h = member_hash(m);
    t->digest -= digest_with(m, h);
    m->incarnation = inc;
    t->digest += digest_with(m, h);
}

void members_init(members *t, const rumor_allocator *a)
{
    memset(t, 0, sizeof(*t));
    t->recs.size = sizeof(member);
    t->exts.size = sizeof(member_ext);
    t->a = a;
}

/* ---- record pools ---- */

static bool pool_index(members_pool *p, const rumor_allocator *a, size_t nslabs)
{
    if (nslabs <= p->cap)
        return true;
    uint8_t **s = rrealloc(a, p->slabs, nslabs * sizeof(*s));
    if (!s)
        return false;
    p->slabs = s;
    void **m = rrealloc(a, p->mem, nslabs * sizeof(*m));
    if (!m)
        return false;
    p->mem = m;
    p->cap = nslabs;
    return true;
}

/* Adds one slab. Its records are handed out in id order (`fresh`) before released ones are
 * reused, so a slab is not written until its records are used: no zeroing pass, no link pass. */
static bool pool_grow(members_pool *p, const rumor_allocator *a)
{
    if (p->nslabs >= (UINT32_MAX - 1) / MEMBER_SLAB)
        return false;
    if (p->nslabs == p->cap && !pool_index(p, a, p->cap ? p->cap * 2 : 4))
        return false;
    void *mem = ralloc(a, (size_t)MEMBER_SLAB * p->size + POOL_ALIGN - 1);
    if (!mem)
        return false;
    uintptr_t base = ((uintptr_t)mem + POOL_ALIGN - 1) & ~(uintptr_t)(POOL_ALIGN - 1);
    p->mem[p->nslabs] = mem;
    p->slabs[p->nslabs++] = (uint8_t *)base;
    return true;
}

/* A zeroed record and its id, or NULL when out of memory. */
static void *pool_take(members_pool *p, const rumor_allocator *a, uint32_t *id)
{
    uint32_t i = p->free_id;
    if (i) {
        memcpy(&p->free_id, members_pool_at(p, i), sizeof(uint32_t));
    } else {
        if (p->fresh == p->nslabs * MEMBER_SLAB && !pool_grow(p, a))
            return NULL;
        i = ++p->fresh;
    }
    void *r = members_pool_at(p, i);
    memset(r, 0, p->size);
    *id = i;
    return r;
}

/* Zeroes a record and links it into the free list through its first four bytes (a released
 * member record keeps name_len 0, which tells members_free it is not in use). */
static void pool_put(members_pool *p, uint32_t id)
{
    void *r = members_pool_at(p, id);
    memset(r, 0, p->size);
    memcpy(r, &p->free_id, sizeof(uint32_t));
    p->free_id = id;
}

static void pool_free(members_pool *p, const rumor_allocator *a)
{
    for (size_t i = 0; i < p->nslabs; i++)
        rfree(a, p->mem[i]);
    rfree(a, p->slabs);
    rfree(a, p->mem);
}

static member *by_id(const members *t, uint32_t id)
{
    return members_pool_at(&t->recs, id);
}

/* ---- extensions ---- */

member_ext *members_ext_get(members *t, member *m)
{
    if (m->ext)
        return members_ext(t, m);
    uint32_t id;
    member_ext *x = pool_take(&t->exts, t->a, &id);
    if (x)
        m->ext = id;
    return x;
}

static bool is_dead(uint8_t state)
{
    return state == RUMOR_MEMBER_FAILED || state == RUMOR_MEMBER_LEFT;
}

void members_ext_trim(members *t, member *m)
{
    member_ext *x = members_ext(t, m);
    if (!x || x->meta || x->bcast || x->susp || is_dead(m->state))
        return;
    pool_put(&t->exts, m->ext);
    m->ext = 0;
}

/* ---- the table ---- */

/* Releases what a member owns and puts its record on the free list. */
static void member_release(members *t, member *m, uint32_t id)
{
    if (m->name_len > MEMBER_NAME_INLINE)
        rfree(t->a, m->n.heap_name);
    member_ext *x = members_ext(t, m);
    if (x) {
        rfree(t->a, x->meta);
        pool_put(&t->exts, m->ext);
    }
    pool_put(&t->recs, id);
}

void members_free(members *t)
{
    /* Walk the slabs in address order rather than the shuffled probe order: at 10^8 records
     * (a 10,000-node simulation) that is the difference between streaming and a cache miss per
     * record. Released records are zeroed but for their free-list link, so name_len is 0. */
    for (uint32_t id = 1; id <= t->recs.fresh; id++) {
        member *m = by_id(t, id);
        if (m->name_len > MEMBER_NAME_INLINE)
            rfree(t->a, m->n.heap_name);
        member_ext *x = m->name_len ? members_ext(t, m) : NULL;
        if (x)
            rfree(t->a, x->meta);
    }
    pool_free(&t->recs, t->a);
    pool_free(&t->exts, t->a);
    rfree(t->a, t->order);
    rfree(t->a, t->slots);
    rfree(t->a, t->dead);
    rfree(t->a, t->seal_ids);
    memset(t, 0, sizeof(*t));
}

/*
 * The index keeps each member's name hash next to its id: a lookup compares hashes along the
 * probe chain in the index itself and reads a record only when the hash matches. A miss (every
 * restore of a new member asks first) then touches no record at all, and a hit reads one.
 */
static uint32_t slot_id(uint64_t slot)
{
    return (uint32_t)slot;
}

static uint32_t slot_hash(uint64_t slot)
{
    return (uint32_t)(slot >> 32);
}

static size_t slot_of(const members *t, uint32_t hash)
{
    return hash & (t->nslots - 1);
}

member *members_find(const members *t, const char *name, size_t len)
{
    if (t->nslots == 0)
        return NULL;
    uint32_t h = name_hash(name, len);
    for (size_t i = slot_of(t, h);; i = (i + 1) & (t->nslots - 1)) {
        uint64_t s = t->slots[i];
        if (!s)
            return NULL;
        if (slot_hash(s) != h)
            continue;
        member *m = by_id(t, slot_id(s));
        if (m->name_len == len && memcmp(member_name(m), name, len) == 0)
            return m;
    }
}

uint32_t members_id(const members *t, const member *m)
{
    if (t->nslots == 0)
        return 0;
    uint32_t h = member_hash(m);
    for (size_t i = slot_of(t, h);; i = (i + 1) & (t->nslots - 1)) {
        uint64_t s = t->slots[i];
        if (!s)
            return 0;
        if (slot_hash(s) == h && by_id(t, slot_id(s)) == m)
            return slot_id(s);
    }
}

uint64_t *members_seal_id(members *t, const member *m)
{
    uint32_t id = members_id(t, m);
    if (!id)
        return NULL;
    if (id > t->nseal_ids) {
        size_t cap = t->nseal_ids, old = t->nseal_ids;
        void *p = t->seal_ids;
        if (!rgrow(t->a, &p, &cap, id, sizeof(uint64_t)))
            return NULL;
        t->seal_ids = p;
        memset(t->seal_ids + old, 0, (cap - old) * sizeof(uint64_t));
        t->nseal_ids = cap;
    }
    return &t->seal_ids[id - 1];
}

void members_prefetch(const members *t, const char *name, size_t len, unsigned level)
{
    if (t->nslots == 0 || level == 0)
        return;
    uint32_t h = name_hash(name, len);
    size_t i = slot_of(t, h);
    if (level == 1) {
        /* The index slot, and the slab index the record's address is computed from (up to eight
         * lines of it: 16,384 members). */
        __builtin_prefetch(&t->slots[i]);
        size_t lines = t->recs.nslabs < 64 ? t->recs.nslabs : 64;
        for (size_t k = 0; k < lines; k += 8)
            __builtin_prefetch(&t->recs.slabs[k]);
        return;
    }
    for (size_t probes = 0; probes < t->nslots; probes++, i = (i + 1) & (t->nslots - 1)) {
        uint64_t s = t->slots[i];
        if (!s)
            return;
        if (slot_hash(s) == h) {
            __builtin_prefetch(by_id(t, slot_id(s)));
            return;
        }
    }
}

static void slots_insert(uint64_t *slots, size_t nslots, uint32_t id, uint32_t hash)
{
    size_t i = hash & (nslots - 1);
    while (slots[i])
        i = (i + 1) & (nslots - 1);
    slots[i] = (uint64_t)hash << 32 | id;
}

/* Linear probing stays short up to a load of 3/4 (about 8.5 slots per miss, 2.5 per hit, eight
 * to a cache line); a lower bound would only double the index's memory. */
static bool slots_fit(size_t count, size_t nslots)
{
    return count * 4 <= nslots * 3;
}

static bool slots_resize(members *t, size_t n)
{
    uint64_t *s = rcalloc(t->a, n, sizeof(*s));
    if (!s)
        return false;
    for (size_t i = 0; i < t->nslots; i++)
        if (t->slots[i])
            slots_insert(s, n, slot_id(t->slots[i]), slot_hash(t->slots[i]));
    rfree(t->a, t->slots);
    t->slots = s;
    t->nslots = n;
    return true;
}

static bool slots_grow(members *t)
{
    if (slots_fit(t->count + 1, t->nslots))
        return true;
    return slots_resize(t, t->nslots ? t->nslots * 2 : 16);
}

bool members_reserve(members *t, size_t n)
{
    if (n > UINT32_MAX - 1)
        return false;
    size_t ns = t->nslots ? t->nslots : 16;
    while (!slots_fit(n, ns))
        ns *= 2;
    if (ns > t->nslots && !slots_resize(t, ns))
        return false;
    if (n > t->cap) {
        size_t bytes;
        if (!size_mul_ok(n, sizeof(member *), &bytes))
            return false;
        member **o = rrealloc(t->a, t->order, bytes);
        if (!o)
            return false;
        t->order = o;
        t->cap = n;
    }
    return pool_index(&t->recs, t->a, (n + MEMBER_SLAB - 1) / MEMBER_SLAB);
}

member *members_add(members *t, const char *name, size_t len, rng *r)
{
    if (len == 0 || len > RUMOR_NAME_MAX || !slots_grow(t))
        return NULL;
    void *order = t->order;
    if (!rgrow(t->a, &order, &t->cap, t->count + 1, sizeof(member *)))
        return NULL;
    t->order = order;
    uint32_t id;
    member *m = pool_take(&t->recs, t->a, &id);
    if (!m)
        return NULL;
    if (len > MEMBER_NAME_INLINE) {
        m->n.heap_name = rstrndup(t->a, name, len);
        if (!m->n.heap_name) {
            pool_put(&t->recs, id);
            return NULL;
        }
    } else {
        memcpy(m->n.inline_name, name, len);
    }
    m->name_len = (uint8_t)len;
    m->state = RUMOR_MEMBER_ALIVE;
    if (id <= t->nseal_ids)
        t->seal_ids[id - 1] = 0; /* a reused id: not the earlier holder's seal id */
    uint32_t h = name_hash(name, len);
    t->by_state[RUMOR_MEMBER_ALIVE]++;
    t->digest += digest_with(m, h);
    slots_insert(t->slots, t->nslots, id, h);
    /* Append, then swap into a random slot so the newcomer is probed within this round. */
    size_t n = t->count++;
    t->order[n] = m;
    m->order_idx = (uint32_t)n;
    size_t j = rng_below(r, (uint32_t)t->count);
    member *o = t->order[j];
    t->order[j] = m;
    t->order[n] = o;
    m->order_idx = (uint32_t)j;
    o->order_idx = (uint32_t)n;
    return m;
}

/* Takes the member out of the hash index; returns its id. */
static uint32_t slots_remove(members *t, const member *m)
{
    size_t mask = t->nslots - 1;
    uint32_t h = member_hash(m);
    size_t i = slot_of(t, h);
    while (slot_hash(t->slots[i]) != h || by_id(t, slot_id(t->slots[i])) != m)
        i = (i + 1) & mask;
    uint32_t id = slot_id(t->slots[i]);
    /* Backward-shift deletion keeps every probe chain unbroken without tombstones. */
    size_t j = i;
    for (;;) {
        t->slots[i] = 0;
        for (;;) {
            j = (j + 1) & mask;
            if (!t->slots[j])
                return id;
            size_t k = slot_of(t, slot_hash(t->slots[j]));
            /* Move slots[j] to i unless its home k lies cyclically in (i, j]. */
            if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
                continue;
            break;
        }
        t->slots[i] = t->slots[j];
        i = j;
    }
}

static void dead_remove(members *t, member *m)
{
    member_ext *x = members_ext(t, m);
    size_t last = --t->ndead;
    if (x->dead_idx != last) {
        member *moved = t->dead[last];
        t->dead[x->dead_idx] = moved;
        members_ext(t, moved)->dead_idx = x->dead_idx;
    }
}

void members_remove(members *t, member *m)
{
    if (is_dead(m->state))
        dead_remove(t, m);
    uint32_t id = slots_remove(t, m);
    size_t idx = m->order_idx;
    size_t last = --t->count;
    if (idx != last) {
        t->order[idx] = t->order[last];
        t->order[idx]->order_idx = (uint32_t)idx;
    }
    if (t->probe_idx > t->count)
        t->probe_idx = t->count;
    t->by_state[m->state]--;
    t->digest -= members_digest_of(m);
    member_release(t, m, id);
}

bool members_set_state(members *t, member *m, uint8_t state, uint64_t now)
{
    if (m->state == state)
        return true;
    if (is_dead(state) && !is_dead(m->state)) {
        void *d = t->dead;
        if (!rgrow(t->a, &d, &t->dead_cap, t->ndead + 1, sizeof(member *)))
            return false;
        t->dead = d;
        member_ext *x = members_ext_get(t, m);
        if (!x)
            return false;
        x->dead_idx = (uint32_t)t->ndead;
        t->dead[t->ndead++] = m;
    } else if (!is_dead(state) && is_dead(m->state)) {
        dead_remove(t, m);
    }
    uint32_t h = member_hash(m);
    t->by_state[m->state]--;
    t->by_state[state]++;
    t->digest -= digest_with(m, h);
    m->state = state;
    t->digest += digest_with(m, h);
    m->state_since = now;
    members_ext_trim(t, m);
    return true;
}

bool members_set_meta(members *t, member *m, const uint8_t *meta, size_t len)
{
    size_t old_len;
    const uint8_t *old = members_meta(t, m, &old_len);
    if (len == old_len && (len == 0 || memcmp(meta, old, len) == 0))
        return true;
    member_ext *x = members_ext_get(t, m);
    if (!x)
        return false;
    uint8_t *p = NULL;
    if (len) {
        p = ralloc(t->a, len);
        if (!p) {
            members_ext_trim(t, m);
            return false;
        }
        memcpy(p, meta, len);
    }
    rfree(t->a, x->meta);
    x->meta = p;
    x->meta_len = (uint16_t)len;
    members_ext_trim(t, m);
    return true;
}

void members_shuffle(members *t, rng *r)
{
    for (size_t i = t->count; i > 1; i--) {
        size_t j = rng_below(r, (uint32_t)i);
        member *tmp = t->order[i - 1];
        t->order[i - 1] = t->order[j];
        t->order[j] = tmp;
        t->order[i - 1]->order_idx = (uint32_t)(i - 1);
        t->order[j]->order_idx = (uint32_t)j;
    }
    t->probe_idx = 0;
}

uint32_t members_live(const members *t)
{
    return t->by_state[RUMOR_MEMBER_ALIVE] + t->by_state[RUMOR_MEMBER_SUSPECT];
}
