/*
 * The runtime as an embedding program uses it: three nodes in one process, each on its own
 * background thread (rumor_runtime_start_thread), driven only through the thread-safe calls
 * from the main thread. They join, see each other, gossip metadata, and one leaves.
 * Usage: test_embed PORT_BASE
 */
#include "rumor_runtime.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODES 3

static atomic_int events_seen;

static void on_event(rumor_runtime *rt, const rumor_event *ev, void *ud)
{
    (void)rt;
    (void)ev;
    (void)ud;
    atomic_fetch_add(&events_seen, 1);
}

static int fail(const char *what)
{
    fprintf(stderr, "test_embed: FAIL: %s\n", what);
    return 1;
}

/* State of member `name` as node `rt` sees it, or -1. */
static int state_of(rumor_runtime *rt, const char *name, const char *meta)
{
    rumor_runtime_member *m;
    size_t n;
    int st = -1;
    if (rumor_runtime_members(rt, &m, &n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        bool meta_ok =
            !meta || (m[i].meta_len == strlen(meta) && memcmp(m[i].meta, meta, m[i].meta_len) == 0);
        if (strcmp(m[i].name, name) == 0 && meta_ok)
            st = (int)m[i].state;
    }
    rumor_runtime_members_free(m, n);
    return st;
}

/* Waits up to 15 s until every node in rts[0..count) sees `name` in `state` (with `meta`). */
static bool wait_state(rumor_runtime **rts, int count, const char *name, int state,
                       const char *meta)
{
    for (int tries = 0; tries < 300; tries++) {
        int ok = 0;
        for (int i = 0; i < count; i++)
            ok += state_of(rts[i], name, meta) == state;
        if (ok == count)
            return true;
        uv_sleep(50);
    }
    return false;
}

static rumor_runtime *make_node(int i, int port)
{
    char name[32], bind[64], err[256];
    snprintf(name, sizeof name, "embed%d", i);
    snprintf(bind, sizeof bind, "127.0.0.1:%d", port + i);
    rumor_runtime_options o;
    memset(&o, 0, sizeof o);
    rumor_settings_default(&o.settings, RUMOR_PROFILE_LOCAL);
    o.settings.name = name;
    o.settings.seed = (uint64_t)(i + 1);
    o.bind = bind;
    o.cb.event = on_event;
    rumor_runtime *rt;
    if (rumor_runtime_new(&rt, NULL, &o, err, sizeof err) != 0) {
        fprintf(stderr, "test_embed: node %d: %s\n", i, err);
        return NULL;
    }
    if (rumor_runtime_start_thread(rt) != 0)
        return NULL;
    return rt;
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 25000;
    rumor_runtime *rts[NODES];
    for (int i = 0; i < NODES; i++)
        if (!(rts[i] = make_node(i, port)))
            return fail("cannot start a node");
    char seed[64];
    snprintf(seed, sizeof seed, "127.0.0.1:%d", port);
    const char *seeds[] = {seed};
    for (int i = 1; i < NODES; i++)
        if (rumor_runtime_join(rts[i], seeds, 1, true) != 0)
            return fail("join refused");
    for (int i = 0; i < NODES; i++) {
        char name[32];
        snprintf(name, sizeof name, "embed%d", i);
        if (!wait_state(rts, NODES, name, RUMOR_MEMBER_ALIVE, NULL))
            return fail("the nodes did not all see each other alive");
    }
    const char *meta = "{\"role\":\"embedded\"}";
    if (rumor_runtime_set_meta(rts[0], (const uint8_t *)meta, strlen(meta)) != 0)
        return fail("set_meta");
    if (!wait_state(rts, NODES, "embed0", RUMOR_MEMBER_ALIVE, meta))
        return fail("metadata did not spread");
    if (rumor_runtime_leave(rts[2]) != 0)
        return fail("leave");
    if (!wait_state(rts, 2, "embed2", RUMOR_MEMBER_LEFT, NULL))
        return fail("the leave was not seen");
    rumor_stats st;
    rumor_runtime_counters rc;
    if (rumor_runtime_stats(rts[0], &st, &rc) != 0 || st.packets_in == 0)
        return fail("stats");
    for (int i = 0; i < NODES; i++)
        rumor_runtime_stop_thread(rts[i]);
    if (atomic_load(&events_seen) < 6)
        return fail("too few events delivered to the callback");
    printf("test_embed: PASS (%d events)\n", atomic_load(&events_seen));
    return 0;
}
