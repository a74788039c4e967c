/*
 * The provider through the EVP API, against a real ihsmd (api.sh starts
 * it): key generation per algorithm, key parameters, public export and
 * refused private export, public-only imports that cannot sign, sign/verify
 * on every path (EVP_PKEY_sign, EVP_DigestSign, EVP_PKEY_dup'd keys), a clean
 * error queue after successful signing, signing from a forked child, from
 * threads, inside an ASYNC job, and after ihsmd restarts (--restart-fifo).
 *
 * Exit: 0 pass, 1 fail, 77 skip.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/async.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

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
    } while (0)

struct alg {
    const char *label;
    const char *type;     /* keymgmt name */
    const char *group;    /* EC */
    size_t bits;          /* RSA */
    const char *md;       /* NULL: Ed25519 */
    int pss;              /* sign with PSS padding */
};

static const struct alg algs[] = {
    { "rsa-2048", "RSA", NULL, 2048, "SHA256", 0 },
    { "rsa-2048-pss", "RSA", NULL, 2048, "SHA384", 1 },
    { "rsa-pss-2048", "RSA-PSS", NULL, 2048, "SHA256", 1 },
    { "ec-p256", "EC", "P-256", 0, "SHA256", 0 },
    { "ec-p384", "EC", "P-384", 0, "SHA384", 0 },
    { "ed25519", "ED25519", NULL, 0, NULL, 0 },
};

static EVP_PKEY *keygen(const struct alg *a)
{
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(libctx, a->type, "provider=ihsm");
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM params[2], *p = params;

    if (a->group != NULL)
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)a->group, 0);
    if (a->bits != 0)
        *p++ = OSSL_PARAM_construct_size_t(OSSL_PKEY_PARAM_RSA_BITS, (size_t *)&a->bits);
    *p = OSSL_PARAM_construct_end();
    if (pctx == NULL || EVP_PKEY_keygen_init(pctx) <= 0
        || !EVP_PKEY_CTX_set_params(pctx, params) || EVP_PKEY_keygen(pctx, &pkey) <= 0)
        pkey = NULL;
    EVP_PKEY_CTX_free(pctx);
    return pkey;
}

/* The public half, rebuilt in the default provider from an export. */
static EVP_PKEY *public_in_default(EVP_PKEY *pkey)
{
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_PKEY *pub = NULL;

    if (EVP_PKEY_todata(pkey, EVP_PKEY_PUBLIC_KEY, &params)
        && (pctx = EVP_PKEY_CTX_new_from_name(libctx, EVP_PKEY_get0_type_name(pkey),
                                              "provider=default")) != NULL
        && EVP_PKEY_fromdata_init(pctx) > 0)
        EVP_PKEY_fromdata(pctx, &pub, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    return pub;
}

static int set_pss(EVP_PKEY_CTX *pctx, const struct alg *a)
{
    return !a->pss || (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0
                       && EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0);
}

static const unsigned char msg[] = "device-held keys for signing in nginx and HAProxy";

/* EVP_DigestSign with key, EVP_DigestVerify with pub (default provider). */
static int digest_sign_verify(const struct alg *a, EVP_PKEY *key, EVP_PKEY *pub, int check_queue)
{
    EVP_MD_CTX *s = EVP_MD_CTX_new(), *v = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    int ok = 0;

    ERR_clear_error();
    if (s == NULL || v == NULL
        || EVP_DigestSignInit_ex(s, &pctx, a->md, libctx, NULL, key, NULL) <= 0
        || !set_pss(pctx, a)
        || EVP_DigestSign(s, sig, &siglen, msg, sizeof(msg)) <= 0)
        goto end;
    if (check_queue && ERR_peek_error() != 0) {
        /* A stale error would make SSL_get_error() report SSL_ERROR_SSL
         * for a non-blocking handshake that only wants to read. */
        fprintf(stderr, "error queue not empty after a successful signature:\n");
        ERR_print_errors_fp(stderr);
        goto end;
    }
    if (EVP_DigestVerifyInit_ex(v, &pctx, a->md, libctx, "provider=default", pub, NULL) <= 0
        || !set_pss(pctx, a)
        || EVP_DigestVerify(v, sig, siglen, msg, sizeof(msg)) != 1)
        goto end;
    /* A flipped bit must not verify. */
    sig[siglen / 2] ^= 1;
    if (EVP_DigestVerifyInit_ex(v, &pctx, a->md, libctx, "provider=default", pub, NULL) <= 0
        || !set_pss(pctx, a))
        goto end;
    ok = EVP_DigestVerify(v, sig, siglen, msg, sizeof(msg)) != 1;
    ERR_clear_error();
end:
    EVP_MD_CTX_free(s);
    EVP_MD_CTX_free(v);
    return ok;
}

/* EVP_PKEY_sign over a digest, EVP_PKEY_verify in the default provider. */
static int pkey_sign_verify(const struct alg *a, EVP_PKEY *key, EVP_PKEY *pub)
{
    EVP_PKEY_CTX *s = EVP_PKEY_CTX_new_from_pkey(libctx, key, NULL);
    EVP_PKEY_CTX *v = EVP_PKEY_CTX_new_from_pkey(libctx, pub, "provider=default");
    EVP_MD *md = EVP_MD_fetch(libctx, a->md, NULL);
    unsigned char dgst[EVP_MAX_MD_SIZE], sig[1024];
    unsigned int dlen = 0;
    size_t siglen = 0;
    int ok = 0;

    if (s == NULL || v == NULL || md == NULL
        || !EVP_Digest(msg, sizeof(msg), dgst, &dlen, md, NULL)
        || EVP_PKEY_sign_init(s) <= 0 || EVP_PKEY_CTX_set_signature_md(s, md) <= 0
        || !set_pss(s, a)
        || EVP_PKEY_sign(s, NULL, &siglen, dgst, dlen) <= 0 || siglen > sizeof(sig)
        || EVP_PKEY_sign(s, sig, &siglen, dgst, dlen) <= 0
        || EVP_PKEY_verify_init(v) <= 0 || EVP_PKEY_CTX_set_signature_md(v, md) <= 0
        || !set_pss(v, a))
        goto end;
    ok = EVP_PKEY_verify(v, sig, siglen, dgst, dlen) == 1;
end:
    EVP_MD_free(md);
    EVP_PKEY_CTX_free(s);
    EVP_PKEY_CTX_free(v);
    return ok;
}

static void check_params(const struct alg *a, EVP_PKEY *key)
{
    char group[64], dd[64];
    BIGNUM *n = NULL, *d = NULL;
    OSSL_PARAM *params = NULL;

    CHECK(strcmp(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(key)), "ihsm") == 0,
          "%s: key not made by ihsm", a->label);
    CHECK(EVP_PKEY_get_bits(key) >= (a->bits ? (int)a->bits : 253), "%s: bits %d", a->label,
          EVP_PKEY_get_bits(key));
    CHECK(EVP_PKEY_get_security_bits(key) >= 112, "%s: security bits", a->label);
    CHECK(EVP_PKEY_get_size(key) >= 64, "%s: size %d", a->label, EVP_PKEY_get_size(key));
    CHECK(EVP_PKEY_is_a(key, a->type), "%s: not a %s key", a->label, a->type);
    if (a->group != NULL) {
        const char *sn = strcmp(a->group, "P-256") == 0 ? "prime256v1" : "secp384r1";

        CHECK(EVP_PKEY_get_group_name(key, group, sizeof(group), NULL)
              && (strcmp(group, a->group) == 0 || strcmp(group, sn) == 0),
              "%s: group", a->label);
        CHECK(EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0,
                                              NULL), "%s: encoded public key", a->label);
    }
    if (a->bits != 0) {
        CHECK(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) && BN_num_bits(n) == (int)a->bits,
              "%s: modulus", a->label);
        CHECK(!EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_D, &d), "%s: private exponent "
              "readable", a->label);
    }
    if (a->md != NULL)
        CHECK(EVP_PKEY_get_default_digest_name(key, dd, sizeof(dd)) > 0, "%s: default digest",
              a->label);
    /* Not extractable: no private export, public export fine. */
    CHECK(!EVP_PKEY_todata(key, EVP_PKEY_KEYPAIR, &params), "%s: private export allowed",
          a->label);
    OSSL_PARAM_free(params);
    params = NULL;
    CHECK(EVP_PKEY_todata(key, EVP_PKEY_PUBLIC_KEY, &params), "%s: public export", a->label);
    OSSL_PARAM_free(params);
    BN_free(n);
    BN_free(d);
    ERR_clear_error();
}

/* A public key imported into ihsm can verify but not sign, with a clear error. */
static void check_public_only(const struct alg *a, EVP_PKEY *key)
{
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_PKEY *pub = NULL;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    char buf[256];
    unsigned long e;

    if (!EVP_PKEY_todata(key, EVP_PKEY_PUBLIC_KEY, &params)
        || (pctx = EVP_PKEY_CTX_new_from_name(libctx, a->type, "provider=ihsm")) == NULL
        || EVP_PKEY_fromdata_init(pctx) <= 0
        || EVP_PKEY_fromdata(pctx, &pub, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        CHECK(0, "%s: public import into ihsm", a->label);
        goto end;
    }
    CHECK(EVP_PKEY_eq(key, pub) == 1, "%s: imported public key differs", a->label);
    ERR_clear_error();
    CHECK(EVP_DigestSignInit_ex(m, NULL, a->md, libctx, "provider=ihsm", pub, NULL) <= 0
          || EVP_DigestSign(m, sig, &siglen, msg, sizeof(msg)) <= 0,
          "%s: a public-only key signed", a->label);
    /* Our sentence must be on the queue (libcrypto may add its own after it). */
    buf[0] = '\0';
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        if (strstr(buf, "no private part") != NULL)
            break;
    }
    CHECK(e != 0, "%s: unclear error (last: \"%s\")", a->label, buf);
    ERR_clear_error();
end:
    EVP_MD_CTX_free(m);
    EVP_PKEY_free(pub);
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
}

/* ---- TLS: a non-blocking handshake over a BIO pair, server key in ihsm ---- */

static X509 *self_signed(EVP_PKEY *key, const char *md)
{
    X509 *x = X509_new_ex(libctx, NULL);
    X509_NAME *n;

    if (x == NULL || !X509_set_version(x, X509_VERSION_3)
        || !ASN1_INTEGER_set(X509_get_serialNumber(x), 1)
        || X509_gmtime_adj(X509_getm_notBefore(x), -60) == NULL
        || X509_gmtime_adj(X509_getm_notAfter(x), 3600) == NULL
        || !X509_set_pubkey(x, key) || (n = X509_get_subject_name(x)) == NULL
        || !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost",
                                       -1, -1, 0)
        || !X509_set_issuer_name(x, n)
        /* signed by the device: the AlgorithmIdentifier comes from ihsm */
        || X509_sign(x, key, md == NULL ? NULL : EVP_get_digestbyname(md)) <= 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* One step of a non-blocking handshake: 1 done, 0 wants I/O, -1 failed. */
static int hs_step(SSL *ssl, const char *who)
{
    int r = SSL_do_handshake(ssl), e;

    if (r == 1)
        return 1;
    e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    /* A stale error from a probe inside the provider shows up here as
     * SSL_ERROR_SSL although the handshake only waits for the peer. */
    fprintf(stderr, "%s: handshake error %d\n", who, e);
    return -1;
}

static int tls_handshake(EVP_PKEY *key, const char *md, int version)
{
    SSL_CTX *sctx = SSL_CTX_new_ex(libctx, NULL, TLS_server_method());
    SSL_CTX *cctx = SSL_CTX_new_ex(libctx, NULL, TLS_client_method());
    SSL *srv = NULL, *cli = NULL;
    BIO *sb = NULL, *cb = NULL;
    X509 *cert = self_signed(key, md);
    int i, sd = 0, cd = 0, ok = 0;

    if (sctx == NULL || cctx == NULL || cert == NULL)
        goto end;
    SSL_CTX_set_min_proto_version(sctx, version);
    SSL_CTX_set_max_proto_version(sctx, version);
    if (!SSL_CTX_use_certificate(sctx, cert) || !SSL_CTX_use_PrivateKey(sctx, key)
        || !SSL_CTX_check_private_key(sctx)
        || !X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), cert))
        goto end;
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
    if ((srv = SSL_new(sctx)) == NULL || (cli = SSL_new(cctx)) == NULL
        || !BIO_new_bio_pair(&sb, 0, &cb, 0))
        goto end;
    SSL_set_bio(srv, sb, sb);
    SSL_set_bio(cli, cb, cb);
    SSL_set_accept_state(srv);
    SSL_set_connect_state(cli);
    SSL_set1_host(cli, "localhost");
    ERR_clear_error();
    for (i = 0; i < 100 && !(sd && cd); i++) {
        if (!cd && (cd = hs_step(cli, "client")) < 0)
            goto end;
        if (!sd && (sd = hs_step(srv, "server")) < 0)
            goto end;
    }
    ok = sd == 1 && cd == 1 && SSL_get_verify_result(cli) == X509_V_OK
         && SSL_version(cli) == version;
end:
    if (!ok)
        ERR_print_errors_fp(stderr);
    SSL_free(srv);
    SSL_free(cli);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    X509_free(cert);
    return ok;
}

/* ---- threads, fork, ASYNC ---- */

struct job { const struct alg *a; EVP_PKEY *key, *pub; int ok; };

static void *thread_main(void *arg)
{
    struct job *j = arg;
    int i;

    j->ok = 1;
    for (i = 0; i < 20 && j->ok; i++)
        j->ok = digest_sign_verify(j->a, j->key, j->pub, 0);
    return NULL;
}

static int async_sign(void *arg)
{
    struct job *j = *(struct job **)arg;

    j->ok = digest_sign_verify(j->a, j->key, j->pub, 0);
    return j->ok;
}

static int run_async(struct job *j)
{
    ASYNC_WAIT_CTX *w = ASYNC_WAIT_CTX_new();
    ASYNC_JOB *job = NULL;
    int ret = 0, rounds = 0, st;

    if (w == NULL)
        return 0;
    for (;;) {
        st = ASYNC_start_job(&job, w, &ret, async_sign, &j, sizeof(j));
        if (st != ASYNC_PAUSE)
            break;
        /* Wait on what the paused job waits on, as an event loop would. */
        if (++rounds > 2000) {
            ret = 0;
            break;
        }
        {
            OSSL_ASYNC_FD fds[4];
            size_t n = 0, i;
            struct pollfd pfd[4];

            if (ASYNC_WAIT_CTX_get_all_fds(w, NULL, &n) && n > 0 && n <= 4
                && ASYNC_WAIT_CTX_get_all_fds(w, fds, &n)) {
                for (i = 0; i < n; i++) {
                    pfd[i].fd = fds[i];
                    pfd[i].events = POLLIN;
                }
                poll(pfd, n, 100);
            }
        }
    }
    ASYNC_WAIT_CTX_free(w);
    return st == ASYNC_FINISH && ret == 1;
}

static int sign_round(EVP_PKEY **keys, EVP_PKEY **pubs, const char *when)
{
    size_t i;
    int before = failures;

    for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
        CHECK(digest_sign_verify(&algs[i], keys[i], pubs[i], 1), "%s: %s sign/verify",
              algs[i].label, when);
    return failures == before;
}

int main(int argc, char **argv)
{
    const char *build = getenv("IHSM_BUILD_DIR");
    const char *fifo = argc > 2 && strcmp(argv[1], "--restart-fifo") == 0 ? argv[2] : NULL;
    EVP_PKEY *keys[sizeof(algs) / sizeof(algs[0])] = { 0 };
    EVP_PKEY *pubs[sizeof(algs) / sizeof(algs[0])] = { 0 };
    char dir[4096];
    size_t i;

    if (build == NULL || getenv("IHSM_SOCKET") == NULL) {
        fprintf(stderr, "SKIP: run through api.sh (needs IHSM_BUILD_DIR and a device)\n");
        return 77;
    }
    snprintf(dir, sizeof(dir), "%s/lib", build);
    libctx = OSSL_LIB_CTX_new();
    /* default first: the recommended order (see docs/configuration.md) */
    if (libctx == NULL || !OSSL_PROVIDER_set_default_search_path(libctx, dir)
        || OSSL_PROVIDER_load(libctx, "default") == NULL
        || OSSL_PROVIDER_load(libctx, "ihsm") == NULL) {
        ERR_print_errors_fp(stderr);
        return 1;
    }

    for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        const struct alg *a = &algs[i];

        keys[i] = i > 0 && strcmp(algs[i - 1].type, a->type) == 0 && a->bits == algs[i - 1].bits
                  && a->group == algs[i - 1].group ? (EVP_PKEY_up_ref(keys[i - 1]), keys[i - 1])
                                                   : keygen(a);
        if (keys[i] == NULL) {
            CHECK(0, "%s: keygen in ihsm", a->label);
            continue;
        }
        check_params(a, keys[i]);
        pubs[i] = public_in_default(keys[i]);
        CHECK(pubs[i] != NULL && EVP_PKEY_eq(keys[i], pubs[i]) == 1, "%s: public half",
              a->label);
        if (pubs[i] == NULL)
            continue;
        CHECK(digest_sign_verify(a, keys[i], pubs[i], 1), "%s: digest sign/verify", a->label);
        if (a->md != NULL)
            CHECK(pkey_sign_verify(a, keys[i], pubs[i]), "%s: EVP_PKEY_sign/verify", a->label);
        {
            EVP_PKEY *dup = EVP_PKEY_dup(keys[i]);

            CHECK(dup != NULL && digest_sign_verify(a, dup, pubs[i], 1), "%s: dup'd key signs",
                  a->label);
            EVP_PKEY_free(dup);
        }
        check_public_only(a, keys[i]);
    }
    if (failures)
        goto out;

    /* TLS servers: the handshake signature is made in the device */
    for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        if (algs[i].pss && strcmp(algs[i].type, "RSA") == 0)
            continue; /* same key as rsa-2048 */
        CHECK(tls_handshake(keys[i], algs[i].md, TLS1_3_VERSION), "%s: TLS 1.3 handshake",
              algs[i].label);
        CHECK(tls_handshake(keys[i], algs[i].md, TLS1_2_VERSION), "%s: TLS 1.2 handshake",
              algs[i].label);
    }

    /* threads sharing one key */
    {
        pthread_t t[4];
        struct job j[4];

        for (i = 0; i < 4; i++) {
            j[i].a = &algs[3 + i % 2];
            j[i].key = keys[3 + i % 2];
            j[i].pub = pubs[3 + i % 2];
            pthread_create(&t[i], NULL, thread_main, &j[i]);
        }
        for (i = 0; i < 4; i++) {
            pthread_join(t[i], NULL);
            CHECK(j[i].ok, "thread %zu: sign/verify", i);
        }
    }

    /* an ASYNC job (SSL_MODE_ASYNC's path) */
    {
        struct job j = { &algs[3], keys[3], pubs[3], 0 };

        CHECK(run_async(&j), "ASYNC job: sign/verify");
    }

    /* a forked child keeps using the parent's keys (nginx workers) */
    {
        pid_t pid = fork();
        int status = 0;

        if (pid == 0)
            _exit(sign_round(keys, pubs, "forked child") ? 0 : 1);
        CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status)
              && WEXITSTATUS(status) == 0, "forked child could not sign");
        sign_round(keys, pubs, "parent after fork");
    }

    /* ihsmd restarts under us: handles are gone, keys come back from their blobs */
    if (fifo != NULL && failures == 0) {
        FILE *f;
        char line[16];

        printf("READY\n");
        fflush(stdout);
        if ((f = fopen(fifo, "r")) == NULL || fgets(line, sizeof(line), f) == NULL) {
            CHECK(0, "restart handshake on %s: %s", fifo, strerror(errno));
        } else {
            sign_round(keys, pubs, "after ihsmd restart");
        }
        if (f != NULL)
            fclose(f);
    }
out:
    for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        EVP_PKEY_free(keys[i]);
        EVP_PKEY_free(pubs[i]);
    }
    OSSL_LIB_CTX_free(libctx);
    if (failures)
        fprintf(stderr, "%d check(s) failed\n", failures);
    return failures ? 1 : 0;
}
