/*
 * cluster_internal.h - what the files of libstream/cluster/ share (prefix
 * stream__cluster_). Not installed; nothing outside this folder includes it.
 *
 * The folder: the cluster (DESIGN.md, "The cluster"). quorum.h is the
 * metadata quorum, a replicated log of commands on Raft (libraft, which only
 * quorum.c includes: the engine stays replaceable); metadata.h is the state
 * machine it replicates (brokers, topics with ids, partitions with
 * replicas, leader, leader epoch, ISR, partition epoch, configs);
 * controller.c is the broker service that runs both on the broker's loop,
 * registers the broker, heartbeats and, on the quorum's leader, fences
 * silent brokers and elects partition leaders (election.h);
 * controller_admin.c takes topic admin through the quorum and
 * controller_link.c is a broker's connection to the controller
 * (controller_internal.h); replica.h is the replica manager, which makes
 * the broker's logs follow the metadata.
 */
#ifndef STREAM_CLUSTER_INTERNAL_H
#define STREAM_CLUSTER_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "base/internal.h"

/* A cluster id is [A-Za-z0-9._-]{1,STREAM__QUORUM_CLUSTER_ID_MAX}: true when
 * the len bytes at p are one. */
static inline bool stream__cluster_id_ok(const char *p, size_t len, size_t max)
{
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/*
 * Auto-creation in a cluster, for the replica manager (a produce named a
 * topic that does not exist: stream__host_replication.auto_create). `ctl`
 * is the arg the controller gave stream__replica_set_alter_isr. Proposes
 * create_topic with num.partitions (offsets.topic.num.partitions for
 * __consumer_offsets) and default.replication.factor (at most the live
 * brokers) on the controller, or asks the controller over the link.
 * Does nothing when the topic exists, auto.create.topics.enable is false
 * (internal topics are always created), or no controller is reachable: the
 * producer retries, and the call is idempotent.
 */
void stream__controller_auto_create(void *ctl, const char *topic);

#endif /* STREAM_CLUSTER_INTERNAL_H */
