/*
 * The node: state shared by the engine's files (node.c API and output queues, probe.c failure
 * detection, state.c membership rules, gossip.c dissemination, sync.c streams and full-state
 * sync, recv.c packet dispatch). Nothing here reads a clock: every function takes `now`.
 */
#ifndef RUMOR_CORE_NODE_H
#define RUMOR_CORE_NODE_H

#include "core/bcast.h"
#include "core/buf.h"
#include "core/hlc.h"
#include "core/ident.h"
#include "core/kv.h"
#include "core/members.h"
#include "core/msg.h"
#include "core/rng.h"
#include "core/seal.h"
#include "core/wire.h"
#include "rumor.h"

#define NODE_NEVER      UINT64_MAX
#define NODE_RELAYS_MAX 256   /* ping-req relays in flight for others */
#define NODE_EVENTS_MAX 65536 /* undrained events kept before new ones are dropped */
#define NODE_SEEDS_MAX  64
/* Drained queues and arenas larger than these are released rather than kept for reuse. */
#define NODE_QUEUE_KEEP     64
#define NODE_ARENA_KEEP     (64u * 1024u)
#define NODE_CONFIRMERS_MAX 16

/* Lifeguard §IV-B: a suspicion's timeout shrinks from max toward min as independent members
 * confirm it. */
typedef struct suspicion {
    member *m;
    uint64_t start;
    uint64_t deadline;
    uint32_t min_ms, max_ms;
    uint32_t k;                               /* confirmations expected */
    uint32_t n;                               /* independent confirmations seen */
    uint32_t confirmers[NODE_CONFIRMERS_MAX]; /* name hashes, the first accuser included */
    uint32_t nconfirmers;
    uint32_t idx; /* in node->susps */
    bool probed;  /* we probed the member ourselves during this suspicion */
} suspicion;

typedef struct relay {
    uint32_t seq;      /* our ping to the target */
    uint32_t orig_seq; /* the requester's probe */
    rumor_addr to;     /* the requester */
    uint64_t to_id;    /* the requester's seal id (sealed replies name their recipient) */
    bool nack;
    uint64_t deadline;
    uint64_t nack_at; /* when a silent target is reported (before deadline); 0: reported */
} relay;

typedef enum stream_kind {
    STREAM_PP_OUT = 1, /* we started a push-pull (join, periodic, reconnect) */
    STREAM_PING_OUT,   /* fallback probe */
    STREAM_IN,         /* the host accepted it */
    STREAM_KV_OUT,     /* we push key-value deltas (one frame; the acceptor closes) */
} stream_kind;

typedef struct stream {
    uint64_t id;
    uint8_t kind;
    bool join;
    bool digest_req;  /* STREAM_PP_OUT: we asked with a digest only */
    bool await_state; /* STREAM_IN: digests differed, the opener's full state follows */
    uint32_t seq;     /* STREAM_PING_OUT */
    /* Sealed streams (docs/protocol.md section 7.7): both sides' tokens, the frame numbers of
     * each direction, and the request an opener holds back until the acceptor's hello. */
    bool sealed;
    bool plain;      /* STREAM_IN: the opener spoke plaintext (transition mode) */
    bool hello_done; /* the tokens are exchanged */
    bool pending;    /* opener: the request waits for the hello */
    bool peer_aes;   /* the other side's frames say it opens AES-256-GCM */
    uint8_t pending_flags;
    uint8_t tok_open[SEAL_TOKEN_BYTES];
    uint8_t tok_acc[SEAL_TOKEN_BYTES];
    uint32_t seq_out, seq_in;
    uint8_t target_len; /* STREAM_PING_OUT: the probed name, for a held-back ping */
    char target[RUMOR_NAME_MAX];
    buf_writer held; /* STREAM_KV_OUT, sealed: the frame's messages, held back for the hello */
    rumor_addr peer;
    uint64_t started;
    uint64_t deadline;
    buf_writer in;
} stream;

typedef struct out_dgram {
    rumor_addr to;
    size_t off, len;
} out_dgram;

typedef struct out_sop {
    uint8_t kind;
    uint64_t id;
    rumor_addr to;
    size_t off, len;
} out_sop;

typedef struct ev_rec {
    uint8_t type;
    uint8_t state;
    uint16_t meta_len;
    uint32_t inc;
    uint64_t at;
    uint64_t since;
    rumor_addr addr;
    uint8_t *meta;
    bool is_self;
    bool deleted;
    bool shared;
    uint16_t key_len;
    uint8_t *key; /* KV_CHANGE */
    uint64_t version, old_version;
    /* User events and queries (msg_*.c): `blob` holds the name, a NUL, then the payload. */
    uint8_t *blob;
    uint16_t msg_name_len;
    uint32_t payload_len;
    uint64_t ltime, query_id, deadline;
    rumor_query_result qres;
    char name[RUMOR_NAME_MAX + 1];
    char accuser[RUMOR_NAME_MAX + 1];
    bool has_pk;
    uint8_t pk[WIRE_KEY_BYTES]; /* identities on: the member's key */
} ev_rec;

typedef struct probe_state {
    bool active;
    bool acked;
    bool indirect_sent;
    uint32_t seq;
    member *target;      /* cleared if the member is reaped mid-probe */
    uint32_t target_inc; /* a probe speaks only for the life it started on */
    uint64_t start;
    uint64_t timeout_at;
    uint64_t end_at;
    uint32_t expected_nacks;
    uint32_t nacks;
} probe_state;

struct rumor_node {
    rumor_allocator alloc;
    rumor_settings s;
    char name[RUMOR_NAME_MAX + 1];
    size_t name_len;
    uint8_t label[RUMOR_LABEL_MAX];
    size_t label_len;
    rng rng;

    members mem;
    member *self;
    bcast_queue bq;
    uint32_t seq;
    uint32_t awareness;
    bool leaving;
    /* Our signed alive claim was gossiped in this life (join, refute, metadata change). A node
     * started from restored members never announced itself: few hold its claim, and with
     * identities nobody can pass its record on without it (state.c, introduce_self). */
    bool self_told;
    bool leave_done;
    uint64_t leave_deadline;
    uint64_t now;

    probe_state probe;
    uint64_t next_probe;
    uint64_t next_gossip;
    uint64_t last_gossip;
    uint64_t next_pushpull;
    uint64_t next_reconnect;
    uint64_t next_reap;
    uint64_t next_learn;   /* rate limit of syncs with unknown senders */
    uint32_t pp_settle_ms; /* after a join: the current gap of the settling push-pulls, 0 = none */

    relay *relays;
    size_t nrelays, relays_cap;
    suspicion **susps;
    size_t nsusps, susps_cap;
    stream **streams;
    size_t nstreams, streams_cap;
    uint64_t next_stream_id;
    rumor_addr seeds[NODE_SEEDS_MAX];
    size_t nseeds;

    /* Outbound datagrams: bytes in `dout`, records in `dq`, drained from dq_head. */
    buf_writer dout;
    out_dgram *dq;
    size_t dq_len, dq_cap, dq_head;
    size_t cur_start;   /* packet being built */
    size_t cur_env;     /* its sealed envelope (when sealing) */
    uint8_t cur_cipher; /* and the cipher it is sealed with (SEAL_CIPHER_*) */
    bool cur_ready;     /* its recipient's epoch is known (or not sealing): news may ride along */
    rumor_addr cur_to;
    size_t pkt_head; /* bytes of a datagram before its first message */
    size_t pkt_max;  /* bytes a datagram may fill before sealing adds its tag */
    /* Outbound stream operations, likewise. */
    buf_writer sout;
    out_sop *sq;
    size_t sq_len, sq_cap, sq_head;
    /* Events, drained from ev_head; `ev_last` backs the pointers of the last polled event. */
    ev_rec *evq;
    size_t ev_len, ev_cap, ev_head;
    ev_rec ev_last;
    /* keyq.c: answers to key operations that changed the keyring, held until the host has taken
     * their RUMOR_EVENT_KEYRING_CHANGE (and so saved the keyring), oldest first. */
    struct keyq_held *keyq_held;
    size_t keyq_held_len, keyq_held_cap;
    size_t keyq_taken; /* of those, how many events the host has taken */

    /* Replicated key-value state (kvnode.c). */
    kv_store kv;
    kv_origin *kv_self;
    hlc clock; /* stamps of shared writes */
    uint64_t next_kv_sync;
    uint64_t next_kv_collect;
    uint64_t next_kv_sum;    /* identities: next signing of our keyspace sum, check of replicas' */
    uint64_t kv_sum_seen[2]; /* our (max_version, gc_version) at the previous of those rounds */
    uint32_t kv_sum_pos;     /* the origin whose signed keyspace sum an OFFER carries next */
    size_t kv_digest_pos;    /* where the next digest slice starts in the member order */
    uint64_t kv_retire_at;   /* next pass retiring our superseded shared entries */
    uint32_t kv_mark;        /* generation for kv_origin.mark */
    uint64_t kv_asked_at;    /* when we last asked a rumor's sender to fill a gap */
    buf_writer kv_scratch;   /* one key-value message being assembled */

    msg_state msg; /* user events and queries (msg_*.c) */
    /* Encryption (seal.c): keyring, nonces, replay windows. */
    seal_state seal;
    ident_state *ident; /* per-node identity (ident.c); NULL when off */

    wire_msg *msgs; /* decode scratch, WIRE_MSGS_MAX (more for a large stream frame) */
    size_t msgs_cap;
    const rumor_addr *from; /* sender of the packet being applied, NULL otherwise */
    uint64_t from_id;       /* its seal id when it came sealed, 0 otherwise */
    rumor_stats st;
};

/* node.c */
/* The next free event record (not yet counted: fill it, then ev_len++), or NULL when the queue
 * is full (counted) or memory ran out. */
ev_rec *node_event_slot(rumor_node *n);
void node_event(rumor_node *n, uint8_t type, const member *m, const char *accuser,
                size_t accuser_len);
void node_drop(rumor_node *n, rumor_drop_reason r);
/* Starts a datagram to `to`. `dest` is the recipient's seal id (node_dest / n->from_id): a
 * sealed datagram names its recipient so that it cannot be replayed to another member. */
bool node_pkt_begin(rumor_node *n, const rumor_addr *to, uint64_t dest);
void node_pkt_end(rumor_node *n, bool piggyback);
/* Takes back the datagram being built (nothing fitted). */
void node_pkt_abort(rumor_node *n);
/* True when the datagram being built holds no message yet. */
bool node_pkt_empty(const rumor_node *n);
/* The seal id of a member or name, for node_pkt_begin (0 when this node does not seal). A
 * member's is hashed once and kept (members.seal_ids). */
uint64_t node_dest(rumor_node *n, const member *m);
uint64_t node_dest_name(rumor_node *n, wire_str name);
buf_writer *node_pkt(rumor_node *n);
/* True when a datagram to seal id `dest` would be taken in full: this node does not seal, or it
 * knows the recipient's current epoch (docs/protocol.md section 3.1.4). */
bool node_dest_ready(const rumor_node *n, uint64_t dest);
/* Sends `dest` our own ALIVE (and news, when its epoch is known), so that it learns our epoch:
 * the hello to a member whose epoch we do not know, and the notice answering a datagram that
 * named an earlier life of ours. Returns false when nothing was sent. */
bool node_epoch_notice(rumor_node *n, const rumor_addr *to, uint64_t dest);
/* Sends `dest` a datagram with our own signed ALIVE, and queued news when `piggyback` (and its
 * epoch is known). False when nothing was sent (leaving, or no claim to sign). */
bool node_send_self(rumor_node *n, const rumor_addr *to, uint64_t dest, bool piggyback);
/* For a datagram of news to `dest`: when its epoch is not known, the news would be refused, so
 * say hello instead and return true (the caller skips `dest`); false when news may go. */
bool node_hello_instead(rumor_node *n, const rumor_addr *to, uint64_t dest);
/* Sends `dest` a datagram of queued news, if there is any (nothing is sent otherwise). */
void node_catch_up(rumor_node *n, const rumor_addr *to, uint64_t dest);
uint32_t node_retransmit_limit(const rumor_node *n);
uint32_t node_scale(const rumor_node *n, uint32_t ms);
wire_str node_self_name(const rumor_node *n);
bool node_sop(rumor_node *n, uint8_t kind, uint64_t id, const rumor_addr *to, size_t off,
              size_t len);

/* state.c: membership rules (memberlist's aliveNode/suspectNode/deadNode), suspicion, reaping.
 * `id` is the identity a received claim came with (ident.h); NULL for this node's own claims. */
/* Alive news. A new member is gossiped on, also when learned from a sync: when many nodes join
 * at once that second wave is what reaches everyone. */
void state_alive(rumor_node *n, uint32_t inc, wire_str name, const rumor_addr *addr, wire_str meta,
                 const wire_ident *id, uint64_t now);
/* Adds a member known to be absent from the table (the caller looked it up); `quiet` skips
 * gossiping it (rumor_node_restore). */
void state_alive_new(rumor_node *n, wire_str name, uint32_t inc, const rumor_addr *addr,
                     wire_str meta, bool quiet, const wire_ident *id, uint64_t now);
void state_suspect(rumor_node *n, uint32_t inc, wire_str name, wire_str accuser,
                   const wire_ident *id, uint64_t now);
void state_failed(rumor_node *n, uint32_t inc, wire_str name, wire_str accuser,
                  const wire_ident *id, uint64_t now);
void state_left(rumor_node *n, uint32_t inc, wire_str name, const wire_ident *id, uint64_t now);
void state_broadcast_alive(rumor_node *n, member *m);
void state_refute(rumor_node *n, uint32_t accused_inc, uint64_t now);
void state_suspicion_timers(rumor_node *n, uint64_t now);
uint64_t state_suspicion_deadline(const rumor_node *n);
void state_reap(rumor_node *n, uint64_t now);
void state_forget(rumor_node *n, member *m);

/* probe.c */
void probe_tick(rumor_node *n, uint64_t now);
uint64_t probe_deadline(const rumor_node *n);
void probe_on_ping(rumor_node *n, const rumor_addr *from, const wire_msg *m, uint64_t now);
void probe_on_ping_req(rumor_node *n, const rumor_addr *from, const wire_msg *m, uint64_t now);
void probe_on_ack(rumor_node *n, uint32_t seq, uint64_t now);
void probe_on_nack(rumor_node *n, uint32_t seq);
void probe_awareness(rumor_node *n, int delta);

/* gossip.c */
void gossip_tick(rumor_node *n, uint64_t now);
void gossip_eager(rumor_node *n, uint64_t now);
size_t gossip_pick(rumor_node *n, member **out, size_t k, const member *exclude, bool dead_too,
                   uint64_t now);

/* sync.c */
void sync_tick(rumor_node *n, uint64_t now);
uint64_t sync_deadline(const rumor_node *n);
/* Starts a push-pull. `digest_only` asks to compare digests before any state moves (periodic
 * anti-entropy); join, reconnect and learning syncs send full state at once. */
int sync_pushpull(rumor_node *n, const rumor_addr *to, bool join, bool digest_only, uint64_t now);
int sync_ping(rumor_node *n, const member *target, uint32_t seq, uint64_t now);
void sync_free(rumor_node *n);
void sync_learn(rumor_node *n, const rumor_addr *from, uint64_t now);
uint32_t sync_pushpull_interval(const rumor_node *n);
/* Opens a KV stream to `to` carrying one frame of KV_DELTAs for what the sender of the digest
 * list `r` (`count` entries) lacks. With SYNC_KV_ALL the list is a complete digest; with
 * SYNC_KV_ASK our own complete digest follows the deltas and the peer answers with what we
 * lack before it closes. At most a few such streams are open at once, one per peer. Returns 1
 * when a stream carries it (a new one, or one already on its way to `to`), 0 when there was
 * nothing to send, or a negative error. */
#define SYNC_KV_ALL 0x01
#define SYNC_KV_ASK 0x02
int sync_kv_push(rumor_node *n, const rumor_addr *to, buf_reader r, uint32_t count, unsigned how,
                 uint64_t now);

/* kvnode.c */
int kvnode_init(rumor_node *n);
void kvnode_tick(rumor_node *n, uint64_t now);
/* Identities: signs our keyspace sum when it moved (and rumor-mongers it), and takes again a
 * replica that sat at its origin's signed (max, gc) with another sum for too long. */
void kvnode_sign_sum(rumor_node *n);
void kvnode_check_sums(rumor_node *n, uint64_t now);
/* Writes one origin's signed keyspace sum (a KV_DELTA without entries) within `room` bytes, in
 * turn over the origins we hold as their sums say; false when none. */
bool kvnode_put_sum_news(rumor_node *n, buf_writer *w, size_t room);
uint64_t kvnode_deadline(const rumor_node *n);
void kvnode_on_digest(rumor_node *n, const wire_msg *m, uint64_t now);
void kvnode_on_delta(rumor_node *n, const wire_msg *m, uint64_t now);
void kvnode_forget(rumor_node *n, const char *name, size_t len);
/* Appends the round's first step (the store sum) to a packet being built when a round is due;
 * returns whether it did. */
bool kvnode_piggyback(rumor_node *n, buf_writer *w, uint64_t now);
/*
 * Appends a KV_DELTA of `o` for a replica that holds everything up to `since` (or must be reset
 * to the horizon first), with as many entries as fit `budget` bytes, oldest first. Returns false
 * when nothing (not even one entry) fits. When `cut` is given and entries were left out, raises
 * *cut to KV_CUT, or to KV_CUT_BIG when the first entry left out would not fit `big_over` bytes
 * even on its own.
 */
#define KV_CUT     1
#define KV_CUT_BIG 2
bool kvnode_put_delta(rumor_node *n, buf_writer *w, kv_origin *o, uint64_t since, uint64_t their_gc,
                      uint8_t flags, size_t budget, size_t big_over, int *cut);
/* Whether a replica at (their_max, their_gc) lacks anything of `o` we could send: newer
 * entries, a reset, or (identities) the signed horizon we hold. */
bool kvnode_lacks(const rumor_node *n, const kv_origin *o, uint64_t their_max, uint64_t their_gc);
/* Asks `to` for what it holds of `o` after our version (a KV_DIGEST REPLY of one entry). */
void kvnode_ask(rumor_node *n, const rumor_addr *to, const kv_origin *o);
/* Retires our shared entries that newer writes of other origins superseded a while ago. */
void kvnode_retire(rumor_node *n, uint64_t now);
/* kvround.c: key-value state on streams. Appends KV_DELTAs (at most `budget` bytes and
 * `msgs_max` messages) for what the sender of a digest list lacks; returns the messages
 * appended. A stream frame holds at most WIRE_STREAM_MSGS_MAX messages: KV_STREAM_DELTAS_MAX
 * leaves room for the frame's others (CLOCKS, PUSHPULL, the digest). */
#define KV_STREAM_DELTAS_MAX (WIRE_STREAM_MSGS_MAX - 16u)
size_t kvnode_put_deltas_for(rumor_node *n, buf_writer *w, buf_reader r, uint32_t count, bool all,
                             size_t budget, size_t msgs_max);
/* Our complete digest (KV_DIGEST with ALL): its encoded size, and the message. */
size_t kvnode_digest_all_size(const rumor_node *n);
void kvnode_put_digest_all(rumor_node *n, buf_writer *w);

/* msg_event.c, msg_query.c: user events and queries */
bool msg_settings_valid(const rumor_settings *s);
int msg_init(rumor_node *n);
void msg_free(rumor_node *n);
void msg_tick(rumor_node *n, uint64_t now);
uint64_t msg_deadline(const rumor_node *n);
void msg_on_user_event(rumor_node *n, const wire_msg *m, uint64_t now);
void msg_on_query(rumor_node *n, const wire_msg *m, uint64_t now);
void msg_on_query_resp(rumor_node *n, const wire_msg *m, uint64_t now);
void msg_on_clocks(rumor_node *n, const wire_msg *m);
/* Push-pull frames carry both Lamport clocks and a sum over the recent user events (CLOCKS,
 * before the PUSHPULL); `join` asks the peer for no past events. An answer (`reply`) also
 * carries the recent events when the request's sum differed, in at most `room` bytes, after the
 * PUSHPULL: anti-entropy for events that gossip missed, as Serf's push-pull does. msg_put_events
 * returns how many events it wrote. */
void msg_put_clocks(rumor_node *n, buf_writer *w, bool join);
/* Our first join's answer was merged: from now on an event older than our event clock that a
 * push-pull brings (repair) is remembered but neither delivered nor passed on, as the join asked
 * for no past events (Serf's eventMinTime). Later joins (reconnects) leave the floor. */
void msg_join_floor(rumor_node *n);
size_t msg_put_events(rumor_node *n, buf_writer *w, bool reply, size_t room);
/* An event record for a user event or query: `from` names where it comes from; `name` and
 * `payload` are copied. NULL when the event queue is full or memory ran out. */
ev_rec *msg_event(rumor_node *n, uint8_t type, wire_str from, wire_str name, wire_str payload);
/* Spreads an encoded message: the application broadcast class, and a datagram at once to
 * gossip_nodes random live members. */
bool msg_spread(rumor_node *n, const buf_writer *w, uint64_t now);
/* rumor_node_query without the reserved-name check: the engine's own queries (keyq.c).
 * `resend`: send the query again straight to matched members that have not answered. */
int msg_query_ask(rumor_node *n, const char *name, const void *payload, size_t len,
                  const rumor_query_params *p, bool resend, uint64_t *id, uint64_t now);

/* keyq.c: cluster key operations through the reserved query RUMOR_KEYS_QUERY_NAME */
bool keyq_is_name(wire_str name);
/* Decodes and applies a key operation request, writing the answer to `buf`; returns its
 * length (0 when it did not fit). `sealed`: the request reached this node sealed (or is its
 * own). `*changed` says whether the keyring changed, `*op` which operation was asked. */
size_t keyq_answer(rumor_node *n, wire_str req, bool sealed, uint8_t *buf, size_t cap,
                   bool *changed, uint8_t *op);
/* Answers query `in_id` (a key operation from `origin`). When the keyring changed it reports
 * RUMOR_EVENT_KEYRING_CHANGE and holds the answer until the host has taken that event: a member
 * confirms only a keyring its host has saved. */
void keyq_serve(rumor_node *n, uint64_t in_id, wire_str origin, wire_str req, bool sealed,
                uint64_t now);
/* rumor_node_poll_event hands out the KEYRING_CHANGE event of held answer `in_id`; when the host
 * comes back for the next event (done with that one), keyq_release sends the answers. */
void keyq_event_taken(rumor_node *n, uint64_t in_id);
void keyq_release(rumor_node *n);
void keyq_free(rumor_node *n);

/* recv.c */
/* Checks a packet's bound, header and label. Returns the header length, or a negative error
 * (counted). */
int recv_header(rumor_node *n, const uint8_t *data, size_t len, bool stream, wire_header *h);
/* Decodes the messages of a packet body into n->msgs. Returns the count or a negative error
 * (counted). `allow_empty`: a body without messages is valid (a sealed stream hello). */
int recv_msgs(rumor_node *n, const uint8_t *p, size_t len, bool stream, bool allow_empty);
int recv_reject(rumor_node *n, rumor_drop_reason r);
/* Gives back the decode array's growth after a large stream frame. */
void recv_shrink(rumor_node *n);
/* A datagram: header, envelope (opened, destination and replay checked), messages, apply. */
int recv_packet(rumor_node *n, const rumor_addr *from, const uint8_t *data, size_t len,
                uint64_t now);
void recv_apply(rumor_node *n, const rumor_addr *from, const wire_msg *m, uint64_t now);

#endif
