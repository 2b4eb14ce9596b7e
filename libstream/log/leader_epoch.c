/*
 * leader_epoch.c - the leader-epoch cache (leader_epoch.h), its checkpoint
 * file, and the log's calls over it (stream/log.h: leader epochs).
 *
 * The cache is a small sorted array: one entry per leader change, a few in
 * a partition's life, so lookups scan or bisect it and every change rewrites
 * the whole file. What keeps the file honest is the order of writes: a batch
 * of a new epoch is written to the segment only after the checkpoint naming
 * its epoch is on disk, so the file never lacks an epoch the log holds; a
 * truncation cuts the log first and the file after, so at worst the file
 * names an epoch past the log's end, which open drops. Open also checks
 * every entry against the batch header at its start offset and the newest
 * batch against the newest entry, and rebuilds the cache from the batch
 * headers when they disagree or the file is damaged.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "leader_epoch.h"
#include "log_internal.h"
#include "producer_state.h"
#include "stream/error.h"

#define EPOCH_FILE_VERSION 0
#define EPOCH_TMP          STREAM__EPOCH_FILE ".tmp"

/* ---- the cache -------------------------------------------------------------- */

void stream__epoch_cache_init(stream__epoch_cache *c)
{
    c->entries = NULL;
    c->n = 0;
    c->cap = 0;
}

void stream__epoch_cache_release(stream__epoch_cache *c)
{
    free(c->entries);
    stream__epoch_cache_init(c);
}

int32_t stream__epoch_cache_latest(const stream__epoch_cache *c)
{
    return c->n > 0 ? c->entries[c->n - 1].epoch : -1;
}

static int grow(stream__epoch_cache *c, uint32_t want)
{
    if (want <= c->cap)
        return 0;
    if (want > UINT32_MAX / 2)
        return STREAM_ENOMEM;
    uint32_t ncap = c->cap ? c->cap : 8;
    while (ncap < want)
        ncap *= 2;
    stream__epoch_entry *p = realloc(c->entries, (size_t)ncap * sizeof *p);
    if (p == NULL)
        return STREAM_ENOMEM;
    c->entries = p;
    c->cap = ncap;
    return 0;
}

int stream__epoch_cache_assign(stream__epoch_cache *c, int32_t epoch, int64_t start_offset)
{
    if (epoch < 0 || start_offset < 0 || epoch <= stream__epoch_cache_latest(c))
        return 0;
    if (grow(c, c->n + 1) != 0)
        return STREAM_ENOMEM;
    while (c->n > 0 && c->entries[c->n - 1].start_offset >= start_offset)
        c->n--;
    c->entries[c->n++] = (stream__epoch_entry){epoch, start_offset};
    return 1;
}

void stream__epoch_cache_drop_last(stream__epoch_cache *c)
{
    if (c->n > 0)
        c->n--;
}

bool stream__epoch_cache_truncate_end(stream__epoch_cache *c, int64_t end)
{
    uint32_t n = c->n;
    while (c->n > 0 && c->entries[c->n - 1].start_offset >= end)
        c->n--;
    return c->n != n;
}

bool stream__epoch_cache_truncate_start(stream__epoch_cache *c, int64_t start)
{
    uint32_t k = 0;
    while (k + 1 < c->n && c->entries[k + 1].start_offset <= start)
        k++;
    if (k == 0)
        return false;
    memmove(c->entries, c->entries + k, (size_t)(c->n - k) * sizeof *c->entries);
    c->n -= k;
    return true;
}

void stream__epoch_cache_end_offset(const stream__epoch_cache *c, int32_t epoch, int64_t log_end,
                                    int32_t *found_epoch, int64_t *end_offset)
{
    /* lo = the number of entries with entry.epoch <= epoch. */
    uint32_t lo = 0, hi = c->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (c->entries[mid].epoch <= epoch)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) {
        *found_epoch = -1;
        *end_offset = -1;
        return;
    }
    *found_epoch = c->entries[lo - 1].epoch;
    *end_offset = lo < c->n ? c->entries[lo].start_offset : log_end;
}

/* ---- the checkpoint text ------------------------------------------------------- */

/* Reads a plain decimal number (no sign, no leading zero but "0") at p[*at]
 * up to `max`, followed by the byte `term`. */
static bool take_number(const uint8_t *p, size_t len, size_t *at, int64_t max, uint8_t term,
                        int64_t *out)
{
    size_t i = *at;
    if (i >= len || p[i] < '0' || p[i] > '9')
        return false;
    if (p[i] == '0' && i + 1 < len && p[i + 1] >= '0' && p[i + 1] <= '9')
        return false;
    int64_t v = 0;
    for (; i < len && p[i] >= '0' && p[i] <= '9'; i++) {
        if (v > (max - (p[i] - '0')) / 10)
            return false;
        v = v * 10 + (p[i] - '0');
    }
    if (i >= len || p[i] != term)
        return false;
    *at = i + 1;
    *out = v;
    return true;
}

int stream__epoch_cache_parse(stream__epoch_cache *c, const uint8_t *p, size_t len)
{
    size_t at = 0;
    int64_t version, count;
    if (!take_number(p, len, &at, INT32_MAX, '\n', &version) || version != EPOCH_FILE_VERSION ||
        !take_number(p, len, &at, INT32_MAX, '\n', &count))
        return STREAM_ECORRUPT;
    /* A line takes at least 4 bytes ("0 0\n"): a count the bytes cannot
     * hold is damage, found before allocating for it. */
    if ((uint64_t)count > (len - at) / 4)
        return STREAM_ECORRUPT;
    stream__epoch_cache next;
    stream__epoch_cache_init(&next);
    if (count > 0 && grow(&next, (uint32_t)count) != 0)
        return STREAM_ENOMEM;
    for (int64_t i = 0; i < count; i++) {
        int64_t epoch, start;
        if (!take_number(p, len, &at, INT32_MAX, ' ', &epoch) ||
            !take_number(p, len, &at, STREAM_LOG_MAX_OFFSET, '\n', &start) ||
            (next.n > 0 && (epoch <= next.entries[next.n - 1].epoch ||
                            start <= next.entries[next.n - 1].start_offset))) {
            stream__epoch_cache_release(&next);
            return STREAM_ECORRUPT;
        }
        next.entries[next.n++] = (stream__epoch_entry){(int32_t)epoch, start};
    }
    if (at != len) {
        stream__epoch_cache_release(&next);
        return STREAM_ECORRUPT;
    }
    stream__epoch_cache_release(c);
    *c = next;
    return 0;
}

int stream__epoch_cache_format(const stream__epoch_cache *c, stream_buf *out)
{
    char line[48];
    int w = snprintf(line, sizeof line, "%d\n%" PRIu32 "\n", EPOCH_FILE_VERSION, c->n);
    stream_buf_put(out, line, (size_t)w);
    for (uint32_t i = 0; i < c->n; i++) {
        w = snprintf(line, sizeof line, "%" PRId32 " %" PRId64 "\n", c->entries[i].epoch,
                     c->entries[i].start_offset);
        stream_buf_put(out, line, (size_t)w);
    }
    return stream_buf_ok(out) == 0 ? 0 : STREAM_ENOMEM;
}

/* ---- the checkpoint file ----------------------------------------------------- */

int stream__epoch_cache_read(stream__epoch_cache *c, int dirfd)
{
    int fd = openat(dirfd, STREAM__EPOCH_FILE, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? STREAM_ENOENT : stream_err_from_errno(errno);
    struct stat st;
    stream_buf buf = STREAM_BUF_INIT;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = stream_err_from_errno(errno);
    else if (st.st_size > STREAM__EPOCH_FILE_MAX)
        rc = STREAM_ECORRUPT;
    else if (stream_buf_reserve(&buf, (size_t)st.st_size + 1) != 0)
        rc = STREAM_ENOMEM;
    /* Reads to end of file, whatever fstat said: a file that grew past the
     * limit meanwhile is damage too. */
    while (rc == 0) {
        size_t room = (size_t)STREAM__EPOCH_FILE_MAX + 1 - buf.len;
        if (room == 0) {
            rc = STREAM_ECORRUPT;
            break;
        }
        if (stream_buf_reserve(&buf, room < 4096 ? room : 4096) != 0) {
            rc = STREAM_ENOMEM;
            break;
        }
        size_t want = buf.cap - buf.len < room ? buf.cap - buf.len : room;
        ssize_t r = read(fd, buf.data + buf.len, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = stream_err_from_errno(errno);
        if (r <= 0)
            break;
        buf.len += (size_t)r;
    }
    close(fd);
    if (rc == 0)
        rc = stream__epoch_cache_parse(c, buf.data, buf.len);
    stream_buf_release(&buf);
    return rc;
}

int stream__epoch_cache_write(const stream__epoch_cache *c, int dirfd)
{
    stream_buf buf = STREAM_BUF_INIT;
    if (stream__epoch_cache_format(c, &buf) != 0) {
        stream_buf_release(&buf);
        return STREAM_ENOMEM;
    }
    int rc = stream__file_replace_at(dirfd, EPOCH_TMP, STREAM__EPOCH_FILE, buf.data, buf.len);
    stream_buf_release(&buf);
    return rc;
}

/* ---- the log's cache ----------------------------------------------------------- */

/* Rewrites the checkpoint from memory; a failure leaves epochs_unsaved set
 * for the next change or close to try again (open checks what it finds). */
/* Writes the checkpoint through the log's directory, held for it. */
static int write_checkpoint(stream_log *log)
{
    int rc = stream__log_dir_hold(log);
    if (rc != 0)
        return rc;
    rc = stream__epoch_cache_write(&log->epochs, log->dirfd);
    stream__log_dir_drop(log);
    return rc;
}

static void save(stream_log *log)
{
    log->epochs_unsaved = write_checkpoint(log) != 0;
}

/* Every entry inside the log names a batch that starts there with that
 * epoch, and no batch at the end has an epoch newer than the newest entry.
 * A read error counts as a disagreement (the rebuild meets it too). */
static bool agrees_with_log(const stream_log *log)
{
    const stream__epoch_cache *c = &log->epochs;
    for (uint32_t i = 0; i < c->n; i++) {
        const stream__epoch_entry *e = &c->entries[i];
        if (e->start_offset < log->start_offset)
            continue; /* kept by retention below the start: nothing to read */
        stream__segment *s = log->segs[stream__log_find_seg(log, e->start_offset)];
        int64_t pos;
        stream_batch_info info;
        if (stream__seg_acquire(s) != 0)
            return false;
        bool ok = stream__seg_find(s, e->start_offset, &pos, &info) == 0 &&
                  info.base_offset == e->start_offset && info.partition_leader_epoch == e->epoch;
        stream__seg_release(s);
        if (!ok)
            return false;
    }
    if (log->end_offset > log->start_offset) {
        stream__segment *s = log->segs[stream__log_find_seg(log, log->end_offset - 1)];
        int64_t pos;
        stream_batch_info info;
        if (stream__seg_acquire(s) != 0)
            return false;
        bool ok = stream__seg_find(s, log->end_offset - 1, &pos, &info) == 0 &&
                  info.partition_leader_epoch <= stream__epoch_cache_latest(c);
        stream__seg_release(s);
        if (!ok)
            return false;
    }
    return true;
}

static int rebuild_batch(const stream_batch_info *info, void *arg)
{
    int rc = stream__epoch_cache_assign(arg, info->partition_leader_epoch, info->base_offset);
    return rc < 0 ? rc : 0;
}

/* The cache from the batch headers of every segment. *complete is false
 * when a segment could not be read to its end (the cache then holds the
 * epochs before that point). Returns 0 or STREAM_ENOMEM. */
static int rebuild(stream_log *log, bool *complete)
{
    *complete = true;
    log->epochs.n = 0;
    for (int k = 0; k < log->nsegs; k++) {
        int rc = stream__seg_acquire(log->segs[k]);
        if (rc == 0) {
            rc = stream__seg_scan_headers(log->segs[k], 0, rebuild_batch, &log->epochs);
            stream__seg_release(log->segs[k]);
        }
        if (rc == STREAM_ENOMEM)
            return rc;
        if (rc != 0) {
            *complete = false;
            break;
        }
    }
    (void)stream__epoch_cache_truncate_start(&log->epochs, log->start_offset);
    return 0;
}

int stream__log_epochs_open(stream_log *log, bool *rebuilt)
{
    *rebuilt = false;
    int rc = stream__log_dir_hold(log);
    if (rc != 0)
        return rc;
    rc = stream__epoch_cache_read(&log->epochs, log->dirfd);
    stream__log_dir_drop(log);
    if (rc == STREAM_ENOENT)
        return 0; /* older than this feature, or never replicated: stream/log.h */
    if (rc == STREAM_ENOMEM)
        return rc;
    bool changed = false;
    if (rc == 0) {
        /* An epoch whose batch a crash or a recovery took away. */
        changed = stream__epoch_cache_truncate_end(&log->epochs, log->end_offset);
        if (!agrees_with_log(log))
            rc = STREAM_ECORRUPT;
    }
    if (rc != 0) {
        bool complete;
        *rebuilt = true;
        if ((rc = rebuild(log, &complete)) != 0)
            return rc;
        /* What an unreadable segment hides is not written down as if it
         * were known: the next open tries again. */
        changed = complete;
    }
    if (changed)
        save(log);
    return 0;
}

int stream__log_epochs_before_append(stream_log *log, int32_t epoch, int64_t base, bool *added,
                                     char *errbuf, size_t errbuf_len)
{
    *added = false;
    if (epoch < 0 || epoch <= stream__epoch_cache_latest(&log->epochs))
        return 0;
    int rc = stream__epoch_cache_assign(&log->epochs, epoch, base);
    if (rc == 1)
        rc = write_checkpoint(log);
    if (rc != 0) {
        if (rc != STREAM_ENOMEM) {
            stream__epoch_cache_drop_last(&log->epochs);
            log->epochs_unsaved = true;
        }
        if (errbuf != NULL && errbuf_len > 0)
            snprintf(errbuf, errbuf_len, "recording leader epoch %" PRId32 " in %s/%s: %s", epoch,
                     log->dir, STREAM__EPOCH_FILE, stream_strerror(rc));
        return rc;
    }
    log->epochs_unsaved = false;
    *added = true;
    return 0;
}

void stream__log_epochs_append_failed(stream_log *log)
{
    stream__epoch_cache_drop_last(&log->epochs);
    save(log);
}

void stream__log_epochs_end_moved(stream_log *log)
{
    if (stream__epoch_cache_truncate_end(&log->epochs, log->end_offset) || log->epochs_unsaved)
        save(log);
}

void stream__log_epochs_start_moved(stream_log *log)
{
    if (stream__epoch_cache_truncate_start(&log->epochs, log->start_offset) || log->epochs_unsaved)
        save(log);
}

void stream__log_epochs_flush(stream_log *log)
{
    if (log->epochs_unsaved)
        save(log);
}

/* ---- public calls ------------------------------------------------------------- */

void stream_log_set_leader_epoch(stream_log *log, int32_t epoch)
{
    log->leader_epoch = epoch < 0 ? -1 : epoch;
}

int32_t stream_log_latest_epoch(stream_log *log)
{
    return stream__epoch_cache_latest(&log->epochs);
}

int stream_log_epoch_end_offset(stream_log *log, int32_t epoch, int32_t *found_epoch,
                                int64_t *end_offset)
{
    stream__epoch_cache_end_offset(&log->epochs, epoch, log->end_offset, found_epoch, end_offset);
    return 0;
}
