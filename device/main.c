/*
 * ihsmd: the ihsm software HSM.
 *
 *   ihsmd --state-dir DIR --socket PATH [options]
 *
 * Start-up order matters: harden the process before any secret exists,
 * start the crypto core (secure heap, self-tests), open the state
 * directory (root secret), start the workers, and only then create the
 * socket, so a client that sees the socket finds a device ready to serve.
 */
#include "dev.h"
#include "ihsm_transport.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_STATE_DIR "/var/lib/ihsm"

static struct ihsmd daemon_ctx;

int dev_failed(const struct ihsmd *d)
{
    return d->failed || ihsm_crypto_failed();
}

int64_t dev_now_mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ihsmd --state-dir DIR --socket PATH [options]\n"
            "\n"
            "The ihsm software HSM. Runs in the foreground and logs to stderr\n"
            "(IHSM_DEBUG=1 logs every frame); SIGTERM or SIGINT finishes the\n"
            "requests in flight, closes every session and exits.\n"
            "\n"
            "  --state-dir DIR      device state: root secret, partitions, masked keys,\n"
            "                       audit log (default " DEFAULT_STATE_DIR ")\n"
            "  --socket PATH        the device socket (default $IHSM_SOCKET or "
            IHSM_DEFAULT_SOCKET ")\n"
            "  --workers N          crypto worker threads (default: number of CPUs)\n"
            "  --admin-uid UID      may create partitions, besides root and ihsmd's own\n"
            "                       uid (repeatable)\n"
            "  --max-sessions N     open sessions, all clients together (default 4096)\n"
            "  --max-keys N         keys loaded in memory, all partitions (default 16384)\n"
            "  --max-inflight N     requests in flight per connection (default 4096)\n"
            "  --secure-heap BYTES  OpenSSL secure heap for key material, a power of two;\n"
            "                       K and M suffixes (default 4M)\n"
            "  --help               this text\n"
            "  --version            the version\n");
}

static int parse_uint(const char *opt, const char *v, unsigned long min, unsigned long max,
                      unsigned long *out)
{
    char *end;
    unsigned long mult = 1;

    errno = 0;
    *out = strtoul(v, &end, 10);
    if (end != v && (*end == 'k' || *end == 'K')) {
        mult = 1024;
        end++;
    } else if (end != v && (*end == 'm' || *end == 'M')) {
        mult = 1024 * 1024;
        end++;
    }
    if (errno != 0 || end == v || *end != '\0' || v[0] == '-') {
        fprintf(stderr, "ihsmd: %s wants a number, not '%s'\n", opt, v);
        return -1;
    }
    *out *= mult;
    if (*out < min || *out > max) {
        fprintf(stderr, "ihsmd: %s must be between %lu and %lu\n", opt, min, max);
        return -1;
    }
    return 0;
}

static int parse_args(struct ihsmd_config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {
        { "state-dir", required_argument, NULL, 'd' },
        { "socket", required_argument, NULL, 's' },
        { "workers", required_argument, NULL, 'w' },
        { "admin-uid", required_argument, NULL, 'a' },
        { "max-sessions", required_argument, NULL, 'S' },
        { "max-keys", required_argument, NULL, 'K' },
        { "max-inflight", required_argument, NULL, 'I' },
        { "secure-heap", required_argument, NULL, 'H' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned long v;
    int o;

    cfg->state_dir = DEFAULT_STATE_DIR;
    cfg->socket_path = ihsm_socket_path(NULL);
    cfg->workers = ncpu > 0 ? (unsigned)(ncpu < 64 ? ncpu : 64) : 1;
    cfg->max_sessions = 4096;
    cfg->max_keys = 16384;
    cfg->max_inflight = 4096;
    cfg->secure_heap = 4 * 1024 * 1024;

    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'd':
            cfg->state_dir = optarg;
            break;
        case 's':
            cfg->socket_path = optarg;
            break;
        case 'w':
            if (parse_uint("--workers", optarg, 1, 256, &v) != 0)
                return -1;
            cfg->workers = (unsigned)v;
            break;
        case 'a':
            if (cfg->n_admins == DEV_MAX_ADMINS) {
                fprintf(stderr, "ihsmd: at most %d --admin-uid\n", DEV_MAX_ADMINS);
                return -1;
            }
            if (parse_uint("--admin-uid", optarg, 0, UINT32_MAX - 1, &v) != 0)
                return -1;
            cfg->admin_uids[cfg->n_admins++] = (uid_t)v;
            break;
        case 'S':
            if (parse_uint("--max-sessions", optarg, 1, 65535, &v) != 0)
                return -1;
            cfg->max_sessions = (unsigned)v;
            break;
        case 'K':
            if (parse_uint("--max-keys", optarg, 1, 1u << 24, &v) != 0)
                return -1;
            cfg->max_keys = (unsigned)v;
            break;
        case 'I':
            if (parse_uint("--max-inflight", optarg, 1, 1u << 20, &v) != 0)
                return -1;
            cfg->max_inflight = (unsigned)v;
            break;
        case 'H':
            if (parse_uint("--secure-heap", optarg, 0, 1ul << 30, &v) != 0)
                return -1;
            cfg->secure_heap = v;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("ihsmd %s\n", IHSMD_VERSION);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "ihsmd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return -1;
    }
    return 0;
}

/* CAP_IPC_LOCK lets mlockall lock without RLIMIT_MEMLOCK. */
static int have_ipc_lock(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long caps = 0;

    if (f == NULL)
        return geteuid() == 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "CapEff: %llx", &caps) == 1)
            break;
    fclose(f);
    return (caps >> 14) & 1; /* CAP_IPC_LOCK */
}

/* No core dumps, no ptrace by other users, no swapping. */
static void harden(void)
{
    struct rlimit rl = { 0, 0 };

    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        dev_log("warning: prctl(PR_SET_DUMPABLE, 0): %s", strerror(errno));
    /* already 0 under systemd (LimitCORE=0), whose filter then refuses the
     * @resources system calls setrlimit needs */
    if ((getrlimit(RLIMIT_CORE, &rl) != 0 || rl.rlim_cur != 0 || rl.rlim_max != 0)
        && setrlimit(RLIMIT_CORE, &(struct rlimit){ 0, 0 }) != 0)
        dev_log("warning: setrlimit(RLIMIT_CORE, 0): %s", strerror(errno));
    if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
        && !have_ipc_lock()) {
        /* MCL_FUTURE under a small limit would make later allocations fail */
        dev_log("warning: not locking memory: RLIMIT_MEMLOCK is %llu KiB and ihsmd lacks "
                "CAP_IPC_LOCK (run as root or set LimitMEMLOCK=infinity); key material "
                "still lives in OpenSSL's locked secure heap",
                (unsigned long long)rl.rlim_cur / 1024);
        return;
    }
    /* MCL_ONFAULT: lock pages as they are touched instead of pre-faulting
     * every mapping (each thread stack, each 128 KiB frame buffer) */
    if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0
        && mlockall(MCL_CURRENT | MCL_FUTURE) != 0)
        dev_log("warning: mlockall: %s: memory may be swapped out", strerror(errno));
}

int main(int argc, char **argv)
{
    struct ihsmd *d = &daemon_ctx;
    sigset_t mask;
    int r, rc = 1;

    dev_log_init();
    if (parse_args(&d->cfg, argc, argv) != 0)
        return 2;

    /* every thread inherits this mask: the loop's signalfd gets them */
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);

    harden();
    d->own_uid = geteuid();
    d->started = dev_now_mono();
    d->listen_fd = -1;
    d->lock_fd = -1;
    d->audit_fd = -1;

    if (ihsm_crypto_init(d->cfg.secure_heap) != IHSM_OK) {
        d->failed = 1;
        dev_log("SELF-TESTS FAILED: the device is in the failed state and refuses every "
                "crypto command; restart it after fixing the cause");
    }
    if (dev_state_open(d) != 0)
        goto out;
    if (dev_sessions_init(d) != 0 || dev_pool_init(&d->pool, 64) != 0) {
        dev_log("out of memory at start");
        goto out;
    }
    if ((r = dev_workers_start(d)) != 0) {
        dev_log("cannot start the workers: %s", strerror(-r));
        goto out;
    }
    if (dev_listen(d) != 0)
        goto out;
    /* after the socket checks: a refused start spends no key generation
     * (requests wait for the import key; none is read before the loop runs) */
    if ((r = dev_import_start(d)) != 0)
        goto out;
    dev_log("ihsmd %s: state %s, device %s", IHSMD_VERSION, d->cfg.state_dir,
            dev_failed(d) ? "FAILED" : "operational");
    dev_audit(d, NULL, "start", NULL, NULL, 0, dev_failed(d) ? "failed" : "ok");
    if (dev_loop_run(d) == 0)
        rc = 0;
    dev_audit(d, NULL, "stop", NULL, NULL, 0, "ok");
out:
    if (d->listen_fd >= 0) {
        close(d->listen_fd);
        unlink(d->cfg.socket_path);
    }
    dev_workers_stop(d);
    dev_import_stop(d);
    dev_partitions_destroy(d);
    dev_sessions_destroy(d);
    dev_pool_destroy(&d->pool);
    dev_state_close(d);
    dev_log(rc == 0 ? "stopped" : "not started");
    return rc;
}
