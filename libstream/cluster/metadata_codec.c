/*
 * metadata_codec.c - the cluster metadata as bytes: commands (decode,
 * encode) and snapshots (see metadata.h for both layouts).
 *
 * Decoding stands on proto.h: stream_msg_parse proves the bytes are exactly
 * one MessagePack map within depth and size limits before msgpack-c
 * allocates anything, and the stream_field_* accessors read typed,
 * range-checked fields and name the bad one. What this file adds is the
 * shape of each command and of a snapshot, and the cross-checks a snapshot
 * needs (sorted, unique, consistent): its bytes come from disk or from the
 * leader, and a state machine restored from nonsense would serve nonsense.
 *
 * The encoder refuses exactly what the decoder refuses, so whatever
 * stream__meta_cmd_encode writes decodes, and re-encodes to the same
 * bytes (the fuzz target checks this).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "cluster_internal.h"
#include "metadata_internal.h"
#include "stream/proto.h"

/* ---- names and checks shared with apply ----------------------------------- */

static const char *const op_names[STREAM__META_OP__COUNT] = {[STREAM__META_OP_UNKNOWN] = "unknown",
#define OP_NAME(name, wire) [STREAM__META_OP_##name] = wire,
                                                             STREAM__META_OP_MAP(OP_NAME)
#undef OP_NAME
};

const char *stream__meta_op_name(stream__meta_op op)
{
    if ((int)op <= 0 || (int)op >= STREAM__META_OP__COUNT)
        return "unknown";
    return op_names[op];
}

static stream__meta_op op_from_name(const char *p, size_t len)
{
    for (int op = 1; op < STREAM__META_OP__COUNT; op++)
        if (stream_str_eq(p, len, op_names[op]))
            return (stream__meta_op)op;
    return STREAM__META_OP_UNKNOWN;
}

bool stream__md_host_ok(const char *p, size_t len)
{
    if (len == 0 || len > STREAM__META_HOST_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == ':' || c == '%'))
            return false;
    }
    return true;
}

bool stream__md_config_ok(const char *key, size_t key_len, const char *value, size_t value_len)
{
    if (key_len == 0 || key_len > STREAM__META_CONFIG_KEY_MAX ||
        value_len > STREAM__META_CONFIG_VALUE_MAX)
        return false;
    for (size_t i = 0; i < key_len; i++)
        if ((unsigned char)key[i] <= 0x20 || (unsigned char)key[i] >= 0x7f || key[i] == '=')
            return false;
    for (size_t i = 0; i < value_len; i++)
        if ((unsigned char)value[i] < 0x20 || (unsigned char)value[i] == 0x7f)
            return false;
    return true;
}

/* ---- packing ---------------------------------------------------------------- */

/* msgpack_packer's sink: append to the stream_buf, which latches oom. */
static int buf_sink(void *data, const char *p, size_t n)
{
    stream_buf *b = data;
    stream_buf_put(b, p, n);
    return b->oom ? -1 : 0;
}

typedef struct packing {
    msgpack_packer pk;
    stream_buf *out; /* borrowed */
    size_t start;    /* out->len at the start: cut back to it on failure */
    bool was_oom;    /* out->oom at the start */
} packing;

static void pack_start(packing *p, stream_buf *out)
{
    p->out = out;
    p->start = out->len;
    p->was_oom = out->oom;
    msgpack_packer_init(&p->pk, out, buf_sink);
}

static int pack_finish(packing *p)
{
    if (!p->out->oom)
        return 0;
    p->out->len = p->start;
    p->out->oom = p->was_oom;
    return STREAM_ENOMEM;
}

static void pack_ids(msgpack_packer *pk, const int32_t *ids, uint32_t n)
{
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++)
        msgpack_pack_int32(pk, ids[i]);
}

static void pack_kv_map(msgpack_packer *pk, const stream__meta_kv *kvs, uint32_t n)
{
    msgpack_pack_map(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        stream_pack_str(pk, kvs[i].key, kvs[i].key_len);
        stream_pack_str(pk, kvs[i].value, kvs[i].value_len);
    }
}

/* ---- commands: encoding ------------------------------------------------------ */

/* A list of 1..STREAM__META_MAX_REPLICAS distinct broker ids >= 1. */
static bool ids_ok(const stream__meta_ids *ids)
{
    if (ids->count == 0 || ids->count > STREAM__META_MAX_REPLICAS || ids->ids == NULL)
        return false;
    for (uint32_t i = 0; i < ids->count; i++)
        if (ids->ids[i] < 1)
            return false;
    return stream__md_ids_distinct(ids->ids, ids->count);
}

/* At most STREAM_STRMAP_MAX entries with distinct keys (as the decoder's
 * stream_field_strmap checks), keys and values present. */
static bool kvs_ok(const stream__meta_kv *kvs, uint32_t n, bool need_values)
{
    if (n > STREAM_STRMAP_MAX || (n > 0 && kvs == NULL))
        return false;
    for (uint32_t i = 0; i < n; i++) {
        if ((kvs[i].key == NULL && kvs[i].key_len > 0) ||
            (need_values && kvs[i].value == NULL && kvs[i].value_len > 0))
            return false;
        for (uint32_t j = 0; need_values && j < i; j++)
            if (stream__md_name_cmp(kvs[i].key, kvs[i].key_len, kvs[j].key, kvs[j].key_len) == 0)
                return false;
    }
    return true;
}

/* One change of alter_partition(s), as the decoder would accept it. */
static bool alter_ok(const stream__meta_alter *a)
{
    return (a->topic != NULL || a->topic_len == 0) && a->partition >= 0 &&
           (a->leader == -1 || a->leader >= 1) && ids_ok(&a->isr) && a->partition_epoch >= 0;
}

stream__meta_alter stream__md_cmd_alter(const stream__meta_cmd *c)
{
    stream__meta_alter a = {.topic = c->topic,
                            .topic_len = c->topic_len,
                            .has_topic_id = c->has_topic_id,
                            .partition = c->partition,
                            .leader = c->leader,
                            .isr = c->isr,
                            .partition_epoch = c->partition_epoch};
    memcpy(a.topic_id, c->topic_id, STREAM__META_TOPIC_ID_BYTES);
    return a;
}

/* What the decoder would refuse, refused before writing a byte. */
static bool cmd_ok(const stream__meta_cmd *c)
{
    if (c->req.node < 1 || ((c->topic == NULL) && c->topic_len > 0))
        return false;
    switch (c->op) {
    case STREAM__META_OP_REGISTER_BROKER:
        return c->broker_id >= 1 && c->port >= 1 && c->host != NULL &&
               stream__md_host_ok(c->host, c->host_len) &&
               (c->kafka_host == NULL ||
                (c->kafka_port >= 1 && stream__md_host_ok(c->kafka_host, c->kafka_host_len)));
    case STREAM__META_OP_FENCE_BROKER:
    case STREAM__META_OP_UNFENCE_BROKER:
        return c->broker_id >= 1 && c->broker_epoch >= 0;
    case STREAM__META_OP_CREATE_TOPIC: {
        static const uint8_t zero[STREAM__META_TOPIC_ID_BYTES];
        if (c->partition_count == 0 || c->partition_count > STREAM_MAX_PARTITIONS ||
            c->partitions == NULL || memcmp(c->topic_id, zero, sizeof zero) == 0)
            return false;
        for (uint32_t p = 0; p < c->partition_count; p++)
            if (!ids_ok(&c->partitions[p]))
                return false;
        return kvs_ok(c->configs, c->config_count, true);
    }
    case STREAM__META_OP_DELETE_TOPIC:
        return true;
    case STREAM__META_OP_CREATE_PARTITIONS:
        if (c->partition_count == 0 || c->partition_count >= STREAM_MAX_PARTITIONS ||
            c->partitions == NULL || c->partitions_before < 1 ||
            c->partitions_before > STREAM_MAX_PARTITIONS - (int32_t)c->partition_count)
            return false;
        for (uint32_t p = 0; p < c->partition_count; p++)
            if (!ids_ok(&c->partitions[p]))
                return false;
        return true;
    case STREAM__META_OP_ALTER_PARTITION: {
        stream__meta_alter a = stream__md_cmd_alter(c);
        return alter_ok(&a);
    }
    case STREAM__META_OP_ALTER_PARTITIONS:
        if (c->alter_count == 0 || c->alter_count > STREAM__META_ALTER_BATCH || c->alters == NULL)
            return false;
        for (uint32_t i = 0; i < c->alter_count; i++)
            if (!alter_ok(&c->alters[i]))
                return false;
        return true;
    case STREAM__META_OP_ALTER_CONFIGS:
        return kvs_ok(c->configs, c->config_count, true) &&
               kvs_ok(c->deletes, c->delete_count, false);
    default:
        return false;
    }
}

static void pack_topic(msgpack_packer *pk, const stream__meta_cmd *c)
{
    stream_pack_kv_str(pk, "name", c->topic, c->topic_len);
}

/* "partitions": each partition's replicas (create_topic, create_partitions). */
static void pack_partitions(msgpack_packer *pk, const stream__meta_cmd *c)
{
    stream_pack_key(pk, "partitions");
    msgpack_pack_array(pk, c->partition_count);
    for (uint32_t i = 0; i < c->partition_count; i++)
        pack_ids(pk, c->partitions[i].ids, c->partitions[i].count);
}

static void pack_guard(msgpack_packer *pk, const stream__meta_cmd *c)
{
    if (c->has_topic_id)
        stream_pack_kv_bin(pk, "topic_id", c->topic_id, STREAM__META_TOPIC_ID_BYTES);
}

/* A change's fields (5, or 6 with its guard), alter_partition's order. */
static void pack_alter(msgpack_packer *pk, const stream__meta_alter *a)
{
    stream_pack_kv_str(pk, "name", a->topic, a->topic_len);
    if (a->has_topic_id)
        stream_pack_kv_bin(pk, "topic_id", a->topic_id, STREAM__META_TOPIC_ID_BYTES);
    stream_pack_kv_int(pk, "partition", a->partition);
    stream_pack_kv_int(pk, "leader", a->leader);
    stream_pack_key(pk, "isr");
    pack_ids(pk, a->isr.ids, a->isr.count);
    stream_pack_kv_int(pk, "partition_epoch", a->partition_epoch);
}

/* True when a and b name the same topic with the same guard (one group of
 * alter_partitions' "topics"). */
static bool same_topic(const stream__meta_alter *a, const stream__meta_alter *b)
{
    return stream__md_name_cmp(a->topic, a->topic_len, b->topic, b->topic_len) == 0 &&
           a->has_topic_id == b->has_topic_id &&
           (!a->has_topic_id || memcmp(a->topic_id, b->topic_id, STREAM__META_TOPIC_ID_BYTES) == 0);
}

/* alter_partitions' "topics": each run of changes to the same topic as one
 * {name, topic_id, changes: [[partition, leader, isr, partition_epoch]]},
 * about 12 bytes a partition instead of alter_partition's 90. */
static void pack_alter_topics(msgpack_packer *pk, const stream__meta_alter *a, uint32_t n)
{
    uint32_t groups = 0;
    for (uint32_t i = 0; i < n; i++)
        groups += i == 0 || !same_topic(&a[i - 1], &a[i]);
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, groups);
    for (uint32_t i = 0; i < n;) {
        uint32_t end = i + 1;
        while (end < n && same_topic(&a[i], &a[end]))
            end++;
        msgpack_pack_map(pk, 2 + (a[i].has_topic_id ? 1 : 0));
        stream_pack_kv_str(pk, "name", a[i].topic, a[i].topic_len);
        if (a[i].has_topic_id)
            stream_pack_kv_bin(pk, "topic_id", a[i].topic_id, STREAM__META_TOPIC_ID_BYTES);
        stream_pack_key(pk, "changes");
        msgpack_pack_array(pk, end - i);
        for (; i < end; i++) {
            msgpack_pack_array(pk, 4);
            msgpack_pack_int32(pk, a[i].partition);
            msgpack_pack_int32(pk, a[i].leader);
            pack_ids(pk, a[i].isr.ids, a[i].isr.count);
            msgpack_pack_int32(pk, a[i].partition_epoch);
        }
    }
}

int stream__meta_cmd_encode(const stream__meta_cmd *c, stream_buf *out)
{
    if (!cmd_ok(c))
        return STREAM_EINVAL;
    packing p;
    pack_start(&p, out);
    msgpack_packer *pk = &p.pk;
    size_t guard = c->has_topic_id ? 1 : 0;
    switch (c->op) {
    case STREAM__META_OP_REGISTER_BROKER:
        msgpack_pack_map(pk, 5 + (c->kafka_host != NULL ? 2 : 0));
        break;
    case STREAM__META_OP_FENCE_BROKER:
    case STREAM__META_OP_UNFENCE_BROKER:
        msgpack_pack_map(pk, 4);
        break;
    case STREAM__META_OP_CREATE_TOPIC:
        msgpack_pack_map(pk, 5 + (c->config_count > 0));
        break;
    case STREAM__META_OP_DELETE_TOPIC:
        msgpack_pack_map(pk, 3 + guard);
        break;
    case STREAM__META_OP_CREATE_PARTITIONS:
        msgpack_pack_map(pk, 5 + guard);
        break;
    case STREAM__META_OP_ALTER_PARTITION:
        msgpack_pack_map(pk, 7 + guard);
        break;
    case STREAM__META_OP_ALTER_PARTITIONS:
        msgpack_pack_map(pk, 3);
        break;
    default: /* ALTER_CONFIGS: cmd_ok knows no other op */
        msgpack_pack_map(pk, 3 + guard + (c->config_count > 0) + (c->delete_count > 0));
        break;
    }
    stream_pack_kv_cstr(pk, "op", stream__meta_op_name(c->op));
    stream_pack_key(pk, "req");
    msgpack_pack_map(pk, 2);
    stream_pack_kv_int(pk, "node", c->req.node);
    stream_pack_kv_uint(pk, "seq", c->req.seq);
    switch (c->op) {
    case STREAM__META_OP_REGISTER_BROKER:
        stream_pack_kv_int(pk, "id", c->broker_id);
        stream_pack_kv_str(pk, "host", c->host, c->host_len);
        stream_pack_kv_uint(pk, "port", c->port);
        if (c->kafka_host != NULL) {
            stream_pack_kv_str(pk, "kafka_host", c->kafka_host, c->kafka_host_len);
            stream_pack_kv_uint(pk, "kafka_port", c->kafka_port);
        }
        break;
    case STREAM__META_OP_FENCE_BROKER:
    case STREAM__META_OP_UNFENCE_BROKER:
        stream_pack_kv_int(pk, "id", c->broker_id);
        stream_pack_kv_int(pk, "epoch", c->broker_epoch);
        break;
    case STREAM__META_OP_CREATE_TOPIC:
        pack_topic(pk, c);
        stream_pack_kv_bin(pk, "topic_id", c->topic_id, STREAM__META_TOPIC_ID_BYTES);
        pack_partitions(pk, c);
        if (c->config_count > 0) {
            stream_pack_key(pk, "configs");
            pack_kv_map(pk, c->configs, c->config_count);
        }
        break;
    case STREAM__META_OP_DELETE_TOPIC:
        pack_topic(pk, c);
        pack_guard(pk, c);
        break;
    case STREAM__META_OP_CREATE_PARTITIONS:
        pack_topic(pk, c);
        pack_guard(pk, c);
        stream_pack_kv_int(pk, "before", c->partitions_before);
        pack_partitions(pk, c);
        break;
    case STREAM__META_OP_ALTER_PARTITION: {
        stream__meta_alter a = stream__md_cmd_alter(c);
        pack_alter(pk, &a);
        break;
    }
    case STREAM__META_OP_ALTER_PARTITIONS:
        pack_alter_topics(pk, c->alters, c->alter_count);
        break;
    default:
        pack_topic(pk, c);
        pack_guard(pk, c);
        if (c->config_count > 0) {
            stream_pack_key(pk, "set");
            pack_kv_map(pk, c->configs, c->config_count);
        }
        if (c->delete_count > 0) {
            stream_pack_key(pk, "delete");
            msgpack_pack_array(pk, c->delete_count);
            for (uint32_t i = 0; i < c->delete_count; i++)
                stream_pack_str(pk, c->deletes[i].key, c->deletes[i].key_len);
        }
        break;
    }
    return pack_finish(&p);
}

static void cmd_init(stream__meta_cmd *c, stream__meta_op op, stream__meta_req req,
                     const char *topic)
{
    memset(c, 0, sizeof *c);
    c->op = op;
    c->req = req;
    if (topic != NULL) {
        c->topic = topic;
        c->topic_len = strlen(topic);
    }
}

static void cmd_guard(stream__meta_cmd *c, const uint8_t *id)
{
    if (id != NULL) {
        c->has_topic_id = true;
        memcpy(c->topic_id, id, STREAM__META_TOPIC_ID_BYTES);
    }
}

int stream__meta_encode_register_broker(stream_buf *out, stream__meta_req req, int32_t id,
                                        const char *host, uint16_t port)
{
    return stream__meta_encode_register_broker_kafka(out, req, id, host, port, NULL, 0);
}

int stream__meta_encode_register_broker_kafka(stream_buf *out, stream__meta_req req, int32_t id,
                                              const char *host, uint16_t port,
                                              const char *kafka_host, uint16_t kafka_port)
{
    stream__meta_cmd c;
    cmd_init(&c, STREAM__META_OP_REGISTER_BROKER, req, NULL);
    c.broker_id = id;
    c.host = host;
    c.host_len = host != NULL ? strlen(host) : 0;
    c.port = port;
    c.kafka_host = kafka_host;
    c.kafka_host_len = kafka_host != NULL ? strlen(kafka_host) : 0;
    c.kafka_port = kafka_host != NULL ? kafka_port : 0;
    return stream__meta_cmd_encode(&c, out);
}

static int encode_fencing(stream_buf *out, stream__meta_op op, stream__meta_req req, int32_t id,
                          int64_t epoch)
{
    stream__meta_cmd c;
    cmd_init(&c, op, req, NULL);
    c.broker_id = id;
    c.broker_epoch = epoch;
    return stream__meta_cmd_encode(&c, out);
}

int stream__meta_encode_fence_broker(stream_buf *out, stream__meta_req req, int32_t id,
                                     int64_t epoch)
{
    return encode_fencing(out, STREAM__META_OP_FENCE_BROKER, req, id, epoch);
}

int stream__meta_encode_unfence_broker(stream_buf *out, stream__meta_req req, int32_t id,
                                       int64_t epoch)
{
    return encode_fencing(out, STREAM__META_OP_UNFENCE_BROKER, req, id, epoch);
}

/* partition_count lists of replication_factor ids each, cut from replicas
 * (partition 0's first); NULL when the counts are out of range or no
 * memory. */
static stream__meta_ids *split_replicas(int32_t partition_count, int32_t replication_factor,
                                        const int32_t *replicas)
{
    if (replicas == NULL || partition_count < 1 || partition_count > STREAM_MAX_PARTITIONS ||
        replication_factor < 1 || replication_factor > STREAM__META_MAX_REPLICAS)
        return NULL;
    stream__meta_ids *parts = calloc((size_t)partition_count, sizeof *parts);
    for (int32_t p = 0; parts != NULL && p < partition_count; p++)
        parts[p] = (stream__meta_ids){replicas + (size_t)p * (size_t)replication_factor,
                                      (uint32_t)replication_factor};
    return parts;
}

int stream__meta_encode_create_partitions(stream_buf *out, stream__meta_req req, const char *name,
                                          const uint8_t *id, int32_t before, int32_t added,
                                          int32_t replication_factor, const int32_t *replicas)
{
    if (name == NULL)
        return STREAM_EINVAL;
    stream__meta_ids *parts = split_replicas(added, replication_factor, replicas);
    if (parts == NULL)
        return STREAM_EINVAL;
    stream__meta_cmd c;
    cmd_init(&c, STREAM__META_OP_CREATE_PARTITIONS, req, name);
    cmd_guard(&c, id);
    c.partitions_before = before;
    c.partitions = parts;
    c.partition_count = (uint32_t)added;
    int rc = stream__meta_cmd_encode(&c, out);
    free(parts);
    return rc;
}

int stream__meta_encode_create_topic(stream_buf *out, stream__meta_req req, const char *name,
                                     const uint8_t id[16], int32_t partition_count,
                                     int32_t replication_factor, const int32_t *replicas,
                                     const stream__meta_kv *configs, uint32_t n_configs)
{
    if (name == NULL || id == NULL)
        return STREAM_EINVAL;
    stream__meta_ids *parts = split_replicas(partition_count, replication_factor, replicas);
    if (parts == NULL)
        return STREAM_EINVAL;
    stream__meta_cmd c;
    cmd_init(&c, STREAM__META_OP_CREATE_TOPIC, req, name);
    memcpy(c.topic_id, id, STREAM__META_TOPIC_ID_BYTES);
    c.partitions = parts;
    c.partition_count = (uint32_t)partition_count;
    c.configs = configs;
    c.config_count = n_configs;
    int rc = stream__meta_cmd_encode(&c, out);
    free(parts);
    return rc;
}

int stream__meta_encode_delete_topic(stream_buf *out, stream__meta_req req, const char *name,
                                     const uint8_t *id)
{
    stream__meta_cmd c;
    if (name == NULL)
        return STREAM_EINVAL;
    cmd_init(&c, STREAM__META_OP_DELETE_TOPIC, req, name);
    cmd_guard(&c, id);
    return stream__meta_cmd_encode(&c, out);
}

int stream__meta_encode_alter_partition(stream_buf *out, stream__meta_req req, const char *name,
                                        const uint8_t *id, int32_t partition, int32_t leader,
                                        const int32_t *isr, uint32_t n_isr, int32_t partition_epoch)
{
    stream__meta_cmd c;
    if (name == NULL)
        return STREAM_EINVAL;
    cmd_init(&c, STREAM__META_OP_ALTER_PARTITION, req, name);
    cmd_guard(&c, id);
    c.partition = partition;
    c.leader = leader;
    c.isr = (stream__meta_ids){isr, n_isr};
    c.partition_epoch = partition_epoch;
    return stream__meta_cmd_encode(&c, out);
}

int stream__meta_encode_alter_partitions(stream_buf *out, stream__meta_req req,
                                         const stream__meta_alter *alters, uint32_t n)
{
    stream__meta_cmd c;
    cmd_init(&c, STREAM__META_OP_ALTER_PARTITIONS, req, NULL);
    c.alters = alters;
    c.alter_count = n;
    return stream__meta_cmd_encode(&c, out);
}

int stream__meta_encode_alter_configs(stream_buf *out, stream__meta_req req, const char *name,
                                      const uint8_t *id, const stream__meta_kv *set, uint32_t n_set,
                                      const stream__meta_kv *deletes, uint32_t n_deletes)
{
    stream__meta_cmd c;
    if (name == NULL)
        return STREAM_EINVAL;
    cmd_init(&c, STREAM__META_OP_ALTER_CONFIGS, req, name);
    cmd_guard(&c, id);
    c.configs = set;
    c.config_count = n_set;
    c.deletes = deletes;
    c.delete_count = n_deletes;
    return stream__meta_cmd_encode(&c, out);
}

/* ---- commands: decoding ------------------------------------------------------ */

/* What a decoded command owns: its arrays (strings point into the input). */
typedef struct cmd_owned {
    stream__meta_ids *partitions; /* create_topic, create_partitions */
    int32_t *ids;                 /* every partition's replicas, or the isr */
    stream__meta_kv *kvs;         /* configs (or set), then deletes */
    stream__meta_alter *alters;   /* alter_partitions */
} cmd_owned;

/* Reads an array of 1..STREAM__META_MAX_REPLICAS distinct int32 ids >= 1
 * into out (room for the maximum). EBADREQ names `what`. */
static int read_ids(const msgpack_object *arr, const char *what, int32_t *out, uint32_t *count,
                    char *errbuf, size_t errbuf_len)
{
    uint32_t n = arr->via.array.size;
    *count = 0;
    if (n == 0 || n > STREAM__META_MAX_REPLICAS)
        return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                            "%s must hold 1 to %d broker ids, not %u", what,
                            STREAM__META_MAX_REPLICAS, (unsigned)n);
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *o = &arr->via.array.ptr[i];
        if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 < 1 || o->via.u64 > INT32_MAX)
            return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                                "%s[%u] must be a broker id from 1 to %d", what, (unsigned)i,
                                INT32_MAX);
        out[i] = (int32_t)o->via.u64;
    }
    if (!stream__md_ids_distinct(out, n))
        return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len, "%s names a broker twice", what);
    *count = n;
    return 0;
}

static int read_id_field(const msgpack_object *root, bool required, uint8_t *out, bool *has,
                         char *errbuf, size_t errbuf_len);

/* The 16-byte topic id in field "topic_id": required, or an optional guard. */
static int read_topic_id(const msgpack_object *root, bool required, stream__meta_cmd *c,
                         char *errbuf, size_t errbuf_len)
{
    return read_id_field(root, required, c->topic_id, &c->has_topic_id, errbuf, errbuf_len);
}

static int read_id_field(const msgpack_object *root, bool required, uint8_t *out, bool *has,
                         char *errbuf, size_t errbuf_len)
{
    static const uint8_t zero[STREAM__META_TOPIC_ID_BYTES];
    const uint8_t *id;
    size_t len;
    int rc = required ? stream_field_bin(root, "topic_id", &id, &len, errbuf, errbuf_len)
                      : stream_field_bin_opt(root, "topic_id", &id, &len, errbuf, errbuf_len);
    if (rc < 0 || (!required && id == NULL))
        return rc;
    if (len != STREAM__META_TOPIC_ID_BYTES || memcmp(id, zero, sizeof zero) == 0)
        return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                            "field 'topic_id' must be 16 bytes, not all zero");
    memcpy(out, id, STREAM__META_TOPIC_ID_BYTES);
    *has = true;
    return 0;
}

/* A {str: str} map into kvs (its entries were checked by stream_field_strmap). */
static void read_kv_map(const msgpack_object *m, stream__meta_kv *kvs)
{
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object_kv *e = &m->via.map.ptr[i];
        kvs[i] = (stream__meta_kv){e->key.via.str.ptr, e->key.via.str.size, e->val.via.str.ptr,
                                   e->val.via.str.size};
    }
}

/* "partitions": 1 to max lists of replicas (create_topic,
 * create_partitions). */
static int read_partitions(const msgpack_object *root, uint32_t max, stream__meta_cmd *c,
                           cmd_owned *own, char *errbuf, size_t errbuf_len)
{
    const msgpack_object *parts;
    int rc = stream_field_array(root, "partitions", &parts, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    uint32_t n = parts->via.array.size;
    if (n == 0 || n > max)
        return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                            "field 'partitions' must hold 1 to %u partitions, not %u",
                            (unsigned)max, (unsigned)n);
    own->partitions = calloc(n, sizeof *own->partitions);
    own->ids = calloc((size_t)n * STREAM__META_MAX_REPLICAS, sizeof *own->ids);
    if (own->partitions == NULL || own->ids == NULL)
        return STREAM_ENOMEM;
    for (uint32_t p = 0; p < n; p++) {
        char what[40];
        snprintf(what, sizeof what, "partitions[%u]", (unsigned)p);
        const msgpack_object *arr = &parts->via.array.ptr[p];
        if (arr->type != MSGPACK_OBJECT_ARRAY)
            return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                                "%s must be an array of broker ids", what);
        int32_t *ids = own->ids + (size_t)p * STREAM__META_MAX_REPLICAS;
        rc = read_ids(arr, what, ids, &own->partitions[p].count, errbuf, errbuf_len);
        if (rc < 0)
            return rc;
        own->partitions[p].ids = ids;
    }
    c->partitions = own->partitions;
    c->partition_count = n;
    return 0;
}

static int decode_create(const msgpack_object *root, stream__meta_cmd *c, cmd_owned *own,
                         char *errbuf, size_t errbuf_len)
{
    const msgpack_object *configs;
    int rc = read_topic_id(root, true, c, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_strmap_opt(root, "configs", &configs, errbuf, errbuf_len);
    if (rc == 0)
        rc = read_partitions(root, STREAM_MAX_PARTITIONS, c, own, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    c->has_topic_id = false; /* required here, not a guard */
    uint32_t nc = configs != NULL ? configs->via.map.size : 0;
    own->kvs = calloc(nc ? nc : 1, sizeof *own->kvs);
    if (own->kvs == NULL)
        return STREAM_ENOMEM;
    if (configs != NULL)
        read_kv_map(configs, own->kvs);
    c->configs = own->kvs;
    c->config_count = nc;
    return 0;
}

/* create_partitions: before (the count it was computed from), then the new
 * partitions, which keep the total within STREAM_MAX_PARTITIONS. */
static int decode_create_partitions(const msgpack_object *root, stream__meta_cmd *c, cmd_owned *own,
                                    char *errbuf, size_t errbuf_len)
{
    int64_t before = 0;
    int rc = read_topic_id(root, false, c, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_int(root, "before", 1, STREAM_MAX_PARTITIONS - 1, &before, errbuf,
                              errbuf_len);
    if (rc == 0)
        rc = read_partitions(root, (uint32_t)(STREAM_MAX_PARTITIONS - before), c, own, errbuf,
                             errbuf_len);
    c->partitions_before = (int32_t)before;
    return rc;
}

/* The rest of a decoded change, its values checked (isr: count already set). */
static void alter_fill(stream__meta_alter *a, int32_t *isr, int64_t partition, int64_t leader,
                       int64_t epoch)
{
    a->isr.ids = isr;
    a->partition = (int32_t)partition;
    a->leader = (int32_t)leader;
    a->partition_epoch = (int32_t)epoch;
}

/* One change (alter_partition's fields but name, which the caller read)
 * from map root; its isr goes to ids (room for STREAM__META_MAX_REPLICAS). */
static int read_alter(const msgpack_object *root, stream__meta_alter *a, int32_t *ids, char *errbuf,
                      size_t errbuf_len)
{
    int64_t partition, leader, epoch;
    const msgpack_object *isr;
    int rc = read_id_field(root, false, a->topic_id, &a->has_topic_id, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_int(root, "partition", 0, INT32_MAX, &partition, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_int(root, "leader", -1, INT32_MAX, &leader, errbuf, errbuf_len);
    if (rc == 0 && leader == 0)
        rc = stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                          "field 'leader' must be -1 (none) or a broker id >= 1");
    if (rc == 0)
        rc = stream_field_int(root, "partition_epoch", 0, INT32_MAX, &epoch, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_array(root, "isr", &isr, errbuf, errbuf_len);
    if (rc == 0)
        rc = read_ids(isr, "isr", ids, &a->isr.count, errbuf, errbuf_len);
    if (rc == 0)
        alter_fill(a, ids, partition, leader, epoch);
    return rc;
}

static int decode_alter_partition(const msgpack_object *root, stream__meta_cmd *c, cmd_owned *own,
                                  char *errbuf, size_t errbuf_len)
{
    stream__meta_alter a = {0};
    own->ids = calloc(STREAM__META_MAX_REPLICAS, sizeof *own->ids);
    if (own->ids == NULL)
        return STREAM_ENOMEM;
    int rc = read_alter(root, &a, own->ids, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    memcpy(c->topic_id, a.topic_id, STREAM__META_TOPIC_ID_BYTES);
    c->has_topic_id = a.has_topic_id;
    c->isr = a.isr;
    c->partition = a.partition;
    c->leader = a.leader;
    c->partition_epoch = a.partition_epoch;
    return 0;
}

/* An int64 in [min, max] from a msgpack integer. */
static bool int_in(const msgpack_object *o, int64_t min, int64_t max, int64_t *out)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= (uint64_t)INT64_MAX)
        *out = (int64_t)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *out = o->via.i64;
    else
        return false;
    return *out >= min && *out <= max;
}

/* One [partition, leader, isr, partition_epoch] of a topic's "changes". */
static int read_change(const msgpack_object *o, const char *what, stream__meta_alter *a,
                       int32_t *ids, char *errbuf, size_t errbuf_len)
{
    int64_t partition, leader, epoch;
    const msgpack_object *f = o->via.array.ptr;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 4 ||
        !int_in(&f[0], 0, INT32_MAX, &partition) || !int_in(&f[1], -1, INT32_MAX, &leader) ||
        leader == 0 || f[2].type != MSGPACK_OBJECT_ARRAY || !int_in(&f[3], 0, INT32_MAX, &epoch))
        return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                            "%s must be [partition >= 0, leader (-1 or a broker id), "
                            "[isr], partition_epoch >= 0]",
                            what);
    int rc = read_ids(&f[2], what, ids, &a->isr.count, errbuf, errbuf_len);
    if (rc == 0)
        alter_fill(a, ids, partition, leader, epoch);
    return rc;
}

/* A topic's "changes" array, or NULL when m is not a map holding one. */
static const msgpack_object *topic_changes(const msgpack_object *m)
{
    const msgpack_object *arr =
        m->type == MSGPACK_OBJECT_MAP ? stream_field_find(m, "changes") : NULL;
    return arr != NULL && arr->type == MSGPACK_OBJECT_ARRAY && arr->via.array.size > 0 ? arr : NULL;
}

/* alter_partitions: "topics", each {name, topic_id (optional), changes:
 * [[partition, leader, isr, partition_epoch], ...]} (1 or more), in all
 * 1..STREAM__META_ALTER_BATCH changes; two neighbouring topics are never the
 * same (the encoder makes one of them), so every command re-encodes to its
 * own bytes. */
static int decode_alter_partitions(const msgpack_object *root, stream__meta_cmd *c, cmd_owned *own,
                                   char *errbuf, size_t errbuf_len)
{
    const msgpack_object *topics;
    int rc = stream_field_array(root, "topics", &topics, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    uint64_t n = 0;
    for (uint32_t t = 0; t < topics->via.array.size; t++) {
        const msgpack_object *ch = topic_changes(&topics->via.array.ptr[t]);
        if (ch == NULL)
            return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                                "topics[%u] must be a map with a non-empty 'changes'", (unsigned)t);
        n += ch->via.array.size;
    }
    if (n == 0 || n > STREAM__META_ALTER_BATCH)
        return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                            "field 'topics' must hold 1 to %d changes, not %llu",
                            STREAM__META_ALTER_BATCH, (unsigned long long)n);
    own->alters = calloc(n, sizeof *own->alters);
    own->ids = calloc(n * STREAM__META_MAX_REPLICAS, sizeof *own->ids);
    if (own->alters == NULL || own->ids == NULL)
        return STREAM_ENOMEM;
    uint32_t k = 0;
    for (uint32_t t = 0; t < topics->via.array.size; t++) {
        const msgpack_object *m = &topics->via.array.ptr[t];
        const msgpack_object *ch = topic_changes(m);
        stream__meta_alter head = {0};
        rc = stream_field_str(m, "name", &head.topic, &head.topic_len, errbuf, errbuf_len);
        if (rc == 0)
            rc = read_id_field(m, false, head.topic_id, &head.has_topic_id, errbuf, errbuf_len);
        if (rc < 0)
            return rc;
        if (k > 0 && same_topic(&own->alters[k - 1], &head))
            return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                                "topics[%u] repeats the topic before it", (unsigned)t);
        for (uint32_t i = 0; i < ch->via.array.size; i++, k++) {
            char what[48];
            snprintf(what, sizeof what, "topics[%u].changes[%u]", (unsigned)t, (unsigned)i);
            own->alters[k] = head;
            rc = read_change(&ch->via.array.ptr[i], what, &own->alters[k],
                             own->ids + (size_t)k * STREAM__META_MAX_REPLICAS, errbuf, errbuf_len);
            if (rc < 0)
                return rc;
        }
    }
    c->alters = own->alters;
    c->alter_count = (uint32_t)n;
    return 0;
}

static int decode_alter_configs(const msgpack_object *root, stream__meta_cmd *c, cmd_owned *own,
                                char *errbuf, size_t errbuf_len)
{
    const msgpack_object *set, *del;
    int rc = read_topic_id(root, false, c, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_strmap_opt(root, "set", &set, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_array_opt(root, "delete", &del, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    uint32_t ns = set != NULL ? set->via.map.size : 0;
    uint32_t nd = del != NULL ? del->via.array.size : 0;
    if (nd > STREAM_STRMAP_MAX)
        return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                            "field 'delete' has %u entries (at most %d)", (unsigned)nd,
                            STREAM_STRMAP_MAX);
    own->kvs = calloc(ns + nd ? ns + nd : 1, sizeof *own->kvs);
    if (own->kvs == NULL)
        return STREAM_ENOMEM;
    if (set != NULL)
        read_kv_map(set, own->kvs);
    for (uint32_t i = 0; i < nd; i++) {
        stream__meta_kv *kv = &own->kvs[ns + i];
        rc = stream_elem_str(del, i, "delete", &kv->key, &kv->key_len, errbuf, errbuf_len);
        if (rc < 0)
            return rc;
    }
    c->configs = own->kvs;
    c->config_count = ns;
    c->deletes = own->kvs + ns;
    c->delete_count = nd;
    return 0;
}

/* A broker's optional Kafka listener (register_broker, a snapshot's
 * broker): kafka_host and kafka_port, both or neither; *host NULL when
 * absent. */
static int decode_kafka_listener(const msgpack_object *m, const char **host, size_t *host_len,
                                 uint16_t *port, char *errbuf, size_t errbuf_len)
{
    int64_t v = 0;
    *host = NULL;
    *host_len = 0;
    *port = 0;
    int rc = stream_field_str_opt(m, "kafka_host", host, host_len, errbuf, errbuf_len);
    if (rc == 0 && *host != NULL)
        rc = stream_field_int(m, "kafka_port", 1, 65535, &v, errbuf, errbuf_len);
    if (rc == 0 && *host != NULL && !stream__md_host_ok(*host, *host_len))
        rc = stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                          "field 'kafka_host' must be a host name or address");
    if (rc == 0 && *host == NULL && stream_field_find(m, "kafka_port") != NULL)
        rc = stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                          "field 'kafka_port' without 'kafka_host'");
    if (rc < 0)
        *host = NULL;
    *port = (uint16_t)v;
    return rc < 0 ? STREAM_EBADREQ : 0;
}

static int decode_fields(const msgpack_object *root, stream__meta_cmd *c, cmd_owned *own,
                         char *errbuf, size_t errbuf_len)
{
    const char *name;
    size_t len;
    const msgpack_object *req;
    int64_t node, id = 0, v = 0;
    int rc = stream_field_str(root, "op", &name, &len, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    c->op = op_from_name(name, len);
    if (c->op == STREAM__META_OP_UNKNOWN)
        return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                            "unknown metadata command (op of %zu bytes)", len);
    rc = stream_field_map(root, "req", &req, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_int(req, "node", 1, INT32_MAX, &node, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_uint(req, "seq", UINT64_MAX, &c->req.seq, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    c->req.node = (int32_t)node;

    switch (c->op) {
    case STREAM__META_OP_REGISTER_BROKER:
        rc = stream_field_int(root, "id", 1, INT32_MAX, &id, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream_field_str(root, "host", &c->host, &c->host_len, errbuf, errbuf_len);
        if (rc == 0 && !stream__md_host_ok(c->host, c->host_len))
            rc = stream__fail(STREAM_EBADREQ, errbuf, errbuf_len,
                              "field 'host' must be 1 to %d bytes of letters, digits, "
                              "'.', '_', '-', ':' or '%%'",
                              STREAM__META_HOST_MAX);
        if (rc == 0)
            rc = stream_field_int(root, "port", 1, 65535, &v, errbuf, errbuf_len);
        c->broker_id = (int32_t)id;
        c->port = (uint16_t)v;
        if (rc == 0)
            rc = decode_kafka_listener(root, &c->kafka_host, &c->kafka_host_len, &c->kafka_port,
                                       errbuf, errbuf_len);
        return rc;
    case STREAM__META_OP_FENCE_BROKER:
    case STREAM__META_OP_UNFENCE_BROKER:
        rc = stream_field_int(root, "id", 1, INT32_MAX, &id, errbuf, errbuf_len);
        if (rc == 0)
            rc =
                stream_field_int(root, "epoch", 0, INT64_MAX, &c->broker_epoch, errbuf, errbuf_len);
        c->broker_id = (int32_t)id;
        return rc;
    case STREAM__META_OP_ALTER_PARTITIONS:
        return decode_alter_partitions(root, c, own, errbuf, errbuf_len);
    default:
        break;
    }
    rc = stream_field_str(root, "name", &c->topic, &c->topic_len, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    switch (c->op) {
    case STREAM__META_OP_CREATE_TOPIC:
        return decode_create(root, c, own, errbuf, errbuf_len);
    case STREAM__META_OP_DELETE_TOPIC:
        return read_topic_id(root, false, c, errbuf, errbuf_len);
    case STREAM__META_OP_CREATE_PARTITIONS:
        return decode_create_partitions(root, c, own, errbuf, errbuf_len);
    case STREAM__META_OP_ALTER_PARTITION:
        return decode_alter_partition(root, c, own, errbuf, errbuf_len);
    default:
        return decode_alter_configs(root, c, own, errbuf, errbuf_len);
    }
}

void stream__meta_cmd_release(stream__meta_cmd *c)
{
    cmd_owned *own = c->owned;
    if (own != NULL) {
        free(own->partitions);
        free(own->ids);
        free(own->kvs);
        free(own->alters);
        free(own);
    }
    memset(c, 0, sizeof *c);
}

int stream__meta_cmd_decode(const uint8_t *p, size_t len, stream__meta_cmd *c, char *errbuf,
                            size_t errbuf_len)
{
    memset(c, 0, sizeof *c);
    cmd_owned *own = calloc(1, sizeof *own);
    if (own == NULL)
        return STREAM_ENOMEM;
    c->owned = own;
    stream_msg msg;
    stream_msg_init(&msg);
    int rc = stream_msg_parse(p, len, &msg, errbuf, errbuf_len);
    if (rc < 0 && rc != STREAM_ENOMEM)
        rc = STREAM_EBADREQ; /* EPROTO, ETOOLARGE: not a command */
    if (rc == 0)
        rc = decode_fields(&msg.root, c, own, errbuf, errbuf_len);
    /* Strings stay valid: msgpack-c points them into p, not into the zone. */
    stream_msg_release(&msg);
    if (rc < 0)
        stream__meta_cmd_release(c);
    return rc;
}

/* ---- snapshots: encoding -------------------------------------------------------- */

static void pack_broker(msgpack_packer *pk, const stream__meta_broker *b)
{
    msgpack_pack_map(pk, 5 + (b->kafka_host != NULL ? 2 : 0));
    stream_pack_kv_int(pk, "id", b->id);
    stream_pack_kv_cstr(pk, "host", b->host);
    stream_pack_kv_uint(pk, "port", b->port);
    stream_pack_kv_int(pk, "epoch", b->epoch);
    stream_pack_kv_bool(pk, "fenced", b->fenced);
    if (b->kafka_host != NULL) {
        stream_pack_kv_cstr(pk, "kafka_host", b->kafka_host);
        stream_pack_kv_uint(pk, "kafka_port", b->kafka_port);
    }
}

static void pack_snapshot_topic(msgpack_packer *pk, const stream__meta_topic *t)
{
    msgpack_pack_map(pk, 4);
    stream_pack_kv_cstr(pk, "name", t->name);
    stream_pack_kv_bin(pk, "id", t->id, STREAM__META_TOPIC_ID_BYTES);
    stream_pack_key(pk, "configs");
    msgpack_pack_map(pk, t->n_configs);
    for (uint32_t i = 0; i < t->n_configs; i++) {
        stream_pack_cstr(pk, t->configs[i].key);
        stream_pack_cstr(pk, t->configs[i].value);
    }
    stream_pack_key(pk, "partitions");
    msgpack_pack_array(pk, (size_t)t->partition_count);
    for (int32_t i = 0; i < t->partition_count; i++) {
        const stream__meta_partition *p = &t->partitions[i];
        msgpack_pack_map(pk, 5);
        stream_pack_key(pk, "replicas");
        pack_ids(pk, p->replicas, p->n_replicas);
        stream_pack_kv_int(pk, "leader", p->leader);
        stream_pack_kv_int(pk, "leader_epoch", p->leader_epoch);
        stream_pack_key(pk, "isr");
        pack_ids(pk, p->isr, p->n_isr);
        stream_pack_kv_int(pk, "partition_epoch", p->partition_epoch);
    }
}

/* A requester's ids, oldest first (the ring unrolled). */
static void pack_requester(msgpack_packer *pk, const stream__md_requester *r)
{
    uint32_t first = r->count < STREAM__META_REQ_WINDOW ? 0 : r->next;
    msgpack_pack_map(pk, 4);
    stream_pack_kv_int(pk, "node", r->node);
    stream_pack_kv_uint(pk, "last_index", r->last_index);
    stream_pack_key(pk, "seqs");
    msgpack_pack_array(pk, r->count);
    for (uint32_t k = 0; k < r->count; k++)
        msgpack_pack_uint64(pk, r->seq[(first + k) % STREAM__META_REQ_WINDOW]);
    stream_pack_key(pk, "results");
    msgpack_pack_array(pk, r->count);
    for (uint32_t k = 0; k < r->count; k++)
        msgpack_pack_int32(pk, r->result[(first + k) % STREAM__META_REQ_WINDOW]);
}

int stream__meta_snapshot(const stream__meta *md, stream_buf *out)
{
    const stream__md_state *st = &md->st;
    packing p;
    pack_start(&p, out);
    msgpack_packer *pk = &p.pk;
    msgpack_pack_map(pk, 6);
    stream_pack_kv_uint(pk, "version", STREAM__META_SNAPSHOT_VERSION);
    stream_pack_kv_cstr(pk, "cluster_id", md->cluster_id);
    stream_pack_kv_uint(pk, "applied_index", st->applied_index);
    stream_pack_key(pk, "brokers");
    msgpack_pack_array(pk, st->n_brokers);
    for (size_t i = 0; i < st->n_brokers; i++)
        pack_broker(pk, &st->brokers[i]);
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, st->n_topics);
    for (size_t i = 0; i < st->n_topics; i++)
        pack_snapshot_topic(pk, st->topics[i]);
    stream_pack_key(pk, "requesters");
    msgpack_pack_array(pk, st->n_requesters);
    for (size_t i = 0; i < st->n_requesters; i++)
        pack_requester(pk, &st->requesters[i]);
    return pack_finish(&p);
}

/* ---- snapshots: decoding -------------------------------------------------------- */

/* Every complaint about a snapshot: ECORRUPT, where, and what. */
static int corrupt(char *errbuf, size_t errbuf_len, const char *where, const char *what)
{
    return stream__fail(STREAM_ECORRUPT, errbuf, errbuf_len, "snapshot: %s: %s", where, what);
}

static int decode_brokers(const msgpack_object *arr, stream__md_state *st, char *errbuf,
                          size_t errbuf_len)
{
    char why[256], where[48];
    uint32_t n = arr->via.array.size;
    st->brokers = calloc(n ? n : 1, sizeof *st->brokers);
    if (st->brokers == NULL)
        return STREAM_ENOMEM;
    st->cap_brokers = n ? n : 1;
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *m;
        int64_t id, port, epoch;
        const char *host, *khost;
        size_t host_len, khost_len;
        uint16_t kport;
        bool fenced;
        snprintf(where, sizeof where, "brokers[%u]", (unsigned)i);
        if (stream_elem_map(arr, i, "brokers", &m, why, sizeof why) < 0 ||
            stream_field_int(m, "id", 1, INT32_MAX, &id, why, sizeof why) < 0 ||
            stream_field_str(m, "host", &host, &host_len, why, sizeof why) < 0 ||
            stream_field_int(m, "port", 1, 65535, &port, why, sizeof why) < 0 ||
            stream_field_int(m, "epoch", 0, INT64_MAX, &epoch, why, sizeof why) < 0 ||
            stream_field_bool(m, "fenced", &fenced, why, sizeof why) < 0 ||
            decode_kafka_listener(m, &khost, &khost_len, &kport, why, sizeof why) < 0)
            return corrupt(errbuf, errbuf_len, where, why);
        if (!stream__md_host_ok(host, host_len))
            return corrupt(errbuf, errbuf_len, where, "host is not a host name or address");
        if (i > 0 && id <= st->brokers[i - 1].id)
            return corrupt(errbuf, errbuf_len, where, "broker ids not strictly ascending");
        stream__meta_broker *b = &st->brokers[i];
        b->host = malloc(host_len + 1);
        if (b->host == NULL)
            return STREAM_ENOMEM;
        memcpy(b->host, host, host_len);
        b->host[host_len] = '\0';
        if (khost != NULL) {
            b->kafka_host = malloc(khost_len + 1);
            if (b->kafka_host == NULL) {
                free(b->host);
                b->host = NULL;
                return STREAM_ENOMEM;
            }
            memcpy(b->kafka_host, khost, khost_len);
            b->kafka_host[khost_len] = '\0';
            b->kafka_port = kport;
        }
        b->id = (int32_t)id;
        b->port = (uint16_t)port;
        b->epoch = epoch;
        b->fenced = fenced;
        st->n_brokers++;
    }
    return 0;
}

static int ids_field(const msgpack_object *m, const char *key, int32_t **out, uint32_t *count,
                     char *why, size_t why_len)
{
    const msgpack_object *arr;
    int rc = stream_field_array(m, key, &arr, why, why_len);
    if (rc < 0)
        return rc;
    *out = calloc(STREAM__META_MAX_REPLICAS, sizeof **out);
    if (*out == NULL)
        return STREAM_ENOMEM;
    return read_ids(arr, key, *out, count, why, why_len);
}

static int decode_partition(const msgpack_object *m, const stream__md_state *st,
                            stream__meta_partition *p, const char *where, char *errbuf,
                            size_t errbuf_len)
{
    char why[256];
    int64_t leader, leader_epoch, epoch;
    int rc = ids_field(m, "replicas", &p->replicas, &p->n_replicas, why, sizeof why);
    if (rc == 0)
        rc = ids_field(m, "isr", &p->isr, &p->n_isr, why, sizeof why);
    if (rc == 0)
        rc = stream_field_int(m, "leader", -1, INT32_MAX, &leader, why, sizeof why);
    if (rc == 0)
        rc = stream_field_int(m, "leader_epoch", 0, INT32_MAX, &leader_epoch, why, sizeof why);
    if (rc == 0)
        rc = stream_field_int(m, "partition_epoch", 0, INT32_MAX, &epoch, why, sizeof why);
    if (rc == STREAM_ENOMEM)
        return rc;
    if (rc < 0)
        return corrupt(errbuf, errbuf_len, where, why);
    for (uint32_t r = 0; r < p->n_replicas; r++) {
        bool known;
        stream__md_broker_pos(st, p->replicas[r], &known);
        if (!known)
            return corrupt(errbuf, errbuf_len, where, "a replica on an unregistered broker");
    }
    for (uint32_t r = 0; r < p->n_isr; r++)
        if (!stream__md_contains(p->replicas, p->n_replicas, p->isr[r]))
            return corrupt(errbuf, errbuf_len, where, "an isr member that is not a replica");
    if (leader != -1 && !stream__md_contains(p->isr, p->n_isr, (int32_t)leader))
        return corrupt(errbuf, errbuf_len, where, "a leader outside the isr");
    p->leader = (int32_t)leader;
    p->leader_epoch = (int32_t)leader_epoch;
    p->partition_epoch = (int32_t)epoch;
    return 0;
}

static int decode_configs(const msgpack_object *m, stream__meta_topic *t, const char *where,
                          char *errbuf, size_t errbuf_len)
{
    char why[256];
    const msgpack_object *cm;
    if (stream_field_strmap(m, "configs", &cm, why, sizeof why) < 0)
        return corrupt(errbuf, errbuf_len, where, why);
    uint32_t n = cm->via.map.size;
    t->configs = calloc(n ? n : 1, sizeof *t->configs);
    if (t->configs == NULL)
        return STREAM_ENOMEM;
    t->n_configs = n;
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object_str *k = &cm->via.map.ptr[i].key.via.str;
        const msgpack_object_str *v = &cm->via.map.ptr[i].val.via.str;
        if (!stream__md_config_ok(k->ptr, k->size, v->ptr, v->size))
            return corrupt(errbuf, errbuf_len, where, "a config key or value out of limits");
        if (i > 0 &&
            stream__md_name_cmp(cm->via.map.ptr[i - 1].key.via.str.ptr,
                                cm->via.map.ptr[i - 1].key.via.str.size, k->ptr, k->size) >= 0)
            return corrupt(errbuf, errbuf_len, where, "config keys not strictly ascending");
        t->configs[i].key = malloc(k->size + 1);
        t->configs[i].value = malloc(v->size + 1);
        if (t->configs[i].key == NULL || t->configs[i].value == NULL)
            return STREAM_ENOMEM;
        memcpy(t->configs[i].key, k->ptr, k->size);
        t->configs[i].key[k->size] = '\0';
        if (v->size > 0)
            memcpy(t->configs[i].value, v->ptr, v->size);
        t->configs[i].value[v->size] = '\0';
    }
    return 0;
}

static int decode_topic(const msgpack_object *m, stream__md_state *st, stream__meta_topic *t,
                        const char *where, char *errbuf, size_t errbuf_len)
{
    static const uint8_t zero[STREAM__META_TOPIC_ID_BYTES];
    char why[256], pwhere[96];
    const char *name;
    size_t name_len, id_len;
    const uint8_t *id;
    const msgpack_object *parts;
    if (stream_field_str(m, "name", &name, &name_len, why, sizeof why) < 0 ||
        stream_topic_name_check(name, name_len, why, sizeof why) < 0 ||
        stream_field_bin(m, "id", &id, &id_len, why, sizeof why) < 0 ||
        stream_field_array(m, "partitions", &parts, why, sizeof why) < 0)
        return corrupt(errbuf, errbuf_len, where, why);
    if (id_len != STREAM__META_TOPIC_ID_BYTES || memcmp(id, zero, sizeof zero) == 0)
        return corrupt(errbuf, errbuf_len, where, "the topic id is not 16 bytes, not all zero");
    uint32_t n = parts->via.array.size;
    if (n == 0 || n > STREAM_MAX_PARTITIONS)
        return corrupt(errbuf, errbuf_len, where, "partition count out of range");
    t->name = malloc(name_len + 1);
    t->partitions = calloc(n, sizeof *t->partitions);
    if (t->name == NULL || t->partitions == NULL)
        return STREAM_ENOMEM;
    memcpy(t->name, name, name_len);
    t->name[name_len] = '\0';
    memcpy(t->id, id, STREAM__META_TOPIC_ID_BYTES);
    t->partition_count = (int32_t)n;
    int rc = decode_configs(m, t, where, errbuf, errbuf_len);
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        const msgpack_object *pm;
        snprintf(pwhere, sizeof pwhere, "%s.partitions[%u]", where, (unsigned)i);
        if (stream_elem_map(parts, i, "partitions", &pm, why, sizeof why) < 0)
            return corrupt(errbuf, errbuf_len, where, why);
        rc = decode_partition(pm, st, &t->partitions[i], pwhere, errbuf, errbuf_len);
    }
    return rc;
}

static int id_cmp(const void *a, const void *b)
{
    return memcmp(a, b, STREAM__META_TOPIC_ID_BYTES);
}

static int decode_topics(const msgpack_object *arr, stream__md_state *st, char *errbuf,
                         size_t errbuf_len)
{
    char why[256], where[48];
    uint32_t n = arr->via.array.size;
    st->topics = calloc(n ? n : 1, sizeof *st->topics);
    if (st->topics == NULL)
        return STREAM_ENOMEM;
    st->cap_topics = n ? n : 1;
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *m;
        snprintf(where, sizeof where, "topics[%u]", (unsigned)i);
        if (stream_elem_map(arr, i, "topics", &m, why, sizeof why) < 0)
            return corrupt(errbuf, errbuf_len, where, why);
        stream__meta_topic *t = calloc(1, sizeof *t);
        if (t == NULL)
            return STREAM_ENOMEM;
        st->topics[st->n_topics++] = t; /* released with st from here on */
        int rc = decode_topic(m, st, t, where, errbuf, errbuf_len);
        if (rc < 0)
            return rc;
        const stream__meta_topic *prev = i > 0 ? st->topics[i - 1] : NULL;
        if (prev != NULL &&
            stream__md_name_cmp(prev->name, strlen(prev->name), t->name, strlen(t->name)) >= 0)
            return corrupt(errbuf, errbuf_len, where, "topic names not strictly ascending");
    }
    /* Topic ids are unique: sort a copy, compare neighbours. */
    uint8_t(*ids)[STREAM__META_TOPIC_ID_BYTES] = calloc(n ? n : 1, sizeof *ids);
    if (ids == NULL)
        return STREAM_ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        memcpy(ids[i], st->topics[i]->id, STREAM__META_TOPIC_ID_BYTES);
    qsort(ids, n, sizeof *ids, id_cmp);
    bool unique = true;
    for (uint32_t i = 1; i < n && unique; i++)
        unique = memcmp(ids[i - 1], ids[i], STREAM__META_TOPIC_ID_BYTES) != 0;
    free(ids);
    return unique ? 0 : corrupt(errbuf, errbuf_len, "topics", "two topics share a topic id");
}

static int decode_requesters(const msgpack_object *arr, stream__md_state *st, char *errbuf,
                             size_t errbuf_len)
{
    char why[256], where[48];
    uint32_t n = arr->via.array.size;
    if (n > STREAM__META_MAX_REQUESTERS)
        return corrupt(errbuf, errbuf_len, "requesters", "too many requesters");
    st->requesters = calloc(n ? n : 1, sizeof *st->requesters);
    if (st->requesters == NULL)
        return STREAM_ENOMEM;
    st->cap_requesters = n ? n : 1;
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *m, *seqs, *results;
        int64_t node;
        uint64_t last;
        snprintf(where, sizeof where, "requesters[%u]", (unsigned)i);
        if (stream_elem_map(arr, i, "requesters", &m, why, sizeof why) < 0 ||
            stream_field_int(m, "node", 1, INT32_MAX, &node, why, sizeof why) < 0 ||
            stream_field_uint(m, "last_index", UINT64_MAX, &last, why, sizeof why) < 0 ||
            stream_field_array(m, "seqs", &seqs, why, sizeof why) < 0 ||
            stream_field_array(m, "results", &results, why, sizeof why) < 0)
            return corrupt(errbuf, errbuf_len, where, why);
        uint32_t count = seqs->via.array.size;
        if (count > STREAM__META_REQ_WINDOW || results->via.array.size != count)
            return corrupt(errbuf, errbuf_len, where, "seqs and results differ or are too long");
        if (i > 0 && node <= st->requesters[i - 1].node)
            return corrupt(errbuf, errbuf_len, where, "requester nodes not strictly ascending");
        stream__md_requester *r = &st->requesters[i];
        for (uint32_t k = 0; k < count; k++) {
            const msgpack_object *s = &seqs->via.array.ptr[k], *res = &results->via.array.ptr[k];
            bool res_ok =
                (res->type == MSGPACK_OBJECT_POSITIVE_INTEGER && res->via.u64 == 0) ||
                (res->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && res->via.i64 >= INT32_MIN);
            if (s->type != MSGPACK_OBJECT_POSITIVE_INTEGER || !res_ok)
                return corrupt(errbuf, errbuf_len, where,
                               "seqs must be unsigned integers and results 0 or error codes");
            r->seq[k] = s->via.u64;
            r->result[k] = res->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? (int32_t)res->via.i64 : 0;
        }
        r->node = (int32_t)node;
        r->last_index = last;
        r->count = count;
        r->next = count % STREAM__META_REQ_WINDOW;
        st->n_requesters++;
    }
    return 0;
}

int stream__md_snapshot_decode(const uint8_t *p, size_t len, const char *cluster_id,
                               stream__md_state *st, char *errbuf, size_t errbuf_len)
{
    char why[256];
    stream_msg msg;
    stream_msg_init(&msg);
    msg.max_objects = len; /* each object takes a byte: the only bound is the size */
    const msgpack_object *root = &msg.root, *brokers, *topics, *requesters;
    const char *id;
    size_t id_len;
    uint64_t version;
    int rc = stream_msg_parse(p, len, &msg, why, sizeof why);
    if (rc == STREAM_ENOMEM)
        goto out;
    if (rc < 0) {
        rc = corrupt(errbuf, errbuf_len, "bytes", why);
        goto out;
    }
    if (stream_field_uint(root, "version", UINT64_MAX, &version, why, sizeof why) < 0 ||
        stream_field_str(root, "cluster_id", &id, &id_len, why, sizeof why) < 0 ||
        stream_field_uint(root, "applied_index", UINT64_MAX, &st->applied_index, why, sizeof why) <
            0 ||
        stream_field_array(root, "brokers", &brokers, why, sizeof why) < 0 ||
        stream_field_array(root, "topics", &topics, why, sizeof why) < 0 ||
        stream_field_array(root, "requesters", &requesters, why, sizeof why) < 0) {
        rc = corrupt(errbuf, errbuf_len, "top level", why);
        goto out;
    }
    if (version != STREAM__META_SNAPSHOT_VERSION) {
        rc = stream__fail(STREAM_ECORRUPT, errbuf, errbuf_len,
                          "snapshot: version %llu, this build reads version %d",
                          (unsigned long long)version, STREAM__META_SNAPSHOT_VERSION);
        goto out;
    }
    if (!stream_str_eq(id, id_len, cluster_id)) {
        bool printable = stream__cluster_id_ok(id, id_len, STREAM__QUORUM_CLUSTER_ID_MAX);
        rc = stream__fail(STREAM_EBADCONFIG, errbuf, errbuf_len,
                          "snapshot of cluster '%.*s', not of this cluster '%s'",
                          printable ? (int)id_len : 1, printable ? id : "?", cluster_id);
        goto out;
    }
    rc = decode_brokers(brokers, st, errbuf, errbuf_len);
    if (rc == 0)
        rc = decode_topics(topics, st, errbuf, errbuf_len);
    if (rc == 0)
        rc = decode_requesters(requesters, st, errbuf, errbuf_len);
out:
    stream_msg_release(&msg);
    if (rc < 0)
        stream__md_state_release(st);
    return rc;
}
