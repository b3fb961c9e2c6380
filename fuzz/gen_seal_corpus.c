/*
 * Writes the seed corpus of fuzz_seal (see that file for the input format): sealed datagrams
 * around each kind of message, inner headers written whole (right and wrong recipient, stream
 * kind, extension bytes, truncated), sealed stream requests, each also sealed with AES-256-GCM,
 * and real sealed packets (of both ciphers) for the raw mode. Not part of the build; run by hand:
 *
 *     cc -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude -Isrc fuzz/gen_seal_corpus.c \
 *        src/core/[a-z]*.c -lsodium -lm -o /tmp/gen_seal && /tmp/gen_seal fuzz/corpus/seal
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/buf.h"
#include "core/seal.h"
#include "core/wire.h"

static const char *outdir;
static const uint8_t KEY[1][RUMOR_KEY_BYTES] = {{1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                                 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                                 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}};

static void put_file(const char *name, const uint8_t *p, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/seed-%s", outdir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, len, f) != len) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

static wire_str S(const char *s)
{
    return wire_str_of(s, strlen(s));
}

static rumor_addr addr4(uint8_t last)
{
    rumor_addr a;
    memset(&a, 0, sizeof(a));
    a.len = 4;
    a.bytes[0] = 10;
    a.bytes[3] = last;
    return a;
}

typedef void (*body_fn)(buf_writer *w);
static void b_ping(buf_writer *w)
{
    wire_put_ping(w, 7, S("self"), S("m1"));
}
static void b_ping_req(buf_writer *w)
{
    rumor_addr a = addr4(12);
    wire_put_ping_req(w, 9, S("m2"), &a, true, S("m1"));
}
static void b_ack(buf_writer *w)
{
    wire_put_ack(w, WIRE_ACK, 1);
    wire_put_ack(w, WIRE_NACK, 2);
}
static void b_alive(buf_writer *w)
{
    rumor_addr a = addr4(14);
    wire_put_alive(w, 3, S("m4"), &a, S("role=web"));
}
static void b_accuse(buf_writer *w)
{
    wire_put_accuse(w, WIRE_SUSPECT, 1, S("m2"), S("m1"));
    wire_put_accuse(w, WIRE_FAILED, 1, S("m3"), S("m1"));
    wire_put_accuse(w, WIRE_LEFT, 2, S("m1"), S(""));
}
static void b_unknown(buf_writer *w)
{
    buf_put_u8(w, 200);
    buf_put_varint(w, 2);
    buf_put_u8(w, 1);
    buf_put_u8(w, 2);
}
static void b_pushpull(buf_writer *w)
{
    rumor_addr a = addr4(11);
    wire_member m = {S("m1"), a, 4, 0, S("")};
    wire_put_pushpull_begin(w, WIRE_PP_JOIN, S("m1"), 1, wire_member_size(&m));
    wire_put_member(w, &m);
    wire_put_pushpull_end(w, 0x1122334455667788ull);
}
static void b_pp_digest(buf_writer *w)
{
    wire_put_pushpull_begin(w, WIRE_PP_DIGEST, S("m1"), 0, 0);
    wire_put_pushpull_end(w, 42);
}

static size_t body(body_fn f, uint8_t *out, size_t cap)
{
    buf_writer w;
    buf_writer_init_fixed(&w, out, cap);
    f(&w);
    return w.len;
}

/* The inner header of a datagram from m1 (epoch 5000) to `dest`, written whole; the fuzz target's
 * node ("self") lives at epoch 7000. */
static void inner_e(buf_writer *w, uint8_t flags, const char *dest, uint64_t dest_epoch, size_t ext)
{
    buf_put_u8(w, flags);
    buf_put_u64be(w, 5000);
    buf_put_u64be(w, seal_id("m1", 2));
    buf_put_u64be(w, seal_id(dest, strlen(dest)));
    buf_put_u64be(w, dest_epoch);
    buf_put_varint(w, ext);
    for (size_t i = 0; i < ext; i++)
        buf_put_u8(w, (uint8_t)i);
}

static void inner(buf_writer *w, uint8_t flags, const char *dest, size_t ext)
{
    inner_e(w, flags, dest, 7000, ext);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    outdir = argv[1];
    static const struct {
        const char *name;
        body_fn f;
    } bodies[] = {{"ping", b_ping},         {"ping-req", b_ping_req},  {"ack", b_ack},
                  {"alive", b_alive},       {"accuse", b_accuse},      {"unknown", b_unknown},
                  {"pushpull", b_pushpull}, {"pp-digest", b_pp_digest}};
    uint8_t buf[4096], b[2048];
    buf_writer w;
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        size_t bl = body(bodies[i].f, b, sizeof(b));
        char name[64];
        /* Mode 1, the harness writes the inner header. */
        buf_writer_init_fixed(&w, buf, sizeof(buf));
        buf_put_u8(&w, 1);
        buf_put_u8(&w, 1);
        buf_put_bytes(&w, b, bl);
        snprintf(name, sizeof(name), "dgram-%s", bodies[i].name);
        put_file(name, w.p, w.len);
        /* Mode 1, whole plaintext. */
        buf_writer_init_fixed(&w, buf, sizeof(buf));
        buf_put_u8(&w, 1);
        buf_put_u8(&w, 0);
        inner(&w, SEAL_KIND_DGRAM, "self", 0);
        buf_put_bytes(&w, b, bl);
        snprintf(name, sizeof(name), "inner-%s", bodies[i].name);
        put_file(name, w.p, w.len);
        /* Mode 1, whole plaintext naming an earlier life of the node (0: first contact). */
        for (int e = 0; e < 2; e++) {
            buf_writer_init_fixed(&w, buf, sizeof(buf));
            buf_put_u8(&w, 1);
            buf_put_u8(&w, 0);
            inner_e(&w, SEAL_KIND_DGRAM, "self", e ? 6999 : 0, 0);
            buf_put_bytes(&w, b, bl);
            snprintf(name, sizeof(name), "stale-epoch%s-%s", e ? "-old" : "-0", bodies[i].name);
            put_file(name, w.p, w.len);
        }
        /* Mode 2: one request frame with the harness's inner header. */
        buf_writer_init_fixed(&w, buf, sizeof(buf));
        buf_put_u8(&w, 2);
        buf_put_u16be(&w, (uint16_t)bl);
        buf_put_u8(&w, 1);
        buf_put_bytes(&w, b, bl);
        snprintf(name, sizeof(name), "stream-%s", bodies[i].name);
        put_file(name, w.p, w.len);
        /* The same datagram and frame sealed with AES-256-GCM (bit 1 of the choice byte). */
        buf_writer_init_fixed(&w, buf, sizeof(buf));
        buf_put_u8(&w, 1);
        buf_put_u8(&w, 3);
        buf_put_bytes(&w, b, bl);
        snprintf(name, sizeof(name), "aes-dgram-%s", bodies[i].name);
        put_file(name, w.p, w.len);
        buf_writer_init_fixed(&w, buf, sizeof(buf));
        buf_put_u8(&w, 2);
        buf_put_u16be(&w, (uint16_t)bl);
        buf_put_u8(&w, 3);
        buf_put_bytes(&w, b, bl);
        snprintf(name, sizeof(name), "aes-stream-%s", bodies[i].name);
        put_file(name, w.p, w.len);
    }
    size_t pl = body(b_ping, b, sizeof(b));
    static const struct {
        const char *name, *dest;
        uint8_t flags;
        size_t ext;
    } inners[] = {{"other-dest", "m2", SEAL_KIND_DGRAM, 0},
                  {"kind-opener", "self", SEAL_KIND_OPENER, 0},
                  {"kind-3", "self", 3, 0},
                  {"reserved-bits", "self", 0xfc, 0},
                  {"extension", "self", SEAL_KIND_DGRAM, 5}};
    for (size_t i = 0; i < sizeof(inners) / sizeof(inners[0]); i++) {
        buf_writer_init_fixed(&w, buf, sizeof(buf));
        buf_put_u8(&w, 1);
        buf_put_u8(&w, 0);
        inner(&w, inners[i].flags, inners[i].dest, inners[i].ext);
        buf_put_bytes(&w, b, pl);
        char name[64];
        snprintf(name, sizeof(name), "inner-%s", inners[i].name);
        put_file(name, w.p, w.len);
    }
    /* Truncated inner headers. */
    for (size_t cut = 0; cut < SEAL_INNER_DGRAM; cut += 5) {
        buf_writer_init_fixed(&w, buf, sizeof(buf));
        buf_put_u8(&w, 1);
        buf_put_u8(&w, 0);
        inner(&w, SEAL_KIND_DGRAM, "self", 0);
        char name[64];
        snprintf(name, sizeof(name), "inner-cut-%zu", cut);
        put_file(name, w.p, 2 + cut);
    }
    /* Mode 2: a digest request, then a whole-plaintext frame with the wrong number. */
    buf_writer_init_fixed(&w, buf, sizeof(buf));
    buf_put_u8(&w, 2);
    size_t dl = body(b_pp_digest, b, sizeof(b));
    buf_put_u16be(&w, (uint16_t)dl);
    buf_put_u8(&w, 1);
    buf_put_bytes(&w, b, dl);
    buf_put_u16be(&w, (uint16_t)(SEAL_INNER_STREAM + pl));
    buf_put_u8(&w, 0);
    buf_put_u8(&w, SEAL_KIND_OPENER);
    buf_put_u64be(&w, 5000);
    buf_put_u64be(&w, seal_id("m1", 2));
    for (int i = 0; i < 2 * SEAL_TOKEN_BYTES; i++)
        buf_put_u8(&w, 0);
    buf_put_u32be(&w, 9);
    buf_put_u8(&w, 0);
    buf_put_bytes(&w, b, pl);
    put_file("stream-two-frames", w.p, w.len);

    /* Mode 0: real sealed packets of m1 (a later counter than the harness uses itself). */
    rumor_settings s;
    rumor_settings_default(&s, RUMOR_PROFILE_LOCAL);
    s.name = "m1";
    s.keys = KEY;
    s.nkeys = 1;
    memset(s.seal_secret, 0x50 + 11, sizeof(s.seal_secret));
    s.seal_epoch = 5000;
    seal_state st;
    memset(&st, 0, sizeof(st));
    if (seal_init(&st, &s, 0, 64) != 0)
        return 1;
    st.counter = 1000;
    buf_writer_init_fixed(&w, buf, sizeof(buf));
    buf_put_u8(&w, 0);
    wire_put_header(&w, NULL, 0, WIRE_FLAG_SEALED);
    seal_inner in = {.kind = SEAL_KIND_DGRAM, .dest = seal_id("self", 4), .dest_epoch = 7000};
    size_t env = seal_put_inner(&st, &w, &in);
    b_ping(&w);
    seal_close(&st, &w, 1, env, SEAL_CIPHER_XCHACHA);
    put_file("raw-dgram", w.p, w.len);
    buf_writer_init_fixed(&w, buf, sizeof(buf));
    buf_put_u8(&w, 0);
    buf_put_u32be(&w, 0);
    wire_put_header(&w, NULL, 0, WIRE_FLAG_SEALED);
    seal_inner hi = {.kind = SEAL_KIND_OPENER};
    seal_token(&st, hi.opener);
    env = seal_put_inner(&st, &w, &hi);
    seal_close(&st, &w, 5, env, SEAL_CIPHER_XCHACHA);
    buf_patch_u32be(&w, 1, (uint32_t)(w.len - 5));
    put_file("raw-hello", w.p, w.len);
    /* AES-256-GCM (needs a CPU with AES-NI), and its flag without the sealed flag. */
    if (seal_aes_available()) {
        buf_writer_init_fixed(&w, buf, sizeof(buf));
        buf_put_u8(&w, 0);
        wire_put_header(&w, NULL, 0, WIRE_FLAG_SEALED);
        env = seal_put_inner(&st, &w, &in);
        b_ping(&w);
        seal_close(&st, &w, 1, env, SEAL_CIPHER_AESGCM);
        put_file("raw-aes-dgram", w.p, w.len);
        w.p[4] = WIRE_FLAG_AESGCM;
        put_file("raw-aes-unsealed", w.p, w.len);
    }
    seal_free(&st, &rumor_alloc_libc);
    return 0;
}
