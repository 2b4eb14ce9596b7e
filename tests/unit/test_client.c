/*
 * test_client.c - the client library against a real stream-broker process:
 * connection errors, producer (partitioning, acks, compression, retries over
 * a broker restart), consumer (start and end positions, fetch ahead, offset
 * errors, long polls) and the admin calls.
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
#include "client_kit.h"
#include "stream/error.h"
#include "stream/partition.h"
#include "wire.h"

/* ---- a broker process per test ------------------------------------------- */

typedef struct fixture {
    wire_broker b; /* its temp dir, pid and port (tests/unit/wire.h) */
    char addr[64]; /* "127.0.0.1:PORT" */
    stream_client *c;
} fixture;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Starts (or restarts, on the same data; on the same port when
 * `same_port`) the broker with extra --set arguments (NULL-terminated). */
static void broker_start(fixture *f, bool same_port, const char *const *sets)
{
    f->b.listen_port = same_port ? f->b.port : 0;
    wire_broker_start(&f->b, "test_client", sets);
    snprintf(f->addr, sizeof f->addr, "127.0.0.1:%d", f->b.port);
}

/* Sends `sig` (SIGTERM: a clean stop; SIGKILL: a crash) and waits. */
static void broker_stop(fixture *f, int sig)
{
    wire_broker_signal(&f->b, sig);
}

static stream_client *client_for(const char *brokers)
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

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    broker_start(f, false, NULL);
    f->c = client_for(f->addr);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    stream_client_free(f->c);
    broker_stop(f, SIGTERM);
    wire_rm_rf(f->b.dir);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------- */

static stream_producer *producer_with(stream_client *c, reports *r, int acks, stream_codec codec,
                                      size_t batch_bytes)
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

/* Produces, polling while the buffer is full. */
static void produce(stream_producer *p, const stream_producer_record *rec)
{
    char eb[256] = "";
    int rc;
    while ((rc = stream_producer_produce(p, rec, eb, sizeof eb)) == STREAM_EAGAIN)
        stream_producer_poll(p, 100);
    if (rc != 0)
        fail_msg("produce: %s (%s)", eb, stream_err_name(rc));
}

/* A consumed record, copied. */
typedef struct got {
    int32_t partition;
    int64_t offset;
    int64_t timestamp;
    char *key; /* NULL for null */
    int32_t key_len;
    char *value;
    int32_t value_len;
    int32_t header_count;
    char hdr[256]; /* "name=value;name=(null);" */
} got;

typedef struct consumed {
    got *recs;
    size_t n, cap;
    size_t eofs;
    size_t errors;
    int last_err;
    int64_t err_log_start, err_hw;
} consumed;

static char *dup_bytes(const uint8_t *p, int32_t len)
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

static void consumed_release(consumed *cs)
{
    for (size_t i = 0; i < cs->n; i++) {
        free(cs->recs[i].key);
        free(cs->recs[i].value);
    }
    free(cs->recs);
    memset(cs, 0, sizeof *cs);
}

/* Handles one event into cs; copies only the first `keep` records' bytes. */
static void take_event(consumed *cs, const stream_consumer_event *ev, bool copy)
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
    got *g = &cs->recs[cs->n++];
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

static stream_consumer *consumer_with(stream_client *c, bool stop_at_end)
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
static void consume_until(stream_consumer *co, consumed *cs, size_t want, bool copy, int timeout_ms)
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

static void consume_all(stream_client *c, const char *topic, stream_offset_spec *spec, consumed *cs)
{
    stream_consumer *co = consumer_with(c, true);
    char eb[256] = "";
    int rc = stream_consumer_assign(co, topic, STREAM_PARTITION_ALL, spec, eb, sizeof eb);
    if (rc != 0)
        fail_msg("assign: %s", eb);
    consume_until(co, cs, 0, true, 15000);
    stream_consumer_free(co);
}

/* ---- connection ---------------------------------------------------------- */

/* A port nobody listens on: bound, then closed. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_connect_refused_names_broker(void **state)
{
    (void)state;
    char brokers[64], want[128], eb[256] = "";
    int port = closed_port();
    snprintf(brokers, sizeof brokers, "127.0.0.1:%d", port);
    stream_client_conf conf;
    stream_client_conf_init(&conf);
    conf.brokers = brokers;
    stream_client *c;
    assert_int_equal(stream_client_new(&conf, &c, eb, sizeof eb), 0);
    assert_int_equal(stream_client_connect(c, 5000, eb, sizeof eb), STREAM_ECONNREFUSED);
    snprintf(want, sizeof want, "cannot connect to 127.0.0.1:%d: connection refused", port);
    assert_string_equal(eb, want);
    assert_false(stream_client_connected(c));

    /* A request fails the same way instead of hanging. */
    stream_metadata *md = NULL;
    eb[0] = '\0';
    assert_int_equal(stream_client_metadata(c, NULL, 0, 5000, &md, eb, sizeof eb),
                     STREAM_ECONNREFUSED);
    assert_null(md);
    assert_non_null(strstr(eb, "connection refused"));
    stream_client_free(c);
}

/* A TCP server that is not a broker: it answers every connection with
 * `reply` (NULL: says nothing) and holds it open for a while. */
static pid_t fake_server(const char *reply, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 8), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        for (;;) {
            int cfd = accept(fd, NULL, NULL);
            if (cfd < 0)
                _exit(0);
            if (reply && write(cfd, reply, strlen(reply)) < 0)
                _exit(1);
        }
    }
    close(fd);
    return pid;
}

static void test_connect_to_a_non_broker_fails_clearly(void **state)
{
    (void)state;
    int port;
    char brokers[64], eb[256] = "";
    pid_t pid = fake_server("HTTP/1.1 400 Bad Request\r\n\r\n", &port);
    snprintf(brokers, sizeof brokers, "127.0.0.1:%d", port);
    stream_client_conf conf;
    stream_client_conf_init(&conf);
    conf.brokers = brokers;
    conf.connect_timeout_ms = 500;
    stream_client *c;
    assert_int_equal(stream_client_new(&conf, &c, eb, sizeof eb), 0);
    assert_int_equal(stream_client_connect(c, 5000, eb, sizeof eb), STREAM_EPROTO);
    char want[96];
    snprintf(want, sizeof want, "cannot connect to 127.0.0.1:%d: hello failed: ", port);
    assert_memory_equal(eb, want, strlen(want));
    stream_client_free(c);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);

    /* A server that accepts and stays silent: the hello times out. */
    pid = fake_server(NULL, &port);
    snprintf(brokers, sizeof brokers, "127.0.0.1:%d", port);
    assert_int_equal(stream_client_new(&conf, &c, eb, sizeof eb), 0);
    int64_t t0 = wire_now_ms();
    assert_int_equal(stream_client_connect(c, 5000, eb, sizeof eb), STREAM_ETIMEDOUT);
    assert_true(wire_now_ms() - t0 < 3000);
    snprintf(want, sizeof want, "cannot connect to 127.0.0.1:%d: no hello response after 500 ms",
             port);
    assert_string_equal(eb, want);
    stream_client_free(c);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void test_connect_tries_each_broker_in_order(void **state)
{
    fixture *f = *state;
    char brokers[160], eb[256] = "";
    snprintf(brokers, sizeof brokers, "127.0.0.1:%d,%s", closed_port(), f->addr);
    stream_client *c = client_for(brokers);
    assert_true(stream_client_connected(c));
    assert_string_equal(stream_client_broker(c), f->addr);
    stream_metadata *md;
    assert_int_equal(stream_client_metadata(c, NULL, 0, -1, &md, eb, sizeof eb), 0);
    assert_int_equal(md->broker_count, 1);
    stream_metadata_free(md);
    stream_client_free(c);
}

static void test_conf_rejects_bad_values(void **state)
{
    (void)state;
    stream_client_conf conf;
    stream_client *c = NULL;
    char eb[256] = "";
    stream_client_conf_init(&conf);
    conf.brokers = "127.0.0.1:99999";
    assert_int_equal(stream_client_new(&conf, &c, eb, sizeof eb), STREAM_EINVAL);
    assert_null(c);
    stream_client_conf_init(&conf);
    conf.max_in_flight = 0;
    eb[0] = '\0';
    assert_int_equal(stream_client_new(&conf, &c, eb, sizeof eb), STREAM_EINVAL);
    assert_non_null(strstr(eb, "max_in_flight"));

    stream_client_conf_init(&conf);
    assert_int_equal(stream_client_new(&conf, &c, eb, sizeof eb), 0);
    stream_producer_conf pc;
    stream_producer_conf_init(&pc);
    pc.acks = 2;
    stream_producer *p = NULL;
    assert_int_equal(stream_producer_new(c, &pc, &p, eb, sizeof eb), STREAM_EINVAL);
    assert_non_null(strstr(eb, "acks"));
    stream_producer_conf_init(&pc);
    pc.codec = (stream_codec)9;
    assert_int_equal(stream_producer_new(c, &pc, &p, eb, sizeof eb), STREAM_EINVAL);
    assert_null(p);
    stream_client_free(c);
}

/* ---- producer and consumer ----------------------------------------------- */

static void test_roundtrip_keys_headers_nulls(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "rt", 1);
    reports r;
    reports_init(&r, 5);
    stream_producer *p = producer_with(f->c, &r, STREAM_ACKS_ALL, STREAM_CODEC_NONE, 0);
    stream_header hs[3] = {
        {(const uint8_t *)"h1", 2, (const uint8_t *)"v1", 2},
        {(const uint8_t *)"h1", 2, NULL, -1}, /* duplicates and nulls are kept */
        {(const uint8_t *)"e", 1, (const uint8_t *)"", 0},
    };
    stream_producer_record recs[5] = {
        {.topic = "rt", .partition = 0, .key = "k", .key_len = 1, .value = "v", .value_len = 1},
        {.topic = "rt",
         .partition = 0,
         .key = NULL,
         .key_len = -1,
         .value = "nokey",
         .value_len = 5},
        {.topic = "rt",
         .partition = 0,
         .key = "tomb",
         .key_len = 4,
         .value = NULL,
         .value_len = -1},
        {.topic = "rt", .partition = 0, .key = "", .key_len = 0, .value = "", .value_len = 0},
        {.topic = "rt",
         .partition = 0,
         .key = "h",
         .key_len = 1,
         .value = "hv",
         .value_len = 2,
         .headers = hs,
         .header_count = 3,
         .timestamp = 1700000000123},
    };
    for (size_t i = 0; i < 5; i++) {
        recs[i].opaque = (void *)(uintptr_t)i;
        produce(p, &recs[i]);
    }
    assert_int_equal(stream_producer_flush(p, 10000), 0);
    assert_int_equal(r.count, 5);
    assert_int_equal(r.failed, 0);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(r.err[i], 0);
        assert_int_equal(r.offset[i], (int64_t)i);
    }
    stream_producer_free(p, 0);

    consumed cs = {0};
    consume_all(f->c, "rt", NULL, &cs);
    assert_int_equal(cs.n, 5);
    assert_int_equal(cs.eofs, 1);
    assert_string_equal(cs.recs[0].key, "k");
    assert_string_equal(cs.recs[0].value, "v");
    assert_null(cs.recs[1].key);
    assert_int_equal(cs.recs[1].key_len, -1);
    assert_string_equal(cs.recs[1].value, "nokey");
    assert_null(cs.recs[2].value);
    assert_int_equal(cs.recs[2].value_len, -1);
    assert_non_null(cs.recs[3].key);
    assert_int_equal(cs.recs[3].key_len, 0);
    assert_int_equal(cs.recs[3].value_len, 0);
    assert_int_equal(cs.recs[4].header_count, 3);
    assert_string_equal(cs.recs[4].hdr, "h1=v1;h1=(null);e=;");
    assert_int_equal(cs.recs[4].timestamp, 1700000000123);
    /* timestamp 0 became "now" */
    assert_true(cs.recs[0].timestamp > wall_ms() - 60000 && cs.recs[0].timestamp <= wall_ms());
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(cs.recs[i].offset, (int64_t)i);
    consumed_release(&cs);
    reports_release(&r);
}

static void test_keyed_records_land_on_murmur2_partitions(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "keyed", 3);
    enum { N = 300 };
    reports r;
    reports_init(&r, N);
    stream_producer *p = producer_with(f->c, &r, 1, STREAM_CODEC_NONE, 0);
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
        produce(p, &rec);
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
        produce(p, &rec);
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

static void produce_n(fixture *f, const char *topic, int acks, stream_codec codec, size_t n,
                      reports *r)
{
    stream_producer *p = producer_with(f->c, r, acks, codec, 16384);
    for (size_t i = 0; i < n; i++) {
        char v[32];
        int len = snprintf(v, sizeof v, "value-%zu", i);
        stream_producer_record rec = {.topic = topic,
                                      .partition = 0,
                                      .key_len = -1,
                                      .value = v,
                                      .value_len = len,
                                      .opaque = (void *)(uintptr_t)i};
        produce(p, &rec);
    }
    assert_int_equal(stream_producer_flush(p, 15000), 0);
    stream_producer_free(p, 0);
}

static void check_values(const consumed *cs, size_t n)
{
    assert_int_equal(cs->n, n);
    for (size_t i = 0; i < n; i++) {
        char v[32];
        snprintf(v, sizeof v, "value-%zu", i);
        assert_string_equal(cs->recs[i].value, v);
        assert_int_equal(cs->recs[i].offset, (int64_t)i);
    }
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

/* 100 records in partition 0 with timestamps 1e12 + i * 1000. */
static void fill_timed(fixture *f, const char *topic)
{
    create_topic(f->c, topic, 1);
    reports r;
    reports_init(&r, 100);
    stream_producer *p = producer_with(f->c, &r, 1, STREAM_CODEC_NONE, 1024);
    for (size_t i = 0; i < 100; i++) {
        char v[32];
        int len = snprintf(v, sizeof v, "value-%zu", i);
        stream_producer_record rec = {.topic = topic,
                                      .partition = 0,
                                      .key_len = -1,
                                      .value = v,
                                      .value_len = len,
                                      .timestamp = 1000000000000 + (int64_t)i * 1000,
                                      .opaque = (void *)(uintptr_t)i};
        produce(p, &rec);
    }
    assert_int_equal(stream_producer_flush(p, 10000), 0);
    assert_int_equal(r.failed, 0);
    stream_producer_free(p, 0);
    reports_release(&r);
}

static int64_t first_offset(fixture *f, const char *topic, stream_offset_spec spec, size_t *n)
{
    consumed cs = {0};
    consume_all(f->c, topic, &spec, &cs);
    *n = cs.n;
    int64_t first = cs.n ? cs.recs[0].offset : -1;
    for (size_t i = 1; i < cs.n; i++)
        assert_int_equal(cs.recs[i].offset, first + (int64_t)i);
    consumed_release(&cs);
    return first;
}

static void test_consumer_start_offsets(void **state)
{
    fixture *f = *state;
    fill_timed(f, "timed");
    size_t n;
    stream_offset_spec s = {.start = {STREAM_OFFSET_BEGINNING, 0}};
    assert_int_equal(first_offset(f, "timed", s, &n), 0);
    assert_int_equal(n, 100);
    s.start = (stream_offset_pos){STREAM_OFFSET_END, 0};
    assert_int_equal(first_offset(f, "timed", s, &n), -1);
    assert_int_equal(n, 0);
    s.start = (stream_offset_pos){STREAM_OFFSET_FROM_END, 10};
    assert_int_equal(first_offset(f, "timed", s, &n), 90);
    assert_int_equal(n, 10);
    s.start = (stream_offset_pos){STREAM_OFFSET_FROM_END, 1000}; /* clamped to the start */
    assert_int_equal(first_offset(f, "timed", s, &n), 0);
    assert_int_equal(n, 100);
    s.start = (stream_offset_pos){STREAM_OFFSET_ABSOLUTE, 42};
    assert_int_equal(first_offset(f, "timed", s, &n), 42);
    assert_int_equal(n, 58);
    s.start = (stream_offset_pos){STREAM_OFFSET_FROM_START, 5};
    assert_int_equal(first_offset(f, "timed", s, &n), 5);
    /* The first record at or after the time: 1e12 + 30500 -> offset 31. */
    s.start = (stream_offset_pos){STREAM_OFFSET_TIME, 1000000000000 + 30500};
    assert_int_equal(first_offset(f, "timed", s, &n), 31);
    assert_int_equal(n, 69);
    s.start = (stream_offset_pos){STREAM_OFFSET_TIME, 1000000000000 + 30000};
    assert_int_equal(first_offset(f, "timed", s, &n), 30);
    /* A range: [10, @+50s) -> offsets 10..49. */
    s.start = (stream_offset_pos){STREAM_OFFSET_ABSOLUTE, 10};
    s.end = (stream_offset_pos){STREAM_OFFSET_TIME, 1000000000000 + 50000};
    assert_int_equal(first_offset(f, "timed", s, &n), 10);
    assert_int_equal(n, 40);
    s.end = (stream_offset_pos){STREAM_OFFSET_FROM_END, 5};
    assert_int_equal(first_offset(f, "timed", s, &n), 10);
    assert_int_equal(n, 85);
    /* Stored offsets need a group. */
    stream_consumer *co = consumer_with(f->c, true);
    char eb[256] = "";
    s.start = (stream_offset_pos){STREAM_OFFSET_STORED, 0};
    s.end = (stream_offset_pos){STREAM_OFFSET_NONE, 0};
    assert_int_equal(stream_consumer_assign(co, "timed", 0, &s, eb, sizeof eb),
                     STREAM_EUNSUPPORTED);
    stream_consumer_free(co);
}

static void test_assign_reports_unknown_topic_and_partition(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "two", 2);
    stream_consumer *co = consumer_with(f->c, true);
    char eb[256] = "";
    assert_int_equal(stream_consumer_assign(co, "nosuch", 0, NULL, eb, sizeof eb), STREAM_ENOTOPIC);
    assert_string_equal(eb, "unknown topic 'nosuch'");
    assert_int_equal(stream_consumer_assign(co, "two", 7, NULL, eb, sizeof eb), STREAM_ENOPART);
    assert_string_equal(eb, "topic 'two' has 2 partitions, no partition 7");
    assert_false(stream_consumer_done(co)); /* nothing assigned */
    stream_consumer_free(co);
}

static void test_end_snapshot_ignores_later_records(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "snap", 2);
    reports r;
    reports_init(&r, 400);
    stream_producer *p = producer_with(f->c, &r, 1, STREAM_CODEC_NONE, 0);
    for (size_t i = 0; i < 200; i++) {
        stream_producer_record rec = {.topic = "snap",
                                      .partition = (int32_t)(i % 2),
                                      .key_len = -1,
                                      .value = "a",
                                      .value_len = 1,
                                      .opaque = (void *)(uintptr_t)i};
        produce(p, &rec);
    }
    assert_int_equal(stream_producer_flush(p, 10000), 0);

    stream_consumer *co = consumer_with(f->c, true);
    char eb[256] = "";
    assert_int_equal(stream_consumer_assign(co, "snap", STREAM_PARTITION_ALL, NULL, eb, sizeof eb),
                     0);
    /* Records produced after the snapshot are not read. */
    for (size_t i = 200; i < 400; i++) {
        stream_producer_record rec = {.topic = "snap",
                                      .partition = (int32_t)(i % 2),
                                      .key_len = -1,
                                      .value = "b",
                                      .value_len = 1,
                                      .opaque = (void *)(uintptr_t)i};
        produce(p, &rec);
    }
    assert_int_equal(stream_producer_flush(p, 10000), 0);
    assert_int_equal(r.failed, 0);
    consumed cs = {0};
    consume_until(co, &cs, 0, true, 10000);
    assert_true(stream_consumer_done(co));
    assert_int_equal(cs.n, 200);
    assert_int_equal(cs.eofs, 2);
    for (size_t i = 0; i < cs.n; i++)
        assert_string_equal(cs.recs[i].value, "a");
    int64_t pos;
    assert_int_equal(stream_consumer_position(co, "snap", 1, &pos), 0);
    assert_int_equal(pos, 100);
    stream_consumer_event ev;
    assert_int_equal(stream_consumer_poll(co, 0, &ev), 0);
    assert_int_equal(stream_consumer_unassign(co, "snap", 1), 0);
    assert_int_equal(stream_consumer_position(co, "snap", 1, &pos), STREAM_ENOENT);
    assert_int_equal(stream_consumer_unassign(co, "snap", 1), STREAM_ENOENT);
    assert_true(stream_consumer_done(co)); /* partition 0 is still done */
    consumed_release(&cs);
    stream_consumer_free(co);
    stream_producer_free(p, 0);
    reports_release(&r);
}

static void test_fetch_ahead_over_many_batches(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "many", 1);
    enum { N = 100000 };
    reports r;
    reports_init(&r, N);
    stream_producer *p = producer_with(f->c, &r, 1, STREAM_CODEC_NONE, 8192);
    char v[16];
    for (size_t i = 0; i < N; i++) {
        memcpy(v, &i, sizeof i);
        stream_producer_record rec = {.topic = "many",
                                      .partition = 0,
                                      .key_len = -1,
                                      .value = v,
                                      .value_len = sizeof i,
                                      .opaque = (void *)(uintptr_t)i};
        produce(p, &rec);
    }
    assert_int_equal(stream_producer_flush(p, 20000), 0);
    assert_int_equal(r.failed, 0);
    stream_producer_free(p, 0);
    reports_release(&r);

    /* Small fetches: many responses, each consumed while the next arrives. */
    stream_consumer_conf cc;
    stream_consumer_conf_init(&cc);
    cc.stop_at_end = true;
    cc.max_bytes = 64 * 1024;
    cc.max_partition_bytes = 64 * 1024;
    stream_consumer *co;
    char eb[256];
    assert_int_equal(stream_consumer_new(f->c, &cc, &co, eb, sizeof eb), 0);
    assert_int_equal(stream_consumer_assign(co, "many", 0, NULL, eb, sizeof eb), 0);
    size_t n = 0;
    stream_consumer_event ev;
    int64_t deadline = wire_now_ms() + 15000;
    while (!stream_consumer_done(co) && wire_now_ms() < deadline) {
        int rc = stream_consumer_poll(co, 500, &ev);
        assert_true(rc >= 0);
        if (rc == 0 || ev.type != STREAM_EVENT_RECORD)
            continue;
        size_t i;
        assert_int_equal(ev.record.value_len, sizeof i);
        memcpy(&i, ev.record.value, sizeof i);
        assert_int_equal(i, n);
        assert_int_equal(ev.record.offset, (int64_t)n);
        n++;
    }
    assert_int_equal(n, N);
    stream_consumer_free(co);
}

static void test_follow_mode_eof_then_long_poll_gets_new_records(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "follow", 1);
    stream_consumer *co = consumer_with(f->c, false);
    char eb[256] = "";
    assert_int_equal(stream_consumer_assign(co, "follow", 0, NULL, eb, sizeof eb), 0);
    stream_consumer_event ev;
    int64_t deadline = wire_now_ms() + 5000;
    int rc;
    do {
        rc = stream_consumer_poll(co, 200, &ev);
    } while (rc == 0 && wire_now_ms() < deadline);
    assert_int_equal(rc, 1);
    assert_int_equal(ev.type, STREAM_EVENT_EOF);
    assert_int_equal(ev.offset, 0);
    assert_false(stream_consumer_done(co));
    /* Nothing more while nothing is produced. */
    assert_int_equal(stream_consumer_poll(co, 300, &ev), 0);

    reports r;
    reports_init(&r, 1);
    stream_producer *p = producer_with(f->c, &r, 1, STREAM_CODEC_NONE, 0);
    stream_producer_record rec = {
        .topic = "follow", .partition = 0, .key_len = -1, .value = "late", .value_len = 4};
    produce(p, &rec);
    assert_int_equal(stream_producer_flush(p, 5000), 0);
    consumed cs = {0};
    consume_until(co, &cs, 1, true, 5000);
    assert_string_equal(cs.recs[0].value, "late");
    consumed_release(&cs);
    stream_producer_free(p, 0);
    reports_release(&r);
    stream_consumer_free(co);
}

static void test_offset_out_of_range_is_reported_or_reset(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "range", 1);
    reports r;
    reports_init(&r, 10);
    produce_n(f, "range", 1, STREAM_CODEC_NONE, 10, &r);
    reports_release(&r);

    stream_consumer *co = consumer_with(f->c, false);
    char eb[256] = "";
    stream_offset_spec s = {.start = {STREAM_OFFSET_ABSOLUTE, 500}};
    assert_int_equal(stream_consumer_assign(co, "range", 0, &s, eb, sizeof eb), 0);
    consumed cs = {0};
    stream_consumer_event ev;
    int64_t deadline = wire_now_ms() + 5000;
    while (cs.errors == 0 && wire_now_ms() < deadline)
        if (stream_consumer_poll(co, 200, &ev) == 1)
            take_event(&cs, &ev, true);
    assert_int_equal(cs.errors, 1);
    assert_int_equal(cs.last_err, STREAM_EOFFSET);
    assert_int_equal(cs.err_log_start, 0);
    assert_int_equal(cs.err_hw, 10);
    assert_true(stream_consumer_done(co)); /* paused: nothing more will come */
    /* Seek resumes it. */
    assert_int_equal(stream_consumer_seek(co, "range", 0,
                                          (stream_offset_pos){STREAM_OFFSET_FROM_END, 3}, eb,
                                          sizeof eb),
                     0);
    consume_until(co, &cs, 3, true, 5000);
    assert_int_equal(cs.recs[0].offset, 7);
    stream_consumer_free(co);
    consumed_release(&cs);

    /* With auto_offset_reset=earliest the consumer starts over instead. */
    stream_consumer_conf cc;
    stream_consumer_conf_init(&cc);
    cc.auto_offset_reset = STREAM_RESET_EARLIEST;
    assert_int_equal(stream_consumer_new(f->c, &cc, &co, eb, sizeof eb), 0);
    assert_int_equal(stream_consumer_assign(co, "range", 0, &s, eb, sizeof eb), 0);
    consume_until(co, &cs, 10, true, 5000);
    assert_int_equal(cs.errors, 0);
    check_values(&cs, 10);
    consumed_release(&cs);
    stream_consumer_free(co);
}

static void test_produce_errors_are_immediate(void **state)
{
    fixture *f = *state;
    create_topic(f->c, "small", 2);
    reports r;
    reports_init(&r, 1);
    stream_producer *p = producer_with(f->c, &r, 1, STREAM_CODEC_NONE, 0);
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
    fixture g = {0};
    const char *sets[] = {"auto.create.topics.enable=false", NULL};
    broker_start(&g, false, sets);
    stream_client *c = client_for(g.addr);
    reports r;
    reports_init(&r, 1);
    stream_producer *p = producer_with(c, &r, 1, STREAM_CODEC_NONE, 0);
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
    broker_stop(&g, SIGTERM);
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
    fixture g = {0};
    const char *sets[] = {"max.message.bytes=2000", NULL};
    broker_start(&g, false, sets);
    stream_client *c = client_for(g.addr);
    create_topic(c, "strict", 1);
    reports r;
    reports_init(&r, 3);
    stream_producer *p = producer_with(c, &r, 1, STREAM_CODEC_NONE, 0);
    static char big[5000];
    memset(big, 'b', sizeof big);
    stream_producer_record rec = {.topic = "strict", .partition = 0, .key_len = -1};
    /* Small records are batched under the broker's limit (from hello); a
     * record bigger than the limit fails alone, at once, not retried. */
    for (size_t i = 0; i < 3; i++) {
        rec.value = big;
        rec.value_len = i == 1 ? 5000 : 10;
        rec.opaque = (void *)(uintptr_t)i;
        produce(p, &rec);
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
    broker_stop(&g, SIGTERM);
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
    stream_producer *p = producer_with(f->c, &r, STREAM_ACKS_ALL, STREAM_CODEC_NONE, 4096);
    for (size_t i = 0; i < N; i++) {
        char v[32];
        int len = snprintf(v, sizeof v, "value-%zu", i);
        stream_producer_record rec = {.topic = "crash",
                                      .partition = 0,
                                      .key_len = -1,
                                      .value = v,
                                      .value_len = len,
                                      .opaque = (void *)(uintptr_t)i};
        produce(p, &rec);
        if (i % 500 == 0)
            stream_producer_poll(p, 0);
        if (i == N / 2) {
            broker_stop(f, SIGKILL);
            /* Some requests fail and are retried while it is down. */
            for (int k = 0; k < 5; k++)
                stream_producer_poll(p, 20);
            broker_start(f, true, NULL);
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
        produce(p, &rec);
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
    stream_producer *p = producer_with(f->c, &r, STREAM_ACKS_ALL, STREAM_CODEC_NONE, 1024);
    for (size_t i = 0; i < N; i++) {
        char v[32];
        int len = snprintf(v, sizeof v, "value-%zu", i);
        stream_producer_record rec = {.topic = "crashes",
                                      .partition = 0,
                                      .key_len = -1,
                                      .value = v,
                                      .value_len = len,
                                      .opaque = (void *)(uintptr_t)i};
        produce(p, &rec);
        if (i % 200 == 0)
            stream_producer_poll(p, 0);
        if (i > 0 && i % (N / 5) == 0) {
            /* Batches are in flight: some landed unanswered. */
            broker_stop(f, SIGKILL);
            for (int k = 0; k < 3; k++)
                stream_producer_poll(p, 20);
            broker_start(f, true, NULL);
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
    produce(p, &rec); /* record N: gets the producer id and metadata while it is up */
    assert_int_equal(stream_producer_flush(p, 10000), 0);
    broker_stop(f, SIGKILL);
    int64_t t0 = wire_now_ms();
    for (size_t i = 0; i < N; i++) {
        rec.opaque = (void *)(uintptr_t)i;
        produce(p, &rec);
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
    pc.max_in_flight_per_partition = 6;
    stream_producer *p = NULL;
    char eb[256] = "";
    assert_int_equal(stream_producer_new(c, &pc, &p, eb, sizeof eb), STREAM_EINVAL);
    assert_non_null(strstr(eb, "max_in_flight_per_partition"));
    pc.idempotence = false;
    assert_int_equal(stream_producer_new(c, &pc, &p, eb, sizeof eb), 0);
    stream_producer_free(p, 0);
    stream_client_free(c);
}

/* ---- admin --------------------------------------------------------------- */

static void test_admin_create_describe_alter_delete(void **state)
{
    fixture *f = *state;
    stream_client *c = f->c;
    char eb[256] = "";
    stream_config_entry cfg[1] = {{.name = "retention.ms", .value = "3600000"}};
    stream_new_topic nt[3] = {
        {.name = "adm", .partitions = 3, .configs = cfg, .config_count = 1},
        {.name = "bad name", .partitions = 1},
        {.name = "adm2", .partitions = 0}, /* the broker's default count */
    };
    stream_topic_result *res;
    assert_int_equal(stream_admin_create_topics(c, nt, 3, -1, &res, eb, sizeof eb), 0);
    assert_string_equal(res[0].topic, "adm");
    assert_int_equal(res[0].err, 0);
    assert_string_equal(res[0].msg, "");
    assert_int_equal(res[1].err, STREAM_EBADNAME);
    assert_true(strlen(res[1].msg) > 0);
    assert_int_equal(res[2].err, 0);
    stream_topic_results_free(res, 3);

    assert_int_equal(stream_admin_create_topics(c, nt, 1, -1, &res, eb, sizeof eb), 0);
    assert_int_equal(res[0].err, STREAM_ETOPICEXISTS);
    assert_string_equal(res[0].msg, "topic 'adm' already exists");
    stream_topic_results_free(res, 1);

    stream_metadata *md;
    assert_int_equal(stream_client_metadata(c, NULL, 0, -1, &md, eb, sizeof eb), 0);
    assert_int_equal(md->topic_count, 2);
    assert_string_equal(md->topics[0].name, "adm");
    assert_int_equal(md->topics[0].partition_count, 3);
    assert_int_equal(md->topics[0].partitions[2].partition, 2);
    assert_int_equal(md->topics[0].partitions[2].high_watermark, 0);
    assert_int_equal(md->topics[0].partitions[2].leader, md->brokers[0].node_id);
    stream_metadata_free(md);
    const char *missing = "missing";
    assert_int_equal(stream_client_metadata(c, &missing, 1, -1, &md, eb, sizeof eb), 0);
    assert_int_equal(md->topics[0].err, STREAM_ENOTOPIC);
    stream_metadata_free(md);
    assert_int_equal(stream_client_partition_count(c, "adm", -1, eb, sizeof eb), 3);

    const char *names[2] = {"adm", "missing"};
    stream_topic_config *tc;
    assert_int_equal(stream_admin_describe_configs(c, names, 2, -1, &tc, eb, sizeof eb), 0);
    const stream_config_entry *ret = NULL;
    for (size_t i = 0; i < tc[0].entry_count; i++)
        if (strcmp(tc[0].entries[i].name, "retention.ms") == 0)
            ret = &tc[0].entries[i];
    assert_non_null(ret);
    assert_string_equal(ret->value, "3600000");
    assert_false(ret->is_default);
    assert_string_equal(ret->source, "topic");
    assert_int_equal(tc[1].err, STREAM_ENOTOPIC);
    stream_topic_configs_free(tc, 2);

    stream_config_entry alter[2] = {{.name = "retention.ms", .value = NULL},
                                    {.name = "segment.bytes", .value = "1048576"}};
    assert_int_equal(stream_admin_alter_configs(c, "adm", alter, 2, -1, &res, eb, sizeof eb), 0);
    assert_int_equal(res[0].err, 0);
    stream_topic_results_free(res, 1);
    assert_int_equal(stream_admin_describe_configs(c, names, 1, -1, &tc, eb, sizeof eb), 0);
    for (size_t i = 0; i < tc[0].entry_count; i++) {
        if (strcmp(tc[0].entries[i].name, "retention.ms") == 0)
            assert_true(tc[0].entries[i].is_default);
        if (strcmp(tc[0].entries[i].name, "segment.bytes") == 0)
            assert_string_equal(tc[0].entries[i].value, "1048576");
    }
    stream_topic_configs_free(tc, 1);
    stream_config_entry bad = {.name = "no.such.setting", .value = "1"};
    assert_int_equal(stream_admin_alter_configs(c, "adm", &bad, 1, -1, &res, eb, sizeof eb), 0);
    assert_int_equal(res[0].err, STREAM_EBADCONFIG);
    assert_non_null(strstr(res[0].msg, "no.such.setting"));
    stream_topic_results_free(res, 1);

    stream_offset_query q[2] = {
        {.topic = "adm", .partition = 1, .timestamp = STREAM_LIST_LATEST},
        {.topic = "adm", .partition = 9, .timestamp = STREAM_LIST_EARLIEST}};
    assert_int_equal(stream_admin_list_offsets(c, q, 2, -1, eb, sizeof eb), 0);
    assert_int_equal(q[0].err, 0);
    assert_int_equal(q[0].offset, 0);
    assert_int_equal(q[1].err, STREAM_ENOPART);

    assert_int_equal(stream_admin_delete_topics(c, names, 2, -1, &res, eb, sizeof eb), 0);
    assert_int_equal(res[0].err, 0);
    assert_int_equal(res[1].err, STREAM_ENOTOPIC);
    stream_topic_results_free(res, 2);
    assert_int_equal(stream_client_partition_count(c, "adm", -1, eb, sizeof eb), STREAM_ENOTOPIC);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_refused_names_broker),
        cmocka_unit_test(test_conf_rejects_bad_values),
        cmocka_unit_test(test_connect_to_a_non_broker_fails_clearly),
        cmocka_unit_test_setup_teardown(test_connect_tries_each_broker_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip_keys_headers_nulls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyed_records_land_on_murmur2_partitions, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sticky_partitioner_fills_a_batch_then_moves, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_acks_0_1_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compressed_batches_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_consumer_start_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_assign_reports_unknown_topic_and_partition, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_end_snapshot_ignores_later_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_ahead_over_many_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow_mode_eof_then_long_poll_gets_new_records, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_offset_out_of_range_is_reported_or_reset, setup,
                                        teardown),
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
        cmocka_unit_test_setup_teardown(test_admin_create_describe_alter_delete, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
