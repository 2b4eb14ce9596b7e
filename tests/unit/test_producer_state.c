/*
 * test_producer_state.c - idempotent producers' sequence state
 * (libstream/log/producer_state.c) and how the log keeps it (log.c): the
 * sequence rules, snapshots, replay on open after a crash, rebuild after a
 * truncation, expiry, the broker's producer id blocks, and the batch
 * builder's producer fields.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log/log_internal.h"
#include "log/producer_state.h"
#include "stream/batch.h"
#include "stream/error.h"
#include "stream/log.h"

/* ---- helpers ------------------------------------------------------------- */

/*
 * fsync as libstream sees it in this program (a definition in the
 * executable takes the place of libc's for every caller): it records the
 * path of each file or directory synced and fails with EIO for paths
 * ending in fsync_log.fail_suffix; otherwise the system call does the work.
 */
static struct {
    char paths[8][PATH_MAX]; /* the first 8 since the last reset */
    int n;                   /* calls since the last reset */
    const char *fail_suffix; /* NULL: never fail */
} fsync_log;

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

int fsync(int fd)
{
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    path[n < 0 ? 0 : n] = '\0';
    if (fsync_log.n < 8)
        strcpy(fsync_log.paths[fsync_log.n], path);
    fsync_log.n++;
    if (fsync_log.fail_suffix != NULL && ends_with(path, fsync_log.fail_suffix)) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_fsync, fd);
}

/* A header as the broker sees it: producer fields, records, base offset. */
static stream_batch_info info_of(int64_t pid, int16_t epoch, int32_t seq, int32_t count,
                                 int64_t base_offset)
{
    stream_batch_info i;
    memset(&i, 0, sizeof i);
    i.producer_id = pid;
    i.producer_epoch = epoch;
    i.base_sequence = seq;
    i.record_count = count;
    i.last_offset_delta = count - 1;
    i.base_offset = base_offset;
    return i;
}

static int check(stream__producer_state *ps, int64_t pid, int16_t epoch, int32_t seq, int32_t count,
                 int64_t *dup)
{
    stream_batch_info i = info_of(pid, epoch, seq, count, 0);
    char eb[256] = "";
    *dup = -7;
    return stream__producer_state_check(ps, &i, dup, eb, sizeof eb);
}

/* Checks and, when it may be appended, records the batch at base_offset. */
static int append_at(stream__producer_state *ps, int64_t pid, int16_t epoch, int32_t seq,
                     int32_t count, int64_t base_offset)
{
    int64_t dup;
    int rc = check(ps, pid, epoch, seq, count, &dup);
    if (rc == 0) {
        stream_batch_info i = info_of(pid, epoch, seq, count, base_offset);
        assert_int_equal(stream__producer_state_update(ps, &i, 1000), 0);
    }
    return rc;
}

typedef struct fixture {
    char dir[64];    /* mkdtemp */
    char logdir[96]; /* <dir>/p-0 */
    int dirfd;       /* on logdir, for the snapshot calls */
    stream_log_config cfg;
} fixture;

static int rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_producer_state.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->logdir, sizeof f->logdir, "%s/p-0", f->dir);
    assert_int_equal(mkdir(f->logdir, 0755), 0);
    f->dirfd = open(f->logdir, O_RDONLY | O_DIRECTORY);
    assert_true(f->dirfd >= 0);
    stream_log_config_init(&f->cfg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    close(f->dirfd);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* A finished batch of `count` one-byte records with producer fields, copied
 * (stream_log_append stamps the base offset in place). */
static uint8_t *make_batch(int64_t pid, int16_t epoch, int32_t seq, int count, size_t *len)
{
    stream_batch_builder b;
    stream_batch_builder_init(&b);
    for (int i = 0; i < count; i++) {
        char v = (char)('a' + (seq + i) % 26);
        assert_int_equal(stream_batch_builder_append(&b, 1700000000000LL, NULL, -1, &v, 1, NULL, 0),
                         0);
    }
    assert_int_equal(stream_batch_builder_set_producer(&b, pid, epoch, seq), 0);
    const uint8_t *p;
    assert_int_equal(stream_batch_builder_finish(&b, &p, len), 0);
    uint8_t *copy = malloc(*len);
    assert_non_null(copy);
    memcpy(copy, p, *len);
    stream_batch_builder_release(&b);
    return copy;
}

/* What a leader does with one batch: check, then append unless refused or a
 * duplicate. Returns the check's answer; *offset the base offset (new or
 * original). */
static int produce(stream_log *log, int64_t pid, int16_t epoch, int32_t seq, int count,
                   int64_t *offset)
{
    size_t len;
    uint8_t *p = make_batch(pid, epoch, seq, count, &len);
    char eb[256] = "";
    int64_t dup = -1;
    int rc = stream_log_check_producer(log, p, len, &dup, eb, sizeof eb);
    if (rc == STREAM_LOG_DUPLICATE)
        *offset = dup;
    else if (rc == 0)
        assert_int_equal(stream_log_append(log, p, len, offset, eb, sizeof eb), 0);
    free(p);
    return rc;
}

static stream_log *open_log(fixture *f)
{
    stream_log *log;
    char eb[256] = "";
    int rc = stream_log_open(f->logdir, &f->cfg, &log, NULL, eb, sizeof eb);
    if (rc != 0)
        fail_msg("stream_log_open: %s", eb);
    return log;
}

static int snapshots(fixture *f, int64_t *offs, int max)
{
    return stream__producer_state_list_snapshots(f->dirfd, offs, max);
}

/* ---- sequence rules ------------------------------------------------------ */

static void test_batches_in_sequence_are_appended(void **state)
{
    (void)state;
    stream__producer_state *ps = stream__producer_state_new();
    assert_non_null(ps);
    assert_int_equal(append_at(ps, 7, 0, 0, 3, 0), 0);
    assert_int_equal(append_at(ps, 7, 0, 3, 2, 3), 0);
    assert_int_equal(append_at(ps, 7, 0, 5, 1, 5), 0);
    /* Another producer has sequences of its own. */
    assert_int_equal(append_at(ps, 8, 0, 0, 4, 6), 0);
    assert_int_equal(append_at(ps, 7, 0, 6, 1, 10), 0);
    assert_int_equal(stream__producer_state_count(ps), 2);
    stream__producer_state_free(ps);
}

static void test_resend_of_each_of_the_last_batches_answers_its_offset(void **state)
{
    (void)state;
    enum { KEPT = STREAM__PRODUCER_BATCHES, OLDER = 3 };
    stream__producer_state *ps = stream__producer_state_new();
    /* Batch k: sequences 3k..3k+2 at offset 100 + 10k. */
    for (int k = 0; k < KEPT + OLDER; k++)
        assert_int_equal(append_at(ps, 42, 0, 3 * k, 3, 100 + 10 * k), 0);
    int64_t dup;
    for (int k = OLDER; k < KEPT + OLDER; k++) {
        assert_int_equal(check(ps, 42, 0, 3 * k, 3, &dup), STREAM__PRODUCER_DUPLICATE);
        assert_int_equal(dup, 100 + 10 * k);
    }
    /* Older than the last 16: stored, but the offset is forgotten. */
    for (int k = 0; k < OLDER; k++)
        assert_int_equal(check(ps, 42, 0, 3 * k, 3, &dup), STREAM_EDUPLICATESEQ);
    /* A duplicate changes nothing: the next in sequence is still accepted. */
    assert_int_equal(append_at(ps, 42, 0, 3 * (KEPT + OLDER), 1, 100 + 10 * (KEPT + OLDER)), 0);
    stream__producer_state_free(ps);
}

static void test_gap_or_overlap_is_out_of_order(void **state)
{
    (void)state;
    stream__producer_state *ps = stream__producer_state_new();
    int64_t dup;
    assert_int_equal(append_at(ps, 1, 0, 0, 5, 0), 0);
    assert_int_equal(check(ps, 1, 0, 6, 1, &dup), STREAM_EOUTOFORDERSEQ); /* 5 is missing */
    assert_int_equal(check(ps, 1, 0, 4, 3, &dup), STREAM_EOUTOFORDERSEQ); /* overlaps 4 */
    /* Cut differently but wholly stored already: stored, offset unknown. */
    assert_int_equal(check(ps, 1, 0, 0, 4, &dup), STREAM_EDUPLICATESEQ);
    /* Refusals write nothing: 5 still comes next. */
    assert_int_equal(append_at(ps, 1, 0, 5, 1, 5), 0);
    stream__producer_state_free(ps);
}

static void test_unknown_producer_must_start_at_sequence_0(void **state)
{
    (void)state;
    stream__producer_state *ps = stream__producer_state_new();
    int64_t dup;
    assert_int_equal(check(ps, 9, 0, 10, 1, &dup), STREAM_EUNKNOWNPRODUCER);
    assert_int_equal(check(ps, 9, 3, 0, 1, &dup), 0);      /* any epoch, from 0 */
    assert_int_equal(stream__producer_state_count(ps), 0); /* check alone records nothing */
    stream__producer_state_free(ps);
}

static void test_epoch_changes(void **state)
{
    (void)state;
    stream__producer_state *ps = stream__producer_state_new();
    int64_t dup;
    assert_int_equal(append_at(ps, 5, 2, 0, 2, 0), 0);
    assert_int_equal(append_at(ps, 5, 2, 2, 2, 2), 0);
    /* An older epoch is fenced, whatever its sequence. */
    assert_int_equal(check(ps, 5, 1, 4, 1, &dup), STREAM_EPRODUCERFENCED);
    assert_int_equal(check(ps, 5, 1, 0, 2, &dup), STREAM_EPRODUCERFENCED);
    /* A newer epoch starts at 0, or not at all. */
    assert_int_equal(check(ps, 5, 3, 4, 1, &dup), STREAM_EOUTOFORDERSEQ);
    assert_int_equal(append_at(ps, 5, 3, 0, 1, 4), 0);
    /* Now the old epoch is the stale one, and the new one goes on. */
    assert_int_equal(check(ps, 5, 2, 4, 1, &dup), STREAM_EPRODUCERFENCED);
    assert_int_equal(check(ps, 5, 3, 0, 1, &dup), STREAM__PRODUCER_DUPLICATE);
    assert_int_equal(dup, 4);
    assert_int_equal(append_at(ps, 5, 3, 1, 1, 5), 0);
    stream__producer_state_free(ps);
}

static void test_sequences_wrap_at_int32_max(void **state)
{
    (void)state;
    stream__producer_state *ps = stream__producer_state_new();
    int64_t dup;
    /* Reached by a new epoch starting at 0, then a run up to the edge is
     * not practical: start the producer's state near the top instead. */
    stream_batch_info i = info_of(3, 0, INT32_MAX - 1, 2, 0);
    assert_int_equal(stream__producer_state_update(ps, &i, 0), 0);
    /* INT32_MAX - 1 and INT32_MAX were used: 0 comes next. */
    assert_int_equal(check(ps, 3, 0, 1, 1, &dup), STREAM_EOUTOFORDERSEQ);
    assert_int_equal(append_at(ps, 3, 0, 0, 3, 2), 0);
    assert_int_equal(check(ps, 3, 0, INT32_MAX - 1, 2, &dup), STREAM__PRODUCER_DUPLICATE);
    assert_int_equal(dup, 0);
    /* A batch that wraps inside itself. */
    i = info_of(4, 0, INT32_MAX, 3, 10);
    assert_int_equal(stream__producer_state_update(ps, &i, 0), 0);
    assert_int_equal(append_at(ps, 4, 0, 2, 1, 13), 0);
    stream__producer_state_free(ps);
}

static void test_negative_epoch_or_sequence_is_corrupt(void **state)
{
    (void)state;
    stream__producer_state *ps = stream__producer_state_new();
    int64_t dup;
    assert_int_equal(check(ps, 3, -1, 0, 1, &dup), STREAM_ECORRUPT);
    assert_int_equal(check(ps, 3, 0, -1, 1, &dup), STREAM_ECORRUPT);
    stream__producer_state_free(ps);
}

static void test_expiry_by_log_start_and_by_idle_time(void **state)
{
    (void)state;
    stream__producer_state *ps = stream__producer_state_new();
    for (int64_t pid = 0; pid < 40; pid++) {
        stream_batch_info i = info_of(pid, 0, 0, 1, pid * 10);
        assert_int_equal(stream__producer_state_update(ps, &i, 1000 + pid), 0);
    }
    /* Log start 200: producers 0..19 have nothing left in the log. */
    assert_int_equal(stream__producer_state_expire(ps, 200, 0, -1), 20);
    assert_int_equal(stream__producer_state_count(ps), 20);
    int64_t dup;
    assert_int_equal(check(ps, 5, 0, 1, 1, &dup), STREAM_EUNKNOWNPRODUCER);
    assert_int_equal(check(ps, 25, 0, 1, 1, &dup), 0);
    /* Idle longer than 10 ms at time 1045: the last append was at 1000 + pid. */
    assert_int_equal(stream__producer_state_expire(ps, 0, 1045, 10), 15);
    assert_int_equal(stream__producer_state_count(ps), 5);
    for (int64_t pid = 35; pid < 40; pid++)
        assert_int_equal(check(ps, pid, 0, 1, 1, &dup), 0);
    stream__producer_state_free(ps);
}

/* ---- snapshots ----------------------------------------------------------- */

static void test_snapshot_round_trip(void **state)
{
    fixture *f = *state;
    stream__producer_state *ps = stream__producer_state_new();
    for (int64_t pid = 0; pid < 50; pid++)
        for (int k = 0; k < 1 + pid % 7; k++)
            assert_int_equal(append_at(ps, pid, (int16_t)(pid % 3), k * 2, 2, pid * 100 + k * 2),
                             0);
    assert_int_equal(stream__producer_state_write_snapshot(ps, f->dirfd, 5000), 0);
    stream__producer_state *back = stream__producer_state_new();
    int64_t off;
    assert_int_equal(stream__producer_state_load(back, f->dirfd, 5000, &off), 0);
    assert_int_equal(off, 5000);
    assert_int_equal(stream__producer_state_count(back), 50);
    int64_t dup;
    for (int64_t pid = 0; pid < 50; pid++) {
        int last = (int)(pid % 7); /* the last batch's index */
        int16_t epoch = (int16_t)(pid % 3);
        for (int k = last - 4 < 0 ? 0 : last - 4; k <= last; k++) {
            assert_int_equal(check(back, pid, epoch, k * 2, 2, &dup), STREAM__PRODUCER_DUPLICATE);
            assert_int_equal(dup, pid * 100 + k * 2);
        }
        assert_int_equal(check(back, pid, epoch, (last + 1) * 2, 1, &dup), 0);
        assert_int_equal(check(back, pid, epoch, (last + 2) * 2, 1, &dup), STREAM_EOUTOFORDERSEQ);
    }
    stream__producer_state_free(back);
    stream__producer_state_free(ps);
}

static void test_load_takes_newest_usable_snapshot_and_keeps_two(void **state)
{
    fixture *f = *state;
    stream__producer_state *ps = stream__producer_state_new();
    int64_t offs[8];
    for (int k = 0; k < 4; k++) {
        assert_int_equal(append_at(ps, 1, 0, k, 1, k), 0);
        assert_int_equal(stream__producer_state_write_snapshot(ps, f->dirfd, (k + 1) * 100), 0);
    }
    assert_int_equal(snapshots(f, offs, 8), 2); /* the newest two */
    assert_int_equal(offs[0], 300);
    assert_int_equal(offs[1], 400);

    /* Past the log end (a crash took those batches): deleted, 300 used. */
    stream__producer_state *back = stream__producer_state_new();
    int64_t off, dup;
    assert_int_equal(stream__producer_state_load(back, f->dirfd, 350, &off), 0);
    assert_int_equal(off, 300);
    assert_int_equal(check(back, 1, 0, 3, 1, &dup), 0); /* 300's state: seqs 0..2 */
    assert_int_equal(snapshots(f, offs, 8), 1);

    /* A torn snapshot is skipped (and removed): no state, replay it all. */
    char path[160];
    snprintf(path, sizeof path, "%s/%020d.snapshot", f->logdir, 300);
    assert_int_equal(truncate(path, 20), 0);
    assert_int_equal(stream__producer_state_load(back, f->dirfd, 1000, &off), 0);
    assert_int_equal(off, -1);
    assert_int_equal(stream__producer_state_count(back), 0);
    assert_int_equal(snapshots(f, offs, 8), 0);

    /* A flipped byte fails the CRC. */
    assert_int_equal(stream__producer_state_write_snapshot(ps, f->dirfd, 500), 0);
    assert_int_equal(stream__producer_state_write_snapshot(ps, f->dirfd, 600), 0);
    snprintf(path, sizeof path, "%s/%020d.snapshot", f->logdir, 600);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t c;
    assert_int_equal(pread(fd, &c, 1, 30), 1);
    c ^= 0x10;
    assert_int_equal(pwrite(fd, &c, 1, 30), 1);
    close(fd);
    assert_int_equal(stream__producer_state_load(back, f->dirfd, 1000, &off), 0);
    assert_int_equal(off, 500);
    assert_int_equal(stream__producer_state_count(back), 1);
    stream__producer_state_free(back);
    stream__producer_state_free(ps);
}

/* A snapshot is as durable as the other metadata files: the temp file is
 * fsync'd before the rename, the directory after it; a failed fsync leaves
 * no new snapshot and no temp file, and keeps the older snapshots. */
static void test_snapshot_is_fsynced_before_and_after_rename(void **state)
{
    fixture *f = *state;
    stream__producer_state *ps = stream__producer_state_new();
    assert_int_equal(append_at(ps, 1, 0, 0, 1, 0), 0);
    char dir[PATH_MAX];
    assert_non_null(realpath(f->logdir, dir));
    memset(&fsync_log, 0, sizeof fsync_log);
    assert_int_equal(stream__producer_state_write_snapshot(ps, f->dirfd, 700), 0);
    assert_int_equal(fsync_log.n, 2);
    assert_true(ends_with(fsync_log.paths[0], "/00000000000000000700.snapshot.tmp"));
    assert_string_equal(fsync_log.paths[1], dir);

    memset(&fsync_log, 0, sizeof fsync_log);
    fsync_log.fail_suffix = ".snapshot.tmp";
    assert_int_equal(stream__producer_state_write_snapshot(ps, f->dirfd, 800), STREAM_EIO);
    fsync_log.fail_suffix = NULL;
    int64_t offs[8];
    assert_int_equal(snapshots(f, offs, 8), 1);
    assert_int_equal(offs[0], 700);
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/00000000000000000800.snapshot.tmp", f->logdir);
    assert_int_equal(access(path, F_OK), -1);
    stream__producer_state_free(ps);
}

/* ---- the log keeps it ---------------------------------------------------- */

static void test_clean_reopen_loads_the_close_snapshot(void **state)
{
    fixture *f = *state;
    stream_log *log = open_log(f);
    int64_t off;
    for (int k = 0; k < 6; k++)
        assert_int_equal(produce(log, 11, 0, k * 4, 4, &off), 0);
    stream_log_close(log);
    int64_t offs[4];
    assert_int_equal(snapshots(f, offs, 4), 1);
    assert_int_equal(offs[0], 24);
    log = open_log(f);
    assert_int_equal(produce(log, 11, 0, 20, 4, &off), STREAM_LOG_DUPLICATE);
    assert_int_equal(off, 20);
    assert_int_equal(produce(log, 11, 0, 28, 1, &off), STREAM_EOUTOFORDERSEQ);
    assert_int_equal(produce(log, 11, 0, 24, 1, &off), 0);
    assert_int_equal(off, 24);
    stream_log_close(log);
}

/* A child appends and dies without closing (as under kill -9): the next
 * open replays the batch headers after the newest snapshot. */
static void test_resend_after_crash_is_recognised(void **state)
{
    fixture *f = *state;
    f->cfg.segment_bytes = 1000; /* a roll (and a snapshot) every few batches */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        stream_log *log;
        if (stream_log_open(f->logdir, &f->cfg, &log, NULL, NULL, 0) != 0)
            _exit(2);
        for (int k = 0; k < 60; k++) {
            size_t len;
            uint8_t *p = make_batch(77, 0, k * 3, 3, &len);
            int64_t dup, base;
            if (stream_log_check_producer(log, p, len, &dup, NULL, 0) != 0 ||
                stream_log_append(log, p, len, &base, NULL, 0) != 0 || base != k * 3)
                _exit(3);
            free(p);
        }
        _exit(0); /* no close: no clean-shutdown marker, no close snapshot */
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    int64_t offs[8];
    int n = snapshots(f, offs, 8);
    assert_int_equal(n, 2); /* from the rolls; the tail after them is replayed */
    assert_true(offs[1] < 180);

    stream_log_recovery rec;
    stream_log *log;
    assert_int_equal(stream_log_open(f->logdir, &f->cfg, &log, &rec, NULL, 0), 0);
    assert_false(rec.clean);
    assert_int_equal(stream_log_end_offset(log), 180);
    int64_t off;
    for (int k = 55; k < 60; k++) {
        assert_int_equal(produce(log, 77, 0, k * 3, 3, &off), STREAM_LOG_DUPLICATE);
        assert_int_equal(off, k * 3);
    }
    assert_int_equal(produce(log, 77, 0, 180, 2, &off), 0);
    assert_int_equal(off, 180);
    stream_log_close(log);
}

static void test_no_snapshot_replays_the_whole_log(void **state)
{
    fixture *f = *state;
    stream_log *log = open_log(f);
    int64_t off;
    for (int k = 0; k < 10; k++) {
        assert_int_equal(produce(log, 1, 0, k, 1, &off), 0);
        assert_int_equal(produce(log, 2, 0, k * 2, 2, &off), 0);
    }
    stream_log_close(log);
    int64_t offs[4];
    assert_int_equal(snapshots(f, offs, 4), 1);
    char path[160];
    snprintf(path, sizeof path, "%s/%020" PRId64 ".snapshot", f->logdir, offs[0]);
    assert_int_equal(unlink(path), 0);
    log = open_log(f);
    assert_int_equal(stream__producer_state_count(log->producers), 2);
    assert_int_equal(produce(log, 1, 0, 9, 1, &off), STREAM_LOG_DUPLICATE);
    assert_int_equal(produce(log, 2, 0, 18, 2, &off), STREAM_LOG_DUPLICATE);
    assert_int_equal(produce(log, 2, 0, 20, 2, &off), 0);
    stream_log_close(log);
}

static void test_truncation_rebuilds_state_from_before_the_cut(void **state)
{
    fixture *f = *state;
    f->cfg.segment_bytes = 600;
    stream_log *log = open_log(f);
    int64_t off;
    for (int k = 0; k < 30; k++)
        assert_int_equal(produce(log, 4, 0, k * 2, 2, &off), 0);
    assert_true(stream_log_segment_count(log) > 3);
    int64_t offs[4];
    assert_int_equal(snapshots(f, offs, 4), 2);
    /* Cut at batch 12 (offset 24): batches 12.. are gone. */
    assert_int_equal(stream_log_truncate_to(log, 24), 0);
    assert_int_equal(stream_log_end_offset(log), 24);
    int n = snapshots(f, offs, 4);
    for (int i = 0; i < n; i++)
        assert_true(offs[i] <= 24); /* none describes batches past the cut */
    /* Batch 11 is still the last: a resend of it is a duplicate, of 12 is
     * new again (it must be stored: its first copy is gone). */
    assert_int_equal(produce(log, 4, 0, 22, 2, &off), STREAM_LOG_DUPLICATE);
    assert_int_equal(off, 22);
    assert_int_equal(produce(log, 4, 0, 26, 2, &off), STREAM_EOUTOFORDERSEQ);
    assert_int_equal(produce(log, 4, 0, 24, 2, &off), 0);
    assert_int_equal(off, 24);
    /* And the same after a reopen. */
    stream_log_close(log);
    log = open_log(f);
    assert_int_equal(produce(log, 4, 0, 24, 2, &off), STREAM_LOG_DUPLICATE);
    assert_int_equal(off, 24);
    stream_log_close(log);
}

static void test_retention_forgets_producers_with_nothing_left(void **state)
{
    fixture *f = *state;
    f->cfg.segment_bytes = 400;
    f->cfg.retention_bytes = 900;
    f->cfg.retention_ms = -1;
    stream_log *log = open_log(f);
    int64_t off;
    assert_int_equal(produce(log, 100, 0, 0, 1, &off), 0); /* only at the start */
    for (int k = 0; k < 40; k++)
        assert_int_equal(produce(log, 200, 0, k, 1, &off), 0);
    assert_int_equal(stream__producer_state_count(log->producers), 2);
    assert_true(stream_log_apply_retention(log, 0) > 0);
    assert_true(stream_log_start_offset(log) > 0);
    assert_int_equal(stream__producer_state_count(log->producers), 1);
    assert_int_equal(produce(log, 100, 0, 1, 1, &off), STREAM_EUNKNOWNPRODUCER);
    assert_int_equal(produce(log, 200, 0, 40, 1, &off), 0);
    stream_log_close(log);
}

/* ---- producer ids --------------------------------------------------------- */

static void test_producer_ids_are_never_reused_across_restarts(void **state)
{
    fixture *f = *state;
    stream__producer_ids ids = {0};
    char eb[256] = "";
    int64_t id, last = -1;
    for (int i = 0; i < 1500; i++) {
        assert_int_equal(stream__producer_ids_next(&ids, f->dir, &id, eb, sizeof eb), 0);
        assert_true(id > last);
        last = id;
    }
    /* A restart (even after kill -9: the block was on disk before its first
     * id went out) starts past every id handed out. */
    stream__producer_ids again = {0};
    assert_int_equal(stream__producer_ids_next(&again, f->dir, &id, eb, sizeof eb), 0);
    assert_true(id > last);
    /* An unreadable file is an error, not id 0 again. */
    char path[160];
    snprintf(path, sizeof path, "%s/producer-ids", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("garbage", fp);
    fclose(fp);
    stream__producer_ids third = {0};
    assert_int_equal(stream__producer_ids_next(&third, f->dir, &id, eb, sizeof eb),
                     STREAM_ECORRUPT);
    assert_non_null(strstr(eb, "producer-ids"));
}

/* ---- the batch builder's producer fields --------------------------------- */

static void test_builder_stamps_and_restamps_producer_fields(void **state)
{
    (void)state;
    stream_codec codecs[] = {STREAM_CODEC_NONE, STREAM_CODEC_LZ4};
    for (size_t c = 0; c < 2; c++) {
        stream_batch_builder b;
        stream_batch_builder_init(&b);
        assert_int_equal(stream_batch_builder_set_codec(&b, codecs[c], 0), 0);
        for (int i = 0; i < 10; i++)
            assert_int_equal(stream_batch_builder_append(&b, 1, NULL, -1, "value", 5, NULL, 0), 0);
        assert_int_equal(stream_batch_builder_set_producer(&b, -2, 0, 0), STREAM_EINVAL);
        assert_int_equal(stream_batch_builder_set_producer(&b, 5, -1, 0), STREAM_EINVAL);
        assert_int_equal(stream_batch_builder_set_producer(&b, 123456789012LL, 7, 40), 0);
        const uint8_t *p;
        size_t len;
        assert_int_equal(stream_batch_builder_finish(&b, &p, &len), 0);
        stream_batch_info info;
        assert_int_equal(stream_batch_validate(p, len, &info, NULL, 0), 0);
        assert_int_equal(info.producer_id, 123456789012LL);
        assert_int_equal(info.producer_epoch, 7);
        assert_int_equal(info.base_sequence, 40);
        /* Restamped after finish: same pointer, CRC still right. */
        const uint8_t *before = p;
        assert_int_equal(stream_batch_builder_set_producer(&b, 99, 8, 0), 0);
        assert_int_equal(stream_batch_check(before, len, &info, NULL, 0), 0);
        assert_int_equal(info.producer_id, 99);
        assert_int_equal(info.producer_epoch, 8);
        assert_int_equal(info.base_sequence, 0);
        /* reset goes back to -1. */
        stream_batch_builder_reset(&b);
        assert_int_equal(stream_batch_builder_append(&b, 1, NULL, -1, "v", 1, NULL, 0), 0);
        assert_int_equal(stream_batch_builder_finish(&b, &p, &len), 0);
        assert_int_equal(stream_batch_check(p, len, &info, NULL, 0), 0);
        assert_int_equal(info.producer_id, -1);
        assert_int_equal(info.producer_epoch, -1);
        assert_int_equal(info.base_sequence, -1);
        stream_batch_builder_release(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches_in_sequence_are_appended),
        cmocka_unit_test(test_resend_of_each_of_the_last_batches_answers_its_offset),
        cmocka_unit_test(test_gap_or_overlap_is_out_of_order),
        cmocka_unit_test(test_unknown_producer_must_start_at_sequence_0),
        cmocka_unit_test(test_epoch_changes),
        cmocka_unit_test(test_sequences_wrap_at_int32_max),
        cmocka_unit_test(test_negative_epoch_or_sequence_is_corrupt),
        cmocka_unit_test(test_expiry_by_log_start_and_by_idle_time),
        cmocka_unit_test_setup_teardown(test_snapshot_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_takes_newest_usable_snapshot_and_keeps_two, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_is_fsynced_before_and_after_rename, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_clean_reopen_loads_the_close_snapshot, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_resend_after_crash_is_recognised, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_snapshot_replays_the_whole_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation_rebuilds_state_from_before_the_cut, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_retention_forgets_producers_with_nothing_left, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_producer_ids_are_never_reused_across_restarts, setup,
                                        teardown),
        cmocka_unit_test(test_builder_stamps_and_restamps_producer_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
