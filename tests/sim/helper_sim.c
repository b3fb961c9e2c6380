/* Shared helpers of the simulation tests (see helper_sim.h). */
#include "helper_sim.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

uint64_t h_seed(uint64_t def)
{
    const char *e = getenv("RUMOR_SIM_SEED");
    if (e && *e)
        return strtoull(e, NULL, 10);
    return def;
}

rumor_sim *h_sim_new_opts(const rumor_sim_options *opts)
{
    rumor_sim_options o = *opts;
    /* RUMOR_SIM_LOG=1 traces faults and node life cycles to stderr, =2 every engine event too. */
    const char *log = getenv("RUMOR_SIM_LOG");
    if (log && *log && !o.log) {
        o.log = stderr;
        o.log_events = *log == '2';
    }
    rumor_sim *s = NULL;
    int rc = rumor_sim_new(&s, &o);
    if (rc != 0)
        fail_msg("rumor_sim_new: %s (seed %" PRIu64 ")", rumor_strerror(rc), o.seed);
    return s;
}

rumor_sim *h_sim_new(uint32_t n, uint64_t seed, rumor_profile profile)
{
    rumor_sim_options o;
    rumor_sim_options_default(&o, profile);
    o.nodes = n;
    o.seed = seed;
    return h_sim_new_opts(&o);
}

void h_check(const rumor_sim *s, int ok, const char *fmt, ...)
{
    if (ok)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fail_msg("%s [seed=%" PRIu64 " t=%" PRIu64 " ms; replay with RUMOR_SIM_SEED=%" PRIu64 "]", msg,
             rumor_sim_seed(s), rumor_sim_now(s), rumor_sim_seed(s));
}

void h_run(rumor_sim *s, uint64_t ms)
{
    int rc = rumor_sim_run_for(s, ms);
    if (rc != 0)
        fail_msg("invariant violated: %s [replay with RUMOR_SIM_SEED=%" PRIu64 "]",
                 rumor_sim_error(s), rumor_sim_seed(s));
}

void h_start_cluster(rumor_sim *s, uint32_t n, uint32_t seed_node, uint64_t spread_ms)
{
    uint64_t now = rumor_sim_now(s);
    for (uint32_t i = 0; i < n; i++) {
        rumor_sim_fault f = {.kind = RUMOR_SIM_FAULT_START_JOIN, .node = i};
        f.seed = i == 0 ? 0 : seed_node;
        assert_int_equal(rumor_sim_schedule(s, now + spread_ms * i / n, &f), 0);
    }
}

uint64_t h_run_until_converged(rumor_sim *s, uint64_t max_ms)
{
    uint64_t start = rumor_sim_now(s);
    while (rumor_sim_now(s) - start < max_ms) {
        h_run(s, 100);
        if (rumor_sim_converged(s) && h_all_alive(s))
            return rumor_sim_now(s) - start;
    }
    return UINT64_MAX;
}

static const char *name_of(uint32_t i, char *buf, size_t cap)
{
    snprintf(buf, cap, "node-%u", i);
    return buf;
}

uint32_t h_table_count(const rumor_sim *s, uint32_t obs, rumor_member_state st)
{
    rumor_node *n = rumor_sim_node(s, obs);
    uint32_t c = 0;
    size_t total = n ? rumor_node_member_count(n) : 0;
    for (size_t k = 0; k < total; k++) {
        rumor_member m;
        if (rumor_node_member_at(n, k, &m) == 0 && m.state == st)
            c++;
    }
    return c;
}

int h_table_state(const rumor_sim *s, uint32_t obs, uint32_t member, uint32_t *incarnation)
{
    rumor_node *n = rumor_sim_node(s, obs);
    char name[32];
    rumor_member m;
    if (!n || rumor_node_member_find(n, name_of(member, name, sizeof(name)), &m) != 0)
        return -1;
    if (incarnation)
        *incarnation = m.incarnation;
    return (int)m.state;
}

static int running(const rumor_sim *s, uint32_t i)
{
    rumor_sim_node_state st = rumor_sim_node_state_of(s, i);
    return st == RUMOR_SIM_UP || st == RUMOR_SIM_PAUSED;
}

int h_all_see(const rumor_sim *s, uint32_t member, rumor_member_state st)
{
    for (uint32_t o = 0; o < rumor_sim_nodes(s); o++) {
        if (o == member || !running(s, o))
            continue;
        if (h_table_state(s, o, member, NULL) != (int)st)
            return 0;
    }
    return 1;
}

int h_all_alive(const rumor_sim *s)
{
    uint32_t live = rumor_sim_live_count(s);
    for (uint32_t o = 0; o < rumor_sim_nodes(s); o++) {
        if (running(s, o) && h_table_count(s, o, RUMOR_MEMBER_ALIVE) != live)
            return 0;
    }
    return 1;
}

void h_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("[ sim      ] ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}

double h_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void h_dump_disagreement(const rumor_sim *s, unsigned max)
{
    unsigned shown = 0;
    printf("  states:");
    for (uint32_t i = 0; i < rumor_sim_nodes(s); i++)
        printf(" %u:%d", i, (int)rumor_sim_node_state_of(s, i));
    printf("\n");
    for (uint32_t o = 0; o < rumor_sim_nodes(s) && shown < max; o++) {
        for (uint32_t m = 0; m < rumor_sim_nodes(s) && shown < max; m++) {
            if (!running(s, o) || !running(s, m))
                continue;
            uint32_t tinc = 0, vinc = 0;
            int tst = h_table_state(s, o, m, &tinc);
            if (tst == RUMOR_MEMBER_ALIVE)
                continue;
            rumor_member_state vst;
            bool have = rumor_sim_view(s, o, m, &vst, &vinc);
            rumor_member self;
            rumor_node_self(rumor_sim_node(s, m), &self);
            printf("  node-%u has node-%u %s inc %u in its table; its events say %s inc %u; "
                   "node-%u is at inc %u\n",
                   o, m, tst < 0 ? "absent" : rumor_member_state_name((rumor_member_state)tst),
                   tinc, have ? rumor_member_state_name(vst) : "nothing", vinc, m,
                   self.incarnation);
            shown++;
        }
    }
    fflush(stdout);
}

int h_cli(char *out_buf, size_t cap, int argc, char **argv)
{
    char *out = NULL, *err = NULL;
    size_t olen, elen;
    FILE *fo = open_memstream(&out, &olen), *fe = open_memstream(&err, &elen);
    int rc = rumor_sim_cli(argc, argv, fo, fe);
    fclose(fo);
    fclose(fe);
    snprintf(out_buf, cap, "%s%s", out ? out : "", err ? err : "");
    free(out);
    free(err);
    return rc;
}
