/*
 * test_cli.c - the programs' shared helpers (libstream/tools/cli.c): the input
 * splitter's record boundaries, option values, output errors, and the
 * connect message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stream/cli.h"
#include "stream/error.h"

/* A pipe whose write end the test feeds and whose read end the splitter reads. */
typedef struct feed {
    int rd, wr;
} feed;

static void feed_open(feed *f)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    f->rd = fds[0];
    f->wr = fds[1];
}

static void feed_write(feed *f, const void *p, size_t n)
{
    assert_int_equal(write(f->wr, p, n), (ssize_t)n);
}

static void feed_close(feed *f)
{
    if (f->wr >= 0)
        close(f->wr);
    f->wr = -1;
}

/* Collects every record of the splitter as "[rec]" into out, reading the
 * pipe until EOF; returns the last next() code (0 at a clean end). */
static int drain(stream_cli_splitter *s, int fd, char *out, size_t out_len)
{
    char err[256];
    size_t used = 0;
    out[0] = '\0';
    for (;;) {
        const uint8_t *rec;
        size_t len;
        int rc;
        while ((rc = stream_cli_splitter_next(s, &rec, &len, err, sizeof(err))) == 1) {
            int n = snprintf(out + used, out_len - used, "[%.*s]", (int)len, (const char *)rec);
            used += (size_t)n;
        }
        if (rc < 0 || s->eof)
            return rc;
        int n = stream_cli_splitter_fill(s, fd, err, sizeof(err));
        assert_true(n >= 0 || n == STREAM_EAGAIN);
    }
}

static void test_splitter_final_line_without_delimiter_is_a_record(void **state)
{
    feed f;
    feed_open(&f);
    feed_write(&f, "a\nbb\nccc", 8);
    feed_close(&f);
    stream_cli_splitter s;
    stream_cli_splitter_init(&s, "\n", 1, 0);
    char out[128];
    assert_int_equal(drain(&s, f.rd, out, sizeof(out)), 0);
    assert_string_equal(out, "[a][bb][ccc]");
    assert_int_equal(s.records, 3);
    stream_cli_splitter_release(&s);
    close(f.rd);
}

/* space/commit/end: bytes from anywhere (an HTTP body), a byte at a time,
 * split as fill would split them; a record over the limit still fails. */
static void test_splitter_takes_bytes_without_a_descriptor(void **state)
{
    static const char in[] = "a::bb::::ccc";
    stream_cli_splitter s;
    stream_cli_splitter_init(&s, "::", 2, 4);
    char out[128] = "", err[128];
    size_t o = 0;
    const uint8_t *rec;
    size_t len;
    int rc = 0;
    for (size_t i = 0; i < sizeof in - 1; i++) {
        uint8_t *room;
        size_t cap;
        assert_int_equal(stream_cli_splitter_space(&s, &room, &cap), 0);
        assert_true(cap > 0);
        room[0] = (uint8_t)in[i];
        stream_cli_splitter_commit(&s, 1);
        while ((rc = stream_cli_splitter_next(&s, &rec, &len, err, sizeof err)) == 1)
            o += (size_t)snprintf(out + o, sizeof out - o, "[%.*s]", (int)len, rec);
        assert_int_equal(rc, 0);
    }
    stream_cli_splitter_end(&s);
    assert_true(s.eof);
    while ((rc = stream_cli_splitter_next(&s, &rec, &len, err, sizeof err)) == 1)
        o += (size_t)snprintf(out + o, sizeof out - o, "[%.*s]", (int)len, rec);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "[a][bb][][ccc]");
    stream_cli_splitter_release(&s);

    stream_cli_splitter_init(&s, "\n", 1, 4);
    uint8_t *room;
    size_t cap;
    assert_int_equal(stream_cli_splitter_space(&s, &room, &cap), 0);
    memcpy(room, "toolong", 7);
    stream_cli_splitter_commit(&s, 7);
    assert_int_equal(stream_cli_splitter_next(&s, &rec, &len, err, sizeof err), STREAM_ETOOLARGE);
    stream_cli_splitter_release(&s);
}

static void test_splitter_keeps_empty_records_and_no_extra_at_end(void **state)
{
    feed f;
    feed_open(&f);
    feed_write(&f, "\na\n\nb\n", 6);
    feed_close(&f);
    stream_cli_splitter s;
    stream_cli_splitter_init(&s, "\n", 1, 0);
    char out[128];
    assert_int_equal(drain(&s, f.rd, out, sizeof(out)), 0);
    assert_string_equal(out, "[][a][][b]");
    stream_cli_splitter_release(&s);
    close(f.rd);
}

static void test_splitter_empty_input_has_no_records(void **state)
{
    feed f;
    feed_open(&f);
    feed_close(&f);
    stream_cli_splitter s;
    stream_cli_splitter_init(&s, "\n", 1, 0);
    char out[16];
    assert_int_equal(drain(&s, f.rd, out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(s.records, 0);
    stream_cli_splitter_release(&s);
    close(f.rd);
}

static void test_splitter_finds_multibyte_delimiter_split_across_reads(void **state)
{
    feed f;
    feed_open(&f);
    stream_cli_splitter s;
    stream_cli_splitter_init(&s, "<=>", 3, 0);
    char err[128];
    const uint8_t *rec;
    size_t len;
    /* "one<" then "=>two<=" then ">three": each delimiter is cut by a read */
    feed_write(&f, "one<", 4);
    assert_int_equal(stream_cli_splitter_fill(&s, f.rd, err, sizeof(err)), 4);
    assert_int_equal(stream_cli_splitter_next(&s, &rec, &len, err, sizeof(err)), 0);
    feed_write(&f, "=>two<=", 7);
    assert_int_equal(stream_cli_splitter_fill(&s, f.rd, err, sizeof(err)), 7);
    assert_int_equal(stream_cli_splitter_next(&s, &rec, &len, err, sizeof(err)), 1);
    assert_int_equal(len, 3);
    assert_memory_equal(rec, "one", 3);
    assert_int_equal(stream_cli_splitter_next(&s, &rec, &len, err, sizeof(err)), 0);
    feed_write(&f, ">three", 6);
    feed_close(&f);
    char out[64];
    assert_int_equal(drain(&s, f.rd, out, sizeof(out)), 0);
    assert_string_equal(out, "[two][three]");
    stream_cli_splitter_release(&s);
    close(f.rd);
}

static void test_splitter_nul_delimiter_and_binary_bytes(void **state)
{
    feed f;
    feed_open(&f);
    feed_write(&f, "a\nb\0\xff\0", 6);
    feed_close(&f);
    stream_cli_splitter s;
    stream_cli_splitter_init(&s, "\0", 1, 0);
    char err[128];
    const uint8_t *rec;
    size_t len;
    while (!s.eof)
        assert_true(stream_cli_splitter_fill(&s, f.rd, err, sizeof(err)) >= 0);
    assert_int_equal(stream_cli_splitter_next(&s, &rec, &len, err, sizeof(err)), 1);
    assert_int_equal(len, 3);
    assert_memory_equal(rec, "a\nb", 3);
    assert_int_equal(stream_cli_splitter_next(&s, &rec, &len, err, sizeof(err)), 1);
    assert_int_equal(len, 1);
    assert_int_equal(rec[0], 0xff);
    assert_int_equal(stream_cli_splitter_next(&s, &rec, &len, err, sizeof(err)), 0);
    stream_cli_splitter_release(&s);
    close(f.rd);
}

static void test_splitter_whole_input_is_one_record_even_when_empty(void **state)
{
    feed f;
    feed_open(&f);
    feed_write(&f, "x\ny\n", 4);
    feed_close(&f);
    stream_cli_splitter s;
    stream_cli_splitter_init(&s, NULL, 0, 0);
    char out[64];
    assert_int_equal(drain(&s, f.rd, out, sizeof(out)), 0);
    assert_string_equal(out, "[x\ny\n]");
    stream_cli_splitter_release(&s);
    close(f.rd);

    feed_open(&f);
    feed_close(&f);
    stream_cli_splitter_init(&s, NULL, 0, 0);
    assert_int_equal(drain(&s, f.rd, out, sizeof(out)), 0);
    assert_string_equal(out, "[]");
    assert_int_equal(s.records, 1);
    stream_cli_splitter_release(&s);
    close(f.rd);
}

static void test_splitter_grows_for_a_record_longer_than_its_buffer(void **state)
{
    /* 3 MiB in a file (a pipe would need a writer thread), then "\nend". */
    char path[] = "/tmp/test_cli_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    size_t big = 3 * STREAM_CLI_SPLITTER_CHUNK;
    char *blob = malloc(big);
    assert_non_null(blob);
    memset(blob, 'z', big);
    assert_int_equal(write(fd, blob, big), (ssize_t)big);
    assert_int_equal(write(fd, "\nend", 4), 4);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    stream_cli_splitter s;
    stream_cli_splitter_init(&s, "\n", 1, 0);
    char err[128];
    const uint8_t *rec;
    size_t len;
    int rc;
    while ((rc = stream_cli_splitter_next(&s, &rec, &len, err, sizeof(err))) == 0 && !s.eof)
        assert_true(stream_cli_splitter_fill(&s, fd, err, sizeof(err)) >= 0);
    assert_int_equal(rc, 1);
    assert_int_equal(len, big);
    assert_memory_equal(rec, blob, big);
    while ((rc = stream_cli_splitter_next(&s, &rec, &len, err, sizeof(err))) == 0 && !s.eof)
        assert_true(stream_cli_splitter_fill(&s, fd, err, sizeof(err)) >= 0);
    assert_int_equal(rc, 1);
    assert_int_equal(len, 3);
    assert_memory_equal(rec, "end", 3);
    stream_cli_splitter_release(&s);
    free(blob);
    close(fd);
}

static void test_splitter_record_over_limit_is_a_sticky_error(void **state)
{
    feed f;
    feed_open(&f);
    feed_write(&f, "ok\n0123456789abc\nlater\n", 23);
    feed_close(&f);
    stream_cli_splitter s;
    stream_cli_splitter_init(&s, "\n", 1, 10);
    char out[64];
    char err[128];
    assert_int_equal(drain(&s, f.rd, out, sizeof(out)), STREAM_ETOOLARGE);
    assert_string_equal(out, "[ok]");
    const uint8_t *rec;
    size_t len;
    assert_int_equal(stream_cli_splitter_next(&s, &rec, &len, err, sizeof(err)), STREAM_ETOOLARGE);
    assert_string_equal(err, "record 2 is longer than 10 bytes");
    stream_cli_splitter_release(&s);
    close(f.rd);
}

static void test_splitter_unterminated_record_over_limit_fails_before_eof(void **state)
{
    /* A line with no end must not be buffered without bound. */
    feed f;
    feed_open(&f);
    char junk[4096];
    memset(junk, 'j', sizeof(junk));
    feed_write(&f, junk, sizeof(junk));
    stream_cli_splitter s;
    stream_cli_splitter_init(&s, "\n", 1, 1000);
    char err[128];
    const uint8_t *rec;
    size_t len;
    assert_int_equal(stream_cli_splitter_fill(&s, f.rd, err, sizeof(err)), (int)sizeof(junk));
    assert_int_equal(stream_cli_splitter_next(&s, &rec, &len, err, sizeof(err)), STREAM_ETOOLARGE);
    assert_false(s.eof);
    stream_cli_splitter_release(&s);
    feed_close(&f);
    close(f.rd);
}

static void test_partitions_parse_sorts_merges_and_rejects_junk(void **state)
{
    stream_cli_partitions l = {0};
    char err[256];
    assert_int_equal(stream_cli_partitions_parse(&l, "5,0,3", err, sizeof(err)), 0);
    assert_int_equal(stream_cli_partitions_parse(&l, "3", err, sizeof(err)), 0);
    assert_int_equal(stream_cli_partitions_parse(&l, "1,5", err, sizeof(err)), 0);
    assert_int_equal(l.count, 4);
    assert_int_equal(l.ids[0], 0);
    assert_int_equal(l.ids[1], 1);
    assert_int_equal(l.ids[2], 3);
    assert_int_equal(l.ids[3], 5);
    const char *bad[] = {"", "1,", ",1", "x", "-1", "+1", "1.5", "2147483648", " 1", "1,,2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(stream_cli_partitions_parse(&l, bad[i], err, sizeof(err)), STREAM_EINVAL);
        assert_non_null(strstr(err, "bad partition"));
    }
    assert_int_equal(l.count, 4);
    stream_cli_partitions_release(&l);
    assert_int_equal(l.count, 0);
}

static void test_parse_header_splits_at_first_equals(void **state)
{
    stream_header h;
    char err[128];
    assert_int_equal(stream_cli_parse_header("a=b=c", &h, err, sizeof(err)), 0);
    assert_int_equal(h.name_len, 1);
    assert_memory_equal(h.name, "a", 1);
    assert_int_equal(h.value_len, 3);
    assert_memory_equal(h.value, "b=c", 3);
    assert_int_equal(stream_cli_parse_header("empty=", &h, err, sizeof(err)), 0);
    assert_int_equal(h.value_len, 0);
    assert_non_null(h.value);
    assert_int_equal(stream_cli_parse_header("bare", &h, err, sizeof(err)), 0);
    assert_int_equal(h.name_len, 4);
    assert_int_equal(h.value_len, -1);
    assert_null(h.value);
    assert_int_equal(stream_cli_parse_header("=v", &h, err, sizeof(err)), STREAM_EINVAL);
    assert_int_equal(stream_cli_parse_header("", &h, err, sizeof(err)), STREAM_EINVAL);
}

static void test_parse_acks_accepts_kafka_spellings(void **state)
{
    int acks = 42;
    char err[128];
    assert_int_equal(stream_cli_parse_acks("0", &acks, err, sizeof(err)), 0);
    assert_int_equal(acks, 0);
    assert_int_equal(stream_cli_parse_acks("1", &acks, err, sizeof(err)), 0);
    assert_int_equal(acks, 1);
    assert_int_equal(stream_cli_parse_acks("all", &acks, err, sizeof(err)), 0);
    assert_int_equal(acks, STREAM_ACKS_ALL);
    assert_int_equal(stream_cli_parse_acks("-1", &acks, err, sizeof(err)), 0);
    assert_int_equal(acks, STREAM_ACKS_ALL);
    assert_int_equal(stream_cli_parse_acks("2", &acks, err, sizeof(err)), STREAM_EINVAL);
    assert_string_equal(err, "bad acks '2': expected 0, 1 or all");
}

static void test_split_key_at_first_delimiter_only(void **state)
{
    const uint8_t *k, *v;
    size_t kl, vl;
    const uint8_t line[] = "k::v::w";
    assert_true(stream_cli_split_key(line, 7, (const uint8_t *)"::", 2, &k, &kl, &v, &vl));
    assert_int_equal(kl, 1);
    assert_int_equal(vl, 4);
    assert_memory_equal(v, "v::w", 4);
    assert_true(stream_cli_split_key(line, 3, (const uint8_t *)"::", 2, &k, &kl, &v, &vl));
    assert_int_equal(kl, 1);
    assert_int_equal(vl, 0);
    assert_false(stream_cli_split_key(line, 2, (const uint8_t *)"::", 2, &k, &kl, &v, &vl));
    assert_false(stream_cli_split_key(line, 7, (const uint8_t *)"|", 1, &k, &kl, &v, &vl));
}

static void test_write_all_reports_a_gone_reader_as_closed(void **state)
{
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    close(fds[0]);
    char err[128] = "";
    assert_int_equal(stream_cli_write_all(fds[1], "x", 1, err, sizeof(err)), STREAM_ECLOSED);
    close(fds[1]);
    signal(SIGPIPE, old);
}

static void test_write_all_reports_a_full_disk(void **state)
{
    int fd = open("/dev/full", O_WRONLY);
    if (fd < 0)
        skip();
    char err[128] = "";
    assert_int_equal(stream_cli_write_all(fd, "x", 1, err, sizeof(err)), STREAM_ENOSPC);
    assert_non_null(strstr(err, "cannot write output: "));
    close(fd);
}

static void test_connect_refused_names_broker_and_hint(void **state)
{
    /* Port 1 (tcpmux) is not served on any machine these tests run on. */
    stream_client *c = (stream_client *)1;
    char err[512] = "";
    int rc = stream_cli_connect("127.0.0.1:1", "test", 2000, &c, err, sizeof(err));
    assert_int_equal(rc, STREAM_ECONNREFUSED);
    assert_null(c);
    assert_non_null(strstr(err, "127.0.0.1:1"));
    assert_non_null(strstr(err, "(is stream-broker running?)"));
    rc = stream_cli_connect("not a broker list", "test", 2000, &c, err, sizeof(err));
    assert_true(rc < 0);
    assert_null(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_splitter_final_line_without_delimiter_is_a_record),
        cmocka_unit_test(test_splitter_takes_bytes_without_a_descriptor),
        cmocka_unit_test(test_splitter_keeps_empty_records_and_no_extra_at_end),
        cmocka_unit_test(test_splitter_empty_input_has_no_records),
        cmocka_unit_test(test_splitter_finds_multibyte_delimiter_split_across_reads),
        cmocka_unit_test(test_splitter_nul_delimiter_and_binary_bytes),
        cmocka_unit_test(test_splitter_whole_input_is_one_record_even_when_empty),
        cmocka_unit_test(test_splitter_grows_for_a_record_longer_than_its_buffer),
        cmocka_unit_test(test_splitter_record_over_limit_is_a_sticky_error),
        cmocka_unit_test(test_splitter_unterminated_record_over_limit_fails_before_eof),
        cmocka_unit_test(test_partitions_parse_sorts_merges_and_rejects_junk),
        cmocka_unit_test(test_parse_header_splits_at_first_equals),
        cmocka_unit_test(test_parse_acks_accepts_kafka_spellings),
        cmocka_unit_test(test_split_key_at_first_delimiter_only),
        cmocka_unit_test(test_write_all_reports_a_gone_reader_as_closed),
        cmocka_unit_test(test_write_all_reports_a_full_disk),
        cmocka_unit_test(test_connect_refused_names_broker_and_hint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
