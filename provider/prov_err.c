/*
 * Errors: ihsm's own reason strings, raised through the core's error
 * upcalls so that nginx -t, haproxy -c and the openssl CLI print a sentence
 * that says what is wrong and what to do.
 */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>
#include <openssl/core_dispatch.h>
#include <openssl/err.h>
#include <openssl/proverr.h>
#include "ihsm_credential.h"
#include "ihsm_transport.h"
#include "prov_int.h"

static OSSL_FUNC_core_new_error_fn *c_new_error;
static OSSL_FUNC_core_set_error_debug_fn *c_set_error_debug;
static OSSL_FUNC_core_vset_error_fn *c_vset_error;
/* The handle of the last instance initialised: for raises without a ctx. */
static const OSSL_CORE_HANDLE *last_handle;

static const OSSL_ITEM reason_strings[] = {
    { IHSM_R_DEVICE_UNREACHABLE, "ihsm device (ihsmd) unreachable" },
    { IHSM_R_BAD_CREDENTIAL, "ihsm partition credential not accepted" },
    { IHSM_R_DEVICE_ERROR, "ihsm device error" },
    { IHSM_R_BAD_KEYFILE, "bad ihsm masked key" },
    { IHSM_R_UNKNOWN_KEY, "unknown ihsm key" },
    { IHSM_R_USAGE_NOT_ALLOWED, "ihsm key usage forbids this operation" },
    { IHSM_R_UNSUPPORTED, "not supported by ihsm" },
    { IHSM_R_INVALID_ARGUMENT, "invalid argument" },
    { IHSM_R_BAD_CONFIG, "invalid ihsm provider configuration" },
    { IHSM_R_PARTITION_LOCKED, "ihsm partition locked" },
    { IHSM_R_NOT_EXTRACTABLE, "ihsm private keys are not extractable" },
    { IHSM_R_NO_PRIVATE_KEY, "ihsm key has no private part" },
    { IHSM_R_TIMEOUT, "ihsm device timed out" },
    { IHSM_R_DEVICE_FAILED, "ihsm device failed its self-tests" },
    { IHSM_R_PERMISSION, "not allowed by the ihsm partition" },
    { IHSM_R_BAD_PEER_KEY, "invalid peer public key (refused by ihsmd)" },
    { 0, NULL }
};

const OSSL_ITEM *ihsm_prov_reason_strings(void)
{
    return reason_strings;
}

void ihsm_prov_err_setup(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in)
{
    for (; in->function_id != 0; in++) {
        switch (in->function_id) {
        case OSSL_FUNC_CORE_NEW_ERROR:
            c_new_error = OSSL_FUNC_core_new_error(in);
            break;
        case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
            c_set_error_debug = OSSL_FUNC_core_set_error_debug(in);
            break;
        case OSSL_FUNC_CORE_VSET_ERROR:
            c_vset_error = OSSL_FUNC_core_vset_error(in);
            break;
        }
    }
    last_handle = handle;
}

static void __attribute__((format(printf, 3, 0)))
vraise(const OSSL_CORE_HANDLE *h, uint32_t reason, const char *fmt, va_list ap)
{
    if (ihsm_debug) {
        char buf[512];
        va_list cp;

        va_copy(cp, ap);
        vsnprintf(buf, sizeof(buf), fmt, cp);
        va_end(cp);
        ihsm_dbg("provider error %u: %s", (unsigned)reason, buf);
    }
    if (h == NULL)
        h = last_handle;
    if (h != NULL && c_new_error != NULL && c_vset_error != NULL) {
        c_new_error(h);
        if (c_set_error_debug != NULL)
            c_set_error_debug(h, OPENSSL_FILE, OPENSSL_LINE, "");
        c_vset_error(h, reason, fmt, ap);
    } else {
        /* Not initialised through the core (cannot happen in a loaded
         * provider): still leave something readable. */
        ERR_new();
        ERR_set_debug(OPENSSL_FILE, OPENSSL_LINE, "");
        ERR_vset_error(ERR_LIB_PROV, PROV_R_INVALID_CONFIG_DATA, fmt, ap);
    }
}

void ihsm_prov_raise(IHSM_PROV_CTX *ctx, int reason, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vraise(ctx != NULL ? ctx->handle : NULL, (uint32_t)reason, fmt, ap);
    va_end(ap);
}

static char config_error[512];

const char *ihsm_prov_config_error(void)
{
    return config_error;
}

void ihsm_prov_raise_config(const OSSL_CORE_HANDLE *handle, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(config_error, sizeof(config_error), fmt, ap);
    va_end(ap);
    va_start(ap, fmt);
    /* A reason with a library in its top bits is taken as OpenSSL's own. */
    vraise(handle, ERR_PACK(ERR_LIB_PROV, 0, PROV_R_INVALID_CONFIG_DATA), fmt, ap);
    va_end(ap);
}

/* The offload queue's account of its last connection failure, if any. */
static const char *queue_detail(IHSM_PROV_CTX *ctx)
{
    ihsm_queue *q = ctx != NULL ? __atomic_load_n(&ctx->queue, __ATOMIC_ACQUIRE) : NULL;
    const char *d = q != NULL ? ihsm_queue_last_error(q) : NULL;

    return d != NULL && *d != '\0' ? d : NULL;
}

/* Session-level failures: the queue explains them best (it knows the socket,
 * the partition and the credential it used); we add where the setting lives. */
static int raise_session(IHSM_PROV_CTX *ctx, int reason, const char *what, const char *hint)
{
    const char *detail = queue_detail(ctx);

    if (detail == NULL)
        return 0;
    ihsm_prov_raise(ctx, reason, "%s: %s (%s)", what, detail, hint);
    return 1;
}

#define HINT_SOCKET "the socket is ihsm-socket in openssl.cnf, or IHSM_SOCKET"
#define HINT_CRED "the credential is ihsm-credential in openssl.cnf, or IHSM_CREDENTIAL"

void ihsm_prov_raise_status(IHSM_PROV_CTX *ctx, int status, const char *what)
{
    const char *sock = ctx != NULL && ctx->socket_path != NULL ? ctx->socket_path
                                                                : ihsm_socket_path(NULL);
    const char *cred = ctx != NULL && ctx->credential_path != NULL ? ctx->credential_path : NULL;
    char err[512];
    ihsm_credential c;

    if (what == NULL)
        what = "ihsm device operation";

    switch (status) {
    case IHSM_ERR_CONNECT:
        if (!raise_session(ctx, IHSM_R_DEVICE_UNREACHABLE, what, HINT_SOCKET))
            ihsm_prov_raise(ctx, IHSM_R_DEVICE_UNREACHABLE,
                            "%s: ihsmd is not running at %s: start it (ihsmd --state-dir DIR "
                            "--socket %s) or point ihsm-socket in openssl.cnf (or IHSM_SOCKET) "
                            "at its socket", what, sock, sock);
        break;
    case IHSM_ERR_DEVICE_GONE:
        ihsm_prov_raise(ctx, IHSM_R_DEVICE_UNREACHABLE,
                        "%s: lost the connection to ihsmd at %s (stopped or restarted?): "
                        "check that it is running, then retry", what, sock);
        break;
    case IHSM_ERR_TIMEOUT:
        ihsm_prov_raise(ctx, IHSM_R_TIMEOUT,
                        "%s: ihsmd at %s did not answer in time: check that it is not "
                        "overloaded or stopped, or raise ihsm-timeout-ms", what, sock);
        break;
    case IHSM_ERR_CREDENTIAL_FILE:
        /* The shim's reader says what is wrong with the file. */
        err[0] = '\0';
        if (ihsm_credential_load(cred, &c, err, sizeof(err)) == IHSM_OK)
            ihsm_credential_clear(&c);
        if (err[0] != '\0')
            ihsm_prov_raise(ctx, IHSM_R_BAD_CREDENTIAL, "%s: %s (%s)", what, err, HINT_CRED);
        else
            ihsm_prov_raise(ctx, IHSM_R_BAD_CREDENTIAL,
                            "%s: cannot use the partition credential %s (%s)", what,
                            cred != NULL ? cred : "(none configured)", HINT_CRED);
        break;
    case IHSM_ERR_NO_SESSION:
        if (cred == NULL)
            ihsm_prov_raise(ctx, IHSM_R_BAD_CREDENTIAL,
                            "%s: no partition credential configured: set ihsm-credential "
                            "in the provider's openssl.cnf section or IHSM_CREDENTIAL", what);
        else
            ihsm_prov_raise(ctx, IHSM_R_BAD_CREDENTIAL,
                            "%s: no session with ihsmd at %s using the credential %s",
                            what, sock, cred);
        break;
    case IHSM_ERR_AUTH:
        if (!raise_session(ctx, IHSM_R_BAD_CREDENTIAL, what, HINT_CRED))
            ihsm_prov_raise(ctx, IHSM_R_BAD_CREDENTIAL,
                            "%s: ihsmd rejected the partition credential %s (wrong PIN): use "
                            "the file `ihsmctl init` wrote for this partition",
                            what, cred != NULL ? cred : "(none configured)");
        break;
    case IHSM_ERR_NO_PARTITION:
        if (!raise_session(ctx, IHSM_R_BAD_CREDENTIAL, what, HINT_CRED))
            ihsm_prov_raise(ctx, IHSM_R_BAD_CREDENTIAL,
                            "%s: the partition named in the credential %s does not exist in "
                            "ihsmd at %s: create it with `ihsmctl init` or fix ihsm-credential",
                            what, cred != NULL ? cred : "(none configured)", sock);
        break;
    case IHSM_ERR_LOCKED:
        if (!raise_session(ctx, IHSM_R_PARTITION_LOCKED, what, HINT_CRED))
            ihsm_prov_raise(ctx, IHSM_R_PARTITION_LOCKED,
                            "%s: the partition of credential %s is locked after wrong PINs: "
                            "wait for the lockout to pass and use the right credential",
                            what, cred != NULL ? cred : "(none configured)");
        break;
    case IHSM_ERR_PERMISSION:
        if (!raise_session(ctx, IHSM_R_PERMISSION, what, HINT_CRED))
            ihsm_prov_raise(ctx, IHSM_R_PERMISSION,
                            "%s: uid %ld is not allowed to use the partition of credential %s: "
                            "run as an allowed user or re-create the partition allowing it",
                            what, (long)getuid(), cred != NULL ? cred : "(none configured)");
        break;
    case IHSM_ERR_BAD_HANDLE:
    case IHSM_ERR_NOT_FOUND:
        ihsm_prov_raise(ctx, IHSM_R_UNKNOWN_KEY,
                        "%s: unknown key: the device does not hold it (deleted, zeroized, or "
                        "a key of another partition?): check with `ihsmctl list`", what);
        break;
    case IHSM_ERR_USAGE:
        ihsm_prov_raise(ctx, IHSM_R_USAGE_NOT_ALLOWED,
                        "%s: the key's usage flags forbid this operation: use a key "
                        "generated for it (e.g. a signing key for TLS certificates)", what);
        break;
    case IHSM_ERR_BAD_BLOB:
        ihsm_prov_raise(ctx, IHSM_R_BAD_KEYFILE,
                        "%s: corrupt or foreign masked key (made by another device or "
                        "partition?): use a key file written for the partition of %s",
                        what, cred != NULL ? cred : "the configured credential");
        break;
    case IHSM_ERR_UNSUPPORTED:
        ihsm_prov_raise(ctx, IHSM_R_UNSUPPORTED, "%s: %s", what, ihsm_status_str(status));
        break;
    case IHSM_ERR_BAD_INPUT:
    case IHSM_ERR_MALFORMED:
        ihsm_prov_raise(ctx, IHSM_R_INVALID_ARGUMENT, "%s: %s", what, ihsm_status_str(status));
        break;
    case IHSM_ERR_DEVICE_FAILED:
        ihsm_prov_raise(ctx, IHSM_R_DEVICE_FAILED,
                        "%s: ihsmd at %s failed its self-tests and refuses crypto: see its "
                        "log, then restart it", what, sock);
        break;
    default:
        ihsm_prov_raise(ctx, IHSM_R_DEVICE_ERROR, "%s: %s (%s)", what,
                        ihsm_status_str(status), ihsm_status_name(status));
        break;
    }
}
