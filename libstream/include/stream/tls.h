/*
 * tls.h - TLS for any connection, through OpenSSL memory BIOs.
 *
 * A stream_tls never touches a socket. Its owner reads ciphertext from
 * the network however it likes (a libuv read callback, a non-blocking
 * read()), hands it over with stream_tls_feed, and takes plain bytes out
 * with stream_tls_read; plain bytes go in with stream_tls_write and the
 * ciphertext to send comes out of stream_tls_out_take. So the handshake
 * never blocks, no thread is needed per connection, and one module serves
 * the broker's listeners (native and Kafka), its links to other brokers
 * and the client library alike.
 *
 *      socket --ciphertext--> _feed --> [SSL] --> _read --plain--> frames
 *      frames --plain--> _write --> [SSL] --> _out_take --ciphertext--> socket
 *
 * The handshake runs inside _read (and _write): after each _feed the
 * owner calls _read, then sends whatever _out_take holds, since a
 * handshake step or an alert may be waiting there even when no plain byte
 * came out. Once the handshake is done a later step (authentication) can
 * run on the plain bytes; the peer's certificate is available from then on
 * (stream_tls_peer_subject).
 *
 * A stream_tls_ctx holds the settings and the loaded certificate, key and
 * CAs. Connections keep what they were made with: a context may be freed
 * (or replaced by a new one, as the broker does on SIGHUP) while
 * connections made from it live on.
 */
#ifndef STREAM_TLS_H
#define STREAM_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct stream_tls_ctx stream_tls_ctx;
typedef struct stream_tls stream_tls;

/* Whether a server asks its clients for a certificate. */
typedef enum stream_tls_client_auth {
    STREAM_TLS_AUTH_NONE = 0,  /* no client certificate asked for */
    STREAM_TLS_AUTH_REQUESTED, /* asked for; verified when sent; none is fine */
    STREAM_TLS_AUTH_REQUIRED,  /* a verified client certificate or no connection */
} stream_tls_client_auth;

typedef struct stream_tls_conf {
    const char *cert_file; /* PEM certificate (chain): a server's (required), or a client's
                              own (optional; then key_file too) */
    const char *key_file;  /* PEM private key of cert_file */
    const char *ca_file;   /* PEM CAs: a client trusts these for the server (NULL: the
                              system's CAs); a server verifies client certificates with
                              them (required with client_auth) */
    stream_tls_client_auth client_auth; /* servers only */
} stream_tls_conf;

/* Loads conf's files into a new server (server true) or client context.
 * Clients always verify the server's certificate and name. TLS 1.2 is the
 * oldest version spoken. Returns 0, STREAM_EINVAL (a file is missing or
 * unreadable, a key does not match its certificate, a required setting is
 * absent: errbuf names the file and the reason), STREAM_ENOMEM. */
int stream_tls_ctx_new(const stream_tls_conf *conf, bool server, stream_tls_ctx **out,
                       char *errbuf, size_t errbuf_len);

/* Frees the context; connections made from it keep working. NULL: no-op. */
void stream_tls_ctx_free(stream_tls_ctx *ctx);

/* Moves what fresh holds (settings, certificate, key, CAs) into ctx and
 * frees fresh: later connections of ctx use the new files, connections
 * made before keep theirs, and pointers to ctx stay valid (a broker's
 * SIGHUP). Both must be of the same side (server or client). */
void stream_tls_ctx_replace(stream_tls_ctx *ctx, stream_tls_ctx *fresh);

/* A new connection of ctx. A client passes the host it connects to
 * (server_name: a DNS name, sent as SNI, or an IP address literal), which
 * the server's certificate must name; a server passes NULL. Returns 0,
 * STREAM_ENOMEM, STREAM_EINVAL (a client without a server name). */
int stream_tls_new(const stream_tls_ctx *ctx, const char *server_name, stream_tls **out);

/* Frees t. NULL: no-op. */
void stream_tls_free(stream_tls *t);

/* Hands n bytes read from the network to t (copied). 0 or STREAM_ENOMEM. */
int stream_tls_feed(stream_tls *t, const void *p, size_t n);

/* Advances the handshake and decrypts into buf[0..cap). Returns the count
 * of plain bytes (> 0), 0 when t needs more input first, STREAM_ECLOSED
 * when the peer ended the session (close_notify), or STREAM_ETLS: the
 * session failed (stream_tls_error says why; an alert for the peer may be
 * waiting in the output). Call until it returns 0 after each _feed. */
long stream_tls_read(stream_tls *t, void *buf, size_t cap);

/* Encrypts n plain bytes into the output, all of them. Returns 0,
 * STREAM_EAGAIN when the handshake is not finished (nothing taken: write
 * again after the next _read), STREAM_ETLS, STREAM_ENOMEM. */
int stream_tls_write(stream_tls *t, const void *p, size_t n);

/* Ciphertext waiting to be sent, in bytes. */
size_t stream_tls_out_pending(const stream_tls *t);

/* Moves up to cap bytes of waiting ciphertext into buf; returns how many. */
size_t stream_tls_out_take(stream_tls *t, void *buf, size_t cap);

/* Advances the handshake (a client's first call writes its hello into the
 * output). 0 once it has finished, STREAM_EAGAIN while it needs input,
 * STREAM_ETLS when it failed. */
int stream_tls_handshake(stream_tls *t);

/* True once the handshake has finished (the peer verified). */
bool stream_tls_ready(const stream_tls *t);

/* Why the session failed, for people ("certificate verification failed:
 * certificate has expired"); "" before any failure. Borrowed from t. */
const char *stream_tls_error(const stream_tls *t);

/* The verified peer certificate's subject ("CN=client,O=..."), written
 * into buf; false (buf "") when the peer sent none. */
bool stream_tls_peer_subject(const stream_tls *t, char *buf, size_t len);

/* True when p[0..n) starts like a TLS record (a handshake or an alert):
 * how a plain-text endpoint recognises a TLS peer, to say so. */
bool stream_tls_looks_like_record(const uint8_t *p, size_t n);

#endif /* STREAM_TLS_H */
