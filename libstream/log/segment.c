/*
 * segment.c - one segment of a partition log: its .log file, its two sparse
 * indexes, and the scans that check and rebuild them.
 *
 * The indexes live in memory (a segment of 1 GiB with one entry per 4 KiB is
 * 2 MiB of offset index) and are appended to their files in chunks; the files
 * exist so that a clean open need not read the whole log. They are hints: on
 * open they are checked cheaply (size a multiple of the entry size, entries
 * strictly increasing, positions inside the log, the last entry pointing at a
 * batch with the offset it claims, no entry missing in the tail) and rebuilt
 * from the batch headers when anything is off.
 *
 * Two scans walk a segment's batches:
 *   - the header scan (open_trusted) reads only the 61-byte headers and checks
 *     that batches chain from the segment base to the end of the file with
 *     increasing offsets (contiguous unless the cleaner removed records:
 *     holes are allowed, overlaps are not); cheap, used on clean opens;
 *   - the recovery scan (seg_recover) reads every byte, runs
 *     stream_batch_check (header, size, CRC) on each batch and cuts the file at
 *     the first one that fails; used past the recovery point after a crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log_internal.h"
#include "stream/error.h"

/* Bytes read at a time by the recovery scan: big reads, few syscalls. */
#define RECOVERY_CHUNK ((size_t)1 << 20)
/* Bytes read at a time by header scans: enough for many small batches. */
#define HEADER_CHUNK ((size_t)8192)

int stream__seg_path(char *buf, size_t n, const char *dir, int64_t base, const char *ext)
{
    int w = snprintf(buf, n, "%s/%020" PRId64 "%s", dir, base, ext);
    return (w < 0 || (size_t)w >= n) ? STREAM_EINVAL : 0;
}

stream__segment *stream__seg_alloc(int64_t base_offset)
{
    stream__segment *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->base_offset = base_offset;
    s->fd = -1;
    atomic_init(&s->refs, 1);
    s->next_offset = base_offset;
    s->max_timestamp = STREAM__NO_TIMESTAMP;
    return s;
}

void stream__seg_ref(stream__segment *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void stream__seg_unref(stream__segment *s)
{
    if (s == NULL)
        return;
    /* acq_rel: the last owner must see every write the others made. */
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    stream__seg_close_file(s);
    free(s->path);
    free(s->index);
    free(s->times);
    free(s);
}

/* ---- file helpers -------------------------------------------------------- */

/* pread until n bytes or end of file; returns bytes read or -errno. */
static ssize_t pread_full(int fd, void *buf, size_t n, int64_t pos)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (uint8_t *)buf + got, n - got, (off_t)(pos + (int64_t)got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static int pwrite_full(int fd, const void *buf, size_t n, int64_t pos)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = pwrite(fd, (const uint8_t *)buf + done, n - done, (off_t)(pos + (int64_t)done));
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return stream_err_from_errno(errno);
        }
        done += (size_t)w;
    }
    return 0;
}

/*
 * A window of a segment file for forward scans: holds file bytes
 * [off, off + len) in mem. Grows through `grow` when a batch is larger than
 * the window (recovery scan); header scans use a fixed stack buffer.
 */
typedef struct window {
    int fd;
    int64_t file_size; /* never read past this */
    uint8_t *mem;
    size_t cap;
    stream_buf *grow; /* NULL: mem is fixed */
    size_t chunk;     /* preferred read size */
    int64_t off;
    size_t len;
} window;

/* Points *out at file bytes [pos, pos + need); need <= file_size - pos. */
static int window_get(window *w, int64_t pos, size_t need, const uint8_t **out)
{
    if (pos >= w->off && (uint64_t)(pos - w->off) + need <= w->len) {
        *out = w->mem + (pos - w->off);
        return 0;
    }
    size_t want = need > w->chunk ? need : w->chunk;
    if ((int64_t)want > w->file_size - pos)
        want = (size_t)(w->file_size - pos);
    if (want > w->cap) {
        if (w->grow == NULL)
            want = w->cap;
        else {
            stream_buf_reset(w->grow);
            if (stream_buf_reserve(w->grow, want) != 0)
                return STREAM_ENOMEM;
            w->mem = w->grow->data;
            w->cap = w->grow->cap;
        }
    }
    if (want < need)
        return STREAM_ENOMEM;
    ssize_t r = pread_full(w->fd, w->mem, want, pos);
    if (r < 0)
        return stream_err_from_errno((int)-r);
    w->off = pos;
    w->len = (size_t)r;
    if ((size_t)r < need)
        return STREAM_ESHORT;
    *out = w->mem;
    return 0;
}

static void window_init(window *w, int fd, int64_t file_size, uint8_t *mem, size_t cap,
                        stream_buf *grow, size_t chunk)
{
    w->fd = fd;
    w->file_size = file_size;
    w->mem = mem;
    w->cap = cap;
    w->grow = grow;
    w->chunk = chunk;
    w->off = 0;
    w->len = 0;
}

/* ---- in-memory indexes ----------------------------------------------------- */

static bool grow_array(void **arr, uint32_t *cap, uint32_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    uint32_t ncap = *cap ? *cap : 256;
    while (ncap < need)
        ncap = ncap > UINT32_MAX / 2 ? need : ncap * 2;
    void *p = realloc(*arr, (size_t)ncap * elem);
    if (p == NULL)
        return false;
    *arr = p;
    *cap = ncap;
    return true;
}

static void add_index(stream__segment *s, uint32_t rel, int64_t pos)
{
    /* A failed allocation leaves a gap in a sparse index: reads scan a bit
     * further, and the next open rebuilds it. */
    if (!grow_array((void **)&s->index, &s->index_cap, s->index_n + 1, sizeof *s->index))
        return;
    s->index[s->index_n].rel = rel;
    s->index[s->index_n].pos = (uint32_t)pos;
    s->index_n++;
    s->last_index_pos = pos;
}

static void add_time(stream__segment *s, int64_t ts, uint32_t rel, int64_t pos)
{
    if (!grow_array((void **)&s->times, &s->times_cap, s->times_n + 1, sizeof *s->times))
        return;
    s->times[s->times_n].ts = ts;
    s->times[s->times_n].rel = rel;
    s->times_n++;
    s->last_time_pos = pos;
}

void stream__seg_track(stream__segment *s, int64_t pos, const stream_batch_info *info,
                       int32_t index_interval_bytes)
{
    uint32_t rel = (uint32_t)(info->base_offset - s->base_offset);
    if (s->index_n == 0 || pos - s->last_index_pos >= index_interval_bytes)
        add_index(s, rel, pos);
    int64_t ts = info->max_timestamp;
    /* The first batch always gets a time entry; later ones only when they
     * raise the largest timestamp, at most one per interval. Timestamps in
     * the file therefore increase strictly. */
    if (s->times_n == 0 ||
        (ts > s->max_timestamp && pos - s->last_time_pos >= index_interval_bytes))
        add_time(s, ts, rel, pos);
    if (s->max_timestamp == STREAM__NO_TIMESTAMP || ts > s->max_timestamp) {
        s->max_timestamp = ts;
        s->max_ts_rel = rel;
    }
    s->size = pos + (int64_t)info->size;
    s->next_offset = info->base_offset + info->last_offset_delta + 1;
}

void stream__seg_close_times(stream__segment *s)
{
    if (s->times_n > 0 && s->max_timestamp > s->times[s->times_n - 1].ts)
        add_time(s, s->max_timestamp, s->max_ts_rel, s->last_time_pos);
}

static void reset_indexes(stream__segment *s)
{
    s->index_n = 0;
    s->index_written = 0;
    s->times_n = 0;
    s->times_written = 0;
    s->size = 0;
    s->next_offset = s->base_offset;
    s->max_timestamp = STREAM__NO_TIMESTAMP;
    s->max_ts_rel = 0;
    s->last_index_pos = 0;
    s->last_time_pos = 0;
}

void stream__seg_trim_indexes(stream__segment *s, uint32_t rel)
{
    while (s->index_n > 0 && s->index[s->index_n - 1].rel >= rel)
        s->index_n--;
    while (s->times_n > 0 && s->times[s->times_n - 1].rel >= rel)
        s->times_n--;
    if (s->index_written > s->index_n)
        s->index_written = s->index_n;
    if (s->times_written > s->times_n)
        s->times_written = s->times_n;
}

int64_t stream__seg_index_floor(const stream__segment *s, uint32_t rel, int64_t *entry_off)
{
    /* Largest entry with entry.rel <= rel; entry 0 is always (0, 0). */
    uint32_t lo = 0, hi = s->index_n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->index[mid].rel <= rel)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) {
        *entry_off = s->base_offset;
        return 0;
    }
    *entry_off = s->base_offset + s->index[lo - 1].rel;
    return s->index[lo - 1].pos;
}

/* ---- index files -------------------------------------------------------- */

/* Writes entries [from, n) of one index (encoded by `enc`) at from * esize. */
static int write_entries(stream_log_files *f, const char *path, bool trunc, uint32_t from,
                         uint32_t n, size_t esize,
                         void (*enc)(const stream__segment *, uint32_t, uint8_t *),
                         const stream__segment *s)
{
    int fd = stream__files_open(f, path, O_WRONLY | O_CREAT | (trunc ? O_TRUNC : 0), NULL, 0);
    if (fd < 0)
        return fd;
    uint8_t buf[512 * 12];
    size_t per = sizeof buf / esize;
    int rc = 0;
    uint32_t i = from;
    while (rc == 0 && i < n) {
        size_t k = 0;
        for (; k < per && i < n; k++, i++)
            enc(s, i, buf + k * esize);
        rc = pwrite_full(fd, buf, k * esize, (int64_t)(i - k) * (int64_t)esize);
    }
    if (rc == 0 && !trunc && ftruncate(fd, (off_t)((int64_t)n * (int64_t)esize)) != 0)
        rc = stream_err_from_errno(errno);
    stream__files_close_dir(f, fd);
    return rc;
}

static void enc_index(const stream__segment *s, uint32_t i, uint8_t *p)
{
    stream_store_be32(p, s->index[i].rel);
    stream_store_be32(p + 4, s->index[i].pos);
}

static void enc_time(const stream__segment *s, uint32_t i, uint8_t *p)
{
    stream_store_be64(p, (uint64_t)s->times[i].ts);
    stream_store_be32(p + 8, s->times[i].rel);
}

static int write_indexes(stream_log *log, stream__segment *s, bool all)
{
    char path[4096];
    int rc = 0;
    if (all || s->index_written < s->index_n) {
        rc = stream__seg_path(path, sizeof path, log->dir, s->base_offset, ".index");
        if (rc == 0)
            rc = write_entries(log->files, path, all, all ? 0 : s->index_written, s->index_n,
                               STREAM__INDEX_ENTRY_SIZE, enc_index, s);
        if (rc != 0)
            return rc;
        s->index_written = s->index_n;
    }
    if (all || s->times_written < s->times_n) {
        rc = stream__seg_path(path, sizeof path, log->dir, s->base_offset, ".timeindex");
        if (rc == 0)
            rc = write_entries(log->files, path, all, all ? 0 : s->times_written, s->times_n,
                               STREAM__TIMEINDEX_ENTRY_SIZE, enc_time, s);
        if (rc != 0)
            return rc;
        s->times_written = s->times_n;
    }
    return 0;
}

int stream__seg_write_pending(stream_log *log, stream__segment *s)
{
    return write_indexes(log, s, false);
}

int stream__seg_rewrite_indexes(stream_log *log, stream__segment *s)
{
    return write_indexes(log, s, true);
}

static int sync_path(stream_log_files *f, const char *path)
{
    int fd = stream__files_open(f, path, O_RDONLY, NULL, 0);
    if (fd < 0)
        return fd == STREAM_ENOENT ? 0 : fd;
    int rc = fdatasync(fd) == 0 ? 0 : stream_err_from_errno(errno);
    stream__files_close_dir(f, fd);
    return rc;
}

int stream__seg_sync_indexes(stream_log_files *f, const char *dir, int64_t base)
{
    char path[4096];
    int rc = stream__seg_path(path, sizeof path, dir, base, ".index");
    if (rc == 0)
        rc = sync_path(f, path);
    if (rc == 0)
        rc = stream__seg_path(path, sizeof path, dir, base, ".timeindex");
    if (rc == 0)
        rc = sync_path(f, path);
    return rc;
}

void stream__seg_unlink(stream_log *log, int64_t base)
{
    static const char *const exts[] = {".log", ".index", ".timeindex"};
    char path[4096];
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (stream__seg_path(path, sizeof path, log->dir, base, exts[i]) == 0)
            unlink(path);
}

/* Reads a whole index file into log->scratch. *missing when it does not exist. */
static int read_file(stream_log *log, int64_t base, const char *ext, bool *missing)
{
    char path[4096];
    *missing = false;
    stream_buf_reset(&log->scratch);
    int rc = stream__seg_path(path, sizeof path, log->dir, base, ext);
    if (rc != 0)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            *missing = true;
            return 0;
        }
        return stream_err_from_errno(errno);
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = stream_err_from_errno(errno);
        close(fd);
        return rc;
    }
    size_t n = (size_t)st.st_size;
    if (n > 0 && stream_buf_reserve(&log->scratch, n) != 0) {
        close(fd);
        return STREAM_ENOMEM;
    }
    ssize_t r = n > 0 ? pread_full(fd, log->scratch.data, n, 0) : 0;
    close(fd);
    if (r < 0)
        return stream_err_from_errno((int)-r);
    log->scratch.len = (size_t)r;
    return 0;
}

/* Loads and checks the .index file; false when it must be rebuilt. */
static bool load_index(stream_log *log, stream__segment *s, int64_t file_size, int *err)
{
    bool missing;
    *err = read_file(log, s->base_offset, ".index", &missing);
    if (*err != 0)
        return false;
    const uint8_t *p = log->scratch.data;
    size_t len = log->scratch.len;
    if (len % STREAM__INDEX_ENTRY_SIZE != 0)
        return false;
    uint32_t n = (uint32_t)(len / STREAM__INDEX_ENTRY_SIZE);
    if ((n == 0) != (file_size == 0))
        return false; /* the first batch always has an entry */
    if (!grow_array((void **)&s->index, &s->index_cap, n, sizeof *s->index)) {
        *err = STREAM_ENOMEM;
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t rel = stream_load_be32(p + (size_t)i * 8);
        uint32_t pos = stream_load_be32(p + (size_t)i * 8 + 4);
        if (i == 0 ? (rel != 0 || pos != 0)
                   : (rel <= s->index[i - 1].rel || pos <= s->index[i - 1].pos))
            return false;
        if ((int64_t)pos >= file_size)
            return false;
        s->index[i].rel = rel;
        s->index[i].pos = pos;
    }
    s->index_n = n;
    s->index_written = n;
    s->last_index_pos = n ? s->index[n - 1].pos : 0;
    return true;
}

/* Loads and checks the .timeindex file; false when it must be rebuilt. */
static bool load_times(stream_log *log, stream__segment *s, int64_t file_size, int *err)
{
    bool missing;
    *err = read_file(log, s->base_offset, ".timeindex", &missing);
    if (*err != 0)
        return false;
    const uint8_t *p = log->scratch.data;
    size_t len = log->scratch.len;
    if (len % STREAM__TIMEINDEX_ENTRY_SIZE != 0)
        return false;
    uint32_t n = (uint32_t)(len / STREAM__TIMEINDEX_ENTRY_SIZE);
    if ((n == 0) != (file_size == 0))
        return false; /* the first batch always has an entry */
    if (!grow_array((void **)&s->times, &s->times_cap, n, sizeof *s->times)) {
        *err = STREAM_ENOMEM;
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        int64_t ts = (int64_t)stream_load_be64(p + (size_t)i * 12);
        uint32_t rel = stream_load_be32(p + (size_t)i * 12 + 8);
        if (i == 0 ? rel != 0 : (rel <= s->times[i - 1].rel || ts <= s->times[i - 1].ts))
            return false;
        s->times[i].ts = ts;
        s->times[i].rel = rel;
    }
    s->times_n = n;
    s->times_written = n;
    return true;
}

/* ---- scans ------------------------------------------------------------------ */

int stream__seg_header_at(const stream__segment *s, int64_t pos, stream_batch_info *info)
{
    uint8_t h[STREAM_BATCH_HEADER_SIZE];
    if (pos < 0 || s->size - pos < STREAM_BATCH_HEADER_SIZE)
        return STREAM_ECORRUPT;
    ssize_t r = pread_full(s->fd, h, sizeof h, pos);
    if (r < 0)
        return stream_err_from_errno((int)-r);
    if ((size_t)r < sizeof h || stream_batch_header_decode(h, sizeof h, info) != 0)
        return STREAM_ECORRUPT;
    if ((int64_t)info->size > s->size - pos)
        return STREAM_ECORRUPT;
    return 0;
}

/* Walks headers from (pos, expect) to the batch containing `offset`. */
static int walk_to(const stream__segment *s, int64_t pos, int64_t expect, int64_t offset,
                   int64_t *out_pos, stream_batch_info *info)
{
    uint8_t mem[HEADER_CHUNK];
    window w;
    window_init(&w, s->fd, s->size, mem, sizeof mem, NULL, sizeof mem);
    while (pos < s->size) {
        const uint8_t *h;
        if (s->size - pos < STREAM_BATCH_HEADER_SIZE)
            return STREAM_ECORRUPT;
        int rc = window_get(&w, pos, STREAM_BATCH_HEADER_SIZE, &h);
        if (rc != 0)
            return rc == STREAM_ESHORT ? STREAM_ECORRUPT : rc;
        if (stream_batch_header_decode(h, STREAM_BATCH_HEADER_SIZE, info) != 0 ||
            (int64_t)info->size > s->size - pos ||
            stream__seg_misplaced(s, info->base_offset, expect))
            return STREAM_ECORRUPT;
        if (offset <= info->base_offset + info->last_offset_delta) {
            *out_pos = pos;
            return 0;
        }
        expect = info->base_offset + info->last_offset_delta + 1;
        pos += (int64_t)info->size;
    }
    return STREAM_ECORRUPT;
}

int stream__seg_find(const stream__segment *s, int64_t offset, int64_t *pos,
                     stream_batch_info *info)
{
    if (offset < s->base_offset || offset >= s->next_offset)
        return STREAM_EOFFSET;
    int64_t entry_off;
    int64_t start = stream__seg_index_floor(s, (uint32_t)(offset - s->base_offset), &entry_off);
    int rc = walk_to(s, start, entry_off, offset, pos, info);
    /* A wrong entry that passed the open checks costs a scan from the start,
     * never a wrong answer. */
    if (rc == STREAM_ECORRUPT && start != 0)
        rc = walk_to(s, 0, s->base_offset, offset, pos, info);
    return rc;
}

int stream__seg_scan_headers(const stream__segment *s, int64_t pos,
                             int (*fn)(const stream_batch_info *info, void *arg), void *arg)
{
    uint8_t mem[HEADER_CHUNK];
    window w;
    window_init(&w, s->fd, s->size, mem, sizeof mem, NULL, sizeof mem);
    while (pos < s->size) {
        stream_batch_info info;
        const uint8_t *h;
        if (s->size - pos < STREAM_BATCH_HEADER_SIZE)
            return STREAM_ECORRUPT;
        int rc = window_get(&w, pos, STREAM_BATCH_HEADER_SIZE, &h);
        if (rc != 0)
            return rc == STREAM_ESHORT ? STREAM_ECORRUPT : rc;
        if (stream_batch_header_decode(h, STREAM_BATCH_HEADER_SIZE, &info) != 0 ||
            (int64_t)info.size > s->size - pos)
            return STREAM_ECORRUPT;
        if ((rc = fn(&info, arg)) != 0)
            return rc;
        pos += (int64_t)info.size;
    }
    return 0;
}

/* Outcome of a header or recovery scan. */
enum scan_result { SCAN_OK, SCAN_BAD_INDEX, SCAN_CORRUPT };

/*
 * Walks batch headers from (pos, expect) to the end of the file. With
 * `track`, records every batch in the in-memory indexes (a rebuild); without,
 * checks that no index entry is missing (the tail after the last entry) and
 * collects the tail's largest timestamp.
 */
static int header_scan(stream_log *log, stream__segment *s, int64_t file_size, int64_t pos,
                       int64_t expect, bool track, enum scan_result *res)
{
    uint8_t mem[HEADER_CHUNK];
    window w;
    window_init(&w, s->fd, file_size, mem, sizeof mem, NULL, sizeof mem);
    int64_t first = pos;
    *res = SCAN_OK;
    while (pos < file_size) {
        stream_batch_info info;
        const uint8_t *h;
        if (file_size - pos < STREAM_BATCH_HEADER_SIZE) {
            *res = SCAN_CORRUPT;
            break;
        }
        int rc = window_get(&w, pos, STREAM_BATCH_HEADER_SIZE, &h);
        if (rc == STREAM_ESHORT) {
            *res = SCAN_CORRUPT;
            break;
        }
        if (rc != 0)
            return rc;
        if (stream_batch_header_decode(h, STREAM_BATCH_HEADER_SIZE, &info) != 0 ||
            (int64_t)info.size > file_size - pos ||
            info.base_offset + info.last_offset_delta - s->base_offset > INT32_MAX ||
            !stream__offsets_fit(info.base_offset, info.last_offset_delta)) {
            *res = SCAN_CORRUPT;
            break;
        }
        if (stream__seg_misplaced(s, info.base_offset, expect) ||
            (!track && pos == first && info.base_offset != expect)) {
            /* The tail scan starts at the last index entry: a mismatch there
             * is the index's fault; anywhere else the log's. Past it offsets
             * run on, or only increase where the log has holes. */
            *res = (!track && pos == first) ? SCAN_BAD_INDEX : SCAN_CORRUPT;
            break;
        }
        if (track) {
            stream__seg_track(s, pos, &info, log->cfg.index_interval_bytes);
        } else {
            if (pos != first && pos - s->last_index_pos >= log->cfg.index_interval_bytes) {
                *res = SCAN_BAD_INDEX; /* an entry the appender would have written */
                break;
            }
            uint32_t rel = (uint32_t)(info.base_offset - s->base_offset);
            if (s->max_timestamp == STREAM__NO_TIMESTAMP || info.max_timestamp > s->max_timestamp) {
                s->max_timestamp = info.max_timestamp;
                s->max_ts_rel = rel;
            }
            s->size = pos + (int64_t)info.size;
            s->next_offset = info.base_offset + info.last_offset_delta + 1;
        }
        expect = info.base_offset + info.last_offset_delta + 1;
        pos += (int64_t)info.size;
    }
    return 0;
}

static int file_size_of(int fd, int64_t *size)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return stream_err_from_errno(errno);
    *size = (int64_t)st.st_size;
    return 0;
}

int stream__seg_open_trusted(stream_log *log, stream__segment *s, enum stream__seg_state *state,
                             int *rebuilt)
{
    int64_t file_size = 0;
    int rc = file_size_of(s->fd, &file_size);
    if (rc != 0)
        return rc;
    *state = STREAM__SEG_OK;
    reset_indexes(s);
    int err_i = 0, err_t = 0;
    bool index_ok = load_index(log, s, file_size, &err_i);
    bool times_ok = load_times(log, s, file_size, &err_t);
    if (err_i != 0 || err_t != 0)
        return err_i != 0 ? err_i : err_t;

    if (index_ok) {
        /* Trust the prefix the index covers; walk the rest. */
        enum scan_result res;
        int64_t expect = s->base_offset + (s->index_n ? s->index[s->index_n - 1].rel : 0);
        if (times_ok && s->times_n > 0) {
            s->max_timestamp = s->times[s->times_n - 1].ts;
            s->max_ts_rel = s->times[s->times_n - 1].rel;
        }
        rc = header_scan(log, s, file_size, s->last_index_pos, expect, false, &res);
        if (rc != 0)
            return rc;
        if (res == SCAN_CORRUPT) {
            *state = STREAM__SEG_CORRUPT;
            return 0;
        }
        if (res == SCAN_BAD_INDEX)
            index_ok = false;
        else if (times_ok && s->times_n > 0 &&
                 (int64_t)s->times[s->times_n - 1].rel >= s->next_offset - s->base_offset)
            times_ok = false; /* points past the last batch */
    }
    if (!index_ok || !times_ok) {
        enum scan_result res;
        reset_indexes(s);
        rc = header_scan(log, s, file_size, 0, s->base_offset, true, &res);
        if (rc != 0)
            return rc;
        if (res != SCAN_OK) {
            *state = STREAM__SEG_CORRUPT;
            return 0;
        }
        rc = stream__seg_rewrite_indexes(log, s);
        if (rc != 0)
            return rc;
        *rebuilt += (!index_ok) + (!times_ok);
        return 0;
    }
    /* Where the next time entry may go: the batch of the last one. */
    if (s->times_n > 0) {
        int64_t off;
        s->last_time_pos = stream__seg_index_floor(s, s->times[s->times_n - 1].rel, &off);
    }
    return 0;
}

int stream__seg_recover(stream_log *log, stream__segment *s, int64_t *scanned, int64_t *dropped,
                        int64_t *bad_offset)
{
    int64_t file_size = 0;
    int rc = file_size_of(s->fd, &file_size);
    if (rc != 0)
        return rc;
    reset_indexes(s);
    stream_buf_reset(&log->scratch);
    if (stream_buf_reserve(&log->scratch, RECOVERY_CHUNK) != 0)
        return STREAM_ENOMEM;
    window w;
    window_init(&w, s->fd, file_size, log->scratch.data, log->scratch.cap, &log->scratch,
                RECOVERY_CHUNK);
    int64_t pos = 0, expect = s->base_offset;
    while (pos < file_size) {
        stream_batch_info info;
        const uint8_t *p;
        if (file_size - pos < STREAM_BATCH_HEADER_SIZE)
            break;
        rc = window_get(&w, pos, STREAM_BATCH_HEADER_SIZE, &p);
        if (rc == STREAM_ESHORT)
            break;
        if (rc != 0)
            return rc;
        if (stream_batch_header_decode(p, STREAM_BATCH_HEADER_SIZE, &info) != 0 ||
            (int64_t)info.size > file_size - pos)
            break;
        rc = window_get(&w, pos, info.size, &p);
        if (rc == STREAM_ESHORT)
            break;
        if (rc != 0)
            return rc;
        if (stream_batch_check(p, info.size, &info, NULL, 0) != 0)
            break;
        if (stream__seg_misplaced(s, info.base_offset, expect) ||
            info.base_offset + info.last_offset_delta - s->base_offset > INT32_MAX ||
            !stream__offsets_fit(info.base_offset, info.last_offset_delta))
            break;
        stream__seg_track(s, pos, &info, log->cfg.index_interval_bytes);
        pos += (int64_t)info.size;
        expect = s->next_offset;
    }
    *scanned = pos;
    *dropped = file_size - pos;
    *bad_offset = -1;
    if (pos < file_size) {
        *bad_offset = expect;
        if (ftruncate(s->fd, (off_t)pos) != 0)
            return stream_err_from_errno(errno);
    }
    return stream__seg_rewrite_indexes(log, s);
}

int stream__seg_recompute_tail(stream_log *log, stream__segment *s)
{
    s->last_index_pos = s->index_n ? s->index[s->index_n - 1].pos : 0;
    s->max_timestamp = STREAM__NO_TIMESTAMP;
    s->max_ts_rel = 0;
    s->last_time_pos = 0;
    int64_t pos = 0, expect = s->base_offset;
    if (s->times_n > 0) {
        s->max_timestamp = s->times[s->times_n - 1].ts;
        s->max_ts_rel = s->times[s->times_n - 1].rel;
        pos = stream__seg_index_floor(s, s->max_ts_rel, &expect);
        s->last_time_pos = pos;
    }
    uint8_t mem[HEADER_CHUNK];
    window w;
    window_init(&w, s->fd, s->size, mem, sizeof mem, NULL, sizeof mem);
    while (pos < s->size) {
        stream_batch_info info;
        const uint8_t *h;
        if (s->size - pos < STREAM_BATCH_HEADER_SIZE)
            return STREAM_ECORRUPT;
        int rc = window_get(&w, pos, STREAM_BATCH_HEADER_SIZE, &h);
        if (rc != 0)
            return rc == STREAM_ESHORT ? STREAM_ECORRUPT : rc;
        if (stream_batch_header_decode(h, STREAM_BATCH_HEADER_SIZE, &info) != 0 ||
            stream__seg_misplaced(s, info.base_offset, expect))
            return STREAM_ECORRUPT;
        if (s->max_timestamp == STREAM__NO_TIMESTAMP || info.max_timestamp > s->max_timestamp) {
            s->max_timestamp = info.max_timestamp;
            s->max_ts_rel = (uint32_t)(info.base_offset - s->base_offset);
        }
        expect = info.base_offset + info.last_offset_delta + 1;
        pos += (int64_t)info.size;
    }
    (void)log;
    return 0;
}
