/* The replicated key-value store: versions, limits, oldest-first deltas, tombstone collection
 * and resets, shared-keyspace last-writer-wins, the hybrid logical clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/hlc.h"
#include "core/kv.h"

static const kv_limits LIM = {1024, 8, 4096, 1u << 20, 1000};

static kv_delta put(const char *k, const char *v, uint8_t flags, uint64_t stamp)
{
    kv_delta d = {(const uint8_t *)k,
                  strlen(k),
                  (const uint8_t *)v,
                  v ? strlen(v) : 0,
                  0,
                  stamp,
                  flags,
                  NULL};
    return d;
}

static const char *value_of(const kv_entry *e, char *buf)
{
    if (!e || (e->flags & KV_TOMBSTONE))
        return NULL;
    memcpy(buf, kv_value(e), e->value_len);
    buf[e->value_len] = 0;
    return buf;
}

static const char *get(const kv_origin *o, const char *k, char *buf)
{
    return value_of(kv_get(o, (const uint8_t *)k, strlen(k)), buf);
}

/* Copies origin `name` from `src` to `dst` the way anti-entropy does: oldest first, at most
 * `batch` entries per round, resetting when dst is behind the collection horizon. */
static int sync_origin(kv_store *dst, kv_store *src, const char *name, size_t batch)
{
    kv_origin *so = kv_origin_find(src, name, strlen(name));
    kv_origin *d = kv_origin_get(dst, name, strlen(name));
    int rounds = 0;
    for (;;) {
        if (kv_needs_reset(so, d->max_version, d->gc_version))
            kv_origin_reset(dst, d, so->gc_version);
        kv_learn_gc(dst, d, so->gc_version);
        const kv_entry *e = kv_after(so, d->max_version);
        if (!e) {
            kv_advance(dst, d, so->max_version); /* the batch was complete */
            return rounds;
        }
        for (size_t i = 0; e && i < batch; i++, e = e->next) {
            kv_delta x = {kv_key(e),  e->key_len, kv_value(e), e->value_len,
                          e->version, e->stamp,   e->flags,    NULL};
            assert_int_equal(kv_apply(dst, d, &x, 0), 1);
        }
        rounds++;
    }
}

static void test_write_versions_limits(void **ctx)
{
    (void)ctx;
    kv_store s;
    kv_init(&s, &rumor_alloc_libc, &LIM);
    kv_origin *o = kv_origin_get(&s, "a", 1);
    char buf[2048];
    kv_delta d = put("k1", "v1", 0, 0);
    assert_int_equal(kv_write(&s, o, &d, 0), 0);
    d = put("k1", "v2", 0, 0);
    assert_int_equal(kv_write(&s, o, &d, 0), 0);
    assert_string_equal(get(o, "k1", buf), "v2");
    assert_int_equal(kv_get(o, (const uint8_t *)"k1", 2)->version, 2);
    assert_int_equal(o->max_version, 2);
    /* Limits: value size, keys per node; a refused write changes nothing. */
    char big[1100];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    d = put("k1", big, 0, 0);
    assert_int_equal(kv_write(&s, o, &d, 0), RUMOR_ERR_TOO_BIG);
    assert_string_equal(get(o, "k1", buf), "v2");
    for (int i = 2; i <= 8; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%d", i);
        d = put(k, "v", 0, 0);
        assert_int_equal(kv_write(&s, o, &d, 0), 0);
    }
    d = put("k9", "v", 0, 0);
    assert_int_equal(kv_write(&s, o, &d, 0), RUMOR_ERR_TOO_BIG);
    assert_int_equal(o->keys, 8);
    assert_int_equal(o->max_version, 9);
    /* Deleting frees a key slot; overwriting an existing key is always allowed. */
    d = put("k8", NULL, KV_TOMBSTONE, 0);
    assert_int_equal(kv_write(&s, o, &d, 0), 0);
    assert_null(get(o, "k8", buf));
    d = put("k9", "v", 0, 0);
    assert_int_equal(kv_write(&s, o, &d, 0), 0);
    /* Bad input. */
    d = put("", "v", 0, 0);
    assert_int_equal(kv_write(&s, o, &d, 0), RUMOR_ERR_INVALID);
    d = put("t", "v", KV_TOMBSTONE, 0);
    assert_int_equal(kv_write(&s, o, &d, 0), RUMOR_ERR_INVALID);
    d = put("t", "v", 0x80, 0);
    assert_int_equal(kv_write(&s, o, &d, 0), RUMOR_ERR_INVALID);
    kv_free(&s);
}

static void test_replica_converges_oldest_first(void **ctx)
{
    (void)ctx;
    kv_store a, r;
    kv_init(&a, &rumor_alloc_libc, &LIM);
    kv_init(&r, &rumor_alloc_libc, &LIM);
    kv_origin *o = kv_origin_get(&a, "a", 1);
    const char *ops[][2] = {{"x", "1"}, {"y", "1"}, {"x", "2"}, {"z", "1"}, {"y", NULL}};
    for (size_t i = 0; i < 5; i++) {
        kv_delta d = put(ops[i][0], ops[i][1], ops[i][1] ? 0 : KV_TOMBSTONE, 0);
        assert_int_equal(kv_write(&a, o, &d, 0), 0);
    }
    /* Entries walk in ascending version: z(4) then y(5) after version 3. */
    const kv_entry *e = kv_after(o, 3);
    assert_int_equal(e->version, 4);
    assert_int_equal(e->next->version, 5);
    assert_null(kv_after(o, 5));
    /* One entry per round still converges without gaps. */
    assert_int_equal(sync_origin(&r, &a, "a", 1), 3);
    kv_origin *ro = kv_origin_find(&r, "a", 1);
    char b1[16];
    assert_string_equal(get(ro, "x", b1), "2");
    assert_null(get(ro, "y", b1));
    assert_string_equal(get(ro, "z", b1), "1");
    assert_int_equal(ro->max_version, 5);
    /* Stale and duplicate deltas are ignored. */
    kv_delta d = put("x", "old", 0, 0);
    d.version = 1;
    assert_int_equal(kv_apply(&r, ro, &d, 0), 0);
    assert_string_equal(get(ro, "x", b1), "2");
    kv_free(&a);
    kv_free(&r);
}

static void test_tombstone_horizon_and_reset(void **ctx)
{
    (void)ctx;
    kv_store a, seen, away;
    kv_init(&a, &rumor_alloc_libc, &LIM);
    kv_init(&seen, &rumor_alloc_libc, &LIM);
    kv_init(&away, &rumor_alloc_libc, &LIM);
    kv_origin *o = kv_origin_get(&a, "a", 1);
    kv_delta d = put("gone", "v", 0, 0);
    kv_write(&a, o, &d, 0);
    d = put("kept", "v", 0, 0);
    kv_write(&a, o, &d, 0);
    sync_origin(&away, &a, "a", 8); /* `away` saw the key, then left for a long time */
    d = put("gone", NULL, KV_TOMBSTONE, 0);
    kv_write(&a, o, &d, 100);
    sync_origin(&seen, &a, "a", 8); /* `seen` saw the delete */
    /* Not collected before the ttl, collected after. */
    kv_collect(&a, o, 500);
    assert_int_equal(o->gc_version, 0);
    kv_collect(&a, o, 1200);
    assert_int_equal(o->gc_version, 3);
    assert_null(kv_get(o, (const uint8_t *)"gone", 4));
    /* A replica that saw the delete drops its tombstone when it learns the horizon. */
    kv_origin *so = kv_origin_find(&seen, "a", 1);
    assert_non_null(kv_get(so, (const uint8_t *)"gone", 4));
    kv_learn_gc(&seen, so, o->gc_version);
    assert_null(kv_get(so, (const uint8_t *)"gone", 4));
    /* The one that was away is behind the horizon: it must reset, and the key stays deleted. */
    kv_origin *wo = kv_origin_find(&away, "a", 1);
    char b[16];
    assert_string_equal(get(wo, "gone", b), "v");
    assert_true(kv_needs_reset(o, wo->max_version, wo->gc_version));
    assert_int_equal(sync_origin(&away, &a, "a", 1), 1);
    assert_false(kv_needs_reset(o, wo->max_version, wo->gc_version));
    assert_null(get(wo, "gone", b));
    assert_string_equal(get(wo, "kept", b), "v");
    kv_free(&a);
    kv_free(&seen);
    kv_free(&away);
}

static void test_shared_last_writer_wins(void **ctx)
{
    (void)ctx;
    kv_store r1, r2;
    kv_init(&r1, &rumor_alloc_libc, &LIM);
    kv_init(&r2, &rumor_alloc_libc, &LIM);
    /* Writes by a, b and c to shared key K, applied in opposite orders on two replicas. */
    struct {
        const char *origin, *value;
        uint64_t stamp;
    } w[] = {{"a", "1", 10}, {"b", "2", 20}, {"c", "3", 20}};
    for (int i = 0; i < 3; i++) {
        kv_delta d = put("K", w[i].value, KV_SHARED, w[i].stamp);
        d.version = 1;
        kv_apply(&r1, kv_origin_get(&r1, w[i].origin, 1), &d, 0);
        kv_delta d2 = put("K", w[2 - i].value, KV_SHARED, w[2 - i].stamp);
        d2.version = 1;
        kv_apply(&r2, kv_origin_get(&r2, w[2 - i].origin, 1), &d2, 0);
    }
    char b[16];
    /* Equal stamps: the greater origin name wins, on both replicas. */
    assert_string_equal(value_of(kv_shared_get(&r1, (const uint8_t *)"K", 1), b), "3");
    assert_string_equal(value_of(kv_shared_get(&r2, (const uint8_t *)"K", 1), b), "3");
    /* A per-node key with the same name is another key. */
    assert_null(kv_get(kv_origin_find(&r1, "a", 1), (const uint8_t *)"K", 1));
    /* a deletes K with a newer stamp: absent everywhere. */
    kv_origin *a1 = kv_origin_find(&r1, "a", 1);
    kv_delta del = put("K", NULL, KV_SHARED | KV_TOMBSTONE, 30);
    assert_int_equal(kv_write(&r1, a1, &del, 0), 0);
    assert_null(value_of(kv_shared_get(&r1, (const uint8_t *)"K", 1), b));
    /* The tombstone may not be collected while it hides older live values (b's and c's). */
    kv_collect(&r1, a1, 5000);
    assert_int_equal(a1->gc_version, 0);
    assert_null(value_of(kv_shared_get(&r1, (const uint8_t *)"K", 1), b));
    /* Once they are retired, it can go, and nothing comes back. */
    for (int i = 1; i < 3; i++) {
        kv_origin *o = kv_origin_find(&r1, w[i].origin, 1);
        kv_delta ret = put("K", NULL, KV_SHARED | KV_TOMBSTONE, w[i].stamp);
        kv_write(&r1, o, &ret, 0);
    }
    kv_collect(&r1, a1, 5000);
    assert_int_equal(a1->gc_version, 2);
    assert_null(value_of(kv_shared_get(&r1, (const uint8_t *)"K", 1), b));
    /* Dropping an origin (reaped) re-elects the winner among the rest. */
    kv_origin_drop(&r2, kv_origin_find(&r2, "c", 1));
    assert_string_equal(value_of(kv_shared_get(&r2, (const uint8_t *)"K", 1), b), "2");
    kv_free(&r1);
    kv_free(&r2);
}

static void test_hlc_monotonic(void **ctx)
{
    (void)ctx;
    hlc c = {0};
    uint64_t a = hlc_now(&c, 1000);
    uint64_t b = hlc_now(&c, 1000);
    uint64_t d = hlc_now(&c, 900); /* the wall clock stepped back */
    assert_true(b > a && d > b);
    assert_int_equal(hlc_physical(d), 1000);
    hlc_observe(&c, (5000ull << HLC_LOGICAL_BITS) | 7);
    uint64_t e = hlc_now(&c, 1001);
    assert_true(e > ((5000ull << HLC_LOGICAL_BITS) | 7));
    assert_int_equal(hlc_physical(e), 5000);
    uint64_t f = hlc_now(&c, 6000);
    assert_int_equal(f, 6000ull << HLC_LOGICAL_BITS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_versions_limits),
        cmocka_unit_test(test_replica_converges_oldest_first),
        cmocka_unit_test(test_tombstone_horizon_and_reset),
        cmocka_unit_test(test_shared_last_writer_wins),
        cmocka_unit_test(test_hlc_monotonic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
