/*
 * controller_admin.c - topic administration through the metadata quorum
 * (cluster mode), alter_isr, and auto-creation.
 *
 * In a cluster the controller takes six core ops (stream__host_take_op):
 *
 *   metadata        answered by any broker from its own copy of the
 *                   metadata: the live brokers, and per partition leader,
 *                   leader_epoch, replicas, isr, plus the offsets of this
 *                   broker's local log of it when it has one (else -1)
 *   describe_configs  likewise: a topic's overrides from the metadata over
 *                   this broker's settings
 *   create_topics   checked here (name, partitions, replication_factor
 *   delete_topics   against the live brokers, configs through the config
 *   alter_configs   table as the core checks them), then proposed; each
 *   create_partitions
 *                   topic's result is the command's verdict once applied
 *                   on the controller. A broker that is not the controller
 *                   forwards the request over its link and relays the
 *                   answer, so any broker will do.
 *
 * Replica placement: Kafka's without racks (election.h), from a random
 * start among the live brokers. Topic ids: 16 random bytes.
 *
 * A request waiting for its proposals (or for the controller's answer) is
 * a ctl_pending; when its connection closes, it is only marked (r NULL) and
 * freed once the last callback has come.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "controller_internal.h"
#include "election.h"
#include "stream/config.h"

#define FORWARD_TIMEOUT_MS 10000 /* a forwarded request waits this long for the controller */

/* ---- pending requests ---- */

static ctl_pending *pending_new(controller *ctl, stream__req *r, uint64_t id, stream_op op,
                                uint32_t n)
{
    ctl_pending *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->ctl = ctl;
    p->r = r;
    p->id = id;
    p->conn = r != NULL ? stream__host_req_conn(r) : 0;
    p->op = op;
    p->n = n;
    uint32_t k = n ? n : 1;
    p->err = calloc(k, sizeof(*p->err));
    p->msg = calloc(k, sizeof(*p->msg));
    p->name = calloc(k, sizeof(*p->name));
    p->ent = calloc(k, sizeof(*p->ent));
    if (p->err == NULL || p->msg == NULL || p->name == NULL || p->ent == NULL) {
        free(p->err);
        free(p->msg);
        free(p->name);
        free(p->ent);
        free(p);
        return NULL;
    }
    for (uint32_t i = 0; i < k; i++)
        p->ent[i] = (ctl_entry){p, i};
    p->next = ctl->pending;
    ctl->pending = p;
    return p;
}

static void pending_free(ctl_pending *p)
{
    controller *ctl = p->ctl;
    for (ctl_pending **pp = &ctl->pending; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    for (uint32_t i = 0; i < p->n; i++) {
        free(p->msg[i]);
        free(p->name[i]);
    }
    free(p->err);
    free(p->msg);
    free(p->name);
    free(p->ent);
    free(p);
}

void ctl_admin_conn_closed(controller *ctl, uint64_t conn)
{
    for (ctl_pending *p = ctl->pending; p; p = p->next)
        if (p->conn == conn)
            p->r = NULL;
}

void ctl_admin_free(controller *ctl)
{
    while (ctl->pending != NULL)
        pending_free(ctl->pending);
}

static void set_result(ctl_pending *p, uint32_t i, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_result(ctl_pending *p, uint32_t i, int err, const char *fmt, ...)
{
    p->err[i] = err;
    free(p->msg[i]);
    p->msg[i] = NULL;
    if (err == 0 || fmt == NULL)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    p->msg[i] = strdup(buf);
}

/* Answers p (unless its connection closed) and frees it. */
static void finish(ctl_pending *p)
{
    if (p->r != NULL) {
        if (p->op == STREAM_OP_ALTER_ISR) {
            if (p->err[0] != 0) {
                stream__host_reply_error(p->r, p->id, p->err[0], p->msg[0]);
            } else {
                stream_frame f;
                stream__host_reply_start(p->r, &f);
                stream_pack_response_header(&f.pk, p->id, 0, NULL, 0);
                stream__host_reply_finish(p->r, &f, p->id);
            }
        } else {
            stream_frame f;
            stream__host_reply_start(p->r, &f);
            stream_pack_response_header(&f.pk, p->id, 0, NULL, 1);
            stream_pack_key(&f.pk, "topics");
            msgpack_pack_array(&f.pk, p->n);
            for (uint32_t i = 0; i < p->n; i++) {
                msgpack_pack_map(&f.pk, 1 + stream_err_fields(p->err[i]));
                stream_pack_kv_cstr(&f.pk, "name", p->name[i] ? p->name[i] : "");
                stream_pack_err(&f.pk, p->err[i], p->msg[i]);
            }
            stream__host_reply_finish(p->r, &f, p->id);
        }
    }
    pending_free(p);
}

/* A proposal of entry e was answered: its verdict, with a message. */
static void on_entry_done(void *arg, int status, int result)
{
    ctl_entry *e = arg;
    ctl_pending *p = e->p;
    const char *name = p->name[e->i] ? p->name[e->i] : "";
    int err = status != 0 ? status : result;
    switch (err) {
    case 0:
        set_result(p, e->i, 0, NULL);
        break;
    case STREAM_ENOTLEADER:
        set_result(p, e->i, err, "the controller changed before '%s' was applied; retry", name);
        break;
    case STREAM_ETOPICEXISTS:
    case STREAM_EEXIST:
        set_result(p, e->i, STREAM_ETOPICEXISTS, "topic '%s' already exists", name);
        break;
    case STREAM_ENOTOPIC:
        set_result(p, e->i, err, "unknown topic '%s'", name);
        break;
    case STREAM_ESTALEEPOCH:
        if (p->op == STREAM_OP_CREATE_PARTITIONS)
            set_result(p, e->i, STREAM_EAGAIN,
                       "topic '%s' got other partitions meanwhile; ask again", name);
        else
            set_result(p, e->i, err, "%s: the partition changed meanwhile (stale partition_epoch)",
                       name);
        break;
    default:
        set_result(p, e->i, err, "%s: %s", name, stream_strerror(err));
        break;
    }
    if (--p->waiting == 0)
        finish(p);
}

/* ---- forwarding to the controller ---- */

/* True for the keys a forwarded copy does not carry over: op and id (its
 * own header), forwarded (set anew). */
static bool own_key(const msgpack_object *k)
{
    if (k->type != MSGPACK_OBJECT_STR)
        return false;
    const char *p = k->via.str.ptr;
    size_t n = k->via.str.size;
    return (n == 2 && (memcmp(p, "op", 2) == 0 || memcmp(p, "id", 2) == 0)) ||
           (n == 9 && memcmp(p, "forwarded", 9) == 0);
}

size_t ctl_count_fields(const msgpack_object *m)
{
    size_t n = 0;
    for (uint32_t i = 0; i < m->via.map.size; i++)
        n += !own_key(&m->via.map.ptr[i].key);
    return n;
}

void ctl_pack_fields(msgpack_packer *pk, const msgpack_object *m)
{
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (own_key(k))
            continue;
        msgpack_pack_object(pk, *k);
        msgpack_pack_object(pk, m->via.map.ptr[i].val);
    }
}

static void on_forward_answer(controller *ctl, void *arg, int err, const char *msg, size_t msg_len,
                              const msgpack_object *resp)
{
    (void)ctl;
    ctl_pending *p = arg;
    if (p->r != NULL) {
        if (resp != NULL) {
            /* The controller's answer as it is, under the client's id. */
            stream_frame f;
            stream__host_reply_start(p->r, &f);
            msgpack_pack_map(&f.pk, resp->via.map.size);
            for (uint32_t i = 0; i < resp->via.map.size; i++) {
                const msgpack_object *k = &resp->via.map.ptr[i].key;
                msgpack_pack_object(&f.pk, *k);
                if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 2 &&
                    memcmp(k->via.str.ptr, "id", 2) == 0)
                    msgpack_pack_uint64(&f.pk, p->id);
                else
                    msgpack_pack_object(&f.pk, resp->via.map.ptr[i].val);
            }
            stream__host_reply_finish(p->r, &f, p->id);
        } else {
            char text[300];
            snprintf(text, sizeof(text), "forwarding to the controller: %.*s", (int)msg_len,
                     msg ? msg : stream_strerror(err));
            stream__host_reply_error(p->r, p->id, err, text);
        }
    }
    pending_free(p);
}

/* Sends r to the controller over the link and relays its answer. A
 * request that was forwarded already (two brokers each believing the other
 * leads, for a moment) is not forwarded again: ENOTLEADER, the client
 * retries. */
static void forward(controller *ctl, stream__req *r, uint64_t id, stream_op op,
                    const msgpack_object *m)
{
    int32_t leader = ctl_leader(ctl);
    bool again = false;
    stream_field_bool_opt(m, "forwarded", false, &again, NULL, 0);
    if (again) {
        char msg[128];
        snprintf(msg, sizeof(msg), "not the controller; the controller is node %d; retry",
                 (int)leader);
        stream__host_reply_error(r, id, STREAM_ENOTLEADER, msg);
        return;
    }
    ctl_pending *p = pending_new(ctl, r, id, op, 0);
    if (p == NULL) {
        stream__host_reply_error(r, id, STREAM_ENOMEM, "out of memory");
        return;
    }
    p->forwarded = true;
    msgpack_packer *pk =
        ctl_link_begin(ctl, op, ctl_count_fields(m) + 1, FORWARD_TIMEOUT_MS, on_forward_answer, p);
    if (pk == NULL) {
        char msg[160];
        if (leader < 0)
            snprintf(msg, sizeof(msg), "no controller is known yet (election in progress); retry");
        else
            snprintf(msg, sizeof(msg), "not connected to the controller (node %d) yet; retry",
                     (int)leader);
        pending_free(p);
        stream__host_reply_error(r, id, STREAM_ENOTLEADER, msg);
        return;
    }
    ctl_pack_fields(pk, m);
    stream_pack_kv_bool(pk, "forwarded", true);
    ctl_link_end(ctl); /* on failure on_forward_answer already answered */
}

/* ---- metadata (any broker, from its own copy) ---- */

static void pack_ids(msgpack_packer *pk, const char *key, const int32_t *ids, uint32_t n)
{
    stream_pack_key(pk, key);
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++)
        msgpack_pack_int32(pk, ids[i]);
}

static void pack_topic(controller *ctl, msgpack_packer *pk, const stream__meta_topic *t)
{
    stream_topic *local = stream_store_topic(stream__host_store(ctl->b), t->name);
    msgpack_pack_map(pk, 4);
    stream_pack_kv_cstr(pk, "name", t->name);
    stream_pack_kv_int(pk, "err", 0);
    stream_pack_kv_bool(pk, "internal", stream_topic_is_internal(t->name, strlen(t->name)));
    stream_pack_key(pk, "partitions");
    msgpack_pack_array(pk, (uint32_t)t->partition_count);
    for (int32_t p = 0; p < t->partition_count; p++) {
        const stream__meta_partition *mp = &t->partitions[p];
        stream_log *log = local != NULL && p < local->partition_count ? local->partitions[p] : NULL;
        int64_t hw = -1;
        if (log != NULL)
            stream__host_partition_state(ctl->b, log, NULL, NULL, NULL, &hw);
        msgpack_pack_map(pk, 10);
        stream_pack_kv_int(pk, "partition", p);
        stream_pack_kv_int(pk, "err", 0);
        stream_pack_kv_int(pk, "leader", mp->leader);
        stream_pack_kv_int(pk, "leader_epoch", mp->leader_epoch);
        pack_ids(pk, "replicas", mp->replicas, mp->n_replicas);
        pack_ids(pk, "isr", mp->isr, mp->n_isr);
        stream_pack_kv_int(pk, "log_start_offset", log ? stream_log_start_offset(log) : -1);
        stream_pack_kv_int(pk, "high_watermark", hw);
        stream_pack_kv_int(pk, "log_end_offset", log ? stream_log_end_offset(log) : -1);
        stream_pack_kv_int(pk, "size_bytes", log ? (int64_t)stream_log_size(log) : -1);
    }
}

static void op_metadata(void *svc, stream__req *r, uint64_t id, const msgpack_object *m)
{
    controller *ctl = svc;
    char msg[512];
    const msgpack_object *topics;
    int rc = stream_field_array_opt(m, "topics", &topics, msg, sizeof(msg));
    for (uint32_t i = 0; rc == 0 && topics && i < topics->via.array.size; i++) {
        const char *p;
        size_t len;
        rc = stream_elem_str(topics, i, "topics", &p, &len, msg, sizeof(msg));
    }
    if (rc != 0) {
        stream__host_reply_error(r, id, rc, msg);
        return;
    }
    stream_frame f;
    stream__host_reply_start(r, &f);
    stream_pack_response_header(&f.pk, id, 0, NULL, 2);
    size_t nb = stream__meta_broker_count(ctl->md), live = 0;
    for (size_t i = 0; i < nb; i++)
        live += !stream__meta_broker_at(ctl->md, i)->fenced;
    stream_pack_key(&f.pk, "brokers");
    msgpack_pack_array(&f.pk, (uint32_t)live);
    for (size_t i = 0; i < nb; i++) {
        const stream__meta_broker *mb = stream__meta_broker_at(ctl->md, i);
        if (mb->fenced)
            continue;
        msgpack_pack_map(&f.pk, 3);
        stream_pack_kv_int(&f.pk, "node_id", mb->id);
        stream_pack_kv_cstr(&f.pk, "host", mb->host);
        stream_pack_kv_int(&f.pk, "port", mb->port);
    }
    stream_pack_key(&f.pk, "topics");
    if (topics == NULL) {
        size_t n = stream__meta_topic_count(ctl->md);
        msgpack_pack_array(&f.pk, (uint32_t)n);
        for (size_t i = 0; i < n; i++)
            pack_topic(ctl, &f.pk, stream__meta_topic_at(ctl->md, i));
    } else {
        msgpack_pack_array(&f.pk, topics->via.array.size);
        for (uint32_t i = 0; i < topics->via.array.size; i++) {
            const char *p;
            size_t len;
            stream_elem_str(topics, i, "topics", &p, &len, NULL, 0);
            const stream__meta_topic *t = stream__meta_topic_find(ctl->md, p, len);
            if (t != NULL) {
                pack_topic(ctl, &f.pk, t);
                continue;
            }
            snprintf(msg, sizeof(msg), "unknown topic '%.*s'", (int)(len > 249 ? 249 : len), p);
            msgpack_pack_map(&f.pk, 3 + stream_err_fields(STREAM_ENOTOPIC));
            stream_pack_kv_str(&f.pk, "name", p, len);
            stream_pack_err(&f.pk, STREAM_ENOTOPIC, msg);
            stream_pack_kv_bool(&f.pk, "internal", stream_topic_is_internal(p, len));
            stream_pack_key(&f.pk, "partitions");
            msgpack_pack_array(&f.pk, 0);
        }
    }
    stream__host_reply_finish(r, &f, id);
}

/* ---- describe_configs (any broker, from the metadata) ---- */

/* The topic's overrides from the metadata as a topic config (values that no
 * longer pass the table are left out); NULL without memory. */
static stream_config *topic_config(const stream__meta_topic *t)
{
    stream_config *tc = stream_config_new_topic();
    for (uint32_t i = 0; tc != NULL && i < t->n_configs; i++)
        stream_config_set(tc, t->configs[i].key, t->configs[i].value, NULL, 0);
    return tc;
}

static void pack_topic_configs(controller *ctl, msgpack_packer *pk, const stream__meta_topic *t,
                               const char *p, size_t len)
{
    stream_config *tc = t != NULL ? topic_config(t) : NULL;
    int rc = t == NULL ? STREAM_ENOTOPIC : tc == NULL ? STREAM_ENOMEM : 0;
    char msg[300];
    snprintf(msg, sizeof(msg), "%s '%.*s'", rc == STREAM_ENOTOPIC ? "unknown topic" : "topic",
             (int)(len > 249 ? 249 : len), p);
    msgpack_pack_map(pk, 2 + stream_err_fields(rc));
    stream_pack_kv_str(pk, "name", p, len);
    stream_pack_err(pk, rc, rc == STREAM_ENOTOPIC ? msg : NULL);
    if (rc == 0) {
        stream__host_pack_configs(pk, stream__host_config(ctl->b), tc);
    } else {
        stream_pack_key(pk, "configs");
        msgpack_pack_array(pk, 0);
    }
    stream_config_free(tc);
}

static void op_describe_configs(void *svc, stream__req *r, uint64_t id, const msgpack_object *m)
{
    controller *ctl = svc;
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
        stream__host_reply_error(r, id, rc, msg);
        return;
    }
    stream_frame f;
    stream__host_reply_start(r, &f);
    stream_pack_response_header(&f.pk, id, 0, NULL, broker ? 2 : 1);
    if (broker) {
        stream_pack_key(&f.pk, "broker");
        msgpack_pack_map(&f.pk, 1);
        stream__host_pack_configs(&f.pk, stream__host_config(ctl->b), NULL);
    }
    size_t n = topics ? topics->via.array.size : stream__meta_topic_count(ctl->md);
    stream_pack_key(&f.pk, "topics");
    msgpack_pack_array(&f.pk, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        if (topics == NULL) {
            const stream__meta_topic *t = stream__meta_topic_at(ctl->md, i);
            pack_topic_configs(ctl, &f.pk, t, t->name, strlen(t->name));
            continue;
        }
        const char *p;
        size_t len;
        stream_elem_str(topics, (uint32_t)i, "topics", &p, &len, NULL, 0);
        pack_topic_configs(ctl, &f.pk, stream__meta_topic_find(ctl->md, p, len), p, len);
    }
    stream__host_reply_finish(r, &f, id);
}

/* ---- create_topics ---- */

/* Copies a msgpack str into buf as a C string; false when too long or it
 * holds a NUL. */
static bool cstr(const msgpack_object *o, char *buf, size_t len)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= len ||
        memchr(o->via.str.ptr, '\0', o->via.str.size))
        return false;
    memcpy(buf, o->via.str.ptr, o->via.str.size);
    buf[o->via.str.size] = '\0';
    return true;
}

/* Applies a {str: str} map to a topic config as the core does. 0 or
 * EBADCONFIG with msg. */
static int check_settings(stream_config *cfg, const msgpack_object *set, char *msg, size_t len)
{
    for (uint32_t i = 0; set && i < set->via.map.size; i++) {
        const msgpack_object_kv *kv = &set->via.map.ptr[i];
        char key[STREAM__META_CONFIG_KEY_MAX + 1], value[STREAM__META_CONFIG_VALUE_MAX + 1];
        if (!cstr(&kv->key, key, sizeof(key)) || !cstr(&kv->val, value, sizeof(value))) {
            snprintf(msg, len, "setting '%.*s' is too long or holds a NUL byte",
                     (int)(kv->key.via.str.size > 64 ? 64 : kv->key.via.str.size),
                     kv->key.via.str.ptr);
            return STREAM_EBADCONFIG;
        }
        int rc = stream_config_set(cfg, key, value, msg, len);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The live (registered, unfenced) brokers, by id; their count. */
static uint32_t live_brokers(controller *ctl, int32_t *ids, uint32_t max)
{
    uint32_t n = 0;
    size_t nb = stream__meta_broker_count(ctl->md);
    for (size_t i = 0; i < nb && n < max; i++) {
        const stream__meta_broker *mb = stream__meta_broker_at(ctl->md, i);
        if (!mb->fenced)
            ids[n++] = mb->id;
    }
    return n;
}

static uint32_t random_u32(void)
{
    uint32_t v = 0;
    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
        v = (uint32_t)uv_hrtime();
    return v;
}

static void random_topic_id(uint8_t id[STREAM__META_TOPIC_ID_BYTES])
{
    if (getrandom(id, STREAM__META_TOPIC_ID_BYTES, 0) != STREAM__META_TOPIC_ID_BYTES) {
        uint64_t t = uv_hrtime();
        for (int i = 0; i < STREAM__META_TOPIC_ID_BYTES; i++)
            id[i] = (uint8_t)(t >> ((i % 8) * 8)) ^ (uint8_t)(i * 37);
    }
    id[0] |= 1; /* never all zero */
}

/* The replication factor a topic gets when it asks for rf (-1: the default).
 * 0 with msg when it cannot have it. */
static int32_t choose_rf(controller *ctl, int64_t rf, uint32_t live, char *msg, size_t len)
{
    if (live == 0) {
        snprintf(msg, len, "no live broker to place replicas on");
        return 0;
    }
    if (rf == -1)
        rf = ctl->default_rf;
    if (rf == -1)
        return (int32_t)(live < 3 ? live : 3);
    if (rf < 1 || rf > STREAM__META_MAX_REPLICAS) {
        snprintf(msg, len, "replication_factor must be 1 to %d, got %lld",
                 STREAM__META_MAX_REPLICAS, (long long)rf);
        return 0;
    }
    if (rf > (int64_t)live) {
        snprintf(msg, len, "replication_factor %lld is larger than the %u live broker%s",
                 (long long)rf, (unsigned)live, live == 1 ? "" : "s");
        return 0;
    }
    return (int32_t)rf;
}

/*
 * __consumer_offsets gets these settings unless the request set them:
 * compacted, so a group's last commit stays and the topic stays bounded
 * (cleanup.policy=compact; retention does not apply), commits
 * group-commit whatever the broker's flush.mode, and with three replicas or
 * more a commit needs two in-sync replicas (min.insync.replicas=2), so an
 * acknowledged commit is on a majority's disks and survives the leader.
 */
#define OFFSETS_DEFAULTS 4

static bool kv_has(const stream__meta_kv *kv, uint32_t n, const char *key)
{
    for (uint32_t i = 0; i < n; i++)
        if (kv[i].key_len == strlen(key) && memcmp(kv[i].key, key, kv[i].key_len) == 0)
            return true;
    return false;
}

/* Appends the defaults kv[0..n) lacks (room for OFFSETS_DEFAULTS more);
 * returns the new count. */
static uint32_t offsets_defaults(stream__meta_kv *kv, uint32_t n, int32_t rf)
{
    static const char *const defaults[][2] = {
        {"cleanup.policy", "compact"},
        {"segment.bytes", "104857600"},
        {"flush.mode", "group"},
        {"min.insync.replicas", "2"},
    };
    uint32_t have = n;
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        if (i == 3 && rf < 3)
            continue;
        if (kv_has(kv, have, defaults[i][0]))
            continue;
        kv[n++] = (stream__meta_kv){defaults[i][0], strlen(defaults[i][0]), defaults[i][1],
                                    strlen(defaults[i][1])};
    }
    return n;
}

static void on_offsets_migrated(void *arg, int status, int result)
{
    controller *ctl = arg;
    ctl->offsets_migrating = false;
    if (status == 0 && result == 0)
        stream__host_log(ctl->b, STREAM_BROKER_INFO,
                         "cluster: %s made before compaction: now cleanup.policy=compact",
                         STREAM_OFFSETS_TOPIC);
}

void ctl_migrate_offsets_topic(controller *ctl)
{
    if (ctl->offsets_migrating)
        return;
    const stream__meta_topic *t =
        stream__meta_topic_find(ctl->md, STREAM_OFFSETS_TOPIC, strlen(STREAM_OFFSETS_TOPIC));
    if (t == NULL)
        return;
    for (uint32_t i = 0; i < t->n_configs; i++)
        if (strcmp(t->configs[i].key, "cleanup.policy") == 0 &&
            strstr(t->configs[i].value, "compact") != NULL)
            return;
    static const stream__meta_kv set = {"cleanup.policy", 14, "compact", 7};
    stream_buf cmd;
    stream_buf_init(&cmd);
    int rc =
        stream__meta_encode_alter_configs(&cmd, (stream__meta_req){ctl->node_id, ctl_next_seq(ctl)},
                                          t->name, t->id, &set, 1, NULL, 0);
    if (rc == 0)
        rc = stream__quorum_propose(ctl->q, cmd.data, cmd.len, on_offsets_migrated, ctl);
    stream_buf_release(&cmd);
    ctl->offsets_migrating = rc == 0; /* else the next tick tries again */
}

/* Proposes create_topic for name (partitions, rf resolved; configs as
 * given, plus offsets_defaults for __consumer_offsets). 0 or an error with
 * msg. */
static int propose_create(controller *ctl, const char *name, int32_t parts, int32_t rf,
                          const int32_t *live, uint32_t nlive, const msgpack_object *cfg,
                          stream__quorum_done_cb cb, void *arg, char *msg, size_t len)
{
    int32_t *replicas = malloc((size_t)parts * (size_t)rf * sizeof(int32_t));
    uint32_t nkv = cfg ? cfg->via.map.size : 0;
    stream__meta_kv *kv = calloc(nkv + OFFSETS_DEFAULTS, sizeof(*kv));
    if (replicas == NULL || kv == NULL) {
        free(replicas);
        free(kv);
        return STREAM_ENOMEM;
    }
    stream__elect_place(live, nlive, random_u32() % nlive, parts, rf, replicas);
    for (uint32_t i = 0; i < nkv; i++) {
        const msgpack_object_kv *o = &cfg->via.map.ptr[i];
        kv[i] = (stream__meta_kv){o->key.via.str.ptr, o->key.via.str.size, o->val.via.str.ptr,
                                  o->val.via.str.size};
    }
    if (strcmp(name, STREAM_OFFSETS_TOPIC) == 0)
        nkv = offsets_defaults(kv, nkv, rf);
    uint8_t id[STREAM__META_TOPIC_ID_BYTES];
    random_topic_id(id);
    stream_buf cmd;
    stream_buf_init(&cmd);
    int rc =
        stream__meta_encode_create_topic(&cmd, (stream__meta_req){ctl->node_id, ctl_next_seq(ctl)},
                                         name, id, parts, rf, replicas, kv, nkv);
    if (rc == 0)
        rc = stream__quorum_propose(ctl->q, cmd.data, cmd.len, cb, arg);
    if (rc != 0)
        snprintf(msg, len, "cannot propose topic '%s': %s", name, stream_strerror(rc));
    stream_buf_release(&cmd);
    free(replicas);
    free(kv);
    return rc;
}

/* True when entry i's name occurs at another index of topics (maps with a
 * str name, or strs when flat). */
static bool named_twice(const msgpack_object *topics, uint32_t i, bool flat)
{
    const char *p, *q;
    size_t len, qlen;
    const msgpack_object *t;
    if (flat)
        stream_elem_str(topics, i, "topics", &p, &len, NULL, 0);
    else if (stream_elem_map(topics, i, "topics", &t, NULL, 0) != 0 ||
             stream_field_str(t, "name", &p, &len, NULL, 0) != 0)
        return false;
    for (uint32_t j = 0; j < topics->via.array.size; j++) {
        if (j == i)
            continue;
        if (flat)
            stream_elem_str(topics, j, "topics", &q, &qlen, NULL, 0);
        else if (stream_elem_map(topics, j, "topics", &t, NULL, 0) != 0 ||
                 stream_field_str(t, "name", &q, &qlen, NULL, 0) != 0)
            continue;
        if (qlen == len && memcmp(p, q, len) == 0)
            return true;
    }
    return false;
}

static int create_entry(const msgpack_object *topics, uint32_t i, const char **p, size_t *len,
                        int64_t *parts, int64_t *rf, const msgpack_object **cfg, bool *internal,
                        char *msg, size_t msg_len)
{
    const msgpack_object *t;
    int rc = stream_elem_map(topics, i, "topics", &t, msg, msg_len);
    if (rc == 0)
        rc = stream_field_str(t, "name", p, len, msg, msg_len);
    if (rc == 0)
        rc = stream_field_int_opt(t, "partitions", INT32_MIN, INT32_MAX, -1, parts, msg, msg_len);
    if (rc == 0)
        rc = stream_field_int_opt(t, "replication_factor", INT32_MIN, INT32_MAX, -1, rf, msg,
                                  msg_len);
    if (rc == 0)
        rc = stream_field_strmap_opt(t, "configs", cfg, msg, msg_len);
    if (rc == 0)
        rc = stream_field_bool_opt(t, "internal", false, internal, msg, msg_len);
    return rc;
}

/* Checks entry i and proposes it unless validate_only. */
static void create_one(controller *ctl, ctl_pending *p, const msgpack_object *topics, uint32_t i,
                       bool validate_only, const int32_t *live, uint32_t nlive)
{
    char msg[512];
    const msgpack_object *cfg;
    const char *np;
    size_t len;
    int64_t parts, rf;
    char name[STREAM_TOPIC_NAME_MAX + 1];
    bool internal;
    create_entry(topics, i, &np, &len, &parts, &rf, &cfg, &internal, NULL, 0);
    p->name[i] = strndup(np, len);
    int rc = stream_topic_name_check(np, len, msg, sizeof(msg));
    if (rc != 0) {
        set_result(p, i, rc, "%s", msg);
        return;
    }
    memcpy(name, np, len);
    name[len] = '\0';
    if (stream_topic_is_internal(np, len) != internal) {
        set_result(p, i, STREAM_EBADNAME,
                   internal ? "an internal topic's name starts with '__'"
                            : "topic names starting with '__' are reserved for the broker");
        return;
    }
    if (parts == -1)
        parts = stream_config_int(stream__host_config(ctl->b), STREAM_CONFIG_NUM_PARTITIONS);
    if (parts < 1 || parts > STREAM_CONFIG_PARTITIONS_MAX) {
        set_result(p, i, STREAM_EINVAL, "partitions must be 1 to %d, got %lld",
                   STREAM_CONFIG_PARTITIONS_MAX, (long long)parts);
        return;
    }
    int32_t factor = choose_rf(ctl, rf, nlive, msg, sizeof(msg));
    if (factor == 0) {
        set_result(p, i, STREAM_EINVAL, "topic '%s': %s", name, msg);
        return;
    }
    if (named_twice(topics, i, false)) {
        set_result(p, i, STREAM_EINVAL, "topic '%s' is named twice in the request", name);
        return;
    }
    if (stream__meta_topic_find(ctl->md, np, len) != NULL) {
        set_result(p, i, STREAM_ETOPICEXISTS, "topic '%s' already exists", name);
        return;
    }
    stream_config *tc = stream_config_new_topic();
    if (tc == NULL) {
        set_result(p, i, STREAM_ENOMEM, "out of memory");
        return;
    }
    rc = check_settings(tc, cfg, msg, sizeof(msg));
    stream_config_free(tc);
    if (rc != 0) {
        set_result(p, i, rc, "%s", msg);
        return;
    }
    if (validate_only)
        return;
    rc = propose_create(ctl, name, (int32_t)parts, factor, live, nlive, cfg, on_entry_done,
                        &p->ent[i], msg, sizeof(msg));
    if (rc != 0) {
        set_result(p, i, rc, "%s", msg);
        return;
    }
    stream__host_log(ctl->b, STREAM_BROKER_INFO,
                     "cluster: creating topic %s: %lld partitions, replication factor %d", name,
                     (long long)parts, (int)factor);
    p->waiting++;
}

/* Checks entry i of a request and proposes its change unless validate_only. */
typedef void (*entry_fn)(controller *ctl, ctl_pending *p, const msgpack_object *topics, uint32_t i,
                         bool validate_only, const int32_t *live, uint32_t nlive);

/* An admin request of one entry per topic (create_topics,
 * create_partitions, delete_topics, alter_configs) once its shape is
 * checked: on a broker that is not the controller, forwarded; on the
 * controller, each entry checked and proposed (fn), the answer once every
 * proposal is decided. */
static void run_entries(controller *ctl, stream__req *r, uint64_t id, stream_op op,
                        const msgpack_object *m, const msgpack_object *topics, bool validate_only,
                        entry_fn fn)
{
    if (!ctl_is_controller(ctl)) {
        forward(ctl, r, id, op, m);
        return;
    }
    ctl_pending *p = pending_new(ctl, r, id, op, topics->via.array.size);
    if (p == NULL) {
        stream__host_reply_error(r, id, STREAM_ENOMEM, "out of memory");
        return;
    }
    int32_t live[256];
    uint32_t nlive = live_brokers(ctl, live, 256);
    p->waiting = 1; /* held until every entry is proposed */
    for (uint32_t i = 0; i < topics->via.array.size; i++)
        fn(ctl, p, topics, i, validate_only, live, nlive);
    if (--p->waiting == 0)
        finish(p);
}

static void op_create_topics(void *svc, stream__req *r, uint64_t id, const msgpack_object *m)
{
    controller *ctl = svc;
    char msg[512];
    const msgpack_object *topics, *cfg;
    bool validate_only;
    int rc = stream_field_array(m, "topics", &topics, msg, sizeof(msg));
    if (rc == 0)
        rc = stream_field_bool_opt(m, "validate_only", false, &validate_only, msg, sizeof(msg));
    for (uint32_t i = 0; rc == 0 && i < topics->via.array.size; i++) {
        const char *p;
        size_t len;
        int64_t parts, rf;
        bool internal;
        rc = create_entry(topics, i, &p, &len, &parts, &rf, &cfg, &internal, msg, sizeof(msg));
    }
    if (rc != 0) {
        stream__host_reply_error(r, id, rc, msg);
        return;
    }
    run_entries(ctl, r, id, STREAM_OP_CREATE_TOPICS, m, topics, validate_only, create_one);
}

/* Entry i names the topic np (len bytes): remembered for the answer, and
 * looked up; NULL (the entry answered ENOTOPIC) when there is none. */
static const stream__meta_topic *entry_topic(controller *ctl, ctl_pending *p, uint32_t i,
                                             const char *np, size_t len)
{
    p->name[i] = strndup(np, len);
    const stream__meta_topic *t = stream__meta_topic_find(ctl->md, np, len);
    if (t == NULL)
        set_result(p, i, STREAM_ENOTOPIC, "unknown topic '%.*s'", (int)(len > 249 ? 249 : len),
                   np);
    return t;
}

/* ---- delete_topics ---- */

static void delete_one(controller *ctl, ctl_pending *p, const msgpack_object *topics, uint32_t i,
                       bool validate_only, const int32_t *live, uint32_t nlive)
{
    const char *np;
    size_t len;
    stream_elem_str(topics, i, "topics", &np, &len, NULL, 0);
    const stream__meta_topic *t = entry_topic(ctl, p, i, np, len);
    if (t == NULL)
        return;
    const char *name = p->name[i] ? p->name[i] : ""; /* ours: t may go at the commit */
    if (stream_topic_is_internal(np, len)) {
        set_result(p, i, STREAM_EBADNAME, "topic '%s' is internal and cannot be deleted", name);
        return;
    }
    stream_buf cmd;
    stream_buf_init(&cmd);
    int rc = stream__meta_encode_delete_topic(
        &cmd, (stream__meta_req){ctl->node_id, ctl_next_seq(ctl)}, t->name, t->id);
    if (rc == 0)
        rc = stream__quorum_propose(ctl->q, cmd.data, cmd.len, on_entry_done, &p->ent[i]);
    stream_buf_release(&cmd);
    if (rc != 0) {
        set_result(p, i, rc, "cannot propose: %s", stream_strerror(rc));
        return;
    }
    stream__host_log(ctl->b, STREAM_BROKER_INFO, "cluster: deleting topic %s", name);
    p->waiting++;
}

static void op_delete_topics(void *svc, stream__req *r, uint64_t id, const msgpack_object *m)
{
    controller *ctl = svc;
    char msg[512];
    const msgpack_object *topics;
    int rc = stream_field_array(m, "topics", &topics, msg, sizeof(msg));
    for (uint32_t i = 0; rc == 0 && i < topics->via.array.size; i++) {
        const char *p;
        size_t len;
        rc = stream_elem_str(topics, i, "topics", &p, &len, msg, sizeof(msg));
    }
    if (rc != 0) {
        stream__host_reply_error(r, id, rc, msg);
        return;
    }
    run_entries(ctl, r, id, STREAM_OP_DELETE_TOPICS, m, topics, false, delete_one);
}

/* ---- alter_configs ---- */

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

/* The topic's configs after the change, checked by the config table. */
static int check_alter(const stream__meta_topic *t, const msgpack_object *set,
                       const msgpack_object *del, char *msg, size_t len)
{
    for (uint32_t i = 0; del && set && i < del->via.array.size; i++) {
        const msgpack_object *d = &del->via.array.ptr[i];
        for (uint32_t j = 0; j < set->via.map.size; j++) {
            const msgpack_object *k = &set->via.map.ptr[j].key;
            if (k->via.str.size == d->via.str.size &&
                memcmp(k->via.str.ptr, d->via.str.ptr, d->via.str.size) == 0) {
                snprintf(msg, len, "setting '%.*s' is both in set and in delete",
                         (int)(d->via.str.size > 64 ? 64 : d->via.str.size), d->via.str.ptr);
                return STREAM_EBADCONFIG;
            }
        }
    }
    stream_config *tc = stream_config_new_topic();
    if (tc == NULL)
        return STREAM_ENOMEM;
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < t->n_configs; i++)
        rc = stream_config_set(tc, t->configs[i].key, t->configs[i].value, msg, len);
    for (uint32_t i = 0; rc == 0 && del && i < del->via.array.size; i++) {
        char key[STREAM__META_CONFIG_KEY_MAX + 1];
        if (!cstr(&del->via.array.ptr[i], key, sizeof(key))) {
            snprintf(msg, len, "delete[%u]: unknown setting", i);
            rc = STREAM_EBADCONFIG;
            break;
        }
        rc = stream_config_unset(tc, key, msg, len);
    }
    if (rc == 0)
        rc = check_settings(tc, set, msg, len);
    stream_config_free(tc);
    return rc;
}

static void alter_one(controller *ctl, ctl_pending *p, const msgpack_object *topics, uint32_t i,
                      bool validate_only, const int32_t *live, uint32_t nlive)
{
    char msg[512];
    const msgpack_object *set, *del;
    const char *np;
    size_t len;
    alter_entry(topics, i, &np, &len, &set, &del, NULL, 0);
    const stream__meta_topic *t = entry_topic(ctl, p, i, np, len);
    if (t == NULL)
        return;
    const char *name = p->name[i] ? p->name[i] : ""; /* ours: t may go at the commit */
    int rc = check_alter(t, set, del, msg, sizeof(msg));
    if (rc != 0) {
        set_result(p, i, rc, "%s", msg);
        return;
    }
    if (validate_only)
        return;
    uint32_t ns = set ? set->via.map.size : 0, nd = del ? del->via.array.size : 0;
    stream__meta_kv *kv = calloc(ns + nd + 1, sizeof(*kv));
    if (kv == NULL) {
        set_result(p, i, STREAM_ENOMEM, "out of memory");
        return;
    }
    for (uint32_t j = 0; j < ns; j++) {
        const msgpack_object_kv *o = &set->via.map.ptr[j];
        kv[j] = (stream__meta_kv){o->key.via.str.ptr, o->key.via.str.size, o->val.via.str.ptr,
                                  o->val.via.str.size};
    }
    for (uint32_t j = 0; j < nd; j++) {
        const msgpack_object *o = &del->via.array.ptr[j];
        kv[ns + j] = (stream__meta_kv){o->via.str.ptr, o->via.str.size, "", 0};
    }
    stream_buf cmd;
    stream_buf_init(&cmd);
    rc = stream__meta_encode_alter_configs(&cmd, (stream__meta_req){ctl->node_id, ctl_next_seq(ctl)},
                                           t->name, t->id, kv, ns, kv + ns, nd);
    if (rc == 0)
        rc = stream__quorum_propose(ctl->q, cmd.data, cmd.len, on_entry_done, &p->ent[i]);
    stream_buf_release(&cmd);
    free(kv);
    if (rc != 0) {
        set_result(p, i, rc == STREAM_EINVAL ? STREAM_EBADCONFIG : rc,
                   "topic '%s': cannot propose the change: %s", name, stream_strerror(rc));
        return;
    }
    stream__host_log(ctl->b, STREAM_BROKER_INFO, "cluster: altering configs of topic %s", name);
    p->waiting++;
}

static void op_alter_configs(void *svc, stream__req *r, uint64_t id, const msgpack_object *m)
{
    controller *ctl = svc;
    char msg[512];
    const msgpack_object *topics, *set, *del;
    const char *np;
    size_t len;
    bool validate_only;
    int rc = stream_field_array(m, "topics", &topics, msg, sizeof(msg));
    if (rc == 0)
        rc = stream_field_bool_opt(m, "validate_only", false, &validate_only, msg, sizeof(msg));
    for (uint32_t i = 0; rc == 0 && i < topics->via.array.size; i++)
        rc = alter_entry(topics, i, &np, &len, &set, &del, msg, sizeof(msg));
    if (rc != 0) {
        stream__host_reply_error(r, id, rc, msg);
        return;
    }
    run_entries(ctl, r, id, STREAM_OP_ALTER_CONFIGS, m, topics, validate_only, alter_one);
}

/* ---- alter_isr ---- */

/* Checks an ISR change asked by `node` (at broker epoch `epoch`) for
 * partition `partition` of the topic called name (len bytes); *out gets
 * the topic. 0 or an error with msg. */
static int check_alter_isr(controller *ctl, int32_t node, int64_t epoch, const char *name,
                           size_t len, int32_t partition, const int32_t *isr, uint32_t n_isr,
                           int32_t pe, const stream__meta_topic **out, char *msg, size_t msg_len)
{
    if (!ctl_is_controller(ctl)) {
        snprintf(msg, msg_len, "not the controller; the controller is node %d",
                 (int)ctl_leader(ctl));
        return STREAM_ENOTLEADER;
    }
    const stream__meta_broker *mb = stream__meta_broker_find(ctl->md, node);
    if (mb == NULL) {
        snprintf(msg, msg_len, "broker %d is not registered", (int)node);
        return STREAM_ENOBROKER;
    }
    if (mb->epoch != epoch || mb->fenced) {
        snprintf(msg, msg_len, "broker %d: epoch %lld is %s", (int)node, (long long)epoch,
                 mb->fenced ? "fenced" : "stale");
        return STREAM_ESTALEEPOCH;
    }
    const stream__meta_topic *t = stream__meta_topic_find(ctl->md, name, len);
    if (t == NULL) {
        snprintf(msg, msg_len, "unknown topic '%.*s'", (int)(len > 249 ? 249 : len), name);
        return STREAM_ENOTOPIC;
    }
    if (partition < 0 || partition >= t->partition_count) {
        snprintf(msg, msg_len, "topic '%s' has no partition %d", t->name, (int)partition);
        return STREAM_ENOPART;
    }
    const stream__meta_partition *mp = &t->partitions[partition];
    if (pe != mp->partition_epoch) {
        snprintf(msg, msg_len, "%s-%d: partition_epoch %d is stale (current %d)", t->name,
                 (int)partition, (int)pe, (int)mp->partition_epoch);
        return STREAM_ESTALEEPOCH;
    }
    if (mp->leader != node) {
        snprintf(msg, msg_len, "%s-%d: broker %d is not its leader (the leader is %d)", t->name,
                 (int)partition, (int)node, (int)mp->leader);
        return STREAM_ENOTLEADER;
    }
    if (n_isr < 1 || n_isr > mp->n_replicas) {
        snprintf(msg, msg_len, "%s-%d: an isr of %u members", t->name, (int)partition,
                 (unsigned)n_isr);
        return STREAM_EINVAL;
    }
    bool has_leader = false;
    for (uint32_t i = 0; i < n_isr; i++) {
        has_leader = has_leader || isr[i] == node;
        bool replica = false, in_isr = false;
        for (uint32_t j = 0; j < mp->n_replicas; j++)
            replica = replica || mp->replicas[j] == isr[i];
        for (uint32_t j = 0; j < mp->n_isr; j++)
            in_isr = in_isr || mp->isr[j] == isr[i];
        for (uint32_t j = 0; j < i; j++) {
            if (isr[j] == isr[i]) {
                snprintf(msg, msg_len, "%s-%d: broker %d is twice in the isr", t->name,
                         (int)partition, (int)isr[i]);
                return STREAM_EINVAL;
            }
        }
        if (!replica) {
            snprintf(msg, msg_len, "%s-%d: broker %d is not a replica", t->name, (int)partition,
                     (int)isr[i]);
            return STREAM_EINVAL;
        }
        if (!in_isr && !stream__elect_alive(ctl->md, isr[i])) {
            snprintf(msg, msg_len, "%s-%d: broker %d is fenced and cannot join the isr", t->name,
                     (int)partition, (int)isr[i]);
            return STREAM_EINVAL;
        }
    }
    if (!has_leader) {
        snprintf(msg, msg_len, "%s-%d: the leader %d must stay in the isr", t->name, (int)partition,
                 (int)node);
        return STREAM_EINVAL;
    }
    *out = t;
    return 0;
}

/* One ISR change waiting in ctl->isr_q, with whom to tell its outcome. */
typedef struct ctl_isr_change {
    char topic[STREAM_TOPIC_NAME_MAX + 1];
    uint8_t topic_id[STREAM__META_TOPIC_ID_BYTES]; /* the guard: a topic made again is another */
    int32_t partition, leader, partition_epoch;
    int32_t isr[STREAM__META_MAX_REPLICAS];
    uint32_t n_isr;
    stream__quorum_done_cb cb; /* the asker's: the command's outcome */
    void *arg;
} ctl_isr_change;

/* The changes of one proposed alter_partitions, until it is decided. */
typedef struct isr_batch {
    controller *ctl;
    uint32_t n;
    ctl_isr_change c[];
} isr_batch;

/* What alter_isr answers for change c of a command just applied:
 * alter_partitions applies each change on its own and skips a stale one
 * (the partition changed between the check and the commit) without a
 * verdict of its own, so the metadata says which: applied, it has c's
 * leader and ISR at a newer partition epoch. */
static int isr_outcome(controller *ctl, const ctl_isr_change *c)
{
    const stream__meta_topic *t = stream__meta_topic_find_id(ctl->md, c->topic_id);
    if (t == NULL || c->partition >= t->partition_count)
        return STREAM_ENOTOPIC;
    const stream__meta_partition *mp = &t->partitions[c->partition];
    if (mp->partition_epoch > c->partition_epoch && mp->leader == c->leader &&
        mp->n_isr == c->n_isr && memcmp(mp->isr, c->isr, c->n_isr * sizeof(*c->isr)) == 0)
        return 0;
    return STREAM_ESTALEEPOCH;
}

static void on_isr_batch_done(void *arg, int status, int result)
{
    isr_batch *b = arg;
    for (uint32_t i = 0; i < b->n; i++) {
        int r = result;
        if (status == 0 && result == 0 && !b->ctl->stopped)
            r = isr_outcome(b->ctl, &b->c[i]);
        b->c[i].cb(b->c[i].arg, status, r);
    }
    free(b);
}

void ctl_isr_flush(controller *ctl)
{
    uint32_t n = ctl->isr_n;
    if (n == 0)
        return;
    ctl->isr_n = 0;
    isr_batch *b = malloc(sizeof(*b) + n * sizeof(b->c[0]));
    stream__meta_alter *alters = calloc(n, sizeof(*alters));
    int rc = b == NULL || alters == NULL ? STREAM_ENOMEM : 0;
    if (rc == 0) {
        b->ctl = ctl;
        b->n = n;
        memcpy(b->c, ctl->isr_q, n * sizeof(b->c[0]));
        for (uint32_t i = 0; i < n; i++) {
            const ctl_isr_change *c = &b->c[i];
            alters[i] = (stream__meta_alter){.topic = c->topic,
                                             .topic_len = strlen(c->topic),
                                             .has_topic_id = true,
                                             .partition = c->partition,
                                             .leader = c->leader,
                                             .isr = {c->isr, c->n_isr},
                                             .partition_epoch = c->partition_epoch};
            memcpy(alters[i].topic_id, c->topic_id, STREAM__META_TOPIC_ID_BYTES);
        }
        stream_buf cmd;
        stream_buf_init(&cmd);
        stream__meta_req req = {ctl->node_id, ctl_next_seq(ctl)};
        rc = ctl->q == NULL ? STREAM_ENOTLEADER
                            : stream__meta_encode_alter_partitions(&cmd, req, alters, n);
        if (rc == 0)
            rc = stream__quorum_propose(ctl->q, cmd.data, cmd.len, on_isr_batch_done, b);
        stream_buf_release(&cmd);
    }
    free(alters);
    if (rc == 0) {
        stream__host_log(ctl->b, STREAM_BROKER_DEBUG,
                         "cluster: %u isr change(s) proposed in one alter_partitions", (unsigned)n);
        return;
    }
    if (b != NULL) {
        b->n = 0; /* the askers are told from the queue below */
        free(b);
    }
    for (uint32_t i = 0; i < n; i++)
        ctl->isr_q[i].cb(ctl->isr_q[i].arg, rc, 0);
}

/* Queues an ISR change for the next flush (this turn of the loop; a full
 * batch goes first). 0, or STREAM_ENOMEM; cb is called later, never from
 * here. */
static int propose_isr(controller *ctl, const stream__meta_topic *t, int32_t partition,
                       const int32_t *isr, uint32_t n_isr, int32_t pe, stream__quorum_done_cb cb,
                       void *arg)
{
    if (ctl->isr_q == NULL &&
        (ctl->isr_q = calloc(STREAM__META_ALTER_BATCH, sizeof(*ctl->isr_q))) == NULL)
        return STREAM_ENOMEM;
    if (ctl->isr_n == STREAM__META_ALTER_BATCH)
        ctl_isr_flush(ctl);
    ctl_isr_change *c = &ctl->isr_q[ctl->isr_n++];
    snprintf(c->topic, sizeof(c->topic), "%s", t->name);
    memcpy(c->topic_id, t->id, STREAM__META_TOPIC_ID_BYTES);
    c->partition = partition;
    c->leader = t->partitions[partition].leader;
    c->partition_epoch = pe;
    memcpy(c->isr, isr, n_isr * sizeof(*isr));
    c->n_isr = n_isr;
    c->cb = cb;
    c->arg = arg;
    ctl_soon(ctl);
    return 0;
}

void ctl_op_alter_isr(void *svc, stream__req *r, uint64_t id, const msgpack_object *m)
{
    controller *ctl = svc;
    char msg[512];
    if (!ctl_running(ctl)) {
        stream__host_reply_error(r, id, STREAM_EUNSUPPORTED, "this broker is not in a cluster");
        return;
    }
    int64_t node, epoch, partition, pe;
    const char *name;
    size_t len;
    const msgpack_object *arr;
    int rc = stream_field_int(m, "node_id", 1, INT32_MAX, &node, msg, sizeof(msg));
    if (rc == 0)
        rc = stream_field_int(m, "broker_epoch", 0, INT64_MAX, &epoch, msg, sizeof(msg));
    if (rc == 0)
        rc = stream_field_str(m, "topic", &name, &len, msg, sizeof(msg));
    if (rc == 0)
        rc = stream_field_int(m, "partition", 0, INT32_MAX, &partition, msg, sizeof(msg));
    if (rc == 0)
        rc = stream_field_int(m, "partition_epoch", 0, INT32_MAX, &pe, msg, sizeof(msg));
    if (rc == 0)
        rc = stream_field_array(m, "isr", &arr, msg, sizeof(msg));
    int32_t isr[STREAM__META_MAX_REPLICAS];
    if (rc == 0 && (arr->via.array.size < 1 || arr->via.array.size > STREAM__META_MAX_REPLICAS)) {
        snprintf(msg, sizeof(msg), "isr must hold 1 to %d broker ids", STREAM__META_MAX_REPLICAS);
        rc = STREAM_EINVAL;
    }
    for (uint32_t i = 0; rc == 0 && i < arr->via.array.size; i++) {
        const msgpack_object *o = &arr->via.array.ptr[i];
        if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 < 1 ||
            o->via.u64 > INT32_MAX) {
            snprintf(msg, sizeof(msg), "isr[%u] must be a broker id (1 to %d)", i, INT32_MAX);
            rc = STREAM_EBADREQ;
            break;
        }
        isr[i] = (int32_t)o->via.u64;
    }
    const stream__meta_topic *t = NULL;
    if (rc == 0)
        rc = check_alter_isr(ctl, (int32_t)node, epoch, name, len, (int32_t)partition, isr,
                             arr->via.array.size, (int32_t)pe, &t, msg, sizeof(msg));
    if (rc != 0) {
        stream__host_reply_error(r, id, rc, msg);
        return;
    }
    ctl_pending *p = pending_new(ctl, r, id, STREAM_OP_ALTER_ISR, 1);
    if (p == NULL) {
        stream__host_reply_error(r, id, STREAM_ENOMEM, "out of memory");
        return;
    }
    p->name[0] = strdup(t->name);
    rc = propose_isr(ctl, t, (int32_t)partition, isr, arr->via.array.size, (int32_t)pe,
                     on_entry_done, &p->ent[0]);
    if (rc != 0) {
        set_result(p, 0, rc, "cannot propose: %s", stream_strerror(rc));
        finish(p);
        return;
    }
    p->waiting = 1;
}

/* An alter_isr this broker's replica manager asked for: what to tell it
 * when the controller turns it down. */
typedef struct isr_ask {
    controller *ctl;
    int32_t partition, partition_epoch;
    char topic[STREAM_TOPIC_NAME_MAX + 1];
} isr_ask;

static isr_ask *isr_ask_new(controller *ctl, const char *topic, int32_t partition, int32_t pe)
{
    isr_ask *a = malloc(sizeof(*a));
    if (a == NULL)
        return NULL;
    *a = (isr_ask){.ctl = ctl, .partition = partition, .partition_epoch = pe};
    snprintf(a->topic, sizeof(a->topic), "%s", topic);
    return a;
}

/* A refusal for certain (the change was checked and not applied), as
 * opposed to an answer lost with the link or the leadership. */
static bool isr_refusal(int err)
{
    return err == STREAM_EINVAL || err == STREAM_ESTALEEPOCH || err == STREAM_ENOTOPIC ||
           err == STREAM_ENOPART || err == STREAM_ENOBROKER;
}

static void on_local_done(void *arg, int status, int result)
{
    isr_ask *a = arg;
    controller *ctl = a->ctl;
    if (!ctl->stopped && status == 0 && result != 0) {
        stream__host_log(ctl->b, STREAM_BROKER_DEBUG, "cluster: alter_isr refused: %s",
                         stream_strerror(result));
        if (isr_refusal(result))
            stream__replica_isr_refused(ctl->rm, a->topic, a->partition, a->partition_epoch);
    }
    free(a);
}

static void on_remote_done(controller *ctl, void *arg, int err, const char *msg, size_t msg_len,
                           const msgpack_object *resp)
{
    (void)resp;
    isr_ask *a = arg;
    if (!ctl->stopped && err != 0) {
        stream__host_log(ctl->b, STREAM_BROKER_DEBUG, "cluster: alter_isr refused: %.*s",
                         (int)msg_len, msg ? msg : stream_strerror(err));
        if (isr_refusal(err))
            stream__replica_isr_refused(ctl->rm, a->topic, a->partition, a->partition_epoch);
    }
    free(a);
}

int ctl_alter_isr_local(void *arg, const char *topic, int32_t partition, const int32_t *isr,
                        uint32_t n_isr, int32_t partition_epoch)
{
    controller *ctl = arg;
    if (!ctl_running(ctl) || !ctl->registered)
        return STREAM_ECLOSED;
    char msg[512];
    isr_ask *a = isr_ask_new(ctl, topic, partition, partition_epoch);
    if (a == NULL)
        return STREAM_ENOMEM;
    if (ctl_is_controller(ctl)) {
        const stream__meta_topic *t;
        int rc = check_alter_isr(ctl, ctl->node_id, ctl->epoch, topic, strlen(topic), partition,
                                 isr, n_isr, partition_epoch, &t, msg, sizeof(msg));
        if (rc == 0)
            rc = propose_isr(ctl, t, partition, isr, n_isr, partition_epoch, on_local_done, a);
        else
            stream__host_log(ctl->b, STREAM_BROKER_DEBUG, "cluster: alter_isr: %s", msg);
        if (rc != 0)
            free(a);
        return rc;
    }
    msgpack_packer *pk =
        ctl_link_begin(ctl, STREAM_OP_ALTER_ISR, 6, FORWARD_TIMEOUT_MS, on_remote_done, a);
    if (pk == NULL) {
        free(a);
        return STREAM_ENOTLEADER;
    }
    stream_pack_kv_int(pk, "node_id", ctl->node_id);
    stream_pack_kv_int(pk, "broker_epoch", ctl->epoch);
    stream_pack_kv_cstr(pk, "topic", topic);
    stream_pack_kv_int(pk, "partition", partition);
    pack_ids(pk, "isr", isr, n_isr);
    stream_pack_kv_int(pk, "partition_epoch", partition_epoch);
    return ctl_link_end(ctl);
}

/* ---- auto-creation ---- */

static void on_auto_created(void *arg, int status, int result)
{
    (void)arg, (void)status, (void)result;
}

static void on_auto_answer(controller *ctl, void *arg, int err, const char *msg, size_t msg_len,
                           const msgpack_object *resp)
{
    (void)ctl, (void)arg, (void)err, (void)msg, (void)msg_len, (void)resp;
}

void stream__controller_auto_create(void *arg, const char *topic)
{
    controller *ctl = arg;
    if (ctl == NULL || !ctl_running(ctl))
        return;
    size_t len = strlen(topic);
    if (stream_topic_name_check(topic, len, NULL, 0) != 0 ||
        stream__meta_topic_find(ctl->md, topic, len) != NULL)
        return;
    if (!stream_config_bool(stream__host_config(ctl->b), STREAM_CONFIG_AUTO_CREATE_TOPICS_ENABLE) &&
        !stream_topic_is_internal(topic, len))
        return;
    int64_t parts =
        stream_topic_is_internal(topic, len) && strcmp(topic, "__consumer_offsets") == 0
            ? stream_config_int(stream__host_config(ctl->b),
                                STREAM_CONFIG_OFFSETS_TOPIC_NUM_PARTITIONS)
            : stream_config_int(stream__host_config(ctl->b), STREAM_CONFIG_NUM_PARTITIONS);
    if (ctl_is_controller(ctl)) {
        int32_t live[256];
        uint32_t nlive = live_brokers(ctl, live, 256);
        char msg[256];
        int32_t rf = choose_rf(ctl, -1, nlive, msg, sizeof(msg));
        if (rf == 0 && nlive > 0)
            rf = (int32_t)nlive; /* fewer live brokers than the default: as many as there are */
        if (rf == 0)
            return;
        if (propose_create(ctl, topic, (int32_t)parts, rf, live, nlive, NULL, on_auto_created, NULL,
                           msg, sizeof(msg)) == 0)
            stream__host_log(ctl->b, STREAM_BROKER_INFO,
                             "cluster: auto-creating topic %s: %lld partitions, replication "
                             "factor %d",
                             topic, (long long)parts, (int)rf);
        return;
    }
    msgpack_packer *pk =
        ctl_link_begin(ctl, STREAM_OP_CREATE_TOPICS, 1, FORWARD_TIMEOUT_MS, on_auto_answer, NULL);
    if (pk == NULL)
        return;
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 3);
    stream_pack_kv_cstr(pk, "name", topic);
    stream_pack_kv_int(pk, "partitions", parts);
    stream_pack_kv_bool(pk, "internal", stream_topic_is_internal(topic, len));
    ctl_link_end(ctl);
}

/* ---- create_partitions ---- */

/* Proposes partitions [before, count) of t, placed as a new topic's are,
 * with t's replication factor (its partition 0's replica count). 0 or an
 * error with msg. */
static int propose_grow(controller *ctl, const stream__meta_topic *t, int32_t count, int32_t rf,
                        const int32_t *live, uint32_t nlive, ctl_entry *e, char *msg, size_t len)
{
    int32_t added = count - t->partition_count;
    int32_t *replicas = malloc((size_t)added * (size_t)rf * sizeof(int32_t));
    if (replicas == NULL)
        return STREAM_ENOMEM;
    stream__elect_place(live, nlive, random_u32() % nlive, added, rf, replicas);
    stream_buf cmd;
    stream_buf_init(&cmd);
    int rc = stream__meta_encode_create_partitions(
        &cmd, (stream__meta_req){ctl->node_id, ctl_next_seq(ctl)}, t->name, t->id,
        t->partition_count, added, rf, replicas);
    if (rc == 0)
        rc = stream__quorum_propose(ctl->q, cmd.data, cmd.len, on_entry_done, e);
    if (rc != 0)
        snprintf(msg, len, "cannot propose partitions for topic '%s': %s", t->name,
                 stream_strerror(rc));
    stream_buf_release(&cmd);
    free(replicas);
    return rc;
}

/* Checks entry i of a create_partitions and proposes it unless
 * validate_only. */
static void grow_one(controller *ctl, ctl_pending *p, const msgpack_object *topics, uint32_t i,
                     bool validate_only, const int32_t *live, uint32_t nlive)
{
    char msg[512];
    const char *np;
    size_t len;
    int64_t count;
    stream_grow_entry(topics, i, &np, &len, &count, NULL, 0);
    const stream__meta_topic *t = entry_topic(ctl, p, i, np, len);
    if (t == NULL)
        return;
    if (stream_topic_is_internal(np, len)) {
        set_result(p, i, STREAM_EBADNAME,
                   "topic '%s' is internal: its partition count is the broker's", t->name);
        return;
    }
    if (named_twice(topics, i, false)) {
        set_result(p, i, STREAM_EINVAL, "topic '%s' is named twice in the request", t->name);
        return;
    }
    int rc = stream_grow_count_check(t->name, t->partition_count, count, msg, sizeof(msg));
    if (rc != 0) {
        set_result(p, i, rc, "%s", msg);
        return;
    }
    int32_t rf = (int32_t)t->partitions[0].n_replicas;
    if (rf > (int32_t)nlive) {
        set_result(p, i, STREAM_EINVAL,
                   "topic '%s': its replication factor %d is larger than the %u live broker%s",
                   t->name, (int)rf, (unsigned)nlive, nlive == 1 ? "" : "s");
        return;
    }
    if (validate_only)
        return;
    rc = propose_grow(ctl, t, (int32_t)count, rf, live, nlive, &p->ent[i], msg, sizeof(msg));
    if (rc != 0) {
        set_result(p, i, rc, "%s", msg);
        return;
    }
    stream__host_log(ctl->b, STREAM_BROKER_INFO,
                     "cluster: topic %s: partitions %d -> %lld, replication factor %d", t->name,
                     (int)t->partition_count, (long long)count, (int)rf);
    p->waiting++;
}

static void op_create_partitions(void *svc, stream__req *r, uint64_t id, const msgpack_object *m)
{
    controller *ctl = svc;
    char msg[512];
    const msgpack_object *topics;
    bool validate_only;
    int rc = stream_grow_request(m, &topics, &validate_only, msg, sizeof(msg));
    if (rc != 0) {
        stream__host_reply_error(r, id, rc, msg);
        return;
    }
    run_entries(ctl, r, id, STREAM_OP_CREATE_PARTITIONS, m, topics, validate_only, grow_one);
}

/* ---- taking the core's ops ---- */

void ctl_admin_start(controller *ctl)
{
    stream__host_take_op(ctl->b, STREAM_OP_METADATA, op_metadata, ctl);
    stream__host_take_op(ctl->b, STREAM_OP_DESCRIBE_CONFIGS, op_describe_configs, ctl);
    stream__host_take_op(ctl->b, STREAM_OP_CREATE_TOPICS, op_create_topics, ctl);
    stream__host_take_op(ctl->b, STREAM_OP_DELETE_TOPICS, op_delete_topics, ctl);
    stream__host_take_op(ctl->b, STREAM_OP_CREATE_PARTITIONS, op_create_partitions, ctl);
    stream__host_take_op(ctl->b, STREAM_OP_ALTER_CONFIGS, op_alter_configs, ctl);
}
