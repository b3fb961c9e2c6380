/* Internal structures of the libuv runtime, shared by its files. */
#ifndef RUMOR_RT_INTERNAL_H
#define RUMOR_RT_INTERNAL_H

#include "rumor_runtime.h"

/* An inbound connection starts by sniffing its first byte: 0xFF opens a datagram tunnel (no
 * engine frame can start with it, as frames begin with a length below 2^26), anything else is
 * an engine stream. */
#define RT_TUNNEL_MAGIC0  0xFFu
#define RT_TUNNEL_HDR     "\xffRDG"
#define RT_TUNNEL_HDR_LEN 4u
/* A tunnel frame carries one datagram behind a 2-byte length. */
#define RT_TUNNEL_FRAME_MAX (2u + RUMOR_PACKET_MAX)
/* Outbound bytes a peer may leave unread before its connection is dropped. */
#define RT_WRITE_QUEUE_MAX (8u * 1024u * 1024u)
#define RT_TUNNEL_IDLE_MS  60000u

typedef enum rt_conn_kind {
    RT_CONN_SNIFF = 0,  /* inbound, first byte not seen yet */
    RT_CONN_STREAM = 1, /* an engine stream */
    RT_CONN_TUNNEL_IN = 2,
    RT_CONN_TUNNEL_OUT = 3,
} rt_conn_kind;

typedef struct rt_conn rt_conn;
struct rt_conn {
    uv_tcp_t tcp;
    uv_timer_t idle;
    uv_connect_t connect;
    uv_shutdown_t shutdown;
    rumor_runtime *rt;
    rt_conn *prev, *next;
    rt_conn_kind kind;
    uint64_t id;      /* engine stream id (RT_CONN_STREAM) */
    rumor_addr peer;  /* remote address (tunnel: the peer's advertised address) */
    uint64_t last_ms; /* last read or write activity */
    uint32_t idle_ms; /* close after this long without activity */
    int open_handles; /* tcp + idle timer still open */
    bool engine_open; /* the engine still knows `id` */
    bool closing;
    bool shutting_down;
    /* Tunnel reassembly. */
    uint8_t *buf;
    size_t buf_len;
    bool have_peer;
};

typedef struct rt_call rt_call;
struct rt_call {
    void (*fn)(rumor_runtime *rt, void *arg);
    void *arg;
    int result;
    bool done;
    rt_call *next;
};

typedef struct rt_joiner rt_joiner;

struct rumor_runtime {
    uv_loop_t *loop;
    uv_loop_t own_loop;
    bool owns_loop;
    rumor_node *node;
    rumor_runtime_options opt;
    char name[RUMOR_NAME_MAX + 1];
    char label[RUMOR_LABEL_MAX + 1];
    struct sockaddr_storage bind_sa;
    int bind_family; /* AF_INET or AF_INET6 */

    uv_udp_t udp;
    uv_tcp_t listener;
    uv_timer_t timer;
    uv_async_t async;
    int open_handles;

    rt_conn *conns;
    size_t nconns;
    rt_joiner *joiners;
    rumor_runtime_counters counters;
    uint32_t last_incarnation;
    /* The keyring until the engine has its own copy (wiped at start). */
    uint8_t keys[RUMOR_KEYRING_MAX][RUMOR_KEY_BYTES];
    /* Refused packets (unauthenticated, replayed, plaintext...): reported at most every
     * RT_REFUSED_LOG_MS, with what the engine counted since the last report. */
    uint64_t refused_logged_at;
    uint64_t refused_seen[RUMOR_DROP_REASON_COUNT];
    uint8_t rbuf[65536];

    bool started, closing, pumping, repump;
    void (*close_cb)(rumor_runtime *rt, void *ud);
    void *close_ud;

    uv_mutex_t mu;
    uv_cond_t cv;
    rt_call *calls_head, *calls_tail;
    bool calls_closed;
    uv_thread_t loop_thread;
    uv_thread_t thread;
    bool thread_running;
};

void rt_log(rumor_runtime *rt, rumor_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
uint64_t rt_now(const rumor_runtime *rt);
void rt_maybe_closed(rumor_runtime *rt);
void rt_async_cb(uv_async_t *h);
/* The engine refused input from `from` as unauthenticated (rc RUMOR_ERR_AUTH): counts it and
 * logs a summary now and then. */
void rt_refused(rumor_runtime *rt, const rumor_addr *from);

/* rt_stream.c */
int rt_stream_listen(rumor_runtime *rt);
void rt_stream_op(rumor_runtime *rt, const rumor_stream_op *op);
void rt_stream_close_all(rumor_runtime *rt);
void rt_conn_close(rt_conn *c, bool notify_engine);
rt_conn *rt_conn_new(rumor_runtime *rt, rt_conn_kind kind, uint32_t idle_ms);
int rt_conn_write(rt_conn *c, const uint8_t *data, size_t len);
void rt_conn_touch(rt_conn *c);
int rt_conn_connect(rt_conn *c, const rumor_addr *to);

/* rt_tunnel.c */
void rt_tunnel_send(rumor_runtime *rt, const rumor_addr *to, const uint8_t *data, size_t len);
void rt_tunnel_read(rt_conn *c, const uint8_t *data, size_t len);

/* rt_join.c */
int rt_join_start(rumor_runtime *rt, const char *const *hosts, size_t nhosts, bool retry);
void rt_join_close_all(rumor_runtime *rt);
bool rt_has_live_peer(rumor_runtime *rt);

#endif
