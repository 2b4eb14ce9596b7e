/*
 * test_crc32c.c - CRC-32C against published vectors; hardware == table path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "stream/crc32c.h"

/* The implementations to check: the table one always, the instruction one
 * when this CPU has it, and the dispatching entry point. */
typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static size_t impls(crc_fn fns[3])
{
    size_t n = 0;
    fns[n++] = stream_crc32c;
    fns[n++] = stream_crc32c_sw;
    if (stream_crc32c_hw_available())
        fns[n++] = stream_crc32c_hw;
    return n;
}

static void test_crc32c_check_value(void **state)
{
    crc_fn fns[3];
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
    crc_fn fns[3];
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
    crc_fn fns[3];
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
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    uint64_t x = 0x9E3779B97F4A7C15u;
    for (size_t i = 0; i < size; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_check_value),
        cmocka_unit_test(test_crc32c_rfc3720_vectors),
        cmocka_unit_test(test_crc32c_chaining_equals_one_pass),
        cmocka_unit_test(test_crc32c_hw_matches_sw_on_random_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
