/*
 * fuzz_tls.c - the server side of the TLS module (base/tls.c) fed a
 * client's bytes: handshake garbage, truncated and corrupted records, in
 * every chunking - what a broker's TLS listener does with what it reads
 * (broker_conn.c feeds the socket's bytes to stream_tls_feed and drains
 * stream_tls_read).
 *
 * Input: byte 0 picks the mode (bits 0-1) and the chunk size the rest is
 * fed in (bits 2-4: 1, 2, 5, 16, 100, 1000, 16384 bytes or all at once).
 *   mode 0  the rest is what a client sends from the first byte (a
 *           ClientHello to find, or garbage)
 *   mode 1  a real client (the same module, client side) completes the
 *           handshake in memory first; the rest is fed as records after it
 *   mode 2  after that handshake the client encrypts the rest as data; the
 *           records are cut at a point byte 1..2 choose and a byte there
 *           may be flipped (byte 3)
 *
 * Properties: nothing crashes or leaks; a failed session stays failed
 * (STREAM_ETLS again, with a reason); the handshake between the module's
 * own client and server always completes; in mode 2 the server returns a
 * prefix of what the client sent (all of it when nothing was cut or
 * flipped), never other bytes.
 *
 * The certificate (EC P-256, self-signed, for 127.0.0.1) is made once at
 * start with OpenSSL's API into a temporary directory.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "fuzz_util.h"
#include "stream/error.h"
#include "stream/tls.h"

static stream_tls_ctx *server_ctx, *client_ctx;

/* Writes a self-signed certificate and its key into dir. */
static void make_cert(const char *cert_path, const char *key_path)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    FUZZ_CHECK(key != NULL && x != NULL);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"fuzz", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1");
    X509_EXTENSION *bc = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
    FUZZ_CHECK(san != NULL && bc != NULL);
    X509_add_ext(x, san, -1);
    X509_add_ext(x, bc, -1);
    X509_EXTENSION_free(san);
    X509_EXTENSION_free(bc);
    FUZZ_CHECK(X509_sign(x, key, EVP_sha256()) > 0);
    FILE *f = fopen(cert_path, "w");
    FUZZ_CHECK(f != NULL && PEM_write_X509(f, x) == 1);
    fclose(f);
    f = fopen(key_path, "w");
    FUZZ_CHECK(f != NULL && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    char dir[] = "/tmp/fuzz_tls.XXXXXX";
    FUZZ_CHECK(mkdtemp(dir) != NULL);
    char cert[64], key[64], err[256];
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    make_cert(cert, key);
    stream_tls_conf sc = {.cert_file = cert, .key_file = key};
    FUZZ_CHECK_MSG(stream_tls_ctx_new(&sc, true, &server_ctx, err, sizeof(err)) == 0, "%s", err);
    stream_tls_conf cc = {.ca_file = cert};
    FUZZ_CHECK_MSG(stream_tls_ctx_new(&cc, false, &client_ctx, err, sizeof(err)) == 0, "%s", err);
    unlink(cert);
    unlink(key);
    rmdir(dir);
    return 0;
}

/* Moves what `from` has for the network into `to`. */
static void pass(stream_tls *from, stream_tls *to)
{
    uint8_t buf[4096];
    size_t n;
    while ((n = stream_tls_out_take(from, buf, sizeof(buf))) > 0)
        FUZZ_CHECK(stream_tls_feed(to, buf, n) == 0);
}

/* Drains the server's plain bytes into got (up to cap; more is dropped).
 * Returns the last result of stream_tls_read (0 or a negative code). */
static long drain(stream_tls *s, uint8_t *got, size_t cap, size_t *got_len)
{
    uint8_t buf[2048];
    for (;;) {
        long n = stream_tls_read(s, buf, sizeof(buf));
        if (n <= 0) {
            uint8_t out[1024];
            while (stream_tls_out_take(s, out, sizeof(out)) > 0)
                ; /* what the server answers (alerts, handshake) is dropped */
            return n;
        }
        size_t take = (size_t)n < cap - *got_len ? (size_t)n : cap - *got_len;
        if (got != NULL)
            memcpy(got + *got_len, buf, take);
        *got_len += take;
    }
}

/* A completed handshake between a new client and server. */
static void handshake(stream_tls **cl, stream_tls **sv)
{
    FUZZ_CHECK(stream_tls_new(client_ctx, "127.0.0.1", cl) == 0);
    FUZZ_CHECK(stream_tls_new(server_ctx, NULL, sv) == 0);
    uint8_t b[64];
    for (int i = 0; i < 10 && !(stream_tls_ready(*cl) && stream_tls_ready(*sv)); i++) {
        stream_tls_handshake(*cl);
        pass(*cl, *sv);
        FUZZ_CHECK(stream_tls_read(*sv, b, sizeof(b)) == 0);
        pass(*sv, *cl);
        FUZZ_CHECK(stream_tls_read(*cl, b, sizeof(b)) == 0);
    }
    pass(*cl, *sv);
    FUZZ_CHECK_MSG(stream_tls_ready(*cl) && stream_tls_ready(*sv), "%s / %s",
                   stream_tls_error(*cl), stream_tls_error(*sv));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t chunks[] = {1, 2, 5, 16, 100, 1000, 16384, SIZE_MAX};
    if (size < 4)
        return 0;
    int mode = data[0] & 3;
    size_t chunk = chunks[(data[0] >> 2) & 7];
    size_t cut = (size_t)data[1] << 8 | data[2];
    uint8_t flip = data[3];
    data += 4;
    size -= 4;

    stream_tls *cl = NULL, *sv = NULL;
    const uint8_t *feed = data;
    size_t feed_len = size;
    uint8_t *cipher = NULL;
    size_t cipher_len = 0;
    if (mode == 0) {
        FUZZ_CHECK(stream_tls_new(server_ctx, NULL, &sv) == 0);
    } else {
        handshake(&cl, &sv);
    }
    if (mode >= 2) {
        /* The client's real records of the input, cut and perhaps flipped. */
        if (size > 0)
            FUZZ_CHECK(stream_tls_write(cl, data, size) == 0);
        size_t n = stream_tls_out_pending(cl);
        cipher = malloc(n + 1);
        FUZZ_CHECK(cipher != NULL);
        n = stream_tls_out_take(cl, cipher, n);
        cipher_len = n;
        feed_len = cut < n ? cut : n;
        if (flip != 0 && feed_len > 0)
            cipher[flip % feed_len] ^= flip;
        feed = cipher;
    }
    uint8_t *got = mode >= 2 ? malloc(size + 1) : NULL;
    size_t got_len = 0;
    long last = 0;
    for (size_t at = 0; at < feed_len;) {
        size_t n = feed_len - at < chunk ? feed_len - at : chunk;
        FUZZ_CHECK(stream_tls_feed(sv, feed + at, n) == 0);
        at += n;
        last = drain(sv, got, mode >= 2 ? size : 0, &got_len);
        if (last < 0)
            break;
    }
    if (last == STREAM_ETLS) {
        /* Failed stays failed, with a reason. */
        uint8_t b[16];
        FUZZ_CHECK(stream_tls_read(sv, b, sizeof(b)) == STREAM_ETLS);
        FUZZ_CHECK(stream_tls_write(sv, "x", 1) == STREAM_ETLS);
        FUZZ_CHECK(stream_tls_error(sv)[0] != '\0');
    } else {
        FUZZ_CHECK(last == 0 || last == STREAM_ECLOSED);
    }
    if (mode >= 2) {
        FUZZ_CHECK(got_len <= size && (got_len == 0 || memcmp(got, data, got_len) == 0));
        if (flip == 0 && cut >= cipher_len)
            FUZZ_CHECK_MSG(got_len == size, "%zu of %zu bytes", got_len, size);
    }
    free(got);
    free(cipher);
    stream_tls_free(sv);
    stream_tls_free(cl);
    return 0;
}
