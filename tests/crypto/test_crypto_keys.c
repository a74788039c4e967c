/*
 * Key generation for every type, signatures checked by a client with the
 * default provider from the SPKI the device writes, parameter checks and
 * usage enforcement.
 */
#include "crypto_test_util.h"

#include <openssl/rand.h>

static ihsm_key *rsa2048;

static int setup(void **state)
{
    (void)state;
    crypto_up();
    rsa2048 = gen(IHSM_KEY_RSA, 2048, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ihsm_key_free(rsa2048);
    return 0;
}

static void digest(uint32_t md, const char *msg, uint8_t *out, size_t *len)
{
    unsigned int n = 0;

    assert_int_equal(EVP_Digest(msg, strlen(msg), out, &n, test_md(md), NULL), 1);
    *len = n;
}

/* Sign with the device, verify as a client; then a flipped bit must fail. */
static void sign_and_verify(const ihsm_key *k, EVP_PKEY *pub, uint32_t scheme,
                            uint32_t md, uint32_t mgf1, int32_t salt)
{
    uint8_t tbs[64];
    size_t tbslen;
    op_out o;

    if (scheme == IHSM_SIG_ED25519) {
        tbslen = 37;
        memcpy(tbs, "a message signed as it is by Ed25519", tbslen);
    } else {
        digest(md, "hello from the test", tbs, &tbslen);
    }
    o = do_sign(k, scheme, md, mgf1, salt, tbs, tbslen);
    assert_int_equal(o.st, IHSM_OK);
    assert_true(client_verify(pub, scheme, md, mgf1, salt, tbs, tbslen, o.p, o.len));
    tbs[0] ^= 0x80;
    assert_false(client_verify(pub, scheme, md, mgf1, salt, tbs, tbslen, o.p, o.len));
    op_out_free(&o);
}

static void check_attrs(const ihsm_key *k, uint32_t type, uint32_t bits, uint32_t usage)
{
    size_t len;
    const uint8_t *label = ihsm_key_label(k, &len);

    assert_int_equal(ihsm_key_type(k), type);
    assert_int_equal(ihsm_key_bits(k), bits);
    assert_int_equal(ihsm_key_usage(k), usage);
    assert_int_equal(len, 1);
    assert_memory_equal(label, "t", 1);
}

static void test_rsa_2048_schemes(void **state)
{
    EVP_PKEY *pub = public_of(rsa2048);
    uint32_t mds[] = {IHSM_MD_SHA1, IHSM_MD_SHA224, IHSM_MD_SHA256, IHSM_MD_SHA384,
                      IHSM_MD_SHA512};

    (void)state;
    check_attrs(rsa2048, IHSM_KEY_RSA, 2048, IHSM_USAGE_SIGN);
    assert_true(EVP_PKEY_is_a(pub, "RSA"));
    assert_int_equal(EVP_PKEY_get_bits(pub), 2048);
    for (size_t i = 0; i < sizeof(mds) / sizeof(mds[0]); i++) {
        sign_and_verify(rsa2048, pub, IHSM_SIG_RSA_PKCS1, mds[i], 0, 0);
        sign_and_verify(rsa2048, pub, IHSM_SIG_RSA_PSS, mds[i], 0, IHSM_PSS_SALT_DIGEST);
    }
    sign_and_verify(rsa2048, pub, IHSM_SIG_RSA_PSS, IHSM_MD_SHA256, 0, IHSM_PSS_SALT_MAX);
    sign_and_verify(rsa2048, pub, IHSM_SIG_RSA_PSS, IHSM_MD_SHA256, 0, 0);
    sign_and_verify(rsa2048, pub, IHSM_SIG_RSA_PSS, IHSM_MD_SHA256, 0, 20);
    sign_and_verify(rsa2048, pub, IHSM_SIG_RSA_PSS, IHSM_MD_SHA384, IHSM_MD_SHA1, 48);
    /* largest explicit salt: emLen - hLen - 2 = 256 - 32 - 2 */
    sign_and_verify(rsa2048, pub, IHSM_SIG_RSA_PSS, IHSM_MD_SHA256, 0, 222);
    EVP_PKEY_free(pub);
}

/* PKCS#1 v1.5 with md NONE signs a ready DigestInfo: the client's own
 * signature of the same digest (md SHA-256) must be byte-identical. */
static void test_rsa_pkcs1_raw_digestinfo(void **state)
{
    static const uint8_t prefix[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86,
                                     0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
                                     0x00, 0x04, 0x20};
    uint8_t d[32], di[sizeof(prefix) + 32];
    size_t dlen;
    op_out a, b;

    (void)state;
    digest(IHSM_MD_SHA256, "digest info", d, &dlen);
    memcpy(di, prefix, sizeof(prefix));
    memcpy(di + sizeof(prefix), d, 32);
    a = do_sign(rsa2048, IHSM_SIG_RSA_PKCS1, IHSM_MD_NONE, 0, 0, di, sizeof(di));
    b = do_sign(rsa2048, IHSM_SIG_RSA_PKCS1, IHSM_MD_SHA256, 0, 0, d, dlen);
    assert_int_equal(a.st, IHSM_OK);
    assert_int_equal(b.st, IHSM_OK);
    assert_int_equal(a.len, 256);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.p, b.p, a.len);
    op_out_free(&a);
    op_out_free(&b);
}

static void test_rsa_3072_4096(void **state)
{
    uint32_t sizes[] = {3072, 4096}; /* RSA-4096 keygen: once in the suite */

    (void)state;
    for (size_t i = 0; i < 2; i++) {
        ihsm_key *k = gen(IHSM_KEY_RSA, sizes[i], 0);
        EVP_PKEY *pub = public_of(k);

        check_attrs(k, IHSM_KEY_RSA, sizes[i], IHSM_USAGE_SIGN);
        assert_int_equal(EVP_PKEY_get_bits(pub), (int)sizes[i]);
        sign_and_verify(k, pub, IHSM_SIG_RSA_PKCS1, IHSM_MD_SHA256, 0, 0);
        sign_and_verify(k, pub, IHSM_SIG_RSA_PSS, IHSM_MD_SHA512, 0, IHSM_PSS_SALT_DIGEST);
        EVP_PKEY_free(pub);
        ihsm_key_free(k);
    }
}

static void test_ec(void **state)
{
    struct {
        uint32_t type, bits;
        const char *group;
    } c[] = {{IHSM_KEY_EC_P256, 256, "prime256v1"}, {IHSM_KEY_EC_P384, 384, "secp384r1"}};

    (void)state;
    for (size_t i = 0; i < 2; i++) {
        ihsm_key *k = gen(c[i].type, 0, 0);
        EVP_PKEY *pub = public_of(k);
        char name[64];

        check_attrs(k, c[i].type, c[i].bits, IHSM_USAGE_SIGN);
        assert_int_equal(EVP_PKEY_get_group_name(pub, name, sizeof(name), NULL), 1);
        assert_string_equal(name, c[i].group);
        sign_and_verify(k, pub, IHSM_SIG_ECDSA, IHSM_MD_SHA256, 0, 0);
        sign_and_verify(k, pub, IHSM_SIG_ECDSA, IHSM_MD_SHA384, 0, 0);
        sign_and_verify(k, pub, IHSM_SIG_ECDSA, IHSM_MD_SHA512, 0, 0);
        EVP_PKEY_free(pub);
        ihsm_key_free(k);
    }
}

static void test_ed25519(void **state)
{
    ihsm_key *k = gen(IHSM_KEY_ED25519, 0, 0);
    EVP_PKEY *pub = public_of(k);
    op_out o;

    (void)state;
    check_attrs(k, IHSM_KEY_ED25519, 256, IHSM_USAGE_SIGN);
    assert_true(EVP_PKEY_is_a(pub, "ED25519"));
    sign_and_verify(k, pub, IHSM_SIG_ED25519, IHSM_MD_NONE, 0, 0);
    /* the empty message is a message too */
    o = do_sign(k, IHSM_SIG_ED25519, IHSM_MD_NONE, 0, 0, "", 0);
    assert_int_equal(o.st, IHSM_OK);
    assert_int_equal(o.len, 64);
    assert_true(client_verify(pub, IHSM_SIG_ED25519, 0, 0, 0, "", 0, o.p, o.len));
    op_out_free(&o);
    /* Ed25519ph / a digest is not offered */
    o = do_sign(k, IHSM_SIG_ED25519, IHSM_MD_SHA512, 0, 0, "x", 1);
    assert_int_equal(o.st, IHSM_ERR_UNSUPPORTED);
    EVP_PKEY_free(pub);
    ihsm_key_free(k);
}

/* X25519 and EC derive keys: the device's secret equals the client's. */
static void derive_matches_client(uint32_t type, const char *client_alg, const char *group)
{
    ihsm_key *k = gen(type, 0, IHSM_USAGE_DERIVE);
    EVP_PKEY *pub = public_of(k);
    EVP_PKEY *eph = group != NULL ? EVP_PKEY_Q_keygen(NULL, NULL, client_alg, group)
                                  : EVP_PKEY_Q_keygen(NULL, NULL, client_alg);
    uint8_t raw[133], want[64];
    size_t rawlen, wantlen;
    op_out o;

    assert_non_null(eph);
    rawlen = client_pub_raw(eph, raw, sizeof(raw));
    wantlen = client_derive(eph, pub, want, sizeof(want));
    o = do_derive(k, raw, rawlen);
    assert_int_equal(o.st, IHSM_OK);
    assert_int_equal(o.len, wantlen);
    assert_memory_equal(o.p, want, wantlen);
    op_out_free(&o);
    EVP_PKEY_free(eph);
    EVP_PKEY_free(pub);
    ihsm_key_free(k);
}

static void test_derive_keys(void **state)
{
    ihsm_key *x;

    (void)state;
    derive_matches_client(IHSM_KEY_X25519, "X25519", NULL);
    derive_matches_client(IHSM_KEY_EC_P256, "EC", "P-256");
    derive_matches_client(IHSM_KEY_EC_P384, "EC", "P-384");
    x = gen(IHSM_KEY_X25519, 256, 0);
    check_attrs(x, IHSM_KEY_X25519, 256, IHSM_USAGE_DERIVE);
    ihsm_key_free(x);
}

static void test_aes(void **state)
{
    uint32_t sizes[] = {128, 256};

    (void)state;
    for (size_t i = 0; i < 2; i++) {
        ihsm_key *k = gen(IHSM_KEY_AES, sizes[i], 0);
        ihsm_wr w;
        op_out ct, pt;

        check_attrs(k, IHSM_KEY_AES, sizes[i], IHSM_USAGE_ENCRYPT | IHSM_USAGE_DECRYPT);
        ihsm_wr_init(&w);
        assert_int_equal(ihsm_key_write_public(k, &w), IHSM_OK);
        assert_int_equal(w.len, 4); /* an empty bytes field */
        assert_int_equal(w.p[0] | w.p[1] | w.p[2] | w.p[3], 0);
        ihsm_wr_free(&w);
        ct = do_aead(k, 1, IHSM_AEAD_AES_GCM, "123456789012", 12, "aad", 3, "secret", 6, 16);
        assert_int_equal(ct.st, IHSM_OK);
        assert_int_equal(ct.len, 22);
        pt = do_aead(k, 0, IHSM_AEAD_AES_GCM, "123456789012", 12, "aad", 3, ct.p, ct.len, 16);
        assert_int_equal(pt.st, IHSM_OK);
        assert_int_equal(pt.len, 6);
        assert_memory_equal(pt.p, "secret", 6);
        op_out_free(&ct);
        op_out_free(&pt);
        ihsm_key_free(k);
    }
}

/* Two AES keys never come out equal (the generator is not stuck). */
static void test_aes_keys_differ(void **state)
{
    ihsm_key *a = gen(IHSM_KEY_AES, 256, 0), *b = gen(IHSM_KEY_AES, 256, 0);
    op_out ca, cb;

    (void)state;
    ca = do_aead(a, 1, IHSM_AEAD_AES_GCM, "123456789012", 12, "", 0, "same", 4, 16);
    cb = do_aead(b, 1, IHSM_AEAD_AES_GCM, "123456789012", 12, "", 0, "same", 4, 16);
    assert_int_equal(ca.st, IHSM_OK);
    assert_int_equal(cb.st, IHSM_OK);
    assert_memory_not_equal(ca.p, cb.p, ca.len);
    op_out_free(&ca);
    op_out_free(&cb);
    ihsm_key_free(a);
    ihsm_key_free(b);
}

static void test_bad_params(void **state)
{
    uint8_t label[IHSM_MAX_LABEL + 1];
    ihsm_key *k = (ihsm_key *)&k; /* must be set to NULL on failure */

    (void)state;
    memset(label, 'a', sizeof(label));
    assert_int_equal(ihsm_key_generate(IHSM_KEY_RSA, 1024, 0, NULL, 0, &k),
                     IHSM_ERR_UNSUPPORTED);
    assert_null(k);
    assert_int_equal(ihsm_key_generate(IHSM_KEY_RSA, 0, 0, NULL, 0, &k),
                     IHSM_ERR_UNSUPPORTED);
    assert_int_equal(ihsm_key_generate(IHSM_KEY_AES, 192, 0, NULL, 0, &k),
                     IHSM_ERR_UNSUPPORTED);
    assert_int_equal(ihsm_key_generate(IHSM_KEY_EC_P256, 384, 0, NULL, 0, &k),
                     IHSM_ERR_UNSUPPORTED);
    assert_int_equal(ihsm_key_generate(99, 256, 0, NULL, 0, &k), IHSM_ERR_UNSUPPORTED);
    assert_int_equal(ihsm_key_generate(0, 256, 0, NULL, 0, &k), IHSM_ERR_UNSUPPORTED);
    /* usage a type cannot have */
    assert_int_equal(ihsm_key_generate(IHSM_KEY_X25519, 0, IHSM_USAGE_SIGN, NULL, 0, &k),
                     IHSM_ERR_BAD_INPUT);
    assert_int_equal(ihsm_key_generate(IHSM_KEY_ED25519, 0, IHSM_USAGE_DERIVE, NULL, 0, &k),
                     IHSM_ERR_BAD_INPUT);
    assert_int_equal(ihsm_key_generate(IHSM_KEY_AES, 256, IHSM_USAGE_SIGN, NULL, 0, &k),
                     IHSM_ERR_BAD_INPUT);
    assert_int_equal(ihsm_key_generate(IHSM_KEY_EC_P256, 0, 0x10, NULL, 0, &k),
                     IHSM_ERR_BAD_INPUT);
    /* labels: IHSM_MAX_LABEL fits, one more does not */
    assert_int_equal(ihsm_key_generate(IHSM_KEY_EC_P256, 0, 0, label, sizeof(label), &k),
                     IHSM_ERR_BAD_INPUT);
    assert_int_equal(ihsm_key_generate(IHSM_KEY_EC_P256, 0, 0, label, IHSM_MAX_LABEL, &k),
                     IHSM_OK);
    ihsm_key_free(k);
    ihsm_key_free(NULL);
}

static void test_usage_enforced(void **state)
{
    ihsm_key *ec_sign = gen(IHSM_KEY_EC_P256, 0, IHSM_USAGE_SIGN);
    ihsm_key *ec_derive = gen(IHSM_KEY_EC_P256, 0, IHSM_USAGE_DERIVE);
    ihsm_key *ec_both = gen(IHSM_KEY_EC_P256, 0, IHSM_USAGE_SIGN | IHSM_USAGE_DERIVE);
    ihsm_key *x = gen(IHSM_KEY_X25519, 0, 0);
    ihsm_key *ed = gen(IHSM_KEY_ED25519, 0, 0);
    ihsm_key *aes_enc = gen(IHSM_KEY_AES, 256, IHSM_USAGE_ENCRYPT);
    ihsm_key *aes_dec = gen(IHSM_KEY_AES, 256, IHSM_USAGE_DECRYPT);
    EVP_PKEY *eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    uint8_t d[32] = {1}, pt[65], xpub[32];
    size_t ptlen = client_pub_raw(eph, pt, sizeof(pt));
    op_out o;

    (void)state;
    memset(xpub, 9, sizeof(xpub)); /* the base point: a valid X25519 peer */
    o = do_derive(ec_sign, pt, ptlen);
    assert_int_equal(o.st, IHSM_ERR_USAGE);
    o = do_sign(ec_derive, IHSM_SIG_ECDSA, IHSM_MD_SHA256, 0, 0, d, 32);
    assert_int_equal(o.st, IHSM_ERR_USAGE);
    o = do_sign(ec_both, IHSM_SIG_ECDSA, IHSM_MD_SHA256, 0, 0, d, 32);
    assert_int_equal(o.st, IHSM_OK);
    op_out_free(&o);
    o = do_derive(ec_both, pt, ptlen);
    assert_int_equal(o.st, IHSM_OK);
    op_out_free(&o);
    o = do_sign(x, IHSM_SIG_ED25519, IHSM_MD_NONE, 0, 0, d, 32);
    assert_int_equal(o.st, IHSM_ERR_USAGE);
    o = do_derive(ed, xpub, 32);
    assert_int_equal(o.st, IHSM_ERR_USAGE);
    o = do_derive(rsa2048, xpub, 32);
    assert_int_equal(o.st, IHSM_ERR_USAGE);
    o = do_aead(ed, 1, IHSM_AEAD_AES_GCM, "123456789012", 12, "", 0, "x", 1, 16);
    assert_int_equal(o.st, IHSM_ERR_USAGE);
    o = do_sign(aes_enc, IHSM_SIG_ECDSA, IHSM_MD_SHA256, 0, 0, d, 32);
    assert_int_equal(o.st, IHSM_ERR_USAGE);

    /* encrypt-only seals but cannot open; decrypt-only the other way */
    o = do_aead(aes_enc, 1, IHSM_AEAD_AES_GCM, "123456789012", 12, "", 0, "x", 1, 16);
    assert_int_equal(o.st, IHSM_OK);
    {
        op_out back = do_aead(aes_enc, 0, IHSM_AEAD_AES_GCM, "123456789012", 12, "", 0,
                              o.p, o.len, 16);
        assert_int_equal(back.st, IHSM_ERR_USAGE);
    }
    op_out_free(&o);
    o = do_aead(aes_dec, 1, IHSM_AEAD_AES_GCM, "123456789012", 12, "", 0, "x", 1, 16);
    assert_int_equal(o.st, IHSM_ERR_USAGE);

    /* the right usage, the wrong scheme for the key */
    o = do_sign(rsa2048, IHSM_SIG_ECDSA, IHSM_MD_SHA256, 0, 0, d, 32);
    assert_int_equal(o.st, IHSM_ERR_UNSUPPORTED);
    o = do_sign(ec_sign, IHSM_SIG_RSA_PKCS1, IHSM_MD_SHA256, 0, 0, d, 32);
    assert_int_equal(o.st, IHSM_ERR_UNSUPPORTED);
    o = do_sign(ed, IHSM_SIG_ECDSA, IHSM_MD_SHA256, 0, 0, d, 32);
    assert_int_equal(o.st, IHSM_ERR_UNSUPPORTED);
    o = do_sign(ec_sign, 7, IHSM_MD_SHA256, 0, 0, d, 32);
    assert_int_equal(o.st, IHSM_ERR_UNSUPPORTED);

    EVP_PKEY_free(eph);
    ihsm_key_free(ec_sign);
    ihsm_key_free(ec_derive);
    ihsm_key_free(ec_both);
    ihsm_key_free(x);
    ihsm_key_free(ed);
    ihsm_key_free(aes_enc);
    ihsm_key_free(aes_dec);
}

static void test_sign_bad_input(void **state)
{
    ihsm_key *ec = gen(IHSM_KEY_EC_P256, 0, 0);
    uint8_t d[64] = {0}, big[300];
    ihsm_wr a, out;
    ihsm_rd r;
    op_out o;

    (void)state;
    memset(big, 0x5a, sizeof(big));
    /* digest length must match md */
    o = do_sign(rsa2048, IHSM_SIG_RSA_PKCS1, IHSM_MD_SHA256, 0, 0, d, 31);
    assert_int_equal(o.st, IHSM_ERR_BAD_INPUT);
    o = do_sign(rsa2048, IHSM_SIG_RSA_PSS, IHSM_MD_SHA384, 0, IHSM_PSS_SALT_DIGEST, d, 32);
    assert_int_equal(o.st, IHSM_ERR_BAD_INPUT);
    o = do_sign(ec, IHSM_SIG_ECDSA, IHSM_MD_SHA256, 0, 0, d, 20);
    assert_int_equal(o.st, IHSM_ERR_BAD_INPUT);
    /* raw PKCS#1 block too long for the modulus; empty */
    o = do_sign(rsa2048, IHSM_SIG_RSA_PKCS1, IHSM_MD_NONE, 0, 0, big, 246);
    assert_int_equal(o.st, IHSM_ERR_BAD_INPUT);
    o = do_sign(rsa2048, IHSM_SIG_RSA_PKCS1, IHSM_MD_NONE, 0, 0, big, 0);
    assert_int_equal(o.st, IHSM_ERR_BAD_INPUT);
    o = do_sign(rsa2048, IHSM_SIG_RSA_PKCS1, IHSM_MD_NONE, 0, 0, big, 245);
    assert_int_equal(o.st, IHSM_OK);
    op_out_free(&o);
    /* PSS: salt too long, bad specials, no digest */
    o = do_sign(rsa2048, IHSM_SIG_RSA_PSS, IHSM_MD_SHA256, 0, 223, d, 32);
    assert_int_equal(o.st, IHSM_ERR_BAD_INPUT);
    o = do_sign(rsa2048, IHSM_SIG_RSA_PSS, IHSM_MD_SHA256, 0, -3, d, 32);
    assert_int_equal(o.st, IHSM_ERR_BAD_INPUT);
    o = do_sign(rsa2048, IHSM_SIG_RSA_PSS, IHSM_MD_NONE, 0, 0, d, 32);
    assert_int_equal(o.st, IHSM_ERR_BAD_INPUT);
    /* unknown digests */
    o = do_sign(rsa2048, IHSM_SIG_RSA_PKCS1, 9, 0, 0, d, 32);
    assert_int_equal(o.st, IHSM_ERR_UNSUPPORTED);
    o = do_sign(rsa2048, IHSM_SIG_RSA_PSS, IHSM_MD_SHA256, 9, 0, d, 32);
    assert_int_equal(o.st, IHSM_ERR_UNSUPPORTED);
    /* ECDSA without md: any digest length 1..64 */
    o = do_sign(ec, IHSM_SIG_ECDSA, IHSM_MD_NONE, 0, 0, big, 65);
    assert_int_equal(o.st, IHSM_ERR_BAD_INPUT);
    o = do_sign(ec, IHSM_SIG_ECDSA, IHSM_MD_NONE, 0, 0, d, 48);
    assert_int_equal(o.st, IHSM_OK);
    op_out_free(&o);

    /* a payload with a byte left over, or a field short, is MALFORMED */
    ihsm_wr_init(&a);
    ihsm_wr_init(&out);
    ihsm_wr_u32(&a, IHSM_SIG_ECDSA);
    ihsm_wr_u32(&a, IHSM_MD_SHA256);
    ihsm_wr_u32(&a, 0);
    ihsm_wr_u32(&a, 0);
    ihsm_wr_bytes(&a, d, 32);
    ihsm_wr_raw(&a, "x", 1);
    ihsm_rd_init(&r, a.p, a.len);
    assert_int_equal(ihsm_op_sign(ec, &r, &out), IHSM_ERR_MALFORMED);
    ihsm_rd_init(&r, a.p, a.len - 2);
    assert_int_equal(ihsm_op_sign(ec, &r, &out), IHSM_ERR_MALFORMED);
    assert_int_equal(out.len, 0);
    ihsm_wr_free(&a);
    ihsm_wr_free(&out);
    ihsm_key_free(ec);
    assert_int_equal(ihsm_crypto_failed(), 0);
}

/* Private key material lives in OpenSSL's secure heap, and freeing a key
 * gives all of it back. */
static void test_secure_heap(void **state)
{
    static const struct {
        uint32_t type, bits;
    } c[] = {{IHSM_KEY_RSA, 2048}, {IHSM_KEY_EC_P256, 0}, {IHSM_KEY_ED25519, 0},
             {IHSM_KEY_X25519, 0}, {IHSM_KEY_AES, 256}};

    (void)state;
    assert_int_equal(CRYPTO_secure_malloc_initialized(), 1);
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        size_t before = CRYPTO_secure_used();
        ihsm_key *k = gen(c[i].type, c[i].bits, 0);

        if (CRYPTO_secure_used() <= before)
            fail_msg("key type %u: nothing in the secure heap", c[i].type);
        ihsm_key_free(k);
        assert_int_equal(CRYPTO_secure_used(), before);
    }
}

/* A full secure heap refuses new keys with LIMIT_KEYS and never fails the
 * device; freeing keys makes room again. */
static void test_secure_heap_full(void **state)
{
    enum { MAX_KEYS = 200000 }; /* 4 MiB / 64-byte blocks, with margin */
    ihsm_key **keys = calloc(MAX_KEYS, sizeof(*keys));
    size_t n = 0;
    int st = IHSM_OK;
    ihsm_key *k = NULL;

    (void)state;
    assert_non_null(keys);
    while (n < MAX_KEYS
           && (st = ihsm_key_generate(IHSM_KEY_AES, 256, 0, NULL, 0, &keys[n])) == IHSM_OK)
        n++;
    assert_int_equal(st, IHSM_ERR_LIMIT_KEYS);
    assert_true(n > 1000);
    assert_int_equal(ihsm_key_generate(IHSM_KEY_EC_P256, 0, 0, NULL, 0, &k),
                     IHSM_ERR_LIMIT_KEYS);
    assert_null(k);
    assert_int_equal(ihsm_crypto_failed(), 0);
    /* operations on existing keys still work at the limit */
    {
        op_out o = do_sign(rsa2048, IHSM_SIG_RSA_PKCS1, IHSM_MD_SHA256, 0, 0,
                           "0123456789abcdef0123456789abcdef", 32);
        assert_int_equal(o.st, IHSM_OK);
        op_out_free(&o);
    }
    for (size_t i = 0; i < n; i++)
        ihsm_key_free(keys[i]);
    free(keys);
    k = gen(IHSM_KEY_EC_P256, 0, 0);
    ihsm_key_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rsa_2048_schemes),
        cmocka_unit_test(test_rsa_pkcs1_raw_digestinfo),
        cmocka_unit_test(test_rsa_3072_4096),
        cmocka_unit_test(test_ec),
        cmocka_unit_test(test_ed25519),
        cmocka_unit_test(test_derive_keys),
        cmocka_unit_test(test_aes),
        cmocka_unit_test(test_aes_keys_differ),
        cmocka_unit_test(test_bad_params),
        cmocka_unit_test(test_usage_enforced),
        cmocka_unit_test(test_sign_bad_input),
        cmocka_unit_test(test_secure_heap),
        cmocka_unit_test(test_secure_heap_full),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
