/*
 * broker_ops.c - decoding requests and the metadata and admin ops: hello,
 * metadata, describe_configs, alter_configs. create_topics, delete_topics
 * and create_partitions are in broker_admin.c (their disk work runs off the loop),
 * the data ops (produce, fetch, list_offsets) in broker_data.c; every
 * other op belongs to a service (the consumer group ops to the coordinator)
 * and is routed to it through host.c.
 *
 * Every frame becomes one stream__req at the tail of its connection's queue
 * before anything else happens, so even an error answer keeps its place in
 * the response order. Then:
 *
 *   malformed MessagePack, no usable id   -> connection-level error (id 0),
 *                                            close (the stream cannot be
 *                                            trusted any more)
 *   unknown op, missing op, bad field     -> error response with the id;
 *                                            the connection goes on
 *   first request not hello               -> error response, close
 *
 * Handlers read every field through proto.h's typed accessors, which name
 * the offending field in the message, and validate a whole request before
 * changing anything, so a type error never leaves half a request applied.
 * Field values borrowed from the frame (strings, bins) are valid only until
 * the handler returns; anything parked on a waiter is copied.
 */
#include <stdlib.h>
#include <string.h>

#include "broker_internal.h"
#include "stream/error.h"

void stream__reply_error(stream__req *r, uint64_t id, int err, const char *msg)
{
    r->err = err;
    stream_buf_reset(&r->out);
    if (stream_frame_error_response(&r->out, id, err, msg) != 0)
        r->out.len = 0;
    stream__req_complete(r);
}

int stream__reply_finish(stream__req *r, stream_frame *f, uint64_t id)
{
    int rc = stream_frame_finish(f);
    if (rc != 0) {
        stream__reply_error(r, id, rc, rc == STREAM_ETOOLARGE ? "response too large" : NULL);
        return rc;
    }
    stream__req_complete(r);
    return 0;
}

/* Copies a topic name from the frame into buf (NUL-terminated) after checking
 * it. Returns 0 or STREAM_EBADNAME with msg. */
int stream__topic_name(const char *p, size_t len, char *buf, char *msg, size_t msg_len)
{
    int rc = stream_topic_name_check(p, len, msg, msg_len);
    if (rc != 0)
        return rc;
    memcpy(buf, p, len);
    buf[len] = '\0';
    return 0;
}

/* The topic named (p, len), or NULL with ENOTOPIC: a name that breaks the
 * grammar names no topic (metadata, delete, describe and alter say so). */
static stream_topic *lookup_topic(stream_broker *b, const char *p, size_t len, char *name, int *err,
                                  char *msg, size_t msg_len)
{
    stream_topic *t = NULL;
    if (stream_topic_name_check(p, len, NULL, 0) == 0) {
        memcpy(name, p, len);
        name[len] = '\0';
        t = stream_store_topic(b->store, name);
    }
    *err = t ? 0 : STREAM_ENOTOPIC;
    if (t == NULL)
        snprintf(msg, msg_len, "unknown topic '%.*s'", (int)(len > 255 ? 255 : len), p);
    return t;
}

/* ---- hello ---- */

static void op_hello(stream__conn *c, stream__req *r, uint64_t id, const msgpack_object *m)
{
    stream_broker *b = c->broker;
    char msg[256];
    uint64_t version;
    const char *client = NULL;
    size_t client_len = 0;
    if (c->hello) {
        /* Spec: a second hello is refused, the connection goes on. */
        stream__reply_error(r, id, STREAM_EBADREQ, "hello was already said on this connection");
        return;
    }
    int rc = stream_field_uint(m, "version", UINT32_MAX, &version, msg, sizeof(msg));
    if (rc == 0)
        rc = stream_field_str_opt(m, "client", &client, &client_len, msg, sizeof(msg));
    if (rc == 0 && version < 1) {
        rc = STREAM_EUNSUPPORTED;
        snprintf(msg, sizeof(msg), "protocol version %llu is not supported (1 to %d are)",
                 (unsigned long long)version, STREAM_PROTOCOL_VERSION);
    }
    if (rc != 0) {
        /* A failed hello closes the connection (after this answer). */
        r->close_after = true;
        stream__reply_error(r, id, rc, msg);
        stream__conn_break(c);
        return;
    }
    c->version = version < STREAM_PROTOCOL_VERSION ? (int)version : STREAM_PROTOCOL_VERSION;
    c->hello = true;
    stream__blog(b, STREAM_BROKER_DEBUG, "connection %llu from %s: hello from '%.*s', version %d",
                 (unsigned long long)c->id, c->peer, (int)(client_len > 64 ? 64 : client_len),
                 client ? client : "", c->version);
    stream_frame f;
    stream_frame_start(&f, &r->out);
    stream_pack_response_header(&f.pk, id, 0, NULL, 5);
    stream_pack_kv_uint(&f.pk, "version", (uint64_t)c->version);
    stream_pack_kv_cstr(&f.pk, "broker", "stream-broker/" STREAM__BROKER_VERSION);
    stream_pack_kv_int(&f.pk, "node_id", b->node_id);
    stream_pack_kv_uint(&f.pk, "max_frame_bytes", b->set.max_request_bytes);
    stream_pack_kv_uint(&f.pk, "max_message_bytes",
                        (uint64_t)stream_config_int(b->config, STREAM_CONFIG_MAX_MESSAGE_BYTES));
    stream__reply_finish(r, &f, id);
}

/* ---- metadata ---- */

/* The address this connection reached us on: what a client should use. */
static void local_address(stream__conn *c, char *host, size_t host_len, int *port)
{
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    snprintf(host, host_len, "%s", c->broker->host);
    *port = c->broker->port;
    if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &sl) != 0)
        return;
    if (ss.ss_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&ss, host, host_len);
    else if (ss.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&ss, host, host_len);
}

static void pack_partition_meta(msgpack_packer *pk, stream_broker *b, const stream_topic *t,
                                stream_log *log, int32_t p)
{
    int64_t end = stream_log_end_offset(log);
    bool compact = t->log_config.cleanup_compact;
    msgpack_pack_map(pk, compact ? 10 : 8);
    stream_pack_kv_int(pk, "partition", p);
    stream_pack_kv_int(pk, "err", 0);
    stream_pack_kv_int(pk, "leader", b->node_id);
    stream_pack_kv_int(pk, "leader_epoch", 0);
    stream_pack_kv_int(pk, "log_start_offset", stream_log_start_offset(log));
    stream_pack_kv_int(pk, "high_watermark", end); /* one node: everything written */
    stream_pack_kv_int(pk, "log_end_offset", end);
    stream_pack_kv_int(pk, "size_bytes", stream_log_size(log));
    if (compact) { /* protocol.md: only for compacted topics */
        stream_log_clean_status cs;
        stream_log_clean_status_get(log, (int64_t)stream__broker_now_ms(), &cs);
        stream_pack_kv_int(pk, "dirty_ratio_ppm", cs.dirty_ratio_ppm);
        stream_pack_kv_int(pk, "last_clean_ms", cs.last_clean_ms);
    }
}

static void pack_topic_meta(msgpack_packer *pk, stream_broker *b, const stream_topic *t)
{
    msgpack_pack_map(pk, 4);
    stream_pack_kv_cstr(pk, "name", t->name);
    stream_pack_kv_int(pk, "err", 0);
    stream_pack_kv_bool(pk, "internal", t->internal);
    stream_pack_key(pk, "partitions");
    msgpack_pack_array(pk, (size_t)t->partition_count);
    for (int32_t p = 0; p < t->partition_count; p++)
        pack_partition_meta(pk, b, t, t->partitions[p], p);
}

static void op_metadata(stream__conn *c, stream__req *r, uint64_t id, const msgpack_object *m)
{
    stream_broker *b = c->broker;
    char msg[512];
    const msgpack_object *topics;
    int rc = stream_field_array_opt(m, "topics", &topics, msg, sizeof(msg));
    for (uint32_t i = 0; rc == 0 && topics && i < topics->via.array.size; i++) {
        const char *p;
        size_t len;
        rc = stream_elem_str(topics, i, "topics", &p, &len, msg, sizeof(msg));
    }
    if (rc != 0) {
        stream__reply_error(r, id, rc, msg);
        return;
    }
    char host[sizeof(b->host)];
    int port;
    local_address(c, host, sizeof(host), &port);

    stream_frame f;
    stream_frame_start(&f, &r->out);
    stream_pack_response_header(&f.pk, id, 0, NULL, 2);
    stream_pack_key(&f.pk, "brokers");
    msgpack_pack_array(&f.pk, 1);
    msgpack_pack_map(&f.pk, 3);
    stream_pack_kv_int(&f.pk, "node_id", b->node_id);
    stream_pack_kv_cstr(&f.pk, "host", host);
    stream_pack_kv_int(&f.pk, "port", port);
    stream_pack_key(&f.pk, "topics");
    if (topics == NULL) {
        size_t n = stream_store_topic_count(b->store);
        msgpack_pack_array(&f.pk, n);
        for (size_t i = 0; i < n; i++)
            pack_topic_meta(&f.pk, b, stream_store_topic_at(b->store, i));
    } else {
        msgpack_pack_array(&f.pk, topics->via.array.size);
        for (uint32_t i = 0; i < topics->via.array.size; i++) {
            const char *p;
            size_t len;
            char name[STREAM_TOPIC_NAME_MAX + 1];
            stream_elem_str(topics, i, "topics", &p, &len, NULL, 0);
            stream_topic *t = lookup_topic(b, p, len, name, &rc, msg, sizeof(msg));
            if (t) {
                pack_topic_meta(&f.pk, b, t);
                continue;
            }
            msgpack_pack_map(&f.pk, 3 + stream_err_fields(rc));
            stream_pack_kv_str(&f.pk, "name", p, len);
            stream_pack_err(&f.pk, rc, msg);
            stream_pack_kv_bool(&f.pk, "internal", stream_topic_is_internal(p, len));
            stream_pack_key(&f.pk, "partitions");
            msgpack_pack_array(&f.pk, 0);
        }
    }
    stream__reply_finish(r, &f, id);
}

/* ---- settings from a request ---- */

/* Copies a str (borrowed from the frame) into buf as a C string; false when
 * it does not fit or holds a NUL byte. */
bool stream__cstr(const msgpack_object *o, char *buf, size_t len)
{
    if (o->via.str.size >= len || memchr(o->via.str.ptr, '\0', o->via.str.size))
        return false;
    memcpy(buf, o->via.str.ptr, o->via.str.size);
    buf[o->via.str.size] = '\0';
    return true;
}

/* Applies a {str: str} map of settings to cfg. 0 or EBADCONFIG with msg. */
int stream__apply_settings(stream_config *cfg, const msgpack_object *set, char *msg, size_t msg_len)
{
    for (uint32_t i = 0; set && i < set->via.map.size; i++) {
        const msgpack_object_kv *kv = &set->via.map.ptr[i];
        char key[128], value[1024];
        if (!stream__cstr(&kv->key, key, sizeof(key)) ||
            !stream__cstr(&kv->val, value, sizeof(value))) {
            snprintf(msg, msg_len, "setting '%.*s' is too long or holds a NUL byte",
                     (int)(kv->key.via.str.size > 64 ? 64 : kv->key.via.str.size),
                     kv->key.via.str.ptr);
            return STREAM_EBADCONFIG;
        }
        int rc = stream_config_set(cfg, key, value, msg, msg_len);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- describe_configs / alter_configs ---- */

static const char *source_name(stream_config_source s)
{
    switch (s) {
    case STREAM_CONFIG_SOURCE_TOPIC:
        return "topic";
    case STREAM_CONFIG_SOURCE_BROKER:
        return "broker";
    default:
        return "default";
    }
}

static int by_name(const void *a, const void *b)
{
    const stream_config_setting *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* `configs`: every setting of the scope, sorted by name (host.h). */
void stream__host_pack_configs(msgpack_packer *pk, const stream_config *broker,
                               const stream_config *topic)
{
    const stream_config_setting *order[STREAM_CONFIG_COUNT];
    size_t n = 0;
    stream_config_iter it;
    stream_config_iter_start(&it, broker, topic);
    while (stream_config_iter_next(&it) && n < STREAM_CONFIG_COUNT)
        order[n++] = it.setting;
    qsort(order, n, sizeof(order[0]), by_name);
    stream_pack_key(pk, "configs");
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        /* The iterator is the one place that knows the effective value and
         * its source; walk it to the setting wanted. */
        stream_config_iter_start(&it, broker, topic);
        while (stream_config_iter_next(&it) && it.setting != order[i])
            ;
        msgpack_pack_map(pk, 5);
        stream_pack_kv_cstr(pk, "name", it.setting->name);
        stream_pack_kv_cstr(pk, "value", it.value);
        stream_pack_kv_bool(pk, "is_default", it.source == STREAM_CONFIG_SOURCE_DEFAULT);
        stream_pack_kv_cstr(pk, "source", source_name(it.source));
        stream_pack_kv_cstr(pk, "doc", it.setting->doc);
    }
}

static void op_describe_configs(stream__conn *c, stream__req *r, uint64_t id,
                                const msgpack_object *m)
{
    stream_broker *b = c->broker;
    char msg[512];
    const msgpack_object *topics;
    bool broker = false;
    int rc = stream_field_array_opt(m, "topics", &topics, msg, sizeof(msg));
    if (rc == 0)
        rc = stream_field_bool_opt(m, "broker", false, &broker, msg, sizeof(msg));
    for (uint32_t i = 0; rc == 0 && topics && i < topics->via.array.size; i++) {
        const char *p;
        size_t len;
        rc = stream_elem_str(topics, i, "topics", &p, &len, msg, sizeof(msg));
    }
    if (rc != 0) {
        stream__reply_error(r, id, rc, msg);
        return;
    }
    stream_frame f;
    stream_frame_start(&f, &r->out);
    stream_pack_response_header(&f.pk, id, 0, NULL, broker ? 2 : 1);
    if (broker) {
        /* The broker's own settings, as its configuration holds them. */
        stream_pack_key(&f.pk, "broker");
        msgpack_pack_map(&f.pk, 1);
        stream__host_pack_configs(&f.pk, b->config, NULL);
    }
    size_t n = topics ? topics->via.array.size : stream_store_topic_count(b->store);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, n);
    for (size_t i = 0; i < n; i++) {
        stream_topic *t;
        const char *p;
        size_t len;
        char name[STREAM_TOPIC_NAME_MAX + 1];
        rc = 0;
        if (topics) {
            stream_elem_str(topics, i, "topics", &p, &len, NULL, 0);
            t = lookup_topic(b, p, len, name, &rc, msg, sizeof(msg));
        } else {
            t = stream_store_topic_at(b->store, i);
            p = t->name;
            len = strlen(t->name);
        }
        msgpack_pack_map(&f.pk, 2 + stream_err_fields(rc));
        stream_pack_kv_str(&f.pk, "name", p, len);
        stream_pack_err(&f.pk, rc, msg);
        if (t)
            stream__host_pack_configs(&f.pk, b->config, t->overrides);
        else {
            stream_pack_key(&f.pk, "configs");
            msgpack_pack_array(&f.pk, 0);
        }
    }
    stream__reply_finish(r, &f, id);
}

/* The new overrides of one topic: its current ones, `delete`d keys unset,
 * `set` applied. EBADCONFIG with msg when a key is in both, or invalid. */
static int altered_overrides(const stream_topic *t, const msgpack_object *set,
                             const msgpack_object *del, stream_config **out, char *msg,
                             size_t msg_len)
{
    for (uint32_t i = 0; del && set && i < del->via.array.size; i++) {
        const msgpack_object *d = &del->via.array.ptr[i];
        for (uint32_t j = 0; j < set->via.map.size; j++) {
            const msgpack_object *k = &set->via.map.ptr[j].key;
            if (k->via.str.size == d->via.str.size &&
                memcmp(k->via.str.ptr, d->via.str.ptr, d->via.str.size) == 0) {
                snprintf(msg, msg_len, "setting '%.*s' is both in set and in delete",
                         (int)(d->via.str.size > 64 ? 64 : d->via.str.size), d->via.str.ptr);
                return STREAM_EBADCONFIG;
            }
        }
    }
    stream_config *nc = t->overrides ? stream_config_dup(t->overrides) : stream_config_new_topic();
    if (nc == NULL)
        return STREAM_ENOMEM;
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && del && i < del->via.array.size; i++) {
        char key[128];
        if (!stream__cstr(&del->via.array.ptr[i], key, sizeof(key))) {
            snprintf(msg, msg_len, "delete[%u]: unknown setting", i);
            rc = STREAM_EBADCONFIG;
            break;
        }
        rc = stream_config_unset(nc, key, msg, msg_len);
    }
    if (rc == 0)
        rc = stream__apply_settings(nc, set, msg, msg_len);
    if (rc != 0) {
        stream_config_free(nc);
        return rc;
    }
    *out = nc;
    return 0;
}

static int alter_entry(const msgpack_object *topics, uint32_t i, const char **p, size_t *len,
                       const msgpack_object **set, const msgpack_object **del, char *msg,
                       size_t msg_len)
{
    const msgpack_object *t;
    int rc = stream_elem_map(topics, i, "topics", &t, msg, msg_len);
    if (rc == 0)
        rc = stream_field_str(t, "name", p, len, msg, msg_len);
    if (rc == 0)
        rc = stream_field_strmap_opt(t, "set", set, msg, msg_len);
    if (rc == 0)
        rc = stream_field_array_opt(t, "delete", del, msg, msg_len);
    for (uint32_t j = 0; rc == 0 && *del && j < (*del)->via.array.size; j++) {
        const char *k;
        size_t klen;
        rc = stream_elem_str(*del, j, "delete", &k, &klen, msg, msg_len);
    }
    return rc;
}

static void op_alter_configs(stream__conn *c, stream__req *r, uint64_t id, const msgpack_object *m)
{
    stream_broker *b = c->broker;
    char msg[512];
    const msgpack_object *topics, *set, *del;
    const char *p;
    size_t len;
    bool validate_only;
    int rc = stream_field_array(m, "topics", &topics, msg, sizeof(msg));
    if (rc == 0)
        rc = stream_field_bool_opt(m, "validate_only", false, &validate_only, msg, sizeof(msg));
    for (uint32_t i = 0; rc == 0 && i < topics->via.array.size; i++)
        rc = alter_entry(topics, i, &p, &len, &set, &del, msg, sizeof(msg));
    if (rc != 0) {
        stream__reply_error(r, id, rc, msg);
        return;
    }
    stream_frame f;
    stream_frame_start(&f, &r->out);
    stream_pack_response_header(&f.pk, id, 0, NULL, 1);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, topics->via.array.size);
    for (uint32_t i = 0; i < topics->via.array.size; i++) {
        char name[STREAM_TOPIC_NAME_MAX + 1];
        alter_entry(topics, i, &p, &len, &set, &del, NULL, 0);
        stream_topic *t = lookup_topic(b, p, len, name, &rc, msg, sizeof(msg));
        stream_config *nc = NULL;
        if (t)
            rc = altered_overrides(t, set, del, &nc, msg, sizeof(msg));
        if (rc == 0 && !validate_only) {
            rc = stream_store_alter_topic(b->store, name, nc, msg, sizeof(msg));
            if (rc == 0)
                stream__blog(b, STREAM_BROKER_INFO, "altered configs of topic %s", name);
        }
        stream_config_free(nc);
        msgpack_pack_map(&f.pk, 1 + stream_err_fields(rc));
        stream_pack_kv_str(&f.pk, "name", p, len);
        stream_pack_err(&f.pk, rc, msg);
    }
    stream__reply_finish(r, &f, id);
}

/* ---- dispatch ---- */

/* Queues the connection-level error (id 0) and closes after writing it. */
static int fail_frame(stream__conn *c, stream__req *r, int err, const char *msg)
{
    stream__blog(c->broker, STREAM_BROKER_WARN, "connection %llu from %s: %s; closing",
                 (unsigned long long)c->id, c->peer, msg);
    r->close_after = true;
    stream__reply_error(r, 0, err, msg);
    stream__conn_break(c);
    return err;
}

/* Answers op (decoded in m) for r: a core op, unless a service took it
 * (stream__host_take_op), or a service's op. */
static void run_op(stream__conn *c, stream__req *r, uint64_t id, stream_op op,
                   const msgpack_object *m)
{
    char msg[160];
    if (c->broker->routes[op].taken && stream__services_dispatch(c->broker, r, id, op, m))
        return; /* a core op a service answers instead (stream__host_take_op) */
    switch (op) {
    case STREAM_OP_HELLO:
        op_hello(c, r, id, m);
        break;
    case STREAM_OP_METADATA:
        op_metadata(c, r, id, m);
        break;
    case STREAM_OP_CREATE_TOPICS:
        stream__op_create_topics(c, r, id, m);
        break;
    case STREAM_OP_DELETE_TOPICS:
        stream__op_delete_topics(c, r, id, m);
        break;
    case STREAM_OP_CREATE_PARTITIONS:
        stream__op_create_partitions(c, r, id, m);
        break;
    case STREAM_OP_DESCRIBE_CONFIGS:
        op_describe_configs(c, r, id, m);
        break;
    case STREAM_OP_ALTER_CONFIGS:
        op_alter_configs(c, r, id, m);
        break;
    case STREAM_OP_PRODUCE:
        stream__op_produce(c, r, id, m);
        break;
    case STREAM_OP_FETCH:
        stream__op_fetch(c, r, id, m);
        break;
    case STREAM_OP_LIST_OFFSETS:
        stream__op_list_offsets(c, r, id, m);
        break;
    case STREAM_OP_INIT_PRODUCER_ID:
        stream__op_init_producer_id(c, r, id, m);
        break;
    case STREAM_OP_STATS:
        stream__op_stats(c, r, id, m);
        break;
    default:
        /* A service's op (the consumer groups'), or one nobody answers. */
        if (stream__services_dispatch(c->broker, r, id, op, m))
            break;
        snprintf(msg, sizeof(msg), "operation '%s' is not supported by this broker",
                 stream_op_name(op));
        stream__reply_error(r, id, STREAM_EUNKNOWNOP, msg);
        break;
    }
}

/* stream__dispatch with the request decoded into dm. */
static int dispatch(stream__conn *c, uint8_t *frame, size_t len, stream_msg *dm)
{
    stream__req *r = stream__req_new(c);
    if (r == NULL) {
        stream__conn_close(c);
        return STREAM_ENOMEM;
    }
    r->start_ns = uv_hrtime();
    char msg[512];
    int rc = stream_msg_parse(frame, len, dm, msg, sizeof(msg));
    if (rc != 0)
        return fail_frame(c, r, rc, msg);
    uint64_t id;
    stream_op op;
    rc = stream_msg_request(dm, &id, &op, msg, sizeof(msg));
    if (rc == STREAM_EPROTO)
        return fail_frame(c, r, rc, msg);
    if (rc == 0)
        r->op = op; /* counted when answered (stream__metrics_request) */
    if (c->broker->stopping) {
        /* Read before the stop but not yet started: the spec's ECLOSED. */
        stream__reply_error(r, id, STREAM_ECLOSED, "the broker is shutting down");
        return 0;
    }
    if (!c->hello && (rc != 0 || op != STREAM_OP_HELLO)) {
        snprintf(msg, sizeof(msg), "the first request on a connection must be hello");
        stream__blog(c->broker, STREAM_BROKER_DEBUG, "connection %llu from %s: %s; closing",
                     (unsigned long long)c->id, c->peer, msg);
        r->close_after = true;
        stream__reply_error(r, id, STREAM_EBADREQ, msg);
        stream__conn_break(c);
        return STREAM_EBADREQ;
    }
    int since = stream_op_since_version(op);
    if (rc == 0 && op != STREAM_OP_HELLO && (since < 1 || since > c->version)) {
        /* Reserved names (consumer groups) and ops of a later version than
         * the one agreed in hello are unknown here. */
        rc = STREAM_EUNKNOWNOP;
        snprintf(msg, sizeof(msg), "operation '%s' is not part of protocol version %d",
                 stream_op_name(op), c->version);
    }
    if (rc != 0) {
        stream__reply_error(r, id, rc, msg);
        return 0;
    }
    run_op(c, r, id, op, &dm->root);
    return 0;
}

int stream__dispatch(stream__conn *c, uint8_t *frame, size_t len)
{
    stream_broker *b = c->broker;
    if (b->msg_busy) /* nested: see stream_broker.msg */
        return dispatch(c, frame, len, &c->msg);
    b->msg_busy = true;
    int rc = dispatch(c, frame, len, &b->msg);
    b->msg_busy = false;
    return rc;
}

int stream__host_native_op(stream__req *r, const uint8_t *req, size_t len,
                           stream__native_done_fn done, void (*release)(void *arg), void *arg)
{
    stream__conn *c = r->conn;
    stream_broker *b = c->broker;
    stream_msg *dm = b->msg_busy ? &c->msg : &b->msg;
    bool was_busy = b->msg_busy;
    b->msg_busy = true;
    uint64_t id;
    stream_op op;
    int rc = stream_msg_parse(req, len, dm, NULL, 0);
    if (rc == 0)
        rc = stream_msg_request(dm, &id, &op, NULL, 0);
    if (rc == 0) {
        switch (op) {
        case STREAM_OP_METADATA:
        case STREAM_OP_CREATE_TOPICS:
        case STREAM_OP_DELETE_TOPICS:
        case STREAM_OP_CREATE_PARTITIONS:
        case STREAM_OP_DESCRIBE_CONFIGS:
        case STREAM_OP_ALTER_CONFIGS:
        case STREAM_OP_DESCRIBE_CLUSTER:
            break;
        default:
            rc = STREAM_EINVAL;
            break;
        }
    }
    if (rc == 0) {
        r->native_done = done;
        r->native_release = release;
        r->native_arg = arg;
        run_op(c, r, id, op, &dm->root);
    }
    b->msg_busy = was_busy;
    return rc;
}
