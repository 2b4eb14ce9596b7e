/*
 * top.h - what stream-top and stream-shell's `top` show: a broker's or a
 * cluster's activity, computed once from two stats samples (protocol.md
 * 6.29), in libstream/tools/top.c.
 *
 * A sample is every broker's stats answer at one moment (in a cluster each
 * broker answers for itself, so the sample asks each one listed by
 * describe_cluster). A view is what two samples say: per topic the bytes and
 * records per second in and out (summed over the brokers), partitions and
 * size on disk (all copies); per group its lag now and how fast it moves
 * (records per second; positive: the group falls behind); per broker its
 * connections, memory, open files and traffic. The rates of a view built
 * from one sample (no previous one) are 0.
 *
 *   stream_top_sample a, b;
 *   stream_top_sample_take(c, -1, &a, eb, sizeof eb);
 *   ... wait ...
 *   stream_top_sample_take(c, -1, &b, eb, sizeof eb);
 *   stream_top_view v;
 *   stream_top_view_build(&a, &b, &v);
 *   stream_top_view_sort(&v, STREAM_TOP_SORT_BYTES_IN);
 *   stream_top_json(&buf, &v, "");     // or stream_top_text
 *
 * Nothing here prints; errors are 0 or a negative STREAM_E* code.
 */
#ifndef STREAM_TOP_H
#define STREAM_TOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream/buf.h"
#include "stream/client.h"

/* Every broker's stats at one moment. */
typedef struct stream_top_sample {
    stream_stats **brokers; /* Owned; n_brokers answers, by node id. */
    size_t n_brokers;
    bool clustered; /* The client talks to a cluster. */
} stream_top_sample;

/* Asks each broker for its stats (one on a single node, every registered
 * broker of a cluster). 0, or the first failure with errbuf set (a cluster
 * broker that does not answer fails the sample: the view would lie). */
int stream_top_sample_take(stream_client *c, int timeout_ms, stream_top_sample *out, char *errbuf,
                           size_t errbuf_len);
void stream_top_sample_release(stream_top_sample *s);

/* A topic's row. */
typedef struct stream_top_topic {
    char *name;             /* Owned. */
    int32_t partitions;     /* Highest partition seen + 1. */
    int64_t size_bytes;     /* On disk, every copy summed. */
    double bytes_in_rate;   /* Record batch bytes produced per second. */
    double bytes_out_rate;  /* Record batch bytes fetched per second (consumers and replicas). */
    double records_in_rate; /* Records produced per second. */
    uint64_t records_in;    /* Records produced since the brokers started. */
} stream_top_topic;

/* A consumer group's row. */
typedef struct stream_top_group {
    char *group;         /* Owned. */
    int32_t node_id;     /* Its coordinator. */
    uint64_t members;    /* Members now. */
    int64_t lag_records; /* Summed over its partitions. */
    double lag_seconds;  /* The oldest record not consumed, over its partitions. */
    double lag_trend;    /* Change of lag_records per second; > 0: falling behind. */
} stream_top_group;

/* A broker's row. */
typedef struct stream_top_broker {
    int32_t node_id;
    uint64_t connections; /* Open, every listener. */
    uint64_t resident_memory_bytes;
    uint64_t open_fds;
    size_t partitions;                    /* Partitions it holds (leader or follower). */
    double bytes_in_rate, bytes_out_rate; /* Its topics' traffic per second. */
} stream_top_broker;

typedef struct stream_top_view {
    uint64_t time_ms;         /* The newest broker clock of the sample. */
    uint64_t interval_ms;     /* Between the two samples by the brokers' clocks (the longest); 0
                                 with no previous one. */
    stream_top_topic *topics; /* Owned; n_topics, by name until sorted. */
    size_t n_topics;
    stream_top_group *groups; /* Owned; n_groups, by name until sorted. */
    size_t n_groups;
    stream_top_broker *brokers; /* Owned; n_brokers, by node id. */
    size_t n_brokers;
} stream_top_view;

/* Builds the view of cur against prev (NULL: rates 0). 0 or STREAM_ENOMEM
 * (then v is empty). Counters that went down (a broker restarted) give 0. */
int stream_top_view_build(const stream_top_sample *prev, const stream_top_sample *cur,
                          stream_top_view *v);
void stream_top_view_release(stream_top_view *v);

/* Orders of the topic rows (groups always by lag, the largest first, then
 * name). */
typedef enum stream_top_sort {
    STREAM_TOP_SORT_BYTES_IN = 0, /* the busiest producers' topics first */
    STREAM_TOP_SORT_BYTES_OUT,    /* the most read first */
    STREAM_TOP_SORT_NAME,         /* by name */
    STREAM_TOP_SORT__COUNT
} stream_top_sort;

/* The sort's short name for a header ("in", "out", "name"). */
const char *stream_top_sort_name(stream_top_sort s);
void stream_top_view_sort(stream_top_view *v, stream_top_sort s);

/* Appends the view as one JSON document (one line, then "\n"); topics and
 * groups whose topic or group name starts with prefix only ("": all).
 * Rates are per second, as JSON numbers; the rest integers.
 * Fields: time_ms, interval_ms, brokers [{node_id, connections,
 * resident_memory_bytes, open_fds, partitions, bytes_in_per_sec,
 * bytes_out_per_sec}], topics [{name, partitions, size_bytes, records_in,
 * bytes_in_per_sec, bytes_out_per_sec, records_in_per_sec}], groups [{group,
 * coordinator, members, lag_records, lag_seconds, lag_trend_per_sec}].
 * 0 or STREAM_ENOMEM. */
int stream_top_json(stream_buf *out, const stream_top_view *v, const char *prefix);

/* Which tables stream_top_text shows. */
typedef enum stream_top_table {
    STREAM_TOP_TOPICS = 1,
    STREAM_TOP_GROUPS = 2,
    STREAM_TOP_BROKERS = 4,
    STREAM_TOP_ALL = 7
} stream_top_table;

/* Appends the view as aligned text tables (those in `tables`, each after a
 * blank line but the first), the same filter. 0 or STREAM_ENOMEM. */
int stream_top_text(stream_buf *out, const stream_top_view *v, const char *prefix, int tables);

#endif /* STREAM_TOP_H */
