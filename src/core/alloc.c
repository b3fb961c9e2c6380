#include "core/alloc.h"

#include <stdlib.h>
#include <string.h>

static void *libc_alloc(void *ud, size_t size)
{
    (void)ud;
    return malloc(size);
}

static void *libc_realloc(void *ud, void *p, size_t size)
{
    (void)ud;
    return realloc(p, size);
}

static void libc_free(void *ud, void *p)
{
    (void)ud;
    free(p);
}

const rumor_allocator rumor_alloc_libc = {libc_alloc, libc_realloc, libc_free, NULL};

void *ralloc(const rumor_allocator *a, size_t size)
{
    return a->alloc(a->ud, size ? size : 1);
}

void *rcalloc(const rumor_allocator *a, size_t n, size_t size)
{
    size_t total;
    if (!size_mul_ok(n, size, &total))
        return NULL;
    void *p = ralloc(a, total);
    if (p)
        memset(p, 0, total);
    return p;
}

void *rrealloc(const rumor_allocator *a, void *p, size_t size)
{
    return a->realloc(a->ud, p, size ? size : 1);
}

bool rgrow(const rumor_allocator *a, void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t ncap = *cap ? *cap : 8;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            return false;
        ncap *= 2;
    }
    size_t bytes;
    if (!size_mul_ok(ncap, size, &bytes))
        return false;
    void *np = rrealloc(a, *p, bytes);
    if (!np)
        return false;
    *p = np;
    *cap = ncap;
    return true;
}

void rfree(const rumor_allocator *a, void *p)
{
    if (p)
        a->free(a->ud, p);
}

char *rstrndup(const rumor_allocator *a, const char *s, size_t n)
{
    char *d = ralloc(a, n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}
