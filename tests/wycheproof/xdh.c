/*
 * xdh_test / xdh_comp (X25519): `private` (32 bytes) is imported into the
 * device as an X25519 key; `public` is the peer's u-coordinate. valid:
 * `shared`; acceptable (twist points, low order points, non-canonical
 * encodings): either way, but a secret, if any, must be `shared`. The
 * device refuses an all-zero result (RFC 7748 section 6.1). X448 groups are
 * skipped: the device has no X448.
 */
#include "wycheproof.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_dispatch.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

int wp_run_xdh(wp_run *r, const wp_json *root)
{
    const wp_json *groups = wp_json_arr(root, "testGroups");
    int has = wp_ihsm_offers(r, OSSL_OP_KEYEXCH, "X25519")
              && wp_ihsm_offers(r, OSSL_OP_KEYMGMT, "X25519");
    size_t gi, ti;

    if (!has)
        printf("%s: the ihsm provider offers no X25519 key exchange (update ihsm): its "
               "vectors are skipped\n", r->file);
    for (gi = 0; gi < groups->n; gi++) {
        const wp_json *g = groups->items[gi], *tests = wp_json_arr(g, "tests");
        const char *curve = wp_json_str(g, "curve");

        for (ti = 0; tests != NULL && ti < tests->n; ti++) {
            const wp_json *t = tests->items[ti];
            uint8_t *d = NULL, *pub = NULL;
            size_t dlen, pub_len;
            EVP_PKEY *priv = NULL, *peer = NULL;
            wp_key *k;
            wp_outcome o = { 0 };
            char why[512] = "", err[400];

            if (curve == NULL || strcmp(curve, "curve25519") != 0) {
                wp_outcome_set(&o, WP_GOT_SKIP, "curve %s: the device does X25519 only",
                               curve ? curve : "(none)");
            } else if (!has) {
                wp_outcome_set(&o, WP_GOT_SKIP, "the ihsm provider offers no X25519 key "
                               "exchange (update ihsm)");
            } else if (wp_hex_member(t, "private", &d, &dlen) != 0
                       || wp_hex_member(t, "public", &pub, &pub_len) != 0) {
                wp_outcome_set(&o, WP_GOT_REFUSED, "the vector lacks private or public");
            } else if ((priv = EVP_PKEY_new_raw_private_key_ex(r->libctx, "X25519",
                                                               "provider=default", d,
                                                               dlen)) == NULL) {
                ERR_clear_error();
                wp_outcome_key_refused(&o, 0, "the private key is not 32 bytes");
            } else if ((k = wp_import_pkey(r, priv, IHSM_USAGE_DERIVE)) == NULL) {
                wp_outcome_set(&o, WP_GOT_REFUSED, "out of memory");
            } else if (k->status != IHSM_OK || k->pkey == NULL) {
                wp_outcome_key_refused(&o, WP_KEY_LIMIT(k), k->why);
            } else {
                peer = EVP_PKEY_new_raw_public_key_ex(r->libctx, "X25519", WP_PROPQ, pub,
                                                      pub_len);
                if (peer == NULL)
                    snprintf(why, sizeof(why), "the ihsm X25519 key management refused "
                             "the peer key: %s", wp_ossl_errors(err, sizeof(err)));
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
