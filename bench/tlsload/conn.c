/*
 * The connection state machine shared by both modes: non-blocking TCP
 * connect, SSL_connect driven by edge-triggered epoll, then hand-over to
 * the mode. A connection slot keeps its SSL object for the whole run and
 * resets it with SSL_clear() between connections, so a new handshake costs
 * no SSL_new() and no fresh record buffers; SSL_set_session(NULL) makes sure
 * nothing is ever resumed.
 *
 * The socket is registered once, for EPOLLIN|EPOLLOUT edge-triggered: libssl
 * only reports WANT_READ/WANT_WRITE after the socket said EAGAIN, so an edge
 * always follows, and no epoll_ctl(MOD) is ever needed.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <openssl/err.h>

#include "tlsload.h"

/* The last OpenSSL error of this thread as text, or fallback. */
static const char *ssl_why(const char *fallback)
{
    static __thread char buf[200];
    unsigned long e = ERR_peek_last_error();

    if (e == 0)
        return fallback;
    ERR_error_string_n(e, buf, sizeof(buf));
    return buf;
}

enum tl_io tl_conn_ssl_result(struct tl_conn *c, int ret, const char **why)
{
    int e = SSL_get_error(c->ssl, ret);

    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return TL_IO_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        *why = "server closed the connection";
        return TL_IO_EOF;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_last_error() == 0 && errno == 0) {
            *why = "server closed the connection";
            return TL_IO_EOF;
        }
        *why = ERR_peek_last_error() ? ssl_why("") : strerror(errno);
        /* e.g. ECONNRESET: the peer is gone either way */
        return TL_IO_ERR;
    default:
        *why = ssl_why("TLS error");
        return TL_IO_ERR;
    }
}

static int prepare_ssl(struct tl_conn *c)
{
    const struct tl_opts *o = c->w->run->o;

    if (c->ssl == NULL) {
        c->ssl = SSL_new(c->w->run->ctx);
        c->bio = BIO_new(BIO_s_socket());
        if (c->ssl == NULL || c->bio == NULL) {
            SSL_free(c->ssl);
            BIO_free(c->bio);
            c->ssl = NULL;
            c->bio = NULL;
            return 0;
        }
        BIO_set_fd(c->bio, c->fd, BIO_NOCLOSE);
        SSL_set_bio(c->ssl, c->bio, c->bio); /* one reference, owned by ssl */
        c->bio_in_seen = c->bio_out_seen = 0;
    } else {
        BIO_set_fd(c->bio, c->fd, BIO_NOCLOSE);
    }
    SSL_set_connect_state(c->ssl);
    if (o->sni != NULL && SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name) == NULL &&
        !SSL_set_tlsext_host_name(c->ssl, o->sni))
        return 0;
    return 1;
}

static void established(struct tl_conn *c)
{
    struct tl_run *r = c->w->run;

    c->state = TL_C_ACTIVE;
    c->ssl_ok = 1;
    if (SSL_session_reused(c->ssl)) {
        tl_conn_fail(c, TL_ERR_RESUMED, "the server resumed a session");
        return;
    }
    tl_run_note_params(r, c->ssl);
    r->ops->on_established(c, tl_now_ns());
}

static void drive_handshake(struct tl_conn *c)
{
    const char *why = "";
    enum tl_err kind = TL_ERR_HANDSHAKE;
    int rc = SSL_connect(c->ssl);

    if (rc == 1) {
        established(c);
        return;
    }
    switch (tl_conn_ssl_result(c, rc, &why)) {
    case TL_IO_AGAIN:
        return;
    case TL_IO_OK:
    case TL_IO_EOF:
    case TL_IO_ERR:
        break;
    }
    if (c->w->run->o->cafile && SSL_get_verify_result(c->ssl) != X509_V_OK) {
        kind = TL_ERR_VERIFY;
        why = X509_verify_cert_error_string(SSL_get_verify_result(c->ssl));
    }
    tl_conn_fail(c, kind, why);
}

int tl_conn_open(struct tl_conn *c, uint64_t now)
{
    struct tl_worker *w = c->w;
    struct tl_run *r = w->run;
    const struct tl_opts *o = r->o;
    struct epoll_event ev;
    int one = 1, rc;

    c->op_start_ns = now;
    c->deadline_ns = now + (uint64_t)o->timeout_s * 1000000000ULL;
    c->measured = now >= r->measure_ns;
    c->ssl_ok = 0;
    c->fd = socket(o->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        int e = errno;
        c->state = TL_C_CONNECTING; /* so fail() settles it like a connect */
        w->active++;
        tl_conn_fail(c, TL_ERR_CONNECT, strerror(e));
        return -1;
    }
    w->active++;
    c->state = TL_C_CONNECTING;
    if (c->measured)
        w->st.connections++;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (!prepare_ssl(c)) {
        tl_conn_fail(c, TL_ERR_HANDSHAKE, ssl_why("cannot create a TLS connection object"));
        return -1;
    }
    rc = connect(c->fd, (const struct sockaddr *)&o->addr, o->addrlen);
    if (rc != 0 && errno != EINPROGRESS) {
        tl_conn_fail(c, TL_ERR_CONNECT, strerror(errno));
        return -1;
    }
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = c;
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        tl_conn_fail(c, TL_ERR_CONNECT, strerror(errno));
        return -1;
    }
    tl_debug("conn %u: connecting fd %d", c->idx, c->fd);
    if (rc == 0) {
        c->state = TL_C_HANDSHAKE;
        drive_handshake(c);
    }
    return 0;
}

void tl_conn_on_event(struct tl_conn *c, uint32_t events)
{
    switch (c->state) {
    case TL_C_IDLE:
        return;
    case TL_C_CONNECTING:
        if (events & (EPOLLERR | EPOLLHUP)) {
            int err = 0;
            socklen_t len = sizeof(err);

            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
            tl_conn_fail(c, TL_ERR_CONNECT, strerror(err ? err : ECONNREFUSED));
            return;
        }
        if (!(events & EPOLLOUT))
            return;
        c->state = TL_C_HANDSHAKE;
        /* fall through */
    case TL_C_HANDSHAKE:
        drive_handshake(c);
        return;
    case TL_C_ACTIVE:
        c->w->run->ops->on_io(c, events);
        return;
    }
}

void tl_conn_account_bytes(struct tl_conn *c)
{
    uint64_t in, out;

    if (c->bio == NULL)
        return;
    in = BIO_number_read(c->bio);
    out = BIO_number_written(c->bio);
    if (c->w->measuring) {
        c->w->st.bytes_in += in - c->bio_in_seen;
        c->w->st.bytes_out += out - c->bio_out_seen;
    }
    c->bio_in_seen = in;
    c->bio_out_seen = out;
}

void tl_conn_close(struct tl_conn *c)
{
    struct tl_worker *w = c->w;

    if (c->state == TL_C_IDLE)
        return;
    if (c->ssl != NULL && c->ssl_ok)
        SSL_shutdown(c->ssl); /* queue close_notify; never wait for the peer's */
    tl_conn_account_bytes(c);
    if (c->fd >= 0)
        close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
    ERR_clear_error();
    if (c->ssl != NULL) {
        SSL_set_session(c->ssl, NULL);
        if (!SSL_clear(c->ssl)) {
            SSL_free(c->ssl); /* frees the BIO too */
            c->ssl = NULL;
            c->bio = NULL;
            ERR_clear_error();
        }
    }
    c->ssl_ok = 0;
    c->state = TL_C_IDLE;
    w->active--;
    w->idle[w->nidle++] = c;
}

void tl_conn_fail(struct tl_conn *c, enum tl_err kind, const char *what)
{
    tl_debug("conn %u: %s error: %s", c->idx, tl_err_names[kind], what);
    c->ssl_ok = 0;
    c->w->run->ops->on_close(c, kind, what);
    tl_conn_close(c);
}
