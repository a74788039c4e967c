/*
 * The shared signature context. signature.c holds the operate paths (init,
 * sign, digest-sign, verify, parameters); each signature_<alg>.c holds what
 * differs: which keys it takes, how a signing request is laid out for the
 * device, its AlgorithmIdentifier, its extra parameters, its dispatch table.
 */
#ifndef IHSM_SIGNATURE_H
#define IHSM_SIGNATURE_H

#include <openssl/core_dispatch.h>
#include <openssl/x509.h>
#include "prov_int.h"

typedef struct ihsm_sig_ctx IHSM_SIG_CTX;

typedef struct ihsm_sig_alg {
    const char *name;        /* for messages and the debug log */
    int message_only;        /* Ed25519: signs the message, one shot, no digest */
    /* Does this signature take this key? (raises nothing) */
    int (*key_ok)(const IHSM_PROV_KEY *k);
    /* Per-init defaults (padding...). */
    void (*reset)(IHSM_SIG_CTX *c);
    /* Write the SIGN arguments after the handle: u32 scheme, u32 md,
     * u32 mgf1_md, u32 salt_len, bytes tbs. Raises on error. */
    int (*sign_args)(IHSM_SIG_CTX *c, const unsigned char *tbs, size_t tbslen, ihsm_wr *w);
    /* The signature's AlgorithmIdentifier. Raises on error. */
    int (*algor)(IHSM_SIG_CTX *c, X509_ALGOR *alg);
    /* Carry padding and the like over to the default provider's verifier. */
    int (*verify_setup)(IHSM_SIG_CTX *c, EVP_PKEY_CTX *pctx);
    /* Algorithm-specific context parameters (may be NULL). */
    int (*set_params)(IHSM_SIG_CTX *c, const OSSL_PARAM params[]);
    int (*get_params)(IHSM_SIG_CTX *c, OSSL_PARAM params[]);
} IHSM_SIG_ALG;

struct ihsm_sig_ctx {
    IHSM_PROV_CTX *provctx;
    const IHSM_SIG_ALG *alg;
    IHSM_PROV_KEY *key;
    int op;                 /* IHSM_SIG_OP_* */
    EVP_MD *md;             /* chosen digest, NULL: none (yet) */
    EVP_MD_CTX *mdctx;      /* digest-sign/verify: the running hash */
    int digest_mode;        /* initialised by digest_*_init */
    int hashed;             /* data went into mdctx: md can no longer change */
    /* RSA */
    int pad;                /* RSA_PKCS1_PADDING or RSA_PKCS1_PSS_PADDING */
    int saltlen;            /* OpenSSL's convention: >= 0 or RSA_PSS_SALTLEN_* */
    EVP_MD *mgf1_md;        /* NULL: the same as md */
};

#define IHSM_SIG_OP_SIGN   1
#define IHSM_SIG_OP_VERIFY 2

/* Common entry points; each algorithm file wraps newctx with its alg. */
void *ihsm_sig_newctx(const IHSM_SIG_ALG *alg, void *provctx, const char *propq);
OSSL_FUNC_signature_freectx_fn ihsm_sig_freectx;
OSSL_FUNC_signature_dupctx_fn ihsm_sig_dupctx;
OSSL_FUNC_signature_sign_init_fn ihsm_sig_sign_init;
OSSL_FUNC_signature_sign_fn ihsm_sig_sign;
OSSL_FUNC_signature_verify_init_fn ihsm_sig_verify_init;
OSSL_FUNC_signature_verify_fn ihsm_sig_verify;
OSSL_FUNC_signature_digest_sign_init_fn ihsm_sig_digest_sign_init;
OSSL_FUNC_signature_digest_sign_update_fn ihsm_sig_digest_sign_update;
OSSL_FUNC_signature_digest_sign_final_fn ihsm_sig_digest_sign_final;
OSSL_FUNC_signature_digest_sign_fn ihsm_sig_digest_sign;
OSSL_FUNC_signature_digest_verify_init_fn ihsm_sig_digest_verify_init;
OSSL_FUNC_signature_digest_verify_update_fn ihsm_sig_digest_verify_update;
OSSL_FUNC_signature_digest_verify_final_fn ihsm_sig_digest_verify_final;
OSSL_FUNC_signature_digest_verify_fn ihsm_sig_digest_verify;
OSSL_FUNC_signature_get_ctx_params_fn ihsm_sig_get_ctx_params;
OSSL_FUNC_signature_set_ctx_params_fn ihsm_sig_set_ctx_params;

/* Helpers for the algorithm files. */
/* The device's digest id for c->md, or inferred from a digest's length
 * when no digest was chosen; -1 if the device does not know it. */
int ihsm_sig_md_id(IHSM_SIG_CTX *c, size_t tbslen);
/* EVP_MD from the default provider (IHSM_PROV_PUB_PROPQ), raising on error. */
EVP_MD *ihsm_sig_fetch_md(IHSM_SIG_CTX *c, const char *name);
/* Write the five SIGN fields. */
void ihsm_sig_write_args(ihsm_wr *w, uint32_t scheme, uint32_t md, uint32_t mgf1,
                         int32_t salt, const unsigned char *tbs, size_t tbslen);

#endif
