/*
 * The key-value scenarios of rumor-sim (--kv-*): single writes measured one after another
 * (how long one write takes to reach every node, in virtual time and in anti-entropy rounds),
 * and a steady cluster-wide write load (what it costs each node per second).
 */
#include "sim_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/node.h" /* store sums: a cheap "replicas identical" test between steps */

#define KV_PROBES_MAX   1000
#define KV_PROBE_GAP_MS 2000 /* quiet time between one probe reaching all and the next */

struct sim_kv_run {
    rumor_sim *s;
    sim_kv_opts o;
    uint32_t sync_ms;
    /* Probes. */
    uint32_t probes_done;
    uint64_t probe_ms[KV_PROBES_MAX];
    bool probing;
    uint32_t origin;
    char key[32];
    uint64_t version, started, next_probe_at;
    uint32_t *unreached;
    uint32_t nunreached;
    /* Load. */
    uint64_t writes, next_write_at, load_end;
    bool load_started, load_measured;
    rumor_sim_metrics at_start, at_end;
    uint64_t identical_after; /* ms after the load stopped; UINT64_MAX while not identical */
    bool identical_checked;
};

void sim_kv_opts_default(sim_kv_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->mode = -1;
    o->rumor_transmits = -1;
    o->keys = 16;
    o->value_bytes = 32;
    o->start_ms = 5000;
    o->drain_ms = 30000;
}

static bool parse_num(const char *v, double max, double *out)
{
    if (!v || !*v || *v == '-')
        return false;
    char *end;
    double x = strtod(v, &end);
    if (*end || !(x >= 0.0 && x <= max))
        return false;
    *out = x;
    return true;
}

int sim_kv_parse(sim_kv_opts *o, const char *name, const char *v)
{
    double x;
    if (!strcmp(name, "--kv-mode")) {
        rumor_sync_mode m;
        if (!v || rumor_sync_mode_parse(v, &m) != 0)
            return 0;
        o->mode = (int)m;
        return 1;
    }
    if (!strcmp(name, "--kv-rumor-transmits")) {
        if (!parse_num(v, 63, &x) || x != (double)(int)x)
            return 0;
        o->rumor_transmits = (int)x;
        return 1;
    }
    if (!strcmp(name, "--kv-probe-writes")) {
        if (!parse_num(v, KV_PROBES_MAX, &x) || x != (double)(uint32_t)x)
            return 0;
        o->probe_writes = (uint32_t)x;
        return 1;
    }
    if (!strcmp(name, "--kv-writes-per-s")) {
        if (!parse_num(v, 100000, &x))
            return 0;
        o->writes_per_s = x;
        return 1;
    }
    if (!strcmp(name, "--kv-keys")) {
        if (!parse_num(v, 1000, &x) || x < 1 || x != (double)(uint32_t)x)
            return 0;
        o->keys = (uint32_t)x;
        return 1;
    }
    if (!strcmp(name, "--kv-value-bytes")) {
        if (!parse_num(v, RUMOR_KV_VALUE_MAX, &x) || x != (double)(uint32_t)x)
            return 0;
        o->value_bytes = (uint32_t)x;
        return 1;
    }
    if (!strcmp(name, "--kv-start") || !strcmp(name, "--kv-drain")) {
        if (!parse_num(v, 1e7, &x))
            return 0;
        *(name[5] == 's' ? &o->start_ms : &o->drain_ms) = (uint64_t)(x * 1000.0 + 0.5);
        return 1;
    }
    return -1;
}

bool sim_kv_active(const sim_kv_opts *o)
{
    return o->probe_writes || o->writes_per_s > 0 || o->mode >= 0 || o->rumor_transmits >= 0;
}

void sim_kv_settings(rumor_settings *st, const sim_kv_opts *o)
{
    if (o->mode >= 0)
        st->kv_sync_mode = (rumor_sync_mode)o->mode;
    if (o->rumor_transmits >= 0)
        st->kv_rumor_transmits = (uint32_t)o->rumor_transmits;
    if (o->value_bytes > st->kv_value_bytes_max)
        st->kv_value_bytes_max = o->value_bytes;
    if (o->keys > st->kv_keys_max)
        st->kv_keys_max = o->keys;
}

sim_kv_run *sim_kv_new(rumor_sim *s, const sim_kv_opts *o, uint64_t duration_ms)
{
    sim_kv_run *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->unreached = calloc(s->n ? s->n : 1, sizeof(uint32_t));
    if (!r->unreached) {
        free(r);
        return NULL;
    }
    r->s = s;
    r->o = *o;
    rumor_settings st;
    rumor_settings_default(&st, s->o.profile);
    r->sync_ms = st.kv_sync_interval_ms ? st.kv_sync_interval_ms : 1;
    r->next_probe_at = o->start_ms;
    r->next_write_at = o->start_ms;
    r->load_end = duration_ms > o->start_ms + o->drain_ms ? duration_ms - o->drain_ms : o->start_ms;
    r->identical_after = UINT64_MAX;
    return r;
}

void sim_kv_del(sim_kv_run *r)
{
    if (!r)
        return;
    free(r->unreached);
    free(r);
}

/* A live node chosen by the simulator's generator (reproducible), or SIM_NONE. */
static uint32_t pick(rumor_sim *s)
{
    for (int tries = 0; tries < 1000; tries++) {
        uint32_t j = (uint32_t)sim_rng_below(s->rng, s->n);
        if (s->nodes[j].state == RUMOR_SIM_UP)
            return j;
    }
    return SIM_NONE;
}

static void probe_start(sim_kv_run *r, uint64_t now)
{
    rumor_sim *s = r->s;
    uint32_t w = pick(s);
    if (w == SIM_NONE)
        return;
    snprintf(r->key, sizeof(r->key), "probe-%u", r->probes_done);
    rumor_node *n = s->nodes[w].eng;
    if (sim_node_kv_put(s, w, r->key, strlen(r->key), "x", 1) != 0)
        return;
    rumor_sim_poke(s, w);
    rumor_kv_value v;
    rumor_node_kv_get(n, NULL, r->key, strlen(r->key), &v);
    r->version = v.version;
    r->origin = w;
    r->started = now;
    r->probing = true;
    r->nunreached = 0;
    for (uint32_t i = 0; i < s->n; i++)
        if (i != w && s->nodes[i].state == RUMOR_SIM_UP)
            r->unreached[r->nunreached++] = i;
}

static void probe_check(sim_kv_run *r, uint64_t now)
{
    rumor_sim *s = r->s;
    char origin[32];
    snprintf(origin, sizeof(origin), "node-%u", r->origin);
    uint32_t keep = 0;
    for (uint32_t k = 0; k < r->nunreached; k++) {
        uint32_t i = r->unreached[k];
        rumor_kv_value v;
        const rumor_node *n = s->nodes[i].eng;
        if (n && rumor_node_kv_get(n, origin, r->key, strlen(r->key), &v) != 0)
            r->unreached[keep++] = i; /* a node that went down no longer counts */
    }
    r->nunreached = keep;
    if (keep)
        return;
    r->probe_ms[r->probes_done++] = now - r->started;
    r->probing = false;
    r->next_probe_at = now + KV_PROBE_GAP_MS;
}

static void load_write(sim_kv_run *r, uint64_t now)
{
    (void)now; /* the write happens at the simulator's now */
    rumor_sim *s = r->s;
    uint32_t w = pick(s);
    if (w == SIM_NONE)
        return;
    char key[32];
    static const char fill[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    uint8_t val[256];
    size_t vlen = r->o.value_bytes < sizeof(val) ? r->o.value_bytes : sizeof(val);
    snprintf(key, sizeof(key), "k%u", (unsigned)sim_rng_below(s->rng, r->o.keys));
    for (size_t i = 0; i < vlen; i++)
        val[i] = (uint8_t)fill[(r->writes + i) % (sizeof(fill) - 1)];
    if (sim_node_kv_put(s, w, key, strlen(key), val, vlen) == 0)
        r->writes++;
    rumor_sim_poke(s, w);
}

/* Every live node holds the same store sum (versions and horizons of every origin). */
static bool sums_agree(const rumor_sim *s)
{
    const rumor_node *first = NULL;
    for (uint32_t i = 0; i < s->n; i++) {
        const rumor_node *n = s->nodes[i].state == RUMOR_SIM_UP ? s->nodes[i].eng : NULL;
        if (!n)
            continue;
        if (!first)
            first = n;
        else if (n->kv.sum != first->kv.sum)
            return false;
    }
    return true;
}

static void load_step(sim_kv_run *r, uint64_t now)
{
    if (r->o.writes_per_s <= 0)
        return;
    if (now < r->load_end) {
        if (now >= r->o.start_ms && !r->load_started) {
            rumor_sim_metrics_get(r->s, &r->at_start);
            r->load_started = true;
        }
        double gap = 1000.0 / r->o.writes_per_s;
        while (r->next_write_at <= now) {
            load_write(r, now);
            r->next_write_at = r->o.start_ms + (uint64_t)((double)(r->writes + 1) * gap);
        }
        return;
    }
    if (!r->load_measured) {
        rumor_sim_metrics_get(r->s, &r->at_end);
        r->load_measured = true;
    }
    if (r->identical_after == UINT64_MAX && now % 1000 == 0 && sums_agree(r->s))
        r->identical_after = now - r->load_end;
}

void sim_kv_step(sim_kv_run *r, uint64_t now)
{
    if (r->o.probe_writes && r->probes_done < r->o.probe_writes) {
        if (r->probing)
            probe_check(r, now);
        else if (now >= r->next_probe_at)
            probe_start(r, now);
    }
    load_step(r, now);
}

bool sim_kv_done(const sim_kv_run *r)
{
    return r->o.probe_writes && r->probes_done >= r->o.probe_writes && r->o.writes_per_s <= 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Whole-state digests agree on every live node: the definitive check, once at the end. */
static bool digests_agree(const rumor_sim *s)
{
    bool have = false;
    uint64_t d0 = 0;
    size_t c0 = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        const rumor_node *n = s->nodes[i].state == RUMOR_SIM_UP ? s->nodes[i].eng : NULL;
        if (!n)
            continue;
        uint64_t d = rumor_node_kv_digest(n);
        size_t c = rumor_node_kv_count(n);
        if (!have) {
            have = true;
            d0 = d;
            c0 = c;
        } else if (d != d0 || c != c0) {
            return false;
        }
    }
    return true;
}

static void json_probes(const sim_kv_run *r, FILE *f)
{
    uint64_t sorted[KV_PROBES_MAX], sum = 0;
    uint32_t n = r->probes_done;
    fprintf(f, ",\"probes_ms\":[");
    for (uint32_t i = 0; i < n; i++) {
        fprintf(f, "%s%" PRIu64, i ? "," : "", r->probe_ms[i]);
        sorted[i] = r->probe_ms[i];
        sum += r->probe_ms[i];
    }
    fprintf(f, "]");
    if (n == 0) {
        fprintf(f, ",\"probe_median_ms\":null,\"probe_mean_ms\":null,\"probe_max_ms\":null");
        return;
    }
    qsort(sorted, n, sizeof(sorted[0]), cmp_u64);
    double median =
        n % 2 ? (double)sorted[n / 2] : ((double)sorted[n / 2 - 1] + (double)sorted[n / 2]) / 2.0;
    double mean = (double)sum / n;
    fprintf(f,
            ",\"probe_median_ms\":%.1f,\"probe_mean_ms\":%.1f,\"probe_max_ms\":%" PRIu64
            ",\"probe_median_rounds\":%.2f,\"probe_mean_rounds\":%.2f",
            median, mean, sorted[n - 1], median / r->sync_ms, mean / r->sync_ms);
}

static void json_load(const sim_kv_run *r, FILE *f)
{
    const rumor_sim_metrics *a = &r->at_start, *b = &r->at_end;
    double node_s = b->node_seconds - a->node_seconds;
    double bytes =
        (double)(b->datagram_bytes + b->stream_bytes - a->datagram_bytes - a->stream_bytes);
    double msgs = (double)(b->datagrams + b->stream_writes - a->datagrams - a->stream_writes);
    fprintf(f, ",\"load\":{\"writes\":%" PRIu64 ",\"window_s\":%.1f", r->writes,
            (double)(b->virtual_ms - a->virtual_ms) / 1000.0);
    fprintf(f, ",\"bytes_per_node_s\":%.1f,\"msgs_per_node_s\":%.2f",
            node_s > 0 ? bytes / node_s : 0.0, node_s > 0 ? msgs / node_s : 0.0);
    fprintf(f, ",\"stream_bytes_per_node_s\":%.1f",
            node_s > 0 ? (double)(b->stream_bytes - a->stream_bytes) / node_s : 0.0);
    if (r->identical_after == UINT64_MAX)
        fprintf(f, ",\"identical_after_ms\":null");
    else
        fprintf(f, ",\"identical_after_ms\":%" PRIu64, r->identical_after);
    fprintf(f, ",\"identical\":%s}", digests_agree(r->s) ? "true" : "false");
}

void sim_kv_json(const sim_kv_run *r, FILE *f)
{
    static const char *const modes[] = {"push-pull", "push", "pull"};
    rumor_settings st;
    rumor_settings_default(&st, r->s->o.profile);
    sim_kv_settings(&st, &r->o);
    fprintf(f, ",\"kv\":{\"mode\":\"%s\",\"rumor_transmits\":%u,\"sync_interval_ms\":%u",
            modes[st.kv_sync_mode], st.kv_rumor_transmits, r->sync_ms);
    if (r->o.probe_writes)
        json_probes(r, f);
    if (r->o.writes_per_s > 0)
        json_load(r, f);
    fprintf(f, "}");
}
