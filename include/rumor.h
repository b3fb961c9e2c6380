/*
 * rumor: gossip membership, failure detection and dissemination.
 *
 * This is the one installed header of the library. The engine behind it is sans-I/O: it never
 * reads a clock, opens a socket, starts a thread or keeps global state. The host passes the
 * current time (`now`, milliseconds on any monotonic scale) into every call, feeds received
 * datagrams and stream bytes in, drains datagrams, stream operations and events out, and sleeps
 * until the one deadline that rumor_node_deadline() reports.
 *
 * A minimal host loop:
 *
 *     rumor_settings s;
 *     rumor_settings_default(&s, RUMOR_PROFILE_LAN);
 *     s.name = "node-a"; s.addr = my_addr; s.seed = random_seed;
 *     rumor_node *n;
 *     rumor_node_new(&n, &s, now());
 *     rumor_node_join(n, seeds, nseeds, now());
 *     for (;;) {
 *         wait for a datagram, stream bytes or rumor_node_deadline(n);
 *         rumor_node_receive(...) / rumor_node_stream_*(...) / rumor_node_tick(n, now());
 *         while (rumor_node_poll_datagram(n, &d)) send d.data to d.to;
 *         while (rumor_node_poll_stream(n, &op)) open / write / close a connection;
 *         while (rumor_node_poll_event(n, &ev)) react;
 *     }
 *
 * Every function returns 0 or a negative RUMOR_ERR_* code unless documented otherwise.
 * rumor_strerror() names a code. Input from the network never crashes the engine: it is
 * rejected, counted by reason in rumor_stats, and leaves state untouched.
 */
#ifndef RUMOR_H
#define RUMOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(RUMOR_BUILDING) && defined(__GNUC__)
#define RUMOR_API __attribute__((visibility("default")))
#else
#define RUMOR_API
#endif

#define RUMOR_VERSION_MAJOR 0
#define RUMOR_VERSION_MINOR 1
#define RUMOR_VERSION_PATCH 0

/* Wire protocol version spoken by this library (docs/protocol.md). */
#define RUMOR_PROTOCOL_VERSION 1

/* Hard bounds. Settings may lower, never raise, them. */
#define RUMOR_NAME_MAX          128                   /* bytes of a node name, no NUL inside */
#define RUMOR_ADDR_MAX          24                    /* bytes of an opaque host address */
#define RUMOR_LABEL_MAX         64                    /* bytes of a cluster label */
#define RUMOR_META_MAX          4096                  /* bytes of node metadata (tags) */
#define RUMOR_PACKET_MAX        65000                 /* bytes of one datagram */
#define RUMOR_STREAM_FRAME_MAX  (64u * 1024u * 1024u) /* bytes of one stream frame */
#define RUMOR_KEY_MAX           256                   /* bytes of a key */
#define RUMOR_KV_VALUE_MAX      (1024u * 1024u)       /* bytes of one key-value value */
#define RUMOR_KEY_BYTES         32                    /* bytes of an encryption key */
#define RUMOR_KEYRING_MAX       16                    /* encryption keys held at once */
#define RUMOR_SEAL_SECRET_BYTES 32                    /* host entropy for sealing nonces */
#define RUMOR_EVENT_NAME_MAX    128                   /* bytes of a user event or query name */
#define RUMOR_TAG_KEY_MAX       128                   /* bytes of a query tag filter's key */
#define RUMOR_TAG_VALUE_MAX     512                   /* bytes of a query tag filter's value */

/* Per-node identity (docs/protocol.md section 12): Ed25519 keys and signatures. */
#define RUMOR_IDENTITY_KEY_BYTES 32 /* a public key, or the secret seed of a key pair */
#define RUMOR_IDENTITY_SIG_BYTES 64 /* a signature, and a certificate */

/* Error codes. 0 is success. */
enum {
    RUMOR_OK = 0,
    RUMOR_ERR_INVALID = -1,   /* an argument or setting is out of range */
    RUMOR_ERR_NOMEM = -2,     /* the allocator failed; state unchanged */
    RUMOR_ERR_TOO_BIG = -3,   /* a value exceeds a configured limit; state unchanged */
    RUMOR_ERR_MALFORMED = -4, /* input could not be decoded; state unchanged */
    RUMOR_ERR_STATE = -5,     /* the call is not valid in the node's current state */
    RUMOR_ERR_NOT_FOUND = -6, /* no such member, stream or key */
    RUMOR_ERR_FULL = -7,      /* a table or queue is at its configured cap */
    RUMOR_ERR_VERSION = -8,   /* unknown protocol or settings version */
    RUMOR_ERR_LABEL = -9,     /* packet belongs to another cluster label */
    RUMOR_ERR_AUTH = -10,     /* authentication failed */
    RUMOR_ERR_EXPIRED = -11,  /* the deadline of what the call refers to has passed */
};

/* Returns a static, human-readable name for an error code. */
RUMOR_API const char *rumor_strerror(int err);

/* ------------------------------------------------------------------------------------------ */
/* Addresses                                                                                   */

/*
 * An address is opaque to the engine: up to RUMOR_ADDR_MAX bytes that the host understands.
 * The engine copies, compares and transmits them. All hosts in one cluster must agree on the
 * encoding. The rumor agent uses rumor_addr_from_ip(): family byte (4 or 6), the address bytes
 * in network order, then the port big-endian (7 or 19 bytes).
 */
typedef struct rumor_addr {
    uint8_t len;
    uint8_t bytes[RUMOR_ADDR_MAX];
} rumor_addr;

/* True when both addresses hold the same bytes. */
RUMOR_API bool rumor_addr_equal(const rumor_addr *a, const rumor_addr *b);

/*
 * Encodes an IP address and port in the agent's address format. `family` is 4 or 6, `ip`
 * points to 4 or 16 bytes in network order. Returns RUMOR_ERR_INVALID for another family.
 */
RUMOR_API int rumor_addr_from_ip(rumor_addr *out, int family, const uint8_t *ip, uint16_t port);

/*
 * Decodes an address in the agent's format. Returns RUMOR_ERR_MALFORMED when `a` is not one.
 * `ip` must hold 16 bytes.
 */
RUMOR_API int rumor_addr_to_ip(const rumor_addr *a, int *family, uint8_t *ip, uint16_t *port);

/*
 * Formats an address: "1.2.3.4:7946" or "[::1]:7946" for the agent's format, hex otherwise.
 * Always NUL-terminates when cap > 0. Returns the length written (without the NUL).
 */
RUMOR_API size_t rumor_addr_format(const rumor_addr *a, char *out, size_t cap);

/* ------------------------------------------------------------------------------------------ */
/* Settings                                                                                    */

typedef enum rumor_profile {
    RUMOR_PROFILE_LAN = 0,
    RUMOR_PROFILE_WAN = 1,
    RUMOR_PROFILE_LOCAL = 2,
} rumor_profile;

/* Injectable allocator. All engine memory goes through it. NULL selects malloc/realloc/free. */
/* How replicated state is reconciled (Demers et al. 1987): each round a node sends a peer the
 * digest {origin -> highest version held}; with PUSH the peer answers what it lacks and the node
 * sends it, with PULL the peer sends what the node lacks, PUSH_PULL does both. */
typedef enum rumor_sync_mode {
    RUMOR_SYNC_PUSH_PULL = 0,
    RUMOR_SYNC_PUSH = 1,
    RUMOR_SYNC_PULL = 2,
} rumor_sync_mode;

/* Parses "push-pull", "push" or "pull". Returns RUMOR_ERR_INVALID for anything else. */
RUMOR_API int rumor_sync_mode_parse(const char *text, rumor_sync_mode *out);

typedef struct rumor_allocator {
    void *(*alloc)(void *ud, size_t size);
    void *(*realloc)(void *ud, void *ptr, size_t size);
    void (*free)(void *ud, void *ptr);
    void *ud;
} rumor_allocator;

#define RUMOR_SETTINGS_VERSION 1

/*
 * Engine settings. Fill with rumor_settings_default(), then change fields. The engine copies
 * everything (strings too) at rumor_node_new() and keeps no pointer into this struct.
 */
typedef struct rumor_settings {
    uint32_t version; /* RUMOR_SETTINGS_VERSION */

    /* Identity. */
    const char *name;          /* unique node name, 1..RUMOR_NAME_MAX bytes; required */
    rumor_addr addr;           /* the address other members reach this node at; required */
    const char *cluster_label; /* packets with another label are dropped; NULL or "" = none */
    uint64_t seed;             /* seeds the engine's PRNG; the host chooses it */
    uint32_t incarnation;      /* starting incarnation (a restarted node passes its last + 1) */

    /* Failure detection (SWIM §4, Lifeguard §IV). */
    uint32_t probe_interval_ms;  /* one probe per interval */
    uint32_t probe_timeout_ms;   /* wait for a direct ack before asking others */
    uint32_t indirect_checks;    /* k members asked to ping-req a silent target */
    uint32_t suspicion_mult;     /* suspicion timeout min = mult * max(1, log10 N) * interval */
    uint32_t suspicion_max_mult; /* suspicion timeout max = max_mult * min */
    uint32_t awareness_max;      /* local health multiplier cap (score in [0, max-1]) */
    bool stream_fallback;        /* also probe over a stream when the direct ping fails */

    /* Dissemination. */
    uint32_t retransmit_mult;     /* each broadcast sent mult * ceil(log10(N+1)) times */
    uint32_t gossip_interval_ms;  /* gossip round period */
    uint32_t gossip_nodes;        /* members per gossip round and per eager push */
    uint32_t gossip_to_dead_ms;   /* keep gossiping to failed members this long */
    uint32_t packet_bytes_max;    /* datagram budget, compound packets fill up to it */
    uint32_t broadcast_queue_max; /* broadcasts held at once, per class */

    /* Anti-entropy, rejoin and reaping. */
    uint32_t pushpull_interval_ms;  /* full-state sync period for N <= 32 (scaled above); 0=off */
    uint32_t reconnect_interval_ms; /* try one failed member or seed this often; 0 = off */
    uint32_t reconnect_timeout_ms;  /* stop trying a failed member after this long */
    uint32_t reap_failed_ms;        /* a failed member is forgotten after this long */
    uint32_t reap_left_ms;          /* a member that left is forgotten after this long */
    uint32_t stream_timeout_ms;     /* a stream exchange must finish within this */
    uint32_t leave_timeout_ms;      /* give up propagating a leave after this long */

    /* Limits. */
    uint32_t meta_bytes_max;         /* node metadata cap, <= RUMOR_META_MAX */
    uint32_t members_max;            /* member table cap */
    uint32_t streams_max;            /* concurrent streams cap */
    uint32_t stream_frame_bytes_max; /* one stream frame cap, <= RUMOR_STREAM_FRAME_MAX */

    /* Replicated key-value state. */
    uint32_t kv_sync_interval_ms; /* anti-entropy round period; 0 = off */
    rumor_sync_mode kv_sync_mode; /* default RUMOR_SYNC_PUSH_PULL */
    uint32_t kv_value_bytes_max;  /* one value, <= RUMOR_KV_VALUE_MAX and one stream frame;
                                     values too big for a datagram travel over streams */
    uint32_t kv_keys_max;         /* keys per node */
    uint32_t kv_node_bytes_max;   /* key + value bytes per node */
    uint64_t kv_total_bytes_max;  /* key + value bytes over all replicas held */
    uint32_t kv_tombstone_ttl_ms; /* a delete is remembered this long before collection */
    int64_t wallclock_offset_ms;  /* now + this = Unix time in ms, for shared-key stamps */
    uint32_t kv_rumor_transmits;  /* each node passes a fresh write on this many times through
                                     the broadcast queue (0 = anti-entropy only); default 4 */

    /* Per-node identity (docs/protocol.md section 12). Off unless `identity` is set; when on,
     * this node signs its own claims (alive, leave, accusations, key-value writes) with the key
     * pair of `identity_seed` and refuses every member claim that is not signed by its owner, so
     * every member of the cluster must have one. A name is bound to the first key seen for it
     * while the member is known (trust on first use); with `identity_ca`, only members holding
     * a certificate from that authority are admitted and the certificate binds the name.
     * The host calls libsodium's sodium_init() once before (the engine never does: it reads
     * OS entropy), as for encryption. */
    bool identity;
    uint8_t identity_seed[RUMOR_IDENTITY_KEY_BYTES];   /* secret; copied, wiped at _del */
    bool identity_ca;                                  /* admit only certified members */
    uint8_t identity_ca_key[RUMOR_IDENTITY_KEY_BYTES]; /* the authority's public key */
    bool identity_has_cert;                            /* this node holds a certificate: */
    uint8_t identity_cert[RUMOR_IDENTITY_SIG_BYTES];   /* rumor_identity_cert_sign() output */
    uint64_t identity_cert_expires_ms; /* Unix ms the certificate ends (0 = never) */

    /* User events and queries (Serf's). Both are ordered by their own Lamport clock and
     * remembered for a window of that clock to drop duplicates; anything older is stale. */
    uint32_t event_bytes_max; /* name + payload of one user event (default 512) */
    uint32_t event_buffer;    /* Lamport times of user events remembered (64) */
    uint32_t query_bytes_max; /* name + payload + filters of one query, as encoded (1024) */
    uint32_t query_response_bytes_max; /* payload of one query response (1024) */
    uint32_t query_buffer;             /* Lamport times of queries remembered (64) */
    uint32_t query_timeout_mult;       /* default timeout = gossip interval * mult *
                                          ceil(log10(N+1)) (16, as Serf) */
    uint32_t queries_max;              /* queries this node asked, running or finished, held */
    uint32_t queries_inbound_max;      /* queries this node may still answer, held */
    /*
     * Matches a query's tag filter against a member's metadata (the engine treats metadata as
     * opaque bytes): true when `meta` holds tag `key` with a value `value` matches. `key` and
     * `value` are NUL-terminated. The host decides the encoding and what "matches" means (the
     * rumor agent: metadata is a JSON object of tags, `value` an anchored regular expression).
     * NULL: a tag filter matches no member. Called from rumor_node_receive() and
     * rumor_node_query(); it must not call back into the node.
     */
    bool (*query_tag_match)(void *ud, const uint8_t *meta, size_t meta_len, const char *key,
                            const char *value);
    void *query_tag_match_ud;

    const rumor_allocator *allocator; /* NULL = libc; the pointed struct is copied */

    /*
     * Encryption (docs/protocol.md section 3.1). With a keyring, every datagram and stream frame
     * is sealed under the primary key (XChaCha20-Poly1305, or AES-256-GCM to members that open
     * it: seal_cipher below), and only packets that open under one of the keys, are addressed
     * to this node and are not replays are accepted. Without keys (nkeys 0) the node speaks
     * plaintext and drops sealed packets. The engine copies the keys and wipes its copies when
     * it drops them; the caller wipes its own. AES-256-GCM needs the host to have called
     * sodium_init() (libsodium's CPU detection); without it the node uses XChaCha20 only.
     */
    const uint8_t (*keys)[RUMOR_KEY_BYTES]; /* the keyring; keys[0] is the primary */
    size_t nkeys;                           /* 0..RUMOR_KEYRING_MAX */
    /* Entropy from the host (randombytes_buf in the agent), from which nonces and stream tokens
     * are derived; the engine itself never reads OS randomness. Required with keys (all zero is
     * refused). Fresh entropy per life keeps nonces unique even if an epoch repeats. */
    uint8_t seal_secret[RUMOR_SEAL_SECRET_BYTES];
    /* This life's epoch: every life of a node name must use a larger one than the last (the
     * agent takes max(Unix ms, stored epoch + 1)). Receivers reject packets from an older life
     * of a sender. 0 = now + wallclock_offset_ms at rumor_node_new. */
    uint64_t seal_epoch;
    /* Migration to or from encryption (memberlist's GossipVerifyIncoming / Outgoing set to
     * false): also accept unsealed packets, and send unsealed ones. Both false by default. */
    bool seal_accept_plaintext;
    bool seal_send_plaintext;
    /* Cluster key operations (rumor_node_keys_query): apply the install / use / remove / list
     * requests that other members send through the reserved `_rumor-keys` query, and answer
     * them. Off by default: a host that turns it on saves the keyring on
     * RUMOR_EVENT_KEYRING_CHANGE (else a restart brings back the keys it started with). When
     * off, the node answers every request with an error, so the asker sees it did not apply. */
    bool keys_query;
    /* Which AEADs this node seals and opens with (RUMOR_SEAL_CIPHER_*; docs/protocol.md section
     * 3.1). Every sealed node opens XChaCha20-Poly1305; AES-256-GCM is faster where the CPU has
     * AES-NI, and is used to members that say they open it too. */
    uint8_t seal_cipher;
} rumor_settings;

/* rumor_settings.seal_cipher. */
enum {
    /* AES-256-GCM where this CPU runs it (and to members that do), else XChaCha20-Poly1305. */
    RUMOR_SEAL_CIPHER_AUTO = 0,
    /* XChaCha20-Poly1305 only: the node neither seals nor opens AES-256-GCM and does not offer
     * it, as a node without AES-NI. */
    RUMOR_SEAL_CIPHER_XCHACHA,
    /* As AUTO, but rumor_node_new fails (RUMOR_ERR_INVALID) on a CPU without AES-NI. */
    RUMOR_SEAL_CIPHER_AESGCM,
};

/*
 * Fills `s` with the defaults of `profile` (timings from memberlist's LAN, WAN and local
 * profiles) and clears name, address, label and seed. Returns RUMOR_ERR_INVALID for an
 * unknown profile.
 */
RUMOR_API int rumor_settings_default(rumor_settings *s, rumor_profile profile);

/* Parses "lan", "wan" or "local". Returns RUMOR_ERR_INVALID for anything else. */
RUMOR_API int rumor_profile_parse(const char *text, rumor_profile *out);

/* ------------------------------------------------------------------------------------------ */
/* Members and events                                                                          */

typedef enum rumor_member_state {
    RUMOR_MEMBER_ALIVE = 0,
    RUMOR_MEMBER_SUSPECT = 1,
    RUMOR_MEMBER_FAILED = 2,
    RUMOR_MEMBER_LEFT = 3,
} rumor_member_state;

/* "alive", "suspect", "failed", "left". */
RUMOR_API const char *rumor_member_state_name(rumor_member_state st);

/*
 * A snapshot of one member. Pointers (`name`, `meta`) stay valid until the next call that
 * changes the node (receive, tick, join, leave, set_meta, poll_*), and must not be freed.
 */
typedef struct rumor_member {
    const char *name; /* NUL-terminated */
    size_t name_len;
    rumor_addr addr;
    uint32_t incarnation;
    rumor_member_state state;
    const uint8_t *meta;
    size_t meta_len;
    uint64_t state_since_ms; /* `now` when the local view last changed state */
    bool is_self;
    /* The member's Ed25519 public key (RUMOR_IDENTITY_KEY_BYTES), NULL when identities are off
     * or none is known yet. rumor_node_restore() pins a key given here. */
    const uint8_t *public_key;
} rumor_member;

typedef enum rumor_event_type {
    RUMOR_EVENT_MEMBER_JOIN = 1,     /* a member became known alive (also back from failed/left) */
    RUMOR_EVENT_MEMBER_UPDATE = 2,   /* an alive member changed its metadata or address */
    RUMOR_EVENT_MEMBER_SUSPECT = 3,  /* a member is suspected */
    RUMOR_EVENT_MEMBER_ALIVE = 4,    /* a suspected member refuted and is alive again */
    RUMOR_EVENT_MEMBER_FAILED = 5,   /* a member was declared failed */
    RUMOR_EVENT_MEMBER_LEFT = 6,     /* a member left gracefully */
    RUMOR_EVENT_MEMBER_REAPED = 7,   /* a failed or left member was forgotten */
    RUMOR_EVENT_LEAVE_DONE = 8,      /* this node's leave has been propagated (or timed out) */
    RUMOR_EVENT_KV_CHANGE = 9,       /* a key of `member.name`'s keyspace changed (kv fields) */
    RUMOR_EVENT_USER = 10,           /* a user event from `member.name` (msg fields) */
    RUMOR_EVENT_QUERY = 11,          /* a query from `member.name` to answer (msg fields) */
    RUMOR_EVENT_QUERY_ACK = 12,      /* `member.name` acknowledged our query `query_id` */
    RUMOR_EVENT_QUERY_RESPONSE = 13, /* `member.name` answered our query `query_id` */
    RUMOR_EVENT_QUERY_DONE = 14,     /* our query `query_id` reached its deadline (`query`) */
    /* A cluster key operation asked by `member.name` changed this node's keyring; `msg_name`
     * is the operation ("install", "use", "remove"). The host saves the keyring (the agent
     * rewrites its keyring file) before it polls the next event: the node's answer, which the
     * asker counts as this member's confirmation, is held until then, and leaves as a datagram
     * queued by that next rumor_node_poll_event() call (rumor_node_deadline() is then `now`).
     * If the save failed, rumor_node_keys_unsaved() turns the answer into an error. See
     * rumor_node_keys_query(). */
    RUMOR_EVENT_KEYRING_CHANGE = 15,
} rumor_event_type;

/* "member-join", "member-update", ... */
RUMOR_API const char *rumor_event_type_name(rumor_event_type t);

/* What the asker of a query knows of it. "Matched" members are the live (alive or suspect)
 * members of the asker's table, itself included, that passed the query's filters when it was
 * sent: the ones expected to answer. */
typedef struct rumor_query_result {
    uint64_t deadline_ms; /* `now` scale of the asker */
    bool done;            /* the deadline passed; no more acks or responses are taken */
    bool request_ack;     /* the query asked for acks */
    uint32_t matched;     /* members expected to answer */
    uint32_t acks;        /* distinct members that acknowledged (any member, matched or not) */
    uint32_t responses;   /* distinct members that responded (any member) */
    uint32_t no_ack;      /* matched members without an ack (0 when acks were not requested) */
    uint32_t no_response; /* matched members without a response */
} rumor_query_result;

/*
 * An event drained from the node. `member` is a copy taken when the event happened; its
 * pointers stay valid until the next rumor_node_poll_event() call. `accuser` names who
 * suspected or declared the member failed (empty otherwise).
 *
 * For user events and queries `member.name` is the node the event comes from (the origin of a
 * user event or query, the member that acked or responded); the other member fields come from
 * this node's table and are zero when the name is not in it (for QUERY, `member.addr` is the
 * asker's address from the query itself).
 */
typedef struct rumor_event {
    rumor_event_type type;
    uint64_t at_ms;
    rumor_member member;
    char accuser[RUMOR_NAME_MAX + 1];
    /* RUMOR_EVENT_KV_CHANGE: the key, its new version (0 never) and the version it replaced
     * (0 when the key was absent); `deleted` when the change is a delete. A writer retiring its
     * shared entry after a newer write of another node superseded it raises no event: no value
     * anyone reads changes (rumor_node_shared_get already returns the newer write). */
    const uint8_t *key;
    size_t key_len;
    uint64_t version;
    uint64_t old_version;
    bool deleted;
    bool shared; /* the key is in the shared keyspace (member.name wrote it) */
    /* RUMOR_EVENT_USER and RUMOR_EVENT_QUERY: the name (NUL-terminated) and payload;
     * RUMOR_EVENT_QUERY_RESPONSE: the payload. Valid until the next poll. */
    const char *msg_name;
    size_t msg_name_len;
    const uint8_t *payload;
    size_t payload_len;
    uint64_t ltime;           /* USER and QUERY: the Lamport time the origin gave it */
    uint64_t query_id;        /* QUERY: the handle for rumor_node_query_respond(); QUERY_ACK,
                                 QUERY_RESPONSE, QUERY_DONE: the id rumor_node_query() returned */
    uint64_t deadline_ms;     /* QUERY: respond before this (this node's `now` scale) */
    rumor_query_result query; /* QUERY_DONE: the final counts */
} rumor_event;

/* ------------------------------------------------------------------------------------------ */
/* Statistics                                                                                  */

/* Reasons an inbound packet or stream frame is dropped. */
typedef enum rumor_drop_reason {
    RUMOR_DROP_TRUNCATED = 0, /* shorter than its header or a field says */
    RUMOR_DROP_BAD_MAGIC,     /* not a rumor packet */
    RUMOR_DROP_BAD_VERSION,   /* protocol version not spoken here */
    RUMOR_DROP_BAD_LABEL,     /* another cluster's label */
    RUMOR_DROP_MALFORMED,     /* a message failed to decode */
    RUMOR_DROP_OVERSIZE,      /* larger than the configured bound */
    RUMOR_DROP_UNKNOWN_TYPE,  /* a message type this version does not know */
    RUMOR_DROP_ENCRYPTED,     /* sealed, and this node has no key to open it */
    RUMOR_DROP_NOT_FOR_US,    /* addressed to another node name */
    RUMOR_DROP_STALE,         /* older than what is known (counted, harmless) */
    RUMOR_DROP_QUEUE_FULL,    /* an outbound queue or table was at its cap */
    RUMOR_DROP_AUTH_FAILED,   /* sealed, and did not open under the key its id names */
    RUMOR_DROP_UNKNOWN_KEY,   /* sealed under a key that is not in the keyring */
    RUMOR_DROP_REPLAYED,      /* a sealed packet or frame seen before, or from an older life */
    RUMOR_DROP_PLAINTEXT,     /* not sealed, and this node requires sealing */
    RUMOR_DROP_IDENTITY,      /* a claim refused by identity checks (see ident_refused) */
    RUMOR_DROP_STALE_EPOCH,   /* a message in a sealed datagram that names an earlier life of
                                 this node (or none): only PING and PING_REQ are taken */
    RUMOR_DROP_REASON_COUNT
} rumor_drop_reason;

/* "truncated", "bad_magic", ... */
RUMOR_API const char *rumor_drop_reason_name(rumor_drop_reason r);

/* Why a claim was refused by the identity checks (docs/protocol.md section 12). Each refusal
 * also counts as RUMOR_DROP_IDENTITY; the message's other effects and the rest of the packet
 * are unaffected. */
typedef enum rumor_ident_refusal {
    RUMOR_IDENT_UNSIGNED = 0,   /* no identity block or signature although identities are on */
    RUMOR_IDENT_BAD_ALIVE,      /* an alive claim (or sync record) its owner did not sign */
    RUMOR_IDENT_BAD_LEFT,       /* a leave its owner did not sign */
    RUMOR_IDENT_BAD_ACCUSATION, /* a suspect/failed accusation its accuser did not sign */
    RUMOR_IDENT_BAD_KV,         /* a key-value entry or keyspace head its origin did not sign */
    RUMOR_IDENT_UNKNOWN_KEY,    /* signed by a member (accuser, origin) with no key known here */
    RUMOR_IDENT_KEY_MISMATCH,   /* a known name claimed with another key */
    RUMOR_IDENT_NO_CERT,        /* an authority is set and the member shows no certificate */
    RUMOR_IDENT_BAD_CERT,       /* a certificate the authority did not sign for name and key */
    RUMOR_IDENT_CERT_EXPIRED,   /* a certificate past its end (host wall clock) */
    RUMOR_IDENT_BAD_EVENT,      /* a user event its origin did not sign */
    RUMOR_IDENT_BAD_QUERY,      /* a query its asker, or a response its responder, did not sign */
    RUMOR_IDENT_KV_WITHHELD,    /* a replica of a keyspace lacked entries its origin's signed
                                   keyspace sum holds (a relay kept them from it): taken again */
    RUMOR_IDENT_REFUSAL_COUNT
} rumor_ident_refusal;

/* "unsigned", "bad_alive", ... */
RUMOR_API const char *rumor_ident_refusal_name(rumor_ident_refusal r);

/* A claim the identity checks refused, for a host's logs. */
typedef struct rumor_ident_refused_info {
    rumor_ident_refusal reason;
    char name[RUMOR_NAME_MAX + 1]; /* the member the claim was about */
    char by[RUMOR_NAME_MAX + 1];   /* the accuser or origin it claimed to be signed by, or "" */
    rumor_addr from;               /* sender of the datagram it came in (len 0: a stream) */
    uint64_t at_ms;
} rumor_ident_refused_info;

typedef struct rumor_stats {
    uint64_t probes;         /* direct probes started */
    uint64_t probe_failures; /* probes that ended without any ack */
    uint64_t acks_in;        /* acks received for our own probes or relays */
    uint64_t nacks_in;
    uint64_t indirect_probes;  /* ping-req sent by us */
    uint64_t indirect_relayed; /* ping-req served for others */
    uint64_t stream_probes;    /* fallback probes over a stream */
    uint64_t suspicions;       /* members we started to suspect ourselves */
    uint64_t refutes;          /* times we refuted a suspicion or death about ourselves */
    uint64_t packets_in, packets_out;
    uint64_t bytes_in, bytes_out;
    uint64_t messages_in, messages_out;
    uint64_t broadcasts_queued;
    uint64_t streams_in, streams_out;
    uint64_t pushpulls;         /* completed full-state syncs (either side) */
    uint64_t pushpull_ms_total; /* summed duration of completed syncs we initiated */
    uint64_t dropped[RUMOR_DROP_REASON_COUNT];
    uint32_t members[4];      /* members by rumor_member_state, self included */
    uint32_t broadcast_queue; /* broadcasts waiting, all classes */
    uint32_t awareness;       /* local health score, 0 = healthy */
    uint32_t incarnation;     /* our own */
    /* Per-node identity (all 0 when identities are off). */
    uint64_t ident_signed;   /* signatures made by this node */
    uint64_t ident_verified; /* Ed25519 verifications run */
    uint64_t ident_cached;   /* checks answered from the verification cache instead */
    uint64_t ident_refused[RUMOR_IDENT_REFUSAL_COUNT]; /* claims refused, by reason */
    /* User events and queries. */
    uint64_t user_events_sent;      /* rumor_node_event() calls that succeeded */
    uint64_t user_events_received;  /* USER_EVENT messages received, duplicates included */
    uint64_t user_events_delivered; /* RUMOR_EVENT_USER events emitted (each event once) */
    uint64_t user_events_stale;     /* older than the event buffer's window: dropped */
    uint64_t queries_asked;         /* rumor_node_query() calls that succeeded */
    uint64_t queries_received;      /* QUERY messages received, duplicates included */
    uint64_t queries_served;        /* RUMOR_EVENT_QUERY events emitted (matched the filter) */
    uint64_t queries_stale;         /* older than the query buffer's window: dropped */
    uint64_t query_acks_sent;       /* acks this node sent for queries it matched */
    uint64_t query_responses_sent;  /* rumor_node_query_respond() calls that succeeded */
    uint64_t query_acks_in;         /* distinct acks taken for our queries */
    uint64_t query_responses_in;    /* distinct responses taken for our queries */
    uint64_t event_ltime;           /* the user event Lamport clock */
    uint64_t query_ltime;           /* the query Lamport clock */
    /* Cluster key operations and reserved names (rumor_node_keys_query). */
    uint64_t keys_ops_applied;   /* key operations applied here (including no-op installs) */
    uint64_t keys_ops_refused;   /* key operations answered with an error (not applied) */
    uint64_t keys_ops_malformed; /* key operation requests that failed to decode (refused) */
    uint64_t reserved_refused;   /* events/queries with a reserved name not handled: dropped */
    /* Sealed datagrams whose recipient epoch was not ours (first contact, or captured before a
     * restart): only their PING and PING_REQ were applied (docs/protocol.md section 3.1.4). */
    uint64_t stale_epoch_in;
} rumor_stats;

/* ------------------------------------------------------------------------------------------ */
/* The node                                                                                    */

typedef struct rumor_node rumor_node;

/*
 * Creates a node. Copies the settings. Errors: RUMOR_ERR_INVALID (missing name or address, a
 * value out of range), RUMOR_ERR_VERSION (settings version), RUMOR_ERR_NOMEM.
 */
RUMOR_API int rumor_node_new(rumor_node **out, const rumor_settings *s, uint64_t now);

/* Frees a node and everything it owns. NULL is allowed. */
RUMOR_API void rumor_node_del(rumor_node *n);

/*
 * Starts joining through seed addresses: opens a full-state push-pull stream to each (the host
 * sees RUMOR_STREAM_OPEN ops). The seeds are remembered and retried every reconnect interval
 * while the node knows no other live member. Errors: RUMOR_ERR_INVALID (no seeds),
 * RUMOR_ERR_STATE (after leave).
 */
RUMOR_API int rumor_node_join(rumor_node *n, const rumor_addr *seeds, size_t nseeds, uint64_t now);

/*
 * Leaves gracefully: broadcasts that this node left and pushes it eagerly. The node stops
 * probing. RUMOR_EVENT_LEAVE_DONE is emitted once the news has been sent enough times or
 * leave_timeout_ms passed. Errors: RUMOR_ERR_STATE (already leaving).
 */
RUMOR_API int rumor_node_leave(rumor_node *n, uint64_t now);

/*
 * Adds a member the host already knows — from a snapshot taken before a restart, say — without
 * gossiping it: when the node does not know `m->name` yet, it is added as alive with
 * `m->incarnation`, `m->addr` and `m->meta`, and from then on probed like any other member, so
 * one that is gone is found failed the usual way. A known member is left as it is; `m->state`
 * and `m->is_self` are ignored. Emits RUMOR_EVENT_MEMBER_JOIN for a new member. Errors:
 * RUMOR_ERR_INVALID (bad name, address or metadata size), RUMOR_ERR_FULL (members_max),
 * RUMOR_ERR_NOMEM.
 */
RUMOR_API int rumor_node_restore(rumor_node *n, const rumor_member *m, uint64_t now);

/*
 * Makes room for `count` members in all, self included (capped at members_max), before many
 * rumor_node_restore() calls: the member table's arrays are then sized once and exactly instead
 * of growing by doubling. Only memory changes; a table may still grow past it. Errors:
 * RUMOR_ERR_NOMEM (the table is as before, or only partly enlarged).
 */
RUMOR_API int rumor_node_reserve(rumor_node *n, size_t count);

/*
 * A hint for hosts that drive many nodes in one process (a simulator at 10,000 nodes, whose
 * node states do not fit the CPU cache): starts loading into the cache the memory that the next
 * call into `n` will read, so that it arrives while the host finishes other work. `level` 0 is
 * the node's own state; 1 also what that state points to (its own member record, output
 * buffers, the next probe target's place in the probe order); 2 also the next probe target's
 * record. Issue the levels in that order, some work apart: a level reads memory that the one
 * before it fetched. Changes nothing.
 */
RUMOR_API void rumor_node_prefetch(const rumor_node *n, unsigned level);

/*
 * The same kind of hint for a member the next call will look up by name (a datagram's sender,
 * say): level 1 requests its place in the member index, level 2 its record; level 0 does
 * nothing. Call after rumor_node_prefetch(n, 0), with work in between. Changes nothing.
 */
RUMOR_API void rumor_node_prefetch_member(const rumor_node *n, const char *name, size_t len,
                                          unsigned level);

/*
 * Sets this node's metadata (tags) and broadcasts it with a new incarnation. Errors:
 * RUMOR_ERR_TOO_BIG (over meta_bytes_max; nothing changes), RUMOR_ERR_STATE (after leave).
 */
RUMOR_API int rumor_node_set_meta(rumor_node *n, const uint8_t *meta, size_t len, uint64_t now);

/*
 * Feeds one received datagram. Malformed or foreign input returns a negative code, is counted
 * in stats.dropped and changes nothing: RUMOR_ERR_AUTH for a sealed packet that does not open,
 * names another recipient or is a replay, and for a packet of the wrong mode (sealed at a node
 * without keys, plaintext at a node that requires sealing). The return value is informational;
 * the host need not act on it (the agent logs RUMOR_ERR_AUTH with the sender's address).
 */
RUMOR_API int rumor_node_receive(rumor_node *n, const rumor_addr *from, const uint8_t *data,
                                 size_t len, uint64_t now);

/* Runs every timer that is due at `now`. */
RUMOR_API void rumor_node_tick(rumor_node *n, uint64_t now);

/* The time at which rumor_node_tick() must next be called. Never in the past of the last call
 * unless work is pending, in which case it equals that call's `now`. */
RUMOR_API uint64_t rumor_node_deadline(const rumor_node *n);

/* One outbound datagram. `data` stays valid until the next call on the node. */
typedef struct rumor_datagram {
    rumor_addr to;
    const uint8_t *data;
    size_t len;
} rumor_datagram;

/* Takes the next outbound datagram. Returns false when none is waiting. */
RUMOR_API bool rumor_node_poll_datagram(rumor_node *n, rumor_datagram *out);

/*
 * Streams. The engine uses reliable byte streams (TCP in the agent) for full-state sync, join and
 * the fallback probe. Each stream carries length-prefixed frames (docs/protocol.md) and is named
 * by a 64-bit id the engine chooses for both outbound (opened by the engine) and inbound
 * (accepted by the host) streams.
 */
typedef enum rumor_stream_op_kind {
    RUMOR_STREAM_OPEN = 1,  /* connect to `to`; then write and report as for any stream */
    RUMOR_STREAM_WRITE = 2, /* write `data` on stream `id` */
    RUMOR_STREAM_CLOSE = 3, /* close stream `id` (after writing what was queued) */
} rumor_stream_op_kind;

typedef struct rumor_stream_op {
    rumor_stream_op_kind kind;
    uint64_t id;
    rumor_addr to;       /* for OPEN */
    const uint8_t *data; /* for WRITE; valid until the next call on the node */
    size_t len;
} rumor_stream_op;

/* Takes the next stream operation. Returns false when none is waiting. */
RUMOR_API bool rumor_node_poll_stream(rumor_node *n, rumor_stream_op *out);

/*
 * The host accepted an inbound connection from `from`. Stores the new stream id in `*id`.
 * Errors: RUMOR_ERR_FULL (streams_max reached: the host should close the connection).
 */
RUMOR_API int rumor_node_stream_accept(rumor_node *n, const rumor_addr *from, uint64_t *id,
                                       uint64_t now);

/*
 * Bytes arrived on stream `id`. A malformed or oversize frame closes the stream (a CLOSE op
 * follows) and is counted. Errors: RUMOR_ERR_NOT_FOUND (unknown or closed id), others as
 * rumor_node_receive.
 */
RUMOR_API int rumor_node_stream_data(rumor_node *n, uint64_t id, const uint8_t *data, size_t len,
                                     uint64_t now);

/* The peer closed stream `id`, or connecting/reading/writing failed. The id is released. */
RUMOR_API void rumor_node_stream_closed(rumor_node *n, uint64_t id, uint64_t now);

/* Takes the next event. Returns false when none is waiting. */
RUMOR_API bool rumor_node_poll_event(rumor_node *n, rumor_event *out);

/* ------------------------------------------------------------------------------------------ */
/* Replicated key-value state                                                                  */

/*
 * Every node owns a keyspace only it writes; every node holds a replica of every member's.
 * Each write takes the owner's next version; replicas converge by rumor-mongering new writes
 * and by digest anti-entropy (kv_sync_mode). Deletes are tombstones, collected by their owner
 * after kv_tombstone_ttl_ms; a replica that was away longer is reset before it takes deltas, so
 * it never brings a deleted key back. A member's keys are dropped when it is reaped.
 */

/*
 * Writes `key` in this node's keyspace. Errors: RUMOR_ERR_INVALID (key empty or longer than
 * RUMOR_KEY_MAX), RUMOR_ERR_TOO_BIG (value, key count or byte limits; nothing changes),
 * RUMOR_ERR_STATE (after leave), RUMOR_ERR_NOMEM.
 */
RUMOR_API int rumor_node_kv_put(rumor_node *n, const void *key, size_t key_len, const void *value,
                                size_t value_len, uint64_t now);

/* Deletes `key` from this node's keyspace. Errors: RUMOR_ERR_NOT_FOUND (absent), as put. */
RUMOR_API int rumor_node_kv_delete(rumor_node *n, const void *key, size_t key_len, uint64_t now);

typedef struct rumor_kv_value {
    const uint8_t *value; /* valid until the next call that changes the node */
    size_t len;
    uint64_t version;
    const char *writer; /* shared keys: the node whose write won (else NULL) */
    uint64_t stamp;     /* shared keys: the winning hybrid-logical-clock stamp */
} rumor_kv_value;

/*
 * Reads `key` from `origin`'s keyspace (NULL: this node's). Errors: RUMOR_ERR_NOT_FOUND (no such
 * origin or key, or deleted).
 */
RUMOR_API int rumor_node_kv_get(const rumor_node *n, const char *origin, const void *key,
                                size_t key_len, rumor_kv_value *out);

/*
 * The shared keyspace: any node may write any key; the write with the highest hybrid logical
 * clock stamp wins, ties broken by writer name, so every replica picks the same winner. A stamp
 * exceeds every stamp the node has seen, so a write made after seeing another wins over it
 * whatever the two wall clocks say. Stored under the writer as KV_SHARED entries (they count
 * against its limits). Errors as rumor_node_kv_put / rumor_node_kv_delete.
 */
RUMOR_API int rumor_node_shared_put(rumor_node *n, const void *key, size_t key_len,
                                    const void *value, size_t value_len, uint64_t now);
RUMOR_API int rumor_node_shared_delete(rumor_node *n, const void *key, size_t key_len,
                                       uint64_t now);
/* Reads the winning value of a shared key. Errors: RUMOR_ERR_NOT_FOUND (absent or deleted). */
RUMOR_API int rumor_node_shared_get(const rumor_node *n, const void *key, size_t key_len,
                                    rumor_kv_value *out);

/* An order-independent hash of every replica this node holds (origins, keys, versions,
 * values): equal on two nodes when they hold the same state. */
RUMOR_API uint64_t rumor_node_kv_digest(const rumor_node *n);

/* Live keys over all replicas this node holds. */
RUMOR_API size_t rumor_node_kv_count(const rumor_node *n);

/*
 * One entry of a keyspace, as rumor_node_kv_foreach(), rumor_node_shared_foreach() and
 * rumor_node_kv_lookup() show it and rumor_node_kv_restore() takes it. A delete is an entry too
 * (a tombstone, `deleted`, no value) until its owner collects it.
 */
typedef struct rumor_kv_entry {
    const char *origin; /* the node that wrote it, NUL-terminated (restore: NULL or this node) */
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value; /* NULL or empty for a delete */
    size_t value_len;
    uint64_t version;    /* the origin's version of this write; every write takes the next */
    uint64_t stamp;      /* shared writes: the hybrid-logical-clock stamp; otherwise 0 */
    uint64_t deleted_at; /* deletes: `now` when this node made or learned it; otherwise 0 */
    bool shared;         /* a write to the shared keyspace (not necessarily the winning one) */
    bool deleted;        /* a delete */
    uint32_t flags;      /* the entry's flags as KV_DELTA carries them (docs/protocol.md), of
                            which `shared` and `deleted` are two (0x04: a shared write its owner
                            retired, `value` naming what superseded it); a host that saves entries
                            saves them and gives them back to restore (0 there: from the booleans) */
} rumor_kv_entry;

/* Which entries a walk visits (rumor_kv_filter.flags); 0 means RUMOR_KV_OWN. */
#define RUMOR_KV_OWN     0x1u /* the origin's own keys */
#define RUMOR_KV_SHARED  0x2u /* the origin's writes to the shared keyspace */
#define RUMOR_KV_DELETED 0x4u /* deletes that are still remembered, besides live keys */

typedef struct rumor_kv_filter {
    const void *prefix; /* only keys that start with these bytes; NULL or len 0 = every key */
    size_t prefix_len;
    uint64_t since_version; /* only entries with a version above this (origin walks) */
    unsigned flags;         /* RUMOR_KV_* */
} rumor_kv_filter;

/*
 * Called once per entry. `e` and everything it points to are valid only during the call, and the
 * callback must not change the node (no put, delete, receive, tick, poll). Return 0 to go on;
 * any other value stops the walk, which returns it (use a positive value to tell it from the
 * walk's own errors).
 */
typedef int (*rumor_kv_visit_fn)(const rumor_kv_entry *e, void *ud);

/*
 * Walks the keyspace of `origin` (NULL: this node's) in ascending version order, so a host that
 * remembers the highest version it copied can resume with `since_version` and see every change
 * after it (a key rewritten since appears once, at its newest version). `f` NULL visits live own
 * keys. Returns 0, the callback's stopping value, RUMOR_ERR_NOT_FOUND (this node holds nothing
 * of `origin`: unknown, or a member that never wrote) or RUMOR_ERR_INVALID (prefix longer than
 * RUMOR_KEY_MAX). Changes nothing.
 */
RUMOR_API int rumor_node_kv_foreach(const rumor_node *n, const char *origin,
                                    const rumor_kv_filter *f, rumor_kv_visit_fn fn, void *ud);

/*
 * Walks the shared keyspace: the winning write of each key (`origin` names the writer), in no
 * particular order. `f->since_version` is ignored; RUMOR_KV_DELETED also visits keys whose
 * winning write is a delete. Returns as rumor_node_kv_foreach. Changes nothing.
 */
RUMOR_API int rumor_node_shared_foreach(const rumor_node *n, const rumor_kv_filter *f,
                                        rumor_kv_visit_fn fn, void *ud);

/*
 * Reads one entry of `origin`'s keyspace (NULL: this node's), deletes included: its own key
 * `key` (O(1)), or with `shared` its write to shared key `key` (a scan from its newest entry).
 * The pointers in `out` stay valid until the next call that changes the node. Errors:
 * RUMOR_ERR_INVALID (bad key), RUMOR_ERR_NOT_FOUND.
 */
RUMOR_API int rumor_node_kv_lookup(const rumor_node *n, const char *origin, const void *key,
                                   size_t key_len, bool shared, rumor_kv_entry *out);

typedef struct rumor_kv_origin_info {
    uint64_t max_version; /* every write of the origin up to this version is reflected here */
    uint64_t gc_version;  /* the origin collected its deletes up to this version */
    uint32_t keys;        /* live entries, own keys and shared writes */
    uint32_t entries;     /* entries held, deletes included */
    uint64_t bytes;       /* key + value bytes held, deletes included */
} rumor_kv_origin_info;

/* What this node holds of `origin` (NULL: itself). Errors: RUMOR_ERR_NOT_FOUND. */
RUMOR_API int rumor_node_kv_origin_info(const rumor_node *n, const char *origin,
                                        rumor_kv_origin_info *out);

typedef struct rumor_kv_stats {
    uint32_t origins;     /* keyspaces held, this node's included */
    uint64_t keys;        /* live entries over all replicas */
    uint64_t entries;     /* entries over all replicas, deletes included */
    uint64_t bytes;       /* key + value bytes over all replicas (kv_total_bytes_max counts it) */
    uint64_t shared_keys; /* shared keys whose winning write is not a delete */
    uint64_t clock;       /* this node's hybrid logical clock: the last stamp made or seen */
} rumor_kv_stats;

/* Gauges of the replicated state; O(number of keyspaces + shared keys). */
RUMOR_API void rumor_node_kv_stats(const rumor_node *n, rumor_kv_stats *out);

/*
 * Restart from durable storage. A host that saved this node's entries (rumor_node_kv_foreach of
 * NULL with RUMOR_KV_OWN | RUMOR_KV_SHARED | RUMOR_KV_DELETED), its version counter and clock
 * (rumor_node_kv_origin_info, rumor_node_kv_stats) feeds them back after rumor_node_new() and
 * before rumor_node_join(): entries one by one in ascending version order, then
 * rumor_node_kv_restore_version(). Versions then never go backwards across the restart, deletes
 * stay deleted, and shared writes keep their stamps.
 *
 * This agrees with owner adoption: a node also takes newer entries of its own keyspace from
 * peers (a restart with no or an older copy). Peers never hold a version the host had not saved
 * when the host saves before it lets the write's datagrams out (the agent does), so the restored
 * state is never behind theirs; if it is (an older backup), the node adopts the rest as it would
 * from nothing.
 *
 * Restores one entry: `e->origin` is NULL or this node's name, `e->version` above every version
 * this node holds of itself, `e->deleted_at` a `now` of this run (the host converts a saved wall
 * time; later than `now` is taken as `now`), and the tombstone's delete is collected
 * kv_tombstone_ttl_ms after it. No event, nothing sent. Errors: RUMOR_ERR_INVALID (bad key,
 * another origin, flags that disagree with `shared`/`deleted` or that the node does not know, a
 * delete with a value), RUMOR_ERR_STATE (version not above the node's own, or after leave),
 * RUMOR_ERR_TOO_BIG (a limit of these settings; nothing changes), RUMOR_ERR_NOMEM.
 */
RUMOR_API int rumor_node_kv_restore(rumor_node *n, const rumor_kv_entry *e, uint64_t now);

/*
 * Ends a restore: raises this node's version counter to `max_version` (never lowers it), records
 * that deletes up to `gc_version` were collected (dropping any restored tombstone at or below it)
 * and moves the hybrid logical clock past `clock`, so new writes follow every restored one.
 * Errors: RUMOR_ERR_INVALID (gc_version above max_version), RUMOR_ERR_STATE (after leave).
 */
RUMOR_API int rumor_node_kv_restore_version(rumor_node *n, uint64_t max_version,
                                            uint64_t gc_version, uint64_t clock, uint64_t now);

/* ------------------------------------------------------------------------------------------ */
/* User events and queries                                                                     */

/*
 * User events (Serf's): a named payload for every node. The event takes the node's event clock
 * (a Lamport clock that every received event advances past its own time), spreads by gossip
 * through the broadcast queue (application class, retransmit_mult * ceil(log10(N+1)) sends per
 * node, pushed at once) and is relayed by each node the first time it arrives. Every node,
 * this one included, delivers it once as RUMOR_EVENT_USER: duplicates are recognized by
 * (Lamport time, origin, name, payload) over the last `event_buffer` Lamport times, and older
 * events are dropped as stale (stats.user_events_stale). Delivery is epidemic, as in Serf: with
 * high probability, not guaranteed, under heavy loss.
 *
 * `name` is NUL-terminated, 1..RUMOR_EVENT_NAME_MAX bytes. Errors: RUMOR_ERR_INVALID (name
 * empty or too long, payload NULL with a length), RUMOR_ERR_TOO_BIG (name + payload over
 * event_bytes_max), RUMOR_ERR_STATE (after leave), RUMOR_ERR_NOMEM. Nothing changes on error.
 */
RUMOR_API int rumor_node_event(rumor_node *n, const char *name, const void *payload, size_t len,
                               uint64_t now);

/* A query's tag filter: the member's metadata must hold `key` with a value matching `value`,
 * as settings.query_tag_match decides. Both NUL-terminated. */
typedef struct rumor_query_tag {
    const char *key;   /* 1..RUMOR_TAG_KEY_MAX bytes */
    const char *value; /* 0..RUMOR_TAG_VALUE_MAX bytes */
} rumor_query_tag;

/* How to ask a query. A zeroed struct (or NULL) asks every node, with the default timeout and
 * no acks. The engine copies what it needs; nothing is kept after the call. */
typedef struct rumor_query_params {
    const char *const *nodes; /* only members with one of these names (none: any name) */
    size_t nnodes;
    const rumor_query_tag *tags; /* and only members matching every one of these */
    size_t ntags;
    uint32_t timeout_ms; /* 0: gossip_interval * query_timeout_mult * ceil(log10(N+1)) */
    bool request_ack;    /* matching members acknowledge at once (RUMOR_EVENT_QUERY_ACK) */
} rumor_query_params;

/*
 * Asks a query (Serf's): the request takes the node's query clock and spreads like a user event
 * to every node. Each node that passes the filters (this one too) acknowledges it when asked to
 * (a datagram straight to this node's address, carried in the query) and delivers it as
 * RUMOR_EVENT_QUERY; its host may answer once with rumor_node_query_respond() before the
 * deadline. This node emits RUMOR_EVENT_QUERY_ACK and RUMOR_EVENT_QUERY_RESPONSE per distinct
 * member (duplicates and anything after the deadline are dropped) and RUMOR_EVENT_QUERY_DONE at
 * the deadline, which rumor_node_deadline() includes. `*id` names the query here.
 *
 * Up to queries_max queries are held, running or finished: a new one replaces the oldest
 * finished one; when all are running it is refused. Errors: RUMOR_ERR_INVALID (name empty or
 * too long, a filter name, key or value invalid, payload NULL with a length, `id` NULL),
 * RUMOR_ERR_TOO_BIG (name + payload + filters over query_bytes_max), RUMOR_ERR_FULL
 * (queries_max running), RUMOR_ERR_STATE (after leave), RUMOR_ERR_NOMEM. Nothing changes on
 * error.
 */
RUMOR_API int rumor_node_query(rumor_node *n, const char *name, const void *payload, size_t len,
                               const rumor_query_params *p, uint64_t *id, uint64_t now);

/*
 * Answers query `query_id` (from a RUMOR_EVENT_QUERY) with `payload`, sent straight to the
 * asker. Errors: RUMOR_ERR_NOT_FOUND (no such query here), RUMOR_ERR_EXPIRED (its deadline
 * passed, or it was dropped to make room), RUMOR_ERR_STATE (already answered),
 * RUMOR_ERR_TOO_BIG (over query_response_bytes_max), RUMOR_ERR_INVALID (payload NULL with a
 * length), RUMOR_ERR_NOMEM. Nothing changes on error.
 */
RUMOR_API int rumor_node_query_respond(rumor_node *n, uint64_t query_id, const void *payload,
                                       size_t len, uint64_t now);

/* What this node knows of its query `id` (running, or finished and still held). Errors:
 * RUMOR_ERR_NOT_FOUND. */
RUMOR_API int rumor_node_query_result(const rumor_node *n, uint64_t id, rumor_query_result *out);

/*
 * Names of the matched members of query `id` that sent no response (`acks` false) or no ack
 * (`acks` true): up to `cap` pointers are stored in `names` (valid until the next call that
 * changes the node) and the total in `*count`. Errors: RUMOR_ERR_NOT_FOUND.
 */
RUMOR_API int rumor_node_query_missing(const rumor_node *n, uint64_t id, bool acks,
                                       const char **names, size_t cap, size_t *count);

/* Forgets query `id`: a running one ends without RUMOR_EVENT_QUERY_DONE; later acks and
 * responses are dropped. Errors: RUMOR_ERR_NOT_FOUND. */
RUMOR_API int rumor_node_query_forget(rumor_node *n, uint64_t id);

/* The timeout a query asked now would get by default (query_timeout_mult). */
RUMOR_API uint32_t rumor_node_query_timeout_default(const rumor_node *n);

/* ------------------------------------------------------------------------------------------ */
/* Inspecting the node                                                                         */
/* The encryption keyring                                                                      */

/*
 * A node started with keys (rumor_settings.keys) seals with its primary key and opens with any
 * key of its keyring. Rotation without losing contact, on every member in turn: install the new
 * key, make it primary, remove the old one. A node started without keys has no keyring: these
 * calls return RUMOR_ERR_STATE there. Keys are compared in constant time and wiped when dropped.
 */

/* Adds a key that opens (a key already held is a no-op). Errors: RUMOR_ERR_STATE (no keyring),
 * RUMOR_ERR_FULL (RUMOR_KEYRING_MAX keys), RUMOR_ERR_INVALID (its 4-byte key id collides with a
 * different key held; pick another key). */
RUMOR_API int rumor_node_keyring_install(rumor_node *n, const uint8_t key[RUMOR_KEY_BYTES]);

/* Makes an installed key the primary: it seals from now on. Errors: RUMOR_ERR_STATE (no
 * keyring), RUMOR_ERR_NOT_FOUND (not installed). */
RUMOR_API int rumor_node_keyring_use(rumor_node *n, const uint8_t key[RUMOR_KEY_BYTES]);

/* Drops a key and wipes it. Errors: RUMOR_ERR_STATE (no keyring, or it is the primary: make
 * another key primary first), RUMOR_ERR_NOT_FOUND. */
RUMOR_API int rumor_node_keyring_remove(rumor_node *n, const uint8_t key[RUMOR_KEY_BYTES]);

/* Number of keys held (0 without a keyring). */
RUMOR_API size_t rumor_node_keyring_count(const rumor_node *n);

/* Copies key `i` into `out`; key 0 is the primary. Errors: RUMOR_ERR_NOT_FOUND. */
RUMOR_API int rumor_node_keyring_key(const rumor_node *n, size_t i, uint8_t out[RUMOR_KEY_BYTES]);

/* ------------------------------------------------------------------------------------------ */
/* Queries                                                                                     */

/* Number of members in the table, self included, in any state. */
RUMOR_API size_t rumor_node_member_count(const rumor_node *n);

/* Member `i` (0 <= i < count, order unspecified but stable between changes). */
RUMOR_API int rumor_node_member_at(const rumor_node *n, size_t i, rumor_member *out);

/* Looks a member up by name. Errors: RUMOR_ERR_NOT_FOUND. */
RUMOR_API int rumor_node_member_find(const rumor_node *n, const char *name, rumor_member *out);

/* This node as a member. */
RUMOR_API void rumor_node_self(const rumor_node *n, rumor_member *out);

/* Counters and gauges. */
RUMOR_API void rumor_node_stats(const rumor_node *n, rumor_stats *out);

/* Current local health score (Lifeguard), 0 = healthy. */
RUMOR_API uint32_t rumor_node_health(const rumor_node *n);

/* True after rumor_node_leave(). */
RUMOR_API bool rumor_node_is_leaving(const rumor_node *n);

/* The latest claim refused by the identity checks for `reason` (counted in
 * rumor_stats.ident_refused). Errors: RUMOR_ERR_NOT_FOUND (none yet, or identities off),
 * RUMOR_ERR_INVALID. */
RUMOR_API int rumor_node_ident_last_refused(const rumor_node *n, rumor_ident_refusal reason,
                                            rumor_ident_refused_info *out);

/* ------------------------------------------------------------------------------------------ */
/* Per-node identity (docs/protocol.md section 12)                                             */

/*
 * Derives the public key of the key pair whose secret seed is `seed` (both
 * RUMOR_IDENTITY_KEY_BYTES). The host makes the seed from its own randomness (the engine never
 * reads any) and keeps it secret. Errors: RUMOR_ERR_INVALID (NULL argument).
 */
RUMOR_API int rumor_identity_public_key(const uint8_t *seed, uint8_t *public_key);

/*
 * Certifies that `name` owns `public_key` until `expires_ms` (Unix ms, 0 = never): writes the
 * authority's signature (RUMOR_IDENTITY_SIG_BYTES) to `cert`. `ca_seed` is the authority's
 * secret seed. Errors: RUMOR_ERR_INVALID (NULL argument, bad name).
 */
RUMOR_API int rumor_identity_cert_sign(const uint8_t *ca_seed, const char *name,
                                       const uint8_t *public_key, uint64_t expires_ms,
                                       uint8_t *cert);

/*
 * Checks a certificate against the authority's public key `ca_key`. Does not look at the
 * expiry (the caller compares it with its clock). Errors: RUMOR_ERR_INVALID (NULL argument,
 * bad name), RUMOR_ERR_AUTH (not signed by that authority for this name, key and expiry).
 */
RUMOR_API int rumor_identity_cert_verify(const uint8_t *ca_key, const char *name,
                                         const uint8_t *public_key, uint64_t expires_ms,
                                         const uint8_t *cert);

/*
 * A short fingerprint of a public key for people: the first 8 bytes of its SHA-256 as 16 hex
 * digits in groups of four ("3f2a:09bc:77d1:e054"). Writes at most `cap` bytes including the
 * NUL; returns the length (19) or 0 when `cap` is too small.
 */
RUMOR_API size_t rumor_identity_fingerprint(const uint8_t *public_key, char *out, size_t cap);

/* ------------------------------------------------------------------------------------------ */
/* Cluster-wide key operations (Serf's key manager; docs/protocol.md section 13)               */

/*
 * Names starting with this prefix are reserved for the engine's own queries: rumor_node_event()
 * and rumor_node_query() refuse them, and received events and queries with such names never
 * reach the host as RUMOR_EVENT_USER / RUMOR_EVENT_QUERY.
 */
#define RUMOR_NAME_RESERVED_PREFIX "_rumor"
/* The reserved query that carries cluster key operations. */
#define RUMOR_KEYS_QUERY_NAME "_rumor-keys"

typedef enum rumor_keys_op {
    RUMOR_KEYS_INSTALL = 1, /* add a key that opens (a key already held: no change) */
    RUMOR_KEYS_USE = 2,     /* make an installed key the primary */
    RUMOR_KEYS_REMOVE = 3,  /* drop a key (one not held: no change; the primary: refused) */
    RUMOR_KEYS_LIST = 4,    /* report the keyring, primary first */
} rumor_keys_op;

/* "install", "use", "remove", "list". */
RUMOR_API const char *rumor_keys_op_name(rumor_keys_op op);

/* True when `name` (`len` bytes) starts with RUMOR_NAME_RESERVED_PREFIX. */
RUMOR_API bool rumor_name_reserved(const char *name, size_t len);

/*
 * Asks every member (or those `p` selects) to apply a key operation to its keyring, through the
 * reserved query RUMOR_KEYS_QUERY_NAME. The key travels in the query, so only a node that seals
 * everything it sends may ask: every packet carrying it is sealed under the cluster's primary
 * key. Each member with settings.keys_query applies the operation when the query reached it
 * sealed, and answers; this node does too. The answers arrive as RUMOR_EVENT_QUERY_RESPONSE
 * with `query_id` == `*id` (decode them with rumor_keys_answer_decode()), and at the deadline
 * RUMOR_EVENT_QUERY_DONE comes with the counts; rumor_node_query_missing() names the members that
 * did not answer. `key` is NULL for RUMOR_KEYS_LIST. `p` as for rumor_node_query(); acks are
 * requested unless `p` says otherwise.
 *
 * Errors: RUMOR_ERR_INVALID (unknown op, `key` missing, `id` NULL, bad filters),
 * RUMOR_ERR_STATE (this node has no keyring or sends plaintext, or it is leaving), and those of
 * rumor_node_query(). Nothing changes on error.
 */
RUMOR_API int rumor_node_keys_query(rumor_node *n, rumor_keys_op op, const uint8_t *key,
                                    const rumor_query_params *p, uint64_t *id, uint64_t now);

/*
 * For a host handling RUMOR_EVENT_KEYRING_CHANGE that could not save the keyring: call it
 * before the next rumor_node_poll_event(). The member's answer to that operation then reports
 * it applied but not saved (RUMOR_ERR_STATE, "applied but not saved: `why`") instead of
 * confirming it, so the asker does not count on a key a restart would lose. Returns
 * RUMOR_ERR_STATE when no keyring-change event is being handled.
 */
RUMOR_API int rumor_node_keys_unsaved(rumor_node *n, const char *why);

/* One member's answer to a key operation. */
typedef struct rumor_keys_answer {
    rumor_keys_op op;    /* the operation answered (0 when the request could not be decoded) */
    int code;            /* RUMOR_OK: applied; else the RUMOR_ERR_* that refused it */
    char error[256];     /* why it was refused, for people ("" when applied) */
    size_t nkeys;        /* RUMOR_KEYS_LIST: keys held, primary first */
    const uint8_t *keys; /* nkeys * RUMOR_KEY_BYTES bytes, pointing into the decoded payload */
} rumor_keys_answer;

/*
 * Decodes the payload of a RUMOR_EVENT_QUERY_RESPONSE to a rumor_node_keys_query(). Errors:
 * RUMOR_ERR_MALFORMED (not a well-formed answer: a member that is not a rumor node of this
 * version, or a forgery), RUMOR_ERR_VERSION (an answer format this library does not know).
 */
RUMOR_API int rumor_keys_answer_decode(const void *payload, size_t len, rumor_keys_answer *out);

#ifdef __cplusplus
}
#endif

#endif /* RUMOR_H */
