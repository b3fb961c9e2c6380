/*
 * Replicated key-value state on the node: the write API, rumor-mongering of fresh writes, and
 * digest anti-entropy (scuttlebutt over datagrams).
 *
 * A round: every kv_sync_interval the node sends one random live member its store sum (an
 * O(1)-maintained sum over origins of their max_version). A peer in sync does nothing. One that
 * differs offers (origin, max_version, gc_version) for a rotating slice of its member table
 * (one datagram whatever N is; the whole table over successive rounds); with PUSH the asker
 * sends the KV_DELTAs the peer lacks, with PULL it lists where it lags itself and the peer
 * sends those. Deltas go oldest version first and
 * as many as fit one datagram, so an exchange cut short leaves no gap; the rest follows in
 * later rounds. A fresh write also travels at once as a RUMOR delta through the application
 * broadcast class, and every node that applies it passes it on.
 */
#include "core/node.h"

#include <string.h>

static wire_str origin_name(const kv_origin *o)
{
    return wire_str_of(o->name, o->name_len);
}

/* ---- events ---- */

static void on_change(void *ud, const kv_change *c)
{
    rumor_node *n = ud;
    ev_rec *e = node_event_slot(n);
    uint8_t *key = e ? ralloc(&n->alloc, c->entry->key_len) : NULL;
    if (!key)
        return;
    memcpy(key, kv_key(c->entry), c->entry->key_len);
    n->ev_len++;
    memset(e, 0, offsetof(ev_rec, name));
    e->type = RUMOR_EVENT_KV_CHANGE;
    e->at = n->now;
    e->since = n->now;
    e->key = key;
    e->key_len = c->entry->key_len;
    e->version = c->entry->version;
    e->old_version = c->old_version;
    e->deleted = (c->entry->flags & KV_TOMBSTONE) != 0;
    e->shared = (c->entry->flags & KV_SHARED) != 0;
    memcpy(e->name, c->origin->name, c->origin->name_len);
    e->name[c->origin->name_len] = '\0';
    e->accuser[0] = '\0';
    e->has_pk = false;
    const member *m = members_find(&n->mem, c->origin->name, c->origin->name_len);
    if (m) {
        e->addr = m->addr;
        e->inc = m->incarnation;
        e->state = m->state;
        e->is_self = m->is_self;
    }
}

int kvnode_init(rumor_node *n)
{
    kv_limits lim = {n->s.kv_value_bytes_max, n->s.kv_keys_max, n->s.kv_node_bytes_max,
                     n->s.kv_total_bytes_max, n->s.kv_tombstone_ttl_ms};
    kv_init(&n->kv, &n->alloc, &lim);
    n->kv.watch = on_change;
    n->kv.watch_ud = n;
    n->kv.sig_len = n->ident ? WIRE_SIG_BYTES : 0; /* entries keep their origin's signature */
    n->kv_self = kv_origin_get(&n->kv, n->name, n->name_len);
    if (!n->kv_self)
        return RUMOR_ERR_NOMEM;
    ident_kv_sign_head(n);
    n->next_kv_sync = n->s.kv_sync_interval_ms
                          ? n->now + 1 + rng_below(&n->rng, n->s.kv_sync_interval_ms)
                          : NODE_NEVER;
    n->next_kv_collect = n->next_kv_sync;
    return RUMOR_OK;
}

void kvnode_forget(rumor_node *n, const char *name, size_t len)
{
    kv_origin *o = kv_origin_find(&n->kv, name, len);
    if (o && o != n->kv_self)
        kv_origin_drop(&n->kv, o);
}

/* ---- deltas ---- */

static wire_kv_entry entry_rec(const kv_entry *e)
{
    wire_kv_entry w = {wire_str_of(kv_key(e), e->key_len), e->version, e->flags, e->stamp,
                       wire_str_of(kv_value(e), e->value_len)};
    return w;
}

/*
 * Appends a KV_DELTA of `o` for a replica that holds everything up to `since` (or must be reset
 * to the horizon first), with as many entries as fit `budget` bytes, oldest first. Returns false
 * when nothing (not even one entry) fits.
 *
 * With identities the delta carries the origin's signed head (its max version and horizon, which
 * may be ahead of what we hold) and each entry's signature (docs/protocol.md section 12).
 */
static bool put_delta(rumor_node *n, buf_writer *w, kv_origin *o, uint64_t since, uint64_t their_gc,
                      uint8_t flags, size_t budget)
{
    if (n->ident && o == n->kv_self)
        ident_kv_sign_head(n); /* our head always speaks for what we hold (a no-op mostly) */
    const ident_head *h = n->ident ? ident_kv_head(o) : NULL;
    if (n->ident && !h)
        return false; /* nothing we could prove */
    uint64_t max = h ? h->max : o->max_version, gc = h ? h->gc : o->gc_version;
    size_t per_sig = h ? WIRE_SIG_BYTES : 0, sigs = h ? wire_kv_sigs_size(0) : 0;
    bool reset = kv_needs_reset(o, since, their_gc);
    if (reset)
        since = 0;
    const kv_entry *first = kv_after(o, since), *e = first;
    uint32_t count = 0;
    size_t bytes = 0;
    for (; e; e = e->next) {
        wire_kv_entry we = entry_rec(e);
        size_t sz = wire_kv_entry_size(&we) + per_sig;
        size_t head = 3u + wire_kv_delta_head_size(origin_name(o), since, max, gc, count + 1);
        if (head + sigs + bytes + sz > budget)
            break;
        bytes += sz;
        count++;
    }
    /* Nothing fitted: still worth sending when it resets the replica or moves it past
     * versions that were collected tombstones (no entries, but a newer origin_max). */
    if (count == 0 && !(reset || (!first && o->max_version > since)))
        return false;
    if (!e && o->max_version == max)
        flags |= WIRE_KVX_COMPLETE; /* everything up to max_version is here */
    if (reset)
        flags |= WIRE_KVX_RESET;
    wire_put_kv_delta_begin(w, origin_name(o), flags, since, max, gc, count, bytes + sigs);
    e = first;
    for (uint32_t i = 0; i < count; i++, e = e->next) {
        wire_kv_entry we = entry_rec(e);
        wire_put_kv_entry(w, &we);
    }
    if (h) {
        buf_put_u8(w, WIRE_IDENT_V1);
        buf_put_bytes(w, h->sig, WIRE_SIG_BYTES);
        e = first;
        for (uint32_t i = 0; i < count; i++, e = e->next)
            buf_put_bytes(w, kv_sig(e), WIRE_SIG_BYTES);
    }
    return true;
}

/* Rumor-mongers what `o` holds after `since` through the application broadcast class. */
static void rumor_delta(rumor_node *n, kv_origin *o, uint64_t since)
{
    uint8_t tmp[RUMOR_PACKET_MAX];
    buf_writer w;
    size_t budget = n->pkt_max - n->pkt_head;
    buf_writer_init_fixed(&w, tmp, budget < sizeof(tmp) ? budget : sizeof(tmp));
    if (!put_delta(n, &w, o, since, o->gc_version, WIRE_KVX_RUMOR, w.cap) || w.failed)
        return;
    if (bcast_push(&n->bq, BCAST_CLASS_APP, w.p, w.len, NULL, false)) {
        n->st.broadcasts_queued++;
        gossip_eager(n, n->now);
    }
}

void kvnode_on_delta(rumor_node *n, const wire_msg *m, uint64_t now)
{
    wire_str on = m->u.kv_delta.origin;
    /* Only members' keyspaces are held: a reaped member's keys must not come back through a
     * peer that has not reaped it yet. */
    if (!members_find(&n->mem, (const char *)on.p, on.len)) {
        node_drop(n, RUMOR_DROP_STALE);
        return;
    }
    kv_origin *o = kv_origin_get(&n->kv, (const char *)on.p, on.len);
    if (!o)
        return;
    uint64_t gc = m->u.kv_delta.gc_version;
    /* Identities: the head (max version, horizon) and every entry must carry the origin's
     * signature; the head is checked before it can reset or advance anything. */
    const uint8_t *pk = NULL, *sigs = NULL;
    if (n->ident) {
        if (!(sigs = wire_kv_delta_sigs(m))) {
            ident_refuse(n, RUMOR_IDENT_UNSIGNED, on, wire_str_of(NULL, 0));
            return;
        }
        if (!(pk = ident_kv_origin_key(n, on)) ||
            !ident_kv_head_ok(n, o, pk, m->u.kv_delta.origin_max, gc, sigs))
            return;
    }
    if ((m->u.kv_delta.flags & WIRE_KVX_RESET) && o->max_version < gc && o->gc_version < gc)
        kv_origin_reset(&n->kv, o, gc);
    kv_learn_gc(&n->kv, o, gc);
    uint64_t before = o->max_version;
    if (m->u.kv_delta.since > before) {
        node_drop(n, RUMOR_DROP_STALE); /* a gap: anti-entropy will send from our version */
        return;
    }
    buf_reader r = m->u.kv_delta.entries;
    wire_kv_entry we;
    for (uint32_t i = 0; i < m->u.kv_delta.count && wire_kv_entry_next(&r, &we); i++) {
        kv_delta d = {we.key.p,   we.key.len, we.value.p, we.value.len,
                      we.version, we.stamp,   we.flags,   NULL};
        if (sigs) { /* verified once, when it is new to us; stored entries were checked */
            if (we.version <= o->max_version)
                continue;
            d.sig = sigs + WIRE_SIG_BYTES * (i + 1u);
            if (!ident_kv_entry_ok(n, pk, on, &we, d.sig))
                return; /* a forged entry: stop at the gap, anti-entropy resends the rest */
        }
        if (we.flags & KV_SHARED)
            hlc_observe(&n->clock, we.stamp); /* our next shared write must follow it */
        if (kv_apply(&n->kv, o, &d, now) < 0) {
            node_drop(n, RUMOR_DROP_OVERSIZE); /* over a local limit: stop at the gap */
            return;
        }
    }
    if (m->u.kv_delta.flags & WIRE_KVX_COMPLETE)
        kv_advance(&n->kv, o, m->u.kv_delta.origin_max);
    if (o == n->kv_self)
        ident_kv_sign_head(n); /* we adopted versions of our own from before a restart */
    if ((m->u.kv_delta.flags & WIRE_KVX_RUMOR) && o->max_version > before && o != n->kv_self)
        rumor_delta(n, o, before);
}

/* ---- anti-entropy ---- */

/* One datagram to `to` holding deltas for the (origin, their max, their gc) list in `r`. */
static void send_deltas(rumor_node *n, const rumor_addr *to, buf_reader r, uint32_t count)
{
    bool open = false;
    wire_str on;
    uint64_t their_max, their_gc;
    for (uint32_t i = 0; i < count && wire_kv_digest_next(&r, &on, &their_max, &their_gc); i++) {
        kv_origin *o = kv_origin_find(&n->kv, (const char *)on.p, on.len);
        if (!o || (o->max_version <= their_max && !kv_needs_reset(o, their_max, their_gc)))
            continue;
        if (!open && !(open = node_pkt_begin(n, to, n->from_id)))
            return;
        buf_writer *w = node_pkt(n);
        size_t used = w->len - n->cur_start;
        if (used >= n->pkt_max || !put_delta(n, w, o, their_max, their_gc, 0, n->pkt_max - used))
            break;
    }
    if (open) {
        if (node_pkt_empty(n)) {
            node_pkt_abort(n); /* nothing fitted */
            return;
        }
        node_pkt_end(n, false);
    }
}

/* The KV_DIGEST reply: where we lag behind the asker, for it to send. */
static void send_lags(rumor_node *n, const rumor_addr *to, buf_reader r, uint32_t count)
{
    uint32_t nlag = 0;
    size_t bytes = 0, budget = n->pkt_max - n->pkt_head - 16u;
    wire_str on;
    uint64_t their_max, gc;
    buf_reader scan = r;
    for (uint32_t i = 0; i < count && wire_kv_digest_next(&scan, &on, &their_max, &gc); i++) {
        kv_origin *o = kv_origin_find(&n->kv, (const char *)on.p, on.len);
        uint64_t mine = o ? o->max_version : 0, my_gc = o ? o->gc_version : 0;
        if (their_max <= mine || !members_find(&n->mem, (const char *)on.p, on.len))
            continue;
        size_t sz = wire_kv_digest_entry_size(on, mine, my_gc);
        if (bytes + sz > budget)
            break;
        bytes += sz;
        nlag++;
    }
    if (nlag == 0 || !node_pkt_begin(n, to, n->from_id))
        return;
    buf_writer *w = node_pkt(n);
    wire_put_kv_digest_begin(w, WIRE_KVD_REPLY, nlag, bytes);
    for (uint32_t i = 0, put = 0; put < nlag && wire_kv_digest_next(&r, &on, &their_max, &gc);
         i++) {
        kv_origin *o = kv_origin_find(&n->kv, (const char *)on.p, on.len);
        uint64_t mine = o ? o->max_version : 0, my_gc = o ? o->gc_version : 0;
        if (their_max <= mine || !members_find(&n->mem, (const char *)on.p, on.len))
            continue;
        wire_put_kv_digest_entry(w, on, mine, my_gc);
        put++;
    }
    wire_put_kv_digest_end(w, n->kv.sum);
    node_pkt_end(n, false);
}

/*
 * Our slice of the member table with what we hold of each (origin, max_version, gc_version),
 * in one datagram: a rotating window, so successive offers cover the whole table whatever N is.
 * Members holding nothing are listed too (max 0): that is how a peer learns we lack them.
 */
static void send_offer(rumor_node *n, const rumor_addr *to, uint8_t mode)
{
    if (!node_pkt_begin(n, to, n->from_id))
        return;
    members *t = &n->mem;
    size_t budget = n->pkt_max - n->pkt_head - 24u, bytes = 0;
    uint32_t count = 0;
    size_t start = n->kv_digest_pos % t->count;
    for (size_t k = 0; k < t->count; k++) {
        const member *m = t->order[(start + k) % t->count];
        kv_origin *o = kv_origin_find(&n->kv, member_name(m), m->name_len);
        size_t sz = wire_kv_digest_entry_size(wire_str_of(member_name(m), m->name_len),
                                              o ? o->max_version : 0, o ? o->gc_version : 0);
        if (bytes + sz > budget)
            break;
        bytes += sz;
        count++;
    }
    buf_writer *w = node_pkt(n);
    wire_put_kv_digest_begin(w, (uint8_t)(WIRE_KVD_OFFER | mode), count, bytes);
    for (uint32_t k = 0; k < count; k++) {
        const member *m = t->order[(start + k) % t->count];
        kv_origin *o = kv_origin_find(&n->kv, member_name(m), m->name_len);
        wire_put_kv_digest_entry(w, wire_str_of(member_name(m), m->name_len),
                                 o ? o->max_version : 0, o ? o->gc_version : 0);
    }
    wire_put_kv_digest_end(w, n->kv.sum);
    n->kv_digest_pos = start + count;
    node_pkt_end(n, false);
}

/*
 * A round has up to three steps. The asker sends its store sum with its mode (SUM); a peer
 * whose sum differs answers with its slice (OFFER); the asker then pushes what the peer lags
 * on (PUSH) and/or lists where it lags itself (REPLY) for the peer to send (PULL). Nodes in
 * sync exchange one small message per round.
 */
void kvnode_on_digest(rumor_node *n, const wire_msg *m, uint64_t now)
{
    (void)now;
    if (!n->from)
        return; /* digests are answered by datagram only */
    uint8_t f = m->u.kv_digest.flags;
    uint8_t mode = f & (WIRE_KVD_PULL | WIRE_KVD_PUSH);
    if (f & WIRE_KVD_SUM) {
        if (m->u.kv_digest.sum != n->kv.sum && members_live(&n->mem) > 1)
            send_offer(n, n->from, mode);
        return;
    }
    if (f & WIRE_KVD_REPLY) {
        send_deltas(n, n->from, m->u.kv_digest.entries, m->u.kv_digest.count);
        return;
    }
    if (!(f & WIRE_KVD_OFFER))
        return;
    if (f & WIRE_KVD_PUSH)
        send_deltas(n, n->from, m->u.kv_digest.entries, m->u.kv_digest.count);
    if (f & WIRE_KVD_PULL)
        send_lags(n, n->from, m->u.kv_digest.entries, m->u.kv_digest.count);
}

static uint8_t round_mode(const rumor_node *n)
{
    return n->s.kv_sync_mode == RUMOR_SYNC_PUSH   ? WIRE_KVD_PUSH
           : n->s.kv_sync_mode == RUMOR_SYNC_PULL ? WIRE_KVD_PULL
                                                  : WIRE_KVD_PUSH | WIRE_KVD_PULL;
}

static void put_sum(rumor_node *n, buf_writer *w)
{
    wire_put_kv_digest_begin(w, (uint8_t)(WIRE_KVD_SUM | round_mode(n)), 0, 0);
    wire_put_kv_digest_end(w, n->kv.sum);
}

bool kvnode_piggyback(rumor_node *n, buf_writer *w, uint64_t now)
{
    if (n->leaving || !n->s.kv_sync_interval_ms || now < n->next_kv_sync)
        return false;
    put_sum(n, w);
    n->next_kv_sync = now + n->s.kv_sync_interval_ms;
    return true;
}

/*
 * The round's first step normally rides on a probe ping (kvnode_piggyback): the ping goes to a
 * random member each interval anyway, so anti-entropy between nodes in sync costs a few bytes
 * and no packet. Only when no ping carried it for a whole probe interval past due (a lone node,
 * a leave, a longer probe interval) does a round go out on its own.
 */
static uint64_t standalone_at(const rumor_node *n)
{
    return n->next_kv_sync + n->s.probe_interval_ms;
}

/* Our own tombstones wait for collection (entries that are not live keys). */
static bool has_tombstones(const rumor_node *n)
{
    return n->kv_self->count > n->kv_self->keys;
}

void kvnode_tick(rumor_node *n, uint64_t now)
{
    if (n->leaving || !n->s.kv_sync_interval_ms)
        return;
    if (has_tombstones(n) && now >= n->next_kv_collect) {
        kv_collect(&n->kv, n->kv_self, now);
        ident_kv_sign_head(n);
        n->next_kv_collect = now + n->s.kv_sync_interval_ms;
    }
    if (now < standalone_at(n))
        return;
    member *peer;
    if (members_live(&n->mem) > 1 && gossip_pick(n, &peer, 1, NULL, false, now) == 1 &&
        node_pkt_begin(n, &peer->addr, node_dest(n, peer))) {
        put_sum(n, node_pkt(n));
        node_pkt_end(n, true);
    }
    n->next_kv_sync = now + n->s.kv_sync_interval_ms;
}

uint64_t kvnode_deadline(const rumor_node *n)
{
    if (n->leaving || !n->s.kv_sync_interval_ms)
        return NODE_NEVER;
    uint64_t a = standalone_at(n);
    return has_tombstones(n) && n->next_kv_collect < a ? n->next_kv_collect : a;
}

/* ---- public API ---- */

static int write_own(rumor_node *n, const void *key, size_t key_len, const void *value,
                     size_t value_len, uint8_t flags, uint64_t now)
{
    uint64_t stamp = 0;
    if (n->leaving)
        return RUMOR_ERR_STATE;
    if (!key || key_len == 0 || key_len > RUMOR_KEY_MAX || (value_len && !value))
        return RUMOR_ERR_INVALID;
    n->now = now;
    if (flags & KV_SHARED) {
        int64_t wall = (int64_t)now + n->s.wallclock_offset_ms;
        stamp = hlc_now(&n->clock, wall > 0 ? (uint64_t)wall : 0);
    }
    kv_delta d = {key, key_len, value, value_len, 0, stamp, flags, NULL};
    uint64_t before = n->kv_self->max_version;
    uint8_t sig[WIRE_SIG_BYTES];
    if (n->ident) { /* the entry is signed for the version kv_write will give it */
        wire_kv_entry we = {wire_str_of(key, key_len), before + 1, flags, stamp,
                            wire_str_of(value, value_len)};
        ident_kv_sign_entry(n, &we, sig);
        d.sig = sig;
    }
    int rc = kv_write(&n->kv, n->kv_self, &d, now);
    if (rc == RUMOR_OK) {
        ident_kv_sign_head(n);
        rumor_delta(n, n->kv_self, before);
    }
    return rc;
}

int rumor_node_kv_put(rumor_node *n, const void *key, size_t key_len, const void *value,
                      size_t value_len, uint64_t now)
{
    return write_own(n, key, key_len, value, value_len, 0, now);
}

int rumor_node_kv_delete(rumor_node *n, const void *key, size_t key_len, uint64_t now)
{
    if (!key || key_len == 0 || key_len > RUMOR_KEY_MAX)
        return RUMOR_ERR_INVALID;
    const kv_entry *e = kv_get(n->kv_self, key, key_len);
    if (!e || (e->flags & KV_TOMBSTONE))
        return RUMOR_ERR_NOT_FOUND;
    return write_own(n, key, key_len, NULL, 0, KV_TOMBSTONE, now);
}

int rumor_node_kv_get(const rumor_node *n, const char *origin, const void *key, size_t key_len,
                      rumor_kv_value *out)
{
    if (!key || key_len == 0 || key_len > RUMOR_KEY_MAX)
        return RUMOR_ERR_INVALID;
    const kv_origin *o =
        origin ? kv_origin_find(&n->kv, origin, strlen(origin)) : (const kv_origin *)n->kv_self;
    const kv_entry *e = o ? kv_get(o, key, key_len) : NULL;
    if (!e || (e->flags & KV_TOMBSTONE))
        return RUMOR_ERR_NOT_FOUND;
    if (out) {
        out->value = kv_value(e);
        out->len = e->value_len;
        out->version = e->version;
        out->writer = NULL;
        out->stamp = 0;
    }
    return RUMOR_OK;
}

int rumor_node_shared_put(rumor_node *n, const void *key, size_t key_len, const void *value,
                          size_t value_len, uint64_t now)
{
    return write_own(n, key, key_len, value, value_len, KV_SHARED, now);
}

int rumor_node_shared_delete(rumor_node *n, const void *key, size_t key_len, uint64_t now)
{
    if (!key || key_len == 0 || key_len > RUMOR_KEY_MAX)
        return RUMOR_ERR_INVALID;
    const kv_entry *e = kv_shared_get(&n->kv, key, key_len);
    if (!e || (e->flags & KV_TOMBSTONE))
        return RUMOR_ERR_NOT_FOUND;
    return write_own(n, key, key_len, NULL, 0, KV_SHARED | KV_TOMBSTONE, now);
}

int rumor_node_shared_get(const rumor_node *n, const void *key, size_t key_len, rumor_kv_value *out)
{
    if (!key || key_len == 0 || key_len > RUMOR_KEY_MAX)
        return RUMOR_ERR_INVALID;
    const kv_entry *e = kv_shared_get(&n->kv, key, key_len);
    if (!e || (e->flags & KV_TOMBSTONE))
        return RUMOR_ERR_NOT_FOUND;
    if (out) {
        out->value = kv_value(e);
        out->len = e->value_len;
        out->version = e->version;
        out->writer = e->origin->name;
        out->stamp = e->stamp;
    }
    return RUMOR_OK;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t bytes_hash(const void *p, size_t len, uint64_t h)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

uint64_t rumor_node_kv_digest(const rumor_node *n)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n->kv.norigins; i++) {
        const kv_origin *o = n->kv.origins[i];
        uint64_t oh = bytes_hash(o->name, o->name_len, 0xcbf29ce484222325ull);
        for (const kv_entry *e = o->head; e; e = e->next) {
            if (e->flags & KV_TOMBSTONE)
                continue;
            uint64_t h = bytes_hash(kv_key(e), e->key_len, oh);
            h = bytes_hash(kv_value(e), e->value_len, h ^ e->version);
            sum += mix(h);
        }
    }
    return sum;
}

size_t rumor_node_kv_count(const rumor_node *n)
{
    size_t c = 0;
    for (size_t i = 0; i < n->kv.norigins; i++)
        c += n->kv.origins[i]->keys;
    return c;
}

/* ---- walks, lookups and restore (hosts that persist or list the state) ---- */

static const kv_origin *origin_of(const rumor_node *n, const char *origin)
{
    return origin ? kv_origin_find(&n->kv, origin, strlen(origin)) : n->kv_self;
}

static rumor_kv_entry entry_view(const kv_entry *e)
{
    rumor_kv_entry v = {e->origin->name,
                        kv_key(e),
                        e->key_len,
                        e->value_len ? kv_value(e) : NULL,
                        e->value_len,
                        e->version,
                        e->stamp,
                        (e->flags & KV_TOMBSTONE) ? e->dead_since : 0,
                        (e->flags & KV_SHARED) != 0,
                        (e->flags & KV_TOMBSTONE) != 0,
                        e->flags};
    return v;
}

/* Whether `f` admits `e`; a NULL filter admits live own keys. */
static bool filter_admits(const rumor_kv_filter *f, const kv_entry *e)
{
    unsigned flags = f && f->flags ? f->flags : RUMOR_KV_OWN;
    if ((e->flags & KV_SHARED) ? !(flags & RUMOR_KV_SHARED) : !(flags & RUMOR_KV_OWN))
        return false;
    if ((e->flags & KV_TOMBSTONE) && !(flags & RUMOR_KV_DELETED))
        return false;
    return !f || f->prefix_len == 0 ||
           (e->key_len >= f->prefix_len && memcmp(kv_key(e), f->prefix, f->prefix_len) == 0);
}

static bool filter_valid(const rumor_kv_filter *f)
{
    return !f || (f->prefix_len <= RUMOR_KEY_MAX && (f->prefix || f->prefix_len == 0));
}

int rumor_node_kv_foreach(const rumor_node *n, const char *origin, const rumor_kv_filter *f,
                          rumor_kv_visit_fn fn, void *ud)
{
    if (!filter_valid(f) || !fn)
        return RUMOR_ERR_INVALID;
    const kv_origin *o = origin_of(n, origin);
    if (!o)
        return RUMOR_ERR_NOT_FOUND;
    /* Entries are kept in ascending version, so `since` starts part-way through the list. */
    for (const kv_entry *e = kv_after(o, f ? f->since_version : 0); e; e = e->next) {
        if (!filter_admits(f, e))
            continue;
        rumor_kv_entry v = entry_view(e);
        int rc = fn(&v, ud);
        if (rc != 0)
            return rc;
    }
    return RUMOR_OK;
}

int rumor_node_shared_foreach(const rumor_node *n, const rumor_kv_filter *f, rumor_kv_visit_fn fn,
                              void *ud)
{
    if (!filter_valid(f) || !fn)
        return RUMOR_ERR_INVALID;
    rumor_kv_filter g = {f ? f->prefix : NULL, f ? f->prefix_len : 0, 0,
                         RUMOR_KV_SHARED | (f ? (f->flags & RUMOR_KV_DELETED) : 0)};
    for (size_t i = 0; i < n->kv.shared_slots; i++) {
        const kv_entry *e = n->kv.shared[i];
        if (!e || !filter_admits(&g, e))
            continue;
        rumor_kv_entry v = entry_view(e);
        int rc = fn(&v, ud);
        if (rc != 0)
            return rc;
    }
    return RUMOR_OK;
}

int rumor_node_kv_lookup(const rumor_node *n, const char *origin, const void *key, size_t key_len,
                         bool shared, rumor_kv_entry *out)
{
    if (!key || key_len == 0 || key_len > RUMOR_KEY_MAX)
        return RUMOR_ERR_INVALID;
    const kv_origin *o = origin_of(n, origin);
    if (!o)
        return RUMOR_ERR_NOT_FOUND;
    const kv_entry *e = NULL;
    if (shared) {
        /* The per-origin table is private to kv.c: scan from the newest write, where a host
         * looking up a fresh change finds it at once. */
        for (const kv_entry *c = o->tail; c && !e; c = c->prev)
            if ((c->flags & KV_SHARED) && c->key_len == key_len &&
                memcmp(kv_key(c), key, key_len) == 0)
                e = c;
    } else {
        e = kv_get(o, key, key_len);
    }
    if (!e)
        return RUMOR_ERR_NOT_FOUND;
    if (out)
        *out = entry_view(e);
    return RUMOR_OK;
}

int rumor_node_kv_origin_info(const rumor_node *n, const char *origin, rumor_kv_origin_info *out)
{
    const kv_origin *o = origin_of(n, origin);
    if (!o)
        return RUMOR_ERR_NOT_FOUND;
    out->max_version = o->max_version;
    out->gc_version = o->gc_version;
    out->keys = o->keys;
    out->entries = (uint32_t)o->count;
    out->bytes = o->bytes;
    return RUMOR_OK;
}

void rumor_node_kv_stats(const rumor_node *n, rumor_kv_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->origins = (uint32_t)n->kv.norigins;
    for (size_t i = 0; i < n->kv.norigins; i++) {
        out->keys += n->kv.origins[i]->keys;
        out->entries += n->kv.origins[i]->count;
    }
    out->bytes = n->kv.total_bytes;
    for (size_t i = 0; i < n->kv.shared_slots; i++) {
        const kv_entry *e = n->kv.shared[i];
        if (e && !(e->flags & KV_TOMBSTONE))
            out->shared_keys++;
    }
    out->clock = n->clock.last;
}

int rumor_node_kv_restore(rumor_node *n, const rumor_kv_entry *e, uint64_t now)
{
    uint8_t flags = (uint8_t)((e && e->flags) ? e->flags
                              : e ? (e->shared ? KV_SHARED : 0) | (e->deleted ? KV_TOMBSTONE : 0)
                                  : 0);
    /* The flags must agree with the booleans; anything else about them (and the value of a
     * delete) is judged by the store's own check, as for a delta from the wire. */
    if (!e || !e->key || e->key_len == 0 || e->key_len > RUMOR_KEY_MAX || e->flags > 0xff ||
        (e->value_len && !e->value) || e->version == 0 ||
        (e->origin && strcmp(e->origin, n->name) != 0) || ((flags & KV_SHARED) != 0) != e->shared ||
        ((flags & KV_TOMBSTONE) != 0) != e->deleted)
        return RUMOR_ERR_INVALID;
    if (n->leaving || e->version <= n->kv_self->max_version)
        return RUMOR_ERR_STATE;
    kv_delta d = {e->key, e->key_len, e->value, e->value_len, e->version, e->stamp, flags, NULL};
    uint8_t sig[WIRE_SIG_BYTES];
    if (n->ident) { /* our own entry: signed again (Ed25519 is deterministic: the same bytes) */
        wire_kv_entry we = {wire_str_of(e->key, e->key_len), e->version, flags, e->stamp,
                            wire_str_of(e->value, e->value_len)};
        ident_kv_sign_entry(n, &we, sig);
        d.sig = sig;
    }
    n->now = now;
    /* A restore is not news: no change event, and nothing is rumor-mongered (peers that lack
     * these versions get them from anti-entropy, the others hold them already). */
    kv_watch_fn watch = n->kv.watch;
    n->kv.watch = NULL;
    int rc = kv_apply(&n->kv, n->kv_self, &d, now);
    n->kv.watch = watch;
    if (rc < 0)
        return rc;
    /* Applied above every version held, so the entry is the newest: the list's tail. The
     * tombstone ages from when the delete was made, not from the restart. */
    if (e->deleted && n->kv_self->tail && n->kv_self->tail->version == e->version)
        n->kv_self->tail->dead_since = e->deleted_at < now ? e->deleted_at : now;
    if (e->shared)
        hlc_observe(&n->clock, e->stamp);
    ident_kv_sign_head(n);
    return RUMOR_OK;
}

int rumor_node_kv_restore_version(rumor_node *n, uint64_t max_version, uint64_t gc_version,
                                  uint64_t clock, uint64_t now)
{
    if (gc_version > max_version)
        return RUMOR_ERR_INVALID;
    if (n->leaving)
        return RUMOR_ERR_STATE;
    n->now = now;
    kv_advance(&n->kv, n->kv_self, max_version);
    kv_learn_gc(&n->kv, n->kv_self, gc_version);
    hlc_observe(&n->clock, clock);
    ident_kv_sign_head(n);
    return RUMOR_OK;
}
