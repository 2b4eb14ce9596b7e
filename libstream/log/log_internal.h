/*
 * log_internal.h - what log.c, segment.c and flusher.c share about a
 * partition log. Nothing here is public; see stream/log.h for the contract.
 *
 * The main header of libstream/log/, the storage engine, above base/ only:
 * record batches (batch.c) and their codecs, segments, the partition log,
 * the flusher that makes it durable, the topic store over a data
 * directory, settings (config.c) and the idempotent producers' state
 * (producer_state.c). Nothing in it knows of the network.
 *
 * Who touches what:
 *   - the owner thread (the one that appends) owns the segment array, the
 *     in-memory indexes and every field marked (owner);
 *   - fields marked (mu) are shared with the flusher and with threads waiting
 *     for durability, and are read and written only under stream_log.mu;
 *   - a segment lives as long as any reference to it: the log's array holds
 *     one, a slice holds one, the flusher holds one while it fdatasyncs, and
 *     the dirty list holds one per rolled segment not yet synced. Deleting a
 *     segment unlinks its files at once; its fd closes with the last
 *     reference;
 *   - a segment's descriptor may be closed by the open-file budget
 *     (log_files.c) whenever nobody pins it: s->fd is valid only between
 *     stream__seg_acquire and stream__seg_release. The log pins its active
 *     segment (log->pinned_active), a sync round pins each segment for its
 *     fdatasync (a rolled segment waits for it unpinned, so a partition
 *     holds one descriptor even when all of them roll at once), a slice
 *     pins its segment until released. Every segment.c function that reads
 *     the file needs the caller's pin.
 */
#ifndef STREAM_LOG_INTERNAL_H
#define STREAM_LOG_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "leader_epoch.h"
#include "stream/batch.h"
#include "stream/buf.h"
#include "stream/log.h"

#define STREAM__INDEX_ENTRY_SIZE     8         /* relOffset be32 | position be32 */
#define STREAM__TIMEINDEX_ENTRY_SIZE 12        /* timestamp be64 | relOffset be32 */
#define STREAM__NO_TIMESTAMP         INT64_MIN /* max_timestamp of an empty segment */
#define STREAM__SYNC_ROUNDS          16        /* sync rounds remembered (stream_log_sync_round) */

typedef struct stream__index_entry {
    uint32_t rel; /* batch base offset - segment base offset */
    uint32_t pos; /* file position of that batch in the .log */
} stream__index_entry;

typedef struct stream__time_entry {
    int64_t ts;   /* largest timestamp of every batch up to and including rel's */
    uint32_t rel; /* relative base offset of the batch that raised it */
} stream__time_entry;

typedef struct stream__segment {
    int64_t base_offset;     /* offset of the first batch; names the files */
    int fd;                  /* the .log file, read-write, -1 while closed by the
                                budget; valid only under a pin (see above) */
    atomic_int refs;         /* references (see the file comment) */
    char *path;              /* the .log file's path, to reopen it */
    stream_log_files *files; /* the budget it counts in; NULL: fd stays open */
    int pins;                /* (files' mu) users of fd now; cached only at 0 */
    bool in_lru;             /* (files' mu) open, unpinned, on the LRU list */
    struct stream__segment *lru_prev, *lru_next; /* (files' mu) */
    bool holes; /* (owner) its batches may skip offsets (the log's holes, below) */
    int64_t size;                                /* (owner) bytes of whole batches in the .log */
    int64_t next_offset;                         /* (owner) offset after the last batch */
    int64_t max_timestamp;      /* (owner) largest batch maxTimestamp, NO_TIMESTAMP if empty */
    uint32_t max_ts_rel;        /* (owner) relative offset of the batch holding it */
    int64_t roll_at_ms;         /* (owner) wall clock of its first append (or of open) */
    int64_t last_index_pos;     /* (owner) position of the last offset index entry */
    int64_t last_time_pos;      /* (owner) position where the last time entry was added */
    stream__index_entry *index; /* (owner) the sparse offset index, in memory */
    uint32_t index_n;           /* entries in index */
    uint32_t index_cap;         /* entries allocated */
    uint32_t index_written;     /* leading entries already in the .index file */
    stream__time_entry *times;  /* (owner) the time index, in memory */
    uint32_t times_n;
    uint32_t times_cap;
    uint32_t times_written; /* leading entries already in the .timeindex file */
} stream__segment;

struct stream_log {
    char *dir; /* the partition directory */
    /* No descriptor on dir is held between calls (ten thousand partitions
     * would need ten thousand): a run of *at calls holds one for its length
     * (stream__log_dir_hold), a directory fsync opens its own. */
    int dirfd;               /* (owner) open on dir while dir_holds > 0, else -1 */
    int dir_holds;           /* (owner) nested holds of dirfd */
    int lock_fd;             /* open on dir and flock'd, for a log outside a budget
                                only; -1 in one (its data directory's lock covers it) */
    stream_log_files *files; /* the open-file budget (cfg.files at open), any thread */
    stream_log_config cfg;   /* (owner) current configuration */
    /* (owner) Offsets may skip: the log is compacted, was cleaned before (a
     * cleaner checkpoint at open), or took a leader's holes. Elsewhere a
     * batch that does not start where the last ended is damage (its base
     * offset is outside the CRC), as it always was. */
    bool holes;
    stream__segment **segs;  /* (owner) segments by base offset; the last is active */
    int nsegs;               /* (owner) */
    int segs_cap;            /* (owner) */
    int64_t start_offset;    /* (owner) log start offset */
    int64_t end_offset;      /* (owner) log end offset (next offset to assign) */
    stream_buf scratch;      /* (owner) reused buffer for scans and time look-ups */
    /* (owner) idempotent producers' sequences (producer_state.c) */
    struct stream__producer_state *producers;
    stream_log_recovery last_recovery; /* what open found */
    stream__epoch_cache epochs;        /* (owner) leader epochs and their start offsets */
    int32_t leader_epoch;              /* (owner) epoch appends stamp, -1 = none (no stamping) */
    bool epochs_unsaved;               /* (owner) a checkpoint write failed: rewrite it */

    pthread_mutex_t mu;      /* guards every (mu) field */
    pthread_cond_t cv;       /* signalled when durable or busy changes (mu) */
    stream__segment *active; /* (mu) the segment appends go to, for the flusher */
    stream__segment **dirty; /* (mu) rolled segments whose data or indexes await a sync */
    int ndirty;              /* (mu) */
    int dirty_cap;           /* (mu) */
    stream__segment **snap;  /* (mu: busy holder) segments being synced right now */
    int nsnap;
    int snap_cap;
    bool dir_dirty;               /* (mu) a segment file was created since the last dir fsync */
    bool busy;                    /* (mu) a sync, truncation or close is in progress */
    int64_t appended_end;         /* (mu) end offset as the flusher sees it */
    int64_t durable;              /* (mu) every offset below is fdatasync'd */
    int io_error;                 /* (mu) the latched I/O error (log.h: "I/O errors"), 0 if
                                     none; cleared only by stream_log_recover */
    uint64_t io_failures;         /* (mu) times an I/O error was latched */
    char io_error_msg[256];       /* (mu) what failed, for people: "fdatasync of ..." */
    uint64_t sync_count;          /* (mu) sync rounds that ran fdatasync */
    struct {                      /* (mu) the last STREAM__SYNC_ROUNDS rounds that succeeded, */
        int64_t from, target;     /*   a ring: what each made durable [from, target), */
        int64_t start_ns, end_ns; /*   and when (stream_log_sync_round) */
    } rounds[STREAM__SYNC_ROUNDS];
    unsigned nrounds;               /* (mu) rounds recorded so far (ring index = n % size) */
    stream_durable_cb durable_cb;   /* (mu) */
    void *durable_arg;              /* (mu) */
    stream_flusher *flusher;        /* (mu) attached flusher or NULL */
    int64_t rp_written;             /* (busy holder) value last written to recovery-point */
    int64_t rp_written_ms;          /* (busy holder) monotonic time of that write */
    int64_t recover_after_ms;       /* (owner) monotonic time before which stream_log_recover
                                       does not try again after a failed attempt */
    stream__segment *pinned_active; /* (owner) the segment the log's active pin is on */
    int64_t snapshot_at; /* (owner) offset of the newest producer snapshot on disk, -1 none */
    bool close_ready;    /* (owner) stream_log_close_prepare left it healthy and written */

    /* compaction (cleaner.c) */
    int64_t clean_offset;     /* (owner) below it the log is clean (cleaner-offset-checkpoint) */
    bool clean_offset_loaded; /* (owner) clean_offset was read from its file */
    bool cleaning;            /* (owner) a cleaner job has begun and not finished */
    int64_t last_clean_ms;    /* (owner) wall clock of the last finished pass, -1 none */
    int64_t next_horizon_ms;  /* (owner) earliest delete horizon of a kept tombstone
                                 (INT64_MAX: none; 0: unknown since open) */

    atomic_int flush_mode;    /* copy of cfg.flush_mode the flusher reads */
    _Atomic int64_t flush_ms; /* copy of cfg.flush_ms the flusher reads */
    bool flush_requested;     /* (flusher's mu) a sync was asked for */
    int64_t next_periodic_ms; /* (flusher's mu) monotonic deadline in PERIODIC mode */
};

/* True when a batch at base_offset (>= 0) with last_offset_delta (>= 0)
 * ends at or below STREAM_LOG_MAX_OFFSET: its next offset, base_offset +
 * last_offset_delta + 1, fits. Written so that nothing here can overflow. */
static inline bool stream__offsets_fit(int64_t base_offset, int32_t last_offset_delta)
{
    return base_offset <= STREAM_LOG_MAX_OFFSET &&
           (int64_t)last_offset_delta < STREAM_LOG_MAX_OFFSET - base_offset;
}

/* Latches I/O error rc (the first one wins until stream_log_recover clears
 * it) with a printf-style note of what failed: appends are refused and the
 * durable offset stops. Takes mu; the _locked form is for holders of mu. */
void stream__log_fail(stream_log *log, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void stream__log_fail_locked(stream_log *log, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Index of the segment holding `offset`: the last with base <= offset (0
 * when offset is below every base). */
int stream__log_find_seg(const stream_log *log, int64_t offset);

/* The partition directory for a run of *at calls on the owner thread:
 * log->dirfd is valid until the matching drop (holds nest). Counted in the
 * log's budget, which closes cached segments when the process is out of
 * descriptors. 0 or a negative STREAM_E* (open's error). */
int stream__log_dir_hold(stream_log *log);
void stream__log_dir_drop(stream_log *log);
/* fsync of the partition directory (after a create, rename or unlink in
 * it) through a descriptor of its own: any thread. 0 or STREAM_E*. */
int stream__log_dir_sync(stream_log *log);

/* Times in milliseconds. */
int64_t stream__now_ms(void);  /* CLOCK_REALTIME */
int64_t stream__mono_ms(void); /* CLOCK_MONOTONIC */

/* ---- log_files.c: the open-file budget ---------------------------------- */

/* Opens `path` for segment s (flags as open(2), O_CLOEXEC added), counted in
 * budget f (NULL: no budget), closing cached descriptors of other segments
 * when the budget is full. Remembers the path for reopening. On success s
 * is pinned once (the caller's). STREAM_EAGAIN with errbuf naming the
 * limit and log.max.open.files when pinned descriptors fill the budget, or
 * open's error. */
int stream__seg_open_file(stream__segment *s, stream_log_files *f, const char *path, int flags,
                          char *errbuf, size_t errbuf_len);
/* A segment found at open, not opened yet: takes ownership of `path`
 * (malloc'd); the first acquire opens it. */
void stream__seg_set_lazy(stream__segment *s, stream_log_files *f, char *path);
/* Takes a segment made outside the budget (the cleaner's rewritten copy,
 * its descriptor open, unpinned) into budget f under `path`, its name from
 * now on. Out of memory leaves it outside, its descriptor open. */
void stream__seg_adopt(stream__segment *s, stream_log_files *f, const char *path);
/* Pins s->fd, reopening the file when the budget had closed it (an O(1)
 * LRU unlink when it is open: no system call). 0, STREAM_EAGAIN (the
 * budget is full of pinned descriptors, or the process of descriptors), or
 * open's error (STREAM_ENOENT: the file was deleted behind the log). */
int stream__seg_acquire(stream__segment *s);
/* Unpins; at zero pins the descriptor is cached (most recently used). */
void stream__seg_release(stream__segment *s);
/* Closes the descriptor for good (the last unref). */
void stream__seg_close_file(stream__segment *s);
/* A partition directory's descriptor for a moment's use, counted in f (NULL: not counted):
 * the descriptor or a negative STREAM_E* code with errbuf set. */
int stream__files_open_dir(stream_log_files *f, const char *path, char *errbuf, size_t errbuf_len);
void stream__files_close_dir(stream_log_files *f, int fd);
/* Any file of a log for a moment's use (open(2) flags, O_CLOEXEC added),
 * counted in f like a directory: EMFILE closes cached segments and tries
 * again instead of failing. Closed with stream__files_close_dir. */
int stream__files_open(stream_log_files *f, const char *path, int flags, char *errbuf,
                       size_t errbuf_len);

/* ---- segment.c --------------------------------------------------------- */

/* "<dir>/<20-digit base><ext>" into buf; STREAM_EINVAL when it does not fit. */
int stream__seg_path(char *buf, size_t n, const char *dir, int64_t base, const char *ext);
/* A new segment object (no files), one reference. NULL on ENOMEM. */
stream__segment *stream__seg_alloc(int64_t base_offset);

/* The cleaner's checkpoint file in a partition directory. */
#define STREAM__CLEAN_OFFSET_FILE "cleaner-offset-checkpoint"
/* An empty file in a partition directory: the log took a leader's holes
 * (a follower of a log the leader cleaned), so its offsets may skip. */
#define STREAM__HOLES_FILE "offset-holes"

/* True when a batch at `base`, after one that ended before `expect`, is
 * out of place in s: an overlap always, a hole unless s->holes. */
static inline bool stream__seg_misplaced(const stream__segment *s, int64_t base, int64_t expect)
{
    return s->holes ? base < expect : base != expect;
}
void stream__seg_ref(stream__segment *s);
void stream__seg_unref(stream__segment *s);

/* Records the batch at `pos` in the in-memory indexes and the segment's
 * size/next offset/max timestamp, following the sparse index rules of log.h.
 * The caller has checked that the batch's offsets fit (stream__offsets_fit)
 * and lie within 2^31 of the segment base. */
void stream__seg_track(stream__segment *s, int64_t pos, const stream_batch_info *info,
                       int32_t index_interval_bytes);
/* Adds the closing time index entry (the segment's largest timestamp) when
 * the last entry does not already say it; done when a segment stops being
 * active so that retention can read the largest timestamp from the file. */
void stream__seg_close_times(stream__segment *s);
/* Writes index entries not yet in the files. */
int stream__seg_write_pending(stream_log *log, stream__segment *s);
/* Rewrites both index files from memory. */
int stream__seg_rewrite_indexes(stream_log *log, stream__segment *s);
/* Drops in-memory index entries at or past relative offset rel / position pos. */
void stream__seg_trim_indexes(stream__segment *s, uint32_t rel);
/* fdatasyncs the .index and .timeindex files by path (ENOENT is fine: the
 * segment was deleted meanwhile). */
int stream__seg_sync_indexes(stream_log_files *f, const char *dir, int64_t base);
/* Unlinks the segment's three files. */
void stream__seg_unlink(stream_log *log, int64_t base);

/* Reads and decodes the batch header at pos, checking the batch lies within
 * the segment's size. */
int stream__seg_header_at(const stream__segment *s, int64_t pos, stream_batch_info *info);
/* Finds the batch containing `offset` (base <= offset < next): its position and
 * header. STREAM_EOFFSET when not in this segment, STREAM_ECORRUPT/EIO on a
 * bad file. */
int stream__seg_find(const stream__segment *s, int64_t offset, int64_t *pos,
                     stream_batch_info *info);
/* Calls fn with every batch header from position pos (a batch start) to the
 * segment's end, reading the file in chunks (headers only: the producer
 * state's replay). Stops at fn's first non-zero return and returns it;
 * STREAM_ECORRUPT for a header that does not decode or a batch past the end,
 * or the read error. */
int stream__seg_scan_headers(const stream__segment *s, int64_t pos,
                             int (*fn)(const stream_batch_info *info, void *arg), void *arg);
/* Position of the last index entry at or below relative offset rel. */
int64_t stream__seg_index_floor(const stream__segment *s, uint32_t rel, int64_t *entry_off);

/* How a segment looked on open. */
enum stream__seg_state {
    STREAM__SEG_OK = 0,      /* consistent, indexes trusted (or rebuilt from headers) */
    STREAM__SEG_CORRUPT = 1, /* batches do not chain to the end: recover from here */
};
/* Opens an existing segment on a trusted (clean or below recovery point) path:
 * loads the indexes, checks them cheaply, scans the tail after the last index
 * entry, rebuilds indexes from batch headers when they are bad. Sets
 * *state; counts rebuilt files in *rebuilt. */
int stream__seg_open_trusted(stream_log *log, stream__segment *s, enum stream__seg_state *state,
                             int *rebuilt);
/* Re-validates every batch of the segment (CRC, header, size, offsets
 * increasing from the segment base, holes allowed), truncates the file at the
 * first bad one, rebuilds both indexes. *dropped gets the bytes cut, *bad_offset the offset
 * where the cut began (-1 when nothing was cut), *scanned the bytes validated. */
int stream__seg_recover(stream_log *log, stream__segment *s, int64_t *scanned, int64_t *dropped,
                        int64_t *bad_offset);
/* Recomputes max_timestamp/last positions after the segment was cut back. */
int stream__seg_recompute_tail(stream_log *log, stream__segment *s);

/* ---- cleaner.c ----------------------------------------------------------- */

/* The append check of a compacted log: every record of the batch at p has a
 * key. STREAM_EBADRECORD (errbuf says which record) or a decoding error. */
int stream__clean_check_keys(const uint8_t *p, size_t len, char *errbuf, size_t errbuf_len);
/* The log end moved down (truncation, or open after a cut): the clean
 * offset may not stay above it. */
void stream__clean_end_moved(stream_log *log);
/* At open, before the segments are listed: deletes every `.log.cleaned`
 * file and completes every `.log.swap` (stream/cleaner.h, "Crash safety").
 * Errors: STREAM_EIO (errbuf names the file). */
int stream__clean_recover(stream_log *log, char *errbuf, size_t errbuf_len);

/* ---- leader_epoch.c ------------------------------------------------------ */

/* Loads the leader-epoch cache at open, once recovery has fixed the start
 * and end: drops entries at or past the end, checks the rest against the
 * batch headers, rebuilds from the headers when the file is damaged or
 * disagrees (*rebuilt), and rewrites the file when it changed. A missing
 * file is an empty cache. Fails only with STREAM_ENOMEM. */
int stream__log_epochs_open(stream_log *log, bool *rebuilt);
/* Before a batch of `epoch` is written at `base` (the log end): when the
 * epoch is newer than the latest, records (epoch, base) and writes the
 * checkpoint, *added = true. On failure (ENOMEM, the file's I/O error, errbuf
 * saying so) the cache is as it was and the batch must not be written. */
int stream__log_epochs_before_append(stream_log *log, int32_t epoch, int64_t base, bool *added,
                                     char *errbuf, size_t errbuf_len);
/* The write of a batch whose epoch before_append added failed: forget it. */
void stream__log_epochs_append_failed(stream_log *log);
/* The end moved down (truncation) / the start moved up (retention,
 * advance_start): trims the cache and rewrites the file when it changed. */
void stream__log_epochs_end_moved(stream_log *log);
void stream__log_epochs_start_moved(stream_log *log);
/* Rewrites the file if an earlier write failed (close, recover). */
void stream__log_epochs_flush(stream_log *log);

/* ---- flusher.c ---------------------------------------------------------- */

/* One sync round for `log` (see log.h: one fdatasync per dirty segment covers
 * every append before it). Runs on the flusher or the caller of
 * stream_log_flush. */
int stream__log_sync(stream_log *log);
/* Initialises a condition variable on CLOCK_MONOTONIC. */
int stream__init_mono_cond(pthread_cond_t *c);
/* Waits for and takes / gives back the exclusive `busy` slot. */
void stream__log_acquire_busy(stream_log *log);
void stream__log_release_busy(stream_log *log);
/* Atomically replaces `<dir>/<name>` with "<value>\n" (temp file, fsync,
 * rename, fsync dir). */
int stream__write_offset_file(stream_log *log, const char *name, int64_t value);

#endif /* STREAM_LOG_INTERNAL_H */
