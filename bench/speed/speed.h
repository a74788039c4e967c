/*
 * ihsm-speed: crypto operations through the ihsm provider against OpenSSL's
 * default provider, in the same run, on the same machine, interleaved.
 *
 * Two library contexts: "ihsm" (the ihsm provider plus default, operations
 * fetched with provider=ihsm) and "baseline" (default only). A row (one
 * algorithm and size) runs slices of each side in turn; each slice starts
 * its worker threads, lets them go for the slice's time, and counts
 * operations, latencies and CPU time (the caller's from getrusage, ihsmd's
 * from /proc/PID/stat). The row's result is the median over slices.
 */
#ifndef IHSM_SPEED_H
#define IHSM_SPEED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <openssl/evp.h>
#include <openssl/provider.h>

#define SP_EXIT_OK 0
#define SP_EXIT_FAIL 1
#define SP_EXIT_USAGE 2

#define SP_MAX_DEPTH 256
#define SP_MAX_THREADS 256
#define SP_MAX_SECONDS 3600.0
#define SP_MAX_WARMUP 600.0
#define SP_PROPQ_IHSM "provider=ihsm"

enum sp_mode { SP_MODE_SYNC, SP_MODE_ASYNC };
enum sp_op_kind { SP_OP_SIGN, SP_OP_DERIVE, SP_OP_SEAL };

/* ---- rows (algs.c) ---- */
struct sp_row {
    const char *name;        /* --alg name: "ecdsa-p256", "aes-256-gcm-1k" */
    enum sp_op_kind kind;
    const char *keytype;     /* keygen name: "RSA", "EC", "ED25519", "X25519" */
    const char *param;       /* curve name, or NULL */
    unsigned bits;           /* RSA modulus bits, else 0 */
    const char *algname;     /* what the ihsm provider must offer: "ECDH", "AES-256-GCM" */
    size_t size;             /* AEAD plaintext bytes, else 0 */
    const char *tls_group;   /* derive rows: the TLS group libssl would ask for */
};
extern const struct sp_row sp_rows[];
extern const size_t sp_nrows;
const struct sp_row *sp_row_find(const char *name);
const char *sp_op_name(enum sp_op_kind k);     /* "sign", "derive", "seal" */
const char *sp_device_counter(enum sp_op_kind k); /* ihsmd STATS counter: "sign"... */

/* ---- options (options.c) ---- */
struct sp_opts {
    const struct sp_row *rows[64];
    size_t nrows;
    enum sp_mode mode;
    unsigned threads, depth;
    double seconds, warmup;
    int json, quiet;
    const char *provider_path; /* directory holding ihsm.so; NULL: ../lib */
    unsigned batch_size;       /* ihsm-batch-size for the provider; 0: its default */
    unsigned batch_delay_us;   /* ihsm-batch-delay-us; 0: its default */
};
/* Fills o, or prints what was wrong and exits SP_EXIT_USAGE. */
void sp_opts_parse(struct sp_opts *o, int argc, char **argv);

/* ---- the device (device.c) ---- */
struct sp_device {
    char scratch[64];          /* our mktemp -d: config file, and ihsmd when we start it */
    char socket[256];
    char credential[256];
    pid_t pid;                 /* ihsmd: ours, or found with SO_PEERCRED; 0: unknown */
    int own;                   /* we started it: stop it at the end */
};
/* Uses IHSM_SOCKET + IHSM_CREDENTIAL when both are set, else starts ihsmd
 * (found next to this executable) in the scratch directory and makes a
 * partition with ihsmctl init. Returns 0, or -1 after saying why. */
int sp_device_open(struct sp_device *d);
void sp_device_close(struct sp_device *d);
/* ihsmd's utime+stime in seconds; < 0 when it cannot be read. */
double sp_device_cpu_s(const struct sp_device *d);
/* The directory this executable is in (from /proc/self/exe). */
int sp_exe_dir(char *buf, size_t cap);

/* ---- device counters (devstats.c): STATS on a connection of its own ---- */
struct sp_devstats {
    uint64_t requests, frames_in, sign, derive, aead;
    int ok;
};
int sp_devstats_read(const char *socket_path, struct sp_devstats *st);
uint64_t sp_devstats_counter(const struct sp_devstats *st, enum sp_op_kind k);

/* ---- library contexts (libctx.c) ---- */
struct sp_libs {
    OSSL_LIB_CTX *ihsm;   /* ihsm + default */
    OSSL_LIB_CTX *base;   /* default only */
    OSSL_PROVIDER *base_default;
    char module[512];     /* path of ihsm.so */
};
int sp_libs_open(struct sp_libs *l, const struct sp_opts *o, const struct sp_device *d);
void sp_libs_close(struct sp_libs *l);
/* Prints the OpenSSL error queue after "ihsm-speed: what: ". */
void sp_ossl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- operations (op_sign.c, op_derive.c, op_aead.c): a table each ----
 * A "side" is one row on one library context: its key (made once), and a
 * slot per operation in flight holding the contexts one operation needs.
 * op() is what is timed; it runs inside an ASYNC job in async mode. */
struct sp_side;
struct sp_slot;
struct sp_op_ops {
    /* Is the algorithm there? NULL when it is, else the missing name. */
    const char *(*missing)(const struct sp_row *row, OSSL_LIB_CTX *lc, const char *propq);
    /* Make the key: 1 ok, 0 failed (error said). */
    int (*side_init)(struct sp_side *s);
    void (*side_fini)(struct sp_side *s);
    struct sp_slot *(*slot_new)(struct sp_side *s, unsigned idx);
    void (*slot_free)(struct sp_slot *sl);
    int (*op)(struct sp_slot *sl);
    /* One result of the ihsm side checked with the baseline's default
     * provider: 1 matches, 0 mismatch or failure (said). */
    int (*check)(struct sp_side *ihsm, struct sp_side *base);
};
extern const struct sp_op_ops sp_sign_ops, sp_derive_ops, sp_aead_ops;
const struct sp_op_ops *sp_ops_for(const struct sp_row *row);

struct sp_side {
    const struct sp_row *row;
    const struct sp_op_ops *ops;
    OSSL_LIB_CTX *lc;
    OSSL_LIB_CTX *sw;     /* the baseline's context (default provider only) */
    const char *propq;    /* "provider=ihsm" or NULL */
    const char *label;    /* "ihsm" / "baseline" */
    EVP_PKEY *key;        /* sign, derive: the key; made in the side's provider */
    EVP_PKEY *peer;       /* derive: the peer's public key */
    EVP_PKEY *peer_priv;  /* derive: the peer's private key (for the check) */
    EVP_CIPHER *cipher;   /* seal */
    unsigned char aead_key[32];
    uint64_t check_ops;   /* operations check() ran on this side */
};

/* Every op file's slot starts with this. */
struct sp_slot {
    struct sp_side *side;
    unsigned idx;
};

/* ---- keys (keys.c) ---- */
/* A key of the row's type made by lc's provider matching propq (NULL: any). */
EVP_PKEY *sp_keygen(OSSL_LIB_CTX *lc, const char *propq, const struct sp_row *row);
/* A key exchange key made as libssl makes its ECDHE share: with the
 * algorithm and internal group name the provider publishes for the row's
 * TLS group (TLS-GROUP capability); sp_keygen when it publishes none. */
EVP_PKEY *sp_keygen_kex(OSSL_LIB_CTX *lc, const char *provider, const char *propq,
                        const struct sp_row *row);
/* The public half of k as a key of lc (through SubjectPublicKeyInfo DER). */
EVP_PKEY *sp_pub_in(OSSL_LIB_CTX *lc, EVP_PKEY *k);

/* ---- latency histogram (hist.c): bounded, log-linear ---- */
#define SP_HIST_SUB_BITS 5
#define SP_HIST_MAX_BITS 40
#define SP_HIST_BUCKETS ((SP_HIST_MAX_BITS - SP_HIST_SUB_BITS + 1) << SP_HIST_SUB_BITS)
struct sp_hist {
    uint64_t count;
    uint64_t b[SP_HIST_BUCKETS];
};
void sp_hist_add(struct sp_hist *h, uint64_t ns);
void sp_hist_merge(struct sp_hist *dst, const struct sp_hist *src);
uint64_t sp_hist_quantile(const struct sp_hist *h, double q); /* ns; 0 when empty */

/* ---- one slice of one side (run.c; loops in run_sync.c, run_async.c) ---- */
struct sp_slice {
    uint64_t ops;          /* completed in the slice (those drained after its end too) */
    double elapsed_s;      /* go .. last completion */
    double cpu_caller_s;   /* getrusage(RUSAGE_SELF) delta: every thread of ours */
    double cpu_device_s;   /* ihsmd's delta; < 0 unknown */
};

struct sp_run;
struct sp_worker {
    struct sp_run *run;
    unsigned id, nslots;
    struct sp_slot **slots;
    _Atomic uint64_t ops;  /* written by the worker only; read for progress */
    uint64_t last_done_ns;
    int failed;
    void *priv;            /* the loop's state */
    pthread_t th;
    struct sp_hist hist;
};

/* How a worker thread runs its slots: prepare and finish are outside the
 * measured window, run is inside it and returns once stop is set and every
 * operation it started has completed. */
struct sp_loop {
    int (*prepare)(struct sp_worker *w);
    void (*run)(struct sp_worker *w);
    void (*finish)(struct sp_worker *w);
};
extern const struct sp_loop sp_loop_sync, sp_loop_async;

struct sp_run {
    struct sp_side *side;
    const struct sp_loop *loop;
    unsigned nworkers, slots_per_worker;
    int record;            /* latencies wanted (measured slices) */
    atomic_int go, stop, release;
    atomic_uint ready, done;
};

static inline int sp_should_stop(const struct sp_worker *w)
{
    return w->failed || atomic_load_explicit(&w->run->stop, memory_order_relaxed);
}

static inline void sp_worker_record(struct sp_worker *w, uint64_t t0, uint64_t t1)
{
    if (w->run->record)
        sp_hist_add(&w->hist, t1 - t0);
    atomic_store_explicit(&w->ops, atomic_load_explicit(&w->ops, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    w->last_done_ns = t1;
}

/* Progress while a slice runs: ops so far, seconds so far. */
typedef void (*sp_progress_fn)(void *arg, uint64_t ops, double elapsed_s);

/* Runs one slice: nworkers threads with slots_per_worker slots each, for
 * seconds. Latencies go into hist when it is not NULL. 0, or -1 when an
 * operation failed (said on stderr). */
int sp_slice_run(struct sp_side *side, enum sp_mode mode, unsigned nworkers,
                 unsigned slots_per_worker, double seconds, const struct sp_device *dev,
                 struct sp_hist *hist, sp_progress_fn progress, void *parg,
                 struct sp_slice *out);
/* Set from SIGINT/SIGTERM: slices end early. */
extern atomic_int sp_interrupted;

/* ---- a row: warmup, interleaved slices, medians (bench.c) ---- */
struct sp_result {
    const struct sp_row *row;
    enum sp_mode mode;
    unsigned threads, depth, base_threads, base_depth, ncpu, slices;
    double seconds_each;          /* measured seconds per side (sum of slices) */
    uint64_t ops, base_ops;
    double ops_per_s, base_ops_per_s, ratio;
    double p50_us, p99_us, base_p50_us, base_p99_us;
    double cpu_caller_s, cpu_device_s, base_cpu_s, cpu_ratio; /* device < 0: unknown */
    uint64_t device_ops;          /* every op this tool sent to the device in the row */
    int64_t device_counter;       /* ihsmd's counter delta over the row; -1 unknown */
    double requests_per_frame;    /* ihsmd's requests / frames_in over the row; < 0 unknown */
    double loadavg1;
    int verified;
};
/* Returns SP_EXIT_OK, SP_EXIT_FAIL; *skipped set (and said) when the ihsm
 * provider lacks the algorithm. */
int sp_bench_row(const struct sp_opts *o, const struct sp_libs *libs,
                 const struct sp_device *dev, const struct sp_row *row,
                 struct sp_result *res, int *skipped);

/* ---- output (report.c) ---- */
void sp_report_header(FILE *f, const struct sp_opts *o);
void sp_report_row(FILE *f, const struct sp_opts *o, const struct sp_result *r);
void sp_report_json(FILE *f, const struct sp_result *r);
void sp_report_skip(const struct sp_opts *o, const struct sp_row *row, const char *missing);
/* Progress on stderr (not with --quiet): one line, rewritten on a terminal. */
void sp_progress(const struct sp_opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sp_progress_end(const struct sp_opts *o);

/* ---- small helpers ---- */
uint64_t sp_now_ns(void);
double sp_median(double *v, size_t n); /* sorts v */
unsigned sp_ncpu(void);

#endif
