/*
 * Masked blobs: round trip for every key type, and every way of damaging a
 * blob (a flipped bit in any byte, truncation, extension, another partition,
 * another masking key, an authentic header that lies about the key inside)
 * answers IHSM_ERR_BAD_BLOB.
 */
#include "crypto_test_util.h"

#include <openssl/kdf.h>
#include <openssl/rand.h>

static const uint8_t root[32] = "ihsm test device root secret 32";
static uint8_t part_a[16] = "partition-a-id!", part_b[16] = "partition-b-id!";
static uint8_t mk_a[32], mk_b[32];

static int setup(void **state)
{
    (void)state;
    crypto_up();
    assert_int_equal(ihsm_derive_mask_key(root, part_a, mk_a), IHSM_OK);
    assert_int_equal(ihsm_derive_mask_key(root, part_b, mk_b), IHSM_OK);
    return 0;
}

static void mask(const ihsm_key *k, const uint8_t *mk, const uint8_t *part, ihsm_wr *w)
{
    ihsm_wr_init(w);
    assert_int_equal(ihsm_key_mask(k, mk, part, w), IHSM_OK);
    assert_true(w->len > 34 + 12 + 16);
}

static int unmask(const uint8_t *blob, size_t len, const uint8_t *mk,
                  const uint8_t *part, ihsm_key **out)
{
    *out = NULL;
    return ihsm_key_unmask(blob, len, mk, part, out);
}

static void spki(const ihsm_key *k, ihsm_wr *w)
{
    ihsm_wr_init(w);
    assert_int_equal(ihsm_key_write_public(k, w), IHSM_OK);
}

/* The unmasked key does what the original does. */
static void same_behaviour(const ihsm_key *a, const ihsm_key *b)
{
    static const uint8_t d[32] = "thirty-two bytes of digest here";
    op_out x, y;

    switch (ihsm_key_type(a)) {
    case IHSM_KEY_RSA: /* deterministic: identical signatures */
        x = do_sign(a, IHSM_SIG_RSA_PKCS1, IHSM_MD_SHA256, 0, 0, d, 32);
        y = do_sign(b, IHSM_SIG_RSA_PKCS1, IHSM_MD_SHA256, 0, 0, d, 32);
        break;
    case IHSM_KEY_ED25519:
        x = do_sign(a, IHSM_SIG_ED25519, IHSM_MD_NONE, 0, 0, d, 32);
        y = do_sign(b, IHSM_SIG_ED25519, IHSM_MD_NONE, 0, 0, d, 32);
        break;
    case IHSM_KEY_EC_P256:
    case IHSM_KEY_EC_P384: { /* randomized: b's signature verifies under a's key */
        EVP_PKEY *pub = public_of(a);

        y = do_sign(b, IHSM_SIG_ECDSA, IHSM_MD_SHA256, 0, 0, d, 32);
        assert_int_equal(y.st, IHSM_OK);
        assert_true(client_verify(pub, IHSM_SIG_ECDSA, IHSM_MD_SHA256, 0, 0, d, 32,
                                  y.p, y.len));
        EVP_PKEY_free(pub);
        op_out_free(&y);
        return;
    }
    case IHSM_KEY_X25519: {
        uint8_t base[32] = {9};
        x = do_derive(a, base, 32);
        y = do_derive(b, base, 32);
        break;
    }
    default: { /* AES: b opens what a sealed */
        x = do_aead(a, 1, IHSM_AEAD_AES_GCM, "123456789012", 12, "", 0, "plain", 5, 16);
        assert_int_equal(x.st, IHSM_OK);
        y = do_aead(b, 0, IHSM_AEAD_AES_GCM, "123456789012", 12, "", 0, x.p, x.len, 16);
        assert_int_equal(y.st, IHSM_OK);
        assert_int_equal(y.len, 5);
        assert_memory_equal(y.p, "plain", 5);
        op_out_free(&x);
        op_out_free(&y);
        return;
    }
    }
    assert_int_equal(x.st, IHSM_OK);
    assert_int_equal(y.st, IHSM_OK);
    assert_int_equal(x.len, y.len);
    assert_memory_equal(x.p, y.p, x.len);
    op_out_free(&x);
    op_out_free(&y);
}

static void test_round_trip_every_type(void **state)
{
    static const struct {
        uint32_t type, bits, usage;
    } c[] = {
        {IHSM_KEY_RSA, 2048, 0},
        {IHSM_KEY_EC_P256, 0, IHSM_USAGE_SIGN | IHSM_USAGE_DERIVE},
        {IHSM_KEY_EC_P384, 0, 0},
        {IHSM_KEY_ED25519, 0, 0},
        {IHSM_KEY_X25519, 0, 0},
        {IHSM_KEY_AES, 128, 0},
        {IHSM_KEY_AES, 256, IHSM_USAGE_ENCRYPT | IHSM_USAGE_DECRYPT},
    };

    (void)state;
    /* twice: OpenSSL keeps some per-curve state after first use, so the
     * secure heap accounting is checked on the second pass */
    for (size_t pass = 0, i = 0; pass < 2; i = (i + 1) % (sizeof(c) / sizeof(c[0])),
                pass += i == 0) {
        ihsm_key *k = NULL, *u;
        ihsm_wr blob, blob2, p1, p2;
        const uint8_t *l1, *l2;
        size_t n1, n2, base = CRYPTO_secure_used();

        assert_int_equal(ihsm_key_generate(c[i].type, c[i].bits, c[i].usage,
                                           (const uint8_t *)"web-key", 7, &k), IHSM_OK);
        mask(k, mk_a, part_a, &blob);
        assert_memory_equal(blob.p, "IHMK", 4);
        size_t before = CRYPTO_secure_used();
        assert_int_equal(unmask(blob.p, blob.len, mk_a, part_a, &u), IHSM_OK);
        /* the unmasked private key is in the secure heap too */
        if (CRYPTO_secure_used() <= before)
            fail_msg("unmasked key type %u: nothing in the secure heap", c[i].type);
        assert_int_equal(ihsm_key_type(u), ihsm_key_type(k));
        assert_int_equal(ihsm_key_bits(u), ihsm_key_bits(k));
        assert_int_equal(ihsm_key_usage(u), ihsm_key_usage(k));
        l1 = ihsm_key_label(k, &n1);
        l2 = ihsm_key_label(u, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(l1, l2, n1);
        spki(k, &p1);
        spki(u, &p2);
        assert_int_equal(p1.len, p2.len);
        assert_memory_equal(p1.p, p2.p, p1.len);
        same_behaviour(k, u);

        /* a fresh IV every time: masking twice never gives the same blob */
        mask(k, mk_a, part_a, &blob2);
        assert_int_equal(blob.len, blob2.len);
        assert_memory_not_equal(blob.p, blob2.p, blob.len);

        ihsm_wr_free(&blob);
        ihsm_wr_free(&blob2);
        ihsm_wr_free(&p1);
        ihsm_wr_free(&p2);
        ihsm_key_free(u);
        ihsm_key_free(k);
        /* both keys gave back every byte (k's caches included) */
        if (pass == 1 && CRYPTO_secure_used() != base)
            fail_msg("type %u: secure heap %zu, was %zu", c[i].type, CRYPTO_secure_used(), base);
    }
}

/* Flip one bit in every byte: header, label, partition id, IV, ciphertext,
 * tag. Cut it at every length. Add a byte. */
static void tamper_everywhere(uint32_t type, uint32_t bits)
{
    ihsm_key *k = NULL, *u;
    ihsm_wr blob;
    uint8_t *copy;

    assert_int_equal(ihsm_key_generate(type, bits, 0, (const uint8_t *)"label", 5, &k),
                     IHSM_OK);
    mask(k, mk_a, part_a, &blob);
    copy = malloc(blob.len + 1);
    assert_non_null(copy);
    for (size_t i = 0; i < blob.len; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            memcpy(copy, blob.p, blob.len);
            copy[i] ^= (uint8_t)(1u << bit);
            assert_int_equal(unmask(copy, blob.len, mk_a, part_a, &u), IHSM_ERR_BAD_BLOB);
            assert_null(u);
        }
    }
    for (size_t n = 0; n < blob.len; n++)
        assert_int_equal(unmask(blob.p, n, mk_a, part_a, &u), IHSM_ERR_BAD_BLOB);
    memcpy(copy, blob.p, blob.len);
    copy[blob.len] = 0;
    assert_int_equal(unmask(copy, blob.len + 1, mk_a, part_a, &u), IHSM_ERR_BAD_BLOB);
    assert_int_equal(unmask(NULL, 0, mk_a, part_a, &u), IHSM_ERR_BAD_BLOB);
    /* and the untouched blob still unmasks */
    assert_int_equal(unmask(blob.p, blob.len, mk_a, part_a, &u), IHSM_OK);
    ihsm_key_free(u);
    free(copy);
    ihsm_wr_free(&blob);
    ihsm_key_free(k);
}

static void test_tamper_ec(void **state)
{
    (void)state;
    tamper_everywhere(IHSM_KEY_EC_P256, 0);
}

static void test_tamper_aes(void **state)
{
    (void)state;
    tamper_everywhere(IHSM_KEY_AES, 256);
}

static void test_other_partition(void **state)
{
    ihsm_key *k = gen(IHSM_KEY_ED25519, 0, 0), *u;
    ihsm_wr blob;
    uint8_t wrong_mk[32];

    (void)state;
    mask(k, mk_a, part_a, &blob);
    /* partition B with its own masking key */
    assert_int_equal(unmask(blob.p, blob.len, mk_b, part_b, &u), IHSM_ERR_BAD_BLOB);
    /* partition B's id with A's masking key: the id is bound too */
    assert_int_equal(unmask(blob.p, blob.len, mk_a, part_b, &u), IHSM_ERR_BAD_BLOB);
    /* A's id, the wrong masking key */
    assert_int_equal(unmask(blob.p, blob.len, mk_b, part_a, &u), IHSM_ERR_BAD_BLOB);
    /* the partition id rewritten in the blob itself */
    memcpy(blob.p + 18 + 1, part_b, 16);
    assert_int_equal(unmask(blob.p, blob.len, mk_a, part_b, &u), IHSM_ERR_BAD_BLOB);
    memcpy(wrong_mk, mk_a, 32);
    wrong_mk[31] ^= 1;
    memcpy(blob.p + 18 + 1, part_a, 16);
    assert_int_equal(unmask(blob.p, blob.len, wrong_mk, part_a, &u), IHSM_ERR_BAD_BLOB);
    assert_int_equal(unmask(blob.p, blob.len, mk_a, part_a, &u), IHSM_OK);
    ihsm_key_free(u);
    ihsm_wr_free(&blob);
    ihsm_key_free(k);
}

/* Re-seal a blob's content under a rewritten header with the right masking
 * key: authentic, but the header lies about the key inside. */
static void reseal(const ihsm_wr *blob, uint16_t type, uint32_t bits, ihsm_wr *out)
{
    size_t hdr = 34 + (blob->p[16] | (blob->p[17] << 8));
    size_t ct_len = blob->len - hdr - 12 - 16;
    uint8_t *pt = malloc(ct_len), *h = malloc(hdr);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n;

    memcpy(h, blob->p, hdr);
    assert_int_equal(EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, mk_a, blob->p + hdr), 1);
    assert_int_equal(EVP_DecryptUpdate(c, NULL, &n, h, (int)hdr), 1);
    assert_int_equal(EVP_DecryptUpdate(c, pt, &n, blob->p + hdr + 12, (int)ct_len), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16,
                                         blob->p + hdr + 12 + ct_len), 1);
    assert_int_equal(EVP_DecryptFinal_ex(c, pt + n, &n), 1);

    h[6] = (uint8_t)type;
    h[7] = (uint8_t)(type >> 8);
    for (int i = 0; i < 4; i++)
        h[8 + i] = (uint8_t)(bits >> (8 * i));
    ihsm_wr_init(out);
    ihsm_wr_raw(out, h, hdr);
    ihsm_wr_raw(out, blob->p + hdr, 12);
    uint8_t *dst = ihsm_wr_reserve(out, ct_len + 16);
    assert_non_null(dst);
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, mk_a, blob->p + hdr), 1);
    assert_int_equal(EVP_EncryptUpdate(c, NULL, &n, h, (int)hdr), 1);
    assert_int_equal(EVP_EncryptUpdate(c, dst, &n, pt, (int)ct_len), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c, dst + n, &n), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, dst + ct_len), 1);
    EVP_CIPHER_CTX_free(c);
    OPENSSL_clear_free(pt, ct_len);
    free(h);
}

static void test_header_must_match_key(void **state)
{
    ihsm_key *ec = gen(IHSM_KEY_EC_P256, 0, 0), *aes = gen(IHSM_KEY_AES, 128, 0), *u;
    ihsm_wr b1, b2, forged;

    (void)state;
    mask(ec, mk_a, part_a, &b1);
    mask(aes, mk_a, part_a, &b2);
    /* control: resealing unchanged works, so the forgeries fail for the lie */
    reseal(&b1, IHSM_KEY_EC_P256, 256, &forged);
    assert_int_equal(unmask(forged.p, forged.len, mk_a, part_a, &u), IHSM_OK);
    ihsm_key_free(u);
    ihsm_wr_free(&forged);

    reseal(&b1, IHSM_KEY_EC_P384, 384, &forged);
    assert_int_equal(unmask(forged.p, forged.len, mk_a, part_a, &u), IHSM_ERR_BAD_BLOB);
    ihsm_wr_free(&forged);
    reseal(&b1, IHSM_KEY_RSA, 2048, &forged);
    assert_int_equal(unmask(forged.p, forged.len, mk_a, part_a, &u), IHSM_ERR_BAD_BLOB);
    ihsm_wr_free(&forged);
    reseal(&b1, IHSM_KEY_ED25519, 256, &forged);
    assert_int_equal(unmask(forged.p, forged.len, mk_a, part_a, &u), IHSM_ERR_BAD_BLOB);
    ihsm_wr_free(&forged);
    reseal(&b2, IHSM_KEY_AES, 256, &forged); /* 16 key bytes said to be 256 bits */
    assert_int_equal(unmask(forged.p, forged.len, mk_a, part_a, &u), IHSM_ERR_BAD_BLOB);
    ihsm_wr_free(&forged);
    reseal(&b2, 42, 128, &forged);
    assert_int_equal(unmask(forged.p, forged.len, mk_a, part_a, &u), IHSM_ERR_BAD_BLOB);
    ihsm_wr_free(&forged);

    ihsm_wr_free(&b1);
    ihsm_wr_free(&b2);
    ihsm_key_free(ec);
    ihsm_key_free(aes);
}

/* The masking key is HKDF-SHA256(root, salt = partition id, info). */
static void test_mask_key_derivation(void **state)
{
    static const char info[] = "ihsm partition mask v1";
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    uint8_t want[32], got[32];
    size_t len = sizeof(want);

    (void)state;
    assert_int_equal(EVP_PKEY_derive_init(c), 1);
    assert_int_equal(EVP_PKEY_CTX_set_hkdf_md(c, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_CTX_set1_hkdf_key(c, root, 32), 1);
    assert_int_equal(EVP_PKEY_CTX_set1_hkdf_salt(c, part_a, 16), 1);
    assert_int_equal(EVP_PKEY_CTX_add1_hkdf_info(c, (const uint8_t *)info, strlen(info)), 1);
    assert_int_equal(EVP_PKEY_derive(c, want, &len), 1);
    EVP_PKEY_CTX_free(c);
    assert_int_equal(ihsm_derive_mask_key(root, part_a, got), IHSM_OK);
    assert_memory_equal(got, want, 32);
    assert_memory_equal(mk_a, want, 32);
    assert_memory_not_equal(mk_a, mk_b, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_type),
        cmocka_unit_test(test_tamper_ec),
        cmocka_unit_test(test_tamper_aes),
        cmocka_unit_test(test_other_partition),
        cmocka_unit_test(test_header_must_match_key),
        cmocka_unit_test(test_mask_key_derivation),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
