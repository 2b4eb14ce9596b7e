/*
 * admin.c - blocking admin calls: create, delete, describe and alter topics;
 * list, describe and delete consumer groups and reset their offsets.
 * (list_offsets, which goes to each partition's leader, is in
 * client_offsets.c.)
 *
 * Each call packs one request, waits for it with stream__client_call and
 * turns the per-topic answers into owned result structs. The broker answers
 * per-topic arrays in request order (share/doc/protocol.md), so results are
 * matched by position and checked by name.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client_internal.h"
#include "stream/error.h"

#define ADMIN_RETRY_MS       3000 /* create/delete/alter: ENOTLEADER asked again this long */
#define ADMIN_RETRY_PAUSE_MS 100

/* ---- results ------------------------------------------------------------- */

void stream_topic_results_free(stream_topic_result *r, size_t n)
{
    if (!r)
        return;
    for (size_t i = 0; i < n; i++) {
        free(r[i].topic);
        free(r[i].msg);
    }
    free(r);
}

void stream_topic_configs_free(stream_topic_config *cfg, size_t n)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < n; i++) {
        free(cfg[i].topic);
        free(cfg[i].msg);
        for (size_t j = 0; j < cfg[i].entry_count; j++) {
            free((char *)cfg[i].entries[j].name);
            free((char *)cfg[i].entries[j].value);
            free((char *)cfg[i].entries[j].source);
            free((char *)cfg[i].entries[j].doc);
        }
        free(cfg[i].entries);
    }
    free(cfg);
}

/* Reads {name, err, msg} of a per-topic answer into an owned result. The
 * answer must name `expect`. */
static int parse_topic_result(const msgpack_object *t, const char *expect, stream_topic_result *out,
                              char *errbuf, size_t errbuf_len)
{
    const char *name, *text = NULL;
    size_t len, tlen = 0;
    int64_t err;
    int rc = stream_field_str(t, "name", &name, &len, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_int_opt(t, "err", 0, INT32_MAX, 0, &err, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_str_opt(t, "msg", &text, &tlen, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    if (!stream_str_eq(name, len, expect)) {
        stream__errf(errbuf, errbuf_len, "answer for topic '%.*s' where '%s' was expected",
                     (int)(len > 100 ? 100 : len), name, expect);
        return STREAM_EPROTO;
    }
    out->err = -(int)err;
    out->topic = strdup(expect);
    if (err && (!text || tlen == 0)) {
        text = stream_strerror(out->err);
        tlen = strlen(text);
    }
    out->msg = err ? stream__strndup(text, tlen) : strdup("");
    if (!out->topic || !out->msg)
        return STREAM_ENOMEM;
    return 0;
}

typedef struct results_parse {
    const char *const *names; /* expected names, in request order */
    size_t n;
    stream_topic_result *out; /* n entries */
} results_parse;

static int results_parse_fn(const msgpack_object *root, void *arg, char *errbuf, size_t errbuf_len)
{
    results_parse *rp = arg;
    const msgpack_object *topics;
    int rc = stream_field_array(root, "topics", &topics, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    if (topics->via.array.size != rp->n) {
        stream__errf(errbuf, errbuf_len, "%u answers for %zu topics", topics->via.array.size,
                     rp->n);
        return STREAM_EPROTO;
    }
    for (size_t i = 0; i < rp->n; i++) {
        const msgpack_object *t;
        rc = stream_elem_map(topics, i, "topics", &t, errbuf, errbuf_len);
        if (rc == 0)
            rc = parse_topic_result(t, rp->names[i], &rp->out[i], errbuf, errbuf_len);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Sends the request begun last and collects per-topic results for names. */
static int call_results(stream_client *c, const char *const *names, size_t n, int timeout_ms,
                        stream_topic_result **results, char *errbuf, size_t errbuf_len)
{
    results_parse rp = {.names = names, .n = n};
    rp.out = calloc(n ? n : 1, sizeof *rp.out);
    if (!rp.out) {
        stream__req_abort(c);
        return STREAM_ENOMEM;
    }
    int rc = stream__client_call(c, timeout_ms, results_parse_fn, &rp, errbuf, errbuf_len);
    if (rc < 0) {
        stream_topic_results_free(rp.out, n);
        return rc;
    }
    *results = rp.out;
    return 0;
}

static int check_names(const char *const *names, size_t n, char *errbuf, size_t errbuf_len)
{
    for (size_t i = 0; i < n; i++)
        if (!names[i]) {
            stream__errf(errbuf, errbuf_len, "topic name %zu is NULL", i);
            return STREAM_EINVAL;
        }
    return 0;
}

/* ---- create / delete ----------------------------------------------------- */

/* Encodes a request into c (stream__req_begin and its fields). */
typedef void (*encode_fn)(stream_client *c, const void *arg);

/* Encodes and calls, again while the broker refuses the whole request with
 * ENOTLEADER: in a cluster the broker asked hands admin requests to the
 * controller, and has none (or no connection to it) for a moment after an
 * election; nothing was done, so asking again is safe. Every
 * ADMIN_RETRY_PAUSE_MS, for at most ADMIN_RETRY_MS. */
static int call_admin(stream_client *c, encode_fn encode, const void *arg, const char *const *names,
                      size_t n, int timeout_ms, stream_topic_result **results, char *errbuf,
                      size_t errbuf_len)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        encode(c, arg);
        int rc = call_results(c, names, n, timeout_ms, results, errbuf, errbuf_len);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        int64_t ms = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        if (rc != STREAM_ENOTLEADER || ms >= ADMIN_RETRY_MS)
            return rc;
        struct timespec ts = {0, ADMIN_RETRY_PAUSE_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

typedef struct create_req {
    const stream_new_topic *topics;
    size_t n;
} create_req;

static void encode_create(stream_client *c, const void *arg);

int stream_admin_create_topics(stream_client *c, const stream_new_topic *topics, size_t n,
                               int timeout_ms, stream_topic_result **results, char *errbuf,
                               size_t errbuf_len)
{
    *results = NULL;
    const char **names = calloc(n ? n : 1, sizeof *names);
    if (!names)
        return STREAM_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        names[i] = topics[i].name;
        if (!topics[i].name || topics[i].partitions < 0 || topics[i].replication_factor < 0 ||
            (topics[i].config_count && !topics[i].configs)) {
            stream__errf(errbuf, errbuf_len, "topic %zu: bad name, partitions or configs", i);
            free(names);
            return STREAM_EINVAL;
        }
        for (size_t j = 0; j < topics[i].config_count; j++)
            if (!topics[i].configs[j].name || !topics[i].configs[j].value) {
                stream__errf(errbuf, errbuf_len, "topic '%s': config %zu has no name or value",
                             topics[i].name, j);
                free(names);
                return STREAM_EINVAL;
            }
    }
    create_req cr = {topics, n};
    int rc = call_admin(c, encode_create, &cr, names, n, timeout_ms, results, errbuf, errbuf_len);
    free(names);
    return rc;
}

static void encode_create(stream_client *c, const void *arg)
{
    const create_req *cr = arg;
    const stream_new_topic *topics = cr->topics;
    size_t n = cr->n;
    msgpack_packer *pk = stream__req_begin(c, STREAM_OP_CREATE_TOPICS, 1);
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        const stream_new_topic *t = &topics[i];
        msgpack_pack_map(pk, 1 + (t->partitions > 0) + (t->config_count > 0) +
                                 (t->replication_factor > 0));
        stream_pack_kv_cstr(pk, "name", t->name);
        if (t->partitions > 0) /* absent: the broker's num.partitions */
            stream_pack_kv_int(pk, "partitions", t->partitions);
        if (t->replication_factor > 0) /* absent: default.replication.factor */
            stream_pack_kv_int(pk, "replication_factor", t->replication_factor);
        if (t->config_count) {
            stream_pack_key(pk, "configs");
            msgpack_pack_map(pk, t->config_count);
            for (size_t j = 0; j < t->config_count; j++) {
                stream_pack_cstr(pk, t->configs[j].name);
                stream_pack_cstr(pk, t->configs[j].value);
            }
        }
    }
}

typedef struct delete_req {
    const char *const *names;
    size_t n;
} delete_req;

static void encode_delete(stream_client *c, const void *arg)
{
    const delete_req *dr = arg;
    msgpack_packer *pk = stream__req_begin(c, STREAM_OP_DELETE_TOPICS, 1);
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, dr->n);
    for (size_t i = 0; i < dr->n; i++)
        stream_pack_cstr(pk, dr->names[i]);
}

int stream_admin_delete_topics(stream_client *c, const char *const *names, size_t n, int timeout_ms,
                               stream_topic_result **results, char *errbuf, size_t errbuf_len)
{
    *results = NULL;
    int rc = check_names(names, n, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    delete_req dr = {names, n};
    rc = call_admin(c, encode_delete, &dr, names, n, timeout_ms, results, errbuf, errbuf_len);
    for (size_t i = 0; rc == 0 && i < n; i++)
        stream_client_invalidate_metadata(c, names[i]);
    return rc;
}

typedef struct grow_req {
    const stream_new_partitions *topics;
    size_t n;
} grow_req;

static void encode_grow(stream_client *c, const void *arg)
{
    const grow_req *gr = arg;
    msgpack_packer *pk = stream__req_begin(c, STREAM_OP_CREATE_PARTITIONS, 1);
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, gr->n);
    for (size_t i = 0; i < gr->n; i++) {
        msgpack_pack_map(pk, 2);
        stream_pack_kv_cstr(pk, "name", gr->topics[i].name);
        stream_pack_kv_int(pk, "count", gr->topics[i].count);
    }
}

int stream_admin_create_partitions(stream_client *c, const stream_new_partitions *topics, size_t n,
                                   int timeout_ms, stream_topic_result **results, char *errbuf,
                                   size_t errbuf_len)
{
    *results = NULL;
    const char **names = calloc(n ? n : 1, sizeof *names);
    if (!names)
        return STREAM_ENOMEM;
    for (size_t i = 0; i < n; i++)
        names[i] = topics[i].name;
    int rc = check_names(names, n, errbuf, errbuf_len);
    grow_req gr = {topics, n};
    if (rc == 0)
        rc = call_admin(c, encode_grow, &gr, names, n, timeout_ms, results, errbuf, errbuf_len);
    /* The next produce or fetch learns the new count. */
    for (size_t i = 0; rc == 0 && i < n; i++)
        stream_client_invalidate_metadata(c, names[i]);
    free(names);
    return rc;
}

/* ---- configs ------------------------------------------------------------- */

typedef struct configs_parse {
    const char *const *names;
    size_t n;
    stream_topic_config *out;
} configs_parse;

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const stream_config_entry *)a)->name, ((const stream_config_entry *)b)->name);
}

static int parse_entries(const msgpack_object *configs, stream_topic_config *out, char *errbuf,
                         size_t errbuf_len)
{
    uint32_t n = configs ? configs->via.array.size : 0;
    out->entries = calloc(n ? n : 1, sizeof *out->entries);
    if (!out->entries)
        return STREAM_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *e;
        const char *name, *value = NULL, *source = NULL, *doc = NULL;
        size_t nlen, vlen = 0, slen = 0, dlen = 0;
        const msgpack_object *isdef;
        int rc = stream_elem_map(configs, i, "configs", &e, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream_field_str(e, "name", &name, &nlen, errbuf, errbuf_len);
        if (rc == 0) /* nil is reserved for secrets */
            rc = stream_field_str_opt(e, "value", &value, &vlen, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream_field_str_opt(e, "source", &source, &slen, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream_field_str_opt(e, "doc", &doc, &dlen, errbuf, errbuf_len);
        if (rc < 0)
            return rc;
        stream_config_entry *ce = &out->entries[i];
        out->entry_count++;
        ce->name = stream__strndup(name, nlen);
        ce->value = stream__strndup(value ? value : "", vlen);
        ce->source = source ? stream__strndup(source, slen) : strdup("default");
        ce->doc = doc ? stream__strndup(doc, dlen) : NULL;
        if (!ce->name || !ce->value || !ce->source || (doc && !ce->doc))
            return STREAM_ENOMEM;
        isdef = stream_field_find(e, "is_default");
        if (isdef && isdef->type == MSGPACK_OBJECT_BOOLEAN)
            ce->is_default = isdef->via.boolean;
        else
            ce->is_default = strcmp(ce->source, "default") == 0;
    }
    qsort(out->entries, out->entry_count, sizeof *out->entries, entry_cmp);
    return 0;
}

static int configs_parse_fn(const msgpack_object *root, void *arg, char *errbuf, size_t errbuf_len)
{
    configs_parse *cp = arg;
    const msgpack_object *topics;
    int rc = stream_field_array(root, "topics", &topics, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    if (topics->via.array.size != cp->n) {
        stream__errf(errbuf, errbuf_len, "%u answers for %zu topics", topics->via.array.size,
                     cp->n);
        return STREAM_EPROTO;
    }
    for (size_t i = 0; i < cp->n; i++) {
        const msgpack_object *t, *configs = NULL;
        stream_topic_result r = {0};
        rc = stream_elem_map(topics, i, "topics", &t, errbuf, errbuf_len);
        if (rc == 0)
            rc = parse_topic_result(t, cp->names[i], &r, errbuf, errbuf_len);
        cp->out[i].topic = r.topic;
        cp->out[i].msg = r.msg;
        cp->out[i].err = r.err;
        if (rc == 0 && r.err == 0)
            rc = stream_field_array_opt(t, "configs", &configs, errbuf, errbuf_len);
        if (rc == 0)
            rc = parse_entries(configs, &cp->out[i], errbuf, errbuf_len);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int stream_admin_describe_configs(stream_client *c, const char *const *topics, size_t n,
                                  int timeout_ms, stream_topic_config **out, char *errbuf,
                                  size_t errbuf_len)
{
    *out = NULL;
    int rc = check_names(topics, n, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    configs_parse cp = {.names = topics, .n = n};
    cp.out = calloc(n ? n : 1, sizeof *cp.out);
    if (!cp.out)
        return STREAM_ENOMEM;
    msgpack_packer *pk = stream__req_begin(c, STREAM_OP_DESCRIBE_CONFIGS, 1);
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        stream_pack_cstr(pk, topics[i]);
    rc = stream__client_call(c, timeout_ms, configs_parse_fn, &cp, errbuf, errbuf_len);
    if (rc < 0) {
        stream_topic_configs_free(cp.out, n);
        return rc;
    }
    *out = cp.out;
    return 0;
}

typedef struct alter_req {
    const char *topic;
    const stream_config_entry *entries;
    size_t count, nset, ndel;
} alter_req;

static void encode_alter(stream_client *c, const void *arg)
{
    const alter_req *ar = arg;
    msgpack_packer *pk = stream__req_begin(c, STREAM_OP_ALTER_CONFIGS, 1);
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 1 + (ar->nset ? 1 : 0) + (ar->ndel ? 1 : 0));
    stream_pack_kv_cstr(pk, "name", ar->topic);
    if (ar->nset) {
        stream_pack_key(pk, "set");
        msgpack_pack_map(pk, ar->nset);
        for (size_t i = 0; i < ar->count; i++)
            if (ar->entries[i].value) {
                stream_pack_cstr(pk, ar->entries[i].name);
                stream_pack_cstr(pk, ar->entries[i].value);
            }
    }
    if (ar->ndel) {
        stream_pack_key(pk, "delete");
        msgpack_pack_array(pk, ar->ndel);
        for (size_t i = 0; i < ar->count; i++)
            if (!ar->entries[i].value)
                stream_pack_cstr(pk, ar->entries[i].name);
    }
}

int stream_admin_alter_configs(stream_client *c, const char *topic,
                               const stream_config_entry *entries, size_t count, int timeout_ms,
                               stream_topic_result **result, char *errbuf, size_t errbuf_len)
{
    if (result)
        *result = NULL;
    if (!topic || (count && !entries)) {
        stream__errf(errbuf, errbuf_len, "alter_configs: no topic or no entries");
        return STREAM_EINVAL;
    }
    size_t nset = 0, ndel = 0;
    for (size_t i = 0; i < count; i++) {
        if (!entries[i].name) {
            stream__errf(errbuf, errbuf_len, "topic '%s': config %zu has no name", topic, i);
            return STREAM_EINVAL;
        }
        if (entries[i].value)
            nset++;
        else
            ndel++;
    }
    alter_req ar = {topic, entries, count, nset, ndel};
    stream_topic_result *r = NULL;
    int rc = call_admin(c, encode_alter, &ar, &topic, 1, timeout_ms, &r, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    if (result)
        *result = r;
    else
        stream_topic_results_free(r, 1);
    return 0;
}

/* ---- consumer groups ------------------------------------------------------ */

/* An owned copy of a str field ("" when absent and optional). */
int stream__client_dup_field(const msgpack_object *m, const char *key, bool required, char **out,
                             char *errbuf, size_t errbuf_len)
{
    const char *p = NULL;
    size_t len = 0;
    int rc = required ? stream_field_str(m, key, &p, &len, errbuf, errbuf_len)
                      : stream_field_str_opt(m, key, &p, &len, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    *out = stream__strndup(p ? p : "", len);
    return *out ? 0 : STREAM_ENOMEM;
}

static void topic_partitions_free(stream_topic_partitions *t, size_t n)
{
    if (!t)
        return;
    for (size_t i = 0; i < n; i++) {
        free(t[i].topic);
        free(t[i].partitions);
    }
    free(t);
}

/* Reads a partition set ([{topic, partitions: [int32]}]) field. */
static int parse_pset(const msgpack_object *m, const char *key, stream_topic_partitions **out,
                      size_t *n, char *errbuf, size_t errbuf_len)
{
    const msgpack_object *arr;
    *out = NULL;
    *n = 0;
    int rc = stream_field_array_opt(m, key, &arr, errbuf, errbuf_len);
    if (rc < 0 || !arr || arr->via.array.size == 0)
        return rc;
    stream_topic_partitions *t = calloc(arr->via.array.size, sizeof *t);
    if (!t)
        return STREAM_ENOMEM;
    size_t k = 0;
    for (uint32_t i = 0; i < arr->via.array.size && rc == 0; i++, k++) {
        const msgpack_object *e, *parts;
        rc = stream_elem_map(arr, i, key, &e, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream__client_dup_field(e, "topic", true, &t[k].topic, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream_field_array(e, "partitions", &parts, errbuf, errbuf_len);
        if (rc < 0)
            break;
        t[k].partitions =
            calloc(parts->via.array.size ? parts->via.array.size : 1, sizeof *t[k].partitions);
        if (!t[k].partitions) {
            rc = STREAM_ENOMEM;
            break;
        }
        for (uint32_t j = 0; j < parts->via.array.size; j++) {
            const msgpack_object *o = &parts->via.array.ptr[j];
            if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > INT32_MAX) {
                stream__errf(errbuf, errbuf_len, "a partition in '%s' is not an int32", key);
                rc = STREAM_EPROTO;
                break;
            }
            t[k].partitions[t[k].count++] = (int32_t)o->via.u64;
        }
    }
    if (rc < 0) {
        topic_partitions_free(t, k + 1 > arr->via.array.size ? arr->via.array.size : k + 1);
        return rc;
    }
    *out = t;
    *n = k;
    return 0;
}

void stream_group_listings_free(stream_group_listing *g, size_t n)
{
    if (!g)
        return;
    for (size_t i = 0; i < n; i++) {
        free(g[i].group);
        free(g[i].state);
    }
    free(g);
}

typedef struct groups_parse {
    stream_group_listing *out;
    size_t n;
} groups_parse;

static int groups_parse_fn(const msgpack_object *root, void *arg, char *errbuf, size_t errbuf_len)
{
    groups_parse *gp = arg;
    const msgpack_object *arr;
    int rc = stream_field_array(root, "groups", &arr, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    /* Appends: in a cluster every broker lists the groups it coordinates. */
    stream_group_listing *grown =
        realloc(gp->out, (gp->n + arr->via.array.size + 1) * sizeof *gp->out);
    if (!grown)
        return STREAM_ENOMEM;
    gp->out = grown;
    memset(&gp->out[gp->n], 0, (arr->via.array.size + 1) * sizeof *gp->out);
    for (uint32_t i = 0; i < arr->via.array.size; i++) {
        const msgpack_object *e;
        stream_group_listing *l = &gp->out[gp->n++];
        int64_t members, gen;
        rc = stream_elem_map(arr, i, "groups", &e, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream__client_dup_field(e, "group", true, &l->group, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream__client_dup_field(e, "state", false, &l->state, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream_field_int_opt(e, "members", 0, INT32_MAX, 0, &members, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream_field_int_opt(e, "generation", -1, INT32_MAX, -1, &gen, errbuf, errbuf_len);
        if (rc < 0)
            return rc;
        l->members = (int32_t)members;
        l->generation = (int32_t)gen;
    }
    return 0;
}

static int listing_cmp(const void *a, const void *b)
{
    return strcmp(((const stream_group_listing *)a)->group,
                  ((const stream_group_listing *)b)->group);
}

/* In a cluster: the groups of every unfenced broker (each lists those it
 * coordinates), sorted, a group listed twice (a coordinator moving) once.
 * A broker that cannot be asked is left out; 0 when at least one answered,
 * else the last error. */
static int list_cluster_groups(stream_client *c, const stream_cluster_description *cd,
                               int timeout_ms, groups_parse *gp, char *errbuf, size_t errbuf_len)
{
    int rc = STREAM_ENOBROKER, answered = 0;
    for (size_t i = 0; i < cd->n_brokers; i++) {
        const stream_cluster_broker *br = &cd->brokers[i];
        if (br->fenced)
            continue;
        stream__client_learn_node(c, br->node_id, br->host, br->port);
        size_t before = gp->n;
        stream__req_begin(c, STREAM_OP_LIST_GROUPS, 0);
        rc = stream__client_call_node(c, br->node_id, timeout_ms, groups_parse_fn, gp, errbuf,
                                      errbuf_len);
        if (rc == STREAM_ENOMEM)
            return rc;
        if (rc != 0) { /* a half-parsed answer is left out whole */
            for (size_t j = before; j < gp->n; j++) {
                free(gp->out[j].group);
                free(gp->out[j].state);
            }
            gp->n = before;
        }
        answered += rc == 0;
    }
    if (answered == 0)
        return rc;
    if (gp->n > 1)
        qsort(gp->out, gp->n, sizeof *gp->out, listing_cmp);
    size_t k = 0;
    for (size_t i = 0; i < gp->n; i++) {
        if (k > 0 && strcmp(gp->out[k - 1].group, gp->out[i].group) == 0) {
            free(gp->out[i].group);
            free(gp->out[i].state);
            continue;
        }
        gp->out[k++] = gp->out[i];
    }
    gp->n = k;
    return 0;
}

int stream_admin_list_groups(stream_client *c, int timeout_ms, stream_group_listing **out,
                             size_t *n, char *errbuf, size_t errbuf_len)
{
    *out = NULL;
    *n = 0;
    groups_parse gp = {0};
    stream_cluster_description *cd = NULL;
    char why[256];
    int rc;
    if (stream_admin_describe_cluster(c, timeout_ms, &cd, why, sizeof why) == 0 && cd->clustered &&
        cd->n_brokers > 1) {
        rc = list_cluster_groups(c, cd, timeout_ms, &gp, errbuf, errbuf_len);
    } else {
        stream__req_begin(c, STREAM_OP_LIST_GROUPS, 0);
        rc = stream__client_call(c, timeout_ms, groups_parse_fn, &gp, errbuf, errbuf_len);
    }
    stream_cluster_description_free(cd);
    if (rc < 0) {
        stream_group_listings_free(gp.out, gp.n);
        return rc;
    }
    *out = gp.out;
    *n = gp.n;
    return 0;
}

void stream_group_description_free(stream_group_description *d)
{
    if (!d)
        return;
    free(d->group);
    free(d->state);
    for (size_t i = 0; i < d->member_count; i++) {
        stream_group_member *m = &d->members[i];
        free(m->member_id);
        free(m->client_id);
        free(m->host);
        for (size_t j = 0; j < m->topic_count; j++)
            free(m->topics[j]);
        free(m->topics);
        free(m->pattern);
        topic_partitions_free(m->assignment, m->assignment_count);
        topic_partitions_free(m->target, m->target_count);
    }
    free(d->members);
    for (size_t i = 0; i < d->offset_count; i++) {
        free(d->offsets[i].topic);
        free(d->offsets[i].member_id);
        free(d->offsets[i].metadata);
    }
    free(d->offsets);
    free(d);
}

static int parse_member(const msgpack_object *e, stream_group_member *m, char *errbuf,
                        size_t errbuf_len)
{
    int64_t st, gen;
    const msgpack_object *sub = NULL, *topics = NULL;
    int rc = stream__client_dup_field(e, "member_id", true, &m->member_id, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream__client_dup_field(e, "client_id", false, &m->client_id, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream__client_dup_field(e, "host", false, &m->host, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_int_opt(e, "session_timeout_ms", -1, INT32_MAX, -1, &st, errbuf,
                                  errbuf_len);
    if (rc == 0)
        rc = stream_field_int_opt(e, "generation", -1, INT32_MAX, -1, &gen, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_map_opt(e, "subscription", &sub, errbuf, errbuf_len);
    if (rc == 0 && sub)
        rc = stream_field_array_opt(sub, "topics", &topics, errbuf, errbuf_len);
    if (rc == 0 && topics && topics->via.array.size) {
        m->topics = calloc(topics->via.array.size, sizeof *m->topics);
        if (!m->topics)
            return STREAM_ENOMEM;
        for (uint32_t i = 0; i < topics->via.array.size && rc == 0; i++) {
            const char *p;
            size_t len;
            rc = stream_elem_str(topics, i, "topics", &p, &len, errbuf, errbuf_len);
            if (rc == 0 && !(m->topics[m->topic_count++] = stream__strndup(p, len)))
                rc = STREAM_ENOMEM;
        }
    }
    if (rc == 0 && sub) {
        const char *p = NULL;
        size_t len = 0;
        rc = stream_field_str_opt(sub, "pattern", &p, &len, errbuf, errbuf_len);
        if (rc == 0 && p && !(m->pattern = stream__strndup(p, len)))
            rc = STREAM_ENOMEM;
    }
    if (rc == 0)
        rc = parse_pset(e, "assignment", &m->assignment, &m->assignment_count, errbuf, errbuf_len);
    if (rc == 0)
        rc = parse_pset(e, "target", &m->target, &m->target_count, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    m->session_timeout_ms = (int32_t)st;
    m->generation = (int32_t)gen;
    return 0;
}

static int parse_group_offset(const msgpack_object *e, stream_group_partition *o, char *errbuf,
                              size_t errbuf_len)
{
    int64_t partition;
    int rc = stream__client_dup_field(e, "topic", true, &o->topic, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_int(e, "partition", 0, INT32_MAX, &partition, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream__client_dup_field(e, "member_id", false, &o->member_id, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream__client_dup_field(e, "metadata", false, &o->metadata, errbuf, errbuf_len);
    struct {
        const char *key;
        int64_t *out;
    } nums[] = {
        {"offset", &o->offset},
        {"commit_timestamp", &o->commit_timestamp},
        {"log_start_offset", &o->log_start_offset},
        {"log_end_offset", &o->log_end_offset},
        {"lag", &o->lag},
        {"oldest_unconsumed_timestamp", &o->oldest_unconsumed_timestamp},
    };
    for (size_t i = 0; rc == 0 && i < sizeof nums / sizeof nums[0]; i++)
        rc = stream_field_int_opt(e, nums[i].key, INT64_MIN, INT64_MAX, -1, nums[i].out, errbuf,
                                  errbuf_len);
    if (rc == 0)
        o->partition = (int32_t)partition;
    return rc;
}

static int describe_parse_fn(const msgpack_object *root, void *arg, char *errbuf, size_t errbuf_len)
{
    stream_group_description *d = arg;
    const msgpack_object *members, *offsets;
    int64_t gen;
    int rc = stream__client_dup_field(root, "group", true, &d->group, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream__client_dup_field(root, "state", false, &d->state, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_int_opt(root, "generation", -1, INT32_MAX, -1, &gen, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_int_opt(root, "total_lag", INT64_MIN, INT64_MAX, 0, &d->total_lag, errbuf,
                                  errbuf_len);
    if (rc == 0)
        rc = stream_field_int_opt(root, "oldest_unconsumed_timestamp", INT64_MIN, INT64_MAX, -1,
                                  &d->oldest_unconsumed_timestamp, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_array(root, "members", &members, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_array(root, "offsets", &offsets, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    d->generation = (int32_t)gen;
    d->members = calloc(members->via.array.size ? members->via.array.size : 1, sizeof *d->members);
    d->offsets = calloc(offsets->via.array.size ? offsets->via.array.size : 1, sizeof *d->offsets);
    if (!d->members || !d->offsets)
        return STREAM_ENOMEM;
    for (uint32_t i = 0; i < members->via.array.size; i++) {
        const msgpack_object *e;
        rc = stream_elem_map(members, i, "members", &e, errbuf, errbuf_len);
        d->member_count++;
        if (rc == 0)
            rc = parse_member(e, &d->members[i], errbuf, errbuf_len);
        if (rc < 0)
            return rc;
    }
    for (uint32_t i = 0; i < offsets->via.array.size; i++) {
        const msgpack_object *e;
        rc = stream_elem_map(offsets, i, "offsets", &e, errbuf, errbuf_len);
        d->offset_count++;
        if (rc == 0)
            rc = parse_group_offset(e, &d->offsets[i], errbuf, errbuf_len);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- the group coordinator ------------------------------------------------ */

typedef struct coord_answer {
    int32_t node;
    char host[256];
    int port;
} coord_answer;

static int coord_parse_fn(const msgpack_object *root, void *arg, char *errbuf, size_t errbuf_len)
{
    coord_answer *a = arg;
    int64_t node, port;
    const char *host;
    size_t len;
    if (stream_field_int(root, "node_id", 0, INT32_MAX, &node, errbuf, errbuf_len) < 0 ||
        stream_field_str(root, "host", &host, &len, errbuf, errbuf_len) < 0 ||
        len >= sizeof a->host ||
        stream_field_int(root, "port", 1, 65535, &port, errbuf, errbuf_len) < 0)
        return STREAM_EPROTO;
    a->node = (int32_t)node;
    memcpy(a->host, host, len);
    a->host[len] = '\0';
    a->port = (int)port;
    return 0;
}

/* The node that coordinates group (find_coordinator, asked on the bootstrap
 * connection, again while there is none for ADMIN_RETRY_MS), its address
 * learnt; STREAM__NODE_BOOTSTRAP when the broker does not know the op (it
 * coordinates every group) or cannot say: the request then goes there and
 * its answer (ENOTCOORDINATOR) tells the caller. */
static int32_t admin_coordinator(stream_client *c, const char *group, int timeout_ms)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        coord_answer a = {.node = STREAM__NODE_BOOTSTRAP};
        char msg[256];
        msgpack_packer *pk = stream__req_begin(c, STREAM_OP_FIND_COORDINATOR, 1);
        stream_pack_kv_cstr(pk, "group", group);
        int rc = stream__client_call(c, timeout_ms, coord_parse_fn, &a, msg, sizeof msg);
        if (rc == 0) {
            stream__client_learn_node(c, a.node, a.host, a.port);
            return a.node;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        int64_t ms = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        if (rc != STREAM_ENOTCOORDINATOR || ms >= ADMIN_RETRY_MS)
            return STREAM__NODE_BOOTSTRAP;
        struct timespec ts = {0, ADMIN_RETRY_PAUSE_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int stream_admin_describe_group(stream_client *c, const char *group, int timeout_ms,
                                stream_group_description **out, char *errbuf, size_t errbuf_len)
{
    *out = NULL;
    if (!group) {
        stream__errf(errbuf, errbuf_len, "describe_group: no group");
        return STREAM_EINVAL;
    }
    stream_group_description *d = calloc(1, sizeof *d);
    if (!d)
        return STREAM_ENOMEM;
    int32_t node = admin_coordinator(c, group, timeout_ms);
    msgpack_packer *pk = stream__req_begin(c, STREAM_OP_DESCRIBE_GROUP, 1);
    stream_pack_kv_cstr(pk, "group", group);
    int rc =
        stream__client_call_node(c, node, timeout_ms, describe_parse_fn, d, errbuf, errbuf_len);
    if (rc < 0) {
        stream_group_description_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

void stream_group_results_free(stream_group_result *r, size_t n)
{
    if (!r)
        return;
    for (size_t i = 0; i < n; i++) {
        free(r[i].group);
        free(r[i].msg);
    }
    free(r);
}

typedef struct group_results_parse {
    const char *const *names;
    size_t n;
    stream_group_result *out;
} group_results_parse;

static int group_results_parse_fn(const msgpack_object *root, void *arg, char *errbuf,
                                  size_t errbuf_len)
{
    group_results_parse *gp = arg;
    const msgpack_object *arr;
    int rc = stream_field_array(root, "groups", &arr, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    if (arr->via.array.size != gp->n) {
        stream__errf(errbuf, errbuf_len, "%u answers for %zu groups", arr->via.array.size, gp->n);
        return STREAM_EPROTO;
    }
    for (size_t i = 0; i < gp->n; i++) {
        const msgpack_object *e;
        const char *name, *text = NULL;
        size_t len, tlen = 0;
        int64_t err;
        rc = stream_elem_map(arr, i, "groups", &e, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream_field_str(e, "group", &name, &len, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream_field_int_opt(e, "err", 0, INT32_MAX, 0, &err, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream_field_str_opt(e, "msg", &text, &tlen, errbuf, errbuf_len);
        if (rc < 0)
            return rc;
        if (!stream_str_eq(name, len, gp->names[i])) {
            stream__errf(errbuf, errbuf_len, "answer for group '%.*s' where '%s' was expected",
                         (int)(len > 100 ? 100 : len), name, gp->names[i]);
            return STREAM_EPROTO;
        }
        stream_group_result *r = &gp->out[i];
        r->err = -(int)err;
        if (err && (!text || tlen == 0)) {
            text = stream_strerror(r->err);
            tlen = strlen(text);
        }
        r->group = strdup(gp->names[i]);
        r->msg = err ? stream__strndup(text, tlen) : strdup("");
        if (!r->group || !r->msg)
            return STREAM_ENOMEM;
    }
    return 0;
}

int stream_admin_delete_groups(stream_client *c, const char *const *groups, size_t n,
                               int timeout_ms, stream_group_result **results, char *errbuf,
                               size_t errbuf_len)
{
    *results = NULL;
    for (size_t i = 0; i < n; i++)
        if (!groups[i]) {
            stream__errf(errbuf, errbuf_len, "group name %zu is NULL", i);
            return STREAM_EINVAL;
        }
    stream_group_result *out = calloc(n ? n : 1, sizeof *out);
    if (!out)
        return STREAM_ENOMEM;
    /* One request per group, to its coordinator (in a cluster each group
     * may have another one). */
    for (size_t i = 0; i < n; i++) {
        group_results_parse gp = {.names = &groups[i], .n = 1, .out = &out[i]};
        int32_t node = admin_coordinator(c, groups[i], timeout_ms);
        msgpack_packer *pk = stream__req_begin(c, STREAM_OP_DELETE_GROUP, 1);
        stream_pack_key(pk, "groups");
        msgpack_pack_array(pk, 1);
        stream_pack_cstr(pk, groups[i]);
        int rc = stream__client_call_node(c, node, timeout_ms, group_results_parse_fn, &gp, errbuf,
                                          errbuf_len);
        if (rc < 0) {
            stream_group_results_free(out, n);
            return rc;
        }
    }
    *results = out;
    return 0;
}

void stream_group_reset_plan_free(stream_group_reset_plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->count; i++)
        free(p->entries[i].topic);
    free(p->entries);
    free(p);
}

static int plan_parse_fn(const msgpack_object *root, void *arg, char *errbuf, size_t errbuf_len)
{
    stream_group_reset_plan *p = arg;
    const msgpack_object *arr;
    int rc = stream_field_bool_opt(root, "executed", false, &p->executed, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_array(root, "offsets", &arr, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    p->entries = calloc(arr->via.array.size ? arr->via.array.size : 1, sizeof *p->entries);
    if (!p->entries)
        return STREAM_ENOMEM;
    for (uint32_t i = 0; i < arr->via.array.size; i++) {
        const msgpack_object *e;
        stream_group_reset_entry *x = &p->entries[p->count++];
        int64_t partition;
        rc = stream_elem_map(arr, i, "offsets", &e, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream__client_dup_field(e, "topic", true, &x->topic, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream_field_int(e, "partition", 0, INT32_MAX, &partition, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream_field_int_opt(e, "current", -1, INT64_MAX, -1, &x->current, errbuf,
                                      errbuf_len);
        if (rc == 0)
            rc = stream_field_int(e, "new", -1, INT64_MAX, &x->new_offset, errbuf, errbuf_len);
        if (rc < 0)
            return rc;
        x->partition = (int32_t)partition;
    }
    return 0;
}

int stream_admin_reset_offsets(stream_client *c, const stream_group_reset *req, int timeout_ms,
                               stream_group_reset_plan **out, char *errbuf, size_t errbuf_len)
{
    static const char *const to_names[] = {"earliest", "latest", "offset", "timestamp", "shift"};
    *out = NULL;
    if (!req || !req->group || (unsigned)req->to > STREAM_GROUP_RESET_SHIFT ||
        (req->topic_count && !req->topics)) {
        stream__errf(errbuf, errbuf_len, "reset_offsets: no group, or a bad target");
        return STREAM_EINVAL;
    }
    for (size_t i = 0; i < req->topic_count; i++)
        if (!req->topics[i].topic ||
            (req->topics[i].partition_count && !req->topics[i].partitions)) {
            stream__errf(errbuf, errbuf_len, "reset_offsets: topic %zu has no name", i);
            return STREAM_EINVAL;
        }
    bool has_value = req->to >= STREAM_GROUP_RESET_OFFSET;
    stream_group_reset_plan *p = calloc(1, sizeof *p);
    if (!p)
        return STREAM_ENOMEM;
    int32_t node = admin_coordinator(c, req->group, timeout_ms);
    msgpack_packer *pk = stream__req_begin(c, STREAM_OP_RESET_OFFSETS,
                                           3 + (req->topic_count ? 1 : 0) + (has_value ? 1 : 0));
    stream_pack_kv_cstr(pk, "group", req->group);
    stream_pack_kv_cstr(pk, "to", to_names[req->to]);
    if (has_value)
        stream_pack_kv_int(pk, "value", req->value);
    stream_pack_kv_bool(pk, "execute", req->execute);
    if (req->topic_count) {
        stream_pack_key(pk, "topics");
        msgpack_pack_array(pk, req->topic_count);
        for (size_t i = 0; i < req->topic_count; i++) {
            const stream_group_reset_topic *t = &req->topics[i];
            msgpack_pack_map(pk, t->partition_count ? 2 : 1);
            stream_pack_kv_cstr(pk, "name", t->topic);
            if (t->partition_count) {
                stream_pack_key(pk, "partitions");
                msgpack_pack_array(pk, t->partition_count);
                for (size_t j = 0; j < t->partition_count; j++)
                    msgpack_pack_int32(pk, t->partitions[j]);
            }
        }
    }
    int rc = stream__client_call_node(c, node, timeout_ms, plan_parse_fn, p, errbuf, errbuf_len);
    if (rc < 0) {
        stream_group_reset_plan_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* ---- describe_cluster ---- */

void stream_cluster_description_free(stream_cluster_description *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_voters; i++)
        free(d->voters[i].host);
    for (size_t i = 0; i < d->n_brokers; i++)
        free(d->brokers[i].host);
    for (size_t i = 0; i < d->n_under_replicated; i++)
        free(d->under_replicated[i].topic);
    for (size_t i = 0; i < d->n_offline; i++)
        free(d->offline[i].topic);
    free(d->under_replicated);
    free(d->offline);
    free(d->voters);
    free(d->brokers);
    free(d->cluster_id);
    free(d);
}

/* A health list of describe_cluster (`key`, absent: none) and its count
 * (`count_key`, absent: -1). */
static int parse_health(const msgpack_object *root, const char *key, const char *count_key,
                        stream_cluster_partition **out, size_t *n, int64_t *count, char *errbuf,
                        size_t errbuf_len)
{
    const msgpack_object *a;
    int rc = stream_field_int_opt(root, count_key, -1, INT64_MAX, -1, count, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_array_opt(root, key, &a, errbuf, errbuf_len);
    if (rc < 0 || a == NULL)
        return rc;
    *out = calloc(a->via.array.size ? a->via.array.size : 1, sizeof **out);
    if (*out == NULL)
        return STREAM_ENOMEM;
    for (uint32_t i = 0; i < a->via.array.size; i++) {
        const msgpack_object *e;
        int64_t p;
        stream_cluster_partition *cp = &(*out)[(*n)++];
        rc = stream_elem_map(a, i, key, &e, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream__client_dup_field(e, "topic", true, &cp->topic, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream_field_int(e, "partition", 0, INT32_MAX, &p, errbuf, errbuf_len);
        if (rc < 0)
            return rc;
        cp->partition = (int32_t)p;
    }
    return 0;
}

/* The node_id, host and port of a voters or brokers entry. */
static int parse_node(const msgpack_object *e, int32_t *id, char **host, uint16_t *port,
                      char *errbuf, size_t errbuf_len)
{
    int64_t v;
    uint64_t p;
    int rc = stream_field_int(e, "node_id", -1, INT32_MAX, &v, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream__client_dup_field(e, "host", true, host, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_uint(e, "port", 65535, &p, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    *id = (int32_t)v;
    *port = (uint16_t)p;
    return 0;
}

static int cluster_parse_fn(const msgpack_object *root, void *arg, char *errbuf, size_t errbuf_len)
{
    stream_cluster_description *d = arg;
    const msgpack_object *voters, *brokers;
    int64_t node, leader;
    int rc = stream__client_dup_field(root, "cluster_id", true, &d->cluster_id, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_int(root, "node_id", -1, INT32_MAX, &node, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_int(root, "leader_id", -1, INT32_MAX, &leader, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_uint(root, "term", UINT64_MAX, &d->term, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_uint(root, "applied_index", UINT64_MAX, &d->applied_index, errbuf,
                               errbuf_len);
    if (rc == 0)
        rc = stream_field_bool_opt(root, "clustered", true, &d->clustered, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_array(root, "voters", &voters, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_array(root, "brokers", &brokers, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    d->node_id = (int32_t)node;
    d->leader_id = (int32_t)leader;
    d->voters = calloc(voters->via.array.size ? voters->via.array.size : 1, sizeof *d->voters);
    d->brokers = calloc(brokers->via.array.size ? brokers->via.array.size : 1, sizeof *d->brokers);
    if (!d->voters || !d->brokers)
        return STREAM_ENOMEM;
    for (uint32_t i = 0; i < voters->via.array.size; i++) {
        const msgpack_object *e;
        stream_cluster_voter *v = &d->voters[d->n_voters++];
        uint64_t applied = 0;
        rc = stream_elem_map(voters, i, "voters", &e, errbuf, errbuf_len);
        if (rc == 0)
            rc = parse_node(e, &v->node_id, &v->host, &v->port, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream_field_uint_opt(e, "applied_index", INT64_MAX, 0, &applied, errbuf,
                                       errbuf_len);
        if (rc < 0)
            return rc;
        v->applied_index = applied > 0 ? (int64_t)applied : -1;
    }
    for (uint32_t i = 0; i < brokers->via.array.size; i++) {
        const msgpack_object *e;
        stream_cluster_broker *br = &d->brokers[d->n_brokers++];
        rc = stream_elem_map(brokers, i, "brokers", &e, errbuf, errbuf_len);
        if (rc == 0)
            rc = parse_node(e, &br->node_id, &br->host, &br->port, errbuf, errbuf_len);
        if (rc == 0)
            rc =
                stream_field_int_opt(e, "epoch", -1, INT64_MAX, -1, &br->epoch, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream_field_bool_opt(e, "fenced", false, &br->fenced, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream_field_int_opt(e, "leaderships", -1, INT64_MAX, -1, &br->leaderships, errbuf,
                                      errbuf_len);
        if (rc < 0)
            return rc;
    }
    rc = parse_health(root, "under_replicated", "under_replicated_count", &d->under_replicated,
                      &d->n_under_replicated, &d->under_replicated_count, errbuf, errbuf_len);
    if (rc == 0)
        rc = parse_health(root, "offline", "offline_count", &d->offline, &d->n_offline,
                          &d->offline_count, errbuf, errbuf_len);
    return rc;
}

int stream_admin_describe_cluster(stream_client *c, int timeout_ms,
                                  stream_cluster_description **out, char *errbuf, size_t errbuf_len)
{
    *out = NULL;
    stream_cluster_description *d = calloc(1, sizeof *d);
    if (!d)
        return STREAM_ENOMEM;
    stream__req_begin(c, STREAM_OP_DESCRIBE_CLUSTER, 0);
    int rc = stream__client_call(c, timeout_ms, cluster_parse_fn, d, errbuf, errbuf_len);
    if (rc < 0) {
        stream_cluster_description_free(d);
        return rc;
    }
    *out = d;
    return 0;
}
