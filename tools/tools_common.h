/*
 * ihsmctl: what every subcommand shares. The tool context (socket,
 * credential, the lazily opened queue), blocking calls to the device,
 * key references (--name / --key), name tables and small file helpers.
 *
 * Exit codes: IHSM_TOOL_OK, IHSM_TOOL_FAIL (the operation failed),
 * IHSM_TOOL_USAGE (the command line was wrong).
 */
#ifndef IHSM_TOOLS_COMMON_H
#define IHSM_TOOLS_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <openssl/evp.h>
#include "ihsm_codec.h"
#include "ihsm_credential.h"
#include "ihsm_offload.h"
#include "ihsm_proto.h"

#define IHSM_TOOL_OK    0
#define IHSM_TOOL_FAIL  1
#define IHSM_TOOL_USAGE 2

typedef struct {
    const char *socket_path; /* resolved: --socket, $IHSM_SOCKET, default */
    const char *cred_path;   /* --credential, $IHSM_CREDENTIAL, or NULL */
    const char *cmd;         /* the subcommand, for messages */
    char partition[IHSM_MAX_PARTITION_NAME + 1]; /* from the credential file */
    ihsm_queue *q;           /* opened by ihsm_tool_queue() */
    unsigned batch_max;      /* queue tuning (bench); 0: the queue's defaults */
    unsigned delay_us;
    int cred_explicit;        /* --credential was given (not the environment) */
    const char *officer_path; /* --officer-credential, or NULL */
    uint32_t role;            /* the session's credential role, once open */
} ihsm_tool;

/* One subcommand: argv[0] is its name, options follow. Returns an exit code. */
typedef int (*ihsm_tool_fn)(ihsm_tool *t, int argc, char **argv);

typedef struct {
    const char *name;
    ihsm_tool_fn fn;
    const char *summary;
} ihsm_tool_cmd;

/* ---- messages ---- */
void ihsm_tool_err(const ihsm_tool *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints the message and "run `ihsmctl CMD --help`"; returns IHSM_TOOL_USAGE. */
int ihsm_tool_usage_err(const ihsm_tool *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "what: <status sentence>" plus the queue's last connection error where it
 * helps; returns IHSM_TOOL_FAIL. */
int ihsm_tool_status_err(ihsm_tool *t, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- options ---- */
/* Every command also takes the global options after its name. */
#define IHSM_OPT_SOCKET     0x100
#define IHSM_OPT_CREDENTIAL 0x101
#define IHSM_OPT_OFFICER    0x102
#define IHSM_TOOL_GLOBAL_OPTS \
    { "socket", required_argument, NULL, IHSM_OPT_SOCKET }, \
    { "credential", required_argument, NULL, IHSM_OPT_CREDENTIAL }, \
    { "officer-credential", required_argument, NULL, IHSM_OPT_OFFICER }, \
    { "help", no_argument, NULL, 'h' }
/* Handles IHSM_OPT_SOCKET / _CREDENTIAL / _OFFICER (returns 1), else 0. */
int ihsm_tool_global_opt(ihsm_tool *t, int c, const char *arg);
/* The message for getopt's '?' (unknown option, missing value). */
int ihsm_tool_bad_option(const ihsm_tool *t, char **argv);
/* Leftover operands after the options are a usage error. */
int ihsm_tool_no_operands(const ihsm_tool *t, int argc, char **argv);

/* ---- the device ---- */
/* Officer commands (import, delete, zeroize, audit) call this before
 * ihsm_tool_queue: the credential becomes --officer-credential, else an
 * explicit --credential, else $IHSM_OFFICER_CREDENTIAL, else the user
 * credential ($IHSM_CREDENTIAL), which the device refuses with a message
 * naming the officer credential. Returns 1 if an officer credential was
 * named (not the fallback). */
int ihsm_tool_use_officer(ihsm_tool *t);
/* The queue with an open session. Needs a credential; prints a sentence
 * naming the socket / partition / credential file on failure. NULL on
 * failure with *rc set to the exit code. */
ihsm_queue *ihsm_tool_queue(ihsm_tool *t, int *rc);
/* A request through the session; prints nothing. Returns the status. */
int ihsm_tool_call(ihsm_tool *t, uint16_t cmd, const ihsm_wr *payload,
                   ihsm_result *res);
/* A session-less command (INFO, INIT_PARTITION, SELF_TEST, STATS) on a
 * connection of its own, so it works without a credential. Returns the
 * device's status (or IHSM_ERR_CONNECT / _DEVICE_GONE / _TIMEOUT /
 * _MALFORMED), with res holding the payload on IHSM_OK. */
int ihsm_tool_call_direct(ihsm_tool *t, uint16_t cmd, const ihsm_wr *payload,
                          ihsm_result *res);
/* Release a result of ihsm_tool_call_direct (not the queue's allocator). */
void ihsm_tool_direct_clear(ihsm_result *res);
void ihsm_tool_close(ihsm_tool *t);

/* ---- keys ---- */
typedef struct {
    uint32_t handle;
    uint32_t type, bits, usage;
    uint8_t *spki; size_t spki_len; /* SubjectPublicKeyInfo DER (NULL for AES) */
    char *name;                     /* --name, or NULL */
    char *file;                     /* --key, or NULL */
} ihsm_tool_key;

/* Find a named key (KEY_FIND) or unmask a key file (KEY_UNMASK). Exactly one
 * of name/file. Prints errors; returns an exit code. */
int ihsm_tool_key_load(ihsm_tool *t, const char *name, const char *file,
                       ihsm_tool_key *k);
/* The public key only: from the file when there is one (no device needed),
 * else from the device. */
int ihsm_tool_key_public(ihsm_tool *t, const char *name, const char *file,
                         ihsm_tool_key *k);
void ihsm_tool_key_clear(ihsm_tool_key *k);
/* The public key as an EVP_PKEY of the default provider (NULL for AES). */
EVP_PKEY *ihsm_tool_key_pkey(const ihsm_tool_key *k);

/* ---- name tables ---- */
/* "rsa-2048" -> (IHSM_KEY_RSA, 2048). 0 or -1 when unknown. */
int ihsm_tool_parse_type(const char *s, uint32_t *type, uint32_t *bits);
/* Canonical name of a type ("rsa-3072", "ec-p256", "aes-256"); bits used
 * for RSA and AES. Writes into buf. */
const char *ihsm_tool_type_name(uint32_t type, uint32_t bits, char *buf, size_t len);
/* Bits of a fixed-size type as the device reports them; 0 when the size
 * comes from the caller (RSA, AES). */
uint32_t ihsm_tool_type_bits(uint32_t type);
/* The bits field sent in KEY_GENERATE / KEY_IMPORT: RSA and AES carry their
 * size, the fixed-size types send 0 (docs/protocol.md). */
uint32_t ihsm_tool_wire_bits(uint32_t type, uint32_t bits);
/* "sign,derive" -> flags. 0 or -1. */
int ihsm_tool_parse_usage(const char *s, uint32_t *usage);
/* flags -> "sign,derive" into buf. */
const char *ihsm_tool_usage_name(uint32_t usage, char *buf, size_t len);
/* "sha256" -> IHSM_MD_SHA256 (and the EVP_MD name). -1 when unknown. */
int ihsm_tool_parse_md(const char *s, uint32_t *md);
const char *ihsm_tool_md_evp_name(uint32_t md); /* NULL for none */
/* "pkcs1" -> IHSM_SIG_RSA_PKCS1. -1 when unknown. */
int ihsm_tool_parse_scheme(const char *s, uint32_t *scheme);
/* The natural scheme for a key type; 0 when the type does not sign. */
uint32_t ihsm_tool_default_scheme(uint32_t type);
/* 0 when scheme fits the key type. */
int ihsm_tool_scheme_fits(uint32_t scheme, uint32_t type);
/* "aes-gcm" -> IHSM_AEAD_AES_GCM. -1 when unknown. */
int ihsm_tool_parse_aead(const char *s, uint32_t *alg);
/* Partition and key names, as the device stores them: 1 to 64 characters
 * of A-Z a-z 0-9 . _ -, not starting with '.'. 1 when valid. */
#define IHSM_TOOL_MAX_NAME 64
int ihsm_tool_valid_name(const char *s);
#define IHSM_TOOL_NAME_RULE "1 to 64 characters of A-Z a-z 0-9 . _ -, not starting with '.'"
/* Decimal number within [min, max]. -1 when not. */
int ihsm_tool_parse_long(const char *s, long min, long max, long *out);

/* After KEY_GENERATE / KEY_IMPORT: parse the completion (handle, blob,
 * public), write the key file if out != NULL, print one line. */
int ihsm_tool_key_created(ihsm_tool *t, const char *verb, const char *name,
                          const char *out, uint32_t type, uint32_t bits,
                          const ihsm_result *res);

/* ---- files ---- */
/* Whole file (or stdin for "-") into an OPENSSL_malloc'd buffer of at most
 * max bytes; growing it never leaves a stale copy behind, so it may hold a
 * secret (free with OPENSSL_clear_free). Prints errors; returns 0 or -1. */
int ihsm_tool_read_file(const ihsm_tool *t, const char *path, size_t max,
                        uint8_t **buf, size_t *len);
/* Write (or stdout for "-"), mode 0600 for files; 0 or -1 (printed). */
int ihsm_tool_write_file(const ihsm_tool *t, const char *path,
                         const void *buf, size_t len);
/* 1 if path exists (and is not "-"). */
int ihsm_tool_exists(const char *path);
/* Free what held secrets. */
void ihsm_tool_free_secret(void *p, size_t len);

/* ---- JSON output ---- */
void ihsm_tool_json_str(FILE *f, const char *s, size_t len);

/* ---- subcommands ---- */
int ihsm_cmd_init(ihsm_tool *t, int argc, char **argv);
int ihsm_cmd_keygen(ihsm_tool *t, int argc, char **argv);
int ihsm_cmd_import(ihsm_tool *t, int argc, char **argv);
int ihsm_cmd_list(ihsm_tool *t, int argc, char **argv);
int ihsm_cmd_delete(ihsm_tool *t, int argc, char **argv);
int ihsm_cmd_pubkey(ihsm_tool *t, int argc, char **argv);
int ihsm_cmd_sign(ihsm_tool *t, int argc, char **argv);
int ihsm_cmd_verify(ihsm_tool *t, int argc, char **argv);
int ihsm_cmd_encrypt(ihsm_tool *t, int argc, char **argv);
int ihsm_cmd_decrypt(ihsm_tool *t, int argc, char **argv);
int ihsm_cmd_bench(ihsm_tool *t, int argc, char **argv);
int ihsm_cmd_stats(ihsm_tool *t, int argc, char **argv);
int ihsm_cmd_info(ihsm_tool *t, int argc, char **argv);
int ihsm_cmd_selftest(ihsm_tool *t, int argc, char **argv);
int ihsm_cmd_zeroize(ihsm_tool *t, int argc, char **argv);
int ihsm_cmd_audit(ihsm_tool *t, int argc, char **argv);

#endif
