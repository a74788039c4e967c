/*
 * Masked key files. The structure is parsed by OpenSSL's ASN.1 templates
 * and the PEM armour by its PEM reader, so no hand-written parser ever
 * sees the hostile bytes of a key file.
 */
#include "ihsm_keyfile.h"
#include "ihsm_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/asn1t.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>

typedef struct {
    ASN1_INTEGER *version;
    ASN1_INTEGER *key_type;
    ASN1_OCTET_STRING *public_key;
    ASN1_OCTET_STRING *masked_blob;
} IHSM_MASKED_KEY;

DECLARE_ASN1_FUNCTIONS(IHSM_MASKED_KEY)

ASN1_SEQUENCE(IHSM_MASKED_KEY) = {
    ASN1_SIMPLE(IHSM_MASKED_KEY, version, ASN1_INTEGER),
    ASN1_SIMPLE(IHSM_MASKED_KEY, key_type, ASN1_INTEGER),
    ASN1_SIMPLE(IHSM_MASKED_KEY, public_key, ASN1_OCTET_STRING),
    ASN1_SIMPLE(IHSM_MASKED_KEY, masked_blob, ASN1_OCTET_STRING),
} ASN1_SEQUENCE_END(IHSM_MASKED_KEY)

IMPLEMENT_ASN1_FUNCTIONS(IHSM_MASKED_KEY)

static uint8_t *dup_octets(const ASN1_OCTET_STRING *os, size_t *len)
{
    int n = ASN1_STRING_length(os);
    uint8_t *p = OPENSSL_malloc(n > 0 ? (size_t)n : 1);

    if (p != NULL && n > 0)
        memcpy(p, ASN1_STRING_get0_data(os), (size_t)n);
    *len = n > 0 ? (size_t)n : 0;
    return p;
}

int ihsm_keyfile_decode_der(const uint8_t *der, size_t len, ihsm_keyfile *kf)
{
    const unsigned char *p = der;
    IHSM_MASKED_KEY *mk;
    int64_t version, type;
    int ok = 0;

    memset(kf, 0, sizeof(*kf));
    if (der == NULL || len == 0 || len > 4 * IHSM_MAX_BLOB)
        return -1;
    mk = d2i_IHSM_MASKED_KEY(NULL, &p, (long)len);
    if (mk == NULL)
        return -1;
    if (p != der + len) /* trailing bytes: not our structure */
        goto end;
    if (!ASN1_INTEGER_get_int64(&version, mk->version) || version != 1)
        goto end;
    if (!ASN1_INTEGER_get_int64(&type, mk->key_type)
        || type < IHSM_KEY_RSA || type > IHSM_KEY_AES)
        goto end;
    if (ASN1_STRING_length(mk->masked_blob) <= 0
        || ASN1_STRING_length(mk->masked_blob) > IHSM_MAX_BLOB
        || ASN1_STRING_length(mk->public_key) > IHSM_MAX_BLOB)
        goto end;
    kf->key_type = (uint32_t)type;
    kf->spki = dup_octets(mk->public_key, &kf->spki_len);
    kf->blob = dup_octets(mk->masked_blob, &kf->blob_len);
    ok = kf->spki != NULL && kf->blob != NULL;
 end:
    IHSM_MASKED_KEY_free(mk);
    if (!ok)
        ihsm_keyfile_clear(kf);
    return ok ? 0 : -1;
}

int ihsm_keyfile_encode_der(const ihsm_keyfile *kf, uint8_t **der, size_t *len)
{
    IHSM_MASKED_KEY *mk = IHSM_MASKED_KEY_new();
    unsigned char *out = NULL;
    int n = -1;

    *der = NULL;
    *len = 0;
    if (mk == NULL)
        return -1;
    if (ASN1_INTEGER_set_int64(mk->version, 1)
        && ASN1_INTEGER_set_int64(mk->key_type, kf->key_type)
        && ASN1_OCTET_STRING_set(mk->public_key, kf->spki, (int)kf->spki_len)
        && ASN1_OCTET_STRING_set(mk->masked_blob, kf->blob, (int)kf->blob_len))
        n = i2d_IHSM_MASKED_KEY(mk, &out);
    IHSM_MASKED_KEY_free(mk);
    if (n <= 0)
        return -1;
    *der = out;
    *len = (size_t)n;
    return 0;
}

static int decode_pem_bio(BIO *bio, ihsm_keyfile *kf)
{
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long len = 0;
    int rc = -1;

    memset(kf, 0, sizeof(*kf));
    /* a file may hold a certificate before the key (HAProxy crt files):
     * skip other blocks until ours */
    while (PEM_read_bio(bio, &name, &header, &data, &len) == 1) {
        int ours = strcmp(name, IHSM_KEYFILE_PEM_LABEL) == 0;
        if (ours)
            rc = ihsm_keyfile_decode_der(data, (size_t)len, kf);
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        name = header = NULL;
        data = NULL;
        if (ours)
            break;
    }
    return rc;
}

int ihsm_keyfile_decode_pem(const char *pem, size_t len, ihsm_keyfile *kf)
{
    BIO *bio;
    int rc;

    if (len > INT32_MAX)
        return -1;
    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        return -1;
    rc = decode_pem_bio(bio, kf);
    BIO_free(bio);
    return rc;
}

int ihsm_keyfile_encode_pem(const ihsm_keyfile *kf, char **pem, size_t *len)
{
    uint8_t *der = NULL;
    size_t derlen = 0;
    BIO *bio = NULL;
    BUF_MEM *bm = NULL;
    int rc = -1;

    *pem = NULL;
    *len = 0;
    if (ihsm_keyfile_encode_der(kf, &der, &derlen) != 0)
        return -1;
    bio = BIO_new(BIO_s_mem());
    if (bio != NULL && PEM_write_bio(bio, IHSM_KEYFILE_PEM_LABEL, "", der, (long)derlen) > 0
        && BIO_get_mem_ptr(bio, &bm) > 0) {
        *pem = OPENSSL_malloc(bm->length + 1);
        if (*pem != NULL) {
            memcpy(*pem, bm->data, bm->length);
            (*pem)[bm->length] = '\0';
            *len = bm->length;
            rc = 0;
        }
    }
    BIO_free(bio);
    OPENSSL_free(der);
    return rc;
}

int ihsm_keyfile_read(const char *path, ihsm_keyfile *kf)
{
    BIO *bio = BIO_new_file(path, "r");
    int rc;

    memset(kf, 0, sizeof(*kf));
    if (bio == NULL)
        return -1;
    rc = decode_pem_bio(bio, kf);
    BIO_free(bio);
    if (rc != 0)
        errno = EINVAL; /* the file is there but is not a masked key */
    return rc;
}

int ihsm_keyfile_write(const char *path, const ihsm_keyfile *kf)
{
    char *pem = NULL;
    size_t len = 0;
    int fd, ok;

    if (ihsm_keyfile_encode_pem(kf, &pem, &len) != 0)
        return -1;
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        OPENSSL_free(pem);
        return -1;
    }
    ok = write(fd, pem, len) == (ssize_t)len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    OPENSSL_free(pem);
    return ok ? 0 : -1;
}

void ihsm_keyfile_clear(ihsm_keyfile *kf)
{
    OPENSSL_free(kf->spki);
    OPENSSL_free(kf->blob);
    memset(kf, 0, sizeof(*kf));
}
