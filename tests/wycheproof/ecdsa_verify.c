/*
 * ecdsa_verify (DER signatures) and ecdsa_p1363_verify (r || s): every
 * `invalid` signature must be rejected, every `valid` one accepted, through
 * the ihsm provider's ECDSA signature with the group's key imported as an
 * ihsm EC key. P1363 signatures are re-encoded as DER first; one whose
 * length is not twice the curve's order size is refused here.
 */
#include "wycheproof.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>

static int p1363_to_der(const wp_vgroup *v, const uint8_t *sig, size_t len,
                        uint8_t **der, size_t *der_len)
{
    size_t n = (size_t)(EVP_PKEY_get_bits(v->pub) + 7) / 8;
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *br = NULL, *bs = NULL;
    unsigned char *out = NULL;
    int olen;

    *der = NULL;
    if (s == NULL || len != 2 * n
        || (br = BN_bin2bn(sig, (int)n, NULL)) == NULL
        || (bs = BN_bin2bn(sig + n, (int)n, NULL)) == NULL
        || !ECDSA_SIG_set0(s, br, bs)) {
        BN_free(br);
        BN_free(bs);
        ECDSA_SIG_free(s);
        return -1;
    }
    olen = i2d_ECDSA_SIG(s, &out);
    ECDSA_SIG_free(s);
    if (olen <= 0)
        return -1;
    /* hand it over in malloc'd memory: the caller frees with free() */
    if ((*der = malloc((size_t)olen)) != NULL)
        memcpy(*der, out, (size_t)olen);
    *der_len = (size_t)olen;
    OPENSSL_free(out);
    return *der != NULL ? 0 : -1;
}

static void setup(wp_run *r, const wp_json *g, wp_vgroup *v, int p1363)
{
    v->md = wp_json_str(g, "sha");
    if (v->md == NULL) {
        snprintf(v->why, sizeof(v->why), "the group names no digest (sha)");
        return;
    }
    v->pub = wp_verify_group_key(r, g, "publicKeyDer", v);
    if (p1363) {
        v->convert = p1363_to_der;
        v->convert_what = "r || s of twice the curve's order size (P1363)";
    }
}

static void setup_der(wp_run *r, const wp_json *g, wp_vgroup *v)
{
    setup(r, g, v, 0);
}

static void setup_p1363(wp_run *r, const wp_json *g, wp_vgroup *v)
{
    setup(r, g, v, 1);
}

int wp_run_ecdsa_verify(wp_run *r, const wp_json *root)
{
    const char *schema = wp_json_str(root, "schema");
    const wp_json *groups = wp_json_arr(root, "testGroups");
    const char *gtype = groups->n > 0 ? wp_json_str(groups->items[0], "type") : NULL;
    int p1363 = (schema != NULL && strstr(schema, "p1363") != NULL)
                || (gtype != NULL && strcmp(gtype, "EcdsaP1363Verify") == 0);

    return wp_run_verify(r, root, p1363 ? setup_p1363 : setup_der);
}
