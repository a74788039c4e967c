/*
 * Internals shared by the crypto core's files (device/crypto_*.c). Nothing
 * outside crypto_*.c includes this: the daemon sees only dev_crypto.h.
 *
 * Every OpenSSL call here goes to our own OSSL_LIB_CTX with only the
 * default provider loaded, never to the process-wide default context, so an
 * openssl.cnf that loads the ihsm provider can never route the device's own
 * crypto back into the device.
 */
#ifndef IHSM_CRYPTO_INTERNAL_H
#define IHSM_CRYPTO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

#include "dev_crypto.h"

/* A key in device memory. Asymmetric keys are an EVP_PKEY whose private
 * BIGNUMs / raw key bytes OpenSSL keeps in its secure heap; AES keys are raw
 * bytes in OPENSSL_secure_malloc memory. */
struct ihsm_key {
    uint32_t type;  /* enum ihsm_key_type */
    uint32_t bits;  /* RSA modulus, curve size (256/384), 256 for 25519, AES */
    uint32_t usage; /* IHSM_USAGE_*, never 0 once made */
    size_t label_len;
    uint8_t label[IHSM_MAX_LABEL];
    EVP_PKEY *pkey;  /* RSA, EC, Ed25519, X25519 */
    uint8_t *secret; /* AES: secure heap */
    size_t secret_len;
};

/* Sizes the device accepts */
#define IHSM_RSA_MIN_BITS 2048
#define IHSM_RSA_MAX_BITS 8192 /* imported keys; generation: 2048/3072/4096 */
#define IHSM_MAX_SIG      (IHSM_RSA_MAX_BITS / 8)
#define IHSM_MAX_KEY_DER  16384 /* PKCS#8 of the largest RSA key, with room */

/* ---- crypto_init.c ---- */
OSSL_LIB_CTX *ihsm_crypto_libctx(void);
/* Enter the failed state (sticky until restart): self-test, pairwise test of
 * a generated key, or the continuous RNG test failed. */
void ihsm_crypto_set_failed(const char *why);
int ihsm_crypto_debug_on(void);
/* crypto_selftest.c: is name in IHSM_SELFTEST_FAIL (a test forced to fail:
 * a known-answer test's name, "RNG-CONTINUOUS" or "PCT")? */
int ihsm_crypto_forced(const char *name);
void ihsm_crypto_debug(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* Log (in debug mode) and drop this thread's OpenSSL error queue: a client
 * error must not leave entries behind for the next request on the thread. */
void ihsm_crypto_drop_errors(const char *where);
/* EVP_MD for an IHSM_MD_* value; NULL for NONE or unknown. Fetched once. */
const EVP_MD *ihsm_crypto_md(uint32_t md);
/* Cached ciphers: "AES-128-GCM", "AES-256-GCM", "ChaCha20-Poly1305",
 * "AES-256-WRAP-PAD". */
const EVP_CIPHER *ihsm_crypto_cipher(const char *name);
/* Room in the secure heap for one more key and its operations? A full heap
 * must refuse new keys (IHSM_ERR_LIMIT_KEYS) before anything is generated:
 * an allocation failing inside a pairwise test would otherwise look like a
 * broken generator and fail the whole device. */
#define IHSM_SECURE_HEADROOM (32u * 1024)
int ihsm_crypto_secure_room(void);
/* Map a writer error to a status (IHSM_ERR_LIMIT_FRAME when it ran out). */
int ihsm_crypto_wr_status(const ihsm_wr *w);

/* ---- crypto_keys.c ---- */
/* Validates type/bits/usage/label; usage 0 becomes the natural usage.
 * bits 0 is allowed where the type fixes its size (and for import). */
int ihsm_key_check_params(uint32_t type, uint32_t bits, uint32_t *usage,
                          size_t label_len, int for_generate);
ihsm_key *ihsm_key_new(uint32_t type, uint32_t bits, uint32_t usage,
                       const uint8_t *label, size_t label_len);
/* Bits of an asymmetric EVP_PKEY as the device reports them (see keys.c). */
/* Adopt pkey (or AES bytes) into k after checking it is of k->type and,
 * when k->bits != 0, of that size (k->bits is filled in when 0).
 * Returns IHSM_OK or IHSM_ERR_BAD_INPUT. Takes ownership on success only. */
int ihsm_key_adopt_pkey(ihsm_key *k, EVP_PKEY *pkey);
int ihsm_key_adopt_secret(ihsm_key *k, const uint8_t *raw, size_t len);
/* The private key as PKCS#8 DER (AES: raw bytes) in a secure-heap buffer;
 * free with OPENSSL_secure_clear_free(*der, *len). */
int ihsm_key_export_private(const ihsm_key *k, uint8_t **der, size_t *len);
/* Decode a PKCS#8 DER (AES: raw bytes) of k->type into k. */
int ihsm_key_import_private(ihsm_key *k, const uint8_t *der, size_t len);
/* Pairwise consistency test for every usage of the key pair. */
int ihsm_key_pct(const ihsm_key *k);

/* ---- crypto_mem.c ---- */
/* libcrypto's frees wipe the block first (CRYPTO_set_mem_functions): 1 if
 * installed, 0 if libcrypto had already allocated (too late). */
int ihsm_crypto_mem_init(void);

/* ---- crypto_kdf.c ---- */
int ihsm_crypto_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt,
                            size_t salt_len, const uint8_t *info, size_t info_len,
                            uint8_t *out, size_t outlen);

/* ---- crypto_sign.c ---- */
typedef struct {
    uint32_t scheme;  /* enum ihsm_sig_scheme */
    uint32_t md;      /* enum ihsm_md */
    uint32_t mgf1_md; /* PSS; 0 = md */
    int32_t salt_len; /* PSS: IHSM_PSS_SALT_* or a length */
} ihsm_sig_params;
/* Sign / verify with any EVP_PKEY (device keys, self-test keys). Checks the
 * scheme fits the key (IHSM_ERR_UNSUPPORTED) and every length
 * (IHSM_ERR_BAD_INPUT). sig has room for *siglen bytes; *siglen gets the
 * signature length. verify returns IHSM_OK only for a good signature. */
int ihsm_pkey_sign(EVP_PKEY *pkey, uint32_t type, const ihsm_sig_params *sp,
                   const uint8_t *tbs, size_t tbslen, uint8_t *sig, size_t *siglen);
int ihsm_pkey_verify(EVP_PKEY *pkey, uint32_t type, const ihsm_sig_params *sp,
                     const uint8_t *tbs, size_t tbslen, const uint8_t *sig,
                     size_t siglen);

/* ---- crypto_derive.c ---- */
/* Shared secret of pkey with peer (same type); out has room for *outlen.
 * Rejects an all-zero result (X25519 small-order peers). */
int ihsm_pkey_derive(EVP_PKEY *pkey, EVP_PKEY *peer, uint8_t *out, size_t *outlen);
/* Per-curve templates for peer keys; made by ihsm_crypto_init. */
int ihsm_crypto_derive_init(void);
void ihsm_crypto_derive_cleanup(void);

/* ---- crypto_aead.c ---- */
/* One-shot AEAD on raw buffers: seal writes text_len + tag_len bytes to out;
 * open reads ct||tag (text_len includes the tag) and writes text_len -
 * tag_len bytes, IHSM_ERR_AEAD_TAG on a bad tag. Lengths checked. */
int ihsm_aead_raw(uint32_t alg, int seal, const uint8_t *key, size_t key_len,
                  const uint8_t *iv, size_t iv_len, const uint8_t *aad,
                  size_t aad_len, const uint8_t *text, size_t text_len,
                  size_t tag_len, uint8_t *out);

/* ---- crypto_random.c ---- */
/* The device generator: our libctx's private DRBG behind the continuous
 * health test. IHSM_ERR_DEVICE_FAILED after a repeat. */
int ihsm_crypto_rand(uint8_t *buf, size_t n);

/* ---- small helpers ---- */
static inline int ihsm_key_has(const ihsm_key *k, uint32_t usage)
{
    return (k->usage & usage) == usage;
}

#endif
