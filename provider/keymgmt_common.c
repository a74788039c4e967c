/*
 * KEYMGMT operations shared by RSA, RSA-PSS, EC and Ed25519. The public half
 * of a key lives in the default provider (k->pub): parameters, export,
 * import, match and validation are answered from it. The private half lives
 * only in ihsmd: generation is KEY_GENERATE, and it never leaves.
 */
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include "keymgmt_common.h"

void *ihsm_km_new(void *provctx)
{
    IHSM_PROV_KEY *k = ihsm_prov_key_new(provctx);

    IHSM_PROV_DBG("keymgmt: new -> %p", (void *)k);
    return k;
}

void ihsm_km_free(void *keydata)
{
    ihsm_prov_key_free(keydata);
}

int ihsm_km_has(const void *keydata, int selection)
{
    const IHSM_PROV_KEY *k = keydata;
    int ok = k != NULL, kex = ok && ihsm_prov_kex_type(k->type);

    /* Key exchange keys may hold only their raw public value (a peer's key
     * share, an ephemeral key): the EVP_PKEY comes when something needs it. */
    if (ok && (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0)
        ok = (k->spki != NULL && k->pub != NULL)
             || (kex && (k->encpub != NULL || k->spki != NULL || k->pub != NULL));
    if (ok && (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
        ok = ihsm_prov_key_has_private(k);
    if (ok && (selection & OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS) != 0)
        ok = k->pub != NULL || kex;
    return ok;
}

/* Both key exchange keys of one type: compared by their raw public values
 * (a public key built for the comparison would only say the same). */
static int kex_match(IHSM_PROV_KEY *a, IHSM_PROV_KEY *b, int selection)
{
    const uint8_t *pa, *pb;
    size_t la, lb;

    if (a->type != b->type)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) == 0)
        return 1;
    return ihsm_prov_key_encoded_public(a, &pa, &la) && ihsm_prov_key_encoded_public(b, &pb, &lb)
           && la == lb && CRYPTO_memcmp(pa, pb, la) == 0;
}

int ihsm_km_match(const void *keydata1, const void *keydata2, int selection)
{
    IHSM_PROV_KEY *a = (IHSM_PROV_KEY *)keydata1, *b = (IHSM_PROV_KEY *)keydata2;
    int ok;

    if (a == NULL || b == NULL)
        return 0;
    if (ihsm_prov_kex_type(a->type) && ihsm_prov_kex_type(b->type)) {
        ok = kex_match(a, b, selection);
        IHSM_PROV_DBG("keymgmt: match -> %d", ok);
        return ok;
    }
    if (ihsm_prov_key_pub(a) == NULL || ihsm_prov_key_pub(b) == NULL)
        return 0;
    /* A device key is determined by its public key: comparing the public
     * halves answers for the key pair as well. */
    if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0) {
        ok = EVP_PKEY_eq(a->pub, b->pub) == 1;
    } else {
        /* -2: the type has no parameters (RSA, Ed25519), so they agree */
        ok = EVP_PKEY_parameters_eq(a->pub, b->pub);
        ok = ok == 1 || ok == -2;
    }
    IHSM_PROV_DBG("keymgmt: match -> %d", ok);
    return ok;
}

int ihsm_km_validate(const void *keydata, int selection, int checktype)
{
    const IHSM_PROV_KEY *k = keydata;
    EVP_PKEY_CTX *pctx;
    int ok = k != NULL;

    IHSM_PROV_DBG("keymgmt: validate selection 0x%x", (unsigned)selection);
    if (ok && (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
        ok = ihsm_prov_key_has_private(k); /* the device checked it when it loaded it */
    if (ok && k->pub == NULL && ihsm_prov_kex_type(k->type)
        && (selection & (OSSL_KEYMGMT_SELECT_PUBLIC_KEY
                         | OSSL_KEYMGMT_SELECT_ALL_PARAMETERS)) != 0) {
        /*
         * A key share as received: its length and form are checked here;
         * whether the point is on the curve, is not the identity, or (X25519)
         * is not of small order is checked by ihsmd, which refuses such a
         * key when it derives (IHSM_ERR_BAD_INPUT). Checking it here as well
         * would cost the TLS process a scalar multiplication per handshake.
         */
        if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0)
            ok = k->encpub != NULL && k->encpub_len == ihsm_prov_kex_pub_len(k->type)
                 && (k->type == IHSM_KEY_X25519 || k->encpub[0] == 0x04);
        return ok;
    }
    if (ok && (selection & (OSSL_KEYMGMT_SELECT_PUBLIC_KEY
                            | OSSL_KEYMGMT_SELECT_ALL_PARAMETERS)) != 0) {
        if (k->pub == NULL)
            return 0;
        pctx = EVP_PKEY_CTX_new_from_pkey(k->ctx->libctx, k->pub, IHSM_PROV_PUB_PROPQ);
        if (pctx == NULL)
            return 0;
        if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0)
            ok = EVP_PKEY_public_check(pctx) > 0;
        else
            ok = EVP_PKEY_param_check(pctx) > 0;
        EVP_PKEY_CTX_free(pctx);
    }
    return ok;
}

/* A key exchange key without its EVP_PKEY: what libssl asks on every
 * handshake (sizes when the EVP_PKEY is made, the encoded public key for the
 * key share) is answered from the type and the raw public value; anything
 * else from the default provider's key, made for it. */
static int kex_get_params(IHSM_PROV_KEY *k, OSSL_PARAM params[])
{
    int ec = k->type != IHSM_KEY_X25519;
    const uint8_t *pub;
    size_t publen;
    EVP_PKEY *pk;
    OSSL_PARAM *p;

    for (p = params; p->key != NULL; p++) {
        int ok = 1;

        if (strcmp(p->key, OSSL_PKEY_PARAM_BITS) == 0)
            ok = OSSL_PARAM_set_int(p, k->type == IHSM_KEY_EC_P256 ? 256
                                       : k->type == IHSM_KEY_EC_P384 ? 384 : 253);
        else if (strcmp(p->key, OSSL_PKEY_PARAM_SECURITY_BITS) == 0)
            ok = OSSL_PARAM_set_int(p, k->type == IHSM_KEY_EC_P384 ? 192 : 128);
        else if (strcmp(p->key, OSSL_PKEY_PARAM_MAX_SIZE) == 0)
            /* EC: the largest ECDSA signature, as the default provider says */
            ok = OSSL_PARAM_set_int(p, k->type == IHSM_KEY_EC_P256 ? 72
                                       : k->type == IHSM_KEY_EC_P384 ? 104 : 32);
        else if (ec && strcmp(p->key, OSSL_PKEY_PARAM_GROUP_NAME) == 0)
            ok = OSSL_PARAM_set_utf8_string(p, OBJ_nid2sn(k->type == IHSM_KEY_EC_P256
                                                          ? NID_X9_62_prime256v1
                                                          : NID_secp384r1));
        else if (ec && strcmp(p->key, OSSL_PKEY_PARAM_DEFAULT_DIGEST) == 0)
            ok = OSSL_PARAM_set_utf8_string(p, "SHA256");
        else if (strcmp(p->key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY) == 0
                 || strcmp(p->key, OSSL_PKEY_PARAM_PUB_KEY) == 0) {
            if (k->encpub != NULL && ihsm_prov_key_encoded_public(k, &pub, &publen))
                ok = OSSL_PARAM_set_octet_string(p, pub, publen);
        } else if (k->encpub != NULL || k->spki != NULL) {
            /* Not a hot path: the whole answer from the default provider. */
            ERR_set_mark();
            pk = ihsm_prov_key_pub(k);
            ERR_pop_to_mark();
            return pk == NULL || EVP_PKEY_get_params(pk, params);
        }
        if (!ok)
            return 0;
    }
    return 1;
}

int ihsm_km_get_params(void *keydata, OSSL_PARAM params[])
{
    IHSM_PROV_KEY *k = keydata;

    if (k == NULL)
        return 0;
    if (k->pub == NULL && ihsm_prov_kex_type(k->type))
        return kex_get_params(k, params);
    if (k->pub == NULL)
        return 1; /* nothing known yet */
    /* bits, security-bits, max-size, default/mandatory digest, group,
     * encoded public key, n, e...: exactly what the default provider says
     * for the same public key. */
    return EVP_PKEY_get_params(k->pub, params);
}

int ihsm_km_export(void *keydata, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
    IHSM_PROV_KEY *k = keydata;
    OSSL_PARAM *params = NULL;
    int ok;

    IHSM_PROV_DBG("keymgmt: export selection 0x%x", (unsigned)selection);
    if (k == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0) {
        /*
         * Not extractable. Refused without raising: EVP_DigestSignInit and
         * EVP_PKEY_eq try an export to the default provider first and fall
         * back to our own implementation when it fails; an error left on the
         * queue by that probe would turn a later SSL_ERROR_WANT_READ of a
         * non-blocking handshake into SSL_ERROR_SSL.
         */
        IHSM_PROV_DBG("keymgmt: private key export refused (not extractable)");
        return 0;
    }
    if (k->pub == NULL && ihsm_prov_kex_type(k->type)
        && (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) == 0) {
        /* A parameters-only key exchange key: the curve, or nothing (X25519). */
        OSSL_PARAM group[2];

        group[0] = OSSL_PARAM_construct_utf8_string(
            OSSL_PKEY_PARAM_GROUP_NAME,
            (char *)OBJ_nid2sn(k->type == IHSM_KEY_EC_P256 ? NID_X9_62_prime256v1
                                                           : NID_secp384r1), 0);
        group[1] = OSSL_PARAM_construct_end();
        return cb(k->type == IHSM_KEY_X25519 ? group + 1 : group, cbarg);
    }
    /* Quietly: export is probed when providers are mixed. */
    ERR_set_mark();
    ok = ihsm_prov_key_pub(k) != NULL;
    ERR_pop_to_mark();
    if (!ok || !EVP_PKEY_todata(k->pub, selection, &params))
        return 0;
    ok = cb(params, cbarg);
    OSSL_PARAM_free(params);
    return ok;
}

void *ihsm_km_dup(const void *keydata, int selection)
{
    const IHSM_PROV_KEY *k = keydata;
    IHSM_PROV_KEY *d;

    IHSM_PROV_DBG("keymgmt: dup selection 0x%x", (unsigned)selection);
    if (k == NULL || (d = ihsm_prov_key_dup(k)) == NULL)
        return NULL;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) == 0)
        ihsm_prov_key_drop_private(d); /* the copy asked for has no private half */
    return d;
}

int ihsm_km_set_encoded_params(void *keydata, uint32_t type, const OSSL_PARAM params[])
{
    IHSM_PROV_KEY *k = keydata;
    const OSSL_PARAM *p;
    const void *pub = NULL;
    size_t len = 0;

    if (k == NULL)
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY);
    if (p == NULL)
        return 1; /* nothing else is settable */
    if (type == 0)
        type = k->type;
    if (!ihsm_prov_kex_type(type)) {
        ihsm_prov_raise(k->ctx, IHSM_R_INVALID_ARGUMENT,
                        "set the curve before the encoded public key (P-256 or P-384)");
        return 0;
    }
    if (!OSSL_PARAM_get_octet_string_ptr(p, &pub, &len))
        return 0;
    IHSM_PROV_DBG("keymgmt: encoded public key of %zu bytes (type %u)", len, (unsigned)type);
    return ihsm_prov_key_set_encoded_public(k, type, pub, len);
}

static int has_private_params(const OSSL_PARAM params[])
{
    static const char *const priv[] = {
        OSSL_PKEY_PARAM_PRIV_KEY, OSSL_PKEY_PARAM_RSA_D, OSSL_PKEY_PARAM_RSA_FACTOR1,
        OSSL_PKEY_PARAM_RSA_EXPONENT1,
    };
    size_t i;

    for (i = 0; i < IHSM_ARRAY_LEN(priv); i++) {
        if (OSSL_PARAM_locate_const(params, priv[i]) != NULL)
            return 1;
    }
    return 0;
}

uint32_t ihsm_km_ec_type(const char *group)
{
    int nid;

    if (group == NULL)
        return 0;
    nid = EC_curve_nist2nid(group);
    if (nid == NID_undef)
        nid = OBJ_sn2nid(group);
    if (nid == NID_undef)
        nid = OBJ_ln2nid(group);
    if (nid == NID_X9_62_prime256v1)
        return IHSM_KEY_EC_P256;
    if (nid == NID_secp384r1)
        return IHSM_KEY_EC_P384;
    return 0;
}

int ihsm_km_import(const IHSM_KM_DESC *d, void *keydata, int selection,
                   const OSSL_PARAM params[])
{
    IHSM_PROV_KEY *k = keydata;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_PKEY *pub = NULL;
    uint8_t *spki = NULL;
    size_t spki_len = 0;
    char group[64];
    int fsel, ok = 0;

    IHSM_PROV_DBG("keymgmt %s: import selection 0x%x", d->name, (unsigned)selection);
    if (k == NULL || k->pub != NULL || ihsm_prov_key_has_private(k))
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 && has_private_params(params)) {
        /* A private key in clear never enters ihsm (ihsmctl import wraps it
         * to the device). Refused quietly: libcrypto probes imports when
         * providers are mixed and falls back to another implementation. */
        IHSM_PROV_DBG("keymgmt %s: import of a private key in clear refused", d->name);
        return 0;
    }
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0)
        fsel = EVP_PKEY_PUBLIC_KEY;
    else if ((selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS) != 0)
        fsel = EVP_PKEY_KEY_PARAMETERS;
    else
        return 0;

    /* Likewise nothing from a failed probe stays on the error queue. */
    ERR_set_mark();
    if ((pctx = EVP_PKEY_CTX_new_from_name(k->ctx->libctx, d->name, IHSM_PROV_PUB_PROPQ)) == NULL
        || EVP_PKEY_fromdata_init(pctx) <= 0
        || EVP_PKEY_fromdata(pctx, &pub, fsel, (OSSL_PARAM *)params) <= 0)
        goto end;

    k->rsa_pss = d->rsa_pss;
    if (fsel == EVP_PKEY_PUBLIC_KEY) {
        /* Only a public key: the object can verify, encode and compare, not sign. */
        if (!ihsm_prov_pub_to_spki(pub, &spki, &spki_len))
            goto end;
        ok = ihsm_prov_key_set_public(k, spki, spki_len);
    } else {
        if (EVP_PKEY_is_a(pub, "EC")
            && EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                              sizeof(group), NULL))
            k->type = ihsm_km_ec_type(group);
        k->pub = pub;
        pub = NULL;
        ok = 1;
    }
end:
    if (ok)
        ERR_clear_last_mark();
    else
        ERR_pop_to_mark();
    IHSM_PROV_DBG("keymgmt %s: import -> %s", d->name, ok ? "ok" : "refused");
    OPENSSL_free(spki);
    EVP_PKEY_free(pub);
    EVP_PKEY_CTX_free(pctx);
    return ok;
}

void *ihsm_km_load(const IHSM_KM_DESC *d, const void *reference, size_t reference_sz)
{
    IHSM_PROV_KEY *k;
    const char *name;

    if (reference == NULL || reference_sz != sizeof(IHSM_PROV_KEY *))
        return NULL;
    k = *(IHSM_PROV_KEY *const *)reference;
    if (k == NULL)
        return NULL;
    name = ihsm_prov_key_keymgmt_name(k);
    if (name == NULL || strcmp(name, d->name) != 0) {
        IHSM_PROV_DBG("keymgmt %s: load refused a %s key", d->name, name ? name : "?");
        return NULL;
    }
    /* Take the caller's reference (see the contract in ihsm_prov.h). */
    *(IHSM_PROV_KEY **)reference = NULL;
    IHSM_PROV_DBG("keymgmt %s: load %p", d->name, (void *)k);
    return k;
}

/* ---------------------------------------------------------------- generation */

IHSM_KM_GEN *ihsm_km_gen_init(const IHSM_KM_DESC *d, void *provctx, int selection)
{
    IHSM_KM_GEN *g = OPENSSL_zalloc(sizeof(*g));

    IHSM_PROV_DBG("keymgmt %s: gen_init selection 0x%x", d->name, (unsigned)selection);
    if (g == NULL)
        return NULL;
    g->ctx = provctx;
    g->desc = d;
    g->selection = selection;
    return g;
}

void ihsm_km_gen_cleanup(void *genctx)
{
    IHSM_KM_GEN *g = genctx;

    if (g == NULL)
        return;
    OPENSSL_free(g->name);
    OPENSSL_free(g);
}

int ihsm_km_gen_set_common(IHSM_KM_GEN *g, const OSSL_PARAM params[])
{
    const OSSL_PARAM *p;
    const char *name = NULL;

    if ((p = OSSL_PARAM_locate_const(params, IHSM_PKEY_PARAM_NAME)) != NULL) {
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &name) || name[0] == '\0'
            || strlen(name) > IHSM_MAX_LABEL) {
            ihsm_prov_raise(g->ctx, IHSM_R_INVALID_ARGUMENT,
                            "%s: a key name of 1 to %d bytes", IHSM_PKEY_PARAM_NAME,
                            IHSM_MAX_LABEL);
            return 0;
        }
        OPENSSL_free(g->name);
        if ((g->name = OPENSSL_strdup(name)) == NULL)
            return 0;
    }
    return 1;
}

/* A parameters-only EC key (EVP_PKEY_paramgen): no device work. */
static void *gen_ec_params(IHSM_KM_GEN *g)
{
    IHSM_PROV_KEY *k;
    EVP_PKEY_CTX *pctx;
    EVP_PKEY *pub = NULL;
    OSSL_PARAM params[2];

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                 g->type == IHSM_KEY_EC_P384 ? "P-384" : "P-256",
                                                 0);
    params[1] = OSSL_PARAM_construct_end();
    pctx = EVP_PKEY_CTX_new_from_name(g->ctx->libctx, "EC", IHSM_PROV_PUB_PROPQ);
    if (pctx == NULL || EVP_PKEY_fromdata_init(pctx) <= 0
        || EVP_PKEY_fromdata(pctx, &pub, EVP_PKEY_KEY_PARAMETERS, params) <= 0
        || (k = ihsm_prov_key_new(g->ctx)) == NULL) {
        EVP_PKEY_free(pub);
        EVP_PKEY_CTX_free(pctx);
        return NULL;
    }
    EVP_PKEY_CTX_free(pctx);
    k->type = g->type;
    k->pub = pub;
    return k;
}

/* A parameters-only key exchange key (libssl's key for the peer's share, made
 * with EVP_PKEY_paramgen): the type is all there is. */
static void *gen_kex_params(IHSM_KM_GEN *g)
{
    IHSM_PROV_KEY *k = ihsm_prov_key_new(g->ctx);

    if (k == NULL)
        return NULL;
    k->type = g->type;
    k->kex = g->kex;
    k->usage = IHSM_USAGE_DERIVE;
    return k;
}

/* Fill a generated key from the device's answer; ephemeral keys keep no blob
 * (nobody will write them to a file) and release their handle when freed. */
static int gen_take(IHSM_KM_GEN *g, IHSM_PROV_KEY *k, uint32_t handle, const uint8_t *blob,
                    size_t blob_len, const uint8_t *pub, size_t pub_len)
{
    k->type = g->type;
    k->rsa_pss = g->desc->rsa_pss;
    k->kex = g->kex;
    if (!g->kex) {
        if ((k->blob = OPENSSL_memdup(blob, blob_len)) == NULL
            || (g->name != NULL && (k->name = OPENSSL_strdup(g->name)) == NULL))
            return 0;
        k->blob_len = blob_len;
    }
    if (g->kex || k->type == IHSM_KEY_X25519) {
        /* The raw public value is all a key exchange needs: the default
         * provider's decoder (tens of microseconds) is not run per handshake. */
        if (g->kex)
            k->usage = IHSM_USAGE_DERIVE;
        if (!ihsm_prov_key_set_spki_raw(k, pub, pub_len))
            return 0;
    } else if (!ihsm_prov_key_set_public(k, pub, pub_len)) {
        return 0;
    }
    __atomic_store_n(&k->handle, handle, __ATOMIC_RELEASE);
    return !g->kex || ihsm_prov_key_make_ephemeral(k);
}

void *ihsm_km_gen(void *genctx, OSSL_CALLBACK *cb, void *cbarg)
{
    IHSM_KM_GEN *g = genctx;
    IHSM_PROV_KEY *k = NULL;
    ihsm_result res = { 0 };
    ihsm_wr w;
    ihsm_rd r;
    const uint8_t *blob, *pub;
    size_t blob_len, pub_len;
    uint32_t handle;
    char what[IHSM_MAX_LABEL + 64];

    if (g == NULL)
        return NULL;
    IHSM_PROV_DBG("keymgmt %s: gen type %u bits %u%s%s%s", g->desc->name, (unsigned)g->type,
                  (unsigned)g->bits, g->kex ? " ephemeral (key exchange)" : "",
                  g->name ? " name " : "", g->name ? g->name : "");
    if (g->type == 0) {
        ihsm_prov_raise(g->ctx, IHSM_R_INVALID_ARGUMENT,
                        "no EC curve chosen: set one, e.g. -pkeyopt ec_paramgen_curve:P-256 "
                        "(P-256 and P-384 are supported)");
        return NULL;
    }
    if ((g->selection & OSSL_KEYMGMT_SELECT_KEYPAIR) == 0) {
        if (g->kex || g->type == IHSM_KEY_X25519)
            return gen_kex_params(g);
        if (g->type == IHSM_KEY_EC_P256 || g->type == IHSM_KEY_EC_P384)
            return gen_ec_params(g);
        ihsm_prov_raise(g->ctx, IHSM_R_UNSUPPORTED, "%s keys have no domain parameters",
                        g->desc->name);
        return NULL;
    }

    ihsm_wr_init(&w);
    ihsm_wr_u32(&w, g->type);
    ihsm_wr_u32(&w, g->type == IHSM_KEY_RSA ? g->bits : 0);
    /* The type's natural usage (sign; X25519: derive), or derive for an
     * ephemeral ECDHE key: never stored, no masked blob, not audited. */
    ihsm_wr_u32(&w, g->kex ? IHSM_USAGE_DERIVE : 0);
    ihsm_wr_u32(&w, g->kex ? IHSM_KEYF_EPHEMERAL : g->name != NULL ? IHSM_KEYF_PERSIST : 0);
    ihsm_wr_bytes(&w, g->name, g->name != NULL && !g->kex ? strlen(g->name) : 0);
    if (g->kex)
        snprintf(what, sizeof(what), "generating an ephemeral %s key in ihsmd", g->desc->name);
    else if (g->name != NULL)
        snprintf(what, sizeof(what), "generating %s key '%s' in ihsmd", g->desc->name, g->name);
    else
        snprintf(what, sizeof(what), "generating %s key in ihsmd", g->desc->name);
    /* Not retried: a second KEY_GENERATE would make a second key. */
    if (ihsm_prov_call(g->ctx, IHSM_CMD_KEY_GENERATE, &w, &res, what) != IHSM_OK)
        goto end;

    ihsm_rd_init(&r, res.data, res.len);
    handle = ihsm_rd_u32(&r);
    blob = ihsm_rd_bytes(&r, &blob_len, IHSM_MAX_BLOB);
    pub = ihsm_rd_bytes(&r, &pub_len, IHSM_MAX_PAYLOAD);
    if (ihsm_rd_end(&r) != 0 || handle == 0 || blob == NULL || (blob_len == 0 && !g->kex)
        || pub == NULL || pub_len == 0) {
        ihsm_prov_raise(g->ctx, IHSM_R_DEVICE_ERROR, "%s: malformed answer from the device",
                        what);
        goto end;
    }
    if ((k = ihsm_prov_key_new(g->ctx)) == NULL)
        goto fail;
    if (!gen_take(g, k, handle, blob, blob_len, pub, pub_len)) {
        if (g->kex && k->eph == NULL) {
            /* the handle is ours alone: hand it to the release path */
            __atomic_store_n(&k->handle, handle, __ATOMIC_RELEASE);
            ihsm_prov_key_make_ephemeral(k);
        }
        goto fail;
    }
    IHSM_PROV_DBG("keymgmt %s: generated handle 0x%x (%u bits)", g->desc->name,
                  (unsigned)handle, (unsigned)k->bits);
    goto end;
fail:
    ihsm_prov_key_free(k);
    k = NULL;
end:
    ihsm_result_clear(&res);
    ihsm_wr_free(&w);
    return k;
}
