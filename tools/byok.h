/*
 * Client side of key import (BYOK, docs/protocol.md "Import"): the
 * CKM_RSA_AES_KEY_WRAP form. A fresh AES-256 key is RSA-OAEP encrypted
 * (SHA-256, MGF1-SHA-256, no label) to the device's import key, and wraps
 * the private key's PKCS#8 DER (raw bytes for AES keys) with AES key wrap
 * with padding (RFC 5649). Pure: no device, no I/O.
 */
#ifndef IHSM_BYOK_H
#define IHSM_BYOK_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

#define IHSM_BYOK_KEK_LEN 32

/* wrapped = OAEP(import_pub, kek) || KWP(kek, secret). *out is
 * OPENSSL_malloc'd. Returns 0, or -1 (OpenSSL error queue set). */
int ihsm_byok_wrap(EVP_PKEY *import_pub, const uint8_t *secret, size_t secret_len,
                   uint8_t **out, size_t *out_len);
/* The same with a caller-chosen kek (tests; the tool always uses a fresh one). */
int ihsm_byok_wrap_with(EVP_PKEY *import_pub, const uint8_t kek[IHSM_BYOK_KEK_LEN],
                        const uint8_t *secret, size_t secret_len,
                        uint8_t **out, size_t *out_len);
/* PKCS#8 PrivateKeyInfo DER; free with OPENSSL_clear_free(*der, *len). */
int ihsm_byok_pkcs8(EVP_PKEY *pk, uint8_t **der, size_t *len);
/* Device key type and bits of a private key: 0, or -1 with a reason in
 * why (for the user) when the device cannot hold it. */
int ihsm_byok_key_type(EVP_PKEY *pk, uint32_t *type, uint32_t *bits,
                       char *why, size_t why_len);

#endif
