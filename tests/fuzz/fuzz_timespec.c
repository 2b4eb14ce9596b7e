/*
 * fuzz_timespec.c - the time grammar, offset specs, durations and sizes
 * (timespec.h): what `-o`, `--to-datetime`, `--since` and friends take from
 * the command line.
 *
 * The input is one argument's text; every parser gets it, by (p, len) on an
 * exact-size copy (they must not need a NUL) and through the _str wrapper on
 * a NUL-terminated copy (same answer up to the first NUL). TZ is fixed to a
 * zone with DST and a non-hour offset, so local-time parsing is exercised
 * but reproducible.
 *
 * Properties checked:
 *   - results are in range: ranges have start <= end, offset specs have a
 *     start position, durations and sizes are >= 0;
 *   - "a printed time pasted back means the same instant": every parsed time
 *     in years 0000-9999 formats with stream_time_format and parses back to
 *     the same milliseconds; and a time taken from the input's bytes too;
 *   - stream_time_format handles any int64 (INT64_MIN included) within
 *     STREAM_TIME_FORMAT_MAX bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuzz_util.h"
#include "stream/error.h"
#include "stream/timespec.h"

/* 2026-11-24T10:00:00.123Z, a fixed "now" so runs reproduce. */
#define NOW_MS INT64_C(1795514400123)

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("TZ", "Australia/Adelaide", 1); /* +09:30 / +10:30 with DST */
    tzset();
    return 0;
}

/* Formats ms and parses it back: must be the same instant. */
static void round_trip(int64_t ms)
{
    char buf[STREAM_TIME_FORMAT_MAX];
    char err[256];
    int n = stream_time_format(ms, buf, sizeof buf);
    FUZZ_CHECK(n > 0 && (size_t)n < sizeof buf && strlen(buf) == (size_t)n);
    FUZZ_CHECK(buf[n - 1] == 'Z');
    stream_buf b;
    stream_buf_init(&b);
    stream_time_format_buf(&b, ms);
    FUZZ_CHECK(b.len == (size_t)n && memcmp(b.data, buf, (size_t)n) == 0);
    stream_buf_release(&b);
    if (n != 24 || buf[0] == '-') /* only YYYY-MM-DDThh:mm:ss.mmmZ is in the grammar */
        return;
    int64_t back;
    int rc = stream_time_parse(buf, (size_t)n, NOW_MS, &back, err, sizeof err);
    FUZZ_CHECK_MSG(rc == 0 && back == ms, "%s parsed back as %lld (%s), was %lld", buf,
                   (long long)back, rc ? err : "ok", (long long)ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = malloc(size ? size : 1); /* exact size: no NUL to lean on */
    FUZZ_CHECK(p != NULL);
    if (size > 0)
        memcpy(p, data, size);
    char *s = fuzz_strndup(data, size);
    size_t slen = strlen(s);
    bool same = slen == size; /* no NUL inside: the wrappers see it all */
    char err[256];
    int rc, rc2;

    int64_t ms, ms2;
    rc = stream_time_parse(p, size, NOW_MS, &ms, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == STREAM_EINVAL);
    rc2 = stream_time_parse_str(s, NOW_MS, &ms2, err, sizeof err);
    if (same)
        FUZZ_CHECK(rc == rc2 && (rc != 0 || ms == ms2));
    if (rc == 0)
        round_trip(ms);

    stream_time_range r, r2;
    rc = stream_time_range_parse(p, size, NOW_MS, &r, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == STREAM_EINVAL);
    rc2 = stream_time_range_parse_str(s, NOW_MS, &r2, err, sizeof err);
    if (same)
        FUZZ_CHECK(rc == rc2);
    if (rc == 0) {
        FUZZ_CHECK(r.has_start || r.start_ms == 0);
        FUZZ_CHECK(r.has_end || r.end_ms == INT64_MAX);
        FUZZ_CHECK(!r.has_start || !r.has_end || r.start_ms <= r.end_ms);
        if (r.has_start)
            round_trip(r.start_ms);
        if (r.has_end)
            round_trip(r.end_ms);
    }

    stream_offset_spec o, o2;
    rc = stream_offset_spec_parse(p, size, NOW_MS, &o, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == STREAM_EINVAL);
    rc2 = stream_offset_spec_parse_str(s, NOW_MS, &o2, err, sizeof err);
    if (same)
        FUZZ_CHECK(rc == rc2 && (rc != 0 || memcmp(&o, &o2, sizeof o) == 0));
    if (rc == 0) {
        FUZZ_CHECK(o.start.kind != STREAM_OFFSET_NONE);
        FUZZ_CHECK(o.start.kind >= STREAM_OFFSET_BEGINNING && o.start.kind <= STREAM_OFFSET_TIME);
        FUZZ_CHECK(o.end.kind == STREAM_OFFSET_NONE || o.end.kind == STREAM_OFFSET_END ||
                   o.end.kind == STREAM_OFFSET_ABSOLUTE || o.end.kind == STREAM_OFFSET_FROM_END ||
                   o.end.kind == STREAM_OFFSET_TIME);
        if (o.start.kind == STREAM_OFFSET_ABSOLUTE || o.start.kind == STREAM_OFFSET_FROM_END ||
            o.start.kind == STREAM_OFFSET_FROM_START)
            FUZZ_CHECK(o.start.value >= 0);
    }

    int64_t d, d2;
    rc = stream_duration_parse(p, size, &d, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == STREAM_EINVAL);
    rc2 = stream_duration_parse_str(s, &d2, err, sizeof err);
    if (same)
        FUZZ_CHECK(rc == rc2 && (rc != 0 || d == d2));
    if (rc == 0)
        FUZZ_CHECK(d >= 0);

    int64_t z, z2;
    rc = stream_size_parse(p, size, &z, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == STREAM_EINVAL);
    rc2 = stream_size_parse_str(s, &z2, err, sizeof err);
    if (same)
        FUZZ_CHECK(rc == rc2 && (rc != 0 || z == z2));
    if (rc == 0)
        FUZZ_CHECK(z >= 0);

    /* Any int64 formats; within years 0000-9999 it also parses back. */
    if (size >= 8) {
        int64_t any = 0;
        for (int i = 0; i < 8; i++)
            any = (int64_t)((uint64_t)any << 8 | data[i]);
        round_trip(any);
        round_trip(any % INT64_C(253402300800000)); /* inside years 0000-9999 */
    }
    char small[STREAM_TIME_FORMAT_MAX - 1];
    FUZZ_CHECK(stream_time_format(0, small, sizeof small) == STREAM_EINVAL);

    free(s);
    free(p);
    return 0;
}
