/*
 * What the simulator learns from the events the engines emit: each observer's view of each
 * member, the protocol invariants checked against it, convergence, and crash detection times.
 *
 * Everything here is O(1) per event. Only node starts and stops, which are rare, touch O(N)
 * state. The view is two bytes per (observer, member) pair: 200 MB at 10,000 nodes, the price of
 * checking every pair without scanning member tables.
 */
#include "sim_internal.h"

#include <stdlib.h>
#include <string.h>

#define VIEW_UNKNOWN 0u

static uint32_t view_state(uint16_t v)
{
    return v & 7u; /* rumor_member_state + 1, or VIEW_UNKNOWN */
}

static uint32_t view_inc(uint16_t v)
{
    return (uint32_t)v >> 3;
}

static uint16_t view_make(uint32_t st, uint32_t inc)
{
    if (inc > SIM_VIEW_INC_MAX)
        inc = SIM_VIEW_INC_MAX;
    return (uint16_t)(inc << 3 | st);
}

/* A member in the observer's list: alive or suspected, not yet failed, left or forgotten. */
static bool view_member(uint16_t v)
{
    uint32_t st = view_state(v);
    return st == RUMOR_MEMBER_ALIVE + 1u || st == RUMOR_MEMBER_SUSPECT + 1u;
}

int sim_check_init(rumor_sim *s)
{
    size_t cells = (size_t)s->n * s->n;
    s->view = calloc(cells, sizeof(*s->view));
    return s->view ? 0 : RUMOR_ERR_NOMEM;
}

void sim_check_free(rumor_sim *s)
{
    for (uint32_t k = 0; k < s->ncrashes; k++) {
        free(s->crashes[k].delay);
        free(s->crashes[k].life);
    }
    free(s->crashes);
    free(s->view);
}

static bool node_converged(const rumor_sim *s, const sim_node *nd)
{
    return sim_is_live(nd) && nd->good + 1 == s->live;
}

static void note_converged(rumor_sim *s)
{
    if (s->rejoin_from != SIM_NEVER && rumor_sim_converged(s)) {
        s->rejoin_ms = s->now - s->rejoin_from;
        s->rejoin_from = SIM_NEVER;
    }
    if (s->converged_at == SIM_NEVER && s->started == s->n && rumor_sim_converged(s)) {
        s->converged_at = s->now;
        s->steady_node_ms = s->node_ms + (double)s->live * (double)(s->now - s->live_since);
        s->steady_msgs = s->datagrams + s->stream_writes;
        s->steady_bytes = s->datagram_bytes + s->stream_bytes;
    }
}

void sim_check_recount(rumor_sim *s)
{
    uint32_t c = 0;
    for (uint32_t i = 0; i < s->n; i++)
        c += node_converged(s, &s->nodes[i]);
    s->nconv = c;
    note_converged(s);
}

static void live_changed(rumor_sim *s, int delta)
{
    s->node_ms += (double)s->live * (double)(s->now - s->live_since);
    s->live_since = s->now;
    s->live = (uint32_t)((int)s->live + delta);
}

void sim_check_node_up(rumor_sim *s, uint32_t i)
{
    sim_node *nd = &s->nodes[i];
    /* A new engine knows nothing: forget what the previous life of this node had seen. */
    memset(&s->view[(size_t)i * s->n], 0, s->n * sizeof(*s->view));
    nd->good = 0;
    if (nd->crash_rec != SIM_NONE) {
        s->crashes[nd->crash_rec].restarted = true;
        nd->crash_rec = SIM_NONE;
    }
    /* Observers that still list the previous life count it again. A first start has none. */
    if (nd->life > 1) {
        for (uint32_t o = 0; o < s->n; o++)
            if (o != i && sim_is_live(&s->nodes[o]) && view_member(s->view[(size_t)o * s->n + i]))
                s->nodes[o].good++;
    }
    live_changed(s, 1);
    sim_check_recount(s);
}

static void crash_record(rumor_sim *s, uint32_t i)
{
    if (s->ncrashes == s->capcrashes) {
        uint32_t cap = s->capcrashes ? s->capcrashes * 2 : 8;
        sim_crash *v = realloc(s->crashes, cap * sizeof(*v));
        if (!v)
            return;
        s->crashes = v;
        s->capcrashes = cap;
    }
    sim_crash *c = &s->crashes[s->ncrashes];
    memset(c, 0, sizeof(*c));
    c->node = i;
    c->at = s->now;
    c->delay = malloc(s->n * sizeof(*c->delay));
    c->life = malloc(s->n * sizeof(*c->life));
    if (!c->delay || !c->life) {
        free(c->delay);
        free(c->life);
        return;
    }
    for (uint32_t o = 0; o < s->n; o++) {
        c->life[o] = s->nodes[o].life;
        c->delay[o] = SIM_NONE;
        if (o != i && sim_is_live(&s->nodes[o])) {
            uint32_t st = view_state(s->view[(size_t)o * s->n + i]);
            c->delay[o] = st == RUMOR_MEMBER_FAILED + 1u ? 0 : SIM_UNSET;
        }
    }
    s->nodes[i].crash_rec = s->ncrashes++;
}

void sim_check_node_down(rumor_sim *s, uint32_t i, bool crashed)
{
    for (uint32_t o = 0; o < s->n; o++)
        if (o != i && sim_is_live(&s->nodes[o]) && view_member(s->view[(size_t)o * s->n + i]))
            s->nodes[o].good--;
    if (crashed)
        crash_record(s, i);
    live_changed(s, -1);
    sim_check_recount(s);
}

static uint32_t view_after(rumor_event_type t, uint32_t prev)
{
    switch (t) {
    case RUMOR_EVENT_MEMBER_JOIN:
    case RUMOR_EVENT_MEMBER_ALIVE:
        return RUMOR_MEMBER_ALIVE + 1u;
    case RUMOR_EVENT_MEMBER_UPDATE:
        return prev == VIEW_UNKNOWN ? RUMOR_MEMBER_ALIVE + 1u : prev;
    case RUMOR_EVENT_MEMBER_SUSPECT:
        return RUMOR_MEMBER_SUSPECT + 1u;
    case RUMOR_EVENT_MEMBER_FAILED:
        return RUMOR_MEMBER_FAILED + 1u;
    case RUMOR_EVENT_MEMBER_LEFT:
        return RUMOR_MEMBER_LEFT + 1u;
    default:
        return VIEW_UNKNOWN; /* reaped: forgotten */
    }
}

static void check_self_event(rumor_sim *s, uint32_t o, const rumor_event *ev)
{
    rumor_event_type t = ev->type;
    if (t == RUMOR_EVENT_MEMBER_SUSPECT || t == RUMOR_EVENT_MEMBER_FAILED ||
        (t == RUMOR_EVENT_MEMBER_LEFT && !s->nodes[o].leaving))
        sim_violation(s, "node-%u reports itself %s (incarnation %u)", o, rumor_event_type_name(t),
                      ev->member.incarnation);
}

/* Incarnations per (observer, member) never go down, and a member only comes back from failed
 * or left with a higher one (SWIM §4.2: only the member itself may refute, by raising it). */
static void check_transition(rumor_sim *s, uint32_t o, uint32_t m, uint16_t prev,
                             const rumor_event *ev)
{
    uint32_t pst = view_state(prev), pinc = view_inc(prev), inc = ev->member.incarnation;
    if (pst == VIEW_UNKNOWN || pinc >= SIM_VIEW_INC_MAX)
        return;
    if (inc < pinc)
        sim_violation(s, "node-%u: incarnation of node-%u went down %u -> %u at %s", o, m, pinc,
                      inc, rumor_event_type_name(ev->type));
    bool revive = ev->type == RUMOR_EVENT_MEMBER_JOIN || ev->type == RUMOR_EVENT_MEMBER_ALIVE;
    bool dead = pst == RUMOR_MEMBER_FAILED + 1u || pst == RUMOR_MEMBER_LEFT + 1u;
    if (revive && dead && inc <= pinc)
        sim_violation(s, "node-%u: node-%u back from %s at incarnation %u (was %u) via %s", o, m,
                      rumor_member_state_name((rumor_member_state)(pst - 1)), inc, pinc,
                      rumor_event_type_name(ev->type));
}

static void note_detection(rumor_sim *s, uint32_t o, uint32_t m, const rumor_event *ev)
{
    sim_node *nd = &s->nodes[m];
    /* About a node that runs, is not a stale report about an earlier life, and is on the
     * observer's side of any group partition: the protocol had no excuse. */
    bool wrong = nd->state == RUMOR_SIM_UP && ev->member.incarnation >= nd->life_inc;
    bool cut = s->nodes[o].group != nd->group;
    if (ev->type == RUMOR_EVENT_MEMBER_FAILED) {
        nd->failed_about++;
        if (nd->state == RUMOR_SIM_CRASHED && nd->crash_rec != SIM_NONE) {
            sim_crash *c = &s->crashes[nd->crash_rec];
            if (c->delay[o] == SIM_UNSET)
                c->delay[o] = (uint32_t)(s->now - c->at);
        } else if (wrong && cut) {
            s->partition_failures++;
        } else if (wrong) {
            s->false_positives++;
        } else if (nd->state == RUMOR_SIM_PAUSED) {
            s->paused_failures++;
        }
    } else if (ev->type == RUMOR_EVENT_MEMBER_SUSPECT && wrong && !cut) {
        s->false_suspicions++;
    }
}

static void update_good(rumor_sim *s, uint32_t o, uint32_t m, bool was, bool is)
{
    if (was == is || !sim_is_live(&s->nodes[m]))
        return;
    sim_node *obs = &s->nodes[o];
    bool before = node_converged(s, obs);
    obs->good = is ? obs->good + 1 : obs->good - 1;
    bool after = node_converged(s, obs);
    if (before != after)
        s->nconv = after ? s->nconv + 1 : s->nconv - 1;
    note_converged(s);
}

void sim_check_event(rumor_sim *s, uint32_t o, const rumor_event *ev)
{
    s->events++;
    if ((unsigned)ev->type < 9)
        s->ev_counts[ev->type]++;
    s->trace = sim_hash_u64(s->trace, (uint64_t)ev->type << 32 | o);
    s->trace = sim_hash_u64(s->trace, (uint64_t)ev->member.incarnation << 8 | ev->member.state);
    if (ev->type == RUMOR_EVENT_LEAVE_DONE) {
        s->nodes[o].leave_done = true;
        return;
    }
    if (ev->type == RUMOR_EVENT_KV_CHANGE) {
        /* Replicated state is not membership: it only feeds the trace. */
        s->trace = sim_hash_u64(s->trace, ev->version << 1 | ev->deleted);
        return;
    }
    if (ev->type >= RUMOR_EVENT_USER) {
        /* User events and queries are not membership either. */
        s->trace = sim_hash_u64(s->trace, ev->ltime << 8 | ev->payload_len);
        return;
    }
    uint32_t m;
    if (!sim_addr_index(s, &ev->member.addr, &m)) {
        sim_violation(s, "node-%u: %s about an address the simulator never gave out", o,
                      rumor_event_type_name(ev->type));
        return;
    }
    s->trace = sim_hash_u64(s->trace, m);
    if (s->o.log_events)
        sim_log(s, "node-%u: %s node-%u inc %u%s%s", o, rumor_event_type_name(ev->type), m,
                ev->member.incarnation, ev->accuser[0] ? " by " : "", ev->accuser);
    if (m == o || ev->member.is_self) {
        check_self_event(s, o, ev);
        return;
    }
    uint16_t *cell = &s->view[(size_t)o * s->n + m];
    uint16_t prev = *cell;
    check_transition(s, o, m, prev, ev);
    note_detection(s, o, m, ev);
    uint32_t st = view_after(ev->type, view_state(prev));
    uint16_t next = st == VIEW_UNKNOWN ? 0 : view_make(st, ev->member.incarnation);
    *cell = next;
    update_good(s, o, m, view_member(prev), view_member(next));
}

void sim_check_self(rumor_sim *s, uint32_t i)
{
    sim_node *nd = &s->nodes[i];
    if (!nd->eng)
        return;
    rumor_member self;
    rumor_node_self(nd->eng, &self);
    if (self.state == RUMOR_MEMBER_ALIVE)
        return;
    if (self.state == RUMOR_MEMBER_LEFT && rumor_node_is_leaving(nd->eng))
        return;
    sim_violation(s, "node-%u sees itself %s (incarnation %u)", i,
                  rumor_member_state_name(self.state), self.incarnation);
}

uint32_t rumor_sim_live_count(const rumor_sim *s)
{
    return s->live;
}

bool rumor_sim_converged(const rumor_sim *s)
{
    return s->live > 0 && s->nconv == s->live;
}

uint64_t rumor_sim_converged_at(const rumor_sim *s)
{
    return s->converged_at;
}

bool rumor_sim_view(const rumor_sim *s, uint32_t observer, uint32_t member,
                    rumor_member_state *state, uint32_t *incarnation)
{
    if (observer >= s->n || member >= s->n)
        return false;
    uint16_t v = s->view[(size_t)observer * s->n + member];
    if (view_state(v) == VIEW_UNKNOWN)
        return false;
    *state = (rumor_member_state)(view_state(v) - 1);
    *incarnation = view_inc(v);
    return true;
}

uint64_t rumor_sim_failed_about(const rumor_sim *s, uint32_t i)
{
    return i < s->n ? s->nodes[i].failed_about : 0;
}
