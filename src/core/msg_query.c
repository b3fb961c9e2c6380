/*
 * Queries (Serf's): a request spread like a user event, ordered by the query Lamport clock and
 * told apart by (Lamport time, asker, random id). Every node that passes the filters (node
 * names, and tags as the host's settings.query_tag_match decides) acks at once when asked to and
 * hands the query to its host, whose one answer goes straight back to the asker by datagram.
 * The asker counts distinct acks and responses per member until the deadline, then reports how
 * many of the members it expected (the live ones that passed the filters in its own table when
 * it asked) stayed silent, and which.
 */
#include "core/hash.h"
#include "core/node.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Members outside the matched set that may answer one query (they joined after it was asked,
 * or their tags changed): beyond this their answers are dropped. */
#define QUERY_OTHERS_MAX 4096
/* Direct resends of an engine query to the members that have not answered, at 1/4 and 1/2 of
 * its timeout: what gossip missed (a few percent of members per query at 40 nodes in the
 * simulator) is then missed only if three independent deliveries fail. */
#define QUERY_RESENDS 2

typedef struct qfilter {
    wire_str *nodes;
    uint32_t nnodes;
    wire_str *keys, *values;
    uint32_t ntags;
} qfilter;

static bool str_eq(wire_str a, const char *p, size_t len)
{
    return a.len == len && memcmp(a.p, p, len) == 0;
}

uint32_t rumor_node_query_timeout_default(const rumor_node *n)
{
    /* Serf: GossipInterval × QueryTimeoutMult × ⌈log10(N+1)⌉, at least one step. */
    uint64_t live = members_live(&n->mem), pow10 = 1, steps = 0;
    while (pow10 < live + 1) {
        pow10 *= 10;
        steps++;
    }
    uint64_t ms = (uint64_t)n->s.gossip_interval_ms * n->s.query_timeout_mult * (steps ? steps : 1);
    return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

/* ---- filters ---- */

static bool tag_ok(const rumor_node *n, const member *m, wire_str key, wire_str value)
{
    if (!n->s.query_tag_match || key.len > RUMOR_TAG_KEY_MAX || value.len > RUMOR_TAG_VALUE_MAX)
        return false;
    char k[RUMOR_TAG_KEY_MAX + 1], v[RUMOR_TAG_VALUE_MAX + 1];
    memcpy(k, key.p, key.len);
    k[key.len] = '\0';
    if (value.len)
        memcpy(v, value.p, value.len);
    v[value.len] = '\0';
    size_t meta_len;
    const uint8_t *meta = members_meta(&n->mem, m, &meta_len);
    return n->s.query_tag_match(n->s.query_tag_match_ud, meta, meta_len, k, v);
}

static bool live(const member *m)
{
    return m->state == RUMOR_MEMBER_ALIVE || m->state == RUMOR_MEMBER_SUSPECT;
}

/* Whether this node passes a received query's filters. */
static bool self_matches(const rumor_node *n, const wire_query_parts *q)
{
    wire_str a, b;
    if (q->nnodes) {
        bool named = false;
        buf_reader r = q->nodes;
        for (uint32_t i = 0; i < q->nnodes && !named && wire_query_node_next(&r, &a); i++)
            named = str_eq(a, n->name, n->name_len);
        if (!named)
            return false;
    }
    buf_reader r = q->tags;
    for (uint32_t i = 0; i < q->ntags && wire_query_tag_next(&r, &a, &b); i++)
        if (!tag_ok(n, n->self, a, b))
            return false;
    return true;
}

static bool member_matches(const rumor_node *n, const member *m, const qfilter *f)
{
    if (!live(m))
        return false;
    for (uint32_t i = 0; i < f->ntags; i++)
        if (!tag_ok(n, m, f->keys[i], f->values[i]))
            return false;
    return true;
}

static void filter_free(rumor_node *n, qfilter *f)
{
    rfree(&n->alloc, f->nodes);
    rfree(&n->alloc, f->keys);
}

/* Checks the host's filters and copies them as wire strings; `*rest` becomes the size of the
 * query's variable part, which query_bytes_max bounds (checked before anything is allocated). */
static int filter_build(rumor_node *n, const rumor_query_params *p, wire_str name, wire_str payload,
                        qfilter *f, size_t *rest)
{
    memset(f, 0, sizeof(*f));
    size_t nn = p ? p->nnodes : 0, nt = p ? p->ntags : 0, max = n->s.query_bytes_max;
    if ((nn && !p->nodes) || (nt && !p->tags))
        return RUMOR_ERR_INVALID;
    size_t size =
        10u + buf_varint_size(name.len) + name.len + buf_varint_size(payload.len) + payload.len;
    for (size_t i = 0; i < nn; i++) {
        const char *s = p->nodes[i];
        size_t len = s ? strlen(s) : 0;
        if (!wire_name_ok((const uint8_t *)s, len))
            return RUMOR_ERR_INVALID;
        if ((size += 1u + len) > max)
            return RUMOR_ERR_TOO_BIG;
    }
    for (size_t i = 0; i < nt; i++) {
        const rumor_query_tag *t = &p->tags[i];
        size_t kl = t->key ? strlen(t->key) : 0, vl = t->value ? strlen(t->value) : 0;
        if (kl == 0 || kl > RUMOR_TAG_KEY_MAX || !t->value || vl > RUMOR_TAG_VALUE_MAX)
            return RUMOR_ERR_INVALID;
        if ((size += 1u + kl + 2u + vl) > max)
            return RUMOR_ERR_TOO_BIG;
    }
    f->nnodes = (uint32_t)nn;
    f->ntags = (uint32_t)nt;
    f->nodes = nn ? rcalloc(&n->alloc, nn, sizeof(wire_str)) : NULL;
    f->keys = nt ? rcalloc(&n->alloc, 2 * nt, sizeof(wire_str)) : NULL;
    if ((nn && !f->nodes) || (nt && !f->keys)) {
        filter_free(n, f);
        return RUMOR_ERR_NOMEM;
    }
    f->values = f->keys ? f->keys + nt : NULL;
    for (size_t i = 0; i < nn; i++)
        f->nodes[i] = wire_str_of(p->nodes[i], strlen(p->nodes[i]));
    for (size_t i = 0; i < nt; i++) {
        f->keys[i] = wire_str_of(p->tags[i].key, strlen(p->tags[i].key));
        f->values[i] = wire_str_of(p->tags[i].value, strlen(p->tags[i].value));
    }
    *rest = wire_query_rest_size(f->nodes, f->nnodes, f->keys, f->values, f->ntags, name, payload);
    if (*rest > max) {
        filter_free(n, f);
        return RUMOR_ERR_TOO_BIG;
    }
    return RUMOR_OK;
}

/* ---- the queries this node asked ---- */

static int peer_cmp(const void *a, const void *b)
{
    const qpeer *x = a, *y = b;
    size_t len = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->name, y->name, len);
    return c ? c : (int)x->len - (int)y->len;
}

static qpeer *peer_find(qout *q, wire_str name)
{
    size_t lo = 0, hi = q->npeers;
    qpeer key = {(const char *)name.p, (uint8_t)name.len, 0};
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = peer_cmp(&key, &q->peers[mid]);
        if (c == 0)
            return &q->peers[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Snapshots the members expected to answer: live members passing the filters, sorted by name
 * so that answers find theirs in O(log N). */
static bool expect(rumor_node *n, qout *q, const qfilter *f)
{
    size_t cand = f->nnodes ? f->nnodes : n->mem.count, count = 0, bytes = 0;
    member **ms = rcalloc(&n->alloc, cand ? cand : 1, sizeof(member *));
    if (!ms)
        return false;
    for (size_t i = 0; i < cand; i++) {
        member *m = f->nnodes ? members_find(&n->mem, (const char *)f->nodes[i].p, f->nodes[i].len)
                              : n->mem.order[i];
        if (m && member_matches(n, m, f)) {
            ms[count++] = m;
            bytes += m->name_len + 1u;
        }
    }
    q->peers = rcalloc(&n->alloc, count ? count : 1, sizeof(qpeer));
    q->arena = ralloc(&n->alloc, bytes ? bytes : 1);
    if (!q->peers || !q->arena) {
        rfree(&n->alloc, ms);
        return false;
    }
    char *at = q->arena;
    for (size_t i = 0; i < count; i++) {
        memcpy(at, member_name(ms[i]), ms[i]->name_len);
        at[ms[i]->name_len] = '\0';
        q->peers[i] = (qpeer){at, ms[i]->name_len, 0};
        at += ms[i]->name_len + 1u;
    }
    rfree(&n->alloc, ms);
    qsort(q->peers, count, sizeof(qpeer), peer_cmp);
    /* A name listed twice in the filter was found twice. */
    size_t u = 0;
    for (size_t i = 0; i < count; i++)
        if (u == 0 || peer_cmp(&q->peers[u - 1], &q->peers[i]) != 0)
            q->peers[u++] = q->peers[i];
    q->npeers = (uint32_t)u;
    return true;
}

static void qout_free(rumor_node *n, qout *q)
{
    if (!q)
        return;
    rfree(&n->alloc, q->peers);
    rfree(&n->alloc, q->arena);
    rfree(&n->alloc, q->others);
    if (q->resend_msg) {
        sodium_memzero(q->resend_msg, q->resend_len); /* a key operation's key */
        rfree(&n->alloc, q->resend_msg);
    }
    rfree(&n->alloc, q);
}

static void out_remove(rumor_node *n, size_t i)
{
    msg_state *g = &n->msg;
    qout_free(n, g->out[i]);
    memmove(&g->out[i], &g->out[i + 1], (g->nout - i - 1) * sizeof(qout *));
    g->nout--;
}

static qout *out_find(rumor_node *n, uint64_t ltime, uint32_t wire_id)
{
    for (size_t i = 0; i < n->msg.nout; i++) {
        qout *q = n->msg.out[i];
        if (q->wire_id == wire_id && q->ltime == ltime)
            return q;
    }
    return NULL;
}

static qout *out_by_id(const rumor_node *n, uint64_t id)
{
    for (size_t i = 0; i < n->msg.nout; i++)
        if (n->msg.out[i]->id == id)
            return n->msg.out[i];
    return NULL;
}

static void result_of(const qout *q, rumor_query_result *r)
{
    r->deadline_ms = q->deadline;
    r->done = q->done;
    r->request_ack = q->ack;
    r->matched = q->npeers;
    r->acks = q->acks;
    r->responses = q->responses;
    r->no_ack = q->ack ? q->npeers - q->acked_matched : 0;
    r->no_response = q->npeers - q->responded_matched;
}

/* The flags of an answering member outside the matched set, created on first sight. */
static uint8_t *other_flags(rumor_node *n, qout *q, wire_str from)
{
    uint64_t h = hash_fnv64(HASH_FNV64_INIT, from.p, from.len);
    for (size_t i = 0; i < q->nothers; i++)
        if (q->others[i].hash == h)
            return &q->others[i].flags;
    if (q->nothers >= QUERY_OTHERS_MAX || q->nothers >= n->s.members_max)
        return NULL;
    void *arr = q->others;
    if (!rgrow(&n->alloc, &arr, &q->others_cap, q->nothers + 1, sizeof(qother)))
        return NULL;
    q->others = arr;
    q->others[q->nothers] = (qother){h, 0};
    return &q->others[q->nothers++].flags;
}

/* An ack or a response from `from` for our query `q`: taken once per member. */
static void take_answer(rumor_node *n, qout *q, wire_str from, bool ack, wire_str payload)
{
    qpeer *p = peer_find(q, from);
    uint8_t *flags = p ? &p->flags : other_flags(n, q, from);
    uint8_t bit = ack ? QPEER_ACKED : QPEER_RESPONDED;
    if (!flags) {
        node_drop(n, RUMOR_DROP_QUEUE_FULL);
        return;
    }
    if (*flags & bit) {
        node_drop(n, RUMOR_DROP_STALE); /* a duplicate */
        return;
    }
    *flags |= bit;
    if (ack) {
        q->acks++;
        if (p)
            q->acked_matched++;
        n->st.query_acks_in++;
    } else {
        q->responses++;
        if (p)
            q->responded_matched++;
        n->st.query_responses_in++;
    }
    ev_rec *e = msg_event(n, ack ? RUMOR_EVENT_QUERY_ACK : RUMOR_EVENT_QUERY_RESPONSE, from,
                          wire_str_of(NULL, 0), ack ? wire_str_of(NULL, 0) : payload);
    if (e) {
        e->query_id = q->id;
        e->ltime = q->ltime;
        e->deadline = q->deadline;
    }
}

void msg_on_query_resp(rumor_node *n, const wire_msg *m, uint64_t now)
{
    (void)now;
    bool ack = (m->u.query_resp.flags & WIRE_Q_ACK) != 0;
    if (m->u.query_resp.payload.len > n->s.query_response_bytes_max) {
        node_drop(n, RUMOR_DROP_OVERSIZE);
        return;
    }
    qout *q = out_find(n, m->u.query_resp.ltime, m->u.query_resp.id);
    /* No such query (a forgery, or one we forgot), past its deadline, or an ack nobody asked
     * for. */
    if (!q || q->done || (ack && !q->ack)) {
        node_drop(n, RUMOR_DROP_STALE);
        return;
    }
    /* With identities, only the responder it names can have made it (repeats of one response
     * are answered by the verification cache). */
    if (ident_msg_check(n, m) != IDENT_OK)
        return;
    take_answer(n, q, m->u.query_resp.from, ack, m->u.query_resp.payload);
}

/* ---- the queries this node may answer ---- */

static void in_purge(rumor_node *n, uint64_t now)
{
    msg_state *g = &n->msg;
    size_t k = 0;
    for (size_t i = 0; i < g->nin; i++)
        if (g->in[i].deadline > now)
            g->in[k++] = g->in[i];
    g->nin = k;
}

static qin *in_by_id(rumor_node *n, uint64_t id)
{
    for (size_t i = 0; i < n->msg.nin; i++)
        if (n->msg.in[i].id == id)
            return &n->msg.in[i];
    return NULL;
}

static bool send_resp(rumor_node *n, const qin *in, uint8_t flags, wire_str payload)
{
    if (!node_pkt_begin(n, &in->to, in->to_id))
        return false;
    uint8_t sigb[WIRE_SIG_BYTES];
    const uint8_t *sig = NULL;
    if (n->ident) {
        ident_resp_sign(n, wire_str_of(in->asker, in->asker_len), in->ltime, in->wire_id, flags,
                        payload, sigb);
        sig = sigb;
    }
    wire_put_query_resp_sig(node_pkt(n), in->ltime, in->wire_id, node_self_name(n), flags, payload,
                            sig);
    /* Nothing rides along: the asker already holds every query it asked, and every member
     * answers it at once, so piggybacked broadcasts would spend their retransmit budget on the
     * one node that needs them least (a burst of 32 queries sent two thirds of each query's
     * copies to the asker, and some members never got one). memberlist's SendToAddress, which
     * Serf's answers use, does not piggyback either. */
    node_pkt_end(n, false);
    return true;
}

typedef struct qask {
    uint64_t ltime;
    uint32_t wire_id;
    uint8_t flags;
    uint32_t timeout_ms;
    wire_str origin;
    rumor_addr addr;
} qask;

/* Hands a query that matched this node to the host, acking first when asked to. */
static void serve(rumor_node *n, const qask *a, wire_str name, wire_str payload, bool local,
                  uint64_t now)
{
    msg_state *g = &n->msg;
    /* Reserved names are the engine's own: the key operations are answered here, anything
     * else reserved (a newer version's, or a forgery) is neither acked nor handed on. */
    bool keys = keyq_is_name(name);
    if (!keys && rumor_name_reserved((const char *)name.p, name.len)) {
        n->st.reserved_refused++;
        node_drop(n, RUMOR_DROP_UNKNOWN_TYPE);
        return;
    }
    in_purge(n, now);
    void *arr = g->in;
    if (g->nin >= n->s.queries_inbound_max ||
        !rgrow(&n->alloc, &arr, &g->in_cap, g->nin + 1, sizeof(qin))) {
        node_drop(n, RUMOR_DROP_QUEUE_FULL);
        return;
    }
    g->in = arr;
    qin *in = &g->in[g->nin++];
    *in = (qin){g->next_in_id++,
                a->ltime,
                a->wire_id,
                now + a->timeout_ms,
                a->addr,
                node_dest_name(n, a->origin),
                false,
                local,
                0,
                {0}};
    in->asker_len = (uint8_t)a->origin.len; /* names are at most RUMOR_NAME_MAX bytes */
    memcpy(in->asker, a->origin.p, a->origin.len);
    if (a->flags & WIRE_Q_ACK) {
        qout *q = local ? out_find(n, a->ltime, a->wire_id) : NULL;
        if (q)
            take_answer(n, q, node_self_name(n), true, wire_str_of(NULL, 0));
        else if (!local)
            send_resp(n, in, WIRE_Q_ACK, wire_str_of(NULL, 0));
        n->st.query_acks_sent++;
    }
    if (keys) {
        /* A datagram that opened under our keyring has n->from_id set; our own query is
         * trusted as the host's call. */
        keyq_serve(n, in->id, a->origin, payload, local || n->from_id != 0, now);
        return;
    }
    ev_rec *e = msg_event(n, RUMOR_EVENT_QUERY, a->origin, name, payload);
    if (e) {
        e->query_id = in->id;
        e->ltime = a->ltime;
        e->deadline = in->deadline;
        e->addr = a->addr; /* the asker's address, known or not */
    }
    n->st.queries_served++;
}

/* What makes two queries at one Lamport time the same query: asker and id. */
static msg_admit admit_query(rumor_node *n, uint64_t ltime, wire_str origin, uint32_t id, bool peek)
{
    uint8_t olen = (uint8_t)origin.len;
    uint8_t idb[4] = {(uint8_t)(id >> 24), (uint8_t)(id >> 16), (uint8_t)(id >> 8), (uint8_t)id};
    wire_str parts[3] = {wire_str_of(&olen, 1), origin, wire_str_of(idb, 4)};
    if (peek)
        return msg_window_peek(&n->msg.queries, n->msg.query_clock, ltime, parts, 3);
    return msg_window_admit(&n->msg.queries, &n->alloc, n->msg.query_clock, ltime, parts, 3);
}

void msg_on_query(rumor_node *n, const wire_msg *m, uint64_t now)
{
    qask a = {m->u.query.ltime,      m->u.query.id,     m->u.query.flags,
              m->u.query.timeout_ms, m->u.query.origin, {0, {0}}};
    wire_addr_of(m->u.query.addr, &a.addr);
    n->st.queries_received++;
    /* Queries are relayed as they came: none larger than this node would ask itself. */
    if (m->u.query.rest.len > n->s.query_bytes_max) {
        node_drop(n, RUMOR_DROP_OVERSIZE);
        return;
    }
    /* With identities: checked against the asker's key at first sight, before anything else
     * (as user events are): a relay cannot ask in another's name, nor redirect the answers. */
    if (n->ident) {
        msg_admit seen = admit_query(n, a.ltime, a.origin, a.wire_id, true);
        if (seen == MSG_STALE) {
            n->st.queries_stale++;
            node_drop(n, RUMOR_DROP_STALE);
            return;
        }
        if (seen == MSG_DUP || ident_msg_check(n, m) != IDENT_OK)
            return;
    }
    msg_witness(&n->msg.query_clock, a.ltime);
    switch (admit_query(n, a.ltime, a.origin, a.wire_id, false)) {
    case MSG_NEW:
        break;
    case MSG_STALE:
        n->st.queries_stale++;
        node_drop(n, RUMOR_DROP_STALE);
        return;
    case MSG_FULL:
        node_drop(n, RUMOR_DROP_QUEUE_FULL);
        return;
    default:
        return; /* a duplicate */
    }
    wire_query_parts q;
    wire_query_parts_of(m->u.query.rest, &q);
    /* First sight: pass it on whether or not it is for us; a reserved query (a key operation
     * carries a key) only while this node seals what it sends. */
    if (!rumor_name_reserved((const char *)q.name.p, q.name.len) || seal_sending(&n->seal)) {
        uint8_t tmp[RUMOR_PACKET_MAX];
        buf_writer w;
        buf_writer_init_fixed(&w, tmp, sizeof(tmp));
        wire_put_query_sig(&w, a.ltime, a.wire_id, a.origin, &a.addr, a.flags, a.timeout_ms,
                           m->u.query.rest, wire_msg_sig(m));
        msg_spread(n, &w, now);
    }
    if (self_matches(n, &q))
        serve(n, &a, q.name, q.payload, false, now);
}

/* ---- public API ---- */

/* Room for one more query: the oldest finished one goes when all slots are taken. Returns the
 * index to evict (or nout when there is room), or -1 when every held query is running. */
static long room_for_query(const rumor_node *n)
{
    const msg_state *g = &n->msg;
    if (g->nout < n->s.queries_max)
        return (long)g->nout;
    for (size_t i = 0; i < g->nout; i++)
        if (g->out[i]->done)
            return (long)i;
    return -1;
}

/* Encodes the QUERY of `q` into `w`; false when it did not fit. */
static bool put_query(rumor_node *n, buf_writer *w, const qout *q, uint32_t timeout,
                      const qfilter *f, wire_str name, wire_str payload, size_t rest_len)
{
    uint8_t rest[RUMOR_PACKET_MAX];
    buf_writer r;
    buf_writer_init_fixed(&r, rest, rest_len <= sizeof(rest) ? rest_len : sizeof(rest));
    wire_put_query_rest(&r, f->nodes, f->nnodes, f->keys, f->values, f->ntags, name, payload);
    if (r.failed || r.len != rest_len)
        return false;
    uint8_t flags = q->ack ? WIRE_Q_ACK : 0, sigb[WIRE_SIG_BYTES];
    const uint8_t *sig = NULL;
    if (n->ident) {
        ident_query_sign(n, q->ltime, q->wire_id, &n->s.addr, flags, timeout,
                         wire_str_of(rest, rest_len), sigb);
        sig = sigb;
    }
    wire_put_query_sig(w, q->ltime, q->wire_id, node_self_name(n), &n->s.addr, flags, timeout,
                       wire_str_of(rest, rest_len), sig);
    return !w->failed;
}

static int ask(rumor_node *n, qout *q, const qfilter *f, wire_str name, wire_str payload,
               size_t rest_len, uint32_t timeout, bool resend)
{
    msg_state *g = &n->msg;
    if (!expect(n, q, f))
        return RUMOR_ERR_NOMEM;
    uint8_t tmp[RUMOR_PACKET_MAX];
    buf_writer w;
    buf_writer_init_fixed(&w, tmp, sizeof(tmp));
    if (!put_query(n, &w, q, timeout, f, name, payload, rest_len))
        return RUMOR_ERR_TOO_BIG;
    if (resend && timeout >= 4) {
        if (!(q->resend_msg = ralloc(&n->alloc, w.len)))
            return RUMOR_ERR_NOMEM;
        memcpy(q->resend_msg, w.p, w.len);
        q->resend_len = (uint32_t)w.len;
        q->resend_every = timeout / 4;
        q->resend_at = n->now + q->resend_every;
    }
    if (admit_query(n, q->ltime, node_self_name(n), q->wire_id, false) != MSG_NEW)
        return RUMOR_ERR_NOMEM; /* a fresh time is never stale nor seen: only memory fails */
    if (!msg_spread(n, &w, n->now)) {
        msg_window_unadmit(&g->queries, &n->alloc, q->ltime);
        return RUMOR_ERR_NOMEM;
    }
    return RUMOR_OK;
}

int rumor_node_query(rumor_node *n, const char *name, const void *payload, size_t len,
                     const rumor_query_params *p, uint64_t *id, uint64_t now)
{
    if (name && rumor_name_reserved(name, strlen(name)))
        return RUMOR_ERR_INVALID; /* the engine's own (rumor_node_keys_query) */
    return msg_query_ask(n, name, payload, len, p, false, id, now);
}

int msg_query_ask(rumor_node *n, const char *name, const void *payload, size_t len,
                  const rumor_query_params *p, bool resend, uint64_t *id, uint64_t now)
{
    size_t name_len = name ? strlen(name) : 0;
    if (!id || name_len == 0 || name_len > RUMOR_EVENT_NAME_MAX || (len && !payload))
        return RUMOR_ERR_INVALID;
    if (n->leaving)
        return RUMOR_ERR_STATE;
    wire_str nm = wire_str_of(name, name_len), pl = wire_str_of(payload, len);
    qfilter f;
    size_t rest_len = 0;
    int rc = filter_build(n, p, nm, pl, &f, &rest_len);
    if (rc != RUMOR_OK)
        return rc;
    long slot = room_for_query(n);
    qout *q = slot < 0 ? NULL : rcalloc(&n->alloc, 1, sizeof(*q));
    if (!q) {
        filter_free(n, &f);
        return slot < 0 ? RUMOR_ERR_FULL : RUMOR_ERR_NOMEM;
    }
    n->now = now;
    msg_state *g = &n->msg;
    uint32_t timeout = p && p->timeout_ms ? p->timeout_ms : rumor_node_query_timeout_default(n);
    q->ltime = g->query_clock;
    q->wire_id = (uint32_t)rng_next(&n->rng);
    q->ack = p && p->request_ack;
    q->deadline = now + timeout;
    rc = ask(n, q, &f, nm, pl, rest_len, timeout, resend);
    if (rc != RUMOR_OK) {
        qout_free(n, q);
        filter_free(n, &f);
        return rc;
    }
    if ((size_t)slot < g->nout)
        out_remove(n, (size_t)slot);
    q->id = g->next_out_id++;
    g->out[g->nout++] = q;
    g->query_clock = q->ltime + 1;
    n->st.queries_asked++;
    *id = q->id;
    /* Serf asks itself too: this node answers its own query when it passes the filters. */
    if (peer_find(q, node_self_name(n))) {
        qask a = {q->ltime, q->wire_id,        q->ack ? WIRE_Q_ACK : 0,
                  timeout,  node_self_name(n), n->s.addr};
        serve(n, &a, nm, pl, true, now);
    }
    filter_free(n, &f);
    return RUMOR_OK;
}

int rumor_node_query_respond(rumor_node *n, uint64_t query_id, const void *payload, size_t len,
                             uint64_t now)
{
    if (len && !payload)
        return RUMOR_ERR_INVALID;
    qin *in = in_by_id(n, query_id);
    if (!in)
        return query_id && query_id < n->msg.next_in_id ? RUMOR_ERR_EXPIRED : RUMOR_ERR_NOT_FOUND;
    if (now >= in->deadline)
        return RUMOR_ERR_EXPIRED;
    if (in->responded)
        return RUMOR_ERR_STATE;
    if (len > n->s.query_response_bytes_max)
        return RUMOR_ERR_TOO_BIG;
    n->now = now;
    wire_str pl = wire_str_of(payload, len);
    if (in->local) {
        qout *q = out_find(n, in->ltime, in->wire_id);
        if (!q || q->done)
            return RUMOR_ERR_EXPIRED; /* forgotten by this node's host */
        take_answer(n, q, node_self_name(n), false, pl);
    } else {
        if (!send_resp(n, in, 0, pl))
            return RUMOR_ERR_NOMEM;
    }
    in->responded = true;
    n->st.query_responses_sent++;
    return RUMOR_OK;
}

int rumor_node_query_result(const rumor_node *n, uint64_t id, rumor_query_result *out)
{
    const qout *q = out_by_id(n, id);
    if (!q)
        return RUMOR_ERR_NOT_FOUND;
    if (out)
        result_of(q, out);
    return RUMOR_OK;
}

int rumor_node_query_missing(const rumor_node *n, uint64_t id, bool acks, const char **names,
                             size_t cap, size_t *count)
{
    const qout *q = out_by_id(n, id);
    if (!q)
        return RUMOR_ERR_NOT_FOUND;
    size_t k = 0;
    uint8_t bit = acks ? QPEER_ACKED : QPEER_RESPONDED;
    for (uint32_t i = 0; i < q->npeers && (q->ack || !acks); i++) {
        if (q->peers[i].flags & bit)
            continue;
        if (names && k < cap)
            names[k] = q->peers[i].name;
        k++;
    }
    if (count)
        *count = k;
    return RUMOR_OK;
}

int rumor_node_query_forget(rumor_node *n, uint64_t id)
{
    for (size_t i = 0; i < n->msg.nout; i++) {
        if (n->msg.out[i]->id == id) {
            out_remove(n, i);
            return RUMOR_OK;
        }
    }
    return RUMOR_ERR_NOT_FOUND;
}

/* ---- timers ---- */

/* Sends query `q` again, straight to each matched live member that has not answered. */
static void resend(rumor_node *n, qout *q)
{
    for (uint32_t i = 0; i < q->npeers; i++) {
        const qpeer *p = &q->peers[i];
        member *m = (p->flags & QPEER_RESPONDED) ? NULL : members_find(&n->mem, p->name, p->len);
        if (!m || m->is_self || !live(m) || n->pkt_head + q->resend_len > n->pkt_max)
            continue;
        uint64_t dest = node_dest(n, m);
        if (node_hello_instead(n, &m->addr, dest))
            continue; /* the next resend (or gossip) reaches it */
        if (!node_pkt_begin(n, &m->addr, dest))
            break;
        buf_put_bytes(node_pkt(n), q->resend_msg, q->resend_len);
        node_pkt_end(n, false);
    }
    if (++q->resends >= QUERY_RESENDS)
        q->resend_at = NODE_NEVER;
    else
        q->resend_at += q->resend_every;
}

void msg_tick(rumor_node *n, uint64_t now)
{
    msg_state *g = &n->msg;
    for (size_t i = 0; i < g->nout; i++) {
        qout *q = g->out[i];
        if (!q->done && q->resend_msg && now >= q->resend_at && now < q->deadline)
            resend(n, q);
        if (q->done || now < q->deadline)
            continue;
        q->done = true;
        ev_rec *e = msg_event(n, RUMOR_EVENT_QUERY_DONE, node_self_name(n), wire_str_of(NULL, 0),
                              wire_str_of(NULL, 0));
        if (e) {
            e->query_id = q->id;
            e->ltime = q->ltime;
            e->deadline = q->deadline;
            result_of(q, &e->qres);
        }
    }
    if (g->nin)
        in_purge(n, now);
}

uint64_t msg_deadline(const rumor_node *n)
{
    uint64_t d = NODE_NEVER;
    for (size_t i = 0; i < n->msg.nout; i++) {
        const qout *q = n->msg.out[i];
        if (!q->done && q->deadline < d)
            d = q->deadline;
        if (!q->done && q->resend_msg && q->resend_at < d)
            d = q->resend_at;
    }
    return d;
}

void msg_free(rumor_node *n)
{
    msg_state *g = &n->msg;
    msg_window_free(&g->events, &n->alloc);
    msg_window_free(&g->queries, &n->alloc);
    for (size_t i = 0; i < g->nout; i++)
        qout_free(n, g->out[i]);
    rfree(&n->alloc, g->out);
    rfree(&n->alloc, g->in);
}
