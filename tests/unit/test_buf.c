/*
 * test_buf.c - the byte buffer and reader: Kafka varint/zigzag vectors,
 * big-endian fields, placeholders, and the reader's bounds and latching.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "stream/buf.h"
#include "stream/error.h"

typedef struct varint_vec {
    int64_t v;
    uint8_t bytes[10];
    size_t n;
} varint_vec;

/* Kafka's zigzag varints (ByteUtils.writeVarint), worked by hand:
 * zigzag(v) = (v << 1) ^ (v >> 31), then 7 bits per byte, low group first. */
static const varint_vec varint_vecs[] = {
    {0, {0x00}, 1},
    {-1, {0x01}, 1},
    {1, {0x02}, 1},
    {63, {0x7e}, 1},
    {-64, {0x7f}, 1},
    {64, {0x80, 0x01}, 2},
    {-65, {0x81, 0x01}, 2},
    {300, {0xd8, 0x04}, 2},
    {8191, {0xfe, 0x7f}, 2},
    {-8193, {0x81, 0x80, 0x01}, 3},
    {INT32_MAX, {0xfe, 0xff, 0xff, 0xff, 0x0f}, 5},
    {INT32_MIN, {0xff, 0xff, 0xff, 0xff, 0x0f}, 5},
};

static const varint_vec varlong_vecs[] = {
    {0, {0x00}, 1},
    {-1, {0x01}, 1},
    {1, {0x02}, 1},
    {-64, {0x7f}, 1},
    {64, {0x80, 0x01}, 2},
    {INT32_MAX, {0xfe, 0xff, 0xff, 0xff, 0x0f}, 5},
    {(int64_t)INT32_MAX + 1, {0x80, 0x80, 0x80, 0x80, 0x10}, 5},
    {INT32_MIN, {0xff, 0xff, 0xff, 0xff, 0x0f}, 5},
    {INT64_MAX, {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10},
    {INT64_MIN, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10},
};

static void test_buf_varint_matches_kafka_encoding(void **state)
{
    for (size_t i = 0; i < sizeof varint_vecs / sizeof varint_vecs[0]; i++) {
        const varint_vec *t = &varint_vecs[i];
        stream_buf b = STREAM_BUF_INIT;
        stream_buf_put_varint(&b, (int32_t)t->v);
        assert_int_equal(stream_buf_ok(&b), 0);
        assert_int_equal(b.len, t->n);
        assert_memory_equal(b.data, t->bytes, t->n);
        assert_int_equal(stream_varint_size((int32_t)t->v), t->n);

        stream_reader r;
        int32_t got;
        stream_reader_init(&r, t->bytes, t->n);
        assert_int_equal(stream_get_varint(&r, &got), 0);
        assert_int_equal(got, (int32_t)t->v);
        assert_int_equal(stream_reader_left(&r), 0);
        stream_buf_release(&b);
    }
}

static void test_buf_varlong_matches_kafka_encoding(void **state)
{
    for (size_t i = 0; i < sizeof varlong_vecs / sizeof varlong_vecs[0]; i++) {
        const varint_vec *t = &varlong_vecs[i];
        stream_buf b = STREAM_BUF_INIT;
        stream_buf_put_varlong(&b, t->v);
        assert_int_equal(b.len, t->n);
        assert_memory_equal(b.data, t->bytes, t->n);
        assert_int_equal(stream_varlong_size(t->v), t->n);

        stream_reader r;
        int64_t got;
        stream_reader_init(&r, t->bytes, t->n);
        assert_int_equal(stream_get_varlong(&r, &got), 0);
        assert_int_equal(got, t->v);
        assert_int_equal(stream_reader_left(&r), 0);
        stream_buf_release(&b);
    }
}

static void test_buf_varint_round_trips_across_ranges(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    /* Powers of two and their neighbours: every varint size boundary. */
    for (int shift = 0; shift < 63; shift++) {
        int64_t v = (int64_t)(UINT64_C(1) << shift);
        int64_t vals[] = {v - 1, v, v + 1, -v, -v - 1, -v + 1};
        for (size_t i = 0; i < 6; i++) {
            stream_buf_reset(&b);
            stream_buf_put_varlong(&b, vals[i]);
            stream_buf_put_varint(&b, (int32_t)vals[i]);
            stream_reader r;
            int64_t l;
            int32_t n;
            stream_reader_init(&r, b.data, b.len);
            assert_int_equal(stream_get_varlong(&r, &l), 0);
            assert_int_equal(stream_get_varint(&r, &n), 0);
            assert_int_equal(l, vals[i]);
            assert_int_equal(n, (int32_t)vals[i]);
            assert_int_equal(stream_reader_left(&r), 0);
            assert_int_equal(b.len, stream_varlong_size(vals[i]) +
                                        stream_varint_size((int32_t)vals[i]));
        }
    }
    stream_buf_release(&b);
}

static void test_buf_uvarint_is_not_zigzagged(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    stream_buf_put_uvarint(&b, 1);
    stream_buf_put_uvarint(&b, 300);
    stream_buf_put_uvarint(&b, UINT64_MAX);
    static const uint8_t want[] = {0x01, 0xac, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0x01};
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.data, want, sizeof want);
    stream_reader r;
    uint64_t u;
    stream_reader_init(&r, b.data, b.len);
    assert_int_equal(stream_get_uvarint(&r, &u), 0);
    assert_int_equal(u, 1);
    assert_int_equal(stream_get_uvarint(&r, &u), 0);
    assert_int_equal(u, 300);
    assert_int_equal(stream_get_uvarint(&r, &u), 0);
    assert_true(u == UINT64_MAX);
    stream_buf_release(&b);
}

static void test_buf_big_endian_fields_and_patches(void **state)
{
    stream_buf b;
    stream_buf_init(&b);
    stream_buf_put_u8(&b, 0xab);
    stream_buf_put_be16(&b, 0x0102);
    stream_buf_put_be32(&b, 0x03040506);
    stream_buf_put_be64(&b, 0x0708090a0b0c0d0eu);
    stream_buf_put(&b, "xyz", 3);
    static const uint8_t want[] = {0xab, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
                                   'x', 'y', 'z'};
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.data, want, sizeof want);

    stream_buf_patch_be32(&b, 1, 0xdeadbeef);
    assert_int_equal(stream_load_be32(b.data + 1), 0xdeadbeef);
    stream_buf_patch_be64(&b, 7, 0x1122334455667788u);
    assert_true(stream_load_be64(b.data + 7) == 0x1122334455667788u);
    /* Out-of-range patches are ignored, never written past len. */
    uint8_t before[sizeof want];
    memcpy(before, b.data, b.len);
    stream_buf_patch_be32(&b, b.len - 3, 0xffffffff);
    stream_buf_patch_be64(&b, b.len - 7, UINT64_MAX);
    stream_buf_patch_be32(&b, SIZE_MAX - 1, 0);
    assert_memory_equal(b.data, before, b.len);

    stream_reader r;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    const uint8_t *bytes;
    stream_reader_init(&r, b.data, b.len);
    assert_int_equal(stream_get_u8(&r, &u8), 0);
    assert_int_equal(u8, 0xab);
    assert_int_equal(stream_get_be16(&r, &u16), 0);
    assert_int_equal(u16, 0xdead);
    assert_int_equal(stream_get_be32(&r, &u32), 0);
    assert_int_equal(u32, 0xbeef0506);
    assert_int_equal(stream_get_be64(&r, &u64), 0);
    assert_true(u64 == 0x1122334455667788u);
    assert_int_equal(stream_skip(&r, 1), 0);
    assert_int_equal(stream_get_bytes(&r, 2, &bytes), 0);
    assert_memory_equal(bytes, "yz", 2);
    assert_int_equal(stream_reader_left(&r), 0);
    stream_reader_init(&r, b.data, b.len);
    assert_int_equal(stream_skip(&r, 15), 0);
    assert_int_equal(stream_get_bytes(&r, 3, &bytes), 0);
    assert_memory_equal(bytes, "xyz", 3);
    assert_int_equal(stream_reader_left(&r), 0);

    /* reset keeps the allocation; release frees it. */
    uint8_t *mem = b.data;
    stream_buf_reset(&b);
    assert_int_equal(b.len, 0);
    stream_buf_put_u8(&b, 1);
    assert_ptr_equal(b.data, mem);
    stream_buf_release(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
}

static void test_buf_reserve_refuses_overflow(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    stream_buf_put_u8(&b, 1);
    assert_int_equal(stream_buf_reserve(&b, SIZE_MAX), STREAM_ENOMEM);
    assert_int_equal(stream_buf_ok(&b), STREAM_ENOMEM);
    /* Once oom is latched every put is dropped... */
    stream_buf_put_u8(&b, 2);
    assert_int_equal(b.len, 1);
    /* ...until reset clears it. */
    stream_buf_reset(&b);
    assert_int_equal(stream_buf_ok(&b), 0);
    stream_buf_put_u8(&b, 3);
    assert_int_equal(b.len, 1);
    assert_int_equal(b.data[0], 3);
    stream_buf_release(&b);
}

static void test_reader_short_reads_latch_ESHORT(void **state)
{
    static const uint8_t data[] = {1, 2, 3};
    stream_reader r;
    uint32_t u32;
    uint8_t u8;
    const uint8_t *bytes;

    stream_reader_init(&r, data, sizeof data);
    assert_int_equal(stream_get_be32(&r, &u32), STREAM_ESHORT);
    assert_int_equal(u32, 0);
    /* The error latches: bytes remain, but every later get fails. */
    assert_int_equal(stream_get_u8(&r, &u8), STREAM_ESHORT);
    assert_int_equal(u8, 0);
    assert_int_equal(stream_reader_left(&r), 0);

    stream_reader_init(&r, data, sizeof data);
    assert_int_equal(stream_get_bytes(&r, 4, &bytes), STREAM_ESHORT);
    assert_null(bytes);
    stream_reader_init(&r, data, sizeof data);
    assert_int_equal(stream_skip(&r, SIZE_MAX), STREAM_ESHORT);
    stream_reader_init(&r, data, sizeof data);
    assert_int_equal(stream_get_bytes(&r, 3, &bytes), 0);
    assert_int_equal(stream_get_bytes(&r, 0, &bytes), 0);
    assert_int_equal(stream_get_u8(&r, &u8), STREAM_ESHORT);

    uint64_t u64;
    uint16_t u16;
    stream_reader_init(&r, data, 1);
    assert_int_equal(stream_get_be16(&r, &u16), STREAM_ESHORT);
    stream_reader_init(&r, data, 3);
    assert_int_equal(stream_get_be64(&r, &u64), STREAM_ESHORT);
    stream_reader_init(&r, NULL, 0);
    assert_int_equal(stream_reader_left(&r), 0);
    assert_int_equal(stream_get_u8(&r, &u8), STREAM_ESHORT);
}

static void test_reader_truncated_varint_is_ESHORT(void **state)
{
    static const uint8_t cont[] = {0x80, 0x80};
    stream_reader r;
    int32_t v;
    int64_t l;
    stream_reader_init(&r, cont, sizeof cont);
    assert_int_equal(stream_get_varint(&r, &v), STREAM_ESHORT);
    stream_reader_init(&r, cont, sizeof cont);
    assert_int_equal(stream_get_varlong(&r, &l), STREAM_ESHORT);
    /* Every prefix of a long varint is short. */
    const varint_vec *t = &varlong_vecs[sizeof varlong_vecs / sizeof varlong_vecs[0] - 1];
    for (size_t n = 0; n < t->n; n++) {
        stream_reader_init(&r, t->bytes, n);
        assert_int_equal(stream_get_varlong(&r, &l), STREAM_ESHORT);
    }
}

static void test_reader_overlong_varint_is_ECORRUPT(void **state)
{
    stream_reader r;
    int32_t v;
    int64_t l;
    uint8_t u8;
    /* Six groups for an int32: more than 5 bytes can never be valid. */
    static const uint8_t six[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    stream_reader_init(&r, six, sizeof six);
    assert_int_equal(stream_get_varint(&r, &v), STREAM_ECORRUPT);
    assert_int_equal(v, 0);
    assert_int_equal(stream_get_u8(&r, &u8), STREAM_ECORRUPT); /* latched */
    /* Five groups whose value needs more than 32 bits. */
    static const uint8_t wide[] = {0xff, 0xff, 0xff, 0xff, 0x1f};
    stream_reader_init(&r, wide, sizeof wide);
    assert_int_equal(stream_get_varint(&r, &v), STREAM_ECORRUPT);
    /* Eleven groups for an int64. */
    static const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                     0x80, 0x80, 0x80, 0x80, 0x01};
    stream_reader_init(&r, eleven, sizeof eleven);
    assert_int_equal(stream_get_varlong(&r, &l), STREAM_ECORRUPT);
    assert_int_equal(l, 0);
    uint64_t u;
    stream_reader_init(&r, eleven, sizeof eleven);
    assert_int_equal(stream_get_uvarint(&r, &u), STREAM_ECORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_varint_matches_kafka_encoding),
        cmocka_unit_test(test_buf_varlong_matches_kafka_encoding),
        cmocka_unit_test(test_buf_varint_round_trips_across_ranges),
        cmocka_unit_test(test_buf_uvarint_is_not_zigzagged),
        cmocka_unit_test(test_buf_big_endian_fields_and_patches),
        cmocka_unit_test(test_buf_reserve_refuses_overflow),
        cmocka_unit_test(test_reader_short_reads_latch_ESHORT),
        cmocka_unit_test(test_reader_truncated_varint_is_ESHORT),
        cmocka_unit_test(test_reader_overlong_varint_is_ECORRUPT),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
