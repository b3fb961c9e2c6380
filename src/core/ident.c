/* Per-node identity: see ident.h for the model and docs/protocol.md section 12 for the bytes. */
#include "core/ident.h"

#include <sodium.h>
#include <string.h>

#include "core/node.h"

/* The longest statement is the kv-entry one: 20 + 130 + 258 + 8 + 1 + 8 + 32 = 457 bytes. */
#define STMT_MAX IDENT_STMT_MAX
#define NONE     wire_str_of(NULL, 0)

/* ---- statements: what each signature covers ---- */

/* Every statement starts with a context string and its NUL, so a signature over one kind of
 * claim can never be read as another kind. */
static void stmt_begin(buf_writer *w, uint8_t *buf, const char *ctx)
{
    buf_writer_init_fixed(w, buf, STMT_MAX);
    buf_put_bytes(w, ctx, strlen(ctx) + 1);
}

static void put_hash(buf_writer *w, const uint8_t *p, size_t len)
{
    static const uint8_t empty[1];
    uint8_t h[32];
    crypto_generichash(h, sizeof(h), len ? p : empty, len, NULL, 0);
    buf_put_bytes(w, h, sizeof(h));
}

size_t ident_stmt_alive(uint8_t *buf, wire_str name, uint32_t inc, const rumor_addr *addr,
                        wire_str meta)
{
    buf_writer w;
    stmt_begin(&w, buf, "rumor-id/1 alive");
    buf_put_lbytes(&w, name.p, name.len);
    buf_put_u32be(&w, inc);
    buf_put_u8(&w, addr->len);
    buf_put_bytes(&w, addr->bytes, addr->len);
    put_hash(&w, meta.p, meta.len);
    return w.len;
}

size_t ident_stmt_left(uint8_t *buf, wire_str name, uint32_t inc)
{
    buf_writer w;
    stmt_begin(&w, buf, "rumor-id/1 left");
    buf_put_lbytes(&w, name.p, name.len);
    buf_put_u32be(&w, inc);
    return w.len;
}

size_t ident_stmt_accuse(uint8_t *buf, uint8_t type, uint32_t inc, wire_str name, wire_str accuser)
{
    buf_writer w;
    stmt_begin(&w, buf, "rumor-id/1 accuse");
    buf_put_u8(&w, type);
    buf_put_lbytes(&w, name.p, name.len);
    buf_put_u32be(&w, inc);
    buf_put_lbytes(&w, accuser.p, accuser.len);
    return w.len;
}

size_t ident_stmt_cert(uint8_t *buf, wire_str name, const uint8_t *pk, uint64_t expires)
{
    buf_writer w;
    stmt_begin(&w, buf, "rumor-id/1 cert");
    buf_put_lbytes(&w, name.p, name.len);
    buf_put_bytes(&w, pk, WIRE_KEY_BYTES);
    buf_put_u64be(&w, expires);
    return w.len;
}

size_t ident_stmt_kv_head(uint8_t *buf, wire_str origin, uint64_t max, uint64_t gc)
{
    buf_writer w;
    stmt_begin(&w, buf, "rumor-id/1 kv-head");
    buf_put_lbytes(&w, origin.p, origin.len);
    buf_put_u64be(&w, max);
    buf_put_u64be(&w, gc);
    return w.len;
}

size_t ident_stmt_kv_sum(uint8_t *buf, wire_str origin, uint64_t max, uint64_t gc,
                         const uint8_t *sum)
{
    buf_writer w;
    stmt_begin(&w, buf, "rumor-id/1 kv-sum");
    buf_put_lbytes(&w, origin.p, origin.len);
    buf_put_u64be(&w, max);
    buf_put_u64be(&w, gc);
    buf_put_bytes(&w, sum, WIRE_KV_SUM_LEN);
    return w.len;
}

size_t ident_stmt_kv_entry(uint8_t *buf, wire_str origin, const wire_kv_entry *e)
{
    buf_writer w;
    stmt_begin(&w, buf, "rumor-id/1 kv-entry");
    buf_put_lbytes(&w, origin.p, origin.len);
    buf_put_lbytes(&w, e->key.p, e->key.len);
    buf_put_u64be(&w, e->version);
    buf_put_u8(&w, e->flags);
    buf_put_u64be(&w, e->stamp);
    /* Values are hashed, not copied: a statement stays small whatever the value's size. */
    put_hash(&w, e->value.p, e->value.len);
    return w.len;
}

size_t ident_stmt_event(uint8_t *buf, wire_str origin, uint64_t ltime, wire_str name,
                        wire_str payload)
{
    buf_writer w;
    stmt_begin(&w, buf, "rumor-id/1 event");
    buf_put_lbytes(&w, origin.p, origin.len);
    buf_put_u64be(&w, ltime);
    buf_put_lbytes(&w, name.p, name.len);
    put_hash(&w, payload.p, payload.len);
    return w.len;
}

size_t ident_stmt_query(uint8_t *buf, wire_str origin, uint64_t ltime, uint32_t id, wire_str addr,
                        uint8_t flags, uint32_t timeout_ms, wire_str rest)
{
    buf_writer w;
    stmt_begin(&w, buf, "rumor-id/1 query");
    buf_put_lbytes(&w, origin.p, origin.len);
    buf_put_u64be(&w, ltime);
    buf_put_u32be(&w, id);
    buf_put_u8(&w, (uint8_t)addr.len);
    buf_put_bytes(&w, addr.p, addr.len);
    buf_put_u8(&w, flags);
    buf_put_u32be(&w, timeout_ms);
    /* Filters, name and payload, as encoded. */
    put_hash(&w, rest.p, rest.len);
    return w.len;
}

size_t ident_stmt_query_resp(uint8_t *buf, wire_str from, wire_str asker, uint64_t ltime,
                             uint32_t id, uint8_t flags, wire_str payload)
{
    buf_writer w;
    stmt_begin(&w, buf, "rumor-id/1 query-resp");
    buf_put_lbytes(&w, from.p, from.len);
    buf_put_lbytes(&w, asker.p, asker.len);
    buf_put_u64be(&w, ltime);
    buf_put_u32be(&w, id);
    buf_put_u8(&w, flags);
    put_hash(&w, payload.p, payload.len);
    return w.len;
}

/* ---- signing and verifying ---- */

static void sign(rumor_node *n, const uint8_t *stmt, size_t len, uint8_t *sig)
{
    crypto_sign_detached(sig, NULL, stmt, len, n->ident->sk);
    n->st.ident_signed++;
}

static bool verify(rumor_node *n, const uint8_t *pk, const uint8_t *stmt, size_t len,
                   const uint8_t *sig)
{
    uint8_t key[16];
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, sizeof(key));
    crypto_generichash_update(&h, pk, WIRE_KEY_BYTES);
    crypto_generichash_update(&h, sig, WIRE_SIG_BYTES);
    crypto_generichash_update(&h, stmt, len);
    crypto_generichash_final(&h, key, sizeof(key));
    ident_cache_slot *slot = &n->ident->cache[key[0] % IDENT_CACHE_SLOTS];
    if (slot->state && memcmp(slot->key, key, sizeof(key)) == 0) {
        n->st.ident_cached++;
        return slot->state == 1;
    }
    n->st.ident_verified++;
    bool ok = crypto_sign_verify_detached(sig, stmt, len, pk) == 0;
    memcpy(slot->key, key, sizeof(key));
    slot->state = ok ? 1 : 2;
    return ok;
}

static void copy_name(char *dst, wire_str s)
{
    size_t len = s.len <= RUMOR_NAME_MAX ? s.len : RUMOR_NAME_MAX;
    if (len)
        memcpy(dst, s.p, len);
    dst[len] = '\0';
}

bool ident_refuse(rumor_node *n, rumor_ident_refusal why, wire_str name, wire_str by)
{
    n->st.ident_refused[why]++;
    node_drop(n, RUMOR_DROP_IDENTITY);
    ident_state *id = n->ident;
    if (id) { /* for the host's logs: who was refused, and where it came from */
        rumor_ident_refused_info *l = &id->last[why];
        l->reason = why;
        copy_name(l->name, name);
        copy_name(l->by, by);
        memset(&l->from, 0, sizeof(l->from));
        if (n->from)
            l->from = *n->from;
        l->at_ms = n->now;
    }
    return false;
}

int rumor_node_ident_last_refused(const rumor_node *n, rumor_ident_refusal reason,
                                  rumor_ident_refused_info *out)
{
    if (!n || !out || (unsigned)reason >= RUMOR_IDENT_REFUSAL_COUNT)
        return RUMOR_ERR_INVALID;
    if (!n->ident || !n->st.ident_refused[reason])
        return RUMOR_ERR_NOT_FOUND;
    *out = n->ident->last[reason];
    return RUMOR_OK;
}

/* ---- setup ---- */

int ident_init(rumor_node *n)
{
    rumor_settings *s = &n->s;
    if (!s->identity) {
        sodium_memzero(s->identity_seed, sizeof(s->identity_seed));
        return RUMOR_OK;
    }
    /* The host calls sodium_init() (it reads OS entropy, which the engine never does); Ed25519
     * signing is deterministic, so the engine never draws from libsodium's generator. */
    ident_state *id = rcalloc(&n->alloc, 1, sizeof(*id));
    if (!id)
        return RUMOR_ERR_NOMEM;
    crypto_sign_seed_keypair(id->pk, id->sk, s->identity_seed);
    sodium_memzero(s->identity_seed, sizeof(s->identity_seed));
    id->ca = s->identity_ca;
    memcpy(id->ca_pk, s->identity_ca_key, sizeof(id->ca_pk));
    id->has_cert = s->identity_has_cert;
    memcpy(id->cert, s->identity_cert, sizeof(id->cert));
    id->cert_expires_ms = s->identity_cert_expires_ms;
    n->ident = id;
    return RUMOR_OK;
}

void ident_free(rumor_node *n)
{
    ident_state *id = n->ident;
    if (!id)
        return;
    rfree(&n->alloc, id->recs);
    sodium_memzero(id, sizeof(*id));
    rfree(&n->alloc, id);
    n->ident = NULL;
}

/* The record of `m`, grown on demand; NULL when identities are off or memory ran out. Records
 * sit beside the member table, indexed by member id (a member record is one cache line, with no
 * room for identity data). */
static ident_rec *rec_of(rumor_node *n, const member *m)
{
    ident_state *id = n->ident;
    uint32_t mid = id ? members_id(&n->mem, m) : 0;
    if (!mid)
        return NULL;
    size_t i = mid - 1u;
    if (i >= id->nrecs) {
        size_t cap = id->nrecs, old = id->nrecs;
        void *p = id->recs;
        if (!rgrow(&n->alloc, &p, &cap, i + 1, sizeof(ident_rec)))
            return NULL;
        id->recs = p;
        memset(id->recs + old, 0, (cap - old) * sizeof(ident_rec));
        id->nrecs = cap;
    }
    return &id->recs[i];
}

static ident_rec *rec_at(const rumor_node *n, const member *m)
{
    const ident_state *id = n->ident;
    uint32_t mid = id ? members_id(&n->mem, m) : 0;
    if (!mid || mid - 1u >= id->nrecs)
        return NULL;
    return &id->recs[mid - 1u];
}

static const ident_rec *rec_peek(const rumor_node *n, const member *m)
{
    return rec_at(n, m);
}

void ident_forget(rumor_node *n, const member *m)
{
    ident_rec *r = rec_at(n, m);
    if (r)
        memset(r, 0, sizeof(*r));
}

const uint8_t *ident_pk(const rumor_node *n, const member *m)
{
    if (!n->ident)
        return NULL;
    if (m->is_self)
        return n->ident->pk;
    const ident_rec *r = rec_peek(n, m);
    return r && (r->flags & IDENT_KEY) ? r->pk : NULL;
}

bool ident_unverified(const rumor_node *n, const member *m)
{
    if (!n->ident || m->is_self)
        return false;
    const ident_rec *r = rec_peek(n, m);
    return !r || !(r->flags & IDENT_SIG);
}

void ident_pin(rumor_node *n, const member *m, const uint8_t *pk)
{
    ident_rec *r = rec_of(n, m);
    if (!r || !pk)
        return;
    memcpy(r->pk, pk, WIRE_KEY_BYTES);
    r->flags |= IDENT_KEY;
}

/* ---- membership claims ---- */

static int64_t wall_ms(const rumor_node *n)
{
    return (int64_t)n->now + n->s.wallclock_offset_ms;
}

/* The certificate of an identity block, when the cluster has an authority. */
static bool cert_ok(rumor_node *n, wire_str name, const wire_ident *id)
{
    if (!id->has_cert)
        return ident_refuse(n, RUMOR_IDENT_NO_CERT, name, NONE);
    if (id->cert_expires_ms && (int64_t)id->cert_expires_ms <= wall_ms(n))
        return ident_refuse(n, RUMOR_IDENT_CERT_EXPIRED, name, NONE);
    uint8_t stmt[STMT_MAX];
    size_t len = ident_stmt_cert(stmt, name, id->pk, id->cert_expires_ms);
    if (!verify(n, n->ident->ca_pk, stmt, len, id->cert))
        return ident_refuse(n, RUMOR_IDENT_BAD_CERT, name, NONE);
    return true;
}

bool ident_alive_ok(rumor_node *n, const member *m, uint32_t inc, wire_str name,
                    const rumor_addr *addr, wire_str meta, const wire_ident *id)
{
    ident_state *st = n->ident;
    if (!st || !id)
        return true;
    if (!id->present)
        return ident_refuse(n, RUMOR_IDENT_UNSIGNED, name, NONE);
    const ident_rec *r = m ? rec_peek(n, m) : NULL;
    if (m && m->is_self) {
        /* Only our own key speaks for our name: anything else is an impostor, whatever its
         * certificate says, and must not make us refute. */
        if (memcmp(id->pk, st->pk, WIRE_KEY_BYTES) != 0)
            return ident_refuse(n, RUMOR_IDENT_KEY_MISMATCH, name, NONE);
    } else if (r && (r->flags & IDENT_KEY) && memcmp(id->pk, r->pk, WIRE_KEY_BYTES) != 0 &&
               !st->ca) {
        /* Trust on first use: the name stays bound to its first key while it is known. With
         * an authority the certificate below is the binding, so a certified new key (the
         * authority re-keyed the node) replaces the old one. */
        return ident_refuse(n, RUMOR_IDENT_KEY_MISMATCH, name, NONE);
    }
    if (st->ca && !cert_ok(n, name, id))
        return false;
    uint8_t stmt[STMT_MAX];
    size_t len = ident_stmt_alive(stmt, name, inc, addr, meta);
    if (!verify(n, id->pk, stmt, len, id->sig))
        return ident_refuse(n, RUMOR_IDENT_BAD_ALIVE, name, NONE);
    return true;
}

void ident_alive_keep(rumor_node *n, const member *m, const wire_ident *id)
{
    if (!n->ident || !id || !id->present || m->is_self)
        return;
    ident_rec *r = rec_of(n, m);
    if (!r)
        return;
    memcpy(r->pk, id->pk, WIRE_KEY_BYTES);
    memcpy(r->sig, id->sig, WIRE_SIG_BYTES);
    r->flags = IDENT_KEY | IDENT_SIG;
    if (id->has_cert) {
        memcpy(r->cert, id->cert, WIRE_SIG_BYTES);
        r->cert_expires_ms = id->cert_expires_ms;
        r->flags |= IDENT_CERT;
    }
    r->inc = m->incarnation;
}

bool ident_left_ok(rumor_node *n, const member *m, uint32_t inc, const wire_ident *id)
{
    if (!n->ident || !id)
        return true;
    wire_str name = wire_str_of(member_name(m), m->name_len);
    if (!id->present)
        return ident_refuse(n, RUMOR_IDENT_UNSIGNED, name, NONE);
    const uint8_t *pk = ident_pk(n, m);
    if (!pk)
        return ident_refuse(n, RUMOR_IDENT_UNKNOWN_KEY, name, name);
    uint8_t stmt[STMT_MAX];
    size_t len = ident_stmt_left(stmt, name, inc);
    if (!verify(n, pk, stmt, len, id->sig))
        return ident_refuse(n, RUMOR_IDENT_BAD_LEFT, name, NONE);
    return true;
}

void ident_left_keep(rumor_node *n, const member *m, const wire_ident *id)
{
    if (!n->ident || !id || !id->present || m->is_self)
        return;
    ident_rec *r = rec_of(n, m);
    if (!r)
        return;
    memcpy(r->sig, id->sig, WIRE_SIG_BYTES);
    r->flags |= IDENT_SIG | IDENT_LEFT;
    r->inc = m->incarnation;
}

ident_verdict ident_accuse_check(rumor_node *n, uint8_t type, uint32_t inc, wire_str name,
                                 wire_str accuser, const wire_ident *id)
{
    if (!n->ident || !id)
        return IDENT_OK;
    if (!id->present) {
        ident_refuse(n, RUMOR_IDENT_UNSIGNED, name, accuser);
        return IDENT_REFUSED;
    }
    const member *a = members_find(&n->mem, (const char *)accuser.p, accuser.len);
    const uint8_t *pk = a ? ident_pk(n, a) : NULL;
    if (!pk) {
        ident_refuse(n, RUMOR_IDENT_UNKNOWN_KEY, name, accuser);
        return IDENT_UNKNOWN_KEY;
    }
    uint8_t stmt[STMT_MAX];
    size_t len = ident_stmt_accuse(stmt, type, inc, name, accuser);
    if (!verify(n, pk, stmt, len, id->sig)) {
        ident_refuse(n, RUMOR_IDENT_BAD_ACCUSATION, name, accuser);
        return IDENT_REFUSED;
    }
    return IDENT_OK;
}

void ident_accuse_sign(rumor_node *n, uint8_t type, uint32_t inc, wire_str name, uint8_t *sig)
{
    uint8_t stmt[STMT_MAX];
    size_t len = ident_stmt_accuse(stmt, type, inc, name, node_self_name(n));
    sign(n, stmt, len, sig);
}

/* Our own record: signed again whenever the claim it speaks for changed. */
static ident_rec *self_claim(rumor_node *n)
{
    const member *self = n->self;
    ident_rec *r = rec_of(n, self);
    size_t meta_len;
    const uint8_t *meta = members_meta(&n->mem, self, &meta_len);
    if (!r)
        return NULL;
    bool left = self->state == RUMOR_MEMBER_LEFT;
    if ((r->flags & IDENT_SIG) && r->inc == self->incarnation && !!(r->flags & IDENT_LEFT) == left)
        return r;
    uint8_t stmt[STMT_MAX];
    size_t len = left ? ident_stmt_left(stmt, node_self_name(n), self->incarnation)
                      : ident_stmt_alive(stmt, node_self_name(n), self->incarnation, &self->addr,
                                         wire_str_of(meta, meta_len));
    sign(n, stmt, len, r->sig);
    memcpy(r->pk, n->ident->pk, WIRE_KEY_BYTES);
    r->flags = IDENT_KEY | IDENT_SIG | (left ? IDENT_LEFT : 0);
    if (n->ident->has_cert) {
        memcpy(r->cert, n->ident->cert, WIRE_SIG_BYTES);
        r->cert_expires_ms = n->ident->cert_expires_ms;
        r->flags |= IDENT_CERT;
    }
    r->inc = self->incarnation;
    return r;
}

bool ident_claim(rumor_node *n, const member *m, wire_ident *out)
{
    memset(out, 0, sizeof(*out));
    if (!n->ident)
        return false;
    const ident_rec *r = m->is_self ? self_claim(n) : rec_peek(n, m);
    if (!r || !(r->flags & IDENT_SIG))
        return false;
    out->present = true;
    out->pk = r->pk;
    out->sig = r->sig;
    if (r->flags & IDENT_CERT) {
        out->has_cert = true;
        out->cert = r->cert;
        out->cert_expires_ms = r->cert_expires_ms;
    }
    return true;
}

/* ---- key-value state ---- */

const ident_head *ident_kv_head(const kv_origin *o)
{
    return o->ident;
}

void ident_kv_sign_entry(rumor_node *n, const wire_kv_entry *e, uint8_t *sig)
{
    uint8_t stmt[STMT_MAX];
    size_t len = ident_stmt_kv_entry(stmt, node_self_name(n), e);
    sign(n, stmt, len, sig);
}

/* Whether the versions of `o` up to its max_version are proven by its newest entry's own
 * signature: the entry at max_version is held (not collected, not adopted from a COMPLETE). */
static bool max_in_entries(const kv_origin *o)
{
    return o->max_version == 0 || (o->tail && o->tail->version == o->max_version);
}

void ident_kv_sign_head(rumor_node *n)
{
    kv_origin *o = n->kv_self;
    if (!n->ident || !o)
        return;
    ident_head *h = o->ident;
    /* A head is signed only when it says something the entries cannot: a horizon, or a
     * max_version whose entry is gone (collected) or was never ours to sign again (adopted
     * after a restart). A write proves itself: its signed entry shows the origin reached its
     * version, so a write costs one signature here and one verification at each receiver. */
    uint64_t hmax = h ? h->max : 0, hgc = h ? h->gc : 0;
    if (o->gc_version == hgc && (o->max_version <= hmax || max_in_entries(o)))
        return;
    if (!h && !(h = o->ident = rcalloc(&n->alloc, 1, sizeof(*h))))
        return;
    h->max = o->max_version;
    h->gc = o->gc_version;
    uint8_t stmt[STMT_MAX];
    size_t len = ident_stmt_kv_head(stmt, node_self_name(n), h->max, h->gc);
    sign(n, stmt, len, h->sig);
}

void ident_kv_sum_bytes(const kv_origin *o, uint8_t *out)
{
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)(o->ksum[0] >> (8 * i));
        out[8 + i] = (uint8_t)(o->ksum[1] >> (8 * i));
    }
}

/* The head record of `o`, made when there is none yet (all zeros: a head that claims
 * nothing, as when none is held). */
static ident_head *head_rec(rumor_node *n, kv_origin *o)
{
    if (!o->ident)
        o->ident = rcalloc(&n->alloc, 1, sizeof(ident_head));
    return o->ident;
}

bool ident_kv_at_sum(const kv_origin *o)
{
    const ident_head *h = o->ident;
    return h && h->has_sum && h->smax == o->max_version && h->sgc == o->gc_version;
}

bool ident_kv_sum_holds(const kv_origin *o)
{
    uint8_t sum[WIRE_KV_SUM_LEN];
    if (!ident_kv_at_sum(o))
        return false;
    ident_kv_sum_bytes(o, sum);
    return memcmp(sum, o->ident->sum, sizeof(sum)) == 0;
}

bool ident_kv_sign_sum(rumor_node *n)
{
    kv_origin *o = n->kv_self;
    if (!n->ident || !o || o->max_version == 0 || ident_kv_sum_holds(o))
        return false;
    ident_head *h = head_rec(n, o);
    if (!h)
        return false;
    uint8_t sum[WIRE_KV_SUM_LEN], stmt[STMT_MAX];
    ident_kv_sum_bytes(o, sum);
    size_t len = ident_stmt_kv_sum(stmt, node_self_name(n), o->max_version, o->gc_version, sum);
    sign(n, stmt, len, h->ssig);
    h->has_sum = true;
    h->smax = o->max_version;
    h->sgc = o->gc_version;
    memcpy(h->sum, sum, sizeof(sum));
    return true;
}

bool ident_kv_sum_ok(rumor_node *n, kv_origin *o, const uint8_t *pk, const wire_kv_sum *s)
{
    const ident_head *h = o->ident;
    /* An origin's sums only move forward (its max and horizon only grow): an older or equal
     * one says nothing new and is not checked. */
    if (h && h->has_sum && (s->max < h->smax || (s->max == h->smax && s->gc <= h->sgc)))
        return true;
    uint8_t stmt[STMT_MAX];
    wire_str origin = wire_str_of(o->name, o->name_len);
    size_t len = ident_stmt_kv_sum(stmt, origin, s->max, s->gc, s->sum);
    if (!verify(n, pk, stmt, len, s->sig))
        return ident_refuse(n, RUMOR_IDENT_BAD_KV, origin, NONE);
    ident_head *w = head_rec(n, o);
    if (!w)
        return true;
    w->has_sum = true;
    w->smax = s->max;
    w->sgc = s->gc;
    memcpy(w->sum, s->sum, WIRE_KV_SUM_LEN);
    memcpy(w->ssig, s->sig, WIRE_SIG_BYTES);
    w->differs_since = 0;
    return true;
}

/* The verified key of the member named `origin`, or NULL. */
static const uint8_t *origin_pk(rumor_node *n, wire_str origin)
{
    const member *m = members_find(&n->mem, (const char *)origin.p, origin.len);
    return m ? ident_pk(n, m) : NULL;
}

bool ident_kv_key_known(rumor_node *n, wire_str origin)
{
    return origin_pk(n, origin) != NULL;
}

const uint8_t *ident_kv_origin_key(rumor_node *n, wire_str origin)
{
    const uint8_t *pk = origin_pk(n, origin);
    if (!pk)
        ident_refuse(n, RUMOR_IDENT_UNKNOWN_KEY, origin, origin);
    return pk;
}

bool ident_kv_head_ok(rumor_node *n, kv_origin *o, const uint8_t *pk, uint64_t max, uint64_t gc,
                      const uint8_t *sig, uint64_t entries_max)
{
    ident_head *h = o->ident;
    uint64_t hmax = h ? h->max : 0, hgc = h ? h->gc : 0;
    uint64_t known = hmax > o->max_version ? hmax : o->max_version;
    if (entries_max > known)
        known = entries_max;
    /* A head that claims nothing beyond what is proven already needs no check, whatever the
     * bytes of sig: its horizon is none or the one verified, and its max is at most the
     * verified head's, the versions we hold or the delta's newest entry (which is verified
     * before anything uses that max: COMPLETE needs every entry applied). Checking staleness
     * first also spares the verification of older heads (same horizon) relays still carry. */
    if ((gc == 0 || gc == hgc) && max <= known)
        return true;
    uint8_t stmt[STMT_MAX];
    wire_str origin = wire_str_of(o->name, o->name_len);
    size_t len = ident_stmt_kv_head(stmt, origin, max, gc);
    if (!verify(n, pk, stmt, len, sig))
        return ident_refuse(n, RUMOR_IDENT_BAD_KV, origin, NONE);
    /* An owner's heads only grow in both fields; keep the newest. */
    if (h && (max < h->max || (max == h->max && gc < h->gc)))
        return true;
    if (!h && !(h = o->ident = rcalloc(&n->alloc, 1, sizeof(*h))))
        return false;
    h->max = max;
    h->gc = gc;
    memcpy(h->sig, sig, WIRE_SIG_BYTES);
    return true;
}

bool ident_kv_entry_ok(rumor_node *n, const uint8_t *pk, wire_str origin, const wire_kv_entry *e,
                       const uint8_t *sig)
{
    uint8_t stmt[STMT_MAX];
    size_t len = ident_stmt_kv_entry(stmt, origin, e);
    if (!verify(n, pk, stmt, len, sig))
        return ident_refuse(n, RUMOR_IDENT_BAD_KV, origin, NONE);
    return true;
}

/* ---- public helpers ---- */

int rumor_identity_public_key(const uint8_t *seed, uint8_t *public_key)
{
    if (!seed || !public_key)
        return RUMOR_ERR_INVALID;
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_seed_keypair(public_key, sk, seed);
    sodium_memzero(sk, sizeof(sk));
    return RUMOR_OK;
}

int rumor_identity_cert_sign(const uint8_t *ca_seed, const char *name, const uint8_t *public_key,
                             uint64_t expires_ms, uint8_t *cert)
{
    size_t nl = name ? strlen(name) : 0;
    if (!ca_seed || !public_key || !cert || !wire_name_ok((const uint8_t *)name, nl))
        return RUMOR_ERR_INVALID;
    uint8_t sk[crypto_sign_SECRETKEYBYTES], pk[crypto_sign_PUBLICKEYBYTES], stmt[STMT_MAX];
    crypto_sign_seed_keypair(pk, sk, ca_seed);
    size_t len = ident_stmt_cert(stmt, wire_str_of(name, nl), public_key, expires_ms);
    crypto_sign_detached(cert, NULL, stmt, len, sk);
    sodium_memzero(sk, sizeof(sk));
    return RUMOR_OK;
}

int rumor_identity_cert_verify(const uint8_t *ca_key, const char *name, const uint8_t *public_key,
                               uint64_t expires_ms, const uint8_t *cert)
{
    size_t nl = name ? strlen(name) : 0;
    if (!ca_key || !public_key || !cert || !wire_name_ok((const uint8_t *)name, nl))
        return RUMOR_ERR_INVALID;
    uint8_t stmt[STMT_MAX];
    size_t len = ident_stmt_cert(stmt, wire_str_of(name, nl), public_key, expires_ms);
    return crypto_sign_verify_detached(cert, stmt, len, ca_key) == 0 ? RUMOR_OK : RUMOR_ERR_AUTH;
}

size_t rumor_identity_fingerprint(const uint8_t *public_key, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    if (!public_key || !out || cap < 20)
        return 0;
    uint8_t h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, public_key, WIRE_KEY_BYTES);
    size_t len = 0;
    for (int i = 0; i < 8; i++) {
        if (i && i % 2 == 0)
            out[len++] = ':';
        out[len++] = hex[h[i] >> 4];
        out[len++] = hex[h[i] & 15];
    }
    out[len] = '\0';
    return len;
}

const char *rumor_ident_refusal_name(rumor_ident_refusal r)
{
    static const char *const names[RUMOR_IDENT_REFUSAL_COUNT] = {
        "unsigned",    "bad_alive",    "bad_left",   "bad_accusation", "bad_kv",
        "unknown_key", "key_mismatch", "no_cert",    "bad_cert",       "cert_expired",
        "bad_event",   "bad_query",    "kv_withheld"};
    return (unsigned)r < RUMOR_IDENT_REFUSAL_COUNT ? names[r] : "unknown";
}

/* ---- user events and queries ---- */

void ident_event_sign(rumor_node *n, uint64_t ltime, wire_str name, wire_str payload, uint8_t *sig)
{
    uint8_t stmt[STMT_MAX];
    size_t len = ident_stmt_event(stmt, node_self_name(n), ltime, name, payload);
    sign(n, stmt, len, sig);
}

void ident_query_sign(rumor_node *n, uint64_t ltime, uint32_t id, const rumor_addr *addr,
                      uint8_t flags, uint32_t timeout_ms, wire_str rest, uint8_t *sig)
{
    uint8_t stmt[STMT_MAX];
    size_t len = ident_stmt_query(stmt, node_self_name(n), ltime, id,
                                  wire_str_of(addr->bytes, addr->len), flags, timeout_ms, rest);
    sign(n, stmt, len, sig);
}

void ident_resp_sign(rumor_node *n, wire_str asker, uint64_t ltime, uint32_t id, uint8_t flags,
                     wire_str payload, uint8_t *sig)
{
    uint8_t stmt[STMT_MAX];
    size_t len = ident_stmt_query_resp(stmt, node_self_name(n), asker, ltime, id, flags, payload);
    sign(n, stmt, len, sig);
}

ident_verdict ident_msg_check(rumor_node *n, const wire_msg *m)
{
    if (!n->ident)
        return IDENT_OK;
    uint8_t stmt[STMT_MAX];
    size_t len;
    wire_str signer;
    rumor_ident_refusal bad;
    switch (m->type) {
    case WIRE_USER_EVENT:
        signer = m->u.user_event.origin;
        bad = RUMOR_IDENT_BAD_EVENT;
        len = ident_stmt_event(stmt, signer, m->u.user_event.ltime, m->u.user_event.name,
                               m->u.user_event.payload);
        break;
    case WIRE_QUERY:
        signer = m->u.query.origin;
        bad = RUMOR_IDENT_BAD_QUERY;
        len = ident_stmt_query(stmt, signer, m->u.query.ltime, m->u.query.id, m->u.query.addr,
                               m->u.query.flags, m->u.query.timeout_ms, m->u.query.rest);
        break;
    case WIRE_QUERY_RESP:
        signer = m->u.query_resp.from;
        bad = RUMOR_IDENT_BAD_QUERY;
        len = ident_stmt_query_resp(stmt, signer, node_self_name(n), m->u.query_resp.ltime,
                                    m->u.query_resp.id, m->u.query_resp.flags,
                                    m->u.query_resp.payload);
        break;
    default:
        return IDENT_OK;
    }
    const uint8_t *sig = wire_msg_sig(m);
    if (!sig) {
        ident_refuse(n, RUMOR_IDENT_UNSIGNED, signer, NONE);
        return IDENT_REFUSED;
    }
    /* Only a member admitted here speaks: its key was pinned by a verified alive claim, or by
     * the host restoring what it knew (rumor_node_restore), as for accusations and key-value
     * state; a node never admitted has no key here. */
    const member *s = members_find(&n->mem, (const char *)signer.p, signer.len);
    const uint8_t *pk = s ? ident_pk(n, s) : NULL;
    if (!pk) {
        ident_refuse(n, RUMOR_IDENT_UNKNOWN_KEY, signer, NONE);
        return IDENT_UNKNOWN_KEY;
    }
    if (!verify(n, pk, stmt, len, sig)) {
        ident_refuse(n, bad, signer, NONE);
        return IDENT_REFUSED;
    }
    return IDENT_OK;
}
