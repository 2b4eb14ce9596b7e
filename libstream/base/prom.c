/*
 * prom.c - Prometheus's text exposition format (see prom.h).
 *
 * The writer appends text to a stream_buf, so a scrape of a thousand
 * partitions is one growing buffer and no allocation per sample. Numbers
 * are printed with snprintf into a small stack buffer: integers (most of
 * what a broker counts) as integers, the rest with the fewest digits
 * (15 to 17) that read back as the same double.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream/prom.h"

const uint64_t stream_prom_latency_ns_bounds[] = {
    50000,     100000,     250000,     500000,     1000000,     2500000,
    5000000,   10000000,   25000000,   50000000,   100000000,   250000000,
    500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};
const size_t stream_prom_latency_ns_nbounds =
    sizeof(stream_prom_latency_ns_bounds) / sizeof(stream_prom_latency_ns_bounds[0]);

const uint64_t stream_prom_size_bytes_bounds[] = {
    256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
};
const size_t stream_prom_size_bytes_nbounds =
    sizeof(stream_prom_size_bytes_bounds) / sizeof(stream_prom_size_bytes_bounds[0]);

const uint64_t stream_prom_records_bounds[] = {
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576,
};
const size_t stream_prom_records_nbounds =
    sizeof(stream_prom_records_bounds) / sizeof(stream_prom_records_bounds[0]);

void stream_prom_hist_init(stream_prom_hist *h, const uint64_t *bounds, size_t nbounds,
                           double scale)
{
    if (nbounds > STREAM_PROM_BUCKETS_MAX)
        nbounds = STREAM_PROM_BUCKETS_MAX;
    h->bounds = bounds;
    h->nbounds = nbounds;
    h->scale = scale;
    for (size_t i = 0; i <= STREAM_PROM_BUCKETS_MAX; i++)
        atomic_init(&h->counts[i], 0);
    atomic_init(&h->sum, 0);
    atomic_init(&h->count, 0);
}

void stream_prom_hist_observe(stream_prom_hist *h, uint64_t value)
{
    size_t i = 0; /* a dozen bounds: a linear scan beats a search */
    while (i < h->nbounds && value > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, value, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

static void put_str(stream_buf *out, const char *s)
{
    stream_buf_put(out, s, strlen(s));
}

/* Writes s with backslash and newline escaped, and the double quote too
 * when `quote` (label values; HELP text leaves it as is). */
static void put_escaped(stream_buf *out, const char *s, bool quote)
{
    const char *run = s;
    for (; *s; s++) {
        const char *esc = NULL;
        if (*s == '\\')
            esc = "\\\\";
        else if (*s == '\n')
            esc = "\\n";
        else if (*s == '"' && quote)
            esc = "\\\"";
        if (esc == NULL)
            continue;
        stream_buf_put(out, run, (size_t)(s - run));
        put_str(out, esc);
        run = s + 1;
    }
    stream_buf_put(out, run, (size_t)(s - run));
}

static void put_number(stream_buf *out, double v)
{
    char num[40];
    if (isnan(v))
        snprintf(num, sizeof(num), "NaN");
    else if (isinf(v))
        snprintf(num, sizeof(num), v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) <= 9007199254740992.0) {
        /* Most samples: by hand, a scrape writes thousands of them. */
        uint64_t u = (uint64_t)fabs(v);
        char *e = num + sizeof(num), *p = e;
        do
            *--p = (char)('0' + u % 10);
        while ((u /= 10) != 0);
        if (v < 0)
            *--p = '-';
        stream_buf_put(out, p, (size_t)(e - p));
        return;
    } else
        for (int digits = 15; digits <= 17; digits++) {
            /* the shortest that reads back as v: 0.1, not 0.10000000000000001 */
            snprintf(num, sizeof(num), "%.*g", digits, v);
            if (strtod(num, NULL) == v)
                break;
        }
    put_str(out, num);
}

/* name{l1="v1",...,extra_name="extra_value"}: the braces only when some
 * label is there. */
static void put_series(stream_buf *out, const char *name, const char *suffix,
                       const stream_prom_label *labels, size_t n, const char *extra_name,
                       const char *extra_value)
{
    put_str(out, name);
    put_str(out, suffix);
    if (n == 0 && extra_name == NULL)
        return;
    stream_buf_put_u8(out, '{');
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            stream_buf_put_u8(out, ',');
        put_str(out, labels[i].name);
        put_str(out, "=\"");
        put_escaped(out, labels[i].value, true);
        stream_buf_put_u8(out, '"');
    }
    if (extra_name != NULL) {
        if (n > 0)
            stream_buf_put_u8(out, ',');
        put_str(out, extra_name);
        put_str(out, "=\"");
        put_escaped(out, extra_value, true);
        stream_buf_put_u8(out, '"');
    }
    stream_buf_put_u8(out, '}');
}

void stream_prom_family(stream_buf *out, const char *name, stream_prom_type type, const char *help)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    put_str(out, "# HELP ");
    put_str(out, name);
    stream_buf_put_u8(out, ' ');
    put_escaped(out, help, false);
    put_str(out, "\n# TYPE ");
    put_str(out, name);
    stream_buf_put_u8(out, ' ');
    put_str(out, types[type <= STREAM_PROM_HISTOGRAM ? type : STREAM_PROM_GAUGE]);
    stream_buf_put_u8(out, '\n');
}

void stream_prom_sample(stream_buf *out, const char *name, const stream_prom_label *labels,
                        size_t n, double value)
{
    put_series(out, name, "", labels, n, NULL, NULL);
    stream_buf_put_u8(out, ' ');
    put_number(out, value);
    stream_buf_put_u8(out, '\n');
}

void stream_prom_hist_write(stream_buf *out, const char *name, const stream_prom_label *labels,
                            size_t n, const stream_prom_hist *h)
{
    /* The total first: buckets read after it can only hold more (relaxed
     * adds), so le="+Inf" is written as the count itself and stays >= every
     * finite bucket as the format requires. */
    uint64_t count = atomic_load_explicit(&h->count, memory_order_relaxed);
    uint64_t sum = atomic_load_explicit(&h->sum, memory_order_relaxed);
    uint64_t cum = 0;
    char le[40];
    for (size_t i = 0; i < h->nbounds; i++) {
        cum += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        if (cum > count)
            cum = count;
        snprintf(le, sizeof(le), "%g", (double)h->bounds[i] * h->scale);
        put_series(out, name, "_bucket", labels, n, "le", le);
        stream_buf_put_u8(out, ' ');
        put_number(out, (double)cum);
        stream_buf_put_u8(out, '\n');
    }
    put_series(out, name, "_bucket", labels, n, "le", "+Inf");
    stream_buf_put_u8(out, ' ');
    put_number(out, (double)count);
    stream_buf_put_u8(out, '\n');
    put_series(out, name, "_sum", labels, n, NULL, NULL);
    stream_buf_put_u8(out, ' ');
    put_number(out, (double)sum * h->scale);
    stream_buf_put_u8(out, '\n');
    put_series(out, name, "_count", labels, n, NULL, NULL);
    stream_buf_put_u8(out, ' ');
    put_number(out, (double)count);
    stream_buf_put_u8(out, '\n');
}
