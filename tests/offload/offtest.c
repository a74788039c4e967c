/* Offload queue test fixture: see offtest.h. */
#include "offtest.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "ihsm_credential.h"

double ot_now(void)
{
    return dt_now();
}

int ot_start(struct ot *t)
{
    ihsm_credential c;
    uint32_t uid = (uint32_t)getuid();
    int fd, st;

    memset(t, 0, sizeof(*t));
    if (dt_start(&t->dd) != 0)
        return -1;
    fd = dt_connect(&t->dd);
    if (fd < 0)
        return -1;
    memset(&c, 0, sizeof(c));
    strcpy(c.partition, "test");
    c.role = IHSM_ROLE_USER;
    st = dt_init_partition(fd, "test", &uid, 1, c.pin);
    close(fd);
    if (st != IHSM_OK) {
        fprintf(stderr, "INIT_PARTITION: %d\n", st);
        return -1;
    }
    snprintf(t->cred, sizeof(t->cred), "%s/test.cred", t->dd.scratch);
    st = ihsm_credential_save(t->cred, &c, 0);
    ihsm_credential_clear(&c);
    return st;
}

void ot_cleanup(struct ot *t)
{
    dt_cleanup(&t->dd);
}

void ot_kill9(struct ot *t)
{
    int status;

    kill(t->dd.pid, SIGKILL);
    waitpid(t->dd.pid, &status, 0);
    t->dd.pid = 0;
    unlink(t->dd.sock); /* as a crash leaves it */
}

int ot_restart_killed(struct ot *t)
{
    return dt_start(&t->dd);
}

ihsm_queue *ot_queue(const struct ot *t, unsigned timeout_ms, unsigned delay_us)
{
    ihsm_queue_config cfg = { .socket_path = t->dd.sock, .credential_path = t->cred,
                              .timeout_ms = timeout_ms, .delay_us = delay_us };
    ihsm_queue *q = NULL;

    if (ihsm_queue_new(&cfg, &q) != IHSM_OK)
        return NULL;
    return q;
}

static int check_random(const ihsm_result *res, uint32_t n)
{
    ihsm_rd rd;
    size_t len;

    if (res->status != IHSM_OK)
        return res->status;
    ihsm_rd_init(&rd, res->data, res->len);
    ihsm_rd_bytes(&rd, &len, 65536);
    return ihsm_rd_end(&rd) == 0 && len == n ? IHSM_OK : IHSM_ERR_MALFORMED;
}

int ot_random(ihsm_queue *q, uint32_t n)
{
    ihsm_result res;
    uint8_t p[4] = { (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24) };
    int st;

    ihsm_queue_call(q, IHSM_CMD_RANDOM, p, sizeof(p), &res);
    st = check_random(&res, n);
    ihsm_result_clear(&res);
    return st;
}

ihsm_req *ot_random_req(ihsm_queue *q, uint32_t n)
{
    ihsm_req *r = ihsm_req_new(q, IHSM_CMD_RANDOM);

    if (r == NULL)
        return NULL;
    ihsm_wr_u32(ihsm_req_payload(r), n);
    if (ihsm_req_submit(r) != IHSM_OK) {
        ihsm_req_free(r);
        return NULL;
    }
    return r;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n > 0 ? n : 1);

    if (d != NULL && n > 0)
        memcpy(d, p, n);
    return d;
}

int ot_keygen_p256(ihsm_queue *q, struct ot_key *k)
{
    const uint8_t *blob, *pub;
    ihsm_result res;
    ihsm_wr w;
    ihsm_rd rd;
    int st;

    memset(k, 0, sizeof(*k));
    ihsm_wr_init(&w);
    ihsm_wr_u32(&w, IHSM_KEY_EC_P256);
    ihsm_wr_u32(&w, 0);
    ihsm_wr_u32(&w, IHSM_USAGE_SIGN);
    ihsm_wr_u32(&w, 0);
    ihsm_wr_bytes(&w, "offload-test", 12);
    st = ihsm_queue_call(q, IHSM_CMD_KEY_GENERATE, w.p, w.len, &res);
    ihsm_wr_free(&w);
    if (st != IHSM_OK)
        return st;
    ihsm_rd_init(&rd, res.data, res.len);
    k->handle = ihsm_rd_u32(&rd);
    blob = ihsm_rd_bytes(&rd, &k->blob_len, IHSM_MAX_PAYLOAD);
    pub = ihsm_rd_bytes(&rd, &k->pub_len, IHSM_MAX_PAYLOAD);
    if (ihsm_rd_end(&rd) != 0) {
        st = IHSM_ERR_MALFORMED;
    } else {
        k->blob = dup_bytes(blob, k->blob_len);
        k->pub = dup_bytes(pub, k->pub_len);
    }
    ihsm_result_clear(&res);
    return st;
}

int ot_unmask(ihsm_queue *q, const struct ot_key *k, uint32_t *handle)
{
    ihsm_result res;
    ihsm_wr w;
    ihsm_rd rd;
    int st;

    ihsm_wr_init(&w);
    ihsm_wr_bytes(&w, k->blob, k->blob_len);
    st = ihsm_queue_call(q, IHSM_CMD_KEY_UNMASK, w.p, w.len, &res);
    ihsm_wr_free(&w);
    if (st == IHSM_OK) {
        ihsm_rd_init(&rd, res.data, res.len);
        *handle = ihsm_rd_u32(&rd);
        if (rd.err)
            st = IHSM_ERR_MALFORMED;
    }
    ihsm_result_clear(&res);
    return st;
}

void ot_key_free(struct ot_key *k)
{
    free(k->blob);
    free(k->pub);
    memset(k, 0, sizeof(*k));
}

int ot_sign(ihsm_queue *q, uint32_t handle, const uint8_t *msg, size_t len,
            uint8_t **sig, size_t *sig_len)
{
    uint8_t md[SHA256_DIGEST_LENGTH];
    const uint8_t *s;
    ihsm_result res;
    ihsm_wr w;
    ihsm_rd rd;
    int st;

    *sig = NULL;
    *sig_len = 0;
    SHA256(msg, len, md);
    ihsm_wr_init(&w);
    ihsm_wr_u32(&w, handle);
    ihsm_wr_u32(&w, IHSM_SIG_ECDSA);
    ihsm_wr_u32(&w, IHSM_MD_SHA256);
    ihsm_wr_u32(&w, IHSM_MD_NONE);
    ihsm_wr_u32(&w, 0);
    ihsm_wr_bytes(&w, md, sizeof(md));
    st = ihsm_queue_call(q, IHSM_CMD_SIGN, w.p, w.len, &res);
    ihsm_wr_free(&w);
    if (st != IHSM_OK)
        return st;
    ihsm_rd_init(&rd, res.data, res.len);
    s = ihsm_rd_bytes(&rd, sig_len, 1024);
    if (ihsm_rd_end(&rd) != 0)
        st = IHSM_ERR_MALFORMED;
    else
        *sig = dup_bytes(s, *sig_len);
    ihsm_result_clear(&res);
    return st;
}
