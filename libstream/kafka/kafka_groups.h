/*
 * kafka_groups.h - the Kafka listener's consumer-group side: JoinGroup,
 * SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, ListGroups,
 * DescribeGroups and DeleteGroups, answered through the coordinator's
 * classic groups (coord/classic.h). kafka.c hands it every frame of those
 * APIs and tells it of closed connections. Not installed.
 *
 * JoinGroup and SyncGroup answers wait in the coordinator (a rebalance
 * holds them): each parked one is kept here with its connection, and is
 * cancelled (stream__classic_cancel) when that connection closes, so the
 * coordinator never calls back into a request that is gone. Commits and
 * deletes wait for durability through the broker host, which drops them
 * itself with their connection.
 */
#ifndef STREAM_KAFKA_GROUPS_H
#define STREAM_KAFKA_GROUPS_H

#include <stddef.h>
#include <stdint.h>

#include "broker/host.h"

typedef struct stream__kafka_groups stream__kafka_groups;

/* The groups side of broker b's listener; NULL on ENOMEM. */
stream__kafka_groups *stream__kafka_groups_new(stream_broker *b);
/* Cancels whatever is still parked (without answering) and frees g;
 * NULL is a no-op. */
void stream__kafka_groups_free(stream__kafka_groups *g);

/* Answers a frame of a group API (stream__kafka_group_api) with r, as a
 * stream__frame_handler does: 0, or a negative error to close the
 * connection (a malformed request, a version outside the range). */
int stream__kafka_groups_frame(stream__kafka_groups *g, stream__req *r, const uint8_t *frame,
                               size_t len);

/* Connection conn_id closed: its parked answers are cancelled. */
void stream__kafka_groups_conn_closed(stream__kafka_groups *g, uint64_t conn_id);

/* The broker is stopping: parked answers are given NOT_COORDINATOR now
 * (the client looks for the coordinator again), so that no connection
 * waits for a rebalance that will not end. */
void stream__kafka_groups_stopping(stream__kafka_groups *g);

#endif /* STREAM_KAFKA_GROUPS_H */
