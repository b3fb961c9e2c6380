/*
 * The recent-message window of a Lamport clock (Serf's eventBuffer / queryBuffer): slot
 * `ltime % size` holds the identities of the messages seen at that time. A message is stale
 * when its time is more than `size` behind the clock. Two times within the window never share a
 * slot, so a slot holding another time holds an older one that has left the window, and is
 * reused.
 */
#include "core/hash.h"
#include "core/msg.h"

#include <string.h>

bool msg_window_init(msg_window *w, const rumor_allocator *a, uint32_t size, size_t bytes_max)
{
    w->size = size;
    w->bytes = 0;
    w->bytes_max = bytes_max;
    w->slots = rcalloc(a, size, sizeof(msg_slot));
    return w->slots != NULL;
}

static void slot_clear(msg_window *w, msg_slot *s, const rumor_allocator *a)
{
    for (size_t i = 0; i < s->n; i++) {
        w->bytes -= s->items[i].len;
        rfree(a, s->items[i].id);
    }
    s->n = 0;
}

void msg_window_free(msg_window *w, const rumor_allocator *a)
{
    if (!w->slots)
        return;
    for (uint32_t i = 0; i < w->size; i++) {
        slot_clear(w, &w->slots[i], a);
        rfree(a, w->slots[i].items);
    }
    rfree(a, w->slots);
    w->slots = NULL;
}

uint64_t msg_window_low(const msg_window *w, uint64_t clock)
{
    return clock > w->size ? clock - w->size : 0;
}

uint64_t msg_window_sum(const msg_window *w, uint64_t clock)
{
    uint64_t lo = msg_window_low(w, clock), sum = 0;
    for (uint32_t i = 0; i < w->size; i++) {
        const msg_slot *s = &w->slots[i];
        if (s->ltime < lo)
            continue;
        for (size_t k = 0; k < s->n; k++)
            sum += s->items[k].hash;
    }
    return sum;
}

void msg_witness(uint64_t *clock, uint64_t ltime)
{
    if (ltime >= *clock)
        *clock = ltime + 1;
}

static bool same(const msg_seen *it, const wire_str *parts, size_t nparts, size_t len)
{
    if (it->len != len)
        return false;
    size_t off = 0;
    for (size_t i = 0; i < nparts; off += parts[i].len, i++)
        if (parts[i].len && memcmp(it->id + off, parts[i].p, parts[i].len) != 0)
            return false;
    return true;
}

static size_t parts_len(const wire_str *parts, size_t nparts)
{
    size_t len = 0;
    for (size_t i = 0; i < nparts; i++)
        len += parts[i].len;
    return len;
}

msg_admit msg_window_peek(const msg_window *w, uint64_t clock, uint64_t ltime,
                          const wire_str *parts, size_t nparts)
{
    size_t len = parts_len(parts, nparts);
    /* Serf: stale when the clock is past the window and the time is below its start. */
    if (ltime < msg_window_low(w, clock))
        return MSG_STALE;
    const msg_slot *s = &w->slots[ltime % w->size];
    if (!s->n || s->ltime != ltime)
        return MSG_NEW;
    for (size_t i = 0; i < s->n; i++)
        if (same(&s->items[i], parts, nparts, len))
            return MSG_DUP;
    return MSG_NEW;
}

msg_admit msg_window_admit(msg_window *w, const rumor_allocator *a, uint64_t clock, uint64_t ltime,
                           const wire_str *parts, size_t nparts)
{
    return msg_window_admit_sig(w, a, clock, ltime, parts, nparts, NULL);
}

msg_admit msg_window_admit_sig(msg_window *w, const rumor_allocator *a, uint64_t clock,
                               uint64_t ltime, const wire_str *parts, size_t nparts,
                               const uint8_t *sig)
{
    msg_admit seen = msg_window_peek(w, clock, ltime, parts, nparts);
    if (seen != MSG_NEW)
        return seen;
    size_t len = parts_len(parts, nparts);
    msg_slot *s = &w->slots[ltime % w->size];
    if (s->n && s->ltime != ltime)
        slot_clear(w, s, a); /* the slot's earlier time has left the window */
    s->ltime = ltime;
    if (s->n >= MSG_SLOT_MAX || len > UINT32_MAX || w->bytes + len > w->bytes_max)
        return MSG_FULL;
    void *items = s->items;
    if (!rgrow(a, &items, &s->cap, s->n + 1, sizeof(msg_seen)))
        return MSG_FULL;
    s->items = items;
    size_t alloc = len + (sig ? WIRE_SIG_BYTES : 0u);
    uint8_t *copy = ralloc(a, alloc ? alloc : 1);
    if (!copy)
        return MSG_FULL;
    for (size_t i = 0, off = 0; i < nparts; off += parts[i].len, i++)
        if (parts[i].len)
            memcpy(copy + off, parts[i].p, parts[i].len);
    if (sig)
        memcpy(copy + len, sig, WIRE_SIG_BYTES);
    uint8_t lt[8];
    for (int i = 0; i < 8; i++)
        lt[i] = (uint8_t)(ltime >> (56 - 8 * i));
    s->items[s->n].id = copy;
    s->items[s->n].len = (uint32_t)len;
    s->items[s->n].sig = sig != NULL;
    s->items[s->n].hash = hash_mix64(hash_fnv64(hash_fnv64(HASH_FNV64_INIT, lt, 8), copy, len));
    s->n++;
    w->bytes += len;
    return MSG_NEW;
}

void msg_window_unadmit(msg_window *w, const rumor_allocator *a, uint64_t ltime)
{
    msg_slot *s = &w->slots[ltime % w->size];
    if (s->n && s->ltime == ltime) {
        s->n--;
        w->bytes -= s->items[s->n].len;
        rfree(a, s->items[s->n].id);
    }
}
