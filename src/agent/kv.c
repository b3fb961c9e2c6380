/*
 * The agent's key-value state on the loop thread: saving this node's entries to the data dir,
 * bringing them back at start, and publishing changes to watchers.
 *
 * Durability: a write through the API runs on the loop thread, and agent_kv_save() commits it
 * (synchronous=FULL) before the call returns; only then does the runtime send the write's
 * datagrams and the HTTP thread answer 200. Any other change to this node's entries (adopted
 * from a peer after a restart from an older copy, written by the engine itself, a delete it
 * collected) is saved by the runtime's before_send hook, again before anything is sent. So a
 * version that was acknowledged or seen by any peer is in the database, and a node restarted
 * from it (even after kill -9) never reuses a version or brings back a deleted key.
 *
 * The engine walks its own keyspace in version order, so a save writes only the entries above
 * the highest version the database holds (a key rewritten since is written once, at its newest
 * version), plus the counters; deletes that the engine collected are swept from the table.
 */
#include "agent.h"

#include "log.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KV_RETRY_MS     1000u
#define KV_LOG_EVERY_MS 10000u

json_t *agent_b64_json(const void *p, size_t len)
{
    size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    char *text = malloc(cap);
    if (!text)
        return NULL;
    sodium_bin2base64(text, cap, p, len, sodium_base64_VARIANT_ORIGINAL);
    json_t *s = json_string(text);
    free(text);
    return s;
}

/* ---- saving ---- */

typedef struct save_ctx {
    agent *a;
    store_kv_txn *t;
    size_t rows;
} save_ctx;

static uint64_t wall_of(const agent *a, uint64_t now_ms)
{
    int64_t w = (int64_t)now_ms + a->kv.wall_offset_ms;
    return w > 0 ? (uint64_t)w : 0;
}

static int save_row(const rumor_kv_entry *e, void *ud)
{
    save_ctx *c = ud;
    store_kv_row r = {.shared = e->shared,
                      .deleted = e->deleted,
                      .key = e->key,
                      .key_len = e->key_len,
                      .value = e->value,
                      .value_len = e->value_len,
                      .version = e->version,
                      .stamp = e->stamp,
                      .deleted_at_ms = e->deleted ? wall_of(c->a, e->deleted_at) : 0,
                      .flags = e->flags};
    store_kv_put(c->t, &r);
    c->rows++;
    return 0;
}

int agent_kv_save(agent *a, char *err, size_t cap)
{
    if (!a->store || !a->rt || !rumor_runtime_node(a->rt))
        return 0;
    rumor_node *n = rumor_runtime_node(a->rt);
    rumor_kv_origin_info info;
    rumor_kv_stats st;
    if (rumor_node_kv_origin_info(n, NULL, &info) != 0)
        return 0;
    /* The engine holds less of itself than the database: it was reset (it adopted the
     * cluster's copy from scratch). Rewrite everything rather than keep stale rows. */
    bool reset = info.max_version < a->kv.db_max;
    if (!reset && info.max_version == a->kv.db_max && info.gc_version == a->kv.db_gc)
        return 0;
    rumor_node_kv_stats(n, &st);
    save_ctx c = {.a = a};
    if (store_kv_begin(a->store, &c.t, reset) != 0)
        goto fail;
    rumor_kv_filter f = {NULL, 0, reset ? 0 : a->kv.db_max,
                         RUMOR_KV_OWN | RUMOR_KV_SHARED | RUMOR_KV_DELETED};
    (void)rumor_node_kv_foreach(n, NULL, &f, save_row, &c);
    if (store_kv_commit(c.t, info.max_version, info.gc_version, st.clock) != 0)
        goto fail;
    a->kv.db_max = info.max_version;
    a->kv.db_gc = info.gc_version;
    a->kv.db_clock = st.clock;
    a->kv.saves++;
    return 0;
fail:
    a->kv.save_errors++;
    snprintf(err, cap, "cannot save this node's key-value entries to %s: %s", store_path(a->store),
             store_errmsg(a->store));
    return -1;
}

void agent_kv_before_send(agent *a)
{
    char err[256];
    uint64_t now = a->loop ? uv_now(a->loop) : 0;
    /* After a failure, retry once a second rather than on every packet. */
    if (a->stopping || now < a->kv.retry_at || agent_kv_save(a, err, sizeof err) == 0)
        return;
    a->kv.retry_at = now + KV_RETRY_MS;
    if (now >= a->kv.log_at) {
        agent_log(RUMOR_LOG_ERROR, "%s", err);
        a->kv.log_at = now + KV_LOG_EVERY_MS;
    }
}

/* ---- restoring ---- */

typedef struct restore_ctx {
    agent *a;
    rumor_node *n;
    uint64_t now, max_row;
    size_t restored, skipped;
} restore_ctx;

static void restore_row(const store_kv_row *r, void *ud)
{
    restore_ctx *c = ud;
    /* A delete ages from when it was made: its saved wall time in this run's clock. */
    uint64_t at = 0;
    if (r->deleted) {
        int64_t t = (int64_t)r->deleted_at_ms - c->a->kv.wall_offset_ms;
        at = t < 0 ? 0 : (uint64_t)t > c->now ? c->now : (uint64_t)t;
    }
    rumor_kv_entry e = {.key = r->key,
                        .key_len = r->key_len,
                        .value = r->value,
                        .value_len = r->value_len,
                        .version = r->version,
                        .stamp = r->stamp,
                        .deleted_at = at,
                        .shared = r->shared,
                        .deleted = r->deleted,
                        .flags = r->flags};
    int rc = rumor_node_kv_restore(c->n, &e, c->now);
    if (r->version > c->max_row)
        c->max_row = r->version;
    if (rc == 0) {
        c->restored++;
        return;
    }
    c->skipped++;
    agent_log(RUMOR_LOG_WARN, "data dir: saved %s key of version %llu not restored: %s",
              r->shared ? "shared" : "own", (unsigned long long)r->version, rumor_strerror(rc));
}

int agent_kv_restore(agent *a, char *err, size_t cap)
{
    if (!a->store)
        return 0;
    uint64_t max = 0, gc = 0, clock = 0;
    restore_ctx c = {.a = a, .n = rumor_runtime_node(a->rt), .now = uv_now(a->loop)};
    /* Starting without them would reuse versions the cluster holds: refuse, and say why. */
    if (store_kv_load(a->store, restore_row, &c, &max, &gc, &clock) != 0) {
        snprintf(err, cap,
                 "cannot read the saved key-value entries in %s (%s); repair or move the data "
                 "dir",
                 store_path(a->store), store_errmsg(a->store));
        return -1;
    }
    if (c.max_row > max)
        max = c.max_row;
    if (gc > max)
        gc = max;
    int rc = rumor_node_kv_restore_version(c.n, max, gc, clock, c.now);
    if (rc != 0)
        agent_log(RUMOR_LOG_WARN, "data dir: version counter not restored: %s", rumor_strerror(rc));
    a->kv.db_max = max;
    a->kv.db_gc = gc;
    a->kv.db_clock = clock;
    if (c.restored || max)
        agent_log(RUMOR_LOG_INFO, "restored %zu key-value entr%s (version %llu%s) from %s%s",
                  c.restored, c.restored == 1 ? "y" : "ies", (unsigned long long)max,
                  gc ? ", deletes collected up to there" : "", store_path(a->store),
                  c.skipped ? "; some were skipped, see above" : "");
    rumor_runtime_pump(a->rt);
    return 0;
}

/* ---- change events ---- */

static void publish(agent *a, const rumor_event *ev)
{
    json_t *o = json_pack("{s:s,s:s,s:I,s:I,s:b,s:b,s:I}", "type", "kv-change", "origin",
                          ev->member.name, "version", (json_int_t)ev->version, "old_version",
                          (json_int_t)ev->old_version, "deleted", ev->deleted, "shared", ev->shared,
                          "at_ms", (json_int_t)wall_of(a, ev->at_ms));
    if (!o)
        return;
    agent_json_set_text(o, "key", ev->key, ev->key_len);
    rumor_kv_entry e;
    /* The value as of this change, when it is still the entry's newest version. */
    if (!ev->deleted &&
        rumor_node_kv_lookup(rumor_runtime_node(a->rt), ev->member.name, ev->key, ev->key_len,
                             ev->shared, &e) == 0 &&
        e.version == ev->version)
        json_object_set_new(o, "value", agent_b64_json(e.value, e.value_len));
    char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    if (text)
        hub_push_keyed(a->kvhub, "kv-change", text, ev->key, ev->key_len);
    free(text);
    json_decref(o);
}

void agent_kv_event(agent *a, const rumor_event *ev)
{
    a->kv.changes++;
    agent_log(RUMOR_LOG_DEBUG, "event kv-change: %s %s key (%zu bytes) version %llu -> %llu%s",
              ev->member.name, ev->shared ? "shared" : "own", ev->key_len,
              (unsigned long long)ev->old_version, (unsigned long long)ev->version,
              ev->deleted ? " (deleted)" : "");
    if (atomic_load(&a->kv_watchers) > 0)
        publish(a, ev);
}
