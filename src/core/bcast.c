#include "core/bcast.h"

#include <sodium.h>
#include <string.h>

void bcast_init(bcast_queue *q, const rumor_allocator *a, uint32_t max_per_class)
{
    memset(q, 0, sizeof(*q));
    q->a = a;
    q->max_per_class = max_per_class ? max_per_class : 1;
}

static void unlink_item(bcast_queue *q, bcast *b)
{
    bcast_class *c = &q->cls[b->cls];
    uint32_t k = b->transmits < BCAST_BUCKETS ? b->transmits : BCAST_BUCKETS - 1;
    if (b->prev)
        b->prev->next = b->next;
    else
        c->head[k] = b->next;
    if (b->next)
        b->next->prev = b->prev;
    b->prev = b->next = NULL;
    c->count--;
}

static void link_item(bcast_queue *q, bcast *b)
{
    bcast_class *c = &q->cls[b->cls];
    uint32_t k = b->transmits < BCAST_BUCKETS ? b->transmits : BCAST_BUCKETS - 1;
    b->prev = NULL;
    b->next = c->head[k];
    if (b->next)
        b->next->prev = b;
    c->head[k] = b;
    c->count++;
}

static void destroy(bcast_queue *q, bcast *b)
{
    if (b->owner && *b->owner == b)
        *b->owner = NULL;
    /* A queued message may hold a secret (a key operation carries a key): wipe it. */
    sodium_memzero(b->data, b->len);
    rfree(q->a, b);
}

void bcast_remove(bcast_queue *q, bcast *b)
{
    unlink_item(q, b);
    destroy(q, b);
}

void bcast_free(bcast_queue *q)
{
    for (int c = 0; c < BCAST_CLASSES; c++)
        for (int k = 0; k < BCAST_BUCKETS; k++)
            while (q->cls[c].head[k])
                bcast_remove(q, q->cls[c].head[k]);
}

/* Drops the most-sent item of a full class to make room (it has done most of its work). */
static void drop_most_sent(bcast_queue *q, uint8_t cls)
{
    for (int k = BCAST_BUCKETS - 1; k >= 0; k--) {
        bcast *b = q->cls[cls].head[k];
        if (!b)
            continue;
        while (b->next)
            b = b->next; /* oldest in the bucket */
        bcast_remove(q, b);
        q->dropped++;
        return;
    }
}

bool bcast_push(bcast_queue *q, uint8_t cls, const uint8_t *msg, size_t len, bcast **owner,
                bool notify)
{
    if (len > UINT32_MAX)
        return false;
    bcast *b = ralloc(q->a, sizeof(*b) + len);
    if (!b)
        return false;
    memset(b, 0, sizeof(*b));
    b->cls = cls;
    b->len = (uint32_t)len;
    b->notify = notify;
    memcpy(b->data, msg, len);
    if (owner) {
        if (*owner)
            bcast_remove(q, *owner); /* newer news about the same subject replaces it */
        *owner = b;
        b->owner = owner;
    }
    if (q->cls[cls].count >= q->max_per_class)
        drop_most_sent(q, cls);
    link_item(q, b);
    return true;
}

bool bcast_push_n(bcast_queue *q, uint8_t cls, const uint8_t *msg, size_t len,
                  uint8_t max_transmits)
{
    if (!bcast_push(q, cls, msg, len, NULL, false))
        return false;
    q->cls[cls].head[0]->max_transmits = max_transmits; /* a new item heads bucket 0 */
    return true;
}

uint32_t bcast_count(const bcast_queue *q)
{
    return q->cls[0].count + q->cls[1].count;
}

/* Scans at most this many items that do not fit before giving up on a class for this packet. */
#define BCAST_SKIP_MAX 32

static size_t fill_class(bcast_queue *q, uint8_t cls, buf_writer *w, size_t *budget,
                         size_t cap_bytes, uint32_t limit, bcast **picked, size_t *npicked,
                         size_t pick_max)
{
    size_t used = 0, n = 0, skipped = 0;
    for (uint32_t k = 0; k < BCAST_BUCKETS && k < limit; k++) {
        for (bcast *b = q->cls[cls].head[k]; b; b = b->next) {
            if (*npicked >= pick_max || *budget < 3)
                return n;
            if (b->picked)
                continue;
            if (b->len > *budget || used + b->len > cap_bytes) {
                if (++skipped > BCAST_SKIP_MAX)
                    return n;
                continue;
            }
            buf_put_bytes(w, b->data, b->len);
            *budget -= b->len;
            used += b->len;
            b->picked = true;
            picked[(*npicked)++] = b;
            n++;
        }
    }
    return n;
}

#define BCAST_PICK_MAX 512

size_t bcast_fill(bcast_queue *q, buf_writer *w, size_t budget, uint32_t limit)
{
    /* The common case in a formed cluster: nothing to piggyback on this ping or ack. */
    if (q->cls[0].count == 0 && q->cls[1].count == 0)
        return 0;
    if (limit >= BCAST_BUCKETS)
        limit = BCAST_BUCKETS - 1;
    if (limit == 0)
        limit = 1;
    /* When the cluster shrank, the limit did too: items already sent that often are done. */
    for (int c = 0; c < BCAST_CLASSES; c++)
        for (uint32_t k = limit; k < BCAST_BUCKETS; k++)
            while (q->cls[c].head[k]) {
                bcast *b = q->cls[c].head[k];
                if (b->notify)
                    q->notify_retired++;
                bcast_remove(q, b);
            }
    bcast *picked[BCAST_PICK_MAX];
    size_t npicked = 0, n = 0;
    bool both = q->cls[0].count && q->cls[1].count;
    size_t half = both ? budget / 2 : budget;
    /* First pass: each class up to its share; second pass: leftovers to anyone. */
    n += fill_class(q, BCAST_CLASS_MEMBER, w, &budget, half, limit, picked, &npicked,
                    BCAST_PICK_MAX);
    n +=
        fill_class(q, BCAST_CLASS_APP, w, &budget, budget, limit, picked, &npicked, BCAST_PICK_MAX);
    if (both)
        n += fill_class(q, BCAST_CLASS_MEMBER, w, &budget, budget, limit, picked, &npicked,
                        BCAST_PICK_MAX);
    /* Picked items stay in their buckets (flagged) until the scan is over, so that moving them
     * cannot disturb the walk; now each counts one transmission. */
    for (size_t i = 0; i < npicked; i++) {
        bcast *b = picked[i];
        b->picked = false;
        unlink_item(q, b);
        b->transmits++;
        if (b->transmits >= limit || (b->max_transmits && b->transmits >= b->max_transmits)) {
            if (b->notify)
                q->notify_retired++;
            destroy(q, b);
        } else {
            link_item(q, b);
        }
    }
    return n;
}
