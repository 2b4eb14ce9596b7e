/*
 * test_progress.c - the progress line (libstream/tools/progress.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream/progress.h"

#define SEC INT64_C(1000000000)

static void test_known_size_shows_percentage_rates_and_eta(void **state)
{
    char line[256];
    /* 10 MiB of 40 MiB in 2 s: 5 MiB/s, 30 MiB left: 6 s. */
    stream_progress_format(line, sizeof(line), "stream-pub", 100000, 10 << 20, 40 << 20, 2 * SEC,
                           NULL, false);
    assert_string_equal(line, "stream-pub: 100,000 records  10.0 MiB / 40.0 MiB  25%  "
                              "50,000 rec/s  5.0 MiB/s  ETA 0:06");
}

static void test_eta_past_an_hour_has_hours(void **state)
{
    char line[256];
    /* 1 MiB of 4 GiB in 1 s: 4095 s left = 1:08:15. */
    stream_progress_format(line, sizeof(line), "p", 1, 1 << 20, INT64_C(4) << 30, SEC, NULL, false);
    assert_non_null(strstr(line, "  0%  "));
    assert_non_null(strstr(line, "ETA 1:08:15"));
}

static void test_unknown_size_has_no_percentage_nor_eta(void **state)
{
    char line[256];
    stream_progress_format(line, sizeof(line), "stream-sub", 1234567, 2048, 0, SEC, NULL, false);
    assert_string_equal(line, "stream-sub: 1,234,567 records  2.0 KiB  1,234,567 rec/s  2.0 KiB/s");
}

static void test_nothing_read_yet_has_no_eta_number(void **state)
{
    char line[256];
    stream_progress_format(line, sizeof(line), "p", 0, 0, 100, SEC, NULL, false);
    assert_string_equal(line, "p: 0 records  0 B / 100 B  0%  0 rec/s  0 B/s  ETA -:--");
}

static void test_note_goes_after_the_rates(void **state)
{
    char line[256];
    stream_progress_format(line, sizeof(line), "produce", 10, 100, 200, SEC, "p99 1.500 ms", false);
    assert_string_equal(line, "produce: 10 records  100 B / 200 B  50%  10 rec/s  100 B/s  "
                              "p99 1.500 ms  ETA 0:01");
    stream_progress_format(line, sizeof(line), "e2e", 10, 100, 0, SEC, "p99 2 ms", true);
    assert_string_equal(line, "e2e: 10 records  100 B  10 rec/s  100 B/s  p99 2 ms  in 0:01");
}

static void test_final_line_gives_the_time_taken(void **state)
{
    char line[256];
    stream_progress_format(line, sizeof(line), "p", 10, 100, 100, 75 * SEC, NULL, true);
    assert_string_equal(line, "p: 10 records  100 B / 100 B  100%  0 rec/s  1 B/s  in 1:15");
    /* More bytes than announced (a file that grew) stays at 100%. */
    stream_progress_format(line, sizeof(line), "p", 10, 150, 100, SEC, NULL, true);
    assert_non_null(strstr(line, "  100%  "));
}

/* A FILE in memory, which is not a terminal. */
static FILE *memfile(char **buf, size_t *len)
{
    FILE *f = open_memstream(buf, len);
    assert_non_null(f);
    return f;
}

static void test_auto_draws_nothing_when_not_a_terminal(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = memfile(&buf, &len);
    stream_progress p;
    stream_progress_init(&p, f, STREAM_PROGRESS_AUTO, "p", 0);
    assert_false(p.enabled);
    stream_progress_update(&p, 5, 50);
    stream_progress_finish(&p);
    fclose(f);
    assert_int_equal(len, 0);
    free(buf);
}

static void test_on_redraws_in_place_and_ends_with_a_newline(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = memfile(&buf, &len);
    stream_progress p;
    stream_progress_init(&p, f, STREAM_PROGRESS_ON, "p", 0);
    stream_progress_update(&p, 123456789, 1 << 30); /* the first update draws */
    stream_progress_update(&p, 1, 1);               /* within 200 ms: not drawn */
    stream_progress_finish(&p);
    stream_progress_finish(&p); /* a second finish draws nothing */
    fclose(f);
    /* Two lines, each starting with '\r'; the shorter final one is padded
     * over the first; one newline at the very end. */
    assert_int_equal(buf[0], '\r');
    char *second = strchr(buf + 1, '\r');
    assert_non_null(second);
    assert_non_null(strstr(buf, "p: 123,456,789 records  1.0 GiB"));
    size_t first_len = (size_t)(second - buf) - 1;        /* between the two '\r' */
    size_t second_len = len - (size_t)(second - buf) - 2; /* between '\r' and '\n' */
    assert_int_equal(first_len, second_len);
    assert_int_equal(buf[len - 1], '\n');
    assert_ptr_equal(strchr(buf, '\n'), buf + len - 1);
    free(buf);
}

static void test_off_draws_nothing(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = memfile(&buf, &len);
    stream_progress p;
    stream_progress_init(&p, f, STREAM_PROGRESS_OFF, "p", 10);
    stream_progress_update(&p, 5, 5);
    stream_progress_finish(&p);
    fclose(f);
    assert_int_equal(len, 0);
    assert_int_equal(p.records, 5);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_size_shows_percentage_rates_and_eta),
        cmocka_unit_test(test_eta_past_an_hour_has_hours),
        cmocka_unit_test(test_unknown_size_has_no_percentage_nor_eta),
        cmocka_unit_test(test_nothing_read_yet_has_no_eta_number),
        cmocka_unit_test(test_note_goes_after_the_rates),
        cmocka_unit_test(test_final_line_gives_the_time_taken),
        cmocka_unit_test(test_auto_draws_nothing_when_not_a_terminal),
        cmocka_unit_test(test_on_redraws_in_place_and_ends_with_a_newline),
        cmocka_unit_test(test_off_draws_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
