/*
 * cleaner.h - log compaction: rewriting a partition log's closed segments so
 * that each key keeps only its record with the highest offset.
 *
 * A log whose configuration has cleanup_compact (cleanup.policy compact or
 * compact,delete) is cleaned in passes. A pass:
 *
 *   1. takes the closed, durable segments whose records are all older than
 *      min_compaction_lag_ms (the active segment is never cleaned);
 *   2. builds a map key -> highest offset over the dirty part of them (from
 *      the clean offset, below which an earlier pass left the log clean),
 *      stopping at a segment boundary when the map is full (its size is at
 *      most the dedupe buffer's: 24 bytes a key, 128-bit key hashes; beside
 *      it a bit per dirty offset, at most dedupe-buffer-bytes bits, marks
 *      the records a later one of their key replaces), so a log with more
 *      keys (or offsets) than fit is cleaned in several passes;
 *   3. groups consecutive segments whose sizes add up to at most
 *      segment_bytes (as Kafka does: the segments earlier passes shrank are
 *      merged, so a compacted log does not keep a file per original segment
 *      forever) and rewrites each group into `<base>.log.cleaned` (base: its
 *      first segment's) keeping a record when no later record of its key is
 *      in the map. Records keep their offsets (holes are allowed); a batch
 *      keeps its baseOffset, lastOffsetDelta, producer fields and codec
 *      (recompressed when records went), and its CRC is recomputed. A batch
 *      left without records is dropped, except the last batch of a group (so
 *      segments still chain base to base) and the last batch of each
 *      producer id (so idempotent producers are still deduplicated after a
 *      reopen): those stay as batches of 0 records. Keyless records are
 *      dropped (Kafka does too).
 *   4. swaps the cleaned files in (see "Crash safety") and moves the clean
 *      offset to where the map ended.
 *
 * Tombstones (null values) delete their key. The first pass that keeps a
 * tombstone stamps its batch with a delete horizon, now + delete_retention_ms
 * (Kafka's KIP-534: attribute bit 6, the horizon in baseTimestamp, the
 * records' timestamp deltas rewritten against it, so every record's
 * timestamp reads as before); a pass after the horizon drops the tombstone.
 *
 * Crash safety. Cleaned files are written aside as `<base>.log.cleaned` and
 * fdatasync'd; then, in ascending base order, each is renamed to
 * `<base>.log.swap` and the directory fsync'd: a .swap file is a complete,
 * durable segment. Then, group by group, the index files of the group's
 * segments are removed, the .log files of the segments merged into its
 * first, and the .swap renamed over the first's .log; new indexes are
 * written. Opening a log (stream__clean_recover) deletes every .cleaned file
 * and completes the .swap files in ascending order: one whose .log still
 * exists removes the .log files it merged (those based past its base and
 * below its last batch's end) and replaces its .log; one whose .log is gone
 * (deleted, or merged by an earlier one) is deleted. A kill -9 at any point
 * leaves for each group its old segments or its new one, never a gap or a
 * duplicate offset; swapping in ascending order keeps a removed tombstone
 * from letting an older value of its key reappear.
 *
 * Threads. A pass has three steps so that the long part runs off the log's
 * owner thread: _begin (owner: picks the segments and pins them), _run (any
 * thread: reads the pinned segments, writes the .cleaned files; touches
 * nothing of the log), _finish (owner: checks the segments are still the
 * log's, unchanged, and swaps). stream_log_clean does all three.
 */
#ifndef STREAM_CLEANER_H
#define STREAM_CLEANER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream/log.h"

/* Batch attribute bit 6: baseTimestamp holds the delete horizon (KIP-534). */
#define STREAM_BATCH_ATTR_DELETE_HORIZON 0x40
/* Bytes of the key map per key. */
#define STREAM_CLEANER_MAP_ENTRY_BYTES 24

/* The broker-wide cleaner settings (log.cleaner.*). */
typedef struct stream_cleaner_opts {
    int64_t dedupe_buffer_bytes;     /* memory of the key map (>= 4096) */
    int64_t io_max_bytes_per_second; /* read + written per second; -1: no limit */
} stream_cleaner_opts;

/* Fills opts with the defaults: 128 MiB map, no I/O limit. */
void stream_cleaner_opts_init(stream_cleaner_opts *opts);

/* What passes did. */
typedef struct stream_clean_stats {
    int passes;                 /* passes that ran */
    int segments_rewritten;     /* segments swapped for a cleaned copy (merged ones each count) */
    int64_t bytes_read;         /* segment bytes read (map + rewrite) */
    int64_t bytes_written;      /* bytes of cleaned segments */
    int64_t records_removed;    /* records dropped (superseded, keyless, expired tombstones) */
    int64_t tombstones_removed; /* of which tombstones past their horizon */
    int64_t clean_offset;       /* after the last pass: the log is clean below it */
} stream_clean_stats;

/* A log's compaction state, for describe and for choosing work. */
typedef struct stream_log_clean_status {
    int64_t cleanable_bytes; /* bytes of the closed segments a pass may take now */
    int64_t dirty_bytes;     /* of which at or past the clean offset */
    int32_t dirty_ratio_ppm; /* dirty / cleanable in millionths (0 when nothing) */
    int64_t clean_offset;    /* below it the log is clean */
    int64_t last_clean_ms;   /* wall clock of the last finished pass, -1: none since open */
    bool due;                /* a pass should run: compact policy, dirty bytes, and the
                                ratio at min_cleanable_dirty_ratio or a dirty segment
                                older than max_compaction_lag_ms */
} stream_log_clean_status;

/* The log's compaction state at now_ms (owner thread). Never fails. */
void stream_log_clean_status_get(stream_log *log, int64_t now_ms, stream_log_clean_status *out);

typedef struct stream_log_clean_job stream_log_clean_job;

/* Step 1 (owner thread): chooses what a pass cleans and pins it. *out is
 * NULL when there is nothing to clean (not compacted, no dirty closed
 * segment, a pass already begun). Errors: STREAM_ENOMEM, STREAM_EIO (reading
 * the clean-offset file). */
int stream_log_clean_begin(stream_log *log, int64_t now_ms, const stream_cleaner_opts *opts,
                           stream_log_clean_job **out);
/* Step 2 (any thread, one at a time per job): builds the key map and writes
 * the .cleaned files. Errors: STREAM_EIO/ENOSPC (errbuf names the file),
 * STREAM_ECORRUPT (a batch that does not decode), STREAM_ENOMEM (the map);
 * on error the job is to be given to _finish, which discards it. */
int stream_log_clean_run(stream_log_clean_job *job, char *errbuf, size_t errbuf_len);
/* Step 3 (owner thread): swaps the cleaned segments in when the pass ran and
 * its segments are still the log's and unchanged (else discards it: 0, and
 * nothing changed), then frees the job. Adds to *st (may be NULL). Errors:
 * the run's error, or STREAM_EIO/ENOSPC from the renames (errbuf says
 * which); a failed swap leaves files that the next open completes. */
int stream_log_clean_finish(stream_log *log, stream_log_clean_job *job, int run_rc,
                            stream_clean_stats *st, char *errbuf, size_t errbuf_len);
/* Asks a running _run to stop soon (it then fails with STREAM_ECLOSED and
 * _finish discards the job). Any thread. */
void stream_log_clean_cancel(stream_log_clean_job *job);
/* Frees a job that will not be finished (its log is gone), deleting its
 * .cleaned files. NULL is a no-op. */
void stream_log_clean_abort(stream_log_clean_job *job);

/* How much lower than its caller's a cleaning thread's CPU priority is. */
#define STREAM_CLEANER_NICE_INCREMENT 5

/*
 * Makes the calling thread a background one for cleaning: its nice value
 * STREAM_CLEANER_NICE_INCREMENT higher (at most 19), its I/O priority the
 * lowest of the best-effort class, so that under contention for CPU or disk
 * producers and consumers go first and the cleaner takes what is left (on
 * an idle core it runs at full speed). An unprivileged thread cannot take
 * either back: call it only on a thread that runs passes and then ends.
 * Linux only. Errors: stream_err_from_errno of setpriority's (the I/O
 * priority is a hint: its failure is ignored).
 */
int stream_cleaner_thread_background(void);

/* Passes until the closed segments are clean (or max_passes ran; <= 0: no
 * limit), on the calling (owner) thread. Returns the number of passes or an
 * error as the steps above. */
int stream_log_clean(stream_log *log, int64_t now_ms, const stream_cleaner_opts *opts,
                     int max_passes, stream_clean_stats *st, char *errbuf, size_t errbuf_len);

#endif /* STREAM_CLEANER_H */
