/*
 * test_http.c - what the HTTP connectors share (connect/http.c): -H
 * headers from the command line and from a file, Retry-After in both
 * forms, the backoff's bounds, and which failures are retried.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stream/error.h"
#include "stream/http.h"

/* 2026-11-24T10:00:00Z */
#define NOW_MS INT64_C(1795514400000)

static void test_header_check_accepts_name_colon_value(void **state)
{
    char err[256];
    const char *ok[] = {"Authorization: Bearer abc", "X-A:b", "X-Empty:", "A: tab\there"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_int_equal(stream_http_header_check(ok[i], strlen(ok[i]), err, sizeof(err)), 0);
}

static void test_header_check_refuses_splits_and_bad_names(void **state)
{
    char err[256];
    const char *bad[] = {"",           ": v",      "No colon", "Bad Name: v", "X: a\r\nInjected: 1",
                         "X: nul\x01", "Na(me): v"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(stream_http_header_check(bad[i], strlen(bad[i]), err, sizeof(err)),
                         STREAM_EINVAL);
        assert_true(err[0] != '\0');
    }
    /* The value is never quoted back: it may be a token. */
    const char *secret = "Authorization: Bearer s3cret\x01";
    assert_int_equal(stream_http_header_check(secret, strlen(secret), err, sizeof(err)),
                     STREAM_EINVAL);
    assert_null(strstr(err, "s3cret"));
}

static size_t count_headers(const stream_http_conf *conf)
{
    struct curl_slist *l = NULL;
    assert_int_equal(stream_http_conf_headers(conf, &l), 0);
    size_t n = 0;
    for (struct curl_slist *i = l; i; i = i->next)
        n++;
    curl_slist_free_all(l);
    return n;
}

static void test_headers_from_file_skip_blanks_and_comments(void **state)
{
    char path[] = "/tmp/test_http_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = "# tokens\nAuthorization: Bearer abc\r\n\n   \nX-Two: 2\n";
    assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
    close(fd);

    stream_http_conf conf;
    stream_http_conf_init(&conf);
    char err[512], arg[64];
    assert_int_equal(stream_http_conf_add_header(&conf, "X-First: 1", err, sizeof(err)), 0);
    snprintf(arg, sizeof(arg), "@%s", path);
    assert_int_equal(stream_http_conf_add_header(&conf, arg, err, sizeof(err)), 0);
    assert_int_equal(count_headers(&conf), 3);
    struct curl_slist *l = NULL;
    assert_int_equal(stream_http_conf_headers(&conf, &l), 0);
    assert_string_equal(l->data, "X-First: 1");
    assert_string_equal(l->next->data, "Authorization: Bearer abc");
    assert_string_equal(l->next->next->data, "X-Two: 2");
    curl_slist_free_all(l);

    /* A bad line names the file and line, adds nothing, quotes no value. */
    fd = open(path, O_WRONLY | O_TRUNC);
    const char bad[] = "X-Ok: 1\nAuthorization Bearer s3cret\n";
    assert_int_equal(write(fd, bad, sizeof(bad) - 1), (ssize_t)(sizeof(bad) - 1));
    close(fd);
    assert_int_equal(stream_http_conf_add_header(&conf, arg, err, sizeof(err)), STREAM_EINVAL);
    assert_non_null(strstr(err, "line 2"));
    assert_null(strstr(err, "s3cret"));
    assert_int_equal(count_headers(&conf), 3);

    unlink(path);
    assert_int_equal(stream_http_conf_add_header(&conf, arg, err, sizeof(err)), STREAM_EIO);
    assert_non_null(strstr(err, path));
    stream_http_conf_release(&conf);
    stream_http_conf_release(&conf);
}

static void test_retry_after_seconds_and_dates(void **state)
{
    int64_t d = -1;
    assert_int_equal(stream_http_retry_after_ms("120", 3, NOW_MS, &d), 0);
    assert_int_equal(d, 120000);
    assert_int_equal(stream_http_retry_after_ms(" 0 ", 3, NOW_MS, &d), 0);
    assert_int_equal(d, 0);
    /* 30 s after NOW, in each of the three date forms RFC 9110 accepts. */
    const char *dates[] = {"Tue, 24 Nov 2026 10:00:30 GMT", "Tuesday, 24-Nov-26 10:00:30 GMT",
                           "Tue Nov 24 10:00:30 2026"};
    for (size_t i = 0; i < 3; i++) {
        d = -1;
        assert_int_equal(stream_http_retry_after_ms(dates[i], strlen(dates[i]), NOW_MS, &d), 0);
        assert_int_equal(d, 30000);
    }
    /* A date in the past: retry now. Huge numbers: capped at a day. */
    const char *past = "Sun, 06 Nov 1994 08:49:37 GMT";
    assert_int_equal(stream_http_retry_after_ms(past, strlen(past), NOW_MS, &d), 0);
    assert_int_equal(d, 0);
    const char *far = "Fri, 31 Dec 9999 23:59:59 GMT";
    assert_int_equal(stream_http_retry_after_ms(far, strlen(far), NOW_MS, &d), 0);
    assert_int_equal(d, INT64_C(86400000));
    /* fuzz_http found this one: a year so far away that ms overflowed. */
    const char *farther = "Tue Nov 0000000625080191 1";
    if (stream_http_retry_after_ms(farther, strlen(farther), NOW_MS, &d) == 0)
        assert_true(d >= 0 && d <= INT64_C(86400000));
    const char *huge = "99999999999999999999999";
    assert_int_equal(stream_http_retry_after_ms(huge, strlen(huge), NOW_MS, &d), 0);
    assert_int_equal(d, INT64_C(86400000));
    /* Not a number, not a date, negative, empty, and no reading past len. */
    const char *bad[] = {"soon", "-5", "", "12s", "1.5"};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(stream_http_retry_after_ms(bad[i], strlen(bad[i]), NOW_MS, &d),
                         STREAM_EINVAL);
    assert_int_equal(stream_http_retry_after_ms("12x", 2, NOW_MS, &d), 0);
    assert_int_equal(d, 12000);
}

static void test_backoff_doubles_with_jitter_up_to_the_cap(void **state)
{
    stream_http_conf conf;
    stream_http_conf_init(&conf);
    conf.backoff_ms = 100;
    conf.backoff_max_ms = 1000;
    uint64_t rng = 42;
    bool varied = false;
    for (int round = 0; round < 200; round++) {
        int64_t prev = -1;
        for (int attempt = 1; attempt <= 8; attempt++) {
            int64_t full = 100LL << (attempt - 1);
            if (full > 1000)
                full = 1000;
            int64_t w = stream_http_backoff_ms(&conf, attempt, &rng);
            assert_true(w >= full / 2 && w <= full);
            if (attempt == 1 && prev == -1 && w != 100)
                varied = true;
            prev = w;
        }
    }
    assert_true(varied); /* the jitter is there */
    conf.backoff_ms = 0;
    assert_true(stream_http_backoff_ms(&conf, 1, &rng) >= 1);
}

static void test_retryable_answers_and_transport_failures(void **state)
{
    assert_true(stream_http_status_retryable(408));
    assert_true(stream_http_status_retryable(429));
    assert_true(stream_http_status_retryable(500));
    assert_true(stream_http_status_retryable(503));
    assert_false(stream_http_status_retryable(400));
    assert_false(stream_http_status_retryable(404));
    assert_false(stream_http_status_retryable(413));
    assert_false(stream_http_status_retryable(200));
    assert_true(stream_http_curl_retryable(CURLE_COULDNT_CONNECT));
    assert_true(stream_http_curl_retryable(CURLE_OPERATION_TIMEDOUT));
    assert_true(stream_http_curl_retryable(CURLE_GOT_NOTHING));
    assert_true(stream_http_curl_retryable(CURLE_RECV_ERROR));
    assert_false(stream_http_curl_retryable(CURLE_PEER_FAILED_VERIFICATION));
    assert_false(stream_http_curl_retryable(CURLE_URL_MALFORMAT));
    assert_false(stream_http_curl_retryable(CURLE_UNSUPPORTED_PROTOCOL));
}

/* A transport failure as the code every connector reports: what the user
 * can act on (a refused connection, a timeout, a broken connection, a bad
 * URL, TLS) stays distinguishable. */
static void test_curl_errors_map_to_stream_codes(void **state)
{
    assert_int_equal(stream_http_curl_error(CURLE_COULDNT_CONNECT), STREAM_ECONNREFUSED);
    assert_int_equal(stream_http_curl_error(CURLE_OPERATION_TIMEDOUT), STREAM_ETIMEDOUT);
    assert_int_equal(stream_http_curl_error(CURLE_RECV_ERROR), STREAM_ECONNRESET);
    assert_int_equal(stream_http_curl_error(CURLE_PARTIAL_FILE), STREAM_ECONNRESET);
    assert_int_equal(stream_http_curl_error(CURLE_COULDNT_RESOLVE_HOST), STREAM_EINVAL);
    assert_int_equal(stream_http_curl_error(CURLE_URL_MALFORMAT), STREAM_EINVAL);
    assert_int_equal(stream_http_curl_error(CURLE_PEER_FAILED_VERIFICATION), STREAM_EPROTO);
    assert_int_equal(stream_http_curl_error(CURLE_SSL_CONNECT_ERROR), STREAM_EPROTO);
    assert_int_equal(stream_http_curl_error(CURLE_OUT_OF_MEMORY), STREAM_ENOMEM);
    assert_int_equal(stream_http_curl_error(CURLE_WRITE_ERROR), STREAM_EIO);
}

int main(void)
{
    char err[256];
    if (stream_http_global_init(err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_check_accepts_name_colon_value),
        cmocka_unit_test(test_header_check_refuses_splits_and_bad_names),
        cmocka_unit_test(test_headers_from_file_skip_blanks_and_comments),
        cmocka_unit_test(test_retry_after_seconds_and_dates),
        cmocka_unit_test(test_backoff_doubles_with_jitter_up_to_the_cap),
        cmocka_unit_test(test_retryable_answers_and_transport_failures),
        cmocka_unit_test(test_curl_errors_map_to_stream_codes),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
