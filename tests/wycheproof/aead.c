/*
 * aead_test: AES-GCM and ChaCha20-Poly1305 with the vector's key held by
 * the device (imported as the device's secret key type), through the ihsm
 * provider's EVP_CIPHER. valid: seal(msg) = ct || tag and open(ct || tag) =
 * msg; invalid (modified tags, bad nonce sizes): open must fail, and a seal
 * that reproduces ct || tag fails the vector too.
 */
#include "wycheproof.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/provider.h>

/* The provider's cipher parameters for a device key (docs/configuration.md). */
#define KEY_BLOB_PARAM "ihsm-key-blob"  /* octet string: the masked blob */
#define ROUTE_PARAM "ihsm-route"        /* get: "device" or "process" */
/* OpenSSL 3.0's GCM takes IVs of at most 128 bytes, and so the device. */
#define MAX_GCM_IV 128

typedef struct {
    uint8_t *key, *iv, *aad, *msg, *ct, *tag;
    size_t key_len, iv_len, aad_len, msg_len, ct_len, tag_len;
} vec;

static void vec_free(vec *v)
{
    if (v->key != NULL)
        OPENSSL_cleanse(v->key, v->key_len);
    free(v->key);
    free(v->iv);
    free(v->aad);
    free(v->msg);
    free(v->ct);
    free(v->tag);
}

static int vec_read(const wp_json *t, vec *v)
{
    return wp_hex_member(t, "key", &v->key, &v->key_len) == 0
           && wp_hex_member(t, "iv", &v->iv, &v->iv_len) == 0
           && wp_hex_member(t, "aad", &v->aad, &v->aad_len) == 0
           && wp_hex_member(t, "msg", &v->msg, &v->msg_len) == 0
           && wp_hex_member(t, "ct", &v->ct, &v->ct_len) == 0
           && wp_hex_member(t, "tag", &v->tag, &v->tag_len) == 0
           && v->ct_len <= (size_t)1 << 30 && v->msg_len <= (size_t)1 << 30;
}

enum { DONE_OK, DONE_REFUSED };

/*
 * One seal (enc) or open through the provider with the device key. Seal:
 * out gets ct, tag_out the tag. Open: out gets the plaintext. Returns
 * DONE_OK or DONE_REFUSED (why says what refused it).
 */
static int one_pass(wp_run *r, EVP_CIPHER *cipher, const wp_key *k, const vec *v, int enc,
                    uint8_t *out, size_t *out_len, uint8_t *tag_out, char *why, size_t whylen)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    OSSL_PARAM p[3];
    size_t ivlen = v->iv_len;
    char *route = NULL, route_buf[16] = "", err[512];
    const char *what = "init";
    int n = 0, m = 0, rc = DONE_REFUSED;

    p[0] = OSSL_PARAM_construct_octet_string(KEY_BLOB_PARAM, k->blob, k->blob_len);
    p[1] = OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, &ivlen);
    p[2] = OSSL_PARAM_construct_end();
    if (c == NULL || !EVP_CipherInit_ex2(c, cipher, NULL, NULL, enc, p))
        goto fail;
    what = "the IV";
    if (!EVP_CipherInit_ex2(c, NULL, NULL, v->iv, enc, NULL))
        goto fail;
    if (!enc) {
        what = "the tag";
        p[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, v->tag,
                                                 v->tag_len);
        p[1] = OSSL_PARAM_construct_end();
        if (!EVP_CIPHER_CTX_set_params(c, p))
            goto fail;
    }
    what = "the AAD";
    if (v->aad_len != 0 && !EVP_CipherUpdate(c, NULL, &n, v->aad, (int)v->aad_len))
        goto fail;
    what = enc ? "sealing" : "opening";
    n = 0;
    if ((enc ? v->msg_len : v->ct_len) != 0
        && !EVP_CipherUpdate(c, out, &n, enc ? v->msg : v->ct,
                             (int)(enc ? v->msg_len : v->ct_len)))
        goto fail;
    if (!EVP_CipherFinal_ex(c, out + n, &m))
        goto fail;
    *out_len = (size_t)n + (size_t)m;
    if (enc) {
        what = "reading the tag";
        p[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag_out,
                                                 v->tag_len);
        p[1] = OSSL_PARAM_construct_end();
        if (!EVP_CIPHER_CTX_get_params(c, p))
            goto fail;
    }
    /* the operation must have been the device's, not an in-process copy */
    p[0] = OSSL_PARAM_construct_utf8_ptr(ROUTE_PARAM, &route, 0);
    p[1] = OSSL_PARAM_construct_end();
    if (!EVP_CIPHER_CTX_get_params(c, p) || route == NULL) {
        /* the same parameter as a string copied out */
        p[0] = OSSL_PARAM_construct_utf8_string(ROUTE_PARAM, route_buf, sizeof(route_buf));
        route = EVP_CIPHER_CTX_get_params(c, p) ? route_buf : NULL;
    }
    if (route == NULL || strcmp(route, "device") != 0) {
        snprintf(why, whylen, "%s ran in \"%s\", not in the device", enc ? "seal" : "open",
                 route != NULL ? route : "(the provider does not say)");
        rc = -1;
        goto end;
    }
    rc = DONE_OK;
    goto end;
fail:
    snprintf(why, whylen, "%s refused (%s): %s", enc ? "seal" : "open", what,
             wp_ossl_errors(err, sizeof(err)));
end:
    ERR_clear_error();
    EVP_CIPHER_CTX_free(c);
    return rc;
}

/* Seal and open one vector with the device key; the verdict in o. */
static void run_vector(wp_run *r, EVP_CIPHER *cipher, const char *name, const wp_key *k,
                       const vec *v, const wp_json *t, wp_outcome *o)
{
    const char *result = wp_json_str(t, "result");
    int valid = result != NULL && strcmp(result, "invalid") != 0;
    size_t cap = (v->msg_len > v->ct_len ? v->msg_len : v->ct_len) + 64, slen = 0, olen = 0;
    uint8_t *sealed = malloc(cap), *opened = malloc(cap), tag[64];
    char swhy[600] = "", owhy[600] = "", a[120], b[120];
    int s, op, seal_right, open_right;

    if (sealed == NULL || opened == NULL || v->tag_len > sizeof(tag)) {
        wp_outcome_set(o, WP_GOT_REFUSED, "out of memory or a tag over 64 bytes");
        goto end;
    }
    s = one_pass(r, cipher, k, v, 1, sealed, &slen, tag, swhy, sizeof(swhy));
    op = one_pass(r, cipher, k, v, 0, opened, &olen, NULL, owhy, sizeof(owhy));
    if (s < 0 || op < 0) {
        wp_outcome_set(o, WP_GOT_WRONG, "%s", s < 0 ? swhy : owhy);
        goto end;
    }
    seal_right = s == DONE_OK && slen == v->ct_len && memcmp(sealed, v->ct, slen) == 0
                 && memcmp(tag, v->tag, v->tag_len) == 0;
    open_right = op == DONE_OK && olen == v->msg_len && memcmp(opened, v->msg, olen) == 0;
    if (op == DONE_OK && !open_right) {
        wp_hexdump(a, sizeof(a), v->msg, v->msg_len);
        wp_hexdump(b, sizeof(b), opened, olen);
        wp_outcome_set(o, WP_GOT_WRONG, "open gave %s, want msg %s", b, a);
    } else if (valid && s == DONE_OK && !seal_right) {
        wp_hexdump(a, sizeof(a), v->tag, v->tag_len);
        wp_hexdump(b, sizeof(b), tag, v->tag_len);
        wp_outcome_set(o, WP_GOT_WRONG, "seal differs from ct || tag (tag %s, want %s)", b, a);
    } else if (valid) {
        if (seal_right && open_right)
            wp_outcome_set(o, WP_GOT_OK, "sealed to ct || tag and opened to msg in the device");
        else if (strcmp(result, "valid") == 0 && v->iv_len > MAX_GCM_IV)
            wp_outcome_set(o, WP_GOT_SKIP, "%s with an IV of more than %d bytes (OpenSSL "
                           "3.0's GCM limit, and the device's): %s", name, MAX_GCM_IV,
                           s != DONE_OK ? swhy : owhy);
        else
            wp_outcome_set(o, WP_GOT_REFUSED, "%s%s%s", seal_right ? "" : swhy,
                           seal_right || open_right ? "" : "; ", open_right ? "" : owhy);
    } else if (open_right || seal_right) {
        /* an invalid vector that opens, or that the device seals to ct || tag */
        wp_outcome_set(o, WP_GOT_OK, "%s", open_right ? "opened to msg in the device"
                                                      : "sealed to ct || tag in the device");
    } else {
        wp_outcome_set(o, WP_GOT_REFUSED, "%s", owhy);
    }
end:
    if (opened != NULL)
        OPENSSL_cleanse(opened, cap);
    free(sealed);
    free(opened);
}

/* The provider's cipher name for a vector file's algorithm and key size. */
static const char *cipher_name(const char *alg, long long key_bits)
{
    if (strcmp(alg, "AES-GCM") == 0)
        return key_bits == 128 ? "AES-128-GCM" : key_bits == 192 ? "AES-192-GCM"
               : key_bits == 256 ? "AES-256-GCM" : NULL;
    if (strcmp(alg, "CHACHA20-POLY1305") == 0)
        return key_bits == 256 ? "ChaCha20-Poly1305" : NULL;
    return NULL;
}

int wp_run_aead(wp_run *r, const wp_json *root)
{
    const wp_json *groups = wp_json_arr(root, "testGroups");
    const char *alg = wp_json_str(root, "algorithm");
    size_t gi, ti;

    if (alg == NULL || (strcmp(alg, "AES-GCM") != 0 && strcmp(alg, "CHACHA20-POLY1305") != 0)) {
        printf("ERROR %s: AEAD %s: the device does AES-GCM and ChaCha20-Poly1305 only\n",
               r->file, alg ? alg : "(no algorithm)");
        return -1;
    }
    for (gi = 0; gi < groups->n; gi++) {
        const wp_json *g = groups->items[gi], *tests = wp_json_arr(g, "tests");
        long long key_bits = 0;
        const char *name;
        EVP_CIPHER *cipher = NULL;

        wp_json_int(g, "keySize", &key_bits);
        name = cipher_name(alg, key_bits);
        if (name != NULL && wp_ihsm_offers(r, OSSL_OP_CIPHER, name))
            cipher = EVP_CIPHER_fetch(r->libctx, name, WP_PROPQ);
        for (ti = 0; tests != NULL && ti < tests->n; ti++) {
            const wp_json *t = tests->items[ti];
            wp_outcome o = { 0 };
            vec v = { 0 };
            const wp_key *k = NULL;

            if (name == NULL) {
                wp_outcome_set(&o, WP_GOT_SKIP, "%s with a %lld-bit key does not exist", alg,
                               key_bits);
            } else if (!vec_read(t, &v)) {
                wp_outcome_set(&o, WP_GOT_REFUSED, "the vector lacks key, iv, aad, msg, ct or "
                               "tag in hex");
            } else if ((k = wp_import_secret(r, v.key, v.key_len,
                                             IHSM_USAGE_ENCRYPT | IHSM_USAGE_DECRYPT)) == NULL) {
                wp_outcome_set(&o, WP_GOT_REFUSED, "out of memory");
            } else if (k->status != IHSM_OK) {
                /* AES-192: the device holds AES-128 and AES-256 keys only */
                wp_outcome_key_refused(&o, WP_KEY_LIMIT(k), k->why);
            } else if (cipher == NULL) {
                wp_outcome_set(&o, WP_GOT_SKIP, "the ihsm provider offers no %s (update ihsm)",
                               name);
            } else {
                run_vector(r, cipher, name, k, &v, t, &o);
            }
            wp_report(r, g, t, &o);
            vec_free(&v);
        }
        EVP_CIPHER_free(cipher);
    }
    return 0;
}
