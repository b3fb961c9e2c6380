/*
 * Traces of one simulated node's inputs (rumor-sim --record FILE --record-node I), and their
 * replay into a fresh engine (bench/bench_trace, tests/sim/test_trace.c).
 *
 * The simulator writes every call it makes into node I's engine: each rumor_node_new() with the
 * settings it used (name, seed, keyring, seal secret and epoch, identity seed: everything that
 * makes the engine deterministic), the warm start's reserve and restores, joins, leaves, ticks,
 * every datagram delivered (with its source address), stream accepts, stream bytes and closes,
 * keyring changes, key-value writes and user events, each with the virtual time it happened at.
 * After every drain of the node's outputs it writes a checkpoint: how many outputs (datagrams,
 * stream operations, events) the node produced so far and a hash over all of them. A replay that
 * makes the same calls must reproduce every checkpoint.
 *
 * File format (a bench artifact, not a storage format; native byte order, and the settings
 * record holds the raw rumor_settings struct, so a trace is read by the build that wrote it, or
 * one with the same struct layout, which the header checks):
 *
 *   header:  "RUMORTR1" | u32 format version (1) | u32 node index | u32 sizeof(rumor_settings)
 *            | u32 RUMOR_SETTINGS_VERSION | u16 note length | note (the rumor-sim command line)
 *   record:  u8 kind | u64 virtual ms | u32 payload length | payload
 *
 * Payloads by kind (strings are u8 length + bytes, addresses u8 length + bytes):
 *   NEW      raw rumor_settings (pointers zeroed) | name | label | u8 nkeys | nkeys x 32-byte keys
 *   DEL      empty (the node crashed or shut down)
 *   RESERVE  u64 count
 *   RESTORE  name | addr | u32 incarnation | u8 state | u16 meta length | meta | u8 has key | key
 *   JOIN     u32 count | addrs
 *   LEAVE    empty
 *   TICK     empty
 *   RECV     addr (the source) | datagram bytes
 *   ACCEPT   addr (the opener) | u64 id the engine handed out | i32 result
 *   SDATA    u64 stream id | bytes
 *   SCLOSED  u64 stream id
 *   KEYRING  u8 operation (rumor_sim_fault_kind) | 32-byte key
 *   KV_PUT   u16 key length | key | value
 *   EVENT    name | payload (a user event sent by this node)
 *   OUTPUT   u64 outputs so far | u64 hash of them (a checkpoint after a drain)
 */
#ifndef RUMOR_SIM_TRACE_H
#define RUMOR_SIM_TRACE_H

#include <rumor.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_TRACE_MAGIC   "RUMORTR1"
#define SIM_TRACE_VERSION 1u

typedef enum sim_trace_kind {
    SIM_TR_NEW = 1,
    SIM_TR_DEL = 2,
    SIM_TR_RESERVE = 3,
    SIM_TR_RESTORE = 4,
    SIM_TR_JOIN = 5,
    SIM_TR_LEAVE = 6,
    SIM_TR_TICK = 7,
    SIM_TR_RECV = 8,
    SIM_TR_ACCEPT = 9,
    SIM_TR_SDATA = 10,
    SIM_TR_SCLOSED = 11,
    SIM_TR_KEYRING = 12,
    SIM_TR_KV_PUT = 13,
    SIM_TR_EVENT = 14,
    SIM_TR_OUTPUT = 15,
    SIM_TR_KIND_COUNT
} sim_trace_kind;

typedef struct sim_trace_rec {
    uint8_t kind;
    uint64_t now;
    uint32_t len;
    const uint8_t *p;
} sim_trace_rec;

/* A trace loaded in memory, records indexed. */
typedef struct sim_trace {
    uint8_t *data;
    size_t len;
    uint32_t node;
    char note[1024];
    sim_trace_rec *v;
    size_t n;
    uint64_t counts[SIM_TR_KIND_COUNT]; /* records by kind */
} sim_trace;

/* Parses `len` bytes at `data` (taking ownership of the malloc'd buffer, freed by
 * sim_trace_free even on failure). Returns 0 or RUMOR_ERR_MALFORMED with `err` saying why. */
int sim_trace_parse(sim_trace *t, uint8_t *data, size_t len, char *err, size_t errcap);

/* Reads and parses a trace file. Errors: RUMOR_ERR_IO-like failures are reported as
 * RUMOR_ERR_INVALID with `err` set; a bad file as RUMOR_ERR_MALFORMED. */
int sim_trace_load(sim_trace *t, const char *path, char *err, size_t errcap);

void sim_trace_free(sim_trace *t);

/* The output hash both the recorder and the replay fold every output into. */
uint64_t sim_trace_hash_dgram(uint64_t h, const rumor_datagram *d);
uint64_t sim_trace_hash_stream(uint64_t h, const rumor_stream_op *op);
uint64_t sim_trace_hash_event(uint64_t h, const rumor_event *ev);
#define SIM_TRACE_HASH_INIT 0xcbf29ce484222325ull

/* What a replay did. Engine counters are summed over the node's lives. */
typedef struct sim_replay_result {
    double traffic_s;      /* clock time spent on traffic records (all but NEW/RESERVE/RESTORE/DEL)
                              including the drains; 0 without a clock */
    uint64_t packets;      /* RECV records */
    uint64_t packet_bytes; /* their bytes */
    uint64_t stream_chunks, stream_bytes;
    uint64_t ticks;
    uint64_t lives; /* NEW records */
    uint64_t outputs, hash;
    bool sealed, signed_; /* the last life had a keyring / an identity */
    /* Determinism: the first checkpoint (record index) that did not match, or SIZE_MAX. */
    size_t diverged_at;
    uint64_t checkpoints;
    uint64_t messages_in, packets_in, ident_verified, ident_cached, ident_signed;
    uint64_t dropped; /* all drop reasons */
    char error[256];  /* a record that could not be replayed (bad payload, engine refused NEW) */
} sim_replay_result;

/*
 * Replays `t` into fresh engines: every record as the simulator made the call, draining outputs
 * at each OUTPUT checkpoint. With `verify`, outputs are hashed and compared with every
 * checkpoint; without it they are only drained (what the benchmark times). `clock`, when set,
 * is read at the edges of traffic stretches (see traffic_s). Returns 0, or RUMOR_ERR_MALFORMED
 * when a record cannot be replayed (result->error says which).
 */
int sim_trace_replay(const sim_trace *t, bool verify, double (*clock)(void), sim_replay_result *r);

#endif /* RUMOR_SIM_TRACE_H */
