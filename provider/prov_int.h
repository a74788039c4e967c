/*
 * Declarations shared by the provider core files (provider.c, prov_err.c,
 * prov_key.c, keymgmt_*.c, signature*.c) that are not part of the
 * provider-wide contract in ihsm_prov.h.
 */
#ifndef IHSM_PROV_INT_H
#define IHSM_PROV_INT_H

#include <openssl/core.h>
#include "ihsm_prov.h"

/* ---- prov_err.c ---- */
/* Remember the core's error upcalls (once per OSSL_provider_init). */
void ihsm_prov_err_setup(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in);
const OSSL_ITEM *ihsm_prov_reason_strings(void);
/* Configuration errors during OSSL_provider_init: our reason strings are
 * only registered once init has succeeded, so these are raised as
 * OpenSSL's PROV_R_INVALID_CONFIG_DATA with the sentence as data. */
void ihsm_prov_raise_config(const OSSL_CORE_HANDLE *handle, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The last configuration error raised (for stderr when init fails). */
const char *ihsm_prov_config_error(void);

/* ---- prov_key.c ---- */
/* "key 'web'", "key handle 0x12", "public-only RSA key" for messages and logs. */
const char *ihsm_prov_key_desc(const IHSM_PROV_KEY *k, char *buf, size_t len);
/* A second key object for the same device key (refcount 1). */
IHSM_PROV_KEY *ihsm_prov_key_dup(const IHSM_PROV_KEY *k);
/* The device's digest id for md (enum ihsm_md), or -1. */
int ihsm_prov_md_id(const EVP_MD *md);

#define IHSM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
