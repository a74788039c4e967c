/*
 * ihsmctl's shared plumbing: messages, the session queue, session-less
 * calls on a connection of their own, files and JSON strings.
 */
#include "tools_common.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include "ihsm_transport.h"

#define DIRECT_TIMEOUT_MS 10000

/* ---- messages ---- */

static void __attribute__((format(printf, 2, 0)))
vmsg(const ihsm_tool *t, const char *fmt, va_list ap)
{
    if (t != NULL && t->cmd != NULL)
        fprintf(stderr, "ihsmctl %s: ", t->cmd);
    else
        fputs("ihsmctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void ihsm_tool_err(const ihsm_tool *t, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vmsg(t, fmt, ap);
    va_end(ap);
}

int ihsm_tool_usage_err(const ihsm_tool *t, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vmsg(t, fmt, ap);
    va_end(ap);
    fprintf(stderr, "Run `ihsmctl %s --help` for the options.\n",
            t != NULL && t->cmd != NULL ? t->cmd : "");
    return IHSM_TOOL_USAGE;
}

static int is_link_status(int status)
{
    return status == IHSM_ERR_CONNECT || status == IHSM_ERR_DEVICE_GONE
           || status == IHSM_ERR_TIMEOUT;
}

int ihsm_tool_status_err(ihsm_tool *t, int status, const char *fmt, ...)
{
    char what[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    /* in a session, a refusal is about the role: name it and the way out */
    if (status == IHSM_ERR_PERMISSION && t->q != NULL && t->role == IHSM_ROLE_OFFICER)
        ihsm_tool_err(t, "%s: the crypto-officer credential (%s) may not sign, derive, "
                      "encrypt, decrypt or load keys: use the user credential (--credential "
                      "FILE or IHSM_CREDENTIAL) [%s]", what, t->cred_path,
                      ihsm_status_name(status));
    else if (status == IHSM_ERR_PERMISSION && t->q != NULL)
        ihsm_tool_err(t, "%s: the user credential (%s) may not import, delete or zeroize "
                      "keys: use the crypto-officer credential (--officer-credential FILE or "
                      "IHSM_OFFICER_CREDENTIAL; `ihsmctl init` wrote it next to the user "
                      "credential, as FILE.officer) [%s]", what, t->cred_path,
                      ihsm_status_name(status));
    else if (is_link_status(status) && t->q != NULL && ihsm_queue_last_error(t->q) != NULL
        && *ihsm_queue_last_error(t->q) != '\0')
        ihsm_tool_err(t, "%s: %s", what, ihsm_queue_last_error(t->q));
    else if (is_link_status(status))
        ihsm_tool_err(t, "%s: %s (socket %s)", what, ihsm_status_str(status), t->socket_path);
    else
        ihsm_tool_err(t, "%s: %s [%s]", what, ihsm_status_str(status), ihsm_status_name(status));
    return IHSM_TOOL_FAIL;
}

/* ---- options ---- */

int ihsm_tool_global_opt(ihsm_tool *t, int c, const char *arg)
{
    if (c == IHSM_OPT_SOCKET) {
        t->socket_path = ihsm_socket_path(arg);
    } else if (c == IHSM_OPT_CREDENTIAL) {
        t->cred_path = ihsm_credential_path(arg);
        t->cred_explicit = 1;
    } else if (c == IHSM_OPT_OFFICER) {
        t->officer_path = arg;
    } else {
        return 0;
    }
    return 1;
}

int ihsm_tool_bad_option(const ihsm_tool *t, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : NULL;

    /* Long options name themselves; a short one is only in optopt. */
    if (arg != NULL && strncmp(arg, "--", 2) == 0)
        return ihsm_tool_usage_err(t, "option '%.*s' is unknown or needs a value",
                                   (int)strcspn(arg, "="), arg);
    if (optopt > 0x20 && optopt < 0x7f)
        return ihsm_tool_usage_err(t, "option '-%c' is unknown or needs a value", optopt);
    return ihsm_tool_usage_err(t, "option '%s' is unknown or needs a value",
                               arg != NULL ? arg : "?");
}

int ihsm_tool_no_operands(const ihsm_tool *t, int argc, char **argv)
{
    if (optind < argc)
        return ihsm_tool_usage_err(t, "unexpected argument '%s' (options take the "
                                   "form --name VALUE)", argv[optind]);
    return IHSM_TOOL_OK;
}

/* ---- the session queue ---- */

int ihsm_tool_use_officer(ihsm_tool *t)
{
    const char *env = ihsm_credential_officer_path(NULL);

    if (t->officer_path != NULL && *t->officer_path != '\0') {
        t->cred_path = t->officer_path;
        return 1;
    }
    if (t->cred_explicit) /* the file named for this command, whatever it is */
        return 0;
    if (env != NULL) {
        t->cred_path = env;
        return 1;
    }
    return 0;
}

static int session_err(ihsm_tool *t, int status)
{
    const char *why = t->q != NULL ? ihsm_queue_last_error(t->q) : NULL;

    if (why == NULL)
        why = "";
    switch (status) {
    case IHSM_ERR_CONNECT:
    case IHSM_ERR_DEVICE_GONE:
    case IHSM_ERR_TIMEOUT:
        if (*why) /* the queue's sentence names the socket and what to do */
            ihsm_tool_err(t, "%s", why);
        else
            ihsm_tool_err(t, "ihsmd is not reachable at %s: %s; or point --socket / "
                          "IHSM_SOCKET at the running one", t->socket_path,
                          ihsm_status_str(status));
        break;
    case IHSM_ERR_AUTH:
    case IHSM_ERR_LOCKED:
    case IHSM_ERR_NO_PARTITION:
    case IHSM_ERR_PERMISSION:
        ihsm_tool_err(t, "cannot open a session on partition '%s' with the credential "
                      "in %s: %s [%s]", t->partition, t->cred_path,
                      ihsm_status_str(status), ihsm_status_name(status));
        break;
    default:
        ihsm_tool_err(t, "cannot open a session on partition '%s' (credential %s, "
                      "socket %s): %s [%s]%s%s", t->partition, t->cred_path,
                      t->socket_path, ihsm_status_str(status),
                      ihsm_status_name(status), *why ? ": " : "", why);
        break;
    }
    return IHSM_TOOL_FAIL;
}

ihsm_queue *ihsm_tool_queue(ihsm_tool *t, int *rc)
{
    ihsm_queue_config cfg;
    ihsm_credential cred;
    char why[512];
    int st;

    if (t->q != NULL) {
        *rc = IHSM_TOOL_OK;
        return t->q;
    }
    if (t->cred_path == NULL) {
        *rc = ihsm_tool_usage_err(t, "this command needs a partition credential: pass "
                                  "--credential FILE (before the command) or set "
                                  "IHSM_CREDENTIAL to the file `ihsmctl init` wrote");
        return NULL;
    }
    /* Read it here too: a bad file gets a sentence naming it, and every
     * later message can name the partition. */
    if (ihsm_credential_load(t->cred_path, &cred, why, sizeof(why)) != IHSM_OK) {
        ihsm_tool_err(t, "%s", why);
        *rc = IHSM_TOOL_FAIL;
        return NULL;
    }
    snprintf(t->partition, sizeof(t->partition), "%s", cred.partition);
    t->role = cred.role;
    ihsm_credential_clear(&cred);

    memset(&cfg, 0, sizeof(cfg));
    cfg.socket_path = t->socket_path;
    cfg.credential_path = t->cred_path;
    cfg.batch_max = t->batch_max;
    cfg.delay_us = t->delay_us;
    st = ihsm_queue_new(&cfg, &t->q);
    if (st != IHSM_OK) {
        t->q = NULL;
        ihsm_tool_err(t, "cannot set up the request queue (credential %s, socket %s): %s",
                      t->cred_path, t->socket_path, ihsm_status_str(st));
        *rc = IHSM_TOOL_FAIL;
        return NULL;
    }
    st = ihsm_queue_connect(t->q);
    if (st != IHSM_OK) {
        *rc = session_err(t, st);
        ihsm_queue_free(t->q);
        t->q = NULL;
        return NULL;
    }
    *rc = IHSM_TOOL_OK;
    return t->q;
}

int ihsm_tool_call(ihsm_tool *t, uint16_t cmd, const ihsm_wr *payload, ihsm_result *res)
{
    int st;

    memset(res, 0, sizeof(*res));
    if (payload != NULL && payload->err)
        return IHSM_ERR_NOMEM;
    st = ihsm_queue_call(t->q, cmd, payload != NULL ? payload->p : NULL,
                         payload != NULL ? payload->len : 0, res);
    if (ihsm_debug)
        ihsm_dbg("ihsmctl %s: %s (%zu bytes) -> %s (%zu bytes)", t->cmd, ihsm_cmd_name(cmd),
                 payload != NULL ? payload->len : 0, ihsm_status_name(st), res->len);
    return st;
}

void ihsm_tool_close(ihsm_tool *t)
{
    if (t->q != NULL)
        ihsm_queue_free(t->q);
    t->q = NULL;
}

/* ---- session-less calls ---- */

int ihsm_tool_call_direct(ihsm_tool *t, uint16_t cmd, const ihsm_wr *payload,
                          ihsm_result *res)
{
    static const uint64_t id = 1;
    ihsm_entry ent;
    ihsm_wr w;
    uint8_t *buf = NULL;
    size_t len = 0, n = 0;
    uint16_t kind = 0;
    int fd, st;

    memset(res, 0, sizeof(*res));
    if (payload != NULL && payload->err)
        return IHSM_ERR_NOMEM;
    fd = ihsm_transport_connect(t->socket_path);
    if (fd < 0) {
        ihsm_tool_err(t, "ihsmd is not running at %s (connect: %s): start it with "
                      "`ihsmd --state-dir DIR --socket %s`, or point --socket / "
                      "IHSM_SOCKET at the running one", t->socket_path,
                      strerror(errno), t->socket_path);
        return IHSM_ERR_CONNECT;
    }
    ihsm_wr_init(&w);
    ihsm_frame_begin(&w, IHSM_FRAME_REQUEST);
    size_t mark = ihsm_frame_entry_begin(&w, id, cmd, 0, 0);
    if (payload != NULL && payload->len != 0)
        ihsm_wr_raw(&w, payload->p, payload->len);
    ihsm_frame_entry_end(&w, mark);
    st = ihsm_frame_finish(&w);
    if (st == IHSM_OK)
        st = ihsm_transport_send(fd, w.p, w.len);
    ihsm_wr_free(&w);
    if (st != IHSM_OK)
        goto out;
    buf = OPENSSL_malloc(IHSM_MAX_FRAME);
    if (buf == NULL) {
        st = IHSM_ERR_NOMEM;
        goto out;
    }
    st = ihsm_transport_recv(fd, buf, IHSM_MAX_FRAME, &len, DIRECT_TIMEOUT_MS);
    if (st != IHSM_OK)
        goto out;
    st = ihsm_frame_decode(buf, len, &kind, &ent, 1, &n);
    if (st != IHSM_OK || kind != IHSM_FRAME_COMPLETION || n != 1) {
        st = st != IHSM_OK ? st : IHSM_ERR_MALFORMED;
        goto out;
    }
    if (ent.id != id) { /* id 0: the device could not decode our frame */
        st = ent.status != IHSM_OK ? ent.status : IHSM_ERR_MALFORMED;
        goto out;
    }
    st = ent.status;
    if (st == IHSM_OK && ent.len != 0) {
        res->data = OPENSSL_malloc(ent.len);
        if (res->data == NULL) {
            st = IHSM_ERR_NOMEM;
            goto out;
        }
        memcpy(res->data, ent.payload, ent.len);
        res->len = ent.len;
    }
out:
    res->status = st;
    if (ihsm_debug)
        ihsm_dbg("ihsmctl %s: %s on its own connection to %s -> %s (%zu bytes)", t->cmd,
                 ihsm_cmd_name(cmd), t->socket_path, ihsm_status_name(st), res->len);
    if (buf != NULL)
        OPENSSL_clear_free(buf, IHSM_MAX_FRAME);
    close(fd);
    return st;
}

void ihsm_tool_direct_clear(ihsm_result *res)
{
    if (res->data != NULL)
        OPENSSL_clear_free(res->data, res->len);
    memset(res, 0, sizeof(*res));
}

/* ---- files ---- */

int ihsm_tool_exists(const char *path)
{
    struct stat sb;

    return path != NULL && strcmp(path, "-") != 0 && lstat(path, &sb) == 0;
}

void ihsm_tool_free_secret(void *p, size_t len)
{
    if (p != NULL)
        OPENSSL_clear_free(p, len);
}

int ihsm_tool_read_file(const ihsm_tool *t, const char *path, size_t max,
                        uint8_t **buf, size_t *len)
{
    size_t cap = 4096, n = 0;
    uint8_t *b;
    int fd, use_stdin = strcmp(path, "-") == 0;

    *buf = NULL;
    *len = 0;
    fd = use_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ihsm_tool_err(t, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    b = OPENSSL_malloc(cap);
    if (b == NULL)
        goto nomem;
    for (;;) {
        ssize_t r;

        if (n == cap) {
            /* Grow by copying so no stale copy of a secret is left behind
             * by realloc. */
            size_t ncap = cap * 2;
            uint8_t *nb = OPENSSL_malloc(ncap);

            if (nb == NULL)
                goto nomem;
            memcpy(nb, b, n);
            OPENSSL_clear_free(b, cap);
            b = nb;
            cap = ncap;
        }
        r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            ihsm_tool_err(t, "cannot read %s: %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max) {
            ihsm_tool_err(t, "%s is larger than %zu bytes, the most this command "
                          "takes in one operation", path, max);
            goto fail;
        }
    }
    if (!use_stdin)
        close(fd);
    *buf = b;
    *len = n;
    return 0;
nomem:
    ihsm_tool_err(t, "out of memory reading %s", path);
fail:
    if (b != NULL)
        OPENSSL_clear_free(b, cap);
    if (!use_stdin)
        close(fd);
    return -1;
}

int ihsm_tool_write_file(const ihsm_tool *t, const char *path, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    int fd, use_stdout = strcmp(path, "-") == 0;

    fd = use_stdout ? STDOUT_FILENO
                    : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        ihsm_tool_err(t, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    while (len != 0) {
        ssize_t r = write(fd, p, len);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            ihsm_tool_err(t, "cannot write %s: %s", path, strerror(errno));
            if (!use_stdout)
                close(fd);
            return -1;
        }
        p += r;
        len -= (size_t)r;
    }
    if (!use_stdout && close(fd) != 0) {
        ihsm_tool_err(t, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- JSON ---- */

void ihsm_tool_json_str(FILE *f, const char *s, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}
