/* The simulator's event queue: a binary min-heap ordered by (time, sequence). */
#include "sim_internal.h"

#include <stdlib.h>

static bool entry_less(const sim_entry *a, const sim_entry *b)
{
    if (a->at != b->at)
        return a->at < b->at;
    return a->seq < b->seq;
}

static void swap_entries(sim_entry *a, sim_entry *b)
{
    sim_entry t = *a;
    *a = *b;
    *b = t;
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
    h->v[i] = *e;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!entry_less(&h->v[i], &h->v[parent]))
            break;
        swap_entries(&h->v[i], &h->v[parent]);
        i = parent;
    }
    return 0;
}

static void sift_down(sim_heap *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->len && entry_less(&h->v[l], &h->v[m]))
            m = l;
        if (r < h->len && entry_less(&h->v[r], &h->v[m]))
            m = r;
        if (m == i)
            return;
        swap_entries(&h->v[i], &h->v[m]);
        i = m;
    }
}

bool sim_heap_pop(sim_heap *h, sim_entry *out)
{
    if (h->len == 0)
        return false;
    *out = h->v[0];
    h->v[0] = h->v[--h->len];
    sift_down(h, 0);
    return true;
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
