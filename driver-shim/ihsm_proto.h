/*
 * ihsm device protocol: command ids, status codes, key types and limits.
 * The wire format is written down in docs/protocol.md; this header is its
 * single source of truth in C. Every number here is on the wire: never
 * renumber, only add.
 */
#ifndef IHSM_PROTO_H
#define IHSM_PROTO_H

#include <stdint.h>

#define IHSM_PROTO_VERSION 1
#define IHSM_FRAME_MAGIC 0x4D534849u /* "IHSM" little-endian */

/* Frame kinds */
#define IHSM_FRAME_REQUEST    1
#define IHSM_FRAME_COMPLETION 2

/* Sizes and limits */
#define IHSM_FRAME_HDR_LEN 16        /* magic u32, version u16, kind u16, count u16, rsvd u16, body_len u32 */
#define IHSM_ENTRY_HDR_LEN 20        /* id u64, cmd u16, status u16, session u32, len u32 */
#define IHSM_MAX_FRAME     (128 * 1024) /* fits a default SEQPACKET socket buffer */
#define IHSM_MAX_BATCH     256       /* entries in one frame */
#define IHSM_MAX_PAYLOAD   (IHSM_MAX_FRAME - IHSM_FRAME_HDR_LEN - IHSM_ENTRY_HDR_LEN)
#define IHSM_MAX_LABEL     128       /* key names / labels, bytes */
#define IHSM_MAX_PARTITION_NAME 64
#define IHSM_PIN_LEN       32        /* raw PIN bytes; 64 hex chars in a credential file */

/* Commands (u16). Payload layouts: docs/protocol.md. */
enum ihsm_cmd {
    IHSM_CMD_INFO           = 0x01,
    IHSM_CMD_OPEN_SESSION   = 0x02,
    IHSM_CMD_CLOSE_SESSION  = 0x03,
    IHSM_CMD_INIT_PARTITION = 0x04,

    IHSM_CMD_KEY_GENERATE   = 0x10,
    IHSM_CMD_KEY_IMPORT     = 0x11,
    IHSM_CMD_GET_IMPORT_KEY = 0x12,
    IHSM_CMD_KEY_UNMASK     = 0x13,
    IHSM_CMD_KEY_MASK       = 0x14,
    IHSM_CMD_KEY_DELETE     = 0x15,
    IHSM_CMD_KEY_PUBLIC     = 0x16,
    IHSM_CMD_KEY_FIND       = 0x17,
    IHSM_CMD_KEY_LIST       = 0x18,
    IHSM_CMD_KEY_RELEASE    = 0x19,
    IHSM_CMD_KEY_LOAD_SESSION = 0x1A, /* a client's AES key, held by the session */

    IHSM_CMD_SIGN           = 0x20,
    IHSM_CMD_DERIVE         = 0x21,
    IHSM_CMD_AEAD_SEAL      = 0x22,
    IHSM_CMD_AEAD_OPEN      = 0x23,

    IHSM_CMD_RANDOM         = 0x30,
    IHSM_CMD_SELF_TEST      = 0x31,
    IHSM_CMD_STATS          = 0x32,
    IHSM_CMD_ZEROIZE        = 0x33,
    IHSM_CMD_AUDIT_VERIFY   = 0x34, /* check the audit log's MAC chain */
    IHSM_CMD_AUDIT_READ     = 0x35, /* the audit log's bytes (admin uids) */
};

/* Status codes (u16) carried in completions. Values >= 100 never appear on
 * the wire: the client library raises them itself. */
enum ihsm_status {
    IHSM_OK                    = 0,
    IHSM_ERR_MALFORMED         = 1,  /* frame or payload failed to decode */
    IHSM_ERR_VERSION           = 2,  /* protocol version not spoken */
    IHSM_ERR_UNKNOWN_COMMAND   = 3,
    IHSM_ERR_NO_SESSION        = 4,  /* command needs an open session */
    IHSM_ERR_AUTH              = 5,  /* wrong partition credential */
    IHSM_ERR_LOCKED            = 6,  /* partition locked after wrong PINs */
    IHSM_ERR_PERMISSION        = 7,  /* peer uid or role not allowed */
    IHSM_ERR_NO_PARTITION      = 8,
    IHSM_ERR_EXISTS            = 9,  /* partition or key name taken */
    IHSM_ERR_BAD_HANDLE        = 10, /* no such loaded key (device restarted?) */
    IHSM_ERR_NOT_FOUND         = 11, /* no such named key */
    IHSM_ERR_USAGE             = 12, /* key's usage flags forbid this */
    IHSM_ERR_UNSUPPORTED       = 13, /* algorithm or parameter not supported */
    IHSM_ERR_BAD_BLOB          = 14, /* masked key failed authentication */
    IHSM_ERR_BAD_INPUT         = 15, /* invalid argument (bad point, length...) */
    IHSM_ERR_LIMIT_FRAME       = 16, /* frame too large or too many entries */
    IHSM_ERR_LIMIT_KEYS        = 17,
    IHSM_ERR_LIMIT_SESSIONS    = 18,
    IHSM_ERR_LIMIT_INFLIGHT    = 19,
    IHSM_ERR_DEVICE_FAILED     = 20, /* self-test failed: device refuses crypto */
    IHSM_ERR_CRYPTO            = 21, /* internal crypto failure */
    IHSM_ERR_AEAD_TAG          = 22, /* AEAD open: authentication failed */
    IHSM_ERR_SHUTTING_DOWN     = 23,
    IHSM_ERR_STORAGE           = 24, /* state directory write failed */

    IHSM_ERR_DEVICE_GONE       = 100, /* connection to ihsmd lost */
    IHSM_ERR_TIMEOUT           = 101,
    IHSM_ERR_CONNECT           = 102, /* ihsmd not reachable */
    IHSM_ERR_NOMEM             = 103,
    IHSM_ERR_CREDENTIAL_FILE   = 104, /* credential file missing or malformed */
};

/* Key types (u32). RSA and AES carry their size in a separate bits field. */
enum ihsm_key_type {
    IHSM_KEY_RSA     = 1,
    IHSM_KEY_EC_P256 = 2,
    IHSM_KEY_EC_P384 = 3,
    IHSM_KEY_ED25519 = 4,
    IHSM_KEY_X25519  = 5,
    IHSM_KEY_AES     = 6,
};

/* Usage flags (u32), enforced by the device. */
#define IHSM_USAGE_SIGN    0x01u
#define IHSM_USAGE_DERIVE  0x02u
#define IHSM_USAGE_ENCRYPT 0x04u /* AEAD seal */
#define IHSM_USAGE_DECRYPT 0x08u /* AEAD open */
#define IHSM_USAGE_ALL     0x0Fu

/* Signature schemes (u32) */
enum ihsm_sig_scheme {
    IHSM_SIG_RSA_PKCS1 = 1, /* tbs: digest (md != NONE) or a ready DigestInfo (md NONE) */
    IHSM_SIG_RSA_PSS   = 2, /* tbs: digest */
    IHSM_SIG_ECDSA     = 3, /* tbs: digest; signature DER */
    IHSM_SIG_ED25519   = 4, /* tbs: the message itself */
};

/* Digests (u32) */
enum ihsm_md {
    IHSM_MD_NONE   = 0,
    IHSM_MD_SHA1   = 1,
    IHSM_MD_SHA224 = 2,
    IHSM_MD_SHA256 = 3,
    IHSM_MD_SHA384 = 4,
    IHSM_MD_SHA512 = 5,
};

/* PSS salt length specials (carried as u32 two's complement) */
#define IHSM_PSS_SALT_DIGEST (-1) /* salt length = digest length */
#define IHSM_PSS_SALT_MAX    (-2) /* largest the key allows */

/* AEAD algorithms (u32) */
enum ihsm_aead {
    IHSM_AEAD_AES_GCM          = 1, /* key size from the key */
    IHSM_AEAD_CHACHA20_POLY1305 = 2,
};

/* Session roles (u32) */
#define IHSM_ROLE_USER 1
/* Crypto officer: import, delete, zeroize, key generation, list, audit;
 * never sign, derive, AEAD or unmask. Its own PIN (INIT_PARTITION). */
#define IHSM_ROLE_OFFICER 2

/* Key flags in KEY_GENERATE / KEY_IMPORT */
#define IHSM_KEYF_PERSIST 0x01u /* store as a named key in the partition */
/* KEY_GENERATE only: a key for one key exchange (TLS ECDHE): EC or X25519
 * with usage derive, never stored; the answer's masked blob is empty and the
 * key is not audited; it is gone at KEY_RELEASE or when the session closes. */
#define IHSM_KEYF_EPHEMERAL 0x02u

/* AUDIT_VERIFY flags and results (docs/protocol.md) */
#define IHSM_AUDITF_CLIENT 0x01u /* verify the lines sent, not the device's own log */
#define IHSM_AUDITF_FINAL  0x02u /* last chunk: compare the chain's end with the head */
enum ihsm_audit_result {
    IHSM_AUDIT_OK            = 0,
    IHSM_AUDIT_MAC_MISMATCH  = 1, /* a record was altered (or is not this device's) */
    IHSM_AUDIT_SEQ_GAP       = 2, /* records missing before this one */
    IHSM_AUDIT_OUT_OF_ORDER  = 3, /* records moved or replayed */
    IHSM_AUDIT_MALFORMED     = 4, /* a line that is not a record */
    IHSM_AUDIT_HEAD_MISMATCH = 5, /* the chain does not end at the device's head: truncated */
    IHSM_AUDIT_NO_MAC        = 6, /* written while the device had no audit key */
};

/* Device states in INFO */
#define IHSM_STATE_OPERATIONAL 0
#define IHSM_STATE_FAILED      1

/* A human sentence for a status: what went wrong and what to do. */
const char *ihsm_status_str(int status);
/* Short stable name, e.g. "IHSM_ERR_AUTH", for logs and tests. */
const char *ihsm_status_name(int status);
/* Name of a command for logs ("SIGN"), or "UNKNOWN". */
const char *ihsm_cmd_name(int cmd);

#endif
