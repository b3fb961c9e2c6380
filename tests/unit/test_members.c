/* The member table (core/members.c): the name hash with backward-shift deletion, the probe
 * order, state counters and the dead list, at 10,000 members with inline and heap names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/members.h"
#include "core/rng.h"

#define N 10000

/* Member i's name. Every third name is longer than the inline limit, every 97th is the
 * longest allowed, so both storage paths and long hash inputs are covered. */
static size_t name_of(int i, char *out)
{
    if (i % 97 == 0) {
        memset(out, 'z', RUMOR_NAME_MAX);
        int w = snprintf(out, 16, "max-%06d", i);
        out[w] = 'z';
        out[RUMOR_NAME_MAX] = '\0';
        return RUMOR_NAME_MAX;
    }
    int w = i % 3 == 0 ? snprintf(out, 64, "a-rather-long-member-name-%06d.example", i)
                       : snprintf(out, 64, "m%d", i);
    return (size_t)w;
}

static member *find_i(const members *t, int i)
{
    char name[RUMOR_NAME_MAX + 1];
    size_t len = name_of(i, name);
    return members_find(t, name, len);
}

static void check_table(const members *t)
{
    uint32_t by[4] = {0, 0, 0, 0};
    size_t dead = 0;
    for (size_t i = 0; i < t->count; i++) {
        const member *m = t->order[i];
        assert_int_equal(m->order_idx, i);
        assert_int_equal((uintptr_t)m % 64, 0); /* one record, one cache line */
        assert_ptr_equal(members_find(t, member_name(m), m->name_len), m);
        /* Its id names its record (tables beside this one are indexed by it). */
        uint32_t id = members_id(t, m);
        assert_true(id >= 1 && id <= t->recs.fresh);
        assert_ptr_equal(members_pool_at(&t->recs, id), m);
        by[m->state]++;
        const member_ext *x = members_ext(t, m);
        size_t meta_len;
        members_meta(t, m, &meta_len);
        if (m->state == RUMOR_MEMBER_FAILED || m->state == RUMOR_MEMBER_LEFT) {
            assert_non_null(x);
            assert_true(x->dead_idx < t->ndead);
            assert_ptr_equal(t->dead[x->dead_idx], m);
            dead++;
        } else if (meta_len == 0) {
            /* Nothing in these tables sets a broadcast or a suspicion: no extension left. */
            assert_null(x);
        }
    }
    for (int s = 0; s < 4; s++)
        assert_int_equal(t->by_state[s], by[s]);
    assert_int_equal(t->ndead, dead);
    assert_int_equal(members_live(t), by[RUMOR_MEMBER_ALIVE] + by[RUMOR_MEMBER_SUSPECT]);
}

static void add_all(members *t, rng *r, int n)
{
    for (int i = 0; i < n; i++) {
        char name[RUMOR_NAME_MAX + 1];
        size_t len = name_of(i, name);
        member *m = members_add(t, name, len, r);
        assert_non_null(m);
        assert_int_equal(m->name_len, len);
        assert_memory_equal(member_name(m), name, len);
        assert_int_equal(member_name(m)[len], '\0');
        assert_int_equal(m->state, RUMOR_MEMBER_ALIVE);
    }
}

static void test_add_find_many(void **ctx)
{
    (void)ctx;
    members t;
    rng r;
    rng_seed(&r, 1);
    members_init(&t, &rumor_alloc_libc);
    assert_null(members_find(&t, "nobody", 6));
    add_all(&t, &r, N);
    assert_int_equal(t.count, N);
    assert_int_equal(t.by_state[RUMOR_MEMBER_ALIVE], N);
    /* Load factor stays at or under 3/4. */
    assert_true(4 * t.count <= 3 * t.nslots);
    for (int i = 0; i < N; i++) {
        member *m = find_i(&t, i);
        assert_non_null(m);
        char name[RUMOR_NAME_MAX + 1];
        size_t len = name_of(i, name);
        assert_memory_equal(member_name(m), name, len);
    }
    /* Near misses: prefixes, other lengths, other bytes. */
    assert_null(members_find(&t, "m", 1));
    assert_null(members_find(&t, "m10000", 6));
    assert_null(members_find(&t, "m1x", 3));
    assert_null(members_find(&t, "m99999", 6));
    check_table(&t);
    members_free(&t);
}

/* A counting allocator that can be told to fail, to see what reserve does on both paths. */
typedef struct count_alloc {
    size_t calls;
    size_t fail_after; /* allocations and reallocations allowed, SIZE_MAX = all */
} count_alloc;

static void *ca_alloc(void *ud, size_t size)
{
    count_alloc *c = ud;
    return c->calls++ < c->fail_after ? malloc(size) : NULL;
}

static void *ca_realloc(void *ud, void *p, size_t size)
{
    count_alloc *c = ud;
    return c->calls++ < c->fail_after ? realloc(p, size) : NULL;
}

static void ca_free(void *ud, void *p)
{
    (void)ud;
    free(p);
}

static void test_reserve(void **ctx)
{
    (void)ctx;
    count_alloc ca = {0, SIZE_MAX};
    rumor_allocator a = {ca_alloc, ca_realloc, ca_free, &ca};
    members t;
    rng r;
    rng_seed(&r, 11);
    members_init(&t, &a);
    assert_true(members_reserve(&t, N));
    /* Exact sizes: the order holds N, the index is the smallest power of two at load <= 3/4,
     * the slab index has room for every slab. */
    assert_int_equal(t.cap, N);
    assert_int_equal(t.nslots, 16384);
    assert_int_equal(t.recs.cap, (N + MEMBER_SLAB - 1) / MEMBER_SLAB);
    member **order = t.order;
    uint64_t *slots = t.slots;
    uint8_t **slab_index = t.recs.slabs;
    size_t calls = ca.calls;
    add_all(&t, &r, N);
    /* Nothing was regrown: only the slabs themselves and the long names were allocated. */
    assert_ptr_equal(t.order, order);
    assert_ptr_equal(t.slots, slots);
    assert_ptr_equal(t.recs.slabs, slab_index);
    size_t long_names = 0;
    for (int i = 0; i < N; i++) {
        char name[RUMOR_NAME_MAX + 1];
        long_names += name_of(i, name) > MEMBER_NAME_INLINE;
    }
    assert_int_equal(ca.calls - calls, t.recs.nslabs + long_names);
    check_table(&t);
    /* A smaller reservation changes nothing; a larger one rehashes and keeps every member. */
    assert_true(members_reserve(&t, 10));
    assert_ptr_equal(t.slots, slots);
    assert_int_equal(t.cap, N);
    assert_true(members_reserve(&t, 3 * N));
    assert_int_equal(t.cap, 3 * N);
    assert_int_equal(t.nslots, 65536);
    check_table(&t);
    for (int i = 0; i < N; i++)
        assert_non_null(find_i(&t, i));
    /* Out of memory at the first or the second step (index rebuilt, order not grown): reserve
     * says so and the table is still whole and usable. */
    for (size_t ok = 0; ok < 2; ok++) {
        ca.fail_after = ca.calls + ok;
        assert_false(members_reserve(&t, (6 + 6 * ok) * N));
        ca.fail_after = SIZE_MAX;
        assert_int_equal(t.cap, 3 * N);
        check_table(&t);
    }
    assert_non_null(members_add(&t, "after-oom", 9, &r));
    assert_non_null(members_find(&t, "after-oom", 9));
    check_table(&t);
    members_free(&t);
}

/* Records are handed out from slabs in order and come back through the free list: a table that
 * loses and regains members reuses them instead of growing. */
static void test_record_reuse(void **ctx)
{
    (void)ctx;
    members t;
    rng r;
    rng_seed(&r, 12);
    members_init(&t, &rumor_alloc_libc);
    add_all(&t, &r, 3 * MEMBER_SLAB);
    size_t slabs = t.recs.nslabs, fresh = t.recs.fresh;
    assert_int_equal(fresh, 3 * MEMBER_SLAB);
    /* Drop every other member (long names among them), then add as many new ones. */
    for (int i = 0; i < 3 * MEMBER_SLAB; i += 2) {
        member *m = find_i(&t, i);
        assert_non_null(m);
        members_remove(&t, m);
    }
    check_table(&t);
    for (int i = 0; i < 3 * MEMBER_SLAB; i += 2) {
        char name[64];
        int w = snprintf(name, sizeof(name), i % 4 ? "again-%d" : "again-with-a-long-name-%d", i);
        assert_non_null(members_add(&t, name, (size_t)w, &r));
    }
    assert_int_equal(t.recs.nslabs, slabs);
    assert_int_equal(t.recs.fresh, fresh);
    check_table(&t);
    members_free(&t);
}

static void test_add_bounds(void **ctx)
{
    (void)ctx;
    members t;
    rng r;
    rng_seed(&r, 2);
    members_init(&t, &rumor_alloc_libc);
    char name[RUMOR_NAME_MAX + 2];
    memset(name, 'n', sizeof(name));
    assert_null(members_add(&t, name, 0, &r));
    assert_null(members_add(&t, name, RUMOR_NAME_MAX + 1, &r));
    assert_int_equal(t.count, 0);
    assert_non_null(members_add(&t, name, RUMOR_NAME_MAX, &r));
    assert_non_null(members_add(&t, name, MEMBER_NAME_INLINE, &r));
    assert_non_null(members_add(&t, name, MEMBER_NAME_INLINE + 1, &r));
    assert_int_equal(t.count, 3);
    assert_non_null(members_find(&t, name, MEMBER_NAME_INLINE));
    assert_non_null(members_find(&t, name, MEMBER_NAME_INLINE + 1));
    assert_null(members_find(&t, name, MEMBER_NAME_INLINE + 2));
    check_table(&t);
    members_free(&t);
}

static void test_random_removals(void **ctx)
{
    (void)ctx;
    members t;
    rng r;
    rng_seed(&r, 3);
    members_init(&t, &rumor_alloc_libc);
    add_all(&t, &r, N);
    bool *gone = calloc(N, sizeof(bool));
    assert_non_null(gone);
    /* Remove 70% in random order, verifying the whole table every 500 removals. */
    int removed = 0;
    while (removed < N * 7 / 10) {
        int i = (int)rng_below(&r, N);
        if (gone[i])
            continue;
        member *m = find_i(&t, i);
        assert_non_null(m);
        members_remove(&t, m);
        gone[i] = true;
        removed++;
        assert_null(find_i(&t, i));
        if (removed % 500 == 0) {
            for (int j = 0; j < N; j++) {
                if (gone[j])
                    assert_null(find_i(&t, j));
                else
                    assert_non_null(find_i(&t, j));
            }
            check_table(&t);
        }
    }
    assert_int_equal(t.count, N - removed);
    /* Put them back: the table must not hold stale entries that would shadow them. */
    for (int i = 0; i < N; i++) {
        if (!gone[i])
            continue;
        char name[RUMOR_NAME_MAX + 1];
        size_t len = name_of(i, name);
        assert_non_null(members_add(&t, name, len, &r));
    }
    assert_int_equal(t.count, N);
    for (int i = 0; i < N; i++)
        assert_non_null(find_i(&t, i));
    check_table(&t);
    /* Remove everything. */
    while (t.count)
        members_remove(&t, t.order[rng_below(&r, (uint32_t)t.count)]);
    for (int i = 0; i < N; i++)
        assert_null(find_i(&t, i));
    free(gone);
    members_free(&t);
}

/* Many names in one hash chain: removal from the middle of a wrapped cluster. */
static void test_removal_collisions(void **ctx)
{
    (void)ctx;
    members t;
    rng r;
    rng_seed(&r, 4);
    members_init(&t, &rumor_alloc_libc);
    /* Six members keep the table at 16 slots; pick names whose home slot is 14 or 15 so that
     * their chain wraps around the end of the array. */
    char names[6][16];
    int got = 0;
    for (int i = 0; got < 6; i++) {
        snprintf(names[got], sizeof(names[got]), "w%d", i);
        uint32_t h = 2166136261u;
        for (const char *c = names[got]; *c; c++) {
            h ^= (uint8_t)*c;
            h *= 16777619u;
        }
        if ((h & 15) >= 14)
            got++;
    }
    for (int i = 0; i < 6; i++)
        assert_non_null(members_add(&t, names[i], strlen(names[i]), &r));
    assert_int_equal(t.nslots, 16);
    for (int victim = 0; victim < 6; victim++) {
        members_remove(&t, members_find(&t, names[victim], strlen(names[victim])));
        for (int j = 0; j < 6; j++) {
            member *m = members_find(&t, names[j], strlen(names[j]));
            if (j <= victim)
                assert_null(m);
            else
                assert_non_null(m);
        }
        check_table(&t);
    }
    members_free(&t);
}

/* Names with the same 32-bit hash (found offline): the index compares hashes first, so the
 * names themselves must still tell such members apart, on lookup and on removal. */
static void test_full_hash_collisions(void **ctx)
{
    (void)ctx;
    static const char *const names[4] = {"m516c6d49", "m2b21c7d5", "m45014385", "m570a06c8"};
    members t;
    rng r;
    rng_seed(&r, 10);
    members_init(&t, &rumor_alloc_libc);
    member *m[4];
    for (int i = 0; i < 4; i++)
        m[i] = members_add(&t, names[i], 9, &r);
    assert_ptr_equal(members_find(&t, names[0], 9), m[0]);
    assert_ptr_equal(members_find(&t, names[1], 9), m[1]);
    assert_ptr_equal(members_find(&t, names[2], 9), m[2]);
    assert_ptr_equal(members_find(&t, names[3], 9), m[3]);
    assert_null(members_find(&t, "m516c6d4", 8));
    members_remove(&t, m[0]);
    assert_null(members_find(&t, names[0], 9));
    assert_ptr_equal(members_find(&t, names[1], 9), m[1]);
    members_remove(&t, m[3]);
    assert_ptr_equal(members_find(&t, names[2], 9), m[2]);
    assert_null(members_find(&t, names[3], 9));
    check_table(&t);
    members_free(&t);
}

/* The seal ids kept beside the records (node_dest): each member has its own entry, zero until
 * filled, and an id reused by a new name never shows the earlier holder's value. */
static void test_seal_id_slots(void **ctx)
{
    (void)ctx;
    members t;
    rng r;
    rng_seed(&r, 11);
    members_init(&t, &rumor_alloc_libc);
    member *a = members_add(&t, "alpha", 5, &r);
    member *b = members_add(&t, "bravo", 5, &r);
    assert_non_null(a);
    assert_non_null(b);
    uint64_t *sa = members_seal_id(&t, a), *sb = members_seal_id(&t, b);
    assert_non_null(sa);
    assert_non_null(sb);
    assert_ptr_not_equal(sa, sb);
    assert_int_equal(*sa, 0);
    assert_int_equal(*sb, 0);
    *sa = 0x1111;
    *sb = 0x2222;
    uint32_t ida = members_id(&t, a);
    members_remove(&t, a);
    member *c = members_add(&t, "charlie", 7, &r); /* takes alpha's record */
    assert_non_null(c);
    assert_int_equal(members_id(&t, c), ida);
    uint64_t *sc = members_seal_id(&t, c);
    assert_non_null(sc);
    assert_int_equal(*sc, 0);
    assert_int_equal(*members_seal_id(&t, b), 0x2222);
    /* Growth keeps what was filled. */
    char name[16];
    for (int i = 0; i < 300; i++) {
        int w = snprintf(name, sizeof(name), "n%d", i);
        member *m = members_add(&t, name, (size_t)w, &r);
        assert_non_null(m);
        assert_non_null(members_seal_id(&t, m));
    }
    assert_int_equal(*members_seal_id(&t, b), 0x2222);
    members_free(&t);
}

static void test_probe_order_round(void **ctx)
{
    (void)ctx;
    members t;
    rng r;
    rng_seed(&r, 5);
    members_init(&t, &rumor_alloc_libc);
    add_all(&t, &r, 1000);
    int *seen = calloc(1000, sizeof(int));
    assert_non_null(seen);
    member *first[3];
    for (int round = 0; round < 3; round++) {
        members_shuffle(&t, &r);
        assert_int_equal(t.probe_idx, 0);
        /* Walk the order as probe.c does: one round visits every member exactly once. */
        memset(seen, 0, 1000 * sizeof(int));
        for (; t.probe_idx < t.count; t.probe_idx++) {
            member *m = t.order[t.probe_idx];
            assert_int_equal(m->order_idx, t.probe_idx);
            int i;
            if (sscanf(member_name(m), "m%d", &i) != 1 &&
                sscanf(member_name(m), "a-rather-long-member-name-%d", &i) != 1)
                assert_int_equal(sscanf(member_name(m), "max-%d", &i), 1);
            seen[i]++;
        }
        for (int i = 0; i < 1000; i++)
            assert_int_equal(seen[i], 1);
        first[round] = t.order[0];
    }
    /* Rounds are reshuffled: the same member leading three rounds has odds of 1e-6. */
    assert_false(first[0] == first[1] && first[1] == first[2]);
    /* A member added mid-round goes to a random slot, and the member it displaced moves to the
     * end, so no member already in the table misses the current round. */
    members_shuffle(&t, &r);
    t.probe_idx = 500;
    member *before[1000];
    memcpy(before, t.order, sizeof(before));
    member *nm = members_add(&t, "newcomer", 8, &r);
    assert_non_null(nm);
    assert_ptr_equal(t.order[nm->order_idx], nm);
    for (size_t i = 500; i < 1000; i++) {
        bool found = false;
        for (size_t j = 500; j < t.count && !found; j++)
            found = t.order[j] == before[i];
        assert_true(found);
    }
    free(seen);
    members_free(&t);
}

static void test_states_and_dead_list(void **ctx)
{
    (void)ctx;
    members t;
    rng r;
    rng_seed(&r, 6);
    members_init(&t, &rumor_alloc_libc);
    add_all(&t, &r, 200);
    uint64_t now = 5000;
    /* Walk every member through a sequence of states chosen by the PRNG. */
    for (int step = 0; step < 4000; step++) {
        member *m = t.order[rng_below(&r, (uint32_t)t.count)];
        uint8_t st = (uint8_t)rng_below(&r, 4);
        uint8_t old = m->state;
        uint64_t since = m->state_since;
        assert_true(members_set_state(&t, m, st, now + (uint64_t)step));
        assert_int_equal(m->state, st);
        if (st == old)
            assert_true(m->state_since == since); /* no change, no new timestamp */
        else
            assert_true(m->state_since == now + (uint64_t)step);
        if (step % 100 == 0)
            check_table(&t);
    }
    check_table(&t);
    /* Removing dead members keeps the dead list dense. */
    for (size_t i = 0; i < t.count;) {
        member *m = t.order[i];
        if (m->state == RUMOR_MEMBER_FAILED && rng_below(&r, 2))
            members_remove(&t, m);
        else
            i++;
    }
    check_table(&t);
    /* Everyone back to alive: no one is dead any more. */
    for (size_t i = 0; i < t.count; i++)
        assert_true(members_set_state(&t, t.order[i], RUMOR_MEMBER_ALIVE, now));
    assert_int_equal(t.ndead, 0);
    assert_int_equal(t.by_state[RUMOR_MEMBER_ALIVE], t.count);
    check_table(&t);
    members_free(&t);
}

static void test_dead_transitions(void **ctx)
{
    (void)ctx;
    members t;
    rng r;
    rng_seed(&r, 7);
    members_init(&t, &rumor_alloc_libc);
    member *a = members_add(&t, "a", 1, &r);
    member *b = members_add(&t, "b", 1, &r);
    assert_true(members_set_state(&t, a, RUMOR_MEMBER_FAILED, 1));
    assert_int_equal(t.ndead, 1);
    /* failed -> left stays on the dead list once. */
    assert_true(members_set_state(&t, a, RUMOR_MEMBER_LEFT, 2));
    assert_int_equal(t.ndead, 1);
    assert_int_equal(t.by_state[RUMOR_MEMBER_LEFT], 1);
    assert_int_equal(t.by_state[RUMOR_MEMBER_FAILED], 0);
    assert_true(members_set_state(&t, b, RUMOR_MEMBER_SUSPECT, 3));
    assert_int_equal(t.ndead, 1);
    assert_int_equal(members_live(&t), 1);
    assert_true(members_set_state(&t, b, RUMOR_MEMBER_FAILED, 4));
    assert_int_equal(t.ndead, 2);
    assert_int_equal(members_live(&t), 0);
    members_remove(&t, a);
    assert_int_equal(t.ndead, 1);
    assert_ptr_equal(t.dead[0], b);
    assert_int_equal(members_ext(&t, b)->dead_idx, 0);
    check_table(&t);
    /* Back from the dead (a higher incarnation): off the list, and the extension goes. */
    assert_true(members_set_state(&t, b, RUMOR_MEMBER_ALIVE, 5));
    assert_int_equal(t.ndead, 0);
    assert_null(members_ext(&t, b));
    check_table(&t);
    members_free(&t);
}

static void test_meta(void **ctx)
{
    (void)ctx;
    members t;
    rng r;
    rng_seed(&r, 8);
    members_init(&t, &rumor_alloc_libc);
    member *m = members_add(&t, "m", 1, &r);
    size_t len;
    assert_null(members_meta(&t, m, &len));
    assert_int_equal(len, 0);
    assert_null(members_ext(&t, m));
    assert_true(members_set_meta(&t, m, (const uint8_t *)"role=db", 7));
    const uint8_t *p = members_meta(&t, m, &len);
    assert_int_equal(len, 7);
    assert_memory_equal(p, "role=db", 7);
    assert_true(members_set_meta(&t, m, (const uint8_t *)"role=db", 7));
    assert_ptr_equal(members_meta(&t, m, &len), p); /* unchanged: no reallocation */
    uint8_t big[RUMOR_META_MAX];
    memset(big, 'x', sizeof(big));
    assert_true(members_set_meta(&t, m, big, sizeof(big)));
    members_meta(&t, m, &len);
    assert_int_equal(len, RUMOR_META_MAX);
    assert_true(members_set_meta(&t, m, NULL, 0));
    assert_null(members_meta(&t, m, &len));
    assert_int_equal(len, 0);
    assert_null(members_ext(&t, m)); /* nothing left in it */
    /* A member removed with metadata, and a table freed with some: nothing leaks (ASan). */
    member *k = members_add(&t, "keep", 4, &r);
    assert_true(members_set_meta(&t, k, (const uint8_t *)"a=1", 3));
    assert_true(members_set_meta(&t, m, (const uint8_t *)"b=2", 3));
    members_remove(&t, m);
    check_table(&t);
    members_free(&t);
}

/* Extensions exist while something in them is in use, and their records are reused. */
static void test_ext_lifetime(void **ctx)
{
    (void)ctx;
    members t;
    rng r;
    rng_seed(&r, 9);
    members_init(&t, &rumor_alloc_libc);
    member *m = members_add(&t, "m", 1, &r);
    member_ext *x = members_ext_get(&t, m);
    assert_non_null(x);
    assert_ptr_equal(members_ext_get(&t, m), x); /* the same one */
    assert_null(x->meta);
    assert_null(x->bcast);
    assert_null(x->susp);
    /* In use: a suspicion pointer keeps it (any non-NULL value will do here). */
    x->susp = (struct suspicion *)&r;
    members_ext_trim(&t, m);
    assert_ptr_equal(members_ext(&t, m), x);
    assert_ptr_equal(members_susp(&t, m), (struct suspicion *)&r);
    x->susp = NULL;
    x->bcast = (struct bcast *)&r;
    members_ext_trim(&t, m);
    assert_ptr_equal(members_bcast(&t, m), (struct bcast *)&r);
    x->bcast = NULL;
    members_ext_trim(&t, m);
    assert_null(members_ext(&t, m));
    assert_null(members_susp(&t, m));
    assert_null(members_bcast(&t, m));
    /* The released record is the next one handed out. */
    member *o = members_add(&t, "o", 1, &r);
    assert_ptr_equal(members_ext_get(&t, o), x);
    assert_int_equal(t.exts.fresh, 1);
    members_ext_trim(&t, o);
    assert_null(members_ext(&t, o));
    check_table(&t);
    members_free(&t);
}

/* The cache hint reads the index (and, at level 2, finds the record) but changes nothing, for
 * present and absent names, on an empty table and in a wrapped probe chain. */
static void test_prefetch_changes_nothing(void **ctx)
{
    (void)ctx;
    members t;
    rng r;
    rng_seed(&r, 13);
    members_init(&t, &rumor_alloc_libc);
    for (unsigned level = 0; level < 4; level++)
        members_prefetch(&t, "nobody", 6, level); /* no index yet */
    add_all(&t, &r, 3000);
    members before = t;
    uint64_t *slots = malloc(t.nslots * sizeof(*slots));
    assert_non_null(slots);
    memcpy(slots, t.slots, t.nslots * sizeof(*slots));
    for (int i = 0; i < 3000; i += 7) {
        char name[RUMOR_NAME_MAX + 1];
        size_t len = name_of(i, name);
        for (unsigned level = 0; level < 4; level++)
            members_prefetch(&t, name, len, level);
        members_prefetch(&t, "absent", 6, 2);
        members_prefetch(&t, "m516c6d49", 9, 2);
    }
    assert_memory_equal(&t, &before, sizeof(t));
    assert_memory_equal(t.slots, slots, t.nslots * sizeof(*slots));
    check_table(&t);
    free(slots);
    members_free(&t);
}

/* members_id() answers only for records in the table: a copy with the same name, or any record
 * of an empty table, has none. Ids of removed members go to the next ones added. */
static void test_member_ids(void **ctx)
{
    (void)ctx;
    members t;
    rng r;
    rng_seed(&r, 14);
    members_init(&t, &rumor_alloc_libc);
    member copy;
    memset(&copy, 0, sizeof(copy));
    memcpy(copy.n.inline_name, "m1", 3);
    copy.name_len = 2;
    assert_int_equal(members_id(&t, &copy), 0);
    add_all(&t, &r, 100);
    member *m1 = find_i(&t, 1);
    assert_non_null(m1);
    assert_int_equal(members_id(&t, &copy), 0);
    uint32_t id = members_id(&t, m1);
    assert_int_not_equal(id, 0);
    members_remove(&t, m1);
    member *again = members_add(&t, "new", 3, &r);
    assert_non_null(again);
    assert_int_equal(members_id(&t, again), id);
    check_table(&t);
    members_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_find_many),
        cmocka_unit_test(test_add_bounds),
        cmocka_unit_test(test_random_removals),
        cmocka_unit_test(test_removal_collisions),
        cmocka_unit_test(test_probe_order_round),
        cmocka_unit_test(test_states_and_dead_list),
        cmocka_unit_test(test_dead_transitions),
        cmocka_unit_test(test_meta),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_record_reuse),
        cmocka_unit_test(test_ext_lifetime),
        cmocka_unit_test(test_full_hash_collisions),
        cmocka_unit_test(test_prefetch_changes_nothing),
        cmocka_unit_test(test_member_ids),
        cmocka_unit_test(test_seal_id_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
