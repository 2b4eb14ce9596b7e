/*
 * client_kit.h - helpers for unit tests that drive a real broker through
 * libstream's client (stream/client.h): create a topic, and collect the
 * producer's delivery reports per record.
 *
 * Header-only like wire.h (the Makefile links each tests/unit/test_*.c on
 * its own). Include after <cmocka.h>. Everything asserts.
 */
#ifndef STREAM_TEST_CLIENT_KIT_H
#define STREAM_TEST_CLIENT_KIT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream/client.h"

/* Creates topic `name` with `partitions` partitions, or fails the test. */
static inline void create_topic(stream_client *c, const char *name, int32_t partitions)
{
    stream_new_topic t = {.name = name, .partitions = partitions};
    stream_topic_result *r;
    char eb[256] = "";
    if (stream_admin_create_topics(c, &t, 1, -1, &r, eb, sizeof eb) != 0)
        fail_msg("create_topics: %s", eb);
    if (r[0].err != 0)
        fail_msg("create %s: %s", name, r[0].msg);
    stream_topic_results_free(r, 1);
}

/* What the delivery reports said, indexed by the record's opaque (its
 * number): fill with on_delivery as the producer's callback. */
typedef struct reports {
    size_t n;           /* records */
    int *err;           /* 1 until reported */
    int32_t *partition; /* as reported (-2 until then) */
    int64_t *offset;    /* as reported (-2 until then) */
    size_t count;       /* reports seen */
    size_t failed;      /* reports with an error */
} reports;

static inline void reports_init(reports *r, size_t n)
{
    memset(r, 0, sizeof *r);
    r->n = n;
    r->err = calloc(n, sizeof *r->err);
    r->partition = calloc(n, sizeof *r->partition);
    r->offset = calloc(n, sizeof *r->offset);
    assert_true(r->err && r->partition && r->offset);
    for (size_t i = 0; i < n; i++) {
        r->err[i] = 1;
        r->partition[i] = -2;
        r->offset[i] = -2;
    }
}

static inline void reports_release(reports *r)
{
    free(r->err);
    free(r->partition);
    free(r->offset);
}

/* The producer's delivery callback (opaque: the reports); exactly one report
 * per record, failures printed as TAP comments. */
static inline void on_delivery(stream_producer *p, const stream_delivery *d, void *opaque)
{
    (void)p;
    reports *r = opaque;
    size_t i = (size_t)(uintptr_t)d->opaque;
    assert_true(i < r->n);
    assert_int_equal(r->err[i], 1);
    r->err[i] = d->err;
    r->partition[i] = d->partition;
    r->offset[i] = d->offset;
    r->count++;
    if (d->err) {
        r->failed++;
        fprintf(stderr, "# record %zu: %s\n", i, d->msg);
    }
}

#endif /* STREAM_TEST_CLIENT_KIT_H */
