/*
 * The one SSL_CTX every connection of the run shares. It is set up for the
 * cheapest honest full handshake: no tickets, no session cache (so nothing
 * is ever resumed), read-ahead so a server flight costs one read(), and no
 * certificate chain work at all unless --cafile asks for verification.
 */
#include <arpa/inet.h>
#include <stdio.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tlsload.h"

/* Replaces X509_verify_cert() when not verifying: even with SSL_VERIFY_NONE
 * libssl would otherwise build and check a chain for every handshake. The
 * CertificateVerify signature is still checked by the handshake itself. */
static int skip_chain_verify(X509_STORE_CTX *sctx, void *arg)
{
    (void)sctx;
    (void)arg;
    return 1;
}

static int config_error(const char *what, const char *value)
{
    unsigned long e = ERR_peek_last_error();
    char buf[200] = "";

    if (e != 0)
        ERR_error_string_n(e, buf, sizeof(buf));
    fprintf(stderr, "ihsm-tlsload: OpenSSL rejected %s '%s'%s%s\n", what, value,
            e ? ": " : "", buf);
    ERR_clear_error();
    return 0;
}

SSL_CTX *tl_ssl_ctx_new(const struct tl_opts *o, const struct tl_mode_ops *ops,
                        OSSL_LIB_CTX *libctx)
{
    SSL_CTX *ctx = SSL_CTX_new_ex(libctx, NULL, TLS_client_method());
    int ok = 1;

    if (ctx == NULL) {
        config_error("creating the TLS context", "TLS_client_method");
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx, 1);

    if (o->tls_version != 0) {
        ok = ok && SSL_CTX_set_min_proto_version(ctx, o->tls_version) &&
             SSL_CTX_set_max_proto_version(ctx, o->tls_version);
    } else {
        ok = ok && SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    }
    if (!ok)
        ok = config_error("the protocol version", o->tls_version == TLS1_2_VERSION ? "1.2" : "1.3");
    if (ok && o->groups && !SSL_CTX_set1_groups_list(ctx, o->groups))
        ok = config_error("--groups", o->groups);
    if (ok && o->sigalgs && !SSL_CTX_set1_sigalgs_list(ctx, o->sigalgs))
        ok = config_error("--sigalgs", o->sigalgs);
    if (ok && o->ciphers && !SSL_CTX_set_cipher_list(ctx, o->ciphers))
        ok = config_error("--ciphers", o->ciphers);
    if (ok && o->ciphersuites && !SSL_CTX_set_ciphersuites(ctx, o->ciphersuites))
        ok = config_error("--ciphersuites", o->ciphersuites);
    if (ok && ops->alpn && SSL_CTX_set_alpn_protos(ctx, ops->alpn, ops->alpn_len) != 0)
        ok = config_error("the ALPN list", ops->name);

    if (ok && o->cafile) {
        X509_VERIFY_PARAM *vp = SSL_CTX_get0_param(ctx);
        const char *name = o->sni ? o->sni : o->host;
        unsigned char ipbuf[16];
        int is_ip = inet_pton(AF_INET, name, ipbuf) == 1 || inet_pton(AF_INET6, name, ipbuf) == 1;

        if (!SSL_CTX_load_verify_locations(ctx, o->cafile, NULL))
            ok = config_error("--cafile", o->cafile);
        else if (is_ip ? !X509_VERIFY_PARAM_set1_ip_asc(vp, name)
                       : !X509_VERIFY_PARAM_set1_host(vp, name, 0))
            ok = config_error("the name to verify", name);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else if (ok) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_cert_verify_callback(ctx, skip_chain_verify, NULL);
    }
    if (!ok) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}
