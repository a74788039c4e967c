/*
 * Checking the audit log's MAC chain (AUDIT_VERIFY) and reading it
 * (AUDIT_READ). The audit key never leaves ihsmd, so the check runs here:
 * over the device's own log, or over lines a client sends (a copy, an
 * archive), chunk by chunk with the chain's state carried by the client.
 *
 * A record is good when its sequence number is the next one and its MAC is
 * HMAC(audit key, previous MAC || the line up to " mac="). The first bad
 * record is named with its line and sequence number and why:
 *
 *   MAC mismatch   the record was altered (or does not belong after the one
 *                  before it: inserted, or from another device)
 *   sequence gap   records are missing before it (removed)
 *   out of order   the expected record is further on (moved, swapped), or
 *                  the sequence goes back (replayed)
 *   malformed      the line is not a record
 *   head mismatch  the chain is whole but does not end at the device's head:
 *                  records were cut off the end (truncated)
 *
 * Who may: an officer session (any partition's: the result names sequence
 * numbers, nothing of other partitions), or a connection without a session
 * from an admin uid (root, ihsmd's own, --admin-uid). AUDIT_READ hands out
 * the log itself, which names every partition's keys and clients: admin
 * uids only.
 */
#include "dev.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>

#define CHUNK (1024 * 1024) /* own log: read this much at a time */
#define MAX_RECORD 2048     /* longer is not a record */

struct record {
    uint64_t seq;
    size_t body;  /* bytes the MAC covers: the line up to " mac=" */
    int has_mac;  /* 0: "mac=-" (no audit key when written) */
    uint8_t mac[32];
};

static const char *find_last(const char *p, size_t len, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = len >= n ? len - n + 1 : 0; i-- > 0;)
        if (memcmp(p + i, needle, n) == 0)
            return p + i;
    return NULL;
}

/* One line without its newline. NULL or why it is not a record. */
static const char *parse_record(const char *p, size_t len, struct record *r)
{
    const char *sp, *q, *m, *end = p + len;
    char hex[65];
    uint64_t v = 0;
    int digits = 0;

    memset(r, 0, sizeof(*r));
    if (len == 0)
        return "an empty line";
    if (len > MAX_RECORD)
        return "a line too long to be a record";
    if ((sp = memchr(p, ' ', len)) == NULL || sp == p)
        return "no timestamp";
    q = sp + 1;
    if (end - q < 4 || memcmp(q, "seq=", 4) != 0)
        return "no seq= after the timestamp";
    for (q += 4; q < end && *q >= '0' && *q <= '9' && digits < 20; q++, digits++)
        v = v * 10 + (uint64_t)(*q - '0');
    if (digits == 0 || q >= end || *q != ' ')
        return "seq= is not a number";
    if ((m = find_last(p, len, " mac=")) == NULL || m < q)
        return "no mac= at the end";
    r->seq = v;
    r->body = (size_t)(m - p);
    m += 5;
    if (end - m == 1 && *m == '-')
        return NULL; /* has_mac 0 */
    if (end - m != 64)
        return "mac= is not 64 hex digits";
    memcpy(hex, m, 64);
    hex[64] = '\0';
    if (dev_unhex(r->mac, 32, hex) != 0)
        return "mac= is not 64 hex digits";
    r->has_mac = 1;
    return NULL;
}

static void bad(struct dev_audit_check *ck, uint32_t result, uint64_t seq,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void bad(struct dev_audit_check *ck, uint32_t result, uint64_t seq, const char *fmt, ...)
{
    va_list ap;

    ck->result = result;
    ck->bad_seq = seq;
    ck->bad_line = ck->line;
    va_start(ap, fmt);
    vsnprintf(ck->why, sizeof(ck->why), fmt, ap);
    va_end(ap);
}

/* Where, after `from`, is the record with sequence number seq? line or 0. */
static uint64_t look_ahead(const char *from, const char *end, uint64_t line, uint64_t seq)
{
    while (from < end) {
        const char *nl = memchr(from, '\n', (size_t)(end - from));
        const char *le = nl != NULL ? nl : end;
        struct record r;

        line++;
        if (parse_record(from, (size_t)(le - from), &r) == NULL && r.seq == seq)
            return line;
        from = le + 1;
    }
    return 0;
}

void dev_audit_check_lines(struct ihsmd *d, struct dev_audit_check *ck, const char *buf,
                           size_t len)
{
    const char *p = buf, *end = buf + len;

    while (p < end && ck->result == IHSM_AUDIT_OK) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl != NULL ? nl : end;
        const char *why;
        uint8_t mac[32];
        struct record r;

        ck->line++;
        if ((why = parse_record(p, (size_t)(le - p), &r)) != NULL) {
            bad(ck, IHSM_AUDIT_MALFORMED, ck->next_seq, "malformed: %s", why);
            break;
        }
        if (ck->next_seq == 0) {
            /* parse only (dev_audit_open reads the log's end): trust the line */
        } else if (r.seq != ck->next_seq) {
            uint64_t at = r.seq > ck->next_seq ? look_ahead(le + 1, end, ck->line, ck->next_seq)
                                               : 0;
            if (r.seq < ck->next_seq)
                bad(ck, IHSM_AUDIT_OUT_OF_ORDER, r.seq,
                    "out of order: seq %" PRIu64 " where seq %" PRIu64 " was expected: the "
                    "sequence goes back (records moved or replayed)", r.seq, ck->next_seq);
            else if (at != 0)
                bad(ck, IHSM_AUDIT_OUT_OF_ORDER, r.seq,
                    "out of order: seq %" PRIu64 " where seq %" PRIu64 " was expected, which "
                    "is at line %" PRIu64 " (records moved or swapped)", r.seq, ck->next_seq, at);
            else
                bad(ck, IHSM_AUDIT_SEQ_GAP, r.seq,
                    "sequence gap: seq %" PRIu64 " where seq %" PRIu64 " was expected: "
                    "%" PRIu64 " record%s missing (removed)", r.seq, ck->next_seq,
                    r.seq - ck->next_seq, r.seq - ck->next_seq == 1 ? " is" : "s are");
            break;
        } else if (!r.has_mac || d->audit_key == NULL) {
            bad(ck, IHSM_AUDIT_NO_MAC, r.seq, "%s",
                r.has_mac ? "the device has no audit key (no root secret) to check it with"
                          : "the record has no MAC (written while the device had no audit key)");
            break;
        } else if (ihsm_audit_mac(d->audit_key, ck->prev_mac, (const uint8_t *)p, r.body, mac)
                       != IHSM_OK
                   || CRYPTO_memcmp(mac, r.mac, 32) != 0) {
            bad(ck, IHSM_AUDIT_MAC_MISMATCH, r.seq,
                "MAC mismatch: the record was altered, or it does not belong after the "
                "record before it (inserted, or from another device)");
            break;
        }
        memcpy(ck->prev_mac, r.mac, 32);
        ck->next_seq = r.seq + 1;
        ck->records++;
        p = le + 1;
    }
}

void dev_audit_check_head(struct dev_audit_check *ck, uint64_t seq, const uint8_t mac[32])
{
    uint64_t last = ck->next_seq > 0 ? ck->next_seq - 1 : 0;

    if (ck->result != IHSM_AUDIT_OK)
        return;
    if (last < seq) {
        char which[64];

        if (seq - last == 1)
            snprintf(which, sizeof(which), "record %" PRIu64 " was", seq);
        else
            snprintf(which, sizeof(which), "records %" PRIu64 "..%" PRIu64 " were", last + 1,
                     seq);
        ck->line++; /* where the first missing record would be */
        bad(ck, IHSM_AUDIT_HEAD_MISMATCH, last + 1,
            "head mismatch: the log ends at seq %" PRIu64 " but the device's head is seq "
            "%" PRIu64 ": %s cut off the end (truncated)", last, seq, which);
    } else if (last > seq) {
        bad(ck, IHSM_AUDIT_HEAD_MISMATCH, seq + 1,
            "head mismatch: the log goes on past the device's head (seq %" PRIu64 "): it "
            "is not this device's current log, or the head was rolled back", seq);
    } else if (last != 0 && CRYPTO_memcmp(ck->prev_mac, mac, 32) != 0) {
        bad(ck, IHSM_AUDIT_HEAD_MISMATCH, last,
            "head mismatch: the last record (seq %" PRIu64 ") is not the one the device's "
            "head names", last);
    }
}

/* The device's own log, up to the head taken at the start. */
static int check_own(struct ihsmd *d, struct dev_audit_check *ck)
{
    char path[4096];
    uint8_t hmac[32];
    uint64_t hseq, size, off = 0;
    size_t have = 0;
    struct stat st;
    char *buf;
    int fd;

    dev_audit_head(d, &hseq, hmac, &size);
    if (dev_path(path, sizeof(path), d->cfg.state_dir, "audit.log") != 0)
        return IHSM_ERR_STORAGE;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno != ENOENT) {
        dev_log("AUDIT_VERIFY: cannot read %s: %s", path, strerror(errno));
        return IHSM_ERR_STORAGE;
    }
    if (fd >= 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_size < size)
        size = (uint64_t)st.st_size; /* cut while we run: the head check says so */
    if (fd < 0)
        size = 0;
    buf = malloc(CHUNK + 1);
    if (buf == NULL) {
        if (fd >= 0)
            close(fd);
        return IHSM_ERR_NOMEM;
    }
    ck->next_seq = 1;
    memset(ck->prev_mac, 0, 32);
    while (off < size && ck->result == IHSM_AUDIT_OK) {
        size_t want = CHUNK - have, proc;
        ssize_t n;
        const char *nl;

        if (want > size - off)
            want = (size_t)(size - off);
        n = pread(fd, buf + have, want, (off_t)off);
        if (n <= 0)
            break;
        off += (uint64_t)n;
        have += (size_t)n;
        nl = find_last(buf, have, "\n");
        if (off >= size || nl == NULL)
            proc = have; /* the end, or a "line" longer than a chunk */
        else
            proc = (size_t)(nl - buf) + 1;
        dev_audit_check_lines(d, ck, buf, proc);
        memmove(buf, buf + proc, have - proc);
        have -= proc;
    }
    free(buf);
    if (fd >= 0)
        close(fd);
    dev_audit_check_head(ck, hseq, hmac);
    return IHSM_OK;
}

/* An officer session (dev_cmd.c checked the role) or an admin uid. */
static int allowed(struct dev_ctx *c, const char *event)
{
    if (c->sess != NULL || dev_may_admin(c->d, c->conn->uid))
        return IHSM_OK;
    dev_audit(c->d, c->conn, event, NULL, NULL, 0, "permission_denied");
    dev_log("%s refused to uid %ld pid %ld: not root, ihsmd's uid or an --admin-uid%s",
            event, (long)c->conn->uid, (long)c->conn->pid,
            strcmp(event, "audit_verify") == 0 ? ", and no crypto-officer session" : "");
    return IHSM_ERR_PERMISSION;
}

int dev_cmd_audit_verify(struct dev_ctx *c)
{
    struct dev_audit_check ck;
    const uint8_t *prev, *lines;
    size_t prev_len, lines_len;
    uint64_t next, line, hseq, hsize;
    uint8_t hmac[32];
    uint32_t flags;
    char what[128];
    int st;

    flags = ihsm_rd_u32(c->rd);
    next = ihsm_rd_u64(c->rd);
    prev = ihsm_rd_bytes(c->rd, &prev_len, 32);
    line = ihsm_rd_u64(c->rd);
    lines = ihsm_rd_bytes(c->rd, &lines_len, IHSM_MAX_PAYLOAD);
    if (ihsm_rd_end(c->rd) != 0)
        return IHSM_ERR_MALFORMED;
    if ((st = allowed(c, "audit_verify")) != IHSM_OK)
        return st;
    if ((flags & ~(IHSM_AUDITF_CLIENT | IHSM_AUDITF_FINAL)) != 0)
        return IHSM_ERR_BAD_INPUT;
    memset(&ck, 0, sizeof(ck));
    if (!(flags & IHSM_AUDITF_CLIENT)) {
        if (next != 0 || prev_len != 0 || line != 0 || lines_len != 0)
            return IHSM_ERR_BAD_INPUT;
        if ((st = check_own(c->d, &ck)) != IHSM_OK)
            return st;
    } else {
        if (next == 0) { /* a log's first chunk: the chain starts at zero */
            ck.next_seq = 1;
        } else if (prev_len != 32) {
            return IHSM_ERR_BAD_INPUT;
        } else {
            ck.next_seq = next;
            memcpy(ck.prev_mac, prev, 32);
        }
        ck.line = line;
        dev_audit_check_lines(c->d, &ck, (const char *)lines, lines_len);
        if (flags & IHSM_AUDITF_FINAL) {
            dev_audit_head(c->d, &hseq, hmac, &hsize);
            dev_audit_check_head(&ck, hseq, hmac);
        }
    }
    dev_audit_head(c->d, &hseq, hmac, &hsize);
    ihsm_wr_u32(c->out, ck.result);
    ihsm_wr_u64(c->out, ck.records);
    ihsm_wr_u64(c->out, ck.next_seq);
    ihsm_wr_bytes(c->out, ck.prev_mac, 32);
    ihsm_wr_u64(c->out, ck.line);
    ihsm_wr_u64(c->out, ck.bad_seq);
    ihsm_wr_u64(c->out, ck.bad_line);
    ihsm_wr_bytes(c->out, ck.why, strlen(ck.why));
    ihsm_wr_u64(c->out, hseq);
    if (!(flags & IHSM_AUDITF_CLIENT) || (flags & IHSM_AUDITF_FINAL)
        || ck.result != IHSM_AUDIT_OK) {
        if (ck.result == IHSM_AUDIT_OK)
            snprintf(what, sizeof(what), "ok_%s_log_to_seq_%" PRIu64,
                     (flags & IHSM_AUDITF_CLIENT) ? "client" : "own", ck.next_seq - 1);
        else
            snprintf(what, sizeof(what), "bad_%s_log_result_%u_seq_%" PRIu64 "_line_%" PRIu64,
                     (flags & IHSM_AUDITF_CLIENT) ? "client" : "own", ck.result, ck.bad_seq,
                     ck.bad_line);
        dev_audit(c->d, c->conn, "audit_verify",
                  c->sess != NULL ? c->sess->part->name : NULL, NULL, 0, what);
        if (ck.result != IHSM_AUDIT_OK)
            dev_log("audit log check (%s): line %" PRIu64 " seq %" PRIu64 ": %s",
                    (flags & IHSM_AUDITF_CLIENT) ? "lines from a client" : "the device's own",
                    ck.bad_line, ck.bad_seq, ck.why);
    }
    return IHSM_OK;
}

int dev_cmd_audit_read(struct dev_ctx *c)
{
    char path[4096];
    uint64_t offset, size = 0;
    uint32_t max;
    struct stat st;
    uint8_t *dst;
    size_t mark, want = 0;
    ssize_t n = 0;
    int fd, st_;

    offset = ihsm_rd_u64(c->rd);
    max = ihsm_rd_u32(c->rd);
    if (ihsm_rd_end(c->rd) != 0)
        return IHSM_ERR_MALFORMED;
    if ((st_ = allowed(c, "audit_read")) != IHSM_OK)
        return st_;
    if (max > IHSM_MAX_PAYLOAD - 64)
        max = IHSM_MAX_PAYLOAD - 64;
    if (dev_path(path, sizeof(path), c->d->cfg.state_dir, "audit.log") != 0)
        return IHSM_ERR_STORAGE;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0 && fstat(fd, &st) == 0)
        size = (uint64_t)st.st_size;
    if (offset < size)
        want = size - offset < max ? (size_t)(size - offset) : max;
    ihsm_wr_u64(c->out, size);
    mark = ihsm_wr_bytes_begin(c->out);
    if (want > 0 && (dst = ihsm_wr_reserve(c->out, want)) != NULL) {
        n = pread(fd, dst, want, (off_t)offset);
        if (n < 0)
            n = 0;
        c->out->len -= want - (size_t)n; /* what was read */
    }
    ihsm_wr_bytes_end(c->out, mark);
    if (fd >= 0)
        close(fd);
    return IHSM_OK;
}
