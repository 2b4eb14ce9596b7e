/*
 * test_log_replica.c - what the partition log gives replication: leader
 * epochs stamped on append, the leader-epoch cache and its checkpoint file
 * (persistence, damage, truncation, retention, OffsetForLeaderEpoch
 * answers), replica appends of a leader's bytes, and reads bounded by a
 * high watermark.
 *
 * Every test works on real files in its own mkdtemp directory. A fixture
 * has a leader log and a follower log; the follower is fed the leader's
 * stored bytes, as a fetcher would.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/leader_epoch.h"
#include "stream/batch.h"
#include "stream/error.h"
#include "stream/log.h"

/* ---- fixtures --------------------------------------------------------------- */

typedef struct fixture {
    char dir[64];   /* the temp directory */
    char ldir[128]; /* dir/leader-0 */
    char fdir[128]; /* dir/follower-0 */
    stream_log_config cfg;
    stream_log *leader;
    stream_log *follower;
    int tag; /* batches built so far, for distinct contents */
} fixture;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    strcpy(f->dir, "/tmp/test_log_replica.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->ldir, sizeof f->ldir, "%s/leader-0", f->dir);
    snprintf(f->fdir, sizeof f->fdir, "%s/follower-0", f->dir);
    stream_log_config_init(&f->cfg);
    f->cfg.segment_bytes = 2048;
    f->cfg.index_interval_bytes = 256;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    stream_log_close(f->leader);
    stream_log_close(f->follower);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static stream_log *open_dir(fixture *f, const char *dir, stream_log_recovery *rec)
{
    stream_log *log;
    char err[256] = "";
    int rc = stream_log_open(dir, &f->cfg, &log, rec, err, sizeof err);
    if (rc != 0)
        fail_msg("open %s: %s: %s", dir, stream_strerror(rc), err);
    return log;
}

static void reopen_leader(fixture *f, stream_log_recovery *rec)
{
    stream_log_close(f->leader);
    f->leader = open_dir(f, f->ldir, rec);
}

/* A batch of n records (producer fields when pid >= 0) in a malloc'd buffer. */
static uint8_t *build(fixture *f, int n, int64_t pid, int32_t seq, size_t *len)
{
    stream_batch_builder b;
    stream_batch_builder_init(&b);
    for (int i = 0; i < n; i++) {
        char value[64];
        int vl = snprintf(value, sizeof value, "record %d of batch %d", i, f->tag);
        assert_int_equal(stream_batch_builder_append(&b, 1700000000000LL + f->tag * 10 + i, "k", 1,
                                                     value, vl, NULL, 0),
                         0);
    }
    if (pid >= 0)
        assert_int_equal(stream_batch_builder_set_producer(&b, pid, 0, seq), 0);
    const uint8_t *p;
    assert_int_equal(stream_batch_builder_finish(&b, &p, len), 0);
    uint8_t *copy = malloc(*len);
    assert_non_null(copy);
    memcpy(copy, p, *len);
    stream_batch_builder_release(&b);
    f->tag++;
    return copy;
}

/* Appends a batch of n records to log; returns its base offset. */
static int64_t append_to(fixture *f, stream_log *log, int n)
{
    size_t len;
    uint8_t *p = build(f, n, -1, -1, &len);
    int64_t base = -1;
    char err[256] = "";
    int rc = stream_log_append(log, p, len, &base, err, sizeof err);
    if (rc != 0)
        fail_msg("append: %s: %s", stream_strerror(rc), err);
    free(p);
    return base;
}

/* The stored bytes of log from offset `from` (a batch start) to the end. */
static void read_all(stream_log *log, int64_t from, stream_buf *out)
{
    stream_buf_reset(out);
    int64_t off = from, end = stream_log_end_offset(log);
    while (off < end) {
        size_t before = out->len;
        int rc = stream_log_read_copy(log, off, 1 << 20, out);
        if (rc != 0)
            fail_msg("read_copy at %" PRId64 ": %s", off, stream_strerror(rc));
        assert_true(out->len > before);
        /* Continue after the last batch read. */
        size_t at = before;
        while (at < out->len) {
            stream_batch_info info;
            assert_int_equal(stream_batch_header_decode(out->data + at, out->len - at, &info), 0);
            off = info.base_offset + info.last_offset_delta + 1;
            at += info.size;
        }
    }
}

/* Header of the batch holding offset. */
static stream_batch_info header_at(stream_log *log, int64_t offset)
{
    stream_buf b = STREAM_BUF_INIT;
    assert_int_equal(stream_log_read_copy(log, offset, 1, &b), 0);
    stream_batch_info info;
    assert_int_equal(stream_batch_header_decode(b.data, b.len, &info), 0);
    stream_buf_release(&b);
    return info;
}

/* Splits buf into its batches: starts[i] positions, n returned. */
static int split(const stream_buf *buf, size_t *starts, int max)
{
    int n = 0;
    for (size_t at = 0; at < buf->len && n < max;) {
        stream_batch_info info;
        assert_int_equal(stream_batch_header_decode(buf->data + at, buf->len - at, &info), 0);
        starts[n++] = at;
        at += info.size;
    }
    return n;
}

/* Feeds the follower everything the leader has past the follower's end. */
static void catch_up(fixture *f)
{
    stream_buf buf = STREAM_BUF_INIT;
    read_all(f->leader, stream_log_end_offset(f->follower), &buf);
    int64_t end = -1;
    char err[256] = "";
    int rc = stream_log_append_replica(f->follower, buf.data, buf.len, &end, err, sizeof err);
    if (rc != 0)
        fail_msg("append_replica: %s: %s", stream_strerror(rc), err);
    assert_int_equal(end, stream_log_end_offset(f->leader));
    stream_buf_release(&buf);
}

static void file_path(const char *dir, const char *name, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s", dir, name);
}

static void write_text(const char *dir, const char *name, const void *p, size_t len)
{
    char path[256];
    file_path(dir, name, path, sizeof path);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(p, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

/* The checkpoint's text into buf (NUL-terminated); false when missing. */
static bool read_checkpoint(const char *dir, char *buf, size_t n)
{
    char path[256];
    file_path(dir, "leader-epoch-checkpoint", path, sizeof path);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return false;
    size_t got = fread(buf, 1, n - 1, fp);
    buf[got] = '\0';
    fclose(fp);
    return true;
}

static void assert_end_for(stream_log *log, int32_t epoch, int32_t want_epoch, int64_t want_end)
{
    int32_t found = -2;
    int64_t end = -2;
    assert_int_equal(stream_log_epoch_end_offset(log, epoch, &found, &end), 0);
    if (found != want_epoch || end != want_end)
        fail_msg("epoch %d: got (%d, %" PRId64 "), want (%d, %" PRId64 ")", epoch, found, end,
                 want_epoch, want_end);
}

/* A leader with epochs 1 at 0, 3 at 9, 6 at 21 and end 30 (batches of 3). */
static void three_epochs(fixture *f)
{
    f->leader = open_dir(f, f->ldir, NULL);
    stream_log_set_leader_epoch(f->leader, 1);
    for (int i = 0; i < 3; i++)
        append_to(f, f->leader, 3);
    stream_log_set_leader_epoch(f->leader, 3);
    for (int i = 0; i < 4; i++)
        append_to(f, f->leader, 3);
    stream_log_set_leader_epoch(f->leader, 6);
    for (int i = 0; i < 3; i++)
        append_to(f, f->leader, 3);
    assert_int_equal(stream_log_end_offset(f->leader), 30);
}

#define THREE_EPOCHS_TEXT "0\n3\n1 0\n3 9\n6 21\n"

static void assert_three_epochs(stream_log *log)
{
    assert_int_equal(stream_log_latest_epoch(log), 6);
    assert_end_for(log, 1, 1, 9);
    assert_end_for(log, 3, 3, 21);
    assert_end_for(log, 6, 6, stream_log_end_offset(log));
}

/* ---- stamping ------------------------------------------------------------------ */

static void test_append_without_epoch_stamps_nothing(void **state)
{
    fixture *f = *state;
    f->leader = open_dir(f, f->ldir, NULL);
    size_t len;
    uint8_t *p = build(f, 2, -1, -1, &len);
    stream_batch_set_leader_epoch(p, 77); /* what some producer sent */
    int64_t base;
    assert_int_equal(stream_log_append(f->leader, p, len, &base, NULL, 0), 0);
    free(p);
    assert_int_equal(header_at(f->leader, 0).partition_leader_epoch, 77);
    assert_int_equal(stream_log_latest_epoch(f->leader), -1);
    assert_end_for(f->leader, 77, -1, -1);
    char text[64];
    assert_false(read_checkpoint(f->ldir, text, sizeof text));
    /* A negative epoch turns stamping off again. */
    stream_log_set_leader_epoch(f->leader, 2);
    append_to(f, f->leader, 1);
    stream_log_set_leader_epoch(f->leader, -5);
    p = build(f, 1, -1, -1, &len);
    stream_batch_set_leader_epoch(p, 40);
    assert_int_equal(stream_log_append(f->leader, p, len, &base, NULL, 0), 0);
    free(p);
    assert_int_equal(header_at(f->leader, base).partition_leader_epoch, 40);
    assert_int_equal(stream_log_latest_epoch(f->leader), 2);
}

static void test_append_stamps_epoch_and_records_its_first_offset(void **state)
{
    fixture *f = *state;
    f->leader = open_dir(f, f->ldir, NULL);
    append_to(f, f->leader, 2); /* before any epoch: offsets 0..1 */
    stream_log_set_leader_epoch(f->leader, 3);
    /* Setting records nothing until a batch is appended under it. */
    assert_int_equal(stream_log_latest_epoch(f->leader), -1);
    assert_int_equal(append_to(f, f->leader, 3), 2);
    assert_int_equal(append_to(f, f->leader, 1), 5);
    assert_int_equal(header_at(f->leader, 2).partition_leader_epoch, 3);
    assert_int_equal(header_at(f->leader, 5).partition_leader_epoch, 3);
    assert_int_equal(header_at(f->leader, 0).partition_leader_epoch, -1);
    assert_int_equal(stream_log_latest_epoch(f->leader), 3);
    char text[128];
    assert_true(read_checkpoint(f->ldir, text, sizeof text));
    assert_string_equal(text, "0\n1\n3 2\n");

    stream_log_set_leader_epoch(f->leader, 5);
    assert_int_equal(append_to(f, f->leader, 2), 6);
    assert_true(read_checkpoint(f->ldir, text, sizeof text));
    assert_string_equal(text, "0\n2\n3 2\n5 6\n");
    /* An older epoch is stamped but starts no entry. */
    stream_log_set_leader_epoch(f->leader, 4);
    int64_t base = append_to(f, f->leader, 1);
    assert_int_equal(header_at(f->leader, base).partition_leader_epoch, 4);
    assert_int_equal(stream_log_latest_epoch(f->leader), 5);
    assert_true(read_checkpoint(f->ldir, text, sizeof text));
    assert_string_equal(text, "0\n2\n3 2\n5 6\n");
    /* Stamped bytes still pass the CRC (the epoch is outside it). */
    stream_buf buf = STREAM_BUF_INIT;
    read_all(f->leader, 0, &buf);
    size_t starts[16];
    int n = split(&buf, starts, 16);
    assert_int_equal(n, 5);
    for (int i = 0; i < n; i++) {
        stream_batch_info info;
        assert_int_equal(
            stream_batch_check(buf.data + starts[i], buf.len - starts[i], &info, NULL, 0), 0);
    }
    stream_buf_release(&buf);
}

static void test_new_epoch_append_fails_when_checkpoint_cannot_be_written(void **state)
{
    fixture *f = *state;
    f->leader = open_dir(f, f->ldir, NULL);
    stream_log_set_leader_epoch(f->leader, 1);
    append_to(f, f->leader, 2);
    /* A directory where the temp file goes: its open fails (EISDIR). */
    char tmp[256];
    file_path(f->ldir, "leader-epoch-checkpoint.tmp", tmp, sizeof tmp);
    assert_int_equal(mkdir(tmp, 0755), 0);
    stream_log_set_leader_epoch(f->leader, 2);
    size_t len;
    uint8_t *p = build(f, 2, -1, -1, &len);
    int64_t base = -1;
    char err[256] = "";
    int rc = stream_log_append(f->leader, p, len, &base, err, sizeof err);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(err, "leader-epoch-checkpoint"));
    assert_int_equal(stream_log_end_offset(f->leader), 2);
    assert_int_equal(stream_log_latest_epoch(f->leader), 1);
    char text[128];
    assert_true(read_checkpoint(f->ldir, text, sizeof text));
    assert_string_equal(text, "0\n1\n1 0\n");
    /* Once the file can be written the same append goes through. */
    assert_int_equal(rmdir(tmp), 0);
    assert_int_equal(stream_log_append(f->leader, p, len, &base, err, sizeof err), 0);
    free(p);
    assert_int_equal(base, 2);
    assert_int_equal(stream_log_latest_epoch(f->leader), 2);
    assert_true(read_checkpoint(f->ldir, text, sizeof text));
    assert_string_equal(text, "0\n2\n1 0\n2 2\n");
}

/* ---- OffsetForLeaderEpoch ------------------------------------------------------ */

static void test_epoch_end_offset_exact_between_older_latest(void **state)
{
    fixture *f = *state;
    f->leader = open_dir(f, f->ldir, NULL);
    /* Empty cache, empty log: UNDEFINED. */
    assert_end_for(f->leader, 0, -1, -1);
    assert_end_for(f->leader, 5, -1, -1);
    stream_log_close(f->leader);
    f->leader = NULL;
    three_epochs(f);
    assert_end_for(f->leader, 1, 1, 9);   /* exact */
    assert_end_for(f->leader, 3, 3, 21);  /* exact */
    assert_end_for(f->leader, 2, 1, 9);   /* between: the epoch before it */
    assert_end_for(f->leader, 5, 3, 21);  /* between */
    assert_end_for(f->leader, 6, 6, 30);  /* latest: the log end */
    assert_end_for(f->leader, 9, 6, 30);  /* newer than all: the latest */
    assert_end_for(f->leader, 0, -1, -1); /* older than all */
    assert_end_for(f->leader, -1, -1, -1);
    append_to(f, f->leader, 2);
    assert_end_for(f->leader, 6, 6, 32); /* the latest follows the end */
}

/* The cache on its own (libstream/log/leader_epoch.h). */
static void test_epoch_cache_keeps_strict_order(void **state)
{
    (void)state;
    stream__epoch_cache c;
    stream__epoch_cache_init(&c);
    int32_t found;
    int64_t end;
    stream__epoch_cache_end_offset(&c, 3, 50, &found, &end);
    assert_int_equal(found, -1);
    assert_int_equal(end, -1);
    assert_int_equal(stream__epoch_cache_assign(&c, -1, 0), 0); /* no epoch */
    assert_int_equal(stream__epoch_cache_assign(&c, 2, 0), 1);
    assert_int_equal(stream__epoch_cache_assign(&c, 2, 5), 0); /* not newer */
    assert_int_equal(stream__epoch_cache_assign(&c, 1, 5), 0);
    assert_int_equal(stream__epoch_cache_assign(&c, 4, 10), 1);
    assert_int_equal(stream__epoch_cache_assign(&c, 5, 20), 1);
    /* A newer epoch at or below later starts replaces them (Kafka's rule:
     * those entries describe batches that are gone). */
    assert_int_equal(stream__epoch_cache_assign(&c, 7, 10), 1);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.entries[1].epoch, 7);
    assert_int_equal(c.entries[1].start_offset, 10);
    assert_int_equal(stream__epoch_cache_latest(&c), 7);
    /* Trims from the start keep the entry covering the new start. */
    assert_false(stream__epoch_cache_truncate_start(&c, 9));
    assert_true(stream__epoch_cache_truncate_start(&c, 10));
    assert_int_equal(c.n, 1);
    assert_false(stream__epoch_cache_truncate_start(&c, 1000));
    assert_false(stream__epoch_cache_truncate_end(&c, 11));
    assert_true(stream__epoch_cache_truncate_end(&c, 10));
    assert_int_equal(c.n, 0);
    stream_buf text = STREAM_BUF_INIT;
    assert_int_equal(stream__epoch_cache_format(&c, &text), 0);
    assert_int_equal(text.len, 4);
    assert_memory_equal(text.data, "0\n0\n", 4);
    stream_buf_release(&text);
    stream__epoch_cache_release(&c);
}

/* ---- the checkpoint across open ------------------------------------------------ */

static void test_epoch_cache_persists_across_close_and_open(void **state)
{
    fixture *f = *state;
    three_epochs(f);
    stream_log_recovery rec;
    reopen_leader(f, &rec);
    assert_true(rec.clean);
    assert_false(rec.epochs_rebuilt);
    assert_three_epochs(f->leader);
    char text[128];
    assert_true(read_checkpoint(f->ldir, text, sizeof text));
    assert_string_equal(text, THREE_EPOCHS_TEXT);
    /* After an unclean stop too. */
    char path[256];
    file_path(f->ldir, "clean-shutdown", path, sizeof path);
    stream_log_close(f->leader);
    f->leader = NULL;
    assert_int_equal(unlink(path), 0);
    f->leader = open_dir(f, f->ldir, &rec);
    assert_false(rec.clean);
    assert_false(rec.epochs_rebuilt);
    assert_three_epochs(f->leader);
    /* And appends under the latest epoch go on without a new entry. */
    stream_log_set_leader_epoch(f->leader, 6);
    append_to(f, f->leader, 1);
    assert_true(read_checkpoint(f->ldir, text, sizeof text));
    assert_string_equal(text, THREE_EPOCHS_TEXT);
}

static void test_missing_checkpoint_is_an_empty_cache(void **state)
{
    fixture *f = *state;
    three_epochs(f);
    stream_log_close(f->leader);
    f->leader = NULL;
    char path[256];
    file_path(f->ldir, "leader-epoch-checkpoint", path, sizeof path);
    assert_int_equal(unlink(path), 0);
    stream_log_recovery rec;
    f->leader = open_dir(f, f->ldir, &rec);
    assert_false(rec.epochs_rebuilt);
    assert_int_equal(stream_log_latest_epoch(f->leader), -1);
    assert_end_for(f->leader, 6, -1, -1);
    char text[64];
    assert_false(read_checkpoint(f->ldir, text, sizeof text));
}

static void test_damaged_checkpoint_is_rebuilt_from_batch_headers(void **state)
{
    fixture *f = *state;
#define S(text)                                                                                    \
    {                                                                                              \
        text, sizeof text - 1                                                                      \
    }
    static const struct {
        const char *text;
        size_t len;
    } damaged[] = {
        S(""),
        S("garbage"),
        S("0\n"),
        S("1\n3\n1 0\n3 9\n6 21\n"),          /* unknown version */
        S("0\n4\n1 0\n3 9\n6 21\n"),          /* count says more */
        S("0\n2\n1 0\n3 9\n6 21\n"),          /* bytes after the last */
        S("0\n3\n1 0\n3 09\n6 21\n"),         /* a leading zero */
        S("0\n3\n1 0\n3  9\n6 21\n"),         /* two spaces */
        S("0\n3\n1 0\n3 9\n6 21"),            /* no final newline */
        S("0\n3\n1 0\n6 9\n3 21\n"),          /* epochs not ascending */
        S("0\n3\n1 0\n3 21\n6 9\n"),          /* offsets not ascending */
        S("0\n3\n1 0\n-3 9\n6 21\n"),         /* a sign */
        S("0\n3\n1 0\n3 9\0\n6 21\n"),        /* an embedded NUL */
        S("0\n3\n1 0\n3 9\n2147483648 21\n"), /* an epoch past INT32_MAX */
        S("0\n1\n1 0\n"),                     /* well formed, but older than the batches */
        S("0\n3\n1 0\n3 10\n6 21\n"),         /* an entry on no batch start */
        S("0\n3\n1 0\n4 9\n6 21\n"),          /* an entry naming the wrong epoch */
        S("0\n3\n1 0\n3 9\n5 21\n"),          /* an entry naming the wrong epoch */
        S("0\n2\n1 0\n3 9\n"),                /* the newest batch has a newer epoch */
    };
#undef S
    three_epochs(f);
    for (size_t i = 0; i < sizeof damaged / sizeof *damaged; i++) {
        stream_log_close(f->leader);
        write_text(f->ldir, "leader-epoch-checkpoint", damaged[i].text, damaged[i].len);
        stream_log_recovery rec;
        f->leader = open_dir(f, f->ldir, &rec);
        if (!rec.epochs_rebuilt)
            fail_msg("case %zu not rebuilt", i);
        assert_three_epochs(f->leader);
        char text[128];
        assert_true(read_checkpoint(f->ldir, text, sizeof text));
        assert_string_equal(text, THREE_EPOCHS_TEXT);
    }
}

static void test_checkpoint_entry_past_the_end_is_dropped_at_open(void **state)
{
    fixture *f = *state;
    three_epochs(f);
    stream_log_close(f->leader);
    /* What a crash leaves between writing a new epoch's entry and its
     * batch: an entry at the end. */
    const char *text = THREE_EPOCHS_TEXT "9 30\n";
    char fixed[64];
    snprintf(fixed, sizeof fixed, "0\n4\n%s", text + 4);
    write_text(f->ldir, "leader-epoch-checkpoint", fixed, strlen(fixed));
    stream_log_recovery rec;
    f->leader = open_dir(f, f->ldir, &rec);
    assert_false(rec.epochs_rebuilt);
    assert_three_epochs(f->leader);
    char got[128];
    assert_true(read_checkpoint(f->ldir, got, sizeof got));
    assert_string_equal(got, THREE_EPOCHS_TEXT);
}

static void test_recovery_cutting_an_epochs_batches_drops_the_epoch(void **state)
{
    fixture *f = *state;
    three_epochs(f);
    stream_log_close(f->leader);
    f->leader = NULL;
    /* A crash tore epoch 6's first batch (offsets 21..23): recovery cuts
     * the log at 21, and the checkpoint still names epoch 6 at 21. */
    stream_log *probe = open_dir(f, f->ldir, NULL);
    stream_log_slice sl;
    assert_int_equal(stream_log_read(probe, 21, 1, &sl), 0);
    off_t torn = sl.pos + (off_t)sl.len / 2;
    stream_log_slice_release(&sl);
    stream_log_close(probe);
    char path[256];
    snprintf(path, sizeof path, "%s/%020d.log", f->ldir, 0);
    assert_int_equal(truncate(path, torn), 0);
    file_path(f->ldir, "clean-shutdown", path, sizeof path);
    assert_int_equal(unlink(path), 0);
    stream_log_recovery rec;
    f->leader = open_dir(f, f->ldir, &rec);
    assert_int_equal(rec.truncated_at, 21);
    assert_false(rec.epochs_rebuilt);
    assert_int_equal(stream_log_end_offset(f->leader), 21);
    assert_int_equal(stream_log_latest_epoch(f->leader), 3);
    assert_end_for(f->leader, 6, 3, 21);
    char text[128];
    assert_true(read_checkpoint(f->ldir, text, sizeof text));
    assert_string_equal(text, "0\n2\n1 0\n3 9\n");
}

/* ---- truncation and retention -------------------------------------------------- */

static void test_truncate_to_trims_the_epoch_cache(void **state)
{
    fixture *f = *state;
    three_epochs(f);
    char text[128];
    /* Inside epoch 6's first batch: the batch goes, and with it the epoch. */
    assert_int_equal(stream_log_truncate_to(f->leader, 22), 0);
    assert_int_equal(stream_log_end_offset(f->leader), 21);
    assert_int_equal(stream_log_latest_epoch(f->leader), 3);
    assert_end_for(f->leader, 6, 3, 21);
    assert_true(read_checkpoint(f->ldir, text, sizeof text));
    assert_string_equal(text, "0\n2\n1 0\n3 9\n");
    /* Inside epoch 3 (not its start): it stays. */
    assert_int_equal(stream_log_truncate_to(f->leader, 13), 0);
    assert_int_equal(stream_log_end_offset(f->leader), 12);
    assert_int_equal(stream_log_latest_epoch(f->leader), 3);
    assert_end_for(f->leader, 3, 3, 12);
    /* Exactly at epoch 3's start. */
    assert_int_equal(stream_log_truncate_to(f->leader, 9), 0);
    assert_int_equal(stream_log_latest_epoch(f->leader), 1);
    assert_true(read_checkpoint(f->ldir, text, sizeof text));
    assert_string_equal(text, "0\n1\n1 0\n");
    /* A new leader goes on from the cut, and it all survives a reopen. */
    stream_log_set_leader_epoch(f->leader, 7);
    assert_int_equal(append_to(f, f->leader, 2), 9);
    stream_log_recovery rec;
    reopen_leader(f, &rec);
    assert_false(rec.epochs_rebuilt);
    assert_int_equal(stream_log_latest_epoch(f->leader), 7);
    assert_end_for(f->leader, 1, 1, 9);
    assert_end_for(f->leader, 6, 1, 9);
    assert_end_for(f->leader, 7, 7, 11);
    assert_true(read_checkpoint(f->ldir, text, sizeof text));
    assert_string_equal(text, "0\n2\n1 0\n7 9\n");
}

static void test_start_moves_keep_the_entry_covering_the_start(void **state)
{
    fixture *f = *state;
    three_epochs(f);
    /* Inside epoch 3: epoch 1 is wholly below the start and goes. */
    assert_int_equal(stream_log_advance_start(f->leader, 12), 0);
    assert_end_for(f->leader, 1, -1, -1);
    assert_end_for(f->leader, 3, 3, 21);
    char text[128];
    assert_true(read_checkpoint(f->ldir, text, sizeof text));
    assert_string_equal(text, "0\n2\n3 9\n6 21\n");
    /* Inside epoch 6: epoch 3 ended at 21 and goes. */
    assert_int_equal(stream_log_advance_start(f->leader, 24), 0);
    assert_end_for(f->leader, 3, -1, -1);
    assert_end_for(f->leader, 6, 6, 30);
    /* The entry kept below the start survives a reopen (it is not checked
     * against batches that are gone). */
    stream_log_recovery rec;
    reopen_leader(f, &rec);
    assert_false(rec.epochs_rebuilt);
    assert_end_for(f->leader, 6, 6, 30);
    assert_true(read_checkpoint(f->ldir, text, sizeof text));
    assert_string_equal(text, "0\n1\n6 21\n");
}

static void test_retention_drops_epochs_of_deleted_segments(void **state)
{
    fixture *f = *state;
    f->cfg.retention_bytes = 0;
    f->leader = open_dir(f, f->ldir, NULL);
    for (int e = 1; e <= 4; e++) {
        stream_log_set_leader_epoch(f->leader, e);
        for (int i = 0; i < 12; i++)
            append_to(f, f->leader, 4);
    }
    assert_true(stream_log_segment_count(f->leader) > 4);
    assert_int_equal(stream_log_latest_epoch(f->leader), 4);
    assert_true(stream_log_apply_retention(f->leader, 0) > 0);
    int64_t start = stream_log_start_offset(f->leader);
    /* Only the active segment is left: in epoch 4, so 1..3 are gone. */
    assert_true(start > 144);
    assert_end_for(f->leader, 3, -1, -1);
    assert_end_for(f->leader, 4, 4, stream_log_end_offset(f->leader));
    char text[128];
    assert_true(read_checkpoint(f->ldir, text, sizeof text));
    assert_string_equal(text, "0\n1\n4 144\n");
}

/* ---- replica appends ----------------------------------------------------------- */

static void test_replica_append_copies_the_leaders_log(void **state)
{
    fixture *f = *state;
    three_epochs(f);
    f->follower = open_dir(f, f->fdir, NULL);
    /* Several fetches' worth, of many batches each, over segment rolls. */
    for (int round = 0; round < 4; round++) {
        stream_log_set_leader_epoch(f->leader, 7 + round);
        for (int i = 0; i < 15; i++)
            append_to(f, f->leader, 1 + (i * 3) % 7);
        catch_up(f);
    }
    assert_true(stream_log_segment_count(f->follower) > 3);
    stream_buf a = STREAM_BUF_INIT, b = STREAM_BUF_INIT;
    read_all(f->leader, 0, &a);
    read_all(f->follower, 0, &b);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    /* The epochs came with the batches. */
    assert_int_equal(stream_log_latest_epoch(f->follower), 10);
    for (int32_t e = -1; e <= 11; e++) {
        int32_t fl, ff;
        int64_t el, ef;
        stream_log_epoch_end_offset(f->leader, e, &fl, &el);
        stream_log_epoch_end_offset(f->follower, e, &ff, &ef);
        assert_int_equal(fl, ff);
        assert_int_equal(el, ef);
    }
    char tl[256], tf[256];
    assert_true(read_checkpoint(f->ldir, tl, sizeof tl));
    assert_true(read_checkpoint(f->fdir, tf, sizeof tf));
    assert_string_equal(tl, tf);
    /* Indexes work: every offset reads from the right batch, and time
     * look-ups agree. */
    int64_t end = stream_log_end_offset(f->follower);
    for (int64_t off = 0; off < end; off++) {
        stream_log_slice sa, sb;
        assert_int_equal(stream_log_read(f->leader, off, 1, &sa), 0);
        assert_int_equal(stream_log_read(f->follower, off, 1, &sb), 0);
        assert_int_equal(sa.first_offset, sb.first_offset);
        assert_int_equal(sa.len, sb.len);
        stream_log_slice_release(&sa);
        stream_log_slice_release(&sb);
    }
    for (int64_t ts = 1700000000000LL; ts < 1700000000000LL + 1000; ts += 37) {
        int64_t ol, of;
        assert_int_equal(stream_log_offset_for_time(f->leader, ts, &ol), 0);
        assert_int_equal(stream_log_offset_for_time(f->follower, ts, &of), 0);
        assert_int_equal(ol, of);
    }
    /* Durability covers replica appends as any other. */
    assert_int_equal(stream_log_flush(f->follower), 0);
    assert_int_equal(stream_log_durable_offset(f->follower), end);
    /* And it all survives a reopen. */
    stream_log_close(f->follower);
    stream_log_recovery rec;
    f->follower = open_dir(f, f->fdir, &rec);
    assert_false(rec.epochs_rebuilt);
    assert_int_equal(stream_log_end_offset(f->follower), end);
    read_all(f->follower, 0, &b);
    assert_memory_equal(a.data, b.data, a.len);
    stream_buf_release(&a);
    stream_buf_release(&b);
}

/* The leader's first n batches (from offset 0) and where each starts. */
static int leader_batches(fixture *f, stream_buf *buf, size_t *starts, int max)
{
    read_all(f->leader, 0, buf);
    return split(buf, starts, max);
}

/* A batch past the end is a hole the leader's cleaner left (a compacted log
 * keeps offsets, not every offset): the follower takes it, as it must to
 * catch up at all. One that starts below the end overlaps what this log
 * has, and is refused. (Before compaction both were refused.) */
static void test_replica_append_takes_holes_refuses_overlaps(void **state)
{
    fixture *f = *state;
    three_epochs(f);
    f->follower = open_dir(f, f->fdir, NULL);
    stream_buf buf = STREAM_BUF_INIT;
    size_t st[16];
    int n = leader_batches(f, &buf, st, 16);
    assert_int_equal(n, 10);
    int64_t end = -1;
    char err[256] = "";
    /* Batches 0, 1 and 2, then 4: batch 3 (offsets 9-11, epoch 3's first)
     * is a hole. */
    stream_buf chunk = STREAM_BUF_INIT;
    stream_buf_put(&chunk, buf.data, st[3]);
    stream_buf_put(&chunk, buf.data + st[4], st[5] - st[4]);
    assert_int_equal(
        stream_log_append_replica(f->follower, chunk.data, chunk.len, &end, err, sizeof err), 0);
    assert_int_equal(end, 15);
    assert_int_equal(stream_log_end_offset(f->follower), 15);
    /* Reads in the hole land on the batch after it; epoch 3 starts there. */
    stream_log_slice sl;
    assert_int_equal(stream_log_read(f->follower, 9, 1, &sl), 0);
    assert_int_equal(sl.first_offset, 12);
    stream_log_slice_release(&sl);
    assert_end_for(f->follower, 1, 1, 12);
    /* Overlaps: batch 1 again, and batch 3 (it ends past the hole's start
     * but starts below the end). */
    assert_int_equal(stream_log_append_replica(f->follower, buf.data + st[1], st[2] - st[1], &end,
                                               err, sizeof err),
                     STREAM_EOFFSET);
    assert_non_null(strstr(err, "offset 3"));
    assert_int_equal(end, 15);
    assert_int_equal(stream_log_append_replica(f->follower, buf.data + st[3], buf.len - st[3], &end,
                                               err, sizeof err),
                     STREAM_EOFFSET);
    assert_int_equal(end, 15);
    /* The rest goes on: the log is the leader's without batch 3, also after
     * a reopen. */
    assert_int_equal(stream_log_append_replica(f->follower, buf.data + st[5], buf.len - st[5], &end,
                                               err, sizeof err),
                     0);
    assert_int_equal(end, 30);
    stream_buf want = STREAM_BUF_INIT, copy = STREAM_BUF_INIT;
    stream_buf_put(&want, buf.data, st[3]);
    stream_buf_put(&want, buf.data + st[4], buf.len - st[4]);
    for (int reopened = 0; reopened < 2; reopened++) {
        read_all(f->follower, 0, &copy);
        assert_int_equal(copy.len, want.len);
        assert_memory_equal(copy.data, want.data, want.len);
        assert_int_equal(stream_log_end_offset(f->follower), 30);
        assert_end_for(f->follower, 3, 3, 21);
        stream_log_close(f->follower);
        f->follower = open_dir(f, f->fdir, NULL);
    }
    /* Nothing at all: nothing happens. */
    assert_int_equal(stream_log_append_replica(f->follower, buf.data, 0, &end, err, sizeof err), 0);
    assert_int_equal(end, 30);
    stream_buf_release(&copy);
    stream_buf_release(&want);
    stream_buf_release(&chunk);
    stream_buf_release(&buf);
}

static void test_replica_append_refuses_bad_crc_after_good_batches(void **state)
{
    fixture *f = *state;
    three_epochs(f);
    f->follower = open_dir(f, f->fdir, NULL);
    stream_buf buf = STREAM_BUF_INIT;
    size_t st[16];
    leader_batches(f, &buf, st, 16);
    buf.data[st[2] + 70] ^= 0x20; /* a record byte of batch 2 */
    int64_t end = -1;
    char err[256] = "";
    assert_int_equal(
        stream_log_append_replica(f->follower, buf.data, buf.len, &end, err, sizeof err),
        STREAM_ECRC);
    assert_int_equal(end, 6);
    assert_int_equal(stream_log_end_offset(f->follower), 6);
    /* A bad magic is refused the same way. */
    buf.data[st[2] + 70] ^= 0x20;
    buf.data[st[2] + 16] = 1;
    assert_int_equal(stream_log_append_replica(f->follower, buf.data + st[2], buf.len - st[2], &end,
                                               err, sizeof err),
                     STREAM_EMAGIC);
    assert_int_equal(end, 6);
    stream_buf_release(&buf);
}

static void test_replica_append_partial_trailing_batch_is_eshort(void **state)
{
    fixture *f = *state;
    three_epochs(f);
    f->follower = open_dir(f, f->fdir, NULL);
    stream_buf buf = STREAM_BUF_INIT;
    size_t st[16];
    leader_batches(f, &buf, st, 16);
    int64_t end = -1;
    char err[256] = "";
    /* Two whole batches and half the third. */
    size_t cut = st[2] + (st[3] - st[2]) / 2;
    assert_int_equal(stream_log_append_replica(f->follower, buf.data, cut, &end, err, sizeof err),
                     STREAM_ESHORT);
    assert_int_equal(end, 6);
    /* Less than a header of the next. */
    assert_int_equal(
        stream_log_append_replica(f->follower, buf.data + st[2], 20, &end, err, sizeof err),
        STREAM_ESHORT);
    assert_int_equal(end, 6);
    /* The rest, whole. */
    assert_int_equal(stream_log_append_replica(f->follower, buf.data + st[2], buf.len - st[2], &end,
                                               err, sizeof err),
                     0);
    assert_int_equal(end, 30);
    assert_int_equal(stream_log_latest_epoch(f->follower), 6);
    stream_buf_release(&buf);
}

/* What a leader does with an idempotent batch: check, then append. */
static int produce(fixture *f, stream_log *log, int64_t pid, int32_t seq, int n, int64_t *offset)
{
    size_t len;
    uint8_t *p = build(f, n, pid, seq, &len);
    int64_t dup = -1;
    char err[256] = "";
    int rc = stream_log_check_producer(log, p, len, &dup, err, sizeof err);
    if (rc == STREAM_LOG_DUPLICATE)
        *offset = dup;
    else if (rc == 0)
        assert_int_equal(stream_log_append(log, p, len, offset, err, sizeof err), 0);
    free(p);
    return rc;
}

static void test_replica_append_keeps_producer_state_for_failover(void **state)
{
    fixture *f = *state;
    f->leader = open_dir(f, f->ldir, NULL);
    f->follower = open_dir(f, f->fdir, NULL);
    stream_log_set_leader_epoch(f->leader, 1);
    int64_t off[4];
    int32_t seq = 0;
    for (int i = 0; i < 4; i++) {
        append_to(f, f->leader, 2); /* non-idempotent traffic between */
        assert_int_equal(produce(f, f->leader, 42, seq, 3, &off[i]), 0);
        seq += 3;
    }
    catch_up(f);
    /* Failover: the follower leads; the producer resends its last batch,
     * whose answer it never got. */
    size_t len;
    uint8_t *again = build(f, 3, 42, seq - 3, &len);
    int64_t dup = -1;
    char err[256] = "";
    assert_int_equal(stream_log_check_producer(f->follower, again, len, &dup, err, sizeof err),
                     STREAM_LOG_DUPLICATE);
    assert_int_equal(dup, off[3]);
    /* An older one too, and the next sequence is in order. */
    uint8_t *older = build(f, 3, 42, seq - 9, &len);
    assert_int_equal(stream_log_check_producer(f->follower, older, len, &dup, err, sizeof err),
                     STREAM_LOG_DUPLICATE);
    assert_int_equal(dup, off[1]);
    uint8_t *next = build(f, 3, 42, seq, &len);
    assert_int_equal(stream_log_check_producer(f->follower, next, len, &dup, err, sizeof err), 0);
    /* Also after the follower restarts (state from its snapshot and headers). */
    stream_log_close(f->follower);
    f->follower = open_dir(f, f->fdir, NULL);
    assert_int_equal(stream_log_check_producer(f->follower, again, len, &dup, err, sizeof err),
                     STREAM_LOG_DUPLICATE);
    assert_int_equal(dup, off[3]);
    free(again);
    free(older);
    free(next);
}

/* ---- reads bounded by a high watermark ----------------------------------------- */

static void test_read_until_boundaries(void **state)
{
    fixture *f = *state;
    f->leader = open_dir(f, f->ldir, NULL);
    for (int i = 0; i < 10; i++) /* batches of 3: 0, 3, ..., 27 */
        append_to(f, f->leader, 3);
    stream_log_slice sl, full;
    assert_int_equal(stream_log_read(f->leader, 3, 1 << 20, &full), 0);
    assert_true(full.len > 0);
    /* hw at a batch boundary: the batches below it. */
    assert_int_equal(stream_log_read_until(f->leader, 3, 1 << 20, 9, &sl), 0);
    assert_int_equal(sl.first_offset, 3);
    assert_int_equal(sl.pos, full.pos);
    stream_log_slice one;
    assert_int_equal(stream_log_read(f->leader, 6, 1, &one), 0);
    assert_int_equal(sl.len, (size_t)(one.pos + (off_t)one.len - full.pos));
    stream_log_slice_release(&one);
    size_t at_boundary = sl.len;
    stream_log_slice_release(&sl);
    /* hw inside a batch: that batch is not served. */
    assert_int_equal(stream_log_read_until(f->leader, 3, 1 << 20, 10, &sl), 0);
    assert_int_equal(sl.len, at_boundary);
    stream_log_slice_release(&sl);
    assert_int_equal(stream_log_read_until(f->leader, 3, 1 << 20, 11, &sl), 0);
    assert_int_equal(sl.len, at_boundary);
    stream_log_slice_release(&sl);
    /* hw == offset, hw inside the first batch, hw below the offset: empty. */
    for (int64_t hw = 0; hw <= 5; hw++) {
        assert_int_equal(stream_log_read_until(f->leader, 3, 1 << 20, hw, &sl), 0);
        assert_int_equal(sl.len, 0);
        assert_null(sl.segment);
        stream_log_slice_release(&sl);
    }
    assert_int_equal(stream_log_read_until(f->leader, 4, 1 << 20, 4, &sl), 0);
    assert_int_equal(sl.len, 0);
    stream_log_slice_release(&sl);
    assert_int_equal(stream_log_read_until(f->leader, 3, 1 << 20, -1, &sl), 0);
    assert_int_equal(sl.len, 0);
    stream_log_slice_release(&sl);
    /* hw == end, or past it: what stream_log_read gives. */
    for (int64_t hw = 30; hw <= 31; hw++) {
        assert_int_equal(stream_log_read_until(f->leader, 3, 1 << 20, hw, &sl), 0);
        assert_int_equal(sl.pos, full.pos);
        assert_int_equal(sl.len, full.len);
        stream_log_slice_release(&sl);
    }
    /* At the end, past it, below the start. */
    assert_int_equal(stream_log_read_until(f->leader, 30, 1 << 20, 30, &sl), 0);
    assert_int_equal(sl.len, 0);
    stream_log_slice_release(&sl);
    assert_int_equal(stream_log_read_until(f->leader, 31, 1 << 20, 40, &sl), STREAM_EOFFSET);
    stream_log_slice_release(&sl);
    stream_log_slice_release(&full);
}

/* Every offset against every high watermark, several budgets, over many
 * segments and sparse index entries: the slice is the longest run of
 * stream_log_read's whole batches that all end below the watermark. */
static void test_read_until_matches_read_trimmed_to_hw(void **state)
{
    fixture *f = *state;
    f->leader = open_dir(f, f->ldir, NULL);
    for (int i = 0; i < 40; i++)
        append_to(f, f->leader, 1 + (i * 5) % 6);
    assert_true(stream_log_segment_count(f->leader) > 3);
    int64_t end = stream_log_end_offset(f->leader);
    static const size_t budgets[] = {1, 700, 1 << 20};
    for (size_t b = 0; b < 3; b++) {
        for (int64_t off = 0; off <= end; off++) {
            stream_log_slice full;
            assert_int_equal(stream_log_read(f->leader, off, budgets[b], &full), 0);
            for (int64_t hw = off - 1; hw <= end + 1; hw++) {
                stream_log_slice sl;
                assert_int_equal(stream_log_read_until(f->leader, off, budgets[b], hw, &sl), 0);
                /* The model: walk full's batches while they end below hw. */
                size_t want = 0;
                if (full.len > 0) {
                    uint8_t *bytes = malloc(full.len);
                    assert_int_equal(pread(full.fd, bytes, full.len, full.pos), (ssize_t)full.len);
                    while (want < full.len) {
                        stream_batch_info info;
                        assert_int_equal(
                            stream_batch_header_decode(bytes + want, full.len - want, &info), 0);
                        if (info.base_offset + info.last_offset_delta >= hw)
                            break;
                        want += info.size;
                    }
                    free(bytes);
                }
                if (sl.len != want)
                    fail_msg("offset %" PRId64 " hw %" PRId64 " budget %zu: len %zu, want %zu", off,
                             hw, budgets[b], sl.len, want);
                if (want > 0)
                    assert_int_equal(sl.pos, full.pos);
                stream_log_slice_release(&sl);
            }
            stream_log_slice_release(&full);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_append_without_epoch_stamps_nothing),
        T(test_append_stamps_epoch_and_records_its_first_offset),
        T(test_new_epoch_append_fails_when_checkpoint_cannot_be_written),
        T(test_epoch_end_offset_exact_between_older_latest),
        T(test_epoch_cache_keeps_strict_order),
        T(test_epoch_cache_persists_across_close_and_open),
        T(test_missing_checkpoint_is_an_empty_cache),
        T(test_damaged_checkpoint_is_rebuilt_from_batch_headers),
        T(test_checkpoint_entry_past_the_end_is_dropped_at_open),
        T(test_recovery_cutting_an_epochs_batches_drops_the_epoch),
        T(test_truncate_to_trims_the_epoch_cache),
        T(test_start_moves_keep_the_entry_covering_the_start),
        T(test_retention_drops_epochs_of_deleted_segments),
        T(test_replica_append_copies_the_leaders_log),
        T(test_replica_append_takes_holes_refuses_overlaps),
        T(test_replica_append_refuses_bad_crc_after_good_batches),
        T(test_replica_append_partial_trailing_batch_is_eshort),
        T(test_replica_append_keeps_producer_state_for_failover),
        T(test_read_until_boundaries),
        T(test_read_until_matches_read_trimmed_to_hw),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
