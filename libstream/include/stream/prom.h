/*
 * prom.h - Prometheus's text exposition format (version 0.0.4): a writer of
 * metric families into a stream_buf, and a fixed-bucket histogram whose
 * observations are lock-free atomics.
 *
 * What a scrape reads:
 *
 *   # HELP stream_topic_bytes_in_total Record batch bytes appended by produce.
 *   # TYPE stream_topic_bytes_in_total counter
 *   stream_topic_bytes_in_total{topic="orders"} 1.048576e+06
 *   # HELP stream_request_duration_seconds ...
 *   # TYPE stream_request_duration_seconds histogram
 *   stream_request_duration_seconds_bucket{op="produce",le="0.001"} 12
 *   ...
 *   stream_request_duration_seconds_bucket{op="produce",le="+Inf"} 40
 *   stream_request_duration_seconds_sum{op="produce"} 0.25
 *   stream_request_duration_seconds_count{op="produce"} 40
 *
 * The writer's invariants: a family's # HELP and # TYPE come once, before
 * its samples (stream_prom_family), and all of a family's samples follow it
 * without another family between (the format requires it; the caller keeps
 * the order). Label values are escaped as the format says (backslash,
 * double quote and newline as \\, \" and \n); HELP text escapes backslash
 * and newline. Names and label names are the caller's constants and are not
 * checked. Histogram buckets are written cumulative, le ascending, ending
 * with le="+Inf" equal to _count. A failed allocation sets the buffer's
 * `oom` (stream_buf_ok says so once at the end).
 *
 * A stream_prom_hist is observed from any thread (relaxed atomic adds: a
 * scrape may see an observation in _count before it sees it in a bucket,
 * which Prometheus tolerates between scrapes; it never sees counts go
 * down). Values are integers in the histogram's own unit (nanoseconds,
 * bytes); `scale` turns them into the family's unit (1e-9 for _seconds).
 */
#ifndef STREAM_PROM_H
#define STREAM_PROM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "stream/buf.h"

/* The most finite bucket bounds a histogram has (+Inf is implicit). */
#define STREAM_PROM_BUCKETS_MAX 24

typedef enum stream_prom_type {
    STREAM_PROM_COUNTER = 0,
    STREAM_PROM_GAUGE = 1,
    STREAM_PROM_HISTOGRAM = 2,
} stream_prom_type;

/* One label of a sample: name (a constant) and value (any bytes, escaped). */
typedef struct stream_prom_label {
    const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]*, not checked */
    const char *value; /* NUL-terminated; escaped when written */
} stream_prom_label;

/* A histogram with fixed bounds, observed lock-free from any thread. */
typedef struct stream_prom_hist {
    /* read-only */
    const uint64_t *bounds; /* nbounds upper bounds (inclusive), ascending, in the
                               histogram's unit; borrowed (a static table) */
    size_t nbounds;         /* <= STREAM_PROM_BUCKETS_MAX */
    double scale;           /* unit -> the family's unit (1e-9: ns -> seconds) */
    /* private */
    _Atomic uint64_t counts[STREAM_PROM_BUCKETS_MAX + 1]; /* per bucket, not cumulative;
                                                             the last is above every bound */
    _Atomic uint64_t sum;                                 /* of the values observed, in the unit */
    _Atomic uint64_t count;                               /* values observed */
} stream_prom_hist;

/* Bounds for latencies in nanoseconds (50 us .. 10 s) and for sizes in bytes
 * (256 B .. 64 MiB): static tables for stream_prom_hist_init. */
extern const uint64_t stream_prom_latency_ns_bounds[];
extern const size_t stream_prom_latency_ns_nbounds;
extern const uint64_t stream_prom_size_bytes_bounds[];
extern const size_t stream_prom_size_bytes_nbounds;
/* Bounds for counts of things (records per sync): powers of 4, 1 .. 2^20. */
extern const uint64_t stream_prom_records_bounds[];
extern const size_t stream_prom_records_nbounds;

/* Sets h up empty with `bounds` (borrowed; nbounds <= STREAM_PROM_BUCKETS_MAX,
 * more are ignored) and `scale`. Not thread-safe: before sharing h. */
void stream_prom_hist_init(stream_prom_hist *h, const uint64_t *bounds, size_t nbounds,
                           double scale);
/* Counts `value` (in h's unit). Thread-safe, lock-free, never fails. */
void stream_prom_hist_observe(stream_prom_hist *h, uint64_t value);

/* Writes a family's "# HELP name help" and "# TYPE name type" lines. */
void stream_prom_family(stream_buf *out, const char *name, stream_prom_type type, const char *help);
/* Writes one sample: name, labels (n of them; none: no braces), value.
 * Integral values up to 2^53 are written as integers, others with the fewest
 * digits (15 to 17) that read back as the same double;
 * NaN and infinities as the format spells them. */
void stream_prom_sample(stream_buf *out, const char *name, const stream_prom_label *labels,
                        size_t n, double value);
/* Writes a histogram's samples for `name` (the family, without suffix):
 * name_bucket{labels...,le="..."} per bound and +Inf, name_sum{labels} and
 * name_count{labels}. */
void stream_prom_hist_write(stream_buf *out, const char *name, const stream_prom_label *labels,
                            size_t n, const stream_prom_hist *h);

#endif /* STREAM_PROM_H */
