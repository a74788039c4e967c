/*
 * Masked blobs: the only form in which a key leaves device memory.
 *
 *   offset  size  field (integers little-endian)
 *   0       4     magic "IHMK"
 *   4       2     version (1)
 *   6       2     key type
 *   8       4     bits
 *   12      4     usage
 *   16      2     label length L (<= IHSM_MAX_LABEL)
 *   18      L     label
 *   18+L    16    partition id
 *   34+L    12    IV (random)
 *   46+L    n     AES-256-GCM ciphertext of the private key (PKCS#8 DER;
 *                 AES: the raw key bytes)
 *   46+L+n  16    GCM tag
 *
 * The whole header (offsets 0 .. 34+L) is the GCM associated data, so type,
 * bits, usage, label and partition cannot be changed without the tag failing.
 * Every way a blob can be wrong answers IHSM_ERR_BAD_BLOB.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "crypto_internal.h"

#define MAGIC "IHMK"
#define VERSION 1
#define FIXED_HDR 34 /* header without the label */
#define IV_LEN 12
#define TAG_LEN 16

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

static uint32_t get16(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16)
           | ((uint32_t)p[3] << 24);
}

int ihsm_key_mask(const ihsm_key *k, const uint8_t mask_key[32],
                  const uint8_t part_id[16], ihsm_wr *out)
{
    uint8_t hdr[FIXED_HDR + IHSM_MAX_LABEL], iv[IV_LEN];
    size_t hdr_len = FIXED_HDR + k->label_len, der_len = 0, start = out->len;
    uint8_t *der = NULL, *dst;
    int st;

    if (ihsm_crypto_failed())
        return IHSM_ERR_DEVICE_FAILED;
    memcpy(hdr, MAGIC, 4);
    put16(hdr + 4, VERSION);
    put16(hdr + 6, k->type);
    put32(hdr + 8, k->bits);
    put32(hdr + 12, k->usage);
    put16(hdr + 16, (uint32_t)k->label_len);
    memcpy(hdr + 18, k->label, k->label_len);
    memcpy(hdr + 18 + k->label_len, part_id, 16);

    if ((st = ihsm_crypto_rand(iv, sizeof(iv))) != IHSM_OK)
        return st;
    if ((st = ihsm_key_export_private(k, &der, &der_len)) != IHSM_OK)
        return st;
    ihsm_wr_raw(out, hdr, hdr_len);
    ihsm_wr_raw(out, iv, sizeof(iv));
    if ((dst = ihsm_wr_reserve(out, der_len + TAG_LEN)) == NULL) {
        st = ihsm_crypto_wr_status(out);
    } else {
        st = ihsm_aead_raw(IHSM_AEAD_AES_GCM, 1, mask_key, 32, iv, sizeof(iv), hdr,
                           hdr_len, der, der_len, TAG_LEN, dst);
    }
    OPENSSL_secure_clear_free(der, der_len);
    if (st != IHSM_OK && out->len > start) {
        OPENSSL_cleanse(out->p + start, out->len - start);
        out->len = start;
    }
    ihsm_crypto_debug("mask type %u bits %u: %zu byte blob, %s", k->type, k->bits,
                      hdr_len + IV_LEN + der_len + TAG_LEN, ihsm_status_name(st));
    return st;
}

static int bad_blob(const char *why)
{
    ihsm_crypto_debug("unmask: %s", why);
    return IHSM_ERR_BAD_BLOB;
}

int ihsm_key_unmask(const uint8_t *blob, size_t len, const uint8_t mask_key[32],
                    const uint8_t part_id[16], ihsm_key **out)
{
    uint32_t type, bits, usage, check_usage;
    size_t label_len, hdr_len, ct_len;
    uint8_t *pt = NULL;
    ihsm_key *k = NULL;
    int st;

    *out = NULL;
    if (ihsm_crypto_failed())
        return IHSM_ERR_DEVICE_FAILED;
    if (!ihsm_crypto_secure_room())
        return IHSM_ERR_LIMIT_KEYS;
    if (blob == NULL || len < FIXED_HDR + IV_LEN + 1 + TAG_LEN)
        return bad_blob("too short");
    if (memcmp(blob, MAGIC, 4) != 0 || get16(blob + 4) != VERSION)
        return bad_blob("not an ihsm masked key (magic or version)");
    type = get16(blob + 6);
    bits = get32(blob + 8);
    usage = check_usage = get32(blob + 12);
    label_len = get16(blob + 16);
    if (label_len > IHSM_MAX_LABEL)
        return bad_blob("label too long");
    hdr_len = FIXED_HDR + label_len;
    if (len < hdr_len + IV_LEN + 1 + TAG_LEN)
        return bad_blob("truncated");
    ct_len = len - hdr_len - IV_LEN - TAG_LEN;
    if (ct_len > IHSM_MAX_KEY_DER)
        return bad_blob("too long");
    if (CRYPTO_memcmp(blob + 18 + label_len, part_id, 16) != 0)
        return bad_blob("masked for another partition");
    if (usage == 0 || bits == 0
        || ihsm_key_check_params(type, bits, &check_usage, label_len, 0) != IHSM_OK)
        return bad_blob("type, bits or usage invalid");

    if ((pt = OPENSSL_secure_malloc(ct_len)) == NULL)
        return IHSM_ERR_CRYPTO;
    st = ihsm_aead_raw(IHSM_AEAD_AES_GCM, 0, mask_key, 32, blob + hdr_len, IV_LEN,
                       blob, hdr_len, blob + hdr_len + IV_LEN, ct_len + TAG_LEN,
                       TAG_LEN, pt);
    if (st != IHSM_OK) {
        st = st == IHSM_ERR_AEAD_TAG ? bad_blob("authentication failed") : st;
        goto end;
    }
    if ((k = ihsm_key_new(type, bits, usage, blob + 18, label_len)) == NULL) {
        st = IHSM_ERR_CRYPTO;
        goto end;
    }
    /* authentic, but the key inside must still be what the header says */
    if (ihsm_key_import_private(k, pt, ct_len) != IHSM_OK || k->bits != bits) {
        st = bad_blob("key does not match its header");
        goto end;
    }
    ihsm_crypto_debug("unmask type %u bits %u usage 0x%x", type, bits, usage);
    *out = k;
    k = NULL;
    st = IHSM_OK;
end:
    OPENSSL_secure_clear_free(pt, ct_len);
    ihsm_key_free(k);
    return st;
}
