/*
 * ops.h - the operations the programs and stream-shell share, done once.
 *
 * The main header of libstream/tools/, the top layer: what the programs in
 * cmd/ share - these operations (ops.c, ops_groups.c), stream-shell's
 * language (shell*.c), record and admin formats (format.c, recfmt.c,
 * adminfmt.c), tables and option helpers (table.c, cli.c) - built on the
 * client and never on the broker's insides.
 *
 * stream-topics and stream-shell both create, alter, delete, describe and
 * list topics; stream-sub and the shell's `sub` both read records out in a
 * format; the shell's `offsets` answers what a script would ask the broker
 * with list_offsets. Each of these is one function here, so the two
 * front-ends cannot drift apart: the same local checks (names, settings),
 * the same per-topic outcomes, the same statuses, the same messages. The
 * front-ends only parse their own syntax and print what comes back (tables
 * and JSON come from adminfmt.h and from the formatters below).
 *
 * Statuses: every program exits with one of STREAM_STATUS_* and every
 * stream-shell command ends with one (documented in the man pages), so a
 * script sees the same numbers from `stream-topics describe x` and from
 * `stream-shell -c 'describe x'`.
 *
 * Connecting: each operation that needs the broker connects the client
 * first if it is not connected (stream_ops_connect), and not before its
 * local checks have passed, so a command whose every topic name is invalid
 * never needs a broker. Error text written to errbuf is one line, ready to
 * print after the program's name: "cannot connect to 127.0.0.1:9292:
 * connection refused (is stream-broker running?)", "cannot list topics:
 * request to 127.0.0.1:9292 timed out after 500 ms".
 *
 * Nothing here prints or exits; results are owned by the caller and freed
 * with their _release function.
 */
#ifndef STREAM_OPS_H
#define STREAM_OPS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream/adminfmt.h"
#include "stream/buf.h"
#include "stream/cli.h"
#include "stream/client.h"
#include "stream/format.h"
#include "stream/progress.h"
#include "stream/timespec.h"

/* Exit statuses of the programs and statuses of stream-shell commands. */
enum {
    STREAM_STATUS_OK = 0,
    STREAM_STATUS_FAIL = 1,     /* something failed, also when only some topics did */
    STREAM_STATUS_USAGE = 2,    /* bad flags or arguments */
    STREAM_STATUS_EMPTY = 3,    /* a bounded read found nothing to read */
    STREAM_STATUS_NOTFOUND = 4, /* every topic (or group) named does not exist */
    STREAM_STATUS_EXISTS = 5,   /* every topic named to create exists already */
    STREAM_STATUS_GAVE_UP = 6,  /* an HTTP sink's endpoint kept failing (retries spent) */
    STREAM_STATUS_REJECTED = 7, /* an HTTP sink's endpoint refused records (no dead-letter
                                   topic) */
};

/* ---- connecting ------------------------------------------------------------- */

/* Connects c if it is not connected (0 at once when it is), waiting at most
 * timeout_ms (-1: the client's connect_timeout_ms per broker). On failure
 * errbuf holds "cannot connect to HOST:PORT: why", with "(is stream-broker
 * running?)" added for a refused connection. Returns 0 or the code of
 * stream_client_connect. */
int stream_ops_connect(stream_client *c, int timeout_ms, char *errbuf, size_t errbuf_len);

/* ---- topics: create, alter, delete ------------------------------------------ */

/* What a create, alter or delete command asks for. Every pointer borrowed. */
typedef struct stream_ops_topics {
    const char *const *names;           /* the topics named, in order */
    size_t name_count;                  /* entries in names (>= 1) */
    int32_t partitions;                 /* create: partitions; 0 = the broker's default;
                                           alter: the new (larger) count; 0 = unchanged */
    int32_t replication_factor;         /* create: replicas; 0 = the broker's default */
    const stream_config_entry *configs; /* create, alter: settings (value NULL: alter
                                           resets it to its default) */
    size_t config_count;                /* entries in configs */
    bool if_not_exists;                 /* create: an existing topic is "exists", not failed */
    bool if_exists;                     /* delete: a missing topic is "absent", not failed */
    int timeout_ms;                     /* per request; -1: the client's request timeout */
} stream_ops_topics;

/* The outcome of a command, one per topic named, in the order named. */
typedef struct stream_ops_outcomes {
    stream_admin_outcome *items; /* read-only: name_count outcomes (strings borrowed from
                                    the request and from the private results) */
    size_t count;                /* read-only: entries in items */
    stream_topic_result *res;    /* private: the broker's results the msgs point into */
    size_t res_count;            /* private */
} stream_ops_outcomes;

/* Frees what the outcomes own and zeroes them. A zeroed struct is fine. */
void stream_ops_outcomes_release(stream_ops_outcomes *o);

/* Create, delete or alter the topics of `req`. Names are checked locally
 * first (an invalid one fails with STREAM_EBADNAME and is never sent);
 * the others go to the broker in one request (alter: per topic, first
 * create_partitions when req->partitions is set, then alter_configs when
 * settings are; a refused count leaves the settings alone).
 * Returns 0 when every topic has its outcome in *out — some may have failed:
 * see stream_ops_status — or a negative code (connect or transport failure,
 * the whole request refused) with errbuf "cannot create topics: why" or the
 * connect line; *out is then empty. Settings are not checked here: call
 * stream_ops_check_settings first to report a typo as a usage error. */
int stream_ops_create_topics(stream_client *c, const stream_ops_topics *req,
                             stream_ops_outcomes *out, char *errbuf, size_t errbuf_len);
int stream_ops_delete_topics(stream_client *c, const stream_ops_topics *req,
                             stream_ops_outcomes *out, char *errbuf, size_t errbuf_len);
int stream_ops_alter_topics(stream_client *c, const stream_ops_topics *req,
                            stream_ops_outcomes *out, char *errbuf, size_t errbuf_len);

/* The status of a command over `total` topics of which n have outcomes in
 * o (the others succeeded): OK when none failed; NOTFOUND when every one
 * of the total was unknown; EXISTS when every one existed already; FAIL
 * otherwise (also for a partial failure). */
int stream_ops_status(const stream_admin_outcome *o, size_t n, size_t total);

/* Writes "cannot VERB topic 'NAME': CAUSE" for a failed outcome into buf
 * (control characters in the name shown as '?'); CAUSE is a fixed, helpful
 * text for the well-known codes (invalid name with the rule, unknown topic,
 * topic already exists), else the broker's message. Returns buf. */
const char *stream_ops_failure_line(const stream_admin_outcome *o, const char *verb, char *buf,
                                    size_t buf_len);

/* Appends a line per successful outcome: "created topic 'a'", "topic 'a'
 * exists already", "topic 'a' does not exist", "deleted topic 'a'", ...
 * (what stream-topics -v and stream-shell print). Returns 0 or
 * STREAM_ENOMEM. */
int stream_ops_outcomes_text(stream_buf *out, const stream_admin_outcome *o, size_t n);

/* Checks settings against the table of topic settings (config.h), as the
 * broker will: an unknown key, a broker-only key or a bad value is
 * STREAM_EBADCONFIG with errbuf naming it (for an unknown key, followed by
 * the list of topic settings). value NULL means "reset" and only checks the
 * key. Returns 0, STREAM_EBADCONFIG or STREAM_ENOMEM. */
int stream_ops_check_settings(const stream_config_entry *set, size_t n, char *errbuf,
                              size_t errbuf_len);

/* The names of the topic settings, in table order, for completion: calls
 * fn(arg, name) for each. */
void stream_ops_each_topic_setting(void (*fn)(void *arg, const char *name), void *arg);

/* ---- topics: list and describe --------------------------------------------- */

/* Lists every topic (metadata of all topics) into *out (free with
 * stream_metadata_free). Returns 0, or a negative code with errbuf ("cannot
 * list topics: why", or the connect line). */
int stream_ops_list_topics(stream_client *c, int timeout_ms, stream_metadata **out, char *errbuf,
                           size_t errbuf_len);

/* What describe found: the topics it could describe and those it could not. */
typedef struct stream_ops_description {
    stream_topic_description *topics; /* read-only: count descriptions, in the order named */
    size_t count;
    stream_admin_outcome *errors; /* read-only: error_count topics that failed (invalid
                                     name, unknown topic), in the order named */
    size_t error_count;
    stream_metadata *md;       /* private: what topics[].meta point into */
    stream_topic_config *cfgs; /* private: what topics[].config point into */
} stream_ops_description;

/* Describes n topics: metadata, then the configs of those that exist, in one
 * request each. Returns 0 (see out->errors; the status is
 * stream_ops_status(out->errors, out->error_count, n)) or a negative code
 * with errbuf; *out is then empty. */
int stream_ops_describe_topics(stream_client *c, const char *const *names, size_t n, int timeout_ms,
                               stream_ops_description *out, char *errbuf, size_t errbuf_len);
void stream_ops_description_release(stream_ops_description *d);

/* ---- offsets ------------------------------------------------------------------ */

/* One partition's offsets, as `offsets TOPIC [@TIME]` shows them. */
typedef struct stream_ops_partition_offsets {
    int32_t partition;
    int64_t log_start_offset; /* first offset still stored */
    int64_t high_watermark;   /* offset after the last readable record */
    int64_t time_offset;      /* with a time: first offset with timestamp >= it (the high
                                 watermark when none); -1 without a time */
    int64_t time_timestamp;   /* with a time: that record's timestamp; -1 when none */
    int err;                  /* 0, or why this partition could not be asked */
} stream_ops_partition_offsets;

typedef struct stream_ops_offsets {
    const char *topic;                        /* borrowed from the call */
    bool has_time;                            /* a time was asked for */
    int64_t time_ms;                          /* the time asked for */
    stream_ops_partition_offsets *partitions; /* owned; count entries by partition */
    size_t count;
} stream_ops_offsets;

/* Asks for the log start and high watermark of every partition of topic,
 * and with at_ms (not NULL) the first offset at or after that time, in one
 * list_offsets request. Returns 0, STREAM_ENOTOPIC ("unknown topic 'x'"),
 * or another negative code, with errbuf. */
int stream_ops_topic_offsets(stream_client *c, const char *topic, const int64_t *at_ms,
                             int timeout_ms, stream_ops_offsets *out, char *errbuf,
                             size_t errbuf_len);
void stream_ops_offsets_release(stream_ops_offsets *o);

/* A table PARTITION, LOG-START, HIGH-WATERMARK, RECORDS (and with a time
 * OFFSET-AT-TIME, TIMESTAMP), or the JSON document
 *   {"topic", "time": ms|null, "partitions": [{"partition", "log_start_offset",
 *    "high_watermark", "records", "offset_at_time", "timestamp", "error"}]}
 * (unreported numbers as null). Return 0 or STREAM_ENOMEM. */
int stream_ops_offsets_text(stream_buf *out, const stream_ops_offsets *o);
int stream_ops_offsets_json(stream_buf *out, const stream_ops_offsets *o);

/* ---- reading records out ------------------------------------------------------ */

typedef enum stream_ops_out_kind {
    STREAM_OPS_OUT_FORMAT = 0,  /* a compiled format string (format.h) */
    STREAM_OPS_OUT_JSON = 1,    /* JSON lines (recfmt.h) */
    STREAM_OPS_OUT_MSGPACK = 2, /* a MessagePack stream (recfmt.h) */
} stream_ops_out_kind;

/* Appends one consumed record to out in the given kind (format used for
 * STREAM_OPS_OUT_FORMAT). On failure out is as it was and errbuf names the
 * topic, partition and offset. Returns 0, STREAM_ENOMEM or STREAM_ECORRUPT
 * (malformed headers). */
int stream_ops_record_append(stream_buf *out, stream_ops_out_kind kind, const stream_format *format,
                             const stream_consumer_event *ev, char *errbuf, size_t errbuf_len);

/* Assigns `topic` to the consumer: the partitions listed (n of them), or
 * every partition when n is 0, from spec (NULL: beginning, no end).
 * Returns 0 or the code of stream_consumer_assign with its message. */
int stream_ops_assign(stream_consumer *co, const char *topic, const int32_t *partitions, size_t n,
                      const stream_offset_spec *spec, char *errbuf, size_t errbuf_len);

/* Where consumed records go. */
typedef struct stream_ops_sink {
    /* Writes whole records p[0..len). Returns 0; STREAM_ECLOSED when the
     * reader went away (the loop ends quietly); or another code with errbuf. */
    int (*write)(void *arg, const void *p, size_t len, char *errbuf, size_t errbuf_len);
    /* Called when no record is ready, after buffered records were written and
     * before waiting. Returns false to end the loop as if the reader went away
     * (STREAM_ECLOSED). May be NULL. */
    bool (*idle)(void *arg);
    /* Called for each STREAM_EVENT_EOF (a partition caught up). May be NULL. */
    void (*eof)(void *arg, const char *topic, int32_t partition, int64_t offset);
    void *arg;
} stream_ops_sink;

typedef struct stream_ops_consume_conf {
    stream_ops_out_kind kind;    /* output kind */
    const stream_format *format; /* STREAM_OPS_OUT_FORMAT: the compiled format */
    uint64_t count;              /* stop after this many records; 0: no limit */
    bool each_record;            /* write after every record (a terminal, -u) rather
                                    than in chunks and whenever idle */
    volatile sig_atomic_t *stop; /* the loop ends soon after *stop becomes non-zero
                                    (a signal handler's flag); may be NULL */
    stream_progress *progress;   /* given the records and bytes formatted so far, every
                                    256 records and when idle; NULL: none. The caller
                                    inits and finishes it */
    bool latest_per_key;         /* the table view of a compacted topic: keep only each
                                    (partition, key)'s last record, drop keys whose last
                                    record is a tombstone and keyless records, and
                                    write the rows at the end (the consumer must stop
                                    at its end), by partition and offset; count
                                    limits the rows */
} stream_ops_consume_conf;

/* Takes records from the consumer and writes them to the sink until the
 * consumer is done (every partition at its end), the count is reached,
 * *stop is set, or something fails. Output is buffered and written in
 * chunks of whole records, and whenever the consumer has nothing ready, so
 * a reader sees each record as soon as it arrives. Returns 0 (*written
 * records written), STREAM_ECLOSED (the sink's reader went away), or the
 * error of a partition, of the consumer, of formatting or of the sink, with
 * errbuf. Records buffered before an error are still written. */
int stream_ops_consume(stream_consumer *co, const stream_ops_consume_conf *conf,
                       const stream_ops_sink *sink, uint64_t *written, char *errbuf,
                       size_t errbuf_len);

/* ---- consumer groups: tables and JSON (ops_groups.c) ----------------------------- */

/*
 * What `stream-topics groups`, `group NAME` and `group NAME --reset-offsets`
 * and the shell's `groups`, `group` and `reset` print, from the results of
 * the admin calls of client.h. JSON documents are one line each; numbers
 * not known (-1 in client.h) are null; field names are a contract:
 *
 *   groups   {"groups": [{"group", "state", "members", "generation"}]}
 *   group    {"group", "state", "generation", "total_lag",
 *             "oldest_unconsumed_timestamp",
 *             "members": [{"member_id", "client_id", "host", "session_timeout_ms",
 *                          "generation", "topics": [...], "pattern",
 *                          "assignment": [{"topic", "partitions": [...]}],
 *                          "target": [{"topic", "partitions": [...]}]}],
 *             "offsets": [{"topic", "partition", "member_id", "offset", "metadata",
 *                          "commit_timestamp", "log_start_offset", "log_end_offset",
 *                          "lag", "oldest_unconsumed_timestamp"}]}
 *   reset    {"group", "executed", "partitions": [{"topic", "partition", "current",
 *                                                  "new_offset"}]}
 *   results  {"results": [{"group", "status", "error"}]}     (delete)
 *
 * Every function appends to out and returns 0 or STREAM_ENOMEM.
 */

/*
 * The cluster (describe_cluster, ops_cluster.c). Text: a title line
 * ("Cluster stream: asked node 2; quorum leader 1, term 3, applied index 12"
 * or "Single node (no cluster), node 0"), a table BROKER, ADDRESS, STATE
 * (registered, fenced; single on a single node), EPOCH, then "Quorum:" and a
 * table VOTER, RAFT ADDRESS, ROLE (leader, follower) when there are voters.
 * JSON, field names a contract:
 *
 *   {"cluster_id", "clustered", "node_id", "leader_id" (null: unknown),
 *    "term", "applied_index",
 *    "voters": [{"node_id", "host", "port", "leader"}],
 *    "brokers": [{"node_id", "host", "port", "state", "fenced",
 *                 "epoch" (null on a single node)}]}
 */
int stream_ops_cluster_text(stream_buf *out, const stream_cluster_description *d);
int stream_ops_cluster_json(stream_buf *out, const stream_cluster_description *d);

/* A table GROUP, STATE, MEMBERS, GENERATION (nothing when there are none). */
int stream_ops_groups_text(stream_buf *out, const stream_group_listing *g, size_t n);
int stream_ops_groups_json(stream_buf *out, const stream_group_listing *g, size_t n);

/* A title line ("Group billing: stable, generation 4, 2 members, lag 12
 * records, oldest unconsumed 3m20s old"), a table of members (MEMBER,
 * CLIENT, HOST, ASSIGNMENT as "topic[0,1]") or "No members.", and a table
 * of committed offsets (TOPIC, PARTITION, MEMBER, COMMITTED, LOG-END, LAG,
 * LAG-TIME: the age of the oldest unconsumed record at now_ms). */
int stream_ops_group_text(stream_buf *out, const stream_group_description *d, int64_t now_ms);
int stream_ops_group_json(stream_buf *out, const stream_group_description *d);

/* A reset plan: TOPIC, PARTITION, CURRENT, NEW (CURRENT "-" when none). */
int stream_ops_reset_plan_text(stream_buf *out, const stream_group_reset_plan *p);
int stream_ops_reset_plan_json(stream_buf *out, const char *group,
                               const stream_group_reset_plan *p);

/* The outcome of deleting groups, one entry per group in order:
 *   {"results": [{"group", "status": done_status | "failed", "error"}]}
 * ("error" null on success, else {"code", "message"}). */
int stream_ops_group_results_json(stream_buf *out, const stream_group_result *r, size_t n,
                                  const char *done_status);

/* ---- consumer groups: the topics of an offset reset (ops_groups.c) ---------------- */

/* The topics a reset names, one per --topic argument of `stream-topics group
 * NAME --reset-offsets` and the shell's `reset`: "T" (every partition of T)
 * or "T:P[,P]..." (those partitions). Starts zeroed ({0}); freed with
 * stream_ops_reset_topics_release. items is ready for
 * stream_group_reset.topics / topic_count. */
typedef struct stream_ops_reset_topics {
    stream_group_reset_topic *items; /* read-only: count entries, in the order added */
    size_t count;                    /* read-only */
    size_t cap;                      /* private: entries allocated in the arrays */
    char **names;                    /* private: the topic names items point to */
    stream_cli_partitions *parts;    /* private: the partition lists items point to */
} stream_ops_reset_topics;

/* Parses one --topic argument and appends it: the partition list first
 * (stream_cli_partitions_parse), then the topic name (stream_topic_name_check).
 * Returns 0; STREAM_EINVAL (a bad partition list) or STREAM_EBADNAME (an
 * invalid topic name), both usage errors, with errbuf "--topic ARG: why";
 * or STREAM_ENOMEM. Nothing is added on error. */
int stream_ops_reset_topics_add(stream_ops_reset_topics *t, const char *arg, char *errbuf,
                                size_t errbuf_len);
/* Frees what t owns and zeroes it. A zeroed struct is fine. */
void stream_ops_reset_topics_release(stream_ops_reset_topics *t);

#endif /* STREAM_OPS_H */
