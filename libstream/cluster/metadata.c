/*
 * metadata.c - the cluster metadata state machine: state, apply, events (see
 * metadata.h; the bytes of commands and snapshots are in metadata_codec.c).
 *
 * The idea: apply is a pure function of (state, command, index), run on every
 * voter. Two rules keep it so:
 *
 *   - Atomic under ENOMEM. Each operation allocates everything it needs
 *     first (strings, arrays, room in the sorted tables), then commits with
 *     plain stores that cannot fail. Running out of memory therefore changes
 *     nothing, and the quorum applies the same command again later; a voter
 *     never skips a command its peers applied.
 *   - No outside input. No clock, no randomness, no local settings: broker
 *     epochs are log indexes, topic ids come in the command, and config
 *     values are stored as given (the controller validates before proposing).
 *
 * Tables are sorted arrays (brokers by id, topics by name, requesters by
 * node): binary search for look-ups, memmove for the rare insert, and a
 * canonical order for snapshots for free. Topics are pointers, so a topic
 * does not move when others are inserted.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_internal.h"
#include "metadata_internal.h"
#include "stream/partition.h"
#include "stream/proto.h"

/* ---- lifecycle and accessors ----------------------------------------------- */

stream__meta *stream__meta_new(const char *cluster_id)
{
    if (cluster_id == NULL ||
        !stream__cluster_id_ok(cluster_id, strlen(cluster_id), STREAM__QUORUM_CLUSTER_ID_MAX))
        return NULL;
    stream__meta *md = calloc(1, sizeof *md);
    if (md == NULL)
        return NULL;
    memcpy(md->cluster_id, cluster_id, strlen(cluster_id) + 1);
    return md;
}

void stream__md_topic_free(stream__meta_topic *t)
{
    if (t == NULL)
        return;
    for (int32_t i = 0; t->partitions != NULL && i < t->partition_count; i++) {
        free(t->partitions[i].replicas);
        free(t->partitions[i].isr);
    }
    free(t->partitions);
    for (uint32_t i = 0; i < t->n_configs; i++) {
        free(t->configs[i].key);
        free(t->configs[i].value);
    }
    free(t->configs);
    free(t->name);
    free(t);
}

void stream__md_state_release(stream__md_state *st)
{
    for (size_t i = 0; i < st->n_brokers; i++) {
        free(st->brokers[i].host);
        free(st->brokers[i].kafka_host);
    }
    free(st->brokers);
    for (size_t i = 0; i < st->n_topics; i++)
        stream__md_topic_free(st->topics[i]);
    free(st->topics);
    free(st->requesters);
    memset(st, 0, sizeof *st);
}

void stream__meta_free(stream__meta *md)
{
    if (md == NULL)
        return;
    stream__md_state_release(&md->st);
    free(md);
}

const char *stream__meta_cluster_id(const stream__meta *md)
{
    return md->cluster_id;
}

uint64_t stream__meta_applied_index(const stream__meta *md)
{
    return md->st.applied_index;
}

void stream__meta_set_event_cb(stream__meta *md, stream__meta_event_cb cb, void *arg)
{
    md->event_cb = cb;
    md->event_arg = arg;
}

/* The first of the n elements at base (size bytes each, sorted by the int32
 * at key_offset) whose key is >= key: the one look-up of brokers (by id) and
 * requesters (by node). */
static size_t lower_bound_id(const void *base, size_t n, size_t size, size_t key_offset,
                             int32_t key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int32_t v;
        memcpy(&v, (const char *)base + mid * size + key_offset, sizeof v);
        if (v < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

size_t stream__md_broker_pos(const stream__md_state *st, int32_t id, bool *found)
{
    size_t i = lower_bound_id(st->brokers, st->n_brokers, sizeof *st->brokers,
                              offsetof(stream__meta_broker, id), id);
    *found = i < st->n_brokers && st->brokers[i].id == id;
    return i;
}

size_t stream__meta_broker_count(const stream__meta *md)
{
    return md->st.n_brokers;
}

const stream__meta_broker *stream__meta_broker_at(const stream__meta *md, size_t i)
{
    return i < md->st.n_brokers ? &md->st.brokers[i] : NULL;
}

const stream__meta_broker *stream__meta_broker_find(const stream__meta *md, int32_t id)
{
    bool found;
    size_t i = stream__md_broker_pos(&md->st, id, &found);
    return found ? &md->st.brokers[i] : NULL;
}

int stream__md_name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

int stream__md_config_cmp(const void *a, const void *b)
{
    const stream__meta_config *x = a, *y = b;
    return stream__md_name_cmp(x->key, strlen(x->key), y->key, strlen(y->key));
}

bool stream__md_ids_distinct(const int32_t *ids, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = 0; j < i; j++)
            if (ids[i] == ids[j])
                return false;
    return true;
}

/* Index of the topic called name, or its insertion point (*found false). */
static size_t topic_pos(const stream__md_state *st, const char *name, size_t len, bool *found)
{
    size_t lo = 0, hi = st->n_topics;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *n = st->topics[mid]->name;
        if (stream__md_name_cmp(n, strlen(n), name, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < st->n_topics && stream__md_name_cmp(st->topics[lo]->name,
                                                      strlen(st->topics[lo]->name), name, len) == 0;
    return lo;
}

size_t stream__meta_topic_count(const stream__meta *md)
{
    return md->st.n_topics;
}

const stream__meta_topic *stream__meta_topic_at(const stream__meta *md, size_t i)
{
    return i < md->st.n_topics ? md->st.topics[i] : NULL;
}

const stream__meta_topic *stream__meta_topic_find(const stream__meta *md, const char *name,
                                                  size_t len)
{
    bool found;
    size_t i = topic_pos(&md->st, name, len, &found);
    return found ? md->st.topics[i] : NULL;
}

/* Linear: topic ids are looked up only when a topic is created. */
const stream__meta_topic *stream__meta_topic_find_id(const stream__meta *md, const uint8_t id[16])
{
    for (size_t i = 0; i < md->st.n_topics; i++)
        if (memcmp(md->st.topics[i]->id, id, STREAM__META_TOPIC_ID_BYTES) == 0)
            return md->st.topics[i];
    return NULL;
}

int32_t stream__meta_coordinator(const stream__meta *md, const char *group, size_t len)
{
    const stream__meta_topic *t =
        stream__meta_topic_find(md, STREAM_OFFSETS_TOPIC, strlen(STREAM_OFFSETS_TOPIC));
    if (t == NULL)
        return -1;
    int32_t p = stream_partition_for_key(group, len, t->partition_count);
    return p >= 0 && p < t->partition_count ? t->partitions[p].leader : -1;
}

/* ---- growing the tables ------------------------------------------------------ */

/* Makes room for one more element (no state change: only capacity). */
static int reserve(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, ncap * size);
    if (p == NULL)
        return STREAM_ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

static char *dup_str(const char *p, size_t len)
{
    char *s = malloc(len + 1);
    if (s != NULL) {
        if (len > 0)
            memcpy(s, p, len);
        s[len] = '\0';
    }
    return s;
}

/* ---- the operations ------------------------------------------------------------ */

/* What an operation did, for apply to report once the result is recorded. */
typedef struct outcome {
    bool changed;              /* fire ev */
    stream__meta_event ev;     /* the event to fire */
    stream__meta_topic *freed; /* a deleted topic, freed after the event */
    stream__meta_event *more;  /* alter_partitions: one event per change applied (owned) */
    uint32_t n_more;
} outcome;

static void set_event(outcome *o, stream__meta_event_type type, uint64_t index)
{
    memset(&o->ev, 0, sizeof o->ev);
    o->changed = true;
    o->ev.type = type;
    o->ev.index = index;
    o->ev.partition = -1;
    o->ev.previous_leader = -1;
}

static int op_register_broker(stream__md_state *st, const stream__meta_cmd *c, uint64_t index,
                              outcome *o)
{
    bool found;
    size_t i = stream__md_broker_pos(st, c->broker_id, &found);
    if (!found &&
        reserve((void **)&st->brokers, &st->cap_brokers, st->n_brokers, sizeof *st->brokers) < 0)
        return STREAM_ENOMEM;
    char *host = dup_str(c->host, c->host_len);
    char *khost = c->kafka_host != NULL ? dup_str(c->kafka_host, c->kafka_host_len) : NULL;
    if (host == NULL || (c->kafka_host != NULL && khost == NULL)) {
        free(host);
        free(khost);
        return STREAM_ENOMEM;
    }
    stream__meta_broker *b = &st->brokers[i];
    if (found) {
        free(b->host);
        free(b->kafka_host);
    } else {
        memmove(b + 1, b, (st->n_brokers - i) * sizeof *b);
        st->n_brokers++;
        b->id = c->broker_id;
    }
    b->host = host;
    b->port = c->port;
    b->kafka_host = khost;
    b->kafka_port = khost != NULL ? c->kafka_port : 0;
    b->epoch = (int64_t)index;
    b->fenced = true; /* until the controller sees it caught up */
    set_event(o, STREAM__META_BROKER_REGISTERED, index);
    o->ev.broker = b;
    return 0;
}

static int op_fence_broker(stream__md_state *st, const stream__meta_cmd *c, uint64_t index,
                           bool fence, outcome *o)
{
    bool found;
    size_t i = stream__md_broker_pos(st, c->broker_id, &found);
    if (!found)
        return STREAM__META_ENOBROKER;
    stream__meta_broker *b = &st->brokers[i];
    if (b->epoch != c->broker_epoch)
        return STREAM__META_ESTALE;
    if (b->fenced == fence)
        return 0;
    b->fenced = fence;
    set_event(o, fence ? STREAM__META_BROKER_FENCED : STREAM__META_BROKER_UNFENCED, index);
    o->ev.broker = b;
    return 0;
}

/* A topic named by a command, with its id guard. NULL when absent. */
static stream__meta_topic *cmd_topic(stream__md_state *st, const stream__meta_cmd *c, size_t *pos)
{
    bool found;
    size_t i = topic_pos(st, c->topic, c->topic_len, &found);
    if (!found)
        return NULL;
    stream__meta_topic *t = st->topics[i];
    if (c->has_topic_id && memcmp(t->id, c->topic_id, STREAM__META_TOPIC_ID_BYTES) != 0)
        return NULL; /* same name, another incarnation of the topic */
    if (pos != NULL)
        *pos = i;
    return t;
}

/* Copies kvs into a sorted config array of n entries. */
static int build_configs(const stream__meta_kv *kvs, uint32_t n, stream__meta_config **out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    stream__meta_config *cfg = calloc(n, sizeof *cfg);
    if (cfg == NULL)
        return STREAM_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        cfg[i].key = dup_str(kvs[i].key, kvs[i].key_len);
        cfg[i].value = dup_str(kvs[i].value, kvs[i].value_len);
        if (cfg[i].key == NULL || cfg[i].value == NULL) {
            for (uint32_t k = 0; k <= i; k++) {
                free(cfg[k].key);
                free(cfg[k].value);
            }
            free(cfg);
            return STREAM_ENOMEM;
        }
    }
    qsort(cfg, n, sizeof *cfg, stream__md_config_cmp);
    *out = cfg;
    return 0;
}

static bool configs_ok(const stream__meta_kv *kvs, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (!stream__md_config_ok(kvs[i].key, kvs[i].key_len, kvs[i].value, kvs[i].value_len))
            return false;
    return true;
}

static int32_t *dup_ids(const int32_t *ids, uint32_t n)
{
    int32_t *v = malloc((n ? n : 1) * sizeof *v);
    if (v != NULL && n > 0)
        memcpy(v, ids, n * sizeof *v);
    return v;
}

/* True when every replica of the command's partitions is a registered
 * broker. */
static bool replicas_registered(const stream__md_state *st, const stream__meta_cmd *c)
{
    bool found;
    for (uint32_t p = 0; p < c->partition_count; p++) {
        for (uint32_t r = 0; r < c->partitions[p].count; r++) {
            stream__md_broker_pos(st, c->partitions[p].ids[r], &found);
            if (!found)
                return false;
        }
    }
    return true;
}

/* A new partition on replicas ids: leader the first unfenced replica (or
 * -1), isr every replica, epochs 0. 0 or STREAM_ENOMEM (part then holds
 * what to free). */
static int init_partition(const stream__md_state *st, stream__meta_partition *part,
                          const stream__meta_ids *ids)
{
    bool found;
    part->replicas = dup_ids(ids->ids, ids->count);
    part->isr = dup_ids(ids->ids, ids->count);
    if (part->replicas == NULL || part->isr == NULL)
        return STREAM_ENOMEM;
    part->n_replicas = part->n_isr = ids->count;
    part->leader = -1;
    for (uint32_t r = 0; r < ids->count && part->leader == -1; r++)
        if (!st->brokers[stream__md_broker_pos(st, ids->ids[r], &found)].fenced)
            part->leader = ids->ids[r];
    return 0;
}

static int op_create_topic(stream__md_state *st, const stream__meta_cmd *c, uint64_t index,
                           outcome *o)
{
    if (stream_topic_name_check(c->topic, c->topic_len, NULL, 0) < 0)
        return STREAM_EBADNAME;
    bool found;
    size_t pos = topic_pos(st, c->topic, c->topic_len, &found);
    if (found)
        return STREAM_ETOPICEXISTS;
    for (size_t i = 0; i < st->n_topics; i++)
        if (memcmp(st->topics[i]->id, c->topic_id, STREAM__META_TOPIC_ID_BYTES) == 0)
            return STREAM_EEXIST;
    if (!replicas_registered(st, c))
        return STREAM__META_ENOBROKER;
    if (!configs_ok(c->configs, c->config_count))
        return STREAM_EBADCONFIG;

    if (reserve((void **)&st->topics, &st->cap_topics, st->n_topics, sizeof *st->topics) < 0)
        return STREAM_ENOMEM;
    stream__meta_topic *t = calloc(1, sizeof *t);
    if (t == NULL)
        return STREAM_ENOMEM;
    t->name = dup_str(c->topic, c->topic_len);
    t->partitions = calloc(c->partition_count, sizeof *t->partitions);
    if (t->name == NULL || t->partitions == NULL)
        goto nomem;
    t->partition_count = (int32_t)c->partition_count;
    memcpy(t->id, c->topic_id, STREAM__META_TOPIC_ID_BYTES);
    for (uint32_t p = 0; p < c->partition_count; p++)
        if (init_partition(st, &t->partitions[p], &c->partitions[p]) < 0)
            goto nomem;
    if (build_configs(c->configs, c->config_count, &t->configs) < 0)
        goto nomem;
    t->n_configs = c->config_count;

    memmove(&st->topics[pos + 1], &st->topics[pos], (st->n_topics - pos) * sizeof *st->topics);
    st->topics[pos] = t;
    st->n_topics++;
    set_event(o, STREAM__META_TOPIC_CREATED, index);
    o->ev.topic = t;
    return 0;

nomem:
    stream__md_topic_free(t);
    return STREAM_ENOMEM;
}

static int op_create_partitions(stream__md_state *st, const stream__meta_cmd *c, uint64_t index,
                                outcome *o)
{
    stream__meta_topic *t = cmd_topic(st, c, NULL);
    if (t == NULL)
        return STREAM_ENOTOPIC;
    if (t->partition_count != c->partitions_before)
        return STREAM__META_ESTALE;
    if (!replicas_registered(st, c))
        return STREAM__META_ENOBROKER;
    int32_t before = t->partition_count, total = before + (int32_t)c->partition_count;
    stream__meta_partition *parts = calloc((size_t)total, sizeof *parts);
    if (parts == NULL)
        return STREAM_ENOMEM;
    for (int32_t p = before; p < total; p++) {
        if (init_partition(st, &parts[p], &c->partitions[p - before]) < 0) {
            for (int32_t q = before; q <= p; q++) {
                free(parts[q].replicas);
                free(parts[q].isr);
            }
            free(parts);
            return STREAM_ENOMEM;
        }
    }
    memcpy(parts, t->partitions, (size_t)before * sizeof *parts);
    free(t->partitions);
    t->partitions = parts;
    t->partition_count = total;
    set_event(o, STREAM__META_PARTITIONS_ADDED, index);
    o->ev.topic = t;
    o->ev.partition = before;
    return 0;
}

static int op_delete_topic(stream__md_state *st, const stream__meta_cmd *c, uint64_t index,
                           outcome *o)
{
    size_t pos;
    stream__meta_topic *t = cmd_topic(st, c, &pos);
    if (t == NULL)
        return STREAM_ENOTOPIC;
    memmove(&st->topics[pos], &st->topics[pos + 1], (st->n_topics - pos - 1) * sizeof *st->topics);
    st->n_topics--;
    set_event(o, STREAM__META_TOPIC_DELETED, index);
    o->ev.topic = t;
    o->freed = t;
    return 0;
}

bool stream__md_contains(const int32_t *ids, uint32_t n, int32_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static bool same_ids(const int32_t *a, uint32_t an, const int32_t *b, uint32_t bn)
{
    return an == bn && (an == 0 || memcmp(a, b, an * sizeof *a) == 0);
}

/* One partition's change (alter_partition, or one of alter_partitions'):
 * checked, then applied with *isr (a copy of a->isr, taken over on success:
 * *isr becomes NULL) and described in *ev. */
static int alter_one(stream__md_state *st, const stream__meta_alter *a, int32_t **isr,
                     uint64_t index, stream__meta_event *ev)
{
    bool found;
    size_t pos = topic_pos(st, a->topic, a->topic_len, &found);
    stream__meta_topic *t = found ? st->topics[pos] : NULL;
    if (t != NULL && a->has_topic_id &&
        memcmp(t->id, a->topic_id, STREAM__META_TOPIC_ID_BYTES) != 0)
        t = NULL; /* same name, another incarnation of the topic */
    if (t == NULL)
        return STREAM_ENOTOPIC;
    if (a->partition < 0 || a->partition >= t->partition_count)
        return STREAM_ENOPART;
    stream__meta_partition *p = &t->partitions[a->partition];
    /* Staleness first: a stale change was computed from another state, so
     * whatever else is wrong with it is beside the point. */
    if (a->partition_epoch != p->partition_epoch)
        return STREAM__META_ESTALE;
    for (uint32_t i = 0; i < a->isr.count; i++)
        if (!stream__md_contains(p->replicas, p->n_replicas, a->isr.ids[i]))
            return STREAM_EINVAL;
    if (a->leader != -1 && !stream__md_contains(a->isr.ids, a->isr.count, a->leader))
        return STREAM_EINVAL;
    bool leader_changed = a->leader != p->leader;
    if (p->partition_epoch == INT32_MAX || (leader_changed && p->leader_epoch == INT32_MAX))
        return STREAM_EINVAL; /* epochs exhausted: only a hostile snapshot gets here */

    memset(ev, 0, sizeof *ev);
    ev->type = STREAM__META_PARTITION_CHANGED;
    ev->index = index;
    ev->topic = t;
    ev->partition = a->partition;
    ev->previous_leader = p->leader;
    ev->leader_changed = leader_changed;
    ev->isr_changed = !same_ids(p->isr, p->n_isr, a->isr.ids, a->isr.count);
    free(p->isr);
    p->isr = *isr;
    *isr = NULL;
    p->n_isr = a->isr.count;
    if (leader_changed) {
        p->leader = a->leader;
        p->leader_epoch++;
    }
    p->partition_epoch++;
    return 0;
}

static int op_alter_partition(stream__md_state *st, const stream__meta_cmd *c, uint64_t index,
                              outcome *o)
{
    stream__meta_alter a = stream__md_cmd_alter(c);
    int32_t *isr = dup_ids(c->isr.ids, c->isr.count);
    if (isr == NULL)
        return STREAM_ENOMEM;
    int rc = alter_one(st, &a, &isr, index, &o->ev);
    free(isr); /* NULL when taken over */
    o->changed = rc == 0;
    return rc;
}

/* Every change on its own, in order; refused ones are skipped (see the
 * header). Memory is taken first, so running out changes nothing. */
static int op_alter_partitions(stream__md_state *st, const stream__meta_cmd *c, uint64_t index,
                               outcome *o)
{
    uint32_t n = c->alter_count;
    int32_t **isrs = calloc(n, sizeof *isrs);
    stream__meta_event *evs = calloc(n, sizeof *evs);
    bool ok = isrs != NULL && evs != NULL;
    for (uint32_t i = 0; ok && i < n; i++)
        ok = (isrs[i] = dup_ids(c->alters[i].isr.ids, c->alters[i].isr.count)) != NULL;
    uint32_t applied = 0;
    for (uint32_t i = 0; ok && i < n; i++)
        if (alter_one(st, &c->alters[i], &isrs[i], index, &evs[applied]) == 0)
            applied++;
    for (uint32_t i = 0; isrs != NULL && i < n; i++)
        free(isrs[i]);
    free(isrs);
    if (!ok || applied == 0) {
        free(evs);
        return ok ? 0 : STREAM_ENOMEM;
    }
    o->more = evs;
    o->n_more = applied;
    return 0;
}

/* Position of key in the kv list, or -1. */
static long kv_find(const stream__meta_kv *kvs, uint32_t n, const char *key, size_t len)
{
    for (uint32_t i = 0; i < n; i++)
        if (stream__md_name_cmp(kvs[i].key, kvs[i].key_len, key, len) == 0)
            return (long)i;
    return -1;
}

static int op_alter_configs(stream__md_state *st, const stream__meta_cmd *c, uint64_t index,
                            outcome *o)
{
    stream__meta_topic *t = cmd_topic(st, c, NULL);
    if (t == NULL)
        return STREAM_ENOTOPIC;
    if (!configs_ok(c->configs, c->config_count))
        return STREAM_EBADCONFIG;
    for (uint32_t i = 0; i < c->delete_count; i++) {
        const stream__meta_kv *d = &c->deletes[i];
        if (!stream__md_config_ok(d->key, d->key_len, "", 0) ||
            kv_find(c->configs, c->config_count, d->key, d->key_len) >= 0)
            return STREAM_EBADCONFIG;
    }
    /* The new list: old entries neither set nor deleted, then the set ones. */
    size_t n = c->config_count;
    for (uint32_t i = 0; i < t->n_configs; i++) {
        const char *k = t->configs[i].key;
        if (kv_find(c->configs, c->config_count, k, strlen(k)) < 0 &&
            kv_find(c->deletes, c->delete_count, k, strlen(k)) < 0)
            n++;
    }
    if (n > STREAM_STRMAP_MAX)
        return STREAM_EBADCONFIG;
    stream__meta_kv *kvs = calloc(n ? n : 1, sizeof *kvs);
    if (kvs == NULL)
        return STREAM_ENOMEM;
    size_t k = 0;
    for (uint32_t i = 0; i < t->n_configs; i++) {
        const stream__meta_config *e = &t->configs[i];
        if (kv_find(c->configs, c->config_count, e->key, strlen(e->key)) < 0 &&
            kv_find(c->deletes, c->delete_count, e->key, strlen(e->key)) < 0)
            kvs[k++] = (stream__meta_kv){e->key, strlen(e->key), e->value, strlen(e->value)};
    }
    memcpy(kvs + k, c->configs, c->config_count * sizeof *kvs);
    stream__meta_config *cfg;
    int rc = build_configs(kvs, (uint32_t)n, &cfg);
    free(kvs);
    if (rc < 0)
        return rc;

    bool changed = n != t->n_configs;
    for (size_t i = 0; !changed && i < n; i++)
        changed = strcmp(cfg[i].key, t->configs[i].key) != 0 ||
                  strcmp(cfg[i].value, t->configs[i].value) != 0;
    for (uint32_t i = 0; i < t->n_configs; i++) {
        free(t->configs[i].key);
        free(t->configs[i].value);
    }
    free(t->configs);
    t->configs = cfg;
    t->n_configs = (uint32_t)n;
    if (changed) {
        set_event(o, STREAM__META_TOPIC_CONFIGS_CHANGED, index);
        o->ev.topic = t;
    }
    return 0;
}

/* ---- request ids --------------------------------------------------------------- */

static size_t requester_pos(const stream__md_state *st, int32_t node, bool *found)
{
    size_t i = lower_bound_id(st->requesters, st->n_requesters, sizeof *st->requesters,
                              offsetof(stream__md_requester, node), node);
    *found = i < st->n_requesters && st->requesters[i].node == node;
    return i;
}

/* The recorded result of req, if any. */
static bool requested_before(const stream__md_state *st, stream__meta_req req, int *result)
{
    bool found;
    size_t i = requester_pos(st, req.node, &found);
    if (!found)
        return false;
    const stream__md_requester *r = &st->requesters[i];
    for (uint32_t k = 0; k < r->count; k++) {
        if (r->seq[k] == req.seq) {
            *result = r->result[k];
            return true;
        }
    }
    return false;
}

/* Room to record a command of a requester not seen yet (capacity only). */
static int reserve_requester(stream__md_state *st, int32_t node)
{
    bool found;
    requester_pos(st, node, &found);
    if (found || st->n_requesters >= STREAM__META_MAX_REQUESTERS)
        return 0; /* recorded in place, or by evicting one */
    return reserve((void **)&st->requesters, &st->cap_requesters, st->n_requesters,
                   sizeof *st->requesters);
}

/* Records (req, result); cannot fail after reserve_requester. A new requester
 * beyond the limit replaces the one whose latest command is oldest. */
static void record_request(stream__md_state *st, stream__meta_req req, int result, uint64_t index)
{
    bool found;
    size_t i = requester_pos(st, req.node, &found);
    if (!found) {
        if (st->n_requesters >= STREAM__META_MAX_REQUESTERS) {
            size_t oldest = 0;
            for (size_t k = 1; k < st->n_requesters; k++)
                if (st->requesters[k].last_index < st->requesters[oldest].last_index)
                    oldest = k;
            memmove(&st->requesters[oldest], &st->requesters[oldest + 1],
                    (st->n_requesters - oldest - 1) * sizeof *st->requesters);
            st->n_requesters--;
            i = requester_pos(st, req.node, &found);
        }
        memmove(&st->requesters[i + 1], &st->requesters[i],
                (st->n_requesters - i) * sizeof *st->requesters);
        st->n_requesters++;
        memset(&st->requesters[i], 0, sizeof st->requesters[i]);
        st->requesters[i].node = req.node;
    }
    stream__md_requester *r = &st->requesters[i];
    r->seq[r->next] = req.seq;
    r->result[r->next] = result;
    r->next = (r->next + 1) % STREAM__META_REQ_WINDOW;
    if (r->count < STREAM__META_REQ_WINDOW)
        r->count++;
    r->last_index = index;
}

/* ---- apply, snapshot, restore ---------------------------------------------------- */

static int run_op(stream__md_state *st, const stream__meta_cmd *c, uint64_t index, outcome *o)
{
    switch (c->op) {
    case STREAM__META_OP_REGISTER_BROKER:
        return op_register_broker(st, c, index, o);
    case STREAM__META_OP_FENCE_BROKER:
        return op_fence_broker(st, c, index, true, o);
    case STREAM__META_OP_UNFENCE_BROKER:
        return op_fence_broker(st, c, index, false, o);
    case STREAM__META_OP_CREATE_TOPIC:
        return op_create_topic(st, c, index, o);
    case STREAM__META_OP_DELETE_TOPIC:
        return op_delete_topic(st, c, index, o);
    case STREAM__META_OP_CREATE_PARTITIONS:
        return op_create_partitions(st, c, index, o);
    case STREAM__META_OP_ALTER_PARTITION:
        return op_alter_partition(st, c, index, o);
    case STREAM__META_OP_ALTER_PARTITIONS:
        return op_alter_partitions(st, c, index, o);
    case STREAM__META_OP_ALTER_CONFIGS:
        return op_alter_configs(st, c, index, o);
    default:
        return STREAM_EBADREQ; /* the decoder knows no other op */
    }
}

int stream__meta_apply(stream__meta *md, const uint8_t *cmd, size_t len, uint64_t index)
{
    stream__md_state *st = &md->st;
    stream__meta_cmd c;
    int rc = stream__meta_cmd_decode(cmd, len, &c, NULL, 0);
    if (rc == STREAM_ENOMEM)
        return rc;
    if (rc < 0) {
        st->applied_index = index;
        return STREAM_EBADREQ;
    }
    int result;
    if (requested_before(st, c.req, &result)) {
        st->applied_index = index;
        stream__meta_cmd_release(&c);
        return result;
    }
    outcome o = {.changed = false};
    rc = reserve_requester(st, c.req.node);
    if (rc == 0)
        rc = run_op(st, &c, index, &o);
    if (rc == STREAM_ENOMEM) {
        stream__meta_cmd_release(&c);
        return rc;
    }
    record_request(st, c.req, rc, index);
    st->applied_index = index;
    if (o.changed && md->event_cb != NULL)
        md->event_cb(md->event_arg, &o.ev);
    for (uint32_t i = 0; i < o.n_more && md->event_cb != NULL; i++)
        md->event_cb(md->event_arg, &o.more[i]);
    free(o.more);
    stream__md_topic_free(o.freed);
    stream__meta_cmd_release(&c);
    return rc;
}

int stream__meta_restore(stream__meta *md, const uint8_t *p, size_t len, char *errbuf,
                         size_t errbuf_len)
{
    stream__md_state st;
    memset(&st, 0, sizeof st);
    int rc = stream__md_snapshot_decode(p, len, md->cluster_id, &st, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    stream__md_state_release(&md->st);
    md->st = st;
    if (md->event_cb != NULL) {
        stream__meta_event ev = {.type = STREAM__META_RESTORED,
                                 .index = st.applied_index,
                                 .partition = -1,
                                 .previous_leader = -1};
        md->event_cb(md->event_arg, &ev);
    }
    return 0;
}

static int fsm_apply(void *arg, const uint8_t *cmd, size_t len, uint64_t index)
{
    return stream__meta_apply(arg, cmd, len, index);
}

static int fsm_snapshot(void *arg, stream_buf *out)
{
    return stream__meta_snapshot(arg, out);
}

static int fsm_restore(void *arg, const uint8_t *p, size_t len, char *errbuf, size_t errbuf_len)
{
    return stream__meta_restore(arg, p, len, errbuf, errbuf_len);
}

void stream__meta_fsm(stream__meta *md, stream__quorum_fsm *fsm)
{
    fsm->arg = md;
    fsm->apply = fsm_apply;
    fsm->snapshot = fsm_snapshot;
    fsm->restore = fsm_restore;
}
