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
#include <openssl/crypto.h>

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
        int offered;

        wp_json_int(g, "keySize", &key_bits);
        name = cipher_name(alg, key_bits);
        offered = name != NULL && wp_ihsm_offers(r, OSSL_OP_CIPHER, name);
        for (ti = 0; tests != NULL && ti < tests->n; ti++) {
            const wp_json *t = tests->items[ti];
            wp_outcome o = { 0 };
            uint8_t *key = NULL;
            size_t key_len = 0;
            const wp_key *k = NULL;

            if (name == NULL) {
                wp_outcome_set(&o, WP_GOT_SKIP, "%s with a %lld-bit key does not exist", alg,
                               key_bits);
            } else if (wp_hex_member(t, "key", &key, &key_len) != 0) {
                wp_outcome_set(&o, WP_GOT_REFUSED, "the vector's key is not hex");
            } else if ((k = wp_import_secret(r, key, key_len,
                                             IHSM_USAGE_ENCRYPT | IHSM_USAGE_DECRYPT)) == NULL) {
                wp_outcome_set(&o, WP_GOT_REFUSED, "out of memory");
            } else if (k->status != IHSM_OK) {
                /* AES-192: the device holds AES-128 and AES-256 keys only */
                wp_outcome_set(&o, WP_GOT_SKIP, "%s", k->why);
            } else if (!offered) {
                wp_outcome_set(&o, WP_GOT_SKIP, "the ihsm provider offers no %s (update ihsm)",
                               name);
            }
            wp_report(r, g, t, &o);
            if (key != NULL)
                OPENSSL_cleanse(key, key_len);
            free(key);
        }
    }
    return 0;
}
