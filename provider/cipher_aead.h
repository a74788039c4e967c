/*
 * AEAD ciphers through the device: AES-128-GCM, AES-256-GCM and
 * ChaCha20-Poly1305 (cipher_aead.c: the context, buffering, parameters and
 * routing; cipher_tls.c: TLS 1.2 records; cipher_key.c: keys in the device;
 * cipher_algs.c: dispatch tables).
 *
 * The device seals and opens whole messages (AEAD_SEAL / AEAD_OPEN), so
 * update() buffers and final() makes the one device call; TLS 1.2 records
 * (the TLS1_AAD parameter set) and EVP_Cipher() are one call each.
 *
 * Two kinds of key:
 *  - device keys (ihsm:NAME, a masked key file, a masked blob or a loaded
 *    handle, given as a context parameter): always sealed in the device;
 *  - raw keys handed to init() (TLS record keys from libssl): kept in
 *    process too, so records below ihsm-aead-min-size are sealed by the
 *    default provider's cipher; larger ones go to the device under a
 *    session key (KEY_LOAD_SESSION), released when the context is freed or
 *    re-keyed.
 */
#ifndef IHSM_CIPHER_AEAD_H
#define IHSM_CIPHER_AEAD_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/core_dispatch.h>
#include <openssl/evp.h>
#include "ihsm_prov.h"

/* Properties of the ciphers. ihsm.aead=yes lets openssl.cnf steer
 * unqualified fetches (libssl's record ciphers) to them with
 * `default_properties = ?ihsm.aead=yes`; they are offered at all only when
 * ihsm-route includes aead. */
#define IHSM_AEAD_PROPS "provider=ihsm,ihsm.aead=yes"

/* Cipher context parameters of our own (docs/configuration.md, "AEAD"). */
#define IHSM_CIPHER_PARAM_KEY        "ihsm-key"        /* UTF8: ihsm:NAME or a masked key file */
#define IHSM_CIPHER_PARAM_KEY_BLOB   "ihsm-key-blob"   /* octet string: a masked blob */
#define IHSM_CIPHER_PARAM_MIN_SIZE   "ihsm-aead-min-size" /* size_t: raw keys, in-process below */
#define IHSM_CIPHER_PARAM_ROUTE      "ihsm-route"      /* get, UTF8: "device" / "process" */

#define IHSM_AEAD_MIN_NEVER SIZE_MAX /* ihsm-aead-min-size = never */
#define IHSM_AEAD_MAX_IV  128  /* the device's and OpenSSL's GCM limit */
#define IHSM_AEAD_TAG_LEN 16
#define IHSM_AEAD_TLS_AAD_LEN 13     /* EVP_AEAD_TLS1_AAD_LEN */
#define IHSM_GCM_TLS_FIXED_IV_LEN 4
#define IHSM_GCM_TLS_EXPLICIT_IV_LEN 8

typedef struct ihsm_aead_alg {
    const char *name;  /* for messages */
    uint32_t dev_alg;  /* IHSM_AEAD_* */
    size_t keylen;     /* bytes */
    unsigned mode;     /* EVP_CIPH_GCM_MODE, or 0 (ChaCha20-Poly1305) */
    int gcm;
} IHSM_AEAD_ALG;

extern const IHSM_AEAD_ALG ihsm_aead_aes128gcm, ihsm_aead_aes256gcm, ihsm_aead_chacha;

/* A key in the device, shared by duplicated contexts. */
typedef struct ihsm_aead_devkey IHSM_AEAD_DEVKEY;

enum { IV_NONE = 0, IV_SET, IV_USED };

typedef struct ihsm_aead_ctx {
    IHSM_PROV_CTX *prov;
    const IHSM_AEAD_ALG *alg;
    int enc;

    /* a raw key (init(key)): here and, once a large record needs it, in the
     * device as a session key */
    unsigned char raw[32];
    int have_raw;
    uint32_t sess;          /* session key handle, 0: not loaded */
    int sess_full;          /* the device had no room: stay in process */
    size_t min_size;        /* raw keys: messages shorter go in process;
                               IHSM_AEAD_MIN_NEVER: all of them */
    EVP_CIPHER_CTX *sw;     /* the in-process cipher (another provider) */
    int sw_keyed;
    size_t sw_ivlen;

    IHSM_AEAD_DEVKEY *dev;  /* a device key: everything in the device */

    /* the nonce */
    unsigned char iv[IHSM_AEAD_MAX_IV];
    size_t ivlen;
    int iv_state;           /* IV_NONE, IV_SET, IV_USED: never twice */
    int iv_gen;             /* GCM TLS: fixed part set, the rest counts */
    int iv_inc_pending;     /* GCM: TLS1_GET_IV_GEN gave this IV out: count on after use */
    uint64_t tls_records;   /* GCM TLS records sealed under this key */

    /* TLS 1.2 record mode: AEAD_TLS1_AAD was set, the next update() is
     * a whole record */
    unsigned char tls_aad[IHSM_AEAD_TLS_AAD_LEN];
    int tls_aad_set;
    size_t tls_payload;     /* ChaCha20-Poly1305: payload bytes of that record */
    size_t tls_pad;

    /* the message being built */
    unsigned char *aad;
    size_t aad_len, aad_cap;
    unsigned char *data;
    size_t data_len, data_cap;
    int data_started;
    int streaming;          /* raw key that stays in process: the text goes
                               straight through sw, no buffering */
    int done;               /* final() or cipher() has run for this message */
    unsigned char tag[IHSM_AEAD_TAG_LEN];
    size_t taglen;          /* decrypt: the caller's tag length; encrypt: 16 after final */
    int tag_set;
    const char *route;      /* where the last message went: "device", "process" */
} IHSM_AEAD_CTX;

/* ---- cipher_algs.c: what provider.c offers for OSSL_OP_CIPHER ---- */
extern const OSSL_ALGORITHM ihsm_cipher_algs[];

/* ---- cipher_aead.c ---- */
void *ihsm_aead_newctx(void *provctx, const IHSM_AEAD_ALG *alg);
void ihsm_aead_freectx(void *vctx);
void *ihsm_aead_dupctx(void *vctx);
int ihsm_aead_einit(void *vctx, const unsigned char *key, size_t keylen,
                    const unsigned char *iv, size_t ivlen, const OSSL_PARAM params[]);
int ihsm_aead_dinit(void *vctx, const unsigned char *key, size_t keylen,
                    const unsigned char *iv, size_t ivlen, const OSSL_PARAM params[]);
int ihsm_aead_update(void *vctx, unsigned char *out, size_t *outl, size_t outsize,
                     const unsigned char *in, size_t inl);
int ihsm_aead_final(void *vctx, unsigned char *out, size_t *outl, size_t outsize);
int ihsm_aead_cipher(void *vctx, unsigned char *out, size_t *outl, size_t outsize,
                     const unsigned char *in, size_t inl);
int ihsm_aead_get_params(OSSL_PARAM params[], const IHSM_AEAD_ALG *alg);
const OSSL_PARAM *ihsm_aead_gettable_params(void *provctx);
int ihsm_aead_get_ctx_params(void *vctx, OSSL_PARAM params[]);
int ihsm_aead_set_ctx_params(void *vctx, const OSSL_PARAM params[]);
const OSSL_PARAM *ihsm_aead_gcm_gettable_ctx_params(void *cctx, void *provctx);
const OSSL_PARAM *ihsm_aead_gcm_settable_ctx_params(void *cctx, void *provctx);
const OSSL_PARAM *ihsm_aead_chacha_gettable_ctx_params(void *cctx, void *provctx);
const OSSL_PARAM *ihsm_aead_chacha_settable_ctx_params(void *cctx, void *provctx);
/* Seal (tag out) or open (tag in) one whole message, in the device or in
 * process as the key and size say. Raises an error and returns 0 on
 * failure; an open that fails leaves nothing in out. */
int ihsm_aead_oneshot(IHSM_AEAD_CTX *c, const unsigned char *iv, size_t ivlen,
                      const unsigned char *aad, size_t aad_len,
                      const unsigned char *in, size_t len, unsigned char *out,
                      unsigned char *tag, size_t taglen);

/* ---- cipher_tls.c ---- */
/* AEAD_TLS1_AAD: returns the padding (the tag length), 0 on error. */
size_t ihsm_aead_tls_init(IHSM_AEAD_CTX *c, const unsigned char *aad, size_t len);
/* AEAD_TLS1_IV_FIXED; len (size_t)-1 restores a whole GCM IV. */
int ihsm_aead_tls_set_fixed(IHSM_AEAD_CTX *c, const unsigned char *iv, size_t len);
/* GCM AEAD_TLS1_GET_IV_GEN / AEAD_TLS1_SET_IV_INV */
int ihsm_aead_gcm_iv_gen(IHSM_AEAD_CTX *c, unsigned char *out, size_t len);
int ihsm_aead_gcm_set_iv_inv(IHSM_AEAD_CTX *c, const unsigned char *in, size_t len);
/* A message used the IV TLS1_GET_IV_GEN handed out: move the counter on. */
void ihsm_aead_gcm_iv_used(IHSM_AEAD_CTX *c);
/* The record after AEAD_TLS1_AAD, in one call: *outl as libssl expects. */
int ihsm_aead_tls_record(IHSM_AEAD_CTX *c, unsigned char *out, size_t *outl,
                         const unsigned char *in, size_t len);

/* ---- cipher_key.c ---- */
/* Load a device key from ihsm:NAME or a masked key file path, or from a
 * masked blob; checks it is an AES key this algorithm can use. */
IHSM_AEAD_DEVKEY *ihsm_aead_devkey_from_ref(IHSM_AEAD_CTX *c, const char *ref);
IHSM_AEAD_DEVKEY *ihsm_aead_devkey_from_blob(IHSM_AEAD_CTX *c, const unsigned char *blob,
                                             size_t len);
void ihsm_aead_devkey_up_ref(IHSM_AEAD_DEVKEY *k);
void ihsm_aead_devkey_free(IHSM_AEAD_DEVKEY *k);
/* Device usage the key allows (IHSM_USAGE_ENCRYPT/DECRYPT). */
uint32_t ihsm_aead_devkey_usage(const IHSM_AEAD_DEVKEY *k);
/* KEY_RELEASE the context's session key, if it has one. */
void ihsm_aead_release_session(IHSM_AEAD_CTX *c);
/* AEAD_SEAL / AEAD_OPEN with the context's device key or session key
 * (loaded on first use, loaded again if the device lost it). len bytes of
 * text from in to out; seal writes taglen bytes of tag, open checks them.
 * Returns the status; raises an error for anything but IHSM_OK except
 * IHSM_ERR_LIMIT_KEYS when loading a session key (the caller falls back). */
int ihsm_aead_device(IHSM_AEAD_CTX *c, int seal, const unsigned char *iv, size_t ivlen,
                     const unsigned char *aad, size_t aad_len, const unsigned char *in,
                     size_t len, unsigned char *out, unsigned char *tag, size_t taglen);
/* Largest aad + text one device call carries. */
size_t ihsm_aead_device_max(size_t ivlen);

#endif
