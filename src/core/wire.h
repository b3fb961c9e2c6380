/*
 * The wire format (docs/protocol.md is the normative description). A packet is a header
 * followed by one or more messages; datagrams carry one packet, streams carry length-prefixed
 * packets ("frames"). Decoding never allocates: decoded fields point into the input.
 */
#ifndef RUMOR_CORE_WIRE_H
#define RUMOR_CORE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "rumor.h"

#define WIRE_MAGIC0      0x52 /* 'R' */
#define WIRE_MAGIC1      0x4d /* 'M' */
#define WIRE_FLAG_SEALED 0x01 /* an encryption envelope follows the header */
#define WIRE_FLAG_AESGCM 0x02 /* sealed with AES-256-GCM (only together with SEALED) */
#define WIRE_FLAGS_KNOWN (WIRE_FLAG_SEALED | WIRE_FLAG_AESGCM)
/* Bytes of the smallest possible packet: magic, version, flags, label length, one message of
 * type + zero length. */
#define WIRE_PACKET_MIN 6
/* Messages in one packet. A 1400-byte datagram holds at most ~700 two-byte messages; the cap
 * only bounds the decode array for large stream frames, which carry one message each. */
#define WIRE_MSGS_MAX 1024
/* Messages in one stream frame. A full-state frame carries one KV_DELTA per origin, so it must
 * hold more than a datagram's worth at 10,000 members; the decode array grows to it on demand. */
#define WIRE_STREAM_MSGS_MAX 65536
/* Length prefix of a stream frame. */
#define WIRE_FRAME_PREFIX 4

typedef enum wire_type {
    WIRE_PING = 1,
    WIRE_PING_REQ = 2,
    WIRE_ACK = 3,
    WIRE_NACK = 4,
    WIRE_ALIVE = 5,
    WIRE_SUSPECT = 6,
    WIRE_FAILED = 7,
    WIRE_LEFT = 8,
    WIRE_PUSHPULL = 9,
    WIRE_KV_DIGEST = 10,
    WIRE_KV_DELTA = 11,
    WIRE_USER_EVENT = 12,
    WIRE_QUERY = 13,
    WIRE_QUERY_RESP = 14,
    WIRE_CLOCKS = 15,
    WIRE_TYPE_MAX = 15,
} wire_type;

#define WIRE_PP_JOIN   0x01 /* the sender is joining */
#define WIRE_PP_REPLY  0x02 /* an answer to a push-pull request */
#define WIRE_PP_DIGEST 0x04 /* no members: compare digests first (periodic anti-entropy) */

/* KV_DIGEST flags: a request says what the asker wants, a reply lists where the replier lags. */
#define WIRE_KVD_PULL  0x01 /* request: send me the deltas I lack */
#define WIRE_KVD_PUSH  0x02 /* request: tell me where you lag, I will send */
#define WIRE_KVD_REPLY 0x04 /* reply: these are the origins where I lag */
#define WIRE_KVD_SUM   0x08 /* request: no entries, compare store sums first */
#define WIRE_KVD_OFFER 0x10 /* answer to a SUM that differed: my slice, for you to act on */
#define WIRE_KVD_ALL   0x20 /* streams: the entries list every origin the sender holds */
/* KV_DELTA flags. */
#define WIRE_KVX_RESET    0x01 /* drop your copy first if you are behind the collection horizon */
#define WIRE_KVX_COMPLETE 0x02 /* every entry up to origin_max is in this delta */
#define WIRE_KVX_RUMOR    0x04 /* a fresh write being rumor-mongered: pass it on when new */

/* QUERY flags: acks requested. QUERY_RESP flags: this is an ack (no payload). */
#define WIRE_Q_ACK 0x01
/* CLOCKS flags: the sender is joining and wants no past user events. */
#define WIRE_CLK_NO_REPLAY 0x01
/* Lamport times stay below 2^63, so witnessing one (time + 1) can never wrap. */
#define WIRE_LTIME_MAX ((1ull << 63) - 1)

typedef struct wire_str {
    const uint8_t *p;
    size_t len;
} wire_str;

/*
 * Per-node identity (docs/protocol.md section 12). Signed claims carry an identity trailer after
 * the message's version-1 fields, which receivers without identities skip as trailing payload.
 * Every trailer starts with WIRE_IDENT_V1; one that does not parse counts as absent (the message
 * still decodes). An identity block is `flags | public key | [expiry | certificate] | signature`.
 */
#define WIRE_IDENT_V1        1    /* first byte of every identity trailer */
#define WIRE_IDENT_CERT      0x01 /* block flag: a certificate follows the key */
#define WIRE_KEY_BYTES       32   /* Ed25519 public key */
#define WIRE_SIG_BYTES       64   /* Ed25519 signature (and certificate) */
#define WIRE_IDENT_BLOCK_MAX (1u + WIRE_KEY_BYTES + 8u + 2u * WIRE_SIG_BYTES)

typedef struct wire_ident {
    bool present;        /* false: the claim carried no (well-formed) identity */
    bool has_cert;       /* blocks only */
    const uint8_t *pk;   /* blocks only: WIRE_KEY_BYTES */
    const uint8_t *sig;  /* WIRE_SIG_BYTES */
    const uint8_t *cert; /* WIRE_SIG_BYTES when has_cert */
    uint64_t cert_expires_ms;
} wire_ident;

typedef struct wire_header {
    uint8_t version;
    uint8_t flags;
    wire_str label;
} wire_header;

/* One member record of a push-pull state. */
typedef struct wire_member {
    wire_str name;
    rumor_addr addr;
    uint32_t inc;
    uint8_t state; /* rumor_member_state */
    wire_str meta;
} wire_member;

typedef struct wire_msg {
    uint8_t type;
    union {
        struct {
            uint32_t seq;
            wire_str target; /* may be empty: any node */
            wire_str sender;
        } ping;
        struct {
            uint32_t seq;
            wire_str target;
            rumor_addr target_addr;
            bool nack;
            wire_str sender;
        } ping_req;
        struct {
            uint32_t seq;
        } ack; /* ACK and NACK */
        struct {
            uint32_t inc;
            wire_str name;
            rumor_addr addr;
            bool ident; /* an identity trailer follows meta: wire_alive_ident() */
            wire_str meta;
        } alive;
        struct {
            uint32_t inc;
            bool ident; /* a signature trailer follows: wire_accuse_ident() */
            wire_str name;
            wire_str accuser; /* empty for LEFT */
        } accuse;             /* SUSPECT, FAILED, LEFT */
        struct {
            uint8_t flags;
            uint32_t count;
            buf_reader entries;     /* `count` (origin, max_version, gc_version), validated */
            uint64_t sum;           /* the sender's kv_store.sum */
            uint32_t nbuckets;      /* optional: per-bucket sums follow (0 when absent) */
            const uint8_t *buckets; /* `nbuckets` u32be, low bits of each bucket's sum */
            bool has_total;
            uint64_t total; /* optional: the sender's sum of max_version over origins */
        } kv_digest;
        struct {
            wire_str origin;
            uint8_t flags;
            bool ident;     /* signatures follow the entries: wire_kv_delta_sigs() */
            uint64_t since; /* entries follow version `since` of the origin */
            uint64_t origin_max;
            uint64_t gc_version;
            uint32_t count;
            buf_reader entries; /* `count` wire_kv_entry records, validated */
            const uint8_t *sum; /* a keyspace sum block follows the signatures: wire_kv_sum_of()
                                   (NULL when none) */
        } kv_delta;
        struct {
            uint8_t flags;
            bool ident; /* identity blocks follow the digest: wire_pushpull_idents() */
            wire_str sender;
            uint32_t count;
            buf_reader members; /* `count` encoded wire_member records, validated */
            uint64_t digest;    /* the sender's members_digest */
        } pushpull;
        struct {
            uint64_t ltime;
            wire_str origin;
            wire_str name;
            wire_str payload;
            bool ident; /* the origin's signature follows: wire_msg_sig() */
        } user_event;
        struct {
            uint64_t ltime;
            uint32_t id;
            uint8_t flags;
            uint32_t timeout_ms;
            wire_str origin;
            wire_str addr; /* the asker's address bytes (1..RUMOR_ADDR_MAX), wire_addr_of() */
            wire_str rest; /* filters, name and payload, validated: wire_query_parts() */
            bool ident;    /* the asker's signature follows: wire_msg_sig() */
        } query;
        struct {
            uint64_t ltime;
            uint32_t id;
            uint8_t flags;
            wire_str from;
            wire_str payload; /* empty for an ack */
            bool ident;       /* the responder's signature follows: wire_msg_sig() */
        } query_resp;
        struct {
            uint8_t flags;
            uint64_t event_ltime;
            uint64_t query_ltime;
            uint64_t event_sum; /* over the sender's recent user events (msg_window_sum) */
        } clocks;
    } u;
} wire_msg;

/*
 * Decodes and checks the header. Returns 0, or a negative rumor_drop_reason - 1 (use
 * wire_drop_of()) for truncated, bad magic, bad version or unknown flags.
 */
int wire_header_decode(buf_reader *r, wire_header *h);

/*
 * Decodes the next message. Returns 1 with `m` filled, 0 at the end of input, or
 * -(reason + 1) for a malformed message. An unknown type sets m->type to 0 and returns 1 (the
 * caller counts and skips it; later versions may add types). Fields appended to a known
 * message by a later version are skipped.
 */
int wire_msg_decode(buf_reader *r, wire_msg *m, uint32_t meta_max);

typedef struct wire_kv_entry {
    wire_str key;
    uint64_t version;
    uint8_t flags; /* KV_TOMBSTONE, KV_SHARED */
    uint64_t stamp;
    wire_str value;
} wire_kv_entry;

/* Entry flag bit 2: a shared-keyspace entry its owner retired because a newer write by another
 * node superseded it (kv.h). Set with the tombstone and shared bits; `value` then names the
 * superseding entry: varint version, then the origin name (1..128 bytes, no NUL). */
#define WIRE_KV_RETIRED 0x04
/* Splits a retired entry's value into the superseding (origin, version). False when malformed. */
bool wire_kv_retired_dep(wire_str value, wire_str *origin, uint64_t *version);
/* Writes a retired entry's value into `out` (at least 10 + RUMOR_NAME_MAX bytes); returns its
 * length. */
size_t wire_kv_retired_put(uint8_t *out, wire_str origin, uint64_t version);

/* Readers for validated KV_DIGEST and KV_DELTA entries. */
bool wire_kv_digest_next(buf_reader *r, wire_str *origin, uint64_t *max, uint64_t *gc);
bool wire_kv_entry_next(buf_reader *r, wire_kv_entry *e);
/* Encoders. A KV_DIGEST or KV_DELTA is written as begin (with the exact entry bytes), entries. */
size_t wire_kv_digest_entry_size(wire_str origin, uint64_t max, uint64_t gc);
void wire_put_kv_digest_begin(buf_writer *w, uint8_t flags, uint32_t count, size_t bytes);
void wire_put_kv_digest_entry(buf_writer *w, wire_str origin, uint64_t max, uint64_t gc);
void wire_put_kv_digest_end(buf_writer *w, uint64_t sum);
/* A KV_DIGEST with per-bucket sums: begin with their number, end with them (u32 each). */
void wire_put_kv_digest_begin_b(buf_writer *w, uint8_t flags, uint32_t count, size_t bytes,
                                uint32_t nbuckets);
void wire_put_kv_digest_buckets(buf_writer *w, const uint64_t *sums, uint32_t nbuckets);
/* The same with the sender's version total after the buckets: begin_t, end, buckets, total. */
void wire_put_kv_digest_begin_t(buf_writer *w, uint8_t flags, uint32_t count, size_t bytes,
                                uint32_t nbuckets, uint64_t total);
void wire_put_kv_digest_total(buf_writer *w, uint64_t total);
/* Bucket sums a KV_DIGEST may carry. */
#define WIRE_KV_BUCKETS_MAX 255
size_t wire_kv_entry_size(const wire_kv_entry *e);
size_t wire_kv_delta_head_size(wire_str origin, uint64_t since, uint64_t max, uint64_t gc,
                               uint32_t count);
void wire_put_kv_delta_begin(buf_writer *w, wire_str origin, uint8_t flags, uint64_t since,
                             uint64_t max, uint64_t gc, uint32_t count, size_t bytes);
void wire_put_kv_entry(buf_writer *w, const wire_kv_entry *e);

/* The variable part of a QUERY (`rest`), split: node-name filters, tag filters, name, payload.
 * Read the filters with wire_query_node_next() and wire_query_tag_next(). */
typedef struct wire_query_parts {
    uint32_t nnodes;
    buf_reader nodes;
    uint32_t ntags;
    buf_reader tags;
    wire_str name;
    wire_str payload;
} wire_query_parts;

void wire_query_parts_of(wire_str rest, wire_query_parts *out);
bool wire_query_node_next(buf_reader *r, wire_str *name);
bool wire_query_tag_next(buf_reader *r, wire_str *key, wire_str *value);
void wire_addr_of(wire_str bytes, rumor_addr *out);

/* User events and queries. A QUERY's variable part is encoded first (its size is what
 * query_bytes_max bounds), then wrapped with the fixed fields. */
void wire_put_user_event(buf_writer *w, uint64_t ltime, wire_str origin, wire_str name,
                         wire_str payload);
size_t wire_query_rest_size(const wire_str *nodes, uint32_t nnodes, const wire_str *keys,
                            const wire_str *values, uint32_t ntags, wire_str name,
                            wire_str payload);
void wire_put_query_rest(buf_writer *w, const wire_str *nodes, uint32_t nnodes,
                         const wire_str *keys, const wire_str *values, uint32_t ntags,
                         wire_str name, wire_str payload);
void wire_put_query(buf_writer *w, uint64_t ltime, uint32_t id, wire_str origin,
                    const rumor_addr *addr, uint8_t flags, uint32_t timeout_ms, wire_str rest);
void wire_put_query_resp(buf_writer *w, uint64_t ltime, uint32_t id, wire_str from, uint8_t flags,
                         wire_str payload);
/* The same three with a signature trailer (`sig` NULL: none). */
void wire_put_user_event_sig(buf_writer *w, uint64_t ltime, wire_str origin, wire_str name,
                             wire_str payload, const uint8_t *sig);
void wire_put_query_sig(buf_writer *w, uint64_t ltime, uint32_t id, wire_str origin,
                        const rumor_addr *addr, uint8_t flags, uint32_t timeout_ms, wire_str rest,
                        const uint8_t *sig);
void wire_put_query_resp_sig(buf_writer *w, uint64_t ltime, uint32_t id, wire_str from,
                             uint8_t flags, wire_str payload, const uint8_t *sig);
/* The signature trailer of a USER_EVENT, QUERY or QUERY_RESP (WIRE_SIG_BYTES), or NULL. */
const uint8_t *wire_msg_sig(const wire_msg *m);
void wire_put_clocks(buf_writer *w, uint8_t flags, uint64_t event_ltime, uint64_t query_ltime,
                     uint64_t event_sum);

/* Reads the next member of a push-pull state (already validated by wire_msg_decode). */
bool wire_member_next(buf_reader *r, wire_member *m);

static inline rumor_drop_reason wire_drop_of(int rc)
{
    return (rumor_drop_reason)(-rc - 1);
}

/* True when the name is 1..RUMOR_NAME_MAX bytes without NUL. */
bool wire_name_ok(const uint8_t *p, size_t len);

/* Encoders append one message (type, length, payload) to `w`. */
void wire_put_header(buf_writer *w, const uint8_t *label, size_t label_len, uint8_t flags);
void wire_put_ping(buf_writer *w, uint32_t seq, wire_str target, wire_str sender);
void wire_put_ping_req(buf_writer *w, uint32_t seq, wire_str target, const rumor_addr *addr,
                       bool nack, wire_str sender);
void wire_put_ack(buf_writer *w, uint8_t type, uint32_t seq);
void wire_put_alive(buf_writer *w, uint32_t inc, wire_str name, const rumor_addr *addr,
                    wire_str meta);
void wire_put_accuse(buf_writer *w, uint8_t type, uint32_t inc, wire_str name, wire_str accuser);

/* Push-pull: begin with the exact member count and total encoded member bytes, put each
 * member, then end with the sender's digest. */
void wire_put_pushpull_begin(buf_writer *w, uint8_t flags, wire_str sender, uint32_t count,
                             size_t members_bytes);
size_t wire_member_size(const wire_member *m);
void wire_put_member(buf_writer *w, const wire_member *m);
void wire_put_pushpull_end(buf_writer *w, uint64_t digest);

/* ---- identity trailers (docs/protocol.md section 12) ---- */

/* The identity block of an ALIVE; `out->present` false when it has none. */
void wire_alive_ident(const wire_msg *m, wire_ident *out);
/* The signature of a SUSPECT, FAILED or LEFT (only `present` and `sig` are set). */
void wire_accuse_ident(const wire_msg *m, wire_ident *out);
/* A reader over the `count` identity blocks of a PUSHPULL (validated at decode); false when the
 * message carries none. Read them with wire_ident_next() alongside wire_member_next(). */
bool wire_pushpull_idents(const wire_msg *m, buf_reader *out);
bool wire_ident_next(buf_reader *r, wire_ident *out);
/* The origin's signature over the KV_DELTA's head, followed by one signature per entry in
 * order (WIRE_SIG_BYTES each); NULL when the message carries none. */
const uint8_t *wire_kv_delta_sigs(const wire_msg *m);

/* The keyspace sum block that may follow a signed KV_DELTA's signatures (docs/protocol.md
 * section 12.8): version 1, the origin's (max, gc), its keyspace sum, its signature. */
#define WIRE_KV_SUM_V1    1
#define WIRE_KV_SUM_LEN   16
#define WIRE_KV_SUM_BYTES (1u + 8u + 8u + WIRE_KV_SUM_LEN + WIRE_SIG_BYTES)
typedef struct wire_kv_sum {
    uint64_t max, gc;
    const uint8_t *sum; /* WIRE_KV_SUM_LEN bytes */
    const uint8_t *sig; /* WIRE_SIG_BYTES */
} wire_kv_sum;
/* Reads the block of a KV_DELTA whose `sum` is set. */
void wire_kv_sum_of(const wire_msg *m, wire_kv_sum *out);
void wire_put_kv_sum(buf_writer *w, uint64_t max, uint64_t gc, const uint8_t *sum,
                     const uint8_t *sig);

size_t wire_ident_block_size(const wire_ident *id);
void wire_put_ident_block(buf_writer *w, const wire_ident *id);
/* ALIVE with an identity trailer (`id` NULL or not present: none, as wire_put_alive). */
void wire_put_alive_ident(buf_writer *w, uint32_t inc, wire_str name, const rumor_addr *addr,
                          wire_str meta, const wire_ident *id);
/* SUSPECT, FAILED or LEFT with a signature trailer (`sig` NULL: none, as wire_put_accuse). */
void wire_put_accuse_ident(buf_writer *w, uint8_t type, uint32_t inc, wire_str name,
                           wire_str accuser, const uint8_t *sig);
/* PUSHPULL whose payload also holds `trailer_bytes` after the digest (1 + the blocks). */
void wire_put_pushpull_begin_ident(buf_writer *w, uint8_t flags, wire_str sender, uint32_t count,
                                   size_t members_bytes, size_t trailer_bytes);
/* Bytes of a KV_DELTA signature trailer for `count` entries. */
static inline size_t wire_kv_sigs_size(uint32_t count)
{
    return 1u + WIRE_SIG_BYTES + (size_t)count * WIRE_SIG_BYTES;
}

static inline wire_str wire_str_of(const void *p, size_t len)
{
    wire_str s = {(const uint8_t *)p, len};
    return s;
}

#endif
