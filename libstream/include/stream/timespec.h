/*
 * timespec.h - the one time grammar, offset specs, durations and byte sizes.
 *
 * Every program that takes a time (start offsets `-o @...`, group resets,
 * offset look-ups) or prints one goes through this module, so `stream-sub`,
 * `stream-topics` and `stream-shell` accept exactly the same strings. The
 * grammar, for users, is in share/doc/formats.md. In short:
 *
 *   TIME      := ISO | EPOCH | RELATIVE | "now"
 *   ISO       := YYYY-MM-DD [ ("T"|"t"|" ") hh:mm [":" ss ["." fraction]] [ZONE] ]
 *   ZONE      := "Z" | "z" | ("+"|"-") hh [":"] mm | ("+"|"-") hh
 *   EPOCH     := digits                  seconds when < 1e11, else milliseconds
 *   RELATIVE  := ("-"|"+") DURATION      relative to the caller's now_ms
 *   DURATION  := (number UNIT)+          UNIT := ms | s | m | h | d | w
 *   TIMERANGE := [TIME] ".." [TIME]      each side may carry a leading "@"
 *
 * Decisions a user should know (documented in formats.md):
 *   - A date-time without a zone is LOCAL time (the TZ environment variable),
 *     as `date -d`, `journalctl --since` and Kafka's `--to-datetime` read it;
 *     a date alone is local midnight. Printed times are always UTC with `Z`,
 *     so a printed time pasted back means the same instant.
 *   - EPOCH: below 100000000000 (1e11, the year 5138 in seconds, March 1973
 *     in milliseconds) the number is seconds, otherwise milliseconds.
 *   - Fractions of a second beyond milliseconds are truncated.
 *   - d = 86400 s and w = 7 d exactly (no calendar or DST arithmetic).
 *
 * Every parser takes (p, len), never reads past p[len - 1] and needs no NUL;
 * the stream_*_parse_str wrappers take a NUL-terminated string. All return 0
 * or STREAM_EINVAL, and on failure write a sentence naming the input and what
 * is wrong into errbuf (may be NULL), e.g. "bad time '2026-13-01': month 13
 * is out of range (01-12)". Nothing here allocates. The local-time conversion
 * uses mktime(3) and so reads the process's TZ setting; tests set TZ.
 */
#ifndef STREAM_TIMESPEC_H
#define STREAM_TIMESPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream/buf.h"

/* Parses TIME into milliseconds since the epoch. `now_ms` anchors "now" and
 * relative times ("-10m" is now_ms - 600000). A leading "@" is not part of
 * TIME (offset specs strip it); pass the text after it. */
int stream_time_parse(const char *p, size_t len, int64_t now_ms, int64_t *out_ms, char *errbuf,
                      size_t errbuf_len);
int stream_time_parse_str(const char *s, int64_t now_ms, int64_t *out_ms, char *errbuf,
                          size_t errbuf_len);

/* A half-open time interval [start_ms, end_ms). A missing side is open. */
typedef struct stream_time_range {
    bool has_start;   /* false for "..B": from the beginning of time */
    int64_t start_ms; /* inclusive; 0 when !has_start */
    bool has_end;     /* false for "A..": no end (until now / follow) */
    int64_t end_ms;   /* exclusive; INT64_MAX when !has_end */
} stream_time_range;

/* Parses TIMERANGE ("@2026-11-24T10:00..@-5m", "-1h..", "..now"). A string
 * without ".." is a single TIME and gives an open-ended range from it. An end
 * before the start is STREAM_EINVAL; ".." alone is too. */
int stream_time_range_parse(const char *p, size_t len, int64_t now_ms, stream_time_range *out,
                            char *errbuf, size_t errbuf_len);
int stream_time_range_parse_str(const char *s, int64_t now_ms, stream_time_range *out,
                                char *errbuf, size_t errbuf_len);

/* Bytes stream_time_format needs, NUL included ("-292278994-08-17T07:12:55.808Z"
 * is the longest; ordinary times take 25). */
#define STREAM_TIME_FORMAT_MAX 40

/* Writes `ms` as RFC 3339 in UTC with milliseconds, "2026-11-24T10:00:00.123Z",
 * NUL-terminated. Years outside 0000-9999 are written with as many digits as
 * they need (and a "-" before the year for negative ones), so any int64
 * formats. Returns the length written (without the NUL), or STREAM_EINVAL when
 * buf_len < STREAM_TIME_FORMAT_MAX. */
int stream_time_format(int64_t ms, char *buf, size_t buf_len);
/* The same, appended to a buffer (no NUL). */
void stream_time_format_buf(stream_buf *out, int64_t ms);

/*
 * Offset specs, for `-o` (kcat's grammar, plus times and ranges):
 *
 *   POS   := "beginning" | "earliest" | "oldest" | "start"   log start offset
 *          | "end" | "latest" | "newest"             log end offset
 *          | "stored"                                the group's committed offset
 *          | N                                       absolute offset N >= 0
 *          | "-" N                                   N before the end, per partition
 *          | "+" N                                   N after the log start, per partition
 *          | "@" TIME | "s@" TIME                    first offset with timestamp >= TIME
 *   SPEC  := POS [ ".." [END] ]
 *   END   := "end" | N | "-" N | "@" TIME            exclusive; "end" = the end
 *                                                    offsets as they were at start
 *
 * Keywords are matched case-insensitively. TIME is resolved to milliseconds
 * here (with now_ms), so a spec is a plain value the caller can keep.
 */
typedef enum stream_offset_kind {
    STREAM_OFFSET_NONE = 0,  /* no position (only as a range's end: open) */
    STREAM_OFFSET_BEGINNING, /* the log start offset */
    STREAM_OFFSET_END,       /* the log end offset (high watermark) */
    STREAM_OFFSET_STORED,    /* the consumer group's committed offset */
    STREAM_OFFSET_ABSOLUTE,  /* value = the offset */
    STREAM_OFFSET_FROM_END,  /* value = N: end offset - N (clamped to the start) */
    STREAM_OFFSET_FROM_START, /* value = N: log start offset + N (clamped to the end) */
    STREAM_OFFSET_TIME,      /* value = ms since epoch: first offset with ts >= it */
} stream_offset_kind;

typedef struct stream_offset_pos {
    stream_offset_kind kind; /* what `value` means */
    int64_t value;           /* offset, count or ms per kind; 0 when unused */
} stream_offset_pos;

typedef struct stream_offset_spec {
    stream_offset_pos start; /* never STREAM_OFFSET_NONE after a successful parse */
    stream_offset_pos end;   /* STREAM_OFFSET_NONE (no end), END, ABSOLUTE,
                                FROM_END or TIME; exclusive */
} stream_offset_spec;

/* Parses SPEC. Errors: STREAM_EINVAL with errbuf, e.g. "bad offset 'x': expected
 * beginning, end, stored, N, -N, +N or @TIME". */
int stream_offset_spec_parse(const char *p, size_t len, int64_t now_ms, stream_offset_spec *out,
                             char *errbuf, size_t errbuf_len);
int stream_offset_spec_parse_str(const char *s, int64_t now_ms, stream_offset_spec *out,
                                 char *errbuf, size_t errbuf_len);

/* Parses a DURATION for settings and flags ("10s", "5m", "100ms", "1h30m")
 * into milliseconds. A bare number is milliseconds ("250" = 250 ms), as in
 * Kafka's *.ms settings. Negative durations and overflow are STREAM_EINVAL. */
int stream_duration_parse(const char *p, size_t len, int64_t *out_ms, char *errbuf,
                          size_t errbuf_len);
int stream_duration_parse_str(const char *s, int64_t *out_ms, char *errbuf, size_t errbuf_len);

/* Parses a byte size ("512", "1k", "64m", "1g", "2t", "16KiB", "1MB"): a
 * non-negative integer and an optional case-insensitive unit b, k, m, g, t
 * (optionally followed by "b" or "ib"). Units are binary: 1k = 1024 bytes,
 * also when written "kB" (what `-b 64m` users mean). Overflow is STREAM_EINVAL. */
int stream_size_parse(const char *p, size_t len, int64_t *out_bytes, char *errbuf,
                      size_t errbuf_len);
int stream_size_parse_str(const char *s, int64_t *out_bytes, char *errbuf, size_t errbuf_len);

#endif /* STREAM_TIMESPEC_H */
