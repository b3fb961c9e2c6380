/*
 * rumor runtime: a host of the sans-I/O engine on libuv.
 *
 * The runtime owns one UDP socket and one TCP listener bound to the same address and port,
 * maps rumor_addr to socket addresses (rumor_addr_from_ip format), turns the engine's stream
 * operations into TCP connections, and sleeps on one uv_timer armed at rumor_node_deadline().
 *
 * Two ways to embed it:
 *  - On the program's own loop: rumor_runtime_new(&rt, loop, &opt), rumor_runtime_start(rt) from
 *    the loop thread, then uv_run() as usual. Every rumor_runtime_* call that is not marked
 *    thread-safe must happen on the loop thread.
 *  - On a background thread: rumor_runtime_new(&rt, NULL, &opt), rumor_runtime_start_thread(rt);
 *    use the thread-safe calls from any thread; rumor_runtime_stop_thread(rt) ends it.
 *
 * Thread-safe calls are marked "(thread-safe)". They run their work on the loop thread through
 * a uv_async handle and wait for the answer, so they must not be called while holding a lock the
 * loop thread's callbacks take. Called on the loop thread, they run directly.
 */
#ifndef RUMOR_RUNTIME_H
#define RUMOR_RUNTIME_H

#include "rumor.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RUMOR_RUNTIME_DEFAULT_PORT 7946

typedef struct rumor_runtime rumor_runtime;

/* Log levels, most severe first. */
typedef enum rumor_log_level {
    RUMOR_LOG_ERROR = 0,
    RUMOR_LOG_WARN = 1,
    RUMOR_LOG_INFO = 2,
    RUMOR_LOG_DEBUG = 3,
} rumor_log_level;

/* Callbacks, all invoked on the loop thread. Any may be NULL. */
typedef struct rumor_runtime_callbacks {
    /* A membership event. `ev` and its pointers are valid only during the call. */
    void (*event)(rumor_runtime *rt, const rumor_event *ev, void *ud);
    /* This node's incarnation changed (a refute or new tags): a host that persists state
     * writes it down here, before more traffic is handled. */
    void (*incarnation)(rumor_runtime *rt, uint32_t incarnation, void *ud);
    /* A log line from the runtime. */
    void (*log)(rumor_runtime *rt, rumor_log_level level, const char *msg, void *ud);
    void *ud;
    /* Called before the runtime sends what the engine queued (datagrams, stream operations),
     * after anything that may have changed the node: a host that persists the node's own
     * key-value entries saves them here, so no peer ever holds a version the host has not
     * written down (rumor_node_kv_restore). Keep it cheap when nothing changed. */
    void (*before_send)(rumor_runtime *rt, void *ud);
} rumor_runtime_callbacks;

typedef struct rumor_runtime_options {
    /* Engine settings. `addr` may be left empty (len 0): the runtime then advertises the bound
     * address, or the first non-loopback interface address when bound to a wildcard. The keys
     * and seal_secret are copied at rumor_runtime_new and wiped once the engine holds them. */
    rumor_settings settings;
    /* "ADDR:PORT" or "[V6]:PORT" to bind UDP and TCP to; NULL = "0.0.0.0:7946". */
    const char *bind;
    /* Carry datagrams over TCP connections too (networks that block UDP). */
    bool tcp_only;
    /* Cap of the retry-join backoff (ms); 0 = 30000. */
    uint32_t join_backoff_max_ms;
    rumor_runtime_callbacks cb;
} rumor_runtime_options;

/* Counters kept by the runtime itself, on top of the engine's rumor_stats. */
typedef struct rumor_runtime_counters {
    uint64_t udp_send_errors;    /* sendto failed */
    uint64_t udp_recv_errors;    /* recvfrom failed or a datagram was truncated */
    uint64_t tcp_accepted;       /* inbound connections accepted */
    uint64_t tcp_refused;        /* inbound connections closed at once (stream table full) */
    uint64_t tcp_idle_closed;    /* connections closed for sending nothing for too long */
    uint64_t tcp_write_overflow; /* connections closed because the peer did not read */
    uint64_t tcp_connect_errors; /* outbound connects that failed */
    uint64_t tunnel_in;          /* datagrams received over TCP (tcp-only peers) */
    uint64_t tunnel_out;         /* datagrams sent over TCP */
    uint64_t tunnel_dropped;     /* datagrams that could not be tunnelled or were malformed */
    uint64_t joins;              /* join attempts */
    uint64_t resolve_errors;     /* host names that did not resolve */
    uint64_t auth_refused;       /* datagrams and stream frames refused as unauthenticated,
                                    replayed, misdirected or of the wrong mode (sealed/plain) */
} rumor_runtime_counters;

/*
 * Creates a runtime and binds its sockets (so a taken port fails here). `loop` NULL creates a
 * private loop for thread mode. The options (and the strings they point to) are copied.
 * Errors: RUMOR_ERR_INVALID (bad bind address or settings; see rumor_runtime_last_error()),
 * RUMOR_ERR_STATE (bind failed), RUMOR_ERR_NOMEM.
 */
int rumor_runtime_new(rumor_runtime **out, uv_loop_t *loop, const rumor_runtime_options *opt,
                      char *err, size_t errcap);

/* Creates the engine node and starts receiving. Call on the loop thread. */
int rumor_runtime_start(rumor_runtime *rt);

/*
 * Joins through host names or addresses ("host", "host:port", "1.2.3.4:7946", "[::1]:7946").
 * Names are resolved again on every attempt. With `retry`, attempts repeat with exponential
 * backoff until this node knows another live member. (thread-safe)
 */
int rumor_runtime_join(rumor_runtime *rt, const char *const *hosts, size_t nhosts, bool retry);

/* Joins through already-resolved addresses. (thread-safe) */
int rumor_runtime_join_addrs(rumor_runtime *rt, const rumor_addr *addrs, size_t n);

/* Starts a graceful leave; RUMOR_EVENT_LEAVE_DONE follows. (thread-safe) */
int rumor_runtime_leave(rumor_runtime *rt);

/* Replaces this node's metadata. Errors as rumor_node_set_meta. (thread-safe) */
int rumor_runtime_set_meta(rumor_runtime *rt, const uint8_t *meta, size_t len);

/* A copy of one member, owned by the caller's array. */
typedef struct rumor_runtime_member {
    char name[RUMOR_NAME_MAX + 1];
    rumor_addr addr;
    uint32_t incarnation;
    rumor_member_state state;
    uint8_t *meta;
    size_t meta_len;
    bool is_self;
    bool has_public_key; /* identities on and the member's key known */
    uint8_t public_key[RUMOR_IDENTITY_KEY_BYTES];
} rumor_runtime_member;

/* Copies the member table. Free with rumor_runtime_members_free(). (thread-safe) */
int rumor_runtime_members(rumor_runtime *rt, rumor_runtime_member **out, size_t *n);
void rumor_runtime_members_free(rumor_runtime_member *m, size_t n);

/* Engine stats and runtime counters. (thread-safe) */
int rumor_runtime_stats(rumor_runtime *rt, rumor_stats *stats, rumor_runtime_counters *counters);

/*
 * Runs fn(rt, arg) on the loop thread and waits for it to return; engine output is handled
 * afterwards. Returns RUMOR_ERR_STATE when the runtime is not running or is closing (fn did not
 * run). (thread-safe)
 */
int rumor_runtime_call(rumor_runtime *rt, void (*fn)(rumor_runtime *rt, void *arg), void *arg);

/* Stops accepting rumor_runtime_call()s from other threads and fails the waiting ones. */
void rumor_runtime_refuse_calls(rumor_runtime *rt);

/* Loop-thread accessors. The node pointer is valid from rumor_runtime_start() to close. */
rumor_node *rumor_runtime_node(rumor_runtime *rt);
uv_loop_t *rumor_runtime_loop(rumor_runtime *rt);
const rumor_addr *rumor_runtime_advertise(const rumor_runtime *rt);
const rumor_runtime_counters *rumor_runtime_counters_get(const rumor_runtime *rt);

/* Handles engine output and re-arms the timer; call after driving the node directly. */
void rumor_runtime_pump(rumor_runtime *rt);

/*
 * Closes sockets, connections and timers. `done` runs on the loop thread once every handle is
 * closed; then rumor_runtime_del() may be called.
 */
void rumor_runtime_close(rumor_runtime *rt, void (*done)(rumor_runtime *rt, void *ud), void *ud);

/* Frees a closed (or never started) runtime. */
void rumor_runtime_del(rumor_runtime *rt);

/* Thread mode: runs the private loop on a new thread. */
int rumor_runtime_start_thread(rumor_runtime *rt);

/* Thread mode: closes the runtime, joins the thread and frees everything. */
void rumor_runtime_stop_thread(rumor_runtime *rt);

/* ---- Address helpers (pure; any thread) ---- */

/*
 * Splits "host:port", "[v6]:port", "host" or a bare IPv6 address. `port` gets default_port
 * when none is given. Errors: RUMOR_ERR_INVALID with a reason in `err`.
 */
int rumor_runtime_split_hostport(const char *text, uint16_t default_port, char *host,
                                 size_t hostcap, uint16_t *port, char *err, size_t errcap);

/* Parses a numeric "ADDR:PORT" / "[V6]:PORT" into a rumor_addr. */
int rumor_runtime_parse_addr(const char *text, uint16_t default_port, rumor_addr *out, char *err,
                             size_t errcap);

/* Resolves "host[:port]" with getaddrinfo (blocking: not on the loop thread). Returns the
 * number of addresses stored (>= 1) or a negative code with a reason in `err`. */
int rumor_runtime_resolve(const char *text, uint16_t default_port, rumor_addr *out, size_t cap,
                          char *err, size_t errcap);

int rumor_runtime_addr_to_sockaddr(const rumor_addr *a, struct sockaddr_storage *ss,
                                   bool v4_mapped);
int rumor_runtime_addr_from_sockaddr(const struct sockaddr *sa, rumor_addr *out);

#ifdef __cplusplus
}
#endif

#endif /* RUMOR_RUNTIME_H */
