/*
 * The virtual network for datagrams: per-packet latency with jitter (which also reorders), loss,
 * duplication, symmetric partitions by group and asymmetric link blocks. Streams are in
 * vnet_stream.c and never lose, duplicate or reorder bytes.
 */
#include "sim_internal.h"

#include <stdlib.h>
#include <string.h>

uint64_t vnet_latency(rumor_sim *s)
{
    return s->o.latency_ms + sim_rng_below(s->rng, (uint64_t)s->o.jitter_ms + 1);
}

static bool blocked(const rumor_sim *s, uint32_t a, uint32_t b)
{
    for (uint32_t k = 0; k < s->nblocks; k++)
        if (s->blocks[k][0] == a && s->blocks[k][1] == b)
            return true;
    return false;
}

bool vnet_link_ok(const rumor_sim *s, uint32_t a, uint32_t b)
{
    if (s->nodes[a].group != s->nodes[b].group)
        return false;
    return s->nblocks == 0 || !blocked(s, a, b);
}

bool rumor_sim_reachable(const rumor_sim *s, uint32_t a, uint32_t b)
{
    if (a >= s->n || b >= s->n || !sim_is_live(&s->nodes[a]) || !sim_is_live(&s->nodes[b]))
        return false;
    return vnet_link_ok(s, a, b);
}

static void queue_copy(rumor_sim *s, uint32_t src, uint32_t dst, const rumor_datagram *d)
{
    sim_pkt *p = malloc(sizeof(*p) + d->len);
    if (!p)
        return; /* out of memory looks like loss to the protocol, which must cope anyway */
    memset(p, 0, sizeof(*p));
    p->src = src;
    p->src_life = s->nodes[src].life;
    p->len = (uint32_t)d->len;
    memcpy(p->data, d->data, d->len);
    sim_entry e = {.kind = SIM_EV_DGRAM, .node = dst, .p = p};
    sim_push(s, s->now + vnet_latency(s), &e);
}

void vnet_send(rumor_sim *s, uint32_t src, const rumor_datagram *d)
{
    s->datagrams++;
    s->datagram_bytes += d->len;
    uint32_t dst;
    if (!sim_addr_index(s, &d->to, &dst) || d->len > RUMOR_PACKET_MAX) {
        s->dropped_down++;
        return;
    }
    if (!vnet_link_ok(s, src, dst)) {
        s->dropped_partition++;
        return;
    }
    if (sim_rng_chance(s->rng, s->o.loss)) {
        s->dropped_loss++;
        return;
    }
    rumor_datagram t = *d;
    uint8_t *copy = NULL;
    if (s->o.tamper) {
        /* The hook edits a copy with room to grow; the engine's buffer stays as it was. */
        copy = malloc(RUMOR_PACKET_MAX);
        if (!copy)
            return;
        memcpy(copy, d->data, d->len);
        size_t len = d->len;
        s->o.tamper(s->o.tamper_ud, src, dst, false, copy, &len, RUMOR_PACKET_MAX);
        t.data = copy;
        t.len = len <= RUMOR_PACKET_MAX ? len : RUMOR_PACKET_MAX;
    }
    if (t.len > 0) {
        queue_copy(s, src, dst, &t);
        if (sim_rng_chance(s->rng, s->o.dup))
            queue_copy(s, src, dst, &t);
    }
    free(copy);
}

bool vnet_dgram_arrives(rumor_sim *s, const sim_entry *e)
{
    const sim_pkt *p = e->p;
    const sim_node *src = &s->nodes[p->src];
    if (p->replay)
        return true; /* the attacker sends it, whatever became of the sender */
    /* A crashed sender's packets die with it; a gracefully stopped one's were really sent. */
    if (src->life != p->src_life || src->state == RUMOR_SIM_CRASHED) {
        s->dropped_down++;
        return false;
    }
    /* A partition that began while the packet was in flight also swallows it. */
    if (!vnet_link_ok(s, p->src, e->node)) {
        s->dropped_partition++;
        return false;
    }
    return true;
}

void vnet_deliver_dgram(rumor_sim *s, const sim_entry *e)
{
    const sim_pkt *p = e->p;
    sim_node *dst = &s->nodes[e->node];
    /* Packets queued at a stalled node (c = 1) already arrived: only the receiver matters. */
    if (dst->state != RUMOR_SIM_UP) {
        s->dropped_down++;
        return;
    }
    if (!e->c && !vnet_dgram_arrives(s, e))
        return;
    s->trace = sim_hash_u64(s->trace, (uint64_t)p->src << 32 | p->len);
    s->trace = sim_hash_mix(s->trace, p->data, p->len);
    if (p->replay) {
        sim_seal_deliver_replay(s, e);
        return;
    }
    rumor_addr from;
    rumor_sim_addr(&from, p->src);
    if (s->o.encrypt)
        sim_seal_count(s, e);
    if (sim_rec_on(s, e->node))
        sim_rec_recv(s, &from, p->data, p->len);
    int rc = rumor_node_receive(dst->eng, &from, p->data, p->len, s->now);
    if (s->o.replay > 0)
        sim_seal_captured(s, e, rc);
    sim_after_call(s, e->node);
}

int rumor_sim_link_block(rumor_sim *s, uint32_t a, uint32_t b, bool on)
{
    if (a >= s->n || b >= s->n)
        return RUMOR_ERR_INVALID;
    for (uint32_t k = 0; k < s->nblocks; k++) {
        if (s->blocks[k][0] == a && s->blocks[k][1] == b) {
            if (!on)
                memcpy(s->blocks[k], s->blocks[--s->nblocks], sizeof(s->blocks[k]));
            return 0;
        }
    }
    if (!on)
        return 0;
    if (s->nblocks == s->capblocks) {
        uint32_t cap = s->capblocks ? s->capblocks * 2 : 16;
        uint32_t(*v)[2] = realloc(s->blocks, cap * sizeof(*v));
        if (!v)
            return RUMOR_ERR_NOMEM;
        s->blocks = v;
        s->capblocks = cap;
    }
    sim_log(s, "link node-%u -> node-%u blocked", a, b);
    s->blocks[s->nblocks][0] = a;
    s->blocks[s->nblocks][1] = b;
    s->nblocks++;
    vnet_stream_break_cut(s);
    return 0;
}

int rumor_sim_partition(rumor_sim *s, const uint16_t *groups)
{
    uint32_t in0 = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        s->nodes[i].group = groups[i];
        in0 += groups[i] == 0;
    }
    char map[65] = "";
    for (uint32_t i = 0; i < s->n && i < 64; i++)
        map[i] = (char)('0' + groups[i] % 10);
    sim_log(s, "partition: %u nodes in group 0, %u elsewhere (groups of the first 64: %s)", in0,
            s->n - in0, map);
    vnet_stream_break_cut(s);
    return 0;
}

void rumor_sim_heal(rumor_sim *s)
{
    sim_log(s, "network healed");
    for (uint32_t i = 0; i < s->n; i++)
        s->nodes[i].group = 0;
    s->nblocks = 0;
}
