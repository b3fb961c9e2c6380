/*
 * Internal layout of the simulator, shared by sim*.c and vnet*.c. Nothing here is global: every
 * piece of state hangs off struct rumor_sim.
 */
#ifndef RUMOR_SIM_INTERNAL_H
#define RUMOR_SIM_INTERNAL_H

#include "sim.h"
#include "sim_trace.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_NEVER UINT64_MAX
#define SIM_NONE  UINT32_MAX

/* Kinds of queued events. Each targets one node (`node`), except faults. */
enum sim_kind {
    SIM_EV_DGRAM = 1, /* p: sim_pkt; c: 1 once it reached a stalled receiver's queue */
    SIM_EV_WAKE,      /* a: wake generation */
    SIM_EV_ACCEPT,    /* a: conn slot, b: conn gen */
    SIM_EV_SDATA,     /* a: conn slot, b: conn gen, p: sim_chunk (side in chunk) */
    SIM_EV_SFIN,      /* a: conn slot, b: conn gen, c: receiving side; peer closed cleanly */
    SIM_EV_SRESET,    /* a: conn slot, b: conn gen, c: receiving side; connection broke */
    SIM_EV_FAULT,     /* p: rumor_sim_fault */
    SIM_EV_RESUME,    /* a: pause generation */
};

/* One queued event. Ordered by (at, seq) so equal times keep insertion order. */
typedef struct sim_entry {
    uint64_t at;
    uint64_t seq;
    uint16_t kind;
    uint16_t c;
    uint32_t node;
    uint32_t a;
    uint32_t b;
    void *p;
} sim_entry;

typedef struct sim_heap {
    sim_entry *v;
    size_t len, cap;
} sim_heap;

/* A datagram in flight. */
typedef struct sim_pkt {
    uint32_t src;
    uint32_t src_life;
    bool replay;        /* injected by the attacker: bypasses links, must be refused */
    uint32_t orig_dst;  /* replays: where the captured original was accepted */
    uint32_t orig_life; /* and that node's life then */
    uint32_t len;
    uint8_t data[];
} sim_pkt;

/* Stream bytes in flight. */
typedef struct sim_chunk {
    uint32_t side; /* receiving side */
    uint32_t len;
    uint8_t data[];
} sim_chunk;

/* Maps an engine's stream id to the simulator connection it belongs to. */
typedef struct sim_sref {
    uint64_t id;
    uint32_t slot;
    uint32_t side;
} sim_sref;

typedef struct sim_node {
    rumor_node *eng;
    uint8_t state; /* rumor_sim_node_state */
    bool leaving;
    bool leave_done;
    uint16_t group;     /* partition group */
    uint32_t life;      /* bumped at every start; packets carry it */
    uint32_t last_inc;  /* incarnation when last seen running, for restarts */
    uint32_t life_inc;  /* incarnation this life started with */
    uint64_t wake_at;   /* pending wakeup, SIM_NEVER if none */
    uint32_t wake_gen;  /* only the wakeup carrying this generation counts */
    uint32_t pause_gen; /* only the resume carrying this generation counts */
    uint64_t last_tick_at;
    uint32_t ticks_at_same_time;
    uint32_t good;         /* live peers this node's events show as a member */
    uint32_t crash_rec;    /* open crash record while crashed, SIM_NONE otherwise */
    uint64_t failed_about; /* FAILED events about this node, from anyone */
    sim_entry *deferred;   /* input held while paused, in arrival order */
    size_t ndeferred, capdeferred;
    sim_sref *srefs;
    uint32_t nsrefs, capsrefs;
    uint32_t keys;   /* keyring to restart with: bit i = rumor_sim_key(i) */
    uint8_t primary; /* its primary key index */
} sim_node;

enum sim_conn_state { SIM_CONN_FREE = 0, SIM_CONN_CONNECTING, SIM_CONN_OPEN, SIM_CONN_DEAD };

/* A reliable, ordered connection between an opener (side 0) and an acceptor (side 1). */
typedef struct sim_conn {
    uint32_t gen;
    uint8_t state;
    bool open[2]; /* the engine on that side still holds the id */
    uint32_t node[2];
    uint32_t life[2];
    uint64_t id[2];
    uint64_t next_at[2]; /* in-order delivery: bytes from side i arrive no earlier than this */
    uint64_t opened_at;
} sim_conn;

/* Detection record for one crash. */
typedef struct sim_crash {
    uint32_t node;
    bool restarted;
    uint64_t at;
    uint32_t *delay; /* per observer: ms until FAILED, SIM_UNSET, or SIM_NONE if not eligible */
    uint32_t *life;  /* observer's life at crash time */
} sim_crash;

#define SIM_UNSET (UINT32_MAX - 1)

/* Per (observer, member) view from events: low 3 bits state + 1 (0 = unknown), rest inc. */
#define SIM_VIEW_INC_MAX 8191u

struct rumor_sim {
    rumor_sim_options o;
    uint32_t n;
    uint64_t now;
    uint64_t seq;
    uint64_t rng[4];
    sim_heap heap;
    sim_node *nodes;
    uint16_t *view; /* n * n */
    /* For cache hints: each node's engine (a copy of nodes[i].eng, 80 KB at 10,000 nodes where
     * nodes[] is 1.2 MB) and its name when it is at most 15 bytes (name_len 0 = longer). */
    rumor_node **engs;
    char (*names)[16];
    uint8_t *name_len;

    /* Liveness and convergence, maintained incrementally. */
    uint32_t live;
    uint32_t nconv;   /* live nodes whose `good` equals live - 1 */
    uint32_t started; /* slots started at least once */
    uint64_t converged_at;
    uint64_t rejoin_from; /* last restart not yet followed by convergence, or SIM_NEVER */
    uint64_t rejoin_ms;   /* from the last restart to the cluster whole again, or SIM_NEVER */
    /* Traffic and node-time when convergence was reached: the steady-state baseline. */
    double steady_node_ms;
    uint64_t steady_msgs, steady_bytes;
    uint64_t live_since; /* last change of `live`, for the node-seconds integral */
    double node_ms;

    /* Network. */
    sim_conn *conns;
    uint32_t nconns, capconns;
    uint32_t *free_conns; /* released slots, capconns entries */
    uint32_t nfree_conns;
    uint32_t (*blocks)[2];
    uint32_t nblocks, capblocks;

    /* Crash records. */
    sim_crash *crashes;
    uint32_t ncrashes, capcrashes;

    /* Counters. */
    uint64_t datagrams, datagram_bytes, stream_writes, stream_bytes;
    uint64_t dropped_loss, dropped_partition, dropped_down;
    uint64_t false_positives, paused_failures, partition_failures, false_suspicions;
    uint64_t ev_counts[9];
    uint64_t events;
    uint64_t replays_injected, replays_rejected, replays_after_restart, replays_limited;
    uint64_t dgrams_aes, dgrams_xchacha, dgrams_aes_to_xchacha;
    uint64_t trace;

    /* Recording of one node (sim_trace.c). */
    uint64_t rec_records, rec_outputs, rec_hash;

    bool failed;
    char err[768];
};

/* sim_heap.c */
int sim_heap_push(sim_heap *h, const sim_entry *e);
bool sim_heap_pop(sim_heap *h, sim_entry *out);
const sim_entry *sim_heap_peek(const sim_heap *h);
/* Up to `k` (at most 3) of the smallest entries, smallest first, without removing them. */
size_t sim_heap_upcoming(const sim_heap *h, const sim_entry **out, size_t k);
void sim_heap_free(sim_heap *h);

/* sim_rng.c: xoshiro256** seeded through splitmix64. */
void sim_rng_seed(uint64_t st[4], uint64_t seed);
uint64_t sim_rng_next(uint64_t st[4]);
uint64_t sim_rng_below(uint64_t st[4], uint64_t n);
bool sim_rng_chance(uint64_t st[4], double p);
uint64_t sim_hash_mix(uint64_t h, const void *data, size_t len);
uint64_t sim_hash_u64(uint64_t h, uint64_t v);

/* sim.c */
void sim_push(rumor_sim *s, uint64_t at, const sim_entry *e);
void sim_after_call(rumor_sim *s, uint32_t i);
bool sim_is_live(const sim_node *nd);
void sim_violation(rumor_sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sim_log(const rumor_sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool sim_addr_index(const rumor_sim *s, const rumor_addr *a, uint32_t *out);

/* vnet.c: datagrams, links and partitions. */
uint64_t vnet_latency(rumor_sim *s);
void vnet_send(rumor_sim *s, uint32_t src, const rumor_datagram *d);
bool vnet_dgram_arrives(rumor_sim *s, const sim_entry *e);
void vnet_deliver_dgram(rumor_sim *s, const sim_entry *e);
bool vnet_link_ok(const rumor_sim *s, uint32_t a, uint32_t b);

/* sim_seal.c: keys, keyrings, replay injection. */
void sim_seal_settings(rumor_sim *s, uint32_t i, rumor_settings *st,
                       uint8_t keys[RUMOR_KEYRING_MAX][RUMOR_KEY_BYTES]);
void sim_seal_captured(rumor_sim *s, const sim_entry *e, int rc);
/* A cluster key operation changed node `i`'s engine keyring: remember it for restarts. */
void sim_seal_keyring_changed(rumor_sim *s, uint32_t i);
/* Mixed-cipher clusters: whether node i runs XChaCha20-Poly1305 only, and the count of a
 * delivered datagram by cipher. */
bool sim_xchacha_only(const rumor_sim *s, uint32_t i);
void sim_seal_count(rumor_sim *s, const sim_entry *e);
void sim_seal_deliver_replay(rumor_sim *s, const sim_entry *e);

/* vnet_stream.c: reliable ordered streams. */
void vnet_stream_op(rumor_sim *s, uint32_t i, const rumor_stream_op *op);
void vnet_stream_event(rumor_sim *s, const sim_entry *e);
void vnet_stream_node_down(rumor_sim *s, uint32_t i, bool graceful);
void vnet_stream_break_cut(rumor_sim *s);
void vnet_stream_free(rumor_sim *s);

/* sim_trace.c: recording one node's inputs and outputs (format in sim_trace.h). Every sim_rec_*
 * call is guarded by sim_rec_on(s, i) at its call site. */
bool sim_rec_on(const rumor_sim *s, uint32_t i);
void sim_rec_header(rumor_sim *s);
void sim_rec_new(rumor_sim *s, const rumor_settings *st);
void sim_rec_simple(rumor_sim *s, uint8_t kind);
void sim_rec_u64(rumor_sim *s, uint8_t kind, uint64_t v);
void sim_rec_restore(rumor_sim *s, const rumor_member *m);
void sim_rec_join(rumor_sim *s, const rumor_addr *addrs, size_t n);
void sim_rec_recv(rumor_sim *s, const rumor_addr *from, const uint8_t *data, size_t len);
void sim_rec_accept(rumor_sim *s, const rumor_addr *from, uint64_t id, int rc);
void sim_rec_sdata(rumor_sim *s, uint64_t id, const uint8_t *data, size_t len);
void sim_rec_keyring(rumor_sim *s, uint8_t op, const uint8_t key[RUMOR_KEY_BYTES]);
void sim_rec_kv_put(rumor_sim *s, const void *key, size_t klen, const void *val, size_t vlen);
void sim_rec_event(rumor_sim *s, const char *name, const void *payload, size_t len);
void sim_rec_out_dgram(rumor_sim *s, const rumor_datagram *d);
void sim_rec_out_stream(rumor_sim *s, const rumor_stream_op *op);
void sim_rec_out_event(rumor_sim *s, const rumor_event *ev);
void sim_rec_checkpoint(rumor_sim *s);
/* A key-value write and a user event by node `i`, recorded when it is the recorded node. */
int sim_node_kv_put(rumor_sim *s, uint32_t i, const void *key, size_t klen, const void *val,
                    size_t vlen);
int sim_node_event(rumor_sim *s, uint32_t i, const char *name, const void *payload, size_t len);

/* sim_kv.c: the key-value scenarios of rumor-sim (--kv-*). */
typedef struct sim_kv_opts {
    int mode;              /* rumor_sync_mode, or -1 for the default */
    int rumor_transmits;   /* kv_rumor_transmits, or -1 for the default */
    uint32_t probe_writes; /* single writes, each measured until every node holds it */
    double writes_per_s;   /* steady cluster-wide write load */
    uint32_t keys;         /* keys per node the load writes among */
    uint32_t value_bytes;  /* value size of the load's writes */
    uint64_t start_ms;     /* the first probe or the load starts then */
    uint64_t drain_ms;     /* the load stops this long before the end */
} sim_kv_opts;
typedef struct sim_kv_run sim_kv_run;
void sim_kv_opts_default(sim_kv_opts *o);
/* Returns 1 when parsed, 0 for a bad value, -1 when `name` is no --kv-* option. */
int sim_kv_parse(sim_kv_opts *o, const char *name, const char *v);
bool sim_kv_active(const sim_kv_opts *o);
void sim_kv_settings(rumor_settings *st, const sim_kv_opts *o);
sim_kv_run *sim_kv_new(rumor_sim *s, const sim_kv_opts *o, uint64_t duration_ms);
void sim_kv_step(sim_kv_run *r, uint64_t now);
bool sim_kv_done(const sim_kv_run *r);
/* Appends `,"kv":{...}` to the result object. */
void sim_kv_json(const sim_kv_run *r, FILE *f);
void sim_kv_del(sim_kv_run *r);

/* sim_check.c: event bookkeeping, invariants, convergence, detection. */
int sim_check_init(rumor_sim *s);
void sim_check_free(rumor_sim *s);
void sim_check_event(rumor_sim *s, uint32_t observer, const rumor_event *ev);
void sim_check_self(rumor_sim *s, uint32_t i);
void sim_check_node_up(rumor_sim *s, uint32_t i);
void sim_check_node_down(rumor_sim *s, uint32_t i, bool crashed);
void sim_check_recount(rumor_sim *s);

#endif /* RUMOR_SIM_INTERNAL_H */
