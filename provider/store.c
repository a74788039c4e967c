/*
 * STORE: keys kept in the device by name, as `ihsm:` URIs.
 *
 *   ihsm:NAME                   the named key (private: a device key object)
 *   ihsm:name=NAME              the same, attribute form
 *   ihsm:NAME?type=public       its public key only (a plain public EVP_PKEY)
 *   ihsm:name=NAME;type=public  the same
 *
 * %XX escapes are decoded in names. `openssl ... -key ihsm:web` and
 * OSSL_STORE_open("ihsm:web") reach it; nginx >= 1.29 through "store:".
 * The key is found at load time (KEY_FIND), so a bad URI fails early and
 * a missing key says which name and partition were searched.
 *
 * The private key goes to keymgmt load by reference with the same rule as
 * the decoder: load takes the object and clears our pointer; what is left
 * in it afterwards is freed here.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/store.h>

#include "ihsm_credential.h"
#include "ihsm_prov_io.h"

#define SCHEME "ihsm:"

typedef struct {
    IHSM_PROV_CTX *provctx;
    char name[IHSM_MAX_LABEL + 1];
    int want_public; /* type=public */
    int expect;      /* OSSL_STORE_INFO_* from OSSL_STORE_expect(); 0: any */
    int done;
} store_ctx;

static OSSL_FUNC_store_open_fn store_open;
static OSSL_FUNC_store_settable_ctx_params_fn store_settable_ctx_params;
static OSSL_FUNC_store_set_ctx_params_fn store_set_ctx_params;
static OSSL_FUNC_store_load_fn store_load;
static OSSL_FUNC_store_eof_fn store_eof;
static OSSL_FUNC_store_close_fn store_close;
static OSSL_FUNC_store_export_object_fn store_export_object;

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode [s, s+n) into out (IHSM_MAX_LABEL + 1 bytes). */
static int decode_name(const char *s, size_t n, char *out)
{
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        int c = (unsigned char)s[i];

        if (c == '%') {
            int hi, lo;

            if (i + 2 >= n || (hi = hexval(s[i + 1])) < 0
                || (lo = hexval(s[i + 2])) < 0 || (c = hi * 16 + lo) == 0)
                return 0;
            i += 2;
        }
        if (o >= IHSM_MAX_LABEL)
            return 0;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return o > 0;
}

/* One attribute, "key=value" or (first of the path only) a bare name. */
static int parse_attr(store_ctx *ctx, const char *s, size_t n, int bare_ok)
{
    const char *eq = memchr(s, '=', n);

    if (eq == NULL)
        return bare_ok && decode_name(s, n, ctx->name);
    if ((size_t)(eq - s) == 4 && strncmp(s, "name", 4) == 0)
        return decode_name(eq + 1, n - 5, ctx->name);
    if ((size_t)(eq - s) == 4 && strncmp(s, "type", 4) == 0) {
        size_t vl = n - 5;

        if (vl == 6 && strncmp(eq + 1, "public", 6) == 0)
            ctx->want_public = 1;
        else if (vl == 7 && strncmp(eq + 1, "private", 7) == 0)
            ctx->want_public = 0;
        else
            return 0;
        return 1;
    }
    return 0; /* unknown attribute: say so rather than ignore it */
}

static int parse_uri(store_ctx *ctx, const char *uri)
{
    const char *p = uri + strlen(SCHEME);
    const char *query = strchr(p, '?');
    const char *path_end = query != NULL ? query : p + strlen(p);
    int first = 1;

    /* path: attributes separated by ';' */
    while (p < path_end) {
        const char *sep = memchr(p, ';', (size_t)(path_end - p));
        const char *end = sep != NULL ? sep : path_end;

        if (!parse_attr(ctx, p, (size_t)(end - p), first))
            return 0;
        first = 0;
        p = sep != NULL ? sep + 1 : path_end;
    }
    /* query: attributes separated by '&' */
    if (query != NULL) {
        p = query + 1;
        while (*p != '\0') {
            const char *sep = strchr(p, '&');
            size_t n = sep != NULL ? (size_t)(sep - p) : strlen(p);

            if (!parse_attr(ctx, p, n, 0))
                return 0;
            p += n + (sep != NULL);
        }
    }
    return ctx->name[0] != '\0';
}

static void *store_open(void *provctx, const char *uri)
{
    store_ctx *ctx;

    IHSM_PROV_DBG("store: open %s", uri);
    if (uri == NULL || strncasecmp(uri, SCHEME, strlen(SCHEME)) != 0)
        return NULL;
    if ((ctx = OPENSSL_zalloc(sizeof(*ctx))) == NULL)
        return NULL;
    ctx->provctx = provctx;
    if (!parse_uri(ctx, uri)) {
        ihsm_prov_raise(provctx, IHSM_R_INVALID_ARGUMENT,
                        "unrecognised URI '%s': use ihsm:NAME, ihsm:name=NAME "
                        "or ihsm:NAME?type=public (names up to %d bytes, %%XX escapes)",
                        uri, IHSM_MAX_LABEL);
        OPENSSL_free(ctx);
        return NULL;
    }
    return ctx;
}

static const OSSL_PARAM *store_settable_ctx_params(void *provctx)
{
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_int(OSSL_STORE_PARAM_EXPECT, NULL),
        OSSL_PARAM_END
    };
    return settable;
}

static int store_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    store_ctx *ctx = vctx;
    const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_EXPECT);

    return p == NULL || OSSL_PARAM_get_int(p, &ctx->expect);
}

/* The partition the credential names, for error messages. */
static void partition_name(store_ctx *ctx, char *out, size_t len)
{
    const char *path = ihsm_credential_path(ctx->provctx->credential_path);
    ihsm_credential cred = { 0 };

    snprintf(out, len, "(unknown: no credential file)");
    if (path != NULL && ihsm_credential_load(path, &cred, NULL, 0) == IHSM_OK)
        snprintf(out, len, "%s", cred.partition);
    ihsm_credential_clear(&cred);
}

static int load_public(store_ctx *ctx, IHSM_PROV_KEY *key, const char *type,
                       OSSL_CALLBACK *object_cb, void *object_cbarg)
{
    int objtype = OSSL_OBJECT_PKEY, ok;
    uint8_t *spki = NULL;
    size_t len = 0;
    OSSL_PARAM params[5];

    if (!ihsm_io_key_spki(key, &spki, &len))
        return 0;
    /* by value: libcrypto decodes it with the default provider */
    params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &objtype);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
                                                 (char *)type, 0);
    params[2] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_STRUCTURE,
                                                 (char *)"SubjectPublicKeyInfo", 0);
    params[3] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_DATA, spki, len);
    params[4] = OSSL_PARAM_construct_end();
    ok = object_cb(params, object_cbarg);
    OPENSSL_free(spki);
    return ok;
}

static int load_private(IHSM_PROV_KEY **key, const char *type,
                        OSSL_CALLBACK *object_cb, void *object_cbarg)
{
    int objtype = OSSL_OBJECT_PKEY;
    OSSL_PARAM params[4];

    params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &objtype);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
                                                 (char *)type, 0);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE,
                                                  key, sizeof(*key));
    params[3] = OSSL_PARAM_construct_end();
    return object_cb(params, object_cbarg);
}

static int store_load(void *vctx, OSSL_CALLBACK *object_cb, void *object_cbarg,
                      OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    store_ctx *ctx = vctx;
    IHSM_PROV_KEY *key;
    const char *type;
    int want_public = ctx->want_public, ok;

    ctx->done = 1; /* one object per URI, found or not */
    switch (ctx->expect) {
    case 0:
    case OSSL_STORE_INFO_PKEY:
        break;
    case OSSL_STORE_INFO_PUBKEY:
        want_public = 1;
        break;
    default:
        return 1; /* certificates, CRLs, parameters: none here */
    }
    if ((key = ihsm_prov_key_from_name(ctx->provctx, ctx->name)) == NULL) {
        /* the device answered "not found" (not "unreachable"): name the
         * partition that was searched */
        if (ERR_GET_REASON(ERR_peek_last_error()) == IHSM_R_UNKNOWN_KEY) {
            char part[IHSM_MAX_PARTITION_NAME + 32];

            partition_name(ctx, part, sizeof(part));
            ihsm_prov_raise(ctx->provctx, IHSM_R_UNKNOWN_KEY,
                            "cannot load ihsm:%s: no key named %s in partition %s "
                            "(see `ihsmctl list`)", ctx->name, ctx->name, part);
        }
        return 0;
    }
    if ((type = ihsm_prov_key_keymgmt_name(key)) == NULL) {
        ihsm_prov_raise(ctx->provctx, IHSM_R_UNSUPPORTED,
                        "ihsm:%s is a key of type %u, which is no private key "
                        "for signing (RSA, EC, Ed25519)", ctx->name, (unsigned)key->type);
        ihsm_prov_key_free(key);
        return 0;
    }
    IHSM_PROV_DBG("store: ihsm:%s is a %s key, handing out its %s", ctx->name,
                  type, want_public ? "public key" : "device key");
    if (want_public)
        ok = load_public(ctx, key, type, object_cb, object_cbarg);
    else
        ok = load_private(&key, type, object_cb, object_cbarg);
    if (key != NULL) /* public, or not taken by keymgmt load */
        ihsm_prov_key_free(key);
    return ok;
}

static int store_eof(void *vctx)
{
    return ((store_ctx *)vctx)->done;
}

static int store_close(void *vctx)
{
    OPENSSL_clear_free(vctx, sizeof(store_ctx));
    return 1;
}

/* Refused, as in the decoder: libcrypto then falls back to our own keymgmt
 * and its load, instead of importing the public half elsewhere. */
static int store_export_object(void *vctx, const void *ref, size_t ref_sz,
                               OSSL_CALLBACK *export_cb, void *export_cbarg)
{
    IHSM_PROV_DBG("store: export_object refused (device keys stay in ihsm)");
    return 0;
}

const OSSL_DISPATCH ihsm_store_functions[] = {
    { OSSL_FUNC_STORE_OPEN, (void (*)(void))store_open },
    { OSSL_FUNC_STORE_SETTABLE_CTX_PARAMS, (void (*)(void))store_settable_ctx_params },
    { OSSL_FUNC_STORE_SET_CTX_PARAMS, (void (*)(void))store_set_ctx_params },
    { OSSL_FUNC_STORE_LOAD, (void (*)(void))store_load },
    { OSSL_FUNC_STORE_EOF, (void (*)(void))store_eof },
    { OSSL_FUNC_STORE_CLOSE, (void (*)(void))store_close },
    { OSSL_FUNC_STORE_EXPORT_OBJECT, (void (*)(void))store_export_object },
    { 0, NULL }
};
