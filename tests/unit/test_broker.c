/*
 * test_broker.c - the broker as a client sees it: a real stream-broker
 * process ($STREAM_BUILD/stream-broker) on 127.0.0.1:0 in a temp dir, spoken
 * to over raw sockets with the helpers of wire.h. Requests are built with
 * proto.h's packers, hostile input is written byte by byte.
 *
 * Most tests share one broker (group setup) and, besides their own checks,
 * prove that a second "control" connection is still served and that the data
 * of the topic "intact" reads back unchanged after each piece of bad input.
 * The life-cycle tests (SIGTERM, clean restart) start their own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stream/batch.h"
#include "stream/buf.h"
#include "stream/error.h"
#include "stream/proto.h"
#include "wire.h"

/* Builds request frames for the ops used here; returns the id. */
static uint64_t req_create(stream_buf *b, const char *name, int partitions)
{
    stream_frame f;
    stream_frame_start(&f, b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_CREATE_TOPICS, id, 1);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_cstr(&f.pk, "name", name);
    stream_pack_kv_int(&f.pk, "partitions", partitions);
    assert_int_equal(stream_frame_finish(&f), 0);
    return id;
}

/* A produce request; `timing` asks for the broker's account (protocol.md 6.7). */
static uint64_t req_produce_timed(stream_buf *b, const char *topic, int64_t partition,
                                  const void *rec, size_t len, int acks, bool timing)
{
    stream_frame f;
    stream_frame_start(&f, b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_PRODUCE, id, 3 + timing);
    stream_pack_kv_int(&f.pk, "acks", acks);
    stream_pack_kv_int(&f.pk, "timeout_ms", 10000);
    if (timing)
        stream_pack_kv_bool(&f.pk, "timing", true);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_cstr(&f.pk, "name", topic);
    stream_pack_key(&f.pk, "partitions");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_int(&f.pk, "partition", partition);
    stream_pack_kv_bin(&f.pk, "records", rec, len);
    assert_int_equal(stream_frame_finish(&f), 0);
    return id;
}

static uint64_t req_produce(stream_buf *b, const char *topic, int64_t partition, const void *rec,
                            size_t len, int acks)
{
    return req_produce_timed(b, topic, partition, rec, len, acks, false);
}

static uint64_t req_fetch(stream_buf *b, const char *topic, int64_t partition, int64_t offset,
                          int max_wait_ms, int min_bytes)
{
    stream_frame f;
    stream_frame_start(&f, b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_FETCH, id, 3);
    stream_pack_kv_int(&f.pk, "max_wait_ms", max_wait_ms);
    stream_pack_kv_int(&f.pk, "min_bytes", min_bytes);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_cstr(&f.pk, "name", topic);
    stream_pack_key(&f.pk, "partitions");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_int(&f.pk, "partition", partition);
    stream_pack_kv_int(&f.pk, "offset", offset);
    assert_int_equal(stream_frame_finish(&f), 0);
    return id;
}

static uint64_t req_list_offsets(stream_buf *b, const char *topic, int64_t partition, int64_t ts)
{
    stream_frame f;
    stream_frame_start(&f, b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_LIST_OFFSETS, id, 1);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_cstr(&f.pk, "name", topic);
    stream_pack_key(&f.pk, "partitions");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_int(&f.pk, "partition", partition);
    stream_pack_kv_int(&f.pk, "timestamp", ts);
    assert_int_equal(stream_frame_finish(&f), 0);
    return id;
}

static uint64_t req_metadata(stream_buf *b)
{
    stream_frame f;
    stream_frame_start(&f, b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_METADATA, id, 0);
    assert_int_equal(stream_frame_finish(&f), 0);
    return id;
}

/* The first partition result of a produce/fetch/list_offsets response:
 * topics[0].partitions[0]. */
static const msgpack_object *first_part(const wire_resp *r)
{
    const msgpack_object *topics, *t, *parts, *p;
    assert_int_equal(stream_field_array(&r->msg.root, "topics", &topics, NULL, 0), 0);
    assert_int_equal(topics->via.array.size, 1);
    assert_int_equal(stream_elem_map(topics, 0, "topics", &t, NULL, 0), 0);
    assert_int_equal(stream_field_array(t, "partitions", &parts, NULL, 0), 0);
    assert_int_equal(parts->via.array.size, 1);
    assert_int_equal(stream_elem_map(parts, 0, "partitions", &p, NULL, 0), 0);
    return p;
}

/* A batch of n records "<prefix>-<i>" at timestamp ts + i. */
static void make_batch(stream_batch_builder *bb, const char *prefix, int n, int64_t ts,
                       const uint8_t **p, size_t *len)
{
    stream_batch_builder_reset(bb);
    for (int i = 0; i < n; i++) {
        char v[64];
        int vl = snprintf(v, sizeof(v), "%s-%d", prefix, i);
        assert_int_equal(stream_batch_builder_append(bb, ts + i, NULL, -1, v, vl, NULL, 0), 0);
    }
    assert_int_equal(stream_batch_builder_finish(bb, p, len), 0);
}

/* Produces to topic/partition and returns the partition result's error
 * (base offset in *base when not NULL). */
static int produce(int fd, const char *topic, int64_t partition, const void *rec, size_t len,
                   int acks, int64_t *base)
{
    stream_buf b = STREAM_BUF_INIT;
    uint64_t id = req_produce(&b, topic, partition, rec, len, acks);
    wire_resp r;
    wire_call(fd, &b, id, &r);
    assert_int_equal(r.err, 0);
    const msgpack_object *p = first_part(&r);
    int err = -(int)wire_int(p, "err");
    if (base)
        *base = wire_int(p, "base_offset");
    wire_resp_release(&r);
    return err;
}

/* Counts records fetched from offset (all batches of one fetch response);
 * *err gets the partition error. Values are appended to `values` when not
 * NULL, one per line. */
static int fetch_count(int fd, const char *topic, int64_t partition, int64_t offset, int *err,
                       stream_buf *values)
{
    stream_buf b = STREAM_BUF_INIT;
    uint64_t id = req_fetch(&b, topic, partition, offset, 0, 1);
    wire_resp r;
    wire_call(fd, &b, id, &r);
    assert_int_equal(r.err, 0);
    const msgpack_object *p = first_part(&r);
    *err = -(int)wire_int(p, "err");
    int count = 0;
    const uint8_t *rec;
    size_t len;
    if (*err == 0) {
        assert_int_equal(stream_field_bin(p, "records", &rec, &len, NULL, 0), 0);
        size_t pos = 0;
        while (pos < len) {
            stream_batch_info info;
            assert_int_equal(stream_batch_validate(rec + pos, len - pos, &info, NULL, 0), 0);
            stream_record_iter it;
            stream_record rd;
            int rc = stream_record_iter_start(&it, rec + pos, len - pos);
            while (rc >= 0 && (rc = stream_record_iter_next(&it, &rd)) == 1) {
                count++;
                if (values) {
                    stream_buf_put(values, rd.value, (size_t)rd.value_len);
                    stream_buf_put_u8(values, '\n');
                }
            }
            stream_record_iter_stop(&it);
            assert_int_equal(rc, 0);
            pos += info.size;
        }
    }
    wire_resp_release(&r);
    return count;
}

/* ---- the shared broker ---- */

static wire_broker shared;
static int control = -1;       /* a connection that must keep working */
static int intact_records = 0; /* records in intact-0 */

/* The control connection still answers and intact-0 reads back whole. */
static void assert_still_served(void)
{
    stream_buf vals = STREAM_BUF_INIT;
    int err;
    int n = fetch_count(control, "intact", 0, 0, &err, &vals);
    assert_int_equal(err, 0);
    assert_int_equal(n, intact_records);
    stream_buf_put_u8(&vals, 0);
    assert_non_null(strstr((char *)vals.data, "intact-0\nintact-1\n"));
    stream_buf_release(&vals);
}

static int group_setup(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    const char *sets[] = {"socket.request.max.bytes=65536", NULL};
    wire_broker_start(&shared, "test_broker", sets);
    control = wire_connect(shared.port);
    stream_buf b = STREAM_BUF_INIT;
    uint64_t id = req_create(&b, "intact", 1);
    wire_resp r;
    wire_call(control, &b, id, &r);
    assert_int_equal(r.err, 0);
    wire_resp_release(&r);
    stream_batch_builder bb;
    stream_batch_builder_init(&bb);
    const uint8_t *p;
    size_t len;
    make_batch(&bb, "intact", 5, 1700000000000, &p, &len);
    assert_int_equal(produce(control, "intact", 0, p, len, -1, NULL), 0);
    stream_batch_builder_release(&bb);
    intact_records = 5;
    return 0;
}

static int group_teardown(void **state)
{
    if (control >= 0)
        close(control);
    int st = wire_broker_stop(&shared);
    wire_rm_rf(shared.dir);
    return st == 0 ? 0 : -1;
}

static void expect_error_then_close(const void *bytes, size_t n, bool say_hello, int err,
                                    uint64_t id);

/* ---- tests ---- */

static void test_hello_answers_with_version(void **state)
{
    int fd = wire_conn_open(shared.port);
    stream_buf b = STREAM_BUF_INIT;
    stream_frame f;
    stream_frame_start(&f, &b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_HELLO, id, 1);
    stream_pack_kv_int(&f.pk, "version", 7);
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_resp r;
    wire_call(fd, &b, id, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(wire_int(&r.msg.root, "version"), STREAM_PROTOCOL_VERSION);
    assert_int_equal(wire_int(&r.msg.root, "max_frame_bytes"), 65536);
    assert_true(wire_int(&r.msg.root, "max_message_bytes") > 0);
    wire_resp_release(&r);
    /* A second hello is refused; the connection goes on. */
    stream_frame_start(&f, &b);
    id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_HELLO, id, 1);
    stream_pack_kv_int(&f.pk, "version", 1);
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_call(fd, &b, id, &r);
    assert_int_equal(r.err, STREAM_EBADREQ);
    wire_resp_release(&r);
    id = req_metadata(&b);
    wire_call(fd, &b, id, &r);
    assert_int_equal(r.err, 0);
    wire_resp_release(&r);
    close(fd);
}

static void test_hello_with_version_zero_is_refused_and_closed(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    stream_frame f;
    stream_frame_start(&f, &b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_HELLO, id, 1);
    stream_pack_kv_int(&f.pk, "version", 0);
    assert_int_equal(stream_frame_finish(&f), 0);
    expect_error_then_close(b.data, b.len, false, STREAM_EUNSUPPORTED, id);
    stream_buf_release(&b);
}

static void test_create_produce_fetch_list_offsets_round_trip(void **state)
{
    int fd = wire_connect(shared.port);
    stream_buf b = STREAM_BUF_INIT;
    wire_resp r;
    uint64_t id = req_create(&b, "rt", 2);
    wire_call(fd, &b, id, &r);
    assert_int_equal(r.err, 0);
    wire_resp_release(&r);

    /* Metadata lists it with two partitions at offset 0. */
    id = req_metadata(&b);
    wire_call(fd, &b, id, &r);
    assert_int_equal(r.err, 0);
    const msgpack_object *topics, *t = NULL, *parts;
    assert_int_equal(stream_field_array(&r.msg.root, "topics", &topics, NULL, 0), 0);
    for (uint32_t i = 0; i < topics->via.array.size; i++) {
        const msgpack_object *ti;
        const char *name;
        size_t nl;
        stream_elem_map(topics, i, "topics", &ti, NULL, 0);
        stream_field_str(ti, "name", &name, &nl, NULL, 0);
        if (stream_str_eq(name, nl, "rt"))
            t = ti;
    }
    assert_non_null(t);
    assert_int_equal(stream_field_array(t, "partitions", &parts, NULL, 0), 0);
    assert_int_equal(parts->via.array.size, 2);
    wire_resp_release(&r);

    stream_batch_builder bb;
    stream_batch_builder_init(&bb);
    const uint8_t *p;
    size_t len;
    int64_t base;
    make_batch(&bb, "a", 3, 1000, &p, &len);
    assert_int_equal(produce(fd, "rt", 1, p, len, 1, &base), 0);
    assert_int_equal(base, 0);
    make_batch(&bb, "b", 2, 2000, &p, &len);
    assert_int_equal(produce(fd, "rt", 1, p, len, -1, &base), 0);
    assert_int_equal(base, 3);

    /* Two batches in one bin are both appended. */
    stream_buf two = STREAM_BUF_INIT;
    make_batch(&bb, "c", 1, 3000, &p, &len);
    stream_buf_put(&two, p, len);
    make_batch(&bb, "d", 1, 4000, &p, &len);
    stream_buf_put(&two, p, len);
    assert_int_equal(produce(fd, "rt", 1, two.data, two.len, 1, &base), 0);
    assert_int_equal(base, 5);
    stream_buf_release(&two);
    stream_batch_builder_release(&bb);

    stream_buf vals = STREAM_BUF_INIT;
    int err;
    assert_int_equal(fetch_count(fd, "rt", 1, 0, &err, &vals), 7);
    assert_int_equal(err, 0);
    stream_buf_put_u8(&vals, 0);
    assert_string_equal((char *)vals.data, "a-0\na-1\na-2\nb-0\nb-1\nc-0\nd-0\n");
    stream_buf_release(&vals);
    /* From the middle of a batch: the whole batch comes back. */
    assert_int_equal(fetch_count(fd, "rt", 1, 4, &err, NULL), 4);
    /* At the end: nothing, no error. */
    assert_int_equal(fetch_count(fd, "rt", 1, 7, &err, NULL), 0);
    assert_int_equal(err, 0);
    /* Partition 0 stayed empty. */
    assert_int_equal(fetch_count(fd, "rt", 0, 0, &err, NULL), 0);

    struct {
        int64_t ts, want;
    } cases[] = {{STREAM_OFFSET_EARLIEST, 0},
                 {STREAM_OFFSET_LATEST, 7},
                 {0, 0},
                 {1001, 1},
                 {2000, 3},
                 {3500, 6},
                 {99999, 7}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        id = req_list_offsets(&b, "rt", 1, cases[i].ts);
        wire_call(fd, &b, id, &r);
        assert_int_equal(r.err, 0);
        const msgpack_object *pr = first_part(&r);
        assert_int_equal(wire_int(pr, "err"), 0);
        assert_int_equal(wire_int(pr, "offset"), cases[i].want);
        wire_resp_release(&r);
    }
    close(fd);
}

static void test_pipelined_requests_answered_in_order(void **state)
{
    int fd = wire_connect(shared.port);
    stream_buf b = STREAM_BUF_INIT;
    uint64_t ids[12];
    stream_batch_builder bb;
    stream_batch_builder_init(&bb);
    const uint8_t *p;
    size_t len;
    make_batch(&bb, "pipe", 2, 5000, &p, &len);
    /* A long poll that waits 300 ms first: everything behind it completes
     * earlier but must be answered after it. */
    ids[0] = req_fetch(&b, "intact", 0, intact_records, 300, 1);
    for (int i = 1; i < 12; i++) {
        if (i % 3 == 0)
            ids[i] = req_produce(&b, "pipeline", 0, p, len, 1);
        else if (i % 3 == 1)
            ids[i] = req_metadata(&b);
        else
            ids[i] = req_list_offsets(&b, "intact", 0, STREAM_OFFSET_LATEST);
    }
    int64_t t0 = wire_now_ms();
    wire_send_frame(fd, &b);
    for (int i = 0; i < 12; i++) {
        wire_resp r;
        assert_true(wire_recv_resp(fd, &r));
        assert_int_equal(r.id, ids[i]);
        assert_int_equal(r.err, 0);
        if (i == 0)
            assert_true(wire_now_ms() - t0 >= 250);
        wire_resp_release(&r);
    }
    stream_batch_builder_release(&bb);
    close(fd);
}

/* A produce asking for timing gets the broker's account of each partition
 * (protocol.md 6.7): with acks=all a sync round that covered the records,
 * with acks=1 only the append; without asking, nothing. */
static void test_produce_timing_accounts_for_the_wait(void **state)
{
    int fd = wire_connect(shared.port);
    stream_batch_builder bb;
    stream_batch_builder_init(&bb);
    const uint8_t *rec;
    size_t len;
    for (int acks = -1; acks <= 1; acks += 2) {
        for (int ask = 0; ask <= 1; ask++) {
            make_batch(&bb, "timed", 3, 1000, &rec, &len);
            stream_buf b = STREAM_BUF_INIT;
            uint64_t id = req_produce_timed(&b, "timed", 0, rec, len, acks, ask);
            wire_resp r;
            wire_call(fd, &b, id, &r);
            assert_int_equal(r.err, 0);
            const msgpack_object *p = first_part(&r), *t = NULL;
            assert_int_equal(wire_int(p, "err"), 0);
            assert_int_equal(stream_field_map_opt(p, "timing", &t, NULL, 0), 0);
            if (!ask) {
                assert_null(t);
            } else {
                assert_non_null(t);
                int64_t append = wire_int(t, "append_us"), durable = wire_int(t, "durable_us");
                int64_t wait = wire_int(t, "round_wait_us"), sync = wire_int(t, "sync_us");
                assert_true(append >= 0);
                if (acks == 1) {
                    assert_int_equal(durable, -1);
                    assert_int_equal(wait, -1);
                    assert_int_equal(sync, -1);
                } else {
                    /* the round began after the append and ended before the answer */
                    assert_true(wait >= 0);
                    assert_true(sync >= 0);
                    assert_true(wait + sync <= durable);
                }
            }
            wire_resp_release(&r);
            stream_buf_release(&b);
        }
    }
    stream_batch_builder_release(&bb);
    close(fd);
}

static void test_acks_zero_produce_is_not_answered(void **state)
{
    int fd = wire_connect(shared.port);
    stream_batch_builder bb;
    stream_batch_builder_init(&bb);
    const uint8_t *p;
    size_t len;
    make_batch(&bb, "quiet", 1, 1, &p, &len);
    stream_buf b = STREAM_BUF_INIT;
    req_produce(&b, "acks0", 0, p, len, 0);
    uint64_t id = req_metadata(&b);
    wire_resp r;
    wire_call(fd, &b, id, &r); /* the first response is the metadata's */
    wire_resp_release(&r);
    int err;
    assert_int_equal(fetch_count(fd, "acks0", 0, 0, &err, NULL), 1);
    stream_batch_builder_release(&bb);
    close(fd);
}

/* Sends raw bytes on a fresh hello'd connection; expects an error response
 * with `err` (id `id`) or none when err is 0, then a close by the broker. */
static void expect_error_then_close(const void *bytes, size_t n, bool say_hello, int err,
                                    uint64_t id)
{
    int fd = say_hello ? wire_connect(shared.port) : wire_conn_open(shared.port);
    wire_send_all(fd, bytes, n);
    if (err != 0) {
        wire_resp r;
        assert_true(wire_recv_resp(fd, &r));
        assert_int_equal(r.id, id);
        assert_int_equal(r.err, err);
        wire_resp_release(&r);
    }
    assert_true(wire_closed_by_broker(fd));
    close(fd);
    assert_still_served();
}

static void test_garbage_bytes_close_that_connection_only(void **state)
{
    static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    /* "GET " as a length is ~1.2 GB: over the limit, refused unread. */
    expect_error_then_close(http, sizeof(http) - 1, false, STREAM_ETOOLARGE, 0);
    static const uint8_t junk[] = {0, 0, 0, 6, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1};
    expect_error_then_close(junk, sizeof(junk), true, STREAM_EPROTO, 0);
}

static void test_truncated_frame_then_close(void **state)
{
    int fd = wire_connect(shared.port);
    static const uint8_t part[] = {0, 0, 0, 100, 0x82, 0xa2, 'o', 'p'};
    wire_send_all(fd, part, sizeof(part));
    shutdown(fd, SHUT_WR);
    assert_true(wire_closed_by_broker(fd));
    close(fd);
    assert_still_served();
}

static void test_frame_over_the_limit_is_refused(void **state)
{
    /* socket.request.max.bytes is 65536 here. */
    uint8_t hdr[4];
    stream_store_be32(hdr, 65537);
    expect_error_then_close(hdr, 4, true, STREAM_ETOOLARGE, 0);
}

static void test_zero_length_frame_is_refused(void **state)
{
    static const uint8_t zero[] = {0, 0, 0, 0};
    expect_error_then_close(zero, sizeof(zero), true, STREAM_EPROTO, 0);
}

static void test_non_map_frame_is_refused(void **state)
{
    static const uint8_t arr[] = {0, 0, 0, 3, 0x92, 0x01, 0x02}; /* [1, 2] */
    expect_error_then_close(arr, sizeof(arr), true, STREAM_EPROTO, 0);
    static const uint8_t str[] = {0, 0, 0, 2, 0xa1, 'x'};
    expect_error_then_close(str, sizeof(str), true, STREAM_EPROTO, 0);
}

static void test_trailing_bytes_are_refused(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    req_metadata(&b);
    /* One more byte inside the frame, after the map. */
    uint8_t *frame = malloc(b.len + 1);
    memcpy(frame, b.data, b.len);
    frame[b.len] = 0xc0;
    stream_store_be32(frame, (uint32_t)(b.len - 4 + 1));
    expect_error_then_close(frame, b.len + 1, true, STREAM_EPROTO, 0);
    free(frame);
    stream_buf_release(&b);
}

static void test_missing_id_closes(void **state)
{
    /* {"op": "metadata"}: no id, so no way to answer it. */
    static const uint8_t m[] = {0,   0,   0,   13,  0x81, 0xa2, 'o', 'p', 0xa8,
                                'm', 'e', 't', 'a', 'd',  'a',  't', 'a'};
    expect_error_then_close(m, sizeof(m), true, STREAM_EPROTO, 0);
}

static void test_wrong_field_types_answer_ebadreq(void **state)
{
    int fd = wire_connect(shared.port);
    stream_buf b = STREAM_BUF_INIT;
    stream_frame f;
    stream_frame_start(&f, &b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_PRODUCE, id, 1);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_cstr(&f.pk, "name", "intact");
    stream_pack_key(&f.pk, "partitions");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_cstr(&f.pk, "partition", "zero"); /* a str, not an int */
    stream_pack_kv_bin(&f.pk, "records", "x", 1);
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_resp r;
    wire_call(fd, &b, id, &r);
    assert_int_equal(r.err, STREAM_EBADREQ);
    assert_non_null(strstr(r.text, "partition"));
    wire_resp_release(&r);

    /* records as a str instead of a bin */
    stream_frame_start(&f, &b);
    id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_FETCH, id, 1);
    stream_pack_kv_cstr(&f.pk, "topics", "intact");
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_call(fd, &b, id, &r);
    assert_int_equal(r.err, STREAM_EBADREQ);
    assert_non_null(strstr(r.text, "topics"));
    wire_resp_release(&r);

    /* acks out of range */
    stream_frame_start(&f, &b);
    id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_PRODUCE, id, 2);
    stream_pack_kv_int(&f.pk, "acks", 5);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 0);
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_call(fd, &b, id, &r);
    assert_int_equal(r.err, STREAM_EBADREQ);
    assert_non_null(strstr(r.text, "acks"));
    wire_resp_release(&r);

    /* The connection is still usable. */
    id = req_metadata(&b);
    wire_call(fd, &b, id, &r);
    assert_int_equal(r.err, 0);
    wire_resp_release(&r);
    close(fd);
    assert_still_served();
}

static void test_unknown_op_answers_eunknownop(void **state)
{
    int fd = wire_connect(shared.port);
    stream_buf b = STREAM_BUF_INIT;
    stream_frame f;
    stream_frame_start(&f, &b);
    uint64_t id = wire_id();
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_cstr(&f.pk, "op", "frobnicate");
    stream_pack_kv_uint(&f.pk, "id", id);
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_resp r;
    wire_call(fd, &b, id, &r);
    assert_int_equal(r.err, STREAM_EUNKNOWNOP);
    wire_resp_release(&r);
    /* An op of a later version than the one negotiated is unknown too:
     * consumer groups are version 2, this connection says version 1. */
    int fd1 = wire_conn_open(shared.port);
    stream_frame_start(&f, &b);
    id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_HELLO, id, 1);
    stream_pack_kv_int(&f.pk, "version", 1);
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_call(fd1, &b, id, &r);
    assert_int_equal(r.err, 0);
    wire_resp_release(&r);
    stream_frame_start(&f, &b);
    id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_JOIN_GROUP, id, 0);
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_call(fd1, &b, id, &r);
    assert_int_equal(r.err, STREAM_EUNKNOWNOP);
    wire_resp_release(&r);
    close(fd1);
    id = req_metadata(&b);
    wire_call(fd, &b, id, &r);
    assert_int_equal(r.err, 0);
    wire_resp_release(&r);
    close(fd);
}

static void test_missing_hello_is_refused(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    uint64_t id = req_metadata(&b);
    expect_error_then_close(b.data, b.len, false, STREAM_EBADREQ, id);
    stream_buf_release(&b);
    /* An unknown op first is no hello either. */
    stream_frame f;
    stream_frame_start(&f, &b);
    id = wire_id();
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_cstr(&f.pk, "op", "frobnicate");
    stream_pack_kv_uint(&f.pk, "id", id);
    assert_int_equal(stream_frame_finish(&f), 0);
    expect_error_then_close(b.data, b.len, false, STREAM_EBADREQ, id);
    stream_buf_release(&b);
}

static void test_invalid_topic_names_answer_ebadname(void **state)
{
    int fd = wire_connect(shared.port);
    char longname[300];
    memset(longname, 'x', 250);
    longname[250] = '\0';
    const char *bad[] = {"bad name", "", "a/b", "..", longname, "__internal", "t\xc3\xa9"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        stream_buf b = STREAM_BUF_INIT;
        uint64_t id = req_create(&b, bad[i], 1);
        wire_resp r;
        wire_call(fd, &b, id, &r);
        assert_int_equal(r.err, 0);
        const msgpack_object *topics, *t;
        stream_field_array(&r.msg.root, "topics", &topics, NULL, 0);
        stream_elem_map(topics, 0, "topics", &t, NULL, 0);
        assert_int_equal(-wire_int(t, "err"), STREAM_EBADNAME);
        wire_resp_release(&r);
    }
    stream_batch_builder bb;
    stream_batch_builder_init(&bb);
    const uint8_t *p;
    size_t len;
    make_batch(&bb, "x", 1, 1, &p, &len);
    assert_int_equal(produce(fd, "a/b", 0, p, len, 1, NULL), STREAM_EBADNAME);
    stream_batch_builder_release(&bb);
    /* Creating twice: the second says it exists. */
    stream_buf b = STREAM_BUF_INIT;
    wire_resp r;
    uint64_t id = req_create(&b, "twice", 1);
    wire_call(fd, &b, id, &r);
    wire_resp_release(&r);
    id = req_create(&b, "twice", 1);
    wire_call(fd, &b, id, &r);
    const msgpack_object *topics, *t;
    stream_field_array(&r.msg.root, "topics", &topics, NULL, 0);
    stream_elem_map(topics, 0, "topics", &t, NULL, 0);
    assert_int_equal(-wire_int(t, "err"), STREAM_ETOPICEXISTS);
    wire_resp_release(&r);
    close(fd);
    assert_still_served();
}

static void test_negative_and_unknown_partitions_answer_enopart(void **state)
{
    int fd = wire_connect(shared.port);
    stream_batch_builder bb;
    stream_batch_builder_init(&bb);
    const uint8_t *p;
    size_t len;
    make_batch(&bb, "x", 1, 1, &p, &len);
    assert_int_equal(produce(fd, "intact", -1, p, len, 1, NULL), STREAM_ENOPART);
    assert_int_equal(produce(fd, "intact", 7, p, len, 1, NULL), STREAM_ENOPART);
    stream_batch_builder_release(&bb);
    int err;
    fetch_count(fd, "intact", -3, 0, &err, NULL);
    assert_int_equal(err, STREAM_ENOPART);
    fetch_count(fd, "intact", 1, 0, &err, NULL);
    assert_int_equal(err, STREAM_ENOPART);
    close(fd);
    assert_still_served();
}

static void test_unknown_topic_without_auto_create_is_enotopic(void **state)
{
    int fd = wire_connect(shared.port);
    stream_buf b = STREAM_BUF_INIT;
    uint64_t id = req_list_offsets(&b, "never-created", 0, STREAM_OFFSET_LATEST);
    wire_resp r;
    wire_call(fd, &b, id, &r);
    assert_int_equal(-wire_int(first_part(&r), "err"), STREAM_ENOTOPIC);
    wire_resp_release(&r);
    close(fd);
}

static void test_batch_with_bad_crc_is_refused_and_log_intact(void **state)
{
    int fd = wire_connect(shared.port);
    stream_batch_builder bb;
    stream_batch_builder_init(&bb);
    const uint8_t *p;
    size_t len;
    make_batch(&bb, "evil", 2, 1, &p, &len);
    uint8_t *bad = malloc(len);
    memcpy(bad, p, len);
    bad[len - 1] ^= 0xff; /* a record byte: the CRC no longer matches */
    assert_int_equal(produce(fd, "intact", 0, bad, len, 1, NULL), STREAM_ECRC);
    /* A good batch followed by a torn one: the partition takes neither. */
    stream_buf two = STREAM_BUF_INIT;
    stream_buf_put(&two, p, len);
    stream_buf_put(&two, p, len - 5);
    assert_int_equal(produce(fd, "intact", 0, two.data, two.len, 1, NULL), STREAM_ECORRUPT);
    /* Bytes that are no batch at all. */
    assert_int_equal(produce(fd, "intact", 0, "hello", 5, 1, NULL), STREAM_ECORRUPT);
    stream_buf_release(&two);
    free(bad);
    stream_batch_builder_release(&bb);
    close(fd);
    assert_still_served();
}

static void test_fetch_beyond_the_end_reports_the_range(void **state)
{
    int fd = wire_connect(shared.port);
    stream_buf b = STREAM_BUF_INIT;
    uint64_t id = req_fetch(&b, "intact", 0, 1000, 0, 1);
    wire_resp r;
    wire_call(fd, &b, id, &r);
    const msgpack_object *p = first_part(&r);
    assert_int_equal(-wire_int(p, "err"), STREAM_EOFFSET);
    assert_int_equal(wire_int(p, "log_start_offset"), 0);
    assert_int_equal(wire_int(p, "high_watermark"), intact_records);
    wire_resp_release(&r);
    id = req_fetch(&b, "intact", 0, -5, 0, 1);
    wire_call(fd, &b, id, &r);
    assert_int_equal(-wire_int(first_part(&r), "err"), STREAM_EOFFSET);
    wire_resp_release(&r);
    close(fd);
    assert_still_served();
}

static void test_long_poll_completes_when_another_connection_produces(void **state)
{
    int a = wire_connect(shared.port);
    int b = wire_connect(shared.port);
    stream_buf buf = STREAM_BUF_INIT;
    wire_resp r;
    uint64_t id = req_create(&buf, "poll", 1);
    wire_call(b, &buf, id, &r);
    wire_resp_release(&r);
    int64_t t0 = wire_now_ms();
    uint64_t fid = req_fetch(&buf, "poll", 0, 0, 8000, 1);
    wire_send_frame(a, &buf);
    usleep(200000);
    stream_batch_builder bb;
    stream_batch_builder_init(&bb);
    const uint8_t *p;
    size_t len;
    make_batch(&bb, "wake", 1, 1, &p, &len);
    assert_int_equal(produce(b, "poll", 0, p, len, 1, NULL), 0);
    assert_true(wire_recv_resp(a, &r));
    int64_t waited = wire_now_ms() - t0;
    assert_int_equal(r.id, fid);
    const msgpack_object *pr = first_part(&r);
    const uint8_t *rec;
    size_t rlen;
    assert_int_equal(stream_field_bin(pr, "records", &rec, &rlen, NULL, 0), 0);
    assert_int_equal(rlen, len);
    assert_true(waited >= 150 && waited < 5000);
    wire_resp_release(&r);
    stream_batch_builder_release(&bb);
    close(a);
    close(b);
}

static void test_long_poll_times_out_empty(void **state)
{
    int fd = wire_connect(shared.port);
    stream_buf b = STREAM_BUF_INIT;
    int64_t t0 = wire_now_ms();
    uint64_t id = req_fetch(&b, "intact", 0, intact_records, 300, 1);
    wire_resp r;
    wire_call(fd, &b, id, &r);
    int64_t waited = wire_now_ms() - t0;
    const msgpack_object *p = first_part(&r);
    assert_int_equal(wire_int(p, "err"), 0);
    const uint8_t *rec;
    size_t len;
    assert_int_equal(stream_field_bin(p, "records", &rec, &len, NULL, 0), 0);
    assert_int_equal(len, 0);
    assert_true(waited >= 280 && waited < 3000);
    wire_resp_release(&r);
    close(fd);
}

/* Deadlines are coalesced onto a grid of at most 4 % of the wait (20 ms for
 * 500 ms): several long polls are answered a little early, never more. */
static void test_long_polls_answered_at_most_4_percent_early(void **state)
{
    int fds[4];
    int64_t t0[4];
    uint64_t ids[4];
    for (int i = 0; i < 4; i++) {
        fds[i] = wire_connect(shared.port);
        stream_buf b = STREAM_BUF_INIT;
        ids[i] = req_fetch(&b, "intact", 0, intact_records, 500, 1);
        t0[i] = wire_now_ms();
        wire_send_frame(fds[i], &b);
        usleep(7000); /* a different place on the grid each */
    }
    for (int i = 0; i < 4; i++) {
        wire_resp r;
        assert_true(wire_recv_resp(fds[i], &r));
        int64_t waited = wire_now_ms() - t0[i];
        assert_int_equal(r.id, ids[i]);
        assert_true(waited >= 480);
        assert_true(waited < 5000);
        wire_resp_release(&r);
        close(fds[i]);
    }
}

static void test_closing_with_a_parked_fetch_is_harmless(void **state)
{
    int fd = wire_connect(shared.port);
    stream_buf b = STREAM_BUF_INIT;
    req_fetch(&b, "intact", 0, intact_records, 5000, 1);
    wire_send_frame(fd, &b);
    usleep(50000);
    close(fd);
    usleep(50000);
    assert_still_served();
}

static void test_sigterm_exits_zero_and_restart_is_clean(void **state)
{
    wire_broker br = {0};
    wire_broker_start(&br, "test_broker", NULL);
    int fd = wire_connect(br.port);
    stream_batch_builder bb;
    stream_batch_builder_init(&bb);
    const uint8_t *p;
    size_t len;
    make_batch(&bb, "keep", 4, 1, &p, &len);
    /* Auto-created on produce. */
    assert_int_equal(produce(fd, "kept", 0, p, len, -1, NULL), 0);
    stream_batch_builder_release(&bb);
    /* A long poll in flight is answered (empty) by the shutdown. */
    stream_buf b = STREAM_BUF_INIT;
    uint64_t id = req_fetch(&b, "kept", 0, 4, 30000, 1);
    wire_send_frame(fd, &b);
    usleep(100000);
    int64_t t0 = wire_now_ms();
    kill(br.pid, SIGTERM);
    wire_resp r;
    assert_true(wire_recv_resp(fd, &r));
    assert_int_equal(r.id, id);
    wire_resp_release(&r);
    assert_true(wire_closed_by_broker(fd));
    close(fd);
    int st = wire_broker_stop(&br);
    assert_int_equal(st, 0);
    assert_true(wire_now_ms() - t0 < 5000);
    assert_true(wire_log_contains(&br, "shut down cleanly"));

    wire_broker_start(&br, "test_broker", NULL);
    assert_true(wire_log_contains(&br, "no recovery scan"));
    fd = wire_connect(br.port);
    int err;
    assert_int_equal(fetch_count(fd, "kept", 0, 0, &err, NULL), 4);
    close(fd);
    assert_int_equal(wire_broker_stop(&br), 0);
    wire_rm_rf(br.dir);
}

static void test_max_connections_refuses_extra_clients(void **state)
{
    wire_broker br = {0};
    const char *sets[] = {"max.connections=2", NULL};
    wire_broker_start(&br, "test_broker", sets);
    int a = wire_connect(br.port);
    int b = wire_connect(br.port);
    int c = wire_conn_open(br.port);
    assert_true(wire_closed_by_broker(c));
    close(c);
    close(a);
    usleep(100000);
    int d = wire_connect(br.port); /* a slot is free again */
    close(d);
    close(b);
    assert_true(wire_log_contains(&br, "max.connections"));
    assert_int_equal(wire_broker_stop(&br), 0);
    wire_rm_rf(br.dir);
}

static void test_idle_connections_are_closed(void **state)
{
    wire_broker br = {0};
    const char *sets[] = {"connections.max.idle.ms=300", NULL};
    wire_broker_start(&br, "test_broker", sets);
    int fd = wire_connect(br.port);
    int64_t t0 = wire_now_ms();
    assert_true(wire_closed_by_broker(fd));
    assert_true(wire_now_ms() - t0 >= 250);
    close(fd);
    assert_int_equal(wire_broker_stop(&br), 0);
    wire_rm_rf(br.dir);
}

static void test_a_consumer_that_stops_reading_is_paused(void **state)
{
    /* With a small output limit, a client that pipelines many fetches and
     * reads nothing stops being read from; the broker stays responsive and
     * answers everything once the client reads again. */
    wire_broker br = {0};
    const char *sets[] = {"connection.max.output.bytes=65536", NULL};
    wire_broker_start(&br, "test_broker", sets);
    int fd = wire_connect(br.port);
    stream_batch_builder bb;
    stream_batch_builder_init(&bb);
    char big[16000];
    memset(big, 'v', sizeof(big));
    for (int i = 0; i < 8; i++)
        assert_int_equal(stream_batch_builder_append(&bb, 1, NULL, -1, big, sizeof(big), NULL, 0),
                         0);
    const uint8_t *p;
    size_t len;
    assert_int_equal(stream_batch_builder_finish(&bb, &p, &len), 0);
    assert_int_equal(produce(fd, "bulk", 0, p, len, 1, NULL), 0);
    stream_batch_builder_release(&bb);

    enum { N = 200 };
    stream_buf b = STREAM_BUF_INIT;
    uint64_t first = 0;
    for (int i = 0; i < N; i++) {
        uint64_t id = req_fetch(&b, "bulk", 0, 0, 0, 1);
        if (i == 0)
            first = id;
    }
    /* Non-blocking send: once paused, the broker stops draining our socket. */
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    size_t sent = 0;
    for (int spins = 0; sent < b.len && spins < 200; spins++) {
        ssize_t w = send(fd, b.data + sent, b.len - sent, MSG_NOSIGNAL);
        if (w > 0)
            sent += (size_t)w;
        else
            usleep(5000);
    }
    /* Another client is served meanwhile. */
    int other = wire_connect(br.port);
    stream_buf mb = STREAM_BUF_INIT;
    uint64_t mid = req_metadata(&mb);
    wire_resp r;
    wire_call(other, &mb, mid, &r);
    wire_resp_release(&r);
    close(other);
    /* 200 responses of 128 KiB do not fit in the socket buffers: the
     * broker had to stop reading from us. */
    usleep(200000);
    assert_true(wire_log_contains(&br, "pausing reads"));
    /* Now read everything, sending what is left as the broker resumes. */
    fcntl(fd, F_SETFL, fl);
    int got = 0;
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (got < N) {
        if (sent < b.len) {
            fcntl(fd, F_SETFL, fl | O_NONBLOCK);
            ssize_t w = send(fd, b.data + sent, b.len - sent, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
            fcntl(fd, F_SETFL, fl);
        }
        assert_true(wire_recv_resp(fd, &r));
        assert_int_equal(r.id, first + (uint64_t)got);
        wire_resp_release(&r);
        got++;
    }
    stream_buf_release(&b);
    close(fd);
    assert_int_equal(wire_broker_stop(&br), 0);
    wire_rm_rf(br.dir);
}

static void test_responses_held_behind_a_long_poll_count_toward_the_limit(void **state)
{
    /* A long poll at the head of the queue holds back every later response;
     * those finished responses count toward connection.max.output.bytes, so
     * the broker stops reading instead of piling them up. */
    wire_broker br = {0};
    const char *sets[] = {"connection.max.output.bytes=65536", NULL};
    wire_broker_start(&br, "test_broker", sets);
    int fd = wire_connect(br.port);
    stream_batch_builder bb;
    stream_batch_builder_init(&bb);
    static char big[30000];
    memset(big, 'h', sizeof(big));
    assert_int_equal(stream_batch_builder_append(&bb, 1, NULL, -1, big, sizeof(big), NULL, 0), 0);
    const uint8_t *p;
    size_t len;
    assert_int_equal(stream_batch_builder_finish(&bb, &p, &len), 0);
    assert_int_equal(produce(fd, "held", 0, p, len, 1, NULL), 0);
    stream_batch_builder_release(&bb);
    stream_buf b = STREAM_BUF_INIT;
    uint64_t first = req_fetch(&b, "held", 0, 1, 1000, 1); /* waits at the end */
    for (int i = 0; i < 10; i++)
        req_fetch(&b, "held", 0, 0, 0, 1);
    wire_send_frame(fd, &b);
    usleep(300000);
    assert_true(wire_log_contains(&br, "pausing reads"));
    for (int i = 0; i < 11; i++) {
        wire_resp r;
        assert_true(wire_recv_resp(fd, &r));
        assert_int_equal(r.id, first + (uint64_t)i);
        wire_resp_release(&r);
    }
    close(fd);
    assert_int_equal(wire_broker_stop(&br), 0);
    wire_rm_rf(br.dir);
}

/* The err of topics[0] in an admin response. */
static int topic_err(const wire_resp *r)
{
    const msgpack_object *topics, *t;
    assert_int_equal(stream_field_array(&r->msg.root, "topics", &topics, NULL, 0), 0);
    assert_int_equal(stream_elem_map(topics, 0, "topics", &t, NULL, 0), 0);
    return -(int)wire_int(t, "err");
}

static void test_create_topics_checks_each_topic(void **state)
{
    int fd = wire_connect(shared.port);
    stream_buf b = STREAM_BUF_INIT;
    wire_resp r;
    uint64_t id = req_create(&b, "zero-parts", 0);
    wire_call(fd, &b, id, &r);
    assert_int_equal(topic_err(&r), STREAM_EINVAL);
    wire_resp_release(&r);

    /* validate_only creates nothing; the same name twice fails both. */
    stream_frame f;
    stream_frame_start(&f, &b);
    id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_CREATE_TOPICS, id, 2);
    stream_pack_kv_bool(&f.pk, "validate_only", true);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 3);
    msgpack_pack_map(&f.pk, 1);
    stream_pack_kv_cstr(&f.pk, "name", "only-checked");
    msgpack_pack_map(&f.pk, 1);
    stream_pack_kv_cstr(&f.pk, "name", "dup");
    msgpack_pack_map(&f.pk, 1);
    stream_pack_kv_cstr(&f.pk, "name", "dup");
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_call(fd, &b, id, &r);
    const msgpack_object *topics, *t;
    stream_field_array(&r.msg.root, "topics", &topics, NULL, 0);
    assert_int_equal(topics->via.array.size, 3);
    stream_elem_map(topics, 0, "topics", &t, NULL, 0);
    assert_int_equal(wire_int(t, "err"), 0);
    stream_elem_map(topics, 1, "topics", &t, NULL, 0);
    assert_int_equal(-wire_int(t, "err"), STREAM_EINVAL);
    stream_elem_map(topics, 2, "topics", &t, NULL, 0);
    assert_int_equal(-wire_int(t, "err"), STREAM_EINVAL);
    wire_resp_release(&r);
    id = req_list_offsets(&b, "only-checked", 0, STREAM_OFFSET_LATEST);
    wire_call(fd, &b, id, &r);
    assert_int_equal(-wire_int(first_part(&r), "err"), STREAM_ENOTOPIC);
    wire_resp_release(&r);

    /* A bad setting is EBADCONFIG for that topic. */
    stream_frame_start(&f, &b);
    id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_CREATE_TOPICS, id, 1);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_cstr(&f.pk, "name", "badcfg");
    stream_pack_key(&f.pk, "configs");
    msgpack_pack_map(&f.pk, 1);
    stream_pack_cstr(&f.pk, "retention.ms");
    stream_pack_cstr(&f.pk, "soon");
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_call(fd, &b, id, &r);
    assert_int_equal(topic_err(&r), STREAM_EBADCONFIG);
    wire_resp_release(&r);
    close(fd);
}

static void test_describe_and_alter_configs(void **state)
{
    int fd = wire_connect(shared.port);
    stream_buf b = STREAM_BUF_INIT;
    wire_resp r;
    uint64_t id = req_create(&b, "cfg", 1);
    wire_call(fd, &b, id, &r);
    wire_resp_release(&r);
    stream_frame f;
    stream_frame_start(&f, &b);
    id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_ALTER_CONFIGS, id, 1);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 2);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_cstr(&f.pk, "name", "cfg");
    stream_pack_key(&f.pk, "set");
    msgpack_pack_map(&f.pk, 1);
    stream_pack_cstr(&f.pk, "retention.ms");
    stream_pack_cstr(&f.pk, "86400000");
    msgpack_pack_map(&f.pk, 1);
    stream_pack_kv_cstr(&f.pk, "name", "no-such-topic");
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_call(fd, &b, id, &r);
    const msgpack_object *topics, *t;
    stream_field_array(&r.msg.root, "topics", &topics, NULL, 0);
    stream_elem_map(topics, 0, "topics", &t, NULL, 0);
    assert_int_equal(wire_int(t, "err"), 0);
    stream_elem_map(topics, 1, "topics", &t, NULL, 0);
    assert_int_equal(-wire_int(t, "err"), STREAM_ENOTOPIC);
    wire_resp_release(&r);

    stream_frame_start(&f, &b);
    id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_DESCRIBE_CONFIGS, id, 1);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 1);
    stream_pack_cstr(&f.pk, "cfg");
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_call(fd, &b, id, &r);
    stream_field_array(&r.msg.root, "topics", &topics, NULL, 0);
    stream_elem_map(topics, 0, "topics", &t, NULL, 0);
    const msgpack_object *configs, *e;
    assert_int_equal(stream_field_array(t, "configs", &configs, NULL, 0), 0);
    assert_true(configs->via.array.size > 3);
    char prev[128] = "";
    bool seen = false;
    for (uint32_t i = 0; i < configs->via.array.size; i++) {
        const char *name, *value, *source;
        size_t nl, vl, sl;
        stream_elem_map(configs, i, "configs", &e, NULL, 0);
        assert_int_equal(stream_field_str(e, "name", &name, &nl, NULL, 0), 0);
        assert_int_equal(stream_field_str(e, "value", &value, &vl, NULL, 0), 0);
        assert_int_equal(stream_field_str(e, "source", &source, &sl, NULL, 0), 0);
        char cur[128];
        snprintf(cur, sizeof(cur), "%.*s", (int)nl, name);
        assert_true(strcmp(prev, cur) < 0); /* sorted by name */
        snprintf(prev, sizeof(prev), "%s", cur);
        if (strcmp(cur, "retention.ms") == 0) {
            seen = true;
            assert_true(stream_str_eq(value, vl, "86400000"));
            assert_true(stream_str_eq(source, sl, "topic"));
        }
    }
    assert_true(seen);
    wire_resp_release(&r);
    close(fd);
}

static void test_fetch_never_creates_topics(void **state)
{
    int fd = wire_connect(shared.port);
    int err;
    fetch_count(fd, "not-created-by-fetch", 0, 0, &err, NULL);
    assert_int_equal(err, STREAM_ENOTOPIC);
    fetch_count(fd, "not-created-by-fetch", 0, 0, &err, NULL);
    assert_int_equal(err, STREAM_ENOTOPIC);
    stream_buf b = STREAM_BUF_INIT;
    uint64_t id = req_list_offsets(&b, "intact", 0, -3);
    wire_resp r;
    wire_call(fd, &b, id, &r);
    assert_int_equal(-wire_int(first_part(&r), "err"), STREAM_EINVAL);
    wire_resp_release(&r);
    close(fd);
}

static void test_delete_answers_waiting_fetches_with_enotopic(void **state)
{
    int a = wire_connect(shared.port);
    int b = wire_connect(shared.port);
    stream_buf buf = STREAM_BUF_INIT;
    wire_resp r;
    uint64_t id = req_create(&buf, "doomed", 1);
    wire_call(b, &buf, id, &r);
    wire_resp_release(&r);
    uint64_t fid = req_fetch(&buf, "doomed", 0, 0, 10000, 1);
    wire_send_frame(a, &buf);
    usleep(100000);
    stream_frame f;
    stream_frame_start(&f, &buf);
    id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_DELETE_TOPICS, id, 1);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 2);
    stream_pack_cstr(&f.pk, "doomed");
    stream_pack_cstr(&f.pk, "doomed-never-was");
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_call(b, &buf, id, &r);
    const msgpack_object *topics, *t;
    stream_field_array(&r.msg.root, "topics", &topics, NULL, 0);
    stream_elem_map(topics, 0, "topics", &t, NULL, 0);
    assert_int_equal(wire_int(t, "err"), 0);
    stream_elem_map(topics, 1, "topics", &t, NULL, 0);
    assert_int_equal(-wire_int(t, "err"), STREAM_ENOTOPIC);
    wire_resp_release(&r);
    assert_true(wire_recv_resp(a, &r));
    assert_int_equal(r.id, fid);
    assert_int_equal(-wire_int(first_part(&r), "err"), STREAM_ENOTOPIC);
    wire_resp_release(&r);
    close(a);
    close(b);
    assert_still_served();
}

/* init_producer_id, and the sequence rules on the wire: a resent batch is
 * answered with its first offsets and not stored again, a gap is
 * EOUTOFORDERSEQ, an idempotent batch must come alone. */
static uint64_t req_init_producer_id(stream_buf *b)
{
    stream_frame f;
    stream_frame_start(&f, b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_INIT_PRODUCER_ID, id, 0);
    assert_int_equal(stream_frame_finish(&f), 0);
    return id;
}

static void idempotent_batch(stream_batch_builder *bb, int64_t pid, int32_t seq, int n,
                             const uint8_t **p, size_t *len)
{
    stream_batch_builder_reset(bb);
    for (int i = 0; i < n; i++) {
        char v[32];
        int vl = snprintf(v, sizeof(v), "idem-%d", seq + i);
        assert_int_equal(stream_batch_builder_append(bb, 1, NULL, -1, v, vl, NULL, 0), 0);
    }
    assert_int_equal(stream_batch_builder_set_producer(bb, pid, 0, seq), 0);
    assert_int_equal(stream_batch_builder_finish(bb, p, len), 0);
}

static void test_idempotent_produce_on_the_wire(void **state)
{
    int fd = wire_connect(shared.port);
    int64_t pid[2];
    for (int i = 0; i < 2; i++) {
        stream_buf b = STREAM_BUF_INIT;
        uint64_t id = req_init_producer_id(&b);
        wire_resp r;
        wire_call(fd, &b, id, &r);
        assert_int_equal(r.err, 0);
        pid[i] = wire_int(&r.msg.root, "producer_id");
        assert_true(pid[i] >= 0);
        assert_int_equal(wire_int(&r.msg.root, "producer_epoch"), 0);
        wire_resp_release(&r);
        stream_buf_release(&b);
    }
    assert_true(pid[0] != pid[1]);

    stream_batch_builder bb;
    stream_batch_builder_init(&bb);
    const uint8_t *p;
    size_t len;
    int64_t base, again;
    idempotent_batch(&bb, pid[0], 0, 3, &p, &len);
    uint8_t *first = malloc(len);
    memcpy(first, p, len);
    assert_int_equal(produce(fd, "idem", 0, first, len, -1, &base), 0);
    memcpy(first, p, len); /* the broker stamped its copy's offset */
    assert_int_equal(produce(fd, "idem", 0, first, len, -1, &again), 0);
    assert_int_equal(again, base);
    int err;
    assert_int_equal(fetch_count(fd, "idem", 0, 0, &err, NULL), 3);
    /* A gap: sequence 3 is missing. */
    idempotent_batch(&bb, pid[0], 4, 1, &p, &len);
    assert_int_equal(produce(fd, "idem", 0, p, len, 1, NULL), STREAM_EOUTOFORDERSEQ);
    /* Another producer id: unknown here unless it starts at 0. */
    idempotent_batch(&bb, pid[1], 7, 1, &p, &len);
    assert_int_equal(produce(fd, "idem", 0, p, len, 1, NULL), STREAM_EUNKNOWNPRODUCER);
    /* An idempotent batch shares its partition's records with no other. */
    idempotent_batch(&bb, pid[0], 3, 1, &p, &len);
    stream_buf two = STREAM_BUF_INIT;
    stream_buf_put(&two, p, len);
    stream_buf_put(&two, p, len);
    assert_int_equal(produce(fd, "idem", 0, two.data, two.len, 1, NULL), STREAM_EBADREQ);
    assert_int_equal(produce(fd, "idem", 0, p, len, 1, &base), 0);
    assert_int_equal(base, 3);
    assert_int_equal(fetch_count(fd, "idem", 0, 0, &err, NULL), 4);
    stream_buf_release(&two);
    free(first);
    stream_batch_builder_release(&bb);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_answers_with_version),
        cmocka_unit_test(test_hello_with_version_zero_is_refused_and_closed),
        cmocka_unit_test(test_create_produce_fetch_list_offsets_round_trip),
        cmocka_unit_test(test_pipelined_requests_answered_in_order),
        cmocka_unit_test(test_produce_timing_accounts_for_the_wait),
        cmocka_unit_test(test_acks_zero_produce_is_not_answered),
        cmocka_unit_test(test_garbage_bytes_close_that_connection_only),
        cmocka_unit_test(test_truncated_frame_then_close),
        cmocka_unit_test(test_frame_over_the_limit_is_refused),
        cmocka_unit_test(test_zero_length_frame_is_refused),
        cmocka_unit_test(test_non_map_frame_is_refused),
        cmocka_unit_test(test_trailing_bytes_are_refused),
        cmocka_unit_test(test_missing_id_closes),
        cmocka_unit_test(test_wrong_field_types_answer_ebadreq),
        cmocka_unit_test(test_unknown_op_answers_eunknownop),
        cmocka_unit_test(test_missing_hello_is_refused),
        cmocka_unit_test(test_invalid_topic_names_answer_ebadname),
        cmocka_unit_test(test_negative_and_unknown_partitions_answer_enopart),
        cmocka_unit_test(test_unknown_topic_without_auto_create_is_enotopic),
        cmocka_unit_test(test_batch_with_bad_crc_is_refused_and_log_intact),
        cmocka_unit_test(test_fetch_beyond_the_end_reports_the_range),
        cmocka_unit_test(test_long_poll_completes_when_another_connection_produces),
        cmocka_unit_test(test_long_poll_times_out_empty),
        cmocka_unit_test(test_long_polls_answered_at_most_4_percent_early),
        cmocka_unit_test(test_closing_with_a_parked_fetch_is_harmless),
        cmocka_unit_test(test_create_topics_checks_each_topic),
        cmocka_unit_test(test_describe_and_alter_configs),
        cmocka_unit_test(test_fetch_never_creates_topics),
        cmocka_unit_test(test_delete_answers_waiting_fetches_with_enotopic),
        cmocka_unit_test(test_sigterm_exits_zero_and_restart_is_clean),
        cmocka_unit_test(test_max_connections_refuses_extra_clients),
        cmocka_unit_test(test_idle_connections_are_closed),
        cmocka_unit_test(test_a_consumer_that_stops_reading_is_paused),
        cmocka_unit_test(test_responses_held_behind_a_long_poll_count_toward_the_limit),
        cmocka_unit_test(test_idempotent_produce_on_the_wire),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
