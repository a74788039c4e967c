/*
 * The device under test: the ihsmd named by IHSM_SOCKET + IHSM_CREDENTIAL,
 * or one of our own in a scratch directory (ihsmd and ihsmctl are found
 * next to this executable). Either way we know ihsmd's pid (ours, or from
 * SO_PEERCRED on a connected socket) to charge its CPU time to the ihsm side.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "speed.h"

#define START_WAIT_MS 10000
#define STOP_WAIT_MS 5000

int sp_exe_dir(char *buf, size_t cap)
{
    char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);

    if (n <= 0)
        return -1;
    path[n] = '\0';
    if (snprintf(buf, cap, "%s", dirname(path)) >= (int)cap)
        return -1;
    return 0;
}

static int connect_unix(const char *path)
{
    struct sockaddr_un sa;
    int fd;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;

        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* ihsmd's pid as the kernel saw it when it accepted us. */
static pid_t peer_pid(const char *path)
{
    struct ucred cr;
    socklen_t len = sizeof(cr);
    int fd = connect_unix(path);
    pid_t pid = 0;

    if (fd < 0)
        return 0;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0)
        pid = cr.pid;
    close(fd);
    return pid;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* fork + exec with stdout/stderr into log; the child dies with us. */
static pid_t spawn(char *const argv[], const char *log)
{
    pid_t parent = getpid(), pid = fork();

    if (pid != 0)
        return pid;
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int nul = open("/dev/null", O_RDONLY);

    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
    }
    if (nul >= 0)
        dup2(nul, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(127);
    execv(argv[0], argv);
    dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

static void show_log(const char *log)
{
    char line[512];
    FILE *f = fopen(log, "r");

    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL)
        fprintf(stderr, "  | %s", line);
    fclose(f);
}

static int start_own(struct sp_device *d)
{
    char dir[4096], ihsmd[4200], ihsmctl[4200], state[128], log[128];
    char *ihsmd_argv[] = { ihsmd, "--state-dir", state, "--socket", d->socket, NULL };
    char *init_argv[] = { ihsmctl, "--socket", d->socket, "init", "--partition", "speed",
                          "--credential-out", d->credential, NULL };
    int status, fd;
    pid_t init;

    if (sp_exe_dir(dir, sizeof(dir)) != 0) {
        fprintf(stderr, "ihsm-speed: cannot find my own directory in /proc/self/exe: %s\n",
                strerror(errno));
        return -1;
    }
    snprintf(ihsmd, sizeof(ihsmd), "%s/ihsmd", dir);
    snprintf(ihsmctl, sizeof(ihsmctl), "%s/ihsmctl", dir);
    for (int i = 0; i < 2; i++) {
        const char *p = i ? ihsmctl : ihsmd;

        if (access(p, X_OK) != 0) {
            fprintf(stderr, "ihsm-speed: no %s next to ihsm-speed (%s): build it, or set "
                    "IHSM_SOCKET and IHSM_CREDENTIAL to use a running ihsmd\n", p,
                    strerror(errno));
            return -1;
        }
    }
    snprintf(state, sizeof(state), "%s/state", d->scratch);
    snprintf(log, sizeof(log), "%s/ihsmd.log", d->scratch);
    snprintf(d->socket, sizeof(d->socket), "%s/ihsmd.sock", d->scratch);
    snprintf(d->credential, sizeof(d->credential), "%s/speed.cred", d->scratch);

    if ((d->pid = spawn(ihsmd_argv, log)) < 0) {
        fprintf(stderr, "ihsm-speed: cannot start ihsmd: fork: %s\n", strerror(errno));
        return -1;
    }
    d->own = 1;
    for (int waited = 0;; waited += 20) {
        if ((fd = connect_unix(d->socket)) >= 0) {
            close(fd);
            break;
        }
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            d->pid = 0;
            fprintf(stderr, "ihsm-speed: ihsmd exited at start; its log:\n");
            show_log(log);
            return -1;
        }
        if (waited >= START_WAIT_MS) {
            fprintf(stderr, "ihsm-speed: ihsmd did not listen on %s within %d s; its log:\n",
                    d->socket, START_WAIT_MS / 1000);
            show_log(log);
            return -1;
        }
        sleep_ms(20);
    }
    snprintf(log, sizeof(log), "%s/ihsmctl.log", d->scratch);
    if ((init = spawn(init_argv, log)) < 0
        || waitpid(init, &status, 0) != init || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "ihsm-speed: ihsmctl init failed; its output:\n");
        show_log(log);
        return -1;
    }
    return 0;
}

int sp_device_open(struct sp_device *d)
{
    const char *sock = getenv("IHSM_SOCKET"), *cred = getenv("IHSM_CREDENTIAL");
    int fd;

    memset(d, 0, sizeof(*d));
    strcpy(d->scratch, "/tmp/ihsm-speed.XXXXXX");
    if (mkdtemp(d->scratch) == NULL) {
        fprintf(stderr, "ihsm-speed: cannot make a scratch directory in /tmp: %s\n",
                strerror(errno));
        d->scratch[0] = '\0';
        return -1;
    }
    if (sock == NULL || *sock == '\0' || cred == NULL || *cred == '\0') {
        if (start_own(d) != 0)
            return -1;
        /* the provider reads these too, and they win over its config */
        setenv("IHSM_SOCKET", d->socket, 1);
        setenv("IHSM_CREDENTIAL", d->credential, 1);
        return 0;
    }
    if (snprintf(d->socket, sizeof(d->socket), "%s", sock) >= (int)sizeof(d->socket)
        || snprintf(d->credential, sizeof(d->credential), "%s", cred)
               >= (int)sizeof(d->credential)) {
        fprintf(stderr, "ihsm-speed: IHSM_SOCKET or IHSM_CREDENTIAL is too long\n");
        return -1;
    }
    if ((fd = connect_unix(d->socket)) < 0) {
        fprintf(stderr, "ihsm-speed: ihsmd is not running at %s (IHSM_SOCKET; connect: %s): "
                "start it with `ihsmd --state-dir DIR --socket %s`, or unset IHSM_SOCKET and "
                "IHSM_CREDENTIAL to let ihsm-speed start its own\n", d->socket,
                strerror(errno), d->socket);
        return -1;
    }
    close(fd);
    if ((d->pid = peer_pid(d->socket)) <= 0) {
        fprintf(stderr, "ihsm-speed: note: cannot learn ihsmd's pid (SO_PEERCRED): its CPU "
                "time is not counted, cpu_ratio is left out\n");
        d->pid = 0;
    }
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void sp_device_close(struct sp_device *d)
{
    int status;

    if (d->own && d->pid > 0) {
        kill(d->pid, SIGTERM);
        for (int waited = 0;; waited += 20) {
            if (waitpid(d->pid, &status, WNOHANG) == d->pid)
                break;
            if (waited >= STOP_WAIT_MS) {
                kill(d->pid, SIGKILL);
                waitpid(d->pid, &status, 0);
                break;
            }
            sleep_ms(20);
        }
        d->pid = 0;
    }
    if (d->scratch[0] != '\0' && getenv("IHSM_SPEED_KEEP_SCRATCH") == NULL)
        nftw(d->scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    d->scratch[0] = '\0';
}

/* Fields 14 and 15 of /proc/PID/stat, after the ")" that ends the name
 * (which may itself hold spaces and parentheses). */
double sp_device_cpu_s(const struct sp_device *d)
{
    char path[64], buf[1024], *p;
    unsigned long long ut, st;
    static long hz;
    ssize_t n;
    int fd;

    if (d->pid <= 0)
        return -1;
    if (hz == 0)
        hz = sysconf(_SC_CLK_TCK);
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)d->pid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    if ((p = strrchr(buf, ')')) == NULL)
        return -1;
    /* ") S ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime" */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)(hz > 0 ? hz : 100);
}
