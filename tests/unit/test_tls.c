/*
 * test_tls.c - the TLS module (base/tls.c): a client and a server session of
 * the module talk to each other in memory (what one feeds, the other takes
 * out), with certificates made once by the openssl command in a temp dir:
 * a CA, a server certificate for 127.0.0.1 and localhost, a client
 * certificate, and another CA's server certificate.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream/error.h"
#include "stream/tls.h"

static char dir[] = "/tmp/test_tls.XXXXXX";
static char path_buf[8][300];

/* dir/NAME (one of a few slots, reused round robin). */
static const char *file(const char *name)
{
    static int slot;
    char *p = path_buf[slot++ % 8];
    snprintf(p, sizeof(path_buf[0]), "%s/%s", dir, name);
    return p;
}

static int make_pki(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL)
        return -1;
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "cd %s && exec 2>/dev/null && "
             "for ca in ca other; do openssl req -x509 -newkey ec -pkeyopt "
             "ec_paramgen_curve:prime256v1 -nodes -keyout $ca.key -out $ca.pem -days 2 "
             "-subj /CN=$ca || exit 1; done && "
             "mk() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout $1.key -out $1.csr -subj $3 && printf 'subjectAltName=%%s\\n' \"$4\" >$1.ext && "
             "openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key -CAcreateserial -out $1.pem "
             "-days 2 -extfile $1.ext; } && "
             "mk server ca /CN=localhost DNS:localhost,IP:127.0.0.1 && "
             "mk client ca /CN=client1 DNS:client1 && "
             "mk foreign other /CN=localhost IP:127.0.0.1",
             dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int remove_pki(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static stream_tls_ctx *ctx(const char *cert, const char *ca, stream_tls_client_auth auth,
                           bool server)
{
    char c[300], k[300], a[300], err[512] = "";
    if (cert != NULL) {
        snprintf(c, sizeof(c), "%s/%s.pem", dir, cert);
        snprintf(k, sizeof(k), "%s/%s.key", dir, cert);
    }
    if (ca != NULL)
        snprintf(a, sizeof(a), "%s/%s.pem", dir, ca);
    stream_tls_conf tc = {.cert_file = cert ? c : NULL,
                          .key_file = cert ? k : NULL,
                          .ca_file = ca ? a : NULL,
                          .client_auth = auth};
    stream_tls_ctx *out = NULL;
    int rc = stream_tls_ctx_new(&tc, server, &out, err, sizeof(err));
    if (rc != 0)
        fail_msg("stream_tls_ctx_new: %s", err);
    return out;
}

/* Moves what from has for the network to to, in pieces of at most piece
 * bytes. Returns the bytes moved. */
static size_t pass(stream_tls *from, stream_tls *to, size_t piece)
{
    uint8_t buf[1000];
    size_t moved = 0, n;
    if (piece > sizeof(buf))
        piece = sizeof(buf);
    while ((n = stream_tls_out_take(from, buf, piece)) > 0) {
        assert_int_equal(stream_tls_feed(to, buf, n), 0);
        moved += n;
    }
    return moved;
}

/* Runs the handshake to its end or to a failure. 0 when both are ready,
 * else the failing side's code (STREAM_ETLS). */
static int handshake(stream_tls *cl, stream_tls *sv)
{
    uint8_t b[16];
    for (int i = 0; i < 10; i++) {
        int c = stream_tls_handshake(cl);
        pass(cl, sv, 7);
        long s = stream_tls_read(sv, b, sizeof(b));
        pass(sv, cl, 300);
        if (c == STREAM_ETLS || s == STREAM_ETLS)
            return STREAM_ETLS;
        if (stream_tls_ready(cl) && stream_tls_ready(sv)) {
            /* The client's last flight (its Finished) reaches the server. */
            assert_int_equal(stream_tls_read(sv, b, sizeof(b)), 0);
            return 0;
        }
        if (stream_tls_read(cl, b, sizeof(b)) == STREAM_ETLS)
            return STREAM_ETLS;
    }
    return STREAM_ETLS;
}

static void test_tls_handshake_then_data_both_ways(void **state)
{
    (void)state;
    stream_tls_ctx *s = ctx("server", NULL, STREAM_TLS_AUTH_NONE, true);
    stream_tls_ctx *c = ctx(NULL, "ca", STREAM_TLS_AUTH_NONE, false);
    stream_tls *cl, *sv;
    assert_int_equal(stream_tls_new(c, "127.0.0.1", &cl), 0);
    assert_int_equal(stream_tls_new(s, NULL, &sv), 0);
    /* Before the handshake nothing is taken. */
    assert_int_equal(stream_tls_write(cl, "x", 1), STREAM_EAGAIN);
    assert_int_equal(handshake(cl, sv), 0);
    assert_string_equal(stream_tls_error(cl), "");
    size_t n = 100000;
    uint8_t *msg = malloc(n), *got = malloc(n);
    assert_non_null(msg);
    assert_non_null(got);
    for (size_t i = 0; i < n; i++)
        msg[i] = (uint8_t)(i * 31 + 7);
    for (int dir_ = 0; dir_ < 2; dir_++) {
        stream_tls *from = dir_ == 0 ? cl : sv, *to = dir_ == 0 ? sv : cl;
        assert_int_equal(stream_tls_write(from, msg, n), 0);
        assert_true(stream_tls_out_pending(from) > n); /* records add bytes */
        pass(from, to, 999);
        size_t have = 0;
        long r;
        while ((r = stream_tls_read(to, got + have, n - have)) > 0)
            have += (size_t)r;
        assert_int_equal(r, 0);
        assert_int_equal(have, n);
        assert_memory_equal(got, msg, n);
    }
    free(msg);
    free(got);
    stream_tls_free(cl);
    stream_tls_free(sv);
    stream_tls_ctx_free(c);
    stream_tls_ctx_free(s);
}

/* A client of ca_ctx at host against the server certificate cert fails
 * verification with a reason containing `why`. */
static void expect_refused(const char *cert, const char *ca, const char *host, const char *why)
{
    stream_tls_ctx *s = ctx(cert, NULL, STREAM_TLS_AUTH_NONE, true);
    stream_tls_ctx *c = ctx(NULL, ca, STREAM_TLS_AUTH_NONE, false);
    stream_tls *cl, *sv;
    assert_int_equal(stream_tls_new(c, host, &cl), 0);
    assert_int_equal(stream_tls_new(s, NULL, &sv), 0);
    assert_int_equal(handshake(cl, sv), STREAM_ETLS);
    assert_false(stream_tls_ready(cl));
    if (strstr(stream_tls_error(cl), why) == NULL)
        fail_msg("'%s' does not say '%s'", stream_tls_error(cl), why);
    /* Failed stays failed. */
    uint8_t b[4];
    assert_int_equal(stream_tls_read(cl, b, sizeof(b)), STREAM_ETLS);
    assert_int_equal(stream_tls_write(cl, "x", 1), STREAM_ETLS);
    stream_tls_free(cl);
    stream_tls_free(sv);
    stream_tls_ctx_free(c);
    stream_tls_ctx_free(s);
}

static void test_tls_verification_failures_name_the_reason(void **state)
{
    (void)state;
    expect_refused("server", "ca", "10.1.2.3", "IP address mismatch");
    expect_refused("server", "ca", "db.example", "hostname mismatch");
    expect_refused("foreign", "ca", "127.0.0.1", "certificate verification failed");
    expect_refused("server", "other", "localhost", "certificate verification failed");
}

static void test_tls_client_certificates(void **state)
{
    (void)state;
    stream_tls_ctx *s = ctx("server", "ca", STREAM_TLS_AUTH_REQUIRED, true);
    stream_tls_ctx *anon = ctx(NULL, "ca", STREAM_TLS_AUTH_NONE, false);
    stream_tls_ctx *with = ctx("client", "ca", STREAM_TLS_AUTH_NONE, false);
    stream_tls *cl, *sv;
    char subject[200];
    /* Without a certificate: refused, and the server says why. */
    assert_int_equal(stream_tls_new(anon, "localhost", &cl), 0);
    assert_int_equal(stream_tls_new(s, NULL, &sv), 0);
    assert_int_equal(handshake(cl, sv), STREAM_ETLS);
    assert_non_null(strstr(stream_tls_error(sv), "certificate"));
    stream_tls_free(cl);
    stream_tls_free(sv);
    /* With one: accepted, its subject known to the server. */
    assert_int_equal(stream_tls_new(with, "localhost", &cl), 0);
    assert_int_equal(stream_tls_new(s, NULL, &sv), 0);
    assert_int_equal(handshake(cl, sv), 0);
    assert_true(stream_tls_peer_subject(sv, subject, sizeof(subject)));
    assert_string_equal(subject, "CN=client1");
    assert_false(stream_tls_peer_subject(cl, subject, 0));
    stream_tls_free(cl);
    stream_tls_free(sv);
    stream_tls_ctx_free(with);
    stream_tls_ctx_free(anon);
    stream_tls_ctx_free(s);
}

static void test_tls_ctx_replace_keeps_sessions_made_before(void **state)
{
    (void)state;
    stream_tls_ctx *s = ctx("server", NULL, STREAM_TLS_AUTH_NONE, true);
    stream_tls_ctx *c = ctx(NULL, "ca", STREAM_TLS_AUTH_NONE, false);
    stream_tls *cl1, *sv1, *cl2, *sv2;
    assert_int_equal(stream_tls_new(s, NULL, &sv1), 0);
    /* The server's files change (to a certificate ca does not sign). */
    stream_tls_ctx_replace(s, ctx("foreign", NULL, STREAM_TLS_AUTH_NONE, true));
    assert_int_equal(stream_tls_new(s, NULL, &sv2), 0);
    assert_int_equal(stream_tls_new(c, "127.0.0.1", &cl1), 0);
    assert_int_equal(stream_tls_new(c, "127.0.0.1", &cl2), 0);
    assert_int_equal(handshake(cl1, sv1), 0); /* made before: the old certificate */
    assert_int_equal(handshake(cl2, sv2), STREAM_ETLS);
    assert_non_null(strstr(stream_tls_error(cl2), "certificate verification failed"));
    stream_tls_free(cl1);
    stream_tls_free(sv1);
    stream_tls_free(cl2);
    stream_tls_free(sv2);
    stream_tls_ctx_free(c);
    stream_tls_ctx_free(s);
}

static void test_tls_ctx_errors_name_the_file(void **state)
{
    (void)state;
    char err[512];
    stream_tls_ctx *out;
    stream_tls_conf tc = {.cert_file = file("nosuch.pem"), .key_file = file("server.key")};
    assert_int_equal(stream_tls_ctx_new(&tc, true, &out, err, sizeof(err)), STREAM_EINVAL);
    assert_null(out);
    assert_non_null(strstr(err, "nosuch.pem"));
    tc = (stream_tls_conf){.cert_file = file("server.pem"), .key_file = file("client.key")};
    assert_int_equal(stream_tls_ctx_new(&tc, true, &out, err, sizeof(err)), STREAM_EINVAL);
    assert_non_null(strstr(err, "client.key"));
    tc = (stream_tls_conf){.cert_file = file("server.pem")};
    assert_int_equal(stream_tls_ctx_new(&tc, false, &out, err, sizeof(err)), STREAM_EINVAL);
    tc = (stream_tls_conf){.cert_file = file("server.pem"),
                           .key_file = file("server.key"),
                           .client_auth = STREAM_TLS_AUTH_REQUIRED};
    assert_int_equal(stream_tls_ctx_new(&tc, true, &out, err, sizeof(err)), STREAM_EINVAL);
    assert_non_null(strstr(err, "--tls-ca"));
    tc = (stream_tls_conf){0};
    assert_int_equal(stream_tls_ctx_new(&tc, true, &out, err, sizeof(err)), STREAM_EINVAL);
    /* A client needs a name to verify. */
    stream_tls_ctx *c = ctx(NULL, "ca", STREAM_TLS_AUTH_NONE, false);
    stream_tls *t;
    assert_int_equal(stream_tls_new(c, NULL, &t), STREAM_EINVAL);
    assert_int_equal(stream_tls_new(c, "", &t), STREAM_EINVAL);
    stream_tls_ctx_free(c);
    stream_tls_ctx_free(NULL);
    stream_tls_free(NULL);
}

static void test_tls_garbage_fails_the_server_session(void **state)
{
    (void)state;
    stream_tls_ctx *s = ctx("server", NULL, STREAM_TLS_AUTH_NONE, true);
    stream_tls *sv;
    assert_int_equal(stream_tls_new(s, NULL, &sv), 0);
    static const char frame[] = "\x00\x00\x00\x10\x82\xa2op\xa5hello\xa2id\x01";
    assert_false(stream_tls_looks_like_record((const uint8_t *)frame, sizeof(frame) - 1));
    assert_int_equal(stream_tls_feed(sv, frame, sizeof(frame) - 1), 0);
    uint8_t b[16];
    assert_int_equal(stream_tls_read(sv, b, sizeof(b)), STREAM_ETLS);
    assert_true(stream_tls_error(sv)[0] != '\0');
    stream_tls_free(sv);
    stream_tls_ctx_free(s);
}

static void test_tls_looks_like_record(void **state)
{
    (void)state;
    const uint8_t hello[] = {22, 3, 1, 0, 200}, alert[] = {21, 3, 3, 0, 2}, app[] = {23, 3, 3};
    assert_true(stream_tls_looks_like_record(hello, sizeof(hello)));
    assert_true(stream_tls_looks_like_record(alert, sizeof(alert)));
    assert_false(stream_tls_looks_like_record(app, sizeof(app)));
    assert_false(stream_tls_looks_like_record(hello, 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_handshake_then_data_both_ways),
        cmocka_unit_test(test_tls_verification_failures_name_the_reason),
        cmocka_unit_test(test_tls_client_certificates),
        cmocka_unit_test(test_tls_ctx_replace_keeps_sessions_made_before),
        cmocka_unit_test(test_tls_ctx_errors_name_the_file),
        cmocka_unit_test(test_tls_garbage_fails_the_server_session),
        cmocka_unit_test(test_tls_looks_like_record),
    };
    return cmocka_run_group_tests(tests, make_pki, remove_pki);
}
