/*
 * kafka_codec.h - Kafka's wire protocol, the part the Kafka listener
 * (kafka.c) speaks: the request header, the request bodies of the APIs it
 * answers, decoded into one plain struct, and the primitives its responses
 * are written with. Pure functions over bytes: no broker, no loop (the
 * fuzz target and the unit tests call them directly). Not installed;
 * prefix stream__kafka_.
 *
 * A Kafka frame (the 4-byte big-endian size is the broker's framing):
 *
 *   request header   api_key int16 | api_version int16 | correlation_id int32
 *                    | client_id nullable string (int16 length, always)
 *                    | tagged fields (flexible versions only)
 *   body             the API's fields, in the version's layout
 *
 * Flexible versions (KIP-482) write strings, bytes and arrays "compact"
 * (unsigned varint length + 1; 0 is null) and end every struct with tagged
 * fields (an unsigned varint count, then tag, size, bytes each). A reader
 * skips tags it does not know. The response header is correlation_id, plus
 * tagged fields in flexible versions - except ApiVersions', which is always
 * the plain one so that a client can read the answer to a version it
 * guessed.
 *
 * Field layouts follow Kafka's own message definitions
 * (clients/src/main/resources/common/message/<Api>{Request,Response}.json).
 */
#ifndef STREAM_KAFKA_CODEC_H
#define STREAM_KAFKA_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/kafka_error.h"
#include "stream/buf.h"

/* The API keys of the APIs answered. */
enum {
    STREAM__KAFKA_PRODUCE = 0,
    STREAM__KAFKA_FETCH = 1,
    STREAM__KAFKA_LIST_OFFSETS = 2,
    STREAM__KAFKA_METADATA = 3,
    STREAM__KAFKA_OFFSET_COMMIT = 8,
    STREAM__KAFKA_OFFSET_FETCH = 9,
    STREAM__KAFKA_FIND_COORDINATOR = 10,
    STREAM__KAFKA_JOIN_GROUP = 11,
    STREAM__KAFKA_HEARTBEAT = 12,
    STREAM__KAFKA_LEAVE_GROUP = 13,
    STREAM__KAFKA_SYNC_GROUP = 14,
    STREAM__KAFKA_DESCRIBE_GROUPS = 15,
    STREAM__KAFKA_LIST_GROUPS = 16,
    STREAM__KAFKA_API_VERSIONS = 18,
    STREAM__KAFKA_CREATE_TOPICS = 19,
    STREAM__KAFKA_DELETE_TOPICS = 20,
    STREAM__KAFKA_INIT_PRODUCER_ID = 22,
    STREAM__KAFKA_OFFSET_FOR_LEADER_EPOCH = 23,
    STREAM__KAFKA_ADD_PARTITIONS_TO_TXN = 24,
    STREAM__KAFKA_ADD_OFFSETS_TO_TXN = 25,
    STREAM__KAFKA_END_TXN = 26,
    STREAM__KAFKA_WRITE_TXN_MARKERS = 27,
    STREAM__KAFKA_TXN_OFFSET_COMMIT = 28,
    STREAM__KAFKA_DESCRIBE_CONFIGS = 32,
    STREAM__KAFKA_ALTER_CONFIGS = 33,
    STREAM__KAFKA_CREATE_PARTITIONS = 37,
    STREAM__KAFKA_DELETE_GROUPS = 42,
    STREAM__KAFKA_INCREMENTAL_ALTER_CONFIGS = 44,
    STREAM__KAFKA_DESCRIBE_CLUSTER = 60,
    STREAM__KAFKA_DESCRIBE_TRANSACTIONS = 65,
    STREAM__KAFKA_LIST_TRANSACTIONS = 66,
};

/* One API answered: its key, the versions and the first flexible
 * version. ApiVersions lists exactly these ranges, but for the APIs that
 * are only refused (`refused`: the transactional ones, answered with an
 * error in every version Kafka defines, kafka_txn.c): a client that reads
 * ApiVersions then knows it may not use them. */
typedef struct stream__kafka_api {
    int16_t key;
    int16_t min_version, max_version;
    int16_t flexible_from;
    const char *name;
    bool refused; /* answered with an error only; not listed by ApiVersions */
} stream__kafka_api;

/* The table of APIs answered, in key order; *n gets its length. */
const stream__kafka_api *stream__kafka_apis(size_t *n);
/* The API of `key`, or NULL when it is not answered. */
const stream__kafka_api *stream__kafka_api_find(int16_t key);

/* One topic of a request, its partitions a run of the request's parts. */
typedef struct stream__kafka_topic {
    const char *name; /* borrowed from the frame; NULL when null (Metadata v10+) */
    size_t name_len;
    size_t first, count; /* its entries in parts[] */
} stream__kafka_topic;

/* One partition of a request; which fields mean something depends on the
 * API (the others are 0). */
typedef struct stream__kafka_part {
    int32_t partition;
    int64_t offset;         /* Fetch: fetch offset; ListOffsets: timestamp */
    int32_t max_bytes;      /* Fetch: the partition's limit */
    int32_t current_epoch;  /* Fetch, ListOffsets, OffsetForLeaderEpoch: -1 unknown */
    int32_t leader_epoch;   /* OffsetForLeaderEpoch: the epoch asked about */
    const uint8_t *records; /* Produce: borrowed from the frame; NULL when null */
    size_t records_len;
} stream__kafka_part;

/* A decoded request. Everything borrowed points into the frame. */
typedef struct stream__kafka_request {
    /* header */
    int16_t api_key, api_version;
    int32_t correlation_id;
    bool flexible;         /* the version is flexible (compact encodings, tags) */
    const char *client_id; /* borrowed; NULL when null */
    size_t client_id_len;
    /* body */
    int16_t acks;       /* Produce */
    int32_t timeout_ms; /* Produce; InitProducerId: transaction timeout */
    const char *txn_id; /* Produce, InitProducerId: transactional id, NULL if null */
    size_t txn_id_len;
    int32_t replica_id; /* Fetch, ListOffsets, OffsetForLeaderEpoch: -1 for consumers */
    int32_t max_wait_ms, min_bytes, max_bytes; /* Fetch */
    int8_t isolation_level;                    /* Fetch, ListOffsets */
    int32_t session_id, session_epoch;         /* Fetch v7+ */
    bool all_topics;        /* Metadata: every topic (a null or, v0, empty list) */
    bool allow_auto_create; /* Metadata v4+ (true before) */
    const char *key;        /* FindCoordinator: the group or transactional id */
    size_t key_len;
    int8_t key_type;        /* FindCoordinator v1+: 0 group, 1 transaction */
    int64_t producer_id;    /* InitProducerId v3+: -1 */
    int16_t producer_epoch; /* InitProducerId v3+: -1 */
    size_t ntopics, nparts;
    stream__kafka_topic *topics; /* owned (stream__kafka_request_release) */
    stream__kafka_part *parts;   /* owned */
} stream__kafka_request;

/* Decodes only the request header of a frame: enough to answer or refuse
 * it. 0, or STREAM_EPROTO (too short). *body gets the offset of the body
 * (for a flexible version once its header tags are skipped; STREAM_EPROTO
 * when those are malformed). The version's flexibility is taken from the
 * table; an API not in it is read as not flexible. */
int stream__kafka_header_decode(const uint8_t *p, size_t len, stream__kafka_request *req,
                                size_t *body);

/*
 * Decodes a whole request (header and body) of an API and version in the
 * table into req, which the caller releases whatever the result.
 * Errors: STREAM_EUNKNOWNOP (an API not answered, or one whose body is
 * decoded elsewhere: the group APIs, kafka_codec_groups.h), STREAM_EUNSUPPORTED (a
 * version outside its range: the header fields are set), STREAM_EPROTO
 * (malformed: a length past the end, a negative count, bytes left over),
 * STREAM_ENOMEM.
 */
int stream__kafka_request_decode(const uint8_t *p, size_t len, stream__kafka_request *req);
/* Frees what decode allocated; req is then empty. */
void stream__kafka_request_release(stream__kafka_request *req);

/* ---- writing responses (into a stream_buf; errors latch in its oom) ---- */

/* A string: compact (uvarint length + 1) when flexible, else int16
 * length; NULL s writes null (-1 / 0). */
void stream__kafka_put_string(stream_buf *b, bool flexible, const char *s, size_t len);
/* An array's length n (compact: n + 1). */
void stream__kafka_put_array_len(stream_buf *b, bool flexible, size_t n);
/* Bytes' length n (compact: n + 1; else int32); the bytes follow. */
void stream__kafka_put_bytes_len(stream_buf *b, bool flexible, size_t n);
/* An empty tagged-field section, when flexible. */
void stream__kafka_put_tags(stream_buf *b, bool flexible);
/* Starts a response frame: the size placeholder, correlation id, and the
 * header's tags when header_flexible. Returns where the frame starts. */
size_t stream__kafka_response_start(stream_buf *b, int32_t correlation_id, bool header_flexible);
/* Patches the frame's size (counting extra bytes sent after b's, e.g.
 * file pieces). */
void stream__kafka_response_finish(stream_buf *b, size_t start, size_t extra);
/* Ends a response body: its tags when flexible, then the frame's size. */
void stream__kafka_response_end(stream_buf *b, size_t start, bool flexible);

/* ---- reading, for the other decoders (kafka_codec_admin.c, kafka_codec_groups.c) ----
 * The getters of the decoders above: each checks what remains and latches
 * the first failure in rd->err (then returns 0 / NULL). */

int8_t stream__kafka_get_i8(stream_reader *rd);
int16_t stream__kafka_get_i16(stream_reader *rd);
int32_t stream__kafka_get_i32(stream_reader *rd);
int64_t stream__kafka_get_i64(stream_reader *rd);
/* Nullable bytes (compact, or an int32 length); *p NULL for null. */
void stream__kafka_get_bytes(stream_reader *rd, bool flexible, const uint8_t **p, size_t *len);
/* A nullable string (compact when flexible); *s NULL for null. */
void stream__kafka_get_string(stream_reader *rd, bool flexible, const char **s, size_t *len);
/* A string that may not be null. */
void stream__kafka_get_name(stream_reader *rd, bool flexible, const char **s, size_t *len);
/* An array's count: -1 for null, else no more than the bytes left. */
int64_t stream__kafka_get_count(stream_reader *rd, bool flexible);
/* An array's count that may not be null: a null latches a failure; 0 then. */
size_t stream__kafka_get_n(stream_reader *rd, bool flexible);
/* Room for n more elements of elem bytes in *arr (*cap of them, `used`
 * taken), grown by doubling: 0 or STREAM_ENOMEM (*arr untouched). For the
 * decoders' arrays, whose counts were checked against the bytes left. */
int stream__kafka_grow(void **arr, size_t *cap, size_t used, size_t n, size_t elem);
/* Skips a tagged-field section when flexible. */
void stream__kafka_skip_tags(stream_reader *rd, bool flexible);
/* Latches a failure (a value out of its range). */
void stream__kafka_fail(stream_reader *rd);
/* Decodes the header of frame p (len bytes) into req and sets rd at its
 * body: 0, or STREAM_EPROTO (a short header), STREAM_EUNKNOWNOP (an API not
 * in the table), STREAM_EUNSUPPORTED (a version outside its range). */
int stream__kafka_body_begin(const uint8_t *p, size_t len, stream__kafka_request *req,
                             stream_reader *rd);
/* After the body's last field: 0, or STREAM_EPROTO when a read failed or
 * bytes are left over (a request of another shape). */
int stream__kafka_body_end(const stream_reader *rd);
/* A whole frame of a family of APIs (those is_api() takes): the header
 * into *hdr, then the body through body(rd, arg), then body_end. Errors as
 * stream__kafka_request_decode's (STREAM_EUNKNOWNOP for an API outside the
 * family), or body's. */
int stream__kafka_family_decode(const uint8_t *p, size_t len, stream__kafka_request *hdr,
                                bool (*is_api)(int16_t key),
                                int (*body)(stream_reader *rd, void *arg), void *arg);

#endif /* STREAM_KAFKA_CODEC_H */
