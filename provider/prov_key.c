/*
 * The key object: a device handle, the masked blob or name to load it again,
 * and the public key (SPKI DER and an EVP_PKEY in the default provider for
 * parameters, export, match and verification). No private key byte is ever
 * here: signing goes to the device through ihsm_prov_key_call.
 */
#include <string.h>
#include <unistd.h>
#include <openssl/asn1t.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/x509.h>
#include "prov_int.h"

/* ---------------------------------------------------------------- SPKI */

/* SubjectPublicKeyInfo, parsed only as far as we need: the algorithm OID
 * (rsaEncryption vs RSASSA-PSS) and the key bits (to compare keys). */
typedef struct {
    X509_ALGOR *alg;
    ASN1_BIT_STRING *key;
} IHSM_SPKI;

ASN1_SEQUENCE(IHSM_SPKI) = {
    ASN1_SIMPLE(IHSM_SPKI, alg, X509_ALGOR),
    ASN1_SIMPLE(IHSM_SPKI, key, ASN1_BIT_STRING)
} static_ASN1_SEQUENCE_END(IHSM_SPKI)

static IHSM_SPKI *spki_parse(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    IHSM_SPKI *s;

    if (der == NULL || len == 0 || len > LONG_MAX)
        return NULL;
    s = (IHSM_SPKI *)ASN1_item_d2i(NULL, &p, (long)len, ASN1_ITEM_rptr(IHSM_SPKI));
    if (s != NULL && p != der + len) { /* trailing bytes */
        ASN1_item_free((ASN1_VALUE *)s, ASN1_ITEM_rptr(IHSM_SPKI));
        s = NULL;
    }
    return s;
}

static void spki_free(IHSM_SPKI *s)
{
    ASN1_item_free((ASN1_VALUE *)s, ASN1_ITEM_rptr(IHSM_SPKI));
}

static int spki_nid(const IHSM_SPKI *s)
{
    return OBJ_obj2nid(s->alg->algorithm);
}

/* Same public key bits? (RSA and RSA-PSS SPKIs carry the same RSAPublicKey.) */
static int spki_same_key(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    IHSM_SPKI *sa = spki_parse(a, alen), *sb = spki_parse(b, blen);
    int same = sa != NULL && sb != NULL && ASN1_STRING_cmp(sa->key, sb->key) == 0;

    spki_free(sa);
    spki_free(sb);
    return same;
}

EVP_PKEY *ihsm_prov_pub_from_spki(IHSM_PROV_CTX *ctx, const uint8_t *der, size_t len)
{
    OSSL_DECODER_CTX *dctx;
    EVP_PKEY *pkey = NULL;
    const unsigned char *p = der;
    size_t left = len;

    dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "DER", "SubjectPublicKeyInfo", NULL,
                                         EVP_PKEY_PUBLIC_KEY, ctx->libctx, IHSM_PROV_PUB_PROPQ);
    if (dctx == NULL || OSSL_DECODER_CTX_get_num_decoders(dctx) == 0) {
        OSSL_DECODER_CTX_free(dctx);
        ihsm_prov_raise(ctx, IHSM_R_UNSUPPORTED,
                        "no provider can decode public keys: load the default provider "
                        "next to ihsm (openssl.cnf or -provider default)");
        return NULL;
    }
    if (!OSSL_DECODER_from_data(dctx, &p, &left) || left != 0) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    OSSL_DECODER_CTX_free(dctx);
    return pkey;
}

int ihsm_prov_pub_to_spki(EVP_PKEY *pub, uint8_t **der, size_t *len)
{
    OSSL_ENCODER_CTX *ectx;
    unsigned char *out = NULL;
    size_t outlen = 0;
    int ok = 0;

    ectx = OSSL_ENCODER_CTX_new_for_pkey(pub, EVP_PKEY_PUBLIC_KEY, "DER",
                                         "SubjectPublicKeyInfo", IHSM_PROV_PUB_PROPQ);
    if (ectx != NULL && OSSL_ENCODER_CTX_get_num_encoders(ectx) > 0
        && OSSL_ENCODER_to_data(ectx, &out, &outlen)) {
        *der = out;
        *len = outlen;
        ok = 1;
    }
    OSSL_ENCODER_CTX_free(ectx);
    return ok;
}

/* The same RSA public key as an RSA-PSS key (no parameter restrictions). */
static EVP_PKEY *rsa_as_pss(IHSM_PROV_CTX *ctx, EVP_PKEY *rsa)
{
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_PKEY *out = NULL;

    if (EVP_PKEY_todata(rsa, EVP_PKEY_PUBLIC_KEY, &params)
        && (pctx = EVP_PKEY_CTX_new_from_name(ctx->libctx, "RSA-PSS", IHSM_PROV_PUB_PROPQ)) != NULL
        && EVP_PKEY_fromdata_init(pctx) > 0)
        EVP_PKEY_fromdata(pctx, &out, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    return out;
}

/* ---------------------------------------------------------------- ephemeral */

/* An ephemeral device key (TLS ECDHE): the obligation to release its handle,
 * shared by the key objects that hold it (EVP_PKEY_dup). */
struct ihsm_prov_eph {
    int refcnt;                /* atomic */
    IHSM_PROV_CTX *ctx;
    uint32_t handle;
    pid_t pid;                 /* a forked child's session never held it */
};

/* KEY_RELEASE without waiting: the request leaves at once (or with the next
 * frame) and its completion is reaped by whoever drives the queue next, so
 * freeing an ephemeral key costs no round trip. */
static void release_handle(IHSM_PROV_CTX *ctx, uint32_t handle)
{
    ihsm_queue *q = __atomic_load_n(&ctx->queue, __ATOMIC_ACQUIRE);
    ihsm_req *r;
    int st;

    if (q == NULL || (r = ihsm_req_new(q, IHSM_CMD_KEY_RELEASE)) == NULL)
        return;
    ihsm_wr_u32(ihsm_req_payload(r), handle);
    st = ihsm_req_submit(r);
    ihsm_req_free(r); /* abandoned: the queue recycles it when answered */
    IHSM_PROV_DBG("key: release ephemeral handle 0x%x -> %s", (unsigned)handle,
                  ihsm_status_name(st));
}

static void eph_put(struct ihsm_prov_eph *e)
{
    if (e == NULL || __atomic_sub_fetch(&e->refcnt, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    if (e->pid == getpid())
        release_handle(e->ctx, e->handle);
    OPENSSL_free(e);
}

int ihsm_prov_key_make_ephemeral(IHSM_PROV_KEY *k)
{
    struct ihsm_prov_eph *e;

    if (k->eph != NULL)
        return 1;
    if ((e = OPENSSL_zalloc(sizeof(*e))) == NULL)
        return 0;
    e->refcnt = 1;
    e->ctx = k->ctx;
    e->handle = __atomic_load_n(&k->handle, __ATOMIC_ACQUIRE);
    e->pid = getpid();
    k->eph = e;
    return 1;
}

/* ---------------------------------------------------------------- object */

IHSM_PROV_KEY *ihsm_prov_key_new(IHSM_PROV_CTX *ctx)
{
    IHSM_PROV_KEY *k = OPENSSL_zalloc(sizeof(*k));

    if (k == NULL)
        return NULL;
    k->ctx = ctx;
    k->refcnt = 1;
    return k;
}

int ihsm_prov_key_up_ref(IHSM_PROV_KEY *k)
{
    __atomic_add_fetch(&k->refcnt, 1, __ATOMIC_RELAXED);
    return 1;
}

void ihsm_prov_key_free(IHSM_PROV_KEY *k)
{
    if (k == NULL || __atomic_sub_fetch(&k->refcnt, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    /* The handle is not released: it belongs to the partition and other key
     * objects (or forked children) may use it; the device releases it when
     * our session closes. */
    OPENSSL_clear_free(k->blob, k->blob_len);
    OPENSSL_free(k->name);
    OPENSSL_free(k->spki);
    EVP_PKEY_free(k->pub);
    OPENSSL_free(k->encpub);
    eph_put(k->eph);
    OPENSSL_free(k);
}

IHSM_PROV_KEY *ihsm_prov_key_dup(const IHSM_PROV_KEY *k)
{
    IHSM_PROV_KEY *d = ihsm_prov_key_new(k->ctx);

    if (d == NULL)
        return NULL;
    d->type = k->type;
    d->bits = k->bits;
    d->usage = k->usage;
    d->rsa_pss = k->rsa_pss;
    d->kex = k->kex;
    d->handle = __atomic_load_n(&k->handle, __ATOMIC_ACQUIRE);
    if ((k->blob != NULL && (d->blob = OPENSSL_memdup(k->blob, k->blob_len)) == NULL)
        || (k->name != NULL && (d->name = OPENSSL_strdup(k->name)) == NULL)
        || (k->spki != NULL && (d->spki = OPENSSL_memdup(k->spki, k->spki_len)) == NULL)
        || (k->encpub != NULL
            && (d->encpub = OPENSSL_memdup(k->encpub, k->encpub_len)) == NULL)
        || (k->pub != NULL && !EVP_PKEY_up_ref(k->pub))) {
        ihsm_prov_key_free(d);
        return NULL;
    }
    d->blob_len = k->blob_len;
    d->spki_len = k->spki_len;
    d->encpub_len = k->encpub_len;
    d->pub = k->pub;
    if (k->eph != NULL) {
        __atomic_add_fetch(&k->eph->refcnt, 1, __ATOMIC_RELAXED);
        d->eph = k->eph;
    }
    return d;
}

void ihsm_prov_key_drop_private(IHSM_PROV_KEY *k)
{
    OPENSSL_clear_free(k->blob, k->blob_len);
    k->blob = NULL;
    k->blob_len = 0;
    OPENSSL_free(k->name);
    k->name = NULL;
    k->handle = 0;
    eph_put(k->eph);
    k->eph = NULL;
}

int ihsm_prov_key_has_private(const IHSM_PROV_KEY *k)
{
    return k != NULL && (k->blob != NULL || k->name != NULL
                         || __atomic_load_n(&k->handle, __ATOMIC_ACQUIRE) != 0);
}

const char *ihsm_prov_key_keymgmt_name(const IHSM_PROV_KEY *k)
{
    switch (k->type) {
    case IHSM_KEY_RSA:
        return k->rsa_pss ? "RSA-PSS" : "RSA";
    case IHSM_KEY_EC_P256:
    case IHSM_KEY_EC_P384:
        return "EC";
    case IHSM_KEY_ED25519:
        return "ED25519";
    case IHSM_KEY_X25519:
        return "X25519";
    }
    return NULL;
}

const char *ihsm_prov_key_desc(const IHSM_PROV_KEY *k, char *buf, size_t len)
{
    uint32_t h = k != NULL ? __atomic_load_n(&k->handle, __ATOMIC_ACQUIRE) : 0;

    if (k == NULL)
        snprintf(buf, len, "no key");
    else if (k->name != NULL)
        snprintf(buf, len, "key '%s'", k->name);
    else if (h != 0 && k->eph != NULL)
        snprintf(buf, len, "ephemeral key handle 0x%x", (unsigned)h);
    else if (h != 0)
        snprintf(buf, len, "key handle 0x%x", (unsigned)h);
    else if (k->blob != NULL)
        snprintf(buf, len, "masked key");
    else
        snprintf(buf, len, "public-only key");
    return buf;
}

int ihsm_prov_md_id(const EVP_MD *md)
{
    if (md == NULL)
        return IHSM_MD_NONE;
    switch (EVP_MD_get_type(md)) {
    case NID_sha1:
        return IHSM_MD_SHA1;
    case NID_sha224:
        return IHSM_MD_SHA224;
    case NID_sha256:
        return IHSM_MD_SHA256;
    case NID_sha384:
        return IHSM_MD_SHA384;
    case NID_sha512:
        return IHSM_MD_SHA512;
    }
    return -1;
}

static uint32_t natural_usage(uint32_t type)
{
    switch (type) {
    case IHSM_KEY_X25519:
        return IHSM_USAGE_DERIVE;
    case IHSM_KEY_AES:
        return IHSM_USAGE_ENCRYPT | IHSM_USAGE_DECRYPT;
    }
    return IHSM_USAGE_SIGN;
}

int ihsm_prov_key_set_public(IHSM_PROV_KEY *k, const uint8_t *spki, size_t len)
{
    IHSM_SPKI *s = spki_parse(spki, len);
    EVP_PKEY *pub = NULL, *pss;
    uint8_t *der = NULL;
    size_t derlen = 0;
    uint32_t type = 0;
    char group[64];

    if (s == NULL)
        goto bad;
    if (spki_nid(s) == NID_rsassaPss)
        k->rsa_pss = 1;
    spki_free(s);
    if ((pub = ihsm_prov_pub_from_spki(k->ctx, spki, len)) == NULL)
        goto bad;

    if (EVP_PKEY_is_a(pub, "RSA") || EVP_PKEY_is_a(pub, "RSA-PSS")) {
        type = IHSM_KEY_RSA;
    } else if (EVP_PKEY_is_a(pub, "EC")) {
        if (!EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                            sizeof(group), NULL))
            goto bad;
        if (OBJ_sn2nid(group) == NID_X9_62_prime256v1 || strcmp(group, "P-256") == 0)
            type = IHSM_KEY_EC_P256;
        else if (OBJ_sn2nid(group) == NID_secp384r1 || strcmp(group, "P-384") == 0)
            type = IHSM_KEY_EC_P384;
        else {
            ihsm_prov_raise(k->ctx, IHSM_R_UNSUPPORTED,
                            "EC curve %s is not supported: the device holds P-256 and "
                            "P-384 keys", group);
            goto err;
        }
    } else if (EVP_PKEY_is_a(pub, "ED25519")) {
        type = IHSM_KEY_ED25519;
    } else if (EVP_PKEY_is_a(pub, "X25519")) {
        type = IHSM_KEY_X25519;
    } else {
        ihsm_prov_raise(k->ctx, IHSM_R_UNSUPPORTED, "public key of an unsupported type (%s)",
                        EVP_PKEY_get0_type_name(pub));
        goto err;
    }
    if (k->type != 0 && k->type != type) {
        ihsm_prov_raise(k->ctx, IHSM_R_BAD_KEYFILE,
                        "the device's public key is of type %u, the key says %u",
                        (unsigned)type, (unsigned)k->type);
        goto err;
    }

    /* The device knows RSA keys; PSS-only is the provider's view of them. */
    if (k->rsa_pss && EVP_PKEY_is_a(pub, "RSA")) {
        if ((pss = rsa_as_pss(k->ctx, pub)) == NULL)
            goto bad;
        EVP_PKEY_free(pub);
        pub = pss;
        if (!ihsm_prov_pub_to_spki(pub, &der, &derlen))
            goto bad;
    } else if ((der = OPENSSL_memdup(spki, len)) == NULL) {
        goto err;
    } else {
        derlen = len;
    }

    k->type = type;
    k->bits = (uint32_t)EVP_PKEY_get_bits(pub);
    if (k->usage == 0)
        k->usage = natural_usage(type);
    EVP_PKEY_free(k->pub);
    k->pub = pub;
    OPENSSL_free(k->spki);
    k->spki = der;
    k->spki_len = derlen;
    return 1;
bad:
    ihsm_prov_raise(k->ctx, IHSM_R_BAD_KEYFILE, "malformed public key (SubjectPublicKeyInfo)");
err:
    EVP_PKEY_free(pub);
    OPENSSL_free(der);
    return 0;
}

/* ---------------------------------------------------------------- loading */

/* Answer of KEY_UNMASK (with_label) or KEY_FIND: u32 handle, u32 type,
 * u32 bits, u32 usage, [bytes label], bytes public. first: fill the key;
 * otherwise (reload after a device restart) only take the new handle after
 * checking it is still the same key. */
static int take_answer(IHSM_PROV_KEY *k, const ihsm_result *res, int with_label, int first)
{
    ihsm_rd r;
    uint32_t handle, type, bits, usage;
    const uint8_t *pub;
    size_t publen, lablen;

    ihsm_rd_init(&r, res->data, res->len);
    handle = ihsm_rd_u32(&r);
    type = ihsm_rd_u32(&r);
    bits = ihsm_rd_u32(&r);
    usage = ihsm_rd_u32(&r);
    if (with_label)
        (void)ihsm_rd_bytes(&r, &lablen, IHSM_MAX_LABEL);
    pub = ihsm_rd_bytes(&r, &publen, IHSM_MAX_PAYLOAD);
    if (ihsm_rd_end(&r) != 0 || handle == 0 || pub == NULL || publen == 0) {
        ihsm_prov_raise(k->ctx, IHSM_R_DEVICE_ERROR, "malformed answer from the device");
        return 0;
    }
    if (first) {
        k->type = type;
        k->usage = usage;
        if (!ihsm_prov_key_set_public(k, pub, publen))
            return 0;
        (void)bits;
    } else if (type != k->type || k->spki == NULL
               || !spki_same_key(pub, publen, k->spki, k->spki_len)) {
        ihsm_prov_raise(k->ctx, IHSM_R_BAD_KEYFILE,
                        "the device now holds a different key under this name: reload "
                        "the configuration");
        return 0;
    }
    __atomic_store_n(&k->handle, handle, __ATOMIC_RELEASE);
    return 1;
}

static int key_load(IHSM_PROV_KEY *k, int first)
{
    ihsm_result res = { 0 };
    ihsm_wr w;
    char what[IHSM_MAX_LABEL + 64];
    int st, ok = 0;

    ihsm_wr_init(&w);
    if (k->blob != NULL) {
        ihsm_wr_bytes(&w, k->blob, k->blob_len);
        st = ihsm_prov_call(k->ctx, IHSM_CMD_KEY_UNMASK, &w, &res, "loading ihsm masked key");
        ok = st == IHSM_OK && take_answer(k, &res, 1, first);
    } else if (k->name != NULL) {
        snprintf(what, sizeof(what), "ihsm key '%s'", k->name);
        ihsm_wr_bytes(&w, k->name, strlen(k->name));
        st = ihsm_prov_call(k->ctx, IHSM_CMD_KEY_FIND, &w, &res, what);
        ok = st == IHSM_OK && take_answer(k, &res, 0, first);
    } else {
        ihsm_prov_raise(k->ctx, IHSM_R_NO_PRIVATE_KEY,
                        "this key object holds only a public key (imported), so it cannot "
                        "sign: load the key from its ihsm key file or as ihsm:NAME");
    }
    IHSM_PROV_DBG("key: %s %s -> %s", first ? "load" : "reload",
                  k->blob != NULL ? "blob" : k->name != NULL ? k->name : "-",
                  ok ? "ok" : "failed");
    ihsm_result_clear(&res);
    ihsm_wr_free(&w);
    return ok;
}

IHSM_PROV_KEY *ihsm_prov_key_from_keyfile(IHSM_PROV_CTX *ctx, const ihsm_keyfile *kf)
{
    IHSM_PROV_KEY *k;
    IHSM_SPKI *s;

    if (kf == NULL || kf->blob == NULL || kf->blob_len == 0 || kf->blob_len > IHSM_MAX_BLOB) {
        ihsm_prov_raise(ctx, IHSM_R_BAD_KEYFILE,
                        "corrupt ihsm masked key file: the masked blob is missing or too long");
        return NULL;
    }
    if ((k = ihsm_prov_key_new(ctx)) == NULL
        || (k->blob = OPENSSL_memdup(kf->blob, kf->blob_len)) == NULL) {
        ihsm_prov_key_free(k);
        return NULL;
    }
    k->blob_len = kf->blob_len;
    /* The file's public key says whether this is a PSS-only RSA key; the
     * device's answer is the authority for everything else. */
    if (kf->spki != NULL && kf->spki_len > 0) {
        if ((s = spki_parse(kf->spki, kf->spki_len)) == NULL) {
            ihsm_prov_raise(ctx, IHSM_R_BAD_KEYFILE,
                            "corrupt ihsm masked key file: malformed public key");
            goto err;
        }
        k->rsa_pss = spki_nid(s) == NID_rsassaPss;
        spki_free(s);
    }
    if (!key_load(k, 1))
        goto err;
    if ((kf->key_type != 0 && kf->key_type != k->type)
        || (kf->spki != NULL && kf->spki_len > 0
            && !spki_same_key(kf->spki, kf->spki_len, k->spki, k->spki_len))) {
        ihsm_prov_raise(ctx, IHSM_R_BAD_KEYFILE,
                        "corrupt ihsm masked key file: its public key does not match the "
                        "key the device unmasked");
        goto err;
    }
    return k;
err:
    ihsm_prov_key_free(k);
    return NULL;
}

IHSM_PROV_KEY *ihsm_prov_key_from_name(IHSM_PROV_CTX *ctx, const char *name)
{
    IHSM_PROV_KEY *k;
    size_t n = name != NULL ? strlen(name) : 0;

    if (n == 0 || n > IHSM_MAX_LABEL) {
        ihsm_prov_raise(ctx, IHSM_R_UNKNOWN_KEY,
                        "invalid ihsm key name: expected 1 to %d bytes", IHSM_MAX_LABEL);
        return NULL;
    }
    if ((k = ihsm_prov_key_new(ctx)) == NULL || (k->name = OPENSSL_strdup(name)) == NULL) {
        ihsm_prov_key_free(k);
        return NULL;
    }
    if (!key_load(k, 1)) {
        ihsm_prov_key_free(k);
        return NULL;
    }
    return k;
}

/* ---------------------------------------------------------------- calls */

int ihsm_prov_key_call(IHSM_PROV_KEY *k, uint16_t cmd, const ihsm_wr *args,
                       ihsm_result *res)
{
    ihsm_queue *q;
    ihsm_wr w;
    char what[IHSM_MAX_LABEL + 64], desc[IHSM_MAX_LABEL + 32];
    int st = IHSM_ERR_BAD_HANDLE, reloaded = 0, resent = 0, round;
    uint32_t h;

    if (!ihsm_prov_key_has_private(k)) {
        ihsm_prov_raise(k != NULL ? k->ctx : NULL, IHSM_R_NO_PRIVATE_KEY,
                        "this key object holds only a public key (imported), so it cannot "
                        "be used for %s: load the key from its ihsm key file or as ihsm:NAME",
                        ihsm_cmd_name(cmd));
        return IHSM_ERR_BAD_HANDLE;
    }
    if (args != NULL && (args->err || args->len > IHSM_MAX_PAYLOAD - 4)) {
        ihsm_prov_raise(k->ctx, IHSM_R_INVALID_ARGUMENT,
                        "%s: input too large for the device (at most %d bytes)",
                        ihsm_cmd_name(cmd), IHSM_MAX_PAYLOAD - 64);
        return IHSM_ERR_LIMIT_FRAME;
    }
    if ((q = ihsm_prov_queue(k->ctx)) == NULL)
        return IHSM_ERR_CONNECT;

    ihsm_wr_init(&w);
    /* At most: a load, a send, a reload, a send, a resend. */
    for (round = 0; round < 6; round++) {
        h = __atomic_load_n(&k->handle, __ATOMIC_ACQUIRE);
        if (h == 0) {
            /* Never loaded in the device (or dropped after BAD_HANDLE). */
            if (!key_load(k, k->spki == NULL)) {
                st = IHSM_ERR_BAD_HANDLE;
                goto done; /* error raised by key_load */
            }
            continue;
        }
        ihsm_wr_reset(&w);
        ihsm_wr_u32(&w, h);
        if (args != NULL)
            ihsm_wr_raw(&w, args->p, args->len);
        if (w.err) {
            st = IHSM_ERR_NOMEM;
            break;
        }
        st = ihsm_queue_call(q, cmd, w.p, w.len, res);
        IHSM_PROV_DBG("key: %s handle 0x%x -> %s", ihsm_cmd_name(cmd), (unsigned)h,
                      ihsm_status_name(st));
        if (st == IHSM_ERR_BAD_HANDLE && !reloaded && (k->blob != NULL || k->name != NULL)) {
            /* The device restarted (or the last session holding the key
             * closed): load it again from its blob or name, retry once. */
            reloaded = 1;
            ihsm_result_clear(res);
            __atomic_compare_exchange_n(&k->handle, &h, 0, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE);
            continue;
        }
        if (st == IHSM_ERR_DEVICE_GONE && !resent) {
            /* The connection dropped under the request: the queue
             * reconnects; keyed commands have no side effects, so send once
             * more. */
            resent = 1;
            ihsm_result_clear(res);
            continue;
        }
        break;
    }
    if (st != IHSM_OK) {
        snprintf(what, sizeof(what), "ihsm %s with %s", ihsm_cmd_name(cmd),
                 ihsm_prov_key_desc(k, desc, sizeof(desc)));
        ihsm_prov_raise_status(k->ctx, st, what);
    }
done:
    ihsm_wr_free(&w);
    return st;
}

/* ---------------------------------------------------------------- key exchange */

int ihsm_prov_kex_type(uint32_t type)
{
    return type == IHSM_KEY_EC_P256 || type == IHSM_KEY_EC_P384 || type == IHSM_KEY_X25519;
}

size_t ihsm_prov_kex_pub_len(uint32_t type)
{
    switch (type) {
    case IHSM_KEY_EC_P256:
        return 1 + 2 * 32;
    case IHSM_KEY_EC_P384:
        return 1 + 2 * 48;
    case IHSM_KEY_X25519:
        return 32;
    }
    return 0;
}

size_t ihsm_prov_kex_secret_len(uint32_t type)
{
    switch (type) {
    case IHSM_KEY_EC_P256:
    case IHSM_KEY_X25519:
        return 32;
    case IHSM_KEY_EC_P384:
        return 48;
    }
    return 0;
}

static uint32_t kex_bits(uint32_t type)
{
    return type == IHSM_KEY_EC_P256 ? 256 : type == IHSM_KEY_EC_P384 ? 384 : 253;
}

/* Publish a raw public value (first writer wins; every writer has the same). */
static int set_encpub_once(IHSM_PROV_KEY *k, const uint8_t *p, size_t len)
{
    uint8_t *copy = OPENSSL_memdup(p, len), *none = NULL;

    if (copy == NULL)
        return 0;
    k->encpub_len = len;
    if (!__atomic_compare_exchange_n(&k->encpub, &none, copy, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        OPENSSL_free(copy);
    return 1;
}

int ihsm_prov_key_set_spki_raw(IHSM_PROV_KEY *k, const uint8_t *spki, size_t len)
{
    IHSM_SPKI *s = spki_parse(spki, len);
    size_t want = ihsm_prov_kex_pub_len(k->type);
    int ok = 0;

    if (s == NULL || want == 0 || (size_t)ASN1_STRING_length(s->key) != want)
        goto end;
    OPENSSL_free(k->spki);
    if ((k->spki = OPENSSL_memdup(spki, len)) == NULL)
        goto end;
    k->spki_len = len;
    OPENSSL_free(k->encpub);
    k->encpub = NULL;
    if (!set_encpub_once(k, ASN1_STRING_get0_data(s->key), want))
        goto end;
    k->bits = kex_bits(k->type);
    if (k->usage == 0)
        k->usage = IHSM_USAGE_DERIVE;
    ok = 1;
end:
    if (!ok)
        ihsm_prov_raise(k->ctx, IHSM_R_DEVICE_ERROR,
                        "malformed public key from the device (SubjectPublicKeyInfo)");
    spki_free(s);
    return ok;
}

int ihsm_prov_key_set_encoded_public(IHSM_PROV_KEY *k, uint32_t type,
                                     const uint8_t *p, size_t len)
{
    /* Stored as given: what a peer sent is checked by the device, which
     * refuses a point off the curve, of the wrong length, the identity or a
     * small-order X25519 key when it derives (IHSM_ERR_BAD_INPUT). Only an
     * absurd length is turned away here. */
    if (!ihsm_prov_kex_type(type) || p == NULL || len == 0 || len > 2 * 66 + 1) {
        ihsm_prov_raise(k->ctx, IHSM_R_INVALID_ARGUMENT,
                        "a key exchange public key of %zu bytes: expected %zu", len,
                        ihsm_prov_kex_pub_len(type));
        return 0;
    }
    if (ihsm_prov_key_has_private(k) || (k->type != 0 && k->type != type)) {
        ihsm_prov_raise(k->ctx, IHSM_R_INVALID_ARGUMENT,
                        "cannot set the public key of a device key or of another type");
        return 0;
    }
    /* What described the previous public key no longer does. */
    OPENSSL_free(k->spki);
    k->spki = NULL;
    k->spki_len = 0;
    EVP_PKEY_free(k->pub);
    k->pub = NULL;
    OPENSSL_free(k->encpub);
    k->encpub = NULL;
    k->type = type;
    k->bits = kex_bits(type);
    if (!set_encpub_once(k, p, len))
        return 0;
    if (k->usage == 0)
        k->usage = IHSM_USAGE_DERIVE;
    return 1;
}

int ihsm_prov_key_encoded_public(IHSM_PROV_KEY *k, const uint8_t **p, size_t *len)
{
    uint8_t buf[2 * 66 + 1], *e = __atomic_load_n(&k->encpub, __ATOMIC_ACQUIRE);
    EVP_PKEY *pub;
    size_t n = 0;

    if (e == NULL) {
        if ((pub = ihsm_prov_key_pub(k)) == NULL
            || !EVP_PKEY_get_octet_string_param(pub, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, buf,
                                                sizeof(buf), &n)
            || n == 0 || !set_encpub_once(k, buf, n))
            return 0;
        e = __atomic_load_n(&k->encpub, __ATOMIC_ACQUIRE);
    }
    *p = e;
    *len = k->encpub_len;
    return 1;
}

/* The default provider's key for a raw public value. */
static EVP_PKEY *pub_from_raw(IHSM_PROV_CTX *ctx, uint32_t type, const uint8_t *p, size_t len)
{
    EVP_PKEY_CTX *pctx;
    EVP_PKEY *pub = NULL;
    OSSL_PARAM params[3];

    if (type == IHSM_KEY_X25519)
        return EVP_PKEY_new_raw_public_key_ex(ctx->libctx, "X25519", IHSM_PROV_PUB_PROPQ, p, len);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                 type == IHSM_KEY_EC_P256 ? "P-256" : "P-384", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)p, len);
    params[2] = OSSL_PARAM_construct_end();
    pctx = EVP_PKEY_CTX_new_from_name(ctx->libctx, "EC", IHSM_PROV_PUB_PROPQ);
    if (pctx == NULL || EVP_PKEY_fromdata_init(pctx) <= 0
        || EVP_PKEY_fromdata(pctx, &pub, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pub = NULL;
    EVP_PKEY_CTX_free(pctx);
    return pub;
}

EVP_PKEY *ihsm_prov_key_pub(IHSM_PROV_KEY *k)
{
    EVP_PKEY *pub = __atomic_load_n(&k->pub, __ATOMIC_ACQUIRE), *none = NULL;
    const uint8_t *e = __atomic_load_n(&k->encpub, __ATOMIC_ACQUIRE);

    if (pub != NULL)
        return pub;
    if (e != NULL && ihsm_prov_kex_type(k->type))
        pub = pub_from_raw(k->ctx, k->type, e, k->encpub_len);
    else if (k->spki != NULL)
        pub = ihsm_prov_pub_from_spki(k->ctx, k->spki, k->spki_len);
    if (pub == NULL) {
        if (e != NULL || k->spki != NULL)
            ihsm_prov_raise(k->ctx, IHSM_R_INVALID_ARGUMENT,
                            "not a valid %s public key",
                            ihsm_prov_key_keymgmt_name(k) != NULL
                                ? ihsm_prov_key_keymgmt_name(k) : "");
        return NULL;
    }
    if (!__atomic_compare_exchange_n(&k->pub, &none, pub, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        EVP_PKEY_free(pub);
        pub = none;
    }
    return pub;
}
