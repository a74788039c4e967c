/*
 * DERIVE peer validation, AEAD parameters and tag failures, RANDOM, and the
 * PIN hash.
 */
#include "crypto_test_util.h"

#include <pthread.h>
#include <openssl/rand.h>

static ihsm_key *p256, *p384, *x25519, *aes128, *aes256;

static int setup(void **state)
{
    (void)state;
    crypto_up();
    p256 = gen(IHSM_KEY_EC_P256, 0, IHSM_USAGE_DERIVE);
    p384 = gen(IHSM_KEY_EC_P384, 0, IHSM_USAGE_DERIVE);
    x25519 = gen(IHSM_KEY_X25519, 0, 0);
    aes128 = gen(IHSM_KEY_AES, 128, 0);
    aes256 = gen(IHSM_KEY_AES, 256, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ihsm_key_free(p256);
    ihsm_key_free(p384);
    ihsm_key_free(x25519);
    ihsm_key_free(aes128);
    ihsm_key_free(aes256);
    return 0;
}

static void expect_derive(const ihsm_key *k, const uint8_t *peer, size_t len, int st)
{
    op_out o = do_derive(k, peer, len);

    assert_int_equal(o.st, st);
    op_out_free(&o);
}

static void test_ec_peers(void **state)
{
    EVP_PKEY *e256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *e384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    uint8_t pt[97], bad[97], cpt[33];
    size_t len = client_pub_raw(e256, pt, sizeof(pt));
    size_t len384 = client_pub_raw(e384, bad, sizeof(bad));
    size_t clen = sizeof(cpt);

    (void)state;
    assert_int_equal(len, 65);
    assert_int_equal(len384, 97);
    expect_derive(p256, pt, len, IHSM_OK);
    /* another curve's point, for each key */
    expect_derive(p256, bad, len384, IHSM_ERR_BAD_INPUT);
    expect_derive(p384, pt, len, IHSM_ERR_BAD_INPUT);
    expect_derive(p384, bad, len384, IHSM_OK);
    /* wrong lengths */
    expect_derive(p256, pt, 64, IHSM_ERR_BAD_INPUT);
    expect_derive(p256, pt, 0, IHSM_ERR_BAD_INPUT);
    /* the point at infinity, in its one-byte form and as zeros */
    bad[0] = 0x00;
    expect_derive(p256, bad, 1, IHSM_ERR_BAD_INPUT);
    memset(bad, 0, 65);
    expect_derive(p256, bad, 65, IHSM_ERR_BAD_INPUT);
    bad[0] = 0x04;
    expect_derive(p256, bad, 65, IHSM_ERR_BAD_INPUT);
    /* wrong prefix: the right X and Y marked compressed or hybrid */
    memcpy(bad, pt, 65);
    bad[0] = 0x02;
    expect_derive(p256, bad, 65, IHSM_ERR_BAD_INPUT);
    bad[0] = 0x06;
    expect_derive(p256, bad, 65, IHSM_ERR_BAD_INPUT);
    /* a compressed point (33 bytes) is not the wire form */
    assert_int_equal(EVP_PKEY_set_utf8_string_param(e256,
                         OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "compressed"), 1);
    assert_int_equal(EVP_PKEY_get_octet_string_param(e256, OSSL_PKEY_PARAM_PUB_KEY, cpt,
                                                     sizeof(cpt), &clen), 1);
    assert_int_equal(clen, 33);
    expect_derive(p256, cpt, clen, IHSM_ERR_BAD_INPUT);
    /* off the curve: Y changed by one */
    memcpy(bad, pt, 65);
    bad[64] ^= 1;
    expect_derive(p256, bad, 65, IHSM_ERR_BAD_INPUT);
    /* coordinates not reduced: X = p, the field prime */
    {
        long n;
        unsigned char *p = OPENSSL_hexstr2buf(
            "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff", &n);

        assert_int_equal(n, 32);
        memcpy(bad + 1, p, 32);
        OPENSSL_free(p);
    }
    expect_derive(p256, bad, 65, IHSM_ERR_BAD_INPUT);
    assert_int_equal(ihsm_crypto_failed(), 0);
    EVP_PKEY_free(e256);
    EVP_PKEY_free(e384);
}

/* RFC 7748 section 6.1 leaves the check to the caller; these are the
 * small-order u-coordinates (and their non-canonical forms) that give an
 * all-zero secret. */
static void test_x25519_peers(void **state)
{
    static const char *small_order[] = {
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    };
    uint8_t peer[33];
    long n;

    (void)state;
    for (size_t i = 0; i < sizeof(small_order) / sizeof(small_order[0]); i++) {
        unsigned char *b = OPENSSL_hexstr2buf(small_order[i], &n);

        assert_int_equal(n, 32);
        expect_derive(x25519, b, 32, IHSM_ERR_BAD_INPUT);
        OPENSSL_free(b);
    }
    memset(peer, 9, sizeof(peer));
    peer[0] = 9;
    expect_derive(x25519, peer, 31, IHSM_ERR_BAD_INPUT);
    expect_derive(x25519, peer, 33, IHSM_ERR_BAD_INPUT);
    expect_derive(x25519, peer, 0, IHSM_ERR_BAD_INPUT);
    memset(peer, 0, sizeof(peer));
    peer[0] = 9; /* the base point is fine */
    expect_derive(x25519, peer, 32, IHSM_OK);
    assert_int_equal(ihsm_crypto_failed(), 0);
    assert_int_equal(ERR_peek_error(), 0);
}

static void seal_open(const ihsm_key *k, uint32_t alg, size_t iv_len, size_t tag_len,
                      size_t text_len)
{
    uint8_t iv[128], aad[40], text[1000];
    op_out ct, pt;

    assert_true(iv_len <= sizeof(iv) && text_len <= sizeof(text));
    RAND_bytes(iv, sizeof(iv));
    RAND_bytes(aad, sizeof(aad));
    RAND_bytes(text, sizeof(text));
    ct = do_aead(k, 1, alg, iv, iv_len, aad, sizeof(aad), text, text_len, (uint32_t)tag_len);
    assert_int_equal(ct.st, IHSM_OK);
    assert_int_equal(ct.len, text_len + tag_len);
    pt = do_aead(k, 0, alg, iv, iv_len, aad, sizeof(aad), ct.p, ct.len, (uint32_t)tag_len);
    assert_int_equal(pt.st, IHSM_OK);
    assert_int_equal(pt.len, text_len);
    if (text_len != 0)
        assert_memory_equal(pt.p, text, text_len);
    op_out_free(&pt);

    /* any flipped bit: tag, ciphertext, and a changed AAD or IV */
    for (size_t i = 0; i < ct.len; i += (i < text_len ? 97 : 1)) {
        ct.p[i] ^= 0x10;
        pt = do_aead(k, 0, alg, iv, iv_len, aad, sizeof(aad), ct.p, ct.len,
                     (uint32_t)tag_len);
        assert_int_equal(pt.st, IHSM_ERR_AEAD_TAG);
        ct.p[i] ^= 0x10;
    }
    aad[0] ^= 1;
    pt = do_aead(k, 0, alg, iv, iv_len, aad, sizeof(aad), ct.p, ct.len, (uint32_t)tag_len);
    assert_int_equal(pt.st, IHSM_ERR_AEAD_TAG);
    aad[0] ^= 1;
    iv[0] ^= 1;
    pt = do_aead(k, 0, alg, iv, iv_len, aad, sizeof(aad), ct.p, ct.len, (uint32_t)tag_len);
    assert_int_equal(pt.st, IHSM_ERR_AEAD_TAG);
    op_out_free(&ct);
}

static void test_aead_round_trips(void **state)
{
    (void)state;
    seal_open(aes128, IHSM_AEAD_AES_GCM, 12, 16, 100);
    seal_open(aes256, IHSM_AEAD_AES_GCM, 12, 16, 1000);
    seal_open(aes256, IHSM_AEAD_AES_GCM, 12, 16, 0);
    seal_open(aes256, IHSM_AEAD_AES_GCM, 1, 12, 33);
    seal_open(aes256, IHSM_AEAD_AES_GCM, 128, 13, 17);
    seal_open(aes128, IHSM_AEAD_AES_GCM, 16, 14, 5);
    seal_open(aes256, IHSM_AEAD_CHACHA20_POLY1305, 12, 16, 300);
    seal_open(aes256, IHSM_AEAD_CHACHA20_POLY1305, 12, 16, 0);
}

static void expect_aead(const ihsm_key *k, int seal, uint32_t alg, size_t iv_len,
                        size_t text_len, uint32_t tag_len, int st)
{
    static const uint8_t zero[256];
    op_out o = do_aead(k, seal, alg, zero, iv_len, "", 0, zero, text_len, tag_len);

    assert_int_equal(o.st, st);
    op_out_free(&o);
}

static void test_aead_bad_params(void **state)
{
    static const uint8_t big[200];

    (void)state;
    /* IV length */
    expect_aead(aes256, 1, IHSM_AEAD_AES_GCM, 0, 10, 16, IHSM_ERR_BAD_INPUT);
    expect_aead(aes256, 1, IHSM_AEAD_AES_GCM, 129, 10, 16, IHSM_ERR_BAD_INPUT);
    expect_aead(aes256, 1, IHSM_AEAD_CHACHA20_POLY1305, 8, 10, 16, IHSM_ERR_BAD_INPUT);
    expect_aead(aes256, 1, IHSM_AEAD_CHACHA20_POLY1305, 16, 10, 16, IHSM_ERR_BAD_INPUT);
    /* tag length */
    expect_aead(aes256, 1, IHSM_AEAD_AES_GCM, 12, 10, 0, IHSM_ERR_BAD_INPUT);
    expect_aead(aes256, 1, IHSM_AEAD_AES_GCM, 12, 10, 8, IHSM_ERR_BAD_INPUT);
    expect_aead(aes256, 1, IHSM_AEAD_AES_GCM, 12, 10, 11, IHSM_ERR_BAD_INPUT);
    expect_aead(aes256, 1, IHSM_AEAD_AES_GCM, 12, 10, 17, IHSM_ERR_BAD_INPUT);
    expect_aead(aes256, 1, IHSM_AEAD_AES_GCM, 12, 10, 0xffffffffu, IHSM_ERR_BAD_INPUT);
    expect_aead(aes256, 1, IHSM_AEAD_CHACHA20_POLY1305, 12, 10, 12, IHSM_ERR_BAD_INPUT);
    /* open: shorter than the tag; exactly the tag of nothing is only a tag */
    expect_aead(aes256, 0, IHSM_AEAD_AES_GCM, 12, 15, 16, IHSM_ERR_BAD_INPUT);
    expect_aead(aes256, 0, IHSM_AEAD_AES_GCM, 12, 16, 16, IHSM_ERR_AEAD_TAG);
    /* unknown algorithm; ChaCha20 needs a 256-bit key */
    expect_aead(aes256, 1, 3, 12, 10, 16, IHSM_ERR_UNSUPPORTED);
    expect_aead(aes256, 1, 0, 12, 10, 16, IHSM_ERR_UNSUPPORTED);
    expect_aead(aes128, 1, IHSM_AEAD_CHACHA20_POLY1305, 12, 10, 16, IHSM_ERR_UNSUPPORTED);
    /* an answer that cannot fit in a frame */
    {
        ihsm_wr a, out;
        ihsm_rd r;

        ihsm_wr_init(&a);
        a.limit = 2 * IHSM_MAX_FRAME;
        ihsm_wr_init(&out);
        out.limit = 100;
        ihsm_wr_u32(&a, IHSM_AEAD_AES_GCM);
        ihsm_wr_bytes(&a, big, 12);
        ihsm_wr_bytes(&a, "", 0);
        ihsm_wr_bytes(&a, big, sizeof(big));
        ihsm_wr_u32(&a, 16);
        ihsm_rd_init(&r, a.p, a.len);
        assert_int_equal(ihsm_op_aead(aes256, 1, &r, &out), IHSM_ERR_LIMIT_FRAME);
        ihsm_wr_free(&a);
        ihsm_wr_free(&out);
    }
    assert_int_equal(ERR_peek_error(), 0);
}

static op_out do_random(uint32_t n)
{
    ihsm_wr a, out;
    ihsm_rd r;
    int st;

    ihsm_wr_init(&a);
    ihsm_wr_init(&out);
    ihsm_wr_u32(&a, n);
    ihsm_rd_init(&r, a.p, a.len);
    st = ihsm_op_random(&r, &out);
    ihsm_wr_free(&a);
    return finish_op(st, &out);
}

static void test_random(void **state)
{
    static const uint8_t zero[64];
    uint32_t sizes[] = {1, 15, 16, 17, 33, 1000, 65536};
    op_out a, b;
    uint8_t buf[37];

    (void)state;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        a = do_random(sizes[i]);
        assert_int_equal(a.st, IHSM_OK);
        assert_int_equal(a.len, sizes[i]);
        op_out_free(&a);
    }
    a = do_random(64);
    b = do_random(64);
    assert_memory_not_equal(a.p, b.p, 64);
    assert_memory_not_equal(a.p, zero, 64);
    op_out_free(&a);
    op_out_free(&b);
    a = do_random(0);
    assert_int_equal(a.st, IHSM_ERR_BAD_INPUT);
    a = do_random(65537);
    assert_int_equal(a.st, IHSM_ERR_BAD_INPUT);
    a = do_random(0xffffffffu);
    assert_int_equal(a.st, IHSM_ERR_BAD_INPUT);
    {
        ihsm_wr out;
        ihsm_rd r;

        ihsm_wr_init(&out);
        ihsm_rd_init(&r, "\x01\x00\x00", 3);
        assert_int_equal(ihsm_op_random(&r, &out), IHSM_ERR_MALFORMED);
        ihsm_wr_free(&out);
    }
    memset(buf, 0, sizeof(buf));
    assert_int_equal(ihsm_random_bytes(buf, sizeof(buf)), IHSM_OK);
    assert_memory_not_equal(buf, zero, sizeof(buf));
    assert_int_equal(ihsm_crypto_failed(), 0);
}

static void test_pin_hash(void **state)
{
    static const uint8_t pin[32] = "0123456789abcdef0123456789abcdef";
    static const uint8_t salt[16] = "salt-salt-salt-";
    uint8_t got[32], want[32], other[32];

    (void)state;
    assert_int_equal(PKCS5_PBKDF2_HMAC((const char *)pin, sizeof(pin), salt, 16, 1000,
                                       EVP_sha256(), 32, want), 1);
    assert_int_equal(ihsm_pin_hash(pin, sizeof(pin), salt, 1000, got), IHSM_OK);
    assert_memory_equal(got, want, 32);
    assert_int_equal(ihsm_pin_hash(pin, sizeof(pin), salt, 1001, other), IHSM_OK);
    assert_memory_not_equal(got, other, 32);
    assert_int_equal(ihsm_pin_hash(pin, sizeof(pin), salt, 0, other), IHSM_ERR_BAD_INPUT);
}

/* The daemon runs crypto on worker threads with shared keys: concurrent
 * operations on one key, and the RNG health test's shared state. */
static ihsm_key *shared_ec;

static void *worker(void *arg)
{
    static const uint8_t d[32] = "concurrent digest, thirty-two b";
    uint8_t peer[32] = {9};
    long bad = 0;

    (void)arg;
    for (int i = 0; i < 150; i++) {
        op_out o = do_sign(shared_ec, IHSM_SIG_ECDSA, IHSM_MD_SHA256, 0, 0, d, 32);
        bad += o.st != IHSM_OK;
        op_out_free(&o);
        o = do_derive(x25519, peer, 32);
        bad += o.st != IHSM_OK;
        op_out_free(&o);
        o = do_aead(aes256, 1, IHSM_AEAD_AES_GCM, d, 12, "", 0, d, 32, 16);
        bad += o.st != IHSM_OK;
        op_out_free(&o);
        uint8_t buf[48];
        bad += ihsm_random_bytes(buf, sizeof(buf)) != IHSM_OK;
    }
    return (void *)bad;
}

static void test_threads(void **state)
{
    pthread_t t[4];
    EVP_PKEY *pub;

    (void)state;
    shared_ec = gen(IHSM_KEY_EC_P256, 0, 0);
    pub = public_of(shared_ec);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *bad;
        assert_int_equal(pthread_join(t[i], &bad), 0);
        assert_int_equal((long)bad, 0);
    }
    assert_int_equal(ihsm_crypto_failed(), 0);
    EVP_PKEY_free(pub);
    ihsm_key_free(shared_ec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ec_peers),
        cmocka_unit_test(test_x25519_peers),
        cmocka_unit_test(test_aead_round_trips),
        cmocka_unit_test(test_aead_bad_params),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_pin_hash),
        cmocka_unit_test(test_threads),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
