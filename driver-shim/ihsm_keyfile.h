/*
 * Masked key files: the form in which a device key lives outside ihsmd.
 *
 *   -----BEGIN IHSM MASKED KEY-----
 *   base64(DER of IhsmMaskedKey)
 *   -----END IHSM MASKED KEY-----
 *
 *   IhsmMaskedKey ::= SEQUENCE {
 *       version     INTEGER (1),
 *       keyType     INTEGER,           -- enum ihsm_key_type
 *       publicKey   OCTET STRING,      -- SubjectPublicKeyInfo DER (empty for AES)
 *       maskedBlob  OCTET STRING }     -- opaque to everyone but the device
 *
 * The blob is AES-256-GCM under the partition's masking key; without the
 * device it is useless. Parsing is done by OpenSSL's ASN.1 templates.
 */
#ifndef IHSM_KEYFILE_H
#define IHSM_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#define IHSM_KEYFILE_PEM_LABEL "IHSM MASKED KEY"
#define IHSM_MAX_BLOB 16384

typedef struct {
    uint32_t key_type;
    uint8_t *spki;  size_t spki_len;
    uint8_t *blob;  size_t blob_len;
} ihsm_keyfile;

/* DER <-> struct. decode returns 0, or -1 for anything malformed. */
int ihsm_keyfile_decode_der(const uint8_t *der, size_t len, ihsm_keyfile *kf);
int ihsm_keyfile_encode_der(const ihsm_keyfile *kf, uint8_t **der, size_t *len);
/* PEM text <-> struct (the label above). */
int ihsm_keyfile_decode_pem(const char *pem, size_t len, ihsm_keyfile *kf);
int ihsm_keyfile_encode_pem(const ihsm_keyfile *kf, char **pem, size_t *len);
int ihsm_keyfile_read(const char *path, ihsm_keyfile *kf);   /* -1 + errno/malformed */
int ihsm_keyfile_write(const char *path, const ihsm_keyfile *kf); /* 0600 */
void ihsm_keyfile_clear(ihsm_keyfile *kf);

#endif
