/*
 * controller.h - what the layers above cluster/ (the Kafka listener) may
 * ask the cluster of the broker they run in: the cluster metadata as this
 * broker knows it (brokers with their Kafka listeners, topics with their
 * ids, partitions with replicas, leader, leader epoch and ISR) and who the
 * controller is. Not installed; prefix stream__controller_.
 *
 * Everything here runs on the broker's loop thread; what it returns is
 * borrowed until the loop runs again (the next metadata change).
 */
#ifndef STREAM_CLUSTER_CONTROLLER_H
#define STREAM_CLUSTER_CONTROLLER_H

#include "broker/host.h"
#include "metadata.h"

/* The controller service (host.c's list). */
extern const stream__service stream__controller_service;

/* The cluster metadata of b, or NULL when b runs no cluster (a single
 * node). */
const stream__meta *stream__controller_metadata(stream_broker *b);
/* The controller (the metadata quorum's leader) as b knows it; -1 while
 * none is known or b is not in a cluster. */
int32_t stream__controller_leader_id(stream_broker *b);

#endif /* STREAM_CLUSTER_CONTROLLER_H */
