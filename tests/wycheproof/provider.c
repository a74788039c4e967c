/*
 * The run's library context: the default provider, then ihsm (the order
 * docs/configuration.md asks for), loaded from an openssl.cnf written into
 * the scratch directory so that derive and aead are routed to the device as
 * well as sign. Public keys of verification vectors become ihsm key objects
 * through the provider's key management, and verification goes through the
 * provider's signature implementations (which hand it to the default
 * provider: that is the provider's design, not a shortcut here).
 */
#include "wycheproof.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/core_dispatch.h>
#include <openssl/x509.h>

const char *wp_ossl_errors(char *buf, size_t len)
{
    const char *func, *data;
    unsigned long e;
    size_t o = 0;
    int flags;

    buf[0] = '\0';
    while ((e = ERR_get_error_all(NULL, NULL, &func, &data, &flags)) != 0) {
        char one[256];

        ERR_error_string_n(e, one, sizeof(one));
        if (o + 3 < len)
            o += (size_t)snprintf(buf + o, len - o, "%s%s%s%s", o ? "; " : "",
                                  ERR_reason_error_string(e) ? ERR_reason_error_string(e) : one,
                                  (flags & ERR_TXT_STRING) && data && *data ? ": " : "",
                                  (flags & ERR_TXT_STRING) && data ? data : "");
    }
    if (o == 0)
        snprintf(buf, len, "no OpenSSL error recorded");
    return buf;
}

int wp_libctx_init(wp_run *r, const char *libdir)
{
    char module[PATH_MAX], *cnf = NULL, err[1024];
    FILE *f;
    int ok = 0;

    if (realpath(libdir, module) == NULL
        || strlen(module) + sizeof("/ihsm.so") > sizeof(module)) {
        fprintf(stderr, "ihsm-wycheproof: no provider directory %s: build the ihsm target "
                "(cmake --build BUILD --target ihsm)\n", libdir);
        return -1;
    }
    strcat(module, "/ihsm.so");
    if (asprintf(&cnf, "%s/openssl.cnf", r->dev.scratch) < 0)
        return -1;
    if ((f = fopen(cnf, "w")) == NULL) {
        fprintf(stderr, "ihsm-wycheproof: cannot write %s\n", cnf);
        free(cnf);
        return -1;
    }
    fprintf(f,
            "# written by ihsm-wycheproof for one run\n"
            "openssl_conf = openssl_init\n"
            "[openssl_init]\n"
            "providers = provider_sect\n"
            "[provider_sect]\n"
            "default = default_sect\n"
            "ihsm = ihsm_sect\n"
            "[default_sect]\n"
            "activate = 1\n"
            "[ihsm_sect]\n"
            "module = %s\n"
            "activate = 1\n"
            "ihsm-socket = %s\n"
            "ihsm-credential = %s\n"
            "ihsm-route = sign,derive,aead\n",
            module, r->dev.socket_path, r->dev.credential);
    if (fclose(f) != 0)
        goto end;
    if ((r->libctx = OSSL_LIB_CTX_new()) == NULL)
        goto end;
    if (!OSSL_LIB_CTX_load_config(r->libctx, cnf)
        || !OSSL_PROVIDER_available(r->libctx, "ihsm")
        || !OSSL_PROVIDER_available(r->libctx, "default")) {
        fprintf(stderr, "ihsm-wycheproof: the ihsm provider (%s) did not load: %s\n", module,
                wp_ossl_errors(err, sizeof(err)));
        goto end;
    }
    ok = 1;
end:
    free(cnf);
    return ok ? 0 : -1;
}

void wp_libctx_free(wp_run *r)
{
    OSSL_LIB_CTX_free(r->libctx);
    r->libctx = NULL;
}

int wp_ihsm_offers(wp_run *r, int operation, const char *name)
{
    void *impl = NULL;

    ERR_set_mark();
    switch (operation) {
    case OSSL_OP_KEYMGMT:
        impl = EVP_KEYMGMT_fetch(r->libctx, name, WP_PROPQ);
        EVP_KEYMGMT_free(impl);
        break;
    case OSSL_OP_SIGNATURE:
        impl = EVP_SIGNATURE_fetch(r->libctx, name, WP_PROPQ);
        EVP_SIGNATURE_free(impl);
        break;
    case OSSL_OP_KEYEXCH:
        impl = EVP_KEYEXCH_fetch(r->libctx, name, WP_PROPQ);
        EVP_KEYEXCH_free(impl);
        break;
    case OSSL_OP_CIPHER:
        impl = EVP_CIPHER_fetch(r->libctx, name, WP_PROPQ);
        EVP_CIPHER_free(impl);
        break;
    }
    ERR_pop_to_mark();
    return impl != NULL;
}

EVP_PKEY *wp_ihsm_public_key(wp_run *r, const uint8_t *spki, size_t len, char *why,
                             size_t whylen, int *skip)
{
    const unsigned char *p = spki;
    EVP_PKEY *soft = NULL, *key = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    OSSL_PARAM *params = NULL;
    char err[512];

    soft = d2i_PUBKEY_ex(NULL, &p, (long)len, r->libctx, "provider=default");
    if (soft == NULL || p != spki + len) {
        snprintf(why, whylen, "the vector's public key does not decode: %s",
                 wp_ossl_errors(err, sizeof(err)));
        goto end;
    }
    if (!wp_ihsm_offers(r, OSSL_OP_KEYMGMT, EVP_PKEY_get0_type_name(soft))) {
        snprintf(why, whylen, "the ihsm provider offers no %s key management",
                 EVP_PKEY_get0_type_name(soft));
        *skip = 1;
        goto end;
    }
    if (!EVP_PKEY_todata(soft, EVP_PKEY_PUBLIC_KEY, &params)
        || (pctx = EVP_PKEY_CTX_new_from_name(r->libctx, EVP_PKEY_get0_type_name(soft),
                                              WP_PROPQ)) == NULL
        || EVP_PKEY_fromdata_init(pctx) <= 0
        || EVP_PKEY_fromdata(pctx, &key, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        snprintf(why, whylen, "the ihsm provider's %s key management did not take the "
                 "public key: %s", EVP_PKEY_get0_type_name(soft),
                 wp_ossl_errors(err, sizeof(err)));
        key = NULL;
    }
end:
    OSSL_PARAM_free(params);
    EVP_PKEY_CTX_free(pctx);
    EVP_PKEY_free(soft);
    return key;
}
