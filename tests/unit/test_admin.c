/*
 * test_admin.c - the admin calls (libstream/client/admin.c) against a real
 * stream-broker process: create, describe, alter and delete topics, and
 * what each says per topic when one of several fails.
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

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_admin_create_describe_alter_delete, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
