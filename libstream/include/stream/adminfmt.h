/*
 * adminfmt.h - admin results (client.h) as human tables and as JSON.
 *
 * stream-topics prints these and stream-shell will too, so both speak the
 * same tables and, above all, the same JSON: the field names below are a
 * contract with scripts (documented in stream-topics(1)); add fields, never
 * rename or remove them.
 *
 * JSON documents are compact, one per call, followed by "\n". Numbers a
 * broker did not report (-1 in client.h) are written as null. An error is
 * always the object {"code": "ENOTOPIC", "message": "unknown topic 'x'"}
 * (code: stream_err_name of the STREAM_E* value, stable across releases).
 *
 *   list      {"topics": [{"name", "internal", "partition_count"}]}
 *   describe  {"topics": [{"name", "internal", "partition_count", "size_bytes",
 *                          "partitions": [{"partition", "leader", "leader_epoch",
 *                                          "log_start_offset", "high_watermark",
 *                                          "log_end_offset", "size_bytes", "error"}],
 *                          "configs": [{"name", "value", "source", "default"}] | null}],
 *              "errors": [{"topic", "error"}]}
 *   outcomes  {"results": [{"topic", "status", "error"}]}    (create/alter/delete)
 *
 * A partition's "error" and a result's "error" are null on success. On a
 * single broker the high watermark equals the log end offset; in a cluster
 * it trails it until the replicas have caught up. "configs" lists the
 * settings set on the topic, or every setting with
 * STREAM_ADMINFMT_ALL_CONFIGS, and is null when they could not be
 * described. Every function appends to `out` and returns 0 or
 * STREAM_ENOMEM; nothing here does I/O.
 */
#ifndef STREAM_ADMINFMT_H
#define STREAM_ADMINFMT_H

#include <stdbool.h>
#include <stddef.h>

#include "stream/buf.h"
#include "stream/client.h"

/* What happened to one topic named in a command. Every pointer borrowed. */
typedef struct stream_admin_outcome {
    const char *topic;
    const char *status; /* "created", "deleted", "altered", "exists" (create
                           --if-not-exists found it), "absent" (delete --if-exists
                           did not), or "failed" */
    int err;            /* 0, or why it failed */
    const char *msg;    /* detail when err != 0 ("unknown topic 'x'"); may be NULL */
} stream_admin_outcome;

/* One topic to describe: its metadata and its configuration. */
typedef struct stream_topic_description {
    const stream_topic_meta *meta;     /* required; err == 0 */
    const stream_topic_config *config; /* NULL, or err != 0: configs not shown */
} stream_topic_description;

/* Flags of the describe functions. */
#define STREAM_ADMINFMT_ALL_CONFIGS 0x1u /* every setting, not only those set on the topic */

/* list: the topic names, one per line; with `columns`, a table NAME,
 * PARTITIONS, INTERNAL. Topics in md order (sorted by name). */
int stream_adminfmt_list_text(stream_buf *out, const stream_metadata *md, bool columns);
int stream_adminfmt_list_json(stream_buf *out, const stream_metadata *md);

/* describe: per topic a title line ("Topic orders: 3 partitions, 1.2 MiB"),
 * a table of partitions (PARTITION, LEADER, LOG-START, HIGH-WATERMARK,
 * END-OFFSET, SIZE, and ERROR when one has an error) and a table of configs
 * (CONFIG, VALUE, SOURCE), topics separated by a blank line. */
int stream_adminfmt_describe_text(stream_buf *out, const stream_topic_description *topics, size_t n,
                                  unsigned flags);
/* The describe document; `errors` (nerr entries, may be NULL) are the topics
 * that could not be described. */
int stream_adminfmt_describe_json(stream_buf *out, const stream_topic_description *topics, size_t n,
                                  const stream_admin_outcome *errors, size_t nerr, unsigned flags);

/* The outcomes document of create, alter and delete. */
int stream_adminfmt_outcomes_json(stream_buf *out, const stream_admin_outcome *outcomes, size_t n);

#endif /* STREAM_ADMINFMT_H */
