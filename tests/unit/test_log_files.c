/*
 * test_log_files.c - the logs' open-file budget (libstream/log/log_files.c):
 * older segments are closed least recently used first and reopened on
 * demand, the active segment and what a slice pins are never closed under
 * their users, a rolled segment waits for its sync unpinned (a sync with
 * no descriptor to reopen it waits for the next round), a segment
 * deleted behind the log's back is an error rather than a crash, and a log
 * reopens with more segments than the budget.
 *
 * Real logs in a mkdtemp directory; descriptors are counted in
 * /proc/self/fd, so the budget is checked against the process, not only
 * against the cache's own numbers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "stream/batch.h"
#include "stream/cleaner.h"
#include "stream/error.h"
#include "stream/log.h"

#define SEGMENTS 12 /* segments written per log */

typedef struct fixture {
    char dir[64];
    stream_log_files *files;
    stream_log_config cfg;
    stream_log *logs[3];
    int64_t ends[3];
} fixture;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static long fds_open(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    strcpy(f->dir, "/tmp/test_log_files.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    stream_log_config_init(&f->cfg);
    f->cfg.segment_bytes = 1024;
    f->cfg.index_interval_bytes = 128;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 3; i++)
        stream_log_close(f->logs[i]);
    stream_log_files_free(f->files);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void open_log(fixture *f, int i)
{
    char path[128], err[512] = "";
    snprintf(path, sizeof path, "%s/t-%d", f->dir, i);
    f->cfg.files = f->files;
    int rc = stream_log_open(path, &f->cfg, &f->logs[i], NULL, err, sizeof err);
    if (rc != 0)
        fail_msg("open %s: %s: %s", path, stream_strerror(rc), err);
}

/* Appends batch n of 5 records (about 300 bytes) to log i, unsynced. */
static void append_batch(fixture *f, int i, int n)
{
    stream_batch_builder b;
    stream_batch_builder_init(&b);
    for (int r = 0; r < 5; r++) {
        char v[64];
        int vl = snprintf(v, sizeof v, "log %d batch %d record %d ..................", i, n, r);
        assert_int_equal(stream_batch_builder_append(&b, 1000 + n, NULL, -1, v, vl, NULL, 0), 0);
    }
    const uint8_t *p;
    size_t len;
    assert_int_equal(stream_batch_builder_finish(&b, &p, &len), 0);
    int64_t base;
    char err[256];
    assert_int_equal(stream_log_append(f->logs[i], (uint8_t *)p, len, &base, err, sizeof err), 0);
    stream_batch_builder_release(&b);
}

/* Appends batches until log i has `segs` segments, then syncs. */
static void fill_to(fixture *f, int i, int segs)
{
    stream_log *log = f->logs[i];
    for (int n = 0; stream_log_segment_count(log) < segs; n++)
        append_batch(f, i, n);
    assert_int_equal(stream_log_flush(log), 0);
    f->ends[i] = stream_log_end_offset(log);
}

static void fill(fixture *f, int i)
{
    fill_to(f, i, SEGMENTS);
}

/* Reads log i from start to end, checking every batch. */
static void read_all(fixture *f, int i)
{
    stream_buf buf;
    stream_buf_init(&buf);
    int64_t off = stream_log_start_offset(f->logs[i]);
    while (off < f->ends[i]) {
        stream_buf_reset(&buf);
        int rc = stream_log_read_copy(f->logs[i], off, 512, &buf);
        if (rc != 0)
            fail_msg("log %d offset %" PRId64 ": %s", i, off, stream_strerror(rc));
        stream_batch_info info;
        for (size_t at = 0; at < buf.len; at += info.size) {
            assert_int_equal(stream_batch_check(buf.data + at, buf.len - at, &info, NULL, 0), 0);
            off = info.base_offset + info.last_offset_delta + 1;
        }
    }
    stream_buf_release(&buf);
}

/* Appends 40 batches of one keyed record each, keys k0..k9 over and over,
 * to log i (a compacted topic refuses keyless records). */
static void fill_keyed(fixture *f, int i)
{
    for (int n = 0; n < 40; n++) {
        stream_batch_builder b;
        stream_batch_builder_init(&b);
        char k[16], v[96];
        int kl = snprintf(k, sizeof k, "k%d", n % 10);
        int vl = snprintf(v, sizeof v, "value %d ..........................................", n);
        assert_int_equal(stream_batch_builder_append(&b, 1000 + n, k, kl, v, vl, NULL, 0), 0);
        const uint8_t *p;
        size_t len;
        assert_int_equal(stream_batch_builder_finish(&b, &p, &len), 0);
        int64_t base;
        char err[256];
        assert_int_equal(stream_log_append(f->logs[i], (uint8_t *)p, len, &base, err, sizeof err),
                         0);
        stream_batch_builder_release(&b);
    }
    assert_int_equal(stream_log_flush(f->logs[i]), 0);
    f->ends[i] = stream_log_end_offset(f->logs[i]);
}

static void stats(fixture *f, stream_log_files_stats *st)
{
    stream_log_files_get_stats(f->files, st);
}

static void test_cache_closes_least_recently_used_and_reopens(void **state)
{
    fixture *f = *state;
    assert_int_equal(stream_log_files_new(6, &f->files), 0);
    long before = fds_open();
    open_log(f, 0);
    fill(f, 0);
    stream_log_files_stats st;
    stats(f, &st);
    assert_true(st.open <= 6);
    assert_int_equal(fds_open() - before, st.open);

    read_all(f, 0);
    read_all(f, 0);
    stats(f, &st);
    assert_int_equal(st.budget, 6);
    assert_true(st.open <= 6);
    assert_int_equal(st.cached, st.open - 1); /* the active segment: no directory is held */
    assert_true(st.evictions > 0);
    assert_true(st.reopens >= SEGMENTS - 5); /* the second pass reopened what the first closed */
    assert_int_equal(fds_open() - before, st.open);

    /* The most recently read segment is still open: reading it again
     * costs no reopen. */
    uint64_t reopens = st.reopens;
    stream_buf buf;
    stream_buf_init(&buf);
    assert_int_equal(stream_log_read_copy(f->logs[0], f->ends[0] - 1, 512, &buf), 0);
    stream_buf_release(&buf);
    stats(f, &st);
    assert_int_equal(st.reopens, reopens);
}

static void test_active_segments_are_never_closed(void **state)
{
    fixture *f = *state;
    /* Three logs need three descriptors held for good (their active
     * segments; none for a directory): more than the budget. */
    assert_int_equal(stream_log_files_new(2, &f->files), 0);
    long before = fds_open();
    for (int i = 0; i < 3; i++) {
        open_log(f, i);
        fill(f, i);
    }
    for (int i = 0; i < 3; i++)
        read_all(f, i);
    stream_log_files_stats st;
    stats(f, &st);
    assert_int_equal(st.cached, 0);
    assert_int_equal(st.open, 3);
    assert_int_equal(fds_open() - before, 3);
    /* Appends to every active segment go on, and roll; the logs reopen. */
    for (int i = 0; i < 3; i++) {
        fill_to(f, i, SEGMENTS + 2);
        read_all(f, i);
        stream_log_close(f->logs[i]);
        f->logs[i] = NULL;
        open_log(f, i);
        read_all(f, i);
    }
}

static void test_rolled_segments_wait_for_their_sync_unpinned(void **state)
{
    fixture *f = *state;
    /* Every log rolls before any sync (as when one request fills every
     * partition): a rolled segment that stayed pinned until its sync made
     * two descriptors a log for that moment, six here, past the budget
     * and, at ten thousand partitions, past the process's limit. */
    assert_int_equal(stream_log_files_new(3, &f->files), 0);
    long before = fds_open();
    for (int i = 0; i < 3; i++)
        open_log(f, i);
    for (int i = 0; i < 3; i++)
        for (int n = 0; stream_log_segment_count(f->logs[i]) < 2; n++)
            append_batch(f, i, n);
    stream_log_files_stats st;
    stats(f, &st);
    assert_int_equal(st.open - st.cached, 3); /* the active segments only */
    assert_true(st.open <= 3);
    assert_int_equal(fds_open() - before, st.open);
    /* The syncs reopen what the budget closed, and make everything durable. */
    for (int i = 0; i < 3; i++) {
        f->ends[i] = stream_log_end_offset(f->logs[i]);
        assert_int_equal(stream_log_flush(f->logs[i]), 0);
        assert_int_equal(stream_log_durable_offset(f->logs[i]), f->ends[i]);
    }
    stats(f, &st);
    assert_true(st.reopens > 0);
    assert_true(st.open <= 3);
    assert_int_equal(fds_open() - before, st.open);
    for (int i = 0; i < 3; i++) {
        read_all(f, i);
        stream_log_close(f->logs[i]);
        f->logs[i] = NULL;
        open_log(f, i);
        read_all(f, i);
    }
}

static void test_sync_without_a_descriptor_waits_instead_of_failing_the_log(void **state)
{
    fixture *f = *state;
    assert_int_equal(stream_log_files_new(1, &f->files), 0);
    open_log(f, 0);
    for (int n = 0; stream_log_segment_count(f->logs[0]) < 2; n++)
        append_batch(f, 0, n);
    f->ends[0] = stream_log_end_offset(f->logs[0]);
    stream_log_files_stats st;
    stats(f, &st);
    assert_int_equal(st.cached, 0); /* the rolled segment is closed: its sync must reopen it */
    /* The process is out of descriptors: the sync cannot reopen it. */
    struct rlimit was, now;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &was), 0);
    now = was;
    now.rlim_cur = (rlim_t)fds_open() + 8;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &now), 0);
    int fill[64], nfill = 0; /* every number under the limit taken */
    while (nfill < 64 && (fill[nfill] = dup(0)) >= 0)
        nfill++;
    assert_true(nfill < 64);
    int rc = stream_log_flush(f->logs[0]);
    while (nfill > 0)
        close(fill[--nfill]);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &was), 0);
    assert_int_equal(rc, STREAM_EAGAIN);
    /* Not an I/O error: nothing is latched, nothing claimed durable, and
     * the next round, with descriptors again, syncs the segment. */
    assert_int_equal(stream_log_io_error(f->logs[0], NULL, NULL, 0), 0);
    assert_true(stream_log_durable_offset(f->logs[0]) < f->ends[0]);
    append_batch(f, 0, 1000);
    f->ends[0] = stream_log_end_offset(f->logs[0]);
    assert_int_equal(stream_log_flush(f->logs[0]), 0);
    assert_int_equal(stream_log_durable_offset(f->logs[0]), f->ends[0]);
    read_all(f, 0);
}

static void test_slice_keeps_its_descriptor_while_others_are_closed(void **state)
{
    fixture *f = *state;
    assert_int_equal(stream_log_files_new(3, &f->files), 0);
    open_log(f, 0);
    fill(f, 0);
    stream_log_slice sl;
    assert_int_equal(stream_log_read(f->logs[0], 0, 4096, &sl), 0);
    assert_true(sl.len > 0);
    read_all(f, 0); /* closes and reopens everything else, several times over */
    read_all(f, 0);
    uint8_t *p = malloc(sl.len);
    assert_non_null(p);
    assert_int_equal(pread(sl.fd, p, sl.len, sl.pos), (ssize_t)sl.len);
    stream_batch_info info;
    assert_int_equal(stream_batch_check(p, sl.len, &info, NULL, 0), 0);
    assert_int_equal(info.base_offset, 0);
    free(p);
    stream_log_slice_release(&sl);
    stream_log_files_stats st;
    stats(f, &st);
    assert_true(st.open <= 3);
}

static void test_segment_deleted_behind_the_log_is_an_error(void **state)
{
    fixture *f = *state;
    assert_int_equal(stream_log_files_new(3, &f->files), 0);
    open_log(f, 0);
    fill(f, 0);
    read_all(f, 0); /* segment 0 is closed again by the end */
    char path[160];
    snprintf(path, sizeof path, "%s/t-0/%020d.log", f->dir, 0);
    assert_int_equal(unlink(path), 0);
    stream_buf buf;
    stream_buf_init(&buf);
    assert_int_equal(stream_log_read_copy(f->logs[0], 0, 512, &buf), STREAM_ENOENT);
    stream_log_slice sl;
    assert_int_equal(stream_log_read(f->logs[0], 0, 512, &sl), STREAM_ENOENT);
    /* The rest of the log is still served. */
    stream_buf_reset(&buf);
    assert_int_equal(stream_log_read_copy(f->logs[0], f->ends[0] - 1, 512, &buf), 0);
    stream_buf_release(&buf);
}

static void test_log_with_more_segments_than_the_budget_reopens(void **state)
{
    fixture *f = *state;
    assert_int_equal(stream_log_files_new(4, &f->files), 0);
    open_log(f, 0);
    fill(f, 0);
    stream_log_close(f->logs[0]);
    f->logs[0] = NULL;
    stream_log_files_stats st;
    stats(f, &st);
    assert_int_equal(st.open, 0);

    long before = fds_open();
    open_log(f, 0);
    assert_int_equal(stream_log_segment_count(f->logs[0]), SEGMENTS);
    stats(f, &st);
    assert_true(st.open <= 4);
    assert_int_equal(fds_open() - before, st.open);
    read_all(f, 0);
    stats(f, &st);
    assert_true(st.open <= 4);
}

static void test_cleaned_segments_join_the_budget(void **state)
{
    fixture *f = *state;
    assert_int_equal(stream_log_files_new(3, &f->files), 0);
    f->cfg.segment_bytes = 1024;
    f->cfg.cleanup_compact = true;
    f->cfg.cleanup_delete = false;
    long before = fds_open();
    open_log(f, 0);
    fill_keyed(f, 0);
    read_all(f, 0); /* every closed segment closed again but the last read */
    stream_cleaner_opts opts;
    stream_cleaner_opts_init(&opts);
    stream_log_clean_job *job = NULL;
    char err[512] = "";
    assert_int_equal(stream_log_clean_begin(f->logs[0], 5000, &opts, &job), 0);
    assert_non_null(job);
    int rc = stream_log_clean_run(job, err, sizeof err);
    stream_clean_stats st;
    rc = stream_log_clean_finish(f->logs[0], job, rc, &st, err, sizeof err);
    if (rc != 0)
        fail_msg("clean: %s: %s", stream_strerror(rc), err);
    assert_true(st.segments_rewritten > 0);
    /* The rewritten segments count in the budget and are closed and
     * reopened like the others: what stays readable is the last value of
     * each key, and no descriptor leaks. */
    stream_buf buf;
    stream_buf_init(&buf);
    for (int pass = 0; pass < 2; pass++) {
        int64_t off = stream_log_start_offset(f->logs[0]);
        while (off < f->ends[0]) {
            stream_buf_reset(&buf);
            rc = stream_log_read_copy(f->logs[0], off, 512, &buf);
            if (rc != 0)
                fail_msg("offset %" PRId64 ": %s", off, stream_strerror(rc));
            stream_batch_info info;
            for (size_t at = 0; at < buf.len; at += info.size) {
                assert_int_equal(stream_batch_check(buf.data + at, buf.len - at, &info, NULL, 0),
                                 0);
                off = info.base_offset + info.last_offset_delta + 1;
            }
        }
    }
    stream_buf_release(&buf);
    stream_log_files_stats fs;
    stats(f, &fs);
    assert_true(fs.open <= 3);
    assert_int_equal(fds_open() - before, fs.open);
    stream_log_close(f->logs[0]);
    f->logs[0] = NULL;
    assert_int_equal(fds_open(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_cache_closes_least_recently_used_and_reopens),
        T(test_active_segments_are_never_closed),
        T(test_rolled_segments_wait_for_their_sync_unpinned),
        T(test_sync_without_a_descriptor_waits_instead_of_failing_the_log),
        T(test_slice_keeps_its_descriptor_while_others_are_closed),
        T(test_segment_deleted_behind_the_log_is_an_error),
        T(test_log_with_more_segments_than_the_budget_reopens),
        T(test_cleaned_segments_join_the_budget),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
