/*
 * The audit log: STATE/audit.log, append-only, one record per line:
 *
 *   2025-01-31T12:00:00Z seq=42 uid=1000 pid=4242 event=generate partition=web key=tls outcome=ok mac=<64 hex>
 *
 * Tamper evidence. mac = HMAC-SHA256(audit key, MAC of record seq-1 || the
 * line up to " mac="), the first record chained to 32 zero bytes. The audit
 * key is HKDF-SHA256 of the root secret with its own info string; it is in
 * the secure heap and never leaves ihsmd, so nobody else can write a record
 * that verifies, and an edited, removed, reordered or inserted record breaks
 * the chain where it is (dev_audit_verify.c names it).
 *
 * Cutting records off the end leaves a valid chain, so the head (the last
 * sequence number and its MAC) is kept apart: in memory, which is the
 * reference while ihsmd runs, and in STATE/audit.head, replaced atomically
 * after the records, which carries it across restarts. At start the log's
 * end must be the head, or records past it that chain from it (written just
 * before a crash, ahead of the head file); anything else was truncated or
 * edited: ihsmd says so, records an audit_head_mismatch event and continues
 * the chain from the head, so the break stays visible to every later check.
 *
 * Durability: each line is one write() on an O_APPEND descriptor, then
 * fdatasync for everything but session open/close (frequent, and not
 * security decisions). The head file is replaced (rename) after the
 * records but synced only at a clean stop: after a crash it may lag the
 * log, and the check at start accepts records past it that chain from it;
 * a head lost in a crash is recorded (audit_head_missing). Labels are client
 * bytes: anything outside the name alphabet is written as %XX so a label
 * cannot forge a field or a line.
 */
#include "dev.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>

#define LOG_NAME "audit.log"
#define HEAD_NAME "audit.head"
#define TAIL_MAX (64 * 1024) /* read at start: the last records */
#define MAX_LINE 1200

static void head_path(const struct ihsmd *d, char *out, size_t cap)
{
    if (dev_path(out, cap, d->cfg.state_dir, HEAD_NAME) != 0)
        out[0] = '\0';
}

/* ---- the head file ---- */

static int head_format(char *buf, size_t cap, uint64_t seq, const uint8_t mac[32])
{
    char hex[65];

    dev_hex(hex, mac, 32);
    return snprintf(buf, cap,
                    "# ihsm audit log head, written by ihsmd after the records: the last\n"
                    "# record's sequence number and MAC. A log that ends elsewhere was cut.\n"
                    "seq = %" PRIu64 "\nmac = %s\n", seq, hex);
}

static void head_write(struct ihsmd *d, uint64_t seq, const uint8_t mac[32], int sync)
{
    char buf[256];
    int n = head_format(buf, sizeof(buf), seq, mac), r;

    r = dev_write_atomic_ex(d->cfg.state_dir, HEAD_NAME, buf, (size_t)n, 0, sync);
    if (r != 0)
        dev_log("cannot write %s/%s: %s: the audit log's head is stale", d->cfg.state_dir,
                HEAD_NAME, strerror(-r));
}

/* 1 read, 0 absent, -1 unreadable or malformed */
static int head_read(const struct ihsmd *d, uint64_t *seq, uint8_t mac[32])
{
    char path[4096], *save = NULL, *line;
    uint8_t *buf;
    size_t len;
    int have = 0, r;

    head_path(d, path, sizeof(path));
    r = dev_read_file(path, 4096, &buf, &len);
    if (r == -ENOENT)
        return 0;
    if (r != 0)
        return -1;
    for (line = strtok_r((char *)buf, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        unsigned long long v;
        char hex[80];

        if (sscanf(line, "seq = %llu", &v) == 1) {
            *seq = v;
            have |= 1;
        } else if (sscanf(line, "mac = %79s", hex) == 1 && dev_unhex(mac, 32, hex) == 0) {
            have |= 2;
        }
    }
    dev_free_file(buf, len);
    return have == 3 ? 1 : -1;
}

/* One writer at a time; whoever holds it writes until nothing is dirty,
 * and nobody waits for it (the event loop writes session records). */
static void head_flush(struct ihsmd *d)
{
    while (atomic_load(&d->audit_dirty) && pthread_mutex_trylock(&d->audit_head_mu) == 0) {
        while (atomic_exchange(&d->audit_dirty, 0)) {
            int sync = atomic_exchange(&d->audit_sync, 0); /* at a clean stop */
            uint8_t mac[32];
            uint64_t seq;

            pthread_mutex_lock(&d->audit_mu);
            seq = d->audit_seq;
            memcpy(mac, d->audit_mac, 32);
            pthread_mutex_unlock(&d->audit_mu);
            head_write(d, seq, mac, sync);
        }
        pthread_mutex_unlock(&d->audit_head_mu);
    }
}

void dev_audit_head(struct ihsmd *d, uint64_t *seq, uint8_t mac[32], uint64_t *size)
{
    pthread_mutex_lock(&d->audit_mu);
    *seq = d->audit_seq;
    memcpy(mac, d->audit_mac, 32);
    *size = d->audit_size;
    pthread_mutex_unlock(&d->audit_mu);
}

/* ---- start ---- */

/* The tail of the log: up to TAIL_MAX bytes ending at its end. */
static int read_tail(int fd, uint64_t size, char **buf, size_t *len)
{
    size_t want = size > TAIL_MAX ? TAIL_MAX : (size_t)size;
    ssize_t n;

    *buf = malloc(want + 1);
    if (*buf == NULL)
        return -ENOMEM;
    n = pread(fd, *buf, want, (off_t)(size - want));
    if (n != (ssize_t)want) {
        free(*buf);
        *buf = NULL;
        return n < 0 ? -errno : -EIO;
    }
    (*buf)[want] = '\0';
    *len = want;
    return 0;
}

/* The log's last complete record (seq and MAC), and whether the tail holds
 * the record `hseq` with MAC hmac followed by a valid chain to the end: then
 * *adopt gets the end. Returns 1 if a record was found. */
static int scan_tail(struct ihsmd *d, const char *tail, size_t len, int from_start,
                     uint64_t hseq, const uint8_t hmac[32], uint64_t *last_seq,
                     uint8_t last_mac[32], int *chains)
{
    const char *p = tail, *end = tail + len;
    int found = 0;

    *chains = 0;
    if (!from_start) { /* the first line is probably cut: skip it */
        const char *nl = memchr(p, '\n', len);
        p = nl != NULL ? nl + 1 : end;
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl != NULL ? nl : end;
        struct dev_audit_check one;

        if (nl == NULL)
            break; /* a partial last line is not a record */
        memset(&one, 0, sizeof(one));
        one.next_seq = 0; /* parse only */
        dev_audit_check_lines(d, &one, p, (size_t)(le - p) + 1);
        if (one.result == IHSM_AUDIT_OK && one.records == 1) {
            *last_seq = one.next_seq - 1;
            memcpy(last_mac, one.prev_mac, 32);
            found = 1;
            if (*last_seq == hseq && CRYPTO_memcmp(last_mac, hmac, 32) == 0) {
                /* the head's record: does the rest chain from it? */
                struct dev_audit_check rest;

                memset(&rest, 0, sizeof(rest));
                rest.next_seq = hseq + 1;
                memcpy(rest.prev_mac, hmac, 32);
                dev_audit_check_lines(d, &rest, nl + 1, (size_t)(end - nl - 1));
                if (rest.result == IHSM_AUDIT_OK) {
                    *chains = 1;
                    *last_seq = rest.next_seq - 1;
                    memcpy(last_mac, rest.prev_mac, 32);
                    return 1;
                }
            }
        }
        p = le + 1;
    }
    return found;
}

/* A log with no head file: records made before the chain existed, or a
 * head that was lost. It is moved aside, never rewritten or deleted. */
static int move_aside(struct ihsmd *d, char *moved, size_t cap)
{
    char from[4096], to[4096];
    int n;

    n = snprintf(moved, cap, "audit.log.unchained.%lld", (long long)time(NULL));
    if (n < 0 || (size_t)n >= cap || dev_path(from, sizeof(from), d->cfg.state_dir, LOG_NAME)
        || dev_path(to, sizeof(to), d->cfg.state_dir, moved))
        return -ENAMETOOLONG;
    if (rename(from, to) != 0)
        return -errno;
    return dev_fsync_dir(d->cfg.state_dir);
}

static int open_log(struct ihsmd *d, uint64_t *size)
{
    char path[4096];
    struct stat st;

    if (dev_path(path, sizeof(path), d->cfg.state_dir, LOG_NAME) != 0)
        return -ENAMETOOLONG;
    d->audit_fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (d->audit_fd < 0)
        return -errno;
    if (fstat(d->audit_fd, &st) != 0)
        return -errno;
    *size = (uint64_t)st.st_size;
    return 0;
}

int dev_audit_open(struct ihsmd *d)
{
    uint64_t size = 0, hseq = 0, last_seq = 0;
    uint8_t hmac[32] = { 0 }, last_mac[32] = { 0 };
    char *tail = NULL, note[160] = "", moved[64];
    size_t tail_len = 0;
    int r, head, found = 0, chains = 0;

    pthread_mutex_init(&d->audit_mu, NULL);
    pthread_mutex_init(&d->audit_head_mu, NULL);
    atomic_init(&d->audit_dirty, 0);
    atomic_init(&d->audit_sync, 0);
    d->audit_seq = 0;
    memset(d->audit_mac, 0, sizeof(d->audit_mac));
    if (d->root != NULL) {
        d->audit_key = OPENSSL_secure_malloc(32);
        if (d->audit_key == NULL || ihsm_derive_audit_key(d->root, d->audit_key) != IHSM_OK) {
            OPENSSL_secure_clear_free(d->audit_key, 32);
            d->audit_key = NULL;
        }
    }
    if (d->audit_key == NULL)
        dev_log("warning: no audit key (no root secret): audit records carry no MAC and "
                "`ihsmctl audit verify` will refuse them");

    if ((r = open_log(d, &size)) != 0)
        return r;
    head = head_read(d, &hseq, hmac);
    if (head < 0) {
        dev_log("%s/%s is unreadable or malformed: treated as missing", d->cfg.state_dir,
                HEAD_NAME);
        head = 0;
    }
    if (size > 0 && (r = read_tail(d->audit_fd, size, &tail, &tail_len)) != 0) {
        dev_log("cannot read the end of %s/%s: %s", d->cfg.state_dir, LOG_NAME, strerror(-r));
        return r;
    }
    if (size > 0)
        found = scan_tail(d, tail, tail_len, size <= TAIL_MAX, hseq, hmac, &last_seq,
                          last_mac, &chains);

    if (size == 0 && head == 0) {
        /* a new log */
    } else if (head == 0 && !found) {
        /* records without a chain: an older ihsmd's log */
        close(d->audit_fd);
        d->audit_fd = -1;
        if ((r = move_aside(d, moved, sizeof(moved))) != 0 || (r = open_log(d, &size)) != 0) {
            free(tail);
            dev_log("cannot move the unchained audit log aside: %s", strerror(-r));
            return r;
        }
        dev_log("%s/%s had no MAC chain (an older ihsmd's): moved to %s, a new chained log "
                "starts", d->cfg.state_dir, LOG_NAME, moved);
        snprintf(note, sizeof(note), "unchained_log_moved_to_%s", moved);
    } else if (head == 0) {
        /* a chained log whose head file is gone: continue, but say so */
        d->audit_seq = last_seq;
        memcpy(d->audit_mac, last_mac, 32);
        dev_log("warning: %s/%s is missing: the audit chain continues from the log's last "
                "record (seq %" PRIu64 "); a log cut short meanwhile cannot be told",
                d->cfg.state_dir, HEAD_NAME, last_seq);
        snprintf(note, sizeof(note), "head_missing_continued_from_seq_%" PRIu64, last_seq);
    } else if (found && chains) {
        /* the head's record, maybe followed by records the head missed */
        d->audit_seq = last_seq;
        memcpy(d->audit_mac, last_mac, 32);
    } else {
        /* cut or edited: keep the head, so the break stays in the chain */
        d->audit_seq = hseq;
        memcpy(d->audit_mac, hmac, 32);
        if (found)
            snprintf(note, sizeof(note), "log_ends_at_seq_%" PRIu64 "_head_is_seq_%" PRIu64,
                     last_seq, hseq);
        else
            snprintf(note, sizeof(note), "log_has_no_record_head_is_seq_%" PRIu64, hseq);
        dev_log("AUDIT LOG TAMPERED OR DAMAGED: %s/%s does not end at its head (seq %" PRIu64
                "%s): records were cut or edited; `ihsmctl audit verify` names the first bad "
                "one", d->cfg.state_dir, LOG_NAME, hseq, found ? "" : ", no record found");
    }
    free(tail);
    /* a crash mid-line leaves no newline: the next record starts afresh */
    if (size > 0) {
        char last = '\n';
        if (pread(d->audit_fd, &last, 1, (off_t)size - 1) == 1 && last != '\n'
            && write(d->audit_fd, "\n", 1) == 1)
            size++;
    }
    d->audit_size = size;
    if (note[0] != '\0')
        dev_audit(d, NULL, strncmp(note, "unchained", 9) == 0 ? "audit_chain_start"
                           : strncmp(note, "head_missing", 12) == 0 ? "audit_head_missing"
                                                                    : "audit_head_mismatch",
                  NULL, NULL, 0, note);
    else if (d->audit_seq != hseq || head == 0) {
        atomic_store(&d->audit_dirty, 1);
        head_flush(d);
    }
    return 0;
}

void dev_audit_close(struct ihsmd *d)
{
    if (d->audit_fd >= 0) {
        fsync(d->audit_fd);
        atomic_store(&d->audit_sync, 1);
        atomic_store(&d->audit_dirty, 1);
        head_flush(d);
        close(d->audit_fd);
        d->audit_fd = -1;
        pthread_mutex_destroy(&d->audit_mu);
        pthread_mutex_destroy(&d->audit_head_mu);
    }
    if (d->audit_key != NULL) {
        OPENSSL_secure_clear_free(d->audit_key, 32);
        d->audit_key = NULL;
    }
}

/* ---- records ---- */

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
    char line[MAX_LINE], rest[1024], stamp[80], kbuf[3 * IHSM_MAX_LABEL + 8];
    char pbuf[3 * DEV_MAX_NAME + 8], ebuf[96], obuf[3 * 96 + 8], hex[65];
    uint8_t mac[32];
    struct timespec ts;
    struct tm tm;
    int n, m, ok, durable;
    uint64_t seq;

    if (d->audit_fd < 0)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (key != NULL && key_len > 0)
        escape(kbuf, sizeof(kbuf), key, key_len);
    else
        strcpy(kbuf, "-");
    if (part != NULL)
        escape(pbuf, sizeof(pbuf), (const uint8_t *)part, strlen(part));
    else
        strcpy(pbuf, "-");
    escape(ebuf, sizeof(ebuf), (const uint8_t *)event, strnlen(event, 90));
    escape(obuf, sizeof(obuf), (const uint8_t *)outcome, strnlen(outcome, 96));
    n = snprintf(rest, sizeof(rest), "uid=%ld pid=%ld event=%s partition=%s key=%s outcome=%s",
                 conn != NULL ? (long)conn->uid : (long)d->own_uid,
                 conn != NULL ? (long)conn->pid : (long)getpid(), ebuf, pbuf, kbuf, obuf);
    if (n < 0 || (size_t)n >= sizeof(rest))
        return;
    durable = strncmp(event, "session_", 8) != 0;

    pthread_mutex_lock(&d->audit_mu);
    seq = d->audit_seq + 1;
    n = snprintf(line, sizeof(line), "%s seq=%" PRIu64 " %s", stamp, seq, rest);
    if (n < 0 || (size_t)n + 80 > sizeof(line)) { /* no room for the MAC: cannot happen */
        pthread_mutex_unlock(&d->audit_mu);
        return;
    }
    if (d->audit_key != NULL
        && ihsm_audit_mac(d->audit_key, d->audit_mac, (const uint8_t *)line, (size_t)n, mac)
               == IHSM_OK) {
        dev_hex(hex, mac, 32);
    } else {
        memset(mac, 0, sizeof(mac));
        strcpy(hex, "-");
    }
    m = snprintf(line + n, sizeof(line) - (size_t)n, " mac=%s\n", hex);
    n += m;
    ok = write(d->audit_fd, line, (size_t)n) == n;
    if (ok) {
        d->audit_seq = seq;
        memcpy(d->audit_mac, mac, 32);
        d->audit_size += (uint64_t)n;
    }
    pthread_mutex_unlock(&d->audit_mu);
    if (!ok) {
        dev_log("audit log write failed: %s", strerror(errno));
        return;
    }
    /* outside the lock: the event loop also writes (session_close) and
     * must not wait for another thread's disk flush */
    if (durable)
        fdatasync(d->audit_fd);
    atomic_store(&d->audit_dirty, 1);
    head_flush(d);
}
