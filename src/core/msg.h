/*
 * User events and queries (Serf's), the node's messaging half: msg_window.c remembers what was
 * seen by Lamport time, msg_event.c handles user events and the clocks, msg_query.c queries.
 *
 * Both kinds of message carry a Lamport time from their own clock (Lamport 1978): a node sends
 * with its clock's current value and then advances it, and every message it receives (and the
 * clocks a push-pull carries) moves the clock past the time seen, so a message sent after
 * another was seen always has a higher time. Times also bound the memory for duplicates: only
 * the last `size` Lamport times are remembered (Serf's eventBuffer and queryBuffer), and
 * anything older than that window is stale and dropped.
 */
#ifndef RUMOR_CORE_MSG_H
#define RUMOR_CORE_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/alloc.h"
#include "core/wire.h"
#include "rumor.h"

/* Distinct messages remembered for one Lamport time. Each node's clock moves past every time
 * it uses, so several messages share a time only when their origins sent them concurrently
 * (a fleet that starts up and announces itself at once). */
#define MSG_SLOT_MAX 1024

typedef struct msg_seen {
    uint32_t len;
    uint8_t *id;   /* identity bytes: what makes two messages at one time the same message */
    uint64_t hash; /* of the Lamport time and the identity, for msg_window_sum() */
    bool sig;      /* its origin's signature (WIRE_SIG_BYTES) follows the identity in `id` */
} msg_seen;

typedef struct msg_slot {
    uint64_t ltime;
    size_t n, cap;
    msg_seen *items;
} msg_slot;

/* The recent window of one clock: slot ltime % size holds the messages seen at that time. */
typedef struct msg_window {
    msg_slot *slots;
    uint32_t size;
    size_t bytes, bytes_max; /* identity bytes held, and their cap */
} msg_window;

typedef enum msg_admit {
    MSG_NEW = 0,   /* first time: recorded */
    MSG_DUP = 1,   /* already seen */
    MSG_STALE = 2, /* older than the window */
    MSG_FULL = 3,  /* MSG_SLOT_MAX at this time, bytes_max, or out of memory: not recorded */
} msg_admit;

bool msg_window_init(msg_window *w, const rumor_allocator *a, uint32_t size, size_t bytes_max);
void msg_window_free(msg_window *w, const rumor_allocator *a);
/* Records the message whose identity is the concatenation of `parts` at `ltime`, unless it was
 * seen or is stale against `clock` (which has witnessed `ltime` already). */
msg_admit msg_window_admit(msg_window *w, const rumor_allocator *a, uint64_t clock, uint64_t ltime,
                           const wire_str *parts, size_t nparts);
/* The same, keeping the message's signature (NULL: none) with it for forwarding. */
msg_admit msg_window_admit_sig(msg_window *w, const rumor_allocator *a, uint64_t clock,
                               uint64_t ltime, const wire_str *parts, size_t nparts,
                               const uint8_t *sig);
/* What msg_window_admit would say (new, seen, stale), recording nothing: a message is checked
 * (its signature verified) only when it would be new. */
msg_admit msg_window_peek(const msg_window *w, uint64_t clock, uint64_t ltime,
                          const wire_str *parts, size_t nparts);
/* The first Lamport time that is not stale against `clock`. */
uint64_t msg_window_low(const msg_window *w, uint64_t clock);
/* An order-independent sum over the messages held that are not stale against `clock`: equal on
 * two nodes that saw the same recent messages. */
uint64_t msg_window_sum(const msg_window *w, uint64_t clock);
/* Forgets the message just admitted (its send failed after all). */
void msg_window_unadmit(msg_window *w, const rumor_allocator *a, uint64_t ltime);
/* Moves `*clock` past `ltime` (Lamport's rule: max(clock, ltime + 1)). */
void msg_witness(uint64_t *clock, uint64_t ltime);

/* One member that matched a query: its name lives in the query's arena, NUL-terminated. */
#define QPEER_ACKED     0x01
#define QPEER_RESPONDED 0x02

typedef struct qpeer {
    const char *name;
    uint8_t len;
    uint8_t flags;
} qpeer;

/* A member outside the matched set that acked or responded, by name hash. */
typedef struct qother {
    uint64_t hash;
    uint8_t flags;
} qother;

/* A query this node asked. */
typedef struct qout {
    uint64_t id; /* the host's handle */
    uint64_t ltime;
    uint32_t wire_id;
    uint64_t deadline;
    bool done;
    bool ack;
    uint32_t acks, responses;
    uint32_t acked_matched, responded_matched;
    qpeer *peers; /* matched members, sorted by name */
    uint32_t npeers;
    char *arena;
    qother *others;
    size_t nothers, others_cap;
    /* Engine queries that want every member (key operations): the encoded query, sent again
     * straight to matched members that have not answered, every `resend_every` ms up to
     * QUERY_RESENDS times, since rumor mongering reaches everyone only with high probability. */
    uint8_t *resend_msg;
    uint32_t resend_len, resend_every;
    uint64_t resend_at;
    uint8_t resends;
} qout;

/* A query this node may answer. */
typedef struct qin {
    uint64_t id; /* the host's handle */
    uint64_t ltime;
    uint32_t wire_id;
    uint64_t deadline;
    rumor_addr to;  /* the asker */
    uint64_t to_id; /* the asker's seal id (node_dest_name) */
    bool responded;
    bool local; /* we asked it ourselves: answers go straight to our qout */
    uint8_t asker_len;
    char asker[RUMOR_NAME_MAX]; /* its name: a signed response names whom it answers */
} qin;

typedef struct msg_state {
    uint64_t event_clock;
    uint64_t query_clock;
    msg_window events;
    msg_window queries;
    qout **out; /* oldest first */
    size_t nout;
    qin *in; /* oldest first */
    size_t nin, in_cap;
    uint64_t next_out_id;
    uint64_t next_in_id;
    /* The CLOCKS of the push-pull request being answered: what the peer holds. */
    bool peer_set;
    uint8_t peer_flags;
    uint64_t peer_sum;
    /* Events older than this that arrive in push-pull frames are not for the host: they are
     * from before our first join (msg_join_floor). */
    bool floor_set;
    uint64_t event_floor;
} msg_state;

#endif
