/*
 * ihsm-wycheproof: runs Wycheproof test vector files through the ihsm
 * provider and ihsmd. Shared declarations: the JSON reader, the device and
 * library context, key import, outcome reporting, and one entry point per
 * vector schema.
 */
#ifndef IHSM_WYCHEPROOF_H
#define IHSM_WYCHEPROOF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <openssl/evp.h>
#include "ihsm_offload.h"

#define WP_PROPQ "provider=ihsm"

/* ---- json.c: a small strict JSON (RFC 8259) reader ---- */
typedef enum { WP_JNULL, WP_JBOOL, WP_JNUM, WP_JSTR, WP_JARR, WP_JOBJ } wp_jtype;

typedef struct wp_json {
    wp_jtype type;
    int boolean;
    double num;
    int is_int;              /* the number had no fraction or exponent and fits */
    long long ival;
    char *str;               /* WP_JSTR: NUL-terminated (may hold NULs: see len) */
    size_t len;
    struct wp_json **items;  /* WP_JARR elements, WP_JOBJ values */
    char **keys;             /* WP_JOBJ member names */
    size_t n;
} wp_json;

/* Parses the whole text; NULL with a message (line and column) in err. */
wp_json *wp_json_parse(const char *text, size_t len, char *err, size_t errlen);
void wp_json_free(wp_json *j);
const wp_json *wp_json_get(const wp_json *obj, const char *key);
/* A member's string, or NULL when it is missing or not a string. */
const char *wp_json_str(const wp_json *obj, const char *key);
/* A member's integer: 0, or -1 when missing or not an integer. */
int wp_json_int(const wp_json *obj, const char *key, long long *out);
/* A member that is an array (NULL otherwise). */
const wp_json *wp_json_arr(const wp_json *obj, const char *key);

/* ---- device.c: the ihsmd the run uses ---- */
typedef struct {
    char *scratch;            /* our scratch directory (config, own device) */
    char *socket_path;
    char *credential;         /* user credential: the provider's */
    char *officer_credential; /* for imports; NULL: the user credential */
    pid_t pid;                /* our own ihsmd, or 0 when given by the environment */
    char bindir[4096];        /* where our executable is: ihsmd and ihsmctl too */
} wp_device;

/* IHSM_SOCKET + IHSM_CREDENTIAL (+ IHSM_OFFICER_CREDENTIAL) when set, else
 * start ihsmd in a scratch directory and init a partition. 0 or -1 (printed). */
int wp_device_start(wp_device *d);
void wp_device_stop(wp_device *d);

/* ---- the run ---- */
typedef struct wp_key wp_key;

enum wp_got {
    WP_GOT_OK,       /* the operation succeeded and its output is the expected one */
    WP_GOT_WRONG,    /* it succeeded with another output: never acceptable */
    WP_GOT_REFUSED,  /* the provider or the device refused it */
    WP_GOT_SKIP,     /* it cannot run here (detail says why) */
};

typedef struct {
    enum wp_got got;
    char detail[768];
} wp_outcome;

typedef struct wp_skip wp_skip;

typedef struct {
    OSSL_LIB_CTX *libctx;   /* default + ihsm, from our own openssl.cnf */
    wp_device dev;
    ihsm_queue *q;          /* the import session (crypto officer when given) */
    ihsm_queue *uq;         /* a user session for device calls of our own (an
                               officer may not sign or derive); q when there
                               is no officer credential */
    EVP_PKEY *import_pub;   /* the device's import key (BYOK) */
    wp_key *keys;           /* cache: one import per distinct key per run */
    int verbose;
    /* per file */
    const char *file;
    unsigned long passed, failed, skipped;
    wp_skip *skips;         /* skip reasons with their tcIds */
} wp_run;

/* ---- provider.c: the library context and what the provider offers ---- */
int wp_libctx_init(wp_run *r, const char *libdir);
void wp_libctx_free(wp_run *r);
/* The last OpenSSL errors as one line (and clears them). */
const char *wp_ossl_errors(char *buf, size_t len);
/* A public key (SubjectPublicKeyInfo DER) as an ihsm key object through the
 * provider's key management; NULL with why set when it refuses. */
EVP_PKEY *wp_ihsm_public_key(wp_run *r, const uint8_t *spki, size_t len,
                             char *why, size_t whylen, int *skip);
/* Does the provider offer this algorithm of this operation (OSSL_OP_*)? */
int wp_ihsm_offers(wp_run *r, int operation, const char *name);

/* ---- import.c: private keys into the device (BYOK), cached by their bytes ---- */
struct wp_key {
    wp_key *next;
    uint8_t id[32];          /* SHA-256 of type, usage and the key bytes */
    int status;              /* IHSM_OK, or the device's refusal */
    char why[256];           /* when not IHSM_OK: the reason */
    uint32_t type, bits, usage;
    uint32_t handle;         /* in the import session */
    uint32_t user_handle;    /* in the user session (KEY_UNMASK), when it differs */
    char name[40];           /* stored under this name (X25519), else "" */
    uint8_t *blob; size_t blob_len;   /* masked blob */
    char *pem; size_t pem_len;        /* masked key file (PEM) */
    EVP_PKEY *pkey;          /* loaded through the provider's decoder (not AES) */
};

int wp_import_init(wp_run *r);
void wp_import_free(wp_run *r);
/* Import a private key given as an EVP_PKEY of the default provider. Never
 * NULL unless out of memory: a refused key comes back with status != OK. */
wp_key *wp_import_pkey(wp_run *r, EVP_PKEY *priv, uint32_t usage);
/* Import raw AES key bytes (the device's secret key type). */
wp_key *wp_import_secret(wp_run *r, const uint8_t *key, size_t len, uint32_t usage);
/* A command on the import session (KEY_IMPORT, KEY_DELETE...). */
int wp_device_call(wp_run *r, uint16_t cmd, const ihsm_wr *payload, ihsm_result *res);
/* A keyed command straight to the device on the user session: u32 handle
 * then args. The device's own answer, with the provider out of the way. */
int wp_key_call(wp_run *r, wp_key *k, uint16_t cmd, const ihsm_wr *args, ihsm_result *res);

/* ---- report.c ---- */
/* Counts one vector and prints a line when it failed. Returns 1 if passed. */
int wp_report(wp_run *r, const wp_json *group, const wp_json *test,
              const wp_outcome *o);
void wp_outcome_set(wp_outcome *o, enum wp_got got, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The vector's key was refused. device_limit: the device does not hold
 * such keys (IHSM_ERR_UNSUPPORTED, or no key type for it): the vector is
 * skipped with the reason. Otherwise it counts as refused. */
void wp_outcome_key_refused(wp_outcome *o, int device_limit, const char *why);
/* Is a refused key a device limit (see above)? */
#define WP_KEY_LIMIT(k) ((k)->status == IHSM_ERR_UNSUPPORTED)
void wp_file_begin(wp_run *r, const char *file);
/* Prints the file's summary and skip reasons. */
void wp_file_end(wp_run *r);

/* ---- util.c ---- */
/* Hex to bytes: *out is malloc'd (at least 1 byte); -1 when not hex. */
int wp_hex(const char *hex, uint8_t **out, size_t *len);
/* A member's hex string decoded; -1 when missing or not hex. */
int wp_hex_member(const wp_json *obj, const char *key, uint8_t **out, size_t *len);
int wp_read_file(const char *path, char **buf, size_t *len);
void wp_hexdump(char *dst, size_t dstlen, const uint8_t *p, size_t n);

/* ---- one file per schema: each returns 0, or -1 when the file cannot run ---- */
typedef int (*wp_schema_fn)(wp_run *r, const wp_json *root);
int wp_run_rsa_sig_gen(wp_run *r, const wp_json *root);   /* rsassa_pkcs1_generate */
int wp_run_ecdsa_verify(wp_run *r, const wp_json *root);  /* ecdsa_verify, ecdsa_p1363_verify */
int wp_run_eddsa_verify(wp_run *r, const wp_json *root);  /* eddsa_verify */
int wp_run_rsa_pss_verify(wp_run *r, const wp_json *root);/* rsassa_pss_verify */
int wp_run_ecdh(wp_run *r, const wp_json *root);          /* ecdh_ecpoint_test */
int wp_run_xdh(wp_run *r, const wp_json *root);           /* xdh_test, xdh_comp */
int wp_run_aead(wp_run *r, const wp_json *root);          /* aead_test */

/* ---- verify.c: verification vectors through the provider's signatures ---- */
typedef struct {
    int pss;
    const char *mgf1_md;
    int salt_len;
} wp_pss;

typedef struct wp_vgroup wp_vgroup;
struct wp_vgroup {
    EVP_PKEY *pub;          /* the group's key as an ihsm key object; NULL: see why */
    int skip;               /* with pub NULL: skip (a provider limit), else refuse */
    char why[512];
    const char *md;         /* NULL for Ed25519 */
    wp_pss pss;
    /* signature re-encoding before verification (ECDSA P1363 -> DER) */
    int (*convert)(const wp_vgroup *v, const uint8_t *sig, size_t len,
                   uint8_t **der, size_t *der_len);
    const char *convert_what;
};
typedef void (*wp_vsetup_fn)(wp_run *r, const wp_json *group, wp_vgroup *v);

/* 1 verified, 0 rejected, -1 the provider does not support this (why says
 * what: a skip), -2 the provider failed to set it up (a refusal). */
int wp_verify(wp_run *r, EVP_PKEY *pub, const char *md, const wp_pss *pss,
              const uint8_t *msg, size_t msg_len, const uint8_t *sig, size_t sig_len,
              char *why, size_t whylen);
/* The group's public key (hex SPKI DER in member) as an ihsm key. */
EVP_PKEY *wp_verify_group_key(wp_run *r, const wp_json *g, const char *member, wp_vgroup *v);
int wp_run_verify(wp_run *r, const wp_json *root, wp_vsetup_fn setup);

/* ---- derive.c: key agreement through the provider and the device ---- */
/* peer: the peer key made by the provider's key management, or NULL with
 * peer_why when it refused; pub: the vector's public bytes as they are. */
void wp_derive_check(wp_run *r, const wp_json *test, wp_key *k, EVP_PKEY *peer,
                     const char *peer_why, const uint8_t *pub, size_t pub_len,
                     wp_outcome *o);

#endif
