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
 * Then the producer's contract: keyed records on murmur2's partitions and
 * the sticky partitioner, acks 0/1/all, every codec, errors at produce(),
 * auto-created and missing topics, a full buffer, a refused batch,
 * acknowledged records surviving a broker restart, and idempotence: a lost
 * answer, kill -9 again and again, a dead broker, the in-flight limit.
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

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stream/client.h"
#include "stream/error.h"
#include "stream/partition.h"
#include "client_kit.h"
#include "wire.h"

/* ---- a broker process per test ------------------------------------------- */

typedef client_fixture fixture;

static int setup_with(void **state, const char *const *sets)
{
    return client_fixture_setup(state, "test_producer", sets);
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
    return client_fixture_teardown(state);
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
        produce_record(p, &rec);
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
    produce_record(p, &rec);
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
        produce_record(p, &rec);
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
        produce_record(p, &rec);
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

/* ---- partitioning, acks, codecs, errors, restarts -------------------------- */

static void test_keyed_records_land_on_murmur2_partitions(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "keyed", 3);
    enum { N = 300 };
    reports r;
    reports_init(&r, N);
    stream_producer *p = producer_for(f->c, &r, 1, STREAM_CODEC_NONE, 0);
    char keys[N][16];
    for (size_t i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "key-%zu", i);
        stream_producer_record rec = {.topic = "keyed",
                                      .partition = STREAM_PARTITION_ANY,
                                      .key = keys[i],
                                      .key_len = (int32_t)strlen(keys[i]),
                                      .value = "x",
                                      .value_len = 1,
                                      .opaque = (void *)(uintptr_t)i};
        produce_record(p, &rec);
    }
    assert_int_equal(stream_producer_flush(p, 10000), 0);
    int per[3] = {0};
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(r.err[i], 0);
        int32_t want = stream_partition_for_key(keys[i], strlen(keys[i]), 3);
        assert_int_equal(r.partition[i], want);
        per[want]++;
    }
    assert_true(per[0] > 0 && per[1] > 0 && per[2] > 0);
    stream_producer_free(p, 0);

    consumed cs = {0};
    consume_all(f->c, "keyed", NULL, &cs);
    assert_int_equal(cs.n, N);
    assert_int_equal(cs.eofs, 3);
    for (size_t i = 0; i < cs.n; i++)
        assert_int_equal(cs.recs[i].partition,
                         stream_partition_for_key(cs.recs[i].key, strlen(cs.recs[i].key), 3));
    consumed_release(&cs);
    reports_release(&r);
}

static void test_sticky_partitioner_fills_a_batch_then_moves(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "sticky", 4);
    enum { N = 2000 };
    reports r;
    reports_init(&r, N);
    /* Small batches (~30 records of 100 bytes), closed by size only: a long
     * linger keeps a slow machine from closing them early. */
    stream_producer_conf pc;
    stream_producer_conf_init(&pc);
    pc.acks = 1;
    pc.batch_bytes = 4096;
    pc.linger_ms = 10000;
    pc.on_delivery = on_delivery;
    pc.opaque = &r;
    stream_producer *p;
    char eb[256] = "";
    assert_int_equal(stream_producer_new(f->c, &pc, &p, eb, sizeof eb), 0);
    char value[100];
    memset(value, 'v', sizeof value);
    for (size_t i = 0; i < N; i++) {
        stream_producer_record rec = {.topic = "sticky",
                                      .partition = STREAM_PARTITION_ANY,
                                      .key_len = -1,
                                      .value = value,
                                      .value_len = 100,
                                      .opaque = (void *)(uintptr_t)i};
        produce_record(p, &rec);
    }
    assert_int_equal(stream_producer_flush(p, 10000), 0);
    size_t runs = 1, used[4] = {0};
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(r.err[i], 0);
        used[r.partition[i]]++;
        if (i > 0 && r.partition[i] != r.partition[i - 1])
            runs++;
    }
    /* Records stick to a partition for a whole batch: few, long runs, and
     * more than one partition over many batches. */
    assert_true(runs < N / 10);
    assert_true(runs >= 10);
    int nonempty = 0;
    for (int i = 0; i < 4; i++)
        nonempty += used[i] > 0;
    assert_true(nonempty >= 2);
    stream_producer_free(p, 0);
    reports_release(&r);
}

static void test_acks_0_1_all(void **state)
{
    fixture *f = *state;
    const int acks[3] = {0, 1, STREAM_ACKS_ALL};
    const char *topics[3] = {"acks0", "acks1", "acksall"};
    for (int k = 0; k < 3; k++) {
        create_topic(f->c, topics[k], 1);
        enum { N = 1000 };
        reports r;
        reports_init(&r, N);
        produce_n(f, topics[k], acks[k], STREAM_CODEC_NONE, N, &r);
        assert_int_equal(r.count, N);
        assert_int_equal(r.failed, 0);
        for (size_t i = 0; i < N; i++)
            assert_int_equal(r.offset[i], acks[k] == 0 ? -1 : (int64_t)i);
        reports_release(&r);
        consumed cs = {0};
        consume_all(f->c, topics[k], NULL, &cs);
        check_values(&cs, N);
        consumed_release(&cs);
    }
}

static void test_compressed_batches_roundtrip(void **state)
{
    fixture *f = *state;
    const stream_codec codecs[4] = {STREAM_CODEC_GZIP, STREAM_CODEC_SNAPPY, STREAM_CODEC_LZ4,
                                    STREAM_CODEC_ZSTD};
    for (int k = 0; k < 4; k++) {
        char topic[32];
        snprintf(topic, sizeof topic, "z-%s", stream_codec_name(codecs[k]));
        create_topic(f->c, topic, 1);
        enum { N = 3000 };
        reports r;
        reports_init(&r, N);
        produce_n(f, topic, 1, codecs[k], N, &r);
        assert_int_equal(r.failed, 0);
        reports_release(&r);
        consumed cs = {0};
        consume_all(f->c, topic, NULL, &cs);
        check_values(&cs, N);
        consumed_release(&cs);
    }
}

static void test_produce_errors_are_immediate(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "small", 2);
    reports r;
    reports_init(&r, 1);
    stream_producer *p = producer_for(f->c, &r, 1, STREAM_CODEC_NONE, 0);
    char eb[256] = "";
    stream_producer_record rec = {
        .topic = "small", .partition = 5, .key_len = -1, .value = "x", .value_len = 1};
    assert_int_equal(stream_producer_produce(p, &rec, eb, sizeof eb), STREAM_ENOPART);
    assert_string_equal(eb, "topic 'small' has 2 partitions, no partition 5");
    rec.partition = 0;
    rec.value_len = -5;
    assert_int_equal(stream_producer_produce(p, &rec, eb, sizeof eb), STREAM_EINVAL);
    rec.value_len = 1;
    rec.topic = "bad name!";
    assert_int_equal(stream_producer_produce(p, &rec, eb, sizeof eb), STREAM_EBADNAME);
    assert_int_equal(stream_producer_outstanding(p), 0);
    assert_int_equal(r.count, 0);
    stream_producer_free(p, 0);
    reports_release(&r);
}

static void test_produce_creates_unknown_topic(void **state)
{
    fixture *f = *state;
    reports r;
    reports_init(&r, 10);
    produce_n(f, "fresh", STREAM_ACKS_ALL, STREAM_CODEC_NONE, 10, &r);
    assert_int_equal(r.failed, 0);
    reports_release(&r);
    assert_true(stream_client_partition_count(f->c, "fresh", -1, NULL, 0) >= 1);
}

static void test_produce_to_missing_topic_without_autocreate(void **state)
{
    (void)state;
    client_fixture g = {.tag = "test_producer"};
    const char *sets[] = {"auto.create.topics.enable=false", NULL};
    client_fixture_start(&g, false, sets);
    stream_client *c = client_for(g.addr);
    reports r;
    reports_init(&r, 1);
    stream_producer *p = producer_for(c, &r, 1, STREAM_CODEC_NONE, 0);
    char eb[256] = "";
    stream_producer_record rec = {.topic = "absent",
                                  .partition = STREAM_PARTITION_ANY,
                                  .key_len = -1,
                                  .value = "x",
                                  .value_len = 1};
    assert_int_equal(stream_producer_produce(p, &rec, eb, sizeof eb), STREAM_ENOTOPIC);
    assert_string_equal(eb, "unknown topic 'absent'");
    stream_producer_free(p, 0);
    reports_release(&r);
    stream_client_free(c);
    client_fixture_stop(&g, SIGTERM);
    wire_rm_rf(g.b.dir);
}

static void test_full_buffer_says_eagain_until_polled(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "full", 1);
    enum { N = 2000 };
    reports r;
    reports_init(&r, N);
    stream_producer_conf pc;
    stream_producer_conf_init(&pc);
    pc.batch_bytes = 8192;
    pc.buffer_bytes = 32768;
    pc.linger_ms = 60000; /* batches must go out because the buffer is full */
    pc.on_delivery = on_delivery;
    pc.opaque = &r;
    stream_producer *p;
    char eb[256] = "", v[100];
    memset(v, 'v', sizeof v);
    assert_int_equal(stream_producer_new(f->c, &pc, &p, eb, sizeof eb), 0);
    size_t eagains = 0;
    for (size_t i = 0; i < N; i++) {
        stream_producer_record rec = {.topic = "full",
                                      .partition = 0,
                                      .key_len = -1,
                                      .value = v,
                                      .value_len = 100,
                                      .opaque = (void *)(uintptr_t)i};
        int rc;
        while ((rc = stream_producer_produce(p, &rec, eb, sizeof eb)) == STREAM_EAGAIN) {
            eagains++;
            /* Never more than the buffer's worth outstanding. */
            assert_true(stream_producer_outstanding(p) * 100 <= pc.buffer_bytes);
            assert_true(stream_producer_poll(p, 100) >= 0);
        }
        assert_int_equal(rc, 0);
    }
    assert_true(eagains > 0);
    assert_int_equal(stream_producer_flush(p, 10000), 0);
    assert_int_equal(r.count, N);
    assert_int_equal(r.failed, 0);
    stream_producer_free(p, 0);
    reports_release(&r);
}

static void test_refused_batch_is_reported_failed(void **state)
{
    (void)state;
    client_fixture g = {.tag = "test_producer"};
    const char *sets[] = {"max.message.bytes=2000", NULL};
    client_fixture_start(&g, false, sets);
    stream_client *c = client_for(g.addr);
    create_topic(c, "strict", 1);
    reports r;
    reports_init(&r, 3);
    stream_producer *p = producer_for(c, &r, 1, STREAM_CODEC_NONE, 0);
    static char big[5000];
    memset(big, 'b', sizeof big);
    stream_producer_record rec = {.topic = "strict", .partition = 0, .key_len = -1};
    /* Small records are batched under the broker's limit (from hello); a
     * record bigger than the limit fails alone, at once, not retried. */
    for (size_t i = 0; i < 3; i++) {
        rec.value = big;
        rec.value_len = i == 1 ? 5000 : 10;
        rec.opaque = (void *)(uintptr_t)i;
        produce_record(p, &rec);
    }
    assert_int_equal(stream_producer_flush(p, 10000), 0);
    assert_int_equal(r.count, 3);
    assert_int_equal(r.err[0], 0);
    assert_int_equal(r.err[1], STREAM_ETOOLARGE);
    assert_int_equal(r.offset[1], -1);
    assert_int_equal(r.err[2], 0);
    stream_producer_stats st;
    stream_producer_stats_get(p, &st);
    assert_int_equal(st.records_failed, 1);
    assert_int_equal(st.records_delivered, 2);
    assert_int_equal(st.last_err, STREAM_ETOOLARGE);
    assert_int_equal(st.retries, 0);
    stream_producer_free(p, 0);
    reports_release(&r);
    stream_client_free(c);
    client_fixture_stop(&g, SIGTERM);
    wire_rm_rf(g.b.dir);
}

/* kill -9 the broker in the middle of producing with acks=all, restart it on
 * the same port: every record reported delivered is stored (at least once:
 * a request that landed before the kill but was not answered is retried). */
static void test_acknowledged_records_survive_broker_restart(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "crash", 1);
    enum { N = 20000 };
    reports r;
    reports_init(&r, N);
    stream_producer *p = producer_for(f->c, &r, STREAM_ACKS_ALL, STREAM_CODEC_NONE, 4096);
    for (size_t i = 0; i < N; i++) {
        char v[32];
        int len = snprintf(v, sizeof v, "value-%zu", i);
        stream_producer_record rec = {.topic = "crash",
                                      .partition = 0,
                                      .key_len = -1,
                                      .value = v,
                                      .value_len = len,
                                      .opaque = (void *)(uintptr_t)i};
        produce_record(p, &rec);
        if (i % 500 == 0)
            stream_producer_poll(p, 0);
        if (i == N / 2) {
            client_fixture_stop(f, SIGKILL);
            /* Some requests fail and are retried while it is down. */
            for (int k = 0; k < 5; k++)
                stream_producer_poll(p, 20);
            client_fixture_start(f, true, NULL);
        }
    }
    assert_int_equal(stream_producer_flush(p, 30000), 0);
    stream_producer_stats st;
    stream_producer_stats_get(p, &st);
    stream_producer_free(p, 0);
    assert_int_equal(r.count, N);

    consumed cs = {0};
    consume_all(f->c, "crash", NULL, &cs);
    char *seen = calloc(N, 1);
    assert_non_null(seen);
    for (size_t i = 0; i < cs.n; i++) {
        size_t k;
        assert_int_equal(sscanf(cs.recs[i].value, "value-%zu", &k), 1);
        assert_true(k < N);
        seen[k] = 1;
    }
    size_t acked = 0;
    for (size_t i = 0; i < N; i++) {
        if (r.err[i] != 0)
            continue;
        acked++;
        if (!seen[i])
            fail_msg("record %zu was acknowledged (offset %lld) but is not stored", i,
                     (long long)r.offset[i]);
    }
    /* The restart is quick and retries are many: nearly all get through. */
    assert_true(acked >= N - N / 10);
    assert_true(st.retries > 0 || acked == N);
    free(seen);
    consumed_release(&cs);
    reports_release(&r);
}

/* ---- idempotence: lost answers, crashes, dead brokers -------------------- */

/*
 * A proxy between one client connection at a time and the broker that can
 * lose the answer to a produce: it passes the request on, waits for the
 * broker's answer (so the records are written), and then closes the client's
 * connection instead of passing the answer back -- the connection dying at
 * the worst moment. The client reconnects through it.
 */
typedef struct proxy {
    int listen_fd;
    int broker_port;
    char addr[64]; /* "127.0.0.1:PORT" for the client */
    int stop[2];   /* a pipe: written to stop the thread */
    int drop;      /* produce answers still to lose (set before start) */
    int dropped;   /* answers lost (read after stop) */
    pthread_t thread;
} proxy;

static bool io_full(int fd, void *buf, size_t n, bool rd)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k = rd ? read(fd, (char *)buf + done, n - done)
                       : write(fd, (const char *)buf + done, n - done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        done += (size_t)k;
    }
    return true;
}

/* One whole frame (length prefix included) into a malloc'ed buffer. */
static uint8_t *read_frame(int fd, size_t *len)
{
    uint8_t h[4];
    if (!io_full(fd, h, 4, true))
        return NULL;
    size_t n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
    uint8_t *p = malloc(n + 4);
    assert_non_null(p);
    memcpy(p, h, 4);
    if (!io_full(fd, p + 4, n, true)) {
        free(p);
        return NULL;
    }
    *len = n + 4;
    return p;
}

static void relay(proxy *px, int cfd, int bfd)
{
    bool produce[1024]; /* kinds of the requests awaiting answers, in order */
    size_t head = 0, tail = 0;
    for (;;) {
        struct pollfd fds[3] = {{cfd, POLLIN, 0}, {bfd, POLLIN, 0}, {px->stop[0], POLLIN, 0}};
        if (poll(fds, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        if (fds[2].revents)
            return;
        size_t len;
        if (fds[0].revents) {
            uint8_t *p = read_frame(cfd, &len);
            if (!p)
                return;
            produce[tail++ % 1024] = memmem(p, len, "\xa7produce", 8) != NULL;
            bool ok = io_full(bfd, p, len, false);
            free(p);
            if (!ok)
                return;
        }
        if (fds[1].revents) {
            uint8_t *p = read_frame(bfd, &len);
            if (!p)
                return;
            bool was_produce = head < tail && produce[head++ % 1024];
            if (was_produce && px->drop > 0) {
                px->drop--;
                px->dropped++;
                free(p);
                return; /* written by the broker, never answered */
            }
            bool ok = io_full(cfd, p, len, false);
            free(p);
            if (!ok)
                return;
        }
    }
}

static void *proxy_main(void *arg)
{
    proxy *px = arg;
    for (;;) {
        struct pollfd fds[2] = {{px->listen_fd, POLLIN, 0}, {px->stop[0], POLLIN, 0}};
        if (poll(fds, 2, -1) < 0 && errno != EINTR)
            break;
        if (fds[1].revents)
            break;
        if (!fds[0].revents)
            continue;
        int cfd = accept(px->listen_fd, NULL, NULL);
        if (cfd < 0)
            continue;
        int bfd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)px->broker_port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (bfd >= 0 && connect(bfd, (struct sockaddr *)&a, sizeof a) == 0)
            relay(px, cfd, bfd);
        if (bfd >= 0)
            close(bfd);
        close(cfd);
    }
    return NULL;
}

static void proxy_start(proxy *px, const char *broker_addr, int drop)
{
    memset(px, 0, sizeof *px);
    const char *colon = strrchr(broker_addr, ':');
    assert_non_null(colon);
    px->broker_port = atoi(colon + 1);
    px->drop = drop;
    px->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(px->listen_fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(px->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(px->listen_fd, 8), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(px->listen_fd, (struct sockaddr *)&a, &len), 0);
    snprintf(px->addr, sizeof px->addr, "127.0.0.1:%d", ntohs(a.sin_port));
    assert_int_equal(pipe(px->stop), 0);
    assert_int_equal(pthread_create(&px->thread, NULL, proxy_main, px), 0);
}

static void proxy_stop(proxy *px)
{
    assert_int_equal(write(px->stop[1], "x", 1), 1);
    pthread_join(px->thread, NULL);
    close(px->stop[0]);
    close(px->stop[1]);
    close(px->listen_fd);
}

/* Produces n records "value-i" to partition 0 of topic through a proxy that
 * loses the first produce answer; returns how many records the topic then
 * holds. */
static size_t produce_with_lost_answer(fixture *f, const char *topic, bool idempotence, reports *r,
                                       size_t n)
{
    create_topic(f->c, topic, 1);
    proxy px;
    proxy_start(&px, f->addr, 1);
    stream_client *c = client_for(px.addr);
    stream_producer_conf pc;
    stream_producer_conf_init(&pc);
    pc.idempotence = idempotence;
    pc.retry_backoff_ms = 10;
    pc.on_delivery = on_delivery;
    pc.opaque = r;
    stream_producer *p;
    char eb[256] = "";
    if (stream_producer_new(c, &pc, &p, eb, sizeof eb) != 0)
        fail_msg("producer_new: %s", eb);
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
    assert_int_equal(stream_producer_flush(p, 20000), 0);
    stream_producer_stats st;
    stream_producer_stats_get(p, &st);
    stream_producer_free(p, 0);
    stream_client_free(c);
    proxy_stop(&px);
    assert_int_equal(px.dropped, 1);
    assert_true(st.retries >= 1);
    consumed cs = {0};
    consume_all(f->c, topic, NULL, &cs);
    size_t stored = cs.n;
    consumed_release(&cs);
    return stored;
}

/* The broker wrote the batch, the answer was lost with the connection: the
 * producer resends it, and the broker answers with the original offsets
 * instead of storing it again. Without idempotence the same story stores
 * the records twice (which shows the proxy loses the answer after the
 * write). */
static void test_resend_after_lost_answer_is_stored_once(void **state)
{
    fixture *f = *state;
    enum { N = 3 };
    reports r;
    reports_init(&r, N);
    assert_int_equal(produce_with_lost_answer(f, "lost", true, &r, N), N);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(r.err[i], 0);
        assert_int_equal(r.offset[i], (int64_t)i); /* the offsets of the first write */
    }
    reports_release(&r);

    reports_init(&r, N);
    assert_int_equal(produce_with_lost_answer(f, "lost-plain", false, &r, N), 2 * N);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(r.offset[i], (int64_t)(N + i)); /* the second copy */
    reports_release(&r);
}

/* kill -9 the broker three times while an idempotent producer (default
 * retries) sends small batches with acks=all, restarting it on the same port
 * each time: every record reported delivered is stored at the offset it was
 * reported with, no record is stored twice, and the partition holds the
 * records in produce order. */
static void test_kill_9_repeatedly_stores_acknowledged_records_once_in_order(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "crashes", 1);
    enum { N = 60000 };
    reports r;
    reports_init(&r, N);
    stream_producer *p = producer_for(f->c, &r, STREAM_ACKS_ALL, STREAM_CODEC_NONE, 1024);
    for (size_t i = 0; i < N; i++) {
        char v[32];
        int len = snprintf(v, sizeof v, "value-%zu", i);
        stream_producer_record rec = {.topic = "crashes",
                                      .partition = 0,
                                      .key_len = -1,
                                      .value = v,
                                      .value_len = len,
                                      .opaque = (void *)(uintptr_t)i};
        produce_record(p, &rec);
        if (i % 200 == 0)
            stream_producer_poll(p, 0);
        if (i > 0 && i % (N / 5) == 0) {
            /* Batches are in flight: some landed unanswered. */
            client_fixture_stop(f, SIGKILL);
            for (int k = 0; k < 3; k++)
                stream_producer_poll(p, 20);
            client_fixture_start(f, true, NULL);
        }
    }
    assert_int_equal(stream_producer_flush(p, 60000), 0);
    stream_producer_stats st;
    stream_producer_stats_get(p, &st);
    stream_producer_free(p, 0);
    assert_int_equal(r.count, N);

    consumed cs = {0};
    consume_all(f->c, "crashes", NULL, &cs);
    int *times = calloc(N, sizeof *times);
    assert_non_null(times);
    size_t last = 0;
    for (size_t i = 0; i < cs.n; i++) {
        size_t k;
        assert_int_equal(sscanf(cs.recs[i].value, "value-%zu", &k), 1);
        assert_true(k < N);
        if (++times[k] > 1)
            fail_msg("record %zu is stored twice (again at offset %lld)", k,
                     (long long)cs.recs[i].offset);
        if (i > 0 && k <= last)
            fail_msg("record %zu at offset %lld comes after record %zu", k,
                     (long long)cs.recs[i].offset, last);
        last = k;
        if (r.err[k] == 0 && r.offset[k] != cs.recs[i].offset)
            fail_msg("record %zu was acknowledged at offset %lld but is at %lld", k,
                     (long long)r.offset[k], (long long)cs.recs[i].offset);
    }
    size_t acked = 0;
    for (size_t i = 0; i < N; i++) {
        if (r.err[i] != 0)
            continue;
        acked++;
        if (times[i] != 1)
            fail_msg("record %zu was acknowledged (offset %lld) but is not stored", i,
                     (long long)r.offset[i]);
    }
    /* Restarts are quick and retries many: nearly everything gets through,
     * and some batches had to be resent. */
    assert_true(acked >= N - N / 10);
    assert_true(st.retries > 0);
    free(times);
    consumed_release(&cs);
    reports_release(&r);
}

/* With the broker gone, every batch waiting to be sent counts an attempt at
 * each failed connection round: with retries 0, a hundred and more waiting
 * batches all fail at the first round, not five per reconnect backoff. */
static void test_dead_broker_fails_every_waiting_batch_at_once(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "dead", 1);
    enum { N = 150 };
    reports r;
    reports_init(&r, N + 1);
    stream_producer_conf pc;
    stream_producer_conf_init(&pc);
    pc.retries = 0;
    pc.linger_ms = 0;
    pc.batch_bytes = 300; /* one record per batch */
    pc.on_delivery = on_delivery;
    pc.opaque = &r;
    stream_producer *p;
    char eb[256] = "";
    assert_int_equal(stream_producer_new(f->c, &pc, &p, eb, sizeof eb), 0);
    static char value[250];
    memset(value, 'v', sizeof value);
    stream_producer_record rec = {
        .topic = "dead", .partition = 0, .key_len = -1, .value = value, .value_len = sizeof value};
    rec.opaque = (void *)(uintptr_t)N;
    produce_record(p, &rec); /* record N: gets the producer id and metadata while it is up */
    assert_int_equal(stream_producer_flush(p, 10000), 0);
    client_fixture_stop(f, SIGKILL);
    int64_t t0 = wire_now_ms();
    for (size_t i = 0; i < N; i++) {
        rec.opaque = (void *)(uintptr_t)i;
        produce_record(p, &rec);
    }
    assert_int_equal(stream_producer_flush(p, 30000), 0);
    int64_t took = wire_now_ms() - t0;
    stream_producer_free(p, 0);
    /* The first ones may have gone out on the dead connection. */
    for (size_t i = 0; i < N; i++)
        assert_true(r.err[i] == STREAM_ECONNREFUSED || r.err[i] == STREAM_ECONNRESET);
    assert_int_equal(r.failed, N);
    if (took > 3000)
        fail_msg("%d waiting batches took %lld ms to fail", N, (long long)took);
    reports_release(&r);
}

static void test_idempotence_limits_requests_in_flight(void **state)
{
    (void)state;
    stream_client *c;
    assert_int_equal(stream_client_new(NULL, &c, NULL, 0), 0);
    stream_producer_conf pc;
    stream_producer_conf_init(&pc);
    assert_true(pc.idempotence);
    pc.max_in_flight_per_partition = 17;
    stream_producer *p = NULL;
    char eb[256] = "";
    assert_int_equal(stream_producer_new(c, &pc, &p, eb, sizeof eb), STREAM_EINVAL);
    assert_non_null(strstr(eb, "max_in_flight_per_partition"));
    pc.idempotence = false;
    assert_int_equal(stream_producer_new(c, &pc, &p, eb, sizeof eb), 0);
    stream_producer_free(p, 0);
    stream_client_free(c);
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
        cmocka_unit_test_setup_teardown(test_keyed_records_land_on_murmur2_partitions, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sticky_partitioner_fills_a_batch_then_moves, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_acks_0_1_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compressed_batches_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_produce_errors_are_immediate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_produce_creates_unknown_topic, setup, teardown),
        cmocka_unit_test(test_produce_to_missing_topic_without_autocreate),
        cmocka_unit_test_setup_teardown(test_full_buffer_says_eagain_until_polled, setup, teardown),
        cmocka_unit_test(test_refused_batch_is_reported_failed),
        cmocka_unit_test_setup_teardown(test_acknowledged_records_survive_broker_restart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_resend_after_lost_answer_is_stored_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_kill_9_repeatedly_stores_acknowledged_records_once_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_broker_fails_every_waiting_batch_at_once, setup,
                                        teardown),
        cmocka_unit_test(test_idempotence_limits_requests_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
