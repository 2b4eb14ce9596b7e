/*
 * histogram.c - a log-linear histogram (see histogram.h for the layout).
 *
 * A value maps to its bucket with a count-leading-zeros and two shifts, so
 * recording costs a few instructions and no allocation; percentiles walk the
 * buckets once, which is cheap next to what a benchmark measures.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stream/error.h"
#include "stream/histogram.h"

/* Position of the highest set bit of v (v > 0). */
static int msb(uint64_t v)
{
    return 63 - __builtin_clzll(v);
}

static size_t bucket_of(const stream_histogram *h, uint64_t v)
{
    const int s = h->sub_bits;
    if (v < (UINT64_C(1) << s))
        return (size_t)v;
    const int k = msb(v);
    const int shift = k - s + 1;
    const uint64_t half = UINT64_C(1) << (s - 1);
    return (size_t)((UINT64_C(1) << s) + (uint64_t)(k - s) * half + ((v >> shift) - half));
}

/* The largest value that falls into bucket i: what a percentile reports. */
static uint64_t bucket_top(const stream_histogram *h, size_t i)
{
    const int s = h->sub_bits;
    const uint64_t linear = UINT64_C(1) << s;
    if (i < linear)
        return i;
    const uint64_t half = UINT64_C(1) << (s - 1);
    const uint64_t j = i - linear;
    const int k = (int)(j / half) + s;
    const int shift = k - s + 1;
    const uint64_t low = (j % half + half) << shift;
    return low + ((UINT64_C(1) << shift) - 1);
}

int stream_histogram_init(stream_histogram *h, int64_t max_value, int sub_bits)
{
    memset(h, 0, sizeof(*h));
    if (sub_bits == 0)
        sub_bits = STREAM_HISTOGRAM_DEFAULT_SUB_BITS;
    if (max_value < 1 || sub_bits < 2 || sub_bits > 16)
        return STREAM_EINVAL;
    h->sub_bits = sub_bits;
    h->max_value = max_value;
    h->bucket_count = bucket_of(h, (uint64_t)max_value) + 1;
    h->counts = calloc(h->bucket_count, sizeof(*h->counts));
    if (h->counts == NULL) {
        memset(h, 0, sizeof(*h));
        return STREAM_ENOMEM;
    }
    stream_histogram_reset(h);
    return 0;
}

void stream_histogram_release(stream_histogram *h)
{
    free(h->counts);
    memset(h, 0, sizeof(*h));
}

void stream_histogram_reset(stream_histogram *h)
{
    if (h->counts)
        memset(h->counts, 0, h->bucket_count * sizeof(*h->counts));
    h->count = 0;
    h->clamped = 0;
    h->min = INT64_MAX;
    h->max = 0;
    h->sum = 0;
}

void stream_histogram_record_n(stream_histogram *h, int64_t value, uint64_t n)
{
    if (n == 0 || h->counts == NULL)
        return;
    if (value < 0)
        value = 0;
    if (value > h->max_value) {
        value = h->max_value;
        h->clamped += n;
    }
    h->counts[bucket_of(h, (uint64_t)value)] += n;
    h->count += n;
    h->sum += (double)value * (double)n;
    if (value < h->min)
        h->min = value;
    if (value > h->max)
        h->max = value;
}

void stream_histogram_record(stream_histogram *h, int64_t value)
{
    stream_histogram_record_n(h, value, 1);
}

int stream_histogram_merge(stream_histogram *dst, const stream_histogram *src)
{
    if (dst->counts == NULL || src->counts == NULL || dst->max_value != src->max_value ||
        dst->sub_bits != src->sub_bits)
        return STREAM_EINVAL;
    if (src->count == 0)
        return 0;
    for (size_t i = 0; i < dst->bucket_count; i++)
        dst->counts[i] += src->counts[i];
    dst->count += src->count;
    dst->clamped += src->clamped;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    return 0;
}

int64_t stream_histogram_percentile(const stream_histogram *h, double pct)
{
    if (h->count == 0)
        return 0;
    if (!(pct > 0))
        return h->min;
    if (pct >= 100)
        return h->max;
    /* The rank of the value wanted, 1-based: ceil(pct% of count). */
    double r = ceil(pct / 100.0 * (double)h->count);
    uint64_t rank = r < 1 ? 1 : (uint64_t)r;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (size_t i = 0; i < h->bucket_count; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t top = bucket_top(h, i);
            if (top > (uint64_t)h->max)
                return h->max;
            return (int64_t)top < h->min ? h->min : (int64_t)top;
        }
    }
    return h->max; /* not reached: the counts add up to count */
}

double stream_histogram_mean(const stream_histogram *h)
{
    return h->count ? h->sum / (double)h->count : 0;
}
