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
    int ok = k != NULL;

    if (ok && (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0)
        ok = k->spki != NULL && k->pub != NULL;
    if (ok && (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
        ok = ihsm_prov_key_has_private(k);
    if (ok && (selection & OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS) != 0)
        ok = k->pub != NULL;
    return ok;
}

int ihsm_km_match(const void *keydata1, const void *keydata2, int selection)
{
    const IHSM_PROV_KEY *a = keydata1, *b = keydata2;
    int ok;

    if (a == NULL || b == NULL || a->pub == NULL || b->pub == NULL)
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

int ihsm_km_get_params(void *keydata, OSSL_PARAM params[])
{
    IHSM_PROV_KEY *k = keydata;

    if (k == NULL)
        return 0;
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
    if (k->pub == NULL || !EVP_PKEY_todata(k->pub, selection, &params))
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
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) == 0) {
        /* The copy asked for has no private half. */
        OPENSSL_clear_free(d->blob, d->blob_len);
        d->blob = NULL;
        d->blob_len = 0;
        OPENSSL_free(d->name);
        d->name = NULL;
        d->handle = 0;
    }
    return d;
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
    IHSM_PROV_DBG("keymgmt %s: gen type %u bits %u%s%s", g->desc->name, (unsigned)g->type,
                  (unsigned)g->bits, g->name ? " name " : "", g->name ? g->name : "");
    if (g->type == 0) {
        ihsm_prov_raise(g->ctx, IHSM_R_INVALID_ARGUMENT,
                        "no EC curve chosen: set one, e.g. -pkeyopt ec_paramgen_curve:P-256 "
                        "(P-256 and P-384 are supported)");
        return NULL;
    }
    if ((g->selection & OSSL_KEYMGMT_SELECT_KEYPAIR) == 0) {
        if (g->type == IHSM_KEY_EC_P256 || g->type == IHSM_KEY_EC_P384)
            return gen_ec_params(g);
        ihsm_prov_raise(g->ctx, IHSM_R_UNSUPPORTED, "%s keys have no domain parameters",
                        g->desc->name);
        return NULL;
    }

    ihsm_wr_init(&w);
    ihsm_wr_u32(&w, g->type);
    ihsm_wr_u32(&w, g->type == IHSM_KEY_RSA ? g->bits : 0);
    ihsm_wr_u32(&w, 0); /* the type's natural usage: sign */
    ihsm_wr_u32(&w, g->name != NULL ? IHSM_KEYF_PERSIST : 0);
    ihsm_wr_bytes(&w, g->name, g->name != NULL ? strlen(g->name) : 0);
    if (g->name != NULL)
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
    if (ihsm_rd_end(&r) != 0 || handle == 0 || blob == NULL || blob_len == 0
        || pub == NULL || pub_len == 0) {
        ihsm_prov_raise(g->ctx, IHSM_R_DEVICE_ERROR, "%s: malformed answer from the device",
                        what);
        goto end;
    }
    if ((k = ihsm_prov_key_new(g->ctx)) == NULL
        || (k->blob = OPENSSL_memdup(blob, blob_len)) == NULL
        || (g->name != NULL && (k->name = OPENSSL_strdup(g->name)) == NULL))
        goto fail;
    k->blob_len = blob_len;
    k->type = g->type;
    k->rsa_pss = g->desc->rsa_pss;
    if (!ihsm_prov_key_set_public(k, pub, pub_len))
        goto fail;
    __atomic_store_n(&k->handle, handle, __ATOMIC_RELEASE);
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
