/*
 * log.c - a partition's append-only log (see stream/log.h for the layout and
 * the contract).
 *
 * The idea: batches arrive already encoded and CRC'd by the producer; the log
 * checks them, stamps the base offset in place (outside the CRC), and writes
 * them with one pwrite to the active segment's page cache. Everything else is
 * bookkeeping around that write: sparse indexes kept in memory and appended
 * to their files in chunks, segment rolls, and a durable offset that a sync
 * round (flusher.c) moves forward behind the appends.
 *
 * Opening trusts as much as it can prove cheaply. Segments below the
 * recovery point (all of them after a clean close) are checked by their
 * indexes and batch headers (segment.c: open_trusted); the segment holding the
 * recovery point and every later one are re-read and CRC-checked, and the log
 * is cut at the first batch that fails. Whatever was cut is reported in
 * stream_log_recovery, never served.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log_internal.h"
#include "producer_state.h"
#include "stream/error.h"
#include "base/internal.h"

/* Index entries buffered in memory before they are appended to the files. */
#define INDEX_FLUSH_ENTRIES 128

/* ---- configuration ------------------------------------------------------------ */

void stream_log_config_init(stream_log_config *cfg)
{
    cfg->segment_bytes = (int64_t)1 << 30;
    cfg->segment_ms = 7LL * 24 * 3600 * 1000;
    cfg->retention_ms = 7LL * 24 * 3600 * 1000;
    cfg->retention_bytes = -1;
    cfg->index_interval_bytes = 4096;
    cfg->max_message_bytes = 1 << 20;
    cfg->flush_mode = STREAM_FLUSH_GROUP;
    cfg->flush_ms = 1000;
    cfg->cleanup_delete = true;
    cfg->cleanup_compact = false;
    cfg->min_cleanable_dirty_ratio_ppm = 500000;
    cfg->min_compaction_lag_ms = 0;
    cfg->max_compaction_lag_ms = 3153600000000LL;
    cfg->delete_retention_ms = 86400000;
    cfg->files = NULL;
}

static int check_config(const stream_log_config *c, char *errbuf, size_t errbuf_len)
{
    /* Positions in the .index are 32-bit, hence the segment_bytes cap. */
    if (c->segment_bytes <= 0 || c->segment_bytes > INT32_MAX)
        stream__errf(errbuf, errbuf_len, "segment_bytes %" PRId64 " outside 1..%d",
                     c->segment_bytes, INT32_MAX);
    else if (c->segment_ms <= 0)
        stream__errf(errbuf, errbuf_len, "segment_ms %" PRId64 " must be positive", c->segment_ms);
    else if (c->retention_ms < -1)
        stream__errf(errbuf, errbuf_len, "retention_ms %" PRId64 " must be -1 or >= 0",
                     c->retention_ms);
    else if (c->retention_bytes < -1)
        stream__errf(errbuf, errbuf_len, "retention_bytes %" PRId64 " must be -1 or >= 0",
                     c->retention_bytes);
    else if (c->index_interval_bytes < 0)
        stream__errf(errbuf, errbuf_len, "index_interval_bytes %d must be >= 0",
                     c->index_interval_bytes);
    else if (c->max_message_bytes < STREAM_BATCH_HEADER_SIZE)
        stream__errf(errbuf, errbuf_len, "max_message_bytes %d below one batch header (%d)",
                     c->max_message_bytes, STREAM_BATCH_HEADER_SIZE);
    else if (c->flush_mode != STREAM_FLUSH_GROUP && c->flush_mode != STREAM_FLUSH_PERIODIC &&
             c->flush_mode != STREAM_FLUSH_NEVER)
        stream__errf(errbuf, errbuf_len, "unknown flush_mode %d", (int)c->flush_mode);
    else if (c->flush_ms <= 0)
        stream__errf(errbuf, errbuf_len, "flush_ms %" PRId64 " must be positive", c->flush_ms);
    else if (!c->cleanup_delete && !c->cleanup_compact)
        stream__errf(errbuf, errbuf_len, "cleanup policy must delete, compact or both");
    else if (c->min_cleanable_dirty_ratio_ppm < 0 || c->min_cleanable_dirty_ratio_ppm > 1000000)
        stream__errf(errbuf, errbuf_len, "min_cleanable_dirty_ratio_ppm %d outside 0..1000000",
                     c->min_cleanable_dirty_ratio_ppm);
    else if (c->min_compaction_lag_ms < 0 || c->max_compaction_lag_ms <= 0 ||
             c->delete_retention_ms < 0)
        stream__errf(errbuf, errbuf_len, "compaction lags and delete_retention_ms must be >= 0");
    else
        return 0;
    return STREAM_EBADCONFIG;
}

static void set_holes(stream_log *log);

int stream_log_set_config(stream_log *log, const stream_log_config *cfg)
{
    int rc = check_config(cfg, NULL, 0);
    if (rc != 0)
        return rc;
    stream_log_files *files = log->cfg.files; /* read at open only */
    log->cfg = *cfg;
    log->cfg.files = files;
    if (cfg->cleanup_compact)
        set_holes(log);
    atomic_store(&log->flush_ms, cfg->flush_ms);
    atomic_store(&log->flush_mode, (int)cfg->flush_mode);
    return 0;
}

/* ---- small helpers ------------------------------------------------------------ */

/* A follower's log taking its leader's first hole: marked on disk
 * (STREAM__HOLES_FILE) before the batch is written, so a reopen knows; a
 * crash between the two leaves a mark and no hole, which is harmless. */
static int dir_path(char *buf, size_t n, const stream_log *log, const char *name);

static int mark_holes(stream_log *log, char *errbuf, size_t errbuf_len)
{
    char mark[4096];
    int rc = dir_path(mark, sizeof mark, log, STREAM__HOLES_FILE);
    int fd = rc == 0 ? open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0644) : -1;
    if (rc == 0 && fd < 0)
        rc = stream_err_from_errno(errno);
    if (rc == 0 && fsync(fd) != 0)
        rc = stream_err_from_errno(errno);
    if (fd >= 0)
        close(fd);
    if (rc == 0)
        rc = stream__log_dir_sync(log);
    if (rc != 0) {
        stream__errf(errbuf, errbuf_len, "marking %s as having offset holes: %s", log->dir,
                     stream_strerror(rc));
        return rc;
    }
    set_holes(log);
    return 0;
}

/* From now on the log's offsets may skip (see struct stream_log). */
static void set_holes(stream_log *log)
{
    log->holes = true;
    for (int i = 0; i < log->nsegs; i++)
        log->segs[i]->holes = true;
}

static int dir_path(char *buf, size_t n, const stream_log *log, const char *name)
{
    int w = snprintf(buf, n, "%s/%s", log->dir, name);
    return (w < 0 || (size_t)w >= n) ? STREAM_EINVAL : 0;
}

/* Reads "<offset>\n" from a checkpoint file; -1 when missing or damaged
 * (log.h: anything but 1..19 digits and the newline, or a value past
 * STREAM_LOG_MAX_OFFSET). Digit by digit rather than strtoll, which would
 * stop quietly at an embedded NUL and take leading spaces and signs. */
static int64_t read_offset_file(const stream_log *log, const char *name)
{
    char path[4096], text[32];
    if (dir_path(path, sizeof path, log, name) != 0)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    /* A full buffer means a file longer than any good one (21 bytes). */
    ssize_t n = read(fd, text, sizeof text);
    close(fd);
    if (n < 2 || n > 20 || text[n - 1] != '\n')
        return -1;
    int64_t v = 0;
    for (ssize_t i = 0; i < n - 1; i++) {
        if (text[i] < '0' || text[i] > '9' || v > (STREAM_LOG_MAX_OFFSET - (text[i] - '0')) / 10)
            return -1;
        v = v * 10 + (text[i] - '0');
    }
    return v;
}

static bool file_exists(const stream_log *log, const char *name)
{
    char path[4096];
    return dir_path(path, sizeof path, log, name) == 0 && access(path, F_OK) == 0;
}

/* ---- the directory, held only while used -------------------------------------- */

int stream__log_dir_hold(stream_log *log)
{
    if (log->dir_holds > 0) {
        log->dir_holds++;
        return 0;
    }
    int fd = stream__files_open_dir(log->files, log->dir, NULL, 0);
    if (fd < 0)
        return fd;
    log->dirfd = fd;
    log->dir_holds = 1;
    return 0;
}

void stream__log_dir_drop(stream_log *log)
{
    if (--log->dir_holds > 0)
        return;
    stream__files_close_dir(log->files, log->dirfd);
    log->dirfd = -1;
}

int stream__log_dir_sync(stream_log *log)
{
    int fd = stream__files_open_dir(log->files, log->dir, NULL, 0);
    if (fd < 0)
        return fd;
    int rc = fsync(fd) != 0 ? stream_err_from_errno(errno) : 0;
    stream__files_close_dir(log->files, fd);
    return rc;
}

static int grow_segs(stream_log *log)
{
    if (log->nsegs < log->segs_cap)
        return 0;
    int ncap = log->segs_cap ? log->segs_cap * 2 : 16;
    stream__segment **p = realloc(log->segs, (size_t)ncap * sizeof *p);
    if (p == NULL)
        return STREAM_ENOMEM;
    log->segs = p;
    log->segs_cap = ncap;
    return 0;
}

/* Index of the segment holding `offset`: the last with base <= offset. */
static int find_seg(const stream_log *log, int64_t offset)
{
    int lo = 0, hi = log->nsegs;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (log->segs[mid]->base_offset <= offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 ? lo - 1 : 0;
}

int stream__log_find_seg(const stream_log *log, int64_t offset)
{
    return find_seg(log, offset);
}

static stream__segment *active_seg(const stream_log *log)
{
    return log->segs[log->nsegs - 1];
}

/* Creates an empty segment's .log at `base`, clearing stale index files
 * (unless `stale` is false: a directory just made). The new segment comes
 * pinned (it is to be the active one). */
static int create_segment(stream_log *log, int64_t base, bool stale, stream__segment **out,
                          char *errbuf, size_t errbuf_len)
{
    char path[4096];
    int rc = stream__seg_path(path, sizeof path, log->dir, base, ".index");
    if (rc != 0)
        return rc;
    if (stale) {
        unlink(path);
        if (stream__seg_path(path, sizeof path, log->dir, base, ".timeindex") == 0)
            unlink(path);
    }
    if (stream__seg_path(path, sizeof path, log->dir, base, ".log") != 0)
        return STREAM_EINVAL;
    stream__segment *s = stream__seg_alloc(base);
    if (s == NULL)
        return STREAM_ENOMEM;
    s->holes = log->holes;
    rc = stream__seg_open_file(s, log->files, path, O_RDWR | O_CREAT | O_TRUNC, errbuf, errbuf_len);
    if (rc != 0) {
        stream__seg_unref(s);
        return rc;
    }
    s->roll_at_ms = stream__now_ms();
    *out = s;
    return 0;
}

/* Gives back the active pin (the active segment is leaving the array or
 * the log closes). */
static void unpin_active(stream_log *log)
{
    if (log->pinned_active != NULL)
        stream__seg_release(log->pinned_active);
    log->pinned_active = NULL;
}

/* Pins the last segment as the active one, if it is not yet. */
static int pin_active(stream_log *log)
{
    stream__segment *s = log->segs[log->nsegs - 1];
    if (log->pinned_active == s)
        return 0;
    int rc = stream__seg_acquire(s);
    if (rc != 0)
        return rc;
    unpin_active(log);
    log->pinned_active = s;
    return 0;
}

/* Removes segments [from, nsegs) from the array, unlinking their files.
 * Adds their bytes to *bytes when not NULL. */
static void drop_tail(stream_log *log, int from, int64_t *bytes)
{
    while (log->nsegs > from) {
        stream__segment *s = log->segs[--log->nsegs];
        if (bytes != NULL) {
            struct stat st;
            bool pinned = stream__seg_acquire(s) == 0;
            *bytes += pinned && fstat(s->fd, &st) == 0 ? (int64_t)st.st_size : s->size;
            if (pinned)
                stream__seg_release(s);
        }
        if (s == log->pinned_active)
            unpin_active(log);
        stream__seg_unlink(log, s->base_offset);
        stream__seg_unref(s);
    }
}

static void drop_first(stream_log *log)
{
    stream__segment *s = log->segs[0];
    stream__seg_unlink(log, s->base_offset);
    memmove(log->segs, log->segs + 1, (size_t)(log->nsegs - 1) * sizeof *log->segs);
    log->nsegs--;
    stream__seg_unref(s);
}

/* ---- open ---------------------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Parses "<20 digits>.log". */
static bool segment_name(const char *name, int64_t *base)
{
    if (strlen(name) != 24 || strcmp(name + 20, ".log") != 0)
        return false;
    int64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        if (v > (INT64_MAX - (name[i] - '0')) / 10)
            return false;
        v = v * 10 + (name[i] - '0');
    }
    *base = v;
    return true;
}

/* Lists segment bases (sorted) and removes leftover temp files. */
static int list_segments(stream_log *log, int64_t **out, int *n, char *errbuf, size_t errbuf_len)
{
    *out = NULL;
    *n = 0;
    int fd = dup(log->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        int rc = stream_err_from_errno(errno);
        if (fd >= 0)
            close(fd);
        stream__errf(errbuf, errbuf_len, "cannot list %s: %s", log->dir, strerror(errno));
        return rc;
    }
    rewinddir(d);
    int64_t *bases = NULL;
    int cap = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int64_t base;
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0) {
            unlinkat(log->dirfd, e->d_name, 0); /* a checkpoint cut short */
            continue;
        }
        if (!segment_name(e->d_name, &base))
            continue;
        if (base > STREAM_LOG_MAX_OFFSET) {
            /* Not ours (appends stop below it) and not safe to do sums on;
             * deleting it as recovery does with a torn tail would destroy
             * what somebody put there. Refuse the partition instead. */
            stream__errf(errbuf, errbuf_len,
                         "segment file %s/%s: base offset past the largest a log holds (%" PRId64
                         "); move it out of the directory",
                         log->dir, e->d_name, (int64_t)STREAM_LOG_MAX_OFFSET);
            rc = STREAM_ECORRUPT;
            break;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            int64_t *p = realloc(bases, (size_t)cap * sizeof *p);
            if (p == NULL) {
                rc = STREAM_ENOMEM;
                break;
            }
            bases = p;
        }
        bases[(*n)++] = base;
    }
    closedir(d);
    if (rc != 0) {
        free(bases);
        *n = 0;
        return rc;
    }
    if (*n > 0)
        qsort(bases, (size_t)*n, sizeof *bases, cmp_i64);
    *out = bases;
    return 0;
}

/* Adds the segment at `base` to the array without opening it: the scans
 * that need its file open it through the budget (stream__seg_acquire). */
static int open_segment_file(stream_log *log, int64_t base)
{
    char path[4096];
    int rc = stream__seg_path(path, sizeof path, log->dir, base, ".log");
    if (rc != 0)
        return rc;
    if ((rc = grow_segs(log)) != 0)
        return rc;
    stream__segment *s = stream__seg_alloc(base);
    char *p = strdup(path);
    if (s == NULL || p == NULL) {
        free(p);
        stream__seg_unref(s);
        return STREAM_ENOMEM;
    }
    s->holes = log->holes;
    stream__seg_set_lazy(s, log->files, p);
    log->segs[log->nsegs++] = s;
    return 0;
}

/* Pins segment s for a scan, with a message naming it on failure. */
static int use_segment(stream_log *log, stream__segment *s, char *errbuf, size_t errbuf_len)
{
    int rc = stream__seg_acquire(s);
    if (rc == STREAM_EAGAIN)
        stream__errf(
            errbuf, errbuf_len,
            "cannot open segment %020" PRId64 " in %s: the logs' open files "
            "(log.max.open.files, by default from the open-file limit RLIMIT_NOFILE) are all "
            "in use: raise log.max.open.files or the open-file limit (ulimit -n)",
            s->base_offset, log->dir);
    else if (rc != 0)
        stream__errf(errbuf, errbuf_len, "cannot open segment %020" PRId64 " in %s: %s",
                     s->base_offset, log->dir, stream_strerror(rc));
    return rc;
}

/* Re-validates segments [from, nsegs) batch by batch, cutting the log at the
 * first bad batch, and makes what remains durable. */
static int recover_from(stream_log *log, int from, stream_log_recovery *rec, char *errbuf,
                        size_t errbuf_len)
{
    int rc = 0;
    for (int k = from; k < log->nsegs; k++) {
        stream__segment *s = log->segs[k];
        if (k > 0 && s->base_offset != log->segs[k - 1]->next_offset) {
            /* A hole or an overlap between segment files. */
            rec->truncated_at = log->segs[k - 1]->next_offset;
            drop_tail(log, k, &rec->truncated_bytes);
            break;
        }
        int64_t scanned, dropped, bad;
        if ((rc = use_segment(log, s, errbuf, errbuf_len)) != 0)
            return rc;
        rc = stream__seg_recover(log, s, &scanned, &dropped, &bad);
        if (rc != 0) {
            stream__seg_release(s);
            stream__errf(errbuf, errbuf_len, "recovering segment %020" PRId64 " in %s: %s",
                         s->base_offset, log->dir, stream_strerror(rc));
            return rc;
        }
        rec->scanned_bytes += scanned;
        rec->indexes_rebuilt += 2;
        if (fdatasync(s->fd) != 0) {
            rc = stream_err_from_errno(errno);
            stream__seg_release(s);
            stream__errf(errbuf, errbuf_len, "fdatasync segment %020" PRId64 " in %s: %s",
                         s->base_offset, log->dir, strerror(errno));
            return rc;
        }
        stream__seg_release(s);
        if (bad >= 0) {
            rec->truncated_at = bad;
            rec->truncated_bytes += dropped;
            drop_tail(log, k + 1, &rec->truncated_bytes);
            break;
        }
        if (k < log->nsegs - 1) {
            stream__seg_close_times(s);
            (void)stream__seg_write_pending(log, s);
        }
    }
    if (fsync(log->dirfd) != 0) {
        rc = stream_err_from_errno(errno);
        stream__errf(errbuf, errbuf_len, "fsync %s: %s", log->dir, strerror(errno));
    }
    return rc;
}

/* Replay: one batch header into the producer state. */
typedef struct replay_arg {
    stream_log *log;
    int64_t from; /* batches below it are in the snapshot already */
    int64_t now_ms;
} replay_arg;

static int replay_batch(const stream_batch_info *info, void *arg)
{
    replay_arg *ra = arg;
    if (info->producer_id < 0 || info->base_offset < ra->from)
        return 0;
    return stream__producer_state_update(ra->log->producers, info, ra->now_ms);
}

/* Makes the producer state that of the batches in the log: the newest
 * snapshot at or below the end, then the headers after it (producer_state.h).
 * Replayed producers count as active from now, for expiry. */
static int rebuild_producers(stream_log *log, char *errbuf, size_t errbuf_len)
{
    int64_t from;
    int rc = stream__log_dir_hold(log);
    if (rc != 0) {
        stream__errf(errbuf, errbuf_len, "cannot open %s: %s", log->dir, stream_strerror(rc));
        return rc;
    }
    rc = stream__producer_state_load(log->producers, log->dirfd, log->end_offset, &from);
    stream__log_dir_drop(log);
    log->snapshot_at = from;
    replay_arg ra = {log, from < 0 ? 0 : from, stream__now_ms()};
    for (int k = from > 0 ? find_seg(log, from) : 0; rc == 0 && k < log->nsegs; k++) {
        stream__segment *s = log->segs[k];
        if (from >= s->next_offset)
            continue; /* all in the snapshot */
        /* Start at the snapshot's batch; from the segment's start if it
         * cannot be found (replay_batch skips what the snapshot has). */
        int64_t pos = 0;
        stream_batch_info info;
        if ((rc = stream__seg_acquire(s)) != 0)
            break;
        if (from > s->base_offset && stream__seg_find(s, from, &pos, &info) != 0)
            pos = 0;
        rc = stream__seg_scan_headers(s, pos, replay_batch, &ra);
        stream__seg_release(s);
    }
    /* A damaged header in a segment open trusted without reading it all
     * (reads report it): the state stops before it, as the log effectively
     * does; the partition stays available. */
    if (rc == STREAM_ECORRUPT)
        rc = 0;
    if (rc != 0) {
        stream__producer_state_clear(log->producers);
        stream__errf(errbuf, errbuf_len, "rebuilding the producer state of %s: %s", log->dir,
                     stream_strerror(rc));
        return rc;
    }
    stream__producer_state_expire(log->producers, log->start_offset, 0, -1);
    return 0;
}

static bool seg_file_empty(stream__segment *s)
{
    struct stat st;
    if (s->path != NULL && s->fd < 0)
        return stat(s->path, &st) == 0 && st.st_size == 0; /* not opened yet */
    if (stream__seg_acquire(s) != 0)
        return false;
    bool empty = fstat(s->fd, &st) == 0 && st.st_size == 0;
    stream__seg_release(s);
    return empty;
}

/* Writes "<value>\n" to `name`, unsynced (the caller syncs): straight into
 * a new file in a fresh log, else through a temp file and a rename. */
static int write_offset_unsynced(stream_log *log, const char *name, int64_t value, bool fresh)
{
    char tmp[64], text[32];
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    int n = snprintf(text, sizeof text, "%" PRId64 "\n", value);
    int fd = openat(log->dirfd, fresh ? name : tmp,
                    O_WRONLY | O_CREAT | O_CLOEXEC | (fresh ? O_EXCL : O_TRUNC), 0644);
    if (fd < 0)
        return stream_err_from_errno(errno);
    int rc = write(fd, text, (size_t)n) == n ? 0 : STREAM_EIO;
    close(fd);
    if (fresh)
        return rc;
    if (rc == 0 && renameat(log->dirfd, tmp, log->dirfd, name) != 0)
        rc = stream_err_from_errno(errno);
    if (rc != 0)
        unlinkat(log->dirfd, tmp, 0);
    return rc;
}

/* The clean-shutdown marker, and its name while the log is open. */
#define CLEAN_MARKER      "clean-shutdown"
#define CLEAN_MARKER_OPEN "clean-shutdown.open"

/* Puts the clean-shutdown marker in place: the one open renamed aside
 * back, else a new file (fsync'd when `sync`; the directory is the
 * caller's). */
static int mark_clean(stream_log *log, bool sync)
{
    if (renameat(log->dirfd, CLEAN_MARKER_OPEN, log->dirfd, CLEAN_MARKER) == 0)
        return 0;
    int fd = openat(log->dirfd, CLEAN_MARKER, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return stream_err_from_errno(errno);
    int rc = sync && fsync(fd) != 0 ? stream_err_from_errno(errno) : 0;
    close(fd);
    return rc;
}

/* How open_log opens. */
enum {
    OPEN_FRESH = 1,       /* a directory stream_log_create just made, empty; nothing
                             is synced (the caller makes it durable) */
    OPEN_NO_DIR_SYNC = 2, /* the directory's last fsync is the caller's
                             (stream_log_open_unsynced) */
};

static int load(stream_log *log, int mode, stream_log_recovery *rec, char *errbuf,
                size_t errbuf_len)
{
    bool fresh = mode & OPEN_FRESH;
    /* A fresh directory (mkdir just made it) holds nothing to read: a
     * create of ten thousand partitions skips some fifteen system calls
     * each. */
    bool clean = !fresh && file_exists(log, CLEAN_MARKER);
    int64_t rp = fresh ? -1 : read_offset_file(log, "recovery-point");
    int64_t lso = fresh ? -1 : read_offset_file(log, "log-start-offset");
    int64_t *bases = NULL;
    int n = 0;
    /* A log cleaned before, or that took a leader's holes, keeps them
     * whatever its policy is now. */
    char mark[4096];
    if (!fresh && !log->holes &&
        ((dir_path(mark, sizeof mark, log, STREAM__CLEAN_OFFSET_FILE) == 0 &&
          access(mark, F_OK) == 0) ||
         (dir_path(mark, sizeof mark, log, STREAM__HOLES_FILE) == 0 && access(mark, F_OK) == 0)))
        log->holes = true;
    int rc = fresh ? 0 : stream__clean_recover(log, errbuf, errbuf_len);
    if (rc == 0 && !fresh)
        rc = list_segments(log, &bases, &n, errbuf, errbuf_len);
    if (rc != 0)
        return rc;
    for (int i = 0; i < n && rc == 0; i++)
        rc = open_segment_file(log, bases[i]);
    free(bases);
    if (rc != 0)
        return rc;

    /* Segments before index `from` are trusted: everything below the
     * recovery point was fdatasync'd (and all of it after a clean close). */
    int from = log->nsegs;
    if (!clean) {
        from = 0;
        for (int k = 0; rp >= 0 && k < log->nsegs; k++)
            if (log->segs[k]->base_offset <= rp)
                from = k;
    }
    for (int k = 0; k < from; k++) {
        stream__segment *s = log->segs[k];
        enum stream__seg_state state;
        if ((rc = use_segment(log, s, errbuf, errbuf_len)) != 0)
            return rc;
        rc = stream__seg_open_trusted(log, s, &state, &rec->indexes_rebuilt);
        stream__seg_release(s);
        if (rc != 0) {
            stream__errf(errbuf, errbuf_len, "opening segment %020" PRId64 " in %s: %s",
                         s->base_offset, log->dir, stream_strerror(rc));
            return rc;
        }
        if (state == STREAM__SEG_CORRUPT) {
            from = k;
            break;
        }
        if (k + 1 < log->nsegs) {
            if (s->next_offset != log->segs[k + 1]->base_offset) {
                from = k + 1; /* recover_from cuts at the gap */
                break;
            }
            stream__seg_close_times(s);
            (void)stream__seg_write_pending(log, s);
        }
    }
    /* Nothing past the recovery point: it is the base of the last segment,
     * which is empty (a partition not written since its last sync round, as
     * most of ten thousand are): no scan, no sync. */
    if (!clean && from == log->nsegs - 1 && log->segs[from]->base_offset == rp &&
        seg_file_empty(log->segs[from]))
        from = log->nsegs;
    rec->clean = clean && from == log->nsegs;
    if (from < log->nsegs && (rc = recover_from(log, from, rec, errbuf, errbuf_len)) != 0)
        return rc;

    if (log->nsegs == 0) {
        stream__segment *s;
        char why[512] = "";
        if ((rc = grow_segs(log)) != 0 ||
            (rc = create_segment(log, lso > 0 ? lso : 0, !fresh, &s, why, sizeof why)) != 0) {
            stream__errf(errbuf, errbuf_len, "creating the first segment in %s: %s", log->dir,
                         why[0] ? why : stream_strerror(rc));
            return rc;
        }
        log->segs[log->nsegs++] = s;
        log->pinned_active = s;
        log->dir_dirty = true;
    } else if ((rc = use_segment(log, active_seg(log), errbuf, errbuf_len)) != 0) {
        return rc;
    } else {
        log->pinned_active = active_seg(log);
    }
    rec->segments = log->nsegs;
    stream__segment *act = active_seg(log);
    act->roll_at_ms = stream__now_ms();
    log->end_offset = act->next_offset;
    log->start_offset = log->segs[0]->base_offset;
    if (lso > log->start_offset)
        log->start_offset = lso < log->end_offset ? lso : log->end_offset;
    /* A start beyond the end (the tail it pointed into was lost) is clamped;
     * the file must say so too, or later appends would pass the stale value
     * and a reopen would hide acknowledged records below it. */
    if (lso > log->end_offset &&
        (rc = stream__write_offset_file(log, "log-start-offset", log->start_offset)) != 0) {
        stream__errf(errbuf, errbuf_len, "rewriting %s/log-start-offset: %s", log->dir,
                     stream_strerror(rc));
        return rc;
    }
    if (fresh)
        log->snapshot_at = -1; /* no batches, no producers, no epochs */
    else if ((rc = rebuild_producers(log, errbuf, errbuf_len)) != 0)
        return rc;
    if (!fresh)
        stream__clean_end_moved(log); /* recovery may have cut below it */
    if (!fresh && (rc = stream__log_epochs_open(log, &rec->epochs_rebuilt)) != 0) {
        stream__errf(errbuf, errbuf_len, "loading the leader epochs of %s: %s", log->dir,
                     stream_strerror(rc));
        return rc;
    }

    /* From here on the files change: the marker must be gone from the disk
     * before the first append, or a crash would leave it lying. It is
     * renamed aside rather than deleted, and renamed back at close: a
     * restart of thousands of partitions that freed and then allocated an
     * inode each spent seconds in ext4's inode allocator. */
    if (clean && renameat(log->dirfd, CLEAN_MARKER, log->dirfd, CLEAN_MARKER_OPEN) != 0 &&
        errno != ENOENT) {
        rc = stream_err_from_errno(errno);
        stream__errf(errbuf, errbuf_len, "removing %s/" CLEAN_MARKER ": %s", log->dir,
                     strerror(errno));
        return rc;
    }
    if (!(mode & (OPEN_FRESH | OPEN_NO_DIR_SYNC)) && fsync(log->dirfd) != 0) {
        rc = stream_err_from_errno(errno);
        stream__errf(errbuf, errbuf_len, "fsync %s: %s", log->dir, strerror(errno));
        return rc;
    }
    log->dir_dirty = false;
    log->active = act;
    log->appended_end = log->end_offset;
    log->durable = log->end_offset;
    log->rp_written = rp;
    /* A fresh log's recovery point is written straight, unsynced: the file
     * is new, and durable with the rest of the directory (the caller's
     * sync); a crash before that leaves a directory the store removes. */
    if (fresh && write_offset_unsynced(log, "recovery-point", log->end_offset, true) == 0)
        log->rp_written = log->end_offset;
    if (!fresh && rp != log->end_offset) {
        rc = stream__write_offset_file(log, "recovery-point", log->end_offset);
        if (rc != 0) {
            stream__errf(errbuf, errbuf_len, "writing %s/recovery-point: %s", log->dir,
                         stream_strerror(rc));
            return rc;
        }
        log->rp_written = log->end_offset;
    }
    log->rp_written_ms = stream__mono_ms();
    return 0;
}

static void free_log(stream_log *log)
{
    unpin_active(log);
    for (int i = 0; i < log->nsegs; i++)
        stream__seg_unref(log->segs[i]);
    for (int i = 0; i < log->ndirty; i++)
        stream__seg_unref(log->dirty[i]);
    free(log->segs);
    free(log->dirty);
    free(log->snap);
    stream_buf_release(&log->scratch);
    stream__producer_state_free(log->producers);
    stream__epoch_cache_release(&log->epochs);
    if (log->dir_holds > 0)
        stream__files_close_dir(log->files, log->dirfd);
    if (log->lock_fd >= 0)
        close(log->lock_fd); /* releases the flock */
    pthread_cond_destroy(&log->cv);
    pthread_mutex_destroy(&log->mu);
    free(log->dir);
    free(log);
}

static int open_log(const char *dir, const stream_log_config *cfg, int mode, stream_log **out,
                    stream_log_recovery *rec, char *errbuf, size_t errbuf_len)
{
    bool fresh = mode & OPEN_FRESH;
    *out = NULL;
    stream_log_config defaults;
    if (cfg == NULL) {
        stream_log_config_init(&defaults);
        cfg = &defaults;
    }
    int rc = check_config(cfg, errbuf, errbuf_len);
    if (rc != 0)
        return rc;
    stream_log *log = calloc(1, sizeof *log);
    if (log == NULL)
        return STREAM_ENOMEM;
    log->dirfd = -1;
    log->lock_fd = -1;
    if (pthread_mutex_init(&log->mu, NULL) != 0) {
        free(log);
        return STREAM_ENOMEM;
    }
    if (stream__init_mono_cond(&log->cv) != 0) {
        pthread_mutex_destroy(&log->mu);
        free(log);
        return STREAM_ENOMEM;
    }
    log->cfg = *cfg;
    log->holes = cfg->cleanup_compact;
    atomic_init(&log->flush_mode, (int)cfg->flush_mode);
    atomic_init(&log->flush_ms, cfg->flush_ms);
    stream_buf_init(&log->scratch);
    stream__epoch_cache_init(&log->epochs);
    log->leader_epoch = -1;
    log->last_recovery.truncated_at = -1;
    log->dir = strdup(dir);
    log->producers = stream__producer_state_new();
    if (log->dir == NULL || log->producers == NULL) {
        free_log(log);
        return STREAM_ENOMEM;
    }
    /* An existing directory (a restart of thousands) costs no mkdir. Open
     * holds it for its run of *at calls and then lets it go. */
    log->files = cfg->files;
    log->dirfd =
        fresh ? STREAM_ENOENT : stream__files_open_dir(log->files, dir, errbuf, errbuf_len);
    if (log->dirfd == STREAM_ENOENT) {
        if (mkdir(dir, 0755) != 0 && (fresh || errno != EEXIST)) {
            rc = stream_err_from_errno(errno);
            stream__errf(errbuf, errbuf_len, "cannot create %s: %s", dir, strerror(errno));
            free_log(log);
            return rc;
        }
        log->dirfd = stream__files_open_dir(log->files, dir, errbuf, errbuf_len);
    }
    if (log->dirfd < 0) {
        rc = log->dirfd;
        log->dirfd = -1;
        free_log(log);
        return rc;
    }
    log->dir_holds = 1;
    /* Two owners of one directory would interleave appends: refuse. A log
     * in a budget belongs to a data directory whose lock its owner holds
     * (stream_store); only one outside keeps a descriptor for a lock. */
    if (log->files == NULL &&
        ((log->lock_fd = dup(log->dirfd)) < 0 || flock(log->lock_fd, LOCK_EX | LOCK_NB) != 0)) {
        rc = errno == EWOULDBLOCK ? STREAM_EAGAIN : stream_err_from_errno(errno);
        stream__errf(errbuf, errbuf_len, "%s is in use by another open log: %s", dir,
                     strerror(errno));
        free_log(log);
        return rc;
    }
    rc = load(log, mode, &log->last_recovery, errbuf, errbuf_len);
    stream__log_dir_drop(log);
    stream_buf_release(&log->scratch); /* scans may have grown it to megabytes */
    if (rc != 0) {
        free_log(log);
        return rc;
    }
    if (rec != NULL)
        *rec = log->last_recovery;
    *out = log;
    return 0;
}

int stream_log_open(const char *dir, const stream_log_config *cfg, stream_log **out,
                    stream_log_recovery *rec, char *errbuf, size_t errbuf_len)
{
    return open_log(dir, cfg, 0, out, rec, errbuf, errbuf_len);
}

int stream_log_open_unsynced(const char *dir, const stream_log_config *cfg, stream_log **out,
                             stream_log_recovery *rec, char *errbuf, size_t errbuf_len)
{
    return open_log(dir, cfg, OPEN_NO_DIR_SYNC, out, rec, errbuf, errbuf_len);
}

int stream_log_create(const char *dir, const stream_log_config *cfg, stream_log **out, char *errbuf,
                      size_t errbuf_len)
{
    return open_log(dir, cfg, OPEN_FRESH, out, NULL, errbuf, errbuf_len);
}

/* ---- close ---------------------------------------------------------------------- */

/* Whether close writes a producer snapshot: not when the newest one on
 * disk is at the end already (nothing appended since it was loaded or
 * written), nor for an empty log (nothing to replay at open). */
static bool needs_snapshot(const stream_log *log)
{
    return log->snapshot_at != log->end_offset && log->end_offset > log->start_offset;
}

static void detach_flusher(stream_log *log)
{
    pthread_mutex_lock(&log->mu);
    stream_flusher *f = log->flusher;
    pthread_mutex_unlock(&log->mu);
    if (f != NULL)
        stream_flusher_detach(f, log);
}

void stream_log_discard(stream_log *log)
{
    if (log == NULL)
        return;
    detach_flusher(log);
    /* Slices still pinned keep their segments (reference counted). */
    free_log(log);
}

void stream_log_close(stream_log *log)
{
    if (log == NULL)
        return;
    detach_flusher(log);

    stream__segment *act = active_seg(log);
    stream__seg_close_times(act);
    int rc = stream__seg_write_pending(log, act);
    int sync_rc = stream__log_sync(log);
    if (rc == 0)
        rc = sync_rc;
    if (rc == 0)
        rc = stream__seg_sync_indexes(log->files, log->dir, act->base_offset);

    stream__log_acquire_busy(log);
    pthread_mutex_lock(&log->mu);
    if (rc == 0)
        rc = log->io_error;
    pthread_mutex_unlock(&log->mu);
    if (rc == 0 && log->rp_written != log->end_offset)
        rc = stream__write_offset_file(log, "recovery-point", log->end_offset);
    stream__log_epochs_flush(log); /* open checks it either way */
    /* The next open loads this instead of replaying (a failure only costs
     * that replay); one at the end already is this one (nothing appended
     * since it was loaded or written). */
    if (rc == 0)
        rc = stream__log_dir_hold(log);
    if (rc == 0) {
        if (needs_snapshot(log))
            (void)stream__producer_state_write_snapshot(log->producers, log->dirfd,
                                                        log->end_offset);
        if (mark_clean(log, true) == 0) /* every file here is complete and synced */
            (void)fsync(log->dirfd);
        stream__log_dir_drop(log);
    }
    stream__log_release_busy(log);
    free_log(log);
}

/* ---- close of many logs at once ------------------------------------------------ */

int stream_log_close_prepare(stream_log *log)
{
    detach_flusher(log);
    stream__segment *act = active_seg(log);
    stream__seg_close_times(act);
    int rc = stream__seg_write_pending(log, act);
    stream__log_acquire_busy(log); /* no round of another thread's flush runs on */
    pthread_mutex_lock(&log->mu);
    if (rc == 0)
        rc = log->io_error;
    pthread_mutex_unlock(&log->mu);
    stream__log_epochs_flush(log);
    if (rc == 0 && needs_snapshot(log) && stream__log_dir_hold(log) == 0) {
        if (stream__producer_state_write_snapshot_at(log->producers, log->dirfd, log->end_offset,
                                                     false) == 0)
            log->snapshot_at = log->end_offset;
        stream__log_dir_drop(log);
    }
    stream__log_release_busy(log);
    log->close_ready = rc == 0;
    return rc;
}

void stream_log_close_finish(stream_log *log, bool synced)
{
    if (log == NULL)
        return;
    /* The data and indexes are on disk (the caller's sync): the recovery
     * point and the marker may say so. In whichever order they reach the
     * disk, each alone is true. */
    if (log->close_ready && synced && stream__log_dir_hold(log) == 0) {
        if (log->rp_written == log->end_offset ||
            write_offset_unsynced(log, "recovery-point", log->end_offset, false) == 0)
            (void)mark_clean(log, false);
        stream__log_dir_drop(log);
    }
    free_log(log);
}

/* ---- append -------------------------------------------------------------------- */

/* Makes a new active segment at the log end. The old one goes on the dirty
 * list so that the flusher syncs its tail and its closed indexes. */
static int roll(stream_log *log, char *errbuf, size_t errbuf_len)
{
    stream__segment *old = active_seg(log);
    int rc = grow_segs(log);
    if (rc != 0)
        return rc;
    stream__segment *s;
    rc = create_segment(log, log->end_offset, true, &s, errbuf, errbuf_len);
    if (rc != 0)
        return rc;
    /* The closing entries go to the files before the segment is handed to
     * the flusher, so the sync that lets the recovery point pass the segment
     * covers them. A failed write leaves a short index the next open
     * rebuilds. A closing entry on a segment that stays active (ENOMEM
     * below) is harmless. */
    stream__seg_close_times(old);
    (void)stream__seg_write_pending(log, old);

    /* One critical section: the flusher swaps the dirty array away
     * whenever it takes a snapshot. */
    pthread_mutex_lock(&log->mu);
    if (log->ndirty == log->dirty_cap) {
        int ncap = log->dirty_cap ? log->dirty_cap * 2 : 8;
        stream__segment **p = realloc(log->dirty, (size_t)ncap * sizeof *p);
        if (p == NULL) {
            pthread_mutex_unlock(&log->mu);
            stream__seg_unlink(log, s->base_offset);
            stream__seg_release(s);
            stream__seg_unref(s);
            return STREAM_ENOMEM;
        }
        log->dirty = p;
        log->dirty_cap = ncap;
    }
    stream__seg_ref(old);
    log->dirty[log->ndirty++] = old;
    stream__segment *was_pinned = log->pinned_active; /* old */
    log->active = s;
    log->pinned_active = s;
    log->dir_dirty = true;
    pthread_mutex_unlock(&log->mu);
    /* The rolled segment waits for its sync unpinned: a partition holds one
     * descriptor between requests even when every partition rolls in one
     * request (the sync reopens what the budget closed meanwhile). */
    if (was_pinned != NULL)
        stream__seg_release(was_pinned);

    log->segs[log->nsegs++] = s;
    /* Open replays producer state from the newest snapshot: one per segment
     * bounds that replay (a failed write only lengthens it). */
    if (stream__log_dir_hold(log) == 0) {
        if (stream__producer_state_write_snapshot(log->producers, log->dirfd, log->end_offset) == 0)
            log->snapshot_at = log->end_offset;
        stream__log_dir_drop(log);
    }
    return 0;
}

int stream_log_maybe_roll(stream_log *log, int64_t now_ms)
{
    stream__segment *s = active_seg(log);
    if (s->size > 0 && now_ms - s->roll_at_ms >= log->cfg.segment_ms)
        return roll(log, NULL, 0);
    return 0;
}

/* Writes one checked batch (info describes the batch at p) at the log end:
 * what stream_log_append and stream_log_append_replica share. `stamp` is
 * the leader's path: p itself, writable; its baseOffset becomes the log end
 * and, when a leader epoch is set, its partitionLeaderEpoch that epoch, just
 * before the write. Without it (a replica's batch) info->base_offset is at
 * or above the log end and the batch is written as it is: offsets between
 * the end and it are a hole the leader's cleaner left, and the end moves
 * over it with the batch. */
static int append_batch(stream_log *log, const uint8_t *p, uint8_t *stamp, stream_batch_info *info,
                        char *errbuf, size_t errbuf_len)
{
    size_t len = info->size;
    pthread_mutex_lock(&log->mu);
    int rc = log->io_error;
    pthread_mutex_unlock(&log->mu);
    if (rc != 0) {
        stream__errf(errbuf, errbuf_len, "log %s failed earlier: %s", log->dir,
                     stream_strerror(rc));
        return rc;
    }

    /* Offsets end at STREAM_LOG_MAX_OFFSET: past it the sums below (and
     * every reader's) would overflow. */
    int64_t base = stamp != NULL ? log->end_offset : info->base_offset;
    if (!stream__offsets_fit(base, info->last_offset_delta)) {
        stream__errf(errbuf, errbuf_len,
                     "log %s is full: %" PRId64 " offsets from %" PRId64
                     " would pass the largest offset a log holds (%" PRId64 ")",
                     log->dir, (int64_t)info->last_offset_delta + 1, base,
                     (int64_t)STREAM_LOG_MAX_OFFSET);
        return STREAM_EOFFSET;
    }
    /* A leader's batch was checked against the producer state, which
     * reserved room for its update; a replica's was not. */
    if (stamp == NULL && info->producer_id >= 0 &&
        stream__producer_state_reserve(log->producers) != 0) {
        stream__errf(errbuf, errbuf_len, "no memory for producer %" PRId64 " in %s",
                     info->producer_id, log->dir);
        return STREAM_ENOMEM;
    }

    stream__segment *s = active_seg(log);
    int64_t now = stream__now_ms();
    /* Offsets within a segment are 32-bit deltas from its base. A hole
     * comes from one leader segment, so past an empty active segment (whose
     * base is the end) it always fits; the check keeps that an error,
     * never a wrapped index entry. */
    bool too_far = base - s->base_offset + info->last_offset_delta > INT32_MAX;
    if (s->size > 0 && (s->size + (int64_t)len > log->cfg.segment_bytes ||
                        now - s->roll_at_ms >= log->cfg.segment_ms || too_far)) {
        char why[512] = "";
        rc = roll(log, why, sizeof why);
        if (rc != 0) {
            stream__errf(errbuf, errbuf_len, "rolling a segment in %s: %s", log->dir,
                         why[0] ? why : stream_strerror(rc));
            return rc;
        }
        s = active_seg(log);
        too_far = base - s->base_offset + info->last_offset_delta > INT32_MAX;
    }
    if (too_far) {
        stream__errf(errbuf, errbuf_len,
                     "batch at offset %" PRId64 " is too far past the log end %" PRId64 " of %s",
                     base, log->end_offset, log->dir);
        return STREAM_EOFFSET;
    }

    int64_t pos = s->size;
    if (stamp != NULL) {
        stream_batch_set_base_offset(stamp, base);
        info->base_offset = base;
        if (log->leader_epoch >= 0) {
            stream_batch_set_leader_epoch(stamp, log->leader_epoch);
            info->partition_leader_epoch = log->leader_epoch;
        }
    }
    /* Unstamped batches of a leader keep what the producer sent there (-1
     * from every client we know): not an epoch, so no cache entry. */
    bool new_epoch;
    rc = stream__log_epochs_before_append(
        log, stamp == NULL || log->leader_epoch >= 0 ? info->partition_leader_epoch : -1, base,
        &new_epoch, errbuf, errbuf_len);
    if (rc != 0)
        return rc;
    size_t done = 0;
    while (done < len) {
        ssize_t w = pwrite(s->fd, p + done, len - done, (off_t)(pos + (int64_t)done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            rc = stream_err_from_errno(e);
            stream__errf(errbuf, errbuf_len, "writing segment %020" PRId64 " in %s: %s",
                         s->base_offset, log->dir, strerror(e));
            /* Cut the partial batch so the file ends on a batch boundary.
             * Bytes past s->size are never read (reads stop at the size),
             * but the next append would land after them: when the cut
             * fails the log latches the error until stream_log_recover
             * manages it. */
            if (done > 0 && ftruncate(s->fd, (off_t)pos) != 0)
                stream__log_fail(log, stream_err_from_errno(errno),
                                 "ftruncate cutting a partial batch off segment %020" PRId64
                                 " failed: %s",
                                 s->base_offset, strerror(errno));
            if (new_epoch)
                stream__log_epochs_append_failed(log);
            return rc;
        }
        done += (size_t)w;
    }
    if (pos == 0)
        s->roll_at_ms = now;
    stream__seg_track(s, pos, info, log->cfg.index_interval_bytes);
    if (info->producer_id >= 0) /* room reserved: by check_producer, or above */
        (void)stream__producer_state_update(log->producers, info, now);
    if (s->index_n - s->index_written >= INDEX_FLUSH_ENTRIES ||
        s->times_n - s->times_written >= INDEX_FLUSH_ENTRIES)
        (void)stream__seg_write_pending(log, s); /* a hint: see roll() */
    log->end_offset = s->next_offset;

    pthread_mutex_lock(&log->mu);
    log->appended_end = log->end_offset;
    pthread_mutex_unlock(&log->mu);
    return 0;
}

int stream_log_append(stream_log *log, uint8_t *p, size_t len, int64_t *base_offset, char *errbuf,
                      size_t errbuf_len)
{
    if (len > (size_t)log->cfg.max_message_bytes) {
        stream__errf(errbuf, errbuf_len, "batch of %zu bytes exceeds max_message_bytes %d", len,
                     log->cfg.max_message_bytes);
        return STREAM_ETOOLARGE;
    }
    stream_batch_info info;
    int rc = stream_batch_check(p, len, &info, errbuf, errbuf_len);
    if (rc != 0)
        return rc;
    if (info.size != len) {
        stream__errf(errbuf, errbuf_len, "%zu bytes after the batch's %zu", len - info.size,
                     info.size);
        return STREAM_ECORRUPT;
    }
    if (log->cfg.cleanup_compact &&
        (rc = stream__clean_check_keys(p, len, errbuf, errbuf_len)) != 0)
        return rc;
    rc = append_batch(log, p, p, &info, errbuf, errbuf_len);
    if (rc == 0)
        *base_offset = info.base_offset;
    return rc;
}

int stream_log_append_replica(stream_log *log, const uint8_t *p, size_t len, int64_t *appended_end,
                              char *errbuf, size_t errbuf_len)
{
    int rc = 0;
    for (size_t at = 0; rc == 0 && at < len;) {
        stream_batch_info info;
        rc = stream_batch_check(p + at, len - at, &info, errbuf, errbuf_len);
        /* A base above the end is a hole of the leader's (compaction
         * removed those offsets there); one below overlaps this log. */
        if (rc == 0 && info.base_offset < log->end_offset) {
            stream__errf(errbuf, errbuf_len,
                         "batch at byte %zu starts at offset %" PRId64 ", below the end %" PRId64
                         " of the log %s",
                         at, info.base_offset, log->end_offset, log->dir);
            rc = STREAM_EOFFSET;
        }
        if (rc == 0 && info.base_offset > log->end_offset && !log->holes)
            rc = mark_holes(log, errbuf, errbuf_len);
        if (rc == 0)
            rc = append_batch(log, p + at, NULL, &info, errbuf, errbuf_len);
        if (rc == 0)
            at += info.size;
    }
    *appended_end = log->end_offset;
    return rc;
}

/* ---- read ---------------------------------------------------------------------- */

/* Bytes of whole batches from `pos` (a batch start) up to max_bytes, the first
 * batch (first_size) always included. Index entries mark batch starts, so
 * the walk jumps to the last entry inside the budget and reads headers only
 * from there. */
static size_t extent(const stream__segment *s, int64_t pos, size_t first_size, size_t max_bytes)
{
    int64_t end = pos + (int64_t)first_size;
    int64_t limit = pos + (int64_t)(max_bytes < (size_t)INT64_MAX / 2 ? max_bytes : INT64_MAX / 2);
    if (limit > s->size)
        limit = s->size;
    if (end >= limit)
        return first_size;
    uint32_t lo = 0, hi = s->index_n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if ((int64_t)s->index[mid].pos <= limit)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo > 0 && (int64_t)s->index[lo - 1].pos > end) {
        stream_batch_info h;
        const stream__index_entry *e = &s->index[lo - 1];
        if (stream__seg_header_at(s, e->pos, &h) == 0 && h.base_offset == s->base_offset + e->rel)
            end = e->pos;
    }
    while (end < limit) {
        stream_batch_info h;
        if (stream__seg_header_at(s, end, &h) != 0 || end + (int64_t)h.size > limit)
            break;
        end += (int64_t)h.size;
    }
    return (size_t)(end - pos);
}

int stream_log_read(stream_log *log, int64_t offset, size_t max_bytes, stream_log_slice *out)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    if (offset < log->start_offset || offset > log->end_offset)
        return STREAM_EOFFSET;
    out->first_offset = offset;
    if (offset == log->end_offset)
        return 0;
    stream__segment *s = log->segs[find_seg(log, offset)];
    int64_t pos;
    stream_batch_info info;
    int rc = stream__seg_acquire(s); /* the slice's pin */
    if (rc != 0)
        return rc;
    rc = stream__seg_find(s, offset, &pos, &info);
    if (rc != 0) {
        stream__seg_release(s);
        return rc;
    }
    stream__seg_ref(s);
    out->fd = s->fd;
    out->pos = (off_t)pos;
    out->len = extent(s, pos, info.size, max_bytes);
    out->first_offset = info.base_offset;
    out->segment = s;
    return 0;
}

int stream_log_read_until(stream_log *log, int64_t offset, size_t max_bytes, int64_t end_offset,
                          stream_log_slice *out)
{
    int rc = stream_log_read(log, offset, max_bytes, out);
    if (rc != 0 || out->len == 0)
        return rc;
    const stream__segment *s = out->segment;
    if (end_offset >= s->next_offset)
        return 0; /* every batch of the segment ends below it */
    /* Batches before the one holding end_offset end below it. The index
     * entry at or below it often proves the slice ends in time without a
     * read; else find that batch (index, then a few headers). */
    int64_t limit = (int64_t)out->pos; /* nothing: end_offset precedes the segment */
    if (end_offset > s->base_offset) {
        int64_t entry_off;
        limit = stream__seg_index_floor(s, (uint32_t)(end_offset - s->base_offset), &entry_off);
        if ((int64_t)out->pos + (int64_t)out->len <= limit)
            return 0;
        stream_batch_info info;
        rc = stream__seg_find(s, end_offset, &limit, &info);
        if (rc != 0) {
            stream_log_slice_release(out);
            return rc;
        }
    }
    if (limit <= (int64_t)out->pos) {
        stream_log_slice_release(out);
        out->first_offset = offset;
        return 0;
    }
    if ((int64_t)out->pos + (int64_t)out->len > limit)
        out->len = (size_t)(limit - (int64_t)out->pos);
    return 0;
}

void stream_log_slice_release(stream_log_slice *s)
{
    if (s == NULL)
        return;
    if (s->segment != NULL) {
        stream__seg_release(s->segment);
        stream__seg_unref(s->segment);
    }
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

int stream_log_read_copy(stream_log *log, int64_t offset, size_t max_bytes, stream_buf *out)
{
    stream_log_slice sl;
    int rc = stream_log_read(log, offset, max_bytes, &sl);
    if (rc != 0 || sl.len == 0)
        return rc;
    if (stream_buf_reserve(out, sl.len) != 0) {
        stream_log_slice_release(&sl);
        return STREAM_ENOMEM;
    }
    uint8_t *dst = out->data + out->len;
    size_t got = 0;
    while (got < sl.len) {
        ssize_t r = pread(sl.fd, dst + got, sl.len - got, sl.pos + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? stream_err_from_errno(errno) : STREAM_ECORRUPT;
            break;
        }
        got += (size_t)r;
    }
    stream_log_slice_release(&sl);
    /* Bit rot below the recovery point is not found by open; this path at
     * least never hands it on: CRCs, and offsets (outside the CRC) that
     * reach the one asked for and run on (skipping only where the log
     * has holes, see struct stream_log). */
    int64_t expect = offset;
    for (size_t at = 0; rc == 0 && at < got;) {
        stream_batch_info info;
        if (stream_batch_check(dst + at, got - at, &info, NULL, 0) != 0 ||
            (at == 0 ? (!log->holes && info.base_offset > offset) ||
                           info.base_offset + info.last_offset_delta < offset
                     : log->holes ? info.base_offset < expect : info.base_offset != expect))
            rc = STREAM_ECORRUPT;
        else
            at += info.size;
        expect = info.base_offset + info.last_offset_delta + 1;
    }
    if (rc == 0)
        out->len += got;
    return rc;
}

/* ---- time look-up -------------------------------------------------------------- */

/* Reads the batch at pos into log->scratch and returns the first record
 * offset with timestamp >= ts and offset >= min_offset, or -1. */
static int first_record_at_or_after(stream_log *log, const stream__segment *s, int64_t pos,
                                    size_t size, int64_t ts, int64_t min_offset, int64_t *found)
{
    *found = -1;
    stream_buf_reset(&log->scratch);
    if (stream_buf_reserve(&log->scratch, size) != 0)
        return STREAM_ENOMEM;
    size_t got = 0;
    while (got < size) {
        ssize_t r = pread(s->fd, log->scratch.data + got, size - got, (off_t)pos + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? stream_err_from_errno(errno) : STREAM_ECORRUPT;
        got += (size_t)r;
    }
    stream_record_iter it;
    stream_record rec;
    int rc = stream_record_iter_start(&it, log->scratch.data, size);
    while (rc == 0) {
        rc = stream_record_iter_next(&it, &rec);
        if (rc != 1)
            break;
        rc = 0;
        if (rec.timestamp >= ts && rec.offset >= min_offset) {
            *found = rec.offset;
            break;
        }
    }
    stream_record_iter_stop(&it);
    return rc;
}

int stream_log_offset_for_time(stream_log *log, int64_t ts, int64_t *offset)
{
    *offset = log->end_offset;
    int k = 0;
    while (k < log->nsegs && (log->segs[k]->max_timestamp == STREAM__NO_TIMESTAMP ||
                              log->segs[k]->max_timestamp < ts))
        k++;
    for (bool first = true; k < log->nsegs; k++, first = false) {
        stream__segment *s = log->segs[k];
        int64_t pos = 0, expect = s->base_offset;
        if (first) {
            /* The last time entry below ts: no batch up to it reaches ts. */
            uint32_t lo = 0, hi = s->times_n;
            while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;
                if (s->times[mid].ts < ts)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo > 0)
                pos = stream__seg_index_floor(s, s->times[lo - 1].rel, &expect);
        }
        int rc = stream__seg_acquire(s);
        if (rc != 0)
            return rc;
        while (rc == 0 && pos < s->size) {
            stream_batch_info h;
            rc = stream__seg_header_at(s, pos, &h);
            if (rc == 0 && h.max_timestamp >= ts &&
                h.base_offset + h.last_offset_delta >= log->start_offset) {
                int64_t found;
                rc = first_record_at_or_after(log, s, pos, h.size, ts, log->start_offset, &found);
                if (rc == 0 && found >= 0) {
                    *offset = found;
                    stream__seg_release(s);
                    return 0;
                }
            }
            pos += (int64_t)h.size;
        }
        stream__seg_release(s);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- offsets, retention, truncation -------------------------------------------- */

int64_t stream_log_start_offset(const stream_log *log)
{
    return log->start_offset;
}

int64_t stream_log_end_offset(const stream_log *log)
{
    return log->end_offset;
}

int64_t stream_log_size(const stream_log *log)
{
    int64_t n = 0;
    for (int i = 0; i < log->nsegs; i++)
        n += log->segs[i]->size;
    return n;
}

int stream_log_segment_count(const stream_log *log)
{
    return log->nsegs;
}

int stream_log_apply_retention(stream_log *log, int64_t now_ms)
{
    int deleted = 0;
    /* A compact-only topic keeps its segments: the cleaner shrinks them. */
    if (log->cfg.cleanup_delete && log->cfg.retention_ms >= 0) {
        while (log->nsegs > 1) {
            stream__segment *s = log->segs[0];
            int64_t ts = s->max_timestamp;
            struct stat st;
            if (ts == STREAM__NO_TIMESTAMP || ts < 0) /* no timestamps: the file's age */
                ts = s->path != NULL && stat(s->path, &st) == 0 ? (int64_t)st.st_mtime * 1000
                                                                : now_ms;
            if (now_ms - ts <= log->cfg.retention_ms)
                break;
            drop_first(log);
            deleted++;
        }
    }
    if (log->cfg.cleanup_delete && log->cfg.retention_bytes >= 0) {
        int64_t size = stream_log_size(log);
        while (log->nsegs > 1 && size - log->segs[0]->size >= log->cfg.retention_bytes) {
            size -= log->segs[0]->size;
            drop_first(log);
            deleted++;
        }
    }
    if (log->segs[0]->base_offset > log->start_offset)
        log->start_offset = log->segs[0]->base_offset;
    if (deleted > 0)
        stream__log_epochs_start_moved(log);
    stream__producer_state_expire(log->producers, log->start_offset, now_ms,
                                  STREAM__PRODUCER_EXPIRATION_MS);
    return deleted;
}

_Static_assert(STREAM_LOG_DUPLICATE == STREAM__PRODUCER_DUPLICATE, "one duplicate answer");

int stream_log_check_producer(stream_log *log, const uint8_t *p, size_t len,
                              int64_t *dup_base_offset, char *errbuf, size_t errbuf_len)
{
    stream_batch_info info;
    int rc = stream_batch_header_decode(p, len, &info);
    if (rc != 0) {
        stream__errf(errbuf, errbuf_len, "cannot decode the batch header: %s", stream_strerror(rc));
        return rc;
    }
    if (info.producer_id < 0)
        return 0;
    return stream__producer_state_check(log->producers, &info, dup_base_offset, errbuf, errbuf_len);
}

int stream_log_advance_start(stream_log *log, int64_t offset)
{
    if (offset > log->end_offset)
        return STREAM_EOFFSET;
    if (offset <= log->start_offset)
        return 0;
    int rc = stream__write_offset_file(log, "log-start-offset", offset);
    if (rc != 0)
        return rc;
    log->start_offset = offset;
    while (log->nsegs > 1 && log->segs[0]->next_offset <= offset)
        drop_first(log);
    stream__log_epochs_start_moved(log);
    return 0;
}

/* Points the durability side at the new tail after a truncation. Called with
 * busy held. */
static void publish_truncation(stream_log *log)
{
    pthread_mutex_lock(&log->mu);
    log->active = active_seg(log);
    log->appended_end = log->end_offset;
    if (log->durable > log->end_offset)
        log->durable = log->end_offset;
    log->dir_dirty = true;
    pthread_mutex_unlock(&log->mu);
    stream__clean_end_moved(log);
    /* The checkpoint must never claim batches that no longer exist: new
     * ones will take their offsets. */
    if (log->rp_written > log->end_offset) {
        if (stream__write_offset_file(log, "recovery-point", log->end_offset) == 0) {
            log->rp_written = log->end_offset;
        } else {
            /* No checkpoint at all is safe (a full scan); a stale one is not. */
            char path[4096];
            if (dir_path(path, sizeof path, log, "recovery-point") == 0 && unlink(path) != 0 &&
                errno != ENOENT)
                stream__log_fail(log, STREAM_EIO, "removing a stale recovery-point failed: %s",
                                 strerror(errno));
            (void)stream__log_dir_sync(log);
            log->rp_written = -1;
        }
    }
}

int stream_log_truncate_to(stream_log *log, int64_t offset)
{
    if (offset < log->start_offset)
        return STREAM_EOFFSET;
    if (offset >= log->end_offset)
        return 0;
    int k = find_seg(log, offset);
    stream__segment *s = log->segs[k];
    int64_t pos;
    stream_batch_info info;
    int rc = stream__seg_acquire(s);
    if (rc != 0)
        return rc;
    rc = stream__seg_find(s, offset, &pos, &info);
    if (rc != 0) {
        stream__seg_release(s);
        return rc;
    }

    stream__log_acquire_busy(log);
    if (info.base_offset < log->start_offset) {
        /* The batch straddles the start (delete-records mid-batch): nothing
         * readable remains, so start over empty at the start offset. */
        stream__segment *fresh;
        rc = create_segment(log, log->start_offset, true, &fresh, NULL, 0);
        if (rc == 0) {
            drop_tail(log, 0, NULL);
            log->segs[log->nsegs++] = fresh;
            log->pinned_active = fresh;
            log->end_offset = log->start_offset;
        }
    } else {
        drop_tail(log, k + 1, NULL);
        (void)pin_active(log); /* s is pinned already: cannot fail */
        if (ftruncate(s->fd, (off_t)pos) != 0) {
            rc = stream_err_from_errno(errno);
            log->end_offset = s->next_offset;
            stream__log_fail(log, rc, "ftruncate of segment %020" PRId64 " failed: %s",
                             s->base_offset, strerror(errno));
        } else {
            /* The file is cut: memory follows it even when the sync below
             * fails (then the error latches, and stream_log_recover syncs
             * again). */
            s->size = pos;
            s->next_offset = info.base_offset;
            stream__seg_trim_indexes(s, (uint32_t)(info.base_offset - s->base_offset));
            rc = stream__seg_recompute_tail(log, s);
            if (rc == 0)
                rc = stream__seg_rewrite_indexes(log, s);
            s->roll_at_ms = stream__now_ms();
            log->end_offset = info.base_offset;
            if (fdatasync(s->fd) != 0) {
                rc = stream_err_from_errno(errno);
                stream__log_fail(log, rc,
                                 "fdatasync of segment %020" PRId64 " after a cut failed: %s",
                                 s->base_offset, strerror(errno));
            }
        }
    }
    stream__seg_release(s);
    publish_truncation(log);
    stream__log_release_busy(log);
    /* The log is cut first and the checkpoint after: a crash between
     * leaves it naming epochs past the end, which open drops. */
    stream__log_epochs_end_moved(log);
    /* Batches past the cut no longer count for their producers. */
    int prc = rebuild_producers(log, NULL, 0);
    return rc != 0 ? rc : prc;
}

/* ---- I/O errors ------------------------------------------------------------------ */

/* After a failed attempt, stream_log_recover waits this long before the next. */
#define RECOVER_RETRY_MS 1000

int stream_log_io_error(stream_log *log, uint64_t *failures, char *errbuf, size_t errbuf_len)
{
    pthread_mutex_lock(&log->mu);
    int err = log->io_error;
    if (failures != NULL)
        *failures = log->io_failures;
    if (err != 0)
        stream__errf(errbuf, errbuf_len, "%s", log->io_error_msg);
    pthread_mutex_unlock(&log->mu);
    return err;
}

/* fdatasyncs every segment from index `from` on, their index files, and the
 * directory: what recovery hands back must be on disk before the log takes
 * appends again. */
static int sync_from(stream_log *log, int from)
{
    for (int k = from; k < log->nsegs; k++) {
        stream__segment *s = log->segs[k];
        int rc = stream__seg_acquire(s);
        if (rc != 0)
            return rc;
        rc = fdatasync(s->fd) != 0 ? stream_err_from_errno(errno) : 0;
        stream__seg_release(s);
        if (rc == 0)
            rc = stream__seg_sync_indexes(log->files, log->dir, s->base_offset);
        if (rc != 0)
            return rc;
    }
    return stream__log_dir_sync(log);
}

int stream_log_recover(stream_log *log, int64_t *cut_to, char *errbuf, size_t errbuf_len)
{
    *cut_to = -1;
    uint64_t failures;
    int err = stream_log_io_error(log, &failures, NULL, 0);
    if (err == 0)
        return 0;
    int64_t now = stream__mono_ms();
    if (now < log->recover_after_ms)
        return STREAM_EAGAIN;
    log->recover_after_ms = now + RECOVER_RETRY_MS;

    /* The latched error stops sync rounds, so durable stays put meanwhile.
     * Everything below it was fdatasync'd by a round that succeeded; the
     * rest may exist only in the page cache (or not even there), so it
     * goes, as a power cut would take it. */
    int64_t durable = stream_log_durable_offset(log);
    int64_t cut = durable > log->start_offset ? durable : log->start_offset;
    int64_t end_before = log->end_offset;
    int rc = 0;
    if (cut < log->end_offset) {
        rc = stream_log_truncate_to(log, cut);
        if (log->end_offset < end_before)
            *cut_to = log->end_offset; /* cut, even if its sync failed */
    }
    /* A partial batch whose cut failed may still trail the active
     * segment's last whole batch. */
    stream__segment *s = active_seg(log);
    struct stat st;
    if (rc == 0 && fstat(s->fd, &st) != 0)
        rc = stream_err_from_errno(errno);
    if (rc == 0 && st.st_size != s->size && ftruncate(s->fd, (off_t)s->size) != 0)
        rc = stream_err_from_errno(errno);
    if (rc == 0)
        rc = sync_from(log, find_seg(log, log->rp_written > 0 ? log->rp_written : 0));
    if (rc != 0) {
        stream__errf(errbuf, errbuf_len, "recovering %s after %s: %s", log->dir,
                     stream_strerror(err), stream_strerror(rc));
        return rc;
    }
    pthread_mutex_lock(&log->mu);
    if (log->io_failures == failures) {
        log->io_error = 0;
        log->appended_end = log->end_offset;
    } else {
        rc = log->io_error; /* failed again meanwhile: the next attempt handles it */
    }
    pthread_mutex_unlock(&log->mu);
    if (rc != 0) {
        stream__errf(errbuf, errbuf_len, "recovering %s: failed again: %s", log->dir,
                     stream_strerror(rc));
        return rc;
    }
    log->recover_after_ms = 0;
    stream__log_epochs_flush(log);
    return 0;
}
