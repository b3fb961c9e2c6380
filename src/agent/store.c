/* The data directory on SQLite. Every write is a committed transaction with synchronous=FULL,
 * so what the agent reported as done survives a crash or kill -9 at any instant. */
#include "store.h"

#include "idkeys.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct agent_store {
    sqlite3 *db;
    int lock_fd;
    char path[PATH_MAX];
    char kv_err[256]; /* why the last key-value transaction failed */
    bool kv_gc_done;  /* kv_gc_applied is what the last commit dropped */
    uint64_t kv_gc_applied;
};

static const char *const schema =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS members(name TEXT PRIMARY KEY, addr TEXT NOT NULL,"
    " status TEXT NOT NULL, incarnation INTEGER NOT NULL, tags TEXT,"
    " updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')));"
    "CREATE TABLE IF NOT EXISTS kv_own(shared INTEGER NOT NULL, key BLOB NOT NULL,"
    " value BLOB NOT NULL, version INTEGER NOT NULL, stamp INTEGER NOT NULL,"
    " deleted INTEGER NOT NULL, deleted_at_ms INTEGER NOT NULL, flags INTEGER NOT NULL,"
    " PRIMARY KEY(shared, key));"
    "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '1');"
    /* Identities: the key each member was known by, so that a restart keeps the pins of trust
     * on first use (docs/protocol.md section 12.5). */
    "CREATE TABLE IF NOT EXISTS member_keys(name TEXT PRIMARY KEY, public_key TEXT NOT NULL);";

static int mkdir_p(const char *dir)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* A POSIX record lock on DIR/agent.lock: the kernel drops it when the process dies, even by
 * kill -9, so a crashed agent never leaves the directory locked. */
static int take_lock(agent_store *st, const char *dir, char *err, size_t cap)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/agent.lock", dir);
    st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (st->lock_fd < 0) {
        snprintf(err, cap, "data dir %.200s: cannot open %.220s: %s", dir, path, strerror(errno));
        return -1;
    }
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(st->lock_fd, F_SETLK, &fl) != 0) {
        char pid[32] = "";
        ssize_t n = pread(st->lock_fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        snprintf(err, cap,
                 "data dir %s is in use by another rumor agent (pid %s); stop it or use "
                 "another --data-dir",
                 dir, pid[0] ? pid : "unknown");
        return -1;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(st->lock_fd, 0) != 0 || pwrite(st->lock_fd, pid, (size_t)len, 0) != len)
        agent_log(RUMOR_LOG_WARN, "data dir %s: cannot write pid to the lock file", dir);
    return 0;
}

static int exec_sql(agent_store *st, const char *sql, char *err, size_t cap)
{
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, cap, "database %.200s: %s", st->path, msg ? msg : "error");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int store_open(agent_store **out, const char *dir, char *err, size_t cap)
{
    agent_store *st = calloc(1, sizeof *st);
    if (!st)
        return -1;
    st->lock_fd = -1;
    if (mkdir_p(dir) != 0) {
        snprintf(err, cap, "data dir %.200s: cannot create it: %s", dir, strerror(errno));
        goto fail;
    }
    if (take_lock(st, dir, err, cap) != 0)
        goto fail;
    snprintf(st->path, sizeof st->path, "%s/rumor.db", dir);
    if (sqlite3_open_v2(st->path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        snprintf(err, cap, "database %.200s: %s", st->path,
                 st->db ? sqlite3_errmsg(st->db) : "cannot open");
        goto fail;
    }
    sqlite3_busy_timeout(st->db, 2000);
    if (exec_sql(st, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", err, cap) != 0 ||
        exec_sql(st, schema, err, cap) != 0)
        goto fail;
    *out = st;
    return 0;
fail:
    store_close(st);
    return -1;
}

void store_close(agent_store *st)
{
    if (!st)
        return;
    if (st->db)
        sqlite3_close(st->db);
    if (st->lock_fd >= 0)
        close(st->lock_fd);
    free(st);
}

const char *store_path(const agent_store *st)
{
    return st->path;
}

const char *store_errmsg(const agent_store *st)
{
    return st->kv_err[0] ? st->kv_err : sqlite3_errmsg(st->db);
}

int store_get(agent_store *st, const char *key, char *buf, size_t cap)
{
    sqlite3_stmt *q = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(st->db, "SELECT value FROM meta WHERE key = ?", -1, &q, NULL) !=
        SQLITE_OK)
        return -1;
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    int step = sqlite3_step(q);
    if (step == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(q, 0);
        snprintf(buf, cap, "%s", v ? (const char *)v : "");
        rc = 1;
    } else if (step == SQLITE_DONE) {
        rc = 0;
    }
    sqlite3_finalize(q);
    return rc;
}

int store_put(agent_store *st, const char *key, const char *value)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(st->db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", -1, &q,
                           NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(q);
    if (rc != 0)
        agent_log(RUMOR_LOG_ERROR, "database %s: writing %s: %s", st->path, key,
                  sqlite3_errmsg(st->db));
    return rc;
}

static int insert_member(sqlite3_stmt *q, const rumor_runtime_member *m)
{
    char addr[64];
    rumor_addr_format(&m->addr, addr, sizeof addr);
    sqlite3_reset(q);
    sqlite3_bind_text(q, 1, m->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, addr, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 3, rumor_member_state_name(m->state), -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, (sqlite3_int64)m->incarnation);
    sqlite3_bind_text(q, 5, (const char *)m->meta, (int)m->meta_len, SQLITE_STATIC);
    return sqlite3_step(q) == SQLITE_DONE ? 0 : -1;
}

static int save_keys(agent_store *st, const rumor_runtime_member *m, size_t n)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(st->db,
                           "INSERT OR REPLACE INTO member_keys(name, public_key) VALUES(?, ?)", -1,
                           &q, NULL) != SQLITE_OK)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (m[i].is_self || !m[i].has_public_key)
            continue;
        char pk[KEYS_TEXT_MAX];
        keys_public_text(m[i].public_key, pk);
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, m[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, pk, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(q) != SQLITE_DONE) {
            sqlite3_finalize(q);
            return -1;
        }
    }
    sqlite3_finalize(q);
    return 0;
}

int store_save_members(agent_store *st, const rumor_runtime_member *m, size_t n)
{
    char err[256];
    sqlite3_stmt *q = NULL;
    if (exec_sql(st, "BEGIN IMMEDIATE; DELETE FROM members; DELETE FROM member_keys;", err,
                 sizeof err) != 0)
        goto fail;
    if (sqlite3_prepare_v2(st->db,
                           "INSERT OR REPLACE INTO members(name, addr, status, incarnation, "
                           "tags) VALUES(?, ?, ?, ?, ?)",
                           -1, &q, NULL) != SQLITE_OK)
        goto fail;
    for (size_t i = 0; i < n; i++)
        if (!m[i].is_self && insert_member(q, &m[i]) != 0)
            goto fail;
    sqlite3_finalize(q);
    q = NULL;
    if (save_keys(st, m, n) != 0)
        goto fail;
    return exec_sql(st, "COMMIT;", err, sizeof err);
fail:
    agent_log(RUMOR_LOG_ERROR, "database %s: saving members: %s", st->path, sqlite3_errmsg(st->db));
    sqlite3_finalize(q);
    (void)exec_sql(st, "ROLLBACK;", err, sizeof err);
    return -1;
}

int store_load_addrs(agent_store *st, strv *out, size_t max)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT addr FROM members WHERE status != 'left' "
                           "ORDER BY (status = 'alive') DESC, updated_at DESC LIMIT ?",
                           -1, &q, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(q, 1, (sqlite3_int64)max);
    while (sqlite3_step(q) == SQLITE_ROW) {
        const unsigned char *a = sqlite3_column_text(q, 0);
        if (a && strv_push(out, (const char *)a) != 0)
            break;
    }
    sqlite3_finalize(q);
    return 0;
}

int store_load_members(agent_store *st, void (*fn)(const rumor_member *m, void *ud), void *ud)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT m.name, m.addr, m.incarnation, m.tags, k.public_key "
                           "FROM members m LEFT JOIN member_keys k ON k.name = m.name "
                           "WHERE m.status IN ('alive', 'suspect')",
                           -1, &q, NULL) != SQLITE_OK)
        return -1;
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(q, 0);
        const char *addr = (const char *)sqlite3_column_text(q, 1);
        const void *tags = sqlite3_column_blob(q, 3);
        rumor_member m = {.name = name,
                          .name_len = name ? strlen(name) : 0,
                          .incarnation = (uint32_t)sqlite3_column_int64(q, 2),
                          .meta = tags,
                          .meta_len = (size_t)sqlite3_column_bytes(q, 3)};
        const char *key = (const char *)sqlite3_column_text(q, 4);
        uint8_t pk[RUMOR_IDENTITY_KEY_BYTES];
        char why[256];
        if (key && keys_public_parse(key, pk, why, sizeof why) == 0)
            m.public_key = pk; /* pinned again at restore */
        /* Rows an operator edited into nonsense are skipped, not fatal. */
        if (name && addr &&
            rumor_runtime_parse_addr(addr, RUMOR_RUNTIME_DEFAULT_PORT, &m.addr, NULL, 0) == 0)
            fn(&m, ud);
    }
    sqlite3_finalize(q);
    return 0;
}

/* ---- this node's key-value entries ---- */

static int meta_u64(agent_store *st, const char *key, uint64_t *out)
{
    char buf[32];
    int rc = store_get(st, key, buf, sizeof buf);
    if (rc == 1)
        *out = strtoull(buf, NULL, 10);
    return rc < 0 ? -1 : 0;
}

static int put_u64(sqlite3_stmt *q, const char *key, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    sqlite3_reset(q);
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, buf, -1, SQLITE_TRANSIENT);
    return sqlite3_step(q) == SQLITE_DONE ? 0 : -1;
}

struct store_kv_txn {
    agent_store *st;
    sqlite3_stmt *upsert;
    bool failed;
};

int store_kv_begin(agent_store *st, store_kv_txn **out, bool reset)
{
    char err[256];
    store_kv_txn *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    t->st = st;
    if (exec_sql(st, reset ? "BEGIN IMMEDIATE; DELETE FROM kv_own;" : "BEGIN IMMEDIATE;", err,
                 sizeof err) != 0)
        goto fail;
    if (sqlite3_prepare_v2(st->db,
                           "INSERT OR REPLACE INTO kv_own(shared, key, value, version, stamp, "
                           "deleted, deleted_at_ms, flags) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
                           -1, &t->upsert, NULL) != SQLITE_OK)
        goto fail;
    *out = t;
    return 0;
fail:
    snprintf(st->kv_err, sizeof st->kv_err, "%s", sqlite3_errmsg(st->db));
    (void)exec_sql(st, "ROLLBACK;", err, sizeof err);
    free(t);
    return -1;
}

void store_kv_put(store_kv_txn *t, const store_kv_row *r)
{
    sqlite3_stmt *q = t->upsert;
    if (t->failed)
        return;
    sqlite3_reset(q);
    sqlite3_bind_int(q, 1, r->shared ? 1 : 0);
    sqlite3_bind_blob(q, 2, r->key, (int)r->key_len, SQLITE_STATIC);
    /* A zero-length blob with a NULL pointer binds NULL; an empty value must stay a blob. */
    sqlite3_bind_blob(q, 3, r->value_len ? (const void *)r->value : (const void *)"",
                      (int)r->value_len, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, (sqlite3_int64)r->version);
    sqlite3_bind_int64(q, 5, (sqlite3_int64)r->stamp);
    sqlite3_bind_int(q, 6, r->deleted ? 1 : 0);
    sqlite3_bind_int64(q, 7, (sqlite3_int64)r->deleted_at_ms);
    sqlite3_bind_int64(q, 8, (sqlite3_int64)r->flags);
    if (sqlite3_step(q) != SQLITE_DONE) {
        snprintf(t->st->kv_err, sizeof t->st->kv_err, "%s", sqlite3_errmsg(t->st->db));
        t->failed = true;
    }
}

int store_kv_commit(store_kv_txn *t, uint64_t max_version, uint64_t gc_version, uint64_t clock)
{
    agent_store *st = t->st;
    char err[256];
    sqlite3_stmt *meta = NULL, *gc = NULL;
    int rc = -1;
    if (t->failed)
        goto done;
    /* Tombstones the node collected are gone for good: their rows go too (once per horizon). */
    bool sweep = !st->kv_gc_done || gc_version > st->kv_gc_applied;
    if (sweep) {
        if (sqlite3_prepare_v2(st->db, "DELETE FROM kv_own WHERE deleted = 1 AND version <= ?", -1,
                               &gc, NULL) != SQLITE_OK)
            goto done;
        sqlite3_bind_int64(gc, 1, (sqlite3_int64)gc_version);
        if (sqlite3_step(gc) != SQLITE_DONE)
            goto done;
    }
    if (sqlite3_prepare_v2(st->db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", -1,
                           &meta, NULL) != SQLITE_OK ||
        put_u64(meta, "kv_max_version", max_version) != 0 ||
        put_u64(meta, "kv_gc_version", gc_version) != 0 || put_u64(meta, "kv_clock", clock) != 0)
        goto done;
    rc = exec_sql(st, "COMMIT;", err, sizeof err);
    if (rc == 0 && sweep) {
        st->kv_gc_done = true;
        st->kv_gc_applied = gc_version;
    }
done:
    if (rc != 0 && !t->failed) /* a failed put recorded its own reason */
        snprintf(st->kv_err, sizeof st->kv_err, "%s", sqlite3_errmsg(st->db));
    if (rc == 0)
        st->kv_err[0] = '\0';
    sqlite3_finalize(gc);
    sqlite3_finalize(meta);
    sqlite3_finalize(t->upsert);
    if (rc != 0)
        (void)exec_sql(st, "ROLLBACK;", err, sizeof err);
    free(t);
    return rc;
}

int store_kv_load(agent_store *st, void (*fn)(const store_kv_row *r, void *ud), void *ud,
                  uint64_t *max_version, uint64_t *gc_version, uint64_t *clock)
{
    sqlite3_stmt *q = NULL;
    *max_version = *gc_version = *clock = 0;
    if (meta_u64(st, "kv_max_version", max_version) != 0 ||
        meta_u64(st, "kv_gc_version", gc_version) != 0 || meta_u64(st, "kv_clock", clock) != 0)
        return -1;
    st->kv_err[0] = '\0';
    if (sqlite3_prepare_v2(st->db,
                           "SELECT shared, key, value, version, stamp, deleted, deleted_at_ms, "
                           "flags FROM kv_own ORDER BY version",
                           -1, &q, NULL) != SQLITE_OK)
        return -1;
    int step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        store_kv_row r = {.shared = sqlite3_column_int(q, 0) != 0,
                          .key = sqlite3_column_blob(q, 1),
                          .key_len = (size_t)sqlite3_column_bytes(q, 1),
                          .value = sqlite3_column_blob(q, 2),
                          .value_len = (size_t)sqlite3_column_bytes(q, 2),
                          .version = (uint64_t)sqlite3_column_int64(q, 3),
                          .stamp = (uint64_t)sqlite3_column_int64(q, 4),
                          .deleted = sqlite3_column_int(q, 5) != 0,
                          .deleted_at_ms = (uint64_t)sqlite3_column_int64(q, 6),
                          .flags = (uint32_t)sqlite3_column_int64(q, 7)};
        fn(&r, ud);
    }
    sqlite3_finalize(q);
    return step == SQLITE_DONE ? 0 : -1;
}
