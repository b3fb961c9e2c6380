/* One seed reproduces a run: identical trace hash and metrics; and the rumor-sim command line
 * prints identical JSON apart from wall time and RSS, and rejects bad arguments with exit 2. */
#include "helper_sim.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct run_out {
    uint64_t hash;
    char *json;
} run_out;

/* A busy scenario: loss, duplication, jitter, a crash, a pause and a short partition. */
static run_out run_scenario(uint64_t seed)
{
    const uint32_t n = 24;
    rumor_sim_options o;
    rumor_sim_options_default(&o, RUMOR_PROFILE_LOCAL);
    o.nodes = n;
    o.seed = seed;
    o.loss = 0.05;
    o.dup = 0.05;
    o.jitter_ms = 5;
    rumor_sim *s = h_sim_new_opts(&o);
    h_start_cluster(s, n, RUMOR_SIM_SEED_RANDOM, 1000);
    rumor_sim_fault crash = {.kind = RUMOR_SIM_FAULT_CRASH, .node = 3};
    rumor_sim_fault pause = {.kind = RUMOR_SIM_FAULT_PAUSE, .node = 4, .ms = 8000};
    rumor_sim_fault split = {.kind = RUMOR_SIM_FAULT_SPLIT, .node = n / 2};
    rumor_sim_fault heal = {.kind = RUMOR_SIM_FAULT_HEAL};
    rumor_sim_fault restart = {
        .kind = RUMOR_SIM_FAULT_RESTART, .node = 3, .bump = true, .seed = RUMOR_SIM_SEED_RANDOM};
    assert_int_equal(rumor_sim_schedule(s, 10000, &crash), 0);
    assert_int_equal(rumor_sim_schedule(s, 12000, &pause), 0);
    assert_int_equal(rumor_sim_schedule(s, 30000, &split), 0);
    assert_int_equal(rumor_sim_schedule(s, 40000, &heal), 0);
    assert_int_equal(rumor_sim_schedule(s, 45000, &restart), 0);
    h_run(s, 90000);
    rumor_sim_metrics m;
    rumor_sim_metrics_get(s, &m);
    run_out r = {.hash = rumor_sim_trace_hash(s)};
    size_t len;
    FILE *f = open_memstream(&r.json, &len);
    assert_non_null(f);
    rumor_sim_metrics_json(&m, f);
    fclose(f);
    rumor_sim_del(s);
    return r;
}

static void test_same_seed_same_trace(void **state)
{
    (void)state;
    uint64_t seed = h_seed(11);
    run_out a = run_scenario(seed), b = run_scenario(seed), c = run_scenario(seed + 1);
    if (a.hash != b.hash || strcmp(a.json, b.json) != 0)
        fail_msg("seed %" PRIu64 " gave two different runs:\n%s\n%s", seed, a.json, b.json);
    assert_true(a.hash != c.hash);
    h_note("seed %" PRIu64 ": trace %016" PRIx64 " twice; seed+1 gives %016" PRIx64, seed, a.hash,
           c.hash);
    free(a.json);
    free(b.json);
    free(c.json);
}

/* Cuts the two non-deterministic members off the end of the JSON object. */
static void strip_wall(char *json)
{
    char *p = strstr(json, ",\"wall_s\":");
    assert_non_null(p);
    *p = '\0';
}

static void test_cli_json_deterministic(void **state)
{
    (void)state;
    static char a[16384], b[16384];
    char *argv[] = {"rumor-sim", "--nodes", "24", "--seed", "12",   "--duration", "60", "--profile",
                    "local",     "--crash", "1",  "--loss", "0.05", "--one-seed"};
    int argc = (int)(sizeof(argv) / sizeof(argv[0]));
    assert_int_equal(h_cli(a, sizeof(a), argc, argv), 0);
    assert_int_equal(h_cli(b, sizeof(b), argc, argv), 0);
    assert_non_null(strstr(a, "\"convergence\":"));
    assert_non_null(strstr(a, "\"detection\":{"));
    assert_non_null(strstr(a, "\"peak_rss_kb\":"));
    strip_wall(a);
    strip_wall(b);
    assert_string_equal(a, b);
    h_note("%s}", a);
}

static void expect_exit_2(int argc, char **argv)
{
    char buf[4096];
    int rc = h_cli(buf, sizeof(buf), argc, argv);
    if (rc != 2)
        fail_msg("'%s %s' exited %d, want 2: %s", argv[1], argc > 2 ? argv[2] : "", rc, buf);
    assert_non_null(strstr(buf, "rumor-sim:"));
}

static void test_cli_bad_arguments(void **state)
{
    (void)state;
    char *a1[] = {"rumor-sim", "--nodes", "abc"};
    char *a2[] = {"rumor-sim", "--bogus"};
    char *a3[] = {"rumor-sim", "--loss", "1.5"};
    char *a4[] = {"rumor-sim", "--profile", "moon"};
    char *a5[] = {"rumor-sim", "--nodes", "4", "--crash", "4"};
    char *a6[] = {"rumor-sim", "--duration"};
    expect_exit_2(3, a1);
    expect_exit_2(2, a2);
    expect_exit_2(3, a3);
    expect_exit_2(3, a4);
    expect_exit_2(5, a5);
    expect_exit_2(2, a6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_same_trace),
        cmocka_unit_test(test_cli_json_deterministic),
        cmocka_unit_test(test_cli_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
