/*
 * test_broker_metrics.c - the stats op (libstream/broker/broker_metrics.c,
 * protocol.md 6.29) against a real stream-broker over its socket: its
 * figures match what the test did (records and bytes produced, a group's
 * committed offset and lag, requests counted, connections open), and a
 * connection of an older protocol version gets EUNKNOWNOP.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wire.h"

static wire_broker shared;

static int group_setup(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    wire_broker_start(&shared, "test_broker_metrics", NULL);
    return 0;
}

static int group_teardown(void **state)
{
    int st = wire_broker_stop(&shared);
    wire_rm_rf(shared.dir);
    return st == 0 ? 0 : -1;
}

/* The entry of array `key` of m whose str field `field` is `value`. */
static const msgpack_object *find(const msgpack_object *m, const char *key, const char *field,
                                  const char *value)
{
    const msgpack_object *a = wire_array(m, key);
    for (uint32_t i = 0; i < a->via.array.size; i++) {
        char buf[300];
        if (strcmp(wire_str(wire_elem(a, i), field, buf, sizeof(buf)), value) == 0)
            return wire_elem(a, i);
    }
    fail_msg("no %s entry with %s '%s'", key, field, value);
    return NULL;
}

static void test_stats_counts_what_was_produced_and_committed(void **state)
{
    int fd = wire_connect(shared.port);
    assert_int_equal(wire_create_topic(fd, "st", 2), 0);
    int64_t base = wire_produce(fd, "st", 1, 30, 1700000000000);
    assert_int_equal(base, 0);
    /* A group commits offset 10 of partition 1: 20 records behind. */
    stream_buf b = STREAM_BUF_INIT;
    stream_frame f;
    stream_frame_start(&f, &b);
    uint64_t id = wire_id();
    stream_pack_request_header(&f.pk, STREAM_OP_COMMIT_OFFSETS, id, 2);
    stream_pack_kv_cstr(&f.pk, "group", "sg");
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_cstr(&f.pk, "name", "st");
    stream_pack_key(&f.pk, "partitions");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 2);
    stream_pack_kv_int(&f.pk, "partition", 1);
    stream_pack_kv_int(&f.pk, "offset", 10);
    assert_int_equal(stream_frame_finish(&f), 0);
    wire_resp r;
    wire_call(fd, &b, id, &r);
    assert_int_equal(r.err, 0);
    wire_resp_release(&r);

    wire_call_op(fd, STREAM_OP_STATS, &r);
    assert_int_equal(r.err, 0);
    const msgpack_object *t = find(&r.msg.root, "topics", "name", "st");
    assert_int_equal(wire_int(t, "records_in"), 30);
    assert_true(wire_int(t, "bytes_in") > 30);
    const msgpack_object *parts = wire_array(t, "partitions");
    assert_int_equal(parts->via.array.size, 2);
    const msgpack_object *p1 = wire_elem(parts, 1);
    assert_int_equal(wire_int(p1, "partition"), 1);
    assert_int_equal(wire_int(p1, "log_end_offset"), 30);
    assert_int_equal(wire_int(p1, "log_start_offset"), 0);
    assert_int_equal(wire_int(p1, "size_bytes"), wire_int(t, "bytes_in"));
    assert_int_equal(wire_int(wire_elem(parts, 0), "log_end_offset"), 0);
    const msgpack_object *rq = find(&r.msg.root, "requests", "op", "produce");
    assert_int_equal(wire_int(rq, "count"), 1);
    assert_int_equal(wire_int(rq, "errors"), 0);
    assert_true(wire_int(find(&r.msg.root, "connections", "listener", "native"), "count") >= 1);
    assert_true(wire_int(&r.msg.root, "resident_memory_bytes") > 0);
    assert_true(wire_int(&r.msg.root, "open_fds") > 0);
    assert_true(wire_int(&r.msg.root, "time_ms") > 1700000000000);
    const msgpack_object *g = find(&r.msg.root, "groups", "group", "sg");
    assert_int_equal(wire_int(g, "members"), 0);
    const msgpack_object *gp = wire_elem(wire_array(g, "partitions"), 0);
    assert_int_equal(wire_int(gp, "partition"), 1);
    assert_int_equal(wire_int(gp, "lag_records"), 20);
    const msgpack_object *secs = stream_field_find(gp, "lag_seconds");
    assert_non_null(secs);
    assert_int_equal(secs->type, MSGPACK_OBJECT_FLOAT64);
    assert_true(secs->via.f64 > 0); /* records stamped in 2023 */
    wire_resp_release(&r);
    close(fd);
}

static void test_stats_is_unknown_before_version_4(void **state)
{
    int fd = wire_connect_version(shared.port, 3);
    wire_resp r;
    wire_call_op(fd, STREAM_OP_STATS, &r);
    assert_int_equal(r.err, STREAM_EUNKNOWNOP);
    wire_resp_release(&r);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_counts_what_was_produced_and_committed),
        cmocka_unit_test(test_stats_is_unknown_before_version_4),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
