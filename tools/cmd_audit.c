/*
 * ihsmctl audit: the device's tamper-evident audit log.
 *
 *   ihsmctl audit verify [--log FILE]   the device checks the MAC chain
 *   ihsmctl audit show [--json] [--log FILE]
 *
 * The chain's key never leaves ihsmd, so verification is the device's
 * (AUDIT_VERIFY): of its own log, or of a copy sent to it in chunks of whole
 * lines with the chain's state carried from one to the next. The device
 * allows it to a crypto-officer session or, without a session, to an admin
 * uid (root, ihsmd's own, --admin-uid); show reads the log through
 * AUDIT_READ (admin uids) unless --log names a copy.
 */
#include "tools_common.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#define CHUNK (96 * 1024)           /* lines per AUDIT_VERIFY request */
#define READ_CHUNK (100 * 1024)     /* bytes per AUDIT_READ */
#define MAX_LOG ((size_t)1 << 30)   /* show: what we hold in memory */

static const char help[] =
    "Usage: ihsmctl audit verify [--log FILE]\n"
    "       ihsmctl audit show [--json] [--log FILE]\n"
    "\n"
    "Every audit record (time, sequence number, uid, pid, event, partition, key,\n"
    "outcome) carries an HMAC-SHA256 chained to the record before it, under a key\n"
    "only the device holds; the device also keeps the last record's number and\n"
    "MAC (its head), so records cut off the end are noticed.\n"
    "\n"
    "  verify       the device checks its own log (or, with --log, a copy of it) and\n"
    "               names the first bad record: its line, its sequence number and\n"
    "               why (MAC mismatch: edited; sequence gap: removed; out of order:\n"
    "               moved; head mismatch: truncated). Exit status 1 if one is bad.\n"
    "  show         print the log readably (--json: one object per record); it does\n"
    "               not check it\n"
    "  --log FILE   a copy of the device's audit.log instead of the device's own\n"
    "\n"
    "The device allows verify to a crypto-officer session (--officer-credential,\n"
    "IHSM_OFFICER_CREDENTIAL or --credential) or, with no credential, to root,\n"
    "ihsmd's own uid or an ihsmd --admin-uid; show reads the device's log only for\n"
    "those uids.\n";

struct verdict {
    uint32_t result;
    uint64_t records, next_seq, line, bad_seq, bad_line, head_seq;
    uint8_t prev_mac[32];
    char why[300];
};

/* A session when an officer credential (or an explicit one) is named,
 * else a connection of its own for an admin uid. */
static int call(ihsm_tool *t, int session, uint16_t cmd, const ihsm_wr *w, ihsm_result *res)
{
    return session ? ihsm_tool_call(t, cmd, w, res) : ihsm_tool_call_direct(t, cmd, w, res);
}

static void clear(int session, ihsm_result *res)
{
    if (session)
        ihsm_result_clear(res);
    else
        ihsm_tool_direct_clear(res);
}

static int refused(ihsm_tool *t, int session, int st, const char *what)
{
    if (st == IHSM_ERR_CONNECT && !session) /* already explained */
        return IHSM_TOOL_FAIL;
    if (st == IHSM_ERR_PERMISSION && !session) {
        ihsm_tool_err(t, "the device refused %s: without a credential only root, ihsmd's "
                      "uid or an ihsmd --admin-uid may; or give the crypto-officer "
                      "credential (--officer-credential FILE or IHSM_OFFICER_CREDENTIAL) "
                      "[IHSM_ERR_PERMISSION]", what);
        return IHSM_TOOL_FAIL;
    }
    return ihsm_tool_status_err(t, st, "the device refused %s", what);
}

static int parse_verdict(const ihsm_result *res, struct verdict *v)
{
    const uint8_t *mac, *why;
    size_t mac_len = 0, why_len = 0;
    ihsm_rd r;

    memset(v, 0, sizeof(*v));
    ihsm_rd_init(&r, res->data, res->len);
    v->result = ihsm_rd_u32(&r);
    v->records = ihsm_rd_u64(&r);
    v->next_seq = ihsm_rd_u64(&r);
    mac = ihsm_rd_bytes(&r, &mac_len, 32);
    v->line = ihsm_rd_u64(&r);
    v->bad_seq = ihsm_rd_u64(&r);
    v->bad_line = ihsm_rd_u64(&r);
    why = ihsm_rd_bytes(&r, &why_len, sizeof(v->why) - 1);
    v->head_seq = ihsm_rd_u64(&r);
    if (ihsm_rd_end(&r) != 0 || mac_len != 32)
        return -1;
    memcpy(v->prev_mac, mac, 32);
    memcpy(v->why, why, why_len);
    v->why[why_len] = '\0';
    return 0;
}

/* One AUDIT_VERIFY: the device's own log (lines NULL) or a chunk of lines. */
static int verify_call(ihsm_tool *t, int session, uint32_t flags, const struct verdict *state,
                       const char *lines, size_t len, struct verdict *v)
{
    ihsm_result res;
    ihsm_wr w;
    int st;

    ihsm_wr_init(&w);
    ihsm_wr_u32(&w, flags);
    ihsm_wr_u64(&w, state != NULL ? state->next_seq : 0);
    if (state != NULL && state->next_seq != 0)
        ihsm_wr_bytes(&w, state->prev_mac, 32);
    else
        ihsm_wr_bytes(&w, NULL, 0);
    ihsm_wr_u64(&w, state != NULL ? state->line : 0);
    ihsm_wr_bytes(&w, lines, len);
    st = call(t, session, IHSM_CMD_AUDIT_VERIFY, &w, &res);
    ihsm_wr_free(&w);
    if (st != IHSM_OK) {
        clear(session, &res);
        return refused(t, session, st, "to verify the audit log");
    }
    if (parse_verdict(&res, v) != 0) {
        clear(session, &res);
        ihsm_tool_err(t, "the device's answer to AUDIT_VERIFY is malformed: client and "
                      "ihsmd versions may differ");
        return IHSM_TOOL_FAIL;
    }
    clear(session, &res);
    return IHSM_TOOL_OK;
}

/* A copy of the log, streamed in chunks of whole lines. */
static int verify_file(ihsm_tool *t, int session, const char *path, struct verdict *v)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
    struct verdict state;
    char *buf;
    size_t have = 0;
    uint64_t total = 0;
    int rc = IHSM_TOOL_OK, eof = 0;

    if (f == NULL) {
        ihsm_tool_err(t, "cannot read %s: %s", path, strerror(errno));
        return IHSM_TOOL_FAIL;
    }
    if ((buf = malloc(CHUNK)) == NULL) {
        if (f != stdin)
            fclose(f);
        ihsm_tool_err(t, "out of memory");
        return IHSM_TOOL_FAIL;
    }
    memset(&state, 0, sizeof(state));
    memset(v, 0, sizeof(*v));
    while (rc == IHSM_TOOL_OK) {
        size_t n = 0, send;
        char *nl = NULL;

        if (!eof) {
            n = fread(buf + have, 1, CHUNK - have, f);
            have += n;
            eof = n == 0 || feof(f);
        }
        if (ferror(f)) {
            ihsm_tool_err(t, "cannot read %s: %s", path, strerror(errno));
            rc = IHSM_TOOL_FAIL;
            break;
        }
        for (size_t i = have; i-- > 0;)
            if (buf[i] == '\n') {
                nl = buf + i;
                break;
            }
        /* whole lines, or everything at the end (or a line longer than a
         * chunk, which the device calls malformed) */
        send = eof || nl == NULL ? have : (size_t)(nl - buf) + 1;
        if (!eof && send < have && have < CHUNK)
            continue; /* read more before sending a short chunk */
        rc = verify_call(t, session, IHSM_AUDITF_CLIENT | (eof && send == have ? IHSM_AUDITF_FINAL : 0),
                         &state, buf, send, v);
        if (rc != IHSM_TOOL_OK)
            break;
        total += v->records;
        if (v->result != IHSM_AUDIT_OK || (eof && send == have))
            break;
        state = *v;
        memmove(buf, buf + send, have - send);
        have -= send;
    }
    v->records = total;
    free(buf);
    if (f != stdin)
        fclose(f);
    return rc;
}

static int cmd_verify(ihsm_tool *t, int argc, char **argv)
{
    static const struct option opts[] = {
        { "log", required_argument, NULL, 'l' },
        IHSM_TOOL_GLOBAL_OPTS,
        { NULL, 0, NULL, 0 },
    };
    const char *log = NULL;
    struct verdict v;
    int c, rc, session;

    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'l': log = optarg; break;
        case 'h': fputs(help, stdout); return IHSM_TOOL_OK;
        default:
            if (ihsm_tool_global_opt(t, c, optarg))
                break;
            return ihsm_tool_bad_option(t, argv);
        }
    }
    if ((rc = ihsm_tool_no_operands(t, argc, argv)) != IHSM_TOOL_OK)
        return rc;
    session = ihsm_tool_use_officer(t) || t->cred_explicit;
    if (session && ihsm_tool_queue(t, &rc) == NULL)
        return rc;
    if (log != NULL)
        rc = verify_file(t, session, log, &v);
    else
        rc = verify_call(t, session, 0, NULL, NULL, 0, &v);
    if (rc != IHSM_TOOL_OK)
        return rc;
    if (v.result != IHSM_AUDIT_OK) {
        /* the device's sentence starts with the kind: MAC mismatch, sequence
         * gap, out of order, malformed, head mismatch */
        ihsm_tool_err(t, "audit log %s: BAD at line %" PRIu64 " (seq %" PRIu64 "): %s",
                      log != NULL ? log : "of the device", v.bad_line, v.bad_seq, v.why);
        return IHSM_TOOL_FAIL;
    }
    printf("audit log %s verified: %" PRIu64 " records (seq 1..%" PRIu64 "), chained, and it "
           "ends at the device's head (seq %" PRIu64 ")\n",
           log != NULL ? log : "of the device", v.next_seq > 0 ? v.next_seq - 1 : 0,
           v.next_seq > 0 ? v.next_seq - 1 : 0, v.head_seq);
    return IHSM_TOOL_OK;
}

/* ---- show ---- */

/* The device's log through AUDIT_READ, whole. */
static int read_device_log(ihsm_tool *t, char **out, size_t *out_len)
{
    uint64_t off = 0, size = 0;
    char *buf = NULL;
    size_t len = 0;

    do {
        ihsm_result res;
        ihsm_wr w;
        ihsm_rd r;
        const uint8_t *data;
        size_t n = 0;
        char *nb;
        int st;

        ihsm_wr_init(&w);
        ihsm_wr_u64(&w, off);
        ihsm_wr_u32(&w, READ_CHUNK);
        st = ihsm_tool_call_direct(t, IHSM_CMD_AUDIT_READ, &w, &res);
        ihsm_wr_free(&w);
        if (st != IHSM_OK) {
            ihsm_tool_direct_clear(&res);
            free(buf);
            return refused(t, 0, st, "to read the audit log");
        }
        ihsm_rd_init(&r, res.data, res.len);
        size = ihsm_rd_u64(&r);
        data = ihsm_rd_bytes(&r, &n, READ_CHUNK);
        if (ihsm_rd_end(&r) != 0 || size > MAX_LOG || (nb = realloc(buf, len + n + 1)) == NULL) {
            ihsm_tool_direct_clear(&res);
            free(buf);
            ihsm_tool_err(t, "the device's answer to AUDIT_READ is malformed or too large");
            return IHSM_TOOL_FAIL;
        }
        buf = nb;
        memcpy(buf + len, data, n);
        len += n;
        off += n;
        ihsm_tool_direct_clear(&res);
        if (n == 0)
            break;
    } while (off < size);
    if (buf == NULL && (buf = malloc(1)) == NULL)
        return IHSM_TOOL_FAIL;
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return IHSM_TOOL_OK;
}

/* "%41bc" -> bytes, in place; returns the length. */
static size_t unescape(char *s, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len && isxdigit((unsigned char)s[i + 1])
            && isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = { s[i + 1], s[i + 2], '\0' };
            s[o++] = (char)strtoul(hex, NULL, 16);
            i += 2;
        } else {
            s[o++] = s[i];
        }
    }
    return o;
}

struct fields {
    const char *time, *seq, *uid, *pid, *event, *partition, *key, *outcome, *mac;
    size_t key_len, partition_len;
};

/* Split one record (NUL-terminated, modified) into its fields. 0 or -1. */
static int split(char *line, struct fields *f)
{
    char *save = NULL, *tok;
    int i = 0;

    memset(f, 0, sizeof(*f));
    for (tok = strtok_r(line, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save), i++) {
        char *eq = strchr(tok, '=');

        if (i == 0) {
            f->time = tok;
            continue;
        }
        if (eq == NULL)
            return -1;
        *eq++ = '\0';
        if (strcmp(tok, "seq") == 0) f->seq = eq;
        else if (strcmp(tok, "uid") == 0) f->uid = eq;
        else if (strcmp(tok, "pid") == 0) f->pid = eq;
        else if (strcmp(tok, "event") == 0) f->event = eq;
        else if (strcmp(tok, "partition") == 0) f->partition = eq;
        else if (strcmp(tok, "key") == 0) f->key = eq;
        else if (strcmp(tok, "outcome") == 0) f->outcome = eq;
        else if (strcmp(tok, "mac") == 0) f->mac = eq;
    }
    if (f->time == NULL || f->seq == NULL || f->event == NULL || f->mac == NULL
        || f->uid == NULL || f->pid == NULL || f->partition == NULL || f->key == NULL
        || f->outcome == NULL)
        return -1;
    f->key_len = unescape((char *)f->key, strlen(f->key));
    f->partition_len = unescape((char *)f->partition, strlen(f->partition));
    return 0;
}

static void json_opt(const char *name, const char *v, size_t len)
{
    printf(",\"%s\":", name);
    if (len == 1 && v[0] == '-')
        fputs("null", stdout);
    else
        ihsm_tool_json_str(stdout, v, len);
}

static int cmd_show(ihsm_tool *t, int argc, char **argv)
{
    static const struct option opts[] = {
        { "log", required_argument, NULL, 'l' },
        { "json", no_argument, NULL, 'j' },
        IHSM_TOOL_GLOBAL_OPTS,
        { NULL, 0, NULL, 0 },
    };
    const char *log = NULL;
    char *text = NULL, *p, *end;
    size_t len = 0;
    uint64_t lineno = 0, shown = 0;
    int c, rc, json = 0;

    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'l': log = optarg; break;
        case 'j': json = 1; break;
        case 'h': fputs(help, stdout); return IHSM_TOOL_OK;
        default:
            if (ihsm_tool_global_opt(t, c, optarg))
                break;
            return ihsm_tool_bad_option(t, argv);
        }
    }
    if ((rc = ihsm_tool_no_operands(t, argc, argv)) != IHSM_TOOL_OK)
        return rc;
    if (log != NULL) {
        uint8_t *b;
        if (ihsm_tool_read_file(t, log, MAX_LOG, &b, &len) != 0)
            return IHSM_TOOL_FAIL;
        text = malloc(len + 1);
        if (text != NULL) {
            memcpy(text, b, len);
            text[len] = '\0';
        }
        OPENSSL_free(b);
        if (text == NULL)
            return IHSM_TOOL_FAIL;
    } else if ((rc = read_device_log(t, &text, &len)) != IHSM_TOOL_OK) {
        return rc;
    }
    if (json)
        fputs("[", stdout);
    else
        printf("%-7s %-20s %-6s %-8s %-20s %-12s %-20s %s\n", "SEQ", "TIME (UTC)", "UID",
               "PID", "EVENT", "PARTITION", "KEY", "OUTCOME");
    for (p = text, end = text + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl != NULL ? nl : end;
        char raw[160];
        struct fields f;

        *le = '\0';
        lineno++;
        snprintf(raw, sizeof(raw), "%s", p);
        if (split(p, &f) != 0) {
            if (json) {
                printf("%s\n {\"line\":%" PRIu64 ",\"malformed\":", shown++ ? "," : "", lineno);
                ihsm_tool_json_str(stdout, raw, strlen(raw));
                fputs("}", stdout);
            } else {
                printf("line %" PRIu64 " is not an audit record: %.80s\n", lineno, raw);
            }
        } else if (json) {
            printf("%s\n {\"line\":%" PRIu64 ",\"seq\":%s,\"time\":", shown++ ? "," : "",
                   lineno, f.seq);
            ihsm_tool_json_str(stdout, f.time, strlen(f.time));
            printf(",\"uid\":%s,\"pid\":%s,\"event\":", f.uid, f.pid);
            ihsm_tool_json_str(stdout, f.event, strlen(f.event));
            json_opt("partition", f.partition, f.partition_len);
            json_opt("key", f.key, f.key_len);
            fputs(",\"outcome\":", stdout);
            ihsm_tool_json_str(stdout, f.outcome, strlen(f.outcome));
            fputs(",\"mac\":", stdout);
            ihsm_tool_json_str(stdout, f.mac, strlen(f.mac));
            fputs("}", stdout);
        } else {
            char tm[24];
            snprintf(tm, sizeof(tm), "%.19s", f.time);
            printf("%-7s %-20s %-6s %-8s %-20s %-12.*s %-20.*s %s\n", f.seq, tm, f.uid, f.pid,
                   f.event, (int)f.partition_len, f.partition, (int)f.key_len, f.key,
                   f.outcome);
        }
        p = le + 1;
    }
    if (json)
        fputs(shown ? "\n]\n" : "]\n", stdout);
    else
        printf("%" PRIu64 " lines; `ihsmctl audit verify` checks the MAC chain\n", lineno);
    free(text);
    return IHSM_TOOL_OK;
}

int ihsm_cmd_audit(ihsm_tool *t, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        if (argc >= 2) {
            fputs(help, stdout);
            return IHSM_TOOL_OK;
        }
        return ihsm_tool_usage_err(t, "give a subcommand: `audit verify` or `audit show`");
    }
    if (strcmp(argv[1], "verify") == 0) {
        t->cmd = "audit verify";
        return cmd_verify(t, argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "show") == 0) {
        t->cmd = "audit show";
        return cmd_show(t, argc - 1, argv + 1);
    }
    return ihsm_tool_usage_err(t, "unknown audit subcommand '%s': use verify or show", argv[1]);
}
