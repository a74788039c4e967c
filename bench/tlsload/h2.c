/*
 * h2 mode: HTTP/2 GETs over long-lived TLS connections (ALPN h2), driven
 * through nghttp2's client session with mem_recv/mem_send, so nghttp2
 * never touches the socket: SSL_read() feeds mem_recv(), and the frames
 * mem_send() hands out are gathered into one buffer and written with as
 * few SSL_write() calls (and TLS records) as possible.
 *
 * Each connection keeps --streams requests in flight; a finished stream is
 * replaced at once. A request's latency runs from submit to stream close.
 * When the server ends a connection (GOAWAY, e.g. nginx after
 * http2_max_requests), requests it refused go back to the --count budget
 * and the slot reconnects.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "tlsload.h"

#define H2_WBUF 16384
#define H2_WINDOW (1 << 24)          /* per stream: never stall a body */
#define H2_CONN_WINDOW (1 << 30)
#define H2_RETRY_NS 100000000ULL     /* reconnect delay after a failure */

struct h2_stream {
    uint64_t start_ns;
    int status;
    int measured;
    int not_sent;
    int in_use;
};

struct h2_conn {
    struct tl_conn *c;
    nghttp2_session *s;
    struct h2_stream *slots;
    unsigned *free_slots;        /* stack of free slot indices */
    unsigned nfree;
    unsigned inflight;
    int goaway, dying;
    uint8_t *wbuf;
    size_t wlen, woff;
    const uint8_t *spill;        /* a frame too big for wbuf, valid until next mem_send */
    size_t spill_len;
};

struct h2_worker {
    nghttp2_session_callbacks *cbs;
    nghttp2_nv nva[5];
    size_t nvlen;
    uint64_t inflight;
    uint64_t now;                /* when the bytes being parsed were read */
    struct h2_conn *conns;
};

static struct h2_stream *slot_of(struct h2_conn *hc, int32_t stream_id)
{
    return nghttp2_session_get_stream_user_data(hc->s, stream_id);
}

static void slot_release(struct h2_conn *hc, struct h2_stream *st)
{
    struct h2_worker *hw = hc->c->w->mode;

    st->in_use = 0;
    hc->free_slots[hc->nfree++] = (unsigned)(st - hc->slots);
    hc->inflight--;
    hw->inflight--;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *ud)
{
    struct h2_conn *hc = ud;
    struct h2_stream *st;

    (void)s;
    (void)flags;
    if (f->hd.type != NGHTTP2_HEADERS || namelen != 7 || memcmp(name, ":status", 7) != 0)
        return 0;
    st = slot_of(hc, f->hd.stream_id);
    if (st == NULL || valuelen != 3)
        return 0;
    st->status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *ud)
{
    struct h2_conn *hc = ud;
    struct h2_stream *st = slot_of(hc, stream_id);

    (void)s;
    (void)flags;
    (void)data;
    if (st != NULL && st->measured)
        hc->c->w->st.body_bytes += len;
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct h2_conn *hc = ud;

    (void)s;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        hc->goaway = 1;
        tl_debug("conn %u: GOAWAY, last stream %d", hc->c->idx, f->goaway.last_stream_id);
    }
    return 0;
}

static int on_frame_not_send(nghttp2_session *s, const nghttp2_frame *f, int err, void *ud)
{
    struct h2_conn *hc = ud;
    struct h2_stream *st;

    (void)s;
    (void)err;
    if (f->hd.type == NGHTTP2_HEADERS && (st = slot_of(hc, f->hd.stream_id)) != NULL)
        st->not_sent = 1;
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t stream_id, uint32_t code, void *ud)
{
    struct h2_conn *hc = ud;
    struct tl_worker *w = hc->c->w;
    struct h2_worker *hw = w->mode;
    struct h2_stream *st;
    char what[80];

    (void)s;
    if (hc->dying || (st = slot_of(hc, stream_id)) == NULL || !st->in_use)
        return 0;
    if (code == NGHTTP2_REFUSED_STREAM || st->not_sent) {
        if (st->measured)
            tl_budget_refund(w->run); /* never processed: another connection retries it */
    } else if (code != NGHTTP2_NO_ERROR) {
        snprintf(what, sizeof(what), "stream reset by the server: %s",
                 nghttp2_http2_strerror(code));
        tl_worker_err(w, TL_ERR_H2, st->measured, what);
    } else if (st->status != 200) {
        snprintf(what, sizeof(what), "status %d, not 200", st->status);
        tl_worker_err(w, TL_ERR_HTTP, st->measured, what);
    } else {
        tl_worker_ok(w, hc->c, hw->now - st->start_ns, st->measured);
    }
    slot_release(hc, st);
    return 0;
}

static int h2_worker_init(struct tl_worker *w)
{
    const struct tl_opts *o = w->run->o;
    struct h2_worker *hw = calloc(1, sizeof(*hw));
    const uint8_t flags = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;

    if (hw == NULL)
        return -1;
    w->mode = hw;
    if (nghttp2_session_callbacks_new(&hw->cbs) != 0)
        return -1;
    nghttp2_session_callbacks_set_on_header_callback(hw->cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(hw->cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(hw->cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(hw->cbs, on_frame_not_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(hw->cbs, on_stream_close);

#define NV(n, v) ((nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), flags})
    hw->nva[0] = NV(":method", "GET");
    hw->nva[1] = NV(":scheme", "https");
    hw->nva[2] = NV(":authority", o->authority);
    hw->nva[3] = NV(":path", o->path);
    hw->nva[4] = NV("user-agent", "ihsm-tlsload");
#undef NV
    hw->nvlen = 5;
    hw->conns = calloc(w->nconns, sizeof(*hw->conns));
    return hw->conns ? 0 : -1;
}

static void h2_worker_fini(struct tl_worker *w)
{
    struct h2_worker *hw = w->mode;

    if (hw == NULL)
        return;
    nghttp2_session_callbacks_del(hw->cbs);
    free(hw->conns);
    free(hw);
    w->mode = NULL;
}

static int h2_conn_init(struct tl_conn *c)
{
    struct h2_worker *hw = c->w->mode;
    struct h2_conn *hc = &hw->conns[c - c->w->conns];
    unsigned n = c->w->run->o->streams;

    hc->c = c;
    hc->slots = calloc(n, sizeof(*hc->slots));
    hc->free_slots = calloc(n, sizeof(*hc->free_slots));
    hc->wbuf = malloc(H2_WBUF);
    if (hc->slots == NULL || hc->free_slots == NULL || hc->wbuf == NULL)
        return -1;
    c->mode = hc;
    return 0;
}

static void h2_conn_fini(struct tl_conn *c)
{
    struct h2_conn *hc = c->mode;

    if (hc == NULL)
        return;
    free(hc->slots);
    free(hc->free_slots);
    free(hc->wbuf);
    c->mode = NULL;
}

static int h2_may_start(struct tl_conn *c, uint64_t now)
{
    struct tl_run *r = c->w->run;

    if (now < r->measure_ns || r->o->count == 0)
        return 1;
    return atomic_load_explicit(&r->budget, memory_order_relaxed) > 0;
}

/* Keeps --streams requests in flight while the budget allows. */
static int fill(struct h2_conn *hc, uint64_t now)
{
    struct tl_worker *w = hc->c->w;
    struct h2_worker *hw = w->mode;
    struct tl_run *r = w->run;
    unsigned want = r->o->streams;

    while (hc->inflight < want && !hc->goaway && hc->nfree > 0) {
        int measured = now >= r->measure_ns;
        struct h2_stream *st;
        int32_t id;

        if (measured && !tl_budget_take(r))
            break;
        st = &hc->slots[hc->free_slots[--hc->nfree]];
        st->start_ns = now;
        st->status = 0;
        st->measured = measured;
        st->not_sent = 0;
        st->in_use = 1;
        hc->inflight++;
        hw->inflight++;
        id = nghttp2_submit_request(hc->s, NULL, hw->nva, hw->nvlen, NULL, st);
        if (id < 0) {
            if (measured)
                tl_budget_refund(r);
            slot_release(hc, st);
            return -1;
        }
    }
    return 0;
}

/* Writes what nghttp2 has queued; 0 done or waiting for EPOLLOUT, -1 error. */
static int flush(struct h2_conn *hc, const char **why)
{
    SSL *ssl = hc->c->ssl;
    int n;

    for (;;) {
        while (hc->woff < hc->wlen) {
            n = SSL_write(ssl, hc->wbuf + hc->woff, (int)(hc->wlen - hc->woff));
            if (n <= 0)
                goto io;
            hc->woff += (size_t)n;
        }
        hc->woff = hc->wlen = 0;
        while (hc->spill_len > 0) {
            n = SSL_write(ssl, hc->spill, (int)hc->spill_len);
            if (n <= 0)
                goto io;
            hc->spill += n;
            hc->spill_len -= (size_t)n;
        }
        for (;;) {
            const uint8_t *d;
            ssize_t m = nghttp2_session_mem_send(hc->s, &d);

            if (m < 0) {
                *why = nghttp2_strerror((int)m);
                return -1;
            }
            if (m == 0)
                break;
            if (hc->wlen + (size_t)m > H2_WBUF) {
                hc->spill = d;
                hc->spill_len = (size_t)m;
                break;
            }
            memcpy(hc->wbuf + hc->wlen, d, (size_t)m);
            hc->wlen += (size_t)m;
        }
        if (hc->wlen == 0 && hc->spill_len == 0)
            return 0;
    }
io:
    if (tl_conn_ssl_result(hc->c, n, why) == TL_IO_AGAIN)
        return 0;
    return -2;
}

/* Settles the streams of a connection that is going away and frees the
 * session. count_kind: how to count requests still in flight
 * (TL_ERR__COUNT: the run ended, not at all). */
static void teardown(struct h2_conn *hc, enum tl_err count_kind, const char *what)
{
    struct tl_worker *w = hc->c->w;
    unsigned n = w->run->o->streams;

    for (unsigned i = 0; i < n; i++) {
        struct h2_stream *st = &hc->slots[i];

        if (!st->in_use)
            continue;
        if (count_kind < TL_ERR__COUNT) {
            if (hc->goaway || st->not_sent) {
                if (st->measured)
                    tl_budget_refund(w->run);
            } else {
                tl_worker_err(w, count_kind, st->measured, what);
            }
        }
        slot_release(hc, st);
    }
    hc->dying = 1;
    nghttp2_session_del(hc->s);
    hc->s = NULL;
    hc->dying = 0;
    hc->wlen = hc->woff = hc->spill_len = 0;
    hc->spill = NULL;
}

/* The server ended the connection in order (EOF after GOAWAY, idle close). */
static void conn_end(struct h2_conn *hc, const char *what)
{
    teardown(hc, TL_ERR_IO, what);
    tl_conn_close(hc->c);
}

static void h2_on_io(struct tl_conn *c, uint32_t events)
{
    struct h2_conn *hc = c->mode;
    struct tl_worker *w = c->w;
    struct h2_worker *hw = w->mode;
    const char *why = "";
    ssize_t rv;
    int n, rc;

    (void)events;
    for (;;) {
        n = SSL_read(c->ssl, w->rbuf, (int)w->rbuf_len);
        if (n <= 0)
            break;
        hw->now = tl_now_ns();
        c->deadline_ns = hw->now + (uint64_t)w->run->o->timeout_s * 1000000000ULL;
        rv = nghttp2_session_mem_recv(hc->s, w->rbuf, (size_t)n);
        if (rv < 0) {
            tl_conn_fail(c, TL_ERR_H2, nghttp2_strerror((int)rv));
            return;
        }
    }
    switch (tl_conn_ssl_result(c, n, &why)) {
    case TL_IO_AGAIN:
        break;
    case TL_IO_EOF:
        conn_end(hc, "server closed the connection with requests in flight");
        return;
    case TL_IO_OK:
    case TL_IO_ERR:
        tl_conn_fail(c, TL_ERR_IO, why);
        return;
    }
    if (!atomic_load_explicit(&w->run->stop, memory_order_relaxed) &&
        fill(hc, tl_now_ns()) != 0) {
        tl_conn_fail(c, TL_ERR_H2, "cannot submit a request");
        return;
    }
    rc = flush(hc, &why);
    if (rc != 0) {
        tl_conn_fail(c, rc == -1 ? TL_ERR_H2 : TL_ERR_IO, why);
        return;
    }
    if (!nghttp2_session_want_read(hc->s) && !nghttp2_session_want_write(hc->s))
        conn_end(hc, "the HTTP/2 session ended with requests in flight");
}

static void h2_on_established(struct tl_conn *c, uint64_t now)
{
    struct h2_conn *hc = c->mode;
    struct tl_worker *w = c->w;
    struct h2_worker *hw = w->mode;
    struct tl_run *r = w->run;
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_WINDOW},
    };

    SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
    if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
        tl_conn_fail(c, TL_ERR_ALPN, "the server did not select h2 by ALPN (is http2 on?)");
        return;
    }
    if (nghttp2_session_client_new(&hc->s, hw->cbs, hc) != 0) {
        tl_conn_fail(c, TL_ERR_H2, "cannot create an HTTP/2 session");
        return;
    }
    if (!atomic_load_explicit(&r->established_once, memory_order_relaxed))
        atomic_store(&r->established_once, 1);
    hc->goaway = 0;
    hc->nfree = r->o->streams;
    for (unsigned i = 0; i < hc->nfree; i++)
        hc->free_slots[i] = hc->nfree - 1 - i;
    nghttp2_submit_settings(hc->s, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
    nghttp2_session_set_local_window_size(hc->s, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW);
    c->deadline_ns = now + (uint64_t)r->o->timeout_s * 1000000000ULL;
    h2_on_io(c, 0);
}

static void h2_on_close(struct tl_conn *c, enum tl_err kind, const char *what)
{
    struct h2_conn *hc = c->mode;
    struct tl_run *r = c->w->run;
    unsigned had = hc->inflight;

    if (hc->s != NULL)
        teardown(hc, kind, what);
    if (kind >= TL_ERR__COUNT)
        return;
    if (had == 0)
        tl_worker_err(c->w, kind, c->measured, what); /* the connection itself failed */
    c->start_at_ns = tl_now_ns() + H2_RETRY_NS;
    if (!atomic_load(&r->established_once))
        tl_run_fatal(r, "cannot open an HTTP/2 connection to %s: %s error: %s", r->o->connect,
                     tl_err_names[kind], what);
}

static int h2_conn_busy(const struct tl_conn *c)
{
    const struct h2_conn *hc = c->mode;

    return hc->inflight > 0;
}

static int h2_worker_busy(const struct tl_worker *w)
{
    const struct h2_worker *hw = w->mode;

    return hw->inflight > 0;
}

static const unsigned char h2_alpn[] = {2, 'h', '2'};

const struct tl_mode_ops tl_mode_h2 = {
    .name = "h2",
    .unit = "requests",
    .alpn = h2_alpn,
    .alpn_len = sizeof(h2_alpn),
    .worker_init = h2_worker_init,
    .worker_fini = h2_worker_fini,
    .conn_init = h2_conn_init,
    .conn_fini = h2_conn_fini,
    .may_start = h2_may_start,
    .on_established = h2_on_established,
    .on_io = h2_on_io,
    .on_close = h2_on_close,
    .conn_busy = h2_conn_busy,
    .worker_busy = h2_worker_busy,
};
