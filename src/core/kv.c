/* Replicated key-value state: see kv.h for the model. */
#include "core/kv.h"
#include "core/hash.h"

#include <sodium.h>
#include <string.h>

#include "core/wire.h"

static uint32_t fnv(const void *p, size_t len, uint32_t h)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 16777619u;
    }
    return h;
}

/* Shared and per-node entries live in separate namespaces: the flag is part of the identity. */
static uint32_t key_hash(const uint8_t *key, size_t len, uint8_t flags)
{
    uint8_t ns = flags & KV_SHARED;
    return fnv(key, len, fnv(&ns, 1, 2166136261u));
}

static bool key_eq(const kv_entry *e, const uint8_t *key, size_t len, uint32_t h, uint8_t flags)
{
    return e->hash == h && e->key_len == len && (e->flags & KV_SHARED) == (flags & KV_SHARED) &&
           memcmp(kv_key(e), key, len) == 0;
}

void kv_init(kv_store *s, const rumor_allocator *a, const kv_limits *lim)
{
    memset(s, 0, sizeof(*s));
    s->a = a;
    s->lim = *lim;
}

/* ---- a generic open-addressing table of entry pointers (per origin, and the shared index) ---- */

static kv_entry **table_find(kv_entry **slots, size_t n, const uint8_t *key, size_t len, uint32_t h,
                             uint8_t flags)
{
    if (n == 0)
        return NULL;
    for (size_t i = h & (n - 1);; i = (i + 1) & (n - 1)) {
        if (!slots[i] || key_eq(slots[i], key, len, h, flags))
            return &slots[i];
    }
}

static bool table_grow(const rumor_allocator *a, kv_entry ***slots, size_t *n, size_t count)
{
    if ((count + 1) * 2 <= *n)
        return true;
    size_t nn = *n ? *n * 2 : 16;
    kv_entry **ns = rcalloc(a, nn, sizeof(*ns));
    if (!ns)
        return false;
    for (size_t i = 0; i < *n; i++) {
        kv_entry *e = (*slots)[i];
        if (!e)
            continue;
        size_t j = e->hash & (nn - 1);
        while (ns[j])
            j = (j + 1) & (nn - 1);
        ns[j] = e;
    }
    rfree(a, *slots);
    *slots = ns;
    *n = nn;
    return true;
}

static void table_remove(kv_entry **slots, size_t n, kv_entry **slot)
{
    size_t mask = n - 1, i = (size_t)(slot - slots), j = i;
    /* Backward-shift deletion (see members.c). */
    for (;;) {
        slots[i] = NULL;
        for (;;) {
            j = (j + 1) & mask;
            if (!slots[j])
                return;
            size_t k = slots[j]->hash & mask;
            if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
                continue;
            break;
        }
        slots[i] = slots[j];
        i = j;
    }
}

/* ---- origins ---- */

/* Origins are looked up by name on every digest entry and delta, so they are hashed too. */
static kv_origin **oslot_find(const kv_store *s, const char *name, size_t len, uint32_t h)
{
    if (s->noslots == 0)
        return NULL;
    for (size_t i = h & (s->noslots - 1);; i = (i + 1) & (s->noslots - 1)) {
        kv_origin *o = s->oslots[i];
        if (!o || (o->hash == h && o->name_len == len && memcmp(o->name, name, len) == 0))
            return &s->oslots[i];
    }
}

static void oslot_put(kv_origin **slots, size_t n, kv_origin *o)
{
    size_t i = o->hash & (n - 1);
    while (slots[i])
        i = (i + 1) & (n - 1);
    slots[i] = o;
}

static bool oslots_grow(kv_store *s)
{
    if ((s->norigins + 1) * 2 <= s->noslots)
        return true;
    size_t n = s->noslots ? s->noslots * 2 : 16;
    kv_origin **ns = rcalloc(s->a, n, sizeof(*ns));
    if (!ns)
        return false;
    for (size_t i = 0; i < s->norigins; i++)
        oslot_put(ns, n, s->origins[i]);
    rfree(s->a, s->oslots);
    s->oslots = ns;
    s->noslots = n;
    return true;
}

static void oslot_remove(kv_store *s, kv_origin **slot)
{
    size_t mask = s->noslots - 1, i = (size_t)(slot - s->oslots), j = i;
    /* Backward-shift deletion (see members.c). */
    for (;;) {
        s->oslots[i] = NULL;
        for (;;) {
            j = (j + 1) & mask;
            if (!s->oslots[j])
                return;
            size_t k = s->oslots[j]->hash & mask;
            if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
                continue;
            break;
        }
        s->oslots[i] = s->oslots[j];
        i = j;
    }
}

kv_origin *kv_origin_find(const kv_store *s, const char *name, size_t len)
{
    kv_origin **slot = oslot_find(s, name, len, fnv(name, len, 2166136261u));
    return slot ? *slot : NULL;
}

kv_origin *kv_origin_get(kv_store *s, const char *name, size_t len)
{
    kv_origin *o = kv_origin_find(s, name, len);
    if (o)
        return o;
    void *arr = s->origins;
    if (!oslots_grow(s) ||
        !rgrow(s->a, &arr, &s->origins_cap, s->norigins + 1, sizeof(kv_origin *)))
        return NULL;
    s->origins = arr;
    o = rcalloc(s->a, 1, sizeof(*o));
    if (!o)
        return NULL;
    o->name = rstrndup(s->a, name, len);
    if (!o->name) {
        rfree(s->a, o);
        return NULL;
    }
    o->name_len = len;
    o->hash = fnv(name, len, 2166136261u);
    o->idx = (uint32_t)s->norigins;
    s->origins[s->norigins++] = o;
    oslot_put(s->oslots, s->noslots, o);
    o->bnext = s->bhead[kv_bucket(o)];
    s->bhead[kv_bucket(o)] = o;
    return o;
}

/* ---- the store sum ---- */

/* What one origin adds to kv_store.sum: two stores hold the same versions of the same origins
 * exactly when their sums agree (up to hash collisions), so a round between nodes in sync costs
 * one small message. Origins holding nothing add nothing (every node has its own, empty). */
static uint64_t sum_term(const kv_origin *o)
{
    if (o->max_version == 0 && o->gc_version == 0)
        return 0;
    /* The horizon counts too: a replica still holding tombstones its origin collected differs,
     * and the round that follows tells it the horizon. */
    uint64_t x = ((uint64_t)o->hash << 32) ^ o->max_version ^ ((uint64_t)o->name_len << 56) ^
                 (o->gc_version * 0x9e3779b97f4a7c15ull);
    /* With identities the keyspace sum counts too (0 without): a replica that was kept from
     * an entry differs from the others at the same versions, so its rounds go on and bring it
     * its origin's signed sum (kvnode.c). */
    if (o->ksum[0] | o->ksum[1])
        x ^= hash_mix64(o->ksum[0] ^ (o->ksum[1] * 0xc2b2ae3d27d4eb4full));
    return hash_mix64(x);
}

static void set_versions(kv_store *s, kv_origin *o, uint64_t max, uint64_t gc)
{
    uint64_t *b = &s->bsum[kv_bucket(o)];
    s->sum -= sum_term(o);
    *b -= sum_term(o);
    s->vtotal += max - o->max_version; /* wraps back when max is lower: exact either way */
    o->max_version = max;
    o->gc_version = gc;
    s->sum += sum_term(o);
    *b += sum_term(o);
}

static void set_max(kv_store *s, kv_origin *o, uint64_t v)
{
    set_versions(s, o, v, o->gc_version);
}

static void set_gc(kv_store *s, kv_origin *o, uint64_t gc)
{
    set_versions(s, o, o->max_version, gc);
}

/* ---- the keyspace sum (identities only) ---- */

void kv_sum_term(uint64_t v, uint64_t out[2])
{
    uint8_t be[8], h[16];
    for (int i = 0; i < 8; i++)
        be[i] = (uint8_t)(v >> (56 - 8 * i));
    crypto_generichash(h, sizeof(h), be, sizeof(be), NULL, 0);
    out[0] = out[1] = 0;
    for (int i = 7; i >= 0; i--) {
        out[0] = (out[0] << 8) | h[i];
        out[1] = (out[1] << 8) | h[8 + i];
    }
}

/* Adds (sign > 0) or takes away the term of version `v` from the origin's keyspace sum (and
 * moves the store sums with it). */
static void ksum_update(kv_store *s, kv_origin *o, uint64_t v, int sign)
{
    if (!s->sig_len)
        return;
    uint64_t t[2], *b = &s->bsum[kv_bucket(o)], before = sum_term(o);
    s->sum -= before;
    *b -= before;
    kv_sum_term(v, t);
    if (sign > 0) {
        uint64_t lo = o->ksum[0] + t[0];
        o->ksum[1] += t[1] + (lo < t[0]);
        o->ksum[0] = lo;
    } else {
        uint64_t lo = o->ksum[0] - t[0];
        o->ksum[1] -= t[1] + (o->ksum[0] < t[0]);
        o->ksum[0] = lo;
    }
    uint64_t after = sum_term(o);
    s->sum += after;
    *b += after;
}

/* ---- the shared index ---- */

/* Last writer wins by HLC stamp, ties broken by origin name, so every replica agrees. */
static bool newer(const kv_entry *a, const kv_entry *b)
{
    if (a->stamp != b->stamp)
        return a->stamp > b->stamp;
    size_t n =
        a->origin->name_len < b->origin->name_len ? a->origin->name_len : b->origin->name_len;
    int c = memcmp(a->origin->name, b->origin->name, n);
    if (c != 0)
        return c > 0;
    return a->origin->name_len > b->origin->name_len;
}

static void shared_consider(kv_store *s, kv_entry *e)
{
    if (!table_grow(s->a, &s->shared, &s->shared_slots, s->nshared))
        return;
    kv_entry **slot =
        table_find(s->shared, s->shared_slots, kv_key(e), e->key_len, e->hash, KV_SHARED);
    if (!*slot) {
        *slot = e;
        s->nshared++;
    } else if (*slot != e && newer(e, *slot)) {
        *slot = e;
    }
}

const kv_entry *kv_shared_get(const kv_store *s, const uint8_t *key, size_t len)
{
    kv_entry **slot =
        table_find(s->shared, s->shared_slots, key, len, key_hash(key, len, KV_SHARED), KV_SHARED);
    return slot ? *slot : NULL;
}

/* Entry `e` is going away: if it was a winner, elect the next newest across origins. */
static void shared_forget(kv_store *s, const kv_entry *e)
{
    kv_entry **slot =
        table_find(s->shared, s->shared_slots, kv_key(e), e->key_len, e->hash, KV_SHARED);
    if (!slot || *slot != e)
        return;
    kv_entry *best = NULL;
    for (size_t i = 0; i < s->norigins; i++) {
        kv_origin *o = s->origins[i];
        kv_entry **c = table_find(o->slots, o->nslots, kv_key(e), e->key_len, e->hash, KV_SHARED);
        if (c && *c && *c != e && (!best || newer(*c, best)))
            best = *c;
    }
    if (best) {
        *slot = best;
    } else {
        table_remove(s->shared, s->shared_slots, slot);
        s->nshared--;
    }
}

/* ---- entries ---- */

static size_t entry_bytes(const kv_entry *e)
{
    return (size_t)e->key_len + e->value_len;
}

static bool live(const kv_entry *e)
{
    return !(e->flags & KV_TOMBSTONE);
}

static void list_unlink(kv_origin *o, kv_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        o->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        o->tail = e->prev;
    e->prev = e->next = NULL;
}

static void list_append(kv_origin *o, kv_entry *e)
{
    e->prev = o->tail;
    e->next = NULL;
    if (o->tail)
        o->tail->next = e;
    else
        o->head = e;
    o->tail = e;
}

static void entry_remove(kv_store *s, kv_origin *o, kv_entry *e)
{
    if (e->flags & KV_SHARED)
        shared_forget(s, e);
    kv_entry **slot = table_find(o->slots, o->nslots, kv_key(e), e->key_len, e->hash, e->flags);
    table_remove(o->slots, o->nslots, slot);
    ksum_update(s, o, e->version, -1);
    o->count--;
    list_unlink(o, e);
    o->bytes -= entry_bytes(e);
    s->total_bytes -= entry_bytes(e);
    if (live(e))
        o->keys--;
    rfree(s->a, e->data);
    rfree(s->a, e);
}

void kv_origin_reset(kv_store *s, kv_origin *o, uint64_t gc_version)
{
    while (o->head)
        entry_remove(s, o, o->head);
    set_max(s, o, 0);
    if (gc_version > o->gc_version)
        set_gc(s, o, gc_version);
}

static void hot_unlink(kv_store *s, kv_origin *o)
{
    if (o->hot_prev)
        o->hot_prev->hot_next = o->hot_next;
    else if (s->hot == o)
        s->hot = o->hot_next;
    if (o->hot_next)
        o->hot_next->hot_prev = o->hot_prev;
    o->hot_prev = o->hot_next = NULL;
}

void kv_touch(kv_store *s, kv_origin *o, uint64_t now)
{
    o->changed_at = now;
    if (s->hot == o)
        return;
    hot_unlink(s, o);
    o->hot_next = s->hot;
    if (s->hot)
        s->hot->hot_prev = o;
    s->hot = o;
}

void kv_origin_drop(kv_store *s, kv_origin *o)
{
    kv_origin_reset(s, o, 0);
    hot_unlink(s, o);
    kv_origin **bp = &s->bhead[kv_bucket(o)];
    while (*bp != o)
        bp = &(*bp)->bnext;
    *bp = o->bnext;
    oslot_remove(s, oslot_find(s, o->name, o->name_len, o->hash));
    kv_origin *last = s->origins[--s->norigins];
    s->origins[o->idx] = last;
    last->idx = o->idx;
    rfree(s->a, o->slots);
    rfree(s->a, o->name);
    rfree(s->a, o->ident);
    rfree(s->a, o);
}

void kv_free(kv_store *s)
{
    while (s->norigins)
        kv_origin_drop(s, s->origins[0]);
    rfree(s->a, s->origins);
    rfree(s->a, s->oslots);
    rfree(s->a, s->shared);
    memset(s, 0, sizeof(*s));
}

const kv_entry *kv_get(const kv_origin *o, const uint8_t *key, size_t len)
{
    kv_entry **slot = table_find(o->slots, o->nslots, key, len, key_hash(key, len, 0), 0);
    return slot ? *slot : NULL;
}

const kv_entry *kv_get_shared(const kv_origin *o, const uint8_t *key, size_t len)
{
    kv_entry **slot =
        table_find(o->slots, o->nslots, key, len, key_hash(key, len, KV_SHARED), KV_SHARED);
    return slot ? *slot : NULL;
}

static int check_delta(const kv_store *s, const kv_delta *d)
{
    if (d->key_len == 0 || d->key_len > KV_KEY_MAX || (d->flags & ~KV_FLAGS_KNOWN) ||
        (d->value_len && !d->value))
        return RUMOR_ERR_INVALID;
    if (d->flags & KV_RETIRED) {
        /* A retired entry's value is the small dependency record, not a user value: it is not
         * held to value_bytes_max (a low limit must not block a keyspace at a retirement). */
        wire_str o;
        uint64_t v;
        if ((d->flags & (KV_TOMBSTONE | KV_SHARED)) != (KV_TOMBSTONE | KV_SHARED) ||
            d->value_len > KV_RETIRED_VALUE_MAX ||
            !wire_kv_retired_dep(wire_str_of(d->value, d->value_len), &o, &v))
            return RUMOR_ERR_INVALID;
        return RUMOR_OK;
    }
    if ((d->flags & KV_TOMBSTONE) && d->value_len)
        return RUMOR_ERR_INVALID;
    if (d->value_len > s->lim.value_bytes_max)
        return RUMOR_ERR_TOO_BIG;
    return RUMOR_OK;
}

/* Would storing `d` in place of `old` break a limit? */
static bool over_limits(const kv_store *s, const kv_origin *o, const kv_entry *old,
                        const kv_delta *d)
{
    size_t add = d->key_len + d->value_len, sub = old ? entry_bytes(old) : 0;
    bool adds_key = !(d->flags & KV_TOMBSTONE) && (!old || !live(old));
    if (adds_key && o->keys >= s->lim.keys_per_node_max)
        return true;
    if (add > sub && (o->bytes + add - sub > s->lim.bytes_per_node_max ||
                      s->total_bytes + add - sub > s->lim.total_bytes_max))
        return true;
    return false;
}

static int store(kv_store *s, kv_origin *o, const kv_delta *d, uint64_t now)
{
    uint32_t h = key_hash(d->key, d->key_len, d->flags);
    if (!table_grow(s->a, &o->slots, &o->nslots, o->count))
        return RUMOR_ERR_NOMEM;
    kv_entry **slot = table_find(o->slots, o->nslots, d->key, d->key_len, h, d->flags);
    kv_entry *e = *slot;
    if (over_limits(s, o, e, d))
        return RUMOR_ERR_TOO_BIG;
    uint8_t *data = ralloc(s->a, d->key_len + d->value_len + s->sig_len);
    if (!data)
        return RUMOR_ERR_NOMEM;
    memcpy(data, d->key, d->key_len);
    if (d->value_len)
        memcpy(data + d->key_len, d->value, d->value_len);
    if (s->sig_len) { /* identities: the signature travels on with the entry (ident.h) */
        if (d->sig)
            memcpy(data + d->key_len + d->value_len, d->sig, s->sig_len);
        else
            memset(data + d->key_len + d->value_len, 0, s->sig_len);
    }
    uint64_t old_version = 0;
    if (e) {
        old_version = live(e) ? e->version : 0;
        ksum_update(s, o, e->version, -1);
        o->bytes -= entry_bytes(e);
        s->total_bytes -= entry_bytes(e);
        if (live(e))
            o->keys--;
        rfree(s->a, e->data);
        list_unlink(o, e);
    } else {
        e = rcalloc(s->a, 1, sizeof(*e));
        if (!e) {
            rfree(s->a, data);
            return RUMOR_ERR_NOMEM;
        }
        e->origin = o;
        e->hash = h;
        *slot = e;
        o->count++;
    }
    e->data = data;
    e->key_len = (uint16_t)d->key_len;
    e->value_len = (uint32_t)d->value_len;
    e->version = d->version;
    e->stamp = d->stamp;
    e->flags = d->flags;
    e->dead_since = now;
    ksum_update(s, o, e->version, 1);
    list_append(o, e);
    o->bytes += entry_bytes(e);
    s->total_bytes += entry_bytes(e);
    if (live(e))
        o->keys++;
    if (d->version > o->max_version)
        set_max(s, o, d->version);
    if (e->flags & KV_SHARED)
        shared_consider(s, e);
    if (s->watch) {
        kv_change c = {o, e, old_version};
        s->watch(s->watch_ud, &c);
    }
    return RUMOR_OK;
}

int kv_write(kv_store *s, kv_origin *o, const kv_delta *d, uint64_t now)
{
    int rc = check_delta(s, d);
    if (rc != RUMOR_OK)
        return rc;
    kv_delta w = *d;
    w.version = o->max_version + 1;
    return store(s, o, &w, now);
}

int kv_apply(kv_store *s, kv_origin *o, const kv_delta *d, uint64_t now)
{
    int rc = check_delta(s, d);
    if (rc != RUMOR_OK)
        return rc;
    if (d->version <= o->max_version)
        return 0;
    rc = store(s, o, d, now);
    return rc == RUMOR_OK ? 1 : rc;
}

void kv_advance(kv_store *s, kv_origin *o, uint64_t version)
{
    if (version > o->max_version)
        set_max(s, o, version);
}

void kv_learn_gc(kv_store *s, kv_origin *o, uint64_t gc_version)
{
    if (gc_version <= o->gc_version)
        return;
    set_gc(s, o, gc_version);
    for (kv_entry *e = o->head; e && e->version <= gc_version;) {
        kv_entry *next = e->next;
        if (!live(e))
            entry_remove(s, o, e);
        e = next;
    }
}

bool kv_needs_reset(const kv_origin *o, uint64_t their_max, uint64_t their_gc)
{
    return their_max < o->gc_version && their_gc < o->gc_version;
}

/* A shared tombstone hides every older value of its key; collecting it while such a value
 * survives anywhere would bring that value back. */
static bool hides_older_value(const kv_store *s, const kv_entry *t)
{
    for (size_t i = 0; i < s->norigins; i++) {
        kv_origin *o = s->origins[i];
        if (o == t->origin)
            continue;
        kv_entry **c = table_find(o->slots, o->nslots, kv_key(t), t->key_len, t->hash, KV_SHARED);
        if (c && *c && live(*c) && newer(t, *c))
            return true;
    }
    return false;
}

void kv_collect(kv_store *s, kv_origin *o, uint64_t now)
{
    /* In version order, stopping at the first tombstone that must stay: gc_version promises
     * that every tombstone at or below it is gone. */
    for (kv_entry *e = o->head; e;) {
        kv_entry *next = e->next;
        if (!live(e)) {
            if (now < e->dead_since + s->lim.tombstone_ttl_ms ||
                ((e->flags & KV_SHARED) && hides_older_value(s, e)))
                return;
            set_gc(s, o, e->version);
            entry_remove(s, o, e);
        }
        e = next;
    }
}

const kv_entry *kv_after(const kv_origin *o, uint64_t since)
{
    const kv_entry *e = o->tail;
    if (!e || e->version <= since)
        return NULL;
    while (e->prev && e->prev->version > since)
        e = e->prev;
    return e;
}
