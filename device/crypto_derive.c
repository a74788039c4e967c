/*
 * DERIVE: ECDH on P-256/P-384 and X25519. The peer's public value comes from
 * a client, so the device validates it itself: exact length, uncompressed
 * form, on the curve (never the point at infinity), and for X25519 a
 * non-zero shared secret (small-order points give zero, RFC 7748 section 6.1).
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>

#include "crypto_internal.h"

#define MAX_SECRET 64

int ihsm_pkey_derive(EVP_PKEY *pkey, EVP_PKEY *peer, uint8_t *out, size_t *outlen)
{
    static const uint8_t zeros[MAX_SECRET];
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(ihsm_crypto_libctx(), pkey, NULL);
    size_t need = 0;
    int st = IHSM_ERR_CRYPTO;

    if (ctx == NULL || EVP_PKEY_derive_init(ctx) <= 0)
        goto end;
    /* the peer is validated by the caller (peer_key, or our own keys) */
    if (EVP_PKEY_derive_set_peer_ex(ctx, peer, 0) <= 0) {
        st = IHSM_ERR_BAD_INPUT;
        goto end;
    }
    if (EVP_PKEY_derive(ctx, NULL, &need) <= 0 || need > *outlen || need > MAX_SECRET)
        goto end;
    /* with a validated peer the only way to fail here is a degenerate
     * result (X25519 small order), which is the client's input */
    if (EVP_PKEY_derive(ctx, out, &need) <= 0) {
        st = IHSM_ERR_BAD_INPUT;
        goto end;
    }
    /* only X25519 has small-order points; an ECDH x-coordinate of zero is
     * a valid shared secret (Wycheproof ecpoint tcId 3) */
    if (need == 0
        || (EVP_PKEY_is_a(pkey, "X25519") && CRYPTO_memcmp(out, zeros, need) == 0)) {
        OPENSSL_cleanse(out, need);
        st = IHSM_ERR_BAD_INPUT;
        goto end;
    }
    *outlen = need;
    st = IHSM_OK;
end:
    if (st != IHSM_OK)
        ihsm_crypto_drop_errors("derive");
    EVP_PKEY_CTX_free(ctx);
    return st;
}

/* Public-only keys of each curve: a peer key is a copy of one of these with
 * the peer's point set in, which costs a third of building a key from
 * parameters (EC_GROUP construction dominates). */
static EVP_PKEY *tmpl_p256, *tmpl_p384;

static EVP_PKEY *make_template(OSSL_LIB_CTX *lc, const char *group)
{
    EVP_PKEY *kp = EVP_PKEY_Q_keygen(lc, NULL, "EC", group), *pub = NULL;
    uint8_t pt[97];
    size_t len;

    if (kp != NULL
        && EVP_PKEY_get_octet_string_param(kp, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt),
                                           &len)) {
        OSSL_PARAM params[3];
        EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(lc, "EC", NULL);

        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                     (char *)group, 0);
        params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, len);
        params[2] = OSSL_PARAM_construct_end();
        if (pctx == NULL || EVP_PKEY_fromdata_init(pctx) <= 0
            || EVP_PKEY_fromdata(pctx, &pub, EVP_PKEY_PUBLIC_KEY, params) <= 0)
            pub = NULL;
        EVP_PKEY_CTX_free(pctx);
    }
    EVP_PKEY_free(kp);
    return pub;
}

int ihsm_crypto_derive_init(void)
{
    OSSL_LIB_CTX *lc = ihsm_crypto_libctx();

    if (tmpl_p256 == NULL)
        tmpl_p256 = make_template(lc, "P-256");
    if (tmpl_p384 == NULL)
        tmpl_p384 = make_template(lc, "P-384");
    return tmpl_p256 != NULL && tmpl_p384 != NULL;
}

void ihsm_crypto_derive_cleanup(void)
{
    EVP_PKEY_free(tmpl_p256);
    EVP_PKEY_free(tmpl_p384);
    tmpl_p256 = tmpl_p384 = NULL;
}

/* The peer's public key from its wire form, or NULL if it is not a valid
 * public key of k's type. */
static EVP_PKEY *peer_key(const ihsm_key *k, const uint8_t *peer, size_t len)
{
    EVP_PKEY *tmpl = k->type == IHSM_KEY_EC_P256 ? tmpl_p256 : tmpl_p384;
    EVP_PKEY *pk;

    if (k->type == IHSM_KEY_X25519) {
        if (len != 32)
            return NULL;
        return EVP_PKEY_new_raw_public_key_ex(ihsm_crypto_libctx(), "X25519", NULL,
                                              peer, len);
    }
    /* only 0x04 || X || Y of the key's curve: the infinity point (0x00) and
     * compressed forms never have this length */
    if (len != 1 + 2 * (size_t)(k->bits / 8) || peer[0] != 0x04 || tmpl == NULL)
        return NULL;
    /* EC_POINT_oct2point underneath refuses coordinates >= p and points off
     * the curve, and an uncompressed point is never infinity. P-256 and
     * P-384 have cofactor 1, so such a point has the group's order: the full
     * public check (another scalar multiplication) would add nothing. */
    if ((pk = EVP_PKEY_dup(tmpl)) == NULL
        || !EVP_PKEY_set1_encoded_public_key(pk, peer, len)) {
        EVP_PKEY_free(pk);
        return NULL;
    }
    return pk;
}

int ihsm_op_derive(const ihsm_key *k, ihsm_rd *args, ihsm_wr *out)
{
    const uint8_t *peer;
    size_t peer_len;
    uint8_t secret[MAX_SECRET];
    size_t secret_len = sizeof(secret);
    EVP_PKEY *pk;
    int st;

    if (ihsm_crypto_failed())
        return IHSM_ERR_DEVICE_FAILED;
    peer = ihsm_rd_bytes(args, &peer_len, IHSM_MAX_PAYLOAD);
    if (ihsm_rd_end(args) != 0)
        return IHSM_ERR_MALFORMED;
    if (!ihsm_key_has(k, IHSM_USAGE_DERIVE))
        return IHSM_ERR_USAGE;
    if (k->type != IHSM_KEY_EC_P256 && k->type != IHSM_KEY_EC_P384
        && k->type != IHSM_KEY_X25519)
        return IHSM_ERR_UNSUPPORTED;
    if ((pk = peer_key(k, peer, peer_len)) == NULL) {
        ihsm_crypto_drop_errors("derive peer");
        ihsm_crypto_debug("derive type %u: peer of %zu bytes rejected", k->type,
                          peer_len);
        return IHSM_ERR_BAD_INPUT;
    }
    st = ihsm_pkey_derive(k->pkey, pk, secret, &secret_len);
    EVP_PKEY_free(pk);
    ihsm_crypto_debug("derive type %u: %s", k->type, ihsm_status_name(st));
    if (st == IHSM_OK) {
        ihsm_wr_bytes(out, secret, secret_len);
        st = ihsm_crypto_wr_status(out);
    }
    OPENSSL_cleanse(secret, sizeof(secret));
    return st;
}
