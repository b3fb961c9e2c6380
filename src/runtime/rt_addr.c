/* Address helpers: "host:port" text, socket addresses and rumor_addr (rumor_addr_from_ip). */
#include "rt_internal.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int set_err(char *err, size_t cap, const char *msg, const char *text)
{
    if (err && cap > 0)
        snprintf(err, cap, "%s: \"%s\"", msg, text);
    return RUMOR_ERR_INVALID;
}

static int parse_port(const char *p, uint16_t *port)
{
    char *end = NULL;
    if (*p == '\0' || strlen(p) > 5)
        return RUMOR_ERR_INVALID;
    unsigned long v = strtoul(p, &end, 10);
    if (*end != '\0' || v > 65535)
        return RUMOR_ERR_INVALID;
    *port = (uint16_t)v;
    return 0;
}

static int copy_host(const char *start, size_t len, char *host, size_t hostcap)
{
    if (len == 0 || len >= hostcap)
        return RUMOR_ERR_INVALID;
    memcpy(host, start, len);
    host[len] = '\0';
    return 0;
}

int rumor_runtime_split_hostport(const char *text, uint16_t default_port, char *host,
                                 size_t hostcap, uint16_t *port, char *err, size_t errcap)
{
    if (!text || !*text)
        return set_err(err, errcap, "empty address", "");
    *port = default_port;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || copy_host(text + 1, (size_t)(close - text - 1), host, hostcap) != 0)
            return set_err(err, errcap, "bad bracketed IPv6 address", text);
        if (close[1] == '\0')
            return 0;
        if (close[1] != ':' || parse_port(close + 2, port) != 0)
            return set_err(err, errcap, "bad port (expected 0..65535)", text);
        return 0;
    }
    const char *colon = strchr(text, ':');
    if (colon && strchr(colon + 1, ':')) /* a bare IPv6 address, no port */
        return copy_host(text, strlen(text), host, hostcap) == 0
                   ? 0
                   : set_err(err, errcap, "address too long", text);
    if (!colon)
        return copy_host(text, strlen(text), host, hostcap) == 0
                   ? 0
                   : set_err(err, errcap, "address too long", text);
    if (copy_host(text, (size_t)(colon - text), host, hostcap) != 0)
        return set_err(err, errcap, "missing host before ':'", text);
    if (parse_port(colon + 1, port) != 0)
        return set_err(err, errcap, "bad port (expected 0..65535)", text);
    return 0;
}

int rumor_runtime_parse_addr(const char *text, uint16_t default_port, rumor_addr *out, char *err,
                             size_t errcap)
{
    char host[256];
    uint16_t port;
    uint8_t ip[16];
    int rc =
        rumor_runtime_split_hostport(text, default_port, host, sizeof host, &port, err, errcap);
    if (rc != 0)
        return rc;
    if (inet_pton(AF_INET, host, ip) == 1)
        return rumor_addr_from_ip(out, 4, ip, port);
    if (inet_pton(AF_INET6, host, ip) == 1)
        return rumor_addr_from_ip(out, 6, ip, port);
    return set_err(err, errcap, "not a numeric IPv4 or IPv6 address", text);
}

int rumor_runtime_addr_from_sockaddr(const struct sockaddr *sa, rumor_addr *out)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return rumor_addr_from_ip(out, 4, (const uint8_t *)&in->sin_addr, ntohs(in->sin_port));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        const uint8_t *b = in6->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        /* A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; the cluster knows them by
         * their IPv4 form, so unmap to keep one address per peer. */
        if (memcmp(b, mapped, sizeof mapped) == 0)
            return rumor_addr_from_ip(out, 4, b + 12, ntohs(in6->sin6_port));
        return rumor_addr_from_ip(out, 6, b, ntohs(in6->sin6_port));
    }
    return RUMOR_ERR_INVALID;
}

int rumor_runtime_addr_to_sockaddr(const rumor_addr *a, struct sockaddr_storage *ss, bool v4_mapped)
{
    int family;
    uint8_t ip[16];
    uint16_t port;
    if (rumor_addr_to_ip(a, &family, ip, &port) != 0)
        return RUMOR_ERR_MALFORMED;
    memset(ss, 0, sizeof *ss);
    if (family == 4 && !v4_mapped) {
        struct sockaddr_in *in = (struct sockaddr_in *)(void *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        memcpy(&in->sin_addr, ip, 4);
        return 0;
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    if (family == 4) {
        in6->sin6_addr.s6_addr[10] = 0xff;
        in6->sin6_addr.s6_addr[11] = 0xff;
        memcpy(in6->sin6_addr.s6_addr + 12, ip, 4);
    } else {
        memcpy(in6->sin6_addr.s6_addr, ip, 16);
    }
    return 0;
}

int rumor_runtime_resolve(const char *text, uint16_t default_port, rumor_addr *out, size_t cap,
                          char *err, size_t errcap)
{
    char host[256];
    uint16_t port;
    int rc =
        rumor_runtime_split_hostport(text, default_port, host, sizeof host, &port, err, errcap);
    if (rc != 0)
        return rc;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host, NULL, &hints, &res);
    if (gai != 0) {
        if (err && errcap > 0)
            snprintf(err, errcap, "cannot resolve \"%s\": %s", host, gai_strerror(gai));
        return RUMOR_ERR_NOT_FOUND;
    }
    size_t n = 0;
    for (struct addrinfo *ai = res; ai && n < cap; ai = ai->ai_next) {
        rumor_addr a;
        if (rumor_runtime_addr_from_sockaddr(ai->ai_addr, &a) != 0)
            continue;
        int family;
        uint8_t ip[16];
        uint16_t ignored;
        (void)rumor_addr_to_ip(&a, &family, ip, &ignored);
        (void)rumor_addr_from_ip(&out[n], family, ip, port);
        bool dup = false;
        for (size_t i = 0; i < n; i++)
            dup = dup || rumor_addr_equal(&out[i], &out[n]);
        if (!dup)
            n++;
    }
    freeaddrinfo(res);
    if (n == 0) {
        if (err && errcap > 0)
            snprintf(err, errcap, "\"%s\" has no IPv4 or IPv6 address", host);
        return RUMOR_ERR_NOT_FOUND;
    }
    return (int)n;
}
