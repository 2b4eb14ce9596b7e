/*
 * fuzz_log_recovery.c - opening a partition directory whose files hold
 * anything at all (log.h): what a broker meets after a crash, a torn write or
 * a disk that returned garbage.
 *
 * Input layout (every part optional: a short input just leaves the rest out):
 *
 *   byte 0      flags: 0x01 .index file, 0x02 .timeindex file, 0x04 recovery-point,
 *               0x08 log-start-offset, 0x10 clean-shutdown marker, 0x20 a second
 *               segment, 0x40 index_interval_bytes 0 (an entry per batch)
 *   byte 1      base offset of the first segment: 0, 1000, 2^62, or the next 8 bytes
 *               (any int64_t >= 0: near INT64_MAX too, past STREAM_LOG_MAX_OFFSET)
 *   [0x01]      u16 length, then the .index bytes
 *   [0x02]      u16 length, then the .timeindex bytes
 *   [0x04]      u8 length, then the recovery-point text
 *   [0x08]      u8 length, then the log-start-offset text
 *   [0x20]      u16 split point in the log bytes; u8 added to the first base
 *               offset plus the first segment's batch offsets gives the second's
 *   rest        the .log bytes (the seeds are real segments written by stream_log)
 *
 * The files go into a fresh directory on tmpfs (/dev/shm when there is one)
 * and the log is opened. Without a clean-shutdown marker or recovery point
 * every batch is re-validated on open, so the properties are strict:
 *
 *   - open succeeds (recovery cuts bad bytes; it does not refuse the log),
 *     except with STREAM_ECORRUPT when a segment file is named past
 *     STREAM_LOG_MAX_OFFSET (log.h);
 *   - reading from the log start to the end returns whole batches that pass
 *     stream_batch_check, with offsets increasing (holes allowed: compaction
 *     leaves them) up to exactly the end offset;
 *   - with a marker or recovery point (trusted files) reads may report
 *     STREAM_ECORRUPT, but never return a batch that fails the check;
 *   - offset_for_time stays within [start, end];
 *   - a new batch appends and reads back (STREAM_EOFFSET when its offsets
 *     would pass STREAM_LOG_MAX_OFFSET); close then reopen gives the same
 *     start and end offsets.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "stream/batch.h"
#include "stream/buf.h"
#include "stream/error.h"
#include "stream/log.h"

#define F_INDEX             0x01
#define F_TIMEINDEX         0x02
#define F_RECOVERY_POINT    0x04
#define F_LOG_START         0x08
#define F_CLEAN             0x10
#define F_SECOND_SEGMENT    0x20
#define F_INDEX_EVERY_BATCH 0x40

static char base_dir[64]; /* this process's scratch dir, removed at exit */

static void cleanup(void)
{
    if (base_dir[0] != '\0')
        fuzz_remove_tree(base_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_scratch_dir(base_dir, sizeof base_dir, "log");
    atexit(cleanup);
    return 0;
}

static void write_file(const char *dir, const char *name, const void *p, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(len == 0 || write(fd, p, len) == (ssize_t)len);
    close(fd);
}

static void write_segment_file(const char *dir, int64_t base, const char *ext, const void *p,
                               size_t len)
{
    char name[64];
    snprintf(name, sizeof name, "%020" PRId64 "%s", base, ext);
    write_file(dir, name, p, len);
}

/* The offset after the batches at the start of p that decode, from base. */
static int64_t offsets_in(const uint8_t *p, size_t len, int64_t base)
{
    stream_batch_info info;
    size_t pos = 0;
    while (stream_batch_header_decode(p + pos, len - pos, &info) == 0 && info.size <= len - pos) {
        if (base > INT64_MAX - 1 - info.last_offset_delta)
            break;
        base += (int64_t)info.last_offset_delta + 1;
        pos += info.size;
    }
    return base;
}

/* The log-start-offset file as the log reads it (log.h): 1 to 19 digits
 * and "\n", at most STREAM_LOG_MAX_OFFSET; -1 when it would be ignored. */
static int64_t offset_text(const uint8_t *p, size_t len)
{
    if (p == NULL || len < 2 || len > 20 || p[len - 1] != '\n')
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len - 1; i++) {
        if (p[i] < '0' || p[i] > '9' || v > (STREAM_LOG_MAX_OFFSET - (p[i] - '0')) / 10)
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* A well-formed batch to append after recovery (built once). */
static uint8_t *fresh_batch;
static size_t fresh_len;

static void make_fresh_batch(void)
{
    if (fresh_batch != NULL)
        return;
    stream_batch_builder b;
    const uint8_t *p;
    stream_batch_builder_init(&b);
    FUZZ_CHECK(stream_batch_builder_append(&b, 1732442400000, "k", 1, "fresh", 5, NULL, 0) == 0);
    FUZZ_CHECK(stream_batch_builder_append(&b, 1732442400001, NULL, -1, "v", 1, NULL, 0) == 0);
    FUZZ_CHECK(stream_batch_builder_finish(&b, &p, &fresh_len) == 0);
    fresh_batch = malloc(fresh_len);
    FUZZ_CHECK(fresh_batch != NULL);
    memcpy(fresh_batch, p, fresh_len);
    stream_batch_builder_release(&b);
}

/* Reads the whole log back. Returns the offset reached. */
static int64_t read_all(stream_log *log, bool trusted)
{
    int64_t start = stream_log_start_offset(log), end = stream_log_end_offset(log);
    int64_t offset = start;
    stream_buf buf;
    stream_buf_init(&buf);
    for (int round = 0; offset < end && round < 100000; round++) {
        stream_buf_reset(&buf);
        int rc = stream_log_read_copy(log, offset, 64 * 1024, &buf);
        if (trusted && rc == STREAM_ECORRUPT)
            break;
        FUZZ_CHECK_MSG(rc == 0, "read_copy at %" PRId64 " (start %" PRId64 ", end %" PRId64 "): %s",
                       offset, start, end, stream_err_name(rc));
        FUZZ_CHECK_MSG(buf.len > 0, "empty read at %" PRId64 " before end %" PRId64, offset, end);
        size_t pos = 0;
        bool first = true;
        while (pos < buf.len) {
            stream_batch_info info;
            char err[256];
            rc = stream_batch_check(buf.data + pos, buf.len - pos, &info, err, sizeof err);
            FUZZ_CHECK_MSG(rc == 0, "read returned a bad batch at %" PRId64 ": %s", offset, err);
            int64_t last = info.base_offset + info.last_offset_delta;
            if (first)
                FUZZ_CHECK(last >= offset);
            else
                FUZZ_CHECK(info.base_offset >= offset);
            first = false;
            offset = last + 1;
            pos += info.size;
        }
    }
    stream_buf_release(&buf);
    return offset;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    make_fresh_batch();
    fuzz_in in;
    fuzz_in_init(&in, data, size);
    uint8_t flags = fuzz_u8(&in);
    uint8_t base_sel = fuzz_u8(&in);
    int64_t base = 0;
    switch (base_sel % 4) {
    case 1:
        base = 1000;
        break;
    case 2:
        base = INT64_C(1) << 62;
        break;
    case 3:
        base = (int64_t)(fuzz_u64(&in) & (uint64_t)INT64_MAX);
        break;
    }
    const uint8_t *index = NULL, *timeindex = NULL, *rp = NULL, *lso = NULL;
    size_t index_len = 0, timeindex_len = 0, rp_len = 0, lso_len = 0;
    if (flags & F_INDEX)
        index = fuzz_bytes(&in, fuzz_u16(&in), &index_len);
    if (flags & F_TIMEINDEX)
        timeindex = fuzz_bytes(&in, fuzz_u16(&in), &timeindex_len);
    if (flags & F_RECOVERY_POINT)
        rp = fuzz_bytes(&in, fuzz_u8(&in), &rp_len);
    if (flags & F_LOG_START)
        lso = fuzz_bytes(&in, fuzz_u8(&in), &lso_len);
    size_t split = 0;
    uint8_t second_gap = 0;
    if (flags & F_SECOND_SEGMENT) {
        split = fuzz_u16(&in);
        second_gap = fuzz_u8(&in);
    }
    size_t log_len;
    const uint8_t *log_bytes = fuzz_rest(&in, &log_len);
    if (split > log_len)
        split = log_len;

    char dir[128];
    snprintf(dir, sizeof dir, "%s/t-0", base_dir);
    FUZZ_CHECK(mkdir(dir, 0755) == 0 || errno == EEXIST);
    int64_t last_base = base; /* of the last segment file */
    if (flags & F_SECOND_SEGMENT) {
        int64_t base2 = offsets_in(log_bytes, split, base);
        base2 = base2 > INT64_MAX - second_gap ? INT64_MAX : base2 + second_gap;
        last_base = base2;
        write_segment_file(dir, base, ".log", log_bytes, split);
        write_segment_file(dir, base2, ".log", log_bytes + split, log_len - split);
    } else {
        write_segment_file(dir, base, ".log", log_bytes, log_len);
    }
    if (index != NULL)
        write_segment_file(dir, base, ".index", index, index_len);
    if (timeindex != NULL)
        write_segment_file(dir, base, ".timeindex", timeindex, timeindex_len);
    if (rp != NULL)
        write_file(dir, "recovery-point", rp, rp_len);
    if (lso != NULL)
        write_file(dir, "log-start-offset", lso, lso_len);
    if (flags & F_CLEAN)
        write_file(dir, "clean-shutdown", "", 0);
    bool trusted = (flags & (F_CLEAN | F_RECOVERY_POINT)) != 0;

    stream_log_config cfg;
    stream_log_config_init(&cfg);
    cfg.segment_bytes = 1 << 20;
    cfg.index_interval_bytes = (flags & F_INDEX_EVERY_BATCH) ? 0 : 256;
    cfg.flush_mode = STREAM_FLUSH_NEVER; /* tmpfs anyway; keep syncs out of the loop */

    char err[512];
    stream_log *log = NULL;
    stream_log_recovery rec;
    int rc = stream_log_open(dir, &cfg, &log, &rec, err, sizeof err);
    if (last_base > STREAM_LOG_MAX_OFFSET) {
        FUZZ_CHECK_MSG(rc == STREAM_ECORRUPT, "open with a segment past the largest offset: %s",
                       stream_err_name(rc));
        FUZZ_CHECK(log == NULL);
        fuzz_remove_tree(dir);
        return 0;
    }
    FUZZ_CHECK_MSG(rc == 0, "open: %s: %s", stream_err_name(rc), err);
    int64_t start = stream_log_start_offset(log), end = stream_log_end_offset(log);
    FUZZ_CHECK(start >= 0 && start <= end);
    FUZZ_CHECK(stream_log_segment_count(log) >= 1);
    if (!trusted)
        FUZZ_CHECK(!rec.clean);

    /* Known open issue (reported): a log-start-offset beyond the end is
     * clamped on open but stays in the file, so once appends pass it a
     * reopen moves the start forward. Not rediscovered on every run. */
    bool stale_lso = offset_text(lso, lso_len) > end;

    int64_t reached = read_all(log, trusted);
    if (!trusted)
        FUZZ_CHECK_MSG(reached == end || (start == end && reached == start),
                       "read up to %" PRId64 ", end is %" PRId64, reached, end);

    static const int64_t times[] = {INT64_MIN, -1, 0, 1732442400000, INT64_MAX};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        int64_t off = -1;
        rc = stream_log_offset_for_time(log, times[i], &off);
        if (rc == 0)
            FUZZ_CHECK_MSG(off >= start && off <= end,
                           "offset_for_time %" PRId64 " gave %" PRId64 " outside [%" PRId64
                           ", %" PRId64 "]",
                           times[i], off, start, end);
        else
            /* Only trusted files hold batches nobody has checked; the
             * record iterator may then fail on them. */
            FUZZ_CHECK_MSG(trusted && (rc == STREAM_ECORRUPT || rc == STREAM_ETOOLARGE),
                           "offset_for_time: %s", stream_err_name(rc));
    }

    /* A recovered log takes appends until its offsets run out. */
    uint8_t *batch = malloc(fresh_len);
    FUZZ_CHECK(batch != NULL);
    memcpy(batch, fresh_batch, fresh_len);
    int64_t appended_at = -1;
    rc = stream_log_append(log, batch, fresh_len, &appended_at, err, sizeof err);
    if (end <= STREAM_LOG_MAX_OFFSET - 2)
        FUZZ_CHECK_MSG(rc == 0, "append after recovery: %s: %s", stream_err_name(rc), err);
    else
        FUZZ_CHECK_MSG(rc == STREAM_EOFFSET && stream_log_end_offset(log) == end,
                       "append past the largest offset: %s", stream_err_name(rc));
    if (rc == 0) {
        FUZZ_CHECK(appended_at == end);
        end += 2;
        FUZZ_CHECK(stream_log_end_offset(log) == end);
        stream_buf buf;
        stream_buf_init(&buf);
        FUZZ_CHECK(stream_log_read_copy(log, appended_at, 1 << 20, &buf) == 0);
        FUZZ_CHECK(buf.len == fresh_len);
        stream_buf_release(&buf);
    }
    free(batch);
    start = stream_log_start_offset(log);
    stream_log_close(log);

    /* A clean close reopens to the same offsets without a scan. */
    rc = stream_log_open(dir, &cfg, &log, &rec, err, sizeof err);
    FUZZ_CHECK_MSG(rc == 0, "reopen: %s: %s", stream_err_name(rc), err);
    FUZZ_CHECK(rec.clean);
    FUZZ_CHECK_MSG((stale_lso || stream_log_start_offset(log) == start) &&
                       stream_log_end_offset(log) == end,
                   "reopen: [%" PRId64 ", %" PRId64 ") became [%" PRId64 ", %" PRId64 ")", start,
                   end, stream_log_start_offset(log), stream_log_end_offset(log));
    stream_log_close(log);
    fuzz_remove_tree(dir);
    return 0;
}
