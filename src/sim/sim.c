/*
 * The simulator's core: virtual time, the event loop, and the life cycle of each node (start,
 * crash, restart, pause, leave). Network behaviour lives in vnet*.c, bookkeeping and invariants in
 * sim_check.c, metrics in sim_metrics.c.
 */
#include "sim_internal.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A node that asks to be ticked at the same instant this often without settling is stuck. */
#define SIM_STUCK_TICKS 100000u

void rumor_sim_options_default(rumor_sim_options *o, rumor_profile profile)
{
    memset(o, 0, sizeof(*o));
    o->seed = 1;
    o->profile = profile;
    /* One-way latencies: a switched LAN is 1-5 ms through the whole stack, a WAN path tens of
     * ms with wide jitter, loopback about nothing (the clock has 1 ms resolution). */
    switch (profile) {
    case RUMOR_PROFILE_WAN:
        o->latency_ms = 20;
        o->jitter_ms = 60;
        break;
    case RUMOR_PROFILE_LOCAL:
        o->latency_ms = 0;
        o->jitter_ms = 1;
        break;
    default:
        o->latency_ms = 1;
        o->jitter_ms = 4;
        break;
    }
    o->connect_timeout_ms = 1000;
    o->stop_after_leave = true;
}

int rumor_sim_new(rumor_sim **out, const rumor_sim_options *o)
{
    *out = NULL;
    /* The simulator is the engine's host: it initialises libsodium (sealing, signatures). */
    if (sodium_init() < 0)
        return RUMOR_ERR_NOMEM;
    if (o->nodes == 0 || o->nodes > (1u << 24) || !(o->loss >= 0.0 && o->loss <= 1.0) ||
        !(o->dup >= 0.0 && o->dup <= 1.0) || !(o->replay >= 0.0 && o->replay <= 1.0) ||
        (o->record && o->record_node >= o->nodes))
        return RUMOR_ERR_INVALID;
    rumor_sim *s = calloc(1, sizeof(*s));
    if (!s)
        return RUMOR_ERR_NOMEM;
    s->o = *o;
    s->n = o->nodes;
    s->converged_at = SIM_NEVER;
    s->rejoin_from = s->rejoin_ms = SIM_NEVER;
    s->trace = 0xcbf29ce484222325ull;
    sim_rng_seed(s->rng, o->seed);
    s->nodes = calloc(s->n, sizeof(*s->nodes));
    s->engs = calloc(s->n, sizeof(*s->engs));
    s->names = calloc(s->n, sizeof(*s->names));
    s->name_len = calloc(s->n, sizeof(*s->name_len));
    if (!s->nodes || !s->engs || !s->names || !s->name_len || sim_check_init(s) != 0) {
        rumor_sim_del(s);
        return RUMOR_ERR_NOMEM;
    }
    for (uint32_t i = 0; i < s->n; i++) {
        s->nodes[i].wake_at = SIM_NEVER;
        s->nodes[i].crash_rec = SIM_NONE;
        s->nodes[i].keys = 1; /* key 0, primary */
    }
    if (o->record)
        sim_rec_header(s);
    *out = s;
    return 0;
}

static void free_deferred(sim_node *nd)
{
    for (size_t k = 0; k < nd->ndeferred; k++)
        free(nd->deferred[k].p);
    nd->ndeferred = 0;
}

void rumor_sim_del(rumor_sim *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; s->nodes && i < s->n; i++) {
        rumor_node_del(s->nodes[i].eng);
        free_deferred(&s->nodes[i]);
        free(s->nodes[i].deferred);
        free(s->nodes[i].srefs);
    }
    sim_heap_free(&s->heap);
    vnet_stream_free(s);
    sim_check_free(s);
    free(s->blocks);
    free(s->engs);
    free(s->names);
    free(s->name_len);
    free(s->nodes);
    free(s);
}

uint64_t rumor_sim_now(const rumor_sim *s)
{
    return s->now;
}

uint32_t rumor_sim_nodes(const rumor_sim *s)
{
    return s->n;
}

uint64_t rumor_sim_seed(const rumor_sim *s)
{
    return s->o.seed;
}

const char *rumor_sim_error(const rumor_sim *s)
{
    return s->failed ? s->err : NULL;
}

void sim_violation(rumor_sim *s, const char *fmt, ...)
{
    if (s->failed)
        return;
    s->failed = true;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(s->err, sizeof(s->err), "seed=%llu t=%llums: %s", (unsigned long long)s->o.seed,
             (unsigned long long)s->now, msg);
    fprintf(stderr, "rumor-sim: invariant violated: %s\n", s->err);
    if (s->o.abort_on_violation)
        abort();
}

void sim_log(const rumor_sim *s, const char *fmt, ...)
{
    if (!s->o.log)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(s->o.log, "[%9llu ms] ", (unsigned long long)s->now);
    vfprintf(s->o.log, fmt, ap);
    fputc('\n', s->o.log);
    va_end(ap);
}

void sim_push(rumor_sim *s, uint64_t at, const sim_entry *e)
{
    sim_entry c = *e;
    c.at = at < s->now ? s->now : at;
    c.seq = s->seq++;
    /* The simulator cannot run on without its queue; failing loudly beats a silent divergence. */
    if (sim_heap_push(&s->heap, &c) != 0) {
        fprintf(stderr, "rumor-sim: out of memory growing the event queue\n");
        abort();
    }
}

bool sim_is_live(const sim_node *nd)
{
    return nd->state == RUMOR_SIM_UP || nd->state == RUMOR_SIM_PAUSED;
}

void rumor_sim_addr(rumor_addr *out, uint32_t i)
{
    memset(out, 0, sizeof(*out));
    out->len = 4;
    out->bytes[0] = (uint8_t)(i >> 24);
    out->bytes[1] = (uint8_t)(i >> 16);
    out->bytes[2] = (uint8_t)(i >> 8);
    out->bytes[3] = (uint8_t)i;
}

bool sim_addr_index(const rumor_sim *s, const rumor_addr *a, uint32_t *out)
{
    if (a->len != 4)
        return false;
    uint32_t i = (uint32_t)a->bytes[0] << 24 | (uint32_t)a->bytes[1] << 16 |
                 (uint32_t)a->bytes[2] << 8 | a->bytes[3];
    if (i >= s->n)
        return false;
    *out = i;
    return true;
}

/* Keeps exactly one useful wakeup queued per node: an earlier pending one already covers a
 * later deadline (an early tick runs nothing), so only an earlier deadline needs a new entry. */
static void schedule_wake(rumor_sim *s, uint32_t i)
{
    sim_node *nd = &s->nodes[i];
    uint64_t d = rumor_node_deadline(nd->eng);
    if (d == SIM_NEVER)
        return;
    if (d < s->now)
        d = s->now;
    if (nd->wake_at != SIM_NEVER && nd->wake_at <= d)
        return;
    nd->wake_at = d;
    sim_entry e = {.kind = SIM_EV_WAKE, .node = i, .a = ++nd->wake_gen};
    sim_push(s, d, &e);
}

static void node_shutdown(rumor_sim *s, uint32_t i, rumor_sim_node_state st);

void sim_after_call(rumor_sim *s, uint32_t i)
{
    sim_node *nd = &s->nodes[i];
    if (!nd->eng)
        return;
    bool rec = sim_rec_on(s, i);
    rumor_datagram d;
    while (rumor_node_poll_datagram(nd->eng, &d)) {
        if (rec)
            sim_rec_out_dgram(s, &d);
        vnet_send(s, i, &d);
    }
    rumor_stream_op op;
    while (rumor_node_poll_stream(nd->eng, &op)) {
        if (rec)
            sim_rec_out_stream(s, &op);
        vnet_stream_op(s, i, &op);
    }
    rumor_event ev;
    bool hooked = false;
    while (rumor_node_poll_event(nd->eng, &ev)) {
        if (ev.type == RUMOR_EVENT_KEYRING_CHANGE)
            sim_seal_keyring_changed(s, i); /* what the agent's keyring file does */
        if (rec)
            sim_rec_out_event(s, &ev);
        sim_check_event(s, i, &ev);
        if (s->o.event_fn) {
            s->o.event_fn(s, i, &ev, s->o.event_ud);
            hooked = true;
        }
    }
    /* What taking the events released (key operation answers) and what the hook made the engine
     * send (a query response) leave now. */
    while (rumor_node_poll_datagram(nd->eng, &d)) {
        if (rec && !hooked)
            sim_rec_out_dgram(s, &d);
        vnet_send(s, i, &d);
    }
    while (rumor_node_poll_stream(nd->eng, &op)) {
        if (rec && !hooked)
            sim_rec_out_stream(s, &op);
        vnet_stream_op(s, i, &op);
    }
    if (rec)
        sim_rec_checkpoint(s); /* a hook's calls are not recorded: a replay then diverges here */
    sim_check_self(s, i);
    if (nd->leave_done && s->o.stop_after_leave) {
        node_shutdown(s, i, RUMOR_SIM_GONE);
        return;
    }
    schedule_wake(s, i);
}

void rumor_sim_poke(rumor_sim *s, uint32_t i)
{
    if (i < s->n && s->nodes[i].state == RUMOR_SIM_UP)
        sim_after_call(s, i);
}

static void node_wake(rumor_sim *s, const sim_entry *e)
{
    sim_node *nd = &s->nodes[e->node];
    if (nd->state != RUMOR_SIM_UP || e->a != nd->wake_gen)
        return;
    nd->wake_at = SIM_NEVER;
    if (nd->last_tick_at == s->now && ++nd->ticks_at_same_time > SIM_STUCK_TICKS) {
        sim_violation(s, "node-%u: deadline stays at now after %u ticks", e->node, SIM_STUCK_TICKS);
        return;
    }
    if (nd->last_tick_at != s->now) {
        nd->last_tick_at = s->now;
        nd->ticks_at_same_time = 0;
    }
    if (sim_rec_on(s, e->node))
        sim_rec_simple(s, SIM_TR_TICK);
    rumor_node_tick(nd->eng, s->now);
    sim_after_call(s, e->node);
}

static void defer_event(sim_node *nd, const sim_entry *e)
{
    if (nd->ndeferred == nd->capdeferred) {
        size_t cap = nd->capdeferred ? nd->capdeferred * 2 : 64;
        sim_entry *v = realloc(nd->deferred, cap * sizeof(*v));
        if (!v) {
            fprintf(stderr, "rumor-sim: out of memory deferring input\n");
            abort();
        }
        nd->deferred = v;
        nd->capdeferred = cap;
    }
    nd->deferred[nd->ndeferred++] = *e;
}

/* Delivers one event addressed to a node. Returns false when the node holds on to it. */
static bool dispatch_node(rumor_sim *s, const sim_entry *e)
{
    sim_node *nd = &s->nodes[e->node];
    if (nd->state == RUMOR_SIM_PAUSED) {
        /* A stalled process does nothing; its timers are re-armed when it resumes. */
        if (e->kind == SIM_EV_WAKE)
            return true;
        if (e->kind == SIM_EV_DGRAM) {
            if (!vnet_dgram_arrives(s, e))
                return true;
            sim_entry arrived = *e;
            arrived.c = 1;
            defer_event(nd, &arrived);
            return false;
        }
        defer_event(nd, e);
        return false;
    }
    switch (e->kind) {
    case SIM_EV_DGRAM:
        vnet_deliver_dgram(s, e);
        break;
    case SIM_EV_WAKE:
        node_wake(s, e);
        break;
    default:
        vnet_stream_event(s, e);
        break;
    }
    return true;
}

static void apply_fault(rumor_sim *s, const rumor_sim_fault *f);

static void node_resume(rumor_sim *s, const sim_entry *e)
{
    uint32_t i = e->node;
    sim_node *nd = &s->nodes[i];
    if (nd->state != RUMOR_SIM_PAUSED || e->a != nd->pause_gen)
        return;
    nd->state = RUMOR_SIM_UP;
    sim_log(s, "node-%u resumes with %zu queued inputs", i, nd->ndeferred);
    sim_entry *held = nd->deferred;
    size_t nheld = nd->ndeferred;
    nd->deferred = NULL;
    nd->ndeferred = nd->capdeferred = 0;
    /* Input that queued during the stall is handled first, in arrival order, as a process
     * draining its socket buffers would; then the overdue timers run. */
    for (size_t k = 0; k < nheld; k++) {
        if (nd->state == RUMOR_SIM_UP)
            dispatch_node(s, &held[k]);
        free(held[k].p);
    }
    free(held);
    sim_after_call(s, i);
}

static void dispatch(rumor_sim *s, const sim_entry *e)
{
    s->trace = sim_hash_u64(s->trace, e->at);
    s->trace = sim_hash_u64(s->trace, (uint64_t)e->kind << 32 | e->node);
    bool release = true;
    switch (e->kind) {
    case SIM_EV_FAULT:
        apply_fault(s, e->p);
        break;
    case SIM_EV_RESUME:
        node_resume(s, e);
        break;
    default:
        release = dispatch_node(s, e);
        break;
    }
    if (release)
        free(e->p);
}

/*
 * At 10,000 nodes the state of the node an event is for is rarely still in the CPU cache. The
 * next three events' nodes are known, so their memory is requested while this event runs, in
 * three steps: the node's state for the third; what it points to, and the index slot of a
 * datagram's sender (a ping's receiver looks it up), for the second; the next probe target's
 * and the sender's records for the first. Only speed changes.
 */
static void prefetch_upcoming(const rumor_sim *s)
{
    const sim_entry *up[3];
    size_t k = sim_heap_upcoming(&s->heap, up, 3);
    for (size_t i = k; i-- > 0;) {
        if (up[i]->node >= s->n)
            continue;
        const rumor_node *eng = s->engs[up[i]->node];
        if (!eng)
            continue;
        unsigned level = (unsigned)(2 - i);
        if (level == 0) {
            const sim_node *nd = &s->nodes[up[i]->node];
            __builtin_prefetch(nd);
            __builtin_prefetch((const char *)(nd + 1) - 1);
        }
        rumor_node_prefetch(eng, level);
        if (up[i]->kind == SIM_EV_DGRAM && level > 0) {
            const sim_pkt *p = up[i]->p;
            if (p->src < s->n && s->name_len[p->src])
                rumor_node_prefetch_member(eng, s->names[p->src], s->name_len[p->src], level);
        }
    }
}

int rumor_sim_run_until(rumor_sim *s, uint64_t t)
{
    while (!s->failed) {
        const sim_entry *top = sim_heap_peek(&s->heap);
        if (!top || top->at > t)
            break;
        sim_entry e;
        sim_heap_pop(&s->heap, &e);
        s->now = e.at;
        prefetch_upcoming(s);
        dispatch(s, &e);
    }
    if (!s->failed && t > s->now)
        s->now = t;
    return s->failed ? RUMOR_ERR_STATE : 0;
}

int rumor_sim_run_for(rumor_sim *s, uint64_t ms)
{
    return rumor_sim_run_until(s, s->now + ms);
}

/* ------------------------------------------------------------------------------------------ */
/* Node life cycle                                                                            */

static int node_boot(rumor_sim *s, uint32_t i, bool set_inc, uint32_t inc)
{
    sim_node *nd = &s->nodes[i];
    rumor_settings st;
    int rc = rumor_settings_default(&st, s->o.profile);
    if (rc != 0)
        return rc;
    char name[32];
    snprintf(name, sizeof(name), "node-%u", i);
    st.name = name;
    rumor_sim_addr(&st.addr, i);
    st.seed = sim_rng_next(s->rng);
    uint8_t keys[RUMOR_KEYRING_MAX][RUMOR_KEY_BYTES];
    if (s->o.encrypt)
        sim_seal_settings(s, i, &st, keys);
    if (set_inc)
        st.incarnation = inc;
    if (s->o.settings_fn)
        s->o.settings_fn(&st, i, s->o.settings_ud);
    size_t len = st.name ? strlen(st.name) : 0;
    s->name_len[i] = len < sizeof(s->names[i]) ? (uint8_t)len : 0;
    memcpy(s->names[i], st.name, s->name_len[i]);
    rumor_node *eng;
    rc = rumor_node_new(&eng, &st, s->now);
    if (rc == 0 && sim_rec_on(s, i))
        sim_rec_new(s, &st);
    memset(keys, 0, sizeof(keys));
    if (rc != 0)
        return rc;
    if (nd->life == 0)
        s->started++;
    nd->eng = eng;
    s->engs[i] = eng;
    nd->state = RUMOR_SIM_UP;
    nd->life++;
    nd->leaving = nd->leave_done = false;
    nd->life_inc = nd->last_inc = st.incarnation;
    nd->wake_at = SIM_NEVER;
    nd->wake_gen++;
    nd->ticks_at_same_time = 0;
    sim_log(s, "node-%u starts, life %u, incarnation %u", i, nd->life, st.incarnation);
    sim_check_node_up(s, i);
    return 0;
}

int rumor_sim_node_start(rumor_sim *s, uint32_t i, uint32_t incarnation)
{
    if (i >= s->n)
        return RUMOR_ERR_INVALID;
    if (s->nodes[i].state != RUMOR_SIM_DOWN)
        return RUMOR_ERR_STATE;
    int rc = node_boot(s, i, true, incarnation);
    if (rc == 0)
        sim_after_call(s, i);
    return rc;
}

int rumor_sim_warm_start(rumor_sim *s)
{
    for (uint32_t i = 0; i < s->n; i++)
        if (s->nodes[i].state != RUMOR_SIM_DOWN)
            return RUMOR_ERR_STATE;
    /* Names once, not once per (node, member) pair. */
    char(*names)[16] = malloc((size_t)s->n * sizeof(*names));
    if (!names)
        return RUMOR_ERR_NOMEM;
    for (uint32_t j = 0; j < s->n; j++)
        snprintf(names[j], sizeof(names[j]), "node-%u", j);
    int rc = 0;
    for (uint32_t i = 0; i < s->n && rc == 0; i++)
        rc = node_boot(s, i, true, 0);
    /* With identities, every node also pins every other's key, as a host restoring a snapshot
     * with the keys it remembered would: signed state (key-value deltas) verifies at once,
     * before each member's next signed claim comes round. */
    uint8_t(*keys)[RUMOR_IDENTITY_KEY_BYTES] = NULL;
    for (uint32_t j = 0; j < s->n && rc == 0; j++) {
        rumor_member self;
        if (rumor_node_member_find(s->nodes[j].eng, names[j], &self) != RUMOR_OK ||
            !self.public_key) {
            free(keys); /* not every node has one: no pins */
            keys = NULL;
            break;
        }
        if (!keys && !(keys = malloc((size_t)s->n * sizeof(*keys))))
            rc = RUMOR_ERR_NOMEM;
        else
            memcpy(keys[j], self.public_key, RUMOR_IDENTITY_KEY_BYTES);
    }
    for (uint32_t i = 0; i < s->n && rc == 0; i++) {
        /* The table's final size is known: size its arrays once (a 10,000-node run would
         * otherwise leave 1.5 GB of grown-out copies behind). */
        if (sim_rec_on(s, i))
            sim_rec_u64(s, SIM_TR_RESERVE, s->n);
        rc = rumor_node_reserve(s->nodes[i].eng, s->n);
        for (uint32_t j = 0; j < s->n && rc == 0; j++) {
            if (j == i)
                continue;
            rumor_member m = {.name = names[j], .incarnation = 0};
            m.public_key = keys ? keys[j] : NULL;
            rumor_sim_addr(&m.addr, j);
            if (sim_rec_on(s, i))
                sim_rec_restore(s, &m);
            rc = rumor_node_restore(s->nodes[i].eng, &m, s->now);
            /* Drain as we go, within the engine's kept queue size (NODE_QUEUE_KEEP): N events at
             * once would make it allocate and release a large queue for every node. */
            if (j % 64 == 63)
                sim_after_call(s, i);
        }
        sim_after_call(s, i);
    }
    free(keys);
    free(names);
    return rc;
}

/* A random live node other than `self`, or SIM_NONE when there is none. */
static uint32_t random_live(rumor_sim *s, uint32_t self)
{
    for (int tries = 0; tries < 64; tries++) {
        uint32_t j = (uint32_t)sim_rng_below(s->rng, s->n);
        if (j != self && sim_is_live(&s->nodes[j]))
            return j;
    }
    uint32_t start = (uint32_t)sim_rng_below(s->rng, s->n);
    for (uint32_t k = 0; k < s->n; k++) {
        uint32_t j = (start + k) % s->n;
        if (j != self && sim_is_live(&s->nodes[j]))
            return j;
    }
    return SIM_NONE;
}

int rumor_sim_node_join(rumor_sim *s, uint32_t i, const uint32_t *seeds, size_t nseeds)
{
    if (i >= s->n || nseeds == 0 || nseeds > 64)
        return RUMOR_ERR_INVALID;
    sim_node *nd = &s->nodes[i];
    if (nd->state != RUMOR_SIM_UP)
        return RUMOR_ERR_STATE;
    rumor_addr addrs[64];
    for (size_t k = 0; k < nseeds; k++) {
        if (seeds[k] >= s->n)
            return RUMOR_ERR_INVALID;
        rumor_sim_addr(&addrs[k], seeds[k]);
    }
    if (sim_rec_on(s, i))
        sim_rec_join(s, addrs, nseeds);
    int rc = rumor_node_join(nd->eng, addrs, nseeds, s->now);
    sim_log(s, "node-%u joins through node-%u%s: %d", i, seeds[0], nseeds > 1 ? " and others" : "",
            rc);
    sim_after_call(s, i);
    return rc;
}

static int join_through(rumor_sim *s, uint32_t i, uint32_t seed)
{
    if (seed == RUMOR_SIM_SEED_RANDOM)
        seed = random_live(s, i);
    if (seed == SIM_NONE || seed == i)
        return 0; /* the first node has nobody to join */
    return rumor_sim_node_join(s, i, &seed, 1);
}

int rumor_sim_node_start_join(rumor_sim *s, uint32_t i, uint32_t seed)
{
    if (i >= s->n)
        return RUMOR_ERR_INVALID;
    if (s->nodes[i].state != RUMOR_SIM_DOWN)
        return RUMOR_ERR_STATE;
    int rc = node_boot(s, i, false, 0);
    if (rc != 0)
        return rc;
    sim_after_call(s, i);
    return join_through(s, i, seed);
}

static void node_shutdown(rumor_sim *s, uint32_t i, rumor_sim_node_state st)
{
    sim_node *nd = &s->nodes[i];
    rumor_member self;
    rumor_node_self(nd->eng, &self);
    nd->last_inc = self.incarnation;
    sim_log(s, "node-%u %s at incarnation %u", i, st == RUMOR_SIM_GONE ? "shuts down" : "crashes",
            self.incarnation);
    vnet_stream_node_down(s, i, st == RUMOR_SIM_GONE);
    free_deferred(nd);
    if (sim_rec_on(s, i))
        sim_rec_simple(s, SIM_TR_DEL);
    rumor_node_del(nd->eng);
    nd->eng = NULL;
    s->engs[i] = NULL;
    nd->state = (uint8_t)st;
    nd->wake_at = SIM_NEVER;
    nd->wake_gen++;
    nd->pause_gen++;
    sim_check_node_down(s, i, st == RUMOR_SIM_CRASHED);
}

int rumor_sim_node_crash(rumor_sim *s, uint32_t i)
{
    if (i >= s->n)
        return RUMOR_ERR_INVALID;
    if (!sim_is_live(&s->nodes[i]))
        return RUMOR_ERR_STATE;
    node_shutdown(s, i, RUMOR_SIM_CRASHED);
    return 0;
}

int rumor_sim_node_restart(rumor_sim *s, uint32_t i, bool bump, uint32_t seed)
{
    int rc = rumor_sim_node_reboot(s, i, bump);
    return rc != 0 ? rc : join_through(s, i, seed);
}

int rumor_sim_node_reboot(rumor_sim *s, uint32_t i, bool bump)
{
    if (i >= s->n)
        return RUMOR_ERR_INVALID;
    sim_node *nd = &s->nodes[i];
    if (nd->state != RUMOR_SIM_CRASHED && nd->state != RUMOR_SIM_GONE)
        return RUMOR_ERR_STATE;
    int rc = node_boot(s, i, true, nd->last_inc + (bump ? 1u : 0u));
    if (rc != 0)
        return rc;
    s->rejoin_from = s->now;
    sim_after_call(s, i);
    return 0;
}

int rumor_sim_node_pause(rumor_sim *s, uint32_t i, uint64_t ms)
{
    if (i >= s->n || ms == 0)
        return RUMOR_ERR_INVALID;
    sim_node *nd = &s->nodes[i];
    if (nd->state != RUMOR_SIM_UP)
        return RUMOR_ERR_STATE;
    sim_log(s, "node-%u pauses for %llu ms", i, (unsigned long long)ms);
    nd->state = RUMOR_SIM_PAUSED;
    nd->wake_at = SIM_NEVER;
    nd->wake_gen++;
    sim_entry e = {.kind = SIM_EV_RESUME, .node = i, .a = ++nd->pause_gen};
    sim_push(s, s->now + ms, &e);
    return 0;
}

int rumor_sim_node_leave(rumor_sim *s, uint32_t i)
{
    if (i >= s->n)
        return RUMOR_ERR_INVALID;
    sim_node *nd = &s->nodes[i];
    if (nd->state != RUMOR_SIM_UP)
        return RUMOR_ERR_STATE;
    if (sim_rec_on(s, i))
        sim_rec_simple(s, SIM_TR_LEAVE);
    int rc = rumor_node_leave(nd->eng, s->now);
    sim_log(s, "node-%u leaves: %d", i, rc);
    if (rc == 0)
        nd->leaving = true;
    sim_after_call(s, i);
    return rc;
}

rumor_sim_node_state rumor_sim_node_state_of(const rumor_sim *s, uint32_t i)
{
    return i < s->n ? (rumor_sim_node_state)s->nodes[i].state : RUMOR_SIM_DOWN;
}

rumor_node *rumor_sim_node(const rumor_sim *s, uint32_t i)
{
    return i < s->n ? s->nodes[i].eng : NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Scheduled faults                                                                           */

int rumor_sim_schedule(rumor_sim *s, uint64_t at, const rumor_sim_fault *f)
{
    uint32_t limit = f->kind == RUMOR_SIM_FAULT_SPLIT ? s->n + 1 : s->n;
    if (f->kind >= RUMOR_SIM_FAULT_KEY_INSTALL && f->seed >= 32)
        return RUMOR_ERR_INVALID;
    if (at < s->now || (f->kind != RUMOR_SIM_FAULT_HEAL && f->node >= limit))
        return RUMOR_ERR_INVALID;
    rumor_sim_fault *copy = malloc(sizeof(*copy));
    if (!copy)
        return RUMOR_ERR_NOMEM;
    *copy = *f;
    sim_entry e = {.kind = SIM_EV_FAULT, .p = copy};
    sim_push(s, at, &e);
    return 0;
}

static void split(rumor_sim *s, uint32_t at)
{
    uint16_t *groups = calloc(s->n, sizeof(*groups));
    if (!groups)
        return;
    for (uint32_t i = at; i < s->n; i++)
        groups[i] = 1;
    rumor_sim_partition(s, groups);
    free(groups);
}

/* Faults aimed at a node in the wrong state (crashing a crashed node) are no-ops by design:
 * random schedules may pick such targets. */
static void apply_fault(rumor_sim *s, const rumor_sim_fault *f)
{
    switch (f->kind) {
    case RUMOR_SIM_FAULT_START_JOIN:
        (void)rumor_sim_node_start_join(s, f->node, f->seed);
        break;
    case RUMOR_SIM_FAULT_CRASH:
        (void)rumor_sim_node_crash(s, f->node);
        break;
    case RUMOR_SIM_FAULT_RESTART:
        (void)rumor_sim_node_restart(s, f->node, f->bump, f->seed);
        break;
    case RUMOR_SIM_FAULT_PAUSE:
        (void)rumor_sim_node_pause(s, f->node, f->ms);
        break;
    case RUMOR_SIM_FAULT_LEAVE:
        (void)rumor_sim_node_leave(s, f->node);
        break;
    case RUMOR_SIM_FAULT_SPLIT:
        split(s, f->node);
        break;
    case RUMOR_SIM_FAULT_HEAL:
        rumor_sim_heal(s);
        break;
    case RUMOR_SIM_FAULT_KEY_INSTALL:
    case RUMOR_SIM_FAULT_KEY_USE:
    case RUMOR_SIM_FAULT_KEY_REMOVE:
        (void)rumor_sim_node_keyring(s, f->node, f->kind, f->seed);
        break;
    }
}
