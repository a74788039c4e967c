/*
 * Key agreement vectors, common part (ECDH and X25519). Each vector runs
 * twice with the device key imported for it:
 *
 *  - through the provider: EVP_PKEY_derive with the ihsm key and the peer
 *    key made by the provider's key management; the peer is not validated
 *    in process (EVP_PKEY_derive_set_peer_ex(..., 0)), so the device is the
 *    one that checks it;
 *  - straight to the device: DERIVE with the key's handle and the vector's
 *    public bytes as they are, so an invalid peer the provider never lets
 *    through is still shown to be refused by the device, with its status.
 *
 * A valid vector must give `shared` both ways; an invalid one must be
 * refused both ways (a device that accepts it fails the vector even when
 * the provider refused first).
 */
#include "wycheproof.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/provider.h>

#define MAX_SECRET 128

typedef struct {
    int ok;                  /* 1 produced a secret, 0 refused */
    uint8_t secret[MAX_SECRET];
    size_t len;
    char why[400];
} path_result;

static void device_path(wp_run *r, wp_key *k, const uint8_t *pub, size_t pub_len,
                        path_result *p)
{
    ihsm_result res;
    ihsm_wr w;
    ihsm_rd rd;
    const uint8_t *s;
    size_t n = 0;
    int st;

    ihsm_wr_init(&w);
    ihsm_wr_bytes(&w, pub, pub_len);
    st = wp_key_call(r, k, IHSM_CMD_DERIVE, &w, &res);
    ihsm_wr_free(&w);
    if (st != IHSM_OK) {
        snprintf(p->why, sizeof(p->why), "device DERIVE: %s", ihsm_status_name(st));
    } else {
        ihsm_rd_init(&rd, res.data, res.len);
        s = ihsm_rd_bytes(&rd, &n, MAX_SECRET);
        if (ihsm_rd_end(&rd) != 0 || s == NULL) {
            snprintf(p->why, sizeof(p->why), "device DERIVE: malformed answer");
        } else {
            memcpy(p->secret, s, n);
            p->len = n;
            p->ok = 1;
            snprintf(p->why, sizeof(p->why), "device DERIVE: IHSM_OK");
        }
    }
    ihsm_result_clear(&res);
}

static void provider_path(wp_run *r, const wp_key *k, EVP_PKEY *peer, const char *peer_why,
                          path_result *p)
{
    EVP_PKEY_CTX *c = NULL;
    const OSSL_PROVIDER *prov;
    char err[512];
    size_t n = sizeof(p->secret);

    if (peer == NULL) {
        snprintf(p->why, sizeof(p->why), "provider: %s", peer_why);
        return;
    }
    if ((c = EVP_PKEY_CTX_new_from_pkey(r->libctx, k->pkey, WP_PROPQ)) == NULL
        || EVP_PKEY_derive_init(c) <= 0) {
        snprintf(p->why, sizeof(p->why), "provider: derive_init refused: %s",
                 wp_ossl_errors(err, sizeof(err)));
        goto end;
    }
    prov = EVP_PKEY_CTX_get0_provider(c);
    if (prov == NULL || strcmp(OSSL_PROVIDER_get0_name(prov), "ihsm") != 0) {
        snprintf(p->why, sizeof(p->why), "provider: derive set up by %s, not ihsm",
                 prov ? OSSL_PROVIDER_get0_name(prov) : "(none)");
        goto end;
    }
    if (EVP_PKEY_derive_set_peer_ex(c, peer, 0) <= 0) {
        snprintf(p->why, sizeof(p->why), "provider: peer refused: %s",
                 wp_ossl_errors(err, sizeof(err)));
        goto end;
    }
    if (EVP_PKEY_derive(c, p->secret, &n) <= 0) {
        snprintf(p->why, sizeof(p->why), "provider: derive refused: %s",
                 wp_ossl_errors(err, sizeof(err)));
        goto end;
    }
    p->len = n;
    p->ok = 1;
    snprintf(p->why, sizeof(p->why), "provider: derived");
end:
    ERR_clear_error();
    EVP_PKEY_CTX_free(c);
}

void wp_derive_check(wp_run *r, const wp_json *t, wp_key *k, EVP_PKEY *peer,
                     const char *peer_why, const uint8_t *pub, size_t pub_len,
                     wp_outcome *o)
{
    const char *result = wp_json_str(t, "result");
    uint8_t *want = NULL;
    size_t want_len = 0;
    path_result dev = { 0 }, prov = { 0 };
    int dev_right, prov_right;
    char a[160], b[160];

    if (wp_hex_member(t, "shared", &want, &want_len) != 0) {
        wp_outcome_set(o, WP_GOT_REFUSED, "the vector's shared is not hex");
        return;
    }
    device_path(r, k, pub, pub_len, &dev);
    provider_path(r, k, peer, peer_why, &prov);
    dev_right = dev.ok && dev.len == want_len && memcmp(dev.secret, want, want_len) == 0;
    prov_right = prov.ok && prov.len == want_len && memcmp(prov.secret, want, want_len) == 0;
    wp_hexdump(a, sizeof(a), want, want_len);
    if (dev.ok && !dev_right) {
        wp_hexdump(b, sizeof(b), dev.secret, dev.len);
        wp_outcome_set(o, WP_GOT_WRONG, "the device derived %s, want %s (%s)", b, a, prov.why);
    } else if (prov.ok && !prov_right) {
        wp_hexdump(b, sizeof(b), prov.secret, prov.len);
        wp_outcome_set(o, WP_GOT_WRONG, "the provider derived %s, want %s (%s)", b, a,
                       dev.why);
    } else if (dev.ok && prov.ok) {
        wp_outcome_set(o, WP_GOT_OK, "provider and device derived shared");
    } else if (!dev.ok && !prov.ok) {
        wp_outcome_set(o, WP_GOT_REFUSED, "%s; %s", dev.why, prov.why);
    } else {
        /* one way accepted it: an invalid vector fails, a valid one too */
        wp_outcome_set(o, result != NULL && strcmp(result, "invalid") == 0 ? WP_GOT_OK
                       : WP_GOT_REFUSED, "only the %s accepted it: %s; %s",
                       dev.ok ? "device" : "provider", dev.why, prov.why);
    }
    OPENSSL_cleanse(dev.secret, sizeof(dev.secret));
    OPENSSL_cleanse(prov.secret, sizeof(prov.secret));
    free(want);
}
