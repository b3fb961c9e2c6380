/*
 * Datagrams over TCP, for networks that block UDP (--tcp-only). A tunnel is a TCP connection
 * to the peer's gossip port that starts with RT_TUNNEL_HDR, then one byte of address length and
 * the sender's advertised address (so the receiver knows whom the datagrams come from, as the
 * source port of an outbound connection is ephemeral), then frames of a 2-byte big-endian
 * length and one datagram. Receiving is always on, so tcp-only nodes can join any cluster.
 */
#include "rt_internal.h"

#include <stdlib.h>
#include <string.h>

#define TUNNELS_OUT_MAX 256u
/* A peer that stops reading gets its datagrams dropped rather than queued without bound. */
#define TUNNEL_QUEUE_MAX    (1024u * 1024u)
#define TUNNEL_PREAMBLE_MAX (RT_TUNNEL_HDR_LEN + 1u + RUMOR_ADDR_MAX)
#define TUNNEL_BUF_CAP      (TUNNEL_PREAMBLE_MAX + RT_TUNNEL_FRAME_MAX)

static rt_conn *find_out(rumor_runtime *rt, const rumor_addr *to, size_t *count)
{
    rt_conn *found = NULL;
    *count = 0;
    for (rt_conn *c = rt->conns; c; c = c->next) {
        if (c->kind != RT_CONN_TUNNEL_OUT || c->closing)
            continue;
        (*count)++;
        if (rumor_addr_equal(&c->peer, to))
            found = c;
    }
    return found;
}

static rt_conn *open_out(rumor_runtime *rt, const rumor_addr *to)
{
    rt_conn *c = rt_conn_new(rt, RT_CONN_TUNNEL_OUT, RT_TUNNEL_IDLE_MS);
    if (!c)
        return NULL;
    if (rt_conn_connect(c, to) != 0) {
        rt_conn_close(c, false);
        return NULL;
    }
    const rumor_addr *self = &rt->opt.settings.addr;
    uint8_t pre[TUNNEL_PREAMBLE_MAX];
    memcpy(pre, RT_TUNNEL_HDR, RT_TUNNEL_HDR_LEN);
    pre[RT_TUNNEL_HDR_LEN] = self->len;
    memcpy(pre + RT_TUNNEL_HDR_LEN + 1, self->bytes, self->len);
    if (rt_conn_write(c, pre, RT_TUNNEL_HDR_LEN + 1u + self->len) != 0)
        return NULL;
    return c;
}

void rt_tunnel_send(rumor_runtime *rt, const rumor_addr *to, const uint8_t *data, size_t len)
{
    size_t count;
    rt_conn *c = find_out(rt, to, &count);
    if (!c && count < TUNNELS_OUT_MAX)
        c = open_out(rt, to);
    if (!c || len > RUMOR_PACKET_MAX || c->tcp.write_queue_size > TUNNEL_QUEUE_MAX) {
        rt->counters.tunnel_dropped++;
        return;
    }
    uint8_t *frame = malloc(2 + len);
    if (!frame) {
        rt->counters.tunnel_dropped++;
        return;
    }
    frame[0] = (uint8_t)(len >> 8);
    frame[1] = (uint8_t)len;
    memcpy(frame + 2, data, len);
    if (rt_conn_write(c, frame, 2 + len) == 0) {
        rt->counters.tunnel_out++;
        rt_conn_touch(c);
    } else {
        rt->counters.tunnel_dropped++;
    }
    free(frame);
}

/* Consumes what is complete in c->buf; returns false when the peer sent garbage. */
static bool parse(rt_conn *c, size_t *used)
{
    rumor_runtime *rt = c->rt;
    size_t off = 0;
    if (!c->have_peer) {
        if (c->buf_len < RT_TUNNEL_HDR_LEN + 1u)
            return memcmp(c->buf, RT_TUNNEL_HDR, c->buf_len) == 0;
        uint8_t alen = c->buf[RT_TUNNEL_HDR_LEN];
        if (memcmp(c->buf, RT_TUNNEL_HDR, RT_TUNNEL_HDR_LEN) != 0 || alen == 0 ||
            alen > RUMOR_ADDR_MAX)
            return false;
        if (c->buf_len < RT_TUNNEL_HDR_LEN + 1u + alen) {
            *used = 0;
            return true;
        }
        c->peer.len = alen;
        memcpy(c->peer.bytes, c->buf + RT_TUNNEL_HDR_LEN + 1, alen);
        c->have_peer = true;
        off = RT_TUNNEL_HDR_LEN + 1u + alen;
    }
    while (c->buf_len - off >= 2) {
        size_t flen = (size_t)c->buf[off] << 8 | c->buf[off + 1];
        if (flen == 0 || flen > RUMOR_PACKET_MAX)
            return false;
        if (c->buf_len - off - 2 < flen)
            break;
        rt->counters.tunnel_in++;
        if (rumor_node_receive(rt->node, &c->peer, c->buf + off + 2, flen, rt_now(rt)) ==
            RUMOR_ERR_AUTH)
            rt_refused(rt, &c->peer);
        off += 2 + flen;
    }
    *used = off;
    return true;
}

void rt_tunnel_read(rt_conn *c, const uint8_t *data, size_t len)
{
    if (!c->buf && !(c->buf = malloc(TUNNEL_BUF_CAP))) {
        rt_conn_close(c, false);
        return;
    }
    while (len > 0 && !c->closing) {
        size_t take = TUNNEL_BUF_CAP - c->buf_len;
        take = take < len ? take : len;
        memcpy(c->buf + c->buf_len, data, take);
        c->buf_len += take;
        data += take;
        len -= take;
        size_t used = 0;
        if (!parse(c, &used)) {
            c->rt->counters.tunnel_dropped++;
            rt_conn_close(c, false);
            return;
        }
        memmove(c->buf, c->buf + used, c->buf_len - used);
        c->buf_len -= used;
    }
}
