/* The runtime: sockets, the deadline timer, engine output, lifetime. */
#include "rt_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void rt_log(rumor_runtime *rt, rumor_log_level level, const char *fmt, ...)
{
    if (!rt->opt.cb.log)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rt->opt.cb.log(rt, level, msg, rt->opt.cb.ud);
}

uint64_t rt_now(const rumor_runtime *rt)
{
    return uv_now(rt->loop);
}

/* ---- binding ---- */

static int bind_socket(int family, int type, const struct sockaddr_storage *ss, char *err,
                       size_t errcap)
{
    int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errcap, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1, zero = 0;
    /* TCP needs SO_REUSEADDR to rebind right after a restart (TIME_WAIT); Linux still refuses
     * a second listener. UDP must not set it, or two agents could share the port. */
    if (type == SOCK_STREAM)
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6) /* dual stack when bound to :: */
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    socklen_t len = family == AF_INET ? (socklen_t)sizeof(struct sockaddr_in)
                                      : (socklen_t)sizeof(struct sockaddr_in6);
    if (bind(fd, (const struct sockaddr *)ss, len) != 0) {
        snprintf(err, errcap, "bind %s: %s", type == SOCK_STREAM ? "tcp" : "udp", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static uint16_t sockaddr_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)(const void *)ss)->sin6_port);
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)(void *)ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)(void *)ss)->sin6_port = htons(port);
}

/* Binds TCP first (port 0 picks a free one), then UDP on the same port. */
static int bind_both(rumor_runtime *rt, int *tcp_fd, int *udp_fd, char *err, size_t errcap)
{
    int family = rt->bind_sa.ss_family;
    *tcp_fd = bind_socket(family, SOCK_STREAM, &rt->bind_sa, err, errcap);
    if (*tcp_fd < 0)
        return RUMOR_ERR_STATE;
    struct sockaddr_storage got;
    socklen_t len = sizeof got;
    if (getsockname(*tcp_fd, (struct sockaddr *)&got, &len) == 0)
        set_port(&rt->bind_sa, sockaddr_port(&got));
    *udp_fd = -1;
    if (!rt->opt.tcp_only) {
        *udp_fd = bind_socket(family, SOCK_DGRAM, &rt->bind_sa, err, errcap);
        if (*udp_fd < 0) {
            close(*tcp_fd);
            return RUMOR_ERR_STATE;
        }
    }
    return 0;
}

static bool is_wildcard(const struct sockaddr_storage *ss)
{
    static const uint8_t zero[16];
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)(const void *)ss)->sin_addr.s_addr == 0;
    return memcmp(((const struct sockaddr_in6 *)(const void *)ss)->sin6_addr.s6_addr, zero, 16) ==
           0;
}

/* Picks what to advertise when bound to a wildcard: the first non-loopback interface address
 * of the bound family (IPv4 preferred on a dual-stack socket), as memberlist does. */
static int pick_advertise(rumor_runtime *rt, rumor_addr *out)
{
    uint16_t port = sockaddr_port(&rt->bind_sa);
    if (!is_wildcard(&rt->bind_sa))
        return rumor_runtime_addr_from_sockaddr((const struct sockaddr *)&rt->bind_sa, out);
    uv_interface_address_t *ifs = NULL;
    int count = 0;
    int rc = RUMOR_ERR_NOT_FOUND;
    if (uv_interface_addresses(&ifs, &count) != 0)
        return rc;
    for (int pass = 0; pass < 2 && rc != 0; pass++) {
        int want = pass == 0 ? AF_INET : AF_INET6;
        if (want == AF_INET6 && rt->bind_family != AF_INET6)
            break;
        for (int i = 0; i < count && rc != 0; i++) {
            const struct sockaddr *sa = (const struct sockaddr *)&ifs[i].address;
            if (ifs[i].is_internal || sa->sa_family != want)
                continue;
            if (rumor_runtime_addr_from_sockaddr(sa, out) == 0) {
                int fam;
                uint8_t ip[16];
                uint16_t ignored;
                (void)rumor_addr_to_ip(out, &fam, ip, &ignored);
                rc = rumor_addr_from_ip(out, fam, ip, port);
            }
        }
    }
    uv_free_interface_addresses(ifs, count);
    return rc;
}

static int init_options(rumor_runtime *rt, const rumor_runtime_options *opt, char *err,
                        size_t errcap)
{
    rt->opt = *opt;
    if (!opt->settings.name || strlen(opt->settings.name) > RUMOR_NAME_MAX) {
        snprintf(err, errcap, "node name missing or longer than %d bytes", RUMOR_NAME_MAX);
        return RUMOR_ERR_INVALID;
    }
    snprintf(rt->name, sizeof rt->name, "%s", opt->settings.name);
    rt->opt.settings.name = rt->name;
    if (opt->settings.nkeys > RUMOR_KEYRING_MAX || (opt->settings.nkeys && !opt->settings.keys)) {
        snprintf(err, errcap, "a keyring holds 1 to %d keys", RUMOR_KEYRING_MAX);
        return RUMOR_ERR_INVALID;
    }
    if (opt->settings.nkeys) {
        memcpy(rt->keys, opt->settings.keys, opt->settings.nkeys * RUMOR_KEY_BYTES);
        rt->opt.settings.keys = (const uint8_t(*)[RUMOR_KEY_BYTES])rt->keys;
    }
    if (opt->settings.cluster_label) {
        snprintf(rt->label, sizeof rt->label, "%s", opt->settings.cluster_label);
        rt->opt.settings.cluster_label = rt->label;
    }
    rt->opt.bind = NULL;
    rumor_addr bind;
    int rc = rumor_runtime_parse_addr(opt->bind ? opt->bind : "0.0.0.0", RUMOR_RUNTIME_DEFAULT_PORT,
                                      &bind, err, errcap);
    if (rc != 0)
        return rc;
    int fam;
    uint8_t ip[16];
    uint16_t port;
    (void)rumor_addr_to_ip(&bind, &fam, ip, &port);
    rt->bind_family = fam == 4 ? AF_INET : AF_INET6;
    return rumor_runtime_addr_to_sockaddr(&bind, &rt->bind_sa, false);
}

static int init_handles(rumor_runtime *rt, int tcp_fd, int udp_fd)
{
    int rc = uv_tcp_init(rt->loop, &rt->listener);
    if (rc == 0)
        rc = uv_tcp_open(&rt->listener, tcp_fd);
    rt->open_handles++;
    rt->listener.data = rt;
    if (udp_fd >= 0) {
        /* A burst (a query's answers, a join storm) can outrun the default 208 KiB receive
         * buffer; ask for 2 MiB as memberlist does. The kernel caps it at net.core.rmem_max,
         * and a refusal only leaves the default. */
        int rcvbuf = 2 * 1024 * 1024;
        (void)setsockopt(udp_fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        int urc = uv_udp_init(rt->loop, &rt->udp);
        if (urc == 0)
            urc = uv_udp_open(&rt->udp, udp_fd);
        rt->udp.data = rt;
        rt->open_handles++;
        rc = rc ? rc : urc;
    }
    uv_timer_init(rt->loop, &rt->timer);
    rt->timer.data = rt;
    rt->open_handles++;
    return rc;
}

int rumor_runtime_new(rumor_runtime **out, uv_loop_t *loop, const rumor_runtime_options *opt,
                      char *err, size_t errcap)
{
    char scratch[8];
    if (!err || errcap == 0) {
        err = scratch;
        errcap = sizeof scratch;
    }
    err[0] = '\0';
    /* The host initialises libsodium for the engine (keys, signatures); idempotent. */
    if (sodium_init() < 0) {
        snprintf(err, errcap, "libsodium failed to initialise");
        return -1;
    }
    rumor_runtime *rt = calloc(1, sizeof *rt);
    if (!rt)
        return RUMOR_ERR_NOMEM;
    int rc = init_options(rt, opt, err, errcap);
    int tcp_fd = -1, udp_fd = -1;
    if (rc == 0)
        rc = bind_both(rt, &tcp_fd, &udp_fd, err, errcap);
    if (rc == 0 && rt->opt.settings.addr.len == 0 && pick_advertise(rt, &rt->opt.settings.addr)) {
        snprintf(err, errcap,
                 "no address to advertise: bound to a wildcard and no "
                 "non-loopback interface found; pass an advertise address");
        close(tcp_fd);
        if (udp_fd >= 0)
            close(udp_fd);
        rc = RUMOR_ERR_INVALID;
    }
    if (rc != 0) {
        sodium_memzero(rt, sizeof *rt);
        free(rt);
        return rc;
    }
    if (!loop) {
        uv_loop_init(&rt->own_loop);
        loop = &rt->own_loop;
        rt->owns_loop = true;
    }
    rt->loop = loop;
    uv_mutex_init(&rt->mu);
    uv_cond_init(&rt->cv);
    (void)init_handles(rt, tcp_fd, udp_fd);
    uv_async_init(loop, &rt->async, rt_async_cb);
    rt->async.data = rt;
    rt->open_handles++;
    *out = rt;
    return 0;
}

/* ---- refused input ---- */

#define RT_REFUSED_LOG_MS 10000u

/* Why the engine refuses sealed or plaintext input, in words an operator can act on. */
static const struct {
    rumor_drop_reason r;
    const char *why;
} refusals[] = {
    {RUMOR_DROP_UNKNOWN_KEY, "sealed with a key this keyring does not hold"},
    {RUMOR_DROP_AUTH_FAILED, "failed authentication (forged, corrupted or a wrong key)"},
    {RUMOR_DROP_REPLAYED, "replayed or out of their sender's window"},
    {RUMOR_DROP_NOT_FOR_US, "addressed to another member"},
    {RUMOR_DROP_PLAINTEXT, "unencrypted, from a node without the cluster key"},
    {RUMOR_DROP_ENCRYPTED, "encrypted, and this node has no keyring"},
};

void rt_refused(rumor_runtime *rt, const rumor_addr *from)
{
    rt->counters.auth_refused++;
    uint64_t now = uv_now(rt->loop);
    if (rt->refused_logged_at && now - rt->refused_logged_at < RT_REFUSED_LOG_MS)
        return;
    rt->refused_logged_at = now;
    rumor_stats st;
    rumor_node_stats(rt->node, &st);
    char msg[768], a[64];
    size_t len = 0;
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        rumor_drop_reason r = refusals[i].r;
        uint64_t d = st.dropped[r] - rt->refused_seen[r];
        rt->refused_seen[r] = st.dropped[r];
        if (d && len < sizeof msg)
            len +=
                (size_t)snprintf(msg + len, sizeof msg - len, "%s%llu %s (%s)", len ? ", " : "",
                                 (unsigned long long)d, refusals[i].why, rumor_drop_reason_name(r));
    }
    rumor_addr_format(from, a, sizeof a);
    rt_log(rt, RUMOR_LOG_WARN, "refused packets since the last report: %s; latest from %s",
           len ? msg : "none counted", a);
}

/* ---- datagrams ---- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    rumor_runtime *rt = h->data;
    /* Reads are handed to the engine before the next read, so one buffer serves all. */
    buf->base = (char *)rt->rbuf;
    buf->len = sizeof rt->rbuf;
}

static void udp_recv_cb(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags)
{
    rumor_runtime *rt = h->data;
    if (nread < 0 || (flags & UV_UDP_PARTIAL)) {
        rt->counters.udp_recv_errors++;
        return;
    }
    if (nread == 0 || !addr || rt->closing)
        return;
    rumor_addr from;
    if (rumor_runtime_addr_from_sockaddr(addr, &from) != 0)
        return;
    if (rumor_node_receive(rt->node, &from, (const uint8_t *)buf->base, (size_t)nread,
                           rt_now(rt)) == RUMOR_ERR_AUTH)
        rt_refused(rt, &from);
    rumor_runtime_pump(rt);
}

typedef struct udp_send_req {
    uv_udp_send_t req;
    uint8_t data[];
} udp_send_req;

static void udp_send_cb(uv_udp_send_t *req, int status)
{
    if (status != 0)
        ((rumor_runtime *)req->handle->data)->counters.udp_send_errors++;
    free(req);
}

static void send_datagram(rumor_runtime *rt, const rumor_datagram *d)
{
    if (rt->opt.tcp_only) {
        rt_tunnel_send(rt, &d->to, d->data, d->len);
        return;
    }
    struct sockaddr_storage ss;
    if (rumor_runtime_addr_to_sockaddr(&d->to, &ss, rt->bind_family == AF_INET6) != 0 ||
        (rt->bind_family == AF_INET && ss.ss_family != AF_INET)) {
        rt->counters.udp_send_errors++;
        return;
    }
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)d->data, (unsigned)d->len);
    int rc = uv_udp_try_send(&rt->udp, &b, 1, (const struct sockaddr *)&ss);
    if (rc >= 0)
        return;
    if (rc != UV_EAGAIN && rc != UV_ENOSYS) {
        rt->counters.udp_send_errors++;
        return;
    }
    /* The kernel queue is full: queue a copy, as the engine's buffer dies at its next call. */
    udp_send_req *r = malloc(sizeof *r + d->len);
    if (!r) {
        rt->counters.udp_send_errors++;
        return;
    }
    memcpy(r->data, d->data, d->len);
    b = uv_buf_init((char *)r->data, (unsigned)d->len);
    if (uv_udp_send(&r->req, &rt->udp, &b, 1, (const struct sockaddr *)&ss, udp_send_cb) != 0) {
        rt->counters.udp_send_errors++;
        free(r);
    }
}

/* ---- the engine's output ---- */

static void timer_cb(uv_timer_t *t)
{
    rumor_runtime *rt = t->data;
    if (rt->closing)
        return;
    rumor_node_tick(rt->node, rt_now(rt));
    rumor_runtime_pump(rt);
}

static void arm_timer(rumor_runtime *rt)
{
    uint64_t now = rt_now(rt), deadline = rumor_node_deadline(rt->node);
    uint64_t delay = deadline > now ? deadline - now : 0;
    if (delay > 3600000u) /* "no deadline": wake hourly anyway */
        delay = 3600000u;
    uv_timer_start(&rt->timer, timer_cb, delay, 0);
}

/* Reports a new self incarnation before any datagram that carries it leaves, so a host that
 * persists it never restarts at or below a number the cluster has already seen. */
static void check_incarnation(rumor_runtime *rt)
{
    rumor_member self;
    rumor_node_self(rt->node, &self);
    if (self.incarnation == rt->last_incarnation)
        return;
    rt->last_incarnation = self.incarnation;
    if (rt->opt.cb.incarnation)
        rt->opt.cb.incarnation(rt, self.incarnation, rt->opt.cb.ud);
}

static size_t drain_once(rumor_runtime *rt)
{
    size_t work = 0;
    check_incarnation(rt);
    if (rt->opt.cb.before_send)
        rt->opt.cb.before_send(rt, rt->opt.cb.ud);
    rumor_datagram d;
    while (rumor_node_poll_datagram(rt->node, &d)) {
        send_datagram(rt, &d);
        work++;
    }
    rumor_stream_op op;
    while (!rt->closing && rumor_node_poll_stream(rt->node, &op)) {
        rt_stream_op(rt, &op);
        work++;
    }
    rumor_event ev;
    while (!rt->closing && rumor_node_poll_event(rt->node, &ev)) {
        if (rt->opt.cb.event)
            rt->opt.cb.event(rt, &ev, rt->opt.cb.ud);
        work++;
    }
    return work;
}

void rumor_runtime_pump(rumor_runtime *rt)
{
    if (!rt->node || rt->closing)
        return;
    if (rt->pumping) { /* called from a callback inside the pump: the outer loop drains */
        rt->repump = true;
        return;
    }
    rt->pumping = true;
    do {
        rt->repump = false;
        while (drain_once(rt) > 0 && !rt->closing)
            ;
    } while (rt->repump && !rt->closing);
    rt->pumping = false;
    if (!rt->closing)
        arm_timer(rt);
}

/* ---- start ---- */

int rumor_runtime_start(rumor_runtime *rt)
{
    if (rt->started)
        return RUMOR_ERR_STATE;
    uv_update_time(rt->loop);
    int rc = rumor_node_new(&rt->node, &rt->opt.settings, rt_now(rt));
    /* The engine keeps its own copies of the keys, the secret and the identity key; drop ours. */
    sodium_memzero(rt->keys, sizeof rt->keys);
    sodium_memzero(rt->opt.settings.seal_secret, sizeof rt->opt.settings.seal_secret);
    sodium_memzero(rt->opt.settings.identity_seed, sizeof rt->opt.settings.identity_seed);
    rt->opt.settings.keys = NULL;
    if (rc != 0) {
        rt_log(rt, RUMOR_LOG_ERROR, "engine refused the settings: %s", rumor_strerror(rc));
        return rc;
    }
    rt->last_incarnation = rt->opt.settings.incarnation;
    if (!rt->opt.tcp_only && uv_udp_recv_start(&rt->udp, alloc_cb, udp_recv_cb) != 0)
        return RUMOR_ERR_STATE;
    rc = rt_stream_listen(rt);
    if (rc != 0)
        return rc;
    uv_mutex_lock(&rt->mu);
    rt->loop_thread = uv_thread_self();
    rt->started = true;
    uv_mutex_unlock(&rt->mu);
    char a[64];
    rumor_addr_format(&rt->opt.settings.addr, a, sizeof a);
    rt_log(rt, RUMOR_LOG_INFO, "node %s listening, advertising %s%s", rt->name, a,
           rt->opt.tcp_only ? " (tcp only)" : "");
    rumor_runtime_pump(rt);
    return 0;
}

/* ---- accessors ---- */

rumor_node *rumor_runtime_node(rumor_runtime *rt)
{
    return rt->node;
}

uv_loop_t *rumor_runtime_loop(rumor_runtime *rt)
{
    return rt->loop;
}

const rumor_addr *rumor_runtime_advertise(const rumor_runtime *rt)
{
    return &rt->opt.settings.addr;
}

const rumor_runtime_counters *rumor_runtime_counters_get(const rumor_runtime *rt)
{
    return &rt->counters;
}

/* ---- close ---- */

void rt_maybe_closed(rumor_runtime *rt)
{
    if (!rt->closing || rt->open_handles > 0 || rt->conns || rt->joiners || !rt->close_cb)
        return;
    void (*cb)(rumor_runtime *, void *) = rt->close_cb;
    rt->close_cb = NULL;
    cb(rt, rt->close_ud);
}

static void handle_closed(uv_handle_t *h)
{
    rumor_runtime *rt = h->data;
    rt->open_handles--;
    rt_maybe_closed(rt);
}

static void noop_done(rumor_runtime *rt, void *ud)
{
    (void)rt;
    (void)ud;
}

void rumor_runtime_close(rumor_runtime *rt, void (*done)(rumor_runtime *rt, void *ud), void *ud)
{
    if (rt->closing)
        return;
    rumor_runtime_refuse_calls(rt);
    rt->closing = true;
    rt->close_cb = done ? done : noop_done;
    rt->close_ud = ud;
    rt_join_close_all(rt);
    rt_stream_close_all(rt);
    uv_close((uv_handle_t *)&rt->listener, handle_closed);
    if (!rt->opt.tcp_only)
        uv_close((uv_handle_t *)&rt->udp, handle_closed);
    uv_close((uv_handle_t *)&rt->timer, handle_closed);
    uv_close((uv_handle_t *)&rt->async, handle_closed);
}

void rumor_runtime_del(rumor_runtime *rt)
{
    if (!rt)
        return;
    rumor_node_del(rt->node);
    uv_mutex_destroy(&rt->mu);
    uv_cond_destroy(&rt->cv);
    if (rt->owns_loop)
        (void)uv_loop_close(&rt->own_loop);
    sodium_memzero(rt, sizeof *rt);
    free(rt);
}
