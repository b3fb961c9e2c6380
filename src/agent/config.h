/* Agent configuration: flags and JSON config files, validated with errors that name the field. */
#ifndef RUMOR_AGENT_CONFIG_H
#define RUMOR_AGENT_CONFIG_H

#include "rumor_runtime.h"
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>

#define AGENT_DEFAULT_HTTP    "127.0.0.1:7947"
#define AGENT_DEFAULT_BIND    "0.0.0.0:7946"
#define AGENT_ENGINE_KEYS_MAX 48

typedef struct strv {
    char **v;
    size_t n;
} strv;

int strv_push(strv *s, const char *text);
void strv_free(strv *s);

typedef struct engine_override {
    const char *key; /* static name from the table in config.c */
    uint32_t value;
} engine_override;

typedef struct agent_config {
    char node[RUMOR_NAME_MAX + 1]; /* empty = stored name or host name */
    char bind[160];
    char advertise[160]; /* empty = derived from bind */
    char http[160];      /* empty string "off" disables the API */
    char data_dir[PATH_MAX];
    char cluster_label[RUMOR_LABEL_MAX + 1];
    strv join, retry_join, handlers, config_files;
    rumor_profile profile;
    json_t *tags; /* object of strings */
    rumor_log_level log_level;
    bool log_json;
    bool tcp_only;
    bool rejoin; /* join through the members the data dir remembers (default on) */
    /* Per-node identity (docs/protocol.md section 12): sign and check claims with the key pair
     * of the data dir; with an authority key, admit only nodes it certified. */
    bool identity;
    char ca_key[PATH_MAX];  /* the authority's public key, or a file holding it; "" = none */
    char ca_cert[PATH_MAX]; /* this node's certificate (rumor ca sign); "" = none */
    uint32_t handler_timeout_ms;
    rumor_sync_mode kv_sync_mode; /* with kv_sync_mode_set */
    bool kv_sync_mode_set;
    engine_override engine[AGENT_ENGINE_KEYS_MAX];
    size_t nengine;
    /* Encryption (keys.c): --encrypt KEY, --keyring FILE, and the migration switches. */
    uint8_t encrypt_key[RUMOR_KEY_BYTES];
    bool encrypt_set;
    char keyring[PATH_MAX];
    bool encrypt_accept_plaintext, encrypt_send_plaintext;
    uint8_t encrypt_cipher; /* rumor_settings.seal_cipher */
} agent_config;

/*
 * Parses `rumor agent` arguments (argv[0] is the first flag), loading --config files where they
 * appear; later values override earlier ones and repeatable flags accumulate. Returns 0, 1 when
 * --help was printed, or -1 with the reason in `err`.
 */
int agent_config_parse(agent_config *cfg, int argc, char **argv, char *err, size_t errcap);
void agent_config_free(agent_config *cfg);

/* Applies the profile and engine overrides to `s` (after rumor_settings_default). */
void agent_config_apply_engine(const agent_config *cfg, rumor_settings *s);

/* Validates one "K=V" tag and stores it in `tags`. */
int agent_tag_parse(json_t *tags, const char *text, char *err, size_t errcap);

void agent_config_usage(FILE *out);

/* The host name, the default node name. */
void agent_config_host_name(char *out, size_t cap);

#endif
