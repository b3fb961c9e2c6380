/* The agent: the runtime plus the data dir, the HTTP API, event handlers and signals. */
#ifndef RUMOR_AGENT_H
#define RUMOR_AGENT_H

#include "config.h"
#include "idkeys.h"
#include "rumor_runtime.h"
#include "store.h"

#include <jansson.h>
#include <regex.h>
#include <stdatomic.h>

typedef struct agent_http agent_http;
typedef struct agent_hub agent_hub;
typedef struct agent_handlers agent_handlers;

/* Counters touched from the HTTP threads. */
typedef struct agent_http_counters {
    atomic_ullong requests;
    atomic_ullong client_errors; /* 4xx answers */
    atomic_ullong server_errors; /* 5xx answers */
} agent_http_counters;

typedef struct agent_handler_counters {
    uint64_t runs, failures, timeouts, dropped;
} agent_handler_counters;

/* The key-value side of the agent (kv.c); loop thread only. */
typedef struct agent_kv {
    uint64_t db_max, db_gc, db_clock; /* what the data dir holds of this node's entries */
    int64_t wall_offset_ms;           /* Unix time in ms minus uv_now() */
    uint64_t writes[2][2];            /* writes accepted through the API by [shared][delete] */
    uint64_t refused;                 /* writes the engine refused (limits) */
    uint64_t changes;                 /* key-value change events, local and replicated */
    uint64_t saves, save_errors;      /* data dir transactions */
    uint64_t retry_at, log_at;        /* after a failed save: when to retry, to log again */
} agent_kv;

/* One answer to a query this agent asked for an HTTP client: an ack or a response. */
typedef struct agent_answer {
    char *node;
    uint8_t *payload; /* responses only (may be NULL when empty) */
    size_t len;
    uint64_t after_ms; /* since the query was asked */
} agent_answer;

/*
 * A query asked through POST /v1/query, collecting what arrives until its deadline. The HTTP
 * thread creates it; the loop thread links it into agent_msg.pending, adds acks and responses
 * and, at the deadline, the counts and the names of the silent, then sets `done` under
 * agent_msg.mu and never touches it again; the HTTP thread then reads and frees it.
 */
typedef struct agent_query {
    struct agent_query *next;
    uint64_t id;                /* the engine's query id */
    uint64_t asked_at, timeout; /* loop time (ms) */
    uint64_t ltime;
    agent_answer *acks, *responses;
    size_t nacks, nresponses, acks_cap, responses_cap;
    rumor_query_result result;
    strv no_ack, no_response;
    bool done;      /* the loop thread is finished with it */
    bool aborted;   /* the agent stopped before the deadline */
    bool truncated; /* a list could not grow (out of memory): the counts stay right */
    bool early;     /* ends as soon as every matched member answered (key operations) */
} agent_query;

/* User events and queries (msg.c on the loop thread, msgapi.c on HTTP threads). */
typedef struct agent_msg {
    uv_mutex_t mu; /* guards agent_query.done and the wakeups below */
    uv_cond_t cv;
    agent_query *pending;   /* loop thread: queries waiting for their deadline */
    atomic_uint waiting;    /* HTTP requests waiting for a query's deadline */
    uint64_t events_posted; /* user events sent through the API (loop thread) */
    uint64_t queries_posted;
    uint64_t handler_responses;      /* query responses taken from handler scripts */
    uint64_t handler_response_fails; /* handler output that could not be sent */
    /* The tag matcher's last compiled pattern (loop thread only). */
    char *re_text;
    regex_t re;
    bool re_ok;
} agent_msg;

typedef struct agent {
    agent_config cfg;
    int argc; /* the flags, kept for SIGHUP reloads */
    char **argv;
    uv_loop_t *loop;
    rumor_runtime *rt;
    agent_store *store;
    agent_http *http;
    agent_hub *hub;
    agent_hub *kvhub; /* key-value changes, for GET /v1/kv/watch */
    agent_handlers *handlers;
    uv_signal_t sig_int, sig_term, sig_hup;
    uv_timer_t persist_timer, leave_timer;
    rumor_settings engine; /* the settings in force, for the API's limits; fixed after start */
    json_t *tags;          /* this node's tags; loop thread only */
    char node[RUMOR_NAME_MAX + 1];
    char advertise[64];
    uint64_t started_ms;
    uint32_t incarnation;
    bool members_dirty, leaving, stopping;
    int exit_code;
    agent_http_counters http_counters;
    agent_handler_counters handler_counters;
    uint64_t events_total;
    /* Per-node identity (idkeys.c): the key pair lives in the data dir; `identity` when the
     * engine signs and checks claims with it. */
    bool has_key, identity, has_ca, has_cert;
    uint8_t public_key[RUMOR_IDENTITY_KEY_BYTES];
    uint8_t ca_key[RUMOR_IDENTITY_KEY_BYTES];
    keys_cert cert;
    uv_timer_t ident_timer;
    uint64_t ident_refused[RUMOR_IDENT_REFUSAL_COUNT]; /* as last logged */
    agent_kv kv;
    atomic_uint kv_watchers;  /* open GET /v1/kv/watch streams */
    atomic_uint keyring_size; /* keys held; 0 = encryption off (for /metrics) */
    agent_msg msg;
} agent;

/* `rumor agent ARGS`: runs until signalled or left; returns the process exit code. */
int agent_main(int argc, char **argv);

/* Loop thread: starts a graceful leave followed by shutdown. */
void agent_leave_and_exit(agent *a);

/* Loop thread: merges `set` and removes `del` keys; persists and broadcasts. Returns 0 or an
 * error message in `err`. */
int agent_update_tags(agent *a, json_t *set, json_t *del, char *err, size_t cap);

/* Tags as JSON text from node metadata (empty meta = {}). Returns a new object or NULL. */
json_t *agent_tags_from_meta(const uint8_t *meta, size_t len);

/* JSON of one member as the API and CLI show it. */
json_t *agent_member_json(const rumor_runtime_member *m);

/* "3f2a:09bc:..." fingerprint of a public key. */
void agent_fingerprint(const uint8_t *pk, char out[24]);

/* ---- events hubs (events.c): events for SSE readers, any thread ---- */
#define AGENT_EVENTS_RING    256u  /* membership events kept for /v1/events readers */
#define AGENT_KV_EVENTS_RING 4096u /* key-value changes kept for /v1/kv/watch readers */
typedef struct hub_filter {
    const char *prefix; /* only events whose key starts with these bytes */
    size_t prefix_len;
} hub_filter;

/* A hub keeping the last `ring` events. */
agent_hub *hub_new(unsigned ring);
void hub_push(agent_hub *h, const char *type, const char *json);
/* An event with a key that readers filter on. */
void hub_push_keyed(agent_hub *h, const char *type, const char *json, const void *key,
                    size_t key_len);
void hub_close(agent_hub *h);
void hub_free(agent_hub *h);
/* Copies the next events after *seq that pass `f` (NULL: all) into `out` (SSE text); waits up
 * to wait_ms for one. Returns bytes, 0 on timeout, -1 when the hub is closed. */
long hub_read(agent_hub *h, uint64_t *seq, char *out, size_t cap, unsigned wait_ms,
              const hub_filter *f);
uint64_t hub_seq(agent_hub *h);

/* ---- key-value state (kv.c, loop thread) ---- */
/* Brings this node's saved entries back into the engine; before the API and any join.
 * Returns 0, or -1 with the reason in `err` when the data dir cannot be read. */
int agent_kv_restore(agent *a, char *err, size_t cap);
/* Saves what the engine holds of this node beyond what the data dir has, in one committed
 * transaction. Returns 0 (also without a data dir) or -1 with the reason in `err`. */
int agent_kv_save(agent *a, char *err, size_t cap);
/* The runtime is about to send what the engine queued: saves this node's entries first (an
 * API write, one adopted from a peer or written by the engine itself, a collected delete). */
void agent_kv_before_send(agent *a);
/* A RUMOR_EVENT_KV_CHANGE: counts it and publishes it to watchers. */
void agent_kv_event(agent *a, const rumor_event *ev);
/* Base64 (RFC 4648, padded) of `len` bytes as a new JSON string, or NULL. */
json_t *agent_b64_json(const void *p, size_t len);

/* ---- user events and queries (msg.c, loop thread unless said) ---- */
/* Sets up and tears down agent_msg (any thread; before the runtime starts, after it ended). */
void agent_msg_init(agent *a);
void agent_msg_free(agent *a);
/* The engine's settings.query_tag_match: member metadata is a JSON object of tags; the filter
 * value is a POSIX extended regular expression that must match the whole tag value. */
bool agent_query_tag_match(void *ud, const uint8_t *meta, size_t meta_len, const char *key,
                           const char *value);
/* Checks a tag filter's pattern as the matcher will use it (any thread): 0, or -1 with why. */
int agent_tag_pattern_check(const char *value, char *why, size_t cap);
/* RUMOR_EVENT_USER, _QUERY, _QUERY_ACK, _QUERY_RESPONSE, _QUERY_DONE. */
void agent_msg_event(agent *a, const rumor_event *ev);
/* Links a query asked for an HTTP client, to collect its answers. */
void agent_msg_track(agent *a, agent_query *q);
/* Stops collecting for `q` before its deadline (the HTTP side gave up waiting): fills in what
 * the engine knows so far and marks it done. */
void agent_msg_untrack(agent *a, agent_query *q);
/* HTTP thread: sleeps until the loop thread reports the deadline of tracked query `q` (or
 * well past it, then takes what arrived). */
void agent_query_wait(agent *a, agent_query *q);
/* The agent is stopping: every waiting query is done (aborted) and its HTTP thread woken. */
void agent_msg_close(agent *a);
/* Frees a query (HTTP thread, once it is done). */
void agent_query_free(agent_query *q);
/* Checks an event or query name (1..RUMOR_EVENT_NAME_MAX bytes of UTF-8 without control
 * characters): 0, or -1 with why. */
int agent_msg_check_name(const char *name, char *why, size_t cap);
/* A string field, or "<field>_base64" when the bytes are not UTF-8. */
void agent_json_set_text(json_t *o, const char *field, const void *p, size_t len);

/* ---- HTTP (http.c, api.c) ---- */
int http_start(agent *a, const char *addr, char *err, size_t cap);
/* The largest request body read: 64 KiB, or a whole value when kv_value_bytes_max is larger. */
size_t http_body_max(const agent *a);
void http_stop(agent *a);

typedef struct api_request {
    const char *method;
    const char *path;
    const char *body;
    size_t body_len;
    bool body_too_large;
    void *conn; /* struct MHD_Connection *, for query arguments */
} api_request;

typedef struct api_response {
    unsigned status;
    char *body;      /* malloc'd */
    size_t body_len; /* with `binary`: bytes of body (it may hold NULs); else strlen */
    bool binary;
    const char *content_type;
    char headers[4][2][64]; /* extra headers: name, value */
    unsigned nheaders;
} api_response;

/* Runs on an HTTP thread; engine work goes through rumor_runtime_call(). */
void api_handle(agent *a, const api_request *req, api_response *resp);
void api_error(api_response *resp, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Query argument `key` of the request, or NULL. Repeated keys: the n-th one. */
const char *api_query(const api_request *req, const char *key, unsigned n);
/* The first query argument whose name is not in `known` (NULL-terminated), or NULL. */
const char *api_query_unknown(const api_request *req, const char *const *known);
/* A request header, or NULL. */
const char *api_header(const api_request *req, const char *name);
/* `o` as the JSON answer (takes the reference); 500 when it cannot be encoded. */
void api_json(api_response *resp, unsigned status, json_t *o);

/* ---- user event and query HTTP routes (msgapi.c, HTTP threads) ---- */
/* Answers /v1/event/NAME and /v1/query/NAME; false for other paths. */
bool msgapi_handle(agent *a, const api_request *req, api_response *resp);

/* ---- key-value HTTP routes (kvapi.c, HTTP threads) ---- */
/* Answers /v1/kv..., /v1/state... and /v1/nodes/NAME/state...; false for other paths. */
bool kvapi_handle(agent *a, const api_request *req, api_response *resp);
/* Checks a key or a key prefix from a URL (`prefix` allows empty): 0, or -1 with why. */
int kvapi_check_key(const char *key, size_t len, bool prefix, char *why, size_t cap);
/* The same as the routes' own helpers, for routes in other files. */
void api_reply(api_response *resp, unsigned status, json_t *o);
/* The request body as a JSON object, or NULL with a 400 already in `resp`. */
json_t *api_body(const api_request *req, api_response *resp);

/* ---- the keyring (keys.c) ---- */
/* Loop thread, before the runtime starts: the keys from --encrypt and --keyring (the file is
 * created or updated as needed), this life's seal epoch and fresh seal entropy, into `s`.
 * The caller wipes s->seal_secret and `keys` once the runtime holds them. */
int keys_setup(agent *a, rumor_settings *s, uint8_t keys[RUMOR_KEYRING_MAX][RUMOR_KEY_BYTES],
               char *err, size_t cap);
/* GET /v1/keys, POST /v1/keys, PUT /v1/keys/primary, DELETE /v1/keys. */
void api_keys_list(agent *a, const api_request *req, api_response *resp);
void api_keys_install(agent *a, const api_request *req, api_response *resp);
void api_keys_use(agent *a, const api_request *req, api_response *resp);
void api_keys_remove(agent *a, const api_request *req, api_response *resp);
/* Loop thread: a cluster key operation changed the engine's keyring (RUMOR_EVENT_KEYRING_CHANGE):
 * rewrites the keyring file and logs it. */
void agent_keys_event(agent *a, rumor_node *n, const rumor_event *ev);

/* ---- metrics (metrics.c) ---- */
/* Key-value gauges and counters, copied on the loop thread. */
typedef struct agent_kv_snapshot {
    rumor_kv_stats st;
    rumor_kv_origin_info self;
    agent_kv counters;
    unsigned watchers;
} agent_kv_snapshot;

/* User event and query counters of the agent, copied on the loop thread. */
typedef struct agent_msg_snapshot {
    uint64_t events_posted, queries_posted, handler_responses, handler_response_fails;
    unsigned waiting;
} agent_msg_snapshot;

char *metrics_render(agent *a, const rumor_stats *st, const rumor_runtime_counters *rc,
                     const agent_handler_counters *hc, const agent_kv_snapshot *kv,
                     const agent_msg_snapshot *msg);

/* ---- event handlers (handler.c) ---- */
int handlers_new(agent *a, agent_handlers **out, char *err, size_t cap);
/* Queues the event for every handler whose filter takes it; returns how many did. A user
 * event's or query's payload goes to the script's stdin; a query handler's stdout (at most
 * query_response_bytes_max) is sent as the response when the script ends. */
size_t handlers_event(agent_handlers *h, const rumor_event *ev);
void handlers_close(agent_handlers *h);
/* After the loop ended. */
void handlers_free(agent_handlers *h);

#endif
