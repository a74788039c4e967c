/* Keys for the rows: made in whichever provider the side asks for (ihsm:
 * inside the device), and public halves moved between library contexts. */
#include <string.h>
#include <strings.h>
#include <openssl/core_names.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include "speed.h"

EVP_PKEY *sp_keygen(OSSL_LIB_CTX *lc, const char *propq, const struct sp_row *row)
{
    EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_from_name(lc, row->keytype, propq);
    EVP_PKEY *pk = NULL;

    if (kc == NULL || EVP_PKEY_keygen_init(kc) <= 0
        || (row->bits != 0 && EVP_PKEY_CTX_set_rsa_keygen_bits(kc, (int)row->bits) <= 0)
        || (row->param != NULL && EVP_PKEY_CTX_set_group_name(kc, row->param) <= 0)
        || EVP_PKEY_generate(kc, &pk) <= 0) {
        EVP_PKEY_free(pk);
        pk = NULL;
    }
    EVP_PKEY_CTX_free(kc);
    return pk;
}

EVP_PKEY *sp_pub_in(OSSL_LIB_CTX *lc, EVP_PKEY *k)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    EVP_PKEY *pub = NULL;
    int n = i2d_PUBKEY(k, &der);

    if (n > 0) {
        p = der;
        pub = d2i_PUBKEY_ex(NULL, &p, n, lc, NULL);
    }
    OPENSSL_free(der);
    return pub;
}

struct group_find {
    const char *tls_name;
    char internal[64], alg[32];
    int found;
};

static int group_cb(const OSSL_PARAM params[], void *arg)
{
    struct group_find *g = arg;
    const OSSL_PARAM *p;
    const char *name = NULL, *internal = NULL, *alg = NULL;

    if (g->found)
        return 1;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CAPABILITY_TLS_GROUP_NAME)) == NULL
        || !OSSL_PARAM_get_utf8_string_ptr(p, &name) || strcasecmp(name, g->tls_name) != 0)
        return 1;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CAPABILITY_TLS_GROUP_NAME_INTERNAL)) == NULL
        || !OSSL_PARAM_get_utf8_string_ptr(p, &internal)
        || (p = OSSL_PARAM_locate_const(params, OSSL_CAPABILITY_TLS_GROUP_ALG)) == NULL
        || !OSSL_PARAM_get_utf8_string_ptr(p, &alg)
        || strlen(internal) >= sizeof(g->internal) || strlen(alg) >= sizeof(g->alg))
        return 1;
    strcpy(g->internal, internal);
    strcpy(g->alg, alg);
    g->found = 1;
    return 1;
}

struct prov_find {
    const char *name;
    OSSL_PROVIDER *prov;
};

static int prov_cb(OSSL_PROVIDER *prov, void *arg)
{
    struct prov_find *f = arg;

    if (f->prov == NULL && strcmp(OSSL_PROVIDER_get0_name(prov), f->name) == 0)
        f->prov = prov;
    return 1;
}

EVP_PKEY *sp_keygen_kex(OSSL_LIB_CTX *lc, const char *provider, const char *propq,
                        const struct sp_row *row)
{
    struct prov_find pf = { provider, NULL };
    struct group_find gf = { .tls_name = row->tls_group };
    EVP_PKEY_CTX *kc;
    EVP_PKEY *pk = NULL;

    if (row->tls_group != NULL && OSSL_PROVIDER_do_all(lc, prov_cb, &pf) && pf.prov != NULL)
        OSSL_PROVIDER_get_capabilities(pf.prov, "TLS-GROUP", group_cb, &gf);
    if (!gf.found)
        return sp_keygen(lc, propq, row);
    /* as ssl_generate_pkey_group() does */
    kc = EVP_PKEY_CTX_new_from_name(lc, gf.alg, propq);
    if (kc == NULL || EVP_PKEY_keygen_init(kc) <= 0
        || EVP_PKEY_CTX_set_group_name(kc, gf.internal) <= 0
        || EVP_PKEY_keygen(kc, &pk) <= 0) {
        EVP_PKEY_free(pk);
        pk = NULL;
    }
    EVP_PKEY_CTX_free(kc);
    return pk;
}
