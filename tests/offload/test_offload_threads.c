/*
 * Many threads on one queue: 8 threads x 2000 ECDSA P-256 signatures of
 * distinct SHA-256 digests with a key generated in the device; every
 * signature must verify (OpenSSL default provider, the device's public key).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "offtest.h"

#define THREADS 8
#define SIGNS   2000

static struct ot T;
static ihsm_queue *Q;
static struct ot_key K;

struct worker {
    pthread_t th;
    int id;
    long ok, bad_status, bad_sig;
    int first_error;
};

static void *sign_loop(void *arg)
{
    struct worker *w = arg;

    for (int i = 0; i < SIGNS; i++) {
        char msg[64];
        uint8_t *sig;
        size_t sig_len;
        int n = snprintf(msg, sizeof(msg), "thread %d message %d", w->id, i);
        int st = ot_sign(Q, K.handle, (const uint8_t *)msg, (size_t)n, &sig, &sig_len);

        if (st != IHSM_OK) {
            if (w->bad_status++ == 0)
                w->first_error = st;
            continue;
        }
        if (dt_verify(K.pub, K.pub_len, IHSM_SIG_ECDSA, (const uint8_t *)msg, (size_t)n, sig,
                      sig_len))
            w->ok++;
        else
            w->bad_sig++;
        free(sig);
    }
    return NULL;
}

static void threads_sign_and_verify(void **state)
{
    struct worker w[THREADS];
    ihsm_queue_stats st;
    long ok = 0;
    double t0;

    memset(w, 0, sizeof(w));
    t0 = ot_now();
    for (int i = 0; i < THREADS; i++) {
        w[i].id = i;
        assert_int_equal(pthread_create(&w[i].th, NULL, sign_loop, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(w[i].th, NULL);
        if (w[i].bad_status > 0)
            fprintf(stderr, "thread %d: %ld failed, first with %s\n", i, w[i].bad_status,
                    ihsm_status_name(w[i].first_error));
        assert_int_equal(w[i].bad_status, 0);
        assert_int_equal(w[i].bad_sig, 0);
        ok += w[i].ok;
    }
    ihsm_queue_get_stats(Q, &st);
    printf("%ld signatures verified in %.2f s; %llu requests in %llu frames (%.2f per "
           "frame), largest %llu\n", ok, ot_now() - t0, (unsigned long long)st.requests,
           (unsigned long long)st.frames_sent, (double)st.requests / (double)st.frames_sent,
           (unsigned long long)st.largest_batch);
    assert_int_equal(ok, THREADS * SIGNS);
    assert_int_equal(st.inflight, 0);
    assert_int_equal(st.timeouts, 0);
    assert_int_equal(st.device_gone, 0);
    assert_int_equal(st.completions, st.requests);
}

static int setup(void **state)
{
    if (ot_start(&T) != 0 || (Q = ot_queue(&T, 0, 0)) == NULL)
        return -1;
    return ot_keygen_p256(Q, &K) == IHSM_OK ? 0 : -1;
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
        cmocka_unit_test(threads_sign_and_verify),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
