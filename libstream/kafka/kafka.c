/*
 * kafka.c - the Kafka wire-protocol listener, a service of the broker.
 *
 * It opens its own listener (kafka.listen, 127.0.0.1:9092 by default) on
 * the broker's loop through stream__host_listen: the broker's connections
 * frame, order and write its responses, so a Kafka client gets the same
 * backpressure, socket.request.max.bytes and sendfile as a native one.
 * Each frame comes here, is decoded whole (kafka_codec.c), and is answered
 * through the broker's own produce, fetch and list_offsets entry points:
 * a produced RecordBatch v2 is checked and appended as it came, a fetch
 * sends the stored bytes back from the segment file. Nothing is re-encoded.
 *
 * What Kafka does with a request it cannot parse, an API key it does not
 * know, or a version outside the advertised range (but ApiVersions), is to
 * close the connection; so does this listener. ApiVersions at a version it
 * does not know is answered with UNSUPPORTED_VERSION and the ranges, in
 * version 0's layout, so that the client can retry with one it shares.
 *
 * The admin APIs (CreateTopics, DeleteTopics, CreatePartitions,
 * DescribeConfigs, AlterConfigs, IncrementalAlterConfigs, DescribeCluster)
 * are kafka_admin.c's, through the broker's own admin ops; the
 * consumer-group APIs (JoinGroup ... DeleteGroups) are kafka_groups.c's,
 * through the coordinator's classic groups; the transactional APIs are
 * refused by kafka_txn.c until stream has transactions. Fetch sessions (KIP-227) are
 * declined: every answer carries session id 0, so clients send full fetch
 * requests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/host.h"
#include "coord/classic.h"
#include "kafka_admin.h"
#include "kafka_cluster.h"
#include "kafka_codec.h"
#include "kafka_codec_admin.h"
#include "kafka_codec_groups.h"
#include "kafka_codec_txn.h"
#include "kafka_groups.h"
#include "kafka_txn.h"
#include "stream/error.h"

/* The service's state. */
typedef struct kafka {
    stream_broker *broker;
    char host[256];               /* the listener's host as configured ("" when off) */
    uint16_t port;                /* as bound */
    stream__kafka_groups *groups; /* the consumer-group APIs (kafka_groups.c) */
} kafka;

/* ---- errors ---- */

/* Kafka's error code for a STREAM_E* code. */
static int16_t kafka_error(int err)
{
    switch (err) {
    case 0:
        return STREAM__KAFKA_NONE;
    case STREAM_EOFFSET:
        return STREAM__KAFKA_OFFSET_OUT_OF_RANGE;
    case STREAM_ECORRUPT:
    case STREAM_ECRC:
    case STREAM_ESHORT:
        return STREAM__KAFKA_CORRUPT_MESSAGE;
    case STREAM_EMAGIC:
    case STREAM_EBADRECORD: /* e.g. a keyless record for a compacted topic, as Kafka */
        return STREAM__KAFKA_INVALID_RECORD;
    case STREAM_ENOTOPIC:
    case STREAM_ENOPART:
        return STREAM__KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    case STREAM_ENOTLEADER:
        return STREAM__KAFKA_NOT_LEADER_OR_FOLLOWER;
    case STREAM_ETIMEDOUT:
        return STREAM__KAFKA_REQUEST_TIMED_OUT;
    case STREAM_ETOOLARGE:
        return STREAM__KAFKA_MESSAGE_TOO_LARGE;
    case STREAM_EBADNAME:
        return STREAM__KAFKA_INVALID_TOPIC_EXCEPTION;
    case STREAM_ENOTENOUGHREPLICAS:
        return STREAM__KAFKA_NOT_ENOUGH_REPLICAS;
    case STREAM_EBADREQ:
    case STREAM_EINVAL:
        return STREAM__KAFKA_INVALID_REQUEST;
    case STREAM_EUNSUPPORTED:
        return STREAM__KAFKA_UNSUPPORTED_FOR_MESSAGE_FORMAT;
    case STREAM_EOUTOFORDERSEQ:
        return STREAM__KAFKA_OUT_OF_ORDER_SEQUENCE_NUMBER;
    case STREAM_EDUPLICATESEQ:
        return STREAM__KAFKA_DUPLICATE_SEQUENCE_NUMBER;
    case STREAM_EPRODUCERFENCED:
        return STREAM__KAFKA_INVALID_PRODUCER_EPOCH;
    case STREAM_EUNKNOWNPRODUCER:
        return STREAM__KAFKA_UNKNOWN_PRODUCER_ID;
    case STREAM_ESTALEEPOCH:
        return STREAM__KAFKA_FENCED_LEADER_EPOCH;
    case STREAM_EIO:
    case STREAM_ENOSPC:
        return STREAM__KAFKA_KAFKA_STORAGE_ERROR;
    case STREAM_ENOTCOORDINATOR:
        return STREAM__KAFKA_NOT_COORDINATOR;
    default:
        return STREAM__KAFKA_UNKNOWN_SERVER_ERROR;
    }
}

/* ---- answering ---- */

/* Starts r's response: the size placeholder and the response header (with
 * tags when flexible). *start gets where the frame starts. */
static stream_buf *reply_begin_at(stream__req *r, int32_t correlation_id, bool flexible,
                                  size_t *start)
{
    stream_buf *out = stream__host_req_out(r);
    *start = stream__kafka_response_start(out, correlation_id, flexible);
    return out;
}

/* reply_begin_at for q, then throttle_time_ms (0: never throttled) when
 * q's version, from throttle_from on, starts with it. */
static stream_buf *reply_begin(stream__req *r, const stream__kafka_request *q, int throttle_from,
                               size_t *start)
{
    stream_buf *out = reply_begin_at(r, q->correlation_id, q->flexible, start);
    if (q->api_version >= throttle_from)
        stream_buf_put_be32(out, 0);
    return out;
}

/* Ends the response body (its tags when flexible), patches the frame's
 * size and hands it to the broker to write. */
static void reply_end(stream__req *r, stream_buf *out, size_t start, bool flexible)
{
    stream__kafka_response_end(out, start, flexible);
    stream__host_req_done(r);
}

/* ---- ApiVersions ---- */

/* Answers ApiVersions with err and the table (version 0's layout when the
 * version asked is unknown). */
static void api_versions(stream__req *r, const stream__kafka_request *q, int16_t err)
{
    int v = err == 0 ? q->api_version : 0;
    bool fl = err == 0 && q->flexible;
    size_t start;
    /* The response header is version 0 even for flexible versions. */
    stream_buf *out = reply_begin_at(r, q->correlation_id, false, &start);
    stream_buf_put_be16(out, (uint16_t)err);
    size_t n, listed = 0;
    const stream__kafka_api *apis = stream__kafka_apis(&n);
    for (size_t i = 0; i < n; i++)
        listed += !apis[i].refused;
    stream__kafka_put_array_len(out, fl, listed);
    for (size_t i = 0; i < n; i++) {
        if (apis[i].refused)
            continue;
        stream_buf_put_be16(out, (uint16_t)apis[i].key);
        stream_buf_put_be16(out, (uint16_t)apis[i].min_version);
        stream_buf_put_be16(out, (uint16_t)apis[i].max_version);
        stream__kafka_put_tags(out, fl);
    }
    if (v >= 1)
        stream_buf_put_be32(out, 0); /* throttle_time_ms */
    reply_end(r, out, start, fl);
}

/* ---- Metadata ---- */

/* Writes one topic's entry of a Metadata response: from the cluster
 * metadata (mt) in a cluster, else from this broker's store (t). */
static void metadata_topic(kafka *k, stream_buf *out, const stream__kafka_request *q,
                           const char *name, size_t name_len, stream_topic *t,
                           const stream__meta_topic *mt, int16_t err)
{
    int v = q->api_version;
    bool fl = q->flexible;
    stream_buf_put_be16(out, (uint16_t)err);
    stream__kafka_put_string(out, fl, name, name_len);
    if (v >= 10) {
        static const uint8_t zero_uuid[16];
        stream_buf_put(out, mt != NULL ? mt->id : zero_uuid, sizeof(zero_uuid));
    }
    if (v >= 1)
        stream_buf_put_u8(out, stream_topic_is_internal(name, name_len));
    int32_t nparts = mt != NULL ? mt->partition_count : t != NULL ? t->partition_count : 0;
    stream__kafka_put_array_len(out, fl, (size_t)nparts);
    int32_t node = stream__host_node_id(k->broker);
    for (int32_t i = 0; i < nparts; i++) {
        int32_t leader, epoch;
        const int32_t *replicas = &node, *isr = &node;
        uint32_t nreplicas = 1, nisr = 1;
        int16_t perr = 0;
        if (mt != NULL) {
            const stream__meta_partition *p = &mt->partitions[i];
            leader = p->leader;
            epoch = p->leader_epoch;
            replicas = p->replicas;
            nreplicas = p->n_replicas;
            isr = p->isr;
            nisr = p->n_isr;
            perr = leader < 0 ? STREAM__KAFKA_LEADER_NOT_AVAILABLE : 0;
        } else {
            /* A single broker leads what it serves. */
            stream__host_role role;
            stream__host_partition_state(k->broker, t->partitions[i], &role, &leader, &epoch, NULL);
            bool here = role == STREAM__ROLE_LEADER || role == STREAM__ROLE_LOCAL;
            perr = here ? 0 : STREAM__KAFKA_NOT_LEADER_OR_FOLLOWER;
            leader = here ? node : -1;
        }
        stream_buf_put_be16(out, (uint16_t)perr);
        stream_buf_put_be32(out, (uint32_t)i);
        stream_buf_put_be32(out, (uint32_t)leader);
        if (v >= 7)
            stream_buf_put_be32(out, (uint32_t)(epoch < 0 ? 0 : epoch));
        stream__kafka_put_array_len(out, fl, nreplicas);
        for (uint32_t j = 0; j < nreplicas; j++)
            stream_buf_put_be32(out, (uint32_t)replicas[j]);
        stream__kafka_put_array_len(out, fl, nisr);
        for (uint32_t j = 0; j < nisr; j++)
            stream_buf_put_be32(out, (uint32_t)isr[j]);
        if (v >= 5)
            stream__kafka_put_array_len(out, fl, 0); /* offline replicas */
        stream__kafka_put_tags(out, fl);
    }
    if (v >= 8)
        stream_buf_put_be32(out, (uint32_t)INT32_MIN); /* authorized operations: not asked */
    stream__kafka_put_tags(out, fl);
}

/* The topic a Metadata request names, auto-created as a producer's
 * request allows; NULL with *err. */
static stream_topic *metadata_find(kafka *k, const stream__kafka_request *q, const char *name,
                                   size_t len, int16_t *err)
{
    char buf[STREAM_TOPIC_NAME_MAX + 1];
    char msg[320];
    *err = STREAM__KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    if (name == NULL || len == 0 || len > STREAM_TOPIC_NAME_MAX ||
        stream_topic_name_check(name, len, msg, sizeof(msg)) != 0) {
        *err = STREAM__KAFKA_INVALID_TOPIC_EXCEPTION;
        return NULL;
    }
    memcpy(buf, name, len);
    buf[len] = '\0';
    stream_store *store = stream__host_store(k->broker);
    stream_topic *t = stream_store_topic(store, buf);
    if (t != NULL)
        return t;
    const stream_config *cfg = stream__host_config(k->broker);
    if (!q->allow_auto_create ||
        !stream_config_bool(cfg, STREAM_CONFIG_AUTO_CREATE_TOPICS_ENABLE) ||
        stream_topic_is_internal(buf, len))
        return NULL;
    if (stream__host_clustered(k->broker)) {
        stream__host_auto_create(k->broker, buf);
        *err = STREAM__KAFKA_LEADER_NOT_AVAILABLE; /* the cluster is creating it */
        return NULL;
    }
    int rc = stream__host_create_topic(k->broker, buf, -1, NULL, false, &t, msg, sizeof(msg));
    if (rc != 0) {
        stream__host_log(k->broker, STREAM_BROKER_WARN, "kafka: cannot create topic %s: %s", buf,
                         msg);
        *err = kafka_error(rc);
        return NULL;
    }
    stream__host_log(k->broker, STREAM_BROKER_INFO, "auto-created topic %s with %d partitions", buf,
                     (int)t->partition_count);
    return t;
}

static void metadata(kafka *k, stream__req *r, const stream__kafka_request *q)
{
    int v = q->api_version;
    bool fl = q->flexible;
    const stream__meta *md = stream__kafka_metadata(k->broker);
    stream__kafka_node *nodes = NULL;
    size_t nnodes = 0;
    if (stream__kafka_nodes(k->broker, k->host, k->port, &nodes, &nnodes) != 0) {
        stream__host_req_close(r); /* no memory for an answer: the client asks again */
        return;
    }
    size_t start;
    stream_buf *out = reply_begin(r, q, 3, &start);
    stream__kafka_put_array_len(out, fl, nnodes);
    for (size_t i = 0; i < nnodes; i++) {
        stream_buf_put_be32(out, (uint32_t)nodes[i].id);
        stream__kafka_put_string(out, fl, nodes[i].host, strlen(nodes[i].host));
        stream_buf_put_be32(out, nodes[i].port);
        if (v >= 1)
            stream__kafka_put_string(out, fl, NULL, 0); /* rack */
        stream__kafka_put_tags(out, fl);
    }
    free(nodes);
    if (v >= 2) {
        const char *id = md != NULL ? stream__meta_cluster_id(md)
                                    : stream_config_str(stream__host_config(k->broker),
                                                        STREAM_CONFIG_CLUSTER_ID);
        stream__kafka_put_string(out, fl, id, strlen(id));
    }
    if (v >= 1)
        stream_buf_put_be32(out, (uint32_t)stream__kafka_controller_id(k->broker));
    stream_store *store = stream__host_store(k->broker);
    if (q->all_topics && md != NULL) {
        size_t n = stream__meta_topic_count(md);
        stream__kafka_put_array_len(out, fl, n);
        for (size_t i = 0; i < n; i++) {
            const stream__meta_topic *mt = stream__meta_topic_at(md, i);
            metadata_topic(k, out, q, mt->name, strlen(mt->name), NULL, mt, 0);
        }
    } else if (q->all_topics) {
        size_t n = stream_store_topic_count(store);
        stream__kafka_put_array_len(out, fl, n);
        for (size_t i = 0; i < n; i++) {
            stream_topic *t = stream_store_topic_at(store, i);
            metadata_topic(k, out, q, t->name, strlen(t->name), t, NULL, 0);
        }
    } else {
        stream__kafka_put_array_len(out, fl, q->ntopics);
        for (size_t i = 0; i < q->ntopics; i++) {
            const stream__kafka_topic *qt = &q->topics[i];
            const stream__meta_topic *mt = md != NULL && qt->name != NULL
                                               ? stream__meta_topic_find(md, qt->name, qt->name_len)
                                               : NULL;
            int16_t err = 0;
            stream_topic *t = mt == NULL ? metadata_find(k, q, qt->name, qt->name_len, &err) : NULL;
            if (md != NULL && t != NULL) {
                t = NULL; /* the store has it, the metadata not (yet): not there */
                err = STREAM__KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
            }
            metadata_topic(k, out, q, qt->name, qt->name_len, t, mt,
                           t != NULL || mt != NULL ? 0 : err);
        }
    }
    if (v >= 8 && v <= 10)
        stream_buf_put_be32(out, (uint32_t)INT32_MIN); /* cluster authorized operations */
    reply_end(r, out, start, fl);
}

/* ---- Produce ---- */

/* A produce request once appended: what its answer needs, kept while an
 * acks=all produce waits for the disk (the frame is gone by then). */
typedef struct produce_state {
    stream__host_wait wait; /* first: the host gives its address back */
    kafka *k;
    int32_t correlation_id;
    int16_t version;
    bool flexible;
    int16_t refused; /* Kafka's error for every partition (bad acks, a
                        transactional producer), 0: each its own */
    size_t ntopics, nparts;
    char (*names)[STREAM_TOPIC_NAME_MAX + 1]; /* each topic's name, NUL-terminated */
    size_t *counts;                           /* each topic's partitions */
    int32_t *partitions;
    stream__produce_result *res;
} produce_state;

static void produce_state_free(produce_state *s)
{
    if (s == NULL)
        return;
    free(s->names);
    free(s->counts);
    free(s->partitions);
    free(s->res);
    free(s);
}

static void produce_answer(stream__req *r, produce_state *s)
{
    int v = s->version;
    bool fl = s->flexible;
    size_t start;
    stream_buf *out = reply_begin_at(r, s->correlation_id, fl, &start);
    stream__kafka_put_array_len(out, fl, s->ntopics);
    size_t k = 0;
    for (size_t i = 0; i < s->ntopics; i++) {
        stream__kafka_put_string(out, fl, s->names[i], strlen(s->names[i]));
        stream__kafka_put_array_len(out, fl, s->counts[i]);
        for (size_t j = 0; j < s->counts[i]; j++, k++) {
            const stream__produce_result *pr = &s->res[k];
            stream_buf_put_be32(out, (uint32_t)s->partitions[k]);
            stream_buf_put_be16(out, (uint16_t)(s->refused ? s->refused : kafka_error(pr->err)));
            stream_buf_put_be64(out, (uint64_t)(pr->err ? -1 : pr->base_offset));
            if (v >= 2)
                stream_buf_put_be64(out, (uint64_t)-1); /* log_append_time: CreateTime */
            if (v >= 5)
                stream_buf_put_be64(out, (uint64_t)(pr->err ? -1 : pr->log_start_offset));
            if (v >= 8) {
                stream__kafka_put_array_len(out, fl, 0); /* record_errors */
                stream__kafka_put_string(out, fl, pr->err ? pr->msg : NULL,
                                         pr->err ? strlen(pr->msg) : 0);
            }
            stream__kafka_put_tags(out, fl);
        }
        stream__kafka_put_tags(out, fl);
    }
    stream_buf_put_be32(out, 0); /* throttle_time_ms */
    reply_end(r, out, start, fl);
}

static void produce_done(stream_broker *b, stream__req *r, stream__host_wait *w, bool cancelled)
{
    produce_state *s = (produce_state *)w;
    if (!cancelled) {
        size_t k = 0;
        for (size_t i = 0; i < s->ntopics; i++)
            for (size_t j = 0; j < s->counts[i]; j++, k++)
                stream__host_produce_settle(b, s->names[i], s->partitions[k], &s->res[k]);
        produce_answer(r, s);
    }
    produce_state_free(s);
}

/* One partition's records: refused here when they are not a RecordBatch
 * v2 run (Kafka's INVALID_RECORD), else appended by the broker. */
static void produce_partition(kafka *k, const stream__kafka_request *q,
                              const stream__kafka_topic *t, const stream__kafka_part *pt,
                              stream__produce_result *res)
{
    memset(res, 0, sizeof(*res));
    res->base_offset = res->log_start_offset = -1;
    if (pt->records == NULL || pt->records_len < 17 || pt->records[16] != 2) {
        res->err = STREAM_EMAGIC;
        snprintf(res->msg, sizeof(res->msg),
                 "Produce requests with version %d are only allowed to contain record batches "
                 "with magic version 2",
                 (int)q->api_version);
        return;
    }
    /* The frame is the connection's own and writable (stream__frame_handler):
     * the broker stamps base offsets into the batches in place. */
    stream__host_produce(k->broker, t->name, t->name_len, pt->partition,
                         (uint8_t *)(uintptr_t)pt->records, pt->records_len, q->acks, res);
}

static int produce(kafka *k, stream__req *r, const stream__kafka_request *q)
{
    produce_state *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return STREAM_ENOMEM;
    s->k = k;
    s->wait.done = produce_done;
    s->correlation_id = q->correlation_id;
    s->version = q->api_version;
    s->flexible = q->flexible;
    s->ntopics = q->ntopics;
    s->nparts = q->nparts;
    s->names = calloc(q->ntopics ? q->ntopics : 1, sizeof(*s->names));
    s->counts = calloc(q->ntopics ? q->ntopics : 1, sizeof(*s->counts));
    s->partitions = calloc(q->nparts ? q->nparts : 1, sizeof(*s->partitions));
    s->res = calloc(q->nparts ? q->nparts : 1, sizeof(*s->res));
    stream_log **logs = calloc(q->nparts ? q->nparts : 1, sizeof(*logs));
    int64_t *need = calloc(q->nparts ? q->nparts : 1, sizeof(*need));
    if (s->names == NULL || s->counts == NULL || s->partitions == NULL || s->res == NULL ||
        logs == NULL || need == NULL) {
        free(logs);
        free(need);
        produce_state_free(s);
        return STREAM_ENOMEM;
    }
    /* Kafka refuses the whole request for these, each partition with the
     * same error. */
    if (q->acks != -1 && q->acks != 0 && q->acks != 1)
        s->refused = STREAM__KAFKA_INVALID_REQUIRED_ACKS;
    else if (q->txn_id != NULL)
        s->refused = STREAM__KAFKA_TRANSACTIONAL_ID_AUTHORIZATION_FAILED; /* not yet */
    size_t nwait = 0;
    for (size_t i = 0; i < q->ntopics; i++) {
        const stream__kafka_topic *t = &q->topics[i];
        size_t n = t->name_len < STREAM_TOPIC_NAME_MAX ? t->name_len : STREAM_TOPIC_NAME_MAX;
        memcpy(s->names[i], t->name, n);
        s->counts[i] = t->count;
        for (size_t j = t->first; j < t->first + t->count; j++) {
            s->partitions[j] = q->parts[j].partition;
            if (s->refused != 0) {
                s->res[j].err = STREAM_EINVAL;
                s->res[j].base_offset = s->res[j].log_start_offset = -1;
                snprintf(s->res[j].msg, sizeof(s->res[j].msg), "%s",
                         s->refused == STREAM__KAFKA_INVALID_REQUIRED_ACKS
                             ? "acks must be -1, 0 or 1"
                             : "transactions are not supported yet");
                continue;
            }
            produce_partition(k, q, t, &q->parts[j], &s->res[j]);
            if (s->res[j].err == 0 && s->res[j].need_durable > 0) {
                stream_log *log =
                    stream__host_partition_log(k->broker, s->names[i], s->partitions[j]);
                if (log != NULL) {
                    logs[nwait] = log;
                    need[nwait++] = s->res[j].need_durable;
                }
            }
        }
    }
    if (q->acks == 0) {
        /* Nothing is answered; a failure closes the connection, as Kafka
         * does, so that the client notices. */
        int failed = 0;
        for (size_t j = 0; j < q->nparts; j++)
            if (s->res[j].err != 0) {
                stream__host_log(k->broker, STREAM_BROKER_WARN,
                                 "kafka: %s: acks=0 produce failed: %s; closing",
                                 stream__host_req_peer(r), s->res[j].msg);
                failed = s->res[j].err;
            }
        free(logs);
        free(need);
        produce_state_free(s);
        if (failed != 0)
            return failed;
        stream__host_req_drop(r);
        return 0;
    }
    if (nwait == 0) {
        free(logs);
        free(need);
        produce_answer(r, s);
        produce_state_free(s);
        return 0;
    }
    uint64_t timeout = q->timeout_ms > 0 ? (uint64_t)q->timeout_ms : 0;
    stream__host_wait_durable(k->broker, r, logs, need, nwait, timeout, &s->wait);
    free(logs);
    free(need);
    return 0;
}

/* ---- Fetch ---- */

static void fetch_begin(stream_frame *f, uint64_t id, int version, size_t ntopics)
{
    bool fl = version >= 12;
    stream_buf *out = f->out;
    stream_buf_put_be32(out, (uint32_t)id);
    stream__kafka_put_tags(out, fl);
    stream_buf_put_be32(out, 0); /* throttle_time_ms */
    if (version >= 7) {
        stream_buf_put_be16(out, 0); /* error_code */
        stream_buf_put_be32(out, 0); /* session_id: sessions are declined */
    }
    stream__kafka_put_array_len(out, fl, ntopics);
}

static void fetch_topic(stream_frame *f, int version, const char *name, size_t nparts)
{
    bool fl = version >= 12;
    stream__kafka_put_string(f->out, fl, name, strlen(name));
    stream__kafka_put_array_len(f->out, fl, nparts);
}

static void fetch_partition(stream_frame *f, int version, const stream__fetch_answer *a,
                            size_t nbytes)
{
    bool fl = version >= 12;
    stream_buf *out = f->out;
    stream_buf_put_be32(out, (uint32_t)a->partition);
    stream_buf_put_be16(out, (uint16_t)kafka_error(a->err));
    stream_buf_put_be64(out, (uint64_t)a->high_watermark);
    stream_buf_put_be64(out, (uint64_t)a->high_watermark); /* last_stable_offset */
    if (version >= 5)
        stream_buf_put_be64(out, (uint64_t)a->log_start_offset);
    stream__kafka_put_array_len(out, fl, 0); /* aborted_transactions */
    if (version >= 11)
        stream_buf_put_be32(out, (uint32_t)-1); /* preferred_read_replica */
    stream__kafka_put_bytes_len(out, fl, nbytes);
}

static void fetch_tags(stream_frame *f, int version)
{
    stream__kafka_put_tags(f->out, version >= 12);
}

/* A fetch answer that cannot be made: Kafka has no frame for "no memory";
 * the connection closes, and the client reconnects and asks again. */
static void fetch_fail(stream__req *r, uint64_t id, int version, int err)
{
    stream__host_req_close(r);
}

static const stream__fetch_codec kafka_fetch_codec = {
    .begin = fetch_begin,
    .topic = fetch_topic,
    .partition = fetch_partition,
    .partition_end = fetch_tags,
    .topic_end = fetch_tags,
    .end = fetch_tags,
    .fail = fetch_fail,
};

static int fetch(kafka *k, stream__req *r, const stream__kafka_request *q)
{
    if (q->replica_id >= 0)
        return STREAM_EUNSUPPORTED; /* followers speak the native protocol */
    stream__fetch_topic *topics = calloc(q->ntopics ? q->ntopics : 1, sizeof(*topics));
    stream__fetch_part *parts = calloc(q->nparts ? q->nparts : 1, sizeof(*parts));
    if (topics == NULL || parts == NULL) {
        free(topics);
        free(parts);
        return STREAM_ENOMEM;
    }
    for (size_t i = 0; i < q->ntopics; i++) {
        topics[i].name = q->topics[i].name;
        topics[i].name_len = q->topics[i].name_len;
        topics[i].nparts = q->topics[i].count;
    }
    for (size_t j = 0; j < q->nparts; j++) {
        parts[j].partition = q->parts[j].partition;
        parts[j].offset = q->parts[j].offset;
        parts[j].max_bytes = q->parts[j].max_bytes > 0 ? (size_t)q->parts[j].max_bytes : 1;
    }
    size_t max_bytes = q->api_version >= 3 && q->max_bytes > 0 ? (size_t)q->max_bytes : SIZE_MAX;
    stream__host_fetch(k->broker, r, (uint64_t)(uint32_t)q->correlation_id, q->api_version,
                       &kafka_fetch_codec, q->max_wait_ms,
                       q->min_bytes > 0 ? (size_t)q->min_bytes : 0, max_bytes, topics, q->ntopics,
                       parts, q->nparts);
    free(topics);
    free(parts);
    return 0;
}

/* ---- ListOffsets ---- */

static void list_offsets(kafka *k, stream__req *r, const stream__kafka_request *q)
{
    int v = q->api_version;
    bool fl = q->flexible;
    size_t start;
    stream_buf *out = reply_begin(r, q, 2, &start);
    stream__kafka_put_array_len(out, fl, q->ntopics);
    for (size_t i = 0; i < q->ntopics; i++) {
        const stream__kafka_topic *t = &q->topics[i];
        stream__kafka_put_string(out, fl, t->name, t->name_len);
        stream__kafka_put_array_len(out, fl, t->count);
        for (size_t j = t->first; j < t->first + t->count; j++) {
            const stream__kafka_part *pt = &q->parts[j];
            int64_t offset = -1, ts = -1;
            char msg[320];
            int err = stream__host_list_offset(k->broker, t->name, t->name_len, pt->partition,
                                               pt->offset, &offset, &ts, msg, sizeof(msg));
            if (err == 0 && pt->offset >= 0 && ts < 0)
                offset = -1; /* no record at or after the time: Kafka's answer is -1 */
            stream_buf_put_be32(out, (uint32_t)pt->partition);
            stream_buf_put_be16(out, (uint16_t)kafka_error(err));
            stream_buf_put_be64(out, (uint64_t)(err ? -1 : ts));
            stream_buf_put_be64(out, (uint64_t)(err ? -1 : offset));
            if (v >= 4)
                stream_buf_put_be32(out, (uint32_t)(err ? -1 : 0)); /* leader_epoch */
            stream__kafka_put_tags(out, fl);
        }
        stream__kafka_put_tags(out, fl);
    }
    reply_end(r, out, start, fl);
}

/* ---- OffsetForLeaderEpoch ---- */

/* A single broker leads every partition in one epoch: the end of any
 * epoch asked about up to it is the log end (the high watermark). */
static void offset_for_leader_epoch(kafka *k, stream__req *r, const stream__kafka_request *q)
{
    int v = q->api_version;
    bool fl = q->flexible;
    size_t start;
    stream_buf *out = reply_begin(r, q, 2, &start);
    stream__kafka_put_array_len(out, fl, q->ntopics);
    stream_store *store = stream__host_store(k->broker);
    for (size_t i = 0; i < q->ntopics; i++) {
        const stream__kafka_topic *t = &q->topics[i];
        char name[STREAM_TOPIC_NAME_MAX + 1] = "";
        if (t->name_len <= STREAM_TOPIC_NAME_MAX) {
            memcpy(name, t->name, t->name_len);
            name[t->name_len] = '\0';
        }
        stream_topic *st = name[0] ? stream_store_topic(store, name) : NULL;
        stream__kafka_put_string(out, fl, t->name, t->name_len);
        stream__kafka_put_array_len(out, fl, t->count);
        for (size_t j = t->first; j < t->first + t->count; j++) {
            const stream__kafka_part *pt = &q->parts[j];
            int16_t err = 0;
            int32_t epoch = -1, leader = -1;
            int64_t end = -1;
            stream__host_role role = STREAM__ROLE_NONE;
            if (st == NULL || pt->partition < 0 || pt->partition >= st->partition_count) {
                err = STREAM__KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
            } else {
                stream__host_partition_state(k->broker, st->partitions[pt->partition], &role,
                                             &leader, &epoch, &end);
                if (role != STREAM__ROLE_LEADER && role != STREAM__ROLE_LOCAL) {
                    err = STREAM__KAFKA_NOT_LEADER_OR_FOLLOWER;
                } else if (pt->current_epoch >= 0 && pt->current_epoch > epoch) {
                    err = STREAM__KAFKA_UNKNOWN_LEADER_EPOCH; /* the client knows a newer one */
                } else if (pt->current_epoch >= 0 && pt->current_epoch < epoch) {
                    err = STREAM__KAFKA_FENCED_LEADER_EPOCH;
                }
            }
            if (err != 0) {
                epoch = -1;
                end = -1;
            }
            stream_buf_put_be16(out, (uint16_t)err);
            stream_buf_put_be32(out, (uint32_t)pt->partition);
            if (v >= 1)
                stream_buf_put_be32(out, (uint32_t)epoch);
            stream_buf_put_be64(out, (uint64_t)end);
            stream__kafka_put_tags(out, fl);
        }
        stream__kafka_put_tags(out, fl);
    }
    reply_end(r, out, start, fl);
}

/* ---- InitProducerId, FindCoordinator ---- */

static void init_producer_id(kafka *k, stream__req *r, const stream__kafka_request *q)
{
    bool fl = q->flexible;
    int64_t pid = -1;
    int16_t err = 0;
    char msg[320];
    if (q->txn_id != NULL) {
        /* Transactions come later. Of Kafka's refusals, this is the one
         * every client takes as final at once: librdkafka retries any
         * other (UNSUPPORTED_VERSION included) until init_transactions()
         * times out, which with no timeout is never. */
        stream__host_log(k->broker, STREAM_BROKER_WARN,
                         "kafka: %s: transactional id %.*s refused: transactions are not "
                         "supported",
                         stream__host_req_peer(r), (int)q->txn_id_len, q->txn_id);
        err = STREAM__KAFKA_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    } else {
        int rc = stream__host_producer_id(k->broker, &pid, msg, sizeof(msg));
        if (rc != 0) {
            err = kafka_error(rc);
            pid = -1;
        }
    }
    size_t start;
    stream_buf *out = reply_begin(r, q, 0, &start);
    stream_buf_put_be16(out, (uint16_t)err);
    stream_buf_put_be64(out, (uint64_t)pid);
    stream_buf_put_be16(out, (uint16_t)(err ? -1 : 0)); /* producer_epoch */
    reply_end(r, out, start, fl);
}

/* The node that coordinates group `name` (len bytes) and its Kafka
 * listener: 0, or COORDINATOR_NOT_AVAILABLE while the cluster knows none
 * (the offsets topic is being created, an election, a broker registered
 * without a Kafka listener) - clients ask again. */
static int16_t group_coordinator(kafka *k, const char *name, size_t len, int32_t *node, char *host,
                                 size_t host_len, uint16_t *port)
{
    char group[STREAM_GROUP_NAME_MAX + 1];
    stream__coord *co = stream__classic_coord(k->broker);
    if (co == NULL || len > STREAM_GROUP_NAME_MAX)
        return STREAM__KAFKA_COORDINATOR_NOT_AVAILABLE;
    memcpy(group, name, len);
    group[len] = '\0';
    if (stream__classic_locate(co, group, node) != 0)
        return STREAM__KAFKA_COORDINATOR_NOT_AVAILABLE;
    stream__kafka_node *nodes = NULL;
    size_t n = 0;
    int16_t err = STREAM__KAFKA_COORDINATOR_NOT_AVAILABLE;
    if (stream__kafka_nodes(k->broker, k->host, k->port, &nodes, &n) == 0)
        for (size_t i = 0; i < n; i++)
            if (nodes[i].id == *node) {
                snprintf(host, host_len, "%s", nodes[i].host);
                *port = nodes[i].port;
                err = 0;
            }
    free(nodes);
    return err;
}

/* A group's coordinator is the broker the coordinator names (kafka_groups.c
 * answers its APIs there, NOT_COORDINATOR elsewhere); that of a
 * transactional id, this broker (which refuses transactions, kafka_txn.c). */
static void find_coordinator(kafka *k, stream__req *r, const stream__kafka_request *q)
{
    int v = q->api_version;
    bool fl = q->flexible;
    int32_t node = stream__host_node_id(k->broker);
    char host[256];
    uint16_t port = k->port;
    snprintf(host, sizeof(host), "%s", k->host);
    int16_t err = 0;
    if (q->key_type == 0)
        err = group_coordinator(k, q->key, q->key_len, &node, host, sizeof(host), &port);
    size_t start;
    stream_buf *out = reply_begin(r, q, 1, &start);
    stream_buf_put_be16(out, (uint16_t)err);
    if (v >= 1) {
        const char *msg = "no coordinator for this group yet; try again shortly";
        stream__kafka_put_string(out, fl, err ? msg : NULL, err ? strlen(msg) : 0);
    }
    stream_buf_put_be32(out, (uint32_t)(err ? -1 : node));
    stream__kafka_put_string(out, fl, err ? "" : host, err ? 0 : strlen(host));
    stream_buf_put_be32(out, (uint32_t)(err ? -1 : (int32_t)port));
    reply_end(r, out, start, fl);
}

/* ---- dispatch ---- */

static int handle_frame(void *svc, stream__req *r, uint8_t *frame, size_t len)
{
    kafka *k = svc;
    int16_t key = len >= 2 ? (int16_t)((frame[0] << 8) | frame[1]) : -1;
    if (stream__kafka_group_api(key))
        return stream__kafka_groups_frame(k->groups, r, frame, len);
    if (stream__kafka_txn_api(key))
        return stream__kafka_txn_frame(k->broker, r, frame, len);
    stream__kafka_request q;
    size_t body;
    if (stream__kafka_header_decode(frame, len, &q, &body) == 0 &&
        stream__kafka_admin_api(q.api_key)) {
        int rc = stream__kafka_admin_handle(k->broker, r, frame, len, &q, body, k->host, k->port);
        if (rc != 0)
            stream__host_log(
                k->broker, STREAM_BROKER_DEBUG, "kafka: %s: closing: %s (api key %d, version %d)",
                stream__host_req_peer(r), stream_strerror(rc), (int)q.api_key, (int)q.api_version);
        return rc;
    }
    int rc = stream__kafka_request_decode(frame, len, &q);
    if (rc == STREAM_EUNSUPPORTED && q.api_key == STREAM__KAFKA_API_VERSIONS) {
        api_versions(r, &q, STREAM__KAFKA_UNSUPPORTED_VERSION);
        stream__kafka_request_release(&q);
        return 0;
    }
    if (rc != 0) {
        const stream__kafka_api *api = stream__kafka_api_find(q.api_key);
        stream__host_log(k->broker, STREAM_BROKER_DEBUG,
                         "kafka: %s: closing: %s (api key %d%s%s, version %d)",
                         stream__host_req_peer(r),
                         rc == STREAM_EUNKNOWNOP     ? "an API this listener does not answer"
                         : rc == STREAM_EUNSUPPORTED ? "a version outside the advertised range"
                                                     : "a malformed request",
                         (int)q.api_key, api ? " " : "", api ? api->name : "", (int)q.api_version);
        stream__kafka_request_release(&q);
        return rc;
    }
    switch (q.api_key) {
    case STREAM__KAFKA_API_VERSIONS:
        api_versions(r, &q, 0);
        break;
    case STREAM__KAFKA_METADATA:
        metadata(k, r, &q);
        break;
    case STREAM__KAFKA_PRODUCE:
        rc = produce(k, r, &q);
        break;
    case STREAM__KAFKA_FETCH:
        rc = fetch(k, r, &q);
        break;
    case STREAM__KAFKA_LIST_OFFSETS:
        list_offsets(k, r, &q);
        break;
    case STREAM__KAFKA_OFFSET_FOR_LEADER_EPOCH:
        offset_for_leader_epoch(k, r, &q);
        break;
    case STREAM__KAFKA_INIT_PRODUCER_ID:
        init_producer_id(k, r, &q);
        break;
    case STREAM__KAFKA_FIND_COORDINATOR:
        find_coordinator(k, r, &q);
        break;
    default:
        rc = STREAM_EUNKNOWNOP;
        break;
    }
    stream__kafka_request_release(&q);
    return rc;
}

/* ---- the service ---- */

static int kafka_start(stream_broker *b, void **svc, char *errbuf, size_t errbuf_len)
{
    kafka *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return STREAM_ENOMEM;
    *svc = k;
    k->broker = b;
    k->groups = stream__kafka_groups_new(b);
    if (k->groups == NULL)
        return STREAM_ENOMEM;
    const stream_config *cfg = stream__host_config(b);
    const char *addr = stream_config_str(cfg, STREAM_CONFIG_KAFKA_LISTEN);
    if (strcmp(addr, "off") == 0)
        return 0;
    /* Metadata lists this broker alone so far: in a cluster (where, on one
     * machine, every node would also want port 9092) the listener opens
     * only where it is asked for. */
    if (stream__host_clustered(b) && !stream_config_is_set(cfg, "kafka.listen")) {
        stream__host_log(b, STREAM_BROKER_INFO,
                         "kafka listener off: a cluster's broker opens it only when kafka.listen "
                         "is set");
        return 0;
    }
    int rc = stream__host_listen(b, addr, "kafka.listen (--kafka-listen)", handle_frame, k,
                                 &k->port, errbuf, errbuf_len);
    if (rc != 0)
        return rc;
    /* The host as configured, without IPv6 brackets and its port. */
    const char *h = addr, *colon = strrchr(addr, ':');
    size_t n = colon != NULL ? (size_t)(colon - addr) : 0;
    if (n >= 2 && h[0] == '[') {
        h++;
        n -= 2;
    }
    if (n >= sizeof(k->host))
        n = sizeof(k->host) - 1;
    memcpy(k->host, h, n);
    k->host[n] = '\0';
    if (strcmp(k->host, "localhost") == 0)
        snprintf(k->host, sizeof(k->host), "127.0.0.1");
    stream__host_set_advertised(b, "kafka", k->host, k->port);
    stream__host_log(b, STREAM_BROKER_INFO, "kafka listener on %s:%u", k->host, (unsigned)k->port);
    return 0;
}

static void kafka_stop(void *svc)
{
}

static void kafka_free(void *svc)
{
    kafka *k = svc;
    if (k != NULL)
        stream__kafka_groups_free(k->groups);
    free(k);
}

static void kafka_conn_closed(void *svc, uint64_t conn_id)
{
    kafka *k = svc;
    stream__kafka_groups_conn_closed(k->groups, conn_id);
}

/* Joins and syncs held by a rebalance are answered before the broker
 * drains its connections. */
static bool kafka_stop_requested(void *svc)
{
    kafka *k = svc;
    stream__kafka_groups_stopping(k->groups);
    return false;
}

const stream__service stream__kafka_service = {
    .name = "Kafka listener",
    .ops = NULL,
    .nops = 0,
    .start = kafka_start,
    .stop = kafka_stop,
    .free = kafka_free,
    .conn_closed = kafka_conn_closed,
    .stop_requested = kafka_stop_requested,
};
