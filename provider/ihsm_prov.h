/*
 * ihsm provider: shared declarations. The provider context (configuration
 * from openssl.cnf and the environment, the offload queue) and the key
 * object every operation works on (a device handle plus the public key).
 */
#ifndef IHSM_PROV_H
#define IHSM_PROV_H

#include <stdint.h>
#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/evp.h>
#include "ihsm_keyfile.h"
#include "ihsm_offload.h"
#include "ihsm_proto.h"

/* ---- provider context ---- */
typedef struct ihsm_prov_ctx {
    const OSSL_CORE_HANDLE *handle;
    OSSL_LIB_CTX *libctx;      /* child of the application's: for public-key work */
    /* configuration: openssl.cnf parameters, overridden by the environment */
    char *socket_path;         /* ihsm-socket / IHSM_SOCKET */
    char *credential_path;     /* ihsm-credential / IHSM_CREDENTIAL */
    unsigned batch_max;        /* ihsm-batch-size */
    unsigned delay_us;         /* ihsm-batch-delay-us */
    unsigned timeout_ms;       /* ihsm-timeout-ms */
    unsigned route;            /* IHSM_ROUTE_* bits: which operations go to the device */
    ihsm_queue *queue;         /* created lazily, see ihsm_prov_queue() */
    void *queue_lock;          /* guards lazy creation */
} IHSM_PROV_CTX;

#define IHSM_ROUTE_SIGN   0x1u
#define IHSM_ROUTE_DERIVE 0x2u
#define IHSM_ROUTE_AEAD   0x4u

/* The queue, created on first use (so nginx's master can fork first). NULL
 * with an error raised (ERR_raise) when the device cannot be reached. */
ihsm_queue *ihsm_prov_queue(IHSM_PROV_CTX *ctx);

/* ---- key object ---- */
typedef struct ihsm_prov_key {
    IHSM_PROV_CTX *ctx;
    int refcnt;                /* atomic */
    uint32_t type, bits, usage;/* enum ihsm_key_type, bits, IHSM_USAGE_* */
    int rsa_pss;               /* created through the RSA-PSS keymgmt */
    uint8_t *blob; size_t blob_len;  /* masked blob: to load it again */
    char *name;                /* named key (ihsm: URI), if any */
    uint32_t handle;           /* device handle; 0 = not loaded (atomic) */
    uint8_t *spki; size_t spki_len;  /* public key, SubjectPublicKeyInfo DER */
    EVP_PKEY *pub;             /* the same public key in the default provider:
                                  for export, parameters, match and verify */
} IHSM_PROV_KEY;

IHSM_PROV_KEY *ihsm_prov_key_new(IHSM_PROV_CTX *ctx);
int ihsm_prov_key_up_ref(IHSM_PROV_KEY *k);
void ihsm_prov_key_free(IHSM_PROV_KEY *k);
/* Fill type/bits/usage/spki/pub from a device answer's public key. */
int ihsm_prov_key_set_public(IHSM_PROV_KEY *k, const uint8_t *spki, size_t len);
/* Load a masked key file into the device (KEY_UNMASK); raises a clear error
 * ("corrupt or foreign masked key file", "device not running") on failure. */
IHSM_PROV_KEY *ihsm_prov_key_from_keyfile(IHSM_PROV_CTX *ctx, const ihsm_keyfile *kf);
/* A named key in the device (KEY_FIND); NULL + error if unknown. */
IHSM_PROV_KEY *ihsm_prov_key_from_name(IHSM_PROV_CTX *ctx, const char *name);
/* Run a keyed command: payload = u32 handle followed by args. Loads the key
 * if needed and, if the device answers IHSM_ERR_BAD_HANDLE (it restarted),
 * loads it again from its blob or name and retries once. Returns the status;
 * raises an OpenSSL error for anything but IHSM_OK. */
int ihsm_prov_key_call(IHSM_PROV_KEY *k, uint16_t cmd, const ihsm_wr *args,
                       ihsm_result *res);

/* ---- errors: ERR_raise(ERR_LIB_PROV-style) with ihsm's own reason strings ---- */
enum ihsm_prov_reason {
    IHSM_R_DEVICE_UNREACHABLE = 1,
    IHSM_R_BAD_CREDENTIAL,
    IHSM_R_DEVICE_ERROR,
    IHSM_R_BAD_KEYFILE,
    IHSM_R_UNKNOWN_KEY,
    IHSM_R_USAGE_NOT_ALLOWED,
    IHSM_R_UNSUPPORTED,
    IHSM_R_INVALID_ARGUMENT,
    IHSM_R_BAD_CONFIG,
};
/* Raise reason with a formatted detail; device statuses map to reasons. */
void ihsm_prov_raise(IHSM_PROV_CTX *ctx, int reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ihsm_prov_raise_status(IHSM_PROV_CTX *ctx, int status, const char *what);

/* Debug log: IHSM_DEBUG=1 or the ihsm-debug parameter. */
#define IHSM_PROV_DBG(...) ihsm_dbg(__VA_ARGS__)

/* ---- dispatch tables (one file each) ---- */
extern const OSSL_DISPATCH ihsm_rsa_keymgmt_functions[];
extern const OSSL_DISPATCH ihsm_rsapss_keymgmt_functions[];
extern const OSSL_DISPATCH ihsm_ec_keymgmt_functions[];
extern const OSSL_DISPATCH ihsm_ed25519_keymgmt_functions[];
extern const OSSL_DISPATCH ihsm_rsa_signature_functions[];
extern const OSSL_DISPATCH ihsm_ecdsa_signature_functions[];
extern const OSSL_DISPATCH ihsm_ed25519_signature_functions[];
extern const OSSL_DISPATCH ihsm_keyfile_decoder_functions[];   /* PEM/DER "IHSM MASKED KEY" */
extern const OSSL_DISPATCH ihsm_spki_der_encoder_functions[];   /* SubjectPublicKeyInfo */
extern const OSSL_DISPATCH ihsm_spki_pem_encoder_functions[];
extern const OSSL_DISPATCH ihsm_text_encoder_functions[];
extern const OSSL_DISPATCH ihsm_keyfile_pem_encoder_functions[]; /* private: the masked PEM */
extern const OSSL_DISPATCH ihsm_store_functions[];             /* ihsm: URIs */


/* Algorithm tables for the I/O operations, defined in prov_algs_io.c
 * (owned with the decoder/encoder/store work); provider.c returns them from
 * its query_operation. Each ends with { NULL, NULL, NULL }. */
extern const OSSL_ALGORITHM ihsm_decoder_algs[];
extern const OSSL_ALGORITHM ihsm_encoder_algs[];
extern const OSSL_ALGORITHM ihsm_store_algs[];

#endif
