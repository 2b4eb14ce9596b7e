/*
 * admin.c - blocking admin calls: create, delete, describe and alter topics,
 * list offsets.
 *
 * Each call packs one request, waits for it with stream__client_call and
 * turns the per-topic answers into owned result structs. The broker answers
 * per-topic arrays in request order (share/doc/protocol.md), so results are
 * matched by position and checked by name.
 */
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"
#include "stream/error.h"

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
        if (!topics[i].name || topics[i].partitions < 0 ||
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
    msgpack_packer *pk = stream__req_begin(c, STREAM_OP_CREATE_TOPICS, 1);
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        const stream_new_topic *t = &topics[i];
        msgpack_pack_map(pk, 1 + (t->partitions > 0) + (t->config_count > 0));
        stream_pack_kv_cstr(pk, "name", t->name);
        if (t->partitions > 0) /* absent: the broker's num.partitions */
            stream_pack_kv_int(pk, "partitions", t->partitions);
        if (t->config_count) {
            stream_pack_key(pk, "configs");
            msgpack_pack_map(pk, t->config_count);
            for (size_t j = 0; j < t->config_count; j++) {
                stream_pack_cstr(pk, t->configs[j].name);
                stream_pack_cstr(pk, t->configs[j].value);
            }
        }
    }
    int rc = call_results(c, names, n, timeout_ms, results, errbuf, errbuf_len);
    free(names);
    return rc;
}

int stream_admin_delete_topics(stream_client *c, const char *const *names, size_t n, int timeout_ms,
                               stream_topic_result **results, char *errbuf, size_t errbuf_len)
{
    *results = NULL;
    int rc = check_names(names, n, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    msgpack_packer *pk = stream__req_begin(c, STREAM_OP_DELETE_TOPICS, 1);
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        stream_pack_cstr(pk, names[i]);
    rc = call_results(c, names, n, timeout_ms, results, errbuf, errbuf_len);
    for (size_t i = 0; rc == 0 && i < n; i++)
        stream_client_invalidate_metadata(c, names[i]);
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
    msgpack_packer *pk = stream__req_begin(c, STREAM_OP_ALTER_CONFIGS, 1);
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 1 + (nset ? 1 : 0) + (ndel ? 1 : 0));
    stream_pack_kv_cstr(pk, "name", topic);
    if (nset) {
        stream_pack_key(pk, "set");
        msgpack_pack_map(pk, nset);
        for (size_t i = 0; i < count; i++)
            if (entries[i].value) {
                stream_pack_cstr(pk, entries[i].name);
                stream_pack_cstr(pk, entries[i].value);
            }
    }
    if (ndel) {
        stream_pack_key(pk, "delete");
        msgpack_pack_array(pk, ndel);
        for (size_t i = 0; i < count; i++)
            if (!entries[i].value)
                stream_pack_cstr(pk, entries[i].name);
    }
    stream_topic_result *r = NULL;
    int rc = call_results(c, &topic, 1, timeout_ms, &r, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    if (result)
        *result = r;
    else
        stream_topic_results_free(r, 1);
    return 0;
}

/* ---- list_offsets -------------------------------------------------------- */

typedef struct offsets_parse {
    stream_offset_query *q;
    size_t n;
} offsets_parse;

/* Queries are grouped into topic entries by runs of the same topic name, in
 * order; the answer has the same shape. */
static int offsets_parse_fn(const msgpack_object *root, void *arg, char *errbuf, size_t errbuf_len)
{
    offsets_parse *op = arg;
    const msgpack_object *topics;
    int rc = stream_field_array(root, "topics", &topics, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    size_t qi = 0;
    for (uint32_t ti = 0; ti < topics->via.array.size && qi < op->n; ti++) {
        const msgpack_object *t, *parts;
        const char *name;
        size_t len;
        rc = stream_elem_map(topics, ti, "topics", &t, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream_field_str(t, "name", &name, &len, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream_field_array(t, "partitions", &parts, errbuf, errbuf_len);
        if (rc < 0)
            return rc;
        for (uint32_t pi = 0; pi < parts->via.array.size; pi++, qi++) {
            const msgpack_object *pm;
            int64_t partition, err, offset, ts;
            if (qi >= op->n || !stream_str_eq(name, len, op->q[qi].topic)) {
                stream__errf(errbuf, errbuf_len, "list_offsets answer does not match the request");
                return STREAM_EPROTO;
            }
            rc = stream_elem_map(parts, pi, "partitions", &pm, errbuf, errbuf_len);
            if (rc == 0)
                rc = stream_field_int(pm, "partition", INT32_MIN, INT32_MAX, &partition, errbuf,
                                      errbuf_len);
            if (rc == 0)
                rc = stream_field_int_opt(pm, "err", 0, INT32_MAX, 0, &err, errbuf, errbuf_len);
            if (rc == 0)
                rc = stream_field_int_opt(pm, "offset", -1, INT64_MAX, -1, &offset, errbuf,
                                          errbuf_len);
            if (rc == 0)
                rc = stream_field_int_opt(pm, "timestamp", INT64_MIN, INT64_MAX, -1, &ts, errbuf,
                                          errbuf_len);
            if (rc < 0)
                return rc;
            if (partition != op->q[qi].partition) {
                stream__errf(errbuf, errbuf_len, "list_offsets answer does not match the request");
                return STREAM_EPROTO;
            }
            op->q[qi].err = -(int)err;
            op->q[qi].offset = err ? -1 : offset;
            op->q[qi].found_timestamp = err || ts < 0 ? -1 : ts;
        }
    }
    if (qi != op->n) {
        stream__errf(errbuf, errbuf_len, "list_offsets answered %zu of %zu queries", qi, op->n);
        return STREAM_EPROTO;
    }
    return 0;
}

int stream_admin_list_offsets(stream_client *c, stream_offset_query *queries, size_t n,
                              int timeout_ms, char *errbuf, size_t errbuf_len)
{
    size_t groups = 0;
    for (size_t i = 0; i < n; i++) {
        if (!queries[i].topic || queries[i].partition < 0) {
            stream__errf(errbuf, errbuf_len, "list_offsets query %zu: no topic or bad partition",
                         i);
            return STREAM_EINVAL;
        }
        queries[i].offset = -1;
        queries[i].found_timestamp = -1;
        queries[i].err = 0;
        if (i == 0 || strcmp(queries[i].topic, queries[i - 1].topic) != 0)
            groups++;
    }
    if (n == 0)
        return 0;
    msgpack_packer *pk = stream__req_begin(c, STREAM_OP_LIST_OFFSETS, 1);
    stream_pack_key(pk, "topics");
    msgpack_pack_array(pk, groups);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && strcmp(queries[j].topic, queries[i].topic) == 0)
            j++;
        msgpack_pack_map(pk, 2);
        stream_pack_kv_cstr(pk, "name", queries[i].topic);
        stream_pack_key(pk, "partitions");
        msgpack_pack_array(pk, j - i);
        for (size_t k = i; k < j; k++) {
            msgpack_pack_map(pk, 2);
            stream_pack_kv_int(pk, "partition", queries[k].partition);
            stream_pack_kv_int(pk, "timestamp", queries[k].timestamp);
        }
        i = j;
    }
    offsets_parse op = {.q = queries, .n = n};
    return stream__client_call(c, timeout_ms, offsets_parse_fn, &op, errbuf, errbuf_len);
}
