/* Metrics of a run, computed on demand from the counters and crash records, and their JSON. */
#include "sim_internal.h"

#include <inttypes.h>
#include <stdlib.h>

uint64_t rumor_sim_trace_hash(const rumor_sim *s)
{
    return s->trace;
}

void rumor_sim_event_counts(const rumor_sim *s, uint64_t counts[9])
{
    for (int i = 0; i < 9; i++)
        counts[i] = s->ev_counts[i];
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static uint64_t percentile(const uint32_t *v, size_t n, unsigned pct)
{
    size_t rank = (n * pct + 99) / 100;
    return v[rank ? rank - 1 : 0];
}

static void detection(const rumor_sim *s, rumor_sim_metrics *m)
{
    size_t cap = 0;
    for (uint32_t k = 0; k < s->ncrashes; k++)
        cap += s->n;
    uint32_t *all = cap ? malloc(cap * sizeof(*all)) : NULL;
    size_t n = 0;
    for (uint32_t k = 0; k < s->ncrashes; k++) {
        const sim_crash *c = &s->crashes[k];
        for (uint32_t o = 0; o < s->n; o++) {
            uint32_t d = c->delay[o];
            if (d != SIM_UNSET && d != SIM_NONE) {
                if (all)
                    all[n++] = d;
            } else if (d == SIM_UNSET && !c->restarted && sim_is_live(&s->nodes[o]) &&
                       s->nodes[o].life == c->life[o]) {
                m->detect_missed++;
            }
        }
    }
    m->crashes = s->ncrashes;
    m->detect_count = n;
    if (n > 0) {
        qsort(all, n, sizeof(*all), cmp_u32);
        m->detect_min_ms = all[0];
        m->detect_median_ms = percentile(all, n, 50);
        m->detect_p99_ms = percentile(all, n, 99);
        m->detect_max_ms = all[n - 1];
    }
    free(all);
}

static void engine_totals(const rumor_sim *s, rumor_sim_metrics *m)
{
    for (uint32_t i = 0; i < s->n; i++) {
        if (!s->nodes[i].eng)
            continue;
        rumor_stats st;
        rumor_node_stats(s->nodes[i].eng, &st);
        m->probes += st.probes;
        m->probe_failures += st.probe_failures;
        m->indirect_probes += st.indirect_probes;
        m->stream_probes += st.stream_probes;
        m->suspicions += st.suspicions;
        m->refutes += st.refutes;
        m->pushpulls += st.pushpulls;
        m->engine_messages_out += st.messages_out;
        for (int r = 0; r < RUMOR_DROP_REASON_COUNT; r++)
            m->engine_dropped += st.dropped[r];
        m->ident_signed += st.ident_signed;
        m->ident_verified += st.ident_verified;
        m->ident_cached += st.ident_cached;
        for (int r = 0; r < RUMOR_IDENT_REFUSAL_COUNT; r++)
            m->ident_refused += st.ident_refused[r];
        m->dropped_auth_failed += st.dropped[RUMOR_DROP_AUTH_FAILED];
        m->dropped_unknown_key += st.dropped[RUMOR_DROP_UNKNOWN_KEY];
        m->dropped_replayed += st.dropped[RUMOR_DROP_REPLAYED];
        m->dropped_not_for_us += st.dropped[RUMOR_DROP_NOT_FOR_US];
        m->dropped_plaintext += st.dropped[RUMOR_DROP_PLAINTEXT];
        m->dropped_encrypted += st.dropped[RUMOR_DROP_ENCRYPTED];
        m->dropped_stale_epoch += st.dropped[RUMOR_DROP_STALE_EPOCH];
    }
}

void rumor_sim_metrics_get(const rumor_sim *s, rumor_sim_metrics *m)
{
    *m = (rumor_sim_metrics){0};
    m->convergence_ms = s->converged_at;
    m->rejoin_ms = s->rejoin_ms;
    detection(s, m);
    m->false_positives = s->false_positives;
    m->paused_failures = s->paused_failures;
    m->partition_failures = s->partition_failures;
    m->false_suspicions = s->false_suspicions;
    m->datagrams = s->datagrams;
    m->datagram_bytes = s->datagram_bytes;
    m->stream_writes = s->stream_writes;
    m->stream_bytes = s->stream_bytes;
    m->dropped_loss = s->dropped_loss;
    m->dropped_partition = s->dropped_partition;
    m->dropped_down = s->dropped_down;
    double node_ms = s->node_ms + (double)s->live * (double)(s->now - s->live_since);
    m->node_seconds = node_ms / 1000.0;
    if (m->node_seconds > 0) {
        m->messages_per_node_s = (double)(s->datagrams + s->stream_writes) / m->node_seconds;
        m->bytes_per_node_s = (double)(s->datagram_bytes + s->stream_bytes) / m->node_seconds;
    }
    double steady_s = (node_ms - s->steady_node_ms) / 1000.0;
    if (s->converged_at != SIM_NEVER && steady_s > 0) {
        uint64_t msgs = s->datagrams + s->stream_writes - s->steady_msgs;
        uint64_t bytes = s->datagram_bytes + s->stream_bytes - s->steady_bytes;
        m->steady_messages_per_node_s = (double)msgs / steady_s;
        m->steady_bytes_per_node_s = (double)bytes / steady_s;
    }
    engine_totals(s, m);
    m->events = s->events;
    m->replays_injected = s->replays_injected;
    m->replays_rejected = s->replays_rejected;
    m->replays_limited = s->replays_limited;
    m->replays_accepted_after_restart = s->replays_after_restart;
    m->datagrams_aesgcm = s->dgrams_aes;
    m->datagrams_xchacha = s->dgrams_xchacha;
    m->datagrams_aesgcm_to_xchacha = s->dgrams_aes_to_xchacha;
    m->trace_hash = s->trace;
    m->virtual_ms = s->now;
}

static void json_ms(FILE *f, const char *key, uint64_t v, bool have, bool comma)
{
    if (have)
        fprintf(f, "\"%s\":%" PRIu64 "%s", key, v, comma ? "," : "");
    else
        fprintf(f, "\"%s\":null%s", key, comma ? "," : "");
}

void rumor_sim_metrics_json(const rumor_sim_metrics *m, FILE *f)
{
    json_ms(f, "convergence", m->convergence_ms, m->convergence_ms != SIM_NEVER, true);
    json_ms(f, "rejoin", m->rejoin_ms, m->rejoin_ms != SIM_NEVER, true);
    bool d = m->detect_count > 0;
    fprintf(f, "\"detection\":{\"crashes\":%" PRIu64 ",\"detected\":%" PRIu64 ",", m->crashes,
            m->detect_count);
    json_ms(f, "min_ms", m->detect_min_ms, d, true);
    json_ms(f, "median_ms", m->detect_median_ms, d, true);
    json_ms(f, "p99_ms", m->detect_p99_ms, d, true);
    json_ms(f, "max_ms", m->detect_max_ms, d, true);
    fprintf(f, "\"missed\":%" PRIu64 "},", m->detect_missed);
    fprintf(f,
            "\"false_positives\":%" PRIu64 ",\"paused_failures\":%" PRIu64
            ",\"partition_failures\":%" PRIu64 ",\"false_suspicions\":%" PRIu64 ",",
            m->false_positives, m->paused_failures, m->partition_failures, m->false_suspicions);
    fprintf(f, "\"messages_per_node_s\":%.3f,\"bytes_per_node_s\":%.1f,", m->messages_per_node_s,
            m->bytes_per_node_s);
    fprintf(f, "\"steady_messages_per_node_s\":%.3f,\"steady_bytes_per_node_s\":%.1f,",
            m->steady_messages_per_node_s, m->steady_bytes_per_node_s);
    fprintf(f,
            "\"datagrams\":%" PRIu64 ",\"datagram_bytes\":%" PRIu64 ",\"stream_writes\":%" PRIu64
            ",\"stream_bytes\":%" PRIu64 ",",
            m->datagrams, m->datagram_bytes, m->stream_writes, m->stream_bytes);
    fprintf(f, "\"dropped\":{\"loss\":%" PRIu64 ",\"partition\":%" PRIu64 ",\"down\":%" PRIu64 "},",
            m->dropped_loss, m->dropped_partition, m->dropped_down);
    fprintf(f,
            "\"engine\":{\"probes\":%" PRIu64 ",\"probe_failures\":%" PRIu64
            ",\"indirect_probes\":%" PRIu64 ",\"stream_probes\":%" PRIu64 ",\"suspicions\":%" PRIu64
            ",\"refutes\":%" PRIu64 ",\"pushpulls\":%" PRIu64 ",\"messages_out\":%" PRIu64
            ",\"dropped\":%" PRIu64 "},",
            m->probes, m->probe_failures, m->indirect_probes, m->stream_probes, m->suspicions,
            m->refutes, m->pushpulls, m->engine_messages_out, m->engine_dropped);
    fprintf(f,
            "\"identity\":{\"signed\":%" PRIu64 ",\"verified\":%" PRIu64 ",\"cached\":%" PRIu64
            ",\"refused\":%" PRIu64 "},",
            m->ident_signed, m->ident_verified, m->ident_cached, m->ident_refused);
    fprintf(f,
            "\"seal\":{\"auth_failed\":%" PRIu64 ",\"unknown_key\":%" PRIu64
            ",\"replayed\":%" PRIu64 ",\"not_for_us\":%" PRIu64 ",\"plaintext\":%" PRIu64
            ",\"encrypted\":%" PRIu64 ",\"stale_epoch\":%" PRIu64 ",\"replays_injected\":%" PRIu64
            ",\"replays_rejected\":%" PRIu64 ",\"replays_limited\":%" PRIu64
            ",\"replays_accepted_after_restart\":%" PRIu64 ",\"datagrams_aesgcm\":%" PRIu64
            ",\"datagrams_xchacha\":%" PRIu64 ",\"datagrams_aesgcm_to_xchacha\":%" PRIu64 "},",
            m->dropped_auth_failed, m->dropped_unknown_key, m->dropped_replayed,
            m->dropped_not_for_us, m->dropped_plaintext, m->dropped_encrypted,
            m->dropped_stale_epoch, m->replays_injected, m->replays_rejected, m->replays_limited,
            m->replays_accepted_after_restart, m->datagrams_aesgcm, m->datagrams_xchacha,
            m->datagrams_aesgcm_to_xchacha);
    fprintf(f,
            "\"events\":%" PRIu64 ",\"virtual_ms\":%" PRIu64 ",\"trace_hash\":\"%016" PRIx64 "\"",
            m->events, m->virtual_ms, m->trace_hash);
}
