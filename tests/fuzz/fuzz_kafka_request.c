/*
 * fuzz_kafka_request.c - the Kafka listener's request decoders
 * (libstream/kafka/kafka_codec.h, kafka_codec_admin.h for the admin APIs
 * and kafka_codec_groups.h for the consumer-group APIs), on every API key
 * and version it answers and on raw frames.
 *
 * Input: byte 0 chooses the mode.
 *   bit 7 set    the rest is a whole frame (header and body), as a client
 *                sends it after the 4-byte size
 *   bit 7 clear  byte 0 picks an API of the table and byte 1 a version
 *                (from its lowest to one past its highest); a request header
 *                for them is written here and the rest is the body, so
 *                every API and version is reached at once
 *
 * Properties checked:
 *   - decode returns only 0, EUNKNOWNOP, EUNSUPPORTED, EPROTO or ENOMEM;
 *   - the header fields are the frame's first bytes, whatever the result;
 *   - on 0 the API is in the table and the version in its range; on
 *     EUNSUPPORTED it is in the table and the version outside;
 *   - every topic's partitions lie inside the decoded parts; every borrowed
 *     name, client id and record run lies inside the frame (each byte is
 *     read, so ASan sees any that does not);
 *   - the admin APIs likewise: every resource's configs lie inside the
 *     decoded configs, every name and value inside the frame;
 *   - a group API's frame goes to the group decoder (the listener's
 *     dispatch), with the same properties over its strings, blobs, entries
 *     and offsets;
 *   - a transactional API's frame goes to kafka_codec_txn.c: every
 *     transaction's topics lie inside the decoded topics, every topic's
 *     partitions inside the decoded partitions, every id and name inside
 *     the frame.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "kafka/kafka_codec.h"
#include "kafka/kafka_codec_admin.h"
#include "kafka/kafka_codec_groups.h"
#include "kafka/kafka_codec_txn.h"
#include "stream/error.h"

static volatile uint8_t sink;

/* Reads every byte of a borrowed run and checks it lies in the frame. */
static void touch(const uint8_t *frame, size_t len, const void *p, size_t n)
{
    if (p == NULL)
        return;
    const uint8_t *b = p;
    FUZZ_CHECK(b >= frame && n <= len && b - frame <= (ptrdiff_t)(len - n));
    for (size_t i = 0; i < n; i++)
        sink ^= b[i];
}

/* An admin API's request: decoded by kafka_codec_admin.c. */
static void check_admin(const uint8_t *frame, size_t len, const stream__kafka_request *hdr,
                        size_t body)
{
    stream__kafka_admin_request q;
    int rc = stream__kafka_admin_decode(frame, len, hdr, body, &q);
    FUZZ_CHECK_MSG(rc == 0 || rc == STREAM_EUNSUPPORTED || rc == STREAM_EPROTO ||
                       rc == STREAM_ENOMEM,
                   "rc %d", rc);
    const stream__kafka_api *api = stream__kafka_api_find(hdr->api_key);
    FUZZ_CHECK(api != NULL);
    bool in_range = hdr->api_version >= api->min_version && hdr->api_version <= api->max_version;
    if (rc == 0 || rc == STREAM_EUNSUPPORTED)
        FUZZ_CHECK(in_range == (rc == 0));
    if (rc == 0) {
        for (size_t i = 0; i < q.nres; i++) {
            const stream__kafka_admin_resource *r = &q.res[i];
            touch(frame, len, r->name, r->name_len);
            FUZZ_CHECK(r->first <= q.nconfigs && r->count <= q.nconfigs - r->first);
        }
        for (size_t j = 0; j < q.nconfigs; j++) {
            touch(frame, len, q.configs[j].name, q.configs[j].name_len);
            touch(frame, len, q.configs[j].value, q.configs[j].value_len);
        }
    }
    stream__kafka_admin_release(&q);
}

static void touch_str(const uint8_t *frame, size_t len, stream__kafka_str s)
{
    touch(frame, len, s.s, s.len);
}

static void check_group(const uint8_t *frame, size_t len)
{
    stream__kafka_group_request q;
    int rc = stream__kafka_group_decode(frame, len, &q);
    FUZZ_CHECK_MSG(rc == 0 || rc == STREAM_EUNSUPPORTED || rc == STREAM_EPROTO ||
                       rc == STREAM_ENOMEM,
                   "rc %d", rc);
    const stream__kafka_api *api = stream__kafka_api_find(q.hdr.api_key);
    if (rc == 0 || rc == STREAM_EUNSUPPORTED) {
        FUZZ_CHECK(api != NULL);
        bool in_range =
            q.hdr.api_version >= api->min_version && q.hdr.api_version <= api->max_version;
        FUZZ_CHECK(in_range == (rc == 0));
    }
    if (rc == 0) {
        touch(frame, len, q.hdr.client_id, q.hdr.client_id_len);
        touch_str(frame, len, q.group);
        touch_str(frame, len, q.member_id);
        touch_str(frame, len, q.instance_id);
        touch_str(frame, len, q.protocol_type);
        touch_str(frame, len, q.protocol_name);
        for (size_t i = 0; i < q.nblobs; i++) {
            touch_str(frame, len, q.blobs[i].name);
            FUZZ_CHECK(q.blobs[i].name.s != NULL && q.blobs[i].bytes != NULL);
            if (q.blobs[i].len > 0)
                touch(frame, len, q.blobs[i].bytes, q.blobs[i].len);
        }
        for (size_t i = 0; i < q.nentries; i++) {
            const stream__kafka_gentry *e = &q.entries[i];
            touch_str(frame, len, e->name);
            touch_str(frame, len, e->instance_id);
            FUZZ_CHECK(e->first <= q.ntopics && e->count <= q.ntopics - e->first);
        }
        for (size_t i = 0; i < q.ntopics; i++) {
            const stream__kafka_topic *t = &q.topics[i];
            touch(frame, len, t->name, t->name_len);
            FUZZ_CHECK(t->first <= q.noffsets && t->count <= q.noffsets - t->first);
        }
        for (size_t j = 0; j < q.noffsets; j++)
            touch_str(frame, len, q.offsets[j].metadata);
        /* OffsetFetch always has its group(s) as entries. */
        if (q.hdr.api_key == STREAM__KAFKA_OFFSET_FETCH && q.hdr.api_version < 8)
            FUZZ_CHECK(q.nentries == 1);
    }
    stream__kafka_group_release(&q);
}

static void check_txn(const uint8_t *frame, size_t len)
{
    stream__kafka_txn_request q;
    int rc = stream__kafka_txn_decode(frame, len, &q);
    FUZZ_CHECK_MSG(rc == 0 || rc == STREAM_EUNSUPPORTED || rc == STREAM_EPROTO ||
                       rc == STREAM_ENOMEM,
                   "rc %d", rc);
    const stream__kafka_api *api = stream__kafka_api_find(q.hdr.api_key);
    if (rc == 0 || rc == STREAM_EUNSUPPORTED) {
        FUZZ_CHECK(api != NULL && api->refused);
        bool in_range =
            q.hdr.api_version >= api->min_version && q.hdr.api_version <= api->max_version;
        FUZZ_CHECK(in_range == (rc == 0));
    }
    if (rc == 0) {
        touch(frame, len, q.hdr.client_id, q.hdr.client_id_len);
        for (size_t i = 0; i < q.ntxns; i++) {
            touch(frame, len, q.txns[i].id, q.txns[i].id_len);
            FUZZ_CHECK(q.txns[i].first <= q.ntopics &&
                       q.txns[i].count <= q.ntopics - q.txns[i].first);
        }
        for (size_t i = 0; i < q.ntopics; i++) {
            const stream__kafka_topic *t = &q.topics[i];
            touch(frame, len, t->name, t->name_len);
            FUZZ_CHECK(t->first <= q.nparts && t->count <= q.nparts - t->first);
        }
        /* The v0-3 requests and those of one transaction always have one. */
        int16_t key = q.hdr.api_key;
        if (key == STREAM__KAFKA_ADD_OFFSETS_TO_TXN || key == STREAM__KAFKA_END_TXN ||
            key == STREAM__KAFKA_TXN_OFFSET_COMMIT ||
            (key == STREAM__KAFKA_ADD_PARTITIONS_TO_TXN && q.hdr.api_version <= 3))
            FUZZ_CHECK(q.ntxns == 1);
    }
    stream__kafka_txn_release(&q);
}

static void check(const uint8_t *frame, size_t len)
{
    int16_t key = len >= 2 ? (int16_t)((frame[0] << 8) | frame[1]) : -1;
    if (stream__kafka_group_api(key)) {
        check_group(frame, len);
        return;
    }
    if (stream__kafka_txn_api(key)) {
        check_txn(frame, len);
        return;
    }
    stream__kafka_request q;
    size_t body;
    if (stream__kafka_header_decode(frame, len, &q, &body) == 0 &&
        stream__kafka_admin_api(q.api_key)) {
        check_admin(frame, len, &q, body);
        return;
    }
    int rc = stream__kafka_request_decode(frame, len, &q);
    FUZZ_CHECK_MSG(rc == 0 || rc == STREAM_EUNKNOWNOP || rc == STREAM_EUNSUPPORTED ||
                       rc == STREAM_EPROTO || rc == STREAM_ENOMEM,
                   "rc %d", rc);
    if (len >= 8) {
        FUZZ_CHECK(q.api_key == (int16_t)((frame[0] << 8) | frame[1]));
        FUZZ_CHECK(q.api_version == (int16_t)((frame[2] << 8) | frame[3]));
    }
    const stream__kafka_api *api = stream__kafka_api_find(q.api_key);
    if (rc == 0 || rc == STREAM_EUNSUPPORTED) {
        FUZZ_CHECK(api != NULL);
        bool in_range = q.api_version >= api->min_version && q.api_version <= api->max_version;
        FUZZ_CHECK(in_range == (rc == 0));
    }
    if (rc == 0) {
        touch(frame, len, q.client_id, q.client_id_len);
        touch(frame, len, q.txn_id, q.txn_id_len);
        touch(frame, len, q.key, q.key_len);
        for (size_t i = 0; i < q.ntopics; i++) {
            const stream__kafka_topic *t = &q.topics[i];
            touch(frame, len, t->name, t->name_len);
            FUZZ_CHECK(t->first <= q.nparts && t->count <= q.nparts - t->first);
        }
        for (size_t j = 0; j < q.nparts; j++)
            touch(frame, len, q.parts[j].records, q.parts[j].records_len);
    }
    stream__kafka_request_release(&q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 0x80) {
        check(data + 1, size - 1);
        return 0;
    }
    size_t napis;
    const stream__kafka_api *apis = stream__kafka_apis(&napis);
    const stream__kafka_api *api = &apis[data[0] % napis];
    int span = api->max_version - api->min_version + 2;
    int16_t version = (int16_t)(api->min_version + (size > 1 ? data[1] % span : 0));
    size_t body = size > 2 ? size - 2 : 0;
    stream_buf b = STREAM_BUF_INIT;
    stream_buf_put_be16(&b, (uint16_t)api->key);
    stream_buf_put_be16(&b, (uint16_t)version);
    stream_buf_put_be32(&b, 7);
    stream_buf_put_be16(&b, 1);
    stream_buf_put_u8(&b, 'f');
    if (version >= api->flexible_from && version <= api->max_version)
        stream_buf_put_u8(&b, 0); /* no header tags */
    stream_buf_put(&b, data + 2, body);
    FUZZ_CHECK(!b.oom);
    check(b.data, b.len);
    stream_buf_release(&b);
    return 0;
}
