/*
 * kafka_codec_txn.h - the request bodies of Kafka's transactional APIs,
 * which the listener refuses until stream has transactions (kafka_txn.c).
 * Refusing still means answering in the layout of the version asked, with
 * an entry for each transaction, topic and partition the request named, so
 * each request is decoded whole: what its answer echoes is kept, the rest
 * is read past. Pure functions over bytes, as kafka_codec.h's. Not
 * installed; prefix stream__kafka_txn_.
 *
 *   AddPartitionsToTxn   v0-3: transactional_id | producer_id | producer_epoch
 *                              | topics [name | partitions [int32]]
 *                        v4+:  transactions [transactional_id | producer_id
 *                              | producer_epoch | verify_only | topics]
 *   AddOffsetsToTxn      transactional_id | producer_id | producer_epoch | group_id
 *   EndTxn               transactional_id | producer_id | producer_epoch | committed
 *   WriteTxnMarkers      markers [producer_id | producer_epoch | result
 *                        | topics [name | partitions [int32]] | coordinator_epoch
 *                        | transaction_version (v2+)]
 *   TxnOffsetCommit      transactional_id | group_id | producer_id | producer_epoch
 *                        | generation_id, member_id, group_instance_id (v3+)
 *                        | topics [name | partitions [partition | offset
 *                        | leader_epoch (v2+) | metadata]]
 *   DescribeTransactions transactional_ids [string]
 *   ListTransactions     state_filters [string] | producer_id_filters [int64]
 *                        | duration_filter (v1+)
 */
#ifndef STREAM_KAFKA_CODEC_TXN_H
#define STREAM_KAFKA_CODEC_TXN_H

#include "kafka_codec.h"

/* One transaction a request names (a marker of WriteTxnMarkers; the one
 * of the v0-3 requests), its topics a run of the request's topics. */
typedef struct stream__kafka_txn {
    const char *id; /* borrowed; NULL where the API has none (WriteTxnMarkers) */
    size_t id_len;
    int64_t producer_id; /* -1 where the API has none */
    size_t first, count; /* its entries in topics[] */
} stream__kafka_txn;

/* A decoded transactional request (the header is kafka_codec.h's). Each
 * topic's partition indexes are parts[first .. first + count). */
typedef struct stream__kafka_txn_request {
    stream__kafka_request hdr;
    size_t ntxns, ntopics, nparts;
    stream__kafka_txn *txns;     /* owned */
    stream__kafka_topic *topics; /* owned; names borrowed */
    int32_t *parts;              /* owned */
} stream__kafka_txn_request;

/* True for the API keys decoded here. */
bool stream__kafka_txn_api(int16_t key);

/* Decodes a whole frame of a transactional API into req, which the caller
 * releases whatever the result. Errors: STREAM_EUNKNOWNOP (not one of
 * them), STREAM_EUNSUPPORTED (a version outside the table's range; the
 * header is set), STREAM_EPROTO (malformed, or bytes left over),
 * STREAM_ENOMEM. */
int stream__kafka_txn_decode(const uint8_t *p, size_t len, stream__kafka_txn_request *req);
/* Frees what decode allocated; req is then empty. */
void stream__kafka_txn_release(stream__kafka_txn_request *req);

#endif /* STREAM_KAFKA_CODEC_TXN_H */
