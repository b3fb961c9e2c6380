/*
 * Fuzz target for cluster key operations (docs/protocol.md section 13). The first byte picks
 * what the input is:
 *
 *   0  an answer, for rumor_keys_answer_decode (what an asker reads from any member);
 *   1  a sequence of requests (u8 length + bytes each) for the responder of a sealed node with
 *      keys_query on, each as if it had arrived sealed (bit 7 of the length clear) or not.
 *
 * Checked besides the sanitizers: every answer the responder writes decodes and names the
 * outcome; the keyring never becomes empty, never exceeds RUMOR_KEYRING_MAX and keeps a
 * primary; a request that came unsealed or failed to decode changes nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/node.h"
#include "fuzz_common.h"
#include "rumor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

static void answers(const uint8_t *data, size_t size)
{
    rumor_keys_answer a;
    int rc = rumor_keys_answer_decode(data, size, &a);
    check(rc == RUMOR_OK || rc == RUMOR_ERR_MALFORMED || rc == RUMOR_ERR_VERSION);
    if (rc == RUMOR_OK) {
        check(strlen(a.error) < sizeof(a.error) && a.nkeys <= RUMOR_KEYRING_MAX);
        check((a.code == RUMOR_OK) == (a.error[0] == '\0'));
    }
}

static void requests(const uint8_t *data, size_t size)
{
    static const uint8_t key0[RUMOR_KEY_BYTES] = {9, 8, 7, 6, 5, 4, 3, 2, 1};
    rumor_settings s;
    fuzz_settings(&s, "keyq", 1);
    s.keys = &key0;
    s.nkeys = 1;
    memset(s.seal_secret, 0x5a, sizeof(s.seal_secret));
    s.seal_epoch = 1000;
    s.keys_query = true;
    rumor_node *n = NULL;
    if (rumor_node_new(&n, &s, 0) != RUMOR_OK)
        return;
    static uint8_t buf[2048];
    size_t at = 0;
    while (at < size) {
        uint8_t len = data[at++];
        bool sealed = (len & 0x80) == 0;
        len &= 0x7f;
        if (len > size - at)
            len = (uint8_t)(size - at);
        size_t before = rumor_node_keyring_count(n);
        uint8_t primary[RUMOR_KEY_BYTES], after_primary[RUMOR_KEY_BYTES];
        check(rumor_node_keyring_key(n, 0, primary) == RUMOR_OK);
        bool changed = false;
        uint8_t op = 0;
        size_t out =
            keyq_answer(n, wire_str_of(data + at, len), sealed, buf, sizeof(buf), &changed, &op);
        at += len;
        rumor_keys_answer a;
        check(out > 0 && rumor_keys_answer_decode(buf, out, &a) == RUMOR_OK);
        check(a.op == op);
        size_t count = rumor_node_keyring_count(n);
        check(count >= 1 && count <= RUMOR_KEYRING_MAX);
        check(rumor_node_keyring_key(n, 0, after_primary) == RUMOR_OK);
        if (!changed) {
            check(count == before && memcmp(primary, after_primary, sizeof(primary)) == 0);
        } else {
            check(a.code == RUMOR_OK && sealed);
        }
        if (a.code != RUMOR_OK)
            check(!changed);
    }
    rumor_node_del(n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] == 0)
        answers(data + 1, size - 1);
    else if (data[0] == 1)
        requests(data + 1, size - 1);
    return 0;
}
