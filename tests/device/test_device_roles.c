/*
 * Roles, as ihsmd enforces them: a partition has a user PIN and a
 * crypto-officer PIN; the session's role is the one its PIN is for. The
 * user signs, derives, seals and opens and loads keys; the officer imports,
 * deletes and zeroizes; both generate and list. Each refusal is
 * IHSM_ERR_PERMISSION, changes nothing, and is audited.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/evp.h>

#include "devtest.h"

static struct dt_daemon dd;
static uint8_t user_pin[IHSM_PIN_LEN], officer_pin[IHSM_PIN_LEN];
static const uint8_t msg[] = "signed by the user, never by the officer";

static int setup(void **state)
{
    (void)state;
    if (dt_start(&dd) != 0)
        return -1;
    int fd = dt_connect(&dd);
    int st = dt_init_partition2(fd, "roles", NULL, 0, user_pin, officer_pin);
    close(fd);
    return st == IHSM_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    dt_cleanup(&dd);
    return 0;
}

static int open_role(uint32_t role, uint32_t *sid)
{
    int fd = dt_connect(&dd);

    assert_true(fd >= 0);
    assert_int_equal(dt_open_session_role(fd, "roles",
                                          role == IHSM_ROLE_OFFICER ? officer_pin : user_pin,
                                          role, sid), IHSM_OK);
    return fd;
}

static int sign_status(int fd, uint32_t sid, uint32_t handle)
{
    uint8_t *sig = NULL;
    size_t len;
    int st = dt_sign(fd, sid, handle, IHSM_SIG_ECDSA, msg, sizeof(msg), &sig, &len);

    free(sig);
    return st;
}

static int call_bytes(int fd, uint16_t cmd, uint32_t sid, const uint8_t *b, size_t len)
{
    ihsm_wr w;
    int st;

    ihsm_wr_init(&w);
    ihsm_wr_bytes(&w, b, len);
    st = dt_call(fd, cmd, sid, w.p, w.len, NULL, NULL);
    ihsm_wr_free(&w);
    return st;
}

static int delete_name(int fd, uint32_t sid, const char *name)
{
    ihsm_wr w;
    int st;

    ihsm_wr_init(&w);
    ihsm_wr_u32(&w, 0);
    dt_wr_str(&w, name);
    st = dt_call(fd, IHSM_CMD_KEY_DELETE, sid, w.p, w.len, NULL, NULL);
    ihsm_wr_free(&w);
    return st;
}

static int find_status(int fd, uint32_t sid, const char *name)
{
    ihsm_wr w;
    int st;

    ihsm_wr_init(&w);
    dt_wr_str(&w, name);
    st = dt_call(fd, IHSM_CMD_KEY_FIND, sid, w.p, w.len, NULL, NULL);
    ihsm_wr_free(&w);
    return st;
}

static char *audit_log(void)
{
    char path[400];

    snprintf(path, sizeof(path), "%s/audit.log", dd.state);
    return dt_read_text(path);
}

static void test_two_pins(void **state)
{
    (void)state;
    char path[400], *conf, hex[2 * IHSM_PIN_LEN + 1];
    uint32_t sid;
    int fd = dt_connect(&dd);

    assert_memory_not_equal(user_pin, officer_pin, IHSM_PIN_LEN);
    /* each PIN opens its own role and not the other: a right PIN for the
     * wrong role is IHSM_ERR_PERMISSION, not a wrong guess... */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(dt_open_session_role(fd, "roles", user_pin, IHSM_ROLE_OFFICER, &sid),
                         IHSM_ERR_PERMISSION);
        assert_int_equal(dt_open_session_role(fd, "roles", officer_pin, IHSM_ROLE_USER, &sid),
                         IHSM_ERR_PERMISSION);
    }
    /* ...so eight of them lock nothing out */
    assert_int_equal(dt_open_session_role(fd, "roles", user_pin, IHSM_ROLE_USER, &sid), IHSM_OK);
    assert_int_equal(dt_open_session_role(fd, "roles", officer_pin, IHSM_ROLE_OFFICER, &sid),
                     IHSM_OK);
    close(fd);

    /* the partition keeps two verifiers and neither PIN */
    snprintf(path, sizeof(path), "%s/partitions/roles/partition.conf", dd.state);
    conf = dt_read_text(path);
    assert_non_null(conf);
    assert_non_null(strstr(conf, "\npin_hash = "));
    assert_non_null(strstr(conf, "\nofficer_pin_hash = "));
    for (int i = 0; i < IHSM_PIN_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", user_pin[i]);
    assert_null(strstr(conf, hex));
    for (int i = 0; i < IHSM_PIN_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", officer_pin[i]);
    assert_null(strstr(conf, hex));
    free(conf);
}

/* The officer manages keys but never uses one. */
static void test_officer_cannot_use_keys(void **state)
{
    (void)state;
    struct dt_key ec, x, aes, mine;
    uint32_t so, su;
    int o = open_role(IHSM_ROLE_OFFICER, &so), u = open_role(IHSM_ROLE_USER, &su);
    ihsm_wr w;

    /* the officer generates keys (and lists them)... */
    assert_int_equal(dt_keygen(o, so, IHSM_KEY_EC_P256, 0, IHSM_KEYF_PERSIST, "officer-ec", &ec),
                     IHSM_OK);
    assert_int_equal(dt_keygen(o, so, IHSM_KEY_X25519, 0, 0, "officer-x", &x), IHSM_OK);
    assert_int_equal(dt_keygen(o, so, IHSM_KEY_AES, 256, 0, "officer-aes", &aes), IHSM_OK);
    assert_int_equal(dt_call(o, IHSM_CMD_KEY_LIST, so, NULL, 0, NULL, NULL), IHSM_OK);
    assert_int_equal(dt_call(o, IHSM_CMD_GET_IMPORT_KEY, so, NULL, 0, NULL, NULL), IHSM_OK);

    /* ...but may not sign with one, even with the handle it just got */
    assert_int_equal(sign_status(o, so, ec.handle), IHSM_ERR_PERMISSION);
    /* nor derive */
    {
        uint8_t peer[32] = { 9 }; /* the X25519 base point */
        ihsm_wr_init(&w);
        ihsm_wr_u32(&w, x.handle);
        ihsm_wr_bytes(&w, peer, sizeof(peer));
        assert_int_equal(dt_call(o, IHSM_CMD_DERIVE, so, w.p, w.len, NULL, NULL),
                         IHSM_ERR_PERMISSION);
        ihsm_wr_free(&w);
    }
    /* nor seal or open */
    {
        uint8_t iv[12] = { 0 };
        for (int seal = 1; seal >= 0; seal--) {
            ihsm_wr_init(&w);
            ihsm_wr_u32(&w, aes.handle);
            ihsm_wr_u32(&w, IHSM_AEAD_AES_GCM);
            ihsm_wr_bytes(&w, iv, sizeof(iv));
            ihsm_wr_bytes(&w, "aad", 3);
            ihsm_wr_bytes(&w, "0123456789abcdef0123456789abcdef", seal ? 5 : 21);
            ihsm_wr_u32(&w, 16);
            assert_int_equal(dt_call(o, seal ? IHSM_CMD_AEAD_SEAL : IHSM_CMD_AEAD_OPEN, so,
                                     w.p, w.len, NULL, NULL), IHSM_ERR_PERMISSION);
            ihsm_wr_free(&w);
        }
    }
    /* nor unmask a blob, find a stored key, load a session key, draw random */
    assert_int_equal(call_bytes(o, IHSM_CMD_KEY_UNMASK, so, ec.blob, ec.blob_len),
                     IHSM_ERR_PERMISSION);
    assert_int_equal(find_status(o, so, "officer-ec"), IHSM_ERR_PERMISSION);
    {
        uint8_t key[32] = { 1 };
        ihsm_wr_init(&w);
        ihsm_wr_u32(&w, IHSM_KEY_AES);
        ihsm_wr_u32(&w, 256);
        ihsm_wr_bytes(&w, key, sizeof(key));
        assert_int_equal(dt_call(o, IHSM_CMD_KEY_LOAD_SESSION, so, w.p, w.len, NULL, NULL),
                         IHSM_ERR_PERMISSION);
        ihsm_wr_free(&w);
    }
    assert_int_equal(dt_random(o, so, 16), IHSM_ERR_PERMISSION);

    /* the user does all of it with the same keys */
    assert_int_equal(sign_status(u, su, ec.handle), IHSM_OK);
    assert_int_equal(find_status(u, su, "officer-ec"), IHSM_OK);
    assert_int_equal(call_bytes(u, IHSM_CMD_KEY_UNMASK, su, ec.blob, ec.blob_len), IHSM_OK);
    assert_int_equal(dt_random(u, su, 16), IHSM_OK);
    /* and generates keys of its own (the provider's genpkey) */
    assert_int_equal(dt_keygen(u, su, IHSM_KEY_EC_P256, 0, 0, "user-made", &mine), IHSM_OK);
    assert_int_equal(sign_status(u, su, mine.handle), IHSM_OK);

    dt_key_free(&ec);
    dt_key_free(&x);
    dt_key_free(&aes);
    dt_key_free(&mine);
    close(o);
    close(u);
}

/* The user may not import, delete or zeroize; nothing changes when it tries. */
static void test_user_cannot_manage_keys(void **state)
{
    (void)state;
    struct dt_key k;
    uint32_t so, su;
    int o = open_role(IHSM_ROLE_OFFICER, &so), u = open_role(IHSM_ROLE_USER, &su);
    uint8_t *r = NULL;
    size_t rlen;
    ihsm_wr w;
    char *log;

    assert_int_equal(dt_keygen(u, su, IHSM_KEY_EC_P256, 0, IHSM_KEYF_PERSIST, "keep", &k),
                     IHSM_OK);

    /* import: refused before anything is unwrapped (a well-formed request) */
    assert_int_equal(dt_call(u, IHSM_CMD_GET_IMPORT_KEY, su, NULL, 0, &r, &rlen), IHSM_OK);
    free(r);
    {
        uint8_t wrapped[384 + 40];
        memset(wrapped, 0x42, sizeof(wrapped));
        ihsm_wr_init(&w);
        ihsm_wr_u32(&w, IHSM_KEY_EC_P256);
        ihsm_wr_u32(&w, 0);
        ihsm_wr_u32(&w, 0);
        ihsm_wr_u32(&w, IHSM_KEYF_PERSIST);
        dt_wr_str(&w, "smuggled");
        ihsm_wr_bytes(&w, wrapped, sizeof(wrapped));
        assert_int_equal(dt_call(u, IHSM_CMD_KEY_IMPORT, su, w.p, w.len, NULL, NULL),
                         IHSM_ERR_PERMISSION);
        /* the officer's import of the same garbage gets as far as the unwrap */
        assert_int_equal(dt_call(o, IHSM_CMD_KEY_IMPORT, so, w.p, w.len, NULL, NULL),
                         IHSM_ERR_BAD_INPUT);
        ihsm_wr_free(&w);
    }
    /* delete, by name and by handle */
    assert_int_equal(delete_name(u, su, "keep"), IHSM_ERR_PERMISSION);
    ihsm_wr_init(&w);
    ihsm_wr_u32(&w, k.handle);
    ihsm_wr_bytes(&w, "", 0);
    assert_int_equal(dt_call(u, IHSM_CMD_KEY_DELETE, su, w.p, w.len, NULL, NULL),
                     IHSM_ERR_PERMISSION);
    ihsm_wr_free(&w);
    /* zeroize */
    assert_int_equal(dt_call(u, IHSM_CMD_ZEROIZE, su, NULL, 0, NULL, NULL), IHSM_ERR_PERMISSION);
    /* the audit check is the officer's (or an admin uid's without a session) */
    {
        uint8_t req[4 + 8 + 4 + 8 + 4] = { 0 };
        assert_int_equal(dt_call(u, IHSM_CMD_AUDIT_VERIFY, su, req, sizeof(req), NULL, NULL),
                         IHSM_ERR_PERMISSION);
        assert_int_equal(dt_call(o, IHSM_CMD_AUDIT_VERIFY, so, req, sizeof(req), NULL, NULL),
                         IHSM_OK);
    }

    /* nothing happened: the key is loaded, stored and signs */
    assert_int_equal(sign_status(u, su, k.handle), IHSM_OK);
    assert_int_equal(find_status(u, su, "keep"), IHSM_OK);

    /* the officer may do each */
    assert_int_equal(delete_name(o, so, "keep"), IHSM_OK);
    assert_int_equal(find_status(u, su, "keep"), IHSM_ERR_NOT_FOUND);
    assert_int_equal(sign_status(u, su, k.handle), IHSM_ERR_BAD_HANDLE);
    assert_int_equal(dt_call(o, IHSM_CMD_ZEROIZE, so, NULL, 0, NULL, NULL), IHSM_OK);

    /* every refusal is in the audit log, with the command and the role */
    log = audit_log();
    assert_non_null(log);
    assert_non_null(strstr(log, "event=permission_denied partition=roles key=- "
                                "outcome=key_import_as_user"));
    assert_non_null(strstr(log, "outcome=key_delete_as_user"));
    assert_non_null(strstr(log, "outcome=zeroize_as_user"));
    assert_non_null(strstr(log, "outcome=sign_as_officer"));
    assert_non_null(strstr(log, "outcome=key_unmask_as_officer"));
    assert_non_null(strstr(log, "outcome=role_mismatch_user_pin_for_officer"));
    assert_non_null(strstr(log, "event=delete partition=roles key=keep outcome=ok"));
    free(log);
    dt_key_free(&k);
    close(o);
    close(u);
}

/* Without a session, the audit commands are for admin uids only. */
static void test_audit_needs_admin(void **state)
{
    (void)state;
    uint8_t req[4 + 8 + 4 + 8 + 4] = { 0 }, rd[12] = { 0 };
    int fd = dt_connect(&dd), status;
    pid_t pid;

    /* this process runs ihsmd: its uid is an admin */
    assert_int_equal(dt_call(fd, IHSM_CMD_AUDIT_VERIFY, 0, req, sizeof(req), NULL, NULL),
                     IHSM_OK);
    rd[8] = 0xff; /* max */
    assert_int_equal(dt_call(fd, IHSM_CMD_AUDIT_READ, 0, rd, sizeof(rd), NULL, NULL), IHSM_OK);
    close(fd);
    if (geteuid() != 0) {
        skip(); /* becoming another uid needs root */
        return;
    }
    assert_int_equal(chmod(dd.scratch, 0711), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int c, code = 0;

        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(90);
        if ((c = dt_connect(&dd)) < 0)
            _exit(91);
        if (dt_call(c, IHSM_CMD_AUDIT_VERIFY, 0, req, sizeof(req), NULL, NULL)
            != IHSM_ERR_PERMISSION)
            code |= 1;
        if (dt_call(c, IHSM_CMD_AUDIT_READ, 0, rd, sizeof(rd), NULL, NULL)
            != IHSM_ERR_PERMISSION)
            code |= 2;
        _exit(code);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* A partition made before roles has no officer verifier: officer sessions
 * fail, the user's keep working. */
static void test_partition_without_officer(void **state)
{
    (void)state;
    char path[400], *conf, *line, *end;
    uint8_t pin[IHSM_PIN_LEN];
    uint32_t sid;
    FILE *f;
    int fd = dt_connect(&dd);

    assert_int_equal(dt_init_partition(fd, "legacy", NULL, 0, pin), IHSM_OK);
    close(fd);
    assert_int_equal(dt_stop(&dd), 0);
    snprintf(path, sizeof(path), "%s/partitions/legacy/partition.conf", dd.state);
    conf = dt_read_text(path);
    assert_non_null(conf);
    line = strstr(conf, "officer_pin_hash = ");
    assert_non_null(line);
    end = strchr(line, '\n');
    memmove(line, end + 1, strlen(end + 1) + 1);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(conf, f);
    fclose(f);
    free(conf);
    assert_int_equal(dt_start(&dd), 0);

    fd = dt_connect(&dd);
    assert_int_equal(dt_open_session(fd, "legacy", pin, &sid), IHSM_OK);
    assert_int_equal(dt_random(fd, sid, 8), IHSM_OK);
    assert_int_equal(dt_open_session_role(fd, "legacy", pin, IHSM_ROLE_OFFICER, &sid),
                     IHSM_ERR_PERMISSION);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_pins),
        cmocka_unit_test(test_officer_cannot_use_keys),
        cmocka_unit_test(test_user_cannot_manage_keys),
        cmocka_unit_test(test_audit_needs_admin),
        cmocka_unit_test(test_partition_without_officer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
