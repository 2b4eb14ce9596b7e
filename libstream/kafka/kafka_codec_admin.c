/*
 * kafka_codec_admin.c - decoding the admin APIs' requests
 * (kafka_codec_admin.h), through kafka_codec.h's latching getters: a
 * truncated or lying frame ends as STREAM_EPROTO however deep it was, and
 * array counts are checked against the bytes left before anything is
 * allocated for them.
 */
#include <stdlib.h>
#include <string.h>

#include "kafka_codec_admin.h"
#include "stream/error.h"

bool stream__kafka_admin_api(int16_t key)
{
    switch (key) {
    case STREAM__KAFKA_CREATE_TOPICS:
    case STREAM__KAFKA_DELETE_TOPICS:
    case STREAM__KAFKA_CREATE_PARTITIONS:
    case STREAM__KAFKA_DESCRIBE_CONFIGS:
    case STREAM__KAFKA_ALTER_CONFIGS:
    case STREAM__KAFKA_INCREMENTAL_ALTER_CONFIGS:
    case STREAM__KAFKA_DESCRIBE_CLUSTER:
        return true;
    default:
        return false;
    }
}

/* Reads past an array of int32s (broker ids). */
static void skip_ids(stream_reader *rd, bool fl)
{
    int64_t n = stream__kafka_get_count(rd, fl);
    for (int64_t i = 0; i < n && rd->err == 0; i++)
        (void)stream__kafka_get_i32(rd);
}

/* CreateTopics' assignments: [partition_index, broker_ids, tags]; or
 * CreatePartitions' (nullable): [broker_ids, tags]. True when any. */
static bool get_assignments(stream_reader *rd, bool fl, bool with_index)
{
    int64_t n = stream__kafka_get_count(rd, fl);
    if (n < -1 || (with_index && n < 0))
        stream__kafka_fail(rd);
    for (int64_t i = 0; i < n && rd->err == 0; i++) {
        if (with_index)
            (void)stream__kafka_get_i32(rd);
        skip_ids(rd, fl);
        stream__kafka_skip_tags(rd, fl);
    }
    return n > 0;
}

/* One resource's settings: [name, (op), value] (with_value), or a
 * nullable array of names (DescribeConfigs' keys). */
static int get_configs(stream_reader *rd, stream__kafka_admin_request *req, size_t *cap,
                       stream__kafka_admin_resource *res, int16_t key, bool fl)
{
    bool names_only = key == STREAM__KAFKA_DESCRIBE_CONFIGS;
    int64_t n = stream__kafka_get_count(rd, fl);
    if (n < 0 && !names_only)
        stream__kafka_fail(rd);
    res->all_keys = n < 0;
    res->first = req->nconfigs;
    if (rd->err != 0 || n <= 0)
        return 0;
    if (stream__kafka_grow((void **)&req->configs, cap, req->nconfigs, (size_t)n,
                           sizeof(*req->configs)) != 0)
        return STREAM_ENOMEM;
    for (int64_t i = 0; i < n && rd->err == 0; i++) {
        stream__kafka_admin_config *c = &req->configs[req->nconfigs++];
        memset(c, 0, sizeof(*c));
        stream__kafka_get_name(rd, fl, &c->name, &c->name_len);
        if (names_only)
            continue; /* a bare string: no tags */
        if (key == STREAM__KAFKA_INCREMENTAL_ALTER_CONFIGS)
            c->op = stream__kafka_get_i8(rd);
        stream__kafka_get_string(rd, fl, &c->value, &c->value_len);
        stream__kafka_skip_tags(rd, fl);
    }
    res->count = req->nconfigs - res->first;
    return 0;
}

/* The resource list every admin API but DescribeCluster starts with. */
static int get_resources(stream_reader *rd, const stream__kafka_request *hdr,
                         stream__kafka_admin_request *req)
{
    int16_t key = hdr->api_key;
    bool fl = hdr->flexible;
    size_t rcap = 0, ccap = 0;
    int64_t n = stream__kafka_get_count(rd, fl);
    if (n < 0)
        stream__kafka_fail(rd);
    for (int64_t i = 0; i < n && rd->err == 0; i++) {
        if (stream__kafka_grow((void **)&req->res, &rcap, req->nres, 1, sizeof(*req->res)) != 0)
            return STREAM_ENOMEM;
        stream__kafka_admin_resource *r = &req->res[req->nres++];
        memset(r, 0, sizeof(*r));
        r->type = STREAM__KAFKA_RESOURCE_TOPIC;
        r->partitions = -1;
        r->replication_factor = -1;
        r->first = req->nconfigs;
        int rc = 0;
        switch (key) {
        case STREAM__KAFKA_CREATE_TOPICS:
            stream__kafka_get_name(rd, fl, &r->name, &r->name_len);
            r->partitions = stream__kafka_get_i32(rd);
            r->replication_factor = stream__kafka_get_i16(rd);
            r->assignments = get_assignments(rd, fl, true);
            rc = get_configs(rd, req, &ccap, r, key, fl);
            break;
        case STREAM__KAFKA_DELETE_TOPICS:
            /* A bare string per topic (v0-5): no tags. */
            stream__kafka_get_name(rd, fl, &r->name, &r->name_len);
            continue;
        case STREAM__KAFKA_CREATE_PARTITIONS:
            stream__kafka_get_name(rd, fl, &r->name, &r->name_len);
            r->partitions = stream__kafka_get_i32(rd);
            r->assignments = get_assignments(rd, fl, false);
            break;
        default: /* the config APIs */
            r->type = stream__kafka_get_i8(rd);
            stream__kafka_get_name(rd, fl, &r->name, &r->name_len);
            rc = get_configs(rd, req, &ccap, r, key, fl);
            break;
        }
        if (rc != 0)
            return rc;
        stream__kafka_skip_tags(rd, fl);
    }
    return 0;
}

int stream__kafka_admin_decode(const uint8_t *p, size_t len, const stream__kafka_request *hdr,
                               size_t body, stream__kafka_admin_request *req)
{
    memset(req, 0, sizeof(*req));
    if (!stream__kafka_admin_api(hdr->api_key))
        return STREAM_EUNKNOWNOP;
    const stream__kafka_api *api = stream__kafka_api_find(hdr->api_key);
    if (api == NULL)
        return STREAM_EUNKNOWNOP;
    int v = hdr->api_version;
    if (v < api->min_version || v > api->max_version)
        return STREAM_EUNSUPPORTED;
    bool fl = hdr->flexible;
    stream_reader rd;
    stream_reader_init(&rd, p, len);
    stream_skip(&rd, body);
    int rc = 0;
    req->timeout_ms = -1;
    switch (hdr->api_key) {
    case STREAM__KAFKA_CREATE_TOPICS:
        rc = get_resources(&rd, hdr, req);
        req->timeout_ms = stream__kafka_get_i32(&rd);
        if (v >= 1)
            req->validate_only = stream__kafka_get_i8(&rd) != 0;
        break;
    case STREAM__KAFKA_DELETE_TOPICS:
        rc = get_resources(&rd, hdr, req);
        req->timeout_ms = stream__kafka_get_i32(&rd);
        break;
    case STREAM__KAFKA_CREATE_PARTITIONS:
        rc = get_resources(&rd, hdr, req);
        req->timeout_ms = stream__kafka_get_i32(&rd);
        req->validate_only = stream__kafka_get_i8(&rd) != 0;
        break;
    case STREAM__KAFKA_DESCRIBE_CONFIGS:
        rc = get_resources(&rd, hdr, req);
        if (v >= 1)
            req->include_synonyms = stream__kafka_get_i8(&rd) != 0;
        if (v >= 3)
            req->include_documentation = stream__kafka_get_i8(&rd) != 0;
        break;
    case STREAM__KAFKA_ALTER_CONFIGS:
    case STREAM__KAFKA_INCREMENTAL_ALTER_CONFIGS:
        rc = get_resources(&rd, hdr, req);
        req->validate_only = stream__kafka_get_i8(&rd) != 0;
        break;
    case STREAM__KAFKA_DESCRIBE_CLUSTER:
        (void)stream__kafka_get_i8(&rd); /* include_cluster_authorized_operations */
        break;
    default:
        return STREAM_EUNKNOWNOP;
    }
    if (rc != 0)
        return rc;
    stream__kafka_skip_tags(&rd, fl);
    if (rd.err != 0 || stream_reader_left(&rd) != 0)
        return STREAM_EPROTO;
    return 0;
}

void stream__kafka_admin_release(stream__kafka_admin_request *req)
{
    free(req->res);
    free(req->configs);
    memset(req, 0, sizeof(*req));
}
