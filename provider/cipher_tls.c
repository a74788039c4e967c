/*
 * TLS 1.2 records through the AEAD ciphers, as libssl 3.0 drives provided
 * ciphers (ssl/record/ssl3_record.c tls1_enc): AEAD_TLS1_AAD with the
 * 13-byte pseudo header, then ONE EVP_CipherUpdate over the whole record,
 * which must return the record's output at once:
 *
 *   AES-GCM (RFC 5288): record = explicit nonce (8) || text || tag (16).
 *     The nonce is the 4-byte fixed IV (AEAD_TLS1_IV_FIXED) followed by the
 *     8-byte explicit part: a counter we keep when sealing (its start is
 *     random), read from the record when opening.
 *   ChaCha20-Poly1305 (RFC 7905): record = text || tag (16); the nonce is
 *     the 12-byte IV with the sequence number (the first 8 bytes of the
 *     AAD) XORed into its last 8 bytes.
 *
 * Each record is one ihsm_aead_oneshot: one device request, or in process
 * when the key is a raw key and the record is small.
 */
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cipher_aead.h"

/* the 64-bit big-endian counter in the last 8 bytes of a GCM IV */
static void ctr64_inc(unsigned char *ctr)
{
    for (int i = 7; i >= 0; i--)
        if (++ctr[i] != 0)
            return;
}

size_t ihsm_aead_tls_init(IHSM_AEAD_CTX *c, const unsigned char *aad, size_t len)
{
    size_t plen;

    if (len != IHSM_AEAD_TLS_AAD_LEN)
        return 0;
    memcpy(c->tls_aad, aad, len);
    plen = (size_t)aad[len - 2] << 8 | aad[len - 1];
    /* the record's own length covers the explicit nonce (GCM) and, when
     * opening, the tag; the AAD carries the text's length */
    if (c->alg->gcm) {
        if (plen < IHSM_GCM_TLS_EXPLICIT_IV_LEN)
            return 0;
        plen -= IHSM_GCM_TLS_EXPLICIT_IV_LEN;
    }
    if (!c->enc) {
        if (plen < IHSM_AEAD_TAG_LEN)
            return 0;
        plen -= IHSM_AEAD_TAG_LEN;
    }
    c->tls_aad[len - 2] = (unsigned char)(plen >> 8);
    c->tls_aad[len - 1] = (unsigned char)plen;
    c->tls_payload = plen;
    c->tls_aad_set = 1;
    return IHSM_AEAD_TAG_LEN; /* the tag is appended to the record */
}

int ihsm_aead_tls_set_fixed(IHSM_AEAD_CTX *c, const unsigned char *iv, size_t len)
{
    if (!c->alg->gcm) {
        if (len != 12)
            return 0;
        memcpy(c->iv, iv, len);
        c->ivlen = len;
        c->iv_state = IV_SET;
        return 1;
    }
    if (len == (size_t)-1) { /* the whole IV, as saved before */
        memcpy(c->iv, iv, c->ivlen);
        c->iv_gen = 1;
        c->iv_state = IV_SET;
        return 1;
    }
    /* fixed field at least 4 bytes, invocation field at least 8 */
    if (len < IHSM_GCM_TLS_FIXED_IV_LEN || len > c->ivlen
        || c->ivlen - len < IHSM_GCM_TLS_EXPLICIT_IV_LEN)
        return 0;
    memcpy(c->iv, iv, len);
    if (c->enc && RAND_bytes_ex(c->prov->libctx, c->iv + len, c->ivlen - len, 0) <= 0)
        return 0;
    c->iv_gen = 1;
    c->iv_state = IV_SET;
    return 1;
}

int ihsm_aead_gcm_iv_gen(IHSM_AEAD_CTX *c, unsigned char *out, size_t len)
{
    if (!c->iv_gen || (!c->have_raw && c->dev == NULL))
        return 0;
    if (len == 0 || len > c->ivlen)
        len = c->ivlen;
    memcpy(out, c->iv + c->ivlen - len, len);
    c->iv_state = IV_SET;
    c->done = 0;
    c->iv_inc_pending = 1;
    return 1;
}

void ihsm_aead_gcm_iv_used(IHSM_AEAD_CTX *c)
{
    if (c->iv_inc_pending) {
        ctr64_inc(c->iv + c->ivlen - 8);
        c->iv_inc_pending = 0;
    }
}

int ihsm_aead_gcm_set_iv_inv(IHSM_AEAD_CTX *c, const unsigned char *in, size_t len)
{
    if (!c->iv_gen || (!c->have_raw && c->dev == NULL) || c->enc || len > c->ivlen)
        return 0;
    memcpy(c->iv + c->ivlen - len, in, len);
    c->iv_state = IV_SET;
    c->done = 0;
    return 1;
}

static int fail(IHSM_AEAD_CTX *c, const char *why)
{
    ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT, "%s TLS record: %s", c->alg->name, why);
    c->tls_aad_set = 0;
    return 0;
}

static int gcm_record(IHSM_AEAD_CTX *c, unsigned char *out, size_t *outl,
                      const unsigned char *in, size_t len)
{
    const size_t ex = IHSM_GCM_TLS_EXPLICIT_IV_LEN, tl = IHSM_AEAD_TAG_LEN;
    unsigned char *ctr = c->iv + c->ivlen - ex;
    size_t plen;
    int ok;

    if (len < ex + tl)
        return fail(c, "shorter than its nonce and tag");
    if (!c->iv_gen)
        return fail(c, "no fixed IV (AEAD_TLS1_IV_FIXED) set");
    plen = len - ex - tl;
    if (plen != c->tls_payload)
        return fail(c, "its length differs from the AAD's");
    if (c->enc) {
        /* SP 800-38D: at most 2^64 - 1 records under one key */
        if (++c->tls_records == 0)
            return fail(c, "too many records under one key");
        memmove(out, ctr, ex);
        ok = ihsm_aead_oneshot(c, c->iv, c->ivlen, c->tls_aad, sizeof(c->tls_aad),
                               in + ex, plen, out + ex, out + ex + plen, tl);
        ctr64_inc(ctr);
        *outl = ok ? len : 0;
    } else {
        memcpy(ctr, in, ex);
        /* the tag stays where it is: the text written before it never
         * reaches it, in place or not */
        ok = ihsm_aead_oneshot(c, c->iv, c->ivlen, c->tls_aad, sizeof(c->tls_aad),
                               in + ex, plen, out + ex, (unsigned char *)in + ex + plen, tl);
        *outl = ok ? plen : 0;
    }
    return ok;
}

static int chacha_record(IHSM_AEAD_CTX *c, unsigned char *out, size_t *outl,
                         const unsigned char *in, size_t len)
{
    const size_t tl = IHSM_AEAD_TAG_LEN;
    unsigned char nonce[12];
    size_t plen = c->tls_payload;
    int ok;

    if (c->iv_state == IV_NONE || c->ivlen != sizeof(nonce))
        return fail(c, "no IV set");
    if (len != plen + tl)
        return fail(c, "its length differs from the AAD's");
    memcpy(nonce, c->iv, sizeof(nonce));
    for (int i = 0; i < 8; i++) /* RFC 7905: the sequence number into the nonce */
        nonce[4 + i] ^= c->tls_aad[i];
    if (c->enc) {
        ok = ihsm_aead_oneshot(c, nonce, sizeof(nonce), c->tls_aad, sizeof(c->tls_aad), in,
                               plen, out, out + plen, tl);
        *outl = ok ? len : 0;
    } else {
        ok = ihsm_aead_oneshot(c, nonce, sizeof(nonce), c->tls_aad, sizeof(c->tls_aad), in,
                               plen, out, (unsigned char *)in + plen, tl);
        *outl = ok ? plen : 0;
    }
    return ok;
}

int ihsm_aead_tls_record(IHSM_AEAD_CTX *c, unsigned char *out, size_t *outl,
                         const unsigned char *in, size_t len)
{
    int ok;

    *outl = 0;
    if (!c->have_raw && c->dev == NULL)
        return fail(c, "no key");
    ok = c->alg->gcm ? gcm_record(c, out, outl, in, len) : chacha_record(c, out, outl, in, len);
    c->tls_aad_set = 0;
    return ok;
}
