/* The simulator's event queue (sim_heap.c): entries come out in (time, sequence) order whatever
 * order they went in, and sim_heap_upcoming names the next three without removing them. */
#include "helper_sim.h"

#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static bool before(const sim_entry *a, const sim_entry *b)
{
    return a->at != b->at ? a->at < b->at : a->seq < b->seq;
}

static void test_order_and_upcoming(void **ctx)
{
    (void)ctx;
    sim_heap h;
    memset(&h, 0, sizeof(h));
    const sim_entry *up[3];
    assert_int_equal(sim_heap_upcoming(&h, up, 3), 0);
    sim_entry out;
    assert_false(sim_heap_pop(&h, &out));
    uint64_t x = 88172645463325252ull, seq = 0;
    /* Many equal times (only the sequence tells them apart), pushes interleaved with pops as
     * the simulator does, and a queue that grows past its first allocation. */
    for (int k = 0; k < 5000; k++) {
        sim_entry e = {.at = next_rand(&x) % 1000, .seq = seq++};
        assert_int_equal(sim_heap_push(&h, &e), 0);
    }
    assert_true(h.cap > 1024);
    sim_entry last = {0};
    bool have_last = false;
    size_t popped = 0;
    for (int round = 0; round < 20000; round++) {
        int pushes = (int)(next_rand(&x) % 3);
        for (int k = 0; k < pushes; k++) {
            sim_entry e = {.at = last.at + next_rand(&x) % 50, .seq = seq++, .node = (uint32_t)k};
            assert_int_equal(sim_heap_push(&h, &e), 0);
        }
        size_t want = h.len < 3 ? h.len : 3;
        size_t got = sim_heap_upcoming(&h, up, 3);
        assert_int_equal(got, want);
        /* The named entries are the smallest, in order: copy them, pop, compare. */
        sim_entry named[3];
        for (size_t i = 0; i < got; i++)
            named[i] = *up[i];
        for (size_t i = 1; i < got; i++)
            assert_true(before(&named[i - 1], &named[i]));
        assert_int_equal(sim_heap_upcoming(&h, up, 1), h.len ? 1 : 0);
        if (!h.len)
            continue;
        sim_heap h2 = h;
        h2.v = malloc(h.cap * sizeof(*h.v));
        assert_non_null(h2.v);
        memcpy(h2.v, h.v, h.len * sizeof(*h.v));
        for (size_t i = 0; i < got; i++) {
            assert_true(sim_heap_pop(&h2, &out));
            assert_int_equal(out.at, named[i].at);
            assert_int_equal(out.seq, named[i].seq);
        }
        free(h2.v);
        assert_true(sim_heap_pop(&h, &out));
        if (have_last)
            assert_true(before(&last, &out));
        last = out;
        have_last = true;
        popped++;
    }
    while (sim_heap_pop(&h, &out)) {
        assert_true(before(&last, &out));
        last = out;
        popped++;
    }
    assert_int_equal(popped, seq);
    sim_heap_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_upcoming),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
