/*
 * metadata_internal.h - what metadata.c (the state and apply) and
 * metadata_codec.c (commands and snapshots as bytes) share. Not installed.
 *
 * The state proper (stream__md_state) is everything a snapshot holds, apart
 * from the cluster id: restore builds a whole new one, checks it, and swaps
 * it in, so a refused snapshot leaves the old state untouched.
 */
#ifndef STREAM_CLUSTER_METADATA_INTERNAL_H
#define STREAM_CLUSTER_METADATA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metadata.h"
#include "quorum.h"

/* The recent request ids of one requester: a ring of the last
 * STREAM__META_REQ_WINDOW (seq, result) pairs. */
typedef struct stream__md_requester {
    int32_t node;        /* the requester's node id, >= 1 */
    uint64_t last_index; /* log index of its latest recorded command (eviction order) */
    uint32_t count;      /* pairs held, <= STREAM__META_REQ_WINDOW */
    uint32_t next;       /* the slot the next pair goes to; the oldest when full */
    uint64_t seq[STREAM__META_REQ_WINDOW];
    int32_t result[STREAM__META_REQ_WINDOW];
} stream__md_requester;

typedef struct stream__md_state {
    uint64_t applied_index;       /* last command applied */
    stream__meta_broker *brokers; /* sorted by id */
    size_t n_brokers, cap_brokers;
    stream__meta_topic **topics; /* sorted by name (bytes, then length) */
    size_t n_topics, cap_topics;
    stream__md_requester *requesters; /* sorted by node */
    size_t n_requesters, cap_requesters;
} stream__md_state;

struct stream__meta {
    char cluster_id[STREAM__QUORUM_CLUSTER_ID_MAX + 1];
    stream__md_state st;
    stream__meta_event_cb event_cb; /* may be NULL */
    void *event_arg;
};

/* Frees everything st holds and empties it. */
void stream__md_state_release(stream__md_state *st);
/* Frees a topic and its partitions and configs; NULL is a no-op. */
void stream__md_topic_free(stream__meta_topic *t);
/* The order of topics: name bytes, then length. <0, 0, >0 as memcmp. */
int stream__md_name_cmp(const char *a, size_t alen, const char *b, size_t blen);
/* The order of configs: by key, as stream__md_name_cmp. qsort comparator. */
int stream__md_config_cmp(const void *a, const void *b);
/* Index of the broker with id in st->brokers, or where it would be inserted
 * (*found false). */
size_t stream__md_broker_pos(const stream__md_state *st, int32_t id, bool *found);
/* True when id is one of ids[0..n). */
bool stream__md_contains(const int32_t *ids, uint32_t n, int32_t id);
/* True when every id of ids[0..n) is distinct. */
bool stream__md_ids_distinct(const int32_t *ids, uint32_t n);

/* A broker host: 1..STREAM__META_HOST_MAX bytes of [A-Za-z0-9._:%-]
 * (host names, IPv4 and IPv6 literals). */
bool stream__md_host_ok(const char *p, size_t len);
/* A config key (1..255 bytes of printable ASCII, no space, no '=') and value
 * (0..4096 bytes, no control character). */
bool stream__md_config_ok(const char *key, size_t key_len, const char *value, size_t value_len);

/* alter_partition's fields as a change (borrowing from c). */
stream__meta_alter stream__md_cmd_alter(const stream__meta_cmd *c);

/* Decodes a snapshot into *st (which must be empty; released on failure),
 * checking everything (see stream__meta_restore). cluster_id is the
 * state's own, which the snapshot must carry. */
int stream__md_snapshot_decode(const uint8_t *p, size_t len, const char *cluster_id,
                               stream__md_state *st, char *errbuf, size_t errbuf_len);

#endif /* STREAM_CLUSTER_METADATA_INTERNAL_H */
