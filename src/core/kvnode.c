/*
 * Replicated key-value state on the node: the write API, rumor-mongering of fresh writes, and
 * digest anti-entropy (scuttlebutt over datagrams).
 *
 * A round: every kv_sync_interval the node sends one random live member its store sum (an
 * O(1)-maintained sum over origins of their max_version), and in push modes the origins that
 * changed here most recently ("hot": what is spreading right now). A peer in sync does nothing.
 * One that differs offers (origin, max_version, gc_version) in one datagram: first for the
 * asker's hot origins, then its own hot ones, then a rotating slice of its member table (the
 * whole table over successive rounds, whatever N is). With PUSH the asker sends the KV_DELTAs
 * the peer lacks, with PULL it lists where it lags itself and the peer sends those. Because
 * both sides lead with what is spreading, every exchange between a node that has a fresh write
 * and one that lacks it moves the write, as in the push / pull / push-pull models of Demers et
 * al. and Karp et al., at any N. Deltas go oldest version first and as many as fit one
 * datagram, so an exchange cut short leaves no gap; the rest follows in later rounds. An entry
 * too big for any datagram goes over a stream instead (sync.c, KV push). A fresh write also
 * travels at once as a RUMOR delta through the application broadcast class, and every node
 * that applies it passes it on kv_rumor_transmits times.
 */
#include "core/hash.h"
#include "core/node.h"

#include <string.h>

static wire_str origin_name(const kv_origin *o)
{
    return wire_str_of(o->name, o->name_len);
}

/* ---- events ---- */

/* Own shared entries are retired this long after another origin's newer write superseded them
 * (kv.h): long enough for news of that origin to have reached every member. */
static uint64_t retire_delay(const rumor_node *n)
{
    return 4ull * n->s.kv_sync_interval_ms;
}

/* A shared entry of another origin was stored: when it beats our own live entry for the key,
 * a retirement pass is due. */
static void note_superseded(rumor_node *n, const kv_change *c)
{
    const kv_entry *e = c->entry;
    if (!(e->flags & KV_SHARED) || c->origin == n->kv_self || !n->kv_self)
        return;
    const kv_entry *mine = kv_get_shared(n->kv_self, kv_key(e), e->key_len);
    if (!mine || (mine->flags & KV_TOMBSTONE) ||
        kv_shared_get(&n->kv, kv_key(e), e->key_len) == mine)
        return;
    uint64_t at = n->now + retire_delay(n);
    if (at < n->kv_retire_at)
        n->kv_retire_at = at;
}

static void on_change(void *ud, const kv_change *c)
{
    rumor_node *n = ud;
    note_superseded(n, c);
    /* A retirement changes no value anyone reads (the winner is newer): no event. */
    if (c->entry->flags & KV_RETIRED)
        return;
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
    n->next_kv_sum = n->ident ? n->next_kv_sync : NODE_NEVER;
    n->kv_retire_at = NODE_NEVER;
    buf_writer_init(&n->kv_scratch, &n->alloc, RUMOR_PACKET_MAX);
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
 * Identities: the signed head we hold for `o` may be ahead of the entries we hold (a head is
 * stored once verified, also with a delta we could not apply). Deltas always carry that head, and
 * a replica refuses deltas while it is below their horizon (a gap the origin's collection left).
 * So we serve `o` only once we hold it past the signed horizon; then our own horizon is the
 * signed one (it is learned here if no delta brought it yet: the head was verified).
 */
static bool head_usable(rumor_node *n, kv_origin *o, const ident_head *h)
{
    if (o->max_version < h->gc)
        return false;
    if (o->gc_version < h->gc)
        kv_learn_gc(&n->kv, o, h->gc);
    return true;
}

/* Identities: a replica at (their_max, their_gc) holds `o` past the horizon of our signed head
 * but has not learned that horizon. Digests are not signed, so it learns a horizon only from a
 * signed head: a delta brings it even when there are no entries to send. */
static bool head_news(const rumor_node *n, const kv_origin *o, uint64_t their_max,
                      uint64_t their_gc)
{
    const ident_head *h = n->ident ? ident_kv_head(o) : NULL;
    return h && their_gc < h->gc && their_max >= h->gc && o->max_version >= h->gc;
}

bool kvnode_lacks(const rumor_node *n, const kv_origin *o, uint64_t their_max, uint64_t their_gc)
{
    return o->max_version > their_max || kv_needs_reset(o, their_max, their_gc) ||
           head_news(n, o, their_max, their_gc);
}

/*
 * With identities the delta carries the origin's signed head (its max version and horizon, which
 * may be ahead of what we hold) and each entry's signature (docs/protocol.md section 12), on
 * datagrams and streams alike: whoever relays the entries cannot alter them.
 */
bool kvnode_put_delta(rumor_node *n, buf_writer *w, kv_origin *o, uint64_t since, uint64_t their_gc,
                      uint8_t flags, size_t budget, size_t big_over, int *cut)
{
    if (n->ident && o == n->kv_self)
        ident_kv_sign_head(n); /* our head always speaks for what we hold (a no-op mostly) */
    const ident_head *h = n->ident ? ident_kv_head(o) : NULL;
    if (h && !head_usable(n, o, h))
        return false;
    if (n->ident && o->gc_version > (h ? h->gc : 0))
        return false; /* a horizon we could not prove (none is learned without its head) */
    /* With identities the head is the signed one, which may be behind the entries (they prove
     * their own versions) or ahead of them; without a signed head it is (0, 0), which claims
     * nothing and needs no signature (its slot is zeros): no horizon was ever verified here. */
    uint64_t max = o->max_version, gc = o->gc_version;
    if (n->ident)
        max = h ? h->max : 0, gc = h ? h->gc : 0;
    size_t per_sig = n->ident ? WIRE_SIG_BYTES : 0, sigs = n->ident ? wire_kv_sigs_size(0) : 0;
    /* The origin's signed keyspace sum rides on an anti-entropy delta that brings the
     * replica to it: every entry we hold after `since`, and we hold the origin at the sum's
     * (max, gc). A replica then learns at once whether it holds what the origin held (section
     * 12.8). A write's rumor stays small: the sum follows in its own rumor. */
    bool with_sum = !(flags & WIRE_KVX_RUMOR) && ident_kv_at_sum(o);
    if (with_sum)
        sigs += WIRE_KV_SUM_BYTES;
    /* The max field is sized for the largest it can be: entries past the head, or the head. */
    uint64_t size_max = max > o->max_version ? max : o->max_version;
    bool news = head_news(n, o, since, their_gc);
    bool reset = kv_needs_reset(o, since, their_gc);
    if (reset)
        since = 0;
    const kv_entry *first = kv_after(o, since), *e = first;
    uint32_t count = 0;
    size_t bytes = 0;
    /* Type byte and the payload length's varint, sized for the largest payload that fits. */
    size_t msg_head = 1u + buf_varint_size(budget);
    for (; e; e = e->next) {
        wire_kv_entry we = entry_rec(e);
        size_t sz = wire_kv_entry_size(&we) + per_sig;
        size_t head = msg_head + sigs +
                      wire_kv_delta_head_size(origin_name(o), since, size_max, gc, count + 1);
        if (head + bytes + sz > budget) {
            if (cut && *cut < KV_CUT_BIG)
                *cut =
                    head + sz - (with_sum ? WIRE_KV_SUM_BYTES : 0) > big_over ? KV_CUT_BIG : KV_CUT;
            break;
        }
        bytes += sz;
        count++;
    }
    /* Nothing fitted: still worth sending when it resets the replica, moves it past versions
     * that were collected tombstones (no entries, but a newer origin_max) or brings it a signed
     * horizon it lacks. */
    if (count == 0 && !(reset || news || (!first && o->max_version > since)))
        return false;
    if (with_sum && e) { /* cut short: the replica will not reach the sum with this delta */
        with_sum = false;
        sigs -= WIRE_KV_SUM_BYTES;
    }
    if (!e && o->max_version >= max)
        flags |= WIRE_KVX_COMPLETE; /* everything up to origin_max is here */
    if (reset)
        flags |= WIRE_KVX_RESET;
    wire_put_kv_delta_begin(w, origin_name(o), flags, since, max, gc, count, bytes + sigs);
    e = first;
    for (uint32_t i = 0; i < count; i++, e = e->next) {
        wire_kv_entry we = entry_rec(e);
        wire_put_kv_entry(w, &we);
    }
    if (n->ident) {
        static const uint8_t none[WIRE_SIG_BYTES];
        buf_put_u8(w, WIRE_IDENT_V1);
        buf_put_bytes(w, h ? h->sig : none, WIRE_SIG_BYTES);
        e = first;
        for (uint32_t i = 0; i < count; i++, e = e->next)
            buf_put_bytes(w, kv_sig(e), WIRE_SIG_BYTES);
        if (with_sum)
            wire_put_kv_sum(w, h->smax, h->sgc, h->sum, h->ssig);
    }
    return true;
}

/* Bytes of the KV_DELTA that put_sum_news writes for `o`, message head included. */
static size_t sum_news_size(const kv_origin *o, const ident_head *h)
{
    size_t payload = wire_kv_delta_head_size(origin_name(o), o->max_version, h->max, h->gc, 0) +
                     wire_kv_sigs_size(0) + WIRE_KV_SUM_BYTES;
    return 1u + buf_varint_size(payload) + payload;
}

/*
 * A KV_DELTA of `o` without entries that carries our newest signed keyspace sum of it (and the
 * signed head we hold, as every delta does): what tells a replica at the sum's (max, gc)
 * whether it holds what the origin held (section 12.8). Only when we hold `o` exactly so.
 */
static bool put_sum_news(rumor_node *n, buf_writer *w, kv_origin *o, uint8_t flags)
{
    const ident_head *h = ident_kv_head(o);
    if (!ident_kv_sum_holds(o) || !head_usable(n, o, h) || o->gc_version > h->gc)
        return false;
    wire_put_kv_delta_begin(w, origin_name(o), flags, o->max_version, h->max, h->gc, 0,
                            wire_kv_sigs_size(0) + WIRE_KV_SUM_BYTES);
    buf_put_u8(w, WIRE_IDENT_V1);
    buf_put_bytes(w, h->sig, WIRE_SIG_BYTES);
    wire_put_kv_sum(w, h->smax, h->sgc, h->sum, h->ssig);
    return true;
}

bool kvnode_put_sum_news(rumor_node *n, buf_writer *w, size_t room)
{
    /* One origin per call, in turn over those whose sum we hold ourselves: a replica that
     * differs from everyone keeps meeting peers whose rounds differ (the keyspace sum is part
     * of the store sum), and each such round brings it another origin's sum. */
    size_t count = n->kv.norigins;
    for (size_t k = 0; n->ident && k < count; k++) {
        kv_origin *o = n->kv.origins[(n->kv_sum_pos + k) % count];
        const ident_head *h = ident_kv_head(o);
        if (!ident_kv_sum_holds(o) || sum_news_size(o, h) > room)
            continue;
        n->kv_sum_pos = (uint32_t)((n->kv_sum_pos + k + 1) % count);
        return put_sum_news(n, w, o, 0);
    }
    return false;
}

/* Rumor-mongers our own new keyspace sum: the replicas that took our writes from rumors hold
 * them at that sum's version, and anti-entropy would send them nothing (section 12.8). */
static void rumor_sum(rumor_node *n, kv_origin *o)
{
    if (n->s.kv_rumor_transmits == 0)
        return;
    buf_writer *w = &n->kv_scratch;
    buf_writer_reset(w);
    if (!put_sum_news(n, w, o, WIRE_KVX_RUMOR) || w->failed)
        return;
    if (bcast_push_n(&n->bq, BCAST_CLASS_APP, w->p, w->len, (uint8_t)n->s.kv_rumor_transmits)) {
        n->st.broadcasts_queued++;
        gossip_eager(n, n->now);
    }
}

void kvnode_sign_sum(rumor_node *n)
{
    /* Only a keyspace that stood still for a round is signed: during a burst of writes no
     * replica stays at one version long enough to be checked, and a sum per round would cost
     * a signature and a rumor each. Once the burst is over, one sum speaks for all of it. */
    const kv_origin *o = n->kv_self;
    bool settled = n->kv_sum_seen[0] == o->max_version && n->kv_sum_seen[1] == o->gc_version;
    n->kv_sum_seen[0] = o->max_version;
    n->kv_sum_seen[1] = o->gc_version;
    if (settled && ident_kv_sign_sum(n))
        rumor_sum(n, n->kv_self);
}

/* How long a replica may sit at its origin's signed (max, gc) with another keyspace sum before
 * it is taken again. An honest replica can be there for a moment: a delta cut short by the
 * datagram budget skips versions whose keys were written again past the cut, and the rest
 * follows within a few rounds. One that stays was kept from entries by a relay. */
static uint64_t withheld_after(const rumor_node *n)
{
    return 8ull * n->s.kv_sync_interval_ms;
}

void kvnode_check_sums(rumor_node *n, uint64_t now)
{
    for (size_t i = 0; i < n->kv.norigins; i++) {
        kv_origin *o = n->kv.origins[i];
        ident_head *h = o->ident;
        if (o == n->kv_self || !h)
            continue;
        if (!ident_kv_at_sum(o) || ident_kv_sum_holds(o)) {
            h->differs_since = 0;
            continue;
        }
        if (h->differs_since == 0) {
            h->differs_since = now + 1; /* + 1: 0 means "not seen" */
            continue;
        }
        if (now + 1 < h->differs_since + withheld_after(n))
            continue;
        /* Never the last copies: with its origin down nobody can resend what it held (every
         * replica may differ alike), so the copy is kept, incomplete as it may be, and taken
         * again once the origin is alive. */
        const member *m = members_find(&n->mem, o->name, o->name_len);
        if (!m || m->state != RUMOR_MEMBER_ALIVE)
            continue;
        /* Entries the origin held at this version are missing here (a hostile relay removed
         * them from a delta: entries are signed one by one, not as a set). Take the keyspace
         * again from version 0, keeping the horizon: peers see us behind and resend it all. */
        ident_refuse(n, RUMOR_IDENT_KV_WITHHELD, origin_name(o), wire_str_of(NULL, 0));
        kv_origin_reset(&n->kv, o, o->gc_version);
        h->differs_since = 0;
    }
}

/* The datagram budget for key-value messages: the packet less its header (and, sealed, less
 * the envelope and the tag). */
static size_t dgram_budget(const rumor_node *n)
{
    return n->pkt_max - n->pkt_head;
}

/*
 * Rumor-mongering is the fast path for writes that are rare next to what gossip can carry.
 * When writes arrive faster (a burst from many nodes), the application broadcast queue backs
 * up and most rumors run into gaps at their receivers; anti-entropy, which moves many entries
 * per message and over streams when far behind, is then both faster and cheaper. So a node
 * passes rumors on only while its queue holds less than about two gossip rounds' worth.
 */
static bool rumor_congested(const rumor_node *n)
{
    uint32_t per_packet = n->s.packet_bytes_max / 40u; /* a small KV_DELTA is ~40 bytes */
    return n->bq.cls[BCAST_CLASS_APP].count > 2u * n->s.gossip_nodes * per_packet;
}

#define RUMOR_LOOKBACK 2

/* Rumor-mongers what `o` holds after `since` through the application broadcast class, when it
 * fits a datagram (a larger entry is left to anti-entropy, which moves it over a stream). */
static void rumor_delta(rumor_node *n, kv_origin *o, uint64_t since)
{
    if (n->s.kv_rumor_transmits == 0)
        return;
    /* A receiver that missed one of the origin's previous rumors could apply none of the later
     * ones (it would have a gap). In a burst of writes by one origin, the rumor therefore also
     * carries the few entries stored here just before (rarely any in a steady trickle). */
    const kv_entry *e = kv_after(o, since);
    for (int back = 0; e && e->prev && back < RUMOR_LOOKBACK &&
                       e->prev->dead_since + n->s.gossip_interval_ms >= n->now;
         back++)
        e = e->prev;
    if (e && e->version <= since && e->version - 1 >= o->gc_version)
        since = e->version - 1; /* never below the horizon: that would take a RESET */
    buf_writer *w = &n->kv_scratch;
    buf_writer_reset(w);
    if (!kvnode_put_delta(n, w, o, since, o->gc_version, WIRE_KVX_RUMOR, dgram_budget(n), 0,
                          NULL) ||
        w->failed)
        return;
    if (bcast_push_n(&n->bq, BCAST_CLASS_APP, w->p, w->len, (uint8_t)n->s.kv_rumor_transmits)) {
        n->st.broadcasts_queued++;
        gossip_eager(n, n->now);
    }
}

/*
 * Whether a retired entry may be applied: only once we hold what superseded it (kv.h explains
 * why that keeps every winner). A superseding origin that is no member here was reaped, and its
 * entries with it; waiting for it would block the retiring origin for good.
 */
static bool retire_ready(const rumor_node *n, const wire_kv_entry *we)
{
    wire_str dep;
    uint64_t version;
    if (!wire_kv_retired_dep(we->value, &dep, &version))
        return false;
    if (!members_find(&n->mem, (const char *)dep.p, dep.len))
        return true;
    const kv_origin *d = kv_origin_find(&n->kv, (const char *)dep.p, dep.len);
    return d && d->max_version >= version;
}

/* The version of a delta's newest entry (0: none); the decoder checked that entries ascend. */
static uint64_t delta_last(const wire_msg *m)
{
    buf_reader r = m->u.kv_delta.entries;
    wire_kv_entry we;
    uint64_t last = 0;
    for (uint32_t i = 0; i < m->u.kv_delta.count && wire_kv_entry_next(&r, &we); i++)
        last = we.version;
    return last;
}

void kvnode_on_delta(rumor_node *n, const wire_msg *m, uint64_t now)
{
    wire_str on = m->u.kv_delta.origin;
    /* Only members' keyspaces are held: a reaped member's keys must not come back through a
     * peer that has not reaped it yet. An origin we hold is a member (reaping drops it). */
    kv_origin *o = kv_origin_find(&n->kv, (const char *)on.p, on.len);
    if (!o) {
        if (!members_find(&n->mem, (const char *)on.p, on.len)) {
            node_drop(n, RUMOR_DROP_STALE);
            return;
        }
        if (!(o = kv_origin_get(&n->kv, (const char *)on.p, on.len)))
            return;
    }
    uint64_t gc = m->u.kv_delta.gc_version;
    /* Identities: the head (max version, horizon) and every entry must carry the origin's
     * signature; the head is checked before it can reset or advance anything. */
    const uint8_t *pk = NULL, *sigs = NULL;
    if (n->ident) {
        if (!(sigs = wire_kv_delta_sigs(m))) {
            ident_refuse(n, RUMOR_IDENT_UNSIGNED, on, wire_str_of(NULL, 0));
            return;
        }
        /* A sum alone (its origin's rumor, or the one an OFFER carries) reaches members that
         * have not admitted its origin yet, say after a restart: it claims nothing they could
         * apply, so it is dropped as stale, not refused. */
        if (m->u.kv_delta.count == 0 && m->u.kv_delta.sum && !ident_kv_key_known(n, on)) {
            node_drop(n, RUMOR_DROP_STALE);
            return;
        }
        if (!(pk = ident_kv_origin_key(n, on)) ||
            !ident_kv_head_ok(n, o, pk, m->u.kv_delta.origin_max, gc, sigs, delta_last(m)))
            return;
        /* The origin's signed keyspace sum: checked once when newer than the one held, and
         * compared with what we hold each round (kvnode_check_sums). Our own we sign. */
        if (m->u.kv_delta.sum && o != n->kv_self) {
            wire_kv_sum ks;
            wire_kv_sum_of(m, &ks);
            if (!ident_kv_sum_ok(n, o, pk, &ks))
                return;
        }
    }
    if ((m->u.kv_delta.flags & WIRE_KVX_RESET) && o->max_version < gc && o->gc_version < gc)
        kv_origin_reset(&n->kv, o, gc);
    /* A horizon is learned only once we hold the origin past it. A replica still below it may
     * hold keys whose deletes were collected: adopting the horizon would make it look reset
     * (kv_needs_reset) and it would keep them for good. It waits for a RESET delta instead. */
    else if (o->max_version >= gc)
        kv_learn_gc(&n->kv, o, gc);
    uint64_t before = o->max_version;
    /* Below the horizon without a RESET: the deltas may skip collected deletes we never saw,
     * so we must not take them; it is a gap like any other, and the answer resets us. */
    bool behind = o->max_version < gc && o->gc_version < gc;
    if (m->u.kv_delta.since > before || behind) {
        node_drop(n, RUMOR_DROP_STALE); /* a gap: nothing here can be applied */
        /* A rumor carries only the newest write, so one lost rumor would leave a gap that every
         * later rumor of the origin runs into until anti-entropy comes by. Ask its sender for
         * what we lack at once; at most once per gossip interval, so that a burst of writes
         * (where anti-entropy moves more per message) cannot turn into a storm of asks. */
        if ((m->u.kv_delta.flags & WIRE_KVX_RUMOR) && n->from &&
            (n->kv_asked_at == 0 || now >= n->kv_asked_at + n->s.gossip_interval_ms)) {
            n->kv_asked_at = now;
            kvnode_ask(n, n->from, o);
        }
        return;
    }
    buf_reader r = m->u.kv_delta.entries;
    wire_kv_entry we;
    bool whole = true;
    for (uint32_t i = 0; i < m->u.kv_delta.count && wire_kv_entry_next(&r, &we); i++) {
        kv_delta d = {we.key.p,   we.key.len, we.value.p, we.value.len,
                      we.version, we.stamp,   we.flags,   NULL};
        if (we.version > o->max_version && (we.flags & KV_RETIRED) && !retire_ready(n, &we)) {
            whole = false; /* stop at the gap: a later round brings it once it can apply */
            break;
        }
        if (sigs) { /* verified once, when it is new to us; stored entries were checked */
            if (we.version <= o->max_version)
                continue;
            d.sig = sigs + WIRE_SIG_BYTES * (i + 1u);
            if (!ident_kv_entry_ok(n, pk, on, &we, d.sig)) {
                whole = false; /* a forged entry: stop at the gap, anti-entropy resends the rest */
                break;
            }
        }
        if (we.flags & KV_SHARED)
            hlc_observe(&n->clock, we.stamp); /* our next shared write must follow it */
        if (kv_apply(&n->kv, o, &d, now) < 0) {
            node_drop(n, RUMOR_DROP_OVERSIZE); /* over a local limit: stop at the gap */
            whole = false;
            break;
        }
    }
    if (whole && (m->u.kv_delta.flags & WIRE_KVX_COMPLETE))
        kv_advance(&n->kv, o, m->u.kv_delta.origin_max);
    if (o == n->kv_self)
        ident_kv_sign_head(n); /* we adopted versions of our own from before a restart */
    if (o->max_version > before) {
        kv_touch(&n->kv, o, now);
        if ((m->u.kv_delta.flags & WIRE_KVX_RUMOR) && o != n->kv_self && !rumor_congested(n))
            rumor_delta(n, o, before);
    }
}

/* ---- retiring superseded shared entries (kv.h has the safety argument) ---- */

/* Replaces our live entry `e` with a retired tombstone naming the newer entry `w` that
 * superseded it. It keeps e's stamp, so it never wins over anything newer. */
static void retire_one(rumor_node *n, const kv_entry *e, const kv_entry *w, uint64_t now)
{
    uint8_t key[KV_KEY_MAX], dep[KV_RETIRED_VALUE_MAX];
    size_t key_len = e->key_len;
    memcpy(key, kv_key(e), key_len);
    size_t dep_len = wire_kv_retired_put(dep, origin_name(w->origin), w->version);
    uint8_t flags = KV_SHARED | KV_TOMBSTONE | KV_RETIRED;
    kv_delta d = {key, key_len, dep, dep_len, 0, e->stamp, flags, NULL};
    kv_origin *self = n->kv_self;
    uint64_t before = self->max_version;
    uint8_t sig[WIRE_SIG_BYTES];
    if (n->ident) { /* signed like any write of ours, for the version kv_write gives it */
        wire_kv_entry we = {wire_str_of(key, key_len), before + 1, flags, e->stamp,
                            wire_str_of(dep, dep_len)};
        ident_kv_sign_entry(n, &we, sig);
        d.sig = sig;
    }
    if (kv_write(&n->kv, self, &d, now) != RUMOR_OK) {
        /* Over a byte limit (the dependency may be longer than the value): try again later. */
        if (now + retire_delay(n) < n->kv_retire_at)
            n->kv_retire_at = now + retire_delay(n);
        return;
    }
    ident_kv_sign_head(n);
    kv_touch(&n->kv, self, now);
    rumor_delta(n, self, before);
}

void kvnode_retire(rumor_node *n, uint64_t now)
{
    n->kv_retire_at = NODE_NEVER;
    uint64_t delay = retire_delay(n);
    kv_origin *self = n->kv_self;
    /* A retired entry moves to the tail of the version list; it is a tombstone by then, so the
     * walk passes it by. */
    for (kv_entry *e = self->head; e;) {
        kv_entry *next = e->next;
        if ((e->flags & (KV_SHARED | KV_TOMBSTONE)) == KV_SHARED) {
            const kv_entry *w = kv_shared_get(&n->kv, kv_key(e), e->key_len);
            if (w && w != e && w->origin != self) {
                if (now >= w->dead_since + delay)
                    retire_one(n, e, w, now);
                else if (w->dead_since + delay < n->kv_retire_at)
                    n->kv_retire_at = w->dead_since + delay;
            }
        }
        e = next;
    }
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
        kv_touch(&n->kv, n->kv_self, now);
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

uint64_t rumor_node_kv_digest(const rumor_node *n)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n->kv.norigins; i++) {
        const kv_origin *o = n->kv.origins[i];
        uint64_t oh = hash_fnv64(HASH_FNV64_INIT, o->name, o->name_len);
        for (const kv_entry *e = o->head; e; e = e->next) {
            if (e->flags & KV_TOMBSTONE)
                continue;
            uint64_t h = hash_fnv64(oh, kv_key(e), e->key_len);
            h = hash_fnv64(h ^ e->version, kv_value(e), e->value_len);
            sum += hash_mix64(h);
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
