/*
 * Verification vectors, common part: each group's public key becomes an
 * ihsm key object (the provider's key management), and every signature is
 * checked with EVP_DigestVerify through the provider's signature
 * implementation. A key type the provider has no key management for skips
 * the group with that reason; a key it refuses refuses every vector.
 */
#include "wycheproof.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>

/* The provider's reason for what the device does not do (docs/configuration.md). */
static int unsupported(const char *errors)
{
    return strstr(errors, "not supported by ihsm") != NULL;
}

int wp_verify(wp_run *r, EVP_PKEY *pub, const char *md, const wp_pss *pss,
              const uint8_t *msg, size_t msg_len, const uint8_t *sig, size_t sig_len,
              char *why, size_t whylen)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    const OSSL_PROVIDER *prov;
    char err[512];
    int rc = -2;

    if (m == NULL)
        return -1;
    if (EVP_DigestVerifyInit_ex(m, &pctx, md, r->libctx, WP_PROPQ, pub, NULL) != 1) {
        snprintf(why, whylen, "the ihsm provider cannot verify %s%s%s: %s",
                 EVP_PKEY_get0_type_name(pub), md ? " with " : "", md ? md : "",
                 wp_ossl_errors(err, sizeof(err)));
        rc = unsupported(err) ? -1 : -2;
        goto end;
    }
    prov = EVP_PKEY_CTX_get0_provider(pctx);
    if (prov == NULL || strcmp(OSSL_PROVIDER_get0_name(prov), "ihsm") != 0) {
        snprintf(why, whylen, "verification was set up by provider %s, not ihsm",
                 prov ? OSSL_PROVIDER_get0_name(prov) : "(none)");
        rc = -2;
        goto end;
    }
    if (pss != NULL && pss->pss
        && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0
            || EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, pss->mgf1_md, NULL) <= 0
            || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, pss->salt_len) <= 0)) {
        snprintf(why, whylen, "the ihsm provider does not take PSS with MGF1-%s and a salt "
                 "of %d bytes: %s", pss->mgf1_md, pss->salt_len,
                 wp_ossl_errors(err, sizeof(err)));
        rc = unsupported(err) ? -1 : -2;
        goto end;
    }
    rc = EVP_DigestVerify(m, sig, sig_len, msg, msg_len) == 1 ? 1 : 0;
    if (rc == 0)
        snprintf(why, whylen, "signature rejected (%s)", wp_ossl_errors(err, sizeof(err)));
    else
        snprintf(why, whylen, "signature verified");
end:
    ERR_clear_error();
    EVP_MD_CTX_free(m);
    return rc;
}

EVP_PKEY *wp_verify_group_key(wp_run *r, const wp_json *g, const char *member, wp_vgroup *v)
{
    uint8_t *der = NULL;
    size_t len = 0;
    EVP_PKEY *pub;

    if (wp_hex_member(g, member, &der, &len) != 0) {
        snprintf(v->why, sizeof(v->why), "the group has no %s", member);
        return NULL;
    }
    pub = wp_ihsm_public_key(r, der, len, v->why, sizeof(v->why), &v->skip);
    free(der);
    return pub;
}

int wp_run_verify(wp_run *r, const wp_json *root, wp_vsetup_fn setup)
{
    const wp_json *groups = wp_json_arr(root, "testGroups");
    size_t gi, ti;

    for (gi = 0; gi < groups->n; gi++) {
        const wp_json *g = groups->items[gi], *tests = wp_json_arr(g, "tests");
        wp_vgroup v;

        if (tests == NULL)
            continue;
        memset(&v, 0, sizeof(v));
        setup(r, g, &v);
        for (ti = 0; ti < tests->n; ti++) {
            const wp_json *t = tests->items[ti];
            uint8_t *msg = NULL, *sig = NULL, *der = NULL;
            size_t msg_len, sig_len, der_len;
            wp_outcome o = { 0 };
            char why[640];
            int rc;

            if (v.pub == NULL) {
                wp_outcome_set(&o, v.skip ? WP_GOT_SKIP : WP_GOT_REFUSED, "%s", v.why);
            } else if (wp_hex_member(t, "msg", &msg, &msg_len) != 0
                       || wp_hex_member(t, "sig", &sig, &sig_len) != 0) {
                wp_outcome_set(&o, WP_GOT_REFUSED, "the vector's msg or sig is not hex");
            } else if (v.convert != NULL && v.convert(&v, sig, sig_len, &der, &der_len) != 0) {
                wp_outcome_set(&o, WP_GOT_REFUSED, "the signature is not %s", v.convert_what);
            } else {
                rc = wp_verify(r, v.pub, v.md, &v.pss, msg, msg_len,
                               der != NULL ? der : sig, der != NULL ? der_len : sig_len,
                               why, sizeof(why));
                wp_outcome_set(&o, rc == 1 ? WP_GOT_OK : rc == -1 ? WP_GOT_SKIP
                               : WP_GOT_REFUSED, "%s", why);
            }
            wp_report(r, g, t, &o);
            free(msg);
            free(sig);
            free(der);
        }
        EVP_PKEY_free(v.pub);
    }
    return 0;
}
