#include "core/buf.h"

#include <string.h>

void buf_reader_init(buf_reader *r, const uint8_t *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->off = 0;
}

size_t buf_reader_left(const buf_reader *r)
{
    return r->len - r->off;
}

bool buf_get_bytes(buf_reader *r, size_t n, const uint8_t **out)
{
    if (buf_reader_left(r) < n)
        return false;
    *out = r->p + r->off;
    r->off += n;
    return true;
}

bool buf_get_u8(buf_reader *r, uint8_t *out)
{
    if (buf_reader_left(r) < 1)
        return false;
    *out = r->p[r->off++];
    return true;
}

bool buf_get_u16be(buf_reader *r, uint16_t *out)
{
    const uint8_t *b;
    if (!buf_get_bytes(r, 2, &b))
        return false;
    *out = (uint16_t)((unsigned)b[0] << 8 | b[1]);
    return true;
}

bool buf_get_u32be(buf_reader *r, uint32_t *out)
{
    const uint8_t *b;
    if (!buf_get_bytes(r, 4, &b))
        return false;
    *out = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    return true;
}

bool buf_get_u64be(buf_reader *r, uint64_t *out)
{
    uint32_t hi, lo;
    if (!buf_get_u32be(r, &hi) || !buf_get_u32be(r, &lo))
        return false;
    *out = (uint64_t)hi << 32 | lo;
    return true;
}

bool buf_get_varint(buf_reader *r, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 10; i++) {
        uint8_t b;
        if (!buf_get_u8(r, &b))
            return false;
        /* The tenth byte may only carry the 64th bit. */
        if (i == 9 && b > 1)
            return false;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

bool buf_get_varint_max(buf_reader *r, uint64_t max, uint64_t *out)
{
    uint64_t v;
    if (!buf_get_varint(r, &v) || v > max)
        return false;
    *out = v;
    return true;
}

bool buf_get_u32v(buf_reader *r, uint32_t *out)
{
    uint64_t v;
    if (!buf_get_varint_max(r, UINT32_MAX, &v))
        return false;
    *out = (uint32_t)v;
    return true;
}

bool buf_get_lbytes(buf_reader *r, size_t max, const uint8_t **out, size_t *len)
{
    uint64_t n;
    if (!buf_get_varint_max(r, max, &n) || !buf_get_bytes(r, (size_t)n, out))
        return false;
    *len = (size_t)n;
    return true;
}

void buf_writer_init(buf_writer *w, const rumor_allocator *a, size_t max)
{
    memset(w, 0, sizeof(*w));
    w->a = a;
    w->max = max;
}

void buf_writer_init_fixed(buf_writer *w, uint8_t *storage, size_t cap)
{
    memset(w, 0, sizeof(*w));
    w->p = storage;
    w->cap = cap;
    w->max = cap;
}

void buf_writer_free(buf_writer *w)
{
    if (w->a)
        rfree(w->a, w->p);
    w->p = NULL;
    w->len = w->cap = 0;
}

void buf_writer_reset(buf_writer *w)
{
    w->len = 0;
    w->failed = false;
}

bool buf_reserve(buf_writer *w, size_t n)
{
    if (w->failed)
        return false;
    if (n > w->max - w->len) {
        w->failed = true;
        return false;
    }
    if (w->len + n <= w->cap)
        return true;
    if (!w->a) {
        w->failed = true;
        return false;
    }
    void *p = w->p;
    size_t cap = w->cap;
    if (!rgrow(w->a, &p, &cap, w->len + n, 1)) {
        w->failed = true;
        return false;
    }
    w->p = p;
    w->cap = cap;
    return true;
}

void buf_put_bytes(buf_writer *w, const void *p, size_t n)
{
    if (n == 0 || !buf_reserve(w, n))
        return;
    memcpy(w->p + w->len, p, n);
    w->len += n;
}

void buf_put_u8(buf_writer *w, uint8_t v)
{
    buf_put_bytes(w, &v, 1);
}

void buf_put_u16be(buf_writer *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    buf_put_bytes(w, b, 2);
}

void buf_put_u32be(buf_writer *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    buf_put_bytes(w, b, 4);
}

void buf_put_u64be(buf_writer *w, uint64_t v)
{
    buf_put_u32be(w, (uint32_t)(v >> 32));
    buf_put_u32be(w, (uint32_t)v);
}

void buf_put_varint(buf_writer *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    do {
        uint8_t byte = (uint8_t)(v & 0x7f);
        v >>= 7;
        b[n++] = (uint8_t)(byte | (v ? 0x80 : 0));
    } while (v);
    buf_put_bytes(w, b, n);
}

void buf_put_lbytes(buf_writer *w, const void *p, size_t n)
{
    buf_put_varint(w, n);
    buf_put_bytes(w, p, n);
}

void buf_patch_u32be(buf_writer *w, size_t off, uint32_t v)
{
    if (w->failed || off > w->len || w->len - off < 4)
        return;
    w->p[off] = (uint8_t)(v >> 24);
    w->p[off + 1] = (uint8_t)(v >> 16);
    w->p[off + 2] = (uint8_t)(v >> 8);
    w->p[off + 3] = (uint8_t)v;
}

size_t buf_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}
