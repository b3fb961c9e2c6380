/* Prometheus text exposition (version 0.0.4). Every name starts with rumor_. */
#include "agent.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool failed;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    for (int tries = 0; tries < 2 && !b->failed; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if (b->p && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

static void counter(sbuf *b, const char *name, const char *help, uint64_t v)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
              (unsigned long long)v);
}

static void gauge(sbuf *b, const char *name, const char *help, uint64_t v)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %llu\n", name, help, name, name,
              (unsigned long long)v);
}

static void engine_metrics(sbuf *b, const rumor_stats *st)
{
    sb_printf(b, "# HELP rumor_members Members in the local view by state, self included.\n"
                 "# TYPE rumor_members gauge\n");
    for (int s = 0; s < 4; s++)
        sb_printf(b, "rumor_members{state=\"%s\"} %u\n",
                  rumor_member_state_name((rumor_member_state)s), st->members[s]);
    counter(b, "rumor_probes_total", "Direct probes started.", st->probes);
    counter(b, "rumor_probe_failures_total", "Probes that ended without any ack.",
            st->probe_failures);
    counter(b, "rumor_acks_total", "Acks received for our probes or relays.", st->acks_in);
    counter(b, "rumor_nacks_total", "Nacks received.", st->nacks_in);
    counter(b, "rumor_indirect_probes_total", "Indirect probes (ping-req) sent.",
            st->indirect_probes);
    counter(b, "rumor_indirect_relayed_total", "Indirect probes served for others.",
            st->indirect_relayed);
    counter(b, "rumor_stream_probes_total", "Fallback probes over TCP.", st->stream_probes);
    counter(b, "rumor_suspicions_total", "Members this node started to suspect.", st->suspicions);
    counter(b, "rumor_refutes_total", "Times this node refuted a suspicion about itself.",
            st->refutes);
    counter(b, "rumor_packets_received_total", "Datagrams received.", st->packets_in);
    counter(b, "rumor_packets_sent_total", "Datagrams sent.", st->packets_out);
    counter(b, "rumor_bytes_received_total", "Datagram bytes received.", st->bytes_in);
    counter(b, "rumor_bytes_sent_total", "Datagram bytes sent.", st->bytes_out);
    counter(b, "rumor_messages_received_total", "Protocol messages received.", st->messages_in);
    counter(b, "rumor_messages_sent_total", "Protocol messages sent.", st->messages_out);
    sb_printf(b, "# HELP rumor_packets_dropped_total Inbound packets and stream frames "
                 "rejected, by reason.\n# TYPE rumor_packets_dropped_total counter\n");
    for (int r = 0; r < RUMOR_DROP_REASON_COUNT; r++)
        sb_printf(b, "rumor_packets_dropped_total{reason=\"%s\"} %llu\n",
                  rumor_drop_reason_name((rumor_drop_reason)r), (unsigned long long)st->dropped[r]);
    counter(b, "rumor_stale_epoch_datagrams_total",
            "Sealed datagrams naming another life of this node (first contact, or captured "
            "before a restart): answered only for PING and PING_REQ.",
            st->stale_epoch_in);
    gauge(b, "rumor_broadcast_queue_depth", "Broadcasts waiting to be sent.", st->broadcast_queue);
    counter(b, "rumor_broadcasts_queued_total", "Broadcasts queued.", st->broadcasts_queued);
    counter(b, "rumor_streams_in_total", "Inbound streams accepted by the engine.", st->streams_in);
    counter(b, "rumor_streams_out_total", "Outbound streams opened by the engine.",
            st->streams_out);
    counter(b, "rumor_full_syncs_total", "Completed full-state syncs (push-pull).", st->pushpulls);
    sb_printf(b,
              "# HELP rumor_full_sync_duration_seconds_total Summed duration of the full "
              "syncs this node initiated.\n# TYPE rumor_full_sync_duration_seconds_total "
              "counter\nrumor_full_sync_duration_seconds_total %.3f\n",
              (double)st->pushpull_ms_total / 1000.0);
    gauge(b, "rumor_local_health_score", "Lifeguard local health score (0 = healthy).",
          st->awareness);
    counter(b, "rumor_identity_signatures_total", "Ed25519 signatures made by this node.",
            st->ident_signed);
    counter(b, "rumor_identity_verifications_total", "Ed25519 signatures verified.",
            st->ident_verified);
    counter(b, "rumor_identity_verify_cache_hits_total",
            "Signature checks answered by the verification cache.", st->ident_cached);
    sb_printf(b, "# HELP rumor_identity_refused_total Claims refused by the identity checks, by "
                 "reason (forged or altered signatures: bad_*).\n"
                 "# TYPE rumor_identity_refused_total counter\n");
    for (int r = 0; r < RUMOR_IDENT_REFUSAL_COUNT; r++)
        sb_printf(b, "rumor_identity_refused_total{reason=\"%s\"} %llu\n",
                  rumor_ident_refusal_name((rumor_ident_refusal)r),
                  (unsigned long long)st->ident_refused[r]);
    gauge(b, "rumor_incarnation", "This node's incarnation number.", st->incarnation);
}

static void runtime_metrics(sbuf *b, const rumor_runtime_counters *rc)
{
    counter(b, "rumor_udp_send_errors_total", "Datagrams the kernel refused to send.",
            rc->udp_send_errors);
    counter(b, "rumor_udp_receive_errors_total", "Failed or truncated datagram reads.",
            rc->udp_recv_errors);
    counter(b, "rumor_tcp_accepted_total", "Inbound TCP connections.", rc->tcp_accepted);
    sb_printf(b,
              "# HELP rumor_tcp_closed_total TCP connections closed by the agent, by "
              "reason.\n# TYPE rumor_tcp_closed_total counter\n"
              "rumor_tcp_closed_total{reason=\"refused\"} %llu\n"
              "rumor_tcp_closed_total{reason=\"idle\"} %llu\n"
              "rumor_tcp_closed_total{reason=\"unread\"} %llu\n",
              (unsigned long long)rc->tcp_refused, (unsigned long long)rc->tcp_idle_closed,
              (unsigned long long)rc->tcp_write_overflow);
    counter(b, "rumor_tcp_connect_errors_total", "Outbound connections that failed.",
            rc->tcp_connect_errors);
    counter(b, "rumor_tunnel_datagrams_received_total", "Datagrams received over TCP.",
            rc->tunnel_in);
    counter(b, "rumor_tunnel_datagrams_sent_total", "Datagrams sent over TCP.", rc->tunnel_out);
    counter(b, "rumor_tunnel_datagrams_dropped_total", "Tunnelled datagrams dropped.",
            rc->tunnel_dropped);
    counter(b, "rumor_joins_total", "Join attempts.", rc->joins);
    counter(b, "rumor_resolve_errors_total", "Join host names that did not resolve.",
            rc->resolve_errors);
    counter(b, "rumor_auth_refused_total",
            "Packets and stream frames refused as unauthenticated, replayed, misdirected or "
            "plaintext (reasons in rumor_packets_dropped_total).",
            rc->auth_refused);
}

static void kv_metrics(sbuf *b, const agent_kv_snapshot *kv)
{
    const agent_kv *c = &kv->counters;
    gauge(b, "rumor_kv_keyspaces", "Key-value keyspaces held (one per writing member).",
          kv->st.origins);
    gauge(b, "rumor_kv_keys", "Live key-value entries over every replica held.", kv->st.keys);
    gauge(b, "rumor_kv_entries", "Key-value entries held, deletes not yet collected included.",
          kv->st.entries);
    gauge(b, "rumor_kv_bytes", "Key and value bytes held over every replica.", kv->st.bytes);
    gauge(b, "rumor_kv_shared_keys", "Live keys of the shared keyspace.", kv->st.shared_keys);
    gauge(b, "rumor_kv_own_keys", "Live entries this node wrote (own keys and shared writes).",
          kv->self.keys);
    gauge(b, "rumor_kv_own_bytes", "Key and value bytes of this node's entries.", kv->self.bytes);
    gauge(b, "rumor_kv_own_version", "This node's key-value version counter.",
          kv->self.max_version);
    sb_printf(b,
              "# HELP rumor_kv_writes_total Key-value writes accepted through the API.\n"
              "# TYPE rumor_kv_writes_total counter\n"
              "rumor_kv_writes_total{keyspace=\"node\",op=\"put\"} %llu\n"
              "rumor_kv_writes_total{keyspace=\"node\",op=\"delete\"} %llu\n"
              "rumor_kv_writes_total{keyspace=\"shared\",op=\"put\"} %llu\n"
              "rumor_kv_writes_total{keyspace=\"shared\",op=\"delete\"} %llu\n",
              (unsigned long long)c->writes[0][0], (unsigned long long)c->writes[0][1],
              (unsigned long long)c->writes[1][0], (unsigned long long)c->writes[1][1]);
    counter(b, "rumor_kv_writes_refused_total", "Key-value writes refused at a keyspace limit.",
            c->refused);
    counter(b, "rumor_kv_changes_total",
            "Key-value changes applied here, local writes and replicated ones.", c->changes);
    counter(b, "rumor_kv_saves_total", "Data dir transactions saving this node's entries.",
            c->saves);
    counter(b, "rumor_kv_save_errors_total", "Data dir transactions that failed.", c->save_errors);
    gauge(b, "rumor_kv_watchers", "Open GET /v1/kv/watch streams.", kv->watchers);
}

static void msg_metrics(sbuf *b, const rumor_stats *st, const agent_msg_snapshot *m)
{
    counter(b, "rumor_user_events_sent_total", "User events this node sent.", st->user_events_sent);
    counter(b, "rumor_user_events_received_total",
            "User event messages received, duplicates included.", st->user_events_received);
    counter(b, "rumor_user_events_delivered_total",
            "User events delivered here (each event once, own ones included).",
            st->user_events_delivered);
    counter(b, "rumor_user_events_stale_total",
            "User events dropped as older than the event buffer's window.", st->user_events_stale);
    counter(b, "rumor_queries_asked_total", "Queries this node asked.", st->queries_asked);
    counter(b, "rumor_queries_received_total", "Query messages received, duplicates included.",
            st->queries_received);
    counter(b, "rumor_queries_served_total",
            "Queries this node matched and handed to its handlers.", st->queries_served);
    counter(b, "rumor_queries_stale_total",
            "Queries dropped as older than the query buffer's window.", st->queries_stale);
    counter(b, "rumor_query_acks_sent_total", "Acks this node sent for queries it matched.",
            st->query_acks_sent);
    counter(b, "rumor_query_responses_sent_total", "Responses this node sent to queries.",
            st->query_responses_sent);
    counter(b, "rumor_query_acks_received_total", "Distinct acks taken for this node's queries.",
            st->query_acks_in);
    counter(b, "rumor_query_responses_received_total",
            "Distinct responses taken for this node's queries.", st->query_responses_in);
    gauge(b, "rumor_event_clock", "The user event Lamport clock.", st->event_ltime);
    gauge(b, "rumor_query_clock", "The query Lamport clock.", st->query_ltime);
    counter(b, "rumor_api_events_total", "User events sent through POST /v1/event.",
            m->events_posted);
    counter(b, "rumor_api_queries_total", "Queries asked through POST /v1/query.",
            m->queries_posted);
    gauge(b, "rumor_api_queries_waiting", "POST /v1/query requests waiting for their deadline.",
          m->waiting);
    counter(b, "rumor_query_handler_responses_total",
            "Query responses sent from event handler output.", m->handler_responses);
    counter(b, "rumor_query_handler_response_failures_total",
            "Query handler output that could not be sent (too large, or past the deadline).",
            m->handler_response_fails);
    counter(b, "rumor_keys_ops_applied_total",
            "Cluster key operations (rumor keys) applied to this node's keyring.",
            st->keys_ops_applied);
    counter(b, "rumor_keys_ops_refused_total",
            "Cluster key operations this node answered with an error.", st->keys_ops_refused);
    counter(b, "rumor_keys_ops_malformed_total",
            "Cluster key operation requests that failed to decode.", st->keys_ops_malformed);
    counter(b, "rumor_reserved_refused_total",
            "Events and queries with a reserved name (_rumor...) this version does not handle.",
            st->reserved_refused);
}

char *metrics_render(agent *a, const rumor_stats *st, const rumor_runtime_counters *rc,
                     const agent_handler_counters *hc, const agent_kv_snapshot *kv,
                     const agent_msg_snapshot *msg)
{
    sbuf b = {0};
    engine_metrics(&b, st);
    runtime_metrics(&b, rc);
    kv_metrics(&b, kv);
    msg_metrics(&b, st, msg);
    gauge(&b, "rumor_keyring_keys", "Encryption keys held (0: encryption off).",
          atomic_load(&a->keyring_size));
    sb_printf(&b,
              "# HELP rumor_http_requests_total HTTP requests answered, by class.\n"
              "# TYPE rumor_http_requests_total counter\n"
              "rumor_http_requests_total{class=\"all\"} %llu\n"
              "rumor_http_requests_total{class=\"4xx\"} %llu\n"
              "rumor_http_requests_total{class=\"5xx\"} %llu\n",
              (unsigned long long)atomic_load(&a->http_counters.requests),
              (unsigned long long)atomic_load(&a->http_counters.client_errors),
              (unsigned long long)atomic_load(&a->http_counters.server_errors));
    counter(&b, "rumor_event_handler_runs_total", "Event handler scripts started.", hc->runs);
    counter(&b, "rumor_event_handler_failures_total", "Event handler scripts that failed.",
            hc->failures);
    counter(&b, "rumor_event_handler_timeouts_total", "Event handler scripts killed on timeout.",
            hc->timeouts);
    counter(&b, "rumor_event_handler_dropped_total", "Events not handed to a busy handler.",
            hc->dropped);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
