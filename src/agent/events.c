/*
 * The events hub: the loop thread appends membership events to a ring, SSE readers on HTTP
 * threads follow it by sequence number. A reader that falls more than the ring behind skips
 * ahead and is told how many events it missed, so a slow client never holds the agent back.
 */
#include "agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HUB_RING 256u

struct agent_hub {
    uv_mutex_t mu;
    uv_cond_t cv;
    char *ring[HUB_RING];
    uint64_t seq; /* events pushed so far; event k lives in ring[k % HUB_RING] */
    bool closed;
};

agent_hub *hub_new(void)
{
    agent_hub *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    uv_mutex_init(&h->mu);
    uv_cond_init(&h->cv);
    return h;
}

void hub_push(agent_hub *h, const char *type, const char *json)
{
    size_t len = strlen(type) + strlen(json) + 32;
    char *text = malloc(len);
    if (!text)
        return;
    snprintf(text, len, "event: %s\ndata: %s\n\n", type, json);
    uv_mutex_lock(&h->mu);
    free(h->ring[h->seq % HUB_RING]);
    h->ring[h->seq % HUB_RING] = text;
    h->seq++;
    uv_cond_broadcast(&h->cv);
    uv_mutex_unlock(&h->mu);
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
    for (unsigned i = 0; i < HUB_RING; i++)
        free(h->ring[i]);
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

static size_t copy_events(agent_hub *h, uint64_t *seq, char *out, size_t cap)
{
    size_t used = 0;
    if (h->seq - *seq > HUB_RING) {
        int n = snprintf(out, cap, ": missed %llu events\n\n",
                         (unsigned long long)(h->seq - *seq - HUB_RING));
        used = n > 0 && (size_t)n < cap ? (size_t)n : 0;
        *seq = h->seq - HUB_RING;
    }
    while (*seq < h->seq) {
        const char *text = h->ring[*seq % HUB_RING];
        size_t len = strlen(text);
        if (used + len > cap) {
            if (used == 0) /* larger than the whole buffer: cannot happen with 4 KiB meta */
                (*seq)++;
            break;
        }
        memcpy(out + used, text, len);
        used += len;
        (*seq)++;
    }
    return used;
}

long hub_read(agent_hub *h, uint64_t *seq, char *out, size_t cap, unsigned wait_ms)
{
    uv_mutex_lock(&h->mu);
    if (!h->closed && *seq == h->seq)
        (void)uv_cond_timedwait(&h->cv, &h->mu, (uint64_t)wait_ms * 1000000u);
    long r = h->closed ? -1 : (long)copy_events(h, seq, out, cap);
    uv_mutex_unlock(&h->mu);
    return r;
}
