/*
 * The audit log: STATE/audit.log, append-only, one line per event:
 *
 *   2025-01-31T12:00:00Z uid=1000 pid=4242 event=generate partition=web key=tls outcome=ok
 *
 * Each line is one write() on an O_APPEND descriptor, followed by
 * fdatasync for key lifecycle and authentication events so they survive a
 * crash. Labels are client bytes: anything outside
 * the name alphabet is written as %XX so a label cannot forge a line.
 */
#include "dev.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int dev_audit_open(struct ihsmd *d)
{
    char path[4096];

    if (dev_path(path, sizeof(path), d->cfg.state_dir, "audit.log") != 0)
        return -ENAMETOOLONG;
    d->audit_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (d->audit_fd < 0)
        return -errno;
    pthread_mutex_init(&d->audit_mu, NULL);
    return 0;
}

void dev_audit_close(struct ihsmd *d)
{
    if (d->audit_fd >= 0) {
        fsync(d->audit_fd);
        close(d->audit_fd);
        d->audit_fd = -1;
        pthread_mutex_destroy(&d->audit_mu);
    }
}

static size_t escape(char *out, size_t cap, const uint8_t *p, size_t len)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t o = 0;

    for (size_t i = 0; i < len && o + 4 < cap; i++) {
        uint8_t ch = p[i];
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z')
            || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-') {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = digits[ch >> 4];
            out[o++] = digits[ch & 15];
        }
    }
    out[o] = '\0';
    return o;
}

void dev_audit(struct ihsmd *d, const struct dev_conn *conn, const char *event,
               const char *part, const uint8_t *key, size_t key_len,
               const char *outcome)
{
    char line[1024], kbuf[3 * IHSM_MAX_LABEL + 8], pbuf[3 * DEV_MAX_NAME + 8];
    struct timespec ts;
    struct tm tm;
    int n, ok;

    if (d->audit_fd < 0)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    if (key != NULL && key_len > 0)
        escape(kbuf, sizeof(kbuf), key, key_len);
    else
        strcpy(kbuf, "-");
    if (part != NULL)
        escape(pbuf, sizeof(pbuf), (const uint8_t *)part, strlen(part));
    else
        strcpy(pbuf, "-");
    n = snprintf(line, sizeof(line),
                 "%04d-%02d-%02dT%02d:%02d:%02dZ uid=%ld pid=%ld event=%s partition=%s key=%s outcome=%s\n",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, conn != NULL ? (long)conn->uid : (long)d->own_uid,
                 conn != NULL ? (long)conn->pid : (long)getpid(), event, pbuf, kbuf,
                 outcome);
    if (n < 0 || (size_t)n >= sizeof(line))
        return;
    pthread_mutex_lock(&d->audit_mu);
    ok = write(d->audit_fd, line, (size_t)n) == n;
    pthread_mutex_unlock(&d->audit_mu);
    if (!ok)
        dev_log("audit log write failed: %s", strerror(errno));
    /* outside the lock: the event loop also writes (session_close) and
     * must not wait for another thread's disk flush; session open/close
     * are frequent and not security decisions */
    else if (strncmp(event, "session_", 8) != 0)
        fdatasync(d->audit_fd);
}
