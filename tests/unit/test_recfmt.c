/*
 * test_recfmt.c - the lossless JSON-lines and MessagePack record formats:
 * exact writer layouts, round trips through the incremental readers (null vs
 * empty, binary, duplicate and null headers, large values), lenient input,
 * errors that name the line or record, hostile bytes, reading from a file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msgpack.h>

#include "stream/batch.h"
#include "stream/error.h"
#include "stream/recfmt.h"

#define H(name, value) {(const uint8_t *)(name), sizeof(name) - 1, (const uint8_t *)(value), sizeof(value) - 1}
#define HNULL(name) {(const uint8_t *)(name), sizeof(name) - 1, NULL, -1}

static uint64_t rng = 0x2545f4914f6cdd1du;
static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static stream_fmt_record make(const char *topic, int32_t partition, int64_t offset, int64_t ts,
                              const void *key, int32_t klen, const void *value, int32_t vlen,
                              const stream_header *h, size_t nh)
{
    stream_fmt_record r;
    memset(&r, 0, sizeof r);
    r.topic = topic;
    r.topic_len = strlen(topic);
    r.partition = partition;
    r.offset = offset;
    r.timestamp = ts;
    r.key = key;
    r.key_len = klen;
    r.value = value;
    r.value_len = vlen;
    r.headers = h;
    r.header_count = nh;
    return r;
}

static void assert_bytes(const uint8_t *p, int32_t len, const uint8_t *wp, int32_t wlen)
{
    assert_int_equal(len, wlen);
    if (wlen < 0)
        assert_null(p);
    else
        assert_non_null(p); /* empty is not null */
    if (wlen > 0)
        assert_memory_equal(p, wp, (size_t)wlen);
}

/* Everything the formats carry must come back unchanged. */
static void assert_same_record(const stream_recfmt_in *in, const stream_fmt_record *want)
{
    assert_true(in->has_topic);
    assert_int_equal(in->rec.topic_len, want->topic_len);
    assert_memory_equal(in->rec.topic, want->topic, want->topic_len);
    assert_int_equal(in->rec.partition, want->partition);
    assert_int_equal(in->rec.offset, want->offset);
    assert_int_equal(in->rec.timestamp, want->timestamp);
    assert_int_equal(in->has_timestamp, want->timestamp >= 0);
    assert_bytes(in->rec.key, in->rec.key_len, want->key, want->key_len);
    assert_bytes(in->rec.value, in->rec.value_len, want->value, want->value_len);
    assert_int_equal(in->rec.header_count, want->header_count);
    for (size_t i = 0; i < want->header_count; i++) {
        const stream_header *a = &in->rec.headers[i], *b = &want->headers[i];
        assert_bytes(a->name, a->name_len, b->name, b->name_len);
        assert_bytes(a->value, a->value_len, b->value, b->value_len);
    }
}

static int write_rec(stream_recfmt_kind kind, stream_buf *out, const stream_fmt_record *r)
{
    return kind == STREAM_RECFMT_JSON ? stream_recfmt_write_json(out, r)
                                      : stream_recfmt_write_msgpack(out, r);
}

/* Feeds bytes to a reader `chunk` bytes at a time and checks the records that
 * come out against want[0..n). */
static void read_back(stream_recfmt_kind kind, const stream_buf *bytes, size_t chunk,
                      const stream_fmt_record *want, size_t n)
{
    stream_recfmt_reader r;
    stream_recfmt_reader_init(&r, kind);
    stream_recfmt_in in;
    char err[512] = "";
    size_t got = 0, pos = 0;
    int rc;
    for (;;) {
        while ((rc = stream_recfmt_reader_next(&r, &in, err, sizeof err)) == 1) {
            assert_true(got < n);
            assert_same_record(&in, &want[got]);
            got++;
        }
        if (rc < 0)
            fail_msg("reader failed: %s", err);
        if (pos == bytes->len) {
            if (r.eof)
                break;
            stream_recfmt_reader_eof(&r);
            continue;
        }
        size_t take = bytes->len - pos < chunk ? bytes->len - pos : chunk;
        assert_int_equal(stream_recfmt_reader_feed(&r, bytes->data + pos, take), 0);
        pos += take;
    }
    assert_int_equal(got, n);
    assert_int_equal(r.records, n);
    assert_int_equal(r.consumed, bytes->len);
    stream_recfmt_reader_release(&r);
}

static void test_recfmt_json_writer_layout_is_exact(void **state)
{
    static const stream_header h[] = {
        H("name", "value"),
        HNULL("name"),
        H("bin", "\xff\x01"),
        H("\xfe", "v"),
    };
    stream_fmt_record r =
        make("t", 0, 42, INT64_C(1732442400000), "k", 1, "\xff\x00\x01", 3, h, 4);
    stream_buf b = STREAM_BUF_INIT;
    assert_int_equal(stream_recfmt_write_json(&b, &r), 0);
    const char *want =
        "{\"topic\":\"t\",\"partition\":0,\"offset\":42,\"timestamp\":1732442400000,"
        "\"key\":\"k\",\"key_encoding\":\"utf8\",\"value\":\"/wAB\",\"value_encoding\":\"base64\","
        "\"headers\":[[\"name\",\"value\"],[\"name\",null],[\"bin\",\"/wE=\",\"base64\"],"
        "[\"/g==\",\"v\",\"utf8\",\"base64\"]]}\n";
    if (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0)
        fail_msg("got  %.*s\nwant %s", (int)b.len, (const char *)b.data, want);

    /* Null key, empty value, control characters and NUL in UTF-8 text. */
    stream_buf_reset(&b);
    r = make("t", 1, 0, 0, NULL, -1, "a\0\n\"", 4, NULL, 0);
    assert_int_equal(stream_recfmt_write_json(&b, &r), 0);
    want = "{\"topic\":\"t\",\"partition\":1,\"offset\":0,\"timestamp\":0,"
           "\"key\":null,\"key_encoding\":\"utf8\",\"value\":\"a\\u0000\\n\\\"\","
           "\"value_encoding\":\"utf8\",\"headers\":[]}\n";
    if (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0)
        fail_msg("got  %.*s\nwant %s", (int)b.len, (const char *)b.data, want);
    stream_buf_release(&b);
}

static void test_recfmt_msgpack_writer_layout_matches_spec(void **state)
{
    static const stream_header h[] = {H("a", "1"), HNULL("b")};
    stream_fmt_record r = make("orders", 2, 7, 1000, NULL, -1, "", 0, h, 2);
    stream_buf b = STREAM_BUF_INIT;
    assert_int_equal(stream_recfmt_write_msgpack(&b, &r), 0);

    /* Read it with msgpack-c, independently of our reader. */
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, (const char *)b.data, b.len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, b.len);
    msgpack_object o = u.data;
    assert_int_equal(o.type, MSGPACK_OBJECT_MAP);
    assert_int_equal(o.via.map.size, 7);
    static const char *keys[] = {"topic", "partition", "offset", "timestamp",
                                 "key",   "value",     "headers"};
    for (int i = 0; i < 7; i++) {
        msgpack_object k = o.via.map.ptr[i].key;
        assert_int_equal(k.type, MSGPACK_OBJECT_STR);
        assert_int_equal(k.via.str.size, strlen(keys[i]));
        assert_memory_equal(k.via.str.ptr, keys[i], k.via.str.size);
    }
    msgpack_object_kv *kv = o.via.map.ptr;
    assert_int_equal(kv[0].val.type, MSGPACK_OBJECT_STR);
    assert_int_equal(kv[1].val.via.u64, 2);
    assert_int_equal(kv[2].val.via.u64, 7);
    assert_int_equal(kv[3].val.via.u64, 1000);
    assert_int_equal(kv[4].val.type, MSGPACK_OBJECT_NIL);
    assert_int_equal(kv[5].val.type, MSGPACK_OBJECT_BIN);
    assert_int_equal(kv[5].val.via.bin.size, 0);
    msgpack_object hs = kv[6].val;
    assert_int_equal(hs.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(hs.via.array.size, 2);
    msgpack_object h0 = hs.via.array.ptr[0], h1 = hs.via.array.ptr[1];
    assert_int_equal(h0.via.array.size, 2);
    assert_int_equal(h0.via.array.ptr[0].type, MSGPACK_OBJECT_BIN);
    assert_int_equal(h0.via.array.ptr[1].type, MSGPACK_OBJECT_BIN);
    assert_int_equal(h1.via.array.ptr[1].type, MSGPACK_OBJECT_NIL);
    msgpack_unpacked_destroy(&u);
    stream_buf_release(&b);
}

/* The records every round trip must preserve. */
typedef struct corpus {
    stream_fmt_record recs[12];
    size_t n;
    uint8_t *big_binary;
    char *big_text;
} corpus;

static const stream_header dup_null_headers[] = {
    H("trace", "abc"), H("trace", "def"), HNULL("trace"), H("", ""), HNULL("empty-name-next"),
    H("bin\0name", "\x00\xff\xfe"), H("\xc3\x28", "x"),
};

static void corpus_init(corpus *c)
{
    size_t big = (size_t)1 << 20;
    c->big_binary = malloc(big);
    for (size_t i = 0; i < big; i++)
        c->big_binary[i] = (uint8_t)next_rand();
    c->big_text = malloc(big);
    for (size_t i = 0; i < big; i++)
        c->big_text[i] = (char)('a' + i % 26);
    memcpy(c->big_text + 100, "\xc3\xa9\n\"\\", 5);
    size_t n = 0;
    c->recs[n++] = make("t", 0, 0, 1, NULL, -1, NULL, -1, NULL, 0); /* null key, tombstone */
    c->recs[n++] = make("t", 0, 1, 2, "", 0, "", 0, NULL, 0);       /* empty, not null */
    c->recs[n++] = make("t", 1, 2, 3, "k", 1, NULL, -1, NULL, 0);
    c->recs[n++] = make("t", 1, 3, 4, NULL, -1, "", 0, NULL, 0);
    c->recs[n++] = make("topic.with-dots_1", 7, INT64_C(9007199254740993),
                        INT64_C(1795514400123), "\x00key\x00", 5, "v\x00\xff\xc3\x28z", 6, NULL,
                        0);
    c->recs[n++] = make("t", 2, 5, 5, "k", 1, "v", 1, dup_null_headers,
                        sizeof dup_null_headers / sizeof dup_null_headers[0]);
    c->recs[n++] = make("t", 2, 6, 6, "\xc3\xa9t\xc3\xa9", 5, "\xf0\x9d\x84\x9e \t\r\n\x01", 10,
                        NULL, 0);
    c->recs[n++] = make("t", 3, 7, 7, "big", 3, c->big_binary, (int32_t)big, NULL, 0);
    c->recs[n++] = make("t", 3, 8, 8, "bigtext", 7, c->big_text, (int32_t)big, dup_null_headers,
                        2);
    c->recs[n++] = make("t", 0, 9, -1, NULL, -1, "no timestamp", 12, NULL, 0);
    c->n = n;
}

static void corpus_free(corpus *c)
{
    free(c->big_binary);
    free(c->big_text);
}

static void round_trip(stream_recfmt_kind kind)
{
    corpus c;
    corpus_init(&c);
    stream_buf b = STREAM_BUF_INIT;
    for (size_t i = 0; i < c.n; i++)
        assert_int_equal(write_rec(kind, &b, &c.recs[i]), 0);
    read_back(kind, &b, b.len, c.recs, c.n);  /* all at once */
    read_back(kind, &b, 65536, c.recs, c.n);  /* pipe-sized reads */
    read_back(kind, &b, 4093, c.recs, c.n);   /* odd sizes */
    stream_buf_release(&b);

    /* Byte by byte for the small ones: records split at every position. */
    stream_buf_init(&b);
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(write_rec(kind, &b, &c.recs[i]), 0);
    read_back(kind, &b, 1, c.recs, 7);
    stream_buf_release(&b);
    corpus_free(&c);
}

static void test_recfmt_json_round_trip_is_lossless(void **state)
{
    round_trip(STREAM_RECFMT_JSON);
}

static void test_recfmt_msgpack_round_trip_is_lossless(void **state)
{
    round_trip(STREAM_RECFMT_MSGPACK);
}

/* Consumer side (encoded headers from a batch) -> format -> reader -> builder:
 * what `stream-sub --json | stream-pub --json` does. */
static void pipe_through_batches(stream_recfmt_kind kind)
{
    static const stream_header h[] = {H("a", "1"), HNULL("a"), H("\x00", "\xff")};
    stream_batch_builder bb;
    const uint8_t *bytes;
    size_t len;
    stream_batch_builder_init(&bb);
    assert_int_equal(stream_batch_builder_append(&bb, 100, "k", 1, "\xff\x00", 2, h, 3), 0);
    assert_int_equal(stream_batch_builder_append(&bb, 101, NULL, -1, NULL, -1, NULL, 0), 0);
    assert_int_equal(stream_batch_builder_finish(&bb, &bytes, &len), 0);

    stream_buf out = STREAM_BUF_INIT;
    stream_record_iter it;
    stream_record rec;
    assert_int_equal(stream_record_iter_start(&it, bytes, len), 0);
    while (stream_record_iter_next(&it, &rec) == 1) {
        stream_fmt_record fr;
        stream_fmt_record_from_record(&fr, "src", 3, 4, &rec);
        assert_int_equal(write_rec(kind, &out, &fr), 0);
    }
    stream_record_iter_stop(&it);

    /* Read back and append straight into a new batch. */
    stream_batch_builder b2;
    stream_batch_builder_init(&b2);
    stream_recfmt_reader r;
    stream_recfmt_reader_init(&r, kind);
    assert_int_equal(stream_recfmt_reader_feed(&r, out.data, out.len), 0);
    stream_recfmt_reader_eof(&r);
    stream_recfmt_in in;
    char err[256];
    int rc;
    while ((rc = stream_recfmt_reader_next(&r, &in, err, sizeof err)) == 1) {
        assert_true(in.has_topic && in.has_partition && in.has_offset && in.has_timestamp);
        assert_int_equal(in.rec.partition, 4);
        assert_int_equal(stream_batch_builder_append(&b2, in.rec.timestamp, in.rec.key,
                                                     in.rec.key_len, in.rec.value,
                                                     in.rec.value_len, in.rec.headers,
                                                     in.rec.header_count),
                         0);
    }
    assert_int_equal(rc, 0);
    const uint8_t *bytes2;
    size_t len2;
    assert_int_equal(stream_batch_builder_finish(&b2, &bytes2, &len2), 0);
    /* The same records give the same batch, byte for byte. */
    assert_int_equal(len2, len);
    assert_memory_equal(bytes2, bytes, len);
    stream_recfmt_reader_release(&r);
    stream_batch_builder_release(&b2);
    stream_batch_builder_release(&bb);
    stream_buf_release(&out);
}

static void test_recfmt_pipe_from_batch_to_batch_is_byte_identical(void **state)
{
    pipe_through_batches(STREAM_RECFMT_JSON);
    pipe_through_batches(STREAM_RECFMT_MSGPACK);
}

/* Parses one JSON line with a fresh reader; returns rc and leaves the record
 * (valid while r lives) in *in. */
static int parse_line(stream_recfmt_reader *r, const char *line, stream_recfmt_in *in, char *err,
                      size_t err_len)
{
    return stream_recfmt_parse_json(r, line, strlen(line), in, err, err_len);
}

static void test_recfmt_json_reader_accepts_lenient_input(void **state)
{
    stream_recfmt_reader r;
    stream_recfmt_reader_init(&r, STREAM_RECFMT_JSON);
    stream_recfmt_in in;
    char err[256] = "";

    assert_int_equal(parse_line(&r, "{\"value\":\"x\"}", &in, err, sizeof err), 0);
    assert_false(in.has_topic || in.has_partition || in.has_offset || in.has_timestamp);
    assert_int_equal(in.rec.key_len, -1);
    assert_null(in.rec.key);
    assert_bytes(in.rec.value, in.rec.value_len, (const uint8_t *)"x", 1);
    assert_int_equal(in.rec.timestamp, -1);
    assert_int_equal(in.rec.partition, -1);
    assert_int_equal(in.rec.header_count, 0);
    assert_null(in.rec.headers);

    assert_int_equal(parse_line(&r, " {\"key\":\"k\",\"value\":\"v\"}\r\n", &in, err, sizeof err),
                     0);
    assert_bytes(in.rec.key, in.rec.key_len, (const uint8_t *)"k", 1);

    /* Non-string values are their JSON text, exactly as written. */
    assert_int_equal(parse_line(&r, "{\"value\":{\"a\": [1, 2]}}", &in, err, sizeof err), 0);
    assert_bytes(in.rec.value, in.rec.value_len, (const uint8_t *)"{\"a\": [1, 2]}", 13);
    assert_int_equal(parse_line(&r, "{\"key\":42,\"value\":-1.5e3}", &in, err, sizeof err), 0);
    assert_bytes(in.rec.key, in.rec.key_len, (const uint8_t *)"42", 2);
    assert_bytes(in.rec.value, in.rec.value_len, (const uint8_t *)"-1.5e3", 6);
    assert_int_equal(parse_line(&r, "{\"value\":true}", &in, err, sizeof err), 0);
    assert_bytes(in.rec.value, in.rec.value_len, (const uint8_t *)"true", 4);

    /* null is a tombstone, "" is an empty value. */
    assert_int_equal(parse_line(&r, "{\"value\":null}", &in, err, sizeof err), 0);
    assert_int_equal(in.rec.value_len, -1);
    assert_int_equal(parse_line(&r, "{\"value\":\"\",\"key\":\"\"}", &in, err, sizeof err), 0);
    assert_int_equal(in.rec.value_len, 0);
    assert_int_equal(in.rec.key_len, 0);

    /* Headers as an object keep their order and duplicates. */
    assert_int_equal(parse_line(&r, "{\"headers\":{\"h1\":\"v1\",\"h2\":null,\"h1\":3},\"value\":\"x\"}",
                                &in, err, sizeof err),
                     0);
    assert_int_equal(in.rec.header_count, 3);
    assert_bytes(in.rec.headers[0].name, in.rec.headers[0].name_len, (const uint8_t *)"h1", 2);
    assert_bytes(in.rec.headers[0].value, in.rec.headers[0].value_len, (const uint8_t *)"v1", 2);
    assert_int_equal(in.rec.headers[1].value_len, -1);
    assert_bytes(in.rec.headers[2].value, in.rec.headers[2].value_len, (const uint8_t *)"3", 1);

    /* Timestamps: ms, the time grammar, or -1/null for "now". */
    assert_int_equal(parse_line(&r, "{\"value\":\"x\",\"timestamp\":\"2026-11-24T10:00:00.5Z\"}",
                                &in, err, sizeof err),
                     0);
    assert_true(in.has_timestamp);
    assert_int_equal(in.rec.timestamp, INT64_C(1795514400500));
    assert_int_equal(parse_line(&r, "{\"value\":\"x\",\"timestamp\":-1}", &in, err, sizeof err),
                     0);
    assert_false(in.has_timestamp);
    assert_int_equal(parse_line(&r, "{\"value\":\"x\",\"timestamp\":null,\"partition\":-1}", &in,
                                err, sizeof err),
                     0);
    assert_false(in.has_timestamp || in.has_partition);

    assert_int_equal(parse_line(&r, "{\"topic\":\"t\",\"partition\":2,\"offset\":5,\"value\":\"x\"}",
                                &in, err, sizeof err),
                     0);
    assert_true(in.has_topic && in.has_partition && in.has_offset);
    assert_int_equal(in.rec.partition, 2);
    assert_int_equal(in.rec.offset, 5);

    /* Base64 keys; encodings may be given for null values. */
    assert_int_equal(parse_line(&r,
                                "{\"key\":\"AAE=\",\"key_encoding\":\"base64\",\"value\":null,"
                                "\"value_encoding\":\"base64\"}",
                                &in, err, sizeof err),
                     0);
    assert_bytes(in.rec.key, in.rec.key_len, (const uint8_t *)"\x00\x01", 2);
    assert_int_equal(in.rec.value_len, -1);

    /* Unknown fields only with the flag. */
    assert_int_equal(parse_line(&r, "{\"value\":\"x\",\"note\":{\"a\":1}}", &in, err, sizeof err),
                     STREAM_EINVAL);
    r.flags = STREAM_RECFMT_IGNORE_UNKNOWN;
    assert_int_equal(parse_line(&r, "{\"value\":\"x\",\"note\":{\"a\":1}}", &in, err, sizeof err),
                     0);
    stream_recfmt_reader_release(&r);
}

static void test_recfmt_json_reader_skips_blank_lines_and_reads_last_line(void **state)
{
    const char *input = "\n{\"value\":\"a\"}\r\n  \n\t\r\n{\"value\":\"b\"}\n\n{\"value\":\"c\"}";
    stream_recfmt_reader r;
    stream_recfmt_reader_init(&r, STREAM_RECFMT_JSON);
    assert_int_equal(stream_recfmt_reader_feed(&r, input, strlen(input)), 0);
    stream_recfmt_in in;
    char err[256];
    const char *want[] = {"a", "b"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(stream_recfmt_reader_next(&r, &in, err, sizeof err), 1);
        assert_bytes(in.rec.value, in.rec.value_len, (const uint8_t *)want[i], 1);
    }
    /* The last line has no newline: it waits for more input or EOF. */
    assert_int_equal(stream_recfmt_reader_next(&r, &in, err, sizeof err), 0);
    stream_recfmt_reader_eof(&r);
    assert_int_equal(stream_recfmt_reader_feed(&r, "x", 1), STREAM_EINVAL);
    assert_int_equal(stream_recfmt_reader_next(&r, &in, err, sizeof err), 1);
    assert_bytes(in.rec.value, in.rec.value_len, (const uint8_t *)"c", 1);
    assert_int_equal(r.line, 7);
    assert_int_equal(stream_recfmt_reader_next(&r, &in, err, sizeof err), 0);
    assert_int_equal(r.records, 3);
    stream_recfmt_reader_release(&r);
}

static void test_recfmt_json_reader_errors_name_the_line(void **state)
{
    struct {
        const char *line, *needle;
        int rc;
    } bad[] = {
        {"{\"vlaue\":\"x\"}", "line 2: unknown field \"vlaue\"", STREAM_EINVAL},
        {"{\"key\":\"k\"}", "line 2: missing \"value\" (write \"value\":null for a tombstone)",
         STREAM_EINVAL},
        {"[1]", "line 2: expected a JSON object, got array", STREAM_EINVAL},
        {"{\"value\":\"x\"} x", "line 2: trailing characters after the value at column 15",
         STREAM_EINVAL},
        {"{\"value\":\"x}", "line 2: unterminated string at column 10", STREAM_EINVAL},
        {"{\"value\":\"!!\",\"value_encoding\":\"base64\"}",
         "\"value\": invalid base64 character '!' at position 1", STREAM_EINVAL},
        {"{\"value\":1,\"value_encoding\":\"base64\"}",
         "\"value\" is marked base64 but is a JSON integer", STREAM_EINVAL},
        {"{\"value\":\"x\",\"value_encoding\":\"hex\"}",
         "\"value_encoding\" must be \"utf8\" or \"base64\"", STREAM_EINVAL},
        {"{\"value\":\"x\",\"partition\":\"0\"}", "\"partition\" must be an integer, not string",
         STREAM_EINVAL},
        {"{\"value\":\"x\",\"partition\":2147483648}", "\"partition\" 2147483648 is out of range",
         STREAM_EINVAL},
        {"{\"value\":\"x\",\"offset\":1.5}", "\"offset\" must be an integer within 64 bits, not 1.5",
         STREAM_EINVAL},
        {"{\"value\":\"x\",\"offset\":99999999999999999999}", "within 64 bits", STREAM_EINVAL},
        {"{\"value\":\"x\",\"timestamp\":-5}", "\"timestamp\" -5 is negative", STREAM_EINVAL},
        {"{\"value\":\"x\",\"timestamp\":\"2026-13-01\"}",
         "\"timestamp\": bad time '2026-13-01': month 13", STREAM_EINVAL},
        {"{\"value\":\"x\",\"headers\":[[\"a\"]]}", "header 1 must be [name, value]",
         STREAM_EINVAL},
        {"{\"value\":\"x\",\"headers\":[[\"a\",\"b\"],[1,\"v\"]]}",
         "header 2's name must be a string, not integer", STREAM_EINVAL},
        {"{\"value\":\"x\",\"headers\":[[\"a\",\"b\",\"rot13\"]]}",
         "header 1's encoding must be \"utf8\" or \"base64\"", STREAM_EINVAL},
        {"{\"value\":\"x\",\"headers\":\"a=b\"}", "\"headers\" must be an array", STREAM_EINVAL},
        {"{\"value\":\"x\",\"value\":\"y\"}", "field \"value\" given twice", STREAM_EINVAL},
        {"{\"value\":\"x\",\"topic\":5}", "\"topic\" must be a string, not integer",
         STREAM_EINVAL},
        {"{\"value\":\"x\",\"\\u0001\":1}", "unknown field \"\\x01\"", STREAM_EINVAL},
        {"{\"value\":\"\xff\"}", "line 2: invalid UTF-8 in a string", STREAM_EINVAL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        stream_recfmt_reader r;
        stream_recfmt_reader_init(&r, STREAM_RECFMT_JSON);
        stream_buf in = STREAM_BUF_INIT;
        stream_buf_put(&in, "{\"value\":\"ok\"}\n", 15);
        stream_buf_put(&in, bad[i].line, strlen(bad[i].line));
        stream_buf_put(&in, "\n{\"value\":\"never\"}\n", 19);
        assert_int_equal(stream_recfmt_reader_feed(&r, in.data, in.len), 0);
        stream_recfmt_in rec;
        char err[512] = "";
        assert_int_equal(stream_recfmt_reader_next(&r, &rec, err, sizeof err), 1);
        int rc = stream_recfmt_reader_next(&r, &rec, err, sizeof err);
        if (rc != bad[i].rc || strstr(err, bad[i].needle) == NULL)
            fail_msg("%s: rc %d, message '%s' lacks '%s'", bad[i].line, rc, err, bad[i].needle);
        /* The reader stops: the good line after the bad one is not returned. */
        assert_int_equal(stream_recfmt_reader_next(&r, &rec, err, sizeof err), bad[i].rc);
        assert_non_null(strstr(err, "earlier error"));
        stream_buf_release(&in);
        stream_recfmt_reader_release(&r);
    }
}

static void test_recfmt_json_reader_refuses_long_lines_early(void **state)
{
    stream_recfmt_reader r;
    stream_recfmt_reader_init(&r, STREAM_RECFMT_JSON);
    r.max_record_bytes = 100;
    stream_recfmt_in in;
    char err[256] = "";
    char chunk[60];
    memset(chunk, ' ', sizeof chunk);
    chunk[0] = '{';
    assert_int_equal(stream_recfmt_reader_feed(&r, chunk, sizeof chunk), 0);
    assert_int_equal(stream_recfmt_reader_next(&r, &in, err, sizeof err), 0);
    /* No newline yet, but already past the limit: refused before buffering more. */
    assert_int_equal(stream_recfmt_reader_feed(&r, chunk, sizeof chunk), 0);
    assert_int_equal(stream_recfmt_reader_next(&r, &in, err, sizeof err), STREAM_ETOOLARGE);
    assert_non_null(strstr(err, "line 1: longer than the limit of 100 bytes"));
    stream_recfmt_reader_release(&r);

    /* A line just under the limit is fine. */
    stream_recfmt_reader_init(&r, STREAM_RECFMT_JSON);
    r.max_record_bytes = 100;
    char line[101];
    memset(line, ' ', sizeof line);
    memcpy(line, "{\"value\":\"x\"}", 13);
    line[100] = '\n';
    assert_int_equal(stream_recfmt_reader_feed(&r, line, sizeof line), 0);
    assert_int_equal(stream_recfmt_reader_next(&r, &in, err, sizeof err), 1);
    stream_recfmt_reader_release(&r);
}

/* What a JSON reader made of an input: the values, the final code and
 * message, the line it stopped at. */
typedef struct json_outcome {
    char values[256]; /* "a|b|" */
    int rc;
    char err[256];
    uint64_t line;
} json_outcome;

/* Reads input[0..len) fed in the pieces that end at cuts[0..ncuts) (then
 * the rest), taking records after every piece as stream-pub does, then EOF. */
static void read_in_pieces(const char *input, size_t len, const size_t *cuts, size_t ncuts,
                           json_outcome *o)
{
    stream_recfmt_reader r;
    stream_recfmt_reader_init(&r, STREAM_RECFMT_JSON);
    r.max_record_bytes = 16;
    memset(o, 0, sizeof *o);
    stream_recfmt_in in;
    size_t from = 0;
    int rc = 0;
    for (size_t k = 0; k <= ncuts && rc == 0; k++) {
        size_t to = k < ncuts ? cuts[k] : len;
        assert_int_equal(stream_recfmt_reader_feed(&r, input + from, to - from), 0);
        from = to;
        if (k == ncuts)
            stream_recfmt_reader_eof(&r);
        while ((rc = stream_recfmt_reader_next(&r, &in, o->err, sizeof o->err)) == 1) {
            size_t at = strlen(o->values);
            assert_true(at + (size_t)in.rec.value_len + 2 < sizeof o->values);
            memcpy(o->values + at, in.rec.value, (size_t)in.rec.value_len);
            strcpy(o->values + at + (size_t)in.rec.value_len, "|");
        }
    }
    o->rc = rc;
    if (rc == 0)
        o->err[0] = '\0';
    o->line = r.line;
    stream_recfmt_reader_release(&r);
}

static void assert_same_outcome(const json_outcome *want, const json_outcome *got,
                                const char *input, const size_t *cuts, size_t ncuts)
{
    if (want->rc == got->rc && want->line == got->line && strcmp(want->values, got->values) == 0 &&
        strcmp(want->err, got->err) == 0)
        return;
    fail_msg("input \"%s\" cut at %zu,%zu (%zu cuts): whole gave [%s] rc %d line %" PRIu64
             " '%s', pieces gave [%s] rc %d line %" PRIu64 " '%s'",
             input, ncuts > 0 ? cuts[0] : 0, ncuts > 1 ? cuts[1] : 0, ncuts, want->values,
             want->rc, want->line, want->err, got->values, got->rc, got->line, got->err);
}

/* The same bytes give the same records, the same error at the same line,
 * however they are cut: whole, in two or three pieces at every place, one
 * byte at a time. The blank line longer than the limit used to be refused
 * only when it arrived without its "\n". */
static void test_recfmt_json_reader_result_does_not_depend_on_chunking(void **state)
{
    static const char *const inputs[] = {
        "{\"value\":\"a\"}\n                 \n{\"value\":\"b\"}\n", /* long blank line */
        "\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\n",                        /* found by fuzz_recfmt */
        "{\"value\":\"a\"}\n\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t",         /* ... at EOF */
        "{\"value\":\"a\"}\n\n  \n\t\r\n{\"value\":\"bb\"}\r\n",          /* short blanks, 16 */
        "{\"value\":\"a\"}\n{\"value\":\"abcde\"}\n{\"value\":\"c\"}\n",  /* 17 bytes of JSON */
        "{\"value\":\"a\"}\n{\"value\":\"ab\"}   \n",                     /* 17 with spaces */
        "{\"value\":\"a\"}\n{\"value\":\"b\"}",                          /* last line at EOF */
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        const char *input = inputs[i];
        size_t len = strlen(input);
        json_outcome whole, got;
        read_in_pieces(input, len, NULL, 0, &whole);
        if (i < 3)
            assert_int_equal(whole.rc, STREAM_ETOOLARGE); /* the cases of the bug */
        size_t cuts[64];
        for (size_t a = 0; a <= len; a++) {
            cuts[0] = a;
            read_in_pieces(input, len, cuts, 1, &got);
            assert_same_outcome(&whole, &got, input, cuts, 1);
            for (size_t b = a; b <= len; b++) {
                cuts[1] = b;
                read_in_pieces(input, len, cuts, 2, &got);
                assert_same_outcome(&whole, &got, input, cuts, 2);
            }
        }
        assert_true(len < 64);
        for (size_t a = 0; a < len; a++)
            cuts[a] = a + 1;
        read_in_pieces(input, len, cuts, len, &got);
        assert_same_outcome(&whole, &got, input, cuts, len);
    }
}

/* Packs a map of key/value pairs given as callbacks into a buffer. */
static int pk_write(void *data, const char *p, size_t len)
{
    stream_buf_put(data, p, len);
    return 0;
}

static void pk_key(msgpack_packer *pk, const char *k)
{
    msgpack_pack_str(pk, strlen(k));
    msgpack_pack_str_body(pk, k, strlen(k));
}

static void pk_bin(msgpack_packer *pk, const char *v)
{
    msgpack_pack_bin(pk, strlen(v));
    msgpack_pack_bin_body(pk, v, strlen(v));
}

/* Feeds bytes to a fresh MessagePack reader (after a good record) and
 * expects the second record to fail with rc and a message containing needle. */
static void expect_mp_error(const stream_buf *bad, bool at_eof, int want_rc, const char *needle,
                            size_t max_record)
{
    stream_buf in = STREAM_BUF_INIT;
    stream_fmt_record good = make("t", 0, 0, 0, NULL, -1, "ok", 2, NULL, 0);
    assert_int_equal(stream_recfmt_write_msgpack(&in, &good), 0);
    size_t first = in.len;
    stream_buf_put(&in, bad->data, bad->len);
    stream_recfmt_reader r;
    stream_recfmt_reader_init(&r, STREAM_RECFMT_MSGPACK);
    if (max_record)
        r.max_record_bytes = max_record;
    assert_int_equal(stream_recfmt_reader_feed(&r, in.data, in.len), 0);
    if (at_eof)
        stream_recfmt_reader_eof(&r);
    stream_recfmt_in rec;
    char err[512] = "";
    assert_int_equal(stream_recfmt_reader_next(&r, &rec, err, sizeof err), 1);
    int rc = stream_recfmt_reader_next(&r, &rec, err, sizeof err);
    if (rc != want_rc || strstr(err, needle) == NULL)
        fail_msg("rc %d (want %d), message '%s' lacks '%s'", rc, want_rc, err, needle);
    char where[64];
    snprintf(where, sizeof where, "record 2 (byte %zu): ", first);
    if (strstr(err, where) == NULL)
        fail_msg("message '%s' does not say '%s'", err, where);
    assert_int_equal(stream_recfmt_reader_next(&r, &rec, err, sizeof err), want_rc);
    stream_recfmt_reader_release(&r);
    stream_buf_release(&in);
}

static void test_recfmt_msgpack_reader_errors_name_the_record(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, pk_write);

    msgpack_pack_array(&pk, 1);
    msgpack_pack_nil(&pk);
    expect_mp_error(&b, false, STREAM_EINVAL, "expected a map, got array", 0);

    stream_buf_reset(&b);
    stream_buf_put(&b, "\x81\xc1", 2);
    expect_mp_error(&b, false, STREAM_EINVAL, "invalid MessagePack byte 0xc1", 0);

    stream_buf_reset(&b);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_nil(&pk);
    expect_mp_error(&b, false, STREAM_EINVAL, "a field name must be str, not integer", 0);

    stream_buf_reset(&b);
    msgpack_pack_map(&pk, 1);
    pk_key(&pk, "value");
    msgpack_pack_int(&pk, 5);
    expect_mp_error(&b, false, STREAM_EINVAL, "\"value\" must be bin, str or nil, not integer", 0);

    stream_buf_reset(&b);
    msgpack_pack_map(&pk, 1);
    pk_key(&pk, "key");
    pk_bin(&pk, "k");
    expect_mp_error(&b, false, STREAM_EINVAL, "missing \"value\"", 0);

    stream_buf_reset(&b);
    msgpack_pack_map(&pk, 2);
    pk_key(&pk, "vlaue");
    pk_bin(&pk, "x");
    pk_key(&pk, "value");
    pk_bin(&pk, "x");
    expect_mp_error(&b, false, STREAM_EINVAL, "unknown field \"vlaue\"", 0);

    stream_buf_reset(&b);
    msgpack_pack_map(&pk, 2);
    pk_key(&pk, "value");
    pk_bin(&pk, "x");
    pk_key(&pk, "partition");
    msgpack_pack_int64(&pk, INT64_C(1) << 40);
    expect_mp_error(&b, false, STREAM_EINVAL, "\"partition\" 1099511627776 is out of range", 0);

    stream_buf_reset(&b);
    msgpack_pack_map(&pk, 2);
    pk_key(&pk, "value");
    pk_bin(&pk, "x");
    pk_key(&pk, "offset");
    msgpack_pack_uint64(&pk, UINT64_MAX);
    expect_mp_error(&b, false, STREAM_EINVAL, "\"offset\" 18446744073709551615 is out of range",
                    0);

    stream_buf_reset(&b);
    msgpack_pack_map(&pk, 2);
    pk_key(&pk, "value");
    pk_bin(&pk, "x");
    pk_key(&pk, "value");
    pk_bin(&pk, "y");
    expect_mp_error(&b, false, STREAM_EINVAL, "field \"value\" given twice", 0);

    stream_buf_reset(&b);
    msgpack_pack_map(&pk, 2);
    pk_key(&pk, "value");
    pk_bin(&pk, "x");
    pk_key(&pk, "headers");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 3);
    pk_bin(&pk, "a");
    pk_bin(&pk, "b");
    pk_bin(&pk, "c");
    expect_mp_error(&b, false, STREAM_EINVAL, "header 1 must be a [name, value] array of 2", 0);

    stream_buf_reset(&b);
    msgpack_pack_map(&pk, 2);
    pk_key(&pk, "value");
    pk_bin(&pk, "x");
    pk_key(&pk, "headers");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_nil(&pk);
    pk_bin(&pk, "b");
    expect_mp_error(&b, false, STREAM_EINVAL, "header 1's name must be bin, str, not nil", 0);

    /* Input that ends inside a record. */
    stream_buf_reset(&b);
    msgpack_pack_map(&pk, 1);
    pk_key(&pk, "value");
    msgpack_pack_bin(&pk, 10);
    stream_buf_put(&b, "abc", 3);
    expect_mp_error(&b, true, STREAM_ESHORT, "input ends inside the record", 0);

    /* Declared sizes beyond the limit are refused at once, not waited for. */
    stream_buf_reset(&b);
    stream_buf_put(&b, "\x81\xa5value\xc6\xff\xff\xff\xff", 12);
    expect_mp_error(&b, false, STREAM_ETOOLARGE, "record larger than the limit of 67108864 bytes",
                    0);
    stream_buf_reset(&b);
    stream_buf_put(&b, "\x82\xa5value\xc0\xa7headers\xdd\x7f\xff\xff\xff", 21);
    expect_mp_error(&b, false, STREAM_ETOOLARGE, "record larger than the limit", 0);
    stream_buf_reset(&b);
    stream_buf_put(&b, "\xdf\xff\xff\xff\xff", 5);
    expect_mp_error(&b, false, STREAM_ETOOLARGE, "record larger than the limit", 0);
    /* ...also for an unknown field being skipped with the flag off or on. */
    stream_buf_reset(&b);
    stream_buf_put(&b, "\x81\xa1z\xdd\x7f\xff\xff\xff", 8);
    expect_mp_error(&b, false, STREAM_EINVAL, "unknown field \"z\"", 0);

    /* A record over a small limit, arriving complete. */
    stream_buf_reset(&b);
    msgpack_pack_map(&pk, 1);
    pk_key(&pk, "value");
    char big[151];
    memset(big, 'x', 150);
    big[150] = '\0';
    pk_bin(&pk, big);
    expect_mp_error(&b, false, STREAM_ETOOLARGE, "larger than the limit of 150 bytes", 150);
    stream_buf_release(&b);
}

static void test_recfmt_msgpack_reader_is_lenient_about_optional_fields(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, pk_write);
    /* {value: str} */
    msgpack_pack_map(&pk, 1);
    pk_key(&pk, "value");
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "x", 1);
    /* {topic: bin, headers: {h: v, n: nil}, value: nil, timestamp: -1, partition: nil,
     *  extra: {...}} with the ignore flag */
    msgpack_pack_map(&pk, 6);
    pk_key(&pk, "topic");
    pk_bin(&pk, "tt");
    pk_key(&pk, "headers");
    msgpack_pack_map(&pk, 2);
    pk_key(&pk, "h");
    pk_bin(&pk, "v");
    pk_key(&pk, "n");
    msgpack_pack_nil(&pk);
    pk_key(&pk, "value");
    msgpack_pack_nil(&pk);
    pk_key(&pk, "timestamp");
    msgpack_pack_int(&pk, -1);
    pk_key(&pk, "partition");
    msgpack_pack_nil(&pk);
    pk_key(&pk, "extra");
    msgpack_pack_map(&pk, 1);
    pk_key(&pk, "deep");
    msgpack_pack_array(&pk, 3);
    msgpack_pack_double(&pk, 1.5);
    msgpack_pack_ext(&pk, 2, 7);
    msgpack_pack_ext_body(&pk, "ab", 2);
    msgpack_pack_array(&pk, 0);

    stream_recfmt_reader r;
    stream_recfmt_reader_init(&r, STREAM_RECFMT_MSGPACK);
    r.flags = STREAM_RECFMT_IGNORE_UNKNOWN;
    assert_int_equal(stream_recfmt_reader_feed(&r, b.data, b.len), 0);
    stream_recfmt_in in;
    char err[256] = "";
    assert_int_equal(stream_recfmt_reader_next(&r, &in, err, sizeof err), 1);
    assert_false(in.has_topic || in.has_partition || in.has_offset || in.has_timestamp);
    assert_bytes(in.rec.value, in.rec.value_len, (const uint8_t *)"x", 1);
    assert_int_equal(in.rec.key_len, -1);
    int rc = stream_recfmt_reader_next(&r, &in, err, sizeof err);
    if (rc != 1)
        fail_msg("second record: %d %s", rc, err);
    assert_true(in.has_topic);
    assert_int_equal(in.rec.topic_len, 2);
    assert_false(in.has_timestamp || in.has_partition);
    assert_int_equal(in.rec.value_len, -1);
    assert_int_equal(in.rec.header_count, 2);
    assert_bytes(in.rec.headers[0].value, in.rec.headers[0].value_len, (const uint8_t *)"v", 1);
    assert_int_equal(in.rec.headers[1].value_len, -1);
    assert_int_equal(stream_recfmt_reader_next(&r, &in, err, sizeof err), 0);
    stream_recfmt_reader_release(&r);
    stream_buf_release(&b);
}

static void test_recfmt_readers_survive_hostile_bytes(void **state)
{
    /* Mutations of valid records and pure noise, each in a buffer of exactly
     * its size: the readers return a record, "need more" or an error, and
     * ASan sees no read past the end. */
    static const stream_header h[] = {H("a", "1"), HNULL("b"), H("c", "\xff")};
    stream_fmt_record good = make("topic", 1, 2, 3, "key", 3, "\x00\xffvalue", 7, h, 3);
    for (int kind = STREAM_RECFMT_JSON; kind <= STREAM_RECFMT_MSGPACK; kind++) {
        stream_buf src = STREAM_BUF_INIT;
        assert_int_equal(write_rec((stream_recfmt_kind)kind, &src, &good), 0);
        stream_recfmt_reader r;
        stream_recfmt_reader_init(&r, (stream_recfmt_kind)kind);
        r.max_record_bytes = 1 << 16;
        for (int round = 0; round < 20000; round++) {
            size_t len = src.len;
            uint8_t *p = malloc(len + 64);
            memcpy(p, src.data, len);
            int muts = 1 + (int)(next_rand() % 4);
            for (int m = 0; m < muts; m++) {
                if (len == 0)
                    break;
                switch (next_rand() % 4) {
                case 0: p[next_rand() % len] = (uint8_t)next_rand(); break;
                case 1: p[next_rand() % len] ^= (uint8_t)(1u << (next_rand() % 8)); break;
                case 2: len = next_rand() % (len + 1); break;
                case 3:
                    if (round % 50 == 0)
                        for (size_t i = 0; i < len; i++)
                            p[i] = (uint8_t)next_rand();
                    break;
                }
            }
            uint8_t *exact = malloc(len ? len : 1);
            memcpy(exact, p, len);
            stream_recfmt_in in;
            char err[256];
            int rc;
            if (kind == STREAM_RECFMT_JSON) {
                rc = stream_recfmt_parse_json(&r, (const char *)exact, len, &in, err, sizeof err);
                assert_true(rc == 0 || rc == STREAM_EINVAL);
            } else {
                size_t used = 0;
                rc = stream_recfmt_parse_msgpack(&r, exact, len, &used, &in, err, sizeof err);
                assert_true(rc == 1 || rc == 0 || rc == STREAM_EINVAL || rc == STREAM_ETOOLARGE);
                if (rc == 1) {
                    assert_true(used <= len);
                    for (size_t i = 0; i < in.rec.header_count; i++)
                        assert_true(in.rec.headers[i].name_len >= 0);
                }
            }
            free(exact);
            free(p);
        }
        stream_recfmt_reader_release(&r);
        stream_buf_release(&src);
    }
}

static void test_recfmt_reader_fills_from_a_file_descriptor(void **state)
{
    char dir[] = "/tmp/test_recfmt.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/records.mp", dir);

    corpus c;
    corpus_init(&c);
    stream_buf b = STREAM_BUF_INIT;
    for (int rep = 0; rep < 3; rep++)
        for (size_t i = 0; i < c.n; i++)
            assert_int_equal(stream_recfmt_write_msgpack(&b, &c.recs[i]), 0);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b.data, b.len), (ssize_t)b.len);
    close(fd);

    fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    stream_recfmt_reader r;
    stream_recfmt_reader_init(&r, STREAM_RECFMT_MSGPACK);
    stream_recfmt_in in;
    char err[256] = "";
    size_t got = 0;
    int n, rc;
    do {
        n = stream_recfmt_reader_fill(&r, fd);
        assert_true(n >= 0);
        while ((rc = stream_recfmt_reader_next(&r, &in, err, sizeof err)) == 1) {
            assert_same_record(&in, &c.recs[got % c.n]);
            got++;
        }
        if (rc < 0)
            fail_msg("%s", err);
    } while (n > 0);
    assert_int_equal(got, 3 * c.n);
    assert_int_equal(stream_recfmt_reader_fill(&r, fd), 0);
    stream_recfmt_reader_release(&r);
    close(fd);

    /* A bad descriptor is an error, not a crash. */
    stream_recfmt_reader_init(&r, STREAM_RECFMT_JSON);
    assert_true(stream_recfmt_reader_fill(&r, -1) < 0);
    stream_recfmt_reader_release(&r);

    stream_buf_release(&b);
    corpus_free(&c);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recfmt_json_writer_layout_is_exact),
        cmocka_unit_test(test_recfmt_msgpack_writer_layout_matches_spec),
        cmocka_unit_test(test_recfmt_json_round_trip_is_lossless),
        cmocka_unit_test(test_recfmt_msgpack_round_trip_is_lossless),
        cmocka_unit_test(test_recfmt_pipe_from_batch_to_batch_is_byte_identical),
        cmocka_unit_test(test_recfmt_json_reader_accepts_lenient_input),
        cmocka_unit_test(test_recfmt_json_reader_skips_blank_lines_and_reads_last_line),
        cmocka_unit_test(test_recfmt_json_reader_errors_name_the_line),
        cmocka_unit_test(test_recfmt_json_reader_refuses_long_lines_early),
        cmocka_unit_test(test_recfmt_msgpack_reader_errors_name_the_record),
        cmocka_unit_test(test_recfmt_msgpack_reader_is_lenient_about_optional_fields),
        cmocka_unit_test(test_recfmt_readers_survive_hostile_bytes),
        cmocka_unit_test(test_recfmt_reader_fills_from_a_file_descriptor),
        cmocka_unit_test(test_recfmt_json_reader_result_does_not_depend_on_chunking),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
