/*
 * Encryption in the simulator: keys derived from the seed, each node's keyring (kept across
 * restarts, as the agent keeps its keyring file), keyring faults for rotations, and an attacker
 * that captures accepted datagrams and injects them again later, to their recipient or to
 * another node. The simulator is a host: it derives each life's seal secret from its own PRNG,
 * so runs stay reproducible, and each life's epoch from virtual time and the life count, so it
 * grows across restarts as the protocol requires.
 */
#include "sim_internal.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

void rumor_sim_key(const rumor_sim *s, uint32_t index, uint8_t out[RUMOR_KEY_BYTES])
{
    uint8_t in[16];
    for (int b = 0; b < 8; b++)
        in[b] = (uint8_t)(s->o.seed >> (56 - 8 * b));
    for (int b = 0; b < 8; b++)
        in[8 + b] = (uint8_t)((uint64_t)index >> (56 - 8 * b));
    crypto_generichash(out, RUMOR_KEY_BYTES, in, sizeof(in), (const uint8_t *)"rumor-sim key", 13);
}

void sim_seal_settings(rumor_sim *s, uint32_t i, rumor_settings *st,
                       uint8_t keys[RUMOR_KEYRING_MAX][RUMOR_KEY_BYTES])
{
    sim_node *nd = &s->nodes[i];
    size_t n = 0;
    rumor_sim_key(s, nd->primary, keys[n++]);
    for (uint32_t k = 0; k < 32 && n < RUMOR_KEYRING_MAX; k++)
        if ((nd->keys >> k & 1u) && k != nd->primary)
            rumor_sim_key(s, k, keys[n++]);
    st->keys = (const uint8_t(*)[RUMOR_KEY_BYTES])keys;
    st->nkeys = n;
    /* Cluster key operations (rumor_node_keys_query) are applied, and their changes kept for
     * restarts by sim_seal_keyring_changed, as the agent keeps its keyring file. */
    st->keys_query = true;
    for (size_t b = 0; b < RUMOR_SEAL_SECRET_BYTES; b += 8) {
        uint64_t r = sim_rng_next(s->rng);
        memcpy(st->seal_secret + b, &r, 8);
    }
    /* Virtual milliseconds, times 1024 lives per millisecond: larger at every start. */
    st->seal_epoch = (s->now + 1) * 1024u + ((nd->life + 1u) & 1023u);
    if (sim_xchacha_only(s, i))
        st->seal_cipher = RUMOR_SEAL_CIPHER_XCHACHA;
}

bool sim_xchacha_only(const rumor_sim *s, uint32_t i)
{
    return s->o.xchacha_every && i % s->o.xchacha_every == 0;
}

void sim_seal_count(rumor_sim *s, const sim_entry *e)
{
    const sim_pkt *p = e->p;
    if (p->len < 4 || !(p->data[3] & 0x01)) /* plaintext (header flag SEALED clear) */
        return;
    if (p->data[3] & 0x02) { /* AESGCM */
        s->dgrams_aes++;
        s->dgrams_aes_to_xchacha += sim_xchacha_only(s, e->node);
    } else {
        s->dgrams_xchacha++;
    }
}

int rumor_sim_node_keyring(rumor_sim *s, uint32_t i, rumor_sim_fault_kind op, uint32_t key)
{
    if (i >= s->n || key >= 32)
        return RUMOR_ERR_INVALID;
    sim_node *nd = &s->nodes[i];
    uint8_t k[RUMOR_KEY_BYTES];
    rumor_sim_key(s, key, k);
    int rc = 0;
    if (nd->eng) {
        if (sim_rec_on(s, i))
            sim_rec_keyring(s, (uint8_t)op, k);
        rc = op == RUMOR_SIM_FAULT_KEY_INSTALL ? rumor_node_keyring_install(nd->eng, k)
             : op == RUMOR_SIM_FAULT_KEY_USE   ? rumor_node_keyring_use(nd->eng, k)
                                               : rumor_node_keyring_remove(nd->eng, k);
    } else if ((op == RUMOR_SIM_FAULT_KEY_USE && !(nd->keys >> key & 1u)) ||
               (op == RUMOR_SIM_FAULT_KEY_REMOVE && key == nd->primary)) {
        rc = op == RUMOR_SIM_FAULT_KEY_USE ? RUMOR_ERR_NOT_FOUND : RUMOR_ERR_STATE;
    }
    memset(k, 0, sizeof(k));
    if (rc == 0) {
        if (op == RUMOR_SIM_FAULT_KEY_INSTALL)
            nd->keys |= 1u << key;
        else if (op == RUMOR_SIM_FAULT_KEY_USE)
            nd->primary = (uint8_t)key;
        else
            nd->keys &= ~(1u << key);
    }
    sim_log(s, "node-%u keyring %s key %u: %d", i,
            op == RUMOR_SIM_FAULT_KEY_INSTALL ? "install"
            : op == RUMOR_SIM_FAULT_KEY_USE   ? "use"
                                              : "remove",
            key, rc);
    return rc;
}

void sim_seal_keyring_changed(rumor_sim *s, uint32_t i)
{
    sim_node *nd = &s->nodes[i];
    uint32_t keys = 0, primary = nd->primary;
    uint8_t held[RUMOR_KEY_BYTES], k[RUMOR_KEY_BYTES];
    size_t count = rumor_node_keyring_count(nd->eng);
    for (size_t j = 0; j < count; j++) {
        if (rumor_node_keyring_key(nd->eng, j, held) != RUMOR_OK)
            continue;
        for (uint32_t x = 0; x < 32; x++) {
            rumor_sim_key(s, x, k);
            if (sodium_memcmp(k, held, sizeof(k)) == 0) {
                keys |= 1u << x;
                if (j == 0)
                    primary = x;
                break;
            }
        }
    }
    memset(held, 0, sizeof(held));
    memset(k, 0, sizeof(k));
    /* Only the simulator's own keys can be remembered (a test uses nothing else). */
    nd->keys = keys | 1u << primary;
    nd->primary = (uint8_t)primary;
    sim_log(s, "node-%u keyring changed by a cluster key operation: keys %#x, primary %u", i, keys,
            primary);
}

/* A random node other than `self` (up or not: a replay to a node that is down just dies). */
static uint32_t other_node(rumor_sim *s, uint32_t self)
{
    if (s->n < 2)
        return self;
    uint32_t j = (uint32_t)sim_rng_below(s->rng, s->n - 1);
    return j >= self ? j + 1 : j;
}

void sim_seal_captured(rumor_sim *s, const sim_entry *e, int rc)
{
    if (rc != RUMOR_OK || !sim_rng_chance(s->rng, s->o.replay))
        return;
    const sim_pkt *p = e->p;
    sim_pkt *copy = malloc(sizeof(*copy) + p->len);
    if (!copy)
        return;
    memcpy(copy, p, sizeof(*copy) + p->len);
    copy->replay = true;
    copy->orig_dst = e->node;
    copy->orig_life = s->nodes[e->node].life;
    uint32_t to = sim_rng_chance(s->rng, 0.5) ? e->node : other_node(s, e->node);
    uint64_t delay = s->o.replay_delay_ms ? s->o.replay_delay_ms : 5000;
    sim_entry r = {.kind = SIM_EV_DGRAM, .node = to, .p = copy};
    sim_push(s, s->now + 1 + sim_rng_below(s->rng, delay), &r);
}

void sim_seal_deliver_replay(rumor_sim *s, const sim_entry *e)
{
    const sim_pkt *p = e->p;
    sim_node *dst = &s->nodes[e->node];
    s->trace = sim_hash_u64(s->trace, (uint64_t)p->src << 32 | p->len | 1ull << 63);
    rumor_addr from;
    rumor_sim_addr(&from, p->src);
    if (sim_rec_on(s, e->node))
        sim_rec_recv(s, &from, p->data, p->len);
    rumor_stats before;
    rumor_node_stats(dst->eng, &before);
    int rc = rumor_node_receive(dst->eng, &from, p->data, p->len, s->now);
    rumor_stats after;
    rumor_node_stats(dst->eng, &after);
    s->replays_injected++;
    bool restarted = e->node == p->orig_dst && dst->life != p->orig_life;
    if (rc != RUMOR_OK) {
        s->replays_rejected++;
    } else if (s->o.encrypt && restarted && after.stale_epoch_in > before.stale_epoch_in) {
        /* It named an earlier life of the recipient: only its PING or PING_REQ was answered
         * (docs/protocol.md section 3.1.4). Within one life the window must refuse it. */
        s->replays_limited++;
    } else if (restarted) {
        /* Taken in full by a recipient restarted since: the hole section 3.1.4 closes for
         * sealed traffic; plaintext has no replay protection. */
        s->replays_after_restart++;
        if (s->o.encrypt)
            sim_violation(s,
                          "replayed datagram from node-%u accepted in full by node-%u after its "
                          "restart",
                          p->src, e->node);
    } else if (s->o.encrypt) {
        sim_violation(s, "replayed datagram from node-%u accepted by node-%u (%s)", p->src, e->node,
                      e->node == p->orig_dst ? "its recipient" : "another node");
    }
    sim_after_call(s, e->node);
}
