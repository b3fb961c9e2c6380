/* The `rumor` command line: one binary, subcommands that talk to an agent's HTTP API. */
#ifndef RUMOR_CLI_H
#define RUMOR_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Exit codes scripts can rely on. */
enum {
    CLI_OK = 0,
    CLI_FAILED = 1,      /* the agent answered with an error, or the operation failed */
    CLI_USAGE = 2,       /* bad flags or arguments */
    CLI_UNREACHABLE = 3, /* no agent answered at the HTTP address */
};

#define CLI_HTTP_ENV "RUMOR_HTTP_ADDR"

typedef struct cli_ctx {
    const char *http; /* ADDR:PORT of the agent */
    const char *cmd;
    long timeout_ms; /* how long one request may take; 0 = 30 s */
} cli_ctx;

/* One request; `out` gets the body (malloc'd, NUL-terminated). Returns CLI_OK, or
 * CLI_UNREACHABLE with a message printed. `status` gets the HTTP status. */
int cli_request(const cli_ctx *c, const char *method, const char *path, const char *body,
                long *status, char **out);
/* The same with any body bytes and content type; `out_len` (may be NULL) gets the body's
 * length, which may hold NULs. */
int cli_request_ex(const cli_ctx *c, const char *method, const char *path, const void *body,
                   size_t body_len, const char *content_type, long *status, char **out,
                   size_t *out_len);
/* Streams GET `path`, calling `line` for each complete line until the agent closes. */
int cli_stream(const cli_ctx *c, const char *path, void (*line)(const char *text, void *ud),
               void *ud);
/* Prints the agent's {"error": ...} for a failed request; returns CLI_FAILED. */
int cli_report_error(const cli_ctx *c, long status, const char *body);
/* Parses a JSON body or reports it; returns NULL on error. */
json_t *cli_parse(const cli_ctx *c, const char *body);
/* GET `path` and show the answer: the body as it is with `json_out`, else `render` on the parsed
 * object; an error answer is reported. Returns CLI_OK, CLI_FAILED or CLI_UNREACHABLE. */
int cli_get_show(const cli_ctx *c, const char *path, bool json_out,
                 void (*render)(json_t *o, void *ud), void *ud);

int cli_members(cli_ctx *c, int argc, char **argv);
int cli_join(cli_ctx *c, int argc, char **argv);
int cli_leave(cli_ctx *c, int argc, char **argv);
int cli_monitor(cli_ctx *c, int argc, char **argv);
int cli_info(cli_ctx *c, int argc, char **argv);
int cli_tags(cli_ctx *c, int argc, char **argv);
int cli_kv(cli_ctx *c, int argc, char **argv);
int cli_state(cli_ctx *c, int argc, char **argv);
int cli_event(cli_ctx *c, int argc, char **argv);
int cli_query(cli_ctx *c, int argc, char **argv);
int cli_keys(cli_ctx *c, int argc, char **argv);
int cli_identity(cli_ctx *c, int argc, char **argv);
/* `rumor keygen` and `rumor ca ...` need no agent. */
int cli_keygen(int argc, char **argv);
int cli_ca(int argc, char **argv);

/* Takes "--http ADDR"/"--http=ADDR" and "--help" out of argv; returns 1 for help, -1 on a
 * missing value, 0 otherwise. */
int cli_common_flag(cli_ctx *c, int argc, char **argv, int *i);
/* Handles the flags every command has (--help prints `help` and the common flags): -1 to go on,
 * -2 when the flag was consumed with its value, or an exit code. */
int cli_common(cli_ctx *c, int argc, char **argv, int *i, const char *help);
/* Prints "rumor CMD: what (see rumor CMD --help)" and returns CLI_USAGE. */
int cli_usage_error(const cli_ctx *c, const char *what);

#endif
