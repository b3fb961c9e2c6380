/*
 * One bounded reader and writer for every parse and serialization in rumor (after c-ares'
 * ares_buf). Readers never read past their end; every getter reports failure instead. Writers
 * grow through the node's allocator up to a hard cap and latch an error flag, so a sequence of
 * puts can be checked once at the end.
 */
#ifndef RUMOR_CORE_BUF_H
#define RUMOR_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/alloc.h"

typedef struct buf_reader {
    const uint8_t *p;
    size_t len;
    size_t off;
} buf_reader;

void buf_reader_init(buf_reader *r, const uint8_t *p, size_t len);
size_t buf_reader_left(const buf_reader *r);
bool buf_get_u8(buf_reader *r, uint8_t *out);
bool buf_get_u16be(buf_reader *r, uint16_t *out);
bool buf_get_u32be(buf_reader *r, uint32_t *out);
bool buf_get_u64be(buf_reader *r, uint64_t *out);
/* LEB128, at most 10 bytes; rejects values that overflow 64 bits. */
bool buf_get_varint(buf_reader *r, uint64_t *out);
/* A varint that must be <= max. */
bool buf_get_varint_max(buf_reader *r, uint64_t max, uint64_t *out);
bool buf_get_u32v(buf_reader *r, uint32_t *out);
/* Points `*out` at the next `n` bytes and skips them. */
bool buf_get_bytes(buf_reader *r, size_t n, const uint8_t **out);
/* varint length (<= max) followed by that many bytes. */
bool buf_get_lbytes(buf_reader *r, size_t max, const uint8_t **out, size_t *len);

typedef struct buf_writer {
    uint8_t *p;
    size_t len;
    size_t cap;
    size_t max; /* hard cap on len */
    bool failed;
    const rumor_allocator *a;
} buf_writer;

void buf_writer_init(buf_writer *w, const rumor_allocator *a, size_t max);
/* Writes into caller storage: never grows past `cap`. */
void buf_writer_init_fixed(buf_writer *w, uint8_t *storage, size_t cap);
void buf_writer_free(buf_writer *w);
void buf_writer_reset(buf_writer *w);
bool buf_reserve(buf_writer *w, size_t n);
void buf_put_u8(buf_writer *w, uint8_t v);
void buf_put_u16be(buf_writer *w, uint16_t v);
void buf_put_u32be(buf_writer *w, uint32_t v);
void buf_put_u64be(buf_writer *w, uint64_t v);
void buf_put_varint(buf_writer *w, uint64_t v);
void buf_put_bytes(buf_writer *w, const void *p, size_t n);
void buf_put_lbytes(buf_writer *w, const void *p, size_t n);
/* Overwrites 4 bytes at `off` (a length placeholder written before). */
void buf_patch_u32be(buf_writer *w, size_t off, uint32_t v);
size_t buf_varint_size(uint64_t v);

#endif
