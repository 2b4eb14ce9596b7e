/*
 * test_crc32c.c - CRC-32C against published vectors; the instruction paths
 * (one chain, and three interleaved chains joined by carry-less multiply)
 * == the table path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "stream/crc32c.h"

/* The implementations to check: the table one always, the instruction ones
 * when this CPU has them, and the dispatching entry point. */
typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

#define MAX_IMPLS 4

static size_t impls(crc_fn fns[MAX_IMPLS])
{
    size_t n = 0;
    fns[n++] = stream_crc32c;
    fns[n++] = stream_crc32c_sw;
    if (stream_crc32c_hw_available())
        fns[n++] = stream_crc32c_hw;
    if (stream_crc32c_clmul_available())
        fns[n++] = stream_crc32c_clmul;
    return n;
}

/* A buffer of xorshift bytes (the caller frees it). */
static uint8_t *random_buf(size_t size, uint64_t *x)
{
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    for (size_t i = 0; i < size; i++) {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        buf[i] = (uint8_t)*x;
    }
    return buf;
}

static void test_crc32c_check_value(void **state)
{
    crc_fn fns[MAX_IMPLS];
    size_t n = impls(fns);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(fns[i](0, "123456789", 9), 0xE3069283u);
        assert_int_equal(fns[i](0, "", 0), 0);
        assert_int_equal(fns[i](0, NULL, 0), 0);
    }
}

/* RFC 3720 (iSCSI) appendix B.4 vectors. */
static void test_crc32c_rfc3720_vectors(void **state)
{
    uint8_t zeros[32], ones[32], asc[32], desc[32];
    memset(zeros, 0, sizeof zeros);
    memset(ones, 0xff, sizeof ones);
    for (int i = 0; i < 32; i++) {
        asc[i] = (uint8_t)i;
        desc[i] = (uint8_t)(31 - i);
    }
    crc_fn fns[MAX_IMPLS];
    size_t n = impls(fns);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(fns[i](0, zeros, 32), 0x8A9136AAu);
        assert_int_equal(fns[i](0, ones, 32), 0x62A8AB43u);
        assert_int_equal(fns[i](0, asc, 32), 0x46DD794Eu);
        assert_int_equal(fns[i](0, desc, 32), 0x113FDB5Cu);
    }
}

static void test_crc32c_chaining_equals_one_pass(void **state)
{
    uint8_t data[300];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    crc_fn fns[MAX_IMPLS];
    size_t n = impls(fns);
    for (size_t f = 0; f < n; f++) {
        uint32_t whole = fns[f](0, data, sizeof data);
        for (size_t cut = 0; cut <= sizeof data; cut += 13) {
            uint32_t c = fns[f](0, data, cut);
            assert_int_equal(fns[f](c, data + cut, sizeof data - cut), whole);
        }
        assert_int_equal(fns[f](fns[f](0, "1234", 4), "56789", 5), 0xE3069283u);
    }
}

/* Every length 0..300 at every alignment 0..15, plus random slices of a
 * random buffer: the instruction path must agree with the table path. */
static void test_crc32c_hw_matches_sw_on_random_data(void **state)
{
    if (!stream_crc32c_hw_available())
        skip();
    size_t size = 1 << 16;
    uint64_t x = 0x9E3779B97F4A7C15u;
    uint8_t *buf = random_buf(size, &x);
    for (size_t align = 0; align < 16; align++)
        for (size_t len = 0; len <= 300; len++)
            assert_int_equal(stream_crc32c_hw(0, buf + align, len),
                             stream_crc32c_sw(0, buf + align, len));
    for (int i = 0; i < 2000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t off = (size_t)(x % size);
        size_t len = (size_t)((x >> 20) % (size - off));
        uint32_t seed = (uint32_t)(x >> 32);
        assert_int_equal(stream_crc32c_hw(seed, buf + off, len),
                         stream_crc32c_sw(seed, buf + off, len));
    }
    free(buf);
}

/* The interleaved path cuts a buffer into three blocks of a multiple of 32
 * bytes (up to 4 KiB each) and an 8-byte-word tail, after up to 7 bytes that
 * bring the pointer to an 8-byte boundary: every length 0..4096 at every
 * alignment 0..15 covers each block size and every head and tail, and the
 * large ones cover runs of full-size blocks. A non-zero starting CRC checks
 * that it enters the first block only. */
static void test_crc32c_clmul_matches_sw_every_length_and_alignment(void **state)
{
    if (!stream_crc32c_clmul_available())
        skip();
    uint64_t x = 0x2545F4914F6CDD1Du;
    size_t big = (3u << 20) + 4096;
    uint8_t *buf = random_buf(big + 16, &x);
    for (size_t align = 0; align < 16; align++) {
        for (size_t len = 0; len <= 4096; len++) {
            uint32_t seed = (len & 1) ? (uint32_t)(len * 0x9E3779B1u) : 0;
            assert_int_equal(stream_crc32c_clmul(seed, buf + align, len),
                             stream_crc32c_sw(seed, buf + align, len));
        }
    }
    const size_t lens[] = {
        3 * 4096, 3 * 4096 + 1,   3 * 4096 + 95, 3 * 4096 + 96,   6 * 4096 - 1, 16384, 65536,
        100003,   (1u << 20) - 1, 1u << 20,      (1u << 20) + 13, 3u << 20,     big,
    };
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        for (size_t align = 0; align < 16; align += 5) {
            uint32_t seed = (uint32_t)(i * 0x85EBCA6Bu);
            assert_int_equal(stream_crc32c_clmul(seed, buf + align, lens[i]),
                             stream_crc32c_sw(seed, buf + align, lens[i]));
            assert_int_equal(stream_crc32c(seed, buf + align, lens[i]),
                             stream_crc32c_sw(seed, buf + align, lens[i]));
        }
    }
    free(buf);
}

/* Long runs of one byte value: the published all-zeros / all-ones CRCs
 * extend to any length through chaining, so long inputs have an
 * independent check too (a CRC of n zero bytes fed 32 at a time). */
static void test_crc32c_long_runs_chain_consistently(void **state)
{
    uint8_t zeros[32];
    memset(zeros, 0, sizeof zeros);
    size_t n = 1u << 16;
    uint8_t *big = calloc(1, n);
    assert_non_null(big);
    uint32_t chained = 0;
    for (size_t i = 0; i < n; i += sizeof zeros)
        chained = stream_crc32c_sw(chained, zeros, sizeof zeros);
    crc_fn fns[MAX_IMPLS];
    size_t k = impls(fns);
    for (size_t f = 0; f < k; f++)
        assert_int_equal(fns[f](0, big, n), chained);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_check_value),
        cmocka_unit_test(test_crc32c_rfc3720_vectors),
        cmocka_unit_test(test_crc32c_chaining_equals_one_pass),
        cmocka_unit_test(test_crc32c_hw_matches_sw_on_random_data),
        cmocka_unit_test(test_crc32c_clmul_matches_sw_every_length_and_alignment),
        cmocka_unit_test(test_crc32c_long_runs_chain_consistently),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
