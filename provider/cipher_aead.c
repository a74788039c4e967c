/*
 * The AEAD cipher context shared by AES-GCM and ChaCha20-Poly1305: init,
 * buffering in update(), the one device call in final() or cipher(), the
 * in-process path for raw keys, and the parameters. TLS 1.2 records are in
 * cipher_tls.c, device keys and session keys in cipher_key.c.
 *
 * Because the device takes whole messages, update() returns no output and
 * final() returns all of it (both lengths add up as EVP callers expect:
 * libssl's TLS 1.3 record code checks lenu + lenf). Decryption releases
 * nothing before the tag has been checked.
 */
#include <limits.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "cipher_aead.h"
#include "prov_int.h"

const IHSM_AEAD_ALG ihsm_aead_aes128gcm = {
    "AES-128-GCM", IHSM_AEAD_AES_GCM, 16, EVP_CIPH_GCM_MODE, 1
};
const IHSM_AEAD_ALG ihsm_aead_aes256gcm = {
    "AES-256-GCM", IHSM_AEAD_AES_GCM, 32, EVP_CIPH_GCM_MODE, 1
};
const IHSM_AEAD_ALG ihsm_aead_chacha = {
    "ChaCha20-Poly1305", IHSM_AEAD_CHACHA20_POLY1305, 32, 0, 0
};

#define DEFAULT_IVLEN 12
/* The device's tag lengths: GCM 12..16 bytes, ChaCha20-Poly1305 16. */
#define DEV_GCM_MIN_TAG 12

/* ---------------------------------------------------------------- buffers */

static void buf_clear(unsigned char **p, size_t *len, size_t *cap)
{
    OPENSSL_clear_free(*p, *cap);
    *p = NULL;
    *len = *cap = 0;
}

/* Append, growing by doubling; the old buffer is cleansed when it moves
 * (it may hold plaintext). */
static int buf_append(IHSM_AEAD_CTX *c, unsigned char **p, size_t *len, size_t *cap,
                      const unsigned char *in, size_t n)
{
    if (n == 0)
        return 1;
    if (n > SIZE_MAX / 2 - *len) {
        ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT, "%s: message too long",
                        c->alg->name);
        return 0;
    }
    if (*len + n > *cap) {
        size_t ncap = *cap != 0 ? *cap : 256;
        unsigned char *np;

        while (ncap < *len + n)
            ncap *= 2;
        if ((np = OPENSSL_malloc(ncap)) == NULL)
            return 0;
        if (*len != 0)
            memcpy(np, *p, *len);
        OPENSSL_clear_free(*p, *cap);
        *p = np;
        *cap = ncap;
    }
    memcpy(*p + *len, in, n);
    *len += n;
    return 1;
}

/* Forget the message (not the key, IV or tag). */
static void message_reset(IHSM_AEAD_CTX *c)
{
    if (c->aad_len != 0)
        OPENSSL_cleanse(c->aad, c->aad_len);
    if (c->data_len != 0)
        OPENSSL_cleanse(c->data, c->data_len);
    c->aad_len = c->data_len = 0;
    c->data_started = 0;
    c->streaming = 0;
    c->done = 0;
    c->tls_aad_set = 0;
}

/* ---------------------------------------------------------------- context */

void *ihsm_aead_newctx(void *provctx, const IHSM_AEAD_ALG *alg)
{
    IHSM_PROV_CTX *prov = provctx;
    IHSM_AEAD_CTX *c = OPENSSL_zalloc(sizeof(*c));

    if (c == NULL)
        return NULL;
    c->prov = prov;
    c->alg = alg;
    c->ivlen = DEFAULT_IVLEN;
    c->min_size = prov->aead_min_size;
    c->route = "";
    if (c->min_size == IHSM_AEAD_MIN_NEVER)
        IHSM_PROV_DBG("cipher: new %s context (raw keys: in process)", alg->name);
    else
        IHSM_PROV_DBG("cipher: new %s context (raw keys: messages of %zu bytes or more in "
                      "the device)", alg->name, c->min_size);
    return c;
}

static void drop_keys(IHSM_AEAD_CTX *c)
{
    ihsm_aead_release_session(c);
    OPENSSL_cleanse(c->raw, sizeof(c->raw));
    c->have_raw = 0;
    c->sess_full = 0;
    c->sw_keyed = 0; /* the next raw key re-keys sw in place */
    ihsm_aead_devkey_free(c->dev);
    c->dev = NULL;
    c->tls_records = 0;
}

void ihsm_aead_freectx(void *vctx)
{
    IHSM_AEAD_CTX *c = vctx;

    if (c == NULL)
        return;
    drop_keys(c);
    EVP_CIPHER_CTX_free(c->sw);
    buf_clear(&c->aad, &c->aad_len, &c->aad_cap);
    buf_clear(&c->data, &c->data_len, &c->data_cap);
    OPENSSL_clear_free(c, sizeof(*c));
}

void *ihsm_aead_dupctx(void *vctx)
{
    IHSM_AEAD_CTX *c = vctx, *d;

    if ((d = OPENSSL_memdup(c, sizeof(*c))) == NULL)
        return NULL;
    /* The copy gets its own buffers, its own in-process cipher and, when it
     * needs one, its own session key: nothing is released twice. */
    d->aad = d->data = NULL;
    d->aad_len = d->aad_cap = d->data_len = d->data_cap = 0;
    d->sw = NULL;
    d->sess = 0;
    /* the in-process cipher is copied as it is (keyed, maybe mid-message) */
    if (c->sw != NULL
        && ((d->sw = EVP_CIPHER_CTX_new()) == NULL || !EVP_CIPHER_CTX_copy(d->sw, c->sw))) {
        EVP_CIPHER_CTX_free(d->sw);
        d->sw = NULL;
        d->sw_keyed = 0;
        d->streaming = 0;
        if (c->streaming) {
            OPENSSL_clear_free(d, sizeof(*d));
            return NULL;
        }
    }
    if (d->dev != NULL)
        ihsm_aead_devkey_up_ref(d->dev);
    if (!buf_append(d, &d->aad, &d->aad_len, &d->aad_cap, c->aad, c->aad_len)
        || !buf_append(d, &d->data, &d->data_len, &d->data_cap, c->data, c->data_len)) {
        ihsm_aead_freectx(d);
        return NULL;
    }
    return d;
}

static int key_ready(IHSM_AEAD_CTX *c)
{
    return c->have_raw || c->dev != NULL;
}

static int no_key(IHSM_AEAD_CTX *c)
{
    ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT,
                    "%s: no key: give one to init (a TLS record key) or name a device key "
                    "with the \"" IHSM_CIPHER_PARAM_KEY "\" parameter (ihsm:NAME or a "
                    "masked key file)", c->alg->name);
    return 0;
}

static int ivlen_ok(const IHSM_AEAD_CTX *c, size_t len)
{
    return c->alg->gcm ? len >= 1 && len <= IHSM_AEAD_MAX_IV : len == DEFAULT_IVLEN;
}

static int init(IHSM_AEAD_CTX *c, const unsigned char *key, size_t keylen,
                const unsigned char *iv, size_t ivlen, const OSSL_PARAM params[], int enc)
{
    c->enc = enc;
    if (key != NULL) {
        if (keylen != c->alg->keylen) {
            ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT,
                            "%s takes a %zu-byte key, not %zu bytes", c->alg->name,
                            c->alg->keylen, keylen);
            return 0;
        }
        drop_keys(c);
        memcpy(c->raw, key, keylen);
        c->have_raw = 1;
        message_reset(c);
    }
    if (iv != NULL) {
        if (!ivlen_ok(c, ivlen)) {
            ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT,
                            "%s: invalid IV length %zu", c->alg->name, ivlen);
            return 0;
        }
        memcpy(c->iv, iv, ivlen);
        c->ivlen = ivlen;
        c->iv_state = IV_SET;
        message_reset(c);
    }
    IHSM_PROV_DBG("cipher: %s %s init%s%s", c->alg->name, enc ? "encrypt" : "decrypt",
                  key != NULL ? " key" : "", iv != NULL ? " iv" : "");
    return ihsm_aead_set_ctx_params(c, params);
}

int ihsm_aead_einit(void *vctx, const unsigned char *key, size_t keylen,
                    const unsigned char *iv, size_t ivlen, const OSSL_PARAM params[])
{
    return init(vctx, key, keylen, iv, ivlen, params, 1);
}

int ihsm_aead_dinit(void *vctx, const unsigned char *key, size_t keylen,
                    const unsigned char *iv, size_t ivlen, const OSSL_PARAM params[])
{
    return init(vctx, key, keylen, iv, ivlen, params, 0);
}

/* ---------------------------------------------------------------- one message */

/* The in-process cipher of another provider, keyed with the raw key. */
static int sw_ready(IHSM_AEAD_CTX *c)
{
    EVP_CIPHER *ciph;
    int ok;

    if (c->sw_keyed)
        return 1;
    if (c->sw == NULL && (c->sw = EVP_CIPHER_CTX_new()) == NULL)
        return 0;
    if (EVP_CIPHER_CTX_get0_cipher(c->sw) != NULL) {
        /* a new raw key (TLS key update): the same cipher, re-keyed */
        if (!EVP_CipherInit_ex2(c->sw, NULL, c->raw, NULL, c->enc, NULL))
            return 0;
        c->sw_keyed = 1;
        return 1;
    }
    ciph = EVP_CIPHER_fetch(c->prov->libctx, c->alg->name, IHSM_PROV_PUB_PROPQ);
    if (ciph == NULL) {
        ihsm_prov_raise(c->prov, IHSM_R_UNSUPPORTED,
                        "%s: no other provider offers it for records kept in process: "
                        "load the default provider next to ihsm", c->alg->name);
        return 0;
    }
    ok = EVP_CipherInit_ex2(c->sw, ciph, c->raw, NULL, c->enc, NULL);
    EVP_CIPHER_free(ciph);
    if (!ok)
        return 0;
    c->sw_keyed = 1;
    c->sw_ivlen = DEFAULT_IVLEN;
    return 1;
}

static int sw_set_iv(IHSM_AEAD_CTX *c, const unsigned char *iv, size_t ivlen)
{
    if (!sw_ready(c))
        return 0;
    if (ivlen != c->sw_ivlen) {
        if (EVP_CIPHER_CTX_ctrl(c->sw, EVP_CTRL_AEAD_SET_IVLEN, (int)ivlen, NULL) <= 0)
            return 0;
        c->sw_ivlen = ivlen;
    }
    return EVP_CipherInit_ex2(c->sw, NULL, NULL, iv, c->enc, NULL);
}

static int sw_oneshot(IHSM_AEAD_CTX *c, const unsigned char *iv, size_t ivlen,
                      const unsigned char *aad, size_t aad_len, const unsigned char *in,
                      size_t len, unsigned char *out, unsigned char *tag, size_t taglen)
{
    EVP_CIPHER_CTX *s;
    int n, ok;

    if (aad_len > INT_MAX || len > INT_MAX || !sw_set_iv(c, iv, ivlen))
        return 0;
    s = c->sw;
    if ((aad_len != 0 && !EVP_CipherUpdate(s, NULL, &n, aad, (int)aad_len))
        || (len != 0 && !EVP_CipherUpdate(s, out, &n, in, (int)len)))
        goto fail;
    if (c->enc)
        return EVP_CipherFinal_ex(s, out + len, &n)
               && EVP_CIPHER_CTX_ctrl(s, EVP_CTRL_AEAD_GET_TAG, (int)taglen, tag) > 0;
    ok = EVP_CIPHER_CTX_ctrl(s, EVP_CTRL_AEAD_SET_TAG, (int)taglen, tag) > 0
         && EVP_CipherFinal_ex(s, out + len, &n);
    if (ok)
        return 1;
    ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT,
                    "%s decryption failed: the tag does not match (the ciphertext, AAD, "
                    "nonce or tag was altered, or this is not the key it was sealed with)",
                    c->alg->name);
fail:
    if (len != 0)
        OPENSSL_cleanse(out, len);
    return 0;
}

/* Can the device take this message at all? Returns 0 with why set. */
static int device_fits(const IHSM_AEAD_CTX *c, size_t ivlen, size_t aad_len, size_t len,
                       size_t taglen, const char **why)
{
    if (c->alg->gcm ? taglen < DEV_GCM_MIN_TAG || taglen > IHSM_AEAD_TAG_LEN
                    : taglen != IHSM_AEAD_TAG_LEN) {
        *why = c->alg->gcm ? "the device checks GCM tags of 12 to 16 bytes"
                           : "the device checks ChaCha20-Poly1305 tags of 16 bytes";
        return 0;
    }
    if (aad_len > ihsm_aead_device_max(ivlen) || len > ihsm_aead_device_max(ivlen) - aad_len) {
        *why = "the message is larger than one device request";
        return 0;
    }
    return 1;
}

int ihsm_aead_oneshot(IHSM_AEAD_CTX *c, const unsigned char *iv, size_t ivlen,
                      const unsigned char *aad, size_t aad_len, const unsigned char *in,
                      size_t len, unsigned char *out, unsigned char *tag, size_t taglen)
{
    const char *why = NULL;
    int st;

    if (c->dev != NULL) {
        if (!device_fits(c, ivlen, aad_len, len, taglen, &why)) {
            ihsm_prov_raise(c->prov, IHSM_R_UNSUPPORTED, "%s with a device key: %s (at most "
                            "%zu bytes of AAD and text)", c->alg->name, why,
                            ihsm_aead_device_max(ivlen));
            return 0;
        }
        c->route = "device";
        return ihsm_aead_device(c, c->enc, iv, ivlen, aad, aad_len, in, len, out, tag,
                                taglen) == IHSM_OK;
    }
    if (!c->sess_full && len >= c->min_size
        && device_fits(c, ivlen, aad_len, len, taglen, &why)) {
        st = ihsm_aead_device(c, c->enc, iv, ivlen, aad, aad_len, in, len, out, tag, taglen);
        if (st != IHSM_ERR_LIMIT_KEYS) {
            c->route = "device";
            return st == IHSM_OK;
        }
        /* the device holds as many keys as it may: this key stays here */
        c->sess_full = 1;
        IHSM_PROV_DBG("cipher: %s: the device has no room for a session key: records of "
                      "this context are sealed in process", c->alg->name);
    }
    c->route = "process";
    return sw_oneshot(c, iv, ivlen, aad, aad_len, in, len, out, tag, taglen);
}

/* A GCM encryption without an IV gets a random 96-bit one (the caller
 * reads it back as the "iv" parameter), as OpenSSL's own GCM does. */
static int ensure_iv(IHSM_AEAD_CTX *c)
{
    if (c->iv_state == IV_SET)
        return 1;
    if (c->iv_state == IV_NONE && c->enc && c->alg->gcm && c->ivlen >= DEFAULT_IVLEN) {
        if (RAND_bytes_ex(c->prov->libctx, c->iv, c->ivlen, 0) <= 0)
            return 0;
        c->iv_state = IV_SET;
        return 1;
    }
    ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT,
                    c->iv_state == IV_USED
                        ? "%s: this IV was used already: set a new one (init with an IV) "
                          "for each message"
                        : "%s: no IV set", c->alg->name);
    return 0;
}

/* The "iv" parameter: a GCM encryption gets its random IV now if it has none. */
static int iv_for_get(IHSM_AEAD_CTX *c)
{
    return c->iv_state != IV_NONE || !c->enc || ensure_iv(c);
}

/* Seal or open the buffered AAD with text in[0..len) into out. Returns 1,
 * 0 when the operation failed, -1 when it could not start (nothing used:
 * the caller may fix what was missing and call again). */
static int run_message(IHSM_AEAD_CTX *c, const unsigned char *in, size_t len,
                       unsigned char *out)
{
    size_t taglen = c->enc ? IHSM_AEAD_TAG_LEN : c->taglen;
    int ok;

    if (!key_ready(c))
        return no_key(c) - 1;
    if (c->done) {
        ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT,
                        "%s: the message is finished: init with a new IV for the next one",
                        c->alg->name);
        return -1;
    }
    if (!ensure_iv(c))
        return -1;
    if (!c->enc && !c->tag_set) {
        ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT,
                        "%s decryption: no tag: set it (EVP_CTRL_AEAD_SET_TAG or the \"tag\" "
                        "parameter) before the final call", c->alg->name);
        return -1;
    }
    if (len != 0 && out == NULL) {
        ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT, "%s: no output buffer",
                        c->alg->name);
        return -1;
    }
    ok = ihsm_aead_oneshot(c, c->iv, c->ivlen, c->aad, c->aad_len, in, len, out, c->tag,
                           taglen);
    IHSM_PROV_DBG("cipher: %s %s %zu bytes (AAD %zu) in %s: %s", c->alg->name,
                  c->enc ? "seal" : "open", len, c->aad_len, c->route, ok ? "ok" : "failed");
    c->done = 1;
    c->iv_state = IV_USED; /* a nonce is never used twice */
    ihsm_aead_gcm_iv_used(c);
    if (c->enc) {
        c->tag_set = ok;
        c->taglen = ok ? IHSM_AEAD_TAG_LEN : 0;
    } else {
        c->tag_set = 0; /* each message brings its own tag */
    }
    return ok;
}

/* A raw key whose messages all stay in process (ihsm-aead-min-size never,
 * or a device without room for its session key): no need to buffer, the
 * text goes through the in-process cipher as it comes, as with OpenSSL's
 * own ciphers. */
static int can_stream(const IHSM_AEAD_CTX *c)
{
    return c->have_raw && c->dev == NULL
           && (c->min_size == IHSM_AEAD_MIN_NEVER || c->sess_full);
}

static int stream_start(IHSM_AEAD_CTX *c)
{
    int n;

    if (!ensure_iv(c) || !sw_set_iv(c, c->iv, c->ivlen)
        || (c->aad_len != 0 && !EVP_CipherUpdate(c->sw, NULL, &n, c->aad, (int)c->aad_len)))
        return 0;
    OPENSSL_cleanse(c->aad, c->aad_len);
    c->aad_len = 0;
    c->streaming = 1;
    c->iv_state = IV_USED; /* the nonce is spent from here on */
    ihsm_aead_gcm_iv_used(c);
    c->route = "process";
    return 1;
}

static int stream_final(IHSM_AEAD_CTX *c, unsigned char *out, size_t *outl)
{
    int n = 0, ok;

    if (!c->enc && !c->tag_set) {
        ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT,
                        "%s decryption: no tag: set it (EVP_CTRL_AEAD_SET_TAG or the \"tag\" "
                        "parameter) before the final call", c->alg->name);
        return 0;
    }
    if (c->enc)
        ok = EVP_CipherFinal_ex(c->sw, out, &n)
             && EVP_CIPHER_CTX_ctrl(c->sw, EVP_CTRL_AEAD_GET_TAG, IHSM_AEAD_TAG_LEN, c->tag) > 0;
    else
        ok = EVP_CIPHER_CTX_ctrl(c->sw, EVP_CTRL_AEAD_SET_TAG, (int)c->taglen, c->tag) > 0
             && EVP_CipherFinal_ex(c->sw, out, &n);
    if (!ok && !c->enc)
        ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT,
                        "%s decryption failed: the tag does not match (the ciphertext, AAD, "
                        "nonce or tag was altered, or this is not the key it was sealed with)",
                        c->alg->name);
    message_reset(c);
    c->done = 1;
    c->tag_set = c->enc && ok;
    if (c->enc)
        c->taglen = ok ? IHSM_AEAD_TAG_LEN : 0;
    *outl = ok ? (size_t)n : 0;
    return ok;
}

static int add_aad(IHSM_AEAD_CTX *c, const unsigned char *in, size_t inl)
{
    if (c->data_started) {
        ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT,
                        "%s: AAD must come before the data", c->alg->name);
        return 0;
    }
    return buf_append(c, &c->aad, &c->aad_len, &c->aad_cap, in, inl);
}

/* A device key cannot take more than one request: say so at once. */
static int check_device_room(IHSM_AEAD_CTX *c, size_t more)
{
    size_t max = ihsm_aead_device_max(c->ivlen);

    if (c->dev == NULL || (c->aad_len + c->data_len <= max && more <= max - c->aad_len - c->data_len))
        return 1;
    ihsm_prov_raise(c->prov, IHSM_R_UNSUPPORTED,
                    "%s with a device key: at most %zu bytes of AAD and text per message "
                    "(one device request)", c->alg->name, max);
    return 0;
}

int ihsm_aead_update(void *vctx, unsigned char *out, size_t *outl, size_t outsize,
                     const unsigned char *in, size_t inl)
{
    IHSM_AEAD_CTX *c = vctx;

    *outl = 0;
    if (c->tls_aad_set) {
        if (out == NULL || in == NULL || outsize < inl) {
            ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT,
                            "%s: a TLS record needs input and room for it", c->alg->name);
            return 0;
        }
        return ihsm_aead_tls_record(c, out, outl, in, inl);
    }
    if (!key_ready(c))
        return no_key(c);
    if (inl == 0)
        return 1;
    if (c->done) {
        ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT,
                        "%s: the message is finished: init with a new IV for the next one",
                        c->alg->name);
        return 0;
    }
    if (!check_device_room(c, inl))
        return 0;
    if (out == NULL)
        return add_aad(c, in, inl);
    if (inl > INT_MAX)
        return 0;
    if (!c->streaming && can_stream(c) && !stream_start(c))
        return 0;
    c->data_started = 1;
    if (c->streaming) {
        int n = 0;

        if (!EVP_CipherUpdate(c->sw, out, &n, in, (int)inl))
            return 0;
        *outl = (size_t)n;
        return 1;
    }
    /* No output yet: final() returns the whole message once the device
     * (or the tag check) has had all of it. */
    return buf_append(c, &c->data, &c->data_len, &c->data_cap, in, inl);
}

int ihsm_aead_final(void *vctx, unsigned char *out, size_t *outl, size_t outsize)
{
    IHSM_AEAD_CTX *c = vctx;
    size_t len = c->data_len;
    int ok;

    (void)outsize; /* EVP passes 0 for stream ciphers: the buffered text is ours to return */
    *outl = 0;
    if (c->tls_aad_set) {
        ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT,
                        "%s: a TLS record goes through one update call", c->alg->name);
        return 0;
    }
    if (c->streaming)
        return stream_final(c, out, outl);
    ok = run_message(c, c->data, len, out);
    if (ok < 0)
        return 0;
    message_reset(c);
    c->done = 1;
    if (ok)
        *outl = len;
    return ok;
}

int ihsm_aead_cipher(void *vctx, unsigned char *out, size_t *outl, size_t outsize,
                     const unsigned char *in, size_t inl)
{
    IHSM_AEAD_CTX *c = vctx;
    int ok;

    *outl = 0;
    if (c->tls_aad_set)
        return ihsm_aead_update(vctx, out, outl, outsize, in, inl);
    if (in == NULL) { /* EVP_Cipher(ctx, out, NULL, 0): the final call */
        if (c->done)
            return 1; /* the message went with the data */
        return ihsm_aead_final(vctx, out, outl, outsize);
    }
    if (out == NULL)
        return ihsm_aead_update(vctx, NULL, outl, outsize, in, inl);
    if (outsize < inl) {
        ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT, "%s: output buffer too small",
                        c->alg->name);
        return 0;
    }
    /* EVP_Cipher with the text: the whole message in one call, one device
     * request, the output at once (there is no final to carry it). */
    if (c->data_len != 0 || c->streaming) {
        size_t n1 = 0, n2 = 0;

        if (!ihsm_aead_update(vctx, out, &n1, outsize, in, inl)
            || !ihsm_aead_final(vctx, out + n1, &n2, outsize - n1))
            return 0;
        *outl = n1 + n2;
        return 1;
    }
    if (!check_device_room(c, inl))
        return 0;
    ok = run_message(c, in, inl, out);
    if (ok < 0)
        return 0;
    message_reset(c);
    c->done = 1;
    if (ok)
        *outl = inl;
    return ok;
}

/* ---------------------------------------------------------------- parameters */

static const OSSL_PARAM known_gettable_params[] = {
    OSSL_PARAM_uint(OSSL_CIPHER_PARAM_MODE, NULL),
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_KEYLEN, NULL),
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_IVLEN, NULL),
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_BLOCK_SIZE, NULL),
    OSSL_PARAM_int(OSSL_CIPHER_PARAM_AEAD, NULL),
    OSSL_PARAM_int(OSSL_CIPHER_PARAM_CUSTOM_IV, NULL),
    OSSL_PARAM_int(OSSL_CIPHER_PARAM_CTS, NULL),
    OSSL_PARAM_int(OSSL_CIPHER_PARAM_TLS1_MULTIBLOCK, NULL),
    OSSL_PARAM_int(OSSL_CIPHER_PARAM_HAS_RAND_KEY, NULL),
    OSSL_PARAM_END
};

const OSSL_PARAM *ihsm_aead_gettable_params(void *provctx)
{
    (void)provctx;
    return known_gettable_params;
}

int ihsm_aead_get_params(OSSL_PARAM params[], const IHSM_AEAD_ALG *alg)
{
    OSSL_PARAM *p;

    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_MODE)) != NULL
        && !OSSL_PARAM_set_uint(p, alg->mode))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_KEYLEN)) != NULL
        && !OSSL_PARAM_set_size_t(p, alg->keylen))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_IVLEN)) != NULL
        && !OSSL_PARAM_set_size_t(p, DEFAULT_IVLEN))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_BLOCK_SIZE)) != NULL
        && !OSSL_PARAM_set_size_t(p, 1))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_AEAD)) != NULL
        && !OSSL_PARAM_set_int(p, 1))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_CUSTOM_IV)) != NULL
        && !OSSL_PARAM_set_int(p, 1))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_CTS)) != NULL
        && !OSSL_PARAM_set_int(p, 0))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_TLS1_MULTIBLOCK)) != NULL
        && !OSSL_PARAM_set_int(p, 0))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_HAS_RAND_KEY)) != NULL
        && !OSSL_PARAM_set_int(p, 0))
        return 0;
    return 1;
}

#define COMMON_GETTABLE                                                     \
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_KEYLEN, NULL),                      \
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_IVLEN, NULL),                       \
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_AEAD_TAGLEN, NULL),                 \
    OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, NULL, 0),           \
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_AEAD_TLS1_AAD_PAD, NULL),           \
    OSSL_PARAM_utf8_ptr(IHSM_CIPHER_PARAM_ROUTE, NULL, 0)

#define COMMON_SETTABLE                                                     \
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_KEYLEN, NULL),                      \
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, NULL),                  \
    OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, NULL, 0),           \
    OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_AAD, NULL, 0),      \
    OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_IV_FIXED, NULL, 0), \
    OSSL_PARAM_utf8_string(IHSM_CIPHER_PARAM_KEY, NULL, 0),                 \
    OSSL_PARAM_octet_string(IHSM_CIPHER_PARAM_KEY_BLOB, NULL, 0),           \
    OSSL_PARAM_size_t(IHSM_CIPHER_PARAM_MIN_SIZE, NULL)

static const OSSL_PARAM gcm_gettable_ctx[] = {
    COMMON_GETTABLE,
    OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_IV, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_UPDATED_IV, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_GET_IV_GEN, NULL, 0),
    OSSL_PARAM_END
};
static const OSSL_PARAM gcm_settable_ctx[] = {
    COMMON_SETTABLE,
    OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_SET_IV_INV, NULL, 0),
    OSSL_PARAM_END
};
static const OSSL_PARAM chacha_gettable_ctx[] = {
    COMMON_GETTABLE,
    OSSL_PARAM_END
};
static const OSSL_PARAM chacha_settable_ctx[] = {
    COMMON_SETTABLE,
    OSSL_PARAM_END
};

const OSSL_PARAM *ihsm_aead_gcm_gettable_ctx_params(void *cctx, void *provctx)
{
    (void)cctx, (void)provctx;
    return gcm_gettable_ctx;
}

const OSSL_PARAM *ihsm_aead_gcm_settable_ctx_params(void *cctx, void *provctx)
{
    (void)cctx, (void)provctx;
    return gcm_settable_ctx;
}

const OSSL_PARAM *ihsm_aead_chacha_gettable_ctx_params(void *cctx, void *provctx)
{
    (void)cctx, (void)provctx;
    return chacha_gettable_ctx;
}

const OSSL_PARAM *ihsm_aead_chacha_settable_ctx_params(void *cctx, void *provctx)
{
    (void)cctx, (void)provctx;
    return chacha_settable_ctx;
}

static int put_octets(OSSL_PARAM *p, const void *v, size_t len)
{
    if (p->data_type == OSSL_PARAM_OCTET_PTR)
        return OSSL_PARAM_set_octet_ptr(p, v, len);
    return OSSL_PARAM_set_octet_string(p, v, len);
}

int ihsm_aead_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    IHSM_AEAD_CTX *c = vctx;
    OSSL_PARAM *p;

    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_KEYLEN)) != NULL
        && !OSSL_PARAM_set_size_t(p, c->alg->keylen))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_IVLEN)) != NULL
        && !OSSL_PARAM_set_size_t(p, c->ivlen))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_AEAD_TAGLEN)) != NULL
        && !OSSL_PARAM_set_size_t(p, c->taglen != 0 ? c->taglen : IHSM_AEAD_TAG_LEN))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_AEAD_TLS1_AAD_PAD)) != NULL
        && !OSSL_PARAM_set_size_t(p, c->tls_pad))
        return 0;
    if ((p = OSSL_PARAM_locate(params, IHSM_CIPHER_PARAM_ROUTE)) != NULL
        && !OSSL_PARAM_set_utf8_ptr(p, c->route))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_AEAD_TAG)) != NULL) {
        /* after encryption: the tag, or its first data_size bytes (a
         * truncated GCM tag is a prefix of the full one) */
        if (!c->enc || !c->tag_set || p->data_type != OSSL_PARAM_OCTET_STRING
            || p->data_size == 0 || p->data_size > IHSM_AEAD_TAG_LEN) {
            ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT,
                            "%s: no tag to give: it exists after an encryption's final call "
                            "(1 to 16 bytes)", c->alg->name);
            return 0;
        }
        if (p->data == NULL)
            p->return_size = c->taglen;
        else if (!OSSL_PARAM_set_octet_string(p, c->tag, p->data_size))
            return 0;
    }
    if (c->alg->gcm) {
        if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_IV)) != NULL
            && (!iv_for_get(c) || !put_octets(p, c->iv, c->ivlen)))
            return 0;
        if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_UPDATED_IV)) != NULL
            && (!iv_for_get(c) || !put_octets(p, c->iv, c->ivlen)))
            return 0;
        if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_AEAD_TLS1_GET_IV_GEN)) != NULL
            && (p->data == NULL || p->data_type != OSSL_PARAM_OCTET_STRING
                || !ihsm_aead_gcm_iv_gen(c, p->data, p->data_size)))
            return 0;
    }
    return 1;
}

static int set_tag(IHSM_AEAD_CTX *c, const OSSL_PARAM *p)
{
    if (p->data_type != OSSL_PARAM_OCTET_STRING || p->data_size == 0
        || p->data_size > IHSM_AEAD_TAG_LEN) {
        ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT,
                        "%s: a tag is 1 to 16 bytes", c->alg->name);
        return 0;
    }
    if (p->data == NULL) { /* a tag length only (ChaCha20-Poly1305, CCM style) */
        c->taglen = p->data_size;
        return 1;
    }
    if (c->enc) {
        ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT,
                        "%s: a tag is set for decryption only", c->alg->name);
        return 0;
    }
    memcpy(c->tag, p->data, p->data_size);
    c->taglen = p->data_size;
    c->tag_set = 1;
    return 1;
}

static int set_device_key(IHSM_AEAD_CTX *c, IHSM_AEAD_DEVKEY *k)
{
    if (k == NULL)
        return 0;
    drop_keys(c);
    if (c->sw != NULL)
        EVP_CIPHER_CTX_reset(c->sw); /* no raw key schedule left behind */
    c->dev = k;
    message_reset(c);
    return 1;
}

int ihsm_aead_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    IHSM_AEAD_CTX *c = vctx;
    const OSSL_PARAM *p;
    size_t sz;

    if (params == NULL)
        return 1;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_KEYLEN)) != NULL) {
        if (!OSSL_PARAM_get_size_t(p, &sz) || sz != c->alg->keylen) {
            ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT, "%s: the key length is %zu",
                            c->alg->name, c->alg->keylen);
            return 0;
        }
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_AEAD_IVLEN)) != NULL) {
        if (!OSSL_PARAM_get_size_t(p, &sz) || !ivlen_ok(c, sz)) {
            ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT,
                            "%s: invalid IV length (GCM: 1 to %d bytes; ChaCha20-Poly1305: 12)",
                            c->alg->name, IHSM_AEAD_MAX_IV);
            return 0;
        }
        if (sz != c->ivlen) {
            c->ivlen = sz;
            if (c->iv_state == IV_SET)
                c->iv_state = IV_USED; /* the IV set before is void */
        }
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_AEAD_TAG)) != NULL
        && !set_tag(c, p))
        return 0;
    if ((p = OSSL_PARAM_locate_const(params, IHSM_CIPHER_PARAM_KEY)) != NULL) {
        if (p->data_type != OSSL_PARAM_UTF8_STRING || p->data == NULL) {
            ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT,
                            "%s: \"" IHSM_CIPHER_PARAM_KEY "\" is a string: ihsm:NAME or the "
                            "path of a masked key file", c->alg->name);
            return 0;
        }
        if (!set_device_key(c, ihsm_aead_devkey_from_ref(c, p->data)))
            return 0;
    }
    if ((p = OSSL_PARAM_locate_const(params, IHSM_CIPHER_PARAM_KEY_BLOB)) != NULL) {
        if (p->data_type != OSSL_PARAM_OCTET_STRING || p->data == NULL) {
            ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT,
                            "%s: \"" IHSM_CIPHER_PARAM_KEY_BLOB "\" is an octet string",
                            c->alg->name);
            return 0;
        }
        if (!set_device_key(c, ihsm_aead_devkey_from_blob(c, p->data, p->data_size)))
            return 0;
    }
    if ((p = OSSL_PARAM_locate_const(params, IHSM_CIPHER_PARAM_MIN_SIZE)) != NULL
        && !OSSL_PARAM_get_size_t(p, &c->min_size))
        return 0;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_AEAD_TLS1_IV_FIXED)) != NULL) {
        if (p->data_type != OSSL_PARAM_OCTET_STRING
            || !ihsm_aead_tls_set_fixed(c, p->data, p->data_size)) {
            ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT, "%s: invalid TLS fixed IV",
                            c->alg->name);
            return 0;
        }
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_AEAD_TLS1_AAD)) != NULL) {
        if (p->data_type != OSSL_PARAM_OCTET_STRING
            || (sz = ihsm_aead_tls_init(c, p->data, p->data_size)) == 0) {
            ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT, "%s: invalid TLS record AAD",
                            c->alg->name);
            return 0;
        }
        c->tls_pad = sz;
    }
    if (c->alg->gcm
        && (p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_AEAD_TLS1_SET_IV_INV)) != NULL
        && (p->data == NULL || p->data_type != OSSL_PARAM_OCTET_STRING
            || !ihsm_aead_gcm_set_iv_inv(c, p->data, p->data_size)))
        return 0;
    return 1;
}
