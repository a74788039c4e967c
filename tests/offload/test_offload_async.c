/*
 * OpenSSL ASYNC jobs: 32 jobs on one thread, each making 100 RANDOM calls
 * through ihsm_queue_call. A job pauses instead of blocking; the loop below
 * resumes a job when its wait fd (one per wait ctx) becomes readable, as
 * HAProxy and `openssl speed -async_jobs` do. Every job completes, and
 * since requests queue while others are in flight, frames carry more than
 * one request on average. Every call pauses its job at least once, even
 * when the answer is already there: HAProxy aborts on a wait fd it was
 * never shown through SSL_ERROR_WANT_ASYNC.
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/async.h>

#include "offtest.h"

#define JOBS  32
#define CALLS 100

static struct ot T;
static ihsm_queue *Q;
static int paused; /* job pauses seen, all jobs */

struct job_arg {
    int id, calls;
};

static int job_main(void *varg)
{
    struct job_arg *a = *(struct job_arg **)varg;

    for (int i = 0; i < CALLS; i++) {
        int st = ot_random(Q, 16 + (uint32_t)(i % 16));

        if (st != IHSM_OK) {
            fprintf(stderr, "job %d call %d: %s\n", a->id, i, ihsm_status_name(st));
            return 1;
        }
        a->calls++;
    }
    return 0;
}

static OSSL_ASYNC_FD wait_fd(ASYNC_WAIT_CTX *ctx)
{
    OSSL_ASYNC_FD fd = -1;
    size_t n = 0;

    assert_int_equal(ASYNC_WAIT_CTX_get_all_fds(ctx, NULL, &n), 1);
    assert_int_equal(n, 1); /* exactly one fd of ours per wait ctx */
    assert_int_equal(ASYNC_WAIT_CTX_get_all_fds(ctx, &fd, &n), 1);
    return fd;
}

static void async_jobs_batch(void **state)
{
    ASYNC_JOB *job[JOBS] = { 0 };
    ASYNC_WAIT_CTX *ctx[JOBS];
    struct job_arg arg[JOBS], *argp;
    int finished[JOBS] = { 0 }, left = JOBS, ret;
    ihsm_queue_stats st;
    double t0 = ot_now();

    assert_int_equal(ASYNC_init_thread(JOBS, JOBS), 1);
    for (int i = 0; i < JOBS; i++) {
        arg[i].id = i;
        arg[i].calls = 0;
        argp = &arg[i];
        assert_non_null(ctx[i] = ASYNC_WAIT_CTX_new());
        switch (ASYNC_start_job(&job[i], ctx[i], &ret, job_main, &argp, sizeof(argp))) {
        case ASYNC_PAUSE:
            paused++;
            break;
        case ASYNC_FINISH:
            fail_msg("job %d finished without pausing", i);
            break;
        default:
            fail_msg("ASYNC_start_job failed");
        }
    }
    /* distinct fds: HAProxy registers each connection's in its poller */
    for (int i = 0; i < JOBS; i++)
        for (int j = 0; j < i; j++)
            assert_int_not_equal(wait_fd(ctx[i]), wait_fd(ctx[j]));

    while (left > 0) {
        struct pollfd pfd[JOBS];
        int who[JOBS], n = 0, r;

        for (int i = 0; i < JOBS; i++) {
            if (finished[i])
                continue;
            pfd[n].fd = wait_fd(ctx[i]);
            pfd[n].events = POLLIN;
            who[n++] = i;
        }
        r = poll(pfd, (nfds_t)n, 5000);
        assert_true(r > 0); /* a paused job is always resumed in time */
        for (int k = 0; k < n; k++) {
            int i = who[k];

            if (!(pfd[k].revents & POLLIN))
                continue;
            argp = &arg[i];
            switch (ASYNC_start_job(&job[i], ctx[i], &ret, job_main, &argp, sizeof(argp))) {
            case ASYNC_PAUSE:
                paused++;
                break;
            case ASYNC_FINISH:
                assert_int_equal(ret, 0);
                finished[i] = 1;
                left--;
                break;
            default:
                fail_msg("ASYNC_start_job failed on resume");
            }
        }
    }
    for (int i = 0; i < JOBS; i++) {
        assert_int_equal(arg[i].calls, CALLS);
        ASYNC_WAIT_CTX_free(ctx[i]);
    }
    ASYNC_cleanup_thread();
    ihsm_queue_get_stats(Q, &st);
    printf("%d jobs x %d calls in %.2f s: %llu requests in %llu frames (%.2f per frame), "
           "largest %llu, %d pauses\n", JOBS, CALLS, ot_now() - t0,
           (unsigned long long)st.requests, (unsigned long long)st.frames_sent,
           (double)st.requests / (double)st.frames_sent, (unsigned long long)st.largest_batch,
           paused);
    assert_int_equal(st.requests, JOBS * CALLS);
    assert_int_equal(st.completions, JOBS * CALLS);
    assert_true(st.requests > st.frames_sent);
    /* every call paused its job at least once: HAProxy registers a job's
     * wait fd only when it sees the job pause */
    assert_true(paused >= JOBS * CALLS);
    assert_int_equal(st.timeouts, 0);
    assert_int_equal(st.inflight, 0);
}

static int setup(void **state)
{
    if (ot_start(&T) != 0 || (Q = ot_queue(&T, 0, 0)) == NULL)
        return -1;
    return ihsm_queue_connect(Q) == IHSM_OK ? 0 : -1;
}

static int teardown(void **state)
{
    ihsm_queue_free(Q);
    ot_cleanup(&T);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(async_jobs_batch),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
