/* Settings defaults for the three profiles, and the names of codes and states. */
#include <stdio.h>
#include <string.h>

#include "rumor.h"

typedef struct profile_timing {
    uint32_t probe_interval, probe_timeout, suspicion_mult, retransmit_mult;
    uint32_t gossip_interval, gossip_nodes, pushpull_interval, gossip_to_dead;
    uint32_t reconnect_interval, stream_timeout, leave_timeout, kv_sync_interval;
} profile_timing;

/* memberlist's DefaultLANConfig / DefaultWANConfig / DefaultLocalConfig (shared/REFERENCES.md),
 * plus rumor's own reconnect cadence, which heals partitions without an operator. */
static const profile_timing profiles[] = {
    [RUMOR_PROFILE_LAN] = {1000, 500, 4, 4, 200, 3, 30000, 30000, 10000, 10000, 5000, 1000},
    [RUMOR_PROFILE_WAN] = {5000, 3000, 6, 4, 500, 4, 60000, 60000, 30000, 30000, 15000, 2500},
    [RUMOR_PROFILE_LOCAL] = {1000, 200, 3, 2, 100, 3, 15000, 15000, 5000, 5000, 2000, 500},
};

int rumor_settings_default(rumor_settings *s, rumor_profile profile)
{
    if (!s || (unsigned)profile > RUMOR_PROFILE_LOCAL)
        return RUMOR_ERR_INVALID;
    const profile_timing *p = &profiles[profile];
    memset(s, 0, sizeof(*s));
    s->version = RUMOR_SETTINGS_VERSION;
    s->probe_interval_ms = p->probe_interval;
    s->probe_timeout_ms = p->probe_timeout;
    s->indirect_checks = 3;
    s->suspicion_mult = p->suspicion_mult;
    s->suspicion_max_mult = 6;
    s->awareness_max = 8;
    s->stream_fallback = true;
    s->retransmit_mult = p->retransmit_mult;
    s->gossip_interval_ms = p->gossip_interval;
    s->gossip_nodes = p->gossip_nodes;
    s->gossip_to_dead_ms = p->gossip_to_dead;
    s->packet_bytes_max = 1400;
    s->broadcast_queue_max = 65536;
    s->pushpull_interval_ms = p->pushpull_interval;
    s->reconnect_interval_ms = p->reconnect_interval;
    s->reconnect_timeout_ms = 24u * 3600u * 1000u;
    s->reap_failed_ms = 24u * 3600u * 1000u;
    s->reap_left_ms = 24u * 3600u * 1000u;
    s->stream_timeout_ms = p->stream_timeout;
    s->leave_timeout_ms = p->leave_timeout;
    s->meta_bytes_max = 512;
    s->members_max = 1000000;
    s->streams_max = 128;
    s->stream_frame_bytes_max = 16u * 1024u * 1024u;
    s->kv_sync_interval_ms = p->kv_sync_interval;
    s->kv_sync_mode = RUMOR_SYNC_PUSH_PULL;
    s->kv_value_bytes_max = 512;
    s->kv_keys_max = 1024;
    s->kv_node_bytes_max = 1024u * 1024u;
    s->kv_total_bytes_max = 256ull * 1024u * 1024u;
    s->kv_tombstone_ttl_ms = 24u * 3600u * 1000u;
    /* Demers et al. 1987: a blind counter of k leaves about e^-k of the nodes uninformed
     * whatever N is (4: under 2 %), which the next anti-entropy round repairs; a fixed k keeps
     * the cost of a write per node flat in N, where the membership retransmit limit grows with
     * log N. */
    s->kv_rumor_transmits = 4;
    /* Serf's defaults: UserEventSizeLimit 512, EventBuffer 64, QuerySizeLimit and
     * QueryResponseSizeLimit 1024, QueryBuffer 64, QueryTimeoutMult 16. */
    s->event_bytes_max = 512;
    s->event_buffer = 64;
    s->query_bytes_max = 1024;
    s->query_response_bytes_max = 1024;
    s->query_buffer = 64;
    s->query_timeout_mult = 16;
    s->queries_max = 64;
    s->queries_inbound_max = 256;
    return RUMOR_OK;
}

/* Index of `text` in `names`, or -1. */
static int lookup(const char *text, const char *const *names, int n)
{
    for (int i = 0; text && i < n; i++)
        if (strcmp(text, names[i]) == 0)
            return i;
    return -1;
}

int rumor_profile_parse(const char *text, rumor_profile *out)
{
    static const char *const names[] = {"lan", "wan", "local"};
    int i = lookup(text, names, 3);
    if (i < 0)
        return RUMOR_ERR_INVALID;
    *out = (rumor_profile)i;
    return RUMOR_OK;
}

int rumor_sync_mode_parse(const char *text, rumor_sync_mode *out)
{
    static const char *const names[] = {"push-pull", "push", "pull"};
    int i = lookup(text, names, 3);
    if (i < 0)
        return RUMOR_ERR_INVALID;
    *out = (rumor_sync_mode)i;
    return RUMOR_OK;
}

const char *rumor_strerror(int err)
{
    switch (err) {
    case RUMOR_OK:
        return "ok";
    case RUMOR_ERR_INVALID:
        return "invalid argument";
    case RUMOR_ERR_NOMEM:
        return "out of memory";
    case RUMOR_ERR_TOO_BIG:
        return "value exceeds a configured limit";
    case RUMOR_ERR_MALFORMED:
        return "malformed input";
    case RUMOR_ERR_STATE:
        return "not valid in the current state";
    case RUMOR_ERR_NOT_FOUND:
        return "not found";
    case RUMOR_ERR_FULL:
        return "table or queue full";
    case RUMOR_ERR_VERSION:
        return "unsupported version";
    case RUMOR_ERR_LABEL:
        return "wrong cluster label";
    case RUMOR_ERR_AUTH:
        return "authentication failed";
    case RUMOR_ERR_EXPIRED:
        return "deadline passed";
    default:
        return "unknown error";
    }
}

const char *rumor_member_state_name(rumor_member_state st)
{
    static const char *const names[] = {"alive", "suspect", "failed", "left"};
    return (unsigned)st < 4 ? names[st] : "unknown";
}

const char *rumor_event_type_name(rumor_event_type t)
{
    static const char *const names[] = {"",
                                        "member-join",
                                        "member-update",
                                        "member-suspect",
                                        "member-alive",
                                        "member-failed",
                                        "member-leave",
                                        "member-reap",
                                        "leave-done",
                                        "kv-change",
                                        "user",
                                        "query",
                                        "query-ack",
                                        "query-response",
                                        "query-done",
                                        "keyring-change"};
    return (unsigned)t < sizeof(names) / sizeof(names[0]) && t ? names[t] : "unknown";
}

const char *rumor_drop_reason_name(rumor_drop_reason r)
{
    static const char *const names[RUMOR_DROP_REASON_COUNT] = {
        "truncated",    "bad_magic", "bad_version", "bad_label", "malformed",  "oversize",
        "unknown_type", "encrypted", "not_for_us",  "stale",     "queue_full", "auth_failed",
        "unknown_key",  "replayed",  "plaintext",   "identity",  "stale_epoch"};
    return (unsigned)r < RUMOR_DROP_REASON_COUNT ? names[r] : "unknown";
}

/* ---- addresses ---- */

bool rumor_addr_equal(const rumor_addr *a, const rumor_addr *b)
{
    return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

int rumor_addr_from_ip(rumor_addr *out, int family, const uint8_t *ip, uint16_t port)
{
    size_t n = family == 4 ? 4 : family == 6 ? 16 : 0;
    if (!out || !ip || n == 0)
        return RUMOR_ERR_INVALID;
    memset(out, 0, sizeof(*out));
    out->bytes[0] = (uint8_t)family;
    memcpy(out->bytes + 1, ip, n);
    out->bytes[1 + n] = (uint8_t)(port >> 8);
    out->bytes[2 + n] = (uint8_t)port;
    out->len = (uint8_t)(n + 3);
    return RUMOR_OK;
}

int rumor_addr_to_ip(const rumor_addr *a, int *family, uint8_t *ip, uint16_t *port)
{
    if (!a || a->len < 7)
        return RUMOR_ERR_MALFORMED;
    int f = a->bytes[0];
    size_t n = f == 4 ? 4 : f == 6 ? 16 : 0;
    if (n == 0 || a->len != n + 3)
        return RUMOR_ERR_MALFORMED;
    *family = f;
    memcpy(ip, a->bytes + 1, n);
    *port = (uint16_t)((unsigned)a->bytes[1 + n] << 8 | a->bytes[2 + n]);
    return RUMOR_OK;
}

static size_t format_ip(int family, const uint8_t *ip, uint16_t port, char *out, size_t cap)
{
    int w;
    if (family == 4) {
        w = snprintf(out, cap, "%u.%u.%u.%u:%u", ip[0], ip[1], ip[2], ip[3], port);
    } else {
        /* RFC 5952 in full form without zero compression is still a valid literal. */
        w = snprintf(out, cap, "[%x:%x:%x:%x:%x:%x:%x:%x]:%u", ip[0] << 8 | ip[1],
                     ip[2] << 8 | ip[3], ip[4] << 8 | ip[5], ip[6] << 8 | ip[7], ip[8] << 8 | ip[9],
                     ip[10] << 8 | ip[11], ip[12] << 8 | ip[13], ip[14] << 8 | ip[15], port);
    }
    if (w < 0)
        return 0;
    return (size_t)w < cap ? (size_t)w : (cap ? cap - 1 : 0);
}

size_t rumor_addr_format(const rumor_addr *a, char *out, size_t cap)
{
    int family;
    uint8_t ip[16];
    uint16_t port;
    if (cap == 0)
        return 0;
    if (rumor_addr_to_ip(a, &family, ip, &port) == RUMOR_OK)
        return format_ip(family, ip, port, out, cap);
    size_t w = 0;
    out[0] = '\0';
    for (size_t i = 0; i < a->len && w + 3 <= cap; i++) {
        snprintf(out + w, cap - w, "%02x", a->bytes[i]);
        w += 2;
    }
    return w;
}
