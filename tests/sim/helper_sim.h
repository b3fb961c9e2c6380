/*
 * Helpers shared by the simulation tests: building clusters, running them, and failing with the
 * seed printed so a failing run can be replayed (RUMOR_SIM_SEED=<seed> overrides every test's
 * seed; RUMOR_SIM_LOG=1 traces faults to stderr, RUMOR_SIM_LOG=2 every engine event too).
 */
#ifndef RUMOR_TEST_HELPER_SIM_H
#define RUMOR_TEST_HELPER_SIM_H

#include "sim.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first. */
#include <cmocka.h>

/* The seed a test should use: `def`, or RUMOR_SIM_SEED from the environment. */
uint64_t h_seed(uint64_t def);

/* Creates a simulator of `n` nodes with the profile's engine and link defaults. */
rumor_sim *h_sim_new(uint32_t n, uint64_t seed, rumor_profile profile);

/* Same, with options the caller filled. */
rumor_sim *h_sim_new_opts(const rumor_sim_options *o);

/* Fails the test with the seed and a message when `ok` is false. */
void h_check(const rumor_sim *s, int ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Runs `ms` virtual milliseconds; fails on an invariant violation. */
void h_run(rumor_sim *s, uint64_t ms);

/* Starts node 0, then nodes 1..n-1 `spread_ms / n` apart, each joining through `seed_node`
 * (RUMOR_SIM_SEED_RANDOM for a random started node). */
void h_start_cluster(rumor_sim *s, uint32_t n, uint32_t seed_node, uint64_t spread_ms);

/* Runs in 100 ms steps until every live node's events list every live node, or `max_ms` passed.
 * Returns the virtual time it took, or UINT64_MAX. */
uint64_t h_run_until_converged(rumor_sim *s, uint64_t max_ms);

/* Number of members node `obs`'s member table holds in state `st`, self included. */
uint32_t h_table_count(const rumor_sim *s, uint32_t obs, rumor_member_state st);

/* State of `member` in `obs`'s member table; -1 when absent. */
int h_table_state(const rumor_sim *s, uint32_t obs, uint32_t member, uint32_t *incarnation);

/* True when every running node other than `member` has it in state `st` in its member table. */
int h_all_see(const rumor_sim *s, uint32_t member, rumor_member_state st);

/* True when every running node has every running node alive in its member table. */
int h_all_alive(const rumor_sim *s);

/* Prints up to `max` (observer, member) pairs of running nodes where the observer's member table
 * does not hold the member alive, with what the table and the observer's events say. */
void h_dump_disagreement(const rumor_sim *s, unsigned max);

/* Prints a labelled line of timing to stdout (ctest -V shows it). */
void h_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Wall-clock seconds, for reporting test cost. */
double h_wall(void);

/* Runs a rumor-sim command line in-process; returns its exit code, and what it printed
 * (stdout, then stderr) in `out`, cut to `cap`. */
int h_cli(char *out, size_t cap, int argc, char **argv);

#endif
