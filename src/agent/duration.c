/* Durations as people write them; see duration.h. */
#include "duration.h"

#include <string.h>

int duration_parse_ms(const char *text, uint64_t min_ms, uint64_t max_ms, uint64_t *out)
{
    /* Digits, an optional fraction, a unit: parsed by hand, since strtod() would also take
     * signs, spaces, exponents, hexadecimal, "inf" and "nan". */
    uint64_t whole = 0, frac = 0, scale = 1;
    const char *p = text;
    if (!p || !(*p >= '0' && *p <= '9'))
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (whole > 1000000000000ull)
            return -1;
        whole = whole * 10 + (uint64_t)(*p - '0');
    }
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9'))
            return -1;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (scale < 1000000000ull) { /* digits past a nanosecond do not matter */
                frac = frac * 10 + (uint64_t)(*p - '0');
                scale *= 10;
            }
        }
    }
    uint64_t unit;
    if (strcmp(p, "") == 0 || strcmp(p, "ms") == 0)
        unit = 1;
    else if (strcmp(p, "s") == 0)
        unit = 1000;
    else if (strcmp(p, "m") == 0)
        unit = 60000;
    else
        return -1;
    uint64_t ms = whole * unit + (frac * unit + scale / 2) / scale;
    if (ms < min_ms || ms > max_ms)
        return -1;
    *out = ms;
    return 0;
}
