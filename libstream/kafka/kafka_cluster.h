/*
 * kafka_cluster.h - the cluster as the Kafka listener shows it: which
 * brokers Metadata and DescribeCluster list (every broker's Kafka listener,
 * from the cluster metadata, where each broker registers its kafka.listen;
 * on a single node, this broker alone) and who the controller is. Not
 * installed; prefix stream__kafka_.
 */
#ifndef STREAM_KAFKA_CLUSTER_H
#define STREAM_KAFKA_CLUSTER_H

#include "broker/host.h"
#include "cluster/metadata.h"

/* One broker as Kafka clients see it. */
typedef struct stream__kafka_node {
    int32_t id;
    const char *host; /* borrowed: the metadata's, or self_host */
    uint16_t port;
} stream__kafka_node;

/* The brokers to list: in a cluster every unfenced broker registered with
 * a Kafka listener, by id, and this one (self_host:self_port) even before
 * its registration shows; on a single node this one alone. *out is
 * allocated (free it); *n its length. 0 or STREAM_ENOMEM. */
int stream__kafka_nodes(stream_broker *b, const char *self_host, uint16_t self_port,
                        stream__kafka_node **out, size_t *n);
/* The controller's node id (this broker on a single node; -1 while a
 * cluster knows none). */
int32_t stream__kafka_controller_id(stream_broker *b);
/* The cluster metadata (NULL on a single node). */
const stream__meta *stream__kafka_metadata(stream_broker *b);

#endif /* STREAM_KAFKA_CLUSTER_H */
