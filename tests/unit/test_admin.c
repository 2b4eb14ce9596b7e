/*
 * test_admin.c - the admin calls (libstream/client/admin.c) against a real
 * stream-broker process: create, describe, alter and delete topics, and
 * what each says per topic when one of several fails; the stats call
 * (admin_stats.c) against what the test produced and committed, and its
 * decoder on hand-made answers, good and broken.
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

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream/client.h"
#include "client_kit.h"
#include "stream/error.h"
#include "wire.h"

/* ---- a broker process per test ------------------------------------------- */

typedef client_fixture fixture;

static int setup(void **state)
{
    return client_fixture_setup(state, "test_admin", NULL);
}

static int teardown(void **state)
{
    return client_fixture_teardown(state);
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

/* ---- stats ---------------------------------------------------------------- */

static const stream_stats_topic *stats_topic(const stream_stats *s, const char *name)
{
    for (size_t i = 0; i < s->n_topics; i++)
        if (strcmp(s->topics[i].name, name) == 0)
            return &s->topics[i];
    fail_msg("no topic '%s' in stats", name);
    return NULL;
}

static void test_admin_stats_counts_produce_and_lag(void **state)
{
    fixture *f = *state;
    stream_client *c = f->c;
    char eb[256] = "";
    create_topic(c, "sta", 2);
    reports r;
    reports_init(&r, 25);
    produce_n(f, "sta", -1, STREAM_CODEC_NONE, 25, &r);
    reports_release(&r);
    /* Group "sg" commits offset 5 of partition 0: 20 records behind. */
    stream_group_reset_topic rt = {.topic = "sta"};
    stream_group_reset req = {.group = "sg",
                              .topics = &rt,
                              .topic_count = 1,
                              .to = STREAM_GROUP_RESET_OFFSET,
                              .value = 5,
                              .execute = true};
    stream_group_reset_plan *plan;
    assert_int_equal(stream_admin_reset_offsets(c, &req, -1, &plan, eb, sizeof eb), 0);
    stream_group_reset_plan_free(plan);

    stream_stats *s;
    assert_int_equal(stream_admin_stats(c, -1, -1, &s, eb, sizeof eb), 0);
    assert_true(s->time_ms > 1700000000000ULL);
    assert_true(s->connections_native >= 1);
    assert_true(s->open_fds > 0);
    assert_true(s->resident_memory_bytes > 0);
    const stream_stats_topic *t = stats_topic(s, "sta");
    assert_int_equal(t->records_in, 25);
    assert_true(t->bytes_in > 25 * 7);
    assert_int_equal(t->n_partitions, 2);
    assert_int_equal(t->partitions[0].partition, 0);
    assert_int_equal(t->partitions[0].log_end_offset, 25);
    assert_int_equal(t->partitions[1].log_end_offset, 0);
    assert_true(t->partitions[0].size_bytes > 0);
    bool produce_seen = false;
    for (size_t i = 0; i < s->n_requests; i++)
        produce_seen |= strcmp(s->requests[i].op, "produce") == 0 && s->requests[i].count > 0;
    assert_true(produce_seen);
    const stream_stats_group *g = NULL;
    for (size_t i = 0; i < s->n_groups; i++)
        if (strcmp(s->groups[i].group, "sg") == 0)
            g = &s->groups[i];
    assert_non_null(g);
    assert_int_equal(g->members, 0);
    const stream_stats_lag *lag = NULL;
    for (size_t i = 0; i < g->n_partitions; i++)
        if (strcmp(g->partitions[i].topic, "sta") == 0 && g->partitions[i].partition == 0)
            lag = &g->partitions[i];
    assert_non_null(lag);
    assert_int_equal(lag->lag_records, 20);
    assert_true(lag->lag_seconds >= 0);
    stream_stats_free(s);
}

/* Packs a stats answer with one topic; `mode` breaks it: 1 drops the
 * required time_ms, 2 makes a partition's log_end_offset a str. */
static void pack_stats(stream_buf *b, int mode)
{
    stream_frame f;
    stream_frame_start(&f, b);
#define pk f.pk
    msgpack_pack_map(&pk, mode == 1 ? 5 : 6);
    stream_pack_kv_int(&pk, "node_id", 7);
    if (mode != 1)
        stream_pack_kv_uint(&pk, "time_ms", 1800000000000ULL);
    stream_pack_key(&pk, "topics");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 5);
    stream_pack_kv_cstr(&pk, "name", "t");
    stream_pack_kv_uint(&pk, "records_in", 3);
    stream_pack_kv_uint(&pk, "bytes_in", 300);
    stream_pack_kv_uint(&pk, "bytes_out", 600);
    stream_pack_key(&pk, "partitions");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 5);
    stream_pack_kv_int(&pk, "partition", 0);
    stream_pack_kv_int(&pk, "size_bytes", 300);
    stream_pack_kv_int(&pk, "segments", 1);
    stream_pack_kv_int(&pk, "log_start_offset", 0);
    if (mode == 2)
        stream_pack_kv_cstr(&pk, "log_end_offset", "3");
    else
        stream_pack_kv_int(&pk, "log_end_offset", 3);
    stream_pack_key(&pk, "connections");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_map(&pk, 2);
    stream_pack_kv_cstr(&pk, "listener", "native");
    stream_pack_kv_uint(&pk, "count", 4);
    msgpack_pack_map(&pk, 2);
    stream_pack_kv_cstr(&pk, "listener", "kafka");
    stream_pack_kv_uint(&pk, "count", 2);
    stream_pack_kv_uint(&pk, "open_fds", 12);
    stream_pack_key(&pk, "groups");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 4);
    stream_pack_kv_cstr(&pk, "group", "g");
    stream_pack_kv_uint(&pk, "members", 2);
    stream_pack_kv_int(&pk, "generation", 9);
    stream_pack_key(&pk, "partitions");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 4);
    stream_pack_kv_cstr(&pk, "topic", "t");
    stream_pack_kv_int(&pk, "partition", 0);
    stream_pack_kv_int(&pk, "lag_records", 2);
    stream_pack_key(&pk, "lag_seconds");
    msgpack_pack_double(&pk, 1.5);
#undef pk
    assert_int_equal(stream_frame_finish(&f), 0);
}

/* The answer's body: the frame's bytes after its 4-byte length. */
#define BODY(b) ((b).data + 4), ((b).len - 4)

static void test_stats_decode(void **state)
{
    (void)state;
    char eb[256] = "";
    stream_buf b = STREAM_BUF_INIT;
    stream_stats *s;
    pack_stats(&b, 0);
    assert_int_equal(stream_stats_decode(BODY(b), &s, eb, sizeof eb), 0);
    assert_int_equal(s->node_id, 7);
    assert_int_equal(s->time_ms, 1800000000000ULL);
    assert_int_equal(s->n_topics, 1);
    assert_string_equal(s->topics[0].name, "t");
    assert_int_equal(s->topics[0].bytes_out, 600);
    assert_int_equal(s->topics[0].partitions[0].log_end_offset, 3);
    assert_int_equal(s->connections_native, 4);
    assert_int_equal(s->connections_other, 2);
    assert_int_equal(s->open_fds, 12);
    assert_int_equal(s->resident_memory_bytes, 0); /* absent: 0 */
    assert_int_equal(s->n_requests, 0);            /* absent: none */
    assert_int_equal(s->n_groups, 1);
    assert_int_equal(s->groups[0].generation, 9);
    assert_int_equal(s->groups[0].partitions[0].lag_records, 2);
    assert_true(s->groups[0].partitions[0].lag_seconds == 1.5);
    stream_stats_free(s);

    /* Every truncation of a good answer is refused, and leaks nothing. */
    for (size_t len = 0; len < b.len - 4; len++) {
        s = (stream_stats *)1;
        assert_int_equal(stream_stats_decode(b.data + 4, len, &s, eb, sizeof eb), STREAM_EPROTO);
        assert_null(s);
    }
    stream_buf_reset(&b);
    pack_stats(&b, 1);
    assert_int_equal(stream_stats_decode(BODY(b), &s, eb, sizeof eb), STREAM_EBADREQ);
    assert_null(s);
    assert_non_null(strstr(eb, "time_ms"));
    stream_buf_reset(&b);
    pack_stats(&b, 2);
    assert_int_equal(stream_stats_decode(BODY(b), &s, eb, sizeof eb), STREAM_EBADREQ);
    assert_null(s);
    assert_non_null(strstr(eb, "log_end_offset"));
    stream_buf_release(&b);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_admin_create_describe_alter_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_stats_counts_produce_and_lag, setup, teardown),
        cmocka_unit_test(test_stats_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
