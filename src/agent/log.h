/* The agent's log: one line per record on stderr, as text or JSON. Safe from any thread. */
#ifndef RUMOR_AGENT_LOG_H
#define RUMOR_AGENT_LOG_H

#include "rumor_runtime.h"
#include <stdbool.h>

void agent_log_setup(rumor_log_level level, bool json);
void agent_log_set_level(rumor_log_level level);
bool agent_log_enabled(rumor_log_level level);
void agent_log(rumor_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses "error", "warn", "info", "debug" (also "warning", "trace"). Returns 0 or -1. */
int agent_log_level_parse(const char *text, rumor_log_level *out);
const char *agent_log_level_name(rumor_log_level level);

#endif
