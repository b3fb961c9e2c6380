#include "core/members.h"

#include <string.h>

static uint32_t name_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    return h;
}

uint64_t members_digest_of(const member *m)
{
    uint64_t cls = m->state == RUMOR_MEMBER_FAILED ? 1 : m->state == RUMOR_MEMBER_LEFT ? 2 : 0;
    uint64_t x = ((uint64_t)m->hash << 32 | m->incarnation) ^ (cls << 62) ^ m->name_len;
    /* splitmix64's finalizer spreads every input bit over the whole word. */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void members_set_inc(members *t, member *m, uint32_t inc)
{
    t->digest -= members_digest_of(m);
    m->incarnation = inc;
    t->digest += members_digest_of(m);
}

void members_init(members *t, const rumor_allocator *a)
{
    memset(t, 0, sizeof(*t));
    t->a = a;
}

static member *by_id(const members *t, uint32_t id)
{
    uint32_t i = id - 1;
    return &t->slabs[i / MEMBER_SLAB][i % MEMBER_SLAB];
}

/* Releases what a member owns and puts its record on the free list. */
static void member_release(members *t, member *m)
{
    if (m->name_len > MEMBER_NAME_INLINE)
        rfree(t->a, m->n.heap_name);
    rfree(t->a, m->meta);
    uint32_t id = m->id;
    memset(m, 0, sizeof(*m));
    m->id = t->free_id; /* link */
    t->free_id = id;
}

/* Adds one slab. Its records are handed out in id order (`fresh`) before the free list is
 * needed, so a slab is not written until its records are used: no zeroing pass, no link pass. */
static bool slab_add(members *t)
{
    if (t->nslabs >= (UINT32_MAX - 1) / MEMBER_SLAB)
        return false;
    void *arr = t->slabs;
    if (!rgrow(t->a, &arr, &t->slabs_cap, t->nslabs + 1, sizeof(member *)))
        return false;
    t->slabs = arr;
    member *slab = ralloc(t->a, MEMBER_SLAB * sizeof(member));
    if (!slab)
        return false;
    t->slabs[t->nslabs++] = slab;
    return true;
}

static member *member_take(members *t)
{
    uint32_t id = t->free_id;
    if (id) {
        t->free_id = by_id(t, id)->id;
    } else {
        if (t->fresh == t->nslabs * MEMBER_SLAB && !slab_add(t))
            return NULL;
        id = (uint32_t)++t->fresh;
    }
    member *m = by_id(t, id);
    memset(m, 0, sizeof(*m));
    m->id = id;
    return m;
}

void members_free(members *t)
{
    /* Walk the slabs in address order rather than the shuffled probe order: at 10^8 records
     * (a 10,000-node simulation) that is the difference between streaming and a cache miss per
     * record. Released records are zeroed, so their name_len is 0 and meta NULL. */
    for (uint32_t id = 1; id <= t->fresh; id++) {
        member *m = by_id(t, id);
        if (m->name_len > MEMBER_NAME_INLINE)
            rfree(t->a, m->n.heap_name);
        rfree(t->a, m->meta);
    }
    for (size_t i = 0; i < t->nslabs; i++)
        rfree(t->a, t->slabs[i]);
    rfree(t->a, t->slabs);
    rfree(t->a, t->order);
    rfree(t->a, t->slots);
    rfree(t->a, t->dead);
    memset(t, 0, sizeof(*t));
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
        if (!t->slots[i])
            return NULL;
        member *m = by_id(t, t->slots[i]);
        if (m->hash == h && m->name_len == len && memcmp(member_name(m), name, len) == 0)
            return m;
    }
}

static void slots_insert(uint32_t *slots, size_t nslots, const member *m)
{
    size_t i = m->hash & (nslots - 1);
    while (slots[i])
        i = (i + 1) & (nslots - 1);
    slots[i] = m->id;
}

/* Linear probing stays short up to a load of 3/4 (about 8.5 slots per miss, 2.5 per hit, and
 * four-byte slots share cache lines); a lower bound would only double the table's memory. */
static bool slots_fit(size_t count, size_t nslots)
{
    return count * 4 <= nslots * 3;
}

static bool slots_resize(members *t, size_t n)
{
    uint32_t *s = rcalloc(t->a, n, sizeof(*s));
    if (!s)
        return false;
    for (size_t i = 0; i < t->count; i++)
        slots_insert(s, n, t->order[i]);
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
    size_t slabs = (n + MEMBER_SLAB - 1) / MEMBER_SLAB;
    if (slabs > t->slabs_cap) {
        member **s = rrealloc(t->a, t->slabs, slabs * sizeof(member *));
        if (!s)
            return false;
        t->slabs = s;
        t->slabs_cap = slabs;
    }
    return true;
}

member *members_add(members *t, const char *name, size_t len, rng *r)
{
    if (len == 0 || len > RUMOR_NAME_MAX || !slots_grow(t))
        return NULL;
    void *order = t->order;
    if (!rgrow(t->a, &order, &t->cap, t->count + 1, sizeof(member *)))
        return NULL;
    t->order = order;
    member *m = member_take(t);
    if (!m)
        return NULL;
    if (len > MEMBER_NAME_INLINE) {
        m->n.heap_name = rstrndup(t->a, name, len);
        if (!m->n.heap_name) {
            member_release(t, m);
            return NULL;
        }
    } else {
        memcpy(m->n.inline_name, name, len);
    }
    m->name_len = (uint8_t)len;
    m->hash = name_hash(name, len);
    m->state = RUMOR_MEMBER_ALIVE;
    t->by_state[RUMOR_MEMBER_ALIVE]++;
    t->digest += members_digest_of(m);
    slots_insert(t->slots, t->nslots, m);
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

static void slots_remove(members *t, member *m)
{
    size_t mask = t->nslots - 1;
    size_t i = slot_of(t, m->hash);
    while (t->slots[i] != m->id)
        i = (i + 1) & mask;
    /* Backward-shift deletion keeps every probe chain unbroken without tombstones. */
    size_t j = i;
    for (;;) {
        t->slots[i] = 0;
        for (;;) {
            j = (j + 1) & mask;
            if (!t->slots[j])
                return;
            size_t k = slot_of(t, by_id(t, t->slots[j])->hash);
            /* Move slots[j] to i unless its home k lies cyclically in (i, j]. */
            if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
                continue;
            break;
        }
        t->slots[i] = t->slots[j];
        i = j;
    }
}

static bool is_dead(uint8_t state)
{
    return state == RUMOR_MEMBER_FAILED || state == RUMOR_MEMBER_LEFT;
}

static void dead_remove(members *t, member *m)
{
    size_t last = --t->ndead;
    if (m->dead_idx != last) {
        t->dead[m->dead_idx] = t->dead[last];
        t->dead[m->dead_idx]->dead_idx = m->dead_idx;
    }
}

void members_remove(members *t, member *m)
{
    if (is_dead(m->state))
        dead_remove(t, m);
    slots_remove(t, m);
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
    member_release(t, m);
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
        m->dead_idx = (uint32_t)t->ndead;
        t->dead[t->ndead++] = m;
    } else if (!is_dead(state) && is_dead(m->state)) {
        dead_remove(t, m);
    }
    t->by_state[m->state]--;
    t->by_state[state]++;
    t->digest -= members_digest_of(m);
    m->state = state;
    t->digest += members_digest_of(m);
    m->state_since = now;
    return true;
}

bool members_set_meta(members *t, member *m, const uint8_t *meta, size_t len)
{
    if (len == m->meta_len && (len == 0 || memcmp(meta, m->meta, len) == 0))
        return true;
    uint8_t *p = NULL;
    if (len) {
        p = ralloc(t->a, len);
        if (!p)
            return false;
        memcpy(p, meta, len);
    }
    rfree(t->a, m->meta);
    m->meta = p;
    m->meta_len = (uint16_t)len;
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
