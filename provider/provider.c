/*
 * The ihsm provider: entry point, configuration and the operation tables.
 *
 * Configuration comes from the provider's openssl.cnf section (read with
 * core_get_params), IHSM_SOCKET and IHSM_CREDENTIAL override it. Nothing
 * here touches the device: the queue is created on first use
 * (ihsm_prov_queue), so a process that only loads the provider never
 * connects and nginx's master may fork before any device work.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#include <openssl/params.h>
#include "cipher_aead.h"
#include "ihsm_transport.h"
#include "prov_int.h"

#ifndef IHSM_VERSION_STR
# define IHSM_VERSION_STR "0.0.0"
#endif
#define IHSM_PROV_NAME "ihsm"
#define IHSM_PROP "provider=ihsm"

/* Configuration parameter names (openssl.cnf, provider section). */
#define CFG_SOCKET      "ihsm-socket"
#define CFG_CREDENTIAL  "ihsm-credential"
#define CFG_ROUTE       "ihsm-route"
#define CFG_BATCH       "ihsm-batch-size"
#define CFG_DELAY       "ihsm-batch-delay-us"
#define CFG_TIMEOUT     "ihsm-timeout-ms"
#define CFG_DEBUG       "ihsm-debug"
#define CFG_AEAD_MIN    "ihsm-aead-min-size"

#define DEFAULT_BATCH      64
#define DEFAULT_DELAY_US   50
#define DEFAULT_TIMEOUT_MS 10000
/* Records with raw (TLS) keys stay in process unless at least this long:
 * by default never, since on the machines measured the device was slower
 * at every record size (docs/configuration.md, "AEAD"). */
#define DEFAULT_AEAD_MIN_SIZE IHSM_AEAD_MIN_NEVER

/* With derive in ihsm-route, the key exchange algorithms also carry
 * IHSM_PROP_DERIVE (see prov_int.h): `default_properties = ?ihsm.derive=yes`
 * then sends libssl's ephemeral keys to the device. */
#define IHSM_PROP_KEX IHSM_PROP "," IHSM_PROP_DERIVE
#define KEYMGMT_ALGS(kexprop)                                                                 \
    { "RSA:rsaEncryption:1.2.840.113549.1.1.1", IHSM_PROP, ihsm_rsa_keymgmt_functions,      \
      "ihsm RSA keys held in ihsmd" },                                                      \
    { "RSA-PSS:RSASSA-PSS:1.2.840.113549.1.1.10", IHSM_PROP, ihsm_rsapss_keymgmt_functions, \
      "ihsm RSA-PSS keys held in ihsmd" },                                                  \
    { "EC:id-ecPublicKey:1.2.840.10045.2.1", kexprop, ihsm_ec_keymgmt_functions,            \
      "ihsm EC keys (P-256, P-384) held in ihsmd" },                                        \
    { "ED25519:1.3.101.112", IHSM_PROP, ihsm_ed25519_keymgmt_functions,                     \
      "ihsm Ed25519 keys held in ihsmd" },                                                  \
    { "X25519:1.3.101.110", kexprop, ihsm_x25519_keymgmt_functions,                         \
      "ihsm X25519 keys held in ihsmd" },                                                   \
    { NULL, NULL, NULL, NULL }
#define KEYEXCH_ALGS(kexprop)                                                                 \
    { "ECDH", kexprop, ihsm_ecdh_keyexch_functions, "ECDH (P-256, P-384) in ihsmd" },       \
    { "X25519:1.3.101.110", kexprop, ihsm_x25519_keyexch_functions, "X25519 in ihsmd" },    \
    { NULL, NULL, NULL, NULL }

static const OSSL_ALGORITHM keymgmt_algs[] = { KEYMGMT_ALGS(IHSM_PROP) };
static const OSSL_ALGORITHM keymgmt_algs_derive[] = { KEYMGMT_ALGS(IHSM_PROP_KEX) };
static const OSSL_ALGORITHM keyexch_algs[] = { KEYEXCH_ALGS(IHSM_PROP) };
static const OSSL_ALGORITHM keyexch_algs_derive[] = { KEYEXCH_ALGS(IHSM_PROP_KEX) };

static const OSSL_ALGORITHM signature_algs[] = {
    { "RSA:rsaEncryption:1.2.840.113549.1.1.1", IHSM_PROP, ihsm_rsa_signature_functions,
      "RSA PKCS#1 v1.5 and PSS signatures in ihsmd" },
    { "ECDSA", IHSM_PROP, ihsm_ecdsa_signature_functions, "ECDSA signatures in ihsmd" },
    { "ED25519:1.3.101.112", IHSM_PROP, ihsm_ed25519_signature_functions,
      "Ed25519 signatures in ihsmd" },
    { NULL, NULL, NULL, NULL }
};

static OSSL_FUNC_core_get_params_fn *c_get_params;

/* ---------------------------------------------------------------- params */

static const OSSL_PARAM prov_gettable[] = {
    OSSL_PARAM_DEFN(OSSL_PROV_PARAM_NAME, OSSL_PARAM_UTF8_PTR, NULL, 0),
    OSSL_PARAM_DEFN(OSSL_PROV_PARAM_VERSION, OSSL_PARAM_UTF8_PTR, NULL, 0),
    OSSL_PARAM_DEFN(OSSL_PROV_PARAM_BUILDINFO, OSSL_PARAM_UTF8_PTR, NULL, 0),
    OSSL_PARAM_DEFN(OSSL_PROV_PARAM_STATUS, OSSL_PARAM_INTEGER, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM *prov_gettable_params(void *provctx)
{
    return prov_gettable;
}

static int prov_get_params(void *provctx, OSSL_PARAM params[])
{
    OSSL_PARAM *p;

    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME)) != NULL
        && !OSSL_PARAM_set_utf8_ptr(p, "ihsm provider: keys held in the ihsmd HSM"))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION)) != NULL
        && !OSSL_PARAM_set_utf8_ptr(p, IHSM_VERSION_STR))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO)) != NULL
        && !OSSL_PARAM_set_utf8_ptr(p, "ihsm " IHSM_VERSION_STR ", built with "
                                       OPENSSL_VERSION_TEXT))
        return 0;
    /* Running; the device's own health is reported per operation. */
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS)) != NULL
        && !OSSL_PARAM_set_int(p, 1))
        return 0;
    return 1;
}

static const OSSL_ALGORITHM *prov_query_operation(void *provctx, int operation_id,
                                                  int *no_cache)
{
    int derive = (((IHSM_PROV_CTX *)provctx)->route & IHSM_ROUTE_DERIVE) != 0;

    *no_cache = 0;
    switch (operation_id) {
    case OSSL_OP_KEYMGMT:
        return derive ? keymgmt_algs_derive : keymgmt_algs;
    case OSSL_OP_KEYEXCH:
        return derive ? keyexch_algs_derive : keyexch_algs;
    case OSSL_OP_SIGNATURE:
        return signature_algs;
    case OSSL_OP_DECODER:
        return ihsm_decoder_algs;
    case OSSL_OP_ENCODER:
        return ihsm_encoder_algs;
    case OSSL_OP_STORE:
        return ihsm_store_algs;
    case OSSL_OP_CIPHER:
        /* only when asked for: unqualified fetches never meet them otherwise */
        return (((IHSM_PROV_CTX *)provctx)->route & IHSM_ROUTE_AEAD) != 0 ? ihsm_cipher_algs
                                                                           : NULL;
    }
    return NULL;
}

static const OSSL_ITEM *prov_get_reason_strings(void *provctx)
{
    return ihsm_prov_reason_strings();
}

static void prov_ctx_free(IHSM_PROV_CTX *ctx)
{
    if (ctx == NULL)
        return;
    if (ctx->queue != NULL)
        ihsm_queue_free(ctx->queue);
    OSSL_LIB_CTX_free(ctx->libctx);
    CRYPTO_THREAD_lock_free(ctx->queue_lock);
    OPENSSL_free(ctx->socket_path);
    OPENSSL_free(ctx->credential_path);
    OPENSSL_free(ctx);
}

static void prov_teardown(void *provctx)
{
    IHSM_PROV_DBG("provider: teardown");
    prov_ctx_free(provctx);
}

static const OSSL_DISPATCH prov_dispatch[] = {
    { OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))prov_teardown },
    { OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))prov_gettable_params },
    { OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))prov_get_params },
    { OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))prov_query_operation },
    { OSSL_FUNC_PROVIDER_GET_REASON_STRINGS, (void (*)(void))prov_get_reason_strings },
    { OSSL_FUNC_PROVIDER_GET_CAPABILITIES, (void (*)(void))ihsm_prov_get_capabilities },
    { 0, NULL }
};

/* ---------------------------------------------------------------- queue */

ihsm_queue *ihsm_prov_queue(IHSM_PROV_CTX *ctx)
{
    ihsm_queue *q = __atomic_load_n(&ctx->queue, __ATOMIC_ACQUIRE);
    ihsm_queue_config cfg;
    int st = IHSM_OK;

    if (q != NULL)
        return q;
    /* Creating the queue does no device I/O (it connects on first call),
     * so holding the lock here never spans a device round trip. */
    if (!CRYPTO_THREAD_write_lock(ctx->queue_lock)) {
        ihsm_prov_raise(ctx, IHSM_R_DEVICE_ERROR, "cannot take the provider's queue lock");
        return NULL;
    }
    q = ctx->queue;
    if (q == NULL) {
        memset(&cfg, 0, sizeof(cfg));
        cfg.socket_path = ctx->socket_path;
        cfg.credential_path = ctx->credential_path;
        cfg.batch_max = ctx->batch_max;
        cfg.delay_us = ctx->delay_us;
        cfg.timeout_ms = ctx->timeout_ms;
        st = ihsm_queue_new(&cfg, &q);
        if (st == IHSM_OK) {
            __atomic_store_n(&ctx->queue, q, __ATOMIC_RELEASE);
            IHSM_PROV_DBG("provider: queue created for %s (batch %u, delay %u us, timeout %u ms)",
                          ctx->socket_path, ctx->batch_max, ctx->delay_us, ctx->timeout_ms);
        } else {
            q = NULL;
        }
    }
    CRYPTO_THREAD_unlock(ctx->queue_lock);
    if (q == NULL)
        ihsm_prov_raise_status(ctx, st, "opening the ihsm device queue");
    return q;
}

int ihsm_prov_call(IHSM_PROV_CTX *ctx, uint16_t cmd, const ihsm_wr *payload,
                   ihsm_result *res, const char *what)
{
    ihsm_queue *q = ihsm_prov_queue(ctx);
    int st;

    if (q == NULL)
        return IHSM_ERR_CONNECT;
    if (payload != NULL && payload->err) {
        ihsm_prov_raise(ctx, IHSM_R_INVALID_ARGUMENT, "%s: request too large for the device", what);
        return IHSM_ERR_LIMIT_FRAME;
    }
    st = ihsm_queue_call(q, cmd, payload != NULL ? payload->p : NULL,
                         payload != NULL ? payload->len : 0, res);
    IHSM_PROV_DBG("provider: %s -> %s", ihsm_cmd_name(cmd), ihsm_status_name(st));
    if (st != IHSM_OK)
        ihsm_prov_raise_status(ctx, st, what);
    return st;
}

/* ---------------------------------------------------------------- config */

static int cfg_uint(const OSSL_CORE_HANDLE *h, const char *name, const char *v,
                    unsigned min, unsigned max, unsigned *out)
{
    char *end;
    unsigned long n;

    errno = 0;
    while (isspace((unsigned char)*v))
        v++;
    if (*v == '-' || *v == '\0')
        goto bad;
    n = strtoul(v, &end, 10);
    while (isspace((unsigned char)*end))
        end++;
    if (errno != 0 || *end != '\0' || n < min || n > max)
        goto bad;
    *out = (unsigned)n;
    return 1;
bad:
    ihsm_prov_raise_config(h, "ihsm provider: %s = \"%s\" is not valid: expected a whole "
                           "number from %u to %u", name, v, min, max);
    return 0;
}

static int cfg_bool(const OSSL_CORE_HANDLE *h, const char *name, const char *v, int *out)
{
    static const char *const yes[] = { "1", "yes", "true", "on" };
    static const char *const no[] = { "0", "no", "false", "off" };
    size_t i;

    for (i = 0; i < IHSM_ARRAY_LEN(yes); i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return 1;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return 1;
        }
    }
    ihsm_prov_raise_config(h, "ihsm provider: %s = \"%s\" is not valid: expected yes or no",
                           name, v);
    return 0;
}

/* "sign,derive" -> IHSM_ROUTE_* bits */
static int cfg_route(const OSSL_CORE_HANDLE *h, const char *v, unsigned *out)
{
    static const struct { const char *name; unsigned bit; } ops[] = {
        { "sign", IHSM_ROUTE_SIGN },
        { "derive", IHSM_ROUTE_DERIVE },
        { "aead", IHSM_ROUTE_AEAD },
    };
    const char *p = v;
    unsigned route = 0;

    for (;;) {
        const char *tok, *tend;
        size_t i, n;

        while (isspace((unsigned char)*p))
            p++;
        tok = p;
        while (*p != '\0' && *p != ',')
            p++;
        tend = p;
        while (tend > tok && isspace((unsigned char)tend[-1]))
            tend--;
        n = (size_t)(tend - tok);
        for (i = 0; i < IHSM_ARRAY_LEN(ops); i++) {
            if (strlen(ops[i].name) == n && strncasecmp(tok, ops[i].name, n) == 0)
                break;
        }
        if (i == IHSM_ARRAY_LEN(ops)) {
            ihsm_prov_raise_config(h, "ihsm provider: %s = \"%s\": unknown operation "
                                   "\"%.*s\": use a comma list of sign, derive, aead",
                                   CFG_ROUTE, v, (int)n, tok);
            return 0;
        }
        route |= ops[i].bit;
        if (*p == '\0')
            break;
        p++;
    }
    *out = route;
    return 1;
}

static int cfg_path(const OSSL_CORE_HANDLE *h, const char *name, const char *v, size_t max)
{
    if (*v == '\0' || strlen(v) > max) {
        ihsm_prov_raise_config(h, "ihsm provider: %s = \"%s\" is not valid: expected a "
                               "path of 1 to %zu characters", name, v, max);
        return 0;
    }
    return 1;
}

static int load_config(IHSM_PROV_CTX *ctx)
{
    const OSSL_CORE_HANDLE *h = ctx->handle;
    const char *socket = NULL, *cred = NULL, *route = NULL, *batch = NULL;
    const char *delay = NULL, *timeout = NULL, *debug = NULL, *aead_min = NULL;
    const char *env;
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_ptr(CFG_SOCKET, (char **)&socket, 0),
        OSSL_PARAM_utf8_ptr(CFG_CREDENTIAL, (char **)&cred, 0),
        OSSL_PARAM_utf8_ptr(CFG_ROUTE, (char **)&route, 0),
        OSSL_PARAM_utf8_ptr(CFG_BATCH, (char **)&batch, 0),
        OSSL_PARAM_utf8_ptr(CFG_DELAY, (char **)&delay, 0),
        OSSL_PARAM_utf8_ptr(CFG_TIMEOUT, (char **)&timeout, 0),
        OSSL_PARAM_utf8_ptr(CFG_DEBUG, (char **)&debug, 0),
        OSSL_PARAM_utf8_ptr(CFG_AEAD_MIN, (char **)&aead_min, 0),
        OSSL_PARAM_END
    };
    int dbg = 0;

    if (c_get_params != NULL && !c_get_params(h, params)) {
        ihsm_prov_raise_config(h, "ihsm provider: cannot read the provider's configuration");
        return 0;
    }
    if (debug != NULL) {
        if (!cfg_bool(h, CFG_DEBUG, debug, &dbg))
            return 0;
        if (dbg)
            ihsm_debug = 1;
    }

    /* The environment wins over the file: one process can be pointed at
     * another device or partition without editing openssl.cnf. */
    if ((env = secure_getenv("IHSM_SOCKET")) != NULL && *env != '\0')
        socket = env;
    if ((env = secure_getenv("IHSM_CREDENTIAL")) != NULL && *env != '\0')
        cred = env;
    if (socket == NULL)
        socket = IHSM_DEFAULT_SOCKET;
    if (!cfg_path(h, CFG_SOCKET, socket, sizeof(((struct sockaddr_un *)0)->sun_path) - 1))
        return 0;
    if (cred != NULL && !cfg_path(h, CFG_CREDENTIAL, cred, 4096))
        return 0;
    if ((ctx->socket_path = OPENSSL_strdup(socket)) == NULL
        || (cred != NULL && (ctx->credential_path = OPENSSL_strdup(cred)) == NULL)) {
        ihsm_prov_raise_config(h, "ihsm provider: out of memory");
        return 0;
    }

    ctx->route = IHSM_ROUTE_SIGN;
    ctx->batch_max = DEFAULT_BATCH;
    ctx->delay_us = DEFAULT_DELAY_US;
    ctx->timeout_ms = DEFAULT_TIMEOUT_MS;
    if (route != NULL && !cfg_route(h, route, &ctx->route))
        return 0;
    if (batch != NULL && !cfg_uint(h, CFG_BATCH, batch, 1, IHSM_MAX_BATCH, &ctx->batch_max))
        return 0;
    if (delay != NULL && !cfg_uint(h, CFG_DELAY, delay, 1, 100000, &ctx->delay_us))
        return 0;
    if (timeout != NULL && !cfg_uint(h, CFG_TIMEOUT, timeout, 1, 3600000, &ctx->timeout_ms))
        return 0;
    ctx->aead_min_size = DEFAULT_AEAD_MIN_SIZE;
    if (aead_min != NULL && strcasecmp(aead_min, "never") != 0) {
        unsigned v;

        if (!cfg_uint(h, CFG_AEAD_MIN, aead_min, 0, 1u << 24, &v))
            return 0;
        ctx->aead_min_size = v;
    }

    IHSM_PROV_DBG("provider: socket %s, credential %s, route%s%s%s, batch %u, delay %u us, "
                  "timeout %u ms, aead min size %zu",
                  ctx->socket_path, ctx->credential_path ? ctx->credential_path : "(none)",
                  ctx->route & IHSM_ROUTE_SIGN ? " sign" : "",
                  ctx->route & IHSM_ROUTE_DERIVE ? " derive" : "",
                  ctx->route & IHSM_ROUTE_AEAD ? " aead" : "",
                  ctx->batch_max, ctx->delay_us, ctx->timeout_ms, ctx->aead_min_size);
    return 1;
}

/* ---------------------------------------------------------------- init */

__attribute__((visibility("default")))
int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx)
{
    const OSSL_DISPATCH *d;
    IHSM_PROV_CTX *ctx;

    ihsm_debug_init();
    ihsm_prov_err_setup(handle, in);
    for (d = in; d->function_id != 0; d++) {
        if (d->function_id == OSSL_FUNC_CORE_GET_PARAMS)
            c_get_params = OSSL_FUNC_core_get_params(d);
    }

    if ((ctx = OPENSSL_zalloc(sizeof(*ctx))) == NULL)
        return 0;
    ctx->handle = handle;
    if ((ctx->queue_lock = CRYPTO_THREAD_lock_new()) == NULL) {
        ihsm_prov_raise_config(handle, "ihsm provider: cannot create a lock");
        goto err;
    }
    if (!load_config(ctx))
        goto err;
    /* A child of the application's library context: public-key work (SPKI
     * decoding, verification, digests) uses the providers the application
     * loaded, e.g. default or fips. */
    if ((ctx->libctx = OSSL_LIB_CTX_new_child(handle, in)) == NULL) {
        ihsm_prov_raise_config(handle, "ihsm provider: cannot create its library context");
        goto err;
    }
    IHSM_PROV_DBG("provider: initialised (ihsm %s)", IHSM_VERSION_STR);
    *out = prov_dispatch;
    *provctx = ctx;
    return 1;
err:
    /* Programs load openssl.cnf ignoring module failures (nginx, haproxy and
     * the openssl CLI do), so the error raised above is seldom printed and
     * the provider would just be missing. Say it once where people look. */
    if (ihsm_prov_config_error()[0] != '\0')
        fprintf(stderr, "%s (the provider is not loaded)\n", ihsm_prov_config_error());
    prov_ctx_free(ctx);
    return 0;
}
