/*
 * The data directory: an SQLite database (WAL, synchronous=FULL) holding the node's identity,
 * its last incarnation, its tags and the members it knew (with the key each was known by, when
 * identities are on; keys.h keeps the node's own key pair in files), plus a lock file that keeps a
 * second agent off the same directory. Inspect it with `sqlite3 DIR/rumor.db .dump`.
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

#endif
