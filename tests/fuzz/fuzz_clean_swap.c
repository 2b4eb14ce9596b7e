/*
 * fuzz_clean_swap.c - opening a partition directory that a cleaner pass
 * killed half way left behind (stream/cleaner.h, "Crash safety"): segment
 * files beside `.log.swap` and `.log.cleaned` files holding anything at
 * all, then cleaning it.
 *
 * Input layout (every part optional: a short input leaves the rest out):
 *
 *   byte 0      flags: 0x01 <seg0>.log.swap, 0x02 <seg0>.log.cleaned,
 *               0x04 a .log.swap whose segment does not exist, 0x08 a second
 *               segment, 0x10 <seg1>.log.swap, 0x20 clean-shutdown marker and
 *               recovery-point (trusted files), 0x40 index files for seg0
 *               (the first bytes of the old segment: stale)
 *   byte 1      gap: the second segment's base is the first's end (at least 1)
 *               plus it
 *   u16 n0      bytes of seg0's .log, then the bytes
 *   u16 n1      bytes of seg0's .log.swap (and .cleaned), then the bytes
 *   u16 n2      bytes of seg1's .log, then the bytes
 *   rest        seg1's .log.swap
 *
 * The seeds are real segments and their cleaned copies. Properties:
 *
 *   - open succeeds and leaves no .swap or .cleaned file;
 *   - a completed swap left seg0's .log a prefix of the .swap bytes (recovery
 *     only cuts); a swap for a missing segment created nothing;
 *   - a completed swap of seg0 made of whole batches that reach past seg1's
 *     base (a merged group's copy) removed seg1;
 *   - without trusted files, a read from the start to the end returns whole
 *     batches that pass stream_batch_check with offsets increasing (holes
 *     allowed) up to exactly the end; with them, never a bad batch;
 *   - cleaning the log (compact) succeeds without trusted files, keeps the
 *     end offset, and the log then reads the same way;
 *   - a new batch appends; close and reopen keep the start and end.
 */
#include <dirent.h>
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
#include "stream/cleaner.h"
#include "stream/error.h"
#include "stream/log.h"

#define F_SWAP0    0x01
#define F_CLEANED0 0x02
#define F_ORPHAN   0x04
#define F_SEG1     0x08
#define F_SWAP1    0x10
#define F_TRUSTED  0x20
#define F_INDEX0   0x40

static char base_dir[64];

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
    fuzz_scratch_dir(base_dir, sizeof base_dir, "clean");
    atexit(cleanup);
    return 0;
}

static void write_seg(const char *dir, int64_t base, const char *ext, const void *p, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%020" PRId64 "%s", dir, base, ext);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(len == 0 || write(fd, p, len) == (ssize_t)len);
    close(fd);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
}

/* The offset after the batches at the start of p that decode, from base. */
static int64_t offsets_in(const uint8_t *p, size_t len, int64_t base)
{
    stream_batch_info info;
    size_t pos = 0;
    while (stream_batch_header_decode(p + pos, len - pos, &info) == 0 && info.size <= len - pos) {
        if (info.base_offset > INT32_MAX || info.last_offset_delta > INT32_MAX / 2)
            break; /* the seeds' offsets are small; keep the sums so */
        int64_t next = info.base_offset + info.last_offset_delta + 1;
        if (next > base)
            base = next;
        pos += info.size;
    }
    return base;
}

/* The offset after the last batch when p is whole batches with ascending
 * offsets and nothing else, else -1. */
static int64_t whole_batches_end(const uint8_t *p, size_t len)
{
    stream_batch_info info;
    int64_t end = 0;
    size_t pos = 0;
    while (pos < len && stream_batch_header_decode(p + pos, len - pos, &info) == 0 &&
           info.size <= len - pos && info.base_offset >= end &&
           info.base_offset <= INT32_MAX && info.last_offset_delta <= INT32_MAX / 2) {
        end = info.base_offset + info.last_offset_delta + 1;
        pos += info.size;
    }
    return pos == len && len > 0 ? end : -1;
}

/* No .swap or .cleaned file left in dir. */
static void check_no_leftovers(const char *dir)
{
    DIR *d = opendir(dir);
    FUZZ_CHECK(d != NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        FUZZ_CHECK_MSG(!(n > 5 && strcmp(e->d_name + n - 5, ".swap") == 0) &&
                           !(n > 8 && strcmp(e->d_name + n - 8, ".cleaned") == 0),
                       "left behind: %s", e->d_name);
    }
    closedir(d);
}

/* Reads the whole log; returns the offset reached. */
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
        FUZZ_CHECK_MSG(rc == 0, "read_copy at %" PRId64 " (end %" PRId64 "): %s", offset, end,
                       stream_err_name(rc));
        FUZZ_CHECK(buf.len > 0);
        for (size_t pos = 0; pos < buf.len;) {
            stream_batch_info info;
            FUZZ_CHECK(stream_batch_check(buf.data + pos, buf.len - pos, &info, NULL, 0) == 0);
            int64_t last = info.base_offset + info.last_offset_delta;
            FUZZ_CHECK_MSG(last >= offset, "batch [%" PRId64 ", %" PRId64 "] below %" PRId64,
                           info.base_offset, last, offset);
            FUZZ_CHECK(pos == 0 || info.base_offset >= offset);
            offset = last + 1;
            pos += info.size;
        }
    }
    stream_buf_release(&buf);
    return offset;
}

/* seg0's .log is a prefix of want (when it still exists). */
static void check_prefix(const char *dir, const uint8_t *want, size_t want_len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%020d.log", dir, 0);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    uint8_t buf[4096];
    size_t at = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        FUZZ_CHECK_MSG(at + (size_t)n <= want_len && memcmp(buf, want + at, (size_t)n) == 0,
                       "segment 0 is not the swapped-in copy");
        at += (size_t)n;
    }
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in;
    fuzz_in_init(&in, data, size);
    uint8_t flags = fuzz_u8(&in);
    uint8_t gap = fuzz_u8(&in);
    size_t n0, n1, n2, n3;
    const uint8_t *old0 = fuzz_bytes(&in, fuzz_u16(&in), &n0);
    const uint8_t *swap0 = fuzz_bytes(&in, fuzz_u16(&in), &n1);
    const uint8_t *old1 = fuzz_bytes(&in, fuzz_u16(&in), &n2);
    const uint8_t *swap1 = fuzz_rest(&in, &n3);
    bool trusted = flags & F_TRUSTED;

    char dir[128];
    snprintf(dir, sizeof dir, "%s/t-0", base_dir);
    FUZZ_CHECK(mkdir(dir, 0755) == 0 || errno == EEXIST);
    write_seg(dir, 0, ".log", old0, n0);
    if (flags & F_SWAP0)
        write_seg(dir, 0, ".log.swap", swap0, n1);
    if (flags & F_CLEANED0)
        write_seg(dir, 0, ".log.cleaned", swap0, n1);
    if (flags & F_INDEX0) {
        write_seg(dir, 0, ".index", old0, n0 < 64 ? n0 & ~(size_t)7 : 64);
        write_seg(dir, 0, ".timeindex", old0, n0 < 48 ? n0 / 12 * 12 : 48);
    }
    /* Never 0: the second segment is another file than the first. */
    int64_t base1 = offsets_in(old0, n0, 1) + gap;
    if (flags & F_SEG1) {
        write_seg(dir, base1, ".log", old1, n2);
        if (flags & F_SWAP1)
            write_seg(dir, base1, ".log.swap", swap1, n3);
    }
    if (flags & F_ORPHAN)
        write_seg(dir, 999999, ".log.swap", swap0, n1);
    if (trusted) {
        write_text(dir, "clean-shutdown", "");
        write_text(dir, "recovery-point", "0\n");
    }

    stream_log_config cfg;
    stream_log_config_init(&cfg);
    cfg.segment_bytes = 1 << 20;
    cfg.index_interval_bytes = 256;
    cfg.flush_mode = STREAM_FLUSH_NEVER;
    cfg.cleanup_compact = true;
    cfg.cleanup_delete = false;
    cfg.delete_retention_ms = 0;

    char err[512];
    stream_log *log = NULL;
    int rc = stream_log_open(dir, &cfg, &log, NULL, err, sizeof err);
    FUZZ_CHECK_MSG(rc == 0, "open: %s: %s", stream_err_name(rc), err);
    check_no_leftovers(dir);
    if (flags & F_SWAP0)
        check_prefix(dir, swap0, n1);
    char path1[256];
    snprintf(path1, sizeof path1, "%s/%020" PRId64 ".log", dir, base1);
    FUZZ_CHECK_MSG(!((flags & F_SWAP0) && (flags & F_SEG1) && whole_batches_end(swap0, n1) > base1 &&
                     access(path1, F_OK) == 0),
                   "seg1 (base %" PRId64 ") survived a swap of seg0 that covers it", base1);
    char path[256];
    snprintf(path, sizeof path, "%s/%020d.log", dir, 999999);
    FUZZ_CHECK(!(flags & F_ORPHAN) || access(path, F_OK) != 0 || base1 == 999999);

    int64_t start = stream_log_start_offset(log), end = stream_log_end_offset(log);
    FUZZ_CHECK(start >= 0 && start <= end);
    int64_t reached = read_all(log, trusted);
    if (!trusted)
        FUZZ_CHECK_MSG(reached == end || start == end, "read up to %" PRId64 ", end %" PRId64,
                       reached, end);

    /* Roll so that everything is closed, then clean it all. */
    FUZZ_CHECK(stream_log_maybe_roll(log, INT64_C(4102444800000)) == 0);
    stream_cleaner_opts opts;
    stream_cleaner_opts_init(&opts);
    opts.dedupe_buffer_bytes = 4096;
    stream_clean_stats st = {0};
    rc = stream_log_clean(log, INT64_C(4102444800000), &opts, 0, &st, err, sizeof err);
    if (!trusted)
        FUZZ_CHECK_MSG(rc >= 0, "clean: %s: %s", stream_err_name(rc), err);
    FUZZ_CHECK(stream_log_end_offset(log) == end);
    check_no_leftovers(dir);
    if (rc >= 0) {
        reached = read_all(log, trusted);
        if (!trusted)
            FUZZ_CHECK(reached == end || start == end);
    }

    static const uint8_t key[] = "k";
    stream_batch_builder b;
    const uint8_t *p;
    size_t len;
    stream_batch_builder_init(&b);
    FUZZ_CHECK(stream_batch_builder_append(&b, 1732442400000, key, 1, "v", 1, NULL, 0) == 0);
    FUZZ_CHECK(stream_batch_builder_finish(&b, &p, &len) == 0);
    uint8_t copy[256];
    FUZZ_CHECK(len <= sizeof copy);
    memcpy(copy, p, len);
    stream_batch_builder_release(&b);
    int64_t at = -1;
    rc = stream_log_append(log, copy, len, &at, err, sizeof err);
    FUZZ_CHECK_MSG(rc == 0 || end > STREAM_LOG_MAX_OFFSET - 2, "append: %s: %s",
                   stream_err_name(rc), err);
    if (rc == 0)
        end++;
    start = stream_log_start_offset(log);
    stream_log_close(log);

    rc = stream_log_open(dir, &cfg, &log, NULL, err, sizeof err);
    FUZZ_CHECK_MSG(rc == 0, "reopen: %s: %s", stream_err_name(rc), err);
    FUZZ_CHECK_MSG(stream_log_start_offset(log) == start && stream_log_end_offset(log) == end,
                   "reopen: [%" PRId64 ", %" PRId64 ") became [%" PRId64 ", %" PRId64 ")", start,
                   end, stream_log_start_offset(log), stream_log_end_offset(log));
    stream_log_close(log);
    fuzz_remove_tree(dir);
    return 0;
}
