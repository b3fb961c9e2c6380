/*
 * The rumor-sim command line: builds a scenario (staggered joins, then crashes, a partition or a
 * pause once the cluster has converged), runs it in virtual time and prints one JSON object.
 * It lives in the library rather than main.c so the tests can run it in-process.
 */
#include "sim_internal.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define CLI_STEP_MS 100u

typedef struct cli_opts {
    uint32_t nodes;
    uint64_t seed;
    uint64_t duration_ms;
    rumor_profile profile;
    const char *profile_name;
    double loss, dup;
    int64_t latency_ms, jitter_ms; /* -1 = the profile's */
    uint64_t connect_timeout_ms;
    uint32_t crash;
    int64_t crash_at_ms; /* -1 = once converged */
    int64_t restart_after_ms;
    bool partition;
    int64_t partition_at_ms;
    uint64_t partition_for_ms;
    bool pause;
    int64_t pause_at_ms;
    uint64_t pause_for_ms;
    int64_t join_spread_ms;
    bool one_seed;
    bool warm;
    bool identity;
    bool log, log_events;
    sim_kv_opts kv;
    bool encrypt;
    double replay;
    uint64_t xchacha_every;
    int64_t rotate_at_ms; /* -1 = no rotation */
    uint32_t leave;       /* nodes that leave gracefully */
    int64_t leave_at_ms;  /* -1 = once converged */
    int64_t rejoin_after_ms;
    double events_per_s; /* user events cluster-wide, from random nodes */
    const char *record;  /* trace file of one node's inputs (sim_trace.h) */
    uint32_t record_node;
} cli_opts;

static void usage(FILE *f)
{
    fputs("usage: rumor-sim [--nodes N] [--seed S] [--duration SECONDS] [--profile lan|wan|local]\n"
          "                 [--loss P] [--dup P] [--latency-ms MS] [--jitter-ms MS]\n"
          "                 [--connect-timeout-ms MS] [--join-spread-ms MS] [--one-seed]\n"
          "                 [--warm]   (start formed: every node restores every other)\n"
          "                 [--identity]   (Ed25519 identities: every claim signed, checked)\n"
          "                 [--crash K] [--crash-at SECONDS] [--restart-after SECONDS]\n"
          "                 [--partition] [--partition-at SECONDS] [--partition-for SECONDS]\n"
          "                 [--pause] [--pause-at SECONDS] [--pause-for SECONDS]\n"
          "                 [--encrypt] [--rotate-at SECONDS] [--replay P]\n"
          "                 [--xchacha-every K]   (sealed; every K-th node without AES-GCM)\n"
          "                 [--log] [--log-events]   (trace to stderr)\n"
          "                 [--kv-mode push-pull|push|pull] [--kv-rumor-transmits K]\n"
          "                 [--kv-probe-writes N]   (single writes, each timed until all hold it)\n"
          "                 [--kv-writes-per-s R] [--kv-keys K] [--kv-value-bytes B]\n"
          "                 [--kv-start SECONDS] [--kv-drain SECONDS]   (a steady write load)\n"
          "                 [--leave K] [--leave-at SECONDS] [--rejoin-after SECONDS]\n"
          "                 [--events-per-s R]   (user events from random nodes)\n"
          "                 [--record FILE] [--record-node I]   (node I's inputs, sim_trace.h)\n"
          "Faults without an explicit time happen once every node sees every other alive\n"
          "(or at a third of the duration if that never happens). Prints one JSON object.\n",
          f);
}

static bool parse_u64(const char *v, uint64_t max, uint64_t *out)
{
    if (!v || !*v || *v == '-')
        return false;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (*end || x > max)
        return false;
    *out = x;
    return true;
}

static bool parse_prob(const char *v, double *out)
{
    if (!v || !*v)
        return false;
    char *end;
    double x = strtod(v, &end);
    if (*end || !(x >= 0.0 && x <= 1.0))
        return false;
    *out = x;
    return true;
}

/* Seconds on the command line, possibly fractional, as milliseconds. */
static bool parse_secs(const char *v, uint64_t *out_ms)
{
    if (!v || !*v)
        return false;
    char *end;
    double x = strtod(v, &end);
    if (*end || !(x >= 0.0 && x <= 1e7))
        return false;
    *out_ms = (uint64_t)(x * 1000.0 + 0.5);
    return true;
}

static void defaults(cli_opts *c)
{
    memset(c, 0, sizeof(*c));
    c->nodes = 100;
    c->seed = 1;
    c->duration_ms = 300000;
    c->profile = RUMOR_PROFILE_LAN;
    c->profile_name = "lan";
    c->latency_ms = c->jitter_ms = -1;
    c->connect_timeout_ms = 1000;
    c->crash_at_ms = c->restart_after_ms = c->partition_at_ms = c->pause_at_ms = -1;
    c->partition_for_ms = 120000;
    c->pause_for_ms = 10000;
    c->join_spread_ms = -1;
    sim_kv_opts_default(&c->kv);
    c->rotate_at_ms = -1;
    c->leave_at_ms = c->rejoin_after_ms = -1;
}

/* Options that take no value. Returns true when `name` was one. */
static bool parse_flag(cli_opts *c, const char *name)
{
    if (!strcmp(name, "--one-seed"))
        c->one_seed = true;
    else if (!strcmp(name, "--warm"))
        c->warm = true;
    else if (!strcmp(name, "--identity"))
        c->identity = true;
    else if (!strcmp(name, "--partition"))
        c->partition = true;
    else if (!strcmp(name, "--pause"))
        c->pause = true;
    else if (!strcmp(name, "--log"))
        c->log = true;
    else if (!strcmp(name, "--encrypt"))
        c->encrypt = true;
    else if (!strcmp(name, "--log-events"))
        c->log = c->log_events = true;
    else
        return false;
    return true;
}

static bool parse_secs_i(const char *v, int64_t *out)
{
    uint64_t ms;
    if (!parse_secs(v, &ms))
        return false;
    *out = (int64_t)ms;
    return true;
}

static bool parse_ms_i(const char *v, int64_t *out)
{
    uint64_t ms;
    if (!parse_u64(v, 100000000, &ms))
        return false;
    *out = (int64_t)ms;
    return true;
}

/* Returns 1 when parsed, 0 for a bad value, -1 for an unknown option. */
static int parse_valued(cli_opts *c, const char *name, const char *v)
{
    uint64_t x;
    if (!strncmp(name, "--kv-", 5))
        return sim_kv_parse(&c->kv, name, v);
    if (!strcmp(name, "--nodes")) {
        if (!parse_u64(v, 1000000, &x) || x == 0)
            return 0;
        c->nodes = (uint32_t)x;
        return 1;
    }
    if (!strcmp(name, "--seed"))
        return parse_u64(v, UINT64_MAX, &c->seed);
    if (!strcmp(name, "--duration"))
        return parse_secs(v, &c->duration_ms) && c->duration_ms > 0;
    if (!strcmp(name, "--profile")) {
        c->profile_name = v;
        return v && rumor_profile_parse(v, &c->profile) == 0;
    }
    if (!strcmp(name, "--loss"))
        return parse_prob(v, &c->loss);
    if (!strcmp(name, "--dup"))
        return parse_prob(v, &c->dup);
    if (!strcmp(name, "--replay"))
        return parse_prob(v, &c->replay);
    if (!strcmp(name, "--xchacha-every")) {
        c->encrypt = true;
        return parse_u64(v, 1000000, &c->xchacha_every);
    }
    if (!strcmp(name, "--rotate-at")) {
        c->encrypt = true;
        return parse_secs_i(v, &c->rotate_at_ms);
    }
    if (!strcmp(name, "--latency-ms"))
        return parse_ms_i(v, &c->latency_ms);
    if (!strcmp(name, "--jitter-ms"))
        return parse_ms_i(v, &c->jitter_ms);
    if (!strcmp(name, "--connect-timeout-ms"))
        return parse_u64(v, 100000000, &c->connect_timeout_ms);
    if (!strcmp(name, "--join-spread-ms"))
        return parse_ms_i(v, &c->join_spread_ms);
    if (!strcmp(name, "--crash")) {
        if (!parse_u64(v, 1000000, &x))
            return 0;
        c->crash = (uint32_t)x;
        return 1;
    }
    if (!strcmp(name, "--leave")) {
        if (!parse_u64(v, 1000000, &x))
            return 0;
        c->leave = (uint32_t)x;
        return 1;
    }
    if (!strcmp(name, "--leave-at"))
        return parse_secs_i(v, &c->leave_at_ms);
    if (!strcmp(name, "--rejoin-after"))
        return parse_secs_i(v, &c->rejoin_after_ms);
    if (!strcmp(name, "--events-per-s")) {
        char *end;
        if (!v || !*v)
            return 0;
        c->events_per_s = strtod(v, &end);
        return !*end && c->events_per_s >= 0.0 && c->events_per_s <= 100000.0;
    }
    if (!strcmp(name, "--record")) {
        c->record = v;
        return v && *v;
    }
    if (!strcmp(name, "--record-node")) {
        if (!parse_u64(v, 1000000, &x))
            return 0;
        c->record_node = (uint32_t)x;
        return 1;
    }
    if (!strcmp(name, "--crash-at"))
        return parse_secs_i(v, &c->crash_at_ms);
    if (!strcmp(name, "--restart-after"))
        return parse_secs_i(v, &c->restart_after_ms);
    if (!strcmp(name, "--partition-at") || !strcmp(name, "--partition-for")) {
        c->partition = true;
        if (name[12] == 'a')
            return parse_secs_i(v, &c->partition_at_ms);
        return parse_secs(v, &c->partition_for_ms);
    }
    if (!strcmp(name, "--pause-at") || !strcmp(name, "--pause-for")) {
        c->pause = true;
        if (name[8] == 'a')
            return parse_secs_i(v, &c->pause_at_ms);
        return parse_secs(v, &c->pause_for_ms) && c->pause_for_ms > 0;
    }
    return -1;
}

/* Parses argv. Returns 0, 1 for --help, or 2 after printing why the arguments are bad. */
static int parse_args(cli_opts *c, int argc, char **argv, FILE *err)
{
    defaults(c);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h"))
            return 1;
        if (parse_flag(c, arg))
            continue;
        char name[64];
        const char *v;
        const char *eq = strchr(arg, '=');
        if (eq && (size_t)(eq - arg) < sizeof(name)) {
            memcpy(name, arg, (size_t)(eq - arg));
            name[eq - arg] = '\0';
            v = eq + 1;
        } else {
            snprintf(name, sizeof(name), "%s", arg);
            v = i + 1 < argc ? argv[++i] : NULL;
        }
        int r = parse_valued(c, name, v);
        if (r < 0) {
            fprintf(err, "rumor-sim: unknown option '%s' (try --help)\n", arg);
            return 2;
        }
        if (r == 0) {
            fprintf(err, "rumor-sim: bad value for %s: '%s'\n", name, v ? v : "(missing)");
            return 2;
        }
    }
    if (c->record && c->record_node >= c->nodes) {
        fprintf(err, "rumor-sim: --record-node %u must be below --nodes %u\n", c->record_node,
                c->nodes);
        return 2;
    }
    if (c->crash + c->leave >= c->nodes) {
        fprintf(err, "rumor-sim: --crash %u and --leave %u leave no node of %u\n", c->crash,
                c->leave, c->nodes);
        return 2;
    }
    if (c->crash >= c->nodes) {
        fprintf(err, "rumor-sim: --crash %u must be below --nodes %u\n", c->crash, c->nodes);
        return 2;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Running the scenario                                                                       */

typedef struct cli_state {
    uint64_t fallback_ms; /* when to inject faults if the cluster never converges */
    int64_t crash_done_at, partition_done_at, pause_done_at, leave_done_at;
    uint32_t pause_node;
    uint64_t events_sent, next_event_at;
} cli_state;

static uint64_t join_spread(const cli_opts *c)
{
    if (c->join_spread_ms >= 0)
        return (uint64_t)c->join_spread_ms;
    /* 2 ms per node keeps the seeds' join streams from piling up at 10,000 nodes. */
    uint64_t ms = 2ull * c->nodes;
    return ms < 100 ? 100 : ms;
}

static int schedule_joins(rumor_sim *s, const cli_opts *c)
{
    uint64_t spread = join_spread(c);
    for (uint32_t i = 0; i < c->nodes; i++) {
        rumor_sim_fault f = {.kind = RUMOR_SIM_FAULT_START_JOIN, .node = i};
        f.seed = c->one_seed || i == 0 ? 0 : RUMOR_SIM_SEED_RANDOM;
        int rc = rumor_sim_schedule(s, spread * i / c->nodes, &f);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static bool fault_due(const rumor_sim *s, const cli_state *st, int64_t at_ms)
{
    if (at_ms >= 0)
        return rumor_sim_now(s) >= (uint64_t)at_ms;
    return rumor_sim_converged_at(s) != SIM_NEVER || rumor_sim_now(s) >= st->fallback_ms;
}

/* A live node chosen at random; the simulator's generator keeps the choice reproducible. */
static uint32_t pick_live(rumor_sim *s)
{
    for (int tries = 0; tries < 1000; tries++) {
        uint32_t j = (uint32_t)sim_rng_below(s->rng, s->n);
        if (s->nodes[j].state == RUMOR_SIM_UP)
            return j;
    }
    return SIM_NONE;
}

static void inject_crashes(rumor_sim *s, const cli_opts *c)
{
    for (uint32_t k = 0; k < c->crash; k++) {
        uint32_t j = pick_live(s);
        if (j == SIM_NONE || rumor_sim_node_crash(s, j) != 0)
            continue;
        if (c->restart_after_ms >= 0) {
            rumor_sim_fault f = {.kind = RUMOR_SIM_FAULT_RESTART,
                                 .node = j,
                                 .bump = true,
                                 .seed = RUMOR_SIM_SEED_RANDOM};
            (void)rumor_sim_schedule(s, s->now + (uint64_t)c->restart_after_ms, &f);
        }
    }
}

static void inject_leaves(rumor_sim *s, const cli_opts *c)
{
    for (uint32_t k = 0; k < c->leave; k++) {
        uint32_t j = pick_live(s);
        if (j == SIM_NONE || rumor_sim_node_leave(s, j) != 0)
            continue;
        if (c->rejoin_after_ms >= 0) {
            rumor_sim_fault f = {.kind = RUMOR_SIM_FAULT_RESTART,
                                 .node = j,
                                 .bump = true,
                                 .seed = RUMOR_SIM_SEED_RANDOM};
            (void)rumor_sim_schedule(s, s->now + (uint64_t)c->rejoin_after_ms, &f);
        }
    }
}

/* --events-per-s: user events from random live nodes, evenly spaced from 1 s on. */
static void send_events(rumor_sim *s, const cli_opts *c, cli_state *st)
{
    if (c->events_per_s <= 0)
        return;
    double gap = 1000.0 / c->events_per_s;
    while (st->next_event_at <= s->now) {
        uint32_t j = pick_live(s);
        if (j != SIM_NONE) {
            char payload[32];
            int len = snprintf(payload, sizeof(payload), "build %020" PRIu64, st->events_sent);
            if (sim_node_event(s, j, "deploy", payload, (size_t)len) == 0)
                rumor_sim_poke(s, j);
        }
        st->events_sent++;
        st->next_event_at = 1000 + (uint64_t)((double)st->events_sent * gap);
    }
}

static void inject_faults(rumor_sim *s, const cli_opts *c, cli_state *st)
{
    if (c->leave && st->leave_done_at < 0 && fault_due(s, st, c->leave_at_ms)) {
        st->leave_done_at = (int64_t)s->now;
        inject_leaves(s, c);
    }
    send_events(s, c, st);
    if (c->crash && st->crash_done_at < 0 && fault_due(s, st, c->crash_at_ms)) {
        st->crash_done_at = (int64_t)s->now;
        inject_crashes(s, c);
    }
    if (c->partition && st->partition_done_at < 0 && fault_due(s, st, c->partition_at_ms)) {
        st->partition_done_at = (int64_t)s->now;
        rumor_sim_fault f = {.kind = RUMOR_SIM_FAULT_SPLIT, .node = c->nodes / 2};
        (void)rumor_sim_schedule(s, s->now, &f);
        f.kind = RUMOR_SIM_FAULT_HEAL;
        (void)rumor_sim_schedule(s, s->now + c->partition_for_ms, &f);
    }
    if (c->pause && st->pause_done_at < 0 && fault_due(s, st, c->pause_at_ms)) {
        st->pause_done_at = (int64_t)s->now;
        st->pause_node = pick_live(s);
        if (st->pause_node != SIM_NONE)
            (void)rumor_sim_node_pause(s, st->pause_node, c->pause_for_ms);
    }
}

/* Key 1 replaces key 0 the way an operator rotates: installed on every node (spread over 5
 * s), made primary everywhere 10 s later, the old key removed 10 s after that. */
static int schedule_rotation(rumor_sim *s, const cli_opts *c)
{
    static const rumor_sim_fault_kind steps[] = {
        RUMOR_SIM_FAULT_KEY_INSTALL, RUMOR_SIM_FAULT_KEY_USE, RUMOR_SIM_FAULT_KEY_REMOVE};
    for (uint32_t k = 0; k < 3; k++)
        for (uint32_t i = 0; i < c->nodes; i++) {
            rumor_sim_fault f = {.kind = steps[k], .node = i, .seed = k == 2 ? 0 : 1};
            uint64_t at = (uint64_t)c->rotate_at_ms + 10000u * k + 5000u * i / c->nodes;
            int rc = rumor_sim_schedule(s, at, &f);
            if (rc != 0)
                return rc;
        }
    return 0;
}

static int run_scenario(rumor_sim *s, const cli_opts *c, cli_state *st, sim_kv_run *kv)
{
    int rc = c->warm ? rumor_sim_warm_start(s) : schedule_joins(s, c);
    if (rc == 0 && c->rotate_at_ms >= 0)
        rc = schedule_rotation(s, c);
    if (rc != 0)
        return rc;
    /* Key-value probes are timed to 10 ms (a hundredth of a LAN anti-entropy round). */
    uint64_t step = kv ? 10u : CLI_STEP_MS;
    while (rumor_sim_now(s) < c->duration_ms && !(kv && sim_kv_done(kv))) {
        uint64_t next = rumor_sim_now(s) + step;
        rc = rumor_sim_run_until(s, next < c->duration_ms ? next : c->duration_ms);
        if (rc != 0)
            return rc;
        inject_faults(s, c, st);
        if (kv)
            sim_kv_step(kv, rumor_sim_now(s));
    }
    return 0;
}

static void json_string(FILE *f, const char *v)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void json_at(FILE *f, const char *key, int64_t at)
{
    if (at >= 0)
        fprintf(f, ",\"%s\":%" PRId64, key, at);
    else
        fprintf(f, ",\"%s\":null", key);
}

static void print_options(FILE *f, const rumor_sim_options *o, const cli_opts *c,
                          const cli_state *st)
{
    fprintf(f, "\"options\":{\"profile\":");
    json_string(f, c->profile_name);
    fprintf(f, ",\"duration_s\":%.3f,\"loss\":%g,\"dup\":%g,\"latency_ms\":%u,\"jitter_ms\":%u",
            (double)c->duration_ms / 1000.0, c->loss, c->dup, o->latency_ms, o->jitter_ms);
    fprintf(f, ",\"connect_timeout_ms\":%u,\"join_spread_ms\":%" PRIu64 ",\"one_seed\":%s",
            o->connect_timeout_ms, join_spread(c), c->one_seed ? "true" : "false");
    fprintf(f, ",\"warm\":%s,\"identity\":%s,\"encrypt\":%s,\"replay\":%g",
            c->warm ? "true" : "false", c->identity ? "true" : "false",
            c->encrypt ? "true" : "false", c->replay);
    json_at(f, "rotate_at_ms", c->rotate_at_ms);
    fprintf(f, ",\"crash\":%u", c->crash);
    json_at(f, "crash_at_ms", st->crash_done_at);
    json_at(f, "restart_after_ms", c->restart_after_ms);
    fprintf(f, ",\"partition\":%s", c->partition ? "true" : "false");
    json_at(f, "partition_at_ms", st->partition_done_at);
    fprintf(f, ",\"partition_for_ms\":%" PRIu64 ",\"pause\":%s", c->partition_for_ms,
            c->pause ? "true" : "false");
    json_at(f, "pause_at_ms", st->pause_done_at);
    json_at(f, "pause_node",
            st->pause_done_at >= 0 && st->pause_node != SIM_NONE ? (int64_t)st->pause_node : -1);
    fprintf(f, ",\"pause_for_ms\":%" PRIu64, c->pause_for_ms);
    fprintf(f, ",\"leave\":%u", c->leave);
    json_at(f, "leave_at_ms", st->leave_done_at);
    json_at(f, "rejoin_after_ms", c->rejoin_after_ms);
    fprintf(f, ",\"events_per_s\":%g,\"user_events\":%" PRIu64, c->events_per_s, st->events_sent);
    json_at(f, "record_node", c->record ? (int64_t)c->record_node : -1);
    fprintf(f, "},");
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

static void print_result(FILE *out, rumor_sim *s, const rumor_sim_options *o, const cli_opts *c,
                         const cli_state *st, const sim_kv_run *kv, double wall_s)
{
    rumor_sim_metrics m;
    rumor_sim_metrics_get(s, &m);
    fprintf(out, "{\"nodes\":%u,\"seed\":%" PRIu64 ",", c->nodes, c->seed);
    print_options(out, o, c, st);
    rumor_sim_metrics_json(&m, out);
    if (kv)
        sim_kv_json(kv, out);
    fprintf(out, ",\"violation\":");
    if (rumor_sim_error(s))
        json_string(out, rumor_sim_error(s));
    else
        fputs("null", out);
    fprintf(out, ",\"wall_s\":%.3f,\"peak_rss_kb\":%ld}\n", wall_s, peak_rss_kb());
}

/* --identity: each node's key pair from a seed derived from the run's seed and its index. */
static void identity_settings(rumor_settings *s, uint32_t node, uint64_t base)
{
    s->identity = true;
    for (int i = 0; i < 4; i++) {
        uint64_t x = (base + node * 0x9e3779b97f4a7c15ull) * (uint64_t)(2u * (unsigned)i + 1u);
        memcpy(s->identity_seed + 8 * i, &x, 8);
    }
}

/* Per-node settings: the --kv-* scenario's and --identity's. */
static void node_settings(rumor_settings *s, uint32_t node, void *ud)
{
    const cli_opts *c = ud;
    if (sim_kv_active(&c->kv))
        sim_kv_settings(s, &c->kv);
    if (c->identity)
        identity_settings(s, node, c->seed);
}

int rumor_sim_cli(int argc, char **argv, FILE *out, FILE *err)
{
    cli_opts c;
    int rc = parse_args(&c, argc, argv, err);
    if (rc == 1) {
        usage(out);
        return 0;
    }
    if (rc != 0)
        return rc;
    rumor_sim_options o;
    rumor_sim_options_default(&o, c.profile);
    o.nodes = c.nodes;
    o.seed = c.seed;
    o.loss = c.loss;
    o.dup = c.dup;
    o.connect_timeout_ms = (uint32_t)c.connect_timeout_ms;
    if (c.latency_ms >= 0)
        o.latency_ms = (uint32_t)c.latency_ms;
    if (c.jitter_ms >= 0)
        o.jitter_ms = (uint32_t)c.jitter_ms;
    o.log = c.log ? err : NULL;
    o.log_events = c.log_events;
    if (c.identity || sim_kv_active(&c.kv)) {
        o.settings_fn = node_settings;
        o.settings_ud = &c;
    }
    o.encrypt = c.encrypt;
    o.replay = c.replay;
    o.xchacha_every = (uint32_t)c.xchacha_every;
    if (o.encrypt && sodium_init() < 0) {
        fprintf(err, "rumor-sim: libsodium failed to initialize\n");
        return 1;
    }
    char note[1000];
    if (c.record) {
        size_t nl = 0;
        note[0] = '\0';
        for (int i = 0; i < argc && nl < sizeof(note); i++)
            nl += (size_t)snprintf(note + nl, sizeof(note) - nl, "%s%s", i ? " " : "", argv[i]);
        if (!(o.record = fopen(c.record, "wb"))) {
            fprintf(err, "rumor-sim: cannot create %s\n", c.record);
            return 1;
        }
        o.record_node = c.record_node;
        o.record_note = note;
    }
    rumor_sim *s;
    rc = rumor_sim_new(&s, &o);
    if (rc != 0) {
        fprintf(err, "rumor-sim: cannot create the simulator: %s\n", rumor_strerror(rc));
        if (o.record)
            fclose(o.record);
        return 1;
    }
    cli_state st = {.crash_done_at = -1,
                    .partition_done_at = -1,
                    .pause_done_at = -1,
                    .leave_done_at = -1,
                    .next_event_at = 1000};
    st.fallback_ms = c.duration_ms / 3;
    sim_kv_run *kv = NULL;
    if (sim_kv_active(&c.kv) && !(kv = sim_kv_new(s, &c.kv, c.duration_ms))) {
        fprintf(err, "rumor-sim: out of memory\n");
        rumor_sim_del(s);
        if (o.record)
            fclose(o.record);
        return 1;
    }
    double t0 = wall_now();
    rc = run_scenario(s, &c, &st, kv);
    print_result(out, s, &o, &c, &st, kv, wall_now() - t0);
    sim_kv_del(kv);
    rumor_sim_del(s);
    if (o.record && (ferror(o.record) | fclose(o.record))) {
        fprintf(err, "rumor-sim: writing %s failed\n", c.record);
        return 1;
    }
    return rc == 0 ? 0 : 1;
}
