/*
 * Recording one node's inputs in the simulator, and replaying a recording into fresh engines.
 * The format is described in sim_trace.h.
 */
#include "sim_trace.h"

#include "sim_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* Output hash                                                                                */

uint64_t sim_trace_hash_dgram(uint64_t h, const rumor_datagram *d)
{
    h = sim_hash_u64(h, 1);
    h = sim_hash_mix(h, d->to.bytes, d->to.len);
    h = sim_hash_u64(h, d->len);
    return sim_hash_mix(h, d->data, d->len);
}

uint64_t sim_trace_hash_stream(uint64_t h, const rumor_stream_op *op)
{
    h = sim_hash_u64(h, 2);
    h = sim_hash_u64(h, (uint64_t)op->kind << 32 | (op->id & 0xffffffffu));
    if (op->kind == RUMOR_STREAM_OPEN)
        h = sim_hash_mix(h, op->to.bytes, op->to.len);
    h = sim_hash_u64(h, op->len);
    return op->len ? sim_hash_mix(h, op->data, op->len) : h;
}

uint64_t sim_trace_hash_event(uint64_t h, const rumor_event *ev)
{
    h = sim_hash_u64(h, 3);
    h = sim_hash_u64(h, (uint64_t)ev->type << 32 | ev->member.incarnation);
    h = sim_hash_u64(h, ev->at_ms);
    h = sim_hash_u64(h, (uint64_t)ev->member.state);
    if (ev->member.name)
        h = sim_hash_mix(h, ev->member.name, ev->member.name_len);
    h = sim_hash_mix(h, ev->accuser, strlen(ev->accuser));
    if (ev->key)
        h = sim_hash_mix(h, ev->key, ev->key_len);
    h = sim_hash_u64(h, ev->version);
    if (ev->msg_name)
        h = sim_hash_mix(h, ev->msg_name, ev->msg_name_len);
    if (ev->payload)
        h = sim_hash_mix(h, ev->payload, ev->payload_len);
    return sim_hash_u64(h, ev->ltime);
}

/* ------------------------------------------------------------------------------------------ */
/* Recording (the simulator side)                                                             */

bool sim_rec_on(const rumor_sim *s, uint32_t i)
{
    return s->o.record && i == s->o.record_node;
}

static void rec_put(rumor_sim *s, uint8_t kind, const void *a, size_t alen, const void *b,
                    size_t blen)
{
    FILE *f = s->o.record;
    uint64_t now = s->now;
    uint32_t len = (uint32_t)(alen + blen);
    fputc(kind, f);
    fwrite(&now, 8, 1, f);
    fwrite(&len, 4, 1, f);
    if (alen)
        fwrite(a, 1, alen, f);
    if (blen)
        fwrite(b, 1, blen, f);
    s->rec_records++;
}

void sim_rec_header(rumor_sim *s)
{
    FILE *f = s->o.record;
    uint32_t v[4] = {SIM_TRACE_VERSION, s->o.record_node, (uint32_t)sizeof(rumor_settings),
                     RUMOR_SETTINGS_VERSION};
    const char *note = s->o.record_note ? s->o.record_note : "";
    size_t nl = strlen(note);
    uint16_t l16 = (uint16_t)(nl < 1000 ? nl : 1000);
    fwrite(SIM_TRACE_MAGIC, 1, 8, f);
    fwrite(v, 4, 4, f);
    fwrite(&l16, 2, 1, f);
    fwrite(note, 1, l16, f);
    s->rec_hash = SIM_TRACE_HASH_INIT;
}

/* Appends a u8-length string or address. */
static size_t put_str(uint8_t *p, const void *v, size_t len)
{
    p[0] = (uint8_t)len;
    memcpy(p + 1, v, len);
    return 1 + len;
}

void sim_rec_new(rumor_sim *s, const rumor_settings *st)
{
    rumor_settings raw = *st;
    raw.name = NULL;
    raw.cluster_label = NULL;
    raw.keys = NULL;
    raw.allocator = NULL;
    raw.query_tag_match = NULL;
    raw.query_tag_match_ud = NULL;
    uint8_t tail[2 + 2 * 256 + 1 + RUMOR_KEYRING_MAX * RUMOR_KEY_BYTES];
    size_t n = 0;
    const char *label = st->cluster_label ? st->cluster_label : "";
    n += put_str(tail + n, st->name, strlen(st->name) & 0xff);
    n += put_str(tail + n, label, strlen(label) & 0xff);
    tail[n++] = (uint8_t)st->nkeys;
    for (size_t k = 0; k < st->nkeys && k < RUMOR_KEYRING_MAX; k++) {
        memcpy(tail + n, st->keys[k], RUMOR_KEY_BYTES);
        n += RUMOR_KEY_BYTES;
    }
    rec_put(s, SIM_TR_NEW, &raw, sizeof(raw), tail, n);
}

void sim_rec_simple(rumor_sim *s, uint8_t kind)
{
    rec_put(s, kind, NULL, 0, NULL, 0);
}

void sim_rec_u64(rumor_sim *s, uint8_t kind, uint64_t v)
{
    rec_put(s, kind, &v, 8, NULL, 0);
}

void sim_rec_restore(rumor_sim *s, const rumor_member *m)
{
    uint8_t b[2 + 256 + RUMOR_ADDR_MAX + 4 + 1 + 2 + RUMOR_META_MAX + 1 + 32];
    size_t n = put_str(b, m->name, strlen(m->name) & 0xff);
    n += put_str(b + n, m->addr.bytes, m->addr.len);
    memcpy(b + n, &m->incarnation, 4);
    n += 4;
    b[n++] = (uint8_t)m->state;
    uint16_t ml = (uint16_t)(m->meta ? m->meta_len : 0);
    memcpy(b + n, &ml, 2);
    n += 2;
    if (ml)
        memcpy(b + n, m->meta, ml);
    n += ml;
    b[n++] = m->public_key != NULL;
    if (m->public_key) {
        memcpy(b + n, m->public_key, 32);
        n += 32;
    }
    rec_put(s, SIM_TR_RESTORE, b, n, NULL, 0);
}

void sim_rec_join(rumor_sim *s, const rumor_addr *addrs, size_t n)
{
    uint8_t b[4 + 64 * (1 + RUMOR_ADDR_MAX)];
    uint32_t c = (uint32_t)(n < 64 ? n : 64);
    size_t k = 4;
    memcpy(b, &c, 4);
    for (uint32_t j = 0; j < c; j++)
        k += put_str(b + k, addrs[j].bytes, addrs[j].len);
    rec_put(s, SIM_TR_JOIN, b, k, NULL, 0);
}

void sim_rec_recv(rumor_sim *s, const rumor_addr *from, const uint8_t *data, size_t len)
{
    uint8_t a[1 + RUMOR_ADDR_MAX];
    size_t n = put_str(a, from->bytes, from->len);
    rec_put(s, SIM_TR_RECV, a, n, data, len);
}

void sim_rec_accept(rumor_sim *s, const rumor_addr *from, uint64_t id, int rc)
{
    uint8_t a[1 + RUMOR_ADDR_MAX + 12];
    size_t n = put_str(a, from->bytes, from->len);
    int32_t r = rc;
    memcpy(a + n, &id, 8);
    memcpy(a + n + 8, &r, 4);
    rec_put(s, SIM_TR_ACCEPT, a, n + 12, NULL, 0);
}

void sim_rec_sdata(rumor_sim *s, uint64_t id, const uint8_t *data, size_t len)
{
    rec_put(s, SIM_TR_SDATA, &id, 8, data, len);
}

void sim_rec_keyring(rumor_sim *s, uint8_t op, const uint8_t key[RUMOR_KEY_BYTES])
{
    uint8_t b[1 + RUMOR_KEY_BYTES];
    b[0] = op;
    memcpy(b + 1, key, RUMOR_KEY_BYTES);
    rec_put(s, SIM_TR_KEYRING, b, sizeof(b), NULL, 0);
}

void sim_rec_kv_put(rumor_sim *s, const void *key, size_t klen, const void *val, size_t vlen)
{
    uint8_t b[2 + 65536];
    uint16_t k16 = (uint16_t)klen;
    memcpy(b, &k16, 2);
    memcpy(b + 2, key, k16);
    rec_put(s, SIM_TR_KV_PUT, b, 2u + k16, val, vlen);
}

void sim_rec_event(rumor_sim *s, const char *name, const void *payload, size_t len)
{
    uint8_t b[1 + 255];
    size_t n = put_str(b, name, strlen(name) & 0xff);
    rec_put(s, SIM_TR_EVENT, b, n, payload, len);
}

void sim_rec_out_dgram(rumor_sim *s, const rumor_datagram *d)
{
    s->rec_outputs++;
    s->rec_hash = sim_trace_hash_dgram(s->rec_hash, d);
}

void sim_rec_out_stream(rumor_sim *s, const rumor_stream_op *op)
{
    s->rec_outputs++;
    s->rec_hash = sim_trace_hash_stream(s->rec_hash, op);
}

void sim_rec_out_event(rumor_sim *s, const rumor_event *ev)
{
    s->rec_outputs++;
    s->rec_hash = sim_trace_hash_event(s->rec_hash, ev);
}

void sim_rec_checkpoint(rumor_sim *s)
{
    uint64_t v[2] = {s->rec_outputs, s->rec_hash};
    rec_put(s, SIM_TR_OUTPUT, v, sizeof(v), NULL, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Loading                                                                                    */

void sim_trace_free(sim_trace *t)
{
    free(t->data);
    free(t->v);
    memset(t, 0, sizeof(*t));
}

static int bad(char *err, size_t cap, const char *why, size_t at)
{
    snprintf(err, cap, "%s (at byte %zu)", why, at);
    return RUMOR_ERR_MALFORMED;
}

int sim_trace_parse(sim_trace *t, uint8_t *data, size_t len, char *err, size_t errcap)
{
    memset(t, 0, sizeof(*t));
    t->data = data;
    t->len = len;
    if (len < 26 || memcmp(data, SIM_TRACE_MAGIC, 8) != 0)
        return bad(err, errcap, "not a rumor trace", 0);
    uint32_t v[4];
    memcpy(v, data + 8, 16);
    if (v[0] != SIM_TRACE_VERSION)
        return bad(err, errcap, "unknown trace format version", 8);
    if (v[2] != sizeof(rumor_settings) || v[3] != RUMOR_SETTINGS_VERSION)
        return bad(err, errcap, "written by a build with another rumor_settings layout", 16);
    t->node = v[1];
    uint16_t nl;
    memcpy(&nl, data + 24, 2);
    size_t off = 26;
    if (nl > len - off || nl >= sizeof(t->note))
        return bad(err, errcap, "truncated note", off);
    memcpy(t->note, data + off, nl);
    t->note[nl] = '\0';
    off += nl;
    size_t cap = 0;
    while (off < len) {
        if (len - off < 13)
            return bad(err, errcap, "truncated record header", off);
        sim_trace_rec r;
        r.kind = data[off];
        memcpy(&r.now, data + off + 1, 8);
        memcpy(&r.len, data + off + 9, 4);
        off += 13;
        if (r.kind == 0 || r.kind >= SIM_TR_KIND_COUNT)
            return bad(err, errcap, "unknown record kind", off - 13);
        if (r.len > len - off)
            return bad(err, errcap, "truncated record", off);
        r.p = data + off;
        off += r.len;
        if (t->n == cap) {
            cap = cap ? cap * 2 : 4096;
            sim_trace_rec *nv = realloc(t->v, cap * sizeof(*nv));
            if (!nv)
                return bad(err, errcap, "out of memory", off);
            t->v = nv;
        }
        t->v[t->n++] = r;
        t->counts[r.kind]++;
    }
    return 0;
}

int sim_trace_load(sim_trace *t, const char *path, char *err, size_t errcap)
{
    memset(t, 0, sizeof(*t));
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errcap, "cannot open %s", path);
        return RUMOR_ERR_INVALID;
    }
    size_t cap = 1 << 20, len = 0;
    uint8_t *data = malloc(cap);
    while (data) {
        size_t got = fread(data + len, 1, cap - len, f);
        len += got;
        if (len < cap)
            break;
        uint8_t *nd = realloc(data, cap * 2);
        if (!nd) {
            free(data);
            data = NULL;
            break;
        }
        data = nd;
        cap *= 2;
    }
    bool ioerr = ferror(f);
    fclose(f);
    if (!data || ioerr) {
        free(data);
        snprintf(err, errcap, "cannot read %s", path);
        return RUMOR_ERR_INVALID;
    }
    return sim_trace_parse(t, data, len, err, errcap);
}

/* ------------------------------------------------------------------------------------------ */
/* Replay                                                                                     */

/* A bounded reader over one record's payload. */
typedef struct rd {
    const uint8_t *p;
    size_t len, off;
    bool failed;
} rd;

static const uint8_t *rd_take(rd *r, size_t n)
{
    if (r->failed || n > r->len - r->off) {
        r->failed = true;
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

static uint64_t rd_uint(rd *r, size_t n)
{
    const uint8_t *p = rd_take(r, n);
    uint64_t v = 0;
    if (p)
        memcpy(&v, p, n); /* native little-endian hosts: the low bytes */
    return v;
}

static bool rd_str(rd *r, char *out, size_t cap)
{
    size_t n = (size_t)rd_uint(r, 1);
    const uint8_t *p = rd_take(r, n);
    if (!p || n >= cap)
        return (r->failed = true, false);
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

static bool rd_addr(rd *r, rumor_addr *a)
{
    memset(a, 0, sizeof(*a));
    size_t n = (size_t)rd_uint(r, 1);
    const uint8_t *p = rd_take(r, n);
    if (!p || n > RUMOR_ADDR_MAX)
        return (r->failed = true, false);
    a->len = (uint8_t)n;
    memcpy(a->bytes, p, n);
    return true;
}

typedef struct replay {
    const sim_trace *t;
    bool verify;
    rumor_node *eng;
    uint64_t outputs, hash;
    sim_replay_result *r;
} replay;

static void add_stats(replay *rp)
{
    if (!rp->eng)
        return;
    rumor_stats st;
    rumor_node_stats(rp->eng, &st);
    sim_replay_result *r = rp->r;
    r->messages_in += st.messages_in;
    r->packets_in += st.packets_in;
    r->ident_verified += st.ident_verified;
    r->ident_cached += st.ident_cached;
    r->ident_signed += st.ident_signed;
    for (int k = 0; k < RUMOR_DROP_REASON_COUNT; k++)
        r->dropped += st.dropped[k];
}

static void drain(replay *rp)
{
    rumor_node *n = rp->eng;
    if (!n)
        return;
    rumor_datagram d;
    rumor_stream_op op;
    rumor_event ev;
    if (!rp->verify) {
        while (rumor_node_poll_datagram(n, &d))
            rp->outputs++;
        while (rumor_node_poll_stream(n, &op))
            rp->outputs++;
        while (rumor_node_poll_event(n, &ev))
            rp->outputs++;
        while (rumor_node_poll_datagram(n, &d)) /* released by taking the events */
            rp->outputs++;
        return;
    }
    while (rumor_node_poll_datagram(n, &d)) {
        rp->outputs++;
        rp->hash = sim_trace_hash_dgram(rp->hash, &d);
    }
    while (rumor_node_poll_stream(n, &op)) {
        rp->outputs++;
        rp->hash = sim_trace_hash_stream(rp->hash, &op);
    }
    while (rumor_node_poll_event(n, &ev)) {
        rp->outputs++;
        rp->hash = sim_trace_hash_event(rp->hash, &ev);
    }
    /* What taking the events released (key operation answers), as the simulator sends it. */
    while (rumor_node_poll_datagram(n, &d)) {
        rp->outputs++;
        rp->hash = sim_trace_hash_dgram(rp->hash, &d);
    }
}

static int replay_new(replay *rp, rd *in, uint64_t now)
{
    rumor_settings st;
    const uint8_t *raw = rd_take(in, sizeof(st));
    char name[256], label[256];
    if (!raw || !rd_str(in, name, sizeof(name)) || !rd_str(in, label, sizeof(label)))
        return RUMOR_ERR_MALFORMED;
    memcpy(&st, raw, sizeof(st));
    size_t nkeys = (size_t)rd_uint(in, 1);
    const uint8_t *keys = rd_take(in, nkeys * RUMOR_KEY_BYTES);
    if (!keys || nkeys > RUMOR_KEYRING_MAX)
        return RUMOR_ERR_MALFORMED;
    st.name = name;
    st.cluster_label = label[0] ? label : NULL;
    st.keys = nkeys ? (const uint8_t(*)[RUMOR_KEY_BYTES])keys : NULL;
    st.nkeys = nkeys;
    st.allocator = NULL;
    st.query_tag_match = NULL;
    st.query_tag_match_ud = NULL;
    add_stats(rp);
    rumor_node_del(rp->eng);
    rp->eng = NULL;
    int rc = rumor_node_new(&rp->eng, &st, now);
    if (rc != 0)
        return rc;
    rp->r->lives++;
    rp->r->sealed = nkeys > 0;
    rp->r->signed_ = st.identity;
    return 0;
}

static int replay_restore(replay *rp, rd *in, uint64_t now)
{
    char name[256];
    rumor_member m;
    memset(&m, 0, sizeof(m));
    rd_str(in, name, sizeof(name));
    rd_addr(in, &m.addr);
    m.incarnation = (uint32_t)rd_uint(in, 4);
    m.state = (rumor_member_state)rd_uint(in, 1);
    size_t ml = (size_t)rd_uint(in, 2);
    m.meta = ml ? rd_take(in, ml) : NULL;
    m.meta_len = ml;
    if (rd_uint(in, 1))
        m.public_key = rd_take(in, 32);
    if (in->failed)
        return RUMOR_ERR_MALFORMED;
    m.name = name;
    m.name_len = strlen(name);
    (void)rumor_node_restore(rp->eng, &m, now);
    return 0;
}

static int replay_join(replay *rp, rd *in, uint64_t now)
{
    rumor_addr a[64];
    uint32_t c = (uint32_t)rd_uint(in, 4);
    if (c > 64)
        return RUMOR_ERR_MALFORMED;
    for (uint32_t k = 0; k < c; k++)
        rd_addr(in, &a[k]);
    if (in->failed)
        return RUMOR_ERR_MALFORMED;
    (void)rumor_node_join(rp->eng, a, c, now);
    return 0;
}

static int replay_keyring(replay *rp, rd *in)
{
    uint8_t op = (uint8_t)rd_uint(in, 1);
    const uint8_t *k = rd_take(in, RUMOR_KEY_BYTES);
    if (!k)
        return RUMOR_ERR_MALFORMED;
    if (op == RUMOR_SIM_FAULT_KEY_INSTALL)
        (void)rumor_node_keyring_install(rp->eng, k);
    else if (op == RUMOR_SIM_FAULT_KEY_USE)
        (void)rumor_node_keyring_use(rp->eng, k);
    else
        (void)rumor_node_keyring_remove(rp->eng, k);
    return 0;
}

/* Traffic records: what a running node's host feeds it. Returns 0 or MALFORMED. */
static int replay_traffic(replay *rp, const sim_trace_rec *rec, rd *in, size_t idx)
{
    sim_replay_result *r = rp->r;
    rumor_addr a;
    uint64_t id;
    switch (rec->kind) {
    case SIM_TR_TICK:
        r->ticks++;
        rumor_node_tick(rp->eng, rec->now);
        return 0;
    case SIM_TR_RECV:
        if (!rd_addr(in, &a))
            return RUMOR_ERR_MALFORMED;
        r->packets++;
        r->packet_bytes += in->len - in->off;
        (void)rumor_node_receive(rp->eng, &a, in->p + in->off, in->len - in->off, rec->now);
        return 0;
    case SIM_TR_ACCEPT: {
        rd_addr(in, &a);
        uint64_t want = rd_uint(in, 8);
        int32_t want_rc = (int32_t)rd_uint(in, 4);
        if (in->failed)
            return RUMOR_ERR_MALFORMED;
        int rc = rumor_node_stream_accept(rp->eng, &a, &id, rec->now);
        if (rp->verify && (rc != want_rc || (rc == 0 && id != want)) && r->diverged_at == SIZE_MAX)
            r->diverged_at = idx;
        return 0;
    }
    case SIM_TR_SDATA:
        id = rd_uint(in, 8);
        if (in->failed)
            return RUMOR_ERR_MALFORMED;
        r->stream_chunks++;
        r->stream_bytes += in->len - in->off;
        (void)rumor_node_stream_data(rp->eng, id, in->p + in->off, in->len - in->off, rec->now);
        return 0;
    case SIM_TR_SCLOSED:
        id = rd_uint(in, 8);
        if (in->failed)
            return RUMOR_ERR_MALFORMED;
        rumor_node_stream_closed(rp->eng, id, rec->now);
        return 0;
    case SIM_TR_JOIN:
        return replay_join(rp, in, rec->now);
    case SIM_TR_LEAVE:
        (void)rumor_node_leave(rp->eng, rec->now);
        return 0;
    case SIM_TR_KEYRING:
        return replay_keyring(rp, in);
    case SIM_TR_KV_PUT: {
        size_t kl = (size_t)rd_uint(in, 2);
        const uint8_t *k = rd_take(in, kl);
        if (!k)
            return RUMOR_ERR_MALFORMED;
        (void)rumor_node_kv_put(rp->eng, k, kl, in->p + in->off, in->len - in->off, rec->now);
        return 0;
    }
    case SIM_TR_EVENT: {
        char name[256];
        if (!rd_str(in, name, sizeof(name)))
            return RUMOR_ERR_MALFORMED;
        (void)rumor_node_event(rp->eng, name, in->p + in->off, in->len - in->off, rec->now);
        return 0;
    }
    case SIM_TR_OUTPUT: {
        drain(rp);
        uint64_t want_n = rd_uint(in, 8), want_h = rd_uint(in, 8);
        if (in->failed)
            return RUMOR_ERR_MALFORMED;
        if (rp->verify) {
            r->checkpoints++;
            if ((want_n != rp->outputs || want_h != rp->hash) && r->diverged_at == SIZE_MAX)
                r->diverged_at = idx;
        }
        return 0;
    }
    default:
        return RUMOR_ERR_MALFORMED;
    }
}

static bool is_setup(uint8_t kind)
{
    return kind == SIM_TR_NEW || kind == SIM_TR_DEL || kind == SIM_TR_RESERVE ||
           kind == SIM_TR_RESTORE;
}

int sim_trace_replay(const sim_trace *t, bool verify, double (*clock)(void), sim_replay_result *r)
{
    memset(r, 0, sizeof(*r));
    r->diverged_at = SIZE_MAX;
    replay rp = {.t = t, .verify = verify, .hash = SIM_TRACE_HASH_INIT, .r = r};
    bool timing = false;
    double since = 0;
    int rc = 0;
    for (size_t k = 0; k < t->n && rc == 0; k++) {
        const sim_trace_rec *rec = &t->v[k];
        rd in = {.p = rec->p, .len = rec->len};
        bool setup = is_setup(rec->kind);
        if (clock && timing == setup) {
            double c = clock();
            if (timing)
                r->traffic_s += c - since;
            since = c;
            timing = !setup;
        }
        if (rec->kind != SIM_TR_NEW && !rp.eng) {
            rc = RUMOR_ERR_MALFORMED; /* an input before any engine exists */
        } else if (rec->kind == SIM_TR_NEW) {
            rc = replay_new(&rp, &in, rec->now);
        } else if (rec->kind == SIM_TR_DEL) {
            add_stats(&rp);
            rumor_node_del(rp.eng);
            rp.eng = NULL;
        } else if (rec->kind == SIM_TR_RESERVE) {
            uint64_t c = rd_uint(&in, 8);
            rc = in.failed ? RUMOR_ERR_MALFORMED : 0;
            if (rc == 0)
                (void)rumor_node_reserve(rp.eng, (size_t)c);
        } else if (rec->kind == SIM_TR_RESTORE) {
            rc = replay_restore(&rp, &in, rec->now);
        } else {
            rc = replay_traffic(&rp, rec, &in, k);
        }
        if (rc != 0)
            snprintf(r->error, sizeof(r->error), "record %zu (kind %u, t=%llu ms): %s", k,
                     rec->kind, (unsigned long long)rec->now, rumor_strerror(rc));
    }
    if (clock && timing)
        r->traffic_s += clock() - since;
    add_stats(&rp);
    rumor_node_del(rp.eng);
    r->outputs = rp.outputs;
    r->hash = rp.hash;
    return rc == 0 ? 0 : RUMOR_ERR_MALFORMED;
}

/* ------------------------------------------------------------------------------------------ */
/* Host calls the scenarios make, recorded on the way                                          */

int sim_node_kv_put(rumor_sim *s, uint32_t i, const void *key, size_t klen, const void *val,
                    size_t vlen)
{
    if (i >= s->n || !s->nodes[i].eng)
        return RUMOR_ERR_STATE;
    if (sim_rec_on(s, i))
        sim_rec_kv_put(s, key, klen, val, vlen);
    return rumor_node_kv_put(s->nodes[i].eng, key, klen, val, vlen, s->now);
}

int sim_node_event(rumor_sim *s, uint32_t i, const char *name, const void *payload, size_t len)
{
    if (i >= s->n || !s->nodes[i].eng)
        return RUMOR_ERR_STATE;
    if (sim_rec_on(s, i))
        sim_rec_event(s, name, payload, len);
    return rumor_node_event(s->nodes[i].eng, name, payload, len, s->now);
}
