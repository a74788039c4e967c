/*
 * Helpers shared by the key I/O pieces (decoder, encoders, store): key type
 * names, the published SubjectPublicKeyInfo, the masked blob of a key.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <openssl/asn1.h>
#include <openssl/core_dispatch.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "ihsm_prov_io.h"

int ihsm_io_spki_nid(const uint8_t *spki, size_t len)
{
    const unsigned char *p = spki;
    const ASN1_OBJECT *obj = NULL;
    X509_ALGOR *alg;
    long body;
    int tag, xclass, rc, nid;

    if (spki == NULL || len == 0 || len > LONG_MAX)
        return NID_undef;
    rc = ASN1_get_object(&p, &body, &tag, &xclass, (long)len);
    if ((rc & 0x80) != 0 || (rc & V_ASN1_CONSTRUCTED) == 0
        || tag != V_ASN1_SEQUENCE || xclass != V_ASN1_UNIVERSAL)
        return NID_undef;
    if ((alg = d2i_X509_ALGOR(NULL, &p, body)) == NULL)
        return NID_undef;
    X509_ALGOR_get0(&obj, NULL, NULL, alg);
    nid = OBJ_obj2nid(obj);
    X509_ALGOR_free(alg);
    return nid;
}

const char *ihsm_io_keyfile_type_name(uint32_t key_type, const uint8_t *spki,
                                      size_t spki_len)
{
    switch (key_type) {
    case IHSM_KEY_RSA:
        return ihsm_io_spki_nid(spki, spki_len) == NID_rsassaPss ? "RSA-PSS" : "RSA";
    case IHSM_KEY_EC_P256:
    case IHSM_KEY_EC_P384:
        return "EC";
    case IHSM_KEY_ED25519:
        return "ED25519";
    case IHSM_KEY_X25519:
        return "X25519";
    default:
        return NULL;
    }
}

int ihsm_io_key_spki(const IHSM_PROV_KEY *k, uint8_t **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    if (k->spki == NULL || k->spki_len == 0) {
        ihsm_prov_raise(k->ctx, IHSM_R_INVALID_ARGUMENT,
                        "the key has no public key to encode");
        return 0;
    }
    if ((*out = OPENSSL_memdup(k->spki, k->spki_len)) == NULL)
        return 0;
    *outlen = k->spki_len;
    return 1;
}

int ihsm_io_key_blob(IHSM_PROV_KEY *k, uint8_t **out, size_t *outlen)
{
    ihsm_wr args;
    ihsm_result res = { 0 };
    ihsm_rd rd;
    const uint8_t *blob;
    size_t len = 0;
    int st;

    *out = NULL;
    *outlen = 0;
    if (k->blob != NULL && k->blob_len > 0) {
        if ((*out = OPENSSL_memdup(k->blob, k->blob_len)) == NULL)
            return 0;
        *outlen = k->blob_len;
        return 1;
    }
    /* A key found by name has no blob of its own: the device masks it. */
    ihsm_wr_init(&args);
    st = ihsm_prov_key_call(k, IHSM_CMD_KEY_MASK, &args, &res);
    ihsm_wr_free(&args);
    if (st != IHSM_OK) {
        ihsm_result_clear(&res);
        return 0; /* ihsm_prov_key_call raised the error */
    }
    ihsm_rd_init(&rd, res.data, res.len);
    blob = ihsm_rd_bytes(&rd, &len, IHSM_MAX_BLOB);
    if (blob == NULL || len == 0 || ihsm_rd_end(&rd) != 0) {
        ihsm_result_clear(&res);
        ihsm_prov_raise(k->ctx, IHSM_R_DEVICE_ERROR,
                        "the device's answer to KEY_MASK is malformed");
        return 0;
    }
    *out = OPENSSL_memdup(blob, len);
    *outlen = *out != NULL ? len : 0;
    ihsm_result_clear(&res);
    return *out != NULL;
}

int ihsm_io_check_selection(int selection, int mask)
{
    static const int levels[] = {
        OSSL_KEYMGMT_SELECT_PRIVATE_KEY,
        OSSL_KEYMGMT_SELECT_PUBLIC_KEY,
        OSSL_KEYMGMT_SELECT_ALL_PARAMETERS,
    };
    size_t i;

    if (selection == 0) /* "guess": whatever the encoder writes */
        return 1;
    for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
        if ((selection & levels[i]) != 0)
            return (mask & levels[i]) != 0;
    return 0;
}

void ihsm_io_report_load_error(void)
{
    const char *data = NULL;
    int flags = 0;
    unsigned long e = ERR_peek_last_error_data(&data, &flags);

    if (e == 0)
        return;
    if (data == NULL || (flags & ERR_TXT_STRING) == 0 || *data == '\0')
        data = ERR_reason_error_string(e);
    fprintf(stderr, "ihsm: cannot load masked key: %s\n", data != NULL ? data : "unknown error");
}

void *ihsm_io_newctx(void *provctx)
{
    ihsm_io_ctx *ctx = OPENSSL_zalloc(sizeof(*ctx));

    if (ctx != NULL)
        ctx->provctx = provctx;
    return ctx;
}

void ihsm_io_freectx(void *ctx)
{
    OPENSSL_free(ctx);
}

BIO *ihsm_io_bio(IHSM_PROV_CTX *ctx, OSSL_CORE_BIO *cbio)
{
    BIO *b = BIO_new_from_core_bio(ctx->libctx, cbio);

    if (b == NULL)
        ihsm_prov_raise(ctx, IHSM_R_INVALID_ARGUMENT,
                        "cannot wrap the caller's BIO (provider libctx has no core BIO methods)");
    return b;
}
