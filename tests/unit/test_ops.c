/*
 * test_ops.c - the operations the programs and stream-shell share
 * (libstream/tools/ops.c, ops_groups.c): statuses, messages, settings checks,
 * and the tables and JSON of offsets and consumer groups. The operations
 * that need a broker are tested through the programs (tests/cli).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "stream/error.h"
#include "stream/ops.h"

static const char *text_of(stream_buf *b)
{
    stream_buf_put_u8(b, 0);
    b->len--;
    return (const char *)b->data;
}

static void test_status_says_all_failed_the_same_way_or_not(void **state)
{
    stream_admin_outcome ok = {.topic = "a", .status = "created"};
    stream_admin_outcome nf = {.topic = "b", .status = "failed", .err = STREAM_ENOTOPIC};
    stream_admin_outcome ex = {.topic = "c", .status = "failed", .err = STREAM_ETOPICEXISTS};
    stream_admin_outcome bad = {.topic = "d d", .status = "failed", .err = STREAM_EBADNAME};
    stream_admin_outcome o1[] = {ok, ok};
    assert_int_equal(stream_ops_status(o1, 2, 2), STREAM_STATUS_OK);
    stream_admin_outcome o2[] = {nf, nf};
    assert_int_equal(stream_ops_status(o2, 2, 2), STREAM_STATUS_NOTFOUND);
    stream_admin_outcome o3[] = {ex};
    assert_int_equal(stream_ops_status(o3, 1, 1), STREAM_STATUS_EXISTS);
    stream_admin_outcome o4[] = {ok, nf};
    assert_int_equal(stream_ops_status(o4, 2, 2), STREAM_STATUS_FAIL);
    stream_admin_outcome o5[] = {nf, ex};
    assert_int_equal(stream_ops_status(o5, 2, 2), STREAM_STATUS_FAIL);
    /* describe: the errors only, of more topics named. */
    assert_int_equal(stream_ops_status(o2, 2, 3), STREAM_STATUS_FAIL);
    stream_admin_outcome o6[] = {bad};
    assert_int_equal(stream_ops_status(o6, 1, 1), STREAM_STATUS_FAIL);
}

static void test_messages_name_the_topic_and_a_helpful_cause(void **state)
{
    char line[512];
    stream_admin_outcome bad = {.topic = "x\ny", .status = "failed", .err = STREAM_EBADNAME};
    assert_string_equal(stream_ops_failure_line(&bad, "create", line, sizeof(line)),
                        "cannot create topic 'x?y': invalid topic name (allowed: [a-zA-Z0-9._-], "
                        "1-249 characters)");
    stream_admin_outcome other = {
        .topic = "t", .status = "failed", .err = STREAM_EBADCONFIG, .msg = "retention.ms: no"};
    assert_string_equal(stream_ops_failure_line(&other, "alter", line, sizeof(line)),
                        "cannot alter topic 't': retention.ms: no");

    stream_admin_outcome o[] = {
        {.topic = "a", .status = "created"}, {.topic = "b", .status = "exists"},
        {.topic = "c", .status = "absent"},  {.topic = "d", .status = "failed", .err = -1},
        {.topic = "e", .status = "deleted"},
    };
    stream_buf b;
    stream_buf_init(&b);
    assert_int_equal(stream_ops_outcomes_text(&b, o, 5), 0);
    assert_string_equal(text_of(&b), "created topic 'a'\n"
                                     "topic 'b' exists already\n"
                                     "topic 'c' does not exist\n"
                                     "deleted topic 'e'\n");
    stream_buf_release(&b);
}

static void test_settings_are_checked_like_the_broker_does(void **state)
{
    char err[2048];
    stream_config_entry good[] = {{.name = "retention.ms", .value = "3600000"},
                                  {.name = "segment.bytes", .value = NULL}};
    assert_int_equal(stream_ops_check_settings(good, 2, err, sizeof(err)), 0);
    stream_config_entry unknown[] = {{.name = "retention.msx", .value = "1"}};
    assert_int_equal(stream_ops_check_settings(unknown, 1, err, sizeof(err)), STREAM_EBADCONFIG);
    assert_non_null(strstr(err, "retention.msx"));
    assert_non_null(strstr(err, "topic settings: segment.bytes, "));
    stream_config_entry broker_only[] = {{.name = "listen", .value = "x:1"}};
    assert_int_equal(stream_ops_check_settings(broker_only, 1, err, sizeof(err)),
                     STREAM_EBADCONFIG);
    stream_config_entry bad_value[] = {{.name = "retention.ms", .value = "soon"}};
    assert_int_equal(stream_ops_check_settings(bad_value, 1, err, sizeof(err)), STREAM_EBADCONFIG);
    assert_non_null(strstr(err, "retention.ms"));
    assert_int_equal(stream_ops_check_settings(NULL, 0, err, sizeof(err)), 0);
}

static void count_setting(void *arg, const char *name)
{
    (*(int *)arg)++;
    assert_true(strchr(name, '.') != NULL);
}

static void test_topic_settings_are_listed_for_completion(void **state)
{
    int n = 0;
    stream_ops_each_topic_setting(count_setting, &n);
    assert_true(n >= 9);
}

static void test_offsets_table_and_json(void **state)
{
    stream_ops_partition_offsets p[] = {
        {.partition = 0,
         .log_start_offset = 0,
         .high_watermark = 12,
         .time_offset = 10,
         .time_timestamp = 1764064800000},
        {.partition = 1,
         .log_start_offset = 5,
         .high_watermark = 5,
         .time_offset = 5,
         .time_timestamp = -1},
        {.partition = 2,
         .log_start_offset = -1,
         .high_watermark = -1,
         .time_offset = -1,
         .time_timestamp = -1,
         .err = STREAM_ENOTLEADER},
    };
    stream_ops_offsets o = {
        .topic = "t", .has_time = true, .time_ms = 1764064800000, .partitions = p, .count = 3};
    stream_buf b;
    stream_buf_init(&b);
    assert_int_equal(stream_ops_offsets_text(&b, &o), 0);
    assert_string_equal(
        text_of(&b),
        "PARTITION  LOG-START  HIGH-WATERMARK  RECORDS  OFFSET-AT-TIME  TIMESTAMP                 "
        "ERROR\n"
        "        0          0              12       12              10  2025-11-25T10:00:00.000Z\n"
        "        1          5               5        0               5  -\n"
        "        2          -               -        -               -  -                         "
        "not leader for partition\n");
    stream_buf_reset(&b);
    o.has_time = false;
    o.count = 1;
    assert_int_equal(stream_ops_offsets_json(&b, &o), 0);
    assert_string_equal(text_of(&b),
                        "{\"topic\":\"t\",\"time\":null,\"partitions\":[{\"partition\":0,"
                        "\"log_start_offset\":0,\"high_watermark\":12,\"records\":12,"
                        "\"offset_at_time\":10,\"timestamp\":1764064800000,\"error\":null}]}\n");
    stream_buf_release(&b);
}

/* ---- consumer groups ------------------------------------------------------------- */

static void test_groups_table_and_json(void **state)
{
    stream_group_listing g[] = {
        {.group = "audit", .state = "empty", .members = 0, .generation = 2},
        {.group = "billing", .state = "stable", .members = 3, .generation = 14},
    };
    stream_buf b;
    stream_buf_init(&b);
    assert_int_equal(stream_ops_groups_text(&b, g, 2), 0);
    assert_string_equal(text_of(&b), "GROUP    STATE   MEMBERS  GENERATION\n"
                                     "audit    empty         0           2\n"
                                     "billing  stable        3          14\n");
    stream_buf_reset(&b);
    assert_int_equal(stream_ops_groups_text(&b, g, 0), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(stream_ops_groups_json(&b, g, 1), 0);
    assert_string_equal(text_of(&b), "{\"groups\":[{\"group\":\"audit\",\"state\":\"empty\","
                                     "\"members\":0,\"generation\":2}]}\n");
    stream_buf_release(&b);
}

static void test_a_group_shows_members_offsets_and_lag_in_records_and_time(void **state)
{
    int32_t p01[] = {0, 1}, p2[] = {2};
    stream_topic_partitions a1[] = {{.topic = "orders", .partitions = p01, .count = 2}};
    stream_topic_partitions a2[] = {{.topic = "orders", .partitions = p2, .count = 1}};
    char *topics[] = {"orders"};
    stream_group_member m[] = {
        {.member_id = "m-1",
         .client_id = "stream-sub",
         .host = "127.0.0.1",
         .session_timeout_ms = 10000,
         .generation = 4,
         .topics = topics,
         .topic_count = 1,
         .assignment = a1,
         .assignment_count = 1,
         .target = a1,
         .target_count = 1},
        {.member_id = "m-2",
         .client_id = "stream-sub",
         .host = "127.0.0.1",
         .session_timeout_ms = 10000,
         .generation = 4,
         .topics = topics,
         .topic_count = 1,
         .pattern = "ord.*",
         .assignment = a2,
         .assignment_count = 1,
         .target = a2,
         .target_count = 1},
    };
    int64_t now = 1764064800000;
    stream_group_partition off[] = {
        {.topic = "orders",
         .partition = 0,
         .member_id = "m-1",
         .offset = 10,
         .metadata = "",
         .commit_timestamp = now - 1000,
         .log_start_offset = 0,
         .log_end_offset = 12,
         .lag = 2,
         .oldest_unconsumed_timestamp = now - 200000},
        {.topic = "orders",
         .partition = 1,
         .member_id = "m-1",
         .offset = 7,
         .metadata = "",
         .commit_timestamp = now - 1000,
         .log_start_offset = 0,
         .log_end_offset = 7,
         .lag = 0,
         .oldest_unconsumed_timestamp = -1},
        {.topic = "orders",
         .partition = 2,
         .member_id = "",
         .offset = -1,
         .metadata = "",
         .commit_timestamp = -1,
         .log_start_offset = 0,
         .log_end_offset = 3,
         .lag = -1,
         .oldest_unconsumed_timestamp = -1},
    };
    stream_group_description d = {.group = "billing",
                                  .state = "stable",
                                  .generation = 4,
                                  .members = m,
                                  .member_count = 2,
                                  .offsets = off,
                                  .offset_count = 3,
                                  .total_lag = 2,
                                  .oldest_unconsumed_timestamp = now - 200000};
    stream_buf b;
    stream_buf_init(&b);
    assert_int_equal(stream_ops_group_text(&b, &d, now), 0);
    assert_string_equal(text_of(&b),
                        "Group billing: stable, generation 4, 2 members, lag 2 records, oldest "
                        "unconsumed 3m20s old\n"
                        "\n"
                        "MEMBER  CLIENT      HOST       ASSIGNMENT\n"
                        "m-1     stream-sub  127.0.0.1  orders[0,1]\n"
                        "m-2     stream-sub  127.0.0.1  orders[2]\n"
                        "\n"
                        "TOPIC   PARTITION  MEMBER  COMMITTED  LOG-END  LAG  LAG-TIME\n"
                        "orders          0  m-1            10       12    2     3m20s\n"
                        "orders          1  m-1             7        7    0        0s\n"
                        "orders          2  -               -        3    -         -\n");
    stream_buf_reset(&b);
    d.member_count = 0;
    d.offset_count = 0;
    d.total_lag = 0;
    d.oldest_unconsumed_timestamp = -1;
    d.state = "empty";
    assert_int_equal(stream_ops_group_text(&b, &d, now), 0);
    assert_string_equal(text_of(&b), "Group billing: empty, generation 4, 0 members, lag 0 "
                                     "records\n\nNo members.\n\nNo committed offsets.\n");
    stream_buf_reset(&b);
    d.member_count = 2;
    d.offset_count = 1;
    assert_int_equal(stream_ops_group_json(&b, &d), 0);
    assert_string_equal(
        text_of(&b),
        "{\"group\":\"billing\",\"state\":\"empty\",\"generation\":4,\"total_lag\":0,"
        "\"oldest_unconsumed_timestamp\":null,\"members\":[{\"member_id\":\"m-1\","
        "\"client_id\":\"stream-sub\",\"host\":\"127.0.0.1\",\"session_timeout_ms\":10000,"
        "\"generation\":4,\"topics\":[\"orders\"],\"pattern\":null,\"assignment\":[{\"topic\":"
        "\"orders\",\"partitions\":[0,1]}],\"target\":[{\"topic\":\"orders\",\"partitions\":[0,1]}]"
        "},"
        "{\"member_id\":\"m-2\",\"client_id\":\"stream-sub\",\"host\":\"127.0.0.1\","
        "\"session_timeout_ms\":10000,\"generation\":4,\"topics\":[\"orders\"],\"pattern\":"
        "\"ord.*\",\"assignment\":[{\"topic\":\"orders\",\"partitions\":[2]}],\"target\":[{"
        "\"topic\":\"orders\",\"partitions\":[2]}]}],\"offsets\":[{\"topic\":\"orders\","
        "\"partition\":0,\"member_id\":\"m-1\",\"offset\":10,\"metadata\":\"\","
        "\"commit_timestamp\":1764064799000,\"log_start_offset\":0,\"log_end_offset\":12,"
        "\"lag\":2,\"oldest_unconsumed_timestamp\":1764064600000}]}\n");
    stream_buf_release(&b);
}

static void test_a_reset_plan_table_and_json(void **state)
{
    stream_group_reset_entry e[] = {
        {.topic = "orders", .partition = 0, .current = 10, .new_offset = 0},
        {.topic = "orders", .partition = 1, .current = -1, .new_offset = 0},
    };
    stream_group_reset_plan p = {.executed = false, .entries = e, .count = 2};
    stream_buf b;
    stream_buf_init(&b);
    assert_int_equal(stream_ops_reset_plan_text(&b, &p), 0);
    assert_string_equal(text_of(&b), "TOPIC   PARTITION  CURRENT  NEW\n"
                                     "orders          0       10    0\n"
                                     "orders          1        -    0\n");
    stream_buf_reset(&b);
    p.executed = true;
    p.count = 1;
    assert_int_equal(stream_ops_reset_plan_json(&b, "billing", &p), 0);
    assert_string_equal(text_of(&b), "{\"group\":\"billing\",\"executed\":true,\"partitions\":"
                                     "[{\"topic\":\"orders\",\"partition\":0,\"current\":10,"
                                     "\"new_offset\":0}]}\n");
    stream_buf_reset(&b);
    p.count = 0;
    assert_int_equal(stream_ops_reset_plan_text(&b, &p), 0);
    assert_string_equal(text_of(&b), "No partitions to reset.\n");
    stream_buf_release(&b);
}

static void test_group_results_json_says_what_happened_to_each(void **state)
{
    stream_group_result r[] = {
        {.group = "a", .err = 0, .msg = ""},
        {.group = "b", .err = STREAM_EGROUPNOTEMPTY, .msg = ""},
    };
    stream_buf b;
    stream_buf_init(&b);
    assert_int_equal(stream_ops_group_results_json(&b, r, 2, "deleted"), 0);
    assert_string_equal(text_of(&b),
                        "{\"results\":[{\"group\":\"a\",\"status\":\"deleted\",\"error\":null},"
                        "{\"group\":\"b\",\"status\":\"failed\",\"error\":{\"code\":"
                        "\"EGROUPNOTEMPTY\",\"message\":\"group has active members\"}}]}\n");
    stream_buf_release(&b);
}

/* The --topic arguments of a reset, as stream-topics and the shell's
 * `reset` both parse them: names checked, partition lists sorted and
 * deduplicated, errors naming the argument, nothing added on error, and
 * what items point to stays put as the list grows. */
static void test_reset_topics_parse_names_and_partitions(void **state)
{
    stream_ops_reset_topics t = {0};
    char err[256];
    assert_int_equal(stream_ops_reset_topics_add(&t, "orders", err, sizeof err), 0);
    assert_int_equal(stream_ops_reset_topics_add(&t, "t:2,0,2", err, sizeof err), 0);
    assert_int_equal(stream_ops_reset_topics_add(&t, "a.b-c_d:7", err, sizeof err), 0);
    static const struct {
        const char *arg;
        int rc;
    } bad[] = {
        {"t:", STREAM_EINVAL},           {"t:x", STREAM_EINVAL},        {"t:1,-1", STREAM_EINVAL},
        {"bad name:1", STREAM_EBADNAME}, {":1", STREAM_EBADNAME},       {"", STREAM_EBADNAME},
        {"..", STREAM_EBADNAME},         {"bad/name", STREAM_EBADNAME},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[64]; /* errbuf is "--topic ARG: why" */
        snprintf(want, sizeof want, "--topic %s: ", bad[i].arg);
        err[0] = '\0';
        int rc = stream_ops_reset_topics_add(&t, bad[i].arg, err, sizeof err);
        if (rc != bad[i].rc || strncmp(err, want, strlen(want)) != 0 || strlen(err) <= strlen(want))
            fail_msg("'%s': %s, '%s'", bad[i].arg, stream_err_name(rc), err);
        assert_int_equal(t.count, 3);
    }
    for (int i = 0; i < 20; i++) {
        char arg[32];
        snprintf(arg, sizeof arg, "x%d:%d", i, i);
        assert_int_equal(stream_ops_reset_topics_add(&t, arg, err, sizeof err), 0);
    }
    assert_int_equal(t.count, 23);
    assert_string_equal(t.items[0].topic, "orders");
    assert_null(t.items[0].partitions);
    assert_int_equal(t.items[0].partition_count, 0);
    assert_string_equal(t.items[1].topic, "t");
    assert_int_equal(t.items[1].partition_count, 2);
    assert_int_equal(t.items[1].partitions[0], 0);
    assert_int_equal(t.items[1].partitions[1], 2);
    assert_string_equal(t.items[2].topic, "a.b-c_d");
    assert_int_equal(t.items[2].partitions[0], 7);
    assert_string_equal(t.items[22].topic, "x19");
    assert_int_equal(t.items[22].partitions[0], 19);
    stream_ops_reset_topics_release(&t);
    assert_null(t.items);
    assert_int_equal(t.count, 0);
    stream_ops_reset_topics_release(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_says_all_failed_the_same_way_or_not),
        cmocka_unit_test(test_messages_name_the_topic_and_a_helpful_cause),
        cmocka_unit_test(test_settings_are_checked_like_the_broker_does),
        cmocka_unit_test(test_topic_settings_are_listed_for_completion),
        cmocka_unit_test(test_offsets_table_and_json),
        cmocka_unit_test(test_groups_table_and_json),
        cmocka_unit_test(test_a_group_shows_members_offsets_and_lag_in_records_and_time),
        cmocka_unit_test(test_a_reset_plan_table_and_json),
        cmocka_unit_test(test_group_results_json_says_what_happened_to_each),
        cmocka_unit_test(test_reset_topics_parse_names_and_partitions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
