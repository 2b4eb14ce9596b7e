/*
 * test_timespec.c - the time grammar, offset specs, durations and sizes.
 *
 * Tests that depend on the zone set TZ to a POSIX rule string (no tzdata
 * needed) and restore it, so results do not depend on the machine.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stream/error.h"
#include "stream/timespec.h"

#define T_20261124_1000_UTC INT64_C(1795514400000) /* 2026-11-24T10:00:00Z */
#define NOW T_20261124_1000_UTC

static void set_tz(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

static int64_t parse_ok(const char *s)
{
    int64_t ms = 0;
    char err[256] = "";
    int rc = stream_time_parse_str(s, NOW, &ms, err, sizeof err);
    if (rc != 0)
        fail_msg("'%s' failed: %s", s, err);
    return ms;
}

static void expect_time_error(const char *s, const char *needle)
{
    int64_t ms = 12345;
    char err[256] = "";
    int rc = stream_time_parse_str(s, NOW, &ms, err, sizeof err);
    if (rc != STREAM_EINVAL)
        fail_msg("'%s' parsed (rc %d, %lld), expected an error", s, rc, (long long)ms);
    if (strstr(err, needle) == NULL)
        fail_msg("'%s': message '%s' lacks '%s'", s, err, needle);
    assert_int_equal(ms, 12345); /* untouched on failure */
}

static void test_time_parses_rfc3339_with_zone(void **state)
{
    set_tz("UTC0");
    assert_int_equal(parse_ok("2026-11-24T10:00:00Z"), T_20261124_1000_UTC);
    assert_int_equal(parse_ok("2026-11-24T10:00Z"), T_20261124_1000_UTC);
    assert_int_equal(parse_ok("2026-11-24t10:00:00z"), T_20261124_1000_UTC);
    assert_int_equal(parse_ok("2026-11-24T11:00:00+01:00"), T_20261124_1000_UTC);
    assert_int_equal(parse_ok("2026-11-24T11:30+0130"), T_20261124_1000_UTC);
    assert_int_equal(parse_ok("2026-11-24T12:00+02"), T_20261124_1000_UTC);
    assert_int_equal(parse_ok("2026-11-24T05:00:00-05:00"), T_20261124_1000_UTC);
    assert_int_equal(parse_ok("2026-11-24 10:00:30.123Z"), T_20261124_1000_UTC + 30123);
    assert_int_equal(parse_ok("2026-11-24T10:00:00.5Z"), T_20261124_1000_UTC + 500);
    assert_int_equal(parse_ok("2026-11-24T10:00:00,25Z"), T_20261124_1000_UTC + 250);
    /* Digits beyond milliseconds are truncated, not rounded. */
    assert_int_equal(parse_ok("2026-11-24T10:00:00.123999Z"), T_20261124_1000_UTC + 123);
    /* Leap day, and a leap second that RFC 3339 allows. */
    assert_int_equal(parse_ok("2024-02-29T00:00Z"), INT64_C(1709164800000));
    assert_int_equal(parse_ok("2016-12-31T23:59:60Z"), INT64_C(1483228800000));
    assert_int_equal(parse_ok("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(parse_ok("1969-12-31T23:59:59Z"), -1000);
}

static void test_time_without_zone_is_local_time(void **state)
{
    const char *old = getenv("TZ");
    char *saved = old ? strdup(old) : NULL;

    set_tz("UTC0");
    assert_int_equal(parse_ok("2026-11-24T10:00"), T_20261124_1000_UTC);
    assert_int_equal(parse_ok("2026-11-24"), INT64_C(1795478400000));

    /* Central European Time: +1 in winter, +2 in summer. */
    set_tz("CET-1CEST,M3.5.0,M10.5.0/3");
    assert_int_equal(parse_ok("2026-11-24T10:00"), T_20261124_1000_UTC - 3600000);
    assert_int_equal(parse_ok("2026-11-24 10:00:00"), T_20261124_1000_UTC - 3600000);
    assert_int_equal(parse_ok("2026-07-01T12:00"), INT64_C(1782907200000) - 7200000);
    assert_int_equal(parse_ok("2026-11-24"), INT64_C(1795478400000) - 3600000);
    /* An explicit zone wins over TZ. */
    assert_int_equal(parse_ok("2026-11-24T10:00Z"), T_20261124_1000_UTC);
    /* Epoch and relative times do not depend on the zone either. */
    assert_int_equal(parse_ok("1795514400"), T_20261124_1000_UTC);
    assert_int_equal(parse_ok("-1h"), NOW - 3600000);

    if (saved != NULL) {
        set_tz(saved);
        free(saved);
    } else {
        unsetenv("TZ");
        tzset();
    }
}

static void test_time_epoch_seconds_or_milliseconds_by_magnitude(void **state)
{
    assert_int_equal(parse_ok("1795514400"), T_20261124_1000_UTC);
    assert_int_equal(parse_ok("1795514400000"), T_20261124_1000_UTC);
    assert_int_equal(parse_ok("1795514400.25"), T_20261124_1000_UTC + 250);
    assert_int_equal(parse_ok("0"), 0);
    /* The threshold: below 1e11 seconds, from 1e11 milliseconds. */
    assert_int_equal(parse_ok("99999999999"), INT64_C(99999999999000));
    assert_int_equal(parse_ok("100000000000"), INT64_C(100000000000));
}

static void test_time_relative_to_now(void **state)
{
    assert_int_equal(parse_ok("now"), NOW);
    assert_int_equal(parse_ok("NOW"), NOW);
    assert_int_equal(parse_ok("-10m"), NOW - 600000);
    assert_int_equal(parse_ok("-2h"), NOW - 7200000);
    assert_int_equal(parse_ok("-1d"), NOW - 86400000);
    assert_int_equal(parse_ok("-30s"), NOW - 30000);
    assert_int_equal(parse_ok("-500ms"), NOW - 500);
    assert_int_equal(parse_ok("-1w"), NOW - 7 * INT64_C(86400000));
    assert_int_equal(parse_ok("-1h30m"), NOW - 5400000);
    assert_int_equal(parse_ok("+1h"), NOW + 3600000);
    assert_int_equal(parse_ok("-0s"), NOW);
}

static void test_time_rejects_bad_input_with_message(void **state)
{
    set_tz("UTC0");
    expect_time_error("2026-13-01", "bad time '2026-13-01': month 13");
    expect_time_error("2026-00-10", "month 00");
    expect_time_error("2026-02-30", "day 30 is out of range for 2026-02");
    expect_time_error("2025-02-29", "day 29");
    expect_time_error("2026-11-24T24:00", "hour 24");
    expect_time_error("2026-11-24T10:60", "minute 60");
    expect_time_error("2026-11-24T10:00:61", "second 61");
    expect_time_error("2026-11-24T10:00+25:00", "zone offset");
    expect_time_error("2026-11-24T10:00+01:", "zone minutes");
    expect_time_error("2026-11-24T10", "HH:MM");
    expect_time_error("2026-11-24X", "expected 'T'");
    expect_time_error("2026-11-24T10:00:00.Z", "digits after the decimal point");
    expect_time_error("2026-11-24T10:00:00Zjunk", "unexpected 'j'");
    expect_time_error("2026-1-24", "two-digit month");
    expect_time_error("", "empty");
    expect_time_error("yesterday", "expected YYYY-MM-DD");
    expect_time_error(" now", "expected YYYY-MM-DD");
    expect_time_error("-10", "missing unit after 10");
    expect_time_error("-10x", "unknown unit");
    expect_time_error("-10M", "unknown unit");
    expect_time_error("-", "expected a duration");
    expect_time_error("-h", "expected a number");
    expect_time_error("99999999999999999999", "too large");
    expect_time_error("-99999999999999w", "too large");
    expect_time_error("1795514400x", "epoch");
    expect_time_error("1795514400000.5", "epoch");
    /* Hostile bytes are shown escaped, not raw. */
    expect_time_error("\x01\xff", "'\\x01\\xff'");
}

/* Every prefix of valid inputs, each in a buffer of exactly its length, so
 * ASan catches any read past len. */
static void test_time_parsers_never_read_past_len(void **state)
{
    static const char *inputs[] = {
        "2026-11-24T10:00:30.123+01:00", "2026-11-24 10:00", "1795514400.5", "-1h30m500ms",
        "@2026-11-24T10:00..@-5m",       "s@1795514400000",  "16KiB",        "1h30m",
        "beginning..end",                "now",
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        size_t n = strlen(inputs[i]);
        for (size_t len = 0; len <= n; len++) {
            char *p = malloc(len ? len : 1);
            memcpy(p, inputs[i], len);
            int64_t v;
            stream_time_range tr;
            stream_offset_spec os;
            char err[128];
            int rc;
            rc = stream_time_parse(p, len, NOW, &v, err, sizeof err);
            assert_true(rc == 0 || rc == STREAM_EINVAL);
            rc = stream_time_range_parse(p, len, NOW, &tr, err, sizeof err);
            assert_true(rc == 0 || rc == STREAM_EINVAL);
            rc = stream_offset_spec_parse(p, len, NOW, &os, err, sizeof err);
            assert_true(rc == 0 || rc == STREAM_EINVAL);
            rc = stream_duration_parse(p, len, &v, err, sizeof err);
            assert_true(rc == 0 || rc == STREAM_EINVAL);
            rc = stream_size_parse(p, len, &v, err, sizeof err);
            assert_true(rc == 0 || rc == STREAM_EINVAL);
            /* A NULL errbuf is allowed. */
            rc = stream_time_parse(p, len, NOW, &v, NULL, 0);
            assert_true(rc == 0 || rc == STREAM_EINVAL);
            free(p);
        }
    }
}

static void test_time_range_forms(void **state)
{
    stream_time_range r;
    char err[256];
    set_tz("UTC0");
    assert_int_equal(stream_time_range_parse_str("@2026-11-24T09:00Z..@-5m", NOW, &r, err,
                                                 sizeof err),
                     0);
    assert_true(r.has_start && r.has_end);
    assert_int_equal(r.start_ms, NOW - 3600000);
    assert_int_equal(r.end_ms, NOW - 300000);

    /* A fraction of a second right before "..". */
    assert_int_equal(stream_time_range_parse_str("2026-11-24T09:00:00.5Z..2026-11-24T10:00Z",
                                                 NOW, &r, err, sizeof err),
                     0);
    assert_int_equal(r.start_ms, NOW - 3600000 + 500);
    assert_int_equal(r.end_ms, NOW);

    assert_int_equal(stream_time_range_parse_str("-1h..", NOW, &r, err, sizeof err), 0);
    assert_true(r.has_start && !r.has_end);
    assert_int_equal(r.start_ms, NOW - 3600000);
    assert_int_equal(r.end_ms, INT64_MAX);

    assert_int_equal(stream_time_range_parse_str("..now", NOW, &r, err, sizeof err), 0);
    assert_true(!r.has_start && r.has_end);
    assert_int_equal(r.end_ms, NOW);

    assert_int_equal(stream_time_range_parse_str("@-10m", NOW, &r, err, sizeof err), 0);
    assert_true(r.has_start && !r.has_end);
    assert_int_equal(r.start_ms, NOW - 600000);

    assert_int_equal(stream_time_range_parse_str("..", NOW, &r, err, sizeof err), STREAM_EINVAL);
    assert_non_null(strstr(err, "expected a time"));
    assert_int_equal(stream_time_range_parse_str("now..-1h", NOW, &r, err, sizeof err),
                     STREAM_EINVAL);
    assert_non_null(strstr(err, "the end is before the start"));
    assert_int_equal(stream_time_range_parse_str("@x..now", NOW, &r, err, sizeof err),
                     STREAM_EINVAL);
    assert_non_null(strstr(err, "bad time 'x'"));
    assert_int_equal(stream_time_range_parse_str("", NOW, &r, err, sizeof err), STREAM_EINVAL);
}

static void test_time_format_is_rfc3339_utc_with_ms(void **state)
{
    char buf[STREAM_TIME_FORMAT_MAX];
    assert_int_equal(stream_time_format(T_20261124_1000_UTC + 123, buf, sizeof buf), 24);
    assert_string_equal(buf, "2026-11-24T10:00:00.123Z");
    stream_time_format(0, buf, sizeof buf);
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    stream_time_format(-1, buf, sizeof buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    stream_time_format(INT64_C(1709164800000), buf, sizeof buf);
    assert_string_equal(buf, "2024-02-29T00:00:00.000Z");
    /* Extremes format without overflow and fit the documented size. */
    assert_true(stream_time_format(INT64_MIN, buf, sizeof buf) < STREAM_TIME_FORMAT_MAX);
    assert_true(stream_time_format(INT64_MAX, buf, sizeof buf) < STREAM_TIME_FORMAT_MAX);
    assert_int_equal(stream_time_format(0, buf, STREAM_TIME_FORMAT_MAX - 1), STREAM_EINVAL);

    stream_buf b = STREAM_BUF_INIT;
    stream_time_format_buf(&b, T_20261124_1000_UTC);
    assert_int_equal(b.len, 24);
    assert_memory_equal(b.data, "2026-11-24T10:00:00.000Z", 24);
    stream_buf_release(&b);
}

static void test_time_format_round_trips_through_parse(void **state)
{
    /* Every printed time pasted back is the same instant, whatever TZ is. */
    set_tz("CET-1CEST,M3.5.0,M10.5.0/3");
    uint64_t x = 88172645463325252u;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t ms = (int64_t)(x % UINT64_C(253402300800000)); /* 1970..9999 */
        char buf[STREAM_TIME_FORMAT_MAX];
        stream_time_format(ms, buf, sizeof buf);
        int64_t back = -1;
        char err[128];
        assert_int_equal(stream_time_parse_str(buf, NOW, &back, err, sizeof err), 0);
        assert_int_equal(back, ms);
    }
    set_tz("UTC0");
}

static stream_offset_spec spec_ok(const char *s)
{
    stream_offset_spec o;
    char err[256] = "";
    if (stream_offset_spec_parse_str(s, NOW, &o, err, sizeof err) != 0)
        fail_msg("'%s' failed: %s", s, err);
    return o;
}

static void expect_spec_error(const char *s, const char *needle)
{
    stream_offset_spec o;
    char err[256] = "";
    if (stream_offset_spec_parse_str(s, NOW, &o, err, sizeof err) != STREAM_EINVAL)
        fail_msg("'%s' parsed, expected an error", s);
    if (strstr(err, needle) == NULL)
        fail_msg("'%s': message '%s' lacks '%s'", s, err, needle);
}

static void test_offset_spec_keywords(void **state)
{
    const char *begin[] = {"beginning", "earliest", "oldest", "start", "BEGINNING"};
    for (size_t i = 0; i < 5; i++) {
        stream_offset_spec o = spec_ok(begin[i]);
        assert_int_equal(o.start.kind, STREAM_OFFSET_BEGINNING);
        assert_int_equal(o.end.kind, STREAM_OFFSET_NONE);
    }
    const char *end[] = {"end", "latest", "newest", "End"};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(spec_ok(end[i]).start.kind, STREAM_OFFSET_END);
    assert_int_equal(spec_ok("stored").start.kind, STREAM_OFFSET_STORED);
}

static void test_offset_spec_numbers(void **state)
{
    stream_offset_spec o = spec_ok("42");
    assert_int_equal(o.start.kind, STREAM_OFFSET_ABSOLUTE);
    assert_int_equal(o.start.value, 42);
    o = spec_ok("0");
    assert_int_equal(o.start.kind, STREAM_OFFSET_ABSOLUTE);
    assert_int_equal(o.start.value, 0);
    o = spec_ok("-5");
    assert_int_equal(o.start.kind, STREAM_OFFSET_FROM_END);
    assert_int_equal(o.start.value, 5);
    o = spec_ok("+3");
    assert_int_equal(o.start.kind, STREAM_OFFSET_FROM_START);
    assert_int_equal(o.start.value, 3);
    o = spec_ok("9223372036854775807");
    assert_int_equal(o.start.value, INT64_MAX);
}

static void test_offset_spec_times(void **state)
{
    set_tz("UTC0");
    stream_offset_spec o = spec_ok("@2026-11-24T10:00Z");
    assert_int_equal(o.start.kind, STREAM_OFFSET_TIME);
    assert_int_equal(o.start.value, T_20261124_1000_UTC);
    o = spec_ok("s@1795514400000");
    assert_int_equal(o.start.kind, STREAM_OFFSET_TIME);
    assert_int_equal(o.start.value, T_20261124_1000_UTC);
    o = spec_ok("@-5m");
    assert_int_equal(o.start.kind, STREAM_OFFSET_TIME);
    assert_int_equal(o.start.value, NOW - 300000);
    o = spec_ok("@1795514400");
    assert_int_equal(o.start.value, T_20261124_1000_UTC);
}

static void test_offset_spec_ranges(void **state)
{
    set_tz("UTC0");
    stream_offset_spec o = spec_ok("@2026-11-24T09:00..@-5m");
    assert_int_equal(o.start.kind, STREAM_OFFSET_TIME);
    assert_int_equal(o.start.value, NOW - 3600000);
    assert_int_equal(o.end.kind, STREAM_OFFSET_TIME);
    assert_int_equal(o.end.value, NOW - 300000);

    o = spec_ok("10..20");
    assert_int_equal(o.start.kind, STREAM_OFFSET_ABSOLUTE);
    assert_int_equal(o.end.kind, STREAM_OFFSET_ABSOLUTE);
    assert_int_equal(o.end.value, 20);

    o = spec_ok("-100..end");
    assert_int_equal(o.start.kind, STREAM_OFFSET_FROM_END);
    assert_int_equal(o.end.kind, STREAM_OFFSET_END);

    o = spec_ok("beginning..-10");
    assert_int_equal(o.end.kind, STREAM_OFFSET_FROM_END);
    assert_int_equal(o.end.value, 10);

    o = spec_ok("stored..@now");
    assert_int_equal(o.start.kind, STREAM_OFFSET_STORED);
    assert_int_equal(o.end.kind, STREAM_OFFSET_TIME);
    assert_int_equal(o.end.value, NOW);

    o = spec_ok("5..");
    assert_int_equal(o.end.kind, STREAM_OFFSET_NONE);
}

static void test_offset_spec_rejects_bad_input_with_message(void **state)
{
    expect_spec_error("bogus", "bad offset 'bogus': expected beginning, end, stored");
    expect_spec_error("", "expected beginning");
    expect_spec_error("12x", "expected beginning");
    expect_spec_error("-", "expected beginning");
    expect_spec_error("+-3", "expected beginning");
    expect_spec_error("99999999999999999999", "number too large");
    expect_spec_error("@", "bad time '': empty");
    expect_spec_error("@2026-13-01", "month 13");
    expect_spec_error("20..10", "the end is before the start");
    expect_spec_error("@now..@-1h", "the end is before the start");
    expect_spec_error("10..stored", "expected end, N, -N or @TIME after '..'");
    expect_spec_error("10..beginning", "after '..'");
    expect_spec_error("10..+5", "after '..'");
    expect_spec_error("..10", "expected beginning");
}

static void test_duration_parse(void **state)
{
    int64_t ms;
    char err[256];
    struct {
        const char *s;
        int64_t ms;
    } ok[] = {
        {"10s", 10000},   {"5m", 300000},       {"100ms", 100},   {"1h30m", 5400000},
        {"250", 250},     {"0", 0},             {"1d", 86400000}, {"1w", 604800000},
        {"2m30s", 150000}, {"1s500ms", 1500},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(stream_duration_parse_str(ok[i].s, &ms, err, sizeof err), 0);
        assert_int_equal(ms, ok[i].ms);
    }
    struct {
        const char *s, *needle;
    } bad[] = {
        {"-5s", "cannot be negative"},   {"", "expected a duration"},
        {"5x", "unknown unit"},          {"s", "expected a number"},
        {"10 s", "unknown unit"},        {"5M", "unknown unit"},
        {"1h30", "missing unit after 30"}, {"99999999999999w", "too large"},
        {"1.5s", "unknown unit"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(stream_duration_parse_str(bad[i].s, &ms, err, sizeof err),
                         STREAM_EINVAL);
        if (strstr(err, bad[i].needle) == NULL)
            fail_msg("'%s': message '%s' lacks '%s'", bad[i].s, err, bad[i].needle);
        assert_non_null(strstr(err, "bad duration"));
    }
}

static void test_size_parse(void **state)
{
    int64_t n;
    char err[256];
    struct {
        const char *s;
        int64_t n;
    } ok[] = {
        {"512", 512},
        {"0", 0},
        {"1b", 1},
        {"1k", 1024},
        {"1K", 1024},
        {"1kb", 1024},
        {"16KiB", 16384},
        {"64m", INT64_C(64) << 20},
        {"1MB", INT64_C(1) << 20},
        {"1g", INT64_C(1) << 30},
        {"2t", INT64_C(2) << 40},
        {"8388607t", INT64_C(8388607) << 40},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (stream_size_parse_str(ok[i].s, &n, err, sizeof err) != 0)
            fail_msg("'%s': %s", ok[i].s, err);
        assert_int_equal(n, ok[i].n);
    }
    struct {
        const char *s, *needle;
    } bad[] = {
        {"1x", "unknown unit 'x'"}, {"k", "expected a number"},  {"", "expected a number"},
        {"-1", "expected a number"}, {"1kk", "unknown unit"},    {"8388608t", "too large"},
        {"1.5m", "unknown unit"},   {"1 k", "unknown unit"},     {"1bb", "unknown unit"},
        {"99999999999999999999", "number too large"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(stream_size_parse_str(bad[i].s, &n, err, sizeof err), STREAM_EINVAL);
        if (strstr(err, bad[i].needle) == NULL)
            fail_msg("'%s': message '%s' lacks '%s'", bad[i].s, err, bad[i].needle);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_parses_rfc3339_with_zone),
        cmocka_unit_test(test_time_without_zone_is_local_time),
        cmocka_unit_test(test_time_epoch_seconds_or_milliseconds_by_magnitude),
        cmocka_unit_test(test_time_relative_to_now),
        cmocka_unit_test(test_time_rejects_bad_input_with_message),
        cmocka_unit_test(test_time_parsers_never_read_past_len),
        cmocka_unit_test(test_time_range_forms),
        cmocka_unit_test(test_time_format_is_rfc3339_utc_with_ms),
        cmocka_unit_test(test_time_format_round_trips_through_parse),
        cmocka_unit_test(test_offset_spec_keywords),
        cmocka_unit_test(test_offset_spec_numbers),
        cmocka_unit_test(test_offset_spec_times),
        cmocka_unit_test(test_offset_spec_ranges),
        cmocka_unit_test(test_offset_spec_rejects_bad_input_with_message),
        cmocka_unit_test(test_duration_parse),
        cmocka_unit_test(test_size_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
