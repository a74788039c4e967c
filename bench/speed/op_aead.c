/*
 * seal rows: AES-256-GCM and ChaCha20-Poly1305 over 64 B, 1 KiB and 16 KiB
 * records as libssl seals TLS 1.3 records: the key set once per slot, a
 * fresh nonce per record (EVP_EncryptInit_ex2 with only the IV), the 5-byte
 * record header as AAD, a 16-byte tag.
 */
#include <string.h>
#include <openssl/rand.h>

#include "speed.h"

#define IV_LEN 12
#define TAG_LEN 16
#define AAD_LEN 5

struct aead_slot {
    struct sp_slot base;
    EVP_CIPHER_CTX *ctx;
    uint64_t seq;
    unsigned char iv[IV_LEN];
    unsigned char aad[AAD_LEN];
    unsigned char tag[TAG_LEN];
    unsigned char *in, *out; /* row size each; out has room for a block more */
    size_t outlen;
};

static const char *aead_missing(const struct sp_row *row, OSSL_LIB_CTX *lc, const char *propq)
{
    EVP_CIPHER *c = EVP_CIPHER_fetch(lc, row->algname, propq);

    EVP_CIPHER_free(c);
    return c == NULL ? row->algname : NULL;
}

static int aead_side_init(struct sp_side *s)
{
    if ((s->cipher = EVP_CIPHER_fetch(s->lc, s->row->algname, s->propq)) == NULL) {
        sp_ossl_err("%s: no %s cipher on the %s side", s->row->name, s->row->algname, s->label);
        return 0;
    }
    if (RAND_bytes_ex(s->sw, s->aead_key, sizeof(s->aead_key), 0) != 1) {
        sp_ossl_err("%s: no random key", s->row->name);
        EVP_CIPHER_free(s->cipher);
        s->cipher = NULL;
        return 0;
    }
    return 1;
}

static void aead_side_fini(struct sp_side *s)
{
    EVP_CIPHER_free(s->cipher);
    s->cipher = NULL;
    OPENSSL_cleanse(s->aead_key, sizeof(s->aead_key));
}

static void aead_slot_free(struct sp_slot *sl)
{
    struct aead_slot *as = (struct aead_slot *)sl;

    if (as == NULL)
        return;
    EVP_CIPHER_CTX_free(as->ctx);
    OPENSSL_free(as->in);
    OPENSSL_free(as->out);
    OPENSSL_free(as);
}

static struct sp_slot *aead_slot_new(struct sp_side *s, unsigned idx)
{
    struct aead_slot *as = OPENSSL_zalloc(sizeof(*as));
    size_t n = s->row->size;

    if (as == NULL)
        return NULL;
    as->base.side = s;
    as->base.idx = idx;
    /* per-slot nonce prefix: no two slots ever use the same nonce */
    memcpy(as->iv, &idx, sizeof(idx));
    as->aad[0] = 0x17; /* application_data, TLS 1.2 legacy version, length */
    as->aad[1] = 0x03;
    as->aad[2] = 0x03;
    as->aad[3] = (unsigned char)((n + TAG_LEN) >> 8);
    as->aad[4] = (unsigned char)(n + TAG_LEN);
    if ((as->in = OPENSSL_malloc(n)) == NULL || (as->out = OPENSSL_malloc(n + 32)) == NULL
        || (as->ctx = EVP_CIPHER_CTX_new()) == NULL
        || !EVP_EncryptInit_ex2(as->ctx, s->cipher, s->aead_key, NULL, NULL)) {
        sp_ossl_err("%s: cannot set up a %s cipher context", s->row->name, s->label);
        aead_slot_free(&as->base);
        return NULL;
    }
    memset(as->in, 'p', n);
    return &as->base;
}

static int aead_op(struct sp_slot *sl)
{
    struct aead_slot *as = (struct aead_slot *)sl;
    int n = 0, m = 0;

    as->seq++;
    memcpy(as->iv + 4, &as->seq, sizeof(as->seq));
    if (!EVP_EncryptInit_ex2(as->ctx, NULL, NULL, as->iv, NULL)
        || !EVP_EncryptUpdate(as->ctx, NULL, &n, as->aad, AAD_LEN)
        || !EVP_EncryptUpdate(as->ctx, as->out, &n, as->in, (int)sl->side->row->size)
        || !EVP_EncryptFinal_ex(as->ctx, as->out + n, &m)
        || EVP_CIPHER_CTX_ctrl(as->ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, as->tag) <= 0)
        return 0;
    as->outlen = (size_t)n + (size_t)m;
    return 1;
}

/* The side's record opens with OpenSSL's default provider. */
static int check_side(struct sp_side *s)
{
    struct aead_slot *as = (struct aead_slot *)aead_slot_new(s, 0);
    EVP_CIPHER *c = NULL;
    EVP_CIPHER_CTX *d = NULL;
    unsigned char *plain = NULL;
    size_t size = s->row->size;
    int n = 0, m = 0, ok = 0;

    if (as == NULL)
        return 0;
    s->check_ops++;
    if (!aead_op(&as->base)) {
        sp_ossl_err("%s: the %s side could not seal", s->row->name, s->label);
        goto out;
    }
    if (as->outlen != size) {
        fprintf(stderr, "ihsm-speed: %s: the %s side sealed %zu bytes into %zu\n",
                s->row->name, s->label, size, as->outlen);
        goto out;
    }
    if ((c = EVP_CIPHER_fetch(s->sw, s->row->algname, NULL)) == NULL
        || (d = EVP_CIPHER_CTX_new()) == NULL || (plain = OPENSSL_malloc(size + 32)) == NULL
        || !EVP_DecryptInit_ex2(d, c, s->aead_key, as->iv, NULL)
        || !EVP_DecryptUpdate(d, NULL, &n, as->aad, AAD_LEN)
        || !EVP_DecryptUpdate(d, plain, &n, as->out, (int)size)
        || EVP_CIPHER_CTX_ctrl(d, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, as->tag) <= 0) {
        sp_ossl_err("%s: cannot set up the default provider's %s", s->row->name,
                    s->row->algname);
        goto out;
    }
    ok = EVP_DecryptFinal_ex(d, plain + n, &m) == 1 && (size_t)(n + m) == size
         && memcmp(plain, as->in, size) == 0;
    if (!ok)
        fprintf(stderr, "ihsm-speed: %s: a record sealed through the %s side does not open "
                "with OpenSSL's default provider (tag or plaintext mismatch)\n", s->row->name,
                s->label);
out:
    OPENSSL_free(plain);
    EVP_CIPHER_CTX_free(d);
    EVP_CIPHER_free(c);
    aead_slot_free(&as->base);
    return ok;
}

static int aead_check(struct sp_side *ihsm, struct sp_side *base)
{
    return check_side(ihsm) && check_side(base);
}

const struct sp_op_ops sp_aead_ops = {
    .missing = aead_missing,
    .side_init = aead_side_init,
    .side_fini = aead_side_fini,
    .slot_new = aead_slot_new,
    .slot_free = aead_slot_free,
    .op = aead_op,
    .check = aead_check,
};
