/*
 * test_format.c - format strings: compile errors, byte-exact output, nulls,
 * escapes, both header shapes; the -D/-K delimiter parser.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "stream/batch.h"
#include "stream/error.h"
#include "stream/format.h"

#define TS INT64_C(1795514400123) /* 2026-11-24T10:00:00.123Z */

/* One record, built into a real batch and read back, so its headers are in
 * the encoded shape a consumer gets. */
typedef struct fixture {
    uint8_t *batch;
    stream_record_iter it;
    stream_record rec;
    stream_fmt_record fr;
} fixture;

static void fixture_build(fixture *fx, const void *key, int32_t klen, const void *value,
                          int32_t vlen, const stream_header *h, size_t nh)
{
    stream_batch_builder b;
    const uint8_t *bytes;
    size_t len;
    stream_batch_builder_init(&b);
    assert_int_equal(stream_batch_builder_append(&b, TS, key, klen, value, vlen, h, nh), 0);
    assert_int_equal(stream_batch_builder_finish(&b, &bytes, &len), 0);
    fx->batch = malloc(len);
    memcpy(fx->batch, bytes, len);
    stream_batch_builder_release(&b);
    stream_batch_set_base_offset(fx->batch, 42);
    assert_int_equal(stream_record_iter_start(&fx->it, fx->batch, len), 0);
    assert_int_equal(stream_record_iter_next(&fx->it, &fx->rec), 1);
    stream_fmt_record_from_record(&fx->fr, "orders", 6, 3, &fx->rec);
}

static void fixture_free(fixture *fx)
{
    stream_record_iter_stop(&fx->it);
    free(fx->batch);
}

static const stream_header three_headers[] = {
    {(const uint8_t *)"a", 1, (const uint8_t *)"1", 1},
    {(const uint8_t *)"b", 1, NULL, -1},
    {(const uint8_t *)"a", 1, (const uint8_t *)"2", 1},
};

/* Compiles fmt, applies it to fr, and compares the bytes exactly. */
static void expect_output(const char *fmt, const char *null_text, const stream_fmt_record *fr,
                          const void *want, size_t want_len)
{
    stream_format *f = NULL;
    char err[256] = "";
    if (stream_format_compile(fmt, &f, err, sizeof err) != 0)
        fail_msg("compile '%s': %s", fmt, err);
    if (null_text != NULL)
        assert_int_equal(stream_format_set_null(f, null_text), 0);
    stream_buf out = STREAM_BUF_INIT;
    assert_int_equal(stream_format_apply(f, fr, &out), 0);
    if (out.len != want_len || (want_len > 0 && memcmp(out.data, want, want_len) != 0))
        fail_msg("'%s' gave '%.*s' (%zu bytes), want '%.*s' (%zu bytes)", fmt, (int)out.len,
                 (const char *)out.data, out.len, (int)want_len, (const char *)want, want_len);
    stream_buf_release(&out);
    stream_format_free(f);
}

#define EXPECT(fmt, nulltxt, fr, lit) expect_output(fmt, nulltxt, fr, lit, sizeof(lit) - 1)

static void test_format_apply_writes_every_placeholder(void **state)
{
    fixture fx;
    fixture_build(&fx, "k1", 2, "value", 5, three_headers, 3);
    EXPECT("%t|%p|%o|%k|%v|%T|%K|%V|%h|%%\n", NULL, &fx.fr,
           "orders|3|42|k1|value|1795514400123|2|5|a=1,b,a=2|%\n");
    EXPECT("%D", NULL, &fx.fr, "2026-11-24T10:00:00.123Z");
    /* kcat's spellings of value and value length. */
    EXPECT("%s %S", NULL, &fx.fr, "value 5");
    EXPECT("", NULL, &fx.fr, "");
    EXPECT("plain text", NULL, &fx.fr, "plain text");
    fixture_free(&fx);
}

static void test_format_escapes_become_bytes(void **state)
{
    fixture fx;
    fixture_build(&fx, NULL, -1, "v", 1, NULL, 0);
    EXPECT("\\n\\t\\r\\\\\\0\\x41\\xfF%v", NULL, &fx.fr, "\n\t\r\\\0A\xff" "v");
    fixture_free(&fx);
}

static void test_format_null_prints_nothing_unless_set(void **state)
{
    fixture fx;
    fixture_build(&fx, NULL, -1, NULL, -1, NULL, 0);
    EXPECT("[%k][%v][%K][%V][%h]", NULL, &fx.fr, "[][][-1][-1][]");
    EXPECT("[%k][%v]", "NULL", &fx.fr, "[NULL][NULL]");
    fixture_free(&fx);

    /* Empty is not null: it prints as nothing even with a null string set. */
    fixture_build(&fx, "", 0, "", 0, NULL, 0);
    EXPECT("[%k][%v][%K][%V]", "NULL", &fx.fr, "[][][0][0]");
    fixture_free(&fx);

    /* set_null(NULL) restores the default. */
    fixture_build(&fx, NULL, -1, "x", 1, NULL, 0);
    stream_format *f;
    assert_int_equal(stream_format_compile("%k%v", &f, NULL, 0), 0);
    assert_int_equal(stream_format_set_null(f, "-"), 0);
    assert_int_equal(stream_format_set_null(f, NULL), 0);
    stream_buf out = STREAM_BUF_INIT;
    assert_int_equal(stream_format_apply(f, &fx.fr, &out), 0);
    assert_int_equal(out.len, 1);
    assert_memory_equal(out.data, "x", 1);
    stream_buf_release(&out);
    stream_format_free(f);
    fixture_free(&fx);
}

static void test_format_binary_bytes_pass_through(void **state)
{
    static const uint8_t key[] = {0x00, 0xff, 0x0a};
    static const uint8_t value[] = {'a', 0x00, 0xc3, 0x28, '%', '\\'};
    static const stream_header h[] = {{(const uint8_t *)"b\0n", 3, value, 6}};
    fixture fx;
    fixture_build(&fx, key, 3, value, 6, h, 1);
    EXPECT("%k|%v|%h", NULL, &fx.fr, "\x00\xff\x0a|a\x00\xc3(%\\|b\0n=a\x00\xc3(%\\");
    fixture_free(&fx);
}

static void test_format_accepts_decoded_header_arrays(void **state)
{
    stream_fmt_record fr = {
        .topic = "t",
        .topic_len = 1,
        .partition = 0,
        .offset = -1,
        .timestamp = 0,
        .key = NULL,
        .key_len = -1,
        .value = (const uint8_t *)"v",
        .value_len = 1,
        .headers = three_headers,
        .header_count = 3,
    };
    EXPECT("%h;%o;%D", NULL, &fr, "a=1,b,a=2;-1;1970-01-01T00:00:00.000Z");
    fr.header_count = 0;
    EXPECT("<%h>", NULL, &fr, "<>");
}

static void test_format_reports_corrupt_encoded_headers(void **state)
{
    static const uint8_t junk[] = {0x7f, 0x7f, 0x7f};
    stream_fmt_record fr = {.topic = "t", .topic_len = 1, .key_len = -1, .value_len = -1,
                            .headers = NULL, .header_count = 2, .headers_raw = junk,
                            .headers_raw_len = sizeof junk};
    stream_format *f;
    assert_int_equal(stream_format_compile("%h", &f, NULL, 0), 0);
    stream_buf out = STREAM_BUF_INIT;
    assert_int_equal(stream_format_apply(f, &fr, &out), STREAM_ECORRUPT);
    stream_buf_release(&out);
    /* A format without %h does not look at the headers. */
    stream_format_free(f);
    EXPECT("%t", NULL, &fr, "t");
}

static void test_format_apply_reuses_the_output_buffer(void **state)
{
    fixture fx;
    fixture_build(&fx, "k", 1, "value", 5, three_headers, 3);
    stream_format *f;
    assert_int_equal(stream_format_compile("%t %p %o %k %v %h %T\n", &f, NULL, 0), 0);
    stream_buf out = STREAM_BUF_INIT;
    assert_int_equal(stream_format_apply(f, &fx.fr, &out), 0);
    size_t len = out.len, cap = out.cap;
    uint8_t *data = out.data;
    for (int i = 0; i < 1000; i++) {
        stream_buf_reset(&out);
        assert_int_equal(stream_format_apply(f, &fx.fr, &out), 0);
    }
    assert_int_equal(out.len, len);
    assert_int_equal(out.cap, cap);
    assert_ptr_equal(out.data, data);
    stream_buf_release(&out);
    stream_format_free(f);
    fixture_free(&fx);
}

static void expect_compile_error(const char *fmt, const char *needle)
{
    stream_format *f = (stream_format *)0x1;
    char err[256] = "";
    assert_int_equal(stream_format_compile(fmt, &f, err, sizeof err), STREAM_EINVAL);
    assert_ptr_equal(f, (stream_format *)0x1); /* untouched */
    if (strstr(err, needle) == NULL)
        fail_msg("'%s': message '%s' lacks '%s'", fmt, err, needle);
}

static void test_format_compile_rejects_bad_formats_naming_the_column(void **state)
{
    expect_compile_error("%t %x", "unknown placeholder '%x'");
    expect_compile_error("%t %x", "at column 4");
    expect_compile_error("abc%", "a lone '%' at the end");
    expect_compile_error("abc%", "column 4");
    expect_compile_error("\\q", "unknown escape '\\q'");
    expect_compile_error("\\q", "column 1");
    expect_compile_error("ab\\x4", "'\\x' needs two hex digits");
    expect_compile_error("ab\\x4", "column 3");
    expect_compile_error("ab\\xg0", "two hex digits");
    expect_compile_error("a\\", "a lone '\\'");
    expect_compile_error("%\x01", "byte 0x01");
}

static void expect_delim(const char *in, const void *want, size_t want_len)
{
    stream_buf out = STREAM_BUF_INIT;
    char err[256] = "";
    if (stream_format_parse_delim(in, strlen(in), &out, err, sizeof err) != 0)
        fail_msg("'%s': %s", in, err);
    assert_int_equal(out.len, want_len);
    assert_memory_equal(out.data, want, want_len);
    stream_buf_release(&out);
}

static void test_format_parse_delim(void **state)
{
    expect_delim("\\n", "\n", 1);
    expect_delim("\\0", "\0", 1);
    expect_delim("\\x1e", "\x1e", 1);
    expect_delim("|", "|", 1);
    expect_delim("::", "::", 2);
    expect_delim("\\t\\t", "\t\t", 2);
    expect_delim("\\r\\n", "\r\n", 2);
    expect_delim("a\\\\b", "a\\b", 3);
    expect_delim("%", "%", 1); /* % is not special in a delimiter */

    struct {
        const char *in, *needle;
    } bad[] = {
        {"", "empty"},
        {"\\q", "unknown escape '\\q' (\\n \\t \\r \\0 \\\\ \\xNN) at column 1"},
        {"ab\\", "a lone '\\' at the end at column 3"},
        {"\\xZZ", "two hex digits"},
        {"\\x1", "two hex digits"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        stream_buf out = STREAM_BUF_INIT;
        char err[256] = "";
        assert_int_equal(stream_format_parse_delim(bad[i].in, strlen(bad[i].in), &out, err,
                                                   sizeof err),
                         STREAM_EINVAL);
        if (strstr(err, bad[i].needle) == NULL)
            fail_msg("'%s': message '%s' lacks '%s'", bad[i].in, err, bad[i].needle);
        stream_buf_release(&out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_apply_writes_every_placeholder),
        cmocka_unit_test(test_format_escapes_become_bytes),
        cmocka_unit_test(test_format_null_prints_nothing_unless_set),
        cmocka_unit_test(test_format_binary_bytes_pass_through),
        cmocka_unit_test(test_format_accepts_decoded_header_arrays),
        cmocka_unit_test(test_format_reports_corrupt_encoded_headers),
        cmocka_unit_test(test_format_apply_reuses_the_output_buffer),
        cmocka_unit_test(test_format_compile_rejects_bad_formats_naming_the_column),
        cmocka_unit_test(test_format_parse_delim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
