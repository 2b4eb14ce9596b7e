/*
 * test_consumer.c - the consumer's fetch path against a real stream-broker
 * process ($STREAM_BUILD/stream-broker): batches of every codec consumed by a
 * consumer that was not told the codec, a batch whose CRC holds over bytes
 * that do not decompress (an error event, never a crash), large responses
 * kept in the client's receive buffer, and fetch answers that are the stored
 * bytes exactly, whether the broker sends them from the file (batches it
 * appended itself: sendfile) or reads and CRC-checks them (batches it found
 * on disk at start), across segment rolls, large and small max_bytes, several
 * partitions in one response and a reader slower than the broker.
 *
 * Batches are produced over the raw wire (wire.h), so the test decides every
 * byte of them; the consumer is libstream's.
 *
 * Then, with records from libstream's producer (client_kit.h): keys,
 * headers and nulls back as they were, start offsets (beginning, end,
 * absolute, relative, by time), unknown topics and partitions, the end
 * snapshot of stop_at_end, fetching ahead over many batches, follow mode's
 * EOF and long poll, and an offset out of range reported or reset.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>

#include "stream/client.h"
#include "client_kit.h"
#include "stream/crc32c.h"
#include "stream/error.h"
#include "wire.h"

/* ---- helpers ---------------------------------------------------------------- */

typedef struct fixture {
    wire_broker b;
    int fd; /* a raw connection (hello said) */
} fixture;

static const char *const small_segments[] = {"segment.bytes=65536", "index.interval.bytes=1024",
                                             NULL};

static int start(void **state, const char *const *sets)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    wire_broker_start(&f->b, "test_consumer", sets);
    f->fd = wire_connect(f->b.port);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return start(state, small_segments);
}

/* Default (1 GiB) segments: answers of many megabytes. */
static int setup_big(void **state)
{
    return start(state, NULL);
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->fd >= 0)
        close(f->fd);
    if (f->b.pid > 0)
        wire_broker_stop(&f->b);
    wire_rm_rf(f->b.dir);
    free(f);
    return 0;
}

/* Restarts the broker cleanly on the same data (a new port). */
static void restart(fixture *f)
{
    close(f->fd);
    assert_int_equal(wire_broker_stop(&f->b), 0);
    wire_broker_start(&f->b, "test_consumer", small_segments);
    f->fd = wire_connect(f->b.port);
}

/* The value of record i of batch `tag`: repetitive (so it compresses) and
 * distinct. */
static int value_of(char *buf, size_t len, const char *tag, int i, int size)
{
    int n = snprintf(buf, len, "%s-%06d-", tag, i);
    while (n < size && (size_t)n < len - 1) {
        buf[n] = (char)('a' + (n + i) % 7);
        n++;
    }
    buf[n] = '\0';
    return n;
}

/* A batch of n records (tag-based values of `size` bytes) in `codec`,
 * appended to out. */
static void build_batch(stream_buf *out, stream_codec codec, const char *tag, int n, int size)
{
    stream_batch_builder bb;
    stream_batch_builder_init(&bb);
    assert_int_equal(stream_batch_builder_set_codec(&bb, codec, 0), 0);
    for (int i = 0; i < n; i++) {
        char v[4096];
        int vl = value_of(v, sizeof(v), tag, i, size);
        char k[32];
        int kl = snprintf(k, sizeof(k), "k%d", i);
        assert_int_equal(stream_batch_builder_append(&bb, 1700000000000 + i, k, kl, v, vl, NULL, 0),
                         0);
    }
    const uint8_t *p;
    size_t len;
    assert_int_equal(stream_batch_builder_finish(&bb, &p, &len), 0);
    stream_buf_put(out, p, len);
    assert_false(out->oom);
    stream_batch_builder_release(&bb);
}

static stream_client *client_of(const fixture *f)
{
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", f->b.port);
    stream_client_conf conf;
    stream_client_conf_init(&conf);
    conf.brokers = addr;
    stream_client *c = NULL;
    char err[256];
    if (stream_client_new(&conf, &c, err, sizeof(err)) != 0)
        fail_msg("client: %s", err);
    return c;
}

static stream_consumer *consumer_for(stream_client *c, const char *topic, int32_t max_bytes)
{
    stream_consumer_conf conf;
    stream_consumer_conf_init(&conf);
    conf.stop_at_end = true;
    if (max_bytes > 0)
        conf.max_bytes = conf.max_partition_bytes = max_bytes;
    stream_consumer *co = NULL;
    char err[256];
    if (stream_consumer_new(c, &conf, &co, err, sizeof(err)) != 0)
        fail_msg("consumer: %s", err);
    if (stream_consumer_assign(co, topic, STREAM_PARTITION_ALL, NULL, err, sizeof(err)) != 0)
        fail_msg("assign: %s", err);
    return co;
}

/* ---- codecs --------------------------------------------------------------- */

static const stream_codec codecs[] = {STREAM_CODEC_NONE, STREAM_CODEC_GZIP, STREAM_CODEC_SNAPPY,
                                      STREAM_CODEC_LZ4, STREAM_CODEC_ZSTD};
#define NCODECS (sizeof(codecs) / sizeof(codecs[0]))

/* One partition holding batches of every codec, one after the other, twice
 * (so the codec changes from batch to batch): the consumer, which is never
 * told a codec, returns every record in order with its key and value. */
static void test_each_codec_is_consumed_without_being_told(void **state)
{
    fixture *f = *state;
    assert_int_equal(wire_create_topic(f->fd, "mixed", 1), 0);
    const int per_batch = 40, size = 300;
    for (int round = 0; round < 2; round++)
        for (size_t k = 0; k < NCODECS; k++) {
            stream_buf b = STREAM_BUF_INIT;
            char tag[32];
            snprintf(tag, sizeof(tag), "%s%d", stream_codec_name(codecs[k]), round);
            build_batch(&b, codecs[k], tag, per_batch, size);
            assert_int_equal(wire_produce_batch(f->fd, "mixed", 0, b.data, b.len, NULL), 0);
            stream_buf_release(&b);
        }
    stream_client *c = client_of(f);
    stream_consumer *co = consumer_for(c, "mixed", 0);
    int got = 0;
    for (int guard = 0; guard < 100000 && !stream_consumer_done(co); guard++) {
        stream_consumer_event ev;
        int rc = stream_consumer_poll(co, 1000, &ev);
        assert_true(rc >= 0);
        if (rc == 0 || ev.type == STREAM_EVENT_EOF)
            continue;
        if (ev.type == STREAM_EVENT_ERROR)
            fail_msg("error event: %s", ev.msg);
        assert_int_equal(ev.type, STREAM_EVENT_RECORD);
        int batch = got / per_batch, i = got % per_batch;
        char tag[32], want[4096], key[32];
        snprintf(tag, sizeof(tag), "%s%d", stream_codec_name(codecs[batch % NCODECS]),
                 batch / (int)NCODECS);
        int wl = value_of(want, sizeof(want), tag, i, size);
        int kl = snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(ev.offset, got);
        assert_int_equal(ev.record.value_len, wl);
        assert_memory_equal(ev.record.value, want, (size_t)wl);
        assert_int_equal(ev.record.key_len, kl);
        assert_memory_equal(ev.record.key, key, (size_t)kl);
        got++;
    }
    assert_int_equal(got, 2 * (int)NCODECS * per_batch);
    stream_consumer_free(co);
    stream_client_free(c);
}

/* Replaces the compressed records of the batch at p (size n) with garbage
 * and restamps its CRC, so that only decompression can tell. */
static void garble_records(uint8_t *p, size_t n)
{
    assert_true(n > STREAM_BATCH_HEADER_SIZE + 8);
    for (size_t i = STREAM_BATCH_HEADER_SIZE; i < n; i++)
        p[i] = (uint8_t)(0xA5 ^ (i * 31));
    uint32_t crc = stream_crc32c(0, p + STREAM_BATCH_OFF_ATTRIBUTES, n - STREAM_BATCH_OFF_ATTRIBUTES);
    stream_store_be32(p + STREAM_BATCH_OFF_CRC, crc);
}

/* For each codec: a good batch, then one whose CRC is right but whose
 * compressed bytes are garbage. The broker stores it (it checks CRCs, it
 * does not decompress); the consumer returns every record of the good batch,
 * then one ERROR event naming the codec and the offsets, and then nothing:
 * the partition is paused, the consumer is done, nothing crashed (ASan). */
static void test_corrupt_compressed_batch_is_an_error_not_a_crash(void **state)
{
    fixture *f = *state;
    for (size_t k = 1; k < NCODECS; k++) {
        const char *name = stream_codec_name(codecs[k]);
        char topic[64];
        snprintf(topic, sizeof(topic), "bad-%s", name);
        assert_int_equal(wire_create_topic(f->fd, topic, 1), 0);
        stream_buf good = STREAM_BUF_INIT, bad = STREAM_BUF_INIT;
        build_batch(&good, codecs[k], "good", 10, 200);
        build_batch(&bad, codecs[k], "bad", 10, 200);
        garble_records(bad.data, bad.len);
        char why[256];
        stream_batch_info info;
        assert_int_equal(stream_batch_check(bad.data, bad.len, &info, why, sizeof(why)), 0);
        assert_int_equal(wire_produce_batch(f->fd, topic, 0, good.data, good.len, NULL), 0);
        int64_t bad_base = -1;
        assert_int_equal(wire_produce_batch(f->fd, topic, 0, bad.data, bad.len, &bad_base), 0);
        assert_int_equal(bad_base, 10);
        stream_buf_release(&good);
        stream_buf_release(&bad);

        stream_client *c = client_of(f);
        stream_consumer *co = consumer_for(c, topic, 0);
        int records = 0, errors = 0;
        char msg[600] = "";
        for (int guard = 0; guard < 200 && !stream_consumer_done(co); guard++) {
            stream_consumer_event ev;
            int rc = stream_consumer_poll(co, 500, &ev);
            assert_true(rc >= 0);
            if (rc == 1 && ev.type == STREAM_EVENT_RECORD) {
                assert_int_equal(ev.offset, records);
                records++;
            } else if (rc == 1 && ev.type == STREAM_EVENT_ERROR) {
                errors++;
                assert_true(ev.err < 0);
                assert_int_equal(ev.offset, 10);
                snprintf(msg, sizeof(msg), "%s", ev.msg);
            }
        }
        assert_true(stream_consumer_done(co));
        assert_int_equal(records, 10);
        assert_int_equal(errors, 1);
        char want[128];
        snprintf(want, sizeof(want), "the %s-compressed batch of offsets 10..19 cannot be", name);
        if (!strstr(msg, want))
            fail_msg("error message '%s' does not say '%s'", msg, want);
        assert_non_null(strstr(msg, topic));
        /* Polling on after the error is harmless and returns nothing. */
        stream_consumer_event ev;
        assert_int_equal(stream_consumer_poll(co, 0, &ev), 0);
        stream_consumer_free(co);
        stream_client_free(c);
    }
}

/* ---- fetch answers are the stored bytes --------------------------------------- */

/* The partition's .log files, concatenated in offset order. */
static void read_log(const fixture *f, const char *topic, int32_t partition, stream_buf *out)
{
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/data/%s-%d", f->b.dir, topic, (int)partition);
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    assert_true(n > 0);
    for (int i = 0; i < n; i++) {
        size_t len = strlen(names[i]->d_name);
        if (len > 4 && strcmp(names[i]->d_name + len - 4, ".log") == 0) {
            char path[700];
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
            FILE *fp = fopen(path, "rb");
            assert_non_null(fp);
            char buf[65536];
            size_t k;
            while ((k = fread(buf, 1, sizeof(buf), fp)) > 0)
                stream_buf_put(out, buf, k);
            fclose(fp);
        }
        free(names[i]);
    }
    free(names);
}

/* Position in the log bytes of the batch holding `offset`, or -1. */
static long batch_pos(const stream_buf *log, int64_t offset)
{
    size_t pos = 0;
    while (pos < log->len) {
        stream_batch_info info;
        assert_int_equal(stream_batch_header_decode(log->data + pos, log->len - pos, &info), 0);
        if (offset >= info.base_offset && offset <= info.base_offset + info.last_offset_delta)
            return (long)pos;
        pos += info.size;
    }
    return -1;
}

/* Sends one fetch of `nparts` partitions of topic (partition i from
 * offsets[i]) with the given limits; after delay_ms, reads the answer and
 * checks each partition's records against the stored bytes: whole batches,
 * starting with the one holding the offset, byte for byte. Returns the
 * record bytes of the whole answer. */
static size_t fetch_and_compare(fixture *f, const char *topic, int nparts, const int64_t *offsets,
                                int64_t max_bytes, int64_t part_max_bytes, int delay_ms)
{
    stream_buf b = STREAM_BUF_INIT;
    stream_frame fr;
    stream_frame_start(&fr, &b);
    uint64_t id = wire_id();
    stream_pack_request_header(&fr.pk, STREAM_OP_FETCH, id, 3);
    stream_pack_kv_int(&fr.pk, "max_wait_ms", 0);
    stream_pack_kv_int(&fr.pk, "max_bytes", max_bytes);
    stream_pack_key(&fr.pk, "topics");
    msgpack_pack_array(&fr.pk, 1);
    msgpack_pack_map(&fr.pk, 2);
    stream_pack_kv_cstr(&fr.pk, "name", topic);
    stream_pack_key(&fr.pk, "partitions");
    msgpack_pack_array(&fr.pk, (size_t)nparts);
    for (int i = 0; i < nparts; i++) {
        msgpack_pack_map(&fr.pk, 3);
        stream_pack_kv_int(&fr.pk, "partition", i);
        stream_pack_kv_int(&fr.pk, "offset", offsets[i]);
        stream_pack_kv_int(&fr.pk, "max_bytes", part_max_bytes);
    }
    assert_int_equal(stream_frame_finish(&fr), 0);
    wire_send_all(f->fd, b.data, b.len);
    stream_buf_release(&b);
    if (delay_ms > 0)
        wire_sleep_ms(delay_ms); /* the broker fills the socket and must wait */
    wire_resp r;
    assert_true(wire_recv_resp(f->fd, &r));
    assert_int_equal(r.id, id);
    assert_int_equal(r.err, 0);
    const msgpack_object *parts = wire_array(wire_elem(wire_array(&r.msg.root, "topics"), 0),
                                             "partitions");
    assert_int_equal(parts->via.array.size, nparts);
    size_t total = 0;
    for (int i = 0; i < nparts; i++) {
        const msgpack_object *pm = wire_elem(parts, (size_t)i);
        assert_int_equal(wire_int(pm, "partition"), i);
        assert_int_equal(wire_int(pm, "err"), 0);
        const uint8_t *p;
        size_t len;
        assert_int_equal(stream_field_bin(pm, "records", &p, &len, NULL, 0), 0);
        stream_buf log = STREAM_BUF_INIT;
        read_log(f, topic, i, &log);
        if (len > 0) {
            long pos = batch_pos(&log, offsets[i]);
            assert_true(pos >= 0);
            assert_true((size_t)pos + len <= log.len);
            assert_memory_equal(p, log.data + pos, len);
            /* Whole batches only. */
            size_t q = 0;
            while (q < len) {
                stream_batch_info info;
                assert_int_equal(stream_batch_check(p + q, len - q, &info, NULL, 0), 0);
                q += info.size;
            }
            assert_int_equal(q, len);
        }
        stream_buf_release(&log);
        total += len;
    }
    wire_resp_release(&r);
    return total;
}

/* Offsets to fetch from: the start, the middle of a batch, the first batch
 * of a later segment, the last batch, the end. */
static void fetch_everywhere(fixture *f, const char *topic, int64_t end, int delay_ms)
{
    const int64_t starts[] = {0, 7, end / 3, end / 2 + 1, end - 1, end};
    for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
        int64_t off[2] = {starts[i], starts[i]};
        /* max_bytes 1: the first batch only; 100 KiB: some batches, up to a
         * segment's end; 64 MiB: the rest of the segment. */
        fetch_and_compare(f, topic, 1, off, 1, 1, 0);
        fetch_and_compare(f, topic, 1, off, 100000, 100000, 0);
        fetch_and_compare(f, topic, 1, off, 64 << 20, 64 << 20, 0);
        /* Both partitions in one answer, the second one's bytes after the
         * first one's, and a reader that makes the broker wait. */
        fetch_and_compare(f, topic, 2, off, 64 << 20, 64 << 20, delay_ms);
    }
}

/* Batches appended by this broker process go out with sendfile; after a
 * restart they are read and CRC-checked instead. Both give the bytes of the
 * segment files exactly, across segment rolls (64 KiB segments), for small
 * and large limits and two partitions per answer. */
static void test_fetch_answers_are_the_stored_bytes(void **state)
{
    fixture *f = *state;
    assert_int_equal(wire_create_topic(f->fd, "bytes", 2), 0);
    int64_t end = 0;
    for (int i = 0; i < 60; i++) {
        stream_buf b = STREAM_BUF_INIT;
        char tag[16];
        snprintf(tag, sizeof(tag), "b%d", i);
        build_batch(&b, i % 5 == 4 ? STREAM_CODEC_LZ4 : STREAM_CODEC_NONE, tag, 10 + i % 7,
                    500 + 37 * i);
        for (int32_t p = 0; p < 2; p++) {
            int64_t base;
            assert_int_equal(wire_produce_batch(f->fd, "bytes", p, b.data, b.len, &base), 0);
            assert_int_equal(base, end);
        }
        end += 10 + i % 7;
        stream_buf_release(&b);
    }
    fetch_everywhere(f, "bytes", end, 0);
    restart(f);
    fetch_everywhere(f, "bytes", end, 0);
}

/* Megabytes in one answer to a reader that waits before reading: the
 * broker's socket fills, sendfile finds it full, and the rest still comes
 * whole and in order; a request pipelined behind it is answered after it. */
static void test_large_answer_to_a_slow_reader(void **state)
{
    fixture *f = *state;
    assert_int_equal(wire_create_topic(f->fd, "big", 2), 0);
    int64_t end = 0;
    for (int i = 0; i < 24; i++) {
        stream_buf b = STREAM_BUF_INIT;
        build_batch(&b, STREAM_CODEC_NONE, "big", 200, 1000);
        for (int32_t p = 0; p < 2; p++)
            assert_int_equal(wire_produce_batch(f->fd, "big", p, b.data, b.len, NULL), 0);
        end += 200;
        stream_buf_release(&b);
    }
    int64_t off[2] = {0, 0};
    /* Up to 9.6 MB in one answer, from several places. */
    for (int64_t o = 0; o < end; o += end / 6) {
        off[0] = off[1] = o;
        assert_true(fetch_and_compare(f, "big", 2, off, 64 << 20, 64 << 20, 300) > 0);
    }
    /* A fetch and a metadata request back to back: answered in order. */
    stream_buf b = STREAM_BUF_INIT;
    stream_frame fr;
    stream_frame_start(&fr, &b);
    uint64_t id1 = wire_id();
    stream_pack_request_header(&fr.pk, STREAM_OP_FETCH, id1, 2);
    stream_pack_kv_int(&fr.pk, "max_wait_ms", 0);
    stream_pack_key(&fr.pk, "topics");
    msgpack_pack_array(&fr.pk, 1);
    msgpack_pack_map(&fr.pk, 2);
    stream_pack_kv_cstr(&fr.pk, "name", "big");
    stream_pack_key(&fr.pk, "partitions");
    msgpack_pack_array(&fr.pk, 1);
    msgpack_pack_map(&fr.pk, 2);
    stream_pack_kv_int(&fr.pk, "partition", 0);
    stream_pack_kv_int(&fr.pk, "offset", 0);
    assert_int_equal(stream_frame_finish(&fr), 0);
    stream_frame_start(&fr, &b);
    uint64_t id2 = wire_id();
    stream_pack_request_header(&fr.pk, STREAM_OP_METADATA, id2, 0);
    assert_int_equal(stream_frame_finish(&fr), 0);
    wire_send_all(f->fd, b.data, b.len);
    stream_buf_release(&b);
    wire_sleep_ms(200);
    wire_resp r;
    assert_true(wire_recv_resp(f->fd, &r));
    assert_int_equal(r.id, id1);
    assert_int_equal(r.err, 0);
    wire_resp_release(&r);
    assert_true(wire_recv_resp(f->fd, &r));
    assert_int_equal(r.id, id2);
    assert_int_equal(r.err, 0);
    wire_resp_release(&r);

    /* The consumer reads it all through large responses (kept in the
     * client's receive buffer) and small ones (copied). */
    for (int round = 0; round < 2; round++) {
        stream_client *c = client_of(f);
        stream_consumer *co = consumer_for(c, "big", round == 0 ? 0 : 3000);
        int64_t got[2] = {0, 0};
        for (int guard = 0; guard < 1000000 && !stream_consumer_done(co); guard++) {
            stream_consumer_event ev;
            int rc = stream_consumer_poll(co, 1000, &ev);
            assert_true(rc >= 0);
            if (rc == 1 && ev.type == STREAM_EVENT_ERROR)
                fail_msg("error event: %s", ev.msg);
            if (rc != 1 || ev.type != STREAM_EVENT_RECORD)
                continue;
            assert_true(ev.partition == 0 || ev.partition == 1);
            assert_int_equal(ev.offset, got[ev.partition]);
            char want[4096];
            int wl = value_of(want, sizeof(want), "big", (int)(ev.offset % 200), 1000);
            assert_int_equal(ev.record.value_len, wl);
            assert_memory_equal(ev.record.value, want, (size_t)wl);
            got[ev.partition]++;
        }
        assert_int_equal(got[0], end);
        assert_int_equal(got[1], end);
        stream_consumer_free(co);
        stream_client_free(c);
    }
}

/* ---- through a producer: positions, ends, long polls ------------------------ */

/* A broker with default settings and a client (client_kit.h). */
static int setup_client(void **state)
{
    return client_fixture_setup(state, "test_consumer", NULL);
}

static int teardown_client(void **state)
{
    return client_fixture_teardown(state);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Keys, values, headers and nulls come back as they were produced. */
static void test_roundtrip_keys_headers_nulls(void **state)
{
    client_fixture *f = *state;
    create_topic(f->c, "rt", 1);
    reports r;
    reports_init(&r, 5);
    stream_producer *p = producer_for(f->c, &r, STREAM_ACKS_ALL, STREAM_CODEC_NONE, 0);
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
        produce_record(p, &recs[i]);
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

/* 100 records in partition 0 with timestamps 1e12 + i * 1000. */
static void fill_timed(client_fixture *f, const char *topic)
{
    create_topic(f->c, topic, 1);
    reports r;
    reports_init(&r, 100);
    stream_producer *p = producer_for(f->c, &r, 1, STREAM_CODEC_NONE, 1024);
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
        produce_record(p, &rec);
    }
    assert_int_equal(stream_producer_flush(p, 10000), 0);
    assert_int_equal(r.failed, 0);
    stream_producer_free(p, 0);
    reports_release(&r);
}

static int64_t first_offset(client_fixture *f, const char *topic, stream_offset_spec spec,
                            size_t *n)
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
    client_fixture *f = *state;
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
    client_fixture *f = *state;
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
    client_fixture *f = *state;
    create_topic(f->c, "snap", 2);
    reports r;
    reports_init(&r, 400);
    stream_producer *p = producer_for(f->c, &r, 1, STREAM_CODEC_NONE, 0);
    for (size_t i = 0; i < 200; i++) {
        stream_producer_record rec = {.topic = "snap",
                                      .partition = (int32_t)(i % 2),
                                      .key_len = -1,
                                      .value = "a",
                                      .value_len = 1,
                                      .opaque = (void *)(uintptr_t)i};
        produce_record(p, &rec);
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
        produce_record(p, &rec);
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
    client_fixture *f = *state;
    create_topic(f->c, "many", 1);
    enum { N = 100000 };
    reports r;
    reports_init(&r, N);
    stream_producer *p = producer_for(f->c, &r, 1, STREAM_CODEC_NONE, 8192);
    char v[16];
    for (size_t i = 0; i < N; i++) {
        memcpy(v, &i, sizeof i);
        stream_producer_record rec = {.topic = "many",
                                      .partition = 0,
                                      .key_len = -1,
                                      .value = v,
                                      .value_len = sizeof i,
                                      .opaque = (void *)(uintptr_t)i};
        produce_record(p, &rec);
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
    client_fixture *f = *state;
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
    stream_producer *p = producer_for(f->c, &r, 1, STREAM_CODEC_NONE, 0);
    stream_producer_record rec = {
        .topic = "follow", .partition = 0, .key_len = -1, .value = "late", .value_len = 4};
    produce_record(p, &rec);
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
    client_fixture *f = *state;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_each_codec_is_consumed_without_being_told, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_compressed_batch_is_an_error_not_a_crash,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_answers_are_the_stored_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_answer_to_a_slow_reader, setup_big, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip_keys_headers_nulls, setup_client,
                                        teardown_client),
        cmocka_unit_test_setup_teardown(test_consumer_start_offsets, setup_client, teardown_client),
        cmocka_unit_test_setup_teardown(test_assign_reports_unknown_topic_and_partition,
                                        setup_client, teardown_client),
        cmocka_unit_test_setup_teardown(test_end_snapshot_ignores_later_records, setup_client,
                                        teardown_client),
        cmocka_unit_test_setup_teardown(test_fetch_ahead_over_many_batches, setup_client,
                                        teardown_client),
        cmocka_unit_test_setup_teardown(test_follow_mode_eof_then_long_poll_gets_new_records,
                                        setup_client, teardown_client),
        cmocka_unit_test_setup_teardown(test_offset_out_of_range_is_reported_or_reset, setup_client,
                                        teardown_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
