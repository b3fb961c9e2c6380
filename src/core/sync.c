/*
 * Streams: push-pull state exchange (join, periodic anti-entropy, reconnects, learning) and the
 * fallback probe. Frames are length-prefixed. A full exchange is one frame each way: the opener
 * writes its state, the acceptor merges it and answers with its own, the opener merges and
 * closes. A digest exchange (periodic and reconnect) starts with the opener's digest only: equal
 * digests end it at once; otherwise the acceptor answers with its full state and the opener
 * merges it and sends its own as a third frame.
 *
 * The acceptor merges the request before it answers. When a healed partition reconnects, the
 * request tells the acceptor that it was declared failed; it refutes with a higher incarnation
 * and that record travels back in the answer, so a single exchange revives it on the other side.
 *
 * Key-value state rides on every full-state frame (joins, learning, healing): the sender's
 * complete digest {origin -> max_version, gc_version}, preceded by KV_DELTAs for what the peer
 * lacks whenever the frame answers one that carried the peer's digest, oldest version first per
 * origin and as much as the frame budget allows. Whatever the frames of an exchange could not
 * carry in the other direction follows on a KV push stream: one frame of KV_DELTAs that the
 * acceptor applies before it closes (also how an entry too big for a datagram travels).
 */
#include "core/node.h"

#include <math.h>
#include <string.h>

static stream *stream_find(rumor_node *n, uint64_t id)
{
    for (size_t i = 0; i < n->nstreams; i++)
        if (n->streams[i]->id == id)
            return n->streams[i];
    return NULL;
}

static stream *stream_new(rumor_node *n, uint8_t kind, const rumor_addr *peer, uint64_t now)
{
    if (n->nstreams >= n->s.streams_max) {
        node_drop(n, RUMOR_DROP_QUEUE_FULL);
        return NULL;
    }
    void *arr = n->streams;
    if (!rgrow(&n->alloc, &arr, &n->streams_cap, n->nstreams + 1, sizeof(stream *)))
        return NULL;
    n->streams = arr;
    stream *s = rcalloc(&n->alloc, 1, sizeof(*s));
    if (!s)
        return NULL;
    s->id = n->next_stream_id++;
    s->kind = kind;
    s->peer = *peer;
    s->started = now;
    s->deadline = now + n->s.stream_timeout_ms;
    /* We seal what we open when we seal at all; an accepted stream follows its opener. */
    s->sealed = kind != STREAM_IN && seal_sending(&n->seal);
    if (s->sealed)
        seal_token(&n->seal, s->tok_open);
    buf_writer_init(&s->in, &n->alloc, (size_t)n->s.stream_frame_bytes_max + WIRE_FRAME_PREFIX);
    n->streams[n->nstreams++] = s;
    return s;
}

static void stream_release(rumor_node *n, stream *s)
{
    for (size_t i = 0; i < n->nstreams; i++) {
        if (n->streams[i] == s) {
            n->streams[i] = n->streams[--n->nstreams];
            break;
        }
    }
    buf_writer_free(&s->in);
    buf_writer_free(&s->held);
    rfree(&n->alloc, s);
}

/* We are done with a stream: ask the host to close it and forget it. */
static void stream_finish(rumor_node *n, stream *s)
{
    node_sop(n, RUMOR_STREAM_CLOSE, s->id, NULL, 0, 0);
    stream_release(n, s);
}

void sync_free(rumor_node *n)
{
    while (n->nstreams)
        stream_release(n, n->streams[0]);
    rfree(&n->alloc, n->streams);
}

/* Starts a frame on `s`: the length placeholder, the header and, on a sealed stream, the
 * envelope with the stream binding (both tokens) and this direction's next frame number. */
static size_t frame_begin(rumor_node *n, stream *s, size_t *env)
{
    size_t off = n->sout.len;
    buf_put_u32be(&n->sout, 0);
    wire_put_header(&n->sout, n->label, n->label_len, s->sealed ? WIRE_FLAG_SEALED : 0);
    if (s->sealed) {
        seal_inner in = {.kind = s->kind == STREAM_IN ? SEAL_KIND_ACCEPTOR : SEAL_KIND_OPENER};
        memcpy(in.opener, s->tok_open, SEAL_TOKEN_BYTES);
        memcpy(in.acceptor, s->tok_acc, SEAL_TOKEN_BYTES);
        in.seq = s->seq_out++;
        *env = seal_put_inner(&n->seal, &n->sout, &in);
    }
    return off;
}

static bool frame_end(rumor_node *n, stream *s, size_t off, size_t env)
{
    buf_writer *w = &n->sout;
    if (s->sealed && !w->failed)
        (void)seal_close(&n->seal, w, off + WIRE_FRAME_PREFIX, env,
                         s->peer_aes ? SEAL_CIPHER_AESGCM : SEAL_CIPHER_XCHACHA);
    size_t len = w->len - off;
    if (w->failed || len - WIRE_FRAME_PREFIX > n->s.stream_frame_bytes_max ||
        !node_sop(n, RUMOR_STREAM_WRITE, s->id, NULL, off, len)) {
        w->len = off;
        w->failed = false;
        node_drop(n, RUMOR_DROP_OVERSIZE);
        return false;
    }
    buf_patch_u32be(w, off, (uint32_t)(len - WIRE_FRAME_PREFIX));
    n->st.bytes_out += len;
    n->st.messages_out++;
    return true;
}

static wire_member member_rec(const rumor_node *n, const member *m)
{
    wire_member wm;
    wm.name = wire_str_of(member_name(m), m->name_len);
    wm.addr = m->addr;
    wm.inc = m->incarnation;
    wm.state = m->state;
    size_t meta_len;
    const uint8_t *meta = members_meta(&n->mem, m, &meta_len);
    wm.meta = wire_str_of(meta, meta_len);
    return wm;
}

/*
 * The identity block sent with member `m`'s record (docs/protocol.md section 12): its key and
 * certificate, and the signature that speaks for the record's state — the owner's over its alive
 * claim or its leave, or, for a member we hold suspect or failed, ours over a SUSPECT accusation
 * (the receiver merges such a record as a suspicion by us). With `sign` false the signature is
 * left out (sizing pass). Returns false for a member we hold no signed claim of: not sent.
 */
static bool record_ident(rumor_node *n, const member *m, wire_ident *id, uint8_t *buf, bool sign)
{
    if (!ident_claim(n, m, id))
        return false;
    if (sign && (m->state == RUMOR_MEMBER_SUSPECT || m->state == RUMOR_MEMBER_FAILED)) {
        ident_accuse_sign(n, WIRE_SUSPECT, m->incarnation, wire_str_of(member_name(m), m->name_len),
                          buf);
        id->sig = buf;
    }
    return true;
}

static void put_state(rumor_node *n, buf_writer *w, uint8_t flags)
{
    size_t bytes = 0, idbytes = 0, total = (flags & WIRE_PP_DIGEST) ? 0 : n->mem.count;
    uint32_t count = 0;
    bool ids = n->ident != NULL;
    wire_ident id;
    uint8_t sig[WIRE_SIG_BYTES];
    for (size_t i = 0; i < total; i++) {
        const member *m = n->mem.order[i];
        if (ids && !record_ident(n, m, &id, sig, false))
            continue;
        wire_member wm = member_rec(n, m);
        bytes += wire_member_size(&wm);
        idbytes += ids ? wire_ident_block_size(&id) : 0;
        count++;
    }
    size_t trailer = ids && count ? 1u + idbytes : 0;
    wire_put_pushpull_begin_ident(w, flags, node_self_name(n), count, bytes, trailer);
    for (size_t i = 0; i < total && !w->failed; i++) {
        const member *m = n->mem.order[i];
        if (ids && !record_ident(n, m, &id, sig, false))
            continue;
        wire_member wm = member_rec(n, m);
        wire_put_member(w, &wm);
    }
    wire_put_pushpull_end(w, n->mem.digest);
    if (!trailer)
        return;
    buf_put_u8(w, WIRE_IDENT_V1);
    for (size_t i = 0; i < total && !w->failed; i++)
        if (record_ident(n, n->mem.order[i], &id, sig, true))
            wire_put_ident_block(w, &id);
}

/* Bytes a frame on `s` may still take after `off`, with the seal's tag still to come and
 * `reserve` bytes kept for what goes after. */
static size_t frame_room(const rumor_node *n, const stream *s, size_t off, size_t reserve)
{
    size_t used = n->sout.len - off - WIRE_FRAME_PREFIX + (s->sealed ? SEAL_TAG_BYTES : 0);
    size_t max = n->s.stream_frame_bytes_max;
    return used + reserve < max ? max - used - reserve : 0;
}

/* Our key-value part of a full-state frame: deltas for what the peer lacks when its complete
 * digest `peer_kv` is known, then our own complete digest, all within `room` bytes (membership
 * first: when even the digest does not fit, no key-value state). */
static void put_kv(rumor_node *n, size_t room, size_t msgs_max, const wire_msg *peer_kv)
{
    size_t dsz = kvnode_digest_all_size(n);
    if (dsz > room)
        return;
    if (peer_kv)
        kvnode_put_deltas_for(n, &n->sout, peer_kv->u.kv_digest.entries, peer_kv->u.kv_digest.count,
                              true, room - dsz, msgs_max);
    kvnode_put_digest_all(n, &n->sout);
}

/*
 * A full-state frame: CLOCKS, PUSHPULL, then (unless only the membership digest is sent) our
 * key-value deltas and digest, then the recent user events an answer carries. The Lamport clocks
 * of user events and queries go first: a request frame is read only up to its PUSHPULL and the
 * key-value part after it. The events go last but get their room first: they are rendered
 * aside, and the key-value part fills what the frame has left after them (and the seal's tag).
 */
static bool send_state(rumor_node *n, stream *s, uint8_t flags, const wire_msg *peer_kv)
{
    size_t env = 0, off = frame_begin(n, s, &env);
    msg_put_clocks(n, &n->sout, (flags & WIRE_PP_JOIN) != 0);
    put_state(n, &n->sout, flags);
    buf_writer ev;
    buf_writer_init(&ev, &n->alloc, n->s.stream_frame_bytes_max);
    size_t evn = msg_put_events(n, &ev, (flags & WIRE_PP_REPLY) != 0, frame_room(n, s, off, 0));
    if (ev.failed)
        ev.len = evn = 0; /* out of memory: the events wait for another exchange */
    if (!(flags & WIRE_PP_DIGEST)) {
        /* The frame's message count is bounded too (WIRE_STREAM_MSGS_MAX): events count. */
        put_kv(n, frame_room(n, s, off, ev.len),
               evn < KV_STREAM_DELTAS_MAX ? KV_STREAM_DELTAS_MAX - evn : 0, peer_kv);
    }
    if (ev.len)
        buf_put_bytes(&n->sout, ev.p, ev.len);
    buf_writer_free(&ev);
    return frame_end(n, s, off, env);
}

/* A sealed stream's first frame each way: no messages, just the sender's token (the
 * acceptor's binds both). */
static bool send_hello(rumor_node *n, stream *s)
{
    size_t env = 0, off = frame_begin(n, s, &env);
    return frame_end(n, s, off, env);
}

static bool send_ping_frame(rumor_node *n, stream *s)
{
    size_t env = 0, off = frame_begin(n, s, &env);
    wire_put_ping(&n->sout, s->seq, wire_str_of(s->target, s->target_len), node_self_name(n));
    return frame_end(n, s, off, env);
}

/* A sealed KV push: the frame's messages, held back until the acceptor's hello. */
static bool send_held(rumor_node *n, stream *s)
{
    size_t env = 0, off = frame_begin(n, s, &env);
    buf_put_bytes(&n->sout, s->held.p, s->held.len);
    buf_writer_free(&s->held);
    return frame_end(n, s, off, env);
}

/* Open KV push streams are capped so a node catching many peers up at once cannot exhaust its
 * stream slots; the rest waits for later rounds. */
#define SYNC_KV_PUSH_MAX 4

int sync_kv_push(rumor_node *n, const rumor_addr *to, buf_reader r, uint32_t count, unsigned how,
                 uint64_t now)
{
    if (n->leaving)
        return RUMOR_ERR_STATE;
    size_t pushing = 0;
    for (size_t i = 0; i < n->nstreams; i++) {
        if (n->streams[i]->kind != STREAM_KV_OUT)
            continue;
        if (rumor_addr_equal(&n->streams[i]->peer, to))
            return 1; /* one in flight to this peer already */
        pushing++;
    }
    if (pushing >= SYNC_KV_PUSH_MAX || n->nstreams >= n->s.streams_max)
        return RUMOR_ERR_FULL;
    stream *s = stream_new(n, STREAM_KV_OUT, to, now);
    if (!s)
        return RUMOR_ERR_NOMEM;
    /*
     * A plain stream's frame is built in place. A sealed one starts with our hello, and its
     * frame must wait for the acceptor's (it binds the acceptor's fresh token): the messages
     * are built aside now, while the digest list they answer is at hand, within the room the
     * frame will have (its header, the sealed envelope and the tag taken off).
     */
    size_t env = 0, off = 0, room;
    buf_writer *w;
    if (s->sealed) {
        buf_writer_init(&s->held, &n->alloc, n->s.stream_frame_bytes_max);
        w = &s->held;
        size_t head = 5u + n->label_len + SEAL_FRAME_OVERHEAD;
        room = head < n->s.stream_frame_bytes_max ? n->s.stream_frame_bytes_max - head : 0;
    } else {
        off = frame_begin(n, s, &env);
        w = &n->sout;
        room = frame_room(n, s, off, 0);
    }
    size_t start = w->len, msgs = 0;
    size_t dsz = (how & SYNC_KV_ASK) ? kvnode_digest_all_size(n) : 0;
    if (dsz <= room) {
        msgs = kvnode_put_deltas_for(n, w, r, count, (how & SYNC_KV_ALL) != 0, room - dsz,
                                     KV_STREAM_DELTAS_MAX);
        if (how & SYNC_KV_ASK) {
            kvnode_put_digest_all(n, w);
            msgs++;
        }
    }
    /* Nothing to send (0), out of memory, or no stream: nothing stays behind. */
    int rc = !msgs ? 0 : w->failed ? RUMOR_ERR_NOMEM : 1;
    if (rc == 1 && !node_sop(n, RUMOR_STREAM_OPEN, s->id, to, 0, 0))
        rc = RUMOR_ERR_NOMEM;
    if (rc != 1) {
        w->len = start;
        w->failed = false;
        if (!s->sealed)
            n->sout.len = off;
        stream_release(n, s);
        return rc;
    }
    n->st.streams_out++;
    s->pending = s->sealed;
    if (s->sealed ? !send_hello(n, s) : !frame_end(n, s, off, env)) {
        stream_finish(n, s);
        return RUMOR_ERR_TOO_BIG;
    }
    return 1;
}

/* The complete key-value digest among a frame's messages [from, count), or NULL. */
static const wire_msg *kv_all_in(const rumor_node *n, size_t from, size_t count)
{
    for (size_t i = from; i < count; i++)
        if (n->msgs[i].type == WIRE_KV_DIGEST && (n->msgs[i].u.kv_digest.flags & WIRE_KVD_ALL))
            return &n->msgs[i];
    return NULL;
}

/* Applies the KV_DELTAs among a frame's messages [from, count). */
static void apply_kv(rumor_node *n, size_t from, size_t count, uint64_t now)
{
    for (size_t i = from; i < count; i++)
        if (n->msgs[i].type == WIRE_KV_DELTA)
            recv_apply(n, NULL, &n->msgs[i], now);
}

/* Sends `peer_kv`'s sender, a member named `name`, what it lacks, on a KV push stream. */
static void push_to_member(rumor_node *n, wire_str name, const wire_msg *peer_kv, uint64_t now)
{
    const member *m = members_find(&n->mem, (const char *)name.p, name.len);
    if (peer_kv && m && !m->is_self)
        sync_kv_push(n, &m->addr, peer_kv->u.kv_digest.entries, peer_kv->u.kv_digest.count,
                     SYNC_KV_ALL, now);
}

int sync_pushpull(rumor_node *n, const rumor_addr *to, bool join, bool digest_only, uint64_t now)
{
    stream *s = stream_new(n, STREAM_PP_OUT, to, now);
    if (!s)
        return RUMOR_ERR_FULL;
    s->join = join;
    s->digest_req = digest_only && !join;
    if (!node_sop(n, RUMOR_STREAM_OPEN, s->id, to, 0, 0)) {
        stream_release(n, s);
        return RUMOR_ERR_NOMEM;
    }
    n->st.streams_out++;
    uint8_t flags = join ? WIRE_PP_JOIN : s->digest_req ? WIRE_PP_DIGEST : 0;
    /* Sealed: the state follows the acceptor's hello, bound to its fresh token. */
    s->pending = s->sealed;
    s->pending_flags = flags;
    if (s->sealed ? !send_hello(n, s) : !send_state(n, s, flags, NULL)) {
        stream_finish(n, s);
        return RUMOR_ERR_TOO_BIG;
    }
    return RUMOR_OK;
}

int sync_ping(rumor_node *n, const member *target, uint32_t seq, uint64_t now)
{
    stream *s = stream_new(n, STREAM_PING_OUT, &target->addr, now);
    if (!s)
        return RUMOR_ERR_FULL;
    s->seq = seq;
    s->target_len = target->name_len;
    memcpy(s->target, member_name(target), target->name_len);
    /* The fallback only has to answer within this probe. */
    s->deadline = now + node_scale(n, n->s.probe_interval_ms);
    if (!node_sop(n, RUMOR_STREAM_OPEN, s->id, &target->addr, 0, 0)) {
        stream_release(n, s);
        return RUMOR_ERR_NOMEM;
    }
    n->st.streams_out++;
    s->pending = s->sealed;
    if (s->sealed ? !send_hello(n, s) : !send_ping_frame(n, s)) {
        stream_finish(n, s);
        return RUMOR_ERR_TOO_BIG;
    }
    return RUMOR_OK;
}

/*
 * After a join, anti-entropy runs often and backs off: a push-pull with a random member one to
 * two probe intervals later, then gaps of about 2, 4, 8, ... probe intervals until a gap would
 * reach the periodic interval, which takes over.
 * A join's state comes from one seed, and a seed that joined moments ago holds only what it has
 * heard so far (in a cold start most answers lack some members). News of the members it lacks
 * was gossiped before we existed and is spent, so without these rounds the gaps waited for the
 * first periodic push-pull, 15 to 30 s away. The rounds start with digests: between nodes
 * already in agreement (a join to a formed cluster) each costs a few bytes.
 */
static void sync_settle(rumor_node *n, uint64_t now)
{
    if (!n->s.pushpull_interval_ms || !n->s.probe_interval_ms)
        return;
    n->pp_settle_ms = n->s.probe_interval_ms;
    uint64_t at = now + n->pp_settle_ms + rng_below(&n->rng, n->pp_settle_ms + 1);
    if (at < n->next_pushpull)
        n->next_pushpull = at;
}

/* The gap to the next periodic push-pull: doubling while settling after a join. */
static uint64_t next_pushpull_gap(rumor_node *n)
{
    uint32_t full = sync_pushpull_interval(n);
    if (n->pp_settle_ms) {
        uint64_t gap = (uint64_t)n->pp_settle_ms * 2;
        if (gap < full) {
            n->pp_settle_ms = (uint32_t)gap;
            return gap + rng_below(&n->rng, (uint32_t)gap / 2 + 1);
        }
        n->pp_settle_ms = 0;
    }
    return full;
}

void sync_learn(rumor_node *n, const rumor_addr *from, uint64_t now)
{
    if (n->leaving || now < n->next_learn)
        return;
    for (size_t i = 0; i < n->nstreams; i++)
        if (n->streams[i]->kind == STREAM_PP_OUT && rumor_addr_equal(&n->streams[i]->peer, from))
            return;
    n->next_learn = now + n->s.gossip_interval_ms;
    sync_pushpull(n, from, false, false, now);
}

/* The next record of a state and its identity block (`id->present` false when none). */
static bool next_record(buf_reader *r, buf_reader *ir, bool has_ids, wire_member *wm,
                        wire_ident *id)
{
    if (!wire_member_next(r, wm))
        return false;
    if (!has_ids || !wire_ident_next(ir, id))
        memset(id, 0, sizeof(*id));
    return true;
}

static bool same_str(wire_str a, wire_str b)
{
    return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

/* With identities, the sender's own record goes first: its key must be known before the
 * suspicions it signed in the same state can be checked. */
static void merge_sender_first(rumor_node *n, const wire_msg *m, uint64_t now)
{
    buf_reader r = m->u.pushpull.members, ir;
    bool has_ids = wire_pushpull_idents(m, &ir);
    wire_member wm;
    wire_ident id;
    for (uint32_t i = 0; i < m->u.pushpull.count && next_record(&r, &ir, has_ids, &wm, &id); i++) {
        if (wm.state == RUMOR_MEMBER_ALIVE && same_str(wm.name, m->u.pushpull.sender)) {
            state_alive(n, wm.inc, wm.name, &wm.addr, wm.meta, &id, now);
            return;
        }
    }
}

static void merge_state(rumor_node *n, const wire_msg *m, uint64_t now)
{
    buf_reader r = m->u.pushpull.members, ir;
    bool has_ids = wire_pushpull_idents(m, &ir);
    wire_str sender = m->u.pushpull.sender;
    wire_member wm;
    wire_ident id;
    if (n->ident)
        merge_sender_first(n, m, now);
    for (uint32_t i = 0; i < m->u.pushpull.count && next_record(&r, &ir, has_ids, &wm, &id); i++) {
        if (n->ident && wm.state == RUMOR_MEMBER_ALIVE && same_str(wm.name, sender))
            continue; /* merged first, above */
        switch (wm.state) {
        case RUMOR_MEMBER_ALIVE:
            state_alive(n, wm.inc, wm.name, &wm.addr, wm.meta, &id, now);
            break;
        case RUMOR_MEMBER_LEFT:
            state_left(n, wm.inc, wm.name, &id, now);
            break;
        default:
            /* A peer's "failed" is only a suspicion here (memberlist's mergeState): we may see
             * the member fine, and the member gets its chance to refute. */
            state_suspect(n, wm.inc, wm.name, sender, &id, now);
            break;
        }
    }
    n->st.pushpulls++;
}

/* With identities, a node we did not admit (no valid signed record of its own: no certificate,
 * another node's key) gets no state back. This is admission, not authentication of the stream:
 * a replay of a member's public record gets an answer; cluster encryption keeps outsiders out. */
static bool sender_admitted(rumor_node *n, const wire_msg *m)
{
    wire_str s = m->u.pushpull.sender;
    const member *sm = members_find(&n->mem, (const char *)s.p, s.len);
    return !n->ident || (sm && !sm->is_self && !ident_unverified(n, sm));
}

/* Membership news, key-value deltas, clocks and user events inside a stream frame. A stream's
 * peer address is not where its datagrams come from (an accepted connection has an ephemeral
 * port), so nothing here may answer by datagram: probes and acks on streams are handled by their
 * own rules above. */
static void apply_news(rumor_node *n, const wire_msg *m, uint64_t now)
{
    /* With identities, clocks and user events wait for the frame's PUSHPULL: only an admitted
     * sender's are taken (apply_clock_news). */
    bool later = n->ident && (m->type == WIRE_CLOCKS || m->type == WIRE_USER_EVENT);
    if (!later && ((m->type >= WIRE_ALIVE && m->type <= WIRE_LEFT) || m->type == WIRE_KV_DELTA ||
                   m->type == WIRE_CLOCKS || m->type == WIRE_USER_EVENT))
        recv_apply(n, NULL, m, now);
}

/* With identities: the CLOCKS and USER_EVENTs of a frame whose PUSHPULL is `pp` (merged
 * already), once its sender is known to be an admitted member. A node we did not admit (no
 * certificate, a forged record) moves no Lamport clock and brings no events; each message it
 * sent is counted as an identity drop. (Events are also checked one by one against their
 * origins' keys.) */
static void apply_clock_news(rumor_node *n, const wire_msg *pp, size_t count, uint64_t now)
{
    if (!n->ident)
        return;
    bool ok = sender_admitted(n, pp);
    for (size_t i = 0; i < count; i++) {
        const wire_msg *m = &n->msgs[i];
        if (m->type != WIRE_CLOCKS && m->type != WIRE_USER_EVENT)
            continue;
        if (ok)
            recv_apply(n, NULL, m, now);
        else
            node_drop(n, RUMOR_DROP_IDENTITY);
    }
}

/* A push-pull request reached us, message `i` of the frame. Returns true while the stream stays
 * open. The frame's key-value deltas are applied after the membership merge (their origins may
 * be new members) and before we answer (so our digest in the answer already holds them). */
static bool on_pushpull_request(rumor_node *n, stream *s, size_t i, size_t count, uint64_t now)
{
    const wire_msg *m = &n->msgs[i];
    const wire_msg *kv = kv_all_in(n, i + 1, count);
    if (s->await_state) { /* step 3 of a digest exchange: the opener's full state */
        merge_state(n, m, now);
        apply_clock_news(n, m, count, now);
        apply_kv(n, i + 1, count, now);
        if (sender_admitted(n, m))
            push_to_member(n, m->u.pushpull.sender, kv, now);
        return false;
    }
    if (!(m->u.pushpull.flags & WIRE_PP_DIGEST)) {
        merge_state(n, m, now); /* merge first: see the comment at the top of this file */
        apply_clock_news(n, m, count, now);
        /* Deltas are signed by their origins (kvnode_on_delta checks), whoever relays them;
         * only the answer waits for the sender's admission. */
        apply_kv(n, i + 1, count, now);
        if (sender_admitted(n, m))
            send_state(n, s, WIRE_PP_REPLY, kv);
        return false;
    }
    /* With identities, a digest request from a member we have not heard of yet (the news of its
     * join has not reached us; a joiner's settling rounds meet this) ends unanswered, as from
     * any sender we did not admit, but it is no identity refusal: nothing in it was checked. */
    wire_str snd = m->u.pushpull.sender;
    if (n->ident && !members_find(&n->mem, (const char *)snd.p, snd.len))
        return false;
    apply_clock_news(n, m, count, now);
    if (!sender_admitted(n, m))
        return false;
    if (m->u.pushpull.digest == n->mem.digest) {
        n->st.pushpulls++; /* in sync: nothing moves but two digests */
        send_state(n, s, WIRE_PP_REPLY | WIRE_PP_DIGEST, NULL);
        return false;
    }
    send_state(n, s, WIRE_PP_REPLY, NULL);
    s->await_state = true;
    return true;
}

/* A frame on a stream the host accepted. Returns true while the stream stays open. */
static bool on_inbound_frame(rumor_node *n, stream *s, size_t count, uint64_t now)
{
    for (size_t i = 0; i < count; i++) {
        const wire_msg *m = &n->msgs[i];
        if (m->type == WIRE_PUSHPULL && !(m->u.pushpull.flags & WIRE_PP_REPLY))
            return on_pushpull_request(n, s, i, count, now);
        if (m->type == WIRE_PING) {
            wire_str t = m->u.ping.target;
            if (t.len && (t.len != n->name_len || memcmp(t.p, n->name, t.len) != 0)) {
                node_drop(n, RUMOR_DROP_NOT_FOR_US);
                return false;
            }
            size_t env = 0, off = frame_begin(n, s, &env);
            wire_put_ack(&n->sout, WIRE_ACK, m->u.ping.seq);
            frame_end(n, s, off, env);
            return false;
        }
        apply_news(n, m, now);
    }
    /* A KV stream that asks: answer with what its opener lacks, then close. */
    const wire_msg *kv = kv_all_in(n, 0, count);
    if (kv) {
        size_t env = 0, off = frame_begin(n, s, &env);
        if (kvnode_put_deltas_for(n, &n->sout, kv->u.kv_digest.entries, kv->u.kv_digest.count, true,
                                  frame_room(n, s, off, 0), KV_STREAM_DELTAS_MAX))
            frame_end(n, s, off, env);
        else
            n->sout.len = off;
    }
    return false;
}

/* The answer on a stream we opened. The stream is done afterwards. */
static void on_reply_frame(rumor_node *n, stream *s, size_t count, uint64_t now)
{
    const wire_msg *kv = NULL, *pp = NULL;
    bool merged = false;
    for (size_t i = 0; i < count; i++) {
        const wire_msg *m = &n->msgs[i];
        if (s->kind == STREAM_PP_OUT && m->type == WIRE_PUSHPULL) {
            pp = m;
            n->st.pushpull_ms_total += now - s->started;
            if (m->u.pushpull.flags & WIRE_PP_DIGEST) {
                n->st.pushpulls++;
                continue;
            }
            merge_state(n, m, now);
            merged = true;
            /* A joiner announces itself too, so its news starts from two places. */
            if (s->join) {
                state_broadcast_alive(n, n->self);
                sync_settle(n, now);
            }
        } else if (s->kind == STREAM_PING_OUT && m->type == WIRE_ACK) {
            probe_on_ack(n, m->u.ack.seq, now);
        } else if (m->type == WIRE_KV_DIGEST && (m->u.kv_digest.flags & WIRE_KVD_ALL)) {
            kv = m;
        } else {
            apply_news(n, m, now);
        }
    }
    if (pp)
        apply_clock_news(n, pp, count, now);
    if (!merged)
        return;
    if (s->join)
        msg_join_floor(n); /* after the answer's CLOCKS: its event clock is the cluster's */
    if (s->digest_req)
        send_state(n, s, 0, kv); /* we only sent a digest: the peer needs our state (step 3) */
    else if (kv)
        sync_kv_push(n, &s->peer, kv->u.kv_digest.entries, kv->u.kv_digest.count, SYNC_KV_ALL, now);
}

/*
 * Opens a sealed frame in place and checks that it belongs to this stream (docs/protocol.md
 * section 7.7): it comes from the other side, its tokens are this stream's, and it is the next
 * frame of its direction. A recorded frame replayed on another stream, reflected back, or
 * repeated on this one fails here.
 */
static int open_frame(rumor_node *n, stream *s, uint8_t *p, size_t len, size_t hdr, seal_inner *in,
                      const uint8_t **body, size_t *blen)
{
    int rc = seal_open(&n->seal, p, len, hdr, p + hdr + SEAL_ENV_BYTES, in, body, blen);
    if (rc < 0)
        return recv_reject(n, wire_drop_of(rc));
    static const uint8_t zero[SEAL_TOKEN_BYTES];
    uint8_t want = s->kind == STREAM_IN ? SEAL_KIND_OPENER : SEAL_KIND_ACCEPTOR;
    bool ok = in->kind == want && in->seq == s->seq_in;
    if (!s->hello_done && s->kind == STREAM_IN)
        ok = ok && memcmp(in->acceptor, zero, SEAL_TOKEN_BYTES) == 0;
    else if (!s->hello_done)
        ok = ok && memcmp(in->opener, s->tok_open, SEAL_TOKEN_BYTES) == 0;
    else
        ok = ok && memcmp(in->opener, s->tok_open, SEAL_TOKEN_BYTES) == 0 &&
             memcmp(in->acceptor, s->tok_acc, SEAL_TOKEN_BYTES) == 0;
    if (!ok)
        return recv_reject(n, RUMOR_DROP_REPLAYED);
    s->seq_in++;
    s->peer_aes = in->aes; /* until then (the hellos) we seal with XChaCha20-Poly1305 */
    return 0;
}

/* The other side's hello. The acceptor answers with its own token; the opener, now holding a
 * token the acceptor just made, sends the request it held back. Returns 1 (stream stays open)
 * or a negative error. */
static int on_hello(rumor_node *n, stream *s, const seal_inner *in, size_t blen)
{
    if (blen != 0)
        return recv_reject(n, RUMOR_DROP_MALFORMED);
    s->hello_done = true;
    if (s->kind == STREAM_IN) {
        memcpy(s->tok_open, in->opener, SEAL_TOKEN_BYTES);
        seal_token(&n->seal, s->tok_acc);
        return send_hello(n, s) ? 1 : RUMOR_ERR_TOO_BIG;
    }
    memcpy(s->tok_acc, in->acceptor, SEAL_TOKEN_BYTES);
    s->pending = false;
    bool sent = s->kind == STREAM_PING_OUT ? send_ping_frame(n, s)
                : s->kind == STREAM_KV_OUT ? send_held(n, s)
                                           : send_state(n, s, s->pending_flags, NULL);
    return sent ? 1 : RUMOR_ERR_TOO_BIG;
}

/* Handles one complete frame: 1 while the stream stays open, 0 when it is done, or a negative
 * error for a frame that did not decode. */
static int on_frame(rumor_node *n, stream *s, uint8_t *p, size_t len, uint64_t now)
{
    n->st.packets_in++;
    wire_header h;
    int hdr = recv_header(n, p, len, true, &h);
    if (hdr < 0)
        return hdr;
    bool sealed = (h.flags & WIRE_FLAG_SEALED) != 0;
    /* An accepted stream is sealed or not as its opener's first frame is (plaintext only gets
     * past recv_header on a node that accepts it). */
    if (s->kind == STREAM_IN && !s->sealed && !s->plain) {
        s->sealed = sealed;
        s->plain = !sealed;
    }
    if (sealed != s->sealed)
        return recv_reject(n, sealed ? RUMOR_DROP_MALFORMED : RUMOR_DROP_PLAINTEXT);
    const uint8_t *body = p + hdr;
    size_t blen = len - (size_t)hdr;
    if (sealed) {
        seal_inner in;
        int rc = open_frame(n, s, p, len, (size_t)hdr, &in, &body, &blen);
        if (rc < 0)
            return rc;
        /* A frame bound to a token of ours is fresh: its sender's epoch is current, and our
         * datagrams can name it from now on (section 3.1.4). An opener's hello is not bound
         * yet (it may be a recording), so it teaches nothing. */
        if ((s->hello_done || s->kind != STREAM_IN) && in.sender != n->seal.self_id)
            seal_learn_epoch(&n->seal, &n->alloc, in.sender, in.epoch, now);
        if (!s->hello_done)
            return on_hello(n, s, &in, blen);
    }
    int count = recv_msgs(n, body, blen, true, false);
    if (count < 0) {
        recv_shrink(n);
        return count;
    }
    int rc = 0;
    if (s->kind == STREAM_IN)
        rc = on_inbound_frame(n, s, (size_t)count, now) ? 1 : 0;
    else
        on_reply_frame(n, s, (size_t)count, now);
    recv_shrink(n);
    return rc;
}

int rumor_node_stream_accept(rumor_node *n, const rumor_addr *from, uint64_t *id, uint64_t now)
{
    if (!from || !id)
        return RUMOR_ERR_INVALID;
    n->now = now;
    stream *s = stream_new(n, STREAM_IN, from, now);
    if (!s)
        return RUMOR_ERR_FULL;
    n->st.streams_in++;
    *id = s->id;
    return RUMOR_OK;
}

int rumor_node_stream_data(rumor_node *n, uint64_t id, const uint8_t *data, size_t len,
                           uint64_t now)
{
    if (!data && len)
        return RUMOR_ERR_INVALID;
    n->now = now;
    stream *s = stream_find(n, id);
    if (!s)
        return RUMOR_ERR_NOT_FOUND;
    n->st.bytes_in += len;
    buf_put_bytes(&s->in, data, len);
    if (s->in.failed) {
        node_drop(n, RUMOR_DROP_OVERSIZE);
        stream_finish(n, s);
        return RUMOR_ERR_TOO_BIG;
    }
    /* Several frames may arrive in one read (or one frame over many). */
    while (s->in.len >= WIRE_FRAME_PREFIX) {
        uint8_t *b = s->in.p;
        uint32_t flen = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        if (flen > n->s.stream_frame_bytes_max) {
            node_drop(n, RUMOR_DROP_OVERSIZE);
            stream_finish(n, s);
            return RUMOR_ERR_TOO_BIG;
        }
        if (s->in.len - WIRE_FRAME_PREFIX < flen)
            return RUMOR_OK;
        int rc = on_frame(n, s, b + WIRE_FRAME_PREFIX, flen, now);
        if (rc <= 0) {
            stream_finish(n, s);
            return rc;
        }
        size_t used = WIRE_FRAME_PREFIX + (size_t)flen;
        memmove(s->in.p, s->in.p + used, s->in.len - used);
        s->in.len -= used;
    }
    return RUMOR_OK;
}

void rumor_node_stream_closed(rumor_node *n, uint64_t id, uint64_t now)
{
    n->now = now;
    stream *s = stream_find(n, id);
    if (s)
        stream_release(n, s);
}

uint32_t sync_pushpull_interval(const rumor_node *n)
{
    /* memberlist's pushPullScale: beyond 32 members, one more interval per doubling. */
    uint32_t live = members_live(&n->mem);
    if (live <= 32)
        return n->s.pushpull_interval_ms;
    double mult = ceil(log2((double)live) - 5.0) + 1.0;
    return (uint32_t)(n->s.pushpull_interval_ms * mult);
}

static void reconnect(rumor_node *n, uint64_t now)
{
    members *t = &n->mem;
    /* A failed member that is still worth trying: a healed partition merges through it. */
    for (int tries = 0; tries < 8 && t->ndead; tries++) {
        member *m = t->dead[rng_below(&n->rng, (uint32_t)t->ndead)];
        if (m->state == RUMOR_MEMBER_FAILED && now < m->state_since + n->s.reconnect_timeout_ms) {
            /* Digest first: most attempts reach nobody, and a full state costs O(N) to build. */
            sync_pushpull(n, &m->addr, false, true, now);
            return;
        }
    }
    /* Alone (or cut off from everyone we knew): go back to the seeds. */
    if (members_live(t) <= 1 && n->nseeds)
        sync_pushpull(n, &n->seeds[rng_below(&n->rng, (uint32_t)n->nseeds)], true, false, now);
}

void sync_tick(rumor_node *n, uint64_t now)
{
    for (size_t i = 0; i < n->nstreams;) {
        stream *s = n->streams[i];
        if (s->deadline <= now)
            stream_finish(n, s); /* swaps another stream into slot i */
        else
            i++;
    }
    if (n->leaving)
        return;
    if (n->s.pushpull_interval_ms && now >= n->next_pushpull) {
        member *peer;
        if (gossip_pick(n, &peer, 1, NULL, false, now) == 1)
            sync_pushpull(n, &peer->addr, false, true, now);
        n->next_pushpull = now + next_pushpull_gap(n);
    }
    if (n->s.reconnect_interval_ms && now >= n->next_reconnect) {
        reconnect(n, now);
        n->next_reconnect = now + n->s.reconnect_interval_ms;
    }
}

uint64_t sync_deadline(const rumor_node *n)
{
    uint64_t d = NODE_NEVER;
    for (size_t i = 0; i < n->nstreams; i++)
        if (n->streams[i]->deadline < d)
            d = n->streams[i]->deadline;
    if (!n->leaving) {
        if (n->s.pushpull_interval_ms && n->next_pushpull < d)
            d = n->next_pushpull;
        if (n->s.reconnect_interval_ms && n->next_reconnect < d)
            d = n->next_reconnect;
    }
    return d;
}
