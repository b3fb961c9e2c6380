/*
 * Key-value anti-entropy (kvnode.c has the model): the datagram round (SUM, OFFER, REPLY and
 * KV_DELTAs), and the key-value part of the stream exchanges that sync.c frames (deltas for a
 * peer's complete digest, and our own complete digest).
 */
#include "core/node.h"

#include <math.h>
#include <string.h>

/* The asker's hot origins ride on the round's first message, which rides on a probe ping: a
 * few, so the ping stays small. Eight covers every write spreading at once in the benchmarks'
 * steady load at N = 1,000 (100 writes per second over 1,000 origins). */
#define KV_SUM_HOT_MAX 8
/* Room an OFFER keeps for one keyspace sum (kvnode_put_sum_news) with identities: a KV_DELTA
 * without entries of an origin with a name of up to 64 bytes (a longer one waits for a round
 * whose OFFER came out shorter). */
#define KV_SUM_NEWS_ROOM (1u + 2u + 1u + 64u + 1u + 3u * 10u + 1u + 65u + WIRE_KV_SUM_BYTES)
/* A KV_DIGEST's own bytes around its entries: type, length, flags, count, sum. */
#define KV_DIGEST_OVERHEAD (1u + 3u + 1u + 3u + 8u)

static wire_str origin_name(const kv_origin *o)
{
    return wire_str_of(o->name, o->name_len);
}

/* How long an origin stays hot after it changed here: the rounds a push-pull epidemic needs to
 * reach every member (Karp et al.: log3 N + O(log log N); push alone log2 N + ln N) with room
 * to spare. */
static uint64_t hot_ms(const rumor_node *n)
{
    double live = (double)members_live(&n->mem);
    uint32_t rounds = 4u + 2u * (uint32_t)ceil(log2(live + 1.0));
    return (uint64_t)rounds * n->s.kv_sync_interval_ms;
}

/* Origins a digest lists as held: those we hold any version or horizon of. */
static bool listed(const kv_origin *o)
{
    return o->max_version || o->gc_version;
}

/* Digest entries are gathered in kv_scratch first: the message's count and length come first
 * on the wire. */
typedef struct digest_build {
    buf_writer *w;
    uint32_t count;
    size_t budget;
} digest_build;

static void digest_start(rumor_node *n, digest_build *b, size_t budget)
{
    buf_writer_reset(&n->kv_scratch);
    b->w = &n->kv_scratch;
    b->count = 0;
    b->budget = budget;
}

static bool digest_add(digest_build *b, wire_str name, uint64_t max, uint64_t gc)
{
    if (b->w->len + wire_kv_digest_entry_size(name, max, gc) > b->budget)
        return false;
    wire_put_kv_digest_entry(b->w, name, max, gc);
    b->count++;
    return true;
}

static void digest_flush(rumor_node *n, buf_writer *w, uint8_t flags, const digest_build *b)
{
    wire_put_kv_digest_begin(w, flags, b->count, b->w->len);
    buf_put_bytes(w, b->w->p, b->w->len);
    wire_put_kv_digest_end(w, n->kv.sum);
}

/* Whether our bucket sums ride on our SUM: only when one OFFER cannot list the whole table, and
 * only while our store is changing (a node that saw no change for a while is most likely in
 * sync, and its SUM stays a few bytes). */
static bool sum_with_buckets(const rumor_node *n, uint64_t now)
{
    return n->mem.count > KV_BUCKETS && n->kv.hot && n->kv.hot->changed_at + hot_ms(n) > now;
}

/*
 * A digest entry tells the horizon its sender knows for `o`. Once we hold `o` past it, every
 * tombstone at or below it is collected at the origin, so ours go too (kv_learn_gc). Below it
 * we keep ours: the sender's deltas reset us instead (kv_needs_reset). The horizon is part of
 * the store sum, so replicas that still hold collected tombstones differ, meet in a round and
 * learn it here; it then counts as a change, offered first like a fresh write.
 */
static void learn_horizon(rumor_node *n, kv_origin *o, uint64_t gc, uint64_t now)
{
    if (!o)
        return;
    /* Identities: a digest is not signed, and learning a horizon drops tombstones (a relay
     * could make us uncover values they hide). Only what the origin's signed head that we
     * verified says is learned; a peer that holds a newer head sends it in a delta
     * (kvnode_lacks). */
    if (n->ident) {
        const ident_head *h = ident_kv_head(o);
        uint64_t signed_gc = h ? h->gc : 0;
        if (gc > signed_gc)
            gc = signed_gc;
    }
    if (gc > o->gc_version && o->max_version >= gc) {
        kv_learn_gc(&n->kv, o, gc);
        kv_touch(&n->kv, o, now);
    }
}

/* Room left for digest entries in the datagram being built (its header, a sealed envelope and
 * tag taken off: pkt_max). */
static size_t pkt_room(rumor_node *n)
{
    size_t used = node_pkt(n)->len - n->cur_start + KV_DIGEST_OVERHEAD;
    return used < n->pkt_max ? n->pkt_max - used : 0;
}

/* ---- the datagram round ---- */

/*
 * Sends `to` the deltas for the (origin, their max, their gc) list in `r`: in one datagram when
 * they all fit, else over a KV push stream (sync_kv_push), so that a peer far behind catches up
 * in one exchange rather than one datagram per round, and an entry too big for any datagram
 * moves at all. When no stream can be had, the datagram carries what fits.
 */
static void send_deltas(rumor_node *n, const rumor_addr *to, buf_reader r, uint32_t count,
                        uint64_t now)
{
    int cut = 0;
    buf_reader list = r;
    size_t big_over = n->pkt_max - n->pkt_head;
    wire_str on;
    uint64_t their_max, their_gc;
    if (!node_pkt_begin(n, to, n->from_id))
        return;
    for (uint32_t i = 0; i < count && wire_kv_digest_next(&r, &on, &their_max, &their_gc); i++) {
        kv_origin *o = kv_origin_find(&n->kv, (const char *)on.p, on.len);
        learn_horizon(n, o, their_gc, now);
        if (!o || !kvnode_lacks(n, o, their_max, their_gc))
            continue;
        size_t used = node_pkt(n)->len - n->cur_start;
        if (used + 16u >= n->pkt_max) {
            cut = cut ? cut : KV_CUT;
            break;
        }
        /* Another origin's smaller entries may still fit where this one's did not. */
        if (!kvnode_put_delta(n, node_pkt(n), o, their_max, their_gc, 0, n->pkt_max - used,
                              big_over, &cut))
            cut = cut ? cut : KV_CUT;
    }
    bool empty = node_pkt_empty(n);
    bool streamed = cut && sync_kv_push(n, to, list, count, 0, now) > 0;
    if (empty || streamed)
        node_pkt_abort(n); /* nothing fitted, or a stream carries it all */
    else
        node_pkt_end(n, false);
}

/* The KV_DIGEST reply: where we lag behind the asker, for it to send. */
static void send_lags(rumor_node *n, const rumor_addr *to, buf_reader r, uint32_t count,
                      uint64_t now)
{
    if (!node_pkt_begin(n, to, n->from_id))
        return;
    digest_build b;
    digest_start(n, &b, pkt_room(n));
    wire_str on;
    uint64_t their_max, gc;
    for (uint32_t i = 0; i < count && wire_kv_digest_next(&r, &on, &their_max, &gc); i++) {
        kv_origin *o = kv_origin_find(&n->kv, (const char *)on.p, on.len);
        learn_horizon(n, o, gc, now);
        uint64_t mine = o ? o->max_version : 0, my_gc = o ? o->gc_version : 0;
        /* Identities: a horizon we could not learn from the digest comes in a signed delta. */
        bool horizon = n->ident && gc > my_gc && mine >= gc;
        if ((their_max <= mine && !horizon) || !members_find(&n->mem, (const char *)on.p, on.len))
            continue;
        if (!digest_add(&b, on, mine, my_gc))
            break;
    }
    if (b.count == 0) {
        node_pkt_abort(n);
        return;
    }
    digest_flush(n, node_pkt(n), WIRE_KVD_REPLY, &b);
    node_pkt_end(n, false);
}

void kvnode_ask(rumor_node *n, const rumor_addr *to, const kv_origin *o)
{
    if (!node_pkt_begin(n, to, n->from_id))
        return;
    digest_build b;
    digest_start(n, &b, pkt_room(n));
    digest_add(&b, origin_name(o), o->max_version, o->gc_version);
    digest_flush(n, node_pkt(n), WIRE_KVD_REPLY, &b);
    node_pkt_end(n, false);
}

/*
 * The OFFER: what we hold (origin, max_version, gc_version), in one datagram. First where we
 * stand on the asker's hot origins (so a pushing asker sees what we lack), then our own hot
 * origins (so a pulling asker sees what it lacks), then a rotating window over the member
 * table, so that successive offers cover everything whatever N is. Members we hold nothing of
 * are listed too (max 0): that is how a peer learns we lack them.
 */
static void send_offer(rumor_node *n, const rumor_addr *to, uint8_t mode, const wire_msg *sum,
                       uint64_t now)
{
    if (!node_pkt_begin(n, to, n->from_id))
        return;
    digest_build b;
    /* Identities: the OFFER leaves room for one origin's signed keyspace sum after it
     * (kvnode_put_sum_news), which is how a replica kept from an entry finds out. */
    size_t room = pkt_room(n), news = n->ident ? KV_SUM_NEWS_ROOM : 0;
    room = room > news ? room - news : 0;
    digest_start(n, &b, room);
    uint32_t gen = ++n->kv_mark;
    buf_reader r = sum->u.kv_digest.entries;
    wire_str on;
    uint64_t their_max, their_gc;
    for (uint32_t i = 0;
         i < sum->u.kv_digest.count && wire_kv_digest_next(&r, &on, &their_max, &their_gc); i++) {
        if (!members_find(&n->mem, (const char *)on.p, on.len))
            continue;
        kv_origin *o = kv_origin_get(&n->kv, (const char *)on.p, on.len);
        learn_horizon(n, o, their_gc, now);
        if (!o || o->mark == gen)
            continue;
        if (!digest_add(&b, on, o->max_version, o->gc_version))
            break;
        o->mark = gen;
    }
    /* Origins of the buckets whose sums differ, up to three quarters of the room: among many
     * origins, that is where the difference is. */
    if (sum->u.kv_digest.nbuckets == KV_BUCKETS) {
        b.budget = b.w->len + (room - b.w->len) * 3 / 4;
        const uint8_t *p = sum->u.kv_digest.buckets;
        for (uint32_t k = 0; k < KV_BUCKETS; k++, p += 4) {
            uint32_t theirs =
                (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
            if (theirs == (uint32_t)n->kv.bsum[k])
                continue;
            for (kv_origin *o = n->kv.bhead[k]; o; o = o->bnext) {
                if (o->mark == gen || !listed(o))
                    continue;
                if (!digest_add(&b, origin_name(o), o->max_version, o->gc_version))
                    goto hot;
                o->mark = gen;
            }
        }
    }
hot:
    /* Our hot origins take at most half of what is left, so the rotation always moves on. */
    b.budget = b.w->len + (room - b.w->len) / 2;
    uint64_t hot = hot_ms(n);
    for (kv_origin *o = n->kv.hot; o && o->changed_at + hot > now; o = o->hot_next) {
        if (o->mark == gen)
            continue;
        if (!digest_add(&b, origin_name(o), o->max_version, o->gc_version))
            break;
        o->mark = gen;
    }
    b.budget = room;
    members *t = &n->mem;
    size_t start = n->kv_digest_pos % t->count, k;
    for (k = 0; k < t->count; k++) {
        const member *m = t->order[(start + k) % t->count];
        kv_origin *o = kv_origin_find(&n->kv, member_name(m), m->name_len);
        if (o && o->mark == gen)
            continue;
        if (!digest_add(&b, wire_str_of(member_name(m), m->name_len), o ? o->max_version : 0,
                        o ? o->gc_version : 0))
            break;
    }
    n->kv_digest_pos = start + k;
    buf_writer *w = node_pkt(n);
    wire_put_kv_digest_begin_t(w, (uint8_t)(WIRE_KVD_OFFER | mode), b.count, b.w->len, 0,
                               n->kv.vtotal);
    buf_put_bytes(w, b.w->p, b.w->len);
    wire_put_kv_digest_end(w, n->kv.sum);
    wire_put_kv_digest_buckets(w, NULL, 0);
    wire_put_kv_digest_total(w, n->kv.vtotal);
    if (n->ident) {
        size_t used = w->len - n->cur_start;
        kvnode_put_sum_news(n, w, used < n->pkt_max ? n->pkt_max - used : 0);
    }
    node_pkt_end(n, false);
}

/* Lagging origins in an OFFER that make us pull everything at once (see wants_bulk). */
#define KV_BULK_LAGS 16
/* Versions a peer may hold beyond us (their version total less ours) before we ask for all we
 * lack at once. Nodes in steady traffic differ by the writes still in flight, a few dozen at
 * 100 writes per second; a write burst, a restart or a long absence puts thousands between
 * them. */
#define KV_BULK_VERSIONS 256

/* Whether a digest's sender holds so many versions more than we do that a round of datagrams
 * would take long to carry them. */
static bool far_behind(const rumor_node *n, const wire_msg *m)
{
    return m->u.kv_digest.has_total && m->u.kv_digest.total > n->kv.vtotal &&
           m->u.kv_digest.total - n->kv.vtotal >= KV_BULK_VERSIONS;
}

/*
 * An OFFER lists a slice of the member table. When we lag on many of the listed origins and
 * the slice does not cover the table, we most likely lag on the rest too (a write burst, a
 * healed partition, a restart): rather than one slice per round, we pull everything we lack in
 * one exchange, over a KV stream that carries our complete digest (and, in push modes, the
 * deltas the peer lacks among the listed origins).
 */
static bool wants_bulk(rumor_node *n, const wire_msg *m)
{
    if (far_behind(n, m))
        return true;
    uint32_t count = m->u.kv_digest.count, lags = 0;
    if (count >= n->mem.count)
        return false; /* the slice covers everything: a REPLY says it all */
    buf_reader r = m->u.kv_digest.entries;
    wire_str on;
    uint64_t their_max, gc;
    for (uint32_t i = 0; i < count && wire_kv_digest_next(&r, &on, &their_max, &gc); i++) {
        const kv_origin *o = kv_origin_find(&n->kv, (const char *)on.p, on.len);
        lags += their_max > (o ? o->max_version : 0);
    }
    return lags >= KV_BULK_LAGS;
}

/*
 * A round has up to four steps. The asker sends its store sum with its mode (SUM, carrying its
 * hot origins in push modes); a peer whose sum differs answers with its OFFER; the asker then
 * pushes what the peer lags on (PUSH) and/or lists where it lags itself (REPLY) for the peer to
 * send (PULL). Nodes in sync exchange one small message per round.
 */
void kvnode_on_digest(rumor_node *n, const wire_msg *m, uint64_t now)
{
    if (!n->from)
        return; /* digests are answered by datagram only */
    uint8_t f = m->u.kv_digest.flags;
    uint8_t mode = f & (WIRE_KVD_PULL | WIRE_KVD_PUSH);
    if (f & WIRE_KVD_ALL)
        return; /* a complete digest belongs to a stream exchange */
    if (f & WIRE_KVD_SUM) {
        if (m->u.kv_digest.sum == n->kv.sum || members_live(&n->mem) <= 1)
            return;
        /* In a push round, a peer far ahead of us is to send us all we lack: we ask it with
         * our complete digest over a stream rather than offer a slice per round. */
        if ((mode & WIRE_KVD_PUSH) && far_behind(n, m)) {
            buf_reader none = {0};
            if (sync_kv_push(n, n->from, none, 0, SYNC_KV_ASK, now) > 0)
                return;
        }
        send_offer(n, n->from, mode, m, now);
        return;
    }
    if (f & WIRE_KVD_REPLY) {
        send_deltas(n, n->from, m->u.kv_digest.entries, m->u.kv_digest.count, now);
        return;
    }
    if (!(f & WIRE_KVD_OFFER))
        return;
    if ((f & WIRE_KVD_PULL) && wants_bulk(n, m) &&
        sync_kv_push(n, n->from, m->u.kv_digest.entries,
                     (f & WIRE_KVD_PUSH) ? m->u.kv_digest.count : 0, SYNC_KV_ASK, now) > 0)
        return;
    if (f & WIRE_KVD_PUSH)
        send_deltas(n, n->from, m->u.kv_digest.entries, m->u.kv_digest.count, now);
    if (f & WIRE_KVD_PULL)
        send_lags(n, n->from, m->u.kv_digest.entries, m->u.kv_digest.count, now);
}

static uint8_t round_mode(const rumor_node *n)
{
    return n->s.kv_sync_mode == RUMOR_SYNC_PUSH   ? WIRE_KVD_PUSH
           : n->s.kv_sync_mode == RUMOR_SYNC_PULL ? WIRE_KVD_PULL
                                                  : WIRE_KVD_PUSH | WIRE_KVD_PULL;
}

/* The round's first step: our store sum, and in push modes our hot origins, so a peer that
 * lacks what is spreading here says so in its OFFER. */
static void put_sum(rumor_node *n, buf_writer *w, uint64_t now)
{
    uint8_t mode = round_mode(n);
    digest_build b;
    /* The hot origins take what the datagram has left after the sum, its bucket sums and its
     * total (a ping carrying an accusation and its signature comes first). */
    size_t fixed = w->len - n->cur_start + KV_DIGEST_OVERHEAD + 1u + 4u * KV_BUCKETS + 10u;
    digest_start(n, &b, fixed < n->pkt_max ? n->pkt_max - fixed : 0);
    if (mode & WIRE_KVD_PUSH) {
        uint64_t hot = hot_ms(n);
        for (kv_origin *o = n->kv.hot; o && b.count < KV_SUM_HOT_MAX && o->changed_at + hot > now;
             o = o->hot_next)
            digest_add(&b, origin_name(o), o->max_version, o->gc_version);
    }
    uint32_t nb = sum_with_buckets(n, now) ? KV_BUCKETS : 0;
    if (nb == 0 && n->kv.vtotal == 0) {
        /* A node holding no key-value state at all (the common idle case): the bare sum. */
        digest_flush(n, w, (uint8_t)(WIRE_KVD_SUM | mode), &b);
        return;
    }
    wire_put_kv_digest_begin_t(w, (uint8_t)(WIRE_KVD_SUM | mode), b.count, b.w->len, nb,
                               n->kv.vtotal);
    buf_put_bytes(w, b.w->p, b.w->len);
    wire_put_kv_digest_end(w, n->kv.sum);
    wire_put_kv_digest_buckets(w, n->kv.bsum, nb);
    wire_put_kv_digest_total(w, n->kv.vtotal);
}

bool kvnode_piggyback(rumor_node *n, buf_writer *w, uint64_t now)
{
    if (n->leaving || !n->s.kv_sync_interval_ms || now < n->next_kv_sync)
        return false;
    put_sum(n, w, now);
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
    if (now >= n->kv_retire_at)
        kvnode_retire(n, now);
    if (has_tombstones(n) && now >= n->next_kv_collect) {
        uint64_t gc = n->kv_self->gc_version;
        kv_collect(&n->kv, n->kv_self, now);
        ident_kv_sign_head(n);
        if (n->kv_self->gc_version != gc)
            kv_touch(&n->kv, n->kv_self, now); /* offered first, so replicas learn it soon */
        n->next_kv_collect = now + n->s.kv_sync_interval_ms;
    }
    if (now >= n->next_kv_sum) {
        /* Once per round: a burst of writes costs one signature of the sum, not one each. */
        kvnode_sign_sum(n);
        kvnode_check_sums(n, now);
        n->next_kv_sum = now + n->s.kv_sync_interval_ms;
    }
    if (now < standalone_at(n))
        return;
    member *peer;
    if (members_live(&n->mem) > 1 && gossip_pick(n, &peer, 1, NULL, false, now) == 1) {
        uint64_t dest = node_dest(n, peer);
        if (!node_hello_instead(n, &peer->addr, dest) && node_pkt_begin(n, &peer->addr, dest)) {
            put_sum(n, node_pkt(n), now);
            node_pkt_end(n, true);
        }
    }
    n->next_kv_sync = now + n->s.kv_sync_interval_ms;
}

uint64_t kvnode_deadline(const rumor_node *n)
{
    if (n->leaving || !n->s.kv_sync_interval_ms)
        return NODE_NEVER;
    uint64_t a = standalone_at(n);
    if (has_tombstones(n) && n->next_kv_collect < a)
        a = n->next_kv_collect;
    if (n->next_kv_sum < a)
        a = n->next_kv_sum;
    return n->kv_retire_at < a ? n->kv_retire_at : a;
}

/* ---- key-value state on streams ---- */

size_t kvnode_put_deltas_for(rumor_node *n, buf_writer *w, buf_reader r, uint32_t count, bool all,
                             size_t budget, size_t msgs_max)
{
    uint32_t gen = ++n->kv_mark;
    size_t start = w->len, msgs = 0;
    wire_str on;
    uint64_t their_max, their_gc;
    for (uint32_t i = 0; i < count && wire_kv_digest_next(&r, &on, &their_max, &their_gc); i++) {
        kv_origin *o = kv_origin_find(&n->kv, (const char *)on.p, on.len);
        if (!o)
            continue;
        learn_horizon(n, o, their_gc, n->now);
        o->mark = gen;
        if (!kvnode_lacks(n, o, their_max, their_gc))
            continue;
        size_t used = w->len - start;
        if (msgs >= msgs_max || used >= budget)
            return msgs;
        msgs += kvnode_put_delta(n, w, o, their_max, their_gc, 0, budget - used, 0, NULL);
    }
    if (!all)
        return msgs;
    /* A complete digest: what it does not list, its sender holds nothing of. */
    for (size_t i = 0; i < n->kv.norigins; i++) {
        kv_origin *o = n->kv.origins[i];
        if (o->mark == gen || (o->max_version == 0 && o->gc_version == 0))
            continue;
        size_t used = w->len - start;
        if (msgs >= msgs_max || used >= budget)
            break;
        msgs += kvnode_put_delta(n, w, o, 0, 0, 0, budget - used, 0, NULL);
    }
    return msgs;
}

size_t kvnode_digest_all_size(const rumor_node *n)
{
    size_t bytes = 0, count = 0;
    for (size_t i = 0; i < n->kv.norigins; i++) {
        const kv_origin *o = n->kv.origins[i];
        if (!listed(o))
            continue;
        bytes += wire_kv_digest_entry_size(origin_name(o), o->max_version, o->gc_version);
        count++;
    }
    return 1u + buf_varint_size(bytes + 16u) + 1u + buf_varint_size(count) + bytes + 8u;
}

void kvnode_put_digest_all(rumor_node *n, buf_writer *w)
{
    size_t bytes = 0;
    uint32_t count = 0;
    for (size_t i = 0; i < n->kv.norigins; i++) {
        const kv_origin *o = n->kv.origins[i];
        if (!listed(o))
            continue;
        bytes += wire_kv_digest_entry_size(origin_name(o), o->max_version, o->gc_version);
        count++;
    }
    wire_put_kv_digest_begin(w, WIRE_KVD_ALL, count, bytes);
    for (size_t i = 0; i < n->kv.norigins; i++) {
        const kv_origin *o = n->kv.origins[i];
        if (listed(o))
            wire_put_kv_digest_entry(w, origin_name(o), o->max_version, o->gc_version);
    }
    wire_put_kv_digest_end(w, n->kv.sum);
}
