/* The injectable allocator and overflow-checked size arithmetic. */
#ifndef RUMOR_CORE_ALLOC_H
#define RUMOR_CORE_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rumor.h"

/* The libc allocator, used when settings give none. */
extern const rumor_allocator rumor_alloc_libc;

void *ralloc(const rumor_allocator *a, size_t size);
void *rcalloc(const rumor_allocator *a, size_t n, size_t size);
void *rrealloc(const rumor_allocator *a, void *p, size_t size);
/* Grows an array of `size`-byte items to hold at least `need`; doubles. */
bool rgrow(const rumor_allocator *a, void **p, size_t *cap, size_t need, size_t size);
void rfree(const rumor_allocator *a, void *p);
char *rstrndup(const rumor_allocator *a, const char *s, size_t n);

static inline bool size_mul_ok(size_t a, size_t b, size_t *out)
{
    if (b != 0 && a > SIZE_MAX / b)
        return false;
    *out = a * b;
    return true;
}

#endif
