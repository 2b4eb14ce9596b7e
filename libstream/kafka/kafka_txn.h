/*
 * kafka_txn.h - the Kafka listener's answer to the transactional APIs
 * (AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, WriteTxnMarkers,
 * TxnOffsetCommit, DescribeTransactions, ListTransactions) until stream
 * has transactions: each is decoded whole (kafka_codec_txn.h) and answered
 * in its version's layout with Kafka's UNSUPPORTED_VERSION (35) for every
 * transaction, topic and partition it named, so a client that sends one
 * anyway gets a well-formed refusal instead of a closed connection. They
 * are not listed by ApiVersions. Not installed; prefix stream__kafka_txn_.
 */
#ifndef STREAM_KAFKA_TXN_H
#define STREAM_KAFKA_TXN_H

#include "broker/host.h"

/* Answers the transactional request in frame (len bytes) for r. Returns 0,
 * or an error to close the connection (a malformed request, a version
 * outside the table's range, no memory). */
int stream__kafka_txn_frame(stream_broker *b, stream__req *r, const uint8_t *frame, size_t len);

#endif /* STREAM_KAFKA_TXN_H */
