/*
 * ihsmd's crypto core: key objects and the operations on them. Everything
 * here runs inside the device process; key material lives in OpenSSL's
 * secure heap (locked, excluded from core dumps) and is cleansed when freed.
 *
 * The daemon side (sessions, handles, partitions, storage: dev_*.c) calls
 * only these functions; they never see private key bytes. Each function
 * returns IHSM_OK or an enum ihsm_status.
 */
#ifndef IHSM_DEV_CRYPTO_H
#define IHSM_DEV_CRYPTO_H

#include <stddef.h>
#include <stdint.h>
#include "ihsm_codec.h"
#include "ihsm_proto.h"

typedef struct ihsm_key ihsm_key; /* opaque, defined in crypto_keys.c */

/* Secure heap, hardening of the crypto state, then the known-answer
 * self-tests of every algorithm. Returns IHSM_OK or IHSM_ERR_DEVICE_FAILED. */
int ihsm_crypto_init(size_t secure_heap_bytes);
/* Known-answer tests (also run by SELF_TEST): writes the SELF_TEST
 * completion payload (u32 n, n x (bytes name, u32 passed)) into out if
 * non-NULL. Returns IHSM_OK if every test passed. */
int ihsm_crypto_selftest(ihsm_wr *out);
/* Set when a self-test failed: the device refuses crypto. */
int ihsm_crypto_failed(void);

/* ---- key objects ---- */
/* usage 0 = the type's natural usage (docs/protocol.md). label may be empty. */
int ihsm_key_generate(uint32_t type, uint32_t bits, uint32_t usage,
                      const uint8_t *label, size_t label_len, ihsm_key **out);
/* From the BYOK `wrapped` field, unwrapped with the device import key. */
int ihsm_key_import(const ihsm_key *import_key, uint32_t type, uint32_t bits,
                    uint32_t usage, const uint8_t *label, size_t label_len,
                    const uint8_t *wrapped, size_t wrapped_len, ihsm_key **out);
void ihsm_key_free(ihsm_key *k); /* cleanses; NULL ok */
uint32_t ihsm_key_type(const ihsm_key *k);
uint32_t ihsm_key_bits(const ihsm_key *k);
uint32_t ihsm_key_usage(const ihsm_key *k);
const uint8_t *ihsm_key_label(const ihsm_key *k, size_t *len);
/* SubjectPublicKeyInfo DER as a "bytes" field into out (empty for AES). */
int ihsm_key_write_public(const ihsm_key *k, ihsm_wr *out);

/* ---- masking: the only way a key leaves memory ---- */
/* mask_key: 32 bytes, the partition masking key; part_id: 16 bytes.
 * Appends the raw blob bytes (not length-prefixed) to out. */
int ihsm_key_mask(const ihsm_key *k, const uint8_t mask_key[32],
                  const uint8_t part_id[16], ihsm_wr *out);
/* IHSM_ERR_BAD_BLOB if the blob is not authentic for this partition. */
int ihsm_key_unmask(const uint8_t *blob, size_t len, const uint8_t mask_key[32],
                    const uint8_t part_id[16], ihsm_key **out);
/* Partition masking key from the device root secret (HKDF-SHA256). */
int ihsm_derive_mask_key(const uint8_t root[32], const uint8_t part_id[16],
                         uint8_t mask_key[32]);

/* ---- operations. args is positioned after the u32 handle of the request
 * payload (docs/protocol.md); each parses the rest (ihsm_rd_end must hold)
 * and writes the completion payload into out. Usage flags are enforced here. */
int ihsm_op_sign(const ihsm_key *k, ihsm_rd *args, ihsm_wr *out);
int ihsm_op_derive(const ihsm_key *k, ihsm_rd *args, ihsm_wr *out);
int ihsm_op_aead(const ihsm_key *k, int seal, ihsm_rd *args, ihsm_wr *out);
/* RANDOM: args = u32 n. Continuous health test on the generator. */
int ihsm_op_random(ihsm_rd *args, ihsm_wr *out);

/* A session key (KEY_LOAD_SESSION): an AES key the client holds in clear,
 * raw bytes of bits/8 (128 or 256), usage encrypt+decrypt, no label. */
int ihsm_key_from_secret(uint32_t type, uint32_t bits, const uint8_t *raw,
                         size_t len, ihsm_key **out);

/* Constant-time-free helpers the daemon needs for PINs. */
int ihsm_random_bytes(uint8_t *buf, size_t n);
/* PIN verifier: PBKDF2-HMAC-SHA256(pin, salt, iterations) -> 32 bytes. */
int ihsm_pin_hash(const uint8_t *pin, size_t pin_len, const uint8_t salt[16],
                  uint32_t iterations, uint8_t out[32]);

/* ---- the audit log's MAC chain (dev_audit.c) ---- */
/* The audit key: HKDF-SHA256 of the device root secret with its own info
 * string ("ihsm audit log v1"), so it is independent of every masking key.
 * Works in the failed state: a failed device's zeroization is audited. */
int ihsm_derive_audit_key(const uint8_t root[32], uint8_t key[32]);
/* One link of the chain: HMAC-SHA256(key, prev || rec). */
int ihsm_audit_mac(const uint8_t key[32], const uint8_t prev[32], const uint8_t *rec,
                   size_t len, uint8_t out[32]);

/* Memory hardening in effect, for STATS and the tests that assert it: the
 * secure heap's size (0: none), and 1 if every block libcrypto frees from
 * the ordinary heap is wiped first (crypto_mem.c). */
size_t ihsm_crypto_secure_heap_size(void);
int ihsm_crypto_mem_wiping(void);

#endif
