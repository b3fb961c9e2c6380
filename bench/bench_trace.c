/*
 * Engine throughput on recorded traffic: replays traces that rumor-sim wrote of one node's
 * inputs (rumor-sim --record FILE --record-node I; format in src/sim/sim_trace.h) into a fresh
 * engine built from the recorded settings (same name, seed, keyring, seal secret and epoch,
 * identity seed), feeding every datagram, stream chunk, tick and host call at its virtual time
 * and draining outputs as the simulator did. Not a test: prints one JSON line per trace.
 *
 * First each trace is replayed once with every output hashed: the replay must reproduce every
 * checkpoint the simulator wrote (same outputs, same bytes, same order), or the line says where
 * it diverged. Then it is replayed `--reps` times (at least, until `--min-cpu` seconds of CPU
 * were spent) without hashing, and the CPU time (CLOCK_PROCESS_CPUTIME_ID) of the traffic
 * records is measured: everything but creating the engine and the warm start's restores, which
 * are set-up. Rates are per CPU second of traffic, the median over repetitions; `ratio_packets`
 * and `ratio_messages` are the rates against the first trace named (give the plain recording
 * of the same scenario first; the other modes' traces are other runs of the same scenario, so
 * their packet and message counts differ a little).
 *
 * Usage: bench_trace [--reps N] [--min-cpu SECONDS] [--cipher] TRACE [TRACE...]
 *   --cipher  also prints the CPU cost of one seal and open (libsodium) at 40, 100 and 1,000
 *             bytes, the fixed and per-byte parts: XChaCha20-Poly1305, and AES-256-GCM as the
 *             engine calls it (seal from the expanded state of its own subkey, open from a
 *             peer's 32-byte subkey, so with the key schedule each time), with 32 bytes of
 *             associated data as a sealed datagram has; then the per-contact hashes: deriving a
 *             peer's AES-256-GCM subkey (BLAKE2b-256 keyed, 2 compressions) and a node id
 *             (BLAKE2b-128 of a name, 1 compression).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "sim_trace.h"

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void json_str(const char *v)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

#define REPS_MAX 100000

static void cipher_cost(void)
{
    static const size_t sizes[] = {40, 100, 1000};
    unsigned char k[32], n[24], m[1000], c[1000 + 16];
    unsigned long long clen = 0;
    randombytes_buf(k, sizeof(k));
    randombytes_buf(n, sizeof(n));
    randombytes_buf(m, sizeof(m));
    printf("{\"cipher\":\"xchacha20poly1305\"");
    for (size_t s = 0; s < 3; s++) {
        const int reps = 200000;
        double t0 = cpu_now();
        for (int i = 0; i < reps; i++) {
            n[0] = (unsigned char)i;
            crypto_aead_xchacha20poly1305_ietf_encrypt(c, &clen, m, sizes[s], NULL, 0, NULL, n, k);
        }
        double t1 = cpu_now();
        for (int i = 0; i < reps; i++)
            if (crypto_aead_xchacha20poly1305_ietf_decrypt(m, NULL, NULL, c, clen, NULL, 0, n, k))
                abort();
        double t2 = cpu_now();
        printf(",\"seal_%zu_us\":%.3f,\"open_%zu_us\":%.3f", sizes[s], (t1 - t0) / reps * 1e6,
               sizes[s], (t2 - t1) / reps * 1e6);
    }
    printf("}\n");

    /* AES-256-GCM, when this CPU runs it: as seal.c seals (afternm) and opens (key). */
    if (!crypto_aead_aes256gcm_is_available())
        return;
    CRYPTO_ALIGN(16) crypto_aead_aes256gcm_state st;
    unsigned char n12[12] = {0}, ad[32], tag[16];
    randombytes_buf(ad, sizeof(ad));
    crypto_aead_aes256gcm_beforenm(&st, k);
    printf("{\"cipher\":\"aes256gcm\"");
    for (size_t s = 0; s < 3; s++) {
        const int reps = 200000;
        double t0 = cpu_now();
        for (int i = 0; i < reps; i++) {
            n12[11] = (unsigned char)i;
            crypto_aead_aes256gcm_encrypt_detached_afternm(c, tag, NULL, m, sizes[s], ad,
                                                           sizeof(ad), NULL, n12, &st);
        }
        double t1 = cpu_now();
        for (int i = 0; i < reps; i++)
            if (crypto_aead_aes256gcm_decrypt_detached(m, NULL, c, sizes[s], tag, ad, sizeof(ad),
                                                       n12, k))
                abort();
        double t2 = cpu_now();
        for (int i = 0; i < reps; i++)
            if (crypto_aead_aes256gcm_decrypt_detached_afternm(m, NULL, c, sizes[s], tag, ad,
                                                               sizeof(ad), n12, &st))
                abort();
        double t3 = cpu_now();
        printf(",\"seal_%zu_us\":%.3f,\"open_%zu_us\":%.3f,\"open_expanded_%zu_us\":%.3f", sizes[s],
               (t1 - t0) / reps * 1e6, sizes[s], (t2 - t1) / reps * 1e6, sizes[s],
               (t3 - t2) / reps * 1e6);
    }
    printf("}\n");

    /* The per-contact hashes (the same calls as seal.c's aes_subkey and seal_id). */
    static const char subkey_label[] = "rumor aes-256-gcm subkey v1";
    static const char id_label[] = "rumor node id v1";
    unsigned char out[32], name[12] = "node-0000007";
    const int reps = 200000;
    double t0 = cpu_now();
    for (int i = 0; i < reps; i++) {
        crypto_generichash_state h;
        n[0] = (unsigned char)i;
        crypto_generichash_init(&h, k, 32, 32);
        crypto_generichash_update(&h, (const unsigned char *)subkey_label, strlen(subkey_label));
        crypto_generichash_update(&h, n, 16);
        crypto_generichash_final(&h, out, 32);
    }
    double t1 = cpu_now();
    for (int i = 0; i < reps; i++) {
        crypto_generichash_state h;
        name[11] = (unsigned char)i;
        crypto_generichash_init(&h, NULL, 0, 16);
        crypto_generichash_update(&h, (const unsigned char *)id_label, strlen(id_label));
        crypto_generichash_update(&h, name, sizeof(name));
        crypto_generichash_final(&h, out, 16);
    }
    double t2 = cpu_now();
    printf("{\"hash\":\"blake2b\",\"aes_subkey_us\":%.3f,\"node_id_us\":%.3f}\n",
           (t1 - t0) / reps * 1e6, (t2 - t1) / reps * 1e6);
}

int main(int argc, char **argv)
{
    int reps = 5;
    double min_cpu = 1.0;
    int first = 1;
    bool cipher = false;
    while (first < argc && argv[first][0] == '-') {
        if (!strcmp(argv[first], "--cipher")) {
            cipher = true;
            first++;
        } else if (!strcmp(argv[first], "--reps") && first + 1 < argc) {
            reps = atoi(argv[first + 1]);
            first += 2;
        } else if (!strcmp(argv[first], "--min-cpu") && first + 1 < argc) {
            min_cpu = atof(argv[first + 1]);
            first += 2;
        } else {
            break;
        }
    }
    if ((first >= argc && !cipher) || reps < 1 || reps > REPS_MAX || !(min_cpu >= 0)) {
        fprintf(stderr, "usage: bench_trace [--reps N] [--min-cpu SECONDS] [--cipher] "
                        "TRACE [TRACE...]\n");
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "bench_trace: libsodium failed to initialize\n");
        return 1;
    }
    if (cipher)
        cipher_cost();
    double base_pps = 0, base_mps = 0;
    int status = 0;
    for (int f = first; f < argc; f++) {
        sim_trace t;
        char err[256];
        if (sim_trace_load(&t, argv[f], err, sizeof(err)) != 0) {
            fprintf(stderr, "bench_trace: %s: %s\n", argv[f], err);
            sim_trace_free(&t);
            return 1;
        }
        sim_replay_result v;
        if (sim_trace_replay(&t, true, NULL, &v) != 0) {
            fprintf(stderr, "bench_trace: %s: %s\n", argv[f], v.error);
            sim_trace_free(&t);
            return 1;
        }
        if (v.diverged_at != SIZE_MAX)
            status = 3;
        static double rate[REPS_MAX], cpu[REPS_MAX];
        double spent = 0;
        int n = 0;
        sim_replay_result r;
        while (n < REPS_MAX && (n < reps || spent < min_cpu)) {
            sim_trace_replay(&t, false, cpu_now, &r);
            cpu[n] = r.traffic_s;
            rate[n] = r.traffic_s > 0 ? (double)r.packets / r.traffic_s : 0;
            spent += r.traffic_s;
            n++;
        }
        qsort(rate, (size_t)n, sizeof(rate[0]), cmp_double);
        qsort(cpu, (size_t)n, sizeof(cpu[0]), cmp_double);
        double pps = rate[n / 2], cpu_med = cpu[n / 2];
        double mps = pps * ((double)v.messages_in / (v.packets ? (double)v.packets : 1.0));
        if (f == first) {
            base_pps = pps;
            base_mps = mps;
        }
        double virt_s = t.n ? (double)t.v[t.n - 1].now / 1000.0 : 0;
        const char *mode = v.sealed && v.signed_ ? "sealed_signed"
                           : v.sealed            ? "sealed"
                           : v.signed_           ? "signed"
                                                 : "plain";
        printf("{\"file\":");
        json_str(argv[f]);
        printf(",\"note\":");
        json_str(t.note);
        printf(",\"node\":%u,\"mode\":\"%s\",\"records\":%zu,\"virtual_s\":%.1f,\"lives\":%llu",
               t.node, mode, t.n, virt_s, (unsigned long long)v.lives);
        printf(
            ",\"packets\":%llu,\"packet_bytes\":%llu,\"stream_chunks\":%llu,\"stream_bytes\":%llu"
            ",\"ticks\":%llu,\"messages_in\":%llu,\"dropped\":%llu",
            (unsigned long long)v.packets, (unsigned long long)v.packet_bytes,
            (unsigned long long)v.stream_chunks, (unsigned long long)v.stream_bytes,
            (unsigned long long)v.ticks, (unsigned long long)v.messages_in,
            (unsigned long long)v.dropped);
        printf(",\"verified\":%llu,\"cached\":%llu,\"signed\":%llu,\"verify_fraction\":%.4f",
               (unsigned long long)v.ident_verified, (unsigned long long)v.ident_cached,
               (unsigned long long)v.ident_signed,
               v.messages_in ? (double)v.ident_verified / (double)v.messages_in : 0.0);
        printf(",\"outputs\":%llu,\"checkpoints\":%llu,\"deterministic\":%s",
               (unsigned long long)v.outputs, (unsigned long long)v.checkpoints,
               v.diverged_at == SIZE_MAX ? "true" : "false");
        if (v.diverged_at != SIZE_MAX)
            printf(",\"diverged_at_record\":%zu", v.diverged_at);
        printf(",\"reps\":%d,\"cpu_s\":%.4f,\"packets_per_cpu_s\":%.0f,\"messages_per_cpu_s\":%.0f"
               ",\"ratio_packets\":%.4f,\"ratio_messages\":%.4f}\n",
               n, cpu_med, pps, mps, base_pps > 0 ? pps / base_pps : 0.0,
               base_mps > 0 ? mps / base_mps : 0.0);
        fflush(stdout);
        sim_trace_free(&t);
    }
    return status;
}
