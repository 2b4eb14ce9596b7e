/*
 * test_prom.c - the Prometheus exposition writer (libstream/base/prom.c):
 * escaping of label values and HELP text, number formatting, histogram
 * buckets (cumulative, +Inf equal to _count, _sum scaled), and observations
 * from several threads at once adding up.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "stream/prom.h"

/* The buffer as a NUL-terminated string (appends the NUL). */
static const char *text(stream_buf *b)
{
    stream_buf_put_u8(b, 0);
    assert_true(stream_buf_ok(b) == 0);
    return (const char *)b->data;
}

static void test_label_values_are_escaped(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    stream_prom_label l[] = {{"topic", "a\"b\\c\nd"}, {"group", "g"}};
    stream_prom_sample(&b, "stream_x_total", l, 2, 3);
    assert_string_equal(text(&b), "stream_x_total{topic=\"a\\\"b\\\\c\\nd\",group=\"g\"} 3\n");
    stream_buf_release(&b);
}

static void test_help_escapes_backslash_and_newline_not_quotes(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    stream_prom_family(&b, "stream_y", STREAM_PROM_GAUGE, "a \"q\" \\ and\nmore");
    assert_string_equal(text(&b), "# HELP stream_y a \"q\" \\\\ and\\nmore\n"
                                  "# TYPE stream_y gauge\n");
    stream_buf_release(&b);
}

static void test_sample_without_labels_has_no_braces_and_numbers_read_back(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    stream_prom_sample(&b, "a", NULL, 0, 9007199254740992.0);
    stream_prom_sample(&b, "b", NULL, 0, 0.25);
    stream_prom_sample(&b, "c", NULL, 0, -7);
    stream_prom_sample(&b, "d", NULL, 0, 1.0 / 0.0);
    stream_prom_sample(&b, "e", NULL, 0, 0.0 / 0.0);
    stream_prom_sample(&b, "f", NULL, 0, 1e300);
    assert_string_equal(text(&b), "a 9007199254740992\nb 0.25\nc -7\nd +Inf\ne NaN\nf 1e+300\n");
    stream_buf_release(&b);
}

static void test_histogram_buckets_are_cumulative_and_end_with_inf(void **state)
{
    static const uint64_t bounds[] = {10, 100, 1000};
    stream_prom_hist h;
    stream_prom_hist_init(&h, bounds, 3, 0.001);
    stream_prom_hist_observe(&h, 5);    /* <= 10 */
    stream_prom_hist_observe(&h, 10);   /* <= 10: bounds are inclusive */
    stream_prom_hist_observe(&h, 11);   /* <= 100 */
    stream_prom_hist_observe(&h, 5000); /* above every bound */
    stream_buf b = STREAM_BUF_INIT;
    stream_prom_label l[] = {{"op", "produce"}};
    stream_prom_hist_write(&b, "stream_lat_seconds", l, 1, &h);
    assert_string_equal(text(&b), "stream_lat_seconds_bucket{op=\"produce\",le=\"0.01\"} 2\n"
                                  "stream_lat_seconds_bucket{op=\"produce\",le=\"0.1\"} 3\n"
                                  "stream_lat_seconds_bucket{op=\"produce\",le=\"1\"} 3\n"
                                  "stream_lat_seconds_bucket{op=\"produce\",le=\"+Inf\"} 4\n"
                                  "stream_lat_seconds_sum{op=\"produce\"} 5.026\n"
                                  "stream_lat_seconds_count{op=\"produce\"} 4\n");
    stream_buf_release(&b);
}

static void test_empty_histogram_without_labels(void **state)
{
    stream_prom_hist h;
    stream_prom_hist_init(&h, stream_prom_size_bytes_bounds, stream_prom_size_bytes_nbounds, 1);
    stream_buf b = STREAM_BUF_INIT;
    stream_prom_hist_write(&b, "s_bytes", NULL, 0, &h);
    const char *t = text(&b);
    assert_non_null(strstr(t, "s_bytes_bucket{le=\"256\"} 0\n"));
    assert_non_null(strstr(t, "s_bytes_bucket{le=\"6.71089e+07\"} 0\n"));
    assert_non_null(strstr(t, "s_bytes_bucket{le=\"+Inf\"} 0\ns_bytes_sum 0\ns_bytes_count 0\n"));
    stream_buf_release(&b);
}

static void *observer(void *arg)
{
    stream_prom_hist *h = arg;
    for (uint64_t i = 0; i < 100000; i++)
        stream_prom_hist_observe(h, i % 3 == 0 ? 60000 : 2000000000);
    return NULL;
}

static void test_observations_from_threads_add_up(void **state)
{
    stream_prom_hist h;
    stream_prom_hist_init(&h, stream_prom_latency_ns_bounds, stream_prom_latency_ns_nbounds, 1e-9);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, observer, &h), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    stream_buf b = STREAM_BUF_INIT;
    stream_prom_hist_write(&b, "l_seconds", NULL, 0, &h);
    const char *s = text(&b);
    /* 33,334 of each thread's 100,000 are 60 us: in le=0.0001 and above. */
    assert_non_null(strstr(s, "l_seconds_bucket{le=\"5e-05\"} 0\n"));
    assert_non_null(strstr(s, "l_seconds_bucket{le=\"0.0001\"} 133336\n"));
    assert_non_null(strstr(s, "l_seconds_bucket{le=\"2.5\"} 400000\n"));
    assert_non_null(strstr(s, "l_seconds_count 400000\n"));
    stream_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label_values_are_escaped),
        cmocka_unit_test(test_help_escapes_backslash_and_newline_not_quotes),
        cmocka_unit_test(test_sample_without_labels_has_no_braces_and_numbers_read_back),
        cmocka_unit_test(test_histogram_buckets_are_cumulative_and_end_with_inf),
        cmocka_unit_test(test_empty_histogram_without_labels),
        cmocka_unit_test(test_observations_from_threads_add_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
