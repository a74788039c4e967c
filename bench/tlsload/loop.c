/*
 * The run and its workers. Each worker is one thread with one epoll set and
 * a slice of the connections; worker 0 runs on the calling thread and also
 * prints the progress line. A worker's loop: (re)start idle connections
 * (within --rate and --count), wait for events, drive the connections they
 * name, and once a second check --timeout. Workers share only atomics:
 * the stop flag and the --count budget.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/objects.h>

#include "tlsload.h"

#define NS 1000000000ULL
#define MAX_WAIT_MS 100   /* how late a worker may notice the stop flag */
#define RBUF_LEN 32768
#define RATE_SLACK_NS (NS / 10)

int tl_debug_on;

uint64_t tl_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

void tl_debug_log(const char *fmt, ...)
{
    va_list ap;

    fputs("ihsm-tlsload: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int tl_budget_take(struct tl_run *r)
{
    if (r->o->count == 0)
        return 1;
    if (atomic_load_explicit(&r->budget, memory_order_relaxed) <= 0)
        return 0;
    if (atomic_fetch_sub_explicit(&r->budget, 1, memory_order_relaxed) > 0)
        return 1;
    atomic_fetch_add_explicit(&r->budget, 1, memory_order_relaxed);
    return 0;
}

void tl_budget_refund(struct tl_run *r)
{
    if (r->o->count != 0)
        atomic_fetch_add_explicit(&r->budget, 1, memory_order_relaxed);
}

void tl_worker_ok(struct tl_worker *w, struct tl_conn *c, uint64_t lat_ns, int measured)
{
    if (!measured)
        return;
    w->st.ok++;
    c->done++;
    tl_hist_add(&w->st.lat, lat_ns);
    atomic_fetch_add_explicit(&w->prog_ok, 1, memory_order_relaxed);
}

void tl_worker_err(struct tl_worker *w, enum tl_err kind, int measured, const char *what)
{
    snprintf(w->last_err[kind], sizeof(w->last_err[kind]), "%s", what);
    if (!measured)
        return;
    w->st.errors[kind]++;
    atomic_fetch_add_explicit(&w->prog_err, 1, memory_order_relaxed);
}

void tl_run_request_stop(struct tl_run *r)
{
    atomic_store(&r->stop, 1);
}

void tl_run_fatal(struct tl_run *r, const char *fmt, ...)
{
    va_list ap;
    int expected = 0;

    if (!atomic_compare_exchange_strong(&r->fatal, &expected, 1))
        return;
    va_start(ap, fmt);
    vsnprintf(r->fatal_msg, sizeof(r->fatal_msg), fmt, ap);
    va_end(ap);
    tl_run_request_stop(r);
}

static const char *sig_type_name(int nid)
{
    switch (nid) {
    case EVP_PKEY_EC: return "ECDSA";
    case EVP_PKEY_RSA: return "RSA";
    case EVP_PKEY_RSA_PSS: return "RSA-PSS";
    case EVP_PKEY_ED25519: return "Ed25519";
    case EVP_PKEY_ED448: return "Ed448";
    default: return OBJ_nid2sn(nid);
    }
}

void tl_run_note_params(struct tl_run *r, SSL *ssl)
{
    int expected = 0, group, type = NID_undef, md = NID_undef;
    const char *gname;

    if (atomic_load_explicit(&r->have_params, memory_order_relaxed) ||
        !atomic_compare_exchange_strong(&r->have_params, &expected, 1))
        return;
    /* written once, read after every worker has been joined */
    snprintf(r->tls_version, sizeof(r->tls_version), "%s", SSL_get_version(ssl));
    snprintf(r->cipher, sizeof(r->cipher), "%s", SSL_get_cipher_name(ssl));
    group = SSL_get_negotiated_group(ssl);
    gname = group ? SSL_group_to_name(ssl, group) : NULL;
    snprintf(r->group, sizeof(r->group), "%s", gname ? gname : "");
    if (SSL_get_peer_signature_type_nid(ssl, &type) && SSL_get_peer_signature_nid(ssl, &md) &&
        type != NID_undef) {
        if (md != NID_undef && type != EVP_PKEY_ED25519 && type != EVP_PKEY_ED448)
            snprintf(r->peer_sig, sizeof(r->peer_sig), "%s+%s", sig_type_name(type),
                     OBJ_nid2sn(md));
        else
            snprintf(r->peer_sig, sizeof(r->peer_sig), "%s", sig_type_name(type));
    }
}

static int worker_init(struct tl_worker *w, struct tl_run *r, unsigned id, unsigned first,
                       unsigned n)
{
    w->id = id;
    w->run = r;
    w->nconns = n;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->conns = calloc(n, sizeof(*w->conns));
    w->idle = calloc(n, sizeof(*w->idle));
    w->startq = calloc(n, sizeof(*w->startq));
    w->rbuf_len = RBUF_LEN;
    w->rbuf = malloc(RBUF_LEN);
    if (w->epfd < 0 || w->conns == NULL || w->idle == NULL || w->startq == NULL ||
        w->rbuf == NULL)
        return -1;
    if (r->o->rate > 0)
        w->interval_ns = (uint64_t)((double)NS * r->nworkers / r->o->rate);
    if (r->ops->worker_init(w) != 0)
        return -1;
    for (unsigned i = 0; i < n; i++) {
        struct tl_conn *c = &w->conns[i];

        c->w = w;
        c->idx = first + i;
        c->fd = -1;
        c->state = TL_C_IDLE;
        if (r->ops->conn_init(c) != 0)
            return -1;
        w->idle[w->nidle++] = c;
    }
    return 0;
}

int tl_run_init(struct tl_run *r, const struct tl_opts *o)
{
    memset(r, 0, sizeof(*r));
    r->o = o;
    r->ops = o->mode == TL_MODE_H2 ? &tl_mode_h2 : &tl_mode_handshake;
    r->libctx = OSSL_LIB_CTX_new();
    r->prov = r->libctx ? OSSL_PROVIDER_load(r->libctx, "default") : NULL;
    if (r->prov == NULL) {
        fprintf(stderr, "ihsm-tlsload: cannot load OpenSSL's default provider\n");
        return -1;
    }
    r->ctx = tl_ssl_ctx_new(o, r->ops, r->libctx);
    if (r->ctx == NULL)
        return -1;
    atomic_init(&r->budget, o->count ? (int64_t)o->count : INT64_MAX);
    r->nworkers = o->threads;
    r->workers = calloc(r->nworkers, sizeof(*r->workers));
    if (r->workers == NULL)
        return -1;
    for (unsigned i = 0; i < r->nworkers; i++) {
        unsigned first = (unsigned)((uint64_t)o->concurrency * i / r->nworkers);
        unsigned last = (unsigned)((uint64_t)o->concurrency * (i + 1) / r->nworkers);

        r->workers[i].epfd = -1;
        if (worker_init(&r->workers[i], r, i, first, last - first) != 0) {
            fprintf(stderr, "ihsm-tlsload: out of memory or file descriptors setting up %u connections\n",
                    o->concurrency);
            return -1;
        }
    }
    return 0;
}

void tl_run_fini(struct tl_run *r)
{
    for (unsigned i = 0; r->workers && i < r->nworkers; i++) {
        struct tl_worker *w = &r->workers[i];

        for (unsigned j = 0; w->conns && j < w->nconns; j++) {
            if (w->conns[j].mode)
                r->ops->conn_fini(&w->conns[j]);
            SSL_free(w->conns[j].ssl);
        }
        if (w->mode)
            r->ops->worker_fini(w);
        if (w->epfd >= 0)
            close(w->epfd);
        free(w->conns);
        free(w->idle);
        free(w->startq);
        free(w->rbuf);
    }
    free(r->workers);
    SSL_CTX_free(r->ctx);
    OSSL_PROVIDER_unload(r->prov);
    OSSL_LIB_CTX_free(r->libctx);
}

/* The measured phase begins: bytes so far were warmup's. */
static void begin_measure(struct tl_worker *w, uint64_t now)
{
    for (unsigned i = 0; i < w->nconns; i++)
        tl_conn_account_bytes(&w->conns[i]);
    w->measuring = 1;
    if (w->id == 0) {
        getrusage(RUSAGE_SELF, &w->run->ru_start);
        w->run->have_ru_start = 1;
    }
    if (w->interval_ns)
        w->next_start_ns = now;
}

/* Starts the idle connections that may start; returns when to look again. */
static uint64_t start_idle(struct tl_worker *w, uint64_t now)
{
    const struct tl_mode_ops *ops = w->run->ops;
    uint64_t wake = UINT64_MAX;
    unsigned n = w->nidle, k = 0;

    /* Pick first, then open: a connection that fails at once goes back on
     * the idle stack and waits for the next turn instead of spinning here. */
    w->nidle = 0;
    for (unsigned i = 0; i < n; i++) {
        struct tl_conn *c = w->idle[i];

        if (c->start_at_ns > now) {
            if (c->start_at_ns < wake)
                wake = c->start_at_ns;
        } else if (w->interval_ns && w->next_start_ns > now) {
            if (w->next_start_ns < wake)
                wake = w->next_start_ns;
        } else if (ops->may_start(c, now)) {
            if (w->interval_ns) {
                w->next_start_ns += w->interval_ns;
                /* Behind schedule: catch up after a short stall (this
                 * thread was not scheduled), but not after a long one (the
                 * server cannot keep up): that would be a burst, not R/s. */
                if (w->next_start_ns + RATE_SLACK_NS < now &&
                    w->next_start_ns + 4 * w->interval_ns < now)
                    w->next_start_ns = now;
            }
            w->startq[k++] = c;
            continue;
        }
        w->idle[w->nidle++] = c;
    }
    for (unsigned i = 0; i < k; i++)
        tl_conn_open(w->startq[i], now);
    return wake;
}

static void check_timeouts(struct tl_worker *w, uint64_t now)
{
    const struct tl_mode_ops *ops = w->run->ops;
    char what[64];

    snprintf(what, sizeof(what), "no answer within %u s", w->run->o->timeout_s);
    for (unsigned i = 0; i < w->nconns; i++) {
        struct tl_conn *c = &w->conns[i];

        if (c->state == TL_C_IDLE || now < c->deadline_ns)
            continue;
        if (c->state != TL_C_ACTIVE || ops->conn_busy(c))
            tl_conn_fail(c, TL_ERR_TIMEOUT, what);
    }
}

static int count_done(struct tl_worker *w)
{
    struct tl_run *r = w->run;

    return r->o->count != 0 && w->measuring &&
           atomic_load_explicit(&r->budget, memory_order_relaxed) <= 0 &&
           !r->ops->worker_busy(w);
}

static void worker_loop(struct tl_worker *w)
{
    struct tl_run *r = w->run;
    struct epoll_event evs[256];
    uint64_t now = tl_now_ns(), next_tick = r->t0_ns + NS, wake;
    long timeout_ms;
    int n;

    for (;;) {
        now = tl_now_ns();
        if (atomic_load_explicit(&r->stop, memory_order_relaxed))
            break;
        if (now >= r->end_ns) {
            tl_run_request_stop(r);
            break;
        }
        if (!w->measuring && now >= r->measure_ns)
            begin_measure(w, now);
        wake = start_idle(w, now);
        if (count_done(w))
            break;
        if (next_tick < wake)
            wake = next_tick;
        if (r->end_ns < wake)
            wake = r->end_ns;
        if (!w->measuring && r->measure_ns < wake)
            wake = r->measure_ns;
        timeout_ms = wake <= now ? 0 : (long)((wake - now + 999999) / 1000000);
        if (timeout_ms > MAX_WAIT_MS)
            timeout_ms = MAX_WAIT_MS;
        n = epoll_wait(w->epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])), (int)timeout_ms);
        if (n < 0 && errno != EINTR) {
            tl_run_fatal(r, "epoll_wait failed: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++)
            tl_conn_on_event(evs[i].data.ptr, evs[i].events);
        now = tl_now_ns();
        if (now >= next_tick) {
            check_timeouts(w, now);
            if (w->id == 0)
                tl_report_progress(r, now, 0);
            while (next_tick <= now)
                next_tick += NS;
        }
    }
    w->finish_ns = now < r->end_ns ? now : r->end_ns;
    /* whatever is still in flight was cut by the end of the run: not counted */
    for (unsigned i = 0; i < w->nconns; i++) {
        struct tl_conn *c = &w->conns[i];

        if (c->state != TL_C_IDLE) {
            r->ops->on_close(c, TL_ERR__COUNT, "");
            tl_conn_close(c);
        }
    }
}

static void *worker_thread(void *arg)
{
    worker_loop(arg);
    return NULL;
}

void tl_run_go(struct tl_run *r)
{
    const struct tl_opts *o = r->o;
    sigset_t block, old;
    pthread_t *th = calloc(r->nworkers, sizeof(*th));
    unsigned started = 0;

    r->t0_ns = tl_now_ns();
    r->measure_ns = r->t0_ns + (uint64_t)o->warmup_s * NS;
    r->end_ns = r->measure_ns + (uint64_t)(o->duration_s ? o->duration_s : TL_MAX_DURATION_S) * NS;

    /* SIGINT/SIGTERM go to the calling thread, whose epoll_wait they cut short */
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    for (unsigned i = 1; th && i < r->nworkers; i++) {
        if (pthread_create(&th[i], NULL, worker_thread, &r->workers[i]) != 0) {
            tl_run_fatal(r, "cannot start worker thread %u: %s", i, strerror(errno));
            break;
        }
        started = i;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (th == NULL)
        tl_run_fatal(r, "out of memory starting threads");
    worker_loop(&r->workers[0]);
    for (unsigned i = 1; i <= started; i++)
        pthread_join(th[i], NULL);
    free(th);
    tl_report_progress(r, tl_now_ns(), 1);
}
