/*
 * test_cleaner.c - log compaction (libstream/log/cleaner.c) on hand-built
 * logs: keys overwritten across segments, tombstones before and after
 * delete.retention.ms, every codec, holes, an empty result, producers' last
 * batches, a map too small for the keys, the swap files a crash leaves, a
 * model check against an in-memory map, and kill -9 during cleaning.
 *
 * Every test works on real files in its own mkdtemp directory. A full read
 * (read_all) walks the log from its start with stream_log_read_copy, checks
 * every batch's CRC and that offsets only increase, and returns the records.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stream/batch.h"
#include "stream/cleaner.h"
#include "stream/codec.h"
#include "stream/error.h"
#include "stream/log.h"

#define NOW INT64_C(1800000000000) /* a fixed "now" for passes and timestamps */
#define DAY INT64_C(86400000)

/* ---- fixture -------------------------------------------------------------------- */

typedef struct fixture {
    char dir[64];     /* the temp directory */
    char logdir[128]; /* dir/topic-0 */
    stream_log_config cfg;
    stream_cleaner_opts opts;
    stream_log *log;
} fixture;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void open_log(fixture *f)
{
    char err[256] = "";
    int rc = stream_log_open(f->logdir, &f->cfg, &f->log, NULL, err, sizeof err);
    if (rc != 0)
        fail_msg("open: %s: %s", stream_strerror(rc), err);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    strcpy(f->dir, "/tmp/test_cleaner.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->logdir, sizeof f->logdir, "%s/topic-0", f->dir);
    stream_log_config_init(&f->cfg);
    f->cfg.segment_bytes = 1024;
    f->cfg.index_interval_bytes = 128;
    f->cfg.cleanup_compact = true;
    f->cfg.cleanup_delete = false;
    f->cfg.flush_mode = STREAM_FLUSH_NEVER;
    stream_cleaner_opts_init(&f->opts);
    f->opts.dedupe_buffer_bytes = 1 << 20;
    open_log(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    stream_log_close(f->log);
    if (getenv("KEEP_DIR") == NULL)
        nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    else
        fprintf(stderr, "kept %s\n", f->dir);
    free(f);
    return 0;
}

static void reopen(fixture *f)
{
    stream_log_close(f->log);
    f->log = NULL;
    open_log(f);
}

/* One record to produce: value NULL is a tombstone, key NULL a keyless one. */
typedef struct rec {
    const char *key;
    const char *value;
} rec;

/* Appends one batch of n records (codec, producer id when pid >= 0) and
 * returns its base offset. */
static int64_t produce_batch(fixture *f, const rec *r, int n, stream_codec codec, int64_t pid,
                             int32_t seq)
{
    stream_batch_builder b;
    stream_batch_builder_init(&b);
    assert_int_equal(stream_batch_builder_set_codec(&b, codec, 0), 0);
    for (int i = 0; i < n; i++) {
        const char *k = r[i].key, *v = r[i].value;
        assert_int_equal(stream_batch_builder_append(&b, NOW - DAY + i, k,
                                                     k ? (int32_t)strlen(k) : -1, v,
                                                     v ? (int32_t)strlen(v) : -1, NULL, 0),
                         0);
    }
    if (pid >= 0)
        assert_int_equal(stream_batch_builder_set_producer(&b, pid, 0, seq), 0);
    const uint8_t *p;
    size_t len;
    assert_int_equal(stream_batch_builder_finish(&b, &p, &len), 0);
    uint8_t *copy = malloc(len);
    memcpy(copy, p, len);
    int64_t base = -1, dup;
    char err[256] = "";
    if (pid >= 0)
        assert_int_equal(stream_log_check_producer(f->log, copy, len, &dup, err, sizeof err), 0);
    int rc = stream_log_append(f->log, copy, len, &base, err, sizeof err);
    if (rc != 0)
        fail_msg("append: %s: %s", stream_strerror(rc), err);
    free(copy);
    stream_batch_builder_release(&b);
    return base;
}

static int64_t produce(fixture *f, const char *key, const char *value)
{
    rec r = {key, value};
    return produce_batch(f, &r, 1, STREAM_CODEC_NONE, -1, 0);
}

/* Closes the active segment so that what was produced may be cleaned. */
static void roll(fixture *f)
{
    assert_int_equal(stream_log_maybe_roll(f->log, NOW + 100 * DAY * 365), 0);
    assert_int_equal(stream_log_flush(f->log), 0);
}

static int clean_at(fixture *f, int64_t now, stream_clean_stats *st)
{
    char err[256] = "";
    stream_clean_stats local = {0};
    int rc = stream_log_clean(f->log, now, &f->opts, 0, st ? st : &local, err, sizeof err);
    if (rc < 0)
        fail_msg("clean: %s: %s", stream_strerror(rc), err);
    return rc;
}

/* A record read back. */
typedef struct got {
    int64_t offset;
    char key[32];
    char value[32]; /* "" with tomb set for a tombstone */
    bool tomb;
} got;

typedef struct reading {
    got *r;
    int n;
    int batches;
    int empty_batches;
    int codecs[8]; /* batches per codec */
} reading;

/* Reads the whole log: CRCs checked, offsets strictly increasing. */
static reading read_all(fixture *f)
{
    reading out = {0};
    int cap = 0;
    int64_t off = stream_log_start_offset(f->log), last = -1;
    int64_t end = stream_log_end_offset(f->log);
    stream_buf buf;
    stream_buf_init(&buf);
    while (off < end) {
        stream_buf_reset(&buf);
        assert_int_equal(stream_log_read_copy(f->log, off, 1 << 20, &buf), 0);
        assert_true(buf.len > 0);
        for (size_t at = 0; at < buf.len;) {
            stream_batch_info info;
            assert_int_equal(stream_batch_check(buf.data + at, buf.len - at, &info, NULL, 0), 0);
            out.batches++;
            out.empty_batches += info.record_count == 0;
            out.codecs[info.attributes & STREAM_BATCH_ATTR_CODEC_MASK]++;
            stream_record_iter it;
            stream_record r;
            assert_int_equal(stream_record_iter_start(&it, buf.data + at, info.size), 0);
            int rc;
            while ((rc = stream_record_iter_next(&it, &r)) == 1) {
                if (r.offset < off)
                    continue; /* before where this read started */
                assert_true(r.offset > last);
                last = r.offset;
                if (out.n == cap) {
                    cap = cap ? cap * 2 : 64;
                    out.r = realloc(out.r, (size_t)cap * sizeof *out.r);
                }
                got *g = &out.r[out.n++];
                memset(g, 0, sizeof *g);
                g->offset = r.offset;
                if (r.key_len > 0)
                    snprintf(g->key, sizeof g->key, "%.*s", (int)r.key_len, (const char *)r.key);
                g->tomb = r.value == NULL;
                if (r.value_len > 0)
                    snprintf(g->value, sizeof g->value, "%.*s", (int)r.value_len,
                             (const char *)r.value);
            }
            assert_int_equal(rc, 0);
            stream_record_iter_stop(&it);
            off = info.base_offset + info.last_offset_delta + 1;
            at += info.size;
        }
    }
    stream_buf_release(&buf);
    return out;
}

static const got *find_key(const reading *rd, const char *key)
{
    const got *found = NULL;
    for (int i = 0; i < rd->n; i++)
        if (strcmp(rd->r[i].key, key) == 0) {
            assert_null(found); /* at most once after a full cleaning */
            found = &rd->r[i];
        }
    return found;
}

/* ---- the rules -------------------------------------------------------------------- */

static void test_clean_keeps_the_latest_value_of_each_key_across_segments(void **state)
{
    fixture *f = *state;
    char k[32], v[32];
    int64_t last_off[10];
    for (int round = 0; round < 5; round++)
        for (int i = 0; i < 10; i++) {
            snprintf(k, sizeof k, "key-%d", i);
            snprintf(v, sizeof v, "v%d-%d", i, round);
            last_off[i] = produce(f, k, v);
        }
    roll(f);
    int64_t end = stream_log_end_offset(f->log);
    assert_true(stream_log_segment_count(f->log) > 3);
    int64_t size_before = stream_log_size(f->log);

    stream_clean_stats st = {0};
    assert_true(clean_at(f, NOW, &st) >= 1);
    assert_int_equal(st.records_removed, 40);
    assert_true(st.segments_rewritten >= 3);
    assert_true(stream_log_size(f->log) < size_before);
    assert_int_equal(stream_log_end_offset(f->log), end); /* offsets kept */

    for (int pass = 0; pass < 2; pass++) { /* as cleaned, then after a reopen */
        reading rd = read_all(f);
        assert_int_equal(rd.n, 10);
        for (int i = 0; i < 10; i++) {
            snprintf(k, sizeof k, "key-%d", i);
            snprintf(v, sizeof v, "v%d-4", i);
            const got *g = find_key(&rd, k);
            assert_non_null(g);
            assert_string_equal(g->value, v);
            assert_int_equal(g->offset, last_off[i]);
        }
        free(rd.r);
        reopen(f);
    }
    /* Appends go on at the same end. After an open the cleaner looks once
     * for tombstones past their horizon (it cannot know there are none),
     * removing nothing but merging the segments the first pass shrank (10
     * records in 1 KiB segments: one file); then it finds no work. */
    int segs_cleaned = stream_log_segment_count(f->log);
    assert_int_equal(produce(f, "key-0", "after"), end);
    stream_clean_stats st2 = {0};
    assert_int_equal(clean_at(f, NOW, &st2), 1);
    assert_true(st2.segments_rewritten >= 2);
    assert_int_equal(st2.records_removed, 0);
    assert_int_equal(stream_log_segment_count(f->log), 2); /* the merged one, the active */
    assert_true(segs_cleaned > 2);
    assert_int_equal(clean_at(f, NOW, NULL), 0);
    reading rd = read_all(f);
    assert_int_equal(rd.n, 11);
    free(rd.r);
}

static void test_active_segment_is_never_cleaned(void **state)
{
    fixture *f = *state;
    produce(f, "a", "1");
    produce(f, "a", "2");
    assert_int_equal(stream_log_flush(f->log), 0);
    assert_int_equal(clean_at(f, NOW, NULL), 0);
    reading rd = read_all(f);
    assert_int_equal(rd.n, 2);
    free(rd.r);
}

static void test_tombstones_stay_until_delete_retention_after_first_cleaning(void **state)
{
    fixture *f = *state;
    f->cfg.delete_retention_ms = DAY;
    assert_int_equal(stream_log_set_config(f->log, &f->cfg), 0);
    produce(f, "gone", "v1");
    produce(f, "kept", "k1");
    produce(f, "gone", "v2");
    int64_t tomb = produce(f, "gone", NULL);
    roll(f);

    stream_clean_stats st = {0};
    clean_at(f, NOW, &st);
    reading rd = read_all(f);
    assert_int_equal(rd.n, 2); /* kept=k1 and the tombstone */
    const got *g = find_key(&rd, "gone");
    assert_non_null(g);
    assert_true(g->tomb);
    assert_int_equal(g->offset, tomb);
    free(rd.r);

    /* Before the horizon nothing changes, even after a reopen. */
    reopen(f);
    clean_at(f, NOW + DAY - 1, NULL);
    rd = read_all(f);
    assert_int_equal(rd.n, 2);
    free(rd.r);

    /* After it the tombstone goes, with no new data needed. */
    memset(&st, 0, sizeof st);
    assert_true(clean_at(f, NOW + DAY + 1, &st) >= 1);
    assert_int_equal(st.tombstones_removed, 1);
    rd = read_all(f);
    assert_int_equal(rd.n, 1);
    assert_null(find_key(&rd, "gone"));
    assert_non_null(find_key(&rd, "kept"));
    free(rd.r);
}

static void test_every_codec_is_cleaned_and_recompressed(void **state)
{
    fixture *f = *state;
    f->cfg.segment_bytes = 1 << 20;
    assert_int_equal(stream_log_set_config(f->log, &f->cfg), 0);
    static const stream_codec codecs[] = {STREAM_CODEC_NONE, STREAM_CODEC_GZIP, STREAM_CODEC_SNAPPY,
                                          STREAM_CODEC_LZ4, STREAM_CODEC_ZSTD};
    for (size_t c = 0; c < 5; c++) {
        char k[5][32], v[5][32];
        rec r[5];
        for (int i = 0; i < 5; i++) {
            /* keys c-0, c-1, c-0, c-1, c-2: two overwritten inside the batch */
            snprintf(k[i], sizeof k[i], "%zu-%d", c, i < 4 ? i % 2 : 2);
            snprintf(v[i], sizeof v[i], "val-%zu-%d", c, i);
            r[i].key = k[i];
            r[i].value = v[i];
        }
        produce_batch(f, r, 5, codecs[c], -1, 0);
    }
    roll(f);
    stream_clean_stats st = {0};
    clean_at(f, NOW, &st);
    assert_int_equal(st.records_removed, 10);
    reading rd = read_all(f);
    assert_int_equal(rd.n, 15);
    for (size_t c = 0; c < 5; c++) {
        assert_int_equal(rd.codecs[codecs[c]], 1); /* each batch kept its codec */
        char k[32], v[32];
        snprintf(k, sizeof k, "%zu-0", c);
        snprintf(v, sizeof v, "val-%zu-2", c);
        assert_string_equal(find_key(&rd, k)->value, v);
        snprintf(k, sizeof k, "%zu-1", c);
        snprintf(v, sizeof v, "val-%zu-3", c);
        assert_string_equal(find_key(&rd, k)->value, v);
    }
    free(rd.r);
    reopen(f);
    rd = read_all(f);
    assert_int_equal(rd.n, 15);
    free(rd.r);
}

static void test_reads_at_removed_offsets_land_on_the_next_record(void **state)
{
    fixture *f = *state;
    int64_t first = produce(f, "x", "old");
    for (int i = 0; i < 30; i++)
        produce(f, "y", "filler");
    int64_t x2 = produce(f, "x", "new");
    roll(f);
    clean_at(f, NOW, NULL);
    /* A read from the removed first offset starts at a later batch. */
    stream_buf buf;
    stream_buf_init(&buf);
    assert_int_equal(stream_log_read_copy(f->log, first, 1 << 16, &buf), 0);
    stream_batch_info info;
    assert_int_equal(stream_batch_check(buf.data, buf.len, &info, NULL, 0), 0);
    assert_true(info.base_offset + info.last_offset_delta >= first);
    stream_buf_release(&buf);
    reading rd = read_all(f);
    assert_int_equal(rd.n, 2);
    assert_int_equal(find_key(&rd, "x")->offset, x2);
    free(rd.r);
}

static void test_cleaning_everything_away_leaves_a_log_that_goes_on(void **state)
{
    fixture *f = *state;
    f->cfg.delete_retention_ms = 0;
    assert_int_equal(stream_log_set_config(f->log, &f->cfg), 0);
    char k[32];
    for (int i = 0; i < 40; i++) {
        snprintf(k, sizeof k, "k%d", i % 8);
        produce(f, k, "v");
    }
    for (int i = 0; i < 8; i++) {
        snprintf(k, sizeof k, "k%d", i);
        produce(f, k, NULL);
    }
    roll(f);
    int64_t end = stream_log_end_offset(f->log);
    clean_at(f, NOW, NULL);     /* values go, tombstones get their horizon (now) */
    clean_at(f, NOW + 1, NULL); /* then the tombstones */
    reading rd = read_all(f);
    assert_int_equal(rd.n, 0);
    assert_true(rd.empty_batches >= 1); /* each segment keeps its last batch, empty */
    free(rd.r);
    reopen(f);
    assert_int_equal(stream_log_end_offset(f->log), end);
    assert_int_equal(produce(f, "k0", "back"), end);
    rd = read_all(f);
    assert_int_equal(rd.n, 1);
    free(rd.r);
}

static void test_a_producers_last_batch_is_kept_for_deduplication(void **state)
{
    fixture *f = *state;
    rec r = {"shared", "from-producer"};
    produce_batch(f, &r, 1, STREAM_CODEC_NONE, 42, 0);
    int64_t last = produce_batch(f, &r, 1, STREAM_CODEC_NONE, 42, 1);
    produce(f, "shared", "later"); /* supersedes both producer records */
    roll(f);
    clean_at(f, NOW, NULL);
    reading rd = read_all(f);
    assert_int_equal(rd.n, 1);
    assert_string_equal(rd.r[0].value, "later");
    assert_true(rd.empty_batches >= 1);
    free(rd.r);

    /* After a reopen the producer state still knows sequence 1 at `last`. */
    reopen(f);
    stream_batch_builder b;
    stream_batch_builder_init(&b);
    assert_int_equal(
        stream_batch_builder_append(&b, NOW, "shared", 6, "from-producer", 13, NULL, 0), 0);
    assert_int_equal(stream_batch_builder_set_producer(&b, 42, 0, 1), 0);
    const uint8_t *p;
    size_t len;
    assert_int_equal(stream_batch_builder_finish(&b, &p, &len), 0);
    int64_t dup = -1;
    char err[256];
    assert_int_equal(stream_log_check_producer(f->log, p, len, &dup, err, sizeof err),
                     STREAM_LOG_DUPLICATE);
    assert_int_equal(dup, last);
    stream_batch_builder_release(&b);
}

/* Copies the leader's batches from the follower's end, a fetch of max_bytes
 * at a time, until the follower reaches upto (or the leader's end). */
static void replicate(stream_log *leader, stream_log *follower, int64_t upto, size_t max_bytes)
{
    stream_buf buf;
    stream_buf_init(&buf);
    int64_t end = stream_log_end_offset(follower);
    for (int fetches = 0; end < upto && end < stream_log_end_offset(leader); fetches++) {
        assert_true(fetches < 10000);
        stream_buf_reset(&buf);
        assert_int_equal(stream_log_read_copy(leader, end, max_bytes, &buf), 0);
        char err[256] = "";
        int rc = stream_log_append_replica(follower, buf.data, buf.len, &end, err, sizeof err);
        if (rc != 0)
            fail_msg("append_replica at %" PRId64 ": %s: %s", end, stream_strerror(rc), err);
    }
    stream_buf_release(&buf);
}

/* A follower stopped before the leader cleaned fetches from its end, which
 * now lies in or before the leader's holes: every batch it gets starts past
 * its end, and it must take them (a cluster's compacted topics otherwise
 * never catch up). Its copy then reads as the leader's, keeps the epochs and
 * the producer state, and survives a reopen. */
static void test_a_follower_catches_up_across_the_leaders_holes(void **state)
{
    fixture *f = *state;
    char k[32], v[32];
    rec idem = {"idem", "first"};
    stream_log_set_leader_epoch(f->log, 3);
    produce_batch(f, &idem, 1, STREAM_CODEC_NONE, 42, 0);
    for (int i = 0; i < 120; i++) {
        snprintf(k, sizeof k, "k%d", i % 10);
        snprintf(v, sizeof v, "v%d", i);
        produce(f, k, v);
    }
    int64_t idem_last = produce_batch(f, &idem, 1, STREAM_CODEC_NONE, 42, 1);
    stream_log_set_leader_epoch(f->log, 5);
    for (int i = 0; i < 40; i++) {
        snprintf(k, sizeof k, "k%d", i % 10);
        snprintf(v, sizeof v, "w%d", i);
        produce(f, k, v);
    }
    int64_t epoch5_start = stream_log_end_offset(f->log) - 40;

    char fdir[160];
    snprintf(fdir, sizeof fdir, "%s/follower-0", f->dir);
    stream_log *follower = NULL;
    char err[256] = "";
    assert_int_equal(stream_log_open(fdir, &f->cfg, &follower, NULL, err, sizeof err), 0);
    replicate(f->log, follower, 30, 300); /* then it stops */
    int64_t stopped_at = stream_log_end_offset(follower);

    roll(f);
    stream_clean_stats st = {0};
    clean_at(f, NOW, &st);
    assert_true(st.records_removed > 100);
    produce(f, "k0", "after");
    int64_t end = stream_log_end_offset(f->log);
    /* The leader's next batch after the stop is past the follower's end. */
    stream_buf buf;
    stream_buf_init(&buf);
    assert_int_equal(stream_log_read_copy(f->log, stopped_at, 1, &buf), 0);
    stream_batch_info info;
    assert_int_equal(stream_batch_check(buf.data, buf.len, &info, NULL, 0), 0);
    assert_true(info.base_offset > stopped_at);
    stream_buf_release(&buf);

    /* Epoch 5's first batches went: on the follower it starts where the
     * leader's first remaining one does (Kafka's followers too). */
    stream_buf_init(&buf);
    assert_int_equal(stream_log_read_copy(f->log, epoch5_start, 1, &buf), 0);
    assert_int_equal(stream_batch_check(buf.data, buf.len, &info, NULL, 0), 0);
    assert_true(info.base_offset > epoch5_start);
    epoch5_start = info.base_offset;
    stream_buf_release(&buf);

    replicate(f->log, follower, INT64_MAX, 512);
    assert_int_equal(stream_log_end_offset(follower), end);
    for (int reopened = 0; reopened < 2; reopened++) {
        /* Every offset past the stop reads from the same batch on both. */
        for (int64_t off = stopped_at; off < end; off++) {
            stream_log_slice a, b;
            assert_int_equal(stream_log_read(f->log, off, 1, &a), 0);
            assert_int_equal(stream_log_read(follower, off, 1, &b), 0);
            assert_int_equal(a.first_offset, b.first_offset);
            assert_int_equal(a.len, b.len);
            stream_log_slice_release(&a);
            stream_log_slice_release(&b);
        }
        stream_log *leader = f->log;
        f->log = follower; /* read_all checks CRCs and increasing offsets */
        reading rd = read_all(f);
        f->log = leader;
        for (int i = 0; i < 10; i++) {
            snprintf(k, sizeof k, "k%d", i);
            const got *g = NULL;
            for (int j = 0; j < rd.n; j++)
                if (strcmp(rd.r[j].key, k) == 0)
                    g = &rd.r[j]; /* the last one read */
            assert_non_null(g);
            snprintf(v, sizeof v, "w%d", 30 + i);
            assert_string_equal(g->value, i == 0 ? "after" : v);
        }
        free(rd.r);
        int32_t found = -1;
        int64_t epoch_end = -1;
        assert_int_equal(stream_log_epoch_end_offset(follower, 3, &found, &epoch_end), 0);
        assert_int_equal(found, 3);
        assert_int_equal(epoch_end, epoch5_start);
        /* The producer's last batch came across: its retry is a duplicate. */
        stream_batch_builder b;
        stream_batch_builder_init(&b);
        assert_int_equal(stream_batch_builder_append(&b, NOW, "idem", 4, "first", 5, NULL, 0), 0);
        assert_int_equal(stream_batch_builder_set_producer(&b, 42, 0, 1), 0);
        const uint8_t *p;
        size_t len;
        assert_int_equal(stream_batch_builder_finish(&b, &p, &len), 0);
        int64_t dup = -1;
        assert_int_equal(stream_log_check_producer(follower, p, len, &dup, err, sizeof err),
                         STREAM_LOG_DUPLICATE);
        assert_int_equal(dup, idem_last);
        stream_batch_builder_release(&b);

        stream_log_close(follower);
        follower = NULL;
        assert_int_equal(stream_log_open(fdir, &f->cfg, &follower, NULL, err, sizeof err), 0);
        assert_int_equal(stream_log_end_offset(follower), end);
    }
    /* An overlap is still refused. */
    stream_buf_init(&buf);
    assert_int_equal(stream_log_read_copy(f->log, end - 1, 1, &buf), 0);
    int64_t fend = -1;
    assert_int_equal(stream_log_append_replica(follower, buf.data, buf.len, &fend, err, sizeof err),
                     STREAM_EOFFSET);
    assert_int_equal(fend, end);
    stream_buf_release(&buf);
    stream_log_close(follower);
}

static void test_a_map_too_small_cleans_in_several_passes(void **state)
{
    fixture *f = *state;
    f->opts.dedupe_buffer_bytes = 16 * STREAM_CLEANER_MAP_ENTRY_BYTES; /* 14 keys */
    char k[32], v[32];
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 60; i++) {
            snprintf(k, sizeof k, "key-%02d", i);
            snprintf(v, sizeof v, "r%d", round);
            produce(f, k, v);
        }
    roll(f);
    stream_clean_stats st = {0};
    int passes = clean_at(f, NOW, &st);
    assert_true(passes >= 5);
    assert_int_equal(st.records_removed, 60);
    reading rd = read_all(f);
    assert_int_equal(rd.n, 60);
    for (int i = 0; i < 60; i++) {
        snprintf(k, sizeof k, "key-%02d", i);
        assert_string_equal(find_key(&rd, k)->value, "r1");
    }
    free(rd.r);
}

static void test_keyless_records_are_refused_by_a_compacted_log(void **state)
{
    fixture *f = *state;
    rec r[2] = {{"k", "v"}, {NULL, "no key"}};
    stream_batch_builder b;
    stream_batch_builder_init(&b);
    for (int i = 0; i < 2; i++)
        assert_int_equal(stream_batch_builder_append(&b, NOW, r[i].key, r[i].key ? 1 : -1,
                                                     r[i].value, (int32_t)strlen(r[i].value), NULL,
                                                     0),
                         0);
    const uint8_t *p;
    size_t len;
    assert_int_equal(stream_batch_builder_finish(&b, &p, &len), 0);
    uint8_t *copy = malloc(len);
    memcpy(copy, p, len);
    int64_t base;
    char err[256] = "";
    assert_int_equal(stream_log_append(f->log, copy, len, &base, err, sizeof err),
                     STREAM_EBADRECORD);
    assert_non_null(strstr(err, "without a key"));
    assert_int_equal(stream_log_end_offset(f->log), 0);
    /* The same batch is fine for a delete-policy log. */
    f->cfg.cleanup_compact = false;
    f->cfg.cleanup_delete = true;
    assert_int_equal(stream_log_set_config(f->log, &f->cfg), 0);
    assert_int_equal(stream_log_append(f->log, copy, len, &base, err, sizeof err), 0);
    free(copy);
    stream_batch_builder_release(&b);
}

static void test_status_reports_the_dirty_ratio_and_the_last_cleaning(void **state)
{
    fixture *f = *state;
    char k[32];
    for (int i = 0; i < 60; i++) {
        snprintf(k, sizeof k, "k%d", i % 5);
        produce(f, k, "value");
    }
    roll(f);
    stream_log_clean_status cs;
    stream_log_clean_status_get(f->log, NOW, &cs);
    assert_int_equal(cs.dirty_ratio_ppm, 1000000);
    assert_true(cs.due);
    assert_int_equal(cs.last_clean_ms, -1);
    clean_at(f, NOW, NULL);
    stream_log_clean_status_get(f->log, NOW, &cs);
    assert_int_equal(cs.dirty_ratio_ppm, 0);
    assert_false(cs.due);
    assert_int_equal(cs.last_clean_ms, NOW);
    assert_int_equal(cs.clean_offset, 60);
    /* min.compaction.lag.ms keeps young segments out. */
    for (int i = 0; i < 60; i++)
        produce(f, "k0", "again");
    roll(f);
    f->cfg.min_compaction_lag_ms = 10 * DAY;
    assert_int_equal(stream_log_set_config(f->log, &f->cfg), 0);
    stream_log_clean_status_get(f->log, NOW, &cs);
    assert_int_equal(cs.dirty_bytes, 0);
    assert_int_equal(clean_at(f, NOW, NULL), 0);
    /* min.cleanable.dirty.ratio 1 is not reached by a half-dirty log... */
    f->cfg.min_compaction_lag_ms = 0;
    f->cfg.min_cleanable_dirty_ratio_ppm = 1000000;
    assert_int_equal(stream_log_set_config(f->log, &f->cfg), 0);
    stream_log_clean_status_get(f->log, NOW, &cs);
    assert_true(cs.dirty_ratio_ppm > 0 && cs.dirty_ratio_ppm < 1000000);
    assert_false(cs.due);
    /* ...but max.compaction.lag.ms forces it. */
    f->cfg.max_compaction_lag_ms = 1;
    assert_int_equal(stream_log_set_config(f->log, &f->cfg), 0);
    stream_log_clean_status_get(f->log, NOW, &cs);
    assert_true(cs.due);
}

static void test_truncation_moves_the_clean_offset_down(void **state)
{
    fixture *f = *state;
    char k[32];
    for (int i = 0; i < 40; i++) {
        snprintf(k, sizeof k, "k%d", i % 4);
        produce(f, k, "old");
    }
    roll(f);
    clean_at(f, NOW, NULL);
    stream_log_clean_status cs;
    stream_log_clean_status_get(f->log, NOW, &cs);
    assert_int_equal(cs.clean_offset, 40);
    /* A replica cut back below 40 (to the batch after the hole 20 is
     * in): what is appended from the new end is dirty. */
    assert_int_equal(stream_log_truncate_to(f->log, 20), 0);
    int64_t end = stream_log_end_offset(f->log);
    assert_true(end >= 20 && end < 40);
    stream_log_clean_status_get(f->log, NOW, &cs);
    assert_int_equal(cs.clean_offset, end);
    /* The file says so too. (A reopen ends the log where its last batch
     * ends, which after a cut into a hole is below the end before.) */
    reopen(f);
    end = stream_log_end_offset(f->log);
    stream_log_clean_status_get(f->log, NOW, &cs);
    assert_int_equal(cs.clean_offset, end);
    for (int i = 0; i < 40; i++) {
        snprintf(k, sizeof k, "k%d", i % 4);
        produce(f, k, "new");
    }
    roll(f);
    clean_at(f, NOW, NULL);
    reading rd = read_all(f);
    assert_int_equal(rd.n, 4);
    for (int i = 0; i < 4; i++)
        assert_string_equal(rd.r[i].value, "new");
    free(rd.r);
}

/* ---- crash safety ----------------------------------------------------------------- */

static void copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY);
    assert_true(in >= 0);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(out >= 0);
    char buf[4096];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        assert_int_equal(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
}

static bool exists(const fixture *f, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", f->logdir, name);
    return access(path, F_OK) == 0;
}

static void test_open_completes_swaps_and_discards_cleaned_files(void **state)
{
    fixture *f = *state;
    char k[32];
    for (int i = 0; i < 40; i++) {
        snprintf(k, sizeof k, "k%d", i % 4);
        produce(f, k, "value");
    }
    roll(f);
    /* Keep the first segment as it was, clean, then put things back as a
     * crash between the renames would leave them: the old .log with the
     * cleaned copy beside it as .swap, and a stray .cleaned. */
    char seg0[256], saved[256], path[256];
    snprintf(seg0, sizeof seg0, "%s/%020d.log", f->logdir, 0);
    snprintf(saved, sizeof saved, "%s/saved", f->dir);
    copy_file(seg0, saved);
    clean_at(f, NOW, NULL);
    stream_log_close(f->log);
    f->log = NULL;
    snprintf(path, sizeof path, "%s/%020d.log.swap", f->logdir, 0);
    copy_file(seg0, path);  /* the cleaned one as .swap */
    copy_file(saved, seg0); /* the old one back */
    snprintf(path, sizeof path, "%s/%020d.log.cleaned", f->logdir, 7);
    copy_file(saved, path); /* garbage that never got swapped */
    snprintf(path, sizeof path, "%s/%020d.log.swap", f->logdir, 99999);
    copy_file(saved, path); /* a swap whose segment is gone */
    open_log(f);
    assert_false(exists(f, "00000000000000000000.log.swap"));
    assert_false(exists(f, "00000000000000000007.log.cleaned"));
    assert_false(exists(f, "00000000000000099999.log.swap"));
    assert_false(exists(f, "00000000000000099999.log"));
    reading rd = read_all(f);
    assert_int_equal(rd.n, 4);
    free(rd.r);
}

/* The key's record with the highest offset in rd, NULL when none. */
static const got *last_of(const reading *rd, const char *key)
{
    const got *g = NULL;
    for (int j = 0; j < rd->n; j++)
        if (strcmp(rd->r[j].key, key) == 0)
            g = &rd->r[j];
    return g;
}

/* Overwrites every one of `keys` keys once (a batch each); *last gets
 * each key's offset and value "v<i>-<round>". */
static void overwrite_all(fixture *f, int keys, int round, int64_t *last)
{
    char k[32], v[32];
    for (int i = 0; i < keys; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        snprintf(v, sizeof v, "v%d-%d", i, round);
        last[i] = produce(f, k, v);
    }
}

/* Each key's last record in rd has the value of `round`, at its offset in
 * last. */
static void check_last_values(const reading *rd, int keys, int round, const int64_t *last)
{
    char k[32], v[32];
    for (int i = 0; i < keys; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        snprintf(v, sizeof v, "v%d-%d", i, round);
        const got *g = last_of(rd, k);
        assert_non_null(g);
        assert_string_equal(g->value, v);
        assert_int_equal(g->offset, last[i]);
    }
}

/* Every key once, with the value of `round` at its offset in last. */
static void check_latest(fixture *f, int keys, int round, const int64_t *last)
{
    reading rd = read_all(f); /* offsets increasing, nothing twice */
    assert_int_equal(rd.n, keys);
    check_last_values(&rd, keys, round, last);
    free(rd.r);
}

static int list_bases(const char *dir, int64_t *bases, int max);

/* The .log files of the log's directory: how many, their total size and
 * the largest. */
static int log_files(const fixture *f, int64_t *bytes, int64_t *largest)
{
    int64_t bases[256];
    int n = list_bases(f->logdir, bases, 256);
    *bytes = *largest = 0;
    for (int i = 0; i < n; i++) {
        char path[600];
        struct stat st;
        snprintf(path, sizeof path, "%s/%020" PRId64 ".log", f->logdir, bases[i]);
        assert_int_equal(stat(path, &st), 0);
        *bytes += st.st_size;
        if (st.st_size > *largest)
            *largest = st.st_size;
    }
    return n;
}

/* 20 keys overwritten in 10 rounds, a batch a record, closed: many full
 * 1 KiB segments. */
static void ten_rounds(fixture *f, int64_t last[20])
{
    for (int round = 0; round < 10; round++)
        overwrite_all(f, 20, round, last);
    roll(f);
}

static void test_cleaned_segments_are_merged_up_to_segment_bytes(void **state)
{
    fixture *f = *state;
    int64_t last[20];
    ten_rounds(f, last);
    int64_t end = stream_log_end_offset(f->log);
    int before = stream_log_segment_count(f->log);
    assert_true(before > 10);
    /* The first pass shrinks every segment (a tenth of the records stay)
     * but cannot merge them: each was full. */
    clean_at(f, NOW, NULL);
    assert_int_equal(stream_log_segment_count(f->log), before);
    /* The next pass (new dirty records) merges what the first shrank. */
    overwrite_all(f, 20, 10, last);
    roll(f);
    stream_clean_stats st = {0};
    assert_true(clean_at(f, NOW, &st) >= 1);
    int64_t bytes, largest;
    int files = log_files(f, &bytes, &largest);
    assert_int_equal(files, stream_log_segment_count(f->log));
    /* Greedy groups: any two neighbours hold more than segment.bytes. */
    assert_true(largest <= f->cfg.segment_bytes);
    assert_true(files - 1 <= 2 * bytes / f->cfg.segment_bytes + 1);
    assert_true(files < before / 2);
    assert_true(st.segments_rewritten > files);
    assert_true(stream_log_end_offset(f->log) > end);
    end = stream_log_end_offset(f->log);
    check_latest(f, 20, 10, last);
    reopen(f);
    assert_int_equal(stream_log_end_offset(f->log), end);
    check_latest(f, 20, 10, last);
    assert_int_equal(produce(f, "key-0", "after"), end); /* appends go on */
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The bases of dir's .log files, ascending, into bases; returns how many. */
static int list_bases(const char *dir, int64_t *bases, int max)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strlen(e->d_name) == 24 && strcmp(e->d_name + 20, ".log") == 0 && n < max)
            bases[n++] = strtoll(e->d_name, NULL, 10);
    closedir(d);
    qsort(bases, (size_t)n, sizeof *bases, cmp_i64);
    return n;
}

static void test_open_completes_a_merge_left_half_done(void **state)
{
    fixture *f = *state;
    int64_t last[20];
    ten_rounds(f, last);
    clean_at(f, NOW, NULL);
    overwrite_all(f, 20, 10, last);
    roll(f);
    /* Save the segments as they are before the merging pass. */
    stream_log_close(f->log);
    f->log = NULL;
    char saved[300], from[600], to[600];
    snprintf(saved, sizeof saved, "%s/saved", f->dir);
    assert_int_equal(mkdir(saved, 0755), 0);
    int64_t old[64], merged[64];
    int nold = list_bases(f->logdir, old, 64);
    for (int i = 0; i < nold; i++) {
        snprintf(from, sizeof from, "%s/%020" PRId64 ".log", f->logdir, old[i]);
        snprintf(to, sizeof to, "%s/%020" PRId64 ".log", saved, old[i]);
        copy_file(from, to);
    }
    snprintf(from, sizeof from, "%s/cleaner-offset-checkpoint", f->logdir);
    snprintf(to, sizeof to, "%s/cleaner-offset-checkpoint", saved);
    copy_file(from, to);
    open_log(f);
    int64_t end = stream_log_end_offset(f->log);
    clean_at(f, NOW, NULL);
    stream_log_close(f->log);
    f->log = NULL;
    int nmerged = list_bases(f->logdir, merged, 64);
    assert_true(nmerged < nold);
    /* A kill after the first group's .swap was made durable (the later
     * groups' were still .cleaned, so discarded) and one of the segments it
     * merged was removed: the merged first group as .swap, the old segments
     * back except that one, the old clean offset, no indexes. */
    int64_t first = merged[0];
    assert_true(nmerged >= 2 && old[1] < merged[1]); /* old[1] was merged into the first */
    snprintf(from, sizeof from, "%s/%020" PRId64 ".log", f->logdir, first);
    snprintf(to, sizeof to, "%s/%020" PRId64 ".log.swap", f->logdir, first);
    copy_file(from, to);
    for (int i = 0; i < nmerged; i++) {
        snprintf(from, sizeof from, "%s/%020" PRId64 ".log", f->logdir, merged[i]);
        unlink(from);
    }
    for (int i = 0; i < nold; i++) {
        if (i == 1)
            continue; /* merged into the first group and already removed */
        snprintf(from, sizeof from, "%s/%020" PRId64 ".log", saved, old[i]);
        snprintf(to, sizeof to, "%s/%020" PRId64 ".log", f->logdir, old[i]);
        copy_file(from, to);
    }
    snprintf(from, sizeof from, "%s/cleaner-offset-checkpoint", saved);
    snprintf(to, sizeof to, "%s/cleaner-offset-checkpoint", f->logdir);
    copy_file(from, to);
    DIR *d = opendir(f->logdir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, "index") != NULL) {
            snprintf(from, sizeof from, "%s/%s", f->logdir, e->d_name);
            unlink(from);
        }
    closedir(d);
    open_log(f);
    char swapname[64];
    snprintf(swapname, sizeof swapname, "%020" PRId64 ".log.swap", first);
    assert_false(exists(f, swapname));
    assert_int_equal(stream_log_end_offset(f->log), end);
    /* The segments the swap merged are gone, the others still old: each
     * key's latest record is there (read_all: no offset twice), and older
     * ones of the groups never swapped. */
    int64_t now_bases[64];
    int n = list_bases(f->logdir, now_bases, 64);
    assert_true(n < nold);
    for (int i = 0; i < n; i++)
        assert_false(now_bases[i] > first && now_bases[i] < merged[1]);
    reading rd = read_all(f);
    assert_true(rd.n >= 20);
    check_last_values(&rd, 20, 10, last);
    free(rd.r);
    /* The next pass finishes the cleaning. */
    assert_true(clean_at(f, NOW, NULL) >= 1);
    check_latest(f, 20, 10, last);
}

/* ---- model check -------------------------------------------------------------------- */

#define MODEL_KEYS 40

typedef struct model {
    char value[MODEL_KEYS][32]; /* latest value */
    int state[MODEL_KEYS];      /* 0 never written, 1 value, 2 deleted */
    int64_t offset[MODEL_KEYS]; /* offset of the latest record */
} model;

/* After a full cleaning: every live key once with its latest value and
 * offset; a deleted key at most as its tombstone; nothing else. */
static void check_model(fixture *f, const model *m, bool tombstones_expired, int64_t closed_end)
{
    reading rd = read_all(f);
    char k[32];
    for (int i = 0; i < MODEL_KEYS; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        const got *g = NULL;
        int seen = 0;
        for (int j = 0; j < rd.n; j++)
            if (strcmp(rd.r[j].key, k) == 0 && rd.r[j].offset < closed_end) {
                g = &rd.r[j];
                seen++;
            }
        /* The active segment holds records not yet cleaned. */
        if (m->offset[i] >= closed_end || m->state[i] == 0)
            continue;
        assert_int_equal(seen, m->state[i] == 2 && tombstones_expired ? 0 : 1);
        if (seen == 0)
            continue;
        assert_int_equal(g->offset, m->offset[i]);
        if (m->state[i] == 1)
            assert_string_equal(g->value, m->value[i]);
        else
            assert_true(g->tomb);
    }
    free(rd.r);
}

static void test_model_random_overwrites_and_deletes_match_a_map(void **state)
{
    fixture *f = *state;
    f->cfg.delete_retention_ms = DAY;
    assert_int_equal(stream_log_set_config(f->log, &f->cfg), 0);
    f->opts.dedupe_buffer_bytes = 24 * STREAM_CLEANER_MAP_ENTRY_BYTES; /* passes, too */
    model m;
    memset(&m, 0, sizeof m);
    unsigned seed = 1500;
    int64_t now = NOW;
    for (int round = 0; round < 12; round++) {
        int ops = 20 + (int)(rand_r(&seed) % 80);
        for (int o = 0; o < ops; o++) {
            int i = (int)(rand_r(&seed) % MODEL_KEYS);
            char k[32];
            snprintf(k, sizeof k, "key-%d", i);
            if (rand_r(&seed) % 5 == 0) {
                m.offset[i] = produce(f, k, NULL);
                m.state[i] = 2;
            } else {
                snprintf(m.value[i], sizeof m.value[i], "v%d-%d", round, o);
                m.offset[i] = produce(f, k, m.value[i]);
                m.state[i] = 1;
            }
        }
        roll(f);
        int64_t end = stream_log_end_offset(f->log);
        clean_at(f, now, NULL);
        check_model(f, &m, false, end);
        if (round % 4 == 3) { /* every tombstone's horizon passes */
            now += 2 * DAY;
            clean_at(f, now, NULL);
            check_model(f, &m, true, end);
            for (int i = 0; i < MODEL_KEYS; i++)
                if (m.state[i] == 2)
                    m.state[i] = 0;
        }
        if (round % 3 == 2)
            reopen(f);
        assert_int_equal(stream_log_end_offset(f->log), end);
    }
}

/* ---- kill -9 during cleaning ---------------------------------------------------------- */

/* 25 runs in make check; STREAM_CLEANER_KILL_RUNS=N runs N: `make
 * soak-cleaner` runs 200 (CLEANER_KILL_RUNS), issue 15 asks for 50 or more. */
#define KILL_RUNS_DEFAULT 25
#define KILL_KEYS 50

static int kill_runs(void)
{
    const char *v = getenv("STREAM_CLEANER_KILL_RUNS");
    int n = v != NULL ? atoi(v) : 0;
    return n > 0 ? n : KILL_RUNS_DEFAULT;
}

/* Files in the log's directory whose names end in ext. */
static int count_files(const fixture *f, const char *ext)
{
    DIR *d = opendir(f->logdir);
    assert_non_null(d);
    int n = 0;
    size_t el = strlen(ext);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        n += len > el && strcmp(e->d_name + len - el, ext) == 0;
    }
    closedir(d);
    return n;
}

/* Fills a fresh log: KILL_KEYS keys written 8 times each, some deleted;
 * the first 4 rounds cleaned already, so the segments they shrank are
 * merged by the next cleaning (its swap then spans several segments). */
static void kill_fill(fixture *f, char latest[KILL_KEYS][32], bool deleted[KILL_KEYS])
{
    char k[32];
    for (int round = 0; round < 8; round++)
        for (int i = 0; i < KILL_KEYS; i++) {
            if (round == 4 && i == 0) {
                roll(f);
                clean_at(f, NOW, NULL);
            }
            snprintf(k, sizeof k, "key-%d", i);
            bool del = round == 7 && i % 7 == 0;
            snprintf(latest[i], 32, "v%d-%d", i, round);
            produce(f, k, del ? NULL : latest[i]);
            deleted[i] = del;
        }
    roll(f);
}

/* What any state a crash leaves must hold: each key's latest record
 * present (value or tombstone), nothing twice, offsets increasing (read_all),
 * and only records that were written. */
static void kill_check(fixture *f, char latest[KILL_KEYS][32], bool deleted[KILL_KEYS], int64_t end)
{
    assert_int_equal(stream_log_end_offset(f->log), end);
    reading rd = read_all(f);
    assert_true(rd.n >= KILL_KEYS);
    assert_true(rd.n <= KILL_KEYS * 8);
    for (int i = 0; i < KILL_KEYS; i++) {
        char k[32];
        snprintf(k, sizeof k, "key-%d", i);
        const got *last = last_of(&rd, k);
        assert_non_null(last);
        if (deleted[i])
            assert_true(last->tomb);
        else
            assert_string_equal(last->value, latest[i]);
    }
    free(rd.r);
}

static void test_kill9_during_cleaning_leaves_old_or_new_segments(void **state)
{
    fixture *f = *state;
    unsigned seed = 4242;
    int cut_short = 0, left_aside = 0;
    const int runs = kill_runs();
    f->cfg.segment_bytes = 4096; /* about 8 segments: fewer syncs per run */
    for (int run = 0; run < runs; run++) {
        stream_log_close(f->log);
        f->log = NULL;
        nftw(f->logdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        open_log(f);
        char latest[KILL_KEYS][32];
        bool deleted[KILL_KEYS];
        kill_fill(f, latest, deleted);
        int segs_filled = stream_log_segment_count(f->log);
        int64_t end = stream_log_end_offset(f->log);
        int64_t bytes = stream_log_size(f->log);
        stream_log_close(f->log);
        f->log = NULL;

        /* The child's I/O is throttled to the log's size every 100 ms; a
         * cleaning reads it twice and writes a part, so it takes about
         * 250 ms, and the kill falls anywhere in it (or just after). */
        f->opts.io_max_bytes_per_second = bytes * 10;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            stream_log *log;
            char err[256];
            if (stream_log_open(f->logdir, &f->cfg, &log, NULL, err, sizeof err) != 0)
                _exit(3);
            stream_clean_stats st = {0};
            int rc = stream_log_clean(log, NOW, &f->opts, 0, &st, err, sizeof err);
            _exit(rc < 0 ? 4 : 0);
        }
        useconds_t delay = (useconds_t)(rand_r(&seed) % 280000);
        usleep(delay);
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (WIFSIGNALED(status))
            cut_short++;
        else
            assert_int_equal(WEXITSTATUS(status), 0);

        left_aside += count_files(f, ".log.cleaned") + count_files(f, ".log.swap") > 0;
        open_log(f);
        /* Recovery completed or discarded what the kill left aside. */
        assert_int_equal(count_files(f, ".log.cleaned"), 0);
        assert_int_equal(count_files(f, ".log.swap"), 0);
        kill_check(f, latest, deleted, end);
        /* A full cleaning after recovery gives exactly the latest values. */
        f->opts.io_max_bytes_per_second = -1;
        clean_at(f, NOW, NULL);
        reading rd = read_all(f);
        assert_int_equal(rd.n, KILL_KEYS);
        free(rd.r);
        kill_check(f, latest, deleted, end);
        assert_true(stream_log_segment_count(f->log) < segs_filled); /* merged */
    }
    /* Most runs must really have been killed mid-way. */
    print_message("%d of %d cleanings killed, %d leaving cleaned files aside\n", cut_short,
                  runs, left_aside);
    assert_true(cut_short >= runs / 2);
    assert_true(left_aside >= runs / 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_clean_keeps_the_latest_value_of_each_key_across_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_active_segment_is_never_cleaned, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_tombstones_stay_until_delete_retention_after_first_cleaning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_codec_is_cleaned_and_recompressed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reads_at_removed_offsets_land_on_the_next_record,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_cleaning_everything_away_leaves_a_log_that_goes_on,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_producers_last_batch_is_kept_for_deduplication,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_follower_catches_up_across_the_leaders_holes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cleaned_segments_are_merged_up_to_segment_bytes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_completes_a_merge_left_half_done, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_map_too_small_cleans_in_several_passes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_keyless_records_are_refused_by_a_compacted_log, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_status_reports_the_dirty_ratio_and_the_last_cleaning,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation_moves_the_clean_offset_down, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_open_completes_swaps_and_discards_cleaned_files, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_model_random_overwrites_and_deletes_match_a_map, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_kill9_during_cleaning_leaves_old_or_new_segments,
                                        setup, teardown),
    };
    if (getenv("TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
