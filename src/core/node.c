/* The node's public API, its output queues (datagrams, stream operations, events) and the one
 * deadline the host sleeps until. */
#include "core/node.h"

#include <math.h>
#include <sodium.h>
#include <string.h>

/* Outbound bytes held before new packets are refused (the host is not draining). */
#define NODE_OUT_BYTES_MAX (64u * 1024u * 1024u)

/* The largest header and ALIVE message around metadata: magic, version, flags, label, then
 * type, length, incarnation, name, address and the metadata length. Metadata must fit one
 * datagram with it, or an ALIVE could never be sent. */
#define NODE_ALIVE_OVERHEAD                                                                        \
    (5u + RUMOR_LABEL_MAX + 3u + 5u + 2u + RUMOR_NAME_MAX + 1u + RUMOR_ADDR_MAX + 3u)

/* The largest header and single-entry KV_DELTA around a value. A value must fit one stream frame
 * with it; one that does not fit a datagram travels over streams only (kvnode.c). */
#define NODE_KV_OVERHEAD                                                                           \
    (5u + RUMOR_LABEL_MAX + 4u + 2u + RUMOR_NAME_MAX + 1u + 3u * 10u + 5u + 2u + RUMOR_KEY_MAX +   \
     10u + 1u + 10u + 3u)

/* What identities add to those (docs/protocol.md section 12): an identity trailer on an ALIVE,
 * the head and one entry signature on a KV_DELTA. */
#define NODE_IDENT_ALIVE_OVERHEAD (1u + WIRE_IDENT_BLOCK_MAX)
#define NODE_IDENT_KV_OVERHEAD    (1u + 2u * WIRE_SIG_BYTES)

static bool settings_valid(const rumor_settings *s)
{
    size_t nl = s->name ? strlen(s->name) : 0;
    size_t ll = s->cluster_label ? strlen(s->cluster_label) : 0;
    uint32_t ia = s->identity ? NODE_IDENT_ALIVE_OVERHEAD : 0;
    uint32_t ik = s->identity ? NODE_IDENT_KV_OVERHEAD : 0;
    if (s->identity_ca && !s->identity)
        return false;
    /* A sealed datagram carries the envelope too: an ALIVE must still fit. A value must fit one
     * stream frame with its KV_DELTA, signatures and, on a sealed stream, the frame's envelope
     * (one too big for a datagram travels over streams, kvnode.c). */
    size_t seal = s->nkeys ? SEAL_DGRAM_OVERHEAD : 0;
    size_t sealf = s->nkeys ? SEAL_FRAME_OVERHEAD : 0;
    return nl >= 1 && nl <= RUMOR_NAME_MAX && s->addr.len >= 1 && s->addr.len <= RUMOR_ADDR_MAX &&
           ll <= RUMOR_LABEL_MAX && s->probe_interval_ms > 0 && s->probe_timeout_ms > 0 &&
           s->probe_timeout_ms <= s->probe_interval_ms && s->gossip_interval_ms > 0 &&
           s->suspicion_mult >= 1 && s->suspicion_max_mult >= 1 && s->awareness_max >= 1 &&
           s->retransmit_mult >= 1 && s->packet_bytes_max >= 512 &&
           s->packet_bytes_max <= RUMOR_PACKET_MAX && s->meta_bytes_max <= RUMOR_META_MAX &&
           s->meta_bytes_max + NODE_ALIVE_OVERHEAD + ia + seal <= s->packet_bytes_max &&
           s->members_max >= 1 && s->streams_max >= 1 && s->broadcast_queue_max >= 1 &&
           s->stream_frame_bytes_max >= 4096 &&
           s->stream_frame_bytes_max <= RUMOR_STREAM_FRAME_MAX && s->stream_timeout_ms > 0 &&
           (unsigned)s->kv_sync_mode <= RUMOR_SYNC_PULL && s->kv_keys_max >= 1 &&
           s->kv_value_bytes_max <= RUMOR_KV_VALUE_MAX &&
           s->kv_value_bytes_max + NODE_KV_OVERHEAD + ik + sealf <= s->stream_frame_bytes_max &&
           s->kv_rumor_transmits < BCAST_BUCKETS && msg_settings_valid(s);
}

static int node_init(rumor_node *n, const rumor_settings *s, uint64_t now)
{
    n->s = *s;
    n->name_len = strlen(s->name);
    memcpy(n->name, s->name, n->name_len);
    n->s.name = n->name;
    n->label_len = s->cluster_label ? strlen(s->cluster_label) : 0;
    memcpy(n->label, s->cluster_label ? s->cluster_label : "", n->label_len);
    n->s.cluster_label = NULL;
    n->s.allocator = &n->alloc;
    int rc = ident_init(n); /* takes the key out of n->s and wipes the copy there */
    if (rc != RUMOR_OK)
        return rc;
    /* Keys and secret live in n->seal only; the settings copy keeps neither. */
    n->s.keys = NULL;
    sodium_memzero(n->s.seal_secret, sizeof(n->s.seal_secret));
    rc = seal_init(&n->seal, s, now, s->members_max);
    if (rc != RUMOR_OK)
        return rc;
    n->seal.alloc = &n->alloc;
    n->pkt_head = 5u + n->label_len;
    n->pkt_max = s->packet_bytes_max;
    if (seal_sending(&n->seal)) {
        n->pkt_head += SEAL_ENV_BYTES + SEAL_INNER_DGRAM;
        n->pkt_max -= SEAL_TAG_BYTES;
    }
    rng_seed(&n->rng, s->seed);
    members_init(&n->mem, &n->alloc);
    bcast_init(&n->bq, &n->alloc, s->broadcast_queue_max);
    buf_writer_init(&n->dout, &n->alloc, NODE_OUT_BYTES_MAX);
    buf_writer_init(&n->sout, &n->alloc, NODE_OUT_BYTES_MAX);
    /* Not zeroed: decoding writes each slot before it is read, so only the pages that a
     * packet's message count reaches are ever touched (the whole array is 90 KB per node). */
    n->msgs = ralloc(&n->alloc, WIRE_MSGS_MAX * sizeof(wire_msg));
    n->msgs_cap = WIRE_MSGS_MAX;
    n->self = members_add(&n->mem, n->name, n->name_len, &n->rng);
    if (!n->msgs || !n->self)
        return RUMOR_ERR_NOMEM;
    n->self->is_self = true;
    n->self->addr = s->addr;
    members_set_inc(&n->mem, n->self, s->incarnation);
    n->self->state_since = now;
    n->now = now;
    /* Start timers at random offsets inside their periods so a fleet started together does not
     * probe and sync in lockstep. */
    n->next_probe = now + rng_below(&n->rng, s->probe_interval_ms);
    n->next_gossip = now + rng_below(&n->rng, s->gossip_interval_ms);
    n->next_pushpull = s->pushpull_interval_ms
                           ? now + s->pushpull_interval_ms / 2 +
                                 rng_below(&n->rng, s->pushpull_interval_ms / 2 + 1)
                           : NODE_NEVER;
    n->next_reconnect = s->reconnect_interval_ms
                            ? now + rng_below(&n->rng, s->reconnect_interval_ms) + 1
                            : NODE_NEVER;
    n->next_reap = NODE_NEVER;
    n->next_stream_id = 1;
    /* Sealed, start probe numbers anywhere: an ACK captured in an earlier life of this node and
     * replayed after a restart must not answer a new probe (docs/protocol.md section 3.1.4). */
    if (seal_enabled(&n->seal))
        n->seq = (uint32_t)rng_next(&n->rng);
    n->st.incarnation = s->incarnation;
    rc = msg_init(n);
    return rc == RUMOR_OK ? kvnode_init(n) : rc;
}

int rumor_node_new(rumor_node **out, const rumor_settings *s, uint64_t now)
{
    if (!out || !s)
        return RUMOR_ERR_INVALID;
    *out = NULL;
    if (s->version != RUMOR_SETTINGS_VERSION)
        return RUMOR_ERR_VERSION;
    if (!settings_valid(s))
        return RUMOR_ERR_INVALID;
    const rumor_allocator *a = s->allocator ? s->allocator : &rumor_alloc_libc;
    rumor_node *n = a->alloc(a->ud, sizeof(*n));
    if (!n)
        return RUMOR_ERR_NOMEM;
    memset(n, 0, sizeof(*n));
    n->alloc = *a;
    int rc = node_init(n, s, now);
    if (rc != RUMOR_OK) {
        rumor_node_del(n);
        return rc;
    }
    *out = n;
    return RUMOR_OK;
}

void rumor_node_del(rumor_node *n)
{
    if (!n)
        return;
    rumor_allocator a = n->alloc;
    kv_free(&n->kv);
    buf_writer_free(&n->kv_scratch);
    msg_free(n);
    keyq_free(n);
    ident_free(n);
    for (size_t i = 0; i < n->nsusps; i++)
        rfree(&a, n->susps[i]);
    rfree(&a, n->susps);
    sync_free(n);
    bcast_free(&n->bq);
    members_free(&n->mem);
    buf_writer_free(&n->dout);
    buf_writer_free(&n->sout);
    rfree(&a, n->dq);
    rfree(&a, n->sq);
    for (size_t i = n->ev_head; i < n->ev_len; i++) {
        rfree(&a, n->evq[i].meta);
        rfree(&a, n->evq[i].key);
        rfree(&a, n->evq[i].blob);
    }
    rfree(&a, n->evq);
    rfree(&a, n->ev_last.meta);
    rfree(&a, n->ev_last.key);
    rfree(&a, n->ev_last.blob);
    rfree(&a, n->relays);
    rfree(&a, n->msgs);
    seal_free(&n->seal, &a);
    a.free(a.ud, n);
}

/* ---- helpers shared by the engine files ---- */

void node_drop(rumor_node *n, rumor_drop_reason r)
{
    n->st.dropped[r]++;
}

wire_str node_self_name(const rumor_node *n)
{
    return wire_str_of(n->name, n->name_len);
}

uint32_t node_retransmit_limit(const rumor_node *n)
{
    /* memberlist: RetransmitMult × ⌈log10(N+1)⌉, so 10 nodes: 4×1... N counts live members. */
    double nn = (double)members_live(&n->mem);
    uint32_t lim = n->s.retransmit_mult * (uint32_t)ceil(log10(nn + 1.0));
    return lim ? lim : 1;
}

uint32_t node_scale(const rumor_node *n, uint32_t ms)
{
    /* Lifeguard §IV-A: a node that misses acks itself stretches its own timeouts. */
    return ms * (n->awareness + 1);
}

buf_writer *node_pkt(rumor_node *n)
{
    return &n->dout;
}

uint64_t node_dest(rumor_node *n, const member *m)
{
    if (!seal_sending(&n->seal))
        return 0;
    uint64_t *c = members_seal_id(&n->mem, m);
    if (c && *c)
        return *c;
    uint64_t id = seal_id(member_name(m), m->name_len);
    if (c)
        *c = id;
    return id;
}

uint64_t node_dest_name(rumor_node *n, wire_str name)
{
    if (!seal_sending(&n->seal))
        return 0;
    const member *m = members_find(&n->mem, (const char *)name.p, name.len);
    return m ? node_dest(n, m) : seal_id(name.p, name.len);
}

bool node_dest_ready(const rumor_node *n, uint64_t dest)
{
    return !seal_sending(&n->seal) || seal_peer_epoch(&n->seal, dest) != 0;
}

bool node_send_self(rumor_node *n, const rumor_addr *to, uint64_t dest, bool piggyback)
{
    wire_ident id;
    member *self = n->self;
    if (n->leaving || self->state != RUMOR_MEMBER_ALIVE || (!ident_claim(n, self, &id) && n->ident))
        return false;
    if (!node_pkt_begin(n, to, dest))
        return false;
    size_t mlen;
    const uint8_t *meta = members_meta(&n->mem, self, &mlen);
    wire_put_alive_ident(node_pkt(n), self->incarnation, node_self_name(n), &self->addr,
                         wire_str_of(meta, mlen), &id);
    node_pkt_end(n, piggyback);
    return true;
}

bool node_epoch_notice(rumor_node *n, const rumor_addr *to, uint64_t dest)
{
    return node_send_self(n, to, dest, true);
}

bool node_hello_instead(rumor_node *n, const rumor_addr *to, uint64_t dest)
{
    if (node_dest_ready(n, dest))
        return false;
    /* It would refuse news from a sender that does not name its epoch: say hello, and its
     * notice back teaches us the epoch (docs/protocol.md section 3.1.4). */
    (void)node_epoch_notice(n, to, dest);
    return true;
}

void node_catch_up(rumor_node *n, const rumor_addr *to, uint64_t dest)
{
    if (!bcast_count(&n->bq) || !node_pkt_begin(n, to, dest))
        return;
    size_t used = n->dout.len - n->cur_start;
    size_t added = n->cur_ready && used < n->pkt_max
                       ? bcast_fill(&n->bq, &n->dout, n->pkt_max - used, node_retransmit_limit(n))
                       : 0;
    if (added == 0) {
        node_pkt_abort(n);
        return;
    }
    n->st.messages_out += added - 1; /* node_pkt_end counts one */
    node_pkt_end(n, false);
}

bool node_pkt_begin(rumor_node *n, const rumor_addr *to, uint64_t dest)
{
    /* Every datagram already drained may be overwritten: reset the arena when it is empty. */
    if (n->dq_head == n->dq_len) {
        n->dq_head = n->dq_len = 0;
        buf_writer_reset(&n->dout);
        if (n->dout.cap > NODE_ARENA_KEEP)
            buf_writer_free(&n->dout);
    }
    void *dq = n->dq;
    if (!rgrow(&n->alloc, &dq, &n->dq_cap, n->dq_len + 1, sizeof(out_dgram)) ||
        !buf_reserve(&n->dout, n->s.packet_bytes_max)) {
        node_drop(n, RUMOR_DROP_QUEUE_FULL);
        n->dout.failed = false;
        return false;
    }
    n->dq = dq;
    n->cur_start = n->dout.len;
    n->cur_to = *to;
    bool seal = seal_sending(&n->seal);
    wire_put_header(&n->dout, n->label, n->label_len, seal ? WIRE_FLAG_SEALED : 0);
    n->cur_ready = true;
    if (seal) {
        /* dest 0 answers a plaintext packet while migrating: there is no epoch to name. */
        uint64_t de = seal_peer(&n->seal, dest, &n->cur_cipher);
        seal_inner in = {.kind = SEAL_KIND_DGRAM, .dest = dest, .dest_epoch = de};
        n->cur_env = seal_put_inner(&n->seal, &n->dout, &in);
        n->cur_ready = de != 0;
        if (dest && !de)
            seal_hold(&n->seal, &n->alloc, dest, n->now);
    }
    return true;
}

void node_pkt_abort(rumor_node *n)
{
    n->dout.len = n->cur_start;
}

bool node_pkt_empty(const rumor_node *n)
{
    return n->dout.len - n->cur_start <= n->pkt_head;
}

void node_pkt_end(rumor_node *n, bool piggyback)
{
    size_t used = n->dout.len - n->cur_start;
    /* News for a recipient whose epoch we do not know would be refused (stale_epoch): it waits
     * in the queue for a datagram that can carry it. */
    if (piggyback && used < n->pkt_max && n->cur_ready)
        n->st.messages_out +=
            bcast_fill(&n->bq, &n->dout, n->pkt_max - used, node_retransmit_limit(n));
    if (seal_sending(&n->seal) &&
        !seal_close(&n->seal, &n->dout, n->cur_start, n->cur_env, n->cur_cipher)) {
        node_pkt_abort(n);
        n->dout.failed = false;
        node_drop(n, RUMOR_DROP_QUEUE_FULL);
        return;
    }
    out_dgram *d = &n->dq[n->dq_len++];
    d->to = n->cur_to;
    d->off = n->cur_start;
    d->len = n->dout.len - n->cur_start;
    n->st.packets_out++;
    n->st.bytes_out += d->len;
    n->st.messages_out++;
}

bool node_sop(rumor_node *n, uint8_t kind, uint64_t id, const rumor_addr *to, size_t off,
              size_t len)
{
    void *sq = n->sq;
    if (!rgrow(&n->alloc, &sq, &n->sq_cap, n->sq_len + 1, sizeof(out_sop)))
        return false;
    n->sq = sq;
    out_sop *op = &n->sq[n->sq_len++];
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    op->id = id;
    if (to)
        op->to = *to;
    op->off = off;
    op->len = len;
    return true;
}

ev_rec *node_event_slot(rumor_node *n)
{
    if (n->ev_head == n->ev_len)
        n->ev_head = n->ev_len = 0;
    if (n->ev_len - n->ev_head >= NODE_EVENTS_MAX) {
        node_drop(n, RUMOR_DROP_QUEUE_FULL);
        return NULL;
    }
    void *q = n->evq;
    if (!rgrow(&n->alloc, &q, &n->ev_cap, n->ev_len + 1, sizeof(ev_rec)))
        return NULL;
    n->evq = q;
    return &n->evq[n->ev_len];
}

void node_event(rumor_node *n, uint8_t type, const member *m, const char *accuser,
                size_t accuser_len)
{
    ev_rec *e = node_event_slot(n);
    if (!e)
        return;
    e->type = type;
    e->at = n->now;
    e->meta = NULL;
    e->meta_len = 0;
    e->key = NULL;
    e->key_len = 0;
    e->version = e->old_version = 0;
    e->deleted = e->shared = false;
    e->blob = NULL;
    e->msg_name_len = 0;
    e->payload_len = 0;
    e->ltime = e->query_id = e->deadline = 0;
    memset(&e->qres, 0, sizeof(e->qres));
    e->accuser[0] = '\0';
    const uint8_t *pk = m ? ident_pk(n, m) : NULL;
    e->has_pk = pk != NULL;
    if (pk)
        memcpy(e->pk, pk, sizeof(e->pk));
    if (m) {
        memcpy(e->name, member_name(m), m->name_len);
        e->name[m->name_len] = '\0';
        e->addr = m->addr;
        e->inc = m->incarnation;
        e->state = m->state;
        e->since = m->state_since;
        e->is_self = m->is_self;
        size_t meta_len;
        const uint8_t *meta = members_meta(&n->mem, m, &meta_len);
        if (meta_len) {
            e->meta = ralloc(&n->alloc, meta_len);
            if (!e->meta)
                return;
            memcpy(e->meta, meta, meta_len);
            e->meta_len = (uint16_t)meta_len;
        }
    } else {
        memset(e->name, 0, sizeof(e->name));
        memset(&e->addr, 0, sizeof(e->addr));
        e->inc = 0;
        e->state = 0;
        e->since = n->now;
        e->is_self = false;
    }
    if (accuser && accuser_len) {
        memcpy(e->accuser, accuser, accuser_len);
        e->accuser[accuser_len] = '\0';
    }
    n->ev_len++;
}

/* ---- public API ---- */

static void member_snapshot(const rumor_node *n, const member *m, rumor_member *out)
{
    out->public_key = ident_pk(n, m);
    out->name = member_name(m);
    out->name_len = m->name_len;
    out->addr = m->addr;
    out->incarnation = m->incarnation;
    out->state = (rumor_member_state)m->state;
    out->meta = members_meta(&n->mem, m, &out->meta_len);
    out->state_since_ms = m->state_since;
    out->is_self = m->is_self;
}

size_t rumor_node_member_count(const rumor_node *n)
{
    return n->mem.count;
}

int rumor_node_member_at(const rumor_node *n, size_t i, rumor_member *out)
{
    if (i >= n->mem.count || !out)
        return RUMOR_ERR_NOT_FOUND;
    member_snapshot(n, n->mem.order[i], out);
    return RUMOR_OK;
}

int rumor_node_member_find(const rumor_node *n, const char *name, rumor_member *out)
{
    if (!name)
        return RUMOR_ERR_INVALID;
    member *m = members_find(&n->mem, name, strlen(name));
    if (!m)
        return RUMOR_ERR_NOT_FOUND;
    if (out)
        member_snapshot(n, m, out);
    return RUMOR_OK;
}

void rumor_node_self(const rumor_node *n, rumor_member *out)
{
    member_snapshot(n, n->self, out);
}

void rumor_node_stats(const rumor_node *n, rumor_stats *out)
{
    *out = n->st;
    for (int i = 0; i < 4; i++)
        out->members[i] = n->mem.by_state[i];
    out->broadcast_queue = bcast_count(&n->bq);
    out->awareness = n->awareness;
    out->incarnation = n->self->incarnation;
    out->dropped[RUMOR_DROP_QUEUE_FULL] += n->bq.dropped;
    out->event_ltime = n->msg.event_clock;
    out->query_ltime = n->msg.query_clock;
}

uint32_t rumor_node_health(const rumor_node *n)
{
    return n->awareness;
}

bool rumor_node_is_leaving(const rumor_node *n)
{
    return n->leaving;
}

int rumor_node_join(rumor_node *n, const rumor_addr *seeds, size_t nseeds, uint64_t now)
{
    if (!seeds || nseeds == 0)
        return RUMOR_ERR_INVALID;
    if (n->leaving)
        return RUMOR_ERR_STATE;
    n->now = now;
    int rc = RUMOR_ERR_INVALID;
    for (size_t i = 0; i < nseeds; i++) {
        const rumor_addr *a = &seeds[i];
        if (a->len == 0 || a->len > RUMOR_ADDR_MAX || rumor_addr_equal(a, &n->s.addr))
            continue;
        bool known = false;
        for (size_t j = 0; j < n->nseeds; j++)
            known = known || rumor_addr_equal(&n->seeds[j], a);
        if (!known && n->nseeds < NODE_SEEDS_MAX)
            n->seeds[n->nseeds++] = *a;
        int r = sync_pushpull(n, a, true, false, now);
        if (r == RUMOR_OK || rc != RUMOR_OK)
            rc = r;
    }
    return rc;
}

int rumor_node_leave(rumor_node *n, uint64_t now)
{
    if (n->leaving)
        return RUMOR_ERR_STATE;
    n->now = now;
    n->leaving = true;
    n->leave_deadline = now + n->s.leave_timeout_ms;
    n->probe.active = false;
    state_left(n, n->self->incarnation + 1, node_self_name(n), NULL, now);
    if (members_live(&n->mem) == 0) {
        n->leave_done = true;
        node_event(n, RUMOR_EVENT_LEAVE_DONE, n->self, NULL, 0);
    }
    return RUMOR_OK;
}

int rumor_node_restore(rumor_node *n, const rumor_member *m, uint64_t now)
{
    if (!m || !m->name || m->addr.len == 0 || m->addr.len > RUMOR_ADDR_MAX ||
        m->meta_len > RUMOR_META_MAX || (m->meta_len && !m->meta))
        return RUMOR_ERR_INVALID;
    size_t len = strlen(m->name);
    if (!wire_name_ok((const uint8_t *)m->name, len))
        return RUMOR_ERR_INVALID;
    if (members_find(&n->mem, m->name, len))
        return RUMOR_OK;
    if (n->mem.count >= n->s.members_max)
        return RUMOR_ERR_FULL;
    n->now = now;
    size_t before = n->mem.count;
    state_alive_new(n, wire_str_of(m->name, len), m->incarnation, &m->addr,
                    wire_str_of(m->meta, m->meta_len), true, NULL, now);
    if (n->mem.count == before)
        return RUMOR_ERR_NOMEM;
    /* With identities, the member stays unverified until a claim signed by its key arrives;
     * a key remembered from before the restart is pinned now (trust on first use carries on). */
    if (m->public_key)
        ident_pin(n, members_find(&n->mem, m->name, len), m->public_key);
    return RUMOR_OK;
}

static void prefetch_range(const void *base, size_t from, size_t to)
{
    for (size_t off = from; off < to; off += 64)
        __builtin_prefetch((const char *)base + off);
}

void rumor_node_prefetch(const rumor_node *n, unsigned level)
{
    if (level == 0) {
        /* The fields calls read: settings and identity, the member table's header, the
         * broadcast counts, timers, probe state, queues, key-value state and counters. The seed
         * list and the broadcast buckets (read only while news waits) are left out. */
        prefetch_range(n, 0, offsetof(rumor_node, bq));
        for (int c = 0; c < BCAST_CLASSES; c++)
            __builtin_prefetch(&n->bq.cls[c].count);
        prefetch_range(n, offsetof(rumor_node, seq), offsetof(rumor_node, seeds));
        prefetch_range(n, offsetof(rumor_node, nseeds), sizeof(rumor_node));
        return;
    }
    const members *t = &n->mem;
    if (level == 1) {
        /* What the state points to: our own record, our key-value origin, the output and
         * decode buffers, and the next probe target's place in the probe order. */
        __builtin_prefetch(n->self);
        __builtin_prefetch(n->kv_self);
        __builtin_prefetch(n->dq);
        __builtin_prefetch(n->dout.p);
        __builtin_prefetch(n->msgs);
        if (t->probe_idx < t->count)
            __builtin_prefetch(&t->order[t->probe_idx]);
        return;
    }
    /* The next probe target's record. */
    if (t->probe_idx < t->count)
        __builtin_prefetch(t->order[t->probe_idx]);
}

void rumor_node_prefetch_member(const rumor_node *n, const char *name, size_t len, unsigned level)
{
    if (name && len >= 1 && len <= RUMOR_NAME_MAX)
        members_prefetch(&n->mem, name, len, level);
}

int rumor_node_reserve(rumor_node *n, size_t count)
{
    if (count > n->s.members_max)
        count = n->s.members_max;
    return members_reserve(&n->mem, count) ? RUMOR_OK : RUMOR_ERR_NOMEM;
}

int rumor_node_set_meta(rumor_node *n, const uint8_t *meta, size_t len, uint64_t now)
{
    if (n->leaving)
        return RUMOR_ERR_STATE;
    if (len > n->s.meta_bytes_max)
        return RUMOR_ERR_TOO_BIG;
    if (len && !meta)
        return RUMOR_ERR_INVALID;
    n->now = now;
    if (!members_set_meta(&n->mem, n->self, meta, len))
        return RUMOR_ERR_NOMEM;
    members_set_inc(&n->mem, n->self, n->self->incarnation + 1);
    state_broadcast_alive(n, n->self);
    gossip_eager(n, now);
    return RUMOR_OK;
}

int rumor_node_receive(rumor_node *n, const rumor_addr *from, const uint8_t *data, size_t len,
                       uint64_t now)
{
    if (!from || (!data && len))
        return RUMOR_ERR_INVALID;
    n->now = now;
    n->st.packets_in++;
    n->st.bytes_in += len;
    return recv_packet(n, from, data, len, now);
}

static void leave_tick(rumor_node *n, uint64_t now)
{
    if (!n->leaving || n->leave_done)
        return;
    bool retired = n->bq.notify_retired > 0 || members_bcast(&n->mem, n->self) == NULL;
    if (retired || now >= n->leave_deadline || members_live(&n->mem) == 0) {
        n->leave_done = true;
        node_event(n, RUMOR_EVENT_LEAVE_DONE, n->self, NULL, 0);
    }
}

void rumor_node_tick(rumor_node *n, uint64_t now)
{
    n->now = now;
    if (!n->leaving)
        probe_tick(n, now);
    state_suspicion_timers(n, now);
    gossip_tick(n, now);
    sync_tick(n, now);
    kvnode_tick(n, now);
    msg_tick(n, now);
    if (now >= n->next_reap)
        state_reap(n, now);
    leave_tick(n, now);
}

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

uint64_t rumor_node_deadline(const rumor_node *n)
{
    uint64_t d = n->next_reap;
    if (!n->leaving)
        d = min64(d, probe_deadline(n));
    /* Gossip rounds only matter while there is something to send (and until a leave is done). */
    if (bcast_count(&n->bq) && !n->leave_done)
        d = min64(d, n->next_gossip);
    if (n->leaving && !n->leave_done)
        d = min64(d, n->leave_deadline);
    d = min64(d, state_suspicion_deadline(n));
    d = min64(d, sync_deadline(n));
    d = min64(d, kvnode_deadline(n));
    d = min64(d, msg_deadline(n));
    /* Datagrams queued since the host last drained them (key operation answers released by
     * rumor_node_poll_event) want sending now. */
    if (n->dq_head < n->dq_len)
        d = n->now;
    return d < n->now ? n->now : d;
}

bool rumor_node_poll_datagram(rumor_node *n, rumor_datagram *out)
{
    if (n->dq_head == n->dq_len)
        return false;
    out_dgram *d = &n->dq[n->dq_head++];
    out->to = d->to;
    out->data = n->dout.p + d->off;
    out->len = d->len;
    return true;
}

bool rumor_node_poll_stream(rumor_node *n, rumor_stream_op *out)
{
    if (n->sq_head == n->sq_len) {
        n->sq_head = n->sq_len = 0;
        buf_writer_reset(&n->sout);
        if (n->sout.cap > NODE_ARENA_KEEP)
            buf_writer_free(&n->sout);
        return false;
    }
    out_sop *op = &n->sq[n->sq_head++];
    memset(out, 0, sizeof(*out));
    out->kind = (rumor_stream_op_kind)op->kind;
    out->id = op->id;
    out->to = op->to;
    if (op->kind == RUMOR_STREAM_WRITE) {
        out->data = n->sout.p + op->off;
        out->len = op->len;
    }
    return true;
}

bool rumor_node_poll_event(rumor_node *n, rumor_event *out)
{
    if (n->keyq_taken)
        keyq_release(n); /* the host is done with the keyring-change events it took */
    rfree(&n->alloc, n->ev_last.meta);
    n->ev_last.meta = NULL;
    rfree(&n->alloc, n->ev_last.key);
    n->ev_last.key = NULL;
    rfree(&n->alloc, n->ev_last.blob);
    n->ev_last.blob = NULL;
    if (n->ev_head == n->ev_len) {
        /* A join merge can queue one event per member at once; do not keep that peak. */
        if (n->ev_cap > NODE_QUEUE_KEEP) {
            rfree(&n->alloc, n->evq);
            n->evq = NULL;
            n->ev_cap = 0;
        }
        n->ev_head = n->ev_len = 0;
        return false;
    }
    /* Copy what is used, not the whole record: a join merge at scale emits N events. */
    const ev_rec *q = &n->evq[n->ev_head++];
    ev_rec *e = &n->ev_last;
    size_t name_len = strlen(q->name), acc_len = strlen(q->accuser);
    memcpy(e->name, q->name, name_len + 1);
    memcpy(e->accuser, q->accuser, acc_len + 1);
    e->has_pk = q->has_pk;
    memcpy(e->pk, q->pk, sizeof(e->pk));
    e->meta = q->meta;
    e->key = q->key;
    e->blob = q->blob;
    out->msg_name = q->blob ? (const char *)q->blob : "";
    out->msg_name_len = q->msg_name_len;
    out->payload = q->blob && q->payload_len ? q->blob + q->msg_name_len + 1 : NULL;
    out->payload_len = q->payload_len;
    out->ltime = q->ltime;
    out->query_id = q->type == RUMOR_EVENT_KEYRING_CHANGE ? 0 : q->query_id;
    if (q->type == RUMOR_EVENT_KEYRING_CHANGE && q->query_id)
        keyq_event_taken(n, q->query_id);
    out->deadline_ms = q->deadline;
    out->query = q->qres;
    out->key = q->key;
    out->key_len = q->key_len;
    out->version = q->version;
    out->old_version = q->old_version;
    out->deleted = q->deleted;
    out->shared = q->shared;
    out->type = (rumor_event_type)q->type;
    out->at_ms = q->at;
    out->member.name = e->name;
    out->member.name_len = name_len;
    out->member.addr = q->addr;
    out->member.incarnation = q->inc;
    out->member.state = (rumor_member_state)q->state;
    out->member.meta = e->meta;
    out->member.meta_len = q->meta_len;
    out->member.state_since_ms = q->since;
    out->member.is_self = q->is_self;
    out->member.public_key = e->has_pk ? e->pk : NULL;
    memcpy(out->accuser, e->accuser, acc_len + 1);
    return true;
}
