/*
 * The sealed envelope: keyring, nonces, seal/open, anti-replay windows (see seal.h and
 * docs/protocol.md section 3.1).
 *
 * Nonce uniqueness. A nonce is prefix || counter: the 16-byte prefix is BLAKE2b keyed with the
 * host's 32-byte seal_secret over the node's epoch, the counter a 64-bit number that goes up by
 * one for every nonce and stream token the node makes in this life. Within a life no counter
 * repeats (the node stops sealing before it would wrap). Two lives use different prefixes: the
 * agent draws a fresh secret from randombytes_buf at every start, and the epoch of a name only
 * grows; either alone separates them (a prefix collision between two lives is a 128-bit BLAKE2b
 * collision), so even a host that repeats its secret (the simulator derives it from its seed)
 * never repeats a nonce as long as its epochs grow. Nodes of one cluster never share a nonce
 * for the same reason. XChaCha20's 192-bit nonce leaves room for this structure.
 *
 * AES-256-GCM has a 96-bit nonce, too short for prefix || counter, so it is never keyed with a
 * keyring key directly: each (key, sender life) gets its own subkey, BLAKE2b-256 keyed with the
 * keyring key over a label and the 16-byte prefix, and the nonce is 4 zero bytes || the counter.
 * A (subkey, nonce) pair repeats only if a counter repeats within a life (it does not) or two
 * (key, prefix) pairs give the same subkey (a 256-bit BLAKE2b collision).
 */
#include "core/seal.h"

#include <sodium.h>
#include <string.h>

#include "core/node.h"
#include "core/wire.h"

#define DROP(reason) (-(int)(reason)-1)

static const char PERS_KEY_ID[] = "rumor key id v1";
static const char PERS_PREFIX[] = "rumor nonce prefix v1";
static const char PERS_TOKEN[] = "rumor stream token v1";
static const char PERS_NODE_ID[] = "rumor node id v1";
static const char PERS_AES[] = "rumor aes-256-gcm subkey v1";

#define AES_NONCE_BYTES 12 /* crypto_aead_aes256gcm_NPUBBYTES */

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* BLAKE2b-128 of (personalization string || data), keyed with `key` when given. */
static void hash16(uint8_t out[16], const char *pers, const void *data, size_t len,
                   const uint8_t *key, size_t key_len)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, key_len, 16);
    crypto_generichash_update(&st, (const unsigned char *)pers, strlen(pers));
    if (len)
        crypto_generichash_update(&st, data, len);
    crypto_generichash_final(&st, out, 16);
    sodium_memzero(&st, sizeof(st));
}

uint64_t seal_id(const void *name, size_t len)
{
    uint8_t h[16];
    hash16(h, PERS_NODE_ID, name, len, NULL, 0);
    uint64_t id = get_be64(h);
    return id ? id : 1;
}

static void key_id_of(const uint8_t key[RUMOR_KEY_BYTES], uint8_t id[SEAL_KEY_ID_BYTES])
{
    uint8_t h[16];
    hash16(h, PERS_KEY_ID, NULL, 0, key, RUMOR_KEY_BYTES);
    memcpy(id, h, SEAL_KEY_ID_BYTES);
    sodium_memzero(h, sizeof(h));
}

/* The AES-256-GCM subkey of keyring key `key` for the sender life named by nonce `prefix`. */
static void aes_subkey(uint8_t out[RUMOR_KEY_BYTES], const uint8_t key[RUMOR_KEY_BYTES],
                       const uint8_t prefix[SEAL_PREFIX_BYTES])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, RUMOR_KEY_BYTES, RUMOR_KEY_BYTES);
    crypto_generichash_update(&st, (const unsigned char *)PERS_AES, strlen(PERS_AES));
    crypto_generichash_update(&st, prefix, SEAL_PREFIX_BYTES);
    crypto_generichash_final(&st, out, RUMOR_KEY_BYTES);
    sodium_memzero(&st, sizeof(st));
}

_Static_assert(sizeof(crypto_aead_aes256gcm_state) + 15 <= sizeof(((seal_state *)0)->aes_st),
               "room for an aligned AES-256-GCM state");

/* The expanded state of our own subkey, inside s->aes_st at a 16-byte boundary. */
static crypto_aead_aes256gcm_state *aes_own_state(seal_state *s)
{
    uintptr_t p = (uintptr_t)s->aes_st;
    return (crypto_aead_aes256gcm_state *)(void *)(s->aes_st + ((16 - (p & 15)) & 15));
}

/* Our own subkey follows the primary key. */
static void aes_own_key(seal_state *s)
{
    if (s->aes && s->nkeys) {
        aes_subkey(s->aes_key, s->keys[0].key, s->prefix);
        crypto_aead_aes256gcm_beforenm(aes_own_state(s), s->aes_key);
    }
}

static void aes_nonce(uint8_t out[AES_NONCE_BYTES], const uint8_t *ctr)
{
    memset(out, 0, AES_NONCE_BYTES - 8);
    memcpy(out + AES_NONCE_BYTES - 8, ctr, 8);
}

bool seal_aes_available(void)
{
    return crypto_aead_aes256gcm_is_available() != 0;
}

/* ---- peers' subkeys: a table keyed by the prefix (only prefixes of packets that opened get in,
 * so only key holders choose them); bounded, and cleared when full at its largest size. ---- */

static size_t sub_home(const seal_state *s, const uint8_t *prefix)
{
    return (size_t)get_be64(prefix) & (s->sub_cap - 1);
}

static seal_subkey *sub_find(const seal_state *s, const uint8_t *prefix, const uint8_t *kid)
{
    if (!s->sub_cap)
        return NULL;
    size_t mask = s->sub_cap - 1;
    for (size_t i = sub_home(s, prefix);; i = (i + 1) & mask) {
        seal_subkey *e = &s->sub[i];
        if (!e->used)
            return NULL;
        if (memcmp(e->prefix, prefix, SEAL_PREFIX_BYTES) == 0 &&
            memcmp(e->kid, kid, SEAL_KEY_ID_BYTES) == 0)
            return e;
    }
}

static void sub_clear(seal_state *s)
{
    if (s->sub)
        sodium_memzero(s->sub, s->sub_cap * sizeof(seal_subkey));
    s->nsub = 0;
}

static void sub_insert(seal_state *s, const uint8_t *prefix, const uint8_t *kid,
                       const uint8_t key[RUMOR_KEY_BYTES])
{
    size_t mask = s->sub_cap - 1, i = sub_home(s, prefix);
    while (s->sub[i].used)
        i = (i + 1) & mask;
    seal_subkey *e = &s->sub[i];
    memcpy(e->prefix, prefix, SEAL_PREFIX_BYTES);
    memcpy(e->kid, kid, SEAL_KEY_ID_BYTES);
    memcpy(e->key, key, RUMOR_KEY_BYTES);
    e->used = 1;
    s->nsub++;
}

/* Room for every sender a node keeps a replay window for, at most three quarters full. */
static size_t sub_cap_max(const seal_state *s)
{
    size_t cap = 64;
    while (cap < s->wins_max + s->wins_max / 3 + 1)
        cap *= 2;
    return cap;
}

static void sub_put(seal_state *s, const uint8_t *prefix, const uint8_t *kid,
                    const uint8_t key[RUMOR_KEY_BYTES])
{
    if (!s->alloc)
        return;
    if ((s->nsub + 1) * 4 > s->sub_cap * 3) {
        if (s->sub_cap >= sub_cap_max(s)) {
            sub_clear(s); /* at the bound: start over rather than evict one by one */
        } else {
            size_t cap = s->sub_cap ? s->sub_cap * 2 : 64;
            seal_subkey *old = s->sub, *arr = rcalloc(s->alloc, cap, sizeof(seal_subkey));
            if (!arr)
                return;
            size_t old_cap = s->sub_cap;
            s->sub = arr;
            s->sub_cap = cap;
            s->nsub = 0;
            for (size_t i = 0; i < old_cap; i++)
                if (old[i].used)
                    sub_insert(s, old[i].prefix, old[i].kid, old[i].key);
            if (old) {
                sodium_memzero(old, old_cap * sizeof(seal_subkey));
                rfree(s->alloc, old);
            }
        }
    }
    sub_insert(s, prefix, kid, key);
}

/* Index of `key` in the keyring (constant-time comparison of each), or -1. */
static int key_find(const seal_state *s, const uint8_t key[RUMOR_KEY_BYTES])
{
    int found = -1;
    for (size_t i = 0; i < s->nkeys; i++)
        if (sodium_memcmp(s->keys[i].key, key, RUMOR_KEY_BYTES) == 0)
            found = (int)i;
    return found;
}

static int key_add(seal_state *s, const uint8_t key[RUMOR_KEY_BYTES])
{
    if (key_find(s, key) >= 0)
        return RUMOR_OK;
    uint8_t id[SEAL_KEY_ID_BYTES];
    key_id_of(key, id);
    for (size_t i = 0; i < s->nkeys; i++)
        if (memcmp(s->keys[i].id, id, SEAL_KEY_ID_BYTES) == 0)
            return RUMOR_ERR_INVALID; /* the id would not tell the two keys apart */
    if (s->nkeys == RUMOR_KEYRING_MAX)
        return RUMOR_ERR_FULL;
    memcpy(s->keys[s->nkeys].key, key, RUMOR_KEY_BYTES);
    memcpy(s->keys[s->nkeys].id, id, SEAL_KEY_ID_BYTES);
    s->nkeys++;
    return RUMOR_OK;
}

int seal_init(seal_state *s, const rumor_settings *st, uint64_t now, size_t members_max)
{
    s->self_id = seal_id(st->name, strlen(st->name));
    s->accept_plain = st->seal_accept_plaintext;
    s->send_plain = st->seal_send_plaintext;
    s->alloc = &rumor_alloc_libc; /* a node points this at its own allocator */
    if (st->seal_cipher > RUMOR_SEAL_CIPHER_AESGCM ||
        (st->nkeys && st->seal_cipher == RUMOR_SEAL_CIPHER_AESGCM && !seal_aes_available()))
        return RUMOR_ERR_INVALID;
    s->aes = st->seal_cipher != RUMOR_SEAL_CIPHER_XCHACHA && seal_aes_available();
    if (st->nkeys == 0)
        return RUMOR_OK;
    /* Sending plaintext while refusing it would cut the node off from its own kind. */
    if (!st->keys || st->nkeys > RUMOR_KEYRING_MAX ||
        sodium_is_zero(st->seal_secret, RUMOR_SEAL_SECRET_BYTES) ||
        (st->seal_send_plaintext && !st->seal_accept_plaintext))
        return RUMOR_ERR_INVALID;
    s->epoch = st->seal_epoch;
    if (s->epoch == 0) {
        int64_t wall = (int64_t)now + st->wallclock_offset_ms;
        if (wall <= 0)
            return RUMOR_ERR_INVALID;
        s->epoch = (uint64_t)wall;
    }
    for (size_t i = 0; i < st->nkeys; i++) {
        int rc = key_add(s, st->keys[i]);
        if (rc != RUMOR_OK)
            return RUMOR_ERR_INVALID;
    }
    memcpy(s->secret, st->seal_secret, RUMOR_SEAL_SECRET_BYTES);
    uint8_t e[8];
    put_be64(e, s->epoch);
    hash16(s->prefix, PERS_PREFIX, e, sizeof(e), s->secret, sizeof(s->secret));
    aes_own_key(s);
    /* Windows for every member, and some for senders not in the table yet (joiners). */
    s->wins_max = members_max + 64;
    return RUMOR_OK;
}

void seal_free(seal_state *s, const rumor_allocator *a)
{
    if (s->scratch) {
        sodium_memzero(s->scratch, s->scratch_cap);
        rfree(a, s->scratch);
    }
    rfree(a, s->wins);
    rfree(a, s->slots);
    if (s->sub) {
        sub_clear(s);
        rfree(s->alloc, s->sub);
    }
    sodium_memzero(s, sizeof(*s));
}

void seal_token(seal_state *s, uint8_t out[SEAL_TOKEN_BYTES])
{
    uint8_t m[16];
    put_be64(m, s->epoch);
    put_be64(m + 8, ++s->counter);
    hash16(out, PERS_TOKEN, m, sizeof(m), s->secret, sizeof(s->secret));
}

size_t seal_put_inner(seal_state *s, buf_writer *w, const seal_inner *in)
{
    static const uint8_t zero[SEAL_ENV_BYTES];
    size_t env = w->len;
    buf_put_bytes(w, zero, SEAL_ENV_BYTES);
    buf_put_u8(w, (uint8_t)(in->kind | (s->aes ? SEAL_INNER_AES : 0)));
    buf_put_u64be(w, s->epoch);
    buf_put_u64be(w, s->self_id);
    if (in->kind == SEAL_KIND_DGRAM) {
        buf_put_u64be(w, in->dest);
        buf_put_u64be(w, in->dest_epoch);
    } else {
        buf_put_bytes(w, in->opener, SEAL_TOKEN_BYTES);
        buf_put_bytes(w, in->acceptor, SEAL_TOKEN_BYTES);
        buf_put_u32be(w, in->seq);
    }
    buf_put_u8(w, 0); /* extension area: empty in this revision */
    return env;
}

bool seal_close(seal_state *s, buf_writer *w, size_t start, size_t env, uint8_t cipher)
{
    if (s->counter == UINT64_MAX || w->failed || !buf_reserve(w, SEAL_TAG_BYTES))
        return false;
    bool aes = cipher == SEAL_CIPHER_AESGCM && s->aes;
    uint8_t *p = w->p;
    uint8_t *nonce = p + env + SEAL_KEY_ID_BYTES;
    memcpy(p + env, s->keys[0].id, SEAL_KEY_ID_BYTES);
    memcpy(nonce, s->prefix, SEAL_PREFIX_BYTES);
    put_be64(nonce + SEAL_PREFIX_BYTES, ++s->counter);
    uint8_t *m = p + env + SEAL_ENV_BYTES;
    size_t mlen = w->len - (env + SEAL_ENV_BYTES);
    if (aes) {
        p[start + 3] |= WIRE_FLAG_AESGCM; /* header flags: authenticated with the rest */
        uint8_t n12[AES_NONCE_BYTES];
        aes_nonce(n12, nonce + SEAL_PREFIX_BYTES);
        crypto_aead_aes256gcm_encrypt_detached_afternm(m, p + w->len, NULL, m, mlen, p + start,
                                                       env + SEAL_ENV_BYTES - start, NULL, n12,
                                                       aes_own_state(s));
    } else {
        crypto_aead_xchacha20poly1305_ietf_encrypt_detached(m, p + w->len, NULL, m, mlen, p + start,
                                                            env + SEAL_ENV_BYTES - start, NULL,
                                                            nonce, s->keys[0].key);
    }
    w->len += SEAL_TAG_BYTES;
    return true;
}

static bool get_inner(buf_reader *r, seal_inner *in)
{
    const uint8_t *p;
    uint8_t flags;
    uint64_t ext;
    if (!buf_get_u8(r, &flags) || !buf_get_u64be(r, &in->epoch) || !buf_get_u64be(r, &in->sender))
        return false;
    in->kind = flags & SEAL_KIND_MASK;
    in->aes = (flags & SEAL_INNER_AES) != 0;
    if (in->kind == SEAL_KIND_DGRAM) {
        if (!buf_get_u64be(r, &in->dest) || !buf_get_u64be(r, &in->dest_epoch))
            return false;
    } else if (in->kind == SEAL_KIND_OPENER || in->kind == SEAL_KIND_ACCEPTOR) {
        if (!buf_get_bytes(r, SEAL_TOKEN_BYTES, &p))
            return false;
        memcpy(in->opener, p, SEAL_TOKEN_BYTES);
        if (!buf_get_bytes(r, SEAL_TOKEN_BYTES, &p))
            return false;
        memcpy(in->acceptor, p, SEAL_TOKEN_BYTES);
        if (!buf_get_u32be(r, &in->seq))
            return false;
    } else {
        return false;
    }
    /* Extensions a later revision may add are authenticated and skipped here. */
    return buf_get_varint_max(r, buf_reader_left(r), &ext) && buf_get_bytes(r, (size_t)ext, &p);
}

int seal_open(seal_state *s, const uint8_t *p, size_t len, size_t hdr, uint8_t *out, seal_inner *in,
              const uint8_t **body, size_t *body_len)
{
    if (len < hdr + SEAL_ENV_BYTES + SEAL_TAG_BYTES || hdr < 4)
        return DROP(RUMOR_DROP_TRUNCATED);
    bool aes = (p[3] & WIRE_FLAG_AESGCM) != 0;
    if (aes && !s->aes)
        return DROP(RUMOR_DROP_UNKNOWN_KEY); /* we never offered it: no key here opens it */
    const uint8_t *kid = p + hdr;
    const seal_key *k = NULL;
    for (size_t i = 0; i < s->nkeys && !k; i++)
        if (memcmp(s->keys[i].id, kid, SEAL_KEY_ID_BYTES) == 0)
            k = &s->keys[i];
    if (!k)
        return DROP(RUMOR_DROP_UNKNOWN_KEY);
    const uint8_t *nonce = kid + SEAL_KEY_ID_BYTES;
    const uint8_t *c = p + hdr + SEAL_ENV_BYTES;
    size_t clen = len - hdr - SEAL_ENV_BYTES - SEAL_TAG_BYTES;
    const uint8_t *tag = p + len - SEAL_TAG_BYTES;
    if (aes) {
        uint8_t derived[RUMOR_KEY_BYTES], n12[AES_NONCE_BYTES];
        const seal_subkey *e = sub_find(s, nonce, kid);
        if (!e)
            aes_subkey(derived, k->key, nonce);
        aes_nonce(n12, nonce + SEAL_PREFIX_BYTES);
        int rc = crypto_aead_aes256gcm_decrypt_detached(
            out, NULL, c, clen, tag, p, hdr + SEAL_ENV_BYTES, n12, e ? e->key : derived);
        if (rc == 0 && !e)
            sub_put(s, nonce, kid, derived); /* only a key holder's prefixes are kept */
        sodium_memzero(derived, sizeof(derived));
        if (rc != 0)
            return DROP(RUMOR_DROP_AUTH_FAILED);
    } else if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
                   out, NULL, c, clen, tag, p, hdr + SEAL_ENV_BYTES, nonce, k->key) != 0) {
        return DROP(RUMOR_DROP_AUTH_FAILED);
    }
    buf_reader r;
    buf_reader_init(&r, out, clen);
    memset(in, 0, sizeof(*in));
    if (!get_inner(&r, in))
        return DROP(RUMOR_DROP_MALFORMED);
    in->cipher = aes ? SEAL_CIPHER_AESGCM : SEAL_CIPHER_XCHACHA;
    in->counter = get_be64(nonce + SEAL_PREFIX_BYTES);
    *body = out + r.off;
    *body_len = clen - r.off;
    return 0;
}

uint8_t *seal_scratch(seal_state *s, const rumor_allocator *a, size_t len)
{
    if (len <= s->scratch_cap)
        return s->scratch;
    /* Grow by hand so the old plaintext is wiped rather than left behind by realloc. */
    size_t cap = s->scratch_cap ? s->scratch_cap : 2048;
    while (cap < len)
        cap *= 2;
    uint8_t *p = ralloc(a, cap);
    if (!p)
        return NULL;
    if (s->scratch) {
        sodium_memzero(s->scratch, s->scratch_cap);
        rfree(a, s->scratch);
    }
    s->scratch = p;
    s->scratch_cap = cap;
    return p;
}

/* ---- replay windows ---- */

static size_t slot_home(const seal_state *s, uint64_t sender)
{
    return (size_t)sender & (s->nslots - 1); /* ids are hash outputs already */
}

static size_t win_slot(const seal_state *s, uint64_t sender)
{
    size_t mask = s->nslots - 1;
    for (size_t i = slot_home(s, sender);; i = (i + 1) & mask)
        if (!s->slots[i] || s->wins[s->slots[i] - 1].sender == sender)
            return i;
}

static replay_win *win_find(const seal_state *s, uint64_t sender)
{
    if (!s->nslots)
        return NULL;
    uint32_t v = s->slots[win_slot(s, sender)];
    return v ? &s->wins[v - 1] : NULL;
}

static bool slots_grow(seal_state *s, const rumor_allocator *a)
{
    size_t n = s->nslots ? s->nslots * 2 : 64;
    uint32_t *slots = rcalloc(a, n, sizeof(uint32_t));
    if (!slots)
        return false;
    rfree(a, s->slots);
    s->slots = slots;
    s->nslots = n;
    for (size_t i = 0; i < s->nwins; i++)
        s->slots[win_slot(s, s->wins[i].sender)] = (uint32_t)(i + 1);
    return true;
}

/* Linear-probing deletion by backward shift: later entries of the cluster move up so lookups
 * never stop at the hole. */
static void slot_delete(seal_state *s, size_t i)
{
    size_t mask = s->nslots - 1;
    s->slots[i] = 0;
    for (size_t j = (i + 1) & mask; s->slots[j]; j = (j + 1) & mask) {
        size_t h = slot_home(s, s->wins[s->slots[j] - 1].sender);
        bool stays = i <= j ? (h > i && h <= j) : (h > i || h <= j);
        if (!stays) {
            s->slots[i] = s->slots[j];
            s->slots[j] = 0;
            i = j;
        }
    }
}

static void win_evict_lru(seal_state *s)
{
    size_t old = 0;
    for (size_t i = 1; i < s->nwins; i++)
        if (s->wins[i].last_ms < s->wins[old].last_ms)
            old = i;
    slot_delete(s, win_slot(s, s->wins[old].sender));
    size_t last = --s->nwins;
    if (old != last) {
        s->slots[win_slot(s, s->wins[last].sender)] = (uint32_t)(old + 1);
        s->wins[old] = s->wins[last];
    }
}

static replay_win *win_add(seal_state *s, const rumor_allocator *a, uint64_t sender)
{
    if (s->nwins >= s->wins_max && s->nwins > 0)
        win_evict_lru(s);
    void *arr = s->wins;
    if (!rgrow(a, &arr, &s->wins_cap, s->nwins + 1, sizeof(replay_win)))
        return NULL;
    s->wins = arr;
    if ((s->nwins + 1) * 2 > s->nslots && !slots_grow(s, a))
        return NULL;
    replay_win *w = &s->wins[s->nwins];
    memset(w, 0, sizeof(*w));
    w->sender = sender;
    s->slots[win_slot(s, sender)] = (uint32_t)(++s->nwins);
    return w;
}

int replay_check(const seal_state *s, uint64_t sender, uint64_t epoch, uint64_t counter)
{
    const replay_win *w = win_find(s, sender);
    if (!w || epoch > w->epoch || (epoch == w->epoch && counter > w->top))
        return 0;
    if (epoch < w->epoch || w->top - counter >= REPLAY_WINDOW)
        return DROP(RUMOR_DROP_REPLAYED); /* an older life, or too far behind to tell */
    uint64_t bit = 1ull << (counter & 63);
    return (w->bits[(counter >> 6) % REPLAY_BLOCKS] & bit) ? DROP(RUMOR_DROP_REPLAYED) : 0;
}

bool replay_mark(seal_state *s, const rumor_allocator *a, uint64_t sender, uint64_t epoch,
                 uint64_t counter, bool aes, uint64_t now)
{
    replay_win *w = win_find(s, sender);
    if (!w && !(w = win_add(s, a, sender)))
        return false;
    if (epoch != w->epoch) { /* new, or the sender restarted: its old life is closed */
        memset(w->bits, 0, sizeof(w->bits));
        w->epoch = epoch;
        w->top = 0;
    }
    if (counter > w->top) { /* RFC 6479: clear the blocks the window slides over */
        uint64_t cur = w->top >> 6, next = counter >> 6;
        uint64_t n = next - cur < REPLAY_BLOCKS ? next - cur : REPLAY_BLOCKS;
        for (uint64_t i = 1; i <= n; i++)
            w->bits[(cur + i) % REPLAY_BLOCKS] = 0;
        w->top = counter;
    }
    w->bits[(counter >> 6) % REPLAY_BLOCKS] |= 1ull << (counter & 63);
    w->last_ms = now;
    w->aes = aes;
    w->doubt = false;
    bool held = w->held;
    w->held = false;
    return held;
}

uint64_t seal_peer(const seal_state *s, uint64_t dest, uint8_t *cipher)
{
    const replay_win *w = dest ? win_find(s, dest) : NULL;
    if (cipher)
        *cipher = s->aes && w && w->aes ? SEAL_CIPHER_AESGCM : SEAL_CIPHER_XCHACHA;
    return w && !w->doubt ? w->epoch : 0;
}

uint64_t seal_peer_epoch(const seal_state *s, uint64_t sender)
{
    return seal_peer(s, sender, NULL);
}

void seal_hold(seal_state *s, const rumor_allocator *a, uint64_t dest, uint64_t now)
{
    replay_win *w = win_find(s, dest);
    if (!w) {
        /* Epoch 0: never named, and any epoch of the sender's is newer. */
        if (!(w = win_add(s, a, dest)))
            return;
        w->last_ms = now;
    }
    w->held = true;
}

void seal_doubt_epoch(seal_state *s, uint64_t sender)
{
    replay_win *w = win_find(s, sender);
    if (w)
        w->doubt = true;
}

void seal_learn_epoch(seal_state *s, const rumor_allocator *a, uint64_t sender, uint64_t epoch,
                      uint64_t now)
{
    replay_win *w = win_find(s, sender);
    if (w && epoch <= w->epoch) {
        if (epoch == w->epoch)
            w->doubt = false;
        return;
    }
    if (!w && !(w = win_add(s, a, sender)))
        return;
    w->doubt = false;
    memset(w->bits, 0, sizeof(w->bits));
    w->epoch = epoch;
    w->top = 0;
    w->last_ms = now;
}

bool seal_notice_due(seal_state *s, uint64_t sender, uint64_t now, uint64_t gap_ms)
{
    replay_win *w = win_find(s, sender);
    if (!w || (w->notice_ms && now < w->notice_ms + gap_ms))
        return false;
    w->notice_ms = now ? now : 1;
    return true;
}

/* ---- keyring ---- */

int seal_key_install(seal_state *s, const uint8_t key[RUMOR_KEY_BYTES])
{
    if (!s->nkeys)
        return RUMOR_ERR_STATE;
    return key_add(s, key);
}

int seal_key_use(seal_state *s, const uint8_t key[RUMOR_KEY_BYTES])
{
    if (!s->nkeys)
        return RUMOR_ERR_STATE;
    int i = key_find(s, key);
    if (i < 0)
        return RUMOR_ERR_NOT_FOUND;
    if (i > 0) {
        seal_key tmp = s->keys[i];
        memmove(&s->keys[1], &s->keys[0], (size_t)i * sizeof(seal_key));
        s->keys[0] = tmp;
        sodium_memzero(&tmp, sizeof(tmp));
        aes_own_key(s);
    }
    return RUMOR_OK;
}

int seal_key_remove(seal_state *s, const uint8_t key[RUMOR_KEY_BYTES])
{
    if (!s->nkeys)
        return RUMOR_ERR_STATE;
    int i = key_find(s, key);
    if (i < 0)
        return RUMOR_ERR_NOT_FOUND;
    if (i == 0)
        return RUMOR_ERR_STATE; /* the primary seals: make another key primary first */
    memmove(&s->keys[i], &s->keys[i + 1], (s->nkeys - (size_t)i - 1) * sizeof(seal_key));
    s->nkeys--;
    sodium_memzero(&s->keys[s->nkeys], sizeof(seal_key));
    sub_clear(s); /* no subkey of a removed key may still open anything */
    return RUMOR_OK;
}

/* ---- public keyring API ---- */

int rumor_node_keyring_install(rumor_node *n, const uint8_t key[RUMOR_KEY_BYTES])
{
    return key ? seal_key_install(&n->seal, key) : RUMOR_ERR_INVALID;
}

int rumor_node_keyring_use(rumor_node *n, const uint8_t key[RUMOR_KEY_BYTES])
{
    return key ? seal_key_use(&n->seal, key) : RUMOR_ERR_INVALID;
}

int rumor_node_keyring_remove(rumor_node *n, const uint8_t key[RUMOR_KEY_BYTES])
{
    return key ? seal_key_remove(&n->seal, key) : RUMOR_ERR_INVALID;
}

size_t rumor_node_keyring_count(const rumor_node *n)
{
    return n->seal.nkeys;
}

int rumor_node_keyring_key(const rumor_node *n, size_t i, uint8_t out[RUMOR_KEY_BYTES])
{
    if (i >= n->seal.nkeys || !out)
        return RUMOR_ERR_NOT_FOUND;
    memcpy(out, n->seal.keys[i].key, RUMOR_KEY_BYTES);
    return RUMOR_OK;
}
