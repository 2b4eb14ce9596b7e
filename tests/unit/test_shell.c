/*
 * test_shell.c - stream-shell's language (libstream/tools/shell.c, shell_cmds.c):
 * words and quoting, options, the command table, completion candidates,
 * and a session's behaviour that needs no broker (or a dead one).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/shell_internal.h"
#include "stream/error.h"
#include "stream/ops.h"
#include "stream/shell.h"

/* ---- helpers ------------------------------------------------------------------------ */

/* Parses text (full mode) and returns the words of command `cmd` joined by
 * '|' into buf, or "ERR" on a parse error. */
static const char *words_of(const char *text, size_t cmd, char *buf, size_t len)
{
    stream_shell_line l;
    char err[128];
    if (stream_shell_parse(text, strlen(text), 0, &l, err, sizeof(err)) != 0) {
        snprintf(buf, len, "ERR");
        return buf;
    }
    buf[0] = '\0';
    if (cmd < l.count) {
        for (size_t i = 0; i < l.cmds[cmd].argc; i++) {
            strncat(buf, i ? "|" : "", len - strlen(buf) - 1);
            strncat(buf, l.cmds[cmd].argv[i], len - strlen(buf) - 1);
        }
        assert_null(l.cmds[cmd].argv[l.cmds[cmd].argc]);
    }
    stream_shell_line_release(&l);
    return buf;
}

static size_t commands_in(const char *text)
{
    stream_shell_line l;
    assert_int_equal(stream_shell_parse(text, strlen(text), 0, &l, NULL, 0), 0);
    size_t n = l.count;
    stream_shell_line_release(&l);
    return n;
}

/* Names offered for topics and groups, and how often they were asked for. */
typedef struct fake_names {
    const char *const *topics;
    size_t ntopics;
    const char *const *groups;
    size_t ngroups;
    int asked;
} fake_names;

static void fake_names_fn(void *arg, stream_shell_name_kind kind, const char *const **names,
                          size_t *n)
{
    fake_names *f = arg;
    f->asked++;
    *names = kind == STREAM_SHELL_NAMES_TOPICS ? f->topics : f->groups;
    *n = kind == STREAM_SHELL_NAMES_TOPICS ? f->ntopics : f->ngroups;
}

static const char *const topics[] = {"orders", "orders.dlq", "payments", "__consumer_offsets"};
static const char *const groups[] = {"billing", "audit"};

/* Completes text and returns the candidates joined by ' '. */
static const char *complete(const char *text, fake_names *f, char *buf, size_t len)
{
    stream_shell_candidates c;
    assert_int_equal(stream_shell_complete_text(text, strlen(text), fake_names_fn, f, &c), 0);
    buf[0] = '\0';
    for (size_t i = 0; i < c.count; i++) {
        strncat(buf, i ? " " : "", len - strlen(buf) - 1);
        strncat(buf, c.items[i], len - strlen(buf) - 1);
    }
    stream_shell_candidates_release(&c);
    return buf;
}

static fake_names names(void)
{
    return (fake_names){.topics = topics, .ntopics = 4, .groups = groups, .ngroups = 2};
}

/* ---- words ------------------------------------------------------------------------- */

static void test_words_split_at_blanks_and_commands_at_semicolons(void **state)
{
    char b[256];
    assert_string_equal(words_of("  describe   orders\tpayments ", 0, b, sizeof(b)),
                        "describe|orders|payments");
    assert_string_equal(words_of("create t; pub t a;sub t count 1", 1, b, sizeof(b)), "pub|t|a");
    assert_string_equal(words_of("create t; pub t a;sub t count 1", 2, b, sizeof(b)),
                        "sub|t|count|1");
    /* Empty commands (";;", a trailing ';', a blank line) are dropped. */
    assert_int_equal(commands_in(";; topics ;  ; topics;"), 2);
    assert_int_equal(commands_in("   "), 0);
}

static void test_quotes_and_escapes_follow_sh(void **state)
{
    char b[256];
    assert_string_equal(words_of("pub t 'a b' \"c d\"", 0, b, sizeof(b)), "pub|t|a b|c d");
    /* Single quotes are literal, backslashes included. */
    assert_string_equal(words_of("set record-format '%k=%v\\n'", 0, b, sizeof(b)),
                        "set|record-format|%k=%v\\n");
    /* In double quotes only \" \\ \$ \` escape. */
    assert_string_equal(words_of("pub t \"say \\\"hi\\\" \\n\"", 0, b, sizeof(b)),
                        "pub|t|say \"hi\" \\n");
    /* Outside quotes a backslash makes the next character literal. */
    assert_string_equal(words_of("pub t a\\ b c\\;d", 0, b, sizeof(b)), "pub|t|a b|c;d");
    /* Adjacent parts make one word; "" is an empty word. */
    assert_string_equal(words_of("pub t k=\"v 1\"'x'y \"\"", 0, b, sizeof(b)), "pub|t|k=v 1xy|");
    /* ';' and '#' inside quotes are text. */
    assert_string_equal(words_of("pub t 'a;b' \"#c\"", 0, b, sizeof(b)), "pub|t|a;b|#c");
}

static void test_hash_at_a_word_start_is_a_comment(void **state)
{
    char b[256];
    assert_string_equal(words_of("topics # list them; delete x", 0, b, sizeof(b)), "topics");
    assert_int_equal(commands_in("topics # list them; delete x"), 1);
    assert_int_equal(commands_in("# only a comment"), 0);
    /* Inside a word it is text. */
    assert_string_equal(words_of("pub t a#b", 0, b, sizeof(b)), "pub|t|a#b");
}

static void test_unterminated_quotes_and_trailing_backslash_are_errors(void **state)
{
    const char *bad[] = {"pub t 'abc", "pub t \"abc", "pub t abc\\"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        stream_shell_line l;
        char err[128] = "";
        assert_int_equal(stream_shell_parse(bad[i], strlen(bad[i]), 0, &l, err, sizeof(err)),
                         STREAM_EINVAL);
        assert_true(strstr(err, "quote") || strstr(err, "backslash"));
        assert_true(l.continues); /* a script reads the next line and joins it */
        assert_int_equal(l.count, 0);
        stream_shell_line_release(&l);
    }
    /* A backslash-newline joins lines; a newline inside quotes is kept. */
    char b[256];
    assert_string_equal(words_of("pub t ab\\\ncd 'x\ny'", 0, b, sizeof(b)), "pub|t|abcd|x\ny");
}

static void test_partial_parse_says_where_the_text_ends(void **state)
{
    stream_shell_line l;
    assert_int_equal(stream_shell_parse("describe or", 11, STREAM_SHELL_PARTIAL, &l, NULL, 0), 0);
    assert_true(l.in_word);
    assert_false(l.new_command);
    assert_int_equal(l.cmds[0].argc, 2);
    stream_shell_line_release(&l);

    assert_int_equal(stream_shell_parse("describe ", 9, STREAM_SHELL_PARTIAL, &l, NULL, 0), 0);
    assert_false(l.in_word);
    stream_shell_line_release(&l);

    assert_int_equal(stream_shell_parse("topics; ", 8, STREAM_SHELL_PARTIAL, &l, NULL, 0), 0);
    assert_true(l.new_command);
    stream_shell_line_release(&l);

    assert_int_equal(stream_shell_parse("pub t 'a b", 10, STREAM_SHELL_PARTIAL, &l, NULL, 0), 0);
    assert_int_equal(l.open_quote, '\'');
    assert_true(l.in_word);
    assert_true(l.continues);
    assert_string_equal(l.cmds[0].argv[2], "a b");
    stream_shell_line_release(&l);
}

/* ---- options ------------------------------------------------------------------------ */

static stream__shell_args getopt_of(const char *cmdname, char *line, int want_rc, char *err,
                                    size_t err_len)
{
    char *argv[32];
    size_t argc = 0;
    for (char *w = strtok(line, " "); w && argc < 31; w = strtok(NULL, " "))
        argv[argc++] = w;
    argv[argc] = NULL;
    stream__shell_args a;
    const stream__shell_cmd *c = stream__shell_find(cmdname);
    assert_non_null(c);
    assert_int_equal(stream__shell_getopt(c, argc, argv, &a, err, err_len), want_rc);
    return a;
}

static void test_options_may_come_anywhere_and_dashdash_ends_them(void **state)
{
    char line[] = "create a -p 3 b --config=retention.ms=5 -cflush.mode=never --if-not-exists c";
    char err[256];
    stream__shell_args a = getopt_of("create", line, 0, err, sizeof(err));
    assert_int_equal(a.npos, 3);
    assert_string_equal(a.pos[0], "a");
    assert_string_equal(a.pos[1], "b");
    assert_string_equal(a.pos[2], "c");
    assert_int_equal(a.nopt, 4);
    assert_string_equal(a.opt[0].value, "3");
    assert_string_equal(a.opt[1].value, "retention.ms=5");
    assert_string_equal(a.opt[2].value, "flush.mode=never");
    assert_null(a.opt[3].value);

    /* Negative numbers are arguments (offsets), "--" ends options. */
    char line2[] = "pub t -- -p x";
    a = getopt_of("pub", line2, 0, err, sizeof(err));
    assert_int_equal(a.npos, 3);
    assert_string_equal(a.pos[1], "-p");
    char line3[] = "sub t from -10";
    a = getopt_of("sub", line3, 0, err, sizeof(err));
    assert_int_equal(a.npos, 3);
    assert_string_equal(a.pos[2], "-10");
}

static void test_bad_options_name_the_problem(void **state)
{
    char err[256];
    char l1[] = "describe t --nope";
    getopt_of("describe", l1, STREAM_EINVAL, err, sizeof(err));
    assert_non_null(strstr(err, "unknown option '--nope'"));
    char l2[] = "create t -p";
    getopt_of("create", l2, STREAM_EINVAL, err, sizeof(err));
    assert_non_null(strstr(err, "needs a value"));
    char l3[] = "describe t --json=yes";
    getopt_of("describe", l3, STREAM_EINVAL, err, sizeof(err));
    assert_non_null(strstr(err, "takes no value"));
}

/* ---- the command table ------------------------------------------------------------ */

static void test_every_command_is_documented_and_found_by_name(void **state)
{
    const char *want[] = {"connect", "topics", "create", "describe", "alter",
                          "delete",  "pub",    "sub",    "offsets",  "groups",
                          "group",   "reset",  "cluster", "set",    "help",     "quit"};
    size_t n = 0;
    for (const stream_shell_command_info *c; (c = stream_shell_command_at(n)) != NULL; n++) {
        assert_non_null(c->synopsis);
        assert_true(strlen(c->summary) > 5);
        assert_ptr_equal(&stream__shell_find(c->name)->info, c);
        stream_buf b;
        stream_buf_init(&b);
        assert_int_equal(stream_shell_help(&b, c->name), 0);
        stream_buf_put_u8(&b, 0);
        assert_true(strncmp((const char *)b.data, "Usage: ", 7) == 0);
        assert_non_null(strstr((const char *)b.data, c->name));
        stream_buf_release(&b);
    }
    assert_int_equal(n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < n; i++)
        assert_non_null(stream__shell_find(want[i]));
    assert_ptr_equal(stream__shell_find("exit"), stream__shell_find("quit"));
    assert_null(stream__shell_find("frob"));
    stream_buf b;
    stream_buf_init(&b);
    assert_int_equal(stream_shell_help(&b, "frob"), STREAM_ENOENT);
    assert_int_equal(stream_shell_help(&b, NULL), 0);
    stream_buf_put_u8(&b, 0);
    for (size_t i = 0; i < n; i++)
        assert_non_null(strstr((const char *)b.data, want[i]));
    stream_buf_release(&b);
}

/* ---- completion ----------------------------------------------------------------------- */

static void test_completion_offers_commands_at_a_command_start(void **state)
{
    fake_names f = names();
    char b[512];
    assert_string_equal(complete("de", &f, b, sizeof(b)), "delete describe");
    assert_string_equal(complete("topics; su", &f, b, sizeof(b)), "sub");
    assert_string_equal(complete("  e", &f, b, sizeof(b)), "exit");
    assert_string_equal(complete("g", &f, b, sizeof(b)), "group groups");
    assert_true(strlen(complete("", &f, b, sizeof(b))) > 50);
    assert_string_equal(complete("frob ", &f, b, sizeof(b)), "");
    /* Completing a command never asks the broker for names. */
    assert_int_equal(f.asked, 0);
}

static void test_completion_offers_topic_and_group_names_from_the_cache(void **state)
{
    fake_names f = names();
    char b[512];
    assert_string_equal(complete("describe o", &f, b, sizeof(b)), "orders orders.dlq");
    assert_string_equal(complete("describe orders p", &f, b, sizeof(b)), "payments");
    assert_string_equal(complete("sub ", &f, b, sizeof(b)), "orders orders.dlq payments");
    /* Internal topics only when asked for. */
    assert_string_equal(complete("describe _", &f, b, sizeof(b)), "__consumer_offsets");
    assert_string_equal(complete("group ", &f, b, sizeof(b)), "audit billing");
    assert_string_equal(complete("reset b", &f, b, sizeof(b)), "billing");
    assert_string_equal(complete("reset billing --topic pa", &f, b, sizeof(b)), "payments");
    /* A quoted word completes on its unquoted text. */
    assert_string_equal(complete("describe 'pay", &f, b, sizeof(b)), "payments");
    assert_true(f.asked > 0);
}

static void test_completion_offers_options_and_their_values(void **state)
{
    fake_names f = names();
    char b[1024];
    assert_string_equal(complete("create t --i", &f, b, sizeof(b)), "--if-not-exists");
    assert_string_equal(complete("create t --", &f, b, sizeof(b)),
                        "--config --if-not-exists --json --partitions --replication-factor");
    assert_string_equal(complete("sub orders -", &f, b, sizeof(b)),
                        "--exit --json --latest-per-key --partition -e -p");
    assert_string_equal(complete("create t -c ret", &f, b, sizeof(b)),
                        "retention.bytes= retention.ms=");
    assert_string_equal(complete("alter t --config=seg", &f, b, sizeof(b)),
                        "--config=segment.bytes= --config=segment.ms=");
    assert_string_equal(complete("alter t -c flush.mode=", &f, b, sizeof(b)),
                        "flush.mode=group flush.mode=never flush.mode=periodic");
    assert_string_equal(complete("alter t --delete-config retention.m", &f, b, sizeof(b)),
                        "retention.ms");
    /* Broker settings are not topic settings. */
    assert_string_equal(complete("create t -c listen", &f, b, sizeof(b)), "");
    /* After "--" a dash word is an argument. */
    assert_string_equal(complete("pub t -- -", &f, b, sizeof(b)), "");
}

static void test_completion_knows_keywords_settings_and_help(void **state)
{
    fake_names f = names();
    char b[512];
    assert_string_equal(complete("sub orders ", &f, b, sizeof(b)), "count from");
    assert_string_equal(complete("sub orders from ", &f, b, sizeof(b)), "beginning end");
    assert_string_equal(complete("sub orders from -5 ", &f, b, sizeof(b)), "count");
    assert_string_equal(complete("sub orders count 3 ", &f, b, sizeof(b)), "from");
    assert_string_equal(complete("sub orders -p 1 ", &f, b, sizeof(b)), "count from");
    assert_string_equal(complete("set ", &f, b, sizeof(b)), "acks format partition record-format");
    assert_string_equal(complete("set format ", &f, b, sizeof(b)), "json text");
    assert_string_equal(complete("set acks a", &f, b, sizeof(b)), "all");
    assert_string_equal(complete("help pu", &f, b, sizeof(b)), "pub");
    assert_string_equal(complete("help pub ", &f, b, sizeof(b)), "");
}

/* ---- a session ---------------------------------------------------------------------------- */

typedef struct capture {
    stream_buf out;  /* what commands wrote */
    char last[1024]; /* the last message */
    int kinds[3];    /* messages by kind */
} capture;

static int cap_write(void *arg, const void *p, size_t len)
{
    capture *c = arg;
    stream_buf_put(&c->out, p, len);
    return 0;
}

static void cap_message(void *arg, stream_shell_msg_kind kind, const char *text)
{
    capture *c = arg;
    c->kinds[kind]++;
    snprintf(c->last, sizeof(c->last), "%s", text);
}

static stream_shell *session(capture *c, const char *brokers)
{
    memset(c, 0, sizeof(*c));
    stream_buf_init(&c->out);
    stream_shell_conf conf = {.brokers = brokers,
                              .connect_timeout_ms = 1000,
                              .request_timeout_ms = 1000,
                              .names_ttl_ms = 60000,
                              .names_timeout_ms = 300,
                              .write = cap_write,
                              .message = cap_message,
                              .arg = c};
    stream_shell *sh;
    char err[256];
    assert_int_equal(stream_shell_new(&conf, &sh, err, sizeof(err)), 0);
    return sh;
}

static const char *output(capture *c)
{
    stream_buf_put_u8(&c->out, 0);
    c->out.len--;
    return (const char *)c->out.data;
}

static void test_session_needs_callbacks_and_a_valid_broker_list(void **state)
{
    stream_shell_conf conf = {0};
    stream_shell *sh;
    char err[256];
    assert_int_equal(stream_shell_new(&conf, &sh, err, sizeof(err)), STREAM_EINVAL);
    capture c = {0};
    conf = (stream_shell_conf){
        .brokers = "127.0.0.1:notaport", .write = cap_write, .message = cap_message, .arg = &c};
    assert_int_equal(stream_shell_new(&conf, &sh, err, sizeof(err)), STREAM_EINVAL);
    assert_null(sh);
}

static void test_session_settings_and_help_need_no_broker(void **state)
{
    capture c;
    stream_shell *sh = session(&c, "127.0.0.1:1");
    assert_int_equal(stream_shell_run_line(sh, "set acks 1; set partition 2", false), 0);
    assert_int_equal(stream_shell_run_line(sh, "set record-format '%k %v\\n'; set", false), 0);
    assert_string_equal(output(&c), "SETTING        VALUE\n"
                                    "format         text\n"
                                    "record-format  %k %v\\n\n"
                                    "acks           1\n"
                                    "partition      2\n");
    stream_buf_reset(&c.out);
    assert_int_equal(stream_shell_run_line(sh, "set format json; set", false), 0);
    assert_string_equal(output(&c), "{\"format\":\"json\",\"record-format\":\"%k %v\\\\n\","
                                    "\"acks\":\"1\",\"partition\":\"2\"}\n");
    stream_buf_reset(&c.out);
    assert_int_equal(stream_shell_run_line(sh, "set acks", false), 0);
    assert_string_equal(output(&c), "1\n");
    /* Bad values are usage errors that change nothing. */
    assert_int_equal(stream_shell_run_line(sh, "set acks 7", false), STREAM_STATUS_USAGE);
    assert_int_equal(stream_shell_run_line(sh, "set record-format '%x'", false),
                     STREAM_STATUS_USAGE);
    assert_non_null(strstr(c.last, "%x"));
    assert_int_equal(stream_shell_run_line(sh, "set colour blue", false), STREAM_STATUS_USAGE);
    stream_buf_reset(&c.out);
    assert_int_equal(stream_shell_run_line(sh, "help quit", false), 0);
    assert_non_null(strstr(output(&c), "Usage: quit"));
    assert_false(stream_shell_quit_requested(sh));
    assert_int_equal(stream_shell_run_line(sh, "exit", false), 0);
    assert_true(stream_shell_quit_requested(sh));
    stream_shell_free(sh);
    stream_buf_release(&c.out);
}

static void test_a_failing_command_stops_the_line_unless_keep_going(void **state)
{
    capture c;
    stream_shell *sh = session(&c, "127.0.0.1:1");
    assert_int_equal(stream_shell_run_line(sh, "frob; help quit", false), STREAM_STATUS_USAGE);
    assert_string_equal(c.last, "unknown command 'frob' (help lists the commands)");
    assert_string_equal(output(&c), "");
    assert_int_equal(stream_shell_run_line(sh, "frob; help quit", true), STREAM_STATUS_USAGE);
    assert_non_null(strstr(output(&c), "Usage: quit"));
    /* A line that does not parse runs nothing. */
    assert_int_equal(stream_shell_run_line(sh, "quit; pub t 'x", true), STREAM_STATUS_USAGE);
    assert_false(stream_shell_quit_requested(sh));
    /* Arguments are checked before any broker is needed. */
    assert_int_equal(stream_shell_run_line(sh, "describe", false), STREAM_STATUS_USAGE);
    assert_int_equal(stream_shell_run_line(sh, "create t -c nope=1", false), STREAM_STATUS_USAGE);
    assert_non_null(strstr(c.last, "topic settings:"));
    assert_int_equal(stream_shell_run_line(sh, "sub t count 0", false), STREAM_STATUS_USAGE);
    assert_int_equal(stream_shell_run_line(sh, "sub t from nowhere", false), STREAM_STATUS_USAGE);
    stream_shell_free(sh);
    stream_buf_release(&c.out);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_a_dead_broker_fails_commands_and_never_stalls_completion(void **state)
{
    capture c;
    stream_shell *sh = session(&c, "127.0.0.1:1");
    assert_int_not_equal(stream_shell_connect(sh), 0);
    assert_int_equal(c.kinds[STREAM_SHELL_WARNING], 1);
    assert_false(stream_shell_connected(sh));
    assert_string_equal(stream_shell_broker(sh), "127.0.0.1:1");
    assert_int_equal(stream_shell_run_line(sh, "topics", false), STREAM_STATUS_FAIL);
    assert_string_equal(c.last, "cannot connect to 127.0.0.1:1: connection refused "
                                "(is stream-broker running?)");
    /* Completion of names: bounded by names_timeout_ms, and a failed
     * refresh is not retried before the TTL. */
    stream_shell_candidates cand;
    int64_t t0 = now_ms();
    assert_int_equal(stream_shell_complete(sh, "describe o", 10, &cand), 0);
    assert_int_equal(cand.count, 0);
    stream_shell_candidates_release(&cand);
    int64_t t1 = now_ms();
    assert_int_equal(stream_shell_complete(sh, "describe o", 10, &cand), 0);
    stream_shell_candidates_release(&cand);
    int64_t t2 = now_ms();
    assert_true(t1 - t0 < 2000);
    assert_true(t2 - t1 < 50);
    assert_string_equal(output(&c), "");
    stream_shell_free(sh);
    stream_buf_release(&c.out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_words_split_at_blanks_and_commands_at_semicolons),
        cmocka_unit_test(test_quotes_and_escapes_follow_sh),
        cmocka_unit_test(test_hash_at_a_word_start_is_a_comment),
        cmocka_unit_test(test_unterminated_quotes_and_trailing_backslash_are_errors),
        cmocka_unit_test(test_partial_parse_says_where_the_text_ends),
        cmocka_unit_test(test_options_may_come_anywhere_and_dashdash_ends_them),
        cmocka_unit_test(test_bad_options_name_the_problem),
        cmocka_unit_test(test_every_command_is_documented_and_found_by_name),
        cmocka_unit_test(test_completion_offers_commands_at_a_command_start),
        cmocka_unit_test(test_completion_offers_topic_and_group_names_from_the_cache),
        cmocka_unit_test(test_completion_offers_options_and_their_values),
        cmocka_unit_test(test_completion_knows_keywords_settings_and_help),
        cmocka_unit_test(test_session_needs_callbacks_and_a_valid_broker_list),
        cmocka_unit_test(test_session_settings_and_help_need_no_broker),
        cmocka_unit_test(test_a_failing_command_stops_the_line_unless_keep_going),
        cmocka_unit_test(test_a_dead_broker_fails_commands_and_never_stalls_completion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
