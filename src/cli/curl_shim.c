/* dlopen() of libcurl for the client commands (see curl_shim.h for why). */
#include "curl_shim.h"

#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

cli_curl_api CC;

typedef struct sym {
    const char *name;
    size_t offset;
} sym;

#define S(field, name)                                                                             \
    {                                                                                              \
        name, offsetof(cli_curl_api, field)                                                        \
    }
static const sym syms[] = {
    S(global_init, "curl_global_init"),   S(global_cleanup, "curl_global_cleanup"),
    S(easy_init, "curl_easy_init"),       S(easy_setopt, "curl_easy_setopt"),
    S(easy_perform, "curl_easy_perform"), S(easy_getinfo, "curl_easy_getinfo"),
    S(easy_cleanup, "curl_easy_cleanup"), S(easy_strerror, "curl_easy_strerror"),
    S(easy_escape, "curl_easy_escape"),   S(free, "curl_free"),
    S(slist_append, "curl_slist_append"), S(slist_free_all, "curl_slist_free_all"),
};

int cli_curl_load(const char *cmd)
{
    void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "rumor %s: cannot load libcurl (%s); install the libcurl4 package\n", cmd,
                dlerror());
        return -1;
    }
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *p = dlsym(lib, syms[i].name);
        if (!p) {
            fprintf(stderr, "rumor %s: libcurl lacks %s\n", cmd, syms[i].name);
            return -1;
        }
        /* POSIX guarantees object and function pointers convert through dlsym's void *. */
        memcpy((char *)&CC + syms[i].offset, &p, sizeof p);
    }
    return 0;
}
