/* The bounded reader and writer (core/buf.c): varints, fixed-width integers, length-prefixed
 * bytes, truncation at every offset, writer caps and the length patch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"

static const uint64_t edge_values[] = {
    0,
    1,
    127,
    128,
    255,
    16383,
    16384,
    2097151,
    2097152,
    UINT32_MAX - 1,
    UINT32_MAX,
    (uint64_t)UINT32_MAX + 1,
    UINT64_MAX >> 1,
    (UINT64_MAX >> 1) + 1,
    UINT64_MAX - 1,
    UINT64_MAX,
};

static size_t encode(uint64_t v, uint8_t *out, size_t cap)
{
    buf_writer w;
    buf_writer_init_fixed(&w, out, cap);
    buf_put_varint(&w, v);
    assert_false(w.failed);
    return w.len;
}

static void test_varint_round_trip(void **ctx)
{
    (void)ctx;
    for (size_t i = 0; i < sizeof(edge_values) / sizeof(edge_values[0]); i++) {
        uint8_t b[16];
        uint64_t v = edge_values[i], got = 0;
        size_t n = encode(v, b, sizeof(b));
        assert_int_equal(n, buf_varint_size(v));
        buf_reader r;
        buf_reader_init(&r, b, n);
        assert_true(buf_get_varint(&r, &got));
        assert_true(got == v);
        assert_int_equal(buf_reader_left(&r), 0);
    }
}

static void test_varint_exact_bytes(void **ctx)
{
    (void)ctx;
    uint8_t b[16];
    static const uint8_t v0[] = {0x00};
    static const uint8_t v127[] = {0x7f};
    static const uint8_t v128[] = {0x80, 0x01};
    static const uint8_t v300[] = {0xac, 0x02};
    static const uint8_t v32[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    static const uint8_t v64[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    assert_int_equal(encode(0, b, sizeof(b)), 1);
    assert_memory_equal(b, v0, 1);
    assert_int_equal(encode(127, b, sizeof(b)), 1);
    assert_memory_equal(b, v127, 1);
    assert_int_equal(encode(128, b, sizeof(b)), 2);
    assert_memory_equal(b, v128, 2);
    assert_int_equal(encode(300, b, sizeof(b)), 2);
    assert_memory_equal(b, v300, 2);
    assert_int_equal(encode(UINT32_MAX, b, sizeof(b)), 5);
    assert_memory_equal(b, v32, 5);
    assert_int_equal(encode(UINT64_MAX, b, sizeof(b)), 10);
    assert_memory_equal(b, v64, 10);
    assert_int_equal(buf_varint_size(0), 1);
    assert_int_equal(buf_varint_size(127), 1);
    assert_int_equal(buf_varint_size(128), 2);
    assert_int_equal(buf_varint_size(UINT32_MAX), 5);
    assert_int_equal(buf_varint_size(UINT64_MAX), 10);
}

static bool decode(const uint8_t *p, size_t n, uint64_t *v)
{
    buf_reader r;
    buf_reader_init(&r, p, n);
    return buf_get_varint(&r, v);
}

static void test_varint_rejects(void **ctx)
{
    (void)ctx;
    uint64_t v;
    /* Eleven bytes: longer than any 64-bit value needs. */
    static const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                     0x80, 0x80, 0x80, 0x80, 0x00};
    assert_false(decode(eleven, sizeof(eleven), &v));
    /* Ten bytes whose last one carries more than the 64th bit: overflow. */
    static const uint8_t over[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    assert_false(decode(over, sizeof(over), &v));
    static const uint8_t over7f[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    assert_false(decode(over7f, sizeof(over7f), &v));
    /* Ten bytes with the continuation bit still set on the tenth. */
    static const uint8_t cont[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x81};
    assert_false(decode(cont, sizeof(cont), &v));
    /* Non-minimal encodings within ten bytes are accepted (the spec lets decoders take them;
     * encoders always write the minimal form). */
    static const uint8_t nonmin[] = {0x80, 0x00};
    assert_true(decode(nonmin, sizeof(nonmin), &v));
    assert_true(v == 0);
    static const uint8_t nonmin10[] = {0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    assert_true(decode(nonmin10, sizeof(nonmin10), &v));
    assert_true(v == 1);
}

static void test_varint_truncated_everywhere(void **ctx)
{
    (void)ctx;
    for (size_t i = 0; i < sizeof(edge_values) / sizeof(edge_values[0]); i++) {
        uint8_t b[16];
        size_t n = encode(edge_values[i], b, sizeof(b));
        for (size_t cut = 0; cut < n; cut++) {
            buf_reader r;
            uint64_t v = 0xdead;
            buf_reader_init(&r, b, cut);
            assert_false(buf_get_varint(&r, &v));
            assert_true(v == 0xdead); /* the output is untouched on failure */
        }
    }
}

static void test_varint_max_and_u32v(void **ctx)
{
    (void)ctx;
    uint8_t b[16];
    buf_reader r;
    uint64_t v;
    uint32_t u;
    size_t n = encode(1000, b, sizeof(b));
    buf_reader_init(&r, b, n);
    assert_true(buf_get_varint_max(&r, 1000, &v));
    assert_true(v == 1000);
    buf_reader_init(&r, b, n);
    assert_false(buf_get_varint_max(&r, 999, &v));
    n = encode(UINT32_MAX, b, sizeof(b));
    buf_reader_init(&r, b, n);
    assert_true(buf_get_u32v(&r, &u));
    assert_true(u == UINT32_MAX);
    n = encode((uint64_t)UINT32_MAX + 1, b, sizeof(b));
    buf_reader_init(&r, b, n);
    assert_false(buf_get_u32v(&r, &u));
}

static void test_fixed_width(void **ctx)
{
    (void)ctx;
    uint8_t b[32];
    buf_writer w;
    buf_writer_init_fixed(&w, b, sizeof(b));
    buf_put_u8(&w, 0xab);
    buf_put_u16be(&w, 0x1234);
    buf_put_u32be(&w, 0xdeadbeef);
    buf_put_u64be(&w, 0x0102030405060708ull);
    assert_false(w.failed);
    static const uint8_t want[] = {0xab, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01,
                                   0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
    assert_int_equal(w.len, sizeof(want));
    assert_memory_equal(b, want, sizeof(want));
    buf_reader r;
    buf_reader_init(&r, b, w.len);
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    assert_true(buf_get_u8(&r, &u8));
    assert_true(buf_get_u16be(&r, &u16));
    assert_true(buf_get_u32be(&r, &u32));
    assert_true(buf_get_u64be(&r, &u64));
    assert_int_equal(u8, 0xab);
    assert_int_equal(u16, 0x1234);
    assert_true(u32 == 0xdeadbeef);
    assert_true(u64 == 0x0102030405060708ull);
    assert_false(buf_get_u8(&r, &u8));
    /* Every getter fails cleanly one byte short, without moving the reader. */
    for (size_t cut = 0; cut < 8; cut++) {
        buf_reader_init(&r, want + 7, cut);
        assert_false(buf_get_u64be(&r, &u64));
        if (cut < 4) {
            buf_reader_init(&r, want, cut);
            assert_false(buf_get_u32be(&r, &u32));
            assert_int_equal(r.off, 0);
        }
        if (cut < 2) {
            buf_reader_init(&r, want, cut);
            assert_false(buf_get_u16be(&r, &u16));
            assert_int_equal(r.off, 0);
        }
    }
}

static void test_lbytes(void **ctx)
{
    (void)ctx;
    uint8_t b[64];
    buf_writer w;
    buf_writer_init_fixed(&w, b, sizeof(b));
    buf_put_lbytes(&w, "hello", 5);
    buf_put_lbytes(&w, NULL, 0);
    assert_false(w.failed);
    assert_int_equal(w.len, 7);
    static const uint8_t want[] = {5, 'h', 'e', 'l', 'l', 'o', 0};
    assert_memory_equal(b, want, sizeof(want));
    buf_reader r;
    const uint8_t *p;
    size_t n;
    buf_reader_init(&r, b, w.len);
    assert_true(buf_get_lbytes(&r, 5, &p, &n));
    assert_int_equal(n, 5);
    assert_memory_equal(p, "hello", 5);
    assert_true(buf_get_lbytes(&r, 0, &p, &n));
    assert_int_equal(n, 0);
    /* Over the bound. */
    buf_reader_init(&r, b, w.len);
    assert_false(buf_get_lbytes(&r, 4, &p, &n));
    /* Truncated at every offset inside the first string. */
    for (size_t cut = 0; cut < 6; cut++) {
        buf_reader_init(&r, b, cut);
        assert_false(buf_get_lbytes(&r, 64, &p, &n));
    }
    /* A length larger than the rest of the input. */
    static const uint8_t liar[] = {0xff, 0x01, 'x'};
    buf_reader_init(&r, liar, sizeof(liar));
    assert_false(buf_get_lbytes(&r, SIZE_MAX, &p, &n));
    /* A 64-bit length never wraps the bounds check. */
    static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    buf_reader_init(&r, huge, sizeof(huge));
    assert_false(buf_get_lbytes(&r, SIZE_MAX, &p, &n));
    assert_false(buf_get_bytes(&r, SIZE_MAX, &p));
}

static void test_fixed_writer_latches(void **ctx)
{
    (void)ctx;
    uint8_t b[8];
    memset(b, 0xee, sizeof(b));
    buf_writer w;
    buf_writer_init_fixed(&w, b, 4);
    buf_put_u16be(&w, 0x0102);
    buf_put_u32be(&w, 0x03040506); /* does not fit in the 2 bytes left */
    assert_true(w.failed);
    assert_int_equal(w.len, 2);
    /* Latched: a put that would fit is refused too, so one check at the end is enough. */
    buf_put_u8(&w, 7);
    assert_int_equal(w.len, 2);
    assert_false(buf_reserve(&w, 1));
    assert_int_equal(b[2], 0xee);
    assert_int_equal(b[4], 0xee); /* never wrote past the cap */
    buf_writer_reset(&w);
    assert_false(w.failed);
    assert_int_equal(w.len, 0);
    buf_put_u32be(&w, 0x0a0b0c0d);
    assert_false(w.failed);
    assert_int_equal(w.len, 4);
    buf_put_u8(&w, 1);
    assert_true(w.failed);
    assert_int_equal(b[4], 0xee);
    /* Exactly full is fine. */
    buf_writer_init_fixed(&w, b, 4);
    buf_put_bytes(&w, "abcd", 4);
    assert_false(w.failed);
    buf_put_bytes(&w, "", 0); /* an empty put never fails */
    assert_false(w.failed);
}

static void test_growing_writer_cap(void **ctx)
{
    (void)ctx;
    buf_writer w;
    buf_writer_init(&w, &rumor_alloc_libc, 1000);
    for (int i = 0; i < 250; i++)
        buf_put_u32be(&w, (uint32_t)i);
    assert_false(w.failed);
    assert_int_equal(w.len, 1000);
    for (int i = 0; i < 250; i++) {
        buf_reader r;
        uint32_t v;
        buf_reader_init(&r, w.p + 4 * i, 4);
        assert_true(buf_get_u32be(&r, &v));
        assert_int_equal(v, i);
    }
    buf_put_u8(&w, 1);
    assert_true(w.failed);
    assert_int_equal(w.len, 1000);
    buf_writer_reset(&w);
    buf_put_u8(&w, 1);
    assert_false(w.failed);
    /* A huge reservation fails without overflowing len + n. */
    assert_false(buf_reserve(&w, SIZE_MAX));
    assert_true(w.failed);
    buf_writer_free(&w);
    assert_null(w.p);
}

static void test_patch(void **ctx)
{
    (void)ctx;
    uint8_t b[16];
    buf_writer w;
    buf_writer_init_fixed(&w, b, sizeof(b));
    buf_put_u32be(&w, 0);
    buf_put_bytes(&w, "xyz", 3);
    buf_patch_u32be(&w, 0, 0x01020304);
    static const uint8_t want[] = {1, 2, 3, 4, 'x', 'y', 'z'};
    assert_int_equal(w.len, 7);
    assert_memory_equal(b, want, 7);
    /* Out of range (would touch bytes not yet written): ignored. */
    buf_patch_u32be(&w, 4, 0xffffffff);
    assert_memory_equal(b, want, 7);
    buf_patch_u32be(&w, 3, 0x0a0b0c0d);
    static const uint8_t want2[] = {1, 2, 3, 0x0a, 0x0b, 0x0c, 0x0d};
    assert_memory_equal(b, want2, 7);
    /* After a failure the writer's contents are void; patching does nothing. */
    buf_put_bytes(&w, b, 16);
    assert_true(w.failed);
    buf_patch_u32be(&w, 0, 0);
    assert_memory_equal(b, want2, 7);
}

/*
 * buf_patch_u32be must not wrap its range check for off >= SIZE_MAX - 3 (it once did, writing
 * 4 bytes before the buffer). The storage sits 8 bytes into a larger array so that a stray write
 * would land in guard bytes (an assertion failure, not memory corruption).
 */
static void test_patch_offset_overflow(void **ctx)
{
    (void)ctx;
    uint8_t arena[32];
    memset(arena, 0xee, sizeof(arena));
    buf_writer w;
    buf_writer_init_fixed(&w, arena + 8, 16);
    buf_put_u64be(&w, 0);
    for (size_t back = 1; back <= 4; back++) {
        buf_patch_u32be(&w, SIZE_MAX - (back - 1), 0x11223344);
        for (size_t i = 0; i < 8; i++)
            assert_int_equal(arena[i], 0xee);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_varint_round_trip),
        cmocka_unit_test(test_varint_exact_bytes),
        cmocka_unit_test(test_varint_rejects),
        cmocka_unit_test(test_varint_truncated_everywhere),
        cmocka_unit_test(test_varint_max_and_u32v),
        cmocka_unit_test(test_fixed_width),
        cmocka_unit_test(test_lbytes),
        cmocka_unit_test(test_fixed_writer_latches),
        cmocka_unit_test(test_growing_writer_cap),
        cmocka_unit_test(test_patch),
        cmocka_unit_test(test_patch_offset_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
