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
/* Forget the device part (a public-only copy); an ephemeral key's handle is
 * released once no copy holds it. */
void ihsm_prov_key_drop_private(IHSM_PROV_KEY *k);
/* The device's digest id for md (enum ihsm_md), or -1. */
int ihsm_prov_md_id(const EVP_MD *md);

#define IHSM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- key exchange (prov_key.c, keymgmt_*.c, exchange.c, capabilities.c) ---- */
/*
 * With ihsm-route including derive, ihsm's EC and X25519 key management and
 * its ECDH and X25519 key exchange carry this property as well, so that
 * openssl.cnf's `default_properties = ?ihsm.derive=yes` makes them the ones
 * an unqualified fetch (libssl's ephemeral keys) finds first.
 */
#define IHSM_PROP_DERIVE "ihsm.derive=yes"
/* The internal names of ihsm's TLS groups (TLS-GROUP capability): libssl
 * asks for its ephemeral keys by these, so the key management knows a key is
 * for ECDHE (usage derive, released when freed) and not a signing key. */
#define IHSM_KEX_GROUP_P256   "ihsm-ecdhe-P-256"
#define IHSM_KEX_GROUP_P384   "ihsm-ecdhe-P-384"
#define IHSM_KEX_GROUP_X25519 "ihsm-ecdhe-X25519"

/* Sizes for the key exchange types: raw public value, shared secret (0 for
 * other types). */
size_t ihsm_prov_kex_pub_len(uint32_t type);
size_t ihsm_prov_kex_secret_len(uint32_t type);
/* Take a device SPKI for a key exchange key without the decoder: keep the
 * DER, read the raw public value out of it (the EVP_PKEY comes on demand). */
int ihsm_prov_key_set_spki_raw(IHSM_PROV_KEY *k, const uint8_t *spki, size_t len);
/* k's handle is an ephemeral key of this process: KEY_RELEASE it when the
 * last key object sharing it is freed. */
int ihsm_prov_key_make_ephemeral(IHSM_PROV_KEY *k);

/* capabilities.c: TLS-GROUP (only with ihsm-route including derive). */
OSSL_FUNC_provider_get_capabilities_fn ihsm_prov_get_capabilities;

#endif
