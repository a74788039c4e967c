/*
 * ecdh_ecpoint_test: `private` (a scalar) is imported into the device as an
 * EC key with derive usage; `public` is the peer's point as encoded bytes
 * (uncompressed, compressed, or garbage). valid: derive gives `shared`;
 * invalid (off the curve, wrong encodings): refused by the device
 * (derive.c runs both the provider and the device).
 */
#include "wycheproof.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>

/* Wycheproof's curve names to OpenSSL's. */
static const char *group_name(const char *curve)
{
    if (strcmp(curve, "secp256r1") == 0)
        return "prime256v1";
    return curve;
}

/* The private scalar as a default-provider key with its public point. */
static EVP_PKEY *private_key(wp_run *r, const char *group, const uint8_t *d, size_t dlen)
{
    int nid = OBJ_sn2nid(group);
    EC_GROUP *grp = nid != NID_undef ? EC_GROUP_new_by_curve_name_ex(r->libctx, NULL, nid)
                                     : NULL;
    EC_POINT *pt = NULL;
    BIGNUM *priv = BN_secure_new();
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_PKEY *pk = NULL;
    uint8_t pub[200];
    size_t pub_len;

    if (grp == NULL || priv == NULL || BN_bin2bn(d, (int)dlen, priv) == NULL
        || (pt = EC_POINT_new(grp)) == NULL
        || !EC_POINT_mul(grp, pt, priv, NULL, NULL, NULL)
        || (pub_len = EC_POINT_point2oct(grp, pt, POINT_CONVERSION_UNCOMPRESSED, pub,
                                         sizeof(pub), NULL)) == 0
        || (bld = OSSL_PARAM_BLD_new()) == NULL
        || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0)
        || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv)
        || !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, pub_len)
        || (params = OSSL_PARAM_BLD_to_param(bld)) == NULL
        || (pctx = EVP_PKEY_CTX_new_from_name(r->libctx, "EC", "provider=default")) == NULL
        || EVP_PKEY_fromdata_init(pctx) <= 0
        || EVP_PKEY_fromdata(pctx, &pk, EVP_PKEY_KEYPAIR, params) <= 0)
        pk = NULL;
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params); /* clear-frees the secure block holding the scalar */
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(priv);
    EC_POINT_free(pt);
    EC_GROUP_free(grp);
    ERR_clear_error();
    return pk;
}

/* The peer as an ihsm key object, the way libssl makes a TLS key share: a
 * parameters-only key of the group, then the point exactly as given
 * (EVP_PKEY_set1_encoded_public_key), so the provider hands the bytes to
 * the device rather than checking them itself. */
static EVP_PKEY *peer_key(wp_run *r, const char *group, const uint8_t *pub, size_t len,
                          char *why, size_t whylen)
{
    OSSL_PARAM params[2];
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(r->libctx, "EC", WP_PROPQ);
    EVP_PKEY *pk = NULL;
    char err[400];

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (pctx == NULL || EVP_PKEY_fromdata_init(pctx) <= 0
        || EVP_PKEY_fromdata(pctx, &pk, EVP_PKEY_KEY_PARAMETERS, params) <= 0) {
        snprintf(why, whylen, "the ihsm EC key management made no %s key: %s", group,
                 wp_ossl_errors(err, sizeof(err)));
        pk = NULL;
    } else if (EVP_PKEY_set1_encoded_public_key(pk, pub, len) <= 0) {
        snprintf(why, whylen, "the ihsm EC key management refused the peer point: %s",
                 wp_ossl_errors(err, sizeof(err)));
        EVP_PKEY_free(pk);
        pk = NULL;
    }
    EVP_PKEY_CTX_free(pctx);
    return pk;
}

int wp_run_ecdh(wp_run *r, const wp_json *root)
{
    const wp_json *groups = wp_json_arr(root, "testGroups");
    int has_ecdh = wp_ihsm_offers(r, OSSL_OP_KEYEXCH, "ECDH");
    size_t gi, ti;

    if (!has_ecdh)
        printf("%s: the ihsm provider offers no ECDH (update ihsm): its vectors are "
               "skipped\n", r->file);
    for (gi = 0; gi < groups->n; gi++) {
        const wp_json *g = groups->items[gi], *tests = wp_json_arr(g, "tests");
        const char *curve = wp_json_str(g, "curve");
        const char *group = curve != NULL ? group_name(curve) : NULL;

        for (ti = 0; tests != NULL && ti < tests->n; ti++) {
            const wp_json *t = tests->items[ti];
            uint8_t *d = NULL, *pub = NULL;
            size_t dlen, pub_len;
            EVP_PKEY *priv = NULL, *peer = NULL;
            wp_key *k;
            wp_outcome o = { 0 };
            char why[512] = "";

            if (!has_ecdh) {
                wp_outcome_set(&o, WP_GOT_SKIP, "the ihsm provider offers no ECDH (update "
                               "ihsm)");
            } else if (group == NULL || wp_hex_member(t, "private", &d, &dlen) != 0
                       || wp_hex_member(t, "public", &pub, &pub_len) != 0) {
                wp_outcome_set(&o, WP_GOT_REFUSED, "the vector lacks curve, private or "
                               "public");
            } else if ((priv = private_key(r, group, d, dlen)) == NULL) {
                wp_outcome_key_refused(&o, 0, "the private scalar is not a key on this "
                                       "curve in OpenSSL");
            } else if ((k = wp_import_pkey(r, priv, IHSM_USAGE_DERIVE)) == NULL) {
                wp_outcome_set(&o, WP_GOT_REFUSED, "out of memory");
            } else if (k->status != IHSM_OK || k->pkey == NULL) {
                wp_outcome_key_refused(&o, WP_KEY_LIMIT(k), k->why);
            } else {
                peer = peer_key(r, group, pub, pub_len, why, sizeof(why));
                wp_derive_check(r, t, k, peer, why, pub, pub_len, &o);
            }
            wp_report(r, g, t, &o);
            EVP_PKEY_free(peer);
            EVP_PKEY_free(priv);
            if (d != NULL)
                OPENSSL_cleanse(d, dlen);
            free(d);
            free(pub);
        }
    }
    return 0;
}
