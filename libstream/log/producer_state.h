/*
 * producer_state.h - what a partition remembers about idempotent producers,
 * so that a batch resent after a lost answer is stored once and a batch that
 * arrives out of order is refused (internal: prefix stream__; log.c owns one
 * state per partition, the broker checks batches against it).
 *
 * The idea is Kafka's. An idempotent producer has a producer id (from the
 * broker's init_producer_id, unique for the life of the data directory) and
 * an epoch, and numbers its records per partition: each batch carries the
 * sequence number of its first record (baseSequence), and the next batch
 * starts where it ended (sequences wrap from INT32_MAX to 0). Per partition
 * and producer id the state keeps
 *
 *   epoch                 the producer's current epoch on this partition
 *   the last 16 batches   first and last sequence, base offset, offset delta
 *   last_update_ms        wall clock of the last append (for expiry)
 *
 * and a batch (producerId >= 0) is judged by stream__producer_state_check:
 *
 *   unknown producer id       first sequence 0: append; else EUNKNOWNPRODUCER
 *   epoch older than known    EPRODUCERFENCED
 *   epoch newer than known    first sequence 0: append (the epoch starts
 *                             afresh); else EOUTOFORDERSEQ
 *   same epoch:
 *     same first and last sequence as one of the last 16 batches
 *                             a duplicate: nothing is written, the answer is
 *                             that batch's original base offset
 *     first = last sequence + 1
 *                             append
 *     wholly at or below the last sequence (modulo 2^31, within 2^30)
 *                             EDUPLICATESEQ: appended before, but too long
 *                             ago to know its offset
 *     anything else           EOUTOFORDERSEQ (a gap: an earlier batch is
 *                             missing; the producer resends in order)
 *
 * Five is the cap on batches a producer has in flight per partition, so a
 * resend always finds its original among them. Batches without a producer id
 * (-1) bypass all of this.
 *
 * Durability. The state is a function of the log: stream__producer_state_update
 * runs for every batch appended (stream_log_append) and for every batch
 * replayed from the log on open. A snapshot file "<offset>.snapshot" (20
 * digits, in the partition directory) holds the state as of every batch
 * below <offset>; one is written when a segment rolls and on a clean close,
 * and the newest two are kept. Opening loads the newest snapshot at or below
 * the log end (later ones describe batches a crash or a truncation took
 * away, and are deleted) and replays the batch headers after it, so after a
 * kill -9 a resent batch that landed before the crash is still recognised.
 * Snapshots are written like the other metadata files (temp file, fsync,
 * rename, fsync of the directory), off the per-batch path: once per segment
 * roll and at close. A damaged one still fails its CRC and the next older
 * one (or the whole log) is replayed instead, and one whose offset is past
 * the recovered log end is never used.
 *
 *   snapshot file (big-endian):
 *     magic "SPS1" | version u16 (1) | reserved u16 | offset i64 | count u32
 *     count entries:
 *       producerId i64 | epoch i16 | nbatches u8 (1..5) | reserved u8 |
 *       lastUpdateMs i64 |
 *       nbatches x (firstSeq i32 | lastSeq i32 | baseOffset i64 | lastOffsetDelta i32)
 *     crc u32: CRC-32C of every byte before it
 *
 * Expiry: an entry goes when the log start passes its last batch (retention)
 * or when it has not appended for STREAM__PRODUCER_EXPIRATION_MS (Kafka's
 * producer.id.expiration.ms default, one day); its producer's next batch then
 * gets EUNKNOWNPRODUCER unless it starts at sequence 0.
 *
 * Threads: the owner thread of the log, like every other owner field.
 */
#ifndef STREAM_PRODUCER_STATE_H
#define STREAM_PRODUCER_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream/batch.h"

/* Batches kept per producer: a resend of any of them is answered with its
 * offset, so a producer may have this many requests in flight per partition
 * (Kafka keeps 5; 16 lets an acks=all producer keep sending through a slow
 * fdatasync: stream-bench e2e -v, issue 20). About 400 bytes per producer
 * and partition. A snapshot holds up to this many per producer; an older
 * build refuses one with more than 5 (and rebuilds from the batches). */
#define STREAM__PRODUCER_BATCHES       16
#define STREAM__PRODUCER_EXPIRATION_MS (24LL * 3600 * 1000) /* idle producers are forgotten */
#define STREAM__PRODUCER_DUPLICATE     1                    /* check: already appended */

typedef struct stream__producer_state stream__producer_state;

/* An empty state; NULL on ENOMEM. */
stream__producer_state *stream__producer_state_new(void);
/* NULL is a no-op. */
void stream__producer_state_free(stream__producer_state *ps);
/* Forgets every producer. */
void stream__producer_state_clear(stream__producer_state *ps);
/* Producers known. */
size_t stream__producer_state_count(const stream__producer_state *ps);

/* Judges the batch whose header is `info` (producer_id >= 0) by the rules at
 * the top, without changing what is remembered. Returns 0 (append it),
 * STREAM__PRODUCER_DUPLICATE with *dup_base_offset set (write nothing, answer
 * with that offset), or STREAM_EOUTOFORDERSEQ / EDUPLICATESEQ /
 * EUNKNOWNPRODUCER / EPRODUCERFENCED, or STREAM_ECORRUPT (a producer id with
 * a negative epoch or sequence), with errbuf saying which numbers disagree.
 * A 0 answer also reserves room, so the update after the append cannot fail
 * for memory (STREAM_ENOMEM when it cannot reserve). */
int stream__producer_state_check(stream__producer_state *ps, const stream_batch_info *info,
                                 int64_t *dup_base_offset, char *errbuf, size_t errbuf_len);

/* Records the batch `info` (producer_id >= 0; base_offset is the offset it
 * was given) as appended at wall time now_ms: a new producer or epoch starts
 * a fresh entry, the batch joins the last 16. Never judges (replay trusts the
 * log). Returns 0 or STREAM_ENOMEM (only when check did not reserve). */
int stream__producer_state_update(stream__producer_state *ps, const stream_batch_info *info,
                                  int64_t now_ms);

/* Makes room for one more producer, so that the update after an append of
 * a batch nobody checked (a replica's) cannot fail for memory. Returns 0 or
 * STREAM_ENOMEM. */
int stream__producer_state_reserve(stream__producer_state *ps);

/* Forgets producers whose last batch ends below log_start_offset, and, when
 * max_idle_ms >= 0, those that have not appended since now_ms - max_idle_ms.
 * Returns how many went. */
size_t stream__producer_state_expire(stream__producer_state *ps, int64_t log_start_offset,
                                     int64_t now_ms, int64_t max_idle_ms);

/* Replaces the file `name` in directory dirfd with len bytes at data, so
 * that a crash leaves the old file or the new one whole: written to `tmp`,
 * fsync'd, renamed over name, and the directory fsync'd (the log folder's
 * small metadata files: snapshots, the leader-epoch checkpoint). 0, or the
 * error (tmp is removed then). */
int stream__file_replace_at(int dirfd, const char *tmp, const char *name, const uint8_t *data,
                            size_t len);

/* Writes "<offset>.snapshot" in the directory dirfd (temp file, fsync,
 * rename, fsync of the directory) and deletes older snapshots but one.
 * Returns 0, STREAM_ENOMEM or the I/O error (the temp file removed, older
 * snapshots kept). */
int stream__producer_state_write_snapshot(const stream__producer_state *ps, int dirfd,
                                          int64_t offset);
/* The same; without `sync` neither the file nor the directory is fsync'd
 * (a batched close syncs the file system once for many logs). */
int stream__producer_state_write_snapshot_at(const stream__producer_state *ps, int dirfd,
                                             int64_t offset, bool sync);

/* Clears ps, deletes snapshots above max_offset, and loads the newest one at
 * or below it that reads back whole (a bad one is skipped; deleted too).
 * *offset gets the loaded snapshot's offset, or -1 when none was (ps stays
 * empty: replay the whole log). Returns 0, STREAM_ENOMEM, or an error
 * listing the directory. */
int stream__producer_state_load(stream__producer_state *ps, int dirfd, int64_t max_offset,
                                int64_t *offset);

/* Snapshot offsets present in dirfd, ascending, at most max; returns how
 * many (for tests and tools), or a negative error. */
int stream__producer_state_list_snapshots(int dirfd, int64_t *offsets, int max);

/*
 * Producer ids. The broker hands out ids from blocks recorded in the data
 * directory file "producer-ids" ("<first id of the next block>\n", replaced
 * atomically: temp file, fsync, rename, fsync of the directory) before any
 * id of a block is issued, so a restart, even after kill -9, starts past
 * every id ever issued. Ids of a block not used up are skipped.
 */
#define STREAM__PRODUCER_ID_BLOCK 1000

typedef struct stream__producer_ids {
    int64_t next;  /* the next id to hand out */
    int64_t limit; /* the first id of the next block (what the file says) */
    bool loaded;   /* next and limit come from the file */
} stream__producer_ids;

/* Hands out the next id of the data directory data_dir into *id. Returns 0,
 * or an I/O error with errbuf naming the file. */
int stream__producer_ids_next(stream__producer_ids *ids, const char *data_dir, int64_t *id,
                              char *errbuf, size_t errbuf_len);

#endif /* STREAM_PRODUCER_STATE_H */
