/*
 * SIGN: RSA PKCS#1 v1.5, RSA-PSS, ECDSA (DER) and pure Ed25519. The client
 * hashes; the device signs the digest it is given (Ed25519: the message).
 * Every length is checked before OpenSSL sees it, so a client mistake is
 * IHSM_ERR_BAD_INPUT and never an internal error.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/rsa.h>

#include "crypto_internal.h"

static int scheme_fits(uint32_t scheme, uint32_t type)
{
    switch (scheme) {
    case IHSM_SIG_RSA_PKCS1:
    case IHSM_SIG_RSA_PSS:
        return type == IHSM_KEY_RSA;
    case IHSM_SIG_ECDSA:
        return type == IHSM_KEY_EC_P256 || type == IHSM_KEY_EC_P384;
    case IHSM_SIG_ED25519:
        return type == IHSM_KEY_ED25519;
    default:
        return 0;
    }
}

/* Set up ctx (after sign_init / verify_init) for an RSA or ECDSA scheme. */
static int setup_ctx(EVP_PKEY *pkey, EVP_PKEY_CTX *ctx, const ihsm_sig_params *sp,
                     size_t tbslen)
{
    const EVP_MD *md = ihsm_crypto_md(sp->md);
    size_t mdlen = md != NULL ? (size_t)EVP_MD_get_size(md) : 0;
    size_t modlen = (size_t)EVP_PKEY_get_size(pkey);

    if (sp->md != IHSM_MD_NONE && md == NULL)
        return IHSM_ERR_UNSUPPORTED;
    if (md != NULL && tbslen != mdlen)
        return IHSM_ERR_BAD_INPUT;

    switch (sp->scheme) {
    case IHSM_SIG_RSA_PKCS1:
        /* md NONE: tbs is a ready DigestInfo (or TLS 1.1 MD5||SHA1) that
         * PKCS#1 type-1 padding must fit around */
        if (md == NULL && (tbslen == 0 || tbslen + 11 > modlen))
            return IHSM_ERR_BAD_INPUT;
        if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0)
            return IHSM_ERR_CRYPTO;
        break;
    case IHSM_SIG_RSA_PSS: {
        uint32_t mgf1 = sp->mgf1_md != 0 ? sp->mgf1_md : sp->md;
        const EVP_MD *mgf1_md = ihsm_crypto_md(mgf1);
        int bits = EVP_PKEY_get_bits(pkey);
        /* RFC 8017 9.1.1: emLen = ceil((modBits - 1) / 8) >= hLen + sLen + 2 */
        long emlen = (bits - 1 + 7) / 8;
        long maxsalt = emlen - (long)mdlen - 2;
        int salt;

        if (md == NULL)
            return IHSM_ERR_BAD_INPUT; /* PSS signs a digest */
        if (mgf1_md == NULL)
            return IHSM_ERR_UNSUPPORTED;
        if (maxsalt < 0)
            return IHSM_ERR_BAD_INPUT;
        if (sp->salt_len == IHSM_PSS_SALT_DIGEST) {
            if ((long)mdlen > maxsalt)
                return IHSM_ERR_BAD_INPUT;
            salt = RSA_PSS_SALTLEN_DIGEST;
        } else if (sp->salt_len == IHSM_PSS_SALT_MAX) {
            salt = RSA_PSS_SALTLEN_MAX;
        } else if (sp->salt_len >= 0 && sp->salt_len <= maxsalt) {
            salt = sp->salt_len;
        } else {
            return IHSM_ERR_BAD_INPUT;
        }
        /* order as OpenSSL wants it: padding, digest, then MGF1 and salt */
        if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) <= 0
            || EVP_PKEY_CTX_set_signature_md(ctx, md) <= 0
            || EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, mgf1_md) <= 0
            || EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, salt) <= 0)
            return IHSM_ERR_CRYPTO;
        return IHSM_OK;
    }
    case IHSM_SIG_ECDSA:
        /* md NONE: any digest; OpenSSL truncates it to the order */
        if (md == NULL && (tbslen == 0 || tbslen > 64))
            return IHSM_ERR_BAD_INPUT;
        break;
    default:
        return IHSM_ERR_UNSUPPORTED;
    }
    if (md != NULL && EVP_PKEY_CTX_set_signature_md(ctx, md) <= 0)
        return IHSM_ERR_CRYPTO;
    return IHSM_OK;
}

static int sign_or_verify(EVP_PKEY *pkey, uint32_t type, const ihsm_sig_params *sp,
                          const uint8_t *tbs, size_t tbslen, uint8_t *sig,
                          size_t *siglen, int verify)
{
    OSSL_LIB_CTX *lc = ihsm_crypto_libctx();
    int st, r;

    if (!scheme_fits(sp->scheme, type))
        return IHSM_ERR_UNSUPPORTED;
    if (sp->scheme == IHSM_SIG_ED25519) {
        EVP_MD_CTX *mctx;

        if (sp->md != IHSM_MD_NONE)
            return IHSM_ERR_UNSUPPORTED; /* pure Ed25519 only */
        if (!verify && *siglen < 64)
            return IHSM_ERR_CRYPTO;
        if ((mctx = EVP_MD_CTX_new()) == NULL)
            return IHSM_ERR_CRYPTO;
        if (verify)
            r = EVP_DigestVerifyInit_ex(mctx, NULL, NULL, lc, NULL, pkey, NULL) > 0
                && EVP_DigestVerify(mctx, sig, *siglen, tbs, tbslen) > 0;
        else
            r = EVP_DigestSignInit_ex(mctx, NULL, NULL, lc, NULL, pkey, NULL) > 0
                && EVP_DigestSign(mctx, sig, siglen, tbs, tbslen) > 0;
        EVP_MD_CTX_free(mctx);
        st = r ? IHSM_OK : IHSM_ERR_CRYPTO;
    } else {
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(lc, pkey, NULL);

        if (ctx == NULL)
            return IHSM_ERR_CRYPTO;
        if ((verify ? EVP_PKEY_verify_init(ctx) : EVP_PKEY_sign_init(ctx)) <= 0)
            st = IHSM_ERR_CRYPTO;
        else
            st = setup_ctx(pkey, ctx, sp, tbslen);
        if (st == IHSM_OK) {
            if (verify)
                r = EVP_PKEY_verify(ctx, sig, *siglen, tbs, tbslen) > 0;
            else if (*siglen < (size_t)EVP_PKEY_get_size(pkey))
                r = 0;
            else
                r = EVP_PKEY_sign(ctx, sig, siglen, tbs, tbslen) > 0;
            st = r ? IHSM_OK : IHSM_ERR_CRYPTO;
        }
        EVP_PKEY_CTX_free(ctx);
    }
    if (st != IHSM_OK)
        ihsm_crypto_drop_errors(verify ? "verify" : "sign");
    return st;
}

int ihsm_pkey_sign(EVP_PKEY *pkey, uint32_t type, const ihsm_sig_params *sp,
                   const uint8_t *tbs, size_t tbslen, uint8_t *sig, size_t *siglen)
{
    return sign_or_verify(pkey, type, sp, tbs, tbslen, sig, siglen, 0);
}

int ihsm_pkey_verify(EVP_PKEY *pkey, uint32_t type, const ihsm_sig_params *sp,
                     const uint8_t *tbs, size_t tbslen, const uint8_t *sig,
                     size_t siglen)
{
    return sign_or_verify(pkey, type, sp, tbs, tbslen, (uint8_t *)sig, &siglen, 1);
}

int ihsm_op_sign(const ihsm_key *k, ihsm_rd *args, ihsm_wr *out)
{
    ihsm_sig_params sp;
    const uint8_t *tbs;
    size_t tbslen;
    uint8_t sig[IHSM_MAX_SIG];
    size_t siglen = sizeof(sig);
    int st;

    if (ihsm_crypto_failed())
        return IHSM_ERR_DEVICE_FAILED;
    sp.scheme = ihsm_rd_u32(args);
    sp.md = ihsm_rd_u32(args);
    sp.mgf1_md = ihsm_rd_u32(args);
    sp.salt_len = (int32_t)ihsm_rd_u32(args);
    tbs = ihsm_rd_bytes(args, &tbslen, IHSM_MAX_PAYLOAD);
    if (ihsm_rd_end(args) != 0)
        return IHSM_ERR_MALFORMED;
    if (!ihsm_key_has(k, IHSM_USAGE_SIGN))
        return IHSM_ERR_USAGE;
    if (k->pkey == NULL)
        return IHSM_ERR_UNSUPPORTED;
    st = ihsm_pkey_sign(k->pkey, k->type, &sp, tbs, tbslen, sig, &siglen);
    ihsm_crypto_debug("sign type %u scheme %u md %u tbs %zu: %s", k->type,
                      sp.scheme, sp.md, tbslen, ihsm_status_name(st));
    if (st == IHSM_OK) {
        ihsm_wr_bytes(out, sig, siglen);
        st = ihsm_crypto_wr_status(out);
    }
    OPENSSL_cleanse(sig, sizeof(sig));
    return st;
}
