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
    /* appended by the AEAD work: */
    size_t aead_min_size;      /* ihsm-aead-min-size: records with raw (TLS) keys
                                  shorter than this are sealed in process */
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
    /* appended by the key exchange work (X25519, ECDH): */
    uint8_t *encpub; size_t encpub_len; /* raw public value (EC uncompressed point,
                                  X25519 u): what DERIVE takes. A peer key has only
                                  this, unvalidated: ihsmd checks it when deriving */
    int kex;                   /* made for an ephemeral key exchange (TLS ECDHE) */
    struct ihsm_prov_eph *eph; /* ephemeral device key: KEY_RELEASE when the last
                                  key object holding it is freed */
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


/* ---- appended by the provider core (keymgmt/signature) work ---- */

/* Property query for the public-key work done in ctx->libctx (decoding
 * public keys, verification, hashing): never ihsm itself, so it cannot
 * recurse into the device or into our own decoders. */
#define IHSM_PROV_PUB_PROPQ "provider!=ihsm"

/* Reasons beyond enum ihsm_prov_reason (which is fixed). */
enum ihsm_prov_reason_more {
    IHSM_R_PARTITION_LOCKED = 20,
    IHSM_R_NOT_EXTRACTABLE,   /* private key export refused */
    IHSM_R_NO_PRIVATE_KEY,    /* public-only key object (imported) */
    IHSM_R_TIMEOUT,
    IHSM_R_DEVICE_FAILED,     /* device failed its self-tests */
    IHSM_R_PERMISSION,        /* uid not allowed for the partition */
};

/* Run an unkeyed command (KEY_UNMASK, KEY_FIND, KEY_LIST...) through the
 * provider's queue. res must be zeroed by the caller and released with
 * ihsm_result_clear. Returns the status; for anything but IHSM_OK an
 * OpenSSL error is raised whose text starts with `what`. */
int ihsm_prov_call(IHSM_PROV_CTX *ctx, uint16_t cmd, const ihsm_wr *payload,
                   ihsm_result *res, const char *what);

/* Public keys in ctx->libctx (IHSM_PROV_PUB_PROPQ): SPKI DER <-> EVP_PKEY. */
EVP_PKEY *ihsm_prov_pub_from_spki(IHSM_PROV_CTX *ctx, const uint8_t *der, size_t len);
int ihsm_prov_pub_to_spki(EVP_PKEY *pub, uint8_t **der, size_t *len); /* OPENSSL_free */

/* The KEYMGMT name for a key: "RSA", "RSA-PSS", "EC" or "ED25519" (NULL for
 * types this provider has no KEYMGMT for). Use it as
 * OSSL_OBJECT_PARAM_DATA_TYPE when handing a key to keymgmt load. */
const char *ihsm_prov_key_keymgmt_name(const IHSM_PROV_KEY *k);
/* Nonzero when the key has a device part (blob, name or handle), i.e. can sign. */
int ihsm_prov_key_has_private(const IHSM_PROV_KEY *k);

/* Key generation parameter (UTF8): store the generated key in the partition
 * under this name (KEY_GENERATE with IHSM_KEYF_PERSIST), usable as ihsm:NAME.
 * e.g. openssl genpkey ... -pkeyopt ihsm-name:web */
#define IHSM_PKEY_PARAM_NAME "ihsm-name"

/*
 * OSSL_FUNC_keymgmt_load contract (DECODER and STORE -> KEYMGMT):
 * the object callback gets OSSL_OBJECT_PARAM_TYPE = OSSL_OBJECT_PKEY,
 * OSSL_OBJECT_PARAM_DATA_TYPE = ihsm_prov_key_keymgmt_name(key) and
 * OSSL_OBJECT_PARAM_REFERENCE, an octet string whose data is a pointer-sized
 * variable holding the IHSM_PROV_KEY * (one reference owned by the caller):
 *
 *     IHSM_PROV_KEY *key = ihsm_prov_key_from_keyfile(ctx, &kf);
 *     params[i] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE,
 *                                                   &key, sizeof(key));
 *     ok = object_cb(params, object_cbarg);
 *     ihsm_prov_key_free(key);   (NULL-safe)
 *
 * load(reference, sizeof(IHSM_PROV_KEY *)) transfers that reference to the
 * EVP_PKEY and writes NULL into the variable (as OpenSSL's own keymgmts do),
 * so the caller's free afterwards only releases a key nobody took. A size
 * other than sizeof(IHSM_PROV_KEY *) is refused.
 */

/* ---- appended by the key exchange work ---- */

extern const OSSL_DISPATCH ihsm_x25519_keymgmt_functions[];
extern const OSSL_DISPATCH ihsm_ecdh_keyexch_functions[];
extern const OSSL_DISPATCH ihsm_x25519_keyexch_functions[];

/* A peer's public key that ihsmd refused (off the curve, wrong length, the
 * identity, X25519 of small order): reason beyond enum ihsm_prov_reason_more. */
#define IHSM_R_BAD_PEER_KEY 40

/* Key exchange keys: EC P-256/P-384 and X25519. */
int ihsm_prov_kex_type(uint32_t type);
/* The public key as an EVP_PKEY in the default provider, made on first use
 * for keys that only hold encpub or spki (NULL + error if it is not a valid
 * key). */
EVP_PKEY *ihsm_prov_key_pub(IHSM_PROV_KEY *k);
/* The raw public value (EC uncompressed point, X25519 32 bytes), taken from
 * encpub or the public key; 0 if there is none. Points into the key. */
int ihsm_prov_key_encoded_public(IHSM_PROV_KEY *k, const uint8_t **p, size_t *len);
/* Make k a public-only key of type holding this raw public value as given
 * (a TLS key share: EVP_PKEY_set1_encoded_public_key). */
int ihsm_prov_key_set_encoded_public(IHSM_PROV_KEY *k, uint32_t type,
                                     const uint8_t *p, size_t len);

#endif
