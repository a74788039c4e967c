/* Masked key files: PEM/DER round trips, crt-style files, and garbage. */
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

#include "ihsm_keyfile.h"
#include "ihsm_proto.h"

static const uint8_t spki[] = { 0x30, 0x03, 0x02, 0x01, 0x05 };
static const uint8_t blob[] = "not really a blob, but opaque bytes";

static void make(ihsm_keyfile *kf)
{
    kf->key_type = IHSM_KEY_EC_P256;
    kf->spki = (uint8_t *)spki;
    kf->spki_len = sizeof(spki);
    kf->blob = (uint8_t *)blob;
    kf->blob_len = sizeof(blob);
}

static void test_pem_round_trip(void **state)
{
    ihsm_keyfile kf, back;
    char *pem;
    size_t len;

    make(&kf);
    assert_int_equal(ihsm_keyfile_encode_pem(&kf, &pem, &len), 0);
    assert_non_null(strstr(pem, "-----BEGIN IHSM MASKED KEY-----"));
    assert_int_equal(ihsm_keyfile_decode_pem(pem, len, &back), 0);
    assert_int_equal(back.key_type, IHSM_KEY_EC_P256);
    assert_int_equal(back.spki_len, sizeof(spki));
    assert_memory_equal(back.spki, spki, sizeof(spki));
    assert_int_equal(back.blob_len, sizeof(blob));
    assert_memory_equal(back.blob, blob, sizeof(blob));
    ihsm_keyfile_clear(&back);

    /* the key after a certificate block, as in a HAProxy crt file */
    {
        const char *cert = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
        size_t clen = strlen(cert);
        char *both = malloc(clen + len + 1);
        memcpy(both, cert, clen);
        memcpy(both + clen, pem, len + 1);
        assert_int_equal(ihsm_keyfile_decode_pem(both, clen + len, &back), 0);
        assert_int_equal(back.blob_len, sizeof(blob));
        ihsm_keyfile_clear(&back);
        free(both);
    }
    free(pem);
}

static void test_file_mode(void **state)
{
    char dir[] = "/tmp/ihsm-kf.XXXXXX", path[64];
    struct stat st;
    ihsm_keyfile kf, back;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/key.pem", dir);
    make(&kf);
    assert_int_equal(ihsm_keyfile_write(path, &kf), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(ihsm_keyfile_read(path, &back), 0);
    assert_memory_equal(back.blob, blob, sizeof(blob));
    ihsm_keyfile_clear(&back);
    unlink(path);
    assert_int_not_equal(ihsm_keyfile_read(path, &back), 0);
    rmdir(dir);
}

static void test_garbage(void **state)
{
    ihsm_keyfile kf, back;
    uint8_t *der;
    size_t len;
    const char *other = "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n";

    assert_int_not_equal(ihsm_keyfile_decode_pem(other, strlen(other), &back), 0);
    assert_int_not_equal(ihsm_keyfile_decode_pem("junk", 4, &back), 0);

    make(&kf);
    assert_int_equal(ihsm_keyfile_encode_der(&kf, &der, &len), 0);
    /* every truncation and every single-byte flip of the header is refused
     * or yields a structurally valid key file (never a crash) */
    for (size_t n = 0; n < len; n++)
        assert_int_not_equal(ihsm_keyfile_decode_der(der, n, &back), 0);
    for (size_t i = 0; i < 12 && i < len; i++) {
        der[i] ^= 0x40;
        if (ihsm_keyfile_decode_der(der, len, &back) == 0)
            ihsm_keyfile_clear(&back);
        der[i] ^= 0x40;
    }
    /* an unknown key type is refused */
    kf.key_type = 99;
    free(der);
    assert_int_equal(ihsm_keyfile_encode_der(&kf, &der, &len), 0);
    assert_int_not_equal(ihsm_keyfile_decode_der(der, len, &back), 0);
    free(der);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pem_round_trip),
        cmocka_unit_test(test_file_mode),
        cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
