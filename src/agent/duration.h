/* Durations as people write them ("500ms", "5s", "1.5m"), for the agent's API and the CLI. */
#ifndef RUMOR_AGENT_DURATION_H
#define RUMOR_AGENT_DURATION_H

#include <stdint.h>

/*
 * Parses "N" (milliseconds), "Nms", "Ns" or "Nm", N a non-negative decimal number ("1.5s").
 * The result is rounded to the millisecond and must lie in [min_ms, max_ms]. Returns 0, or -1
 * for anything else (empty, trailing text, another unit, out of range).
 */
int duration_parse_ms(const char *text, uint64_t min_ms, uint64_t max_ms, uint64_t *out);

#endif
