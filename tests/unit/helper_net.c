#include "helper_net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { D_DGRAM, D_ACCEPT, D_DATA, D_CLOSE, D_CONNFAIL } dkind;

typedef struct delivery {
    uint64_t at;
    dkind kind;
    int to, from;
    uint64_t sid; /* sender-side stream id (opener's id for ACCEPT) */
    int conn;     /* connection index */
    uint8_t *data;
    size_t len;
} delivery;

typedef struct conn {
    int a, b;          /* a opened to b */
    uint64_t ida, idb; /* stream ids on each side; idb 0 until accepted */
    bool open;
} conn;

struct tnet {
    int n;
    rumor_settings s[TNET_MAX];
    char names[TNET_MAX][16];
    rumor_node *node[TNET_MAX];
    bool down[TNET_MAX];
    bool cut[TNET_MAX][TNET_MAX];
    int events[TNET_MAX][TNET_MAX][9];
    delivery *q;
    size_t nq, capq;
    conn *c;
    size_t nc, capc;
    uint64_t now;
    uint64_t rng;
    double loss;
    tnet_event_fn hook;
    void *hook_ud;
    tnet_tap_fn tap;
    void *tap_ud;
};

static uint64_t rnd(tnet *t)
{
    t->rng ^= t->rng << 13;
    t->rng ^= t->rng >> 7;
    t->rng ^= t->rng << 17;
    return t->rng;
}

rumor_addr tnet_addr(int i)
{
    rumor_addr a;
    memset(&a, 0, sizeof(a));
    a.len = 4;
    a.bytes[3] = (uint8_t)i;
    a.bytes[2] = (uint8_t)(i >> 8);
    return a;
}

static int idx_of(const rumor_addr *a)
{
    if (a->len != 4)
        return -1;
    return a->bytes[2] << 8 | a->bytes[3];
}

tnet *tnet_new(int nodes, rumor_profile profile, uint64_t seed)
{
    tnet *t = calloc(1, sizeof(*t));
    t->n = nodes;
    t->rng = seed * 2654435761u + 1;
    t->now = 1000;
    for (int i = 0; i < nodes; i++) {
        rumor_settings_default(&t->s[i], profile);
        snprintf(t->names[i], sizeof(t->names[i]), "n%d", i);
        t->s[i].name = t->names[i];
        t->s[i].addr = tnet_addr(i);
        t->s[i].seed = seed * 1000 + (uint64_t)i;
    }
    return t;
}

rumor_settings *tnet_settings(tnet *t, int i)
{
    return &t->s[i];
}

void tnet_start(tnet *t, int i)
{
    if (t->node[i])
        rumor_node_del(t->node[i]);
    t->down[i] = false;
    int rc = rumor_node_new(&t->node[i], &t->s[i], t->now);
    if (rc != 0) {
        fprintf(stderr, "rumor_node_new: %s\n", rumor_strerror(rc));
        abort();
    }
}

void tnet_free(tnet *t)
{
    for (int i = 0; i < t->n; i++)
        rumor_node_del(t->node[i]);
    for (size_t i = 0; i < t->nq; i++)
        free(t->q[i].data);
    free(t->q);
    free(t->c);
    free(t);
}

rumor_node *tnet_node(tnet *t, int i)
{
    return t->node[i];
}

uint64_t tnet_now(const tnet *t)
{
    return t->now;
}

void tnet_set_loss(tnet *t, double p)
{
    t->loss = p;
}

void tnet_cut(tnet *t, int i, int j, bool cut)
{
    t->cut[i][j] = t->cut[j][i] = cut;
}

static void push(tnet *t, delivery d)
{
    if (t->nq == t->capq) {
        t->capq = t->capq ? t->capq * 2 : 256;
        t->q = realloc(t->q, t->capq * sizeof(*t->q));
    }
    t->q[t->nq++] = d;
}

static bool reachable(tnet *t, int a, int b)
{
    return b >= 0 && b < t->n && t->node[b] && !t->down[b] && !t->cut[a][b];
}

static conn *conn_of(tnet *t, int node, uint64_t id, bool *is_a)
{
    for (size_t i = 0; i < t->nc; i++) {
        conn *c = &t->c[i];
        if (!c->open)
            continue;
        if (c->a == node && c->ida == id) {
            *is_a = true;
            return c;
        }
        if (c->b == node && c->idb == id && c->idb) {
            *is_a = false;
            return c;
        }
    }
    return NULL;
}

static void drain(tnet *t, int i)
{
    rumor_node *nd = t->node[i];
    rumor_datagram d;
    while (rumor_node_poll_datagram(nd, &d)) {
        int to = idx_of(&d.to);
        if (!reachable(t, i, to) || (t->loss > 0 && (double)(rnd(t) % 1000000) / 1e6 < t->loss))
            continue;
        delivery x = {t->now + 1, D_DGRAM, to, i, 0, -1, malloc(d.len), d.len};
        memcpy(x.data, d.data, d.len);
        push(t, x);
    }
    rumor_stream_op op;
    while (rumor_node_poll_stream(nd, &op)) {
        bool is_a;
        if (op.kind == RUMOR_STREAM_OPEN) {
            int to = idx_of(&op.to);
            if (t->nc == t->capc) {
                t->capc = t->capc ? t->capc * 2 : 64;
                t->c = realloc(t->c, t->capc * sizeof(*t->c));
            }
            conn *c = &t->c[t->nc++];
            *c = (conn){i, to, op.id, 0, true};
            delivery x = {t->now + 1, reachable(t, i, to) ? D_ACCEPT : D_CONNFAIL,
                          to,         i,
                          op.id,      (int)(t->nc - 1),
                          NULL,       0};
            if (x.kind == D_CONNFAIL)
                x.to = i;
            push(t, x);
            continue;
        }
        conn *c = conn_of(t, i, op.id, &is_a);
        if (!c)
            continue;
        int peer = is_a ? c->b : c->a;
        if (op.kind == RUMOR_STREAM_WRITE) {
            delivery x = {t->now + 1, D_DATA, peer, i, 0, (int)(c - t->c), malloc(op.len), op.len};
            memcpy(x.data, op.data, op.len);
            x.sid = is_a ? 1 : 0; /* direction: 1 = towards b */
            push(t, x);
        } else {
            delivery x = {t->now + 1, D_CLOSE, peer, i, is_a ? 1 : 0, (int)(c - t->c), NULL, 0};
            push(t, x);
            /* The closing side is done with its id. */
            if (is_a)
                c->ida = 0;
            else
                c->idb = UINT64_MAX;
        }
    }
    rumor_event ev;
    bool hooked = false, took = false;
    while (rumor_node_poll_event(nd, &ev)) {
        took = true;
        int who = -1;
        if (ev.member.addr.len == 4)
            who = idx_of(&ev.member.addr);
        if (who >= 0 && who < TNET_MAX && ev.type < 9)
            t->events[i][who][ev.type]++;
        if (t->hook) {
            t->hook(t, i, &ev, t->hook_ud);
            hooked = true;
        }
    }
    if (hooked || took)
        drain(t, i); /* what the hook made the node send, or taking the events released */
}

void tnet_poll(tnet *t, int i)
{
    drain(t, i);
}

void tnet_set_event_hook(tnet *t, tnet_event_fn fn, void *ud)
{
    t->hook = fn;
    t->hook_ud = ud;
}

static void deliver(tnet *t, delivery *d)
{
    int to = d->to;
    if (to < 0 || to >= t->n || !t->node[to] || t->down[to])
        return;
    rumor_node *nd = t->node[to];
    conn *c = d->conn >= 0 ? &t->c[d->conn] : NULL;
    switch (d->kind) {
    case D_DGRAM: {
        rumor_addr from = tnet_addr(d->from);
        if (t->tap && !t->cut[d->from][to])
            t->tap(t->tap_ud, d->from, to, false, d->data, d->len);
        if (!t->cut[d->from][to])
            rumor_node_receive(nd, &from, d->data, d->len, t->now);
        break;
    }
    case D_ACCEPT: {
        rumor_addr from = tnet_addr(d->from);
        uint64_t id;
        if (rumor_node_stream_accept(nd, &from, &id, t->now) == 0)
            c->idb = id;
        break;
    }
    case D_CONNFAIL:
        rumor_node_stream_closed(nd, c->ida, t->now);
        c->open = false;
        break;
    case D_DATA: {
        uint64_t id = d->sid ? c->idb : c->ida;
        if (t->tap)
            t->tap(t->tap_ud, d->from, to, true, d->data, d->len);
        if (id && id != UINT64_MAX)
            rumor_node_stream_data(nd, id, d->data, d->len, t->now);
        break;
    }
    case D_CLOSE: {
        uint64_t id = d->sid ? c->idb : c->ida;
        if (id && id != UINT64_MAX)
            rumor_node_stream_closed(nd, id, t->now);
        c->open = false;
        break;
    }
    }
    drain(t, to);
}

void tnet_join(tnet *t, int i, int seed)
{
    rumor_addr a = tnet_addr(seed);
    rumor_node_join(t->node[i], &a, 1, t->now);
    drain(t, i);
}

void tnet_run(tnet *t, uint64_t until)
{
    for (;;) {
        uint64_t next = until + 1;
        for (size_t i = 0; i < t->nq; i++)
            if (t->q[i].at < next)
                next = t->q[i].at;
        for (int i = 0; i < t->n; i++)
            if (t->node[i] && !t->down[i]) {
                uint64_t dl = rumor_node_deadline(t->node[i]);
                if (dl < next)
                    next = dl;
            }
        if (next > until) {
            t->now = until;
            return;
        }
        if (next > t->now)
            t->now = next;
        /* Deliver everything due, in queue order (deterministic). */
        for (size_t i = 0; i < t->nq;) {
            if (t->q[i].at <= t->now) {
                delivery d = t->q[i];
                memmove(&t->q[i], &t->q[i + 1], (t->nq - i - 1) * sizeof(*t->q));
                t->nq--;
                deliver(t, &d);
                free(d.data);
            } else {
                i++;
            }
        }
        for (int i = 0; i < t->n; i++)
            if (t->node[i] && !t->down[i] && rumor_node_deadline(t->node[i]) <= t->now) {
                rumor_node_tick(t->node[i], t->now);
                drain(t, i);
            }
    }
}

void tnet_crash(tnet *t, int i)
{
    t->down[i] = true;
}

int tnet_state(tnet *t, int observer, int who)
{
    rumor_member m;
    if (rumor_node_member_find(t->node[observer], t->names[who], &m) != 0)
        return -1;
    return (int)m.state;
}

int tnet_events(tnet *t, int observer, int who, rumor_event_type type)
{
    return t->events[observer][who][type];
}

int tnet_inject(tnet *t, int to, const rumor_addr *from, const uint8_t *p, size_t len)
{
    int rc = rumor_node_receive(t->node[to], from, p, len, t->now);
    drain(t, to);
    return rc;
}

void tnet_tap(tnet *t, tnet_tap_fn fn, void *ud)
{
    t->tap = fn;
    t->tap_ud = ud;
}

void tnet_restart(tnet *t, int i)
{
    tnet_start(t, i);
    drain(t, i);
}

void tnet_fill(uint8_t *p, size_t n, uint8_t start)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(start + i);
}
