/*
 * tls.c - TLS through OpenSSL memory BIOs (stream/tls.h).
 *
 * Each connection is an SSL object between two memory BIOs: rbio holds
 * ciphertext fed from the network, wbio collects ciphertext to send. Memory
 * BIOs never block, so SSL_read, SSL_write and SSL_do_handshake only ever
 * stop for want of input (SSL_ERROR_WANT_READ), which the owner supplies
 * after its next socket read. Nothing here knows about sockets or loops.
 *
 * Errors: OpenSSL keeps its error queue per thread; every call here clears
 * it first and turns the first entry of a failure into t->err, preferring
 * the certificate verification result (which names the reason: expired,
 * unknown CA, wrong host) when there is one.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "internal.h"
#include "stream/error.h"
#include "stream/tls.h"

struct stream_tls_ctx {
    SSL_CTX *ssl_ctx; /* settings and loaded files; SSL objects hold references */
    bool server;      /* made for the accepting side */
};

struct stream_tls {
    SSL *ssl;            /* the session */
    BIO *rbio;           /* ciphertext from the network (owned by ssl) */
    BIO *wbio;           /* ciphertext for the network (owned by ssl) */
    bool failed;         /* the session is dead; err says why */
    char err[256];       /* why, for people */
};

/* The reason of OpenSSL's first queued error, or fallback. */
static const char *ssl_reason(const char *fallback)
{
    unsigned long e = ERR_peek_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    return r != NULL ? r : fallback;
}

static int ctx_fail(SSL_CTX *sc, char *errbuf, size_t errbuf_len, const char *what,
                    const char *file)
{
    stream__errf(errbuf, errbuf_len, "%s %s: %s", what, file, ssl_reason("cannot load"));
    SSL_CTX_free(sc);
    ERR_clear_error();
    return STREAM_EINVAL;
}

int stream_tls_ctx_new(const stream_tls_conf *conf, bool server, stream_tls_ctx **out,
                       char *errbuf, size_t errbuf_len)
{
    *out = NULL;
    if (server && (conf->cert_file == NULL || conf->key_file == NULL))
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            "TLS needs both a certificate (--tls-cert) and its key (--tls-key)");
    if ((conf->cert_file == NULL) != (conf->key_file == NULL))
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            "a TLS certificate needs its key and a key its certificate");
    if (server && conf->client_auth != STREAM_TLS_AUTH_NONE && conf->ca_file == NULL)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            "client certificates (--tls-client-auth) need the CA that "
                            "signs them (--tls-ca)");
    ERR_clear_error();
    SSL_CTX *sc = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    stream_tls_ctx *ctx = sc != NULL ? calloc(1, sizeof(*ctx)) : NULL;
    if (ctx == NULL) {
        SSL_CTX_free(sc);
        return STREAM_ENOMEM;
    }
    SSL_CTX_set_min_proto_version(sc, TLS1_2_VERSION);
    /* Idle connections keep no 34 KiB of record buffers each. */
    SSL_CTX_set_mode(sc, SSL_MODE_RELEASE_BUFFERS);
    if (conf->cert_file != NULL) {
        if (SSL_CTX_use_certificate_chain_file(sc, conf->cert_file) != 1) {
            free(ctx);
            return ctx_fail(sc, errbuf, errbuf_len, "cannot load the TLS certificate",
                            conf->cert_file);
        }
        if (SSL_CTX_use_PrivateKey_file(sc, conf->key_file, SSL_FILETYPE_PEM) != 1) {
            free(ctx);
            return ctx_fail(sc, errbuf, errbuf_len, "cannot load the TLS key", conf->key_file);
        }
        if (SSL_CTX_check_private_key(sc) != 1) {
            free(ctx);
            return ctx_fail(sc, errbuf, errbuf_len, "the TLS key does not match the certificate",
                            conf->cert_file);
        }
    }
    if (conf->ca_file != NULL) {
        if (SSL_CTX_load_verify_locations(sc, conf->ca_file, NULL) != 1) {
            free(ctx);
            return ctx_fail(sc, errbuf, errbuf_len, "cannot load the CA file", conf->ca_file);
        }
    } else if (!server) {
        SSL_CTX_set_default_verify_paths(sc);
    }
    if (server) {
        int mode = SSL_VERIFY_NONE;
        if (conf->client_auth == STREAM_TLS_AUTH_REQUESTED)
            mode = SSL_VERIFY_PEER;
        else if (conf->client_auth == STREAM_TLS_AUTH_REQUIRED)
            mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(sc, mode, NULL);
        if (conf->client_auth != STREAM_TLS_AUTH_NONE) {
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(conf->ca_file);
            if (names != NULL)
                SSL_CTX_set_client_CA_list(sc, names);
        }
    } else {
        SSL_CTX_set_verify(sc, SSL_VERIFY_PEER, NULL);
    }
    ERR_clear_error();
    ctx->ssl_ctx = sc;
    ctx->server = server;
    *out = ctx;
    return 0;
}

void stream_tls_ctx_free(stream_tls_ctx *ctx)
{
    if (ctx == NULL)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

void stream_tls_ctx_replace(stream_tls_ctx *ctx, stream_tls_ctx *fresh)
{
    SSL_CTX_free(ctx->ssl_ctx); /* sessions made from it hold references of their own */
    ctx->ssl_ctx = fresh->ssl_ctx;
    free(fresh);
}

int stream_tls_new(const stream_tls_ctx *ctx, const char *server_name, stream_tls **out)
{
    *out = NULL;
    if (!ctx->server && (server_name == NULL || server_name[0] == '\0'))
        return STREAM_EINVAL;
    stream_tls *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return STREAM_ENOMEM;
    ERR_clear_error();
    t->ssl = SSL_new(ctx->ssl_ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        SSL_free(t->ssl);
        free(t);
        return STREAM_ENOMEM;
    }
    /* An empty memory BIO reads as "retry later", not as end of file. */
    BIO_set_mem_eof_return(t->rbio, -1);
    BIO_set_mem_eof_return(t->wbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    if (ctx->server) {
        SSL_set_accept_state(t->ssl);
    } else {
        struct in6_addr a6;
        struct in_addr a4;
        bool ip = inet_pton(AF_INET, server_name, &a4) == 1 ||
                  inet_pton(AF_INET6, server_name, &a6) == 1;
        int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), server_name)
                    : SSL_set1_host(t->ssl, server_name) &&
                          SSL_set_tlsext_host_name(t->ssl, server_name);
        if (ok != 1) {
            SSL_free(t->ssl);
            free(t);
            ERR_clear_error();
            return STREAM_ENOMEM;
        }
        SSL_set_connect_state(t->ssl);
    }
    *out = t;
    return 0;
}

void stream_tls_free(stream_tls *t)
{
    if (t == NULL)
        return;
    SSL_free(t->ssl); /* and both BIOs */
    free(t);
}

int stream_tls_feed(stream_tls *t, const void *p, size_t n)
{
    while (n > 0) {
        int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
        int w = BIO_write(t->rbio, p, chunk);
        if (w <= 0)
            return STREAM_ENOMEM;
        p = (const uint8_t *)p + w;
        n -= (size_t)w;
    }
    return 0;
}

/* Records why the session failed (once) and returns STREAM_ETLS. */
static int tls_failed(stream_tls *t, int ssl_err)
{
    if (!t->failed) {
        t->failed = true;
        long vr = SSL_get_verify_result(t->ssl);
        if (vr != X509_V_OK)
            snprintf(t->err, sizeof(t->err), "certificate verification failed: %s",
                     X509_verify_cert_error_string(vr));
        else if (ssl_err == SSL_ERROR_SYSCALL || ssl_err == SSL_ERROR_ZERO_RETURN)
            snprintf(t->err, sizeof(t->err), "the peer ended the TLS session");
        else
            snprintf(t->err, sizeof(t->err), "TLS handshake or record failed: %s",
                     ssl_reason("unknown TLS error"));
    }
    ERR_clear_error();
    return STREAM_ETLS;
}

int stream_tls_handshake(stream_tls *t)
{
    if (t->failed)
        return STREAM_ETLS;
    ERR_clear_error();
    if (SSL_is_init_finished(t->ssl))
        return 0;
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1)
        return 0;
    int e = SSL_get_error(t->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return STREAM_EAGAIN;
    return tls_failed(t, e);
}

long stream_tls_read(stream_tls *t, void *buf, size_t cap)
{
    int hs = stream_tls_handshake(t);
    if (hs != 0)
        return hs == STREAM_EAGAIN ? 0 : hs;
    int want = cap > INT32_MAX ? INT32_MAX : (int)cap;
    int n = SSL_read(t->ssl, buf, want);
    if (n > 0)
        return n;
    int e = SSL_get_error(t->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    if (e == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        return STREAM_ECLOSED;
    }
    return tls_failed(t, e);
}

int stream_tls_write(stream_tls *t, const void *p, size_t n)
{
    int hs = stream_tls_handshake(t);
    if (hs != 0)
        return hs;
    while (n > 0) {
        int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
        int w = SSL_write(t->ssl, p, chunk);
        if (w <= 0) {
            int e = SSL_get_error(t->ssl, w);
            if (e == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_error()) == ERR_R_MALLOC_FAILURE) {
                ERR_clear_error();
                return STREAM_ENOMEM;
            }
            return tls_failed(t, e);
        }
        p = (const uint8_t *)p + w;
        n -= (size_t)w;
    }
    return 0;
}

size_t stream_tls_out_pending(const stream_tls *t)
{
    return BIO_ctrl_pending(t->wbio);
}

size_t stream_tls_out_take(stream_tls *t, void *buf, size_t cap)
{
    if (cap == 0)
        return 0;
    int want = cap > INT32_MAX ? INT32_MAX : (int)cap;
    int n = BIO_read(t->wbio, buf, want);
    return n > 0 ? (size_t)n : 0;
}

bool stream_tls_ready(const stream_tls *t)
{
    return !t->failed && SSL_is_init_finished(t->ssl);
}

const char *stream_tls_error(const stream_tls *t)
{
    return t->err;
}

bool stream_tls_peer_subject(const stream_tls *t, char *buf, size_t len)
{
    if (len > 0)
        buf[0] = '\0';
    X509 *cert = SSL_get0_peer_certificate(t->ssl);
    if (cert == NULL || SSL_get_verify_result(t->ssl) != X509_V_OK || len == 0)
        return false;
    BIO *mem = BIO_new(BIO_s_mem());
    if (mem == NULL)
        return false;
    X509_NAME_print_ex(mem, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    int n = BIO_read(mem, buf, (int)(len - 1 > INT32_MAX ? INT32_MAX : len - 1));
    buf[n > 0 ? n : 0] = '\0';
    BIO_free(mem);
    return n > 0;
}

bool stream_tls_looks_like_record(const uint8_t *p, size_t n)
{
    /* A record: content type (21 alert, 22 handshake), version 3.x. */
    return n >= 3 && (p[0] == 21 || p[0] == 22) && p[1] == 3 && p[2] <= 4;
}
