/*
 * What the KEYMGMT implementations share. Each keymgmt_<alg>.c holds only
 * its description, its key generation parameters, its parameter tables and
 * its dispatch table (the layout of OpenSSL's providers/implementations).
 */
#ifndef IHSM_KEYMGMT_COMMON_H
#define IHSM_KEYMGMT_COMMON_H

#include <openssl/core_dispatch.h>
#include "prov_int.h"

typedef struct ihsm_km_desc {
    const char *name;     /* KEYMGMT (and default provider key type) name */
    int rsa_pss;          /* keys are PSS-only RSA keys */
} IHSM_KM_DESC;

/* Key generation context. */
typedef struct ihsm_km_gen {
    IHSM_PROV_CTX *ctx;
    const IHSM_KM_DESC *desc;
    int selection;
    uint32_t type;        /* enum ihsm_key_type; 0 = not chosen yet (EC) */
    uint32_t bits;        /* RSA only */
    char *name;           /* IHSM_PKEY_PARAM_NAME: persist under this name */
    int kex;              /* an ephemeral key for ECDHE (ihsm's TLS group names, or a
                             template made for one): usage derive, released when freed */
} IHSM_KM_GEN;

/* Shared operations (keydata is an IHSM_PROV_KEY *). */
OSSL_FUNC_keymgmt_new_fn ihsm_km_new;
OSSL_FUNC_keymgmt_free_fn ihsm_km_free;
OSSL_FUNC_keymgmt_has_fn ihsm_km_has;
OSSL_FUNC_keymgmt_match_fn ihsm_km_match;
OSSL_FUNC_keymgmt_validate_fn ihsm_km_validate;
OSSL_FUNC_keymgmt_get_params_fn ihsm_km_get_params;
OSSL_FUNC_keymgmt_export_fn ihsm_km_export;
OSSL_FUNC_keymgmt_dup_fn ihsm_km_dup;
OSSL_FUNC_keymgmt_gen_cleanup_fn ihsm_km_gen_cleanup;
OSSL_FUNC_keymgmt_gen_fn ihsm_km_gen;

int ihsm_km_import(const IHSM_KM_DESC *d, void *keydata, int selection,
                   const OSSL_PARAM params[]);
void *ihsm_km_load(const IHSM_KM_DESC *d, const void *reference, size_t reference_sz);
IHSM_KM_GEN *ihsm_km_gen_init(const IHSM_KM_DESC *d, void *provctx, int selection);
/* The parameters every algorithm takes at generation (IHSM_PKEY_PARAM_NAME). */
int ihsm_km_gen_set_common(IHSM_KM_GEN *g, const OSSL_PARAM params[]);

/* "P-256", "prime256v1", "secp256r1"... -> IHSM_KEY_EC_P256/P384, 0 if neither. */
uint32_t ihsm_km_ec_type(const char *group);

/* EVP_PKEY_set1_encoded_public_key (a TLS key share) on a key of this type
 * (0: the key's own, e.g. the curve of a parameters-only EC key). */
int ihsm_km_set_encoded_params(void *keydata, uint32_t type, const OSSL_PARAM params[]);

#endif
