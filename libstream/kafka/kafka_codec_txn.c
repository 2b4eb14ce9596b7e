/*
 * kafka_codec_txn.c - decoding the transactional APIs' requests
 * (kafka_codec_txn.h), through kafka_codec.h's latching getters: a
 * truncated or lying frame ends as STREAM_EPROTO however deep it was, and
 * every array's count is checked against the bytes left before anything is
 * allocated for it.
 */
#include <stdlib.h>
#include <string.h>

#include "kafka_codec_txn.h"
#include "stream/error.h"

bool stream__kafka_txn_api(int16_t key)
{
    switch (key) {
    case STREAM__KAFKA_ADD_PARTITIONS_TO_TXN:
    case STREAM__KAFKA_ADD_OFFSETS_TO_TXN:
    case STREAM__KAFKA_END_TXN:
    case STREAM__KAFKA_WRITE_TXN_MARKERS:
    case STREAM__KAFKA_TXN_OFFSET_COMMIT:
    case STREAM__KAFKA_DESCRIBE_TRANSACTIONS:
    case STREAM__KAFKA_LIST_TRANSACTIONS:
        return true;
    default:
        return false;
    }
}

/* The growing arrays of a request being decoded. */
typedef struct caps {
    size_t txns, topics, parts;
} caps;

/* A new transaction entry (id may be NULL); NULL on ENOMEM. */
static stream__kafka_txn *add_txn(stream__kafka_txn_request *req, caps *c)
{
    if (stream__kafka_grow((void **)&req->txns, &c->txns, req->ntxns, 1, sizeof(*req->txns)) != 0)
        return NULL;
    stream__kafka_txn *t = &req->txns[req->ntxns++];
    memset(t, 0, sizeof(*t));
    t->producer_id = -1;
    t->first = req->ntopics;
    return t;
}

/* topics [name | partitions [...] | tags] into txn t: partitions are bare
 * int32s, or (TxnOffsetCommit, `offsets`) partition | offset |
 * leader_epoch (v2+) | metadata | tags each. */
static int get_topics(stream_reader *rd, stream__kafka_txn_request *req, caps *c,
                      stream__kafka_txn *t, bool offsets)
{
    bool fl = req->hdr.flexible;
    size_t n = stream__kafka_get_n(rd, fl);
    for (size_t i = 0; i < n && rd->err == 0; i++) {
        if (stream__kafka_grow((void **)&req->topics, &c->topics, req->ntopics, 1,
                               sizeof(*req->topics)) != 0)
            return STREAM_ENOMEM;
        stream__kafka_topic *tp = &req->topics[req->ntopics];
        memset(tp, 0, sizeof(*tp));
        stream__kafka_get_name(rd, fl, &tp->name, &tp->name_len);
        size_t np = stream__kafka_get_n(rd, fl);
        if (rd->err != 0)
            break;
        if (stream__kafka_grow((void **)&req->parts, &c->parts, req->nparts, np,
                               sizeof(*req->parts)) != 0)
            return STREAM_ENOMEM;
        tp->first = req->nparts;
        tp->count = np;
        req->ntopics++;
        for (size_t j = 0; j < np && rd->err == 0; j++) {
            req->parts[req->nparts++] = stream__kafka_get_i32(rd);
            if (!offsets)
                continue;
            (void)stream__kafka_get_i64(rd); /* committed_offset */
            if (req->hdr.api_version >= 2)
                (void)stream__kafka_get_i32(rd); /* committed_leader_epoch */
            const char *meta;
            size_t meta_len;
            stream__kafka_get_string(rd, fl, &meta, &meta_len);
            stream__kafka_skip_tags(rd, fl);
        }
        stream__kafka_skip_tags(rd, fl);
    }
    t->count = req->ntopics - t->first;
    return 0;
}

/* transactional_id | producer_id | producer_epoch: the head of most. */
static stream__kafka_txn *get_txn_head(stream_reader *rd, stream__kafka_txn_request *req, caps *c)
{
    stream__kafka_txn *t = add_txn(req, c);
    if (t == NULL)
        return NULL;
    stream__kafka_get_name(rd, req->hdr.flexible, &t->id, &t->id_len);
    t->producer_id = stream__kafka_get_i64(rd);
    (void)stream__kafka_get_i16(rd); /* producer_epoch */
    return t;
}

static int get_body(stream_reader *rd, void *arg)
{
    stream__kafka_txn_request *req = arg;
    int v = req->hdr.api_version;
    bool fl = req->hdr.flexible;
    caps c = {0};
    stream__kafka_txn *t;
    const char *s;
    size_t n, slen;
    int rc = 0;
    switch (req->hdr.api_key) {
    case STREAM__KAFKA_ADD_PARTITIONS_TO_TXN:
        if (v <= 3) {
            if ((t = get_txn_head(rd, req, &c)) == NULL)
                return STREAM_ENOMEM;
            rc = get_topics(rd, req, &c, t, false);
            break;
        }
        n = stream__kafka_get_n(rd, fl);
        for (size_t i = 0; i < n && rd->err == 0 && rc == 0; i++) {
            if ((t = get_txn_head(rd, req, &c)) == NULL)
                return STREAM_ENOMEM;
            (void)stream__kafka_get_i8(rd); /* verify_only */
            rc = get_topics(rd, req, &c, t, false);
            stream__kafka_skip_tags(rd, fl);
        }
        break;
    case STREAM__KAFKA_ADD_OFFSETS_TO_TXN:
        if (get_txn_head(rd, req, &c) == NULL)
            return STREAM_ENOMEM;
        stream__kafka_get_name(rd, fl, &s, &slen); /* group_id */
        break;
    case STREAM__KAFKA_END_TXN:
        if (get_txn_head(rd, req, &c) == NULL)
            return STREAM_ENOMEM;
        (void)stream__kafka_get_i8(rd); /* committed */
        break;
    case STREAM__KAFKA_WRITE_TXN_MARKERS:
        n = stream__kafka_get_n(rd, fl);
        for (size_t i = 0; i < n && rd->err == 0 && rc == 0; i++) {
            if ((t = add_txn(req, &c)) == NULL)
                return STREAM_ENOMEM;
            t->producer_id = stream__kafka_get_i64(rd);
            (void)stream__kafka_get_i16(rd); /* producer_epoch */
            (void)stream__kafka_get_i8(rd);  /* transaction_result */
            rc = get_topics(rd, req, &c, t, false);
            (void)stream__kafka_get_i32(rd); /* coordinator_epoch */
            if (v >= 2)
                (void)stream__kafka_get_i8(rd); /* transaction_version */
            stream__kafka_skip_tags(rd, fl);
        }
        break;
    case STREAM__KAFKA_TXN_OFFSET_COMMIT:
        if ((t = add_txn(req, &c)) == NULL)
            return STREAM_ENOMEM;
        stream__kafka_get_name(rd, fl, &t->id, &t->id_len);
        stream__kafka_get_name(rd, fl, &s, &slen); /* group_id */
        t->producer_id = stream__kafka_get_i64(rd);
        (void)stream__kafka_get_i16(rd); /* producer_epoch */
        if (v >= 3) {
            (void)stream__kafka_get_i32(rd);             /* generation_id */
            stream__kafka_get_name(rd, fl, &s, &slen);   /* member_id */
            stream__kafka_get_string(rd, fl, &s, &slen); /* group_instance_id */
        }
        rc = get_topics(rd, req, &c, t, true);
        break;
    case STREAM__KAFKA_DESCRIBE_TRANSACTIONS:
        n = stream__kafka_get_n(rd, fl);
        for (size_t i = 0; i < n && rd->err == 0; i++) {
            if ((t = add_txn(req, &c)) == NULL)
                return STREAM_ENOMEM;
            stream__kafka_get_name(rd, fl, &t->id, &t->id_len); /* a bare string: no tags */
        }
        break;
    case STREAM__KAFKA_LIST_TRANSACTIONS:
        n = stream__kafka_get_n(rd, fl);
        for (size_t i = 0; i < n && rd->err == 0; i++)
            stream__kafka_get_name(rd, fl, &s, &slen); /* state_filters */
        n = stream__kafka_get_n(rd, fl);
        for (size_t i = 0; i < n && rd->err == 0; i++)
            (void)stream__kafka_get_i64(rd); /* producer_id_filters */
        if (v >= 1)
            (void)stream__kafka_get_i64(rd); /* duration_filter */
        break;
    default:
        return STREAM_EUNKNOWNOP;
    }
    stream__kafka_skip_tags(rd, fl);
    return rc;
}

int stream__kafka_txn_decode(const uint8_t *p, size_t len, stream__kafka_txn_request *req)
{
    memset(req, 0, sizeof(*req));
    return stream__kafka_family_decode(p, len, &req->hdr, stream__kafka_txn_api, get_body, req);
}

void stream__kafka_txn_release(stream__kafka_txn_request *req)
{
    free(req->txns);
    free(req->topics);
    free(req->parts);
    stream__kafka_request_release(&req->hdr);
    memset(req, 0, sizeof(*req));
}
