/*
 * A vector's private key into the device, as `ihsmctl import` does it
 * (BYOK, tools/byok.c): the key's PKCS#8 DER (raw bytes for AES) is wrapped
 * here to the device's import key and only the wrapped form crosses the
 * socket. The device answers with a handle, the masked blob and the public
 * key; the masked key file made of those is loaded back through the ihsm
 * provider's decoder, so every operation afterwards uses an ordinary
 * EVP_PKEY of the provider.
 *
 * The provider's masked key file decoder takes signing keys only (RSA, EC,
 * Ed25519), so X25519 keys are imported under a name instead and loaded
 * as ihsm:NAME through OSSL_STORE; the names are deleted at the end.
 *
 * Each import costs an RSA-3072 OAEP decrypt in the device, so keys are
 * cached for the run by a SHA-256 of type, usage and key bytes (the clear
 * key itself is not kept). Refusals are cached too.
 */
#include "wycheproof.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/store.h>
#include <openssl/x509.h>
#include "byok.h"
#include "ihsm_keyfile.h"
#include "tools_common.h"

#define MAX_SPKI 4096

static int call(ihsm_queue *q, uint16_t cmd, const ihsm_wr *payload, ihsm_result *res)
{
    memset(res, 0, sizeof(*res));
    if (payload != NULL && payload->err)
        return IHSM_ERR_NOMEM;
    return ihsm_queue_call(q, cmd, payload != NULL ? payload->p : NULL,
                           payload != NULL ? payload->len : 0, res);
}

int wp_device_call(wp_run *r, uint16_t cmd, const ihsm_wr *payload, ihsm_result *res)
{
    return call(r->q, cmd, payload, res);
}

/* The key's handle in the user session: the import's own when that is the
 * same session, else KEY_UNMASK of its blob there (once). */
static int user_handle(wp_run *r, wp_key *k, uint32_t *h)
{
    ihsm_result res;
    ihsm_wr w;
    ihsm_rd rd;
    int st;

    if (r->uq == r->q) {
        *h = k->handle;
        return IHSM_OK;
    }
    if (k->user_handle == 0) {
        ihsm_wr_init(&w);
        ihsm_wr_bytes(&w, k->blob, k->blob_len);
        st = call(r->uq, IHSM_CMD_KEY_UNMASK, &w, &res);
        ihsm_wr_free(&w);
        if (st == IHSM_OK) {
            ihsm_rd_init(&rd, res.data, res.len);
            k->user_handle = ihsm_rd_u32(&rd);
            if (rd.err || k->user_handle == 0)
                st = IHSM_ERR_MALFORMED;
        }
        ihsm_result_clear(&res);
        if (st != IHSM_OK)
            return st;
    }
    *h = k->user_handle;
    return IHSM_OK;
}

int wp_key_call(wp_run *r, wp_key *k, uint16_t cmd, const ihsm_wr *args, ihsm_result *res)
{
    uint32_t h = 0;
    ihsm_wr w;
    int st;

    memset(res, 0, sizeof(*res));
    if ((st = user_handle(r, k, &h)) != IHSM_OK)
        return st;
    ihsm_wr_init(&w);
    ihsm_wr_u32(&w, h);
    if (args != NULL)
        ihsm_wr_raw(&w, args->p, args->len);
    st = call(r->uq, cmd, &w, res);
    ihsm_wr_free(&w);
    return st;
}

/* A session on the device with this credential. */
static ihsm_queue *open_session(wp_run *r, const char *cred, const char *what)
{
    ihsm_queue_config cfg = { 0 };
    ihsm_queue *q = NULL;
    int st;

    cfg.socket_path = r->dev.socket_path;
    cfg.credential_path = cred;
    if ((st = ihsm_queue_new(&cfg, &q)) != IHSM_OK || (st = ihsm_queue_connect(q)) != IHSM_OK) {
        fprintf(stderr, "ihsm-wycheproof: cannot open %s session on %s with %s: %s (%s)\n",
                what, cfg.socket_path, cred, ihsm_status_str(st),
                q != NULL ? ihsm_queue_last_error(q) : ihsm_status_name(st));
        ihsm_queue_free(q);
        return NULL;
    }
    return q;
}

static void delete_name(wp_run *r, const char *name)
{
    ihsm_result res;
    ihsm_wr w;

    ihsm_wr_init(&w);
    ihsm_wr_u32(&w, 0);
    ihsm_wr_bytes(&w, name, strlen(name));
    wp_device_call(r, IHSM_CMD_KEY_DELETE, &w, &res);
    ihsm_wr_free(&w);
    ihsm_result_clear(&res);
}

int wp_import_init(wp_run *r)
{
    ihsm_result res;
    const uint8_t *spki;
    const unsigned char *p;
    size_t len = 0;
    ihsm_rd rd;
    int st;

    if (r->dev.officer_credential != NULL) {
        if ((r->q = open_session(r, r->dev.officer_credential, "a crypto-officer")) == NULL
            || (r->uq = open_session(r, r->dev.credential, "a user")) == NULL)
            return -1;
    } else {
        if ((r->q = open_session(r, r->dev.credential, "a user")) == NULL)
            return -1;
        r->uq = r->q;
    }
    st = wp_device_call(r, IHSM_CMD_GET_IMPORT_KEY, NULL, &res);
    if (st != IHSM_OK) {
        fprintf(stderr, "ihsm-wycheproof: the device gave no import key: %s\n",
                ihsm_status_str(st));
        ihsm_result_clear(&res);
        return -1;
    }
    ihsm_rd_init(&rd, res.data, res.len);
    spki = ihsm_rd_bytes(&rd, &len, MAX_SPKI);
    p = spki;
    if (ihsm_rd_end(&rd) == 0 && spki != NULL)
        r->import_pub = d2i_PUBKEY(NULL, &p, (long)len);
    ihsm_result_clear(&res);
    if (r->import_pub == NULL || EVP_PKEY_get_base_id(r->import_pub) != EVP_PKEY_RSA) {
        fprintf(stderr, "ihsm-wycheproof: the device's import key is not an RSA public key: "
                "runner and ihsmd versions differ?\n");
        return -1;
    }
    return 0;
}

void wp_import_free(wp_run *r)
{
    wp_key *k, *next;

    for (k = r->keys; k != NULL; k = next) {
        next = k->next;
        if (k->name[0] != '\0' && k->status == IHSM_OK && r->q != NULL)
            delete_name(r, k->name);
        EVP_PKEY_free(k->pkey);
        OPENSSL_clear_free(k->blob, k->blob_len);
        OPENSSL_free(k->pem);
        free(k);
    }
    r->keys = NULL;
    EVP_PKEY_free(r->import_pub);
    r->import_pub = NULL;
    if (r->uq != r->q)
        ihsm_queue_free(r->uq);
    ihsm_queue_free(r->q);
    r->q = r->uq = NULL;
}

/* The masked key file back through the provider's decoder. */
static void load_through_provider(wp_run *r, wp_key *k, const uint8_t *spki, size_t spki_len)
{
    ihsm_keyfile kf = { 0 };
    OSSL_DECODER_CTX *dctx;
    const unsigned char *p;
    size_t left;
    char err[512], tn[32];

    kf.key_type = k->type;
    kf.spki = (uint8_t *)spki;
    kf.spki_len = spki_len;
    kf.blob = k->blob;
    kf.blob_len = k->blob_len;
    if (ihsm_keyfile_encode_pem(&kf, &k->pem, &k->pem_len) != 0) {
        snprintf(k->why, sizeof(k->why), "cannot write the masked key file");
        return;
    }
    dctx = OSSL_DECODER_CTX_new_for_pkey(&k->pkey, "PEM", NULL, NULL, EVP_PKEY_KEYPAIR,
                                         r->libctx, WP_PROPQ);
    p = (const unsigned char *)k->pem;
    left = k->pem_len;
    if (dctx == NULL || OSSL_DECODER_CTX_get_num_decoders(dctx) == 0
        || !OSSL_DECODER_from_data(dctx, &p, &left) || k->pkey == NULL) {
        EVP_PKEY_free(k->pkey);
        k->pkey = NULL;
        snprintf(k->why, sizeof(k->why), "the ihsm provider did not load the masked %s key "
                 "file (no decoder or key management for it? update ihsm): %s",
                 ihsm_tool_type_name(k->type, k->bits, tn, sizeof(tn)),
                 wp_ossl_errors(err, sizeof(err)));
    }
    OSSL_DECODER_CTX_free(dctx);
}

/* A named key through the provider's store (ihsm:NAME). */
static void load_through_store(wp_run *r, wp_key *k)
{
    char uri[sizeof(k->name) + 8], err[512];
    OSSL_STORE_CTX *st;
    OSSL_STORE_INFO *info;

    snprintf(uri, sizeof(uri), "ihsm:%s", k->name);
    st = OSSL_STORE_open_ex(uri, r->libctx, WP_PROPQ, NULL, NULL, NULL, NULL, NULL);
    while (st != NULL && k->pkey == NULL && !OSSL_STORE_eof(st)) {
        if ((info = OSSL_STORE_load(st)) == NULL)
            break;
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            k->pkey = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(st);
    if (k->pkey == NULL)
        snprintf(k->why, sizeof(k->why), "the ihsm provider's store did not load %s: %s", uri,
                 wp_ossl_errors(err, sizeof(err)));
}

/* KEY_IMPORT; on a name left over from an interrupted run, delete it and
 * try once more. */
static int import_call(wp_run *r, wp_key *k, const uint8_t *wrapped, size_t wrapped_len,
                       ihsm_result *res)
{
    ihsm_wr w;
    int st, tries;

    for (tries = 0;; tries++) {
        ihsm_wr_init(&w);
        ihsm_wr_u32(&w, k->type);
        ihsm_wr_u32(&w, ihsm_tool_wire_bits(k->type, k->bits));
        ihsm_wr_u32(&w, k->usage);
        ihsm_wr_u32(&w, k->name[0] != '\0' ? IHSM_KEYF_PERSIST : 0);
        ihsm_wr_bytes(&w, k->name, strlen(k->name));
        ihsm_wr_bytes(&w, wrapped, wrapped_len);
        st = wp_device_call(r, IHSM_CMD_KEY_IMPORT, &w, res);
        ihsm_wr_free(&w);
        if (st != IHSM_ERR_EXISTS || tries > 0)
            return st;
        ihsm_result_clear(res);
        delete_name(r, k->name);
    }
}

static wp_key *import(wp_run *r, uint32_t type, uint32_t bits, uint32_t usage,
                            const uint8_t *secret, size_t len)
{
    uint8_t id[32], hdr[12], *wrapped = NULL;
    size_t wrapped_len = 0, blob_len = 0, spki_len = 0;
    const uint8_t *blob, *spki;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    ihsm_result res = { 0 };
    ihsm_rd rd;
    wp_key *k;
    char tn[32], err[512];
    int st;
    size_t i;

    memcpy(hdr, &type, 4);
    memcpy(hdr + 4, &bits, 4);
    memcpy(hdr + 8, &usage, 4);
    if (m == NULL || !EVP_DigestInit_ex2(m, EVP_sha256(), NULL)
        || !EVP_DigestUpdate(m, hdr, sizeof(hdr)) || !EVP_DigestUpdate(m, secret, len)
        || !EVP_DigestFinal_ex(m, id, NULL)) {
        EVP_MD_CTX_free(m);
        return NULL;
    }
    EVP_MD_CTX_free(m);
    for (k = r->keys; k != NULL; k = k->next)
        if (memcmp(k->id, id, sizeof(id)) == 0)
            return k;
    if ((k = calloc(1, sizeof(*k))) == NULL)
        return NULL;
    memcpy(k->id, id, sizeof(id));
    k->type = type;
    k->bits = bits;
    k->usage = usage;
    k->next = r->keys;
    r->keys = k;
    if (type == IHSM_KEY_X25519) {
        /* a name of the run: the key's id, so a rerun finds its own */
        memcpy(k->name, "wycheproof-", 11);
        for (i = 0; i < 12; i++)
            snprintf(k->name + 11 + 2 * i, 3, "%02x", id[i]);
    }

    if (ihsm_byok_wrap(r->import_pub, secret, len, &wrapped, &wrapped_len) != 0) {
        k->status = IHSM_ERR_CRYPTO;
        snprintf(k->why, sizeof(k->why), "cannot wrap the key to the device's import key: %s",
                 wp_ossl_errors(err, sizeof(err)));
        return k;
    }
    /* without a name the key goes with the session: nothing is left behind */
    st = import_call(r, k, wrapped, wrapped_len, &res);
    OPENSSL_clear_free(wrapped, wrapped_len);
    k->status = st;
    if (st != IHSM_OK) {
        snprintf(k->why, sizeof(k->why), "the device refused to import the %s key: %s (%s)%s",
                 ihsm_tool_type_name(type, bits, tn, sizeof(tn)), ihsm_status_name(st),
                 ihsm_status_str(st), st == IHSM_ERR_PERMISSION
                 ? "; imports may need the crypto-officer credential: set "
                   "IHSM_OFFICER_CREDENTIAL" : "");
        ihsm_result_clear(&res);
        return k;
    }
    ihsm_rd_init(&rd, res.data, res.len);
    k->handle = ihsm_rd_u32(&rd);
    blob = ihsm_rd_bytes(&rd, &blob_len, IHSM_MAX_BLOB);
    spki = ihsm_rd_bytes(&rd, &spki_len, IHSM_MAX_PAYLOAD);
    if (ihsm_rd_end(&rd) != 0 || k->handle == 0 || blob == NULL || blob_len == 0
        || (k->blob = OPENSSL_memdup(blob, blob_len)) == NULL) {
        k->status = IHSM_ERR_MALFORMED;
        snprintf(k->why, sizeof(k->why), "the device's answer to KEY_IMPORT is malformed");
        ihsm_result_clear(&res);
        return k;
    }
    k->blob_len = blob_len;
    if (k->name[0] != '\0')
        load_through_store(r, k);
    else if (type != IHSM_KEY_AES)
        load_through_provider(r, k, spki, spki_len);
    ihsm_result_clear(&res);
    return k;
}

wp_key *wp_import_secret(wp_run *r, const uint8_t *key, size_t len, uint32_t usage)
{
    return import(r, IHSM_KEY_AES, (uint32_t)len * 8, usage, key, len);
}

wp_key *wp_import_pkey(wp_run *r, EVP_PKEY *priv, uint32_t usage)
{
    static wp_key refused; /* for keys the device has no type for: never sent */
    uint32_t type = 0, bits = 0;
    uint8_t *der = NULL;
    size_t der_len = 0;
    wp_key *k;
    char why[200];

    if (ihsm_byok_key_type(priv, &type, &bits, why, sizeof(why)) != 0) {
        if (EVP_PKEY_get_base_id(priv) == EVP_PKEY_RSA) {
            /* an RSA size the device does not hold: let the device say so */
            type = IHSM_KEY_RSA;
            bits = (uint32_t)EVP_PKEY_get_bits(priv);
        } else {
            memset(&refused, 0, sizeof(refused));
            refused.status = IHSM_ERR_UNSUPPORTED;
            snprintf(refused.why, sizeof(refused.why), "not sent to the device, which has "
                     "no key type for %s", why);
            return &refused;
        }
    }
    if (ihsm_byok_pkcs8(priv, &der, &der_len) != 0) {
        memset(&refused, 0, sizeof(refused));
        refused.status = IHSM_ERR_CRYPTO;
        snprintf(refused.why, sizeof(refused.why), "cannot encode the vector's key as PKCS#8");
        return &refused;
    }
    k = import(r, type, bits, usage, der, der_len);
    OPENSSL_clear_free(der, der_len);
    return k;
}
