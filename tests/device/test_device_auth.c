/*
 * ihsmd partitions, sessions and PINs: INIT_PARTITION, OPEN_SESSION with
 * the uid check and the wrong-PIN lockout (persisted across a restart),
 * sessions bound to their connection, the session limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "devtest.h"

static struct dt_daemon dd;
static uint8_t web_pin[IHSM_PIN_LEN];

static int setup(void **state)
{
    (void)state;
    dd.extra[0] = "--max-sessions";
    dd.extra[1] = "6";
    dd.extra[2] = "--admin-uid";
    dd.extra[3] = "65533";
    if (dt_start(&dd) != 0)
        return -1;
    int fd = dt_connect(&dd);
    int st = dt_init_partition(fd, "web", NULL, 0, web_pin);
    close(fd);
    return st == IHSM_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    dt_cleanup(&dd);
    return 0;
}

static void test_info(void **state)
{
    (void)state;
    int fd = dt_connect(&dd);
    uint8_t *r;
    size_t rlen, slen, flen;
    ihsm_rd rd;

    assert_true(fd >= 0);
    assert_int_equal(dt_call(fd, IHSM_CMD_INFO, 0, NULL, 0, &r, &rlen), IHSM_OK);
    ihsm_rd_init(&rd, r, rlen);
    assert_int_equal(ihsm_rd_u32(&rd), IHSM_PROTO_VERSION);
    assert_int_equal(ihsm_rd_u32(&rd), IHSM_STATE_OPERATIONAL);
    ihsm_rd_bytes(&rd, &slen, 64);
    assert_int_equal(slen, 16);
    ihsm_rd_bytes(&rd, &flen, 256);
    assert_true(flen > 0);
    assert_int_equal(ihsm_rd_u32(&rd), 2); /* --workers 2 */
    assert_int_equal(ihsm_rd_end(&rd), 0);
    free(r);
    /* INFO with a payload it does not take */
    assert_int_equal(dt_call(fd, IHSM_CMD_INFO, 0, "x", 1, NULL, NULL), IHSM_ERR_MALFORMED);
    close(fd);
}

static void test_init_partition(void **state)
{
    (void)state;
    static const char *bad[] = { "", ".hidden", "a/b", "../etc", "sp ace", "x\n",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* 65 */ };
    uint8_t pin[IHSM_PIN_LEN], pin2[IHSM_PIN_LEN];
    uint32_t uids[2] = { 0, 65534 };
    int fd = dt_connect(&dd);
    char path[600];
    ihsm_wr w;

    assert_int_equal(dt_init_partition(fd, "web", NULL, 0, pin), IHSM_ERR_EXISTS);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(dt_init_partition(fd, bad[i], NULL, 0, pin), IHSM_ERR_BAD_INPUT);
    /* 64 characters and the whole alphabet are fine */
    assert_int_equal(dt_init_partition(fd,
        "A-Z.a_z-0123456789aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL, 0, pin),
        IHSM_OK);
    assert_int_equal(dt_init_partition(fd, "shared", uids, 2, pin), IHSM_OK);
    assert_int_equal(dt_init_partition(fd, "shared2", uids, 2, pin2), IHSM_OK);
    assert_memory_not_equal(pin, pin2, IHSM_PIN_LEN); /* fresh random PINs */

    /* n says 5 uids, one follows */
    ihsm_wr_init(&w);
    dt_wr_str(&w, "short");
    ihsm_wr_u32(&w, 5);
    ihsm_wr_u32(&w, 0);
    assert_int_equal(dt_call(fd, IHSM_CMD_INIT_PARTITION, 0, w.p, w.len, NULL, NULL),
                     IHSM_ERR_MALFORMED);
    ihsm_wr_free(&w);

    snprintf(path, sizeof(path), "%s/partitions/shared/partition.conf", dd.state);
    char *conf = dt_read_text(path);
    assert_non_null(conf);
    assert_non_null(strstr(conf, "uids = 0,65534"));
    assert_null(strstr(conf, "pin =")); /* only the verifier is stored */
    free(conf);
    /* nothing is left behind for the refused ones */
    snprintf(path, sizeof(path), "%s/partitions/short", dd.state);
    assert_false(dt_exists(path));
    close(fd);
}

static void test_open_session(void **state)
{
    (void)state;
    int fd = dt_connect(&dd);
    uint8_t short_pin[16] = { 0 };
    uint32_t sid, sid2;
    ihsm_wr w;

    assert_int_equal(dt_open_session(fd, "web", web_pin, &sid), IHSM_OK);
    assert_int_equal(dt_random(fd, sid, 32), IHSM_OK);
    assert_int_equal(dt_open_session(fd, "web", web_pin, &sid2), IHSM_OK);
    assert_int_not_equal(sid, sid2);
    assert_int_equal(dt_call(fd, IHSM_CMD_CLOSE_SESSION, sid, NULL, 0, NULL, NULL), IHSM_OK);
    assert_int_equal(dt_random(fd, sid, 32), IHSM_ERR_NO_SESSION);
    assert_int_equal(dt_call(fd, IHSM_CMD_CLOSE_SESSION, sid, NULL, 0, NULL, NULL),
                     IHSM_ERR_NO_SESSION);
    assert_int_equal(dt_random(fd, sid2, 32), IHSM_OK);
    assert_int_equal(dt_random(fd, 0, 32), IHSM_ERR_NO_SESSION);

    assert_int_equal(dt_open_session(fd, "nosuch", web_pin, &sid), IHSM_ERR_NO_PARTITION);
    assert_int_equal(dt_open_session(fd, "../web", web_pin, &sid), IHSM_ERR_BAD_INPUT);

    /* role 3 does not exist */
    ihsm_wr_init(&w);
    dt_wr_str(&w, "web");
    ihsm_wr_bytes(&w, web_pin, IHSM_PIN_LEN);
    ihsm_wr_u32(&w, 3);
    assert_int_equal(dt_call(fd, IHSM_CMD_OPEN_SESSION, 0, w.p, w.len, NULL, NULL),
                     IHSM_ERR_BAD_INPUT);
    ihsm_wr_reset(&w);
    /* the user PIN does not open a crypto-officer session (test_device_roles) */
    assert_int_equal(dt_open_session_role(fd, "web", web_pin, IHSM_ROLE_OFFICER, &sid),
                     IHSM_ERR_PERMISSION);
    /* a PIN of the wrong size is not a guess */
    dt_wr_str(&w, "web");
    ihsm_wr_bytes(&w, short_pin, sizeof(short_pin));
    ihsm_wr_u32(&w, IHSM_ROLE_USER);
    assert_int_equal(dt_call(fd, IHSM_CMD_OPEN_SESSION, 0, w.p, w.len, NULL, NULL),
                     IHSM_ERR_BAD_INPUT);
    ihsm_wr_reset(&w);
    /* the role is missing */
    dt_wr_str(&w, "web");
    ihsm_wr_bytes(&w, web_pin, IHSM_PIN_LEN);
    assert_int_equal(dt_call(fd, IHSM_CMD_OPEN_SESSION, 0, w.p, w.len, NULL, NULL),
                     IHSM_ERR_MALFORMED);
    ihsm_wr_free(&w);
    close(fd);
}

static void test_session_bound_to_connection(void **state)
{
    (void)state;
    int a = dt_connect(&dd), b = dt_connect(&dd), a2;
    uint32_t sa, sb;

    assert_int_equal(dt_open_session(a, "web", web_pin, &sa), IHSM_OK);
    assert_int_equal(dt_open_session(b, "web", web_pin, &sb), IHSM_OK);
    /* B cannot use or close A's session, even knowing its id */
    assert_int_equal(dt_random(b, sa, 16), IHSM_ERR_NO_SESSION);
    assert_int_equal(dt_call(b, IHSM_CMD_CLOSE_SESSION, sa, NULL, 0, NULL, NULL),
                     IHSM_ERR_NO_SESSION);
    assert_int_equal(dt_random(a, sa, 16), IHSM_OK);
    assert_int_equal(dt_random(b, sb, 16), IHSM_OK);
    /* closing A's connection closes its session: a new connection cannot
     * pick it up */
    close(a);
    a2 = dt_connect(&dd);
    assert_int_equal(dt_random(a2, sa, 16), IHSM_ERR_NO_SESSION);
    assert_int_equal(dt_random(b, sb, 16), IHSM_OK);
    close(a2);
    close(b);
}

static void test_session_limit(void **state)
{
    (void)state;
    uint32_t sid;
    int fd, opened = 0, st = IHSM_OK;
    double t0;

    /* earlier tests' connections are closed; their sessions go with them,
     * asynchronously: allow the daemon a moment */
    t0 = dt_now();
    do {
        fd = dt_connect(&dd);
        opened = 0;
        while (opened < 10 && (st = dt_open_session(fd, "web", web_pin, &sid)) == IHSM_OK)
            opened++;
        close(fd);
        if (opened == 6)
            break;
        usleep(50 * 1000);
    } while (dt_now() - t0 < 3.0);
    assert_int_equal(opened, 6);
    assert_int_equal(st, IHSM_ERR_LIMIT_SESSIONS);

    /* that connection is gone, and so are its six sessions */
    t0 = dt_now();
    fd = dt_connect(&dd);
    while ((st = dt_open_session(fd, "web", web_pin, &sid)) == IHSM_ERR_LIMIT_SESSIONS
           && dt_now() - t0 < 3.0)
        usleep(20 * 1000);
    assert_int_equal(st, IHSM_OK);
    close(fd);
}

static char *conf_of(const char *part)
{
    char path[600];

    snprintf(path, sizeof(path), "%s/partitions/%s/partition.conf", dd.state, part);
    return dt_read_text(path);
}

/* A process of another uid: refused where its uid is not allowed. */
static void test_peer_uid(void **state)
{
    (void)state;
    uint8_t shared_pin[IHSM_PIN_LEN];
    uint32_t uids[2] = { 0, 65534 };
    int fd, status;
    pid_t pid;

    if (geteuid() != 0) {
        skip(); /* needs root to become another uid */
        return;
    }
    /* let the other uid reach the socket (the state dir stays 0700) */
    assert_int_equal(chmod(dd.scratch, 0711), 0);
    fd = dt_connect(&dd);
    assert_int_equal(dt_init_partition(fd, "both", uids, 2, shared_pin), IHSM_OK);
    close(fd);

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uint8_t pin[IHSM_PIN_LEN];
        uint32_t sid;
        int c, code = 0;

        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(90);
        c = dt_connect(&dd);
        if (c < 0)
            _exit(91);
        if (dt_init_partition(c, "mine", NULL, 0, pin) != IHSM_ERR_PERMISSION)
            code |= 1;
        if (dt_open_session(c, "web", web_pin, &sid) != IHSM_ERR_PERMISSION)
            code |= 2; /* right PIN, wrong uid */
        if (dt_open_session(c, "both", shared_pin, &sid) != IHSM_OK)
            code |= 4;
        else if (dt_random(c, sid, 8) != IHSM_OK)
            code |= 8;
        _exit(code);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    /* an --admin-uid may create partitions; by default only it may use them */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uint8_t pin[IHSM_PIN_LEN];
        uint32_t sid;
        int c, code = 0;

        if (setgid(65533) != 0 || setuid(65533) != 0)
            _exit(90);
        c = dt_connect(&dd);
        if (c < 0)
            _exit(91);
        if (dt_init_partition(c, "adminmade", NULL, 0, pin) != IHSM_OK)
            code |= 1;
        else if (dt_open_session(c, "adminmade", pin, &sid) != IHSM_OK)
            code |= 2;
        _exit(code);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    {
        char *conf = conf_of("adminmade");
        assert_non_null(conf);
        assert_non_null(strstr(conf, "uids = 65533\n"));
        free(conf);
    }
}

static void test_lockout(void **state)
{
    (void)state;
    uint8_t pin[IHSM_PIN_LEN], wrong[IHSM_PIN_LEN];
    uint32_t sid;
    double t3, t4;
    char *conf, path[600];
    int fd = dt_connect(&dd);

    assert_int_equal(dt_init_partition(fd, "lock", NULL, 0, pin), IHSM_OK);
    memcpy(wrong, pin, sizeof(wrong));
    wrong[7] ^= 0x01;

    assert_int_equal(dt_open_session(fd, "lock", wrong, &sid), IHSM_ERR_AUTH);
    assert_int_equal(dt_open_session(fd, "lock", wrong, &sid), IHSM_ERR_AUTH);
    assert_int_equal(dt_open_session(fd, "lock", wrong, &sid), IHSM_ERR_AUTH);
    t3 = dt_now();
    /* locked for 1 s: even the right PIN is not looked at */
    assert_int_equal(dt_open_session(fd, "lock", pin, &sid), IHSM_ERR_LOCKED);
    /* other partitions are not affected */
    assert_int_equal(dt_open_session(fd, "web", web_pin, &sid), IHSM_OK);

    while (dt_now() - t3 < 1.1)
        usleep(10 * 1000);
    assert_int_equal(dt_open_session(fd, "lock", wrong, &sid), IHSM_ERR_AUTH);
    t4 = dt_now(); /* fourth in a row: 2 s */
    assert_int_equal(dt_open_session(fd, "lock", pin, &sid), IHSM_ERR_LOCKED);
    close(fd);
    conf = conf_of("lock");
    assert_non_null(conf);
    assert_non_null(strstr(conf, "failures = 4"));
    free(conf);

    /* a restart is no way round it */
    assert_int_equal(dt_restart(&dd), 0);
    fd = dt_connect(&dd);
    if (dt_now() - t4 < 1.7)
        assert_int_equal(dt_open_session(fd, "lock", pin, &sid), IHSM_ERR_LOCKED);
    else
        fprintf(stderr, "note: restart took too long to check the lockout after it\n");
    while (dt_now() - t4 < 2.15)
        usleep(10 * 1000);
    assert_int_equal(dt_open_session(fd, "lock", pin, &sid), IHSM_OK);
    conf = conf_of("lock");
    assert_non_null(strstr(conf, "failures = 0"));
    free(conf);
    /* the counter restarted: one wrong PIN does not lock */
    assert_int_equal(dt_open_session(fd, "lock", wrong, &sid), IHSM_ERR_AUTH);
    assert_int_equal(dt_open_session(fd, "lock", pin, &sid), IHSM_OK);
    close(fd);

    snprintf(path, sizeof(path), "%s/audit.log", dd.state);
    char *audit = dt_read_text(path);
    assert_non_null(audit);
    assert_non_null(strstr(audit, "event=auth_failure partition=lock"));
    assert_non_null(strstr(audit, "event=lockout partition=lock"));
    assert_non_null(strstr(audit, "event=login partition=lock key=- outcome=locked"));
    free(audit);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_init_partition),
        cmocka_unit_test(test_open_session),
        cmocka_unit_test(test_session_bound_to_connection),
        cmocka_unit_test(test_session_limit),
        cmocka_unit_test(test_peer_uid),
        cmocka_unit_test(test_lockout),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
