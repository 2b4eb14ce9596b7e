/*
 * client_metadata.c - the client's metadata cache and the metadata calls:
 * stream_client_metadata, partition counts (creating a topic the way a
 * produce would), invalidation and background refreshes.
 *
 * The cache maps topic names (sorted, binary search) to partition counts and
 * leaders. Only good answers are cached: a topic that does not exist is asked
 * about again next time, so a topic created meanwhile is seen at once.
 * Entries go stale on invalidation (the producer and consumer invalidate on
 * ENOTOPIC, ENOTLEADER, ENOPART) or after metadata_max_age_ms.
 *
 * Wire format (share/doc/protocol.md, "metadata"):
 *   request  {topics?: [str]}
 *   response {brokers: [{node_id, host, port}], topics: [{name, err, msg?,
 *            internal, partitions: [{partition, err, leader, leader_epoch,
 *            log_start_offset, high_watermark, log_end_offset, size_bytes,
 *            dirty_ratio_ppm?, last_clean_ms?}]}]}
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"
#include "stream/error.h"

static void topic_md_release(stream__topic_md *t)
{
    free(t->name);
    free(t->leaders);
}

void stream__md_cache_release(stream__md_cache *md)
{
    for (size_t i = 0; i < md->ntopics; i++)
        topic_md_release(&md->topics[i]);
    free(md->topics);
    while (md->pending) {
        stream__md_pending *m = md->pending;
        md->pending = m->next;
        free(m->topic);
        free(m);
    }
    memset(md, 0, sizeof *md);
}

static stream__topic_md *cache_find(stream_client *c, const char *topic, size_t *pos)
{
    stream__md_cache *md = stream__client_md(c);
    size_t lo = 0, hi = md->ntopics;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int d = strcmp(md->topics[mid].name, topic);
        if (d == 0) {
            if (pos)
                *pos = mid;
            return &md->topics[mid];
        }
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (pos)
        *pos = lo;
    return NULL;
}

const stream__topic_md *stream__client_topic(stream_client *c, const char *topic)
{
    return cache_find(c, topic, NULL);
}

static void cache_remove(stream_client *c, const char *topic)
{
    stream__md_cache *md = stream__client_md(c);
    size_t pos;
    stream__topic_md *t = cache_find(c, topic, &pos);
    if (!t)
        return;
    md->generation++;
    topic_md_release(t);
    memmove(&md->topics[pos], &md->topics[pos + 1], (md->ntopics - pos - 1) * sizeof *md->topics);
    md->ntopics--;
}

/* Puts a topic's metadata into the cache (errors are not cached: the next
 * use asks again). */
static void cache_put(stream_client *c, const stream_topic_meta *tm, int64_t now)
{
    stream__md_cache *md = stream__client_md(c);
    if (tm->err != 0) {
        cache_remove(c, tm->name);
        return;
    }
    int32_t *leaders =
        malloc((size_t)(tm->partition_count ? tm->partition_count : 1) * sizeof *leaders);
    if (!leaders)
        return; /* a cache miss later is harmless */
    for (int32_t i = 0; i < tm->partition_count; i++)
        leaders[i] = tm->partitions[i].leader;
    size_t pos;
    stream__topic_md *t = cache_find(c, tm->name, &pos);
    if (!t) {
        if (md->ntopics == md->cap) {
            size_t cap = md->cap ? md->cap * 2 : 8;
            stream__topic_md *nt = realloc(md->topics, cap * sizeof *nt);
            if (!nt) {
                free(leaders);
                return;
            }
            md->topics = nt;
            md->cap = cap;
        }
        char *name = strdup(tm->name);
        if (!name) {
            free(leaders);
            return;
        }
        memmove(&md->topics[pos + 1], &md->topics[pos], (md->ntopics - pos) * sizeof *md->topics);
        md->ntopics++;
        t = &md->topics[pos];
        memset(t, 0, sizeof *t);
        t->name = name;
    }
    if (!t->leaders || t->partition_count != tm->partition_count ||
        memcmp(t->leaders, leaders, (size_t)tm->partition_count * sizeof *leaders) != 0)
        md->generation++;
    free(t->leaders);
    t->leaders = leaders;
    t->err = 0;
    t->partition_count = tm->partition_count;
    t->fetched_ms = now;
    t->stale = false;
}

void stream_client_invalidate_metadata(stream_client *c, const char *topic)
{
    stream__md_cache *md = stream__client_md(c);
    for (size_t i = 0; i < md->ntopics; i++)
        if (!topic || strcmp(md->topics[i].name, topic) == 0)
            md->topics[i].stale = true;
}

void stream_metadata_free(stream_metadata *md)
{
    if (!md)
        return;
    for (size_t i = 0; i < md->broker_count; i++)
        free(md->brokers[i].host);
    for (size_t i = 0; i < md->topic_count; i++) {
        free(md->topics[i].name);
        for (int32_t k = 0; md->topics[i].partitions && k < md->topics[i].partition_count; k++) {
            free(md->topics[i].partitions[k].replicas);
            free(md->topics[i].partitions[k].isr);
        }
        free(md->topics[i].partitions);
    }
    free(md->brokers);
    free(md->topics);
    free(md);
}

static int part_cmp(const void *a, const void *b)
{
    int32_t x = ((const stream_partition_meta *)a)->partition;
    int32_t y = ((const stream_partition_meta *)b)->partition;
    return (x > y) - (x < y);
}

static int tmeta_cmp(const void *a, const void *b)
{
    return strcmp(((const stream_topic_meta *)a)->name, ((const stream_topic_meta *)b)->name);
}

/* A list of node ids (replicas, isr): when absent (a single node), the
 * leader alone, or nothing without a leader. */
static int parse_ids(const msgpack_object *pm, const char *key, int32_t leader, int32_t **out,
                     uint32_t *count, char *errbuf, size_t errbuf_len)
{
    const msgpack_object *a;
    int rc = stream_field_array_opt(pm, key, &a, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    uint32_t n = a ? a->via.array.size : leader >= 0 ? 1 : 0;
    if (n > 1024) {
        stream__errf(errbuf, errbuf_len, "field '%s': %u ids is too many", key, n);
        return STREAM_EPROTO;
    }
    *out = calloc(n ? n : 1, sizeof(int32_t));
    if (*out == NULL)
        return STREAM_ENOMEM;
    *count = n;
    if (a == NULL) {
        if (n == 1)
            (*out)[0] = leader;
        return 0;
    }
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *o = &a->via.array.ptr[i];
        if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > INT32_MAX) {
            stream__errf(errbuf, errbuf_len, "field '%s'[%u] must be a node id", key, i);
            return STREAM_EBADREQ;
        }
        (*out)[i] = (int32_t)o->via.u64;
    }
    return 0;
}

static int parse_partition_meta(const msgpack_object *pm, stream_partition_meta *out, char *errbuf,
                                size_t errbuf_len)
{
    int64_t v, err;
    int rc = stream_field_int(pm, "partition", 0, INT32_MAX, &v, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    out->partition = (int32_t)v;
    rc = stream_field_int_opt(pm, "err", 0, INT32_MAX, 0, &err, errbuf, errbuf_len);
    out->err = -(int)err;
    if (rc == 0)
        rc = stream_field_int_opt(pm, "leader", -1, INT32_MAX, -1, &v, errbuf, errbuf_len);
    out->leader = (int32_t)v;
    if (rc == 0)
        rc = stream_field_int_opt(pm, "leader_epoch", -1, INT32_MAX, -1, &v, errbuf, errbuf_len);
    out->leader_epoch = (int32_t)v;
    if (rc == 0)
        rc = stream_field_int_opt(pm, "log_start_offset", -1, INT64_MAX, -1, &out->log_start_offset,
                                  errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_int_opt(pm, "high_watermark", -1, INT64_MAX, -1, &out->high_watermark,
                                  errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_int_opt(pm, "size_bytes", -1, INT64_MAX, -1, &out->size_bytes, errbuf,
                                  errbuf_len);
    if (rc == 0)
        rc = stream_field_int_opt(pm, "log_end_offset", -1, INT64_MAX, -1, &out->log_end_offset,
                                  errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_int_opt(pm, "dirty_ratio_ppm", -1, 1000000, -1, &v, errbuf, errbuf_len);
    out->compacted = v >= 0;
    out->dirty_ratio_ppm = (int32_t)v;
    if (rc == 0)
        rc = stream_field_int_opt(pm, "last_clean_ms", -1, INT64_MAX, -1, &out->last_clean_ms,
                                  errbuf, errbuf_len);
    if (rc == 0)
        rc = parse_ids(pm, "replicas", out->leader, &out->replicas, &out->replica_count, errbuf,
                       errbuf_len);
    if (rc == 0)
        rc = parse_ids(pm, "isr", out->leader, &out->isr, &out->isr_count, errbuf, errbuf_len);
    return rc;
}

static int parse_topic_meta(const msgpack_object *t, stream_topic_meta *out, char *errbuf,
                            size_t errbuf_len)
{
    const char *name;
    size_t len;
    int64_t err;
    const msgpack_object *parts;
    int rc = stream_field_str(t, "name", &name, &len, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_int_opt(t, "err", 0, INT32_MAX, 0, &err, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_array_opt(t, "partitions", &parts, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    out->name = stream__strndup(name, len);
    if (!out->name)
        return STREAM_ENOMEM;
    out->err = -(int)err;
    out->internal = stream_topic_is_internal(name, len);
    uint32_t n = parts && out->err == 0 ? parts->via.array.size : 0;
    if (n > STREAM_MAX_PARTITIONS) {
        stream__errf(errbuf, errbuf_len, "topic '%s': %u partitions is too many", out->name, n);
        return STREAM_EPROTO;
    }
    out->partitions = calloc(n ? n : 1, sizeof *out->partitions);
    if (!out->partitions)
        return STREAM_ENOMEM;
    out->partition_count = (int32_t)n; /* zeroed: freed as a whole even after an error */
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *pm;
        rc = stream_elem_map(parts, i, "partitions", &pm, errbuf, errbuf_len);
        if (rc == 0)
            rc = parse_partition_meta(pm, &out->partitions[i], errbuf, errbuf_len);
        if (rc < 0)
            return rc;
    }
    out->partition_count = (int32_t)n;
    qsort(out->partitions, n, sizeof *out->partitions, part_cmp);
    /* Partitions must be exactly 0..n-1: the producer indexes them. */
    for (uint32_t i = 0; i < n; i++)
        if (out->partitions[i].partition != (int32_t)i) {
            stream__errf(errbuf, errbuf_len, "topic '%s': partition numbers are not 0..%u",
                         out->name, n - 1);
            return STREAM_EPROTO;
        }
    return 0;
}

typedef struct md_parse {
    stream_client *c;
    stream_metadata *md;
} md_parse;

static int metadata_parse(const msgpack_object *root, void *arg, char *errbuf, size_t errbuf_len)
{
    md_parse *mp = arg;
    stream_metadata *md = calloc(1, sizeof *md);
    if (!md)
        return STREAM_ENOMEM;
    mp->md = md;
    const msgpack_object *brokers, *topics;
    int rc = stream_field_array_opt(root, "brokers", &brokers, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_array(root, "topics", &topics, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    size_t nb = brokers ? brokers->via.array.size : 0;
    md->brokers = calloc(nb ? nb : 1, sizeof *md->brokers);
    md->topics = calloc(topics->via.array.size ? topics->via.array.size : 1, sizeof *md->topics);
    if (!md->brokers || !md->topics)
        return STREAM_ENOMEM;
    for (size_t i = 0; i < nb; i++) {
        const msgpack_object *b;
        const char *host;
        size_t len;
        int64_t id, port;
        rc = stream_elem_map(brokers, i, "brokers", &b, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream_field_int(b, "node_id", INT32_MIN, INT32_MAX, &id, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream_field_str(b, "host", &host, &len, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream_field_int(b, "port", 0, 65535, &port, errbuf, errbuf_len);
        if (rc < 0)
            return rc;
        md->brokers[i].node_id = (int32_t)id;
        md->brokers[i].port = (int)port;
        md->brokers[i].host = stream__strndup(host, len);
        md->broker_count++;
        if (!md->brokers[i].host)
            return STREAM_ENOMEM;
    }
    for (size_t i = 0; i < topics->via.array.size; i++) {
        const msgpack_object *t;
        rc = stream_elem_map(topics, i, "topics", &t, errbuf, errbuf_len);
        if (rc == 0) {
            md->topic_count++;
            rc = parse_topic_meta(t, &md->topics[i], errbuf, errbuf_len);
        }
        if (rc < 0)
            return rc;
    }
    qsort(md->topics, md->topic_count, sizeof *md->topics, tmeta_cmp);
    return stream__client_metadata_apply(mp->c, md);
}

int stream__client_metadata_apply(stream_client *c, const stream_metadata *md)
{
    if (md->broker_count > 0 && stream__client_set_brokers(c, md->brokers, md->broker_count) < 0)
        return STREAM_ENOMEM;
    int64_t now = stream__client_mono_ms();
    for (size_t i = 0; i < md->topic_count; i++)
        cache_put(c, &md->topics[i], now);
    return 0;
}

static void pack_metadata_request(stream_client *c, const char *const *topics, size_t n)
{
    msgpack_packer *pk = stream__req_begin(c, STREAM_OP_METADATA, topics ? 1 : 0);
    if (topics) {
        stream_pack_key(pk, "topics");
        msgpack_pack_array(pk, n);
        for (size_t i = 0; i < n; i++)
            stream_pack_cstr(pk, topics[i]);
    }
}

int stream_client_metadata(stream_client *c, const char *const *topics, size_t n, int timeout_ms,
                           stream_metadata **out, char *errbuf, size_t errbuf_len)
{
    *out = NULL;
    for (size_t i = 0; topics && i < n; i++)
        if (!topics[i]) {
            stream__errf(errbuf, errbuf_len, "topic name %zu is NULL", i);
            return STREAM_EINVAL;
        }
    pack_metadata_request(c, topics, n);
    md_parse mp = {.c = c};
    int rc = stream__client_call(c, timeout_ms, metadata_parse, &mp, errbuf, errbuf_len);
    if (rc < 0) {
        stream_metadata_free(mp.md);
        return rc;
    }
    *out = mp.md;
    return 0;
}

int stream_client_partition_count(stream_client *c, const char *topic, int timeout_ms, char *errbuf,
                                  size_t errbuf_len)
{
    if (!topic) {
        stream__errf(errbuf, errbuf_len, "no topic given");
        return STREAM_EINVAL;
    }
    const stream__topic_md *t = cache_find(c, topic, NULL);
    if (t && !t->stale &&
        stream__client_mono_ms() - t->fetched_ms < stream__client_metadata_max_age(c))
        return t->partition_count;
    stream_metadata *md;
    int rc = stream_client_metadata(c, &topic, 1, timeout_ms, &md, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    rc = STREAM_ENOTOPIC;
    if (md->topic_count == 1 && md->topics[0].err == 0 && md->topics[0].partition_count > 0)
        rc = md->topics[0].partition_count;
    else if (md->topic_count == 1 && md->topics[0].err != 0)
        rc = md->topics[0].err;
    if (rc == STREAM_ENOTOPIC)
        stream__errf(errbuf, errbuf_len, "unknown topic '%s'", topic);
    else if (rc < 0)
        stream__errf(errbuf, errbuf_len, "topic '%s': %s", topic, stream_strerror(rc));
    stream_metadata_free(md);
    return rc;
}

/* Reads auto.create.topics.enable from a describe_configs {broker: true}. */
static int autocreate_parse(const msgpack_object *root, void *arg, char *errbuf, size_t errbuf_len)
{
    bool *enabled = arg;
    const msgpack_object *broker, *configs;
    int rc = stream_field_map(root, "broker", &broker, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_array(broker, "configs", &configs, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    for (uint32_t i = 0; i < configs->via.array.size; i++) {
        const msgpack_object *e = &configs->via.array.ptr[i];
        const char *name, *value;
        size_t nlen, vlen;
        if (stream_field_str(e, "name", &name, &nlen, NULL, 0) == 0 &&
            stream_str_eq(name, nlen, "auto.create.topics.enable") &&
            stream_field_str(e, "value", &value, &vlen, NULL, 0) == 0)
            *enabled = stream_str_eq(value, vlen, "true");
    }
    return 0;
}

static int create_parse(const msgpack_object *root, void *arg, char *errbuf, size_t errbuf_len)
{
    int *topic_err = arg;
    const msgpack_object *topics;
    int64_t err = 0;
    int rc = stream_field_array(root, "topics", &topics, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    if (topics->via.array.size != 1)
        return STREAM_EPROTO;
    const char *text = NULL;
    size_t tlen = 0;
    stream_field_int_opt(&topics->via.array.ptr[0], "err", 0, INT32_MAX, 0, &err, NULL, 0);
    stream_field_str_opt(&topics->via.array.ptr[0], "msg", &text, &tlen, NULL, 0);
    *topic_err = -(int)err;
    if (err && text)
        stream__errf(errbuf, errbuf_len, "%.*s", (int)(tlen > 400 ? 400 : tlen), text);
    return 0;
}

int stream__client_partition_count_create(stream_client *c, const char *topic, int timeout_ms,
                                          char *errbuf, size_t errbuf_len)
{
    int rc = stream_client_partition_count(c, topic, timeout_ms, errbuf, errbuf_len);
    if (rc != STREAM_ENOTOPIC)
        return rc;
    /* Metadata does not create topics; a produce would. Do what that produce
     * would do, now, so the partition count is known before partitioning. */
    bool enabled = false;
    msgpack_packer *pk = stream__req_begin(c, STREAM_OP_DESCRIBE_CONFIGS, 2);
    stream_pack_kv_bool(pk, "broker", true);
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, 0);
    char eb[512];
    rc = stream__client_call(c, timeout_ms, autocreate_parse, &enabled, eb, sizeof eb);
    if (rc < 0 || !enabled) {
        stream__errf(errbuf, errbuf_len, "unknown topic '%s'", topic);
        return rc == 0 || rc == STREAM_EPROTO ? STREAM_ENOTOPIC : rc;
    }
    int terr = 0;
    pk = stream__req_begin(c, STREAM_OP_CREATE_TOPICS, 1);
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 2);
    stream_pack_kv_cstr(pk, "name", topic);
    stream_pack_kv_int(pk, "partitions", -1);
    rc = stream__client_call(c, timeout_ms, create_parse, &terr, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    if (terr != 0 && terr != STREAM_ETOPICEXISTS)
        return terr; /* EBADNAME and the like: errbuf has the broker's words */
    return stream_client_partition_count(c, topic, timeout_ms, errbuf, errbuf_len);
}

/* Asynchronous refresh: the cache is updated when the answer comes. */
static void refresh_cb(stream_client *c, const stream__resp *r, void *arg)
{
    stream__md_pending *m = arg;
    stream__md_pending **pp = &stream__client_md(c)->pending;
    /* Unlink this refresh from the pending list. */
    while (*pp && *pp != m)
        pp = &(*pp)->next;
    if (*pp)
        *pp = m->next;
    if (r->err == 0 && r->root) {
        md_parse mp = {.c = c};
        metadata_parse(r->root, &mp, NULL, 0);
        stream_metadata_free(mp.md);
    }
    free(m->topic);
    free(m);
}

int stream__client_refresh_async(stream_client *c, const char *topic)
{
    stream__md_cache *md = stream__client_md(c);
    for (stream__md_pending *m = md->pending; m; m = m->next)
        if (strcmp(m->topic, topic) == 0)
            return 0;
    /* Rate limit: many partitions failing at once (a broker died) ask once,
     * and a retry loop against a leader not elected yet asks at most every
     * STREAM__MD_REFRESH_MIN_MS. */
    int64_t now = stream__client_mono_ms();
    stream__topic_md *t = cache_find(c, topic, NULL);
    if (t && t->refresh_ms && now - t->refresh_ms < STREAM__MD_REFRESH_MIN_MS)
        return 0;
    if (t)
        t->refresh_ms = now;
    stream__md_pending *m = calloc(1, sizeof *m);
    if (!m || !(m->topic = strdup(topic))) {
        free(m);
        return STREAM_ENOMEM;
    }
    pack_metadata_request(c, &topic, 1);
    int64_t id = stream__req_send(c, refresh_cb, m, 0, 0);
    if (id < 0) {
        free(m->topic);
        free(m);
        return (int)id;
    }
    m->next = md->pending;
    md->pending = m;
    return 0;
}

/* ---- routing ------------------------------------------------------------- */

int32_t stream__client_leader(stream_client *c, const char *topic, int32_t partition)
{
    const stream__topic_md *t = cache_find(c, topic, NULL);
    if (!t || t->err != 0 || partition < 0 || partition >= t->partition_count)
        return STREAM__LEADER_UNKNOWN;
    return t->leaders[partition] < 0 ? -1 : t->leaders[partition];
}

uint64_t stream__client_md_generation(stream_client *c)
{
    return stream__client_md(c)->generation;
}

stream__retry_action stream__retry_decide(int err)
{
    switch (err) {
    case STREAM_ENOTLEADER:
    case STREAM_ENOTENOUGHREPLICAS:
    case STREAM_ESTALEEPOCH:
    case STREAM_ENOBROKER:
    case STREAM_ENOTOPIC:
    case STREAM_ENOPART:
    case STREAM_ECONNRESET:
    case STREAM_ECONNREFUSED:
    case STREAM_ETIMEDOUT:
    case STREAM_ECLOSED:
        return STREAM__RETRY_REFRESH;
    case STREAM_EAGAIN:
    case STREAM_EPROTO:
        return STREAM__RETRY_SAME;
    default:
        return STREAM__RETRY_NO;
    }
}

int32_t stream__metadata_leader(const stream_metadata *md, const char *topic, int32_t partition,
                                stream_hostport *addr)
{
    if (addr)
        addr->host[0] = '\0';
    const stream_topic_meta *tm = NULL;
    for (size_t i = 0; md && i < md->topic_count && !tm; i++)
        if (md->topics[i].name && strcmp(md->topics[i].name, topic) == 0)
            tm = &md->topics[i];
    if (!tm || tm->err != 0 || partition < 0 || partition >= tm->partition_count)
        return STREAM__LEADER_UNKNOWN;
    int32_t leader = tm->partitions[partition].leader;
    if (leader < 0)
        return -1;
    for (size_t i = 0; addr && i < md->broker_count; i++) {
        const stream_broker_meta *b = &md->brokers[i];
        if (b->node_id == leader && b->host && strlen(b->host) < sizeof addr->host && b->port > 0 &&
            b->port <= 65535) {
            snprintf(addr->host, sizeof addr->host, "%s", b->host);
            addr->port = (uint16_t)b->port;
            break;
        }
    }
    return leader;
}
