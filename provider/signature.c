/*
 * Signatures with device keys: the shared context and its operate paths.
 *
 * Signing: a digest (EVP_PKEY_sign), or data hashed here in process with the
 * default provider's digest and the digest sent to the device
 * (EVP_DigestSign*: libssl's path), or for Ed25519 the message itself.
 * Verification never needs the device: it runs in the default provider with
 * the key's public half. Nothing here holds a lock across a device call;
 * ihsm_queue_call pauses an ASYNC job (SSL_MODE_ASYNC) by itself.
 */
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/x509.h>
#include "signature.h"

#define SIG_DBG(c, fmt, ...)                                                          \
    IHSM_PROV_DBG("signature %s: " fmt, (c)->alg->name, ##__VA_ARGS__)

void *ihsm_sig_newctx(const IHSM_SIG_ALG *alg, void *provctx, const char *propq)
{
    IHSM_SIG_CTX *c = OPENSSL_zalloc(sizeof(*c));

    if (c == NULL)
        return NULL;
    c->provctx = provctx;
    c->alg = alg;
    SIG_DBG(c, "newctx %p", (void *)c);
    return c;
}

void ihsm_sig_freectx(void *vctx)
{
    IHSM_SIG_CTX *c = vctx;

    if (c == NULL)
        return;
    SIG_DBG(c, "freectx %p", (void *)c);
    ihsm_prov_key_free(c->key);
    EVP_MD_free(c->md);
    EVP_MD_free(c->mgf1_md);
    EVP_MD_CTX_free(c->mdctx); /* cleanses the hash state */
    OPENSSL_free(c);
}

void *ihsm_sig_dupctx(void *vctx)
{
    IHSM_SIG_CTX *c = vctx, *d;

    SIG_DBG(c, "dupctx %p", (void *)c);
    if ((d = OPENSSL_memdup(c, sizeof(*c))) == NULL)
        return NULL;
    d->key = NULL;
    d->md = d->mgf1_md = NULL;
    d->mdctx = NULL;
    if ((c->key != NULL && !ihsm_prov_key_up_ref(c->key))
        || (c->md != NULL && !EVP_MD_up_ref(c->md))
        || (c->mgf1_md != NULL && !EVP_MD_up_ref(c->mgf1_md)))
        goto err;
    d->key = c->key;
    d->md = c->md;
    d->mgf1_md = c->mgf1_md;
    if (c->mdctx != NULL
        && ((d->mdctx = EVP_MD_CTX_new()) == NULL || !EVP_MD_CTX_copy_ex(d->mdctx, c->mdctx)))
        goto err;
    return d;
err:
    ihsm_sig_freectx(d);
    return NULL;
}

/* ---------------------------------------------------------------- helpers */

EVP_MD *ihsm_sig_fetch_md(IHSM_SIG_CTX *c, const char *name)
{
    EVP_MD *md = EVP_MD_fetch(c->provctx->libctx, name, IHSM_PROV_PUB_PROPQ);

    if (md == NULL) {
        ihsm_prov_raise(c->provctx, IHSM_R_INVALID_ARGUMENT, "unknown digest \"%s\"", name);
        return NULL;
    }
    if ((EVP_MD_get_flags(md) & EVP_MD_FLAG_XOF) != 0) {
        ihsm_prov_raise(c->provctx, IHSM_R_UNSUPPORTED,
                        "%s signatures cannot use the XOF digest %s", c->alg->name, name);
        EVP_MD_free(md);
        return NULL;
    }
    return md;
}

int ihsm_sig_md_id(IHSM_SIG_CTX *c, size_t tbslen)
{
    if (c->md != NULL)
        return ihsm_prov_md_id(c->md);
    switch (tbslen) {
    case 20:
        return IHSM_MD_SHA1;
    case 28:
        return IHSM_MD_SHA224;
    case 32:
        return IHSM_MD_SHA256;
    case 48:
        return IHSM_MD_SHA384;
    case 64:
        return IHSM_MD_SHA512;
    }
    return -1;
}

void ihsm_sig_write_args(ihsm_wr *w, uint32_t scheme, uint32_t md, uint32_t mgf1,
                         int32_t salt, const unsigned char *tbs, size_t tbslen)
{
    ihsm_wr_u32(w, scheme);
    ihsm_wr_u32(w, md);
    ihsm_wr_u32(w, mgf1);
    ihsm_wr_u32(w, (uint32_t)salt);
    ihsm_wr_bytes(w, tbs, tbslen);
}

static size_t sig_max_size(IHSM_SIG_CTX *c)
{
    int n = c->key != NULL && c->key->pub != NULL ? EVP_PKEY_get_size(c->key->pub) : 0;

    return n > 0 ? (size_t)n : 0;
}

/* Set a digest; in digest mode this restarts the (still empty) hash. */
static int set_md(IHSM_SIG_CTX *c, const char *name)
{
    EVP_MD *md;

    if (c->alg->message_only) {
        if (name == NULL || name[0] == '\0')
            return 1;
        ihsm_prov_raise(c->provctx, IHSM_R_INVALID_ARGUMENT,
                        "%s signs the message itself: no digest can be set (got %s)",
                        c->alg->name, name);
        return 0;
    }
    if (c->hashed) {
        ihsm_prov_raise(c->provctx, IHSM_R_INVALID_ARGUMENT,
                        "the digest cannot change once data has been hashed");
        return 0;
    }
    if ((md = ihsm_sig_fetch_md(c, name)) == NULL)
        return 0;
    EVP_MD_free(c->md);
    c->md = md;
    if (c->digest_mode) {
        if (c->mdctx == NULL && (c->mdctx = EVP_MD_CTX_new()) == NULL)
            return 0;
        if (!EVP_DigestInit_ex2(c->mdctx, c->md, NULL))
            return 0;
    }
    return 1;
}

static int sig_init(IHSM_SIG_CTX *c, void *provkey, int op)
{
    IHSM_PROV_KEY *k = provkey;
    char desc[IHSM_MAX_LABEL + 32];

    if (k != NULL) {
        if (!c->alg->key_ok(k)) {
            ihsm_prov_raise(c->provctx, IHSM_R_INVALID_ARGUMENT,
                            "%s signatures cannot use a %s key", c->alg->name,
                            ihsm_prov_key_keymgmt_name(k) ? ihsm_prov_key_keymgmt_name(k) : "?");
            return 0;
        }
        ihsm_prov_key_up_ref(k);
        ihsm_prov_key_free(c->key);
        c->key = k;
    }
    /* (a key exchange key makes its EVP_PKEY only when asked) */
    if (c->key == NULL || ihsm_prov_key_pub(c->key) == NULL) {
        ihsm_prov_raise(c->provctx, IHSM_R_INVALID_ARGUMENT, "no key given");
        return 0;
    }
    if (op == IHSM_SIG_OP_SIGN) {
        if ((c->provctx->route & IHSM_ROUTE_SIGN) == 0) {
            ihsm_prov_raise(c->provctx, IHSM_R_BAD_CONFIG,
                            "signing is not routed to the device: add sign to ihsm-route in "
                            "openssl.cnf (the key exists only in ihsmd)");
            return 0;
        }
        if (!ihsm_prov_key_has_private(c->key)) {
            ihsm_prov_raise(c->provctx, IHSM_R_NO_PRIVATE_KEY,
                            "this key object holds only a public key, so it cannot sign: load "
                            "the key from its ihsm key file or as ihsm:NAME");
            return 0;
        }
        if (c->key->usage != 0 && (c->key->usage & IHSM_USAGE_SIGN) == 0) {
            ihsm_prov_raise(c->provctx, IHSM_R_USAGE_NOT_ALLOWED,
                            "%s: the key's usage flags forbid signing: use a signing key",
                            ihsm_prov_key_desc(c->key, desc, sizeof(desc)));
            return 0;
        }
    }
    c->op = op;
    c->digest_mode = 0;
    c->hashed = 0;
    EVP_MD_free(c->md);
    c->md = NULL;
    EVP_MD_free(c->mgf1_md);
    c->mgf1_md = NULL;
    if (c->alg->reset != NULL)
        c->alg->reset(c);
    return 1;
}

/* ---------------------------------------------------------------- sign */

int ihsm_sig_sign_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    IHSM_SIG_CTX *c = vctx;

    SIG_DBG(c, "sign_init");
    return sig_init(c, provkey, IHSM_SIG_OP_SIGN) && ihsm_sig_set_ctx_params(c, params);
}

/* tbs: a digest, or the message (Ed25519). The device's answer: bytes signature. */
static int device_sign(IHSM_SIG_CTX *c, unsigned char *sig, size_t *siglen, size_t sigsize,
                       const unsigned char *tbs, size_t tbslen)
{
    ihsm_result res = { 0 };
    ihsm_wr args;
    ihsm_rd r;
    const uint8_t *s;
    size_t slen, max = sig_max_size(c);
    int ok = 0;

    if (c->op != IHSM_SIG_OP_SIGN || c->key == NULL) {
        ihsm_prov_raise(c->provctx, IHSM_R_INVALID_ARGUMENT, "not initialised for signing");
        return 0;
    }
    ihsm_wr_init(&args);
    if (!c->alg->sign_args(c, tbs, tbslen, &args))
        goto end;
    if (ihsm_prov_key_call(c->key, IHSM_CMD_SIGN, &args, &res) != IHSM_OK)
        goto end;
    ihsm_rd_init(&r, res.data, res.len);
    s = ihsm_rd_bytes(&r, &slen, max);
    if (s == NULL || ihsm_rd_end(&r) != 0 || slen == 0) {
        ihsm_prov_raise(c->provctx, IHSM_R_DEVICE_ERROR,
                        "malformed signature from the device");
        goto end;
    }
    if (slen > sigsize) {
        ihsm_prov_raise(c->provctx, IHSM_R_INVALID_ARGUMENT,
                        "signature buffer too small (%zu bytes, need %zu)", sigsize, slen);
        goto end;
    }
    memcpy(sig, s, slen);
    *siglen = slen;
    ok = 1;
end:
    ihsm_result_clear(&res); /* cleanses */
    ihsm_wr_free(&args);     /* cleanses the digest we sent */
    return ok;
}

int ihsm_sig_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                  const unsigned char *tbs, size_t tbslen)
{
    IHSM_SIG_CTX *c = vctx;

    SIG_DBG(c, "sign %zu bytes%s", tbslen, sig == NULL ? " (size query)" : "");
    if (sig == NULL) {
        *siglen = sig_max_size(c);
        return *siglen > 0;
    }
    return device_sign(c, sig, siglen, sigsize, tbs, tbslen);
}

int ihsm_sig_digest_sign_init(void *vctx, const char *mdname, void *provkey,
                              const OSSL_PARAM params[])
{
    IHSM_SIG_CTX *c = vctx;

    SIG_DBG(c, "digest_sign_init md %s", mdname != NULL ? mdname : "(default)");
    if (!sig_init(c, provkey, IHSM_SIG_OP_SIGN))
        return 0;
    c->digest_mode = 1;
    if (!c->alg->message_only && (mdname == NULL || mdname[0] == '\0'))
        mdname = "SHA256";
    return set_md(c, mdname) && ihsm_sig_set_ctx_params(c, params);
}

int ihsm_sig_digest_sign_update(void *vctx, const unsigned char *data, size_t datalen)
{
    IHSM_SIG_CTX *c = vctx;

    SIG_DBG(c, "digest_sign_update %zu bytes", datalen);
    if (!c->digest_mode || c->mdctx == NULL || c->md == NULL)
        return 0;
    c->hashed = 1;
    return EVP_DigestUpdate(c->mdctx, data, datalen);
}

int ihsm_sig_digest_sign_final(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize)
{
    IHSM_SIG_CTX *c = vctx;
    unsigned char dgst[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    int ok;

    SIG_DBG(c, "digest_sign_final%s", sig == NULL ? " (size query)" : "");
    if (!c->digest_mode || c->mdctx == NULL)
        return 0;
    if (sig == NULL) {
        *siglen = sig_max_size(c);
        return *siglen > 0;
    }
    if (!EVP_DigestFinal_ex(c->mdctx, dgst, &dlen))
        return 0;
    c->hashed = 1;
    ok = device_sign(c, sig, siglen, sigsize, dgst, dlen);
    OPENSSL_cleanse(dgst, sizeof(dgst));
    return ok;
}

/* One shot over the message: Ed25519 (the device hashes as EdDSA requires). */
int ihsm_sig_digest_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                         const unsigned char *tbs, size_t tbslen)
{
    IHSM_SIG_CTX *c = vctx;

    SIG_DBG(c, "digest_sign %zu bytes%s", tbslen, sig == NULL ? " (size query)" : "");
    if (!c->digest_mode)
        return 0;
    if (sig == NULL) {
        *siglen = sig_max_size(c);
        return *siglen > 0;
    }
    if (!c->alg->message_only) {
        /* Not registered for digest algorithms; kept correct anyway. */
        return ihsm_sig_digest_sign_update(c, tbs, tbslen)
               && ihsm_sig_digest_sign_final(c, sig, siglen, sigsize);
    }
    return device_sign(c, sig, siglen, sigsize, tbs, tbslen);
}

/* ---------------------------------------------------------------- verify */

int ihsm_sig_verify_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    IHSM_SIG_CTX *c = vctx;

    SIG_DBG(c, "verify_init");
    return sig_init(c, provkey, IHSM_SIG_OP_VERIFY) && ihsm_sig_set_ctx_params(c, params);
}

/* Public-key work stays in process: the default provider verifies with the
 * key's public half. tbs is a digest (or raw input without a digest). */
int ihsm_sig_verify(void *vctx, const unsigned char *sig, size_t siglen,
                    const unsigned char *tbs, size_t tbslen)
{
    IHSM_SIG_CTX *c = vctx;
    EVP_PKEY_CTX *pctx;
    int ok = 0;

    SIG_DBG(c, "verify %zu bytes", tbslen);
    if (c->op != IHSM_SIG_OP_VERIFY || c->key == NULL || c->alg->message_only)
        return 0;
    pctx = EVP_PKEY_CTX_new_from_pkey(c->provctx->libctx, c->key->pub, IHSM_PROV_PUB_PROPQ);
    if (pctx != NULL && EVP_PKEY_verify_init(pctx) > 0
        && (c->md == NULL || EVP_PKEY_CTX_set_signature_md(pctx, c->md) > 0)
        && (c->alg->verify_setup == NULL || c->alg->verify_setup(c, pctx)))
        ok = EVP_PKEY_verify(pctx, sig, siglen, tbs, tbslen) > 0;
    EVP_PKEY_CTX_free(pctx);
    return ok;
}

int ihsm_sig_digest_verify_init(void *vctx, const char *mdname, void *provkey,
                                const OSSL_PARAM params[])
{
    IHSM_SIG_CTX *c = vctx;

    SIG_DBG(c, "digest_verify_init md %s", mdname != NULL ? mdname : "(default)");
    if (!sig_init(c, provkey, IHSM_SIG_OP_VERIFY))
        return 0;
    c->digest_mode = 1;
    if (!c->alg->message_only && (mdname == NULL || mdname[0] == '\0'))
        mdname = "SHA256";
    return set_md(c, mdname) && ihsm_sig_set_ctx_params(c, params);
}

int ihsm_sig_digest_verify_update(void *vctx, const unsigned char *data, size_t datalen)
{
    IHSM_SIG_CTX *c = vctx;

    SIG_DBG(c, "digest_verify_update %zu bytes", datalen);
    if (!c->digest_mode || c->mdctx == NULL || c->md == NULL)
        return 0;
    c->hashed = 1;
    return EVP_DigestUpdate(c->mdctx, data, datalen);
}

int ihsm_sig_digest_verify_final(void *vctx, const unsigned char *sig, size_t siglen)
{
    IHSM_SIG_CTX *c = vctx;
    unsigned char dgst[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    int ok;

    SIG_DBG(c, "digest_verify_final");
    if (!c->digest_mode || c->mdctx == NULL || !EVP_DigestFinal_ex(c->mdctx, dgst, &dlen))
        return 0;
    c->hashed = 1;
    ok = ihsm_sig_verify(c, sig, siglen, dgst, dlen);
    OPENSSL_cleanse(dgst, sizeof(dgst));
    return ok;
}

/* Ed25519: the default provider verifies the message with the public key. */
int ihsm_sig_digest_verify(void *vctx, const unsigned char *sig, size_t siglen,
                           const unsigned char *tbs, size_t tbslen)
{
    IHSM_SIG_CTX *c = vctx;
    EVP_MD_CTX *mctx;
    int ok = 0;

    SIG_DBG(c, "digest_verify %zu bytes", tbslen);
    if (c->op != IHSM_SIG_OP_VERIFY || c->key == NULL || !c->digest_mode)
        return 0;
    if (!c->alg->message_only)
        return ihsm_sig_digest_verify_update(c, tbs, tbslen)
               && ihsm_sig_digest_verify_final(c, sig, siglen);
    if ((mctx = EVP_MD_CTX_new()) == NULL)
        return 0;
    if (EVP_DigestVerifyInit_ex(mctx, NULL, NULL, c->provctx->libctx, IHSM_PROV_PUB_PROPQ,
                                c->key->pub, NULL) > 0)
        ok = EVP_DigestVerify(mctx, sig, siglen, tbs, tbslen) > 0;
    EVP_MD_CTX_free(mctx);
    return ok;
}

/* ---------------------------------------------------------------- params */

int ihsm_sig_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    IHSM_SIG_CTX *c = vctx;
    OSSL_PARAM *p;
    X509_ALGOR *alg;
    unsigned char *der = NULL;
    int derlen, ok;

    SIG_DBG(c, "get_ctx_params");
    if (c == NULL)
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID)) != NULL) {
        /* X.509 signing (openssl req, x509, ca) asks for the AlgorithmIdentifier. */
        if ((alg = X509_ALGOR_new()) == NULL)
            return 0;
        ok = c->alg->algor(c, alg) && (derlen = i2d_X509_ALGOR(alg, &der)) > 0
             && OSSL_PARAM_set_octet_string(p, der, (size_t)derlen);
        OPENSSL_free(der);
        X509_ALGOR_free(alg);
        if (!ok)
            return 0;
    }
    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST)) != NULL
        && !OSSL_PARAM_set_utf8_string(p, c->md != NULL ? EVP_MD_get0_name(c->md) : ""))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST_SIZE)) != NULL
        && !OSSL_PARAM_set_size_t(p, c->md != NULL ? (size_t)EVP_MD_get_size(c->md) : 0))
        return 0;
    return c->alg->get_params == NULL || c->alg->get_params(c, params);
}

int ihsm_sig_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    IHSM_SIG_CTX *c = vctx;
    const OSSL_PARAM *p;
    const char *name = NULL;

    if (c == NULL)
        return 0;
    if (params == NULL || params[0].key == NULL)
        return 1;
    SIG_DBG(c, "set_ctx_params");
    if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST)) != NULL) {
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &name))
            return 0;
        /* Asking again for the digest in use changes nothing. */
        if (c->md == NULL || name[0] == '\0' || !EVP_MD_is_a(c->md, name)) {
            if (!set_md(c, name))
                return 0;
        }
    }
    /* OSSL_SIGNATURE_PARAM_PROPERTIES: digests come from the default
     * provider in any case (ihsm has none), so the query is not used. */
    return c->alg->set_params == NULL || c->alg->set_params(c, params);
}
