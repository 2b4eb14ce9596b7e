/*
 * kafka_codec_groups.h - the request bodies of Kafka's consumer-group APIs
 * (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch,
 * ListGroups, DescribeGroups, DeleteGroups), decoded into one plain struct
 * for the listener's groups side (kafka_groups.c). Pure functions over
 * bytes, like kafka_codec.h, whose header decoding and response primitives
 * they share. Field layouts are Kafka's message definitions
 * (clients/src/main/resources/common/message/<Api>{Request,Response}.json);
 * a field a version does not have is left at its default here.
 *
 *   JoinGroup       group, session_timeout_ms, rebalance_timeout_ms (v1+),
 *                   member_id, group_instance_id (v5+), protocol_type,
 *                   protocols [name, metadata], reason (v8+)
 *   SyncGroup       group, generation, member_id, group_instance_id (v3+),
 *                   protocol_type, protocol_name (v5+),
 *                   assignments [member_id, assignment]
 *   Heartbeat       group, generation, member_id, group_instance_id (v3+)
 *   LeaveGroup      group, member_id (v0-2) | members [member_id,
 *                   group_instance_id, reason (v5+)] (v3+)
 *   OffsetCommit    group, generation (v1+), member_id (v1+),
 *                   group_instance_id (v7+), retention_time_ms (v2-4,
 *                   read and ignored: offsets are kept until deleted),
 *                   topics [name, partitions [partition, offset,
 *                   leader_epoch (v6+), timestamp (v1), metadata]]
 *   OffsetFetch     group, topics [name, partitions [int32]] (null: all,
 *                   v2+), require_stable (v7+) | groups [group, topics] (v8+)
 *   ListGroups      states_filter [string] (v4+)
 *   DescribeGroups  groups [string], include_authorized_operations (v3+)
 *   DeleteGroups    groups [string]
 */
#ifndef STREAM_KAFKA_CODEC_GROUPS_H
#define STREAM_KAFKA_CODEC_GROUPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka_codec.h"

/* A string borrowed from the frame (not NUL-terminated). */
typedef struct stream__kafka_str {
    const char *s; /* NULL when null */
    size_t len;
} stream__kafka_str;

/* One protocol of a JoinGroup, or one assignment of a SyncGroup (name is
 * then the member id). */
typedef struct stream__kafka_blob {
    stream__kafka_str name;
    const uint8_t *bytes; /* borrowed; NULL when null */
    size_t len;
} stream__kafka_blob;

/* One partition of an OffsetCommit (offset, leader epoch, metadata) or
 * OffsetFetch. */
typedef struct stream__kafka_goffset {
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch; /* OffsetCommit v6+: committed_leader_epoch; else -1 */
    stream__kafka_str metadata;
} stream__kafka_goffset;

/* A list entry: a group (DescribeGroups, DeleteGroups, OffsetFetch), a
 * member (LeaveGroup v3+) or a state (ListGroups). For OffsetFetch, its
 * topics are topics[first .. first + count) and all_topics says that none
 * were named (every committed offset is asked for). */
typedef struct stream__kafka_gentry {
    stream__kafka_str name;
    stream__kafka_str instance_id; /* LeaveGroup v3+: group_instance_id */
    size_t first, count;
    bool all_topics;
} stream__kafka_gentry;

/* A decoded group request; everything borrowed points into the frame. */
typedef struct stream__kafka_group_request {
    stream__kafka_request hdr; /* the header (api_key, version, correlation id, ...) */
    stream__kafka_str group, member_id, instance_id, protocol_type, protocol_name;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms; /* JoinGroup v0: the session timeout */
    int32_t generation;           /* -1 when the version has none */
    stream__kafka_blob *blobs;    /* JoinGroup protocols, SyncGroup assignments (owned) */
    size_t nblobs;
    stream__kafka_gentry *entries; /* owned */
    size_t nentries;
    stream__kafka_topic *topics; /* OffsetCommit, OffsetFetch: parts in offsets[] (owned) */
    size_t ntopics;
    stream__kafka_goffset *offsets; /* owned */
    size_t noffsets;
} stream__kafka_group_request;

/* Whether API key `key` is one of the group APIs decoded here. */
bool stream__kafka_group_api(int16_t key);

/* Decodes a whole frame of a group API into req, which the caller
 * releases whatever the result. Errors as stream__kafka_request_decode:
 * STREAM_EUNKNOWNOP (not a group API in the table), STREAM_EUNSUPPORTED (a
 * version outside its range; the header is set), STREAM_EPROTO (malformed:
 * a length past the end, a negative or null count where none may be,
 * bytes left over), STREAM_ENOMEM. */
int stream__kafka_group_decode(const uint8_t *p, size_t len, stream__kafka_group_request *req);
/* Frees what decode allocated; req is then empty. */
void stream__kafka_group_release(stream__kafka_group_request *req);

#endif /* STREAM_KAFKA_CODEC_GROUPS_H */
