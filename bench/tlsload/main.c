/*
 * ihsm-tlsload: measure a TLS server with full handshakes or HTTP/2
 * requests, without wrk or h2load. main() checks the target, sets up the
 * run, lets it go until --duration/--count/SIGINT, and prints the result.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tlsload.h"

#define PREFLIGHT_MS 3000

static struct tl_run *g_run;

static void on_signal(int sig)
{
    (void)sig;
    if (g_run != NULL) {
        atomic_store(&g_run->interrupted, 1);
        atomic_store(&g_run->stop, 1);
    }
}

/* One plain TCP connect before the run, so "nothing listens" is said once
 * and clearly instead of as a wall of connect errors. */
static void preflight(const struct tl_opts *o)
{
    struct pollfd pfd;
    int fd, rc, err = 0;
    socklen_t len = sizeof(err);

    fd = socket(o->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "ihsm-tlsload: cannot create a socket: %s\n", strerror(errno));
        exit(TL_EXIT_FAIL);
    }
    rc = connect(fd, (const struct sockaddr *)&o->addr, o->addrlen);
    if (rc != 0 && errno != EINPROGRESS) {
        err = errno;
    } else if (rc != 0) {
        pfd.fd = fd;
        pfd.events = POLLOUT;
        do
            rc = poll(&pfd, 1, PREFLIGHT_MS);
        while (rc < 0 && errno == EINTR);
        if (rc == 0) {
            fprintf(stderr, "ihsm-tlsload: no answer from %s within %d s\n", o->connect,
                    PREFLIGHT_MS / 1000);
            exit(TL_EXIT_FAIL);
        }
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    }
    close(fd);
    if (err == ECONNREFUSED) {
        fprintf(stderr, "ihsm-tlsload: nothing listens on %s: start the server first or check the port\n",
                o->connect);
        exit(TL_EXIT_FAIL);
    }
    if (err != 0) {
        fprintf(stderr, "ihsm-tlsload: cannot connect to %s: %s\n", o->connect, strerror(err));
        exit(TL_EXIT_FAIL);
    }
}

static void ensure_fds(const struct tl_opts *o)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)o->concurrency + 64;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
        return;
    rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < need) {
        fprintf(stderr,
                "ihsm-tlsload: --concurrency %u needs %llu file descriptors but the limit is %llu: "
                "raise it (ulimit -n) or lower --concurrency\n",
                o->concurrency, (unsigned long long)need, (unsigned long long)rl.rlim_cur);
        exit(TL_EXIT_USAGE);
    }
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void collect(struct tl_run *r, struct tl_result *res)
{
    uint64_t finish = 0;
    struct rusage ru;

    memset(res, 0, sizeof(*res));
    res->nconns = r->o->concurrency;
    res->per_conn = calloc(res->nconns, sizeof(*res->per_conn));
    for (unsigned i = 0; i < r->nworkers; i++) {
        struct tl_worker *w = &r->workers[i];

        tl_stats_merge(&res->st, &w->st);
        if (w->finish_ns > finish)
            finish = w->finish_ns;
        for (unsigned j = 0; res->per_conn && j < w->nconns; j++)
            res->per_conn[w->conns[j].idx] = w->conns[j].done;
    }
    if (res->per_conn == NULL)
        res->nconns = 0;
    res->duration_s = finish > r->measure_ns ? (double)(finish - r->measure_ns) / 1e9 : 0;
    if (r->have_ru_start && getrusage(RUSAGE_SELF, &ru) == 0) {
        res->cpu_user_s = tv_s(ru.ru_utime) - tv_s(r->ru_start.ru_utime);
        res->cpu_sys_s = tv_s(ru.ru_stime) - tv_s(r->ru_start.ru_stime);
        res->cpu_s = res->cpu_user_s + res->cpu_sys_s;
    }
    res->interrupted = atomic_load(&r->interrupted);
}

int main(int argc, char **argv)
{
    static struct tl_opts o;
    static struct tl_run run;
    struct tl_result res;
    struct sigaction sa;
    const char *dbg = getenv("IHSM_DEBUG");
    int rc = TL_EXIT_OK;

    tl_debug_on = dbg != NULL && strcmp(dbg, "1") == 0;
    /* The run uses its own library context (see tls_ctx.c); keep OPENSSL_CONF,
     * which may load ihsm for the server under test, out of this process. */
    OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
    tl_opts_parse(&o, argc, argv);
    tl_opts_resolve(&o);
    ensure_fds(&o);
    signal(SIGPIPE, SIG_IGN); /* a server that goes away must not kill the run */
    preflight(&o);

    if (tl_run_init(&run, &o) != 0) {
        tl_run_fini(&run);
        return TL_EXIT_USAGE;
    }
    g_run = &run;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    tl_run_go(&run);
    collect(&run, &res);
    if (o.json)
        tl_report_json(stdout, &run, &res);
    else
        tl_report_human(stdout, &run, &res);
    fflush(stdout);

    if (atomic_load(&run.fatal)) {
        fprintf(stderr, "ihsm-tlsload: %s\n", run.fatal_msg);
        rc = TL_EXIT_FAIL;
    } else if (res.st.ok == 0 && tl_stats_errors(&res.st) > 0) {
        fprintf(stderr, "ihsm-tlsload: every attempt failed; the errors above say why\n");
        rc = TL_EXIT_FAIL;
    }
    free(res.per_conn);
    g_run = NULL;
    tl_run_fini(&run);
    return rc;
}
