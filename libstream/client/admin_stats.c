/*
 * admin_stats.c - the stats call (protocol.md 6.29): asks one broker what it
 * has done and holds, and decodes the answer into a stream_stats.
 *
 * The decoder reads a whole response map, so it serves both the blocking
 * call (through stream__client_call's parse hook) and stream_stats_decode,
 * which takes raw MessagePack bytes (the unit test and the libFuzzer target
 * tests/fuzz/fuzz_stats.c feed it). Every array is allocated at its
 * announced size, which stream_msg_parse has already bounded by the
 * payload's bytes, and filled in place, so a failure half-way frees cleanly
 * with stream_stats_free.
 */
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"
#include "stream/error.h"

void stream_stats_free(stream_stats *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_topics; i++) {
        free(s->topics[i].name);
        free(s->topics[i].partitions);
    }
    for (size_t i = 0; i < s->n_requests; i++)
        free(s->requests[i].op);
    for (size_t i = 0; i < s->n_groups; i++) {
        for (size_t j = 0; j < s->groups[i].n_partitions; j++)
            free(s->groups[i].partitions[j].topic);
        free(s->groups[i].group);
        free(s->groups[i].partitions);
    }
    free(s->topics);
    free(s->requests);
    free(s->groups);
    free(s);
}

/* A float64 (or any number) field; absent is 0 when optional. */
static int field_double(const msgpack_object *m, const char *key, bool required, double *out,
                        char *errbuf, size_t errbuf_len)
{
    const msgpack_object *v = stream_field_find(m, key);
    *out = 0;
    if (v == NULL) {
        if (!required)
            return 0;
        return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len, "missing field '%s'", key);
    }
    switch (v->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        *out = v->via.f64;
        return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        *out = (double)v->via.u64;
        return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *out = (double)v->via.i64;
        return 0;
    default:
        return stream__fail(STREAM_EBADREQ, errbuf, errbuf_len, "field '%s' is not a number", key);
    }
}

/* The array field `key` (required unless opt) allocated into *out, its
 * elements (maps) then read by the caller; *a is NULL when absent. */
static int field_array_alloc(const msgpack_object *m, const char *key, bool opt,
                             const msgpack_object **a, void **out, size_t elem, char *errbuf,
                             size_t errbuf_len)
{
    int rc = opt ? stream_field_array_opt(m, key, a, errbuf, errbuf_len)
                 : stream_field_array(m, key, a, errbuf, errbuf_len);
    if (rc < 0 || *a == NULL)
        return rc;
    *out = calloc((*a)->via.array.size ? (*a)->via.array.size : 1, elem);
    return *out ? 0 : STREAM_ENOMEM;
}

static int parse_partition(const msgpack_object *e, stream_stats_partition *p, char *errbuf,
                           size_t errbuf_len)
{
    int64_t part;
    int rc = stream_field_int(e, "partition", 0, INT32_MAX, &part, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_int(e, "size_bytes", -1, INT64_MAX, &p->size_bytes, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_int(e, "segments", -1, INT64_MAX, &p->segments, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_int(e, "log_start_offset", -1, INT64_MAX, &p->log_start_offset, errbuf,
                              errbuf_len);
    if (rc == 0)
        rc = stream_field_int(e, "log_end_offset", -1, INT64_MAX, &p->log_end_offset, errbuf,
                              errbuf_len);
    p->partition = (int32_t)part;
    return rc;
}

static int parse_topic(const msgpack_object *e, stream_stats_topic *t, char *errbuf,
                       size_t errbuf_len)
{
    const msgpack_object *a;
    int rc = stream__client_dup_field(e, "name", true, &t->name, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_uint(e, "records_in", UINT64_MAX, &t->records_in, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_uint(e, "bytes_in", UINT64_MAX, &t->bytes_in, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_uint(e, "bytes_out", UINT64_MAX, &t->bytes_out, errbuf, errbuf_len);
    if (rc == 0)
        rc = field_array_alloc(e, "partitions", false, &a, (void **)&t->partitions,
                               sizeof *t->partitions, errbuf, errbuf_len);
    for (uint32_t i = 0; rc == 0 && i < a->via.array.size; i++) {
        const msgpack_object *pe;
        rc = stream_elem_map(a, i, "partitions", &pe, errbuf, errbuf_len);
        if (rc == 0)
            rc = parse_partition(pe, &t->partitions[t->n_partitions++], errbuf, errbuf_len);
    }
    return rc;
}

static int parse_request(const msgpack_object *e, stream_stats_request *r, char *errbuf,
                         size_t errbuf_len)
{
    int rc = stream__client_dup_field(e, "op", true, &r->op, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_uint(e, "count", UINT64_MAX, &r->count, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_uint(e, "errors", UINT64_MAX, &r->errors, errbuf, errbuf_len);
    if (rc == 0)
        rc = field_double(e, "latency_seconds_sum", false, &r->latency_seconds_sum, errbuf,
                          errbuf_len);
    return rc;
}

static int parse_lag(const msgpack_object *e, stream_stats_lag *l, char *errbuf, size_t errbuf_len)
{
    int64_t part;
    int rc = stream__client_dup_field(e, "topic", true, &l->topic, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_int(e, "partition", 0, INT32_MAX, &part, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_int(e, "lag_records", INT64_MIN, INT64_MAX, &l->lag_records, errbuf,
                              errbuf_len);
    if (rc == 0)
        rc = field_double(e, "lag_seconds", false, &l->lag_seconds, errbuf, errbuf_len);
    l->partition = rc == 0 ? (int32_t)part : 0;
    return rc;
}

static int parse_group(const msgpack_object *e, stream_stats_group *g, char *errbuf,
                       size_t errbuf_len)
{
    const msgpack_object *a = NULL;
    int64_t gen = 0;
    int rc = stream__client_dup_field(e, "group", true, &g->group, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_uint(e, "members", UINT64_MAX, &g->members, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_int_opt(e, "generation", INT32_MIN, INT32_MAX, 0, &gen, errbuf,
                                  errbuf_len);
    g->generation = (int32_t)gen;
    if (rc == 0)
        rc = field_array_alloc(e, "partitions", true, &a, (void **)&g->partitions,
                               sizeof *g->partitions, errbuf, errbuf_len);
    for (uint32_t i = 0; rc == 0 && a && i < a->via.array.size; i++) {
        const msgpack_object *le;
        rc = stream_elem_map(a, i, "partitions", &le, errbuf, errbuf_len);
        if (rc == 0)
            rc = parse_lag(le, &g->partitions[g->n_partitions++], errbuf, errbuf_len);
    }
    return rc;
}

/* Counts the open connections per listener: `native` apart, the rest summed. */
static int parse_connections(const msgpack_object *root, stream_stats *s, char *errbuf,
                             size_t errbuf_len)
{
    const msgpack_object *a;
    int rc = stream_field_array_opt(root, "connections", &a, errbuf, errbuf_len);
    for (uint32_t i = 0; rc == 0 && a && i < a->via.array.size; i++) {
        const msgpack_object *e;
        const char *name;
        size_t len;
        uint64_t n;
        rc = stream_elem_map(a, i, "connections", &e, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream_field_str(e, "listener", &name, &len, errbuf, errbuf_len);
        if (rc == 0)
            rc = stream_field_uint(e, "count", UINT64_MAX, &n, errbuf, errbuf_len);
        if (rc < 0)
            break;
        if (len == 6 && memcmp(name, "native", 6) == 0)
            s->connections_native += n;
        else
            s->connections_other += n;
    }
    return rc;
}

static int stats_parse_fn(const msgpack_object *root, void *arg, char *errbuf, size_t errbuf_len)
{
    stream_stats *s = arg;
    const msgpack_object *a;
    int64_t node;
    int rc = stream_field_int(root, "node_id", -1, INT32_MAX, &node, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_uint(root, "time_ms", UINT64_MAX, &s->time_ms, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_uint_opt(root, "resident_memory_bytes", UINT64_MAX, 0,
                                   &s->resident_memory_bytes, errbuf, errbuf_len);
    if (rc == 0)
        rc = stream_field_uint_opt(root, "open_fds", UINT64_MAX, 0, &s->open_fds, errbuf,
                                   errbuf_len);
    if (rc == 0)
        rc = parse_connections(root, s, errbuf, errbuf_len);
    if (rc < 0)
        return rc;
    s->node_id = (int32_t)node;
    rc = field_array_alloc(root, "topics", false, &a, (void **)&s->topics, sizeof *s->topics,
                           errbuf, errbuf_len);
    for (uint32_t i = 0; rc == 0 && i < a->via.array.size; i++) {
        const msgpack_object *e;
        rc = stream_elem_map(a, i, "topics", &e, errbuf, errbuf_len);
        if (rc == 0)
            rc = parse_topic(e, &s->topics[s->n_topics++], errbuf, errbuf_len);
    }
    if (rc == 0)
        rc = field_array_alloc(root, "requests", true, &a, (void **)&s->requests,
                               sizeof *s->requests, errbuf, errbuf_len);
    for (uint32_t i = 0; rc == 0 && a && i < a->via.array.size; i++) {
        const msgpack_object *e;
        rc = stream_elem_map(a, i, "requests", &e, errbuf, errbuf_len);
        if (rc == 0)
            rc = parse_request(e, &s->requests[s->n_requests++], errbuf, errbuf_len);
    }
    if (rc == 0)
        rc = field_array_alloc(root, "groups", true, &a, (void **)&s->groups, sizeof *s->groups,
                               errbuf, errbuf_len);
    for (uint32_t i = 0; rc == 0 && a && i < a->via.array.size; i++) {
        const msgpack_object *e;
        rc = stream_elem_map(a, i, "groups", &e, errbuf, errbuf_len);
        if (rc == 0)
            rc = parse_group(e, &s->groups[s->n_groups++], errbuf, errbuf_len);
    }
    return rc;
}

int stream_stats_decode(const uint8_t *payload, size_t len, stream_stats **out, char *errbuf,
                        size_t errbuf_len)
{
    *out = NULL;
    stream_msg msg;
    stream_msg_init(&msg);
    int rc = stream_msg_parse(payload, len, &msg, errbuf, errbuf_len);
    stream_stats *s = rc == 0 ? calloc(1, sizeof *s) : NULL;
    if (rc == 0 && !s)
        rc = STREAM_ENOMEM;
    if (rc == 0)
        rc = stats_parse_fn(&msg.root, s, errbuf, errbuf_len);
    stream_msg_release(&msg);
    if (rc < 0) {
        stream_stats_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int stream_admin_stats(stream_client *c, int32_t node, int timeout_ms, stream_stats **out,
                       char *errbuf, size_t errbuf_len)
{
    *out = NULL;
    stream_stats *s = calloc(1, sizeof *s);
    if (!s)
        return STREAM_ENOMEM;
    stream__req_begin(c, STREAM_OP_STATS, 0);
    int rc = node < 0 ? stream__client_call(c, timeout_ms, stats_parse_fn, s, errbuf, errbuf_len)
                      : stream__client_call_node(c, node, timeout_ms, stats_parse_fn, s, errbuf,
                                                 errbuf_len);
    if (rc < 0) {
        stream_stats_free(s);
        return rc;
    }
    *out = s;
    return 0;
}
