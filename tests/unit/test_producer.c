/*
 * test_producer.c - the producer's accumulation and its bookkeeping for
 * many partitions, against a real stream-broker process.
 *
 * While a partition cannot send (its max_in_flight_per_partition requests
 * are out), its open batch keeps taking records past linger_ms, so the next
 * request carries all of them: records produced quickly behind a slow
 * acks=all go out in a few requests, not one request each, and still arrive
 * once each and in order. And a producer writing to a thousand partitions
 * over ten topics (each partition with its own batches, lists and sequence)
 * gets every record there.
 *
 * Each test starts $STREAM_BUILD/stream-broker --listen 127.0.0.1:0 with its
 * data in a mkdtemp directory, waits for its --ready-file, and stops it (and
 * removes the directory) at the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "stream/client.h"
#include "stream/error.h"
#include "client_kit.h"
#include "wire.h"

/* ---- a broker process per test ------------------------------------------- */

typedef struct fixture {
    wire_broker b; /* its temp dir, pid and port (tests/unit/wire.h) */
    char addr[64]; /* "127.0.0.1:PORT" */
    stream_client *c;
} fixture;

static int setup_with(void **state, const char *const *sets)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    wire_broker_start(&f->b, "test_producer", sets);
    snprintf(f->addr, sizeof f->addr, "127.0.0.1:%d", f->b.port);
    stream_client_conf conf;
    stream_client_conf_init(&conf);
    conf.brokers = f->addr;
    conf.request_timeout_ms = 10000;
    char eb[256] = "";
    if (stream_client_new(&conf, &f->c, eb, sizeof eb) != 0)
        fail_msg("stream_client_new: %s", eb);
    if (stream_client_connect(f->c, 5000, eb, sizeof eb) != 0)
        fail_msg("connect: %s", eb);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, NULL);
}

/* A broker that syncs every 300 ms (flush.mode=periodic): an acks=all
 * produce waits for the next sync, long enough for records to pile up
 * behind it however fast the machine is. */
static int setup_slow_sync(void **state)
{
    const char *sets[] = {"flush.mode=periodic", "flush.ms=300", NULL};
    return setup_with(state, sets);
}

static int teardown(void **state)
{
    fixture *f = *state;
    stream_client_free(f->c);
    wire_broker_stop(&f->b);
    wire_rm_rf(f->b.dir);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------- */

static stream_producer *producer_with(stream_client *c, stream_producer_conf *pc, reports *r)
{
    pc->on_delivery = on_delivery;
    pc->opaque = r;
    stream_producer *p;
    char eb[256] = "";
    if (stream_producer_new(c, pc, &p, eb, sizeof eb) != 0)
        fail_msg("producer_new: %s", eb);
    return p;
}

static void produce(stream_producer *p, const stream_producer_record *rec)
{
    char eb[256] = "";
    int rc;
    while ((rc = stream_producer_produce(p, rec, eb, sizeof eb)) == STREAM_EAGAIN)
        stream_producer_poll(p, 100);
    if (rc != 0)
        fail_msg("produce: %s (%s)", eb, stream_err_name(rc));
}

/* Reads every partition of `topic` to its end; calls check for each record. */
typedef void (*record_fn)(const stream_consumer_event *ev, void *arg);

static size_t consume_topic(stream_client *c, const char *topic, record_fn check, void *arg)
{
    stream_consumer_conf cc;
    stream_consumer_conf_init(&cc);
    cc.stop_at_end = true;
    cc.max_wait_ms = 200;
    stream_consumer *co;
    char eb[256] = "";
    if (stream_consumer_new(c, &cc, &co, eb, sizeof eb) != 0)
        fail_msg("consumer_new: %s", eb);
    if (stream_consumer_assign(co, topic, STREAM_PARTITION_ALL, NULL, eb, sizeof eb) != 0)
        fail_msg("assign %s: %s", topic, eb);
    size_t n = 0;
    int64_t deadline = wire_now_ms() + 15000;
    stream_consumer_event ev;
    while (!stream_consumer_done(co)) {
        if (wire_now_ms() > deadline)
            fail_msg("topic %s: %zu records read before the timeout", topic, n);
        int rc = stream_consumer_poll(co, 200, &ev);
        assert_true(rc >= 0);
        if (rc == 1 && ev.type == STREAM_EVENT_ERROR)
            fail_msg("topic %s partition %d: %s", topic, (int)ev.partition, ev.msg);
        if (rc == 1 && ev.type == STREAM_EVENT_RECORD) {
            check(&ev, arg);
            n++;
        }
    }
    stream_consumer_free(co);
    return n;
}

/* ---- accumulation -------------------------------------------------------- */

/* Values "r<i>": the i-th record consumed must be record i. */
typedef struct in_order {
    size_t next;
} in_order;

static void check_in_order(const stream_consumer_event *ev, void *arg)
{
    in_order *o = arg;
    char want[32];
    int len = snprintf(want, sizeof want, "r%zu", o->next);
    assert_int_equal(ev->record.offset, (int64_t)o->next);
    assert_int_equal(ev->record.value_len, len);
    assert_memory_equal(ev->record.value, want, (size_t)len);
    o->next++;
}

/* Produces n records "r0".."r<n-1>" to partition 0 of topic, polling
 * (without waiting) after each, as a paced producer does; then flushes. */
static void produce_polling(stream_producer *p, const char *topic, size_t n)
{
    char value[32];
    stream_producer_record rec = {.topic = topic, .partition = 0, .key_len = -1, .value = value};
    for (size_t i = 0; i < n; i++) {
        rec.value_len = snprintf(value, sizeof value, "r%zu", i);
        rec.opaque = (void *)(uintptr_t)i;
        produce(p, &rec);
        assert_true(stream_producer_poll(p, 0) >= 0);
    }
    assert_int_equal(stream_producer_flush(p, 30000), 0);
}

/* Every record reported delivered at offset i, then read back once each,
 * in order. */
static void check_delivered_in_order(stream_client *c, const char *topic, const reports *r)
{
    assert_int_equal(r->count, r->n);
    assert_int_equal(r->failed, 0);
    for (size_t i = 0; i < r->n; i++) {
        assert_int_equal(r->partition[i], 0);
        assert_int_equal(r->offset[i], (int64_t)i);
    }
    in_order o = {0};
    assert_int_equal(consume_topic(c, topic, check_in_order, &o), r->n);
}

static void test_acks_all_accumulates_while_the_request_waits_for_the_sync(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "acc", 1);
    enum { N = 1000 };
    reports r;
    reports_init(&r, N);
    stream_producer_conf pc;
    stream_producer_conf_init(&pc);
    pc.acks = STREAM_ACKS_ALL;
    pc.linger_ms = 0;
    pc.max_in_flight_per_partition = 1;
    stream_producer *p = producer_with(f->c, &pc, &r);

    int64_t t0 = wire_now_ms();
    produce_polling(p, "acc", N);
    int64_t took = wire_now_ms() - t0;
    stream_producer_stats st;
    stream_producer_stats_get(p, &st);
    stream_producer_free(p, 0);

    /* One request at a time, each answered after a sync every 300 ms: one
     * request per record would need N syncs (5 minutes). The records
     * produced while a request waits all go in the next one. */
    fprintf(stderr, "# %d records in %llu requests (%llu batches), %lld ms\n", N,
            (unsigned long long)st.requests_sent, (unsigned long long)st.batches_sent,
            (long long)took);
    assert_true(st.requests_sent >= 2); /* the first record did not wait for the rest */
    assert_true(st.requests_sent <= 2 + (uint64_t)(took / 250));
    assert_int_equal(st.batches_sent, st.requests_sent);
    assert_int_equal(st.records_delivered, N);
    check_delivered_in_order(f->c, "acc", &r);
    reports_release(&r);
}

static void test_group_commit_acks_all_sends_far_fewer_requests_than_records(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "grp", 1);
    enum { N = 1000 };
    reports r;
    reports_init(&r, N);
    stream_producer_conf pc;
    stream_producer_conf_init(&pc);
    pc.acks = STREAM_ACKS_ALL;
    pc.linger_ms = 0;
    pc.max_in_flight_per_partition = 1;
    stream_producer *p = producer_with(f->c, &pc, &r);
    produce_polling(p, "grp", N);
    stream_producer_stats st;
    stream_producer_stats_get(p, &st);
    stream_producer_free(p, 0);

    /* An fdatasync per answer, a few microseconds per record: even a
     * quick disk leaves time for many records per request. */
    fprintf(stderr, "# %d records in %llu requests\n", N, (unsigned long long)st.requests_sent);
    assert_true(st.requests_sent < N / 2);
    check_delivered_in_order(f->c, "grp", &r);
    reports_release(&r);
}

static void test_linger_0_sends_at_once_when_a_request_slot_is_free(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "now", 1);
    reports r;
    reports_init(&r, 1);
    stream_producer_conf pc;
    stream_producer_conf_init(&pc);
    pc.acks = 1;
    pc.linger_ms = 0;
    stream_producer *p = producer_with(f->c, &pc, &r);
    stream_producer_record rec = {
        .topic = "now", .partition = 0, .key_len = -1, .value = "x", .value_len = 1};
    produce(p, &rec);
    /* Nothing is in flight: the record leaves at the first poll, and its
     * report comes without a flush. */
    int64_t deadline = wire_now_ms() + 5000;
    while (r.count == 0 && wire_now_ms() < deadline)
        assert_true(stream_producer_poll(p, 100) >= 0);
    assert_int_equal(r.count, 1);
    assert_int_equal(r.err[0], 0);
    assert_int_equal(r.offset[0], 0);
    stream_producer_free(p, 0);
    reports_release(&r);
}

static void test_batch_bytes_caps_an_accumulating_batch(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "cap", 1);
    enum { N = 400 };
    reports r;
    reports_init(&r, N);
    stream_producer_conf pc;
    stream_producer_conf_init(&pc);
    pc.acks = STREAM_ACKS_ALL;
    pc.linger_ms = 0;
    pc.max_in_flight_per_partition = 1;
    pc.batch_bytes = 1024;
    stream_producer *p = producer_with(f->c, &pc, &r);
    produce_polling(p, "cap", N);
    stream_producer_stats st;
    stream_producer_stats_get(p, &st);
    stream_producer_free(p, 0);
    /* A held batch still closes at batch_bytes: the ~5 KB of records go in
     * several batches of at most 1 KiB (plus one record), however few
     * requests carried them. */
    fprintf(stderr, "# %llu batches, %llu bytes\n", (unsigned long long)st.batches_sent,
            (unsigned long long)st.bytes_sent);
    assert_true(st.batches_sent * 1024 >= st.bytes_sent);
    assert_true(st.batches_sent >= 4);
    assert_true(st.batches_sent <= N / 10);
    check_delivered_in_order(f->c, "cap", &r);
    reports_release(&r);
}

/* ---- many partitions ----------------------------------------------------- */

enum { TOPICS = 10, PARTS = 100, PER_PART = 10 };

/* Values "<topic>/<partition>/<k>": per partition, k = 0, 1, ... in order. */
typedef struct spread {
    int topic;
    int32_t next[PARTS]; /* next k expected per partition */
} spread;

static void check_spread(const stream_consumer_event *ev, void *arg)
{
    spread *s = arg;
    int32_t part = ev->partition;
    assert_true(part >= 0 && part < PARTS);
    char want[64];
    int len = snprintf(want, sizeof want, "%d/%d/%d", s->topic, (int)part, (int)s->next[part]);
    assert_int_equal(ev->record.offset, s->next[part]);
    assert_int_equal(ev->record.value_len, len);
    assert_memory_equal(ev->record.value, want, (size_t)len);
    s->next[part]++;
}

static void test_thousand_partitions_over_ten_topics_all_arrive(void **state)
{
    fixture *f = *state;
    char names[TOPICS][32];
    for (int t = 0; t < TOPICS; t++) {
        snprintf(names[t], sizeof names[t], "wide-%d", t);
        create_topic(f->c, names[t], PARTS);
    }
    enum { N = TOPICS * PARTS * PER_PART };
    reports r;
    reports_init(&r, N);
    stream_producer_conf pc;
    stream_producer_conf_init(&pc);
    pc.acks = 1;
    stream_producer *p = producer_with(f->c, &pc, &r);

    /* Round-robin over every partition of every topic, so that a thousand
     * batches are open at once. */
    char value[64];
    stream_producer_record rec = {.key_len = -1, .value = value};
    for (size_t i = 0; i < N; i++) {
        int t = (int)(i % TOPICS);
        int32_t part = (int32_t)(i / TOPICS % PARTS);
        int k = (int)(i / (TOPICS * PARTS));
        rec.topic = names[t];
        rec.partition = part;
        rec.value_len = snprintf(value, sizeof value, "%d/%d/%d", t, (int)part, k);
        rec.opaque = (void *)(uintptr_t)i;
        produce(p, &rec);
        if (i % 64 == 63)
            assert_true(stream_producer_poll(p, 0) >= 0);
    }
    assert_int_equal(stream_producer_flush(p, 30000), 0);
    stream_producer_stats st;
    stream_producer_stats_get(p, &st);
    stream_producer_free(p, 0);
    fprintf(stderr, "# %d records, %llu batches in %llu requests\n", N,
            (unsigned long long)st.batches_sent, (unsigned long long)st.requests_sent);

    assert_int_equal(r.count, N);
    assert_int_equal(r.failed, 0);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(r.partition[i], (int32_t)(i / TOPICS % PARTS));
        assert_int_equal(r.offset[i], (int64_t)(i / (TOPICS * PARTS)));
    }
    /* Requests carry many partitions' batches each. */
    assert_true(st.requests_sent < st.batches_sent);
    for (int t = 0; t < TOPICS; t++) {
        spread s = {.topic = t};
        assert_int_equal(consume_topic(f->c, names[t], check_spread, &s), PARTS * PER_PART);
        for (int j = 0; j < PARTS; j++)
            assert_int_equal(s.next[j], PER_PART);
    }
    reports_release(&r);
}

static void test_unkeyed_records_to_many_topics_all_arrive(void **state)
{
    fixture *f = *state;
    /* More topics than the producer's first topic index holds, created by
     * the first produce to each (the broker's default partition count). */
    enum { NT = 40, N = 8000 };
    char names[NT][32];
    for (int t = 0; t < NT; t++)
        snprintf(names[t], sizeof names[t], "many-%d", t);
    reports r;
    reports_init(&r, N);
    stream_producer_conf pc;
    stream_producer_conf_init(&pc);
    pc.acks = 1;
    pc.batch_bytes = 2048; /* the sticky partitioner moves on often */
    stream_producer *p = producer_with(f->c, &pc, &r);
    char value[32];
    stream_producer_record rec = {.partition = STREAM_PARTITION_ANY, .key_len = -1, .value = value};
    for (size_t i = 0; i < N; i++) {
        rec.topic = names[i % NT];
        rec.value_len = snprintf(value, sizeof value, "v%zu", i);
        rec.opaque = (void *)(uintptr_t)i;
        produce(p, &rec);
        if (i % 16 == 15)
            assert_true(stream_producer_poll(p, 0) >= 0);
    }
    assert_int_equal(stream_producer_flush(p, 30000), 0);
    stream_producer_free(p, 0);
    assert_int_equal(r.count, N);
    assert_int_equal(r.failed, 0);
    /* Per topic, the offsets reported are 0..N/NT-1, each once. */
    for (int t = 0; t < NT; t++) {
        bool seen[N / NT] = {false};
        for (size_t i = (size_t)t; i < N; i += NT) {
            assert_true(r.offset[i] >= 0 && r.offset[i] < N / NT);
            assert_false(seen[r.offset[i]]);
            seen[r.offset[i]] = true;
        }
    }
    reports_release(&r);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_acks_all_accumulates_while_the_request_waits_for_the_sync, setup_slow_sync,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_group_commit_acks_all_sends_far_fewer_requests_than_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_linger_0_sends_at_once_when_a_request_slot_is_free,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_bytes_caps_an_accumulating_batch,
                                        setup_slow_sync, teardown),
        cmocka_unit_test_setup_teardown(test_thousand_partitions_over_ten_topics_all_arrive, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unkeyed_records_to_many_topics_all_arrive, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
