/*
 * The invariant checker itself: fed forged events, it must flag each kind of violation (and stay
 * quiet for legal sequences). Without this, a checker that never fires would look like a healthy
 * engine.
 */
#include "helper_sim.h"
#include "sim_internal.h"

#include <string.h>

static rumor_event forged(rumor_event_type t, uint32_t member, uint32_t inc)
{
    rumor_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = t;
    ev.member.incarnation = inc;
    ev.member.state = t == RUMOR_EVENT_MEMBER_FAILED    ? RUMOR_MEMBER_FAILED
                      : t == RUMOR_EVENT_MEMBER_SUSPECT ? RUMOR_MEMBER_SUSPECT
                      : t == RUMOR_EVENT_MEMBER_LEFT    ? RUMOR_MEMBER_LEFT
                                                        : RUMOR_MEMBER_ALIVE;
    rumor_sim_addr(&ev.member.addr, member);
    return ev;
}

/* Three started nodes that know nothing of each other (no joins), so the engines emit nothing
 * that interferes with the forged events. */
static rumor_sim *three(void)
{
    rumor_sim *s = h_sim_new(3, 1, RUMOR_PROFILE_LOCAL);
    for (uint32_t i = 0; i < 3; i++)
        assert_int_equal(rumor_sim_node_start(s, i, 0), 0);
    return s;
}

static void feed(rumor_sim *s, uint32_t obs, rumor_event_type t, uint32_t member, uint32_t inc)
{
    rumor_event ev = forged(t, member, inc);
    sim_check_event(s, obs, &ev);
}

static void test_legal_sequence_passes(void **state)
{
    (void)state;
    rumor_sim *s = three();
    feed(s, 0, RUMOR_EVENT_MEMBER_JOIN, 1, 0);
    feed(s, 0, RUMOR_EVENT_MEMBER_SUSPECT, 1, 0);
    feed(s, 0, RUMOR_EVENT_MEMBER_ALIVE, 1, 1);
    feed(s, 0, RUMOR_EVENT_MEMBER_FAILED, 1, 1);
    feed(s, 0, RUMOR_EVENT_MEMBER_JOIN, 1, 2);
    feed(s, 0, RUMOR_EVENT_MEMBER_REAPED, 2, 0);
    assert_null(rumor_sim_error(s));
    rumor_member_state st;
    uint32_t inc;
    assert_true(rumor_sim_view(s, 0, 1, &st, &inc));
    assert_int_equal(st, RUMOR_MEMBER_ALIVE);
    assert_int_equal(inc, 2);
    rumor_sim_del(s);
}

static void expect_violation(rumor_sim *s, const char *needle)
{
    const char *err = rumor_sim_error(s);
    assert_non_null(err);
    if (!strstr(err, needle))
        fail_msg("violation '%s' does not mention '%s'", err, needle);
    assert_int_equal(rumor_sim_run_for(s, 1), RUMOR_ERR_STATE);
    rumor_sim_del(s);
}

static void test_incarnation_going_down(void **state)
{
    (void)state;
    rumor_sim *s = three();
    feed(s, 0, RUMOR_EVENT_MEMBER_JOIN, 1, 5);
    feed(s, 0, RUMOR_EVENT_MEMBER_SUSPECT, 1, 4);
    expect_violation(s, "went down");
}

static void test_revived_without_higher_incarnation(void **state)
{
    (void)state;
    rumor_sim *s = three();
    feed(s, 0, RUMOR_EVENT_MEMBER_JOIN, 1, 3);
    feed(s, 0, RUMOR_EVENT_MEMBER_FAILED, 1, 3);
    feed(s, 0, RUMOR_EVENT_MEMBER_JOIN, 1, 3);
    expect_violation(s, "back from failed");
}

static void test_left_revived(void **state)
{
    (void)state;
    rumor_sim *s = three();
    feed(s, 2, RUMOR_EVENT_MEMBER_LEFT, 1, 2);
    feed(s, 2, RUMOR_EVENT_MEMBER_ALIVE, 1, 2);
    expect_violation(s, "back from left");
}

static void test_self_suspected(void **state)
{
    (void)state;
    rumor_sim *s = three();
    feed(s, 1, RUMOR_EVENT_MEMBER_SUSPECT, 1, 0);
    expect_violation(s, "reports itself");
}

static void test_unknown_address(void **state)
{
    (void)state;
    rumor_sim *s = three();
    feed(s, 0, RUMOR_EVENT_MEMBER_JOIN, 7, 0);
    expect_violation(s, "never gave out");
}

/* Convergence is tracked from events alone, incrementally; check the bookkeeping directly. */
static void test_convergence_accounting(void **state)
{
    (void)state;
    rumor_sim *s = three();
    assert_false(rumor_sim_converged(s));
    for (uint32_t o = 0; o < 3; o++)
        for (uint32_t m = 0; m < 3; m++)
            if (o != m)
                feed(s, o, RUMOR_EVENT_MEMBER_JOIN, m, 0);
    assert_true(rumor_sim_converged(s));
    feed(s, 0, RUMOR_EVENT_MEMBER_SUSPECT, 2, 0);
    assert_true(rumor_sim_converged(s)); /* a suspect is still a member */
    feed(s, 0, RUMOR_EVENT_MEMBER_FAILED, 2, 0);
    assert_false(rumor_sim_converged(s));
    assert_int_equal(rumor_sim_node_crash(s, 2), 0);
    assert_true(rumor_sim_converged(s)); /* the live nodes 0 and 1 list each other */
    assert_int_equal(rumor_sim_node_restart(s, 2, true, 2), 0);
    assert_false(rumor_sim_converged(s)); /* node 0 has it failed, the new node 2 knows nobody */
    feed(s, 0, RUMOR_EVENT_MEMBER_JOIN, 2, 1);
    feed(s, 2, RUMOR_EVENT_MEMBER_JOIN, 0, 0);
    feed(s, 2, RUMOR_EVENT_MEMBER_JOIN, 1, 0);
    assert_true(rumor_sim_converged(s)); /* node 1 still lists node 2 from its earlier life */
    assert_null(rumor_sim_error(s));
    rumor_sim_del(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_legal_sequence_passes),
        cmocka_unit_test(test_incarnation_going_down),
        cmocka_unit_test(test_revived_without_higher_incarnation),
        cmocka_unit_test(test_left_revived),
        cmocka_unit_test(test_self_suspected),
        cmocka_unit_test(test_unknown_address),
        cmocka_unit_test(test_convergence_accounting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
