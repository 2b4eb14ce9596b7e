/*
 * leader_epoch.h - the leader-epoch cache of a partition: which leader epoch
 * began at which offset (internal: prefix stream__; log.c owns one cache per
 * partition, stream/log.h has the public calls over it).
 *
 * The idea is Kafka's (KIP-101, KIP-279). Every batch a leader appends
 * carries the leader's epoch in partitionLeaderEpoch; the cache keeps one
 * entry per epoch, the offset of its first batch:
 *
 *   epoch  start_offset
 *       0             0     epoch 0 wrote offsets 0..99
 *       2           100     epoch 2 wrote 100..249 (epoch 1 wrote nothing)
 *       3           250     epoch 3 writes from 250 on
 *
 * so that a replica can ask "where did your log stop being epoch E?" and
 * cut off a tail that no leader of a later epoch kept. Entries ascend
 * strictly in both epoch and start offset; every start offset is below the
 * log end (an entry exists only once a batch of its epoch does).
 *
 * Persisted in the partition directory as "leader-epoch-checkpoint", the
 * same text file Kafka writes:
 *
 *   0\n                        version (always 0)
 *   <count>\n                  entries that follow
 *   <epoch> <start_offset>\n   count times, ascending
 *
 * Numbers are plain decimal: digits only, no sign, no leading zero (but
 * "0"), one space between the two of a line, "\n" after every line and
 * nothing after the last. An epoch is 0..INT32_MAX, a start offset
 * 0..STREAM_LOG_MAX_OFFSET, and both strictly ascend. Anything else, or a
 * file over STREAM__EPOCH_FILE_MAX bytes, is damaged (what the log then does
 * is in stream/log.h). The file is replaced atomically (temp file, fsync,
 * rename, fsync of the directory), never edited in place.
 *
 * Threads: the owner thread of the log, like every other owner field.
 */
#ifndef STREAM_LEADER_EPOCH_H
#define STREAM_LEADER_EPOCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream/buf.h"

#define STREAM__EPOCH_FILE     "leader-epoch-checkpoint"
#define STREAM__EPOCH_FILE_MAX (16 << 20) /* about 500,000 entries: never legitimately */

typedef struct stream__epoch_entry {
    int32_t epoch;        /* a leader epoch, >= 0 */
    int64_t start_offset; /* offset of the first batch appended under it */
} stream__epoch_entry;

typedef struct stream__epoch_cache {
    stream__epoch_entry *entries; /* ascending (strictly) by epoch and by start offset */
    uint32_t n;                   /* entries in use */
    uint32_t cap;                 /* entries allocated */
} stream__epoch_cache;

/* An empty cache (no allocation). */
void stream__epoch_cache_init(stream__epoch_cache *c);
/* Frees the entries; the cache is empty and usable again. */
void stream__epoch_cache_release(stream__epoch_cache *c);

/* The newest epoch, -1 when empty. */
int32_t stream__epoch_cache_latest(const stream__epoch_cache *c);

/* Records that `epoch` began at start_offset, when epoch is newer than the
 * latest (else nothing changes). Trailing entries that start at or past
 * start_offset go first (they describe batches that no longer exist), so the
 * order stays strict. Returns 1 when added, 0 when not (epoch < 0,
 * start_offset < 0 or epoch not newer), STREAM_ENOMEM. */
int stream__epoch_cache_assign(stream__epoch_cache *c, int32_t epoch, int64_t start_offset);

/* Removes the last entry (undoing an assign whose batch was not written). */
void stream__epoch_cache_drop_last(stream__epoch_cache *c);

/* Removes entries starting at or past end (a truncation of the log to
 * end). Returns true when any went. */
bool stream__epoch_cache_truncate_end(stream__epoch_cache *c, int64_t end);

/* Removes entries wholly below the log start `start`: those whose successor
 * starts at or below it. The entry covering `start` stays with its start
 * offset unchanged (it may lie below the log start). Returns true when any
 * went. */
bool stream__epoch_cache_truncate_start(stream__epoch_cache *c, int64_t start);

/* OffsetForLeaderEpoch on the cache (stream/log.h,
 * stream_log_epoch_end_offset): the largest epoch <= `epoch` and where it
 * ended - the next entry's start, or log_end for the latest. -1 and -1 when
 * every entry is newer than `epoch` or the cache is empty. */
void stream__epoch_cache_end_offset(const stream__epoch_cache *c, int32_t epoch, int64_t log_end,
                                    int32_t *found_epoch, int64_t *end_offset);

/* Parses a checkpoint file's bytes (the format above) into c, replacing its
 * entries. Returns 0, STREAM_ECORRUPT (c unchanged) or STREAM_ENOMEM (c
 * unchanged). Reads exactly len bytes of p, nothing past it. */
int stream__epoch_cache_parse(stream__epoch_cache *c, const uint8_t *p, size_t len);

/* Appends the checkpoint text of c to out: what parse reads back, byte for
 * byte (parse then format gives the input again). Returns 0 or
 * STREAM_ENOMEM. */
int stream__epoch_cache_format(const stream__epoch_cache *c, stream_buf *out);

/* Loads STREAM__EPOCH_FILE from the directory dirfd into c. Returns 0,
 * STREAM_ENOENT (no file; c unchanged), STREAM_ECORRUPT (damaged or too
 * large; c unchanged), a read error, or STREAM_ENOMEM. */
int stream__epoch_cache_read(stream__epoch_cache *c, int dirfd);

/* Replaces STREAM__EPOCH_FILE in dirfd with c's entries, atomically (temp
 * file, fsync, rename, fsync of the directory). Returns 0, STREAM_ENOMEM or
 * the I/O error (the temp file removed; the old file as it was, or already
 * replaced when only the directory's fsync failed). */
int stream__epoch_cache_write(const stream__epoch_cache *c, int dirfd);

#endif /* STREAM_LEADER_EPOCH_H */
