/*
 * libFuzzer target: the two ways key material enters ihsmd from outside.
 *
 *   KEY_IMPORT  ihsm_key_import: RSA-OAEP-wrapped AES key || RFC 5649 wrap
 *               of a PKCS#8 (or raw AES) key, under the device import key;
 *   KEY_UNMASK  ihsm_key_unmask: a masked blob under a partition masking key.
 *
 * The device import key (RSA-3072, usage decrypt, as ihsmd makes it) is
 * generated once at start; the masking key is derived from a fixed root
 * secret and partition id. Random bytes rarely get past RSA-OAEP or the GCM
 * tag, so besides raw inputs the harness also plays the client (import) or
 * a holder of the masking key (unmask) and wraps fuzzer bytes properly:
 * then the fuzzer reaches the key parsers behind the cryptography.
 *
 * Byte 0 picks the mode (byte 0 % 5):
 *   0  import, `wrapped` is the fuzzer's bytes
 *   1  import, wrapped = OAEP(fixed KEK) || KWP(KEK, fuzzer bytes)
 *   2  import, wrapped = OAEP(fuzzer KEK of any length) || KWP(...)
 *   3  unmask, the blob is the fuzzer's bytes
 *   4  unmask, an authentic blob: fuzzer header fields and plaintext,
 *      sealed by the harness with the partition masking key
 * Import modes then read: type, bits selector, usage, label length, label.
 *
 * Checks: no crash, no leak (LeakSanitizer, and the secure heap must be
 * back to its size before every input), a key that comes out is what was
 * asked for, masks and unmasks back to the same key, and a failed call
 * leaves *out NULL.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "dev_crypto.h"

#define FAIL(...)                                                             \
    do {                                                                      \
        fprintf(stderr, "fuzz_import: " __VA_ARGS__);                        \
        fputc('\n', stderr);                                                  \
        abort();                                                              \
    } while (0)

#define KEK_LEN 32
#define BLOB_FIXED_HDR 34 /* device/crypto_mask.c: header without the label */
#define BLOB_IV_LEN 12
#define BLOB_TAG_LEN 16

static ihsm_key *import_key;
static EVP_PKEY *import_pub; /* its public half, in the default context */
static uint8_t *fixed_wrapped_kek; /* OAEP(fixed_kek), modulus length */
static size_t modlen;
static const uint8_t fixed_kek[KEK_LEN] = "ihsm fuzz key-encryption key 32";
static const uint8_t root[32] = "ihsm fuzz device root secret 32";
static const uint8_t part_id[16] = "fuzz-partition!";
static uint8_t mask_key[32];

static const uint32_t bits_table[] = {
    0, 128, 256, 384, 2048, 3072, 4096, 1024, 8192, 255, 16, 0xFFFFFFFFu,
};

/* ---- a tiny reader over the input ---- */

typedef struct {
    const uint8_t *p;
    size_t left;
} cursor;

static uint8_t take8(cursor *c)
{
    uint8_t v = 0;

    if (c->left > 0) {
        v = *c->p++;
        c->left--;
    }
    return v;
}

static const uint8_t *take(cursor *c, size_t n, size_t *got)
{
    const uint8_t *p = c->p;

    *got = n < c->left ? n : c->left;
    c->p += *got;
    c->left -= *got;
    return p;
}

/* ---- the client's side of the wrap ---- */

static size_t oaep_encrypt(const uint8_t *kek, size_t kek_len, uint8_t *out)
{
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(import_pub, NULL);
    size_t out_len = modlen;
    int ok = pc != NULL && EVP_PKEY_encrypt_init(pc) > 0
             && EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) > 0
             && EVP_PKEY_CTX_set_rsa_oaep_md(pc, EVP_sha256()) > 0
             && EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()) > 0
             && EVP_PKEY_encrypt(pc, out, &out_len, kek, kek_len) > 0;

    EVP_PKEY_CTX_free(pc);
    ERR_clear_error();
    return ok ? out_len : 0;
}

/* RFC 5649 wrap of key under kek (32 bytes) into out (room: len + 16). */
static size_t kwp(const uint8_t *kek, const uint8_t *key, size_t len, uint8_t *out)
{
    EVP_CIPHER_CTX *cc = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0, ok;

    EVP_CIPHER_CTX_set_flags(cc, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    ok = cc != NULL && len > 0
         && EVP_EncryptInit_ex2(cc, EVP_aes_256_wrap_pad(), kek, NULL, NULL)
         && EVP_EncryptUpdate(cc, out, &n, key, (int)len)
         && EVP_EncryptFinal_ex(cc, out + n, &fin);
    EVP_CIPHER_CTX_free(cc);
    ERR_clear_error();
    return ok ? (size_t)n + (size_t)fin : 0;
}

/* ---- checks on a key that came out ---- */

static void public_of(const ihsm_key *k, ihsm_wr *w)
{
    ihsm_wr_init(w);
    if (ihsm_key_write_public(k, w) != IHSM_OK)
        FAIL("a key that was accepted has no public key to write");
}

/* Masks and unmasks back to a key of the same type, size, usage, label and
 * public key. */
static void remask(const ihsm_key *k)
{
    ihsm_wr blob, pub_a, pub_b;
    ihsm_key *again = NULL;
    const uint8_t *la, *lb;
    size_t la_len, lb_len;
    int st;

    ihsm_wr_init(&blob);
    if ((st = ihsm_key_mask(k, mask_key, part_id, &blob)) != IHSM_OK)
        FAIL("an accepted key does not mask: %s", ihsm_status_name(st));
    if ((st = ihsm_key_unmask(blob.p, blob.len, mask_key, part_id, &again)) != IHSM_OK)
        FAIL("a freshly masked key does not unmask: %s", ihsm_status_name(st));
    la = ihsm_key_label(k, &la_len);
    lb = ihsm_key_label(again, &lb_len);
    if (ihsm_key_type(again) != ihsm_key_type(k) || ihsm_key_bits(again) != ihsm_key_bits(k)
        || ihsm_key_usage(again) != ihsm_key_usage(k) || la_len != lb_len
        || memcmp(la, lb, la_len) != 0)
        FAIL("mask/unmask changed the key's attributes");
    public_of(k, &pub_a);
    public_of(again, &pub_b);
    if (pub_a.len != pub_b.len || memcmp(pub_a.p, pub_b.p, pub_a.len) != 0)
        FAIL("mask/unmask changed the public key");
    ihsm_wr_free(&pub_a);
    ihsm_wr_free(&pub_b);
    ihsm_wr_free(&blob);
    ihsm_key_free(again);
}

static void check_import(int st, ihsm_key *k, uint32_t type, uint32_t bits, uint32_t usage)
{
    if (st != IHSM_OK) {
        if (k != NULL)
            FAIL("a failed import left a key behind");
        if (st == IHSM_ERR_DEVICE_FAILED || ihsm_crypto_failed())
            FAIL("a client's bad import put the device in the failed state");
        return;
    }
    if (k == NULL)
        FAIL("import said OK and gave no key");
    if (ihsm_key_type(k) != type || (bits != 0 && ihsm_key_bits(k) != bits)
        || (usage != 0 && ihsm_key_usage(k) != usage) || ihsm_key_usage(k) == 0)
        FAIL("imported key is type %u bits %u usage 0x%x; asked %u/%u/0x%x",
             ihsm_key_type(k), ihsm_key_bits(k), ihsm_key_usage(k), type, bits, usage);
    remask(k);
}

/* ---- modes ---- */

static void run_import(int mode, cursor *c)
{
    uint32_t type = take8(c) % 8;
    uint32_t bits = bits_table[take8(c) % (sizeof(bits_table) / sizeof(bits_table[0]))];
    uint32_t usage = take8(c) & 0x1F;
    size_t label_len, key_len;
    const uint8_t *label = take(c, take8(c) % (IHSM_MAX_LABEL + 8), &label_len);
    const uint8_t *wrapped = NULL;
    uint8_t *buf = NULL;
    size_t wrapped_len = 0;
    ihsm_key *k = (ihsm_key *)&k; /* must be reset by the call */
    int st;

    if (mode == 0) {
        wrapped = take(c, c->left, &wrapped_len);
    } else {
        const uint8_t *kek = fixed_kek;
        size_t kek_len = KEK_LEN, w;
        const uint8_t *key;

        if (mode == 2) {
            kek = take(c, take8(c), &kek_len);
        }
        key = take(c, c->left, &key_len);
        if ((buf = malloc(modlen + key_len + 16)) == NULL)
            return;
        if (mode == 1) {
            memcpy(buf, fixed_wrapped_kek, modlen);
        } else if (oaep_encrypt(kek, kek_len, buf) != modlen) {
            free(buf); /* longer than OAEP takes under this modulus */
            return;
        }
        /* the KWP key is the first 32 bytes of kek, padded: a short or
         * long KEK still wraps, and the device must refuse it */
        {
            uint8_t k32[KEK_LEN] = { 0 };

            memcpy(k32, kek, kek_len < KEK_LEN ? kek_len : KEK_LEN);
            w = kwp(k32, key, key_len, buf + modlen);
            OPENSSL_cleanse(k32, sizeof(k32));
        }
        if (w == 0 && key_len > 0) {
            free(buf);
            return;
        }
        wrapped = buf;
        wrapped_len = modlen + w;
    }
    st = ihsm_key_import(import_key, type, bits, usage, label, label_len, wrapped,
                         wrapped_len, &k);
    check_import(st, k, type, bits, usage);
    ihsm_key_free(k);
    free(buf);
}

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* An authentic blob around the fuzzer's plaintext, as crypto_mask.c lays
 * it out; flags bit 0 seals it for another partition. */
static uint8_t *seal_blob(cursor *c, size_t *blob_len, uint32_t *type, uint32_t *bits,
                          uint32_t *usage)
{
    static const uint8_t iv[BLOB_IV_LEN] = "fuzz iv 12b";
    static const uint8_t other_part[16] = "other-partition";
    uint8_t flags, *blob;
    size_t label_len, pt_len, hdr_len;
    const uint8_t *label, *pt;
    EVP_CIPHER_CTX *cc;
    int n, ok;

    *type = take8(c) % 8;
    *bits = bits_table[take8(c) % (sizeof(bits_table) / sizeof(bits_table[0]))];
    *usage = take8(c) & 0x1F;
    flags = take8(c);
    label = take(c, take8(c) % (IHSM_MAX_LABEL + 1), &label_len);
    pt = take(c, c->left, &pt_len);
    hdr_len = BLOB_FIXED_HDR + label_len;
    if ((blob = malloc(hdr_len + BLOB_IV_LEN + pt_len + BLOB_TAG_LEN)) == NULL)
        return NULL;
    memcpy(blob, "IHMK", 4);
    put16(blob + 4, 1);
    put16(blob + 6, *type);
    put32(blob + 8, *bits);
    put32(blob + 12, *usage);
    put16(blob + 16, (uint32_t)label_len);
    memcpy(blob + 18, label, label_len);
    memcpy(blob + 18 + label_len, (flags & 1) ? other_part : part_id, 16);
    memcpy(blob + hdr_len, iv, BLOB_IV_LEN);
    cc = EVP_CIPHER_CTX_new();
    ok = cc != NULL && EVP_EncryptInit_ex2(cc, EVP_aes_256_gcm(), mask_key, iv, NULL)
         && EVP_EncryptUpdate(cc, NULL, &n, blob, (int)hdr_len)
         && (pt_len == 0
             || EVP_EncryptUpdate(cc, blob + hdr_len + BLOB_IV_LEN, &n, pt, (int)pt_len))
         && EVP_EncryptFinal_ex(cc, blob + hdr_len + BLOB_IV_LEN + pt_len, &n)
         && EVP_CIPHER_CTX_ctrl(cc, EVP_CTRL_AEAD_GET_TAG, BLOB_TAG_LEN,
                                blob + hdr_len + BLOB_IV_LEN + pt_len) > 0;
    EVP_CIPHER_CTX_free(cc);
    if (!ok) {
        free(blob);
        return NULL;
    }
    *blob_len = hdr_len + BLOB_IV_LEN + pt_len + BLOB_TAG_LEN;
    return blob;
}

static void run_unmask(int mode, cursor *c)
{
    uint32_t type = 0, bits = 0, usage = 0;
    uint8_t *owned = NULL;
    const uint8_t *blob;
    size_t len;
    ihsm_key *k = (ihsm_key *)&k;
    int st;

    if (mode == 3) {
        blob = take(c, c->left, &len);
    } else if ((blob = owned = seal_blob(c, &len, &type, &bits, &usage)) == NULL) {
        return;
    }
    st = ihsm_key_unmask(blob, len, mask_key, part_id, &k);
    if (st != IHSM_OK) {
        if (k != NULL)
            FAIL("a failed unmask left a key behind");
        if (ihsm_crypto_failed())
            FAIL("a bad blob put the device in the failed state");
    } else {
        if (k == NULL)
            FAIL("unmask said OK and gave no key");
        /* what the authenticated header says is what the key is */
        if (mode == 4 && (ihsm_key_type(k) != type || ihsm_key_bits(k) != bits
                          || ihsm_key_usage(k) != usage))
            FAIL("unmasked key is %u/%u/0x%x, its header says %u/%u/0x%x",
                 ihsm_key_type(k), ihsm_key_bits(k), ihsm_key_usage(k), type, bits, usage);
        remask(k);
    }
    ihsm_key_free(k);
    free(owned);
}

/* ---- libFuzzer entry points ---- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ihsm_wr w;
    ihsm_rd r;
    const uint8_t *der;
    size_t len;
    int st;

    (void)argc;
    (void)argv;
    if ((st = ihsm_crypto_init(4u << 20)) != IHSM_OK)
        FAIL("crypto core did not start: %s", ihsm_status_name(st));
    if ((st = ihsm_key_generate(IHSM_KEY_RSA, 3072, IHSM_USAGE_DECRYPT,
                                (const uint8_t *)"ihsm-import", 11, &import_key)) != IHSM_OK)
        FAIL("cannot make the import key: %s", ihsm_status_name(st));
    if (ihsm_derive_mask_key(root, part_id, mask_key) != IHSM_OK)
        FAIL("cannot derive the masking key");
    ihsm_wr_init(&w);
    if (ihsm_key_write_public(import_key, &w) != IHSM_OK)
        FAIL("no public import key");
    ihsm_rd_init(&r, w.p, w.len);
    der = ihsm_rd_bytes(&r, &len, 1 << 20);
    if (der == NULL || (import_pub = d2i_PUBKEY(NULL, &der, (long)len)) == NULL)
        FAIL("the import key's SPKI does not decode");
    ihsm_wr_free(&w);
    modlen = (size_t)EVP_PKEY_get_size(import_pub);
    if ((fixed_wrapped_kek = malloc(modlen)) == NULL
        || oaep_encrypt(fixed_kek, KEK_LEN, fixed_wrapped_kek) != modlen)
        FAIL("cannot wrap the fixed KEK");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cursor c = { data, size };
    size_t secure_before = CRYPTO_secure_used();
    int mode;

    if (size < 1 || size > 64 * 1024)
        return 0;
    mode = take8(&c) % 5;
    if (mode <= 2)
        run_import(mode, &c);
    else
        run_unmask(mode, &c);
    ERR_clear_error();
    /* LeakSanitizer does not look inside OpenSSL's secure heap */
    if (CRYPTO_secure_used() != secure_before)
        FAIL("secure heap was %zu bytes before this input, %zu after", secure_before,
             CRYPTO_secure_used());
    return 0;
}
