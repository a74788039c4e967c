/*
 * ihsmd keys: generate and sign (verified with OpenSSL), named keys across
 * a restart, masked blobs (same handle again, a flipped bit refused, bound
 * to their partition), handles shared within a partition and refused from
 * another, release and delete, BYOK import, ZEROIZE, file modes and the
 * audit log.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "devtest.h"

static struct dt_daemon dd;
static uint8_t pin_a[IHSM_PIN_LEN], pin_b[IHSM_PIN_LEN];
static uint8_t officer_a[IHSM_PIN_LEN], officer_b[IHSM_PIN_LEN]; /* crypto-officer PINs */
static const uint8_t msg[] = "the quick brown fox signs over the lazy dog";

static int setup(void **state)
{
    (void)state;
    if (dt_start(&dd) != 0)
        return -1;
    int fd = dt_connect(&dd);
    int st = dt_init_partition2(fd, "alpha", NULL, 0, pin_a, officer_a);
    if (st == IHSM_OK)
        st = dt_init_partition2(fd, "beta", NULL, 0, pin_b, officer_b);
    close(fd);
    return st == IHSM_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    dt_cleanup(&dd);
    return 0;
}

static int session(const char *part, uint32_t *sid)
{
    int fd = dt_connect(&dd);

    assert_true(fd >= 0);
    assert_int_equal(dt_open_session(fd, part, strcmp(part, "alpha") == 0 ? pin_a : pin_b,
                                     sid), IHSM_OK);
    return fd;
}

/* A crypto-officer session (import, delete, zeroize). */
static int officer_session(const char *part, uint32_t *sid)
{
    int fd = dt_connect(&dd);

    assert_true(fd >= 0);
    assert_int_equal(dt_open_session_role(fd, part,
                                          strcmp(part, "alpha") == 0 ? officer_a : officer_b,
                                          IHSM_ROLE_OFFICER, sid), IHSM_OK);
    return fd;
}

/* Sign msg with handle and check the signature under spki. */
static void sign_ok(int fd, uint32_t sid, uint32_t handle, uint32_t scheme,
                    const uint8_t *spki, size_t spki_len)
{
    uint8_t *sig;
    size_t sig_len;

    assert_int_equal(dt_sign(fd, sid, handle, scheme, msg, sizeof(msg), &sig, &sig_len),
                     IHSM_OK);
    assert_true(dt_verify(spki, spki_len, scheme, msg, sizeof(msg), sig, sig_len));
    /* and not for another message */
    assert_false(dt_verify(spki, spki_len, scheme, msg, sizeof(msg) - 1, sig, sig_len));
    free(sig);
}

static int sign_status(int fd, uint32_t sid, uint32_t handle)
{
    uint8_t *sig;
    size_t len;
    int st = dt_sign(fd, sid, handle, IHSM_SIG_ECDSA, msg, sizeof(msg), &sig, &len);

    free(sig);
    return st;
}

static void path_of(char *out, size_t cap, const char *rel)
{
    snprintf(out, cap, "%s/%s", dd.state, rel);
}

static void test_generate_and_sign(void **state)
{
    (void)state;
    struct dt_key ec, ed, rsa;
    uint32_t sid;
    int fd = session("alpha", &sid);

    assert_int_equal(dt_keygen(fd, sid, IHSM_KEY_EC_P256, 0, 0, "ec", &ec), IHSM_OK);
    sign_ok(fd, sid, ec.handle, IHSM_SIG_ECDSA, ec.pub, ec.pub_len);
    assert_int_equal(dt_keygen(fd, sid, IHSM_KEY_ED25519, 0, 0, "ed", &ed), IHSM_OK);
    sign_ok(fd, sid, ed.handle, IHSM_SIG_ED25519, ed.pub, ed.pub_len);
    assert_int_equal(dt_keygen(fd, sid, IHSM_KEY_RSA, 2048, 0, "rsa", &rsa), IHSM_OK);
    sign_ok(fd, sid, rsa.handle, IHSM_SIG_RSA_PKCS1, rsa.pub, rsa.pub_len);
    sign_ok(fd, sid, rsa.handle, IHSM_SIG_RSA_PSS, rsa.pub, rsa.pub_len);
    /* distinct handles, none 0 */
    assert_int_not_equal(ec.handle, ed.handle);
    assert_int_not_equal(ed.handle, rsa.handle);

    /* KEY_PUBLIC gives the same SPKI */
    {
        uint8_t req[4] = { (uint8_t)ec.handle, (uint8_t)(ec.handle >> 8),
                           (uint8_t)(ec.handle >> 16), (uint8_t)(ec.handle >> 24) };
        uint8_t *r;
        size_t rlen;
        assert_int_equal(dt_call(fd, IHSM_CMD_KEY_PUBLIC, sid, req, 4, &r, &rlen), IHSM_OK);
        assert_int_equal(rlen, 4 + ec.pub_len);
        assert_memory_equal(r + 4, ec.pub, ec.pub_len);
        free(r);
    }
    /* a handle that never existed */
    assert_int_equal(sign_status(fd, sid, 0x7777FFFF), IHSM_ERR_BAD_HANDLE);
    /* a label that cannot be a file name cannot be stored */
    {
        struct dt_key k;
        assert_int_equal(dt_keygen(fd, sid, IHSM_KEY_EC_P256, 0, IHSM_KEYF_PERSIST,
                                   "../evil", &k), IHSM_ERR_BAD_INPUT);
        assert_int_equal(dt_keygen(fd, sid, IHSM_KEY_EC_P256, 0, 0x80, "x", &k),
                         IHSM_ERR_BAD_INPUT);
    }
    dt_key_free(&ec);
    dt_key_free(&ed);
    dt_key_free(&rsa);
    close(fd);
}

static void test_blob_roundtrip_and_bitflip(void **state)
{
    (void)state;
    struct dt_key k;
    uint32_t sa, sb;
    int a = session("alpha", &sa), b = session("beta", &sb);
    uint8_t *r;
    size_t rlen;
    ihsm_wr w;

    assert_int_equal(dt_keygen(a, sa, IHSM_KEY_EC_P256, 0, 0, "blobkey", &k), IHSM_OK);

    /* unmasking the blob of a loaded key gives its handle back */
    ihsm_wr_init(&w);
    ihsm_wr_bytes(&w, k.blob, k.blob_len);
    assert_int_equal(dt_call(a, IHSM_CMD_KEY_UNMASK, sa, w.p, w.len, &r, &rlen), IHSM_OK);
    {
        ihsm_rd rd;
        size_t llen, plen;
        const uint8_t *label;
        ihsm_rd_init(&rd, r, rlen);
        assert_int_equal(ihsm_rd_u32(&rd), k.handle);
        assert_int_equal(ihsm_rd_u32(&rd), IHSM_KEY_EC_P256);
        ihsm_rd_u32(&rd); /* bits */
        assert_int_equal(ihsm_rd_u32(&rd), IHSM_USAGE_SIGN);
        label = ihsm_rd_bytes(&rd, &llen, 128);
        assert_int_equal(llen, 7);
        assert_memory_equal(label, "blobkey", 7);
        ihsm_rd_bytes(&rd, &plen, 4096);
        assert_int_equal(plen, k.pub_len);
        assert_int_equal(ihsm_rd_end(&rd), 0);
    }
    free(r);

    /* the blob is bound to its partition */
    assert_int_equal(dt_call(b, IHSM_CMD_KEY_UNMASK, sb, w.p, w.len, NULL, NULL),
                     IHSM_ERR_BAD_BLOB);

    /* a flipped bit anywhere: first byte, middle, last */
    size_t where[3] = { 0, k.blob_len / 2, k.blob_len - 1 };
    for (int i = 0; i < 3; i++) {
        ihsm_wr_reset(&w);
        k.blob[where[i]] ^= 0x10;
        ihsm_wr_bytes(&w, k.blob, k.blob_len);
        k.blob[where[i]] ^= 0x10;
        assert_int_equal(dt_call(a, IHSM_CMD_KEY_UNMASK, sa, w.p, w.len, NULL, NULL),
                         IHSM_ERR_BAD_BLOB);
    }
    /* KEY_MASK: a fresh blob of the same key, which unmasks to it */
    {
        uint8_t req[4] = { (uint8_t)k.handle, (uint8_t)(k.handle >> 8),
                           (uint8_t)(k.handle >> 16), (uint8_t)(k.handle >> 24) };
        ihsm_rd rd;
        size_t blen;
        const uint8_t *blob;
        assert_int_equal(dt_call(a, IHSM_CMD_KEY_MASK, sa, req, 4, &r, &rlen), IHSM_OK);
        ihsm_rd_init(&rd, r, rlen);
        blob = ihsm_rd_bytes(&rd, &blen, 65536);
        assert_int_equal(ihsm_rd_end(&rd), 0);
        ihsm_wr_reset(&w);
        ihsm_wr_bytes(&w, blob, blen);
        free(r);
        /* a different blob: loaded as a key of its own, the same key pair */
        assert_int_equal(dt_call(b, IHSM_CMD_KEY_UNMASK, sb, w.p, w.len, NULL, NULL),
                         IHSM_ERR_BAD_BLOB);
        assert_int_equal(dt_call(a, IHSM_CMD_KEY_UNMASK, sa, w.p, w.len, &r, &rlen), IHSM_OK);
        ihsm_rd_init(&rd, r, rlen);
        uint32_t h2 = ihsm_rd_u32(&rd);
        free(r);
        sign_ok(a, sa, h2, IHSM_SIG_ECDSA, k.pub, k.pub_len);
    }
    ihsm_wr_free(&w);
    dt_key_free(&k);
    close(a);
    close(b);
}

static void test_handles_shared_in_partition(void **state)
{
    (void)state;
    struct dt_key k;
    uint32_t sa, sa2, sb, h;
    int a = session("alpha", &sa), a2 = session("alpha", &sa2), b = session("beta", &sb);
    uint8_t req[4];
    ihsm_wr w;
    uint8_t *r;
    size_t rlen;

    assert_int_equal(dt_keygen(a, sa, IHSM_KEY_EC_P256, 0, 0, "shared", &k), IHSM_OK);
    h = k.handle;
    /* another connection's session of the same partition may use it */
    sign_ok(a2, sa2, h, IHSM_SIG_ECDSA, k.pub, k.pub_len);
    /* another partition may not */
    assert_int_equal(sign_status(b, sb, h), IHSM_ERR_BAD_HANDLE);

    /* a2 unmasks the blob too: now both sessions hold the key */
    ihsm_wr_init(&w);
    ihsm_wr_bytes(&w, k.blob, k.blob_len);
    assert_int_equal(dt_call(a2, IHSM_CMD_KEY_UNMASK, sa2, w.p, w.len, &r, &rlen), IHSM_OK);
    assert_int_equal(r[0] | r[1] << 8 | r[2] << 16 | (uint32_t)r[3] << 24, h);
    free(r);
    /* a's session closes: a2 still holds it */
    assert_int_equal(dt_call(a, IHSM_CMD_CLOSE_SESSION, sa, NULL, 0, NULL, NULL), IHSM_OK);
    close(a);
    sign_ok(a2, sa2, h, IHSM_SIG_ECDSA, k.pub, k.pub_len);
    /* a2 releases it: nobody holds it, it is gone */
    for (int i = 0; i < 4; i++)
        req[i] = (uint8_t)(h >> (8 * i));
    assert_int_equal(dt_call(a2, IHSM_CMD_KEY_RELEASE, sa2, req, 4, NULL, NULL), IHSM_OK);
    assert_int_equal(sign_status(a2, sa2, h), IHSM_ERR_BAD_HANDLE);
    assert_int_equal(dt_call(a2, IHSM_CMD_KEY_RELEASE, sa2, req, 4, NULL, NULL),
                     IHSM_ERR_BAD_HANDLE);
    /* unmasked again it gets a new handle: the old one never comes back */
    assert_int_equal(dt_call(a2, IHSM_CMD_KEY_UNMASK, sa2, w.p, w.len, &r, &rlen), IHSM_OK);
    uint32_t h2 = r[0] | r[1] << 8 | r[2] << 16 | (uint32_t)r[3] << 24;
    free(r);
    assert_int_not_equal(h2, h);
    assert_int_equal(sign_status(a2, sa2, h), IHSM_ERR_BAD_HANDLE);
    sign_ok(a2, sa2, h2, IHSM_SIG_ECDSA, k.pub, k.pub_len);
    /* delete by handle (the crypto officer's) frees it at once */
    for (int i = 0; i < 4; i++)
        req[i] = (uint8_t)(h2 >> (8 * i));
    ihsm_wr_reset(&w);
    ihsm_wr_u32(&w, h2);
    ihsm_wr_bytes(&w, "", 0);
    {
        uint32_t so;
        int o = officer_session("alpha", &so);

        assert_int_equal(dt_call(o, IHSM_CMD_KEY_DELETE, so, w.p, w.len, NULL, NULL), IHSM_OK);
        assert_int_equal(sign_status(a2, sa2, h2), IHSM_ERR_BAD_HANDLE);
        assert_int_equal(dt_call(o, IHSM_CMD_KEY_DELETE, so, w.p, w.len, NULL, NULL),
                         IHSM_ERR_BAD_HANDLE);
        close(o);
    }
    ihsm_wr_free(&w);
    dt_key_free(&k);
    close(a2);
    close(b);
}

static int find_key(int fd, uint32_t sid, const char *name, uint32_t *handle,
                    uint8_t **pub, size_t *pub_len)
{
    ihsm_wr w;
    uint8_t *r;
    size_t rlen;
    int st;

    ihsm_wr_init(&w);
    dt_wr_str(&w, name);
    st = dt_call(fd, IHSM_CMD_KEY_FIND, sid, w.p, w.len, &r, &rlen);
    ihsm_wr_free(&w);
    if (st == IHSM_OK) {
        ihsm_rd rd;
        const uint8_t *p;
        size_t plen;
        ihsm_rd_init(&rd, r, rlen);
        *handle = ihsm_rd_u32(&rd);
        ihsm_rd_u32(&rd);
        ihsm_rd_u32(&rd);
        ihsm_rd_u32(&rd);
        p = ihsm_rd_bytes(&rd, &plen, 65536);
        assert_int_equal(ihsm_rd_end(&rd), 0);
        if (pub != NULL) {
            *pub = malloc(plen);
            memcpy(*pub, p, plen);
            *pub_len = plen;
        }
    }
    free(r);
    return st;
}

/* KEY_LIST names, comma separated. */
static void list_keys(int fd, uint32_t sid, char *out, size_t cap)
{
    uint8_t *r;
    size_t rlen;
    ihsm_rd rd;
    uint32_t n;

    out[0] = '\0';
    assert_int_equal(dt_call(fd, IHSM_CMD_KEY_LIST, sid, NULL, 0, &r, &rlen), IHSM_OK);
    ihsm_rd_init(&rd, r, rlen);
    n = ihsm_rd_u32(&rd);
    for (uint32_t i = 0; i < n; i++) {
        size_t len;
        const uint8_t *name = ihsm_rd_bytes(&rd, &len, 64);
        ihsm_rd_u32(&rd);
        ihsm_rd_u32(&rd);
        ihsm_rd_u32(&rd);
        assert_false(rd.err);
        snprintf(out + strlen(out), cap - strlen(out), "%s%.*s", i ? "," : "", (int)len,
                 (const char *)name);
    }
    assert_int_equal(ihsm_rd_end(&rd), 0);
    free(r);
}

static void test_named_key_survives_restart(void **state)
{
    (void)state;
    struct dt_key k, dup;
    uint32_t sid, h, h2;
    uint8_t *pub;
    size_t pub_len;
    char names[512], path[600];
    int fd = session("alpha", &sid);

    assert_int_equal(dt_keygen(fd, sid, IHSM_KEY_EC_P256, 0, IHSM_KEYF_PERSIST, "tls", &k),
                     IHSM_OK);
    assert_int_equal(dt_keygen(fd, sid, IHSM_KEY_ED25519, 0, IHSM_KEYF_PERSIST, "tls", &dup),
                     IHSM_ERR_EXISTS);
    assert_int_equal(dt_keygen(fd, sid, IHSM_KEY_ED25519, 0, IHSM_KEYF_PERSIST, "other", &dup),
                     IHSM_OK);
    list_keys(fd, sid, names, sizeof(names));
    assert_string_equal(names, "other,tls");
    path_of(path, sizeof(path), "partitions/alpha/keys/tls.key");
    assert_true(dt_exists(path));
    assert_int_equal(dt_file_mode(path), 0600);
    /* KEY_FIND of a loaded key: its handle */
    assert_int_equal(find_key(fd, sid, "tls", &h, NULL, NULL), IHSM_OK);
    assert_int_equal(h, k.handle);
    assert_int_equal(find_key(fd, sid, "nope", &h, NULL, NULL), IHSM_ERR_NOT_FOUND);
    assert_int_equal(find_key(fd, sid, "../tls", &h, NULL, NULL), IHSM_ERR_BAD_INPUT);
    close(fd);

    assert_int_equal(dt_restart(&dd), 0);
    fd = session("alpha", &sid);
    /* handles died with the old process */
    assert_int_equal(sign_status(fd, sid, k.handle), IHSM_ERR_BAD_HANDLE);
    assert_int_equal(find_key(fd, sid, "tls", &h2, &pub, &pub_len), IHSM_OK);
    assert_int_equal(pub_len, k.pub_len);
    assert_memory_equal(pub, k.pub, pub_len); /* the same key */
    sign_ok(fd, sid, h2, IHSM_SIG_ECDSA, k.pub, k.pub_len);
    free(pub);
    list_keys(fd, sid, names, sizeof(names));
    assert_string_equal(names, "other,tls");

    /* delete by name (the crypto officer's): the file goes and so does the
     * loaded key */
    {
        ihsm_wr w;
        uint32_t so;
        int o = officer_session("alpha", &so);

        ihsm_wr_init(&w);
        ihsm_wr_u32(&w, 0);
        dt_wr_str(&w, "tls");
        assert_int_equal(dt_call(o, IHSM_CMD_KEY_DELETE, so, w.p, w.len, NULL, NULL),
                         IHSM_OK);
        assert_int_equal(dt_call(o, IHSM_CMD_KEY_DELETE, so, w.p, w.len, NULL, NULL),
                         IHSM_ERR_NOT_FOUND);
        ihsm_wr_free(&w);
        close(o);
    }
    assert_false(dt_exists(path));
    assert_int_equal(sign_status(fd, sid, h2), IHSM_ERR_BAD_HANDLE);
    assert_int_equal(find_key(fd, sid, "tls", &h, NULL, NULL), IHSM_ERR_NOT_FOUND);
    list_keys(fd, sid, names, sizeof(names));
    assert_string_equal(names, "other");
    dt_key_free(&k);
    dt_key_free(&dup);
    close(fd);
}

/* BYOK: wrap a P-256 key to the device's import key as a client would. */
static uint8_t *byok_wrap(const uint8_t *spki, size_t spki_len, EVP_PKEY *key, size_t *out_len)
{
    const uint8_t *p = spki;
    EVP_PKEY *ik = d2i_PUBKEY(NULL, &p, (long)spki_len);
    EVP_PKEY_CTX *pc = NULL;
    EVP_CIPHER_CTX *cc = NULL;
    uint8_t kek[32], *pkcs8 = NULL, *out = NULL;
    size_t rsa_len = 0;
    int p8len, n1 = 0, n2 = 0;

    assert_non_null(ik);
    assert_int_equal(EVP_PKEY_get_bits(ik), 3072);
    {
        PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
        assert_non_null(p8);
        p8len = i2d_PKCS8_PRIV_KEY_INFO(p8, &pkcs8);
        PKCS8_PRIV_KEY_INFO_free(p8);
    }
    assert_true(p8len > 0);
    assert_int_equal(RAND_bytes(kek, sizeof(kek)), 1);

    pc = EVP_PKEY_CTX_new(ik, NULL);
    assert_int_equal(EVP_PKEY_encrypt_init(pc), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(pc, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_encrypt(pc, NULL, &rsa_len, kek, sizeof(kek)), 1);
    out = malloc(rsa_len + (size_t)p8len + 64);
    assert_int_equal(EVP_PKEY_encrypt(pc, out, &rsa_len, kek, sizeof(kek)), 1);
    assert_int_equal(rsa_len, 384);

    cc = EVP_CIPHER_CTX_new();
    EVP_CIPHER_CTX_set_flags(cc, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    assert_int_equal(EVP_EncryptInit_ex(cc, EVP_aes_256_wrap_pad(), NULL, kek, NULL), 1);
    assert_int_equal(EVP_EncryptUpdate(cc, out + rsa_len, &n1, pkcs8, p8len), 1);
    assert_int_equal(EVP_EncryptFinal_ex(cc, out + rsa_len + n1, &n2), 1);
    *out_len = rsa_len + (size_t)n1 + (size_t)n2;

    EVP_CIPHER_CTX_free(cc);
    EVP_PKEY_CTX_free(pc);
    EVP_PKEY_free(ik);
    OPENSSL_clear_free(pkcs8, (size_t)p8len);
    OPENSSL_cleanse(kek, sizeof(kek));
    return out;
}

static void test_import(void **state)
{
    (void)state;
    uint32_t sid, h;
    uint8_t *r, *wrapped, *spki = NULL;
    size_t rlen, wlen;
    int spki_len;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    ihsm_wr w;
    ihsm_rd rd;
    uint32_t su;
    int fd = officer_session("alpha", &sid), u = session("alpha", &su);

    assert_non_null(key);
    assert_int_equal(dt_call(fd, IHSM_CMD_GET_IMPORT_KEY, sid, NULL, 0, &r, &rlen), IHSM_OK);
    assert_true(rlen > 4);
    wrapped = byok_wrap(r + 4, rlen - 4, key, &wlen);
    free(r);

    ihsm_wr_init(&w);
    ihsm_wr_u32(&w, IHSM_KEY_EC_P256);
    ihsm_wr_u32(&w, 0);
    ihsm_wr_u32(&w, 0);
    ihsm_wr_u32(&w, IHSM_KEYF_PERSIST);
    dt_wr_str(&w, "imported");
    ihsm_wr_bytes(&w, wrapped, wlen);
    assert_int_equal(dt_call(fd, IHSM_CMD_KEY_IMPORT, sid, w.p, w.len, &r, &rlen), IHSM_OK);
    ihsm_rd_init(&rd, r, rlen);
    h = ihsm_rd_u32(&rd);
    free(r);
    /* a damaged wrapping is refused and stores nothing */
    wrapped[wlen - 1] ^= 1;
    ihsm_wr_reset(&w);
    ihsm_wr_u32(&w, IHSM_KEY_EC_P256);
    ihsm_wr_u32(&w, 0);
    ihsm_wr_u32(&w, 0);
    ihsm_wr_u32(&w, IHSM_KEYF_PERSIST);
    dt_wr_str(&w, "damaged");
    ihsm_wr_bytes(&w, wrapped, wlen);
    assert_int_not_equal(dt_call(fd, IHSM_CMD_KEY_IMPORT, sid, w.p, w.len, NULL, NULL), IHSM_OK);
    {
        char path[600];
        path_of(path, sizeof(path), "partitions/alpha/keys/damaged.key");
        assert_false(dt_exists(path));
    }
    ihsm_wr_free(&w);
    free(wrapped);

    /* the device signs (for the user) with the key we hold the public half of */
    spki_len = i2d_PUBKEY(key, &spki);
    assert_true(spki_len > 0);
    sign_ok(u, su, h, IHSM_SIG_ECDSA, spki, (size_t)spki_len);
    OPENSSL_free(spki);
    EVP_PKEY_free(key);
    close(fd);
    close(u);
}

static void test_zeroize(void **state)
{
    (void)state;
    struct dt_key stored, loose;
    uint32_t sid, sb, h;
    char path[600], names[512];
    int fd = session("alpha", &sid), b = session("beta", &sb);
    uint32_t so;
    int o = officer_session("alpha", &so);
    struct dt_key bk;
    DIR *dir;
    struct dirent *de;
    int files = 0;

    assert_int_equal(dt_keygen(fd, sid, IHSM_KEY_EC_P256, 0, IHSM_KEYF_PERSIST, "doomed",
                               &stored), IHSM_OK);
    assert_int_equal(dt_keygen(fd, sid, IHSM_KEY_EC_P256, 0, 0, "loose", &loose), IHSM_OK);
    assert_int_equal(dt_keygen(b, sb, IHSM_KEY_EC_P256, 0, IHSM_KEYF_PERSIST, "survivor", &bk),
                     IHSM_OK);
    assert_int_equal(sign_status(fd, sid, stored.handle), IHSM_OK);

    /* the user may not, the crypto officer may */
    assert_int_equal(dt_call(fd, IHSM_CMD_ZEROIZE, sid, NULL, 0, NULL, NULL),
                     IHSM_ERR_PERMISSION);
    assert_int_equal(sign_status(fd, sid, stored.handle), IHSM_OK);
    assert_int_equal(dt_call(o, IHSM_CMD_ZEROIZE, so, NULL, 0, NULL, NULL), IHSM_OK);
    assert_int_equal(sign_status(fd, sid, stored.handle), IHSM_ERR_BAD_HANDLE);
    assert_int_equal(sign_status(fd, sid, loose.handle), IHSM_ERR_BAD_HANDLE);
    assert_int_equal(find_key(fd, sid, "doomed", &h, NULL, NULL), IHSM_ERR_NOT_FOUND);
    list_keys(fd, sid, names, sizeof(names));
    assert_string_equal(names, "");
    path_of(path, sizeof(path), "partitions/alpha/keys");
    dir = opendir(path);
    assert_non_null(dir);
    while ((de = readdir(dir)) != NULL)
        if (de->d_name[0] != '.')
            files++;
    closedir(dir);
    assert_int_equal(files, 0);
    /* the partition has a new id: the blobs of its old keys are dead too */
    {
        ihsm_wr w;

        ihsm_wr_init(&w);
        ihsm_wr_bytes(&w, stored.blob, stored.blob_len);
        assert_int_equal(dt_call(fd, IHSM_CMD_KEY_UNMASK, sid, w.p, w.len, NULL, NULL),
                         IHSM_ERR_BAD_BLOB);
        ihsm_wr_reset(&w);
        ihsm_wr_bytes(&w, loose.blob, loose.blob_len);
        assert_int_equal(dt_call(fd, IHSM_CMD_KEY_UNMASK, sid, w.p, w.len, NULL, NULL),
                         IHSM_ERR_BAD_BLOB);
        ihsm_wr_free(&w);
    }
    /* and new keys work under the new id, across a restart of the partition
     * (checked in test_device_lifecycle) */
    {
        struct dt_key fresh;
        assert_int_equal(dt_keygen(fd, sid, IHSM_KEY_EC_P256, 0, 0, "fresh", &fresh), IHSM_OK);
        sign_ok(fd, sid, fresh.handle, IHSM_SIG_ECDSA, fresh.pub, fresh.pub_len);
        dt_key_free(&fresh);
    }

    /* the other partition is untouched */
    assert_int_equal(sign_status(b, sb, bk.handle), IHSM_OK);
    path_of(path, sizeof(path), "partitions/beta/keys/survivor.key");
    assert_true(dt_exists(path));
    dt_key_free(&stored);
    dt_key_free(&loose);
    dt_key_free(&bk);
    close(fd);
    close(b);
    close(o);
}

static void test_files_and_audit(void **state)
{
    (void)state;
    static const char *files[] = { "root.key", "serial", "audit.log", "import.key",
        "partitions/alpha/partition.conf", "partitions/beta/keys/survivor.key" };
    static const char *dirs[] = { "", "partitions", "partitions/alpha",
        "partitions/alpha/keys" };
    char path[600];
    uint8_t wrong[IHSM_PIN_LEN];
    uint32_t sid;
    int fd;

    /* one wrong PIN, for the audit log */
    memcpy(wrong, pin_b, sizeof(wrong));
    wrong[0] ^= 0x80;
    fd = dt_connect(&dd);
    assert_int_equal(dt_open_session(fd, "beta", wrong, &sid), IHSM_ERR_AUTH);
    close(fd);

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        path_of(path, sizeof(path), files[i]);
        if (dt_file_mode(path) != 0600)
            fprintf(stderr, "%s: mode %o\n", path, dt_file_mode(path));
        assert_int_equal(dt_file_mode(path), 0600);
    }
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        path_of(path, sizeof(path), dirs[i]);
        assert_int_equal(dt_file_mode(path), 0700);
    }
    path_of(path, sizeof(path), "root.key");
    {
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, 32);
    }

    path_of(path, sizeof(path), "audit.log");
    char *audit = dt_read_text(path);
    assert_non_null(audit);
    assert_non_null(strstr(audit, "event=generate partition=alpha key=tls outcome=ok"));
    assert_non_null(strstr(audit, "event=delete partition=alpha key=tls outcome=ok"));
    assert_non_null(strstr(audit, "event=import partition=alpha key=imported outcome=ok"));
    assert_non_null(strstr(audit, "event=unmask partition=alpha"));
    assert_non_null(strstr(audit, "event=zeroize partition=alpha"));
    assert_non_null(strstr(audit, "event=auth_failure partition=beta"));
    assert_non_null(strstr(audit, "event=session_open partition=alpha"));
    assert_non_null(strstr(audit, "event=session_close partition=alpha"));
    {
        char want[64];
        snprintf(want, sizeof(want), "uid=%ld pid=", (long)geteuid());
        assert_non_null(strstr(audit, want));
    }
    /* every line is complete */
    for (char *line = audit; *line != '\0';) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        assert_non_null(strstr(line, " event="));
        assert_non_null(strstr(line, " outcome="));
        line = nl + 1;
    }
    free(audit);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_and_sign),
        cmocka_unit_test(test_blob_roundtrip_and_bitflip),
        cmocka_unit_test(test_handles_shared_in_partition),
        cmocka_unit_test(test_named_key_survives_restart),
        cmocka_unit_test(test_import),
        cmocka_unit_test(test_zeroize),
        cmocka_unit_test(test_files_and_audit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
