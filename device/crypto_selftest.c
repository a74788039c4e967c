/*
 * Known-answer self-tests, run at start (ihsm_crypto_init) and on SELF_TEST.
 * Every algorithm the device offers is checked against fixed published
 * vectors embedded here; any failure puts the device in the failed state.
 *
 * Testing the failed state: IHSM_SELFTEST_FAIL=<name>[,<name>...] in the
 * environment forces the named tests (names as listed in kats[] below, e.g.
 * "ECDSA-P256") to report failure, so the daemon's failed state can be
 * exercised end to end. It can only make the device refuse service. Two
 * more names force the conditional tests: "RNG-CONTINUOUS" (the generator's
 * next block repeats the last one, crypto_random.c) and "PCT" (the pairwise
 * test of a generated key fails, crypto_keys.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

#include "crypto_internal.h"

/* Decode a hex vector into out (at most max bytes); returns its length or 0. */
static size_t unhex(const char *s, uint8_t *out, size_t max)
{
    size_t len = 0;

    if (strlen(s) / 2 > max || !OPENSSL_hexstr2buf_ex(out, max, &len, s, '\0'))
        return 0;
    return len;
}

static int eq_hex(const uint8_t *got, size_t got_len, const char *want)
{
    uint8_t buf[512];
    size_t n = unhex(want, buf, sizeof(buf));

    return n != 0 && n == got_len && memcmp(got, buf, n) == 0;
}

/* ---- SHA-256: FIPS 180-2 appendix B.1, "abc" ---- */
static int kat_sha256(void)
{
    uint8_t md[32];
    unsigned int len = 0;

    return EVP_Digest("abc", 3, md, &len, ihsm_crypto_md(IHSM_MD_SHA256), NULL)
           && eq_hex(md, len,
                     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* ---- HMAC-SHA256 and HKDF-SHA256: RFC 5869 test case 1 ---- */
#define HKDF1_IKM  "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"
#define HKDF1_SALT "000102030405060708090a0b0c"
#define HKDF1_INFO "f0f1f2f3f4f5f6f7f8f9"

static int kat_hmac(void)
{
    /* HKDF-Extract is HMAC(salt, IKM): the RFC's PRK is an HMAC vector */
    uint8_t ikm[22], salt[13], prk[32];
    size_t prk_len = sizeof(prk);
    EVP_MAC *mac = EVP_MAC_fetch(ihsm_crypto_libctx(), "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM p[2] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    int ok = ctx != NULL && unhex(HKDF1_IKM, ikm, sizeof(ikm)) == sizeof(ikm)
             && unhex(HKDF1_SALT, salt, sizeof(salt)) == sizeof(salt)
             && EVP_MAC_init(ctx, salt, sizeof(salt), p)
             && EVP_MAC_update(ctx, ikm, sizeof(ikm))
             && EVP_MAC_final(ctx, prk, &prk_len, sizeof(prk))
             && eq_hex(prk, prk_len,
                       "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");

    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return ok;
}

static int kat_hkdf(void)
{
    uint8_t ikm[22], salt[13], info[10], okm[42];

    return unhex(HKDF1_IKM, ikm, sizeof(ikm)) == sizeof(ikm)
           && unhex(HKDF1_SALT, salt, sizeof(salt)) == sizeof(salt)
           && unhex(HKDF1_INFO, info, sizeof(info)) == sizeof(info)
           && ihsm_crypto_hkdf_sha256(ikm, sizeof(ikm), salt, sizeof(salt), info,
                                      sizeof(info), okm, sizeof(okm)) == IHSM_OK
           && eq_hex(okm, sizeof(okm),
                     "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                     "34007208d5b887185865");
}

/* Seal must give ct||tag exactly; open must give the plaintext back; and
 * open with one tag bit flipped must fail. */
static int aead_kat(uint32_t alg, const char *key_hex, const char *iv_hex,
                    const char *aad_hex, const uint8_t *pt, size_t pt_len,
                    const char *ct_tag_hex)
{
    uint8_t key[32], iv[12], aad[32], ct[256], back[256];
    size_t key_len = unhex(key_hex, key, sizeof(key));
    size_t iv_len = unhex(iv_hex, iv, sizeof(iv));
    size_t aad_len = unhex(aad_hex, aad, sizeof(aad));
    int ok = key_len != 0 && iv_len != 0 && aad_len != 0 && pt_len + 16 <= sizeof(ct)
             && ihsm_aead_raw(alg, 1, key, key_len, iv, iv_len, aad, aad_len, pt,
                              pt_len, 16, ct) == IHSM_OK
             && eq_hex(ct, pt_len + 16, ct_tag_hex)
             && ihsm_aead_raw(alg, 0, key, key_len, iv, iv_len, aad, aad_len, ct,
                              pt_len + 16, 16, back) == IHSM_OK
             && memcmp(back, pt, pt_len) == 0;

    if (ok) {
        ct[pt_len] ^= 0x01;
        ok = ihsm_aead_raw(alg, 0, key, key_len, iv, iv_len, aad, aad_len, ct,
                           pt_len + 16, 16, back) == IHSM_ERR_AEAD_TAG;
    }
    OPENSSL_cleanse(key, sizeof(key));
    return ok;
}

/* ---- AES-256-GCM: the GCM specification's test case 16 (McGrew and
 * Viega), as in NIST's gcmEncryptExtIV256 set ---- */
static int kat_aes_gcm(void)
{
    uint8_t pt[60];

    return unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                 "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
                 pt, sizeof(pt)) == sizeof(pt)
           && aead_kat(IHSM_AEAD_AES_GCM,
                       "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
                       "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
                       pt, sizeof(pt),
                       "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
                       "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
                       "76fc6ece0f4e1768cddf8853bb2d551b");
}

/* ---- ChaCha20-Poly1305: RFC 8439 section 2.8.2 ---- */
static int kat_chacha(void)
{
    static const char pt[] = "Ladies and Gentlemen of the class of '99: If I could "
                             "offer you only one tip for the future, sunscreen "
                             "would be it.";

    return aead_kat(IHSM_AEAD_CHACHA20_POLY1305,
                    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
                    "070000004041424344454647", "50515253c0c1c2c3c4c5c6c7",
                    (const uint8_t *)pt, sizeof(pt) - 1,
                    "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
                    "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
                    "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
                    "3ff4def08e4b7a9de576d26586cec64b6116"
                    "1ae10b594f09e26a7e902ecbd0600691");
}

/* ---- DRBG: a fresh CTR-DRBG instantiates and generates, and the device's
 * library context's private generator answers ---- */
static int kat_drbg(void)
{
    EVP_RAND *rand = EVP_RAND_fetch(ihsm_crypto_libctx(), "CTR-DRBG", NULL);
    EVP_RAND_CTX *ctx = rand != NULL ? EVP_RAND_CTX_new(rand, NULL) : NULL;
    static const uint8_t zeros[32];
    uint8_t a[32], b[32], c[32];
    OSSL_PARAM p[2] = {
        OSSL_PARAM_construct_utf8_string(OSSL_DRBG_PARAM_CIPHER, "AES-256-CTR", 0),
        OSSL_PARAM_construct_end(),
    };
    int ok = ctx != NULL
             && EVP_RAND_instantiate(ctx, 256, 0, (const uint8_t *)"ihsm", 4, p)
             && EVP_RAND_generate(ctx, a, sizeof(a), 256, 0, NULL, 0)
             && EVP_RAND_generate(ctx, b, sizeof(b), 256, 0, NULL, 0)
             && memcmp(a, b, sizeof(a)) != 0 && memcmp(a, zeros, sizeof(a)) != 0
             && RAND_priv_bytes_ex(ihsm_crypto_libctx(), c, sizeof(c), 0) > 0
             && memcmp(c, zeros, sizeof(c)) != 0;

    EVP_RAND_CTX_free(ctx);
    EVP_RAND_free(rand);
    return ok;
}

/* An EC key pair from its scalar and uncompressed public point. */
static EVP_PKEY *ec_key(const char *group, const char *priv_hex, const char *pub_hex)
{
    uint8_t priv[48], pub[97];
    size_t priv_len = priv_hex != NULL ? unhex(priv_hex, priv, sizeof(priv)) : 0;
    size_t pub_len = unhex(pub_hex, pub, sizeof(pub));
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    BIGNUM *d = priv_len != 0 ? BN_secure_new() : NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;

    if (bld == NULL || pub_len == 0 || (priv_hex != NULL && d == NULL)
        || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0)
        || !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, pub_len))
        goto end;
    if (d != NULL && (BN_bin2bn(priv, (int)priv_len, d) == NULL
                      || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d)))
        goto end;
    if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL
        || (ctx = EVP_PKEY_CTX_new_from_name(ihsm_crypto_libctx(), "EC", NULL)) == NULL
        || EVP_PKEY_fromdata_init(ctx) <= 0
        || EVP_PKEY_fromdata(ctx, &pkey, d != NULL ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
                             params) <= 0)
        pkey = NULL;
end:
    OPENSSL_cleanse(priv, sizeof(priv));
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(d);
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

/* ---- ECDSA P-256: RFC 6979 A.2.5 key; its SHA-256 "sample" signature must
 * verify, a fresh signature must verify, and a wrong digest must not ---- */
static int kat_ecdsa(void)
{
    EVP_PKEY *key = ec_key("P-256",
        "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721",
        "0460fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"
        "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299");
    ihsm_sig_params sp = {IHSM_SIG_ECDSA, IHSM_MD_SHA256, 0, 0};
    uint8_t digest[32], known[72], sig[80];
    size_t known_len, siglen = sizeof(sig);
    int ok;

    known_len = unhex("3046022100efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea8"
                      "4eaf3716022100f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab"
                      "2f843acda8", known, sizeof(known));
    ok = key != NULL && known_len != 0
         && unhex("af2bdbe1aa9b6ec1e2ade1d694f41fc71a831d0268e9891562113d8a62add1bf",
                  digest, sizeof(digest)) == sizeof(digest)
         && ihsm_pkey_verify(key, IHSM_KEY_EC_P256, &sp, digest, sizeof(digest), known,
                             known_len) == IHSM_OK
         && ihsm_pkey_sign(key, IHSM_KEY_EC_P256, &sp, digest, sizeof(digest), sig,
                           &siglen) == IHSM_OK
         && ihsm_pkey_verify(key, IHSM_KEY_EC_P256, &sp, digest, sizeof(digest), sig,
                             siglen) == IHSM_OK;
    if (ok) {
        digest[0] ^= 1;
        ok = ihsm_pkey_verify(key, IHSM_KEY_EC_P256, &sp, digest, sizeof(digest), sig,
                              siglen) != IHSM_OK;
    }
    EVP_PKEY_free(key);
    return ok;
}

/* ---- Ed25519: RFC 8032 section 7.1 TEST 1 (empty message): the public key
 * and the deterministic signature must match exactly ---- */
static int kat_ed25519(void)
{
    uint8_t priv[32], pub[32], sig[64];
    size_t pub_len = sizeof(pub), siglen = sizeof(sig);
    ihsm_sig_params sp = {IHSM_SIG_ED25519, IHSM_MD_NONE, 0, 0};
    EVP_PKEY *key = NULL;
    int ok;

    ok = unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
               priv, sizeof(priv)) == sizeof(priv)
         && (key = EVP_PKEY_new_raw_private_key_ex(ihsm_crypto_libctx(), "ED25519",
                                                   NULL, priv, sizeof(priv))) != NULL
         && EVP_PKEY_get_raw_public_key(key, pub, &pub_len)
         && eq_hex(pub, pub_len,
                   "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
         && ihsm_pkey_sign(key, IHSM_KEY_ED25519, &sp, (const uint8_t *)"", 0, sig,
                           &siglen) == IHSM_OK
         && eq_hex(sig, siglen,
                   "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
                   "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
         && ihsm_pkey_verify(key, IHSM_KEY_ED25519, &sp, (const uint8_t *)"", 0, sig,
                             siglen) == IHSM_OK;
    OPENSSL_cleanse(priv, sizeof(priv));
    EVP_PKEY_free(key);
    return ok;
}

/* ---- X25519: RFC 7748 section 6.1 ---- */
static int kat_x25519(void)
{
    uint8_t priv[32], peer[32], pub[32], shared[64];
    size_t pub_len = sizeof(pub), shared_len = sizeof(shared);
    OSSL_LIB_CTX *lc = ihsm_crypto_libctx();
    EVP_PKEY *a = NULL, *b = NULL;
    int ok;

    ok = unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
               priv, sizeof(priv)) == sizeof(priv)
         && unhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
                  peer, sizeof(peer)) == sizeof(peer)
         && (a = EVP_PKEY_new_raw_private_key_ex(lc, "X25519", NULL, priv, 32)) != NULL
         && (b = EVP_PKEY_new_raw_public_key_ex(lc, "X25519", NULL, peer, 32)) != NULL
         && EVP_PKEY_get_raw_public_key(a, pub, &pub_len)
         && eq_hex(pub, pub_len,
                   "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
         && ihsm_pkey_derive(a, b, shared, &shared_len) == IHSM_OK
         && eq_hex(shared, shared_len,
                   "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    OPENSSL_cleanse(priv, sizeof(priv));
    OPENSSL_cleanse(shared, sizeof(shared));
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
    return ok;
}

/* ---- ECDH P-256: NIST CAVS KAS ECC CDH primitive test, P-256 COUNT = 0 ---- */
static int kat_ecdh(void)
{
    EVP_PKEY *iut = ec_key("P-256",
        "7d7dc5f71eb29ddaf80d6214632eeae03d9058af1fb6d22ed80badb62bc1a534",
        "04ead218590119e8876b29146ff89ca61770c4edbbf97d38ce385ed281d8a6b230"
        "28af61281fd35e2fa7002523acc85a429cb06ee6648325389f59edfce1405141");
    EVP_PKEY *cavs = ec_key("P-256", NULL,
        "04700c48f77f56584c5cc632ca65640db91b6bacce3a4df6b42ce7cc838833d287"
        "db71e509e3fd9b060ddb20ba5c51dcc5948d46fbf640dfe0441782cab85fa4ac");
    uint8_t z[64];
    size_t zlen = sizeof(z);
    int ok = iut != NULL && cavs != NULL
             && ihsm_pkey_derive(iut, cavs, z, &zlen) == IHSM_OK
             && eq_hex(z, zlen,
                       "46fc62106420ff012e54a434fbdd2d25ccc5852060561e68040dd7778997bd7b");

    OPENSSL_cleanse(z, sizeof(z));
    EVP_PKEY_free(iut);
    EVP_PKEY_free(cavs);
    return ok;
}

/* ---- RSA-2048 PKCS#1 v1.5 with SHA-256: a fixed test key (made once with
 * `openssl genpkey`; it protects nothing) and its signature of "abc", made
 * with `openssl dgst -sha256 -sign`. PKCS#1 v1.5 is deterministic, so the
 * device's signature must be these bytes. ---- */
static const char kat_rsa_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCyYb8uhd9/sqvJ\n"
    "V1du59mymrK5DxSK3Aj/8Y+LM/xUCjP3HKFD5StFof77c2P8h3+kMm0PWDRUc5wR\n"
    "AmGYIkIxgJ2V9SHpeCUhLXl8g0tcxDtt4DDVxNKNxK5pw9ph0pkDQ3BQ6DhlLKFM\n"
    "6LUos756cZL8M8SWUkapPP0hvYmK+J3uaops8g2B82EYjd98NRZaNXQ4RsIN2kuS\n"
    "qfzfsJo1LOcLi1VQOCiCJC9FF27O/Hj/KuyWUsgF2jyRCFuwYMm2juVzhYHRGZwN\n"
    "XCTn9Y1TJwiyy6G0X3an2XknsK5pcP+6jA4/RytUfX7IWsiQA0cqycRTR0TEPE3z\n"
    "NpJd7Z6lAgMBAAECggEAD4n+SoI09v3MgyyNnEasKyfYu9A5fOMwEYOsenbb20JM\n"
    "RpGC5tQ20ckL2kGyCxSOpPITmAuZ+2VaygyIDeWmGIPYtnB1NM5Xha1dcOBLF1is\n"
    "yKSH/Ic5xEnG28XI506eL6+XQCUKjJ23q2h2J4aI6EeugzPLQ0EFkMaUUnUdXzKl\n"
    "rHNs8EVnt3wZJuXpRFLkwfpG83HclxsTOOzzWzPXhh6JNB+MPJxx0jhC1DSkdCBH\n"
    "puZcz5wNGz/hJehi046N3f8wFLfRssEq6f3sOLLAfR/jsffQ+VKXBDU2HLXJmA4b\n"
    "syGOJ1sAS7MaF3eZvlXLtimSSNhW3d6M6vce1ejYPQKBgQDv4WLEJDDkUfotGx/0\n"
    "HvyzjqIz3mtam5a5aamn5YEIRs89dnLhaCwopkHWRYALEilLv2yVOXWKEd3EwDgZ\n"
    "a7Vpb1kUKaqbqjAFEcCfXTjH07bcScz2KosHxeG8oSM6G/QFYFWOjq6zdS/S7ip8\n"
    "rY8vOx5PX4cNyfEjPKnrC0na5wKBgQC+XmnH0ol3453glcDHb4IlgLA43/x+2uTl\n"
    "V1CV5qBE2bD2oqYXQb5+diKaci9fZfqaNKrCLSi5EwRjG8O3FTXIYBhDdYj/9HjI\n"
    "kgNdbQI4+FvS0sC/IL2u7OYZcM8WrkT7X34kh/ZWTKdokIclGX6hEDZEGeIJxKT+\n"
    "bnFPKcI0kwKBgQC+guEe56NQ4e5v/lftWOLXdBNMYHwgVOtqzAkqx/IncZ1LshPh\n"
    "Awv3KLunAkGECWN0vk3tYdoA0tmvVf336nwEhaNYiRLvWEWU8RlrN+1Nfs5+u7ol\n"
    "U3phrP3wAoXos6Sk1HJ+qsEC07IssmxZ4rmSCEC1RygKgnSZyKcmfiukxwJ/Cyd9\n"
    "CzhK1buAhKhBo23lMk1YBf0ZzlUFFGsJTb81pNMci1b8ZGB1yPMjE+mc3PoctOxh\n"
    "FP+QY0e5+hSmYxPbEuKOiWVZoaWxbg8gI1k/yBbFSpUOtiQ0+QrocJUrjSio4hG2\n"
    "Um2lAWl8ZaQSRxo3UTih9VuO4wOip0XRXdIUjwKBgQDYboYNu+bcpm1r/ja09VdB\n"
    "divKiHMGvSpYtwoH26SJNhI/4Er1cBDft0Iu47db2SnALTeHqLCjibcWWdhRPgJE\n"
    "xbK6b5lHA5ejrMF7Z2Z0k9zwq9BSLs3Jc4iGoj1om1J7Hpl9RHPqdv4/62NZOf/t\n"
    "lF5SaJ8FgXVrZhtHff/kLA==\n"
    "-----END PRIVATE KEY-----\n";

/* PKCS#1 v1.5 signature of SHA-256("abc") with that key */
static const uint8_t kat_rsa_sig[256] = {
    0x10, 0xd6, 0x02, 0xb8, 0xdc, 0x03, 0xe5, 0xc9, 0x61, 0x5e, 0x41, 0x35,
    0x2b, 0x1d, 0x6a, 0x3d, 0x21, 0x20, 0x13, 0xbf, 0x29, 0x6a, 0x79, 0x2d,
    0xdb, 0x8b, 0x3b, 0xd2, 0x55, 0x30, 0x14, 0x2f, 0xf7, 0xab, 0x99, 0x75,
    0x7f, 0xd4, 0x45, 0x83, 0x2d, 0x2c, 0x1d, 0x5b, 0xe9, 0x07, 0x1e, 0x32,
    0xfa, 0x02, 0x66, 0x20, 0x7d, 0xfc, 0xe1, 0xe4, 0xd6, 0x12, 0x81, 0x8c,
    0xab, 0x21, 0x49, 0xbc, 0x58, 0x87, 0xa5, 0xf8, 0xf1, 0x3f, 0xc5, 0xed,
    0x0a, 0xb1, 0x68, 0xb1, 0x82, 0xd9, 0x46, 0xcc, 0xa8, 0xb4, 0xee, 0x6e,
    0x83, 0xdc, 0xc3, 0x3e, 0xc8, 0xf0, 0x63, 0xc5, 0xdd, 0xd7, 0x04, 0x02,
    0xed, 0xfc, 0x33, 0x9e, 0xee, 0x4b, 0x96, 0x34, 0x00, 0x69, 0xe5, 0xf0,
    0xca, 0x91, 0x38, 0xa9, 0x10, 0xff, 0x19, 0x12, 0xe1, 0x33, 0xfc, 0xd2,
    0x94, 0xb0, 0xd5, 0x20, 0xa4, 0x17, 0xed, 0xb8, 0x60, 0x9c, 0x93, 0x1c,
    0xc1, 0x24, 0xee, 0x38, 0x8a, 0xe6, 0xcf, 0x33, 0x19, 0x23, 0xf8, 0x4d,
    0x0b, 0xa4, 0x3b, 0x4e, 0x86, 0xdc, 0x80, 0xbe, 0x8b, 0xeb, 0xa3, 0x9d,
    0x4e, 0xbb, 0x10, 0x51, 0xad, 0xcb, 0xf8, 0xdf, 0x46, 0xbb, 0x2a, 0x29,
    0xde, 0x25, 0xfb, 0x71, 0x93, 0x18, 0xff, 0xc4, 0x98, 0xda, 0xf1, 0x68,
    0x3a, 0x6d, 0xb3, 0x6f, 0x8c, 0x55, 0x7f, 0x9a, 0xc3, 0xa8, 0x50, 0xcc,
    0x7f, 0x66, 0xe9, 0x99, 0x91, 0xe6, 0xa2, 0xd2, 0x3f, 0x70, 0xe0, 0xc0,
    0x01, 0x5e, 0x0a, 0x78, 0x31, 0x7e, 0x34, 0x57, 0x26, 0xd9, 0x39, 0x85,
    0xc4, 0xe5, 0x37, 0x84, 0x18, 0x83, 0x5a, 0xcf, 0xb6, 0xac, 0x88, 0xe3,
    0x23, 0x9d, 0x27, 0x4b, 0xaf, 0x91, 0x2e, 0xab, 0x8e, 0xee, 0x3d, 0xcf,
    0x53, 0xad, 0xc1, 0x23, 0x1d, 0x46, 0xe8, 0xa7, 0xef, 0xdb, 0x86, 0x76,
    0x82, 0x61, 0x4a, 0x8b,
};

static int kat_rsa(void)
{
    ihsm_sig_params sp = {IHSM_SIG_RSA_PKCS1, IHSM_MD_SHA256, 0, 0};
    const unsigned char *pem = (const unsigned char *)kat_rsa_pem;
    size_t pem_len = sizeof(kat_rsa_pem) - 1;
    OSSL_DECODER_CTX *dctx;
    EVP_PKEY *key = NULL;
    uint8_t digest[32], sig[256];
    unsigned int dlen = 0;
    size_t siglen = sizeof(sig);
    int ok;

    dctx = OSSL_DECODER_CTX_new_for_pkey(&key, "PEM", NULL, "RSA", EVP_PKEY_KEYPAIR,
                                         ihsm_crypto_libctx(), NULL);
    ok = dctx != NULL && OSSL_DECODER_from_data(dctx, &pem, &pem_len) && key != NULL
         && EVP_Digest("abc", 3, digest, &dlen, ihsm_crypto_md(IHSM_MD_SHA256), NULL)
         && ihsm_pkey_sign(key, IHSM_KEY_RSA, &sp, digest, dlen, sig, &siglen) == IHSM_OK
         && siglen == sizeof(kat_rsa_sig) && memcmp(sig, kat_rsa_sig, siglen) == 0
         && ihsm_pkey_verify(key, IHSM_KEY_RSA, &sp, digest, dlen, kat_rsa_sig,
                             sizeof(kat_rsa_sig)) == IHSM_OK;
    OSSL_DECODER_CTX_free(dctx);
    EVP_PKEY_free(key);
    return ok;
}

static const struct {
    const char *name;
    int (*run)(void);
} kats[] = {
    {"SHA-256", kat_sha256},
    {"HMAC-SHA256", kat_hmac},
    {"HKDF-SHA256", kat_hkdf},
    {"AES-256-GCM", kat_aes_gcm},
    {"ChaCha20-Poly1305", kat_chacha},
    {"DRBG", kat_drbg},
    {"RSA-2048-PKCS1", kat_rsa},
    {"ECDSA-P256", kat_ecdsa},
    {"Ed25519", kat_ed25519},
    {"X25519", kat_x25519},
    {"ECDH-P256", kat_ecdh},
};

/* Is name in the comma-separated IHSM_SELFTEST_FAIL list? */
int ihsm_crypto_forced(const char *name)
{
    const char *list = getenv("IHSM_SELFTEST_FAIL");
    size_t n = strlen(name);

    while (list != NULL && *list != '\0') {
        const char *end = strchr(list, ',');
        size_t len = end != NULL ? (size_t)(end - list) : strlen(list);

        if (len == n && strncmp(list, name, n) == 0)
            return 1;
        list = end != NULL ? end + 1 : NULL;
    }
    return 0;
}

int ihsm_crypto_selftest(ihsm_wr *out)
{
    size_t n = sizeof(kats) / sizeof(kats[0]);
    int all = 1;

    if (out != NULL)
        ihsm_wr_u32(out, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        int passed = ihsm_crypto_libctx() != NULL && kats[i].run();

        ihsm_crypto_drop_errors(kats[i].name);
        int forced = passed && ihsm_crypto_forced(kats[i].name);

        if (forced)
            passed = 0;
        ihsm_crypto_debug("self-test %s: %s", kats[i].name, passed ? "passed" : "FAILED");
        if (!passed) {
            all = 0;
            fprintf(stderr, "ihsmd: self-test %s failed%s\n", kats[i].name,
                    forced ? " (forced by IHSM_SELFTEST_FAIL)" : "");
        }
        if (out != NULL) {
            ihsm_wr_bytes(out, kats[i].name, strlen(kats[i].name));
            ihsm_wr_u32(out, (uint32_t)passed);
        }
    }
    if (!all) {
        ihsm_crypto_set_failed("known-answer test");
        return IHSM_ERR_DEVICE_FAILED;
    }
    if (out != NULL && out->err)
        return ihsm_crypto_wr_status(out);
    return IHSM_OK;
}
