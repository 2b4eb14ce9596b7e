/*
 * test_json.c - UTF-8 validation, base64, the JSON writer and the strict reader.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream/error.h"
#include "stream/json.h"

#define S(lit) lit, sizeof(lit) - 1

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static void test_utf8_valid_accepts_and_rejects(void **state)
{
    assert_true(stream_utf8_valid(S("")));
    assert_true(stream_utf8_valid(S("plain ascii")));
    assert_true(stream_utf8_valid(S("\0nul inside")));
    assert_true(stream_utf8_valid(S("\xc3\xa9")));         /* e acute */
    assert_true(stream_utf8_valid(S("\xe2\x82\xac")));     /* euro */
    assert_true(stream_utf8_valid(S("\xf0\x9d\x84\x9e"))); /* U+1D11E */
    assert_true(stream_utf8_valid(S("\xf4\x8f\xbf\xbf"))); /* U+10FFFF */
    assert_true(stream_utf8_valid(S("\xed\x9f\xbf")));     /* U+D7FF */
    assert_true(stream_utf8_valid(S("\xee\x80\x80")));     /* U+E000 */

    assert_false(stream_utf8_valid(S("\xc0\x80")));         /* overlong NUL */
    assert_false(stream_utf8_valid(S("\xc1\xbf")));         /* overlong */
    assert_false(stream_utf8_valid(S("\xe0\x80\x80")));     /* overlong */
    assert_false(stream_utf8_valid(S("\xf0\x80\x80\x80"))); /* overlong */
    assert_false(stream_utf8_valid(S("\xed\xa0\x80")));     /* surrogate D800 */
    assert_false(stream_utf8_valid(S("\xed\xbf\xbf")));     /* surrogate DFFF */
    assert_false(stream_utf8_valid(S("\xf4\x90\x80\x80"))); /* above U+10FFFF */
    assert_false(stream_utf8_valid(S("\xf5\x80\x80\x80")));
    assert_false(stream_utf8_valid(S("ab\xc3")));           /* truncated at the end */
    assert_false(stream_utf8_valid(S("\xe2\x82")));
    assert_false(stream_utf8_valid(S("\x80")));             /* stray continuation */
    assert_false(stream_utf8_valid(S("\xc3\x28")));
    assert_false(stream_utf8_valid(S("\xfe")));
    assert_false(stream_utf8_valid(S("\xff")));
}

static void test_base64_known_vectors(void **state)
{
    /* RFC 4648 section 10. */
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *unpadded[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        stream_buf b = STREAM_BUF_INIT;
        stream_base64_encode(&b, plain[i], strlen(plain[i]));
        assert_int_equal(b.len, strlen(enc[i]));
        assert_int_equal(b.len, stream_base64_encoded_len(strlen(plain[i])));
        if (b.len)
            assert_memory_equal(b.data, enc[i], b.len);
        stream_buf_release(&b);

        const char *forms[2] = {enc[i], unpadded[i]};
        for (int k = 0; k < 2; k++) {
            uint8_t out[16];
            size_t n = 99;
            assert_int_equal(stream_base64_decode(forms[k], strlen(forms[k]), out, &n, NULL, 0), 0);
            assert_int_equal(n, strlen(plain[i]));
            assert_memory_equal(out, plain[i], n);
        }
    }
}

static void test_base64_round_trips_every_length(void **state)
{
    uint8_t in[300], out[300 + 3];
    for (size_t len = 0; len < sizeof in; len++) {
        for (size_t i = 0; i < len; i++)
            in[i] = (uint8_t)next_rand();
        stream_buf b = STREAM_BUF_INIT;
        stream_base64_encode(&b, in, len);
        assert_true(stream_base64_decoded_max(b.len) <= sizeof out);
        size_t n;
        assert_int_equal(stream_base64_decode((const char *)b.data, b.len, out, &n, NULL, 0), 0);
        assert_int_equal(n, len);
        assert_memory_equal(out, in, len);
        stream_buf_release(&b);
    }
}

static void test_base64_decode_rejects_bad_input(void **state)
{
    struct {
        const char *in, *needle;
    } bad[] = {
        {"Zm9v!A==", "invalid base64 character '!' at position 5"},
        {"Zm9v YmFy", "character ' ' at position 5"},
        {"Zm9v\nYmFy", "byte 0x0a at position 5"},
        {"-_8=", "character '-' at position 1"},
        {"Zg=", "character '='"},
        {"Zg==Zg==", "character '='"},
        {"====", "character '='"},
        {"Z", "length 1 is not possible"},
        {"Zm9vY", "length 5 is not possible"},
        {"Zh==", "non-zero bits"},
        {"Zm9=", "non-zero bits"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t out[16];
        size_t n;
        char err[128] = "";
        assert_int_equal(stream_base64_decode(bad[i].in, strlen(bad[i].in), out, &n, err,
                                              sizeof err),
                         STREAM_EINVAL);
        if (strstr(err, bad[i].needle) == NULL)
            fail_msg("'%s': message '%s' lacks '%s'", bad[i].in, err, bad[i].needle);
    }
}

static void expect_json_string(const void *in, size_t len, const char *want)
{
    stream_buf b = STREAM_BUF_INIT;
    stream_json_put_string(&b, in, len);
    if (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0)
        fail_msg("got %.*s, want %s", (int)b.len, (const char *)b.data, want);
    stream_buf_release(&b);
}

/* The 8-bytes-at-a-time fast paths of stream_json_put_string and
 * stream_utf8_valid: a byte that needs care at every position of a long
 * ASCII string, in every alignment, is found as the byte loop finds it. */
static void test_json_string_fast_path_finds_every_special_byte(void **state)
{
    const char *special[] = {"\"", "\\", "\n", "\x01", "\x1f", "\x7f", "\xc3\xa9", "\xff"};
    const char *escaped[] = {"\\\"", "\\\\", "\\n", "\\u0001", "\\u001f", "\x7f", "\xc3\xa9",
                             "\\ufffd"};
    for (size_t k = 0; k < sizeof(special) / sizeof(special[0]); k++) {
        for (size_t pos = 0; pos < 24; pos++) {
            char in[64], want[80];
            size_t sl = strlen(special[k]);
            memset(in, 'a', sizeof(in));
            memcpy(in + pos, special[k], sl);
            size_t len = 26 + sl;
            snprintf(want, sizeof(want), "\"%.*s%s%.*s\"", (int)pos, in, escaped[k],
                     (int)(len - pos - sl), in + pos + sl);
            stream_buf b = STREAM_BUF_INIT;
            stream_json_put_string(&b, in, len);
            assert_int_equal(b.len, strlen(want));
            assert_memory_equal(b.data, want, b.len);
            stream_buf_release(&b);
            assert_int_equal(stream_utf8_valid(in, len), k != 7);
        }
    }
}

static void test_json_writer_escapes_strings(void **state)
{
    expect_json_string(S(""), "\"\"");
    expect_json_string(S("say \"hi\" \\ bye"), "\"say \\\"hi\\\" \\\\ bye\"");
    expect_json_string(S("\n\t\r\b\f"), "\"\\n\\t\\r\\b\\f\"");
    expect_json_string(S("\x01\x1f\0"), "\"\\u0001\\u001f\\u0000\"");
    expect_json_string(S("\x7f/"), "\"\x7f/\""); /* DEL and / need no escape */
    expect_json_string(S("\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e"),
                       "\"\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e\"");
    /* Invalid UTF-8 never reaches the output raw. */
    expect_json_string(S("a\xff" "b"), "\"a\\ufffdb\"");
    expect_json_string(S("\xc3"), "\"\\ufffd\"");
    expect_json_string(S("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");
    expect_json_string(S("\xc3\x28"), "\"\\ufffd(\"");
}

static void test_json_writer_output_always_parses(void **state)
{
    /* Random bytes in, valid JSON out; when the bytes were valid UTF-8 the
     * parsed string is exactly them. */
    stream_json_doc d;
    stream_json_doc_init(&d);
    for (int round = 0; round < 2000; round++) {
        uint8_t in[64];
        size_t len = next_rand() % sizeof in;
        for (size_t i = 0; i < len; i++)
            in[i] = (uint8_t)(round % 2 ? next_rand() % 0x80 : next_rand());
        stream_buf b = STREAM_BUF_INIT;
        stream_json_put_string(&b, in, len);
        assert_true(stream_utf8_valid(b.data, b.len));
        const stream_json_value *v;
        char err[128];
        if (stream_json_parse(&d, (const char *)b.data, b.len, &v, err, sizeof err) != 0)
            fail_msg("writer output did not parse: %s", err);
        assert_int_equal(v->type, STREAM_JSON_STRING);
        if (stream_utf8_valid(in, len)) {
            assert_int_equal(v->str.len, len);
            assert_memory_equal(v->str.p, in, len);
        }
        stream_buf_release(&b);
    }
    stream_json_doc_release(&d);
}

static void test_json_writer_tracks_commas_and_nesting(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    stream_json_writer w;
    stream_json_writer_init(&w, &b);
    stream_json_object_start(&w);
    stream_json_key(&w, "topic");
    stream_json_cstring(&w, "orders");
    stream_json_key(&w, "parts");
    stream_json_array_start(&w);
    stream_json_int(&w, INT64_MIN);
    stream_json_uint(&w, UINT64_MAX);
    stream_json_array_start(&w);
    stream_json_array_end(&w);
    stream_json_object_start(&w);
    stream_json_object_end(&w);
    stream_json_bool(&w, true);
    stream_json_bool(&w, false);
    stream_json_null(&w);
    stream_json_double(&w, 1.5);
    stream_json_double(&w, NAN);
    stream_json_cstring(&w, NULL);
    stream_json_raw(&w, S("{\"x\":1}"));
    stream_json_array_end(&w);
    stream_json_key_n(&w, S("k\"2"));
    stream_json_string(&w, S("v\n"));
    stream_json_object_end(&w);
    assert_int_equal(stream_json_writer_ok(&w), 0);
    const char *want = "{\"topic\":\"orders\",\"parts\":[-9223372036854775808,"
                       "18446744073709551615,[],{},true,false,null,1.5,null,null,{\"x\":1}],"
                       "\"k\\\"2\":\"v\\n\"}";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);

    /* Too deep, or an end without a start, is reported. */
    stream_buf_reset(&b);
    stream_json_writer_init(&w, &b);
    for (int i = 0; i <= STREAM_JSON_WRITER_MAX_DEPTH; i++)
        stream_json_array_start(&w);
    assert_int_equal(stream_json_writer_ok(&w), STREAM_EINVAL);
    stream_json_writer_init(&w, &b);
    stream_json_object_end(&w);
    assert_int_equal(stream_json_writer_ok(&w), STREAM_EINVAL);
    stream_buf_release(&b);
}

/* Parses text, failing the test with the message if it does not parse. */
static const stream_json_value *parse_ok(stream_json_doc *d, const char *text)
{
    const stream_json_value *v = NULL;
    char err[256] = "";
    if (stream_json_parse(d, text, strlen(text), &v, err, sizeof err) != 0)
        fail_msg("'%s' failed: %s", text, err);
    return v;
}

static void expect_parse_error(stream_json_doc *d, const char *text, size_t len,
                               const char *needle)
{
    const stream_json_value *v = NULL;
    char err[256] = "";
    int rc = stream_json_parse(d, text, len, &v, err, sizeof err);
    if (rc != STREAM_EINVAL)
        fail_msg("'%.*s' gave %d, expected STREAM_EINVAL", (int)len, text, rc);
    if (strstr(err, needle) == NULL)
        fail_msg("'%.*s': message '%s' lacks '%s'", (int)len, text, err, needle);
}
#define PARSE_ERROR(d, lit, needle) expect_parse_error(d, lit, sizeof(lit) - 1, needle)

static void test_json_parse_scalars(void **state)
{
    stream_json_doc d;
    stream_json_doc_init(&d);
    const stream_json_value *v = parse_ok(&d, "null");
    assert_int_equal(v->type, STREAM_JSON_NULL);
    v = parse_ok(&d, " true ");
    assert_int_equal(v->type, STREAM_JSON_BOOL);
    assert_true(v->b);
    assert_int_equal(v->text_len, 4);
    v = parse_ok(&d, "false\r\n");
    assert_false(v->b);
    v = parse_ok(&d, "-0");
    assert_int_equal(v->type, STREAM_JSON_INT);
    assert_int_equal(v->i, 0);
    v = parse_ok(&d, "9223372036854775807");
    assert_int_equal(v->type, STREAM_JSON_INT);
    assert_int_equal(v->i, INT64_MAX);
    v = parse_ok(&d, "-9223372036854775808");
    assert_int_equal(v->type, STREAM_JSON_INT);
    assert_int_equal(v->i, INT64_MIN);
    v = parse_ok(&d, "1.5e3");
    assert_int_equal(v->type, STREAM_JSON_NUMBER);
    assert_true(v->d == 1500.0);
    v = parse_ok(&d, "-0.25");
    assert_true(v->d == -0.25);
    v = parse_ok(&d, "1E-2");
    assert_true(v->d == 0.01);
    stream_json_doc_release(&d);
}

static void test_json_parse_huge_numbers(void **state)
{
    stream_json_doc d;
    stream_json_doc_init(&d);
    /* Integral but beyond int64: a NUMBER, with the exact text kept. */
    const stream_json_value *v = parse_ok(&d, "9223372036854775808");
    assert_int_equal(v->type, STREAM_JSON_NUMBER);
    assert_true(v->d == 9223372036854775808.0);
    v = parse_ok(&d, "-9223372036854775809");
    assert_int_equal(v->type, STREAM_JSON_NUMBER);
    v = parse_ok(&d, "[123456789012345678901234567890123456789]");
    assert_int_equal(v->arr.items[0].type, STREAM_JSON_NUMBER);
    assert_int_equal(v->arr.items[0].text_len, 39);
    assert_true(v->arr.items[0].d > 1.2e38 && v->arr.items[0].d < 1.3e38);
    v = parse_ok(&d, "1e400");
    assert_int_equal(v->type, STREAM_JSON_NUMBER);
    assert_true(isinf(v->d));
    stream_json_doc_release(&d);
}

static void test_json_parse_strings_with_every_escape(void **state)
{
    stream_json_doc d;
    stream_json_doc_init(&d);
    const stream_json_value *v =
        parse_ok(&d, "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20AC\\ud834\\udd1e\\u0000.\"");
    static const char want[] = "\"\\/\b\f\n\r\tA\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e\0.";
    assert_int_equal(v->type, STREAM_JSON_STRING);
    assert_int_equal(v->str.len, sizeof want - 1);
    assert_memory_equal(v->str.p, want, sizeof want - 1);

    /* Without escapes the string points into the input. */
    const char *text = "\"plain \xc3\xa9\"";
    v = parse_ok(&d, text);
    assert_ptr_equal(v->str.p, text + 1);
    assert_int_equal(v->str.len, 8);
    stream_json_doc_release(&d);
}

static void test_json_parse_rejects_bad_strings(void **state)
{
    stream_json_doc d;
    stream_json_doc_init(&d);
    PARSE_ERROR(&d, "\"\\ud83d\"", "high surrogate \\ud83d not followed by a low one");
    PARSE_ERROR(&d, "\"\\ud83d\\u0041\"", "not followed by a low one");
    PARSE_ERROR(&d, "\"\\ud83dx\"", "not followed by a low one");
    PARSE_ERROR(&d, "\"\\ude00\"", "lone low surrogate \\ude00");
    PARSE_ERROR(&d, "\"ab\\q\"", "invalid escape '\\q' at column 4");
    PARSE_ERROR(&d, "\"\\\xc3\xa9\"", "invalid escape '\\' + byte 0xc3");
    PARSE_ERROR(&d, "\"\\u12G4\"", "'\\u' needs four hex digits");
    PARSE_ERROR(&d, "\"\\u12\"", "four hex digits");
    PARSE_ERROR(&d, "\"a\nb\"", "unescaped control character 0x0a in a string at column 3");
    PARSE_ERROR(&d, "\"\x01\"", "control character 0x01");
    PARSE_ERROR(&d, "\"ok\xff\"", "invalid UTF-8 in a string at column 4");
    PARSE_ERROR(&d, "\"\xed\xa0\x80\"", "invalid UTF-8");
    PARSE_ERROR(&d, "\"abc", "unterminated string at column 1");
    PARSE_ERROR(&d, "\"abc\\", "unterminated string");
    PARSE_ERROR(&d, "\"abc\\\"", "unterminated string");
    stream_json_doc_release(&d);
}

static void test_json_parse_rejects_bad_syntax_and_trailing_garbage(void **state)
{
    stream_json_doc d;
    stream_json_doc_init(&d);
    PARSE_ERROR(&d, "{} x", "trailing characters after the value at column 4");
    PARSE_ERROR(&d, "1 2", "trailing characters");
    PARSE_ERROR(&d, "\"a\"\"b\"", "trailing characters");
    PARSE_ERROR(&d, "[1,]", "unexpected ']', expected a value at column 4");
    PARSE_ERROR(&d, "{\"a\":1,}", "expected a member name in quotes");
    PARSE_ERROR(&d, "[1 2]", "expected ',' or ']'");
    PARSE_ERROR(&d, "{\"a\" 1}", "expected ':'");
    PARSE_ERROR(&d, "{a:1}", "expected a member name in quotes");
    PARSE_ERROR(&d, "{\"a\":1", "unexpected end of input, expected ',' or '}'");
    PARSE_ERROR(&d, "[", "unexpected end of input");
    PARSE_ERROR(&d, "01", "leading zero");
    PARSE_ERROR(&d, "1.", "expected a digit after '.'");
    PARSE_ERROR(&d, "-", "expected a digit");
    PARSE_ERROR(&d, "1e", "digit in the exponent");
    PARSE_ERROR(&d, "+1", "unexpected '+'");
    PARSE_ERROR(&d, "tru", "expected a value");
    PARSE_ERROR(&d, "nul", "expected a value");
    PARSE_ERROR(&d, "NaN", "expected a value");
    PARSE_ERROR(&d, "'x'", "unexpected '''");
    PARSE_ERROR(&d, "", "empty input");
    PARSE_ERROR(&d, "  \n", "empty input");
    PARSE_ERROR(&d, "\x01", "unexpected byte 0x01");
    PARSE_ERROR(&d, "[1]\0", "trailing characters");
    stream_json_doc_release(&d);
}

static void test_json_parse_limits_depth_and_size(void **state)
{
    stream_json_doc d;
    stream_json_doc_init(&d);
    char deep[200001];
    for (int i = 0; i < 64; i++) {
        deep[i] = '[';
        deep[128 - 1 - i] = ']';
    }
    const stream_json_value *v;
    assert_int_equal(stream_json_parse(&d, deep, 128, &v, NULL, 0), 0);
    int depth = 0;
    while (v->type == STREAM_JSON_ARRAY && v->arr.count == 1) {
        v = &v->arr.items[0];
        depth++;
    }
    assert_int_equal(depth, 63);

    for (int i = 0; i < 65; i++) {
        deep[i] = '[';
        deep[130 - 1 - i] = ']';
    }
    expect_parse_error(&d, deep, 130, "nesting deeper than 64 at column 65");

    /* Far deeper than any stack allows: the cap of 1000 keeps recursion bounded. */
    memset(deep, '[', 200000);
    d.max_depth = 100000;
    expect_parse_error(&d, deep, 200000, "nesting deeper than 1000");
    assert_int_equal(d.max_depth, 1000);

    d.max_bytes = 10;
    char err[128];
    assert_int_equal(stream_json_parse(&d, "[1,2,3,4,5]", 11, &v, err, sizeof err),
                     STREAM_ETOOLARGE);
    assert_non_null(strstr(err, "over the limit of 10"));
    assert_int_equal(stream_json_parse(&d, "[1,2,3,45]", 10, &v, err, sizeof err), 0);
    stream_json_doc_release(&d);
}

static void test_json_parse_objects_keep_order_and_duplicates(void **state)
{
    stream_json_doc d;
    stream_json_doc_init(&d);
    const stream_json_value *v =
        parse_ok(&d, "{ \"b\" : [1, {\"x\":null}] , \"a\":1, \"a\":2, \"\\u0041\":\"s\" }");
    assert_int_equal(v->type, STREAM_JSON_OBJECT);
    assert_int_equal(v->obj.count, 4);
    assert_memory_equal(v->obj.members[0].key, "b", 1);
    assert_memory_equal(v->obj.members[1].key, "a", 1);
    assert_memory_equal(v->obj.members[2].key, "a", 1);
    assert_memory_equal(v->obj.members[3].key, "A", 1);
    const stream_json_value *a = stream_json_object_get(v, "a");
    assert_int_equal(a->i, 1); /* the first of duplicates */
    assert_null(stream_json_object_get(v, "zz"));
    assert_null(stream_json_object_get(a, "a")); /* not an object */
    const stream_json_value *b = stream_json_object_get(v, "b");
    assert_int_equal(b->arr.count, 2);
    /* text is the value as written, for taking values as JSON text. */
    assert_int_equal(b->text_len, strlen("[1, {\"x\":null}]"));
    assert_memory_equal(b->text, "[1, {\"x\":null}]", b->text_len);
    assert_int_equal(b->arr.items[1].obj.members[0].value.type, STREAM_JSON_NULL);
    v = parse_ok(&d, "[]");
    assert_int_equal(v->arr.count, 0);
    v = parse_ok(&d, "{}");
    assert_int_equal(v->obj.count, 0);
    assert_string_equal(stream_json_type_name(STREAM_JSON_OBJECT), "object");
    stream_json_doc_release(&d);
}

static void test_json_doc_reuses_its_memory_across_lines(void **state)
{
    stream_json_doc d;
    stream_json_doc_init(&d);
    const char *line = "{\"k\":\"a\\nb\",\"h\":[[\"x\",\"y\"],[\"z\",null]],\"n\":[1,2,3,4,5,6,7]}";
    parse_ok(&d, line);
    struct stream_json_chunk *chunks = d.chunks;
    stream_json_member *stack = d.stack;
    size_t cap = d.stack_cap;
    for (int i = 0; i < 1000; i++)
        parse_ok(&d, line);
    assert_ptr_equal(d.chunks, chunks);
    assert_ptr_equal(d.stack, stack);
    assert_int_equal(d.stack_cap, cap);

    /* A big line grows the arena; the memory handed out is usable. */
    size_t big = 100000;
    char *text = malloc(big * 2 + 3);
    size_t n = 0;
    text[n++] = '[';
    for (size_t i = 0; i < big; i++) {
        text[n++] = '1';
        text[n++] = ',';
    }
    text[n - 1] = ']';
    const stream_json_value *v;
    assert_int_equal(stream_json_parse(&d, text, n, &v, NULL, 0), 0);
    assert_int_equal(v->arr.count, big);
    assert_int_equal(v->arr.items[big - 1].i, 1);
    void *p = stream_json_doc_alloc(&d, 1000);
    assert_non_null(p);
    memset(p, 0, 1000);
    free(text);
    stream_json_doc_release(&d);
}

static void test_json_parse_never_reads_past_len(void **state)
{
    static const char *docs[] = {
        "{\"a\":[1,-2.5e+3,true,false,null,\"x\\u00e9\\ud834\\udd1e\\n\"],\"b\":{}}",
        "\"\\u12",
        "-12345678901234567890123",
    };
    stream_json_doc d;
    stream_json_doc_init(&d);
    for (size_t k = 0; k < 3; k++) {
        size_t n = strlen(docs[k]);
        for (size_t len = 0; len <= n; len++) {
            char *p = malloc(len ? len : 1);
            memcpy(p, docs[k], len);
            const stream_json_value *v;
            int rc = stream_json_parse(&d, p, len, &v, NULL, 0);
            assert_true(rc == 0 || rc == STREAM_EINVAL);
            free(p);
        }
    }
    stream_json_doc_release(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_valid_accepts_and_rejects),
        cmocka_unit_test(test_json_string_fast_path_finds_every_special_byte),
        cmocka_unit_test(test_base64_known_vectors),
        cmocka_unit_test(test_base64_round_trips_every_length),
        cmocka_unit_test(test_base64_decode_rejects_bad_input),
        cmocka_unit_test(test_json_writer_escapes_strings),
        cmocka_unit_test(test_json_writer_output_always_parses),
        cmocka_unit_test(test_json_writer_tracks_commas_and_nesting),
        cmocka_unit_test(test_json_parse_scalars),
        cmocka_unit_test(test_json_parse_huge_numbers),
        cmocka_unit_test(test_json_parse_strings_with_every_escape),
        cmocka_unit_test(test_json_parse_rejects_bad_strings),
        cmocka_unit_test(test_json_parse_rejects_bad_syntax_and_trailing_garbage),
        cmocka_unit_test(test_json_parse_limits_depth_and_size),
        cmocka_unit_test(test_json_parse_objects_keep_order_and_duplicates),
        cmocka_unit_test(test_json_doc_reuses_its_memory_across_lines),
        cmocka_unit_test(test_json_parse_never_reads_past_len),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
