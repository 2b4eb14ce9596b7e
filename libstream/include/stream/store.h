/*
 * store.h - the data directory: topics, their partition logs, their settings.
 *
 * Layout of a data directory:
 *
 *   <data>/.lock              flock()ed by the store that has the directory
 *                             open; holds that process's pid (for messages)
 *   <data>/<topic>.topic      the topic's metadata; the topic exists exactly
 *                             when this file does. key=value lines (the config
 *                             file syntax, see config.h):
 *                                 version=1
 *                                 partitions=<count>
 *                                 <topic setting>=<value>   (its overrides)
 *   <data>/<topic>-<n>/       partition n's log (log.h), 0 <= n < count
 *   <data>/.deleted/<n>/      partitions of a deleted topic on their way out
 *                             (one directory per delete, emptied in the
 *                             background by the store's trash thread)
 *   <data>/.<topic>.tmp       a metadata file being written
 *
 * Names fit NAME_MAX: a topic name is at most 249 bytes, so "<topic>.topic"
 * is at most 255 and "<topic>-9999" at most 254. (Kafka renames a deleted
 * partition beside itself; a suffix would pass NAME_MAX, hence the .deleted/
 * directory.) Other entries in <data> are left alone.
 *
 * Crash safety: every step is ordered so that an interrupted one is either
 * invisible or finished by the next open.
 *   create  partition directories and their empty logs first, unsynced,
 *           then one syncfs(2) of the data directory's file system for all
 *           of them, then the metadata file (temp file, fdatasync, rename,
 *           fsync <data>): the rename commits. Three syncs for any count.
 *   delete  unlink the metadata (fsync <data>): that commits; then the
 *           partition directories move into a new .deleted/<n> (fsync
 *           <data>), and the trash thread removes them after the answer.
 *   alter   the metadata file is replaced atomically, then the logs are told.
 *   add partitions (N -> M)  as create, for partitions N..M-1 only: their
 *           directories and empty logs, one syncfs, then the metadata file
 *           rewritten with partitions=M (temp file, fdatasync, rename, fsync
 *           <data>): the rename commits. Before it the new directories are
 *           strays (n >= N) that the next open removes, so a crash leaves N
 *           partitions or M, never a topic in between.
 * At open the store removes leftovers: .deleted/ and its contents (handed to
 * the trash thread, so a restart does not wait for them), directories
 * named "<topic>-<n>.deleted" (an older convention, also handy for scripts),
 * temp files, and "stray" partition directories - named like one but with no
 * metadata file, or with n >= the topic's count. Each removal is recorded as a
 * note (stream_store_note). A metadata file that cannot be parsed fails the
 * open: guessing would mean deleting its partitions as strays.
 *
 * Threads: a store and its logs belong to one thread (the broker's loop),
 * with two exceptions. The disk work of a create or delete
 * (stream_store_job_run) may run on another thread while the owner goes on
 * using the store: a topic with thousands of partitions takes seconds to
 * make or remove, which a broker must not spend on its loop. And the store
 * has a thread of its own, started on the first delete (or at open, when
 * .deleted/ holds leftovers), that removes the trash; close stops it. The
 * only file lock is the directory lock, which keeps a second broker (or a
 * second store in the same process) off the directory.
 *
 * Topic names: [a-zA-Z0-9._-]{1,249}, not "." or "..". Names starting "__"
 * are internal (e.g. __consumer_offsets): only created when the caller says
 * so, and flagged in stream_topic.
 */
#ifndef STREAM_STORE_H
#define STREAM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream/config.h"
#include "stream/log.h"

#define STREAM_TOPIC_NAME_MAX 249

/* A topic as the store holds it. Every field is read-only for callers; the
 * pointer stays valid until the topic is deleted or the store closed. */
typedef struct stream_topic {
    char *name;                    /* the topic's name */
    int32_t partition_count;       /* partitions 0 .. partition_count - 1 */
    bool internal;                 /* the name starts with "__" */
    stream_log **partitions;       /* partition_count open logs, by partition id;
                                      owned by the store */
    stream_config *overrides;      /* the topic's own settings (a topic config,
                                      see stream_config_new_topic); only the keys
                                      set in it override the broker's */
    stream_log_config log_config;  /* the effective settings given to the logs:
                                      broker config + overrides */
    stream_log_recovery *recovery; /* partition_count entries: what
                                      stream_log_open reported at store open
                                      (zero for partitions created since) */
} stream_topic;

typedef struct stream_store stream_store;

/* Checks a topic name (len bytes, not NUL-terminated: as borrowed from a
 * frame) against the grammar above, the one for the wire and the disk.
 * Returns 0 or STREAM_EBADNAME with errbuf saying which rule failed (empty,
 * too long, ".", "..", or the first bad character). Internal ("__") names
 * pass. */
int stream_topic_name_check(const char *name, size_t len, char *errbuf, size_t errbuf_len);
/* True when name starts with "__". */
bool stream_topic_is_internal(const char *name, size_t len);
/* stream_topic_name_check of a C string (NULL checks as ""). Says nothing
 * about "__": see stream_store_create_topic. */
int stream_topic_name_valid(const char *name, char *errbuf, size_t errbuf_len);

/*
 * Opens the data directory `data_dir` (NULL: stream_config_data_dir(cfg)),
 * creating it and its parents when missing, locks it, cleans up leftovers (see
 * above) and opens every partition log of every topic. `broker_cfg` (NULL:
 * defaults) is copied: its TOPIC-scope values are the defaults of every topic.
 * Errors: STREAM_EAGAIN (another store holds the directory; errbuf names the
 * directory and the holder's pid), STREAM_EBADCONFIG (a metadata file that
 * cannot be parsed, errbuf naming file:line), STREAM_EIO/ENOSPC/ENOENT (errbuf
 * naming the path), any error of stream_log_open (errbuf naming the partition),
 * STREAM_ENOMEM. On error nothing stays open or locked.
 */
int stream_store_open(const char *data_dir, const stream_config *broker_cfg, stream_store **out,
                      char *errbuf, size_t errbuf_len);

/* Closes every log (stream_log_close: flush, checkpoint, clean-shutdown
 * marker, detach from its flusher), unlocks the directory and frees the
 * store. NULL is a no-op. */
void stream_store_close(stream_store *s);

/* The directory the store has open (absolute or as given). */
const char *stream_store_dir(const stream_store *s);

/* Notes on what open cleaned up or repaired ("removed stray partition
 * directory x-3", ...), for the broker to log: i in [0, count). The strings
 * live as long as the store. */
size_t stream_store_note_count(const stream_store *s);
const char *stream_store_note(const stream_store *s, size_t i);

/*
 * Creates topic `name` with `partitions` partitions (-1: the broker config's
 * num.partitions) and the settings set in `overrides` (NULL: none; a topic
 * config from stream_config_new_topic, copied). `internal` must be true
 * exactly when the name starts with "__".
 * *out (may be NULL) gets the new topic. Errors: STREAM_EBADNAME (invalid name,
 * or "__" without `internal`), STREAM_EINVAL (partitions not in [1, 10000] or
 * `internal` without "__", `overrides` not a topic config),
 * STREAM_ETOPICEXISTS, STREAM_EBADCONFIG (a log that refuses the settings),
 * STREAM_EIO/ENOSPC, STREAM_ENOMEM. On error nothing of the topic remains.
 * A partition holds two descriptors while open: a create whose partitions
 * (with those of creates still running) would pass the process's open-file
 * limit (RLIMIT_NOFILE, less a reserve of 64) is refused up front with
 * STREAM_EINVAL, errbuf naming the limit and how to raise it.
 */
int stream_store_create_topic(stream_store *s, const char *name, int32_t partitions,
                              const stream_config *overrides, bool internal, stream_topic **out,
                              char *errbuf, size_t errbuf_len);

/*
 * Deletes topic `name`: closes its logs (unwritten: stream_log_discard) and
 * moves its directories into the trash, which a thread of the store empties
 * later. The caller first finishes or fails operations waiting on its logs;
 * the stream_topic and its logs are freed. Errors: STREAM_ENOTOPIC;
 * STREAM_EIO when the metadata file cannot be removed (the topic is
 * unchanged). Once the metadata file is gone the delete completes: what
 * cannot be moved or removed now is finished by the next open.
 */
int stream_store_delete_topic(stream_store *s, const char *name, char *errbuf, size_t errbuf_len);

/*
 * A create or delete in three steps, so that the disk work runs off the
 * owner's thread:
 *
 *   _create_begin / _delete_begin   owner thread: the checks; reserves the
 *                                   name until the finish (another create or
 *                                   delete of it fails with
 *                                   STREAM_ETOPICEXISTS / STREAM_ENOTOPIC).
 *                                   A delete takes the topic out of the
 *                                   store at once: the caller stops using
 *                                   its logs (the run closes them).
 *   stream_store_job_run            any thread, exactly once: the disk work.
 *                                   Touches nothing of the store but its
 *                                   directory, so the owner may meanwhile
 *                                   use the store, begin and finish other
 *                                   jobs.
 *   stream_store_job_finish         owner thread: frees the job and returns
 *                                   the result as stream_store_create_topic
 *                                   / _delete_topic would have (errbuf
 *                                   written on error). A create's topic
 *                                   appears in the store (*out); a delete
 *                                   that failed before its commit puts the
 *                                   topic back, logs untouched.
 *
 * Every job begun is run and finished before stream_store_close. The arguments
 * and errors of _create_begin are those of stream_store_create_topic; those of
 * _delete_begin are STREAM_ENOTOPIC, STREAM_EAGAIN (partitions are being
 * added to it) and STREAM_ENOMEM, *topic (may be NULL)
 * getting the topic taken out, readable until the run starts.
 */
typedef struct stream_store_job stream_store_job;
int stream_store_create_begin(stream_store *s, const char *name, int32_t partitions,
                              const stream_config *overrides, bool internal, stream_store_job **out,
                              char *errbuf, size_t errbuf_len);
int stream_store_delete_begin(stream_store *s, const char *name, stream_topic **topic,
                              stream_store_job **out, char *errbuf, size_t errbuf_len);
void stream_store_job_run(stream_store_job *j);
int stream_store_job_finish(stream_store_job *j, stream_topic **out, char *errbuf,
                            size_t errbuf_len);

/*
 * Adds partitions to topic `name` so that it has `partitions` (Kafka's
 * CreatePartitions: the count only grows). The new partitions are empty
 * logs with the topic's settings; the old ones are untouched and stay in
 * use throughout. *out (may be NULL) gets the topic, whose partitions array
 * is a new one (pointers into the old are stale; the logs are the same).
 * Errors: STREAM_ENOTOPIC; STREAM_EINVAL when `partitions` is not larger
 * than the current count (errbuf says both; partitions are never removed)
 * or passes 10000, or the open-file limit would be passed (as for create);
 * STREAM_EAGAIN while another add_partitions of the topic runs;
 * STREAM_EIO/ENOSPC, STREAM_ENOMEM. On error the topic is as it was.
 *
 * As a job (see above): _begin checks and reserves the topic (a delete or
 * alter of it, or a second add_partitions, fails with STREAM_EAGAIN until
 * the finish); the run makes the new logs and commits the metadata file;
 * stream_store_job_finish hands them to the topic (*out) or reports the
 * error.
 */
int stream_store_add_partitions(stream_store *s, const char *name, int32_t partitions,
                                stream_topic **out, char *errbuf, size_t errbuf_len);
int stream_store_add_partitions_begin(stream_store *s, const char *name, int32_t partitions,
                                      stream_store_job **out, char *errbuf, size_t errbuf_len);

/* Waits until the trash thread has removed everything handed to it so far
 * (tests; a broker never waits for it). */
void stream_store_wait_trash(stream_store *s);

/*
 * Replaces topic `name`'s overrides with the set keys of `overrides` (NULL or
 * a config with nothing set: back to the broker's values), persists them, and
 * gives every partition log the new effective settings (stream_log_set_config).
 * To change one key, stream_config_dup the topic's overrides, set or unset
 * it, and pass the copy. Errors: STREAM_ENOTOPIC, STREAM_EINVAL (`overrides`
 * not a topic config), STREAM_EBADCONFIG (a log refuses the settings),
 * STREAM_EIO/ENOSPC, STREAM_ENOMEM, STREAM_EAGAIN (partitions are being
 * added to it); on any error nothing changed.
 */
int stream_store_alter_topic(stream_store *s, const char *name, const stream_config *overrides,
                             char *errbuf, size_t errbuf_len);

/* The topic called `name`, or NULL. O(log topics). */
stream_topic *stream_store_topic(const stream_store *s, const char *name);

/* The log of partition `partition` of `topic`. Errors: STREAM_ENOTOPIC,
 * STREAM_ENOPART. */
int stream_store_log(const stream_store *s, const char *topic, int32_t partition, stream_log **out);

/* Topics sorted by name (strcmp order): i in [0, count). Indexes shift when
 * topics are created or deleted. */
size_t stream_store_topic_count(const stream_store *s);
stream_topic *stream_store_topic_at(const stream_store *s, size_t i);

#endif /* STREAM_STORE_H */
