/*
 * ihsmd as a process: --help, SIGTERM (exit 0, socket removed, connections
 * closed), a stale socket file replaced, a live daemon's socket or state
 * directory refused, a state directory that cannot be created.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "devtest.h"
#include "ihsm_transport.h"

static struct dt_daemon dd;

static int setup(void **state)
{
    (void)state;
    /* a first start makes the state (and the import key) the others reuse;
     * debug lines tell when a frame has been read */
    dd.env[0] = "IHSM_DEBUG=1";
    if (dt_start(&dd) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    dt_cleanup(&dd);
    return 0;
}

/* Run ihsmd with args to completion (at most 10 s); output into out. */
static int run_ihsmd(const char *const *args, char *out, size_t cap)
{
    char bin[512], logp[600];
    const char *argv[32];
    size_t n = 0;
    int status = -1, fd;
    pid_t pid;
    double t0 = dt_now();

    snprintf(bin, sizeof(bin), "%s/bin/ihsmd", getenv("IHSM_BUILD_DIR"));
    snprintf(logp, sizeof(logp), "%s/run.log", dd.scratch);
    argv[n++] = bin;
    for (; args[n - 1] != NULL && n < 31; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    unlink(logp);
    pid = fork();
    if (pid == 0) {
        fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    while (dt_now() - t0 < 10.0) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            break;
        usleep(10 * 1000);
    }
    if (dt_now() - t0 >= 10.0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
    }
    char *t = dt_read_text(logp);
    snprintf(out, cap, "%s", t != NULL ? t : "");
    free(t);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void test_help(void **state)
{
    (void)state;
    char out[8192];
    const char *help[] = { "--help", NULL };
    const char *bad[] = { "--no-such-flag", NULL };
    const char *badnum[] = { "--workers", "lots", NULL };

    assert_int_equal(run_ihsmd(help, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "--state-dir"));
    assert_non_null(strstr(out, "--socket"));
    assert_non_null(strstr(out, "--admin-uid"));
    assert_int_equal(run_ihsmd(bad, out, sizeof(out)), 2);
    assert_int_equal(run_ihsmd(badnum, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "--workers"));
}

static void test_sigterm(void **state)
{
    (void)state;
    static uint8_t buf[IHSM_MAX_FRAME];
    ihsm_entry ents[IHSM_MAX_BATCH];
    uint8_t pin[IHSM_PIN_LEN];
    uint32_t sid;
    size_t n, got = 0;
    ihsm_wr w;
    int fd = dt_connect(&dd), idle = dt_connect(&dd), st;

    assert_int_equal(dt_init_partition(fd, "term", NULL, 0, pin), IHSM_OK);
    assert_int_equal(dt_open_session(fd, "term", pin, &sid), IHSM_OK);
    /* a batch in flight when the signal comes: four RSA key generations
     * keep the workers busy for a while */
    ihsm_wr_init(&w);
    ihsm_frame_begin(&w, IHSM_FRAME_REQUEST);
    for (unsigned i = 0; i < 64; i++) {
        size_t m;
        if (i < 4) {
            m = ihsm_frame_entry_begin(&w, i + 1, IHSM_CMD_KEY_GENERATE, 0, sid);
            ihsm_wr_u32(&w, IHSM_KEY_RSA);
            ihsm_wr_u32(&w, 2048);
            ihsm_wr_u32(&w, 0);
            ihsm_wr_u32(&w, 0);
            dt_wr_str(&w, "drain");
        } else {
            m = ihsm_frame_entry_begin(&w, i + 1, IHSM_CMD_RANDOM, 0, sid);
            ihsm_wr_u32(&w, 1024);
        }
        ihsm_frame_entry_end(&w, m);
    }
    assert_int_equal(ihsm_frame_finish(&w), IHSM_OK);
    assert_int_equal(ihsm_transport_send(fd, w.p, w.len), IHSM_OK);
    ihsm_wr_free(&w);
    {
        double t0 = dt_now(); /* the loop has read it: now it is in flight */
        while (!dt_log_contains(&dd, ": 64 requests") && dt_now() - t0 < 5.0)
            usleep(2 * 1000);
        assert_true(dt_log_contains(&dd, ": 64 requests"));
    }
    assert_int_equal(dt_stop(&dd), 0);
    assert_false(dt_exists(dd.sock));
    assert_true(dt_log_contains(&dd, "stopped"));

    /* the frame read before the signal was answered in full, then the
     * channel closed */
    while ((st = dt_recv(fd, buf, ents, &n, 2000)) == IHSM_OK) {
        for (size_t i = 0; i < n; i++)
            assert_int_equal(ents[i].status, IHSM_OK);
        got += n;
    }
    assert_int_equal(st, -IHSM_ERR_DEVICE_GONE);
    assert_int_equal(got, 64);
    assert_int_equal(dt_recv(idle, buf, ents, &n, 2000), -IHSM_ERR_DEVICE_GONE);
    close(fd);
    close(idle);

    /* and it starts again on the same state */
    assert_int_equal(dt_start(&dd), 0);
    fd = dt_connect(&dd);
    assert_int_equal(dt_open_session(fd, "term", pin, &sid), IHSM_OK);
    close(fd);
}

static void test_stale_socket_replaced(void **state)
{
    (void)state;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int s, fd;

    assert_int_equal(dt_stop(&dd), 0);
    /* a socket file nobody listens on, as a crash leaves it */
    s = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    strcpy(sa.sun_path, dd.sock);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(s);
    assert_true(dt_exists(dd.sock));
    assert_int_equal(dt_start(&dd), 0);
    assert_true(dt_log_contains(&dd, "stale socket"));
    fd = dt_connect(&dd);
    assert_int_equal(dt_call(fd, IHSM_CMD_INFO, 0, NULL, 0, NULL, NULL), IHSM_OK);
    close(fd);
    /* the socket is open to every uid: partitions check SO_PEERCRED */
    assert_int_equal(dt_file_mode(dd.sock), 0666);
}

static void test_live_daemon_refused(void **state)
{
    (void)state;
    char out[8192], other_state[600], other_sock[600];
    const char *same_sock[] = { "--state-dir", other_state, "--socket", dd.sock, NULL };
    const char *same_state[] = { "--state-dir", dd.state, "--socket", other_sock, NULL };
    int fd;

    snprintf(other_state, sizeof(other_state), "%s/other-state", dd.scratch);
    snprintf(other_sock, sizeof(other_sock), "%s/other.sock", dd.scratch);
    assert_int_not_equal(run_ihsmd(same_sock, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "already listening"));
    assert_int_not_equal(run_ihsmd(same_state, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "another ihsmd is using the state directory"));
    assert_false(dt_exists(other_sock));
    /* the first one never noticed */
    fd = dt_connect(&dd);
    assert_int_equal(dt_call(fd, IHSM_CMD_INFO, 0, NULL, 0, NULL, NULL), IHSM_OK);
    close(fd);
}

static void test_bad_state_dir(void **state)
{
    (void)state;
    char out[8192], file[600], bad[700], sock[600];
    const char *args[] = { "--state-dir", bad, "--socket", sock, NULL };
    int fd;

    snprintf(file, sizeof(file), "%s/plainfile", dd.scratch);
    snprintf(bad, sizeof(bad), "%s/state", file);
    snprintf(sock, sizeof(sock), "%s/bad.sock", dd.scratch);
    fd = open(file, O_WRONLY | O_CREAT, 0600);
    close(fd);
    assert_int_not_equal(run_ihsmd(args, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "state directory"));
    assert_false(dt_exists(sock));
}

/* Without root.key every stored key is lost: ihsmd refuses to make a new
 * one over existing partitions. */
static void test_missing_root_refused(void **state)
{
    (void)state;
    char out[8192], root[600], saved[600];
    const char *args[] = { "--state-dir", dd.state, "--socket", dd.sock, NULL };
    int fd;

    assert_int_equal(dt_stop(&dd), 0);
    snprintf(root, sizeof(root), "%s/root.key", dd.state);
    snprintf(saved, sizeof(saved), "%s/root.key.saved", dd.scratch);
    assert_int_equal(rename(root, saved), 0);
    assert_int_not_equal(run_ihsmd(args, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "restore root.key"));
    assert_false(dt_exists(root));
    assert_false(dt_exists(dd.sock));
    assert_int_equal(rename(saved, root), 0);
    assert_int_equal(dt_start(&dd), 0);
    fd = dt_connect(&dd);
    assert_int_equal(dt_call(fd, IHSM_CMD_INFO, 0, NULL, 0, NULL, NULL), IHSM_OK);
    close(fd);
}

static void test_socket_dir_created(void **state)
{
    (void)state;
    char dir[280];
    int fd;

    char tmp1[600], tmp2[600];

    assert_int_equal(dt_stop(&dd), 0);
    /* what a crash in the middle of an atomic write leaves behind */
    snprintf(tmp1, sizeof(tmp1), "%s/.tmp.1.1", dd.state);
    snprintf(tmp2, sizeof(tmp2), "%s/partitions/term/keys/.tmp.2.2", dd.state);
    close(open(tmp1, O_WRONLY | O_CREAT, 0600));
    close(open(tmp2, O_WRONLY | O_CREAT, 0600));
    assert_true(dt_exists(tmp1) && dt_exists(tmp2));

    assert_true(strlen(dd.scratch) < 200);
    snprintf(dir, sizeof(dir), "%s/run/ihsm", dd.scratch);
    snprintf(dd.sock, sizeof(dd.sock), "%s/ihsmd.sock", dir);
    assert_int_equal(dt_start(&dd), 0);
    assert_int_equal(dt_file_mode(dir), 0755);
    assert_false(dt_exists(tmp1));
    assert_false(dt_exists(tmp2));
    fd = dt_connect(&dd);
    assert_true(fd >= 0);
    close(fd);
}

/* A device whose self-tests fail serves no crypto, but reports its state
 * and can still be zeroized. */
static void test_failed_state(void **state)
{
    (void)state;
    uint8_t pin[IHSM_PIN_LEN], officer[IHSM_PIN_LEN], *r;
    uint32_t sid, so;
    size_t rlen;
    struct dt_key k;
    ihsm_rd rd;
    ihsm_wr w;
    int fd = dt_connect(&dd);

    assert_int_equal(dt_init_partition2(fd, "fs", NULL, 0, pin, officer), IHSM_OK);
    assert_int_equal(dt_open_session(fd, "fs", pin, &sid), IHSM_OK);
    assert_int_equal(dt_keygen(fd, sid, IHSM_KEY_EC_P256, 0, IHSM_KEYF_PERSIST, "k", &k),
                     IHSM_OK);
    close(fd);
    assert_int_equal(dt_stop(&dd), 0);

    dd.env[1] = "IHSM_SELFTEST_FAIL=ECDSA-P256";
    assert_int_equal(dt_start(&dd), 0);
    dd.env[1] = NULL;
    assert_true(dt_log_contains(&dd, "SELF-TESTS FAILED"));
    fd = dt_connect(&dd);
    assert_int_equal(dt_call(fd, IHSM_CMD_INFO, 0, NULL, 0, &r, &rlen), IHSM_OK);
    ihsm_rd_init(&rd, r, rlen);
    ihsm_rd_u32(&rd);
    assert_int_equal(ihsm_rd_u32(&rd), IHSM_STATE_FAILED);
    free(r);
    assert_int_equal(dt_open_session(fd, "fs", pin, &sid), IHSM_OK);
    assert_int_equal(dt_random(fd, sid, 16), IHSM_ERR_DEVICE_FAILED);
    {
        struct dt_key k2;
        assert_int_equal(dt_keygen(fd, sid, IHSM_KEY_EC_P256, 0, 0, "x", &k2),
                         IHSM_ERR_DEVICE_FAILED);
    }
    ihsm_wr_init(&w);
    dt_wr_str(&w, "k");
    assert_int_equal(dt_call(fd, IHSM_CMD_KEY_FIND, sid, w.p, w.len, NULL, NULL),
                     IHSM_ERR_DEVICE_FAILED);
    ihsm_wr_reset(&w);
    ihsm_wr_bytes(&w, k.blob, k.blob_len);
    assert_int_equal(dt_call(fd, IHSM_CMD_KEY_UNMASK, sid, w.p, w.len, NULL, NULL),
                     IHSM_ERR_DEVICE_FAILED);
    ihsm_wr_free(&w);
    assert_int_equal(dt_call(fd, IHSM_CMD_SELF_TEST, 0, NULL, 0, NULL, NULL),
                     IHSM_ERR_DEVICE_FAILED);
    assert_int_equal(dt_call(fd, IHSM_CMD_KEY_LIST, sid, NULL, 0, NULL, NULL), IHSM_OK);
    /* zeroizing is the crypto officer's, in the failed state too */
    assert_int_equal(dt_call(fd, IHSM_CMD_ZEROIZE, sid, NULL, 0, NULL, NULL),
                     IHSM_ERR_PERMISSION);
    assert_int_equal(dt_open_session_role(fd, "fs", officer, IHSM_ROLE_OFFICER, &so), IHSM_OK);
    assert_int_equal(dt_call(fd, IHSM_CMD_ZEROIZE, so, NULL, 0, NULL, NULL), IHSM_OK);
    close(fd);
    assert_int_equal(dt_stop(&dd), 0);

    /* healthy again: the zeroized key is gone, SELF_TEST reports its table */
    assert_int_equal(dt_start(&dd), 0);
    fd = dt_connect(&dd);
    assert_int_equal(dt_open_session(fd, "fs", pin, &sid), IHSM_OK);
    ihsm_wr_init(&w);
    dt_wr_str(&w, "k");
    assert_int_equal(dt_call(fd, IHSM_CMD_KEY_FIND, sid, w.p, w.len, NULL, NULL),
                     IHSM_ERR_NOT_FOUND);
    /* the partition's new id survived the restart: the key's masked blob,
     * made before the zeroize, is dead */
    ihsm_wr_reset(&w);
    ihsm_wr_bytes(&w, k.blob, k.blob_len);
    assert_int_equal(dt_call(fd, IHSM_CMD_KEY_UNMASK, sid, w.p, w.len, NULL, NULL),
                     IHSM_ERR_BAD_BLOB);
    ihsm_wr_free(&w);
    assert_int_equal(dt_call(fd, IHSM_CMD_SELF_TEST, 0, NULL, 0, &r, &rlen), IHSM_OK);
    ihsm_rd_init(&rd, r, rlen);
    assert_true(ihsm_rd_u32(&rd) >= 5);
    free(r);
    dt_key_free(&k);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_sigterm),
        cmocka_unit_test(test_stale_socket_replaced),
        cmocka_unit_test(test_live_daemon_refused),
        cmocka_unit_test(test_bad_state_dir),
        cmocka_unit_test(test_missing_root_refused),
        cmocka_unit_test(test_socket_dir_created),
        cmocka_unit_test(test_failed_state),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
