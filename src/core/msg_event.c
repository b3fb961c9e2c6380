/*
 * User events (Serf's): a named payload for every node, ordered by the event Lamport clock,
 * spread through the application broadcast class and relayed by every node the first time it
 * sees one, delivered to each host once. Also what user events and queries share: settings,
 * the clocks a push-pull carries, and their event records.
 */
#include "core/node.h"

#include <string.h>

/* Bytes around the name and payload of a USER_EVENT in the largest datagram that carries it:
 * header with the longest label, type and length, the Lamport time (at most 9 bytes below
 * 2^63), the origin's name with its length, the name's and the payload's length prefixes. */
#define MSG_EVENT_OVERHEAD (5u + RUMOR_LABEL_MAX + 4u + 9u + 2u + RUMOR_NAME_MAX + 2u + 3u)
/* Bytes around the variable part of a QUERY: header, type and length, time, id, origin, the
 * asker's address, flags, timeout. */
#define MSG_QUERY_OVERHEAD                                                                         \
    (5u + RUMOR_LABEL_MAX + 4u + 9u + 5u + 2u + RUMOR_NAME_MAX + 1u + RUMOR_ADDR_MAX + 1u + 5u)
/* Bytes around the payload of a QUERY_RESP: header, type and length, time, id, responder,
 * flags, payload length. */
#define MSG_RESP_OVERHEAD (5u + RUMOR_LABEL_MAX + 4u + 9u + 5u + 2u + RUMOR_NAME_MAX + 1u + 3u)
/* Windows larger than this many Lamport times, and more queries held than this, would only
 * cost memory. */
#define MSG_BUFFER_MAX       (1u << 20)
#define MSG_QUERIES_MAX      (1u << 16)
#define MSG_EVENTS_PER_TIME  16u
#define MSG_QUERIES_PER_TIME 64u

bool msg_settings_valid(const rumor_settings *s)
{
    /* Every message must fit one datagram (with the sealed envelope when there are keys), or it
     * could never be sent. */
    uint64_t pkt = s->packet_bytes_max - (s->nkeys ? SEAL_DGRAM_OVERHEAD : 0u);
    if (s->identity) {
        /* The signature trailer, and the cluster's own label rather than the longest one (every
         * member shares it): the defaults fit with both sealing and identities. */
        size_t label = s->cluster_label ? strnlen(s->cluster_label, RUMOR_LABEL_MAX + 1) : 0;
        if (label > RUMOR_LABEL_MAX)
            return false;
        pkt = pkt - (1u + WIRE_SIG_BYTES) + (RUMOR_LABEL_MAX - label);
    }
    return s->event_bytes_max >= 1 && s->event_bytes_max + MSG_EVENT_OVERHEAD <= pkt &&
           s->query_bytes_max >= 16 && s->query_bytes_max + MSG_QUERY_OVERHEAD <= pkt &&
           (uint64_t)s->query_response_bytes_max + MSG_RESP_OVERHEAD <= pkt &&
           s->event_buffer >= 1 && s->event_buffer <= MSG_BUFFER_MAX && s->query_buffer >= 1 &&
           s->query_buffer <= MSG_BUFFER_MAX && s->query_timeout_mult >= 1 && s->queries_max >= 1 &&
           s->queries_max <= MSG_QUERIES_MAX && s->queries_inbound_max >= 1 &&
           s->queries_inbound_max <= MSG_QUERIES_MAX;
}

int msg_init(rumor_node *n)
{
    msg_state *g = &n->msg;
    g->next_out_id = 1;
    g->next_in_id = 1;
    /* What the windows may hold: on average 16 events of the largest size, or 64 queries, per
     * Lamport time (a hostile flood of distinct messages stops there, counted as queue_full). */
    size_t event_id = 2u + RUMOR_NAME_MAX + n->s.event_bytes_max, query_id = 5u + RUMOR_NAME_MAX;
    g->out = rcalloc(&n->alloc, n->s.queries_max, sizeof(qout *));
    if (!g->out ||
        !msg_window_init(&g->events, &n->alloc, n->s.event_buffer,
                         (size_t)n->s.event_buffer * MSG_EVENTS_PER_TIME * event_id) ||
        !msg_window_init(&g->queries, &n->alloc, n->s.query_buffer,
                         (size_t)n->s.query_buffer * MSG_QUERIES_PER_TIME * query_id))
        return RUMOR_ERR_NOMEM;
    return RUMOR_OK;
}

/* ---- what user events and queries share ---- */

ev_rec *msg_event(rumor_node *n, uint8_t type, wire_str from, wire_str name, wire_str payload)
{
    ev_rec *e = node_event_slot(n);
    if (!e)
        return NULL;
    size_t bytes = name.len + 1 + payload.len;
    uint8_t *blob = ralloc(&n->alloc, bytes);
    if (!blob)
        return NULL;
    if (name.len)
        memcpy(blob, name.p, name.len);
    blob[name.len] = 0;
    if (payload.len)
        memcpy(blob + name.len + 1, payload.p, payload.len);
    n->ev_len++;
    memset(e, 0, offsetof(ev_rec, name));
    e->type = type;
    e->at = n->now;
    e->since = n->now;
    e->blob = blob;
    e->msg_name_len = (uint16_t)name.len;
    e->payload_len = (uint32_t)payload.len;
    memcpy(e->name, from.p, from.len);
    e->name[from.len] = '\0';
    e->accuser[0] = '\0';
    const member *m = members_find(&n->mem, (const char *)from.p, from.len);
    const uint8_t *pk = m ? ident_pk(n, m) : NULL; /* identities on: the sender's key */
    e->has_pk = pk != NULL;
    if (pk)
        memcpy(e->pk, pk, sizeof(e->pk));
    if (m) {
        e->addr = m->addr;
        e->inc = m->incarnation;
        e->state = m->state;
        e->is_self = m->is_self;
    }
    return e;
}

/*
 * Rumor mongering retires a message after retransmit_mult * ceil(log10(N+1)) sends per node,
 * which leaves a residue of nodes that never hear it: s = e^-(k+1)(1-s) (Demers et al. 1987),
 * 20 % at k = 2 (the local profile below 10 nodes). Each node that sees a message first also
 * sends it at once to gossip_nodes random members, outside the queue's count, which both
 * raises k and takes a hop's worth of waiting for the next gossip round out of every relay.
 */
bool msg_spread(rumor_node *n, const buf_writer *w, uint64_t now)
{
    if (w->failed || !bcast_push(&n->bq, BCAST_CLASS_APP, w->p, w->len, NULL, false))
        return false;
    n->st.broadcasts_queued++;
    gossip_eager(n, now);
    if (n->pkt_head + w->len > n->pkt_max)
        return true; /* only gossip can carry it, in a packet of its own */
    member *targets[64];
    size_t k = n->s.gossip_nodes < 64 ? n->s.gossip_nodes : 64;
    size_t nt = gossip_pick(n, targets, k, NULL, false, now);
    for (size_t i = 0; i < nt; i++) {
        if (n->from && rumor_addr_equal(&targets[i]->addr, n->from))
            continue; /* it came from there */
        uint64_t dest = node_dest(n, targets[i]);
        if (!node_dest_ready(n, dest))
            continue; /* it would be refused (stale_epoch); gossip rounds will carry it */
        if (!node_pkt_begin(n, &targets[i]->addr, dest))
            break;
        buf_put_bytes(node_pkt(n), w->p, w->len);
        node_pkt_end(n, false);
    }
    return true;
}

/* ---- clocks ---- */

void msg_put_clocks(rumor_node *n, buf_writer *w, bool join)
{
    msg_state *g = &n->msg;
    wire_put_clocks(w, join ? WIRE_CLK_NO_REPLAY : 0, g->event_clock, g->query_clock,
                    msg_window_sum(&g->events, g->event_clock));
}

void msg_join_floor(rumor_node *n)
{
    msg_state *g = &n->msg;
    if (g->floor_set)
        return;
    g->floor_set = true;
    g->event_floor = g->event_clock;
}

/* A push-pull carries both clocks, so a node that joins (or restarts) starts past every time
 * its peer has seen: its first event is then newer than the cluster's, not stale. */
void msg_on_clocks(rumor_node *n, const wire_msg *m)
{
    msg_state *g = &n->msg;
    /* A CLOCKS value is the next time its sender will use, not a time it has used: take it as
     * it is. Witnessing it (value + 1) would push both clocks up by one at every exchange
     * between equal clocks, so quiet clusters' clocks would creep and a window of W times
     * would cover less and less real time. */
    if (m->u.clocks.event_ltime > g->event_clock)
        g->event_clock = m->u.clocks.event_ltime;
    if (m->u.clocks.query_ltime > g->query_clock)
        g->query_clock = m->u.clocks.query_ltime;
    g->peer_set = true;
    g->peer_flags = m->u.clocks.flags;
    g->peer_sum = m->u.clocks.event_sum;
}

/* Re-encodes a remembered user event from its identity (see admit_event). */
static bool put_remembered(buf_writer *w, uint64_t ltime, const msg_seen *it, size_t room)
{
    const uint8_t *p = it->id;
    size_t olen = p[0];
    if (it->len < 2u + olen || 2u + olen + p[1 + olen] > it->len)
        return false;
    size_t nlen = p[1 + olen];
    wire_str origin = wire_str_of(p + 1, olen), name = wire_str_of(p + 2 + olen, nlen);
    wire_str payload = wire_str_of(p + 2 + olen + nlen, it->len - 2u - olen - nlen);
    /* type, length, time, and the three length prefixes bound the overhead */
    size_t sig = it->sig ? 1u + WIRE_SIG_BYTES : 0u;
    if (it->len + 1u + 3u + 10u + 3u * 3u + sig > room)
        return false;
    /* With the origin's signature it was stored with: the receiver checks it as any other. */
    wire_put_user_event_sig(w, ltime, origin, name, payload, it->sig ? it->id + it->len : NULL);
    return true;
}

size_t msg_put_events(rumor_node *n, buf_writer *w, bool reply, size_t room)
{
    msg_state *g = &n->msg;
    bool asked = g->peer_set && reply && !(g->peer_flags & WIRE_CLK_NO_REPLAY);
    g->peer_set = false;
    size_t count = 0;
    if (!asked || g->peer_sum == msg_window_sum(&g->events, g->event_clock))
        return count;
    uint64_t lo = msg_window_low(&g->events, g->event_clock);
    for (uint32_t i = 0; i < g->events.size; i++) {
        const msg_slot *s = &g->events.slots[i];
        for (size_t k = 0; s->ltime >= lo && k < s->n; k++, count++) {
            size_t before = w->len;
            if (!put_remembered(w, s->ltime, &s->items[k], room))
                return count;
            room -= w->len - before;
        }
    }
    return count;
}

/* ---- user events ---- */

/* What makes two user events at one Lamport time the same event: origin, name and payload
 * (each length-prefixed, so that no two triples concatenate alike). */
static msg_admit admit_event(rumor_node *n, uint64_t ltime, wire_str origin, wire_str name,
                             wire_str payload, const uint8_t *sig, bool peek)
{
    uint8_t olen = (uint8_t)origin.len, nlen = (uint8_t)name.len;
    wire_str parts[5] = {wire_str_of(&olen, 1), origin, wire_str_of(&nlen, 1), name, payload};
    if (peek)
        return msg_window_peek(&n->msg.events, n->msg.event_clock, ltime, parts, 5);
    return msg_window_admit_sig(&n->msg.events, &n->alloc, n->msg.event_clock, ltime, parts, 5,
                                sig);
}

/* Delivers a new user event to the host. */
static void deliver_event(rumor_node *n, uint64_t ltime, wire_str origin, wire_str name,
                          wire_str payload)
{
    ev_rec *e = msg_event(n, RUMOR_EVENT_USER, origin, name, payload);
    if (!e)
        return;
    e->ltime = ltime;
    n->st.user_events_delivered++;
}

void msg_on_user_event(rumor_node *n, const wire_msg *m, uint64_t now)
{
    uint64_t lt = m->u.user_event.ltime;
    wire_str origin = m->u.user_event.origin, name = m->u.user_event.name;
    wire_str payload = m->u.user_event.payload;
    n->st.user_events_received++;
    /* The window keeps what it remembers whole (push-pull sends it again), so a node takes no
     * event larger than it would send itself: a cluster shares one limit. */
    if (name.len + payload.len > n->s.event_bytes_max) {
        node_drop(n, RUMOR_DROP_OVERSIZE);
        return;
    }
    const uint8_t *sig = wire_msg_sig(m);
    /* With identities, an event is checked against its origin's key the first time it is seen
     * (a duplicate or stale copy is not verified again), before its time may move our clock,
     * before it is remembered, relayed or delivered: a relay cannot make one in another's name. */
    if (n->ident) {
        switch (admit_event(n, lt, origin, name, payload, NULL, true)) {
        case MSG_STALE:
            n->st.user_events_stale++;
            node_drop(n, RUMOR_DROP_STALE);
            return;
        case MSG_DUP:
            return;
        default:
            break;
        }
        if (ident_msg_check(n, m) != IDENT_OK)
            return;
    }
    msg_witness(&n->msg.event_clock, lt);
    switch (admit_event(n, lt, origin, name, payload, sig, false)) {
    case MSG_NEW:
        break;
    case MSG_STALE:
        n->st.user_events_stale++;
        node_drop(n, RUMOR_DROP_STALE);
        return;
    case MSG_FULL:
        node_drop(n, RUMOR_DROP_QUEUE_FULL);
        return;
    default:
        return; /* a duplicate: gossip delivers most events several times */
    }
    /* Reserved names belong to the engine, which sends no events of its own (yet): a newer
     * version's or a forgery. Not for the host, and not passed on. */
    if (rumor_name_reserved((const char *)name.p, name.len)) {
        n->st.reserved_refused++;
        node_drop(n, RUMOR_DROP_UNKNOWN_TYPE);
        return;
    }
    /* Repair (a push-pull frame, no sender address) hands on what the peer's window holds: one
     * from before our first join is remembered, so that the windows' sums agree, but the join
     * asked for no past events (NO_REPLAY), and no later exchange brings them either. */
    if (!n->from && lt < n->msg.event_floor)
        return;
    /* First sight: pass it on, then tell the host. */
    uint8_t tmp[RUMOR_PACKET_MAX];
    buf_writer w;
    buf_writer_init_fixed(&w, tmp, sizeof(tmp));
    wire_put_user_event_sig(&w, lt, origin, name, payload, sig);
    msg_spread(n, &w, now);
    deliver_event(n, lt, origin, name, payload);
}

int rumor_node_event(rumor_node *n, const char *name, const void *payload, size_t len, uint64_t now)
{
    size_t name_len = name ? strlen(name) : 0;
    if (name_len == 0 || name_len > RUMOR_EVENT_NAME_MAX || (len && !payload) ||
        rumor_name_reserved(name, name_len))
        return RUMOR_ERR_INVALID;
    if (name_len + len > n->s.event_bytes_max)
        return RUMOR_ERR_TOO_BIG;
    if (n->leaving)
        return RUMOR_ERR_STATE;
    n->now = now;
    msg_state *g = &n->msg;
    uint64_t lt = g->event_clock;
    wire_str origin = node_self_name(n), nm = wire_str_of(name, name_len);
    wire_str pl = wire_str_of(payload, len);
    uint8_t sigb[WIRE_SIG_BYTES];
    const uint8_t *sig = NULL;
    if (n->ident) {
        ident_event_sign(n, lt, nm, pl, sigb);
        sig = sigb;
    }
    if (admit_event(n, lt, origin, nm, pl, sig, false) != MSG_NEW)
        return RUMOR_ERR_NOMEM; /* a fresh time is never stale nor seen: only memory fails */
    uint8_t tmp[RUMOR_PACKET_MAX];
    buf_writer w;
    buf_writer_init_fixed(&w, tmp, sizeof(tmp));
    wire_put_user_event_sig(&w, lt, origin, nm, pl, sig);
    if (!msg_spread(n, &w, now)) {
        msg_window_unadmit(&g->events, &n->alloc, lt);
        return RUMOR_ERR_NOMEM;
    }
    g->event_clock = lt + 1;
    n->st.user_events_sent++;
    /* Serf delivers an event on the node that sent it too. */
    deliver_event(n, lt, origin, nm, pl);
    return RUMOR_OK;
}
