/* The simulator's event queue: a binary min-heap ordered by (time, sequence). */
#include "sim_internal.h"

#include <stdlib.h>

/* A 4-ary heap: half the levels of a binary one, and the four children of a node are adjacent
 * in memory. Entries move into a hole instead of being swapped. (time, sequence) keys are
 * unique, so the pop order does not depend on the heap's shape. */
#define HEAP_ARITY 4

static bool entry_less(const sim_entry *a, const sim_entry *b)
{
    if (a->at != b->at)
        return a->at < b->at;
    return a->seq < b->seq;
}

int sim_heap_push(sim_heap *h, const sim_entry *e)
{
    if (h->len == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 1024;
        sim_entry *v = realloc(h->v, cap * sizeof(*v));
        if (!v)
            return RUMOR_ERR_NOMEM;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->len++;
    while (i > 0) {
        size_t parent = (i - 1) / HEAP_ARITY;
        if (!entry_less(e, &h->v[parent]))
            break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = *e;
    return 0;
}

bool sim_heap_pop(sim_heap *h, sim_entry *out)
{
    if (h->len == 0)
        return false;
    *out = h->v[0];
    size_t n = --h->len;
    if (n == 0)
        return true;
    /* Sift the last entry down from the root. */
    const sim_entry *last = &h->v[n];
    size_t i = 0;
    for (;;) {
        size_t c = HEAP_ARITY * i + 1;
        if (c >= n)
            break;
        size_t end = c + HEAP_ARITY < n ? c + HEAP_ARITY : n;
        size_t m = c;
        for (size_t k = c + 1; k < end; k++)
            if (entry_less(&h->v[k], &h->v[m]))
                m = k;
        if (!entry_less(&h->v[m], last))
            break;
        h->v[i] = h->v[m];
        i = m;
    }
    h->v[i] = *last;
    return true;
}

size_t sim_heap_upcoming(const sim_heap *h, const sim_entry **out, size_t k)
{
    /* The second smallest entry is a child of the root; the third is another child of the root
     * or a child of the second. */
    size_t got = 0;
    if (k == 0 || h->len == 0)
        return 0;
    out[got++] = &h->v[0];
    size_t second = 0, third = 0;
    for (size_t c = 1; c <= HEAP_ARITY && c < h->len; c++) {
        if (!second || entry_less(&h->v[c], &h->v[second])) {
            third = second;
            second = c;
        } else if (!third || entry_less(&h->v[c], &h->v[third])) {
            third = c;
        }
    }
    if (!second || got == k)
        return got;
    out[got++] = &h->v[second];
    for (size_t c = HEAP_ARITY * second + 1; c <= HEAP_ARITY * second + HEAP_ARITY && c < h->len;
         c++)
        if (!third || entry_less(&h->v[c], &h->v[third]))
            third = c;
    if (third && got < k)
        out[got++] = &h->v[third];
    return got;
}

const sim_entry *sim_heap_peek(const sim_heap *h)
{
    return h->len ? &h->v[0] : NULL;
}

void sim_heap_free(sim_heap *h)
{
    for (size_t i = 0; i < h->len; i++)
        free(h->v[i].p);
    free(h->v);
    h->v = NULL;
    h->len = h->cap = 0;
}
