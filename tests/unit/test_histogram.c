/*
 * test_histogram.c - the log-linear latency histogram (libstream/base/histogram.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "stream/error.h"
#include "stream/histogram.h"

#define MAX_NS (INT64_C(1) << 40)

static void test_init_rejects_bad_arguments(void **state)
{
    stream_histogram h;
    assert_int_equal(stream_histogram_init(&h, 0, 0), STREAM_EINVAL);
    assert_int_equal(stream_histogram_init(&h, -5, 0), STREAM_EINVAL);
    assert_int_equal(stream_histogram_init(&h, 1000, 1), STREAM_EINVAL);
    assert_int_equal(stream_histogram_init(&h, 1000, 17), STREAM_EINVAL);
    stream_histogram_release(&h); /* safe after a failed init */
    assert_int_equal(stream_histogram_init(&h, INT64_MAX, 2), 0);
    stream_histogram_record(&h, INT64_MAX);
    assert_int_equal(stream_histogram_percentile(&h, 50), INT64_MAX);
    stream_histogram_release(&h);
}

static void test_empty_histogram_reports_zero(void **state)
{
    stream_histogram h;
    assert_int_equal(stream_histogram_init(&h, MAX_NS, 0), 0);
    assert_int_equal(h.count, 0);
    assert_int_equal(stream_histogram_percentile(&h, 0), 0);
    assert_int_equal(stream_histogram_percentile(&h, 99.9), 0);
    assert_int_equal(stream_histogram_percentile(&h, 100), 0);
    assert_true(stream_histogram_mean(&h) == 0);
    stream_histogram_release(&h);
}

static void test_small_values_are_exact(void **state)
{
    stream_histogram h;
    assert_int_equal(stream_histogram_init(&h, MAX_NS, 8), 0);
    for (int v = 1; v <= 200; v++)
        stream_histogram_record(&h, v);
    assert_int_equal(stream_histogram_percentile(&h, 0), 1);
    assert_int_equal(stream_histogram_percentile(&h, 50), 100);
    assert_int_equal(stream_histogram_percentile(&h, 99), 198);
    assert_int_equal(stream_histogram_percentile(&h, 99.5), 199);
    assert_int_equal(stream_histogram_percentile(&h, 100), 200);
    assert_int_equal(h.min, 1);
    assert_int_equal(h.max, 200);
    stream_histogram_release(&h);
}

static void test_bucket_width_doubles_each_power_of_two(void **state)
{
    stream_histogram h;
    assert_int_equal(stream_histogram_init(&h, MAX_NS, 8), 0);
    /* 255 is exact; 256 and 257 share a bucket of width 2, reported as 257. */
    stream_histogram_record(&h, 255);
    stream_histogram_record(&h, 256);
    stream_histogram_record(&h, 100000);
    assert_int_equal(stream_histogram_percentile(&h, 100.0 / 3), 255);
    assert_int_equal(stream_histogram_percentile(&h, 200.0 / 3), 257);
    stream_histogram_reset(&h);
    /* 512..515 share a bucket of width 4. */
    stream_histogram_record(&h, 512);
    stream_histogram_record(&h, 100000);
    assert_int_equal(stream_histogram_percentile(&h, 50), 515);
    stream_histogram_release(&h);
}

static void test_relative_error_stays_within_precision(void **state)
{
    stream_histogram h;
    assert_int_equal(stream_histogram_init(&h, MAX_NS, 8), 0);
    srand(42);
    for (int i = 0; i < 20000; i++) {
        /* Values spread over every magnitude up to 2^39. */
        int64_t v = ((int64_t)rand() << 8 | (rand() & 0xff)) >> (rand() % 40);
        stream_histogram_reset(&h);
        stream_histogram_record(&h, v);
        stream_histogram_record(&h, MAX_NS); /* so the top of v's bucket is not clamped to max */
        int64_t got = stream_histogram_percentile(&h, 50);
        assert_true(got >= v);
        /* Reported as the top of its bucket: at most v / 128 above it. */
        assert_true(got - v <= v / 128);
    }
    stream_histogram_release(&h);
}

static void test_percentiles_of_a_uniform_distribution(void **state)
{
    stream_histogram h;
    assert_int_equal(stream_histogram_init(&h, MAX_NS, 0), 0);
    for (int64_t v = 1; v <= 1000000; v++)
        stream_histogram_record(&h, v * 1000); /* 1 us .. 1 s in ns */
    struct {
        double pct;
        double want;
    } cases[] = {{50, 500e6}, {95, 950e6}, {99, 990e6}, {99.9, 999e6}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double got = (double)stream_histogram_percentile(&h, cases[i].pct);
        assert_true(got >= cases[i].want);
        assert_true(got <= cases[i].want * (1 + 1.0 / 128));
    }
    assert_int_equal(stream_histogram_percentile(&h, 100), 1000000000);
    assert_int_equal(h.min, 1000);
    assert_int_equal(h.count, 1000000);
    /* The mean is exact (kept as a sum, not from buckets). */
    assert_true(stream_histogram_mean(&h) == 500000500.0);
    stream_histogram_release(&h);
}

static void test_values_out_of_range_are_clamped_and_counted(void **state)
{
    stream_histogram h;
    assert_int_equal(stream_histogram_init(&h, 1000000, 0), 0);
    stream_histogram_record(&h, -7);
    stream_histogram_record(&h, 5000000);
    assert_int_equal(h.count, 2);
    assert_int_equal(h.clamped, 1);
    assert_int_equal(h.min, 0);
    assert_int_equal(h.max, 1000000);
    assert_int_equal(stream_histogram_percentile(&h, 100), 1000000);
    assert_int_equal(stream_histogram_percentile(&h, 50), 0);
    stream_histogram_release(&h);
}

static void test_record_n_counts_each_value(void **state)
{
    stream_histogram h;
    assert_int_equal(stream_histogram_init(&h, MAX_NS, 0), 0);
    stream_histogram_record_n(&h, 10, 99);
    stream_histogram_record_n(&h, 5000, 1);
    stream_histogram_record_n(&h, 7, 0); /* nothing */
    assert_int_equal(h.count, 100);
    assert_int_equal(h.min, 10);
    assert_int_equal(stream_histogram_percentile(&h, 99), 10);
    assert_true(stream_histogram_percentile(&h, 99.5) >= 5000);
    assert_true(stream_histogram_mean(&h) == (99 * 10 + 5000) / 100.0);
    stream_histogram_release(&h);
}

static void test_merge_adds_every_value(void **state)
{
    stream_histogram a, b, c;
    assert_int_equal(stream_histogram_init(&a, MAX_NS, 0), 0);
    assert_int_equal(stream_histogram_init(&b, MAX_NS, 0), 0);
    assert_int_equal(stream_histogram_init(&c, MAX_NS, 7), 0);
    for (int v = 0; v < 100; v++)
        stream_histogram_record(&a, v);
    for (int v = 100; v < 200; v++)
        stream_histogram_record(&b, v);
    assert_int_equal(stream_histogram_merge(&a, &b), 0);
    assert_int_equal(a.count, 200);
    assert_int_equal(a.min, 0);
    assert_int_equal(a.max, 199);
    assert_int_equal(stream_histogram_percentile(&a, 75), 149);
    /* A different precision cannot be merged, and dst stays as it was. */
    stream_histogram_record(&c, 1);
    assert_int_equal(stream_histogram_merge(&a, &c), STREAM_EINVAL);
    assert_int_equal(a.count, 200);
    stream_histogram_release(&a);
    stream_histogram_release(&b);
    stream_histogram_release(&c);
}

static void test_reset_forgets_every_value(void **state)
{
    stream_histogram h;
    assert_int_equal(stream_histogram_init(&h, MAX_NS, 0), 0);
    stream_histogram_record(&h, 123456);
    stream_histogram_reset(&h);
    assert_int_equal(h.count, 0);
    assert_int_equal(stream_histogram_percentile(&h, 50), 0);
    stream_histogram_record(&h, 3);
    assert_int_equal(stream_histogram_percentile(&h, 50), 3);
    assert_int_equal(h.min, 3);
    assert_int_equal(h.max, 3);
    stream_histogram_release(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_rejects_bad_arguments),
        cmocka_unit_test(test_empty_histogram_reports_zero),
        cmocka_unit_test(test_small_values_are_exact),
        cmocka_unit_test(test_bucket_width_doubles_each_power_of_two),
        cmocka_unit_test(test_relative_error_stays_within_precision),
        cmocka_unit_test(test_percentiles_of_a_uniform_distribution),
        cmocka_unit_test(test_values_out_of_range_are_clamped_and_counted),
        cmocka_unit_test(test_record_n_counts_each_value),
        cmocka_unit_test(test_merge_adds_every_value),
        cmocka_unit_test(test_reset_forgets_every_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
