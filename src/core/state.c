/*
 * Membership rules: how alive, suspect, failed and left news changes the table (SWIM §4.2 with
 * incarnation numbers, memberlist's aliveNode/suspectNode/deadNode), Lifeguard's dynamic
 * suspicion timeout (§IV-B), refutation, and reaping.
 *
 * The order of precedence for news about one member: a higher incarnation always wins; at equal
 * incarnation left and failed override suspect, which overrides alive. Only the member itself
 * raises its incarnation, so it alone can clear a suspicion or come back from failed.
 */
#include "core/node.h"

#include <math.h>
#include <string.h>

/* Big enough for any single membership message: name, address and metadata plus headers, and
 * an identity trailer. */
#define STATE_MSG_MAX                                                                              \
    (RUMOR_META_MAX + 2 * RUMOR_NAME_MAX + RUMOR_ADDR_MAX + 64 + 1 + WIRE_IDENT_BLOCK_MAX)

static member *find(rumor_node *n, wire_str name)
{
    return members_find(&n->mem, (const char *)name.p, name.len);
}

static wire_str name_of(const member *m)
{
    return wire_str_of(member_name(m), m->name_len);
}

static wire_str meta_of(const rumor_node *n, const member *m)
{
    size_t len;
    const uint8_t *p = members_meta(&n->mem, m, &len);
    return wire_str_of(p, len);
}

static uint32_t hash_name(wire_str s)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < s.len; i++) {
        h ^= s.p[i];
        h *= 16777619u;
    }
    return h;
}

static void queue(rumor_node *n, member *m, const buf_writer *w, bool notify)
{
    member_ext *x = w->failed ? NULL : members_ext_get(&n->mem, m);
    if (!x)
        return;
    if (!bcast_push(&n->bq, BCAST_CLASS_MEMBER, w->p, w->len, &x->bcast, notify)) {
        members_ext_trim(&n->mem, m);
        return;
    }
    n->st.broadcasts_queued++;
    gossip_eager(n, n->now);
}

/* Writes `m`'s alive record with its owner's signature when identities are on; returns false
 * (writing nothing) when we hold no signed claim to pass on. */
static bool put_alive(rumor_node *n, buf_writer *w, const member *m)
{
    wire_ident id;
    if (!ident_claim(n, m, &id) && n->ident)
        return false;
    wire_put_alive_ident(w, m->incarnation, name_of(m), &m->addr, meta_of(n, m), &id);
    return true;
}

void state_broadcast_alive(rumor_node *n, member *m)
{
    uint8_t tmp[STATE_MSG_MAX];
    buf_writer w;
    buf_writer_init_fixed(&w, tmp, sizeof(tmp));
    if (put_alive(n, &w, m))
        queue(n, m, &w, false);
    if (m == n->self)
        n->self_told = true;
}

/*
 * With identities a member's record travels only with its owner's signed claim (push-pull
 * leaves out members whose claim we do not hold). A node started from restored members
 * (rumor_node_restore, a warm start) never announced itself, so its claim is held only by the
 * few that exchanged state with it, and a member that (re)joins without a snapshot would not
 * learn it for many push-pull rounds: it would drop its key-value state as a non-member's and
 * never converge. So until our claim has been gossiped, we introduce ourselves to each member
 * that joins or starts a new incarnation (a restart shows as one, found failed or not yet): one
 * datagram with our signed alive record, which it verifies like any.
 */
static void introduce_self(rumor_node *n, const member *m)
{
    if (n->ident && !n->self_told && !m->is_self && m->state == RUMOR_MEMBER_ALIVE)
        (void)node_send_self(n, &m->addr, node_dest(n, m), false);
}

/*
 * The signature an accusation or leave about `m` travels with: a leave carries its owner's, an
 * accusation its accuser's — ours when `id` is NULL (we make it), else the one it arrived with.
 * NULL when identities are off, or nothing can be shown.
 */
static const uint8_t *accuse_sig(rumor_node *n, uint8_t type, const member *m, const wire_ident *id,
                                 uint8_t *buf)
{
    if (!n->ident)
        return NULL;
    if (type == WIRE_LEFT) {
        wire_ident claim;
        return ident_claim(n, m, &claim) ? claim.sig : NULL;
    }
    if (id)
        return id->present ? id->sig : NULL;
    ident_accuse_sign(n, type, m->incarnation, name_of(m), buf);
    return buf;
}

static void broadcast_accuse(rumor_node *n, uint8_t type, member *m, wire_str accuser,
                             const wire_ident *id, bool notify)
{
    uint8_t tmp[STATE_MSG_MAX], sigbuf[WIRE_SIG_BYTES];
    const uint8_t *sig = accuse_sig(n, type, m, id, sigbuf);
    if (n->ident && !sig)
        return;
    buf_writer w;
    buf_writer_init_fixed(&w, tmp, sizeof(tmp));
    wire_put_accuse_ident(&w, type, m->incarnation, name_of(m), accuser, sig);
    queue(n, m, &w, notify);
}

/* ---- suspicion (Lifeguard §IV-B) ---- */

/*
 * The cluster size the suspicion timeout is computed for: the live members and those failed or
 * left within gossip_to_dead_ms. memberlist counts its whole node list, which keeps the dead for
 * GossipToTheDeadTime; counting only the live would make a crash right after another one time
 * out sooner than memberlist's (N = 16 with one just failed: 4.70 s instead of 4.82 s).
 */
static uint32_t suspicion_n(const rumor_node *n, uint64_t now)
{
    uint32_t nn = members_live(&n->mem);
    for (size_t i = 0; i < n->mem.ndead; i++) {
        const member *m = n->mem.dead[i];
        if (!m->is_self && now < m->state_since + n->s.gossip_to_dead_ms)
            nn++;
    }
    return nn;
}

static uint32_t suspicion_min_ms(const rumor_node *n, uint32_t nodes)
{
    /* SuspicionMult × max(1, log10 N) × ProbeInterval, as memberlist computes it. */
    double nn = (double)nodes;
    double f = nn > 10.0 ? log10(nn) : 1.0;
    return (uint32_t)(n->s.suspicion_mult * f * n->s.probe_interval_ms);
}

static uint64_t suspicion_timeout(const suspicion *s)
{
    if (s->k == 0 || s->n == 0)
        return s->k == 0 ? s->min_ms : s->max_ms;
    double frac = log((double)s->n + 1.0) / log((double)s->k + 1.0);
    double raw = (double)s->max_ms - frac * (double)(s->max_ms - s->min_ms);
    return raw < s->min_ms ? s->min_ms : (uint64_t)raw;
}

static void suspicion_start(rumor_node *n, member *m, wire_str accuser, uint64_t now)
{
    void *arr = n->susps;
    if (!rgrow(&n->alloc, &arr, &n->susps_cap, n->nsusps + 1, sizeof(suspicion *)))
        return;
    n->susps = arr;
    member_ext *x = members_ext_get(&n->mem, m);
    if (!x)
        return;
    suspicion *s = rcalloc(&n->alloc, 1, sizeof(*s));
    if (!s) {
        members_ext_trim(&n->mem, m);
        return;
    }
    s->m = m;
    s->start = now;
    uint32_t nodes = suspicion_n(n, now);
    s->min_ms = suspicion_min_ms(n, nodes);
    s->max_ms = s->min_ms * n->s.suspicion_max_mult;
    /* Lifeguard expects SuspicionMult − 2 independent confirmations in a healthy cluster; with
     * fewer other members than that nobody could confirm, so expect none (memberlist). */
    s->k = n->s.suspicion_mult > 2 ? n->s.suspicion_mult - 2 : 0;
    uint32_t others = nodes > 2 ? nodes - 2 : 0;
    if (others < s->k)
        s->k = 0;
    s->confirmers[s->nconfirmers++] = hash_name(accuser);
    s->deadline = now + suspicion_timeout(s);
    s->idx = (uint32_t)n->nsusps;
    n->susps[n->nsusps++] = s;
    x->susp = s;
}

/* Whether `accuser` would be a new independent confirmation. */
static bool suspicion_is_new(const suspicion *s, wire_str accuser)
{
    if (s->n >= s->k || s->nconfirmers >= NODE_CONFIRMERS_MAX)
        return false;
    uint32_t h = hash_name(accuser);
    for (uint32_t i = 0; i < s->nconfirmers; i++)
        if (s->confirmers[i] == h)
            return false;
    return true;
}

/* Counts an independent confirmation; returns true when it was new. */
static bool suspicion_confirm(suspicion *s, wire_str accuser)
{
    if (!suspicion_is_new(s, accuser))
        return false;
    uint32_t h = hash_name(accuser);
    s->confirmers[s->nconfirmers++] = h;
    s->n++;
    s->deadline = s->start + suspicion_timeout(s);
    return true;
}

static void suspicion_stop(rumor_node *n, member *m)
{
    member_ext *x = members_ext(&n->mem, m);
    suspicion *s = x ? x->susp : NULL;
    if (!s)
        return;
    size_t last = --n->nsusps;
    if (s->idx != last) {
        n->susps[s->idx] = n->susps[last];
        n->susps[s->idx]->idx = s->idx;
    }
    rfree(&n->alloc, s);
    x->susp = NULL;
    members_ext_trim(&n->mem, m);
}

void state_suspicion_timers(rumor_node *n, uint64_t now)
{
    for (size_t i = 0; i < n->nsusps;) {
        suspicion *s = n->susps[i];
        if (s->deadline > now) {
            i++;
            continue;
        }
        /* Timed out: declare the member failed in our own name. This removes susps[i]. */
        member *m = s->m;
        state_failed(n, m->incarnation, name_of(m), node_self_name(n), NULL, now);
        if (members_susp(&n->mem, m) == s) /* not applied (out of memory): do not spin on it */
            suspicion_stop(n, m);
    }
}

uint64_t state_suspicion_deadline(const rumor_node *n)
{
    uint64_t d = NODE_NEVER;
    for (size_t i = 0; i < n->nsusps; i++)
        if (n->susps[i]->deadline < d)
            d = n->susps[i]->deadline;
    return d;
}

/* ---- news ---- */

void state_refute(rumor_node *n, uint32_t accused_inc, uint64_t now)
{
    member *self = n->self;
    uint32_t inc = (accused_inc > self->incarnation ? accused_inc : self->incarnation) + 1;
    members_set_inc(&n->mem, self, inc);
    self->state_since = now;
    n->st.refutes++;
    state_broadcast_alive(n, self);
}

static bool same_meta(const rumor_node *n, const member *m, wire_str meta)
{
    wire_str cur = meta_of(n, m);
    return cur.len == meta.len && (meta.len == 0 || memcmp(cur.p, meta.p, meta.len) == 0);
}

/* A member back at a higher incarnation (or new to the table) may have restarted: until it speaks
 * to us itself, our datagrams do not name the epoch we knew, so news waits for a hello's answer
 * instead of being refused as stale_epoch (docs/protocol.md section 3.1.4). Not when the claim
 * came from the member itself: its datagram just told us its current epoch. */
static void doubt_epoch(rumor_node *n, const member *m)
{
    uint64_t id = node_dest(n, m);
    if (id && id != n->from_id)
        seal_doubt_epoch(&n->seal, id);
}

void state_alive_new(rumor_node *n, wire_str name, uint32_t inc, const rumor_addr *addr,
                     wire_str meta, bool quiet, const wire_ident *id, uint64_t now)
{
    if (n->mem.count >= n->s.members_max) {
        node_drop(n, RUMOR_DROP_QUEUE_FULL);
        return;
    }
    member *m = members_add(&n->mem, (const char *)name.p, name.len, &n->rng);
    if (!m)
        return;
    ident_forget(n, m); /* a fresh record: nothing of an earlier holder of this slot */
    if (!members_set_meta(&n->mem, m, meta.p, meta.len)) {
        members_remove(&n->mem, m);
        return;
    }
    m->addr = *addr;
    members_set_inc(&n->mem, m, inc);
    m->state_since = now;
    doubt_epoch(n, m);
    ident_alive_keep(n, m, id);
    if (!quiet) {
        state_broadcast_alive(n, m);
        introduce_self(n, m);
    }
    node_event(n, RUMOR_EVENT_MEMBER_JOIN, m, NULL, 0);
}

/*
 * A restored member (rumor_node_restore) has no signed claim yet: the first valid one for the
 * incarnation we hold attaches its key and signature, and its address and metadata, without
 * changing its state.
 */
static void attach_claim(rumor_node *n, member *m, const rumor_addr *addr, wire_str meta,
                         const wire_ident *id)
{
    bool changed = !same_meta(n, m, meta) || !rumor_addr_equal(addr, &m->addr);
    if (!members_set_meta(&n->mem, m, meta.p, meta.len))
        return;
    m->addr = *addr;
    ident_alive_keep(n, m, id);
    if (changed && (m->state == RUMOR_MEMBER_ALIVE || m->state == RUMOR_MEMBER_SUSPECT))
        node_event(n, RUMOR_EVENT_MEMBER_UPDATE, m, NULL, 0);
}

void state_alive(rumor_node *n, uint32_t inc, wire_str name, const rumor_addr *addr, wire_str meta,
                 const wire_ident *id, uint64_t now)
{
    member *m = find(n, name);
    if (!m) {
        if (ident_alive_ok(n, NULL, inc, name, addr, meta, id))
            state_alive_new(n, name, inc, addr, meta, false, id, now);
        return;
    }
    if (m->is_self) {
        /* Someone speaks of an older or different life of ours (a restart, a replay):
         * outbid it so our current record wins everywhere. With identities, only a life we
         * signed ourselves counts: a forged one is refused (and refused by everyone). */
        bool same =
            inc == m->incarnation && rumor_addr_equal(addr, &m->addr) && same_meta(n, m, meta);
        if (!n->leaving && inc >= m->incarnation && !same &&
            ident_alive_ok(n, m, inc, name, addr, meta, id))
            state_refute(n, inc, now);
        return;
    }
    bool unverified = ident_unverified(n, m);
    if (inc < m->incarnation || (inc == m->incarnation && !unverified))
        return;
    if (!ident_alive_ok(n, m, inc, name, addr, meta, id))
        return;
    if (inc == m->incarnation) {
        attach_claim(n, m, addr, meta, id);
        return;
    }
    bool changed = !same_meta(n, m, meta) || !rumor_addr_equal(addr, &m->addr);
    if (!members_set_meta(&n->mem, m, meta.p, meta.len))
        return;
    uint8_t old = m->state;
    if (!members_set_state(&n->mem, m, RUMOR_MEMBER_ALIVE, now))
        return;
    m->addr = *addr;
    members_set_inc(&n->mem, m, inc);
    doubt_epoch(n, m);
    suspicion_stop(n, m);
    ident_alive_keep(n, m, id);
    state_broadcast_alive(n, m);
    introduce_self(n, m); /* a new life of it may have started empty (a restart) */
    if (old == RUMOR_MEMBER_FAILED || old == RUMOR_MEMBER_LEFT)
        node_event(n, RUMOR_EVENT_MEMBER_JOIN, m, NULL, 0);
    else if (old == RUMOR_MEMBER_SUSPECT)
        node_event(n, RUMOR_EVENT_MEMBER_ALIVE, m, NULL, 0);
    if (changed && old != RUMOR_MEMBER_FAILED && old != RUMOR_MEMBER_LEFT)
        node_event(n, RUMOR_EVENT_MEMBER_UPDATE, m, NULL, 0);
}

/*
 * The sender accuses an older life of `m`, which we know alive at a higher incarnation: the
 * refutation did not reach it (loss), and its suspicion would expire into a false failure.
 * Answer it directly with what we know rather than hope gossip gets there in time (feedback,
 * Demers et al. §1.4). Only datagrams carry a reply address; news inside streams does not.
 */
static void tell_alive(rumor_node *n, const member *m)
{
    wire_ident id;
    if (!n->from || n->leaving || m->state != RUMOR_MEMBER_ALIVE ||
        (!ident_claim(n, m, &id) && n->ident) || !node_pkt_begin(n, n->from, n->from_id))
        return;
    wire_put_alive_ident(node_pkt(n), m->incarnation, name_of(m), &m->addr, meta_of(n, m), &id);
    node_pkt_end(n, true);
}

/*
 * What suspect and failed news have in common: unknown members are ignored, a stale accusation
 * is answered, an accusation of ourselves is refuted, and news about a member already failed or
 * gone changes nothing. Returns the member the news applies to, or NULL when it was handled.
 */
static member *accused(rumor_node *n, uint8_t type, uint32_t inc, wire_str name, wire_str accuser,
                       const wire_ident *id, uint64_t now)
{
    member *m = find(n, name);
    if (!m)
        return NULL;
    if (inc < m->incarnation) {
        tell_alive(n, m);
        return NULL;
    }
    if (m->is_self) {
        /* Refute unless the accusation is forged: one by an accuser we cannot check may still
         * convince members that can, and refuting costs little. */
        if (!n->leaving && ident_accuse_check(n, type, inc, name, accuser, id) != IDENT_REFUSED) {
            state_refute(n, inc, now);
            probe_awareness(n, 1); /* Lifeguard: being accused hints we are the slow one */
        }
        return NULL;
    }
    if (m->state == RUMOR_MEMBER_FAILED || m->state == RUMOR_MEMBER_LEFT)
        return NULL;
    return m;
}

void state_suspect(rumor_node *n, uint32_t inc, wire_str name, wire_str accuser,
                   const wire_ident *id, uint64_t now)
{
    member *m = accused(n, WIRE_SUSPECT, inc, name, accuser, id, now);
    if (!m)
        return;
    if (m->state == RUMOR_MEMBER_SUSPECT) {
        /* Pass independent confirmations on so that other suspecters shorten theirs too. */
        suspicion *s = members_susp(&n->mem, m);
        if (s && inc == m->incarnation && suspicion_is_new(s, accuser) &&
            ident_accuse_check(n, WIRE_SUSPECT, inc, name, accuser, id) == IDENT_OK &&
            suspicion_confirm(s, accuser))
            broadcast_accuse(n, WIRE_SUSPECT, m, accuser, id, false);
        return;
    }
    if (ident_accuse_check(n, WIRE_SUSPECT, inc, name, accuser, id) != IDENT_OK)
        return;
    if (!members_set_state(&n->mem, m, RUMOR_MEMBER_SUSPECT, now))
        return;
    members_set_inc(&n->mem, m, inc);
    suspicion_start(n, m, accuser, now);
    broadcast_accuse(n, WIRE_SUSPECT, m, accuser, id, false);
    node_event(n, RUMOR_EVENT_MEMBER_SUSPECT, m, (const char *)accuser.p, accuser.len);
}

void state_failed(rumor_node *n, uint32_t inc, wire_str name, wire_str accuser,
                  const wire_ident *id, uint64_t now)
{
    member *m = accused(n, WIRE_FAILED, inc, name, accuser, id, now);
    if (!m || ident_accuse_check(n, WIRE_FAILED, inc, name, accuser, id) != IDENT_OK)
        return;
    if (!members_set_state(&n->mem, m, RUMOR_MEMBER_FAILED, now))
        return;
    members_set_inc(&n->mem, m, inc);
    suspicion_stop(n, m);
    broadcast_accuse(n, WIRE_FAILED, m, accuser, id, false);
    node_event(n, RUMOR_EVENT_MEMBER_FAILED, m, (const char *)accuser.p, accuser.len);
    uint64_t reap = now + n->s.reap_failed_ms;
    if (reap < n->next_reap)
        n->next_reap = reap;
}

static void left_self(rumor_node *n, uint32_t inc, uint64_t now)
{
    member *self = n->self;
    if (!members_set_state(&n->mem, self, RUMOR_MEMBER_LEFT, now))
        return;
    members_set_inc(&n->mem, self, inc);
    broadcast_accuse(n, WIRE_LEFT, self, wire_str_of(NULL, 0), NULL, true);
    n->bq.notify_retired = 0;
    wire_ident claim;
    const uint8_t *sig = ident_claim(n, self, &claim) ? claim.sig : NULL;
    /* Push the news at once to a few members rather than wait for a gossip round. */
    member *targets[16];
    uint32_t k = n->s.gossip_nodes * 2 < 16 ? n->s.gossip_nodes * 2 : 16;
    size_t nt = gossip_pick(n, targets, k, NULL, false, now);
    for (size_t i = 0; i < nt; i++) {
        uint64_t dest = node_dest(n, targets[i]);
        if (!node_dest_ready(n, dest))
            continue; /* it would be refused (stale_epoch); gossip carries the leave there */
        if (!node_pkt_begin(n, &targets[i]->addr, dest))
            break;
        wire_put_accuse_ident(node_pkt(n), WIRE_LEFT, inc, node_self_name(n), wire_str_of(NULL, 0),
                              sig);
        node_pkt_end(n, true);
    }
}

void state_left(rumor_node *n, uint32_t inc, wire_str name, const wire_ident *id, uint64_t now)
{
    member *m = find(n, name);
    if (!m || inc < m->incarnation)
        return;
    if (m->is_self) {
        if (!ident_left_ok(n, m, inc, id))
            return;
        if (n->leaving && m->state != RUMOR_MEMBER_LEFT)
            left_self(n, inc, now);
        else if (!n->leaving)
            state_refute(n, inc, now); /* a replay of an old leave of ours */
        return;
    }
    if (m->state == RUMOR_MEMBER_LEFT || !ident_left_ok(n, m, inc, id))
        return;
    if (!members_set_state(&n->mem, m, RUMOR_MEMBER_LEFT, now))
        return;
    members_set_inc(&n->mem, m, inc);
    suspicion_stop(n, m);
    ident_left_keep(n, m, id);
    broadcast_accuse(n, WIRE_LEFT, m, wire_str_of(NULL, 0), id, false);
    node_event(n, RUMOR_EVENT_MEMBER_LEFT, m, NULL, 0);
    uint64_t reap = now + n->s.reap_left_ms;
    if (reap < n->next_reap)
        n->next_reap = reap;
}

/* ---- reaping ---- */

void state_forget(rumor_node *n, member *m)
{
    bcast *b = members_bcast(&n->mem, m);
    if (b)
        bcast_remove(&n->bq, b);
    suspicion_stop(n, m);
    if (n->probe.target == m)
        n->probe.target = NULL;
    kvnode_forget(n, member_name(m), m->name_len);
    ident_forget(n, m);
    members_remove(&n->mem, m);
}

void state_reap(rumor_node *n, uint64_t now)
{
    uint64_t next = NODE_NEVER;
    for (size_t i = 0; i < n->mem.ndead;) {
        member *m = n->mem.dead[i];
        uint64_t after = m->state == RUMOR_MEMBER_LEFT ? n->s.reap_left_ms : n->s.reap_failed_ms;
        if (m->is_self || now < m->state_since + after) {
            if (!m->is_self && m->state_since + after < next)
                next = m->state_since + after;
            i++;
            continue;
        }
        node_event(n, RUMOR_EVENT_MEMBER_REAPED, m, NULL, 0);
        state_forget(n, m); /* swaps another member into dead[i] */
    }
    n->next_reap = next;
}
