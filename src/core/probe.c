/*
 * Failure detection (SWIM §4.1, §4.3; Lifeguard §IV-A). Once per probe interval the node picks
 * the next member of the randomized round-robin order and pings it. Without an ack inside the
 * probe timeout it asks k others to ping-req it and, when enabled, tries a ping over a stream.
 * Without any ack by the end of the interval, the member is suspected.
 *
 * Local health awareness: a probe's timeout and the time it is given before its member is
 * suspected are multiplied by (score + 1). A failed probe raises the score by the nacks that did
 * not come back (if we asked for nacks, the helpers' silence means our own network is the
 * problem) or by one; a successful probe lowers it; being accused ourselves raises it. As in
 * memberlist, whose probes run off a fixed one-interval ticker, the score stretches only the
 * probes that go unanswered: an answered probe is followed one plain interval after it started.
 */
#include "core/node.h"

#include <string.h>

void probe_awareness(rumor_node *n, int delta)
{
    int64_t v = (int64_t)n->awareness + delta;
    if (v < 0)
        v = 0;
    if (v > (int64_t)n->s.awareness_max - 1)
        v = (int64_t)n->s.awareness_max - 1;
    n->awareness = (uint32_t)v;
}

static bool probeable(const member *m)
{
    return !m->is_self && (m->state == RUMOR_MEMBER_ALIVE || m->state == RUMOR_MEMBER_SUSPECT);
}

/* The next member in probe order, reshuffling at the end of a round (SWIM §4.3). */
static member *next_target(rumor_node *n)
{
    members *t = &n->mem;
    for (size_t tries = 0; tries < t->count + 1; tries++) {
        if (t->probe_idx >= t->count)
            members_shuffle(t, &n->rng);
        member *m = t->order[t->probe_idx++];
        if (probeable(m))
            return m;
    }
    return NULL;
}

/*
 * A suspicion we have held for two probe intervals without its refutation reaching us: probe
 * the member ourselves, once. The ping carries the accusation (buddy system), so a live member
 * answers with its newer incarnation; a dead one fails our probe, an independent confirmation
 * that shortens the suspicion (Lifeguard §IV-B).
 */
static member *stuck_suspect(rumor_node *n, uint64_t now)
{
    uint64_t held = 2ull * n->s.probe_interval_ms;
    for (size_t i = 0; i < n->nsusps; i++) {
        suspicion *s = n->susps[i];
        if (!s->probed && now >= s->start + held) {
            s->probed = true;
            return s->m;
        }
    }
    return NULL;
}

static void send_ping(rumor_node *n, const member *target, uint32_t seq, uint64_t now)
{
    if (!node_pkt_begin(n, &target->addr, node_dest(n, target)))
        return;
    buf_writer *w = node_pkt(n);
    wire_str tname = wire_str_of(member_name(target), target->name_len);
    wire_put_ping(w, seq, tname, node_self_name(n));
    /* Lifeguard's buddy system: tell a suspect directly so it can refute at once. (Not to a
     * member whose epoch we do not know: it would refuse all but the PING, section 3.1.4.) */
    if (target->state == RUMOR_MEMBER_SUSPECT && n->cur_ready) {
        uint8_t sig[WIRE_SIG_BYTES];
        if (n->ident)
            ident_accuse_sign(n, WIRE_SUSPECT, target->incarnation, tname, sig);
        wire_put_accuse_ident(w, WIRE_SUSPECT, target->incarnation, tname, node_self_name(n),
                              n->ident ? sig : NULL);
    }
    /* Key-value anti-entropy starts on the ping: the target is a random member anyway. */
    if (n->cur_ready)
        kvnode_piggyback(n, w, now);
    node_pkt_end(n, true);
}

static void probe_start(rumor_node *n, uint64_t now)
{
    member *m = stuck_suspect(n, now);
    if (!m)
        m = next_target(n);
    if (!m) {
        n->next_probe = now + n->s.probe_interval_ms;
        return;
    }
    probe_state *p = &n->probe;
    memset(p, 0, sizeof(*p));
    p->active = true;
    p->target = m;
    p->target_inc = m->incarnation;
    p->seq = ++n->seq;
    p->start = now;
    p->timeout_at = now + node_scale(n, n->s.probe_timeout_ms);
    p->end_at = now + node_scale(n, n->s.probe_interval_ms);
    n->next_probe = p->end_at;
    n->st.probes++;
    send_ping(n, m, p->seq, now);
}

static void probe_indirect(rumor_node *n, uint64_t now)
{
    probe_state *p = &n->probe;
    p->indirect_sent = true;
    member *t = p->target;
    if (!t)
        return;
    member *helpers[16];
    uint32_t k = n->s.indirect_checks < 16 ? n->s.indirect_checks : 16;
    size_t nh = gossip_pick(n, helpers, k, t, false, now);
    wire_str tname = wire_str_of(member_name(t), t->name_len);
    for (size_t i = 0; i < nh; i++) {
        if (!node_pkt_begin(n, &helpers[i]->addr, node_dest(n, helpers[i])))
            break;
        wire_put_ping_req(node_pkt(n), p->seq, tname, &t->addr, true, node_self_name(n));
        node_pkt_end(n, true);
        p->expected_nacks++;
        n->st.indirect_probes++;
    }
    if (n->s.stream_fallback && sync_ping(n, t, p->seq, now) == RUMOR_OK)
        n->st.stream_probes++;
}

static void probe_fail(rumor_node *n, uint64_t now)
{
    probe_state *p = &n->probe;
    p->active = false;
    n->st.probe_failures++;
    if (p->expected_nacks > 0)
        probe_awareness(n, (int)(p->expected_nacks - p->nacks));
    else
        probe_awareness(n, 1);
    member *t = p->target;
    /* The member refuted, restarted or was declared failed meanwhile: this probe's silence
     * says nothing about its current life. */
    if (!t || !probeable(t) || t->incarnation != p->target_inc)
        return;
    if (t->state == RUMOR_MEMBER_ALIVE)
        n->st.suspicions++;
    state_suspect(n, t->incarnation, wire_str_of(member_name(t), t->name_len), node_self_name(n),
                  NULL, now);
}

void probe_tick(rumor_node *n, uint64_t now)
{
    probe_state *p = &n->probe;
    if (p->active && !p->acked && !p->indirect_sent && now >= p->timeout_at)
        probe_indirect(n, now);
    if (p->active && !p->acked && now >= p->end_at)
        probe_fail(n, now);
    if (!p->active && now >= n->next_probe)
        probe_start(n, now);
    /* Relays whose target stayed silent: tell the requester, if it asked (Lifeguard §IV-A),
     * and keep passing on a late ack until the probe timeout. */
    for (size_t i = 0; i < n->nrelays;) {
        relay *r = &n->relays[i];
        if (r->nack_at && now >= r->nack_at) {
            r->nack_at = 0;
            if (r->nack && node_pkt_begin(n, &r->to, r->to_id)) {
                wire_put_ack(node_pkt(n), WIRE_NACK, r->orig_seq);
                node_pkt_end(n, true);
            }
        }
        if (r->deadline > now) {
            i++;
            continue;
        }
        n->relays[i] = n->relays[--n->nrelays];
    }
}

uint64_t probe_deadline(const rumor_node *n)
{
    const probe_state *p = &n->probe;
    uint64_t d = n->next_probe;
    if (p->active && !p->acked) {
        d = p->indirect_sent ? p->end_at : p->timeout_at;
    }
    for (size_t i = 0; i < n->nrelays; i++) {
        const relay *r = &n->relays[i];
        uint64_t rd = r->nack_at ? r->nack_at : r->deadline;
        if (rd < d)
            d = rd;
    }
    return d;
}

void probe_on_ping(rumor_node *n, const rumor_addr *from, const wire_msg *m, uint64_t now)
{
    (void)now;
    wire_str t = m->u.ping.target;
    if (t.len && (t.len != n->name_len || memcmp(t.p, n->name, t.len) != 0)) {
        /* A ping for a name that is not ours: the sender's view of this address is stale. */
        node_drop(n, RUMOR_DROP_NOT_FOR_US);
        return;
    }
    if (node_pkt_begin(n, from, n->from_id)) {
        wire_put_ack(node_pkt(n), WIRE_ACK, m->u.ping.seq);
        node_pkt_end(n, true);
    }
    /* A member that knows us but is unknown to us: the news of its join was spent before it
     * reached us. Sync with it now instead of waiting for the next periodic push-pull. */
    wire_str snd = m->u.ping.sender;
    if (!members_find(&n->mem, (const char *)snd.p, snd.len))
        sync_learn(n, from, now);
}

void probe_on_ping_req(rumor_node *n, const rumor_addr *from, const wire_msg *m, uint64_t now)
{
    if (n->nrelays >= NODE_RELAYS_MAX) {
        node_drop(n, RUMOR_DROP_QUEUE_FULL);
        return;
    }
    void *arr = n->relays;
    if (!rgrow(&n->alloc, &arr, &n->relays_cap, n->nrelays + 1, sizeof(relay)))
        return;
    n->relays = arr;
    relay *r = &n->relays[n->nrelays++];
    r->seq = ++n->seq;
    r->orig_seq = m->u.ping_req.seq;
    r->to = *from;
    r->to_id = n->from_id;
    r->nack = m->u.ping_req.nack;
    r->deadline = now + n->s.probe_timeout_ms;
    /* The requester sent this one probe timeout into its probe and stops counting nacks one
     * probe interval after its start. A nack sent a full timeout from now would land just
     * after that on a LAN (0.5 + 0.5 s of a 1 s interval), so every real crash would read to
     * the requester as its own fault (the race the Lifeguard paper's footnote 5 and
     * swift-cluster-membership#6 describe; memberlist has it too). Report silence at 4/5 of
     * what the requester has left (assuming our own timing settings); a later ack is still
     * passed on until the timeout. */
    uint32_t left = n->s.probe_interval_ms > n->s.probe_timeout_ms
                        ? n->s.probe_interval_ms - n->s.probe_timeout_ms
                        : n->s.probe_timeout_ms;
    if (left > n->s.probe_timeout_ms)
        left = n->s.probe_timeout_ms;
    r->nack_at = now + (uint64_t)left * 4 / 5;
    if (r->nack_at <= now)
        r->nack_at = now + 1;
    n->st.indirect_relayed++;
    if (!node_pkt_begin(n, &m->u.ping_req.target_addr, node_dest_name(n, m->u.ping_req.target)))
        return;
    wire_put_ping(node_pkt(n), r->seq, m->u.ping_req.target, node_self_name(n));
    node_pkt_end(n, true);
}

void probe_on_ack(rumor_node *n, uint32_t seq, uint64_t now)
{
    probe_state *p = &n->probe;
    if (p->active && !p->acked && seq == p->seq) {
        n->st.acks_in++;
        p->acked = true;
        p->active = false;
        probe_awareness(n, -1);
        /* The next probe follows one interval after this one started, unscaled: a raised
         * score must not thin out the probing of the cluster (memberlist's ticker does not
         * slow down either), or the next crash goes unnoticed for longer. */
        uint64_t next = p->start + n->s.probe_interval_ms;
        n->next_probe = next > now ? next : now;
        return;
    }
    for (size_t i = 0; i < n->nrelays; i++) {
        relay *r = &n->relays[i];
        if (r->seq != seq)
            continue;
        n->st.acks_in++;
        if (node_pkt_begin(n, &r->to, r->to_id)) {
            wire_put_ack(node_pkt(n), WIRE_ACK, r->orig_seq);
            node_pkt_end(n, true);
        }
        n->relays[i] = n->relays[--n->nrelays];
        return;
    }
    node_drop(n, RUMOR_DROP_STALE);
}

void probe_on_nack(rumor_node *n, uint32_t seq)
{
    probe_state *p = &n->probe;
    if (p->active && seq == p->seq) {
        n->st.nacks_in++;
        p->nacks++;
    }
}
