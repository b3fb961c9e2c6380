/*
 * The events hubs: the loop thread appends events to a ring, SSE readers on HTTP threads follow
 * it by sequence number. A reader that falls more than the ring behind skips ahead and is told
 * how many events it missed, so a slow client never holds the agent back. Events may carry a
 * key (key-value changes) that a reader filters on by prefix.
 */
#include "agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct hub_item {
    char *text;
    char *key;
    size_t key_len;
} hub_item;

struct agent_hub {
    uv_mutex_t mu;
    uv_cond_t cv;
    hub_item *ring;
    unsigned size;
    uint64_t seq; /* events pushed so far; event k lives in ring[k % size] */
    bool closed;
};

agent_hub *hub_new(unsigned ring)
{
    agent_hub *h = calloc(1, sizeof *h);
    if (!h || !(h->ring = calloc(ring, sizeof *h->ring))) {
        free(h);
        return NULL;
    }
    h->size = ring;
    uv_mutex_init(&h->mu);
    uv_cond_init(&h->cv);
    return h;
}

static void item_free(hub_item *it)
{
    free(it->text);
    free(it->key);
    memset(it, 0, sizeof *it);
}

void hub_push_keyed(agent_hub *h, const char *type, const char *json, const void *key,
                    size_t key_len)
{
    size_t len = strlen(type) + strlen(json) + 32;
    hub_item it = {
        .text = malloc(len), .key = key_len ? malloc(key_len) : NULL, .key_len = key_len};
    if (!it.text || (key_len && !it.key)) {
        item_free(&it);
        return;
    }
    snprintf(it.text, len, "event: %s\ndata: %s\n\n", type, json);
    if (key_len)
        memcpy(it.key, key, key_len);
    uv_mutex_lock(&h->mu);
    item_free(&h->ring[h->seq % h->size]);
    h->ring[h->seq % h->size] = it;
    h->seq++;
    uv_cond_broadcast(&h->cv);
    uv_mutex_unlock(&h->mu);
}

void hub_push(agent_hub *h, const char *type, const char *json)
{
    hub_push_keyed(h, type, json, NULL, 0);
}

void hub_close(agent_hub *h)
{
    uv_mutex_lock(&h->mu);
    h->closed = true;
    uv_cond_broadcast(&h->cv);
    uv_mutex_unlock(&h->mu);
}

void hub_free(agent_hub *h)
{
    if (!h)
        return;
    for (unsigned i = 0; i < h->size; i++)
        item_free(&h->ring[i]);
    free(h->ring);
    uv_mutex_destroy(&h->mu);
    uv_cond_destroy(&h->cv);
    free(h);
}

uint64_t hub_seq(agent_hub *h)
{
    uv_mutex_lock(&h->mu);
    uint64_t s = h->seq;
    uv_mutex_unlock(&h->mu);
    return s;
}

static bool matches(const hub_item *it, const hub_filter *f)
{
    return !f || f->prefix_len == 0 ||
           (it->key_len >= f->prefix_len && memcmp(it->key, f->prefix, f->prefix_len) == 0);
}

static size_t copy_events(agent_hub *h, uint64_t *seq, char *out, size_t cap, const hub_filter *f)
{
    size_t used = 0;
    if (h->seq - *seq > h->size) {
        int n = snprintf(out, cap, ": missed %llu events\n\n",
                         (unsigned long long)(h->seq - *seq - h->size));
        used = n > 0 && (size_t)n < cap ? (size_t)n : 0;
        *seq = h->seq - h->size;
    }
    while (*seq < h->seq) {
        const hub_item *it = &h->ring[*seq % h->size];
        if (!matches(it, f)) {
            (*seq)++;
            continue;
        }
        size_t len = strlen(it->text);
        if (used + len > cap) {
            if (used == 0) /* larger than the whole buffer: readers size it for the largest */
                (*seq)++;
            break;
        }
        memcpy(out + used, it->text, len);
        used += len;
        (*seq)++;
    }
    return used;
}

long hub_read(agent_hub *h, uint64_t *seq, char *out, size_t cap, unsigned wait_ms,
              const hub_filter *f)
{
    uint64_t deadline = uv_hrtime() + (uint64_t)wait_ms * 1000000u;
    long r = 0;
    uv_mutex_lock(&h->mu);
    /* Events the filter skips do not end the wait: only a match, the deadline or a close. */
    while (!h->closed && (r = (long)copy_events(h, seq, out, cap, f)) == 0) {
        uint64_t now = uv_hrtime();
        if (now >= deadline)
            break;
        (void)uv_cond_timedwait(&h->cv, &h->mu, deadline - now);
    }
    if (h->closed)
        r = -1;
    uv_mutex_unlock(&h->mu);
    return r;
}
