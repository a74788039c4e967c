/*
 * Connection errors are reported early and say what to do: no daemon at
 * the socket, a wrong PIN, a locked partition, an unreadable credential
 * file. After the daemon appears a queue that failed to connect works.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ihsm_credential.h"
#include "offtest.h"

static struct ot T;

static void no_daemon(void **state)
{
    char sock[512];
    ihsm_queue_config cfg = { .socket_path = sock, .credential_path = T.cred };
    ihsm_queue *q;

    snprintf(sock, sizeof(sock), "%s/nobody.sock", T.dd.scratch);
    assert_int_equal(ihsm_queue_new(&cfg, &q), IHSM_OK);
    assert_int_equal(ihsm_queue_connect(q), IHSM_ERR_CONNECT);
    printf("%s\n", ihsm_queue_last_error(q));
    assert_non_null(strstr(ihsm_queue_last_error(q), "ihsmd is not running at"));
    assert_non_null(strstr(ihsm_queue_last_error(q), sock));
    /* a call says the same, at once */
    assert_int_equal(ot_random(q, 8), IHSM_ERR_CONNECT);
    ihsm_queue_free(q);
}

static void wrong_pin_then_locked(void **state)
{
    char bad[512];
    ihsm_credential c;
    ihsm_queue_config cfg = { .socket_path = T.dd.sock, .credential_path = bad };
    ihsm_queue *q;
    char why[256];
    int st = IHSM_OK;

    assert_int_equal(ihsm_credential_load(T.cred, &c, why, sizeof(why)), IHSM_OK);
    c.pin[0] ^= 1;
    snprintf(bad, sizeof(bad), "%s/wrong.cred", T.dd.scratch);
    assert_int_equal(ihsm_credential_save(bad, &c, 1), 0);
    ihsm_credential_clear(&c);

    assert_int_equal(ihsm_queue_new(&cfg, &q), IHSM_OK);
    assert_int_equal(ihsm_queue_connect(q), IHSM_ERR_AUTH);
    printf("%s\n", ihsm_queue_last_error(q));
    assert_non_null(strstr(ihsm_queue_last_error(q),
                           "wrong credential for partition test (IHSM_ERR_AUTH)"));
    /* more wrong PINs lock the partition out */
    for (int i = 0; i < 6 && st != IHSM_ERR_LOCKED; i++)
        st = ihsm_queue_connect(q);
    assert_int_equal(st, IHSM_ERR_LOCKED);
    printf("%s\n", ihsm_queue_last_error(q));
    assert_non_null(strstr(ihsm_queue_last_error(q), "partition locked"));
    ihsm_queue_free(q);
}

static void bad_credential_file(void **state)
{
    ihsm_queue_config cfg = { .socket_path = T.dd.sock, .credential_path = "/nonexistent/x.cred" };
    ihsm_queue *q = (ihsm_queue *)&q;

    assert_int_equal(ihsm_queue_new(&cfg, &q), IHSM_ERR_CREDENTIAL_FILE);
    assert_null(q);
}

static void no_credential_no_session(void **state)
{
    ihsm_queue_config cfg = { .socket_path = T.dd.sock, .credential_path = NULL };
    ihsm_queue *q;
    ihsm_result res;

    unsetenv("IHSM_CREDENTIAL");
    assert_int_equal(ihsm_queue_new(&cfg, &q), IHSM_OK);
    /* INFO needs no session */
    assert_int_equal(ihsm_queue_call(q, IHSM_CMD_INFO, NULL, 0, &res), IHSM_OK);
    assert_true(res.len > 8);
    ihsm_result_clear(&res);
    assert_null(res.data);
    /* RANDOM does */
    assert_int_equal(ot_random(q, 8), IHSM_ERR_NO_SESSION);
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
        cmocka_unit_test(no_daemon),
        cmocka_unit_test(bad_credential_file),
        cmocka_unit_test(no_credential_no_session),
        cmocka_unit_test(wrong_pin_then_locked),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
