/*
 * fuzz_producer_snapshot.c - loading an idempotent-producer snapshot file
 * (libstream/log/producer_state.h) that holds anything at all: what a broker meets
 * after a crash tore one, or a disk returned garbage.
 *
 * Input layout:
 *
 *   byte 0   flags: 0x01 append the right CRC-32C (else the input's own last
 *            4 bytes are the CRC), 0x02 write the right header first (magic,
 *            version, reserved, offset) so the input starts at the count
 *   rest     the file's bytes (after the header with 0x02)
 *
 * Without the flags nearly every input stops at the CRC; with them the entry
 * decoder sees everything. The file is "<1000>.snapshot" in a scratch
 * directory on tmpfs (/dev/shm when there is one). Properties:
 *
 *   - load succeeds (a bad snapshot is skipped, not an error) and says
 *     either offset 1000 with the state loaded, or -1 with an empty state
 *     and the file deleted;
 *   - a loaded state written again and loaded back has as many producers;
 *   - checking a batch against a loaded state never crashes.
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
#include "log/producer_state.h"
#include "stream/buf.h"
#include "stream/crc32c.h"
#include "stream/error.h"

static char dir[64];
static int dirfd_ = -1;

static void cleanup(void)
{
    int64_t offs[16];
    int n = stream__producer_state_list_snapshots(dirfd_, offs, 16);
    for (int i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "%020lld.snapshot", (long long)offs[i]);
        unlinkat(dirfd_, name, 0);
    }
}

static void at_exit(void)
{
    if (dirfd_ >= 0) {
        cleanup();
        close(dirfd_);
        rmdir(dir);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (dirfd_ < 0) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/fuzz_snapshot.XXXXXX", base);
        if (mkdtemp(dir) == NULL)
            abort();
        dirfd_ = open(dir, O_RDONLY | O_DIRECTORY);
        if (dirfd_ < 0)
            abort();
        atexit(at_exit);
    }
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    stream_buf file = STREAM_BUF_INIT;
    if (flags & 0x02) {
        stream_buf_put(&file, "SPS1", 4);
        stream_buf_put_be16(&file, 1);
        stream_buf_put_be16(&file, 0);
        stream_buf_put_be64(&file, 1000);
    }
    stream_buf_put(&file, data + 1, size - 1);
    if (flags & 0x01)
        stream_buf_put_be32(&file, stream_crc32c(0, file.data, file.len));
    FUZZ_CHECK(stream_buf_ok(&file) == 0);
    int fd = openat(dirfd_, "00000000000000001000.snapshot", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(file.len == 0 || write(fd, file.data, file.len) == (ssize_t)file.len);
    close(fd);
    stream_buf_release(&file);

    stream__producer_state *ps = stream__producer_state_new();
    FUZZ_CHECK(ps != NULL);
    int64_t off = -2;
    int rc = stream__producer_state_load(ps, dirfd_, 5000, &off);
    FUZZ_CHECK_MSG(rc == 0, "load: %s", stream_strerror(rc));
    FUZZ_CHECK(off == 1000 || off == -1);
    int64_t offs[4];
    if (off < 0) {
        FUZZ_CHECK(stream__producer_state_count(ps) == 0);
        FUZZ_CHECK(stream__producer_state_list_snapshots(dirfd_, offs, 4) == 0);
    } else {
        size_t n = stream__producer_state_count(ps);
        FUZZ_CHECK(stream__producer_state_write_snapshot(ps, dirfd_, 2000) == 0);
        stream__producer_state *back = stream__producer_state_new();
        FUZZ_CHECK(back != NULL);
        FUZZ_CHECK(stream__producer_state_load(back, dirfd_, 2000, &off) == 0);
        FUZZ_CHECK(off == 2000);
        FUZZ_CHECK(stream__producer_state_count(back) == n);
        stream__producer_state_free(back);
        /* Judge a few batches against it: any answer, no crash. */
        for (int64_t pid = 0; pid < 4; pid++) {
            stream_batch_info info = {.producer_id = pid,
                                      .producer_epoch = (int16_t)(size % 3),
                                      .base_sequence = (int32_t)(size % 7),
                                      .last_offset_delta = 2,
                                      .record_count = 3};
            int64_t dup;
            int c = stream__producer_state_check(ps, &info, &dup, NULL, 0);
            FUZZ_CHECK(c <= STREAM__PRODUCER_DUPLICATE);
        }
    }
    stream__producer_state_free(ps);
    cleanup();
    return 0;
}
