/*
 * kafka_codec_admin.h - the request bodies of Kafka's admin APIs the
 * listener answers (kafka_admin.c): CreateTopics, DeleteTopics,
 * CreatePartitions, DescribeConfigs, AlterConfigs, IncrementalAlterConfigs
 * and DescribeCluster, decoded into one plain struct. Pure functions over
 * bytes, as kafka_codec.h's. Not installed; prefix stream__kafka_admin_.
 *
 * Each request is a list of resources (topics, or a topic or broker with
 * its settings), each with a run of entries in configs[]:
 *
 *   CreateTopics       [name | num_partitions | replication_factor
 *                       | assignments [..] | configs [name | value]]
 *                      | timeout_ms | validate_only (v1+)
 *   DeleteTopics       [name] | timeout_ms
 *   CreatePartitions   [name | count | assignments [..] or null]
 *                      | timeout_ms | validate_only
 *   DescribeConfigs    [type | name | keys [name] or null]
 *                      | include_synonyms (v1+) | include_documentation (v3+)
 *   AlterConfigs       [type | name | configs [name | value]] | validate_only
 *   IncrementalAlterConfigs
 *                      [type | name | configs [name | op | value]]
 *                      | validate_only
 *   DescribeCluster    include_cluster_authorized_operations
 */
#ifndef STREAM_KAFKA_CODEC_ADMIN_H
#define STREAM_KAFKA_CODEC_ADMIN_H

#include "kafka_codec.h"

/* Resource types of the config APIs. */
enum {
    STREAM__KAFKA_RESOURCE_TOPIC = 2,
    STREAM__KAFKA_RESOURCE_BROKER = 4,
};

/* IncrementalAlterConfigs' operations. */
enum {
    STREAM__KAFKA_CONFIG_SET = 0,
    STREAM__KAFKA_CONFIG_DELETE = 1,
    STREAM__KAFKA_CONFIG_APPEND = 2,
    STREAM__KAFKA_CONFIG_SUBTRACT = 3,
};

/* One setting of a resource: a name, and what to do with it. */
typedef struct stream__kafka_admin_config {
    const char *name; /* borrowed from the frame */
    size_t name_len;
    const char *value; /* borrowed; NULL when null (DescribeConfigs: unused) */
    size_t value_len;
    int8_t op; /* IncrementalAlterConfigs: STREAM__KAFKA_CONFIG_*; else SET */
} stream__kafka_admin_config;

/* One topic or broker a request names. */
typedef struct stream__kafka_admin_resource {
    int8_t type;      /* config APIs: STREAM__KAFKA_RESOURCE_*; else TOPIC */
    const char *name; /* borrowed */
    size_t name_len;
    int32_t partitions;         /* CreateTopics: -1 the default; CreatePartitions: the count */
    int16_t replication_factor; /* CreateTopics: -1 the default */
    bool assignments;           /* CreateTopics, CreatePartitions: replicas placed by hand */
    bool all_keys;              /* DescribeConfigs: keys null, every setting */
    size_t first, count;        /* its entries in configs[] */
} stream__kafka_admin_resource;

/* A decoded admin request (the header is kafka_codec.h's). */
typedef struct stream__kafka_admin_request {
    int32_t timeout_ms;
    bool validate_only;
    bool include_synonyms, include_documentation; /* DescribeConfigs */
    size_t nres, nconfigs;
    stream__kafka_admin_resource *res;   /* owned */
    stream__kafka_admin_config *configs; /* owned */
} stream__kafka_admin_request;

/* True for the API keys decoded here. */
bool stream__kafka_admin_api(int16_t key);

/*
 * Decodes the body of an admin request whose header (hdr, from
 * stream__kafka_header_decode: key, version, flexibility) ends at offset
 * `body` of the frame p/len, into req, which the caller releases whatever
 * the result. Errors: STREAM_EUNKNOWNOP (not an admin API),
 * STREAM_EUNSUPPORTED (a version outside the table's range),
 * STREAM_EPROTO (malformed, or bytes left over), STREAM_ENOMEM.
 */
int stream__kafka_admin_decode(const uint8_t *p, size_t len, const stream__kafka_request *hdr,
                               size_t body, stream__kafka_admin_request *req);
/* Frees what decode allocated; req is then empty. */
void stream__kafka_admin_release(stream__kafka_admin_request *req);

#endif /* STREAM_KAFKA_CODEC_ADMIN_H */
