/* Inbound packets: check the header, decode every message before applying any (so a malformed
 * packet changes nothing), then dispatch. */
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
        return RUMOR_ERR_AUTH;
    case RUMOR_DROP_OVERSIZE:
        return RUMOR_ERR_TOO_BIG;
    default:
        return RUMOR_ERR_MALFORMED;
    }
}

static int reject(rumor_node *n, rumor_drop_reason r)
{
    node_drop(n, r);
    return err_of(r);
}

/* Decodes a whole packet into n->msgs. Returns the message count or a negative error. */
int recv_decode(rumor_node *n, const uint8_t *data, size_t len, bool is_stream)
{
    size_t max = is_stream ? n->s.stream_frame_bytes_max : RUMOR_PACKET_MAX;
    if (len > max)
        return reject(n, RUMOR_DROP_OVERSIZE);
    buf_reader r;
    buf_reader_init(&r, data, len);
    wire_header h;
    int rc = wire_header_decode(&r, &h);
    if (rc < 0)
        return reject(n, wire_drop_of(rc));
    if (h.label.len != n->label_len || memcmp(h.label.p, n->label, h.label.len) != 0)
        return reject(n, RUMOR_DROP_BAD_LABEL);
    if (h.flags & WIRE_FLAG_SEALED)
        return reject(n, RUMOR_DROP_ENCRYPTED);
    size_t count = 0, unknown = 0;
    for (;;) {
        wire_msg m;
        rc = wire_msg_decode(&r, &m, RUMOR_META_MAX);
        if (rc < 0)
            return reject(n, wire_drop_of(rc));
        if (rc == 0)
            break;
        if (m.type == 0) {
            unknown++;
            continue;
        }
        /* Full state (and the clocks sent with it) only travels on streams; on a datagram it
         * is a forgery or a bug. */
        if ((m.type == WIRE_PUSHPULL || m.type == WIRE_CLOCKS) && !is_stream)
            return reject(n, RUMOR_DROP_MALFORMED);
        if (count == WIRE_MSGS_MAX)
            return reject(n, RUMOR_DROP_OVERSIZE);
        n->msgs[count++] = m;
    }
    for (size_t i = 0; i < unknown; i++)
        node_drop(n, RUMOR_DROP_UNKNOWN_TYPE);
    if (count == 0 && unknown == 0)
        return reject(n, RUMOR_DROP_MALFORMED);
    n->st.messages_in += count;
    return (int)count;
}

void recv_apply(rumor_node *n, const rumor_addr *from, const wire_msg *m, uint64_t now)
{
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
        state_alive(n, m->u.alive.inc, m->u.alive.name, &m->u.alive.addr, m->u.alive.meta, now);
        break;
    case WIRE_SUSPECT:
        state_suspect(n, m->u.accuse.inc, m->u.accuse.name, m->u.accuse.accuser, now);
        break;
    case WIRE_FAILED:
        state_failed(n, m->u.accuse.inc, m->u.accuse.name, m->u.accuse.accuser, now);
        break;
    case WIRE_LEFT:
        state_left(n, m->u.accuse.inc, m->u.accuse.name, now);
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

int recv_packet(rumor_node *n, const rumor_addr *from, const uint8_t *data, size_t len,
                bool is_stream, uint64_t now)
{
    int count = recv_decode(n, data, len, is_stream);
    if (count < 0)
        return count;
    for (int i = 0; i < count; i++)
        recv_apply(n, from, &n->msgs[i], now);
    return RUMOR_OK;
}
