/*
 * journal.h - the metadata commands a voter applied lately, so that a
 * data-only broker (one that follows the metadata over fetch_metadata, with
 * no copy of the quorum's log) catches up by the changes since its copy
 * instead of the whole image at every change. Not installed; prefix
 * stream__journal_.
 *
 * A voter adds every command its state machine applies (refused ones too:
 * they advance the applied index and the requesters' windows, part of the
 * state), in index order, up to a byte budget; beyond it the oldest go.
 * After a restore (a snapshot) nothing before the snapshot's index is kept.
 * So the journal holds every command applied after `base`: a copy at index
 * `since` >= base becomes the voter's state by applying, in order, the
 * commands after since (Raft gives every voter the same commands at the
 * same indexes, and apply is deterministic). A copy older than base gets
 * the image (the snapshot encoding) instead.
 *
 * Deltas, on the wire (fetch_metadata's `deltas`, share/doc/protocol.md
 * 6.27): one MessagePack array of [index (uint), command (bin)], indexes
 * strictly increasing:
 *
 *   [[index, <command>], [index, <command>], ...]
 *
 * Threads: none; one thread at a time (the loop's).
 */
#ifndef STREAM_CLUSTER_JOURNAL_H
#define STREAM_CLUSTER_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metadata.h"
#include "stream/buf.h"

#define STREAM__JOURNAL_MAX_BYTES (8u << 20) /* commands kept by a voter */

typedef struct stream__journal stream__journal;

/* A new, empty journal keeping up to max_bytes of commands, starting at
 * index 0 (base 0). NULL when out of memory. */
stream__journal *stream__journal_new(size_t max_bytes);
/* Frees j; NULL is a no-op. */
void stream__journal_free(stream__journal *j);

/* Forgets every command: the state is now at index (a restore), so base =
 * index. */
void stream__journal_reset(stream__journal *j, uint64_t index);

/* Keeps the command (len bytes at cmd, copied) applied at index, which is
 * above every index kept and base. The oldest commands go while more than
 * max_bytes are kept (base moves up to the last index dropped); a command
 * larger than max_bytes on its own leaves the journal empty at base =
 * index. Out of memory: the journal is reset to index (nothing lost but
 * the chance of deltas for older copies). */
void stream__journal_add(stream__journal *j, uint64_t index, const uint8_t *cmd, size_t len);

/* The oldest copy's index deltas can bring up to date: base. */
uint64_t stream__journal_base(const stream__journal *j);
/* The index of the last command kept (base when none). */
uint64_t stream__journal_last(const stream__journal *j);

/*
 * Appends to out the deltas that bring a copy at index `since` up to date:
 * every command kept with an index above since (an empty array when none).
 * Returns 0, STREAM_ENOENT when since is below base (the copy needs the
 * image), STREAM_ETOOLARGE when the deltas would pass max_bytes (the image
 * is then the better answer), or STREAM_ENOMEM; out is unchanged on
 * failure.
 */
int stream__journal_since(const stream__journal *j, uint64_t since, size_t max_bytes,
                          stream_buf *out);

/*
 * Applies deltas (len bytes at p, hostile bytes are fine) to md: first
 * checks the whole shape (an array of [uint index, bin command], indexes
 * strictly increasing and the first above md's applied index), then
 * applies the commands in order (stream__meta_apply: each command's verdict
 * is its own business, as on a voter). Returns 0; STREAM_ECORRUPT (errbuf
 * says what) when the shape is wrong, with md unchanged; STREAM_ENOMEM
 * when memory ran out midway (the commands before stay applied, md is
 * consistent at the last one; ask again from there).
 */
int stream__journal_apply(stream__meta *md, const uint8_t *p, size_t len, char *errbuf,
                          size_t errbuf_len);

#endif /* STREAM_CLUSTER_JOURNAL_H */
