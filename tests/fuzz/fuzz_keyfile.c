/*
 * libFuzzer target: masked key files, the one input a TLS server reads from
 * disk on the device's behalf (nginx's ssl_certificate_key, HAProxy's crt).
 *
 *   - the driver-shim decoders (ihsm_keyfile_decode_der / _pem): anything
 *     that decodes is within the limits, re-encodes and decodes to the same
 *     fields, and its DER decodes the same through the PEM path;
 *   - the provider's DECODER (PEM step and DER step) through OSSL_DECODER
 *     with the ihsm provider and no device behind it: every input must
 *     fail cleanly. A key object made without a device is a bug (abort).
 *
 * Input: byte 0 chooses the form of the rest. Even: the rest is DER; the
 * harness also wraps it in the PEM armour, so mutations reach the structure
 * behind the base64. Odd: the rest is PEM text as it is.
 *
 * The provider part is compiled in when IHSM_FUZZ_PROVIDER is defined:
 *   IHSM_FUZZ_PROVIDER_BUILTIN  the provider's sources are linked in
 *                               (run_fuzz.sh: instrumented, ASan);
 *   otherwise                   ihsm.so is loaded from $IHSM_FUZZ_PROVIDER_DIR
 *                               (the corpus replay under gcc).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "ihsm_keyfile.h"
#include "ihsm_proto.h"

#ifdef IHSM_FUZZ_PROVIDER
#include <openssl/core.h>
#include <openssl/decoder.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#endif

#define FAIL(...)                                                             \
    do {                                                                      \
        fprintf(stderr, "fuzz_keyfile: " __VA_ARGS__);                       \
        fputc('\n', stderr);                                                  \
        abort();                                                              \
    } while (0)

/* ---- the shim decoders ---- */

static void check_fields(const ihsm_keyfile *kf, const char *via)
{
    if (kf->key_type < IHSM_KEY_RSA || kf->key_type > IHSM_KEY_AES)
        FAIL("%s accepted key type %u", via, kf->key_type);
    if (kf->blob == NULL || kf->blob_len == 0 || kf->blob_len > IHSM_MAX_BLOB)
        FAIL("%s accepted a blob of %zu bytes", via, kf->blob_len);
    if (kf->spki == NULL || kf->spki_len > IHSM_MAX_BLOB)
        FAIL("%s accepted a public key of %zu bytes", via, kf->spki_len);
}

static int same_fields(const ihsm_keyfile *a, const ihsm_keyfile *b)
{
    return a->key_type == b->key_type && a->spki_len == b->spki_len
           && a->blob_len == b->blob_len
           && (a->spki_len == 0 || memcmp(a->spki, b->spki, a->spki_len) == 0)
           && memcmp(a->blob, b->blob, a->blob_len) == 0;
}

/* What decoded must encode, and decode again to the same fields. */
static void round_trip(const ihsm_keyfile *kf, const char *via)
{
    ihsm_keyfile again;
    uint8_t *der = NULL;
    char *pem = NULL;
    size_t der_len = 0, pem_len = 0;

    check_fields(kf, via);
    if (ihsm_keyfile_encode_der(kf, &der, &der_len) != 0)
        FAIL("%s: a decoded key file does not encode to DER", via);
    if (ihsm_keyfile_decode_der(der, der_len, &again) != 0 || !same_fields(kf, &again))
        FAIL("%s: DER round trip changed the key file", via);
    ihsm_keyfile_clear(&again);
    if (ihsm_keyfile_encode_pem(kf, &pem, &pem_len) != 0)
        FAIL("%s: a decoded key file does not encode to PEM", via);
    if (ihsm_keyfile_decode_pem(pem, pem_len, &again) != 0 || !same_fields(kf, &again))
        FAIL("%s: PEM round trip changed the key file", via);
    ihsm_keyfile_clear(&again);
    OPENSSL_free(der);
    OPENSSL_free(pem);
}

/* DER in the PEM armour with our label; NULL if it cannot be written. */
static char *armour(const uint8_t *der, size_t len, size_t *pem_len)
{
    BIO *b = BIO_new(BIO_s_mem());
    BUF_MEM *bm = NULL;
    char *out = NULL;

    if (b != NULL && PEM_write_bio(b, IHSM_KEYFILE_PEM_LABEL, "", der, (long)len) > 0
        && BIO_get_mem_ptr(b, &bm) > 0 && (out = OPENSSL_malloc(bm->length + 1)) != NULL) {
        memcpy(out, bm->data, bm->length);
        out[bm->length] = '\0';
        *pem_len = bm->length;
    }
    BIO_free(b);
    return out;
}

/* ---- the provider's decoder, with no device ---- */

#ifdef IHSM_FUZZ_PROVIDER
#ifdef IHSM_FUZZ_PROVIDER_BUILTIN
int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx);
#endif

static OSSL_LIB_CTX *libctx;
static EVP_PKEY *pem_key, *der_key;
static OSSL_DECODER_CTX *pem_dctx, *der_dctx;
static int devnull = -1;

static void provider_up(void)
{
    const char *dir = getenv("IHSM_FUZZ_PROVIDER_DIR");

    /* no device: a socket path that cannot exist, no credential */
    setenv("IHSM_SOCKET", "/nonexistent/ihsm-fuzz/ihsmd.sock", 1);
    unsetenv("IHSM_CREDENTIAL");
    unsetenv("IHSM_DEBUG");
    if ((libctx = OSSL_LIB_CTX_new()) == NULL)
        FAIL("OSSL_LIB_CTX_new");
#ifdef IHSM_FUZZ_PROVIDER_BUILTIN
    (void)dir;
    if (!OSSL_PROVIDER_add_builtin(libctx, "ihsm", OSSL_provider_init))
        FAIL("cannot register the built-in ihsm provider");
#else
    if (dir == NULL || *dir == '\0')
        FAIL("set IHSM_FUZZ_PROVIDER_DIR to the directory holding ihsm.so");
    OSSL_PROVIDER_set_default_search_path(libctx, dir);
#endif
    if (OSSL_PROVIDER_load(libctx, "default") == NULL || OSSL_PROVIDER_load(libctx, "ihsm") == NULL) {
        ERR_print_errors_fp(stderr);
        FAIL("cannot load the default and ihsm providers");
    }
    /* only ihsm's decoders: any key that comes out came from ihsm */
    pem_dctx = OSSL_DECODER_CTX_new_for_pkey(&pem_key, "PEM", NULL, NULL,
                                             EVP_PKEY_KEYPAIR, libctx, "provider=ihsm");
    der_dctx = OSSL_DECODER_CTX_new_for_pkey(&der_key, "DER", "ihsm", NULL,
                                             EVP_PKEY_KEYPAIR, libctx, "provider=ihsm");
    if (pem_dctx == NULL || der_dctx == NULL
        || OSSL_DECODER_CTX_get_num_decoders(pem_dctx) == 0
        || OSSL_DECODER_CTX_get_num_decoders(der_dctx) == 0)
        FAIL("the ihsm provider offers no key file decoders");
    devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
}

/* The provider says on stderr why a key file of ours did not load; millions
 * of those lines would bury libFuzzer's own. Replay a crashing input with
 * the replay binary to see the whole report. */
static int quiet_begin(void)
{
    int saved = dup(STDERR_FILENO);

    if (saved >= 0 && devnull >= 0)
        dup2(devnull, STDERR_FILENO);
    return saved;
}

static void quiet_end(int saved)
{
    if (saved >= 0) {
        dup2(saved, STDERR_FILENO);
        close(saved);
    }
}

static void provider_decode(OSSL_DECODER_CTX *dctx, EVP_PKEY **slot, const uint8_t *p,
                            size_t len, const char *what)
{
    const unsigned char *in = p;
    size_t left = len;
    int saved, ok;

    if (len == 0)
        return;
    saved = quiet_begin();
    ok = OSSL_DECODER_from_data(dctx, &in, &left);
    quiet_end(saved);
    ERR_clear_error();
    if (ok || *slot != NULL)
        FAIL("the ihsm decoder made a key from %s input with no device", what);
    if (left > len)
        FAIL("the decoder consumed more than it was given");
}
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
#ifdef IHSM_FUZZ_PROVIDER
    provider_up();
#endif
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ihsm_keyfile kf, via_pem;
    const uint8_t *body;
    size_t len;
    int der_ok;

    if (size < 1 || size > 4 * IHSM_MAX_BLOB + 1)
        return 0;
    body = data + 1;
    len = size - 1;

    der_ok = ihsm_keyfile_decode_der(body, len, &kf) == 0;
    if (der_ok)
        round_trip(&kf, "decode_der");
    else if (kf.blob != NULL || kf.spki != NULL || kf.key_type != 0)
        FAIL("a failed decode_der left fields behind");

    if ((data[0] & 1) == 0) {
        size_t pem_len = 0;
        char *pem = len > 0 ? armour(body, len, &pem_len) : NULL;

        if (pem != NULL) {
            int pem_ok = ihsm_keyfile_decode_pem(pem, pem_len, &via_pem) == 0;

            if (pem_ok != der_ok || (pem_ok && !same_fields(&kf, &via_pem)))
                FAIL("the PEM path and the DER path disagree");
            ihsm_keyfile_clear(&via_pem);
#ifdef IHSM_FUZZ_PROVIDER
            provider_decode(pem_dctx, &pem_key, (const uint8_t *)pem, pem_len, "PEM");
#endif
            OPENSSL_free(pem);
        }
#ifdef IHSM_FUZZ_PROVIDER
        provider_decode(der_dctx, &der_key, body, len, "DER");
#endif
    } else {
        if (ihsm_keyfile_decode_pem((const char *)body, len, &via_pem) == 0) {
            round_trip(&via_pem, "decode_pem");
            ihsm_keyfile_clear(&via_pem);
        }
#ifdef IHSM_FUZZ_PROVIDER
        provider_decode(pem_dctx, &pem_key, body, len, "PEM");
#endif
    }
    ihsm_keyfile_clear(&kf);
    ERR_clear_error();
    return 0;
}
