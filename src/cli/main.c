/* `rumor`: one binary. `rumor agent` runs an agent; the other commands talk to one. */
#include "cli.h"
#include "rumor.h"

#include "curl_shim.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int agent_main(int argc, char **argv);

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: rumor COMMAND [flags]\n\n"
            "Commands:\n"
            "  agent     run an agent (rumor agent --help)\n"
            "  members   list the cluster's members\n"
            "  join      join the agent to a cluster through HOST[:PORT]...\n"
            "  leave     make the agent leave the cluster gracefully and exit\n"
            "  monitor   stream membership events, user events and queries\n"
            "  info      show the agent, its counters and configuration\n"
            "  tags      set or delete the agent's tags\n"
            "  kv        read, write, list and watch the shared key-value keyspace\n"
            "  state     read and write per-node key-value state\n"
            "  event     send a user event to every node\n"
            "  query     ask the nodes a query and print their responses\n"
            "  keys      list, install, use or remove encryption keys on every member\n"
            "  keygen    print a new encryption key\n"
            "  identity  show the node's public key (from the agent or its data dir)\n"
            "  ca        a cluster authority: init, sign a node's certificate\n"
            "  version   print the version\n\n"
            "Client commands find the agent at --http ADDR:PORT, else $%s, else "
            "127.0.0.1:7947.\nExit codes: 0 ok, 1 the agent reported an error, 2 bad usage, "
            "3 no agent answered.\nEvery command takes --help.\n",
            CLI_HTTP_ENV);
}

typedef struct command {
    const char *name;
    int (*fn)(cli_ctx *c, int argc, char **argv);
} command;

static const command commands[] = {
    {"members", cli_members}, {"join", cli_join},   {"leave", cli_leave},
    {"monitor", cli_monitor}, {"info", cli_info},   {"tags", cli_tags},
    {"kv", cli_kv},           {"state", cli_state}, {"event", cli_event},
    {"query", cli_query},     {"keys", cli_keys},   {"identity", cli_identity},
};

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "agent") == 0)
        return agent_main(argc - 2, argv + 2);
    if (strcmp(argv[1], "keygen") == 0)
        return cli_keygen(argc - 2, argv + 2);
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("rumor %d.%d.%d (protocol %d)\n", RUMOR_VERSION_MAJOR, RUMOR_VERSION_MINOR,
               RUMOR_VERSION_PATCH, RUMOR_PROTOCOL_VERSION);
        return CLI_OK;
    }
    if (strcmp(argv[1], "ca") == 0)
        return cli_ca(argc - 2, argv + 2);
    cli_ctx c = {.http = getenv(CLI_HTTP_ENV), .cmd = argv[1]};
    if (!c.http || !*c.http)
        c.http = "127.0.0.1:7947";
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(commands[i].name, argv[1]) != 0)
            continue;
        if (cli_curl_load(argv[1]) != 0)
            return CLI_FAILED;
        CC.global_init(CURL_GLOBAL_DEFAULT);
        int rc = commands[i].fn(&c, argc - 2, argv + 2);
        CC.global_cleanup();
        return rc;
    }
    fprintf(stderr, "rumor: unknown command \"%s\"\n\n", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
