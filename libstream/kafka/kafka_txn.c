/*
 * kafka_txn.c - refusing the transactional APIs (kafka_txn.h).
 *
 * Why UNSUPPORTED_VERSION: it is Kafka's own "this broker does not do
 * that", and every client names it plainly (librdkafka "Broker: API
 * version not supported", kafka-python UnsupportedVersionError, the Java
 * client UnsupportedVersionException). A transactional producer never gets
 * this far: its first step, InitProducerId with a transactional id, is
 * refused in kafka.c with TRANSACTIONAL_ID_AUTHORIZATION_FAILED, the one
 * refusal that librdkafka does not retry for ever.
 */
#include <string.h>

#include "kafka_codec_txn.h"
#include "kafka_txn.h"
#include "stream/error.h"

#define REFUSED STREAM__KAFKA_UNSUPPORTED_VERSION

/* topics [name | partitions [partition | error | tags] | tags] of txn t. */
static void put_topics(stream_buf *out, const stream__kafka_txn_request *q,
                       const stream__kafka_txn *t)
{
    bool fl = q->hdr.flexible;
    stream__kafka_put_array_len(out, fl, t->count);
    for (size_t i = t->first; i < t->first + t->count; i++) {
        const stream__kafka_topic *tp = &q->topics[i];
        stream__kafka_put_string(out, fl, tp->name, tp->name_len);
        stream__kafka_put_array_len(out, fl, tp->count);
        for (size_t j = tp->first; j < tp->first + tp->count; j++) {
            stream_buf_put_be32(out, (uint32_t)q->parts[j]);
            stream_buf_put_be16(out, REFUSED);
            stream__kafka_put_tags(out, fl);
        }
        stream__kafka_put_tags(out, fl);
    }
}

static void answer(stream__req *r, const stream__kafka_txn_request *q)
{
    int v = q->hdr.api_version;
    bool fl = q->hdr.flexible;
    stream_buf *out = stream__host_req_out(r);
    size_t start = stream__kafka_response_start(out, q->hdr.correlation_id, fl);
    if (q->hdr.api_key != STREAM__KAFKA_WRITE_TXN_MARKERS)
        stream_buf_put_be32(out, 0); /* throttle_time_ms */
    switch (q->hdr.api_key) {
    case STREAM__KAFKA_ADD_PARTITIONS_TO_TXN:
        if (v <= 3) {
            put_topics(out, q, &q->txns[0]);
            break;
        }
        stream_buf_put_be16(out, REFUSED);
        stream__kafka_put_array_len(out, fl, q->ntxns);
        for (size_t i = 0; i < q->ntxns; i++) {
            stream__kafka_put_string(out, fl, q->txns[i].id, q->txns[i].id_len);
            put_topics(out, q, &q->txns[i]);
            stream__kafka_put_tags(out, fl);
        }
        break;
    case STREAM__KAFKA_ADD_OFFSETS_TO_TXN:
        stream_buf_put_be16(out, REFUSED);
        break;
    case STREAM__KAFKA_END_TXN:
        stream_buf_put_be16(out, REFUSED);
        if (v >= 5) {
            stream_buf_put_be64(out, (uint64_t)-1); /* producer_id */
            stream_buf_put_be16(out, (uint16_t)-1); /* producer_epoch */
        }
        break;
    case STREAM__KAFKA_WRITE_TXN_MARKERS:
        stream__kafka_put_array_len(out, fl, q->ntxns);
        for (size_t i = 0; i < q->ntxns; i++) {
            stream_buf_put_be64(out, (uint64_t)q->txns[i].producer_id);
            put_topics(out, q, &q->txns[i]);
            stream__kafka_put_tags(out, fl);
        }
        break;
    case STREAM__KAFKA_TXN_OFFSET_COMMIT:
        put_topics(out, q, &q->txns[0]);
        break;
    case STREAM__KAFKA_DESCRIBE_TRANSACTIONS:
        stream__kafka_put_array_len(out, fl, q->ntxns);
        for (size_t i = 0; i < q->ntxns; i++) {
            stream_buf_put_be16(out, REFUSED);
            stream__kafka_put_string(out, fl, q->txns[i].id, q->txns[i].id_len);
            stream__kafka_put_string(out, fl, "", 0); /* transaction_state */
            stream_buf_put_be32(out, 0);              /* transaction_timeout_ms */
            stream_buf_put_be64(out, (uint64_t)-1);   /* transaction_start_time_ms */
            stream_buf_put_be64(out, (uint64_t)-1);   /* producer_id */
            stream_buf_put_be32(out, (uint32_t)-1);   /* producer_epoch (an int32 here) */
            stream__kafka_put_array_len(out, fl, 0);  /* topics */
            stream__kafka_put_tags(out, fl);
        }
        break;
    case STREAM__KAFKA_LIST_TRANSACTIONS:
        stream_buf_put_be16(out, REFUSED);
        stream__kafka_put_array_len(out, fl, 0); /* unknown_state_filters */
        stream__kafka_put_array_len(out, fl, 0); /* transaction_states */
        break;
    }
    stream__kafka_response_end(out, start, fl);
    stream__host_req_done(r);
}

int stream__kafka_txn_frame(stream_broker *b, stream__req *r, const uint8_t *frame, size_t len)
{
    stream__kafka_txn_request q;
    int rc = stream__kafka_txn_decode(frame, len, &q);
    if (rc == 0) {
        stream__host_log(b, STREAM_BROKER_DEBUG,
                         "kafka: %s: api key %d version %d refused: transactions are not "
                         "supported",
                         stream__host_req_peer(r), (int)q.hdr.api_key, (int)q.hdr.api_version);
        answer(r, &q);
    } else {
        stream__host_log(b, STREAM_BROKER_DEBUG, "kafka: %s: closing: %s (api key %d, version %d)",
                         stream__host_req_peer(r), stream_strerror(rc), (int)q.hdr.api_key,
                         (int)q.hdr.api_version);
    }
    stream__kafka_txn_release(&q);
    return rc;
}
