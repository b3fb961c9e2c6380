/*
 * The data directory: an SQLite database (WAL, synchronous=FULL) holding the node's identity,
 * its last incarnation, its tags and the members it knew (with the key each was known by, when
 * identities are on; idkeys.h keeps the node's own key pair in files), plus a lock file that keeps
 * a second agent off the same directory. Inspect it with `sqlite3 DIR/rumor.db .dump`.
 */
#ifndef RUMOR_AGENT_STORE_H
#define RUMOR_AGENT_STORE_H

#include "config.h"
#include "rumor_runtime.h"

typedef struct agent_store agent_store;

/* Creates the directory if needed, takes the lock, opens the database. */
int store_open(agent_store **out, const char *dir, char *err, size_t errcap);
void store_close(agent_store *st);

/* A value of the `meta` table. Returns 1 when found, 0 when not, -1 on error. */
int store_get(agent_store *st, const char *key, char *buf, size_t cap);
/* Writes a value durably (committed and synced before returning). */
int store_put(agent_store *st, const char *key, const char *value);

/* Replaces the member table with `m` in one transaction. */
int store_save_members(agent_store *st, const rumor_runtime_member *m, size_t n);
/* Addresses of remembered members (not left, not self), most recently seen first. */
int store_load_addrs(agent_store *st, strv *out, size_t max);

/* Calls fn for each remembered member that was alive or suspect when last saved. */
int store_load_members(agent_store *st, void (*fn)(const rumor_member *m, void *ud), void *ud);

const char *store_path(const agent_store *st);
/* Why the last key-value call failed (SQLite's message). */
const char *store_errmsg(const agent_store *st);

/*
 * This node's key-value entries (own keys and shared-keyspace writes, deletes included until
 * the node collects them) in table kv_own, and in `meta` its version counter (kv_max_version),
 * collection horizon (kv_gc_version) and hybrid logical clock (kv_clock). The agent saves them
 * in a committed transaction before it acknowledges a write or lets it leave in a datagram.
 */
typedef struct store_kv_row {
    bool shared, deleted;
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    uint64_t version, stamp;
    uint64_t deleted_at_ms; /* Unix time of the delete */
    uint32_t flags;         /* the engine's flags of the entry (rumor_kv_entry.flags) */
} store_kv_row;

typedef struct store_kv_txn store_kv_txn;

/* Opens a write transaction; `reset` first drops every saved entry. */
int store_kv_begin(agent_store *st, store_kv_txn **out, bool reset);
/* Inserts or replaces the row of (shared, key). A failure makes the commit fail. */
void store_kv_put(store_kv_txn *t, const store_kv_row *r);
/* Drops saved deletes at or below gc_version, records the counters and commits (synchronously,
 * synchronous=FULL); on any failure rolls everything back. Frees `t`. Returns 0 or -1. */
int store_kv_commit(store_kv_txn *t, uint64_t max_version, uint64_t gc_version, uint64_t clock);
/* Calls fn for each saved entry in ascending version order; reads the counters (0 when none). */
int store_kv_load(agent_store *st, void (*fn)(const store_kv_row *r, void *ud), void *ud,
                  uint64_t *max_version, uint64_t *gc_version, uint64_t *clock);

#endif
