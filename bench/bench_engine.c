/*
 * Engine throughput: messages decoded and handled per CPU second by one node that knows 1,000
 * members. The node receives a realistic mix of compound datagrams — pings that it answers
 * (with piggybacked gossip), acks, and membership news: alive refreshes with rising
 * incarnations, suspicions that members refute, duplicates that are discarded — and its outputs
 * are drained as a host would. Not a test: prints one JSON line. Usage: bench_engine [members]
 * [seconds] [--encrypt | --both].
 *
 * --encrypt: the node holds a key and every datagram reaches it sealed by its sender (each
 * sender with its own nonces and counter, as a cluster would send them), so the timed region
 * includes opening every input, its replay check, and sealing every reply. --both runs plain
 * and sealed one after the other in one process and reports the ratio of their rates.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "core/buf.h"
#include "core/seal.h"
#include "core/wire.h"
#include "rumor.h"

static const uint8_t KEY[1][RUMOR_KEY_BYTES] = {{7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                                                 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7}};

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
    uint8_t b[1400 + SEAL_DGRAM_OVERHEAD];
    size_t len;
    uint32_t msgs;
    rumor_addr from;
} pkt;

/* The senders' sealing states, one per member, made on first use (seal: NULL = plaintext). */
typedef struct senders {
    seal_state *st;
    bool *ready;
    uint32_t members;
} senders;

static seal_state *sender_of(senders *ss, uint32_t i)
{
    if (!ss)
        return NULL;
    if (!ss->ready[i]) {
        rumor_settings s;
        char name[32];
        rumor_settings_default(&s, RUMOR_PROFILE_LAN);
        snprintf(name, sizeof(name), "node-%u", i);
        s.name = name;
        s.keys = KEY;
        s.nkeys = 1;
        memset(s.seal_secret, (int)(i % 251) + 1, sizeof(s.seal_secret));
        s.seal_epoch = 1000 + i;
        if (seal_init(&ss->st[i], &s, 0, 16) != 0)
            abort();
        ss->ready[i] = true;
    }
    return &ss->st[i];
}

/* Builds packet k of the mix: a ping or ack followed by up to 12 gossip messages. */
static void build(pkt *p, uint32_t k, uint32_t members, uint32_t *inc, senders *ss)
{
    buf_writer w;
    buf_writer_init_fixed(&w, p->b, sizeof(p->b));
    char name[32], sender[32];
    uint32_t from = 1 + k % (members - 1);
    seal_state *st = sender_of(ss, from);
    size_t env = 0;
    wire_put_header(&w, NULL, 0, st ? WIRE_FLAG_SEALED : 0);
    if (st) {
        seal_inner in = {.kind = SEAL_KIND_DGRAM, .dest = seal_id("self", 4)};
        env = seal_put_inner(st, &w, &in);
    }
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
    if (st && !seal_close(st, &w, 0, env))
        abort();
    p->len = w.len;
}

typedef struct result {
    double cpu_s, msgs_per_s, pkts_per_s, out_bytes_per_pkt;
    uint64_t pkts, msgs, alive, malformed, refused;
} result;

static void run(uint32_t members, double seconds, bool encrypt, result *r)
{
    rumor_settings s;
    rumor_settings_default(&s, RUMOR_PROFILE_LAN);
    s.name = "self";
    s.addr = addr_of(0);
    s.seed = 42;
    if (encrypt) {
        s.keys = KEY;
        s.nkeys = 1;
        memset(s.seal_secret, 0x5a, sizeof(s.seal_secret));
        s.seal_epoch = 1;
    }
    rumor_node *n;
    uint64_t now = 1000;
    if (rumor_node_new(&n, &s, now) != 0)
        abort();
    uint32_t *inc = calloc(members, sizeof(*inc));
    senders ss = {calloc(members, sizeof(seal_state)), calloc(members, sizeof(bool)), members};
    senders *sp = encrypt ? &ss : NULL;
    /* Teach the node its members. */
    for (uint32_t i = 1; i < members; i++) {
        uint8_t b[256];
        buf_writer w;
        buf_writer_init_fixed(&w, b, sizeof(b));
        seal_state *st = sender_of(sp, i);
        size_t env = 0;
        wire_put_header(&w, NULL, 0, st ? WIRE_FLAG_SEALED : 0);
        if (st) {
            seal_inner in = {.kind = SEAL_KIND_DGRAM, .dest = seal_id("self", 4)};
            env = seal_put_inner(st, &w, &in);
        }
        char name[32];
        snprintf(name, sizeof(name), "node-%u", i);
        rumor_addr a = addr_of(i);
        wire_put_alive(&w, 0, wire_str_of(name, strlen(name)), &a, wire_str_of("role=web", 8));
        if (st)
            seal_close(st, &w, 0, env);
        if (rumor_node_receive(n, &a, b, w.len, now) != 0)
            abort();
        drain(n);
    }
    rumor_stats before;
    rumor_node_stats(n, &before);
    enum { NPKT = 4096 };
    pkt *pk = calloc(NPKT, sizeof(*pk));
    uint64_t msgs = 0, pkts = 0;
    double start = cpu_now(), elapsed = 0;
    uint32_t round = 0;
    while (elapsed < seconds) {
        /* Rebuild a batch (outside the timed region) so incarnations keep rising. */
        double pause = cpu_now();
        for (uint32_t k = 0; k < NPKT; k++)
            build(&pk[k], round * NPKT + k, members, inc, sp);
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
    r->cpu_s = elapsed;
    r->pkts = pkts;
    r->msgs = msgs;
    r->msgs_per_s = (double)msgs / elapsed;
    r->pkts_per_s = (double)pkts / elapsed;
    uint64_t out = st.packets_out - before.packets_out;
    r->out_bytes_per_pkt = out ? (double)(st.bytes_out - before.bytes_out) / (double)out : 0;
    r->alive = st.members[RUMOR_MEMBER_ALIVE];
    r->malformed = st.dropped[RUMOR_DROP_MALFORMED];
    r->refused = st.dropped[RUMOR_DROP_AUTH_FAILED] + st.dropped[RUMOR_DROP_UNKNOWN_KEY] +
                 st.dropped[RUMOR_DROP_REPLAYED] + st.dropped[RUMOR_DROP_NOT_FOR_US];
    rumor_node_del(n);
    for (uint32_t i = 0; i < members; i++)
        if (ss.ready[i])
            seal_free(&ss.st[i], &rumor_alloc_libc);
    free(ss.st);
    free(ss.ready);
    free(inc);
    free(pk);
}

static void print(const char *label, uint32_t members, const result *r)
{
    printf("\"%s\": {\"members\": %u, \"cpu_s\": %.3f, \"packets\": %llu, \"messages\": %llu, "
           "\"messages_per_cpu_s\": %.0f, \"packets_per_cpu_s\": %.0f, "
           "\"out_bytes_per_packet\": %.1f, \"alive\": %llu, \"dropped_malformed\": %llu, "
           "\"refused\": %llu}",
           label, members, r->cpu_s, (unsigned long long)r->pkts, (unsigned long long)r->msgs,
           r->msgs_per_s, r->pkts_per_s, r->out_bytes_per_pkt, (unsigned long long)r->alive,
           (unsigned long long)r->malformed, (unsigned long long)r->refused);
}

int main(int argc, char **argv)
{
    uint32_t members = 1000;
    double seconds = 3.0;
    bool encrypt = false, both = false;
    int pos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--encrypt") == 0)
            encrypt = true;
        else if (strcmp(argv[i], "--both") == 0)
            both = true;
        else if (pos++ == 0)
            members = (uint32_t)atoi(argv[i]);
        else
            seconds = atof(argv[i]);
    }
    if (members < 2 || seconds <= 0) {
        fprintf(stderr, "usage: bench_engine [members>=2] [seconds>0] [--encrypt | --both]\n");
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    result plain, sealed;
    printf("{");
    if (!encrypt || both) {
        run(members, seconds, false, &plain);
        print("plain", members, &plain);
    }
    if (encrypt || both) {
        run(members, seconds, true, &sealed);
        printf("%s", both ? ", " : "");
        print("sealed", members, &sealed);
    }
    if (both)
        printf(", \"sealed_over_plain\": %.3f, \"seal_bytes_per_datagram\": %u, "
               "\"seal_bytes_per_frame\": %u",
               sealed.msgs_per_s / plain.msgs_per_s, (unsigned)SEAL_DGRAM_OVERHEAD,
               (unsigned)SEAL_FRAME_OVERHEAD);
    printf("}\n");
    return 0;
}
