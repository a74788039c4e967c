/*
 * ihsm-tlsload: TLS handshake and HTTP/2 load generator.
 *
 * One process, one epoll loop per worker thread (one worker by default).
 * Each worker owns a slice of the connections; nothing is shared between
 * workers on the hot path except the SSL_CTX (read-only after setup) and
 * the run's stop flag and request budget (atomics).
 */
#ifndef IHSM_TLSLOAD_H
#define IHSM_TLSLOAD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <openssl/provider.h>
#include <openssl/ssl.h>

#define TL_MAX_DURATION_S 3600
#define TL_MAX_CONCURRENCY 60000
#define TL_MAX_THREADS 64
#define TL_MAX_STREAMS 1024
#define TL_MAX_COUNT 1000000000ULL

/* Exit codes: 0 ran, 1 could not run or every attempt failed, 2 usage. */
#define TL_EXIT_OK 0
#define TL_EXIT_FAIL 1
#define TL_EXIT_USAGE 2

enum tl_mode_id { TL_MODE_HANDSHAKE, TL_MODE_H2 };

/* Error kinds, in report order; tl_err_names[] spells them. */
enum tl_err {
    TL_ERR_CONNECT,   /* TCP connect failed (refused, unreachable) */
    TL_ERR_HANDSHAKE, /* TLS handshake failed (alert, protocol, EOF) */
    TL_ERR_VERIFY,    /* --cafile given and the certificate did not verify */
    TL_ERR_HTTP,      /* status not 200, or a truncated HTTP/1.1 answer */
    TL_ERR_ALPN,      /* h2: server did not select h2 */
    TL_ERR_H2,        /* h2: protocol error or stream reset */
    TL_ERR_IO,        /* connection lost after the handshake */
    TL_ERR_TIMEOUT,   /* no answer within --timeout */
    TL_ERR_RESUMED,   /* server resumed a session: not a full handshake */
    TL_ERR__COUNT
};
extern const char *const tl_err_names[TL_ERR__COUNT];

struct tl_opts {
    enum tl_mode_id mode;
    const char *mode_name;
    const char *connect;      /* as given: HOST:PORT or [V6]:PORT */
    char host[256];           /* without brackets */
    char port[16];
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char addr_str[64];        /* numeric form of addr, for messages */
    const char *sni;          /* NULL: none */
    const char *authority;    /* h2 :authority */
    int tls_version;          /* 0 any, else TLS1_2_VERSION / TLS1_3_VERSION */
    const char *groups, *sigalgs, *ciphers, *ciphersuites, *cafile;
    int insecure, allow_remote, json, quiet;
    unsigned concurrency, threads, streams;
    unsigned duration_s;      /* 0: until --count (capped at TL_MAX_DURATION_S) */
    unsigned warmup_s, timeout_s;
    uint64_t count;           /* 0: until --duration */
    double rate;              /* handshakes started per second; 0: as fast as possible */
    const char *request;      /* handshake mode: GET this path after the handshake */
    const char *path;         /* h2 mode */
};

/* Parses argv into o. Returns 0, or exits with TL_EXIT_USAGE and a message. */
void tl_opts_parse(struct tl_opts *o, int argc, char **argv);
/* Resolves --connect and applies the loopback rule; exits 2 on refusal. */
void tl_opts_resolve(struct tl_opts *o);
void tl_usage(FILE *f);

/* ---- latency histogram (stats.c) ----
 * Log-linear buckets over nanoseconds, 64 per power of two: <1.6% error,
 * a fixed 19 KiB per worker whatever the run length; values up to 2^42 ns
 * (73 minutes, more than the longest run). */
#define TL_HIST_SUB_BITS 6
#define TL_HIST_MAX_BITS 42
#define TL_HIST_BUCKETS ((TL_HIST_MAX_BITS - TL_HIST_SUB_BITS + 1) << TL_HIST_SUB_BITS)

struct tl_hist {
    uint64_t count, sum_ns, min_ns, max_ns;
    uint64_t b[TL_HIST_BUCKETS];
};

struct tl_stats {
    uint64_t ok;                    /* handshakes or requests completed */
    uint64_t errors[TL_ERR__COUNT];
    uint64_t connections;           /* TCP connections opened */
    uint64_t bytes_in, bytes_out;   /* on the wire, TLS records included */
    uint64_t body_bytes;            /* h2: DATA payload received */
    struct tl_hist lat;
};

void tl_hist_add(struct tl_hist *h, uint64_t ns);
void tl_hist_merge(struct tl_hist *dst, const struct tl_hist *src);
/* q in [0,1]; returns nanoseconds (bucket midpoint), 0 when empty. */
uint64_t tl_hist_quantile(const struct tl_hist *h, double q);
void tl_stats_merge(struct tl_stats *dst, const struct tl_stats *src);
uint64_t tl_stats_errors(const struct tl_stats *s);

/* ---- connections (conn.c) ---- */
enum tl_cstate {
    TL_C_IDLE,       /* no socket; waiting to be (re)started */
    TL_C_CONNECTING, /* non-blocking connect in progress */
    TL_C_HANDSHAKE,  /* SSL_connect in progress */
    TL_C_ACTIVE,     /* handshake done: the mode drives it */
};

struct tl_worker;

struct tl_conn {
    struct tl_worker *w;
    unsigned idx;              /* index in the run, for per-connection counts */
    enum tl_cstate state;
    int fd;
    SSL *ssl;                  /* kept across connections: SSL_clear, not SSL_new */
    BIO *bio;
    uint64_t op_start_ns;      /* connect start (handshake mode latency origin) */
    uint64_t deadline_ns;      /* --timeout: fail when passed with work pending */
    uint64_t start_at_ns;      /* idle: do not restart before this */
    int measured;              /* op started after warmup */
    int ssl_ok;                /* handshake done, no fatal error: may send close_notify */
    uint64_t done;             /* ok operations counted on this connection slot */
    uint64_t bio_in_seen, bio_out_seen;
    void *mode;                /* the mode's per-connection state */
};

int tl_conn_open(struct tl_conn *c, uint64_t now);
void tl_conn_on_event(struct tl_conn *c, uint32_t events);
/* Sends close_notify without waiting, closes the socket, keeps the SSL. */
void tl_conn_close(struct tl_conn *c);
/* Counts an error of kind (with what OpenSSL/errno said) and closes. */
void tl_conn_fail(struct tl_conn *c, enum tl_err kind, const char *what);
/* Adds wire bytes since the last call to the worker's stats. */
void tl_conn_account_bytes(struct tl_conn *c);
/* SSL_read/SSL_write result classification shared by the modes. */
enum tl_io { TL_IO_OK, TL_IO_AGAIN, TL_IO_EOF, TL_IO_ERR };
enum tl_io tl_conn_ssl_result(struct tl_conn *c, int ret, const char **why);

/* ---- modes (hs.c, h2.c): a dispatch table each ---- */
struct tl_mode_ops {
    const char *name;
    const char *unit;                    /* "handshakes" / "requests" */
    const unsigned char *alpn;           /* wire format, NULL: none */
    unsigned alpn_len;
    int (*worker_init)(struct tl_worker *w);
    void (*worker_fini)(struct tl_worker *w);
    int (*conn_init)(struct tl_conn *c);
    void (*conn_fini)(struct tl_conn *c);
    /* May this idle connection start now? Takes budget where the mode
     * spends it per connection. */
    int (*may_start)(struct tl_conn *c, uint64_t now);
    void (*on_established)(struct tl_conn *c, uint64_t now);
    void (*on_io)(struct tl_conn *c, uint32_t events);
    /* Connection failed: count the error(s) of kind for the work it had
     * in flight. TL_ERR__COUNT: the run ended, abandon without counting. */
    void (*on_close)(struct tl_conn *c, enum tl_err kind, const char *what);
    /* Work in flight on this connection (a --timeout applies)? */
    int (*conn_busy)(const struct tl_conn *c);
    /* Work in flight anywhere in this worker (--count is done when not)? */
    int (*worker_busy)(const struct tl_worker *w);
};
extern const struct tl_mode_ops tl_mode_handshake;
extern const struct tl_mode_ops tl_mode_h2;

/* ---- the run and its workers (loop.c) ---- */
struct tl_run {
    const struct tl_opts *o;
    const struct tl_mode_ops *ops;
    OSSL_LIB_CTX *libctx;
    OSSL_PROVIDER *prov;
    SSL_CTX *ctx;
    uint64_t t0_ns, measure_ns, end_ns;
    atomic_int stop;            /* 1: time is up, interrupted or fatal */
    atomic_int interrupted;
    atomic_int fatal;           /* could not run at all: exit 1 */
    atomic_int established_once;
    _Atomic int64_t budget;     /* --count: attempts left; INT64_MAX unlimited */
    char fatal_msg[256];
    struct rusage ru_start;     /* taken by worker 0 when measuring begins */
    int have_ru_start;
    struct tl_worker *workers;
    unsigned nworkers;
    /* first successful handshake's parameters, for the report */
    atomic_int have_params;
    char tls_version[16], cipher[64], group[32], peer_sig[32];
};

struct tl_worker {
    unsigned id;
    struct tl_run *run;
    int epfd;
    struct tl_conn *conns;
    unsigned nconns;
    struct tl_stats st;              /* measured phase only */
    struct tl_conn **idle;           /* connections waiting to (re)start */
    struct tl_conn **startq;         /* scratch: the ones start_idle() picked */
    unsigned nidle;
    unsigned active;                 /* connections with a socket */
    unsigned char *rbuf;             /* scratch read buffer, shared by its conns */
    size_t rbuf_len;
    uint64_t next_start_ns, interval_ns;   /* --rate token bucket */
    uint64_t finish_ns;
    int measuring;
    atomic_uint_fast64_t prog_ok, prog_err;
    char last_err[TL_ERR__COUNT][160];
    void *mode;                      /* the mode's per-worker state */
};

int tl_run_init(struct tl_run *r, const struct tl_opts *o);
/* Runs every worker to the end; the calling thread runs worker 0. */
void tl_run_go(struct tl_run *r);
void tl_run_fini(struct tl_run *r);
/* Takes one unit of --count budget; 0 when spent. Refund gives one back. */
int tl_budget_take(struct tl_run *r);
void tl_budget_refund(struct tl_run *r);
/* Counts a success (measured) with its latency. */
void tl_worker_ok(struct tl_worker *w, struct tl_conn *c, uint64_t lat_ns, int measured);
void tl_worker_err(struct tl_worker *w, enum tl_err kind, int measured, const char *what);
void tl_run_fatal(struct tl_run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void tl_run_note_params(struct tl_run *r, SSL *ssl);
/* Stop everything: SIGINT handler and duration end. */
void tl_run_request_stop(struct tl_run *r);

/* ---- TLS context (tls_ctx.c) ---- */
/* libctx: the run's own library context with only OpenSSL's default
 * provider, so OPENSSL_CONF (which may load ihsm for a server) never
 * changes what the client does or costs. */
SSL_CTX *tl_ssl_ctx_new(const struct tl_opts *o, const struct tl_mode_ops *ops,
                        OSSL_LIB_CTX *libctx);

/* ---- output (report.c, json.c) ---- */
struct tl_result {
    struct tl_stats st;
    double duration_s, cpu_s, cpu_user_s, cpu_sys_s;
    uint64_t *per_conn;     /* done counts, one per connection slot */
    unsigned nconns;
    int interrupted;
};
void tl_report_progress(struct tl_run *r, uint64_t now, int final);
void tl_report_human(FILE *f, const struct tl_run *r, const struct tl_result *res);
void tl_report_json(FILE *f, const struct tl_run *r, const struct tl_result *res);

/* ---- small helpers ---- */
uint64_t tl_now_ns(void);
extern int tl_debug_on;
#define tl_debug(...)                                                         \
    do {                                                                      \
        if (tl_debug_on)                                                      \
            tl_debug_log(__VA_ARGS__);                                        \
    } while (0)
void tl_debug_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
