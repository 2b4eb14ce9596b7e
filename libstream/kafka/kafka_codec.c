/*
 * kafka_codec.c - decoding Kafka requests and the primitives of Kafka
 * responses (kafka_codec.h).
 *
 * Every read goes through stream_reader, whose getters check what remains
 * and latch the first failure; a decoder reads a whole request and looks at
 * the latch once (`rd.err`), so a truncated or lying frame ends as
 * STREAM_EPROTO however deep it was. Counts of arrays are checked against
 * the bytes left before anything is allocated for them (every element takes
 * at least one byte), so a hostile count costs nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "kafka_codec.h"
#include "stream/error.h"

/* Versions as librdkafka 2.x and Kafka's own clients ask for them; each
 * range starts where the record batch v2 (magic 2) layout does for the
 * data APIs. */
static const stream__kafka_api apis[] = {
    {STREAM__KAFKA_PRODUCE, 3, 9, 9, "Produce", false},
    {STREAM__KAFKA_FETCH, 4, 12, 12, "Fetch", false},
    {STREAM__KAFKA_LIST_OFFSETS, 1, 7, 6, "ListOffsets", false},
    {STREAM__KAFKA_METADATA, 0, 12, 9, "Metadata", false},
    {STREAM__KAFKA_OFFSET_COMMIT, 0, 8, 8, "OffsetCommit", false},
    {STREAM__KAFKA_OFFSET_FETCH, 0, 8, 6, "OffsetFetch", false},
    {STREAM__KAFKA_FIND_COORDINATOR, 0, 3, 3, "FindCoordinator", false},
    {STREAM__KAFKA_JOIN_GROUP, 0, 7, 6, "JoinGroup", false},
    {STREAM__KAFKA_HEARTBEAT, 0, 4, 4, "Heartbeat", false},
    {STREAM__KAFKA_LEAVE_GROUP, 0, 4, 4, "LeaveGroup", false},
    {STREAM__KAFKA_SYNC_GROUP, 0, 5, 4, "SyncGroup", false},
    {STREAM__KAFKA_DESCRIBE_GROUPS, 0, 5, 5, "DescribeGroups", false},
    {STREAM__KAFKA_LIST_GROUPS, 0, 4, 3, "ListGroups", false},
    {STREAM__KAFKA_API_VERSIONS, 0, 3, 3, "ApiVersions", false},
    {STREAM__KAFKA_CREATE_TOPICS, 0, 4, 5, "CreateTopics", false},
    {STREAM__KAFKA_DELETE_TOPICS, 0, 5, 4, "DeleteTopics", false},
    {STREAM__KAFKA_INIT_PRODUCER_ID, 0, 4, 2, "InitProducerId", false},
    {STREAM__KAFKA_OFFSET_FOR_LEADER_EPOCH, 0, 4, 4, "OffsetForLeaderEpoch", false},
    /* Transactions: refused in every version Kafka (up to 4.0) has defined
     * (kafka_txn.c). */
    {STREAM__KAFKA_ADD_PARTITIONS_TO_TXN, 0, 5, 3, "AddPartitionsToTxn", true},
    {STREAM__KAFKA_ADD_OFFSETS_TO_TXN, 0, 4, 3, "AddOffsetsToTxn", true},
    {STREAM__KAFKA_END_TXN, 0, 5, 3, "EndTxn", true},
    {STREAM__KAFKA_WRITE_TXN_MARKERS, 0, 2, 1, "WriteTxnMarkers", true},
    {STREAM__KAFKA_TXN_OFFSET_COMMIT, 0, 5, 3, "TxnOffsetCommit", true},
    {STREAM__KAFKA_DESCRIBE_CONFIGS, 0, 4, 4, "DescribeConfigs", false},
    {STREAM__KAFKA_ALTER_CONFIGS, 0, 2, 2, "AlterConfigs", false},
    {STREAM__KAFKA_CREATE_PARTITIONS, 0, 3, 2, "CreatePartitions", false},
    {STREAM__KAFKA_DELETE_GROUPS, 0, 2, 2, "DeleteGroups", false},
    {STREAM__KAFKA_INCREMENTAL_ALTER_CONFIGS, 0, 1, 1, "IncrementalAlterConfigs", false},
    {STREAM__KAFKA_DESCRIBE_CLUSTER, 0, 0, 0, "DescribeCluster", false},
    {STREAM__KAFKA_DESCRIBE_TRANSACTIONS, 0, 0, 0, "DescribeTransactions", true},
    {STREAM__KAFKA_LIST_TRANSACTIONS, 0, 1, 0, "ListTransactions", true},
};

const stream__kafka_api *stream__kafka_apis(size_t *n)
{
    *n = sizeof(apis) / sizeof(apis[0]);
    return apis;
}

const stream__kafka_api *stream__kafka_api_find(int16_t key)
{
    for (size_t i = 0; i < sizeof(apis) / sizeof(apis[0]); i++)
        if (apis[i].key == key)
            return &apis[i];
    return NULL;
}

/* ---- reading ---- */

static int8_t get_i8(stream_reader *rd)
{
    uint8_t v = 0;
    stream_get_u8(rd, &v);
    return (int8_t)v;
}

static int16_t get_i16(stream_reader *rd)
{
    uint16_t v = 0;
    stream_get_be16(rd, &v);
    return (int16_t)v;
}

static int32_t get_i32(stream_reader *rd)
{
    uint32_t v = 0;
    stream_get_be32(rd, &v);
    return (int32_t)v;
}

static int64_t get_i64(stream_reader *rd)
{
    uint64_t v = 0;
    stream_get_be64(rd, &v);
    return (int64_t)v;
}

static void fail(stream_reader *rd)
{
    if (rd->err == 0)
        rd->err = STREAM_ECORRUPT;
}

/* A length in compact form (uvarint n + 1; 0 null: -1) or as int16/int32. */
static int64_t get_len(stream_reader *rd, bool compact, bool wide)
{
    if (compact) {
        uint64_t v = 0;
        if (stream_get_uvarint(rd, &v) != 0 || v > (uint64_t)INT32_MAX + 1) {
            fail(rd);
            return -1;
        }
        return (int64_t)v - 1;
    }
    return wide ? get_i32(rd) : get_i16(rd);
}

/* A (nullable) string; *s NULL for null. A null where none is allowed is
 * the caller's to refuse. */
static void get_string(stream_reader *rd, bool flexible, const char **s, size_t *len)
{
    int64_t n = get_len(rd, flexible, false);
    const uint8_t *p = NULL;
    *s = NULL;
    *len = 0;
    if (n < -1)
        fail(rd);
    if (n <= 0 || rd->err != 0) {
        if (n == 0 && rd->err == 0)
            *s = (const char *)rd->p + rd->pos; /* empty, but in the frame */
        return;
    }
    if (stream_get_bytes(rd, (size_t)n, &p) == 0) {
        *s = (const char *)p;
        *len = (size_t)n;
    }
}

/* A non-null string. */
static void get_name(stream_reader *rd, bool flexible, const char **s, size_t *len)
{
    get_string(rd, flexible, s, len);
    if (*s == NULL)
        fail(rd);
}

/* Nullable bytes (compact or int32 length). */
static void get_bytes(stream_reader *rd, bool flexible, const uint8_t **p, size_t *len)
{
    int64_t n = get_len(rd, flexible, true);
    *p = NULL;
    *len = 0;
    if (n < -1)
        fail(rd);
    if (n < 0 || rd->err != 0)
        return;
    if (stream_get_bytes(rd, (size_t)n, p) == 0)
        *len = (size_t)n;
}

/* An array's count: -1 for null, else 0..n with n no more than the bytes
 * left (each element takes at least one). */
static int64_t get_count(stream_reader *rd, bool flexible)
{
    int64_t n = get_len(rd, flexible, true);
    if (n < -1 || (n > 0 && (uint64_t)n > stream_reader_left(rd))) {
        fail(rd);
        return 0;
    }
    return n;
}

/* Skips a tagged-field section (flexible versions). */
static void skip_tags(stream_reader *rd, bool flexible)
{
    if (!flexible)
        return;
    uint64_t n = 0, tag, size;
    if (stream_get_uvarint(rd, &n) != 0 || n > stream_reader_left(rd)) {
        fail(rd);
        return;
    }
    for (uint64_t i = 0; i < n && rd->err == 0; i++) {
        if (stream_get_uvarint(rd, &tag) != 0 || stream_get_uvarint(rd, &size) != 0 ||
            size > stream_reader_left(rd)) {
            fail(rd);
            return;
        }
        stream_skip(rd, (size_t)size);
    }
}

/* ---- the request header ---- */

int stream__kafka_header_decode(const uint8_t *p, size_t len, stream__kafka_request *req,
                                size_t *body)
{
    memset(req, 0, sizeof(*req));
    stream_reader rd;
    stream_reader_init(&rd, p, len);
    req->api_key = get_i16(&rd);
    req->api_version = get_i16(&rd);
    req->correlation_id = get_i32(&rd);
    if (rd.err != 0)
        return STREAM_EPROTO;
    const stream__kafka_api *api = stream__kafka_api_find(req->api_key);
    req->flexible = api != NULL && req->api_version >= api->flexible_from;
    /* client_id keeps its int16 length in every header version. */
    get_string(&rd, false, &req->client_id, &req->client_id_len);
    /* ApiVersions' header is read as flexible only in versions it knows:
     * a client guessing a newer one gets the plain error answer. */
    bool header_tags = req->flexible && (api == NULL || req->api_version <= api->max_version);
    skip_tags(&rd, header_tags);
    *body = rd.pos;
    return rd.err != 0 ? STREAM_EPROTO : 0;
}

/* ---- the request bodies ---- */

/* Room for n more topics and m more parts (grown in one go per array). */
static int grow(stream__kafka_request *req, size_t *tcap, size_t *pcap, size_t nt, size_t np)
{
    if (req->ntopics + nt > *tcap) {
        size_t cap = *tcap * 2 > req->ntopics + nt ? *tcap * 2 : req->ntopics + nt;
        void *t = realloc(req->topics, cap * sizeof(*req->topics));
        if (t == NULL)
            return STREAM_ENOMEM;
        req->topics = t;
        *tcap = cap;
    }
    if (req->nparts + np > *pcap) {
        size_t cap = *pcap * 2 > req->nparts + np ? *pcap * 2 : req->nparts + np;
        void *pp = realloc(req->parts, cap * sizeof(*req->parts));
        if (pp == NULL)
            return STREAM_ENOMEM;
        req->parts = pp;
        *pcap = cap;
    }
    return 0;
}

/* The fields of one partition entry, by API and version. */
static void get_part(stream_reader *rd, const stream__kafka_request *req, stream__kafka_part *pt)
{
    int v = req->api_version;
    bool fl = req->flexible;
    memset(pt, 0, sizeof(*pt));
    pt->current_epoch = -1;
    pt->leader_epoch = -1;
    pt->partition = get_i32(rd);
    switch (req->api_key) {
    case STREAM__KAFKA_PRODUCE:
        get_bytes(rd, fl, &pt->records, &pt->records_len);
        break;
    case STREAM__KAFKA_FETCH:
        if (v >= 9)
            pt->current_epoch = get_i32(rd);
        pt->offset = get_i64(rd);
        if (v >= 12)
            (void)get_i32(rd); /* last_fetched_epoch */
        if (v >= 5)
            (void)get_i64(rd); /* log_start_offset: a follower's */
        pt->max_bytes = get_i32(rd);
        break;
    case STREAM__KAFKA_LIST_OFFSETS:
        if (v >= 4)
            pt->current_epoch = get_i32(rd);
        pt->offset = get_i64(rd); /* the timestamp */
        break;
    case STREAM__KAFKA_OFFSET_FOR_LEADER_EPOCH:
        if (v >= 2)
            pt->current_epoch = get_i32(rd);
        pt->leader_epoch = get_i32(rd);
        break;
    default:
        break;
    }
    skip_tags(rd, fl);
}

/* topics: [name, partitions: [entry]] as Produce, Fetch, ListOffsets and
 * OffsetForLeaderEpoch have them. */
static int get_topics(stream_reader *rd, stream__kafka_request *req)
{
    size_t tcap = 0, pcap = 0;
    int64_t nt = get_count(rd, req->flexible);
    for (int64_t i = 0; i < nt && rd->err == 0; i++) {
        if (grow(req, &tcap, &pcap, 1, 0) != 0)
            return STREAM_ENOMEM;
        stream__kafka_topic *t = &req->topics[req->ntopics];
        get_name(rd, req->flexible, &t->name, &t->name_len);
        int64_t np = get_count(rd, req->flexible);
        if (np < 0)
            fail(rd);
        if (rd->err != 0)
            break;
        t->first = req->nparts;
        t->count = (size_t)np;
        req->ntopics++;
        if (grow(req, &tcap, &pcap, 0, (size_t)np) != 0)
            return STREAM_ENOMEM;
        for (int64_t j = 0; j < np && rd->err == 0; j++)
            get_part(rd, req, &req->parts[req->nparts++]);
        skip_tags(rd, req->flexible);
    }
    if (nt < 0)
        fail(rd);
    return 0;
}

/* Metadata's topics: null (v1+) or, in v0, empty for every topic. */
static int get_metadata_topics(stream_reader *rd, stream__kafka_request *req)
{
    int v = req->api_version;
    size_t tcap = 0, pcap = 0;
    int64_t nt = get_count(rd, req->flexible);
    req->all_topics = nt < 0 || (v == 0 && nt == 0);
    for (int64_t i = 0; i < nt && rd->err == 0; i++) {
        if (grow(req, &tcap, &pcap, 1, 0) != 0)
            return STREAM_ENOMEM;
        stream__kafka_topic *t = &req->topics[req->ntopics++];
        memset(t, 0, sizeof(*t));
        if (v >= 10) {
            const uint8_t *id;
            stream_get_bytes(rd, 16, &id); /* topic_id: names are what we know */
            get_string(rd, req->flexible, &t->name, &t->name_len);
        } else {
            get_name(rd, req->flexible, &t->name, &t->name_len);
        }
        skip_tags(rd, req->flexible);
    }
    req->allow_auto_create = true;
    if (v >= 4)
        req->allow_auto_create = get_i8(rd) != 0;
    if (v >= 8 && v <= 10)
        (void)get_i8(rd); /* include_cluster_authorized_operations */
    if (v >= 8)
        (void)get_i8(rd); /* include_topic_authorized_operations */
    return 0;
}

static int get_body(stream_reader *rd, stream__kafka_request *req)
{
    int v = req->api_version;
    bool fl = req->flexible;
    int rc = 0;
    req->replica_id = -1;
    req->producer_id = -1;
    req->producer_epoch = -1;
    switch (req->api_key) {
    case STREAM__KAFKA_PRODUCE:
        get_string(rd, fl, &req->txn_id, &req->txn_id_len);
        req->acks = get_i16(rd);
        req->timeout_ms = get_i32(rd);
        rc = get_topics(rd, req);
        break;
    case STREAM__KAFKA_FETCH:
        req->replica_id = get_i32(rd);
        req->max_wait_ms = get_i32(rd);
        req->min_bytes = get_i32(rd);
        req->max_bytes = get_i32(rd);
        req->isolation_level = get_i8(rd);
        if (v >= 7) {
            req->session_id = get_i32(rd);
            req->session_epoch = get_i32(rd);
        }
        rc = get_topics(rd, req);
        if (rc == 0 && v >= 7) {
            /* forgotten_topics_data: only for incremental sessions, which
             * are declined; read past. */
            int64_t nf = get_count(rd, fl);
            for (int64_t i = 0; i < nf && rd->err == 0; i++) {
                const char *s;
                size_t n;
                get_name(rd, fl, &s, &n);
                int64_t np = get_count(rd, fl);
                for (int64_t j = 0; j < np && rd->err == 0; j++)
                    (void)get_i32(rd);
                skip_tags(rd, fl);
            }
        }
        if (v >= 11) {
            const char *rack;
            size_t n;
            get_string(rd, fl, &rack, &n);
        }
        break;
    case STREAM__KAFKA_LIST_OFFSETS:
        req->replica_id = get_i32(rd);
        if (v >= 2)
            req->isolation_level = get_i8(rd);
        rc = get_topics(rd, req);
        break;
    case STREAM__KAFKA_METADATA:
        rc = get_metadata_topics(rd, req);
        break;
    case STREAM__KAFKA_FIND_COORDINATOR:
        get_name(rd, fl, &req->key, &req->key_len);
        if (v >= 1)
            req->key_type = get_i8(rd);
        break;
    case STREAM__KAFKA_API_VERSIONS:
        if (v >= 3) {
            const char *s;
            size_t n;
            get_string(rd, fl, &s, &n); /* client_software_name */
            get_string(rd, fl, &s, &n); /* client_software_version */
        }
        break;
    case STREAM__KAFKA_INIT_PRODUCER_ID:
        get_string(rd, fl, &req->txn_id, &req->txn_id_len);
        req->timeout_ms = get_i32(rd);
        if (v >= 3) {
            req->producer_id = get_i64(rd);
            req->producer_epoch = get_i16(rd);
        }
        break;
    case STREAM__KAFKA_OFFSET_FOR_LEADER_EPOCH:
        if (v >= 3)
            req->replica_id = get_i32(rd);
        rc = get_topics(rd, req);
        break;
    default:
        return STREAM_EUNKNOWNOP;
    }
    skip_tags(rd, fl);
    return rc;
}

int stream__kafka_body_begin(const uint8_t *p, size_t len, stream__kafka_request *req,
                             stream_reader *rd)
{
    size_t body;
    int rc = stream__kafka_header_decode(p, len, req, &body);
    if (rc != 0)
        return rc;
    const stream__kafka_api *api = stream__kafka_api_find(req->api_key);
    if (api == NULL)
        return STREAM_EUNKNOWNOP;
    if (req->api_version < api->min_version || req->api_version > api->max_version)
        return STREAM_EUNSUPPORTED;
    stream_reader_init(rd, p, len);
    stream_skip(rd, body);
    return 0;
}

int stream__kafka_body_end(const stream_reader *rd)
{
    /* Bytes past the last field are a request of another shape. */
    return rd->err != 0 || stream_reader_left(rd) != 0 ? STREAM_EPROTO : 0;
}

int stream__kafka_family_decode(const uint8_t *p, size_t len, stream__kafka_request *hdr,
                                bool (*is_api)(int16_t key),
                                int (*body)(stream_reader *rd, void *arg), void *arg)
{
    stream_reader rd;
    int rc = stream__kafka_body_begin(p, len, hdr, &rd);
    if (rc == 0 && !is_api(hdr->api_key))
        rc = STREAM_EUNKNOWNOP;
    if (rc == 0)
        rc = body(&rd, arg);
    return rc != 0 ? rc : stream__kafka_body_end(&rd);
}

int stream__kafka_request_decode(const uint8_t *p, size_t len, stream__kafka_request *req)
{
    stream_reader rd;
    int rc = stream__kafka_body_begin(p, len, req, &rd);
    if (rc == 0)
        rc = get_body(&rd, req);
    return rc != 0 ? rc : stream__kafka_body_end(&rd);
}

void stream__kafka_request_release(stream__kafka_request *req)
{
    free(req->topics);
    free(req->parts);
    req->topics = NULL;
    req->parts = NULL;
    req->ntopics = req->nparts = 0;
}

/* ---- writing ---- */

void stream__kafka_put_string(stream_buf *b, bool flexible, const char *s, size_t len)
{
    if (flexible)
        stream_buf_put_uvarint(b, s == NULL ? 0 : (uint64_t)len + 1);
    else
        stream_buf_put_be16(b, s == NULL ? 0xffff : (uint16_t)len);
    if (s != NULL)
        stream_buf_put(b, s, len);
}

void stream__kafka_put_array_len(stream_buf *b, bool flexible, size_t n)
{
    if (flexible)
        stream_buf_put_uvarint(b, (uint64_t)n + 1);
    else
        stream_buf_put_be32(b, (uint32_t)n);
}

void stream__kafka_put_bytes_len(stream_buf *b, bool flexible, size_t n)
{
    stream__kafka_put_array_len(b, flexible, n);
}

void stream__kafka_put_tags(stream_buf *b, bool flexible)
{
    if (flexible)
        stream_buf_put_u8(b, 0);
}

size_t stream__kafka_response_start(stream_buf *b, int32_t correlation_id, bool header_flexible)
{
    size_t start = b->len;
    stream_buf_put_be32(b, 0);
    stream_buf_put_be32(b, (uint32_t)correlation_id);
    stream__kafka_put_tags(b, header_flexible);
    return start;
}

void stream__kafka_response_finish(stream_buf *b, size_t start, size_t extra)
{
    if (b->oom || b->len < start + 4)
        return;
    stream_buf_patch_be32(b, start, (uint32_t)(b->len - start - 4 + extra));
}

void stream__kafka_response_end(stream_buf *b, size_t start, bool flexible)
{
    stream__kafka_put_tags(b, flexible);
    stream__kafka_response_finish(b, start, 0);
}

/* ---- reading, for the other decoders ---- */

int8_t stream__kafka_get_i8(stream_reader *rd)
{
    return get_i8(rd);
}

int16_t stream__kafka_get_i16(stream_reader *rd)
{
    return get_i16(rd);
}

int32_t stream__kafka_get_i32(stream_reader *rd)
{
    return get_i32(rd);
}

int64_t stream__kafka_get_i64(stream_reader *rd)
{
    return get_i64(rd);
}

void stream__kafka_get_bytes(stream_reader *rd, bool flexible, const uint8_t **p, size_t *len)
{
    get_bytes(rd, flexible, p, len);
}

void stream__kafka_get_string(stream_reader *rd, bool flexible, const char **s, size_t *len)
{
    get_string(rd, flexible, s, len);
}

void stream__kafka_get_name(stream_reader *rd, bool flexible, const char **s, size_t *len)
{
    get_name(rd, flexible, s, len);
}

int64_t stream__kafka_get_count(stream_reader *rd, bool flexible)
{
    return get_count(rd, flexible);
}

size_t stream__kafka_get_n(stream_reader *rd, bool flexible)
{
    int64_t n = stream__kafka_get_count(rd, flexible);
    if (n < 0)
        fail(rd);
    return rd->err != 0 || n < 0 ? 0 : (size_t)n;
}

int stream__kafka_grow(void **arr, size_t *cap, size_t used, size_t n, size_t elem)
{
    if (used + n <= *cap)
        return 0;
    size_t want = *cap * 2 > used + n ? *cap * 2 : used + n;
    void *p = realloc(*arr, want * elem);
    if (p == NULL)
        return STREAM_ENOMEM;
    *arr = p;
    *cap = want;
    return 0;
}

void stream__kafka_skip_tags(stream_reader *rd, bool flexible)
{
    skip_tags(rd, flexible);
}

void stream__kafka_fail(stream_reader *rd)
{
    fail(rd);
}
