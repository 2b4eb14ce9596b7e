/*
 * kafka_admin.c - the admin APIs of the Kafka listener (kafka_admin.h).
 *
 * Each request is decoded (kafka_codec_admin.c), checked for what only
 * Kafka's protocol can get wrong (a partition count of 0, manual replica
 * assignment, a broker resource, APPEND to a setting that is no list),
 * and the rest is encoded as the native op that does the same
 * (create_topics, delete_topics, create_partitions, describe_configs,
 * alter_configs) and run
 * by the broker as a native client's request (stream__host_native_op):
 * the same checks, the same store, in a cluster the same controller. The
 * native answer comes back here and is written in the Kafka API's layout,
 * resource by resource, with Kafka's error codes.
 *
 * The frame is copied into the call (admin requests are small) and
 * decoded again when the answer comes, so that the names the response
 * repeats are still there after the broker freed the frame.
 *
 * Settings keep their names: a topic's settings are Kafka's names
 * (retention.ms, segment.bytes, cleanup.policy, max.message.bytes,
 * min.insync.replicas, ...), and a topic setting taken from the broker
 * lists the broker's Kafka name (log.retention.ms, ...) as its synonym.
 * Sources: a topic override is DYNAMIC_TOPIC_CONFIG, a broker setting
 * STATIC_BROKER_CONFIG (read-only: broker settings change in its
 * configuration file), a built-in value DEFAULT_CONFIG.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_admin.h"
#include "kafka_cluster.h"
#include "kafka_codec_admin.h"
#include "stream/config.h"

/* Kafka's DescribeConfigs sources and types. */
enum {
    SOURCE_DYNAMIC_TOPIC = 1,
    SOURCE_STATIC_BROKER = 4,
    SOURCE_DEFAULT = 5,
};
enum {
    TYPE_BOOLEAN = 1,
    TYPE_STRING = 2,
    TYPE_LONG = 5,
};

/* One admin request from its frame to its answer. */
typedef struct admin_call {
    stream_broker *b;
    uint8_t *frame; /* a copy of the request frame (owned) */
    size_t len;
    stream__kafka_request hdr; /* its header (borrowing from frame) */
    stream__kafka_admin_request q;
    int16_t *err;     /* per resource: Kafka's error decided here, or 0 */
    char (*msg)[200]; /* per resource: why, when err */
    bool *sent;       /* per resource: part of the native request */
    size_t nsent;
    char host[256]; /* this broker's Kafka listener */
    uint16_t port;
} admin_call;

static void call_free(void *arg)
{
    admin_call *c = arg;
    if (c == NULL)
        return;
    stream__kafka_admin_release(&c->q);
    free(c->frame);
    free(c->err);
    free(c->msg);
    free(c->sent);
    free(c);
}

static void refuse(admin_call *c, size_t i, int16_t err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void refuse(admin_call *c, size_t i, int16_t err, const char *fmt, ...)
{
    c->err[i] = err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->msg[i], sizeof(c->msg[i]), fmt, ap);
    va_end(ap);
}

/* Kafka's error code for a native admin result. */
static int16_t admin_error(int err, const char *msg)
{
    switch (err) {
    case 0:
        return STREAM__KAFKA_NONE;
    case STREAM_ETOPICEXISTS:
        return STREAM__KAFKA_TOPIC_ALREADY_EXISTS;
    case STREAM_EBADNAME:
        return STREAM__KAFKA_INVALID_TOPIC_EXCEPTION;
    case STREAM_ENOTOPIC:
        return STREAM__KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    case STREAM_EBADCONFIG:
        return STREAM__KAFKA_INVALID_CONFIG;
    case STREAM_EINVAL:
        /* create_topics says which number was out of range. */
        if (msg != NULL && strstr(msg, "replication") != NULL)
            return STREAM__KAFKA_INVALID_REPLICATION_FACTOR;
        if (msg != NULL && strstr(msg, "partitions") != NULL)
            return STREAM__KAFKA_INVALID_PARTITIONS;
        return STREAM__KAFKA_INVALID_REQUEST;
    case STREAM_ENOTLEADER:
        return STREAM__KAFKA_NOT_CONTROLLER; /* the controller changed: retry */
    case STREAM_ETIMEDOUT:
        return STREAM__KAFKA_REQUEST_TIMED_OUT;
    case STREAM_EIO:
    case STREAM_ENOSPC:
        return STREAM__KAFKA_KAFKA_STORAGE_ERROR;
    default:
        return STREAM__KAFKA_UNKNOWN_SERVER_ERROR;
    }
}

/* ---- the native answer ---- */

/* What the native op said about the i-th resource it was sent: err
 * (STREAM_E*), msg (borrowed, may be NULL) and the entry itself. A whole
 * request refused (or no answer at all) counts for every resource. */
typedef struct native_answer {
    const msgpack_object *topics; /* the answer's topics array, or NULL */
    int err;                      /* the request's own error */
    const char *msg;
    size_t msg_len;
} native_answer;

static void native_read(native_answer *a, stream_msg *m, const uint8_t *resp, size_t len)
{
    memset(a, 0, sizeof(*a));
    uint64_t id;
    if (resp == NULL || stream_msg_parse(resp, len, m, NULL, 0) != 0 ||
        stream_msg_response(m, &id, &a->err, &a->msg, &a->msg_len, NULL, 0) != 0) {
        a->err = STREAM_EPROTO;
        a->msg = "the broker could not answer";
        a->msg_len = strlen(a->msg);
        return;
    }
    if (a->err == 0 && stream_field_array(&m->root, "topics", &a->topics, NULL, 0) != 0)
        a->topics = NULL;
}

/* The native entry j: its err and msg (copied to msg, NUL-terminated). */
static const msgpack_object *native_entry(const native_answer *a, size_t j, int *err, char *msg,
                                          size_t msg_len)
{
    const msgpack_object *e = NULL;
    const char *m = a->msg;
    size_t n = a->msg_len;
    *err = a->err;
    if (*err == 0) {
        if (a->topics == NULL || stream_elem_map(a->topics, j, "topics", &e, NULL, 0) != 0) {
            *err = STREAM_EPROTO;
            m = "no answer for this resource";
            n = strlen(m);
        } else {
            uint64_t v = 0;
            stream_field_uint_opt(e, "err", INT32_MAX, 0, &v, NULL, 0);
            *err = -(int)v;
            m = NULL;
            n = 0;
            stream_field_str_opt(e, "msg", &m, &n, NULL, 0);
        }
    }
    if (n >= msg_len)
        n = msg_len - 1;
    if (m != NULL)
        memcpy(msg, m, n);
    msg[m != NULL ? n : 0] = '\0';
    return e;
}

/* ---- writing ---- */

/* The response frame's start: header, then throttle_time_ms (0). */
static stream_buf *begin(stream__req *r, const admin_call *c, size_t *start)
{
    stream_buf *out = stream__host_req_out(r);
    *start = stream__kafka_response_start(out, c->hdr.correlation_id, c->hdr.flexible);
    int16_t key = c->hdr.api_key, v = c->hdr.api_version;
    bool throttle = !((key == STREAM__KAFKA_CREATE_TOPICS && v < 2) ||
                      (key == STREAM__KAFKA_DELETE_TOPICS && v < 1));
    if (throttle)
        stream_buf_put_be32(out, 0);
    return out;
}

static void end(stream__req *r, stream_buf *out, size_t start, bool flexible)
{
    stream__kafka_response_end(out, start, flexible);
    stream__host_req_done(r);
}

static void put_msg(stream_buf *out, bool fl, int16_t err, const char *msg)
{
    stream__kafka_put_string(out, fl, err != 0 ? msg : NULL, err != 0 ? strlen(msg) : 0);
}

/* The result of resource i: decided here, or the next native entry's. */
static const msgpack_object *result(admin_call *c, const native_answer *a, size_t i, size_t *j,
                                    int16_t *err, char *msg, size_t msg_len)
{
    if (!c->sent[i]) {
        *err = c->err[i];
        snprintf(msg, msg_len, "%s", c->msg[i]);
        return NULL;
    }
    int e;
    const msgpack_object *o = native_entry(a, (*j)++, &e, msg, msg_len);
    *err = admin_error(e, msg);
    return o;
}

/* Per resource its result: CreateTopics, DeleteTopics, CreatePartitions
 * write name, error (and message); AlterConfigs, IncrementalAlterConfigs
 * error, message, resource type and name. */
static void answer_results(admin_call *c, stream__req *r, const native_answer *a)
{
    int16_t key = c->hdr.api_key, v = c->hdr.api_version;
    bool fl = c->hdr.flexible;
    bool alter =
        key == STREAM__KAFKA_ALTER_CONFIGS || key == STREAM__KAFKA_INCREMENTAL_ALTER_CONFIGS;
    bool with_msg = alter || key == STREAM__KAFKA_CREATE_PARTITIONS ||
                    (key == STREAM__KAFKA_CREATE_TOPICS && v >= 1) ||
                    (key == STREAM__KAFKA_DELETE_TOPICS && v >= 5);
    size_t start, j = 0;
    stream_buf *out = begin(r, c, &start);
    stream__kafka_put_array_len(out, fl, c->q.nres);
    for (size_t i = 0; i < c->q.nres; i++) {
        const stream__kafka_admin_resource *t = &c->q.res[i];
        int16_t err;
        char msg[300];
        result(c, a, i, &j, &err, msg, sizeof(msg));
        if (!alter)
            stream__kafka_put_string(out, fl, t->name, t->name_len);
        stream_buf_put_be16(out, (uint16_t)err);
        if (with_msg)
            put_msg(out, fl, err, msg);
        if (alter) {
            stream_buf_put_u8(out, (uint8_t)t->type);
            stream__kafka_put_string(out, fl, t->name, t->name_len);
        }
        stream__kafka_put_tags(out, fl);
    }
    end(r, out, start, fl);
}

/* True when native config entry e is one resource t asked for (all, or
 * one of its keys). */
static bool wanted(const admin_call *c, const stream__kafka_admin_resource *t,
                   const msgpack_object *e)
{
    const char *name = "";
    size_t len = 0;
    if (e->type != MSGPACK_OBJECT_MAP || stream_field_str(e, "name", &name, &len, NULL, 0) != 0)
        return false;
    if (t->all_keys || t->count == 0)
        return true;
    for (size_t k = t->first; k < t->first + t->count; k++)
        if (c->q.configs[k].name_len == len && memcmp(c->q.configs[k].name, name, len) == 0)
            return true;
    return false;
}

/* One DescribeConfigs entry from a native config entry e. */
static void put_config(admin_call *c, stream_buf *out, const msgpack_object *e, bool broker)
{
    int v = c->hdr.api_version;
    bool fl = c->hdr.flexible;
    const char *name = "", *value = NULL, *source = "default", *doc = NULL;
    size_t name_len = 0, value_len = 0, source_len = 7, doc_len = 0;
    bool is_default = false;
    stream_field_str_opt(e, "name", &name, &name_len, NULL, 0);
    stream_field_str_opt(e, "value", &value, &value_len, NULL, 0);
    stream_field_str_opt(e, "source", &source, &source_len, NULL, 0);
    stream_field_str_opt(e, "doc", &doc, &doc_len, NULL, 0);
    stream_field_bool_opt(e, "is_default", false, &is_default, NULL, 0);
    int8_t src = SOURCE_DEFAULT;
    if (source_len == 5 && memcmp(source, "topic", 5) == 0)
        src = SOURCE_DYNAMIC_TOPIC;
    else if (source_len == 6 && memcmp(source, "broker", 6) == 0)
        src = SOURCE_STATIC_BROKER;
    char key[128] = "";
    if (name_len < sizeof(key)) {
        memcpy(key, name, name_len);
        key[name_len] = '\0';
    }
    const stream_config_setting *s = stream_config_setting_find(key, false);
    stream__kafka_put_string(out, fl, name, name_len);
    stream__kafka_put_string(out, fl, value, value_len);
    stream_buf_put_u8(out, broker); /* read_only: broker settings live in its file */
    if (v == 0)
        stream_buf_put_u8(out, is_default);
    else
        stream_buf_put_u8(out, (uint8_t)src);
    stream_buf_put_u8(out, 0); /* is_sensitive */
    if (v >= 1) {
        if (!c->q.include_synonyms) {
            stream__kafka_put_array_len(out, fl, 0);
        } else {
            /* The value in effect, under the name it was set by: a topic
             * setting taken from the broker has the broker's Kafka name. */
            const char *syn = name;
            size_t syn_len = name_len;
            if (src == SOURCE_STATIC_BROKER && !broker && s != NULL && s->alias != NULL) {
                syn = s->alias;
                syn_len = strlen(syn);
            }
            stream__kafka_put_array_len(out, fl, 1);
            stream__kafka_put_string(out, fl, syn, syn_len);
            stream__kafka_put_string(out, fl, value, value_len);
            stream_buf_put_u8(out, (uint8_t)src);
            stream__kafka_put_tags(out, fl);
        }
    }
    if (v >= 3) {
        int8_t type = 0;
        if (s != NULL)
            type = s->type == STREAM_CONFIG_TYPE_INT    ? TYPE_LONG
                   : s->type == STREAM_CONFIG_TYPE_BOOL ? TYPE_BOOLEAN
                                                        : TYPE_STRING;
        stream_buf_put_u8(out, (uint8_t)type);
        bool d = c->q.include_documentation && doc != NULL;
        stream__kafka_put_string(out, fl, d ? doc : NULL, d ? doc_len : 0);
    }
    stream__kafka_put_tags(out, fl);
}

/* The settings of one described resource (configs: a native array, or
 * NULL on error). */
static void put_configs(admin_call *c, stream_buf *out, const stream__kafka_admin_resource *t,
                        const msgpack_object *configs, bool broker)
{
    bool fl = c->hdr.flexible;
    size_t n = 0, total = configs != NULL ? configs->via.array.size : 0;
    for (size_t k = 0; k < total; k++)
        n += wanted(c, t, &configs->via.array.ptr[k]);
    stream__kafka_put_array_len(out, fl, n);
    for (size_t k = 0; k < total; k++)
        if (wanted(c, t, &configs->via.array.ptr[k]))
            put_config(c, out, &configs->via.array.ptr[k], broker);
}

static void answer_describe(admin_call *c, stream__req *r, const native_answer *a,
                            const stream_msg *m)
{
    bool fl = c->hdr.flexible;
    size_t start, j = 0;
    stream_buf *out = begin(r, c, &start);
    stream__kafka_put_array_len(out, fl, c->q.nres);
    for (size_t i = 0; i < c->q.nres; i++) {
        const stream__kafka_admin_resource *t = &c->q.res[i];
        bool broker = t->type == STREAM__KAFKA_RESOURCE_BROKER;
        int16_t err = c->err[i];
        char msg[300];
        snprintf(msg, sizeof(msg), "%s", c->msg[i]);
        const msgpack_object *configs = NULL;
        if (broker && err == 0) {
            const msgpack_object *bm = NULL;
            if (a->err != 0) {
                err = admin_error(a->err, NULL);
                snprintf(msg, sizeof(msg), "%.*s", (int)a->msg_len, a->msg);
            } else if (stream_field_map(&m->root, "broker", &bm, NULL, 0) != 0 ||
                       stream_field_array(bm, "configs", &configs, NULL, 0) != 0) {
                err = STREAM__KAFKA_UNKNOWN_SERVER_ERROR;
                snprintf(msg, sizeof(msg), "the broker did not describe its settings");
            }
        } else if (c->sent[i]) {
            const msgpack_object *e = result(c, a, i, &j, &err, msg, sizeof(msg));
            if (err == 0 && (e == NULL || stream_field_array(e, "configs", &configs, NULL, 0)))
                configs = NULL;
        }
        stream_buf_put_be16(out, (uint16_t)err);
        put_msg(out, fl, err, msg);
        stream_buf_put_u8(out, (uint8_t)t->type);
        stream__kafka_put_string(out, fl, t->name, t->name_len);
        put_configs(c, out, t, err == 0 ? configs : NULL, broker);
        stream__kafka_put_tags(out, fl);
    }
    end(r, out, start, fl);
}

/* Writes c's response from the native answer (resp NULL: none was asked
 * or none could be made). */
static void answer(admin_call *c, stream__req *r, const uint8_t *resp, size_t len)
{
    stream_msg m;
    stream_msg_init(&m);
    native_answer a;
    if (c->nsent > 0)
        native_read(&a, &m, resp, len);
    else
        memset(&a, 0, sizeof(a));
    switch (c->hdr.api_key) {
    case STREAM__KAFKA_DESCRIBE_CONFIGS:
        answer_describe(c, r, &a, &m);
        break;
    default:
        answer_results(c, r, &a);
        break;
    }
    stream_msg_release(&m);
}

static void on_native(void *arg, stream__req *r, const uint8_t *resp, size_t len)
{
    admin_call *c = arg;
    answer(c, r, resp, len);
    call_free(c);
}

/* ---- the native requests ---- */

static void pack_str(msgpack_packer *pk, const char *p, size_t len)
{
    stream_pack_str(pk, p, len);
}

/* CreateTopics: each topic Kafka's protocol allows becomes a native entry. */
static size_t check_create(admin_call *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->q.nres; i++) {
        const stream__kafka_admin_resource *t = &c->q.res[i];
        if (t->assignments)
            refuse(c, i, STREAM__KAFKA_INVALID_REPLICA_ASSIGNMENT,
                   "replicas are placed by the broker; manual assignment is not supported");
        else if (t->partitions == 0 || t->partitions < -1)
            refuse(c, i, STREAM__KAFKA_INVALID_PARTITIONS,
                   "number of partitions must be at least 1 (or -1 for the default), not %d",
                   (int)t->partitions);
        else if (t->replication_factor == 0 || t->replication_factor < -1)
            refuse(c, i, STREAM__KAFKA_INVALID_REPLICATION_FACTOR,
                   "replication factor must be at least 1 (or -1 for the default), not %d",
                   (int)t->replication_factor);
        else
            c->sent[i] = true;
        n += c->sent[i];
    }
    return n;
}

/* A native create_topics, create_partitions or alter_configs request's head: op,
 * validate_only, and the array of the resources sent. */
static void pack_head(admin_call *c, msgpack_packer *pk, stream_op op)
{
    stream_pack_request_header(pk, op, 1, 2);
    stream_pack_kv_bool(pk, "validate_only", c->q.validate_only);
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, c->nsent);
}

static void pack_create(admin_call *c, msgpack_packer *pk)
{
    pack_head(c, pk, STREAM_OP_CREATE_TOPICS);
    for (size_t i = 0; i < c->q.nres; i++) {
        const stream__kafka_admin_resource *t = &c->q.res[i];
        if (!c->sent[i])
            continue;
        msgpack_pack_map(pk, 1 + (t->partitions > 0) + (t->replication_factor > 0) + 1);
        stream_pack_kv_str(pk, "name", t->name, t->name_len);
        if (t->partitions > 0)
            stream_pack_kv_int(pk, "partitions", t->partitions);
        if (t->replication_factor > 0)
            stream_pack_kv_int(pk, "replication_factor", t->replication_factor);
        size_t nset = 0;
        for (size_t k = t->first; k < t->first + t->count; k++)
            nset += c->q.configs[k].value != NULL;
        stream_pack_key(pk, "configs");
        msgpack_pack_map(pk, nset);
        for (size_t k = t->first; k < t->first + t->count; k++) {
            const stream__kafka_admin_config *cf = &c->q.configs[k];
            if (cf->value == NULL)
                continue; /* null: the default, which is what unset means */
            pack_str(pk, cf->name, cf->name_len);
            pack_str(pk, cf->value, cf->value_len);
        }
    }
}

static void pack_delete(admin_call *c, msgpack_packer *pk)
{
    stream_pack_request_header(pk, STREAM_OP_DELETE_TOPICS, 1, 1);
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, c->q.nres);
    for (size_t i = 0; i < c->q.nres; i++) {
        c->sent[i] = true;
        pack_str(pk, c->q.res[i].name, c->q.res[i].name_len);
    }
    c->nsent = c->q.nres;
}

/* This broker's own resource: its node id, or "" (the one asked). */
static bool own_broker(admin_call *c, const stream__kafka_admin_resource *t)
{
    char id[16];
    snprintf(id, sizeof(id), "%d", (int)stream__host_node_id(c->b));
    return t->name_len == 0 || (t->name_len == strlen(id) && memcmp(t->name, id, t->name_len) == 0);
}

static void pack_describe(admin_call *c, msgpack_packer *pk)
{
    bool broker = false;
    for (size_t i = 0; i < c->q.nres; i++) {
        const stream__kafka_admin_resource *t = &c->q.res[i];
        if (t->type == STREAM__KAFKA_RESOURCE_TOPIC) {
            c->sent[i] = true;
            c->nsent++;
        } else if (t->type != STREAM__KAFKA_RESOURCE_BROKER) {
            refuse(c, i, STREAM__KAFKA_INVALID_REQUEST, "resource type %d is not described here",
                   (int)t->type);
        } else if (!own_broker(c, t)) {
            refuse(c, i, STREAM__KAFKA_INVALID_REQUEST,
                   "this is broker %d: ask broker %.*s for its settings",
                   (int)stream__host_node_id(c->b), (int)t->name_len, t->name);
        } else {
            broker = true;
        }
    }
    stream_pack_request_header(pk, STREAM_OP_DESCRIBE_CONFIGS, 1, 2);
    stream_pack_kv_bool(pk, "broker", broker);
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, c->nsent);
    for (size_t i = 0; i < c->q.nres; i++)
        if (c->sent[i])
            pack_str(pk, c->q.res[i].name, c->q.res[i].name_len);
    if (broker)
        c->nsent++; /* the answer is needed even without topics */
}

/* AlterConfigs and IncrementalAlterConfigs: which resources go to the
 * native alter_configs (topics, whose settings Kafka's protocol can
 * change as asked). */
static size_t check_alter(admin_call *c)
{
    bool incremental = c->hdr.api_key == STREAM__KAFKA_INCREMENTAL_ALTER_CONFIGS;
    size_t n = 0;
    for (size_t i = 0; i < c->q.nres; i++) {
        const stream__kafka_admin_resource *t = &c->q.res[i];
        if (t->type == STREAM__KAFKA_RESOURCE_BROKER) {
            refuse(c, i, STREAM__KAFKA_INVALID_REQUEST,
                   "broker settings are read-only: they change in the broker's configuration "
                   "file");
            continue;
        }
        if (t->type != STREAM__KAFKA_RESOURCE_TOPIC) {
            refuse(c, i, STREAM__KAFKA_INVALID_REQUEST, "resource type %d cannot be altered",
                   (int)t->type);
            continue;
        }
        bool ok = true;
        for (size_t k = t->first; incremental && ok && k < t->first + t->count; k++) {
            const stream__kafka_admin_config *cf = &c->q.configs[k];
            if (cf->op == STREAM__KAFKA_CONFIG_APPEND || cf->op == STREAM__KAFKA_CONFIG_SUBTRACT) {
                refuse(c, i, STREAM__KAFKA_INVALID_CONFIG,
                       "%s applies to list settings; %.*s is not one",
                       cf->op == STREAM__KAFKA_CONFIG_APPEND ? "APPEND" : "SUBTRACT",
                       (int)cf->name_len, cf->name);
                ok = false;
            } else if (cf->op != STREAM__KAFKA_CONFIG_SET &&
                       cf->op != STREAM__KAFKA_CONFIG_DELETE) {
                refuse(c, i, STREAM__KAFKA_INVALID_REQUEST, "unknown config operation %d",
                       (int)cf->op);
                ok = false;
            }
        }
        c->sent[i] = ok;
        n += ok;
    }
    return n;
}

/* True when the setting called name is set (with a value) in t. */
static bool alter_sets(const admin_call *c, const stream__kafka_admin_resource *t, const char *name)
{
    size_t len = strlen(name);
    for (size_t k = t->first; k < t->first + t->count; k++) {
        const stream__kafka_admin_config *cf = &c->q.configs[k];
        if (cf->value != NULL && cf->op == STREAM__KAFKA_CONFIG_SET && cf->name_len == len &&
            memcmp(cf->name, name, len) == 0)
            return true;
    }
    return false;
}

static void pack_alter(admin_call *c, msgpack_packer *pk)
{
    bool incremental = c->hdr.api_key == STREAM__KAFKA_INCREMENTAL_ALTER_CONFIGS;
    pack_head(c, pk, STREAM_OP_ALTER_CONFIGS);
    for (size_t i = 0; i < c->q.nres; i++) {
        const stream__kafka_admin_resource *t = &c->q.res[i];
        if (!c->sent[i])
            continue;
        msgpack_pack_map(pk, 3);
        stream_pack_kv_str(pk, "name", t->name, t->name_len);
        size_t nset = 0, ndel = 0;
        for (size_t k = t->first; k < t->first + t->count; k++) {
            bool set = c->q.configs[k].value != NULL && c->q.configs[k].op == 0;
            nset += set;
            ndel += incremental && !set;
        }
        stream_pack_key(pk, "set");
        msgpack_pack_map(pk, nset);
        for (size_t k = t->first; k < t->first + t->count; k++) {
            const stream__kafka_admin_config *cf = &c->q.configs[k];
            if (cf->value != NULL && cf->op == STREAM__KAFKA_CONFIG_SET) {
                pack_str(pk, cf->name, cf->name_len);
                pack_str(pk, cf->value, cf->value_len);
            }
        }
        stream_pack_key(pk, "delete");
        if (incremental) {
            /* DELETE, and SET to null: back to the broker's value. */
            msgpack_pack_array(pk, ndel);
            for (size_t k = t->first; k < t->first + t->count; k++) {
                const stream__kafka_admin_config *cf = &c->q.configs[k];
                if (!(cf->value != NULL && cf->op == STREAM__KAFKA_CONFIG_SET))
                    pack_str(pk, cf->name, cf->name_len);
            }
            continue;
        }
        /* AlterConfigs replaces the whole set: every topic setting it does
         * not give goes back to the broker's value. */
        size_t nreset = 0;
        for (int id = 0; id < STREAM_CONFIG_COUNT; id++) {
            const stream_config_setting *s = stream_config_setting_at(id);
            nreset += s->scope == STREAM_CONFIG_SCOPE_TOPIC && !alter_sets(c, t, s->name);
        }
        msgpack_pack_array(pk, nreset);
        for (int id = 0; id < STREAM_CONFIG_COUNT; id++) {
            const stream_config_setting *s = stream_config_setting_at(id);
            if (s->scope == STREAM_CONFIG_SCOPE_TOPIC && !alter_sets(c, t, s->name))
                stream_pack_cstr(pk, s->name);
        }
    }
}

/* CreatePartitions: what only Kafka's protocol can get wrong is refused
 * here - manual replica assignment (the broker places replicas, as for
 * CreateTopics), a count below 1 - and every other topic goes to the
 * native create_partitions, whose checks (unknown topic, a count not above
 * the current one, the broker's limits) and answers are the native
 * clients'. */
static size_t check_partitions(admin_call *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->q.nres; i++) {
        const stream__kafka_admin_resource *t = &c->q.res[i];
        if (t->assignments)
            refuse(c, i, STREAM__KAFKA_INVALID_REPLICA_ASSIGNMENT,
                   "replicas are placed by the broker; manual assignment is not supported");
        else if (t->partitions < 1)
            refuse(c, i, STREAM__KAFKA_INVALID_PARTITIONS,
                   "the new count of partitions must be at least 1, not %d", (int)t->partitions);
        else
            c->sent[i] = true;
        n += c->sent[i];
    }
    return n;
}

static void pack_partitions(admin_call *c, msgpack_packer *pk)
{
    pack_head(c, pk, STREAM_OP_CREATE_PARTITIONS);
    for (size_t i = 0; i < c->q.nres; i++) {
        const stream__kafka_admin_resource *t = &c->q.res[i];
        if (!c->sent[i])
            continue;
        msgpack_pack_map(pk, 2);
        stream_pack_kv_str(pk, "name", t->name, t->name_len);
        stream_pack_kv_int(pk, "count", t->partitions);
    }
}

/* ---- DescribeCluster ---- */

/* Every broker's Kafka listener and the controller (kafka_cluster.h). */
static void describe_cluster(admin_call *c, stream__req *r)
{
    bool fl = c->hdr.flexible;
    stream__kafka_node *nodes;
    size_t n;
    if (stream__kafka_nodes(c->b, c->host, c->port, &nodes, &n) != 0) {
        stream__host_req_close(r); /* no memory for an answer: the client asks again */
        return;
    }
    const stream__meta *md = stream__kafka_metadata(c->b);
    const char *id = md != NULL
                         ? stream__meta_cluster_id(md)
                         : stream_config_str(stream__host_config(c->b), STREAM_CONFIG_CLUSTER_ID);
    size_t start;
    stream_buf *out = begin(r, c, &start);
    stream_buf_put_be16(out, 0);                /* error_code */
    stream__kafka_put_string(out, fl, NULL, 0); /* error_message */
    stream__kafka_put_string(out, fl, id, strlen(id));
    stream_buf_put_be32(out, (uint32_t)stream__kafka_controller_id(c->b));
    stream__kafka_put_array_len(out, fl, n);
    for (size_t i = 0; i < n; i++) {
        stream_buf_put_be32(out, (uint32_t)nodes[i].id);
        stream__kafka_put_string(out, fl, nodes[i].host, strlen(nodes[i].host));
        stream_buf_put_be32(out, nodes[i].port);
        stream__kafka_put_string(out, fl, NULL, 0); /* rack */
        stream__kafka_put_tags(out, fl);
    }
    free(nodes);
    stream_buf_put_be32(out, (uint32_t)INT32_MIN); /* cluster_authorized_operations */
    end(r, out, start, fl);
}

/* ---- entry ---- */

static admin_call *call_new(stream_broker *b, const uint8_t *frame, size_t len,
                            const stream__kafka_request *hdr, size_t body, int *rc)
{
    admin_call *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->frame = malloc(len ? len : 1)) == NULL) {
        free(c);
        *rc = STREAM_ENOMEM;
        return NULL;
    }
    memcpy(c->frame, frame, len);
    c->len = len;
    c->b = b;
    size_t body2;
    *rc = stream__kafka_header_decode(c->frame, len, &c->hdr, &body2);
    if (*rc == 0)
        *rc = stream__kafka_admin_decode(c->frame, len, &c->hdr, body, &c->q);
    size_t n = c->q.nres ? c->q.nres : 1;
    if (*rc == 0 && ((c->err = calloc(n, sizeof(*c->err))) == NULL ||
                     (c->msg = calloc(n, sizeof(*c->msg))) == NULL ||
                     (c->sent = calloc(n, sizeof(*c->sent))) == NULL))
        *rc = STREAM_ENOMEM;
    if (*rc != 0) {
        call_free(c);
        return NULL;
    }
    return c;
}

int stream__kafka_admin_handle(stream_broker *b, stream__req *r, const uint8_t *frame, size_t len,
                               const stream__kafka_request *hdr, size_t body, const char *host,
                               uint16_t port)
{
    int rc;
    admin_call *c = call_new(b, frame, len, hdr, body, &rc);
    if (c == NULL)
        return rc;
    snprintf(c->host, sizeof(c->host), "%s", host);
    c->port = port;
    stream_buf req;
    stream_buf_init(&req);
    stream_frame f;
    stream_frame_start(&f, &req);
    switch (c->hdr.api_key) {
    case STREAM__KAFKA_CREATE_TOPICS:
        c->nsent = check_create(c);
        pack_create(c, &f.pk);
        break;
    case STREAM__KAFKA_DELETE_TOPICS:
        pack_delete(c, &f.pk);
        break;
    case STREAM__KAFKA_DESCRIBE_CONFIGS:
        pack_describe(c, &f.pk);
        break;
    case STREAM__KAFKA_ALTER_CONFIGS:
    case STREAM__KAFKA_INCREMENTAL_ALTER_CONFIGS:
        c->nsent = check_alter(c);
        pack_alter(c, &f.pk);
        break;
    case STREAM__KAFKA_CREATE_PARTITIONS:
        c->nsent = check_partitions(c);
        pack_partitions(c, &f.pk);
        break;
    case STREAM__KAFKA_DESCRIBE_CLUSTER:
        describe_cluster(c, r);
        stream_buf_release(&req);
        call_free(c);
        return 0;
    default:
        break;
    }
    /* The native op may answer (and free c) before it returns. */
    size_t nsent = c->nsent;
    rc = nsent > 0 ? stream_frame_finish(&f) : 0;
    if (rc == 0 && nsent > 0)
        rc = stream__host_native_op(r, req.data + 4, req.len - 4, on_native, call_free, c);
    stream_buf_release(&req);
    if (rc != 0) {
        call_free(c);
        return rc;
    }
    if (nsent == 0) {
        answer(c, r, NULL, 0);
        call_free(c);
    }
    return 0;
}
