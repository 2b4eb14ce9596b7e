/*
 * replica.h - the replica manager: this broker's part in Kafka's ISR
 * replication, driven by the cluster metadata (metadata.h).
 *
 * The controller service (controller.c) owns the metadata, tells the
 * replica manager which topics each change it applies touched and calls
 * stream__replica_sync after a burst of them; the replica manager then
 * makes the broker match it, topic by changed topic:
 *   - every topic of the metadata exists in the local store (created with
 *     its partition count and configs), and a local topic the metadata no
 *     longer has is deleted;
 *   - for every partition with a replica here: LEADER when the metadata
 *     names this node leader (appends stamped with the leader epoch, the
 *     high watermark the lowest durable log end over the ISR), FOLLOWER
 *     otherwise (a fetcher on the leader, after truncating what the leader
 *     never committed: offset_for_leader_epoch, KIP-101/279);
 *   - as leader, a follower that falls behind for replica.lag.time.max.ms
 *     is asked out of the ISR, one that caught up back in, through the
 *     alter_isr function the controller gives.
 *
 * Everything on the broker's loop thread.
 */
#ifndef STREAM_CLUSTER_REPLICA_H
#define STREAM_CLUSTER_REPLICA_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/host.h"
#include "metadata.h"

typedef struct stream__replica stream__replica;

/* Asks the controller to set partition `partition` of `topic` to isr
 * (n_isr ids), computed by its leader (this node) from partition_epoch.
 * The answer arrives as a metadata change (or never: asked again later).
 * 0, or an error when it cannot even be sent. */
typedef int (*stream__replica_alter_isr_fn)(void *arg, const char *topic, int32_t partition,
                                            const int32_t *isr, uint32_t n_isr,
                                            int32_t partition_epoch);

/* Asks the controller to create `topic` with the cluster's defaults (a
 * produce to a topic that does not exist, with auto-creation on). */
typedef void (*stream__replica_auto_create_fn)(void *arg, const char *topic);

/* A replica manager for broker b, node node_id; hooks the broker
 * (stream__host_set_replication). 0 or an error with errbuf. */
int stream__replica_start(stream_broker *b, int32_t node_id, stream__replica **out, char *errbuf,
                          size_t errbuf_len);
void stream__replica_set_alter_isr(stream__replica *rm, stream__replica_alter_isr_fn fn,
                                   void *arg);
/* The controller refused the alter_isr asked for partition `partition` of
 * `topic` from partition_epoch, for certain (it was not applied: checked
 * and turned down, not lost in transit): its members no longer count in the
 * maximal ISR. */
void stream__replica_isr_refused(stream__replica *rm, const char *topic, int32_t partition,
                                 int32_t partition_epoch);
void stream__replica_set_auto_create(stream__replica *rm, stream__replica_auto_create_fn fn,
                                     void *arg);
/* Notes that the metadata of `topic` changed (created, deleted, grown,
 * its configs, a partition's leader, replicas or ISR), for the next sync;
 * all_changed: everything may have (a restore). rm NULL is a no-op. */
void stream__replica_topic_changed(stream__replica *rm, const char *topic);
void stream__replica_all_changed(stream__replica *rm);
/* Matches the metadata, for the topics noted changed since the last sync
 * (every topic at the first sync): O(changed topics), not O(topics). */
void stream__replica_sync(stream__replica *rm, const stream__meta *md);
/* Appends its families for GET /metrics to out: ISR shrinks and expands
 * and leader elections seen here, partitions led here that are
 * under-replicated, and each led partition's furthest follower lag. */
void stream__replica_metrics(const stream__replica *rm, stream_buf *out);
/* Closes its connections and timers (the broker is stopping). */
void stream__replica_stop(stream__replica *rm);
/* Frees it (after the loop drained); NULL is a no-op. */
void stream__replica_free(stream__replica *rm);

/* offset_for_leader_epoch (protocol.md): answered by the leader. */
void stream__replica_op_offset_for_epoch(stream__replica *rm, stream__req *r, uint64_t id,
                                         const msgpack_object *m);

#endif /* STREAM_CLUSTER_REPLICA_H */
