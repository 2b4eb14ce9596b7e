/*
 * test_codec.c - the four codecs: round trips, Kafka framings, the
 * decompression cap, and refusal of damaged input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "stream/codec.h"
#include "stream/error.h"

static const stream_codec all_codecs[] = {STREAM_CODEC_NONE, STREAM_CODEC_GZIP,
                                          STREAM_CODEC_SNAPPY, STREAM_CODEC_LZ4,
                                          STREAM_CODEC_ZSTD};
#define NCODECS (sizeof all_codecs / sizeof all_codecs[0])

/* Half text-like (compressible), half noise. */
static uint8_t *sample(size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (i / 1000) % 2 ? (uint8_t)(x >> 24) : (uint8_t)("stream records "[i % 15]);
    }
    return p;
}

static void test_codec_round_trips_every_size(void **state)
{
    size_t sizes[] = {0, 1, 15, 32768, 32769, 65536, 65537, 300000};
    for (size_t c = 0; c < NCODECS; c++) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            uint8_t *src = sample(sizes[s]);
            stream_buf z = STREAM_BUF_INIT, out = STREAM_BUF_INIT;
            stream_buf_put(&z, "hdr", 3); /* compress appends */
            assert_int_equal(stream_codec_compress(all_codecs[c], 0, src, sizes[s], &z), 0);
            assert_memory_equal(z.data, "hdr", 3);
            stream_buf_put(&out, "x", 1); /* decompress appends */
            assert_int_equal(stream_codec_decompress(all_codecs[c], z.data + 3, z.len - 3,
                                                     sizes[s], &out),
                             0);
            assert_int_equal(out.len, sizes[s] + 1);
            assert_int_equal(out.data[0], 'x');
            if (sizes[s])
                assert_memory_equal(out.data + 1, src, sizes[s]);
            stream_buf_release(&z);
            stream_buf_release(&out);
            free(src);
        }
    }
}

static void test_codec_levels(void **state)
{
    uint8_t *src = sample(100000);
    struct {
        stream_codec codec;
        int level;
        int rc;
    } v[] = {
        {STREAM_CODEC_GZIP, 1, 0},    {STREAM_CODEC_GZIP, 9, 0},
        {STREAM_CODEC_GZIP, 10, STREAM_EINVAL}, {STREAM_CODEC_GZIP, -1, STREAM_EINVAL},
        {STREAM_CODEC_LZ4, 1, 0},     {STREAM_CODEC_LZ4, 9, 0},
        {STREAM_CODEC_LZ4, 17, 0},    {STREAM_CODEC_LZ4, 18, STREAM_EINVAL},
        {STREAM_CODEC_ZSTD, 1, 0},    {STREAM_CODEC_ZSTD, 19, 0},
        {STREAM_CODEC_ZSTD, -5, 0},   {STREAM_CODEC_ZSTD, 23, STREAM_EINVAL},
        {STREAM_CODEC_SNAPPY, 99, 0}, {(stream_codec)5, 0, STREAM_EINVAL},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        stream_buf z = STREAM_BUF_INIT, out = STREAM_BUF_INIT;
        assert_int_equal(stream_codec_check_level(v[i].codec, v[i].level), v[i].rc);
        assert_int_equal(stream_codec_compress(v[i].codec, v[i].level, src, 100000, &z),
                         v[i].rc);
        if (v[i].rc == 0) {
            assert_int_equal(stream_codec_decompress(v[i].codec, z.data, z.len, 100000, &out),
                             0);
            assert_memory_equal(out.data, src, 100000);
        } else {
            assert_int_equal(z.len, 0);
        }
        stream_buf_release(&z);
        stream_buf_release(&out);
    }
    free(src);
}

/* The first bytes of each codec's output identify the framing Kafka expects. */
static void test_codec_output_uses_kafka_framing(void **state)
{
    uint8_t *src = sample(70000);
    stream_buf z = STREAM_BUF_INIT;

    assert_int_equal(stream_codec_compress(STREAM_CODEC_GZIP, 0, src, 70000, &z), 0);
    static const uint8_t gzip_magic[] = {0x1f, 0x8b, 0x08}; /* gzip, deflate */
    assert_memory_equal(z.data, gzip_magic, 3);

    stream_buf_reset(&z);
    assert_int_equal(stream_codec_compress(STREAM_CODEC_LZ4, 0, src, 70000, &z), 0);
    static const uint8_t lz4_magic[] = {0x04, 0x22, 0x4d, 0x18};
    assert_memory_equal(z.data, lz4_magic, 4);
    /* FLG: version 01, block independence, no checksums, no content size;
     * BD: 64 KiB blocks — what Kafka's KafkaLZ4BlockOutputStream writes. */
    assert_int_equal(z.data[4], 0x60);
    assert_int_equal(z.data[5], 0x40);

    stream_buf_reset(&z);
    assert_int_equal(stream_codec_compress(STREAM_CODEC_ZSTD, 0, src, 70000, &z), 0);
    static const uint8_t zstd_magic[] = {0x28, 0xb5, 0x2f, 0xfd};
    assert_memory_equal(z.data, zstd_magic, 4);

    /* snappy-java's stream: magic, version 1, compatible version 1, then
     * length-prefixed raw blocks of at most 32 KiB each (70000 = 3 blocks). */
    stream_buf_reset(&z);
    assert_int_equal(stream_codec_compress(STREAM_CODEC_SNAPPY, 0, src, 70000, &z), 0);
    static const uint8_t xerial[] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0,
                                     0, 0, 0, 1, 0, 0, 0, 1};
    assert_memory_equal(z.data, xerial, sizeof xerial);
    size_t pos = 16, blocks = 0, total = 0;
    while (pos < z.len) {
        uint32_t n = stream_load_be32(z.data + pos);
        size_t raw;
        assert_int_equal(snappy_uncompressed_length((const char *)z.data + pos + 4, n, &raw),
                         SNAPPY_OK);
        assert_true(raw <= 32768);
        total += raw;
        pos += 4 + n;
        blocks++;
    }
    assert_int_equal(pos, z.len);
    assert_int_equal(blocks, 3);
    assert_int_equal(total, 70000);
    stream_buf_release(&z);
    free(src);
}

/* librdkafka and others write one raw snappy block; it must decode too. */
static void test_codec_snappy_accepts_raw_blocks(void **state)
{
    uint8_t *src = sample(50000);
    size_t n = snappy_max_compressed_length(50000);
    char *raw = malloc(n);
    assert_non_null(raw);
    assert_int_equal(snappy_compress((const char *)src, 50000, raw, &n), SNAPPY_OK);
    stream_buf out = STREAM_BUF_INIT;
    assert_int_equal(stream_codec_decompress(STREAM_CODEC_SNAPPY, raw, n, 50000, &out), 0);
    assert_int_equal(out.len, 50000);
    assert_memory_equal(out.data, src, 50000);
    /* The claimed size is checked before allocating. */
    stream_buf_reset(&out);
    assert_int_equal(stream_codec_decompress(STREAM_CODEC_SNAPPY, raw, n, 49999, &out),
                     STREAM_ETOOLARGE);
    assert_int_equal(out.len, 0);
    stream_buf_release(&out);
    free(raw);
    free(src);
}

/* Concatenated gzip members and zstd frames decode as one stream. */
static void test_codec_concatenated_frames_decode(void **state)
{
    stream_codec codecs[] = {STREAM_CODEC_GZIP, STREAM_CODEC_LZ4, STREAM_CODEC_ZSTD};
    for (size_t c = 0; c < 3; c++) {
        stream_buf z = STREAM_BUF_INIT, out = STREAM_BUF_INIT;
        assert_int_equal(stream_codec_compress(codecs[c], 0, "hello ", 6, &z), 0);
        assert_int_equal(stream_codec_compress(codecs[c], 0, "world", 5, &z), 0);
        assert_int_equal(stream_codec_decompress(codecs[c], z.data, z.len, 100, &out), 0);
        assert_int_equal(out.len, 11);
        assert_memory_equal(out.data, "hello world", 11);
        stream_buf_release(&z);
        stream_buf_release(&out);
    }
}

/* Output is capped while decompressing: exactly max_out succeeds, one byte
 * less fails with ETOOLARGE and leaves the output buffer as it was. */
static void test_codec_decompression_cap(void **state)
{
    size_t n = 1 << 20;
    uint8_t *zeros = calloc(1, n);
    assert_non_null(zeros);
    for (size_t c = 0; c < NCODECS; c++) {
        stream_buf z = STREAM_BUF_INIT, out = STREAM_BUF_INIT;
        assert_int_equal(stream_codec_compress(all_codecs[c], 0, zeros, n, &z), 0);
        stream_buf_put(&out, "keep", 4);
        assert_int_equal(stream_codec_decompress(all_codecs[c], z.data, z.len, 1000, &out),
                         STREAM_ETOOLARGE);
        assert_int_equal(out.len, 4);
        /* The buffer never grew far past the cap (a MiB of output was refused
         * with about a KiB of memory). */
        assert_true(out.cap <= 4096);
        assert_int_equal(stream_codec_decompress(all_codecs[c], z.data, z.len, n - 1, &out),
                         STREAM_ETOOLARGE);
        assert_int_equal(out.len, 4);
        assert_int_equal(stream_codec_decompress(all_codecs[c], z.data, z.len, n, &out), 0);
        assert_int_equal(out.len, n + 4);
        stream_buf_release(&z);
        stream_buf_release(&out);
    }
    free(zeros);
}

static void test_codec_damaged_input_is_ECORRUPT(void **state)
{
    uint8_t *src = sample(40000);
    for (size_t c = 1; c < NCODECS; c++) {
        stream_codec codec = all_codecs[c];
        stream_buf z = STREAM_BUF_INIT, out = STREAM_BUF_INIT;
        assert_int_equal(stream_codec_compress(codec, 0, src, 40000, &z), 0);
        /* Every truncation point near the ends, then a stride through. */
        for (size_t n = 0; n < z.len; n += (n < 40 || n > z.len - 40) ? 1 : 97) {
            uint8_t *t = malloc(n ? n : 1);
            assert_non_null(t);
            memcpy(t, z.data, n);
            int rc = stream_codec_decompress(codec, t, n, 40000, &out);
            /* xerial framing has no end marker: a cut exactly between blocks
             * is a valid shorter stream. (In a batch, the record count and
             * lengths catch it.) */
            if (codec == STREAM_CODEC_SNAPPY && rc == 0 && out.len % 32768 == 0 &&
                out.len < 40000) {
                stream_buf_reset(&out);
                free(t);
                continue;
            }
            if (rc != STREAM_ECORRUPT)
                fail_msg("%s cut at %zu of %zu: %s", stream_codec_name(codec), n, z.len,
                         stream_err_name(rc));
            assert_int_equal(out.len, 0);
            free(t);
        }
        /* Trailing garbage after a complete stream. */
        stream_buf_put(&z, "\x01\x02\x03", 3);
        assert_int_equal(stream_codec_decompress(codec, z.data, z.len, 40000, &out),
                         STREAM_ECORRUPT);
        /* Garbage from the start. */
        uint8_t junk[64];
        for (size_t i = 0; i < sizeof junk; i++)
            junk[i] = (uint8_t)(i * 29 + 7);
        assert_int_equal(stream_codec_decompress(codec, junk, sizeof junk, 40000, &out),
                         STREAM_ECORRUPT);
        assert_int_equal(out.len, 0);
        stream_buf_release(&z);
        stream_buf_release(&out);
    }
    free(src);
}

static void test_codec_names(void **state)
{
    static const char *names[] = {"none", "gzip", "snappy", "lz4", "zstd"};
    for (int c = 0; c < 5; c++) {
        assert_string_equal(stream_codec_name((stream_codec)c), names[c]);
        assert_int_equal(stream_codec_from_name(names[c]), c);
    }
    assert_int_equal(stream_codec_from_name("LZ4"), STREAM_CODEC_LZ4);
    assert_int_equal(stream_codec_from_name("Zstd"), STREAM_CODEC_ZSTD);
    assert_int_equal(stream_codec_from_name(""), STREAM_CODEC_NONE);
    assert_int_equal(stream_codec_from_name("brotli"), STREAM_EINVAL);
    assert_int_equal(stream_codec_from_name("lz"), STREAM_EINVAL);
    assert_int_equal(stream_codec_from_name(NULL), STREAM_EINVAL);
    assert_string_equal(stream_codec_name((stream_codec)9), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_round_trips_every_size),
        cmocka_unit_test(test_codec_levels),
        cmocka_unit_test(test_codec_output_uses_kafka_framing),
        cmocka_unit_test(test_codec_snappy_accepts_raw_blocks),
        cmocka_unit_test(test_codec_concatenated_frames_decode),
        cmocka_unit_test(test_codec_decompression_cap),
        cmocka_unit_test(test_codec_damaged_input_is_ECORRUPT),
        cmocka_unit_test(test_codec_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
