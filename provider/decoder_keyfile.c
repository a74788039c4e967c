/*
 * DECODER: masked key files ("-----BEGIN IHSM MASKED KEY-----") to device
 * keys, so PEM_read_bio_PrivateKey callers (nginx's ssl_certificate_key,
 * HAProxy's crt files) and the file: store load a device key from a plain
 * path.
 *
 * Two steps, as tpm2-openssl does for its own PEM label:
 *   PEM --("DER", input=pem)--> DER, data type "EC"..., structure "ihsm"
 *   DER --("EC", input=der, structure=ihsm)--> key object by reference
 * The default provider's PEM step passes over labels it does not know, and
 * ours passes over everything but our label, so both coexist.
 *
 * The PEM step already unmasks the key: the file: store (openssl -key,
 * OSSL_STORE) runs the DER step inside libcrypto's result handler, which
 * replaces any error there with "unsupported"; an error in the PEM step
 * reaches the user ("ihsmd is not running at ...", "corrupt or foreign
 * masked key"). The key object then goes to the DER step, which runs
 * inside the PEM step's callback on the same thread, through a
 * thread-local hand-off, so the device unmasks each key once.
 *
 * The key object goes to keymgmt load by reference: the reference is the
 * address of our pointer, load takes the object and sets the pointer to
 * NULL (OpenSSL's own convention, providers' decode_der2key.c), and what
 * is still in the pointer after the callback was not taken and is freed
 * here. So the object never leaks, whether OpenSSL calls load or not.
 */
#include <string.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/pem.h>

#include "ihsm_prov_io.h"

/* Largest DER we read: a masked RSA-4096 key is about 3 KiB. */
#define KEYFILE_DER_MAX (IHSM_MAX_BLOB + 4096)

static OSSL_FUNC_decoder_does_selection_fn dec_does_selection;
static OSSL_FUNC_decoder_decode_fn pem2der_decode;
static OSSL_FUNC_decoder_export_object_fn dec_export_object;

/* The PEM step's key object, offered to the DER step running inside its
 * callback (see the top of the file); it holds its own reference. */
typedef struct {
    IHSM_PROV_KEY *key;
    const unsigned char *der;
    size_t der_len;
} handoff;
static __thread handoff current;

/* A masked key is a key pair: nothing to offer to a search for domain
 * parameters only (HAProxy looks for DH parameters in its crt files). */
static int wants_key(int selection)
{
    return selection == 0 || (selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0;
}

static int dec_does_selection(void *provctx, int selection)
{
    return wants_key(selection);
}

/* Whether the first PEM block from the BIO's position on carries our
 * label: tells a damaged masked key file from someone else's damaged PEM. */
static int first_block_is_ours(BIO *in)
{
    static const char begin[] = "-----BEGIN " IHSM_KEYFILE_PEM_LABEL "-----";
    char line[256];
    int i;

    for (i = 0; i < 4096 && BIO_gets(in, line, sizeof(line)) > 0; i++)
        if (strncmp(line, "-----BEGIN ", 11) == 0)
            return strncmp(line, begin, sizeof(begin) - 1) == 0;
    return 0;
}

/* PEM_read_bio failed: was it our block, damaged? */
static int damaged_keyfile(BIO *in, long start)
{
    unsigned long e = ERR_peek_last_error();

    if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
        return 0; /* no PEM at all here */
    if (start < 0 || BIO_seek(in, start) < 0 || BIO_tell(in) != start)
        return 0;
    return first_block_is_ours(in);
}

static int pem2der_decode(void *vctx, OSSL_CORE_BIO *cin, int selection,
                          OSSL_CALLBACK *data_cb, void *data_cbarg,
                          OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    ihsm_io_ctx *ctx = vctx;
    char *name = NULL, *header = NULL;
    unsigned char *der = NULL;
    long der_len = 0, start;
    ihsm_keyfile kf = { 0 };
    IHSM_PROV_KEY *key = NULL;
    const char *type;
    BIO *in;
    int ok = 1; /* coming back empty handed is not an error */
    int parsed, ours = 0;

    if (!wants_key(selection))
        return 1;
    if ((in = ihsm_io_bio(ctx->provctx, cin)) == NULL)
        return 0;
    start = BIO_tell(in);
    ERR_set_mark();
    if (PEM_read_bio(in, &name, &header, &der, &der_len) <= 0) {
        ours = damaged_keyfile(in, start);
        ERR_pop_to_mark();
        if (ours) {
            ihsm_prov_raise(ctx->provctx, IHSM_R_BAD_KEYFILE,
                            "corrupt masked key file: its " IHSM_KEYFILE_PEM_LABEL
                            " block does not decode (damaged base64 or END line); "
                            "write it again with ihsmctl");
            ok = 0;
        }
        goto end;
    }
    ERR_pop_to_mark();
    if (strcmp(name, IHSM_KEYFILE_PEM_LABEL) != 0)
        goto end; /* another provider's PEM */
    ours = 1;

    ERR_set_mark(); /* the ASN.1 decoder's own errors add nothing to ours */
    parsed = der_len > 0 && ihsm_keyfile_decode_der(der, (size_t)der_len, &kf) == 0;
    ERR_pop_to_mark();
    if (!parsed) {
        ihsm_prov_raise(ctx->provctx, IHSM_R_BAD_KEYFILE,
                        "corrupt masked key file: the " IHSM_KEYFILE_PEM_LABEL
                        " structure does not parse (%ld bytes)", der_len);
        ok = 0;
        goto end;
    }
    if ((type = ihsm_io_keyfile_type_name(kf.key_type, kf.spki, kf.spki_len)) == NULL) {
        ihsm_prov_raise(ctx->provctx, IHSM_R_UNSUPPORTED,
                        "the masked key file holds a key of type %u, which is "
                        "no private key this provider loads (RSA, EC, Ed25519, X25519)",
                        (unsigned)kf.key_type);
        ok = 0;
        goto end;
    }
    IHSM_PROV_DBG("decoder: " IHSM_KEYFILE_PEM_LABEL " block, %s key, %ld bytes",
                  type, der_len);
    /* KEY_UNMASK: raises "corrupt or foreign masked key", "ihsmd is not
     * running at ..." and the like; returning 0 stops the chain there. */
    if ((key = ihsm_prov_key_from_keyfile(ctx->provctx, &kf)) == NULL) {
        ok = 0;
        goto end;
    }
    {
        int objtype = OSSL_OBJECT_PKEY;
        OSSL_PARAM params[5];
        handoff saved = current;

        params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &objtype);
        params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
                                                     (char *)type, 0);
        params[2] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_STRUCTURE,
                                                     (char *)IHSM_KEYFILE_STRUCTURE, 0);
        params[3] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_DATA,
                                                      der, (size_t)der_len);
        params[4] = OSSL_PARAM_construct_end();
        current.key = key;
        current.der = der;
        current.der_len = (size_t)der_len;
        ok = data_cb(params, data_cbarg);
        current = saved;
    }
 end:
    /* our file, failed here (not in a caller's callback): tell the user */
    if (!ok && ours && key == NULL)
        ihsm_io_report_load_error();
    ihsm_prov_key_free(key); /* the DER step took its own reference */
    ihsm_keyfile_clear(&kf);
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(der);
    BIO_free(in);
    return ok;
}

/* Read the whole (small) DER input; 0 if it is larger than a key file. */
static int read_der(BIO *in, unsigned char **out, size_t *outlen)
{
    unsigned char *buf = OPENSSL_malloc(KEYFILE_DER_MAX + 1);
    size_t len = 0;
    int n;

    *out = NULL;
    *outlen = 0;
    if (buf == NULL)
        return 0;
    while (len <= KEYFILE_DER_MAX
           && (n = BIO_read(in, buf + len, (int)(KEYFILE_DER_MAX + 1 - len))) > 0)
        len += (size_t)n;
    if (len == 0 || len > KEYFILE_DER_MAX) {
        OPENSSL_free(buf);
        return 0;
    }
    *out = buf;
    *outlen = len;
    return 1;
}

static int der2key_decode(ihsm_io_ctx *ctx, const char *want, OSSL_CORE_BIO *cin,
                          int selection, OSSL_CALLBACK *object_cb,
                          void *object_cbarg)
{
    unsigned char *der = NULL;
    size_t der_len = 0;
    ihsm_keyfile kf = { 0 };
    IHSM_PROV_KEY *key = NULL;
    const char *type;
    BIO *in;
    int ok = 1, parsed;

    if (!wants_key(selection))
        return 1;
    if ((in = ihsm_io_bio(ctx->provctx, cin)) == NULL)
        return 0;
    ERR_set_mark();
    parsed = read_der(in, &der, &der_len)
        && ihsm_keyfile_decode_der(der, der_len, &kf) == 0;
    ERR_pop_to_mark();
    BIO_free(in);
    if (!parsed)
        goto end; /* not a masked key: someone else's DER */
    type = ihsm_io_keyfile_type_name(kf.key_type, kf.spki, kf.spki_len);
    if (type == NULL || strcmp(type, want) != 0)
        goto end; /* the decoder for its own type takes it */

    if (current.key != NULL && current.der_len == der_len
        && memcmp(current.der, der, der_len) == 0) {
        /* unmasked by the PEM step we run inside of */
        key = current.key;
        ihsm_prov_key_up_ref(key);
    } else if ((key = ihsm_prov_key_from_keyfile(ctx->provctx, &kf)) == NULL) {
        /* DER input (no PEM step): KEY_UNMASK's error stops the chain */
        ihsm_io_report_load_error();
        ok = 0;
        goto end;
    }
    IHSM_PROV_DBG("decoder: masked %s key, handle %u", type,
                  (unsigned)__atomic_load_n(&key->handle, __ATOMIC_ACQUIRE));
    {
        int objtype = OSSL_OBJECT_PKEY;
        OSSL_PARAM params[4];

        params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &objtype);
        params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
                                                     (char *)type, 0);
        params[2] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE,
                                                      &key, sizeof(key));
        params[3] = OSSL_PARAM_construct_end();
        ok = object_cb(params, object_cbarg);
    }
    if (key != NULL) { /* load did not take it */
        IHSM_PROV_DBG("decoder: key object not taken by keymgmt load, released");
        ihsm_prov_key_free(key);
    }
 end:
    OPENSSL_free(der);
    ihsm_keyfile_clear(&kf);
    return ok;
}

#define DER2KEY(fn, name)                                                     \
    static OSSL_FUNC_decoder_decode_fn fn;                                    \
    static int fn(void *vctx, OSSL_CORE_BIO *cin, int selection,              \
                  OSSL_CALLBACK *object_cb, void *object_cbarg,               \
                  OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)            \
    {                                                                         \
        return der2key_decode(vctx, name, cin, selection, object_cb,          \
                              object_cbarg);                                  \
    }

DER2KEY(rsa_decode, "RSA")
DER2KEY(rsapss_decode, "RSA-PSS")
DER2KEY(ec_decode, "EC")
DER2KEY(ed25519_decode, "ED25519")
DER2KEY(x25519_decode, "X25519")

/* Only keymgmt load may take a device key: exporting it would hand another
 * provider's keymgmt the public half and lose the private one silently. */
static int dec_export_object(void *vctx, const void *objref, size_t objref_sz,
                             OSSL_CALLBACK *export_cb, void *export_cbarg)
{
    IHSM_PROV_DBG("decoder: export_object refused (device keys stay in ihsm)");
    return 0;
}

const OSSL_DISPATCH ihsm_keyfile_decoder_functions[] = {
    { OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))ihsm_io_newctx },
    { OSSL_FUNC_DECODER_FREECTX, (void (*)(void))ihsm_io_freectx },
    { OSSL_FUNC_DECODER_DOES_SELECTION, (void (*)(void))dec_does_selection },
    { OSSL_FUNC_DECODER_DECODE, (void (*)(void))pem2der_decode },
    { 0, NULL }
};

#define DER2KEY_TABLE(table, fn)                                              \
    const OSSL_DISPATCH table[] = {                                           \
        { OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))ihsm_io_newctx },             \
        { OSSL_FUNC_DECODER_FREECTX, (void (*)(void))ihsm_io_freectx },           \
        { OSSL_FUNC_DECODER_DOES_SELECTION, (void (*)(void))dec_does_selection }, \
        { OSSL_FUNC_DECODER_DECODE, (void (*)(void))fn },                     \
        { OSSL_FUNC_DECODER_EXPORT_OBJECT, (void (*)(void))dec_export_object }, \
        { 0, NULL }                                                           \
    };

DER2KEY_TABLE(ihsm_rsa_keyfile_decoder_functions, rsa_decode)
DER2KEY_TABLE(ihsm_rsapss_keyfile_decoder_functions, rsapss_decode)
DER2KEY_TABLE(ihsm_ec_keyfile_decoder_functions, ec_decode)
DER2KEY_TABLE(ihsm_ed25519_keyfile_decoder_functions, ed25519_decode)
DER2KEY_TABLE(ihsm_x25519_keyfile_decoder_functions, x25519_decode)
