/*
 * client_kit.h - helpers for unit tests that drive a real broker through
 * libstream's client (stream/client.h): a broker process and a client per
 * test, create a topic, produce records and collect the producer's delivery
 * reports per record, consume and keep what came back.
 *
 * Header-only like wire.h (the Makefile links each tests/unit/test_*.c on
 * its own). Include after <cmocka.h>. Everything asserts.
 */
#ifndef STREAM_TEST_CLIENT_KIT_H
#define STREAM_TEST_CLIENT_KIT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream/client.h"
#include "stream/error.h"
#include "wire.h"

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

/* ---- a broker process and a client connected to it ---- */

/* A test's broker (its temp dir, pid and port: tests/unit/wire.h) and a
 * client of it. */
typedef struct client_fixture {
    wire_broker b;    /* the broker process */
    char addr[64];    /* "127.0.0.1:PORT" */
    stream_client *c; /* connected by client_fixture_setup */
    const char *tag;  /* names the temp dir ("/tmp/TAG.XXXXXX"); NULL: "stream_test" */
} client_fixture;

/* Starts (or restarts, on the same data; on the same port when
 * `same_port`) the broker with extra --set arguments (NULL-terminated). */
static inline void client_fixture_start(client_fixture *f, bool same_port, const char *const *sets)
{
    f->b.listen_port = same_port ? f->b.port : 0;
    wire_broker_start(&f->b, f->tag ? f->tag : "stream_test", sets);
    snprintf(f->addr, sizeof f->addr, "127.0.0.1:%d", f->b.port);
}

/* Sends `sig` (SIGTERM: a clean stop; SIGKILL: a crash) and waits. */
static inline void client_fixture_stop(client_fixture *f, int sig)
{
    wire_broker_signal(&f->b, sig);
}

/* A client of `brokers`, connected (or the test fails). */
static inline stream_client *client_for(const char *brokers)
{
    stream_client_conf conf;
    stream_client_conf_init(&conf);
    conf.brokers = brokers;
    conf.request_timeout_ms = 10000;
    stream_client *c;
    char eb[256] = "";
    int rc = stream_client_new(&conf, &c, eb, sizeof eb);
    if (rc != 0)
        fail_msg("stream_client_new: %s", eb);
    rc = stream_client_connect(c, 5000, eb, sizeof eb);
    if (rc != 0)
        fail_msg("connect: %s", eb);
    return c;
}

/* A cmocka setup's body: a broker with `sets` and a client, in *state. */
static inline int client_fixture_setup(void **state, const char *tag, const char *const *sets)
{
    client_fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->tag = tag;
    client_fixture_start(f, false, sets);
    f->c = client_for(f->addr);
    *state = f;
    return 0;
}

static inline int client_fixture_teardown(void **state)
{
    client_fixture *f = *state;
    stream_client_free(f->c);
    client_fixture_stop(f, SIGTERM);
    wire_rm_rf(f->b.dir);
    free(f);
    return 0;
}

/* ---- producing and consuming ---- */

static inline stream_producer *producer_for(stream_client *c, reports *r, int acks,
                                            stream_codec codec, size_t batch_bytes)
{
    stream_producer_conf pc;
    stream_producer_conf_init(&pc);
    pc.acks = acks;
    pc.codec = codec;
    if (batch_bytes)
        pc.batch_bytes = batch_bytes;
    pc.on_delivery = on_delivery;
    pc.opaque = r;
    stream_producer *p;
    char eb[256] = "";
    int rc = stream_producer_new(c, &pc, &p, eb, sizeof eb);
    if (rc != 0)
        fail_msg("producer_new: %s", eb);
    return p;
}

/* Produces one record, polling while the buffer is full. */
static inline void produce_record(stream_producer *p, const stream_producer_record *rec)
{
    char eb[256] = "";
    int rc;
    while ((rc = stream_producer_produce(p, rec, eb, sizeof eb)) == STREAM_EAGAIN)
        stream_producer_poll(p, 100);
    if (rc != 0)
        fail_msg("produce: %s (%s)", eb, stream_err_name(rc));
}

/* A consumed record, copied. */
typedef struct consumed_rec {
    int32_t partition;
    int64_t offset;
    int64_t timestamp;
    char *key; /* NULL for null */
    int32_t key_len;
    char *value;
    int32_t value_len;
    int32_t header_count;
    char hdr[256]; /* "name=value;name=(null);" */
} consumed_rec;

typedef struct consumed {
    consumed_rec *recs;
    size_t n, cap;
    size_t eofs;
    size_t errors;
    int last_err;
    int64_t err_log_start, err_hw;
} consumed;

static inline char *dup_bytes(const uint8_t *p, int32_t len)
{
    if (len < 0)
        return NULL;
    char *s = malloc((size_t)len + 1);
    assert_non_null(s);
    if (len)
        memcpy(s, p, (size_t)len);
    s[len] = '\0';
    return s;
}

static inline void consumed_release(consumed *cs)
{
    for (size_t i = 0; i < cs->n; i++) {
        free(cs->recs[i].key);
        free(cs->recs[i].value);
    }
    free(cs->recs);
    memset(cs, 0, sizeof *cs);
}

/* Handles one event into cs; copies only the first `keep` records' bytes. */
static inline void take_event(consumed *cs, const stream_consumer_event *ev, bool copy)
{
    if (ev->type == STREAM_EVENT_EOF) {
        cs->eofs++;
        return;
    }
    if (ev->type == STREAM_EVENT_ERROR) {
        cs->errors++;
        cs->last_err = ev->err;
        cs->err_log_start = ev->log_start_offset;
        cs->err_hw = ev->high_watermark;
        return;
    }
    assert_int_equal(ev->type, STREAM_EVENT_RECORD);
    if (cs->n == cs->cap) {
        cs->cap = cs->cap ? cs->cap * 2 : 256;
        cs->recs = realloc(cs->recs, cs->cap * sizeof *cs->recs);
        assert_non_null(cs->recs);
    }
    consumed_rec *g = &cs->recs[cs->n++];
    memset(g, 0, sizeof *g);
    g->partition = ev->partition;
    g->offset = ev->record.offset;
    g->timestamp = ev->record.timestamp;
    g->key_len = ev->record.key_len;
    g->value_len = ev->record.value_len;
    g->header_count = ev->record.header_count;
    if (!copy)
        return;
    g->key = dup_bytes(ev->record.key, ev->record.key_len);
    g->value = dup_bytes(ev->record.value, ev->record.value_len);
    stream_header_iter hi;
    stream_header h;
    stream_header_iter_start(&hi, &ev->record);
    size_t off = 0;
    while (stream_header_iter_next(&hi, &h) == 1 && off < sizeof g->hdr) {
        int w;
        if (h.value_len < 0)
            w = snprintf(g->hdr + off, sizeof g->hdr - off, "%.*s=(null);", (int)h.name_len,
                         (const char *)h.name);
        else
            w = snprintf(g->hdr + off, sizeof g->hdr - off, "%.*s=%.*s;", (int)h.name_len,
                         (const char *)h.name, (int)h.value_len, (const char *)h.value);
        off += (size_t)w;
    }
}

static inline stream_consumer *consumer_with(stream_client *c, bool stop_at_end)
{
    stream_consumer_conf cc;
    stream_consumer_conf_init(&cc);
    cc.stop_at_end = stop_at_end;
    cc.max_wait_ms = 200;
    stream_consumer *co;
    char eb[256] = "";
    int rc = stream_consumer_new(c, &cc, &co, eb, sizeof eb);
    if (rc != 0)
        fail_msg("consumer_new: %s", eb);
    return co;
}

/* Consumes until done (stop_at_end consumers) or until `want` records. */
static inline void consume_until(stream_consumer *co, consumed *cs, size_t want, bool copy,
                                 int timeout_ms)
{
    int64_t deadline = wire_now_ms() + timeout_ms;
    stream_consumer_event ev;
    while (!stream_consumer_done(co) && (want == 0 || cs->n < want)) {
        if (wire_now_ms() > deadline)
            fail_msg("consumed %zu records, wanted %zu, before the timeout", cs->n, want);
        int rc = stream_consumer_poll(co, 200, &ev);
        assert_true(rc >= 0);
        if (rc == 1)
            take_event(cs, &ev, copy);
    }
}

static inline void consume_all(stream_client *c, const char *topic, stream_offset_spec *spec,
                               consumed *cs)
{
    stream_consumer *co = consumer_with(c, true);
    char eb[256] = "";
    int rc = stream_consumer_assign(co, topic, STREAM_PARTITION_ALL, spec, eb, sizeof eb);
    if (rc != 0)
        fail_msg("assign: %s", eb);
    consume_until(co, cs, 0, true, 15000);
    stream_consumer_free(co);
}

static inline void produce_n(client_fixture *f, const char *topic, int acks, stream_codec codec,
                             size_t n, reports *r)
{
    stream_producer *p = producer_for(f->c, r, acks, codec, 16384);
    for (size_t i = 0; i < n; i++) {
        char v[32];
        int len = snprintf(v, sizeof v, "value-%zu", i);
        stream_producer_record rec = {.topic = topic,
                                      .partition = 0,
                                      .key_len = -1,
                                      .value = v,
                                      .value_len = len,
                                      .opaque = (void *)(uintptr_t)i};
        produce_record(p, &rec);
    }
    assert_int_equal(stream_producer_flush(p, 15000), 0);
    stream_producer_free(p, 0);
}

static inline void check_values(const consumed *cs, size_t n)
{
    assert_int_equal(cs->n, n);
    for (size_t i = 0; i < n; i++) {
        char v[32];
        snprintf(v, sizeof v, "value-%zu", i);
        assert_string_equal(cs->recs[i].value, v);
        assert_int_equal(cs->recs[i].offset, (int64_t)i);
    }
}

#endif /* STREAM_TEST_CLIENT_KIT_H */
