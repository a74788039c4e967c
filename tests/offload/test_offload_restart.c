/*
 * ihsmd killed (-9) under load: four threads sign with a device key. The
 * daemon is stopped first so that requests are surely in flight, then
 * killed: those fail with IHSM_ERR_DEVICE_GONE at once (no hang). While it
 * is down calls fail with IHSM_ERR_CONNECT. Restarted on the same state
 * directory and socket, the next call reconnects and reopens the session;
 * the old handle is gone (IHSM_ERR_BAD_HANDLE), so the threads unmask the
 * saved blob again and carry on signing.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "offtest.h"

#define THREADS 4

static struct ot T;
static ihsm_queue *Q;
static struct ot_key K;
static pthread_mutex_t key_mu = PTHREAD_MUTEX_INITIALIZER;
static uint32_t handle; /* under key_mu */
static atomic_int stop, restarted;
static atomic_long gone_calls;

struct worker {
    pthread_t th;
    int id;
    long ok_before, ok_after, gone, connect_err, bad_handle, other, bad_sig;
    double worst_gone; /* longest call that ended in DEVICE_GONE, s */
};

static void *sign_loop(void *arg)
{
    struct worker *w = arg;

    for (int i = 0; !atomic_load(&stop); i++) {
        char msg[64];
        uint8_t *sig;
        size_t sig_len;
        uint32_t h, nh;
        double t0 = ot_now();
        int n = snprintf(msg, sizeof(msg), "thread %d message %d", w->id, i), st;

        pthread_mutex_lock(&key_mu);
        h = handle;
        pthread_mutex_unlock(&key_mu);
        st = ot_sign(Q, h, (const uint8_t *)msg, (size_t)n, &sig, &sig_len);
        switch (st) {
        case IHSM_OK:
            if (!dt_verify(K.pub, K.pub_len, IHSM_SIG_ECDSA, (const uint8_t *)msg, (size_t)n,
                           sig, sig_len))
                w->bad_sig++;
            else if (atomic_load(&restarted))
                w->ok_after++;
            else
                w->ok_before++;
            free(sig);
            break;
        case IHSM_ERR_DEVICE_GONE:
            w->gone++;
            atomic_fetch_add(&gone_calls, 1);
            if (ot_now() - t0 > w->worst_gone)
                w->worst_gone = ot_now() - t0;
            break;
        case IHSM_ERR_CONNECT: /* down: the next call tries again */
            w->connect_err++;
            usleep(5000);
            break;
        case IHSM_ERR_BAD_HANDLE:
            /* the device restarted: load the key again from its blob */
            w->bad_handle++;
            if (ot_unmask(Q, &K, &nh) == IHSM_OK) {
                pthread_mutex_lock(&key_mu);
                handle = nh;
                pthread_mutex_unlock(&key_mu);
            }
            break;
        default:
            fprintf(stderr, "thread %d: unexpected %s\n", w->id, ihsm_status_name(st));
            w->other++;
            break;
        }
    }
    return NULL;
}

static void kill9_fails_inflight_then_reconnects(void **state)
{
    struct worker w[THREADS];
    ihsm_queue_stats st;
    long gone = 0, after = 0, bad_handle = 0;
    double t_kill;

    memset(w, 0, sizeof(w));
    for (int i = 0; i < THREADS; i++) {
        w[i].id = i;
        assert_int_equal(pthread_create(&w[i].th, NULL, sign_loop, &w[i]), 0);
    }
    usleep(300 * 1000);

    /* stopped, the daemon still holds the connection: the threads' next
     * requests go out and stay in flight */
    assert_int_equal(kill(T.dd.pid, SIGSTOP), 0);
    usleep(100 * 1000);
    t_kill = ot_now();
    ot_kill9(&T);
    while (atomic_load(&gone_calls) < THREADS && ot_now() - t_kill < 2.0)
        usleep(1000);
    printf("%ld calls failed with IHSM_ERR_DEVICE_GONE within %.0f ms of the kill\n",
           atomic_load(&gone_calls), (ot_now() - t_kill) * 1e3);
    assert_true(atomic_load(&gone_calls) >= THREADS);

    usleep(200 * 1000); /* down for a while: IHSM_ERR_CONNECT */
    assert_int_equal(ot_restart_killed(&T), 0);
    atomic_store(&restarted, 1);
    usleep(700 * 1000);
    atomic_store(&stop, 1);

    for (int i = 0; i < THREADS; i++) {
        pthread_join(w[i].th, NULL);
        printf("thread %d: %ld ok, %ld gone (worst %.0f ms), %ld connect errors, %ld bad "
               "handle, %ld ok after restart\n", i, w[i].ok_before, w[i].gone,
               w[i].worst_gone * 1e3, w[i].connect_err, w[i].bad_handle, w[i].ok_after);
        assert_true(w[i].ok_before > 0);
        assert_true(w[i].ok_after > 0);
        assert_int_equal(w[i].other, 0);
        assert_int_equal(w[i].bad_sig, 0);
        /* failed at the kill, not after a timeout (10 s) */
        assert_true(w[i].worst_gone < 1.0);
        gone += w[i].gone;
        after += w[i].ok_after;
        bad_handle += w[i].bad_handle;
    }
    ihsm_queue_get_stats(Q, &st);
    assert_true(gone >= THREADS);
    assert_true(bad_handle >= 1);
    assert_true(after >= THREADS);
    assert_true(st.device_gone >= (uint64_t)THREADS);
    assert_true(st.reconnects >= 1);
    assert_int_equal(st.timeouts, 0);
    assert_int_equal(st.inflight, 0);
}

/* An idle client (nothing in flight) learns of the restart only when its
 * next send fails: that request must fail at once, not after the timeout,
 * and the one after it must succeed (every nginx worker's first handshake
 * after an ihsmd restart takes this path). */
static void idle_client_fails_fast_after_restart(void **state)
{
    double t0, took;
    int st;

    assert_int_equal(ot_random(Q, 16), IHSM_OK);
    /* a clean restart (SIGTERM): the old connection is closed, not reset */
    assert_int_equal(dt_restart(&T.dd), 0);
    t0 = ot_now();
    st = ot_random(Q, 16);
    took = ot_now() - t0;
    printf("first call after the restart: %s in %.3f s\n", ihsm_status_name(st), took);
    assert_true(st == IHSM_OK || st == IHSM_ERR_DEVICE_GONE);
    assert_true(took < 2.0); /* the queue's timeout is 10 s */
    assert_int_equal(ot_random(Q, 16), IHSM_OK);
}

static int setup(void **state)
{
    if (ot_start(&T) != 0 || (Q = ot_queue(&T, 0, 0)) == NULL)
        return -1;
    if (ot_keygen_p256(Q, &K) != IHSM_OK)
        return -1;
    handle = K.handle;
    return 0;
}

static int teardown(void **state)
{
    ot_key_free(&K);
    ihsm_queue_free(Q);
    ot_cleanup(&T);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kill9_fails_inflight_then_reconnects),
        cmocka_unit_test(idle_client_fails_fast_after_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
