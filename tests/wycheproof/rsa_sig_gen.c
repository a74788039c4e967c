/*
 * rsassa_pkcs1_generate: each group's RSA private key is imported into the
 * device; every msg is signed with PKCS#1 v1.5 through EVP_DigestSign with
 * the provider's key. v1.5 is deterministic, so the signature must equal
 * `sig` byte for byte.
 */
#include "wycheproof.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>

/* privateKeyPkcs8 (hex DER), else privateKeyPem. */
static EVP_PKEY *group_key(wp_run *r, const wp_json *g)
{
    const char *pem = wp_json_str(g, "privateKeyPem");
    uint8_t *der = NULL;
    size_t len = 0;
    EVP_PKEY *pk = NULL;

    if (wp_hex_member(g, "privateKeyPkcs8", &der, &len) == 0) {
        const unsigned char *p = der;

        pk = d2i_PrivateKey_ex(EVP_PKEY_RSA, NULL, &p, (long)len, r->libctx,
                               "provider=default");
        OPENSSL_cleanse(der, len);
        free(der);
    } else if (pem != NULL) {
        BIO *b = BIO_new_mem_buf(pem, -1);

        if (b != NULL)
            pk = PEM_read_bio_PrivateKey_ex(b, NULL, NULL, NULL, r->libctx,
                                            "provider=default");
        BIO_free(b);
    }
    return pk;
}

static void sign_one(wp_run *r, const wp_key *k, const char *md, const wp_json *t,
                     wp_outcome *o)
{
    uint8_t *msg = NULL, *want = NULL, *sig = NULL;
    size_t msg_len, want_len, sig_len = 0;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    const OSSL_PROVIDER *prov;
    char err[512], a[200], b[200];

    if (wp_hex_member(t, "msg", &msg, &msg_len) != 0
        || wp_hex_member(t, "sig", &want, &want_len) != 0) {
        wp_outcome_set(o, WP_GOT_REFUSED, "the vector's msg or sig is not hex");
        goto end;
    }
    if (m == NULL || EVP_DigestSignInit_ex(m, &pctx, md, r->libctx, WP_PROPQ, k->pkey,
                                           NULL) != 1
        || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0) {
        wp_outcome_set(o, WP_GOT_REFUSED, "the ihsm provider refused to sign with %s: %s", md,
                       wp_ossl_errors(err, sizeof(err)));
        goto end;
    }
    prov = EVP_PKEY_CTX_get0_provider(pctx);
    if (prov == NULL || strcmp(OSSL_PROVIDER_get0_name(prov), "ihsm") != 0) {
        wp_outcome_set(o, WP_GOT_WRONG, "the signature was made by provider %s, not ihsm",
                       prov ? OSSL_PROVIDER_get0_name(prov) : "(none)");
        goto end;
    }
    if (EVP_DigestSign(m, NULL, &sig_len, msg, msg_len) != 1
        || (sig = malloc(sig_len ? sig_len : 1)) == NULL
        || EVP_DigestSign(m, sig, &sig_len, msg, msg_len) != 1) {
        wp_outcome_set(o, WP_GOT_REFUSED, "signing failed: %s",
                       wp_ossl_errors(err, sizeof(err)));
        goto end;
    }
    if (sig_len == want_len && memcmp(sig, want, sig_len) == 0) {
        wp_outcome_set(o, WP_GOT_OK, "signature equals sig");
    } else {
        wp_hexdump(a, sizeof(a), want, want_len);
        wp_hexdump(b, sizeof(b), sig, sig_len);
        wp_outcome_set(o, WP_GOT_WRONG, "signature differs: want %s, got %s", a, b);
    }
end:
    ERR_clear_error();
    free(msg);
    free(want);
    free(sig);
    EVP_MD_CTX_free(m);
}

int wp_run_rsa_sig_gen(wp_run *r, const wp_json *root)
{
    const wp_json *groups = wp_json_arr(root, "testGroups");
    size_t gi, ti;

    for (gi = 0; gi < groups->n; gi++) {
        const wp_json *g = groups->items[gi], *tests = wp_json_arr(g, "tests");
        const char *md = wp_json_str(g, "sha");
        EVP_PKEY *priv = group_key(r, g);
        const wp_key *k = NULL;
        char why[512] = "";

        if (tests == NULL)
            continue;
        if (priv == NULL) {
            snprintf(why, sizeof(why), "the group's private key does not parse");
        } else if (md == NULL) {
            snprintf(why, sizeof(why), "the group names no digest (sha)");
        } else if ((k = wp_import_pkey(r, priv, IHSM_USAGE_SIGN)) == NULL) {
            snprintf(why, sizeof(why), "out of memory");
        } else if (k->status != IHSM_OK || k->pkey == NULL) {
            snprintf(why, sizeof(why), "%s", k->why);
        }
        for (ti = 0; ti < tests->n; ti++) {
            wp_outcome o = { 0 };

            if (k != NULL && k->status != IHSM_OK)
                wp_outcome_key_refused(&o, WP_KEY_LIMIT(k), why);
            else if (why[0] != '\0')
                wp_outcome_set(&o, WP_GOT_REFUSED, "%s", why);
            else
                sign_one(r, k, md, tests->items[ti], &o);
            wp_report(r, g, tests->items[ti], &o);
        }
        EVP_PKEY_free(priv);
    }
    return 0;
}
