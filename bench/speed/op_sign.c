/*
 * sign rows: RSA PKCS#1 v1.5 and ECDSA over a SHA-256 digest with a
 * signature context set up once per slot (EVP_PKEY_sign, as `openssl
 * speed` does), Ed25519 over a 130-byte message (the size of a TLS 1.3
 * CertificateVerify input) with a DigestSign context set up once.
 */
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "speed.h"

#define ED_MSG_LEN 130
#define SIG_MAX 1024 /* RSA-3072: 384, ECDSA P-384 DER: 104 */

struct sign_slot {
    struct sp_slot base;
    EVP_PKEY_CTX *pctx;   /* RSA, ECDSA */
    EVP_MD_CTX *mctx;     /* Ed25519 */
    size_t siglen;
    unsigned char sig[SIG_MAX];
};

/* What every slot signs: a digest of a fixed message, or the message. */
static unsigned char tbs_digest[32], tbs_msg[ED_MSG_LEN];

static int is_eddsa(const struct sp_row *row)
{
    return strcmp(row->keytype, "ED25519") == 0;
}

static const unsigned char *tbs(const struct sp_row *row, size_t *len)
{
    *len = is_eddsa(row) ? sizeof(tbs_msg) : sizeof(tbs_digest);
    return is_eddsa(row) ? tbs_msg : tbs_digest;
}

static const char *sign_missing(const struct sp_row *row, OSSL_LIB_CTX *lc, const char *propq)
{
    EVP_SIGNATURE *sig = EVP_SIGNATURE_fetch(lc, row->algname, propq);
    EVP_KEYMGMT *km = EVP_KEYMGMT_fetch(lc, row->keytype, propq);
    const char *missing = sig == NULL ? row->algname : km == NULL ? row->keytype : NULL;

    EVP_SIGNATURE_free(sig);
    EVP_KEYMGMT_free(km);
    return missing;
}

static int sign_side_init(struct sp_side *s)
{
    static const char msg[] = "ihsm-speed: the message every signature is over";

    if (!EVP_Q_digest(s->lc, "SHA256", NULL, msg, sizeof(msg) - 1, tbs_digest, NULL)) {
        sp_ossl_err("%s: SHA-256 of the message", s->row->name);
        return 0;
    }
    memset(tbs_msg, 'm', sizeof(tbs_msg));
    if ((s->key = sp_keygen(s->lc, s->propq, s->row)) == NULL) {
        sp_ossl_err("%s: cannot generate the %s key", s->row->name, s->label);
        return 0;
    }
    return 1;
}

static void sign_side_fini(struct sp_side *s)
{
    EVP_PKEY_free(s->key);
    s->key = NULL;
}

/* A sign or verify context for the row's scheme. */
static EVP_PKEY_CTX *pkey_ctx(const struct sp_row *row, OSSL_LIB_CTX *lc, EVP_PKEY *key,
                              const char *propq, int verify)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(lc, key, propq);
    OSSL_PARAM p[3], *q = p;

    *q++ = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, (char *)"SHA256", 0);
    if (row->bits != 0)
        *q++ = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE,
                                                (char *)OSSL_PKEY_RSA_PAD_MODE_PKCSV15, 0);
    *q = OSSL_PARAM_construct_end();
    if (c == NULL || (verify ? EVP_PKEY_verify_init(c) : EVP_PKEY_sign_init(c)) <= 0
        || EVP_PKEY_CTX_set_params(c, p) <= 0) {
        EVP_PKEY_CTX_free(c);
        return NULL;
    }
    return c;
}

static void sign_slot_free(struct sp_slot *sl)
{
    struct sign_slot *ss = (struct sign_slot *)sl;

    if (ss == NULL)
        return;
    EVP_PKEY_CTX_free(ss->pctx);
    EVP_MD_CTX_free(ss->mctx);
    OPENSSL_free(ss);
}

static struct sp_slot *sign_slot_new(struct sp_side *s, unsigned idx)
{
    struct sign_slot *ss = OPENSSL_zalloc(sizeof(*ss));

    if (ss == NULL)
        return NULL;
    ss->base.side = s;
    ss->base.idx = idx;
    if (is_eddsa(s->row)) {
        if ((ss->mctx = EVP_MD_CTX_new()) == NULL
            || EVP_DigestSignInit_ex(ss->mctx, NULL, NULL, s->lc, s->propq, s->key, NULL) <= 0)
            goto err;
    } else if ((ss->pctx = pkey_ctx(s->row, s->lc, s->key, s->propq, 0)) == NULL) {
        goto err;
    }
    return &ss->base;
err:
    sp_ossl_err("%s: cannot set up a %s signing context", s->row->name, s->label);
    sign_slot_free(&ss->base);
    return NULL;
}

static int sign_op(struct sp_slot *sl)
{
    struct sign_slot *ss = (struct sign_slot *)sl;
    size_t len;
    const unsigned char *m = tbs(sl->side->row, &len);

    ss->siglen = sizeof(ss->sig);
    if (ss->mctx != NULL)
        return EVP_DigestSign(ss->mctx, ss->sig, &ss->siglen, m, len) == 1;
    return EVP_PKEY_sign(ss->pctx, ss->sig, &ss->siglen, m, len) == 1;
}

/* The signature verifies with the public key in the default provider. */
static int verify_with(OSSL_LIB_CTX *base, const struct sp_row *row, EVP_PKEY *key,
                       const unsigned char *sig, size_t siglen)
{
    EVP_PKEY *pub = sp_pub_in(base, key);
    EVP_PKEY_CTX *c = NULL;
    EVP_MD_CTX *m = NULL;
    size_t len;
    const unsigned char *d = tbs(row, &len);
    int ok = 0;

    if (pub == NULL)
        return -1;
    if (is_eddsa(row)) {
        if ((m = EVP_MD_CTX_new()) != NULL
            && EVP_DigestVerifyInit_ex(m, NULL, NULL, base, NULL, pub, NULL) == 1)
            ok = EVP_DigestVerify(m, sig, siglen, d, len) == 1;
    } else if ((c = pkey_ctx(row, base, pub, NULL, 1)) != NULL) {
        ok = EVP_PKEY_verify(c, sig, siglen, d, len) == 1;
    }
    EVP_MD_CTX_free(m);
    EVP_PKEY_CTX_free(c);
    EVP_PKEY_free(pub);
    return ok;
}

static int check_side(struct sp_side *s, OSSL_LIB_CTX *base)
{
    struct sp_slot *sl = sign_slot_new(s, 0);
    struct sign_slot *ss = (struct sign_slot *)sl;
    int ok, v;

    if (sl == NULL)
        return 0;
    ok = sign_op(sl);
    s->check_ops++;
    if (!ok) {
        sp_ossl_err("%s: the %s side could not sign", s->row->name, s->label);
        sign_slot_free(sl);
        return 0;
    }
    v = verify_with(base, s->row, s->key, ss->sig, ss->siglen);
    if (v != 1)
        sp_ossl_err("%s: %s", s->row->name,
                    v < 0 ? "cannot move the public key into the default provider"
                          : "a signature made through the provider does not verify with "
                            "OpenSSL's default provider");
    sign_slot_free(sl);
    return v == 1;
}

static int sign_check(struct sp_side *ihsm, struct sp_side *base)
{
    return check_side(ihsm, base->lc) && check_side(base, base->lc);
}

const struct sp_op_ops sp_sign_ops = {
    .missing = sign_missing,
    .side_init = sign_side_init,
    .side_fini = sign_side_fini,
    .slot_new = sign_slot_new,
    .slot_free = sign_slot_free,
    .op = sign_op,
    .check = sign_check,
};
