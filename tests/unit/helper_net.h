/* A tiny in-process network for unit tests: nodes addressed by index, every datagram and stream
 * operation delivered after a fixed 1 ms, optional loss, node crash. Literal time, fixed seed. */
#ifndef TEST_HELPER_NET_H
#define TEST_HELPER_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "rumor.h"

#define TNET_MAX 64

typedef struct tnet tnet;

tnet *tnet_new(int nodes, rumor_profile profile, uint64_t seed);
void tnet_free(tnet *t);
/* Settings for node i before tnet_start (defaults filled by tnet_new). */
rumor_settings *tnet_settings(tnet *t, int i);
void tnet_start(tnet *t, int i);
rumor_node *tnet_node(tnet *t, int i);
rumor_addr tnet_addr(int i);
void tnet_join(tnet *t, int i, int seed);
/* Runs until `until` ms of virtual time. */
void tnet_run(tnet *t, uint64_t until);
uint64_t tnet_now(const tnet *t);
void tnet_crash(tnet *t, int i);
/* Drops datagrams with this probability (deterministic PRNG). */
void tnet_set_loss(tnet *t, double p);
/* Blocks traffic between i and j in both directions. */
void tnet_cut(tnet *t, int i, int j, bool cut);
/* State of `who` as seen by `observer`, or -1 when unknown. */
int tnet_state(tnet *t, int observer, int who);
/* Number of events of `type` about `who` seen by `observer`. */
int tnet_events(tnet *t, int observer, int who, rumor_event_type type);
/* Called with every event a node emits, after the harness counted it. The hook may call the
 * node (answer a query): what that sends is delivered like anything else. */
typedef void (*tnet_event_fn)(tnet *t, int node, const rumor_event *ev, void *ud);
void tnet_set_event_hook(tnet *t, tnet_event_fn fn, void *ud);
/* Drains node i's output now: what a direct API call made it send, and its events. */
void tnet_poll(tnet *t, int i);
/* Raw datagram injection, as if from `from` (any address). */
int tnet_inject(tnet *t, int to, const rumor_addr *from, const uint8_t *p, size_t len);
/* Sees every datagram and stream write as it is delivered (a packet capture). */
typedef void (*tnet_tap_fn)(void *ud, int from, int to, bool stream, const uint8_t *p, size_t len);
void tnet_tap(tnet *t, tnet_tap_fn fn, void *ud);
/* Restarts node i (a new rumor_node from its settings, which the caller may change first). */
void tnet_restart(tnet *t, int i);

/* Fills `n` bytes with start, start + 1, ... (keys and secrets for tests). */
void tnet_fill(uint8_t *p, size_t n, uint8_t start);

#endif
