/*
 * libcurl, loaded with dlopen() by the client commands only. The agent runs in the same binary
 * and must not pay for libcurl and its TLS, Kerberos and LDAP dependencies in every process
 * (several MB of RSS per agent), so the binary does not link it.
 */
#ifndef RUMOR_CLI_CURL_SHIM_H
#define RUMOR_CLI_CURL_SHIM_H

#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

typedef struct cli_curl_api {
    CURLcode (*global_init)(long flags);
    void (*global_cleanup)(void);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
    CURLcode (*easy_perform)(CURL *h);
    CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
    void (*easy_cleanup)(CURL *h);
    const char *(*easy_strerror)(CURLcode rc);
    char *(*easy_escape)(CURL *h, const char *s, int len);
    void (*free)(void *p);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
} cli_curl_api;

extern cli_curl_api CC;

/* Loads libcurl; prints why and returns -1 when it cannot. */
int cli_curl_load(const char *cmd);

#endif
