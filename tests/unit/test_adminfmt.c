/*
 * test_adminfmt.c - admin results as tables and JSON (libstream/tools/adminfmt.c).
 *
 * The JSON is read back with our own parser (json.h), so every document is
 * checked to be well-formed as well as to carry the documented fields.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "stream/adminfmt.h"
#include "stream/error.h"
#include "stream/json.h"

typedef struct fixture {
    stream_partition_meta parts[2];
    int32_t replicas[3];
    stream_topic_meta topics[2];
    stream_metadata md;
    stream_config_entry entries[3];
    stream_topic_config config;
    stream_buf out;
    stream_json_doc doc;
} fixture;

static int setup(void **state)
{
    static fixture f;
    memset(&f, 0, sizeof(f));
    f.replicas[0] = 0, f.replicas[1] = 2, f.replicas[2] = 1;
    /* Designated initializers, so fields added to client.h later are zero. */
    f.parts[0] = (stream_partition_meta){.partition = 0,
                                         .leader = 0,
                                         .leader_epoch = 0,
                                         .log_start_offset = 0,
                                         .high_watermark = 1200,
                                         .size_bytes = 117000,
                                         .log_end_offset = 1200,
                                         .replicas = f.replicas,
                                         .replica_count = 3,
                                         .isr = f.replicas,
                                         .isr_count = 2};
    f.parts[1] = (stream_partition_meta){.partition = 1,
                                         .leader = -1,
                                         .leader_epoch = -1,
                                         .log_start_offset = 5,
                                         .high_watermark = 7,
                                         .size_bytes = -1,
                                         .log_end_offset = 9};
    f.topics[0] = (stream_topic_meta){.name = (char *)"__consumer_offsets", .internal = true};
    f.topics[1] =
        (stream_topic_meta){.name = (char *)"orders", .partition_count = 2, .partitions = f.parts};
    f.md = (stream_metadata){.topic_count = 2, .topics = f.topics};
    f.entries[0] = (stream_config_entry){
        .name = "cleanup.policy", .value = "delete", .is_default = true, .source = "default"};
    f.entries[1] = (stream_config_entry){
        .name = "retention.ms", .value = "3600000", .is_default = false, .source = "topic"};
    f.entries[2] = (stream_config_entry){
        .name = "segment.bytes", .value = "1048576", .is_default = true, .source = "broker"};
    f.config = (stream_topic_config){
        .topic = (char *)"orders", .msg = (char *)"", .entry_count = 3, .entries = f.entries};
    stream_buf_init(&f.out);
    stream_json_doc_init(&f.doc);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    stream_buf_release(&f->out);
    stream_json_doc_release(&f->doc);
    return 0;
}

/* Parses the output (which must end in exactly one newline). */
static const stream_json_value *parse(fixture *f)
{
    assert_true(f->out.len > 0);
    assert_int_equal(f->out.data[f->out.len - 1], '\n');
    assert_true(memchr(f->out.data, '\n', f->out.len - 1) == NULL);
    const stream_json_value *root;
    char err[256];
    assert_int_equal(
        stream_json_parse(&f->doc, (const char *)f->out.data, f->out.len, &root, err, sizeof(err)),
        0);
    assert_int_equal(root->type, STREAM_JSON_OBJECT);
    return root;
}

static const stream_json_value *get(const stream_json_value *v, const char *key,
                                    stream_json_type type)
{
    const stream_json_value *m = stream_json_object_get(v, key);
    assert_non_null(m);
    assert_int_equal(m->type, type);
    return m;
}

static void assert_str(const stream_json_value *v, const char *key, const char *want)
{
    const stream_json_value *m = get(v, key, STREAM_JSON_STRING);
    assert_int_equal(m->str.len, strlen(want));
    assert_memory_equal(m->str.p, want, m->str.len);
}

static const char *text(fixture *f)
{
    stream_buf_put_u8(&f->out, 0);
    return (const char *)f->out.data;
}

static void test_list_text_is_one_name_per_line(void **state)
{
    fixture *f = *state;
    assert_int_equal(stream_adminfmt_list_text(&f->out, &f->md, false), 0);
    assert_string_equal(text(f), "__consumer_offsets\norders\n");
}

static void test_list_columns_show_partitions_and_internal(void **state)
{
    fixture *f = *state;
    assert_int_equal(stream_adminfmt_list_text(&f->out, &f->md, true), 0);
    assert_string_equal(text(f), "NAME                PARTITIONS  INTERNAL\n"
                                 "__consumer_offsets           0  yes\n"
                                 "orders                       2  no\n");
}

static void test_list_json_has_the_documented_fields(void **state)
{
    fixture *f = *state;
    assert_int_equal(stream_adminfmt_list_json(&f->out, &f->md), 0);
    const stream_json_value *topics = get(parse(f), "topics", STREAM_JSON_ARRAY);
    assert_int_equal(topics->arr.count, 2);
    const stream_json_value *t = &topics->arr.items[1];
    assert_str(t, "name", "orders");
    assert_false(get(t, "internal", STREAM_JSON_BOOL)->b);
    assert_int_equal(get(t, "partition_count", STREAM_JSON_INT)->i, 2);
    assert_true(get(&topics->arr.items[0], "internal", STREAM_JSON_BOOL)->b);
}

static void test_list_json_of_no_topics_is_an_empty_array(void **state)
{
    fixture *f = *state;
    stream_metadata empty = {0};
    assert_int_equal(stream_adminfmt_list_json(&f->out, &empty), 0);
    assert_string_equal(text(f), "{\"topics\":[]}\n");
}

static void test_describe_json_reports_offsets_sizes_and_set_configs(void **state)
{
    fixture *f = *state;
    stream_topic_description d = {.meta = &f->topics[1], .config = &f->config};
    stream_admin_outcome missing = {
        .topic = "nope", .status = "failed", .err = STREAM_ENOTOPIC, .msg = "unknown topic 'nope'"};
    assert_int_equal(stream_adminfmt_describe_json(&f->out, &d, 1, &missing, 1, 0), 0);
    const stream_json_value *root = parse(f);
    const stream_json_value *topics = get(root, "topics", STREAM_JSON_ARRAY);
    assert_int_equal(topics->arr.count, 1);
    const stream_json_value *t = &topics->arr.items[0];
    assert_str(t, "name", "orders");
    assert_int_equal(get(t, "partition_count", STREAM_JSON_INT)->i, 2);
    /* One partition's size is unknown, so the topic's is too. */
    get(t, "size_bytes", STREAM_JSON_NULL);
    const stream_json_value *parts = get(t, "partitions", STREAM_JSON_ARRAY);
    assert_int_equal(parts->arr.count, 2);
    const stream_json_value *p0 = &parts->arr.items[0];
    assert_int_equal(get(p0, "partition", STREAM_JSON_INT)->i, 0);
    assert_int_equal(get(p0, "leader", STREAM_JSON_INT)->i, 0);
    assert_int_equal(get(p0, "log_start_offset", STREAM_JSON_INT)->i, 0);
    assert_int_equal(get(p0, "high_watermark", STREAM_JSON_INT)->i, 1200);
    assert_int_equal(get(p0, "log_end_offset", STREAM_JSON_INT)->i, 1200);
    assert_int_equal(get(p0, "size_bytes", STREAM_JSON_INT)->i, 117000);
    get(p0, "error", STREAM_JSON_NULL);
    const stream_json_value *reps = get(p0, "replicas", STREAM_JSON_ARRAY);
    assert_int_equal(reps->arr.count, 3);
    assert_int_equal(reps->arr.items[1].i, 2);
    assert_int_equal(get(p0, "isr", STREAM_JSON_ARRAY)->arr.count, 2);
    const stream_json_value *p1 = &parts->arr.items[1];
    get(p1, "leader", STREAM_JSON_NULL);
    get(p1, "size_bytes", STREAM_JSON_NULL);
    get(p1, "leader_epoch", STREAM_JSON_NULL);
    assert_int_equal(get(p1, "replicas", STREAM_JSON_ARRAY)->arr.count, 0);
    assert_int_equal(get(p1, "log_end_offset", STREAM_JSON_INT)->i, 9);
    assert_int_equal(get(p1, "log_start_offset", STREAM_JSON_INT)->i, 5);
    /* Only the setting made on the topic. */
    const stream_json_value *cfgs = get(t, "configs", STREAM_JSON_ARRAY);
    assert_int_equal(cfgs->arr.count, 1);
    assert_str(&cfgs->arr.items[0], "name", "retention.ms");
    assert_str(&cfgs->arr.items[0], "value", "3600000");
    assert_str(&cfgs->arr.items[0], "source", "topic");
    assert_false(get(&cfgs->arr.items[0], "default", STREAM_JSON_BOOL)->b);
    const stream_json_value *errs = get(root, "errors", STREAM_JSON_ARRAY);
    assert_int_equal(errs->arr.count, 1);
    assert_str(&errs->arr.items[0], "topic", "nope");
    const stream_json_value *e = get(&errs->arr.items[0], "error", STREAM_JSON_OBJECT);
    assert_str(e, "code", "ENOTOPIC");
    assert_str(e, "message", "unknown topic 'nope'");
}

static void test_describe_json_all_configs_and_missing_configs(void **state)
{
    fixture *f = *state;
    stream_topic_description d[2] = {{.meta = &f->topics[1], .config = &f->config},
                                     {.meta = &f->topics[0]}};
    assert_int_equal(
        stream_adminfmt_describe_json(&f->out, d, 2, NULL, 0, STREAM_ADMINFMT_ALL_CONFIGS), 0);
    const stream_json_value *root = parse(f);
    const stream_json_value *topics = get(root, "topics", STREAM_JSON_ARRAY);
    assert_int_equal(get(&topics->arr.items[0], "configs", STREAM_JSON_ARRAY)->arr.count, 3);
    get(&topics->arr.items[1], "configs", STREAM_JSON_NULL);
    assert_int_equal(get(&topics->arr.items[1], "size_bytes", STREAM_JSON_INT)->i, 0);
    assert_int_equal(get(root, "errors", STREAM_JSON_ARRAY)->arr.count, 0);
}

static void test_describe_text_shows_partitions_and_configs(void **state)
{
    fixture *f = *state;
    f->parts[1].size_bytes = 3000;
    stream_topic_description d = {.meta = &f->topics[1], .config = &f->config};
    assert_int_equal(stream_adminfmt_describe_text(&f->out, &d, 1, 0), 0);
    assert_string_equal(text(f),
                        "Topic orders: 2 partitions, 117.2 KiB\n"
                        "\n"
                        "PARTITION  LEADER  EPOCH  REPLICAS  ISR  LOG-START  HIGH-WATERMARK  "
                        "END-OFFSET       SIZE\n"
                        "        0       0      0  0,2,1     0,2          0            1200  "
                        "      1200  114.3 KiB\n"
                        "        1       -      -  -         -            5               7  "
                        "         9    2.9 KiB\n"
                        "\n"
                        "CONFIG        VALUE    SOURCE\n"
                        "retention.ms  3600000  topic\n");
}

static void test_describe_text_without_set_configs_says_so(void **state)
{
    fixture *f = *state;
    f->entries[1].is_default = true;
    f->parts[0].err = STREAM_ENOTLEADER;
    stream_topic_description d[2] = {{.meta = &f->topics[1], .config = &f->config},
                                     {.meta = &f->topics[0]}};
    assert_int_equal(stream_adminfmt_describe_text(&f->out, d, 2, 0), 0);
    const char *s = text(f);
    assert_non_null(strstr(s, "No configs set on the topic"));
    assert_non_null(strstr(s, "  ERROR\n"));
    assert_non_null(strstr(s, "not leader for partition"));
    assert_non_null(strstr(s, "\n\nTopic __consumer_offsets (internal): 0 partitions, 0 B\n"));
    assert_non_null(strstr(s, "Configs unavailable"));
}

static void test_outcomes_json_has_status_and_error(void **state)
{
    fixture *f = *state;
    stream_admin_outcome o[3] = {
        {.topic = "a", .status = "deleted"},
        {.topic = "b", .status = "failed", .err = STREAM_ENOTOPIC, .msg = "unknown topic 'b'"},
        {.topic = "c", .status = "absent"},
    };
    assert_int_equal(stream_adminfmt_outcomes_json(&f->out, o, 3), 0);
    const stream_json_value *res = get(parse(f), "results", STREAM_JSON_ARRAY);
    assert_int_equal(res->arr.count, 3);
    assert_str(&res->arr.items[0], "topic", "a");
    assert_str(&res->arr.items[0], "status", "deleted");
    get(&res->arr.items[0], "error", STREAM_JSON_NULL);
    const stream_json_value *e = get(&res->arr.items[1], "error", STREAM_JSON_OBJECT);
    assert_str(e, "code", "ENOTOPIC");
    assert_str(e, "message", "unknown topic 'b'");
    assert_str(&res->arr.items[2], "status", "absent");
}

static void test_json_escapes_hostile_names(void **state)
{
    fixture *f = *state;
    stream_admin_outcome o = {.topic = "x\"y\n\xff", .status = "failed", .err = STREAM_EBADNAME};
    assert_int_equal(stream_adminfmt_outcomes_json(&f->out, &o, 1), 0);
    const stream_json_value *res = get(parse(f), "results", STREAM_JSON_ARRAY);
    /* Invalid UTF-8 becomes U+FFFD; a missing message becomes the code's text. */
    assert_str(&res->arr.items[0], "topic", "x\"y\n\xef\xbf\xbd");
    assert_str(get(&res->arr.items[0], "error", STREAM_JSON_OBJECT), "message",
               "invalid topic name");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_list_text_is_one_name_per_line),
        T(test_list_columns_show_partitions_and_internal),
        T(test_list_json_has_the_documented_fields),
        T(test_list_json_of_no_topics_is_an_empty_array),
        T(test_describe_json_reports_offsets_sizes_and_set_configs),
        T(test_describe_json_all_configs_and_missing_configs),
        T(test_describe_text_shows_partitions_and_configs),
        T(test_describe_text_without_set_configs_says_so),
        T(test_outcomes_json_has_status_and_error),
        T(test_json_escapes_hostile_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
