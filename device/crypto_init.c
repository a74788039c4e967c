/*
 * Crypto core start-up: the secure heap, our own library context with the
 * default provider, algorithm caches, the failed state and debug logging.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/provider.h>

#include "crypto_internal.h"

static OSSL_LIB_CTX *libctx;
static OSSL_PROVIDER *defprov;
static atomic_int failed;
static int debug_on = -1;

static const struct {
    uint32_t id;
    const char *name;
} md_names[] = {
    {IHSM_MD_SHA1, "SHA1"},     {IHSM_MD_SHA224, "SHA224"},
    {IHSM_MD_SHA256, "SHA256"}, {IHSM_MD_SHA384, "SHA384"},
    {IHSM_MD_SHA512, "SHA512"},
};
static EVP_MD *mds[sizeof(md_names) / sizeof(md_names[0])];

static const char *const cipher_names[] = {
    "AES-128-GCM", "AES-256-GCM", "ChaCha20-Poly1305", "AES-256-WRAP-PAD",
};
static EVP_CIPHER *ciphers[sizeof(cipher_names) / sizeof(cipher_names[0])];

OSSL_LIB_CTX *ihsm_crypto_libctx(void)
{
    return libctx;
}

int ihsm_crypto_debug_on(void)
{
    if (debug_on < 0) {
        const char *v = getenv("IHSM_DEBUG");
        debug_on = v != NULL && strcmp(v, "0") != 0 && *v != '\0';
    }
    return debug_on;
}

void ihsm_crypto_debug(const char *fmt, ...)
{
    char line[512];
    va_list ap;

    if (!ihsm_crypto_debug_on())
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "ihsmd crypto: %s\n", line);
}

void ihsm_crypto_drop_errors(const char *where)
{
    if (ihsm_crypto_debug_on()) {
        unsigned long e;
        char buf[256];

        while ((e = ERR_get_error()) != 0) {
            ERR_error_string_n(e, buf, sizeof(buf));
            ihsm_crypto_debug("%s: %s", where, buf);
        }
    }
    ERR_clear_error();
}

void ihsm_crypto_set_failed(const char *why)
{
    if (!atomic_exchange(&failed, 1))
        fprintf(stderr,
                "ihsmd: crypto self-test failed (%s): the device refuses "
                "crypto until it is restarted and its self-tests pass\n",
                why);
}

int ihsm_crypto_failed(void)
{
    return atomic_load(&failed);
}

const EVP_MD *ihsm_crypto_md(uint32_t md)
{
    for (size_t i = 0; i < sizeof(md_names) / sizeof(md_names[0]); i++)
        if (md_names[i].id == md)
            return mds[i];
    return NULL;
}

const EVP_CIPHER *ihsm_crypto_cipher(const char *name)
{
    for (size_t i = 0; i < sizeof(cipher_names) / sizeof(cipher_names[0]); i++)
        if (strcmp(cipher_names[i], name) == 0)
            return ciphers[i];
    return NULL;
}

int ihsm_crypto_wr_status(const ihsm_wr *w)
{
    if (!w->err)
        return IHSM_OK;
    /* NOMEM never goes on the wire: an answer that does not fit is a limit */
    return IHSM_ERR_LIMIT_FRAME;
}

/* Round up to a power of two, as the secure heap requires; at least 256 KiB
 * so that the headroom kept for new keys leaves room for some. */
static size_t pow2_at_least(size_t n)
{
    size_t p = 256 * 1024;

    while (p < n && p < ((size_t)1 << 30))
        p <<= 1;
    return p;
}

static size_t secure_size;

size_t ihsm_crypto_secure_heap_size(void)
{
    return CRYPTO_secure_malloc_initialized() ? secure_size : 0;
}

int ihsm_crypto_secure_room(void)
{
    if (secure_size == 0)
        return 1; /* no secure heap: ordinary malloc, no fixed limit */
    return CRYPTO_secure_used() + IHSM_SECURE_HEADROOM <= secure_size;
}

static int secure_heap_init(size_t bytes)
{
    int r;

    if (CRYPTO_secure_malloc_initialized())
        return 1;
    if (bytes == 0) {
        fprintf(stderr, "ihsmd: warning: no secure heap requested: keys live in "
                        "the ordinary heap, which may be swapped or dumped\n");
        return 0;
    }
    r = CRYPTO_secure_malloc_init(pow2_at_least(bytes), 64);
    if (r != 0)
        secure_size = pow2_at_least(bytes);
    if (r == 0) {
        fprintf(stderr,
                "ihsmd: warning: the OpenSSL secure heap could not be set up "
                "(%zu bytes): keys live in the ordinary heap; give ihsmd a "
                "smaller --secure-heap or more memory\n",
                bytes);
        return 0;
    }
    if (r == 2)
        fprintf(stderr,
                "ihsmd: warning: the secure heap could not be locked in "
                "memory (mlock failed): keys may be swapped out; raise "
                "RLIMIT_MEMLOCK (ulimit -l, LimitMEMLOCK= in systemd)\n");
    return 1;
}

static int fetch_algorithms(void)
{
    for (size_t i = 0; i < sizeof(md_names) / sizeof(md_names[0]); i++)
        if (mds[i] == NULL
            && (mds[i] = EVP_MD_fetch(libctx, md_names[i].name, NULL)) == NULL)
            return 0;
    for (size_t i = 0; i < sizeof(cipher_names) / sizeof(cipher_names[0]); i++)
        if (ciphers[i] == NULL
            && (ciphers[i] = EVP_CIPHER_fetch(libctx, cipher_names[i], NULL))
                   == NULL)
            return 0;
    return 1;
}

/* At exit, before OpenSSL's own cleanup (registered earlier, so run later):
 * the DRBGs of our context live in the secure heap, which leak checkers do
 * not scan, so what they point to would be reported lost. The daemon must
 * have stopped its crypto workers before it exits. */
static void crypto_cleanup(void)
{
    ihsm_crypto_derive_cleanup();
    for (size_t i = 0; i < sizeof(mds) / sizeof(mds[0]); i++) {
        EVP_MD_free(mds[i]);
        mds[i] = NULL;
    }
    for (size_t i = 0; i < sizeof(ciphers) / sizeof(ciphers[0]); i++) {
        EVP_CIPHER_free(ciphers[i]);
        ciphers[i] = NULL;
    }
    OSSL_PROVIDER_unload(defprov);
    defprov = NULL;
    OSSL_LIB_CTX_free(libctx);
    libctx = NULL;
}

int ihsm_crypto_init(size_t secure_heap_bytes)
{
    ihsm_crypto_debug_on(); /* read IHSM_DEBUG once, before any threads */
    if (libctx == NULL) {
        /* before libcrypto's first allocation, or it is refused */
        if (!ihsm_crypto_mem_init())
            fprintf(stderr, "ihsmd: warning: libcrypto allocated memory before the "
                            "crypto core started: its freed blocks are not wiped\n");
        /* The process-wide context must never read openssl.cnf: it could
         * load the ihsm provider inside the device itself. */
        OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
        secure_heap_init(secure_heap_bytes);
        libctx = OSSL_LIB_CTX_new();
        if (libctx == NULL
            || (defprov = OSSL_PROVIDER_load(libctx, "default")) == NULL) {
            ihsm_crypto_drop_errors("init");
            ihsm_crypto_set_failed("no OpenSSL default provider");
            return IHSM_ERR_DEVICE_FAILED;
        }
        atexit(crypto_cleanup);
    }
    if (!fetch_algorithms() || !ihsm_crypto_derive_init()) {
        ihsm_crypto_drop_errors("init");
        ihsm_crypto_set_failed("an algorithm is missing from the default provider");
        return IHSM_ERR_DEVICE_FAILED;
    }
    ihsm_crypto_debug("OpenSSL %s, secure heap %s, freed heap blocks %s",
                      OpenSSL_version(OPENSSL_VERSION),
                      CRYPTO_secure_malloc_initialized() ? "on" : "off",
                      ihsm_crypto_mem_wiping() ? "wiped" : "NOT wiped");
    return ihsm_crypto_selftest(NULL);
}
