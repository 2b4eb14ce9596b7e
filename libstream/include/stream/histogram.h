/*
 * histogram.h - a log-linear (HDR-like) histogram of non-negative integers,
 * for latency percentiles in stream-bench and anywhere else we measure.
 *
 * Why log-linear: latencies span six orders of magnitude (a microsecond on
 * loopback, a second behind an fsync), and what matters is the relative
 * error, not the absolute one. Values below 2^sub_bits get a bucket each
 * (exact); above that, every power-of-two range [2^k, 2^(k+1)) is cut into
 * 2^(sub_bits-1) equal buckets, so any recorded value is known to within a
 * relative error of 2^-(sub_bits-1) (0.8% with the default sub_bits 8).
 *
 *   value:   0 1 2 ... 255 | 256 258 ... 510 | 512 516 ... 1020 | 1024 ...
 *   bucket:  0 1 2 ... 255 | 256 257 ... 383 | 384 385 ...  511 | 512 ...
 *            (exact)         (width 2)         (width 4)          (width 8)
 *
 * Invariants: counts has bucket_count entries, allocated once at init;
 * recording never allocates (a hot loop may record every sample); values
 * above max_value are counted in the last bucket and in `clamped`, values
 * below zero as zero; min, max, count and sum are exact over what was
 * recorded (after that clamping). Not thread-safe: give each thread its own
 * histogram and stream_histogram_merge them at the end.
 */
#ifndef STREAM_HISTOGRAM_H
#define STREAM_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

#define STREAM_HISTOGRAM_DEFAULT_SUB_BITS 8

typedef struct stream_histogram {
    /* read-only */
    int64_t max_value; /* largest value tracked in its own bucket */
    int sub_bits;      /* precision: relative error <= 2^-(sub_bits-1) */
    uint64_t count;    /* values recorded */
    uint64_t clamped;  /* values that were above max_value (stored as it) */
    int64_t min;       /* smallest value recorded; INT64_MAX while empty */
    int64_t max;       /* largest value recorded; 0 while empty */
    double sum;        /* sum of values recorded, for the mean (a double: a
                          billion samples of seconds in ns overflow int64) */
    /* private */
    uint64_t *counts;    /* per bucket */
    size_t bucket_count; /* entries in counts */
} stream_histogram;

/* Sets up an empty histogram for values 0..max_value (>= 1) with sub_bits of
 * precision (2..16; 0 for the default 8). Allocates the buckets (for
 * max_value 2^40, sub_bits 8: about 4,400 buckets, 35 KiB). Returns 0,
 * STREAM_EINVAL (a bad argument), STREAM_ENOMEM. On failure *h is left
 * released (stream_histogram_release is still safe). */
int stream_histogram_init(stream_histogram *h, int64_t max_value, int sub_bits);

/* Frees the buckets; h can be init'ed again. Safe on a zeroed struct. */
void stream_histogram_release(stream_histogram *h);

/* Forgets every value (keeps the buckets). */
void stream_histogram_reset(stream_histogram *h);

/* Records `value` once / n times. Never allocates, never fails. */
void stream_histogram_record(stream_histogram *h, int64_t value);
void stream_histogram_record_n(stream_histogram *h, int64_t value, uint64_t n);

/* Adds every value of src into dst. Both must have the same max_value and
 * sub_bits: STREAM_EINVAL otherwise (dst unchanged). */
int stream_histogram_merge(stream_histogram *dst, const stream_histogram *src);

/* The value at percentile `pct` (0..100): the smallest recorded value v such
 * that at least pct% of the values are <= v, up to the precision above
 * (reported as the top of its bucket, never above the exact max nor below
 * the exact min). 0 for an empty histogram. pct 0 gives the min, 100 the
 * max. */
int64_t stream_histogram_percentile(const stream_histogram *h, double pct);

/* The mean of the values recorded; 0 when empty. */
double stream_histogram_mean(const stream_histogram *h);

#endif /* STREAM_HISTOGRAM_H */
