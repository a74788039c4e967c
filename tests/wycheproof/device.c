/*
 * The device a run uses: the one named by IHSM_SOCKET and IHSM_CREDENTIAL
 * (IHSM_OFFICER_CREDENTIAL for imports when set), or our own ihsmd started
 * in a scratch directory from the binaries next to this executable, with a
 * fresh partition, and stopped at the end. The scratch directory exists in
 * both cases: it holds the run's openssl.cnf.
 */
#include "wycheproof.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PARTITION "wycheproof"
#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 5000

static char *path_join(const char *dir, const char *name)
{
    char *p = NULL;

    if (asprintf(&p, "%s/%s", dir, name) < 0)
        return NULL;
    return p;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static int find_bindir(wp_device *d)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash;

    if (n <= 0) {
        fprintf(stderr, "ihsm-wycheproof: cannot read /proc/self/exe (%s): cannot find "
                "ihsmd next to this program\n", strerror(errno));
        return -1;
    }
    exe[n] = '\0';
    if ((slash = strrchr(exe, '/')) == NULL)
        return -1;
    *slash = '\0';
    snprintf(d->bindir, sizeof(d->bindir), "%s", exe);
    return 0;
}

/* fork + exec with stdout/stderr to log; in the child, dies with us. */
static pid_t spawn(char *const argv[], const char *log)
{
    pid_t pid = fork();

    if (pid != 0)
        return pid;
    {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
}

static void show_log(const wp_device *d)
{
    char *log = path_join(d->scratch, "ihsmd.log"), *text = NULL;
    size_t len;

    if (log != NULL && wp_read_file(log, &text, &len) == 0 && len > 0)
        fprintf(stderr, "--- %s ---\n%s--- end ---\n", log, text);
    free(text);
    free(log);
}

static int start_own(wp_device *d)
{
    char *ihsmd = path_join(d->bindir, "ihsmd"), *ihsmctl = path_join(d->bindir, "ihsmctl");
    char *state = path_join(d->scratch, "state"), *log = path_join(d->scratch, "ihsmd.log");
    char *officer = NULL;
    int rc = -1, status, waited;
    pid_t init;

    d->socket_path = path_join(d->scratch, "ihsmd.sock");
    d->credential = path_join(d->scratch, PARTITION ".cred");
    if (ihsmd == NULL || ihsmctl == NULL || state == NULL || log == NULL
        || d->socket_path == NULL || d->credential == NULL)
        goto end;
    if (access(ihsmd, X_OK) != 0 || access(ihsmctl, X_OK) != 0) {
        fprintf(stderr, "ihsm-wycheproof: no ihsmd/ihsmctl in %s: build them (cmake --build "
                "BUILD) or point IHSM_SOCKET and IHSM_CREDENTIAL at a running ihsmd\n",
                d->bindir);
        goto end;
    }
    {
        char *argv[] = { ihsmd, "--state-dir", state, "--socket", d->socket_path, NULL };

        if ((d->pid = spawn(argv, log)) < 0) {
            fprintf(stderr, "ihsm-wycheproof: fork: %s\n", strerror(errno));
            d->pid = 0;
            goto end;
        }
    }
    for (waited = 0;; waited += 20) {
        struct stat st;

        if (stat(d->socket_path, &st) == 0 && S_ISSOCK(st.st_mode))
            break;
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            d->pid = 0;
            show_log(d);
            fprintf(stderr, "ihsm-wycheproof: ihsmd exited at start (log above)\n");
            goto end;
        }
        if (waited >= START_TIMEOUT_MS) {
            show_log(d);
            fprintf(stderr, "ihsm-wycheproof: ihsmd did not create %s in %d s\n",
                    d->socket_path, START_TIMEOUT_MS / 1000);
            goto end;
        }
        sleep_ms(20);
    }
    {
        char *argv[] = { ihsmctl, "--socket", d->socket_path, "init", "--partition",
                         PARTITION, "--credential-out", d->credential, NULL };

        if ((init = spawn(argv, log)) < 0 || waitpid(init, &status, 0) != init
            || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            show_log(d);
            fprintf(stderr, "ihsm-wycheproof: `ihsmctl init --partition %s` failed (log "
                    "above)\n", PARTITION);
            goto end;
        }
    }
    /* init writes the crypto officer's credential next to the user's
     * (CRED.officer), and imports need it; an ihsmd without roles writes
     * none, and then the user credential imports */
    if ((officer = path_join(d->scratch, PARTITION ".cred.officer")) != NULL
        && access(officer, R_OK) == 0) {
        d->officer_credential = officer;
        officer = NULL;
    }
    rc = 0;
end:
    free(ihsmd);
    free(ihsmctl);
    free(state);
    free(log);
    free(officer);
    return rc;
}

int wp_device_start(wp_device *d)
{
    const char *sock = getenv("IHSM_SOCKET"), *cred = getenv("IHSM_CREDENTIAL");
    const char *officer = getenv("IHSM_OFFICER_CREDENTIAL");
    char tmpl[] = "/tmp/ihsm-wycheproof.XXXXXX";

    memset(d, 0, sizeof(*d));
    if (find_bindir(d) != 0)
        return -1;
    if (mkdtemp(tmpl) == NULL || (d->scratch = strdup(tmpl)) == NULL) {
        fprintf(stderr, "ihsm-wycheproof: cannot make a scratch directory in /tmp: %s\n",
                strerror(errno));
        return -1;
    }
    if (sock != NULL && sock[0] != '\0') {
        if (cred == NULL || cred[0] == '\0') {
            fprintf(stderr, "ihsm-wycheproof: IHSM_SOCKET is set but IHSM_CREDENTIAL is not: "
                    "set both to use that device (the credential from `ihsmctl init`), or "
                    "neither to let the runner start its own ihsmd\n");
            return -1;
        }
        d->socket_path = strdup(sock);
        d->credential = strdup(cred);
        if (officer != NULL && officer[0] != '\0')
            d->officer_credential = strdup(officer);
        return d->socket_path != NULL && d->credential != NULL ? 0 : -1;
    }
    if (start_own(d) != 0)
        return -1;
    /* the provider reads these (the environment wins over openssl.cnf) */
    setenv("IHSM_SOCKET", d->socket_path, 1);
    setenv("IHSM_CREDENTIAL", d->credential, 1);
    /* IHSM_OFFICER_CREDENTIAL, if set, belongs to another device: ours is
     * the one init wrote (start_own) */
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void wp_device_stop(wp_device *d)
{
    int status, waited;

    if (d->pid > 0) {
        kill(d->pid, SIGTERM);
        for (waited = 0; waited < STOP_TIMEOUT_MS; waited += 20) {
            if (waitpid(d->pid, &status, WNOHANG) == d->pid)
                break;
            sleep_ms(20);
        }
        if (waited >= STOP_TIMEOUT_MS) {
            fprintf(stderr, "ihsm-wycheproof: ihsmd (pid %d) did not stop on SIGTERM in %d s: "
                    "killed\n", (int)d->pid, STOP_TIMEOUT_MS / 1000);
            kill(d->pid, SIGKILL);
            waitpid(d->pid, &status, 0);
        }
        d->pid = 0;
    }
    if (d->scratch != NULL && getenv("IHSM_KEEP_SCRATCH") == NULL)
        nftw(d->scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(d->scratch);
    free(d->socket_path);
    free(d->credential);
    free(d->officer_credential);
    d->scratch = d->socket_path = d->credential = d->officer_credential = NULL;
}
