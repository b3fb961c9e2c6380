#include "core/wire.h"

#include <stdint.h>
#include <string.h>

#define DROP(reason) (-(int)(reason)-1)

bool wire_name_ok(const uint8_t *p, size_t len)
{
    return len >= 1 && len <= RUMOR_NAME_MAX && memchr(p, 0, len) == NULL;
}

int wire_header_decode(buf_reader *r, wire_header *h)
{
    const uint8_t *magic;
    uint8_t label_len;
    if (!buf_get_bytes(r, 2, &magic))
        return DROP(RUMOR_DROP_TRUNCATED);
    if (magic[0] != WIRE_MAGIC0 || magic[1] != WIRE_MAGIC1)
        return DROP(RUMOR_DROP_BAD_MAGIC);
    if (!buf_get_u8(r, &h->version) || !buf_get_u8(r, &h->flags) || !buf_get_u8(r, &label_len))
        return DROP(RUMOR_DROP_TRUNCATED);
    if (h->version != RUMOR_PROTOCOL_VERSION)
        return DROP(RUMOR_DROP_BAD_VERSION);
    if ((h->flags & ~WIRE_FLAGS_KNOWN) ||
        (h->flags & (WIRE_FLAG_SEALED | WIRE_FLAG_AESGCM)) == WIRE_FLAG_AESGCM)
        return DROP(RUMOR_DROP_MALFORMED);
    if (label_len > RUMOR_LABEL_MAX)
        return DROP(RUMOR_DROP_MALFORMED);
    if (!buf_get_bytes(r, label_len, &h->label.p))
        return DROP(RUMOR_DROP_TRUNCATED);
    h->label.len = label_len;
    return 0;
}

static bool get_name(buf_reader *r, wire_str *s, bool allow_empty)
{
    if (!buf_get_lbytes(r, RUMOR_NAME_MAX, &s->p, &s->len))
        return false;
    if (s->len == 0)
        return allow_empty;
    return wire_name_ok(s->p, s->len);
}

static bool get_addr(buf_reader *r, rumor_addr *a)
{
    const uint8_t *p;
    if (!buf_get_u8(r, &a->len) || a->len == 0 || a->len > RUMOR_ADDR_MAX ||
        !buf_get_bytes(r, a->len, &p))
        return false;
    memcpy(a->bytes, p, a->len);
    memset(a->bytes + a->len, 0, RUMOR_ADDR_MAX - a->len);
    return true;
}

static bool get_member(buf_reader *r, wire_member *m, uint32_t meta_max)
{
    return get_name(r, &m->name, false) && get_addr(r, &m->addr) && buf_get_u32v(r, &m->inc) &&
           buf_get_u8(r, &m->state) && m->state <= RUMOR_MEMBER_LEFT &&
           buf_get_lbytes(r, meta_max, &m->meta.p, &m->meta.len);
}

/* ---- identity trailers ---- */

static bool get_block(buf_reader *r, wire_ident *id)
{
    uint8_t flags;
    memset(id, 0, sizeof(*id));
    if (!buf_get_u8(r, &flags) || (flags & ~WIRE_IDENT_CERT) ||
        !buf_get_bytes(r, WIRE_KEY_BYTES, &id->pk))
        return false;
    if (flags & WIRE_IDENT_CERT) {
        if (!buf_get_u64be(r, &id->cert_expires_ms) || !buf_get_bytes(r, WIRE_SIG_BYTES, &id->cert))
            return false;
        id->has_cert = true;
    }
    if (!buf_get_bytes(r, WIRE_SIG_BYTES, &id->sig))
        return false;
    id->present = true;
    return true;
}

/* Whether what is left of a payload starts with a well-formed trailer of `blocks` identity
 * blocks (or, with `sigs`, that many bare signatures). Anything after it is ignored. */
static bool trailer_ok(buf_reader p, uint32_t blocks, uint32_t sigs)
{
    uint8_t v;
    wire_ident id;
    const uint8_t *b;
    if (!buf_get_u8(&p, &v) || v != WIRE_IDENT_V1)
        return false;
    for (uint32_t i = 0; i < blocks; i++)
        if (!get_block(&p, &id))
            return false;
    size_t n;
    return size_mul_ok(sigs, WIRE_SIG_BYTES, &n) && buf_get_bytes(&p, n, &b);
}

void wire_alive_ident(const wire_msg *m, wire_ident *out)
{
    memset(out, 0, sizeof(*out));
    if (!m->u.alive.ident)
        return;
    buf_reader r;
    buf_reader_init(&r, m->u.alive.meta.p + m->u.alive.meta.len + 1, WIRE_IDENT_BLOCK_MAX);
    (void)get_block(&r, out); /* validated at decode */
}

void wire_accuse_ident(const wire_msg *m, wire_ident *out)
{
    memset(out, 0, sizeof(*out));
    if (!m->u.accuse.ident)
        return;
    wire_str last = m->type == WIRE_LEFT ? m->u.accuse.name : m->u.accuse.accuser;
    out->sig = last.p + last.len + 1;
    out->present = true;
}

const uint8_t *wire_msg_sig(const wire_msg *m)
{
    /* The trailer's version byte follows the last field, the signature follows it. */
    switch (m->type) {
    case WIRE_USER_EVENT:
        return m->u.user_event.ident ? m->u.user_event.payload.p + m->u.user_event.payload.len + 1
                                     : NULL;
    case WIRE_QUERY:
        return m->u.query.ident ? m->u.query.rest.p + m->u.query.rest.len + 1 : NULL;
    case WIRE_QUERY_RESP:
        return m->u.query_resp.ident ? m->u.query_resp.payload.p + m->u.query_resp.payload.len + 1
                                     : NULL;
    default:
        return NULL;
    }
}

bool wire_pushpull_idents(const wire_msg *m, buf_reader *out)
{
    if (!m->u.pushpull.ident)
        return false;
    const buf_reader *mr = &m->u.pushpull.members;
    /* The trailer follows the records, the 8-byte digest and the version byte. */
    buf_reader_init(out, mr->p + mr->len + 9, (size_t)m->u.pushpull.count * WIRE_IDENT_BLOCK_MAX);
    return true;
}

bool wire_ident_next(buf_reader *r, wire_ident *out)
{
    return get_block(r, out);
}

const uint8_t *wire_kv_delta_sigs(const wire_msg *m)
{
    if (!m->u.kv_delta.ident)
        return NULL;
    const buf_reader *er = &m->u.kv_delta.entries;
    return er->p + er->len + 1;
}

bool wire_member_next(buf_reader *r, wire_member *m)
{
    return get_member(r, m, RUMOR_META_MAX);
}

static bool decode_pushpull(buf_reader *p, wire_msg *m, uint32_t meta_max)
{
    if (!buf_get_u8(p, &m->u.pushpull.flags) || !get_name(p, &m->u.pushpull.sender, false) ||
        !buf_get_u32v(p, &m->u.pushpull.count))
        return false;
    /* Validate every record now so that applying the state can never fail half-way. */
    size_t start = p->off;
    wire_member wm;
    for (uint32_t i = 0; i < m->u.pushpull.count; i++)
        if (!get_member(p, &wm, meta_max))
            return false;
    buf_reader_init(&m->u.pushpull.members, p->p + start, p->off - start);
    if (!buf_get_u64be(p, &m->u.pushpull.digest))
        return false;
    m->u.pushpull.ident = trailer_ok(*p, m->u.pushpull.count, 0);
    return true;
}

#define KV_KEY_WIRE_MAX 256 /* RUMOR_KEY_MAX */

bool wire_kv_digest_next(buf_reader *r, wire_str *origin, uint64_t *max, uint64_t *gc)
{
    return get_name(r, origin, false) && buf_get_varint(r, max) && buf_get_varint(r, gc);
}

bool wire_kv_retired_dep(wire_str value, wire_str *origin, uint64_t *version)
{
    buf_reader r;
    buf_reader_init(&r, value.p, value.len);
    if (!buf_get_varint(&r, version) || *version == 0)
        return false;
    origin->p = value.p + r.off;
    origin->len = value.len - r.off;
    return wire_name_ok(origin->p, origin->len);
}

size_t wire_kv_retired_put(uint8_t *out, wire_str origin, uint64_t version)
{
    buf_writer w;
    buf_writer_init_fixed(&w, out, 10u + RUMOR_NAME_MAX);
    buf_put_varint(&w, version);
    buf_put_bytes(&w, origin.p, origin.len);
    return w.len;
}

static bool get_kv_entry(buf_reader *r, wire_kv_entry *e)
{
    if (!buf_get_lbytes(r, KV_KEY_WIRE_MAX, &e->key.p, &e->key.len) || e->key.len == 0 ||
        !buf_get_varint(r, &e->version) || e->version == 0 || !buf_get_u8(r, &e->flags) ||
        (e->flags & ~0x07u) || !buf_get_varint(r, &e->stamp) ||
        !buf_get_lbytes(r, RUMOR_KV_VALUE_MAX, &e->value.p, &e->value.len))
        return false;
    if (e->flags & WIRE_KV_RETIRED) {
        /* Only a shared tombstone is retired, and its value names what superseded it. */
        wire_str o;
        uint64_t v;
        return (e->flags & 0x03u) == 0x03u && wire_kv_retired_dep(e->value, &o, &v);
    }
    return !((e->flags & 0x01u) && e->value.len); /* a tombstone has no value */
}

bool wire_kv_entry_next(buf_reader *r, wire_kv_entry *e)
{
    return get_kv_entry(r, e);
}

static bool decode_kv_digest(buf_reader *p, wire_msg *m)
{
    if (!buf_get_u8(p, &m->u.kv_digest.flags) || !buf_get_u32v(p, &m->u.kv_digest.count))
        return false;
    size_t start = p->off;
    wire_str o;
    uint64_t a, b;
    for (uint32_t i = 0; i < m->u.kv_digest.count; i++)
        if (!wire_kv_digest_next(p, &o, &a, &b))
            return false;
    buf_reader_init(&m->u.kv_digest.entries, p->p + start, p->off - start);
    if (!buf_get_u64be(p, &m->u.kv_digest.sum))
        return false;
    /* Optional per-bucket sums: a count, then that many u32. */
    uint8_t nb;
    if (buf_reader_left(p) == 0 || !buf_get_u8(p, &nb))
        return true;
    m->u.kv_digest.nbuckets = nb;
    if (!buf_get_bytes(p, (size_t)nb * 4u, &m->u.kv_digest.buckets))
        return false;
    /* Optional after the buckets: the sender's version total. */
    if (buf_reader_left(p) == 0)
        return true;
    m->u.kv_digest.has_total = true;
    return buf_get_varint(p, &m->u.kv_digest.total);
}

static bool decode_kv_delta(buf_reader *p, wire_msg *m)
{
    if (!get_name(p, &m->u.kv_delta.origin, false) || !buf_get_u8(p, &m->u.kv_delta.flags) ||
        !buf_get_varint(p, &m->u.kv_delta.since) || !buf_get_varint(p, &m->u.kv_delta.origin_max) ||
        !buf_get_varint(p, &m->u.kv_delta.gc_version) || !buf_get_u32v(p, &m->u.kv_delta.count))
        return false;
    size_t start = p->off;
    uint64_t last = m->u.kv_delta.since;
    wire_kv_entry e;
    for (uint32_t i = 0; i < m->u.kv_delta.count; i++) {
        /* Entries ascend strictly from `since`. They may pass origin_max: with identities it
         * is the origin's signed head, which a write does not renew (its entry proves it). */
        if (!get_kv_entry(p, &e) || e.version <= last)
            return false;
        last = e.version;
    }
    buf_reader_init(&m->u.kv_delta.entries, p->p + start, p->off - start);
    m->u.kv_delta.ident = trailer_ok(*p, 0, m->u.kv_delta.count + 1u);
    /* A keyspace sum block may follow the signatures (section 12.8); anything else there is
     * ignored, like any bytes after a trailer. */
    const uint8_t *b;
    uint8_t v;
    buf_reader q = *p;
    if (m->u.kv_delta.ident && buf_get_bytes(&q, wire_kv_sigs_size(m->u.kv_delta.count), &b) &&
        buf_get_u8(&q, &v) && v == WIRE_KV_SUM_V1 && buf_get_bytes(&q, WIRE_KV_SUM_BYTES - 1u, &b))
        m->u.kv_delta.sum = b;
    return true;
}

void wire_kv_sum_of(const wire_msg *m, wire_kv_sum *out)
{
    /* The decoder checked the block's length: every read below succeeds. */
    buf_reader r;
    buf_reader_init(&r, m->u.kv_delta.sum, WIRE_KV_SUM_BYTES - 1u);
    (void)buf_get_u64be(&r, &out->max);
    (void)buf_get_u64be(&r, &out->gc);
    (void)buf_get_bytes(&r, WIRE_KV_SUM_LEN, &out->sum);
    (void)buf_get_bytes(&r, WIRE_SIG_BYTES, &out->sig);
}

void wire_put_kv_sum(buf_writer *w, uint64_t max, uint64_t gc, const uint8_t *sum,
                     const uint8_t *sig)
{
    buf_put_u8(w, WIRE_KV_SUM_V1);
    buf_put_u64be(w, max);
    buf_put_u64be(w, gc);
    buf_put_bytes(w, sum, WIRE_KV_SUM_LEN);
    buf_put_bytes(w, sig, WIRE_SIG_BYTES);
}

static bool get_ltime(buf_reader *r, uint64_t *out)
{
    return buf_get_varint_max(r, WIRE_LTIME_MAX, out);
}

static bool get_text(buf_reader *r, size_t min, size_t max, wire_str *s)
{
    return buf_get_lbytes(r, max, &s->p, &s->len) && s->len >= min &&
           (s->len == 0 || memchr(s->p, 0, s->len) == NULL);
}

bool wire_query_node_next(buf_reader *r, wire_str *name)
{
    return get_name(r, name, false);
}

bool wire_query_tag_next(buf_reader *r, wire_str *key, wire_str *value)
{
    return get_text(r, 1, RUMOR_TAG_KEY_MAX, key) && get_text(r, 0, RUMOR_TAG_VALUE_MAX, value);
}

/* Reads (and so validates) a QUERY's variable part; `out` may be NULL. */
static bool query_parts(buf_reader *r, wire_query_parts *out)
{
    wire_query_parts q;
    wire_str a, b;
    if (!buf_get_u32v(r, &q.nnodes))
        return false;
    size_t start = r->off;
    for (uint32_t i = 0; i < q.nnodes; i++)
        if (!wire_query_node_next(r, &a))
            return false;
    buf_reader_init(&q.nodes, r->p + start, r->off - start);
    if (!buf_get_u32v(r, &q.ntags))
        return false;
    start = r->off;
    for (uint32_t i = 0; i < q.ntags; i++)
        if (!wire_query_tag_next(r, &a, &b))
            return false;
    buf_reader_init(&q.tags, r->p + start, r->off - start);
    if (!get_text(r, 1, RUMOR_EVENT_NAME_MAX, &q.name) ||
        !buf_get_lbytes(r, RUMOR_PACKET_MAX, &q.payload.p, &q.payload.len))
        return false;
    if (out)
        *out = q;
    return true;
}

void wire_query_parts_of(wire_str rest, wire_query_parts *out)
{
    buf_reader r;
    buf_reader_init(&r, rest.p, rest.len);
    if (!query_parts(&r, out))
        memset(out, 0, sizeof(*out)); /* not from wire_msg_decode: nothing to read */
}

void wire_addr_of(wire_str bytes, rumor_addr *out)
{
    memset(out, 0, sizeof(*out));
    out->len = (uint8_t)(bytes.len <= RUMOR_ADDR_MAX ? bytes.len : RUMOR_ADDR_MAX);
    memcpy(out->bytes, bytes.p, out->len);
}

static bool decode_query(buf_reader *p, wire_msg *m)
{
    uint8_t alen;
    if (!get_ltime(p, &m->u.query.ltime) || !buf_get_u32v(p, &m->u.query.id) ||
        !get_name(p, &m->u.query.origin, false) || !buf_get_u8(p, &alen) || alen == 0 ||
        alen > RUMOR_ADDR_MAX || !buf_get_bytes(p, alen, &m->u.query.addr.p) ||
        !buf_get_u8(p, &m->u.query.flags) || !buf_get_u32v(p, &m->u.query.timeout_ms))
        return false;
    m->u.query.addr.len = alen;
    size_t start = p->off;
    if (!query_parts(p, NULL))
        return false;
    m->u.query.rest = wire_str_of(p->p + start, p->off - start);
    return true;
}

static bool decode_query_resp(buf_reader *p, wire_msg *m)
{
    if (!get_ltime(p, &m->u.query_resp.ltime) || !buf_get_u32v(p, &m->u.query_resp.id) ||
        !get_name(p, &m->u.query_resp.from, false) || !buf_get_u8(p, &m->u.query_resp.flags) ||
        !buf_get_lbytes(p, RUMOR_PACKET_MAX, &m->u.query_resp.payload.p,
                        &m->u.query_resp.payload.len))
        return false;
    /* An ack carries nothing. */
    return !((m->u.query_resp.flags & WIRE_Q_ACK) && m->u.query_resp.payload.len);
}

static bool decode_payload(buf_reader *p, wire_msg *m, uint32_t meta_max)
{
    switch (m->type) {
    case WIRE_PING:
        return buf_get_u32v(p, &m->u.ping.seq) && get_name(p, &m->u.ping.target, true) &&
               get_name(p, &m->u.ping.sender, false);
    case WIRE_PING_REQ: {
        uint8_t flags;
        if (!buf_get_u32v(p, &m->u.ping_req.seq) || !get_name(p, &m->u.ping_req.target, false) ||
            !get_addr(p, &m->u.ping_req.target_addr) || !buf_get_u8(p, &flags) ||
            !get_name(p, &m->u.ping_req.sender, false))
            return false;
        m->u.ping_req.nack = flags & 1;
        return true;
    }
    case WIRE_ACK:
    case WIRE_NACK:
        return buf_get_u32v(p, &m->u.ack.seq);
    case WIRE_ALIVE:
        if (!buf_get_u32v(p, &m->u.alive.inc) || !get_name(p, &m->u.alive.name, false) ||
            !get_addr(p, &m->u.alive.addr) ||
            !buf_get_lbytes(p, meta_max, &m->u.alive.meta.p, &m->u.alive.meta.len))
            return false;
        m->u.alive.ident = trailer_ok(*p, 1, 0);
        return true;
    case WIRE_SUSPECT:
    case WIRE_FAILED:
        if (!buf_get_u32v(p, &m->u.accuse.inc) || !get_name(p, &m->u.accuse.name, false) ||
            !get_name(p, &m->u.accuse.accuser, false))
            return false;
        m->u.accuse.ident = trailer_ok(*p, 0, 1);
        return true;
    case WIRE_LEFT:
        m->u.accuse.accuser = wire_str_of(NULL, 0);
        if (!buf_get_u32v(p, &m->u.accuse.inc) || !get_name(p, &m->u.accuse.name, false))
            return false;
        m->u.accuse.ident = trailer_ok(*p, 0, 1);
        return true;
    case WIRE_PUSHPULL:
        return decode_pushpull(p, m, meta_max);
    case WIRE_KV_DIGEST:
        return decode_kv_digest(p, m);
    case WIRE_KV_DELTA:
        return decode_kv_delta(p, m);
    case WIRE_USER_EVENT:
        if (!get_ltime(p, &m->u.user_event.ltime) || !get_name(p, &m->u.user_event.origin, false) ||
            !get_text(p, 1, RUMOR_EVENT_NAME_MAX, &m->u.user_event.name) ||
            !buf_get_lbytes(p, RUMOR_PACKET_MAX, &m->u.user_event.payload.p,
                            &m->u.user_event.payload.len))
            return false;
        m->u.user_event.ident = trailer_ok(*p, 0, 1);
        return true;
    case WIRE_QUERY:
        if (!decode_query(p, m))
            return false;
        m->u.query.ident = trailer_ok(*p, 0, 1);
        return true;
    case WIRE_QUERY_RESP:
        if (!decode_query_resp(p, m))
            return false;
        m->u.query_resp.ident = trailer_ok(*p, 0, 1);
        return true;
    case WIRE_CLOCKS:
        return buf_get_u8(p, &m->u.clocks.flags) && get_ltime(p, &m->u.clocks.event_ltime) &&
               get_ltime(p, &m->u.clocks.query_ltime) && buf_get_u64be(p, &m->u.clocks.event_sum);
    default:
        return false;
    }
}

int wire_msg_decode(buf_reader *r, wire_msg *m, uint32_t meta_max)
{
    if (buf_reader_left(r) == 0)
        return 0;
    const uint8_t *payload;
    size_t len;
    memset(m, 0, sizeof(*m));
    if (!buf_get_u8(r, &m->type))
        return DROP(RUMOR_DROP_TRUNCATED);
    if (!buf_get_lbytes(r, buf_reader_left(r), &payload, &len))
        return DROP(RUMOR_DROP_TRUNCATED);
    if (m->type == 0 || m->type > WIRE_TYPE_MAX) {
        m->type = 0;
        return 1;
    }
    buf_reader p;
    buf_reader_init(&p, payload, len);
    if (!decode_payload(&p, m, meta_max))
        return DROP(RUMOR_DROP_MALFORMED);
    return 1;
}

void wire_put_header(buf_writer *w, const uint8_t *label, size_t label_len, uint8_t flags)
{
    buf_put_u8(w, WIRE_MAGIC0);
    buf_put_u8(w, WIRE_MAGIC1);
    buf_put_u8(w, RUMOR_PROTOCOL_VERSION);
    buf_put_u8(w, flags);
    buf_put_u8(w, (uint8_t)label_len);
    buf_put_bytes(w, label, label_len);
}

static size_t lstr_size(wire_str s)
{
    return buf_varint_size(s.len) + s.len;
}

static void put_lstr(buf_writer *w, wire_str s)
{
    buf_put_lbytes(w, s.p, s.len);
}

static void put_addr(buf_writer *w, const rumor_addr *a)
{
    buf_put_u8(w, a->len);
    buf_put_bytes(w, a->bytes, a->len);
}

static void put_head(buf_writer *w, uint8_t type, size_t payload_len)
{
    buf_put_u8(w, type);
    buf_put_varint(w, payload_len);
}

void wire_put_ping(buf_writer *w, uint32_t seq, wire_str target, wire_str sender)
{
    put_head(w, WIRE_PING, buf_varint_size(seq) + lstr_size(target) + lstr_size(sender));
    buf_put_varint(w, seq);
    put_lstr(w, target);
    put_lstr(w, sender);
}

void wire_put_ping_req(buf_writer *w, uint32_t seq, wire_str target, const rumor_addr *addr,
                       bool nack, wire_str sender)
{
    put_head(w, WIRE_PING_REQ,
             buf_varint_size(seq) + lstr_size(target) + 1u + addr->len + 1u + lstr_size(sender));
    buf_put_varint(w, seq);
    put_lstr(w, target);
    put_addr(w, addr);
    buf_put_u8(w, nack ? 1 : 0);
    put_lstr(w, sender);
}

void wire_put_ack(buf_writer *w, uint8_t type, uint32_t seq)
{
    put_head(w, type, buf_varint_size(seq));
    buf_put_varint(w, seq);
}

void wire_put_alive(buf_writer *w, uint32_t inc, wire_str name, const rumor_addr *addr,
                    wire_str meta)
{
    wire_put_alive_ident(w, inc, name, addr, meta, NULL);
}

size_t wire_ident_block_size(const wire_ident *id)
{
    return 1u + WIRE_KEY_BYTES + (id->has_cert ? 8u + WIRE_SIG_BYTES : 0u) + WIRE_SIG_BYTES;
}

void wire_put_ident_block(buf_writer *w, const wire_ident *id)
{
    buf_put_u8(w, id->has_cert ? WIRE_IDENT_CERT : 0);
    buf_put_bytes(w, id->pk, WIRE_KEY_BYTES);
    if (id->has_cert) {
        buf_put_u64be(w, id->cert_expires_ms);
        buf_put_bytes(w, id->cert, WIRE_SIG_BYTES);
    }
    buf_put_bytes(w, id->sig, WIRE_SIG_BYTES);
}

void wire_put_alive_ident(buf_writer *w, uint32_t inc, wire_str name, const rumor_addr *addr,
                          wire_str meta, const wire_ident *id)
{
    bool signed_ = id && id->present;
    size_t trailer = signed_ ? 1u + wire_ident_block_size(id) : 0u;
    put_head(w, WIRE_ALIVE,
             buf_varint_size(inc) + lstr_size(name) + 1u + addr->len + lstr_size(meta) + trailer);
    buf_put_varint(w, inc);
    put_lstr(w, name);
    put_addr(w, addr);
    put_lstr(w, meta);
    if (signed_) {
        buf_put_u8(w, WIRE_IDENT_V1);
        wire_put_ident_block(w, id);
    }
}

void wire_put_accuse(buf_writer *w, uint8_t type, uint32_t inc, wire_str name, wire_str accuser)
{
    wire_put_accuse_ident(w, type, inc, name, accuser, NULL);
}

void wire_put_accuse_ident(buf_writer *w, uint8_t type, uint32_t inc, wire_str name,
                           wire_str accuser, const uint8_t *sig)
{
    size_t len = buf_varint_size(inc) + lstr_size(name);
    if (type != WIRE_LEFT)
        len += lstr_size(accuser);
    if (sig)
        len += 1u + WIRE_SIG_BYTES;
    put_head(w, type, len);
    buf_put_varint(w, inc);
    put_lstr(w, name);
    if (type != WIRE_LEFT)
        put_lstr(w, accuser);
    if (sig) {
        buf_put_u8(w, WIRE_IDENT_V1);
        buf_put_bytes(w, sig, WIRE_SIG_BYTES);
    }
}

size_t wire_member_size(const wire_member *m)
{
    return lstr_size(m->name) + 1u + m->addr.len + buf_varint_size(m->inc) + 1u +
           lstr_size(m->meta);
}

void wire_put_pushpull_begin(buf_writer *w, uint8_t flags, wire_str sender, uint32_t count,
                             size_t members_bytes)
{
    wire_put_pushpull_begin_ident(w, flags, sender, count, members_bytes, 0);
}

void wire_put_pushpull_begin_ident(buf_writer *w, uint8_t flags, wire_str sender, uint32_t count,
                                   size_t members_bytes, size_t trailer_bytes)
{
    put_head(w, WIRE_PUSHPULL,
             1u + lstr_size(sender) + buf_varint_size(count) + members_bytes + 8u + trailer_bytes);
    buf_put_u8(w, flags);
    put_lstr(w, sender);
    buf_put_varint(w, count);
}

void wire_put_member(buf_writer *w, const wire_member *m)
{
    put_lstr(w, m->name);
    put_addr(w, &m->addr);
    buf_put_varint(w, m->inc);
    buf_put_u8(w, m->state);
    put_lstr(w, m->meta);
}

void wire_put_pushpull_end(buf_writer *w, uint64_t digest)
{
    buf_put_u64be(w, digest);
}

size_t wire_kv_digest_entry_size(wire_str origin, uint64_t max, uint64_t gc)
{
    return lstr_size(origin) + buf_varint_size(max) + buf_varint_size(gc);
}

void wire_put_kv_digest_begin(buf_writer *w, uint8_t flags, uint32_t count, size_t bytes)
{
    put_head(w, WIRE_KV_DIGEST, 1u + buf_varint_size(count) + bytes + 8u);
    buf_put_u8(w, flags);
    buf_put_varint(w, count);
}

void wire_put_kv_digest_begin_b(buf_writer *w, uint8_t flags, uint32_t count, size_t bytes,
                                uint32_t nbuckets)
{
    put_head(w, WIRE_KV_DIGEST, 1u + buf_varint_size(count) + bytes + 8u + 1u + 4u * nbuckets);
    buf_put_u8(w, flags);
    buf_put_varint(w, count);
}

void wire_put_kv_digest_begin_t(buf_writer *w, uint8_t flags, uint32_t count, size_t bytes,
                                uint32_t nbuckets, uint64_t total)
{
    put_head(w, WIRE_KV_DIGEST,
             1u + buf_varint_size(count) + bytes + 8u + 1u + 4u * nbuckets +
                 buf_varint_size(total));
    buf_put_u8(w, flags);
    buf_put_varint(w, count);
}

void wire_put_kv_digest_total(buf_writer *w, uint64_t total)
{
    buf_put_varint(w, total);
}

void wire_put_kv_digest_buckets(buf_writer *w, const uint64_t *sums, uint32_t nbuckets)
{
    buf_put_u8(w, (uint8_t)nbuckets);
    for (uint32_t i = 0; i < nbuckets; i++)
        buf_put_u32be(w, (uint32_t)sums[i]);
}

void wire_put_kv_digest_entry(buf_writer *w, wire_str origin, uint64_t max, uint64_t gc)
{
    put_lstr(w, origin);
    buf_put_varint(w, max);
    buf_put_varint(w, gc);
}

void wire_put_kv_digest_end(buf_writer *w, uint64_t sum)
{
    buf_put_u64be(w, sum);
}

size_t wire_kv_entry_size(const wire_kv_entry *e)
{
    return lstr_size(e->key) + buf_varint_size(e->version) + 1u + buf_varint_size(e->stamp) +
           lstr_size(e->value);
}

size_t wire_kv_delta_head_size(wire_str origin, uint64_t since, uint64_t max, uint64_t gc,
                               uint32_t count)
{
    return lstr_size(origin) + 1u + buf_varint_size(since) + buf_varint_size(max) +
           buf_varint_size(gc) + buf_varint_size(count);
}

void wire_put_kv_delta_begin(buf_writer *w, wire_str origin, uint8_t flags, uint64_t since,
                             uint64_t max, uint64_t gc, uint32_t count, size_t bytes)
{
    put_head(w, WIRE_KV_DELTA, wire_kv_delta_head_size(origin, since, max, gc, count) + bytes);
    put_lstr(w, origin);
    buf_put_u8(w, flags);
    buf_put_varint(w, since);
    buf_put_varint(w, max);
    buf_put_varint(w, gc);
    buf_put_varint(w, count);
}

void wire_put_kv_entry(buf_writer *w, const wire_kv_entry *e)
{
    put_lstr(w, e->key);
    buf_put_varint(w, e->version);
    buf_put_u8(w, e->flags);
    buf_put_varint(w, e->stamp);
    put_lstr(w, e->value);
}

/* ---- user events and queries ---- */

static size_t sig_size(const uint8_t *sig)
{
    return sig ? 1u + WIRE_SIG_BYTES : 0u;
}

static void put_sig(buf_writer *w, const uint8_t *sig)
{
    if (sig) {
        buf_put_u8(w, WIRE_IDENT_V1);
        buf_put_bytes(w, sig, WIRE_SIG_BYTES);
    }
}

void wire_put_user_event(buf_writer *w, uint64_t ltime, wire_str origin, wire_str name,
                         wire_str payload)
{
    wire_put_user_event_sig(w, ltime, origin, name, payload, NULL);
}

void wire_put_user_event_sig(buf_writer *w, uint64_t ltime, wire_str origin, wire_str name,
                             wire_str payload, const uint8_t *sig)
{
    put_head(w, WIRE_USER_EVENT,
             buf_varint_size(ltime) + lstr_size(origin) + lstr_size(name) + lstr_size(payload) +
                 sig_size(sig));
    buf_put_varint(w, ltime);
    put_lstr(w, origin);
    put_lstr(w, name);
    put_lstr(w, payload);
    put_sig(w, sig);
}

size_t wire_query_rest_size(const wire_str *nodes, uint32_t nnodes, const wire_str *keys,
                            const wire_str *values, uint32_t ntags, wire_str name, wire_str payload)
{
    size_t n =
        buf_varint_size(nnodes) + buf_varint_size(ntags) + lstr_size(name) + lstr_size(payload);
    for (uint32_t i = 0; i < nnodes; i++)
        n += lstr_size(nodes[i]);
    for (uint32_t i = 0; i < ntags; i++)
        n += lstr_size(keys[i]) + lstr_size(values[i]);
    return n;
}

void wire_put_query_rest(buf_writer *w, const wire_str *nodes, uint32_t nnodes,
                         const wire_str *keys, const wire_str *values, uint32_t ntags,
                         wire_str name, wire_str payload)
{
    buf_put_varint(w, nnodes);
    for (uint32_t i = 0; i < nnodes; i++)
        put_lstr(w, nodes[i]);
    buf_put_varint(w, ntags);
    for (uint32_t i = 0; i < ntags; i++) {
        put_lstr(w, keys[i]);
        put_lstr(w, values[i]);
    }
    put_lstr(w, name);
    put_lstr(w, payload);
}

void wire_put_query(buf_writer *w, uint64_t ltime, uint32_t id, wire_str origin,
                    const rumor_addr *addr, uint8_t flags, uint32_t timeout_ms, wire_str rest)
{
    wire_put_query_sig(w, ltime, id, origin, addr, flags, timeout_ms, rest, NULL);
}

void wire_put_query_sig(buf_writer *w, uint64_t ltime, uint32_t id, wire_str origin,
                        const rumor_addr *addr, uint8_t flags, uint32_t timeout_ms, wire_str rest,
                        const uint8_t *sig)
{
    put_head(w, WIRE_QUERY,
             buf_varint_size(ltime) + buf_varint_size(id) + lstr_size(origin) + 1u + addr->len +
                 1u + buf_varint_size(timeout_ms) + rest.len + sig_size(sig));
    buf_put_varint(w, ltime);
    buf_put_varint(w, id);
    put_lstr(w, origin);
    put_addr(w, addr);
    buf_put_u8(w, flags);
    buf_put_varint(w, timeout_ms);
    buf_put_bytes(w, rest.p, rest.len);
    put_sig(w, sig);
}

void wire_put_query_resp(buf_writer *w, uint64_t ltime, uint32_t id, wire_str from, uint8_t flags,
                         wire_str payload)
{
    wire_put_query_resp_sig(w, ltime, id, from, flags, payload, NULL);
}

void wire_put_query_resp_sig(buf_writer *w, uint64_t ltime, uint32_t id, wire_str from,
                             uint8_t flags, wire_str payload, const uint8_t *sig)
{
    put_head(w, WIRE_QUERY_RESP,
             buf_varint_size(ltime) + buf_varint_size(id) + lstr_size(from) + 1u +
                 lstr_size(payload) + sig_size(sig));
    buf_put_varint(w, ltime);
    buf_put_varint(w, id);
    put_lstr(w, from);
    buf_put_u8(w, flags);
    put_lstr(w, payload);
    put_sig(w, sig);
}

void wire_put_clocks(buf_writer *w, uint8_t flags, uint64_t event_ltime, uint64_t query_ltime,
                     uint64_t event_sum)
{
    put_head(w, WIRE_CLOCKS, 1u + buf_varint_size(event_ltime) + buf_varint_size(query_ltime) + 8u);
    buf_put_u8(w, flags);
    buf_put_varint(w, event_ltime);
    buf_put_varint(w, query_ltime);
    buf_put_u64be(w, event_sum);
}
