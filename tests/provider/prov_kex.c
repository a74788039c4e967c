/*
 * Key exchange with device keys through the EVP API, against a real ihsmd
 * (kex.sh starts it and writes an openssl.cnf routing derive):
 *
 * - X25519, P-256 and P-384 keys in the device derive the same secret as the
 *   default provider on the other side, with a peer from our keymgmt (a TLS
 *   key share) and with a peer from the default provider;
 * - invalid peer public keys -- a point off the curve, the identity, a point
 *   of the wrong length, X25519 points of small order -- fail, and the
 *   device's own counters show that ihsmd refused them (the provider does
 *   not pre-validate): derive and errors both grow by one per attempt. With
 *   EVP_PKEY_derive_set_peer's check on, the length and form faults are
 *   caught in process first; the others still reach the device;
 * - an ephemeral key (made the way libssl makes its ECDHE keys) is released
 *   in the device when freed: keys_loaded goes back.
 *
 * argv: openssl.cnf, then masked key files for X25519, P-256, P-384 (usage
 * derive) and a P-256 signing key. Exit: 0 pass, 1 fail, 77 skip.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>

static OSSL_LIB_CTX *libctx;
static int failures;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);              \
            fprintf(stderr, __VA_ARGS__);                                     \
            fprintf(stderr, "\n");                                            \
            ERR_print_errors_fp(stderr);                                      \
            failures++;                                                       \
        }                                                                     \
        ERR_clear_error();                                                    \
    } while (0)

/* ---- the device's counters (ihsmctl stats --json) ---- */

struct stats {
    unsigned long long derive, errors, keys_loaded;
};

static unsigned long long json_u64(const char *json, const char *name)
{
    char key[64];
    const char *p;

    snprintf(key, sizeof(key), "\"%s\"", name);
    if ((p = strstr(json, key)) == NULL || (p = strchr(p + strlen(key), ':')) == NULL)
        return ~0ull;
    return strtoull(p + 1, NULL, 10);
}

static int read_stats(struct stats *s)
{
    const char *ctl = getenv("IHSMCTL");
    char cmd[4200], buf[8192];
    size_t n;
    FILE *f;

    snprintf(cmd, sizeof(cmd), "'%s' stats --json", ctl);
    if ((f = popen(cmd, "r")) == NULL)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    if (pclose(f) != 0)
        return 0;
    s->derive = json_u64(buf, "derive");
    s->errors = json_u64(buf, "errors");
    s->keys_loaded = json_u64(buf, "keys_loaded");
    return s->derive != ~0ull && s->errors != ~0ull && s->keys_loaded != ~0ull;
}

/* ---- keys ---- */

static EVP_PKEY *load_key(const char *path)
{
    BIO *b = BIO_new_file(path, "r");
    EVP_PKEY *k = b != NULL ? PEM_read_bio_PrivateKey_ex(b, NULL, NULL, NULL, libctx, NULL) : NULL;

    BIO_free(b);
    return k;
}

/* The raw public value of a key (EC point, X25519 32 bytes). */
static size_t encoded_pub(EVP_PKEY *k, unsigned char *buf, size_t len)
{
    size_t n = 0;

    if (!EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, buf, len, &n))
        return 0;
    return n;
}

/* A peer key made as libssl makes one from a TLS key share: a parameters-only
 * key of the group, then the encoded public key set as received. In ihsm's
 * keymgmt when propq says so. */
static EVP_PKEY *share_key(const char *alg, const char *group, const char *propq,
                           const unsigned char *pub, size_t len)
{
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(libctx, alg, propq);
    EVP_PKEY *k = NULL;

    if (pctx == NULL || EVP_PKEY_paramgen_init(pctx) <= 0
        || (group != NULL && EVP_PKEY_CTX_set_group_name(pctx, group) <= 0)
        || EVP_PKEY_paramgen(pctx, &k) <= 0 || !EVP_PKEY_set1_encoded_public_key(k, pub, len)) {
        EVP_PKEY_free(k);
        k = NULL;
    }
    EVP_PKEY_CTX_free(pctx);
    return k;
}

/* Derive with key and peer; validate: EVP_PKEY_derive_set_peer's public check. */
static int derive(EVP_PKEY *key, EVP_PKEY *peer, int validate, unsigned char *out, size_t *outlen)
{
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(libctx, key, NULL);
    int ok = pctx != NULL && EVP_PKEY_derive_init(pctx) > 0
             && EVP_PKEY_derive_set_peer_ex(pctx, peer, validate) > 0
             && EVP_PKEY_derive(pctx, out, outlen) > 0;

    EVP_PKEY_CTX_free(pctx);
    return ok;
}

/* Does any error on the queue (then cleared) contain text? */
static int errors_contain(const char *text)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL;
    long n;
    int found = 0;

    if (b == NULL)
        return 0;
    ERR_print_errors(b);
    n = BIO_get_mem_data(b, &p);
    if (n > 0) {
        char *s = OPENSSL_strndup(p, (size_t)n);

        found = s != NULL && strstr(s, text) != NULL;
        OPENSSL_free(s);
    }
    BIO_free(b);
    return found;
}

static int key_is_ihsm(EVP_PKEY *k)
{
    const OSSL_PROVIDER *p = EVP_PKEY_get0_provider(k);

    return p != NULL && strcmp(OSSL_PROVIDER_get0_name(p), "ihsm") == 0;
}

struct kex {
    const char *label, *alg, *group; /* group: NULL for X25519 */
    EVP_PKEY *key;                   /* in the device */
};

/* The device key and the default provider agree on the shared secret, with a
 * peer from ihsm's keymgmt and with one from the default provider. */
static void check_agreement(const struct kex *x)
{
    EVP_PKEY *soft = x->group != NULL ? EVP_PKEY_Q_keygen(libctx, "provider=default", "EC", x->group)
                                      : EVP_PKEY_Q_keygen(libctx, "provider=default", "X25519");
    unsigned char spub[133], dpub[133], s1[64], s2[64], s3[64];
    size_t slen, dlen, l1 = sizeof(s1), l2 = sizeof(s2), l3 = sizeof(s3);
    EVP_PKEY *share = NULL, *dshare = NULL, *soft_pub = NULL;

    CHECK(soft != NULL, "%s: software key", x->label);
    if (soft == NULL)
        return;
    slen = encoded_pub(soft, spub, sizeof(spub));
    dlen = encoded_pub(x->key, dpub, sizeof(dpub));
    CHECK(slen > 0 && dlen == slen, "%s: encoded public keys (%zu, %zu bytes)", x->label, slen, dlen);
    /* ours with the peer as a key share in ihsm's keymgmt (the TLS path) */
    share = share_key(x->alg, x->group, "provider=ihsm", spub, slen);
    CHECK(share != NULL && key_is_ihsm(share), "%s: key share in ihsm's keymgmt", x->label);
    CHECK(share != NULL && derive(x->key, share, 1, s1, &l1), "%s: derive in the device", x->label);
    /* the other side, all in the default provider */
    dshare = share_key(x->alg, x->group, "provider=default", dpub, dlen);
    CHECK(dshare != NULL && derive(soft, dshare, 1, s2, &l2), "%s: derive in default", x->label);
    CHECK(l1 == l2 && l1 == (strcmp(x->label, "P-384") == 0 ? 48u : 32u)
          && memcmp(s1, s2, l1) == 0, "%s: the device's secret differs from default's", x->label);
    /* a peer of the default provider is exported to us (public only) */
    soft_pub = share_key(x->alg, x->group, "provider=default", spub, slen);
    CHECK(soft_pub != NULL && derive(x->key, soft_pub, 1, s3, &l3) && l3 == l1
          && memcmp(s3, s1, l1) == 0, "%s: derive with a default-provider peer", x->label);
    EVP_PKEY_free(share);
    EVP_PKEY_free(dshare);
    EVP_PKEY_free(soft_pub);
    EVP_PKEY_free(soft);
}

/*
 * A bad peer value: derive fails with ihsm's "invalid peer public key", and
 * with validate off the device must have seen it (derive and errors + 1).
 * With validate on, in_process says the provider's length/form check stops
 * it before the device (counters unchanged); otherwise the device refuses.
 */
static void check_refused(const struct kex *x, const char *what, const unsigned char *pub,
                          size_t len, int in_process)
{
    unsigned char out[64];
    size_t outlen;
    struct stats a, b;
    EVP_PKEY *peer = share_key(x->alg, x->group, "provider=ihsm", pub, len);
    int validate, ok, named;

    CHECK(peer != NULL, "%s %s: the key share is stored as received (%zu bytes)", x->label,
          what, len);
    if (peer == NULL)
        return;
    for (validate = 0; validate <= 1; validate++) {
        if (!read_stats(&a)) {
            CHECK(0, "ihsmctl stats");
            break;
        }
        outlen = sizeof(out);
        ok = derive(x->key, peer, validate, out, &outlen);
        named = errors_contain("invalid peer public key");
        CHECK(!ok, "%s %s (validate %d): derive succeeded", x->label, what, validate);
        if (!read_stats(&b)) {
            CHECK(0, "ihsmctl stats");
            break;
        }
        if (validate && in_process) {
            CHECK(b.derive == a.derive,
                  "%s %s: the provider's check should stop it before the device", x->label,
                  what);
            printf("ok: %s %s: refused in process by EVP_PKEY_derive_set_peer's check\n",
                   x->label, what);
        } else {
            CHECK(b.derive == a.derive + 1 && b.errors == a.errors + 1,
                  "%s %s (validate %d): the device did not refuse it (derive %llu -> %llu, "
                  "errors %llu -> %llu)", x->label, what, validate, a.derive, b.derive,
                  a.errors, b.errors);
            CHECK(named, "%s %s: no \"invalid peer public key\" error", x->label, what);
            printf("ok: %s %s (validate %d): refused by ihsmd (errors %llu -> %llu)\n",
                   x->label, what, validate, a.errors, b.errors);
        }
    }
    EVP_PKEY_free(peer);
}

static void check_bad_points(const struct kex *x)
{
    unsigned char pub[133], bad[133];
    size_t len = encoded_pub(x->key, pub, sizeof(pub));
    static const unsigned char identity[1] = { 0x00 };

    CHECK(len > 0, "%s: encoded public key", x->label);
    if (len == 0)
        return;
    if (x->group != NULL) {
        /* off the curve: a valid point with its last byte of y changed */
        memcpy(bad, pub, len);
        bad[len - 1] ^= 0x01;
        check_refused(x, "off-curve point", bad, len, 0);
        check_refused(x, "identity (point at infinity)", identity, sizeof(identity), 1);
        check_refused(x, "point one byte short", pub, len - 1, 1);
        /* a compressed point is valid EC but not what the device takes */
        memcpy(bad, pub, 1 + (len - 1) / 2);
        bad[0] = 0x02 | (pub[len - 1] & 1);
        check_refused(x, "compressed point", bad, 1 + (len - 1) / 2, 1);
    } else {
        /* small-order points (RFC 7748 section 6.1: all-zero output) */
        static const unsigned char zero[32] = { 0 };
        static const unsigned char one[32] = { 1 };
        static const unsigned char order8[32] = {
            0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
            0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00,
        };

        check_refused(x, "small-order point u=0", zero, sizeof(zero), 0);
        check_refused(x, "small-order point u=1", one, sizeof(one), 0);
        check_refused(x, "small-order point of order 8", order8, sizeof(order8), 0);
        check_refused(x, "31-byte point", pub, 31, 1);
    }
}

/* An ephemeral key as libssl makes one for ECDHE (ihsm's TLS group name):
 * usage derive, and released in the device when freed. */
static void check_ephemeral(const char *alg, const char *group, const char *curve)
{
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(libctx, alg, "provider=ihsm");
    EVP_PKEY *k = NULL, *dup = NULL;
    struct stats a, b, c;
    int i;

    CHECK(read_stats(&a), "ihsmctl stats");
    CHECK(pctx != NULL && EVP_PKEY_keygen_init(pctx) > 0
          && EVP_PKEY_CTX_set_group_name(pctx, group) > 0 && EVP_PKEY_keygen(pctx, &k) > 0,
          "%s: ephemeral keygen", group);
    EVP_PKEY_CTX_free(pctx);
    if (k == NULL)
        return;
    CHECK(read_stats(&b) && b.keys_loaded == a.keys_loaded + 1,
          "%s: the device holds the ephemeral key (keys_loaded %llu -> %llu)", group,
          a.keys_loaded, b.keys_loaded);
    /* a copy shares the handle: freeing one must not release it */
    dup = EVP_PKEY_dup(k);
    CHECK(dup != NULL, "%s: dup", group);
    EVP_PKEY_free(k);
    {
        struct kex x = { curve != NULL ? curve : "X25519", alg, curve, dup };

        if (dup != NULL)
            check_agreement(&x);
    }
    EVP_PKEY_free(dup);
    /* the release does not wait for the device's answer: poll (2 s) */
    for (i = 0; i < 40; i++) {
        if (read_stats(&c) && c.keys_loaded == a.keys_loaded)
            break;
        usleep(50000);
    }
    CHECK(c.keys_loaded == a.keys_loaded,
          "%s: ephemeral key not released (keys_loaded %llu before, %llu after free)", group,
          a.keys_loaded, c.keys_loaded);
    printf("ok: %s ephemeral key: keys_loaded %llu -> %llu -> %llu\n", group, a.keys_loaded,
           b.keys_loaded, c.keys_loaded);
}

int main(int argc, char **argv)
{
    struct kex x[] = {
        { "X25519", "X25519", NULL, NULL },
        { "P-256", "EC", "P-256", NULL },
        { "P-384", "EC", "P-384", NULL },
    };
    EVP_PKEY *signer = NULL;
    EVP_PKEY_CTX *pctx;
    size_t i;

    if (argc != 6 || getenv("IHSMCTL") == NULL) {
        fprintf(stderr, "SKIP: run through kex.sh (openssl.cnf and key files, IHSMCTL)\n");
        return 77;
    }
    libctx = OSSL_LIB_CTX_new();
    if (libctx == NULL || !OSSL_LIB_CTX_load_config(libctx, argv[1])) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    for (i = 0; i < sizeof(x) / sizeof(x[0]); i++) {
        x[i].key = load_key(argv[2 + i]);
        CHECK(x[i].key != NULL && key_is_ihsm(x[i].key), "%s: load %s", x[i].label, argv[2 + i]);
    }
    if (failures)
        goto out;

    for (i = 0; i < sizeof(x) / sizeof(x[0]); i++) {
        check_agreement(&x[i]);
        check_bad_points(&x[i]);
    }
    check_ephemeral("X25519", "ihsm-ecdhe-X25519", NULL);
    check_ephemeral("EC", "ihsm-ecdhe-P-256", "P-256");
    check_ephemeral("EC", "ihsm-ecdhe-P-384", "P-384");

    /* a signing key may not derive: refused at init, with the reason */
    signer = load_key(argv[5]);
    CHECK(signer != NULL, "load %s", argv[5]);
    if (signer != NULL) {
        pctx = EVP_PKEY_CTX_new_from_pkey(libctx, signer, NULL);
        CHECK(pctx != NULL && EVP_PKEY_derive_init(pctx) <= 0
              && errors_contain("usage flags forbid key exchange"),
              "a sign-only key: derive_init must refuse it for its usage");
        EVP_PKEY_CTX_free(pctx);
    }
out:
    for (i = 0; i < sizeof(x) / sizeof(x[0]); i++)
        EVP_PKEY_free(x[i].key);
    EVP_PKEY_free(signer);
    OSSL_LIB_CTX_free(libctx);
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("PASS: key exchange in ihsmd, invalid peers refused by the device\n");
    return 0;
}
