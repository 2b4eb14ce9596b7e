/*
 * test_batch.c - RecordBatch v2: hand-encoded vectors, round trips through
 * the builder and iterator (every codec), and rejection of damaged batches.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream/batch.h"
#include "stream/crc32c.h"
#include "stream/error.h"

/* ---- helpers --------------------------------------------------------------- */

/* Recomputes batchLength-independent CRC of a batch we tampered with, so the
 * test reaches the check it means to exercise rather than the CRC. */
static void reseal(uint8_t *p, size_t size)
{
    stream_store_be32(p + STREAM_BATCH_OFF_CRC,
                      stream_crc32c(0, p + STREAM_BATCH_OFF_ATTRIBUTES,
                                    size - STREAM_BATCH_OFF_ATTRIBUTES));
}

/* Wraps raw record bytes in a batch header: count, lastOffsetDelta and
 * attributes as given, then seals length and CRC. Caller frees. */
static uint8_t *raw_batch(const uint8_t *records, size_t records_len, int32_t count,
                          int32_t last_offset_delta, int16_t attributes, size_t *size)
{
    *size = STREAM_BATCH_HEADER_SIZE + records_len;
    uint8_t *p = calloc(1, *size);
    assert_non_null(p);
    stream_store_be32(p + STREAM_BATCH_OFF_LENGTH,
                      (uint32_t)(*size - STREAM_BATCH_LOG_OVERHEAD));
    stream_store_be32(p + STREAM_BATCH_OFF_LEADER_EPOCH, UINT32_MAX);
    p[STREAM_BATCH_OFF_MAGIC] = 2;
    p[STREAM_BATCH_OFF_ATTRIBUTES] = (uint8_t)((uint16_t)attributes >> 8);
    p[STREAM_BATCH_OFF_ATTRIBUTES + 1] = (uint8_t)attributes;
    stream_store_be32(p + STREAM_BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)last_offset_delta);
    stream_store_be64(p + STREAM_BATCH_OFF_BASE_TIMESTAMP, 1000);
    stream_store_be64(p + STREAM_BATCH_OFF_MAX_TIMESTAMP, 1000);
    memset(p + 43, 0xff, 14); /* producerId, producerEpoch, baseSequence: -1 */
    stream_store_be32(p + STREAM_BATCH_OFF_RECORD_COUNT, (uint32_t)count);
    if (records_len)
        memcpy(p + STREAM_BATCH_HEADER_SIZE, records, records_len);
    reseal(p, *size);
    return p;
}

/* Iterates every record of a batch; returns 0 or the iterator's error and
 * the number of records seen. */
static int iterate_all(const uint8_t *p, size_t len, int *count)
{
    stream_record_iter it;
    stream_record rec;
    int rc = stream_record_iter_start(&it, p, len);
    *count = 0;
    if (rc == 0)
        while ((rc = stream_record_iter_next(&it, &rec)) == 1)
            (*count)++;
    stream_record_iter_stop(&it);
    return rc;
}

static void assert_bytes_equal(const uint8_t *got, size_t got_len, const uint8_t *want,
                               size_t want_len)
{
    assert_int_equal(got_len, want_len);
    for (size_t i = 0; i < want_len; i++) {
        if (got[i] != want[i])
            fail_msg("byte %zu: got 0x%02x, want 0x%02x", i, got[i], want[i]);
    }
}

/* ---- hand-encoded vectors -------------------------------------------------- */

/* One record, key "k", value "v", timestamp 1700000000000 (0x18BCFE56800).
 * The CRC was computed independently with a bitwise CRC-32C over bytes
 * [21, 70). */
static const uint8_t vector_one_record[] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* baseOffset 0 */
    0x00, 0x00, 0x00, 0x3a,                         /* batchLength 58 = 70 - 12 */
    0xff, 0xff, 0xff, 0xff,                         /* partitionLeaderEpoch -1 */
    0x02,                                           /* magic 2 */
    0xe9, 0x9b, 0x8d, 0xd8,                         /* crc */
    0x00, 0x00,                                     /* attributes: none, create time */
    0x00, 0x00, 0x00, 0x00,                         /* lastOffsetDelta 0 */
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, /* baseTimestamp */
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, /* maxTimestamp */
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* producerId -1 */
    0xff, 0xff,                                     /* producerEpoch -1 */
    0xff, 0xff, 0xff, 0xff,                         /* baseSequence -1 */
    0x00, 0x00, 0x00, 0x01,                         /* recordCount 1 */
    /* record 0 */
    0x10,       /* length 8 (zigzag 16) */
    0x00,       /* attributes */
    0x00,       /* timestampDelta 0 */
    0x00,       /* offsetDelta 0 */
    0x02, 0x6b, /* keyLength 1, "k" */
    0x02, 0x76, /* valueLength 1, "v" */
    0x00,       /* headerCount 0 */
};

/* Two records:
 *   0: ts 1000, key null, value "hi", header "h" = "1"
 *   1: ts 1300, key "" (empty), value null, header "x" = null
 * CRC computed independently over bytes [21, 85). */
static const uint8_t vector_headers_null_key[] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* baseOffset 0 */
    0x00, 0x00, 0x00, 0x49,                         /* batchLength 73 = 85 - 12 */
    0xff, 0xff, 0xff, 0xff,                         /* partitionLeaderEpoch -1 */
    0x02,                                           /* magic 2 */
    0xc1, 0x98, 0x8d, 0x0f,                         /* crc */
    0x00, 0x00,                                     /* attributes */
    0x00, 0x00, 0x00, 0x01,                         /* lastOffsetDelta 1 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8, /* baseTimestamp 1000 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x14, /* maxTimestamp 1300 */
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* producerId -1 */
    0xff, 0xff,                                     /* producerEpoch -1 */
    0xff, 0xff, 0xff, 0xff,                         /* baseSequence -1 */
    0x00, 0x00, 0x00, 0x02,                         /* recordCount 2 */
    /* record 0 */
    0x18,             /* length 12 */
    0x00,             /* attributes */
    0x00,             /* timestampDelta 0 */
    0x00,             /* offsetDelta 0 */
    0x01,             /* keyLength -1: null */
    0x04, 0x68, 0x69, /* valueLength 2, "hi" */
    0x02,             /* headerCount 1 */
    0x02, 0x68,       /*   headerKeyLength 1, "h" */
    0x02, 0x31,       /*   headerValueLength 1, "1" */
    /* record 1 */
    0x14,       /* length 10 */
    0x00,       /* attributes */
    0xd8, 0x04, /* timestampDelta 300 (zigzag 600 = 0x58 | 0x80, 0x04) */
    0x02,       /* offsetDelta 1 */
    0x00,       /* keyLength 0: empty */
    0x01,       /* valueLength -1: null */
    0x02,       /* headerCount 1 */
    0x02, 0x78, /*   headerKeyLength 1, "x" */
    0x01,       /*   headerValueLength -1: null */
};

static void test_batch_one_record_matches_hand_encoded_bytes(void **state)
{
    stream_batch_builder b;
    stream_batch_builder_init(&b);
    assert_int_equal(stream_batch_builder_append(&b, 1700000000000, "k", 1, "v", 1, NULL, 0), 0);
    assert_int_equal(stream_batch_builder_size(&b), sizeof vector_one_record);
    const uint8_t *out;
    size_t len;
    assert_int_equal(stream_batch_builder_finish(&b, &out, &len), 0);
    assert_bytes_equal(out, len, vector_one_record, sizeof vector_one_record);
    stream_batch_builder_release(&b);

    stream_batch_info info;
    assert_int_equal(stream_batch_validate(vector_one_record, sizeof vector_one_record, &info,
                                           NULL, 0),
                     0);
    assert_int_equal(info.size, 70);
    assert_int_equal(info.batch_length, 58);
    assert_int_equal(info.partition_leader_epoch, -1);
    assert_int_equal(info.crc, 0xe99b8dd8u);
    assert_int_equal(info.base_timestamp, 1700000000000);
    assert_int_equal(info.max_timestamp, 1700000000000);
    assert_int_equal(info.producer_id, -1);
    assert_int_equal(info.producer_epoch, -1);
    assert_int_equal(info.base_sequence, -1);
    assert_int_equal(info.record_count, 1);

    stream_record_iter it;
    stream_record rec;
    assert_int_equal(stream_record_iter_start(&it, vector_one_record, sizeof vector_one_record), 0);
    assert_int_equal(stream_record_iter_next(&it, &rec), 1);
    assert_int_equal(rec.offset, 0);
    assert_int_equal(rec.timestamp, 1700000000000);
    assert_int_equal(rec.key_len, 1);
    assert_memory_equal(rec.key, "k", 1);
    assert_int_equal(rec.value_len, 1);
    assert_memory_equal(rec.value, "v", 1);
    assert_int_equal(rec.header_count, 0);
    assert_int_equal(stream_record_iter_next(&it, &rec), 0);
    stream_record_iter_stop(&it);
}

static void test_batch_null_key_and_headers_match_hand_encoded_bytes(void **state)
{
    stream_batch_builder b;
    stream_batch_builder_init(&b);
    stream_header h0 = {(const uint8_t *)"h", 1, (const uint8_t *)"1", 1};
    stream_header h1 = {(const uint8_t *)"x", 1, NULL, -1};
    assert_int_equal(stream_batch_builder_append(&b, 1000, NULL, -1, "hi", 2, &h0, 1), 0);
    assert_int_equal(stream_batch_builder_append(&b, 1300, "", 0, NULL, -1, &h1, 1), 0);
    const uint8_t *out;
    size_t len;
    assert_int_equal(stream_batch_builder_finish(&b, &out, &len), 0);
    assert_bytes_equal(out, len, vector_headers_null_key, sizeof vector_headers_null_key);
    stream_batch_builder_release(&b);

    const uint8_t *p = vector_headers_null_key;
    stream_batch_info info;
    assert_int_equal(stream_batch_validate(p, sizeof vector_headers_null_key, &info, NULL, 0), 0);
    stream_record_iter it;
    stream_record rec;
    stream_header_iter hi;
    stream_header h;
    assert_int_equal(stream_record_iter_start(&it, p, sizeof vector_headers_null_key), 0);

    assert_int_equal(stream_record_iter_next(&it, &rec), 1);
    assert_int_equal(rec.timestamp, 1000);
    assert_null(rec.key);
    assert_int_equal(rec.key_len, -1);
    assert_int_equal(rec.value_len, 2);
    assert_memory_equal(rec.value, "hi", 2);
    assert_int_equal(rec.header_count, 1);
    stream_header_iter_start(&hi, &rec);
    assert_int_equal(stream_header_iter_next(&hi, &h), 1);
    assert_int_equal(h.name_len, 1);
    assert_memory_equal(h.name, "h", 1);
    assert_int_equal(h.value_len, 1);
    assert_memory_equal(h.value, "1", 1);
    assert_int_equal(stream_header_iter_next(&hi, &h), 0);

    assert_int_equal(stream_record_iter_next(&it, &rec), 1);
    assert_int_equal(rec.offset, 1);
    assert_int_equal(rec.timestamp, 1300);
    assert_non_null(rec.key);
    assert_int_equal(rec.key_len, 0);
    assert_null(rec.value);
    assert_int_equal(rec.value_len, -1);
    stream_header_iter_start(&hi, &rec);
    assert_int_equal(stream_header_iter_next(&hi, &h), 1);
    assert_memory_equal(h.name, "x", 1);
    assert_null(h.value);
    assert_int_equal(h.value_len, -1);
    assert_int_equal(stream_header_iter_next(&hi, &h), 0);

    assert_int_equal(stream_record_iter_next(&it, &rec), 0);
    stream_record_iter_stop(&it);
}

/* ---- round trips ----------------------------------------------------------- */

/* A deterministic record i: key and value lengths cycle through null, empty
 * and short/long payloads; headers cycle through none, duplicates, nulls. */
typedef struct rec_spec {
    int64_t ts;
    int32_t key_len, value_len;
    uint8_t key[40], value[300];
    stream_header headers[3];
    size_t header_count;
} rec_spec;

static const uint8_t hname_a[] = "trace", hname_b[] = "", hval[] = "v";

static void make_spec(rec_spec *s, int i)
{
    memset(s, 0, sizeof *s);
    s->ts = 1700000000000 + (i % 7) * 1000 - (i % 3) * 5000; /* not monotonic */
    int kl[] = {-1, 0, 1, 17, 40};
    int vl[] = {3, -1, 0, 300, 12, 1};
    s->key_len = kl[i % 5];
    s->value_len = vl[i % 6];
    for (int j = 0; j < 40; j++)
        s->key[j] = (uint8_t)(i + j);
    for (int j = 0; j < 300; j++)
        s->value[j] = (uint8_t)((i * 31 + j) % 11); /* compressible */
    s->header_count = (size_t)(i % 4 == 3 ? 3 : i % 4);
    for (size_t j = 0; j < s->header_count; j++) {
        stream_header *h = &s->headers[j];
        h->name = j == 2 ? hname_b : hname_a; /* duplicates "trace", empty name */
        h->name_len = j == 2 ? 0 : 5;
        h->value = j == 1 ? NULL : hval;
        h->value_len = j == 1 ? -1 : 1;
    }
}

static void append_spec(stream_batch_builder *b, const rec_spec *s)
{
    assert_int_equal(stream_batch_builder_append(b, s->ts, s->key_len < 0 ? NULL : s->key,
                                                 s->key_len, s->value_len < 0 ? NULL : s->value,
                                                 s->value_len, s->headers, s->header_count),
                     0);
}

static void assert_len_bytes(const uint8_t *got, int32_t got_len, const uint8_t *want,
                             int32_t want_len)
{
    assert_int_equal(got_len, want_len);
    if (want_len < 0) {
        assert_null(got);
    } else {
        assert_non_null(got);
        if (want_len > 0)
            assert_memory_equal(got, want, (size_t)want_len);
    }
}

/* Iterates a batch built from specs 0..n-1 and compares every field. */
static void assert_matches_specs(const uint8_t *p, size_t len, int n, int64_t base_offset)
{
    stream_batch_info info;
    char err[128] = "";
    int rc = stream_batch_validate(p, len, &info, err, sizeof err);
    if (rc != 0)
        fail_msg("validate: %s (%s)", stream_err_name(rc), err);
    assert_int_equal(info.record_count, n);
    assert_int_equal(info.last_offset_delta, n - 1);
    int64_t max_ts = INT64_MIN;
    rec_spec s;
    for (int i = 0; i < n; i++) {
        make_spec(&s, i);
        if (s.ts > max_ts)
            max_ts = s.ts;
    }
    make_spec(&s, 0);
    assert_int_equal(info.base_timestamp, s.ts);
    assert_int_equal(info.max_timestamp, max_ts);

    stream_record_iter it;
    stream_record rec;
    assert_int_equal(stream_record_iter_start(&it, p, len), 0);
    for (int i = 0; i < n; i++) {
        make_spec(&s, i);
        assert_int_equal(stream_record_iter_next(&it, &rec), 1);
        assert_int_equal(rec.offset, base_offset + i);
        assert_int_equal(rec.timestamp, s.ts);
        assert_len_bytes(rec.key, rec.key_len, s.key, s.key_len);
        assert_len_bytes(rec.value, rec.value_len, s.value, s.value_len);
        assert_int_equal(rec.header_count, (int32_t)s.header_count);
        stream_header_iter hi;
        stream_header h;
        stream_header_iter_start(&hi, &rec);
        for (size_t j = 0; j < s.header_count; j++) {
            assert_int_equal(stream_header_iter_next(&hi, &h), 1);
            assert_len_bytes(h.name, h.name_len, s.headers[j].name, s.headers[j].name_len);
            assert_len_bytes(h.value, h.value_len, s.headers[j].value, s.headers[j].value_len);
        }
        assert_int_equal(stream_header_iter_next(&hi, &h), 0);
    }
    assert_int_equal(stream_record_iter_next(&it, &rec), 0);
    assert_int_equal(stream_record_iter_next(&it, &rec), 0);
    stream_record_iter_stop(&it);
}

static void round_trip(stream_codec codec, int n)
{
    stream_batch_builder b;
    stream_batch_builder_init(&b);
    assert_int_equal(stream_batch_builder_set_codec(&b, codec, 0), 0);
    rec_spec s;
    for (int i = 0; i < n; i++) {
        make_spec(&s, i);
        append_spec(&b, &s);
    }
    assert_int_equal(b.count, n);
    const uint8_t *out;
    size_t len;
    assert_int_equal(stream_batch_builder_finish(&b, &out, &len), 0);
    assert_int_equal(out[STREAM_BATCH_OFF_ATTRIBUTES + 1] & STREAM_BATCH_ATTR_CODEC_MASK, codec);
    if (codec == STREAM_CODEC_NONE)
        assert_int_equal(len, stream_batch_builder_size(&b));
    else if (n > 50)
        assert_true(len < stream_batch_builder_size(&b) / 2); /* the data is repetitive */
    assert_matches_specs(out, len, n, 0);

    /* The broker stamps offset and epoch in place; the CRC stays valid. */
    uint8_t *copy = malloc(len);
    assert_non_null(copy);
    memcpy(copy, out, len);
    stream_batch_set_base_offset(copy, 12345678901);
    stream_batch_set_leader_epoch(copy, 7);
    stream_batch_info info;
    assert_int_equal(stream_batch_check(copy, len, &info, NULL, 0), 0);
    assert_int_equal(info.base_offset, 12345678901);
    assert_int_equal(info.partition_leader_epoch, 7);
    assert_matches_specs(copy, len, n, 12345678901);
    free(copy);
    stream_batch_builder_release(&b);
}

static void test_batch_round_trips_one_and_many_records(void **state)
{
    round_trip(STREAM_CODEC_NONE, 1);
    round_trip(STREAM_CODEC_NONE, 2);
    round_trip(STREAM_CODEC_NONE, 60);
    round_trip(STREAM_CODEC_NONE, 5000);
}

static void test_batch_round_trips_every_codec(void **state)
{
    stream_codec codecs[] = {STREAM_CODEC_GZIP, STREAM_CODEC_SNAPPY, STREAM_CODEC_LZ4,
                             STREAM_CODEC_ZSTD};
    for (size_t c = 0; c < 4; c++) {
        round_trip(codecs[c], 1);
        round_trip(codecs[c], 3000); /* > 64 KiB: several snappy/lz4 blocks */
    }
}

static void test_batch_round_trips_large_value(void **state)
{
    size_t n = 3 << 20;
    uint8_t *v = malloc(n);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = (uint8_t)(i * 2654435761u >> 13);
    stream_codec codecs[] = {STREAM_CODEC_NONE, STREAM_CODEC_ZSTD, STREAM_CODEC_LZ4};
    for (size_t c = 0; c < 3; c++) {
        stream_batch_builder b;
        stream_batch_builder_init(&b);
        assert_int_equal(stream_batch_builder_set_codec(&b, codecs[c], 1), 0);
        assert_int_equal(stream_batch_builder_append(&b, 5, "big", 3, v, (int32_t)n, NULL, 0), 0);
        assert_int_equal(stream_batch_builder_append(&b, 6, NULL, -1, v, 100, NULL, 0), 0);
        const uint8_t *out;
        size_t len;
        assert_int_equal(stream_batch_builder_finish(&b, &out, &len), 0);
        stream_batch_info info;
        assert_int_equal(stream_batch_validate(out, len, &info, NULL, 0), 0);
        stream_record_iter it;
        stream_record rec;
        assert_int_equal(stream_record_iter_start(&it, out, len), 0);
        assert_int_equal(stream_record_iter_next(&it, &rec), 1);
        assert_int_equal(rec.value_len, (int32_t)n);
        assert_memory_equal(rec.value, v, n);
        assert_int_equal(stream_record_iter_next(&it, &rec), 1);
        assert_int_equal(rec.value_len, 100);
        assert_int_equal(stream_record_iter_next(&it, &rec), 0);
        stream_record_iter_stop(&it);
        stream_batch_builder_release(&b);
    }
    free(v);
}

static void test_batch_builder_reset_and_append_after_finish(void **state)
{
    stream_batch_builder b;
    stream_batch_builder_init(&b);
    assert_int_equal(stream_batch_builder_size(&b), STREAM_BATCH_HEADER_SIZE);
    const uint8_t *out;
    size_t len;
    assert_int_equal(stream_batch_builder_finish(&b, &out, &len), STREAM_EINVAL);
    assert_null(out);

    rec_spec s;
    make_spec(&s, 0);
    append_spec(&b, &s);
    assert_int_equal(stream_batch_builder_finish(&b, &out, &len), 0);
    assert_matches_specs(out, len, 1, 0);
    /* More records after a finish extend the same batch. */
    for (int i = 1; i < 10; i++) {
        make_spec(&s, i);
        append_spec(&b, &s);
    }
    assert_int_equal(stream_batch_builder_finish(&b, &out, &len), 0);
    assert_matches_specs(out, len, 10, 0);

    /* reset keeps the codec and the memory: the next batch is built in the
     * same allocation. */
    assert_int_equal(stream_batch_builder_set_codec(&b, STREAM_CODEC_ZSTD, 3), 0);
    uint8_t *mem = b.buf.data;
    stream_batch_builder_reset(&b);
    assert_int_equal(b.count, 0);
    for (int i = 0; i < 5; i++) {
        make_spec(&s, i);
        append_spec(&b, &s);
    }
    assert_ptr_equal(b.buf.data, mem);
    assert_int_equal(stream_batch_builder_finish(&b, &out, &len), 0);
    assert_int_equal(out[STREAM_BATCH_OFF_ATTRIBUTES + 1], STREAM_CODEC_ZSTD);
    assert_matches_specs(out, len, 5, 0);
    stream_batch_builder_release(&b);
}

static void test_batch_builder_rejects_bad_arguments(void **state)
{
    stream_batch_builder b;
    stream_batch_builder_init(&b);
    stream_header bad_name = {NULL, -1, NULL, -1};
    stream_header bad_value = {(const uint8_t *)"a", 1, NULL, 3};
    stream_header bad_value_len = {(const uint8_t *)"a", 1, (const uint8_t *)"b", -2};
    assert_int_equal(stream_batch_builder_append(&b, 0, "k", -2, "v", 1, NULL, 0), STREAM_EINVAL);
    assert_int_equal(stream_batch_builder_append(&b, 0, "k", 1, "v", -2, NULL, 0), STREAM_EINVAL);
    assert_int_equal(stream_batch_builder_append(&b, 0, NULL, 1, "v", 1, NULL, 0), STREAM_EINVAL);
    assert_int_equal(stream_batch_builder_append(&b, 0, "k", 1, NULL, 1, NULL, 0), STREAM_EINVAL);
    assert_int_equal(stream_batch_builder_append(&b, 0, "k", 1, "v", 1, NULL, 1), STREAM_EINVAL);
    assert_int_equal(stream_batch_builder_append(&b, 0, "k", 1, "v", 1, &bad_name, 1),
                     STREAM_EINVAL);
    assert_int_equal(stream_batch_builder_append(&b, 0, "k", 1, "v", 1, &bad_value, 1),
                     STREAM_EINVAL);
    assert_int_equal(stream_batch_builder_append(&b, 0, "k", 1, "v", 1, &bad_value_len, 1),
                     STREAM_EINVAL);
    assert_int_equal(b.count, 0);
    assert_int_equal(stream_batch_builder_size(&b), STREAM_BATCH_HEADER_SIZE);

    assert_int_equal(stream_batch_builder_set_codec(&b, (stream_codec)5, 0), STREAM_EINVAL);
    assert_int_equal(stream_batch_builder_set_codec(&b, STREAM_CODEC_GZIP, 10), STREAM_EINVAL);
    assert_int_equal(stream_batch_builder_set_codec(&b, STREAM_CODEC_ZSTD, 23), STREAM_EINVAL);
    assert_int_equal(b.attributes, 0); /* a failed set_codec changes nothing */

    /* A record of INT32_MAX bytes cannot fit in a batch: the sum of lengths
     * is refused before any memory is touched. */
    stream_header huge = {(const uint8_t *)"a", INT32_MAX, (const uint8_t *)"b", INT32_MAX};
    assert_int_equal(stream_batch_builder_append(&b, 0, "k", 1, "v", 1, &huge, 1),
                     STREAM_ETOOLARGE);
    assert_int_equal(b.count, 0);
    stream_batch_builder_release(&b);
}

static void test_batch_log_append_time_uses_max_timestamp(void **state)
{
    stream_batch_builder b;
    stream_batch_builder_init(&b);
    assert_int_equal(stream_batch_builder_append(&b, 100, "a", 1, "b", 1, NULL, 0), 0);
    assert_int_equal(stream_batch_builder_append(&b, 50, "a", 1, "b", 1, NULL, 0), 0);
    const uint8_t *out;
    size_t len;
    assert_int_equal(stream_batch_builder_finish(&b, &out, &len), 0);
    uint8_t *p = malloc(len);
    assert_non_null(p);
    memcpy(p, out, len);
    stream_batch_builder_release(&b);

    /* Create time: each record keeps its own, even going backwards. */
    stream_record_iter it;
    stream_record rec;
    assert_int_equal(stream_record_iter_start(&it, p, len), 0);
    assert_int_equal(it.info.max_timestamp, 100);
    assert_int_equal(stream_record_iter_next(&it, &rec), 1);
    assert_int_equal(rec.timestamp, 100);
    assert_int_equal(stream_record_iter_next(&it, &rec), 1);
    assert_int_equal(rec.timestamp, 50);
    stream_record_iter_stop(&it);

    /* A broker with LogAppendTime rewrites maxTimestamp and the type bit. */
    p[STREAM_BATCH_OFF_ATTRIBUTES + 1] |= STREAM_BATCH_ATTR_LOG_APPEND_TIME;
    stream_store_be64(p + STREAM_BATCH_OFF_MAX_TIMESTAMP, 777);
    reseal(p, len);
    assert_int_equal(stream_record_iter_start(&it, p, len), 0);
    assert_int_equal(stream_record_iter_next(&it, &rec), 1);
    assert_int_equal(rec.timestamp, 777);
    assert_int_equal(stream_record_iter_next(&it, &rec), 1);
    assert_int_equal(rec.timestamp, 777);
    stream_record_iter_stop(&it);
    free(p);
}

/* ---- rejection ------------------------------------------------------------- */

/* A private copy of a valid 3-record batch. */
static uint8_t *sample_batch(stream_codec codec, size_t *len)
{
    stream_batch_builder b;
    stream_batch_builder_init(&b);
    assert_int_equal(stream_batch_builder_set_codec(&b, codec, 0), 0);
    rec_spec s;
    for (int i = 0; i < 3; i++) {
        make_spec(&s, i + 2);
        append_spec(&b, &s);
    }
    const uint8_t *out;
    assert_int_equal(stream_batch_builder_finish(&b, &out, len), 0);
    uint8_t *p = malloc(*len);
    assert_non_null(p);
    memcpy(p, out, *len);
    stream_batch_builder_release(&b);
    return p;
}

static void test_batch_bad_crc_is_ECRC(void **state)
{
    size_t len;
    uint8_t *p = sample_batch(STREAM_CODEC_NONE, &len);
    stream_batch_info info;
    char err[128] = "";
    /* Any byte from attributes on is covered; the CRC field itself too. */
    size_t spots[] = {STREAM_BATCH_OFF_CRC, STREAM_BATCH_OFF_ATTRIBUTES + 1,
                      STREAM_BATCH_OFF_RECORD_COUNT + 3, STREAM_BATCH_HEADER_SIZE + 4, len - 1};
    for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++) {
        p[spots[i]] ^= 0x01;
        assert_int_equal(stream_batch_check(p, len, &info, err, sizeof err), STREAM_ECRC);
        assert_non_null(strstr(err, "CRC"));
        assert_int_equal(stream_batch_validate(p, len, &info, NULL, 0), STREAM_ECRC);
        p[spots[i]] ^= 0x01;
    }
    assert_int_equal(stream_batch_check(p, len, &info, NULL, 0), 0);
    free(p);
}

static void test_batch_truncated_at_every_length_is_ESHORT(void **state)
{
    stream_codec codecs[] = {STREAM_CODEC_NONE, STREAM_CODEC_LZ4};
    for (size_t c = 0; c < 2; c++) {
        size_t len;
        uint8_t *p = sample_batch(codecs[c], &len);
        for (size_t n = 0; n < len; n++) {
            /* An exact-size heap copy, so ASan catches any read past n. */
            uint8_t *t = malloc(n ? n : 1);
            assert_non_null(t);
            memcpy(t, p, n);
            stream_batch_info info;
            stream_record_iter it;
            assert_int_equal(stream_batch_check(t, n, &info, NULL, 0), STREAM_ESHORT);
            assert_int_equal(stream_batch_validate(t, n, &info, NULL, 0), STREAM_ESHORT);
            assert_int_equal(stream_record_iter_start(&it, t, n), STREAM_ESHORT);
            stream_record_iter_stop(&it);
            if (n < STREAM_BATCH_HEADER_SIZE)
                assert_int_equal(stream_batch_header_decode(t, n, &info), STREAM_ESHORT);
            else
                assert_int_equal(stream_batch_header_decode(t, n, &info), 0);
            free(t);
        }
        free(p);
    }
}

static void test_batch_bad_magic_is_EMAGIC(void **state)
{
    size_t len;
    uint8_t *p = sample_batch(STREAM_CODEC_NONE, &len);
    int8_t magics[] = {0, 1, 3, -1};
    for (size_t i = 0; i < 4; i++) {
        p[STREAM_BATCH_OFF_MAGIC] = (uint8_t)magics[i];
        stream_batch_info info;
        stream_record_iter it;
        char err[128] = "";
        assert_int_equal(stream_batch_header_decode(p, len, &info), STREAM_EMAGIC);
        assert_int_equal(stream_batch_check(p, len, &info, err, sizeof err), STREAM_EMAGIC);
        assert_non_null(strstr(err, "magic"));
        assert_int_equal(stream_record_iter_start(&it, p, len), STREAM_EMAGIC);
        stream_record_iter_stop(&it);
    }
    free(p);
}

static void test_batch_length_below_minimum_is_ECORRUPT(void **state)
{
    size_t len;
    uint8_t *p = sample_batch(STREAM_CODEC_NONE, &len);
    int32_t lengths[] = {STREAM_BATCH_MIN_LENGTH - 1, 0, -1, INT32_MIN};
    for (size_t i = 0; i < 4; i++) {
        stream_store_be32(p + STREAM_BATCH_OFF_LENGTH, (uint32_t)lengths[i]);
        stream_batch_info info;
        assert_int_equal(stream_batch_check(p, len, &info, NULL, 0), STREAM_ECORRUPT);
    }
    /* A batch of exactly the minimum length is a header with no records. */
    size_t size;
    uint8_t *empty = raw_batch(NULL, 0, 0, 0, 0, &size);
    stream_batch_info info;
    int count;
    assert_int_equal(size, STREAM_BATCH_HEADER_SIZE);
    assert_int_equal(stream_batch_validate(empty, size, &info, NULL, 0), 0);
    assert_int_equal(iterate_all(empty, size, &count), 0);
    assert_int_equal(count, 0);
    free(empty);
    free(p);
}

static void test_batch_negative_count_or_unknown_codec_is_ECORRUPT(void **state)
{
    static const uint8_t rec[] = {0x0c, 0, 0, 0, 1, 1, 0}; /* null key and value */
    size_t size;
    stream_batch_info info;
    uint8_t *p = raw_batch(rec, sizeof rec, -1, 0, 0, &size);
    assert_int_equal(stream_batch_header_decode(p, size, &info), STREAM_ECORRUPT);
    free(p);
    p = raw_batch(rec, sizeof rec, 1, -1, 0, &size);
    assert_int_equal(stream_batch_header_decode(p, size, &info), STREAM_ECORRUPT);
    free(p);
    for (int16_t codec = 5; codec <= 7; codec++) {
        p = raw_batch(rec, sizeof rec, 1, 0, codec, &size);
        assert_int_equal(stream_batch_check(p, size, &info, NULL, 0), STREAM_ECORRUPT);
        free(p);
    }
    p = raw_batch(rec, sizeof rec, 1, 0, 0, &size);
    assert_int_equal(stream_batch_validate(p, size, &info, NULL, 0), 0);
    free(p);
}

/* Checks that validate and the iterator both refuse raw records (CRC valid). */
static void assert_records_corrupt(const uint8_t *records, size_t n, int32_t count,
                                   int32_t last_offset_delta)
{
    size_t size;
    uint8_t *p = raw_batch(records, n, count, last_offset_delta, 0, &size);
    stream_batch_info info;
    int seen;
    char err[160] = "";
    assert_int_equal(stream_batch_check(p, size, &info, NULL, 0), 0);
    assert_int_equal(stream_batch_validate(p, size, &info, err, sizeof err), STREAM_ECORRUPT);
    assert_true(err[0] != '\0');
    assert_int_equal(iterate_all(p, size, &seen), STREAM_ECORRUPT);
    free(p);
}

static void test_batch_record_count_beyond_records_is_ECORRUPT(void **state)
{
    static const uint8_t one[] = {0x0c, 0, 0, 0, 1, 1, 0};
    assert_records_corrupt(one, sizeof one, 2, 1);
    assert_records_corrupt(one, sizeof one, INT32_MAX, INT32_MAX - 1);
    /* Enough bytes for the count's minimum, but not records. */
    static const uint8_t pad[] = {0x0c, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_records_corrupt(pad, sizeof pad, 2, 1);
    /* Fewer records claimed than present: leftover bytes. */
    static const uint8_t two[] = {0x0c, 0, 0, 0, 1, 1, 0, 0x0c, 0, 0, 2, 1, 1, 0};
    assert_records_corrupt(two, sizeof two, 1, 0);
}

static void test_batch_record_length_past_batch_is_ECORRUPT(void **state)
{
    static const uint8_t past[] = {0x0e, 0, 0, 0, 1, 1, 0}; /* length 7, 6 present */
    assert_records_corrupt(past, sizeof past, 1, 0);
    static const uint8_t huge[] = {0xfe, 0xff, 0xff, 0xff, 0x0f, 0, 0}; /* INT32_MAX */
    assert_records_corrupt(huge, sizeof huge, 1, 0);
    static const uint8_t negative[] = {0x01, 0, 0, 0, 1, 1, 0}; /* length -1 */
    assert_records_corrupt(negative, sizeof negative, 1, 0);
    static const uint8_t bad_varint[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0}; /* 6 bytes */
    assert_records_corrupt(bad_varint, sizeof bad_varint, 1, 0);
    /* Value length running past the record (but not past the batch). */
    static const uint8_t value_past[] = {0x0c, 0, 0, 0, 1, 0x08, 0, 0, 0, 0};
    assert_records_corrupt(value_past, sizeof value_past, 1, 0);
    /* A record longer than its fields: trailing bytes inside the record. */
    static const uint8_t trailing[] = {0x0e, 0, 0, 0, 1, 1, 0, 0};
    assert_records_corrupt(trailing, sizeof trailing, 1, 0);
}

static void test_batch_negative_lengths_below_minus_one_are_ECORRUPT(void **state)
{
    static const uint8_t key[] = {0x0c, 0, 0, 0, 0x03, 1, 0};   /* keyLength -2 */
    assert_records_corrupt(key, sizeof key, 1, 0);
    static const uint8_t value[] = {0x0c, 0, 0, 0, 1, 0x03, 0}; /* valueLength -2 */
    assert_records_corrupt(value, sizeof value, 1, 0);
    static const uint8_t count[] = {0x0c, 0, 0, 0, 1, 1, 0x01}; /* headerCount -1 */
    assert_records_corrupt(count, sizeof count, 1, 0);
    static const uint8_t hname[] = {0x10, 0, 0, 0, 1, 1, 0x02, 0x01, 0x01}; /* null name */
    assert_records_corrupt(hname, sizeof hname, 1, 0);
    static const uint8_t hvalue[] = {0x10, 0, 0, 0, 1, 1, 0x02, 0x00, 0x03}; /* value -2 */
    assert_records_corrupt(hvalue, sizeof hvalue, 1, 0);
    static const uint8_t hcount[] = {0x10, 0, 0, 0, 1, 1, 0x04, 0x00, 0x01}; /* 2 claimed */
    assert_records_corrupt(hcount, sizeof hcount, 1, 0);
}

static void test_batch_offset_deltas_out_of_order_are_ECORRUPT(void **state)
{
    /* Deltas 1, 0: backwards. */
    static const uint8_t back[] = {0x0c, 0, 0, 2, 1, 1, 0, 0x0c, 0, 0, 0, 1, 1, 0};
    assert_records_corrupt(back, sizeof back, 2, 1);
    /* Deltas 0, 0: repeated. */
    static const uint8_t same[] = {0x0c, 0, 0, 0, 1, 1, 0, 0x0c, 0, 0, 0, 1, 1, 0};
    assert_records_corrupt(same, sizeof same, 2, 1);
    /* Delta past lastOffsetDelta. */
    static const uint8_t past[] = {0x0c, 0, 0, 0, 1, 1, 0, 0x0c, 0, 0, 4, 1, 1, 0};
    assert_records_corrupt(past, sizeof past, 2, 1);
    /* Negative delta. */
    static const uint8_t neg[] = {0x0c, 0, 0, 1, 1, 1, 0};
    assert_records_corrupt(neg, sizeof neg, 1, 0);
}

/* Compaction leaves gaps (deltas 0, 2): the iterator reads them, validate
 * (which checks what a producer sent) refuses them, as does a lastOffsetDelta
 * that disagrees with the count. */
static void test_batch_gapped_deltas_iterate_but_do_not_validate(void **state)
{
    static const uint8_t gap[] = {0x0c, 0, 0, 0, 1, 1, 0, 0x0c, 0, 0, 4, 1, 1, 0};
    size_t size;
    uint8_t *p = raw_batch(gap, sizeof gap, 2, 2, 0, &size);
    stream_batch_info info;
    int seen;
    assert_int_equal(iterate_all(p, size, &seen), 0);
    assert_int_equal(seen, 2);
    assert_int_equal(stream_batch_validate(p, size, &info, NULL, 0), STREAM_ECORRUPT);
    free(p);
    static const uint8_t ok[] = {0x0c, 0, 0, 0, 1, 1, 0, 0x0c, 0, 0, 2, 1, 1, 0};
    p = raw_batch(ok, sizeof ok, 2, 3, 0, &size);
    assert_int_equal(iterate_all(p, size, &seen), 0);
    assert_int_equal(stream_batch_validate(p, size, &info, NULL, 0), STREAM_ECORRUPT);
    free(p);
    p = raw_batch(ok, sizeof ok, 2, 1, 0, &size);
    assert_int_equal(stream_batch_validate(p, size, &info, NULL, 0), 0);
    free(p);
}

static void test_batch_corrupt_compressed_payload_is_ECORRUPT(void **state)
{
    stream_codec codecs[] = {STREAM_CODEC_GZIP, STREAM_CODEC_SNAPPY, STREAM_CODEC_LZ4,
                             STREAM_CODEC_ZSTD};
    for (size_t c = 0; c < 4; c++) {
        size_t len;
        uint8_t *p = sample_batch(codecs[c], &len);
        size_t payload = len - STREAM_BATCH_HEADER_SIZE;
        stream_batch_info info;
        int seen;
        /* Garbage in place of the compressed bytes. */
        uint8_t *g = malloc(len);
        assert_non_null(g);
        memcpy(g, p, len);
        for (size_t i = STREAM_BATCH_HEADER_SIZE; i < len; i++)
            g[i] = (uint8_t)(i * 37 + 11);
        reseal(g, len);
        assert_int_equal(stream_batch_check(g, len, &info, NULL, 0), 0);
        assert_int_equal(stream_batch_validate(g, len, &info, NULL, 0), STREAM_ECORRUPT);
        assert_int_equal(iterate_all(g, len, &seen), STREAM_ECORRUPT);
        free(g);
        /* The compressed stream cut short (batchLength shrunk to match). */
        for (size_t cut = 1; cut < payload; cut += (payload / 7) + 1) {
            size_t n = len - cut;
            uint8_t *t = malloc(n);
            assert_non_null(t);
            memcpy(t, p, n);
            stream_store_be32(t + STREAM_BATCH_OFF_LENGTH,
                              (uint32_t)(n - STREAM_BATCH_LOG_OVERHEAD));
            reseal(t, n);
            int rc = stream_batch_validate(t, n, &info, NULL, 0);
            if (rc != STREAM_ECORRUPT)
                fail_msg("%s cut by %zu: %s", stream_codec_name(codecs[c]), cut,
                         stream_err_name(rc));
            free(t);
        }
        free(p);
    }
}

static void test_batch_decompression_cap_is_ETOOLARGE(void **state)
{
    stream_batch_builder b;
    stream_batch_builder_init(&b);
    assert_int_equal(stream_batch_builder_set_codec(&b, STREAM_CODEC_ZSTD, 0), 0);
    static uint8_t zeros[100000];
    assert_int_equal(stream_batch_builder_append(&b, 1, NULL, -1, zeros, sizeof zeros, NULL, 0),
                     0);
    const uint8_t *out;
    size_t len;
    assert_int_equal(stream_batch_builder_finish(&b, &out, &len), 0);
    assert_true(len < 1000); /* a compression bomb in miniature */
    stream_record_iter it;
    assert_int_equal(stream_record_iter_start_max(&it, out, len, 50000), STREAM_ETOOLARGE);
    stream_record_iter_stop(&it);
    assert_int_equal(stream_record_iter_start_max(&it, out, len, 200000), 0);
    stream_record_iter_stop(&it);
    stream_batch_builder_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_one_record_matches_hand_encoded_bytes),
        cmocka_unit_test(test_batch_null_key_and_headers_match_hand_encoded_bytes),
        cmocka_unit_test(test_batch_round_trips_one_and_many_records),
        cmocka_unit_test(test_batch_round_trips_every_codec),
        cmocka_unit_test(test_batch_round_trips_large_value),
        cmocka_unit_test(test_batch_builder_reset_and_append_after_finish),
        cmocka_unit_test(test_batch_builder_rejects_bad_arguments),
        cmocka_unit_test(test_batch_log_append_time_uses_max_timestamp),
        cmocka_unit_test(test_batch_bad_crc_is_ECRC),
        cmocka_unit_test(test_batch_truncated_at_every_length_is_ESHORT),
        cmocka_unit_test(test_batch_bad_magic_is_EMAGIC),
        cmocka_unit_test(test_batch_length_below_minimum_is_ECORRUPT),
        cmocka_unit_test(test_batch_negative_count_or_unknown_codec_is_ECORRUPT),
        cmocka_unit_test(test_batch_record_count_beyond_records_is_ECORRUPT),
        cmocka_unit_test(test_batch_record_length_past_batch_is_ECORRUPT),
        cmocka_unit_test(test_batch_negative_lengths_below_minus_one_are_ECORRUPT),
        cmocka_unit_test(test_batch_offset_deltas_out_of_order_are_ECORRUPT),
        cmocka_unit_test(test_batch_gapped_deltas_iterate_but_do_not_validate),
        cmocka_unit_test(test_batch_corrupt_compressed_payload_is_ECORRUPT),
        cmocka_unit_test(test_batch_decompression_cap_is_ETOOLARGE),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
