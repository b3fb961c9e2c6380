/*
 * Joining through host names. Each attempt resolves every name again (a seed's address may
 * have changed since the last try, e.g. a rescheduled container), hands the addresses to
 * rumor_node_join(), and checks after a while whether another live member is known. With
 * retry, failed attempts repeat with exponential backoff, as Serf's -retry-join does.
 */
#include "rt_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOIN_ADDRS_MAX        64u
#define JOIN_FIRST_BACKOFF_MS 1000u

struct rt_joiner {
    rumor_runtime *rt;
    rt_joiner *next;
    char **hosts;
    size_t nhosts;
    bool retry, cancelled, timer_closed;
    uv_timer_t timer;
    size_t pending;
    rumor_addr addrs[JOIN_ADDRS_MAX];
    size_t naddrs;
    uint32_t attempt;
    uint64_t backoff_ms;
};

typedef struct rt_resolve {
    uv_getaddrinfo_t req;
    rt_joiner *j;
    uint16_t port;
    char host[256];
} rt_resolve;

bool rt_has_live_peer(rumor_runtime *rt)
{
    size_t n = rumor_node_member_count(rt->node);
    for (size_t i = 0; i < n; i++) {
        rumor_member m;
        if (rumor_node_member_at(rt->node, i, &m) == 0 && !m.is_self &&
            (m.state == RUMOR_MEMBER_ALIVE || m.state == RUMOR_MEMBER_SUSPECT))
            return true;
    }
    return false;
}

static void joiner_maybe_free(rt_joiner *j)
{
    if (!j->timer_closed || j->pending > 0)
        return;
    rumor_runtime *rt = j->rt;
    for (rt_joiner **p = &rt->joiners; *p; p = &(*p)->next) {
        if (*p == j) {
            *p = j->next;
            break;
        }
    }
    for (size_t i = 0; i < j->nhosts; i++)
        free(j->hosts[i]);
    free(j->hosts);
    free(j);
    rt_maybe_closed(rt);
}

static void timer_closed(uv_handle_t *h)
{
    rt_joiner *j = h->data;
    j->timer_closed = true;
    joiner_maybe_free(j);
}

static void joiner_finish(rt_joiner *j)
{
    if (j->cancelled)
        return;
    j->cancelled = true;
    uv_close((uv_handle_t *)&j->timer, timer_closed);
}

static void add_addr(rt_joiner *j, const rumor_addr *a)
{
    for (size_t i = 0; i < j->naddrs; i++)
        if (rumor_addr_equal(&j->addrs[i], a))
            return;
    if (j->naddrs < JOIN_ADDRS_MAX)
        j->addrs[j->naddrs++] = *a;
}

static void check_cb(uv_timer_t *t);

/* All names of this attempt are resolved (or failed): join through what we have. */
static void attempt_resolved(rt_joiner *j)
{
    rumor_runtime *rt = j->rt;
    if (j->naddrs > 0) {
        rt->counters.joins++;
        int rc = rumor_node_join(rt->node, j->addrs, j->naddrs, rt_now(rt));
        if (rc != 0)
            rt_log(rt, RUMOR_LOG_WARN, "join: %s", rumor_strerror(rc));
        rumor_runtime_pump(rt);
    }
    uv_timer_start(&j->timer, check_cb, j->backoff_ms, 0);
}

static void resolve_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    rt_resolve *r = req->data;
    rt_joiner *j = r->j;
    j->pending--;
    if (!j->cancelled && status != 0) {
        j->rt->counters.resolve_errors++;
        rt_log(j->rt, RUMOR_LOG_WARN, "join: cannot resolve \"%s\": %s", r->host,
               uv_strerror(status));
    }
    for (struct addrinfo *ai = res; ai && !j->cancelled; ai = ai->ai_next) {
        rumor_addr a;
        int fam;
        uint8_t ip[16];
        uint16_t ignored;
        if (rumor_runtime_addr_from_sockaddr(ai->ai_addr, &a) != 0 ||
            rumor_addr_to_ip(&a, &fam, ip, &ignored) != 0)
            continue;
        if (rumor_addr_from_ip(&a, fam, ip, r->port) == 0)
            add_addr(j, &a);
    }
    uv_freeaddrinfo(res);
    free(r);
    if (j->cancelled)
        joiner_maybe_free(j);
    else if (j->pending == 0)
        attempt_resolved(j);
}

static void start_resolve(rt_joiner *j, const char *host, uint16_t port)
{
    rt_resolve *r = calloc(1, sizeof *r);
    if (!r)
        return;
    r->j = j;
    r->port = port;
    snprintf(r->host, sizeof r->host, "%s", host);
    r->req.data = r;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (uv_getaddrinfo(j->rt->loop, &r->req, resolve_cb, r->host, NULL, &hints) != 0) {
        free(r);
        return;
    }
    j->pending++;
}

static void attempt(rt_joiner *j)
{
    j->attempt++;
    j->naddrs = 0;
    for (size_t i = 0; i < j->nhosts; i++) {
        char host[256], err[160];
        uint16_t port;
        rumor_addr a;
        if (rumor_runtime_parse_addr(j->hosts[i], RUMOR_RUNTIME_DEFAULT_PORT, &a, NULL, 0) == 0) {
            add_addr(j, &a);
            continue;
        }
        if (rumor_runtime_split_hostport(j->hosts[i], RUMOR_RUNTIME_DEFAULT_PORT, host, sizeof host,
                                         &port, err, sizeof err) != 0) {
            rt_log(j->rt, RUMOR_LOG_WARN, "join: %s", err);
            continue;
        }
        start_resolve(j, host, port);
    }
    if (j->pending == 0)
        attempt_resolved(j);
}

static void check_cb(uv_timer_t *t)
{
    rt_joiner *j = t->data;
    rumor_runtime *rt = j->rt;
    if (rt_has_live_peer(rt)) {
        rt_log(rt, RUMOR_LOG_INFO, "joined the cluster (attempt %u)", j->attempt);
        joiner_finish(j);
        return;
    }
    if (!j->retry) {
        rt_log(rt, RUMOR_LOG_WARN,
               "join: no member answered yet; the node keeps retrying its "
               "seeds in the background");
        joiner_finish(j);
        return;
    }
    uint64_t cap = rt->opt.join_backoff_max_ms ? rt->opt.join_backoff_max_ms : 30000u;
    j->backoff_ms = j->backoff_ms * 2 > cap ? cap : j->backoff_ms * 2;
    rt_log(rt, RUMOR_LOG_INFO, "retry-join: attempt %u failed, next in %llu ms", j->attempt,
           (unsigned long long)j->backoff_ms);
    attempt(j);
}

int rt_join_start(rumor_runtime *rt, const char *const *hosts, size_t nhosts, bool retry)
{
    if (!rt->node || rt->closing)
        return RUMOR_ERR_STATE;
    if (nhosts == 0)
        return RUMOR_ERR_INVALID;
    rt_joiner *j = calloc(1, sizeof *j);
    if (!j || !(j->hosts = calloc(nhosts, sizeof *j->hosts))) {
        free(j);
        return RUMOR_ERR_NOMEM;
    }
    j->rt = rt;
    j->retry = retry;
    j->backoff_ms = JOIN_FIRST_BACKOFF_MS;
    for (size_t i = 0; i < nhosts; i++) {
        j->hosts[j->nhosts] = strdup(hosts[i]);
        if (j->hosts[j->nhosts])
            j->nhosts++;
    }
    uv_timer_init(rt->loop, &j->timer);
    j->timer.data = j;
    j->next = rt->joiners;
    rt->joiners = j;
    attempt(j);
    return 0;
}

void rt_join_close_all(rumor_runtime *rt)
{
    for (rt_joiner *j = rt->joiners; j; j = j->next) {
        joiner_finish(j);
    }
    /* Resolutions still running finish with UV_ECANCELED or a result that is ignored. */
}
