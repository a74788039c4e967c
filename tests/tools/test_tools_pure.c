/*
 * Unit tests for the parts of ihsmctl that need no device: the BYOK wrap
 * (checked by unwrapping with OpenSSL exactly as docs/protocol.md says the
 * device does), key type detection, and the name tables.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "byok.h"
#include "tools_common.h"

static EVP_PKEY *import_key; /* RSA-3072, as the device's */

static int setup(void **state)
{
    import_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
    return import_key != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    EVP_PKEY_free(import_key);
    return 0;
}

/* The device's side: OAEP-decrypt the kek, then RFC 5649 unwrap. */
static int unwrap(const uint8_t *w, size_t wlen, uint8_t kek[32], uint8_t *out, size_t *out_len)
{
    size_t mod = (size_t)EVP_PKEY_get_size(import_key), klen = 32;
    EVP_PKEY_CTX *p = EVP_PKEY_CTX_new_from_pkey(NULL, import_key, NULL);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    EVP_CIPHER *kwp = EVP_CIPHER_fetch(NULL, "AES-256-WRAP-PAD", NULL);
    uint8_t kbuf[512];
    int n = 0, m = 0, ok;

    klen = sizeof(kbuf);
    ok = wlen > mod && p != NULL && EVP_PKEY_decrypt_init(p) > 0
         && EVP_PKEY_CTX_set_rsa_padding(p, RSA_PKCS1_OAEP_PADDING) > 0
         && EVP_PKEY_CTX_set_rsa_oaep_md_name(p, "SHA256", NULL) > 0
         && EVP_PKEY_CTX_set_rsa_mgf1_md_name(p, "SHA256", NULL) > 0
         && EVP_PKEY_decrypt(p, kbuf, &klen, w, mod) > 0 && klen == 32;
    if (ok) {
        memcpy(kek, kbuf, 32);
        EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
        ok = EVP_DecryptInit_ex2(c, kwp, kek, NULL, NULL) == 1
             && EVP_DecryptUpdate(c, out, &n, w + mod, (int)(wlen - mod)) == 1
             && EVP_DecryptFinal_ex(c, out + n, &m) == 1;
        *out_len = (size_t)(n + m);
    }
    EVP_CIPHER_free(kwp);
    EVP_CIPHER_CTX_free(c);
    EVP_PKEY_CTX_free(p);
    return ok ? 0 : -1;
}

static void wrap_roundtrip(const char *alg, const char *param)
{
    EVP_PKEY *pk = param != NULL ? EVP_PKEY_Q_keygen(NULL, NULL, alg, param)
                                 : EVP_PKEY_Q_keygen(NULL, NULL, alg);
    uint8_t kek[32], got_kek[32], *der = NULL, *w = NULL, out[8192];
    size_t der_len = 0, w_len = 0, out_len = 0;
    const unsigned char *p;
    EVP_PKEY *back;

    assert_non_null(pk);
    for (size_t i = 0; i < sizeof(kek); i++)
        kek[i] = (uint8_t)(0xA0 + i);
    assert_int_equal(ihsm_byok_pkcs8(pk, &der, &der_len), 0);
    assert_true(der_len > 16);
    assert_int_equal(ihsm_byok_wrap_with(import_key, kek, der, der_len, &w, &w_len), 0);
    /* 384-byte OAEP block, then ceil8(len) + 8 of key wrap */
    assert_int_equal(w_len, 384 + ((der_len + 7) / 8) * 8 + 8);
    assert_int_equal(unwrap(w, w_len, got_kek, out, &out_len), 0);
    assert_memory_equal(got_kek, kek, 32);
    assert_int_equal(out_len, der_len);
    assert_memory_equal(out, der, der_len);
    p = out;
    back = d2i_PrivateKey_ex(EVP_PKEY_get_base_id(pk), NULL, &p, (long)out_len, NULL, NULL);
    if (back == NULL) {
        p = out;
        back = d2i_AutoPrivateKey(NULL, &p, (long)out_len);
    }
    assert_non_null(back);
    assert_int_equal(EVP_PKEY_eq(pk, back), 1);
    /* a flipped byte in the wrap part must not unwrap */
    w[w_len - 3] ^= 1;
    assert_int_not_equal(unwrap(w, w_len, got_kek, out, &out_len), 0);
    EVP_PKEY_free(back);
    EVP_PKEY_free(pk);
    OPENSSL_clear_free(der, der_len);
    OPENSSL_clear_free(w, w_len);
}

static void test_wrap_ec(void **state) { wrap_roundtrip("EC", "P-256"); }
static void test_wrap_ed25519(void **state) { wrap_roundtrip("ED25519", NULL); }

static void test_wrap_rsa(void **state)
{
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    uint8_t *der = NULL, *w = NULL, kek[32], out[4096];
    size_t der_len = 0, w_len = 0, out_len = 0;

    assert_non_null(pk);
    assert_int_equal(ihsm_byok_pkcs8(pk, &der, &der_len), 0);
    assert_int_equal(ihsm_byok_wrap(import_key, der, der_len, &w, &w_len), 0);
    assert_int_equal(unwrap(w, w_len, kek, out, &out_len), 0);
    assert_int_equal(out_len, der_len);
    assert_memory_equal(out, der, der_len);
    EVP_PKEY_free(pk);
    OPENSSL_clear_free(der, der_len);
    OPENSSL_clear_free(w, w_len);
}

/* Raw AES keys: 16 bytes is not a multiple of 8 away from padding issues,
 * 20 bytes exercises the padding. Fresh keks: two wraps differ. */
static void test_wrap_raw_and_fresh(void **state)
{
    uint8_t secret[20], kek[32], out[64], *w1 = NULL, *w2 = NULL;
    size_t l1 = 0, l2 = 0, out_len = 0;

    for (size_t i = 0; i < sizeof(secret); i++)
        secret[i] = (uint8_t)i;
    assert_int_equal(ihsm_byok_wrap(import_key, secret, sizeof(secret), &w1, &l1), 0);
    assert_int_equal(ihsm_byok_wrap(import_key, secret, sizeof(secret), &w2, &l2), 0);
    assert_int_equal(l1, 384 + 24 + 8);
    assert_int_equal(l1, l2);
    assert_memory_not_equal(w1 + 384, w2 + 384, l1 - 384);
    assert_int_equal(unwrap(w1, l1, kek, out, &out_len), 0);
    assert_int_equal(out_len, sizeof(secret));
    assert_memory_equal(out, secret, sizeof(secret));
    OPENSSL_clear_free(w1, l1);
    OPENSSL_clear_free(w2, l2);
}

static void test_wrap_rejects(void **state)
{
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    uint8_t s[16] = { 0 }, *w = NULL;
    size_t wl = 0;

    assert_int_equal(ihsm_byok_wrap(ec, s, sizeof(s), &w, &wl), -1); /* not RSA */
    assert_null(w);
    assert_int_equal(ihsm_byok_wrap(import_key, s, 0, &w, &wl), -1); /* empty */
    assert_int_equal(ihsm_byok_wrap(NULL, s, sizeof(s), &w, &wl), -1);
    EVP_PKEY_free(ec);
}

static void expect_type(EVP_PKEY *pk, int ok, uint32_t type, uint32_t bits, const char *why_has)
{
    uint32_t t = 0, b = 0;
    char why[256] = "";

    assert_non_null(pk);
    assert_int_equal(ihsm_byok_key_type(pk, &t, &b, why, sizeof(why)), ok ? 0 : -1);
    if (ok) {
        assert_int_equal(t, type);
        assert_int_equal(b, bits);
    } else {
        assert_non_null(strstr(why, why_has));
    }
    EVP_PKEY_free(pk);
}

static void test_key_type(void **state)
{
    expect_type(EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048), 1, IHSM_KEY_RSA, 2048, NULL);
    expect_type(EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024), 0, 0, 0, "1024 bits");
    expect_type(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), 1, IHSM_KEY_EC_P256, 256, NULL);
    expect_type(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"), 1, IHSM_KEY_EC_P384, 384, NULL);
    expect_type(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1"), 0, 0, 0, "secp256k1");
    expect_type(EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), 1, IHSM_KEY_ED25519, 256, NULL);
    expect_type(EVP_PKEY_Q_keygen(NULL, NULL, "X25519"), 1, IHSM_KEY_X25519, 256, NULL);
    expect_type(EVP_PKEY_Q_keygen(NULL, NULL, "ED448"), 0, 0, 0, "ED448");
}

static void test_names(void **state)
{
    static const char *types[] = { "rsa-2048", "rsa-3072", "rsa-4096", "ec-p256", "ec-p384",
                                   "ed25519", "x25519", "aes-128", "aes-256" };
    uint32_t type, bits, u, md, scheme, alg;
    char buf[64];
    long v;

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        assert_int_equal(ihsm_tool_parse_type(types[i], &type, &bits), 0);
        assert_string_equal(ihsm_tool_type_name(type, bits, buf, sizeof(buf)), types[i]);
    }
    assert_int_equal(ihsm_tool_parse_type("rsa-1024", &type, &bits), -1);
    assert_int_equal(ihsm_tool_parse_type("", &type, &bits), -1);
    assert_int_equal(ihsm_tool_parse_type("ec-p256", &type, &bits), 0);
    assert_int_equal(ihsm_tool_wire_bits(type, bits), 0);
    assert_int_equal(ihsm_tool_wire_bits(IHSM_KEY_RSA, 3072), 3072);
    assert_int_equal(ihsm_tool_wire_bits(IHSM_KEY_AES, 128), 128);

    assert_int_equal(ihsm_tool_parse_usage("sign", &u), 0);
    assert_int_equal(u, IHSM_USAGE_SIGN);
    assert_int_equal(ihsm_tool_parse_usage("sign,derive", &u), 0);
    assert_int_equal(u, IHSM_USAGE_SIGN | IHSM_USAGE_DERIVE);
    assert_int_equal(ihsm_tool_parse_usage("encrypt,decrypt", &u), 0);
    assert_int_equal(u, IHSM_USAGE_ENCRYPT | IHSM_USAGE_DECRYPT);
    assert_string_equal(ihsm_tool_usage_name(u, buf, sizeof(buf)), "encrypt,decrypt");
    assert_string_equal(ihsm_tool_usage_name(0, buf, sizeof(buf)), "-");
    assert_int_equal(ihsm_tool_parse_usage("", &u), -1);
    assert_int_equal(ihsm_tool_parse_usage("sign,", &u), -1);
    assert_int_equal(ihsm_tool_parse_usage("sign,,derive", &u), -1);
    assert_int_equal(ihsm_tool_parse_usage("signx", &u), -1);
    assert_int_equal(ihsm_tool_parse_usage("sig", &u), -1);

    assert_int_equal(ihsm_tool_parse_md("sha384", &md), 0);
    assert_int_equal(md, IHSM_MD_SHA384);
    assert_string_equal(ihsm_tool_md_evp_name(md), "SHA384");
    assert_int_equal(ihsm_tool_parse_md("none", &md), 0);
    assert_null(ihsm_tool_md_evp_name(md));
    assert_int_equal(ihsm_tool_parse_md("md5", &md), -1);

    assert_int_equal(ihsm_tool_parse_scheme("pss", &scheme), 0);
    assert_int_equal(scheme, IHSM_SIG_RSA_PSS);
    assert_int_equal(ihsm_tool_scheme_fits(scheme, IHSM_KEY_RSA), 0);
    assert_int_equal(ihsm_tool_scheme_fits(scheme, IHSM_KEY_EC_P256), -1);
    assert_int_equal(ihsm_tool_scheme_fits(IHSM_SIG_ECDSA, IHSM_KEY_EC_P384), 0);
    assert_int_equal(ihsm_tool_scheme_fits(IHSM_SIG_ED25519, IHSM_KEY_ED25519), 0);
    assert_int_equal(ihsm_tool_scheme_fits(IHSM_SIG_ED25519, IHSM_KEY_X25519), -1);
    assert_int_equal(ihsm_tool_default_scheme(IHSM_KEY_RSA), IHSM_SIG_RSA_PKCS1);
    assert_int_equal(ihsm_tool_default_scheme(IHSM_KEY_EC_P256), IHSM_SIG_ECDSA);
    assert_int_equal(ihsm_tool_default_scheme(IHSM_KEY_ED25519), IHSM_SIG_ED25519);
    assert_int_equal(ihsm_tool_default_scheme(IHSM_KEY_X25519), 0);
    assert_int_equal(ihsm_tool_default_scheme(IHSM_KEY_AES), 0);

    assert_int_equal(ihsm_tool_parse_aead("chacha20-poly1305", &alg), 0);
    assert_int_equal(alg, IHSM_AEAD_CHACHA20_POLY1305);
    assert_int_equal(ihsm_tool_parse_aead("aes-cbc", &alg), -1);

    assert_true(ihsm_tool_valid_name("web-1.key_A"));
    assert_false(ihsm_tool_valid_name(""));
    assert_false(ihsm_tool_valid_name(".hidden"));
    assert_false(ihsm_tool_valid_name("a/b"));
    assert_false(ihsm_tool_valid_name("a b"));
    {
        char longname[80];

        memset(longname, 'a', 65);
        longname[65] = '\0';
        assert_false(ihsm_tool_valid_name(longname));
        longname[64] = '\0';
        assert_true(ihsm_tool_valid_name(longname));
    }

    assert_int_equal(ihsm_tool_parse_long("64", 1, 4096, &v), 0);
    assert_int_equal(v, 64);
    assert_int_equal(ihsm_tool_parse_long("0", 1, 4096, &v), -1);
    assert_int_equal(ihsm_tool_parse_long("4097", 1, 4096, &v), -1);
    assert_int_equal(ihsm_tool_parse_long("12x", 1, 4096, &v), -1);
    assert_int_equal(ihsm_tool_parse_long("", 1, 4096, &v), -1);
    assert_int_equal(ihsm_tool_parse_long("99999999999999999999", 1, 4096, &v), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrap_ec),
        cmocka_unit_test(test_wrap_ed25519),
        cmocka_unit_test(test_wrap_rsa),
        cmocka_unit_test(test_wrap_raw_and_fresh),
        cmocka_unit_test(test_wrap_rejects),
        cmocka_unit_test(test_key_type),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
