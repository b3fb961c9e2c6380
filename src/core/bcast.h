/*
 * The transmit-limited broadcast queue (SWIM §4.4, memberlist's TransmitLimitedQueue). Each
 * item is an encoded message sent piggybacked on outgoing packets, least-sent first (newest
 * first among equals), and retired after `limit` transmissions, limit = RetransmitMult ×
 * ⌈log10(N+1)⌉. Items live in buckets by transmit count, so picking the least-sent items is
 * O(items picked), not O(queue).
 *
 * Two classes share the packet budget: membership news and application payloads. When both have
 * items, each gets half of the space first and the other may take what is left, so neither can
 * starve the other (memberlist #299).
 */
#ifndef RUMOR_CORE_BCAST_H
#define RUMOR_CORE_BCAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/alloc.h"
#include "core/buf.h"

#define BCAST_CLASS_MEMBER 0
#define BCAST_CLASS_APP    1
#define BCAST_CLASSES      2
#define BCAST_BUCKETS      64 /* transmit counts tracked; limits are capped below this */

typedef struct bcast {
    struct bcast *prev, *next;
    struct bcast **owner; /* cleared when the item goes (e.g. member->bcast) */
    uint32_t transmits;
    uint8_t cls;
    bool notify;           /* report retirement (used for leave) */
    bool picked;           /* already in the packet being filled */
    uint8_t max_transmits; /* retire after this many even below the queue's limit; 0 = none */
    uint32_t len;
    uint8_t data[]; /* one encoded message */
} bcast;

typedef struct bcast_class {
    bcast *head[BCAST_BUCKETS];
    uint32_t count;
} bcast_class;

typedef struct bcast_queue {
    bcast_class cls[BCAST_CLASSES];
    uint32_t max_per_class;
    uint64_t dropped;
    uint32_t notify_retired; /* retired items that had `notify` set */
    const rumor_allocator *a;
} bcast_queue;

void bcast_init(bcast_queue *q, const rumor_allocator *a, uint32_t max_per_class);
void bcast_free(bcast_queue *q);
/* Queues a copy of `msg`. When `owner` is given, an item it points to is replaced (newer news
 * about the same subject) and *owner tracks the new item. Returns false when out of memory. */
bool bcast_push(bcast_queue *q, uint8_t cls, const uint8_t *msg, size_t len, bcast **owner,
                bool notify);
/* Queues a copy of `msg` that retires after `max_transmits` transmissions (or the queue's
 * limit, whichever is lower): a rumor with a fixed counter (Demers et al.). False on OOM. */
bool bcast_push_n(bcast_queue *q, uint8_t cls, const uint8_t *msg, size_t len,
                  uint8_t max_transmits);
/* Drops an item (its owner pointer is cleared). */
void bcast_remove(bcast_queue *q, bcast *b);
uint32_t bcast_count(const bcast_queue *q);
/* Appends least-sent items to `w` while they fit in `budget` bytes, counting one transmission
 * each and retiring items that reach `limit`. Returns the number of messages appended. */
size_t bcast_fill(bcast_queue *q, buf_writer *w, size_t budget, uint32_t limit);

#endif
