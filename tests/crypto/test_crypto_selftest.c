/*
 * Known-answer self-tests: all pass and are reported by name; with
 * IHSM_SELFTEST_FAIL=<name> the named one fails and the device enters the
 * failed state, in which it refuses crypto. The failed state is sticky for
 * the process, so those checks run in forked children.
 */
#include "crypto_test_util.h"

#include <sys/wait.h>
#include <unistd.h>

static const char *const expected[] = {
    "SHA-256", "HMAC-SHA256", "HKDF-SHA256", "AES-256-GCM", "ChaCha20-Poly1305", "DRBG",
    "RSA-2048-PKCS1", "ECDSA-P256", "Ed25519", "X25519", "ECDH-P256",
};
#define N_EXPECTED (sizeof(expected) / sizeof(expected[0]))

static int setup(void **state)
{
    (void)state;
    unsetenv("IHSM_SELFTEST_FAIL");
    crypto_up();
    return 0;
}

/* Parse a SELF_TEST payload; passed[i] for expected[i], -1 if absent.
 * Returns the count, or -1 if the payload is malformed. */
static int parse(const ihsm_wr *w, int passed[N_EXPECTED])
{
    ihsm_rd r;
    uint32_t n;

    for (size_t i = 0; i < N_EXPECTED; i++)
        passed[i] = -1;
    ihsm_rd_init(&r, w->p, w->len);
    n = ihsm_rd_u32(&r);
    for (uint32_t i = 0; i < n && !r.err; i++) {
        size_t len;
        const uint8_t *name = ihsm_rd_bytes(&r, &len, 64);
        uint32_t ok = ihsm_rd_u32(&r);

        for (size_t j = 0; name != NULL && j < N_EXPECTED; j++)
            if (strlen(expected[j]) == len && memcmp(expected[j], name, len) == 0)
                passed[j] = (int)ok;
    }
    return ihsm_rd_end(&r) == 0 ? (int)n : -1;
}

static void test_all_pass(void **state)
{
    int passed[N_EXPECTED];
    ihsm_wr w;

    (void)state;
    ihsm_wr_init(&w);
    assert_int_equal(ihsm_crypto_selftest(&w), IHSM_OK);
    assert_int_equal(parse(&w, passed), (int)N_EXPECTED);
    for (size_t i = 0; i < N_EXPECTED; i++) {
        if (passed[i] != 1)
            fail_msg("self-test %s: %d", expected[i], passed[i]);
    }
    ihsm_wr_free(&w);
    assert_int_equal(ihsm_crypto_selftest(NULL), IHSM_OK);
    assert_int_equal(ihsm_crypto_failed(), 0);
    /* a name that is not a test changes nothing */
    setenv("IHSM_SELFTEST_FAIL", "no-such-test", 1);
    assert_int_equal(ihsm_crypto_selftest(NULL), IHSM_OK);
    unsetenv("IHSM_SELFTEST_FAIL");
    assert_int_equal(ihsm_crypto_failed(), 0);
}

/* In a child: force `names` to fail and check the whole failed state.
 * Exit status: 0 good, otherwise the number of the check that failed. */
static int child_forced_failure(const char *names, int via_init)
{
    int passed[N_EXPECTED];
    ihsm_key *k = gen(IHSM_KEY_EC_P256, 0, 0), *k2 = NULL;
    static const uint8_t mk[32], part[16];
    ihsm_wr w, blob, out;
    ihsm_rd r;
    uint8_t d[32] = {0}, buf[16] = {0}, pinv[32];

    ihsm_wr_init(&w);
    ihsm_wr_init(&blob);
    ihsm_wr_init(&out);
    if (ihsm_key_mask(k, mk, part, &blob) != IHSM_OK)
        return 1;
    setenv("IHSM_SELFTEST_FAIL", names, 1);
    if (via_init) {
        if (ihsm_crypto_init(TEST_SECURE_HEAP) != IHSM_ERR_DEVICE_FAILED)
            return 2;
    } else if (ihsm_crypto_selftest(&w) != IHSM_ERR_DEVICE_FAILED) {
        return 2;
    }
    if (ihsm_crypto_failed() != 1)
        return 3;
    /* the report names exactly the forced tests as failed */
    w.len = 0;
    if (ihsm_crypto_selftest(&w) != IHSM_ERR_DEVICE_FAILED
        || parse(&w, passed) != (int)N_EXPECTED)
        return 4;
    for (size_t i = 0; i < N_EXPECTED; i++) {
        char list[128];
        int want_fail = 0;

        snprintf(list, sizeof(list), ",%s,", names);
        {
            char needle[64];
            snprintf(needle, sizeof(needle), ",%s,", expected[i]);
            want_fail = strstr(list, needle) != NULL;
        }
        if (passed[i] != !want_fail)
            return 10 + (int)i;
    }
    /* and the device refuses crypto */
    if (ihsm_key_generate(IHSM_KEY_EC_P256, 0, 0, NULL, 0, &k2) != IHSM_ERR_DEVICE_FAILED
        || k2 != NULL)
        return 5;
    if (do_sign(k, IHSM_SIG_ECDSA, IHSM_MD_SHA256, 0, 0, d, 32).st != IHSM_ERR_DEVICE_FAILED)
        return 6;
    ihsm_rd_init(&r, "\x10\x00\x00\x00", 4);
    if (ihsm_op_random(&r, &out) != IHSM_ERR_DEVICE_FAILED || out.len != 0)
        return 7;
    if (ihsm_random_bytes(buf, sizeof(buf)) != IHSM_ERR_DEVICE_FAILED)
        return 8;
    if (ihsm_key_unmask(blob.p, blob.len, mk, part, &k2) != IHSM_ERR_DEVICE_FAILED)
        return 9;
    w.len = 0;
    if (ihsm_key_mask(k, mk, part, &w) != IHSM_ERR_DEVICE_FAILED)
        return 30;
    /* PIN checks still work so an operator can log in and zeroize */
    if (ihsm_pin_hash(d, sizeof(d), buf, 1, pinv) != IHSM_OK)
        return 31;
    ihsm_key_free(k);
    ihsm_wr_free(&w);
    ihsm_wr_free(&blob);
    ihsm_wr_free(&out);
    return 0;
}

static void run_child(const char *names, int via_init)
{
    pid_t pid = fork();
    int status;

    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child_forced_failure(names, via_init));
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("IHSM_SELFTEST_FAIL=%s: check %d failed", names, WEXITSTATUS(status));
}

static void test_forced_failures(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_EXPECTED; i++)
        run_child(expected[i], 0);
    run_child("SHA-256,X25519", 0);
    run_child("ECDSA-P256", 1);
    /* the parent never saw any of it */
    assert_int_equal(ihsm_crypto_failed(), 0);
    assert_int_equal(ihsm_crypto_selftest(NULL), IHSM_OK);
}

/* The conditional self-tests, forced in children: a generator that repeats
 * a block and a generated key pair that fails its pairwise test each put
 * the device in the failed state, which then refuses crypto. */
static int child_conditional(const char *name)
{
    uint8_t buf[16];
    ihsm_key *k = NULL;
    int st = IHSM_OK;

    setenv("IHSM_SELFTEST_FAIL", name, 1);
    if (strcmp(name, "RNG-CONTINUOUS") == 0) {
        /* the first block of a fresh generator has nothing to repeat */
        for (int i = 0; i < 2 && st == IHSM_OK; i++)
            st = ihsm_random_bytes(buf, sizeof(buf));
        if (st != IHSM_ERR_DEVICE_FAILED)
            return 1;
    } else {
        if (ihsm_key_generate(IHSM_KEY_EC_P256, 0, 0, NULL, 0, &k) != IHSM_ERR_CRYPTO
            || k != NULL)
            return 1;
    }
    if (ihsm_crypto_failed() != 1)
        return 2;
    unsetenv("IHSM_SELFTEST_FAIL"); /* sticky: no longer forced, still failed */
    if (ihsm_key_generate(IHSM_KEY_EC_P256, 0, 0, NULL, 0, &k) != IHSM_ERR_DEVICE_FAILED)
        return 3;
    if (ihsm_random_bytes(buf, sizeof(buf)) != IHSM_ERR_DEVICE_FAILED)
        return 4;
    return 0;
}

static void test_conditional_failures(void **state)
{
    static const char *const names[] = { "RNG-CONTINUOUS", "PCT" };

    (void)state;
    for (size_t i = 0; i < 2; i++) {
        pid_t pid = fork();
        int status;

        assert_true(pid >= 0);
        if (pid == 0)
            _exit(child_conditional(names[i]));
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) != 0)
            fail_msg("IHSM_SELFTEST_FAIL=%s: check %d failed", names[i], WEXITSTATUS(status));
    }
    /* the parent never saw it */
    assert_int_equal(ihsm_crypto_failed(), 0);
    assert_int_equal(ihsm_random_bytes((uint8_t[16]){ 0 }, 16), IHSM_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_pass),
        cmocka_unit_test(test_forced_failures),
        cmocka_unit_test(test_conditional_failures),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
