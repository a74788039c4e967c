/*
 * ihsm-soak: the long-lived client of the soak test (bench/soak/run).
 *
 * One process on the offload queue, paced at --rate iterations a second
 * for --seconds. Each iteration mixes what a TLS server asks of the device
 * and checks every answer against OpenSSL's default provider in process:
 *
 *   sign     a burst of ECDSA P-256 signatures in flight together (one
 *            frame), every one verified with the key's public half;
 *            every 4th iteration an RSA-2048 PKCS#1 signature, verified
 *   derive   X25519 with a fresh peer key; the device's shared secret must
 *            equal the one computed here from the peer's private half
 *   aead     AES-256-GCM seal then open of random bytes: the plaintext
 *            must come back, and a flipped tag must be refused
 *   load     KEY_UNMASK of a key nobody holds, one signature, KEY_RELEASE:
 *            the key is loaded and unloaded every iteration
 *   connect  every --connect-every iterations a second queue: connect,
 *            open a session, INFO, unmask, sign, verify, close
 *
 * Output on stdout, one line per event, for the runner to classify:
 *   R <unix time> ready                  keys made, the loop starts
 *   E <unix time> <op> <status name>     a request failed (transient or not)
 *   O <unix time> <op> recovered         the first success after failures
 *   W <unix time> <op> <what>            a wrong result: never acceptable
 *   P {json}                             progress every --progress seconds
 *   S {json}                             the summary at the end
 * After a device restart every handle is gone: on IHSM_ERR_BAD_HANDLE the
 * keys are unmasked again from their blobs, as the provider does.
 */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "ihsm_codec.h"
#include "ihsm_keyfile.h"
#include "ihsm_offload.h"
#include "ihsm_proto.h"

#define MAX_BURST 64
#define MAX_AEAD 4096

enum { OP_SIGN, OP_RSA, OP_DERIVE, OP_AEAD, OP_LOAD, OP_CONNECT, OP_SETUP, N_OPS };
static const char *const op_names[N_OPS] = {
    "sign", "rsa_sign", "derive", "aead", "load", "connect", "setup",
};

typedef struct {
    uint32_t type, bits, usage, handle;
    uint8_t *blob; size_t blob_len;
    EVP_PKEY *pub; /* NULL for AES */
} soak_key;

static struct {
    double seconds, rate, progress;
    unsigned burst, connect_every;
    const char *socket, *credential;
} opt = { 60, 50, 5, 8, 20, NULL, NULL };

static ihsm_queue *q;
static soak_key ec, rsa, x25519, aes, spare;
static unsigned long long ok_count[N_OPS], err_count[N_OPS], wrong_count[N_OPS];
static unsigned long long iterations, reloads;
static int in_failure; /* the last answer was a failure: the next success is a recovery */
static double longest_iter; /* seconds: a stalled request shows here */
static volatile sig_atomic_t stop;

static double now_real(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void event(char kind, int op, const char *fmt, ...)
{
    va_list ap;

    printf("%c %.3f %s ", kind, now_real(), op_names[op]);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* A good answer; the first after failures is reported (O). */
static void succeeded(int op)
{
    ok_count[op]++;
    if (in_failure) {
        in_failure = 0;
        event('O', op, "recovered");
    }
}

/* A failed request: count it and say which. Returns 0. */
static int failed(int op, int st)
{
    err_count[op]++;
    in_failure = 1;
    event('E', op, "%s", ihsm_status_name(st));
    return 0;
}

static int wrong(int op, const char *what)
{
    wrong_count[op]++;
    event('W', op, "%s", what);
    return 0;
}

/* ---- keys ---- */

static EVP_PKEY *spki_to_pkey(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;

    return len == 0 ? NULL : d2i_PUBKEY(NULL, &p, (long)len);
}

static int generate(soak_key *k, uint32_t type, uint32_t bits, uint32_t usage)
{
    ihsm_result res = { 0 };
    const uint8_t *blob, *pub;
    size_t pub_len = 0;
    ihsm_wr w;
    ihsm_rd r;
    int st;

    ihsm_wr_init(&w);
    ihsm_wr_u32(&w, type);
    ihsm_wr_u32(&w, type == IHSM_KEY_RSA || type == IHSM_KEY_AES ? bits : 0);
    ihsm_wr_u32(&w, usage);
    ihsm_wr_u32(&w, 0); /* not stored by name: the blob is all there is */
    ihsm_wr_bytes(&w, "soak", 4);
    st = ihsm_queue_call(q, IHSM_CMD_KEY_GENERATE, w.p, w.len, &res);
    ihsm_wr_free(&w);
    if (st != IHSM_OK) {
        fprintf(stderr, "ihsm-soak: KEY_GENERATE type %u: %s\n", type, ihsm_status_str(st));
        ihsm_result_clear(&res);
        return -1;
    }
    ihsm_rd_init(&r, res.data, res.len);
    k->handle = ihsm_rd_u32(&r);
    blob = ihsm_rd_bytes(&r, &k->blob_len, IHSM_MAX_BLOB);
    pub = ihsm_rd_bytes(&r, &pub_len, 8192);
    if (ihsm_rd_end(&r) != 0 || (k->blob = malloc(k->blob_len)) == NULL) {
        ihsm_result_clear(&res);
        return -1;
    }
    memcpy(k->blob, blob, k->blob_len);
    k->pub = spki_to_pkey(pub, pub_len);
    k->type = type;
    k->bits = bits;
    k->usage = usage;
    ihsm_result_clear(&res);
    return type == IHSM_KEY_AES || k->pub != NULL ? 0 : -1;
}

/* KEY_UNMASK on queue qq: the handle, or 0 (status in *st). */
static uint32_t unmask_on(ihsm_queue *qq, const soak_key *k, int *st)
{
    ihsm_result res = { 0 };
    uint32_t h = 0;
    ihsm_wr w;
    ihsm_rd r;

    ihsm_wr_init(&w);
    ihsm_wr_bytes(&w, k->blob, k->blob_len);
    *st = ihsm_queue_call(qq, IHSM_CMD_KEY_UNMASK, w.p, w.len, &res);
    ihsm_wr_free(&w);
    if (*st == IHSM_OK) {
        ihsm_rd_init(&r, res.data, res.len);
        h = ihsm_rd_u32(&r);
        if (ihsm_rd_u32(&r) != k->type)
            h = 0, *st = IHSM_ERR_MALFORMED;
    }
    ihsm_result_clear(&res);
    return h;
}

static int release_on(ihsm_queue *qq, uint32_t h)
{
    ihsm_result res = { 0 };
    uint8_t p[4] = { (uint8_t)h, (uint8_t)(h >> 8), (uint8_t)(h >> 16), (uint8_t)(h >> 24) };
    int st = ihsm_queue_call(qq, IHSM_CMD_KEY_RELEASE, p, sizeof(p), &res);

    ihsm_result_clear(&res);
    return st;
}

/* After a restart: every handle is gone, the blobs still unmask. */
static void reload(void)
{
    soak_key *keys[] = { &ec, &rsa, &x25519, &aes };
    int st;

    reloads++;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        uint32_t h = unmask_on(q, keys[i], &st);
        if (h != 0)
            keys[i]->handle = h;
        else
            failed(OP_SETUP, st);
    }
}

/* ---- checks, in process ---- */

static int verify(EVP_PKEY *pub, int rsa_pkcs1, const uint8_t *dgst, size_t dlen,
                  const uint8_t *sig, size_t siglen)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pub, NULL);
    int ok = c != NULL && EVP_PKEY_verify_init(c) > 0
             && (!rsa_pkcs1 || EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) > 0)
             && EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) > 0
             && EVP_PKEY_verify(c, sig, siglen, dgst, dlen) == 1;

    EVP_PKEY_CTX_free(c);
    ERR_clear_error();
    return ok;
}

static void sign_payload(ihsm_wr *w, uint32_t handle, uint32_t scheme, const uint8_t *dgst)
{
    ihsm_wr_u32(w, handle);
    ihsm_wr_u32(w, scheme);
    ihsm_wr_u32(w, IHSM_MD_SHA256);
    ihsm_wr_u32(w, 0);
    ihsm_wr_u32(w, 0);
    ihsm_wr_bytes(w, dgst, 32);
}

/* The signature in a SIGN completion, checked. Returns 1 good, 0 wrong. */
static int check_sig(const ihsm_result *res, EVP_PKEY *pub, int pkcs1, const uint8_t *dgst)
{
    const uint8_t *sig;
    size_t len = 0;
    ihsm_rd r;

    ihsm_rd_init(&r, res->data, res->len);
    sig = ihsm_rd_bytes(&r, &len, 8192);
    return ihsm_rd_end(&r) == 0 && verify(pub, pkcs1, dgst, 32, sig, len);
}

/* One SIGN on queue qq, checked. BAD_HANDLE is reported to the caller. */
static int sign_one(ihsm_queue *qq, int op, uint32_t handle, const soak_key *k, int pkcs1)
{
    ihsm_result res = { 0 };
    uint8_t dgst[32];
    ihsm_wr w;
    int st;

    RAND_bytes(dgst, sizeof(dgst));
    ihsm_wr_init(&w);
    sign_payload(&w, handle, pkcs1 ? IHSM_SIG_RSA_PKCS1 : IHSM_SIG_ECDSA, dgst);
    st = ihsm_queue_call(qq, IHSM_CMD_SIGN, w.p, w.len, &res);
    ihsm_wr_free(&w);
    if (st == IHSM_OK) {
        if (check_sig(&res, k->pub, pkcs1, dgst))
            succeeded(op);
        else
            wrong(op, "signature does not verify");
    } else {
        failed(op, st);
    }
    ihsm_result_clear(&res);
    return st;
}

/* ---- the operations ---- */

/* A burst of signatures in flight at once: they share frames. */
static int op_sign_burst(void)
{
    ihsm_req *reqs[MAX_BURST] = { 0 };
    uint8_t dgst[MAX_BURST][32];
    int bad_handle = 0;

    RAND_bytes(&dgst[0][0], sizeof(dgst));
    for (unsigned i = 0; i < opt.burst; i++) {
        if ((reqs[i] = ihsm_req_new(q, IHSM_CMD_SIGN)) == NULL) {
            failed(OP_SIGN, IHSM_ERR_NOMEM);
            continue;
        }
        sign_payload(ihsm_req_payload(reqs[i]), ec.handle, IHSM_SIG_ECDSA, dgst[i]);
        int st = ihsm_req_submit(reqs[i]);
        if (st != IHSM_OK) {
            failed(OP_SIGN, st);
            ihsm_req_free(reqs[i]);
            reqs[i] = NULL;
        }
    }
    for (unsigned i = 0; i < opt.burst; i++) {
        ihsm_result res = { 0 };
        int st;

        if (reqs[i] == NULL)
            continue;
        st = ihsm_req_wait(reqs[i], &res);
        if (st == IHSM_OK) {
            if (check_sig(&res, ec.pub, 0, dgst[i]))
                succeeded(OP_SIGN);
            else
                wrong(OP_SIGN, "ECDSA signature does not verify");
        } else {
            bad_handle |= st == IHSM_ERR_BAD_HANDLE;
            failed(OP_SIGN, st);
        }
        ihsm_result_clear(&res);
        ihsm_req_free(reqs[i]);
    }
    return bad_handle ? IHSM_ERR_BAD_HANDLE : IHSM_OK;
}

static int op_derive(void)
{
    EVP_PKEY *peer = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    EVP_PKEY_CTX *c = NULL;
    ihsm_result res = { 0 };
    uint8_t peer_pub[32], mine[32];
    size_t peer_len = sizeof(peer_pub), mine_len = sizeof(mine), got_len = 0;
    const uint8_t *got;
    ihsm_wr w;
    ihsm_rd r;
    int st;

    if (peer == NULL || !EVP_PKEY_get_raw_public_key(peer, peer_pub, &peer_len)) {
        EVP_PKEY_free(peer);
        return failed(OP_DERIVE, IHSM_ERR_CRYPTO), IHSM_ERR_CRYPTO;
    }
    ihsm_wr_init(&w);
    ihsm_wr_u32(&w, x25519.handle);
    ihsm_wr_bytes(&w, peer_pub, peer_len);
    st = ihsm_queue_call(q, IHSM_CMD_DERIVE, w.p, w.len, &res);
    ihsm_wr_free(&w);
    if (st != IHSM_OK) {
        failed(OP_DERIVE, st);
    } else {
        /* the same secret from the other side: peer private, device public */
        int ok = (c = EVP_PKEY_CTX_new(peer, NULL)) != NULL && EVP_PKEY_derive_init(c) > 0
                 && EVP_PKEY_derive_set_peer(c, x25519.pub) > 0
                 && EVP_PKEY_derive(c, mine, &mine_len) > 0;

        ihsm_rd_init(&r, res.data, res.len);
        got = ihsm_rd_bytes(&r, &got_len, 64);
        if (ok && ihsm_rd_end(&r) == 0 && got_len == mine_len
            && CRYPTO_memcmp(got, mine, mine_len) == 0)
            succeeded(OP_DERIVE);
        else
            wrong(OP_DERIVE, "shared secret differs from the peer's");
    }
    OPENSSL_cleanse(mine, sizeof(mine));
    ihsm_result_clear(&res);
    EVP_PKEY_CTX_free(c);
    EVP_PKEY_free(peer);
    ERR_clear_error();
    return st;
}

static int aead_call(int seal, const uint8_t *iv, const uint8_t *aad, size_t aad_len,
                     const uint8_t *in, size_t in_len, ihsm_result *res)
{
    ihsm_wr w;
    int st;

    ihsm_wr_init(&w);
    ihsm_wr_u32(&w, aes.handle);
    ihsm_wr_u32(&w, IHSM_AEAD_AES_GCM);
    ihsm_wr_bytes(&w, iv, 12);
    ihsm_wr_bytes(&w, aad, aad_len);
    ihsm_wr_bytes(&w, in, in_len);
    ihsm_wr_u32(&w, 16);
    st = ihsm_queue_call(q, seal ? IHSM_CMD_AEAD_SEAL : IHSM_CMD_AEAD_OPEN, w.p, w.len, res);
    ihsm_wr_free(&w);
    return st;
}

static int op_aead(void)
{
    static uint8_t pt[MAX_AEAD], ct[MAX_AEAD + 16];
    ihsm_result res = { 0 };
    uint8_t iv[12], aad[32], lenb[2];
    const uint8_t *b;
    size_t n, ct_len = 0, len = 0;
    ihsm_rd r;
    int st;

    RAND_bytes(lenb, sizeof(lenb));
    n = 1 + ((size_t)lenb[0] << 8 | lenb[1]) % MAX_AEAD;
    RAND_bytes(pt, n);
    RAND_bytes(iv, sizeof(iv));
    RAND_bytes(aad, sizeof(aad));
    if ((st = aead_call(1, iv, aad, sizeof(aad), pt, n, &res)) != IHSM_OK) {
        ihsm_result_clear(&res);
        return failed(OP_AEAD, st), st;
    }
    ihsm_rd_init(&r, res.data, res.len);
    b = ihsm_rd_bytes(&r, &ct_len, sizeof(ct));
    if (ihsm_rd_end(&r) != 0 || ct_len != n + 16) {
        ihsm_result_clear(&res);
        return wrong(OP_AEAD, "seal output has the wrong length"), IHSM_OK;
    }
    memcpy(ct, b, ct_len);
    ihsm_result_clear(&res);

    if ((st = aead_call(0, iv, aad, sizeof(aad), ct, ct_len, &res)) != IHSM_OK) {
        ihsm_result_clear(&res);
        return failed(OP_AEAD, st), st;
    }
    ihsm_rd_init(&r, res.data, res.len);
    b = ihsm_rd_bytes(&r, &len, sizeof(pt));
    if (ihsm_rd_end(&r) != 0 || len != n || memcmp(b, pt, n) != 0) {
        ihsm_result_clear(&res);
        return wrong(OP_AEAD, "open returned other bytes than were sealed"), IHSM_OK;
    }
    ihsm_result_clear(&res);

    ct[ct_len - 1] ^= 0x01; /* a flipped tag bit must be refused */
    st = aead_call(0, iv, aad, sizeof(aad), ct, ct_len, &res);
    ihsm_result_clear(&res);
    if (st == IHSM_OK)
        return wrong(OP_AEAD, "open accepted a forged tag"), IHSM_OK;
    if (st != IHSM_ERR_AEAD_TAG)
        return failed(OP_AEAD, st), st;
    succeeded(OP_AEAD);
    return IHSM_OK;
}

/* Load a key nobody holds, use it once, unload it. */
static int op_load(ihsm_queue *qq)
{
    int st;
    uint32_t h = unmask_on(qq, &spare, &st);

    if (h == 0)
        return failed(OP_LOAD, st), st;
    st = sign_one(qq, OP_LOAD, h, &spare, 0);
    if (st == IHSM_OK && (st = release_on(qq, h)) != IHSM_OK)
        failed(OP_LOAD, st);
    return st;
}

/* A second connection and session, used briefly and closed. */
static void op_connect(void)
{
    ihsm_queue_config cfg = { .socket_path = opt.socket, .credential_path = opt.credential };
    ihsm_result res = { 0 };
    ihsm_queue *q2 = NULL;
    int st = ihsm_queue_new(&cfg, &q2);

    if (st == IHSM_OK)
        st = ihsm_queue_connect(q2);
    if (st == IHSM_OK)
        st = ihsm_queue_call(q2, IHSM_CMD_INFO, NULL, 0, &res);
    ihsm_result_clear(&res);
    if (st == IHSM_OK)
        st = op_load(q2); /* counted under load */
    if (st == IHSM_OK)
        succeeded(OP_CONNECT);
    else
        failed(OP_CONNECT, st);
    ihsm_queue_free(q2);
}

/* ---- the loop ---- */

static void summary(char kind, double elapsed)
{
    printf("%c {\"elapsed_s\": %.1f, \"iterations\": %llu, \"reloads\": %llu, "
           "\"longest_iteration_ms\": %.1f", kind, elapsed, iterations, reloads,
           longest_iter * 1e3);
    for (int i = 0; i < N_OPS; i++)
        printf(", \"%s\": {\"ok\": %llu, \"errors\": %llu, \"wrong\": %llu}", op_names[i],
               ok_count[i], err_count[i], wrong_count[i]);
    printf("}\n");
    fflush(stdout);
}

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static const char help[] =
    "Usage: ihsm-soak [--seconds S] [--rate N] [--burst N] [--connect-every N]\n"
    "                 [--progress S] [--socket PATH] [--credential FILE]\n"
    "\n"
    "Soak client for bench/soak/run: mixed device operations at N iterations a\n"
    "second (default 50) for S seconds (default 60), every answer checked in\n"
    "process. Socket and credential default to $IHSM_SOCKET, $IHSM_CREDENTIAL.\n"
    "Events on stdout: E (failed request), W (wrong result), P/S (JSON counts).\n";

static int parse(int argc, char **argv)
{
    static const struct option opts[] = {
        { "seconds", required_argument, NULL, 's' },
        { "rate", required_argument, NULL, 'r' },
        { "burst", required_argument, NULL, 'b' },
        { "connect-every", required_argument, NULL, 'c' },
        { "progress", required_argument, NULL, 'p' },
        { "socket", required_argument, NULL, 'S' },
        { "credential", required_argument, NULL, 'C' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    char *end;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int numeric = c != 'S' && c != 'C' && optarg != NULL;
        double v = numeric ? strtod(optarg, &end) : 0;

        if (numeric && (*end != '\0' || end == optarg || v < 0)) {
            fprintf(stderr, "ihsm-soak: '%s' is not a number\n", optarg);
            return -1;
        }
        switch (c) {
        case 's': opt.seconds = v; break;
        case 'r': opt.rate = v; break;
        case 'b': opt.burst = (unsigned)v; break;
        case 'c': opt.connect_every = (unsigned)v; break;
        case 'p': opt.progress = v; break;
        case 'S': opt.socket = optarg; break;
        case 'C': opt.credential = optarg; break;
        case 'h': fputs(help, stdout); exit(0);
        default: fputs(help, stderr); return -1;
        }
    }
    if (opt.rate <= 0 || opt.rate > 10000 || opt.burst < 1 || opt.burst > MAX_BURST) {
        fprintf(stderr, "ihsm-soak: --rate 0..10000 and --burst 1..%d\n", MAX_BURST);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    ihsm_queue_config cfg = { 0 };
    double t0, next, last_progress;
    int st;

    if (parse(argc, argv) != 0)
        return 2;
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    cfg.socket_path = opt.socket;
    cfg.credential_path = opt.credential;
    if ((st = ihsm_queue_new(&cfg, &q)) != IHSM_OK || (st = ihsm_queue_connect(q)) != IHSM_OK) {
        fprintf(stderr, "ihsm-soak: %s\n", q != NULL ? ihsm_queue_last_error(q) : ihsm_status_str(st));
        return 1;
    }
    if (generate(&ec, IHSM_KEY_EC_P256, 256, IHSM_USAGE_SIGN) != 0
        || generate(&rsa, IHSM_KEY_RSA, 2048, IHSM_USAGE_SIGN) != 0
        || generate(&x25519, IHSM_KEY_X25519, 256, IHSM_USAGE_DERIVE) != 0
        || generate(&aes, IHSM_KEY_AES, 256, 0) != 0
        || generate(&spare, IHSM_KEY_EC_P256, 256, IHSM_USAGE_SIGN) != 0) {
        fprintf(stderr, "ihsm-soak: cannot make the keys: %s\n", ihsm_queue_last_error(q));
        return 1;
    }
    /* the spare key is loaded only inside op_load */
    if (release_on(q, spare.handle) != IHSM_OK) {
        fprintf(stderr, "ihsm-soak: cannot release the spare key\n");
        return 1;
    }
    printf("R %.3f ready\n", now_real());
    fflush(stdout);

    t0 = next = last_progress = now_mono();
    while (!stop && now_mono() - t0 < opt.seconds) {
        double it0 = now_mono();
        int bad = 0;

        iterations++;
        bad |= op_sign_burst() == IHSM_ERR_BAD_HANDLE;
        if (iterations % 4 == 0)
            bad |= sign_one(q, OP_RSA, rsa.handle, &rsa, 1) == IHSM_ERR_BAD_HANDLE;
        bad |= op_derive() == IHSM_ERR_BAD_HANDLE;
        bad |= op_aead() == IHSM_ERR_BAD_HANDLE;
        op_load(q);
        if (opt.connect_every > 0 && iterations % opt.connect_every == 0)
            op_connect();
        if (bad)
            reload();
        if (now_mono() - it0 > longest_iter)
            longest_iter = now_mono() - it0;

        if (opt.progress > 0 && now_mono() - last_progress >= opt.progress) {
            last_progress = now_mono();
            summary('P', last_progress - t0);
        }
        /* pace: sleep until the next slot; never try to catch up a burst */
        next += 1.0 / opt.rate;
        double wait = next - now_mono();
        if (wait > 0) {
            struct timespec ts = { (time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9) };
            nanosleep(&ts, NULL);
        } else if (wait < -1.0) {
            next = now_mono();
        }
    }
    summary('S', now_mono() - t0);
    ihsm_queue_free(q);
    return 0;
}
