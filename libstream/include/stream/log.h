/*
 * log.h - one partition's append-only log: segments, indexes, group commit,
 * recovery, retention.
 *
 * A partition is a directory of segments. Each segment is three files named
 * by the segment's base offset as 20 zero-padded digits:
 *
 *   00000000000000000000.log        record batches (RecordBatch v2) back to back,
 *                                   exactly as producers sent them, with baseOffset
 *                                   stamped by stream_log_append
 *   00000000000000000000.index      sparse offset index, 8-byte entries:
 *                                   relOffset be32 | filePosition be32
 *                                   (relOffset = batch base offset - segment base)
 *   00000000000000000000.timeindex  sparse time index, 12-byte entries:
 *                                   timestamp be64 | relOffset be32
 *                                   (largest timestamp so far -> batch base offset)
 *
 * and beside them
 *
 *   recovery-point    "<offset>\n": every batch below it was fdatasync'd, and the
 *                     indexes of every segment wholly below it; written at most
 *                     once a second by sync rounds and at close, atomically
 *                     (temp file, fsync, rename, fsync dir)
 *   clean-shutdown    present only after stream_log_close on a healthy log; the
 *                     next open trusts the files and skips the recovery scan, and
 *                     renames it to clean-shutdown.open until the next close
 *                     renames it back (no inode freed and allocated per restart)
 *   log-start-offset  "<offset>\n": written (atomically) by stream_log_advance_start
 *                     when the start moves inside a segment
 *   <offset>.snapshot idempotent producers' sequence state as of the batches below
 *                     <offset> (20 digits), written at each segment roll and at
 *                     close, the newest two kept (libstream/log/producer_state.h)
 *   leader-epoch-checkpoint
 *                     the leader-epoch cache, Kafka's text format: "0\n<count>\n" then
 *                     "<epoch> <start offset>\n" per epoch (libstream/log/leader_epoch.h);
 *                     written atomically whenever the cache changes ("Leader epochs"
 *                     below); absent until a first epoch is recorded
 *
 * One index entry is written per `index_interval_bytes` of log (the first batch
 * of a segment always gets one). A time index entry is written when a batch
 * raises the segment's largest timestamp and index_interval_bytes have passed
 * since the last entry; when a segment stops being active (roll, close) a last
 * entry records its largest timestamp, which retention reads. Indexes are
 * hints: a missing, short or inconsistent index (size not a multiple of the
 * entry size, entries not strictly increasing, positions past the file, an
 * entry missing in the tail, the last entry naming the wrong batch) is
 * rebuilt from its segment on open, also after a clean close.
 *
 * Recovery: after an unclean stop, every batch from the start of the segment
 * holding the recovery point to the end is re-read and checked
 * (stream_batch_check, offsets contiguous from the segment base); the log is
 * cut at the first batch that fails and later segments are deleted. Below the
 * recovery point (and everywhere after a clean close) open only checks
 * indexes and batch headers; stream_log_read_copy CRC-checks what it copies.
 *
 * Offsets: log_start_offset <= high_watermark <= log_end_offset. On one node
 * the high watermark is the log end offset. No offset passes
 * STREAM_LOG_MAX_OFFSET: an append that would is refused (STREAM_EOFFSET),
 * open refuses a directory holding a segment file named past it
 * (STREAM_ECORRUPT, errbuf naming the file: no log of ours writes one, so
 * it is left for a person to look at), and recovery treats a batch whose
 * offsets pass it as corrupt.
 *
 * A checkpoint file (recovery-point, log-start-offset) holds exactly 1 to 19
 * decimal digits and "\n". Anything else (a sign, spaces, an embedded NUL,
 * bytes after the newline, a value past STREAM_LOG_MAX_OFFSET) is damaged
 * and read as missing: no recovery point means a full recovery scan, no log
 * start offset means the first segment's base.
 *
 * Threads: a stream_log is owned by one thread (append, read, roll, retention,
 * truncate). The durability side (stream_log_durable_offset,
 * stream_log_wait_durable, stream_log_request_flush, stream_log_flush,
 * stream_log_set_durable_cb, stream_log_sync_count, the flusher) is
 * thread-safe: a flusher thread fdatasyncs segments while the owner keeps
 * appending. Segments that a slice or the flusher still use are reference
 * counted, so retention may delete them meanwhile, and
 * stream_log_slice_release may be called from any thread. A log outside an
 * open-file budget flock's its directory while open: a second
 * stream_log_open of it fails with STREAM_EAGAIN. A log in a budget holds no
 * descriptor on its directory at all (it opens it for a run of *at calls or
 * a sync and closes it again): the budget's owner (stream_store) holds the
 * lock of the data directory around it.
 */
#ifndef STREAM_LOG_H
#define STREAM_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "stream/buf.h"

/* The largest log end offset: 2^63 - 2^31. Every offset sum the log and its
 * readers do (an offset plus a batch's lastOffsetDelta + 1, at most 2^31)
 * then stays inside int64_t. At a billion records a second that is 292
 * years of appends. */
#define STREAM_LOG_MAX_OFFSET (INT64_MAX - INT32_MAX)

typedef enum stream_flush_mode {
    STREAM_FLUSH_GROUP = 0,    /* group commit: fdatasync as soon as asked, one sync
                                  covering every append before it (default) */
    STREAM_FLUSH_PERIODIC = 1, /* fdatasync every flush_ms */
    STREAM_FLUSH_NEVER = 2,    /* leave it to the OS; the durable offset moves only
                                  on stream_log_flush and close, so a broker must
                                  not make acks=all wait for it in this mode */
} stream_flush_mode;

/*
 * An open-file budget shared by the logs of one data directory (the store
 * makes one from log.max.open.files): at most `max_open` descriptors for
 * segment files (and directories opened for a moment). A log keeps only its
 * active segment open; its other segments are opened on
 * first read and then cached, least recently used closed first when the
 * budget needs room. A descriptor in use (a slice, a sync) is never
 * closed under its user. Thread-safe. Must outlive every log using it.
 */
typedef struct stream_log_files stream_log_files;

/* A budget of max_open (>= 1) descriptors. STREAM_EINVAL, STREAM_ENOMEM. */
int stream_log_files_new(long max_open, stream_log_files **out);
/* Frees it (NULL is a no-op); no log may use it any more. */
void stream_log_files_free(stream_log_files *f);

typedef struct stream_log_files_stats {
    long budget;        /* max_open */
    long open;          /* descriptors held now (segments, directories in use) */
    long cached;        /* of them, segment files nobody uses right now */
    uint64_t reopens;   /* reads that had to open a closed segment again */
    uint64_t evictions; /* cached descriptors closed to make room */
} stream_log_files_stats;
void stream_log_files_get_stats(stream_log_files *f, stream_log_files_stats *out);

typedef struct stream_log_config {
    int64_t segment_bytes;        /* roll when the active segment would pass this
                                     (default 1 GiB, at most INT32_MAX) */
    int64_t segment_ms;           /* roll when the active segment's first batch was
                                     appended longer ago than this, wall clock
                                     (default 7 days; after open the age counts
                                     from the open) */
    int64_t retention_ms;         /* delete segments whose largest timestamp is older;
                                     -1 = keep forever (default 7 days) */
    int64_t retention_bytes;      /* delete oldest segments while the log is larger;
                                     -1 = no limit (default) */
    int32_t index_interval_bytes; /* log bytes between index entries (default 4096;
                                     0 = an entry per batch) */
    int32_t max_message_bytes;    /* largest batch append accepts (default 1 MiB) */
    stream_flush_mode flush_mode; /* see above */
    int64_t flush_ms;             /* period for STREAM_FLUSH_PERIODIC (default 1000) */
    /* cleanup.policy: delete (retention applies), compact (the cleaner keeps
     * the last record per key and appends refuse keyless records), or both.
     * Default delete only. */
    bool cleanup_delete;
    bool cleanup_compact;
    int32_t min_cleanable_dirty_ratio_ppm; /* clean when this share (millionths) of the
                                              closed bytes is dirty (default 500000) */
    int64_t min_compaction_lag_ms;         /* records younger than this stay (default 0) */
    int64_t max_compaction_lag_ms;         /* dirty records older than this force a cleaning
                                              whatever the ratio (default ~100 years) */
    int64_t delete_retention_ms;           /* tombstones stay this long after their first
                                              cleaning (default 1 day) */
    stream_log_files *files;               /* the open-file budget, read at open only (NULL, the
                                              default: every segment keeps its descriptor) */
} stream_log_config;

/* Fills `cfg` with the defaults above. */
void stream_log_config_init(stream_log_config *cfg);

typedef struct stream_log stream_log;

/* What open found, for the broker to report. */
typedef struct stream_log_recovery {
    bool clean;              /* clean-shutdown marker was present: no scan */
    int segments;            /* segments opened */
    int64_t scanned_bytes;   /* bytes re-validated (whole batches that passed) */
    int64_t truncated_bytes; /* bytes dropped at the first torn/corrupt batch */
    int64_t truncated_at;    /* offset where the drop began, -1 if none */
    int indexes_rebuilt;     /* index/timeindex files rebuilt (2 per scanned segment) */
    bool epochs_rebuilt;     /* leader-epoch-checkpoint was damaged or disagreed with the
                                batches: the epochs were rebuilt from the batch headers */
} stream_log_recovery;

/* A run of whole batches in one segment file, ready for pread or sendfile.
 * Pins the segment: release it with stream_log_slice_release. */
typedef struct stream_log_slice {
    int fd;               /* read-only: the segment's .log file */
    off_t pos;            /* read-only: file position of the first batch */
    size_t len;           /* read-only: bytes (whole batches); 0 at the end */
    int64_t first_offset; /* read-only: base offset of the first batch */
    void *segment;        /* private: the pinned segment */
} stream_log_slice;

/* Opens (creating when missing; the parent must exist) the partition
 * directory `dir`, recovering it if it was not closed cleanly, and removes the
 * clean-shutdown marker. `cfg` NULL means the defaults. `rec` may be NULL.
 * After open everything in the log is durable (recovered segments are
 * fdatasync'd). Errors: STREAM_EIO/ENOSPC (with errbuf naming the file),
 * STREAM_ECORRUPT (a segment file named past STREAM_LOG_MAX_OFFSET; errbuf
 * names it),
 * STREAM_EBADCONFIG (errbuf names the field), STREAM_EAGAIN (open elsewhere),
 * STREAM_ENOMEM. */
int stream_log_open(const char *dir, const stream_log_config *cfg, stream_log **out,
                    stream_log_recovery *rec, char *errbuf, size_t errbuf_len);

/* As stream_log_open, but without the fsync of the directory that open
 * otherwise ends with (it makes the removal of the clean-shutdown marker
 * durable before the first append): the caller syncs the directory before
 * anything is appended (the store opens every partition, then syncs once). */
int stream_log_open_unsynced(const char *dir, const stream_log_config *cfg, stream_log **out,
                             stream_log_recovery *rec, char *errbuf, size_t errbuf_len);

/* Creates the empty log of a new partition in `dir`, which must not exist
 * (STREAM_EEXIST otherwise; its parent must), without a single fsync: the
 * caller makes the new directory and its files durable before it relies on
 * them (stream_store syncs a whole new topic at once: one sync, not one per
 * partition). Until then a crash may lose the directory or leave it partly
 * made; stream_log_open of such a leftover recovers it as an unclean log.
 * Errors as stream_log_open. */
int stream_log_create(const char *dir, const stream_log_config *cfg, stream_log **out, char *errbuf,
                      size_t errbuf_len);

/* Frees a log whose files are about to be deleted (its topic was deleted):
 * detaches it from its flusher and closes its descriptors, writing nothing
 * (no flush, checkpoint or marker). Slices still pinned stay readable.
 * NULL is a no-op. */
void stream_log_discard(stream_log *log);

/* Flushes, writes the recovery point and the clean-shutdown marker (unless the
 * log saw an I/O error), and frees the log. NULL is a no-op. */
void stream_log_close(stream_log *log);

/*
 * Closing many logs with two syncs in all instead of a few each (the
 * store's close): stream_log_close_prepare on every log (stops its
 * flusher, writes what is pending: index entries, the producer snapshot;
 * syncs nothing), then one sync of the file system (syncfs) by the caller,
 * then stream_log_close_finish(log, synced) on every log (when the sync
 * succeeded and the log was healthy, the recovery point and the
 * clean-shutdown marker, unsynced; then frees it), then one more sync.
 * A crash anywhere leaves each log clean or recovered as after a kill.
 * prepare returns 0 or the latched I/O error (then no marker is written).
 */
int stream_log_close_prepare(stream_log *log);
void stream_log_close_finish(stream_log *log, bool synced);

/* Replaces the configuration (alter_configs); takes effect at the next append
 * or retention pass. Returns 0 or STREAM_EBADCONFIG (nothing changed). */
int stream_log_set_config(stream_log *log, const stream_log_config *cfg);

/* Validates the batch at p (header, size, CRC via stream_batch_check), assigns
 * it the next offset (stamping baseOffset in place in p, CRC unchanged, and
 * partitionLeaderEpoch when a leader epoch is set: stream_log_set_leader_epoch),
 * rolls the segment if needed, writes it, and updates the indexes. *base_offset
 * gets the assigned offset. `len` must be exactly one batch. No allocation on
 * this path (beyond the in-memory index's rare doubling, and the epoch cache's
 * when a new epoch starts). Errors:
 * STREAM_ECRC/ECORRUPT/ESHORT/EMAGIC (batch rejected, log unchanged),
 * STREAM_ETOOLARGE (len > max_message_bytes), STREAM_EOFFSET (its last
 * offset would pass STREAM_LOG_MAX_OFFSET; log unchanged), STREAM_EIO/ENOSPC (log
 * unchanged: a partial write is cut back; also when the first batch of a new
 * leader epoch cannot have its leader-epoch-checkpoint entry written; while
 * an I/O error is latched - see "I/O errors" below - every append fails with
 * it), STREAM_ENOMEM (a new epoch's entry). Owner thread. */
int stream_log_append(stream_log *log, uint8_t *p, size_t len, int64_t *base_offset, char *errbuf,
                      size_t errbuf_len);

/* Appends batches exactly as a leader stored them: the follower's side of
 * replication. p holds one or more whole batches back to back, baseOffset and
 * partitionLeaderEpoch as the leader stamped them; nothing is stamped here.
 * The first must start at the log end and each next one right after the one
 * before (base offset = previous last offset + 1). Each batch is checked as
 * stream_log_append checks one (stream_batch_check: header, size, CRC; not
 * max_message_bytes, which the leader enforced: refusing here would stop
 * replication for good) and written with everything an append maintains:
 * indexes, segment rolls, the time index, the idempotent producers' state
 * (no judging: a leader's batches are trusted, so a batch resent to the next
 * leader is found by stream_log_check_producer), and the durability side
 * (flushes cover it as any append). A batch whose partitionLeaderEpoch is
 * newer than stream_log_latest_epoch adds (epoch, its base offset) to the
 * epoch cache, as a leader's append does. Batches are appended one by one:
 * on the first failure the batches before it stay appended and that batch
 * and everything after it are not. *appended_end always gets the log end
 * after the call. len 0 appends nothing. A batch may start above the log
 * end: the leader's cleaner removed the offsets between (a compacted log
 * has holes, and the leader answers a fetch from the end with the first
 * batch that ends at or past it), so the end moves over the hole with the
 * batch, as on the leader. Errors: STREAM_EOFFSET (a batch starts below the
 * log end - an overlap - or would pass STREAM_LOG_MAX_OFFSET, or lies more
 * than 2^31 offsets past the active segment's base), STREAM_ECRC/ECORRUPT/EMAGIC (a bad batch),
 * STREAM_ESHORT (a trailing partial batch), STREAM_EIO/ENOSPC (as
 * stream_log_append), STREAM_ENOMEM; errbuf says which batch and why. Owner
 * thread. */
int stream_log_append_replica(stream_log *log, const uint8_t *p, size_t len, int64_t *appended_end,
                              char *errbuf, size_t errbuf_len);

/*
 * Leader epochs (KIP-101, KIP-279). A leader stamps its epoch into every
 * batch it appends (partitionLeaderEpoch, outside the CRC); the log keeps a
 * cache of each epoch's start offset - the base offset of the first batch
 * appended under it - in leader-epoch-checkpoint, so that a replica can ask
 * where an epoch ended and cut off a tail no later leader kept.
 *
 * An epoch enters the cache with its first batch, appended by either path:
 * the entry is written to the checkpoint (atomically) before the batch is
 * written, and when that fails the append fails and the log is unchanged.
 * Entries ascend strictly in epoch and start offset; a batch whose epoch is
 * not newer than the latest entry adds nothing. stream_log_truncate_to
 * drops the entries starting at or past the new end; retention and
 * stream_log_advance_start drop the entries wholly below the new start (the
 * entry covering the start stays, its start offset unchanged).
 *
 * Open: no file (a log from before epochs, or one never replicated) is an
 * empty cache; the batches of such a log carry whatever the producers sent
 * (-1 from every client), which is no leader's epoch, so they are not read.
 * A file that is damaged (anything but the exact format), names a batch
 * that is not there with that epoch, or is older than the newest batch's
 * epoch is not trusted: the cache is rebuilt from every batch header
 * (epochs >= 0, each newer than the one before), the file rewritten, and
 * stream_log_recovery.epochs_rebuilt set. Open never fails for the file
 * (it is derived data; the batches are the truth); when a segment cannot be
 * read to its end the rebuilt cache stops there and the file is left for the
 * next open to try again. Entries past the recovered end are dropped.
 *
 * Threads: the cache and the epoch are the owner thread's, like
 * stream_log_end_offset.
 */

/* Sets the epoch stream_log_append stamps from now on (a negative epoch:
 * none). With none set - the default, and what a single broker uses - an
 * append leaves partitionLeaderEpoch as the producer sent it and never adds
 * to the epoch cache. With one set, each appended batch gets it; the first
 * append under an epoch newer than stream_log_latest_epoch records (epoch,
 * its base offset). Setting an epoch records nothing by itself, so until a
 * new leader appends, the cache's latest is its predecessor's. Owner thread. */
void stream_log_set_leader_epoch(stream_log *log, int32_t epoch);

/* The newest epoch in the cache, -1 when it is empty. Owner thread. */
int32_t stream_log_latest_epoch(stream_log *log);

/* OffsetForLeaderEpoch: the largest cached epoch <= `epoch` into
 * *found_epoch, and into *end_offset where it ended - the start offset of
 * the next cached epoch, or the log end offset when it is the latest (so an
 * epoch newer than every cached one answers the latest and the log end).
 * When every cached epoch is newer than `epoch` (or `epoch` < 0), or the
 * cache is empty, both are -1 (Kafka's UNDEFINED: the asker cannot learn
 * where its epoch diverged; a follower then falls back to its high
 * watermark). Kafka answers the first entry's start instead when every
 * cached epoch is newer; here that case is UNDEFINED too. Returns 0 (no
 * errors today). Owner thread. */
int stream_log_epoch_end_offset(stream_log *log, int32_t epoch, int32_t *found_epoch,
                                int64_t *end_offset);

/* Idempotent producers. The log remembers, per producer id, its epoch and
 * its last 16 batches' sequence numbers and offsets (updated by every append
 * of a batch with producerId >= 0, rebuilt on open and after a truncation
 * from a snapshot and the batch headers after it; libstream/log/producer_state.h
 * has the rules). A leader checks a batch before appending it: returns 0
 * (append it), STREAM_LOG_DUPLICATE with *dup_base_offset (the same batch
 * was appended at that offset: append nothing, answer with it), or
 * STREAM_EOUTOFORDERSEQ / EDUPLICATESEQ / EUNKNOWNPRODUCER / EPRODUCERFENCED
 * / ECORRUPT with errbuf. Batches with producerId -1 always get 0. p holds
 * at least the batch header. */
#define STREAM_LOG_DUPLICATE 1
int stream_log_check_producer(stream_log *log, const uint8_t *p, size_t len,
                              int64_t *dup_base_offset, char *errbuf, size_t errbuf_len);

/* Whole batches starting with the one containing `offset`, up to max_bytes (but
 * always the first batch whole, however large, so readers progress). Batches
 * never span segments; a slice stops at a segment's end. offset == end gives a
 * slice of len 0. Errors: STREAM_EOFFSET when offset < log start or > end. */
int stream_log_read(stream_log *log, int64_t offset, size_t max_bytes, stream_log_slice *out);

/* stream_log_read bounded by end_offset (a high watermark): the slice holds
 * only whole batches whose last offset is below end_offset, so a consumer
 * never sees a record at or above it. When the batch holding `offset` ends
 * at or past end_offset (offset >= end_offset, an end_offset inside that
 * batch, or one below the log start) the slice has len 0, pins nothing and
 * is not an error; an end_offset past the log end is the log end. Cheap
 * enough for every fetch: the offset index finds end_offset's batch and at
 * most a few headers are read (none when an index entry already shows the
 * slice ends below it). Errors: as stream_log_read (STREAM_EOFFSET when
 * offset < log start or > end), and read errors finding end_offset's batch.
 * Owner thread. */
int stream_log_read_until(stream_log *log, int64_t offset, size_t max_bytes, int64_t end_offset,
                          stream_log_slice *out);

/* Unpins a slice. Safe on a zeroed slice. */
void stream_log_slice_release(stream_log_slice *s);

/* Convenience: stream_log_read then pread the bytes, appended to `out`; every
 * batch copied is checked with stream_batch_check (STREAM_ECORRUPT, out
 * unchanged, when one fails). */
int stream_log_read_copy(stream_log *log, int64_t offset, size_t max_bytes, stream_buf *out);

/* The first offset (>= log start) whose record timestamp is >= ts, or the log
 * end offset when none is. Finds the segment by largest timestamp, the start
 * position through the time index, the batch by maxTimestamp, then iterates
 * that batch's records (compressed ones too). */
int stream_log_offset_for_time(stream_log *log, int64_t ts, int64_t *offset);

int64_t stream_log_start_offset(const stream_log *log);
int64_t stream_log_end_offset(const stream_log *log);
/* Bytes in all segments. */
int64_t stream_log_size(const stream_log *log);
int stream_log_segment_count(const stream_log *log);

/* Deletes whole segments past retention (never the active one) and advances
 * the log start offset; `now_ms` is the current time. By time: oldest
 * segments while now_ms - largest timestamp > retention_ms (the file's mtime
 * when it has no timestamps). By size: oldest segments while the log stays at
 * or above retention_bytes without them. Returns the number of segments
 * deleted or a negative error. */
int stream_log_apply_retention(stream_log *log, int64_t now_ms);

/* Rolls the active segment if segment_ms has passed (appends also check). */
int stream_log_maybe_roll(stream_log *log, int64_t now_ms);

/* Drops every batch at or after `offset` (rounded to a batch boundary: the
 * batch containing offset is dropped too), deleting later segments; offset >=
 * end is a no-op. The durable offset and the recovery point drop with it
 * (the only way they go down), and the producer state is rebuilt from what
 * remains. Waits for a sync round in progress. Errors:
 * STREAM_EOFFSET when offset < log start, STREAM_EIO. */
int stream_log_truncate_to(stream_log *log, int64_t offset);

/* Sets the log start offset forward (delete-records); whole segments below it
 * are deleted (never the active one). Persisted in log-start-offset. Errors:
 * STREAM_EOFFSET when offset > end, STREAM_EIO. */
int stream_log_advance_start(stream_log *log, int64_t offset);

/*
 * Durability (thread-safe). Every offset below stream_log_durable_offset() is
 * on disk. stream_log_flush fdatasyncs now on the calling thread; the flusher
 * does it on its own thread for many logs, one fdatasync per dirty segment
 * covering every append before it.
 */
int64_t stream_log_durable_offset(stream_log *log);
/* Runs a sync round on the calling thread, in any flush mode: after it
 * returns 0 everything appended before the call is durable. A round already
 * running covers the caller when it can (coalescing). Errors: STREAM_EIO etc.
 * from fdatasync; they latch: the log then refuses appends. */
int stream_log_flush(stream_log *log);
/* Sync rounds that ran fdatasync so far (for tests and metrics: with group
 * commit it grows far slower than the number of flush requests). */
uint64_t stream_log_sync_count(stream_log *log);
/* When the sync round that made `offset` (an end offset: everything below
 * it) durable ran, among the last few rounds that succeeded: *start_ns when
 * it took its snapshot of what was appended, *end_ns when its fdatasyncs
 * were done (CLOCK_MONOTONIC nanoseconds). False when no remembered round
 * is the first to cover it (it is older, or not durable yet). For latency
 * breakdowns (the produce answer's timing, protocol.md 6.1). */
bool stream_log_sync_round(stream_log *log, int64_t offset, int64_t *start_ns, int64_t *end_ns);
/* The latest sync round that made something durable: the durable offset
 * it started from (*from) and reached (*target), and its times as above.
 * False before the first. Called from the durable callback, it is the
 * round that just ran (metrics: sync latency and records per sync). */
bool stream_log_last_round(stream_log *log, int64_t *from, int64_t *target, int64_t *start_ns,
                           int64_t *end_ns);

/* Called after the durable offset of `log` advances, and after a sync round
 * fails (stream_log_io_error is then non-zero; durable_offset is unchanged),
 * on the thread that ran the round (the flusher thread, or a caller of
 * stream_log_flush / stream_log_wait_durable / close); never with a lock
 * held, one call at a time, offsets never decreasing. It must not call
 * stream_log_flush or stream_log_wait_durable (deadlock); uv_async_send is
 * the intended use. */
typedef void (*stream_durable_cb)(stream_log *log, int64_t durable_offset, void *arg);
void stream_log_set_durable_cb(stream_log *log, stream_durable_cb cb, void *arg);

/* Blocks until durable_offset >= offset or timeout_ms passes (STREAM_ETIMEDOUT;
 * -1 waits forever). In GROUP mode asks the flusher first, or runs the round
 * itself when no flusher is attached; in PERIODIC mode waits for the next
 * period; in NEVER mode only a stream_log_flush elsewhere can end the wait.
 * Offsets past the end wait for appends and someone else's request. Returns
 * the latched I/O error if a sync failed. */
int stream_log_wait_durable(stream_log *log, int64_t offset, int timeout_ms);

/*
 * I/O errors. One rule (share/doc/storage.md, "I/O errors"):
 *   - A failed segment write leaves the log as it was: the append fails with
 *     the error, a partial batch is cut off (ftruncate), the next append
 *     simply tries again.
 *   - A failed fdatasync is never retried as if nothing happened: Linux may
 *     have dropped the dirty pages and cleared the error, so later reads
 *     could return data that is not on disk. The log latches the error:
 *     appends fail with it, sync rounds stop, the durable offset stays, and
 *     the durable callback runs so that the owner can fail everything that
 *     waits on that sync. The same latch follows a failed cut of a partial
 *     write or of a truncation.
 *   - stream_log_recover (owner thread) then cuts the log back to its
 *     durable offset - what a successful round put on disk; what was only
 *     written goes, as a power cut would take it - syncs what remains and
 *     clears the latch, so the log takes appends again without a reopen.
 */

/* The latched I/O error, 0 when the log is healthy (thread-safe); errbuf
 * (written only then) says what failed ("fdatasync of segment ... failed:
 * ..."). *failures (may be NULL) gets how many errors were ever latched. */
int stream_log_io_error(stream_log *log, uint64_t *failures, char *errbuf, size_t errbuf_len);

/* Recovers a log whose I/O error is latched, in place: cuts it back to the
 * durable offset (or the log start, if later), cuts a trailing partial batch,
 * fdatasyncs what remains and clears the latch. Returns 0 with *cut_to = -1
 * when nothing was latched; 0 with *cut_to = the new end offset when
 * records were cut, or -1 when none were; else the error (errbuf says what
 * failed) and the latch stays - *cut_to then says whether records were cut
 * before the failure (a later attempt has nothing left to cut). Within a
 * second of a failed attempt it tries nothing and returns STREAM_EAGAIN. Owner thread only; the
 * caller must first fail whatever waits on the log's durability (those offsets may be cut and then
 * reused). */
int stream_log_recover(stream_log *log, int64_t *cut_to, char *errbuf, size_t errbuf_len);

/* The flusher: one thread serving any number of logs. */
typedef struct stream_flusher stream_flusher;
int stream_flusher_new(stream_flusher **out);
/* Stops the thread after a last flush of every attached log (except NEVER
 * ones). Logs still attached are detached; nobody may call
 * stream_log_request_flush / wait_durable on them meanwhile. NULL is a no-op. */
void stream_flusher_free(stream_flusher *f);
/* Attaches a log; the flusher syncs it when asked (GROUP) or every flush_ms
 * (PERIODIC). Detach before closing the log (close detaches too). Detach
 * returns once the flusher no longer uses the log. Errors: STREAM_EINVAL
 * (attached to another flusher), STREAM_ENOMEM. */
int stream_flusher_attach(stream_flusher *f, stream_log *log);
void stream_flusher_detach(stream_flusher *f, stream_log *log);
/* Asks for a sync of everything appended to `log` so far; returns at once.
 * Only GROUP mode with an attached flusher acts on it; requests made while a
 * round runs are all covered by the next round. */
void stream_log_request_flush(stream_log *log);

#endif /* STREAM_LOG_H */
