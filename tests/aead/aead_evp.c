/*
 * The provider's AEAD ciphers through the EVP API against a real ihsmd
 * (evp.sh starts it and writes the configuration files):
 *
 *  - device keys (ihsm:NAME and a masked key file): seal and open through
 *    the provider; a flipped ciphertext bit, tag bit or AAD byte fails the
 *    open with a readable error and releases no plaintext; truncated tags;
 *    AAD and data in many updates; EVP_Cipher; a context copied mid-way;
 *    IV reuse refused;
 *  - raw keys (as libssl hands TLS record keys over): byte for byte the
 *    default provider's output, in the device (min size 0) and in process
 *    (below the min size), for AES-128/256-GCM and ChaCha20-Poly1305 at
 *    sizes 0 to 16 KiB + 1; TLS 1.2 records (GCM explicit nonces, ChaCha
 *    nonce XOR) opened by the other side; many records in flight as ASYNC
 *    jobs;
 *  - session keys: keys_loaded (ihsmctl stats) returns to where it was once
 *    the contexts are freed or re-keyed;
 *  - fetch routing: with ihsm-route = sign the ciphers do not exist; with
 *    aead they are taken by an unqualified fetch only when
 *    default_properties asks for ?ihsm.aead=yes.
 *
 * Usage: aead_evp DIR (DIR holds aead.cnf, pref.cnf, sign.cnf, k.pem)
 * Exit: 0 pass, 1 fail, 77 skip.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <openssl/async.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rand.h>

static int failures;
static const char *dir;
static OSSL_LIB_CTX *lc_aead, *lc_base;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);              \
            fprintf(stderr, __VA_ARGS__);                                     \
            fprintf(stderr, "\n");                                            \
            ERR_print_errors_fp(stderr);                                      \
            failures++;                                                       \
        }                                                                     \
    } while (0)

static OSSL_LIB_CTX *load(const char *name)
{
    char path[4096];
    OSSL_LIB_CTX *lc = OSSL_LIB_CTX_new();

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (lc == NULL || !OSSL_LIB_CTX_load_config(lc, path)) {
        fprintf(stderr, "cannot load %s\n", path);
        ERR_print_errors_fp(stderr);
        exit(1);
    }
    return lc;
}

static EVP_CIPHER *ours(const char *name)
{
    EVP_CIPHER *c = EVP_CIPHER_fetch(lc_aead, name, "provider=ihsm");

    if (c == NULL) {
        fprintf(stderr, "FAIL: no %s in the ihsm provider\n", name);
        ERR_print_errors_fp(stderr);
        exit(1);
    }
    return c;
}

static EVP_CIPHER *theirs(const char *name)
{
    return EVP_CIPHER_fetch(lc_base, name, NULL);
}

/* The device's counter, from ihsmctl stats --json. */
static long long stat_of(const char *name)
{
    char cmd[4096], buf[8192], key[64];
    const char *ctl = getenv("IHSMCTL");
    FILE *f;
    size_t n;
    char *p;

    snprintf(cmd, sizeof(cmd), "%s stats --json", ctl != NULL ? ctl : "ihsmctl");
    if ((f = popen(cmd, "r")) == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    pclose(f);
    buf[n] = '\0';
    snprintf(key, sizeof(key), "\"%s\":", name);
    for (p = buf; *p; p++) /* the json may have spaces after the colon */
        if (*p == ' ')
            memmove(p, p + 1, strlen(p));
    p = strstr(buf, key);
    return p != NULL ? atoll(p + strlen(key)) : -1;
}

/* ---------------------------------------------------------------- one message */

struct msg {
    const unsigned char *key;       /* raw key, or NULL */
    const char *devkey;             /* ihsm-key, or NULL */
    const unsigned char *iv;
    size_t ivlen;
    const unsigned char *aad;
    size_t aad_len;
    size_t chunk;                   /* update() pieces; 0: one */
    long min_size;                  /* ihsm-aead-min-size for this context; -1: config,
                                       NEVER: SIZE_MAX */
};
#define NEVER (-2)

static int set_params(EVP_CIPHER_CTX *ctx, const struct msg *m)
{
    OSSL_PARAM params[3], *p = params;
    size_t ms = m->min_size >= 0 ? (size_t)m->min_size : SIZE_MAX;

    if (m->devkey != NULL)
        *p++ = OSSL_PARAM_construct_utf8_string("ihsm-key", (char *)m->devkey, 0);
    if (m->min_size >= 0 || m->min_size == NEVER)
        *p++ = OSSL_PARAM_construct_size_t("ihsm-aead-min-size", &ms);
    *p = OSSL_PARAM_construct_end();
    return p == params || EVP_CIPHER_CTX_set_params(ctx, params);
}

static int feed(EVP_CIPHER_CTX *ctx, unsigned char *out, int *outl, const unsigned char *in,
                size_t len, size_t chunk)
{
    size_t off = 0;
    int n, total = 0;

    if (chunk == 0)
        chunk = len;
    while (off < len) {
        size_t k = len - off < chunk ? len - off : chunk;

        if (!EVP_CipherUpdate(ctx, out != NULL ? out + total : NULL, &n, in + off, (int)k))
            return 0;
        total += n;
        off += k;
    }
    *outl = total;
    return 1;
}

/* Seal: out gets len bytes, tag taglen. route: where it went ("device"...). */
static int seal(const EVP_CIPHER *c, const struct msg *m, const unsigned char *in, size_t len,
                unsigned char *out, unsigned char *tag, size_t taglen, const char **route)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, f = 0, ok;
    static char where[16];
    char *w = NULL;
    OSSL_PARAM gp[2];

    ok = ctx != NULL && EVP_EncryptInit_ex2(ctx, c, m->key, NULL, NULL) && set_params(ctx, m)
         && (m->ivlen == 12
             || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, (int)m->ivlen, NULL) > 0)
         && EVP_EncryptInit_ex2(ctx, NULL, NULL, m->iv, NULL)
         && (m->aad_len == 0 || feed(ctx, NULL, &n, m->aad, m->aad_len, m->chunk))
         && feed(ctx, out, &n, in, len, m->chunk)
         && EVP_EncryptFinal_ex(ctx, out + n, &f) && (size_t)(n + f) == len
         && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, (int)taglen, tag) > 0;
    if (ok && route != NULL) {
        gp[0] = OSSL_PARAM_construct_utf8_ptr("ihsm-route", &w, 0);
        gp[1] = OSSL_PARAM_construct_end();
        *route = "?";
        if (EVP_CIPHER_CTX_get_params(ctx, gp) && w != NULL) {
            snprintf(where, sizeof(where), "%s", w);
            *route = where;
        }
    }
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

static int open_(const EVP_CIPHER *c, const struct msg *m, const unsigned char *in, size_t len,
                 unsigned char *out, const unsigned char *tag, size_t taglen)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, f = 0, ok;

    ok = ctx != NULL && EVP_DecryptInit_ex2(ctx, c, m->key, NULL, NULL) && set_params(ctx, m)
         && (m->ivlen == 12
             || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, (int)m->ivlen, NULL) > 0)
         && EVP_DecryptInit_ex2(ctx, NULL, NULL, m->iv, NULL)
         && (m->aad_len == 0 || feed(ctx, NULL, &n, m->aad, m->aad_len, m->chunk))
         && feed(ctx, out, &n, in, len, m->chunk)
         && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, (int)taglen, (void *)tag) > 0
         && EVP_DecryptFinal_ex(ctx, out + n, &f) && (size_t)(n + f) == len;
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

static int err_has(const char *needle)
{
    char buf[1024];
    unsigned long e;
    const char *data;
    int flags, found = 0;

    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        if (strstr(buf, needle) != NULL
            || ((flags & ERR_TXT_STRING) && data != NULL && strstr(data, needle) != NULL))
            found = 1;
    }
    return found;
}

static int all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

/* ---------------------------------------------------------------- device keys */

static void test_device_key(const char *alg, const char *devkey)
{
    static const size_t sizes[] = { 0, 1, 16, 17, 1000, 16385, 100000 };
    EVP_CIPHER *c = ours(alg);
    unsigned char iv[12], aad[40], tag[16], tag2[16];
    unsigned char *in = malloc(100000), *ct = malloc(100000), *pt = malloc(100000);
    struct msg m = { NULL, devkey, iv, sizeof(iv), aad, sizeof(aad), 0, -1 };
    const char *route = NULL;

    RAND_bytes(iv, sizeof(iv));
    RAND_bytes(aad, sizeof(aad));
    RAND_bytes(in, 100000);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];

        CHECK(seal(c, &m, in, n, ct, tag, 16, &route), "%s %s seal %zu", alg, devkey, n);
        CHECK(route != NULL && strcmp(route, "device") == 0, "%s %zu went to %s", alg, n,
              route ? route : "?");
        CHECK(n < 16 || memcmp(ct, in, 16) != 0, "%s %zu: ciphertext is the plaintext", alg, n);
        memset(pt, 0xEE, n);
        CHECK(open_(c, &m, ct, n, pt, tag, 16) && memcmp(pt, in, n) == 0,
              "%s %s open %zu", alg, devkey, n);
    }
    /* the same message twice under one key and IV is the same ciphertext:
     * the device is deterministic for a given nonce */
    CHECK(seal(c, &m, in, 1000, ct, tag, 16, NULL) && seal(c, &m, in, 1000, pt, tag2, 16, NULL)
          && memcmp(ct, pt, 1000) == 0 && memcmp(tag, tag2, 16) == 0, "%s: not repeatable", alg);

    /* tampering: a ciphertext bit, a tag bit, the AAD */
    CHECK(seal(c, &m, in, 1000, ct, tag, 16, NULL), "%s seal 1000", alg);
    ct[500] ^= 0x04;
    memset(pt, 0xAA, 1000);
    ERR_clear_error();
    CHECK(!open_(c, &m, ct, 1000, pt, tag, 16), "%s: flipped ciphertext bit opened", alg);
    CHECK(err_has("tag does not match"), "%s: no 'tag does not match' error", alg);
    CHECK(all_zero(pt, 1000) || memcmp(pt, in, 1000) != 0, "%s: plaintext released", alg);
    CHECK(memcmp(pt, in, 500) != 0, "%s: plaintext of a forged message released", alg);
    ct[500] ^= 0x04;
    tag[15] ^= 0x80;
    CHECK(!open_(c, &m, ct, 1000, pt, tag, 16), "%s: flipped tag bit opened", alg);
    CHECK(err_has("tag does not match"), "%s: no error for a bad tag", alg);
    tag[15] ^= 0x80;
    aad[3] ^= 1;
    CHECK(!open_(c, &m, ct, 1000, pt, tag, 16), "%s: altered AAD opened", alg);
    ERR_clear_error();
    aad[3] ^= 1;
    CHECK(open_(c, &m, ct, 1000, pt, tag, 16) && memcmp(pt, in, 1000) == 0,
          "%s: the untouched message no longer opens", alg);

    /* truncated tags: a prefix of the full tag (GCM 12..16 in the device) */
    if (strstr(alg, "GCM") != NULL) {
        CHECK(seal(c, &m, in, 300, ct, tag, 16, NULL), "%s: seal 300", alg);
        for (size_t tl = 12; tl <= 16; tl++) {
            CHECK(seal(c, &m, in, 300, ct, tag2, tl, NULL) && memcmp(tag2, tag, tl) == 0,
                  "%s: a %zu-byte tag is not the full tag's prefix", alg, tl);
            CHECK(open_(c, &m, ct, 300, pt, tag2, tl) && memcmp(pt, in, 300) == 0,
                  "%s: open with a %zu-byte tag", alg, tl);
        }
        CHECK(seal(c, &m, in, 300, ct, tag2, 8, NULL), "%s: 8-byte tag out", alg);
        ERR_clear_error();
        CHECK(!open_(c, &m, ct, 300, pt, tag2, 8), "%s: an 8-byte tag opened in the device",
              alg);
        CHECK(err_has("12 to 16"), "%s: the short tag error does not say what the device takes",
              alg);
    } else {
        CHECK(seal(c, &m, in, 300, ct, tag2, 16, NULL), "%s: seal", alg);
        ERR_clear_error();
        CHECK(!open_(c, &m, ct, 300, pt, tag2, 12), "%s: a 12-byte tag opened in the device",
              alg);
        ERR_clear_error();
    }

    /* AAD and data in many small updates: the same message */
    {
        struct msg mm = m;

        mm.chunk = 7;
        CHECK(seal(c, &m, in, 5000, ct, tag, 16, NULL), "%s: one-piece seal", alg);
        CHECK(seal(c, &mm, in, 5000, pt, tag2, 16, NULL), "%s: seal in 7-byte updates", alg);
        CHECK(memcmp(ct, pt, 5000) == 0 && memcmp(tag, tag2, 16) == 0,
              "%s: pieces differ from one piece", alg);
        CHECK(open_(c, &mm, ct, 5000, pt, tag, 16) && memcmp(pt, in, 5000) == 0,
              "%s: open in 7-byte updates", alg);
    }

    /* EVP_Cipher: one call with the text, the output at once */
    {
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        int r1, r2, r3;

        CHECK(seal(c, &m, in, 777, ct, tag, 16, NULL), "%s: seal", alg);
        CHECK(EVP_EncryptInit_ex2(ctx, c, NULL, iv, NULL) && set_params(ctx, &m),
              "%s: init", alg);
        r1 = EVP_Cipher(ctx, NULL, aad, sizeof(aad));
        r2 = EVP_Cipher(ctx, pt, in, 777);
        r3 = EVP_Cipher(ctx, NULL, NULL, 0);
        CHECK(r1 >= 0 && r2 == 777 && r3 == 0, "%s: EVP_Cipher returned %d %d %d", alg, r1, r2,
              r3);
        CHECK(memcmp(pt, ct, 777) == 0
              && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag2) > 0
              && memcmp(tag, tag2, 16) == 0, "%s: EVP_Cipher differs from update/final", alg);
        /* a second message under the same IV is refused */
        ERR_clear_error();
        CHECK(EVP_Cipher(ctx, pt, in, 10) < 0, "%s: an IV used twice", alg);
        CHECK(err_has("IV") || err_has("finished"), "%s: the IV reuse error is unclear", alg);
        EVP_CIPHER_CTX_free(ctx);
    }

    /* a context copied half way finishes the same as the original */
    {
        EVP_CIPHER_CTX *a = EVP_CIPHER_CTX_new(), *b = EVP_CIPHER_CTX_new();
        int n, f;

        CHECK(EVP_EncryptInit_ex2(a, c, NULL, NULL, NULL) && set_params(a, &m)
              && EVP_EncryptInit_ex2(a, NULL, NULL, iv, NULL)
              && EVP_EncryptUpdate(a, NULL, &n, aad, sizeof(aad))
              && EVP_EncryptUpdate(a, ct, &n, in, 600) && EVP_CIPHER_CTX_copy(b, a)
              && EVP_EncryptUpdate(a, ct + n, &f, in + 600, 400)
              && EVP_EncryptUpdate(b, pt + n, &f, in + 600, 400)
              && EVP_EncryptFinal_ex(a, ct, &f) && f == 1000 && EVP_EncryptFinal_ex(b, pt, &f)
              && f == 1000 && memcmp(ct, pt, 1000) == 0, "%s: copied context differs", alg);
        EVP_CIPHER_CTX_free(a);
        EVP_CIPHER_CTX_free(b);
    }
    free(in);
    free(ct);
    free(pt);
    EVP_CIPHER_free(c);
}

/* A device key of the wrong size or type is refused with a reason. */
static void test_device_key_refusals(void)
{
    EVP_CIPHER *c = ours("AES-128-GCM");
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    OSSL_PARAM p[2];

    p[0] = OSSL_PARAM_construct_utf8_string("ihsm-key", "ihsm:k", 0);
    p[1] = OSSL_PARAM_construct_end();
    ERR_clear_error();
    CHECK(!EVP_EncryptInit_ex2(ctx, c, NULL, NULL, p), "a 256-bit key for AES-128-GCM");
    CHECK(err_has("needs 128 bits"), "the key size refusal does not say why");
    p[0] = OSSL_PARAM_construct_utf8_string("ihsm-key", "ihsm:no-such-key", 0);
    CHECK(!EVP_EncryptInit_ex2(ctx, c, NULL, NULL, p), "an unknown key");
    ERR_clear_error();
    p[0] = OSSL_PARAM_construct_utf8_string("ihsm-key", "/nonexistent/k.pem", 0);
    CHECK(!EVP_EncryptInit_ex2(ctx, c, NULL, NULL, p), "a missing key file");
    CHECK(err_has("cannot read a masked key file"), "the missing file error is unclear");
    /* no key at all */
    CHECK(EVP_EncryptInit_ex2(ctx, c, NULL, (const unsigned char *)"123456789012", NULL),
          "init without a key");
    CHECK(!EVP_EncryptUpdate(ctx, NULL, &(int){ 0 }, (const unsigned char *)"x", 1),
          "an update without a key");
    CHECK(err_has("no key"), "the missing key error is unclear");
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(c);
}

/* A file from `ihsmctl encrypt --name k --aad aad.bin` (IV || ct || tag)
 * opens through the provider with ihsm:k: the same AEAD_SEAL underneath. */
static unsigned char *slurp(const char *name, size_t *len)
{
    char path[4096];
    unsigned char *buf = malloc(1 << 20);
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (buf == NULL || (f = fopen(path, "rb")) == NULL) {
        free(buf);
        return NULL;
    }
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void test_ihsmctl_interop(void)
{
    size_t elen = 0, mlen = 0, alen = 0;
    unsigned char *enc = slurp("enc.bin", &elen), *msg = slurp("msg.bin", &mlen);
    unsigned char *aad = slurp("aad.bin", &alen), *pt;
    EVP_CIPHER *c = ours("AES-256-GCM");
    struct msg m = { NULL, "ihsm:k", NULL, 12, NULL, 0, 0, -1 };

    CHECK(enc != NULL && msg != NULL && aad != NULL && elen == 12 + mlen + 16,
          "ihsmctl encrypt's files are missing");
    if (enc != NULL && msg != NULL && aad != NULL && elen == 12 + mlen + 16) {
        m.iv = enc;
        m.aad = aad;
        m.aad_len = alen;
        pt = malloc(mlen + 1);
        CHECK(open_(c, &m, enc + 12, mlen, pt, enc + 12 + mlen, 16)
              && memcmp(pt, msg, mlen) == 0, "a file from ihsmctl encrypt does not open");
        free(pt);
    }
    free(enc);
    free(msg);
    free(aad);
    EVP_CIPHER_free(c);
}

/* ---------------------------------------------------------------- raw keys */

static void test_raw_key(const char *alg)
{
    static const size_t sizes[] = { 0, 1, 64, 255, 256, 1024, 4096, 16384, 16385 };
    EVP_CIPHER *c = ours(alg), *d = theirs(alg);
    unsigned char key[32], iv[12], aad[13], tag[16], tag2[16];
    unsigned char *in = malloc(16385), *ct = malloc(16385), *ct2 = malloc(16385);
    unsigned char *pt = malloc(16385);
    size_t keylen = (size_t)EVP_CIPHER_get_key_length(c);
    struct msg dev = { key, NULL, iv, sizeof(iv), aad, sizeof(aad), 0, 0 };
    struct msg cfg = dev, base = dev;
    const char *route = NULL;

    cfg.min_size = -1; /* the configured default */
    base.min_size = -1;
    RAND_bytes(key, sizeof(key));
    RAND_bytes(iv, sizeof(iv));
    RAND_bytes(aad, sizeof(aad));
    RAND_bytes(in, 16385);
    CHECK(keylen == (strstr(alg, "128") ? 16u : 32u), "%s key length %zu", alg, keylen);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];

        CHECK(seal(d, &base, in, n, ct2, tag2, 16, NULL), "%s default seal %zu", alg, n);
        /* in the device (min size 0) */
        CHECK(seal(c, &dev, in, n, ct, tag, 16, &route), "%s raw seal %zu", alg, n);
        CHECK(route != NULL && strcmp(route, "device") == 0, "%s %zu with min 0 went to %s",
              alg, n, route ? route : "?");
        CHECK(memcmp(ct, ct2, n) == 0 && memcmp(tag, tag2, 16) == 0,
              "%s %zu: device output differs from the default provider's", alg, n);
        CHECK(open_(c, &dev, ct2, n, pt, tag2, 16) && memcmp(pt, in, n) == 0,
              "%s %zu: the device does not open the default provider's output", alg, n);
        /* by the configured minimum */
        CHECK(seal(c, &cfg, in, n, ct, tag, 16, &route), "%s raw seal %zu (config)", alg, n);
        CHECK(memcmp(ct, ct2, n) == 0 && memcmp(tag, tag2, 16) == 0,
              "%s %zu: output differs from the default provider's (%s)", alg, n, route);
        CHECK(open_(c, &cfg, ct2, n, pt, tag2, 16) && memcmp(pt, in, n) == 0,
              "%s %zu: does not open (%s)", alg, n, route);
    }
    /* below the minimum: in process; at or above: the device */
    {
        struct msg mm = dev;

        mm.min_size = 1024;
        CHECK(seal(c, &mm, in, 1023, ct, tag, 16, &route) && strcmp(route, "process") == 0,
              "%s 1023 < 1024 went to %s", alg, route);
        CHECK(seal(c, &mm, in, 1024, ct, tag, 16, &route) && strcmp(route, "device") == 0,
              "%s 1024 >= 1024 went to %s", alg, route);
    }
    /* never in the device: the text streams through the in-process cipher
     * (update returns output at once); in one piece and in 7-byte pieces,
     * sealing and opening, and a forgery fails */
    {
        struct msg nv = dev, nv7;
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        int n = -1;

        nv.min_size = NEVER;
        nv7 = nv;
        nv7.chunk = 7;
        CHECK(seal(d, &base, in, 5000, ct2, tag2, 16, NULL), "%s default seal", alg);
        CHECK(seal(c, &nv, in, 5000, ct, tag, 16, &route) && strcmp(route, "process") == 0
              && memcmp(ct, ct2, 5000) == 0 && memcmp(tag, tag2, 16) == 0,
              "%s: never-routed seal differs from the default provider's (%s)", alg, route);
        CHECK(seal(c, &nv7, in, 5000, ct, tag, 16, NULL) && memcmp(ct, ct2, 5000) == 0
              && memcmp(tag, tag2, 16) == 0, "%s: never-routed seal in pieces differs", alg);
        CHECK(open_(c, &nv7, ct2, 5000, pt, tag2, 16) && memcmp(pt, in, 5000) == 0,
              "%s: never-routed open in pieces", alg);
        ct2[10] ^= 1;
        ERR_clear_error();
        CHECK(!open_(c, &nv, ct2, 5000, pt, tag2, 16), "%s: never-routed forgery opened", alg);
        CHECK(err_has("tag does not match"), "%s: unclear error (never routed)", alg);
        ct2[10] ^= 1;
        /* streaming: update gives the text back at once; EVP_Cipher then
         * finishes the message and returns its own part */
        CHECK(EVP_EncryptInit_ex2(ctx, c, key, iv, NULL) && set_params(ctx, &nv)
              && EVP_EncryptUpdate(ctx, NULL, &n, aad, sizeof(aad))
              && EVP_EncryptUpdate(ctx, ct, &n, in, 100) && n == 100,
              "%s: never-routed update returned %d bytes of 100", alg, n);
        n = EVP_Cipher(ctx, ct + 100, in + 100, 4900);
        CHECK(n == 4900 && EVP_Cipher(ctx, NULL, NULL, 0) == 0
              && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag) > 0
              && memcmp(ct, ct2, 5000) == 0 && memcmp(tag, tag2, 16) == 0,
              "%s: update then EVP_Cipher (in process) returned %d, or differs", alg, n);
        /* EVP_Cipher alone, in the device */
        CHECK(EVP_EncryptInit_ex2(ctx, c, key, iv, NULL) && set_params(ctx, &dev)
              && EVP_Cipher(ctx, NULL, aad, sizeof(aad)) >= 0
              && EVP_Cipher(ctx, ct, in, 5000) == 5000 && EVP_Cipher(ctx, NULL, NULL, 0) == 0
              && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag) > 0
              && memcmp(ct, ct2, 5000) == 0 && memcmp(tag, tag2, 16) == 0,
              "%s: EVP_Cipher in the device differs", alg);
        EVP_CIPHER_CTX_free(ctx);
    }
    /* short tags stay in process with raw keys, and still match */
    if (strstr(alg, "GCM") != NULL) {
        CHECK(seal(d, &base, in, 100, ct2, tag2, 16, NULL)
              && open_(c, &dev, ct2, 100, pt, tag2, 8) && memcmp(pt, in, 100) == 0,
              "%s: an 8-byte tag with a raw key", alg);
    }
    /* tampering in the device with a raw key */
    CHECK(seal(c, &dev, in, 2000, ct, tag, 16, NULL), "%s seal", alg);
    ct[1999] ^= 1;
    ERR_clear_error();
    CHECK(!open_(c, &dev, ct, 2000, pt, tag, 16), "%s: a flipped bit opened (raw key)", alg);
    CHECK(err_has("tag does not match"), "%s: unclear error (raw key)", alg);
    free(in);
    free(ct);
    free(ct2);
    free(pt);
    EVP_CIPHER_free(c);
    EVP_CIPHER_free(d);
}

/* ---------------------------------------------------------------- TLS 1.2 records */

/* One record the way libssl 3.0 does it: TLS1_AAD, one EVP_CipherUpdate. */
static int tls_record(EVP_CIPHER_CTX *ctx, int enc, uint64_t seq, unsigned char *buf,
                      size_t payload, size_t *outl, int gcm)
{
    unsigned char aad[13];
    size_t reclen = (gcm ? 8 : 0) + payload + (enc ? 0 : 16);
    int pad, n = 0;

    for (int i = 0; i < 8; i++)
        aad[i] = (unsigned char)(seq >> (56 - 8 * i));
    aad[8] = 23;
    aad[9] = 3;
    aad[10] = 3;
    aad[11] = (unsigned char)(reclen >> 8);
    aad[12] = (unsigned char)reclen;
    pad = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_TLS1_AAD, 13, aad);
    if (pad != 16)
        return 0;
    if (enc)
        reclen += (size_t)pad;
    if (!EVP_CipherUpdate(ctx, buf, &n, buf, (int)reclen))
        return 0;
    *outl = (size_t)n;
    return 1;
}

static EVP_CIPHER_CTX *tls_ctx(const EVP_CIPHER *c, int enc, const unsigned char *key,
                               const unsigned char *iv, int gcm, long min_size)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    OSSL_PARAM p[2];
    size_t ms = (size_t)min_size;

    p[0] = OSSL_PARAM_construct_size_t("ihsm-aead-min-size", &ms);
    p[1] = OSSL_PARAM_construct_end();
    if (gcm) {
        if (!EVP_CipherInit_ex(ctx, c, NULL, key, NULL, enc)
            || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IV_FIXED, 4, (void *)iv) <= 0)
            goto err;
    } else if (!EVP_CipherInit_ex(ctx, c, NULL, key, iv, enc)) {
        goto err;
    }
    if (min_size >= 0 && EVP_CIPHER_get0_provider(c) != NULL
        && strcmp(OSSL_PROVIDER_get0_name(EVP_CIPHER_get0_provider(c)), "ihsm") == 0
        && !EVP_CIPHER_CTX_set_params(ctx, p))
        goto err;
    return ctx;
err:
    EVP_CIPHER_CTX_free(ctx);
    return NULL;
}

static void test_tls12(const char *alg, long min_size)
{
    int gcm = strstr(alg, "GCM") != NULL;
    EVP_CIPHER *c = ours(alg), *d = theirs(alg);
    unsigned char key[32], iv[12], buf[16384 + 64], msg[16384], buf2[16384 + 64];
    static const size_t sizes[] = { 0, 1, 100, 1500, 16384 };
    EVP_CIPHER_CTX *seal_ours = tls_ctx(c, 1, (RAND_bytes(key, 32), RAND_bytes(iv, 12), key),
                                        iv, gcm, min_size);
    EVP_CIPHER_CTX *open_ours = tls_ctx(c, 0, key, iv, gcm, min_size);
    EVP_CIPHER_CTX *seal_def = tls_ctx(d, 1, key, iv, gcm, -1);
    EVP_CIPHER_CTX *open_def = tls_ctx(d, 0, key, iv, gcm, -1);
    size_t ex = gcm ? 8 : 0, outl;

    CHECK(seal_ours && open_ours && seal_def && open_def, "%s: TLS contexts", alg);
    RAND_bytes(msg, sizeof(msg));
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && failures == 0; i++) {
        size_t n = sizes[i];
        uint64_t seq = 1000 + i;

        /* ours seals, the default provider opens */
        memcpy(buf + ex, msg, n);
        CHECK(tls_record(seal_ours, 1, seq, buf, n, &outl, gcm) && outl == ex + n + 16,
              "%s TLS seal %zu (outl %zu)", alg, n, outl);
        memcpy(buf2, buf, ex + n + 16);
        CHECK(tls_record(open_def, 0, seq, buf, n, &outl, gcm) && outl == n
              && memcmp(buf + ex, msg, n) == 0, "%s: default cannot open our record %zu", alg, n);
        if (!gcm) { /* ChaCha20-Poly1305 records are deterministic: compare */
            memcpy(buf + ex, msg, n);
            CHECK(tls_record(seal_def, 1, seq, buf, n, &outl, gcm)
                  && memcmp(buf, buf2, n + 16) == 0, "%s: record %zu differs from default",
                  alg, n);
        } else {
            memcpy(buf + ex, msg, n);
            CHECK(tls_record(seal_def, 1, seq, buf, n, &outl, gcm), "%s default seal", alg);
        }
        /* the default provider seals, ours opens; then a flipped bit */
        memcpy(buf + ex, msg, n);
        CHECK(tls_record(seal_def, 1, seq + 100, buf, n, &outl, gcm), "%s default seal", alg);
        memcpy(buf2, buf, ex + n + 16);
        CHECK(tls_record(open_ours, 0, seq + 100, buf, n, &outl, gcm) && outl == n
              && memcmp(buf + ex, msg, n) == 0, "%s: we cannot open the default's record %zu",
              alg, n);
        buf2[ex + n / 2] ^= 0x10;
        ERR_clear_error();
        CHECK(!tls_record(open_ours, 0, seq + 100, buf2, n, &outl, gcm),
              "%s: a flipped record %zu opened", alg, n);
        ERR_clear_error();
    }
    /* GCM: explicit nonces count up from where they started */
    if (gcm) {
        unsigned char e1[8], e2[8];

        memset(buf, 0, 64);
        CHECK(tls_record(seal_ours, 1, 1, buf, 10, &outl, 1), "seal");
        memcpy(e1, buf, 8);
        CHECK(tls_record(seal_ours, 1, 2, buf, 10, &outl, 1), "seal");
        memcpy(e2, buf, 8);
        e1[7]++;
        CHECK(memcmp(e1, e2, 7) == 0 || e1[7] == 0, "explicit nonces do not count up");
    }
    EVP_CIPHER_CTX_free(seal_ours);
    EVP_CIPHER_CTX_free(open_ours);
    EVP_CIPHER_CTX_free(seal_def);
    EVP_CIPHER_CTX_free(open_def);
    EVP_CIPHER_free(c);
    EVP_CIPHER_free(d);
}

/* ---------------------------------------------------------------- ASYNC */

struct job_arg {
    EVP_CIPHER_CTX *ctx;
    unsigned char iv[12];
    unsigned char in[4096], out[4096], tag[16];
};

static int job_fn(void *a)
{
    struct job_arg *j = *(struct job_arg **)a;
    int n = 0, f = 0;

    return EVP_EncryptInit_ex2(j->ctx, NULL, NULL, j->iv, NULL)
           && EVP_EncryptUpdate(j->ctx, j->out, &n, j->in, sizeof(j->in))
           && EVP_EncryptFinal_ex(j->ctx, j->out + n, &f)
           && EVP_CIPHER_CTX_ctrl(j->ctx, EVP_CTRL_AEAD_GET_TAG, 16, j->tag) > 0;
}

/* 32 records in flight as ASYNC jobs on one thread: each pauses on the
 * device, all finish, each matches the default provider. */
static void test_async(void)
{
    enum { N = 32 };
    EVP_CIPHER *c = ours("AES-256-GCM"), *d = theirs("AES-256-GCM");
    struct job_arg *jobs = calloc(N, sizeof(*jobs));
    ASYNC_JOB *job[N] = { 0 };
    ASYNC_WAIT_CTX *w[N];
    int done[N] = { 0 }, left = N, paused = 0, rounds = 0;
    unsigned char key[32];
    struct msg m = { key, NULL, NULL, 12, NULL, 0, 0, 0 };

    RAND_bytes(key, sizeof(key));
    CHECK(ASYNC_init_thread(N, N), "ASYNC_init_thread");
    for (int i = 0; i < N; i++) {
        jobs[i].ctx = EVP_CIPHER_CTX_new();
        RAND_bytes(jobs[i].iv, 12);
        RAND_bytes(jobs[i].in, sizeof(jobs[i].in));
        w[i] = ASYNC_WAIT_CTX_new();
        CHECK(EVP_EncryptInit_ex2(jobs[i].ctx, c, key, NULL, NULL) && set_params(jobs[i].ctx, &m),
              "async ctx");
    }
    while (left > 0 && rounds++ < 200000) {
        for (int i = 0; i < N; i++) {
            int ret = 0;
            struct job_arg *a = &jobs[i];

            if (done[i])
                continue;
            switch (ASYNC_start_job(&job[i], w[i], &ret, job_fn, &a, sizeof(a))) {
            case ASYNC_PAUSE:
                paused++;
                break;
            case ASYNC_FINISH:
                CHECK(ret, "async seal %d failed", i);
                done[i] = 1;
                left--;
                break;
            default:
                CHECK(0, "ASYNC_start_job");
                done[i] = 1;
                left--;
            }
        }
        if (left > 0)
            usleep(50);
    }
    CHECK(left == 0, "%d async seals never finished", left);
    CHECK(paused >= N, "the jobs paused %d times for %d device requests", paused, N);
    for (int i = 0; i < N; i++) {
        unsigned char ct[4096], tag[16];
        struct msg b = { key, NULL, jobs[i].iv, 12, NULL, 0, 0, -1 };

        CHECK(seal(d, &b, jobs[i].in, sizeof(jobs[i].in), ct, tag, 16, NULL)
              && memcmp(ct, jobs[i].out, sizeof(ct)) == 0 && memcmp(tag, jobs[i].tag, 16) == 0,
              "async record %d differs from the default provider's", i);
        EVP_CIPHER_CTX_free(jobs[i].ctx);
        ASYNC_WAIT_CTX_free(w[i]);
    }
    ASYNC_cleanup_thread();
    free(jobs);
    EVP_CIPHER_free(c);
    EVP_CIPHER_free(d);
}

/* ---------------------------------------------------------------- session keys */

static void test_session_keys(void)
{
    enum { N = 50 };
    EVP_CIPHER *c = ours("ChaCha20-Poly1305");
    EVP_CIPHER_CTX *ctx[N];
    unsigned char key[32], iv[12], in[300], out[300];
    struct msg m = { key, NULL, iv, 12, NULL, 0, 0, 0 };
    long long k0 = stat_of("keys_loaded"), k1, k2, k3;
    int n, f;

    CHECK(k0 >= 0, "no keys_loaded in ihsmctl stats");
    RAND_bytes(in, sizeof(in));
    for (int i = 0; i < N; i++) {
        RAND_bytes(key, sizeof(key));
        RAND_bytes(iv, sizeof(iv));
        ctx[i] = EVP_CIPHER_CTX_new();
        CHECK(EVP_EncryptInit_ex2(ctx[i], c, key, iv, NULL) && set_params(ctx[i], &m)
              && EVP_EncryptUpdate(ctx[i], out, &n, in, sizeof(in))
              && EVP_EncryptFinal_ex(ctx[i], out, &f), "session key %d", i);
    }
    k1 = stat_of("keys_loaded");
    CHECK(k1 >= k0 + N, "%d contexts loaded %lld session keys", N, k1 - k0);
    /* re-keying releases the old one */
    for (int i = 0; i < N / 2; i++) {
        RAND_bytes(key, sizeof(key));
        CHECK(EVP_EncryptInit_ex2(ctx[i], NULL, key, iv, NULL), "rekey");
    }
    k2 = stat_of("keys_loaded");
    CHECK(k2 <= k1 - N / 2, "re-keying %d contexts: keys_loaded %lld -> %lld", N / 2, k1, k2);
    for (int i = 0; i < N; i++)
        EVP_CIPHER_CTX_free(ctx[i]);
    k3 = stat_of("keys_loaded");
    CHECK(k3 == k0, "keys_loaded %lld before, %lld with %d contexts, %lld after freeing them",
          k0, k1, N, k3);
    printf("session keys: keys_loaded %lld -> %lld -> %lld (re-keyed) -> %lld\n", k0, k1, k2, k3);
    EVP_CIPHER_free(c);
}

/* ---------------------------------------------------------------- fetching */

static void test_fetch_routing(void)
{
    OSSL_LIB_CTX *sign = load("sign.cnf"), *pref = load("pref.cnf");
    static const char *const names[] = { "AES-128-GCM", "AES-256-GCM", "ChaCha20-Poly1305",
                                         "id-aes128-GCM", "id-aes256-GCM" };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        EVP_CIPHER *a = EVP_CIPHER_fetch(sign, names[i], "provider=ihsm");
        EVP_CIPHER *b = EVP_CIPHER_fetch(sign, names[i], NULL);
        EVP_CIPHER *e = EVP_CIPHER_fetch(lc_aead, names[i], NULL);
        EVP_CIPHER *p = EVP_CIPHER_fetch(pref, names[i], NULL);
        EVP_CIPHER *q = EVP_CIPHER_fetch(pref, names[i], "provider=default");

        CHECK(a == NULL, "route sign offers %s", names[i]);
        CHECK(b != NULL && strcmp(OSSL_PROVIDER_get0_name(EVP_CIPHER_get0_provider(b)),
                                  "default") == 0, "route sign: %s not from default", names[i]);
        CHECK(e != NULL && strcmp(OSSL_PROVIDER_get0_name(EVP_CIPHER_get0_provider(e)),
                                  "default") == 0,
              "route aead without default_properties: unqualified %s is not default's",
              names[i]);
        CHECK(p != NULL && strcmp(OSSL_PROVIDER_get0_name(EVP_CIPHER_get0_provider(p)),
                                  "ihsm") == 0,
              "default_properties ?ihsm.aead=yes: unqualified %s is not ihsm's", names[i]);
        CHECK(q != NULL && strcmp(OSSL_PROVIDER_get0_name(EVP_CIPHER_get0_provider(q)),
                                  "default") == 0, "provider=default is not honoured");
        EVP_CIPHER_free(a);
        EVP_CIPHER_free(b);
        EVP_CIPHER_free(e);
        EVP_CIPHER_free(p);
        EVP_CIPHER_free(q);
    }
    ERR_clear_error();
    OSSL_LIB_CTX_free(sign);
    OSSL_LIB_CTX_free(pref);
}

int main(int argc, char **argv)
{
    char keyfile[4096];

    if (argc != 2) {
        fprintf(stderr, "usage: aead_evp DIR\n");
        return 2;
    }
    dir = argv[1];
    snprintf(keyfile, sizeof(keyfile), "%s/k.pem", dir);
    lc_aead = load("aead.cnf");
    if ((lc_base = OSSL_LIB_CTX_new()) == NULL || OSSL_PROVIDER_load(lc_base, "default") == NULL)
        return 1;

    test_fetch_routing();
    printf("fetch routing: done (%d failures)\n", failures);
    test_device_key("AES-256-GCM", "ihsm:k");
    test_device_key("AES-256-GCM", keyfile);
    test_device_key("ChaCha20-Poly1305", "ihsm:k");
    test_device_key("AES-128-GCM", "ihsm:k128");
    test_device_key_refusals();
    test_ihsmctl_interop();
    printf("device keys: done (%d failures)\n", failures);
    test_raw_key("AES-128-GCM");
    test_raw_key("AES-256-GCM");
    test_raw_key("ChaCha20-Poly1305");
    printf("raw keys: done (%d failures)\n", failures);
    test_tls12("AES-128-GCM", 0);
    test_tls12("AES-256-GCM", 0);
    test_tls12("ChaCha20-Poly1305", 0);
    test_tls12("AES-256-GCM", 1000000);
    test_tls12("ChaCha20-Poly1305", 1000000);
    printf("TLS 1.2 records: done (%d failures)\n", failures);
    test_async();
    printf("ASYNC: done (%d failures)\n", failures);
    test_session_keys();

    OSSL_LIB_CTX_free(lc_aead);
    OSSL_LIB_CTX_free(lc_base);
    if (failures != 0) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    printf("PASS\n");
    return 0;
}
