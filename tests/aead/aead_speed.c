/*
 * ihsm-aead-speed: AEAD record sealing through the ihsm provider against
 * OpenSSL's default provider in the same run, to find the record size
 * above which the device is worth it (docs/configuration.md, "AEAD").
 *
 * Each operation seals one record the way libssl seals a TLS 1.3 record:
 * a fresh nonce (init with the IV only), the 5-byte record header as AAD,
 * the text, final, the 16-byte tag. Sides:
 *   device   ihsm's cipher with a raw key and ihsm-aead-min-size 0: every
 *            record goes to ihsmd (under a session key), or with --key
 *            ihsm:NAME a device key;
 *   wrapper  ihsm's cipher with the raw key kept in process (min size
 *            above the record): the cost of our buffering alone;
 *   default  OpenSSL's default provider.
 * Each side runs with 1 record in flight (a plain loop) and with --jobs
 * records in flight (OpenSSL ASYNC jobs on one thread, as HAProxy and
 * `openssl speed -async_jobs` do: the queue batches their requests).
 * Slices of --seconds are interleaved across sides, --repeat times; the
 * median is printed.
 *
 * Usage: ihsm-aead-speed [--sizes 64,256,1024,4096,16384]
 *          [--algs AES-256-GCM,ChaCha20-Poly1305] [--jobs 32] [--seconds 0.3]
 *          [--repeat 3] [--key ihsm:NAME] [--provider-path DIR] [--json]
 * The device comes from IHSM_SOCKET and IHSM_CREDENTIAL.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/async.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rand.h>

#define MAX_JOBS 256
#define MAX_SIZES 16
#define MAX_ALGS 4
#define MAX_REPEAT 15
#define AAD_LEN 5
#define TAG_LEN 16

enum side { S_DEVICE, S_WRAPPER, S_DEFAULT, S_COUNT };
static const char *const side_name[S_COUNT] = { "device", "wrapper", "default" };

static struct {
    size_t sizes[MAX_SIZES];
    int nsizes;
    const char *algs[MAX_ALGS];
    int nalgs;
    int jobs;
    double seconds;
    int repeat;
    const char *key;
    const char *provider_path;
    int json;
} opt = { { 64, 256, 1024, 4096, 16384 }, 5, { "AES-256-GCM", "ChaCha20-Poly1305" }, 2,
          32, 0.3, 3, NULL, NULL, 0 };

static OSSL_LIB_CTX *lc_ihsm, *lc_base;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) __attribute__((noreturn));
static void die(const char *what)
{
    fprintf(stderr, "ihsm-aead-speed: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

/* ---------------------------------------------------------------- a slot */

struct slot {
    EVP_CIPHER_CTX *ctx;
    unsigned char iv[12], aad[AAD_LEN], tag[TAG_LEN];
    unsigned char *in, *out;
    size_t size;
    uint64_t seq;
    ASYNC_JOB *job;
    ASYNC_WAIT_CTX *wctx;
    int paused;
};

static int seal_one(struct slot *s)
{
    int n = 0, f = 0;

    s->seq++;
    memcpy(s->iv + 4, &s->seq, sizeof(s->seq));
    return EVP_EncryptInit_ex2(s->ctx, NULL, NULL, s->iv, NULL)
           && EVP_EncryptUpdate(s->ctx, NULL, &n, s->aad, AAD_LEN)
           && EVP_EncryptUpdate(s->ctx, s->out, &n, s->in, (int)s->size)
           && EVP_EncryptFinal_ex(s->ctx, s->out + n, &f) && (size_t)(n + f) == s->size
           && EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, s->tag) > 0;
}

static int slot_init(struct slot *s, enum side side, const char *alg, size_t size,
                     const unsigned char *key, unsigned idx)
{
    OSSL_LIB_CTX *lc = side == S_DEFAULT ? lc_base : lc_ihsm;
    EVP_CIPHER *c = EVP_CIPHER_fetch(lc, alg, side == S_DEFAULT ? NULL : "provider=ihsm");
    OSSL_PARAM p[3], *pp = p;
    size_t min = side == S_DEVICE ? 0 : (size_t)INT_MAX;

    memset(s, 0, sizeof(*s));
    if (c == NULL)
        return 0;
    s->size = size;
    memcpy(s->iv, &idx, sizeof(idx)); /* no two slots share a nonce */
    s->aad[0] = 0x17;
    s->aad[1] = s->aad[2] = 0x03;
    s->aad[3] = (unsigned char)((size + TAG_LEN) >> 8);
    s->aad[4] = (unsigned char)(size + TAG_LEN);
    if (side != S_DEFAULT)
        *pp++ = OSSL_PARAM_construct_size_t("ihsm-aead-min-size", &min);
    if (side == S_DEVICE && opt.key != NULL)
        *pp++ = OSSL_PARAM_construct_utf8_string("ihsm-key", (char *)opt.key, 0);
    *pp = OSSL_PARAM_construct_end();
    s->in = malloc(size + 1);
    s->out = malloc(size + 64);
    s->ctx = EVP_CIPHER_CTX_new();
    if (s->in == NULL || s->out == NULL || s->ctx == NULL
        || !EVP_EncryptInit_ex2(s->ctx, c,
                                side == S_DEVICE && opt.key != NULL ? NULL : key, NULL, p)) {
        EVP_CIPHER_free(c);
        return 0;
    }
    EVP_CIPHER_free(c);
    memset(s->in, 'r', size);
    return 1;
}

static void slot_free(struct slot *s)
{
    EVP_CIPHER_CTX_free(s->ctx); /* releases a session key */
    ASYNC_WAIT_CTX_free(s->wctx);
    free(s->in);
    free(s->out);
}

/* ---------------------------------------------------------------- runs */

/* One in flight: a plain loop. Returns operations per second. */
static double run_sync(struct slot *s, double seconds)
{
    double t0 = now_s(), t;
    long n = 0;

    do {
        for (int i = 0; i < 8; i++, n++)
            if (!seal_one(s))
                die("a seal failed");
        t = now_s();
    } while (t - t0 < seconds);
    return (double)n / (t - t0);
}

static int job_fn(void *arg)
{
    return seal_one(*(struct slot **)arg);
}

/* Start or resume slot s's job until it pauses or the slice is over;
 * counts finished seals. */
static void kick(struct slot *s, long *done, double end)
{
    int ret = 0;

    for (;;) {
        if (s->job == NULL && now_s() >= end)
            return;
        switch (ASYNC_start_job(&s->job, s->wctx, &ret, job_fn, &s, sizeof(s))) {
        case ASYNC_PAUSE:
            s->paused = 1;
            return;
        case ASYNC_FINISH:
            if (!ret)
                die("a seal failed (async)");
            (*done)++;
            break;
        default:
            die("ASYNC_start_job failed");
        }
    }
}

/* n slots in flight as ASYNC jobs on this thread. */
static double run_async(struct slot *s, int n, double seconds)
{
    struct pollfd pfd[MAX_JOBS];
    int owner[MAX_JOBS], busy;
    long done = 0;
    double t0 = now_s(), end = t0 + seconds, t;

    for (int i = 0; i < n; i++)
        kick(&s[i], &done, end);
    for (;;) {
        int np = 0;

        busy = 0;
        for (int i = 0; i < n; i++) {
            OSSL_ASYNC_FD fds[4];
            size_t nf = 0;

            if (!s[i].paused)
                continue;
            busy = 1;
            if (!ASYNC_WAIT_CTX_get_all_fds(s[i].wctx, NULL, &nf) || nf == 0 || nf > 4
                || !ASYNC_WAIT_CTX_get_all_fds(s[i].wctx, fds, &nf)) {
                /* paused without a wait fd: resume it on this turn */
                s[i].paused = 0;
                kick(&s[i], &done, end);
                continue;
            }
            for (size_t k = 0; k < nf && np < MAX_JOBS; k++) {
                pfd[np].fd = fds[k];
                pfd[np].events = POLLIN;
                owner[np++] = i;
            }
        }
        if (!busy)
            break;
        if (np > 0 && poll(pfd, (nfds_t)np, 100) > 0) {
            for (int k = 0; k < np; k++) {
                if ((pfd[k].revents & POLLIN) && s[owner[k]].paused) {
                    s[owner[k]].paused = 0;
                    kick(&s[owner[k]], &done, end);
                }
            }
        }
    }
    t = now_s();
    return (double)done / (t - t0);
}

/* This process's CPU seconds (every thread: the queue's reaper too). */
static double cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6
           + (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* ---------------------------------------------------------------- setup */

/* A configuration value in double quotes: \\ " and $ escaped. */
static void conf_str(FILE *f, const char *a, const char *b)
{
    fputc('"', f);
    for (int i = 0; i < 2; i++)
        for (const char *s = i == 0 ? a : b; *s; s++) {
            if (*s == '"' || *s == '\\' || *s == '$')
                fputc('\\', f);
            fputc(*s, f);
        }
    fputc('"', f);
}

static void load_libs(void)
{
    char exe[4096], conf[] = "/tmp/ihsm-aead-speed.XXXXXX", dir[4200];
    const char *sock = getenv("IHSM_SOCKET"), *cred = getenv("IHSM_CREDENTIAL");
    ssize_t n;
    FILE *f;
    int fd;

    if (sock == NULL || cred == NULL)
        die("set IHSM_SOCKET and IHSM_CREDENTIAL to the device and partition to measure");
    if (opt.provider_path != NULL) {
        snprintf(dir, sizeof(dir), "%s", opt.provider_path);
    } else {
        if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) <= 0)
            die("cannot find my own directory: give --provider-path");
        exe[n] = '\0';
        *strrchr(exe, '/') = '\0';
        snprintf(dir, sizeof(dir), "%s/../lib", exe);
    }
    if ((fd = mkstemp(conf)) < 0 || (f = fdopen(fd, "w")) == NULL)
        die("cannot write a configuration file in /tmp");
    fprintf(f, "openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n"
               "[provider_sect]\ndefault = default_sect\nihsm = ihsm_sect\n"
               "[default_sect]\nactivate = 1\n[ihsm_sect]\nmodule = ");
    conf_str(f, dir, "/ihsm.so");
    fputs("\nactivate = 1\nihsm-socket = ", f);
    conf_str(f, sock, "");
    fputs("\nihsm-credential = ", f);
    conf_str(f, cred, "");
    fputs("\nihsm-route = sign,aead\n", f);
    fclose(f);
    lc_ihsm = OSSL_LIB_CTX_new();
    lc_base = OSSL_LIB_CTX_new();
    if (lc_ihsm == NULL || lc_base == NULL || !OSSL_LIB_CTX_load_config(lc_ihsm, conf)
        || !OSSL_PROVIDER_available(lc_ihsm, "ihsm") || OSSL_PROVIDER_load(lc_base, "default") == NULL) {
        unlink(conf);
        die("cannot load the ihsm provider (and default)");
    }
    unlink(conf);
}

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--json") == 0) {
            opt.json = 1;
            continue;
        }
        if (v == NULL)
            goto usage;
        i++;
        if (strcmp(a, "--sizes") == 0) {
            char *s = strdup(v), *tok, *save = NULL;

            opt.nsizes = 0;
            for (tok = strtok_r(s, ",", &save); tok && opt.nsizes < MAX_SIZES;
                 tok = strtok_r(NULL, ",", &save))
                opt.sizes[opt.nsizes++] = strtoul(tok, NULL, 10);
            free(s);
        } else if (strcmp(a, "--algs") == 0) {
            char *s = strdup(v), *tok, *save = NULL;

            opt.nalgs = 0;
            for (tok = strtok_r(s, ",", &save); tok && opt.nalgs < MAX_ALGS;
                 tok = strtok_r(NULL, ",", &save))
                opt.algs[opt.nalgs++] = strdup(tok);
            free(s);
        } else if (strcmp(a, "--jobs") == 0) {
            opt.jobs = atoi(v);
        } else if (strcmp(a, "--seconds") == 0) {
            opt.seconds = atof(v);
        } else if (strcmp(a, "--repeat") == 0) {
            opt.repeat = atoi(v);
        } else if (strcmp(a, "--key") == 0) {
            opt.key = v;
        } else if (strcmp(a, "--provider-path") == 0) {
            opt.provider_path = v;
        } else {
            goto usage;
        }
    }
    if (opt.jobs < 1 || opt.jobs > MAX_JOBS || opt.repeat < 1 || opt.repeat > MAX_REPEAT
        || opt.seconds <= 0 || opt.seconds > 60 || opt.nsizes == 0 || opt.nalgs == 0)
        goto usage;
    for (int i = 0; i < opt.nsizes; i++)
        if (opt.sizes[i] > 65536)
            goto usage;
    return;
usage:
    fprintf(stderr, "usage: ihsm-aead-speed [--sizes 64,1024,...] [--algs AES-256-GCM,...] "
                    "[--jobs 1..%d] [--seconds S] [--repeat 1..%d] [--key ihsm:NAME] "
                    "[--provider-path DIR] [--json]\n", MAX_JOBS, MAX_REPEAT);
    exit(2);
}

int main(int argc, char **argv)
{
    static struct slot slots[S_COUNT][MAX_JOBS];
    unsigned char key[32];

    parse_args(argc, argv);
    load_libs();
    RAND_bytes(key, sizeof(key));
    if (!ASYNC_init_thread((size_t)opt.jobs, (size_t)opt.jobs))
        die("ASYNC_init_thread");
    if (!opt.json)
        printf("%-18s %6s %5s  %12s %10s %7s  %12s %10s %7s  %12s %10s %7s  %7s\n", "algorithm",
               "bytes", "fly", "device op/s", "MB/s", "cpu us", "wrapper op/s", "MB/s", "cpu us",
               "default op/s", "MB/s", "cpu us", "dev/def");
    for (int a = 0; a < opt.nalgs; a++) {
        for (int z = 0; z < opt.nsizes; z++) {
            size_t size = opt.sizes[z];

            int modes[2] = { 1, opt.jobs };

            for (int m = 0; m < (opt.jobs > 1 ? 2 : 1); m++) {
                double r[S_COUNT][MAX_REPEAT], med[S_COUNT], cpu[S_COUNT][MAX_REPEAT];
                double cmed[S_COUNT];
                int n = modes[m];

                for (int s = 0; s < S_COUNT; s++)
                    for (int i = 0; i < n; i++) {
                        if (!slot_init(&slots[s][i], (enum side)s, opt.algs[a], size, key,
                                       (unsigned)(s * MAX_JOBS + i)))
                            die("cannot set up a cipher context");
                        if ((slots[s][i].wctx = ASYNC_WAIT_CTX_new()) == NULL)
                            die("ASYNC_WAIT_CTX_new");
                        if (!seal_one(&slots[s][i])) /* warm: the session key is loaded */
                            die("the first seal failed");
                    }
                /* interleaved slices: every side sees the same machine */
                for (int rep = 0; rep < opt.repeat; rep++)
                    for (int s = 0; s < S_COUNT; s++) {
                        double c0 = cpu_s(), w0 = now_s(), w1;

                        r[s][rep] = n == 1 ? run_sync(&slots[s][0], opt.seconds)
                                           : run_async(slots[s], n, opt.seconds);
                        w1 = now_s();
                        /* this process's CPU microseconds per record */
                        cpu[s][rep] = (cpu_s() - c0) * 1e6 / (r[s][rep] * (w1 - w0));
                    }
                for (int s = 0; s < S_COUNT; s++) {
                    qsort(r[s], (size_t)opt.repeat, sizeof(double), cmp_double);
                    qsort(cpu[s], (size_t)opt.repeat, sizeof(double), cmp_double);
                    med[s] = r[s][opt.repeat / 2];
                    cmed[s] = cpu[s][opt.repeat / 2];
                    for (int i = 0; i < n; i++)
                        slot_free(&slots[s][i]);
                }
                if (opt.json) {
                    printf("{\"alg\":\"%s\",\"bytes\":%zu,\"inflight\":%d", opt.algs[a], size, n);
                    for (int s = 0; s < S_COUNT; s++)
                        printf(",\"%s_ops\":%.0f,\"%s_MBps\":%.1f,\"%s_cpu_us\":%.2f", side_name[s],
                               med[s], side_name[s], med[s] * (double)size / 1e6, side_name[s],
                               cmed[s]);
                    printf(",\"device_over_default\":%.3f}\n", med[S_DEVICE] / med[S_DEFAULT]);
                } else {
                    printf("%-18s %6zu %5d  %12.0f %10.1f %7.2f  %12.0f %10.1f %7.2f  %12.0f %10.1f "
                           "%7.2f  %7.3f\n",
                           opt.algs[a], size, n, med[S_DEVICE],
                           med[S_DEVICE] * (double)size / 1e6, cmed[S_DEVICE], med[S_WRAPPER],
                           med[S_WRAPPER] * (double)size / 1e6, cmed[S_WRAPPER], med[S_DEFAULT],
                           med[S_DEFAULT] * (double)size / 1e6, cmed[S_DEFAULT],
                           med[S_DEVICE] / med[S_DEFAULT]);
                }
                fflush(stdout);
            }
        }
    }
    ASYNC_cleanup_thread();
    OSSL_LIB_CTX_free(lc_ihsm);
    OSSL_LIB_CTX_free(lc_base);
    return 0;
}
