/*
 * fork(): the parent uses the queue, forks three children that each make
 * 200 calls on the same queue object (each re-initialises lazily: its own
 * socket, ring and session) and check their results, while the parent keeps
 * working on its connection. Children never touch the parent's ring.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "offtest.h"

#define CHILDREN 3
#define CALLS    200

static struct ot T;

/* Signs and verifies (a wrong or swapped answer would not verify), with a
 * RANDOM in between; returns the number of failures. */
static int work(ihsm_queue *q, const struct ot_key *k, const char *who)
{
    int bad = 0;

    for (int i = 0; i < CALLS; i++) {
        char msg[64];
        uint8_t *sig;
        size_t sig_len;
        int n = snprintf(msg, sizeof(msg), "%s %ld call %d", who, (long)getpid(), i);
        int st = ot_sign(q, k->handle, (const uint8_t *)msg, (size_t)n, &sig, &sig_len);

        if (st != IHSM_OK || !dt_verify(k->pub, k->pub_len, IHSM_SIG_ECDSA,
                                        (const uint8_t *)msg, (size_t)n, sig, sig_len)) {
            if (bad++ == 0)
                fprintf(stderr, "%s %ld: call %d: %s\n", who, (long)getpid(), i,
                        ihsm_status_name(st));
        }
        free(sig);
        if (ot_random(q, 8 + (uint32_t)i % 64) != IHSM_OK)
            bad++;
    }
    return bad;
}

static void children_reinitialise(void **state)
{
    ihsm_queue *q = ot_queue(&T, 0, 0);
    ihsm_queue_stats st;
    struct ot_key k;
    pid_t kids[CHILDREN];
    int status;

    assert_non_null(q);
    assert_int_equal(ot_keygen_p256(q, &k), IHSM_OK);
    assert_int_equal(ot_random(q, 32), IHSM_OK);
    for (int i = 0; i < CHILDREN; i++) {
        fflush(NULL);
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0) {
            int bad = work(q, &k, "child");

            ihsm_queue_get_stats(q, &st);
            /* the child connected once (not a reconnect) and its stats
             * count its own calls on top of the parent's copy */
            if (st.reconnects != 0 || st.inflight != 0)
                bad++;
            ihsm_queue_free(q);
            _exit(bad == 0 ? 0 : 1);
        }
    }
    assert_int_equal(work(q, &k, "parent"), 0);
    for (int i = 0; i < CHILDREN; i++) {
        assert_int_equal(waitpid(kids[i], &status, 0), kids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    /* the children closed their copies of our socket: ours still works */
    assert_int_equal(work(q, &k, "parent after"), 0);
    ihsm_queue_get_stats(q, &st);
    assert_int_equal(st.reconnects, 0);
    assert_int_equal(st.device_gone, 0);
    assert_int_equal(st.requests, 2 + 2 * 2 * CALLS);
    ot_key_free(&k);
    ihsm_queue_free(q);
}

static void child_of_an_unused_queue(void **state)
{
    /* made but never used before fork: nothing to inherit */
    ihsm_queue *q = ot_queue(&T, 0, 0);
    pid_t pid;
    int status;

    assert_non_null(q);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(ot_random(q, 16) == IHSM_OK && ot_random(q, 16) == IHSM_OK ? 0 : 1);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(ot_random(q, 16), IHSM_OK);
    ihsm_queue_free(q);
}

static int setup(void **state)
{
    return ot_start(&T);
}

static int teardown(void **state)
{
    ot_cleanup(&T);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(children_reinitialise),
        cmocka_unit_test(child_of_an_unused_queue),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
