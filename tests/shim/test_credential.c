/* Credential files: round trip, mode 0600, and errors that name the problem. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "ihsm_credential.h"

static char dir[] = "/tmp/ihsm-cred.XXXXXX";
static char path[80];

static void write_text(const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_round_trip(void **state)
{
    ihsm_credential c, back;
    struct stat st;
    char err[256];

    memset(&c, 0, sizeof(c));
    strcpy(c.partition, "web");
    for (int i = 0; i < IHSM_PIN_LEN; i++)
        c.pin[i] = (uint8_t)(i * 7 + 1);
    unlink(path);
    assert_int_equal(ihsm_credential_save(path, &c, 0), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* no overwrite unless asked */
    assert_int_not_equal(ihsm_credential_save(path, &c, 0), 0);
    assert_int_equal(ihsm_credential_load(path, &back, err, sizeof(err)), IHSM_OK);
    assert_string_equal(back.partition, "web");
    assert_memory_equal(back.pin, c.pin, IHSM_PIN_LEN);
}

static void test_errors(void **state)
{
    ihsm_credential c;
    char err[256];

    assert_int_equal(ihsm_credential_load("/nonexistent/cred", &c, err, sizeof(err)),
                     IHSM_ERR_CREDENTIAL_FILE);
    assert_non_null(strstr(err, "/nonexistent/cred"));

    write_text("partition = web\npin = 1234\n");
    assert_int_equal(ihsm_credential_load(path, &c, err, sizeof(err)), IHSM_ERR_CREDENTIAL_FILE);
    assert_non_null(strstr(err, "hex digits"));

    write_text("partition = web\n");
    assert_int_equal(ihsm_credential_load(path, &c, err, sizeof(err)), IHSM_ERR_CREDENTIAL_FILE);
    assert_non_null(strstr(err, "lacks a pin"));

    write_text("colour = blue\n");
    assert_int_equal(ihsm_credential_load(path, &c, err, sizeof(err)), IHSM_ERR_CREDENTIAL_FILE);
    assert_non_null(strstr(err, "unknown key 'colour'"));
    /* a failed load leaves nothing behind */
    for (size_t i = 0; i < IHSM_PIN_LEN; i++)
        assert_int_equal(c.pin[i], 0);
}

/* The role line: written by save, read back; absent means user; anything
 * else is refused with the file and line named. */
static void test_roles(void **state)
{
    ihsm_credential c, back;
    char err[256];

    memset(&c, 0, sizeof(c));
    strcpy(c.partition, "web");
    memset(c.pin, 0x5a, IHSM_PIN_LEN);
    c.role = IHSM_ROLE_OFFICER;
    unlink(path);
    assert_int_equal(ihsm_credential_save(path, &c, 0), 0);
    assert_int_equal(ihsm_credential_load(path, &back, err, sizeof(err)), IHSM_OK);
    assert_int_equal(back.role, IHSM_ROLE_OFFICER);
    c.role = IHSM_ROLE_USER;
    assert_int_equal(ihsm_credential_save(path, &c, 1), 0);
    assert_int_equal(ihsm_credential_load(path, &back, err, sizeof(err)), IHSM_OK);
    assert_int_equal(back.role, IHSM_ROLE_USER);

    write_text("partition = web\npin = 5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
               "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a\n");
    assert_int_equal(ihsm_credential_load(path, &back, err, sizeof(err)), IHSM_OK);
    assert_int_equal(back.role, IHSM_ROLE_USER);
    write_text("partition = web\npin = 5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
               "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a\nrole = admin\n");
    assert_int_equal(ihsm_credential_load(path, &back, err, sizeof(err)),
                     IHSM_ERR_CREDENTIAL_FILE);
    assert_non_null(strstr(err, "unknown role 'admin'"));
    assert_non_null(strstr(err, "line 3"));
    assert_string_equal(ihsm_credential_role_name(IHSM_ROLE_OFFICER), "officer");
    assert_string_equal(ihsm_credential_role_name(IHSM_ROLE_USER), "user");

    /* --officer-credential beats $IHSM_OFFICER_CREDENTIAL */
    setenv("IHSM_OFFICER_CREDENTIAL", "/env/officer.cred", 1);
    assert_string_equal(ihsm_credential_officer_path("/explicit"), "/explicit");
    assert_string_equal(ihsm_credential_officer_path(NULL), "/env/officer.cred");
    unsetenv("IHSM_OFFICER_CREDENTIAL");
    assert_null(ihsm_credential_officer_path(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_roles),
    };
    int rc;

    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(path, sizeof(path), "%s/test.cred", dir);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(path);
    rmdir(dir);
    return rc;
}
