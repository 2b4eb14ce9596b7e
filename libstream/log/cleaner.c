/*
 * cleaner.c - log compaction (see stream/cleaner.h for the rules and the
 * crash-safe swap).
 *
 * The key map is one array of 24-byte slots (a 128-bit key hash and an
 * offset), open addressing with linear probing, filled to at most 90% so that
 * probes stay short; it is allocated per pass, starts small and doubles up
 * to the dedupe buffer's size (or, when fewer, what the dirty records need).
 * Probes are cache misses: a batch's records are decoded once, their key
 * hashes computed and their slots prefetched, so that the misses overlap.
 * Two different keys share a slot only if both 64-bit halves of their
 * hashes collide, which at a billion keys is about 1 in 10^19.
 *
 * A pass reads its pinned segments through a 1 MiB window (one pread serves
 * the batches in it, which are read in place; the producer scan reads
 * headers alone) and writes the cleaned copy with write. A batch whose
 * records all stay is copied as it is; the kept records of one that loses
 * some are copied as they were encoded (only a new delete horizon, which
 * moves the base timestamp, re-encodes them). The I/O limit is kept by
 * sleeping in the run step, which is never the owner thread in the broker.
 */
#include <dirent.h>
#include <stdatomic.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/ioprio.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log_internal.h"
#include "stream/cleaner.h"
#include "stream/crc32c.h"
#include "stream/error.h"
#include "base/internal.h"

#define MAP_LOAD_PERCENT  90
#define CLEAN_OFFSET_FILE STREAM__CLEAN_OFFSET_FILE
#define EXT_CLEANED       ".log.cleaned"
#define EXT_SWAP          ".log.swap"

void stream_cleaner_opts_init(stream_cleaner_opts *opts)
{
    opts->dedupe_buffer_bytes = (int64_t)128 << 20;
    opts->io_max_bytes_per_second = -1;
}

int stream_cleaner_thread_background(void)
{
    pid_t tid = gettid();
    errno = 0;
    int nice_now = getpriority(PRIO_PROCESS, (id_t)tid);
    if (nice_now == -1 && errno != 0)
        return stream_err_from_errno(errno);
    int want = nice_now + STREAM_CLEANER_NICE_INCREMENT;
    if (setpriority(PRIO_PROCESS, (id_t)tid, want > 19 ? 19 : want) != 0)
        return stream_err_from_errno(errno);
    /* glibc has no wrapper for ioprio_set; a hint, so its failure is ignored */
    (void)syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, (int)tid,
                  IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 7));
    return 0;
}

/* Doubles the array at *p of *cap elements of elem bytes (to first when
 * empty). STREAM_ENOMEM leaves it as it was. */
static int grow_array(void **p, size_t *cap, size_t elem, size_t first)
{
    size_t ncap = *cap ? *cap * 2 : first;
    void *q = realloc(*p, ncap * elem);
    if (q == NULL)
        return STREAM_ENOMEM;
    *p = q;
    *cap = ncap;
    return 0;
}

/* ---- keys ------------------------------------------------------------------ */

typedef struct key_hash {
    uint64_t a, b;
} key_hash;

static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return h;
}

/* Two independent 64-bit hashes of the key (different seeds and
 * multipliers), each a multiply-xorshift over 8-byte words. */
static key_hash hash_key(const uint8_t *p, size_t n)
{
    uint64_t a = UINT64_C(0x9e3779b97f4a7c15) ^ n, b = UINT64_C(0x632be59bd9b4e019) + n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        a = (a ^ mix64(w)) * UINT64_C(0x100000001b3);
        b = (b + w) * UINT64_C(0xbf58476d1ce4e5b9);
        b ^= b >> 31;
    }
    uint64_t w = 0;
    memcpy(&w, p + i, n - i);
    a = mix64(a ^ mix64(w ^ (uint64_t)(n - i)));
    b = mix64(b + w + UINT64_C(0x94d049bb133111eb));
    key_hash h = {a, b | 1}; /* b != 0 marks a used slot */
    return h;
}

typedef struct key_slot {
    uint64_t a, b; /* b == 0: empty */
    int64_t offset;
} key_slot;

typedef struct key_map {
    key_slot *slots; /* cap slots, anonymous memory */
    size_t cap;      /* slots now */
    size_t cap_max;  /* slots the dedupe buffer allows */
    size_t count;    /* used slots */
    size_t grow_at;  /* count at which the map doubles (while cap < cap_max) */
    size_t max_keys; /* count allowed at cap_max: the map is full there */
} key_map;

/* Slots a map starts with: 1.5 MiB, so a small log's pass touches little. */
#define MAP_START_SLOTS (1 << 16)

/* Anonymous memory, zero until touched, in huge pages where the kernel
 * allows them. */
static key_slot *slots_alloc(size_t cap)
{
    void *p = mmap(NULL, cap * sizeof(key_slot), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, cap * sizeof(key_slot), MADV_HUGEPAGE); /* a hint */
#endif
    return p;
}

/*
 * A map of at most `bytes`, and no larger than `records` keys need. It
 * starts small and doubles as keys come: every slot touched is memory the
 * kernel zeroes, and every probe a cache miss into it, so a map much larger
 * than the keys costs page clearing, TLB misses and page faults for nothing
 * (profiled: zeroing the 128 MiB map was a quarter of a pass's CPU with
 * 500,000 keys written ten times, when it was sized by the records).
 */
static int map_init(key_map *m, int64_t bytes, int64_t records)
{
    m->cap_max = (size_t)bytes / sizeof(key_slot);
    if (records >= 0 && (uint64_t)records < (uint64_t)m->cap_max / 2)
        m->cap_max = (size_t)records * 100 / MAP_LOAD_PERCENT + 16;
    if (m->cap_max < 16)
        m->cap_max = 16;
    m->cap = m->cap_max < MAP_START_SLOTS ? m->cap_max : MAP_START_SLOTS;
    m->count = 0;
    m->grow_at = m->cap * MAP_LOAD_PERCENT / 100;
    m->max_keys = m->cap_max * MAP_LOAD_PERCENT / 100;
    m->slots = slots_alloc(m->cap);
    return m->slots == NULL ? STREAM_ENOMEM : 0;
}

static void map_release(key_map *m)
{
    if (m->slots != NULL)
        munmap(m->slots, m->cap * sizeof(key_slot));
    m->slots = NULL;
}

/* The home slot of a hash: a multiply and a shift instead of a division. */
static size_t map_home(const key_map *m, key_hash h)
{
    return (size_t)(((unsigned __int128)h.a * m->cap) >> 64);
}

static key_slot *map_slot(const key_map *m, key_hash h)
{
    size_t i = map_home(m, h);
    for (;;) {
        key_slot *s = &m->slots[i];
        if (s->b == 0 || (s->a == h.a && s->b == h.b))
            return s;
        i = i + 1 == m->cap ? 0 : i + 1;
    }
}

/* Doubles the map (up to cap_max), moving every key. */
static int map_grow(key_map *m)
{
    key_map g = *m;
    g.cap = m->cap * 2 < m->cap_max ? m->cap * 2 : m->cap_max;
    if ((g.slots = slots_alloc(g.cap)) == NULL)
        return STREAM_ENOMEM;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].b != 0)
            *map_slot(&g, (key_hash){m->slots[i].a, m->slots[i].b}) = m->slots[i];
    g.grow_at = g.cap * MAP_LOAD_PERCENT / 100;
    map_release(m);
    *m = g;
    return 0;
}

/* Records offset for the key and sets *prev to the offset it replaces (-1:
 * none): 1, or 0 when the key is new and the map full, or STREAM_ENOMEM
 * (growing it). */
static int map_put(key_map *m, key_hash h, int64_t offset, int64_t *prev)
{
    key_slot *s = map_slot(m, h);
    *prev = s->b == 0 ? -1 : s->offset;
    if (s->b == 0) {
        if (m->count >= m->max_keys)
            return 0;
        if (m->count >= m->grow_at && m->cap < m->cap_max) {
            int rc = map_grow(m);
            if (rc != 0)
                return rc;
            s = map_slot(m, h);
        }
        s->a = h.a;
        s->b = h.b;
        m->count++;
    }
    s->offset = offset; /* records come in offset order: the last is the highest */
    return 1;
}

/* The highest offset of the key, -1 when not in the map. */
static int64_t map_get(const key_map *m, key_hash h)
{
    const key_slot *s = map_slot(m, h);
    return s->b == 0 ? -1 : s->offset;
}

/* A batch's bytes, borrowed (from the run's read window). */
typedef struct batch_view {
    const uint8_t *data;
    size_t len;
} batch_view;

/* One record of the batch looked at. */
typedef struct rec_ref {
    stream_record rec; /* borrowed from the batch, or from the scan's decompressed copy */
    key_hash h;        /* its key's hash ({0, 0}: no key) */
    bool stay;         /* filter_batch: the record is kept */
} rec_ref;

/* The records of one batch, decoded once for both the map and the rewrite. */
typedef struct batch_scan {
    rec_ref *r; /* the records, in order */
    size_t n, cap;
    stream_record_iter it; /* holds a compressed batch's records while r borrows them */
    bool open;             /* it is started */
} batch_scan;

static void scan_stop(batch_scan *bs)
{
    if (bs->open)
        stream_record_iter_stop(&bs->it);
    bs->open = false;
    bs->n = 0;
}

/*
 * Decodes the records of the batch at in (decompressing it once), hashes
 * the keys of those below hash_below and prefetches the keys' map slots, so that the probes that
 * follow overlap their cache misses instead of waiting for each in turn
 * (the probes were most of a pass's CPU). The records stay valid until the
 * next scan or scan_stop. Errors: STREAM_ECORRUPT (a batch that does not
 * decode), STREAM_ENOMEM.
 */
static int scan_batch(const key_map *m, const batch_view *in, int64_t hash_below, batch_scan *bs)
{
    scan_stop(bs);
    bs->open = true;
    int rc = stream_record_iter_start(&bs->it, in->data, in->len);
    stream_record rec;
    while (rc == 0 && (rc = stream_record_iter_next(&bs->it, &rec)) == 1) {
        rc = 0;
        if (bs->n == bs->cap && grow_array((void **)&bs->r, &bs->cap, sizeof *bs->r, 256) != 0)
            return STREAM_ENOMEM;
        rec_ref *r = &bs->r[bs->n++];
        r->rec = rec;
        r->h = (key_hash){0, 0};
        if (rec.key != NULL && rec.offset < hash_below) {
            r->h = hash_key(rec.key, (size_t)rec.key_len);
            __builtin_prefetch(&m->slots[map_home(m, r->h)]);
        }
    }
    return rc == 0 ? 0 : rc == STREAM_ENOMEM ? rc : STREAM_ECORRUPT;
}

/* ---- producers: the last batch of each id ---------------------------------- */

typedef struct pid_slot {
    int64_t pid; /* -1: empty */
    int64_t last_base;
} pid_slot;

typedef struct pid_map {
    pid_slot *slots;
    size_t cap, count;
} pid_map;

static pid_slot *pid_find(const pid_map *m, int64_t pid)
{
    size_t i = (size_t)(mix64((uint64_t)pid) & (m->cap - 1));
    while (m->slots[i].pid != -1 && m->slots[i].pid != pid)
        i = (i + 1) & (m->cap - 1);
    return &m->slots[i];
}

static int pid_put(pid_map *m, int64_t pid, int64_t base)
{
    if ((m->count + 1) * 2 > m->cap) {
        pid_map g = {NULL, m->cap ? m->cap * 2 : 64, 0};
        if ((g.slots = malloc(g.cap * sizeof *g.slots)) == NULL)
            return STREAM_ENOMEM;
        for (size_t i = 0; i < g.cap; i++)
            g.slots[i].pid = -1;
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].pid != -1) {
                *pid_find(&g, m->slots[i].pid) = m->slots[i];
                g.count++;
            }
        free(m->slots);
        *m = g;
    }
    pid_slot *s = pid_find(m, pid);
    if (s->pid == -1) {
        s->pid = pid;
        m->count++;
    }
    s->last_base = base; /* batches come in offset order */
    return 0;
}

static bool pid_is_last(const pid_map *m, int64_t pid, int64_t base)
{
    if (pid < 0 || m->cap == 0)
        return false;
    const pid_slot *s = pid_find(m, pid);
    return s->pid == pid && s->last_base == base;
}

/* ---- the job ------------------------------------------------------------------ */

typedef struct job_seg {
    stream__segment *old;     /* pinned: the log's segment as begin saw it */
    int64_t size;             /* its size then */
    int64_t records;          /* records in it (header counts), for the map's room */
    stream__segment *cleaned; /* the first of a group: the group's rewritten copy (fd on
                                 .cleaned), or NULL: unchanged; others NULL */
    int group_last;           /* the first of a group: the index of its last segment (the
                                 group is rewritten into one file named by the first's
                                 base); -1 for the others */
} job_seg;

/* Bytes of a segment read at once by the run step. */
#define READ_WINDOW_BYTES (1 << 20)

/* What the run step last read of a segment. */
typedef struct read_window {
    const job_seg *seg; /* NULL: nothing */
    int64_t pos;        /* where buf starts in it */
    stream_buf buf;
} read_window;

struct stream_log_clean_job {
    char *dir;                /* the partition directory (copied) */
    int dirfd;                /* open on dir for the pass (the log holds none) */
    stream_log_config cfg;    /* the log's settings at begin */
    stream_cleaner_opts opts; /* the cleaner's */
    int64_t now_ms;           /* wall clock of the pass */
    int64_t dirty_from;       /* the clean offset at begin */
    int64_t map_end;          /* run: the map covers [dirty_from, map_end) */
    job_seg *segs;            /* the segments of the pass, ascending */
    int nsegs;
    bool ran;              /* run finished without error */
    atomic_bool cancel;    /* stream_log_clean_cancel asked run to stop */
    int64_t min_horizon;   /* run: earliest delete horizon of a tombstone kept */
    stream_clean_stats st; /* what run did */
    /* I/O budget */
    int64_t io_bytes;
    int64_t io_start_ns;
    read_window win; /* run: the segment bytes last read */
    /* run: a bit per offset of [dirty_from, dirty_from + dead_bits), set
     * when a later record of the same key is in the map, so the rewrite
     * decides a dirty record without hashing its key again */
    uint64_t *dead;
    int64_t dead_bits;
};

static void job_free(stream_log_clean_job *job, bool unlink_cleaned)
{
    if (job == NULL)
        return;
    for (int i = 0; i < job->nsegs; i++) {
        job_seg *js = &job->segs[i];
        if (js->cleaned != NULL) {
            char path[4096];
            if (unlink_cleaned && stream__seg_path(path, sizeof path, job->dir,
                                                   js->old->base_offset, EXT_CLEANED) == 0)
                unlink(path);
            stream__seg_unref(js->cleaned);
        }
        stream__seg_release(js->old); /* the descriptor pin taken at begin */
        stream__seg_unref(js->old);
    }
    free(job->segs);
    free(job->dead);
    stream_buf_release(&job->win.buf);
    if (job->dirfd >= 0)
        close(job->dirfd);
    free(job->dir);
    free(job);
}

void stream_log_clean_cancel(stream_log_clean_job *job)
{
    atomic_store(&job->cancel, true);
}

void stream_log_clean_abort(stream_log_clean_job *job)
{
    job_free(job, true);
}

/* ---- status and begin (owner thread) --------------------------------------- */

static int64_t read_clean_offset(stream_log *log)
{
    if (log->clean_offset_loaded)
        return log->clean_offset;
    int64_t v = 0;
    char path[4096];
    int fd = snprintf(path, sizeof path, "%s/" CLEAN_OFFSET_FILE, log->dir) < (int)sizeof path
                 ? open(path, O_RDONLY | O_CLOEXEC)
                 : -1;
    if (fd >= 0) {
        char text[32];
        ssize_t n = read(fd, text, sizeof text - 1);
        close(fd);
        if (n > 0) {
            text[n] = '\0';
            char *end;
            long long x = strtoll(text, &end, 10);
            if (end != text && x >= 0)
                v = x;
        }
    }
    log->clean_offset = v;
    log->clean_offset_loaded = true;
    log->last_clean_ms = -1;
    log->next_horizon_ms = 0; /* unknown since open: look once */
    return v;
}

void stream__clean_end_moved(stream_log *log)
{
    if (read_clean_offset(log) <= log->end_offset)
        return;
    /* Records appended from the new end on must count as dirty, also after
     * a crash: the file may not claim them. */
    log->clean_offset = log->end_offset;
    char path[4096];
    if (stream__write_offset_file(log, CLEAN_OFFSET_FILE, log->end_offset) != 0 &&
        snprintf(path, sizeof path, "%s/" CLEAN_OFFSET_FILE, log->dir) < (int)sizeof path)
        unlink(path); /* none: the whole log is dirty */
}

/* How many leading closed segments a pass may take now: durable, and with
 * every record at least min_compaction_lag_ms old. */
static int cleanable_segments(stream_log *log, int64_t now_ms)
{
    pthread_mutex_lock(&log->mu);
    int64_t durable = log->durable;
    pthread_mutex_unlock(&log->mu);
    int n = 0;
    for (; n < log->nsegs - 1; n++) {
        const stream__segment *s = log->segs[n];
        if (s->next_offset > durable)
            break;
        if (log->cfg.min_compaction_lag_ms > 0 && s->max_timestamp != STREAM__NO_TIMESTAMP &&
            now_ms - s->max_timestamp < log->cfg.min_compaction_lag_ms)
            break;
    }
    return n;
}

void stream_log_clean_status_get(stream_log *log, int64_t now_ms, stream_log_clean_status *out)
{
    memset(out, 0, sizeof *out);
    int64_t from = read_clean_offset(log);
    out->clean_offset = from;
    out->last_clean_ms = log->last_clean_ms;
    int n = cleanable_segments(log, now_ms);
    bool old_dirty = false;
    for (int k = 0; k < n; k++) {
        const stream__segment *s = log->segs[k];
        out->cleanable_bytes += s->size;
        if (s->next_offset > from) {
            out->dirty_bytes += s->size;
            if (s->max_timestamp != STREAM__NO_TIMESTAMP &&
                now_ms - s->max_timestamp >= log->cfg.max_compaction_lag_ms)
                old_dirty = true;
        }
    }
    if (out->cleanable_bytes > 0)
        out->dirty_ratio_ppm = (int32_t)(out->dirty_bytes * 1000000 / out->cleanable_bytes);
    out->due = log->cfg.cleanup_compact &&
               ((out->dirty_bytes > 0 &&
                 (out->dirty_ratio_ppm >= log->cfg.min_cleanable_dirty_ratio_ppm || old_dirty)) ||
                (n > 0 && now_ms >= log->next_horizon_ms));
}

int stream_log_clean_begin(stream_log *log, int64_t now_ms, const stream_cleaner_opts *opts,
                           stream_log_clean_job **out)
{
    *out = NULL;
    if (!log->cfg.cleanup_compact || log->cleaning)
        return 0;
    int64_t from = read_clean_offset(log);
    int n = cleanable_segments(log, now_ms);
    /* Nothing dirty: still a pass when a tombstone's horizon has passed. */
    if (n == 0 || (log->segs[n - 1]->next_offset <= from && now_ms < log->next_horizon_ms))
        return 0;
    stream_log_clean_job *job = calloc(1, sizeof *job);
    if (job == NULL)
        return STREAM_ENOMEM;
    job->dirfd = open(log->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* for the pass only */
    job->dir = strdup(log->dir);
    job->segs = calloc((size_t)n, sizeof *job->segs);
    if (job->dirfd < 0 || job->dir == NULL || job->segs == NULL) {
        job_free(job, false);
        return STREAM_ENOMEM;
    }
    job->cfg = log->cfg;
    job->opts = *opts;
    job->now_ms = now_ms;
    job->dirty_from = from;
    job->map_end = from;
    job->min_horizon = INT64_MAX;
    for (int k = 0; k < n; k++) {
        /* The run reads the file on another thread: its descriptor is
         * pinned so that the open-file budget cannot close it meanwhile. */
        int rc = stream__seg_acquire(log->segs[k]);
        if (rc != 0) {
            job_free(job, false);
            return rc;
        }
        stream__seg_ref(log->segs[k]);
        job->segs[k].old = log->segs[k];
        job->segs[k].size = log->segs[k]->size;
        job->nsegs++;
    }
    log->cleaning = true;
    *out = job;
    return 0;
}

/* ---- run (any thread) ---------------------------------------------------------- */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Counts bytes against the I/O limit, sleeping when ahead of it. */
static void throttle(stream_log_clean_job *job, size_t bytes)
{
    int64_t limit = job->opts.io_max_bytes_per_second;
    if (limit <= 0)
        return;
    job->io_bytes += (int64_t)bytes;
    int64_t due_ns = (int64_t)((double)job->io_bytes / (double)limit * 1e9);
    int64_t ahead = due_ns - (mono_ns() - job->io_start_ns);
    if (ahead > 1000000) { /* sleep in steps of at least a millisecond */
        struct timespec ts = {ahead / 1000000000, ahead % 1000000000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
}

static int pread_full(int fd, void *buf, size_t n, int64_t pos)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (uint8_t *)buf + done, n - done, (off_t)(pos + (int64_t)done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return stream_err_from_errno(errno);
        if (r == 0)
            return STREAM_ECORRUPT; /* the segment is shorter than it was */
        done += (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, (const uint8_t *)buf + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return stream_err_from_errno(w < 0 ? errno : ENOSPC);
        done += (size_t)w;
    }
    return 0;
}

/*
 * Points *p at n bytes of segment js from pos (n <= what the segment has
 * there), valid until the next call: one pread of READ_WINDOW_BYTES (or
 * the batch, when larger) serves the batches of a window, where two preads
 * a batch went before.
 */
static int window_at(stream_log_clean_job *job, const job_seg *js, int64_t pos, size_t n,
                     const uint8_t **p)
{
    read_window *w = &job->win;
    if (w->seg != js || pos < w->pos || pos + (int64_t)n > w->pos + (int64_t)w->buf.len) {
        size_t want = n > READ_WINDOW_BYTES ? n : READ_WINDOW_BYTES;
        if ((int64_t)want > js->size - pos)
            want = (size_t)(js->size - pos);
        w->seg = NULL;
        stream_buf_reset(&w->buf);
        if (stream_buf_reserve(&w->buf, want) != 0)
            return STREAM_ENOMEM;
        int rc = pread_full(js->old->fd, w->buf.data, want, pos);
        if (rc != 0)
            return rc;
        w->buf.len = want;
        w->pos = pos;
        w->seg = js;
    }
    *p = w->buf.data + (pos - w->pos);
    return 0;
}

/* Points *in at the batch at pos of a pinned segment (borrowed from the
 * read window: valid until the next read). */
static int read_batch(stream_log_clean_job *job, const job_seg *js, int64_t pos, batch_view *in,
                      stream_batch_info *info)
{
    if (atomic_load_explicit(&job->cancel, memory_order_relaxed))
        return STREAM_ECLOSED;
    if (js->size - pos < STREAM_BATCH_HEADER_SIZE)
        return STREAM_ECORRUPT;
    const uint8_t *p;
    int rc = window_at(job, js, pos, STREAM_BATCH_HEADER_SIZE, &p);
    if (rc != 0)
        return rc;
    if ((rc = stream_batch_header_decode(p, STREAM_BATCH_HEADER_SIZE, info)) != 0)
        return STREAM_ECORRUPT;
    if ((int64_t)info->size > js->size - pos)
        return STREAM_ECORRUPT;
    if ((rc = window_at(job, js, pos, info->size, &p)) != 0)
        return rc;
    in->data = p;
    in->len = info->size;
    job->st.bytes_read += (int64_t)info->size;
    throttle(job, info->size);
    return 0;
}

/* Pass over headers: the last batch of every producer id, and record counts. */
static int scan_producers(stream_log_clean_job *job, pid_map *pids)
{
    for (int k = 0; k < job->nsegs; k++) {
        job_seg *js = &job->segs[k];
        uint8_t h[STREAM_BATCH_HEADER_SIZE];
        for (int64_t pos = 0; pos < js->size;) {
            stream_batch_info info;
            if (js->size - pos < STREAM_BATCH_HEADER_SIZE)
                return STREAM_ECORRUPT;
            int rc = pread_full(js->old->fd, h, sizeof h, pos);
            if (rc != 0)
                return rc;
            if (stream_batch_header_decode(h, sizeof h, &info) != 0 ||
                (int64_t)info.size > js->size - pos)
                return STREAM_ECORRUPT;
            if (info.producer_id >= 0 && (rc = pid_put(pids, info.producer_id, info.base_offset)))
                return rc;
            js->records += info.record_count;
            pos += (int64_t)info.size;
        }
    }
    return 0;
}

/* Sizes and allocates the dead bits: one per offset of the dirty segments,
 * at most dedupe_buffer_bytes of them (an eighth of the map's memory; a map
 * that fills first stops the pass earlier anyway), at least 65,536. */
static int dead_init(stream_log_clean_job *job)
{
    int64_t want = job->segs[job->nsegs - 1].old->next_offset - job->dirty_from;
    int64_t cap = job->opts.dedupe_buffer_bytes > 65536 ? job->opts.dedupe_buffer_bytes : 65536;
    job->dead_bits = want < 0 ? 0 : want < cap ? want : cap;
    job->dead = calloc((size_t)(job->dead_bits / 64 + 1), sizeof *job->dead);
    return job->dead == NULL ? STREAM_ENOMEM : 0;
}

/* Fills the map from the dirty records, segment by segment, stopping before
 * a segment whose records might not fit (or inside the first one when even
 * that one does not). Sets job->map_end. */
static int build_map(stream_log_clean_job *job, key_map *map, batch_scan *bs)
{
    int k = 0;
    while (k < job->nsegs && job->segs[k].old->next_offset <= job->dirty_from)
        k++;
    job->map_end = job->dirty_from;
    int64_t bits_end = job->dirty_from + job->dead_bits; /* the dead bits cover up to here */
    for (; k < job->nsegs; k++) {
        job_seg *js = &job->segs[k];
        if (map->count > 0 && (map->count + (size_t)js->records > map->max_keys ||
                               js->old->next_offset > bits_end))
            return 0; /* the next pass starts at this segment */
        for (int64_t pos = 0; pos < js->size;) {
            stream_batch_info info;
            batch_view in;
            int rc = read_batch(job, js, pos, &in, &info);
            if (rc != 0)
                return rc;
            pos += (int64_t)info.size;
            if (info.base_offset + info.last_offset_delta < job->dirty_from ||
                (info.attributes & STREAM_BATCH_ATTR_CONTROL))
                continue;
            if ((rc = scan_batch(map, &in, INT64_MAX, bs)) != 0)
                return rc;
            for (size_t i = 0; i < bs->n; i++) {
                const stream_record *rec = &bs->r[i].rec;
                if (rec->offset < job->dirty_from || rec->key == NULL)
                    continue;
                int64_t prev = -1;
                if (rec->offset >= bits_end || (rc = map_put(map, bs->r[i].h, rec->offset, &prev)) == 0) {
                    /* Full inside a segment: the map covers up to here. */
                    job->map_end = rec->offset;
                    return 0;
                }
                if (rc < 0)
                    return rc;
                if (prev >= 0) {
                    uint64_t bit = (uint64_t)(prev - job->dirty_from);
                    job->dead[bit / 64] |= UINT64_C(1) << (bit % 64);
                }
            }
        }
        job->map_end = js->old->next_offset;
    }
    return 0;
}

/* Appends one record (as the iterator returned it) to out, with its offset
 * and timestamp as deltas from the batch's base offset and base_ts. */
static int put_record(stream_buf *out, const stream_record *r, int64_t base_offset, int64_t base_ts)
{
    int64_t tsd = (int64_t)((uint64_t)r->timestamp - (uint64_t)base_ts);
    int32_t od = (int32_t)(r->offset - base_offset);
    size_t body = 1 + stream_varlong_size(tsd) + stream_varint_size(od) +
                  stream_varint_size(r->key_len) + (r->key_len > 0 ? (size_t)r->key_len : 0) +
                  stream_varint_size(r->value_len) + (r->value_len > 0 ? (size_t)r->value_len : 0) +
                  stream_varint_size(r->header_count) + r->headers_len;
    if (body > INT32_MAX || stream_buf_reserve(out, body + 5) != 0)
        return STREAM_ENOMEM;
    stream_buf_put_varint(out, (int32_t)body); /* length */
    stream_buf_put_u8(out, 0);                 /* attributes */
    stream_buf_put_varlong(out, tsd);          /* timestampDelta */
    stream_buf_put_varint(out, od);            /* offsetDelta */
    stream_buf_put_varint(out, r->key_len);    /* keyLength, key */
    if (r->key_len > 0)
        stream_buf_put(out, r->key, (size_t)r->key_len);
    stream_buf_put_varint(out, r->value_len); /* valueLength, value */
    if (r->value_len > 0)
        stream_buf_put(out, r->value, (size_t)r->value_len);
    stream_buf_put_varint(out, r->header_count); /* headers, as they were */
    if (r->headers_len > 0)
        stream_buf_put(out, r->headers, r->headers_len);
    return stream_buf_ok(out);
}

/* Scratch of the rewrite. */
typedef struct rewrite_bufs {
    batch_view in;      /* the batch read (borrowed from the read window) */
    stream_buf records; /* kept records, uncompressed */
    stream_buf out;     /* the batch written */
    batch_scan scan;    /* the batch's records */
} rewrite_bufs;

/* Whether record r of a batch stays, given the map; counts and horizons
 * into job and *set_horizon. */
static bool record_stays(stream_log_clean_job *job, const key_map *map,
                         const stream_batch_info *info, const rec_ref *r, bool *set_horizon)
{
    const stream_record *rec = &r->rec;
    if (rec->key == NULL)
        return false; /* keyless: dropped, as Kafka does */
    if (rec->offset >= job->map_end)
        return true; /* past the map: the next pass decides */
    if (rec->offset >= job->dirty_from) {
        uint64_t bit = (uint64_t)(rec->offset - job->dirty_from);
        if (job->dead[bit / 64] & (UINT64_C(1) << (bit % 64)))
            return false; /* a later record of its key */
    } else if (map_get(map, r->h) > rec->offset) {
        return false; /* a later record of its key (the clean part: probed) */
    }
    if (rec->value != NULL)
        return true;
    bool has_horizon = info->attributes & STREAM_BATCH_ATTR_DELETE_HORIZON;
    if (has_horizon && job->now_ms >= info->base_timestamp) {
        job->st.tombstones_removed++;
        return false;
    }
    if (!has_horizon)
        *set_horizon = true;
    else if (info->base_timestamp < job->min_horizon)
        job->min_horizon = info->base_timestamp;
    return true;
}

/*
 * Filters one batch into b->out: sets *keep (false: the batch goes) and
 * leaves out empty when the batch is to be copied as it is. Kept records
 * are copied as they were encoded, unless a new delete horizon moves the
 * base timestamp and so every timestamp delta.
 */
static int filter_batch(stream_log_clean_job *job, const key_map *map, const pid_map *pids,
                        const stream_batch_info *info, bool last_in_segment, rewrite_bufs *b,
                        bool *keep)
{
    *keep = true;
    stream_buf_reset(&b->out);
    if (info->attributes & STREAM_BATCH_ATTR_CONTROL)
        return 0;
    int rc = scan_batch(map, &b->in, job->dirty_from, &b->scan);
    if (rc != 0)
        return rc;
    bool set_horizon = false;
    int32_t kept = 0, seen = (int32_t)b->scan.n;
    for (size_t i = 0; i < b->scan.n; i++) {
        rec_ref *r = &b->scan.r[i];
        r->stay = record_stays(job, map, info, r, &set_horizon);
        kept += r->stay;
    }
    job->st.records_removed += seen - kept;
    if (kept == seen && !set_horizon)
        return 0; /* nothing changes: copy the batch */
    int64_t base_ts = info->base_timestamp;
    if (set_horizon) {
        base_ts = job->now_ms + job->cfg.delete_retention_ms;
        if (base_ts < job->min_horizon)
            job->min_horizon = base_ts;
    }
    stream_buf_reset(&b->records);
    for (size_t i = 0; i < b->scan.n && rc == 0; i++) {
        const stream_record *rec = &b->scan.r[i].rec;
        if (!b->scan.r[i].stay)
            continue;
        if (set_horizon) {
            rc = put_record(&b->records, rec, info->base_offset, base_ts);
        } else {
            stream_buf_put(&b->records, rec->raw, rec->raw_len);
            rc = stream_buf_ok(&b->records);
        }
    }
    if (rc != 0)
        return rc;
    if (kept == 0 && !last_in_segment && !pid_is_last(pids, info->producer_id, info->base_offset)) {
        *keep = false;
        return 0;
    }

    /* The new batch: the old header, then the records, compressed with the
     * batch's codec (an empty batch goes uncompressed). */
    int16_t attrs = info->attributes;
    if (set_horizon)
        attrs |= STREAM_BATCH_ATTR_DELETE_HORIZON;
    stream_codec codec = (stream_codec)(attrs & STREAM_BATCH_ATTR_CODEC_MASK);
    if (kept == 0) {
        attrs &= ~STREAM_BATCH_ATTR_CODEC_MASK;
        codec = STREAM_CODEC_NONE;
    }
    if (stream_buf_reserve(&b->out, STREAM_BATCH_HEADER_SIZE + b->records.len) != 0)
        return STREAM_ENOMEM;
    stream_buf_put(&b->out, b->in.data, STREAM_BATCH_HEADER_SIZE); /* b->in outlives the scan */
    if (codec != STREAM_CODEC_NONE) {
        rc = stream_codec_compress(codec, 0, b->records.data, b->records.len, &b->out);
        if (rc != 0)
            return rc;
    } else if (b->records.len > 0) {
        stream_buf_put(&b->out, b->records.data, b->records.len);
    }
    if (stream_buf_ok(&b->out) != 0 || b->out.len - STREAM_BATCH_LOG_OVERHEAD > INT32_MAX)
        return STREAM_ENOMEM;
    uint8_t *p = b->out.data;
    stream_store_be32(p + STREAM_BATCH_OFF_LENGTH,
                      (uint32_t)(b->out.len - STREAM_BATCH_LOG_OVERHEAD)); /* batchLength */
    p[STREAM_BATCH_OFF_ATTRIBUTES] = (uint8_t)((uint16_t)attrs >> 8);      /* attributes */
    p[STREAM_BATCH_OFF_ATTRIBUTES + 1] = (uint8_t)attrs;
    stream_store_be64(p + STREAM_BATCH_OFF_BASE_TIMESTAMP, (uint64_t)base_ts); /* baseTimestamp */
    stream_store_be32(p + STREAM_BATCH_OFF_RECORD_COUNT, (uint32_t)kept);      /* recordCount */
    stream_store_be32(p + STREAM_BATCH_OFF_CRC,
                      stream_crc32c(0, p + STREAM_BATCH_OFF_ATTRIBUTES,
                                    b->out.len - STREAM_BATCH_OFF_ATTRIBUTES));
    return 0;
}

/*
 * Groups consecutive segments whose sizes add up to at most segment.bytes
 * (and whose offsets fit an index's 32-bit relative offsets), as Kafka
 * does, so that the segments a cleaning shrank are merged by a later pass
 * instead of each staying a file of its own. A segment larger than that is
 * a group alone.
 */
static void plan_groups(stream_log_clean_job *job)
{
    int first = 0;
    int64_t bytes = job->segs[0].size;
    job->segs[0].group_last = 0;
    for (int k = 1; k < job->nsegs; k++) {
        job_seg *js = &job->segs[k];
        js->group_last = -1;
        if (bytes + js->size <= job->cfg.segment_bytes &&
            js->old->next_offset - job->segs[first].old->base_offset <= INT32_MAX) {
            bytes += js->size;
            job->segs[first].group_last = k;
        } else {
            first = k;
            bytes = js->size;
            js->group_last = k;
        }
    }
}

/* Rewrites the group that starts at segment `first` into <base>.log.cleaned
 * (base: the first's); leaves its cleaned NULL when the group is one segment
 * in which nothing changes. */
static int rewrite_group(stream_log_clean_job *job, const key_map *map, const pid_map *pids,
                         int first, rewrite_bufs *b, char *errbuf, size_t errbuf_len)
{
    char path[4096];
    int last = job->segs[first].group_last;
    int64_t base = job->segs[first].old->base_offset;
    int rc = stream__seg_path(path, sizeof path, job->dir, base, EXT_CLEANED);
    if (rc != 0)
        return rc;
    stream__segment *ns = stream__seg_alloc(base);
    if (ns == NULL)
        return STREAM_ENOMEM;
    ns->holes = true;
    ns->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (ns->fd < 0) {
        rc = stream_err_from_errno(errno);
        stream__errf(errbuf, errbuf_len, "cannot create %s: %s", path, strerror(errno));
        stream__seg_unref(ns);
        return rc;
    }
    bool changed = last > first; /* a merge always writes */
    int64_t bad_base = base;    /* the segment being read, for a message */
    for (int k = first; rc == 0 && k <= last; k++) {
        job_seg *js = &job->segs[k];
        bad_base = js->old->base_offset;
        for (int64_t pos = 0; rc == 0 && pos < js->size;) {
            stream_batch_info info;
            if ((rc = read_batch(job, js, pos, &b->in, &info)) != 0)
                break;
            pos += (int64_t)info.size;
            bool keep, group_end = k == last && pos >= js->size;
            if ((rc = filter_batch(job, map, pids, &info, group_end, b, &keep)) != 0)
                break;
            if (!keep) {
                changed = true;
                continue;
            }
            batch_view src = b->in;
            if (b->out.len > 0) {
                src = (batch_view){b->out.data, b->out.len};
                changed = true;
            }
            stream_batch_info out_info;
            if (stream_batch_header_decode(src.data, src.len, &out_info) != 0) {
                rc = STREAM_ECORRUPT;
                break;
            }
            int64_t at = ns->size;
            if ((rc = write_full(ns->fd, src.data, src.len)) != 0) {
                stream__errf(errbuf, errbuf_len, "writing %s: %s", path, stream_strerror(rc));
                break;
            }
            job->st.bytes_written += (int64_t)src.len;
            throttle(job, src.len);
            stream__seg_track(ns, at, &out_info, job->cfg.index_interval_bytes);
        }
    }
    if (rc == 0 && changed && fdatasync(ns->fd) != 0) {
        rc = stream_err_from_errno(errno);
        stream__errf(errbuf, errbuf_len, "fdatasync %s: %s", path, strerror(errno));
    }
    if (rc != 0 || !changed) {
        unlink(path);
        stream__seg_unref(ns);
        if (rc == STREAM_ECORRUPT)
            stream__errf(errbuf, errbuf_len, "segment %020" PRId64 " in %s: a batch does not decode",
                         bad_base, job->dir);
        return rc;
    }
    job->segs[first].cleaned = ns;
    return 0;
}

int stream_log_clean_run(stream_log_clean_job *job, char *errbuf, size_t errbuf_len)
{
    key_map map = {0};
    pid_map pids = {0};
    rewrite_bufs b = {0};
    stream_buf_init(&b.records);
    stream_buf_init(&b.out);
    job->io_start_ns = mono_ns();
    int rc = scan_producers(job, &pids);
    int64_t dirty_records = 0; /* an upper bound of the keys the map may get */
    for (int k = 0; k < job->nsegs; k++)
        if (job->segs[k].old->next_offset > job->dirty_from)
            dirty_records += job->segs[k].records;
    if (rc == 0)
        rc = map_init(&map, job->opts.dedupe_buffer_bytes, dirty_records);
    if (rc == 0)
        rc = dead_init(job);
    if (rc == 0)
        rc = build_map(job, &map, &b.scan);
    if (rc == 0)
        plan_groups(job);
    for (int k = 0; rc == 0 && k < job->nsegs; k = job->segs[k].group_last + 1)
        rc = rewrite_group(job, &map, &pids, k, &b, errbuf, errbuf_len);
    if (rc != 0 && errbuf != NULL && errbuf[0] == '\0')
        stream__errf(errbuf, errbuf_len, "cleaning %s: %s", job->dir, stream_strerror(rc));
    map_release(&map);
    free(pids.slots);
    scan_stop(&b.scan);
    free(b.scan.r);
    stream_buf_release(&b.records);
    stream_buf_release(&b.out);
    job->ran = rc == 0;
    return rc;
}

/* ---- finish (owner thread) ------------------------------------------------------ */

/* Still the log's segments k.. as begin saw them? */
static bool job_matches(const stream_log *log, const stream_log_clean_job *job)
{
    if (log->nsegs <= job->nsegs)
        return false; /* the active segment is never in a job */
    for (int k = 0; k < job->nsegs; k++)
        if (log->segs[k] != job->segs[k].old || log->segs[k]->size != job->segs[k].size)
            return false;
    return true;
}

static int rename_at(int dirfd, const char *dir, int64_t base, const char *from_ext,
                     const char *to_ext, char *errbuf, size_t errbuf_len)
{
    char from[64], to[64];
    snprintf(from, sizeof from, "%020" PRId64 "%s", base, from_ext);
    snprintf(to, sizeof to, "%020" PRId64 "%s", base, to_ext);
    if (renameat(dirfd, from, dirfd, to) == 0)
        return 0;
    int rc = stream_err_from_errno(errno);
    stream__errf(errbuf, errbuf_len, "renaming %s/%s to %s: %s", dir, from, to, strerror(errno));
    return rc;
}

static void unlink_log(int dirfd, int64_t base)
{
    char name[64];
    snprintf(name, sizeof name, "%020" PRId64 ".log", base);
    unlinkat(dirfd, name, 0);
}

static void unlink_indexes(int dirfd, int64_t base)
{
    char name[64];
    snprintf(name, sizeof name, "%020" PRId64 ".index", base);
    unlinkat(dirfd, name, 0);
    snprintf(name, sizeof name, "%020" PRId64 ".timeindex", base);
    unlinkat(dirfd, name, 0);
}

static int dir_sync(int dirfd, const char *dir, char *errbuf, size_t errbuf_len)
{
    if (fsync(dirfd) == 0)
        return 0;
    int rc = stream_err_from_errno(errno);
    stream__errf(errbuf, errbuf_len, "fsync %s: %s", dir, strerror(errno));
    return rc;
}

static int swap_in(stream_log *log, stream_log_clean_job *job, char *errbuf, size_t errbuf_len)
{
    int rc = 0;
    /* 1. Every cleaned file becomes a .swap, ascending; one directory sync
     *    makes them the state recovery completes. */
    for (int k = 0; rc == 0 && k < job->nsegs; k++)
        if (job->segs[k].cleaned != NULL)
            rc = rename_at(job->dirfd, job->dir, job->segs[k].old->base_offset, EXT_CLEANED,
                           EXT_SWAP, errbuf, errbuf_len);
    if (rc == 0)
        rc = dir_sync(job->dirfd, job->dir, errbuf, errbuf_len);
    /* 2. Each group in turn, ascending: the old indexes go, then the .log
     *    files of the segments merged into the group's first, then the .swap
     *    goes over the first's .log; new indexes. A kill in between leaves
     *    the .swap, which recovery completes the same way. */
    bool merged = false;
    for (int k = 0; rc == 0 && k < job->nsegs; k = job->segs[k].group_last + 1) {
        job_seg *js = &job->segs[k];
        if (js->cleaned == NULL)
            continue;
        int64_t base = js->old->base_offset;
        int last = js->group_last;
        for (int m = k; m <= last; m++)
            unlink_indexes(job->dirfd, job->segs[m].old->base_offset);
        for (int m = k + 1; m <= last; m++)
            unlink_log(job->dirfd, job->segs[m].old->base_offset);
        if ((rc = rename_at(job->dirfd, job->dir, base, EXT_SWAP, ".log", errbuf, errbuf_len)))
            break;
        stream__segment *ns = js->cleaned;
        js->cleaned = NULL;
        char path[4096];
        if (stream__seg_path(path, sizeof path, job->dir, base, ".log") == 0)
            stream__seg_adopt(ns, log->cfg.files, path); /* into the open-file budget */
        ns->roll_at_ms = js->old->roll_at_ms;
        stream__seg_close_times(ns);
        /* The array's references move to the new one (the job's own pins
         * are dropped in job_free); merged slots are emptied, then closed up. */
        log->segs[k] = ns;
        stream__seg_unref(js->old);
        for (int m = k + 1; m <= last; m++) {
            stream__seg_unref(job->segs[m].old);
            log->segs[m] = NULL;
            merged = true;
        }
        (void)stream__seg_rewrite_indexes(log, ns); /* hints: open rebuilds missing ones */
        job->st.segments_rewritten += last - k + 1;
    }
    if (merged) {
        int n = 0;
        for (int k = 0; k < log->nsegs; k++)
            if (log->segs[k] != NULL)
                log->segs[n++] = log->segs[k];
        log->nsegs = n;
    }
    if (rc == 0)
        rc = dir_sync(job->dirfd, job->dir, errbuf, errbuf_len);
    return rc;
}

int stream_log_clean_finish(stream_log *log, stream_log_clean_job *job, int run_rc,
                            stream_clean_stats *st, char *errbuf, size_t errbuf_len)
{
    log->cleaning = false;
    if (run_rc != 0 || !job->ran || !job_matches(log, job)) {
        job_free(job, true);
        return run_rc;
    }
    int rc = swap_in(log, job, errbuf, errbuf_len);
    if (rc != 0) {
        /* What was renamed stays for the next open to complete; the log's
         * array holds the old or the new segment for each, both readable. */
        for (int k = 0; k < job->nsegs; k++)
            if (job->segs[k].cleaned != NULL) {
                stream__seg_unref(job->segs[k].cleaned);
                job->segs[k].cleaned = NULL;
            }
        job_free(job, false);
        return rc;
    }
    int64_t end = job->map_end;
    if (end > log->clean_offset) {
        log->clean_offset = end;
        (void)stream__write_offset_file(log, CLEAN_OFFSET_FILE, end); /* lost: a pass redone */
    }
    log->last_clean_ms = job->now_ms;
    log->next_horizon_ms = job->min_horizon;
    if (st != NULL) {
        st->passes++;
        st->segments_rewritten += job->st.segments_rewritten;
        st->bytes_read += job->st.bytes_read;
        st->bytes_written += job->st.bytes_written;
        st->records_removed += job->st.records_removed;
        st->tombstones_removed += job->st.tombstones_removed;
        st->clean_offset = log->clean_offset;
    }
    job_free(job, false);
    return 0;
}

int stream_log_clean(stream_log *log, int64_t now_ms, const stream_cleaner_opts *opts,
                     int max_passes, stream_clean_stats *st, char *errbuf, size_t errbuf_len)
{
    int passes = 0;
    while (max_passes <= 0 || passes < max_passes) {
        stream_log_clean_job *job;
        int rc = stream_log_clean_begin(log, now_ms, opts, &job);
        if (rc != 0)
            return rc;
        if (job == NULL)
            break;
        rc = stream_log_clean_run(job, errbuf, errbuf_len);
        rc = stream_log_clean_finish(log, job, rc, st, errbuf, errbuf_len);
        if (rc != 0)
            return rc;
        passes++;
    }
    return passes;
}

/* ---- keyless records, recovery ------------------------------------------------- */

int stream__clean_check_keys(const uint8_t *p, size_t len, char *errbuf, size_t errbuf_len)
{
    stream_record_iter it;
    stream_record rec;
    int rc = stream_record_iter_start(&it, p, len);
    if (rc == 0)
        while ((rc = stream_record_iter_next(&it, &rec)) == 1)
            if (rec.key == NULL) {
                rc = STREAM_EBADRECORD;
                stream__errf(errbuf, errbuf_len,
                             "a compacted topic cannot take a record without a key (offset delta "
                             "%" PRId64 "); give every record a key",
                             rec.offset - it.info.base_offset);
                break;
            }
    stream_record_iter_stop(&it);
    if (rc < 0 && rc != STREAM_EBADRECORD)
        stream__errf(errbuf, errbuf_len, "the batch's records do not decode: %s",
                     stream_strerror(rc));
    return rc < 0 ? rc : 0;
}

/* "<20 digits><ext>" */
static bool name_with(const char *name, const char *ext, int64_t *base)
{
    size_t el = strlen(ext);
    if (strlen(name) != 20 + el || strcmp(name + 20, ext) != 0)
        return false;
    int64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9' || v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (name[i] - '0');
    }
    *base = v;
    return true;
}

/* A growable list of base offsets. */
typedef struct base_list {
    int64_t *v;
    size_t n, cap;
} base_list;

static int base_add(base_list *l, int64_t base)
{
    if (l->n == l->cap && grow_array((void **)&l->v, &l->cap, sizeof *l->v, 16) != 0)
        return STREAM_ENOMEM;
    l->v[l->n++] = base;
    return 0;
}

static int cmp_base(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The offset after the last whole batch of <base>.log.swap (base when none
 * decodes): a merged group's swap covers the segments up to there. */
static int64_t swap_end(int dirfd, int64_t base)
{
    char name[64];
    snprintf(name, sizeof name, "%020" PRId64 "%s", base, EXT_SWAP);
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    int64_t end = base;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return end;
    }
    uint8_t h[STREAM_BATCH_HEADER_SIZE];
    stream_batch_info info;
    for (int64_t pos = 0; st.st_size - pos >= STREAM_BATCH_HEADER_SIZE;) {
        if (pread_full(fd, h, sizeof h, pos) != 0 ||
            stream_batch_header_decode(h, sizeof h, &info) != 0 ||
            (int64_t)info.size > st.st_size - pos || info.base_offset < end)
            break;
        end = info.base_offset + info.last_offset_delta + 1;
        pos += (int64_t)info.size;
    }
    close(fd);
    return end;
}

static bool base_in(const base_list *l, int64_t base)
{
    return bsearch(&base, l->v, l->n, sizeof *l->v, cmp_base) != NULL;
}

/*
 * Completes the swaps in ascending base order: a .swap whose .log is gone
 * (retention deleted it) is deleted; otherwise the .log files of the
 * segments it merged (bases past its own and below its end) go, with their
 * indexes and any .swap of theirs, and it is renamed over its .log.
 */
static int complete_swaps(stream_log *log, base_list *swaps, base_list *logs, char *errbuf,
                          size_t errbuf_len)
{
    qsort(swaps->v, swaps->n, sizeof *swaps->v, cmp_base);
    qsort(logs->v, logs->n, sizeof *logs->v, cmp_base);
    int64_t covered = INT64_MIN; /* bases below it were merged away */
    for (size_t i = 0; i < swaps->n; i++) {
        int64_t base = swaps->v[i];
        char swapname[64], logname[64];
        snprintf(swapname, sizeof swapname, "%020" PRId64 "%s", base, EXT_SWAP);
        snprintf(logname, sizeof logname, "%020" PRId64 ".log", base);
        if (base < covered || !base_in(logs, base)) {
            unlinkat(log->dirfd, swapname, 0); /* its segment was deleted or merged */
            continue;
        }
        int64_t end = swap_end(log->dirfd, base);
        for (size_t j = 0; j < logs->n; j++)
            if (logs->v[j] > base && logs->v[j] < end) {
                unlink_indexes(log->dirfd, logs->v[j]);
                unlink_log(log->dirfd, logs->v[j]);
            }
        if (end > covered)
            covered = end;
        unlink_indexes(log->dirfd, base);
        if (renameat(log->dirfd, swapname, log->dirfd, logname) != 0) {
            int rc = stream_err_from_errno(errno);
            stream__errf(errbuf, errbuf_len, "completing the swap of %s/%s: %s", log->dir,
                         swapname, strerror(errno));
            return rc;
        }
    }
    return 0;
}

int stream__clean_recover(stream_log *log, char *errbuf, size_t errbuf_len)
{
    /* Open holds log->dirfd (log.c: load). */
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
    bool changed = false;
    int rc = 0;
    base_list swaps = {0}, logs = {0};
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        int64_t base;
        if (name_with(e->d_name, EXT_CLEANED, &base)) {
            unlinkat(log->dirfd, e->d_name, 0); /* never complete: the old one stands */
            changed = true;
        } else if (name_with(e->d_name, EXT_SWAP, &base)) {
            rc = base_add(&swaps, base);
            changed = true;
        } else if (name_with(e->d_name, ".log", &base)) {
            rc = base_add(&logs, base);
        }
    }
    closedir(d);
    if (rc == 0 && swaps.n > 0)
        rc = complete_swaps(log, &swaps, &logs, errbuf, errbuf_len);
    free(swaps.v);
    free(logs.v);
    if (rc == 0 && changed)
        rc = dir_sync(log->dirfd, log->dir, errbuf, errbuf_len);
    return rc;
}
