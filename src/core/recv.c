/* Inbound packets: check the header, open the sealed envelope, decode every message before
 * applying any (so a malformed, forged or replayed packet changes nothing), then dispatch. */
#include "core/node.h"

#include <string.h>

static int err_of(rumor_drop_reason r)
{
    switch (r) {
    case RUMOR_DROP_BAD_VERSION:
        return RUMOR_ERR_VERSION;
    case RUMOR_DROP_BAD_LABEL:
        return RUMOR_ERR_LABEL;
    case RUMOR_DROP_ENCRYPTED:
    case RUMOR_DROP_AUTH_FAILED:
    case RUMOR_DROP_UNKNOWN_KEY:
    case RUMOR_DROP_REPLAYED:
    case RUMOR_DROP_PLAINTEXT:
    case RUMOR_DROP_NOT_FOR_US:
        return RUMOR_ERR_AUTH;
    case RUMOR_DROP_OVERSIZE:
        return RUMOR_ERR_TOO_BIG;
    default:
        return RUMOR_ERR_MALFORMED;
    }
}

int recv_reject(rumor_node *n, rumor_drop_reason r)
{
    node_drop(n, r);
    return err_of(r);
}

/* A stream frame with more messages than a datagram can hold (a full state with one KV_DELTA per
 * origin) grows the decode array; recv_shrink gives the growth back afterwards. */
static bool grow_msgs(rumor_node *n)
{
    void *p = n->msgs;
    size_t cap = n->msgs_cap;
    if (!rgrow(&n->alloc, &p, &cap, n->msgs_cap * 2, sizeof(wire_msg)))
        return false;
    n->msgs = p;
    n->msgs_cap = cap;
    return true;
}

void recv_shrink(rumor_node *n)
{
    if (n->msgs_cap <= WIRE_MSGS_MAX)
        return;
    wire_msg *p = ralloc(&n->alloc, WIRE_MSGS_MAX * sizeof(wire_msg));
    if (!p)
        return; /* keep the larger array */
    rfree(&n->alloc, n->msgs);
    n->msgs = p;
    n->msgs_cap = WIRE_MSGS_MAX;
}

int recv_header(rumor_node *n, const uint8_t *data, size_t len, bool is_stream, wire_header *h)
{
    size_t max = is_stream ? n->s.stream_frame_bytes_max : RUMOR_PACKET_MAX;
    if (len > max)
        return recv_reject(n, RUMOR_DROP_OVERSIZE);
    buf_reader r;
    buf_reader_init(&r, data, len);
    int rc = wire_header_decode(&r, h);
    if (rc < 0)
        return recv_reject(n, wire_drop_of(rc));
    if (h->label.len != n->label_len || memcmp(h->label.p, n->label, h->label.len) != 0)
        return recv_reject(n, RUMOR_DROP_BAD_LABEL);
    /* A node without keys cannot open a sealed packet; one with keys takes plaintext only
     * while migrating (seal_accept_plaintext). */
    if ((h->flags & WIRE_FLAG_SEALED) && !seal_enabled(&n->seal))
        return recv_reject(n, RUMOR_DROP_ENCRYPTED);
    if (!(h->flags & WIRE_FLAG_SEALED) && seal_enabled(&n->seal) && !n->seal.accept_plain)
        return recv_reject(n, RUMOR_DROP_PLAINTEXT);
    return (int)r.off;
}

int recv_msgs(rumor_node *n, const uint8_t *p, size_t len, bool is_stream, bool allow_empty)
{
    buf_reader r;
    buf_reader_init(&r, p, len);
    size_t count = 0, unknown = 0;
    for (;;) {
        wire_msg m;
        int rc = wire_msg_decode(&r, &m, RUMOR_META_MAX);
        if (rc < 0)
            return recv_reject(n, wire_drop_of(rc));
        if (rc == 0)
            break;
        if (m.type == 0) {
            unknown++;
            continue;
        }
        /* Full state (and the clocks sent with it) only travels on streams; on a datagram it
         * is a forgery or a bug. */
        if ((m.type == WIRE_PUSHPULL || m.type == WIRE_CLOCKS) && !is_stream)
            return recv_reject(n, RUMOR_DROP_MALFORMED);
        if (count == (is_stream ? WIRE_STREAM_MSGS_MAX : WIRE_MSGS_MAX))
            return recv_reject(n, RUMOR_DROP_OVERSIZE);
        if (count == n->msgs_cap && !grow_msgs(n))
            return recv_reject(n, RUMOR_DROP_QUEUE_FULL);
        n->msgs[count++] = m;
    }
    for (size_t i = 0; i < unknown; i++)
        node_drop(n, RUMOR_DROP_UNKNOWN_TYPE);
    if (count == 0 && unknown == 0 && !allow_empty)
        return recv_reject(n, RUMOR_DROP_MALFORMED);
    n->st.messages_in += count;
    return (int)count;
}

void recv_apply(rumor_node *n, const rumor_addr *from, const wire_msg *m, uint64_t now)
{
    wire_ident id; /* what a membership claim came signed with (ident.h) */
    n->from = from;
    switch (m->type) {
    case WIRE_PING:
        probe_on_ping(n, from, m, now);
        break;
    case WIRE_PING_REQ:
        probe_on_ping_req(n, from, m, now);
        break;
    case WIRE_ACK:
        probe_on_ack(n, m->u.ack.seq, now);
        break;
    case WIRE_NACK:
        probe_on_nack(n, m->u.ack.seq);
        break;
    case WIRE_ALIVE:
        wire_alive_ident(m, &id);
        state_alive(n, m->u.alive.inc, m->u.alive.name, &m->u.alive.addr, m->u.alive.meta, &id,
                    now);
        break;
    case WIRE_SUSPECT:
        wire_accuse_ident(m, &id);
        state_suspect(n, m->u.accuse.inc, m->u.accuse.name, m->u.accuse.accuser, &id, now);
        break;
    case WIRE_FAILED:
        wire_accuse_ident(m, &id);
        state_failed(n, m->u.accuse.inc, m->u.accuse.name, m->u.accuse.accuser, &id, now);
        break;
    case WIRE_LEFT:
        wire_accuse_ident(m, &id);
        state_left(n, m->u.accuse.inc, m->u.accuse.name, &id, now);
        break;
    case WIRE_KV_DIGEST:
        kvnode_on_digest(n, m, now);
        break;
    case WIRE_KV_DELTA:
        kvnode_on_delta(n, m, now);
        break;
    case WIRE_USER_EVENT:
        msg_on_user_event(n, m, now);
        break;
    case WIRE_QUERY:
        msg_on_query(n, m, now);
        break;
    case WIRE_QUERY_RESP:
        msg_on_query_resp(n, m, now);
        break;
    case WIRE_CLOCKS:
        msg_on_clocks(n, m);
        break;
    default:
        break; /* PUSHPULL is handled by the stream code */
    }
    n->from = NULL;
}

/*
 * A sealed datagram: it must open under a key of the keyring, be a datagram (not a stream frame
 * moved over), name this node as its recipient (so a copy re-sent to another member fails), and
 * carry a counter its sender's replay window has not seen. The window is only updated once
 * every message decoded, so a rejected packet leaves no trace. recv_packet then takes it in full
 * only when it also names this life's epoch.
 */
static int open_datagram(rumor_node *n, const uint8_t *data, size_t len, size_t hdr, seal_inner *in,
                         bool *held)
{
    uint8_t *out = seal_scratch(&n->seal, &n->alloc, len);
    if (!out)
        return recv_reject(n, RUMOR_DROP_QUEUE_FULL);
    const uint8_t *body;
    size_t blen;
    int rc = seal_open(&n->seal, data, len, hdr, out, in, &body, &blen);
    if (rc < 0)
        return recv_reject(n, wire_drop_of(rc));
    if (in->kind != SEAL_KIND_DGRAM)
        return recv_reject(n, RUMOR_DROP_MALFORMED);
    /* Recipient 0 comes from a node answering a plaintext packet while migrating: only a node
     * that accepts plaintext anyway takes it. */
    if (in->dest != n->seal.self_id && !(in->dest == 0 && n->seal.accept_plain))
        return recv_reject(n, RUMOR_DROP_NOT_FOR_US);
    if (in->sender == n->seal.self_id && in->epoch == n->seal.epoch)
        return recv_reject(n, RUMOR_DROP_REPLAYED); /* our own packet reflected back */
    rc = replay_check(&n->seal, in->sender, in->epoch, in->counter);
    if (rc < 0)
        return recv_reject(n, wire_drop_of(rc));
    int count = recv_msgs(n, body, blen, false, false);
    if (count >= 0) {
        *held =
            replay_mark(&n->seal, &n->alloc, in->sender, in->epoch, in->counter, in->aes, n->now);
    }
    return count;
}

int recv_packet(rumor_node *n, const rumor_addr *from, const uint8_t *data, size_t len,
                uint64_t now)
{
    wire_header h;
    int hdr = recv_header(n, data, len, false, &h);
    if (hdr < 0)
        return hdr;
    int count;
    uint64_t from_id = 0;
    bool stale_epoch = false, held = false;
    if (h.flags & WIRE_FLAG_SEALED) {
        seal_inner in;
        count = open_datagram(n, data, len, (size_t)hdr, &in, &held);
        from_id = in.sender;
        /* dest 0 (a migrating node's answer to plaintext) is only taken by a node that accepts
         * plaintext, replays included, anyway. */
        stale_epoch = in.dest != 0 && in.dest_epoch != n->seal.epoch;
    } else {
        count = recv_msgs(n, data + hdr, len - (size_t)hdr, false, false);
    }
    if (count < 0)
        return count;
    n->from_id = from_id;
    if (stale_epoch) {
        /* Addressed to an earlier life of ours, or by a sender that has not heard from this one
         * yet: it may have been captured before we restarted (section 3.1.4). Only what is
         * harmless to take twice and needed for liveness is applied, and answers to our own
         * queries: one counts only while a query of this life with its time and id runs, once
         * per responder (a responder need not have heard from us before it answers). */
        n->st.stale_epoch_in++;
        size_t unanswered = 0;
        for (int i = 0; i < count; i++) {
            const wire_msg *m = &n->msgs[i];
            if (m->type == WIRE_PING || m->type == WIRE_PING_REQ || m->type == WIRE_QUERY_RESP) {
                recv_apply(n, from, m, now);
                continue;
            }
            unanswered++;
            /* The sender's own ALIVE is its hello (it does not know our epoch yet): ignored
             * like the rest, but not counted as a drop. */
            if (m->type != WIRE_ALIVE || seal_id(m->u.alive.name.p, m->u.alive.name.len) != from_id)
                node_drop(n, RUMOR_DROP_STALE_EPOCH);
        }
        /* Tell the sender our epoch now, so that its next news gets through. */
        if (unanswered && seal_notice_due(&n->seal, from_id, now, n->s.probe_interval_ms))
            (void)node_epoch_notice(n, from, from_id);
    } else {
        for (int i = 0; i < count; i++)
            recv_apply(n, from, &n->msgs[i], now);
    }
    /* Its epoch is known now: the news we held back from it goes at once, before the queue
     * spends it on others. */
    if (held)
        node_catch_up(n, from, from_id);
    n->from_id = 0;
    return RUMOR_OK;
}
