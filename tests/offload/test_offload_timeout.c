/*
 * Every wait has a bound: with ihsmd stopped (SIGSTOP) a call with
 * timeout_ms 300 returns IHSM_ERR_TIMEOUT within about a second, for a
 * blocked caller and for requests nobody waits on; after SIGCONT the late
 * answers are dropped and the next call succeeds on the same connection.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "offtest.h"

static struct ot T;

static void stopped_device_times_out(void **state)
{
    ihsm_queue *q = ot_queue(&T, 300, 0);
    ihsm_queue_stats st;
    ihsm_result res;
    ihsm_req *r[8];
    double t0, dt;

    assert_non_null(q);
    assert_int_equal(ot_random(q, 32), IHSM_OK);

    assert_int_equal(kill(T.dd.pid, SIGSTOP), 0);
    t0 = ot_now();
    assert_int_equal(ot_random(q, 32), IHSM_ERR_TIMEOUT);
    dt = ot_now() - t0;
    printf("blocked call: IHSM_ERR_TIMEOUT after %.0f ms\n", dt * 1e3);
    assert_true(dt >= 0.29 && dt < 1.0);

    /* requests in flight with nobody blocked on them expire too */
    for (int i = 0; i < 8; i++)
        assert_non_null(r[i] = ot_random_req(q, 16));
    t0 = ot_now();
    for (;;) {
        int done = 0;

        assert_true(ihsm_queue_poll(q, 50) >= 0);
        for (int i = 0; i < 8; i++)
            done += ihsm_req_done(r[i]);
        if (done == 8)
            break;
        assert_true(ot_now() - t0 < 1.5);
    }
    dt = ot_now() - t0;
    printf("8 polled requests: done after %.0f ms\n", dt * 1e3);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(ihsm_req_wait(r[i], &res), IHSM_ERR_TIMEOUT);
        assert_null(res.data);
        ihsm_req_free(r[i]);
    }
    ihsm_queue_get_stats(q, &st);
    assert_int_equal(st.timeouts, 9);
    assert_int_equal(st.inflight, 9); /* still owed an answer by the device */

    assert_int_equal(kill(T.dd.pid, SIGCONT), 0);
    assert_int_equal(ot_random(q, 32), IHSM_OK);
    for (int i = 0; i < 50; i++)
        assert_int_equal(ot_random(q, 32), IHSM_OK);
    ihsm_queue_get_stats(q, &st);
    assert_int_equal(st.inflight, 0); /* late answers reclaimed their slots */
    assert_int_equal(st.reconnects, 0);
    assert_int_equal(st.device_gone, 0);
    assert_int_equal(st.timeouts, 9);
    ihsm_queue_free(q);
}

static int setup(void **state)
{
    return ot_start(&T);
}

static int teardown(void **state)
{
    if (T.dd.pid > 0)
        kill(T.dd.pid, SIGCONT);
    ot_cleanup(&T);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stopped_device_times_out),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
