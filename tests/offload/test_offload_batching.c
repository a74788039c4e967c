/*
 * Batching policy against the real ihsmd: with 64 RANDOM requests kept in
 * flight from one thread they share frames; with one in flight every
 * request leaves at once in a frame of its own, never held for delay_us.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "offtest.h"

static struct ot T;

static int setup(void **state)
{
    return ot_start(&T);
}

static int teardown(void **state)
{
    ot_cleanup(&T);
    return 0;
}

static void stats_delta(ihsm_queue *q, const ihsm_queue_stats *before, ihsm_queue_stats *d)
{
    ihsm_queue_get_stats(q, d);
    d->requests -= before->requests;
    d->completions -= before->completions;
    d->frames_sent -= before->frames_sent;
    d->frames_received -= before->frames_received;
}

/* Keep n requests in flight for secs with ihsm_req_* and ihsm_queue_poll;
 * returns the longest submit-to-done time seen, in seconds. */
static double keep_in_flight(ihsm_queue *q, int n, double secs, long *ops)
{
    ihsm_req *r[64];
    double t0[64], worst = 0, end = ot_now() + secs;

    assert_true(n <= 64);
    for (int i = 0; i < n; i++) {
        t0[i] = ot_now();
        r[i] = ot_random_req(q, 32);
        assert_non_null(r[i]);
    }
    for (;;) {
        int live = 0;

        assert_true(ihsm_queue_poll(q, 100) >= 0);
        for (int i = 0; i < n; i++) {
            ihsm_result res;
            double now;

            if (r[i] == NULL) {
                continue;
            }
            live++;
            if (!ihsm_req_done(r[i]))
                continue;
            now = ot_now();
            assert_int_equal(ihsm_req_wait(r[i], &res), IHSM_OK);
            assert_int_equal(res.len, 4 + 32);
            ihsm_result_clear(&res);
            ihsm_req_free(r[i]);
            r[i] = NULL;
            (*ops)++;
            if (now - t0[i] > worst)
                worst = now - t0[i];
            if (now < end) {
                t0[i] = ot_now();
                r[i] = ot_random_req(q, 32);
                assert_non_null(r[i]);
            }
        }
        if (live == 0)
            break;
    }
    return worst;
}

static void many_in_flight_share_frames(void **state)
{
    ihsm_queue *q = ot_queue(&T, 0, 0);
    ihsm_queue_stats before, d;
    long ops = 0;

    assert_non_null(q);
    assert_int_equal(ihsm_queue_connect(q), IHSM_OK);
    ihsm_queue_get_stats(q, &before);
    keep_in_flight(q, 64, 1.0, &ops);
    stats_delta(q, &before, &d);
    printf("64 in flight: %ld requests in %llu frames (%.1f per frame), largest %llu\n", ops,
           (unsigned long long)d.frames_sent, (double)d.requests / (double)d.frames_sent,
           (unsigned long long)d.largest_batch);
    assert_true(ops > 1000);
    assert_int_equal(d.requests, (uint64_t)ops);
    assert_int_equal(d.completions, (uint64_t)ops);
    assert_true(d.requests >= 16 * d.frames_sent);
    assert_true(d.largest_batch > 16);
    assert_int_equal(d.inflight, 0);
    assert_int_equal(d.timeouts, 0);
    ihsm_queue_free(q);
}

static void one_in_flight_leaves_at_once(void **state)
{
    /* a delay_us of 200 ms would show in every latency if requests waited
     * for company */
    ihsm_queue *q = ot_queue(&T, 0, 200000);
    ihsm_queue_stats before, d;
    long ops = 0;
    double worst;

    assert_non_null(q);
    assert_int_equal(ihsm_queue_connect(q), IHSM_OK);
    ihsm_queue_get_stats(q, &before);
    worst = keep_in_flight(q, 1, 0.5, &ops);
    stats_delta(q, &before, &d);
    printf("1 in flight: %ld requests in %llu frames, worst latency %.1f ms\n", ops,
           (unsigned long long)d.frames_sent, worst * 1e3);
    assert_true(ops > 100);
    assert_int_equal(d.frames_sent, d.requests);
    assert_int_equal(d.largest_batch, 1);
    assert_true(worst < 0.1);
    ihsm_queue_free(q);
}

static void blocking_calls_leave_at_once(void **state)
{
    ihsm_queue *q = ot_queue(&T, 0, 200000);
    ihsm_queue_stats st;
    double t0 = ot_now();

    assert_non_null(q);
    for (int i = 0; i < 200; i++)
        assert_int_equal(ot_random(q, 16), IHSM_OK);
    ihsm_queue_get_stats(q, &st);
    assert_int_equal(st.requests, 200);
    assert_int_equal(st.frames_sent, 200);
    assert_int_equal(st.frames_received, 200);
    /* 200 waits of delay_us would take 40 s */
    assert_true(ot_now() - t0 < 5.0);
    ihsm_queue_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(many_in_flight_share_frames),
        cmocka_unit_test(one_in_flight_leaves_at_once),
        cmocka_unit_test(blocking_calls_leave_at_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
