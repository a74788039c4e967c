/*
 * Key objects: parameters and usage rules per type, generation, the checks
 * that a decoded key is what its header or request says, PKCS#8 in and out
 * of secure memory, and the public key as SubjectPublicKeyInfo.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/encoder.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "crypto_internal.h"

/* What each type may do and does when the request says 0. RSA may decrypt
 * so the device's import key (RSA-OAEP) is an ordinary key object. */
static const struct type_rule {
    uint32_t type;
    const char *ossl_name; /* OpenSSL key type */
    const char *group;     /* EC curve */
    uint32_t bits;         /* fixed size, 0 = from the request */
    uint32_t natural;
    uint32_t allowed;
} type_rules[] = {
    {IHSM_KEY_RSA, "RSA", NULL, 0, IHSM_USAGE_SIGN,
     IHSM_USAGE_SIGN | IHSM_USAGE_ENCRYPT | IHSM_USAGE_DECRYPT},
    {IHSM_KEY_EC_P256, "EC", "P-256", 256, IHSM_USAGE_SIGN,
     IHSM_USAGE_SIGN | IHSM_USAGE_DERIVE},
    {IHSM_KEY_EC_P384, "EC", "P-384", 384, IHSM_USAGE_SIGN,
     IHSM_USAGE_SIGN | IHSM_USAGE_DERIVE},
    /* 25519 keys report 256: their size in bits, not the group order */
    {IHSM_KEY_ED25519, "ED25519", NULL, 256, IHSM_USAGE_SIGN, IHSM_USAGE_SIGN},
    {IHSM_KEY_X25519, "X25519", NULL, 256, IHSM_USAGE_DERIVE, IHSM_USAGE_DERIVE},
    {IHSM_KEY_AES, NULL, NULL, 0, IHSM_USAGE_ENCRYPT | IHSM_USAGE_DECRYPT,
     IHSM_USAGE_ENCRYPT | IHSM_USAGE_DECRYPT},
};

static const struct type_rule *rule_of(uint32_t type)
{
    for (size_t i = 0; i < sizeof(type_rules) / sizeof(type_rules[0]); i++)
        if (type_rules[i].type == type)
            return &type_rules[i];
    return NULL;
}

int ihsm_key_check_params(uint32_t type, uint32_t bits, uint32_t *usage,
                          size_t label_len, int for_generate)
{
    const struct type_rule *r = rule_of(type);

    if (r == NULL) {
        ihsm_crypto_debug("key type %u is not supported", type);
        return IHSM_ERR_UNSUPPORTED;
    }
    if (label_len > IHSM_MAX_LABEL)
        return IHSM_ERR_BAD_INPUT;
    if (*usage == 0)
        *usage = r->natural;
    if ((*usage & ~r->allowed) != 0) {
        ihsm_crypto_debug("usage 0x%x not allowed for key type %u (allowed 0x%x)",
                          *usage, type, r->allowed);
        return IHSM_ERR_BAD_INPUT;
    }
    switch (type) {
    case IHSM_KEY_RSA:
        if (for_generate)
            return bits == 2048 || bits == 3072 || bits == 4096
                       ? IHSM_OK : IHSM_ERR_UNSUPPORTED;
        return bits == 0 || (bits >= IHSM_RSA_MIN_BITS && bits <= IHSM_RSA_MAX_BITS)
                   ? IHSM_OK : IHSM_ERR_UNSUPPORTED;
    case IHSM_KEY_AES:
        if (bits == 0 && !for_generate)
            return IHSM_OK;
        return bits == 128 || bits == 256 ? IHSM_OK : IHSM_ERR_UNSUPPORTED;
    default:
        return bits == 0 || bits == r->bits ? IHSM_OK : IHSM_ERR_UNSUPPORTED;
    }
}

ihsm_key *ihsm_key_new(uint32_t type, uint32_t bits, uint32_t usage,
                       const uint8_t *label, size_t label_len)
{
    const struct type_rule *r = rule_of(type);
    ihsm_key *k;

    if (label_len > IHSM_MAX_LABEL || (label_len != 0 && label == NULL))
        return NULL;
    if ((k = OPENSSL_zalloc(sizeof(*k))) == NULL)
        return NULL;
    k->type = type;
    k->bits = bits != 0 ? bits : (r != NULL ? r->bits : 0);
    k->usage = usage;
    k->label_len = label_len;
    if (label_len != 0)
        memcpy(k->label, label, label_len);
    return k;
}

void ihsm_key_free(ihsm_key *k)
{
    if (k == NULL)
        return;
    EVP_PKEY_free(k->pkey); /* private BIGNUMs / raw keys: secure heap, cleansed */
    if (k->secret != NULL)
        OPENSSL_secure_clear_free(k->secret, k->secret_len);
    OPENSSL_clear_free(k, sizeof(*k));
}

uint32_t ihsm_key_type(const ihsm_key *k)
{
    return k->type;
}

uint32_t ihsm_key_bits(const ihsm_key *k)
{
    return k->bits;
}

uint32_t ihsm_key_usage(const ihsm_key *k)
{
    return k->usage;
}

const uint8_t *ihsm_key_label(const ihsm_key *k, size_t *len)
{
    *len = k->label_len;
    return k->label;
}

/* The named curve of an EC key as an NID, or NID_undef for explicit
 * parameters (which the device refuses: they defeat curve checks). */
static int ec_curve_nid(const EVP_PKEY *pkey)
{
    char name[64], enc[32];
    int nid;

    if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_ENCODING,
                                        enc, sizeof(enc), NULL)
        || strcmp(enc, OSSL_PKEY_EC_ENCODING_GROUP) != 0)
        return NID_undef;
    if (!EVP_PKEY_get_group_name(pkey, name, sizeof(name), NULL))
        return NID_undef;
    if ((nid = EC_curve_nist2nid(name)) == NID_undef)
        nid = OBJ_sn2nid(name);
    return nid;
}

int ihsm_key_adopt_pkey(ihsm_key *k, EVP_PKEY *pkey)
{
    const struct type_rule *r = rule_of(k->type);
    uint32_t bits;

    if (r == NULL || r->ossl_name == NULL || !EVP_PKEY_is_a(pkey, r->ossl_name))
        return IHSM_ERR_BAD_INPUT;
    if (r->group != NULL) {
        if (ec_curve_nid(pkey) != EC_curve_nist2nid(r->group))
            return IHSM_ERR_BAD_INPUT;
        bits = r->bits;
    } else if (k->type == IHSM_KEY_RSA) {
        int b = EVP_PKEY_get_bits(pkey);
        BIGNUM *e = NULL;
        int e_ok;

        if (b < IHSM_RSA_MIN_BITS || b > IHSM_RSA_MAX_BITS)
            return IHSM_ERR_BAD_INPUT;
        /* an even or tiny public exponent is not a key anyone should use */
        if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e))
            return IHSM_ERR_BAD_INPUT;
        e_ok = BN_is_odd(e) && BN_num_bits(e) > 1;
        BN_free(e);
        if (!e_ok)
            return IHSM_ERR_BAD_INPUT;
        bits = (uint32_t)b;
    } else {
        bits = r->bits;
    }
    if (k->bits != 0 && k->bits != bits)
        return IHSM_ERR_BAD_INPUT;
    k->bits = bits;
    k->pkey = pkey;
    return IHSM_OK;
}

int ihsm_key_adopt_secret(ihsm_key *k, const uint8_t *raw, size_t len)
{
    if (k->type != IHSM_KEY_AES || (len != 16 && len != 32)
        || (k->bits != 0 && k->bits != len * 8))
        return IHSM_ERR_BAD_INPUT;
    if ((k->secret = OPENSSL_secure_malloc(len)) == NULL)
        return IHSM_ERR_CRYPTO;
    memcpy(k->secret, raw, len);
    k->secret_len = len;
    k->bits = (uint32_t)len * 8;
    return IHSM_OK;
}

int ihsm_key_export_private(const ihsm_key *k, uint8_t **der, size_t *len)
{
    OSSL_ENCODER_CTX *ectx = NULL;
    BIO *bio = NULL;
    char *data;
    long n;
    int st = IHSM_ERR_CRYPTO;

    *der = NULL;
    *len = 0;
    if (k->secret != NULL) {
        if ((*der = OPENSSL_secure_malloc(k->secret_len)) == NULL)
            return IHSM_ERR_CRYPTO;
        memcpy(*der, k->secret, k->secret_len);
        *len = k->secret_len;
        return IHSM_OK;
    }
    /* a secure-memory BIO: the DER never touches the ordinary heap here */
    if ((bio = BIO_new(BIO_s_secmem())) == NULL
        || (ectx = OSSL_ENCODER_CTX_new_for_pkey(k->pkey, EVP_PKEY_KEYPAIR, "DER",
                                                 "PrivateKeyInfo", NULL)) == NULL
        || OSSL_ENCODER_CTX_get_num_encoders(ectx) == 0
        || !OSSL_ENCODER_to_bio(ectx, bio))
        goto end;
    n = BIO_get_mem_data(bio, &data);
    if (n <= 0 || n > IHSM_MAX_KEY_DER || (*der = OPENSSL_secure_malloc((size_t)n)) == NULL)
        goto end;
    memcpy(*der, data, (size_t)n);
    *len = (size_t)n;
    st = IHSM_OK;
end:
    if (st != IHSM_OK)
        ihsm_crypto_drop_errors("export private key");
    OSSL_ENCODER_CTX_free(ectx);
    BIO_free(bio); /* secmem BIO: cleansed on free */
    return st;
}

int ihsm_key_import_private(ihsm_key *k, const uint8_t *der, size_t len)
{
    const struct type_rule *r = rule_of(k->type);
    OSSL_DECODER_CTX *dctx = NULL;
    EVP_PKEY *pkey = NULL;
    const unsigned char *p = der;
    size_t left = len;
    int st;

    if (r == NULL)
        return IHSM_ERR_BAD_INPUT;
    if (r->ossl_name == NULL)
        return ihsm_key_adopt_secret(k, der, len);
    if (len == 0 || len > IHSM_MAX_KEY_DER)
        return IHSM_ERR_BAD_INPUT;
    dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "DER", "PrivateKeyInfo",
                                         r->ossl_name, EVP_PKEY_KEYPAIR,
                                         ihsm_crypto_libctx(), NULL);
    if (dctx == NULL || OSSL_DECODER_CTX_get_num_decoders(dctx) == 0) {
        OSSL_DECODER_CTX_free(dctx);
        ihsm_crypto_drop_errors("decoder");
        return IHSM_ERR_CRYPTO;
    }
    if (!OSSL_DECODER_from_data(dctx, &p, &left) || pkey == NULL
        || left != 0) {
        OSSL_DECODER_CTX_free(dctx);
        EVP_PKEY_free(pkey);
        ihsm_crypto_drop_errors("decode private key");
        return IHSM_ERR_BAD_INPUT;
    }
    OSSL_DECODER_CTX_free(dctx);
    if ((st = ihsm_key_adopt_pkey(k, pkey)) != IHSM_OK) {
        ihsm_crypto_debug("decoded key is not a type %u key of %u bits",
                          k->type, k->bits);
        EVP_PKEY_free(pkey);
    }
    return st;
}

static EVP_PKEY *generate_pkey(const struct type_rule *r, uint32_t bits)
{
    OSSL_LIB_CTX *lc = ihsm_crypto_libctx();
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(lc, r->ossl_name, NULL);
    EVP_PKEY *pkey = NULL;

    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0)
        goto end;
    if (r->type == IHSM_KEY_RSA && EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) <= 0)
        goto end;
    if (r->group != NULL && EVP_PKEY_CTX_set_group_name(ctx, r->group) <= 0)
        goto end;
    if (EVP_PKEY_generate(ctx, &pkey) <= 0)
        pkey = NULL;
end:
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

int ihsm_key_generate(uint32_t type, uint32_t bits, uint32_t usage,
                      const uint8_t *label, size_t label_len, ihsm_key **out)
{
    const struct type_rule *r;
    ihsm_key *k;
    int st;

    *out = NULL;
    if (ihsm_crypto_failed())
        return IHSM_ERR_DEVICE_FAILED;
    if ((st = ihsm_key_check_params(type, bits, &usage, label_len, 1)) != IHSM_OK)
        return st;
    if (label_len != 0 && label == NULL)
        return IHSM_ERR_BAD_INPUT;
    if (!ihsm_crypto_secure_room())
        return IHSM_ERR_LIMIT_KEYS;
    r = rule_of(type);
    if ((k = ihsm_key_new(type, bits, usage, label, label_len)) == NULL)
        return IHSM_ERR_CRYPTO;
    if (type == IHSM_KEY_AES) {
        k->secret_len = bits / 8;
        if ((k->secret = OPENSSL_secure_malloc(k->secret_len)) == NULL) {
            ihsm_key_free(k);
            return IHSM_ERR_CRYPTO;
        }
        if ((st = ihsm_crypto_rand(k->secret, k->secret_len)) != IHSM_OK) {
            ihsm_key_free(k);
            return st;
        }
    } else {
        EVP_PKEY *pkey = generate_pkey(r, bits);

        if (pkey == NULL || ihsm_key_adopt_pkey(k, pkey) != IHSM_OK) {
            EVP_PKEY_free(pkey);
            ihsm_key_free(k);
            ihsm_crypto_drop_errors("generate");
            return IHSM_ERR_CRYPTO;
        }
        /* FIPS 140-3 style conditional test: a generated pair that does not
         * work means the generator is broken, so the device stops. */
        if (ihsm_key_pct(k) != IHSM_OK || ihsm_crypto_forced("PCT")) {
            ihsm_key_free(k);
            ihsm_crypto_set_failed("pairwise consistency test of a generated key");
            return IHSM_ERR_CRYPTO;
        }
    }
    ihsm_crypto_debug("generated key type %u bits %u usage 0x%x", k->type,
                      k->bits, k->usage);
    *out = k;
    return IHSM_OK;
}

/*
 * SubjectPublicKeyInfo of the fixed-size key types: a constant DER header and
 * the raw public value. i2d_PUBKEY on a provider key runs OpenSSL 3.0's
 * encoder selection (~120 us), more than generating an X25519 key; KEY_GENERATE
 * of a TLS ephemeral key answers with its public key every handshake.
 */
static const struct spki_form {
    uint32_t type;
    uint8_t prefix[26];
    size_t prefix_len, pub_len;
} spki_forms[] = {
    {IHSM_KEY_X25519, {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00},
     12, 32},
    {IHSM_KEY_ED25519, {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00},
     12, 32},
    /* id-ecPublicKey, prime256v1; BIT STRING of 04 || x || y */
    {IHSM_KEY_EC_P256, {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
                        0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03,
                        0x42, 0x00},
     26, 65},
    /* id-ecPublicKey, secp384r1 */
    {IHSM_KEY_EC_P384, {0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
                        0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00},
     23, 97},
};

static int write_spki_fixed(const ihsm_key *k, ihsm_wr *out)
{
    uint8_t pub[97];
    size_t len = 0, mark;

    for (size_t i = 0; i < sizeof(spki_forms) / sizeof(spki_forms[0]); i++) {
        const struct spki_form *f = &spki_forms[i];

        if (f->type != k->type)
            continue;
        if (!EVP_PKEY_get_octet_string_param(k->pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub,
                                             sizeof(pub), &len)
            || len != f->pub_len || (f->pub_len != 32 && pub[0] != 0x04)) {
            ihsm_crypto_drop_errors("public key");
            return 0; /* the general path below */
        }
        mark = ihsm_wr_bytes_begin(out);
        ihsm_wr_raw(out, f->prefix, f->prefix_len);
        ihsm_wr_raw(out, pub, len);
        ihsm_wr_bytes_end(out, mark);
        return 1;
    }
    return 0;
}

int ihsm_key_write_public(const ihsm_key *k, ihsm_wr *out)
{
    size_t mark;
    unsigned char *p;
    int n;

    if (k->pkey == NULL) { /* AES: no public part */
        ihsm_wr_bytes(out, NULL, 0);
        return ihsm_crypto_wr_status(out);
    }
    if (write_spki_fixed(k, out))
        return ihsm_crypto_wr_status(out);
    if ((n = i2d_PUBKEY(k->pkey, NULL)) <= 0) {
        ihsm_crypto_drop_errors("public key");
        return IHSM_ERR_CRYPTO;
    }
    mark = ihsm_wr_bytes_begin(out);
    if ((p = ihsm_wr_reserve(out, (size_t)n)) == NULL)
        return ihsm_crypto_wr_status(out);
    if (i2d_PUBKEY(k->pkey, &p) != n) {
        ihsm_crypto_drop_errors("public key");
        return IHSM_ERR_CRYPTO;
    }
    ihsm_wr_bytes_end(out, mark);
    return ihsm_crypto_wr_status(out);
}
