/*
 * RSA signatures in the device: PKCS#1 v1.5 and PSS, for RSA and RSA-PSS
 * keys. What differs from the shared path: padding and PSS parameters, the
 * DigestInfo for digests the device does not name, the AlgorithmIdentifier.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include "signature.h"

static const OSSL_ITEM pad_names[] = {
    { RSA_PKCS1_PADDING, OSSL_PKEY_RSA_PAD_MODE_PKCSV15 },
    { RSA_PKCS1_PSS_PADDING, OSSL_PKEY_RSA_PAD_MODE_PSS },
    { RSA_NO_PADDING, OSSL_PKEY_RSA_PAD_MODE_NONE },
    { RSA_X931_PADDING, OSSL_PKEY_RSA_PAD_MODE_X931 },
};

static const OSSL_ITEM salt_names[] = {
    { (unsigned int)RSA_PSS_SALTLEN_DIGEST, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST },
    { (unsigned int)RSA_PSS_SALTLEN_MAX, OSSL_PKEY_RSA_PSS_SALT_LEN_MAX },
    { (unsigned int)RSA_PSS_SALTLEN_AUTO, OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO },
};

static int rsa_key_ok(const IHSM_PROV_KEY *k)
{
    return k->type == IHSM_KEY_RSA;
}

static void rsa_reset(IHSM_SIG_CTX *c)
{
    c->pad = c->key != NULL && c->key->rsa_pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING;
    c->saltlen = RSA_PSS_SALTLEN_AUTO; /* signing: the largest salt, as OpenSSL does */
}

/* The salt length PSS will use (RFC 8017 9.1.1: emLen = ceil((modBits-1)/8)). */
static int pss_salt(IHSM_SIG_CTX *c, int mdsize)
{
    int emlen = ((int)c->key->bits - 1 + 7) / 8, max = emlen - mdsize - 2;

    if (max < 0)
        return -1;
    switch (c->saltlen) {
    case RSA_PSS_SALTLEN_DIGEST:
        return mdsize <= max ? mdsize : -1;
    case RSA_PSS_SALTLEN_MAX:
    case RSA_PSS_SALTLEN_AUTO:
        return max;
    }
    return c->saltlen >= 0 && c->saltlen <= max ? c->saltlen : -1;
}

static const EVP_MD *mgf1_of(IHSM_SIG_CTX *c)
{
    return c->mgf1_md != NULL ? c->mgf1_md : c->md;
}

/* DigestInfo for a digest the device has no id for: it pads it as given. */
static int write_digestinfo(IHSM_SIG_CTX *c, const unsigned char *tbs, size_t tbslen,
                            ihsm_wr *w)
{
    X509_SIG *di = X509_SIG_new();
    X509_ALGOR *alg;
    ASN1_OCTET_STRING *dgst;
    unsigned char *der = NULL;
    int len = 0;

    if (di == NULL)
        return 0;
    X509_SIG_getm(di, &alg, &dgst);
    if (X509_ALGOR_set0(alg, OBJ_nid2obj(EVP_MD_get_type(c->md)), V_ASN1_NULL, NULL)
        && ASN1_OCTET_STRING_set(dgst, tbs, (int)tbslen)
        && (len = i2d_X509_SIG(di, &der)) > 0)
        ihsm_sig_write_args(w, IHSM_SIG_RSA_PKCS1, IHSM_MD_NONE, 0, 0, der, (size_t)len);
    OPENSSL_clear_free(der, len > 0 ? (size_t)len : 0);
    X509_SIG_free(di);
    return len > 0;
}

static int rsa_sign_args(IHSM_SIG_CTX *c, const unsigned char *tbs, size_t tbslen, ihsm_wr *w)
{
    int md = ihsm_sig_md_id(c, tbslen), mgf, salt;

    if (c->md != NULL && tbslen != (size_t)EVP_MD_get_size(c->md)) {
        ihsm_prov_raise(c->provctx, IHSM_R_INVALID_ARGUMENT,
                        "input of %zu bytes is not a %s digest", tbslen, EVP_MD_get0_name(c->md));
        return 0;
    }
    if (c->pad == RSA_PKCS1_PADDING) {
        if (c->md == NULL) /* raw PKCS#1 type 1 padding of the input */
            ihsm_sig_write_args(w, IHSM_SIG_RSA_PKCS1, IHSM_MD_NONE, 0, 0, tbs, tbslen);
        else if (md > 0)
            ihsm_sig_write_args(w, IHSM_SIG_RSA_PKCS1, (uint32_t)md, 0, 0, tbs, tbslen);
        else if (EVP_MD_is_a(c->md, "MD5-SHA1")) /* TLS 1.0/1.1: no DigestInfo */
            ihsm_sig_write_args(w, IHSM_SIG_RSA_PKCS1, IHSM_MD_NONE, 0, 0, tbs, tbslen);
        else if (!write_digestinfo(c, tbs, tbslen, w))
            return 0;
        return 1;
    }
    if (c->pad != RSA_PKCS1_PSS_PADDING) {
        ihsm_prov_raise(c->provctx, IHSM_R_UNSUPPORTED,
                        "RSA padding mode %d is not supported by the device: use pkcs1 or pss",
                        c->pad);
        return 0;
    }
    mgf = c->mgf1_md != NULL ? ihsm_prov_md_id(c->mgf1_md) : md;
    if (md <= 0 || mgf <= 0) {
        ihsm_prov_raise(c->provctx, IHSM_R_UNSUPPORTED,
                        "RSA-PSS in the device takes SHA-1, SHA-224, SHA-256, SHA-384 or "
                        "SHA-512 (digest and mgf1 digest)");
        return 0;
    }
    if ((salt = pss_salt(c, (int)tbslen)) < 0) {
        ihsm_prov_raise(c->provctx, IHSM_R_INVALID_ARGUMENT,
                        "PSS salt length %d does not fit a %u-bit key with this digest",
                        c->saltlen, (unsigned)c->key->bits);
        return 0;
    }
    ihsm_sig_write_args(w, IHSM_SIG_RSA_PSS, (uint32_t)md, (uint32_t)mgf, salt, tbs, tbslen);
    return 1;
}

/* RSASSA-PSS-params with SHA-1 defaults left out (RFC 4055), as OpenSSL
 * itself writes them. */
static int pss_algor(IHSM_SIG_CTX *c, X509_ALGOR *alg)
{
    RSA_PSS_PARAMS *pss = RSA_PSS_PARAMS_new();
    X509_ALGOR *mgfmd = NULL;
    ASN1_STRING *mgfparam = NULL, *os = NULL;
    const EVP_MD *mgf = mgf1_of(c);
    int salt = pss_salt(c, EVP_MD_get_size(c->md)), ok = 0;

    if (pss == NULL)
        return 0;
    if (salt < 0) {
        ihsm_prov_raise(c->provctx, IHSM_R_INVALID_ARGUMENT,
                        "PSS salt length %d does not fit a %u-bit key with this digest",
                        c->saltlen, (unsigned)c->key->bits);
        goto end;
    }
    if (salt != 20
        && ((pss->saltLength = ASN1_INTEGER_new()) == NULL
            || !ASN1_INTEGER_set(pss->saltLength, salt)))
        goto end;
    if (!EVP_MD_is_a(c->md, "SHA1")) {
        if ((pss->hashAlgorithm = X509_ALGOR_new()) == NULL)
            goto end;
        X509_ALGOR_set_md(pss->hashAlgorithm, c->md);
    }
    if (!EVP_MD_is_a(mgf, "SHA1")) {
        if ((mgfmd = X509_ALGOR_new()) == NULL)
            goto end;
        X509_ALGOR_set_md(mgfmd, mgf);
        if (ASN1_item_pack(mgfmd, ASN1_ITEM_rptr(X509_ALGOR), &mgfparam) == NULL
            || (pss->maskGenAlgorithm = X509_ALGOR_new()) == NULL
            || !X509_ALGOR_set0(pss->maskGenAlgorithm, OBJ_nid2obj(NID_mgf1),
                                V_ASN1_SEQUENCE, mgfparam))
            goto end;
        mgfparam = NULL;
    }
    if (ASN1_item_pack(pss, ASN1_ITEM_rptr(RSA_PSS_PARAMS), &os) == NULL
        || !X509_ALGOR_set0(alg, OBJ_nid2obj(NID_rsassaPss), V_ASN1_SEQUENCE, os))
        goto end;
    os = NULL;
    ok = 1;
end:
    ASN1_STRING_free(os);
    ASN1_STRING_free(mgfparam);
    X509_ALGOR_free(mgfmd);
    RSA_PSS_PARAMS_free(pss);
    return ok;
}

static int rsa_algor(IHSM_SIG_CTX *c, X509_ALGOR *alg)
{
    int nid;

    if (c->md == NULL) {
        ihsm_prov_raise(c->provctx, IHSM_R_INVALID_ARGUMENT,
                        "no digest chosen: an RSA signature algorithm needs one");
        return 0;
    }
    if (c->pad == RSA_PKCS1_PSS_PADDING)
        return pss_algor(c, alg);
    if (c->pad != RSA_PKCS1_PADDING
        || !OBJ_find_sigid_by_algs(&nid, EVP_MD_get_type(c->md), NID_rsaEncryption)) {
        ihsm_prov_raise(c->provctx, IHSM_R_UNSUPPORTED,
                        "no X.509 signature algorithm for RSA with %s", EVP_MD_get0_name(c->md));
        return 0;
    }
    return X509_ALGOR_set0(alg, OBJ_nid2obj(nid), V_ASN1_NULL, NULL);
}

static int rsa_verify_setup(IHSM_SIG_CTX *c, EVP_PKEY_CTX *pctx)
{
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, c->pad) <= 0)
        return 0;
    if (c->pad != RSA_PKCS1_PSS_PADDING)
        return 1;
    return EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, c->saltlen) > 0
           && (c->mgf1_md == NULL || EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, c->mgf1_md) > 0);
}

static int parse_saltlen(const char *s, int *out)
{
    size_t i;
    char *end;
    long v;

    for (i = 0; i < IHSM_ARRAY_LEN(salt_names); i++) {
        if (strcmp(s, salt_names[i].ptr) == 0) {
            *out = (int)salt_names[i].id;
            return 1;
        }
    }
    /* A number, including OpenSSL's negative specials (-1 digest, -2 auto,
     * -3 max), as OpenSSL's own RSA signature takes it. */
    v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < RSA_PSS_SALTLEN_MAX || v > 65535)
        return 0;
    *out = (int)v;
    return 1;
}

static int rsa_set_params(IHSM_SIG_CTX *c, const OSSL_PARAM params[])
{
    const OSSL_PARAM *p;
    const char *s = NULL;
    EVP_MD *md;
    size_t i;
    int pad = c->pad, salt = c->saltlen;

    if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE)) != NULL) {
        if (p->data_type == OSSL_PARAM_UTF8_STRING) {
            if (!OSSL_PARAM_get_utf8_string_ptr(p, &s))
                return 0;
            for (i = 0; i < IHSM_ARRAY_LEN(pad_names); i++) {
                if (strcmp(s, pad_names[i].ptr) == 0)
                    break;
            }
            if (i == IHSM_ARRAY_LEN(pad_names)) {
                ihsm_prov_raise(c->provctx, IHSM_R_INVALID_ARGUMENT,
                                "unknown RSA padding mode \"%s\": use pkcs1 or pss", s);
                return 0;
            }
            pad = (int)pad_names[i].id;
        } else if (!OSSL_PARAM_get_int(p, &pad)) {
            return 0;
        }
        if (pad != RSA_PKCS1_PADDING && pad != RSA_PKCS1_PSS_PADDING) {
            ihsm_prov_raise(c->provctx, IHSM_R_UNSUPPORTED,
                            "RSA padding mode %d is not supported by ihsm: use pkcs1 or pss", pad);
            return 0;
        }
        if (c->key != NULL && c->key->rsa_pss && pad != RSA_PKCS1_PSS_PADDING) {
            ihsm_prov_raise(c->provctx, IHSM_R_INVALID_ARGUMENT,
                            "an RSA-PSS key signs with PSS padding only");
            return 0;
        }
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN)) != NULL) {
        if (p->data_type == OSSL_PARAM_UTF8_STRING) {
            if (!OSSL_PARAM_get_utf8_string_ptr(p, &s) || !parse_saltlen(s, &salt)) {
                ihsm_prov_raise(c->provctx, IHSM_R_INVALID_ARGUMENT,
                                "PSS salt length \"%s\": use digest, max, auto or a number",
                                s != NULL ? s : "?");
                return 0;
            }
        } else if (!OSSL_PARAM_get_int(p, &salt) || salt < RSA_PSS_SALTLEN_MAX) {
            ihsm_prov_raise(c->provctx, IHSM_R_INVALID_ARGUMENT, "invalid PSS salt length");
            return 0;
        }
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST)) != NULL) {
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &s) || (md = ihsm_sig_fetch_md(c, s)) == NULL)
            return 0;
        EVP_MD_free(c->mgf1_md);
        c->mgf1_md = md;
    }
    c->pad = pad;
    c->saltlen = salt;
    return 1;
}

static int rsa_get_params(IHSM_SIG_CTX *c, OSSL_PARAM params[])
{
    OSSL_PARAM *p;
    const char *name = NULL;
    char num[16];
    size_t i;

    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PAD_MODE)) != NULL) {
        if (p->data_type == OSSL_PARAM_UTF8_STRING) {
            for (i = 0; i < IHSM_ARRAY_LEN(pad_names); i++) {
                if ((int)pad_names[i].id == c->pad)
                    name = pad_names[i].ptr;
            }
            if (name == NULL || !OSSL_PARAM_set_utf8_string(p, name))
                return 0;
        } else if (!OSSL_PARAM_set_int(p, c->pad)) {
            return 0;
        }
    }
    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN)) != NULL) {
        if (p->data_type == OSSL_PARAM_UTF8_STRING) {
            name = NULL;
            for (i = 0; i < IHSM_ARRAY_LEN(salt_names); i++) {
                if ((int)salt_names[i].id == c->saltlen)
                    name = salt_names[i].ptr;
            }
            if (name == NULL) {
                snprintf(num, sizeof(num), "%d", c->saltlen);
                name = num;
            }
            if (!OSSL_PARAM_set_utf8_string(p, name))
                return 0;
        } else if (!OSSL_PARAM_set_int(p, c->saltlen)) {
            return 0;
        }
    }
    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST)) != NULL
        && !OSSL_PARAM_set_utf8_string(p, mgf1_of(c) != NULL ? EVP_MD_get0_name(mgf1_of(c)) : ""))
        return 0;
    return 1;
}

static const IHSM_SIG_ALG rsa_alg = {
    "RSA", 0, rsa_key_ok, rsa_reset, rsa_sign_args, rsa_algor, rsa_verify_setup,
    rsa_set_params, rsa_get_params,
};

static const OSSL_PARAM rsa_gettable[] = {
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_size_t(OSSL_SIGNATURE_PARAM_DIGEST_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM rsa_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_PROPERTIES, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
    OSSL_PARAM_END
};

static void *rsa_newctx(void *provctx, const char *propq)
{
    return ihsm_sig_newctx(&rsa_alg, provctx, propq);
}

static const OSSL_PARAM *rsa_gettable_ctx_params(void *vctx, void *provctx)
{
    return rsa_gettable;
}

static const OSSL_PARAM *rsa_settable_ctx_params(void *vctx, void *provctx)
{
    return rsa_settable;
}

const OSSL_DISPATCH ihsm_rsa_signature_functions[] = {
    { OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))rsa_newctx },
    { OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))ihsm_sig_freectx },
    { OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))ihsm_sig_dupctx },
    { OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))ihsm_sig_sign_init },
    { OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))ihsm_sig_sign },
    { OSSL_FUNC_SIGNATURE_VERIFY_INIT, (void (*)(void))ihsm_sig_verify_init },
    { OSSL_FUNC_SIGNATURE_VERIFY, (void (*)(void))ihsm_sig_verify },
    { OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))ihsm_sig_digest_sign_init },
    { OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))ihsm_sig_digest_sign_update },
    { OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void))ihsm_sig_digest_sign_final },
    { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT, (void (*)(void))ihsm_sig_digest_verify_init },
    { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE, (void (*)(void))ihsm_sig_digest_verify_update },
    { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL, (void (*)(void))ihsm_sig_digest_verify_final },
    { OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void))ihsm_sig_get_ctx_params },
    { OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))rsa_gettable_ctx_params },
    { OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))ihsm_sig_set_ctx_params },
    { OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))rsa_settable_ctx_params },
    { 0, NULL }
};
