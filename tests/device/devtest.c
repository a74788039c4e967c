/*
 * ihsmd test fixture: see devtest.h.
 */
#include "devtest.h"
#include "ihsm_transport.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

double dt_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int dt_file_mode(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

int dt_exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

char *dt_read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf;
    long n;

    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
    if (buf != NULL && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

void dt_print_log(const struct dt_daemon *dd)
{
    char *t = dt_read_text(dd->log);

    fprintf(stderr, "---- ihsmd log (%s) ----\n%s---- end of log ----\n", dd->log,
            t != NULL ? t : "(none)\n");
    free(t);
}

int dt_log_contains(const struct dt_daemon *dd, const char *s)
{
    char *t = dt_read_text(dd->log);
    int r = t != NULL && strstr(t, s) != NULL;

    free(t);
    return r;
}

static const char *ihsmd_path(void)
{
    static char path[512];
    const char *b = getenv("IHSM_BUILD_DIR");

    snprintf(path, sizeof(path), "%s/bin/ihsmd", b != NULL ? b : ".");
    if (access(path, X_OK) != 0) {
        fprintf(stderr, "SKIP: no ihsmd at %s (set IHSM_BUILD_DIR, build the ihsmd target)\n",
                path);
        exit(77);
    }
    return path;
}

int dt_connect(const struct dt_daemon *dd)
{
    return ihsm_transport_connect(dd->sock);
}

int dt_start(struct dt_daemon *dd)
{
    const char *bin = ihsmd_path();
    const char *argv[32];
    size_t n = 0;
    double t0;

    if (dd->scratch[0] == '\0') {
        strcpy(dd->scratch, "/tmp/ihsm-devtest.XXXXXX");
        if (mkdtemp(dd->scratch) == NULL)
            return -1;
        snprintf(dd->state, sizeof(dd->state), "%s/state", dd->scratch);
        snprintf(dd->sock, sizeof(dd->sock), "%s/ihsmd.sock", dd->scratch);
        snprintf(dd->log, sizeof(dd->log), "%s/ihsmd.log", dd->scratch);
    }
    argv[n++] = bin;
    argv[n++] = "--state-dir";
    argv[n++] = dd->state;
    argv[n++] = "--socket";
    argv[n++] = dd->sock;
    argv[n++] = "--workers";
    argv[n++] = "2";
    for (size_t i = 0; i < 16 && dd->extra[i] != NULL; i++)
        argv[n++] = dd->extra[i];
    argv[n] = NULL;

    fflush(NULL);
    dd->pid = fork();
    if (dd->pid < 0)
        return -1;
    if (dd->pid == 0) {
        int fd = open(dd->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        /* a test that crashes must not leave its daemon behind */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        for (size_t i = 0; i < 8 && dd->env[i] != NULL; i++)
            putenv((char *)dd->env[i]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    t0 = dt_now();
    while (dt_now() - t0 < 10.0) {
        int status, fd;

        if (waitpid(dd->pid, &status, WNOHANG) == dd->pid) {
            fprintf(stderr, "ihsmd exited at start (status %d)\n", status);
            dt_print_log(dd);
            dd->pid = 0;
            return -1;
        }
        fd = dt_connect(dd);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        usleep(20 * 1000);
    }
    fprintf(stderr, "ihsmd did not answer on %s in 10 s\n", dd->sock);
    dt_print_log(dd);
    return -1;
}

int dt_stop(struct dt_daemon *dd)
{
    double t0 = dt_now();
    int status;

    if (dd->pid <= 0)
        return -1;
    kill(dd->pid, SIGTERM);
    while (dt_now() - t0 < 15.0) {
        pid_t r = waitpid(dd->pid, &status, WNOHANG);
        if (r == dd->pid) {
            dd->pid = 0;
            if (WIFEXITED(status))
                return WEXITSTATUS(status);
            return 128 + WTERMSIG(status);
        }
        usleep(10 * 1000);
    }
    fprintf(stderr, "ihsmd did not stop within 15 s of SIGTERM: killing it\n");
    kill(dd->pid, SIGKILL);
    waitpid(dd->pid, &status, 0);
    dd->pid = 0;
    dt_print_log(dd);
    return -1;
}

int dt_restart(struct dt_daemon *dd)
{
    int st = dt_stop(dd);

    if (st != 0) {
        fprintf(stderr, "ihsmd exited with %d on SIGTERM\n", st);
        dt_print_log(dd);
        return -1;
    }
    return dt_start(dd);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void dt_cleanup(struct dt_daemon *dd)
{
    if (dd->pid > 0)
        dt_stop(dd);
    if (dd->scratch[0] != '\0' && getenv("IHSM_KEEP_SCRATCH") == NULL)
        nftw(dd->scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    dd->scratch[0] = '\0';
}

/* ---- requests ---- */

static uint64_t next_id = 1000;

int dt_recv(int fd, uint8_t *buf, ihsm_entry *ents, size_t *n, int timeout_ms)
{
    size_t len;
    uint16_t kind;
    int st = ihsm_transport_recv(fd, buf, IHSM_MAX_FRAME, &len, timeout_ms);

    *n = 0;
    if (st != IHSM_OK)
        return -st;
    st = ihsm_frame_decode(buf, len, &kind, ents, IHSM_MAX_BATCH, n);
    if (st != IHSM_OK || kind != IHSM_FRAME_COMPLETION) {
        fprintf(stderr, "undecodable completion frame (%s)\n", ihsm_status_name(st));
        return -IHSM_ERR_MALFORMED;
    }
    return IHSM_OK;
}

int dt_call(int fd, uint16_t cmd, uint32_t session, const void *payload, size_t len,
            uint8_t **resp, size_t *resp_len)
{
    static __thread uint8_t buf[IHSM_MAX_FRAME];
    ihsm_entry ents[IHSM_MAX_BATCH];
    uint64_t id = __atomic_fetch_add(&next_id, 1, __ATOMIC_RELAXED);
    ihsm_wr w;
    size_t n, mark;
    int st;

    if (resp != NULL)
        *resp = NULL;
    if (resp_len != NULL)
        *resp_len = 0;
    ihsm_wr_init(&w);
    ihsm_frame_begin(&w, IHSM_FRAME_REQUEST);
    mark = ihsm_frame_entry_begin(&w, id, cmd, 0, session);
    ihsm_wr_raw(&w, payload, len);
    ihsm_frame_entry_end(&w, mark);
    st = ihsm_frame_finish(&w);
    if (st == IHSM_OK)
        st = ihsm_transport_send(fd, w.p, w.len);
    ihsm_wr_free(&w);
    if (st != IHSM_OK)
        return -st;
    st = dt_recv(fd, buf, ents, &n, DT_TIMEOUT_MS);
    if (st != IHSM_OK)
        return st;
    if (n != 1 || ents[0].id != id || ents[0].cmd != cmd) {
        fprintf(stderr, "completion does not match: %zu entries, id %llu (want %llu)\n", n,
                (unsigned long long)ents[0].id, (unsigned long long)id);
        return -IHSM_ERR_MALFORMED;
    }
    if (resp != NULL) {
        *resp = malloc(ents[0].len + 1);
        memcpy(*resp, ents[0].payload, ents[0].len);
        *resp_len = ents[0].len;
    }
    return ents[0].status;
}

void dt_wr_str(ihsm_wr *w, const char *s)
{
    ihsm_wr_bytes(w, s, strlen(s));
}

int dt_init_partition(int fd, const char *name, const uint32_t *uids, uint32_t n,
                      uint8_t pin[IHSM_PIN_LEN])
{
    return dt_init_partition2(fd, name, uids, n, pin, NULL);
}

int dt_init_partition2(int fd, const char *name, const uint32_t *uids, uint32_t n,
                       uint8_t pin[IHSM_PIN_LEN], uint8_t officer_pin[IHSM_PIN_LEN])
{
    ihsm_wr w;
    uint8_t *r;
    size_t rlen;
    int st;

    ihsm_wr_init(&w);
    dt_wr_str(&w, name);
    ihsm_wr_u32(&w, n);
    for (uint32_t i = 0; i < n; i++)
        ihsm_wr_u32(&w, uids[i]);
    st = dt_call(fd, IHSM_CMD_INIT_PARTITION, 0, w.p, w.len, &r, &rlen);
    ihsm_wr_free(&w);
    if (st == IHSM_OK) {
        ihsm_rd rd;
        size_t plen, olen;
        const uint8_t *p, *o;
        ihsm_rd_init(&rd, r, rlen);
        p = ihsm_rd_bytes(&rd, &plen, IHSM_PIN_LEN);
        o = ihsm_rd_bytes(&rd, &olen, IHSM_PIN_LEN); /* user PIN, then the officer's */
        if (ihsm_rd_end(&rd) != 0 || plen != IHSM_PIN_LEN || olen != IHSM_PIN_LEN) {
            st = -IHSM_ERR_MALFORMED;
        } else {
            memcpy(pin, p, IHSM_PIN_LEN);
            if (officer_pin != NULL)
                memcpy(officer_pin, o, IHSM_PIN_LEN);
        }
    }
    free(r);
    return st;
}

int dt_open_session(int fd, const char *name, const uint8_t *pin, uint32_t *sid)
{
    return dt_open_session_role(fd, name, pin, IHSM_ROLE_USER, sid);
}

int dt_open_session_role(int fd, const char *name, const uint8_t *pin, uint32_t role,
                         uint32_t *sid)
{
    ihsm_wr w;
    uint8_t *r;
    size_t rlen;
    int st;

    *sid = 0;
    ihsm_wr_init(&w);
    dt_wr_str(&w, name);
    ihsm_wr_bytes(&w, pin, IHSM_PIN_LEN);
    ihsm_wr_u32(&w, role);
    st = dt_call(fd, IHSM_CMD_OPEN_SESSION, 0, w.p, w.len, &r, &rlen);
    ihsm_wr_free(&w);
    if (st == IHSM_OK) {
        ihsm_rd rd;
        ihsm_rd_init(&rd, r, rlen);
        *sid = ihsm_rd_u32(&rd);
        if (ihsm_rd_end(&rd) != 0 || *sid == 0)
            st = -IHSM_ERR_MALFORMED;
    }
    free(r);
    return st;
}

int dt_random(int fd, uint32_t sid, uint32_t n)
{
    uint8_t req[4] = { (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24) };
    uint8_t *r;
    size_t rlen;
    int st = dt_call(fd, IHSM_CMD_RANDOM, sid, req, 4, &r, &rlen);

    if (st == IHSM_OK) {
        ihsm_rd rd;
        size_t len;
        ihsm_rd_init(&rd, r, rlen);
        ihsm_rd_bytes(&rd, &len, 65536);
        if (ihsm_rd_end(&rd) != 0 || len != n)
            st = -IHSM_ERR_MALFORMED;
    }
    free(r);
    return st;
}

void dt_key_free(struct dt_key *k)
{
    free(k->blob);
    free(k->pub);
    memset(k, 0, sizeof(*k));
}

int dt_keygen(int fd, uint32_t sid, uint32_t type, uint32_t bits, uint32_t flags,
              const char *label, struct dt_key *k)
{
    ihsm_wr w;
    uint8_t *r;
    size_t rlen;
    int st;

    memset(k, 0, sizeof(*k));
    ihsm_wr_init(&w);
    ihsm_wr_u32(&w, type);
    ihsm_wr_u32(&w, bits);
    ihsm_wr_u32(&w, 0);
    ihsm_wr_u32(&w, flags);
    dt_wr_str(&w, label);
    st = dt_call(fd, IHSM_CMD_KEY_GENERATE, sid, w.p, w.len, &r, &rlen);
    ihsm_wr_free(&w);
    if (st == IHSM_OK) {
        ihsm_rd rd;
        const uint8_t *b, *p;
        ihsm_rd_init(&rd, r, rlen);
        k->handle = ihsm_rd_u32(&rd);
        b = ihsm_rd_bytes(&rd, &k->blob_len, 65536);
        p = ihsm_rd_bytes(&rd, &k->pub_len, 65536);
        if (ihsm_rd_end(&rd) != 0 || k->handle == 0) {
            st = -IHSM_ERR_MALFORMED;
        } else {
            k->blob = malloc(k->blob_len + 1);
            memcpy(k->blob, b, k->blob_len);
            k->pub = malloc(k->pub_len + 1);
            memcpy(k->pub, p, k->pub_len);
        }
    }
    free(r);
    return st;
}

int dt_sign(int fd, uint32_t sid, uint32_t handle, uint32_t scheme, const uint8_t *msg,
            size_t len, uint8_t **sig, size_t *sig_len)
{
    uint8_t dgst[32];
    unsigned int dlen = 0;
    ihsm_wr w;
    uint8_t *r;
    size_t rlen;
    int st;

    *sig = NULL;
    *sig_len = 0;
    ihsm_wr_init(&w);
    ihsm_wr_u32(&w, handle);
    ihsm_wr_u32(&w, scheme);
    if (scheme == IHSM_SIG_ED25519) {
        ihsm_wr_u32(&w, IHSM_MD_NONE);
        ihsm_wr_u32(&w, IHSM_MD_NONE);
        ihsm_wr_u32(&w, 0);
        ihsm_wr_bytes(&w, msg, len);
    } else {
        EVP_Digest(msg, len, dgst, &dlen, EVP_sha256(), NULL);
        ihsm_wr_u32(&w, IHSM_MD_SHA256);
        ihsm_wr_u32(&w, IHSM_MD_SHA256);
        ihsm_wr_u32(&w, (uint32_t)IHSM_PSS_SALT_DIGEST);
        ihsm_wr_bytes(&w, dgst, dlen);
    }
    st = dt_call(fd, IHSM_CMD_SIGN, sid, w.p, w.len, &r, &rlen);
    ihsm_wr_free(&w);
    if (st == IHSM_OK) {
        ihsm_rd rd;
        const uint8_t *s;
        ihsm_rd_init(&rd, r, rlen);
        s = ihsm_rd_bytes(&rd, sig_len, 65536);
        if (ihsm_rd_end(&rd) != 0) {
            st = -IHSM_ERR_MALFORMED;
        } else {
            *sig = malloc(*sig_len + 1);
            memcpy(*sig, s, *sig_len);
        }
    }
    free(r);
    return st;
}

int dt_verify(const uint8_t *spki, size_t spki_len, uint32_t scheme, const uint8_t *msg,
              size_t len, const uint8_t *sig, size_t sig_len)
{
    const uint8_t *p = spki;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)spki_len);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = 0;

    if (pk == NULL || ctx == NULL)
        goto out;
    if (EVP_DigestVerifyInit(ctx, &pctx, scheme == IHSM_SIG_ED25519 ? NULL : EVP_sha256(),
                             NULL, pk) != 1)
        goto out;
    if (scheme == IHSM_SIG_RSA_PSS) {
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
    }
    ok = EVP_DigestVerify(ctx, sig, sig_len, msg, len) == 1;
out:
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pk);
    return ok;
}
