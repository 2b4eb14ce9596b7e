/*
 * peers.h - what the peer load generators of `make bench-peers` share: a
 * monotonic clock, dying with a message, the value filler, a latency
 * sample set and the JSON result line.
 *
 * These programs are built by tests/bench/peers.sh against libnats, hiredis
 * and libc only (never by the main Makefile, never against libstream), so
 * they are header-only helpers in the benchmark's own directory.
 *
 * Results go to stdout as one JSON object per run, with the field names of
 * stream-bench(1)'s --json output (records, records_per_sec, mb_per_sec,
 * latency_ms.{avg,p50,p95,p99,p999,max}), so peers.sh reads every system's
 * figures the same way. MB are 10^6 bytes of payload, as in stream-bench.
 */
#ifndef PEERS_H
#define PEERS_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline int64_t peers_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

__attribute__((format(printf, 2, 3), noreturn)) static inline void peers_die(const char *prog,
                                                                             const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* A positive integer option, or death. */
static inline int64_t peers_parse_count(const char *prog, const char *s, const char *what)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || v <= 0)
        peers_die(prog, "invalid %s '%s' (expected a positive integer)", what, s);
    return (int64_t)v;
}

/* Letters from the same xorshift as stream-bench's values, so no system gets
 * an easier payload than another. */
static inline void peers_fill_value(uint8_t *v, size_t n)
{
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v[i] = (uint8_t)('a' + x % 26);
    }
}

/* Latency samples in ns, one per record, sorted once at the end: exact
 * percentiles for the price of 8 bytes a record (40 MB for 5 M records). */
typedef struct peers_latency {
    int64_t *ns;  /* samples; the first `n` are set */
    uint64_t n;   /* samples recorded */
    uint64_t cap; /* room in ns */
    double sum;   /* of all samples, for the average */
} peers_latency;

static inline void peers_latency_init(peers_latency *l, uint64_t cap, const char *prog)
{
    l->ns = malloc((cap ? cap : 1) * sizeof(*l->ns));
    if (l->ns == NULL)
        peers_die(prog, "out of memory for %" PRIu64 " latency samples", cap);
    l->n = 0;
    l->cap = cap;
    l->sum = 0;
}

/* Not thread-safe: one recording thread per sample set. */
static inline void peers_latency_add(peers_latency *l, int64_t ns)
{
    if (l->n < l->cap) {
        l->ns[l->n++] = ns;
        l->sum += (double)ns;
    }
}

static int peers_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The sample at percentile `pct` (nearest rank), in ms; 0 with no samples. */
static inline double peers_latency_pct_ms(const peers_latency *l, double pct)
{
    if (l->n == 0)
        return 0;
    uint64_t rank = (uint64_t)((pct / 100.0) * (double)l->n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > l->n)
        rank = l->n;
    return (double)l->ns[rank - 1] / 1e6;
}

/* Sorts the samples and prints `"latency_ms": {...}` (no separator). */
static inline void peers_latency_json(peers_latency *l)
{
    qsort(l->ns, l->n, sizeof(*l->ns), peers_cmp_i64);
    printf("\"latency_ms\":{\"avg\":%.3f,\"p50\":%.3f,\"p95\":%.3f,\"p99\":%.3f,\"p999\":%.3f,"
           "\"max\":%.3f}",
           l->n ? l->sum / (double)l->n / 1e6 : 0.0, peers_latency_pct_ms(l, 50),
           peers_latency_pct_ms(l, 95), peers_latency_pct_ms(l, 99), peers_latency_pct_ms(l, 99.9),
           peers_latency_pct_ms(l, 100));
}

static inline void peers_latency_release(peers_latency *l)
{
    free(l->ns);
    l->ns = NULL;
}

/* Prints the common head of a result: `{"system":..,"mode":..,"records":..,
 * "bytes":..,"elapsed_s":..,"records_per_sec":..,"mb_per_sec":..` (no close). */
static inline void peers_result_head(const char *sys, const char *mode, uint64_t records,
                                     uint64_t bytes, int64_t elapsed_ns)
{
    double s = (double)elapsed_ns / 1e9;
    printf("{\"system\":\"%s\",\"mode\":\"%s\",\"records\":%" PRIu64 ",\"bytes\":%" PRIu64
           ",\"elapsed_s\":%.3f,\"records_per_sec\":%.1f,\"mb_per_sec\":%.3f",
           sys, mode, records, bytes, s, s > 0 ? (double)records / s : 0.0,
           s > 0 ? (double)bytes / s / 1e6 : 0.0);
}

static inline void peers_result_end(const char *prog)
{
    printf("}\n");
    if (fflush(stdout) != 0)
        peers_die(prog, "cannot write to standard output");
}

#endif
