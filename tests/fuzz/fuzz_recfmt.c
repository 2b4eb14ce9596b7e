/*
 * fuzz_recfmt.c - the lossless record readers (recfmt.h): JSON lines and the
 * MessagePack record stream, as `stream-pub --json` / `--msgpack` read stdin.
 *
 * Input: two bytes of parameters, then the stream.
 *   byte 0    bit 0 kind (JSON lines / MessagePack), bit 1 IGNORE_UNKNOWN,
 *             bits 2-3 max_record_bytes (default, 16, 256, 4096)
 *   byte 1    seed for the chunk sizes the stream is fed in
 *
 * Properties checked:
 *   - chunking does not matter: feeding in pieces (next after every piece)
 *     gives the same records and the same final error as feeding it whole
 *     (except that a record both too large and malformed may be reported as
 *     either);
 *   - errors are sticky and documented;
 *   - every record is well-formed for the producer: null iff length -1,
 *     headers decoded, and stream_batch_builder_append takes it (the batch
 *     then validates), as stream-pub does;
 *   - lossless: writing a record back (in the same format, and in the other
 *     one) and reading it gives the same key, value, headers, timestamp,
 *     partition, offset (and topic, when it is UTF-8 for JSON).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "stream/batch.h"
#include "stream/buf.h"
#include "stream/error.h"
#include "stream/json.h"
#include "stream/recfmt.h"

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211u;
    return h;
}

static uint64_t mix_i64(uint64_t h, int64_t v)
{
    return mix(h, &v, sizeof v);
}

/* A hash of what a record says (the timestamp left out: relative times read
 * the wall clock, which moves between two parses). */
static uint64_t record_hash(const stream_recfmt_in *in)
{
    const stream_fmt_record *r = &in->rec;
    uint64_t h = 1469598103934665603u;
    h = mix(h, r->topic ? r->topic : "", r->topic_len);
    h = mix_i64(h, r->partition);
    h = mix_i64(h, r->offset);
    h = mix_i64(h, r->key_len);
    if (r->key_len > 0)
        h = mix(h, r->key, (size_t)r->key_len);
    h = mix_i64(h, r->value_len);
    if (r->value_len > 0)
        h = mix(h, r->value, (size_t)r->value_len);
    h = mix_i64(h, (int64_t)r->header_count);
    for (size_t i = 0; i < r->header_count; i++) {
        const stream_header *hd = &r->headers[i];
        h = mix_i64(h, hd->name_len);
        h = mix(h, hd->name, (size_t)hd->name_len);
        h = mix_i64(h, hd->value_len);
        if (hd->value_len > 0)
            h = mix(h, hd->value, (size_t)hd->value_len);
    }
    return h ^ (uint64_t)(in->has_topic | in->has_partition << 1 | in->has_offset << 2 |
                          in->has_timestamp << 3);
}

static bool same_bytes(const void *a, int64_t alen, const void *b, int64_t blen)
{
    return alen == blen && (alen <= 0 || memcmp(a, b, (size_t)alen) == 0);
}

static void check_well_formed(const stream_recfmt_in *in)
{
    const stream_fmt_record *r = &in->rec;
    FUZZ_CHECK(r->key_len >= -1 && r->value_len >= -1);
    FUZZ_CHECK((r->key == NULL) == (r->key_len == -1));
    FUZZ_CHECK((r->value == NULL) == (r->value_len == -1));
    FUZZ_CHECK(r->header_count == 0 || r->headers != NULL);
    if (r->topic_len > 0)
        fuzz_touch(r->topic, r->topic_len);
    if (r->key_len > 0)
        fuzz_touch(r->key, (size_t)r->key_len);
    if (r->value_len > 0)
        fuzz_touch(r->value, (size_t)r->value_len);
    for (size_t i = 0; i < r->header_count; i++) {
        const stream_header *h = &r->headers[i];
        FUZZ_CHECK(h->name_len >= 0 && h->value_len >= -1);
        FUZZ_CHECK((h->value == NULL) == (h->value_len == -1));
        fuzz_touch(h->name, (size_t)h->name_len);
        if (h->value_len > 0)
            fuzz_touch(h->value, (size_t)h->value_len);
    }
    FUZZ_CHECK(in->has_partition == (r->partition >= 0));
    FUZZ_CHECK(in->has_timestamp == (r->timestamp >= 0));
}

/* Writes `in` in format `kind` and reads it back with reader `rt`. */
static void round_trip(const stream_recfmt_in *in, stream_recfmt_kind kind,
                       stream_recfmt_reader *rt)
{
    const stream_fmt_record *a = &in->rec;
    stream_buf out;
    stream_buf_init(&out);
    int rc = kind == STREAM_RECFMT_JSON ? stream_recfmt_write_json(&out, a)
                                        : stream_recfmt_write_msgpack(&out, a);
    FUZZ_CHECK_MSG(rc == 0, "write: %s", stream_err_name(rc));
    char err[512];
    stream_recfmt_in back;
    if (kind == STREAM_RECFMT_JSON) {
        rc = stream_recfmt_parse_json(rt, (const char *)out.data, out.len, &back, err, sizeof err);
        FUZZ_CHECK_MSG(rc == 0, "written JSON record does not read back: %s: %.*s", err,
                       (int)out.len, (const char *)out.data);
    } else {
        size_t used = 0;
        rc = stream_recfmt_parse_msgpack(rt, out.data, out.len, &used, &back, err, sizeof err);
        FUZZ_CHECK_MSG(rc == 1, "written MessagePack record does not read back: %s",
                       rc < 0 ? err : "incomplete");
        FUZZ_CHECK(used == out.len);
    }
    const stream_fmt_record *b = &back.rec;
    FUZZ_CHECK(same_bytes(a->key, a->key_len, b->key, b->key_len));
    FUZZ_CHECK(same_bytes(a->value, a->value_len, b->value, b->value_len));
    FUZZ_CHECK(a->partition == b->partition && a->offset == b->offset);
    FUZZ_CHECK_MSG(a->timestamp == b->timestamp, "timestamp %lld read back as %lld",
                   (long long)a->timestamp, (long long)b->timestamp);
    if (kind == STREAM_RECFMT_MSGPACK || stream_utf8_valid(a->topic, a->topic_len))
        FUZZ_CHECK(same_bytes(a->topic, (int64_t)a->topic_len, b->topic, (int64_t)b->topic_len));
    FUZZ_CHECK(a->header_count == b->header_count);
    for (size_t i = 0; i < a->header_count; i++) {
        const stream_header *ha = &a->headers[i], *hb = &b->headers[i];
        FUZZ_CHECK(same_bytes(ha->name, ha->name_len, hb->name, hb->name_len));
        FUZZ_CHECK(same_bytes(ha->value, ha->value_len, hb->value, hb->value_len));
    }
    stream_buf_release(&out);
}

#define MAX_RECORDS 1024

typedef struct run {
    uint64_t hash[MAX_RECORDS];
    size_t n;
    int rc; /* the final error, or 0 */
} run;

/* Reads every record the reader has; round trips and batches the first few. */
static int take(stream_recfmt_reader *r, run *seen, stream_recfmt_reader *rt,
                stream_batch_builder *b)
{
    char err[512];
    stream_recfmt_in in;
    int rc;
    while ((rc = stream_recfmt_reader_next(r, &in, err, sizeof err)) == 1) {
        check_well_formed(&in);
        if (seen->n < MAX_RECORDS)
            seen->hash[seen->n] = record_hash(&in);
        if (rt != NULL && seen->n < 64) {
            round_trip(&in, STREAM_RECFMT_JSON, rt);
            round_trip(&in, STREAM_RECFMT_MSGPACK, rt);
            const stream_fmt_record *rec = &in.rec;
            int arc = stream_batch_builder_append(b, in.has_timestamp ? rec->timestamp : 0,
                                                  rec->key, rec->key_len, rec->value,
                                                  rec->value_len, rec->headers, rec->header_count);
            FUZZ_CHECK_MSG(arc == 0, "builder refused a record: %s", stream_err_name(arc));
        }
        seen->n++;
    }
    if (rc < 0) {
        FUZZ_CHECK_MSG(rc == STREAM_EINVAL || rc == STREAM_ETOOLARGE || rc == STREAM_ESHORT ||
                           rc == STREAM_ENOMEM,
                       "%s", stream_err_name(rc));
        FUZZ_CHECK(stream_recfmt_reader_next(r, &in, err, sizeof err) == rc); /* sticky */
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t maxes[] = {STREAM_RECFMT_DEFAULT_MAX_RECORD, 16, 256, 4096};
    fuzz_in in;
    fuzz_in_init(&in, data, size);
    uint8_t b0 = fuzz_u8(&in);
    uint64_t seed = fuzz_u8(&in) + 1;
    stream_recfmt_kind kind = (b0 & 1) ? STREAM_RECFMT_MSGPACK : STREAM_RECFMT_JSON;
    size_t len;
    const uint8_t *stream = fuzz_rest(&in, &len);

    static run chunked, whole;
    chunked.n = whole.n = 0;
    stream_recfmt_reader r, rt;
    stream_recfmt_reader_init(&rt, STREAM_RECFMT_JSON);
    stream_batch_builder b;
    stream_batch_builder_init(&b);

    /* In pieces, taking records as they complete. */
    stream_recfmt_reader_init(&r, kind);
    r.flags = (b0 & 2) ? STREAM_RECFMT_IGNORE_UNKNOWN : 0;
    r.max_record_bytes = maxes[(b0 >> 2) & 3];
    int rc = 0;
    for (size_t pos = 0; pos < len && rc == 0;) {
        uint64_t x = fuzz_rand(&seed);
        size_t n = (x & 0x30) == 0x30 ? 1 + (x >> 8) % 1024 : 1 + (x >> 8) % 8;
        if (n > len - pos)
            n = len - pos;
        FUZZ_CHECK(stream_recfmt_reader_feed(&r, stream + pos, n) == 0);
        pos += n;
        rc = take(&r, &chunked, &rt, &b);
    }
    if (rc == 0) {
        stream_recfmt_reader_eof(&r);
        FUZZ_CHECK(stream_recfmt_reader_feed(&r, "x", 1) == STREAM_EINVAL);
        rc = take(&r, &chunked, &rt, &b);
    }
    FUZZ_CHECK(r.records == chunked.n);
    stream_recfmt_reader_release(&r);

    if (b.count > 0) {
        const uint8_t *batch;
        size_t batch_len;
        char err[256];
        stream_batch_info info;
        FUZZ_CHECK(stream_batch_builder_finish(&b, &batch, &batch_len) == 0);
        int vrc = stream_batch_validate(batch, batch_len, &info, err, sizeof err);
        FUZZ_CHECK_MSG(vrc == 0, "batch of read records does not validate: %s", err);
    }

    /* Whole, then EOF. */
    stream_recfmt_reader_init(&r, kind);
    r.flags = (b0 & 2) ? STREAM_RECFMT_IGNORE_UNKNOWN : 0;
    r.max_record_bytes = maxes[(b0 >> 2) & 3];
    FUZZ_CHECK(stream_recfmt_reader_feed(&r, stream, len) == 0);
    stream_recfmt_reader_eof(&r);
    int wrc = take(&r, &whole, NULL, NULL);
    stream_recfmt_reader_release(&r);

    /* A MessagePack record that is both too large and malformed may be caught
     * either way: in pieces the size passes the limit before the bad byte
     * arrives. A JSON line is measured before it is parsed, always. */
    FUZZ_CHECK_MSG(wrc == rc ||
                       (kind == STREAM_RECFMT_MSGPACK && wrc < 0 && rc < 0 &&
                        (wrc == STREAM_ETOOLARGE || rc == STREAM_ETOOLARGE)),
                   "in pieces %s, whole %s", stream_err_name(rc), stream_err_name(wrc));
    FUZZ_CHECK_MSG(whole.n == chunked.n,
                   "in pieces %zu records, whole %zu", chunked.n, whole.n);
    for (size_t i = 0; i < whole.n && i < MAX_RECORDS; i++)
        FUZZ_CHECK(whole.hash[i] == chunked.hash[i]);

    stream_batch_builder_release(&b);
    stream_recfmt_reader_release(&rt);
    return 0;
}
