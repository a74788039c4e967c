/*
 * Every wait has a bound: with ihsmd stopped (SIGSTOP) a call with
 * timeout_ms 300 returns IHSM_ERR_TIMEOUT within about a second, for a
 * blocked caller and for requests nobody waits on; after SIGCONT the late
 * answers are dropped and the next call succeeds on the same connection.
 * A stopped ihsmd also lets the socket fill up: what does not fit is sent
 * by the ring later, and nothing is lost.
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

/* With ihsmd stopped the socket fills up: frames that meet a full socket
 * go to the ring (IORING_OP_SEND) and leave once ihsmd reads again; none
 * is lost, none times out. */
static void full_socket_drains_through_the_ring(void **state)
{
    enum { N = 160, PLAIN = 30000 };
    static uint8_t plain[PLAIN];
    ihsm_queue *q = ot_queue(&T, 8000, 0);
    ihsm_queue_stats st;
    ihsm_req *r[N];
    double t0;
    int done = 0;

    assert_non_null(q);
    assert_int_equal(ot_random(q, 8), IHSM_OK);
    assert_int_equal(kill(T.dd.pid, SIGSTOP), 0);
    for (int i = 0; i < N; i++) {
        ihsm_wr *w;

        assert_non_null(r[i] = ihsm_req_new(q, IHSM_CMD_AEAD_SEAL));
        w = ihsm_req_payload(r[i]);
        ihsm_wr_u32(w, 0xdead); /* no such key: answered IHSM_ERR_BAD_HANDLE */
        ihsm_wr_u32(w, IHSM_AEAD_AES_GCM);
        ihsm_wr_bytes(w, plain, 12);
        ihsm_wr_bytes(w, NULL, 0);
        ihsm_wr_bytes(w, plain, sizeof(plain));
        ihsm_wr_u32(w, 16);
        assert_int_equal(ihsm_req_submit(r[i]), IHSM_OK);
        if (i % 16 == 15)
            assert_true(ihsm_queue_poll(q, 0) >= 0);
    }
    /* 4.8 MB of requests cannot all be in a stopped peer's socket */
    for (int i = 0; i < 10; i++)
        assert_true(ihsm_queue_poll(q, 5) >= 0);
    assert_int_equal(kill(T.dd.pid, SIGCONT), 0);
    t0 = ot_now();
    while (done < N && ot_now() - t0 < 6.0) {
        assert_true(ihsm_queue_poll(q, 50) >= 0);
        done = 0;
        for (int i = 0; i < N; i++)
            done += ihsm_req_done(r[i]);
    }
    assert_int_equal(done, N);
    for (int i = 0; i < N; i++) {
        ihsm_result res;

        assert_int_equal(ihsm_req_wait(r[i], &res), IHSM_ERR_BAD_HANDLE);
        ihsm_req_free(r[i]);
    }
    ihsm_queue_get_stats(q, &st);
    printf("%d requests of %d bytes through a full socket in %llu frames\n", N, PLAIN,
           (unsigned long long)st.frames_sent - 1);
    assert_int_equal(st.timeouts, 0);
    assert_int_equal(st.device_gone, 0);
    assert_int_equal(st.inflight, 0);
    assert_int_equal(ot_random(q, 8), IHSM_OK);
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
        cmocka_unit_test(full_socket_drains_through_the_ring),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
