/* The transmit-limited broadcast queue (core/bcast.c): least-sent first, retirement, replacement
 * through the owner pointer, per-class caps, and the fair split of a packet between classes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/bcast.h"

#define ITEM 10 /* bytes per test item: u32 id, class, padding */

static void push(bcast_queue *q, uint8_t cls, uint32_t id, bcast **owner, bool notify)
{
    uint8_t b[ITEM];
    memset(b, 0xa5, sizeof(b));
    b[0] = (uint8_t)(id >> 24);
    b[1] = (uint8_t)(id >> 16);
    b[2] = (uint8_t)(id >> 8);
    b[3] = (uint8_t)id;
    b[4] = cls;
    assert_true(bcast_push(q, cls, b, sizeof(b), owner, notify));
}

typedef struct pkt {
    uint8_t storage[4096];
    buf_writer w;
    size_t n;          /* items appended */
    uint32_t ids[512]; /* in packet order */
    uint8_t cls[512];
} pkt;

/* Fills one packet of `budget` bytes and parses the items back out of it. */
static size_t fill(bcast_queue *q, pkt *p, size_t budget, uint32_t limit)
{
    buf_writer_init_fixed(&p->w, p->storage, sizeof(p->storage));
    size_t n = bcast_fill(q, &p->w, budget, limit);
    assert_false(p->w.failed);
    assert_true(p->w.len <= budget);
    assert_int_equal(p->w.len, n * ITEM);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *b = p->storage + i * ITEM;
        p->ids[i] = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        p->cls[i] = b[4];
    }
    p->n = n;
    return n;
}

static void assert_no_duplicates(const pkt *p)
{
    for (size_t i = 0; i < p->n; i++)
        for (size_t j = i + 1; j < p->n; j++)
            assert_false(p->ids[i] == p->ids[j] && p->cls[i] == p->cls[j]);
}

static void test_least_sent_first(void **ctx)
{
    (void)ctx;
    bcast_queue q;
    bcast_init(&q, &rumor_alloc_libc, 100);
    pkt p;
    push(&q, BCAST_CLASS_MEMBER, 1, NULL, false);
    push(&q, BCAST_CLASS_MEMBER, 2, NULL, false);
    push(&q, BCAST_CLASS_MEMBER, 3, NULL, false);
    /* Room for one item per packet: newest first among the never-sent. */
    assert_int_equal(fill(&q, &p, ITEM, 5), 1);
    assert_int_equal(p.ids[0], 3);
    assert_int_equal(fill(&q, &p, ITEM, 5), 1);
    assert_int_equal(p.ids[0], 2);
    /* A newcomer (never sent) goes before anything sent once. */
    push(&q, BCAST_CLASS_MEMBER, 4, NULL, false);
    assert_int_equal(fill(&q, &p, ITEM, 5), 1);
    assert_int_equal(p.ids[0], 4);
    assert_int_equal(fill(&q, &p, ITEM, 5), 1);
    assert_int_equal(p.ids[0], 1);
    /* Now all have been sent once; over the next rounds the transmit counts never differ by
     * more than one (always the least-sent goes). */
    int sent[5] = {0, 1, 1, 1, 1};
    for (int round = 0; round < 12; round++) {
        assert_int_equal(fill(&q, &p, ITEM, 5), 1);
        sent[p.ids[0]]++;
        int lo = 99, hi = 0;
        for (int i = 1; i <= 4; i++) {
            lo = sent[i] < lo ? sent[i] : lo;
            hi = sent[i] > hi ? sent[i] : hi;
        }
        assert_true(hi - lo <= 1);
    }
    bcast_free(&q);
}

static void test_retire_after_limit(void **ctx)
{
    (void)ctx;
    bcast_queue q;
    bcast_init(&q, &rumor_alloc_libc, 100);
    pkt p;
    bcast *owner = NULL;
    push(&q, BCAST_CLASS_MEMBER, 7, &owner, true);
    push(&q, BCAST_CLASS_APP, 8, NULL, false);
    for (int i = 0; i < 3; i++) {
        assert_non_null(owner);
        assert_int_equal(fill(&q, &p, 1000, 3), 2);
    }
    /* Sent `limit` times: gone, its owner pointer cleared, retirement reported for notify. */
    assert_int_equal(bcast_count(&q), 0);
    assert_null(owner);
    assert_int_equal(q.notify_retired, 1);
    assert_int_equal(fill(&q, &p, 1000, 3), 0);
    /* A limit of 0 behaves as 1. */
    push(&q, BCAST_CLASS_MEMBER, 9, NULL, false);
    assert_int_equal(fill(&q, &p, 1000, 0), 1);
    assert_int_equal(bcast_count(&q), 0);
    bcast_free(&q);
}

static void test_limit_shrinks(void **ctx)
{
    (void)ctx;
    /* The cluster shrank between fills: items already sent as often as the new limit are done
     * before anything is picked. */
    bcast_queue q;
    bcast_init(&q, &rumor_alloc_libc, 100);
    pkt p;
    push(&q, BCAST_CLASS_MEMBER, 1, NULL, true);
    for (int i = 0; i < 4; i++)
        fill(&q, &p, 1000, 8);
    push(&q, BCAST_CLASS_MEMBER, 2, NULL, false);
    assert_int_equal(fill(&q, &p, 1000, 3), 1);
    assert_int_equal(p.ids[0], 2);
    assert_int_equal(q.notify_retired, 1);
    assert_int_equal(bcast_count(&q), 1);
    bcast_free(&q);
}

static void test_owner_replacement(void **ctx)
{
    (void)ctx;
    bcast_queue q;
    bcast_init(&q, &rumor_alloc_libc, 100);
    pkt p;
    bcast *about_x = NULL, *about_y = NULL;
    push(&q, BCAST_CLASS_MEMBER, 1, &about_x, false); /* "x is alive" */
    push(&q, BCAST_CLASS_MEMBER, 2, &about_y, false);
    assert_int_equal(fill(&q, &p, 1000, 10), 2);
    bcast *old = about_x;
    push(&q, BCAST_CLASS_MEMBER, 3, &about_x, false); /* "x is suspect" replaces it */
    assert_ptr_not_equal(about_x, old);
    assert_int_equal(bcast_count(&q), 2);
    assert_int_equal(fill(&q, &p, 1000, 10), 2);
    bool saw3 = false;
    for (size_t i = 0; i < p.n; i++) {
        assert_int_not_equal(p.ids[i], 1);
        saw3 = saw3 || p.ids[i] == 3;
    }
    assert_true(saw3);
    /* The replacement starts from zero transmissions: it outlives the item it replaced. */
    assert_int_equal(about_x->transmits, 1);
    assert_int_equal(about_y->transmits, 2);
    /* Removing clears the owner. */
    bcast_remove(&q, about_y);
    assert_null(about_y);
    assert_int_equal(bcast_count(&q), 1);
    bcast_free(&q);
    assert_null(about_x);
}

static void test_class_cap_drops(void **ctx)
{
    (void)ctx;
    bcast_queue q;
    bcast_init(&q, &rumor_alloc_libc, 4);
    pkt p;
    for (uint32_t i = 1; i <= 4; i++)
        push(&q, BCAST_CLASS_MEMBER, i, NULL, false);
    push(&q, BCAST_CLASS_APP, 100, NULL, false);
    /* Send everything once, then item 1 (the head of the sent-once bucket) a second time. */
    assert_int_equal(fill(&q, &p, 6 * ITEM, 10), 5);
    assert_int_equal(fill(&q, &p, 2 * ITEM, 10), 2); /* one member item and the app item */
    assert_int_equal(p.ids[0], 1);
    assert_int_equal(bcast_count(&q), 5);
    /* The member class is full: each push drops the most-sent member item (1, sent twice), then
     * the oldest of the next bucket (4); never an app item. */
    push(&q, BCAST_CLASS_MEMBER, 5, NULL, false);
    push(&q, BCAST_CLASS_MEMBER, 6, NULL, false);
    assert_int_equal(q.cls[BCAST_CLASS_MEMBER].count, 4);
    assert_int_equal(q.cls[BCAST_CLASS_APP].count, 1);
    assert_int_equal(q.dropped, 2);
    assert_int_equal(fill(&q, &p, 1000, 10), 5);
    bool have[7] = {false};
    for (size_t i = 0; i < p.n; i++)
        if (p.cls[i] == BCAST_CLASS_MEMBER)
            have[p.ids[i]] = true;
    assert_false(have[1]);
    assert_true(have[2]);
    assert_true(have[3]);
    assert_false(have[4]);
    assert_true(have[5]);
    assert_true(have[6]);
    /* A cap of 0 is treated as 1. */
    bcast_queue q1;
    bcast_init(&q1, &rumor_alloc_libc, 0);
    push(&q1, BCAST_CLASS_APP, 1, NULL, false);
    push(&q1, BCAST_CLASS_APP, 2, NULL, false);
    assert_int_equal(bcast_count(&q1), 1);
    bcast_free(&q1);
    bcast_free(&q);
}

static void test_fair_split(void **ctx)
{
    (void)ctx;
    bcast_queue q;
    bcast_init(&q, &rumor_alloc_libc, 1000);
    pkt p;
    for (uint32_t i = 0; i < 500; i++) {
        push(&q, BCAST_CLASS_MEMBER, i, NULL, false);
        push(&q, BCAST_CLASS_APP, i, NULL, false);
    }
    /* Both classes full: a packet carries both, each about half. */
    for (int round = 0; round < 20; round++) {
        assert_int_equal(fill(&q, &p, 200, 10), 20);
        size_t member = 0, app = 0;
        for (size_t i = 0; i < p.n; i++)
            if (p.cls[i] == BCAST_CLASS_MEMBER)
                member++;
            else
                app++;
        assert_int_equal(member, 10);
        assert_int_equal(app, 10);
        assert_no_duplicates(&p);
    }
    bcast_free(&q);
    /* A flood of membership news cannot keep a lone app item out, nor the reverse. */
    for (int flood = 0; flood < 2; flood++) {
        uint8_t big = flood ? BCAST_CLASS_APP : BCAST_CLASS_MEMBER;
        uint8_t lone = flood ? BCAST_CLASS_MEMBER : BCAST_CLASS_APP;
        bcast_init(&q, &rumor_alloc_libc, 1000);
        push(&q, lone, 9999, NULL, false);
        for (uint32_t i = 0; i < 800; i++)
            push(&q, big, i, NULL, false);
        assert_int_equal(fill(&q, &p, 100, 10), 10);
        bool lone_in = false;
        for (size_t i = 0; i < p.n; i++)
            lone_in = lone_in || (p.cls[i] == lone && p.ids[i] == 9999);
        assert_true(lone_in);
        bcast_free(&q);
    }
}

static void test_no_duplicates_when_room_is_left(void **ctx)
{
    (void)ctx;
    /* Few items, lots of room: the leftover pass must not pick an item a second time. */
    bcast_queue q;
    bcast_init(&q, &rumor_alloc_libc, 100);
    pkt p;
    for (uint32_t i = 0; i < 5; i++)
        push(&q, BCAST_CLASS_MEMBER, i, NULL, false);
    for (uint32_t i = 0; i < 3; i++)
        push(&q, BCAST_CLASS_APP, i, NULL, false);
    for (int round = 0; round < 3; round++) {
        assert_int_equal(fill(&q, &p, 4000, 4), 8);
        assert_no_duplicates(&p);
    }
    /* Each was counted once per packet: one more round and all are retired. */
    assert_int_equal(fill(&q, &p, 4000, 4), 8);
    assert_int_equal(bcast_count(&q), 0);
    bcast_free(&q);
}

static void test_skips_items_too_big(void **ctx)
{
    (void)ctx;
    bcast_queue q;
    bcast_init(&q, &rumor_alloc_libc, 100);
    pkt p;
    push(&q, BCAST_CLASS_MEMBER, 1, NULL, false);
    uint8_t big[300];
    memset(big, 0, sizeof(big));
    assert_true(bcast_push(&q, BCAST_CLASS_MEMBER, big, sizeof(big), NULL, false));
    /* The newest item does not fit; the older, smaller one still goes. */
    assert_int_equal(fill(&q, &p, 100, 5), 1);
    assert_int_equal(p.ids[0], 1);
    assert_int_equal(bcast_count(&q), 2);
    /* Under 3 bytes of room nothing is tried. */
    assert_int_equal(fill(&q, &p, 2, 5), 0);
    bcast_free(&q);
}

/* A rumor with its own counter retires after that many transmissions, below the queue's limit,
 * while items without one keep going to the limit. */
static void test_own_counter(void **ctx)
{
    (void)ctx;
    bcast_queue q;
    bcast_init(&q, &rumor_alloc_libc, 100);
    uint8_t b[ITEM];
    memset(b, 0, sizeof(b));
    b[3] = 7;
    assert_true(bcast_push_n(&q, BCAST_CLASS_APP, b, sizeof(b), 2));
    push(&q, BCAST_CLASS_APP, 8, NULL, false);
    pkt p;
    assert_int_equal(fill(&q, &p, 2 * ITEM, 5), 2);
    assert_int_equal(fill(&q, &p, 2 * ITEM, 5), 2);
    /* Item 7 went twice and is gone; item 8 goes on alone up to the limit of 5. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fill(&q, &p, 2 * ITEM, 5), 1);
        assert_int_equal(p.ids[0], 8);
    }
    assert_int_equal(bcast_count(&q), 0);
    /* A counter above the queue's limit does not extend it. */
    assert_true(bcast_push_n(&q, BCAST_CLASS_APP, b, sizeof(b), 9));
    for (int i = 0; i < 3; i++)
        assert_int_equal(fill(&q, &p, ITEM, 3), 1);
    assert_int_equal(bcast_count(&q), 0);
    bcast_free(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_least_sent_first),
        cmocka_unit_test(test_retire_after_limit),
        cmocka_unit_test(test_limit_shrinks),
        cmocka_unit_test(test_owner_replacement),
        cmocka_unit_test(test_class_cap_drops),
        cmocka_unit_test(test_fair_split),
        cmocka_unit_test(test_no_duplicates_when_room_is_left),
        cmocka_unit_test(test_skips_items_too_big),
        cmocka_unit_test(test_own_counter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
