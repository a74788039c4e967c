/*
 * ihsmctl bench: one thread keeps N requests in flight on the offload queue
 * (ihsm_req_new/submit + ihsm_queue_poll) for S seconds and reports what
 * the batching did: operations per second, requests per frame, the largest
 * batch, the cost per request and the mean latency. `--op sign --baseline`
 * then signs in process with OpenSSL's default provider for the same time,
 * so one run compares the device path to the in-process one.
 */
#include "tools_common.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include "ihsm_keyfile.h"

#define MAX_INFLIGHT 4096
#define POLL_MS 100
#define BENCH_MSG "ihsm bench: the same message every time"

enum bench_op { OP_RANDOM, OP_SIGN };

typedef struct {
    ihsm_req *r;
    double t0; /* submit time, seconds */
} slot;

typedef struct {
    enum bench_op op;
    long inflight;
    double seconds;
    long size;
    /* results */
    uint64_t ops, errors;
    int first_error;
    double wall, lat_sum;
    ihsm_queue_stats st;
    double base_ops_s; /* 0: no baseline */
    char key_desc[64];
} bench;

static const char help[] =
    "Usage: ihsmctl bench --op random|sign [--name NAME | --key FILE] [--digest sha256]\n"
    "                     [--size N] --inflight N --seconds S [--baseline] [--json]\n"
    "                     [--batch N] [--delay-us N]\n"
    "\n"
    "Keep N requests in flight on the offload queue from one thread for S seconds\n"
    "and report operations per second, requests per frame (how many requests\n"
    "shared one message to the device), the largest batch, the wall time per\n"
    "operation, the mean latency per request and errors.\n"
    "\n"
    "  --op random     RANDOM of --size bytes (default 32): pure transport cost\n"
    "  --op sign       SIGN of a fixed digest with --name/--key, or with a\n"
    "                  transient EC P-256 key generated for the run\n"
    "  --digest MD     digest for sign (default sha256; ignored for Ed25519)\n"
    "  --inflight N    requests kept in flight (1..4096)\n"
    "  --seconds S     how long to run (up to 3600, fractions allowed)\n"
    "  --baseline      sign only: then sign in process with OpenSSL's default\n"
    "                  provider, same key type, same time; print the ratio\n"
    "  --batch N       queue: most requests per frame (default the queue's, 64)\n"
    "  --delay-us N    queue: longest a request waits to coalesce\n"
    "  --json          one JSON object instead of text\n";

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the key and the request payload ---- */

typedef struct {
    uint32_t handle, type, bits, scheme, md;
    uint8_t *spki; size_t spki_len;
    ihsm_wr payload; /* prebuilt: copied into every request */
} bench_key;

static int transient_key(ihsm_tool *t, bench_key *bk)
{
    ihsm_result res;
    ihsm_wr w;
    ihsm_rd r;
    const uint8_t *pub;
    size_t blob_len = 0, pub_len = 0;
    int st;

    ihsm_wr_init(&w);
    ihsm_wr_u32(&w, IHSM_KEY_EC_P256);
    ihsm_wr_u32(&w, ihsm_tool_wire_bits(IHSM_KEY_EC_P256, 256));
    ihsm_wr_u32(&w, 0);
    ihsm_wr_u32(&w, 0); /* not persisted: gone when the session closes */
    ihsm_wr_bytes(&w, "", 0);
    st = ihsm_tool_call(t, IHSM_CMD_KEY_GENERATE, &w, &res);
    ihsm_wr_free(&w);
    if (st != IHSM_OK) {
        ihsm_result_clear(&res);
        return ihsm_tool_status_err(t, st, "cannot generate the transient EC P-256 key");
    }
    ihsm_rd_init(&r, res.data, res.len);
    bk->handle = ihsm_rd_u32(&r);
    (void)ihsm_rd_bytes(&r, &blob_len, IHSM_MAX_BLOB);
    pub = ihsm_rd_bytes(&r, &pub_len, 4096);
    if (ihsm_rd_end(&r) != 0 || pub_len == 0 || (bk->spki = malloc(pub_len)) == NULL) {
        ihsm_result_clear(&res);
        ihsm_tool_err(t, "the device's answer to KEY_GENERATE is malformed");
        return IHSM_TOOL_FAIL;
    }
    memcpy(bk->spki, pub, pub_len);
    bk->spki_len = pub_len;
    bk->type = IHSM_KEY_EC_P256;
    bk->bits = 256;
    ihsm_result_clear(&res);
    return IHSM_TOOL_OK;
}

static int sign_setup(ihsm_tool *t, const char *name, const char *file, uint32_t md,
                      bench_key *bk, char *desc, size_t desc_len)
{
    uint8_t tbs[EVP_MAX_MD_SIZE];
    unsigned int tbs_len = 0;
    char tname[32];
    int rc;

    if (name != NULL || file != NULL) {
        ihsm_tool_key k;

        if ((rc = ihsm_tool_key_load(t, name, file, &k)) != IHSM_TOOL_OK)
            return rc;
        bk->handle = k.handle;
        bk->type = k.type;
        bk->bits = k.bits;
        bk->spki = k.spki;
        bk->spki_len = k.spki_len;
        k.spki = NULL;
        ihsm_tool_key_clear(&k);
    } else if ((rc = transient_key(t, bk)) != IHSM_TOOL_OK) {
        return rc;
    }
    ihsm_tool_type_name(bk->type, bk->bits, tname, sizeof(tname));
    snprintf(desc, desc_len, "%s%s%s", tname, name || file ? " " : " (transient)",
             name ? name : file ? file : "");
    bk->scheme = ihsm_tool_default_scheme(bk->type);
    if (bk->scheme == 0) {
        ihsm_tool_err(t, "%s is an %s key, which cannot sign", name ? name : file, tname);
        return IHSM_TOOL_FAIL;
    }
    bk->md = bk->scheme == IHSM_SIG_ED25519 ? IHSM_MD_NONE : md;
    if (bk->md == IHSM_MD_NONE) {
        if (bk->scheme != IHSM_SIG_ED25519)
            return ihsm_tool_usage_err(t, "bench --op sign needs a digest (--digest sha256)");
        memcpy(tbs, BENCH_MSG, 32);
        tbs_len = 32;
    } else if (!EVP_Digest(BENCH_MSG, strlen(BENCH_MSG), tbs, &tbs_len,
                           EVP_get_digestbyname(ihsm_tool_md_evp_name(bk->md)), NULL)) {
        ihsm_tool_err(t, "digest not available in OpenSSL");
        return IHSM_TOOL_FAIL;
    }
    ihsm_wr_init(&bk->payload);
    ihsm_wr_u32(&bk->payload, bk->handle);
    ihsm_wr_u32(&bk->payload, bk->scheme);
    ihsm_wr_u32(&bk->payload, bk->md);
    ihsm_wr_u32(&bk->payload, IHSM_MD_NONE);
    ihsm_wr_u32(&bk->payload, (uint32_t)IHSM_PSS_SALT_DIGEST);
    ihsm_wr_bytes(&bk->payload, tbs, tbs_len);
    return bk->payload.err ? IHSM_TOOL_FAIL : IHSM_TOOL_OK;
}

static void bench_key_clear(bench_key *bk)
{
    free(bk->spki); /* malloc'd, here or by tools_key.c */
    ihsm_wr_free(&bk->payload);
    memset(bk, 0, sizeof(*bk));
}

/* ---- the loop ---- */

static int submit(ihsm_tool *t, bench *b, const ihsm_wr *payload, slot *s)
{
    uint16_t cmd = b->op == OP_RANDOM ? IHSM_CMD_RANDOM : IHSM_CMD_SIGN;
    int st;

    s->r = ihsm_req_new(t->q, cmd);
    if (s->r == NULL)
        return IHSM_ERR_NOMEM;
    ihsm_wr_raw(ihsm_req_payload(s->r), payload->p, payload->len);
    if (ihsm_req_payload(s->r)->err) {
        ihsm_req_free(s->r);
        s->r = NULL;
        return IHSM_ERR_NOMEM;
    }
    s->t0 = now_s();
    st = ihsm_req_submit(s->r);
    if (st != IHSM_OK) {
        ihsm_req_free(s->r);
        s->r = NULL;
    }
    return st;
}

static void note_error(bench *b, int st)
{
    if (b->errors++ == 0)
        b->first_error = st;
}

static int run_loop(ihsm_tool *t, bench *b, const ihsm_wr *payload)
{
    ihsm_queue_stats before, after;
    slot *slots = calloc((size_t)b->inflight, sizeof(*slots));
    double start, deadline, now, last_progress;
    long active = 0;
    int rc = IHSM_TOOL_OK;

    if (slots == NULL) {
        ihsm_tool_err(t, "out of memory");
        return IHSM_TOOL_FAIL;
    }
    ihsm_queue_get_stats(t->q, &before);
    start = last_progress = now_s();
    deadline = start + b->seconds;
    /* Fill the window without polling: everything after the first request
     * queues up and leaves together on the first poll. */
    for (long i = 0; i < b->inflight; i++) {
        int st = submit(t, b, payload, &slots[i]);

        if (st != IHSM_OK)
            note_error(b, st);
        else
            active++;
    }
    while (active > 0) {
        int n = ihsm_queue_poll(t->q, POLL_MS);

        now = now_s();
        if (n < 0) {
            note_error(b, -n);
        } else if (n > 0) {
            last_progress = now;
        } else if (now - last_progress > 30.0) {
            /* Requests have their own timeouts; this only guards the tool. */
            ihsm_tool_err(t, "no completion for 30 s with %ld requests in flight: giving up",
                          active);
            rc = IHSM_TOOL_FAIL;
            break;
        }
        for (long i = 0; i < b->inflight; i++) {
            slot *s = &slots[i];
            ihsm_result res;
            int st;

            if (s->r == NULL || !ihsm_req_done(s->r))
                continue;
            st = ihsm_req_wait(s->r, &res);
            ihsm_result_clear(&res);
            ihsm_req_free(s->r);
            s->r = NULL;
            active--;
            if (st == IHSM_OK) {
                b->ops++;
                b->lat_sum += now - s->t0;
            } else {
                note_error(b, st);
            }
            if (now < deadline) {
                st = submit(t, b, payload, s);
                if (st == IHSM_OK)
                    active++;
                else
                    note_error(b, st);
            }
        }
        /* A device that fails everything: stop rather than spin. */
        if (b->ops == 0 && b->errors > (uint64_t)b->inflight * 4 + 16) {
            rc = IHSM_TOOL_FAIL;
            break;
        }
    }
    b->wall = now_s() - start;
    for (long i = 0; i < b->inflight; i++)
        if (slots[i].r != NULL)
            ihsm_req_free(slots[i].r);
    free(slots);
    ihsm_queue_get_stats(t->q, &after);
    /* Only this loop's traffic: setup calls (session, keygen) are excluded. */
    b->st = after;
    b->st.requests = after.requests - before.requests;
    b->st.completions = after.completions - before.completions;
    b->st.frames_sent = after.frames_sent - before.frames_sent;
    b->st.frames_received = after.frames_received - before.frames_received;
    return rc;
}

/* ---- the in-process baseline ---- */

static EVP_PKEY *baseline_key(const bench_key *bk)
{
    switch (bk->type) {
    case IHSM_KEY_RSA: return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bk->bits);
    case IHSM_KEY_EC_P256: return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    case IHSM_KEY_EC_P384: return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    case IHSM_KEY_ED25519: return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    default: return NULL;
    }
}

/* The same signature, the same time, in this thread. ops/s or -1. */
static double run_baseline(const bench *b, const bench_key *bk)
{
    EVP_PKEY *pk = baseline_key(bk);
    EVP_PKEY_CTX *pctx = NULL;
    EVP_MD_CTX *mctx = NULL;
    const uint8_t *tbs = bk->payload.p + 6 * 4; /* after the five u32 and the length */
    size_t tbs_len = bk->payload.len - 6 * 4;
    uint8_t sig[1024];
    uint64_t ops = 0;
    double start, end;
    int ok = 0;

    if (pk == NULL)
        return -1;
    if (bk->scheme == IHSM_SIG_ED25519) {
        mctx = EVP_MD_CTX_new();
        if (mctx == NULL)
            goto done;
    } else {
        pctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
        if (pctx == NULL || EVP_PKEY_sign_init(pctx) != 1
            || EVP_PKEY_CTX_set_signature_md(pctx, EVP_get_digestbyname(
                   ihsm_tool_md_evp_name(bk->md))) <= 0
            || (bk->type == IHSM_KEY_RSA
                && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0))
            goto done;
    }
    start = now_s();
    end = start + b->seconds;
    do {
        size_t sig_len = sizeof(sig);

        if (mctx != NULL) {
            if (EVP_DigestSignInit_ex(mctx, NULL, NULL, NULL, NULL, pk, NULL) != 1
                || EVP_DigestSign(mctx, sig, &sig_len, tbs, tbs_len) != 1)
                goto done;
        } else if (EVP_PKEY_sign(pctx, sig, &sig_len, tbs, tbs_len) != 1) {
            goto done;
        }
        ops++;
    } while (now_s() < end);
    ok = 1;
    end = now_s();
done:
    EVP_MD_CTX_free(mctx);
    EVP_PKEY_CTX_free(pctx);
    EVP_PKEY_free(pk);
    return ok ? (double)ops / (end - start) : -1;
}

/* ---- report ---- */

static void report(const bench *b, int json)
{
    double ops_s = b->wall > 0 ? (double)b->ops / b->wall : 0;
    double rpf = b->st.frames_sent ? (double)b->st.requests / (double)b->st.frames_sent : 0;
    double us_req = b->ops ? b->wall * 1e6 / (double)b->ops : 0;
    double lat_us = b->ops ? b->lat_sum * 1e6 / (double)b->ops : 0;

    if (json) {
        printf("{\"op\": \"%s\", \"inflight\": %ld, \"seconds\": %.3f, \"operations\": %llu, "
               "\"ops_per_s\": %.1f, \"requests\": %llu, \"frames\": %llu, "
               "\"requests_per_frame\": %.3f, \"largest_batch\": %llu, "
               "\"us_per_request\": %.3f, \"mean_latency_us\": %.1f, \"errors\": %llu",
               b->op == OP_RANDOM ? "random" : "sign", b->inflight, b->wall,
               (unsigned long long)b->ops, ops_s, (unsigned long long)b->st.requests,
               (unsigned long long)b->st.frames_sent, rpf,
               (unsigned long long)b->st.largest_batch, us_req, lat_us,
               (unsigned long long)b->errors);
        if (b->op == OP_RANDOM)
            printf(", \"size\": %ld", b->size);
        else
            printf(", \"key\": \"%s\"", b->key_desc);
        if (b->base_ops_s > 0)
            printf(", \"baseline_ops_per_s\": %.1f, \"ratio\": %.3f", b->base_ops_s,
                   ops_s / b->base_ops_s);
        fputs("}\n", stdout);
        return;
    }
    if (b->op == OP_RANDOM)
        printf("op                random, %ld bytes\n", b->size);
    else
        printf("op                sign, key %s\n", b->key_desc);
    printf("in flight         %ld\n", b->inflight);
    printf("seconds           %.2f\n", b->wall);
    printf("operations        %llu\n", (unsigned long long)b->ops);
    printf("ops/s             %.0f\n", ops_s);
    printf("requests/frame    %.2f (%llu requests in %llu frames)\n", rpf,
           (unsigned long long)b->st.requests, (unsigned long long)b->st.frames_sent);
    printf("largest batch     %llu\n", (unsigned long long)b->st.largest_batch);
    printf("us per request    %.2f (wall time / operations)\n", us_req);
    printf("mean latency      %.1f us (submit to completion)\n", lat_us);
    printf("errors            %llu\n", (unsigned long long)b->errors);
    if (b->base_ops_s > 0) {
        printf("baseline          %.0f ops/s (OpenSSL default provider, in process, 1 thread)\n",
               b->base_ops_s);
        printf("ratio             %.2fx (ihsm / in-process)\n", ops_s / b->base_ops_s);
    }
}

int ihsm_cmd_bench(ihsm_tool *t, int argc, char **argv)
{
    static const struct option opts[] = {
        { "op", required_argument, NULL, 'o' },
        { "name", required_argument, NULL, 'n' },
        { "key", required_argument, NULL, 'k' },
        { "digest", required_argument, NULL, 'd' },
        { "size", required_argument, NULL, 'z' },
        { "inflight", required_argument, NULL, 'i' },
        { "seconds", required_argument, NULL, 's' },
        { "baseline", no_argument, NULL, 'b' },
        { "batch", required_argument, NULL, 'B' },
        { "delay-us", required_argument, NULL, 'D' },
        { "json", no_argument, NULL, 'j' },
        IHSM_TOOL_GLOBAL_OPTS,
        { NULL, 0, NULL, 0 },
    };
    const char *op = NULL, *name = NULL, *file = NULL, *secs = NULL;
    uint32_t md = IHSM_MD_SHA256;
    bench b;
    bench_key bk;
    ihsm_wr payload;
    int c, json = 0, baseline = 0, rc;
    long v;
    char *end;

    memset(&b, 0, sizeof(b));
    memset(&bk, 0, sizeof(bk));
    b.size = 32;
    b.inflight = -1;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': op = optarg; break;
        case 'n': name = optarg; break;
        case 'k': file = optarg; break;
        case 's': secs = optarg; break;
        case 'b': baseline = 1; break;
        case 'j': json = 1; break;
        case 'd':
            if (ihsm_tool_parse_md(optarg, &md) != 0)
                return ihsm_tool_usage_err(t, "unknown --digest '%s': use sha256, sha384, "
                                           "sha512, sha224 or sha1", optarg);
            break;
        case 'z':
            if (ihsm_tool_parse_long(optarg, 1, 65536, &b.size) != 0)
                return ihsm_tool_usage_err(t, "--size wants 1..65536 bytes, not '%s'", optarg);
            break;
        case 'i':
            if (ihsm_tool_parse_long(optarg, 1, MAX_INFLIGHT, &b.inflight) != 0)
                return ihsm_tool_usage_err(t, "--inflight wants 1..%d, not '%s'",
                                           MAX_INFLIGHT, optarg);
            break;
        case 'B':
            if (ihsm_tool_parse_long(optarg, 1, IHSM_MAX_BATCH, &v) != 0)
                return ihsm_tool_usage_err(t, "--batch wants 1..%d, not '%s'",
                                           IHSM_MAX_BATCH, optarg);
            t->batch_max = (unsigned)v;
            break;
        case 'D':
            if (ihsm_tool_parse_long(optarg, 1, 1000000, &v) != 0)
                return ihsm_tool_usage_err(t, "--delay-us wants 1..1000000, not '%s'", optarg);
            t->delay_us = (unsigned)v;
            break;
        case 'h': fputs(help, stdout); return IHSM_TOOL_OK;
        default:
            if (ihsm_tool_global_opt(t, c, optarg))
                break;
            return ihsm_tool_bad_option(t, argv);
        }
    }
    if ((rc = ihsm_tool_no_operands(t, argc, argv)) != IHSM_TOOL_OK)
        return rc;
    if (op == NULL)
        return ihsm_tool_usage_err(t, "--op random|sign is required");
    if (strcmp(op, "random") == 0)
        b.op = OP_RANDOM;
    else if (strcmp(op, "sign") == 0)
        b.op = OP_SIGN;
    else
        return ihsm_tool_usage_err(t, "unknown --op '%s': use random or sign", op);
    if (b.inflight < 0)
        return ihsm_tool_usage_err(t, "--inflight N is required (requests kept in flight)");
    if (secs == NULL)
        return ihsm_tool_usage_err(t, "--seconds S is required (how long to run)");
    b.seconds = strtod(secs, &end);
    if (*secs == '\0' || *end != '\0' || !(b.seconds > 0 && b.seconds <= 3600))
        return ihsm_tool_usage_err(t, "--seconds wants a number in (0, 3600], not '%s'", secs);
    if (name != NULL && file != NULL)
        return ihsm_tool_usage_err(t, "give at most one of --name and --key");
    if (b.op == OP_RANDOM && (name != NULL || file != NULL || baseline))
        return ihsm_tool_usage_err(t, "--name, --key and --baseline are for --op sign");
    if (b.op == OP_SIGN && md == IHSM_MD_NONE)
        return ihsm_tool_usage_err(t, "bench --op sign needs a digest (--digest sha256)");

    if (ihsm_tool_queue(t, &rc) == NULL)
        return rc;
    if (b.op == OP_SIGN) {
        if ((rc = sign_setup(t, name, file, md, &bk, b.key_desc, sizeof(b.key_desc)))
            != IHSM_TOOL_OK) {
            bench_key_clear(&bk);
            return rc;
        }
        rc = run_loop(t, &b, &bk.payload);
    } else {
        ihsm_wr_init(&payload);
        ihsm_wr_u32(&payload, (uint32_t)b.size);
        rc = run_loop(t, &b, &payload);
        ihsm_wr_free(&payload);
    }
    if (rc == IHSM_TOOL_OK && b.op == OP_SIGN && baseline) {
        b.base_ops_s = run_baseline(&b, &bk);
        if (b.base_ops_s < 0) {
            ihsm_tool_err(t, "the in-process baseline could not sign with a %s key",
                          b.key_desc);
            b.base_ops_s = 0;
        }
    }
    bench_key_clear(&bk);
    report(&b, json);
    if (b.errors != 0) {
        ihsm_tool_status_err(t, b.first_error, "%llu of %llu requests failed; the first",
                             (unsigned long long)b.errors,
                             (unsigned long long)(b.errors + b.ops));
        return IHSM_TOOL_FAIL;
    }
    return rc;
}
