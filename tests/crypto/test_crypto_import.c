/*
 * BYOK import: the test plays the client, wrapping keys made by the default
 * provider to the device import key (RSA-OAEP SHA-256 of an AES-256 key,
 * then RFC 5649 AES key wrap with padding of the PKCS#8 DER). The imported
 * key must behave exactly like the original; anything malformed is
 * IHSM_ERR_BAD_INPUT.
 */
#include "crypto_test_util.h"

#include <openssl/param_build.h>
#include <openssl/rand.h>

static ihsm_key *import_key; /* RSA-3072, usage DECRYPT, like the daemon's */
static EVP_PKEY *import_pub;

static int setup(void **state)
{
    (void)state;
    crypto_up();
    import_key = gen(IHSM_KEY_RSA, 3072, IHSM_USAGE_DECRYPT);
    import_pub = public_of(import_key);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(import_pub);
    ihsm_key_free(import_key);
    return 0;
}

typedef struct {
    uint8_t *p;
    size_t len;
} buf;

static void buf_free(buf *b)
{
    OPENSSL_clear_free(b->p, b->len);
    b->p = NULL;
    b->len = 0;
}

static buf pkcs8(EVP_PKEY *pk)
{
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pk);
    buf b = {NULL, 0};
    int n;

    assert_non_null(p8);
    n = i2d_PKCS8_PRIV_KEY_INFO(p8, &b.p);
    assert_true(n > 0);
    b.len = (size_t)n;
    PKCS8_PRIV_KEY_INFO_free(p8);
    return b;
}

/* The client side of CKM_RSA_AES_KEY_WRAP. kek_len != 32 makes a bad one. */
static buf wrap_with(EVP_PKEY *to, const uint8_t *key, size_t key_len, size_t kek_len)
{
    uint8_t kek[64];
    size_t rsa_len = (size_t)EVP_PKEY_get_size(to), out_len;
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(to, NULL);
    EVP_CIPHER *wrap = EVP_CIPHER_fetch(NULL, "AES-256-WRAP-PAD", NULL);
    EVP_CIPHER_CTX *cc = EVP_CIPHER_CTX_new();
    buf b;
    int n, fin;

    assert_int_equal(RAND_bytes(kek, sizeof(kek)), 1);
    b.p = malloc(rsa_len + key_len + 16);
    assert_non_null(b.p);
    out_len = rsa_len;
    assert_int_equal(EVP_PKEY_encrypt_init(pc), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(pc, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_encrypt(pc, b.p, &out_len, kek, kek_len), 1);
    assert_int_equal(out_len, rsa_len);
    EVP_CIPHER_CTX_set_flags(cc, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    assert_int_equal(EVP_EncryptInit_ex2(cc, wrap, kek, NULL, NULL), 1);
    assert_int_equal(EVP_EncryptUpdate(cc, b.p + rsa_len, &n, key, (int)key_len), 1);
    assert_int_equal(EVP_EncryptFinal_ex(cc, b.p + rsa_len + n, &fin), 1);
    b.len = rsa_len + (size_t)n + (size_t)fin;
    assert_int_equal((b.len - rsa_len) % 8, 0);
    EVP_CIPHER_CTX_free(cc);
    EVP_CIPHER_free(wrap);
    EVP_PKEY_CTX_free(pc);
    OPENSSL_cleanse(kek, sizeof(kek));
    return b;
}

static buf wrap(const uint8_t *key, size_t key_len)
{
    return wrap_with(import_pub, key, key_len, 32);
}

static int do_import(uint32_t type, uint32_t bits, uint32_t usage, const buf *w,
                     ihsm_key **out)
{
    *out = (ihsm_key *)w; /* must be reset */
    int st = ihsm_key_import(import_key, type, bits, usage, (const uint8_t *)"imp", 3,
                             w->p, w->len, out);
    if (st != IHSM_OK)
        assert_null(*out);
    return st;
}

/* Import a client key, the whole way from PKCS#8. */
static ihsm_key *import_pkey(EVP_PKEY *pk, uint32_t type, uint32_t bits, uint32_t usage)
{
    buf der = pkcs8(pk), w = wrap(der.p, der.len);
    ihsm_key *k;

    assert_int_equal(do_import(type, bits, usage, &w, &k), IHSM_OK);
    buf_free(&der);
    buf_free(&w);
    return k;
}

static size_t client_sign(EVP_PKEY *pk, const EVP_MD *md, const uint8_t *tbs, size_t len,
                          uint8_t *sig, size_t max)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pk, NULL);
    size_t siglen = max;

    assert_int_equal(EVP_PKEY_sign_init(c), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_signature_md(c, md), 1);
    assert_int_equal(EVP_PKEY_sign(c, sig, &siglen, tbs, len), 1);
    EVP_PKEY_CTX_free(c);
    return siglen;
}

static void test_import_rsa(void **state)
{
    EVP_PKEY *orig = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    uint8_t d[32], want[256];
    size_t want_len;
    ihsm_key *k;
    op_out o;

    (void)state;
    assert_non_null(orig);
    assert_int_equal(RAND_bytes(d, sizeof(d)), 1);
    k = import_pkey(orig, IHSM_KEY_RSA, 0, 0); /* bits 0: from the key */
    assert_int_equal(ihsm_key_type(k), IHSM_KEY_RSA);
    assert_int_equal(ihsm_key_bits(k), 2048);
    assert_int_equal(ihsm_key_usage(k), IHSM_USAGE_SIGN);
    /* PKCS#1 v1.5 is deterministic: byte-identical to the original's */
    want_len = client_sign(orig, EVP_sha256(), d, 32, want, sizeof(want));
    o = do_sign(k, IHSM_SIG_RSA_PKCS1, IHSM_MD_SHA256, 0, 0, d, 32);
    assert_int_equal(o.st, IHSM_OK);
    assert_int_equal(o.len, want_len);
    assert_memory_equal(o.p, want, want_len);
    op_out_free(&o);
    o = do_sign(k, IHSM_SIG_RSA_PSS, IHSM_MD_SHA256, 0, IHSM_PSS_SALT_DIGEST, d, 32);
    assert_int_equal(o.st, IHSM_OK);
    assert_true(client_verify(orig, IHSM_SIG_RSA_PSS, IHSM_MD_SHA256, 0,
                              IHSM_PSS_SALT_DIGEST, d, 32, o.p, o.len));
    op_out_free(&o);
    ihsm_key_free(k);
    /* with explicit bits too */
    k = import_pkey(orig, IHSM_KEY_RSA, 2048, IHSM_USAGE_SIGN);
    ihsm_key_free(k);
    EVP_PKEY_free(orig);
}

static void test_import_ec(void **state)
{
    const char *groups[] = {"P-256", "P-384"};
    uint32_t types[] = {IHSM_KEY_EC_P256, IHSM_KEY_EC_P384};

    (void)state;
    for (int i = 0; i < 2; i++) {
        EVP_PKEY *orig = EVP_PKEY_Q_keygen(NULL, NULL, "EC", groups[i]);
        uint8_t d[32] = "an ECDSA digest of 32 bytes....";
        ihsm_key *k = import_pkey(orig, types[i], 0, IHSM_USAGE_SIGN | IHSM_USAGE_DERIVE);
        EVP_PKEY *eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", groups[i]);
        uint8_t pt[97], want[48];
        size_t ptlen = client_pub_raw(eph, pt, sizeof(pt));
        size_t want_len = client_derive(eph, orig, want, sizeof(want));
        op_out o;

        assert_int_equal(ihsm_key_bits(k), i == 0 ? 256 : 384);
        o = do_sign(k, IHSM_SIG_ECDSA, IHSM_MD_SHA256, 0, 0, d, 32);
        assert_int_equal(o.st, IHSM_OK);
        assert_true(client_verify(orig, IHSM_SIG_ECDSA, IHSM_MD_SHA256, 0, 0, d, 32,
                                  o.p, o.len));
        op_out_free(&o);
        o = do_derive(k, pt, ptlen);
        assert_int_equal(o.st, IHSM_OK);
        assert_int_equal(o.len, want_len);
        assert_memory_equal(o.p, want, want_len);
        op_out_free(&o);
        EVP_PKEY_free(eph);
        EVP_PKEY_free(orig);
        ihsm_key_free(k);
    }
}

static void test_import_25519(void **state)
{
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY *x = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    EVP_PKEY *eph = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    ihsm_key *ked = import_pkey(ed, IHSM_KEY_ED25519, 0, 0);
    ihsm_key *kx = import_pkey(x, IHSM_KEY_X25519, 256, 0);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    uint8_t want[64], pt[32];
    size_t want_len = sizeof(want), ptlen;
    op_out o;

    (void)state;
    /* Ed25519 is deterministic: the same signature as the original */
    assert_int_equal(EVP_DigestSignInit(m, NULL, NULL, NULL, ed), 1);
    assert_int_equal(EVP_DigestSign(m, want, &want_len, (const uint8_t *)"msg", 3), 1);
    o = do_sign(ked, IHSM_SIG_ED25519, IHSM_MD_NONE, 0, 0, "msg", 3);
    assert_int_equal(o.st, IHSM_OK);
    assert_int_equal(o.len, want_len);
    assert_memory_equal(o.p, want, want_len);
    op_out_free(&o);

    ptlen = client_pub_raw(eph, pt, sizeof(pt));
    want_len = client_derive(eph, x, want, sizeof(want));
    o = do_derive(kx, pt, ptlen);
    assert_int_equal(o.st, IHSM_OK);
    assert_int_equal(o.len, want_len);
    assert_memory_equal(o.p, want, want_len);
    op_out_free(&o);

    EVP_MD_CTX_free(m);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(x);
    EVP_PKEY_free(eph);
    ihsm_key_free(ked);
    ihsm_key_free(kx);
}

/* AES keys travel as raw bytes; the device's AEAD output must equal what a
 * client computes with the same key. */
static void test_import_aes(void **state)
{
    uint8_t key[32], iv[12], ct[64 + 16];
    static const char msg[] = "imported AES key, known to the test";
    size_t mlen = sizeof(msg) - 1;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    ihsm_key *k;
    buf w;
    op_out o;
    int n;

    (void)state;
    assert_int_equal(RAND_bytes(key, sizeof(key)), 1);
    assert_int_equal(RAND_bytes(iv, sizeof(iv)), 1);
    w = wrap(key, 32);
    assert_int_equal(do_import(IHSM_KEY_AES, 0, 0, &w, &k), IHSM_OK);
    assert_int_equal(ihsm_key_bits(k), 256);
    buf_free(&w);

    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv), 1);
    assert_int_equal(EVP_EncryptUpdate(c, NULL, &n, (const uint8_t *)"hdr", 3), 1);
    assert_int_equal(EVP_EncryptUpdate(c, ct, &n, (const uint8_t *)msg, (int)mlen), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c, ct + n, &n), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, ct + mlen), 1);
    o = do_aead(k, 1, IHSM_AEAD_AES_GCM, iv, 12, "hdr", 3, msg, mlen, 16);
    assert_int_equal(o.st, IHSM_OK);
    assert_int_equal(o.len, mlen + 16);
    assert_memory_equal(o.p, ct, mlen + 16);
    op_out_free(&o);

    /* the same 32-byte key as ChaCha20-Poly1305 */
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_chacha20_poly1305(), NULL, key, iv), 1);
    assert_int_equal(EVP_EncryptUpdate(c, NULL, &n, (const uint8_t *)"hdr", 3), 1);
    assert_int_equal(EVP_EncryptUpdate(c, ct, &n, (const uint8_t *)msg, (int)mlen), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c, ct + n, &n), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, ct + mlen), 1);
    o = do_aead(k, 1, IHSM_AEAD_CHACHA20_POLY1305, iv, 12, "hdr", 3, msg, mlen, 16);
    assert_int_equal(o.st, IHSM_OK);
    assert_memory_equal(o.p, ct, mlen + 16);
    op_out_free(&o);
    o = do_aead(k, 0, IHSM_AEAD_CHACHA20_POLY1305, iv, 12, "hdr", 3, ct, mlen + 16, 16);
    assert_int_equal(o.st, IHSM_OK);
    assert_memory_equal(o.p, msg, mlen);
    op_out_free(&o);

    EVP_CIPHER_CTX_free(c);
    ihsm_key_free(k);

    /* a 128-bit key, bits given */
    w = wrap(key, 16);
    assert_int_equal(do_import(IHSM_KEY_AES, 128, 0, &w, &k), IHSM_OK);
    assert_int_equal(ihsm_key_bits(k), 128);
    ihsm_key_free(k);
    buf_free(&w);
}

/* A key that unwraps fine but is not what the request says. */
static void test_type_and_bits_must_match(void **state)
{
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    buf dec = pkcs8(ec), der = pkcs8(rsa), ded = pkcs8(ed);
    buf wec = wrap(dec.p, dec.len), wrsa = wrap(der.p, der.len), wed = wrap(ded.p, ded.len);
    uint8_t aes[16] = {1, 2, 3};
    buf waes = wrap(aes, sizeof(aes));
    ihsm_key *k;

    (void)state;
    assert_int_equal(do_import(IHSM_KEY_EC_P384, 0, 0, &wec, &k), IHSM_ERR_BAD_INPUT);
    assert_int_equal(do_import(IHSM_KEY_RSA, 0, 0, &wec, &k), IHSM_ERR_BAD_INPUT);
    assert_int_equal(do_import(IHSM_KEY_ED25519, 0, 0, &wec, &k), IHSM_ERR_BAD_INPUT);
    assert_int_equal(do_import(IHSM_KEY_AES, 0, 0, &wec, &k), IHSM_ERR_BAD_INPUT);
    assert_int_equal(do_import(IHSM_KEY_RSA, 3072, 0, &wrsa, &k), IHSM_ERR_BAD_INPUT);
    assert_int_equal(do_import(IHSM_KEY_EC_P256, 0, 0, &wrsa, &k), IHSM_ERR_BAD_INPUT);
    assert_int_equal(do_import(IHSM_KEY_X25519, 0, 0, &wed, &k), IHSM_ERR_BAD_INPUT);
    assert_int_equal(do_import(IHSM_KEY_AES, 256, 0, &waes, &k), IHSM_ERR_BAD_INPUT);
    assert_int_equal(do_import(IHSM_KEY_EC_P256, 0, 0, &waes, &k), IHSM_ERR_BAD_INPUT);
    /* parameters checked as for generation */
    assert_int_equal(do_import(IHSM_KEY_RSA, 1024, 0, &wrsa, &k), IHSM_ERR_UNSUPPORTED);
    assert_int_equal(do_import(IHSM_KEY_EC_P256, 0, IHSM_USAGE_ENCRYPT, &wec, &k),
                     IHSM_ERR_BAD_INPUT);
    /* and the right requests work */
    assert_int_equal(do_import(IHSM_KEY_EC_P256, 256, 0, &wec, &k), IHSM_OK);
    ihsm_key_free(k);
    assert_int_equal(do_import(IHSM_KEY_RSA, 2048, 0, &wrsa, &k), IHSM_OK);
    ihsm_key_free(k);

    buf_free(&dec), buf_free(&der), buf_free(&ded);
    buf_free(&wec), buf_free(&wrsa), buf_free(&wed), buf_free(&waes);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ed);
}

static void test_small_rsa_refused(void **state)
{
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    buf der = pkcs8(rsa), w = wrap(der.p, der.len);
    ihsm_key *k;

    (void)state;
    assert_int_equal(do_import(IHSM_KEY_RSA, 0, 0, &w, &k), IHSM_ERR_BAD_INPUT);
    buf_free(&der);
    buf_free(&w);
    EVP_PKEY_free(rsa);
}

/* An EC private key whose public half belongs to another key: it decodes,
 * but the pairwise consistency test must refuse it. */
static void test_inconsistent_pair_refused(void **state)
{
    EVP_PKEY *a = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *b = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    BIGNUM *priv = NULL;
    uint8_t pub[65];
    size_t publen = client_pub_raw(b, pub, sizeof(pub));
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *mixed = NULL;
    ihsm_key *k;
    buf der, w;

    (void)state;
    assert_int_equal(EVP_PKEY_get_bn_param(a, OSSL_PKEY_PARAM_PRIV_KEY, &priv), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                                     "P-256", 0), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub,
                                                      publen), 1);
    params = OSSL_PARAM_BLD_to_param(bld);
    assert_int_equal(EVP_PKEY_fromdata_init(c), 1);
    assert_int_equal(EVP_PKEY_fromdata(c, &mixed, EVP_PKEY_KEYPAIR, params), 1);
    der = pkcs8(mixed);
    w = wrap(der.p, der.len);
    assert_int_equal(do_import(IHSM_KEY_EC_P256, 0, 0, &w, &k), IHSM_ERR_BAD_INPUT);
    assert_int_equal(ihsm_crypto_failed(), 0); /* a client's bad key is not a device fault */

    buf_free(&der);
    buf_free(&w);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(priv);
    EVP_PKEY_CTX_free(c);
    EVP_PKEY_free(mixed);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
}

/* The same for a key agreement key (usage derive alone: the pairwise test
 * recomputes the public key from the private one). An X25519 PKCS#8 holds
 * no public key, so only EC can carry a mismatched one in. */
static void test_inconsistent_derive_pair_refused(void **state)
{
    EVP_PKEY *a = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *b = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    BIGNUM *priv = NULL;
    uint8_t pub[65];
    size_t publen = client_pub_raw(b, pub, sizeof(pub));
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *mixed = NULL;
    ihsm_key *k;
    buf der, w;

    (void)state;
    assert_int_equal(EVP_PKEY_get_bn_param(a, OSSL_PKEY_PARAM_PRIV_KEY, &priv), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                                     "P-256", 0), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub,
                                                      publen), 1);
    params = OSSL_PARAM_BLD_to_param(bld);
    assert_int_equal(EVP_PKEY_fromdata_init(c), 1);
    assert_int_equal(EVP_PKEY_fromdata(c, &mixed, EVP_PKEY_KEYPAIR, params), 1);
    der = pkcs8(mixed);
    w = wrap(der.p, der.len);
    assert_int_equal(do_import(IHSM_KEY_EC_P256, 0, IHSM_USAGE_DERIVE, &w, &k),
                     IHSM_ERR_BAD_INPUT);
    assert_int_equal(ihsm_crypto_failed(), 0);

    buf_free(&der);
    buf_free(&w);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(priv);
    EVP_PKEY_CTX_free(c);
    EVP_PKEY_free(mixed);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
}

static void test_garbage_wrapped(void **state)
{
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
    buf der = pkcs8(ec), good = wrap(der.p, der.len), w;
    uint8_t junk[600];
    ihsm_key *k, *signer = gen(IHSM_KEY_RSA, 2048, 0);

    (void)state;
    assert_int_equal(RAND_bytes(junk, sizeof(junk)), 1);
    /* random bytes of a plausible length */
    w.p = junk;
    w.len = 384 + 48;
    assert_int_equal(do_import(IHSM_KEY_EC_P256, 0, 0, &w, &k), IHSM_ERR_BAD_INPUT);
    /* wrong lengths: empty, shorter than the RSA block, wrap not a multiple of 8 */
    w.len = 0;
    assert_int_equal(do_import(IHSM_KEY_EC_P256, 0, 0, &w, &k), IHSM_ERR_BAD_INPUT);
    w.len = 100;
    assert_int_equal(do_import(IHSM_KEY_EC_P256, 0, 0, &w, &k), IHSM_ERR_BAD_INPUT);
    w.p = good.p;
    w.len = good.len - 1;
    assert_int_equal(do_import(IHSM_KEY_EC_P256, 0, 0, &w, &k), IHSM_ERR_BAD_INPUT);
    w.len = 384 + 8;
    assert_int_equal(do_import(IHSM_KEY_EC_P256, 0, 0, &w, &k), IHSM_ERR_BAD_INPUT);
    /* good OAEP part, a corrupted wrap; a corrupted OAEP part */
    w.p = malloc(good.len);
    w.len = good.len;
    memcpy(w.p, good.p, good.len);
    w.p[good.len - 5] ^= 1;
    assert_int_equal(do_import(IHSM_KEY_EC_P256, 0, 0, &w, &k), IHSM_ERR_BAD_INPUT);
    memcpy(w.p, good.p, good.len);
    w.p[10] ^= 1;
    assert_int_equal(do_import(IHSM_KEY_EC_P256, 0, 0, &w, &k), IHSM_ERR_BAD_INPUT);
    free(w.p);
    /* wrapped to another RSA key */
    w = wrap_with(other, der.p, der.len, 32);
    assert_int_equal(do_import(IHSM_KEY_EC_P256, 0, 0, &w, &k), IHSM_ERR_BAD_INPUT);
    buf_free(&w);
    /* a 16-byte key-encryption key */
    w = wrap_with(import_pub, der.p, der.len, 16);
    assert_int_equal(do_import(IHSM_KEY_EC_P256, 0, 0, &w, &k), IHSM_ERR_BAD_INPUT);
    buf_free(&w);
    /* correctly wrapped bytes that are not PKCS#8 */
    w = wrap(junk, 64);
    assert_int_equal(do_import(IHSM_KEY_EC_P256, 0, 0, &w, &k), IHSM_ERR_BAD_INPUT);
    assert_int_equal(do_import(IHSM_KEY_RSA, 0, 0, &w, &k), IHSM_ERR_BAD_INPUT);
    buf_free(&w);
    /* PKCS#8 with a byte of trailing garbage */
    {
        uint8_t *ext = malloc(der.len + 1);
        memcpy(ext, der.p, der.len);
        ext[der.len] = 0;
        w = wrap(ext, der.len + 1);
        assert_int_equal(do_import(IHSM_KEY_EC_P256, 0, 0, &w, &k), IHSM_ERR_BAD_INPUT);
        buf_free(&w);
        free(ext);
    }
    /* the import key must be a decrypting RSA key */
    assert_int_equal(ihsm_key_import(signer, IHSM_KEY_EC_P256, 0, 0, NULL, 0, good.p,
                                     good.len, &k), IHSM_ERR_USAGE);
    assert_int_equal(ihsm_key_import(NULL, IHSM_KEY_EC_P256, 0, 0, NULL, 0, good.p,
                                     good.len, &k), IHSM_ERR_USAGE);
    /* and after all that, the good one still imports */
    assert_int_equal(do_import(IHSM_KEY_EC_P256, 0, 0, &good, &k), IHSM_OK);
    ihsm_key_free(k);
    assert_int_equal(ihsm_crypto_failed(), 0);
    assert_int_equal(ERR_peek_error(), 0); /* no leftovers on the error queue */

    ihsm_key_free(signer);
    buf_free(&der);
    buf_free(&good);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_import_rsa),
        cmocka_unit_test(test_import_ec),
        cmocka_unit_test(test_import_25519),
        cmocka_unit_test(test_import_aes),
        cmocka_unit_test(test_type_and_bits_must_match),
        cmocka_unit_test(test_small_rsa_refused),
        cmocka_unit_test(test_inconsistent_pair_refused),
        cmocka_unit_test(test_inconsistent_derive_pair_refused),
        cmocka_unit_test(test_garbage_wrapped),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
