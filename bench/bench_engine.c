/*
 * Engine throughput: messages decoded and handled per CPU second by one node that knows 1,000
 * members. The node receives a realistic mix of compound datagrams — pings that it answers
 * (with piggybacked gossip), acks, and membership news: alive refreshes with rising
 * incarnations, suspicions that members refute, duplicates that are discarded — and its outputs
 * are drained as a host would. Not a test: prints one JSON line, one object per mode run.
 *
 * Usage: bench_engine [members] [seconds] [--encrypt] [--identity] [--both | --all] [--news N]
 *                     [--cipher auto|xchacha|aesgcm|each]
 *   (none)      "plain": no keyring, no identities.
 *   --encrypt   "sealed": the node holds a key and every datagram reaches it sealed by its sender
 *               (each sender with its own nonces and counter, as a cluster would send them), so
 *               the timed region includes opening every input, its replay check, and sealing
 *               every reply.
 *   --identity  "signed": every member and the node have Ed25519 identities (docs/protocol.md
 *               section 12): news is signed by its owner or accuser (outside the timed region)
 *               and verified by the node; the line also gives the cost of one sign and verify.
 *   --encrypt --identity  "sealed_signed": both at once, as a cluster with a keyring and
 *               identities runs.
 *   --both      plain and sealed one after the other in one process, and the ratio of rates.
 *   --all       plain, sealed, signed and sealed_signed one after the other in one process, and
 *               each one's rate as a ratio to plain.
 *   --cipher C  the AEAD of the sealed modes: the node and every sender have seal_cipher C
 *               (auto: AES-256-GCM where the CPU has it, as the default settings; xchacha;
 *               aesgcm), so each side seals with AES-256-GCM exactly when both open it. "each"
 *               runs every sealed mode once with xchacha and once with aesgcm, in one process
 *               (labels sealed_xchacha, sealed_aesgcm, ...).
 *   --news N    N of the 12 gossip messages per packet are news (alive or suspicion), the rest
 *               duplicates; default 6 (3 alive, 3 suspicions). Steady gossip is mostly
 *               duplicates: each change reaches a node many times (retransmit limit x fanout).
 *   --events    the 12 gossip messages are user events instead (docs/protocol.md section 4.7),
 *               each new (a fresh Lamport time, a random member as origin, 16 bytes of
 *               payload), signed by its origin with --identity: the node verifies, relays and
 *               delivers every one. `events_per_cpu_s` in the line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "core/buf.h"
#include "core/ident.h"
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
    /* 12 signed messages take more than a 1400-byte datagram; sealing adds its envelope. */
    uint8_t b[2048 + SEAL_DGRAM_OVERHEAD];
    size_t len;
    uint32_t msgs;
    rumor_addr from;
} pkt;

/* The senders' sealing states, one per member, made on first use (seal: NULL = plaintext). */
typedef struct senders {
    seal_state *st;
    bool *ready;
    uint32_t members;
    uint8_t cipher; /* rumor_settings.seal_cipher of the node and every sender */
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
        s.seal_cipher = ss->cipher;
        if (seal_init(&ss->st[i], &s, 0, 16) != 0)
            abort();
        ss->ready[i] = true;
    }
    return &ss->st[i];
}

/* Starts a datagram to the node, sealed by its sender's state `st` (NULL: plaintext). Returns
 * the envelope offset for dgram_end. */
static size_t dgram_begin(buf_writer *w, seal_state *st)
{
    wire_put_header(w, NULL, 0, st ? WIRE_FLAG_SEALED : 0);
    if (!st)
        return 0;
    /* Members that have heard from the node name its epoch (1, below): docs/protocol.md 3.1.4. */
    seal_inner in = {.kind = SEAL_KIND_DGRAM, .dest = seal_id("self", 4), .dest_epoch = 1};
    return seal_put_inner(st, w, &in);
}

/* Senders know that the node opens AES-256-GCM when they do too (the node's own datagrams say
 * so; here both sides have the same setting). */
static void dgram_end(buf_writer *w, seal_state *st, size_t env)
{
    if ((st && !seal_close(st, w, 0, env, st->aes ? SEAL_CIPHER_AESGCM : SEAL_CIPHER_XCHACHA)) ||
        w->failed)
        abort();
}

/* Identities of the members (modes with --identity): keys by member index, and each member's
 * signature of its current alive record, reused by the duplicates. */
typedef struct ids {
    bool on;
    uint8_t (*pk)[32];
    uint8_t (*sk)[64];
    uint8_t (*alive_sig)[64];
} ids;

static wire_str ROLE = {(const uint8_t *)"role=web", 8};

static void sign_alive(const ids *id, uint32_t who, wire_str nm, uint32_t inc, const rumor_addr *a)
{
    uint8_t stmt[IDENT_STMT_MAX];
    size_t len = ident_stmt_alive(stmt, nm, inc, a, ROLE);
    crypto_sign_detached(id->alive_sig[who], NULL, stmt, len, id->sk[who]);
}

static void put_alive(buf_writer *w, const ids *id, uint32_t who, wire_str nm, uint32_t inc,
                      const rumor_addr *a)
{
    wire_ident wi = {.present = id->on,
                     .pk = id->on ? id->pk[who] : NULL,
                     .sig = id->on ? id->alive_sig[who] : NULL};
    wire_put_alive_ident(w, inc, nm, a, ROLE, &wi);
}

static void put_suspect(buf_writer *w, const ids *id, uint32_t from, uint32_t inc, wire_str nm,
                        wire_str sender)
{
    uint8_t sig[64], stmt[IDENT_STMT_MAX];
    if (id->on) {
        size_t len = ident_stmt_accuse(stmt, WIRE_SUSPECT, inc, nm, sender);
        crypto_sign_detached(sig, NULL, stmt, len, id->sk[from]);
    }
    wire_put_accuse_ident(w, WIRE_SUSPECT, inc, nm, sender, id->on ? sig : NULL);
}

static bool events_mode;
static uint64_t next_ltime = 1;

/* A new user event from member `who`, signed by it when identities are on. */
static void put_event(buf_writer *w, const ids *id, uint32_t who, wire_str nm)
{
    static const uint8_t payload[16] = "bench-payload-16";
    uint64_t lt = next_ltime++;
    wire_str en = wire_str_of("deploy", 6), pl = wire_str_of(payload, sizeof(payload));
    uint8_t sig[64], stmt[IDENT_STMT_MAX];
    if (id->on) {
        size_t len = ident_stmt_event(stmt, nm, lt, en, pl);
        crypto_sign_detached(sig, NULL, stmt, len, id->sk[who]);
    }
    wire_put_user_event_sig(w, lt, nm, en, pl, id->on ? sig : NULL);
}

/* Builds packet k of the mix: a ping or ack followed by 12 gossip messages, `news` of them
 * news (alternately a newer alive and a suspicion), the rest duplicates. */
static void build(pkt *p, uint32_t k, uint32_t members, uint32_t *inc, senders *ss, const ids *id,
                  uint32_t news)
{
    buf_writer w;
    buf_writer_init_fixed(&w, p->b, sizeof(p->b));
    char name[32], sender[32];
    uint32_t from = 1 + k % (members - 1);
    seal_state *st = sender_of(ss, from);
    size_t env = dgram_begin(&w, st);
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
        /* With the default 6 news of 12 this is the original mix: (k + j) % 4 == 0 alive,
         * == 1 suspicion, else duplicate. */
        uint32_t slot = (k + j) % 12, kind = slot % 2 == 0 ? 0 : 1;
        bool is_news = news == 6 ? (k + j) % 4 < 2 : slot < news;
        if (news == 6)
            kind = (k + j) % 4;
        if (events_mode) {
            put_event(&w, id, who, nm);
        } else if (is_news && kind == 0) { /* news: a newer incarnation */
            ++inc[who];
            if (id->on)
                sign_alive(id, who, nm, inc[who], &a);
            put_alive(&w, id, who, nm, inc[who], &a);
        } else if (is_news) { /* a suspicion at the current incarnation */
            put_suspect(&w, id, from, inc[who], nm, wire_str_of(sender, strlen(sender)));
        } else { /* duplicates of what is known: the common case in gossip */
            put_alive(&w, id, who, nm, inc[who], &a);
        }
        p->msgs++;
    }
    dgram_end(&w, st, env);
    p->len = w.len;
}

/* CPU microseconds of one Ed25519 signature and one verification of an alive statement. */
static void crypto_costs(double *sign_us, double *verify_us)
{
    uint8_t pk[32], sk[64], sig[64], stmt[IDENT_STMT_MAX];
    crypto_sign_keypair(pk, sk);
    rumor_addr a = addr_of(7);
    size_t len = ident_stmt_alive(stmt, wire_str_of("node-7", 6), 3, &a, ROLE);
    enum { N = 2000 };
    double t0 = cpu_now();
    for (int i = 0; i < N; i++)
        crypto_sign_detached(sig, NULL, stmt, len, sk);
    double t1 = cpu_now();
    int bad = 0;
    for (int i = 0; i < N; i++)
        bad += crypto_sign_verify_detached(sig, stmt, len, pk) != 0;
    double t2 = cpu_now();
    if (bad)
        abort();
    *sign_us = (t1 - t0) / N * 1e6;
    *verify_us = (t2 - t1) / N * 1e6;
}

/* CPU microseconds to seal `len` bytes (with 40 bytes of associated data) with each AEAD, as
 * libsodium runs them here: XChaCha20-Poly1305 and, where the CPU has it, AES-256-GCM. */
static void cipher_costs(size_t len, double *xchacha_us, double *aes_us)
{
    static uint8_t m[2048], tag[16], key[32], nonce[24];
    enum { N = 20000 };
    double t0 = cpu_now();
    for (int i = 0; i < N; i++)
        crypto_aead_xchacha20poly1305_ietf_encrypt_detached(m, tag, NULL, m, len, m, 40, NULL,
                                                            nonce, key);
    double t1 = cpu_now();
    *xchacha_us = (t1 - t0) / N * 1e6;
    *aes_us = 0;
    if (!seal_aes_available())
        return;
    for (int i = 0; i < N; i++)
        crypto_aead_aes256gcm_encrypt_detached(m, tag, NULL, m, len, m, 40, NULL, nonce, key);
    *aes_us = (cpu_now() - t1) / N * 1e6;
}

typedef struct result {
    double cpu_s, msgs_per_s, pkts_per_s, out_bytes_per_pkt;
    uint64_t pkts, msgs, alive, malformed, refused;
    uint64_t verified, cached, signed_, ident_refused;
    uint64_t events;
    double events_per_s;
} result;

static void run(uint32_t members, double seconds, bool encrypt, bool identity, uint32_t news,
                uint8_t cipher, result *r)
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
        s.seal_cipher = cipher;
    }
    ids id = {.on = identity};
    if (identity) {
        s.identity = true;
        memset(s.identity_seed, 0xee, sizeof(s.identity_seed));
        id.pk = calloc(members, sizeof(*id.pk));
        id.sk = calloc(members, sizeof(*id.sk));
        id.alive_sig = calloc(members, sizeof(*id.alive_sig));
        for (uint32_t i = 0; i < members; i++)
            crypto_sign_keypair(id.pk[i], id.sk[i]);
    }
    rumor_node *n;
    uint64_t now = 1000;
    if (rumor_node_new(&n, &s, now) != 0)
        abort();
    uint32_t *inc = calloc(members, sizeof(*inc));
    senders ss = {calloc(members, sizeof(seal_state)), calloc(members, sizeof(bool)), members,
                  cipher};
    senders *sp = encrypt ? &ss : NULL;
    /* Teach the node its members. */
    for (uint32_t i = 1; i < members; i++) {
        uint8_t b[512];
        buf_writer w;
        buf_writer_init_fixed(&w, b, sizeof(b));
        seal_state *st = sender_of(sp, i);
        size_t env = dgram_begin(&w, st);
        char name[32];
        snprintf(name, sizeof(name), "node-%u", i);
        rumor_addr a = addr_of(i);
        wire_str nm = wire_str_of(name, strlen(name));
        if (id.on)
            sign_alive(&id, i, nm, 0, &a);
        put_alive(&w, &id, i, nm, 0, &a);
        dgram_end(&w, st, env);
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
            build(&pk[k], round * NPKT + k, members, inc, sp, &id, news);
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
    r->events = st.user_events_delivered - before.user_events_delivered;
    r->events_per_s = (double)r->events / elapsed;
    r->verified = st.ident_verified - before.ident_verified;
    r->cached = st.ident_cached - before.ident_cached;
    r->signed_ = st.ident_signed - before.ident_signed;
    r->ident_refused = 0;
    for (int i = 0; i < RUMOR_IDENT_REFUSAL_COUNT; i++)
        r->ident_refused += st.ident_refused[i];
    rumor_node_del(n);
    for (uint32_t i = 0; i < members; i++)
        if (ss.ready[i])
            seal_free(&ss.st[i], &rumor_alloc_libc);
    free(ss.st);
    free(ss.ready);
    free(inc);
    free(pk);
    free(id.pk);
    free(id.sk);
    free(id.alive_sig);
}

static void print(const char *label, uint32_t members, uint32_t news, const result *r)
{
    printf("\"%s\": {\"members\": %u, \"news_per_packet\": %u, \"cpu_s\": %.3f, "
           "\"packets\": %llu, \"messages\": %llu, \"messages_per_cpu_s\": %.0f, "
           "\"packets_per_cpu_s\": %.0f, \"out_bytes_per_packet\": %.1f, \"alive\": %llu, "
           "\"dropped_malformed\": %llu, \"refused\": %llu, \"verified\": %llu, "
           "\"cached\": %llu, \"signed\": %llu, \"ident_refused\": %llu, "
           "\"events_delivered\": %llu, \"events_per_cpu_s\": %.0f}",
           label, members, news, r->cpu_s, (unsigned long long)r->pkts, (unsigned long long)r->msgs,
           r->msgs_per_s, r->pkts_per_s, r->out_bytes_per_pkt, (unsigned long long)r->alive,
           (unsigned long long)r->malformed, (unsigned long long)r->refused,
           (unsigned long long)r->verified, (unsigned long long)r->cached,
           (unsigned long long)r->signed_, (unsigned long long)r->ident_refused,
           (unsigned long long)r->events, r->events_per_s);
}

int main(int argc, char **argv)
{
    uint32_t members = 1000, news = 6;
    double seconds = 3.0;
    bool encrypt = false, identity = false, both = false, all = false, each = false;
    uint8_t cipher = RUMOR_SEAL_CIPHER_AUTO;
    int pos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--encrypt") == 0)
            encrypt = true;
        else if (strcmp(argv[i], "--identity") == 0)
            identity = true;
        else if (strcmp(argv[i], "--both") == 0)
            both = true;
        else if (strcmp(argv[i], "--all") == 0)
            all = true;
        else if (strcmp(argv[i], "--events") == 0)
            events_mode = true;
        else if (strcmp(argv[i], "--cipher") == 0 && i + 1 < argc) {
            const char *c = argv[++i];
            each = strcmp(c, "each") == 0;
            cipher = strcmp(c, "xchacha") == 0        ? RUMOR_SEAL_CIPHER_XCHACHA
                     : strcmp(c, "aesgcm") == 0       ? RUMOR_SEAL_CIPHER_AESGCM
                     : strcmp(c, "auto") == 0 || each ? RUMOR_SEAL_CIPHER_AUTO
                                                      : 0xff;
        } else if (strcmp(argv[i], "--news") == 0 && i + 1 < argc)
            news = (uint32_t)atoi(argv[++i]);
        else if (pos++ == 0)
            members = (uint32_t)atoi(argv[i]);
        else
            seconds = atof(argv[i]);
    }
    if (members < 2 || seconds <= 0 || news > 12 || cipher == 0xff) {
        fprintf(stderr, "usage: bench_engine [members>=2] [seconds>0] [--encrypt] [--identity] "
                        "[--both | --all] [--news 0..12] [--events]\n"
                        "       [--cipher auto|xchacha|aesgcm|each]\n");
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    if ((each || cipher == RUMOR_SEAL_CIPHER_AESGCM) && !seal_aes_available()) {
        fprintf(stderr, "bench_engine: this CPU does not run AES-256-GCM\n");
        return 1;
    }
    /* The modes to run, in order: plain, sealed, signed, sealed + signed. */
    static const char *const labels[4] = {"plain", "sealed", "signed", "sealed_signed"};
    bool want[4] = {false, false, false, false};
    if (all)
        want[0] = want[1] = want[2] = want[3] = true;
    else if (both)
        want[0] = want[1] = true;
    else
        want[(encrypt ? 1 : 0) + (identity ? 2 : 0)] = true;
    /* With --cipher each, every sealed mode runs once per cipher. */
    static const uint8_t each_ciphers[2] = {RUMOR_SEAL_CIPHER_XCHACHA, RUMOR_SEAL_CIPHER_AESGCM};
    static const char *const cipher_names[2] = {"xchacha", "aesgcm"};
    result res[8], plain;
    char names[8][32];
    size_t nres = 0;
    const char *sep = "";
    printf("{");
    for (int m = 0; m < 4; m++) {
        if (!want[m])
            continue;
        int variants = (m & 1) && each ? 2 : 1;
        for (int v = 0; v < variants; v++) {
            uint8_t c = each ? each_ciphers[v] : cipher;
            if (variants > 1)
                snprintf(names[nres], sizeof(names[nres]), "%s_%s", labels[m], cipher_names[v]);
            else
                snprintf(names[nres], sizeof(names[nres]), "%s", labels[m]);
            run(members, seconds, (m & 1) != 0, (m & 2) != 0, news, c, &res[nres]);
            printf("%s", sep);
            print(names[nres], members, news, &res[nres]);
            sep = ", ";
            if (m == 0)
                plain = res[nres];
            nres++;
        }
    }
    if (want[0])
        for (size_t i = 1; i < nres; i++)
            printf(", \"%s_over_plain\": %.3f", names[i], res[i].msgs_per_s / plain.msgs_per_s);
    if (want[1] || want[3]) {
        double x_us, a_us;
        cipher_costs(1250, &x_us, &a_us);
        printf(", \"seal_bytes_per_datagram\": %u, \"seal_bytes_per_frame\": %u, "
               "\"xchacha_us_per_1250_bytes\": %.2f, \"aesgcm_us_per_1250_bytes\": %.2f",
               (unsigned)SEAL_DGRAM_OVERHEAD, (unsigned)SEAL_FRAME_OVERHEAD, x_us, a_us);
    }
    if (want[2] || want[3]) {
        double sign_us, verify_us;
        crypto_costs(&sign_us, &verify_us);
        printf(", \"sign_us\": %.1f, \"verify_us\": %.1f", sign_us, verify_us);
    }
    printf("}\n");
    return 0;
}
