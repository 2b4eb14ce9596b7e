/*
 * fuzz_leader_epoch.c - the leader-epoch-checkpoint parser
 * (libstream/log/leader_epoch.h) on anything at all: what a broker meets
 * after a crash tore the file, a disk returned garbage, or a person edited it.
 *
 * Input layout: the whole input is the file's bytes. Properties:
 *
 *   - parse either fails with STREAM_ECORRUPT and leaves the cache as it was,
 *     or succeeds with entries strictly ascending in epoch (0..INT32_MAX)
 *     and start offset (0..STREAM_LOG_MAX_OFFSET);
 *   - the format is canonical: formatting what parse read gives the input
 *     back byte for byte;
 *   - the file reader (a file in a scratch directory on tmpfs) agrees with
 *     the parser;
 *   - look-ups answer an epoch at or below the one asked and an end offset
 *     no lower than that epoch's start, or -1/-1; assign, truncate_end and
 *     truncate_start keep the order, and what they leave formats and parses
 *     back to the same entries.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "log/leader_epoch.h"
#include "stream/buf.h"
#include "stream/error.h"
#include "stream/log.h"

static char dir[64];
static int dirfd_ = -1;

static void at_exit(void)
{
    if (dirfd_ >= 0) {
        unlinkat(dirfd_, STREAM__EPOCH_FILE, 0);
        close(dirfd_);
        rmdir(dir);
    }
}

static void check_order(const stream__epoch_cache *c)
{
    for (uint32_t i = 0; i < c->n; i++) {
        FUZZ_CHECK(c->entries[i].epoch >= 0);
        FUZZ_CHECK(c->entries[i].start_offset >= 0);
        FUZZ_CHECK(c->entries[i].start_offset <= STREAM_LOG_MAX_OFFSET);
        if (i > 0) {
            FUZZ_CHECK(c->entries[i].epoch > c->entries[i - 1].epoch);
            FUZZ_CHECK(c->entries[i].start_offset > c->entries[i - 1].start_offset);
        }
    }
}

/* Formats c and parses it back: the same entries. */
static void check_round_trip(const stream__epoch_cache *c)
{
    stream_buf text = STREAM_BUF_INIT;
    FUZZ_CHECK(stream__epoch_cache_format(c, &text) == 0);
    stream__epoch_cache back;
    stream__epoch_cache_init(&back);
    FUZZ_CHECK(stream__epoch_cache_parse(&back, text.data, text.len) == 0);
    FUZZ_CHECK(back.n == c->n);
    FUZZ_CHECK(c->n == 0 || memcmp(back.entries, c->entries, c->n * sizeof *c->entries) == 0);
    stream__epoch_cache_release(&back);
    stream_buf_release(&text);
}

static void check_lookup(const stream__epoch_cache *c, int32_t epoch, int64_t log_end)
{
    int32_t found;
    int64_t end;
    stream__epoch_cache_end_offset(c, epoch, log_end, &found, &end);
    if (found < 0) {
        FUZZ_CHECK(found == -1 && end == -1);
        FUZZ_CHECK(c->n == 0 || c->entries[0].epoch > epoch);
        return;
    }
    FUZZ_CHECK(found <= epoch);
    uint32_t i = 0;
    while (i < c->n && c->entries[i].epoch != found)
        i++;
    FUZZ_CHECK(i < c->n);
    FUZZ_CHECK(i + 1 == c->n || c->entries[i + 1].epoch > epoch);
    FUZZ_CHECK(end == (i + 1 < c->n ? c->entries[i + 1].start_offset : log_end));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (dirfd_ < 0) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/fuzz_epoch.XXXXXX", base);
        if (mkdtemp(dir) == NULL)
            abort();
        dirfd_ = open(dir, O_RDONLY | O_DIRECTORY);
        if (dirfd_ < 0)
            abort();
        atexit(at_exit);
    }

    /* A cache that a failed parse must leave alone. */
    stream__epoch_cache c;
    stream__epoch_cache_init(&c);
    FUZZ_CHECK(stream__epoch_cache_assign(&c, 4, 100) == 1);
    int rc = stream__epoch_cache_parse(&c, data, size);
    FUZZ_CHECK_MSG(rc == 0 || rc == STREAM_ECORRUPT, "parse: %s", stream_strerror(rc));

    /* The file reader agrees. */
    int fd = openat(dirfd_, STREAM__EPOCH_FILE, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
    close(fd);
    stream__epoch_cache f;
    stream__epoch_cache_init(&f);
    int frc = stream__epoch_cache_read(&f, dirfd_);
    FUZZ_CHECK_MSG(frc == rc, "read %s, parse %s", stream_strerror(frc), stream_strerror(rc));
    FUZZ_CHECK(f.n == (rc == 0 ? c.n : 0));
    stream__epoch_cache_release(&f);

    if (rc != 0) {
        FUZZ_CHECK(c.n == 1 && c.entries[0].epoch == 4 && c.entries[0].start_offset == 100);
        stream__epoch_cache_release(&c);
        return 0;
    }
    check_order(&c);
    stream_buf text = STREAM_BUF_INIT;
    FUZZ_CHECK(stream__epoch_cache_format(&c, &text) == 0);
    FUZZ_CHECK_MSG(text.len == size && memcmp(text.data, data, size) == 0,
                   "not canonical: %zu bytes formatted from %zu", text.len, size);
    stream_buf_release(&text);

    /* Look-ups around every entry. */
    int64_t log_end = c.n > 0 ? c.entries[c.n - 1].start_offset + 1 : 0;
    check_lookup(&c, -1, log_end);
    check_lookup(&c, INT32_MAX, log_end);
    for (uint32_t i = 0; i < c.n && i < 64; i++) {
        int32_t e = c.entries[i].epoch;
        check_lookup(&c, e, log_end);
        if (e > 0)
            check_lookup(&c, e - 1, log_end);
        if (e < INT32_MAX)
            check_lookup(&c, e + 1, log_end);
    }

    /* Changes keep the order and round-trip. */
    if (c.n > 0) {
        const stream__epoch_entry mid = c.entries[c.n / 2];
        FUZZ_CHECK(!stream__epoch_cache_truncate_start(&c, mid.start_offset - 1) ||
                   c.entries[0].start_offset <= mid.start_offset);
        check_order(&c);
        (void)stream__epoch_cache_truncate_end(&c, mid.start_offset + 1);
        check_order(&c);
        FUZZ_CHECK(c.n > 0 && c.entries[c.n - 1].start_offset <= mid.start_offset);
        check_round_trip(&c);
        int32_t latest = stream__epoch_cache_latest(&c);
        if (latest < INT32_MAX) {
            FUZZ_CHECK(stream__epoch_cache_assign(&c, latest + 1, mid.start_offset) == 1);
            FUZZ_CHECK(stream__epoch_cache_latest(&c) == latest + 1);
            check_order(&c);
        }
        /* Not newer than the latest: nothing changes. */
        uint32_t n = c.n;
        FUZZ_CHECK(stream__epoch_cache_assign(&c, 0, STREAM_LOG_MAX_OFFSET) == 0 && c.n == n);
        check_round_trip(&c);
    }
    stream__epoch_cache_release(&c);
    return 0;
}
