/*
 * Dissemination (SWIM §4.4). Broadcasts ride on every packet the node sends anyway; a gossip
 * round every gossip interval sends them to `gossip_nodes` random members when any are waiting.
 * New membership news does not wait for the next round: it is pushed eagerly, at most four times
 * per gossip interval so that a burst of changes cannot turn into a packet storm.
 */
#include "core/node.h"

static bool pickable(const rumor_node *n, const member *m, const member *exclude, bool dead_too,
                     uint64_t now)
{
    if (m->is_self || m == exclude)
        return false;
    if (m->state == RUMOR_MEMBER_ALIVE || m->state == RUMOR_MEMBER_SUSPECT)
        return true;
    /* Gossip to the recently failed so a falsely failed member hears it and refutes. */
    return dead_too && m->state == RUMOR_MEMBER_FAILED &&
           now < m->state_since + n->s.gossip_to_dead_ms;
}

static bool picked(member *const *out, size_t got, const member *m)
{
    for (size_t i = 0; i < got; i++)
        if (out[i] == m)
            return true;
    return false;
}

size_t gossip_pick(rumor_node *n, member **out, size_t k, const member *exclude, bool dead_too,
                   uint64_t now)
{
    members *t = &n->mem;
    size_t got = 0;
    if (t->count <= 1 || k == 0)
        return 0;
    /* Random sampling with rejection: cheap while most members qualify, bounded otherwise. */
    size_t attempts = 4 * k + 16;
    for (size_t a = 0; a < attempts && got < k; a++) {
        member *m = t->order[rng_below(&n->rng, (uint32_t)t->count)];
        if (pickable(n, m, exclude, dead_too, now) && !picked(out, got, m))
            out[got++] = m;
    }
    if (got == k || t->count > 4 * k + 16)
        return got;
    /* Small table: finish with a scan from a random start so rare eligible members are found. */
    size_t start = rng_below(&n->rng, (uint32_t)t->count);
    for (size_t i = 0; i < t->count && got < k; i++) {
        member *m = t->order[(start + i) % t->count];
        if (pickable(n, m, exclude, dead_too, now) && !picked(out, got, m))
            out[got++] = m;
    }
    return got;
}

static void gossip_round(rumor_node *n, uint64_t now)
{
    member *targets[64];
    size_t k = n->s.gossip_nodes < 64 ? n->s.gossip_nodes : 64;
    size_t nt = gossip_pick(n, targets, k, NULL, true, now);
    for (size_t i = 0; i < nt && bcast_count(&n->bq); i++) {
        uint64_t dest = node_dest(n, targets[i]);
        if (node_hello_instead(n, &targets[i]->addr, dest))
            continue;
        if (!node_pkt_begin(n, &targets[i]->addr, dest))
            break;
        size_t before = node_pkt(n)->len;
        size_t used = before - n->cur_start;
        size_t added = bcast_fill(&n->bq, node_pkt(n), n->pkt_max - used, node_retransmit_limit(n));
        if (added == 0) {
            /* Nothing fitted: take the empty packet back. */
            node_pkt_abort(n);
            continue;
        }
        n->st.messages_out += added - 1; /* node_pkt_end counts one */
        node_pkt_end(n, false);
    }
    n->last_gossip = now;
}

void gossip_tick(rumor_node *n, uint64_t now)
{
    if (now < n->next_gossip)
        return;
    if (bcast_count(&n->bq) && !(n->leaving && n->leave_done))
        gossip_round(n, now);
    n->next_gossip = now + n->s.gossip_interval_ms;
}

void gossip_eager(rumor_node *n, uint64_t now)
{
    uint64_t earliest = n->last_gossip + n->s.gossip_interval_ms / 4;
    uint64_t at = now > earliest ? now : earliest;
    if (at < n->next_gossip)
        n->next_gossip = at;
}
