/*
 * Key I/O inside the provider: the decoder, encoder and store pieces share
 * these (the dispatch tables ihsm_prov.h does not list, and a few helpers
 * over masked key files and SubjectPublicKeyInfo).
 */
#ifndef IHSM_PROV_IO_H
#define IHSM_PROV_IO_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/bio.h>
#include "ihsm_prov.h"

/* The DER → key step, one table per key type (decoder_keyfile.c); the PEM
 * → DER step is ihsm_keyfile_decoder_functions from ihsm_prov.h. */
extern const OSSL_DISPATCH ihsm_rsa_keyfile_decoder_functions[];
extern const OSSL_DISPATCH ihsm_rsapss_keyfile_decoder_functions[];
extern const OSSL_DISPATCH ihsm_ec_keyfile_decoder_functions[];
extern const OSSL_DISPATCH ihsm_ed25519_keyfile_decoder_functions[];
extern const OSSL_DISPATCH ihsm_x25519_keyfile_decoder_functions[];
/* The masked key as DER (encoder_keyfile.c). */
extern const OSSL_DISPATCH ihsm_keyfile_der_encoder_functions[];

/* The data structure name our PEM step hands to the DER step. */
#define IHSM_KEYFILE_STRUCTURE "ihsm"

/* The keymgmt name for a masked key file before it is loaded ("RSA",
 * "RSA-PSS", "EC", "ED25519", "X25519"; NULL for AES keys), as
 * ihsm_prov_key_keymgmt_name() says for a loaded key: RSA-PSS is told
 * apart by the SPKI's algorithm. */
const char *ihsm_io_keyfile_type_name(uint32_t key_type, const uint8_t *spki,
                                      size_t spki_len);

/* The algorithm OID of a SubjectPublicKeyInfo as a NID (NID_undef if it
 * does not parse). Parsed with ASN.1 primitives, not with d2i_PUBKEY: that
 * would run the decoders again from inside one. */
int ihsm_io_spki_nid(const uint8_t *spki, size_t len);

/* A copy of the key's SubjectPublicKeyInfo (an RSA-PSS key's already says
 * id-RSASSA-PSS: ihsm_prov_key_set_public); *out is OPENSSL_malloc'd. */
int ihsm_io_key_spki(const IHSM_PROV_KEY *k, uint8_t **out, size_t *outlen);

/* The masked blob of a key: its own copy, or asked of the device (KEY_MASK)
 * for a named key found by URI. *out is OPENSSL_malloc'd. */
int ihsm_io_key_blob(IHSM_PROV_KEY *k, uint8_t **out, size_t *outlen);

/* Encoder selection rule (OpenSSL's key2any): private, public, parameters
 * are levels, each including the next; mask says what the encoder writes. */
int ihsm_io_check_selection(int selection, int mask);

/* A masked key file that is ours failed to load: say why on stderr too,
 * from the error just raised. Some callers try PEM_read_bio_PrivateKey,
 * drop its error and carry on (HAProxy reads a crt file's key, clears the
 * error queue, then reports "No Private Key found"): without this line
 * the user would never learn the device's answer. */
void ihsm_io_report_load_error(void);

/* Context of a decoder or encoder instance: only the provider. */
typedef struct {
    IHSM_PROV_CTX *provctx;
} ihsm_io_ctx;
void *ihsm_io_newctx(void *provctx);
void ihsm_io_freectx(void *ctx);

/* A provider-side BIO over a core BIO, through the provider's libctx. */
BIO *ihsm_io_bio(IHSM_PROV_CTX *ctx, OSSL_CORE_BIO *cbio);

#endif
