/*
 * Helpers for the crypto core tests: build request payloads with the real
 * codec, run the device operation, and check results with OpenSSL's default
 * provider in the ordinary (process-wide) library context, i.e. the way a
 * client would.
 */
#ifndef IHSM_CRYPTO_TEST_UTIL_H
#define IHSM_CRYPTO_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "dev_crypto.h"

#define TEST_SECURE_HEAP (4u << 20)

static inline void crypto_up(void)
{
    assert_int_equal(ihsm_crypto_init(TEST_SECURE_HEAP), IHSM_OK);
    assert_int_equal(ihsm_crypto_failed(), 0);
}

static inline ihsm_key *gen(uint32_t type, uint32_t bits, uint32_t usage)
{
    ihsm_key *k = NULL;

    assert_int_equal(ihsm_key_generate(type, bits, usage, (const uint8_t *)"t", 1, &k),
                     IHSM_OK);
    assert_non_null(k);
    return k;
}

/* The key's SubjectPublicKeyInfo, decoded by the default provider. */
static inline EVP_PKEY *public_of(const ihsm_key *k)
{
    ihsm_wr w;
    ihsm_rd r;
    const uint8_t *der;
    size_t len;
    EVP_PKEY *pk;

    ihsm_wr_init(&w);
    assert_int_equal(ihsm_key_write_public(k, &w), IHSM_OK);
    ihsm_rd_init(&r, w.p, w.len);
    der = ihsm_rd_bytes(&r, &len, 1 << 20);
    assert_int_equal(ihsm_rd_end(&r), 0);
    pk = d2i_PUBKEY(NULL, &der, (long)len);
    assert_non_null(pk);
    ihsm_wr_free(&w);
    return pk;
}

/* Result of an operation: status and the single "bytes" field it returned. */
typedef struct {
    int st;
    uint8_t *p;
    size_t len;
} op_out;

static inline void op_out_free(op_out *o)
{
    free(o->p);
    o->p = NULL;
}

/* Run op over payload, parse its one bytes field (on IHSM_OK). An error must
 * leave nothing in the output. */
static inline op_out finish_op(int st, ihsm_wr *out)
{
    op_out o = {st, NULL, 0};

    if (st == IHSM_OK) {
        ihsm_rd r;
        const uint8_t *b;

        ihsm_rd_init(&r, out->p, out->len);
        b = ihsm_rd_bytes(&r, &o.len, 1 << 20);
        assert_int_equal(ihsm_rd_end(&r), 0);
        o.p = malloc(o.len + 1);
        assert_non_null(o.p);
        memcpy(o.p, b, o.len);
    } else {
        assert_int_equal(out->len, 0);
    }
    ihsm_wr_free(out);
    return o;
}

static inline op_out do_sign(const ihsm_key *k, uint32_t scheme, uint32_t md,
                             uint32_t mgf1, int32_t salt, const void *tbs, size_t len)
{
    ihsm_wr a, out;
    ihsm_rd r;
    int st;

    ihsm_wr_init(&a);
    ihsm_wr_init(&out);
    ihsm_wr_u32(&a, scheme);
    ihsm_wr_u32(&a, md);
    ihsm_wr_u32(&a, mgf1);
    ihsm_wr_u32(&a, (uint32_t)salt);
    ihsm_wr_bytes(&a, tbs, len);
    ihsm_rd_init(&r, a.p, a.len);
    st = ihsm_op_sign(k, &r, &out);
    ihsm_wr_free(&a);
    return finish_op(st, &out);
}

static inline op_out do_derive(const ihsm_key *k, const void *peer, size_t len)
{
    ihsm_wr a, out;
    ihsm_rd r;
    int st;

    ihsm_wr_init(&a);
    ihsm_wr_init(&out);
    ihsm_wr_bytes(&a, peer, len);
    ihsm_rd_init(&r, a.p, a.len);
    st = ihsm_op_derive(k, &r, &out);
    ihsm_wr_free(&a);
    return finish_op(st, &out);
}

static inline op_out do_aead(const ihsm_key *k, int seal, uint32_t alg, const void *iv,
                             size_t iv_len, const void *aad, size_t aad_len,
                             const void *text, size_t text_len, uint32_t tag_len)
{
    ihsm_wr a, out;
    ihsm_rd r;
    int st;

    ihsm_wr_init(&a);
    ihsm_wr_init(&out);
    ihsm_wr_u32(&a, alg);
    ihsm_wr_bytes(&a, iv, iv_len);
    ihsm_wr_bytes(&a, aad, aad_len);
    ihsm_wr_bytes(&a, text, text_len);
    ihsm_wr_u32(&a, tag_len);
    ihsm_rd_init(&r, a.p, a.len);
    st = ihsm_op_aead(k, seal, &r, &out);
    ihsm_wr_free(&a);
    return finish_op(st, &out);
}

static inline const EVP_MD *test_md(uint32_t md)
{
    switch (md) {
    case IHSM_MD_SHA1: return EVP_sha1();
    case IHSM_MD_SHA224: return EVP_sha224();
    case IHSM_MD_SHA256: return EVP_sha256();
    case IHSM_MD_SHA384: return EVP_sha384();
    case IHSM_MD_SHA512: return EVP_sha512();
    default: return NULL;
    }
}

/* Verify a device signature with the default provider. salt as in the
 * request (IHSM_PSS_SALT_DIGEST, _MAX or a length). Returns 1 if good. */
static inline int client_verify(EVP_PKEY *pub, uint32_t scheme, uint32_t md,
                                uint32_t mgf1, int32_t salt, const void *tbs,
                                size_t tbslen, const uint8_t *sig, size_t siglen)
{
    int ok;

    if (scheme == IHSM_SIG_ED25519) {
        EVP_MD_CTX *m = EVP_MD_CTX_new();

        ok = EVP_DigestVerifyInit(m, NULL, NULL, NULL, pub) > 0
             && EVP_DigestVerify(m, sig, siglen, tbs, tbslen) == 1;
        EVP_MD_CTX_free(m);
    } else {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pub, NULL);

        ok = EVP_PKEY_verify_init(c) > 0;
        if (ok && scheme == IHSM_SIG_RSA_PKCS1)
            ok = EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) > 0;
        if (ok && md != IHSM_MD_NONE)
            ok = EVP_PKEY_CTX_set_signature_md(c, test_md(md)) > 0;
        if (ok && scheme == IHSM_SIG_RSA_PSS) {
            int s = salt == IHSM_PSS_SALT_DIGEST ? RSA_PSS_SALTLEN_DIGEST
                    : salt == IHSM_PSS_SALT_MAX  ? RSA_PSS_SALTLEN_AUTO
                                                 : salt;
            ok = EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PSS_PADDING) > 0
                 && EVP_PKEY_CTX_set_rsa_mgf1_md(c, test_md(mgf1 ? mgf1 : md)) > 0
                 && EVP_PKEY_CTX_set_rsa_pss_saltlen(c, s) > 0;
        }
        ok = ok && EVP_PKEY_verify(c, sig, siglen, tbs, tbslen) == 1;
        EVP_PKEY_CTX_free(c);
    }
    ERR_clear_error();
    return ok;
}

/* Shared secret of a client key with a peer public key, default provider. */
static inline size_t client_derive(EVP_PKEY *priv, EVP_PKEY *peer, uint8_t *out,
                                   size_t max)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(priv, NULL);
    size_t len = max;

    assert_non_null(c);
    assert_int_equal(EVP_PKEY_derive_init(c), 1);
    assert_int_equal(EVP_PKEY_derive_set_peer(c, peer), 1);
    assert_int_equal(EVP_PKEY_derive(c, out, &len), 1);
    EVP_PKEY_CTX_free(c);
    return len;
}

/* The uncompressed point (EC) or raw public (X25519) of a client key. */
static inline size_t client_pub_raw(EVP_PKEY *pk, uint8_t *out, size_t max)
{
    size_t len = max;

    if (EVP_PKEY_is_a(pk, "X25519"))
        assert_int_equal(EVP_PKEY_get_raw_public_key(pk, out, &len), 1);
    else
        assert_int_equal(EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY,
                                                         out, max, &len), 1);
    return len;
}

#endif
