/*
 * The AEAD ciphers' keys in the device.
 *
 * Device keys (ihsm:NAME, a masked key file, a masked blob): found or
 * unmasked once per context, held by the provider's session like every
 * device key (the device gives the same handle to every load of the same
 * key, so they do not pile up), loaded again from their name or blob if
 * the device restarted.
 *
 * Session keys: a raw key (a TLS record key) goes to the device with
 * KEY_LOAD_SESSION the first time a record is large enough to be sealed
 * there, and is released (KEY_RELEASE) when the context is freed or
 * re-keyed. If the connection to the device drops, the device frees it
 * with the session; the next record loads it again.
 */
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "cipher_aead.h"
#include "prov_int.h"

struct ihsm_aead_devkey {
    IHSM_PROV_CTX *prov;
    int refcnt;               /* atomic */
    uint32_t handle;          /* atomic; 0: load (again) */
    uint32_t bits, usage;
    char *name;               /* ihsm:NAME */
    unsigned char *blob;      /* masked blob (key file or parameter) */
    size_t blob_len;
    char desc[IHSM_MAX_LABEL + 32];
};

/* Request overhead of AEAD_SEAL/OPEN around iv, aad and text: handle, alg,
 * three length prefixes, tag length; the answer adds a prefix and the tag. */
#define AEAD_REQ_FIXED (4 + 4 + 4 + 4 + 4 + 4)

size_t ihsm_aead_device_max(size_t ivlen)
{
    return IHSM_MAX_PAYLOAD - AEAD_REQ_FIXED - IHSM_AEAD_TAG_LEN - ivlen;
}

/* ---------------------------------------------------------------- device keys */

void ihsm_aead_devkey_up_ref(IHSM_AEAD_DEVKEY *k)
{
    __atomic_add_fetch(&k->refcnt, 1, __ATOMIC_RELAXED);
}

void ihsm_aead_devkey_free(IHSM_AEAD_DEVKEY *k)
{
    if (k == NULL || __atomic_sub_fetch(&k->refcnt, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    /* not released: the handle is the partition's, shared with any other
     * load of this key; the device drops it when our session closes */
    OPENSSL_free(k->name);
    OPENSSL_clear_free(k->blob, k->blob_len);
    OPENSSL_free(k);
}

uint32_t ihsm_aead_devkey_usage(const IHSM_AEAD_DEVKEY *k)
{
    return k->usage;
}

/* KEY_FIND (name) or KEY_UNMASK (blob). first: check the key fits alg. */
static int devkey_load(IHSM_AEAD_DEVKEY *k, const IHSM_AEAD_ALG *alg, int first)
{
    ihsm_result res = { 0 };
    ihsm_wr w;
    ihsm_rd r;
    uint32_t handle, type, bits, usage;
    size_t n;
    char what[sizeof(k->desc) + 32];
    int st, ok = 0;

    ihsm_wr_init(&w);
    snprintf(what, sizeof(what), "loading %s", k->desc);
    if (k->name != NULL) {
        ihsm_wr_bytes(&w, k->name, strlen(k->name));
        st = ihsm_prov_call(k->prov, IHSM_CMD_KEY_FIND, &w, &res, what);
    } else {
        ihsm_wr_bytes(&w, k->blob, k->blob_len);
        st = ihsm_prov_call(k->prov, IHSM_CMD_KEY_UNMASK, &w, &res, what);
    }
    ihsm_wr_free(&w);
    if (st != IHSM_OK)
        goto done; /* raised */
    ihsm_rd_init(&r, res.data, res.len);
    handle = ihsm_rd_u32(&r);
    type = ihsm_rd_u32(&r);
    bits = ihsm_rd_u32(&r);
    usage = ihsm_rd_u32(&r);
    if (k->name == NULL)
        (void)ihsm_rd_bytes(&r, &n, IHSM_MAX_LABEL); /* label */
    (void)ihsm_rd_bytes(&r, &n, IHSM_MAX_PAYLOAD);   /* public: empty for AES */
    if (ihsm_rd_end(&r) != 0 || handle == 0) {
        ihsm_prov_raise(k->prov, IHSM_R_DEVICE_ERROR, "%s: malformed answer from the device",
                        what);
        goto done;
    }
    if (type != IHSM_KEY_AES) {
        ihsm_prov_raise(k->prov, IHSM_R_UNSUPPORTED,
                        "%s is not a secret key (type %u): %s needs an AES key (ihsmctl "
                        "keygen --type aes-256)", k->desc, (unsigned)type, alg->name);
        goto done;
    }
    if (bits != alg->keylen * 8) {
        ihsm_prov_raise(k->prov, IHSM_R_UNSUPPORTED,
                        "%s is a %u-bit key: %s needs %zu bits", k->desc, (unsigned)bits,
                        alg->name, alg->keylen * 8);
        goto done;
    }
    if (!first && (bits != k->bits || usage != k->usage)) {
        ihsm_prov_raise(k->prov, IHSM_R_BAD_KEYFILE,
                        "%s: the device now holds a different key under this name", k->desc);
        goto done;
    }
    k->bits = bits;
    k->usage = usage;
    __atomic_store_n(&k->handle, handle, __ATOMIC_RELEASE);
    ok = 1;
done:
    IHSM_PROV_DBG("cipher: %s %s -> %s", first ? "load" : "reload", k->desc,
                  ok ? "ok" : "failed");
    ihsm_result_clear(&res);
    return ok;
}

static IHSM_AEAD_DEVKEY *devkey_new(IHSM_AEAD_CTX *c)
{
    IHSM_AEAD_DEVKEY *k = OPENSSL_zalloc(sizeof(*k));

    if (k == NULL)
        return NULL;
    k->prov = c->prov;
    k->refcnt = 1;
    return k;
}

static IHSM_AEAD_DEVKEY *devkey_finish(IHSM_AEAD_CTX *c, IHSM_AEAD_DEVKEY *k)
{
    if (!devkey_load(k, c->alg, 1)) {
        ihsm_aead_devkey_free(k);
        return NULL;
    }
    return k;
}

IHSM_AEAD_DEVKEY *ihsm_aead_devkey_from_blob(IHSM_AEAD_CTX *c, const unsigned char *blob,
                                             size_t len)
{
    IHSM_AEAD_DEVKEY *k;

    if (len == 0 || len > IHSM_MAX_BLOB) {
        ihsm_prov_raise(c->prov, IHSM_R_BAD_KEYFILE,
                        "%s: a masked key blob is 1 to %d bytes", c->alg->name, IHSM_MAX_BLOB);
        return NULL;
    }
    if ((k = devkey_new(c)) == NULL || (k->blob = OPENSSL_memdup(blob, len)) == NULL) {
        ihsm_aead_devkey_free(k);
        return NULL;
    }
    k->blob_len = len;
    snprintf(k->desc, sizeof(k->desc), "masked AES key");
    return devkey_finish(c, k);
}

IHSM_AEAD_DEVKEY *ihsm_aead_devkey_from_ref(IHSM_AEAD_CTX *c, const char *ref)
{
    IHSM_AEAD_DEVKEY *k;
    ihsm_keyfile kf;
    size_t n;

    if (strncmp(ref, "ihsm:", 5) == 0) {
        n = strlen(ref + 5);
        if (n == 0 || n > IHSM_MAX_LABEL) {
            ihsm_prov_raise(c->prov, IHSM_R_UNKNOWN_KEY,
                            "invalid ihsm key name '%s': expected ihsm:NAME with 1 to %d bytes",
                            ref, IHSM_MAX_LABEL);
            return NULL;
        }
        if ((k = devkey_new(c)) == NULL || (k->name = OPENSSL_strdup(ref + 5)) == NULL) {
            ihsm_aead_devkey_free(k);
            return NULL;
        }
        snprintf(k->desc, sizeof(k->desc), "ihsm key '%s'", k->name);
        return devkey_finish(c, k);
    }
    memset(&kf, 0, sizeof(kf));
    if (ihsm_keyfile_read(ref, &kf) != 0) {
        ihsm_prov_raise(c->prov, IHSM_R_BAD_KEYFILE,
                        "%s: cannot read a masked key file at '%s' (missing, unreadable or "
                        "not an IHSM MASKED KEY): give ihsm:NAME or the file ihsmctl keygen "
                        "--out wrote", c->alg->name, ref);
        ihsm_keyfile_clear(&kf);
        return NULL;
    }
    if (kf.key_type != IHSM_KEY_AES) {
        ihsm_prov_raise(c->prov, IHSM_R_UNSUPPORTED,
                        "%s: the key in '%s' is not a secret key (type %u): make one with "
                        "ihsmctl keygen --type aes-256 --out FILE", c->alg->name, ref,
                        (unsigned)kf.key_type);
        ihsm_keyfile_clear(&kf);
        return NULL;
    }
    k = ihsm_aead_devkey_from_blob(c, kf.blob, kf.blob_len);
    if (k != NULL)
        snprintf(k->desc, sizeof(k->desc), "masked AES key '%.*s'", IHSM_MAX_LABEL, ref);
    ihsm_keyfile_clear(&kf);
    return k;
}

/* ---------------------------------------------------------------- session keys */

/* KEY_LOAD_SESSION. A full device (IHSM_ERR_LIMIT_KEYS) raises nothing:
 * the caller keeps the key in process. */
static int session_load(IHSM_AEAD_CTX *c)
{
    ihsm_result res = { 0 };
    ihsm_wr w;
    ihsm_rd r;
    uint32_t h;
    int st;

    ihsm_wr_init(&w);
    ihsm_wr_u32(&w, IHSM_KEY_AES);
    ihsm_wr_u32(&w, (uint32_t)(c->alg->keylen * 8));
    ihsm_wr_bytes(&w, c->raw, c->alg->keylen);
    ERR_set_mark();
    st = ihsm_prov_call(c->prov, IHSM_CMD_KEY_LOAD_SESSION, &w, &res,
                        "loading a TLS record key into ihsmd");
    ihsm_wr_free(&w); /* cleansed: it held the key */
    if (st == IHSM_ERR_LIMIT_KEYS) {
        ERR_pop_to_mark();
        return st;
    }
    ERR_clear_last_mark();
    if (st != IHSM_OK)
        return st;
    ihsm_rd_init(&r, res.data, res.len);
    h = ihsm_rd_u32(&r);
    ihsm_result_clear(&res);
    if (ihsm_rd_end(&r) != 0 || h == 0) {
        ihsm_prov_raise(c->prov, IHSM_R_DEVICE_ERROR,
                        "loading a TLS record key into ihsmd: malformed answer");
        return IHSM_ERR_MALFORMED;
    }
    c->sess = h;
    IHSM_PROV_DBG("cipher: %s session key loaded as handle 0x%x", c->alg->name, (unsigned)h);
    return IHSM_OK;
}

void ihsm_aead_release_session(IHSM_AEAD_CTX *c)
{
    ihsm_queue *q;
    ihsm_result res = { 0 };
    unsigned char p[4];
    int st;

    if (c->sess == 0)
        return;
    q = __atomic_load_n(&c->prov->queue, __ATOMIC_ACQUIRE);
    if (q != NULL) {
        p[0] = (unsigned char)c->sess;
        p[1] = (unsigned char)(c->sess >> 8);
        p[2] = (unsigned char)(c->sess >> 16);
        p[3] = (unsigned char)(c->sess >> 24);
        /* Waited for, so that an ASYNC job's wait fd is never written after
         * the job has moved on; a failure only means the device freed the
         * key already (restart, lost session). */
        st = ihsm_queue_call(q, IHSM_CMD_KEY_RELEASE, p, sizeof(p), &res);
        IHSM_PROV_DBG("cipher: %s session key 0x%x released: %s", c->alg->name,
                      (unsigned)c->sess, ihsm_status_name(st));
        ihsm_result_clear(&res);
    }
    c->sess = 0;
}

/* ---------------------------------------------------------------- AEAD calls */

static void raise_failure(IHSM_AEAD_CTX *c, int seal, int st)
{
    char what[sizeof(((IHSM_AEAD_DEVKEY *)0)->desc) + 64];

    if (st == IHSM_ERR_AEAD_TAG) {
        ihsm_prov_raise(c->prov, IHSM_R_INVALID_ARGUMENT,
                        "%s decryption in ihsmd failed: the tag does not match (the "
                        "ciphertext, AAD, nonce or tag was altered, or this is not the key it "
                        "was sealed with)", c->alg->name);
        return;
    }
    snprintf(what, sizeof(what), "ihsm %s %s with %s", c->alg->name,
             seal ? "AEAD_SEAL" : "AEAD_OPEN",
             c->dev != NULL ? c->dev->desc : "a TLS record key");
    ihsm_prov_raise_status(c->prov, st, what);
}

int ihsm_aead_device(IHSM_AEAD_CTX *c, int seal, const unsigned char *iv, size_t ivlen,
                     const unsigned char *aad, size_t aad_len, const unsigned char *in,
                     size_t len, unsigned char *out, unsigned char *tag, size_t taglen)
{
    IHSM_AEAD_DEVKEY *k = c->dev;
    uint16_t cmd = seal ? IHSM_CMD_AEAD_SEAL : IHSM_CMD_AEAD_OPEN;
    ihsm_queue *q = ihsm_prov_queue(c->prov);
    ihsm_result res = { 0 };
    int st = IHSM_ERR_BAD_HANDLE, reloaded = 0, resent = 0, round;
    const uint8_t *ans;
    size_t ans_len, want = seal ? len + taglen : len, mark;
    uint32_t h;
    ihsm_rd r;

    if (q == NULL)
        return IHSM_ERR_CONNECT; /* raised */
    if (k != NULL && !(k->usage & (seal ? IHSM_USAGE_ENCRYPT : IHSM_USAGE_DECRYPT))) {
        ihsm_prov_raise(c->prov, IHSM_R_USAGE_NOT_ALLOWED, "%s may not %s", k->desc,
                        seal ? "encrypt" : "decrypt");
        return IHSM_ERR_USAGE;
    }
    /* At most: a load, a call, a reload, a call, a resend. */
    for (round = 0; round < 6; round++) {
        ihsm_req *req;
        ihsm_wr *w;

        h = k != NULL ? __atomic_load_n(&k->handle, __ATOMIC_ACQUIRE) : c->sess;
        if (h == 0) {
            if (k != NULL ? !devkey_load(k, c->alg, 0) : (st = session_load(c)) != IHSM_OK)
                return k != NULL ? IHSM_ERR_BAD_HANDLE : st; /* raised, or LIMIT_KEYS */
            continue;
        }
        if ((req = ihsm_req_new(q, cmd)) == NULL)
            return IHSM_ERR_NOMEM;
        w = ihsm_req_payload(req);
        ihsm_wr_u32(w, h);
        ihsm_wr_u32(w, c->alg->dev_alg);
        ihsm_wr_bytes(w, iv, ivlen);
        ihsm_wr_bytes(w, aad, aad_len);
        mark = ihsm_wr_bytes_begin(w);
        ihsm_wr_raw(w, in, len);
        if (!seal)
            ihsm_wr_raw(w, tag, taglen); /* the device opens ciphertext || tag */
        ihsm_wr_bytes_end(w, mark);
        ihsm_wr_u32(w, (uint32_t)taglen);
        st = ihsm_req_submit(req);
        if (st == IHSM_OK)
            st = ihsm_req_wait(req, &res);
        ihsm_req_free(req);
        if (st == IHSM_ERR_BAD_HANDLE && !reloaded) {
            /* the device restarted, or our session (and its keys) was
             * lost with the connection: load the key again, once */
            reloaded = 1;
            ihsm_result_clear(&res);
            if (k != NULL)
                __atomic_compare_exchange_n(&k->handle, &h, 0, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE);
            else
                c->sess = 0;
            continue;
        }
        if (st == IHSM_ERR_DEVICE_GONE && !resent) {
            /* the queue reconnects; the same request again is harmless */
            resent = 1;
            ihsm_result_clear(&res);
            continue;
        }
        break;
    }
    if (st != IHSM_OK) {
        raise_failure(c, seal, st);
        ihsm_result_clear(&res);
        if (!seal && len != 0)
            OPENSSL_cleanse(out, len);
        return st;
    }
    ihsm_rd_init(&r, res.data, res.len);
    ans = ihsm_rd_bytes(&r, &ans_len, IHSM_MAX_PAYLOAD);
    if (ihsm_rd_end(&r) != 0 || ans_len != want) {
        ihsm_result_clear(&res);
        ihsm_prov_raise(c->prov, IHSM_R_DEVICE_ERROR,
                        "ihsm %s: the device answered %zu bytes for %zu", c->alg->name,
                        ans_len, want);
        return IHSM_ERR_MALFORMED;
    }
    if (len != 0)
        memcpy(out, ans, len);
    if (seal)
        memcpy(tag, ans + len, taglen);
    ihsm_result_clear(&res);
    return IHSM_OK;
}
