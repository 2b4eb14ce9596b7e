/*
 * test_kafka_codec.c - the Kafka listener's request decoders and response
 * primitives (libstream/kafka/kafka_codec.c, kafka_codec_groups.c for
 * the consumer-group APIs, kafka_codec_txn.c for the refused transactional
 * ones): requests built here byte by byte as Kafka's message definitions
 * lay them out, in plain and flexible
 * versions, decode to the fields they hold; versions outside the table,
 * unknown keys, truncation, hostile counts and trailing bytes are refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "kafka/kafka_codec.h"
#include "kafka/kafka_codec_admin.h"
#include "kafka/kafka_codec_groups.h"
#include "kafka/kafka_codec_txn.h"
#include "stream/buf.h"
#include "stream/error.h"

/* Starts a request: header v1 (or v2 with tags when flexible). */
static void header(stream_buf *b, int16_t key, int16_t version, bool flexible)
{
    stream_buf_reset(b);
    stream_buf_put_be16(b, (uint16_t)key);
    stream_buf_put_be16(b, (uint16_t)version);
    stream_buf_put_be32(b, 42);
    stream_buf_put_be16(b, 4);
    stream_buf_put(b, "kcat", 4);
    if (flexible)
        stream_buf_put_u8(b, 0);
}

static void str16(stream_buf *b, const char *s)
{
    stream_buf_put_be16(b, (uint16_t)strlen(s));
    stream_buf_put(b, s, strlen(s));
}

static void compact(stream_buf *b, const char *s)
{
    stream_buf_put_uvarint(b, strlen(s) + 1);
    stream_buf_put(b, s, strlen(s));
}

static void test_produce_v3_decodes_topics_partitions_and_records(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    header(&b, STREAM__KAFKA_PRODUCE, 3, false);
    stream_buf_put_be16(&b, 0xffff); /* transactional_id null */
    stream_buf_put_be16(&b, 0xffff); /* acks -1 */
    stream_buf_put_be32(&b, 1500);
    stream_buf_put_be32(&b, 2);
    str16(&b, "a");
    stream_buf_put_be32(&b, 1);
    stream_buf_put_be32(&b, 3);
    stream_buf_put_be32(&b, 5);
    stream_buf_put(&b, "12345", 5);
    str16(&b, "bb");
    stream_buf_put_be32(&b, 0);
    stream__kafka_request q;
    assert_int_equal(stream__kafka_request_decode(b.data, b.len, &q), 0);
    assert_int_equal(q.correlation_id, 42);
    assert_false(q.flexible);
    assert_int_equal(q.client_id_len, 4);
    assert_null(q.txn_id);
    assert_int_equal(q.acks, -1);
    assert_int_equal(q.timeout_ms, 1500);
    assert_int_equal(q.ntopics, 2);
    assert_int_equal(q.nparts, 1);
    assert_memory_equal(q.topics[0].name, "a", 1);
    assert_int_equal(q.topics[0].count, 1);
    assert_int_equal(q.topics[1].count, 0);
    assert_int_equal(q.parts[0].partition, 3);
    assert_int_equal(q.parts[0].records_len, 5);
    assert_memory_equal(q.parts[0].records, "12345", 5);
    stream__kafka_request_release(&q);
    stream_buf_release(&b);
}

static void test_flexible_metadata_skips_tags_and_reads_compact_strings(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    header(&b, STREAM__KAFKA_METADATA, 9, true);
    stream_buf_put_uvarint(&b, 3); /* two topics */
    compact(&b, "orders");
    stream_buf_put_u8(&b, 1); /* one tagged field ... */
    stream_buf_put_u8(&b, 7); /* ... tag 7 ... */
    stream_buf_put_u8(&b, 2); /* ... of two bytes, unknown: skipped */
    stream_buf_put(&b, "xy", 2);
    compact(&b, "x");
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, 0); /* allow_auto_topic_creation false */
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, 0);
    stream__kafka_request q;
    assert_int_equal(stream__kafka_request_decode(b.data, b.len, &q), 0);
    assert_true(q.flexible);
    assert_false(q.all_topics);
    assert_false(q.allow_auto_create);
    assert_int_equal(q.ntopics, 2);
    assert_int_equal(q.topics[0].name_len, 6);
    assert_memory_equal(q.topics[0].name, "orders", 6);
    assert_memory_equal(q.topics[1].name, "x", 1);
    stream__kafka_request_release(&q);

    /* Version 1 with a null array: every topic. */
    header(&b, STREAM__KAFKA_METADATA, 1, false);
    stream_buf_put_be32(&b, 0xffffffff);
    assert_int_equal(stream__kafka_request_decode(b.data, b.len, &q), 0);
    assert_true(q.all_topics);
    assert_true(q.allow_auto_create);
    stream__kafka_request_release(&q);
    stream_buf_release(&b);
}

static void test_fetch_v11_reads_offsets_and_limits(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    header(&b, STREAM__KAFKA_FETCH, 11, false);
    stream_buf_put_be32(&b, 0xffffffff);
    stream_buf_put_be32(&b, 500);
    stream_buf_put_be32(&b, 1);
    stream_buf_put_be32(&b, 1000000);
    stream_buf_put_u8(&b, 0);
    stream_buf_put_be32(&b, 0);
    stream_buf_put_be32(&b, 0xffffffff);
    stream_buf_put_be32(&b, 1);
    str16(&b, "t");
    stream_buf_put_be32(&b, 1);
    stream_buf_put_be32(&b, 2);
    stream_buf_put_be32(&b, 5);  /* current leader epoch */
    stream_buf_put_be64(&b, 77); /* fetch offset */
    stream_buf_put_be64(&b, 0);  /* log start */
    stream_buf_put_be32(&b, 4096);
    stream_buf_put_be32(&b, 0);
    str16(&b, "rack-1");
    stream__kafka_request q;
    assert_int_equal(stream__kafka_request_decode(b.data, b.len, &q), 0);
    assert_int_equal(q.replica_id, -1);
    assert_int_equal(q.max_wait_ms, 500);
    assert_int_equal(q.min_bytes, 1);
    assert_int_equal(q.max_bytes, 1000000);
    assert_int_equal(q.session_epoch, -1);
    assert_int_equal(q.parts[0].partition, 2);
    assert_int_equal(q.parts[0].current_epoch, 5);
    assert_int_equal(q.parts[0].offset, 77);
    assert_int_equal(q.parts[0].max_bytes, 4096);
    stream__kafka_request_release(&q);
    stream_buf_release(&b);
}

static void test_unknown_keys_and_versions_are_told_apart(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    stream__kafka_request q;
    header(&b, 999, 0, false);
    assert_int_equal(stream__kafka_request_decode(b.data, b.len, &q), STREAM_EUNKNOWNOP);
    stream__kafka_request_release(&q);
    /* UpdateFeatures is not answered: not in the table either. */
    header(&b, 57, 0, false);
    assert_int_equal(stream__kafka_request_decode(b.data, b.len, &q), STREAM_EUNKNOWNOP);
    stream__kafka_request_release(&q);
    header(&b, STREAM__KAFKA_PRODUCE, 2, false);
    assert_int_equal(stream__kafka_request_decode(b.data, b.len, &q), STREAM_EUNSUPPORTED);
    assert_int_equal(q.correlation_id, 42);
    stream__kafka_request_release(&q);
    /* ApiVersions at a version from the future: the header is plain. */
    header(&b, STREAM__KAFKA_API_VERSIONS, 9, false);
    assert_int_equal(stream__kafka_request_decode(b.data, b.len, &q), STREAM_EUNSUPPORTED);
    assert_int_equal(q.api_key, STREAM__KAFKA_API_VERSIONS);
    stream__kafka_request_release(&q);
    stream_buf_release(&b);
}

static void test_truncation_lying_counts_and_trailing_bytes_are_refused(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    stream__kafka_request q;
    header(&b, STREAM__KAFKA_LIST_OFFSETS, 1, false);
    stream_buf_put_be32(&b, 0xffffffff);
    stream_buf_put_be32(&b, 1);
    str16(&b, "t");
    stream_buf_put_be32(&b, 1);
    stream_buf_put_be32(&b, 0);
    stream_buf_put_be64(&b, (uint64_t)-2);
    assert_int_equal(stream__kafka_request_decode(b.data, b.len, &q), 0);
    assert_int_equal(q.parts[0].offset, -2);
    stream__kafka_request_release(&q);
    for (size_t cut = 0; cut < b.len; cut++) {
        assert_int_equal(stream__kafka_request_decode(b.data, cut, &q), STREAM_EPROTO);
        stream__kafka_request_release(&q);
    }
    stream_buf_put_u8(&b, 0);
    assert_int_equal(stream__kafka_request_decode(b.data, b.len, &q), STREAM_EPROTO);
    stream__kafka_request_release(&q);
    /* Two billion topics promised in a few bytes. */
    header(&b, STREAM__KAFKA_LIST_OFFSETS, 1, false);
    stream_buf_put_be32(&b, 0xffffffff);
    stream_buf_put_be32(&b, 0x7fffffff);
    assert_int_equal(stream__kafka_request_decode(b.data, b.len, &q), STREAM_EPROTO);
    stream__kafka_request_release(&q);
    stream_buf_release(&b);
}

/* Decodes an admin request built in b (header and body). */
static int admin_decode(const stream_buf *b, stream__kafka_admin_request *q)
{
    stream__kafka_request h;
    size_t body;
    int rc = stream__kafka_header_decode(b->data, b->len, &h, &body);
    if (rc != 0) {
        memset(q, 0, sizeof(*q));
        return rc;
    }
    return stream__kafka_admin_decode(b->data, b->len, &h, body, q);
}

static void test_create_topics_v4_decodes_counts_and_configs(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    header(&b, STREAM__KAFKA_CREATE_TOPICS, 4, false);
    stream_buf_put_be32(&b, 2);
    str16(&b, "orders");
    stream_buf_put_be32(&b, 3);
    stream_buf_put_be16(&b, 0xffff); /* replication_factor -1 */
    stream_buf_put_be32(&b, 0);      /* assignments */
    stream_buf_put_be32(&b, 2);
    str16(&b, "retention.ms");
    str16(&b, "1000");
    str16(&b, "segment.bytes");
    stream_buf_put_be16(&b, 0xffff); /* null value */
    str16(&b, "placed");
    stream_buf_put_be32(&b, 0xffffffff);
    stream_buf_put_be16(&b, 1);
    stream_buf_put_be32(&b, 1); /* one assignment: partition 0 on broker 7 */
    stream_buf_put_be32(&b, 0);
    stream_buf_put_be32(&b, 1);
    stream_buf_put_be32(&b, 7);
    stream_buf_put_be32(&b, 0);
    stream_buf_put_be32(&b, 5000);
    stream_buf_put_u8(&b, 1);
    stream__kafka_admin_request q;
    assert_int_equal(admin_decode(&b, &q), 0);
    assert_int_equal(q.nres, 2);
    assert_int_equal(q.timeout_ms, 5000);
    assert_true(q.validate_only);
    assert_memory_equal(q.res[0].name, "orders", 6);
    assert_int_equal(q.res[0].partitions, 3);
    assert_int_equal(q.res[0].replication_factor, -1);
    assert_false(q.res[0].assignments);
    assert_int_equal(q.res[0].count, 2);
    assert_memory_equal(q.configs[0].value, "1000", 4);
    assert_null(q.configs[1].value);
    assert_int_equal(q.res[1].partitions, -1);
    assert_true(q.res[1].assignments);
    assert_int_equal(q.res[1].count, 0);
    stream__kafka_admin_release(&q);
    for (size_t cut = 0; cut < b.len; cut++) {
        assert_int_equal(admin_decode(&(stream_buf){.data = b.data, .len = cut}, &q),
                         STREAM_EPROTO);
        stream__kafka_admin_release(&q);
    }
    stream_buf_release(&b);
}

static void test_flexible_config_apis_read_keys_ops_and_tags(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    stream__kafka_admin_request q;
    /* DescribeConfigs v4: a topic with keys, a broker with all (null). */
    header(&b, STREAM__KAFKA_DESCRIBE_CONFIGS, 4, true);
    stream_buf_put_uvarint(&b, 3);
    stream_buf_put_u8(&b, STREAM__KAFKA_RESOURCE_TOPIC);
    compact(&b, "t");
    stream_buf_put_uvarint(&b, 2);
    compact(&b, "retention.ms");
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, STREAM__KAFKA_RESOURCE_BROKER);
    compact(&b, "1");
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, 1); /* a tag: 5 bytes of 3 */
    stream_buf_put_u8(&b, 5);
    stream_buf_put_u8(&b, 3);
    stream_buf_put(&b, "abc", 3);
    stream_buf_put_u8(&b, 1);
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, 0);
    assert_int_equal(admin_decode(&b, &q), 0);
    assert_int_equal(q.nres, 2);
    assert_false(q.res[0].all_keys);
    assert_int_equal(q.res[0].count, 1);
    assert_memory_equal(q.configs[0].name, "retention.ms", 12);
    assert_true(q.res[1].all_keys);
    assert_int_equal(q.res[1].type, STREAM__KAFKA_RESOURCE_BROKER);
    assert_true(q.include_synonyms);
    assert_false(q.include_documentation);
    stream__kafka_admin_release(&q);
    /* IncrementalAlterConfigs v1: DELETE with a null value. */
    header(&b, STREAM__KAFKA_INCREMENTAL_ALTER_CONFIGS, 1, true);
    stream_buf_put_uvarint(&b, 2);
    stream_buf_put_u8(&b, STREAM__KAFKA_RESOURCE_TOPIC);
    compact(&b, "t");
    stream_buf_put_uvarint(&b, 2);
    compact(&b, "retention.ms");
    stream_buf_put_u8(&b, STREAM__KAFKA_CONFIG_DELETE);
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, 1); /* validate_only */
    stream_buf_put_u8(&b, 0);
    assert_int_equal(admin_decode(&b, &q), 0);
    assert_int_equal(q.configs[0].op, STREAM__KAFKA_CONFIG_DELETE);
    assert_null(q.configs[0].value);
    assert_true(q.validate_only);
    stream__kafka_admin_release(&q);
    /* A version past the table, and a lying count. */
    header(&b, STREAM__KAFKA_CREATE_TOPICS, 5, true);
    assert_int_equal(admin_decode(&b, &q), STREAM_EUNSUPPORTED);
    stream__kafka_admin_release(&q);
    header(&b, STREAM__KAFKA_DELETE_TOPICS, 1, false);
    stream_buf_put_be32(&b, 0x7fffffff);
    assert_int_equal(admin_decode(&b, &q), STREAM_EPROTO);
    stream__kafka_admin_release(&q);
    stream_buf_release(&b);
}

static void test_response_primitives_write_kafka_layouts(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    size_t start = stream__kafka_response_start(&b, 7, true);
    stream__kafka_put_string(&b, true, "ab", 2);
    stream__kafka_put_string(&b, true, NULL, 0);
    stream__kafka_put_string(&b, false, NULL, 0);
    stream__kafka_put_array_len(&b, true, 0);
    stream__kafka_put_array_len(&b, false, 2);
    stream__kafka_put_tags(&b, false);
    stream__kafka_put_tags(&b, true);
    stream__kafka_response_finish(&b, start, 100);
    static const uint8_t want[] = {0,   0, 0,    117,  0, 0, 0, 7, 0, 3, 'a',
                                   'b', 0, 0xff, 0xff, 1, 0, 0, 0, 2, 0};
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.data, want, sizeof want);
    stream_buf_release(&b);
}

/* A JoinGroup v5 (plain) or v7 (flexible) of member "m" in group "g" with
 * two protocols. */
static void join_group(stream_buf *b, int version)
{
    bool fl = version >= 6;
    header(b, STREAM__KAFKA_JOIN_GROUP, (int16_t)version, fl);
    void (*str)(stream_buf *, const char *) = fl ? compact : str16;
    str(b, "g");
    stream_buf_put_be32(b, 10000);
    stream_buf_put_be32(b, 60000);
    str(b, "m");
    if (fl)
        stream_buf_put_u8(b, 0); /* group_instance_id: null */
    else
        stream_buf_put_be16(b, 0xffff);
    str(b, "consumer");
    if (fl)
        stream_buf_put_uvarint(b, 3);
    else
        stream_buf_put_be32(b, 2);
    str(b, "range");
    if (fl)
        stream_buf_put_uvarint(b, 4);
    else
        stream_buf_put_be32(b, 3);
    stream_buf_put(b, "abc", 3);
    if (fl)
        stream_buf_put_u8(b, 0);
    str(b, "roundrobin");
    if (fl)
        stream_buf_put_u8(b, 0); /* metadata: null, read as empty */
    else
        stream_buf_put_be32(b, 0xffffffff);
    if (fl) {
        stream_buf_put_u8(b, 0);
        stream_buf_put_u8(b, 0);
    }
}

static void test_join_group_plain_and_flexible_decode_the_same(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    for (int version = 5; version <= 7; version += 2) {
        join_group(&b, version);
        stream__kafka_group_request q;
        assert_int_equal(stream__kafka_group_decode(b.data, b.len, &q), 0);
        assert_int_equal(q.hdr.correlation_id, 42);
        assert_int_equal(q.hdr.flexible, version >= 6);
        assert_memory_equal(q.group.s, "g", 1);
        assert_int_equal(q.session_timeout_ms, 10000);
        assert_int_equal(q.rebalance_timeout_ms, 60000);
        assert_memory_equal(q.member_id.s, "m", 1);
        assert_null(q.instance_id.s);
        assert_int_equal(q.protocol_type.len, 8);
        assert_int_equal(q.nblobs, 2);
        assert_int_equal(q.blobs[0].name.len, 5);
        assert_int_equal(q.blobs[0].len, 3);
        assert_memory_equal(q.blobs[0].bytes, "abc", 3);
        assert_non_null(q.blobs[1].bytes);
        assert_int_equal(q.blobs[1].len, 0);
        stream__kafka_group_release(&q);
        /* Cut anywhere, or with a byte more: refused. */
        for (size_t cut = 0; cut < b.len; cut++) {
            assert_int_not_equal(stream__kafka_group_decode(b.data, cut, &q), 0);
            stream__kafka_group_release(&q);
        }
        stream_buf_put_u8(&b, 0);
        assert_int_equal(stream__kafka_group_decode(b.data, b.len, &q), STREAM_EPROTO);
        stream__kafka_group_release(&q);
    }
    stream_buf_release(&b);
}

static void test_offset_commit_and_fetch_read_topics_partitions_and_groups(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    stream__kafka_group_request q;
    /* OffsetCommit v2: generation, member, retention time, one partition. */
    header(&b, STREAM__KAFKA_OFFSET_COMMIT, 2, false);
    str16(&b, "g");
    stream_buf_put_be32(&b, 3);
    str16(&b, "m");
    stream_buf_put_be64(&b, (uint64_t)-1);
    stream_buf_put_be32(&b, 1);
    str16(&b, "t");
    stream_buf_put_be32(&b, 1);
    stream_buf_put_be32(&b, 2);
    stream_buf_put_be64(&b, 99);
    str16(&b, "meta");
    assert_int_equal(stream__kafka_group_decode(b.data, b.len, &q), 0);
    assert_int_equal(q.generation, 3);
    assert_int_equal(q.ntopics, 1);
    assert_int_equal(q.noffsets, 1);
    assert_int_equal(q.topics[0].count, 1);
    assert_int_equal(q.offsets[0].partition, 2);
    assert_int_equal(q.offsets[0].offset, 99);
    assert_memory_equal(q.offsets[0].metadata.s, "meta", 4);
    assert_int_equal(q.offsets[0].leader_epoch, -1); /* v2 has none */
    stream__kafka_group_release(&q);
    /* OffsetCommit v6: the partition's committed_leader_epoch is read. */
    header(&b, STREAM__KAFKA_OFFSET_COMMIT, 6, false);
    str16(&b, "g");
    stream_buf_put_be32(&b, 3);
    str16(&b, "m");
    stream_buf_put_be32(&b, 1);
    str16(&b, "t");
    stream_buf_put_be32(&b, 1);
    stream_buf_put_be32(&b, 2);
    stream_buf_put_be64(&b, 99);
    stream_buf_put_be32(&b, 7);
    str16(&b, "");
    assert_int_equal(stream__kafka_group_decode(b.data, b.len, &q), 0);
    assert_int_equal(q.offsets[0].leader_epoch, 7);
    stream__kafka_group_release(&q);
    /* OffsetFetch v7, flexible: null topics asks for all; one entry. */
    header(&b, STREAM__KAFKA_OFFSET_FETCH, 7, true);
    compact(&b, "g");
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, 1);
    stream_buf_put_u8(&b, 0);
    assert_int_equal(stream__kafka_group_decode(b.data, b.len, &q), 0);
    assert_int_equal(q.nentries, 1);
    assert_true(q.entries[0].all_topics);
    assert_memory_equal(q.group.s, "g", 1);
    stream__kafka_group_release(&q);
    /* OffsetFetch v1: null topics were not allowed yet. */
    header(&b, STREAM__KAFKA_OFFSET_FETCH, 1, false);
    str16(&b, "g");
    stream_buf_put_be32(&b, 0xffffffff);
    assert_int_equal(stream__kafka_group_decode(b.data, b.len, &q), STREAM_EPROTO);
    stream__kafka_group_release(&q);
    /* OffsetFetch v8: two groups, the second with a topic of two partitions. */
    header(&b, STREAM__KAFKA_OFFSET_FETCH, 8, true);
    stream_buf_put_uvarint(&b, 3);
    compact(&b, "g");
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, 0);
    compact(&b, "h");
    stream_buf_put_uvarint(&b, 2);
    compact(&b, "t");
    stream_buf_put_uvarint(&b, 3);
    stream_buf_put_be32(&b, 0);
    stream_buf_put_be32(&b, 1);
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, 0);
    assert_int_equal(stream__kafka_group_decode(b.data, b.len, &q), 0);
    assert_int_equal(q.nentries, 2);
    assert_true(q.entries[0].all_topics);
    assert_false(q.entries[1].all_topics);
    assert_int_equal(q.entries[1].first, 0);
    assert_int_equal(q.entries[1].count, 1);
    assert_int_equal(q.topics[0].count, 2);
    assert_int_equal(q.offsets[1].partition, 1);
    stream__kafka_group_release(&q);
    stream_buf_release(&b);
}

static void test_leave_group_batches_and_foreign_keys(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    stream__kafka_group_request q;
    /* LeaveGroup v3: a batch of members, each with an instance id. */
    header(&b, STREAM__KAFKA_LEAVE_GROUP, 3, false);
    str16(&b, "g");
    stream_buf_put_be32(&b, 2);
    str16(&b, "m1");
    stream_buf_put_be16(&b, 0xffff);
    str16(&b, "m2");
    str16(&b, "i2");
    assert_int_equal(stream__kafka_group_decode(b.data, b.len, &q), 0);
    assert_int_equal(q.nentries, 2);
    assert_memory_equal(q.entries[1].name.s, "m2", 2);
    assert_memory_equal(q.entries[1].instance_id.s, "i2", 2);
    assert_null(q.entries[0].instance_id.s);
    stream__kafka_group_release(&q);
    /* A lying count. */
    header(&b, STREAM__KAFKA_LEAVE_GROUP, 3, false);
    str16(&b, "g");
    stream_buf_put_be32(&b, 0x7fffffff);
    assert_int_equal(stream__kafka_group_decode(b.data, b.len, &q), STREAM_EPROTO);
    stream__kafka_group_release(&q);
    /* Not a group API; a version past the table's. */
    header(&b, STREAM__KAFKA_METADATA, 1, false);
    assert_int_equal(stream__kafka_group_decode(b.data, b.len, &q), STREAM_EUNKNOWNOP);
    stream__kafka_group_release(&q);
    header(&b, STREAM__KAFKA_HEARTBEAT, 99, false);
    assert_int_equal(stream__kafka_group_decode(b.data, b.len, &q), STREAM_EUNSUPPORTED);
    assert_int_equal(q.hdr.api_key, STREAM__KAFKA_HEARTBEAT);
    stream__kafka_group_release(&q);
    assert_true(stream__kafka_group_api(STREAM__KAFKA_DELETE_GROUPS));
    assert_false(stream__kafka_group_api(STREAM__KAFKA_FETCH));
    stream_buf_release(&b);
}

static void test_txn_apis_decode_what_their_refusal_echoes(void **state)
{
    stream_buf b = STREAM_BUF_INIT;
    stream__kafka_txn_request q;
    /* AddPartitionsToTxn v1: one transaction, a topic of two partitions. */
    header(&b, STREAM__KAFKA_ADD_PARTITIONS_TO_TXN, 1, false);
    str16(&b, "tx");
    stream_buf_put_be64(&b, 7);
    stream_buf_put_be16(&b, 0);
    stream_buf_put_be32(&b, 1);
    str16(&b, "orders");
    stream_buf_put_be32(&b, 2);
    stream_buf_put_be32(&b, 3);
    stream_buf_put_be32(&b, 5);
    assert_int_equal(stream__kafka_txn_decode(b.data, b.len, &q), 0);
    assert_int_equal(q.ntxns, 1);
    assert_memory_equal(q.txns[0].id, "tx", 2);
    assert_int_equal(q.txns[0].producer_id, 7);
    assert_int_equal(q.txns[0].count, 1);
    assert_int_equal(q.topics[0].count, 2);
    assert_memory_equal(q.topics[0].name, "orders", 6);
    assert_int_equal(q.parts[1], 5);
    stream__kafka_txn_release(&q);
    /* TxnOffsetCommit v3 (flexible): a null instance id, offsets read past. */
    header(&b, STREAM__KAFKA_TXN_OFFSET_COMMIT, 3, true);
    compact(&b, "tx");
    compact(&b, "g");
    stream_buf_put_be64(&b, 7);
    stream_buf_put_be16(&b, 0);
    stream_buf_put_be32(&b, 1);
    compact(&b, "m");
    stream_buf_put_u8(&b, 0); /* group_instance_id: null */
    stream_buf_put_uvarint(&b, 2);
    compact(&b, "orders");
    stream_buf_put_uvarint(&b, 2);
    stream_buf_put_be32(&b, 4);
    stream_buf_put_be64(&b, 100);
    stream_buf_put_be32(&b, 0xffffffff);
    compact(&b, "meta");
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, 0);
    stream_buf_put_u8(&b, 0);
    assert_int_equal(stream__kafka_txn_decode(b.data, b.len, &q), 0);
    assert_int_equal(q.nparts, 1);
    assert_int_equal(q.parts[0], 4);
    stream__kafka_txn_release(&q);
    /* DescribeTransactions: ids as bare compact strings. */
    header(&b, STREAM__KAFKA_DESCRIBE_TRANSACTIONS, 0, true);
    stream_buf_put_uvarint(&b, 3);
    compact(&b, "a");
    compact(&b, "bb");
    stream_buf_put_u8(&b, 0);
    assert_int_equal(stream__kafka_txn_decode(b.data, b.len, &q), 0);
    assert_int_equal(q.ntxns, 2);
    assert_int_equal(q.txns[1].id_len, 2);
    stream__kafka_txn_release(&q);
    /* Trailing bytes, a lying count, a version past the table's. */
    stream_buf_put_u8(&b, 9);
    assert_int_equal(stream__kafka_txn_decode(b.data, b.len, &q), STREAM_EPROTO);
    stream__kafka_txn_release(&q);
    header(&b, STREAM__KAFKA_WRITE_TXN_MARKERS, 0, false);
    stream_buf_put_be32(&b, 0x7fffffff);
    assert_int_equal(stream__kafka_txn_decode(b.data, b.len, &q), STREAM_EPROTO);
    stream__kafka_txn_release(&q);
    header(&b, STREAM__KAFKA_END_TXN, 6, false);
    assert_int_equal(stream__kafka_txn_decode(b.data, b.len, &q), STREAM_EUNSUPPORTED);
    stream__kafka_txn_release(&q);
    /* Not listed by ApiVersions, but found (flexibility, ranges). */
    const stream__kafka_api *api = stream__kafka_api_find(STREAM__KAFKA_LIST_TRANSACTIONS);
    assert_non_null(api);
    assert_true(api->refused);
    assert_false(stream__kafka_api_find(STREAM__KAFKA_PRODUCE)->refused);
    assert_false(stream__kafka_txn_api(STREAM__KAFKA_INIT_PRODUCER_ID));
    stream_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_produce_v3_decodes_topics_partitions_and_records),
        cmocka_unit_test(test_flexible_metadata_skips_tags_and_reads_compact_strings),
        cmocka_unit_test(test_fetch_v11_reads_offsets_and_limits),
        cmocka_unit_test(test_unknown_keys_and_versions_are_told_apart),
        cmocka_unit_test(test_truncation_lying_counts_and_trailing_bytes_are_refused),
        cmocka_unit_test(test_response_primitives_write_kafka_layouts),
        cmocka_unit_test(test_create_topics_v4_decodes_counts_and_configs),
        cmocka_unit_test(test_flexible_config_apis_read_keys_ops_and_tags),
        cmocka_unit_test(test_join_group_plain_and_flexible_decode_the_same),
        cmocka_unit_test(test_offset_commit_and_fetch_read_topics_partitions_and_groups),
        cmocka_unit_test(test_leave_group_batches_and_foreign_keys),
        cmocka_unit_test(test_txn_apis_decode_what_their_refusal_echoes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
