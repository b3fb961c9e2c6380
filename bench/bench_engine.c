/*
 * Engine throughput: messages decoded and handled per CPU second by one node that knows 1,000
 * members. The node receives a realistic mix of compound datagrams — pings that it answers
 * (with piggybacked gossip), acks, and membership news: alive refreshes with rising
 * incarnations, suspicions that members refute, duplicates that are discarded — and its outputs
 * are drained as a host would. Not a test: prints one JSON line. Usage: bench_engine [members]
 * [seconds].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/wire.h"
#include "rumor.h"

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static rumor_addr addr_of(uint32_t i)
{
    uint8_t ip[4] = {10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
    rumor_addr a;
    rumor_addr_from_ip(&a, 4, ip, 7946);
    return a;
}

static void drain(rumor_node *n)
{
    rumor_datagram d;
    rumor_stream_op op;
    rumor_event ev;
    while (rumor_node_poll_datagram(n, &d))
        ;
    while (rumor_node_poll_stream(n, &op))
        ;
    while (rumor_node_poll_event(n, &ev))
        ;
}

typedef struct pkt {
    uint8_t b[1400];
    size_t len;
    uint32_t msgs;
    rumor_addr from;
} pkt;

/* Builds packet k of the mix: a ping or ack followed by up to 12 gossip messages. */
static void build(pkt *p, uint32_t k, uint32_t members, uint32_t *inc)
{
    buf_writer w;
    buf_writer_init_fixed(&w, p->b, sizeof(p->b));
    wire_put_header(&w, NULL, 0, 0);
    char name[32], sender[32];
    uint32_t from = 1 + k % (members - 1);
    snprintf(sender, sizeof(sender), "node-%u", from);
    p->from = addr_of(from);
    p->msgs = 1;
    if (k % 2 == 0)
        wire_put_ping(&w, k, wire_str_of("self", 4), wire_str_of(sender, strlen(sender)));
    else
        wire_put_ack(&w, WIRE_ACK, k);
    for (uint32_t j = 0; j < 12; j++) {
        uint32_t who = 1 + (k * 13 + j * 7) % (members - 1);
        snprintf(name, sizeof(name), "node-%u", who);
        wire_str nm = wire_str_of(name, strlen(name));
        rumor_addr a = addr_of(who);
        switch ((k + j) % 4) {
        case 0: /* news: a newer incarnation */
            wire_put_alive(&w, ++inc[who], nm, &a, wire_str_of("role=web", 8));
            break;
        case 1: /* a suspicion at the current incarnation */
            wire_put_accuse(&w, WIRE_SUSPECT, inc[who], nm, wire_str_of(sender, strlen(sender)));
            break;
        default: /* duplicates of what is known: the common case in gossip */
            wire_put_alive(&w, inc[who], nm, &a, wire_str_of("role=web", 8));
            break;
        }
        p->msgs++;
    }
    p->len = w.len;
}

int main(int argc, char **argv)
{
    uint32_t members = argc > 1 ? (uint32_t)atoi(argv[1]) : 1000;
    double seconds = argc > 2 ? atof(argv[2]) : 3.0;
    if (members < 2 || seconds <= 0) {
        fprintf(stderr, "usage: bench_engine [members>=2] [seconds>0]\n");
        return 2;
    }
    rumor_settings s;
    rumor_settings_default(&s, RUMOR_PROFILE_LAN);
    s.name = "self";
    s.addr = addr_of(0);
    s.seed = 42;
    rumor_node *n;
    uint64_t now = 1000;
    if (rumor_node_new(&n, &s, now) != 0)
        return 1;
    uint32_t *inc = calloc(members, sizeof(*inc));
    /* Teach the node its members. */
    for (uint32_t i = 1; i < members; i++) {
        uint8_t b[256];
        buf_writer w;
        buf_writer_init_fixed(&w, b, sizeof(b));
        wire_put_header(&w, NULL, 0, 0);
        char name[32];
        snprintf(name, sizeof(name), "node-%u", i);
        rumor_addr a = addr_of(i);
        wire_put_alive(&w, 0, wire_str_of(name, strlen(name)), &a, wire_str_of("role=web", 8));
        rumor_node_receive(n, &a, b, w.len, now);
        drain(n);
    }
    enum { NPKT = 4096 };
    pkt *pk = calloc(NPKT, sizeof(*pk));
    uint64_t msgs = 0, pkts = 0;
    double start = cpu_now(), elapsed = 0;
    uint32_t round = 0;
    while (elapsed < seconds) {
        /* Rebuild a batch (outside the timed region) so incarnations keep rising. */
        double pause = cpu_now();
        for (uint32_t k = 0; k < NPKT; k++)
            build(&pk[k], round * NPKT + k, members, inc);
        start += cpu_now() - pause;
        for (uint32_t k = 0; k < NPKT; k++) {
            now += k % 8 == 0;
            rumor_node_receive(n, &pk[k].from, pk[k].b, pk[k].len, now);
            if (rumor_node_deadline(n) <= now)
                rumor_node_tick(n, now);
            drain(n);
            msgs += pk[k].msgs;
        }
        pkts += NPKT;
        round++;
        elapsed = cpu_now() - start;
    }
    rumor_stats st;
    rumor_node_stats(n, &st);
    printf("{\"members\": %u, \"cpu_s\": %.3f, \"packets\": %llu, \"messages\": %llu, "
           "\"messages_per_cpu_s\": %.0f, \"packets_per_cpu_s\": %.0f, \"alive\": %u, "
           "\"dropped_malformed\": %llu}\n",
           members, elapsed, (unsigned long long)pkts, (unsigned long long)msgs,
           (double)msgs / elapsed, (double)pkts / elapsed, st.members[RUMOR_MEMBER_ALIVE],
           (unsigned long long)st.dropped[RUMOR_DROP_MALFORMED]);
    rumor_node_del(n);
    free(inc);
    free(pk);
    return 0;
}
