/*
 * test_config.c - the settings table, value validation, the key=value parser
 * and the mapping of topic settings onto stream_log_config.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stream/config.h"
#include "stream/error.h"

static char errbuf[1024];

/* Sets key=value, expecting failure with `code`; the message must mention
 * `want`. */
static void expect_set_fails(stream_config *cfg, const char *key, const char *value, int code,
                             const char *want)
{
    errbuf[0] = '\0';
    int rc = stream_config_set(cfg, key, value, errbuf, sizeof errbuf);
    if (rc != code)
        fail_msg("set %s=%s: got %d (%s), want %d", key, value, rc, errbuf, code);
    if (want != NULL && strstr(errbuf, want) == NULL)
        fail_msg("set %s=%s: message '%s' lacks '%s'", key, value, errbuf, want);
}

static void expect_set_ok(stream_config *cfg, const char *key, const char *value)
{
    errbuf[0] = '\0';
    int rc = stream_config_set(cfg, key, value, errbuf, sizeof errbuf);
    if (rc != 0)
        fail_msg("set %s=%s: %d (%s)", key, value, rc, errbuf);
}

static void test_defaults_match_documented_values(void **state)
{
    stream_config *cfg = stream_config_new();
    assert_non_null(cfg);
    assert_string_equal(stream_config_get_str(cfg, "listen"), "127.0.0.1:9292");
    assert_string_equal(stream_config_get_str(cfg, "data.dir"), "");
    assert_int_equal(stream_config_get_int(cfg, "num.partitions"), 1);
    assert_true(stream_config_get_bool(cfg, "auto.create.topics.enable"));
    assert_int_equal(stream_config_get_int(cfg, "socket.request.max.bytes"), 104857600);
    assert_int_equal(stream_config_get_int(cfg, "max.connections"), 10000);
    assert_int_equal(stream_config_get_int(cfg, "connection.max.output.bytes"), 64 << 20);
    assert_int_equal(stream_config_get_int(cfg, "connections.max.idle.ms"), 600000);
    assert_string_equal(stream_config_get_str(cfg, "log.level"), "info");
    assert_int_equal(stream_config_get_int(cfg, "log.level"), 2);
    assert_int_equal(stream_config_get_int(cfg, "log.retention.check.interval.ms"), 300000);
    assert_int_equal(stream_config_get_int(cfg, "node.id"), 0);
    assert_int_equal(stream_config_get_int(cfg, "segment.bytes"), 1073741824);
    assert_int_equal(stream_config_get_int(cfg, "segment.ms"), 604800000);
    assert_int_equal(stream_config_get_int(cfg, "retention.ms"), 604800000);
    assert_int_equal(stream_config_get_int(cfg, "retention.bytes"), -1);
    assert_int_equal(stream_config_get_int(cfg, "index.interval.bytes"), 4096);
    assert_int_equal(stream_config_get_int(cfg, "max.message.bytes"), 1048588);
    assert_string_equal(stream_config_get_str(cfg, "flush.mode"), "group");
    assert_int_equal(stream_config_get_int(cfg, "flush.ms"), 1000);
    assert_string_equal(stream_config_get_str(cfg, "cleanup.policy"), "delete");
    /* The id getters read the same slots. */
    assert_int_equal(stream_config_int(cfg, STREAM_CONFIG_NUM_PARTITIONS), 1);
    assert_true(stream_config_bool(cfg, STREAM_CONFIG_AUTO_CREATE_TOPICS_ENABLE));
    assert_string_equal(stream_config_str(cfg, STREAM_CONFIG_LISTEN), "127.0.0.1:9292");
    for (int i = 0; i < STREAM_CONFIG_COUNT; i++)
        assert_false(stream_config_id_is_set(cfg, (stream_config_id)i));
    stream_config_free(cfg);
}

static void test_table_rows_are_consistent(void **state)
{
    for (int i = 0; i < STREAM_CONFIG_COUNT; i++) {
        const stream_config_setting *st = stream_config_setting_at(i);
        assert_non_null(st);
        assert_int_equal(st->id, i);
        assert_true(st->doc != NULL && st->doc[0] != '\0');
        assert_ptr_equal(stream_config_setting_find(st->name, false), st);
        if (st->type == STREAM_CONFIG_TYPE_INT) {
            assert_true(st->min <= st->max);
            long long d = strtoll(st->default_value, NULL, 10);
            assert_true(d >= st->min && d <= st->max);
        }
        assert_int_equal(st->values != NULL, st->type == STREAM_CONFIG_TYPE_ENUM);
        if (st->alias != NULL) {
            assert_int_equal(st->scope, STREAM_CONFIG_SCOPE_TOPIC);
            assert_null(stream_config_setting_find(st->alias, false));
            assert_ptr_equal(stream_config_setting_find(st->alias, true), st);
        }
        for (int j = 0; j < i; j++)
            assert_string_not_equal(stream_config_setting_at(j)->name, st->name);
    }
    assert_null(stream_config_setting_at(-1));
    assert_null(stream_config_setting_at(STREAM_CONFIG_COUNT));
    assert_null(stream_config_setting_find("no.such.setting", true));
}

static void test_set_unknown_key_fails_naming_it(void **state)
{
    stream_config *cfg = stream_config_new();
    expect_set_fails(cfg, "retention.msec", "5", STREAM_EBADCONFIG, "retention.msec");
    expect_set_fails(cfg, "", "5", STREAM_EBADCONFIG, "unknown setting");
    assert_int_equal(stream_config_set(cfg, NULL, "5", errbuf, sizeof errbuf), STREAM_EINVAL);
    assert_int_equal(stream_config_set(cfg, "retention.ms", NULL, errbuf, sizeof errbuf),
                     STREAM_EINVAL);
    stream_config_free(cfg);
}

static void test_set_bad_int_fails_naming_key_and_range(void **state)
{
    stream_config *cfg = stream_config_new();
    const char *bad[] = {"",
                         "  ",
                         "12x",
                         "1.5",
                         "0x10",
                         "--1",
                         "+-1",
                         "1 000",
                         "-",
                         "99999999999999999999",
                         "9223372036854775808"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect_set_fails(cfg, "retention.bytes", bad[i], STREAM_EBADCONFIG, "retention.bytes: '");
    expect_set_fails(cfg, "retention.ms", "soon", STREAM_EBADCONFIG,
                     "not an integer (allowed: -1 to 3153600000000)");
    /* The largest and a signed value parse. */
    expect_set_ok(cfg, "retention.bytes", "9223372036854775807");
    assert_int_equal(stream_config_get_int(cfg, "retention.bytes"), INT64_MAX);
    expect_set_ok(cfg, "retention.bytes", "+5");
    assert_int_equal(stream_config_get_int(cfg, "retention.bytes"), 5);
    stream_config_free(cfg);
}

static void test_set_int_out_of_range_fails(void **state)
{
    stream_config *cfg = stream_config_new();
    expect_set_fails(cfg, "segment.bytes", "10", STREAM_EBADCONFIG,
                     "segment.bytes: 10 is out of range (allowed: 1024 to 2147483647)");
    expect_set_fails(cfg, "segment.bytes", "2147483648", STREAM_EBADCONFIG, "out of range");
    expect_set_fails(cfg, "num.partitions", "0", STREAM_EBADCONFIG, "num.partitions");
    expect_set_fails(cfg, "retention.ms", "-2", STREAM_EBADCONFIG, "out of range");
    expect_set_fails(cfg, "retention.ms", "-9223372036854775808", STREAM_EBADCONFIG,
                     "out of range");
    expect_set_fails(cfg, "connections.max.idle.ms", "0", STREAM_EBADCONFIG, "-1");
    expect_set_ok(cfg, "retention.ms", "-1");
    expect_set_ok(cfg, "segment.bytes", "1024");
    expect_set_ok(cfg, "connections.max.idle.ms", "-1");
    assert_int_equal(stream_config_get_int(cfg, "segment.bytes"), 1024);
    stream_config_free(cfg);
}

static void test_set_bad_bool_fails(void **state)
{
    stream_config *cfg = stream_config_new();
    const char *bad[] = {"yes", "1", "0", "", "truth", "on"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect_set_fails(cfg, "auto.create.topics.enable", bad[i], STREAM_EBADCONFIG,
                         "(allowed: true, false)");
    expect_set_ok(cfg, "auto.create.topics.enable", "FALSE");
    assert_false(stream_config_get_bool(cfg, "auto.create.topics.enable"));
    expect_set_ok(cfg, "auto.create.topics.enable", "True");
    assert_true(stream_config_get_bool(cfg, "auto.create.topics.enable"));
    stream_config_free(cfg);
}

static void test_set_bad_enum_fails_listing_values(void **state)
{
    stream_config *cfg = stream_config_new();
    expect_set_fails(cfg, "log.level", "loud", STREAM_EBADCONFIG,
                     "log.level: 'loud' is not allowed (allowed: error, warn, info, debug)");
    expect_set_fails(cfg, "log.level", "", STREAM_EBADCONFIG, "allowed");
    expect_set_fails(cfg, "log.level", "info|debug", STREAM_EBADCONFIG, "allowed");
    expect_set_fails(cfg, "flush.mode", "sometimes", STREAM_EBADCONFIG, "group, periodic, never");
    expect_set_ok(cfg, "log.level", "DEBUG");
    assert_string_equal(stream_config_get_str(cfg, "log.level"), "debug");
    assert_int_equal(stream_config_int(cfg, STREAM_CONFIG_LOG_LEVEL), 3);
    stream_config_free(cfg);
}

static void test_cleanup_policy_takes_delete_compact_or_both(void **state)
{
    stream_config *cfg = stream_config_new_topic();
    stream_log_config lc;
    expect_set_fails(cfg, "cleanup.policy", "shred", STREAM_EBADCONFIG,
                     "allowed: delete, compact, compact,delete");
    expect_set_ok(cfg, "cleanup.policy", "compact");
    stream_config_topic_log_config(NULL, cfg, &lc);
    assert_true(lc.cleanup_compact);
    assert_false(lc.cleanup_delete);
    expect_set_ok(cfg, "cleanup.policy", "Delete,Compact"); /* either order, any case */
    assert_string_equal(stream_config_get_str(cfg, "cleanup.policy"), "compact,delete");
    stream_config_topic_log_config(NULL, cfg, &lc);
    assert_true(lc.cleanup_compact);
    assert_true(lc.cleanup_delete);
    expect_set_ok(cfg, "cleanup.policy", "delete");
    stream_config_topic_log_config(NULL, cfg, &lc);
    assert_false(lc.cleanup_compact);
    assert_true(lc.cleanup_delete);
    stream_config_free(cfg);
}

static void test_compaction_settings_reach_the_log_config(void **state)
{
    stream_config *broker = stream_config_new();
    stream_config *cfg = stream_config_new_topic();
    stream_log_config lc;
    stream_config_topic_log_config(broker, cfg, &lc);
    assert_int_equal(lc.min_cleanable_dirty_ratio_ppm, 500000);
    assert_int_equal(lc.delete_retention_ms, 86400000);
    assert_int_equal(lc.min_compaction_lag_ms, 0);
    expect_set_ok(broker, "log.cleaner.min.cleanable.ratio", "0.25"); /* Kafka's name */
    expect_set_ok(cfg, "min.compaction.lag.ms", "1000");
    expect_set_ok(cfg, "max.compaction.lag.ms", "60000");
    expect_set_ok(cfg, "delete.retention.ms", "0");
    stream_config_topic_log_config(broker, cfg, &lc);
    assert_int_equal(lc.min_cleanable_dirty_ratio_ppm, 250000);
    assert_int_equal(lc.min_compaction_lag_ms, 1000);
    assert_int_equal(lc.max_compaction_lag_ms, 60000);
    assert_int_equal(lc.delete_retention_ms, 0);
    expect_set_ok(cfg, "min.cleanable.dirty.ratio", "1");
    expect_set_ok(cfg, "min.cleanable.dirty.ratio", ".000001");
    expect_set_ok(cfg, "min.cleanable.dirty.ratio", "0");
    expect_set_fails(cfg, "min.cleanable.dirty.ratio", "1.5", STREAM_EBADCONFIG, "0 to 1");
    expect_set_fails(cfg, "min.cleanable.dirty.ratio", "-0.1", STREAM_EBADCONFIG, "0 to 1");
    expect_set_fails(cfg, "min.cleanable.dirty.ratio", "0.1234567", STREAM_EBADCONFIG, "0 to 1");
    expect_set_fails(cfg, "min.cleanable.dirty.ratio", ".", STREAM_EBADCONFIG, "0 to 1");
    expect_set_fails(cfg, "min.cleanable.dirty.ratio", "half", STREAM_EBADCONFIG, "0 to 1");
    expect_set_fails(cfg, "log.cleaner.threads", "1", STREAM_EBADCONFIG, NULL); /* broker only */
    expect_set_ok(broker, "log.cleaner.threads", "0");
    expect_set_ok(broker, "log.cleaner.dedupe.buffer.size", "4096");
    expect_set_fails(broker, "log.cleaner.dedupe.buffer.size", "100", STREAM_EBADCONFIG, NULL);
    expect_set_ok(broker, "log.cleaner.io.max.bytes.per.second", "1048576");
    stream_config_free(cfg);
    stream_config_free(broker);
}

static void test_failed_set_leaves_value_unchanged(void **state)
{
    stream_config *cfg = stream_config_new();
    expect_set_ok(cfg, "retention.ms", "5000");
    expect_set_fails(cfg, "retention.ms", "x", STREAM_EBADCONFIG, NULL);
    assert_int_equal(stream_config_get_int(cfg, "retention.ms"), 5000);
    assert_true(stream_config_is_set(cfg, "retention.ms"));
    expect_set_fails(cfg, "listen", "nowhere", STREAM_EBADCONFIG, NULL);
    assert_string_equal(stream_config_get_str(cfg, "listen"), "127.0.0.1:9292");
    assert_false(stream_config_is_set(cfg, "listen"));
    stream_config_free(cfg);
}

static void test_set_trims_surrounding_whitespace(void **state)
{
    stream_config *cfg = stream_config_new();
    expect_set_ok(cfg, "num.partitions", " \t 3 \r\n");
    assert_int_equal(stream_config_get_int(cfg, "num.partitions"), 3);
    expect_set_ok(cfg, "data.dir", "  /var/lib/stream  ");
    assert_string_equal(stream_config_get_str(cfg, "data.dir"), "/var/lib/stream");
    stream_config_free(cfg);
}

static void test_listen_must_be_host_and_port(void **state)
{
    stream_config *cfg = stream_config_new();
    const char *good[] = {"0.0.0.0:0", "[::1]:9292", "localhost:65535", "example.org:1"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        expect_set_ok(cfg, "listen", good[i]);
    const char *bad[] = {"9292",    ":9292", "host:65536", "host:",      "::1:9292", "host:-1",
                         "host:+1", "a b:1", "[]:1",       "[::1]9292:", "host:1x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect_set_fails(cfg, "listen", bad[i], STREAM_EBADCONFIG, "HOST:PORT");
    stream_config_free(cfg);
}

static void test_strings_refuse_control_characters(void **state)
{
    stream_config *cfg = stream_config_new();
    expect_set_fails(cfg, "data.dir", "/a\nb", STREAM_EBADCONFIG, "control characters");
    expect_set_fails(cfg, "data.dir", "/a\x1b[31m", STREAM_EBADCONFIG, "control characters");
    expect_set_ok(cfg, "data.dir", "/dåta dir/#1");
    assert_string_equal(stream_config_get_str(cfg, "data.dir"), "/dåta dir/#1");
    stream_config_free(cfg);
}

static void test_topic_config_refuses_broker_settings(void **state)
{
    stream_config *t = stream_config_new_topic();
    assert_true(stream_config_is_topic(t));
    expect_set_fails(t, "num.partitions", "3", STREAM_EBADCONFIG,
                     "'num.partitions' is a broker setting");
    expect_set_fails(t, "listen", "a:1", STREAM_EBADCONFIG, "broker setting");
    expect_set_ok(t, "retention.ms", "1000");
    assert_true(stream_config_is_set(t, "retention.ms"));
    assert_false(stream_config_is_set(t, "segment.bytes"));
    stream_config_free(t);
}

static void test_kafka_aliases_only_at_broker_level(void **state)
{
    stream_config *b = stream_config_new();
    stream_config *t = stream_config_new_topic();
    expect_set_ok(b, "log.retention.ms", "123");
    assert_int_equal(stream_config_get_int(b, "retention.ms"), 123);
    expect_set_ok(b, "message.max.bytes", "2000");
    assert_int_equal(stream_config_get_int(b, "max.message.bytes"), 2000);
    assert_int_equal(stream_config_get_int(b, "message.max.bytes"), 2000);
    expect_set_fails(t, "log.retention.ms", "123", STREAM_EBADCONFIG, "use 'retention.ms'");
    stream_config_free(b);
    stream_config_free(t);
}

static void test_unset_restores_default(void **state)
{
    stream_config *cfg = stream_config_new();
    expect_set_ok(cfg, "log.level", "debug");
    expect_set_ok(cfg, "retention.ms", "1");
    assert_int_equal(stream_config_unset(cfg, "log.level", errbuf, sizeof errbuf), 0);
    assert_int_equal(stream_config_unset(cfg, "log.retention.ms", errbuf, sizeof errbuf), 0);
    assert_string_equal(stream_config_get_str(cfg, "log.level"), "info");
    assert_int_equal(stream_config_get_int(cfg, "retention.ms"), 604800000);
    assert_false(stream_config_is_set(cfg, "log.level"));
    assert_int_equal(stream_config_unset(cfg, "nope", errbuf, sizeof errbuf), STREAM_EBADCONFIG);
    stream_config_free(cfg);
}

static void test_getters_give_zero_for_wrong_type_or_unknown_key(void **state)
{
    stream_config *cfg = stream_config_new();
    assert_int_equal(stream_config_get_int(cfg, "listen"), 0);
    assert_int_equal(stream_config_get_int(cfg, "nope"), 0);
    assert_false(stream_config_get_bool(cfg, "num.partitions"));
    assert_null(stream_config_get_str(cfg, "num.partitions"));
    assert_null(stream_config_get_str(cfg, NULL));
    assert_false(stream_config_is_set(cfg, "nope"));
    assert_int_equal(stream_config_int(cfg, (stream_config_id)STREAM_CONFIG_COUNT), 0);
    stream_config_free(cfg);
}

static void test_dup_is_independent(void **state)
{
    stream_config *a = stream_config_new();
    expect_set_ok(a, "data.dir", "/x");
    stream_config *b = stream_config_dup(a);
    assert_non_null(b);
    expect_set_ok(a, "data.dir", "/y");
    assert_string_equal(stream_config_get_str(b, "data.dir"), "/x");
    assert_true(stream_config_is_set(b, "data.dir"));
    assert_false(stream_config_is_topic(b));
    stream_config_free(a);
    stream_config_free(b);
    assert_null(stream_config_dup(NULL));
    stream_config_free(NULL);
}

static int load(stream_config *cfg, const char *text, const char *origin)
{
    errbuf[0] = '\0';
    return stream_config_load_text(cfg, text, strlen(text), origin, errbuf, sizeof errbuf);
}

static void test_load_text_handles_comments_blanks_whitespace_and_crlf(void **state)
{
    stream_config *cfg = stream_config_new();
    const char *text = "# broker settings\r\n"
                       "\r\n"
                       "   \t\n"
                       "  # indented comment = with equals\n"
                       "  retention.ms =  5000 \r\n"
                       "log.level=debug\n"
                       "data.dir = /srv/stream data # not a comment\n"
                       "num.partitions=2\n"
                       "num.partitions=4"; /* no newline at the end; the later line wins */
    assert_int_equal(load(cfg, text, "x.conf"), 0);
    assert_int_equal(stream_config_get_int(cfg, "retention.ms"), 5000);
    assert_string_equal(stream_config_get_str(cfg, "log.level"), "debug");
    assert_string_equal(stream_config_get_str(cfg, "data.dir"), "/srv/stream data # not a comment");
    assert_int_equal(stream_config_get_int(cfg, "num.partitions"), 4);
    assert_false(stream_config_is_set(cfg, "listen"));
    stream_config_free(cfg);
}

static void test_load_text_error_names_origin_and_line(void **state)
{
    stream_config *cfg = stream_config_new();
    assert_int_equal(load(cfg, "# c\nretention.ms=1\nsegment.bytes=12\n", "b.conf"),
                     STREAM_EBADCONFIG);
    assert_non_null(strstr(errbuf, "b.conf:3: segment.bytes: 12 is out of range"));
    assert_int_equal(load(cfg, "\n\njunk\n", "c.conf"), STREAM_EBADCONFIG);
    assert_string_equal(errbuf, "c.conf:3: expected key=value");
    assert_int_equal(load(cfg, " = 5\n", NULL), STREAM_EBADCONFIG);
    assert_string_equal(errbuf, "line 1: missing key before '='");
    assert_int_equal(load(cfg, "a\r\nb.c=1\r\n", "crlf.conf"), STREAM_EBADCONFIG);
    assert_string_equal(errbuf, "crlf.conf:1: expected key=value");
    assert_int_equal(load(cfg, "x=1", "d.conf"), STREAM_EBADCONFIG);
    assert_string_equal(errbuf, "d.conf:1: unknown setting 'x'");
    stream_config_free(cfg);
}

static void test_load_text_is_all_or_nothing(void **state)
{
    stream_config *cfg = stream_config_new();
    expect_set_ok(cfg, "retention.ms", "7");
    assert_int_equal(load(cfg, "retention.ms=8\nnum.partitions=9\nlog.level=loud\n", "e.conf"),
                     STREAM_EBADCONFIG);
    assert_int_equal(stream_config_get_int(cfg, "retention.ms"), 7);
    assert_int_equal(stream_config_get_int(cfg, "num.partitions"), 1);
    assert_false(stream_config_is_set(cfg, "num.partitions"));
    stream_config_free(cfg);
}

static void test_load_text_rejects_nul_byte(void **state)
{
    stream_config *cfg = stream_config_new();
    static const char text[] = "retention.ms=5\nnum.partitions=2\0\nlog.level=debug\n";
    int rc = stream_config_load_text(cfg, text, sizeof text - 1, "n.conf", errbuf, sizeof errbuf);
    assert_int_equal(rc, STREAM_EBADCONFIG);
    assert_string_equal(errbuf, "n.conf:2: NUL byte in config text");
    assert_false(stream_config_is_set(cfg, "retention.ms"));
    static const char comment[] = "# \0 hidden\n";
    rc = stream_config_load_text(cfg, comment, sizeof comment - 1, "n.conf", errbuf, sizeof errbuf);
    assert_int_equal(rc, STREAM_EBADCONFIG);
    stream_config_free(cfg);
}

static void test_load_text_never_reads_past_len(void **state)
{
    stream_config *cfg = stream_config_new();
    /* An exact-size heap copy without a terminator: ASan catches any over-read. */
    const char src[] = "retention.ms=12345";
    char *p = malloc(14);
    memcpy(p, src, 14); /* "retention.ms=1" */
    assert_int_equal(stream_config_load_text(cfg, p, 14, NULL, errbuf, sizeof errbuf), 0);
    assert_int_equal(stream_config_get_int(cfg, "retention.ms"), 1);
    free(p);
    assert_int_equal(stream_config_load_text(cfg, NULL, 0, NULL, errbuf, sizeof errbuf), 0);
    assert_int_equal(stream_config_load_text(cfg, "x", 0, NULL, errbuf, sizeof errbuf), 0);
    stream_config_free(cfg);
}

static void test_load_text_accepts_long_lines_and_bom(void **state)
{
    stream_config *cfg = stream_config_new();
    size_t n = 200000;
    char *text = malloc(n + 2048);
    int o = sprintf(text, "\xEF\xBB\xBF# %*s\ndata.dir=/", 1000, "");
    memset(text + o, 'd', n);
    text[o + n] = '\0';
    assert_int_equal(load(cfg, text, "long.conf"), 0);
    assert_int_equal(strlen(stream_config_get_str(cfg, "data.dir")), n + 1);
    free(text);
    stream_config_free(cfg);
}

struct seen {
    int lines;
    char last_key[32], last_value[32];
};

static int seen_cb(void *arg, const char *key, const char *value, char *eb, size_t el)
{
    struct seen *s = arg;
    s->lines++;
    snprintf(s->last_key, sizeof s->last_key, "%s", key);
    snprintf(s->last_value, sizeof s->last_value, "%s", value);
    if (strcmp(key, "stop") == 0) {
        snprintf(eb, el, "stop here");
        return STREAM_EINVAL;
    }
    return 0;
}

static void test_parse_passes_trimmed_pairs_and_prefixes_callback_errors(void **state)
{
    struct seen s = {0};
    const char *text = "a = b=c \nkey=\n";
    assert_int_equal(
        stream_config_parse(text, strlen(text), "p", seen_cb, &s, errbuf, sizeof errbuf), 0);
    assert_int_equal(s.lines, 2);
    assert_string_equal(s.last_key, "key");
    assert_string_equal(s.last_value, "");
    memset(&s, 0, sizeof s);
    text = "a=1\n\nstop=1\nb=2\n";
    assert_int_equal(
        stream_config_parse(text, strlen(text), "p.conf", seen_cb, &s, errbuf, sizeof errbuf),
        STREAM_EINVAL);
    assert_string_equal(errbuf, "p.conf:3: stop here");
    assert_int_equal(s.lines, 2);
}

static void test_load_file_reads_file_and_names_it_in_errors(void **state)
{
    char dir[] = "/tmp/test_config.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/broker.conf", dir);
    FILE *f = fopen(path, "w");
    fputs("# test\nlisten=127.0.0.1:0\nretention.bytes=100\n", f);
    fclose(f);

    stream_config *cfg = stream_config_new();
    assert_int_equal(stream_config_load_file(cfg, path, errbuf, sizeof errbuf), 0);
    assert_string_equal(stream_config_get_str(cfg, "listen"), "127.0.0.1:0");
    assert_int_equal(stream_config_get_int(cfg, "retention.bytes"), 100);

    f = fopen(path, "w");
    fputs("listen=127.0.0.1:0\nflush.mode=sometimes\n", f);
    fclose(f);
    assert_int_equal(stream_config_load_file(cfg, path, errbuf, sizeof errbuf), STREAM_EBADCONFIG);
    char want[300];
    snprintf(want, sizeof want, "%s:2: flush.mode: 'sometimes'", path);
    assert_non_null(strstr(errbuf, want));

    unlink(path);
    assert_int_equal(stream_config_load_file(cfg, path, errbuf, sizeof errbuf), STREAM_ENOENT);
    assert_non_null(strstr(errbuf, path));
    assert_int_equal(stream_config_load_file(cfg, dir, errbuf, sizeof errbuf), STREAM_EIO);
    rmdir(dir);
    stream_config_free(cfg);
}

static void test_write_round_trips(void **state)
{
    stream_config *a = stream_config_new();
    expect_set_ok(a, "listen", "[::1]:1234");
    expect_set_ok(a, "auto.create.topics.enable", "false");
    expect_set_ok(a, "log.level", "WARN");
    expect_set_ok(a, "retention.ms", "-1");

    stream_buf out = STREAM_BUF_INIT;
    assert_int_equal(stream_config_write(a, true, &out), 0);
    const char *want = "listen=[::1]:1234\nauto.create.topics.enable=false\nlog.level=warn\n"
                       "retention.ms=-1\n";
    assert_int_equal(out.len, strlen(want));
    assert_memory_equal(out.data, want, out.len);

    stream_config *b = stream_config_new();
    assert_int_equal(
        stream_config_load_text(b, (const char *)out.data, out.len, NULL, errbuf, sizeof errbuf),
        0);
    stream_buf all_a = STREAM_BUF_INIT, all_b = STREAM_BUF_INIT;
    assert_int_equal(stream_config_write(a, false, &all_a), 0);
    assert_int_equal(stream_config_write(b, false, &all_b), 0);
    assert_int_equal(all_a.len, all_b.len);
    assert_memory_equal(all_a.data, all_b.data, all_a.len);

    /* A topic config writes only topic settings. */
    stream_config *t = stream_config_new_topic();
    stream_buf tb = STREAM_BUF_INIT;
    assert_int_equal(stream_config_write(t, false, &tb), 0);
    assert_null(memmem(tb.data, tb.len, "listen=", 7));
    assert_non_null(memmem(tb.data, tb.len, "segment.bytes=1073741824\n", 25));

    stream_buf_release(&out);
    stream_buf_release(&all_a);
    stream_buf_release(&all_b);
    stream_buf_release(&tb);
    stream_config_free(a);
    stream_config_free(b);
    stream_config_free(t);
}

static void test_iter_reports_values_and_sources(void **state)
{
    stream_config *b = stream_config_new();
    stream_config *t = stream_config_new_topic();
    expect_set_ok(b, "retention.ms", "1000");
    expect_set_ok(b, "num.partitions", "3");
    expect_set_ok(t, "segment.bytes", "4096");

    stream_config_iter it;
    int n = 0, broker_set = 0;
    stream_config_iter_start(&it, b, NULL);
    while (stream_config_iter_next(&it)) {
        n++;
        if (it.source == STREAM_CONFIG_SOURCE_BROKER)
            broker_set++;
        if (strcmp(it.setting->name, "num.partitions") == 0)
            assert_string_equal(it.value, "3");
    }
    assert_int_equal(n, STREAM_CONFIG_COUNT);
    assert_int_equal(broker_set, 2);

    n = 0;
    stream_config_iter_start(&it, b, t);
    while (stream_config_iter_next(&it)) {
        n++;
        assert_int_equal(it.setting->scope, STREAM_CONFIG_SCOPE_TOPIC);
        if (strcmp(it.setting->name, "segment.bytes") == 0) {
            assert_int_equal(it.source, STREAM_CONFIG_SOURCE_TOPIC);
            assert_string_equal(it.value, "4096");
        } else if (strcmp(it.setting->name, "retention.ms") == 0) {
            assert_int_equal(it.source, STREAM_CONFIG_SOURCE_BROKER);
            assert_string_equal(it.value, "1000");
        } else {
            assert_int_equal(it.source, STREAM_CONFIG_SOURCE_DEFAULT);
            assert_string_equal(it.value, it.setting->default_value);
        }
    }
    assert_true(n > 5 && n < STREAM_CONFIG_COUNT);

    /* No config at all: the table's defaults. */
    n = 0;
    stream_config_iter_start(&it, NULL, NULL);
    while (stream_config_iter_next(&it)) {
        assert_string_equal(it.value, it.setting->default_value);
        n++;
    }
    assert_int_equal(n, STREAM_CONFIG_COUNT);
    stream_config_free(b);
    stream_config_free(t);
}

static void test_topic_int_reads_cluster_settings_override_first(void **state)
{
    stream_config *b = stream_config_new();
    stream_config *t = stream_config_new_topic();
    assert_int_equal(stream_config_topic_int(NULL, NULL, STREAM_CONFIG_MIN_INSYNC_REPLICAS), 1);
    assert_int_equal(stream_config_topic_int(b, t, STREAM_CONFIG_UNCLEAN_LEADER_ELECTION_ENABLE),
                     0);
    expect_set_ok(b, "min.insync.replicas", "2");
    expect_set_ok(b, "unclean.leader.election.enable", "true");
    assert_int_equal(stream_config_topic_int(b, t, STREAM_CONFIG_MIN_INSYNC_REPLICAS), 2);
    expect_set_ok(t, "min.insync.replicas", "3");
    expect_set_ok(t, "unclean.leader.election.enable", "false");
    assert_int_equal(stream_config_topic_int(b, t, STREAM_CONFIG_MIN_INSYNC_REPLICAS), 3);
    assert_int_equal(stream_config_topic_int(b, t, STREAM_CONFIG_UNCLEAN_LEADER_ELECTION_ENABLE),
                     0);
    /* Broker-only cluster settings and their defaults. */
    assert_int_equal(stream_config_int(b, STREAM_CONFIG_REPLICA_LAG_TIME_MAX_MS), 10000);
    assert_int_equal(stream_config_int(b, STREAM_CONFIG_BROKER_SESSION_TIMEOUT_MS), 1000);
    assert_int_equal(stream_config_int(b, STREAM_CONFIG_BROKER_HEARTBEAT_INTERVAL_MS), 100);
    assert_int_equal(stream_config_int(b, STREAM_CONFIG_DEFAULT_REPLICATION_FACTOR), -1);
    expect_set_fails(t, "replica.lag.time.max.ms", "5", STREAM_EBADCONFIG, "");
    expect_set_fails(b, "min.insync.replicas", "0", STREAM_EBADCONFIG, "min.insync.replicas");
    stream_config_free(b);
    stream_config_free(t);
}

static void test_topic_log_config_overrides_win_over_broker(void **state)
{
    stream_config *b = stream_config_new();
    stream_config *t = stream_config_new_topic();
    expect_set_ok(b, "retention.ms", "1000");
    expect_set_ok(b, "segment.bytes", "4096");
    expect_set_ok(b, "max.message.bytes", "5000");
    expect_set_ok(t, "retention.ms", "2000");
    expect_set_ok(t, "index.interval.bytes", "0");
    expect_set_ok(t, "retention.bytes", "1048576");

    stream_log_config lc;
    stream_config_topic_log_config(b, t, &lc);
    assert_int_equal(lc.retention_ms, 2000);
    assert_int_equal(lc.segment_bytes, 4096);
    assert_int_equal(lc.max_message_bytes, 5000);
    assert_int_equal(lc.index_interval_bytes, 0);
    assert_int_equal(lc.retention_bytes, 1048576);
    assert_int_equal(lc.segment_ms, 604800000);
    assert_int_equal(lc.flush_mode, STREAM_FLUSH_GROUP);
    assert_int_equal(lc.flush_ms, 1000);

    /* Without overrides: the broker's values; without either: the defaults. */
    stream_config_topic_log_config(b, NULL, &lc);
    assert_int_equal(lc.retention_ms, 1000);
    stream_config_topic_log_config(NULL, NULL, &lc);
    assert_int_equal(lc.retention_ms, 604800000);
    assert_int_equal(lc.segment_bytes, 1073741824);
    assert_int_equal(lc.retention_bytes, -1);
    assert_int_equal(lc.max_message_bytes, 1048588);
    assert_int_equal(lc.index_interval_bytes, 4096);
    stream_config_free(b);
    stream_config_free(t);
}

static void test_flush_settings_map_to_log_flush_mode(void **state)
{
    stream_config *b = stream_config_new();
    stream_config *t = stream_config_new_topic();
    stream_log_config lc;
    expect_set_ok(b, "flush.mode", "never");
    stream_config_topic_log_config(b, t, &lc);
    assert_int_equal(lc.flush_mode, STREAM_FLUSH_NEVER);
    expect_set_ok(t, "flush.mode", "periodic");
    expect_set_ok(t, "flush.ms", "250");
    stream_config_topic_log_config(b, t, &lc);
    assert_int_equal(lc.flush_mode, STREAM_FLUSH_PERIODIC);
    assert_int_equal(lc.flush_ms, 250);
    expect_set_ok(t, "flush.mode", "group");
    stream_config_topic_log_config(b, t, &lc);
    assert_int_equal(lc.flush_mode, STREAM_FLUSH_GROUP);
    expect_set_fails(t, "flush.ms", "0", STREAM_EBADCONFIG, "out of range");
    stream_config_free(b);
    stream_config_free(t);
}

/* Restores an environment variable at the end of a test. */
struct saved_env {
    const char *name;
    char *value;
};

static void save_env(struct saved_env *s, const char *name)
{
    s->name = name;
    const char *v = getenv(name);
    s->value = v ? strdup(v) : NULL;
}

static void restore_env(struct saved_env *s)
{
    if (s->value) {
        setenv(s->name, s->value, 1);
        free(s->value);
    } else {
        unsetenv(s->name);
    }
}

static void test_default_data_dir_follows_environment(void **state)
{
    struct saved_env e[3];
    save_env(&e[0], "STREAM_DATA_DIR");
    save_env(&e[1], "XDG_DATA_HOME");
    save_env(&e[2], "HOME");
    char buf[512];

    setenv("STREAM_DATA_DIR", "/srv/s/", 1);
    setenv("XDG_DATA_HOME", "/xdg", 1);
    setenv("HOME", "/home/u", 1);
    assert_int_equal(stream_config_default_data_dir(buf, sizeof buf), 0);
    assert_string_equal(buf, "/srv/s");

    setenv("STREAM_DATA_DIR", "", 1);
    assert_int_equal(stream_config_default_data_dir(buf, sizeof buf), 0);
    assert_string_equal(buf, "/xdg/stream");

    setenv("XDG_DATA_HOME", "relative", 1); /* invalid per the XDG spec: ignored */
    assert_int_equal(stream_config_default_data_dir(buf, sizeof buf), 0);
    assert_string_equal(buf, "/home/u/.local/share/stream");
    unsetenv("XDG_DATA_HOME");
    assert_int_equal(stream_config_default_data_dir(buf, sizeof buf), 0);
    assert_string_equal(buf, "/home/u/.local/share/stream");
    assert_int_equal(stream_config_default_data_dir(buf, 10), STREAM_EINVAL);

    stream_config *cfg = stream_config_new();
    assert_int_equal(stream_config_data_dir(cfg, buf, sizeof buf), 0);
    assert_string_equal(buf, "/home/u/.local/share/stream");
    expect_set_ok(cfg, "data.dir", "~/data");
    assert_int_equal(stream_config_data_dir(cfg, buf, sizeof buf), 0);
    assert_string_equal(buf, "/home/u/data");
    expect_set_ok(cfg, "data.dir", "/var/lib/stream");
    assert_int_equal(stream_config_data_dir(cfg, buf, sizeof buf), 0);
    assert_string_equal(buf, "/var/lib/stream");
    stream_config_free(cfg);

    for (int i = 0; i < 3; i++)
        restore_env(&e[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_match_documented_values),
        cmocka_unit_test(test_table_rows_are_consistent),
        cmocka_unit_test(test_set_unknown_key_fails_naming_it),
        cmocka_unit_test(test_set_bad_int_fails_naming_key_and_range),
        cmocka_unit_test(test_set_int_out_of_range_fails),
        cmocka_unit_test(test_set_bad_bool_fails),
        cmocka_unit_test(test_set_bad_enum_fails_listing_values),
        cmocka_unit_test(test_cleanup_policy_takes_delete_compact_or_both),
        cmocka_unit_test(test_compaction_settings_reach_the_log_config),
        cmocka_unit_test(test_failed_set_leaves_value_unchanged),
        cmocka_unit_test(test_set_trims_surrounding_whitespace),
        cmocka_unit_test(test_listen_must_be_host_and_port),
        cmocka_unit_test(test_strings_refuse_control_characters),
        cmocka_unit_test(test_topic_config_refuses_broker_settings),
        cmocka_unit_test(test_kafka_aliases_only_at_broker_level),
        cmocka_unit_test(test_unset_restores_default),
        cmocka_unit_test(test_getters_give_zero_for_wrong_type_or_unknown_key),
        cmocka_unit_test(test_dup_is_independent),
        cmocka_unit_test(test_load_text_handles_comments_blanks_whitespace_and_crlf),
        cmocka_unit_test(test_load_text_error_names_origin_and_line),
        cmocka_unit_test(test_load_text_is_all_or_nothing),
        cmocka_unit_test(test_load_text_rejects_nul_byte),
        cmocka_unit_test(test_load_text_never_reads_past_len),
        cmocka_unit_test(test_load_text_accepts_long_lines_and_bom),
        cmocka_unit_test(test_parse_passes_trimmed_pairs_and_prefixes_callback_errors),
        cmocka_unit_test(test_load_file_reads_file_and_names_it_in_errors),
        cmocka_unit_test(test_write_round_trips),
        cmocka_unit_test(test_iter_reports_values_and_sources),
        cmocka_unit_test(test_topic_log_config_overrides_win_over_broker),
        cmocka_unit_test(test_topic_int_reads_cluster_settings_override_first),
        cmocka_unit_test(test_flush_settings_map_to_log_flush_mode),
        cmocka_unit_test(test_default_data_dir_follows_environment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
