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
    /* validate=1: EVP_PKEY_public_check on the peer */
    if (EVP_PKEY_derive_set_peer_ex(ctx, peer, 1) <= 0) {
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
    if (need == 0 || CRYPTO_memcmp(out, zeros, need) == 0) {
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

/* The peer's public key from its wire form, or NULL if it is not a valid
 * public key of k's type. */
static EVP_PKEY *peer_key(const ihsm_key *k, const uint8_t *peer, size_t len)
{
    OSSL_LIB_CTX *lc = ihsm_crypto_libctx();
    EVP_PKEY *pk = NULL;

    if (k->type == IHSM_KEY_X25519) {
        if (len != 32)
            return NULL;
        return EVP_PKEY_new_raw_public_key_ex(lc, "X25519", NULL, peer, len);
    } else {
        const char *group = k->type == IHSM_KEY_EC_P256 ? "P-256" : "P-384";
        size_t field = k->bits / 8;
        OSSL_PARAM params[3];
        EVP_PKEY_CTX *pctx;

        /* only 0x04 || X || Y: the infinity point (0x00) and compressed
         * forms never have this length */
        if (len != 1 + 2 * field || peer[0] != 0x04)
            return NULL;
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                     (char *)group, 0);
        params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                                      (void *)peer, len);
        params[2] = OSSL_PARAM_construct_end();
        /* fromdata decodes with EC_POINT_oct2point: off-curve points fail */
        if ((pctx = EVP_PKEY_CTX_new_from_name(lc, "EC", NULL)) == NULL
            || EVP_PKEY_fromdata_init(pctx) <= 0
            || EVP_PKEY_fromdata(pctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0)
            pk = NULL;
        EVP_PKEY_CTX_free(pctx);
        return pk;
    }
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
