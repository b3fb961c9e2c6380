/*
 * Reliable, ordered byte streams between simulated nodes (TCP in the real agent). A connection
 * pairs the opener's stream id (side 0) with the id the acceptor's engine hands out (side 1).
 * Bytes are never lost, duplicated or reordered: each direction keeps a delivery horizon that
 * later writes may not undercut. Connections break on partitions, crashes and connect timeouts.
 */
#include "sim_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *grow(void *v, uint32_t *cap, size_t elem)
{
    uint32_t ncap = *cap ? *cap * 2 : 16;
    void *nv = realloc(v, (size_t)ncap * elem);
    if (!nv) {
        fprintf(stderr, "rumor-sim: out of memory for streams\n");
        abort();
    }
    *cap = ncap;
    return nv;
}

/* Freed slots are reused last-in first-out, so allocation is O(1) however many connections a
 * large cluster keeps open. */
static uint32_t conn_alloc(rumor_sim *s)
{
    if (s->nfree_conns > 0)
        return s->free_conns[--s->nfree_conns];
    if (s->nconns == s->capconns) {
        s->conns = grow(s->conns, &s->capconns, sizeof(*s->conns));
        s->free_conns = realloc(s->free_conns, s->capconns * sizeof(*s->free_conns));
        if (!s->free_conns) {
            fprintf(stderr, "rumor-sim: out of memory for streams\n");
            abort();
        }
    }
    memset(&s->conns[s->nconns], 0, sizeof(s->conns[0]));
    return s->nconns++;
}

static void conn_release_if_done(rumor_sim *s, sim_conn *c)
{
    if (!c->open[0] && !c->open[1] && c->state != SIM_CONN_FREE) {
        c->state = SIM_CONN_FREE;
        c->gen++; /* events still queued for this slot now miss */
        s->free_conns[s->nfree_conns++] = (uint32_t)(c - s->conns);
    }
}

static void sref_add(sim_node *nd, uint64_t id, uint32_t slot, uint32_t side)
{
    if (nd->nsrefs == nd->capsrefs)
        nd->srefs = grow(nd->srefs, &nd->capsrefs, sizeof(*nd->srefs));
    nd->srefs[nd->nsrefs++] = (sim_sref){.id = id, .slot = slot, .side = side};
}

static sim_sref *sref_find(sim_node *nd, uint64_t id)
{
    for (uint32_t k = 0; k < nd->nsrefs; k++)
        if (nd->srefs[k].id == id)
            return &nd->srefs[k];
    return NULL;
}

static void sref_remove(sim_node *nd, uint64_t id)
{
    sim_sref *r = sref_find(nd, id);
    if (r)
        *r = nd->srefs[--nd->nsrefs];
}

static void push_conn_event(rumor_sim *s, uint64_t at, uint16_t kind, uint32_t slot, uint32_t side,
                            void *p)
{
    sim_conn *c = &s->conns[slot];
    sim_entry e = {
        .kind = kind, .node = c->node[side], .a = slot, .b = c->gen, .c = (uint16_t)side, .p = p};
    sim_push(s, at, &e);
}

/* Breaks the connection: every side still open learns at `at` that it closed. */
static void conn_break(rumor_sim *s, uint32_t slot, uint64_t at)
{
    sim_conn *c = &s->conns[slot];
    c->state = SIM_CONN_DEAD;
    for (uint32_t side = 0; side < 2; side++)
        if (c->open[side])
            push_conn_event(s, at, SIM_EV_SRESET, slot, side, NULL);
}

static bool both_ways(const rumor_sim *s, uint32_t a, uint32_t b)
{
    return vnet_link_ok(s, a, b) && vnet_link_ok(s, b, a);
}

static void stream_open(rumor_sim *s, uint32_t i, const rumor_stream_op *op)
{
    uint32_t slot = conn_alloc(s);
    sim_conn *c = &s->conns[slot];
    uint32_t gen = c->gen;
    memset(c, 0, sizeof(*c));
    c->gen = gen;
    c->state = SIM_CONN_CONNECTING;
    c->node[0] = c->node[1] = i;
    c->life[0] = s->nodes[i].life;
    c->id[0] = op->id;
    c->open[0] = true;
    c->opened_at = s->now;
    sref_add(&s->nodes[i], op->id, slot, 0);
    uint32_t j;
    /* Nothing answers across a partition or from a stopped host (the simulator models a host
     * that is gone, not a process whose kernel would send a reset): the connect times out. */
    if (!sim_addr_index(s, &op->to, &j) || !both_ways(s, i, j) || !sim_is_live(&s->nodes[j])) {
        conn_break(s, slot, s->now + s->o.connect_timeout_ms);
        return;
    }
    c->node[1] = j;
    uint64_t at = s->now + vnet_latency(s);
    c->next_at[0] = c->next_at[1] = at;
    push_conn_event(s, at, SIM_EV_ACCEPT, slot, 1, NULL);
}

static void stream_write(rumor_sim *s, sim_conn *c, uint32_t slot, uint32_t side,
                         const rumor_stream_op *op)
{
    s->stream_writes++;
    s->stream_bytes += op->len;
    if (c->state == SIM_CONN_DEAD || op->len == 0)
        return;
    uint32_t peer = 1 - side;
    sim_chunk *ch = malloc(sizeof(*ch) + op->len);
    if (!ch) {
        conn_break(s, slot, s->now);
        return;
    }
    ch->side = peer;
    ch->len = (uint32_t)op->len;
    memcpy(ch->data, op->data, op->len);
    if (s->o.tamper) {
        size_t len = op->len;
        s->o.tamper(s->o.tamper_ud, c->node[side], c->node[peer], true, ch->data, &len, op->len);
        ch->len = (uint32_t)(len <= op->len ? len : op->len);
    }
    uint64_t at = s->now + vnet_latency(s);
    if (at < c->next_at[side])
        at = c->next_at[side];
    c->next_at[side] = at;
    push_conn_event(s, at, SIM_EV_SDATA, slot, peer, ch);
}

/* This side's engine closed its end: the peer sees a clean close after the bytes in flight. */
static void side_close(rumor_sim *s, uint32_t slot, uint32_t side, bool graceful)
{
    sim_conn *c = &s->conns[slot];
    c->open[side] = false;
    uint32_t peer = 1 - side;
    if (c->state != SIM_CONN_DEAD && c->open[peer]) {
        if (graceful) {
            uint64_t at = s->now + vnet_latency(s);
            if (at < c->next_at[side])
                at = c->next_at[side];
            push_conn_event(s, at, SIM_EV_SFIN, slot, peer, NULL);
        } else {
            conn_break(s, slot, s->now + vnet_latency(s));
        }
    }
    conn_release_if_done(s, c);
}

void vnet_stream_op(rumor_sim *s, uint32_t i, const rumor_stream_op *op)
{
    s->trace = sim_hash_u64(s->trace, (uint64_t)op->kind << 32 | i);
    s->trace = sim_hash_u64(s->trace, op->len);
    if (op->kind == RUMOR_STREAM_OPEN) {
        stream_open(s, i, op);
        return;
    }
    sim_node *nd = &s->nodes[i];
    sim_sref *r = sref_find(nd, op->id);
    if (!r)
        return; /* the peer already closed it; the engine will hear so */
    uint32_t slot = r->slot, side = r->side;
    if (op->kind == RUMOR_STREAM_WRITE) {
        stream_write(s, &s->conns[slot], slot, side, op);
    } else if (op->kind == RUMOR_STREAM_CLOSE) {
        sref_remove(nd, op->id);
        side_close(s, slot, side, true);
    }
}

/* The event is for a live side of a live connection on the same life of its node. */
static sim_conn *event_conn(rumor_sim *s, const sim_entry *e)
{
    if (e->a >= s->nconns)
        return NULL;
    sim_conn *c = &s->conns[e->a];
    if (c->gen != e->b || c->state == SIM_CONN_FREE)
        return NULL;
    return c;
}

static void stream_accept(rumor_sim *s, const sim_entry *e, sim_conn *c)
{
    uint32_t j = e->node, slot = e->a;
    if (c->state != SIM_CONN_CONNECTING)
        return;
    if (!c->open[0]) {
        conn_release_if_done(s, c);
        return;
    }
    sim_node *nd = &s->nodes[j];
    if (nd->state != RUMOR_SIM_UP || !both_ways(s, c->node[0], j)) {
        conn_break(s, slot, c->opened_at + s->o.connect_timeout_ms);
        return;
    }
    rumor_addr from;
    rumor_sim_addr(&from, c->node[0]);
    uint64_t id = 0;
    int arc = rumor_node_stream_accept(nd->eng, &from, &id, s->now);
    if (sim_rec_on(s, j))
        sim_rec_accept(s, &from, id, arc);
    if (arc != 0) {
        conn_break(s, slot, s->now + vnet_latency(s));
        sim_after_call(s, j);
        return;
    }
    c->state = SIM_CONN_OPEN;
    c->id[1] = id;
    c->open[1] = true;
    c->life[1] = nd->life;
    sref_add(nd, id, slot, 1);
    sim_after_call(s, j);
}

static void stream_data(rumor_sim *s, const sim_entry *e, sim_conn *c)
{
    const sim_chunk *ch = e->p;
    uint32_t side = ch->side;
    if (c->state != SIM_CONN_OPEN || !c->open[side])
        return;
    s->trace = sim_hash_u64(s->trace, (uint64_t)side << 32 | ch->len);
    s->trace = sim_hash_mix(s->trace, ch->data, ch->len);
    if (sim_rec_on(s, e->node))
        sim_rec_sdata(s, c->id[side], ch->data, ch->len);
    (void)rumor_node_stream_data(s->nodes[e->node].eng, c->id[side], ch->data, ch->len, s->now);
    sim_after_call(s, e->node);
}

static void stream_closed(rumor_sim *s, const sim_entry *e, sim_conn *c)
{
    uint32_t side = e->c;
    if (!c->open[side])
        return;
    c->open[side] = false;
    uint64_t id = c->id[side];
    sref_remove(&s->nodes[e->node], id);
    conn_release_if_done(s, c);
    if (sim_rec_on(s, e->node))
        sim_rec_u64(s, SIM_TR_SCLOSED, id);
    rumor_node_stream_closed(s->nodes[e->node].eng, id, s->now);
    sim_after_call(s, e->node);
}

void vnet_stream_event(rumor_sim *s, const sim_entry *e)
{
    sim_conn *c = event_conn(s, e);
    sim_node *nd = &s->nodes[e->node];
    if (!c || nd->state != RUMOR_SIM_UP)
        return;
    /* An open side belongs to one life of its node; after a restart it is gone. */
    uint32_t side = e->kind == SIM_EV_SDATA ? ((const sim_chunk *)e->p)->side : e->c;
    if (e->kind != SIM_EV_ACCEPT && c->life[side] != nd->life)
        return;
    switch (e->kind) {
    case SIM_EV_ACCEPT:
        stream_accept(s, e, c);
        break;
    case SIM_EV_SDATA:
        stream_data(s, e, c);
        break;
    default:
        stream_closed(s, e, c);
        break;
    }
}

void vnet_stream_node_down(rumor_sim *s, uint32_t i, bool graceful)
{
    sim_node *nd = &s->nodes[i];
    /* A stopped process's kernel closes its sockets: FIN after a clean exit, RST after a
     * crash (the simulator treats both as a close the peer sees one latency later). */
    for (uint32_t k = 0; k < nd->nsrefs; k++)
        side_close(s, nd->srefs[k].slot, nd->srefs[k].side, graceful);
    nd->nsrefs = 0;
}

void vnet_stream_break_cut(rumor_sim *s)
{
    for (uint32_t k = 0; k < s->nconns; k++) {
        sim_conn *c = &s->conns[k];
        if (c->state != SIM_CONN_CONNECTING && c->state != SIM_CONN_OPEN)
            continue;
        if (both_ways(s, c->node[0], c->node[1]))
            continue;
        conn_break(s, k, s->now);
    }
}

void vnet_stream_free(rumor_sim *s)
{
    free(s->conns);
    free(s->free_conns);
    s->conns = NULL;
    s->free_conns = NULL;
    s->nconns = s->capconns = s->nfree_conns = 0;
}
