/*
 * rumor_sim: a deterministic simulator that hosts many rumor engines in one process.
 *
 * Every node is a real rumor_node. The simulator owns virtual time, a virtual network (latency
 * with jitter, loss, duplication, partitions, reliable ordered streams) and a fault schedule, and
 * it checks protocol invariants after every step. One seed reproduces a whole run: the simulator
 * draws every random choice from a single PRNG and derives each engine's seed from it, so the same
 * seed and options give the same trace hash and the same metrics.
 *
 * Addresses: a node's address is its index as 4 bytes, big-endian (rumor_addr.len == 4). Names
 * are "node-<index>". All state lives in the rumor_sim struct, so several simulators can coexist.
 */
#ifndef RUMOR_SIM_H
#define RUMOR_SIM_H

#include <rumor.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct rumor_sim rumor_sim;

/* Hook to adjust an engine's settings before rumor_node_new (timings, caps). */
typedef void (*rumor_sim_settings_fn)(rumor_settings *s, uint32_t node, void *ud);

/*
 * Hook on every datagram and stream write from `from` to `to` as it enters the network: a
 * hostile relay or a corrupting link in tests. It may rewrite the bytes in `data` and change
 * `*len` (up to `cap`; for stream writes `cap` is the written length, so only in-place edits);
 * `*len = 0` drops the datagram (a stream write is then delivered empty, i.e. not at all).
 */
typedef void (*rumor_sim_tamper_fn)(void *ud, uint32_t from, uint32_t to, bool stream,
                                    uint8_t *data, size_t *len, size_t cap);

typedef struct rumor_sim_options {
    uint64_t seed;
    uint32_t nodes;        /* node slots (indices 0..nodes-1); nodes start when told to */
    rumor_profile profile; /* engine defaults and the default link latency */
    uint32_t latency_ms;   /* minimum one-way latency */
    uint32_t jitter_ms;    /* extra uniform latency in [0, jitter]; reordering comes from it */
    double loss;           /* probability a datagram is dropped */
    double dup;            /* probability a datagram is delivered twice */
    uint32_t connect_timeout_ms; /* an unreachable stream open fails after this */
    bool stop_after_leave;       /* a leaving node shuts down at RUMOR_EVENT_LEAVE_DONE */
    bool abort_on_violation;     /* abort() on an invariant violation (after printing it) */
    rumor_sim_settings_fn settings_fn;
    void *settings_ud;
    rumor_sim_tamper_fn tamper; /* NULL: the network delivers what was sent */
    void *tamper_ud;
    FILE *log;       /* when set: one line per fault and node life-cycle change */
    bool log_events; /* also one line per engine event (needs `log`) */
    /* When set: called with every engine event after the simulator's own checks. It may call
     * the engine of `node` (answer a query, say): the simulator sends what that produces. */
    void (*event_fn)(rumor_sim *s, uint32_t node, const rumor_event *ev, void *ud);
    void *event_ud;
    /* Encryption: every node starts with key 0 (rumor_sim_key) and keeps its keyring across
     * restarts, as the agent's keyring file does; keyring faults rotate keys. */
    bool encrypt;
    /* An attacker on the wire: each datagram delivered and accepted is captured with this
     * probability and injected again later (within replay_delay_ms, default 5000), half the time
     * to its recipient and half to another node. With encryption an accepted replay is an
     * invariant violation, except at a recipient that restarted since (docs/protocol.md 3.1.4). */
    double replay;
    uint32_t replay_delay_ms;
    /* With encryption: nodes i with i % xchacha_every == 0 run XChaCha20-Poly1305 only
     * (seal_cipher xchacha, as on a CPU without AES-NI); the others the default (AES-256-GCM to
     * each other where this CPU has it). 0: none. */
    uint32_t xchacha_every;
    /* Recording (src/sim/sim_trace.h): when set, every call the simulator makes into node
     * `record_node`'s engine, with its virtual time, and a checkpoint of the node's outputs
     * after every drain, are written to `record`; `record_note` (the command line, say) goes
     * into the header. The caller opens and closes the file. Calls a caller makes itself
     * (through rumor_sim_node(), or from event_fn) are not seen: a replay then diverges at the
     * next checkpoint, and says so. */
    FILE *record;
    uint32_t record_node;
    const char *record_note;
} rumor_sim_options;

/* Fills `o` with defaults for `profile`: its link latency, no loss, 1 s connect timeout. */
void rumor_sim_options_default(rumor_sim_options *o, rumor_profile profile);

/* Creates a simulator with all nodes down at virtual time 0. Returns 0 or a RUMOR_ERR_* code. */
int rumor_sim_new(rumor_sim **out, const rumor_sim_options *o);

/* Frees the simulator and every engine in it. NULL is allowed. */
void rumor_sim_del(rumor_sim *s);

/* Current virtual time in milliseconds. */
uint64_t rumor_sim_now(const rumor_sim *s);

/*
 * Processes every queued event due at or before `t`, then sets the clock to `t`. Returns 0, or
 * RUMOR_ERR_STATE once an invariant was violated (rumor_sim_error() says which).
 */
int rumor_sim_run_until(rumor_sim *s, uint64_t t);

/* Runs for `ms` more virtual milliseconds. */
int rumor_sim_run_for(rumor_sim *s, uint64_t ms);

/* The first invariant violation, or NULL. */
const char *rumor_sim_error(const rumor_sim *s);

/* ------------------------------------------------------------------------------------------ */
/* Nodes and faults, applied at the current virtual time.                                      */

typedef enum rumor_sim_node_state {
    RUMOR_SIM_DOWN = 0,    /* never started */
    RUMOR_SIM_UP = 1,      /* running */
    RUMOR_SIM_PAUSED = 2,  /* stalled: processes nothing until it resumes */
    RUMOR_SIM_CRASHED = 3, /* stopped without a word */
    RUMOR_SIM_GONE = 4,    /* left gracefully and shut down */
} rumor_sim_node_state;

/* Picks a random started node as the seed of a join (never the joiner itself). */
#define RUMOR_SIM_SEED_RANDOM UINT32_MAX

/* Starts node `i` with `incarnation` (it joins nobody). Errors: INVALID, STATE (already up). */
int rumor_sim_node_start(rumor_sim *s, uint32_t i, uint32_t incarnation);

/* Starts node `i` and joins it through `seed` (an index or RUMOR_SIM_SEED_RANDOM). */
int rumor_sim_node_start_join(rumor_sim *s, uint32_t i, uint32_t seed);

/*
 * Starts every node already knowing every other (rumor_node_restore, as after a restart from a
 * snapshot of a formed cluster), so a run can measure a cluster of N without first paying for N
 * concurrent joins. Errors: STATE (a node is already up), NOMEM.
 */
int rumor_sim_warm_start(rumor_sim *s);

/* Calls rumor_node_join on a running node with the given seed nodes. */
int rumor_sim_node_join(rumor_sim *s, uint32_t i, const uint32_t *seeds, size_t nseeds);

/* Stops node `i` at once: its engine is freed and packets it sent that are in flight vanish. */
int rumor_sim_node_crash(rumor_sim *s, uint32_t i);

/*
 * Restarts a crashed or gone node under the same name and address with its last incarnation
 * (`bump` false) or the last + 1 (`bump` true), and joins it through `seed`.
 */
int rumor_sim_node_restart(rumor_sim *s, uint32_t i, bool bump, uint32_t seed);

/* rumor_sim_node_restart without the join: the caller may prepare the new engine first (say,
 * restore a snapshot into it) and then call rumor_sim_node_join. */
int rumor_sim_node_reboot(rumor_sim *s, uint32_t i, bool bump);

/* Stalls node `i` for `ms`: input queues and is handled, in arrival order, when it resumes. */
int rumor_sim_node_pause(rumor_sim *s, uint32_t i, uint64_t ms);

/* Calls rumor_node_leave on node `i`. */
int rumor_sim_node_leave(rumor_sim *s, uint32_t i);

/* State of slot `i` in the simulator. */
rumor_sim_node_state rumor_sim_node_state_of(const rumor_sim *s, uint32_t i);

/* The engine of node `i`, or NULL when it is not running. */
rumor_node *rumor_sim_node(const rumor_sim *s, uint32_t i);

/* After a caller used rumor_sim_node(s, i) directly (a key-value write, say): sends what the
 * engine queued and reschedules its wakeup. */
void rumor_sim_poke(rumor_sim *s, uint32_t i);

/* Writes node `i`'s address. */
void rumor_sim_addr(rumor_addr *out, uint32_t i);

/* Blocks (or unblocks) datagrams and streams from `a` to `b` only: an asymmetric partition. */
int rumor_sim_link_block(rumor_sim *s, uint32_t a, uint32_t b, bool blocked);

/*
 * Splits the network into groups: `groups[i]` is node i's group, and nodes in different groups
 * cannot reach each other in either direction. Open streams across the cut break.
 */
int rumor_sim_partition(rumor_sim *s, const uint16_t *groups);

/* Removes the group partition and every asymmetric block. */
void rumor_sim_heal(rumor_sim *s);

/* True when datagrams from `a` currently reach `b` (both up, no partition or block). */
bool rumor_sim_reachable(const rumor_sim *s, uint32_t a, uint32_t b);

/* ------------------------------------------------------------------------------------------ */
/* Scheduled faults: the same actions, queued for a virtual time.                               */

typedef enum rumor_sim_fault_kind {
    RUMOR_SIM_FAULT_START_JOIN = 1, /* node, seed */
    RUMOR_SIM_FAULT_CRASH = 2,      /* node */
    RUMOR_SIM_FAULT_RESTART = 3,    /* node, seed, bump */
    RUMOR_SIM_FAULT_PAUSE = 4,      /* node, ms */
    RUMOR_SIM_FAULT_LEAVE = 5,      /* node */
    RUMOR_SIM_FAULT_SPLIT = 6,      /* nodes [0, node) vs [node, N): a two-way partition */
    RUMOR_SIM_FAULT_HEAL = 7,
    RUMOR_SIM_FAULT_KEY_INSTALL = 8, /* node, seed = key index: install the key */
    RUMOR_SIM_FAULT_KEY_USE = 9,     /* node, seed = key index: make it primary */
    RUMOR_SIM_FAULT_KEY_REMOVE = 10, /* node, seed = key index: remove it */
} rumor_sim_fault_kind;

typedef struct rumor_sim_fault {
    rumor_sim_fault_kind kind;
    uint32_t node;
    uint32_t seed;
    bool bump;
    uint64_t ms;
} rumor_sim_fault;

/* Queues `f` for virtual time `at` (not before now). */
int rumor_sim_schedule(rumor_sim *s, uint64_t at, const rumor_sim_fault *f);

/* The simulator's encryption key number `index` (0..31), derived from its seed. */
void rumor_sim_key(const rumor_sim *s, uint32_t index, uint8_t out[RUMOR_KEY_BYTES]);

/* Applies a keyring fault (RUMOR_SIM_FAULT_KEY_*) to node `i` now: on its engine when it runs,
 * and to the keyring it will restart with. Returns the engine's result (0 when down). */
int rumor_sim_node_keyring(rumor_sim *s, uint32_t i, rumor_sim_fault_kind op, uint32_t key);

/* ------------------------------------------------------------------------------------------ */
/* Observation                                                                                 */

/* Multiply-xorshift hash over every delivered datagram, stream op and engine event so far. */
uint64_t rumor_sim_trace_hash(const rumor_sim *s);

/* Number of node slots, and the seed the simulator was created with. */
uint32_t rumor_sim_nodes(const rumor_sim *s);
uint64_t rumor_sim_seed(const rumor_sim *s);

/* Number of nodes that are up or paused. */
uint32_t rumor_sim_live_count(const rumor_sim *s);

/* True when every live node's event stream shows every other live node as a member. */
bool rumor_sim_converged(const rumor_sim *s);

/* Time convergence was first reached with all `nodes` started, or UINT64_MAX. */
uint64_t rumor_sim_converged_at(const rumor_sim *s);

/*
 * What node `observer`'s events last said about `member`: false when they said nothing yet (or
 * it was reaped), otherwise its state and incarnation (incarnations saturate at 8191).
 */
bool rumor_sim_view(const rumor_sim *s, uint32_t observer, uint32_t member,
                    rumor_member_state *state, uint32_t *incarnation);

/* RUMOR_EVENT_MEMBER_FAILED events about node `i` from any observer so far. */
uint64_t rumor_sim_failed_about(const rumor_sim *s, uint32_t i);

/* Events seen so far, by rumor_event_type (index 0 unused). */
void rumor_sim_event_counts(const rumor_sim *s, uint64_t counts[9]);

typedef struct rumor_sim_metrics {
    uint64_t convergence_ms; /* UINT64_MAX when never converged */
    /* From the last restart until every live node sees every live node alive again. */
    uint64_t rejoin_ms; /* UINT64_MAX when no restart, or not whole since */
    uint64_t crashes;
    uint64_t detect_count; /* (crash, observer) pairs that saw FAILED */
    uint64_t detect_min_ms, detect_median_ms, detect_p99_ms, detect_max_ms;
    uint64_t detect_missed;      /* live observers that never marked a crashed node failed */
    uint64_t false_positives;    /* FAILED about a node that was up and on the same side */
    uint64_t paused_failures;    /* FAILED about a node that was paused at that moment */
    uint64_t partition_failures; /* FAILED about a node up across a group partition */
    uint64_t false_suspicions;   /* SUSPECT about a node up and on the same side */
    uint64_t datagrams, datagram_bytes, stream_writes, stream_bytes;
    uint64_t dropped_loss, dropped_partition, dropped_down;
    double node_seconds;        /* integral of the live node count over virtual time */
    double messages_per_node_s; /* datagrams + stream writes sent, per live node per second */
    double bytes_per_node_s;
    /* The same from convergence on: the cost of a formed cluster, without the join (0 when the
     * run never converged or ended there). */
    double steady_messages_per_node_s;
    double steady_bytes_per_node_s;
    /* Engine counters (rumor_stats) summed over the nodes running now. */
    uint64_t probes, probe_failures, indirect_probes, stream_probes, suspicions, refutes;
    uint64_t pushpulls, engine_messages_out, engine_dropped;
    /* Per-node identities (zero when off): signatures made, verified, answered by the cache,
     * claims refused. */
    uint64_t ident_signed, ident_verified, ident_cached, ident_refused;
    uint64_t events; /* engine events drained */
    /* Encryption and replays: engine drops summed over the nodes running now, and the
     * simulator's own count of the replays it injected. */
    uint64_t dropped_auth_failed, dropped_unknown_key, dropped_replayed, dropped_not_for_us;
    uint64_t dropped_plaintext, dropped_encrypted, dropped_stale_epoch;
    /* Replays: injected, refused outright, taken only for their PING/PING_REQ because they
     * named an earlier life of the recipient (stale_epoch), and taken in full by a recipient
     * restarted since (a violation with encryption: the run fails). */
    uint64_t replays_injected, replays_rejected, replays_limited, replays_accepted_after_restart;
    /* Sealed datagrams delivered, by cipher, and AES-256-GCM ones delivered to a node that runs
     * XChaCha20-Poly1305 only (a sender that chose wrong: each is an unknown_key drop). */
    uint64_t datagrams_aesgcm, datagrams_xchacha, datagrams_aesgcm_to_xchacha;
    uint64_t trace_hash;
    uint64_t virtual_ms;
} rumor_sim_metrics;

/* Computes the metrics so far. */
void rumor_sim_metrics_get(const rumor_sim *s, rumor_sim_metrics *m);

/*
 * Writes the metrics as JSON object members (no braces), e.g. `"convergence":123,...`, to `f`.
 * Deterministic fields only: wall time and RSS are for the caller to add.
 */
void rumor_sim_metrics_json(const rumor_sim_metrics *m, FILE *f);

/*
 * The rumor-sim command line: parses `argv`, runs the scenario and prints one JSON object to
 * `out`. Errors go to `err`. Returns the process exit code (0, 1 on a violation, 2 on bad
 * arguments).
 */
int rumor_sim_cli(int argc, char **argv, FILE *out, FILE *err);

#endif /* RUMOR_SIM_H */
