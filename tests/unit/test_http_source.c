/*
 * test_http_source.c - the HTTP source's parsers: Server-Sent Events and
 * the JSON array splitter, fed whole and one byte at a time (a chunk
 * boundary may fall anywhere), with their errors and limits. The HTTP
 * client itself is tested against a real server in
 * tests/cli/stream-pub-url.bats.
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
#include "stream/http_source.h"

/* Feeds in[0..len) in pieces of `step` bytes and writes each event as
 * "id|event|data\n" into out. Returns the last feed's code (0, or an error
 * with err set). */
static int sse_run(stream_sse_parser *p, const char *in, size_t step, char *out, size_t out_len,
                   char *err, size_t err_len)
{
    size_t off = 0, len = strlen(in), o = 0;
    out[0] = '\0';
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        size_t piece = 0;
        while (piece < n) {
            size_t used;
            stream_sse_event ev;
            int rc = stream_sse_feed(p, (const uint8_t *)in + off + piece, n - piece, &used, &ev,
                                     err, err_len);
            piece += used;
            if (rc < 0)
                return rc;
            if (rc == 1)
                o += (size_t)snprintf(out + o, out_len - o, "%s|%s|%.*s\n", ev.id, ev.event,
                                      (int)ev.data_len, (const char *)ev.data);
        }
        off += n;
    }
    return 0;
}

static void expect_sse(const char *in, const char *want)
{
    static const size_t steps[] = {1, 2, 3, 7, 1 << 20};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        stream_sse_parser p;
        stream_sse_init(&p, 0);
        char out[4096], err[256] = "";
        int rc = sse_run(&p, in, steps[i], out, sizeof out, err, sizeof err);
        stream_sse_release(&p);
        if (rc != 0)
            fail_msg("step %zu: %s", steps[i], err);
        if (strcmp(out, want) != 0)
            fail_msg("step %zu: got\n%s\nwant\n%s", steps[i], out, want);
    }
}

static void test_sse_fields_and_line_ends(void **state)
{
    /* LF, CRLF and CR line ends; data lines joined with LF; one space
     * after the colon dropped; comments and unknown fields ignored. */
    expect_sse("id: 1\nevent: a\ndata: x\n\n", "1|a|x\n");
    expect_sse("id:1\r\ndata:x\r\ndata:  y\r\n\r\n", "1||x\n y\n");
    expect_sse("data: a\rdata: b\r\r", "||a\nb\n");
    expect_sse(": comment\nfoo: bar\ndata\n\n", "||\n");
    expect_sse("\xEF\xBB\xBF"
               "data: bom\n\n",
               "||bom\n");
    expect_sse("data: caf\xC3\xA9\n\n", "||caf\xC3\xA9\n");
}

static void test_sse_id_persists_and_moves_at_dispatch(void **state)
{
    /* The id stays for later events; an event without data dispatches
     * nothing but still sets the id; the event type does not persist. */
    expect_sse("id: 7\nevent: e\ndata: a\n\ndata: b\n\nid: 9\n\ndata: c\n\n",
               "7|e|a\n7||b\n9||c\n");
    /* An empty id clears it. */
    expect_sse("id: 1\ndata: a\n\nid\ndata: b\n\n", "1||a\n||b\n");

    /* A half event (the connection dropped) leaves last_id where the last
     * whole event left it, and reset forgets the half event. */
    stream_sse_parser p;
    stream_sse_init(&p, 0);
    char out[256], err[256];
    assert_int_equal(
        sse_run(&p, "id: 1\ndata: a\n\nid: 2\ndata: hal", 4, out, sizeof out, err, sizeof err), 0);
    assert_string_equal((const char *)p.last_id.data, "1");
    stream_sse_reset(&p);
    assert_int_equal(sse_run(&p, "data: b\n\n", 1, out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "1||b\n");
    /* retry: digits only. */
    assert_int_equal(
        sse_run(&p, "retry: 2500\n\nretry: 3x\n\n", 1, out, sizeof out, err, sizeof err), 0);
    assert_int_equal(p.retry_ms, 2500);
    /* set_last_id (resume) gives the next events that id. */
    assert_int_equal(stream_sse_set_last_id(&p, "41", 2), 0);
    assert_int_equal(sse_run(&p, "data: z\n\n", 1, out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "41||z\n");
    stream_sse_release(&p);
}

static void test_sse_rejects_bad_utf8_and_long_events(void **state)
{
    static const char *bad[] = {"data: \xff\n\n", "data: \xC3\n\n", "data: \xED\xA0\x80\n\n",
                                "data: \xC0\xAF\n\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        stream_sse_parser p;
        stream_sse_init(&p, 0);
        char out[256], err[256] = "";
        assert_int_equal(sse_run(&p, bad[i], 1, out, sizeof out, err, sizeof err),
                         STREAM_EBADRECORD);
        assert_non_null(strstr(err, "invalid SSE: bytes that are not UTF-8"));
        /* Sticky. */
        size_t used;
        stream_sse_event ev;
        assert_int_equal(stream_sse_feed(&p, (const uint8_t *)"\n", 1, &used, &ev, err, sizeof err),
                         STREAM_EBADRECORD);
        stream_sse_release(&p);
    }
    stream_sse_parser p;
    stream_sse_init(&p, 16);
    char out[256], err[256] = "";
    assert_int_equal(
        sse_run(&p, "data: 0123456789\ndata: 0123456789\n\n", 5, out, sizeof out, err, sizeof err),
        STREAM_ETOOLARGE);
    assert_non_null(strstr(err, "longer than 16 bytes"));
    stream_sse_release(&p);
    stream_sse_init(&p, 16);
    assert_int_equal(sse_run(&p, "data: 01234567890123456789", 3, out, sizeof out, err, sizeof err),
                     STREAM_ETOOLARGE);
    stream_sse_release(&p);
}

/* Splits in (fed in pieces of step bytes) and writes "elem\n" per element;
 * returns the feed's or finish's code. */
static int array_run(stream_json_array_splitter *s, const char *in, size_t step, char *out,
                     size_t out_len, char *err, size_t err_len)
{
    size_t off = 0, len = strlen(in), o = 0;
    out[0] = '\0';
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        size_t piece = 0;
        while (piece < n) {
            size_t used, elen;
            const uint8_t *e;
            int rc = stream_json_array_feed(s, (const uint8_t *)in + off + piece, n - piece, &used,
                                            &e, &elen, err, err_len);
            piece += used;
            if (rc < 0)
                return rc;
            if (rc == 1)
                o += (size_t)snprintf(out + o, out_len - o, "%.*s\n", (int)elen, (const char *)e);
        }
        off += n;
    }
    return stream_json_array_finish(s, err, err_len);
}

static void expect_array(const char *in, int want_rc, const char *want)
{
    static const size_t steps[] = {1, 2, 5, 1 << 20};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        stream_json_array_splitter s;
        stream_json_array_init(&s, 0);
        char out[4096], err[256] = "";
        int rc = array_run(&s, in, steps[i], out, sizeof out, err, sizeof err);
        stream_json_array_release(&s);
        if (rc != want_rc)
            fail_msg("'%s' step %zu: rc %d (%s), want %d", in, steps[i], rc, err, want_rc);
        if (want_rc == 0 && strcmp(out, want) != 0)
            fail_msg("'%s' step %zu: got\n%s\nwant\n%s", in, steps[i], out, want);
        if (want_rc != 0 && strstr(err, want) == NULL)
            fail_msg("'%s' step %zu: message '%s' lacks '%s'", in, steps[i], err, want);
    }
}

static void test_json_array_elements(void **state)
{
    expect_array("[]", 0, "");
    expect_array(" \n[ ] \n", 0, "");
    expect_array("[1,-2.5e3,true,null]", 0, "1\n-2.5e3\ntrue\nnull\n");
    expect_array("[\"a,]\\\"\" , {\"k\": [1, {\"x\": \"}\"}]}, [[]]]", 0,
                 "\"a,]\\\"\"\n{\"k\": [1, {\"x\": \"}\"}]}\n[[]]\n");
    expect_array("[\"caf\xC3\xA9\"]", 0, "\"caf\xC3\xA9\"\n");
}

static void test_json_array_rejects_malformed(void **state)
{
    expect_array("", STREAM_EBADRECORD, "the body is empty");
    expect_array("{\"a\":1}", STREAM_EBADRECORD, "expected '['");
    expect_array("[1,]", STREAM_EBADRECORD, "expected a value");
    expect_array("[,1]", STREAM_EBADRECORD, "expected a value");
    expect_array("[1 2]", STREAM_EBADRECORD, "expected ',' or ']'");
    expect_array("[1] x", STREAM_EBADRECORD, "after the array's ']'");
    expect_array("[1][2]", STREAM_EBADRECORD, "after the array's ']'");
    expect_array("[1, tru]", STREAM_EBADRECORD, "element 2");
    expect_array("[{\"a\" 1}]", STREAM_EBADRECORD, "element 1");
    expect_array("[1, {\"a\": [}]", STREAM_EBADRECORD, "element 2");
    expect_array("[1, 2, ", STREAM_EBADRECORD, "ends inside the array after 2 elements");
    expect_array("[\"open", STREAM_EBADRECORD, "ends inside the array");
}

static void test_json_array_limits(void **state)
{
    stream_json_array_splitter s;
    stream_json_array_init(&s, 8);
    char out[256], err[256] = "";
    assert_int_equal(array_run(&s, "[1, \"0123456789\"]", 3, out, sizeof out, err, sizeof err),
                     STREAM_ETOOLARGE);
    assert_non_null(strstr(err, "element 2 is longer than 8 bytes"));
    stream_json_array_release(&s);

    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 99);
    deep[199] = '\0';
    stream_json_array_init(&s, 0);
    assert_int_equal(array_run(&s, deep, 7, out, sizeof out, err, sizeof err), STREAM_EBADRECORD);
    assert_non_null(strstr(err, "deeper than 64"));
    stream_json_array_release(&s);
}

static void test_http_source_refuses_other_schemes(void **state)
{
    stream_http_source_conf c;
    stream_http_source_conf_init(&c);
    stream_http_source *src;
    char err[256] = "";
    assert_int_equal(stream_http_source_new(&c, &src, err, sizeof err), STREAM_EINVAL);
    c.url = "file:///etc/passwd";
    assert_int_equal(stream_http_source_new(&c, &src, err, sizeof err), STREAM_EINVAL);
    assert_non_null(strstr(err, "is not an http:// or https:// URL"));
    c.url = "http://127.0.0.1:1/";
    assert_int_equal(stream_http_source_new(&c, &src, err, sizeof err), 0);
    stream_http_source_free(src);
    stream_http_source_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sse_fields_and_line_ends),
        cmocka_unit_test(test_sse_id_persists_and_moves_at_dispatch),
        cmocka_unit_test(test_sse_rejects_bad_utf8_and_long_events),
        cmocka_unit_test(test_json_array_elements),
        cmocka_unit_test(test_json_array_rejects_malformed),
        cmocka_unit_test(test_json_array_limits),
        cmocka_unit_test(test_http_source_refuses_other_schemes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
