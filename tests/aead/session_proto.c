/*
 * KEY_LOAD_SESSION on the wire, against a real ihsmd (evp.sh runs it):
 * what the device refuses (type, size, a key of the wrong length, trailing
 * bytes), that a loaded session key seals like OpenSSL does, that each load
 * is a new handle even for the same bytes, that KEY_RELEASE frees it at
 * once (keys_loaded, then BAD_HANDLE) and that closing the connection frees
 * the rest.
 *
 * Exit: 0 pass, 1 fail. The device comes from IHSM_SOCKET / IHSM_CREDENTIAL.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ihsm_offload.h"

static int failures;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);              \
            fprintf(stderr, __VA_ARGS__);                                     \
            fprintf(stderr, "\n");                                            \
            failures++;                                                       \
        }                                                                     \
    } while (0)

static ihsm_queue *new_queue(void)
{
    ihsm_queue_config cfg = { 0 };
    ihsm_queue *q = NULL;

    if (ihsm_queue_new(&cfg, &q) != IHSM_OK || ihsm_queue_connect(q) != IHSM_OK) {
        fprintf(stderr, "cannot reach the device: %s\n", q ? ihsm_queue_last_error(q) : "");
        return NULL;
    }
    return q;
}

static int call(ihsm_queue *q, uint16_t cmd, const ihsm_wr *w, ihsm_result *res)
{
    return ihsm_queue_call(q, cmd, w != NULL ? w->p : NULL, w != NULL ? w->len : 0, res);
}

/* KEY_LOAD_SESSION with these fields (extra: trailing bytes); handle out. */
static int load(ihsm_queue *q, uint32_t type, uint32_t bits, const uint8_t *key, size_t len,
                int extra, uint32_t *handle)
{
    ihsm_result res = { 0 };
    ihsm_wr w;
    ihsm_rd r;
    int st;

    ihsm_wr_init(&w);
    ihsm_wr_u32(&w, type);
    ihsm_wr_u32(&w, bits);
    ihsm_wr_bytes(&w, key, len);
    if (extra)
        ihsm_wr_u32(&w, 0);
    st = call(q, IHSM_CMD_KEY_LOAD_SESSION, &w, &res);
    ihsm_wr_free(&w);
    if (st == IHSM_OK) {
        ihsm_rd_init(&r, res.data, res.len);
        *handle = ihsm_rd_u32(&r);
        if (ihsm_rd_end(&r) != 0 || *handle == 0)
            st = IHSM_ERR_MALFORMED;
    }
    ihsm_result_clear(&res);
    return st;
}

static int seal(ihsm_queue *q, uint32_t h, const uint8_t iv[12], const uint8_t *in, size_t len,
                uint8_t *out)
{
    ihsm_result res = { 0 };
    ihsm_wr w;
    ihsm_rd r;
    const uint8_t *ct;
    size_t n;
    int st;

    ihsm_wr_init(&w);
    ihsm_wr_u32(&w, h);
    ihsm_wr_u32(&w, IHSM_AEAD_AES_GCM);
    ihsm_wr_bytes(&w, iv, 12);
    ihsm_wr_bytes(&w, "aad", 3);
    ihsm_wr_bytes(&w, in, len);
    ihsm_wr_u32(&w, 16);
    st = call(q, IHSM_CMD_AEAD_SEAL, &w, &res);
    ihsm_wr_free(&w);
    if (st == IHSM_OK) {
        ihsm_rd_init(&r, res.data, res.len);
        ct = ihsm_rd_bytes(&r, &n, IHSM_MAX_PAYLOAD);
        if (ihsm_rd_end(&r) != 0 || n != len + 16)
            st = IHSM_ERR_MALFORMED;
        else
            memcpy(out, ct, n);
    }
    ihsm_result_clear(&res);
    return st;
}

static int release(ihsm_queue *q, uint32_t h)
{
    ihsm_result res = { 0 };
    ihsm_wr w;
    int st;

    ihsm_wr_init(&w);
    ihsm_wr_u32(&w, h);
    st = call(q, IHSM_CMD_KEY_RELEASE, &w, &res);
    ihsm_wr_free(&w);
    ihsm_result_clear(&res);
    return st;
}

static long long keys_loaded(ihsm_queue *q)
{
    ihsm_result res = { 0 };
    ihsm_rd r;
    long long v = -1;
    uint32_t n;

    if (call(q, IHSM_CMD_STATS, NULL, &res) == IHSM_OK) {
        ihsm_rd_init(&r, res.data, res.len);
        n = ihsm_rd_u32(&r);
        for (uint32_t i = 0; i < n && !r.err; i++) {
            size_t len;
            const uint8_t *name = ihsm_rd_bytes(&r, &len, 64);
            uint64_t val = ihsm_rd_u64(&r);

            if (name != NULL && len == 11 && memcmp(name, "keys_loaded", 11) == 0)
                v = (long long)val;
        }
    }
    ihsm_result_clear(&res);
    return v;
}

/* The default provider's AES-256-GCM of the same message. */
static int expected(const uint8_t key[32], const uint8_t iv[12], const uint8_t *in, size_t len,
                    uint8_t *out)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n, ok;

    ok = c != NULL && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv)
         && EVP_EncryptUpdate(c, NULL, &n, (const uint8_t *)"aad", 3)
         && EVP_EncryptUpdate(c, out, &n, in, (int)len) && EVP_EncryptFinal_ex(c, out + n, &n)
         && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, out + len) > 0;
    EVP_CIPHER_CTX_free(c);
    return ok;
}

int main(void)
{
    ihsm_queue *q = new_queue(), *q2 = new_queue();
    uint8_t key[32], iv[12], in[1000], got[1016], want[1016];
    uint32_t h = 0, h2 = 0, h3 = 0;
    long long k0, k1;
    int st;

    if (q == NULL || q2 == NULL)
        return 1;
    RAND_bytes(key, sizeof(key));
    RAND_bytes(iv, sizeof(iv));
    RAND_bytes(in, sizeof(in));
    k0 = keys_loaded(q);
    CHECK(k0 >= 0, "no keys_loaded");

    /* refusals */
    CHECK((st = load(q, IHSM_KEY_RSA, 2048, key, 32, 0, &h)) == IHSM_ERR_UNSUPPORTED,
          "an RSA session key: %s", ihsm_status_name(st));
    CHECK((st = load(q, IHSM_KEY_AES, 192, key, 24, 0, &h)) == IHSM_ERR_UNSUPPORTED,
          "AES-192: %s", ihsm_status_name(st));
    CHECK((st = load(q, IHSM_KEY_AES, 256, key, 16, 0, &h)) == IHSM_ERR_BAD_INPUT,
          "256 bits with 16 bytes: %s", ihsm_status_name(st));
    CHECK((st = load(q, IHSM_KEY_AES, 256, key, 32, 1, &h)) == IHSM_ERR_MALFORMED,
          "trailing bytes: %s", ihsm_status_name(st));
    CHECK(keys_loaded(q) == k0, "a refused load left a key behind");

    /* a session key seals as OpenSSL does */
    CHECK((st = load(q, IHSM_KEY_AES, 256, key, 32, 0, &h)) == IHSM_OK, "load: %s",
          ihsm_status_name(st));
    CHECK(seal(q, h, iv, in, sizeof(in), got) == IHSM_OK, "seal with the session key");
    CHECK(expected(key, iv, in, sizeof(in), want) && memcmp(got, want, sizeof(got)) == 0,
          "the session key's seal differs from the default provider's");
    /* the same bytes again: a new handle, a second key */
    CHECK(load(q, IHSM_KEY_AES, 256, key, 32, 0, &h2) == IHSM_OK && h2 != h,
          "a second load of the same key shares handle %08x", h);
    /* another connection's session loads its own */
    CHECK(load(q2, IHSM_KEY_AES, 256, key, 32, 0, &h3) == IHSM_OK, "load on a second session");
    k1 = keys_loaded(q);
    CHECK(k1 == k0 + 3, "3 session keys: keys_loaded %lld -> %lld", k0, k1);

    /* release: gone at once */
    CHECK(release(q, h) == IHSM_OK, "release");
    CHECK(keys_loaded(q) == k0 + 2, "released, keys_loaded %lld", keys_loaded(q));
    CHECK((st = seal(q, h, iv, in, sizeof(in), got)) == IHSM_ERR_BAD_HANDLE,
          "seal with a released session key: %s", ihsm_status_name(st));
    /* closing a connection frees what its session still held */
    ihsm_queue_free(q2);
    for (int i = 0; i < 100 && keys_loaded(q) != k0 + 1; i++)
        usleep(10000);
    CHECK(keys_loaded(q) == k0 + 1, "a closed session's key stayed: keys_loaded %lld",
          keys_loaded(q));
    CHECK(release(q, h2) == IHSM_OK && keys_loaded(q) == k0, "the last release");
    ihsm_queue_free(q);
    if (failures != 0)
        return 1;
    printf("PASS: KEY_LOAD_SESSION\n");
    return 0;
}
