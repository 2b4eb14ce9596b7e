/*
 * kafka_admin.h - the Kafka listener's admin APIs (kafka_admin.c):
 * CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs,
 * AlterConfigs, IncrementalAlterConfigs and DescribeCluster, answered
 * through the broker's own admin ops (stream__host_native_op), so that a
 * Kafka client's topic changes take exactly the path a native client's
 * take: the store on a single node, the controller and the metadata quorum
 * in a cluster. Not installed; prefix stream__kafka_admin_.
 */
#ifndef STREAM_KAFKA_ADMIN_H
#define STREAM_KAFKA_ADMIN_H

#include "broker/host.h"
#include "kafka_codec.h"

/* Answers the admin request in frame (len bytes; its header hdr, decoded
 * by stream__kafka_header_decode, ends at `body`) for r, now or once the
 * broker's op answered. host/port: this broker's Kafka listener (for
 * DescribeCluster). Returns 0, or an error to close the connection (a
 * malformed request, a version outside the range, no memory). */
int stream__kafka_admin_handle(stream_broker *b, stream__req *r, const uint8_t *frame, size_t len,
                               const stream__kafka_request *hdr, size_t body, const char *host,
                               uint16_t port);

#endif /* STREAM_KAFKA_ADMIN_H */
