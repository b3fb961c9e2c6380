/* The agent: the runtime plus the data dir, the HTTP API, event handlers and signals. */
#ifndef RUMOR_AGENT_H
#define RUMOR_AGENT_H

#include "config.h"
#include "rumor_runtime.h"
#include "store.h"

#include <jansson.h>
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

typedef struct agent {
    agent_config cfg;
    int argc; /* the flags, kept for SIGHUP reloads */
    char **argv;
    uv_loop_t *loop;
    rumor_runtime *rt;
    agent_store *store;
    agent_http *http;
    agent_hub *hub;
    agent_handlers *handlers;
    uv_signal_t sig_int, sig_term, sig_hup;
    uv_timer_t persist_timer, leave_timer;
    json_t *tags; /* this node's tags; loop thread only */
    char node[RUMOR_NAME_MAX + 1];
    char advertise[64];
    uint64_t started_ms;
    uint32_t incarnation;
    bool members_dirty, leaving, stopping;
    int exit_code;
    agent_http_counters http_counters;
    agent_handler_counters handler_counters;
    uint64_t events_total;
    atomic_uint keyring_size; /* keys held; 0 = encryption off (for /metrics) */
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

/* ---- events hub (events.c): membership events for SSE readers, any thread ---- */
agent_hub *hub_new(void);
void hub_push(agent_hub *h, const char *type, const char *json);
void hub_close(agent_hub *h);
void hub_free(agent_hub *h);
/* Copies the next events after *seq into `out` (SSE text); waits up to wait_ms. Returns bytes,
 * 0 on timeout, -1 when the hub is closed. */
long hub_read(agent_hub *h, uint64_t *seq, char *out, size_t cap, unsigned wait_ms);
uint64_t hub_seq(agent_hub *h);

/* ---- HTTP (http.c, api.c) ---- */
int http_start(agent *a, const char *addr, char *err, size_t cap);
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
    char *body; /* malloc'd */
    const char *content_type;
} api_response;

/* Runs on an HTTP thread; engine work goes through rumor_runtime_call(). */
void api_handle(agent *a, const api_request *req, api_response *resp);
void api_error(api_response *resp, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Query argument `key` of the request, or NULL. Repeated keys: the n-th one. */
const char *api_query(const api_request *req, const char *key, unsigned n);

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

/* ---- metrics (metrics.c) ---- */
char *metrics_render(agent *a, const rumor_stats *st, const rumor_runtime_counters *rc,
                     const agent_handler_counters *hc, uint64_t members_total);

/* ---- event handlers (handler.c) ---- */
int handlers_new(agent *a, agent_handlers **out, char *err, size_t cap);
void handlers_event(agent_handlers *h, const rumor_event *ev);
void handlers_close(agent_handlers *h);
/* After the loop ended. */
void handlers_free(agent_handlers *h);

#endif
