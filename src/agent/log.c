/* Log records go to stderr in one write each, so lines from the HTTP threads never interleave. */
#include "log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = RUMOR_LOG_INFO;
static atomic_bool log_json = false;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void agent_log_setup(rumor_log_level level, bool json)
{
    atomic_store(&log_level, (int)level);
    atomic_store(&log_json, json);
}

void agent_log_set_level(rumor_log_level level)
{
    atomic_store(&log_level, (int)level);
}

bool agent_log_enabled(rumor_log_level level)
{
    return (int)level <= atomic_load(&log_level);
}

const char *agent_log_level_name(rumor_log_level level)
{
    return (unsigned)level < 4 ? level_names[level] : "info";
}

int agent_log_level_parse(const char *text, rumor_log_level *out)
{
    for (unsigned i = 0; i < 4; i++) {
        if (strcasecmp(text, level_names[i]) == 0) {
            *out = (rumor_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(text, "warning") == 0) {
        *out = RUMOR_LOG_WARN;
        return 0;
    }
    if (strcasecmp(text, "trace") == 0) {
        *out = RUMOR_LOG_DEBUG;
        return 0;
    }
    return -1;
}

static void timestamp(char *out, size_t cap)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%03dZ", base, (int)(tv.tv_usec / 1000));
}

static void write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(STDERR_FILENO, buf, len);
        if (w <= 0)
            return;
        buf += w;
        len -= (size_t)w;
    }
}

void agent_log(rumor_log_level level, const char *fmt, ...)
{
    if (!agent_log_enabled(level))
        return;
    char msg[1024], ts[48], line[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    timestamp(ts, sizeof ts);
    int n;
    if (atomic_load(&log_json)) {
        json_t *o =
            json_pack("{s:s,s:s,s:s}", "ts", ts, "level", agent_log_level_name(level), "msg", msg);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        n = snprintf(line, sizeof line, "%s\n", s ? s : "{}");
        free(s);
        json_decref(o);
    } else {
        char up[8];
        const char *name = agent_log_level_name(level);
        size_t i = 0;
        for (; name[i] && i < sizeof up - 1; i++)
            up[i] = (char)(name[i] - 'a' + 'A');
        up[i] = '\0';
        n = snprintf(line, sizeof line, "%s %-5s %s\n", ts, up, msg);
    }
    if (n <= 0)
        return;
    if ((size_t)n >= sizeof line) { /* truncated: keep the record on one line */
        n = (int)sizeof line - 1;
        line[n - 1] = '\n';
    }
    write_all(line, (size_t)n);
}
