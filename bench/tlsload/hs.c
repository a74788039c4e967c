/*
 * Handshake mode: every connection is one new full handshake. The latency
 * runs from the start of connect() to SSL_connect() returning 1. With
 * --request, one HTTP/1.1 GET follows on the same connection ("Connection:
 * close"), the whole answer is read and its status must be 200; otherwise
 * the connection is closed at once. Either way the slot starts over.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tlsload.h"

enum hs_phase { HS_WRITE, HS_STATUS, HS_HEADERS, HS_BODY };

struct hs_conn {
    enum hs_phase phase;
    size_t req_off;
    int status;
    int64_t clen;      /* Content-Length, -1 when absent */
    int64_t body_left; /* -1: until the server closes */
    unsigned line_len;
    char line[64];     /* one status/header line; longer lines are cut */
};

struct hs_worker {
    char *req;
    size_t req_len;
    struct hs_conn *conns;
};

static int hs_worker_init(struct tl_worker *w)
{
    const struct tl_opts *o = w->run->o;
    struct hs_worker *hw = calloc(1, sizeof(*hw));
    int n;

    if (hw == NULL)
        return -1;
    w->mode = hw;
    if (o->request) {
        n = asprintf(&hw->req,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ihsm-tlsload\r\n"
                     "Accept: */*\r\nConnection: close\r\n\r\n",
                     o->request, o->authority);
        if (n < 0)
            return -1;
        hw->req_len = (size_t)n;
    }
    hw->conns = calloc(w->nconns, sizeof(*hw->conns));
    return hw->conns ? 0 : -1;
}

static void hs_worker_fini(struct tl_worker *w)
{
    struct hs_worker *hw = w->mode;

    if (hw == NULL)
        return;
    free(hw->req);
    free(hw->conns);
    free(hw);
    w->mode = NULL;
}

static int hs_conn_init(struct tl_conn *c)
{
    struct hs_worker *hw = c->w->mode;

    c->mode = &hw->conns[c - c->w->conns];
    return 0;
}

static void hs_conn_fini(struct tl_conn *c)
{
    c->mode = NULL;
}

static int hs_may_start(struct tl_conn *c, uint64_t now)
{
    struct tl_run *r = c->w->run;

    if (now < r->measure_ns)
        return 1; /* warmup spends no --count budget */
    return tl_budget_take(r);
}

/* Consumes n bytes of the answer; returns 1 when it is complete, 0 when
 * more is needed, -1 (with *why) when it is not HTTP/1.x. */
static int parse_answer(struct hs_conn *h, const unsigned char *p, size_t n, const char **why)
{
    size_t i = 0;

    while (i < n) {
        if (h->phase == HS_BODY) {
            size_t left = n - i;

            if (h->body_left < 0)
                return 0; /* until close */
            if ((uint64_t)h->body_left <= left)
                return 1;
            h->body_left -= (int64_t)left;
            return 0;
        }
        if (p[i] != '\n') {
            if (h->line_len < sizeof(h->line) - 1)
                h->line[h->line_len++] = (char)p[i];
            i++;
            continue;
        }
        i++;
        if (h->line_len > 0 && h->line[h->line_len - 1] == '\r')
            h->line_len--;
        h->line[h->line_len] = '\0';
        if (h->phase == HS_STATUS) {
            if (h->line_len < 12 || strncmp(h->line, "HTTP/1.", 7) != 0 || h->line[8] != ' ' ||
                h->line[9] < '1' || h->line[9] > '5') {
                *why = "the answer is not HTTP/1.x";
                return -1;
            }
            h->status = atoi(h->line + 9);
            h->phase = HS_HEADERS;
        } else if (h->line_len == 0) {
            if (h->status >= 100 && h->status < 200) {
                h->phase = HS_STATUS; /* interim answer: the real one follows */
                h->clen = -1;
            } else {
                h->body_left = h->clen;
                if (h->body_left == 0)
                    return 1;
                h->phase = HS_BODY;
            }
        } else if (strncasecmp(h->line, "content-length:", 15) == 0) {
            char *end;
            long long v = strtoll(h->line + 15, &end, 10);

            if (v < 0 || end == h->line + 15) {
                *why = "bad Content-Length in the answer";
                return -1;
            }
            h->clen = v;
        }
        h->line_len = 0;
    }
    return 0;
}

static void answer_done(struct tl_conn *c, struct hs_conn *h)
{
    char what[48];

    if (h->status != 200) {
        snprintf(what, sizeof(what), "status %d, not 200", h->status);
        tl_conn_fail(c, TL_ERR_HTTP, what);
        return;
    }
    tl_conn_close(c);
}

static void hs_on_io(struct tl_conn *c, uint32_t events)
{
    struct hs_worker *hw = c->w->mode;
    struct hs_conn *h = c->mode;
    const char *why = "";
    int n, rc;

    (void)events;
    while (h->phase == HS_WRITE) {
        n = SSL_write(c->ssl, hw->req + h->req_off, (int)(hw->req_len - h->req_off));
        if (n > 0) {
            h->req_off += (size_t)n;
            if (h->req_off == hw->req_len)
                h->phase = HS_STATUS;
            continue;
        }
        if (tl_conn_ssl_result(c, n, &why) == TL_IO_AGAIN)
            return;
        tl_conn_fail(c, TL_ERR_IO, why);
        return;
    }
    for (;;) {
        n = SSL_read(c->ssl, c->w->rbuf, (int)c->w->rbuf_len);
        if (n > 0) {
            rc = parse_answer(h, c->w->rbuf, (size_t)n, &why);
            if (rc < 0) {
                tl_conn_fail(c, TL_ERR_HTTP, why);
                return;
            }
            if (rc > 0) {
                answer_done(c, h);
                return;
            }
            continue;
        }
        switch (tl_conn_ssl_result(c, n, &why)) {
        case TL_IO_AGAIN:
            return;
        case TL_IO_EOF:
            if (h->phase == HS_BODY && h->body_left < 0) {
                answer_done(c, h);
                return;
            }
            tl_conn_fail(c, TL_ERR_HTTP, "server closed the connection before the answer ended");
            return;
        case TL_IO_OK:
        case TL_IO_ERR:
            tl_conn_fail(c, TL_ERR_IO, why);
            return;
        }
    }
}

static void hs_on_established(struct tl_conn *c, uint64_t now)
{
    struct tl_run *r = c->w->run;
    struct hs_conn *h = c->mode;

    if (!atomic_load_explicit(&r->established_once, memory_order_relaxed))
        atomic_store(&r->established_once, 1);
    tl_worker_ok(c->w, c, now - c->op_start_ns, c->measured);
    if (r->o->request == NULL) {
        tl_conn_close(c);
        return;
    }
    memset(h, 0, offsetof(struct hs_conn, line));
    h->phase = HS_WRITE;
    h->clen = -1;
    c->deadline_ns = now + (uint64_t)r->o->timeout_s * 1000000000ULL;
    hs_on_io(c, 0);
}

static void hs_on_close(struct tl_conn *c, enum tl_err kind, const char *what)
{
    if (kind < TL_ERR__COUNT)
        tl_worker_err(c->w, kind, c->measured, what);
}

static int hs_conn_busy(const struct tl_conn *c)
{
    return c->state != TL_C_IDLE;
}

static int hs_worker_busy(const struct tl_worker *w)
{
    return w->active > 0;
}

const struct tl_mode_ops tl_mode_handshake = {
    .name = "handshake",
    .unit = "handshakes",
    .alpn = NULL,
    .alpn_len = 0,
    .worker_init = hs_worker_init,
    .worker_fini = hs_worker_fini,
    .conn_init = hs_conn_init,
    .conn_fini = hs_conn_fini,
    .may_start = hs_may_start,
    .on_established = hs_on_established,
    .on_io = hs_on_io,
    .on_close = hs_on_close,
    .conn_busy = hs_conn_busy,
    .worker_busy = hs_worker_busy,
};
